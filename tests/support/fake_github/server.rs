//! HTTP plumbing: the accept loop, one hyper HTTP/1.1 connection per socket, the request
//! handler, and the `/_fake/...` control routes. Requests to the GraphQL endpoint go, after
//! overrides, to [`super::graphql::handle`]; those to `/app/...` to
//! [`super::app_routes`]; all others to the REST routes. A REST or GraphQL request with a
//! valid token holds a place in [`super::secondary::InFlightTable`] until it is answered.
//!
//! A dropped connection is produced by returning an error from the service: hyper then
//! closes the socket without writing anything.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming as Body;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;

use super::account;
use super::api::{self, AppRoute, LinkCtx, RepoRef, Route};
use super::apps::{self, Apps};
use super::data::{Repo, Touch};
use super::limits::{self, Incoming, Reply, State};
use super::listing;
use super::secondary::{Crowd, InFlightTable};
use super::{lock, FakeConfig, Faults, Hostile, PrTruth, RepoSpec, RequestRecord, Stats, Truth};

/// The error a service returns to make hyper close the connection without a response.
#[derive(Debug)]
pub struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped on purpose")
    }
}

impl std::error::Error for Dropped {}

/// State shared by the server thread and the [`super::FakeGithub`] handle.
pub struct Shared {
    /// The configuration.
    pub(super) config: FakeConfig,
    /// The repositories served: `config.repos` in order, then those added while running
    /// ([`Shared::add_repo`]); a repository's `index` is its position. Lock order: `repos`
    /// before `touches`.
    pub(super) repos: RwLock<Vec<Repo>>,
    port: u16,
    /// Accounts, faults, stats and the request log.
    pub(super) state: Mutex<State>,
    /// Per repository (by index): PR number -> touch override.
    pub(super) touches: RwLock<Vec<HashMap<u64, Touch>>>,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    /// Per entry of `config.overrides`: how many requests it has answered.
    override_uses: Mutex<Vec<u32>>,
    /// REST and GraphQL requests in flight, per account and per token.
    in_flight_by_account: Mutex<InFlightTable>,
}

struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Shared {
    /// Builds the shared state; panics on a malformed repository name.
    pub fn new(config: FakeConfig, port: u16) -> Shared {
        let mut prefixes = HashSet::new();
        let repos: Vec<Repo> = config
            .repos
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, spec)| wrap(&config, i, spec, &mut prefixes))
            .collect();
        let state = State::new(
            config.faults.clone(),
            Instant::now(),
            Apps::new(&config.apps),
        );
        Shared {
            touches: RwLock::new(vec![HashMap::new(); repos.len()]),
            repos: RwLock::new(repos),
            port,
            state: Mutex::new(state),
            override_uses: Mutex::new(vec![0; config.overrides.len()]),
            config,
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
            in_flight_by_account: Mutex::new(InFlightTable::default()),
        }
    }

    /// The account login of `token` if it is valid now (None for an invalid token, an
    /// expired installation token, a `ghs_` token never minted).
    fn login_of(&self, token: &str) -> Option<String> {
        if self.config.invalid_tokens.contains(token) {
            return None;
        }
        let state = lock(&self.state);
        if !state.apps.accepts(token, limits::epoch_ms()) {
            return None;
        }
        let minted = state.apps.minted(token);
        Some(account::login_of(&self.config, token, minted))
    }

    /// The hostile answer for `path`, if an override still applies (and counts it).
    fn take_override(&self, path: &str) -> Option<Hostile> {
        let mut uses = lock(&self.override_uses);
        for (i, o) in self.config.overrides.iter().enumerate() {
            let matches = if o.path == "*" {
                !path.ends_with("/rate_limit")
            } else {
                o.path == path
            };
            if matches && o.times.is_none_or(|t| uses[i] < t) {
                uses[i] += 1;
                return Some(o.answer.clone());
            }
        }
        None
    }

    /// The repositories served (read-locked).
    pub(super) fn repos(&self) -> RwLockReadGuard<'_, Vec<Repo>> {
        self.repos.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a repository after those served; `Err` names the clash when one with the same
    /// name (case-insensitive) or id is already served. Panics on a malformed name.
    pub fn add_repo(&self, spec: RepoSpec) -> Result<(), String> {
        let mut repos = self.repos.write().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = repos.iter().find(|r| {
            r.spec.id == spec.id || r.spec.full_name.eq_ignore_ascii_case(&spec.full_name)
        }) {
            return Err(format!(
                "{} (id {}) clashes with {} (id {})",
                spec.full_name, spec.id, r.spec.full_name, r.spec.id
            ));
        }
        let mut prefixes: HashSet<u64> = repos.iter().map(|r| r.id_prefix).collect();
        let repo = wrap(&self.config, repos.len(), spec, &mut prefixes);
        let mut touches = self.touches.write().unwrap_or_else(|e| e.into_inner());
        touches.push(HashMap::new());
        repos.push(repo);
        Ok(())
    }

    /// Ends the tokens minted so far for `installation` (see [`Apps::revoke`]).
    pub fn revoke_installation_tokens(&self, installation: u64) -> usize {
        lock(&self.state).apps.revoke(installation)
    }

    /// Hides a repository from `token`; false if the repository is unknown.
    pub fn hide_repo(&self, repo: &str, token: &str) -> bool {
        let mut repos = self.repos.write().unwrap_or_else(|e| e.into_inner());
        let Some(r) = repos
            .iter_mut()
            .find(|r| r.spec.full_name.eq_ignore_ascii_case(repo))
        else {
            return false;
        };
        if !r.spec.is_hidden_from(Some(token)) {
            r.spec.hidden_from.push(token.to_string());
        }
        true
    }

    /// The 301 for a request naming a renamed repository, if it does (and if the new one is
    /// not hidden from the token: then the old name answers 404, as GitHub would).
    fn renamed(
        &self,
        route: &Route,
        prefix: &str,
        host: &str,
        query: &str,
        token: Option<&str>,
    ) -> Option<Hostile> {
        let Route::Repo {
            by: RepoRef::Name(name),
            sub,
        } = route
        else {
            return None;
        };
        let (_, new) = self
            .config
            .renamed_repos
            .iter()
            .find(|(old, _)| old.eq_ignore_ascii_case(name))?;
        let id = {
            let repos = self.repos();
            let target = by_name(&repos, new);
            if target.is_some_and(|r| r.spec.is_hidden_from(token)) {
                return None;
            }
            target.map_or(0, |r| r.spec.id)
        };
        let mut location = format!("http://{host}{prefix}/repositories/{id}");
        for s in sub {
            location.push('/');
            location.push_str(s);
        }
        if !query.is_empty() {
            location.push('?');
            location.push_str(query);
        }
        let body = format!(
            r#"{{"message":"Moved Permanently","url":"{location}","documentation_url":"https://docs.github.com/rest/guides/best-practices-for-using-the-rest-api#follow-redirects"}}"#
        );
        Some(Hostile::respond(
            301,
            &[
                ("content-type", "application/json; charset=utf-8"),
                ("location", &location),
            ],
            body.as_bytes(),
        ))
    }

    fn enter(&self) -> InFlight<'_> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(&self.in_flight)
    }

    /// Snapshot of the counters.
    pub fn stats(&self) -> Stats {
        let mut s = lock(&self.state).stats.clone();
        s.max_concurrent = self.max_in_flight.load(Ordering::SeqCst);
        s
    }

    /// Replaces the faults.
    pub fn set_faults(&self, faults: Faults) {
        lock(&self.state).set_faults(faults);
    }

    /// The request log.
    pub fn requests_log(&self) -> Vec<RequestRecord> {
        lock(&self.state).log.clone()
    }

    /// Touches a PR; false if it does not exist.
    pub fn touch_pr(&self, repo: &str, number: u64) -> bool {
        let repos = self.repos();
        let Some(r) = by_name(&repos, repo) else {
            return false;
        };
        if !r.has_pr(number) {
            return false;
        }
        let mut touches = self.touches.write().unwrap_or_else(|e| e.into_inner());
        let prev = touches[r.index].get(&number).copied().unwrap_or_default();
        let before = r.updated(number, prev);
        let now = (limits::epoch_ms() / 1000) as i64;
        touches[r.index].insert(
            number,
            Touch {
                count: prev.count + 1,
                at: now.max(before + 1),
            },
        );
        true
    }

    /// Ground truth of a repository, or None if unknown.
    pub fn truth(&self, repo: &str) -> Option<Truth> {
        let repos = self.repos();
        let r = by_name(&repos, repo)?;
        let touches = self.touches.read().unwrap_or_else(|e| e.into_inner());
        let mine = &touches[r.index];
        let mut t = Truth {
            prs: r.spec.pr_count as u64,
            commits: 0,
            reviews: 0,
            files: 0,
            check_runs: 0,
            review_comments: 0,
            issue_comments: 0,
            per_pr: Vec::with_capacity(r.spec.pr_count as usize),
        };
        for n in 1..=r.spec.pr_count as u64 {
            let pr = r.pr(n, mine.get(&n).copied().unwrap_or_default());
            let (additions, deletions) = r.line_totals(&pr);
            let p = PrTruth {
                number: n,
                title: pr.title.clone(),
                state: if pr.open { "open" } else { "closed" }.to_string(),
                merged: pr.merged_at.is_some(),
                created_at: super::data::ts(pr.created),
                updated_at: super::data::ts(pr.updated),
                head_sha: pr.head_sha.clone(),
                commits: pr.commits_served(),
                commits_total: pr.commits_total,
                reviews: pr.reviews(),
                files: pr.files_served(),
                check_runs: pr.check_runs,
                review_comments: pr.review_comments,
                issue_comments: pr.issue_comments,
                additions,
                deletions,
                changed_files: pr.files_total(),
                author: pr.author.as_ref().map(|u| u.login.clone()),
            };
            t.commits += p.commits;
            t.reviews += p.reviews;
            t.files += p.files;
            t.check_runs += p.check_runs;
            t.review_comments += p.review_comments;
            t.issue_comments += p.issue_comments;
            t.per_pr.push(p);
        }
        Some(t)
    }

    /// The answer for a repository route or an owner listing, as `token` sees it; None for
    /// other routes.
    fn rest_answer(
        &self,
        route: &Route,
        prefix: &str,
        host: &str,
        query: &str,
        token: Option<&str>,
    ) -> Option<api::Answer> {
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let base = format!("http://{host}");
        let ctx = LinkCtx {
            base: &base,
            prefix,
            query: &pairs,
        };
        let (by, sub) = match route {
            Route::Repo { by, sub } => (by, sub),
            Route::OwnerRepos { listing, by } => {
                let repos = self.repos();
                let users = &self.config.users;
                return Some(listing::answer(&repos, users, *listing, by, token, &ctx));
            }
            _ => return None,
        };
        let name_error = |name: &str| {
            self.config
                .repo_errors
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, &status)| api::Answer::repo_error(status))
        };
        let repos = self.repos();
        let repo = match by {
            RepoRef::Name(name) => {
                if let Some(a) = name_error(name) {
                    return Some(a);
                }
                by_name(&repos, name)
            }
            RepoRef::Id(id) => repos.iter().find(|r| r.spec.id == *id),
        };
        // A repository hidden from the token is answered as one that does not exist.
        let Some(repo) = repo.filter(|r| !r.spec.is_hidden_from(token)) else {
            return Some(api::Answer::not_found());
        };
        if let Some(a) = name_error(&repo.spec.full_name) {
            return Some(a);
        }
        let touches = self.touches.read().unwrap_or_else(|e| e.into_inner());
        Some(api::repo_answer(repo, &touches[repo.index], sub, &ctx))
    }
}

