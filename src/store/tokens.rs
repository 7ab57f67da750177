//! The token table's verbs: `register_tokens`, `record_token_event` (what an answer
//! outside a job said) and `token_rows`. Taking quota is part of a claim (`claim`, with
//! `TokenSql::take`); what a job's answer said is applied with its outcome (`finish`).
//!
//! A token has one bucket per API (`token_buckets`: `core` for REST requests, `graphql`
//! for GraphQL points); whether it is usable at all (invalid, paused by a secondary
//! limit, which GitHub applies to both APIs) is on `token_state`. A bucket's
//! `remaining` is the quota last reported by GitHub minus what was reserved since. A
//! bucket whose `reset_at` has passed counts as full (`quota_limit`); once picked in
//! that state its `reset_at` becomes unknown (NULL) until an answer tells.

use super::db::{read, write_tx};
use super::finish::apply_token_event;
use super::jobs::TokenEvent;
use super::sql::TokenSql;
use super::{Result, Store};
use crate::github::Bucket;
use crate::token::Token;

pub use super::sql::{BucketRow, TokenRow};

impl Store {
    /// Makes sure every token has a row and both buckets (by fingerprint; the secret is
    /// not stored). An `invalid` token is given another chance: the user may have
    /// renewed its access.
    pub async fn register_tokens(&self, tokens: &[Token], now: i64) -> Result<()> {
        // In one order in every process: two registering the same tokens at once take
        // their rows' locks one after the other, not each one the other's.
        let mut tokens: Vec<&Token> = tokens.iter().collect();
        tokens.sort_by(|a, b| a.fingerprint().cmp(b.fingerprint()));
        write_tx!(&self.db, |tx| {
            for token in &tokens {
                let (fingerprint, label) = (token.fingerprint(), token.label());
                tx.register_token(fingerprint, label, now).await?;
            }
        });
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
        write_tx!(&self.db, |tx| {
            apply_token_event(tx, fingerprint, bucket, &event, "[]", now).await?
        });
        Ok(())
    }

    /// Every token row, most REST quota remaining first.
    pub async fn token_rows(&self) -> Result<Vec<TokenRow>> {
        read!(&self.db, |c| c.token_rows().await)
    }
}
