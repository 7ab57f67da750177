//! Accounts: who a token belongs to, and each account's quota state — its REST window,
//! its GraphQL points bucket, and any secondary-limit penalty. Tokens mapped to one login
//! in `FakeConfig::shared_accounts` share all of it.

use std::collections::HashMap;

use serde_json::json;
use sha2::{Digest, Sha256};

use super::graphql::bucket::Bucket;
use super::{default_account, FakeConfig};

/// One account's quota state. A window starts at the account's first counted request and
/// lasts `FakeConfig::window`; it is reset lazily by [`Account::roll`].
#[derive(Clone, Debug)]
pub struct Account {
    /// Login.
    pub login: String,
    /// Numeric user id (in the exhaustion message and `/user`).
    pub user_id: u64,
    /// Quota per window.
    pub limit: u32,
    /// Counted requests in the current window.
    pub used: u32,
    /// End of the current window (epoch ms), if one is running.
    pub window_end_ms: Option<u64>,
    /// End of the secondary-limit penalty (epoch ms), if any.
    pub penalty_until_ms: Option<u64>,
    /// GraphQL points: a bucket and window of their own.
    pub graphql: Bucket,
}

impl Account {
    /// A fresh account with `limit` REST requests and `graphql_limit` GraphQL points.
    pub fn new(login: &str, limit: u32, graphql_limit: u32) -> Account {
        let d = Sha256::digest(login.as_bytes());
        let mut b = [0u8; 8];
        b.copy_from_slice(&d[..8]);
        Account {
            login: login.to_string(),
            user_id: 1_000_000 + u64::from_be_bytes(b) % 90_000_000,
            limit,
            used: 0,
            window_end_ms: None,
            penalty_until_ms: None,
            graphql: Bucket::new(graphql_limit),
        }
    }

    /// Ends an expired window or penalty.
    pub fn roll(&mut self, now_ms: u64) {
        if self.window_end_ms.is_some_and(|end| now_ms >= end) {
            self.window_end_ms = None;
            self.used = 0;
        }
        if self.penalty_until_ms.is_some_and(|end| now_ms >= end) {
            self.penalty_until_ms = None;
        }
        self.graphql.roll(now_ms);
    }

    /// Quota left in the current window.
    pub fn remaining(&self) -> u32 {
        self.limit.saturating_sub(self.used)
    }

    /// End of the current window, or of a window that would start now.
    pub fn reset_ms(&self, now_ms: u64, window_ms: u64) -> u64 {
        self.window_end_ms.unwrap_or(now_ms + window_ms)
    }

    /// Consumes one unit, starting a window if none is running.
    pub fn consume(&mut self, now_ms: u64, window_ms: u64) {
        if self.window_end_ms.is_none() {
            self.window_end_ms = Some(now_ms + window_ms);
        }
        self.used += 1;
    }

    /// Milliseconds of secondary penalty left, if penalised.
    pub fn penalty_left_ms(&self, now_ms: u64) -> Option<u64> {
        self.penalty_until_ms
            .filter(|&end| end > now_ms)
            .map(|end| end - now_ms)
    }

    /// The `x-ratelimit-*` headers. `x-ratelimit-reset` is rounded up to the next second so
    /// a client that waits for it never comes back early; `x-ratelimit-reset-ms` is exact.
    pub fn headers(&self, now_ms: u64, window_ms: u64) -> Vec<(&'static str, String)> {
        let reset_ms = self.reset_ms(now_ms, window_ms);
        vec![
            ("x-ratelimit-limit", self.limit.to_string()),
            ("x-ratelimit-remaining", self.remaining().to_string()),
            ("x-ratelimit-used", self.used.to_string()),
            ("x-ratelimit-reset", reset_ms.div_ceil(1000).to_string()),
            ("x-ratelimit-reset-ms", reset_ms.to_string()),
            ("x-ratelimit-resource", "core".to_string()),
        ]
    }

    /// The body of `GET /rate_limit`: the REST bucket as `core` and `rate`, the GraphQL
    /// bucket as `graphql`.
    pub fn rate_limit_json(&self, now_ms: u64, window_ms: u64) -> serde_json::Value {
        let core = json!({
            "limit": self.limit,
            "used": self.used,
            "remaining": self.remaining(),
            "reset": self.reset_ms(now_ms, window_ms).div_ceil(1000),
            "resource": "core",
        });
        let search_reset = (now_ms + 60_000).div_ceil(1000);
        json!({
            "resources": {
                "core": core,
                "search": {"limit": 30, "used": 0, "remaining": 30, "reset": search_reset, "resource": "search"},
                "graphql": self.graphql.json(now_ms, window_ms),
            },
            "rate": core,
        })
    }
}

/// The account of a valid token (created on first use with its limits), rolled to `now_ms`.
pub fn account<'a>(
    accounts: &'a mut HashMap<String, Account>,
    cfg: &FakeConfig,
    token: &str,
    now_ms: u64,
) -> (String, &'a mut Account) {
    let login = cfg
        .shared_accounts
        .get(token)
        .cloned()
        .unwrap_or_else(|| default_account(token));
    let limit = cfg.account_limits.get(&login).copied().unwrap_or(cfg.limit);
    let graphql_limit = cfg
        .account_graphql_limits
        .get(&login)
        .copied()
        .unwrap_or(cfg.graphql_limit);
    let acc = accounts
        .entry(login.clone())
        .or_insert_with(|| Account::new(&login, limit, graphql_limit));
    acc.roll(now_ms);
    (login, acc)
}
