//! `seedq status [--json]` and `seedq retry`: progress, failed jobs, tokens and the
//! estimate, readable while `work` runs; failed jobs requeued with a clear account.

mod support;

use predicates::str::contains;
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;
use support::fake_github::{FakeConfig, FakeGithub, RepoSpec};
use support::harness::{signal, token, Harness};

fn fake(config: FakeConfig) -> FakeGithub {
    FakeGithub::spawn(FakeConfig {
        repos: vec![RepoSpec::new("acme/widgets", 12)],
        repo_errors: HashMap::from([("acme/gone".to_owned(), 404)]),
        ..config
    })
}

/// A finished seed of acme/widgets (12 PRs) and acme/gone (404: one failed job).
fn seeded(fake: &FakeGithub) -> Harness {
    let h = Harness::new(&fake.url(), &[token(1), token(2)]);
    h.enqueue("acme/widgets");
    h.enqueue("acme/gone");
    h.seedq().arg("work").assert().code(3);
    h
}

fn status_json(h: &Harness) -> Value {
    let output = h.seedq().args(["status", "--json"]).output().unwrap();
    assert!(output.status.success());
    serde_json::from_slice(&output.stdout).expect("status --json is JSON")
}

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    keys
}

#[test]
fn status_json_has_the_documented_shape() {
    let fake = fake(FakeConfig::default());
    let h = seeded(&fake);
    let doc = status_json(&h);
    assert_eq!(
        keys(&doc),
        [
            "database",
            "estimate",
            "failed_jobs",
            "failed_jobs_total",
            "generated_at",
            "paused_until",
            "repos",
            "schema_version",
            "tokens",
            "workers"
        ]
    );
    assert_eq!(doc["schema_version"], 1);
    assert!(doc["paused_until"].is_null());
    assert_eq!(
        doc["workers"].as_array().unwrap().len(),
        0,
        "work has exited"
    );

    let repos = doc["repos"].as_array().unwrap();
    let widgets = repos.iter().find(|r| r["repo"] == "acme/widgets").unwrap();
    assert_eq!(
        keys(widgets),
        [
            "jobs",
            "jobs_by_kind",
            "list_complete",
            "prs_complete",
            "prs_discovered",
            "prs_expected",
            "repo",
            "requests_left"
        ]
    );
    assert_eq!(widgets["prs_discovered"], 12);
    assert_eq!(widgets["prs_complete"], 12);
    assert_eq!(widgets["prs_expected"], 12);
    assert_eq!(widgets["list_complete"], true);
    assert_eq!(widgets["requests_left"], 0);
    assert_eq!(
        keys(&widgets["jobs"]),
        ["done", "failed", "not_modified", "queued", "running"]
    );
    assert_eq!(widgets["jobs_by_kind"]["pull"]["done"], 12);
    assert_eq!(widgets["jobs_by_kind"]["pulls"]["done"], 1);

    let tokens = doc["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 2);
    for t in tokens {
        assert_eq!(
            keys(t),
            [
                "concurrency",
                "label",
                "last_error",
                "limit",
                "paused_until",
                "refused",
                "remaining",
                "requests",
                "reset_at",
                "state"
            ]
        );
        assert!(t["label"].as_str().unwrap().starts_with("ghp_…"));
        // The lane `work` learned: no secondary limit here, so --workers.
        assert!(t["concurrency"].as_i64().unwrap() >= 1, "{t}");
        assert_eq!(t["state"], "ok");
        assert_eq!(t["limit"], 5000);
        assert!(t["reset_at"].as_str().unwrap().ends_with('Z'));
    }

    assert_eq!(doc["failed_jobs_total"], 1);
    let failed = &doc["failed_jobs"][0];
    assert_eq!(
        keys(failed),
        [
            "attempts",
            "id",
            "kind",
            "last_error",
            "page",
            "pr_number",
            "repo"
        ]
    );
    assert_eq!(failed["repo"], "acme/gone");
    assert!(failed["last_error"]
        .as_str()
        .unwrap()
        .contains("not found, or the tokens cannot see it"));

    assert_eq!(
        keys(&doc["estimate"]),
        [
            "finishes_at",
            "requests_left",
            "requests_per_minute",
            "seconds_left"
        ]
    );
    assert_eq!(doc["estimate"]["requests_left"], 0);
    assert_eq!(doc["estimate"]["seconds_left"], 0);
    let text = doc.to_string();
    assert!(!text.contains(&token(1)), "no secret in the document");
}

#[test]
fn status_text_shows_progress_jobs_by_kind_tokens_and_failures() {
    let fake = fake(FakeConfig::default());
    let h = seeded(&fake);
    h.seedq()
        .arg("status")
        .assert()
        .success()
        .stdout(contains("acme/widgets: 12 of 12 PRs complete (all listed)"))
        .stdout(contains("check_runs"))
        .stdout(contains("ghp_…0001"))
        .stdout(contains("failed jobs: 1"))
        .stdout(contains("not found, or the tokens cannot see it"))
        .stdout(contains("seedq retry"))
        .stdout(contains("nothing left to fetch"))
        .stdout(contains("no `seedq work` is running"));
}

#[test]
fn status_reads_while_work_is_running() {
    let fake = FakeGithub::spawn(FakeConfig {
        repos: vec![RepoSpec::new("acme/widgets", 400)],
        latency: Duration::from_millis(50),
        ..FakeConfig::default()
    });
    let h = Harness::new(&fake.url(), &[token(1)]);
    h.enqueue("acme/widgets");
    let mut work = h.spawn(&["work", "--workers", "2"]);
    h.wait_for(
        "SELECT count(*) FROM jobs WHERE state = 'done' AND kind <> 'pulls'",
        5,
        Duration::from_secs(60),
    );
    let doc = status_json(&h);
    signal(&work, "INT");
    let status = work.wait().unwrap();
    assert_eq!(status.code(), Some(130));

    assert_eq!(doc["workers"].as_array().unwrap().len(), 1, "{doc}");
    let repo = &doc["repos"][0];
    assert!(repo["prs_discovered"].as_i64().unwrap() >= 100);
    assert_eq!(
        repo["prs_expected"], 400,
        "estimated from the PR numbers listed"
    );
    assert!(doc["estimate"]["requests_left"].as_i64().unwrap() > 0);
}

#[test]
fn status_says_when_every_token_is_out_of_quota() {
    let fake = fake(FakeConfig {
        limit: 10,
        window: Duration::from_secs(120),
        ..FakeConfig::default()
    });
    let h = Harness::new(&fake.url(), &[token(1)]);
    h.enqueue("acme/widgets");
    h.seedq()
        .args(["work", "--exit-when-exhausted"])
        .assert()
        .code(75);
    let doc = status_json(&h);
    assert!(doc["paused_until"].is_string(), "{doc}");
    assert_eq!(doc["tokens"][0]["state"], "exhausted");
    assert_eq!(doc["tokens"][0]["remaining"], 0);
    assert!(
        doc["estimate"]["finishes_at"].is_string(),
        "quota alone tells: {doc}"
    );
    h.seedq()
        .arg("status")
        .assert()
        .success()
        .stdout(contains("every token is out of quota: work resumes at"));
}

#[test]
fn retry_requeues_one_repositorys_failed_jobs_and_says_what_they_were() {
    let fake = fake(FakeConfig::default());
    let h = seeded(&fake);
    h.seedq()
        .args(["retry", "--repo", "acme/gone"])
        .assert()
        .success()
        .stdout(contains("requeued 1 failed job(s)"))
        .stdout(contains("acme/gone pull-request list page 1"))
        .stdout(contains("not found, or the tokens cannot see it"))
        .stdout(contains("seedq work"));
    assert_eq!(
        h.count("SELECT count(*) FROM jobs WHERE state = 'queued' AND repo = 'acme/gone'"),
        1
    );
    assert_eq!(
        h.count("SELECT attempts FROM jobs WHERE repo = 'acme/gone'"),
        0
    );
    // Nothing else is failed now.
    h.seedq()
        .arg("retry")
        .assert()
        .success()
        .stdout(contains("no failed jobs"));
}

#[test]
fn retry_by_id_requeues_only_that_job() {
    let fake = fake(FakeConfig::default());
    let h = seeded(&fake);
    let id = h.count("SELECT id FROM jobs WHERE state = 'failed'");
    h.seedq()
        .args(["retry", "--id", &id.to_string()])
        .assert()
        .success()
        .stdout(contains(format!("#{id} acme/gone")));
    assert_eq!(
        h.count("SELECT count(*) FROM jobs WHERE state = 'failed'"),
        0
    );
}

#[test]
fn retry_of_a_job_that_did_not_fail_is_refused_with_exit_2() {
    let fake = fake(FakeConfig::default());
    let h = seeded(&fake);
    let done = h.count("SELECT min(id) FROM jobs WHERE state = 'done'");
    h.seedq()
        .args(["retry", "--id", &done.to_string()])
        .assert()
        .code(2)
        .stderr(contains("not a failed job"));
    h.seedq()
        .args(["retry", "--repo", "acme/unknown"])
        .assert()
        .code(2)
        .stderr(contains("not queued"));
    assert_eq!(
        h.count("SELECT count(*) FROM jobs WHERE state = 'failed'"),
        1
    );
}
