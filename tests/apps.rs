//! GitHub App installation tokens (issue 12): minted from the App's JWT, renewed before
//! they expire without stopping the seed, one tokens-table row per installation, kept
//! out of the database and the logs; bad App settings are exit 2 and write nothing.

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};
use support::fake_github::{FakeApp, FakeConfig, FakeGithub, FakeInstallation, RepoSpec};
use support::harness::{token, Harness};

const APP: u64 = 123;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn public_key() -> String {
    std::fs::read_to_string(fixture("app-key.pub.pem")).unwrap()
}

/// App 123 with `installations` (id, account), each 5,000 requests a window, minting
/// tokens that last `ttl`; and a second app (124) installed as 77, to be refused.
fn fake(
    repo: RepoSpec,
    installations: &[(u64, &str)],
    ttl: Duration,
    latency: Duration,
) -> FakeGithub {
    let installations = installations
        .iter()
        .map(|&(id, account)| FakeInstallation::new(id, account, 5000))
        .collect();
    FakeGithub::spawn(FakeConfig {
        repos: vec![repo],
        latency,
        apps: vec![
            FakeApp::new(APP, &public_key(), installations).token_ttl(ttl),
            FakeApp::new(
                124,
                &public_key(),
                vec![FakeInstallation::new(77, "other", 5000)],
            ),
        ],
        ..FakeConfig::default()
    })
}

/// `seedq ARGS` with the App's settings (key file from the fixtures) and `extra` env.
fn seedq_app(h: &Harness, key: &str, extra: &[(&str, &str)]) -> assert_cmd::Command {
    let mut cmd = h.seedq();
    cmd.env("GITHUB_APP_ID", APP.to_string())
        .env("GITHUB_APP_PRIVATE_KEY_PATH", fixture(key));
    for (name, value) in extra {
        cmd.env(name, value);
    }
    cmd
}

fn label(installation: u64) -> String {
    format!("app {APP} / installation {installation}")
}

/// The `tokens` view's state of the row labelled `label`.
fn token_state(h: &Harness, label: &str) -> Vec<Option<String>> {
    h.texts(&format!("SELECT state FROM tokens WHERE label = '{label}'"))
}

