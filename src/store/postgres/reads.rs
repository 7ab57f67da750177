//! The read-only queries of `status` on PostgreSQL. Each runs on its own snapshot and
//! never waits for the workers' row locks. Text is ordered byte-wise (`COLLATE "C"`),
//! as SQLite orders it.

use crate::store::sql::{FailedJob, JobCount, PrCounts, ReadSql, RepoRow, WorkerRow};
use crate::store::Result;
use sqlx::PgConnection;

impl ReadSql for PgConnection {
    async fn repo_rows(&mut self) -> Result<Vec<RepoRow>> {
        Ok(sqlx::query_as!(
            RepoRow,
            r#"SELECT name, endpoints, gql_batch, gql_queries, gql_timeouts FROM repos
               ORDER BY priority DESC, seq, name COLLATE "C""#
        )
        .fetch_all(&mut *self)
        .await?)
    }

    async fn access_rows(&mut self) -> Result<Vec<(String, String, bool)>> {
        let rows = sqlx::query!(
            r#"SELECT a.repo, coalesce(t.label, a.token) AS "label!", a.sees = 1 AS "sees!"
               FROM repo_access a LEFT JOIN token_state t ON t.fingerprint = a.token
               ORDER BY a.repo COLLATE "C", coalesce(t.label, a.token) COLLATE "C""#
        )
        .fetch_all(&mut *self)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.repo, r.label, r.sees))
            .collect())
    }

    async fn job_counts(&mut self) -> Result<Vec<JobCount>> {
        Ok(sqlx::query_as!(
            JobCount,
            r#"SELECT repo, kind, state, count(*) AS "jobs!", 0::bigint AS "not_modified!"
               FROM job_queue GROUP BY repo, state, kind"#
        )
        .fetch_all(&mut *self)
        .await?)
    }

    async fn not_modified_counts(&mut self) -> Result<Vec<JobCount>> {
        Ok(sqlx::query_as!(
            JobCount,
            r#"SELECT repo, kind, 'done' AS "state!", count(*) AS "jobs!",
                      count(*) AS "not_modified!"
               FROM job_queue WHERE not_modified > 0 AND state = 'done' GROUP BY repo, kind"#
        )
        .fetch_all(&mut *self)
        .await?)
    }

    async fn pr_counts(&mut self) -> Result<Vec<PrCounts>> {
        Ok(sqlx::query_as!(
            PrCounts,
            r#"SELECT repo, count(*) AS "discovered!", min(number) AS "lowest",
                      max(number) AS "highest"
               FROM gh_pulls GROUP BY repo"#
        )
        .fetch_all(&mut *self)
        .await?)
    }

    async fn incomplete_prs(&mut self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query!(
            r#"SELECT repo, count(DISTINCT pr_number) AS "prs!" FROM job_queue
               WHERE state <> 'done' AND pr_number IS NOT NULL GROUP BY repo"#
        )
        .fetch_all(&mut *self)
        .await?;
        Ok(rows.into_iter().map(|r| (r.repo, r.prs)).collect())
    }

    async fn repo_names(&mut self) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar!(r#"SELECT name FROM repos ORDER BY name COLLATE "C""#)
                .fetch_all(&mut *self)
                .await?,
        )
    }

    async fn failed_jobs(&mut self, limit: i64) -> Result<Vec<FailedJob>> {
        Ok(sqlx::query_as!(
            FailedJob,
            "SELECT id, repo, kind, pr_number, page, attempts, last_error FROM job_queue
             WHERE state = 'failed' ORDER BY updated_at DESC, id LIMIT $1",
            limit
        )
        .fetch_all(&mut *self)
        .await?)
    }

    async fn failed_count(&mut self) -> Result<i64> {
        Ok(
            sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM job_queue WHERE state = 'failed'"#)
                .fetch_one(&mut *self)
                .await?,
        )
    }

    async fn done_since(&mut self, since: i64) -> Result<(i64, Option<i64>)> {
        let row = sqlx::query!(
            r#"SELECT count(*) AS "n!", min(updated_at) AS "first"
               FROM job_queue WHERE state = 'done' AND updated_at >= $1"#,
            since
        )
        .fetch_one(&mut *self)
        .await?;
        Ok((row.n, row.first))
    }

    async fn worker_rows(&mut self) -> Result<Vec<WorkerRow>> {
        Ok(sqlx::query_as!(
            WorkerRow,
            "SELECT w.pid, w.host, w.started_at, w.heartbeat_at, w.reserve FROM workers w
             ORDER BY w.started_at"
        )
        .fetch_all(&mut *self)
        .await?)
    }
}