/// The repository named `full_name` (case-insensitive) among `repos`.
fn by_name<'r>(repos: &'r [Repo], full_name: &str) -> Option<&'r Repo> {
    repos
        .iter()
        .find(|r| r.spec.full_name.eq_ignore_ascii_case(full_name))
}

/// Wraps `spec` as repository `index`, with an id prefix not in `prefixes` (then added to
/// it) and its owner's kind from `config.users`.
fn wrap(config: &FakeConfig, index: usize, spec: RepoSpec, prefixes: &mut HashSet<u64>) -> Repo {
    let mut prefix = Repo::preferred_id_prefix(spec.id);
    while !prefixes.insert(prefix) {
        prefix = prefix % 65_535 + 1;
    }
    let owner = spec.full_name.split('/').next().unwrap_or_default();
    let owner_is_user = config.users.iter().any(|u| u.eq_ignore_ascii_case(owner));
    Repo::new(index, spec, prefix, owner_is_user)
}

/// Runs the accept loop until `stop` fires (or its sender is dropped).
pub async fn serve(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
    ready: std::sync::mpsc::Sender<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    let _ = ready.send(());
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        let svc = service_fn(move |req| handle(shared.clone(), req));
                        // An Err here is a drop on purpose or a client going away.
                        let _ = http1::Builder::new()
                            .keep_alive(true)
                            .serve_connection(TokioIo::new(stream), svc)
                            .await;
                    });
                }
                // E.g. too many open files: back off a little rather than spin.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            },
        }
    }
}

