//! Connections: a repository's `pullRequests` and a pull request's `commits`, `reviews`,
//! `files`, `comments`, and a rollup's `contexts` — which items, in which order, and
//! which page of them.
//!
//! Items are in REST's order (and capped as REST caps them: 250 commits, 3,000 files), so
//! `first: 100` after the 100th item holds REST's `page=2&per_page=100`. `pullRequests`
//! filters by `states` (OPEN; CLOSED = closed and not merged; MERGED) and sorts by
//! `orderBy` (default CREATED_AT ASC, as GitHub). Each page served is counted under a
//! key `{owner}/{repo}#{number}:{field}:{offset}` (`{owner}/{repo}:pullRequests:{offset}`
//! for the PR list).

use std::cell::Cell;
use std::rc::Rc;

use apollo_compiler::ast;
use apollo_compiler::Node;
use serde_json::Value;

use super::super::data::Repo;
use super::cursor::{self, Page, Window};
use super::exec::{field_error, Exec, Resolved, World};
use super::items::StatusContext;
use super::objects::{leaf, CommitCtx, Obj, PrCtx};

/// Which connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnKind {
    /// `Repository.pullRequests`.
    PullRequests,
    /// `PullRequest.commits`.
    Commits,
    /// `PullRequest.reviews`.
    Reviews,
    /// `PullRequest.files`.
    Files,
    /// `PullRequest.comments` (issue comments).
    Comments,
    /// `StatusCheckRollup.contexts`.
    Contexts,
}

impl ConnKind {
    /// The connection's type name.
    pub fn typename(self) -> &'static str {
        match self {
            ConnKind::PullRequests => "PullRequestConnection",
            ConnKind::Commits => "PullRequestCommitConnection",
            ConnKind::Reviews => "PullRequestReviewConnection",
            ConnKind::Files => "PullRequestChangedFileConnection",
            ConnKind::Comments => "IssueCommentConnection",
            ConnKind::Contexts => "StatusCheckRollupContextConnection",
        }
    }

    /// The type name of its edges.
    pub fn edge_typename(self) -> &'static str {
        match self {
            ConnKind::PullRequests => "PullRequestEdge",
            ConnKind::Commits => "PullRequestCommitEdge",
            ConnKind::Reviews => "PullRequestReviewEdge",
            ConnKind::Files => "PullRequestChangedFileEdge",
            ConnKind::Comments => "IssueCommentEdge",
            ConnKind::Contexts => "StatusCheckRollupContextEdge",
        }
    }

    /// The field's name (in `graphql_items_served` keys).
    pub fn field(self) -> &'static str {
        match self {
            ConnKind::PullRequests => "pullRequests",
            ConnKind::Commits => "commits",
            ConnKind::Reviews => "reviews",
            ConnKind::Files => "files",
            ConnKind::Comments => "comments",
            ConnKind::Contexts => "contexts",
        }
    }
}

/// One page of a connection.
pub struct Conn<'w> {
    /// Which connection.
    pub kind: ConnKind,
    /// The repository.
    repo: &'w Repo,
    /// The PR (all but `pullRequests`).
    pr: Option<Rc<PrCtx<'w>>>,
    /// Ids of the page's items by position (PR numbers, review indices); None when an
    /// item's offset is its index.
    ids: Option<Vec<u64>>,
    /// Items in the whole connection.
    total: u64,
    /// The page.
    page: Page,
    /// `contexts`: the status listed first.
    status: Option<Rc<StatusContext>>,
    /// Whether the page's items were added to the answer's weight.
    weighed: Cell<bool>,
}

impl<'w> Conn<'w> {
    fn pr(&self) -> &Rc<PrCtx<'w>> {
        self.pr.as_ref().expect("a PR connection")
    }

    /// The item at `offset` (within the page).
    pub fn item(&self, offset: u64, world: &World<'w>) -> Obj<'w> {
        let id = match &self.ids {
            Some(ids) => ids[(offset - self.page.range.start) as usize],
            None => offset,
        };
        match self.kind {
            ConnKind::PullRequests => {
                let pr = self.repo.pr(id, world.touch(self.repo, id));
                Obj::PullRequest(PrCtx::new(self.repo, pr))
            }
            ConnKind::Commits => Obj::PullRequestCommit(CommitCtx::new(self.pr().clone(), id)),
            ConnKind::Reviews => Obj::Review(self.repo.review_json(&self.pr().pr, id)),
            ConnKind::Files => Obj::File(self.repo.file(&self.pr().pr, id)),
            ConnKind::Comments => {
                Obj::IssueComment(self.repo.issue_comment_json(&self.pr().pr, id))
            }
            ConnKind::Contexts => match (&self.status, id) {
                (Some(s), 0) => Obj::StatusContext(s.clone()),
                (Some(_), k) => Obj::CheckRun(self.repo.check_run_json(&self.pr().pr, k - 1)),
                (None, k) => Obj::CheckRun(self.repo.check_run_json(&self.pr().pr, k)),
            },
        }
    }

    /// A field of the page's `pageInfo`.
    pub fn page_info(&self, name: &str) -> Resolved<'w> {
        let r = &self.page.range;
        match name {
            "hasNextPage" => leaf(self.page.has_next),
            "hasPreviousPage" => leaf(self.page.has_previous),
            "startCursor" if !r.is_empty() => leaf(cursor::encode(r.start)),
            "endCursor" if !r.is_empty() => leaf(cursor::encode(r.end - 1)),
            _ => Resolved::Null,
        }
    }
}

