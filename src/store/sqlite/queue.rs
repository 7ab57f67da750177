//! The queue's statements on SQLite. Every write runs under `BEGIN IMMEDIATE` (one
//! writer at a time), so a claim's read-then-lease needs no row locks.

use crate::store::jobs::Outcome;
use crate::store::sql::{
    Candidate, DataSql, FetchedPage, Lease, Leased, PageEtag, PageRows, QueueSql, QueueState,
    ReadyJob, Servable,
};
use crate::store::Result;
use sqlx::SqliteConnection;

impl QueueSql for SqliteConnection {
    async fn finish_job(
        &mut self,
        id: i64,
        lease: i64,
        outcome: &Outcome,
        now: i64,
    ) -> Result<u64> {
        let done = match outcome {
            Outcome::Done { rows, .. } => {
                return mark_done(self, id, lease, rows.is_none(), now).await;
            }
            Outcome::Requeue {
                run_at,
                refund_attempt,
                error,
                rest_only,
            } => {
                let refund = i64::from(*refund_attempt);
                let rest_only = i64::from(*rest_only);
                sqlx::query!(
                    "UPDATE job_queue SET state = 'queued', attempts = max(attempts - ?, 0),
                         run_at = ?, last_error = coalesce(?, last_error), lease_owner = NULL,
                         lease_expires_at = NULL, token = NULL, bucket = NULL, points = 0,
                         rest_only = max(rest_only, ?), updated_at = ?
                     WHERE id = ? AND lease = ? AND state = 'running'",
                    refund,
                    run_at,
                    error,
                    rest_only,
                    now,
                    id,
                    lease
                )
                .execute(&mut *self)
                .await?
            }
            Outcome::Fail { error } => {
                sqlx::query!(
                    "UPDATE job_queue SET state = 'failed', last_error = ?, lease_owner = NULL,
                         lease_expires_at = NULL, points = 0, updated_at = ?
                     WHERE id = ? AND lease = ? AND state = 'running'",
                    error,
                    now,
                    id,
                    lease
                )
                .execute(&mut *self)
                .await?
            }
        };
        Ok(done.rows_affected())
    }

    async fn finish_page(
        &mut self,
        id: i64,
        lease: i64,
        page: &FetchedPage<'_>,
        now: i64,
    ) -> Result<u64> {
        // Several statements: each is a call into SQLite's thread, no round trip to a
        // server.
        let written = mark_done(self, id, lease, false, now).await?;
        if written > 0 {
            let PageEtag {
                key,
                etag,
                token,
                next_url,
            } = &page.etag;
            match etag {
                Some(etag) => {
                    sqlx::query!(
                        "INSERT INTO page_etags (page_key, etag, token, next_url, updated_at)
                         VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (page_key) DO UPDATE SET etag = ?2, token = ?3,
                             next_url = ?4, updated_at = ?5",
                        key,
                        etag,
                        token,
                        next_url,
                        now
                    )
                    .execute(&mut *self)
                    .await?;
                }
                None => {
                    sqlx::query!("DELETE FROM page_etags WHERE page_key = ?", key)
                        .execute(&mut *self)
                        .await?;
                }
            }
            match &page.rows {
                PageRows::Children(rows, Some(items)) => self.upsert_children(*rows, items).await?,
                PageRows::Children(_, None) => {}
                PageRows::Pull(values) => self.upsert_pull(*values).await?,
            }
        }
        Ok(written)
    }

