//! The queue's statements on PostgreSQL. A claim locks the jobs it reads `FOR UPDATE
//! SKIP LOCKED`: a concurrent claim passes over them instead of waiting, and takes the
//! next ones.

use crate::store::jobs::Outcome;
use crate::store::sql::{
    Candidate, FetchedPage, Lease, Leased, QueueSql, QueueState, ReadyJob, Servable,
};
use crate::store::Result;
use sqlx::PgConnection;

impl QueueSql for PgConnection {
    async fn finish_job(
        &mut self,
        id: i64,
        lease: i64,
        outcome: &Outcome,
        now: i64,
    ) -> Result<u64> {
        let done = match outcome {
            Outcome::Done { rows, .. } => {
                let not_modified = i64::from(rows.is_none());
                sqlx::query!(
                    "UPDATE job_queue SET state = 'done', lease_owner = NULL,
                         lease_expires_at = NULL, last_error = NULL, points = 0,
                         not_modified = not_modified + $1, updated_at = $2
                     WHERE id = $3 AND lease = $4 AND state = 'running'",
                    not_modified,
                    now,
                    id,
                    lease
                )
                .execute(&mut *self)
                .await?
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
                    "UPDATE job_queue SET state = 'queued', attempts = GREATEST(attempts - $1, 0),
                         run_at = $2, last_error = coalesce($3, last_error), lease_owner = NULL,
                         lease_expires_at = NULL, token = NULL, bucket = NULL, points = 0,
                         rest_only = GREATEST(rest_only, $4), updated_at = $5
                     WHERE id = $6 AND lease = $7 AND state = 'running'",
                    refund,
                    run_at,
                    error.as_deref(),
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
                    "UPDATE job_queue SET state = 'failed', last_error = $1, lease_owner = NULL,
                         lease_expires_at = NULL, points = 0, updated_at = $2
                     WHERE id = $3 AND lease = $4 AND state = 'running'",
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
        // One statement, one round trip: the job done and, only if it was, its page's
        // ETag stored (or forgotten when the page came without one) and its rows.
        let finishing = super::data::Finishing::of(id, lease, &page.etag, now);
        super::data::finish_page(self, finishing, &page.rows).await
    }

    async fn insert_jobs(&mut self, items: &str, now: i64) -> Result<()> {
        // Jobs added wake the other processes' idle workers (`Db::listen`) when this
        // transaction commits; PostgreSQL sends one notification per transaction.
        sqlx::query_scalar!(
            r#"WITH added AS (
                   INSERT INTO job_queue (repo, kind, pr_number, page, url, dedup_key, priority,
                                          run_at, created_at, updated_at, round, cursor, rest_only)
                   SELECT j.value ->> 'repo', j.value ->> 'kind', (j.value ->> 'pr')::bigint,
                          (j.value ->> 'page')::bigint, j.value ->> 'url', j.value ->> 'key',
                          (j.value ->> 'priority')::bigint
                              + 2 * coalesce((SELECT r.seq - r.priority * 4294967296
                                              FROM repos r WHERE r.name = j.value ->> 'repo'), 0),
                          $2, $2, $2,
                          (j.value ->> 'round')::bigint, j.value ->> 'cursor',
                          (j.value ->> 'rest_only')::bigint
                   FROM jsonb_array_elements($1::text::jsonb) WITH ORDINALITY AS j(value, n)
                   ORDER BY j.n
                   ON CONFLICT (dedup_key) DO NOTHING
                   RETURNING id)
               SELECT count(*) AS "notified!"
               FROM (SELECT pg_notify('seedq_work', '') FROM (SELECT 1 FROM added LIMIT 1) one) n"#,
            items,
            now
        )
        .fetch_one(&mut *self)
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
                 points = 0, updated_at = $1
             WHERE state = 'running'
               AND (lease_expires_at < $1 OR lease_owner IS NULL
                    OR lease_owner NOT IN (SELECT id FROM workers))",
            now
        )
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn retry_failed(&mut self, repo: Option<&str>, id: Option<i64>, now: i64) -> Result<u64> {
        let done = sqlx::query!(
            "UPDATE job_queue SET state = 'queued', attempts = 0, run_at = $1, updated_at = $1
             WHERE state = 'failed' AND ($2::text IS NULL OR repo = $2)
               AND ($3::bigint IS NULL OR id = $3)",
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
            r#"WITH q AS (
                   SELECT q.id, q.repo, q.kind, q.pr_number, q.page, q.url, q.cursor,
                          q.rest_only, q.attempts, q.max_attempts, q.round
                   FROM job_queue q
                   WHERE q.state = 'queued' AND q.run_at <= $1
                     AND (($2 AND q.rest_only = 0) OR ($3 AND (q.rest_only = 1 OR $4)))
                     AND q.repo NOT IN (SELECT jsonb_array_elements_text($5::text::jsonb))
                   ORDER BY q.priority, q.id LIMIT 1
                   FOR UPDATE SKIP LOCKED)
               SELECT q.id AS "id!", q.repo AS "repo!", q.kind AS "kind!", q.pr_number,
                      q.page AS "page!", q.url AS "url!", q.cursor,
                      q.rest_only = 1 AS "rest_only!", q.attempts AS "attempts!",
                      q.max_attempts AS "max_attempts!", q.round AS "round!",
                      r.endpoints, r.round_since, r.pr_limit, r.pr_state, r.gql_batch,
                      r.list_etag IS NULL AS "unmarked!",
                      coalesce(e.etag, CASE WHEN q.url = r.list_etag_url THEN r.list_etag END)
                          AS "etag?",
                      coalesce(e.token, CASE WHEN q.url = r.list_etag_url THEN r.list_etag_token END)
                          AS "etag_token?",
                      e.next_url AS "etag_next?"
               FROM q JOIN repos r ON r.name = q.repo
               LEFT JOIN page_etags e
                   ON e.page_key = q.repo || '|' || q.kind || '|'
                                   || coalesce(q.pr_number::text, '') || '|' || q.page::text"#,
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
            "UPDATE job_queue SET state = 'failed', last_error = $1, updated_at = $2
             WHERE repo = $3 AND state = 'queued'",
            error,
            now,
            repo
        )
        .execute(&mut *self)
        .await?;
        Ok(failed.rows_affected())
    }

