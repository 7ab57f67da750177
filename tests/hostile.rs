//! Hostile or broken API answers: each one ends as a job error (or is shrugged off),
//! never as a panic, a stalled pool or a lost row — through the real binary.

mod support;

use std::process::Output;
use std::time::{Duration, Instant};
use support::fake_github::{FakeConfig, FakeGithub, Hostile, Override, RepoSpec};
use support::harness::{token, Harness};

const REPO: &str = "acme/widgets";
/// The files page of PR #2: the page most tests spoil.
const FILES_2: &str = "/repos/acme/widgets/pulls/2/files";
const JSON: (&str, &str) = ("content-type", "application/json; charset=utf-8");

fn fake(overrides: Vec<Override>) -> FakeGithub {
    FakeGithub::spawn(FakeConfig {
        repos: vec![RepoSpec::new(REPO, 3)],
        overrides,
        ..FakeConfig::default()
    })
}

/// Runs `seedq work ARGS` to the end (a stalled pool fails the test by its timeout).
fn work(h: &Harness, args: &[&str]) -> Output {
    h.enqueue(REPO);
    let output = h
        .seedq()
        .timeout(Duration::from_secs(60))
        .arg("work")
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.code(), Some(h.drained_exit()), "{stderr}");
    output
}

/// The state and last error of the files job of PR #2.
fn files_job(h: &Harness) -> (String, String) {
    let state = h.texts("SELECT state FROM jobs WHERE kind = 'files' AND pr_number = 2");
    let error = h.texts("SELECT last_error FROM jobs WHERE kind = 'files' AND pr_number = 2");
    (
        state[0].clone().unwrap(),
        error[0].clone().unwrap_or_default(),
    )
}

/// Everything but the spoiled page was stored.
fn assert_rest_complete(h: &Harness, fake: &FakeGithub) {
    let truth = fake.truth(REPO);
    assert_eq!(
        h.count("SELECT count(*) FROM pull_requests") as u64,
        truth.prs
    );
    assert_eq!(
        h.count("SELECT count(*) FROM pr_commits") as u64,
        truth.commits
    );
    assert_eq!(
        h.count("SELECT count(*) FROM jobs WHERE state NOT IN ('done', 'failed')"),
        0
    );
    assert_eq!(
        h.count("SELECT count(*) FROM jobs WHERE state = 'failed' AND pr_number <> 2"),
        0
    );
}

fn assert_files_failed(h: &Harness, fake: &FakeGithub, expected_error: &str) -> String {
    assert_rest_complete(h, fake);
    let (state, error) = files_job(h);
    assert_eq!(state, "failed", "{error}");
    assert!(error.contains(expected_error), "{error}");
    assert!(error.contains("PR #2"), "the error names the PR: {error}");
    error
}

fn assert_all_done(h: &Harness, fake: &FakeGithub) {
    assert_rest_complete(h, fake);
    h.assert_all_done();
    assert_eq!(
        h.count("SELECT count(*) FROM pr_files") as u64,
        fake.truth(REPO).files
    );
}

#[test]
fn a_200_whose_body_is_not_json_fails_its_job_after_retries() {
    let fake = fake(vec![Override::always(
        FILES_2,
        Hostile::respond(200, &[JSON], b"<html><body>Oops</body></html>"),
    )]);
    let h = Harness::new(&fake.url(), &[token(1)]);
    work(&h, &[]);
    assert_files_failed(&h, &fake, "unexpected response body");
    assert_eq!(fake.hits(FILES_2), 6, "retried up to the attempt limit");
}

#[test]
fn a_truncated_body_is_retried_like_a_dropped_connection() {
    let truncated = Hostile::Truncated {
        declared: 10_000,
        body: br#"[{"filename": "src/main.rs", "sta"#.to_vec(),
    };
    let fake = fake(vec![Override::first(2, FILES_2, truncated)]);
    let h = Harness::new(&fake.url(), &[token(1)]);
    work(&h, &[]);
    assert_all_done(&h, &fake);
    assert_eq!(fake.hits(FILES_2), 3);
}

