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

mod batch_size;
mod claim;
mod commit;
mod data;
mod db;
mod finish;
pub mod jobs;
mod process;
pub mod queue;
pub mod rounds;
pub mod servers;
mod sql;
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
        let db = Db::Sqlite(sqlite::Db::open(location, create, max_connections).await?);
        Ok(Store::with(db, location))
    }

    /// A read-only handle with a single connection, for readers that run beside the
    /// workers (the live display): it never takes a connection a worker needs. It
    /// applies no migrations and cannot write.
    pub async fn open_reader(location: &Path) -> Result<Store> {
        let db = Db::Sqlite(sqlite::Db::open_reader(location).await?);
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

    /// The database as `--db` named it.
    pub fn location(&self) -> &Path {
        &self.location
    }

    /// Folds SQLite's write-ahead log back into the main file and truncates it
    /// (nothing to do on PostgreSQL).
    pub async fn checkpoint(&self) -> Result<()> {
        match &self.db {
            Db::Sqlite(db) => db.checkpoint().await,
        }
    }

    pub async fn close(&self) {
        if let Some(committer) = self.committer.get() {
            let (requests, transactions) = committer.counts();
            tracing::debug!("group commit: {requests} job writes in {transactions} transactions");
        }
        match &self.db {
            Db::Sqlite(db) => db.close().await,
        }
    }
}
