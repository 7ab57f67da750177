//! The queries seedq sends. Two shapes:
//! - a list page: `repository { pullRequests(first, after, states, orderBy) }` with every
//!   field the REST list and detail give (line counts included), so a PR listed
//!   through GraphQL needs no detail request;
//! - a batch: one page each of many PRs' connections, aliased: `pr12: pullRequest(number:
//!   12) { commits(first: 100) {…} files(first: 100, after: $a0) {…} }` and, for check
//!   runs, `head12: object(oid: "…") { … on Commit { statusCheckRollup { contexts(…) } } }`.
//!
//! Every `first` is at most 100 and a query holds at most [`MAX_REQUESTS_PER_QUERY`]
//! connections of 100 nodes, far under GitHub's 500,000-node limit: both hold by
//! construction (and `Query::nodes` says so). Strings from outside (owner, name,
//! cursors) travel as variables; only validated numbers and SHAs are written into the
//! text.

use super::{MAX_NODES, MAX_REQUESTS_PER_QUERY, PAGE_SIZE};
use crate::github::Kind;
use serde_json::{json, Value};
use std::fmt::Write;

/// A query ready to send, with what GitHub's formula says of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub text: String,
    pub variables: Value,
    /// Requests by GitHub's cost formula (`super::cost` turns them into points).
    pub requests: i64,
    /// Nodes it may return at most (GitHub refuses more than 500,000).
    pub nodes: i64,
}

impl Query {
    /// The POST body.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&json!({"query": self.text, "variables": self.variables}))
            .expect("a query serializes")
    }
}

/// The figures of the rate limit, in every query: they correct the local estimate.
const RATE_LIMIT: &str = "rateLimit { limit cost remaining resetAt }";

const PAGE_INFO: &str = "pageInfo { hasNextPage endCursor }";

/// Everything the `pull_requests` view holds, as REST's list and detail give it.
const PULL: &str = "fragment pull on PullRequest { number title state isDraft createdAt \
updatedAt closedAt mergedAt additions deletions changedFiles headRefOid headRefName \
baseRefName author { __typename login } }";

/// The fragment of a kind's connection page, and its name.
fn fragment(kind: Kind) -> Option<(&'static str, &'static str)> {
    Some(match kind {
        Kind::Commits => (
            "commits",
            "fragment commits on PullRequestCommitConnection { pageInfo { hasNextPage \
             endCursor } nodes { commit { oid message author { name email date user { login \
             } } } } }",
        ),
        Kind::Reviews => (
            "reviews",
            "fragment reviews on PullRequestReviewConnection { pageInfo { hasNextPage \
             endCursor } nodes { fullDatabaseId author { __typename login } state \
             submittedAt } }",
        ),
        Kind::Files => (
            "files",
            "fragment files on PullRequestChangedFileConnection { pageInfo { hasNextPage \
             endCursor } nodes { path additions deletions changeType } }",
        ),
        Kind::IssueComments => (
            "comments",
            "fragment comments on IssueCommentConnection { pageInfo { hasNextPage endCursor \
             } nodes { fullDatabaseId author { __typename login } createdAt body } }",
        ),
        Kind::CheckRuns => (
            "checks",
            "fragment checks on StatusCheckRollupContextConnection { pageInfo { hasNextPage \
             endCursor } nodes { __typename ... on CheckRun { databaseId name status \
             conclusion startedAt completedAt } } }",
        ),
        Kind::Pulls | Kind::Pull | Kind::ReviewComments => return None,
    })
}

/// The field of `PullRequest` holding a kind's connection.
pub fn pr_field(kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::Commits => Some("commits"),
        Kind::Reviews => Some("reviews"),
        Kind::Files => Some("files"),
        Kind::IssueComments => Some("comments"),
        _ => None,
    }
}

/// The alias of a PR in a batch.
pub fn pr_alias(pr: i64) -> String {
    format!("pr{pr}")
}

/// The alias of a PR's head commit in a batch (its check runs).
pub fn head_alias(pr: i64) -> String {
    format!("head{pr}")
}

/// `first` for a page: 100, less on the last page GitHub serves of a capped
/// connection (commits stop at 250, files at 3,000), so no item past a cap comes back.
pub fn page_first(kind: Kind, page: i64) -> i64 {
    let cap = match kind {
        Kind::Commits => 250,
        Kind::Files => 3000,
        _ => return PAGE_SIZE,
    };
    (cap - (page - 1) * PAGE_SIZE).clamp(1, PAGE_SIZE)
}

/// One page of a PR's connection that a batch asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageAsk {
    pub kind: Kind,
    pub pr: i64,
    pub page: i64,
    /// GraphQL's `after`, for a later page.
    pub cursor: Option<String>,
    /// The head commit, for check runs.
    pub head_sha: Option<String>,
}