#[test]
fn html_error_pages_are_retried_when_5xx_and_final_when_403() {
    let page =
        b"<!DOCTYPE html><html><head><title>Error</title></head><body>Whoa there!</body></html>";
    let html = ("content-type", "text/html");
    let fake = fake(vec![
        Override::first(2, FILES_2, Hostile::respond(500, &[html], page)),
        Override::always(
            "/repos/acme/widgets/pulls/3/files",
            Hostile::respond(403, &[html], page),
        ),
    ]);
    let h = Harness::new(&fake.url(), &[token(1)]);
    work(&h, &[]);
    let (state, _) = files_job(&h);
    assert_eq!(state, "done");
    let error = h.texts("SELECT last_error FROM jobs WHERE kind = 'files' AND pr_number = 3");
    let error = error[0].clone().unwrap();
    assert!(error.contains("HTTP 403"), "{error}");
    assert_eq!(
        fake.hits("/repos/acme/widgets/pulls/3/files"),
        1,
        "a 403 without a rate-limit message is final"
    );
}

#[test]
fn a_page_of_tens_of_megabytes_is_refused_not_stored_or_retried() {
    let fake = fake(vec![Override::always(
        FILES_2,
        Hostile::Huge {
            bytes: 40 * 1024 * 1024,
        },
    )]);
    let h = Harness::new(&fake.url(), &[token(1)]);
    work(&h, &[]);
    assert_files_failed(&h, &fake, "larger than 32 MiB");
    assert_eq!(fake.hits(FILES_2), 1);
}

#[test]
fn wrong_json_types_and_missing_fields_fail_the_job_not_the_process() {
    for body in [
        &br#"[{"filename": 5}]"#[..],
        br#"[{"status": "added"}]"#,
        br#"{"filename": "a"}"#,
        br#"null"#,
        br#"[{"filename": "a", "additions": "many"}]"#,
    ] {
        let fake = fake(vec![Override::always(
            FILES_2,
            Hostile::respond(200, &[JSON], body),
        )]);
        let h = Harness::new(&fake.url(), &[token(1)]);
        work(&h, &[]);
        assert_files_failed(&h, &fake, "unexpected response body");
    }
}

#[test]
fn optional_fields_that_are_missing_or_null_are_stored_as_null() {
    let body =
        br#"[{"filename": "only/a/name"}, {"filename": "b", "status": null, "additions": null}]"#;
    let fake = fake(vec![Override::always(
        FILES_2,
        Hostile::respond(200, &[JSON], body),
    )]);
    let h = Harness::new(&fake.url(), &[token(1)]);
    work(&h, &[]);
    assert_rest_complete(&h, &fake);
    assert_eq!(files_job(&h).0, "done");
    assert_eq!(
        h.count("SELECT count(*) FROM pr_files WHERE pr_number = 2 AND status IS NULL"),
        2
    );
}

