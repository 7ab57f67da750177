//! The SQLite layer: opening (and refusing) database files, migrations, and the verbs
//! of the queue, the token table and the data tables, one file each.
//!
//! Every write runs in a `BEGIN IMMEDIATE` transaction: it takes the write lock up
//! front, so two processes never both read-then-upgrade and deadlock into
//! `SQLITE_BUSY`; the busy timeout makes the loser wait instead of failing. No
//! transaction is ever held open across an HTTP request.

pub mod data;
pub mod queue;
pub mod rounds;
pub mod status;
pub mod tokens;
pub mod workers;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

pub use queue::{Claim, ClaimedJob, NewJob};

/// Migrations embedded in the binary and applied when a command opens the database.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

#[derive(Debug, Error)]
pub enum StoreError {
    /// The file the user pointed at cannot be used; exit 2, nothing written.
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
    pool: SqlitePool,
    path: PathBuf,
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
    /// Opens `path`, refusing files that are not SQLite, directories that do not exist
    /// and databases written by a newer seedq; then applies pending migrations.
    pub async fn open(path: &Path, create: Create, max_connections: u32) -> Result<Store> {
        check_file(path, create)?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(create == Create::IfMissing)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(60))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(120))
            .connect_with(options)
            .await
            .map_err(|e| refuse_open(path, e))?;
        let store = Store {
            pool,
            path: path.to_owned(),
        };
        store.check_schema_version().await?;
        MIGRATOR.run(&store.pool).await?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Starts a write transaction holding the write lock from its first statement.
    pub(crate) async fn begin_immediate(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Folds the write-ahead log back into the main file and truncates it.
    pub async fn checkpoint(&self) -> Result<()> {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Refuses a database migrated by a newer seedq: its schema may mean other things.
    async fn check_schema_version(&self) -> Result<()> {
        let has_table: Option<(String,)> = sqlx::query_as(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| refuse_open(&self.path, e))?;
        if has_table.is_none() {
            return Ok(());
        }
        let applied: Vec<(i64,)> = sqlx::query_as("SELECT version FROM _sqlx_migrations")
            .fetch_all(&self.pool)
            .await?;
        let known: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
        if let Some((unknown,)) = applied.iter().find(|(v,)| !known.contains(v)) {
            return Err(StoreError::Refused(format!(
                "{} was written by a newer seedq (schema version {unknown}); upgrade seedq to use it",
                self.path.display()
            )));
        }
        Ok(())
    }
}

/// Checks the path before SQLite touches it, so a wrong path is refused untouched.
fn check_file(path: &Path, create: Create) -> Result<()> {
    let shown = path.display();
    if path.is_dir() {
        return Err(StoreError::Refused(format!(
            "{shown} is a directory; --db takes a database file"
        )));
    }
    if !path.exists() {
        if create == Create::Never {
            return Err(StoreError::Refused(format!(
                "no database at {shown}: run `seedq enqueue owner/repo` first, or pass --db"
            )));
        }
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if !parent.is_dir() {
            return Err(StoreError::Refused(format!(
                "cannot create {shown}: directory {} does not exist",
                parent.display()
            )));
        }
        return Ok(());
    }
    let mut header = [0u8; 16];
    let mut file = std::fs::File::open(path)
        .map_err(|e| StoreError::Refused(format!("cannot open {shown}: {e}")))?;
    let read = file
        .read(&mut header)
        .map_err(|e| StoreError::Refused(format!("cannot read {shown}: {e}")))?;
    if read > 0 && (read < 16 || &header != b"SQLite format 3\0") {
        return Err(StoreError::Refused(format!(
            "{shown} is not a SQLite database; refusing to touch it (pass another --db)"
        )));
    }
    let writable = std::fs::OpenOptions::new().append(true).open(path);
    if let Err(e) = writable {
        return Err(StoreError::Refused(format!(
            "{shown} is not writable ({e}); seedq needs to write to its database"
        )));
    }
    Ok(())
}

fn refuse_open(path: &Path, error: sqlx::Error) -> StoreError {
    StoreError::Refused(format!("cannot open database {}: {error}", path.display()))
}
