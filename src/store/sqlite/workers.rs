//! Worker rows' statements on SQLite.

use crate::store::sql::{WorkerBeat, WorkerSql};
use crate::store::Result;
use sqlx::SqliteConnection;

impl WorkerSql for SqliteConnection {
    async fn add_worker(
        &mut self,
        id: &str,
        pid: i64,
        host: &str,
        reserve: i64,
        now: i64,
        if_missing: bool,
    ) -> Result<bool> {
        let added = if if_missing {
            sqlx::query!(
                "INSERT INTO workers (id, pid, host, started_at, heartbeat_at, reserve)
                 VALUES (?1, ?2, ?3, ?4, ?4, ?5)
                 ON CONFLICT (id) DO NOTHING",
                id,
                pid,
                host,
                now,
                reserve
            )
            .execute(&mut *self)
            .await?
        } else {
            sqlx::query!(
                "INSERT INTO workers (id, pid, host, started_at, heartbeat_at, reserve)
                 VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
                id,
                pid,
                host,
                now,
                reserve
            )
            .execute(&mut *self)
            .await?
        };
        Ok(added.rows_affected() > 0)
    }

    async fn beat(&mut self, id: &str, now: i64, lease_expires_at: i64) -> Result<()> {
        sqlx::query!("UPDATE workers SET heartbeat_at = ? WHERE id = ?", now, id)
            .execute(&mut *self)
            .await?;
        sqlx::query!(
            "UPDATE job_queue SET lease_expires_at = ? WHERE state = 'running' AND lease_owner = ?",
            lease_expires_at,
            id
        )
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn worker_beats(&mut self) -> Result<Vec<WorkerBeat>> {
        Ok(sqlx::query_as!(
            WorkerBeat,
            "SELECT id, pid, host, heartbeat_at FROM workers"
        )
        .fetch_all(&mut *self)
        .await?)
    }

    async fn delete_worker(&mut self, id: &str) -> Result<()> {
        sqlx::query!("DELETE FROM workers WHERE id = ?", id)
            .execute(&mut *self)
            .await?;
        Ok(())
    }
}
