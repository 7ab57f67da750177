//! GraphQL's forms turned into the rows a REST page gives, so that the public views
//! hold the same rows whichever API fetched them:
//! - states, a file's `changeType` and a check run's status and conclusion in REST's
//!   lower case (a merged PR is `closed`, a deleted file `removed`);
//! - review and comment ids are `fullDatabaseId` (a BigInt, sent as a string), check
//!   run ids `databaseId`;
//! - authors are logins, a bot's with REST's `[bot]` suffix (GraphQL leaves it off), a
//!   deleted account NULL; a commit author that GraphQL cannot link to a user (its
//!   `user` is a `User`, never a bot) is found from its noreply address as REST does;
//! - a commit's author date is a Git timestamp in the committer's zone in GraphQL and
//!   UTC in REST: it is turned into UTC;
//! - commit status contexts (not check runs) are skipped, as REST's check-runs list
//!   does not have them.

use crate::github::pages::{
    CheckRunRow, CommentRow, CommitDetail, CommitRow, FileRow, GitAuthor, GitRef, PullRow,
    ReviewRow, Rows, User,
};
use crate::github::Kind;
use serde::Deserialize;
use serde_json::Value;

/// A connection page's `pageInfo`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PageInfo {
    #[serde(default)]
    pub has_next_page: bool,
    pub end_cursor: Option<String>,
}

impl PageInfo {
    /// The cursor of the next page, if there is one.
    pub fn next(&self) -> Option<&str> {
        self.end_cursor.as_deref().filter(|_| self.has_next_page)
    }
}

/// A connection page: its items (null items skipped) and `pageInfo`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Connection<T> {
    #[serde(default = "Vec::new")]
    nodes: Vec<Option<T>>,
    #[serde(default)]
    page_info: PageInfo,
}

/// An `Actor`: a user, a bot, an organization, a mannequin.
#[derive(Debug, Deserialize)]
struct Actor {
    #[serde(rename = "__typename")]
    typename: Option<String>,
    login: Option<String>,
}

/// The REST form of an actor: the login, with `[bot]` for a bot.
fn login(actor: Option<Actor>) -> Option<User> {
    let actor = actor?;
    let login = actor.login?;
    let login = if actor.typename.as_deref() == Some("Bot") && !login.ends_with("[bot]") {
        format!("{login}[bot]")
    } else {
        login
    };
    Some(User { login: Some(login) })
}

/// A `BigInt` (GitHub sends it as a string) or a plain number.
fn big_int(value: &Value) -> Option<i64> {
    match value {
        Value::String(s) => s.parse().ok(),
        other => other.as_i64(),
    }
}

/// A PR as the list (and detail) give it; `with_counts` keeps its line counts.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Pull {
    number: i64,
    title: Option<String>,
    state: Option<String>,
    is_draft: Option<bool>,
    created_at: Option<String>,
    updated_at: Option<String>,
    closed_at: Option<String>,
    merged_at: Option<String>,
    additions: Option<i64>,
    deletions: Option<i64>,
    changed_files: Option<i64>,
    head_ref_oid: Option<String>,
    head_ref_name: Option<String>,
    base_ref_name: Option<String>,
    author: Option<Actor>,
}

impl Pull {
    fn row(self) -> PullRow {
        PullRow {
            number: self.number,
            title: self.title,
            // OPEN → open; CLOSED and MERGED → closed (REST tells merged by merged_at).
            state: self
                .state
                .map(|s| if s == "OPEN" { "open" } else { "closed" }.to_owned()),
            user: login(self.author),
            created_at: self.created_at,
            updated_at: self.updated_at,
            closed_at: self.closed_at,
            merged_at: self.merged_at,
            additions: self.additions,
            deletions: self.deletions,
            changed_files: self.changed_files,
            draft: self.is_draft,
            head: Some(GitRef {
                sha: self.head_ref_oid,
                name: self.head_ref_name,
            }),
            base: Some(GitRef {
                sha: None,
                name: self.base_ref_name,
            }),
        }
    }
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, value: &Value) -> Result<T, String> {
    T::deserialize(value).map_err(|e| format!("unexpected GraphQL {what}: {e}"))
}

