//! Which backend a store runs on, and the two ways into it: a write transaction and a
//! read connection. Both hand the caller's code a connection that implements every
//! statement ([`super::sql::Sql`]), so that code is written once and compiled for each
//! backend.

#[cfg(feature = "postgres")]
use super::postgres;
#[cfg(feature = "sqlite")]
use super::sqlite;

/// An open database of either backend; cheap to clone.
#[derive(Clone)]
pub(crate) enum Db {
    #[cfg(feature = "sqlite")]
    Sqlite(sqlite::Db),
    #[cfg(feature = "postgres")]
    Postgres(postgres::Db),
}

/// `write_tx!(db, |tx| body)`: runs `body` with `tx` bound to a new write
/// transaction's connection, then commits and gives the body's value. A `?` in the
/// body leaves without committing: the transaction is dropped, which rolls it back.
/// A transaction that the database failed to break a deadlock or a serialization
/// conflict (PostgreSQL) wrote nothing, and runs again, up to [`MAX_TRIES`] times in
/// all: the body must not consume what it uses.
macro_rules! write_tx {
    ($db:expr, |$tx:ident| $body:expr) => {{
        $crate::store::db::retried!(
            async {
                Ok(match $db {
                    #[cfg(feature = "sqlite")]
                    $crate::store::db::Db::Sqlite(db) => {
                        let mut open = db.begin().await?;
                        let $tx = &mut *open;
                        let value = $body;
                        open.commit().await?;
                        value
                    }
                    #[cfg(feature = "postgres")]
                    $crate::store::db::Db::Postgres(db) => {
                        let mut open = db.begin().await?;
                        let $tx = &mut *open;
                        let value = $body;
                        open.commit().await?;
                        value
                    }
                })
            }
            .await
        )?
    }};
}

/// `retried!(attempt)`: evaluates `attempt` (a transaction, as an awaited `Result`)
/// again while the database failed it to break a deadlock or a serialization
/// conflict, up to [`MAX_TRIES`] times in all; gives the last result.
macro_rules! retried {
    ($attempt:expr) => {{
        let mut tries = 1;
        loop {
            let attempt: $crate::store::Result<_> = $attempt;
            match attempt {
                Err(e)
                    if tries < $crate::store::db::MAX_TRIES && $crate::store::db::retryable(&e) =>
                {
                    tracing::debug!("a transaction was failed to break a deadlock ({e}); again");
                    tries += 1;
                }
                other => break other,
            }
        }
    }};
}

/// Most times a write transaction runs when the database keeps failing it to break
/// deadlocks.
pub(crate) const MAX_TRIES: u32 = 5;

/// `read!(db, |conn| body)`: runs `body` with `conn` bound to a pooled connection, for
/// reads outside any write transaction.
macro_rules! read {
    ($db:expr, |$conn:ident| $body:expr) => {
        match $db {
            #[cfg(feature = "sqlite")]
            $crate::store::db::Db::Sqlite(db) => {
                let mut pooled = db.read().await?;
                let $conn = &mut *pooled;
                $body
            }
            #[cfg(feature = "postgres")]
            $crate::store::db::Db::Postgres(db) => {
                let mut pooled = db.read().await?;
                let $conn = &mut *pooled;
                $body
            }
        }
    };
}

pub(crate) use {read, retried, write_tx};

/// Whether a failed transaction may simply run again (nothing of it was written):
/// PostgreSQL broke a deadlock or a serialization conflict by failing it.
pub(crate) fn retryable(error: &super::StoreError) -> bool {
    #[cfg(feature = "postgres")]
    if postgres::retryable(error) {
        return true;
    }
    let _ = error;
    false
}
