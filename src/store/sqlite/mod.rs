//! The SQLite backend: opening (and refusing) database files, migrations, and the
//! statements of each table family (one file each).
//!
//! Every write runs in a `BEGIN IMMEDIATE` transaction: it takes the write lock up
//! front, so two processes never both read-then-upgrade and deadlock into
//! `SQLITE_BUSY`; the busy timeout makes the loser wait instead of failing. One writer
//! at a time also makes every claim's read-then-lease atomic without row locks.

mod copy;
mod data;
mod queue;
mod reads;
mod repos;
mod tokens;
mod workers;

use crate::store::{Create, Result, StoreError};
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Database, Sqlite, SqlitePool, TransactionManager};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The SQLite migrations, embedded in the binary and applied when a command opens the
/// database.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// An open SQLite database; cheap to clone.
#[derive(Clone)]
pub(crate) struct Db {
    pub pool: SqlitePool,
    /// The connection every write transaction of this process runs on.
    writer: Writer,
}

impl Db {
    /// Opens `path`, refusing files that are not SQLite, directories that do not exist
    /// and databases written by a newer seedq; then applies pending migrations.
    pub async fn open(path: &Path, create: Create, max_connections: u32) -> Result<Db> {
        check_file(path, create)?;
        // Judge an existing file on a read-only connection first: opening the pool
        // switches the file to WAL mode, which is already a write. A hot rollback
        // journal (a process killed while creating the database) needs a writer to
        // recover it first, so that file is judged on the pool instead.
        let exists = std::fs::metadata(path).is_ok_and(|m| m.len() > 0);
        let mut judge_on_pool = exists && journal_path(path).exists();
        if exists && !judge_on_pool {
            judge_on_pool = !check_schema(path).await?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(create == Create::IfMissing)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(60))
            // SQLite checkpoints the WAL every 1,000 pages on its own; this also
            // truncates the file after a checkpoint, so a long run's WAL stays small.
            .pragma("journal_size_limit", JOURNAL_SIZE_LIMIT.to_string())
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(120))
            // A local file needs no ping before each use (a round trip per transaction).
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(|e| refuse_open(path, e))?;
        if judge_on_pool {
            let mut conn = pool.acquire().await?;
            check_schema_on(path, &mut conn).await?;
        }
        MIGRATOR.run(&pool).await?;
        Ok(Db {
            writer: Writer::new(&pool),
            pool,
        })
    }

    /// A read-only handle on an existing database with a single connection, for
    /// readers that run beside the workers (the live display). It applies no
    /// migrations and cannot write.
    pub async fn open_reader(path: &Path) -> Result<Db> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .read_only(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        Ok(Db {
            writer: Writer::new(&pool),
            pool,
        })
    }

    /// Starts a write transaction on the writer connection (see [`Writer`]).
    pub async fn begin(&self) -> Result<WriteTx> {
        self.writer.begin_immediate().await
    }

    /// A connection for reads, beside the writer's.
    pub async fn read(&self) -> Result<PoolConnection<Sqlite>> {
        Ok(self.pool.acquire().await?)
    }

    /// Folds the write-ahead log back into the main file and truncates it.
    pub async fn checkpoint(&self) -> Result<()> {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn close(&self) {
        // The writer connection goes back to the pool first: closing waits for it.
        drop(self.writer.conn.lock().await.take());
        self.pool.close().await;
    }
}

/// The connection every write transaction of a process runs on, taken from the pool at
/// the first write and kept: handing a connection back to sqlx's pool costs a ping (a
/// round trip to SQLite's thread) and a task each time. The lock orders this process's
/// transactions; reads use the pool's other connections.
#[derive(Clone)]
pub(crate) struct Writer {
    pool: SqlitePool,
    conn: std::sync::Arc<tokio::sync::Mutex<Option<PoolConnection<Sqlite>>>>,
}

impl Writer {
    fn new(pool: &SqlitePool) -> Writer {
        Writer {
            pool: pool.clone(),
            conn: Default::default(),
        }
    }

