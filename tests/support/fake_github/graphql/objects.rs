//! The objects a query selects from, and the fields of the root, `Repository` and
//! `PullRequest`. Their values come from the same generator as REST's (and, for items,
//! from the very JSON REST serves), so both APIs describe the same rows.

use std::cell::OnceCell;
use std::rc::Rc;

use apollo_compiler::ast;
use apollo_compiler::Node;
use serde_json::{json, Value};

use super::super::data::{kind, ts, File, Pr, Repo, User, WEB};
use super::connection::{Conn, ConnKind};
use super::exec::{field_error, Exec, Resolved};
use super::items::{self, StatusContext};

/// A pull request with its repository (shared by the objects under it).
pub struct PrCtx<'w> {
    /// Its repository.
    pub repo: &'w Repo,
    /// The generated PR.
    pub pr: Pr,
    /// `(additions, deletions)`, computed on first use (it walks every file).
    lines: OnceCell<(u64, u64)>,
}

impl<'w> PrCtx<'w> {
    /// Wraps PR `pr` of `repo`.
    pub fn new(repo: &'w Repo, pr: Pr) -> Rc<PrCtx<'w>> {
        Rc::new(PrCtx {
            repo,
            pr,
            lines: OnceCell::new(),
        })
    }

    fn lines(&self) -> (u64, u64) {
        *self.lines.get_or_init(|| self.repo.line_totals(&self.pr))
    }

    /// Index of the head commit (the last one, served or not).
    pub fn head_index(&self) -> u64 {
        self.pr.commits_total - 1
    }

    /// The status context on the head commit, if it has one.
    pub fn status(&self) -> Option<StatusContext> {
        items::status_context(self.repo, &self.pr)
    }

    /// Whether the head commit has a status-check rollup (check runs or a status).
    pub fn has_rollup(&self) -> bool {
        self.pr.check_runs > 0 || self.status().is_some()
    }
}

/// Commit `index` of a PR, with the JSON REST's `/pulls/{n}/commits` serves for it.
pub struct CommitCtx<'w> {
    /// Its PR.
    pub pr: Rc<PrCtx<'w>>,
    /// Index among the PR's commits.
    pub index: u64,
    /// REST's JSON of the commit.
    pub json: Value,
}

