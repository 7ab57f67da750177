//! The store: the queue, the token table and the data tables, on SQLite (a file, the
//! default) or PostgreSQL (`--db postgres://…`).
//!
//! Its layers point one way:
//! - the verbs on [`Store`], one file per table family (`queue`, `rounds`, `tokens`,
//!   `workers`, `status`, `servers`), used by the commands and the worker;
//! - below them, what runs inside a write transaction, written once for both backends:
//!   `commit` (group commit) over `claim` and `finish` (a job's outcome, its page's
//!   rows in `data`, its token's event, `batch_size`);
//! - at the bottom, the queue's values (`jobs`), the statements every backend
//!   implements (`sql`), the backend chosen (`db`) and the backends themselves
//!   (`sqlite/`, `postgres/`).
//!
//! No transaction is ever held open across an HTTP request. A process's job outcomes
//! and claims are grouped into shared transactions (`commit`).

pub mod access;
mod batch_size;
mod claim;
mod commit;
pub mod copy;
mod data;
mod db;
mod finish;
pub mod jobs;
pub mod listings;
#[cfg(feature = "postgres")]
mod postgres;
mod process;
pub mod queue;
mod reconciled;
pub mod rounds;
pub mod servers;
mod sql;
#[cfg(feature = "sqlite")]
mod sqlite;
pub mod status;
pub mod tokens;
pub mod workers;

use db::Db;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, OnceLock};
use thiserror::Error;

pub use claim::{Apis, Batch, Claim, ClaimFor, Work};
pub use jobs::{BatchFeedback, ClaimedJob, Completion, NewJob, Outcome};

#[derive(Debug, Error)]
pub enum StoreError {
    /// The database the user pointed at cannot be used; exit 2, nothing written.
    #[error("{0}")]
    Refused(String),
    /// The database server could not be reached (it may come back); exit 1.
    #[error("{0}")]
    Unreachable(String),
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A handle on the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Db,
    /// What `--db` said: a file path, or a PostgreSQL URL.
    location: PathBuf,
    /// When this process last wrote its worker row (ms): while that is recent, no other
    /// process can have taken it for dead, and `claim` need not check the row.
    registered_at: Arc<AtomicI64>,
    /// The task that applies the queue's job outcomes and claims in shared
    /// transactions (`commit`), started at the first of them.
    committer: Arc<OnceLock<commit::Committer>>,
}

/// Whether opening may create a missing database file.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Create {
    IfMissing,
    Never,
}

/// Milliseconds since the epoch: the unit of every time column in the internal tables.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Store {
    /// Opens the database `--db` names, refusing what is not a seedq database or was
    /// written by a newer seedq; then applies pending migrations.
    pub async fn open(location: &Path, create: Create, max_connections: u32) -> Result<Store> {
        let db = match postgres_url(location)? {
            #[cfg(feature = "postgres")]
            Some(url) => Db::Postgres(postgres::Db::open(url, create, max_connections).await?),
            #[cfg(feature = "sqlite")]
            None => Db::Sqlite(sqlite::Db::open(location, create, max_connections).await?),
            #[allow(unreachable_patterns)]
            _ => return Err(not_built(location)),
        };
        Ok(Store::with(db, location))
    }

    /// A read-only handle with a single connection, for readers that run beside the
    /// workers (the live display): it never takes a connection a worker needs. It
    /// applies no migrations and cannot write.
    pub async fn open_reader(location: &Path) -> Result<Store> {
        let db = match postgres_url(location)? {
            #[cfg(feature = "postgres")]
            Some(url) => Db::Postgres(postgres::Db::open_reader(url).await?),
            #[cfg(feature = "sqlite")]
            None => Db::Sqlite(sqlite::Db::open_reader(location).await?),
            #[allow(unreachable_patterns)]
            _ => return Err(not_built(location)),
        };
        Ok(Store::with(db, location))
    }

    fn with(db: Db, location: &Path) -> Store {
        Store {
            db,
            location: location.to_owned(),
            registered_at: Default::default(),
            committer: Default::default(),
        }
    }

    /// The database as `--db` named it, a password masked.
    pub fn shown(&self) -> String {
        shown(&self.location)
    }

    /// Whether the store is on PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        #[cfg(feature = "postgres")]
        return matches!(self.db, Db::Postgres(_));
        #[cfg(not(feature = "postgres"))]
        false
    }

    /// Folds SQLite's write-ahead log back into the main file and truncates it
    /// (nothing to do on PostgreSQL).
    pub async fn checkpoint(&self) -> Result<()> {
        match &self.db {
            #[cfg(feature = "sqlite")]
            Db::Sqlite(db) => db.checkpoint().await,
            #[cfg(feature = "postgres")]
            Db::Postgres(_) => Ok(()),
        }
    }

    /// Calls `on_work` whenever another process added jobs, until `stop`: a hint for
    /// idle workers, which also poll. PostgreSQL tells (`LISTEN`); on SQLite, the
    /// processes of one host poll the file, and this returns at once.
    pub async fn listen_for_work(
        &self,
        on_work: impl Fn(),
        stop: tokio_util::sync::CancellationToken,
    ) {
        match &self.db {
            #[cfg(feature = "sqlite")]
            Db::Sqlite(_) => drop((on_work, stop)),
            #[cfg(feature = "postgres")]
            Db::Postgres(db) => db.listen(on_work, stop).await,
        }
    }

    pub async fn close(&self) {
        if let Some(committer) = self.committer.get() {
            let (requests, transactions) = committer.counts();
            tracing::debug!("group commit: {requests} job writes in {transactions} transactions");
        }
        match &self.db {
            #[cfg(feature = "sqlite")]
            Db::Sqlite(db) => db.close().await,
            #[cfg(feature = "postgres")]
            Db::Postgres(db) => db.close().await,
        }
    }
}

