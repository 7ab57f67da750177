//! PostgreSQL's own cases: what a URL, a server and a database can refuse, masked
//! passwords, `copy-to` between the backends, the views alike on both, and workers of
//! several hosts on one queue. The behavioural suite runs on PostgreSQL as a whole with
//! `SEEDQ_TEST_BACKEND=postgres` (scripts/test does it when a server answers); these
//! tests need a server too and skip with one line when none answers at
//! `SEEDQ_TEST_POSTGRES` (default postgres://postgres@127.0.0.1:5432/test).

mod support;

use predicates::str::contains;
use std::time::Duration;
use support::fake_github::{FakeConfig, FakeGithub, RepoSpec};
use support::harness::{postgres, refetched_pages, signal, token, Harness};

const REPO: &str = "acme/widgets";

fn fake(prs: u32, latency_ms: u64) -> FakeGithub {
    FakeGithub::spawn(FakeConfig {
        repos: vec![RepoSpec::new(REPO, prs)],
        latency: Duration::from_millis(latency_ms),
        ..FakeConfig::default()
    })
}

/// The public views of fetched data.
const VIEWS: [&str; 7] = [
    "pull_requests",
    "pr_commits",
    "pr_reviews",
    "pr_files",
    "pr_check_runs",
    "pr_review_comments",
    "pr_issue_comments",
];

/// Every row of every public view, normalized (see [`Harness::rows`]).
fn all_rows(h: &Harness) -> Vec<(String, Vec<String>)> {
    VIEWS
        .iter()
        .map(|view| (view.to_string(), h.rows(view)))
        .collect()
}

/// Pages the fake answered more than once.
fn refetched(fake: &FakeGithub) -> u64 {
    refetched_pages(&fake.stats().pages_served)
        .iter()
        .map(|(_, extra)| extra)
        .sum()
}

#[test]
fn a_url_that_cannot_be_parsed_is_bad_input_and_names_it() {
    let h = Harness::on_sqlite("http://127.0.0.1:1", &[token(1)]);
    for url in [
        "postgres://postgres@127.0.0.1:notaport/test",
        "postgresql://postgres@127.0.0.1:99999/test",
        "mysql://root@127.0.0.1/test",
    ] {
        h.seedq()
            .env("SEEDQ_DB", url)
            .args(["enqueue", REPO])
            .assert()
            .code(2)
            .stderr(contains(url.split("://").next().unwrap()));
    }
}

#[test]
fn a_server_that_does_not_answer_is_exit_1_and_says_so() {
    // Port 1 refuses connections on any machine: no server needed.
    let h = Harness::on_sqlite("http://127.0.0.1:1", &[token(1)]);
    let url = "postgres://postgres:hunter2secret@127.0.0.1:1/test";
    let assert = h
        .seedq()
        .env("SEEDQ_DB", url)
        .args(["enqueue", REPO])
        .assert()
        .code(1)
        .stderr(contains("127.0.0.1:1"));
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(
        !stderr.contains("hunter2secret"),
        "password shown: {stderr}"
    );
    assert!(stderr.contains("cannot connect"), "{stderr}");
}

/// Hosted servers often require TLS: `sslmode=require` in the URL connects over it.
#[test]
fn a_url_asking_for_tls_connects_over_tls() {
    let Some(h) = Harness::on_postgres(
        "a_url_asking_for_tls_connects_over_tls",
        "http://127.0.0.1:1",
        &[token(1)],
    ) else {
        return;
    };
    // Asked over a plain connection, so that this test's own TLS is not in question.
    let plain = h.db.to_string_lossy().into_owned();
    let offered = postgres::run(&plain, |mut conn| async move {
        sqlx::query_scalar::<_, String>("SHOW ssl")
            .fetch_one(&mut conn)
            .await
    });
    if !offered.is_ok_and(|ssl| ssl == "on") {
        println!("skipped: the server at {plain} does not offer TLS");
        return;
    }
    let url = format!("{plain}?sslmode=require");
    h.seedq()
        .env("SEEDQ_DB", &url)
        .args(["enqueue", REPO])
        .assert()
        .success();
    h.seedq()
        .env("SEEDQ_DB", &url)
        .arg("status")
        .assert()
        .success()
        .stdout(contains(REPO));
}