impl<'w> CommitCtx<'w> {
    /// Commit `index` of `pr`.
    pub fn new(pr: Rc<PrCtx<'w>>, index: u64) -> Rc<CommitCtx<'w>> {
        let json = pr.repo.commit_json(&pr.pr, index);
        Rc::new(CommitCtx { pr, index, json })
    }
}

/// An object of the fake's schema.
pub enum Obj<'w> {
    /// The root.
    Query,
    /// `rateLimit`.
    RateLimit,
    /// A repository.
    Repository(&'w Repo),
    /// A pull request.
    PullRequest(Rc<PrCtx<'w>>),
    /// A commit as a node of a PR's `commits`.
    PullRequestCommit(Rc<CommitCtx<'w>>),
    /// A commit.
    Commit(Rc<CommitCtx<'w>>),
    /// A commit's `author` or `committer`.
    GitActor(Rc<CommitCtx<'w>>, &'static str),
    /// A review (REST's JSON of it).
    Review(Value),
    /// An issue comment (REST's JSON of it).
    IssueComment(Value),
    /// A check run (REST's JSON of it).
    CheckRun(Value),
    /// A changed file.
    File(File),
    /// A commit status.
    StatusContext(Rc<StatusContext>),
    /// The status-check rollup of a PR's head commit.
    Rollup(Rc<PrCtx<'w>>),
    /// A user.
    User(User),
    /// A bot.
    Bot(User),
    /// A page of a connection.
    Connection(Rc<Conn<'w>>),
    /// An edge of a connection page: the connection and the item's offset.
    Edge(Rc<Conn<'w>>, u64),
    /// The `pageInfo` of a connection page.
    PageInfo(Rc<Conn<'w>>),
}

impl Obj<'_> {
    /// The object's concrete type (`__typename`).
    pub fn typename(&self) -> &'static str {
        match self {
            Obj::Query => "Query",
            Obj::RateLimit => "RateLimit",
            Obj::Repository(_) => "Repository",
            Obj::PullRequest(_) => "PullRequest",
            Obj::PullRequestCommit(_) => "PullRequestCommit",
            Obj::Commit(_) => "Commit",
            Obj::GitActor(..) => "GitActor",
            Obj::Review(_) => "PullRequestReview",
            Obj::IssueComment(_) => "IssueComment",
            Obj::CheckRun(_) => "CheckRun",
            Obj::File(_) => "PullRequestChangedFile",
            Obj::StatusContext(_) => "StatusContext",
            Obj::Rollup(_) => "StatusCheckRollup",
            Obj::User(_) => "User",
            Obj::Bot(_) => "Bot",
            Obj::Connection(c) => c.kind.typename(),
            Obj::Edge(c, _) => c.kind.edge_typename(),
            Obj::PageInfo(_) => "PageInfo",
        }
    }
}

/// A scalar value.
pub fn leaf(v: impl Into<Value>) -> Resolved<'static> {
    Resolved::Leaf(v.into())
}

/// An `Actor`: a `User`, a `Bot` (whose login has no `[bot]` suffix in GraphQL), or null
/// for a deleted account.
pub fn actor<'w>(user: Option<User>) -> Resolved<'w> {
    match user {
        Some(u) if u.bot => Resolved::Object(Obj::Bot(u)),
        Some(u) => Resolved::Object(Obj::User(u)),
        None => Resolved::Null,
    }
}

impl<'w> Exec<'_, 'w> {
    /// Resolves field `f` of `obj` (`path` ends with the field's response key).
    pub(super) fn resolve(
        &mut self,
        obj: &Obj<'w>,
        f: &Node<ast::Field>,
        path: &[Value],
    ) -> Result<Resolved<'w>, Value> {
        let name = f.name.as_str();
        Ok(match obj {
            Obj::Query => return self.query_field(f, path),
            Obj::RateLimit => {
                let r = self.rate;
                match name {
                    "limit" => leaf(r.limit),
                    "cost" => leaf(r.cost),
                    "remaining" => leaf(r.remaining),
                    "used" => leaf(r.used),
                    "resetAt" => leaf(r.reset_at.clone()),
                    "nodeCount" => leaf(r.node_count),
                    _ => Resolved::Null,
                }
            }
            Obj::Repository(repo) => return self.repository_field(repo, f, path),
            Obj::PullRequest(pr) => return self.pull_request_field(pr, f, path),
            Obj::Rollup(pr) => match name {
                "id" => leaf(format!(
                    "SCR_kwDO{:X}",
                    pr.repo.id(pr.pr.number, kind::CHECK_SUITE, 1)
                )),
                "state" => leaf(items::rollup_state(pr.repo, &pr.pr)),
                "commit" => {
                    Resolved::Object(Obj::Commit(CommitCtx::new(pr.clone(), pr.head_index())))
                }
                "contexts" => {
                    return self.connection(ConnKind::Contexts, pr.repo, Some(pr.clone()), f, path)
                }
                _ => Resolved::Null,
            },
            Obj::Connection(conn) => self.connection_field(conn, name),
            Obj::Edge(conn, offset) => match name {
                "cursor" => leaf(super::cursor::encode(*offset)),
                "node" => Resolved::Object(conn.item(*offset, self.world)),
                _ => Resolved::Null,
            },
            Obj::PageInfo(conn) => conn.page_info(name),
            Obj::Commit(c) => {
                if name == "statusCheckRollup" {
                    let head = c.index == c.pr.head_index();
                    return Ok(if head && c.pr.has_rollup() {
                        Resolved::Object(Obj::Rollup(c.pr.clone()))
                    } else {
                        Resolved::Null
                    });
                }
                items::commit_field(c, name)
            }
            Obj::PullRequestCommit(c) => match name {
                "id" => leaf(format!(
                    "PURC_kwDO{:X}_{}",
                    c.pr.repo.id(c.pr.pr.number, kind::PR, 0),
                    c.index
                )),
                "url" => leaf(format!(
                    "{WEB}/{}/pull/{}/commits/{}",
                    c.pr.repo.spec.full_name,
                    c.pr.pr.number,
                    c.json["sha"].as_str().unwrap_or("")
                )),
                "commit" => Resolved::Object(Obj::Commit(c.clone())),
                _ => Resolved::Null,
            },
            Obj::GitActor(c, which) => items::git_actor_field(c, which, name),
            Obj::Review(v) => items::review_field(v, name),
            Obj::IssueComment(v) => items::comment_field(v, name),
            Obj::CheckRun(v) => items::check_run_field(v, name),
            Obj::File(file) => items::file_field(file, name),
            Obj::StatusContext(s) => items::status_field(s, name),
            Obj::User(u) | Obj::Bot(u) => items::actor_field(u, name),
        })
    }

    fn query_field(&mut self, f: &Node<ast::Field>, path: &[Value]) -> Result<Resolved<'w>, Value> {
        let arg_str = |name: &str| {
            self.q
                .arg(f, name)
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        };
        Ok(match f.name.as_str() {
            "rateLimit" => Resolved::Object(Obj::RateLimit),
            "viewer" => Resolved::Object(Obj::User(User {
                login: self.world.viewer.to_string(),
                id: self.world.viewer_id,
                bot: false,
            })),
            "repository" => {
                let follow = self.q.arg(f, "followRenames") != Some(json!(false));
                let (owner, name) = (arg_str("owner"), arg_str("name"));
                match self.find_repository(&owner, &name, follow) {
                    Ok(repo) => Resolved::Object(Obj::Repository(repo)),
                    Err((kind, message)) => {
                        self.errors
                            .push(field_error(kind, message, path, self.q.location(f)));
                        Resolved::Null
                    }
                }
            }
            "node" => {
                let id = arg_str("id");
                match self.pull_request_by_node_id(&id) {
                    Some(pr) => {
                        self.weight += 1;
                        Resolved::Object(Obj::PullRequest(pr))
                    }
                    None => {
                        let message =
                            format!("Could not resolve to a node with the global id of '{id}'");
                        self.errors.push(field_error(
                            "NOT_FOUND",
                            message,
                            path,
                            self.q.location(f),
                        ));
                        Resolved::Null
                    }
                }
            }
            _ => Resolved::Null,
        })
    }

    /// The repository `owner/name` names, GitHub's way: `repo_errors` answer NOT_FOUND
    /// (FORBIDDEN for a 403), renamed repositories resolve to their new name when
    /// `followRenames` (the default), and one hidden from the token is NOT_FOUND, as if it
    /// did not exist.
    fn find_repository(
        &self,
        owner: &str,
        name: &str,
        follow: bool,
    ) -> Result<&'w Repo, (&'static str, String)> {
        let cfg = self.world.config;
        let full = format!("{owner}/{name}");
        let not_found = || {
            (
                "NOT_FOUND",
                format!("Could not resolve to a Repository with the name '{full}'."),
            )
        };
        let check = |n: &str| {
            let status = cfg
                .repo_errors
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, &s)| s);
            match status {
                Some(403) => Err((
                    "FORBIDDEN",
                    "Resource not accessible by personal access token".to_string(),
                )),
                Some(404 | 410 | 451) => Err(not_found()),
                _ => Ok(()),
            }
        };
        check(&full)?;
        let renamed = cfg
            .renamed_repos
            .iter()
            .find(|(old, _)| old.eq_ignore_ascii_case(&full));
        let target = match renamed {
            Some((_, new)) if follow => new.as_str(),
            Some(_) => return Err(not_found()),
            None => full.as_str(),
        };
        let repo = self
            .world
            .repos
            .iter()
            .find(|r| r.spec.full_name.eq_ignore_ascii_case(target))
            .filter(|r| !r.spec.is_hidden_from(self.world.token))
            .ok_or_else(not_found)?;
        check(&repo.spec.full_name)?;
        Ok(repo)
    }

    /// The PR whose node id (`PR_kwDO` + hex database id) is `id`, unless its repository is
    /// hidden from the token.
    fn pull_request_by_node_id(&self, id: &str) -> Option<Rc<PrCtx<'w>>> {
        let hex = id.strip_prefix("PR_kwDO")?;
        let db_id = u64::from_str_radix(hex, 16).ok()?;
        let (prefix, n) = (db_id >> 39, (db_id >> 15) & 0xff_ffff);
        let repo = self
            .world
            .repos
            .iter()
            .find(|r| r.id_prefix == prefix)
            .filter(|r| !r.spec.is_hidden_from(self.world.token))?;
        let pr = repo
            .has_pr(n)
            .then(|| repo.pr(n, self.world.touch(repo, n)))?;
        (repo.id(n, kind::PR, 0) == db_id).then(|| PrCtx::new(repo, pr))
    }

    fn repository_field(
        &mut self,
        repo: &'w Repo,
        f: &Node<ast::Field>,
        path: &[Value],
    ) -> Result<Resolved<'w>, Value> {
        let info = &repo.repo_value;
        Ok(match f.name.as_str() {
            "id" => leaf(info["node_id"].clone()),
            "databaseId" => leaf(repo.spec.id),
            "name" => leaf(repo.name.clone()),
            "nameWithOwner" => leaf(repo.spec.full_name.clone()),
            "url" => leaf(info["html_url"].clone()),
            "pullRequests" => return self.connection(ConnKind::PullRequests, repo, None, f, path),
            "pullRequest" => {
                let n = self
                    .q
                    .arg(f, "number")
                    .and_then(|v| v.as_u64())
                    .unwrap_or(0);
                if repo.has_pr(n) {
                    self.weight += 1;
                    let pr = repo.pr(n, self.world.touch(repo, n));
                    Resolved::Object(Obj::PullRequest(PrCtx::new(repo, pr)))
                } else {
                    let number = self.q.arg(f, "number").unwrap_or(Value::Null);
                    let message =
                        format!("Could not resolve to a PullRequest with the number of {number}.");
                    self.errors
                        .push(field_error("NOT_FOUND", message, path, self.q.location(f)));
                    Resolved::Null
                }
            }
            "object" => {
                let oid = self
                    .q
                    .arg(f, "oid")
                    .and_then(|v| v.as_str().map(str::to_string));
                let found =
                    oid.and_then(|sha| repo.find_commit(&sha, |n| self.world.touch(repo, n)));
                match found {
                    Some((n, i)) => {
                        self.weight += 1;
                        let pr = PrCtx::new(repo, repo.pr(n, self.world.touch(repo, n)));
                        Resolved::Object(Obj::Commit(CommitCtx::new(pr, i)))
                    }
                    None => Resolved::Null,
                }
            }
            _ => Resolved::Null,
        })
    }

    fn pull_request_field(
        &mut self,
        ctx: &Rc<PrCtx<'w>>,
        f: &Node<ast::Field>,
        path: &[Value],
    ) -> Result<Resolved<'w>, Value> {
        let (repo, pr) = (ctx.repo, &ctx.pr);
        let n = pr.number;
        let conn = |kind| (kind, repo, Some(ctx.clone()));
        let connection = match f.name.as_str() {
            "commits" => Some(conn(ConnKind::Commits)),
            "reviews" => Some(conn(ConnKind::Reviews)),
            "files" => Some(conn(ConnKind::Files)),
            "comments" => Some(conn(ConnKind::Comments)),
            _ => None,
        };
        if let Some((kind, repo, pr)) = connection {
            return self.connection(kind, repo, pr, f, path);
        }
        Ok(match f.name.as_str() {
            "id" => leaf(repo.pull_node_id(n)),
            "number" => leaf(n),
            "fullDatabaseId" => leaf(repo.id(n, kind::PR, 0).to_string()),
            "databaseId" => leaf(repo.id(n, kind::PR, 0)),
            "title" => leaf(pr.title.clone()),
            "body" => leaf(pr.body.clone().unwrap_or_default()),
            "state" => leaf(match (pr.merged_at, pr.open) {
                (Some(_), _) => "MERGED",
                (None, true) => "OPEN",
                (None, false) => "CLOSED",
            }),
            "isDraft" => leaf(pr.draft),
            "createdAt" => leaf(ts(pr.created)),
            "updatedAt" => leaf(ts(pr.updated)),
            "closedAt" => leaf(pr.closed.map(ts)),
            "mergedAt" => leaf(pr.merged_at.map(ts)),
            "merged" => leaf(pr.merged_at.is_some()),
            "additions" => leaf(ctx.lines().0),
            "deletions" => leaf(ctx.lines().1),
            "changedFiles" => leaf(pr.files_total()),
            "headRefOid" => leaf(pr.head_sha.clone()),
            "headRefName" => leaf(pr.head_ref.clone()),
            "baseRefOid" => leaf(pr.base_sha.clone()),
            "baseRefName" => leaf("main"),
            "url" => leaf(format!("{WEB}/{}/pull/{n}", repo.spec.full_name)),
            "author" => actor(pr.author.clone()),
            "repository" => Resolved::Object(Obj::Repository(repo)),
            "statusCheckRollup" if ctx.has_rollup() => Resolved::Object(Obj::Rollup(ctx.clone())),
            _ => Resolved::Null,
        })
    }
}
