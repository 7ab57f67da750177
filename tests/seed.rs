//! A full seed against the fake GitHub: every PR and every child row once, pagination
//! followed as given, caps and wrappers handled, replays harmless.

mod support;

use support::fake_github::{FakeConfig, FakeGithub, RepoSpec};
use support::harness::{refetched_pages, token, Harness};

fn fake(repos: &[(&str, u32)]) -> FakeGithub {
    FakeGithub::spawn(FakeConfig {
        repos: repos
            .iter()
            .map(|(name, n)| RepoSpec::new(name, *n))
            .collect(),
        ..FakeConfig::default()
    })
}

/// Compares every public view with the fake's ground truth.
fn assert_matches_truth(h: &Harness, fake: &FakeGithub, repo: &str) {
    let truth = fake.truth(repo);
    let q = |view: &str| {
        h.count(&format!(
            "SELECT count(*) FROM {view} WHERE repo = '{repo}'"
        ))
    };
    assert_eq!(q("pull_requests") as u64, truth.prs, "pull_requests");
    assert_eq!(q("pr_commits") as u64, truth.commits, "pr_commits");
    assert_eq!(q("pr_reviews") as u64, truth.reviews, "pr_reviews");
    assert_eq!(q("pr_files") as u64, truth.files, "pr_files");
    assert_eq!(q("pr_check_runs") as u64, truth.check_runs, "pr_check_runs");
    for pr in &truth.per_pr {
        let n = pr.number;
        assert_eq!(
            one_pr(h, repo, "pr_commits", n),
            pr.commits,
            "commits of #{n}"
        );
        assert_eq!(one_pr(h, repo, "pr_files", n), pr.files, "files of #{n}");
        assert_eq!(
            one_pr(h, repo, "pr_reviews", n),
            pr.reviews,
            "reviews of #{n}"
        );
        assert_eq!(
            one_pr(h, repo, "pr_check_runs", n),
            pr.check_runs,
            "check runs of #{n}"
        );
        let additions = h.count(&format!(
            "SELECT coalesce(additions, -1) FROM pull_requests WHERE repo = '{repo}' AND number = {n}"
        ));
        assert_eq!(additions, pr.additions as i64, "additions of #{n}");
        let title = h.texts(&format!(
            "SELECT title FROM pull_requests WHERE repo = '{repo}' AND number = {n}"
        ));
        assert_eq!(title, vec![Some(pr.title.clone())], "title of #{n}");
    }
}

fn one_pr(h: &Harness, repo: &str, view: &str, n: u64) -> u64 {
    h.count(&format!(
        "SELECT count(*) FROM {view} WHERE repo = '{repo}' AND pr_number = {n}"
    )) as u64
}

#[test]
fn seed_stores_every_pr_and_child_row_exactly_once() {
    let fake = fake(&[("acme/widgets", 23)]);
    let h = Harness::new(&fake.url(), &[token(1), token(2)]);
    h.enqueue("acme/widgets");
    h.seedq()
        .args(["work", "--workers", "3"])
        .assert()
        .success();

    assert_matches_truth(&h, &fake, "acme/widgets");
    h.assert_all_done();
    // PR #3 has 300 commits upstream; the API serves 250 and so do we.
    assert_eq!(one_pr(&h, "acme/widgets", "pr_commits", 3), 250);
    // Nothing was fetched twice in a clean run.
    let stats = fake.stats();
    let twice = refetched_pages(&stats.pages_served);
    assert!(twice.is_empty(), "pages served more than once: {twice:?}");
    // Every request asked for 100 per page (except single-object details).
    for record in fake.requests_log() {
        let path = &record.path;
        let single = path.ends_with("/rate_limit")
            || path
                .rsplit('/')
                .next()
                .is_some_and(|last| last.parse::<u64>().is_ok());
        assert!(single || path.contains("per_page=100"), "{path}");
    }
}

#[test]
fn list_pagination_follows_repositories_id_links() {
    let fake = fake(&[("acme/big", 230)]);
    let h = Harness::new(&fake.url(), &[token(1)]);
    h.enqueue("acme/big");
    h.seedq()
        .args(["work", "--workers", "4"])
        .assert()
        .success();
    assert_eq!(h.count("SELECT count(*) FROM pull_requests"), 230);
    let followed = fake
        .requests_log()
        .iter()
        .filter(|r| r.path.starts_with("/repositories/") && r.path.contains("/pulls?"))
        .count();
    assert_eq!(
        followed, 2,
        "pages 2 and 3 of the list come from link headers"
    );
    assert_matches_truth(&h, &fake, "acme/big");
}

#[test]
fn enqueue_twice_adds_no_work_and_reseeding_writes_no_duplicates() {
    let fake = fake(&[("acme/widgets", 12)]);
    let h = Harness::new(&fake.url(), &[token(1)]);
    h.enqueue("acme/widgets");
    h.seedq()
        .args(["enqueue", "acme/widgets"])
        .assert()
        .success()
        .stdout(predicates::str::contains("already queued"));
    assert_eq!(h.count("SELECT count(*) FROM jobs"), 1);
    h.seedq().arg("work").assert().success();
    let jobs = h.count("SELECT count(*) FROM jobs");

    // Replay every page: requeue all jobs and run again. Rows must not double.
    h.execute("UPDATE job_queue SET state = 'queued', run_at = 0");
    h.seedq().arg("work").assert().success();
    assert_eq!(h.count("SELECT count(*) FROM jobs"), jobs);
    assert_matches_truth(&h, &fake, "acme/widgets");
}

