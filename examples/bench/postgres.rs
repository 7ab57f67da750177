//! The PostgreSQL part of the benchmark (`--only postgres`): the queue's own cost with
//! one and with three `seedq work` processes on one database (as three hosts would run
//! them), three processes sharing two tokens while quota binds, and `copy-to` of a
//! SQLite seed. The server runs on the same 2 cores as everything else. Skipped, in one
//! line, when no server answers (`SEEDQ_TEST_POSTGRES` names it).

use super::fake_github::{FakeConfig, FakeGithub, RepoSpec};
use super::{
    api_pages, bulk_run, ideal_requests, pg_server, quota_run, Run, Setup, Table, LIMIT, WINDOW,
};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

const POSTGRES: Setup = Setup {
    postgres: true,
    processes: 1,
};

pub fn part(table: &mut Table, broken: &mut Vec<String>, seedq: &Path, short: bool) {
    if !pg_server::reachable() {
        println!(
            "PostgreSQL part skipped: no server answers at {} (point SEEDQ_TEST_POSTGRES at one)",
            pg_server::server()
        );
        return;
    }
    let prs = if short { 1000 } else { 5000 };
    for processes in [1, 3] {
        queue_overhead(table, broken, seedq, prs, processes);
    }
    for processes in [1, 3] {
        queue_overhead_graphql(table, broken, seedq, prs, processes);
    }
    shared_quota(table, broken, seedq, if short { 2 } else { 4 });
    copy_to(table, broken, seedq, if short { 4000 } else { 20000 });
}

