//! The one harness of the integration tests: a temporary directory with a database
//! path, the real `seedq` binary pointed at a fake GitHub, and SQL reads of the result.

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
    /// Holds the database; removed when the test ends.
    pub dir: TempDir,
    pub db: PathBuf,
    pub api_url: String,
    /// Comma-separated, as `GITHUB_SEEDING_TOKENS`.
    pub tokens: String,
    /// `SEEDQ_API` for `work`: rest, graphql or auto.
    pub api: String,
}

impl Harness {
    pub fn new(api_url: &str, tokens: &[String]) -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("seedq.db");
        Harness {
            dir,
            db,
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

    /// One integer from a query (read-only connection).
    pub fn count(&self, sql: &str) -> i64 {
        let url = format!("sqlite://{}?mode=ro", self.db.display());
        let sql = sql.to_owned();
        block_on(async move {
            let mut conn = sqlx::SqliteConnection::connect(&url)
                .await
                .expect("open db");
            sqlx::query_scalar::<_, i64>(&sql)
                .fetch_one(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
        })
    }

    /// Runs one statement on a read-write connection (to set up or damage state).
    pub fn execute(&self, sql: &str) {
        let url = format!("sqlite://{}", self.db.display());
        let sql = sql.to_owned();
        block_on(async move {
            let mut conn = sqlx::SqliteConnection::connect(&url)
                .await
                .expect("open db");
            sqlx::query(&sql)
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        });
    }

    /// The first column of every row, as text.
    pub fn texts(&self, sql: &str) -> Vec<Option<String>> {
        let url = format!("sqlite://{}?mode=ro", self.db.display());
        let sql = sql.to_owned();
        block_on(async move {
            let mut conn = sqlx::SqliteConnection::connect(&url)
                .await
                .expect("open db");
            sqlx::query_scalar::<_, Option<String>>(&sql)
                .fetch_all(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
        })
    }

    /// Waits until `sql` counts at least `at_least`, or panics after `timeout`.
    pub fn wait_for(&self, sql: &str, at_least: i64, timeout: Duration) {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if self.db.exists() && self.try_count(sql).is_some_and(|n| n >= at_least) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("timed out waiting for {sql} >= {at_least}");
    }

    fn try_count(&self, sql: &str) -> Option<i64> {
        let url = format!("sqlite://{}?mode=ro", self.db.display());
        let sql = sql.to_owned();
        block_on(async move {
            let mut conn = sqlx::SqliteConnection::connect(&url).await.ok()?;
            sqlx::query_scalar::<_, i64>(&sql)
                .fetch_one(&mut conn)
                .await
                .ok()
        })
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
