//! Rate limiting and bookkeeping of GraphQL requests, beside REST's in [`State`].
//!
//! [`State::admit_graphql`] applies, in order: injected drop and 5xx (as for REST),
//! authentication (401), GraphQL disabled (404, free), an ongoing secondary penalty or an
//! injected secondary limit (403, shared with REST), a configured secondary limit on
//! requests in flight (shared with REST) or GraphQL points per minute (403, see
//! [`super::super::secondary`]), errors found before execution (200
//! with `errors`, free), then the account's GraphQL bucket: a query costing more than the
//! points left is refused with RATE_LIMITED (200, nothing charged); otherwise its cost is
//! charged and it may run (a dry run is free). [`State::finish_graphql`] then answers 200
//! with `data` (and `errors` for partial failures), or 502 when the answer's weight passes
//! `graphql_timeout_weight` (still charged, as GitHub charges queries that time out).

use serde_json::{json, Value};

use super::super::data::ts;
use super::super::limits::{self, json_body, secondary_body, Incoming, Reply, State, JSON};
use super::super::secondary::{self, Api};
use super::super::{FakeConfig, Outcome};
use super::analyze::Plan;
use super::exec::{Executed, Out, RateInfo};

/// A query allowed to run: who runs it and what was charged.
pub struct Ticket {
    /// The account's login (`viewer`).
    pub login: String,
    /// The account's numeric id.
    pub user_id: u64,
    /// `x-github-request-id` of the answer.
    pub request_id: String,
    /// When the request was admitted (epoch ms).
    pub now_ms: u64,
    /// Points charged.
    pub points: u64,
    /// The answer's headers (GraphQL bucket after the charge).
    pub headers: Vec<(&'static str, String)>,
    /// The `x-ratelimit-reset-ms` sent.
    pub reset_ms: u64,
    /// The `rateLimit` object of the answer.
    pub rate: RateInfo,
}

/// What to do with a GraphQL request.
pub enum Gate {
    /// Answer now (nothing runs).
    Reply(Reply),
    /// Run the query, then call [`State::finish_graphql`].
    Run(Ticket),
}

/// The GraphQL answer body `{"data": ..., "errors": [...]}`.
#[derive(serde::Serialize)]
struct Body<'a> {
    /// `data`: null when a null spread up to the root.
    data: Option<&'a Out>,
    /// Field errors, left out when there are none.
    #[serde(skip_serializing_if = "<[Value]>::is_empty")]
    errors: &'a [Value],
}