/// One list page: the REST list's parameters in GraphQL's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListAsk {
    pub first: i64,
    pub after: Option<String>,
    /// `None`: every state.
    pub states: Option<Vec<&'static str>>,
    /// `CREATED_AT` or `UPDATED_AT`, newest first.
    pub order: &'static str,
}

impl ListAsk {
    /// The GraphQL form of a REST list URL (`state`, `sort`, `per_page`).
    pub fn from_rest_url(url: &str, after: Option<String>) -> Result<ListAsk, String> {
        let parsed = url::Url::parse("https://api.github.com")
            .and_then(|base| base.join(url))
            .map_err(|e| format!("bad list URL {url:?}: {e}"))?;
        let param = |name: &str| {
            parsed
                .query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        let states = match param("state").as_deref() {
            Some("open") => Some(vec!["OPEN"]),
            Some("closed") => Some(vec!["CLOSED", "MERGED"]),
            _ => None,
        };
        let order = match param("sort").as_deref() {
            Some("updated") => "UPDATED_AT",
            _ => "CREATED_AT",
        };
        let first = param("per_page")
            .and_then(|p| p.parse::<i64>().ok())
            .unwrap_or(PAGE_SIZE)
            .clamp(1, PAGE_SIZE);
        Ok(ListAsk {
            first,
            after,
            states,
            order,
        })
    }
}

/// A list page of `owner/name`.
pub fn list(owner: &str, name: &str, ask: &ListAsk) -> Query {
    let text = format!(
        "query ($owner: String!, $name: String!, $first: Int!, $after: String, \
         $states: [PullRequestState!], $order: IssueOrderField!) {{ {RATE_LIMIT} \
         repository(owner: $owner, name: $name) {{ pullRequests(first: $first, after: $after, \
         states: $states, orderBy: {{field: $order, direction: DESC}}) {{ {PAGE_INFO} nodes \
         {{ ...pull }} }} }} }} {PULL}"
    );
    Query {
        text,
        variables: json!({
            "owner": owner, "name": name, "first": ask.first, "after": ask.after,
            "states": ask.states, "order": ask.order,
        }),
        requests: 1,
        nodes: ask.first,
    }
}

/// What a batch's text is built from: its variables and fragments so far.
struct Builder {
    variables: serde_json::Map<String, Value>,
    declared: String,
    fragments: Vec<&'static str>,
}

impl Builder {
    fn fragment(&mut self, text: &'static str) {
        if !self.fragments.contains(&text) {
            self.fragments.push(text);
        }
    }

