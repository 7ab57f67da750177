//! Secondary rate limits by concurrency and by points per minute, per account, as GitHub
//! documents them (<https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api#about-secondary-rate-limits>):
//! "No more than 100 concurrent requests are allowed. This limit is shared across the REST
//! API and GraphQL API", "No more than 900 points per minute are allowed for REST API
//! endpoints, and no more than 2,000 points per minute are allowed for the GraphQL API
//! endpoint", where a REST GET (or HEAD) is 1 point and a GraphQL request without a
//! mutation is 1 point, "separate from the point value calculations for the primary rate
//! limit" (so a query's cost does not matter here).
//!
//! Both are off unless configured ([`FakeConfig::max_in_flight_per_token`],
//! [`FakeConfig::max_points_per_minute`], [`FakeConfig::max_graphql_points_per_minute`]),
//! and both count per account, so tokens of one account (or one installation) share them:
//!
//! - in flight: a request is in flight from the moment its head is read until its answer
//!   is handed to hyper (after the configured latency), refused ones included. A request
//!   arriving while its account already has `max_in_flight_per_token` others in flight is
//!   refused;
//! - points: each account has a fixed one-minute window per API, started by its first
//!   request and ended 60 s later (like the primary windows, not a rolling minute). A
//!   request that would take the window past its maximum is refused and adds nothing.
//!
//! A refusal is answered as GitHub answers a secondary limit and as the injected ones are:
//! 403 with GitHub's message (and request id), `retry-after` from
//! `Faults::secondary_retry_after`, and a penalty on the account for that long (60 s
//! without `retry-after`), during which every request is refused again and counted in
//! `Stats::sent_during_secondary_penalty`. Refused requests use no primary quota and no
//! points; they count in `Stats::secondary_limited` (the injected ones stay in
//! `Stats::secondary_injected`). `/rate_limit`, the `/app` endpoints, overrides and
//! `/_fake` routes are exempt, and requests with a missing or invalid token are not counted.

use std::collections::HashMap;
use std::sync::Mutex;

use super::account::Account;
use super::graphql::bucket::Bucket;
use super::limits::{secondary_body, Incoming};
use super::{lock, FakeConfig, Faults};

/// Length of a points window, in ms.
pub const MINUTE_MS: u64 = 60_000;
/// Points of a REST GET or HEAD.
pub const REST_GET_POINTS: u32 = 1;
/// Points of a GraphQL request without mutation (the fake serves no mutation).
pub const GRAPHQL_QUERY_POINTS: u32 = 1;

/// A fresh points window (its limit is unused: the configured maximum is compared).
pub fn minute_bucket(resource: &'static str) -> Bucket {
    Bucket::new(resource, u32::MAX)
}

/// Requests in flight, per account and per token.
#[derive(Default)]
pub struct InFlightTable {
    /// Account login -> its requests in flight.
    by_account: HashMap<String, u32>,
    /// Raw token -> its requests in flight.
    by_token: HashMap<String, u32>,
}

/// What a request saw when it entered: the numbers the checks and stats need.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Crowd {
    /// Other requests of the same account already in flight.
    pub account_others: u32,
    /// Requests of the same token in flight, this one included.
    pub token_total: u32,
}

/// Holds one request's place in [`InFlightTable`]; dropping it (when the answer is handed over,
/// or the connection goes) gives the place back.
pub struct Entered<'a> {
    table: &'a Mutex<InFlightTable>,
    account: String,
    token: String,
}

impl InFlightTable {
    /// Counts a request of `token` (account `account`) as in flight.
    pub fn enter<'a>(
        table: &'a Mutex<InFlightTable>,
        account: &str,
        token: &str,
    ) -> (Entered<'a>, Crowd) {
        let mut t = lock(table);
        let others = t.by_account.entry(account.to_string()).or_default();
        let account_others = *others;
        *others += 1;
        let mine = t.by_token.entry(token.to_string()).or_default();
        *mine += 1;
        let crowd = Crowd {
            account_others,
            token_total: *mine,
        };
        let entered = Entered {
            table,
            account: account.to_string(),
            token: token.to_string(),
        };
        (entered, crowd)
    }
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        let mut guard = lock(self.table);
        let t = &mut *guard;
        for (map, key) in [
            (&mut t.by_account, &self.account),
            (&mut t.by_token, &self.token),
        ] {
            if let Some(n) = map.get_mut(key.as_str()) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    map.remove(key.as_str());
                }
            }
        }
    }
}

/// Which API a request is for, for its points window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// REST: `max_points_per_minute`, GET 1 point.
    Rest,
    /// GraphQL: `max_graphql_points_per_minute`, a query 1 point.
    Graphql,
}

/// Whether `req` passes a configured secondary limit of `acc` at `now_ms`; if it does not,
/// nothing is charged. If it does, its points are charged to the account's minute.
pub fn admit(
    cfg: &FakeConfig,
    req: &Incoming<'_>,
    acc: &mut Account,
    api: Api,
    now_ms: u64,
) -> bool {
    if cfg
        .max_in_flight_per_token
        .is_some_and(|max| req.crowd.account_others >= max)
    {
        return false;
    }
    let (bucket, max, points) = match api {
        Api::Rest => (
            &mut acc.rest_minute,
            cfg.max_points_per_minute,
            REST_GET_POINTS,
        ),
        Api::Graphql => (
            &mut acc.graphql_minute,
            cfg.max_graphql_points_per_minute,
            GRAPHQL_QUERY_POINTS,
        ),
    };
    if max.is_some_and(|max| bucket.used.saturating_add(points) > max) {
        return false;
    }
    bucket.charge(points, now_ms, MINUTE_MS);
    true
}

/// Penalises `acc` for a secondary limit given now (injected or configured): the
/// `retry-after` header to send (if any) and the body.
pub fn penalise(
    faults: &Faults,
    acc: &mut Account,
    now_ms: u64,
    request_id: &str,
) -> (Option<(&'static str, String)>, Vec<u8>) {
    let secs = faults.secondary_retry_after.unwrap_or(60);
    acc.penalty_until_ms = Some(now_ms + secs * 1000);
    let retry_after = faults
        .secondary_retry_after
        .map(|n| ("retry-after", n.to_string()));
    (retry_after, secondary_body(request_id, now_ms))
}
