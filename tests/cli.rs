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
    assert!(!h.db_exists(), "no database was created");
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
    if h.skip_unless_sqlite("a_file_that_is_not_sqlite_is_refused_untouched") {
        return;
    }
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
    if h.skip_unless_sqlite("a_database_from_a_newer_seedq_is_refused") {
        return;
    }
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
    assert!(!h.db_exists());
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

/// Name, size and hash of every file in the harness directory but SQLite's shared-memory
/// index (which readers update) and an empty WAL (which readers create), to show that
/// nothing was written.
fn snapshot(h: &Harness) -> Vec<(String, usize, String)> {
    use sha2::Digest;
    let mut files: Vec<_> = std::fs::read_dir(h.dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.to_string_lossy().ends_with("-shm"))
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap_or_default();
            let hash = format!("{:x}", sha2::Sha256::digest(&bytes));
            (path.display().to_string(), bytes.len(), hash)
        })
        .filter(|(path, len, _)| !(path.ends_with("-wal") && *len == 0))
        .collect();
    files.sort();
    files
}

#[test]
fn more_bad_repository_names_are_refused() {
    let h = harness();
    let long_owner = format!("{}/r", "a".repeat(40));
    for bad in [
        "",
        "/",
        "a//b",
        "a/b/",
        "a/b ",
        "a/b\n",
        "\ta/b",
        "a_b/c",
        "a/b c",
        "a/ü",
        "a/..",
        "a/.",
        "a-/b",
        "a/b;drop",
        "a/b?x=1",
        "https://github.com/a/b",
        &long_owner,
    ] {
        h.seedq()
            .args(["enqueue", "--", bad])
            .assert()
            .code(2)
            .stderr(contains("invalid repository"));
    }
    assert!(!h.db_exists(), "no database was created");
}

#[test]
fn duplicate_and_blank_token_entries_are_merged_not_double_counted() {
    let fake = support::fake_github::FakeGithub::spawn(support::fake_github::FakeConfig {
        repos: vec![support::fake_github::RepoSpec::new("acme/widgets", 2)],
        ..Default::default()
    });
    let h = Harness::new(&fake.url(), &[token(1)]);
    h.enqueue("acme/widgets");
    let list = format!(" {a} ,,{a},  , {a}\t,{b}", a = token(1), b = token(2));
    h.seedq()
        .env("GITHUB_SEEDING_TOKENS", list)
        .arg("work")
        .assert()
        .success()
        .stderr(contains("with 2 token(s)"));
    assert_eq!(h.count("SELECT count(*) FROM tokens"), 2);
}

#[test]
fn absurd_option_values_are_refused_and_nothing_is_written() {
    let h = harness();
    h.enqueue("acme/widgets");
    let before = snapshot(&h);
    for args in [
        &["--workers", "99999999999999999999999"][..],
        &["--workers", ""],
        &["--timeout", "0"],
        &["--timeout", "601"],
        &["--timeout", "-5"],
        &["--timeout", "soon"],
    ] {
        h.seedq().arg("work").args(args).assert().code(2);
    }
    for url in [
        "",
        "localhost:8080",
        "ftp://api.github.com",
        "http://",
        "https://api.github.com/?token=x",
        "https://api.github.com/#x",
        "api.github.com",
        "file:///etc/passwd",
    ] {
        h.seedq()
            .args(["work", "--api-url", url])
            .assert()
            .code(2)
            .stderr(contains("invalid API URL"));
    }
    assert_eq!(snapshot(&h), before, "nothing was written");
}

#[test]
fn another_applications_sqlite_database_is_refused_untouched() {
    let h = harness();
    if h.skip_unless_sqlite("another_applications_sqlite_database_is_refused_untouched") {
        return;
    }
    let url = format!("sqlite://{}?mode=rwc", h.db.display());
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    });
    let before = snapshot(&h);
    for args in [&["enqueue", "acme/widgets"][..], &["status"], &["work"]] {
        h.seedq()
            .args(args)
            .assert()
            .code(2)
            .stderr(contains("another application"));
    }
    assert_eq!(snapshot(&h), before, "not even switched to WAL mode");
}

#[test]
fn a_database_from_a_newer_seedq_is_not_migrated_or_changed() {
    let h = harness();
    if h.skip_unless_sqlite("a_database_from_a_newer_seedq_is_not_migrated_or_changed") {
        return;
    }
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
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    });
    let before = snapshot(&h);
    for args in [&["enqueue", "acme/other"][..], &["work"], &["retry"]] {
        h.seedq()
            .args(args)
            .assert()
            .code(2)
            .stderr(contains("newer seedq"));
    }
    assert_eq!(snapshot(&h), before);
}

#[test]
fn a_directory_given_as_the_database_is_refused() {
    let h = harness();
    h.seedq()
        .arg("--db")
        .arg(h.dir.path())
        .args(["enqueue", "acme/widgets"])
        .assert()
        .code(2)
        .stderr(contains("is a directory"));
}

#[test]
fn an_empty_file_is_taken_as_a_new_database() {
    let h = harness();
    if h.skip_unless_sqlite("an_empty_file_is_taken_as_a_new_database") {
        return;
    }
    std::fs::write(&h.db, "").unwrap();
    h.enqueue("acme/widgets");
    assert_eq!(h.count("SELECT count(*) FROM jobs"), 1);
}

/// Runs seedq as the unprivileged user `nobody` (tests run as root, for whom file
/// modes stop nothing). None when `setpriv` is missing or we are not root.
fn as_nobody(h: &Harness, args: &[&str]) -> Option<std::process::Output> {
    let root = std::process::Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&root.stdout).trim() != "0" {
        return None;
    }
    let output = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(assert_cmd::cargo::cargo_bin("seedq"))
        .args(args)
        .env_clear()
        .env("SEEDQ_DB", &h.db)
        .env("GITHUB_API_URL", &h.api_url)
        .env("GITHUB_SEEDING_TOKENS", &h.tokens)
        .output()
        .ok()?;
    Some(output)
}

#[test]
fn a_read_only_database_or_directory_is_refused_with_a_message() {
    use std::os::unix::fs::PermissionsExt;
    let h = harness();
    if h.skip_unless_sqlite("a_read_only_database_or_directory_is_refused_with_a_message") {
        return;
    }
    h.enqueue("acme/widgets");
    // The database belongs to root: nobody may read it but not write it.
    std::fs::set_permissions(h.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&h.db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let before = snapshot(&h);
    let Some(output) = as_nobody(&h, &["enqueue", "acme/other"]) else {
        eprintln!("skipped: needs root and setpriv to drop privileges");
        return;
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not writable"), "{stderr}");
    assert_eq!(snapshot(&h), before);

    // A writable file in a directory where SQLite cannot create its WAL files.
    let other = Harness::new("http://127.0.0.1:9", &[token(1)]);
    std::fs::set_permissions(other.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(&other.db, "").unwrap();
    std::fs::set_permissions(&other.db, std::fs::Permissions::from_mode(0o666)).unwrap();
    let output = as_nobody(&other, &["enqueue", "acme/widgets"]).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot open database"), "{stderr}");
}

/// `seedq status | head -1`: the reader goes away; the command ends as Unix tools do
/// (SIGPIPE), without a panic message.
#[cfg(unix)]
#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let h = harness();
    h.enqueue("acme/widgets");
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["completions", "bash"],
    ] {
        // The read end is closed before the command starts: its first write fails.
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("seedq"));
        cmd.env("SEEDQ_DB", &h.db).args(args).stdout(writer);
        let out = cmd.output().expect("run seedq");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGPIPE),
            "{args:?}: {:?}",
            out.status
        );
    }
}
