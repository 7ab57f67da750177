//! A PostgreSQL server for the tests and the benchmark: which one
//! (`SEEDQ_TEST_POSTGRES`), whether it answers, and databases of one run's own.

use sqlx::Connection;
use std::future::Future;

/// The server the PostgreSQL tests use (a database on it that exists, to connect
/// to while creating each test's own).
pub fn server() -> String {
    std::env::var("SEEDQ_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Whether the tests run on PostgreSQL (`SEEDQ_TEST_BACKEND=postgres`).
pub fn wanted() -> bool {
    std::env::var("SEEDQ_TEST_BACKEND").is_ok_and(|b| b == "postgres")
}

/// Whether the server answers a connection.
pub fn reachable() -> bool {
    run(&server(), |conn| async move { conn.close().await }).is_ok()
}

/// Runs `f` on a new connection to `url`.
pub fn run<T, F, Fut>(url: &str, f: F) -> Result<T, sqlx::Error>
where
    F: FnOnce(sqlx::PgConnection) -> Fut,
    Fut: Future<Output = Result<T, sqlx::Error>>,
{
    let url = url.to_owned();
    block_on(async move {
        let conn = sqlx::PgConnection::connect(&url).await?;
        f(conn).await
    })
}

/// A database of one test's own, dropped with it.
pub struct Scratch {
    pub url: String,
    name: String,
}

impl Scratch {
    pub fn create() -> Scratch {
        let name = format!("seedq_test_{}", uuid::Uuid::new_v4().simple());
        let server = server();
        let create = format!("CREATE DATABASE {name}");
        run(&server, move |mut conn| async move {
            sqlx::query(&create).execute(&mut conn).await.map(|_| ())
        })
        .unwrap_or_else(|e| panic!("cannot create a test database on {server}: {e}"));
        let url = match server.rsplit_once('/') {
            Some((root, _)) => format!("{root}/{name}"),
            None => panic!("SEEDQ_TEST_POSTGRES={server}: expected postgres://USER@HOST/DB"),
        };
        Scratch { url, name }
    }

    /// Tables in the database.
    pub fn tables(&self) -> i64 {
        run(&self.url, |mut conn| async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM information_schema.tables
                 WHERE table_schema = current_schema()",
            )
            .fetch_one(&mut conn)
            .await
        })
        .unwrap_or(0)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let _ = run(&server(), move |mut conn| async move {
            sqlx::query(&drop).execute(&mut conn).await.map(|_| ())
        });
    }
}

fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}
