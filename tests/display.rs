//! What `work` shows: live bars under a real pseudo-terminal (`script` from
//! util-linux), plain escape-free lines through a pipe, JSON logs on request.

mod support;

use std::process::Command;
use std::time::Duration;
use support::fake_github::{FakeConfig, FakeGithub, RepoSpec};
use support::harness::{token, Harness};

fn fake(prs: u32, limit: u32, window: Duration) -> FakeGithub {
    FakeGithub::spawn(FakeConfig {
        repos: vec![RepoSpec::new("acme/widgets", prs)],
        limit,
        window,
        latency: Duration::from_millis(20),
        ..FakeConfig::default()
    })
}

/// Runs `seedq ARGS` under a pseudo-terminal; returns its exit code and everything it
/// drew, escape codes included.
fn on_a_terminal(h: &Harness, args: &str, extra_env: &[(&str, &str)]) -> (i32, String) {
    let seedq = assert_cmd::cargo::cargo_bin("seedq");
    let mut cmd = Command::new("script");
    cmd.args(["-qfec", &format!("{} {args}", seedq.display()), "/dev/null"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TERM", "xterm-256color")
        .env("COLUMNS", "160")
        .env("SEEDQ_DB", &h.db)
        .env("GITHUB_API_URL", &h.api_url)
        .env("GITHUB_SEEDING_TOKENS", &h.tokens)
        .env("SEEDQ_RETRY_BASE_MS", "20")
        .env("SEEDQ_API", &h.api)
        .stdin(std::process::Stdio::null())
        .current_dir(h.dir.path());
    for (name, value) in extra_env {
        cmd.env(name, value);
    }
    let output = cmd.output().expect("run script (util-linux)");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn on_a_terminal_work_draws_repositories_and_tokens_then_a_summary() {
    let fake = fake(60, 5000, Duration::from_secs(3600));
    let h = Harness::new(&fake.url(), &[token(1), token(2)]);
    h.enqueue("acme/widgets");
    let (code, screen) = on_a_terminal(&h, "work", &[]);
    assert_eq!(code, 0, "{screen}");
    assert!(
        screen.contains('\u{1b}'),
        "a live display draws with escape codes"
    );
    assert!(screen.contains("acme/widgets"), "{screen}");
    assert!(screen.contains("PRs complete"), "{screen}");
    assert!(
        screen.contains("ghp_…0001") && screen.contains("ghp_…0002"),
        "{screen}"
    );
    assert!(screen.contains("quota"), "{screen}");
    assert!(screen.contains("req/min"), "{screen}");
    assert!(
        screen.contains("summary: 60 of 60 PRs complete"),
        "{screen}"
    );
    assert!(!screen.contains(&token(1)), "the secret is never shown");
}

#[test]
fn while_every_token_is_out_of_quota_the_terminal_shows_a_countdown() {
    let fake = fake(10, 30, Duration::from_secs(3));
    let h = Harness::new(&fake.url(), &[token(1)]);
    h.enqueue("acme/widgets");
    let (code, screen) = on_a_terminal(&h, "work", &[]);
    assert_eq!(code, 0, "{screen}");
    assert!(
        screen.contains("every token is out of quota: resuming in"),
        "{screen}"
    );
    assert!(
        screen.contains("summary: 10 of 10 PRs complete"),
        "{screen}"
    );
}

#[test]
fn no_color_keeps_the_live_display_free_of_colours() {
    let fake = fake(20, 5000, Duration::from_secs(3600));
    let h = Harness::new(&fake.url(), &[token(1)]);
    h.enqueue("acme/widgets");
    let (code, screen) = on_a_terminal(&h, "work", &[("NO_COLOR", "1")]);
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("ghp_…0001"), "{screen}");
    // Cursor movement remains; colour (SGR) sequences do not.
    for colour in ["\u{1b}[32m", "\u{1b}[36m", "\u{1b}[2m", "\u{1b}[3m"] {
        assert!(!screen.contains(colour), "{colour:?} in {screen}");
    }
}

#[test]
fn through_a_pipe_work_prints_plain_progress_lines_without_escape_codes() {
    let fake = fake(40, 5000, Duration::from_secs(3600));
    let h = Harness::new(&fake.url(), &[token(1)]);
    h.enqueue("acme/widgets");
    let output = h
        .seedq()
        .env_remove("NO_COLOR")
        .args(["work", "--progress-every", "1"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let all = [output.stdout, output.stderr].concat();
    assert!(!all.contains(&0x1b), "no escape code off a terminal");
    let text = String::from_utf8(all).unwrap();
    assert!(text.contains("progress: "), "{text}");
    assert!(text.contains("summary: 40 of 40 PRs complete"), "{text}");
    assert!(text.contains("0 failed jobs"), "{text}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let fake = fake(10, 5000, Duration::from_secs(3600));
    let h = Harness::new(&fake.url(), &[token(1)]);
    h.enqueue("acme/widgets");
    let output = h
        .seedq()
        .args(["--log-format", "json", "work"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    let mut messages = Vec::new();
    for line in stderr.lines() {
        let object: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        messages.push(
            object["fields"]["message"]
                .as_str()
                .unwrap_or("")
                .to_owned(),
        );
    }
    assert!(
        messages.iter().any(|m| m.starts_with("summary: 10 of 10")),
        "{messages:?}"
    );
}

#[test]
fn live_progress_without_a_terminal_is_refused() {
    let h = Harness::new("http://127.0.0.1:9", &[token(1)]);
    h.enqueue("acme/widgets");
    h.seedq()
        .args(["work", "--progress", "live"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--progress plain"));
}

/// Runs `seedq work` in a detached tmux session (its own server) and returns the
/// screen as tmux rendered it once `work` has exited.
fn final_screen_in_tmux(h: &Harness) -> String {
    let socket = format!("seedq-test-{}", std::process::id());
    let seedq = assert_cmd::cargo::cargo_bin("seedq");
    let tmux = |args: &[&str]| {
        Command::new("tmux")
            .args(["-L", &socket])
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("TERM", "xterm-256color")
            .env("SEEDQ_DB", &h.db)
            .env("GITHUB_API_URL", &h.api_url)
            .env("GITHUB_SEEDING_TOKENS", &h.tokens)
            .env("SEEDQ_API", &h.api)
            .env("NO_COLOR", "1")
            .current_dir(h.dir.path())
            .output()
            .expect("run tmux")
    };
    let command = format!("{} work; echo seedq-exit=$?; sleep 120", seedq.display());
    let started = tmux(&["new-session", "-d", "-x", "250", "-y", "60", &command]);
    assert!(started.status.success(), "{started:?}");
    let mut screen = String::new();
    for _ in 0..600 {
        std::thread::sleep(Duration::from_millis(100));
        let capture = tmux(&["capture-pane", "-p"]);
        screen = String::from_utf8_lossy(&capture.stdout).into_owned();
        if screen.contains("seedq-exit=") {
            break;
        }
    }
    tmux(&["kill-server"]);
    screen
}

#[test]
fn log_lines_printed_during_the_live_display_stay_whole() {
    // Spent quota makes `work` log "every token is out of quota" while bars are drawn.
    let fake = fake(10, 30, Duration::from_secs(2));
    let h = Harness::new(&fake.url(), &[token(1)]);
    h.enqueue("acme/widgets");
    let screen = final_screen_in_tmux(&h);
    assert!(screen.contains("seedq-exit=0"), "{screen}");
    let lines: Vec<&str> = screen.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("every token is out of quota; resuming at")),
        "{screen}"
    );
    // The bars are gone; every line left is a whole log line (or the exit marker).
    for line in &lines {
        assert!(
            line.starts_with("20") || line.starts_with("seedq-exit="),
            "garbled line {line:?} in\n{screen}"
        );
    }
    assert!(lines
        .iter()
        .any(|l| l.contains("summary: 10 of 10 PRs complete")));
}
