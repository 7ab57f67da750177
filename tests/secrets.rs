//! Tokens are secrets: not in the database, logs at any level, or output.

mod support;

use support::fake_github::{FakeConfig, FakeGithub, RepoSpec};
use support::harness::{token, Harness};

#[test]
fn tokens_never_reach_the_database_logs_or_output() {
    let mut config = FakeConfig {
        repos: vec![RepoSpec::new("acme/widgets", 6)],
        ..FakeConfig::default()
    };
    config.invalid_tokens.insert(token(7));
    let fake = FakeGithub::spawn(config);
    let secrets = [token(1), token(7)];
    let h = Harness::new(&fake.url(), &secrets);
    h.enqueue("acme/widgets");
    let mut outputs = Vec::new();
    for args in [
        &["-vv", "work"][..],
        &["status", "--json"],
        &["status"],
        &["tokens"],
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
    for entry in std::fs::read_dir(h.dir.path()).unwrap() {
        outputs.push(std::fs::read(entry.unwrap().path()).unwrap());
    }
    assert!(
        h.count("SELECT count(*) FROM pull_requests") > 0,
        "the seed ran"
    );
    for secret in &secrets {
        // Whole, or the part a mask hides.
        let hidden = &secret[4..secret.len() - 4];
        for bytes in &outputs {
            let text = String::from_utf8_lossy(bytes);
            assert!(
                !text.contains(hidden),
                "a token leaked into: {}",
                &text[..text.len().min(300)]
            );
        }
    }
}
