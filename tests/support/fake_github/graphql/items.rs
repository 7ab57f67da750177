//! Fields of the items under a pull request — commits and their authors, reviews, issue
//! comments, changed files, check runs, commit statuses, users and bots — read from the
//! JSON REST serves for the same item, in GraphQL's forms:
//!
//! - enums in UPPER_CASE (`COMPLETED`, `SUCCESS`; a file's `removed` is `DELETED`);
//! - 64-bit database ids as `fullDatabaseId` strings (BigInt);
//! - a bot's login without `[bot]`; a commit author's `user` null for a bot (GitActor's
//!   `user` is a `User`) or an unknown account;
//! - a commit's `GitActor.date` in the commit's own time zone: the same instant as REST's
//!   UTC date, with a non-zero offset for about a third of commits;
//! - commit statuses, which REST's check-runs endpoint does not list: about one head
//!   commit in five has one `StatusContext`, first among its rollup's contexts.

use chrono::{DateTime, FixedOffset};
use serde_json::Value;

use super::super::data::{kind, salt, ts, File, Pr, Repo, User};
use super::exec::Resolved;
use super::objects::{actor, leaf, CommitCtx, Obj};

/// Offsets (minutes east of UTC) of commits made outside UTC.
const OFFSETS: [i32; 7] = [120, -420, 330, -180, 540, 60, -300];

/// A commit status (the legacy statuses API), as a rollup context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusContext {
    /// Node id.
    pub id: String,
    /// `ci/jenkins`.
    pub context: String,
    /// SUCCESS, FAILURE, PENDING or ERROR.
    pub state: &'static str,
    /// Description.
    pub description: String,
    /// Link to the build.
    pub target_url: String,
    /// Creation time, `YYYY-MM-DDTHH:MM:SSZ`.
    pub created_at: String,
}

/// The status on a PR's head commit: about one head commit in five has one.
pub fn status_context(repo: &Repo, pr: &Pr) -> Option<StatusContext> {
    let n = pr.number;
    let hh = repo.h(n, salt::CHECK, 0xC0FFEE);
    if !hh.is_multiple_of(5) {
        return None;
    }
    let state = match (hh >> 8) % 100 {
        0..=69 => "SUCCESS",
        70..=84 => "FAILURE",
        85..=92 if pr.open => "PENDING",
        85..=92 => "SUCCESS",
        _ => "ERROR",
    };
    let id = repo.id(n, kind::STATUS, 0);
    Some(StatusContext {
        id: format!("SC_kwDO{id:X}"),
        context: "ci/jenkins".to_string(),
        state,
        description: format!("Build #{n} {}", state.to_ascii_lowercase()),
        target_url: format!("https://ci.example.com/job/{}/{n}", repo.name),
        created_at: ts(pr.created + 45),
    })
}

/// The rollup's state: FAILURE if a check run or the status failed, else PENDING if one
/// is not finished, else SUCCESS.
pub fn rollup_state(repo: &Repo, pr: &Pr) -> &'static str {
    let mut states: Vec<&str> = Vec::new();
    for k in 0..pr.check_runs {
        let run = repo.check_run_json(pr, k);
        states.push(match (run["status"].as_str(), run["conclusion"].as_str()) {
            (Some("completed"), Some("success" | "skipped" | "neutral")) => "SUCCESS",
            (Some("completed"), _) => "FAILURE",
            _ => "PENDING",
        });
    }
    if let Some(s) = status_context(repo, pr) {
        states.push(if s.state == "ERROR" {
            "FAILURE"
        } else {
            s.state
        });
    }
    if states.contains(&"FAILURE") {
        "FAILURE"
    } else if states.contains(&"PENDING") {
        "PENDING"
    } else {
        "SUCCESS"
    }
}

/// The user of REST's user JSON (None for `null`).
pub fn user_of(v: &Value) -> Option<User> {
    Some(User {
        login: v.get("login")?.as_str()?.to_string(),
        id: v.get("id")?.as_u64()?,
        bot: v["type"] == "Bot",
    })
}

/// A field of a `User` or `Bot`.
pub fn actor_field<'w>(u: &User, name: &str) -> Resolved<'w> {
    match name {
        "login" => leaf(u.login.trim_end_matches("[bot]")),
        "id" => leaf(u.json()["node_id"].clone()),
        "databaseId" => leaf(u.id),
        "url" => leaf(u.json()["html_url"].clone()),
        _ => Resolved::Null,
    }
}

/// A field of a `Commit` (`statusCheckRollup` aside).
pub fn commit_field<'w>(c: &std::rc::Rc<CommitCtx<'w>>, name: &str) -> Resolved<'w> {
    let j = &c.json;
    let sha = j["sha"].as_str().unwrap_or_default();
    match name {
        "id" => leaf(j["node_id"].clone()),
        "oid" => leaf(sha),
        "abbreviatedOid" => leaf(&sha[..7.min(sha.len())]),
        "url" => leaf(j["html_url"].clone()),
        "message" => leaf(j["commit"]["message"].clone()),
        "messageHeadline" => {
            let message = j["commit"]["message"].as_str().unwrap_or_default();
            leaf(message.lines().next().unwrap_or_default())
        }
        "authoredDate" => leaf(j["commit"]["author"]["date"].clone()),
        "committedDate" => leaf(j["commit"]["committer"]["date"].clone()),
        "author" => Resolved::Object(Obj::GitActor(c.clone(), "author")),
        "committer" => Resolved::Object(Obj::GitActor(c.clone(), "committer")),
        _ => Resolved::Null,
    }
}

