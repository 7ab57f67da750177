//! The GraphQL part of the benchmark: the same generated repositories seeded through
//! GraphQL (`--api auto`, `--api graphql`), figures in quota units (REST requests +
//! GraphQL points), with the ideal beside each:
//!
//! - unlimited quota: quota units per PR against REST's requests per PR; the ideal is
//!   the list's mark (1 REST request), a point per list page of 100 and a point per
//!   149 connection pages (GitHub's formula rounds 149 requests to 1 point);
//! - both buckets binding (1 token, REST and GraphQL quotas per window): PRs complete
//!   per window through `--api auto` against the sum of `--api rest` and `--api
//!   graphql` over the same windows (and each beside what the data allows it: REST its
//!   quota ÷ requests per PR, GraphQL its points ÷ the ideal points per PR); refusals
//!   per bucket and window;
//! - a heavy mix (a fifth of the PRs have hundreds of files) against a server that
//!   times out on heavy answers: the share of queries that time out, and the batch size
//!   learned.

use crate::fake_github::{self, FakeConfig, FakeGithub, RepoSpec, Stats, Truth};
use crate::{ideal_requests, pages, ratio, seed, Run, Table, QUOTA_LATENCY, WINDOW};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The connection pages (GraphQL's as REST's, 100 each) a seed of `truth` needs.
fn connection_pages(truth: &Truth) -> u64 {
    truth
        .per_pr
        .iter()
        .map(|p| pages(p.commits) + pages(p.reviews) + pages(p.files) + pages(p.check_runs))
        .sum()
}

/// The fewest GraphQL points a seed of `truth` needs: a point per list page, a point
/// per 149 connection pages.
fn ideal_points(truth: &Truth) -> u64 {
    pages(truth.prs) + connection_pages(truth).div_ceil(149)
}

/// Quota units a run spent: REST requests counted and GraphQL points charged.
fn units(stats: &Stats) -> u64 {
    stats.counted_requests + stats.graphql_points
}

/// Connection pages the fake served more than once.
pub fn refetched(stats: &Stats) -> u64 {
    stats
        .graphql_items_served
        .values()
        .filter(|&&n| n > 1)
        .map(|n| n - 1)
        .sum()
}

/// Unlimited quota: quota units per PR through GraphQL against REST's requests.
pub fn units_per_pr(table: &mut Table, broken: &mut Vec<String>, seedq: &Path, prs: u32) {
    let name = format!("bench/graphql{prs}");
    let fake = FakeGithub::spawn(FakeConfig {
        repos: vec![RepoSpec::new(&name, prs)],
        limit: u32::MAX,
        graphql_limit: u32::MAX,
        record_requests: false,
        ..FakeConfig::default()
    });
    let truth = fake.truth(&name);
    let run = seed(seedq, &fake.url(), &name, 4, &["--api", "auto"]);
    let stats = fake.stats();
    drop(fake);
    let (spent, ideal) = (units(&stats), 1 + ideal_points(&truth));
    let rest = ideal_requests(&truth);
    if stats.counted_requests != 1 || refetched(&stats) > 0 || stats.graphql_timeouts > 0 {
        broken.push(format!(
            "graphql, {prs} PRs: {} REST requests (1 needed: the list's mark), {} pages \
             fetched twice, {} timeouts",
            stats.counted_requests,
            refetched(&stats),
            stats.graphql_timeouts
        ));
    }
    table.section(&format!(
        "GraphQL, unlimited quota, no latency: {prs} PRs, 4 tokens, --api auto"
    ));
    let per_pr = |n: u64| n as f64 / prs as f64;
    table.row(
        "quota units per PR (REST requests + GraphQL points)",
        format!("{:.4} ({spent} units)", per_pr(spent)),
        format!("{:.4} ({ideal} units)", per_pr(ideal)),
        ratio(ideal as f64, spent as f64),
    );
    table.row(
        "REST's requests per PR, for comparison",
        format!("{:.3}", per_pr(rest)),
        "≤ 0.25 through GraphQL".into(),
        format!("{:.0} × fewer", rest as f64 / spent as f64),
    );
    table.row(
        "GraphQL queries / points / REST requests",
        format!(
            "{} / {} / {}",
            stats.graphql_queries, stats.graphql_points, stats.counted_requests
        ),
        format!("- / {} / 1", ideal_points(&truth)),
        String::new(),
    );
    table.row(
        "connection pages fetched twice",
        format!("{}", refetched(&stats)),
        "0".into(),
        String::new(),
    );
    table.row(
        "wall time of seedq work",
        format!("{:.2} s", run.work_wall.as_secs_f64()),
        String::new(),
        String::new(),
    );
    table.row(
        "peak RSS of seedq work",
        format!("{:.1} MB", run.peak_rss_kb as f64 / 1024.0),
        "< 100 MB, flat".into(),
        String::new(),
    );
}

