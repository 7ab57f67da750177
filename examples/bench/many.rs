//! The many-repositories part of the benchmark (`--only many`): a night of 1,000
//! repositories of 1 to 500 PRs (most small, a few large: `RepoSpec::many`), enqueued
//! with `enqueue --org` and seeded by one `seedq work` with 20 tokens over REST, quota not
//! binding. Measures the queue's cost, peak memory, the database's size, and how long
//! `status` and `status --json` take at several moments of the run.

use super::fake_github::{FakeConfig, FakeGithub, RepoSpec};
use super::{ideal_requests, work, Run, Table};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Tokens of the night.
const TOKENS: usize = 20;

pub fn part(table: &mut Table, broken: &mut Vec<String>, seedq: &Path, short: bool) {
    let (count, max_prs) = if short { (100, 100) } else { (1000, 500) };
    let repos = RepoSpec::many("night", count, 1..=max_prs, 7);
    let names: Vec<String> = repos.iter().map(|r| r.full_name.clone()).collect();
    let fake = FakeGithub::spawn(FakeConfig {
        repos,
        limit: u32::MAX,
        record_requests: false,
        ..FakeConfig::default()
    });
    let mut prs = 0;
    // The org listing's pages, then every repository's.
    let mut ideal = u64::from(count).div_ceil(100);
    for name in &names {
        let truth = fake.truth(name);
        prs += truth.prs;
        ideal += ideal_requests(&truth);
    }
    let run = Run::new(seedq, &fake.url(), TOKENS, None);
    let status = run
        .command(&["enqueue", "--org", "night"])
        .stdout(Stdio::null())
        .status()
        .expect("run seedq enqueue");
    assert!(status.success(), "seedq enqueue --org failed: {status}");

    // `status` and `status --json` while the night runs, every few seconds.
    let every = Duration::from_secs(if short { 1 } else { 10 });
    let mut samples: Vec<(f64, Duration, Duration)> = Vec::new();
    let seed = std::thread::scope(|scope| {
        let started = Instant::now();
        let worker = scope.spawn(|| work(&run, &["--progress", "off"], 1));
        while !worker.is_finished() {
            std::thread::sleep(every);
            if worker.is_finished() {
                break;
            }
            let text = timed(|| run.command(&["status"]).output());
            let json = timed(|| run.command(&["status", "--json"]).output());
            samples.push((started.elapsed().as_secs_f64(), text, json));
        }
        worker.join().expect("the work thread")
    });
    let stats = fake.stats();
    drop(fake);
    let requests = stats.counted_requests;
    if requests != ideal {
        broken.push(format!(
            "many repositories: {requests} requests ({ideal} needed)"
        ));
    }
    let slowest = samples
        .iter()
        .map(|&(_, text, json)| text.max(json))
        .max()
        .unwrap_or_default();
    if !samples.is_empty() && slowest > Duration::from_secs(1) {
        println!("many repositories: a status took {slowest:?} (target < 1 s)");
    }
    table.section(&format!(
        "many repositories: {count} repositories of 1 to {max_prs} PRs ({prs} PRs), `enqueue --org`, {TOKENS} tokens, REST, unlimited quota"
    ));
    table.row(
        "requests sent (jobs)",
        format!("{requests}"),
        format!("{ideal}"),
        String::new(),
    );
    table.row(
        "queue overhead",
        format!(
            "{:.0} jobs/s",
            requests as f64 / seed.work_wall.as_secs_f64()
        ),
        "≥ 2000 jobs/s".into(),
        String::new(),
    );
    table.row(
        "CPU time of seedq work per job",
        format!("{:.0} µs", seed.cpu.as_secs_f64() * 1e6 / requests as f64),
        String::new(),
        String::new(),
    );
    table.row(
        "peak RSS of seedq work",
        format!("{:.1} MB", seed.peak_rss_kb as f64 / 1024.0),
        "< 100 MB, flat".into(),
        String::new(),
    );
    // The slowest pair, and one pair at each quarter of the run.
    let quarters: Vec<String> = (1..=4)
        .filter_map(|q| samples.get((samples.len() * q / 4).saturating_sub(1)))
        .map(|(at, text, json)| format!("{at:.0} s: {} / {}", text.as_millis(), json.as_millis()))
        .collect();
    let slowest_text = samples.iter().map(|s| s.1).max().unwrap_or_default();
    let slowest_json = samples.iter().map(|s| s.2).max().unwrap_or_default();
    table.row(
        "status / status --json during the run (ms)",
        format!(
            "{} samples, slowest {} / {}; {}",
            samples.len(),
            slowest_text.as_millis(),
            slowest_json.as_millis(),
            quarters.join(", ")
        ),
        "< 1000 ms".into(),
        String::new(),
    );
    table.row(
        "database size",
        format!(
            "{:.1} MB ({:.2} KB per PR, {:.0} B per job)",
            seed.db_bytes as f64 / 1048576.0,
            seed.db_bytes as f64 / 1024.0 / prs as f64,
            seed.db_bytes as f64 / requests as f64
        ),
        String::new(),
        String::new(),
    );
}

/// How long `f` took.
fn timed<T>(f: impl FnOnce() -> T) -> Duration {
    let started = Instant::now();
    let _ = f();
    started.elapsed()
}
