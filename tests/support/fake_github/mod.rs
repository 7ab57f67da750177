//! A fake GitHub REST and GraphQL API server for integration tests, demos and benchmarks.
//!
//! It serves the endpoints seedq uses (pull list, pull detail, commits, reviews, files,
//! review comments, issue comments, check runs, `/rate_limit`, `/user`, and the listings
//! `/orgs/{org}/repos` and `/users/{username}/repos`) over real HTTP on
//! loopback, with GitHub's behaviour around them: per-account primary rate limits in short
//! windows, 403/429 exhaustion, secondary-limit penalties, weak ETags with 304s that cost no
//! quota, `link` pagination whose pull-list URLs point at `/repositories/{id}/pulls`, the 250
//! commits and 3,000 files caps, 401 for bad tokens, and injected faults (5xx, dropped
//! connections, secondary limits).
//!
//! It also serves GitHub's GraphQL API (`POST /graphql`, and `POST /api/graphql` as GitHub
//! Enterprise Server has it) over the same data: `rateLimit`, `viewer`, `node`, and
//! `repository` with `pullRequests` (states, orderBy), `pullRequest(number:)` and
//! `object(oid:)`; a PR's fields, `commits`, `reviews`, `files`, `comments` and
//! `statusCheckRollup { contexts }` (check runs, and a commit status for about one head
//! commit in five). Aliases, variables, fragments, `__typename`, cursors and partial errors
//! behave as on GitHub, and so do its limits: `first`/`last` within 1..=100, 500,000
//! nodes, GitHub's cost formula charged to a per-account points bucket apart from REST's
//! ([`FakeConfig::graphql_limit`]), RATE_LIMITED as a 200 with an errors entry, secondary
//! penalties and faults shared with REST, and 502 timeouts for heavy answers
//! ([`FakeConfig::graphql_timeout_weight`]), still charged. [`FakeConfig::graphql`] false
//! makes a server without GraphQL. See [`graphql`].
//!
//! Data is generated on demand from each repository's seed and the PR number, so a
//! 20,000-PR repository costs no memory; only PRs changed with [`FakeGithub::touch_pr`] are
//! stored. [`FakeGithub::truth`] tells what the server serves, for comparison with a database.
//!
//! Special PRs (when the repository has that many): see [`data`] module docs, in short
//! #1 SQL-injection title, #2 unicode/emoji title, #3 300 commits (250 served), #4 title with
//! quotes and newlines, #5 150 files, #6 120 commits, #7 deleted author (`"user": null`).
//! [`RepoSpec::heavy`] makes a share of the other PRs large (hundreds of files, up to 250
//! commits, dozens of reviews and comments), for GraphQL answers heavy enough to time out.
//!
//! Repositories can be forks or archived ([`RepoSpec::fork`], [`RepoSpec::archived`]) and
//! hidden from some tokens (the `hidden_from` field of [`RepoSpec`]): to those tokens
//! every REST path of the repository answers 404 and GraphQL's `repository` NOT_FOUND, as
//! GitHub answers a repository a token cannot see, and listings omit it. The listings (see
//! [`listing`]) follow GitHub's documented parameters (`type`, `sort`, `direction`,
//! `per_page`, `page`) and their `link`s point at `/organizations/{id}/repos` and
//! `/user/{id}/repos`, as GitHub's do. [`FakeGithub::add_repo`] adds a repository while the
//! server runs; [`RepoSpec::many`] makes a thousand for scale benchmarks.
//!
//! Secondary limits beyond the injected ones, off by default: requests in flight per
//! account ([`FakeConfig::max_in_flight_per_token`]) and points per minute for REST and
//! GraphQL ([`FakeConfig::max_points_per_minute`],
//! [`FakeConfig::max_graphql_points_per_minute`]); see [`secondary`].
//!
//! GitHub Apps ([`FakeConfig::apps`], see [`apps`] and [`app_routes`]): `GET
//! /app/installations` and `POST /app/installations/{id}/access_tokens` with an RS256 JWT
//! checked as GitHub checks it, minting `ghs_` installation tokens that work on REST and
//! GraphQL until they expire, every token of an installation sharing one bucket (account
//! `installation:{id}`).
//!
//! Hostile and broken answers for robustness tests: [`FakeConfig::overrides`] answers a
//! path (all of its requests, or the first N) with any status, headers and body, a hang,
//! a truncated body or a huge one; [`FakeConfig::renamed_repos`] answers an old name with
//! GitHub's 301. [`FakeGithub::spawn_at`] listens on another loopback address (a second
//! "host"), and [`FakeGithub::hits`] counts the requests for a path.
//!
//! Layout: `data` (deterministic generation), `json` (GitHub's JSON shapes), `api` (routes,
//! pagination, `link` headers, caps), `listing` (an owner's repositories), `account`
//! (accounts, their REST windows, GraphQL buckets and penalties), `limits` (the order of
//! checks for a request, faults, bookkeeping), `secondary` (concurrency and
//! points-per-minute limits), `apps` (GitHub Apps, JWTs, minted tokens), `app_routes` (the
//! `/app/...` endpoints), `stats` (counters, request log), `graphql`
//! (the GraphQL endpoint: parsing, analysis, cost, execution), `server` (hyper plumbing,
//! `/_fake/...` control routes).
//!
//! This module depends on nothing from the seedq crate. Tests include it with
//! `mod support;`; the example binary with `#[path = "../tests/support/fake_github/mod.rs"]`.

