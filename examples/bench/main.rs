//! The throughput benchmark: how close `seedq work` gets to spending every request the
//! tokens allow. Run it with `scripts/bench [--short]`.
//!
//! It starts the fake GitHub in-process (windows of a few seconds, per-request latency),
//! runs the real `target/release/seedq enqueue` and `seedq work` as subprocesses (the
//! database, API URL and tokens in their environment, never in argv) on generated
//! repositories, and prints one table with the ideal beside each figure:
//!
//! - quota-bound runs with 1, 2, 4 and 8 tokens (the repository grows with the token
//!   count, so each run needs the same number of windows): wall time against the ideal
//!   (utilization), throughput as a ratio to one token, requests refused for quota;
//! - unlimited quota, no latency, 5,000 and 20,000 PRs: requests per PR against the
//!   ideal computed from the fake's truth, pages fetched twice, queue overhead (jobs/s),
//!   peak RSS (`VmHWM` of the `seedq work` process) and database size per PR;
//! - 300 ms latency, unlimited quota, default `--workers`: throughput against what a
//!   personal access token (5,000/h) or an app installation (15,000/h) allows.
//!
//! The ideal wall time of a quota-bound run: the quota allows `tokens × limit` requests
//! per window, so `requests` need `k = ceil(requests / (tokens × limit))` windows; the
//! last one is cut short (its few requests need one round trip). GitHub states the reset
//! in whole seconds and a client may not come back before it, so the first window lasts
//! until its stated reset (the fake's window starts at a token's first request, at an
//! arbitrary millisecond). Windows are 4.95 s, not 5, so that a client that comes back at
//! the stated reset starts its next window just before a whole second and wastes at most
//! 50 ms per window, as a client of GitHub's hour-long windows wastes nothing.

#[allow(dead_code)]
#[path = "../../tests/support/fake_github/mod.rs"]
mod fake_github;
mod graphql;
mod many;
#[allow(dead_code)]
#[path = "../../tests/support/postgres.rs"]
mod pg_server;
mod polite;
mod postgres;

