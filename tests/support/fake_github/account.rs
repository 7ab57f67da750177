//! Accounts: who a token belongs to, and each account's quota state — its REST window,
//! its GraphQL points bucket, and any secondary-limit penalty. Tokens mapped to one login
//! in `FakeConfig::shared_accounts` share all of it, and so do the tokens minted for one
//! app installation (account `installation:{id}`, see [`super::apps`]). The minute windows
//! of the secondary points limits live here too (see [`super::secondary`]).

use std::collections::HashMap;

use serde_json::json;
use sha2::{Digest, Sha256};

use super::apps::{FakeInstallation, Minted};
use super::graphql::bucket::Bucket;
use super::secondary::minute_bucket;
use super::{default_account, FakeConfig};

/// One account's quota state. A window starts at the account's first counted request and
/// lasts `FakeConfig::window`; it is reset lazily by [`Account::roll`].
#[derive(Clone, Debug)]
pub struct Account {
    /// Login.
    pub login: String,
    /// Numeric user id (in the exhaustion message and `/user`).
    pub user_id: u64,
    /// REST requests: a bucket and window of their own.
    pub core: Bucket,
    /// End of the secondary-limit penalty (epoch ms), if any.
    pub penalty_until_ms: Option<u64>,
    /// GraphQL points: a bucket and window of their own.
    pub graphql: Bucket,
    /// REST points of the current minute, for `FakeConfig::max_points_per_minute`.
    pub rest_minute: Bucket,
    /// GraphQL points of the current minute, for `FakeConfig::max_graphql_points_per_minute`.
    pub graphql_minute: Bucket,
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
            core: Bucket::new("core", limit),
            penalty_until_ms: None,
            graphql: Bucket::new("graphql", graphql_limit),
            rest_minute: minute_bucket("core"),
            graphql_minute: minute_bucket("graphql"),
        }
    }

    /// Ends an expired window or penalty.
    pub fn roll(&mut self, now_ms: u64) {
        self.core.roll(now_ms);
        if self.penalty_until_ms.is_some_and(|end| now_ms >= end) {
            self.penalty_until_ms = None;
        }
        self.graphql.roll(now_ms);
        self.rest_minute.roll(now_ms);
        self.graphql_minute.roll(now_ms);
    }

    /// REST quota left in the current window.
    pub fn remaining(&self) -> u32 {
        self.core.remaining()
    }

    /// Consumes one REST request, starting a window if none is running.
    pub fn consume(&mut self, now_ms: u64, window_ms: u64) {
        self.core.charge(1, now_ms, window_ms);
    }

    /// Milliseconds of secondary penalty left, if penalised.
    pub fn penalty_left_ms(&self, now_ms: u64) -> Option<u64> {
        self.penalty_until_ms
            .filter(|&end| end > now_ms)
            .map(|end| end - now_ms)
    }

    /// The REST bucket's `x-ratelimit-*` headers.
    pub fn headers(&self, now_ms: u64, window_ms: u64) -> Vec<(&'static str, String)> {
        self.core.headers(now_ms, window_ms)
    }

    /// The body of `GET /rate_limit`: the REST bucket as `core` and `rate`, the GraphQL
    /// bucket as `graphql`.
    pub fn rate_limit_json(&self, now_ms: u64, window_ms: u64) -> serde_json::Value {
        let core = self.core.json(now_ms, window_ms);
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

/// The login of a valid token's account: its installation's for a token minted for one
/// (`minted`), else the one `FakeConfig::shared_accounts` gives, else its own.
pub fn login_of(cfg: &FakeConfig, token: &str, minted: Option<Minted>) -> String {
    match minted {
        Some(m) => FakeInstallation::account_login(m.installation),
        None => cfg
            .shared_accounts
            .get(token)
            .cloned()
            .unwrap_or_else(|| default_account(token)),
    }
}

/// The account of a valid token (created on first use with its limits), rolled to `now_ms`.
/// `minted` is the token's record when an app minted it: its account is the installation's,
/// with the installation's limit for REST and GraphQL alike.
pub fn account<'a>(
    accounts: &'a mut HashMap<String, Account>,
    cfg: &FakeConfig,
    token: &str,
    minted: Option<Minted>,
    now_ms: u64,
) -> (String, &'a mut Account) {
    let login = login_of(cfg, token, minted);
    let (limit, graphql_limit) = match minted {
        Some(m) => (m.limit, m.limit),
        None => (
            cfg.account_limits.get(&login).copied().unwrap_or(cfg.limit),
            cfg.account_graphql_limits
                .get(&login)
                .copied()
                .unwrap_or(cfg.graphql_limit),
        ),
    };
    let acc = accounts
        .entry(login.clone())
        .or_insert_with(|| Account::new(&login, limit, graphql_limit));
    acc.roll(now_ms);
    (login, acc)
}