pub mod account;
pub mod api;
pub mod app_routes;
pub mod apps;
pub mod data;
pub mod graphql;
pub mod json;
pub mod limits;
pub mod listing;
pub mod secondary;
mod server;
pub mod stats;

#[allow(unused_imports)] // FakeInstallation: the App tests only
pub use apps::{FakeApp, FakeInstallation};
pub use stats::{Outcome, RequestRecord, Stats};

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Configuration of a [`FakeGithub`] server. Build it with struct-update syntax from
/// `FakeConfig::default()`.
#[derive(Clone, Debug)]
pub struct FakeConfig {
    /// Repositories served (at start; [`FakeGithub::add_repo`] adds more while running).
    pub repos: Vec<RepoSpec>,
    /// Logins (case-insensitive) that are users rather than organisations: their
    /// repositories' `owner.type` is `"User"`, `/orgs/{login}/repos` answers 404 for them,
    /// and `/users/{login}/repos` answers (an empty list) even when they own no repository.
    /// Every other owner of a configured repository is an organisation. Default: none.
    pub users: HashSet<String>,
    /// Primary quota per account per window (GitHub: 5,000 for a PAT).
    pub limit: u32,
    /// Length of a rate-limit window (GitHub: one hour; tests use 1-5 s).
    pub window: Duration,
    /// Delay added to every API response (not to `/_fake` routes).
    pub latency: Duration,
    /// Tokens answered with 401 "Bad credentials".
    pub invalid_tokens: HashSet<String>,
    /// Token -> account login. Tokens mapped to the same login share one quota. A token not
    /// listed has its own account, `"user-"` + the first 8 hex digits of sha256(token).
    pub shared_accounts: HashMap<String, String>,
    /// Per-account quota overrides (account login -> limit), e.g. 12,500 for an app.
    pub account_limits: HashMap<String, u32>,
    /// Status for primary-limit exhaustion: 403 (default, like GitHub) or 429.
    pub exhaustion_status: u16,
    /// When true, exhaustion answers alternate between 403 and 429 (overrides
    /// `exhaustion_status`).
    pub alternate_exhaustion_status: bool,
    /// Repositories (`owner/name`, case-insensitive) that answer every request with this
    /// status: 404, 409 (empty repository), 410, 451, or 403 (permission error with quota
    /// left). The repository need not be in `repos`. Such answers consume quota.
    pub repo_errors: HashMap<String, u16>,
    /// When true, an ETag also depends on the token (GitHub ties ETags to the token that got
    /// them): a 304 is then only given to the same token. Default false.
    pub etag_per_token: bool,
    /// Keep a [`RequestRecord`] per request for [`FakeGithub::requests_log`] (default true;
    /// the example binary turns it off to keep memory flat in long benchmarks).
    pub record_requests: bool,
    /// Injected faults; can be changed at runtime with [`FakeGithub::set_faults`].
    pub faults: Faults,
    /// Hostile or broken answers given instead of the real ones, checked in order before
    /// authentication and rate limiting (they use no quota). Default: none.
    pub overrides: Vec<Override>,
    /// Renamed repositories, old `owner/name` -> new (case-insensitive): every request
    /// naming the old one by name is answered `301 Moved Permanently` to the same path
    /// under `/repositories/{id of the new one}`, as GitHub does; GraphQL's
    /// `repository(owner:, name:)` resolves the old name to the new repository. Default: none.
    pub renamed_repos: HashMap<String, String>,
    /// Serve GitHub's GraphQL API at `POST /graphql` (and `/api/graphql`). When false (a
    /// server without GraphQL) those paths answer 404 and cost nothing. Default true.
    pub graphql: bool,
    /// GraphQL points per account per window (GitHub: 5,000 for a PAT), in a bucket
    /// separate from the REST quota, with its own window of length `window`.
    pub graphql_limit: u32,
    /// Per-account GraphQL point overrides (account login -> points).
    pub account_graphql_limits: HashMap<String, u32>,
    /// A GraphQL answer heavier than this times out: the query is charged, then answered
    /// 502 (GitHub ends queries that run over 10 s). The weight is the number of objects
    /// returned (see [`FakeConfig::graphql_file_weight`]). Default None: never.
    pub graphql_timeout_weight: Option<u64>,
    /// Weight of one `PullRequestChangedFile` in a GraphQL answer (other objects weigh 1).
    /// Default 10.
    pub graphql_file_weight: u64,
    /// Secondary limit by concurrency (GitHub: 100, shared by REST and GraphQL): a request
    /// arriving while its token's account already has this many requests in flight (read,
    /// not yet answered) is refused as a secondary limit (see [`secondary`]). Default None.
    pub max_in_flight_per_token: Option<u32>,
    /// Secondary limit of REST points per account per minute (GitHub: 900; a GET is 1
    /// point), counted in fixed one-minute windows (see [`secondary`]). Default None.
    pub max_points_per_minute: Option<u32>,
    /// Secondary limit of GraphQL points per account per minute (GitHub: 2,000; a query
    /// without mutation is 1 point, as GitHub documents, not its primary cost), counted
    /// apart from REST's (see [`secondary`]). Default None.
    pub max_graphql_points_per_minute: Option<u32>,
    /// GitHub Apps: `GET /app/installations` and `POST /app/installations/{id}/access_tokens`
    /// with a JWT, and the installation tokens they mint (see [`apps`]). Default: none.
    pub apps: Vec<FakeApp>,
}

