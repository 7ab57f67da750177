//! The good-citizen part of the benchmark (`--only polite`): the setting of issue 12, a
//! server that allows 3 requests in flight per token, 2 tokens and `--workers 8`. How
//! many requests secondary limits refuse, and the throughput beside the most the server
//! allows (6 requests in flight at once). `SEEDQ_BENCH_BASELINE=PATH` runs another
//! `seedq` binary the same way beside it (an earlier build, before adaptive concurrency).

use super::fake_github::{FakeConfig, FakeGithub, Faults, RepoSpec};
use super::{work, Run, Table};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Requests the fake lets each token have in flight.
const IN_FLIGHT: u32 = 3;
/// Tokens, and the workers sharing them.
const TOKENS: usize = 2;
const WORKERS: &str = "8";
/// Time to answer a request.
const LATENCY: Duration = Duration::from_millis(30);

pub fn part(table: &mut Table, seedq: &Path, short: bool) {
    let prs = if short { 60 } else { 300 };
    let mut binaries = vec![("this build", seedq.to_owned())];
    if let Some(baseline) = std::env::var_os("SEEDQ_BENCH_BASELINE") {
        binaries.push(("baseline", PathBuf::from(baseline)));
    }
    // The most the server allows: every token's places busy all the time.
    let ceiling = (TOKENS as u32 * IN_FLIGHT) as f64 / LATENCY.as_secs_f64();
    for (which, binary) in binaries {
        let name = "bench/polite";
        let fake = FakeGithub::spawn(FakeConfig {
            repos: vec![RepoSpec::new(name, prs)],
            limit: u32::MAX,
            latency: LATENCY,
            max_in_flight_per_token: Some(IN_FLIGHT),
            faults: Faults {
                secondary_retry_after: Some(1),
                ..Faults::default()
            },
            record_requests: false,
            ..FakeConfig::default()
        });
        let run = Run::new(&binary, &fake.url(), TOKENS, None).enqueued(name);
        let seed = work(&run, &["--workers", WORKERS, "--progress", "off"], 1);
        let stats = fake.stats();
        drop(fake);
        let refused = stats.secondary_limited + stats.sent_during_secondary_penalty;
        let pages = stats.counted_requests;
        let rate = pages as f64 / seed.work_wall.as_secs_f64();
        table.section(&format!(
            "secondary limits ({which}): {IN_FLIGHT} requests in flight per token, {TOKENS} \
             tokens, --workers {WORKERS}, {} ms latency, {prs} PRs, retry-after 1 s",
            LATENCY.as_millis()
        ));
        table.row(
            "requests refused by secondary limits",
            format!(
                "{refused} of {} ({:.1} %; {} during a penalty)",
                stats.total_requests,
                refused as f64 * 100.0 / stats.total_requests.max(1) as f64,
                stats.sent_during_secondary_penalty
            ),
            "≤ 5 %".into(),
            String::new(),
        );
        table.row(
            "pages per second",
            format!(
                "{rate:.0} ({pages} pages in {:.1} s)",
                seed.work_wall.as_secs_f64()
            ),
            format!("{ceiling:.0} (all places busy)"),
            format!("{:.2}", rate / ceiling),
        );
    }
}