use fake_github::{FakeConfig, FakeGithub, RepoSpec, Stats, Truth};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A rate-limit window of the quota-bound runs.
const WINDOW: Duration = Duration::from_millis(4950);
/// Requests per token per window in the quota-bound runs.
const LIMIT: u32 = 150;
/// Latency of the quota-bound runs: low enough that the quota, not the round trip, binds.
const QUOTA_LATENCY: Duration = Duration::from_millis(20);
/// Real-world latency of a GitHub REST request.
const REAL_LATENCY: Duration = Duration::from_millis(300);
/// Quota of a personal access token and the most an app installation gets, per hour.
const PAT_PER_HOUR: f64 = 5000.0;
const APP_PER_HOUR: f64 = 15000.0;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let short = args.iter().any(|a| a == "--short");
    // `--only quota|bulk|latency|graphql|postgres|many|polite` runs one part (for
    // profiling).
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1).cloned());
    let part = |name: &str| only.as_deref().is_none_or(|o| o == name);
    let seedq = seedq_binary();
    let started = Instant::now();
    let mut table = Table::default();
    // Figures that must be exact whatever the machine's speed (never timings): a
    // clean run that breaks one fails the benchmark, so CI's short run catches it.
    let mut broken: Vec<String> = Vec::new();

    // 1. Quota binds: N tokens, a repository sized to need the same windows per token.
    let token_counts: &[usize] = match (part("quota"), short) {
        (false, _) => &[],
        (true, true) => &[1, 4],
        (true, false) => &[1, 2, 4, 8],
    };
    let full_windows = if short { 2 } else { 4 };
    let mut one_token_rate = None;
    for &tokens in token_counts {
        let run = quota_run(&seedq, tokens, full_windows, Setup::SQLITE);
        let rate = run.requests as f64 / run.wall.as_secs_f64();
        let base = *one_token_rate.get_or_insert(rate);
        run.check(&mut broken, &format!("{tokens} token(s)"), tokens);
        let section = format!("quota binds: {tokens} token(s) × {LIMIT} per {WINDOW:.2?} window, {} ms latency, default --workers", QUOTA_LATENCY.as_millis());
        table.section(&section);
        run.rows(&mut table, tokens);
        table.row(
            "windows used per token",
            format!("{}", run.windows),
            format!("{}", run.ideal_windows),
            String::new(),
        );
        table.row(
            "first request after a stated reset",
            format!("{:.0} ms late (mean)", run.late_ms),
            "0 ms".into(),
            String::new(),
        );
        table.row(
            "throughput",
            format!("{:.1} req/s = {:.2} × 1 token", rate, rate / base),
            format!("{tokens}.00 × 1 token"),
            format!("{:.3}", rate / base / tokens as f64),
        );
    }

    // 2. Unlimited quota, no latency: the queue's own cost, memory and size.
    let sizes: &[u32] = if short { &[1000, 4000] } else { &[5000, 20000] };
    for &prs in sizes.iter().filter(|_| part("bulk")) {
        let run = bulk_run(&seedq, prs, 4, Duration::ZERO, Setup::SQLITE);
        if run.requests != run.ideal_requests
            || run.refetched > 0
            || run.small_pages > 0
            || run.check_run_requests != run.ideal_check_runs
        {
            broken.push(format!(
                "{prs} PRs: {} requests ({} needed), {} pages fetched twice, {} without \
                 per_page=100, {} check-runs requests ({} head commits)",
                run.requests,
                run.ideal_requests,
                run.refetched,
                run.small_pages,
                run.check_run_requests,
                run.ideal_check_runs
            ));
        }
        table.section(&format!(
            "unlimited quota, no latency: {prs} PRs, 4 tokens, default --workers"
        ));
        table.row(
            "requests sent",
            format!("{}", run.requests),
            format!("{}", run.ideal_requests),
            ratio(run.ideal_requests as f64, run.requests as f64),
        );
        table.row(
            "requests per PR",
            format!("{:.3}", run.requests as f64 / prs as f64),
            format!("{:.3}", run.ideal_requests as f64 / prs as f64),
            String::new(),
        );
        table.row(
            "pages fetched twice / without per_page=100",
            format!("{} / {}", run.refetched, run.small_pages),
            "0 / 0".into(),
            String::new(),
        );
        table.row(
            "check-runs requests (head commits)",
            format!("{}", run.check_run_requests),
            format!("{}", run.ideal_check_runs),
            String::new(),
        );
        table.row(
            "queue overhead",
            format!("{:.0} jobs/s", run.requests as f64 / run.wall.as_secs_f64()),
            "≥ 2000 jobs/s".into(),
            String::new(),
        );
        table.row(
            "CPU time of seedq work per job",
            format!(
                "{:.0} µs",
                run.cpu.as_secs_f64() * 1e6 / run.requests as f64
            ),
            "≤ 1000 µs (2 cores)".into(),
            String::new(),
        );
        table.row(
            "peak RSS of seedq work",
            format!("{:.1} MB", run.peak_rss_kb as f64 / 1024.0),
            "< 100 MB, flat".into(),
            String::new(),
        );
        table.row(
            "database size per PR",
            format!(
                "{:.2} KB ({:.1} MB)",
                run.db_bytes as f64 / 1024.0 / prs as f64,
                run.db_bytes as f64 / 1048576.0
            ),
            String::new(),
            String::new(),
        );
    }

    // 3. Real-world latency: are the default workers enough for the quota?
    let latency_tokens: &[(usize, u32)] = if short {
        &[(4, 60)]
    } else {
        &[(1, 30), (8, 200)]
    };
    for &(tokens, prs) in latency_tokens.iter().filter(|_| part("latency")) {
        let run = bulk_run(&seedq, prs, tokens, REAL_LATENCY, Setup::SQLITE);
        let rate = run.requests as f64 / run.wall.as_secs_f64();
        let per_token_hour = rate * 3600.0 / tokens as f64;
        table.section(&format!(
            "{} ms latency, unlimited quota: {tokens} token(s), default --workers ({})",
            REAL_LATENCY.as_millis(),
            default_workers(tokens)
        ));
        table.row(
            "throughput per token",
            format!("{per_token_hour:.0} req/h"),
            format!("{PAT_PER_HOUR:.0} req/h (PAT)"),
            format!("{:.2} × quota", per_token_hour / PAT_PER_HOUR),
        );
        table.row(
            "",
            String::new(),
            format!("{APP_PER_HOUR:.0} req/h (app)"),
            format!("{:.2} × quota", per_token_hour / APP_PER_HOUR),
        );
    }

    // 4. GraphQL: quota units per PR, both buckets at once, a heavy mix.
    if part("graphql") {
        let (prs, windows, heavy) = if short {
            (1000, 2, 300)
        } else {
            (5000, 4, 1000)
        };
        graphql::units_per_pr(&mut table, &mut broken, &seedq, prs);
        graphql::both_buckets(&mut table, &mut broken, &seedq, windows);
        graphql::heavy_mix(&mut table, &mut broken, &seedq, heavy);
    }

    // 5. PostgreSQL: the queue's cost with several processes, quota shared across
    // them, and moving a seed over with copy-to.
    if part("postgres") {
        postgres::part(&mut table, &mut broken, &seedq, short);
    }

    // 6. Many repositories: a night of an organisation's 1,000 repositories.
    if part("many") {
        many::part(&mut table, &mut broken, &seedq, short);
    }

    // 7. Secondary limits: what adaptive concurrency keeps off the server.
    if part("polite") {
        polite::part(&mut table, &seedq, short);
    }

    table.print();
    println!(
        "\nmachine: {} cores, {}; benchmark took {:.0} s",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model(),
        started.elapsed().as_secs_f64()
    );
    if !broken.is_empty() {
        eprintln!("\nbench: requests that the data did not need, or limits not kept:");
        for line in &broken {
            eprintln!("  {line}");
        }
        std::process::exit(1);
    }
}

