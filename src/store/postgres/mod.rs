//! The PostgreSQL backend (`--db postgres://…`): connecting (and refusing), migrations,
//! and the statements of each table family (one file each), the same verbs as SQLite's.
//!
//! Several processes, on several hosts, write at once. What SQLite gets from its one
//! writer, PostgreSQL gets from row locks, in `READ COMMITTED` transactions:
//! - a claim locks the jobs it takes `FOR UPDATE SKIP LOCKED`, so concurrent claims
//!   take different jobs without waiting for each other;
//! - a token's quota is taken by one `UPDATE` that re-checks what is left on the row
//!   it locked, so two processes never both spend a bucket's last units;
//! - a read-modify-write of a repository's row (`enqueue`, a learned batch size) locks
//!   the row first;
//! - every other write is guarded by the job's lease, as on SQLite.
//!
//! Two transactions that lock rows in opposite orders (two token buckets, say) are a
//! deadlock that PostgreSQL breaks by failing one; the group commit applies that one
//! again (`commit`, [`retryable`]).

mod copy;
mod data;
mod queue;
pub(crate) use queue::claim_rest;
mod reads;
mod repos;
mod tokens;
mod workers;

use crate::store::mask_password as shown;
use crate::store::{Create, Result, StoreError};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool, Postgres, Transaction};
use std::str::FromStr;
use std::time::Duration;

/// The PostgreSQL migrations, embedded in the binary and applied when a command opens
/// the database.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// An open PostgreSQL database; cheap to clone.
#[derive(Clone)]
pub(crate) struct Db {
    pub pool: PgPool,
    /// For the connection that listens for new work, which is not the pool's.
    url: String,
}

/// The channel on which a transaction that added jobs says so (`insert_jobs`).
const WORK_CHANNEL: &str = "seedq_work";

impl Db {
    /// Connects to `url`, refusing a database that holds another application's tables
    /// or a newer seedq's schema (and, with `Create::Never`, one with no seedq schema
    /// yet); then applies pending migrations.
    pub async fn open(url: &str, create: Create, max_connections: u32) -> Result<Db> {
        // The group commit's transactions run on connections of their own.
        let committers = crate::store::commit::PG_COMMITTERS as u32;
        let pool = connect(url, max_connections.max(1) + committers).await?;
        check_schema(url, &pool, create).await?;
        // sqlx takes an advisory lock: processes starting together migrate once.
        MIGRATOR.run(&pool).await?;
        Ok(Db {
            pool,
            url: url.to_owned(),
        })
    }

    /// A one-connection handle for a reader beside the workers (the live display): no
    /// migrations, and its transactions are read-only.
    pub async fn open_reader(url: &str) -> Result<Db> {
        let options = options(url)?.options([("default_transaction_read_only", "on")]);
        let pool = pool(url, options, 1).await?;
        Ok(Db {
            pool,
            url: url.to_owned(),
        })
    }