/// A hostile or broken answer (see [`FakeConfig::overrides`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hostile {
    /// Answer with exactly this status, these headers and this body: HTML error pages,
    /// bodies that are not JSON, garbage `link` or rate-limit headers, redirects.
    Respond {
        /// HTTP status.
        status: u16,
        /// Headers, sent as given (no `content-type` unless listed).
        headers: Vec<(String, String)>,
        /// Body.
        body: Vec<u8>,
    },
    /// Read the request and never answer (the connection stays open).
    Hang,
    /// Announce `content-length: declared`, send only `body`, then close the connection.
    Truncated {
        /// The announced length (larger than `body`).
        declared: usize,
        /// What is actually sent.
        body: Vec<u8>,
    },
    /// 200 with a JSON array body of about `bytes` bytes.
    Huge {
        /// Body size.
        bytes: usize,
    },
}

/// Which requests get a [`Hostile`] answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Override {
    /// The request path without its query (`/repos/acme/widgets/pulls/2/files`), or `"*"`
    /// for every API path but `/rate_limit`.
    pub path: String,
    /// How many matching requests get the answer before the real one resumes; `None`: all.
    pub times: Option<u32>,
    /// The answer.
    pub answer: Hostile,
}

impl Override {
    /// Every request for `path` gets `answer`.
    pub fn always(path: &str, answer: Hostile) -> Override {
        Override {
            path: path.to_string(),
            times: None,
            answer,
        }
    }

    /// The first `times` requests for `path` get `answer`, later ones the real answer.
    pub fn first(times: u32, path: &str, answer: Hostile) -> Override {
        Override {
            path: path.to_string(),
            times: Some(times),
            answer,
        }
    }
}