#[test]
fn workers_finishing_together_share_a_transaction() {
    let fake = fake(&[("acme/widgets", 40)]);
    let h = Harness::new(&fake.url(), &[token(1), token(2)]);
    h.enqueue("acme/widgets");
    let out = h
        .seedq()
        .args(["-v", "work", "--workers", "8", "--progress", "off"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    // "group commit: 215 job writes in 61 transactions"
    let counts: Vec<u64> = stderr
        .lines()
        .find_map(|line| line.split_once("group commit: "))
        .map(|(_, rest)| {
            rest.split_whitespace()
                .filter_map(|word| word.parse().ok())
                .collect()
        })
        .unwrap_or_else(|| panic!("no group commit line in:\n{stderr}"));
    let [writes, transactions] = counts[..] else {
        panic!("unexpected group commit line in:\n{stderr}");
    };
    let requests = fake.stats().counted_requests;
    assert!(
        writes >= requests,
        "{writes} writes for {requests} requests"
    );
    assert!(
        transactions < writes,
        "{writes} job writes in {transactions} transactions: none shared"
    );
    assert_matches_truth(&h, &fake, "acme/widgets");
}

#[test]
fn several_repositories_are_seeded_in_one_run() {
    let fake = fake(&[("acme/one", 5), ("other-org/two.rs", 7)]);
    let h = Harness::new(&fake.url(), &[token(1)]);
    h.seedq()
        .args(["enqueue", "acme/one", "other-org/two.rs"])
        .assert()
        .success();
    h.seedq().arg("work").assert().success();
    assert_matches_truth(&h, &fake, "acme/one");
    assert_matches_truth(&h, &fake, "other-org/two.rs");
}

#[test]
fn missing_repository_fails_its_job_with_a_clear_message() {
    let fake = fake(&[("acme/widgets", 2)]);
    let h = Harness::new(&fake.url(), &[token(1)]);
    h.enqueue("acme/nope");
    h.seedq()
        .arg("work")
        .assert()
        .code(3)
        .stderr(predicates::str::contains("acme/nope"))
        .stderr(predicates::str::contains("not found"));
    let errors = h.texts("SELECT last_error FROM jobs WHERE state = 'failed'");
    assert_eq!(errors.len(), 1);
    let error = errors[0].clone().unwrap();
    assert!(
        error.contains("acme/nope") && error.contains("404"),
        "{error}"
    );
    // Final: one request, no retries.
    let tries = fake
        .requests_log()
        .iter()
        .filter(|r| r.path.contains("acme/nope"))
        .count();
    assert_eq!(tries, 1);
    h.seedq()
        .arg("status")
        .assert()
        .success()
        .stdout(predicates::str::contains("1 failed"));
}

#[test]
fn hostile_title_is_stored_as_a_title() {
    let fake = fake(&[("acme/widgets", 23)]);
    let h = Harness::new(&fake.url(), &[token(1)]);
    h.enqueue("acme/widgets");
    h.seedq().arg("work").assert().success();
    let titles = h.texts("SELECT title FROM pull_requests WHERE title LIKE '%DROP TABLE%'");
    assert_eq!(titles.len(), 1, "the fake serves one such title");
    assert!(
        h.count("SELECT count(*) FROM jobs") > 0,
        "jobs table still there"
    );
}

/// The CPUs a process may run on, from `/proc/PID/status` (e.g. "0-1" or "1").
#[cfg(target_os = "linux")]
fn cpus_allowed(pid: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(|v| v.trim().to_owned())
        .unwrap_or_default()
}

/// `work` keeps itself on one CPU (README, "Performance"); `SEEDQ_ONE_CPU=0` lets it
/// run anywhere; another value is refused.
#[cfg(target_os = "linux")]
#[test]
fn work_runs_on_one_cpu_unless_told_otherwise() {
    use std::process::Stdio;
    let fake = FakeGithub::spawn(FakeConfig {
        repos: vec![RepoSpec::new("acme/widgets", 20)],
        latency: std::time::Duration::from_millis(20),
        ..FakeConfig::default()
    });
    let mine = cpus_allowed("self");
    for (setting, expect_one) in [(None, true), (Some("1"), true), (Some("0"), false)] {
        let h = Harness::new(&fake.url(), &[token(1)]);
        h.enqueue("acme/widgets");
        let mut cmd = h.command();
        if let Some(value) = setting {
            cmd.env("SEEDQ_ONE_CPU", value);
        }
        let mut child = cmd
            .args(["work", "--workers", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Read it while the runtime's threads run (about 100 requests of 20 ms).
        std::thread::sleep(std::time::Duration::from_millis(500));
        let allowed = cpus_allowed(&child.id().to_string());
        let status = child.wait().unwrap();
        assert!(status.success(), "{setting:?}: {status}");
        let single = !allowed.is_empty() && !allowed.contains([',', '-']);
        if expect_one {
            assert!(single, "{setting:?}: work may run on CPUs {allowed}");
        } else {
            assert_eq!(allowed, mine, "{setting:?}");
        }
    }
    let h = Harness::new(&fake.url(), &[token(1)]);
    h.enqueue("acme/widgets");
    let out = h
        .command()
        .env("SEEDQ_ONE_CPU", "yes")
        .arg("work")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SEEDQ_ONE_CPU"));
}
