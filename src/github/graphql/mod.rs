//! GitHub's GraphQL API: where it is, what a query costs, the queries seedq sends
//! ([`query`]), and how an answer becomes the same rows a REST page gives ([`answer`],
//! [`rows`]).
//!
//! One query fetches one page of many PRs' connections at once (aliases), so a PR
//! costs a few hundredths of a point where REST spends a request per page. GitHub's
//! formula (docs: "Rate limits and query limits for the GraphQL API"): each connection
//! needs as many requests as the product of the `first`/`last` of the connections above
//! it (one at the top); the cost is the sum divided by 100, rounded, at least 1.

pub mod answer;
pub mod query;
pub mod rows;
mod send;

pub use send::{GraphqlError, GraphqlFetched};

use super::Kind;

/// The most requests (by GitHub's formula) seedq puts in one query: 149 round to a
/// cost of 1 point, the fewest points per PR.
pub const MAX_REQUESTS_PER_QUERY: i64 = 149;

/// GitHub's node limit per query.
pub const MAX_NODES: i64 = 500_000;

/// Items per connection page, GitHub's largest `first`.
pub const PAGE_SIZE: i64 = 100;

/// The GraphQL endpoint of an API root: `{root}/graphql` on github.com (and the
/// bundled fake); `https://HOST/api/graphql` for GitHub Enterprise Server, whose REST
/// root is `https://HOST/api/v3`.
pub fn endpoint(api_root: &str) -> String {
    let root = api_root.trim_end_matches('/');
    match root.strip_suffix("/api/v3") {
        Some(host) => format!("{host}/api/graphql"),
        None => format!("{root}/graphql"),
    }
}

/// Requests a job's page adds to a query by GitHub's formula: one per connection, none
/// for a PR's own fields (`pullRequest(number:)` is not a connection). Review comments
/// are not fetched through GraphQL (they sit under review threads: 100 times dearer).
pub fn requests_for(kind: Kind) -> i64 {
    match kind {
        Kind::Pull => 0,
        Kind::Pulls
        | Kind::Commits
        | Kind::Reviews
        | Kind::Files
        | Kind::CheckRuns
        | Kind::IssueComments
        | Kind::ReviewComments => 1,
    }
}

/// What a light PR's first pages weigh, in the units of [`weight`].
pub const LIGHT_PR_WEIGHT: f64 = 80.0;

/// About how heavy a page is to answer, in items returned, a file counting ten (its
/// diff is computed; GitHub's queries over 10 s are ended, and file lists make them
/// long): the PR's own fields 1; a first page of commits, reviews, comments or checks
/// a few items; a later page of commits 100; a page of files what the PR's file count
/// says is left for it (`changed_files`, when known), else 10 files on a first page and
/// 100 on a later one. GraphQL batches are sized in light PRs of this weight
/// ([`LIGHT_PR_WEIGHT`]), so that a heavy PR takes the room of many light ones.
pub fn weight(kind: Kind, page: i64, changed_files: Option<i64>) -> f64 {
    let later = page > 1;
    let items = match kind {
        Kind::Pull | Kind::Pulls => 0,
        Kind::Files => {
            let files = match changed_files {
                Some(total) => (total - (page - 1) * PAGE_SIZE).clamp(0, PAGE_SIZE),
                None if later => PAGE_SIZE,
                None => 10,
            };
            10 * files
        }
        Kind::Commits if later => PAGE_SIZE,
        Kind::Commits => 10,
        _ if later => PAGE_SIZE,
        _ => 5,
    };
    (1 + items) as f64
}

/// A query's cost in points from its requests: divided by 100, rounded half up, at
/// least 1.
pub fn cost(requests: i64) -> i64 {
    ((requests.max(0) + 50) / 100).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_of_github_com_and_of_enterprise_server() {
        assert_eq!(
            endpoint("https://api.github.com"),
            "https://api.github.com/graphql"
        );
        assert_eq!(
            endpoint("https://ghe.example.com/api/v3/"),
            "https://ghe.example.com/api/graphql"
        );
        assert_eq!(
            endpoint("http://127.0.0.1:8080"),
            "http://127.0.0.1:8080/graphql"
        );
    }

    #[test]
    fn a_heavy_prs_files_weigh_like_a_dozen_light_prs() {
        let light: f64 = [Kind::Pull, Kind::Commits, Kind::Reviews, Kind::CheckRuns]
            .into_iter()
            .map(|k| weight(k, 1, Some(6)))
            .sum::<f64>()
            + weight(Kind::Files, 1, Some(6));
        assert!((light - LIGHT_PR_WEIGHT).abs() < 10.0, "{light}");
        let heavy = weight(Kind::Files, 1, Some(700));
        assert!(heavy / LIGHT_PR_WEIGHT > 12.0, "{heavy}");
        assert_eq!(weight(Kind::Files, 8, Some(750)), 501.0, "50 files left");
        assert_eq!(weight(Kind::Files, 9, Some(750)), 1.0);
        assert_eq!(weight(Kind::Files, 2, None), 1001.0);
    }

    #[test]
    fn cost_follows_githubs_formula() {
        // GitHub's worked example: 1 + 100 + 5,000 requests cost 51.
        assert_eq!(cost(5101), 51);
        assert_eq!(cost(0), 1);
        assert_eq!(cost(1), 1);
        assert_eq!(cost(149), 1);
        assert_eq!(cost(150), 2);
        assert_eq!(cost(250), 3);
        assert_eq!(cost(MAX_REQUESTS_PER_QUERY), 1);
    }
}
