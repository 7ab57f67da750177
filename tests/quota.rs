//! Quota: N tokens do N times the work of one per window, an exhausted token gets no
//! request before its reset, bad tokens are dropped, secondary limits pause a token.

mod support;

use std::collections::HashMap;
use std::time::Duration;
use support::fake_github::{FakeConfig, FakeGithub, Faults, RepoSpec};
use support::harness::{token, Harness};

fn limited(limit: u32, window: Duration, prs: u32) -> FakeConfig {
    FakeConfig {
        repos: vec![RepoSpec::new("acme/widgets", prs)],
        limit,
        window,
        ..FakeConfig::default()
    }
}

/// Runs one `work --exit-when-exhausted` on a fresh database and returns how many
/// requests the fake counted against quota.
fn requests_in_one_window(tokens: u32) -> u64 {
    let fake = FakeGithub::spawn(limited(15, Duration::from_secs(60), 40));
    let tokens: Vec<String> = (1..=tokens).map(token).collect();
    let h = Harness::new(&fake.url(), &tokens);
    h.enqueue("acme/widgets");
    h.seedq()
        .args(["work", "--workers", "4", "--exit-when-exhausted"])
        .assert()
        .code(75);
    let stats = fake.stats();
    assert_eq!(
        stats.refused_for_quota, 0,
        "no request sent on a spent token"
    );
    stats.counted_requests
}

#[test]
fn two_tokens_do_twice_the_work_of_one_per_window() {
    let one = requests_in_one_window(1);
    let two = requests_in_one_window(2);
    let four = requests_in_one_window(4);
    assert_eq!(one, 15, "one token spends its whole window");
    assert_eq!(two, 2 * one);
    assert_eq!(four, 4 * one);
}

#[test]
fn exit_when_exhausted_exits_75_and_a_later_work_resumes() {
    let fake = FakeGithub::spawn(limited(20, Duration::from_secs(2), 8));
    let h = Harness::new(&fake.url(), &[token(1)]);
    h.enqueue("acme/widgets");
    h.seedq()
        .args(["work", "--exit-when-exhausted"])
        .assert()
        .code(75)
        .stderr(predicates::str::contains("out of quota"));
    let done_before = h.count("SELECT count(*) FROM jobs WHERE state = 'done'");
    assert!(done_before >= 19, "the window was used: {done_before}");
    std::thread::sleep(Duration::from_millis(2100));
    // Waiting through resets (no --exit-when-exhausted) finishes the seed.
    h.seedq().arg("work").assert().success();
    h.assert_all_done();
    assert_eq!(
        h.count("SELECT count(*) FROM pull_requests") as u64,
        fake.truth("acme/widgets").prs
    );
}

#[test]
fn exhausted_token_receives_no_request_before_its_reset() {
    // Two tokens of one account share one quota: seedq cannot know it in advance,
    // so one of them is refused once; after that it must wait for the reset.
    let mut config = limited(12, Duration::from_secs(2), 10);
    config.shared_accounts =
        HashMap::from([(token(1), "octo".to_owned()), (token(2), "octo".to_owned())]);
    let fake = FakeGithub::spawn(config);
    let h = Harness::new(&fake.url(), &[token(1), token(2)]);
    h.enqueue("acme/widgets");
    // One worker, so that no request is in flight when a refusal arrives: anything
    // sent on the token after the refusal was sent knowing it.
    h.seedq()
        .args(["work", "--workers", "1"])
        .assert()
        .success();
    h.assert_all_done();

    let log = fake.requests_log();
    let stats = fake.stats();
    assert!(
        stats.refused_for_quota >= 1,
        "the shared quota ran out at least once"
    );
    for refused in log.iter().filter(|r| r.status == 403 || r.status == 429) {
        let reset_ms = refused.reset_ms.expect("refusals carry a reset");
        let early: Vec<_> = log
            .iter()
            .filter(|r| r.token == refused.token && r.at_ms > refused.at_ms && r.at_ms < reset_ms)
            .filter(|r| !r.path.ends_with("/rate_limit"))
            .collect();
        assert!(early.is_empty(), "requests before the reset: {early:?}");
    }
    // At most one refused request per token per window.
    let windows = (stats.counted_requests as f64 / 12.0).ceil() as u64 + 1;
    assert!(
        stats.refused_for_quota <= 2 * windows,
        "{} refused",
        stats.refused_for_quota
    );
}

