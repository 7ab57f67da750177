//! The token table's verbs: `register`, `take`, and `apply` for what an
//! answer said (reconcile from headers, record exhaustion, pause, invalidate).
//!
//! `remaining` is the quota last reported by GitHub minus the requests reserved
//! since. A token whose `reset_at` has passed counts as full (`quota_limit`); once
//! picked in that state its `reset_at` becomes unknown (NULL) until an answer tells.

use super::queue::TokenEvent;
use super::{Result, Store};
use crate::github::RateLimit;
use crate::token::Token;
use sqlx::SqliteConnection;

/// A token's row, for `status` and `tokens`.
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
}

impl Store {
    /// Makes sure every token has a row (by fingerprint; the secret is not stored). An
    /// `invalid` token is given another chance: the user may have renewed its access.
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
        }
        tx.commit().await?;
        Ok(())
    }

    /// Applies what a free `GET /rate_limit` (or any answer) said about a token.
    pub async fn record_token_event(
        &self,
        fingerprint: &str,
        event: TokenEvent,
        now: i64,
    ) -> Result<()> {
        let mut tx = self.begin_immediate().await?;
        apply(&mut tx, fingerprint, &event, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every token row, most remaining first.
    pub async fn token_rows(&self) -> Result<Vec<TokenRow>> {
        Ok(sqlx::query_as!(
            TokenRow,
            "SELECT fingerprint, label, quota_limit, remaining, reset_at, state, paused_until,
                    requests, refused, last_error
             FROM token_state ORDER BY remaining DESC, label"
        )
        .fetch_all(self.pool())
        .await?)
    }
}

/// Takes one request off the quota of the usable token (of `fingerprints`, a JSON
/// array) with the most effective quota, before the request is sent, and returns that
/// token. `preferred` (the token an ETag is tied to: its 304s are free) goes first
/// while it has quota; ties go to the token that sent fewer requests. `None` when no
/// token is usable. Choosing and reserving are one statement: each statement is a
/// round trip to SQLite's thread while the write lock is held.
pub(super) async fn take(
    conn: &mut SqliteConnection,
    fingerprints: &str,
    preferred: Option<&str>,
    now: i64,
) -> Result<Option<String>> {
    Ok(sqlx::query_scalar!(
        r#"UPDATE token_state SET
               remaining = CASE WHEN reset_at IS NOT NULL AND reset_at <= ?1 THEN quota_limit
                                ELSE remaining END - 1,
               header_remaining = CASE WHEN reset_at IS NOT NULL AND reset_at <= ?1 THEN NULL
                                       ELSE header_remaining END,
               reset_at = CASE WHEN reset_at IS NOT NULL AND reset_at <= ?1 THEN NULL
                               ELSE reset_at END,
               state = 'ok', paused_until = NULL, requests = requests + 1, updated_at = ?1
           WHERE fingerprint = (
               SELECT fingerprint FROM (
                   SELECT fingerprint, requests,
                          CASE WHEN reset_at IS NOT NULL AND reset_at <= ?1 THEN quota_limit
                               ELSE remaining END AS effective
                   FROM token_state
                   WHERE fingerprint IN (SELECT value FROM json_each(?2))
                     AND state <> 'invalid'
                     AND (paused_until IS NULL OR paused_until <= ?1))
               WHERE effective > 0
               ORDER BY coalesce(fingerprint = ?3, 0) DESC, effective DESC, requests ASC
               LIMIT 1)
           RETURNING fingerprint AS "fingerprint!""#,
        now,
        fingerprints,
        preferred
    )
    .fetch_optional(&mut *conn)
    .await?)
}

/// When the first of `fingerprints` can be used again: `Some(Some(ms))`, `Some(None)`
/// when no time is known, `None` when every token is invalid.
pub(super) async fn earliest_available(
    conn: &mut SqliteConnection,
    fingerprints: &str,
    now: i64,
) -> Result<Option<Option<i64>>> {
    let row = sqlx::query!(
        r#"SELECT count(*) AS "usable!: i64",
                  min(CASE WHEN paused_until > ?1 THEN paused_until ELSE reset_at END)
                      AS "until: i64"
           FROM token_state
           WHERE fingerprint IN (SELECT value FROM json_each(?2)) AND state <> 'invalid'"#,
        now,
        fingerprints
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok((row.usable > 0).then_some(row.until))
}

/// Applies a token event inside the caller's transaction.
pub(super) async fn apply(
    conn: &mut SqliteConnection,
    fingerprint: &str,
    event: &TokenEvent,
    now: i64,
) -> Result<()> {
    match *event {
        TokenEvent::Answered(None) => {}
        TokenEvent::Answered(Some(ref rate)) => reconcile(conn, fingerprint, rate, now).await?,
        TokenEvent::Exhausted { reset_at } => {
            sqlx::query!(
                "UPDATE token_state SET remaining = 0, header_remaining = 0, reset_at = ?1,
                     state = 'exhausted',
                     refused = refused + 1, updated_at = ?2
                 WHERE fingerprint = ?3",
                reset_at,
                now,
                fingerprint
            )
            .execute(&mut *conn)
            .await?;
        }
        TokenEvent::Paused { until } => {
            sqlx::query!(
                "UPDATE token_state SET paused_until = max(coalesce(paused_until, 0), ?1),
                     state = 'paused', last_error = 'secondary rate limit', updated_at = ?2
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

/// Reconciles the local view with the headers. The header's `remaining` may not yet
/// count the other requests in flight on this token, so while any are, they are taken
/// off it (erring low). Once none is in flight, the lowest `remaining` seen in the
/// window (the freshest answer's) is exact, and replaces the estimate. A later window
/// (larger reset) replaces what we knew; an older window's answer is stale.
async fn reconcile(
    conn: &mut SqliteConnection,
    fingerprint: &str,
    rate: &RateLimit,
    now: i64,
) -> Result<()> {
    let (Some(remaining), Some(reset_at)) = (rate.remaining, rate.reset_at_ms(now)) else {
        return Ok(());
    };
    let limit = rate.limit;
    // `f.n`: the requests still in flight on the token.
    sqlx::query!(
        "WITH f(n) AS (SELECT count(*) FROM job_queue WHERE state = 'running' AND token = ?5)
         UPDATE token_state SET
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
             state = CASE WHEN state = 'exhausted' AND ?2 > 0 THEN 'ok' ELSE state END,
             updated_at = ?4
         WHERE fingerprint = ?5",
        reset_at,
        remaining,
        limit,
        now,
        fingerprint
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}