/// A response with these headers and body.
pub(super) fn respond(
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
) -> Response<Full<Bytes>> {
    let mut b = Response::builder().status(status);
    for (k, v) in headers {
        b = b.header(k, v);
    }
    b.body(Full::new(Bytes::from(body))).expect("response")
}

fn json_response(status: u16, v: &serde_json::Value) -> Response<Full<Bytes>> {
    respond(
        status,
        vec![("content-type", "application/json; charset=utf-8".into())],
        serde_json::to_vec_pretty(v).expect("json"),
    )
}

/// Parses `Authorization: Bearer X` or `token X` (scheme case-insensitive).
fn bearer(req: &Request<Body>) -> Option<String> {
    let v = req
        .headers()
        .get(hyper::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = v.trim().split_once(' ')?;
    let token = token.trim();
    (["bearer", "token"].contains(&scheme.to_ascii_lowercase().as_str()) && !token.is_empty())
        .then(|| token.to_string())
}

async fn handle(shared: Arc<Shared>, req: Request<Body>) -> Result<Response<Full<Bytes>>, Dropped> {
    let at = Instant::now();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (path_and_query.clone(), String::new()),
    };
    if let Some(rest) = path.strip_prefix("/_fake/") {
        return Ok(control(&shared, req, rest.to_string()).await);
    }
    let _in_flight = shared.enter();
    let host = req
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| format!("127.0.0.1:{}", shared.port));
    let raw_token = bearer(&req);
    let if_none_match = req
        .headers()
        .get(hyper::header::IF_NONE_MATCH)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    let (prefix, mut route) = api::parse_path(&path);
    // The log and the stats never hold a JWT: requests to app paths, and any bearer shaped
    // like a JWT, go by the JWT's fingerprint; only the app endpoints see the JWT itself.
    let token = match raw_token.as_deref() {
        Some(t) if matches!(route, Route::App(_)) || apps::looks_like_jwt(t) => {
            Some(apps::jwt_label(t))
        }
        _ => raw_token.clone(),
    };
    let graphql = route == Route::Graphql;
    let allowed = match route {
        Route::Graphql => true,
        Route::App(AppRoute::AccessToken(_)) => req.method() == Method::POST,
        _ => req.method() == Method::GET || req.method() == Method::HEAD,
    };
    if !allowed {
        route = Route::Unknown;
    }
    let method = req.method().to_string();
    let logged_token = token.as_deref();
    if let Some(moved) = shared.renamed(&route, prefix, &host, &query, token.as_deref()) {
        return Ok(hostile_answer(
            &shared,
            logged_token,
            &method,
            &path_and_query,
            &route,
            at,
            moved,
        )
        .await);
    }
    if let Some(hostile) = shared.take_override(&path) {
        return Ok(hostile_answer(
            &shared,
            logged_token,
            &method,
            &path_and_query,
            &route,
            at,
            hostile,
        )
        .await);
    }
    if let Route::App(app_route) = route {
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let base = format!("http://{host}");
        let ctx = LinkCtx {
            base: &base,
            prefix,
            query: &pairs,
        };
        let incoming = Incoming {
            token: logged_token,
            method: &method,
            path: &path_and_query,
            route: &route,
            if_none_match: None,
            answer: None,
            at,
            points: 0,
            crowd: Crowd::default(),
        };
        let reply = lock(&shared.state).answer_app(
            &shared.config,
            incoming,
            app_route,
            raw_token.as_deref(),
            &ctx,
        );
        return deliver(&shared, reply).await;
    }
    // Held until the answer is handed over: the request is in flight until then.
    let (_entered, crowd) = match token.as_deref() {
        Some(t) => match shared.login_of(t) {
            Some(login) => {
                let (entered, crowd) =
                    InFlightTable::enter(&shared.in_flight_by_account, &login, t);
                (Some(entered), crowd)
            }
            None => (None, Crowd::default()),
        },
        None => (None, Crowd::default()),
    };
    if graphql {
        return super::graphql::handle(&shared, req, token, &path_and_query, at, crowd).await;
    }
    let answer = shared.rest_answer(&route, prefix, &host, &query, token.as_deref());
    let reply = lock(&shared.state).decide(
        &shared.config,
        Incoming {
            token: token.as_deref(),
            method: &method,
            path: &path_and_query,
            route: &route,
            if_none_match: if_none_match.as_deref(),
            answer,
            at,
            points: 0,
            crowd,
        },
    );
    deliver(&shared, reply).await
}