impl Hostile {
    /// A `Respond` answer with `(name, value)` headers given as string slices.
    pub fn respond(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Hostile {
        Hostile::Respond {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.to_vec(),
        }
    }
}

impl Default for FakeConfig {
    fn default() -> Self {
        FakeConfig {
            repos: Vec::new(),
            users: HashSet::new(),
            limit: 5000,
            window: Duration::from_secs(3600),
            latency: Duration::ZERO,
            invalid_tokens: HashSet::new(),
            shared_accounts: HashMap::new(),
            account_limits: HashMap::new(),
            exhaustion_status: 403,
            alternate_exhaustion_status: false,
            repo_errors: HashMap::new(),
            etag_per_token: false,
            record_requests: true,
            faults: Faults::default(),
            overrides: Vec::new(),
            renamed_repos: HashMap::new(),
            graphql: true,
            graphql_limit: 5000,
            account_graphql_limits: HashMap::new(),
            graphql_timeout_weight: None,
            graphql_file_weight: 10,
            max_in_flight_per_token: None,
            max_points_per_minute: None,
            max_graphql_points_per_minute: None,
            apps: Vec::new(),
        }
    }
}

/// Injected faults. Probabilities are in `0.0..=1.0`, drawn per API request in the order
/// drop, server error, secondary limit. Faults never apply to `/rate_limit` or `/_fake/...`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Answer 502 or 503 with an HTML body (no rate-limit headers, no quota used).
    pub p_server_error: f64,
    /// Read the request, then close the connection without any response.
    pub p_drop: f64,
    /// Answer 403 "You have exceeded a secondary rate limit..." and penalise the token's
    /// account for `secondary_retry_after` seconds (60 when `None`).
    pub p_secondary: f64,
    /// `Some(n)`: send `retry-after: n` (and the remaining penalty on repeat offences);
    /// `None`: send no `retry-after` (the penalty then lasts 60 s). Default `Some(60)`.
    pub secondary_retry_after: Option<u64>,
    /// Seed of the fault RNG (setting new faults reseeds it).
    pub seed: u64,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            p_server_error: 0.0,
            p_drop: 0.0,
            p_secondary: 0.0,
            secondary_retry_after: Some(60),
            seed: 0,
        }
    }
}

/// A repository served by the fake.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RepoSpec {
    /// `owner/name`, e.g. `"acme/widgets"` (matched case-insensitively, like GitHub).
    pub full_name: String,
    /// Numeric repository id, used in `/repositories/{id}/...` URLs.
    pub id: u64,
    /// Number of pull requests: PRs are numbered `1..=pr_count`.
    pub pr_count: u32,
    /// Seed of the generated data.
    pub seed: u64,
    /// Percentage (0..=100) of PRs past #7 that are heavy: 100-1,200 files, 20-250 commits,
    /// dozens of reviews, check runs and comments (see [`data::heavy`]). 0 (the default)
    /// leaves every PR as it was before heavy PRs existed.
    pub heavy_percent: u32,
    /// A fork (`"fork": true`; listed with `type=forks`, not with `type=sources`).
    pub fork: bool,
    /// Archived (`"archived": true`; still listed and served, as on GitHub).
    pub archived: bool,
    /// Tokens that cannot see the repository: for them every `/repos/{o}/{r}/...` and
    /// `/repositories/{id}/...` path answers 404 Not Found (charged, like any 404),
    /// GraphQL's `repository(owner:, name:)` and PR `node(id:)` resolve to null with a
    /// NOT_FOUND error, and owner listings omit it. Other tokens see it as usual.
    pub hidden_from: Vec<String>,
}

impl RepoSpec {
    /// A repository whose id is derived from a hash of its lower-cased name, and seed = id.
    pub fn new(full_name: &str, pr_count: u32) -> Self {
        let digest = Sha256::digest(full_name.to_ascii_lowercase().as_bytes());
        let mut b = [0u8; 8];
        b.copy_from_slice(&digest[..8]);
        // Realistic magnitude (9 digits), never 0.
        let id = 100_000_000 + u64::from_be_bytes(b) % 800_000_000;
        RepoSpec {
            full_name: full_name.to_string(),
            id,
            pr_count,
            seed: id,
            heavy_percent: 0,
            fork: false,
            archived: false,
            hidden_from: Vec::new(),
        }
    }

    /// `count` repositories `owner/repo-0001`, `owner/repo-0002`, ... whose PR counts are
    /// drawn deterministically (from `seed` and the position) from a skewed distribution
    /// over `prs`: with `u` uniform in `[0, 1)` (the top 53 bits of
    /// `data::mix(data::mix(seed) ^ i)` for the i-th repository, from 1),
    /// `PRS = MIN + floor((MAX - MIN + 1) * u^7)`, capped at MAX. Most are small (the
    /// median is about MIN + (MAX - MIN) / 128), about 9 % exceed the midpoint, and the
    /// mean is about MIN + (MAX - MIN) / 8 (E[u^7] = 1/8). An empty range gives MIN.
    pub fn many(
        owner: &str,
        count: u32,
        prs: std::ops::RangeInclusive<u32>,
        seed: u64,
    ) -> Vec<RepoSpec> {
        let (min, max) = (*prs.start(), *prs.end());
        let span = f64::from(max.saturating_sub(min)) + 1.0;
        (1..=count)
            .map(|i| {
                let draw = data::mix(data::mix(seed) ^ u64::from(i));
                let u = (draw >> 11) as f64 / (1u64 << 53) as f64;
                let extra = (span * u.powi(7)).floor() as u32;
                let pr_count = min.saturating_add(extra).min(max.max(min));
                RepoSpec::new(&format!("{owner}/repo-{i:04}"), pr_count)
            })
            .collect()
    }

