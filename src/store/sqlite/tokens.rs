//! The token table's statements on SQLite.

use crate::github::Bucket;
use crate::store::sql::{BucketRow, Reported, TokenRow, TokenSql};
use crate::store::Result;
use sqlx::SqliteConnection;

impl TokenSql for SqliteConnection {
    async fn lock_tokens(&mut self) -> Result<()> {
        Ok(())
    }

    async fn register_token(&mut self, fingerprint: &str, label: &str, now: i64) -> Result<()> {
        sqlx::query!(
            "INSERT INTO token_state (fingerprint, label, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (fingerprint) DO UPDATE SET label = ?2,
                 state = CASE WHEN state = 'invalid' THEN 'ok' ELSE state END",
            fingerprint,
            label,
            now
        )
        .execute(&mut *self)
        .await?;
        sqlx::query!(
            "INSERT INTO token_buckets (fingerprint, bucket, updated_at)
             VALUES (?1, 'core', ?2), (?1, 'graphql', ?2)
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
                   remaining = CASE WHEN reset_at IS NOT NULL AND reset_at <= ?1 THEN quota_limit
                                    ELSE remaining END - ?4,
                   header_remaining = CASE WHEN reset_at IS NOT NULL AND reset_at <= ?1 THEN NULL
                                           ELSE header_remaining END,
                   reset_at = CASE WHEN reset_at IS NOT NULL AND reset_at <= ?1 THEN NULL
                                   ELSE reset_at END,
                   exhausted = 0, requests = requests + 1, spent = spent + ?4, updated_at = ?1
               WHERE bucket = ?5 AND fingerprint = (
                   SELECT fingerprint FROM (
                       SELECT b.fingerprint, b.requests,
                              CASE WHEN b.reset_at IS NOT NULL AND b.reset_at <= ?1
                                   THEN b.quota_limit ELSE b.remaining END AS effective
                       FROM token_buckets b JOIN token_state t ON t.fingerprint = b.fingerprint
                       WHERE b.bucket = ?5
                         AND b.fingerprint IN (SELECT value FROM json_each(?2))
                         AND t.state <> 'invalid'
                         AND (t.paused_until IS NULL OR t.paused_until <= ?1)
                         AND NOT EXISTS (SELECT 1 FROM repo_access a
                                         WHERE a.repo = ?6 AND a.token = b.fingerprint
                                           AND a.sees = 0))
                   WHERE effective >= ?4 + ?7
                   ORDER BY coalesce(fingerprint = ?3, 0) DESC, effective DESC, requests ASC
                   LIMIT 1)
               RETURNING fingerprint AS "fingerprint!""#,
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
            r#"SELECT coalesce(max(b.bucket = 'core'), 0) AS "core!: bool",
                      coalesce(max(b.bucket = 'graphql'), 0) AS "graphql!: bool"
               FROM token_buckets b JOIN token_state t ON t.fingerprint = b.fingerprint
               WHERE b.fingerprint IN (SELECT value FROM json_each(?2))
                 AND t.state <> 'invalid'
                 AND (t.paused_until IS NULL OR t.paused_until <= ?1)
                 AND CASE WHEN b.reset_at IS NOT NULL AND b.reset_at <= ?1 THEN b.quota_limit
                          ELSE b.remaining END > ?3"#,
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
            r#"SELECT count(*) AS "usable!: i64",
                      min(CASE WHEN t.paused_until > ?1 THEN t.paused_until ELSE b.reset_at END)
                          AS "until: i64"
               FROM token_buckets b JOIN token_state t ON t.fingerprint = b.fingerprint
               WHERE b.fingerprint IN (SELECT value FROM json_each(?2))
                 AND b.bucket IN (SELECT value FROM json_each(?3))
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
            "UPDATE token_buckets SET remaining = 0, header_remaining = 0, reset_at = ?1,
                 exhausted = 1, refused = refused + 1, updated_at = ?2
             WHERE fingerprint = ?3 AND bucket = ?4",
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
            "UPDATE token_state SET concurrency = ? WHERE fingerprint = ?",
            concurrency,
            fingerprint
        )
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn pause(&mut self, fingerprint: &str, until: i64, now: i64) -> Result<()> {
        sqlx::query!(
            "UPDATE token_state SET paused_until = max(coalesce(paused_until, 0), ?1),
                 last_error = 'secondary rate limit', updated_at = ?2
             WHERE fingerprint = ?3",
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
                 updated_at = ?1
             WHERE fingerprint = ?2",
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
        // GraphQL: the points of each query, held by one job of its batch).
        sqlx::query!(
            "WITH f(n) AS (SELECT coalesce(sum(CASE WHEN bucket = 'graphql' THEN points ELSE 1 END), 0)
                           FROM job_queue
                           WHERE state = 'running' AND token = ?5 AND bucket = ?6
                             AND NOT EXISTS (SELECT 1 FROM json_each(?7) o
                                             WHERE json_extract(o.value, '$[0]') = job_queue.id
                                               AND json_extract(o.value, '$[1]') = job_queue.lease))
             UPDATE token_buckets SET
                 remaining = CASE
                     WHEN reset_at IS NULL OR ?1 > reset_at THEN max(?2 - (SELECT n FROM f), 0)
                     WHEN ?1 = reset_at AND (SELECT n FROM f) = 0 THEN min(coalesce(header_remaining, ?2), ?2)
                     WHEN ?1 = reset_at THEN min(remaining, max(?2 - (SELECT n FROM f), 0))
                     ELSE remaining END,
                 header_remaining = CASE
                     WHEN reset_at IS NULL OR ?1 > reset_at THEN ?2
                     WHEN ?1 = reset_at THEN min(coalesce(header_remaining, ?2), ?2)
                     ELSE header_remaining END,
                 reset_at = CASE WHEN reset_at IS NULL OR ?1 > reset_at THEN ?1 ELSE reset_at END,
                 quota_limit = coalesce(?3, quota_limit),
                 exhausted = CASE WHEN ?2 > 0 THEN 0 ELSE exhausted END,
                 updated_at = ?4
             WHERE fingerprint = ?5 AND bucket = ?6",
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
               ORDER BY c.remaining DESC, t.label"#
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