#[test]
fn garbage_link_headers_never_make_pagination_loop() {
    let body = br#"[{"filename": "a.rs", "status": "added", "additions": 1, "deletions": 0, "changes": 1}]"#;
    let mut overrides = Vec::new();
    for (n, link) in [
        (1, "garbage, <>; rel=next;;;, rel=\"next\""),
        (2, r#"<>; rel="next""#),
        // A link back to the page itself.
        (
            3,
            r#"</repos/acme/widgets/pulls/3/files?per_page=100>; rel="next""#,
        ),
    ] {
        overrides.push(Override::always(
            &format!("/repos/acme/widgets/pulls/{n}/files"),
            Hostile::respond(200, &[JSON, ("link", link)], body),
        ));
    }
    let fake = fake(overrides);
    let h = Harness::new(&fake.url(), &[token(1)]);
    work(&h, &[]);
    assert_rest_complete(&h, &fake);
    h.assert_all_done();
    assert_eq!(h.count("SELECT count(*) FROM jobs WHERE kind = 'files'"), 3);
    for n in 1..=3 {
        let hits = fake.hits(&format!("/repos/acme/widgets/pulls/{n}/files"));
        assert_eq!(hits, 1, "files of #{n}");
    }
}

#[test]
fn a_next_link_that_is_not_a_url_fails_that_page_visibly() {
    let body = br#"[{"filename": "a.rs"}]"#;
    let fake = fake(vec![Override::always(
        FILES_2,
        Hostile::respond(200, &[JSON, ("link", r#"<<not a url>>; rel="next""#)], body),
    )]);
    let h = Harness::new(&fake.url(), &[token(1)]);
    work(&h, &[]);
    assert_rest_complete(&h, &fake);
    // The page itself was stored; its "next page" is a failed job saying why.
    assert_eq!(
        h.count("SELECT count(*) FROM jobs WHERE kind = 'files' AND pr_number = 2 AND page = 1 AND state = 'done'"),
        1
    );
    let error = h.texts("SELECT last_error FROM jobs WHERE state = 'failed'");
    assert_eq!(error.len(), 1, "{error:?}");
    assert!(
        error[0].as_deref().unwrap().contains("bad URL"),
        "{error:?}"
    );
}

/// A 403 "API rate limit exceeded" with `x-ratelimit-remaining: 0` and these headers.
fn exhausted_with(extra: &[(&str, &str)]) -> Hostile {
    let mut headers = vec![JSON];
    headers.extend_from_slice(extra);
    Hostile::respond(
        403,
        &headers,
        br#"{"message": "API rate limit exceeded for user ID 1.", "documentation_url": "https://docs.github.com"}"#,
    )
}

#[test]
fn an_exhausted_answer_with_a_reset_in_the_past_waits_instead_of_spinning() {
    let past = (chrono::Utc::now().timestamp() - 3600).to_string();
    let fake = fake(vec![Override::first(
        3,
        FILES_2,
        exhausted_with(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", &past)]),
    )]);
    let h = Harness::new(&fake.url(), &[token(1)]);
    let started = Instant::now();
    // One worker: no answer in flight on the token contradicts the refusal.
    work(&h, &["--workers", "1"]);
    assert_all_done(&h, &fake);
    // Three refusals, each followed by a pause of at least a second, not a hot loop.
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert_eq!(fake.hits(FILES_2), 4);
}

/// The first refusal parks one token; the other token finishes the seed alone.
fn one_token_parked_by(hostile: Hostile) -> (FakeGithub, Harness) {
    let fake = fake(vec![Override::first(1, FILES_2, hostile)]);
    let h = Harness::new(&fake.url(), &[token(1), token(2)]);
    let started = Instant::now();
    // One worker: no answer in flight on the token contradicts the refusal.
    work(&h, &["--exit-when-exhausted", "--workers", "1"]);
    assert!(started.elapsed() < Duration::from_secs(30), "did not wait");
    assert_all_done(&h, &fake);
    let log = fake.requests_log();
    let refusal = log
        .iter()
        .position(|r| r.path.starts_with(FILES_2))
        .unwrap();
    let parked = log[refusal].token.clone().unwrap();
    let after = log[refusal + 1..]
        .iter()
        .filter(|r| r.token.as_deref() == Some(&parked))
        .count();
    assert_eq!(after, 0, "requests on the parked token after its refusal");
    (fake, h)
}

#[test]
fn an_exhausted_answer_with_a_far_future_reset_parks_the_token_for_at_most_an_hour() {
    let (_fake, h) = one_token_parked_by(exhausted_with(&[
        ("x-ratelimit-remaining", "0"),
        ("x-ratelimit-reset", "32503680000"),
    ]));
    let now = chrono::Utc::now().timestamp_millis();
    let reset =
        h.count("SELECT max(reset_at) FROM token_buckets WHERE bucket = 'core' AND exhausted = 1");
    assert!(reset > now + 3_000_000, "parked: {reset}");
    assert!(reset <= now + 3_660_000, "for at most an hour: {reset}");
}

#[test]
fn an_exhausted_answer_with_garbage_rate_limit_headers_still_parks_the_token() {
    for extra in [
        &[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "soon"),
        ][..],
        &[("x-ratelimit-remaining", "-1")],
        &[("x-ratelimit-limit", "lots")],
        &[],
    ] {
        let (_fake, h) = one_token_parked_by(exhausted_with(extra));
        assert_eq!(
            h.count("SELECT count(*) FROM token_buckets WHERE bucket = 'core' AND exhausted = 1"),
            1
        );
    }
}

#[test]
fn garbage_rate_limit_headers_on_a_good_page_are_ignored() {
    let body = br#"[{"filename": "a.rs"}]"#;
    let fake = fake(vec![Override::always(
        FILES_2,
        Hostile::respond(
            200,
            &[
                JSON,
                ("x-ratelimit-remaining", "-5"),
                ("x-ratelimit-reset", "tomorrow"),
                ("x-ratelimit-limit", "99999999999999999999999"),
                ("x-ratelimit-used", ""),
            ],
            body,
        ),
    )]);
    let h = Harness::new(&fake.url(), &[token(1)]);
    work(&h, &[]);
    assert_rest_complete(&h, &fake);
    assert_eq!(files_job(&h).0, "done");
}

#[test]
fn retry_after_as_an_http_date_pauses_the_token_until_then() {
    let until = chrono::Utc::now() + chrono::Duration::seconds(3);
    let date = until.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    let fake = fake(vec![Override::first(
        1,
        FILES_2,
        Hostile::respond(
            429,
            &[JSON, ("retry-after", &date)],
            br#"{"message": "Too many requests"}"#,
        ),
    )]);
    let h = Harness::new(&fake.url(), &[token(1)]);
    work(&h, &["--workers", "1"]);
    assert_all_done(&h, &fake);
    let log = fake.requests_log();
    let refusal = log
        .iter()
        .position(|r| r.path.starts_with(FILES_2))
        .unwrap();
    let next = &log[refusal + 1];
    // Nothing before the date given, to its one-second resolution (the date is
    // absolute: measured from the refusal, the pause shrinks when the machine is busy).
    let stated_ms = (until.timestamp() * 1000) as u64;
    assert!(
        next.at_ms + 100 >= stated_ms,
        "next request {} ms before the stated date",
        stated_ms - next.at_ms
    );
}

#[test]
fn a_301_for_a_renamed_repository_is_followed_and_noted_in_the_log() {
    // What GitHub does: the old name answers 301 to `/repositories/{id}/…`.
    let fake = FakeGithub::spawn(FakeConfig {
        repos: vec![RepoSpec::new("acme/widgets-ng", 3)],
        renamed_repos: [("acme/widgets".to_string(), "acme/widgets-ng".to_string())]
            .into_iter()
            .collect(),
        ..FakeConfig::default()
    });
    let h = Harness::new(&fake.url(), &[token(1)]);
    let output = work(&h, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("redirected"), "{stderr}");
    assert_eq!(
        stderr.matches("has moved").count(),
        1,
        "noted once: {stderr}"
    );
    let truth = fake.truth("acme/widgets-ng");
    assert_eq!(
        h.count("SELECT count(*) FROM pull_requests WHERE repo = 'acme/widgets'") as u64,
        truth.prs
    );
    assert_eq!(
        h.count("SELECT count(*) FROM pr_files WHERE repo = 'acme/widgets'") as u64,
        truth.files
    );
    h.assert_all_done();
}

#[test]
fn a_server_that_never_answers_times_out_and_the_job_is_retried() {
    let fake = fake(vec![Override::first(2, FILES_2, Hostile::Hang)]);
    let h = Harness::new(&fake.url(), &[token(1)]);
    let started = Instant::now();
    work(&h, &["--timeout", "1"]);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_all_done(&h, &fake);
    assert_eq!(fake.hits(FILES_2), 3);
}

#[test]
fn a_server_that_never_answers_at_all_fails_the_job_with_a_timeout() {
    let fake = fake(vec![Override::always(FILES_2, Hostile::Hang)]);
    let h = Harness::new(&fake.url(), &[token(1)]);
    work(&h, &["--timeout", "1"]);
    assert_files_failed(&h, &fake, "timed out");
    assert_eq!(fake.hits(FILES_2), 6);
}