    /// ` field(first: N, after: $aK) { ...fragment }` for one connection page.
    fn connection(&mut self, ask: &PageAsk) -> String {
        let Some((name, text)) = fragment(ask.kind) else {
            return String::new();
        };
        self.fragment(text);
        let first = page_first(ask.kind, ask.page);
        let after = match &ask.cursor {
            Some(cursor) => {
                let var = format!("a{}", self.variables.len() - 2);
                self.variables.insert(var.clone(), json!(cursor));
                let _ = write!(self.declared, ", ${var}: String");
                format!(", after: ${var}")
            }
            None => String::new(),
        };
        let field = pr_field(ask.kind).unwrap_or("contexts");
        format!(" {field}(first: {first}{after}) {{ ...{name} }}")
    }
}

/// One page each of the given PR connections (and PR fields, for `Kind::Pull`) of
/// `owner/name`. Pages of one PR share its alias; a kind GraphQL does not serve, and
/// check runs without a valid head SHA, are left out (the claim never batches them).
pub fn batch(owner: &str, name: &str, asks: &[PageAsk]) -> Query {
    let mut b = Builder {
        variables: serde_json::Map::new(),
        declared: String::from("$owner: String!, $name: String!"),
        fragments: Vec::new(),
    };
    b.variables.insert("owner".into(), json!(owner));
    b.variables.insert("name".into(), json!(name));
    let mut prs: Vec<i64> = Vec::new();
    for ask in asks {
        if !prs.contains(&ask.pr) {
            prs.push(ask.pr);
        }
    }
    let mut selections = String::new();
    let (mut requests, mut nodes) = (0, 0);
    for pr in prs {
        let (mut fields, mut checks, mut head) = (String::new(), String::new(), None);
        for ask in asks.iter().filter(|a| a.pr == pr) {
            match ask.kind {
                Kind::Pull => {
                    b.fragment(PULL);
                    fields.push_str(" ...pull");
                    continue;
                }
                Kind::CheckRuns => match ask.head_sha.as_deref().filter(|s| is_sha(s)) {
                    Some(sha) => {
                        head = Some(sha);
                        checks.push_str(&b.connection(ask));
                    }
                    None => continue,
                },
                Kind::Pulls | Kind::ReviewComments => continue,
                _ => fields.push_str(&b.connection(ask)),
            }
            requests += 1;
            nodes += page_first(ask.kind, ask.page);
        }
        if !fields.is_empty() {
            let alias = pr_alias(pr);
            let _ = write!(
                selections,
                " {alias}: pullRequest(number: {pr}) {{{fields} }}"
            );
        }
        if let Some(sha) = head {
            let alias = head_alias(pr);
            let _ = write!(
                selections,
                " {alias}: object(oid: \"{sha}\") {{ ... on Commit {{ statusCheckRollup \
                 {{{checks} }} }} }}"
            );
        }
    }
    debug_assert!(requests <= MAX_REQUESTS_PER_QUERY.max(asks.len() as i64));
    debug_assert!(nodes <= MAX_NODES);
    let text = format!(
        "query ({}) {{ {RATE_LIMIT} repository(owner: $owner, name: $name) {{{selections} }} \
         }} {}",
        b.declared,
        b.fragments.join(" ")
    );
    Query {
        text,
        variables: Value::Object(b.variables),
        requests,
        nodes,
    }
}

/// A Git object ID as GitHub writes them: hex, 7 to 64 digits (validated before it is
/// written into a query's text).
pub fn is_sha(s: &str) -> bool {
    (7..=64).contains(&s.len()) && s.chars().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(kind: Kind, pr: i64) -> PageAsk {
        PageAsk {
            kind,
            pr,
            page: 1,
            cursor: None,
            head_sha: Some("0123456789abcdef0123456789abcdef01234567".into()),
        }
    }

    #[test]
    fn a_batch_aliases_each_pr_and_counts_one_request_per_connection() {
        let mut files = ask(Kind::Files, 5);
        files.page = 2;
        files.cursor = Some("Y3Vyc29yOnYyOpHOAAA=\"".into());
        let asks = [
            ask(Kind::Pull, 12),
            ask(Kind::Commits, 12),
            ask(Kind::Reviews, 12),
            ask(Kind::CheckRuns, 12),
            files,
        ];
        let q = batch("acme", "widgets", &asks);
        assert_eq!(q.requests, 4, "the PR's own fields are not a connection");
        assert_eq!(q.nodes, 400);
        assert!(q
            .text
            .contains("pr12: pullRequest(number: 12) { ...pull commits(first: 100)"));
        assert!(q
            .text
            .contains("pr5: pullRequest(number: 5) { files(first: 100, after: $a0)"));
        assert!(q
            .text
            .contains("head12: object(oid: \"0123456789abcdef0123456789abcdef01234567\")"));
        // The cursor travels as a variable, never in the text.
        assert_eq!(q.variables["a0"], "Y3Vyc29yOnYyOpHOAAA=\"");
        assert!(!q.text.contains("Y3Vyc29y"));
        assert_eq!(q.text.matches("fragment pull ").count(), 1);
        assert!(
            !q.text.contains("fragment comments"),
            "unused fragments are invalid"
        );
    }

    #[test]
    fn the_last_page_of_a_capped_connection_asks_for_no_more_than_the_cap() {
        assert_eq!(page_first(Kind::Commits, 1), 100);
        assert_eq!(page_first(Kind::Commits, 3), 50);
        assert_eq!(page_first(Kind::Files, 30), 100);
        assert_eq!(page_first(Kind::Reviews, 7), 100);
    }

    #[test]
    fn a_list_page_takes_the_rest_lists_parameters() {
        let ask = ListAsk::from_rest_url(
            "/repos/o/r/pulls?state=closed&sort=updated&direction=desc&per_page=5&page=2",
            Some("c".into()),
        )
        .unwrap();
        assert_eq!(ask.states, Some(vec!["CLOSED", "MERGED"]));
        assert_eq!((ask.order, ask.first), ("UPDATED_AT", 5));
        let all = ListAsk::from_rest_url("/repos/o/r/pulls?state=all&sort=created", None).unwrap();
        assert_eq!(
            (&all.states, all.order, all.first),
            (&None, "CREATED_AT", 100)
        );
        let q = list("o", "r", &all);
        assert_eq!((q.requests, q.nodes), (1, 100));
    }

    #[test]
    fn a_check_run_page_without_a_valid_head_sha_is_left_out() {
        let mut bad = ask(Kind::CheckRuns, 3);
        bad.head_sha = Some("\") { evil }".into());
        let q = batch("o", "r", &[bad, ask(Kind::Commits, 4)]);
        assert!(!q.text.contains("evil"));
        assert_eq!(q.requests, 1);
    }
}