    /// Starts a write transaction holding the write lock from its first statement
    /// (waiting for this process's transaction in progress).
    pub(crate) async fn begin_immediate(&self) -> Result<WriteTx> {
        let mut conn = self.conn.clone().lock_owned().await;
        if conn.is_none() {
            *conn = Some(self.pool.acquire().await?);
        }
        let mut tx = WriteTx { conn, open: false };
        Manager::begin(tx.conn(), Some("BEGIN IMMEDIATE".into())).await?;
        tx.open = true;
        Ok(tx)
    }
}

/// A `BEGIN IMMEDIATE` transaction on the store's writer connection. Dropped without
/// `commit`, it is rolled back (before the connection's next statement), as sqlx's own
/// `Transaction` is.
pub(crate) struct WriteTx {
    conn: tokio::sync::OwnedMutexGuard<Option<PoolConnection<Sqlite>>>,
    open: bool,
}

type Manager = <Sqlite as Database>::TransactionManager;

impl WriteTx {
    fn conn(&mut self) -> &mut SqliteConnection {
        self.conn
            .as_deref_mut()
            .expect("the writer connection is taken at begin")
    }

    pub async fn commit(mut self) -> Result<()> {
        Manager::commit(self.conn()).await?;
        self.open = false;
        Ok(())
    }
}

impl std::ops::Deref for WriteTx {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        self.conn
            .as_deref()
            .expect("the writer connection is taken at begin")
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        self.conn()
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        if self.open {
            Manager::start_rollback(self.conn());
        }
    }
}

/// Bytes the WAL file is truncated to after a checkpoint (64 MiB).
pub const JOURNAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// Refuses, on a read-only connection, a database migrated by a newer seedq (its schema
/// may mean other things) and a SQLite database of another application (seedq would
/// add its tables to it). Returns false when a read-only connection cannot judge the
/// file (SQLite must first recover it, which takes a writer).
async fn check_schema(path: &Path) -> Result<bool> {
    use sqlx::{ConnectOptions, Connection};
    let connected = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .busy_timeout(Duration::from_secs(60))
        .connect()
        .await;
    let mut conn = match connected {
        Ok(conn) => conn,
        Err(e) if needs_writer(&e) => return Ok(false),
        Err(e) => return Err(refuse_open(path, e)),
    };
    let result = check_schema_on(path, &mut conn).await;
    let _ = conn.close().await;
    match result {
        Err(StoreError::Sql(e)) if needs_writer(&e) => Ok(false),
        Err(StoreError::Sql(e)) => Err(refuse_open(path, e)),
        other => other.map(|()| true),
    }
}

/// SQLITE_READONLY and its extended codes (a hot journal or a WAL to recover).
fn needs_writer(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|e| e.code())
        .and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| code & 0xff == 8)
}

/// The checks of [`check_schema`], on a given connection.
async fn check_schema_on(path: &Path, conn: &mut sqlx::SqliteConnection) -> Result<()> {
    let shown = path.display();
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')
         AND name NOT LIKE 'sqlite_%'",
    )
    .fetch_all(&mut *conn)
    .await?;
    if tables.is_empty() {
        Ok(())
    } else if !tables.iter().any(|(name,)| name == "_sqlx_migrations") {
        Err(StoreError::Refused(format!(
            "{shown} is a SQLite database of another application (tables such as {:?}, no \
             seedq schema); refusing to touch it (pass another --db)",
            tables[0].0
        )))
    } else {
        let applied: Vec<(i64,)> = sqlx::query_as("SELECT version FROM _sqlx_migrations")
            .fetch_all(&mut *conn)
            .await?;
        let known: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
        match applied.iter().find(|(v,)| !known.contains(v)) {
            Some((unknown,)) => Err(StoreError::Refused(format!(
                "{shown} was written by a newer seedq (schema version {unknown}); upgrade seedq to use it"
            ))),
            None => Ok(()),
        }
    }
}

/// SQLite's rollback journal next to `path`.
fn journal_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-journal");
    PathBuf::from(name)
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
