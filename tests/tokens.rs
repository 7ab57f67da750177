//! `seedq tokens [--check]`: quota from the free `GET /rate_limit`, accounts from
//! `GET /user`, shared accounts and invalid tokens named by masked label.

mod support;

use predicates::str::contains;
use std::collections::{HashMap, HashSet};
use support::fake_github::{FakeConfig, FakeGithub, RepoSpec};
use support::harness::{token, Harness};

fn fake(config: FakeConfig) -> FakeGithub {
    FakeGithub::spawn(FakeConfig {
        repos: vec![RepoSpec::new("acme/widgets", 5)],
        limit: 100,
        ..config
    })
}

#[test]
fn tokens_shows_each_quota_without_spending_any() {
    let fake = fake(FakeConfig::default());
    let h = Harness::new(&fake.url(), &[token(1), token(2)]);
    h.seedq()
        .arg("tokens")
        .assert()
        .success()
        .stdout(contains("ghp_…0001"))
        .stdout(contains("ghp_…0002"))
        .stdout(contains("100/100"));
    assert_eq!(fake.stats().counted_requests, 0);
}

#[test]
fn tokens_check_warns_when_two_tokens_share_an_account() {
    let fake = fake(FakeConfig {
        shared_accounts: HashMap::from([
            (token(1), "octo".to_owned()),
            (token(2), "octo".to_owned()),
        ]),
        ..FakeConfig::default()
    });
    let h = Harness::new(&fake.url(), &[token(1), token(2), token(3)]);
    let output = h.seedq().args(["tokens", "--check"]).output().unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stdout.contains("octo"), "{stdout}");
    assert!(
        stderr.contains("ghp_…0001, ghp_…0002 belong to the same account (octo)"),
        "{stderr}"
    );
    assert!(stderr.contains("share one quota"), "{stderr}");
    assert!(!stderr.contains("ghp_…0003"), "token 3 has its own account");
}

#[test]
fn tokens_without_check_do_not_ask_for_accounts() {
    let fake = fake(FakeConfig::default());
    let h = Harness::new(&fake.url(), &[token(1)]);
    h.seedq().arg("tokens").assert().success();
    assert!(fake.requests_log().iter().all(|r| r.path != "/user"));
}

#[test]
fn invalid_tokens_are_named_by_masked_label_and_exit_1() {
    let fake = fake(FakeConfig {
        invalid_tokens: HashSet::from([token(2)]),
        ..FakeConfig::default()
    });
    let h = Harness::new(&fake.url(), &[token(1), token(2)]);
    let output = h.seedq().args(["tokens", "--check"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let all = String::from_utf8([output.stdout, output.stderr].concat()).unwrap();
    assert!(all.contains("ghp_…0002"), "{all}");
    assert!(all.contains("401 Bad credentials"), "{all}");
    assert!(
        all.contains("GITHUB_SEEDING_TOKENS"),
        "says where to fix it: {all}"
    );
    assert!(!all.contains(&token(2)), "the secret is never shown");
}

#[test]
fn token_switches_are_logged_at_debug_level_by_masked_label() {
    let fake = fake(FakeConfig::default());
    let h = Harness::new(&fake.url(), &[token(1), token(2)]);
    h.enqueue("acme/widgets");
    let verbose = h.seedq().args(["-v", "work"]).output().unwrap();
    assert!(verbose.status.success());
    let stderr = String::from_utf8(verbose.stderr).unwrap();
    assert!(
        stderr.contains("requests now go to token ghp_…"),
        "{stderr}"
    );
    assert!(!stderr.contains(&token(1)) && !stderr.contains(&token(2)));

    let h = Harness::new(&fake.url(), &[token(1), token(2)]);
    h.enqueue("acme/widgets");
    let quiet = h.seedq().arg("work").output().unwrap();
    let stderr = String::from_utf8(quiet.stderr).unwrap();
    assert!(!stderr.contains("requests now go to"), "not at info level");
}