/// What `seedq work`'s default `--workers` is for `tokens` (see src/commands/work.rs).
fn default_workers(tokens: usize) -> usize {
    (2 * tokens).clamp(4, 100)
}

fn ratio(ideal: f64, actual: f64) -> String {
    format!("{:.3}", ideal / actual)
}

struct QuotaRun {
    prs: u32,
    requests: u64,
    ideal_requests: u64,
    refused: u64,
    wall: Duration,
    ideal_wall: Duration,
    windows: usize,
    ideal_windows: usize,
    /// Mean delay from a window's stated reset to the token's next request.
    late_ms: f64,
}

impl QuotaRun {
    /// Adds to `broken` what the run did that the data did not need, or a limit broken.
    fn check(&self, broken: &mut Vec<String>, what: &str, tokens: usize) {
        if self.requests != self.ideal_requests {
            broken.push(format!(
                "{what}: {} requests sent, {} needed",
                self.requests, self.ideal_requests
            ));
        }
        if self.refused > (tokens * self.ideal_windows) as u64 {
            broken.push(format!(
                "{what}: {} requests refused for quota, more than one per token per window",
                self.refused
            ));
        }
    }

    /// The rows every quota-bound run shows: requests, wall time, refusals.
    fn rows(&self, table: &mut Table, tokens: usize) {
        table.row(
            "requests sent (PRs)",
            format!("{} ({})", self.requests, self.prs),
            format!("{}", self.ideal_requests),
            ratio(self.ideal_requests as f64, self.requests as f64),
        );
        table.row(
            "wall time",
            format!("{:.2} s", self.wall.as_secs_f64()),
            format!("{:.2} s", self.ideal_wall.as_secs_f64()),
            format!(
                "utilization {:.3}",
                self.ideal_wall.as_secs_f64() / self.wall.as_secs_f64()
            ),
        );
        table.row(
            "refused for quota",
            format!("{}", self.refused),
            format!("≤ {} (1/token/window)", tokens * self.ideal_windows),
            String::new(),
        );
    }
}

/// Where a seed runs: the database's backend, and how many `seedq work` processes
/// share it (as processes on several hosts would).
#[derive(Clone, Copy)]
struct Setup {
    postgres: bool,
    processes: usize,
}

impl Setup {
    const SQLITE: Setup = Setup {
        postgres: false,
        processes: 1,
    };

    /// A run's database: a fresh one on the PostgreSQL server, or a file in its directory.
    fn database(self) -> Option<pg_server::Scratch> {
        self.postgres.then(pg_server::Scratch::create)
    }
}

