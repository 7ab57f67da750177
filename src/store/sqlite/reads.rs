//! The read-only queries of `status` on SQLite. In WAL mode they never block the
//! workers, nor wait for them.

use crate::store::sql::{FailedJob, JobCount, PrCounts, ReadSql, RepoRow, WorkerRow};
use crate::store::Result;
use sqlx::SqliteConnection;

impl ReadSql for SqliteConnection {
    async fn repo_rows(&mut self) -> Result<Vec<RepoRow>> {
        Ok(sqlx::query_as!(
            RepoRow,
            "SELECT name, endpoints, gql_batch, gql_queries, gql_timeouts FROM repos
             ORDER BY priority DESC, seq, name"
        )
        .fetch_all(&mut *self)
        .await?)
    }

    async fn access_rows(&mut self) -> Result<Vec<(String, String, bool)>> {
        let rows = sqlx::query!(
            r#"SELECT a.repo, coalesce(t.label, a.token) AS "label!: String",
                      a.sees AS "sees: bool"
               FROM repo_access a LEFT JOIN token_state t ON t.fingerprint = a.token
               ORDER BY a.repo, 2"#
        )
        .fetch_all(&mut *self)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.repo, r.label, r.sees))
            .collect())
    }

    async fn job_counts(&mut self) -> Result<Vec<JobCount>> {
        // A scan of the (repo, state, kind, pr_number) index alone, in its order.
        Ok(sqlx::query_as!(
            JobCount,
            r#"SELECT repo AS "repo!: String", kind AS "kind!: String", state AS "state!: String",
                      count(*) AS "jobs!: i64", 0 AS "not_modified!: i64"
               FROM job_queue GROUP BY repo, state, kind"#
        )
        .fetch_all(&mut *self)
        .await?)
    }

    async fn not_modified_counts(&mut self) -> Result<Vec<JobCount>> {
        // Served by the partial index of the pages answered 304.
        Ok(sqlx::query_as!(
            JobCount,
            r#"SELECT repo AS "repo!: String", kind AS "kind!: String", 'done' AS "state!: String",
                      count(*) AS "jobs!: i64", count(*) AS "not_modified!: i64"
               FROM job_queue WHERE not_modified > 0 AND state = 'done' GROUP BY repo, kind"#
        )
        .fetch_all(&mut *self)
        .await?)
    }

    async fn pr_counts(&mut self) -> Result<Vec<PrCounts>> {
        // Served by the primary key (repo, number) alone.
        Ok(sqlx::query_as!(
            PrCounts,
            r#"SELECT repo AS "repo!: String", count(*) AS "discovered!: i64", min(number) AS "lowest: i64",
                      max(number) AS "highest: i64"
               FROM gh_pulls GROUP BY repo"#
        )
        .fetch_all(&mut *self)
        .await?)
    }

    async fn incomplete_prs(&mut self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query!(
            r#"SELECT repo AS "repo!: String", count(DISTINCT pr_number) AS "prs!: i64" FROM job_queue
               WHERE state <> 'done' AND pr_number IS NOT NULL GROUP BY repo"#
        )
        .fetch_all(&mut *self)
        .await?;
        Ok(rows.into_iter().map(|r| (r.repo, r.prs)).collect())
    }

    async fn repo_names(&mut self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar!("SELECT name FROM repos ORDER BY name")
            .fetch_all(&mut *self)
            .await?)
    }

    async fn failed_jobs(&mut self, limit: i64) -> Result<Vec<FailedJob>> {
        Ok(sqlx::query_as!(
            FailedJob,
            "SELECT id, repo, kind, pr_number, page, attempts, last_error FROM job_queue
             WHERE state = 'failed' ORDER BY updated_at DESC, id LIMIT ?",
            limit
        )
        .fetch_all(&mut *self)
        .await?)
    }

    async fn failed_count(&mut self) -> Result<i64> {
        Ok(sqlx::query_scalar!(
            r#"SELECT count(*) AS "n!: i64" FROM job_queue WHERE state = 'failed'"#
        )
        .fetch_one(&mut *self)
        .await?)
    }

    async fn done_since(&mut self, since: i64) -> Result<(i64, Option<i64>)> {
        let row = sqlx::query!(
            r#"SELECT count(*) AS "n!: i64", min(updated_at) AS "first: i64"
               FROM job_queue WHERE state = 'done' AND updated_at >= ?"#,
            since
        )
        .fetch_one(&mut *self)
        .await?;
        Ok((row.n, row.first))
    }

    async fn worker_rows(&mut self) -> Result<Vec<WorkerRow>> {
        Ok(sqlx::query_as!(
            WorkerRow,
            "SELECT pid, host, started_at, heartbeat_at, reserve FROM workers ORDER BY started_at"
        )
        .fetch_all(&mut *self)
        .await?)
    }
}
