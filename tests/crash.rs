//! Crashes and signals: `kill -9` loses nothing, SIGINT/SIGTERM stop cleanly, two
//! processes on one database share the work without running a job twice.

mod support;

use std::time::{Duration, Instant};
use support::fake_github::{FakeConfig, FakeGithub, Hostile, Override, RepoSpec};
use support::harness::{refetched_pages, signal, token, Harness};

fn slow_fake(prs: u32) -> FakeGithub {
    FakeGithub::spawn(FakeConfig {
        repos: vec![RepoSpec::new("acme/widgets", prs)],
        latency: Duration::from_millis(15),
        ..FakeConfig::default()
    })
}

#[test]
fn kill_9_mid_run_then_resume_loses_and_duplicates_nothing() {
    let fake = slow_fake(40);
    let h = Harness::new(&fake.url(), &[token(1), token(2)]);
    h.enqueue("acme/widgets");
    let workers = 4;
    let mut refetch_budget = 0;
    for round in 0..3 {
        let mut child = h.spawn(&["work", "--workers", &workers.to_string()]);
        let done = h.count("SELECT count(*) FROM jobs WHERE state = 'done'");
        h.wait_for(
            "SELECT count(*) FROM jobs WHERE state = 'done'",
            done + 20,
            Duration::from_secs(30),
        );
        signal(&child, "KILL");
        child.wait().unwrap();
        let running = h.count("SELECT count(*) FROM jobs WHERE state = 'running'");
        assert!(running <= workers, "round {round}: {running} running");
        refetch_budget += running;
    }
    // The next run starts on the interrupted jobs at once, not after a lease timeout.
    let started = Instant::now();
    h.seedq()
        .args(["work", "--workers", "4"])
        .assert()
        .success();
    assert!(started.elapsed() < Duration::from_secs(30));
    h.assert_complete(&fake, "acme/widgets");

    let refetched: u64 = refetched_pages(&fake.stats().pages_served)
        .iter()
        .map(|(_, extra)| extra)
        .sum();
    assert!(
        refetched <= refetch_budget as u64,
        "{refetched} pages refetched, but only {refetch_budget} jobs were in flight at the kills"
    );
}

fn stop_with(signal_name: &str, expected_code: i32) {
    let fake = slow_fake(30);
    let h = Harness::new(&fake.url(), &[token(1)]);
    h.enqueue("acme/widgets");
    let child = h.spawn(&["work", "--workers", "4"]);
    h.wait_for(
        "SELECT count(*) FROM jobs WHERE state = 'done'",
        10,
        Duration::from_secs(30),
    );
    let stopped_at = Instant::now();
    signal(&child, signal_name);
    let output = child.wait_with_output().unwrap();
    assert!(
        stopped_at.elapsed() < Duration::from_secs(5),
        "stopped within seconds"
    );
    assert_eq!(output.status.code(), Some(expected_code), "{output:?}");
    // Nothing left claimed: the in-flight jobs finished or were released.
    assert_eq!(
        h.count("SELECT count(*) FROM jobs WHERE state = 'running'"),
        0
    );
    assert_eq!(h.count("SELECT count(*) FROM workers"), 0);
    h.seedq().arg("work").assert().success();
    h.assert_complete(&fake, "acme/widgets");
}

#[test]
fn sigint_stops_cleanly_with_130() {
    stop_with("INT", 130);
}

#[test]
fn sigterm_stops_cleanly_with_143() {
    stop_with("TERM", 143);
}