/// A quota-bound seed with `tokens` tokens of [`LIMIT`] per [`WINDOW`], on a repository
/// that needs `full_windows` full windows and a few requests of one more.
fn quota_run(seedq: &Path, tokens: usize, full_windows: usize, setup: Setup) -> QuotaRun {
    let per_window = tokens as u64 * LIMIT as u64;
    // Size the repository from its exact request count: the largest that needs no more
    // than `full_windows` windows and a twentieth of one.
    let target = per_window * full_windows as u64 + per_window / 20;
    let mut prs = (target / 5) as u32;
    let name = format!("bench/quota{tokens}");
    loop {
        let truth = FakeGithub::spawn(FakeConfig {
            repos: vec![RepoSpec::new(&name, prs)],
            ..FakeConfig::default()
        })
        .truth(&name);
        if ideal_requests(&truth) <= target {
            break;
        }
        prs -= 1;
    }
    let fake = FakeGithub::spawn(FakeConfig {
        repos: vec![RepoSpec::new(&name, prs)],
        limit: LIMIT,
        window: WINDOW,
        latency: QUOTA_LATENCY,
        record_requests: true,
        ..FakeConfig::default()
    });
    let truth = fake.truth(&name);
    let ideal = ideal_requests(&truth);
    let run = Run::new(seedq, &fake.url(), tokens, setup.database()).enqueued(&name);
    let seed = work(&run, &[], setup.processes);
    let stats = fake.stats();
    let log = fake.requests_log();
    drop(fake);

    // Windows per token, from the fake's log: each answer names its window's end.
    let mut windows: HashMap<String, Vec<u64>> = HashMap::new();
    // (token, window end) -> first request of that window.
    let mut starts: HashMap<(String, u64), u64> = HashMap::new();
    let mut first_request = u64::MAX;
    let mut first_reset = 0;
    for record in log.iter().filter(|r| r.counted) {
        let (Some(token), Some(reset)) = (&record.token, record.reset_ms) else {
            continue;
        };
        let start = starts.entry((token.clone(), reset)).or_insert(record.at_ms);
        *start = (*start).min(record.at_ms);
        let ends = windows.entry(token.clone()).or_default();
        if !ends.contains(&reset) {
            ends.push(reset);
        }
        if record.at_ms < first_request {
            first_request = record.at_ms;
            first_reset = reset;
        }
    }
    let windows_used = windows.values().map(Vec::len).max().unwrap_or(0);
    // How late each window after the first started, after the previous one's stated reset.
    let mut lateness = Vec::new();
    for (token, ends) in &mut windows {
        ends.sort_unstable();
        for pair in ends.windows(2) {
            let stated_reset = pair[0].div_ceil(1000) * 1000;
            let next_start = starts[&(token.clone(), pair[1])];
            lateness.push(next_start as f64 - stated_reset as f64);
        }
    }
    let late_ms = lateness.iter().sum::<f64>() / lateness.len().max(1) as f64;
    let ideal_windows = ideal.div_ceil(per_window) as usize;
    // The first window lasts until its stated reset (whole seconds), the others until
    // their end, and the last one's remainder takes one round trip.
    let first_window = Duration::from_millis(first_reset.div_ceil(1000) * 1000 - first_request);
    let ideal_wall = first_window + WINDOW * (ideal_windows as u32 - 2) + QUOTA_LATENCY;
    QuotaRun {
        prs,
        requests: stats.counted_requests,
        ideal_requests: ideal,
        refused: stats.refused_for_quota,
        wall: seed.work_wall,
        ideal_wall,
        windows: windows_used,
        ideal_windows,
        late_ms,
    }
}

struct BulkRun {
    requests: u64,
    ideal_requests: u64,
    refetched: u64,
    small_pages: u64,
    check_run_requests: u64,
    ideal_check_runs: u64,
    wall: Duration,
    cpu: Duration,
    peak_rss_kb: u64,
    db_bytes: u64,
}

/// A seed of `prs` PRs with unlimited quota.
fn bulk_run(seedq: &Path, prs: u32, tokens: usize, latency: Duration, setup: Setup) -> BulkRun {
    let name = format!("bench/bulk{prs}");
    let fake = FakeGithub::spawn(FakeConfig {
        repos: vec![RepoSpec::new(&name, prs)],
        limit: u32::MAX,
        latency,
        record_requests: false,
        ..FakeConfig::default()
    });
    let truth = fake.truth(&name);
    let run = Run::new(seedq, &fake.url(), tokens, setup.database()).enqueued(&name);
    let seed = work(&run, &[], setup.processes);
    let stats = fake.stats();
    drop(fake);
    BulkRun {
        requests: stats.counted_requests,
        ideal_requests: ideal_requests(&truth),
        refetched: api_pages(&stats).filter(|(_, &n)| n > 1).count() as u64,
        small_pages: small_pages(&stats),
        check_run_requests: stats
            .pages_served
            .keys()
            .filter(|p| p.contains("/check-runs"))
            .count() as u64,
        ideal_check_runs: truth.per_pr.iter().map(|p| pages(p.check_runs)).sum(),
        wall: seed.work_wall,
        cpu: seed.cpu,
        peak_rss_kb: seed.peak_rss_kb,
        db_bytes: seed.db_bytes,
    }
}