impl<'w> Exec<'_, 'w> {
    /// Resolves a connection field: reads its window, picks the items and the page.
    pub(super) fn connection(
        &mut self,
        kind: ConnKind,
        repo: &'w Repo,
        pr: Option<Rc<PrCtx<'w>>>,
        f: &Node<ast::Field>,
        path: &[Value],
    ) -> Result<Resolved<'w>, Value> {
        let window = self.window(f, path)?;
        let mut status = None;
        let mut listed: Option<Vec<u64>> = None;
        let total = match (&kind, &pr) {
            (ConnKind::PullRequests, _) => {
                let numbers = self.pull_numbers(repo, f);
                let total = numbers.len() as u64;
                listed = Some(numbers);
                total
            }
            (ConnKind::Commits, Some(p)) => p.pr.commits_served(),
            (ConnKind::Files, Some(p)) => p.pr.files_served(),
            (ConnKind::Comments, Some(p)) => p.pr.issue_comments,
            (ConnKind::Reviews, Some(p)) => {
                let states = self.states(f);
                if states.is_empty() {
                    p.pr.reviews()
                } else {
                    let picked: Vec<u64> = (0..p.pr.reviews())
                        .filter(|&j| {
                            let state = repo.review_json(&p.pr, j)["state"].clone();
                            states.iter().any(|s| state == s.as_str())
                        })
                        .collect();
                    let total = picked.len() as u64;
                    listed = Some(picked);
                    total
                }
            }
            (ConnKind::Contexts, Some(p)) => {
                status = p.status().map(Rc::new);
                p.pr.check_runs + status.is_some() as u64
            }
            (_, None) => 0,
        };
        let page = window.page(total);
        let ids =
            listed.map(|all| all[page.range.start as usize..page.range.end as usize].to_vec());
        self.pages.push(match &pr {
            Some(p) => format!(
                "{}#{}:{}:{}",
                repo.spec.full_name,
                p.pr.number,
                kind.field(),
                page.range.start
            ),
            None => format!(
                "{}:{}:{}",
                repo.spec.full_name,
                kind.field(),
                page.range.start
            ),
        });
        Ok(Resolved::Object(Obj::Connection(Rc::new(Conn {
            kind,
            repo,
            pr,
            ids,
            total,
            page,
            status,
            weighed: Cell::new(false),
        }))))
    }

    /// A field of a connection page.
    pub(super) fn connection_field(&mut self, conn: &Rc<Conn<'w>>, name: &str) -> Resolved<'w> {
        let range = conn.page.range.clone();
        match name {
            "totalCount" => leaf(conn.total),
            "pageInfo" => Resolved::Object(Obj::PageInfo(conn.clone())),
            "nodes" => {
                self.weigh(conn);
                Resolved::List(range.map(|o| conn.item(o, self.world)).collect())
            }
            "edges" => {
                self.weigh(conn);
                Resolved::List(range.map(|o| Obj::Edge(conn.clone(), o)).collect())
            }
            "checkRunCount" => leaf(conn.pr.as_ref().map_or(0, |p| p.pr.check_runs)),
            "statusContextCount" => leaf(conn.status.is_some() as u64),
            _ => Resolved::Null,
        }
    }

    /// Adds a page's items to the answer's weight, once.
    fn weigh(&mut self, conn: &Conn<'w>) {
        if conn.weighed.replace(true) {
            return;
        }
        let each = match conn.kind {
            ConnKind::Files => self.world.config.graphql_file_weight,
            _ => 1,
        };
        let items = conn.page.range.end - conn.page.range.start;
        self.weight = self.weight.saturating_add(items.saturating_mul(each));
    }

    /// The window of a connection field; an unreadable cursor is INVALID_CURSOR_ARGUMENTS.
    fn window(&self, f: &Node<ast::Field>, path: &[Value]) -> Result<Window, Value> {
        let count = |name: &str| self.q.arg(f, name).and_then(|v| v.as_u64());
        let cursor = |name: &str| match self.q.arg(f, name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => {
                let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                cursor::decode(&text).map(Some).ok_or_else(|| {
                    let message = format!("`{text}` does not appear to be a valid cursor.");
                    field_error(
                        "INVALID_CURSOR_ARGUMENTS",
                        message,
                        path,
                        self.q.location(f),
                    )
                })
            }
        };
        Ok(Window {
            first: count("first"),
            last: count("last"),
            after: cursor("after")?,
            before: cursor("before")?,
        })
    }

    /// The `states` argument as a list (empty when absent or null).
    fn states(&self, f: &Node<ast::Field>) -> Vec<String> {
        match self.q.arg(f, "states") {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            Some(Value::String(s)) => vec![s],
            _ => Vec::new(),
        }
    }

    /// The numbers of a repository's PRs that `states` keeps, in `orderBy` order.
    fn pull_numbers(&self, repo: &Repo, f: &Node<ast::Field>) -> Vec<u64> {
        let states = self.states(f);
        let state_of = |n: u64| {
            if repo.is_open(n) {
                "OPEN"
            } else if repo.is_merged(n) {
                "MERGED"
            } else {
                "CLOSED"
            }
        };
        let mut numbers: Vec<u64> = (1..=repo.spec.pr_count as u64)
            .filter(|&n| states.is_empty() || states.iter().any(|s| s == state_of(n)))
            .collect();
        let order = self.q.arg(f, "orderBy").unwrap_or(Value::Null);
        let touch = |n: u64| self.world.touch(repo, n);
        match order["field"].as_str() {
            Some("UPDATED_AT") => numbers.sort_by_cached_key(|&n| (repo.updated(n, touch(n)), n)),
            Some("COMMENTS") => {
                numbers.sort_by_cached_key(|&n| (repo.pr(n, touch(n)).issue_comments, n))
            }
            _ => {}
        }
        if order["direction"] == "DESC" {
            numbers.reverse();
        }
        numbers
    }
}
