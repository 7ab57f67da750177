//! Crashes and signals: `kill -9` loses nothing, SIGINT/SIGTERM stop cleanly, two
//! processes on one database share the work without running a job twice.

mod support;

use std::time::{Duration, Instant};
use support::fake_github::{FakeConfig, FakeGithub, RepoSpec};
use support::harness::{refetched_pages, signal, token, Harness};

fn slow_fake(prs: u32) -> FakeGithub {
    FakeGithub::spawn(FakeConfig {
        repos: vec![RepoSpec::new("acme/widgets", prs)],
        latency: Duration::from_millis(15),
        ..FakeConfig::default()
    })
}

fn assert_complete(h: &Harness, fake: &FakeGithub) {
    let truth = fake.truth("acme/widgets");
    assert_eq!(
        h.count("SELECT count(*) FROM jobs WHERE state <> 'done'"),
        0
    );
    assert_eq!(
        h.count("SELECT count(*) FROM pull_requests") as u64,
        truth.prs
    );
    assert_eq!(
        h.count("SELECT count(*) FROM pr_commits") as u64,
        truth.commits
    );
    assert_eq!(
        h.count("SELECT count(*) FROM pr_reviews") as u64,
        truth.reviews
    );
    assert_eq!(h.count("SELECT count(*) FROM pr_files") as u64, truth.files);
    assert_eq!(
        h.count("SELECT count(*) FROM pr_check_runs") as u64,
        truth.check_runs
    );
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
    assert_complete(&h, &fake);

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
    assert_complete(&h, &fake);
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
    let fake = slow_fake(40);
    let h = Harness::new(&fake.url(), &[token(1), token(2)]);
    h.enqueue("acme/widgets");
    let first = h.spawn(&["work", "--workers", "3"]);
    let second = h.spawn(&["work", "--workers", "3"]);
    let mut saw_running = 0;
    // Status reads while both run never block them.
    for _ in 0..5 {
        h.seedq().arg("status").assert().success();
        saw_running = saw_running.max(h.count("SELECT count(*) FROM workers"));
        std::thread::sleep(Duration::from_millis(50));
    }
    let (a, b) = (
        first.wait_with_output().unwrap(),
        second.wait_with_output().unwrap(),
    );
    for output in [&a, &b] {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        assert!(!stderr.contains("locked"), "{stderr}");
    }
    assert_eq!(saw_running, 2, "both processes were working at once");
    assert_complete(&h, &fake);
    let twice = refetched_pages(&fake.stats().pages_served);
    assert!(twice.is_empty(), "pages fetched twice: {twice:?}");
}