/// The pages of the repository served (`/rate_limit` is free and asked once per token).
fn api_pages(stats: &Stats) -> impl Iterator<Item = (&String, &u64)> {
    stats
        .pages_served
        .iter()
        .filter(|(path, _)| !path.starts_with("/rate_limit"))
}

/// List pages (every route but a PR's detail) asked without `per_page=100`.
fn small_pages(stats: &Stats) -> u64 {
    api_pages(stats)
        .filter(|(path, _)| {
            let detail = path
                .rsplit_once("/pulls/")
                .is_some_and(|(_, n)| n.chars().all(|c| c.is_ascii_digit()));
            !detail && !path.contains("per_page=100")
        })
        .count() as u64
}

/// Pages of 100 needed for `items` (an empty list still takes one request).
fn pages(items: u64) -> u64 {
    items.max(1).div_ceil(100)
}

/// The requests a clean seed needs: one list page per 100 PRs, and per PR its detail
/// and the pages of its commits, reviews, files and head commit's check runs.
fn ideal_requests(truth: &Truth) -> u64 {
    let per_pr: u64 = truth
        .per_pr
        .iter()
        .map(|p| 1 + pages(p.commits) + pages(p.reviews) + pages(p.files) + pages(p.check_runs))
        .sum();
    pages(truth.prs) + per_pr
}

struct Seed {
    work_wall: Duration,
    /// The highest of the processes'.
    peak_rss_kb: u64,
    /// CPU time of `seedq work` (user + system, all processes).
    cpu: Duration,
    db_bytes: u64,
}

/// A seed's temporary directory and database (a file inside, or a PostgreSQL database
/// of its own), and how to run `seedq` on it: the database, API URL and tokens in the
/// environment, never in argv.
struct Run {
    dir: tempfile::TempDir,
    seedq: PathBuf,
    api_url: String,
    tokens: Vec<String>,
    postgres: Option<pg_server::Scratch>,
}

impl Run {
    /// A fresh directory and database, for `tokens` bench tokens.
    fn new(
        seedq: &Path,
        api_url: &str,
        tokens: usize,
        postgres: Option<pg_server::Scratch>,
    ) -> Run {
        Run {
            dir: tempfile::tempdir().expect("temp dir"),
            seedq: seedq.to_owned(),
            api_url: api_url.to_owned(),
            tokens: (0..tokens).map(|i| format!("ghp_bench{i:027}")).collect(),
            postgres,
        }
    }

    /// A fresh SQLite run with `repo` enqueued.
    fn enqueue(seedq: &Path, api_url: &str, repo: &str, tokens: usize) -> Run {
        Run::new(seedq, api_url, tokens, None).enqueued(repo)
    }

    /// This run, once `seedq enqueue repo` succeeded.
    fn enqueued(self, repo: &str) -> Run {
        let status = self
            .command(&["enqueue", repo])
            .stdout(Stdio::null())
            .status()
            .expect("run seedq enqueue");
        assert!(status.success(), "seedq enqueue failed: {status}");
        self
    }

    /// The SQLite file (whether or not it is the run's database).
    fn db(&self) -> PathBuf {
        self.dir.path().join("seedq.db")
    }

    /// `--db`: the PostgreSQL database's URL, or the SQLite file.
    fn location(&self) -> String {
        match &self.postgres {
            Some(scratch) => scratch.url.clone(),
            None => self.db().to_string_lossy().into_owned(),
        }
    }

    /// The database's size on disk: the SQLite file and its WAL, or PostgreSQL's
    /// `pg_database_size` (tables, indexes and TOAST).
    fn bytes(&self) -> u64 {
        match &self.postgres {
            Some(scratch) => pg_server::run(&scratch.url, |mut conn| async move {
                sqlx::query_scalar::<_, i64>("SELECT pg_database_size(current_database())")
                    .fetch_one(&mut conn)
                    .await
            })
            .map_or(0, |n| n as u64),
            None => ["seedq.db", "seedq.db-wal"]
                .iter()
                .filter_map(|f| std::fs::metadata(self.dir.path().join(f)).ok())
                .map(|m| m.len())
                .sum(),
        }
    }

    /// `seedq ARGS` on this run's database.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.seedq);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SEEDQ_DB", self.location())
            .env("GITHUB_API_URL", &self.api_url)
            .env("GITHUB_SEEDING_TOKENS", self.tokens.join(","))
            // REST unless the run says otherwise (`--api` in `work_args`).
            .env("SEEDQ_API", "rest")
            // The fake is far faster than GitHub's per-minute secondary limits.
            .env("SEEDQ_REST_PER_MINUTE", "0")
            .env("SEEDQ_GRAPHQL_PER_MINUTE", "0")
            .env("RUST_LOG", "warn")
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        cmd
    }
}