    async fn insert_jobs(&mut self, items: &str, now: i64) -> Result<()> {
        // `WHERE true` lets SQLite parse the upsert after a SELECT; `key` is the array
        // index.
        sqlx::query!(
            "INSERT INTO job_queue (repo, kind, pr_number, page, url, dedup_key, priority, run_at,
                                    created_at, updated_at, round, cursor, rest_only)
             SELECT json_extract(value, '$.repo'), json_extract(value, '$.kind'),
                    json_extract(value, '$.pr'), json_extract(value, '$.page'),
                    json_extract(value, '$.url'), json_extract(value, '$.key'),
                    json_extract(value, '$.priority')
                        + 2 * coalesce((SELECT seq - priority * 4294967296 FROM repos
                                        WHERE name = json_extract(value, '$.repo')), 0),
                    ?2, ?2, ?2, json_extract(value, '$.round'),
                    json_extract(value, '$.cursor'), json_extract(value, '$.rest_only')
             FROM json_each(?1) WHERE true ORDER BY key
             ON CONFLICT (dedup_key) DO NOTHING",
            items,
            now
        )
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn rescue_abandoned(&mut self, now: i64) -> Result<()> {
        sqlx::query!(
            "UPDATE job_queue
             SET state = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'queued' END,
                 last_error = CASE WHEN attempts >= max_attempts
                     THEN 'its worker stopped while running it ' || attempts || ' times'
                     ELSE last_error END,
                 lease_owner = NULL, lease_expires_at = NULL, token = NULL, bucket = NULL,
                 points = 0, updated_at = ?1
             WHERE state = 'running'
               AND (lease_expires_at < ?1 OR lease_owner IS NULL
                    OR lease_owner NOT IN (SELECT id FROM workers))",
            now
        )
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn retry_failed(&mut self, repo: Option<&str>, id: Option<i64>, now: i64) -> Result<u64> {
        let done = sqlx::query!(
            "UPDATE job_queue SET state = 'queued', attempts = 0, run_at = ?1, updated_at = ?1
             WHERE state = 'failed' AND (?2 IS NULL OR repo = ?2) AND (?3 IS NULL OR id = ?3)",
            now,
            repo,
            id
        )
        .execute(&mut *self)
        .await?;
        Ok(done.rows_affected())
    }

    async fn next_ready(
        &mut self,
        servable: Servable,
        exclude: &str,
        now: i64,
    ) -> Result<Option<ReadyJob>> {
        let Servable {
            graphql,
            rest,
            rest_any,
        } = servable;
        // The job with the ETag its page got in an earlier round (key: `page_key`).
        let job = sqlx::query_as!(
            ReadyJob,
            r#"SELECT q.id, q.repo, q.kind, q.pr_number, q.page, q.url, q.cursor,
                      q.rest_only AS "rest_only: bool", q.attempts, q.max_attempts, q.round,
                      r.endpoints, r.round_since, r.pr_limit, r.pr_state, r.gql_batch,
                      r.list_etag IS NULL AS "unmarked!: bool",
                      coalesce(e.etag, CASE WHEN q.url = r.list_etag_url THEN r.list_etag END)
                          AS "etag?",
                      coalesce(e.token, CASE WHEN q.url = r.list_etag_url THEN r.list_etag_token END)
                          AS "etag_token?",
                      e.next_url AS "etag_next?"
               FROM job_queue q JOIN repos r ON r.name = q.repo
               LEFT JOIN page_etags e ON e.page_key = q.repo || '|' || q.kind || '|'
                                                      || coalesce(q.pr_number, '') || '|' || q.page
               WHERE q.state = 'queued' AND q.run_at <= ?1
                 AND ((?2 AND q.rest_only = 0) OR (?3 AND (q.rest_only = 1 OR ?4)))
                 AND q.repo NOT IN (SELECT value FROM json_each(?5))
               ORDER BY q.priority, q.id LIMIT 1"#,
            now,
            graphql,
            rest,
            rest_any,
            exclude
        )
        .fetch_optional(&mut *self)
        .await?;
        Ok(job)
    }

    async fn fail_queued(&mut self, repo: &str, error: &str, now: i64) -> Result<u64> {
        let failed = sqlx::query!(
            "UPDATE job_queue SET state = 'failed', last_error = ?1, updated_at = ?2
             WHERE repo = ?3 AND state = 'queued'",
            error,
            now,
            repo
        )
        .execute(&mut *self)
        .await?;
        Ok(failed.rows_affected())
    }

    async fn remove_repo(&mut self, repo: &str, data: bool) -> Result<(u64, u64)> {
        let jobs = sqlx::query!("DELETE FROM job_queue WHERE repo = ?", repo)
            .execute(&mut *self)
            .await?
            .rows_affected();
        // A page key starts with the repository's name and a `|`.
        let prefix = format!("{repo}|");
        sqlx::query!(
            "DELETE FROM page_etags WHERE substr(page_key, 1, length(?1)) = ?1",
            prefix
        )
        .execute(&mut *self)
        .await?;
        sqlx::query!("DELETE FROM repo_access WHERE repo = ?", repo)
            .execute(&mut *self)
            .await?;
        sqlx::query!("DELETE FROM repos WHERE name = ?", repo)
            .execute(&mut *self)
            .await?;
        let mut rows = 0;
        if data {
            for deleted in [
                sqlx::query!("DELETE FROM gh_pulls WHERE repo = ?", repo),
                sqlx::query!("DELETE FROM gh_pr_commits WHERE repo = ?", repo),
                sqlx::query!("DELETE FROM gh_pr_reviews WHERE repo = ?", repo),
                sqlx::query!("DELETE FROM gh_pr_files WHERE repo = ?", repo),
                sqlx::query!("DELETE FROM gh_check_runs WHERE repo = ?", repo),
                sqlx::query!("DELETE FROM gh_pr_comments WHERE repo = ?", repo),
            ] {
                rows += deleted.execute(&mut *self).await?.rows_affected();
            }
        }
        Ok((jobs, rows))
    }

    async fn queue_state(&mut self, now: i64) -> Result<QueueState> {
        // `INDEXED BY`: left alone, the planner counts running jobs by scanning
        // `job_queue_repo`, that is every job ever queued (milliseconds at 100,000).
        let state = sqlx::query!(
            r#"SELECT (SELECT count(*) FROM job_queue INDEXED BY job_queue_running
                       WHERE state = 'running') AS "running!: i64",
                      (SELECT min(run_at) FROM job_queue WHERE state = 'queued') AS "next_run_at: i64",
                      (SELECT rest_only FROM job_queue WHERE state = 'queued' AND run_at <= ?1
                       ORDER BY priority, id LIMIT 1) AS "first_rest_only: bool""#,
            now
        )
        .fetch_one(&mut *self)
        .await?;
        Ok(QueueState {
            running: state.running,
            next_run_at: state.next_run_at,
            first_rest_only: state.first_rest_only,
        })
    }