/// A list page's PRs and its `pageInfo`, from `repository.pullRequests`.
pub fn pulls(repository: &Value) -> Result<(Vec<PullRow>, PageInfo), String> {
    let page: Connection<Pull> = decode("pull request list", &repository["pullRequests"])?;
    let rows = page.nodes.into_iter().flatten().map(Pull::row).collect();
    Ok((rows, page.page_info))
}

/// A PR's own fields (the REST detail), from an aliased `pullRequest`.
pub fn pull(pr: &Value) -> Result<PullRow, String> {
    Ok(decode::<Pull>("pull request", pr)?.row())
}

#[derive(Debug, Deserialize)]
struct CommitNode {
    commit: Commit,
}

#[derive(Debug, Deserialize)]
struct Commit {
    oid: String,
    message: Option<String>,
    author: Option<GitActor>,
}

#[derive(Debug, Deserialize)]
struct GitActor {
    name: Option<String>,
    email: Option<String>,
    date: Option<String>,
    user: Option<Actor>,
}

/// The login a noreply address stands for, for a bot (`49699333+dependabot[bot]@users
/// .noreply.github.com`): REST links such a commit to the bot, GraphQL's `user` cannot.
fn noreply_bot(email: &str) -> Option<String> {
    let local = email.strip_suffix("@users.noreply.github.com")?;
    let login = local.split_once('+').map_or(local, |(_, login)| login);
    login.ends_with("[bot]").then(|| login.to_owned())
}

/// A Git timestamp in UTC as REST writes it (`2018-01-01T12:00:00Z`); as given when it
/// is not a timestamp.
fn utc(timestamp: String) -> String {
    match chrono::DateTime::parse_from_rfc3339(&timestamp) {
        Ok(t) => t
            .with_timezone(&chrono::Utc)
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
        Err(_) => timestamp,
    }
}