/// `--db` as messages show it: a file path, or a URL with its password masked.
pub fn shown(location: &Path) -> String {
    let location = location.to_string_lossy();
    match is_postgres(&location) {
        true => mask_password(&location),
        false => location.into_owned(),
    }
}

/// The command that runs `sql` on the database `--db` names: `sqlite3` for a file,
/// `psql` for PostgreSQL.
pub fn shell_query(location: &Path, sql: &str) -> String {
    let shown = shown(location);
    match is_postgres(&shown) {
        true => format!("psql {shown} -c \"{sql}\""),
        false => format!("sqlite3 {shown} \"{sql}\""),
    }
}

/// Whether `--db` names a PostgreSQL database (a `postgres://` or `postgresql://`
/// URL) rather than a SQLite file.
pub fn is_postgres(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

/// A PostgreSQL URL with its password (if any) masked, for messages and logs.
pub fn mask_password(location: &str) -> String {
    // By hand rather than through a URL parser: a URL that does not parse (and is
    // refused for that) still names its password, and must not show it. The user
    // information ends at the last `@` before any query: a password with an unescaped
    // `/` or `@` is masked whole, and an `@` later on masks too much, never too little.
    let Some((scheme, rest)) = location.split_once("://") else {
        return location.to_owned();
    };
    let before_query = rest.find(['?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..before_query].rfind('@') else {
        return location.to_owned();
    };
    let (userinfo, host) = (&rest[..at], &rest[at..]);
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:…{host}"),
        None => location.to_owned(),
    }
}

/// The URL, when `location` names a PostgreSQL database.
fn postgres_url(location: &Path) -> Result<Option<&str>> {
    let text = location.to_str();
    match text.filter(|t| is_postgres(t)) {
        Some(url) => Ok(Some(url)),
        None if location.to_string_lossy().contains("://") => Err(StoreError::Refused(format!(
            "--db {}: only postgres:// (or postgresql://) URLs are databases; anything else \
             is a SQLite file path",
            mask_password(&location.to_string_lossy())
        ))),
        None => Ok(None),
    }
}

/// The backend `location` asks for was left out of this build.
#[allow(dead_code)]
fn not_built(location: &Path) -> StoreError {
    StoreError::Refused(format!(
        "--db {}: this seedq was built without that backend (cargo features sqlite, postgres)",
        mask_password(&location.to_string_lossy())
    ))
}

#[cfg(test)]
mod tests {
    use super::mask_password;

    #[test]
    fn a_password_is_masked_in_any_url_parsable_or_not() {
        for (url, shown) in [
            ("postgres://u:secret@h:5432/db", "postgres://u:…@h:5432/db"),
            ("postgres://u:se/cr@et@h/db?x=1", "postgres://u:…@h/db?x=1"),
            (
                "postgres://u:secret@h:99999/db",
                "postgres://u:…@h:99999/db",
            ),
            ("postgres://u@h/db", "postgres://u@h/db"),
            ("postgres://h/db", "postgres://h/db"),
            ("/tmp/seedq.db", "/tmp/seedq.db"),
        ] {
            assert_eq!(mask_password(url), shown);
        }
    }
}
