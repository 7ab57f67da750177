//! The one harness of the integration tests: a temporary directory with a database
//! path, the real `seedq` binary pointed at a fake GitHub, and SQL reads of the result.
//!
//! The database is a SQLite file in the temporary directory, or with
//! `SEEDQ_TEST_BACKEND=postgres` a fresh PostgreSQL database of its own on the server
//! that `SEEDQ_TEST_POSTGRES` names (default: the local one), dropped at the end: the
//! same tests run on both backends (`scripts/test`).

use assert_cmd::Command;
use sqlx::Connection;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// A token that looks like a real PAT (so masking shows `ghp_…` and four characters).
pub fn token(n: u32) -> String {
    format!("ghp_seedqtest{n:024}")
}

pub struct Harness {
    /// Holds the database (SQLite); removed when the test ends.
    pub dir: TempDir,
    /// What `--db` is given: the SQLite file's path, or the PostgreSQL database's URL.
    pub db: PathBuf,
    /// The PostgreSQL database of this test, dropped at the end.
    postgres: Option<postgres::Scratch>,
    pub api_url: String,
    /// Comma-separated, as `GITHUB_SEEDING_TOKENS`.
    pub tokens: String,
    /// `SEEDQ_API` for `work`: rest, graphql or auto.
    pub api: String,
}

impl Harness {
    /// A harness on the backend this run tests (`SEEDQ_TEST_BACKEND`, SQLite by default).
    pub fn new(api_url: &str, tokens: &[String]) -> Harness {
        Harness::on(postgres::wanted(), api_url, tokens)
    }

    /// A harness on a SQLite file, whatever backend this run tests.
    pub fn on_sqlite(api_url: &str, tokens: &[String]) -> Harness {
        Harness::on(false, api_url, tokens)
    }

    /// A harness on a fresh PostgreSQL database, whatever backend this run tests; `None`
    /// (with one line saying so) when no server answers.
    pub fn on_postgres(test: &str, api_url: &str, tokens: &[String]) -> Option<Harness> {
        if !postgres::reachable() {
            eprintln!(
                "{test}: skipped: no PostgreSQL server at {} (set SEEDQ_TEST_POSTGRES)",
                postgres::server()
            );
            return None;
        }
        Some(Harness::on(true, api_url, tokens))
    }

