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
/// transaction's connection, then commits and gives the body's value. A `?` or
/// `return` in the body leaves without committing: the transaction is dropped, which
/// rolls it back.
macro_rules! write_tx {
    ($db:expr, |$tx:ident| $body:expr) => {
        match $db {
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
        }
    };
}

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

pub(crate) use {read, write_tx};

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
