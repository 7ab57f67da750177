//! A good API citizen: adaptive concurrency per token under GitHub's secondary limits,
//! and `--reserve`, the requests `work` leaves on every token for its owner.

mod support;

use predicates::str::contains;
use std::collections::HashMap;
use std::time::Duration;
use support::fake_github::{FakeConfig, FakeGithub, Faults, Outcome, RepoSpec};
use support::harness::{token, Harness};

/// The setting: a server that allows 3 requests in flight per token, 2 tokens,
/// 8 workers. Without adaptive concurrency about 65 % of the requests were refused.
#[test]
fn secondary_limits_on_requests_in_flight_teach_each_token_its_concurrency() {
    let tokens = [token(1), token(2)];
    let fake = FakeGithub::spawn(FakeConfig {
        repos: vec![RepoSpec::new("acme/busy", 120)],
        latency: Duration::from_millis(15),
        max_in_flight_per_token: Some(3),
        faults: Faults {
            secondary_retry_after: Some(1),
            ..Faults::default()
        },
        ..FakeConfig::default()
    });
    let h = Harness::new(&fake.url(), &tokens);
    h.enqueue("acme/busy");
    h.seedq()
        .args(["work", "--workers", "8"])
        .assert()
        .success();
    h.assert_complete(&fake, "acme/busy");
    let stats = fake.stats();
    let refused = stats.secondary_limited + stats.sent_during_secondary_penalty;
    let rate = refused as f64 / stats.total_requests as f64;
    assert!(
        rate <= 0.05,
        "{refused} of {} requests refused by secondary limits ({:.1} %)",
        stats.total_requests,
        rate * 100.0
    );
    eprintln!(
        "{} requests, {} refused for concurrency, {} more during the penalties",
        stats.total_requests, stats.secondary_limited, stats.sent_during_secondary_penalty
    );
    // Inside a retry-after, only what was already on its way when the refusal came:
    // at most the other workers' requests (the lanes start at --workers).
    assert!(
        stats.sent_during_secondary_penalty <= stats.secondary_limited * 7,
        "{} sent during {} penalties",
        stats.sent_during_secondary_penalty,
        stats.secondary_limited
    );
    // Both tokens worked.
    for t in &tokens {
        let per = &stats.per_token[t];
        assert!(per.counted > 100, "{t}: {per:?}");
    }
    // What each token learned is kept for `status`: at most one over the server's
    // limit (a size not refused yet).
    let out = h.seedq().args(["status", "--json"]).output().unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for t in doc["tokens"].as_array().unwrap() {
        let concurrency = t["concurrency"].as_i64().unwrap();
        assert!((1..=4).contains(&concurrency), "{t}");
    }
}

#[test]
fn without_secondary_limits_the_workers_spread_over_the_tokens() {
    let tokens = [token(1), token(2)];
    let fake = FakeGithub::spawn(FakeConfig {
        repos: vec![RepoSpec::new("acme/calm", 40)],
        latency: Duration::from_millis(10),
        ..FakeConfig::default()
    });
    let h = Harness::new(&fake.url(), &tokens);
    h.enqueue("acme/calm");
    h.seedq()
        .args(["work", "--workers", "6"])
        .assert()
        .success();
    h.assert_complete(&fake, "acme/calm");
    let stats = fake.stats();
    assert_eq!(stats.secondary_limited, 0);
    // Nothing held back: the lanes start at --workers.
    assert!(stats.max_concurrent >= 4, "{}", stats.max_concurrent);
    for t in &tokens {
        assert!(stats.per_token[t].counted > 50, "{t}");
    }
}

/// Requests counted in each window of each token: (token, window end) -> requests.
fn per_window(fake: &FakeGithub) -> HashMap<(String, u64), u64> {
    let mut windows = HashMap::new();
    for r in fake.requests_log() {
        if let (Some(token), Some(reset), true) = (r.token, r.reset_ms, r.counted) {
            *windows.entry((token, reset)).or_default() += 1;
        }
    }
    windows
}

