//! What the server counts: per-token and global counters ([`Stats`]), and the request
//! log ([`RequestRecord`], kept only while `FakeConfig::record_requests` is on, so long
//! runs keep memory flat).

use std::collections::HashMap;
use std::time::Instant;

use serde::Serialize;

/// Counters of one token (keyed by the raw token in [`Stats::per_token`]).
#[derive(Clone, Debug, Default, Serialize)]
pub struct TokenStats {
    /// Requests received with this token (any route but `/_fake`, any outcome).
    pub requests: u64,
    /// Requests that consumed primary (REST) quota.
    pub counted: u64,
    /// REST requests refused because the account's quota was exhausted.
    pub refused: u64,
    /// GraphQL requests received with this token (any outcome).
    pub graphql_queries: u64,
    /// GraphQL points charged.
    pub graphql_points: u64,
    /// GraphQL queries refused with RATE_LIMITED.
    pub graphql_refused: u64,
    /// GraphQL queries that timed out (502, charged).
    pub graphql_timeouts: u64,
    /// Requests refused by a secondary limit on concurrency or points per minute (not the
    /// injected ones, nor the repeats during a penalty).
    pub secondary_limited: u64,
    /// The highest number of this token's requests in flight at once (REST and GraphQL;
    /// counted whether or not `max_in_flight_per_token` is set).
    pub max_in_flight: u32,
    /// Arrival of the first request.
    #[serde(skip)]
    pub first_request: Option<Instant>,
    /// Arrival of the latest request.
    #[serde(skip)]
    pub last_request: Option<Instant>,
    /// Arrival of the first request, in ms since the server started.
    pub first_request_ms: Option<u64>,
    /// Arrival of the latest request, in ms since the server started.
    pub last_request_ms: Option<u64>,
}

/// A snapshot of the server's counters. `/_fake` routes are never counted.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Stats {
    /// All requests received (including 304s, 401s, `/rate_limit`, faults, GraphQL).
    pub total_requests: u64,
    /// REST requests that consumed primary quota (GraphQL's charge is `graphql_points`).
    pub counted_requests: u64,
    /// REST requests sent with a token whose account quota was exhausted in the current
    /// window (GraphQL's are `graphql_refused`).
    pub refused_for_quota: u64,
    /// Requests sent with a token whose account was under a secondary-limit penalty.
    pub sent_during_secondary_penalty: u64,
    /// 304 answers.
    pub not_modified: u64,
    /// 401 answers.
    pub unauthorized: u64,
    /// Injected 502/503 answers.
    pub server_errors_injected: u64,
    /// Injected dropped connections.
    pub drops_injected: u64,
    /// Injected secondary-limit answers (not counting the repeats during the penalty).
    pub secondary_injected: u64,
    /// Requests refused by a configured secondary limit: too many in flight
    /// (`max_in_flight_per_token`) or too many points in a minute (`max_points_per_minute`,
    /// `max_graphql_points_per_minute`). Injected ones are in `secondary_injected` and the
    /// repeats during the penalty in `sent_during_secondary_penalty`, not here.
    pub secondary_limited: u64,
    /// Requests to the app endpoints (`/app/installations...`), any outcome.
    pub app_requests: u64,
    /// App-endpoint requests refused for their JWT (401, or 404 for an unknown app id).
    pub jwt_rejected: u64,
    /// Installation access tokens minted, all installations.
    pub tokens_minted: u64,
    /// Installation access tokens minted, per installation id (renewals show here).
    pub tokens_minted_per_installation: HashMap<u64, u64>,
    /// Per raw token.
    pub per_token: HashMap<String, TokenStats>,
    /// Highest number of API requests in flight at once.
    pub max_concurrent: u64,
    /// Path+query (no host) -> number of 200 answers; lets tests count refetches. REST
    /// only: GraphQL pages are in `graphql_items_served`.
    pub pages_served: HashMap<String, u64>,
    /// Requests to the GraphQL endpoint (any outcome).
    pub graphql_queries: u64,
    /// GraphQL points charged (timed-out queries included).
    pub graphql_points: u64,
    /// GraphQL queries refused with RATE_LIMITED (200 with an errors entry).
    pub graphql_refused: u64,
    /// GraphQL queries that timed out (502, charged).
    pub graphql_timeouts: u64,
    /// GraphQL connection pages answered with 200, by
    /// `"{owner}/{repo}#{number}:{field}:{offset}"` (e.g. `acme/widgets#5:files:100`) or
    /// `"{owner}/{repo}:pullRequests:{offset}"`; lets tests count GraphQL refetches.
    pub graphql_items_served: HashMap<String, u64>,
    /// HTTP status -> number of answers (dropped connections are not here).
    pub status_counts: HashMap<u16, u64>,
}