#[test]
fn an_unknown_role_or_database_is_bad_input() {
    let Some(h) = Harness::on_postgres(
        "an_unknown_role_or_database_is_bad_input",
        "http://127.0.0.1:1",
        &[token(1)],
    ) else {
        return;
    };
    let url = h.db.to_string_lossy().into_owned();
    let (root, _) = url.rsplit_once('/').unwrap();
    let no_db = format!("{root}/seedq_no_such_database");
    h.seedq()
        .env("SEEDQ_DB", &no_db)
        .args(["enqueue", REPO])
        .assert()
        .code(2)
        .stderr(contains("seedq_no_such_database"))
        .stderr(contains("does not exist"));
    let no_role = url.replacen("postgres@", "seedq_no_such_role@", 1);
    assert_ne!(
        no_role, url,
        "the test server's URL names the role postgres"
    );
    h.seedq()
        .env("SEEDQ_DB", &no_role)
        .args(["enqueue", REPO])
        .assert()
        .code(2)
        .stderr(contains("seedq_no_such_role"));
    assert!(!h.db_exists(), "nothing was written");
}

#[test]
fn a_database_holding_other_tables_is_refused_untouched() {
    let Some(h) = Harness::on_postgres(
        "a_database_holding_other_tables_is_refused_untouched",
        "http://127.0.0.1:1",
        &[token(1)],
    ) else {
        return;
    };
    h.execute("CREATE TABLE customers (id int primary key, name text); INSERT INTO customers VALUES (1, 'Ada')");
    let before = h.contents();
    h.seedq()
        .args(["enqueue", REPO])
        .assert()
        .code(2)
        .stderr(contains("customers"));
    h.seedq().arg("status").assert().code(2);
    assert_eq!(h.contents(), before, "the database was changed");
    assert_eq!(
        h.count(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()"
        ),
        1
    );
}

#[test]
fn a_database_from_a_newer_seedq_is_refused_and_left_alone() {
    let Some(h) = Harness::on_postgres(
        "a_database_from_a_newer_seedq_is_refused_and_left_alone",
        "http://127.0.0.1:1",
        &[token(1)],
    ) else {
        return;
    };
    h.enqueue(REPO);
    h.execute(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (99991231000000, 'from the future', true, '\\x00', 0)",
    );
    let before = h.contents();
    h.seedq()
        .arg("status")
        .assert()
        .code(2)
        .stderr(contains("newer seedq"));
    h.seedq().args(["enqueue", "acme/other"]).assert().code(2);
    assert_eq!(h.contents(), before);
}

#[test]
fn a_password_in_the_url_never_shows() {
    let fake = fake(3, 0);
    let Some(h) = Harness::on_postgres(
        "a_password_in_the_url_never_shows",
        &fake.url(),
        &[token(1)],
    ) else {
        return;
    };
    // Trust authentication ignores the password; seedq must still never print it.
    let url =
        h.db.to_string_lossy()
            .replacen("postgres@", "postgres:hunter2secret@", 1);
    let dest = h.dir.path().join("copy.db");
    let mut outputs = Vec::new();
    for args in [
        vec!["status"],
        vec!["enqueue", REPO],
        vec!["work", "--progress", "plain"],
        vec!["status"],
        vec!["status", "--json"],
        vec!["-vv", "retry"],
        vec!["copy-to", dest.to_str().unwrap()],
    ] {
        outputs.push(
            h.seedq()
                .env("SEEDQ_DB", &url)
                .args(&args)
                .output()
                .unwrap(),
        );
    }
    // copy-to the database itself, password and all: refused without showing it.
    outputs.push(
        h.seedq()
            .env("SEEDQ_DB", &url)
            .args(["copy-to", &url])
            .output()
            .unwrap(),
    );
    for output in &outputs {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!text.contains("hunter2secret"), "password shown: {text}");
    }
    assert!(String::from_utf8_lossy(&outputs[6].stdout).contains("postgres:…@"));
    assert_eq!(outputs.last().unwrap().status.code(), Some(2));
}

