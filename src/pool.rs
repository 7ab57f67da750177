//! The token pool: the secrets of this process's tokens, how many requests each may
//! have in flight ([`lanes`]), and how to wait for quota. Which token a job gets is
//! decided in SQL at claim time (the one with the most effective quota, see
//! `store::tokens`), among the tokens with a free place in their lane; this side maps
//! the chosen fingerprint back to its secret, primes the table from the free
//! `GET /rate_limit`, and announces waits.

pub mod lanes;

use crate::config::UsageError;
use crate::github::{Bucket, Client, FetchError, RateLimits};
use crate::store::queue::TokenEvent;
use crate::store::{now_ms, Store};
use crate::token::Token;
use lanes::{Hold, LaneLimits, Lanes};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub struct TokenPool {
    tokens: Vec<Token>,
    /// Fingerprint -> index in `tokens` (and in the lanes).
    by_fingerprint: HashMap<String, usize>,
    /// Fingerprints as a JSON array: the claim query's `json_each(?)` restricts the
    /// choice to the tokens this process holds (the table may list others).
    fingerprints_json: String,
    lanes: Arc<Lanes>,
    /// The resume time last announced, so that N waiting workers say it once.
    announced_until: Mutex<Option<i64>>,
    /// The fingerprint of the token handed out last, to log switches (debug level).
    last_used: Mutex<Option<String>>,
}

/// What `GET /rate_limit` said of each token (read before anything is written).
pub struct Quotas(Vec<(Token, Result<RateLimits, FetchError>)>);

impl TokenPool {
    /// The pool of `tokens`, each with a lane within `limits` (see [`lanes`]).
    pub fn new(tokens: &[Token], limits: LaneLimits) -> TokenPool {
        let fingerprints: Vec<&str> = tokens.iter().map(Token::fingerprint).collect();
        TokenPool {
            tokens: tokens.to_vec(),
            by_fingerprint: fingerprints
                .iter()
                .enumerate()
                .map(|(i, f)| ((*f).to_owned(), i))
                .collect(),
            fingerprints_json: serde_json::to_string(&fingerprints).expect("strings serialize"),
            lanes: Arc::new(Lanes::new(tokens.len(), limits)),
            announced_until: Mutex::new(None),
            last_used: Mutex::new(None),
        }
    }

    /// The token the claim chose; a change of token is logged at debug level, by label.
    pub fn get(&self, fingerprint: &str) -> Option<&Token> {
        let token = &self.tokens[*self.by_fingerprint.get(fingerprint)?];
        if tracing::enabled!(tracing::Level::DEBUG) {
            let mut last = self.last_used.lock().unwrap_or_else(|e| e.into_inner());
            if last.as_deref() != Some(fingerprint) {
                tracing::debug!(token = %token, "requests now go to token {token}");
                *last = Some(fingerprint.to_owned());
            }
        }
        Some(token)
    }

    /// The token's place in the pool (and in the lanes).
    pub fn index_of(&self, fingerprint: &str) -> Option<usize> {
        self.by_fingerprint.get(fingerprint).copied()
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Every token's fingerprint, as a JSON array.
    pub fn fingerprints_json(&self) -> &str {
        &self.fingerprints_json
    }

    /// The fingerprints of the tokens `hold` holds a place on, as a JSON array: what a
    /// claim may choose from.
    pub fn held_json(&self, hold: &Hold) -> String {
        if hold.every() && hold.indexes().len() == self.tokens.len() {
            return self.fingerprints_json.clone();
        }
        let held: Vec<&str> = hold
            .indexes()
            .iter()
            .filter_map(|&i| self.tokens.get(i).map(Token::fingerprint))
            .collect();
        serde_json::to_string(&held).expect("strings serialize")
    }

    pub fn lanes(&self) -> &Arc<Lanes> {
        &self.lanes
    }

    /// Each token's lane (requests it may have in flight), by fingerprint.
    pub fn concurrency(&self) -> Vec<(&str, usize)> {
        self.tokens
            .iter()
            .map(Token::fingerprint)
            .zip(self.lanes.limits())
            .collect()
    }

    /// Reads each token's quota from `GET /rate_limit`, which costs nothing. Nothing is
    /// written yet: `--reserve` is checked against the limits first.
    pub async fn read_quotas(&self, client: &Client) -> Quotas {
        let answers = futures_util::future::join_all(
            self.tokens
                .iter()
                .map(|token| async move { (token.clone(), client.rate_limit(token).await) }),
        )
        .await;
        Quotas(answers)
    }

    /// Registers the tokens and records the quotas read, so the first claims already
    /// know which tokens are spent or bad. Failures to read are not fatal: the first
    /// real answer will tell the same.
    pub async fn prime(&self, store: &Store, quotas: Quotas) -> crate::store::Result<()> {
        store.register_tokens(&self.tokens, now_ms()).await?;
        for (token, answer) in quotas.0 {
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

impl Quotas {
    /// `--reserve` must leave something to spend: it must be below every token's limit,
    /// of REST requests and of GraphQL points. `given_as` names where it came from
    /// (`--reserve` or `SEEDQ_RESERVE`).
    pub fn check_reserve(&self, reserve: i64, given_as: &str) -> Result<(), UsageError> {
        for (token, answer) in &self.0 {
            let Ok(limits) = answer else { continue };
            let buckets = [
                ("REST requests", Some(&limits.core)),
                ("GraphQL points", limits.graphql.as_ref()),
            ];
            for (what, quota) in buckets {
                let Some(quota) = quota.filter(|q| q.limit > 0) else {
                    continue;
                };
                if reserve >= quota.limit {
                    return Err(UsageError(format!(
                        "{given_as} {reserve} is at or above the limit of {} {what} a window of \
                         token {token}: it would leave nothing to spend; give less than {}",
                        quota.limit, quota.limit
                    )));
                }
            }
        }
        Ok(())
    }
}