/// REST requests and GraphQL points per window of the both-buckets runs.
const REST_LIMIT: u32 = 150;
const GRAPHQL_LIMIT: u32 = 3;

/// What a run with one token did in its first windows.
struct Windows {
    /// PRs whose every page was fetched.
    complete: u64,
    stats: Stats,
}

/// Runs `seedq work --api API` with one token on a repository bigger than `windows`
/// windows of quota can fetch, and stops it (SIGINT, as Ctrl-C does) halfway through
/// window `windows`, when that window's quota is long spent: what it completed is what
/// `windows` windows of quota give.
fn in_windows(seedq: &Path, api: &str, windows: u32) -> Windows {
    let name = format!("bench/{api}{windows}");
    let fake = FakeGithub::spawn(FakeConfig {
        repos: vec![RepoSpec::new(&name, 200 * (windows + 1))],
        limit: REST_LIMIT,
        graphql_limit: GRAPHQL_LIMIT,
        window: WINDOW,
        latency: QUOTA_LATENCY,
        record_requests: true,
        ..FakeConfig::default()
    });
    let run = Run::enqueue(seedq, &fake.url(), &name, 1);
    let mut work = run
        .command(&["work", "--api", api, "--progress", "off"])
        .stderr(Stdio::null())
        .spawn()
        .expect("run seedq work");
    // The first window ends at the reset its first charged answer stated (ms).
    let started = Instant::now();
    let first_end = loop {
        let charged = fake
            .requests_log()
            .into_iter()
            .find(|r| r.counted || r.points > 0);
        if let Some(end) = charged.and_then(|r| r.reset_ms) {
            break end;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no request charged"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    // Window k ends at `first_end + (k - 1) × WINDOW` (plus the lateness of each
    // return); its quota goes in its first moments.
    assert!(
        windows >= 2,
        "the first window is cut short: measure over two or more"
    );
    let window_ms = WINDOW.as_millis() as u64;
    let stop_at = first_end + (u64::from(windows) - 2) * window_ms + window_ms * 6 / 10;
    let now = fake_github::limits::epoch_ms();
    std::thread::sleep(Duration::from_millis(stop_at.saturating_sub(now)));
    let _ = Command::new("kill")
        .args(["-INT", &work.id().to_string()])
        .status();
    let _ = work.wait();
    let stats = fake.stats();
    Windows {
        complete: complete_prs(&run.db()),
        stats,
    }
}

/// PRs of the database none of whose jobs is left.
fn complete_prs(db: &Path) -> u64 {
    use sqlx::Connection;
    let url = format!("sqlite://{}?mode=ro", db.display());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut conn = sqlx::SqliteConnection::connect(&url)
            .await
            .expect("open the bench database");
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pull_requests p WHERE NOT EXISTS (SELECT 1 FROM jobs j
             WHERE j.repo = p.repo AND j.pr_number = p.number AND j.state <> 'done')",
        )
        .fetch_one(&mut conn)
        .await
        .expect("count complete PRs") as u64
    })
}

/// One token whose two buckets both bind: PRs per window through `--api auto` against
/// the sum of REST alone (`--api rest`) and GraphQL alone (`--api graphql`), each
/// measured over the same windows; refusals per bucket and window.
pub fn both_buckets(table: &mut Table, broken: &mut Vec<String>, seedq: &Path, windows: u32) {
    let rest = in_windows(seedq, "rest", windows);
    let graphql = in_windows(seedq, "graphql", windows);
    let auto = in_windows(seedq, "auto", windows);
    // What the data allows each bucket alone, per window (from a sample of it).
    let sample = FakeGithub::spawn(FakeConfig {
        repos: vec![RepoSpec::new("bench/sample", 2000)],
        ..FakeConfig::default()
    })
    .truth("bench/sample");
    let rest_ideal = REST_LIMIT as f64 * sample.prs as f64 / ideal_requests(&sample) as f64;
    let graphql_ideal = GRAPHQL_LIMIT as f64 * sample.prs as f64 / ideal_points(&sample) as f64;
    let per_window = |w: &Windows| w.complete as f64 / windows as f64;
    let sum = per_window(&rest) + per_window(&graphql);
    let both = per_window(&auto);
    let refused = |w: &Windows| (w.stats.refused_for_quota, w.stats.graphql_refused);
    for (api, run) in [("rest", &rest), ("graphql", &graphql), ("auto", &auto)] {
        let (r, g) = refused(run);
        if r > u64::from(windows) || g > u64::from(windows) {
            broken.push(format!(
                "{api}: {r} REST and {g} GraphQL refusals in {windows} windows"
            ));
        }
    }
    table.section(&format!(
        "both buckets binding: 1 token × ({REST_LIMIT} requests + {GRAPHQL_LIMIT} points) \
         per {WINDOW:.2?} window, {} ms latency, PRs complete after {windows} windows",
        QUOTA_LATENCY.as_millis()
    ));
    table.row(
        "PRs per window, --api rest",
        format!("{:.1}", per_window(&rest)),
        format!("{rest_ideal:.1}"),
        ratio(rest_ideal, per_window(&rest)),
    );
    table.row(
        "PRs per window, --api graphql",
        format!("{:.1}", per_window(&graphql)),
        format!("{graphql_ideal:.1}"),
        ratio(graphql_ideal, per_window(&graphql)),
    );
    let floor = 0.95 * sum;
    table.row(
        "PRs per window, --api auto (both buckets)",
        format!("{both:.1} = {:.3} × (rest + graphql)", both / sum),
        format!("≥ {floor:.1} = 0.95 × {sum:.1}"),
        ratio(floor, both),
    );
    // Quota-bound: every unit of both buckets should go in each window.
    let (rest_quota, points_quota) = (
        u64::from(REST_LIMIT * windows),
        u64::from(GRAPHQL_LIMIT * windows),
    );
    table.row(
        "auto: REST requests / GraphQL points spent",
        format!(
            "{} / {}",
            auto.stats.counted_requests, auto.stats.graphql_points
        ),
        format!("{rest_quota} / {points_quota} ({windows} windows)"),
        format!(
            "utilization {:.3} / {:.3}",
            auto.stats.counted_requests as f64 / rest_quota as f64,
            auto.stats.graphql_points as f64 / points_quota as f64
        ),
    );
    table.row(
        "refused (REST / GraphQL): rest, graphql, auto",
        format!(
            "{:?}, {:?}, {:?}",
            refused(&rest),
            refused(&graphql),
            refused(&auto)
        ),
        format!("≤ {windows} each (1/bucket/window)"),
        String::new(),
    );
}