impl CommitNode {
    fn row(self) -> CommitRow {
        let commit = self.commit;
        let (name, date, user) = match commit.author {
            Some(a) => {
                let user = login(a.user).or_else(|| {
                    let login = noreply_bot(a.email.as_deref()?)?;
                    Some(User { login: Some(login) })
                });
                (a.name, a.date.map(utc), user)
            }
            None => (None, None, None),
        };
        CommitRow {
            sha: commit.oid,
            commit: Some(CommitDetail {
                message: commit.message,
                author: Some(GitAuthor { name, date }),
            }),
            author: user,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Review {
    #[serde(default)]
    full_database_id: Value,
    author: Option<Actor>,
    state: Option<String>,
    submitted_at: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct File {
    path: String,
    additions: Option<i64>,
    deletions: Option<i64>,
    change_type: Option<String>,
}

/// REST's file status for GraphQL's `PatchStatus`.
fn file_status(change_type: &str) -> String {
    match change_type {
        "DELETED" => "removed".to_owned(),
        other => other.to_ascii_lowercase(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IssueComment {
    #[serde(default)]
    full_database_id: Value,
    author: Option<Actor>,
    created_at: Option<String>,
    body: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Context {
    #[serde(rename = "__typename")]
    typename: Option<String>,
    database_id: Option<i64>,
    name: Option<String>,
    status: Option<String>,
    conclusion: Option<String>,
    started_at: Option<String>,
    completed_at: Option<String>,
}

/// One page of a PR's connection (`connection` is its value in the answer; `null`:
/// nothing there, as for a commit without checks), as REST rows, with its `pageInfo`.
/// `head_sha` is the commit whose check runs these are.
pub fn connection(
    kind: Kind,
    connection: &Value,
    head_sha: &str,
) -> Result<(Rows, PageInfo), String> {
    if connection.is_null() {
        return Ok((empty(kind), PageInfo::default()));
    }
    fn page<T: serde::de::DeserializeOwned>(
        what: &str,
        value: &Value,
    ) -> Result<(Vec<T>, PageInfo), String> {
        let page: Connection<T> = decode(what, value)?;
        Ok((page.nodes.into_iter().flatten().collect(), page.page_info))
    }
    Ok(match kind {
        Kind::Commits => {
            let (nodes, info) = page::<CommitNode>("commits", connection)?;
            (
                Rows::Commits(nodes.into_iter().map(CommitNode::row).collect()),
                info,
            )
        }
        Kind::Reviews => {
            let (nodes, info) = page::<Review>("reviews", connection)?;
            let rows = nodes
                .into_iter()
                .filter_map(|r| {
                    Some(ReviewRow {
                        id: big_int(&r.full_database_id)?,
                        user: login(r.author),
                        state: r.state,
                        submitted_at: r.submitted_at,
                    })
                })
                .collect();
            (Rows::Reviews(rows), info)
        }
        Kind::Files => {
            let (nodes, info) = page::<File>("files", connection)?;
            let rows = nodes
                .into_iter()
                .map(|f| FileRow {
                    changes: f.additions.zip(f.deletions).map(|(a, d)| a + d),
                    filename: f.path,
                    status: f.change_type.as_deref().map(file_status),
                    additions: f.additions,
                    deletions: f.deletions,
                })
                .collect();
            (Rows::Files(rows), info)
        }
        Kind::IssueComments => {
            let (nodes, info) = page::<IssueComment>("comments", connection)?;
            let rows = nodes
                .into_iter()
                .filter_map(|c| {
                    Some(CommentRow {
                        id: big_int(&c.full_database_id)?,
                        user: login(c.author),
                        created_at: c.created_at,
                        body: c.body,
                    })
                })
                .collect();
            (Rows::IssueComments(rows), info)
        }
        Kind::CheckRuns => {
            let (nodes, info) = page::<Context>("check runs", connection)?;
            let lower = |s: Option<String>| s.map(|s| s.to_ascii_lowercase());
            let rows = nodes
                .into_iter()
                .filter(|c| c.typename.as_deref() == Some("CheckRun"))
                .filter_map(|c| {
                    Some(CheckRunRow {
                        id: c.database_id?,
                        name: c.name,
                        head_sha: Some(head_sha.to_owned()),
                        status: lower(c.status),
                        conclusion: lower(c.conclusion),
                        started_at: c.started_at,
                        completed_at: c.completed_at,
                    })
                })
                .collect();
            (Rows::CheckRuns(rows), info)
        }
        Kind::Pulls | Kind::Pull | Kind::ReviewComments => {
            return Err(format!("{kind} pages are not fetched through GraphQL"))
        }
    })
}

/// No rows of a kind.
fn empty(kind: Kind) -> Rows {
    match kind {
        Kind::Commits => Rows::Commits(Vec::new()),
        Kind::Reviews => Rows::Reviews(Vec::new()),
        Kind::Files => Rows::Files(Vec::new()),
        Kind::CheckRuns => Rows::CheckRuns(Vec::new()),
        Kind::ReviewComments => Rows::ReviewComments(Vec::new()),
        Kind::IssueComments => Rows::IssueComments(Vec::new()),
        Kind::Pulls => Rows::Pulls(Vec::new()),
        Kind::Pull => Rows::Commits(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_pr_takes_rests_forms() {
        let value = json!({"number": 7, "title": "t", "state": "MERGED", "isDraft": false,
            "additions": 3, "deletions": 1, "changedFiles": 2, "headRefOid": "abc",
            "headRefName": "f", "baseRefName": "main",
            "author": {"__typename": "Bot", "login": "dependabot"}});
        let row = pull(&value).unwrap();
        assert_eq!(row.state.as_deref(), Some("closed"));
        assert_eq!(row.head_sha(), Some("abc"));
        assert_eq!(row.user.unwrap().login.as_deref(), Some("dependabot[bot]"));
        let deleted = pull(&json!({"number": 8, "author": null})).unwrap();
        assert!(deleted.user.is_none());
    }

    #[test]
    fn commit_dates_become_utc_and_bot_commits_find_their_bot() {
        let value = json!({"pageInfo": {"hasNextPage": true, "endCursor": "c2"}, "nodes": [
            {"commit": {"oid": "a1", "message": "m", "author": {"name": "n",
              "email": "49699333+dependabot[bot]@users.noreply.github.com",
              "date": "2018-01-01T14:05:00+02:00", "user": null}}},
            null,
            {"commit": {"oid": "a2", "message": "m", "author": {"name": "x",
              "email": "x@example.com", "date": "2018-01-01T12:05:00Z", "user": {"login": "x"}}}}]});
        let (Rows::Commits(rows), info) = connection(Kind::Commits, &value, "").unwrap() else {
            panic!("commits")
        };
        assert_eq!(info.next(), Some("c2"));
        assert_eq!(rows.len(), 2);
        let date = |r: &CommitRow| {
            let author = r.commit.as_ref().unwrap().author.as_ref().unwrap();
            author.date.clone()
        };
        assert_eq!(date(&rows[0]).as_deref(), Some("2018-01-01T12:05:00Z"));
        assert_eq!(
            rows[0].author.as_ref().unwrap().login.as_deref(),
            Some("dependabot[bot]")
        );
        assert_eq!(rows[1].author.as_ref().unwrap().login.as_deref(), Some("x"));
    }

    #[test]
    fn files_checks_and_reviews_take_rests_forms_and_status_contexts_are_skipped() {
        let files = json!({"nodes": [{"path": "a", "additions": 2, "deletions": 3, "changeType": "DELETED"}]});
        let (Rows::Files(f), info) = connection(Kind::Files, &files, "").unwrap() else {
            panic!("files")
        };
        assert_eq!(
            (f[0].status.as_deref(), f[0].changes),
            (Some("removed"), Some(5))
        );
        assert_eq!(info.next(), None);
        let checks = json!({"nodes": [{"__typename": "StatusContext"},
            {"__typename": "CheckRun", "databaseId": 9, "name": "ci", "status": "COMPLETED",
             "conclusion": "TIMED_OUT"}]});
        let (Rows::CheckRuns(c), _) = connection(Kind::CheckRuns, &checks, "beef").unwrap() else {
            panic!("checks")
        };
        assert_eq!(c.len(), 1);
        assert_eq!(
            (c[0].status.as_deref(), c[0].conclusion.as_deref()),
            (Some("completed"), Some("timed_out"))
        );
        assert_eq!(c[0].head_sha.as_deref(), Some("beef"));
        let reviews = json!({"nodes": [{"fullDatabaseId": "123456789012", "state": "APPROVED", "author": null}]});
        let (Rows::Reviews(r), _) = connection(Kind::Reviews, &reviews, "").unwrap() else {
            panic!("reviews")
        };
        assert_eq!(r[0].id, 123_456_789_012);
        let (rows, _) = connection(Kind::CheckRuns, &Value::Null, "beef").unwrap();
        assert!(rows.is_empty(), "a commit without checks has no rollup");
    }

    proptest::proptest! {
        #[test]
        fn any_answer_is_rows_or_an_error_never_a_panic(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            if let crate::github::graphql::answer::Verdict::Data(answer) =
                crate::github::graphql::answer::read(&body)
            {
                let _ = answer.rate_limit();
                if let Some(repository) = answer.repository() {
                    let _ = pulls(repository);
                    for kind in [Kind::Commits, Kind::Reviews, Kind::Files, Kind::CheckRuns, Kind::IssueComments] {
                        let _ = connection(kind, &repository["pr1"], "");
                    }
                }
            }
        }

        #[test]
        fn any_json_node_is_rows_or_an_error_never_a_panic(
            keys in proptest::collection::vec("[a-zA-Z_]{1,14}", 0..6),
            value in "[ -~]{0,12}",
        ) {
            let mut node = serde_json::Map::new();
            for key in &keys {
                node.insert(key.clone(), json!(value));
            }
            let page = json!({"nodes": [Value::Object(node.clone())], "pageInfo": Value::Object(node.clone())});
            for kind in [Kind::Commits, Kind::Reviews, Kind::Files, Kind::CheckRuns, Kind::IssueComments] {
                let _ = connection(kind, &page, "");
            }
            let _ = pull(&Value::Object(node));
        }
    }

    #[test]
    fn a_wrong_shape_is_an_error_not_a_panic() {
        assert!(connection(Kind::Files, &json!({"nodes": [{"path": 5}]}), "").is_err());
        assert!(pulls(&json!({"pullRequests": "x"})).is_err());
        assert!(pull(&json!({"title": "no number"})).is_err());
    }
}