/// `seedq work --workers 4` in the background with the App's settings (PKCS#1 key),
/// its stderr piped.
fn spawn_app_work(h: &Harness) -> std::process::Child {
    let mut work = h.command();
    work.env("GITHUB_APP_ID", APP.to_string())
        .env("GITHUB_APP_PRIVATE_KEY_PATH", fixture("app-key.pem"))
        .args(["work", "--workers", "4"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    work.spawn().unwrap()
}

/// Every `ghs_` installation token the fake saw in a request.
fn installation_tokens_seen(fake: &FakeGithub) -> Vec<String> {
    let mut seen: Vec<String> = fake
        .requests_log()
        .into_iter()
        .filter_map(|r| r.token)
        .filter(|t| t.starts_with("ghs_"))
        .collect();
    seen.sort();
    seen.dedup();
    seen
}

#[test]
fn app_tokens_are_renewed_mid_seed_and_never_stored_or_logged() {
    // Tokens valid for 3 s (2 to 3 s: the fake cuts `expires_at` to the second); 150 ms
    // per answer keeps four workers busy for about ten seconds.
    let fake = fake(
        RepoSpec::new("acme/widgets", 70),
        &[(45, "acme"), (46, "acme-two")],
        Duration::from_secs(3),
        Duration::from_millis(150),
    );
    let h = Harness::new(&fake.url(), &[]);
    h.enqueue("acme/widgets");
    let started = Instant::now();
    let output = seedq_app(&h, "app-key.pem", &[("RUST_LOG", "trace")])
        .args(["-vv", "work", "--workers", "4"])
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        &stderr[stderr.len().saturating_sub(3000)..]
    );
    assert!(
        elapsed > Duration::from_secs(8),
        "the seed took only {elapsed:?}: too short to see renewals"
    );
    h.assert_complete(&fake, "acme/widgets");
    for installation in [45, 46] {
        let minted = fake.tokens_minted(installation);
        assert!(minted >= 3, "installation {installation}: {minted} token(s) minted in {elapsed:?}: fewer than 2 renewals");
        assert_eq!(
            token_state(&h, &label(installation)),
            vec![Some("ok".to_owned())]
        );
    }
    assert_eq!(
        fake.stats().unauthorized,
        0,
        "no request went out with an expired token"
    );
    assert_eq!(
        h.count("SELECT count(*) FROM tokens"),
        2,
        "one row per installation across renewals"
    );

    let seen = installation_tokens_seen(&fake);
    assert!(
        seen.len() >= 6,
        "requests used {} installation tokens",
        seen.len()
    );
    let mut outputs = vec![output.stdout.clone(), output.stderr.clone()];
    for args in [&["status", "--json"][..], &["status"], &["tokens"]] {
        let more = seedq_app(&h, "app-key.pem", &[("RUST_LOG", "trace")])
            .args(args)
            .output()
            .unwrap();
        outputs.push(more.stdout);
        outputs.push(more.stderr);
    }
    for entry in std::fs::read_dir(h.dir.path()).unwrap() {
        // The database and its WAL.
        outputs.push(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let key = std::fs::read_to_string(fixture("app-key.pem")).unwrap();
    let key_line = key.lines().nth(5).unwrap().to_owned();
    for bytes in &outputs {
        let text = String::from_utf8_lossy(bytes);
        for secret in &seen {
            assert!(
                !text.contains(&secret[4..]),
                "an installation token leaked into: {}",
                &text[..text.len().min(300)]
            );
        }
        // A JWT starts with its base64url header, `{"typ":"JWT","alg":"RS256"}` or
        // `{"alg":…`; the key's lines are base64 too.
        for mark in ["eyJ0eXAi", "eyJhbGci", key_line.as_str()] {
            assert!(
                !text.contains(mark),
                "a JWT or the key leaked into: {}",
                &text[..text.len().min(300)]
            );
        }
    }
}

#[test]
fn a_pkcs8_key_works_and_installation_ids_restrict_the_installations() {
    let fake = fake(
        RepoSpec::new("acme/widgets", 6),
        &[(45, "acme"), (46, "acme-two"), (47, "acme-three")],
        Duration::from_secs(3600),
        Duration::ZERO,
    );
    let h = Harness::new(&fake.url(), &[]);
    h.enqueue("acme/widgets");
    seedq_app(
        &h,
        "app-key-pkcs8.pem",
        &[("GITHUB_APP_INSTALLATION_IDS", " 46 ,47")],
    )
    .arg("work")
    .assert()
    .code(0);
    h.assert_complete(&fake, "acme/widgets");
    assert_eq!(fake.tokens_minted(45), 0, "45 is not listed");
    assert_eq!(fake.tokens_minted(46), 1);
    assert_eq!(fake.tokens_minted(47), 1);
    assert_eq!(
        fake.hits("/app/installations"),
        0,
        "the ids were given: no listing"
    );
    let mut labels: Vec<_> = h
        .texts("SELECT label FROM tokens")
        .into_iter()
        .flatten()
        .collect();
    labels.sort();
    assert_eq!(labels, vec![label(46), label(47)]);
}

#[test]
fn an_app_and_a_personal_token_share_the_work() {
    let fake = fake(
        RepoSpec::new("acme/widgets", 30),
        &[(45, "acme")],
        Duration::from_secs(3600),
        Duration::from_millis(5),
    );
    let personal = token(1);
    let h = Harness::new(&fake.url(), std::slice::from_ref(&personal));
    h.enqueue("acme/widgets");
    seedq_app(&h, "app-key.pem", &[])
        .arg("work")
        .assert()
        .code(0);
    h.assert_complete(&fake, "acme/widgets");
    let requests = |label: &str| {
        h.count(&format!(
            "SELECT coalesce(sum(requests), 0) FROM tokens WHERE label = '{label}'"
        ))
    };
    assert!(requests("ghp_…0001") > 0, "the personal token was used");
    assert!(requests(&label(45)) > 0, "the installation token was used");
    let stats = fake.stats();
    assert!(stats
        .per_token
        .get(&personal)
        .is_some_and(|t| t.counted > 0));
    assert!(stats
        .per_token
        .iter()
        .any(|(t, s)| t.starts_with("ghs_") && s.counted > 0));

    let listed = seedq_app(&h, "app-key.pem", &[])
        .arg("tokens")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.status.success(), "{stdout}");
    assert!(stdout.contains("ghp_…0001"), "{stdout}");
    assert!(stdout.contains(&label(45)), "{stdout}");
}

#[test]
fn bad_app_settings_exit_2_naming_the_variable_and_write_nothing() {
    let fake = fake(
        RepoSpec::new("acme/widgets", 3),
        &[(45, "acme")],
        Duration::from_secs(3600),
        Duration::ZERO,
    );
    let h = Harness::new(&fake.url(), &[]);
    h.enqueue("acme/widgets");
    let before = h.contents();
    let key = fixture("app-key.pem");
    let key = key.to_str().unwrap();
    let ec = fixture("ec-key.pem");
    let missing = h.dir.path().join("no-such-key.pem");
    // What is wrong, the environment, and the variable the message must name.
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "an EC key",
            vec![
                ("GITHUB_APP_ID", "123"),
                ("GITHUB_APP_PRIVATE_KEY_PATH", ec.to_str().unwrap()),
            ],
            "GITHUB_APP_PRIVATE_KEY_PATH",
        ),
        (
            "a missing key file",
            vec![
                ("GITHUB_APP_ID", "123"),
                ("GITHUB_APP_PRIVATE_KEY_PATH", missing.to_str().unwrap()),
            ],
            "GITHUB_APP_PRIVATE_KEY_PATH",
        ),
        (
            "an app id that is no number",
            vec![
                ("GITHUB_APP_ID", "Iv1.abc"),
                ("GITHUB_APP_PRIVATE_KEY_PATH", key),
            ],
            "GITHUB_APP_ID",
        ),
        (
            "app id 0",
            vec![("GITHUB_APP_ID", "0"), ("GITHUB_APP_PRIVATE_KEY_PATH", key)],
            "GITHUB_APP_ID",
        ),
        (
            "the id without a key",
            vec![("GITHUB_APP_ID", "123")],
            "GITHUB_APP_PRIVATE_KEY_PATH",
        ),
        (
            "a key without the id",
            vec![("GITHUB_APP_PRIVATE_KEY_PATH", key)],
            "GITHUB_APP_ID",
        ),
        (
            "an installation id that is no number",
            vec![
                ("GITHUB_APP_ID", "123"),
                ("GITHUB_APP_PRIVATE_KEY_PATH", key),
                ("GITHUB_APP_INSTALLATION_IDS", "45,x46"),
            ],
            "GITHUB_APP_INSTALLATION_IDS",
        ),
    ];
    for (what, env, variable) in cases {
        for command in ["work", "tokens"] {
            let mut cmd = h.seedq();
            for (name, value) in &env {
                cmd.env(name, value);
            }
            let output = cmd.arg(command).output().unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(2), "{what}, {command}: {stderr}");
            assert!(
                stderr.contains(variable),
                "{what}, {command}: the message should name {variable}: {stderr}"
            );
        }
    }
    assert_eq!(h.contents(), before, "bad settings wrote to the database");
    assert_eq!(fake.stats().total_requests, 0, "bad settings sent requests");
}

