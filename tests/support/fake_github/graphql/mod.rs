//! GitHub's GraphQL API over the fake's data: `POST /graphql` (and `POST /api/graphql`, the
//! GitHub Enterprise Server form), serving the same pull requests, commits, reviews, files,
//! issue comments and check runs as the REST routes, in GraphQL's forms.
//!
//! A request goes: body read (`{"query", "variables", "operationName"}`), query parsed
//! with apollo-compiler's AST parser and analysed without running ([`analyze`]: unknown
//! fields, pagination boundaries, node limit, cost), then admitted or refused by the
//! account's GraphQL bucket ([`gate`]), run by a small executor ([`exec`]) over the
//! schema subset in [`schema`], and answered 200 (or 502 past the timeout weight).
//!
//! Layout: `schema` (the types and fields served), `document` (parsing, variables,
//! arguments, field collection), `analyze` (validation, limits, cost), `cursor` (cursors
//! and pages), `exec` (the generic executor), `objects` (root, repository, pull request),
//! `connection` (lists and their pages), `items` (commits, reviews, files, comments, check
//! runs, statuses, actors), `bucket` (an account's points), `gate` (rate limiting and
//! bookkeeping).

pub mod analyze;
pub mod bucket;
pub mod connection;
pub mod cursor;
pub mod document;
pub mod exec;
pub mod gate;
pub mod items;
pub mod objects;
pub mod schema;

use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming as Body;
use hyper::{Method, Request, Response};
use serde_json::{Map, Value};

use super::api::Route;
use super::limits::{Incoming, Reply};
use super::lock;
use super::secondary::Crowd;
use super::server::{Dropped, Shared};
use analyze::Plan;
use document::{message_error, Query};
use exec::World;
use gate::Gate;

/// Answers one request to the GraphQL endpoint; `crowd` is what it found in flight.
pub async fn handle(
    shared: &Shared,
    req: Request<Body>,
    token: Option<String>,
    path: &str,
    at: Instant,
    crowd: Crowd,
) -> Result<Response<Full<Bytes>>, Dropped> {
    let method = req.method().clone();
    let body = if method == Method::POST {
        req.into_body()
            .collect()
            .await
            .map_err(|_| Dropped)?
            .to_bytes()
    } else {
        Bytes::new()
    };
    let reply = answer(shared, &method, &body, token.as_deref(), path, at, crowd);
    super::server::deliver(shared, reply).await
}

/// Decides, runs and records a GraphQL request (synchronous: nothing here is held across
/// an await).
fn answer(
    shared: &Shared,
    method: &Method,
    body: &[u8],
    token: Option<&str>,
    path: &str,
    at: Instant,
    crowd: Crowd,
) -> Reply {
    let cfg = &shared.config;
    let plan = if cfg.graphql {
        prepare(method, body)
    } else {
        Err(Vec::new())
    };
    let method = method.as_str();
    let incoming = |points| Incoming {
        token,
        method,
        path,
        route: &Route::Graphql,
        if_none_match: None,
        answer: None,
        at,
        points,
        crowd,
    };
    let ticket = match lock(&shared.state).admit_graphql(cfg, &incoming(0), &plan) {
        Gate::Reply(reply) => return reply,
        Gate::Run(ticket) => ticket,
    };
    let Ok(plan) = &plan else {
        unreachable!("only a planned query runs")
    };
    let done = {
        let repos = shared.repos();
        let touches = shared.touches.read().unwrap_or_else(|e| e.into_inner());
        let world = World {
            repos: &repos,
            touches: &touches,
            token,
            config: cfg,
            viewer: &ticket.login,
            viewer_id: ticket.user_id,
        };
        exec::run(plan, &world, &ticket.rate)
    };
    let points = ticket.points;
    lock(&shared.state).finish_graphql(cfg, &incoming(points), ticket, done)
}

/// Reads the request body and analyses its query: the plan, or the errors to answer with.
fn prepare(method: &Method, body: &[u8]) -> Result<Plan, Vec<Value>> {
    let missing = || {
        vec![message_error(
            "A query attribute must be specified and must be a string.",
        )]
    };
    if method != Method::POST {
        return Err(missing());
    }
    let request: Value =
        serde_json::from_slice(body).map_err(|_| vec![message_error("Problems parsing JSON")])?;
    let text = request
        .get("query")
        .and_then(Value::as_str)
        .ok_or_else(missing)?;
    let variables = match request.get("variables") {
        Some(Value::Object(m)) => m.clone(),
        // Some clients send the variables JSON-encoded.
        Some(Value::String(s)) if !s.trim().is_empty() => match serde_json::from_str(s) {
            Ok(Value::Object(m)) => m,
            _ => return Err(vec![message_error("Variables are invalid JSON.")]),
        },
        _ => Map::new(),
    };
    let operation_name = request.get("operationName").and_then(Value::as_str);
    let query = Query::parse(text, &variables, operation_name)?;
    analyze::analyze(query)
}
