//! Routing of API paths and the repository endpoints: pagination, `link` headers, caps.
//!
//! Everything here is pure (no rate limiting, no stats): it turns a path and query into the
//! body that a 200 (or 404/422/...) answer would carry. [`super::limits`] decides whether
//! that answer is actually given.

use std::collections::HashMap;

use serde_json::{json, Value};

pub use super::app_routes::AppRoute;
use super::data::{Repo, Touch, COMMITS_CAP, FILES_CAP};

/// Documentation URL used in error bodies.
pub const DOCS: &str = "https://docs.github.com/rest";

/// A parsed API path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /rate_limit`.
    RateLimit,
    /// `GET /user`.
    User,
    /// `POST /graphql`, or `/api/graphql` (GitHub Enterprise Server's form); answered by
    /// [`super::graphql`].
    Graphql,
    /// `/repos/{o}/{r}/...` or `/repositories/{id}/...`; `sub` is what follows.
    Repo {
        /// How the repository was named.
        by: RepoRef,
        /// The path segments after the repository.
        sub: Vec<String>,
    },
    /// An owner's repositories: `/orgs/{org}/repos`, `/users/{username}/repos`, or the
    /// `/organizations/{id}/repos` and `/user/{id}/repos` forms their `link`s use; answered
    /// by [`super::listing`].
    OwnerRepos {
        /// Which listing.
        listing: Listing,
        /// How the path names the owner.
        by: OwnerRef,
    },
    /// `GET /app/installations` or `POST /app/installations/{id}/access_tokens`, with an
    /// app's JWT; answered by [`super::app_routes`].
    App(AppRoute),
    /// Anything else: 404.
    Unknown,
}

/// The two listings of an owner's repositories.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listing {
    /// `/orgs/{org}/repos`: organisations only.
    Org,
    /// `/users/{username}/repos`: any account.
    User,
}

/// How a path names an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OwnerRef {
    /// Its login (case-insensitive).
    Login(String),
    /// Its numeric id.
    Id(u64),
}

/// How a path names a repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RepoRef {
    /// `/repos/{owner}/{name}`.
    Name(String),
    /// `/repositories/{id}`.
    Id(u64),
}

/// Splits off an optional `/api/v3` prefix (GitHub Enterprise Server) and parses the rest.
/// Returns the prefix (`""` or `"/api/v3"`; `"/api"` for `/api/graphql`) and the route.
pub fn parse_path(path: &str) -> (&'static str, Route) {
    match path.trim_end_matches('/') {
        "/graphql" => return ("", Route::Graphql),
        "/api/graphql" => return ("/api", Route::Graphql),
        _ => {}
    }
    let (prefix, rest) = match path.strip_prefix("/api/v3") {
        Some(r) if r.is_empty() || r.starts_with('/') => ("/api/v3", r),
        _ => ("", path),
    };
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let route = match segs.as_slice() {
        ["rate_limit"] => Route::RateLimit,
        ["app", "installations"] => Route::App(AppRoute::Installations),
        ["app", "installations", id, "access_tokens"] => match id.parse() {
            Ok(id) => Route::App(AppRoute::AccessToken(id)),
            Err(_) => Route::Unknown,
        },
        ["user"] => Route::User,
        ["repos", owner, name, sub @ ..] => Route::Repo {
            by: RepoRef::Name(format!("{owner}/{name}")),
            sub: sub.iter().map(|s| s.to_string()).collect(),
        },
        ["repositories", id, sub @ ..] => match id.parse() {
            Ok(id) => Route::Repo {
                by: RepoRef::Id(id),
                sub: sub.iter().map(|s| s.to_string()).collect(),
            },
            Err(_) => Route::Unknown,
        },
        [kind @ ("orgs" | "users"), login, "repos"] => Route::OwnerRepos {
            listing: if *kind == "orgs" {
                Listing::Org
            } else {
                Listing::User
            },
            by: OwnerRef::Login(login.to_string()),
        },
        [kind @ ("organizations" | "user"), id, "repos"] => match id.parse() {
            Ok(id) => Route::OwnerRepos {
                listing: if *kind == "organizations" {
                    Listing::Org
                } else {
                    Listing::User
                },
                by: OwnerRef::Id(id),
            },
            Err(_) => Route::Unknown,
        },
        _ => Route::Unknown,
    };
    (prefix, route)
}

/// A generated answer, before rate limiting.
#[derive(Clone, Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: Vec<u8>,
    /// `link` header value, if paginated with more than one page.
    pub link: Option<String>,
}