    /// The same repository with about `percent` % of its PRs past #7 heavy (which ones is
    /// a function of the seed and the PR number). Panics above 100.
    pub fn heavy(self, percent: u32) -> RepoSpec {
        assert!(percent <= 100, "heavy percent {percent} is above 100");
        RepoSpec {
            heavy_percent: percent,
            ..self
        }
    }

    /// The same repository as a fork.
    pub fn fork(self) -> RepoSpec {
        RepoSpec { fork: true, ..self }
    }

    /// The same repository, archived.
    pub fn archived(self) -> RepoSpec {
        RepoSpec {
            archived: true,
            ..self
        }
    }

    /// The same repository, hidden from `tokens` as well as from those it was already hidden
    /// from (see the `hidden_from` field).
    pub fn hidden_from(mut self, tokens: &[String]) -> RepoSpec {
        self.hidden_from.extend(tokens.iter().cloned());
        self
    }

    /// Whether the request's token is one the repository is hidden from.
    pub fn is_hidden_from(&self, token: Option<&str>) -> bool {
        token.is_some_and(|t| self.hidden_from.iter().any(|h| h == t))
    }
}

/// Ground truth for one PR: what the server serves for it right now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PrTruth {
    /// PR number.
    pub number: u64,
    /// Title as served (including the suffix added by `touch_pr`).
    pub title: String,
    /// `"open"` or `"closed"`.
    pub state: String,
    /// Whether the PR is merged (`merged_at` set).
    pub merged: bool,
    /// Creation time, `YYYY-MM-DDTHH:MM:SSZ`.
    pub created_at: String,
    /// Last update time, `YYYY-MM-DDTHH:MM:SSZ`.
    pub updated_at: String,
    /// `head.sha`.
    pub head_sha: String,
    /// Commits served by `/pulls/{n}/commits` (capped at 250).
    pub commits: u64,
    /// The PR's real commit count (the detail's `commits` field; may exceed 250).
    pub commits_total: u64,
    /// Reviews served.
    pub reviews: u64,
    /// Files served by `/pulls/{n}/files` (capped at 3,000).
    pub files: u64,
    /// Check runs on the head sha.
    pub check_runs: u64,
    /// Review comments (`/pulls/{n}/comments`).
    pub review_comments: u64,
    /// Issue comments (`/issues/{n}/comments`).
    pub issue_comments: u64,
    /// Detail's `additions` (sum over all files).
    pub additions: u64,
    /// Detail's `deletions` (sum over all files).
    pub deletions: u64,
    /// Detail's `changed_files` (all files, uncapped).
    pub changed_files: u64,
    /// Author login; `None` for a deleted account (`"user": null`).
    pub author: Option<String>,
}

/// Ground truth for a repository: totals as served (caps applied) and per-PR detail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Truth {
    /// Number of PRs.
    pub prs: u64,
    /// Commits served, summed over PRs (each capped at 250).
    pub commits: u64,
    /// Reviews.
    pub reviews: u64,
    /// Files served, summed over PRs (each capped at 3,000).
    pub files: u64,
    /// Check runs on head shas.
    pub check_runs: u64,
    /// Review comments.
    pub review_comments: u64,
    /// Issue comments.
    pub issue_comments: u64,
    /// Per PR, by ascending number.
    pub per_pr: Vec<PrTruth>,
}

