//! The token table's statements on PostgreSQL. Taking quota locks the bucket's row
//! until the transaction ends; the `UPDATE` re-checks what is left on the row it
//! locked (PostgreSQL re-evaluates the outer `WHERE` on the newest row version), so
//! two processes never both spend a bucket's last units.

use crate::github::Bucket;
use crate::store::sql::{BucketRow, Reported, TokenRow, TokenSql};
use crate::store::Result;
use sqlx::PgConnection;

impl TokenSql for PgConnection {
    async fn lock_tokens(&mut self) -> Result<()> {
        // The rows are locked as the sort returns them: in key order.
        sqlx::query_scalar!(
            "SELECT fingerprint FROM token_buckets ORDER BY fingerprint, bucket FOR UPDATE"
        )
        .fetch_all(&mut *self)
        .await?;
        Ok(())
    }

    async fn register_token(&mut self, fingerprint: &str, label: &str, now: i64) -> Result<()> {
        sqlx::query!(
            "INSERT INTO token_state (fingerprint, label, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (fingerprint) DO UPDATE SET label = $2,
                 state = CASE WHEN token_state.state = 'invalid' THEN 'ok'
                              ELSE token_state.state END",
            fingerprint,
            label,
            now
        )
        .execute(&mut *self)
        .await?;
        sqlx::query!(
            "INSERT INTO token_buckets (fingerprint, bucket, updated_at)
             VALUES ($1, 'core', $2), ($1, 'graphql', $2)
             ON CONFLICT (fingerprint, bucket) DO NOTHING",
            fingerprint,
            now
        )
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn take(
        &mut self,
        fingerprints: &str,
        bucket: Bucket,
        units: i64,
        preferred: Option<&str>,
        repo: &str,
        reserve: i64,
        now: i64,
    ) -> Result<Option<String>> {
        let bucket = bucket.as_str();
        Ok(sqlx::query_scalar!(
            r#"UPDATE token_buckets SET
                   remaining = CASE WHEN reset_at IS NOT NULL AND reset_at <= $1 THEN quota_limit
                                    ELSE remaining END - $4,
                   header_remaining = CASE WHEN reset_at IS NOT NULL AND reset_at <= $1 THEN NULL
                                           ELSE header_remaining END,
                   reset_at = CASE WHEN reset_at IS NOT NULL AND reset_at <= $1 THEN NULL
                                   ELSE reset_at END,
                   exhausted = 0, requests = requests + 1, spent = spent + $4, updated_at = $1
               WHERE bucket = $5
                 AND CASE WHEN reset_at IS NOT NULL AND reset_at <= $1 THEN quota_limit
                          ELSE remaining END >= $4::bigint + $7::bigint
                 AND fingerprint = (
                   SELECT fingerprint FROM (
                       SELECT b.fingerprint, b.requests,
                              CASE WHEN b.reset_at IS NOT NULL AND b.reset_at <= $1
                                   THEN b.quota_limit ELSE b.remaining END AS effective
                       FROM token_buckets b JOIN token_state t ON t.fingerprint = b.fingerprint
                       WHERE b.bucket = $5
                         AND b.fingerprint IN (SELECT jsonb_array_elements_text($2::text::jsonb))
                         AND t.state <> 'invalid'
                         AND (t.paused_until IS NULL OR t.paused_until <= $1)
                         AND NOT EXISTS (SELECT 1 FROM repo_access a
                                         WHERE a.repo = $6 AND a.token = b.fingerprint
                                           AND a.sees = 0)) usable
                   WHERE effective >= $4::bigint + $7::bigint
                   ORDER BY coalesce(fingerprint = $3, false) DESC, effective DESC, requests ASC
                   LIMIT 1)
               RETURNING fingerprint"#,
            now,
            fingerprints,
            preferred,
            units,
            bucket,
            repo,
            reserve
        )
        .fetch_optional(&mut *self)
        .await?)
    }

    async fn usable(&mut self, fingerprints: &str, reserve: i64, now: i64) -> Result<(bool, bool)> {
        let row = sqlx::query!(
            r#"SELECT coalesce(bool_or(b.bucket = 'core'), false) AS "core!",
                      coalesce(bool_or(b.bucket = 'graphql'), false) AS "graphql!"
               FROM token_buckets b JOIN token_state t ON t.fingerprint = b.fingerprint
               WHERE b.fingerprint IN (SELECT jsonb_array_elements_text($2::text::jsonb))
                 AND t.state <> 'invalid'
                 AND (t.paused_until IS NULL OR t.paused_until <= $1)
                 AND CASE WHEN b.reset_at IS NOT NULL AND b.reset_at <= $1 THEN b.quota_limit
                          ELSE b.remaining END > $3"#,
            now,
            fingerprints,
            reserve
        )
        .fetch_one(&mut *self)
        .await?;
        Ok((row.core, row.graphql))
    }

    async fn earliest_available(
        &mut self,
        fingerprints: &str,
        buckets: &str,
        now: i64,
    ) -> Result<(i64, Option<i64>)> {
        let row = sqlx::query!(
            r#"SELECT count(*) AS "usable!",
                      min(CASE WHEN t.paused_until > $1 THEN t.paused_until ELSE b.reset_at END)
                          AS "until"
               FROM token_buckets b JOIN token_state t ON t.fingerprint = b.fingerprint
               WHERE b.fingerprint IN (SELECT jsonb_array_elements_text($2::text::jsonb))
                 AND b.bucket IN (SELECT jsonb_array_elements_text($3::text::jsonb))
                 AND t.state <> 'invalid'"#,
            now,
            fingerprints,
            buckets
        )
        .fetch_one(&mut *self)
        .await?;
        Ok((row.usable, row.until))
    }

    async fn exhaust(
        &mut self,
        fingerprint: &str,
        bucket: Bucket,
        reset_at: i64,
        now: i64,
    ) -> Result<()> {
        let bucket = bucket.as_str();
        sqlx::query!(
            "UPDATE token_buckets SET remaining = 0, header_remaining = 0, reset_at = $1,
                 exhausted = 1, refused = refused + 1, updated_at = $2
             WHERE fingerprint = $3 AND bucket = $4",
            reset_at,
            now,
            fingerprint,
            bucket
        )
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn set_concurrency(&mut self, fingerprint: &str, concurrency: i64) -> Result<()> {
        sqlx::query!(
            "UPDATE token_state SET concurrency = $1 WHERE fingerprint = $2",
            concurrency,
            fingerprint
        )
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn pause(&mut self, fingerprint: &str, until: i64, now: i64) -> Result<()> {
        sqlx::query!(
            "UPDATE token_state SET paused_until = GREATEST(coalesce(paused_until, 0), $1),
                 last_error = 'secondary rate limit', updated_at = $2
             WHERE fingerprint = $3",
            until,
            now,
            fingerprint
        )
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn invalidate(&mut self, fingerprint: &str, now: i64) -> Result<()> {
        sqlx::query!(
            "UPDATE token_state SET state = 'invalid', last_error = '401 Bad credentials',
                 updated_at = $1
             WHERE fingerprint = $2",
            now,
            fingerprint
        )
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn reconcile(
        &mut self,
        fingerprint: &str,
        bucket: Bucket,
        reported: Reported,
        own: &str,
        now: i64,
    ) -> Result<()> {
        let Reported {
            remaining,
            reset_at,
            limit,
        } = reported;
        let bucket = bucket.as_str();
        // `f.n`: what is reserved in flight on the bucket (REST: one per request;
        // GraphQL: the points of each query, held by one job of its batch), as this
        // statement's snapshot shows it. A transaction that writes the row after the
        // snapshot and commits before the row is locked here changed what is in
        // flight without `f.n` seeing it: a claim added a job (the estimate would come
        // out a request too high), another answer's transaction marked its jobs done
        // (too low, and no exact count at the end of a window). So the row is written
        // only if it is still the version the snapshot saw (`seen`, by `xmin`), and
        // the statement runs again, with a new snapshot, when it was not.
        for _ in 0..RECONCILE_TRIES {
            let written = sqlx::query!(
            "WITH seen AS (SELECT xmin FROM token_buckets WHERE fingerprint = $5 AND bucket = $6),
                  f(n) AS (SELECT coalesce(sum(CASE WHEN bucket = 'graphql' THEN points ELSE 1 END), 0)::bigint
                           FROM job_queue
                           WHERE state = 'running' AND token = $5 AND bucket = $6
                             AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements($7::text::jsonb) AS o(value)
                                             WHERE (o.value ->> 0)::bigint = job_queue.id
                                               AND (o.value ->> 1)::bigint = job_queue.lease))
             UPDATE token_buckets SET
                 remaining = CASE
                     WHEN reset_at IS NULL OR $1 > reset_at THEN GREATEST($2 - (SELECT n FROM f), 0)
                     WHEN $1 = reset_at AND (SELECT n FROM f) = 0
                         THEN LEAST(coalesce(header_remaining, $2), $2)
                     WHEN $1 = reset_at THEN LEAST(remaining, GREATEST($2 - (SELECT n FROM f), 0))
                     ELSE remaining END,
                 header_remaining = CASE
                     WHEN reset_at IS NULL OR $1 > reset_at THEN $2
                     WHEN $1 = reset_at THEN LEAST(coalesce(header_remaining, $2), $2)
                     ELSE header_remaining END,
                 reset_at = CASE WHEN reset_at IS NULL OR $1 > reset_at THEN $1 ELSE reset_at END,
                 quota_limit = coalesce($3, quota_limit),
                 exhausted = CASE WHEN $2 > 0 THEN 0 ELSE exhausted END,
                 updated_at = $4
             WHERE fingerprint = $5 AND bucket = $6 AND xmin = (SELECT xmin FROM seen)",
            reset_at,
            remaining,
            limit,
            now,
            fingerprint,
            bucket,
            own
        )
        .execute(&mut *self)
        .await?;
            if written.rows_affected() > 0 {
                return Ok(());
            }
        }
        // Other writers kept coming between snapshot and lock (or the token has no
        // row): the next answer tells again.
        tracing::debug!("an answer's figures for a token were not applied: its row kept changing");
        Ok(())
    }

    async fn token_rows(&mut self) -> Result<Vec<TokenRow>> {
        let rows = sqlx::query!(
            r#"SELECT t.fingerprint, t.label, t.state, t.paused_until, t.last_error,
                      t.concurrency, c.quota_limit, c.remaining, c.reset_at, c.requests, c.refused,
                      g.quota_limit AS g_limit, g.remaining AS g_remaining,
                      g.reset_at AS g_reset_at, g.requests AS g_requests, g.spent AS g_spent,
                      g.refused AS g_refused
               FROM token_state t
               JOIN token_buckets c ON c.fingerprint = t.fingerprint AND c.bucket = 'core'
               JOIN token_buckets g ON g.fingerprint = t.fingerprint AND g.bucket = 'graphql'
               ORDER BY c.remaining DESC, t.label COLLATE "C""#
        )
        .fetch_all(&mut *self)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| TokenRow {
                fingerprint: r.fingerprint,
                label: r.label,
                quota_limit: r.quota_limit,
                remaining: r.remaining,
                reset_at: r.reset_at,
                state: r.state,
                paused_until: r.paused_until,
                requests: r.requests,
                refused: r.refused,
                last_error: r.last_error,
                graphql: BucketRow {
                    quota_limit: r.g_limit,
                    remaining: r.g_remaining,
                    reset_at: r.g_reset_at,
                    requests: r.g_requests,
                    spent: r.g_spent,
                    refused: r.g_refused,
                },
                concurrency: r.concurrency,
            })
            .collect())
    }
}

/// How often a reconciliation is tried while claims change its token's row under it.
const RECONCILE_TRIES: usize = 8;