#[test]
fn a_key_of_another_app_alone_exits_1_and_beside_a_personal_token_is_skipped() {
    let fake = fake(
        RepoSpec::new("acme/widgets", 4),
        &[(45, "acme")],
        Duration::from_secs(3600),
        Duration::ZERO,
    );
    let alone = Harness::new(&fake.url(), &[]);
    alone.enqueue("acme/widgets");
    let output = seedq_app(&alone, "other-app-key.pem", &[])
        .arg("work")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no usable GitHub token"), "{stderr}");
    assert!(
        stderr.contains("GITHUB_APP_PRIVATE_KEY_PATH"),
        "says what to check: {stderr}"
    );
    assert!(fake.stats().jwt_rejected >= 1);
    assert_eq!(
        alone.count("SELECT count(*) FROM jobs WHERE state = 'done'"),
        0
    );

    let beside = Harness::new(&fake.url(), &[token(1)]);
    beside.enqueue("acme/widgets");
    let output = seedq_app(&beside, "other-app-key.pem", &[])
        .arg("work")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("GitHub refused to list its installations"),
        "{stderr}"
    );
    beside.assert_complete(&fake, "acme/widgets");
    assert_eq!(fake.stats().tokens_minted, 0);
}

#[test]
fn an_installation_that_is_not_the_apps_is_invalid_and_the_other_does_the_work() {
    let fake = fake(
        RepoSpec::new("acme/widgets", 8),
        &[(45, "acme")],
        Duration::from_secs(3600),
        Duration::ZERO,
    );
    let h = Harness::new(&fake.url(), &[]);
    h.enqueue("acme/widgets");
    // 77 is app 124's installation: GitHub answers 404 to app 123.
    let output = seedq_app(
        &h,
        "app-key.pem",
        &[("GITHUB_APP_INSTALLATION_IDS", "77,45")],
    )
    .arg("work")
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&label(77)) && stderr.contains("404"),
        "names the installation: {stderr}"
    );
    h.assert_complete(&fake, "acme/widgets");
    assert_eq!(
        token_state(&h, &label(77)),
        vec![Some("invalid".to_owned())]
    );
    assert_eq!(token_state(&h, &label(45)), vec![Some("ok".to_owned())]);

    let listed = seedq_app(
        &h,
        "app-key.pem",
        &[("GITHUB_APP_INSTALLATION_IDS", "77,45")],
    )
    .arg("tokens")
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&listed.stdout);
    assert_eq!(
        listed.status.code(),
        Some(1),
        "an invalid installation fails `tokens`: {stdout}"
    );
    assert!(
        stdout.contains(&label(45)) && stdout.contains(&label(77)),
        "{stdout}"
    );
}

