//! Worker rows' statements on PostgreSQL.

use crate::store::sql::{WorkerBeat, WorkerSql};
use crate::store::Result;
use sqlx::PgConnection;

impl WorkerSql for PgConnection {
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
                 VALUES ($1, $2, $3, $4, $4, $5)
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
                 VALUES ($1, $2, $3, $4, $4, $5)",
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
        sqlx::query!(
            "UPDATE workers SET heartbeat_at = $1 WHERE id = $2",
            now,
            id
        )
        .execute(&mut *self)
        .await?;
        sqlx::query!(
            // A row locked now is being finished, released or taken over: its lease
            // needs no renewal, and waiting for it could close a circle of waits.
            "UPDATE job_queue SET lease_expires_at = $1
             WHERE id IN (SELECT id FROM job_queue WHERE state = 'running' AND lease_owner = $2
                          FOR UPDATE SKIP LOCKED)",
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
            "SELECT w.id, w.pid, w.host, w.heartbeat_at FROM workers w"
        )
        .fetch_all(&mut *self)
        .await?)
    }

    async fn delete_worker(&mut self, id: &str) -> Result<()> {
        sqlx::query!("DELETE FROM workers WHERE id = $1", id)
            .execute(&mut *self)
            .await?;
        Ok(())
    }
}