/// Unlimited quota, no latency: what the queue costs on PostgreSQL.
fn queue_overhead(
    table: &mut Table,
    broken: &mut Vec<String>,
    seedq: &Path,
    prs: u32,
    processes: usize,
) {
    let setup = Setup {
        processes,
        ..POSTGRES
    };
    let run = bulk_run(seedq, prs, 4, Duration::ZERO, setup);
    if run.requests != run.ideal_requests || run.refetched > 0 {
        broken.push(format!(
            "PostgreSQL, {processes} process(es): {} requests ({} needed), {} pages fetched twice",
            run.requests, run.ideal_requests, run.refetched
        ));
    }
    table.section(&format!(
        "PostgreSQL, unlimited quota, no latency: {prs} PRs, 4 tokens, {processes} × seedq work"
    ));
    table.row(
        "requests sent / pages fetched twice",
        format!("{} / {}", run.requests, run.refetched),
        format!("{} / 0", run.ideal_requests),
        super::ratio(run.ideal_requests as f64, run.requests as f64),
    );
    table.row(
        "queue overhead (all processes, server included)",
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
        String::new(),
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

/// The same, through GraphQL (`--api auto`, `work`'s default): a query fetches the
/// pages of dozens of PRs, and its jobs are claimed, leased and finished together.
/// Jobs per second in the queue's own unit (a job is a page of one PR's endpoint, or
/// a list page, whichever API fetches it).
fn queue_overhead_graphql(
    table: &mut Table,
    broken: &mut Vec<String>,
    seedq: &Path,
    prs: u32,
    processes: usize,
) {
    let name = format!("bench/gql{prs}");
    let fake = FakeGithub::spawn(FakeConfig {
        repos: vec![RepoSpec::new(&name, prs)],
        limit: u32::MAX,
        graphql_limit: u32::MAX,
        record_requests: false,
        ..FakeConfig::default()
    });
    let setup = Setup {
        processes,
        ..POSTGRES
    };
    let run = Run::new(seedq, &fake.url(), 4, setup.database()).enqueued(&name);
    let seed = super::work(&run, &["--api", "auto"], processes);
    let stats = fake.stats();
    drop(fake);
    let jobs = count(&run, "SELECT count(*) FROM job_queue WHERE state = 'done'");
    let all = count(&run, "SELECT count(*) FROM job_queue");
    let refetched = super::graphql::refetched(&stats);
    if jobs != all || refetched > 0 || stats.graphql_timeouts > 0 {
        broken.push(format!(
            "PostgreSQL through GraphQL, {processes} process(es): {jobs} of {all} jobs done, \
             {refetched} pages fetched twice, {} timeouts",
            stats.graphql_timeouts
        ));
    }
    table.section(&format!(
        "PostgreSQL through GraphQL (--api auto), unlimited quota, no latency: {prs} PRs, \
         4 tokens, {processes} × seedq work"
    ));
    table.row(
        "jobs done / GraphQL queries / pages fetched twice",
        format!("{jobs} / {} / {refetched}", stats.graphql_queries),
        format!("{all} / – / 0"),
        String::new(),
    );
    table.row(
        "queue overhead (all processes, server included)",
        format!("{:.0} jobs/s", jobs as f64 / seed.work_wall.as_secs_f64()),
        "≥ 2000 jobs/s".into(),
        String::new(),
    );
    table.row(
        "CPU time of seedq work per job",
        format!(
            "{:.0} µs",
            seed.cpu.as_secs_f64() * 1e6 / jobs.max(1) as f64
        ),
        String::new(),
        String::new(),
    );
}

/// Three processes, two tokens, quota binding: the processes share each token's quota
/// through its row, so together they spend it as one process would.
fn shared_quota(table: &mut Table, broken: &mut Vec<String>, seedq: &Path, windows: usize) {
    let tokens = 2;
    let setup = Setup {
        processes: 3,
        ..POSTGRES
    };
    let run = quota_run(seedq, tokens, windows, setup);
    run.check(broken, "PostgreSQL, 3 processes", tokens);
    table.section(&format!(
        "PostgreSQL, quota binds: 3 × seedq work sharing {tokens} tokens × {LIMIT} per \
         {WINDOW:.2?} window"
    ));
    run.rows(table, tokens);
}

/// A finished SQLite seed of `prs` PRs moved to PostgreSQL with `copy-to`; `work` there
/// then has nothing to fetch.
fn copy_to(table: &mut Table, broken: &mut Vec<String>, seedq: &Path, prs: u32) {
    let name = format!("bench/copy{prs}");
    let fake = FakeGithub::spawn(FakeConfig {
        repos: vec![RepoSpec::new(&name, prs)],
        limit: u32::MAX,
        record_requests: false,
        ..FakeConfig::default()
    });
    let source = Run::enqueue(seedq, &fake.url(), &name, 4);
    super::work(&source, &[], 1);
    let dest = Run::new(seedq, &fake.url(), 4, POSTGRES.database());
    let started = Instant::now();
    let status = source
        .command(&["copy-to", &dest.location()])
        .stdout(Stdio::null())
        .status()
        .expect("run seedq copy-to");
    let copy_wall = started.elapsed();
    assert!(status.success(), "seedq copy-to failed: {status}");
    let rows = count(&dest, "SELECT count(*) FROM job_queue")
        + count(&dest, "SELECT count(*) FROM gh_pulls")
        + count(&dest, "SELECT count(*) FROM gh_pr_commits")
        + count(&dest, "SELECT count(*) FROM gh_pr_files");
    let before = fake.stats();
    let after_copy = super::work(&dest, &[], 1);
    let after = fake.stats();
    let fetched = after.counted_requests - before.counted_requests;
    let ideal = ideal_requests(&fake.truth(&name));
    if fetched > 0 || api_pages(&before).count() as u64 != ideal {
        broken.push(format!(
            "copy-to of {prs} PRs: {fetched} pages fetched again on PostgreSQL"
        ));
    }
    table.section(&format!(
        "copy-to: a finished {prs}-PR seed from SQLite to PostgreSQL"
    ));
    table.row(
        "copy-to time",
        format!(
            "{:.1} s ({:.0} rows/s of jobs, PRs, commits and files)",
            copy_wall.as_secs_f64(),
            rows as f64 / copy_wall.as_secs_f64()
        ),
        String::new(),
        String::new(),
    );
    table.row(
        "pages fetched by work on the copy",
        format!("{fetched} (in {:.1} s)", after_copy.work_wall.as_secs_f64()),
        "0".into(),
        String::new(),
    );
    table.row(
        "database size: SQLite file / PostgreSQL",
        format!(
            "{:.1} MB / {:.1} MB",
            source.bytes() as f64 / 1048576.0,
            dest.bytes() as f64 / 1048576.0
        ),
        String::new(),
        String::new(),
    );
}

fn count(run: &Run, sql: &'static str) -> i64 {
    let url = run.location();
    pg_server::run(&url, move |mut conn| async move {
        sqlx::query_scalar::<_, i64>(sql).fetch_one(&mut conn).await
    })
    .unwrap_or(0)
}