/// What happened to one request (see [`RequestRecord::outcome`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Outcome {
    /// An API answer that consumed quota (200, 404, 422, a `repo_errors` status...), or a
    /// GraphQL query that ran (charged its cost; 200, partial errors included).
    Served,
    /// 304 Not Modified (no quota used).
    NotModified,
    /// `/rate_limit` answered (no quota used).
    RateLimitQuery,
    /// 401 (missing or invalid token).
    Unauthorized,
    /// 403/429: the account's primary quota was exhausted; for GraphQL, a 200 RATE_LIMITED:
    /// the query cost more points than were left.
    RefusedForQuota,
    /// 403 secondary limit injected now (starts a penalty).
    SecondaryInjected,
    /// 403 secondary limit because the account was already under penalty.
    SecondaryPenalty,
    /// Injected 502/503.
    ServerError,
    /// Connection closed without a response.
    Dropped,
    /// A [`Hostile`] answer from [`FakeConfig::overrides`] (no quota used).
    Hostile,
    /// A GraphQL request answered without running: errors found before execution (parse,
    /// validation, pagination or node limits), a GET, or GraphQL disabled (no points).
    Rejected,
    /// A GraphQL query that ran past the timeout weight: charged, answered 502.
    TimedOut,
    /// 403 secondary limit: too many requests of the account in flight, or too many points
    /// in its minute (starts a penalty, like an injected one).
    SecondaryLimited,
    /// An app endpoint answered for a valid JWT (200, 201, or 404 for another app's
    /// installation; no quota used).
    App,
    /// An app endpoint refused the JWT (401, or 404 for an unknown app id).
    JwtRejected,
}

/// One request as the server saw it.
#[derive(Clone, Debug, Serialize)]
pub struct RequestRecord {
    /// Arrival time.
    #[serde(skip)]
    pub at: Instant,
    /// Arrival, in ms since the server started.
    pub ms_since_start: u64,
    /// When the server decided the answer (right after reading the request), in ms since
    /// the Unix epoch: the clock of `x-ratelimit-reset-ms` and [`RequestRecord::reset_ms`].
    pub at_ms: u64,
    /// The `x-ratelimit-reset-ms` sent with the answer (end of the account's window, epoch
    /// ms); None for answers without rate-limit headers (401, 5xx, drops).
    pub reset_ms: Option<u64>,
    /// The raw token from `Authorization`, if any; for an app endpoint, the JWT's
    /// fingerprint (`jwt:` + 8 hex digits), never the JWT.
    pub token: Option<String>,
    /// The account the token belongs to (None without a token or for an invalid one).
    pub account: Option<String>,
    /// HTTP method.
    pub method: String,
    /// Path and query as sent (no host).
    pub path: String,
    /// Status returned; 0 for a dropped connection.
    pub status: u16,
    /// Whether the request consumed primary (REST) quota.
    pub counted: bool,
    /// What happened.
    pub outcome: Outcome,
    /// GraphQL points charged (0 for REST and for GraphQL answers that cost nothing).
    pub points: u64,
    /// Whether this was a request to the GraphQL endpoint.
    pub graphql: bool,
}