impl State {
    /// Admits a GraphQL request (see the module docs), given the outcome of its static
    /// analysis.
    pub fn admit_graphql(
        &mut self,
        cfg: &FakeConfig,
        req: &Incoming<'_>,
        plan: &Result<Plan, Vec<Value>>,
    ) -> Gate {
        let (now_ms, request_id) = self.arrive(req);
        self.stats.graphql_queries += 1;
        if let Some(ts) = req.token.and_then(|t| self.stats.per_token.get_mut(t)) {
            ts.graphql_queries += 1;
        }
        let window_ms = cfg.window.as_millis() as u64;
        let secondary_roll = match self.inject_faults(cfg, req, now_ms) {
            Ok(roll) => roll,
            Err(reply) => return Gate::Reply(reply),
        };
        let token = match self.authenticate(cfg, req, now_ms, &request_id) {
            Ok(t) => t,
            Err(reply) => return Gate::Reply(reply),
        };
        let minted = self.apps.minted(token);
        let (login, acc) = limits::account(&mut self.accounts, cfg, token, minted, now_ms);
        let mut headers = vec![
            ("content-type", JSON.to_string()),
            ("x-github-request-id", request_id.clone()),
        ];
        let (status, body, outcome) = if !cfg.graphql {
            headers.extend(acc.headers(now_ms, window_ms));
            let body =
                json!({"message": "Not Found", "documentation_url": super::super::api::DOCS});
            (404, json_body(body), Outcome::Rejected)
        } else if let Some(left_ms) = acc.penalty_left_ms(now_ms) {
            self.stats.sent_during_secondary_penalty += 1;
            headers.extend(acc.graphql.headers(now_ms, window_ms));
            if self.faults.secondary_retry_after.is_some() {
                headers.push(("retry-after", left_ms.div_ceil(1000).max(1).to_string()));
            }
            (
                403,
                secondary_body(&request_id, now_ms),
                Outcome::SecondaryPenalty,
            )
        } else if secondary_roll || !secondary::admit(cfg, req, acc, Api::Graphql, now_ms) {
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
            headers.extend(acc.graphql.headers(now_ms, window_ms));
            headers.extend(retry_after);
            (403, body, outcome)
        } else {
            match plan {
                Err(errors) => {
                    headers.extend(acc.graphql.headers(now_ms, window_ms));
                    (
                        200,
                        json_body(json!({ "errors": errors })),
                        Outcome::Rejected,
                    )
                }
                Ok(plan) if !plan.dry_run && acc.graphql.remaining() < plan.cost => {
                    self.stats.graphql_refused += 1;
                    headers.extend(acc.graphql.headers(now_ms, window_ms));
                    let message = format!("API rate limit exceeded for user ID {}.", acc.user_id);
                    let body = json!({"errors": [{
                        "type": "RATE_LIMITED",
                        "code": "graphql_rate_limit",
                        "message": message,
                    }]});
                    (200, json_body(body), Outcome::RefusedForQuota)
                }
                Ok(plan) => {
                    let points = if plan.dry_run { 0 } else { plan.cost };
                    acc.graphql.charge(points, now_ms, window_ms);
                    let bucket = &acc.graphql;
                    let reset_ms = bucket.reset_ms(now_ms, window_ms);
                    headers.extend(bucket.headers(now_ms, window_ms));
                    return Gate::Run(Ticket {
                        user_id: acc.user_id,
                        login,
                        request_id,
                        now_ms,
                        points: u64::from(points),
                        headers,
                        reset_ms,
                        rate: RateInfo {
                            limit: bucket.limit,
                            cost: plan.cost,
                            remaining: bucket.remaining(),
                            used: bucket.used,
                            reset_at: ts(reset_ms.div_ceil(1000) as i64),
                            node_count: plan.nodes,
                        },
                    });
                }
            }
        };
        let reset_ms = limits::reset_ms_of(&headers);
        self.record(
            cfg,
            req,
            Some(login),
            status,
            false,
            outcome,
            now_ms,
            reset_ms,
        );
        Gate::Reply(Reply::Respond {
            status,
            headers,
            body,
        })
    }

    /// Answers a query that ran: 502 past the timeout weight, else 200 with its data; and
    /// records it. `req.points` must be the ticket's points.
    pub fn finish_graphql(
        &mut self,
        cfg: &FakeConfig,
        req: &Incoming<'_>,
        ticket: Ticket,
        done: Executed,
    ) -> Reply {
        let timed_out = cfg
            .graphql_timeout_weight
            .is_some_and(|limit| done.weight > limit);
        let (status, body, outcome) = if timed_out {
            self.stats.graphql_timeouts += 1;
            if let Some(ts) = req.token.and_then(|t| self.stats.per_token.get_mut(t)) {
                ts.graphql_timeouts += 1;
            }
            let message = format!(
                "Something went wrong while executing your query. This may be the result of a \
                 timeout, or it could be a GitHub bug. Please include `{}` when reporting this \
                 issue.",
                ticket.request_id
            );
            let body = json!({"data": null, "errors": [{"message": message}]});
            (502, json_body(body), Outcome::TimedOut)
        } else {
            for key in done.pages {
                *self.stats.graphql_items_served.entry(key).or_default() += 1;
            }
            let body = Body {
                data: done.data.as_ref(),
                errors: &done.errors,
            };
            let body = serde_json::to_vec(&body).expect("graphql answer");
            (200, body, Outcome::Served)
        };
        self.record(
            cfg,
            req,
            Some(ticket.login),
            status,
            false,
            outcome,
            ticket.now_ms,
            Some(ticket.reset_ms),
        );
        Reply::Respond {
            status,
            headers: ticket.headers,
            body,
        }
    }
}