#[test]
fn the_views_have_the_same_columns_and_rows_on_both_backends() {
    let fake = fake(12, 0);
    let Some(pg) = Harness::on_postgres(
        "the_views_have_the_same_columns_and_rows_on_both_backends",
        &fake.url(),
        &[token(1)],
    ) else {
        return;
    };
    let lite = Harness::on_sqlite(&fake.url(), &[token(1)]);
    for h in [&lite, &pg] {
        h.seedq()
            .args([
                "enqueue",
                REPO,
                "--with",
                "pull,commits,reviews,files,check_runs,review_comments,issue_comments",
            ])
            .assert()
            .success();
        h.seedq()
            .args(["work", "--workers", "3"])
            .assert()
            .success();
    }
    for view in VIEWS.iter().chain(&["jobs", "tokens"]) {
        assert_eq!(pg.columns(view), lite.columns(view), "columns of {view}");
        assert!(!lite.columns(view).is_empty(), "{view} has columns");
    }
    let rows = all_rows(&lite);
    assert!(rows
        .iter()
        .all(|(view, r)| !r.is_empty() || view.contains("comments")));
    assert_eq!(all_rows(&pg), rows);
    // Every table too, column for column in the same order: copy-to relies on it.
    // (sqlx's own table of applied migrations differs, and is not the seed's.)
    let tables = |h: &Harness, sql: &str| -> Vec<String> {
        let names = h.texts(sql).into_iter().flatten();
        names.filter(|t| !t.starts_with("_sqlx")).collect()
    };
    let lite_tables = tables(
        &lite,
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
         ORDER BY name",
    );
    let pg_tables = tables(
        &pg,
        r#"SELECT table_name::text FROM information_schema.tables
           WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
           ORDER BY table_name COLLATE "C""#,
    );
    assert!(
        lite_tables.contains(&"job_queue".to_owned()),
        "{lite_tables:?}"
    );
    assert_eq!(pg_tables, lite_tables);
    for table in &lite_tables {
        assert_eq!(pg.columns(table), lite.columns(table), "columns of {table}");
    }
}

/// A seed stopped half way on SQLite moves to PostgreSQL, finishes there without
/// fetching again a page that was done, and moves back to a new SQLite file equal row
/// for row.
#[test]
fn copy_to_moves_a_seed_to_postgres_and_back_and_nothing_is_fetched_twice() {
    let fake = fake(60, 3);
    let tokens = [token(1), token(2)];
    let Some(pg) = Harness::on_postgres(
        "copy_to_moves_a_seed_to_postgres_and_back_and_nothing_is_fetched_twice",
        &fake.url(),
        &tokens,
    ) else {
        return;
    };
    let lite = Harness::on_sqlite(&fake.url(), &tokens);
    lite.enqueue(REPO);
    // Stop the seed part way with Ctrl-C.
    let child = lite.spawn(&["work", "--workers", "2"]);
    lite.wait_for(
        "SELECT count(*) FROM jobs WHERE state = 'done'",
        60,
        Duration::from_secs(60),
    );
    signal(&child, "INT");
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130));
    let done_on_sqlite = lite.count("SELECT count(*) FROM jobs WHERE state = 'done'");
    let left = lite.count("SELECT count(*) FROM jobs WHERE state <> 'done'");
    assert!(left > 0, "the seed was stopped before its end");
    let requests_before = fake.stats().total_requests;

    lite.seedq()
        .args(["copy-to", pg.db.to_str().unwrap()])
        .assert()
        .success()
        .stdout(contains("go on there with: seedq --db"));
    assert_eq!(
        fake.stats().total_requests,
        requests_before,
        "copy-to asks GitHub nothing"
    );
    assert_eq!(
        pg.count("SELECT count(*) FROM jobs WHERE state = 'done'"),
        done_on_sqlite
    );
    assert_eq!(all_rows(&pg), all_rows(&lite));

    pg.seedq()
        .args(["work", "--workers", "3"])
        .assert()
        .success();
    assert_eq!(
        refetched(&fake),
        0,
        "a page done on SQLite was fetched again"
    );
    pg.assert_complete(&fake, REPO);

    // And back, to a new file: the same rows, and nothing left to fetch.
    let back = Harness::on_sqlite(&fake.url(), &tokens);
    pg.seedq()
        .args(["copy-to", back.db.to_str().unwrap()])
        .assert()
        .success();
    assert_eq!(all_rows(&back), all_rows(&pg));
    // Only the free `/rate_limit` of each token is asked.
    let requests = fake.stats().counted_requests;
    back.seedq().arg("work").assert().success();
    assert_eq!(
        fake.stats().counted_requests,
        requests,
        "nothing was left to fetch"
    );
    // The ETags came along: a refresh on the copy is answered 304 page by page.
    back.enqueue(REPO);
    back.seedq().arg("work").assert().success();
    assert!(fake.stats().not_modified > 0, "ETags were copied");
    assert_eq!(all_rows(&back), all_rows(&pg));
}