/// The worker's hook: a request with an installation token that got 401 asks for a new
/// token at once; concurrent askers share one minting, and every holder of the token
/// sees the new secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renew_now_mints_once_for_concurrent_callers_and_every_clone_sees_the_new_token() {
    use seedq::config::{AppConfig, TokenSources};
    let fake = fake(
        RepoSpec::new("acme/widgets", 1),
        &[(45, "acme"), (46, "acme-two")],
        Duration::from_secs(3600),
        Duration::from_millis(50),
    );
    let pem = std::fs::read(fixture("app-key.pem")).unwrap();
    let sources = TokenSources {
        personal: Vec::new(),
        app: Some(AppConfig {
            app_id: APP,
            key: jsonwebtoken::EncodingKey::from_rsa_pem(&pem).unwrap(),
            installation_ids: None,
        }),
    };
    let gathered = seedq::github::app::gather(sources, &fake.url())
        .await
        .unwrap();
    let apps = gathered.apps.clone().expect("the App gave tokens");
    assert_eq!(gathered.tokens.len(), 2);
    let token = gathered
        .tokens
        .iter()
        .find(|t| t.label() == label(45))
        .unwrap()
        .clone();
    let held_by_the_pool = token.clone();
    let first = token.secret();
    assert_eq!(fake.tokens_minted(45), 1);

    // A 401 for a token that is no longer in use: nothing is minted.
    assert!(apps
        .renew_now(token.fingerprint(), "an older secret")
        .await
        .unwrap());
    assert_eq!(fake.tokens_minted(45), 1);

    let askers = (0..5).map(|_| apps.renew_now(token.fingerprint(), &first));
    for renewed in futures_util::future::join_all(askers).await {
        assert!(renewed.unwrap(), "a fresh token is in place");
    }
    assert_eq!(
        fake.tokens_minted(45),
        2,
        "five askers at once, one minting"
    );
    assert_eq!(
        fake.tokens_minted(46),
        1,
        "the other installation is left alone"
    );
    assert_ne!(held_by_the_pool.secret(), first);
    assert_eq!(held_by_the_pool.fingerprint(), token.fingerprint());
    assert!(!apps
        .renew_now(&seedq::token::fingerprint("ghp_personal"), "ghp_personal")
        .await
        .unwrap());
}

#[test]
fn a_401_on_an_installation_token_mid_seed_renews_it_and_the_seed_goes_on() {
    // Tokens good for an hour: no scheduled renewal during the seed.
    let fake = fake(
        RepoSpec::new("acme/widgets", 60),
        &[(45, "acme")],
        Duration::from_secs(3600),
        Duration::from_millis(20),
    );
    let h = Harness::new(&fake.url(), &[]);
    h.enqueue("acme/widgets");
    let child = spawn_app_work(&h);
    h.wait_for(
        "SELECT count(*) FROM job_queue WHERE state = 'done'",
        40,
        Duration::from_secs(30),
    );
    // The token stops working long before its `expires_at` (revoked, or a clock ahead).
    assert_eq!(fake.revoke_installation_tokens(45), 1);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    h.assert_complete(&fake, "acme/widgets");
    assert!(fake.stats().unauthorized >= 1, "the revoked token was used");
    // Renewed once on the 401 (concurrent 401s share that renewal), never disabled.
    assert_eq!(fake.tokens_minted(45), 2, "{stderr}");
    assert_eq!(token_state(&h, &label(45)), vec![Some("ok".to_owned())]);
    assert!(!stderr.contains("disabled"), "{stderr}");
}

#[test]
fn an_installation_refused_again_right_after_a_401_renewal_is_disabled_not_renewed_again() {
    let fake = fake(
        RepoSpec::new("acme/widgets", 200),
        &[(45, "acme")],
        Duration::from_secs(3600),
        Duration::from_millis(20),
    );
    let h = Harness::new(&fake.url(), &[]);
    h.enqueue("acme/widgets");
    let child = spawn_app_work(&h);
    h.wait_for(
        "SELECT count(*) FROM job_queue WHERE state = 'done'",
        20,
        Duration::from_secs(30),
    );
    fake.revoke_installation_tokens(45);
    let deadline = Instant::now() + Duration::from_secs(30);
    while fake.tokens_minted(45) < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(fake.tokens_minted(45), 2, "renewed on the first 401");
    // The installation is refused for good (its new token too).
    fake.revoke_installation_tokens(45);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("this token is disabled"), "{stderr}");
    assert_eq!(fake.tokens_minted(45), 2, "not renewed again: {stderr}");
    assert_eq!(
        token_state(&h, &label(45)),
        vec![Some("invalid".to_owned())]
    );
}
