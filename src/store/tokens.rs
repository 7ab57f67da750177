//! The token table's verbs: `register`, `take`, and `apply` for what an
//! answer said (reconcile from headers, record exhaustion, pause, invalidate).
//!
//! A token has one bucket per API (`token_buckets`: `core` for REST requests, `graphql`
//! for GraphQL points); whether it is usable at all (invalid, paused by a secondary
//! limit, which GitHub applies to both APIs) is on `token_state`. A bucket's
//! `remaining` is the quota last reported by GitHub minus what was reserved since. A
//! bucket whose `reset_at` has passed counts as full (`quota_limit`); once picked in
//! that state its `reset_at` becomes unknown (NULL) until an answer tells.

use super::queue::TokenEvent;
use super::{Result, Store};
use crate::github::{Bucket, RateLimit};
use crate::token::Token;
use sqlx::SqliteConnection;

/// A token's row, for `status` and `tokens`: its REST bucket's figures (as before
/// GraphQL) and its GraphQL bucket's.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TokenRow {
    pub fingerprint: String,
    pub label: String,
    pub quota_limit: i64,
    pub remaining: i64,
    pub reset_at: Option<i64>,
    pub state: String,
    pub paused_until: Option<i64>,
    pub requests: i64,
    pub refused: i64,
    pub last_error: Option<String>,
    pub graphql: BucketRow,
}

/// One bucket of a token.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct BucketRow {
    pub quota_limit: i64,
    pub remaining: i64,
    pub reset_at: Option<i64>,
    /// Requests (GraphQL: queries) sent.
    pub requests: i64,
    /// Units reserved for them (GraphQL: points).
    pub spent: i64,
    pub refused: i64,
}

impl Store {
    /// Makes sure every token has a row and both buckets (by fingerprint; the secret is
    /// not stored). An `invalid` token is given another chance: the user may have
    /// renewed its access.
    pub async fn register_tokens(&self, tokens: &[Token], now: i64) -> Result<()> {
        let mut tx = self.begin_immediate().await?;
        for token in tokens {
            let (fingerprint, label) = (token.fingerprint(), token.label());
            sqlx::query!(
                "INSERT INTO token_state (fingerprint, label, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (fingerprint) DO UPDATE SET label = ?2,
                     state = CASE WHEN state = 'invalid' THEN 'ok' ELSE state END",
                fingerprint,
                label,
                now
            )
            .execute(&mut *tx)
            .await?;
            sqlx::query!(
                "INSERT INTO token_buckets (fingerprint, bucket, updated_at)
                 VALUES (?1, 'core', ?2), (?1, 'graphql', ?2)
                 ON CONFLICT (fingerprint, bucket) DO NOTHING",
                fingerprint,
                now
            )
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Applies what a free `GET /rate_limit` (or any answer) said about a token's bucket.
    pub async fn record_token_event(
        &self,
        fingerprint: &str,
        bucket: Bucket,
        event: TokenEvent,
        now: i64,
    ) -> Result<()> {
        let mut tx = self.begin_immediate().await?;
        apply(&mut tx, fingerprint, bucket, &event, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every token row, most REST quota remaining first.
    pub async fn token_rows(&self) -> Result<Vec<TokenRow>> {
        let rows = sqlx::query!(
            r#"SELECT t.fingerprint, t.label, t.state, t.paused_until, t.last_error,
                      c.quota_limit, c.remaining, c.reset_at, c.requests, c.refused,
                      g.quota_limit AS g_limit, g.remaining AS g_remaining,
                      g.reset_at AS g_reset_at, g.requests AS g_requests, g.spent AS g_spent,
                      g.refused AS g_refused
               FROM token_state t
               JOIN token_buckets c ON c.fingerprint = t.fingerprint AND c.bucket = 'core'
               JOIN token_buckets g ON g.fingerprint = t.fingerprint AND g.bucket = 'graphql'
               ORDER BY c.remaining DESC, t.label"#
        )
        .fetch_all(self.pool())
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
            })
            .collect())
    }
}

/// Takes `units` (one request, or a query's points) off `bucket` of the usable token
/// (of `fingerprints`, a JSON array) with the most effective quota there, before the
/// request is sent, and returns that token. `preferred` (the token an ETag is tied to:
/// its 304s are free) goes first while it has quota; ties go to the token that sent
/// fewer requests on the bucket. `None` when no token has `units` left. Choosing and
/// reserving are one statement: each statement is a round trip to SQLite's thread
/// while the write lock is held.
pub(super) async fn take(
    conn: &mut SqliteConnection,
    fingerprints: &str,
    bucket: Bucket,
    units: i64,
    preferred: Option<&str>,
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
                     AND (t.paused_until IS NULL OR t.paused_until <= ?1))
               WHERE effective >= ?4
               ORDER BY coalesce(fingerprint = ?3, 0) DESC, effective DESC, requests ASC
               LIMIT 1)
           RETURNING fingerprint AS "fingerprint!""#,
        now,
        fingerprints,
        preferred,
        units,
        bucket
    )
    .fetch_optional(&mut *conn)
    .await?)
}