#[test]
fn the_reserve_is_left_on_every_token_in_every_window() {
    let tokens = [token(1), token(2)];
    let fake = FakeGithub::spawn(FakeConfig {
        repos: vec![RepoSpec::new("acme/lent", 40)],
        limit: 40,
        window: Duration::from_secs(3),
        record_requests: true,
        ..FakeConfig::default()
    });
    let h = Harness::new(&fake.url(), &tokens);
    h.enqueue("acme/lent");
    h.seedq()
        .args(["work", "--workers", "4", "--reserve", "25"])
        .env("SEEDQ_RATE_WINDOW_SECS", "3")
        .assert()
        .success();
    h.assert_complete(&fake, "acme/lent");
    let windows = per_window(&fake);
    // About 200 requests at 15 a window: several windows of each token.
    assert!(windows.len() >= 6, "{windows:?}");
    for ((token, reset), requests) in &windows {
        assert!(
            *requests <= 15,
            "{requests} requests of {token} in the window ending {reset}: the reserve was spent"
        );
    }
    assert_eq!(fake.stats().refused_for_quota, 0);
    assert!(fake
        .requests_log()
        .iter()
        .all(|r| r.outcome != Outcome::RefusedForQuota));
}

#[test]
fn the_reserve_shows_in_status_while_work_runs_and_in_its_environment_variable() {
    let fake = FakeGithub::spawn(FakeConfig {
        repos: vec![RepoSpec::new("acme/lent", 30)],
        latency: Duration::from_millis(40),
        ..FakeConfig::default()
    });
    let h = Harness::new(&fake.url(), &[token(1)]);
    h.enqueue("acme/lent");
    let mut work = h.command();
    work.args(["work", "--workers", "1"])
        .env("SEEDQ_RESERVE", "1000");
    let mut child = work.spawn().unwrap();
    h.wait_for(
        "SELECT count(*) FROM job_queue WHERE state = 'done'",
        3,
        Duration::from_secs(20),
    );
    let out = h.seedq().args(["status", "--json"]).output().unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["workers"][0]["reserve"], 1000, "{doc}");
    let text = h.seedq().arg("status").output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(text.contains("reserve 1,000"), "{text}");
    assert!(child.wait().unwrap().success());
}

#[test]
fn a_reserve_at_or_above_a_tokens_limit_is_refused_and_nothing_is_written() {
    let fake = FakeGithub::spawn(FakeConfig {
        repos: vec![RepoSpec::new("acme/lent", 3)],
        limit: 100,
        ..FakeConfig::default()
    });
    let h = Harness::new(&fake.url(), &[token(1)]);
    h.enqueue("acme/lent");
    h.seedq()
        .args(["work", "--reserve", "100"])
        .assert()
        .code(2)
        .stderr(contains("--reserve 100"))
        .stderr(contains("limit of 100"));
    assert_eq!(h.count("SELECT count(*) FROM token_state"), 0);
    assert_eq!(
        h.count("SELECT count(*) FROM job_queue WHERE state <> 'queued'"),
        0
    );
    for bad in ["-1", "lots"] {
        h.seedq()
            .args(["work", "--reserve", bad])
            .assert()
            .code(2)
            .stderr(contains("--reserve"));
        h.seedq()
            .args(["work"])
            .env("SEEDQ_RESERVE", bad)
            .assert()
            .code(2)
            .stderr(contains("SEEDQ_RESERVE"));
    }
    assert_eq!(fake.stats().counted_requests, 0);
}

#[test]
fn a_per_minute_limit_that_is_not_a_number_is_refused() {
    let fake = FakeGithub::spawn(FakeConfig {
        repos: vec![RepoSpec::new("acme/lent", 3)],
        ..FakeConfig::default()
    });
    let h = Harness::new(&fake.url(), &[token(1)]);
    h.enqueue("acme/lent");
    for name in ["SEEDQ_REST_PER_MINUTE", "SEEDQ_GRAPHQL_PER_MINUTE"] {
        h.seedq()
            .arg("work")
            .env(name, "fast")
            .assert()
            .code(2)
            .stderr(contains(name));
    }
    assert_eq!(fake.stats().total_requests, 0);
}
