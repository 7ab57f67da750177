//! Bad input: a clear message, exit 2, and nothing written.

mod support;

use predicates::str::contains;
use support::harness::{token, Harness};

fn harness() -> Harness {
    // No server is needed: every case is refused before any request.
    Harness::new("http://127.0.0.1:9", &[token(1)])
}

#[test]
fn bad_repository_names_are_refused_and_nothing_is_written() {
    let h = harness();
    let long = format!("o/{}", "a".repeat(101));
    for bad in [
        "foo", "a/b/c", "../x", "/x", "x/", " ", "a /b", "-a/b", &long,
    ] {
        h.seedq()
            .args(["enqueue", "--", bad])
            .assert()
            .code(2)
            .stderr(contains("invalid repository"));
    }
    // One bad name among good ones refuses the whole command.
    h.seedq()
        .args(["enqueue", "acme/ok", "bad"])
        .assert()
        .code(2);
    assert!(!h.db.exists(), "no database was created");
}

#[test]
fn missing_tokens_say_which_variable_to_set() {
    let h = harness();
    h.enqueue("acme/widgets");
    h.seedq()
        .env_remove("GITHUB_SEEDING_TOKENS")
        .arg("work")
        .assert()
        .code(2)
        .stderr(contains("GITHUB_SEEDING_TOKENS"));
    h.seedq()
        .env("GITHUB_SEEDING_TOKENS", " , ,")
        .arg("work")
        .assert()
        .code(2);
    h.seedq()
        .env("GITHUB_SEEDING_TOKENS", "ghp_abc\ndef")
        .arg("work")
        .assert()
        .code(2)
        .stderr(contains("whitespace"));
}

#[test]
fn the_singular_token_variable_still_works() {
    let h = harness();
    h.enqueue("acme/widgets");
    // Refused for the API URL, so it got past the tokens.
    h.seedq()
        .env_remove("GITHUB_SEEDING_TOKENS")
        .env("GITHUB_SEEDING_TOKEN", token(1))
        .env("GITHUB_API_URL", "not a url")
        .arg("work")
        .assert()
        .code(2)
        .stderr(contains("invalid API URL"));
}

#[test]
fn absurd_worker_counts_are_refused() {
    let h = harness();
    h.enqueue("acme/widgets");
    for workers in ["0", "101", "-1", "many"] {
        h.seedq()
            .args(["work", "--workers", workers])
            .assert()
            .code(2);
    }
}

#[test]
fn a_file_that_is_not_sqlite_is_refused_untouched() {
    let h = harness();
    std::fs::write(&h.db, "precious notes\n").unwrap();
    h.seedq()
        .args(["enqueue", "acme/widgets"])
        .assert()
        .code(2)
        .stderr(contains("not a SQLite database"));
    assert_eq!(std::fs::read_to_string(&h.db).unwrap(), "precious notes\n");
}

#[test]
fn a_database_in_a_missing_directory_is_refused() {
    let h = harness();
    let db = h.dir.path().join("no/such/dir/seedq.db");
    h.seedq()
        .env("SEEDQ_DB", &db)
        .args(["enqueue", "acme/widgets"])
        .assert()
        .code(2)
        .stderr(contains("does not exist"));
}

#[test]
fn a_database_from_a_newer_seedq_is_refused() {
    let h = harness();
    h.enqueue("acme/widgets");
    let url = format!("sqlite://{}", h.db.display());
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (99991231000000, 'from the future', 1, x'00', 0)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
    });
    h.seedq()
        .arg("status")
        .assert()
        .code(2)
        .stderr(contains("newer seedq"));
}

#[test]
fn status_before_any_enqueue_says_what_to_do() {
    let h = harness();
    h.seedq()
        .arg("status")
        .assert()
        .code(2)
        .stderr(contains("seedq enqueue"));
    assert!(!h.db.exists());
}

#[test]
fn every_command_has_an_example_in_its_help() {
    for command in [
        "enqueue",
        "work",
        "status",
        "tokens",
        "retry",
        "completions",
    ] {
        harness()
            .seedq()
            .args([command, "--help"])
            .assert()
            .success()
            .stdout(contains("Example"));
    }
}

#[test]
fn completions_are_printed_for_common_shells() {
    for shell in ["bash", "zsh", "fish"] {
        harness()
            .seedq()
            .args(["completions", shell])
            .assert()
            .success()
            .stdout(contains("enqueue"))
            .stdout(contains("exit-when-exhausted"));
    }
}
