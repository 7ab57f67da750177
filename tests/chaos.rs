//! Chaos: a seed of a few hundred PRs against a faulty fake GitHub (5xx, dropped
//! connections, secondary limits, a bad token among good ones), its worker killed with
//! `kill -9` at random moments, resumed, and then checked against the fake's ground
//! truth. Run by `scripts/chaos` (short) and `scripts/chaos --long`; ignored otherwise.
//!
//! Each round starts `SEEDQ_CHAOS_PROCESSES` `seedq work` processes on the one database
//! and kills them all at a random moment.
//!
//! Settings (environment): `SEEDQ_CHAOS_API` (`rest`, or `auto`: GraphQL batches and
//! REST together), `SEEDQ_CHAOS_PRS` (300; 1,500 through GraphQL, which fetches far
//! more per request), `SEEDQ_CHAOS_KILLS` (12 rounds), `SEEDQ_CHAOS_PROCESSES` (2; 3 on PostgreSQL),
//! `SEEDQ_CHAOS_SEED` (random; printed, so a failing run can be rerun with the same
//! random draws). With `SEEDQ_TEST_BACKEND=postgres` the database is PostgreSQL and
//! each process plays a host of its own.

mod support;

use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::fake_github::{FakeConfig, FakeGithub, Faults, RepoSpec};
use support::harness::{refetched_pages, signal, token, Harness};

const REPO: &str = "acme/widgets";
const WORKERS: i64 = 6;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Rows per PR in `view`, from the database.
fn per_pr(h: &Harness, view: &str) -> BTreeMap<u64, u64> {
    let rows = h.texts(&format!(
        "SELECT pr_number || ' ' || count(*) FROM {view} WHERE repo = '{REPO}' GROUP BY pr_number"
    ));
    rows.into_iter()
        .flatten()
        .map(|r| {
            let (pr, n) = r.split_once(' ').unwrap();
            (pr.parse().unwrap(), n.parse().unwrap())
        })
        .collect()
}

fn wal_bytes(h: &Harness) -> u64 {
    if h.is_postgres() {
        return 0;
    }
    let wal = h.db.with_extension("db-wal");
    std::fs::metadata(wal).map_or(0, |m| m.len())
}

