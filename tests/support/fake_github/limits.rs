//! Rate limiting and fault injection: per-account primary windows, secondary-limit
//! penalties, conditional requests, and the bookkeeping (stats, request log).
//!
//! For each API request [`State::decide`] applies, in order: injected drop, injected 5xx
//! (neither applies to `/rate_limit`), authentication (401: an invalid token, an expired
//! installation token, see [`super::apps`]), `/rate_limit` (answered, never
//! counted), an ongoing secondary penalty (403 again), an injected secondary limit (403,
//! starts a penalty), a configured secondary limit on requests in flight or points per
//! minute (403, starts a penalty; see [`super::secondary`]), primary-quota exhaustion
//! (403/429), then the answer itself: a 304 for a
//! matching `If-None-Match` (no quota used) or the answer, which consumes one unit of quota
//! (404s included, as on GitHub).
//!
//! The steps shared with GraphQL requests ([`State::arrive`], [`State::inject_faults`],
//! [`State::authenticate`], [`State::record`]) are separate methods, so that
//! `graphql::gate` applies them in the same order; accounts live in [`super::account`].

use std::collections::HashMap;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use sha2::{Digest, Sha256};

pub use super::account::{account, Account};
use super::api::{Answer, Route};
use super::apps::Apps;
use super::secondary::{self, Api, Crowd};
use super::{FakeConfig, Faults, Outcome, RequestRecord, Stats};

/// The start of a secondary-limit answer's message (GitHub's; the request id and time
/// follow, see [`secondary_body`]).
pub const SECONDARY_MESSAGE: &str =
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.";
/// Documentation URL of rate-limit answers.
pub const RATE_DOCS: &str = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api";

/// Milliseconds since the Unix epoch, now.
pub fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A request as [`State::decide`] needs it.
pub struct Incoming<'a> {
    /// Raw token from `Authorization: Bearer X` / `token X`.
    pub token: Option<&'a str>,
    /// HTTP method.
    pub method: &'a str,
    /// Path and query, as sent.
    pub path: &'a str,
    /// Parsed route.
    pub route: &'a Route,
    /// `If-None-Match` header.
    pub if_none_match: Option<&'a str>,
    /// The answer generated for a repository route or an owner listing (None for other
    /// routes).
    pub answer: Option<Answer>,
    /// Arrival time.
    pub at: Instant,
    /// GraphQL points charged (0 for REST).
    pub points: u64,
    /// The requests in flight beside this one when it arrived (zero for requests not
    /// counted: no token, an invalid one, app endpoints, overrides).
    pub crowd: Crowd,
}