    async fn remove_repo(&mut self, repo: &str, data: bool) -> Result<(u64, u64)> {
        let jobs = sqlx::query!("DELETE FROM job_queue WHERE repo = $1", repo)
            .execute(&mut *self)
            .await?
            .rows_affected();
        // A page key starts with the repository's name and a `|`.
        let prefix = format!("{repo}|");
        sqlx::query!(
            "DELETE FROM page_etags WHERE left(page_key, length($1)) = $1",
            prefix
        )
        .execute(&mut *self)
        .await?;
        sqlx::query!("DELETE FROM repo_access WHERE repo = $1", repo)
            .execute(&mut *self)
            .await?;
        sqlx::query!("DELETE FROM repos WHERE name = $1", repo)
            .execute(&mut *self)
            .await?;
        let mut rows = 0;
        if data {
            for deleted in [
                sqlx::query!("DELETE FROM gh_pulls WHERE repo = $1", repo),
                sqlx::query!("DELETE FROM gh_pr_commits WHERE repo = $1", repo),
                sqlx::query!("DELETE FROM gh_pr_reviews WHERE repo = $1", repo),
                sqlx::query!("DELETE FROM gh_pr_files WHERE repo = $1", repo),
                sqlx::query!("DELETE FROM gh_check_runs WHERE repo = $1", repo),
                sqlx::query!("DELETE FROM gh_pr_comments WHERE repo = $1", repo),
            ] {
                rows += deleted.execute(&mut *self).await?.rows_affected();
            }
        }
        Ok((jobs, rows))
    }