#[test]
fn copy_to_refuses_itself_a_database_in_use_and_a_live_worker() {
    let fake = fake(40, 40);
    let Some(pg) = Harness::on_postgres(
        "copy_to_refuses_itself_a_database_in_use_and_a_live_worker",
        &fake.url(),
        &[token(1)],
    ) else {
        return;
    };
    let lite = Harness::on_sqlite(&fake.url(), &[token(1)]);
    lite.enqueue(REPO);
    pg.enqueue("acme/other");
    let pg_before = pg.contents();
    let lite_before = lite.contents();

    // Into itself.
    lite.seedq()
        .args(["copy-to", lite.db.to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(contains("another destination"));
    // Into a database that holds a seed.
    lite.seedq()
        .args(["copy-to", pg.db.to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(contains("already holds a seed"));
    assert_eq!(pg.contents(), pg_before);
    // From a missing database: nothing to copy, and no file made.
    let missing = lite.dir.path().join("missing.db");
    let dest = lite.dir.path().join("dest.db");
    lite.seedq()
        .env("SEEDQ_DB", &missing)
        .args(["copy-to", dest.to_str().unwrap()])
        .assert()
        .code(2);
    assert!(!missing.exists() && !dest.exists());

    // While `work` runs on the source.
    let child = lite.spawn(&["work", "--workers", "1"]);
    lite.wait_for("SELECT count(*) FROM workers", 1, Duration::from_secs(30));
    lite.seedq()
        .args(["copy-to", dest.to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(contains("is running"));
    assert!(!dest.exists(), "a refused copy leaves no file");
    signal(&child, "INT");
    child.wait_with_output().unwrap();
    assert_ne!(lite.contents(), lite_before, "work ran");
}

/// Three `work` processes as three hosts would run them: each its own host name, one
/// queue and one token table. One is killed with `kill -9`; the others cannot check its
/// pid, so its jobs come back when its heartbeat runs stale.
#[test]
fn workers_on_three_hosts_share_one_queue_and_rescue_a_killed_one() {
    let fake = fake(40, 5);
    let Some(h) = Harness::on_postgres(
        "workers_on_three_hosts_share_one_queue_and_rescue_a_killed_one",
        &fake.url(),
        &[token(1), token(2)],
    ) else {
        return;
    };
    h.enqueue(REPO);
    let start = |host: &str| {
        h.command()
            .env("SEEDQ_HOST", host)
            .env("SEEDQ_STALE_AFTER_MS", "6000")
            .args(["work", "--workers", "2"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let doomed = start("host-a");
    h.wait_for(
        "SELECT count(*) FROM jobs WHERE state = 'running'",
        1,
        Duration::from_secs(30),
    );
    signal(&doomed, "KILL");
    doomed.wait_with_output().unwrap();
    let stranded = h.count("SELECT count(*) FROM jobs WHERE state = 'running'");
    let others: Vec<_> = ["host-b", "host-c"]
        .iter()
        .map(|host| start(host))
        .collect();
    for child in others {
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{stderr}");
    }
    h.assert_all_done();
    assert_eq!(h.count("SELECT count(*) FROM workers"), 0);
    let truth = fake.truth(REPO);
    assert_eq!(
        h.count("SELECT count(*) FROM pull_requests") as u64,
        truth.prs
    );
    assert_eq!(
        h.count("SELECT count(*) FROM pr_commits") as u64,
        truth.commits
    );
    assert_eq!(h.count("SELECT count(*) FROM pr_files") as u64, truth.files);
    assert!(
        refetched(&fake) <= stranded as u64,
        "{} pages fetched twice; {stranded} jobs were in flight at the kill",
        refetched(&fake)
    );
    assert!(postgres::reachable());
}