/// A field of a commit's `author` or `committer` (`which`).
pub fn git_actor_field<'w>(c: &CommitCtx<'w>, which: &str, name: &str) -> Resolved<'w> {
    let person = &c.json["commit"][which];
    match name {
        "name" => leaf(person["name"].clone()),
        "email" => leaf(person["email"].clone()),
        "date" => leaf(git_timestamp(
            c,
            person["date"].as_str().unwrap_or_default(),
        )),
        "user" => match user_of(&c.json[which]) {
            Some(u) if !u.bot => Resolved::Object(Obj::User(u)),
            _ => Resolved::Null,
        },
        _ => Resolved::Null,
    }
}

/// REST's UTC date of a commit in the commit's own time zone.
fn git_timestamp(c: &CommitCtx<'_>, utc: &str) -> String {
    let hh =
        c.pr.repo
            .h(c.pr.pr.number, salt::COMMIT, c.index ^ 0x7a7a_7a7a);
    let offset = OFFSETS[((hh >> 8) % OFFSETS.len() as u64) as usize];
    match (
        hh % 3,
        DateTime::parse_from_rfc3339(utc),
        FixedOffset::east_opt(offset * 60),
    ) {
        (0, Ok(t), Some(zone)) => t
            .with_timezone(&zone)
            .format("%Y-%m-%dT%H:%M:%S%:z")
            .to_string(),
        _ => utc.to_string(),
    }
}

/// A field of a `PullRequestReview` (from REST's review JSON).
pub fn review_field<'w>(v: &Value, name: &str) -> Resolved<'w> {
    match name {
        "id" => leaf(v["node_id"].clone()),
        "fullDatabaseId" => leaf(v["id"].to_string()),
        "databaseId" => leaf(v["id"].clone()),
        "url" => leaf(v["html_url"].clone()),
        "author" => actor(user_of(&v["user"])),
        "state" => leaf(v["state"].clone()),
        "submittedAt" => leaf(v["submitted_at"].clone()),
        "body" => leaf(v["body"].clone()),
        _ => Resolved::Null,
    }
}

/// A field of an `IssueComment` (from REST's issue-comment JSON).
pub fn comment_field<'w>(v: &Value, name: &str) -> Resolved<'w> {
    match name {
        "id" => leaf(v["node_id"].clone()),
        "fullDatabaseId" => leaf(v["id"].to_string()),
        "databaseId" => leaf(v["id"].clone()),
        "url" => leaf(v["html_url"].clone()),
        "author" => actor(user_of(&v["user"])),
        "createdAt" => leaf(v["created_at"].clone()),
        "body" => leaf(v["body"].clone()),
        _ => Resolved::Null,
    }
}

/// A field of a `CheckRun` (from REST's check-run JSON).
pub fn check_run_field<'w>(v: &Value, name: &str) -> Resolved<'w> {
    let upper = |key: &str| match v[key].as_str() {
        Some(s) => leaf(s.to_ascii_uppercase()),
        None => Resolved::Null,
    };
    match name {
        "id" => leaf(v["node_id"].clone()),
        "databaseId" => leaf(v["id"].clone()),
        "url" => leaf(v["html_url"].clone()),
        "name" => leaf(v["name"].clone()),
        "status" => upper("status"),
        "conclusion" => upper("conclusion"),
        "startedAt" => leaf(v["started_at"].clone()),
        "completedAt" => leaf(v["completed_at"].clone()),
        "detailsUrl" => leaf(v["details_url"].clone()),
        _ => Resolved::Null,
    }
}

/// A field of a `PullRequestChangedFile`.
pub fn file_field<'w>(file: &File, name: &str) -> Resolved<'w> {
    match name {
        "path" => leaf(file.filename.clone()),
        "additions" => leaf(file.additions),
        "deletions" => leaf(file.deletions),
        "changeType" => leaf(match file.status {
            "added" => "ADDED",
            "removed" => "DELETED",
            "renamed" => "RENAMED",
            "copied" => "COPIED",
            "changed" => "CHANGED",
            _ => "MODIFIED",
        }),
        _ => Resolved::Null,
    }
}

/// A field of a `StatusContext`.
pub fn status_field<'w>(s: &StatusContext, name: &str) -> Resolved<'w> {
    match name {
        "id" => leaf(s.id.clone()),
        "context" => leaf(s.context.clone()),
        "state" => leaf(s.state),
        "description" => leaf(s.description.clone()),
        "targetUrl" => leaf(s.target_url.clone()),
        "createdAt" => leaf(s.created_at.clone()),
        _ => Resolved::Null,
    }
}