/// Gives a decided answer after the configured latency (or drops the connection).
pub(super) async fn deliver(
    shared: &Shared,
    reply: Reply,
) -> Result<Response<Full<Bytes>>, Dropped> {
    if !shared.config.latency.is_zero() {
        tokio::time::sleep(shared.config.latency).await;
    }
    match reply {
        Reply::Drop => Err(Dropped),
        Reply::Respond {
            status,
            headers,
            body,
        } => Ok(respond(status, headers, body)),
    }
}

/// Records and gives a [`Hostile`] answer (never returns for [`Hostile::Hang`]).
async fn hostile_answer(
    shared: &Shared,
    token: Option<&str>,
    method: &str,
    path: &str,
    route: &Route,
    at: Instant,
    hostile: Hostile,
) -> Response<Full<Bytes>> {
    let status = match &hostile {
        Hostile::Respond { status, .. } => *status,
        Hostile::Truncated { .. } | Hostile::Huge { .. } => 200,
        Hostile::Hang => 0,
    };
    lock(&shared.state).record_hostile(
        &shared.config,
        Incoming {
            token,
            method,
            path,
            route,
            if_none_match: None,
            answer: None,
            at,
            points: 0,
            crowd: Crowd::default(),
        },
        status,
    );
    match hostile {
        Hostile::Respond {
            status,
            headers,
            body,
        } => {
            let mut b = Response::builder().status(status);
            for (k, v) in headers {
                b = b.header(k, v);
            }
            b.body(Full::new(Bytes::from(body)))
                .expect("hostile response")
        }
        Hostile::Hang => std::future::pending().await,
        Hostile::Truncated { declared, body } => Response::builder()
            .status(200)
            .header("content-type", "application/json; charset=utf-8")
            .header("content-length", declared.to_string())
            .body(Full::new(Bytes::from(body)))
            .expect("truncated response"),
        Hostile::Huge { bytes } => {
            // `[0,0,0,...,0]`: valid JSON of the wrong shape, about `bytes` long.
            let mut body = Vec::with_capacity(bytes + 2);
            body.push(b'[');
            while body.len() + 2 < bytes {
                body.extend_from_slice(b"0,");
            }
            body.extend_from_slice(b"0]");
            respond(200, vec![("content-type", "application/json".into())], body)
        }
    }
}

/// `/_fake/...`: GET stats, GET truth/{o}/{r}, POST touch/{o}/{r}/{n}, POST faults (JSON).
async fn control(shared: &Shared, req: Request<Body>, rest: String) -> Response<Full<Bytes>> {
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let not_found = || json_response(404, &serde_json::json!({"message": "Not Found"}));
    match (req.method().clone(), segs.as_slice()) {
        (Method::GET, ["stats"]) => {
            json_response(200, &serde_json::to_value(shared.stats()).expect("stats"))
        }
        (Method::GET, ["truth", o, r]) => match shared.truth(&format!("{o}/{r}")) {
            Some(t) => json_response(200, &serde_json::to_value(t).expect("truth")),
            None => not_found(),
        },
        (Method::POST, ["touch", o, r, n]) => match n.parse() {
            Ok(n) if shared.touch_pr(&format!("{o}/{r}"), n) => respond(204, vec![], vec![]),
            _ => not_found(),
        },
        (Method::POST, ["faults"]) => {
            let body = match req.into_body().collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => return json_response(400, &serde_json::json!({"message": "bad body"})),
            };
            match serde_json::from_slice::<Faults>(&body) {
                Ok(f) => {
                    shared.set_faults(f);
                    respond(204, vec![], vec![])
                }
                Err(e) => json_response(400, &serde_json::json!({"message": e.to_string()})),
            }
        }
        _ => not_found(),
    }
}