#[test]
fn bad_token_among_good_ones_is_disabled_and_the_others_finish() {
    let mut config = limited(5000, Duration::from_secs(3600), 10);
    config.invalid_tokens.insert(token(9));
    let fake = FakeGithub::spawn(config);
    let h = Harness::new(&fake.url(), &[token(1), token(9), token(2)]);
    h.enqueue("acme/widgets");
    h.seedq()
        .args(["work", "--workers", "3"])
        .assert()
        .success()
        .stderr(predicates::str::contains("ghp_…0009"))
        .stderr(predicates::str::contains("Bad credentials"));
    h.assert_all_done();
    assert_eq!(
        h.texts("SELECT state FROM tokens WHERE label = 'ghp_…0009'"),
        vec![Some("invalid".to_owned())]
    );
    let bad_requests = fake
        .stats()
        .per_token
        .get(&token(9))
        .map_or(0, |t| t.requests);
    assert!(
        bad_requests <= 1,
        "the bad token was tried {bad_requests} times"
    );
}

#[test]
fn only_bad_tokens_is_an_error_naming_them() {
    let mut config = limited(5000, Duration::from_secs(3600), 3);
    config.invalid_tokens.insert(token(9));
    let fake = FakeGithub::spawn(config);
    let h = Harness::new(&fake.url(), &[token(9)]);
    h.enqueue("acme/widgets");
    h.seedq()
        .arg("work")
        .assert()
        .code(1)
        .stderr(predicates::str::contains("ghp_…0009"));
}

fn run_with_secondary_limits(workers: u64) -> support::fake_github::Stats {
    let mut config = limited(5000, Duration::from_secs(3600), 15);
    config.faults = Faults {
        p_secondary: 0.05,
        secondary_retry_after: Some(1),
        seed: 7,
        ..Faults::default()
    };
    let fake = FakeGithub::spawn(config);
    let h = Harness::new(&fake.url(), &[token(1), token(2)]);
    h.enqueue("acme/widgets");
    h.seedq()
        .args(["work", "--workers", &workers.to_string()])
        .assert()
        .success();
    let stats = fake.stats();
    assert!(stats.secondary_injected > 0, "the fault fired");
    h.assert_all_done();
    // Snoozes are not attempts: no job was charged for a rate limit.
    assert_eq!(h.count("SELECT count(*) FROM jobs WHERE attempts > 1"), 0);
    stats
}

#[test]
fn secondary_limit_pauses_the_token_for_retry_after() {
    // One worker: every request is sent after the previous answer was read, so not
    // one may reach a penalised token.
    let stats = run_with_secondary_limits(1);
    assert_eq!(
        stats.sent_during_secondary_penalty, 0,
        "nothing sent during a penalty"
    );
}

#[test]
fn secondary_limit_reaches_at_most_the_requests_already_in_flight() {
    let workers = 3;
    let stats = run_with_secondary_limits(workers);
    assert!(
        stats.sent_during_secondary_penalty <= stats.secondary_injected * (workers - 1),
        "{} sent during {} penalties",
        stats.sent_during_secondary_penalty,
        stats.secondary_injected
    );
}

#[test]
fn secondary_limit_without_retry_after_pauses_a_minute() {
    let mut config = limited(5000, Duration::from_secs(3600), 4);
    config.faults = Faults {
        p_secondary: 1.0,
        secondary_retry_after: None,
        ..Faults::default()
    };
    let fake = FakeGithub::spawn(config);
    let h = Harness::new(&fake.url(), &[token(1)]);
    h.enqueue("acme/widgets");
    h.seedq()
        .args(["work", "--exit-when-exhausted"])
        .assert()
        .code(75);
    let paused_for = h.count("SELECT paused_until - updated_at FROM token_state");
    assert!(
        (59_000..=61_000).contains(&paused_for),
        "paused for {paused_for} ms"
    );
    assert_eq!(
        fake.stats().total_requests,
        2,
        "/rate_limit, then one refused request"
    );
}

#[test]
fn server_errors_and_dropped_connections_are_retried() {
    let mut config = limited(5000, Duration::from_secs(3600), 15);
    config.faults = Faults {
        p_server_error: 0.1,
        p_drop: 0.1,
        seed: 3,
        ..Faults::default()
    };
    let fake = FakeGithub::spawn(config);
    let h = Harness::new(&fake.url(), &[token(1)]);
    h.enqueue("acme/widgets");
    h.seedq()
        .args(["work", "--workers", "3"])
        .assert()
        .success();
    let stats = fake.stats();
    assert!(stats.server_errors_injected > 0 && stats.drops_injected > 0);
    h.assert_all_done();
    assert_eq!(
        h.count("SELECT count(*) FROM pr_files") as u64,
        fake.truth("acme/widgets").files
    );
}