    fn on(postgres: bool, api_url: &str, tokens: &[String]) -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let postgres = postgres.then(postgres::Scratch::create);
        let db = match &postgres {
            Some(scratch) => PathBuf::from(&scratch.url),
            None => dir.path().join("seedq.db"),
        };
        Harness {
            dir,
            db,
            postgres,
            api_url: api_url.to_owned(),
            tokens: tokens.join(","),
            api: "rest".to_owned(),
        }
    }

    /// The same harness with `work` fetching through `api` (rest, graphql or auto).
    pub fn api(mut self, api: &str) -> Harness {
        api.clone_into(&mut self.api);
        self
    }

    /// The real binary with this harness's database, API and tokens in its environment
    /// (never in argv), fast retries, and no inherited seedq settings. `work` fetches
    /// over REST (`SEEDQ_API=rest`, today's behaviour, which most tests pin down);
    /// [`Harness::api`] picks another.
    pub fn seedq(&self) -> Command {
        let mut std_cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("seedq"));
        self.configure(&mut std_cmd);
        let mut cmd = Command::from_std(std_cmd);
        cmd.timeout(Duration::from_secs(120));
        cmd
    }

    fn configure(&self, cmd: &mut std::process::Command) {
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SEEDQ_DB", &self.db)
            .env("GITHUB_API_URL", &self.api_url)
            .env("GITHUB_SEEDING_TOKENS", &self.tokens)
            .env("SEEDQ_RETRY_BASE_MS", "20")
            // The fake answers far faster than GitHub's 900 REST requests a minute
            // per token allow: no per-minute limit against it.
            .env("SEEDQ_REST_PER_MINUTE", "0")
            .env("SEEDQ_GRAPHQL_PER_MINUTE", "0")
            .env("SEEDQ_API", &self.api)
            .env("NO_COLOR", "1")
            .current_dir(self.dir.path());
    }

    /// `seedq` with this harness's environment, to adjust before spawning.
    pub fn command(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("seedq"));
        self.configure(&mut cmd);
        cmd
    }

    /// Starts `seedq ARGS` in the background with piped output.
    pub fn spawn(&self, args: &[&str]) -> Child {
        let mut cmd = self.command();
        cmd.args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn seedq")
    }

    /// `seedq enqueue REPO` that must succeed.
    pub fn enqueue(&self, repo: &str) {
        self.seedq().args(["enqueue", repo]).assert().success();
    }

    /// For a test about SQLite files (their header, permissions, journal): true, with
    /// one line saying so, when this run is on PostgreSQL, where the test has nothing
    /// to check (`tests/postgres.rs` holds PostgreSQL's own cases).
    pub fn skip_unless_sqlite(&self, test: &str) -> bool {
        if self.is_postgres() {
            eprintln!("{test}: skipped on PostgreSQL (a SQLite file case)");
        }
        self.is_postgres()
    }

    /// Whether this test's database is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.postgres.is_some()
    }

    /// Whether the database exists: the SQLite file, or any table in the PostgreSQL
    /// database (which the harness creates empty).
    pub fn db_exists(&self) -> bool {
        match &self.postgres {
            Some(scratch) => scratch.tables() > 0,
            None => self.db.exists(),
        }
    }

    /// The database's own shell running `sql`: `sqlite3 FILE` or `psql URL`.
    pub fn shell(&self, sql: &str) -> std::process::Command {
        let mut cmd = match self.postgres {
            Some(_) => {
                let mut psql = std::process::Command::new("psql");
                psql.arg("-X").arg("-v").arg("ON_ERROR_STOP=1");
                psql
            }
            None => std::process::Command::new("sqlite3"),
        };
        if self.postgres.is_some() {
            cmd.arg(&self.db).arg("-c").arg(sql);
        } else {
            cmd.arg(&self.db).arg(sql);
        }
        cmd
    }

    /// Whether no seedq process is inside a write transaction now: SQLite's write lock
    /// is free, or no seedq session of PostgreSQL is in an open transaction.
    pub fn no_write_in_progress(&self) -> bool {
        match &self.postgres {
            Some(scratch) => postgres::run(&scratch.url, |mut conn| async move {
                sqlx::query_scalar::<_, i64>(
                    "SELECT count(*) FROM pg_stat_activity
                     WHERE datname = current_database() AND application_name = 'seedq'
                       AND state LIKE 'idle in transaction%'",
                )
                .fetch_one(&mut conn)
                .await
            })
            .is_ok_and(|open| open == 0),
            None => {
                let url = format!("sqlite://{}", self.db.display());
                block_on(async move {
                    let Ok(mut conn) = sqlx::SqliteConnection::connect(&url).await else {
                        return false;
                    };
                    let _ = sqlx::query("PRAGMA busy_timeout = 50")
                        .execute(&mut conn)
                        .await;
                    let began = sqlx::query("BEGIN IMMEDIATE")
                        .execute(&mut conn)
                        .await
                        .is_ok();
                    if began {
                        let _ = sqlx::query("ROLLBACK").execute(&mut conn).await;
                    }
                    let _ = conn.close().await;
                    began
                })
            }
        }
    }

    /// Holds a read snapshot open (a read transaction that has read the jobs) for
    /// `hold`, and says whether `progress` grew meanwhile: readers must not stop
    /// the workers.
    pub fn progresses_while_a_reader_holds_a_snapshot(
        &self,
        hold: Duration,
        progress: impl Fn() -> i64,
    ) -> bool {
        let (url, postgres) = match &self.postgres {
            Some(scratch) => (scratch.url.clone(), true),
            None => (format!("sqlite://{}?mode=ro", self.db.display()), false),
        };
        let before = progress();
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let reader = std::thread::spawn(move || {
            block_on(async move {
                macro_rules! hold_on {
                    ($conn:expr, $begin:expr) => {{
                        let mut conn = $conn;
                        sqlx::query($begin).execute(&mut conn).await.unwrap();
                        sqlx::query("SELECT count(*) FROM jobs")
                            .fetch_one(&mut conn)
                            .await
                            .unwrap();
                        held_tx.send(()).unwrap();
                        let _ = release_rx.recv();
                        sqlx::query("COMMIT").execute(&mut conn).await.unwrap();
                    }};
                }
                if postgres {
                    let conn = sqlx::PgConnection::connect(&url).await.unwrap();
                    hold_on!(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ");
                } else {
                    let conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
                    hold_on!(conn, "BEGIN");
                }
            })
        });
        held_rx.recv().unwrap();
        std::thread::sleep(hold);
        let after = progress();
        release_tx.send(()).unwrap();
        reader.join().unwrap();
        after > before
    }

    /// The seed of `repo` is complete: no job left, and each public view holds every
    /// row of the fake's ground truth.
    pub fn assert_complete(&self, fake: &super::fake_github::FakeGithub, repo: &str) {
        let truth = fake.truth(repo);
        let count = |table: &str| {
            self.count(&format!(
                "SELECT count(*) FROM {table} WHERE repo = '{repo}'"
            )) as u64
        };
        let left = self.unfinished(&format!("WHERE state <> 'done' AND repo = '{repo}'"));
        assert!(left.is_empty(), "jobs of {repo} not done: {left:#?}");
        assert_eq!(count("pull_requests"), truth.prs);
        assert_eq!(count("pr_commits"), truth.commits);
        assert_eq!(count("pr_reviews"), truth.reviews);
        assert_eq!(count("pr_files"), truth.files);
        assert_eq!(count("pr_check_runs"), truth.check_runs);
    }

    /// The exit code `work` owes after it drained the queue: 3 when jobs failed, else 0.
    pub fn drained_exit(&self) -> i32 {
        match self.count("SELECT count(*) FROM jobs WHERE state = 'failed'") {
            0 => 0,
            _ => 3,
        }
    }

    /// Every job is done; otherwise panics naming the ones that are not, with their
    /// state, attempts and last error, so that a rare failure explains itself.
    pub fn assert_all_done(&self) {
        let left = self.unfinished("WHERE state <> 'done'");
        assert!(left.is_empty(), "jobs not done: {left:#?}");
    }

    /// The jobs `filter` (a WHERE clause) selects, described.
    fn unfinished(&self, filter: &str) -> Vec<Option<String>> {
        self.texts(&format!(
            "SELECT repo || ' ' || kind || ' #' || coalesce(pr_number, 0) || ' p' || page
                    || ': ' || state || ' after ' || attempts || ' attempts: '
                    || coalesce(last_error, '-')
             FROM jobs {filter} ORDER BY id"
        ))
    }

    /// One integer from a query.
    pub fn count(&self, sql: &str) -> i64 {
        self.try_count(sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Runs statements on a read-write connection (to set up or damage state).
    pub fn execute(&self, sql: &str) {
        let sql = sql.to_owned();
        let done = match &self.postgres {
            Some(scratch) => postgres::run(&scratch.url, move |mut conn| async move {
                sqlx::raw_sql(&sql).execute(&mut conn).await.map(|_| ())
            }),
            None => {
                let url = format!("sqlite://{}", self.db.display());
                block_on(async move {
                    let mut conn = sqlx::SqliteConnection::connect(&url).await?;
                    sqlx::raw_sql(&sql).execute(&mut conn).await.map(|_| ())
                })
            }
        };
        done.unwrap_or_else(|e| panic!("execute: {e}"));
    }

    /// A table's or view's columns, in order.
    pub fn columns(&self, table: &str) -> Vec<String> {
        let sql = match self.postgres {
            Some(_) => format!(
                "SELECT column_name::text FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name = '{table}'
                 ORDER BY ordinal_position"
            ),
            None => format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid"),
        };
        self.texts(&sql).into_iter().flatten().collect()
    }

    /// Every row of a table or view, each as a JSON array of its columns (the same
    /// text on both backends), sorted.
    pub fn rows(&self, table: &str) -> Vec<String> {
        let columns = self.columns(table).join(", ");
        let sql = match self.postgres {
            Some(_) => format!("SELECT json_build_array({columns})::text FROM {table}"),
            None => format!("SELECT json_array({columns}) FROM {table}"),
        };
        let mut rows: Vec<String> = self
            .texts(&sql)
            .into_iter()
            .map(|row| {
                let value: serde_json::Value =
                    serde_json::from_str(&row.expect("a row")).expect("JSON");
                value.to_string()
            })
            .collect();
        rows.sort();
        rows
    }

    /// Everything the database holds, to compare before and after a command that must
    /// write nothing: the SQLite file's bytes, or every PostgreSQL table's rows.
    pub fn contents(&self) -> Vec<String> {
        match self.postgres {
            Some(_) => {
                let tables = self.texts(
                    "SELECT table_name::text FROM information_schema.tables
                     WHERE table_schema = current_schema() ORDER BY table_name",
                );
                let mut contents = Vec::new();
                for table in tables.into_iter().flatten() {
                    contents.push(format!("{table}: {:?}", self.rows(&table)));
                }
                contents
            }
            None => vec![format!(
                "{:?}",
                std::fs::read(&self.db).expect("the database")
            )],
        }
    }

    /// The first column of every row, as text.
    pub fn texts(&self, sql: &str) -> Vec<Option<String>> {
        let sql_owned = sql.to_owned();
        let rows = match &self.postgres {
            Some(scratch) => postgres::run(&scratch.url, move |mut conn| async move {
                sqlx::query_scalar::<_, Option<String>>(&sql_owned)
                    .fetch_all(&mut conn)
                    .await
            }),
            None => {
                let url = format!("sqlite://{}?mode=ro", self.db.display());
                block_on(async move {
                    let mut conn = sqlx::SqliteConnection::connect(&url).await?;
                    sqlx::query_scalar::<_, Option<String>>(&sql_owned)
                        .fetch_all(&mut conn)
                        .await
                })
            }
        };
        rows.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Waits until `sql` counts at least `at_least`, or panics after `timeout`.
    pub fn wait_for(&self, sql: &str, at_least: i64, timeout: Duration) {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if self.db_exists() && self.try_count(sql).is_ok_and(|n| n >= at_least) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("timed out waiting for {sql} >= {at_least}");
    }

    fn try_count(&self, sql: &str) -> Result<i64, sqlx::Error> {
        let sql = sql.to_owned();
        match &self.postgres {
            // A sum is NUMERIC on PostgreSQL: every count is read as BIGINT.
            Some(scratch) => postgres::run(&scratch.url, move |mut conn| async move {
                let wrapped = format!("SELECT ({sql})::bigint");
                sqlx::query_scalar::<_, i64>(&wrapped)
                    .fetch_one(&mut conn)
                    .await
            }),
            None => {
                let url = format!("sqlite://{}?mode=ro", self.db.display());
                block_on(async move {
                    let mut conn = sqlx::SqliteConnection::connect(&url).await?;
                    sqlx::query_scalar::<_, i64>(&sql)
                        .fetch_one(&mut conn)
                        .await
                })
            }
        }
    }
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

/// Sends `signal` (e.g. "KILL", "INT", "TERM") to a child process.
pub fn signal(child: &Child, signal: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{signal} failed");
}

/// Pages (API paths, `/rate_limit` aside) the fake answered 200 more than once, with
/// how many extra times.
pub fn refetched_pages(
    pages_served: &std::collections::HashMap<String, u64>,
) -> Vec<(String, u64)> {
    let mut twice: Vec<(String, u64)> = pages_served
        .iter()
        .filter(|(path, n)| **n > 1 && !path.ends_with("/rate_limit"))
        .map(|(path, n)| (path.clone(), n - 1))
        .collect();
    twice.sort();
    twice
}

pub use super::postgres;
