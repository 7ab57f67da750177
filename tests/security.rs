//! Tokens go to the API host only, and nowhere else: not to another host by a redirect
//! or a `link`, not into logs (trace included), errors, the database or the command
//! line. SQL in data or in a token is just data.

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use support::fake_github::{FakeConfig, FakeGithub, Faults, Hostile, Override, RepoSpec};
use support::harness::{token, Harness};

const REPO: &str = "acme/widgets";
const JSON: (&str, &str) = ("content-type", "application/json; charset=utf-8");

fn widgets(prs: u32) -> FakeConfig {
    FakeConfig {
        repos: vec![RepoSpec::new(REPO, prs)],
        ..FakeConfig::default()
    }
}

/// Another host (127.0.0.2) and another port of this one, each serving the same data
/// and recording what it receives.
fn elsewhere() -> (FakeGithub, FakeGithub) {
    let other_host = FakeGithub::spawn_at(widgets(3), IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), 0);
    let other_port = FakeGithub::spawn(widgets(3));
    (other_host, other_port)
}

fn assert_nothing_received(server: &FakeGithub) {
    let log = server.requests_log();
    let with_token = log.iter().filter(|r| r.token.is_some()).count();
    assert_eq!(with_token, 0, "a token reached {}", server.url());
    assert!(
        log.is_empty(),
        "{} got {} request(s)",
        server.url(),
        log.len()
    );
}

fn failed_errors(h: &Harness) -> Vec<String> {
    h.texts("SELECT last_error FROM jobs WHERE state = 'failed' ORDER BY pr_number")
        .into_iter()
        .flatten()
        .collect()
}

#[test]
fn authorization_never_follows_a_redirect_to_another_host() {
    let (other_host, other_port) = elsewhere();
    let redirect = |status: u16, to: &FakeGithub, n: u32| {
        let location = format!(
            "{}/repos/acme/widgets/pulls/{n}/files?per_page=100",
            to.url()
        );
        Override::always(
            &format!("/repos/acme/widgets/pulls/{n}/files"),
            Hostile::respond(status, &[("location", &location)], b""),
        )
    };
    let mut config = widgets(3);
    config.overrides = vec![redirect(302, &other_host, 2), redirect(307, &other_port, 3)];
    let fake = FakeGithub::spawn(config);
    let h = Harness::new(&fake.url(), &[token(1)]);
    h.enqueue(REPO);
    h.seedq().arg("work").assert().code(3);
    assert_nothing_received(&other_host);
    assert_nothing_received(&other_port);
    let errors = failed_errors(&h);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].contains("127.0.0.2") && errors[0].contains("not followed"));
    assert!(errors[1].contains(&other_port.url()) && errors[1].contains("not followed"));
    // The refusal is about the redirect, not the token: it stays usable.
    assert_eq!(h.count("SELECT count(*) FROM tokens WHERE state = 'ok'"), 1);
}

#[test]
fn a_link_header_pointing_at_another_host_gets_no_request() {
    let (other_host, _other_port) = elsewhere();
    let next = format!(
        "<{}/repos/acme/widgets/pulls/2/files?per_page=100&page=2>; rel=\"next\"",
        other_host.url()
    );
    let mut config = widgets(3);
    config.overrides = vec![Override::always(
        "/repos/acme/widgets/pulls/2/files",
        Hostile::respond(200, &[JSON, ("link", &next)], br#"[{"filename": "a.rs"}]"#),
    )];
    let fake = FakeGithub::spawn(config);
    let h = Harness::new(&fake.url(), &[token(1)]);
    h.enqueue(REPO);
    h.seedq().arg("work").assert().code(3);
    assert_nothing_received(&other_host);
    let errors = failed_errors(&h);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("refusing to send a token"), "{errors:?}");
}

/// Every file in the harness's directory (database, WAL, shared memory, ...).
fn files_of(h: &Harness) -> Vec<Vec<u8>> {
    std::fs::read_dir(h.dir.path())
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap_or_default())
        .collect()
}

fn assert_no_secret(secrets: &[String], outputs: &[Vec<u8>]) {
    for secret in secrets {
        // Whole, or the part its mask hides.
        let hidden = &secret[4..secret.len() - 4];
        for bytes in outputs {
            let text = String::from_utf8_lossy(bytes);
            if let Some(at) = text.find(hidden) {
                let from = at.saturating_sub(100);
                panic!(
                    "a token leaked: …{}…",
                    &text[from..(at + 100).min(text.len())]
                );
            }
        }
    }
}