    async fn batch_candidates(
        &mut self,
        repo: &str,
        limit: i64,
        now: i64,
    ) -> Result<Vec<Candidate>> {
        let rows = sqlx::query!(
            r#"SELECT q.id, q.kind, q.page, p.changed_files
               FROM job_queue q
               LEFT JOIN gh_pulls p ON p.repo = q.repo AND p.number = q.pr_number
               WHERE q.state = 'queued' AND q.run_at <= ?1 AND q.repo = ?2
                 AND q.rest_only = 0 AND q.kind <> 'pulls'
               ORDER BY q.priority, q.id LIMIT ?3"#,
            now,
            repo,
            limit
        )
        .fetch_all(&mut *self)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| Candidate {
                id: r.id,
                kind: r.kind,
                page: r.page,
                changed_files: r.changed_files,
            })
            .collect())
    }

    async fn lease_rest(&mut self, id: i64, lease: Lease<'_>) -> Result<i64> {
        Ok(sqlx::query_scalar!(
            "UPDATE job_queue SET state = 'running', lease = lease + 1, lease_owner = ?,
                 lease_expires_at = ?, token = ?, bucket = 'core', attempts = attempts + 1,
                 updated_at = ?
             WHERE id = ? RETURNING lease",
            lease.owner,
            lease.expires_at,
            lease.token,
            lease.now,
            id
        )
        .fetch_one(&mut *self)
        .await?)
    }

    async fn lease_batch(
        &mut self,
        ids: &str,
        first: i64,
        points: i64,
        lease: Lease<'_>,
    ) -> Result<Vec<Leased>> {
        let rows = sqlx::query!(
            r#"UPDATE job_queue SET state = 'running', lease = lease + 1, lease_owner = ?1,
                   lease_expires_at = ?2, token = ?3, bucket = 'graphql',
                   points = CASE WHEN id = ?4 THEN ?5 ELSE 0 END, attempts = attempts + 1,
                   updated_at = ?6
               WHERE id IN (SELECT value FROM json_each(?7))
               RETURNING id AS "id!", kind, pr_number, page, url, cursor, attempts, max_attempts,
                         round, lease"#,
            lease.owner,
            lease.expires_at,
            lease.token,
            first,
            points,
            lease.now,
            ids
        )
        .fetch_all(&mut *self)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| Leased {
                id: r.id,
                lease: r.lease,
                kind: r.kind,
                pr_number: r.pr_number,
                page: r.page,
                url: r.url,
                cursor: r.cursor,
                attempts: r.attempts,
                max_attempts: r.max_attempts,
                round: r.round,
            })
            .collect())
    }
}

/// Marks a running job done, guarded by its lease, counting a 304 (`not_modified`);
/// rows changed (0: fenced).
async fn mark_done(
    conn: &mut SqliteConnection,
    id: i64,
    lease: i64,
    not_modified: bool,
    now: i64,
) -> Result<u64> {
    let not_modified = i64::from(not_modified);
    let done = sqlx::query!(
        "UPDATE job_queue SET state = 'done', lease_owner = NULL,
             lease_expires_at = NULL, last_error = NULL, points = 0,
             not_modified = not_modified + ?, updated_at = ?
         WHERE id = ? AND lease = ? AND state = 'running'",
        not_modified,
        now,
        id,
        lease
    )
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}