/// Runs `seedq enqueue` then `seedq work` on a fresh SQLite file.
fn seed(seedq: &Path, api_url: &str, repo: &str, tokens: usize, work_args: &[&str]) -> Seed {
    work(&Run::enqueue(seedq, api_url, repo, tokens), work_args, 1)
}

/// Runs `processes` × `seedq work` on the run's database until all exit, polling their
/// peak RSS and CPU time.
fn work(run: &Run, work_args: &[&str], processes: usize) -> Seed {
    let mut args = vec!["work"];
    args.extend_from_slice(work_args);
    let started = Instant::now();
    let mut children: Vec<_> = (0..processes)
        .map(|_| run.command(&args).spawn().expect("run seedq work"))
        .collect();
    let mut peak_rss_kb = 0;
    let mut cpu_ticks = vec![0; processes];
    let mut running = processes;
    while running > 0 {
        running = 0;
        for (child, ticks) in children.iter_mut().zip(&mut cpu_ticks) {
            if let Some(kb) = vm_hwm_kb(&PathBuf::from(format!("/proc/{}/status", child.id()))) {
                peak_rss_kb = peak_rss_kb.max(kb);
            }
            if let Some(now) = cpu_ticks_of(&PathBuf::from(format!("/proc/{}/stat", child.id()))) {
                *ticks = (*ticks).max(now);
            }
            match child.try_wait().expect("wait for seedq work") {
                Some(status) => assert!(status.success(), "seedq work failed: {status}"),
                None => running += 1,
            }
        }
        if running > 0 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Seed {
        work_wall: started.elapsed(),
        peak_rss_kb,
        // Clock ticks are 1/100 s on Linux; the last poll is at most 20 ms before exit.
        cpu: Duration::from_millis(cpu_ticks.iter().sum::<u64>() * 10),
        db_bytes: run.bytes(),
    }
}

/// User + system CPU time of a process, in clock ticks (`/proc/PID/stat` fields 14, 15).
fn cpu_ticks_of(stat: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(stat).ok()?;
    let mut fields = text.rsplit_once(')')?.1.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

fn vm_hwm_kb(status: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(status).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `target/release/seedq`, beside `target/release/examples/bench`.
fn seedq_binary() -> PathBuf {
    let me = std::env::current_exe().expect("current exe");
    let release = me
        .parent()
        .and_then(Path::parent)
        .expect("target/release/examples/bench");
    let seedq = release.join("seedq");
    assert!(
        seedq.exists(),
        "{} is missing: run `cargo build --release --bin seedq` (scripts/bench does)",
        seedq.display()
    );
    seedq
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// The one table: figure, ideal, and their ratio where it means something.
#[derive(Default)]
struct Table {
    rows: Vec<[String; 4]>,
}

impl Table {
    fn section(&mut self, title: &str) {
        self.rows.push([
            format!("## {title}"),
            String::new(),
            String::new(),
            String::new(),
        ]);
    }

    fn row(&mut self, what: &str, measured: String, ideal: String, ratio: String) {
        self.rows.push([what.to_owned(), measured, ideal, ratio]);
    }

    fn print(&self) {
        let header = ["", "measured", "ideal", "ideal ÷ measured"];
        let width = |i: usize| {
            self.rows
                .iter()
                .filter(|r| !r[0].starts_with("## "))
                .map(|r| r[i].chars().count())
                .chain([header[i].chars().count()])
                .max()
                .unwrap_or(0)
        };
        let widths = [width(0), width(1), width(2), width(3)];
        let line = |cells: [&str; 4]| {
            let padded: Vec<String> = cells
                .iter()
                .zip(widths)
                .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
                .collect();
            format!("| {} |", padded.join(" | "))
        };
        println!("{}", line(header));
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        println!("|-{}-|", rule.join("-|-"));
        for row in &self.rows {
            if let Some(title) = row[0].strip_prefix("## ") {
                let bold = format!("**{title}**");
                println!(
                    "| {bold}{} | | | |",
                    " ".repeat(widths[0].saturating_sub(bold.chars().count()))
                );
            } else {
                println!("{}", line([&row[0], &row[1], &row[2], &row[3]]));
            }
        }
    }
}