    /// Starts a write transaction.
    pub async fn begin(&self) -> Result<Transaction<'static, Postgres>> {
        Ok(self.pool.begin().await?)
    }

    /// A connection for reads.
    pub async fn read(&self) -> Result<PoolConnection<Postgres>> {
        Ok(self.pool.acquire().await?)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Calls `on_work` whenever a transaction of any process added jobs (`LISTEN`), on
    /// a connection of its own, until `stop`. A hint only: the workers still poll, so a
    /// lost connection costs latency, not work.
    pub async fn listen(&self, on_work: impl Fn(), stop: tokio_util::sync::CancellationToken) {
        let listening = async {
            let mut listener = sqlx::postgres::PgListener::connect(&self.url).await?;
            listener.listen(WORK_CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let mut listener = match listening.await {
            Ok(listener) => listener,
            Err(e) => {
                tracing::debug!("not listening for other processes' new work ({e}); polling");
                return;
            }
        };
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                heard = listener.recv() => match heard {
                    Ok(_) => on_work(),
                    Err(e) => {
                        tracing::debug!("listening for new work: {e}; polling meanwhile");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                },
            }
        }
    }
}

/// Whether a failed transaction may simply run again: PostgreSQL broke a deadlock
/// (40P01) or a serialization conflict (40001) by failing it, and nothing of it was
/// written.
pub fn retryable(error: &StoreError) -> bool {
    let StoreError::Sql(error) = error else {
        return false;
    };
    let code = error.as_database_error().and_then(|e| e.code());
    matches!(code.as_deref(), Some("40P01" | "40001"))
}

fn options(url: &str) -> Result<PgConnectOptions> {
    let options = PgConnectOptions::from_str(url).map_err(|e| {
        StoreError::Refused(format!(
            "--db {}: not a PostgreSQL URL ({e}); expected postgres://USER@HOST[:PORT]/DATABASE",
            shown(url)
        ))
    })?;
    // seedq never leaves a transaction idle (none is held across an HTTP request): a
    // session idle inside one for long is a process stopped there (Ctrl-Z, a frozen
    // host), whose row locks would stop every other process. The server ends it.
    //
    // A commit does not wait for its WAL to reach the disk (`synchronous_commit = off`,
    // as SQLite's `synchronous = NORMAL`): a crash of seedq loses nothing, and a crash
    // of the server loses at most its last fraction of a second of commits, whose pages
    // are then fetched again; the database stays consistent either way. Waiting for the
    // disk at every commit would bound the queue by the disk's flush rate instead.
    //
    // Every statement is prepared once per connection and planned once
    // (`force_generic_plan`): left to choose, the server plans the queue's statements
    // again at each execution (a claim's joins cost more to plan, about 1 ms, than to
    // run), and their plans do not depend on the values bound.
    Ok(options.application_name("seedq").options([
        ("idle_in_transaction_session_timeout", "60s"),
        ("synchronous_commit", "off"),
        ("plan_cache_mode", "force_generic_plan"),
    ]))
}

async fn connect(url: &str, max_connections: u32) -> Result<PgPool> {
    pool(url, options(url)?, max_connections).await
}

/// How long the first connection may take before the server counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A pool on `options`, after one connection attempt that answers at once: a pool
/// alone retries a refused connection until its acquire timeout, which is meant for a
/// busy pool (120 s), not for a server that is not there.
async fn pool(url: &str, options: PgConnectOptions, max_connections: u32) -> Result<PgPool> {
    let first = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options))
        .await
        .map_err(|_| {
            StoreError::Unreachable(format!(
                "cannot connect to PostgreSQL at {}: no answer in {} s; is the server \
                 running and reachable?",
                shown(url),
                CONNECT_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|e| refuse_connect(url, e))?;
    first.close().await.ok();
    // A connection taken from the pool is not pinged first: that is a round trip
    // before every transaction, and a connection the server dropped fails the
    // transaction anyway (the group commit applies it again, `write_tx!`, or the
    // worker's request fails and its job is rescued).
    PgPoolOptions::new()
        .max_connections(max_connections)
        .test_before_acquire(false)
        .acquire_timeout(Duration::from_secs(120))
        .connect_with(options)
        .await
        .map_err(|e| refuse_connect(url, e))
}

/// Why a connection failed, saying which: the server unreachable (exit 1: it may come
/// back), or the URL naming a user, password or database the server refuses (exit 2).
fn refuse_connect(url: &str, error: sqlx::Error) -> StoreError {
    let shown = shown(url);
    let code = error
        .as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.into_owned());
    match code.as_deref() {
        // invalid_password, invalid_authorization_specification
        Some("28P01" | "28000") => StoreError::Refused(format!(
            "cannot connect to {shown}: the server refused the user or password ({error})"
        )),
        // invalid_catalog_name
        Some("3D000") => StoreError::Refused(format!(
            "cannot connect to {shown}: no such database ({error}); create it first \
             (createdb) or pass another --db"
        )),
        Some(_) => StoreError::Refused(format!("cannot connect to {shown}: {error}")),
        None => StoreError::Unreachable(format!(
            "cannot connect to PostgreSQL at {shown}: {error}; is the server running and \
             reachable?"
        )),
    }
}

/// Refuses a schema of another application (seedq would add its tables to it) or of
/// a newer seedq; with `Create::Never`, a database with no seedq schema yet.
async fn check_schema(url: &str, pool: &PgPool, create: Create) -> Result<()> {
    let shown = shown(url);
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = current_schema() ORDER BY table_name",
    )
    .fetch_all(pool)
    .await?;
    if tables.is_empty() {
        if create == Create::Never {
            return Err(StoreError::Refused(format!(
                "no seedq database at {shown}: run `seedq enqueue owner/repo` first, or pass \
                 another --db"
            )));
        }
        return Ok(());
    }
    if !tables.iter().any(|name| name == "_sqlx_migrations") {
        return Err(StoreError::Refused(format!(
            "{shown} holds tables of another application (such as {:?}) and no seedq \
             schema; refusing to touch it (pass another --db, or another schema with \
             ?options=-csearch_path%3DNAME)",
            tables[0]
        )));
    }
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations")
        .fetch_all(pool)
        .await?;
    let known: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
    match applied.iter().find(|v| !known.contains(v)) {
        Some(unknown) => Err(StoreError::Refused(format!(
            "{shown} was written by a newer seedq (schema version {unknown}); upgrade seedq \
             to use it"
        ))),
        None => Ok(()),
    }
}
