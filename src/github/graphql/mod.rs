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
