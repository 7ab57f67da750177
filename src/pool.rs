//! The token pool: the secrets of this process's tokens, and how to wait for quota.
//! Which token a job gets is decided in SQL at claim time (the one with the most
//! effective quota, see `store::tokens`); this side maps the chosen fingerprint back to
//! its secret, primes the table from the free `GET /rate_limit`, and announces waits.

use crate::github::{Bucket, Client, FetchError};
use crate::store::queue::TokenEvent;
use crate::store::{now_ms, Store};
use crate::token::Token;
use std::collections::HashMap;
use std::sync::Mutex;

pub struct TokenPool {
    by_fingerprint: HashMap<String, Token>,
    /// Fingerprints as a JSON array: the claim query's `json_each(?)` restricts the
    /// choice to the tokens this process holds (the table may list others).
    fingerprints_json: String,
    /// The resume time last announced, so that N waiting workers say it once.
    announced_until: Mutex<Option<i64>>,
    /// The fingerprint of the token handed out last, to log switches (debug level).
    last_used: Mutex<Option<String>>,
}

impl TokenPool {
    pub fn new(tokens: &[Token]) -> TokenPool {
        let fingerprints: Vec<&str> = tokens.iter().map(Token::fingerprint).collect();
        TokenPool {
            by_fingerprint: tokens
                .iter()
                .map(|t| (t.fingerprint().to_owned(), t.clone()))
                .collect(),
            fingerprints_json: serde_json::to_string(&fingerprints).expect("strings serialize"),
            announced_until: Mutex::new(None),
            last_used: Mutex::new(None),
        }
    }

    /// The token the claim chose; a change of token is logged at debug level, by label.
    pub fn get(&self, fingerprint: &str) -> Option<&Token> {
        let token = self.by_fingerprint.get(fingerprint)?;
        if tracing::enabled!(tracing::Level::DEBUG) {
            let mut last = self.last_used.lock().unwrap_or_else(|e| e.into_inner());
            if last.as_deref() != Some(fingerprint) {
                tracing::debug!(token = %token, "requests now go to token {token}");
                *last = Some(fingerprint.to_owned());
            }
        }
        Some(token)
    }

    pub fn len(&self) -> usize {
        self.by_fingerprint.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_fingerprint.is_empty()
    }

    pub fn fingerprints_json(&self) -> &str {
        &self.fingerprints_json
    }

    /// Registers the tokens and reads each one's quota from `GET /rate_limit`, which
    /// costs nothing, so the first claims already know which tokens are spent or bad.
    /// Failures here are not fatal: the first real answer will tell the same.
    pub async fn prime(&self, store: &Store, client: &Client) -> crate::store::Result<()> {
        let tokens: Vec<&Token> = self.by_fingerprint.values().collect();
        let owned: Vec<Token> = tokens.iter().map(|t| (*t).clone()).collect();
        store.register_tokens(&owned, now_ms()).await?;
        let answers = futures_util::future::join_all(
            tokens
                .iter()
                .map(|token| async move { (token, client.rate_limit(token).await) }),
        )
        .await;
        for (token, answer) in answers {
            let now = now_ms();
            match answer {
                Ok(quotas) => {
                    let buckets = [
                        (Bucket::Core, Some(quotas.core)),
                        (Bucket::Graphql, quotas.graphql),
                    ];
                    for (bucket, quota) in buckets {
                        let Some(quota) = quota else { continue };
                        let event = TokenEvent::Answered(Some(quota.rate(bucket)));
                        store
                            .record_token_event(token.fingerprint(), bucket, event, now)
                            .await?;
                    }
                    tracing::debug!(token = %token, remaining = quotas.core.remaining, limit = quotas.core.limit, "token quota");
                }
                Err(FetchError::BadCredentials) => {
                    tracing::error!(token = %token, "401 Bad credentials: this token is disabled; the others carry on");
                    let event = TokenEvent::Invalid;
                    store
                        .record_token_event(token.fingerprint(), Bucket::Core, event, now)
                        .await?;
                }
                Err(e) => tracing::debug!(token = %token, error = %e, "could not read /rate_limit"),
            }
        }
        Ok(())
    }

    /// Says once per resume time that every token is spent and when work resumes.
    pub fn announce_wait(&self, until: i64) {
        let mut announced = self
            .announced_until
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if *announced == Some(until) {
            return;
        }
        *announced = Some(until);
        let when = chrono::DateTime::from_timestamp_millis(until)
            .map(|t| {
                t.with_timezone(&chrono::Local)
                    .format("%H:%M:%S")
                    .to_string()
            })
            .unwrap_or_default();
        let seconds = ((until - now_ms()).max(0) + 999) / 1000;
        tracing::info!("every token is out of quota; resuming at {when} (in {seconds} s)");
    }
}