/// One `seedq work` of a round. On PostgreSQL each process plays a host of its own: no
/// process can check another's pid, so a killed one's jobs come back when its
/// heartbeat runs stale (6 s here instead of 20).
fn start(h: &Harness, i: u64) -> std::process::Child {
    let mut cmd = h.command();
    if h.is_postgres() {
        cmd.env("SEEDQ_HOST", format!("chaos-host-{i}"))
            .env("SEEDQ_STALE_AFTER_MS", "6000");
    }
    cmd.args(["work", "--workers", &WORKERS.to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn seedq")
}

#[test]
#[ignore = "run by scripts/chaos"]
fn chaos_kill_9_under_faults_loses_and_duplicates_nothing() {
    let api = std::env::var("SEEDQ_CHAOS_API").unwrap_or_else(|_| "rest".to_owned());
    let prs = setting("SEEDQ_CHAOS_PRS", if api == "rest" { 300 } else { 1500 }) as u32;
    let kills = setting("SEEDQ_CHAOS_KILLS", 12);
    let on_postgres = support::harness::postgres::wanted();
    let processes = setting("SEEDQ_CHAOS_PROCESSES", if on_postgres { 3 } else { 2 });
    let seed = setting("SEEDQ_CHAOS_SEED", rand::random::<u32>() as u64);
    let backend = if on_postgres { "PostgreSQL" } else { "SQLite" };
    println!(
        "chaos on {backend}: --api {api}, {prs} PRs, {kills} kills of {processes} worker processes sharing the database, seed {seed} (SEEDQ_CHAOS_SEED={seed} reuses these random draws)"
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let bad_token = token(9);
    let fake = FakeGithub::spawn(FakeConfig {
        repos: vec![RepoSpec::new(REPO, prs)],
        latency: Duration::from_millis(5),
        invalid_tokens: [bad_token.clone()].into_iter().collect(),
        faults: Faults {
            p_server_error: 0.05,
            p_drop: 0.02,
            p_secondary: 0.01,
            secondary_retry_after: Some(1),
            seed,
        },
        ..FakeConfig::default()
    });
    let h = Harness::new(&fake.url(), &[token(1), token(2), token(3), bad_token]).api(&api);
    h.enqueue(REPO);
    let started = Instant::now();
    let done = |h: &Harness| h.count("SELECT count(*) FROM jobs WHERE state = 'done'");
    // About five jobs per PR over REST, four with GraphQL: spread the kills over the
    // first half or so of the run (a GraphQL batch finishes many jobs at once, and
    // the progress seen at a kill overshoots its draw).
    let jobs_per_pr = if api == "rest" { 5 } else { 3 };
    let step = (jobs_per_pr * i64::from(prs) / (kills as i64 + 2)).max(2);
    let mut in_flight_at_kills = 0;
    let mut max_wal = 0;
    let mut killed = 0;
    let mut finished_early = 0;
    let mut outputs = Vec::new();
    while killed < kills {
        let before = done(&h);
        let mut children: Vec<_> = (0..processes).map(|i| start(&h, i)).collect();
        // A random moment: after a random amount of progress (sometimes none at all,
        // which kills it while it starts up) plus a random few milliseconds.
        let progress = if rng.gen_bool(0.25) {
            0
        } else {
            rng.gen_range(1..=step)
        };
        let at_least = Instant::now() + Duration::from_millis(rng.gen_range(0..300));
        let give_up = Instant::now() + Duration::from_secs(60);
        let any_ended = |children: &mut Vec<std::process::Child>| {
            children.iter_mut().any(|c| c.try_wait().unwrap().is_some())
        };
        loop {
            max_wal = max_wal.max(wal_bytes(&h));
            if any_ended(&mut children) || Instant::now() > give_up {
                break;
            }
            if Instant::now() >= at_least && done(&h) >= before + progress {
                break;
            }
            std::thread::sleep(Duration::from_millis(3));
        }
        if any_ended(&mut children) {
            // One finished before its moment came: little is left to kill.
            finished_early += 1;
            for child in children {
                outputs.push(child.wait_with_output().unwrap());
            }
            break;
        }
        for child in &children {
            signal(child, "KILL");
            std::thread::sleep(Duration::from_millis(rng.gen_range(0..10)));
        }
        for child in children {
            outputs.push(child.wait_with_output().unwrap());
        }
        killed += 1;
        let running = h.count("SELECT count(*) FROM jobs WHERE state = 'running'");
        // A request holds one REST job, or a GraphQL batch (one of whose jobs holds the
        // batch's points).
        let requests = h.count(
            "SELECT count(*) FROM job_queue WHERE state = 'running'
             AND (bucket = 'core' OR points > 0)",
        );
        let workers = WORKERS * processes as i64;
        assert!(
            requests <= workers,
            "{requests} requests in flight with {workers} workers"
        );
        in_flight_at_kills += running;
    }
    assert_eq!(
        finished_early, 0,
        "the seed ended before {kills} kills; raise SEEDQ_CHAOS_PRS"
    );
    for output in &outputs {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("locked"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }

    // Resume to the end, as a user would.
    let output = h.seedq().args(["work", "--workers", "6"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("locked"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    max_wal = max_wal.max(wal_bytes(&h));
    // Jobs that used up their attempts on faults and kills (a job claimed first after
    // each restart can be in flight at several kills in a row) are listed, `work`
    // exits 3, and `retry` takes them up again. Any other failure is a bug.
    let failed = h.texts("SELECT last_error FROM jobs WHERE state = 'failed'");
    for error in failed.iter().flatten() {
        assert!(
            error.contains("gave up after") || error.contains("its worker stopped"),
            "unexpected failure: {error}"
        );
    }
    let expected = if failed.is_empty() { 0 } else { 3 };
    assert_eq!(
        output.status.code(),
        Some(expected),
        "{} failed job(s); {stderr}",
        failed.len()
    );
    if !failed.is_empty() {
        h.seedq().arg("retry").assert().success();
        h.seedq().arg("work").assert().success();
    }
    let elapsed = started.elapsed();
    // A finished run checkpoints and truncates its WAL.
    let wal_at_end = wal_bytes(&h);
    assert_eq!(wal_at_end, 0, "WAL left behind");

    // Against the ground truth: every PR and child row, each exactly once.
    let truth = fake.truth(REPO);
    h.assert_all_done();
    assert_eq!(h.count("SELECT count(*) FROM workers"), 0);
    if !h.is_postgres() {
        assert_eq!(h.texts("PRAGMA integrity_check"), vec![Some("ok".into())]);
    }
    assert_eq!(
        h.count("SELECT count(DISTINCT number) FROM pull_requests") as u64,
        truth.prs
    );
    type Count = fn(&support::fake_github::PrTruth) -> u64;
    let views: [(&str, Count); 4] = [
        ("pr_commits", |p| p.commits),
        ("pr_reviews", |p| p.reviews),
        ("pr_files", |p| p.files),
        ("pr_check_runs", |p| p.check_runs),
    ];
    let mut rows = 0;
    for (view, of) in views {
        let stored = per_pr(&h, view);
        for pr in &truth.per_pr {
            let expected = of(pr);
            let got = stored.get(&pr.number).copied().unwrap_or(0);
            assert_eq!(got, expected, "{view} of PR #{}", pr.number);
            rows += got;
        }
    }
    let stats = fake.stats();
    // REST pages and GraphQL connection pages answered more than once.
    let refetched: u64 = refetched_pages(&stats.pages_served)
        .iter()
        .map(|(_, extra)| extra)
        .sum::<u64>()
        + stats
            .graphql_items_served
            .values()
            .filter(|&&n| n > 1)
            .map(|n| n - 1)
            .sum::<u64>();
    assert!(
        refetched <= in_flight_at_kills as u64,
        "{refetched} pages refetched, but only {in_flight_at_kills} jobs were in flight at the kills"
    );
    assert!(
        max_wal < 64 * 1024 * 1024,
        "the WAL grew to {max_wal} bytes"
    );
    let bad_token_used = stats.per_token.get(&token(9)).map_or(0, |t| t.requests);

    println!("chaos figures:");
    println!(
        "  PRs {} (+ {rows} commits, reviews, files and check runs): all present, each once",
        truth.prs
    );
    println!("  kill -9: {killed} rounds x {processes} processes; jobs in flight at the kills: {in_flight_at_kills}; pages refetched: {refetched}");
    println!(
        "  faults injected: {} 5xx, {} dropped connections, {} secondary limits; requests with the bad token: {bad_token_used}",
        stats.server_errors_injected, stats.drops_injected, stats.secondary_injected
    );
    println!(
        "  jobs: {} done; {} had used up their attempts and were retried",
        h.count("SELECT count(*) FROM jobs"),
        failed.len()
    );
    if h.is_postgres() {
        println!("  no job left running; no worker row left");
    } else {
        println!(
            "  no job left running; integrity_check ok; largest WAL seen: {:.1} MiB, {wal_at_end} bytes at the end",
            max_wal as f64 / 1048576.0
        );
    }
    println!(
        "  API requests: {} ({} GraphQL queries, {} timed out); wall time: {:.1} s",
        stats.total_requests,
        stats.graphql_queries,
        stats.graphql_timeouts,
        elapsed.as_secs_f64()
    );
}