/// Files weigh this much in an answer's weight; an answer heavier than the threshold
/// times out (GitHub's 10 s, modelled).
const FILE_WEIGHT: u64 = 10;
const TIMEOUT_WEIGHT: u64 = 6000;

/// A fifth of the PRs heavy, a server that times out on heavy answers: how many
/// queries time out, and the batch learned.
pub fn heavy_mix(table: &mut Table, broken: &mut Vec<String>, seedq: &Path, prs: u32) {
    let name = format!("bench/heavy{prs}");
    let fake = FakeGithub::spawn(FakeConfig {
        repos: vec![RepoSpec::new(&name, prs).heavy(20)],
        limit: u32::MAX,
        graphql_limit: u32::MAX,
        graphql_timeout_weight: Some(TIMEOUT_WEIGHT),
        graphql_file_weight: FILE_WEIGHT,
        record_requests: false,
        ..FakeConfig::default()
    });
    let truth = fake.truth(&name);
    let run = seed(seedq, &fake.url(), &name, 4, &["--api", "auto"]);
    let stats = fake.stats();
    drop(fake);
    let share = stats.graphql_timeouts as f64 / stats.graphql_queries.max(1) as f64;
    if share > 0.05 {
        broken.push(format!(
            "heavy mix: {} of {} queries timed out",
            stats.graphql_timeouts, stats.graphql_queries
        ));
    }
    let spent = units(&stats);
    // No query may weigh more than the server's limit: the fewest points are the
    // answers' total weight over that limit (and never fewer than the cost formula's).
    let weight: u64 = truth
        .per_pr
        .iter()
        .map(|p| 1 + p.commits + p.reviews + p.check_runs + FILE_WEIGHT * p.files)
        .sum();
    let ideal = 1 + pages(truth.prs) + weight.div_ceil(TIMEOUT_WEIGHT).max(ideal_points(&truth));
    table.section(&format!(
        "GraphQL, heavy mix: {prs} PRs, a fifth with 100 to 1,200 files, answers over \
         {TIMEOUT_WEIGHT} items time out (a file weighs {FILE_WEIGHT}), --api auto"
    ));
    table.row(
        "queries timed out",
        format!(
            "{} of {} ({:.1} %)",
            stats.graphql_timeouts,
            stats.graphql_queries,
            share * 100.0
        ),
        "≤ 5 %".into(),
        String::new(),
    );
    table.row(
        "quota units per PR (timeouts are charged)",
        format!("{:.4} ({spent} units)", spent as f64 / prs as f64),
        format!("{:.4} ({ideal} units)", ideal as f64 / prs as f64),
        ratio(ideal as f64, spent as f64),
    );
    let rest = ideal_requests(&truth);
    table.row(
        "REST's requests per PR, for comparison",
        format!("{:.3}", rest as f64 / prs as f64),
        String::new(),
        format!("{:.0} × fewer", rest as f64 / spent as f64),
    );
    table.row(
        "REST requests (mark, files of PRs too heavy alone)",
        format!("{}", stats.counted_requests),
        String::new(),
        String::new(),
    );
    table.row(
        "wall time of seedq work",
        format!("{:.2} s", run.work_wall.as_secs_f64()),
        String::new(),
        String::new(),
    );
}