#[test]
fn tokens_stay_out_of_trace_logs_errors_the_database_and_argv_under_faults() {
    let bad = token(7);
    let mut config = widgets(12);
    config.invalid_tokens.insert(bad.clone());
    config.faults = Faults {
        p_server_error: 0.1,
        p_drop: 0.05,
        p_secondary: 0.05,
        secondary_retry_after: Some(1),
        seed: 7,
    };
    let (other_host, _other_port) = elsewhere();
    let location = format!("{}/repos/acme/widgets/pulls/2/files", other_host.url());
    config.overrides = vec![
        Override::always(
            "/repos/acme/widgets/pulls/2/files",
            Hostile::respond(302, &[("location", &location)], b""),
        ),
        Override::first(1, "/repos/acme/widgets/pulls/3/files", Hostile::Hang),
        Override::always(
            "/repos/acme/widgets/pulls/4/files",
            Hostile::respond(200, &[JSON], b"<html>not json</html>"),
        ),
    ];
    let fake = FakeGithub::spawn(config);
    let secrets = [token(1), token(2), bad];
    let h = Harness::new(&fake.url(), &secrets);
    h.enqueue(REPO);
    let mut outputs = Vec::new();
    // While it runs: the command line of the process.
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("seedq"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SEEDQ_DB", &h.db)
        .env("GITHUB_API_URL", &h.api_url)
        .env("GITHUB_SEEDING_TOKENS", &h.tokens)
        .env("SEEDQ_RETRY_BASE_MS", "20")
        .env("RUST_LOG", "trace")
        .args(["work", "--timeout", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    outputs.push(std::fs::read(format!("/proc/{}/cmdline", child.id())).unwrap_or_default());
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    outputs.push(output.stdout);
    outputs.push(output.stderr);
    for args in [
        &["work"][..],
        &["status", "--json"],
        &["status"],
        &["tokens"],
        &["retry"],
    ] {
        let output = h
            .seedq()
            .env("RUST_LOG", "trace")
            .args(args)
            .output()
            .unwrap();
        outputs.push(output.stdout);
        outputs.push(output.stderr);
    }
    outputs.extend(files_of(&h));
    assert!(
        h.count("SELECT count(*) FROM pull_requests") > 0,
        "the seed ran"
    );
    assert!(
        String::from_utf8_lossy(&outputs[2]).contains("TRACE"),
        "trace logging of the HTTP client was on"
    );
    assert_no_secret(&secrets, &outputs);
}

#[test]
fn malformed_tokens_are_refused_without_echoing_them() {
    let h = Harness::new("http://127.0.0.1:9", &[token(1)]);
    h.enqueue(REPO);
    let leaky = [
        "ghp_SECRETSECRET\nSECRETSECRET",
        "ghp_SECRETSECRET SECRETSECRET",
        "ghp_SECRETSECRÉTSECRETSECRET",
        "ghp_ok_token_number_one,ghp_SECRETSECRET\tSECRETSECRET",
    ];
    for tokens in leaky {
        let output = h
            .seedq()
            .env("GITHUB_SEEDING_TOKENS", tokens)
            .arg("work")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2));
        let text = String::from_utf8_lossy(&output.stderr);
        assert!(!text.contains("SECRET"), "{text}");
        assert!(!text.contains("ok_token"), "{text}");
    }
    let file = h.dir.path().join("tokens.txt");
    std::fs::write(&file, "ghp_SECRETSECRET SECRETSECRET\n").unwrap();
    let output = h
        .seedq()
        .args(["work", "--token-file"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&output.stderr).contains("SECRET"));
}

#[test]
fn sql_in_a_token_or_a_title_is_just_data() {
    let fake = FakeGithub::spawn(widgets(3));
    // No whitespace, so a valid token as far as seedq can tell.
    let sneaky = "ghp_x');DROP/**/TABLE/**/job_queue;--'".to_owned();
    let h = Harness::new(&fake.url(), &[sneaky.clone(), token(1)]);
    h.enqueue(REPO);
    h.seedq().arg("work").assert().success();
    h.seedq().arg("status").assert().success();
    assert_eq!(h.count("SELECT count(*) FROM tokens"), 2);
    h.assert_all_done();
    // PR #1's title is `'; DROP TABLE jobs;--`-like: stored as it came.
    let truth = fake.truth(REPO);
    let title = h.texts("SELECT title FROM pull_requests WHERE number = 1");
    assert_eq!(title, vec![Some(truth.per_pr[0].title.clone())]);
    assert!(truth.per_pr[0].title.contains("DROP TABLE"));
}