/// A running fake GitHub server. Dropping it (or calling [`FakeGithub::shutdown`]) stops it.
pub struct FakeGithub {
    shared: Arc<server::Shared>,
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeGithub {
    /// Starts the server on 127.0.0.1 on a free port, on its own thread with its own tokio
    /// runtime (so plain `#[test]`s can use it). Returns once it is listening.
    pub fn spawn(config: FakeConfig) -> FakeGithub {
        Self::spawn_on(config, 0)
    }

    /// Same as [`FakeGithub::spawn`] on the given port (0 = any free port).
    /// Panics if the port cannot be bound.
    pub fn spawn_on(config: FakeConfig, port: u16) -> FakeGithub {
        Self::spawn_at(config, std::net::Ipv4Addr::LOCALHOST.into(), port)
    }

    /// Same as [`FakeGithub::spawn_on`] on another loopback address, e.g. 127.0.0.2 (a
    /// "different host" for tests of where tokens may go).
    pub fn spawn_at(config: FakeConfig, ip: std::net::IpAddr, port: u16) -> FakeGithub {
        let listener = std::net::TcpListener::bind((ip, port))
            .unwrap_or_else(|e| panic!("fake github: cannot bind {ip}:{port}: {e}"));
        listener.set_nonblocking(true).expect("set_nonblocking");
        let addr = listener.local_addr().expect("local_addr");
        let shared = Arc::new(server::Shared::new(config, addr.port()));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let for_thread = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("fake-github-{}", addr.port()))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("fake-github-worker")
                    .enable_all()
                    .build()
                    .expect("fake github runtime");
                rt.block_on(server::serve(listener, for_thread, stop_rx, ready_tx));
                // Cancels the connection tasks still running, closing their sockets.
                rt.shutdown_timeout(Duration::from_millis(200));
            })
            .expect("spawn fake github thread");
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("fake github did not start");
        FakeGithub {
            shared,
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// The API root, `http://127.0.0.1:PORT` (no `/api/v3`; that prefix is accepted too).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Installation access tokens minted so far for installation `id` (renewals included).
    pub fn tokens_minted(&self, installation: u64) -> u64 {
        self.stats()
            .tokens_minted_per_installation
            .get(&installation)
            .copied()
            .unwrap_or(0)
    }

    /// Replaces the injected faults (and reseeds the fault RNG with `faults.seed`).
    pub fn set_faults(&self, faults: Faults) {
        self.shared.set_faults(faults);
    }

    /// Ground truth for a repository (`owner/name`, case-insensitive). Panics if unknown.
    pub fn truth(&self, repo: &str) -> Truth {
        self.shared
            .truth(repo)
            .unwrap_or_else(|| panic!("fake github: unknown repo {repo}"))
    }

    /// Every request received so far, in arrival order (empty if `record_requests` is off).
    pub fn requests_log(&self) -> Vec<RequestRecord> {
        self.shared.requests_log()
    }

    /// Requests received for `path` (without query), in the request log.
    pub fn hits(&self, path: &str) -> u64 {
        self.shared
            .requests_log()
            .iter()
            .filter(|r| r.path.split('?').next() == Some(path))
            .count() as u64
    }

    /// Changes a PR so a later refresh sees it changed: title suffix `" (edited)"` (then
    /// `" (edited 2)"`, ...), `updated_at` bumped to now, one extra review and one extra file.
    /// Panics if the repository or PR does not exist.
    pub fn touch_pr(&self, repo: &str, number: u64) {
        if !self.shared.touch_pr(repo, number) {
            panic!("fake github: no PR {repo}#{number}");
        }
    }

    /// Adds a repository while the server runs: later requests (REST, GraphQL, listings) see
    /// it. Its `created_at` is later than that of every repository already served, so it is
    /// the newest in a listing sorted by `created`. Panics if a repository with the same name
    /// (case-insensitive) or id is already served.
    pub fn add_repo(&self, spec: RepoSpec) {
        if let Err(clash) = self.shared.add_repo(spec) {
            panic!("fake github: cannot add repo: {clash}");
        }
    }

    /// Hides a served repository (`owner/name`, case-insensitive) from `token` from now on
    /// (see the `hidden_from` field of [`RepoSpec`]).
    /// Panics if the repository is unknown.
    pub fn hide_repo(&self, repo: &str, token: &str) {
        if !self.shared.hide_repo(repo, token) {
            panic!("fake github: unknown repo {repo}");
        }
    }

    /// Ends every token minted so far for `installation`: they get 401 before their
    /// `expires_at`, as a revoked token does. Returns how many ended.
    pub fn revoke_installation_tokens(&self, installation: u64) -> usize {
        self.shared.revoke_installation_tokens(installation)
    }

    /// Stops the server and waits for its thread.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for FakeGithub {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// The default account login of a token: `"user-"` + first 8 hex digits of sha256(token).
pub fn default_account(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("user-{hex}")
}

/// Locks a mutex, ignoring poisoning (a panicking test thread must not wedge the server).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