#[test]
fn two_processes_share_one_database_without_running_a_job_twice() {
    // 150 PRs: ~750 jobs at 15 ms each on 6 workers, seconds of work, so the reads
    // below (and the held snapshot) happen while both processes are busy.
    let fake = slow_fake(150);
    let h = Harness::new(&fake.url(), &[token(1), token(2)]);
    h.enqueue("acme/widgets");
    let first = h.spawn(&["work", "--workers", "3"]);
    let second = h.spawn(&["work", "--workers", "3"]);
    let mut saw_running = 0;
    let mut slowest_read = Duration::ZERO;
    // Reads while both run (seedq status, the database's shell, a reader holding its
    // snapshot open) never block them, and are never blocked.
    for round in 0..8 {
        let started = Instant::now();
        h.seedq().arg("status").assert().success();
        h.seedq().args(["status", "--json"]).assert().success();
        let shell = h
            .shell("select count(*) from pull_requests; select state, count(*) from jobs group by state;")
            .output();
        if let Ok(out) = shell {
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "the database's shell: {stderr}");
        }
        slowest_read = slowest_read.max(started.elapsed());
        saw_running = saw_running.max(h.count("SELECT count(*) FROM workers"));
        if round == 1 {
            // Once the workers are under way.
            h.wait_for(
                "SELECT count(*) FROM jobs WHERE state = 'done'",
                10,
                Duration::from_secs(30),
            );
            let hold = Duration::from_millis(500);
            let progressed = h.progresses_while_a_reader_holds_a_snapshot(hold, || {
                h.count("SELECT count(*) FROM jobs WHERE state = 'done'")
            });
            let left = h.count("SELECT count(*) FROM jobs WHERE state <> 'done'");
            assert!(
                progressed,
                "the workers wrote nothing while a reader held a snapshot ({left} jobs left)"
            );
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    let (a, b) = (
        first.wait_with_output().unwrap(),
        second.wait_with_output().unwrap(),
    );
    for output in [&a, &b] {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        assert!(!stderr.contains("locked"), "{stderr}");
        assert!(!stderr.contains("busy"), "{stderr}");
    }
    assert_eq!(saw_running, 2, "both processes were working at once");
    assert!(
        slowest_read < Duration::from_secs(5),
        "a status read took {slowest_read:?}"
    );
    h.assert_complete(&fake, "acme/widgets");
    let twice = refetched_pages(&fake.stats().pages_served);
    assert!(twice.is_empty(), "pages fetched twice: {twice:?}");
    // Both processes stored pages, and between them each page once.
    let pages = |output: &std::process::Output| -> i64 {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let after = stderr.split("requests (").nth(1).expect("summary line");
        after.split(' ').next().unwrap().parse().unwrap()
    };
    let (pages_a, pages_b) = (pages(&a), pages(&b));
    assert!(pages_a > 0 && pages_b > 0, "{pages_a} and {pages_b} pages");
    assert_eq!(
        pages_a + pages_b,
        h.count("SELECT count(*) FROM jobs WHERE state = 'done'")
    );
}

#[test]
fn a_page_that_keeps_killing_its_worker_ends_failed_instead_of_looping() {
    // The fake holds this page's request forever; each time it is in flight the test
    // kills the worker, as a page that crashes seedq would.
    let poison = "/repos/acme/widgets/pulls/2/files";
    let fake = FakeGithub::spawn(FakeConfig {
        repos: vec![RepoSpec::new("acme/widgets", 5)],
        overrides: vec![Override::always(poison, Hostile::Hang)],
        ..FakeConfig::default()
    });
    let h = Harness::new(&fake.url(), &[token(1)]);
    h.enqueue("acme/widgets");
    let mut kills = 0;
    let last = loop {
        let child = h.spawn(&["work", "--workers", "2"]);
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut child = child;
        let ended = loop {
            if fake.hits(poison) > kills {
                break false;
            }
            if child.try_wait().unwrap().is_some() {
                break true;
            }
            assert!(
                Instant::now() < deadline,
                "the poison page was never requested"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        if ended {
            break child.wait_with_output().unwrap();
        }
        signal(&child, "KILL");
        child.wait().unwrap();
        kills += 1;
        assert!(
            kills <= 6,
            "the poison page was requested more often than its attempts"
        );
    };
    let stderr = String::from_utf8_lossy(&last.stderr);
    assert_eq!(last.status.code(), Some(3), "a job failed: {stderr}");
    assert_eq!(kills, 6, "killed once per attempt");
    assert_eq!(fake.hits(poison), 6);
    let job = h.texts(
        "SELECT state || ': ' || last_error FROM jobs WHERE kind = 'files' AND pr_number = 2",
    );
    assert_eq!(
        job,
        vec![Some(
            "failed: its worker stopped while running it 6 times".to_owned()
        )]
    );
    // Only the poison page is left, unless another page was in flight at every kill
    // (under load, the one claimed beside it each time): that one shared its fate.
    assert_eq!(
        h.count(
            "SELECT count(*) FROM jobs WHERE state <> 'done' AND NOT (kind = 'files' AND \
             pr_number = 2) AND NOT (state = 'failed' AND last_error LIKE \
             'its worker stopped while running it % times')"
        ),
        0
    );
    assert!(h.count("SELECT count(*) FROM jobs WHERE state <> 'done'") <= 2);
    if h.count("SELECT count(*) FROM jobs WHERE state <> 'done'") == 1 {
        assert_eq!(
            h.count("SELECT count(*) FROM pull_requests") as u64,
            fake.truth("acme/widgets").prs
        );
    }
}

#[test]
fn kill_9_while_creating_or_opening_the_database_leaves_it_usable() {
    let fake = slow_fake(5);
    let h = Harness::new(&fake.url(), &[token(1)]);
    // Kill `enqueue` (which creates the schema) and `work` (which opens, primes the
    // tokens and registers) after a few milliseconds, over and over.
    for round in 0..16u64 {
        let args: &[&str] = if round % 2 == 0 {
            &["enqueue", "acme/widgets"]
        } else {
            &["work"]
        };
        let mut child = h.spawn(args);
        std::thread::sleep(Duration::from_millis(round % 8));
        signal(&child, "KILL");
        let _ = child.wait();
    }
    h.enqueue("acme/widgets");
    h.seedq().arg("work").assert().success();
    if !h.is_postgres() {
        assert_eq!(h.texts("PRAGMA integrity_check"), vec![Some("ok".into())]);
    }
    h.assert_complete(&fake, "acme/widgets");
}

#[test]
fn a_worker_paused_past_its_heartbeat_does_not_run_jobs_twice_when_it_resumes() {
    // Ctrl-Z, a suspended laptop, a paused VM: the other process takes the paused one
    // for dead and takes over its jobs. When it resumes it must not keep claiming jobs
    // that the other one then takes over again.
    let fake = slow_fake(60);
    let h = Harness::new(&fake.url(), &[token(1), token(2)]);
    h.enqueue("acme/widgets");
    let spawn = |h: &Harness| {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("seedq"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SEEDQ_DB", &h.db)
            .env("GITHUB_API_URL", &h.api_url)
            .env("GITHUB_SEEDING_TOKENS", &h.tokens)
            .env("SEEDQ_RETRY_BASE_MS", "20")
            .env("SEEDQ_REST_PER_MINUTE", "0")
            .env("SEEDQ_GRAPHQL_PER_MINUTE", "0")
            .env("SEEDQ_API", &h.api)
            .env("SEEDQ_STALE_AFTER_MS", "1500")
            .args(["work", "--workers", "3"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let paused = spawn(&h);
    h.wait_for(
        "SELECT count(*) FROM jobs WHERE state = 'done'",
        10,
        Duration::from_secs(30),
    );
    // Paused outside a transaction (a process stopped inside one holds the write lock,
    // and SQLite can do nothing about that).
    loop {
        signal(&paused, "STOP");
        if h.no_write_in_progress() {
            break;
        }
        signal(&paused, "CONT");
        std::thread::sleep(Duration::from_millis(3));
    }
    let in_flight_at_pause = h.count("SELECT count(*) FROM jobs WHERE state = 'running'");
    // Past the stale limit: the next process takes the paused one for dead at once.
    std::thread::sleep(Duration::from_millis(2000));
    let other = spawn(&h);
    let done = h.count("SELECT count(*) FROM jobs WHERE state = 'done'");
    h.wait_for(
        "SELECT count(*) FROM jobs WHERE state = 'done'",
        done + 20,
        Duration::from_secs(30),
    );
    signal(&paused, "CONT");
    for output in [
        paused.wait_with_output().unwrap(),
        other.wait_with_output().unwrap(),
    ] {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
    }
    h.assert_complete(&fake, "acme/widgets");
    let refetched: u64 = refetched_pages(&fake.stats().pages_served)
        .iter()
        .map(|(_, extra)| extra)
        .sum();
    assert!(
        refetched <= in_flight_at_pause as u64,
        "{refetched} pages fetched twice; {in_flight_at_pause} were in flight at the pause"
    );
}