/// Which buckets some usable token of `fingerprints` has quota in now: (REST requests,
/// GraphQL points).
pub(super) async fn usable(
    conn: &mut SqliteConnection,
    fingerprints: &str,
    now: i64,
) -> Result<(bool, bool)> {
    let row = sqlx::query!(
        r#"SELECT coalesce(max(b.bucket = 'core'), 0) AS "core!: bool",
                  coalesce(max(b.bucket = 'graphql'), 0) AS "graphql!: bool"
           FROM token_buckets b JOIN token_state t ON t.fingerprint = b.fingerprint
           WHERE b.fingerprint IN (SELECT value FROM json_each(?2))
             AND t.state <> 'invalid'
             AND (t.paused_until IS NULL OR t.paused_until <= ?1)
             AND CASE WHEN b.reset_at IS NOT NULL AND b.reset_at <= ?1 THEN b.quota_limit
                      ELSE b.remaining END > 0"#,
        now,
        fingerprints
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok((row.core, row.graphql))
}

/// When the first of `fingerprints` can be used again on one of `buckets`:
/// `Some(Some(ms))`, `Some(None)` when no time is known, `None` when every token is
/// invalid.
pub(super) async fn earliest_available(
    conn: &mut SqliteConnection,
    fingerprints: &str,
    buckets: &[Bucket],
    now: i64,
) -> Result<Option<Option<i64>>> {
    let names: Vec<&str> = buckets.iter().map(|b| b.as_str()).collect();
    let names = serde_json::to_string(&names).expect("strings serialize");
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
        names
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok((row.usable > 0).then_some(row.until))
}

/// Applies a token event inside the caller's transaction: an answer's rate-limit
/// figures and a refusal for quota concern `bucket`; a pause or a 401 the whole token.
pub(super) async fn apply(
    conn: &mut SqliteConnection,
    fingerprint: &str,
    bucket: Bucket,
    event: &TokenEvent,
    now: i64,
) -> Result<()> {
    let bucket_name = bucket.as_str();
    match *event {
        TokenEvent::Answered(None) => {}
        TokenEvent::Answered(Some(ref rate)) => {
            reconcile(conn, fingerprint, bucket, rate, now).await?
        }
        TokenEvent::Exhausted { reset_at } => {
            sqlx::query!(
                "UPDATE token_buckets SET remaining = 0, header_remaining = 0, reset_at = ?1,
                     exhausted = 1, refused = refused + 1, updated_at = ?2
                 WHERE fingerprint = ?3 AND bucket = ?4",
                reset_at,
                now,
                fingerprint,
                bucket_name
            )
            .execute(&mut *conn)
            .await?;
        }
        TokenEvent::Paused { until } => {
            sqlx::query!(
                "UPDATE token_state SET paused_until = max(coalesce(paused_until, 0), ?1),
                     last_error = 'secondary rate limit', updated_at = ?2
                 WHERE fingerprint = ?3",
                until,
                now,
                fingerprint
            )
            .execute(&mut *conn)
            .await?;
        }
        TokenEvent::Invalid => {
            sqlx::query!(
                "UPDATE token_state SET state = 'invalid', last_error = '401 Bad credentials',
                     updated_at = ?1
                 WHERE fingerprint = ?2",
                now,
                fingerprint
            )
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

/// Reconciles the local view of a bucket with an answer's figures. The answer's
/// `remaining` may not yet count the other requests in flight on this bucket, so while
/// any are, what they reserved is taken off it (erring low). Once none is in flight,
/// the lowest `remaining` seen in the window (the freshest answer's) is exact, and
/// replaces the estimate. A later window (larger reset) replaces what we knew; an older
/// window's answer is stale.
async fn reconcile(
    conn: &mut SqliteConnection,
    fingerprint: &str,
    bucket: Bucket,
    rate: &RateLimit,
    now: i64,
) -> Result<()> {
    let (Some(remaining), Some(reset_at)) = (rate.remaining, rate.reset_at_ms(now)) else {
        return Ok(());
    };
    let limit = rate.limit;
    let bucket = bucket.as_str();
    // `f.n`: what is reserved in flight on the bucket (REST: one per request; GraphQL:
    // the points of each query, held by one job of its batch).
    sqlx::query!(
        "WITH f(n) AS (SELECT coalesce(sum(CASE WHEN bucket = 'graphql' THEN points ELSE 1 END), 0)
                       FROM job_queue
                       WHERE state = 'running' AND token = ?5 AND bucket = ?6)
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
        bucket
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}