/// What to do with a request.
pub enum Reply {
    /// Close the connection without answering.
    Drop,
    /// Answer.
    Respond {
        /// HTTP status.
        status: u16,
        /// Headers (content-type included).
        headers: Vec<(&'static str, String)>,
        /// Body.
        body: Vec<u8>,
    },
}

/// Mutable server state, behind one mutex.
pub struct State {
    /// Accounts by login.
    pub accounts: HashMap<String, Account>,
    /// Current faults.
    pub faults: Faults,
    rng: StdRng,
    /// Counters (max_concurrent is filled in from an atomic at snapshot time).
    pub stats: Stats,
    /// Request log.
    pub log: Vec<RequestRecord>,
    /// GitHub Apps and the tokens they minted.
    pub apps: Apps,
    refusals: u64,
    seq: u64,
    start: Instant,
}

/// Content type of JSON answers.
pub const JSON: &str = "application/json; charset=utf-8";

/// Serialises a JSON body.
pub fn json_body(v: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&v).expect("json")
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of epoch ms, as GitHub's rate-limit messages show times.
fn message_time(now_ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(now_ms as i64)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// The body of a secondary-limit answer, GitHub's: the message names the request id and
/// time.
pub fn secondary_body(request_id: &str, now_ms: u64) -> Vec<u8> {
    let when = message_time(now_ms);
    json_body(json!({
        "message": format!(
            "{SECONDARY_MESSAGE} If you reach out to GitHub Support for help, please include \
             the request ID {request_id} and timestamp {when} UTC."
        ),
        "documentation_url": format!("{RATE_DOCS}#about-secondary-rate-limits"),
    }))
}

/// The `x-ratelimit-reset-ms` an answer carries (the exact end of its window).
pub fn reset_ms_of(headers: &[(&'static str, String)]) -> Option<u64> {
    headers
        .iter()
        .find(|(k, _)| *k == "x-ratelimit-reset-ms")
        .and_then(|(_, v)| v.parse().ok())
}

/// Weak ETag of a body (and of the token when `etag_per_token`).
pub fn etag(body: &[u8], token: Option<&str>) -> String {
    let mut h = Sha256::new();
    h.update(body);
    if let Some(t) = token {
        h.update(b"\0token\0");
        h.update(t.as_bytes());
    }
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    format!("W/\"{hex}\"")
}

/// Whether an `If-None-Match` value matches an ETag (weak comparison, lists, `*`).
pub fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    let bare = |s: &str| s.trim().trim_start_matches("W/").to_string();
    if_none_match
        .split(',')
        .any(|c| c.trim() == "*" || bare(c) == bare(etag))
}

impl State {
    /// Fresh state.
    pub fn new(faults: Faults, start: Instant, apps: Apps) -> State {
        State {
            accounts: HashMap::new(),
            apps,
            rng: StdRng::seed_from_u64(faults.seed),
            faults,
            stats: Stats::default(),
            log: Vec::new(),
            refusals: 0,
            seq: 0,
            start,
        }
    }

    /// Replaces the faults and reseeds the RNG.
    pub fn set_faults(&mut self, faults: Faults) {
        self.rng = StdRng::seed_from_u64(faults.seed);
        self.faults = faults;
    }

    /// Counts a request's arrival (totals, per-token counters); returns the time of the
    /// decision (epoch ms) and the request id sent as `x-github-request-id`.
    pub(super) fn arrive(&mut self, req: &Incoming<'_>) -> (u64, String) {
        let now_ms = epoch_ms();
        self.seq += 1;
        let request_id = format!("FAKE:{:04X}:{:08X}", std::process::id() & 0xffff, self.seq);
        self.stats.total_requests += 1;
        let since_start = req.at.saturating_duration_since(self.start).as_millis() as u64;
        if let Some(t) = req.token {
            let ts = self.stats.per_token.entry(t.to_string()).or_default();
            ts.requests += 1;
            ts.first_request.get_or_insert(req.at);
            ts.first_request_ms.get_or_insert(since_start);
            ts.last_request = Some(req.at);
            ts.last_request_ms = Some(since_start);
            ts.max_in_flight = ts.max_in_flight.max(req.crowd.token_total);
        }
        (now_ms, request_id)
    }

    /// Draws the injected faults, in order drop, server error, secondary limit: the reply
    /// for a drop or a 5xx (recorded), else whether a secondary limit is to be given.
    pub(super) fn inject_faults(
        &mut self,
        cfg: &FakeConfig,
        req: &Incoming<'_>,
        now_ms: u64,
    ) -> Result<bool, Reply> {
        let (d, e, s): (f64, f64, f64) = (self.rng.gen(), self.rng.gen(), self.rng.gen());
        if d < self.faults.p_drop {
            self.stats.drops_injected += 1;
            self.record(cfg, req, None, 0, false, Outcome::Dropped, now_ms, None);
            return Err(Reply::Drop);
        }
        if e < self.faults.p_server_error {
            self.stats.server_errors_injected += 1;
            let status = if self.rng.gen_bool(0.5) { 502 } else { 503 };
            let text = if status == 502 {
                "Bad Gateway"
            } else {
                "Service Unavailable"
            };
            let body = format!(
                "<!DOCTYPE html>\n<html><head><title>{status} {text}</title></head>\
                 <body><h1>{status} {text}</h1><p>Unicorn! This page is taking too long \
                 to load.</p></body></html>\n"
            );
            self.record(
                cfg,
                req,
                None,
                status,
                false,
                Outcome::ServerError,
                now_ms,
                None,
            );
            return Err(Reply::Respond {
                status,
                headers: vec![("content-type", "text/html; charset=utf-8".into())],
                body: body.into_bytes(),
            });
        }
        Ok(s < self.faults.p_secondary)
    }

    /// The request's valid token, or the 401 reply (recorded).
    pub(super) fn authenticate<'r>(
        &mut self,
        cfg: &FakeConfig,
        req: &Incoming<'r>,
        now_ms: u64,
        request_id: &str,
    ) -> Result<&'r str, Reply> {
        let window_ms = cfg.window.as_millis() as u64;
        match req.token {
            Some(t) if !cfg.invalid_tokens.contains(t) && self.apps.accepts(t, now_ms) => Ok(t),
            other => {
                self.stats.unauthorized += 1;
                let message = if other.is_some() {
                    "Bad credentials"
                } else {
                    "Requires authentication"
                };
                let reset = (now_ms + window_ms).div_ceil(1000);
                let headers = vec![
                    ("content-type", JSON.to_string()),
                    ("x-github-request-id", request_id.to_string()),
                    ("x-ratelimit-limit", "60".into()),
                    ("x-ratelimit-remaining", "59".into()),
                    ("x-ratelimit-used", "1".into()),
                    ("x-ratelimit-reset", reset.to_string()),
                    ("x-ratelimit-resource", "core".into()),
                ];
                let body = json_body(
                    json!({"message": message, "documentation_url": super::api::DOCS, "status": "401"}),
                );
                self.record(
                    cfg,
                    req,
                    None,
                    401,
                    false,
                    Outcome::Unauthorized,
                    now_ms,
                    None,
                );
                Err(Reply::Respond {
                    status: 401,
                    headers,
                    body,
                })
            }
        }
    }

    /// Decides the fate of one API request and records it.
    pub fn decide(&mut self, cfg: &FakeConfig, mut req: Incoming<'_>) -> Reply {
        let (now_ms, request_id) = self.arrive(&req);
        let is_rate_limit = matches!(req.route, Route::RateLimit);
        let window_ms = cfg.window.as_millis() as u64;

        // Injected faults (never on /rate_limit).
        let mut secondary_roll = false;
        if !is_rate_limit {
            match self.inject_faults(cfg, &req, now_ms) {
                Ok(roll) => secondary_roll = roll,
                Err(reply) => return reply,
            }
        }

        // Authentication.
        let token = match self.authenticate(cfg, &req, now_ms, &request_id) {
            Ok(t) => t,
            Err(reply) => return reply,
        };
        let minted = self.apps.minted(token);
        let (login, acc) = account(&mut self.accounts, cfg, token, minted, now_ms);

        let mut headers = vec![
            ("content-type", JSON.to_string()),
            ("x-github-request-id", request_id.clone()),
            ("x-github-api-version-selected", "2022-11-28".to_string()),
        ];
        let (status, body, counted, outcome) = if is_rate_limit {
            headers.extend(acc.headers(now_ms, window_ms));
            let body = json_body(acc.rate_limit_json(now_ms, window_ms));
            (200, body, false, Outcome::RateLimitQuery)
        } else if let Some(left_ms) = acc.penalty_left_ms(now_ms) {
            self.stats.sent_during_secondary_penalty += 1;
            headers.extend(acc.headers(now_ms, window_ms));
            if self.faults.secondary_retry_after.is_some() {
                headers.push(("retry-after", left_ms.div_ceil(1000).max(1).to_string()));
            }
            let body = secondary_body(&request_id, now_ms);
            (403, body, false, Outcome::SecondaryPenalty)
        } else if secondary_roll || !secondary::admit(cfg, &req, acc, Api::Rest, now_ms) {
            let outcome = if secondary_roll {
                self.stats.secondary_injected += 1;
                Outcome::SecondaryInjected
            } else {
                self.stats.secondary_limited += 1;
                if let Some(ts) = req.token.and_then(|t| self.stats.per_token.get_mut(t)) {
                    ts.secondary_limited += 1;
                }
                Outcome::SecondaryLimited
            };
            let (retry_after, body) = secondary::penalise(&self.faults, acc, now_ms, &request_id);
            headers.extend(acc.headers(now_ms, window_ms));
            headers.extend(retry_after);
            (403, body, false, outcome)
        } else if acc.remaining() == 0 {
            let status = if cfg.alternate_exhaustion_status {
                if self.refusals.is_multiple_of(2) {
                    403
                } else {
                    429
                }
            } else {
                cfg.exhaustion_status
            };
            self.refusals += 1;
            self.stats.refused_for_quota += 1;
            headers.extend(acc.headers(now_ms, window_ms));
            let when = message_time(now_ms);
            let message = format!(
                "API rate limit exceeded for user ID {}. If you reach out to GitHub Support \
                 for help, please include the request ID {request_id} and timestamp {when} UTC.",
                acc.user_id
            );
            let body = json_body(json!({"message": message, "documentation_url": RATE_DOCS}));
            (status, body, false, Outcome::RefusedForQuota)
        } else {
            let answer = match req.route {
                // GitHub: an installation token is no user ("Get the authenticated user").
                Route::User if minted.is_some() => {
                    Answer::error(403, "Resource not accessible by integration")
                }
                Route::User => Answer::ok(
                    &json!({
                        "login": acc.login, "id": acc.user_id,
                        "node_id": format!("U_kgDO{:X}", acc.user_id),
                        "type": "User", "site_admin": false, "name": null,
                    }),
                    None,
                ),
                Route::Repo { .. } | Route::OwnerRepos { .. } => {
                    req.answer.take().unwrap_or_else(Answer::not_found)
                }
                _ => Answer::not_found(),
            };
            let tag = (answer.status == 200)
                .then(|| etag(&answer.body, cfg.etag_per_token.then_some(token)));
            let fresh = match (&tag, req.if_none_match) {
                (Some(tag), Some(inm)) => etag_matches(inm, tag),
                _ => false,
            };
            if fresh {
                headers.retain(|(k, _)| *k != "content-type");
                headers.extend(acc.headers(now_ms, window_ms));
                headers.push(("etag", tag.unwrap_or_default()));
                (304, Vec::new(), false, Outcome::NotModified)
            } else {
                acc.consume(now_ms, window_ms);
                headers.extend(acc.headers(now_ms, window_ms));
                if let Some(tag) = tag {
                    headers.push(("etag", tag));
                    headers.push(("cache-control", "private, max-age=60, s-maxage=60".into()));
                    headers.push(("vary", "Accept, Authorization, Cookie".into()));
                }
                if let Some(link) = answer.link {
                    headers.push(("link", link));
                }
                (answer.status, answer.body, true, Outcome::Served)
            }
        };
        if outcome == Outcome::NotModified {
            self.stats.not_modified += 1;
        }
        if counted {
            self.stats.counted_requests += 1;
        }
        if status == 200 {
            *self
                .stats
                .pages_served
                .entry(req.path.to_string())
                .or_default() += 1;
        }
        let reset_ms = reset_ms_of(&headers);
        self.record(
            cfg,
            &req,
            Some(login),
            status,
            counted,
            outcome,
            now_ms,
            reset_ms,
        );
        Reply::Respond {
            status,
            headers,
            body,
        }
    }

    /// Counts and logs a request answered by an override (no quota used).
    pub fn record_hostile(&mut self, cfg: &FakeConfig, req: Incoming<'_>, status: u16) {
        self.stats.total_requests += 1;
        if let Some(t) = req.token {
            let since_start = req.at.saturating_duration_since(self.start).as_millis() as u64;
            let ts = self.stats.per_token.entry(t.to_string()).or_default();
            ts.requests += 1;
            ts.first_request.get_or_insert(req.at);
            ts.first_request_ms.get_or_insert(since_start);
            ts.last_request = Some(req.at);
            ts.last_request_ms = Some(since_start);
        }
        self.record(
            cfg,
            &req,
            None,
            status,
            false,
            Outcome::Hostile,
            epoch_ms(),
            None,
        );
    }

    /// Counts a request's status and per-token outcome, and logs it when
    /// `record_requests` is on. GraphQL requests (route [`Route::Graphql`]) count their
    /// points and refusals apart from REST's.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn record(
        &mut self,
        cfg: &FakeConfig,
        req: &Incoming<'_>,
        account: Option<String>,
        status: u16,
        counted: bool,
        outcome: Outcome,
        now_ms: u64,
        reset_ms: Option<u64>,
    ) {
        if status != 0 {
            *self.stats.status_counts.entry(status).or_default() += 1;
        }
        let graphql = matches!(req.route, Route::Graphql);
        let refused = (outcome == Outcome::RefusedForQuota) as u64;
        self.stats.graphql_points += req.points;
        if let Some(t) = req.token {
            if let Some(ts) = self.stats.per_token.get_mut(t) {
                ts.counted += counted as u64;
                if graphql {
                    ts.graphql_points += req.points;
                    ts.graphql_refused += refused;
                } else {
                    ts.refused += refused;
                }
            }
        }
        if cfg.record_requests {
            self.log.push(RequestRecord {
                at: req.at,
                ms_since_start: req.at.saturating_duration_since(self.start).as_millis() as u64,
                at_ms: now_ms,
                reset_ms,
                token: req.token.map(str::to_string),
                account,
                method: req.method.to_string(),
                path: req.path.to_string(),
                status,
                counted,
                outcome,
                points: req.points,
                graphql,
            });
        }
    }
}