impl Answer {
    /// A 200 with a JSON body.
    pub fn ok(v: &Value, link: Option<String>) -> Answer {
        Answer {
            status: 200,
            body: serde_json::to_vec(v).expect("json"),
            link,
        }
    }

    /// An error answer with GitHub's `{"message", "documentation_url", "status"}` body.
    pub fn error(status: u16, message: &str) -> Answer {
        let v =
            json!({"message": message, "documentation_url": DOCS, "status": status.to_string()});
        Answer {
            status,
            body: serde_json::to_vec(&v).expect("json"),
            link: None,
        }
    }

    /// 404 Not Found.
    pub fn not_found() -> Answer {
        Answer::error(404, "Not Found")
    }

    /// The answer every request for a repository listed in `repo_errors` gets.
    pub fn repo_error(status: u16) -> Answer {
        match status {
            403 => Answer::error(403, "Resource not accessible by personal access token"),
            404 => Answer::not_found(),
            409 => Answer::error(409, "Git Repository is empty."),
            410 => Answer::error(410, "This repository has been deleted."),
            451 => {
                let v = json!({
                    "message": "Repository access blocked",
                    "block": {"reason": "dmca", "created_at": "2020-01-01T00:00:00Z",
                              "html_url": "https://github.com/github/dmca"},
                    "documentation_url": DOCS,
                });
                Answer {
                    status,
                    body: serde_json::to_vec(&v).expect("json"),
                    link: None,
                }
            }
            s => Answer::error(s, "Error"),
        }
    }
}

/// Where absolute `link` URLs point: `{base}{prefix}/...`.
pub struct LinkCtx<'a> {
    /// `http://` + the request's Host header.
    pub base: &'a str,
    /// `""` or `"/api/v3"`, as in the request.
    pub prefix: &'a str,
    /// The request's query pairs, in order.
    pub query: &'a [(String, String)],
}

impl LinkCtx<'_> {
    /// The value of query parameter `name` (the first, if repeated).
    pub(super) fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `(page, per_page)`: page >= 1 (default 1), per_page in 1..=100 (default 30).
    fn paging(&self) -> (u64, u64) {
        let page = self
            .param("page")
            .and_then(|p| p.parse::<u64>().ok())
            .filter(|&p| p >= 1)
            .unwrap_or(1);
        let per_page = self
            .param("per_page")
            .and_then(|p| p.parse::<u64>().ok())
            .filter(|&p| p >= 1)
            .map(|p| p.min(100))
            .unwrap_or(30);
        (page, per_page)
    }

    fn page_url(&self, path: &str, page: u64) -> String {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        let mut placed = false;
        for (k, v) in self.query {
            if k == "page" {
                if !placed {
                    ser.append_pair("page", &page.to_string());
                    placed = true;
                }
            } else {
                ser.append_pair(k, v);
            }
        }
        if !placed {
            ser.append_pair("page", &page.to_string());
        }
        format!("{}{}{}?{}", self.base, self.prefix, path, ser.finish())
    }

    /// GitHub's `link` header for `page` of `last` pages: prev, next, last, first.
    fn link(&self, path: &str, page: u64, last: u64) -> Option<String> {
        let mut parts = Vec::new();
        if page > 1 {
            parts.push(format!(
                "<{}>; rel=\"prev\"",
                self.page_url(path, (page - 1).min(last.max(1)))
            ));
        }
        if page < last {
            parts.push(format!("<{}>; rel=\"next\"", self.page_url(path, page + 1)));
            parts.push(format!("<{}>; rel=\"last\"", self.page_url(path, last)));
        }
        if page > 1 {
            parts.push(format!("<{}>; rel=\"first\"", self.page_url(path, 1)));
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }

    /// The items `[start, end)` of the requested page of `total`, and its `link` header.
    pub(super) fn page_of(
        &self,
        total: u64,
        link_path: &str,
    ) -> (std::ops::Range<u64>, Option<String>) {
        let (page, per_page) = self.paging();
        let last = total.div_ceil(per_page);
        let start = ((page - 1).saturating_mul(per_page)).min(total);
        let end = (start + per_page).min(total);
        let link = if total == 0 {
            None
        } else {
            self.link(link_path, page, last)
        };
        (start..end, link)
    }
}