    async fn queue_state(&mut self, now: i64) -> Result<QueueState> {
        let state = sqlx::query!(
            r#"SELECT (SELECT count(*) FROM job_queue WHERE state = 'running') AS "running!",
                      (SELECT min(run_at) FROM job_queue WHERE state = 'queued') AS "next_run_at",
                      (SELECT rest_only = 1 FROM job_queue WHERE state = 'queued' AND run_at <= $1
                       ORDER BY priority, id LIMIT 1) AS "first_rest_only""#,
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
        // The PR's size by a lookup per candidate on its key: planned as a join (the
        // plan is made once per connection, often while the tables are still nearly
        // empty), the server compared each candidate with every PR of the repository,
        // 0.3 s per claim at 5,000 PRs, with every token row locked.
        let rows = sqlx::query!(
            r#"SELECT q.id, q.kind, q.page,
                      (SELECT p.changed_files FROM gh_pulls p
                       WHERE p.repo = q.repo AND p.number = q.pr_number) AS "changed_files?"
               FROM job_queue q
               WHERE q.state = 'queued' AND q.run_at <= $1 AND q.repo = $2
                 AND q.rest_only = 0 AND q.kind <> 'pulls'
               ORDER BY q.priority, q.id LIMIT $3
               FOR UPDATE OF q SKIP LOCKED"#,
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
            "UPDATE job_queue SET state = 'running', lease = lease + 1, lease_owner = $1,
                 lease_expires_at = $2, token = $3, bucket = 'core', attempts = attempts + 1,
                 updated_at = $4
             WHERE id = $5 RETURNING lease",
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
            r#"UPDATE job_queue SET state = 'running', lease = lease + 1, lease_owner = $1,
                   lease_expires_at = $2, token = $3, bucket = 'graphql',
                   points = CASE WHEN id = $4 THEN $5::bigint ELSE 0 END, attempts = attempts + 1,
                   updated_at = $6
               WHERE id IN (SELECT jsonb_array_elements_text($7::text::jsonb)::bigint)
               RETURNING id, kind, pr_number, page, url, cursor, attempts, max_attempts,
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

/// A REST claim made by one statement (see `claim::claim_rest_at_once`): the next
/// ready job, and the token and lease it got; `token` and `lease` are `None` when no
/// token took it (nothing was written then).
pub(crate) struct Claimed {
    pub job: ReadyJob,
    pub token: Option<String>,
    pub lease: Option<i64>,
}

/// Locks the next ready job (`FOR UPDATE SKIP LOCKED`), takes one request from the
/// `core` bucket of the token `take` would choose for it, and leases it: one
/// statement, so it needs no transaction around it, and holds the token's row only
/// while it runs. Of the tokens with quota, the one with the most is taken unless
/// another statement holds its row at that moment: then the next one that is free
/// (the processes' claims spread over the tokens instead of queueing for one row);
/// only when every row is held does the claim wait, for the best. A page's ETag
/// answers 304 only to the token that got it: that token is always waited for.
/// `None` when no job is ready.
pub(crate) async fn claim_rest(
    conn: &mut PgConnection,
    fingerprints: &str,
    owner: &str,
    expires_at: i64,
    reserve: i64,
    now: i64,
) -> Result<Option<Claimed>> {
    let row = sqlx::query!(
        r#"WITH picked AS (
               SELECT q.id, q.repo, q.kind, q.pr_number, q.page, q.url, q.cursor,
                      q.rest_only, q.attempts, q.max_attempts, q.round
               FROM job_queue q
               WHERE q.state = 'queued' AND q.run_at <= $1
               ORDER BY q.priority, q.id LIMIT 1
               FOR UPDATE SKIP LOCKED),
           job AS (
               SELECT q.id, q.repo, q.kind, q.pr_number, q.page, q.url, q.cursor,
                      q.rest_only = 1 AS rest_only, q.attempts, q.max_attempts, q.round,
                      r.endpoints, r.round_since, r.pr_limit, r.pr_state, r.gql_batch,
                      r.list_etag IS NULL AS unmarked,
                      coalesce(e.etag, CASE WHEN q.url = r.list_etag_url THEN r.list_etag END)
                          AS etag,
                      coalesce(e.token, CASE WHEN q.url = r.list_etag_url THEN r.list_etag_token END)
                          AS etag_token,
                      e.next_url AS etag_next
               FROM picked q JOIN repos r ON r.name = q.repo
               LEFT JOIN page_etags e
                   ON e.page_key = q.repo || '|' || q.kind || '|'
                                   || coalesce(q.pr_number::text, '') || '|' || q.page::text),
           usable AS (
               SELECT b.fingerprint, b.requests,
                      CASE WHEN b.reset_at IS NOT NULL AND b.reset_at <= $1 THEN b.quota_limit
                           ELSE b.remaining END AS effective,
                      coalesce(b.fingerprint = CASE WHEN job.etag IS NOT NULL
                                                    THEN job.etag_token END, false) AS preferred
               FROM job, token_buckets b JOIN token_state t ON t.fingerprint = b.fingerprint
               WHERE b.bucket = 'core'
                 AND b.fingerprint IN (SELECT jsonb_array_elements_text($2::text::jsonb))
                 AND t.state <> 'invalid'
                 AND (t.paused_until IS NULL OR t.paused_until <= $1)
                 AND NOT EXISTS (SELECT 1 FROM repo_access a
                                 WHERE a.repo = job.repo AND a.token = b.fingerprint
                                   AND a.sees = 0)
                 AND CASE WHEN b.reset_at IS NOT NULL AND b.reset_at <= $1 THEN b.quota_limit
                          ELSE b.remaining END >= 1 + $3::bigint),
           best AS (
               SELECT fingerprint, preferred FROM usable
               ORDER BY preferred DESC, effective DESC, requests ASC LIMIT 1),
           free AS (
               SELECT b.fingerprint
               FROM token_buckets b JOIN usable u ON u.fingerprint = b.fingerprint
               WHERE b.bucket = 'core'
               ORDER BY u.preferred DESC, u.effective DESC, u.requests ASC LIMIT 1
               FOR UPDATE OF b SKIP LOCKED),
           took AS (
               UPDATE token_buckets SET
                   remaining = CASE WHEN reset_at IS NOT NULL AND reset_at <= $1 THEN quota_limit
                                    ELSE remaining END - 1,
                   header_remaining = CASE WHEN reset_at IS NOT NULL AND reset_at <= $1 THEN NULL
                                           ELSE header_remaining END,
                   reset_at = CASE WHEN reset_at IS NOT NULL AND reset_at <= $1 THEN NULL
                                   ELSE reset_at END,
                   exhausted = 0, requests = requests + 1, spent = spent + 1, updated_at = $1
               WHERE bucket = 'core'
                 AND CASE WHEN reset_at IS NOT NULL AND reset_at <= $1 THEN quota_limit
                          ELSE remaining END >= 1 + $3::bigint
                 AND fingerprint = CASE WHEN (SELECT preferred FROM best)
                                        THEN (SELECT fingerprint FROM best)
                                        ELSE coalesce((SELECT fingerprint FROM free),
                                                      (SELECT fingerprint FROM best)) END
               RETURNING fingerprint),
           leased AS (
               UPDATE job_queue SET state = 'running', lease = lease + 1, lease_owner = $4,
                   lease_expires_at = $5, token = (SELECT fingerprint FROM took),
                   bucket = 'core', attempts = attempts + 1, updated_at = $1
               WHERE id = (SELECT id FROM job) AND EXISTS (SELECT 1 FROM took)
               RETURNING lease)
           SELECT job.id AS "id!", job.repo AS "repo!", job.kind AS "kind!", job.pr_number,
                  job.page AS "page!", job.url AS "url!", job.cursor,
                  job.rest_only AS "rest_only!", job.attempts AS "attempts!",
                  job.max_attempts AS "max_attempts!", job.round AS "round!",
                  job.endpoints AS "endpoints!", job.round_since, job.pr_limit,
                  job.pr_state AS "pr_state!", job.gql_batch, job.unmarked AS "unmarked!",
                  job.etag AS "etag?", job.etag_token AS "etag_token?",
                  job.etag_next AS "etag_next?",
                  took.fingerprint AS "token?", leased.lease AS "lease?"
           FROM job LEFT JOIN took ON true LEFT JOIN leased ON true"#,
        now,
        fingerprints,
        reserve,
        owner,
        expires_at
    )
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|r| Claimed {
        job: ReadyJob {
            id: r.id,
            repo: r.repo,
            kind: r.kind,
            pr_number: r.pr_number,
            page: r.page,
            url: r.url,
            cursor: r.cursor,
            rest_only: r.rest_only,
            attempts: r.attempts,
            max_attempts: r.max_attempts,
            round: r.round,
            endpoints: r.endpoints,
            round_since: r.round_since,
            pr_limit: r.pr_limit,
            pr_state: r.pr_state,
            gql_batch: r.gql_batch,
            unmarked: r.unmarked,
            etag: r.etag,
            etag_token: r.etag_token,
            etag_next: r.etag_next,
        },
        token: r.token,
        lease: r.lease,
    }))
}