/// Generates the answer for `sub` (segments after the repository) of `repo`.
pub fn repo_answer(
    repo: &Repo,
    touches: &HashMap<u64, Touch>,
    sub: &[String],
    ctx: &LinkCtx<'_>,
) -> Answer {
    let touch_of = |n: u64| touches.get(&n).copied().unwrap_or_default();
    let full = &repo.spec.full_name;
    let segs: Vec<&str> = sub.iter().map(String::as_str).collect();
    let pr_of = |s: &str| -> Option<super::data::Pr> {
        let n: u64 = s.parse().ok()?;
        repo.has_pr(n).then(|| repo.pr(n, touch_of(n)))
    };
    match segs.as_slice() {
        [] => Answer::ok(&repo.repo_json(), None),
        ["pulls"] => pull_list(repo, touches, ctx),
        ["pulls", n] => match pr_of(n) {
            Some(pr) => Answer::ok(&repo.pull_json(&pr, true), None),
            None => Answer::not_found(),
        },
        ["pulls", n, what] => {
            let Some(pr) = pr_of(n) else {
                return Answer::not_found();
            };
            let path = format!("/repos/{full}/pulls/{n}/{what}");
            let total = match *what {
                "commits" => pr.commits_served(),
                "reviews" => pr.reviews(),
                "files" => pr.files_served(),
                "comments" => pr.review_comments,
                _ => return Answer::not_found(),
            };
            debug_assert!(pr.commits_served() <= COMMITS_CAP && pr.files_served() <= FILES_CAP);
            let (range, link) = ctx.page_of(total, &path);
            let items: Vec<Value> = range
                .map(|i| match *what {
                    "commits" => repo.commit_json(&pr, i),
                    "reviews" => repo.review_json(&pr, i),
                    "files" => repo.file_json(&pr, i),
                    _ => repo.review_comment_json(&pr, i),
                })
                .collect();
            Answer::ok(&Value::Array(items), link)
        }
        ["issues", n, "comments"] => {
            let Some(pr) = pr_of(n) else {
                return Answer::not_found();
            };
            let path = format!("/repos/{full}/issues/{n}/comments");
            let (range, link) = ctx.page_of(pr.issue_comments, &path);
            let items: Vec<Value> = range.map(|j| repo.issue_comment_json(&pr, j)).collect();
            Answer::ok(&Value::Array(items), link)
        }
        ["commits", sha, "check-runs"] => {
            let Some((n, i)) = repo.find_commit(sha, touch_of) else {
                return Answer::error(422, &format!("No commit found for SHA: {sha}"));
            };
            let pr = repo.pr(n, touch_of(n));
            let total = if i + 1 == pr.commits_total {
                pr.check_runs
            } else {
                0
            };
            let path = format!("/repos/{full}/commits/{sha}/check-runs");
            let (range, link) = ctx.page_of(total, &path);
            let runs: Vec<Value> = range.map(|k| repo.check_run_json(&pr, k)).collect();
            Answer::ok(&json!({"total_count": total, "check_runs": runs}), link)
        }
        _ => Answer::not_found(),
    }
}

/// `GET /repos/{o}/{r}/pulls`: `state` (open by default, closed, all), `sort` (created by
/// default, updated; others treated as created), `direction` (desc by default for created,
/// asc otherwise). Links point at `/repositories/{id}/pulls`, as GitHub's do.
fn pull_list(repo: &Repo, touches: &HashMap<u64, Touch>, ctx: &LinkCtx<'_>) -> Answer {
    let touch_of = |n: u64| touches.get(&n).copied().unwrap_or_default();
    let state = ctx.param("state").unwrap_or("open");
    let by_updated = ctx.param("sort") == Some("updated");
    let desc = match ctx.param("direction") {
        Some("asc") => false,
        Some("desc") => true,
        _ => !by_updated,
    };
    let count = repo.spec.pr_count as u64;
    let mut numbers: Vec<u64> = (1..=count)
        .filter(|&n| match state {
            "closed" => !repo.is_open(n),
            "all" => true,
            _ => repo.is_open(n),
        })
        .collect();
    if by_updated {
        numbers.sort_by_cached_key(|&n| (repo.updated(n, touch_of(n)), n));
    }
    if desc {
        numbers.reverse();
    }
    let path = format!("/repositories/{}/pulls", repo.spec.id);
    let (range, link) = ctx.page_of(numbers.len() as u64, &path);
    let items: Vec<Value> = numbers[range.start as usize..range.end as usize]
        .iter()
        .map(|&n| repo.pull_json(&repo.pr(n, touch_of(n)), false))
        .collect();
    Answer::ok(&Value::Array(items), link)
}
