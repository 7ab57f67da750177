//! The endpoints seedq fetches, as job kinds, and the URL of each one's first page.

use std::fmt;
use std::str::FromStr;

/// One kind of job: which endpoint a job fetches. The names are public (`jobs.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A page of the repository's pull-request list.
    Pulls,
    /// One pull request's detail (additions, deletions, changed_files).
    Pull,
    Commits,
    Reviews,
    Files,
    /// The check runs of the PR's head commit.
    CheckRuns,
    ReviewComments,
    IssueComments,
}

impl Kind {
    /// The per-PR endpoints fetched when `enqueue` is not told otherwise.
    pub const DEFAULT_PER_PR: [Kind; 5] = [
        Kind::Pull,
        Kind::Commits,
        Kind::Reviews,
        Kind::Files,
        Kind::CheckRuns,
    ];

    /// Every per-PR endpoint, for `--with`.
    pub const ALL_PER_PR: [Kind; 7] = [
        Kind::Pull,
        Kind::Commits,
        Kind::Reviews,
        Kind::Files,
        Kind::CheckRuns,
        Kind::ReviewComments,
        Kind::IssueComments,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Pulls => "pulls",
            Kind::Pull => "pull",
            Kind::Commits => "commits",
            Kind::Reviews => "reviews",
            Kind::Files => "files",
            Kind::CheckRuns => "check_runs",
            Kind::ReviewComments => "review_comments",
            Kind::IssueComments => "issue_comments",
        }
    }

    /// Most pages worth following: GitHub caps PR commits at 250 and files at 3,000,
    /// so a `link` header promising more is not believed.
    pub fn max_pages(self) -> i64 {
        match self {
            Kind::Pull => 1,
            Kind::Commits => 3,
            Kind::Files => 30,
            _ => i64::MAX,
        }
    }

    /// Whether a job of this kind fetches one PR's sub-resource whose rows can vanish
    /// upstream (a list, not the PR itself), and whose pages are refetched with ETags.
    pub fn is_per_pr_list(self) -> bool {
        !matches!(self, Kind::Pulls | Kind::Pull)
    }

    /// The first page's URL, as a path below the API root. `repo` is `owner/name`
    /// (validated, so it needs no escaping); `head_sha` is needed for check runs.
    pub fn first_page(self, repo: &str, pr: i64, head_sha: &str) -> String {
        match self {
            Kind::Pulls => list_page(repo, "all", false, None),
            Kind::Pull => format!("/repos/{repo}/pulls/{pr}"),
            Kind::Commits => format!("/repos/{repo}/pulls/{pr}/commits?per_page=100"),
            Kind::Reviews => format!("/repos/{repo}/pulls/{pr}/reviews?per_page=100"),
            Kind::Files => format!("/repos/{repo}/pulls/{pr}/files?per_page=100"),
            Kind::CheckRuns => {
                format!("/repos/{repo}/commits/{head_sha}/check-runs?per_page=100")
            }
            Kind::ReviewComments => format!("/repos/{repo}/pulls/{pr}/comments?per_page=100"),
            Kind::IssueComments => format!("/repos/{repo}/issues/{pr}/comments?per_page=100"),
        }
    }
}

/// The first page of a repository's PR list. A whole list goes newest-created first:
/// PRs keep their place while it is read, so none is missed. A list that stops at a date
/// (`--since`, a refresh) goes most-recently-updated first, and stops once past it.
/// `limit` below 100 asks for only that many per page.
pub fn list_page(repo: &str, state: &str, by_updated: bool, limit: Option<i64>) -> String {
    let sort = if by_updated { "updated" } else { "created" };
    let per_page = list_per_page(limit);
    format!("/repos/{repo}/pulls?state={state}&sort={sort}&direction=desc&per_page={per_page}")
}

/// PRs per list page for a round listing at most `limit` PRs.
pub fn list_per_page(limit: Option<i64>) -> i64 {
    limit.map_or(100, |n| n.clamp(1, 100))
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = String;

    fn from_str(s: &str) -> Result<Kind, String> {
        [Kind::Pulls]
            .into_iter()
            .chain(Kind::ALL_PER_PR)
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Kind::ALL_PER_PR.iter().map(|k| k.as_str()).collect();
                format!(
                    "unknown endpoint {s:?}; expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// Parses the stored comma-separated endpoint list of a repository.
pub fn parse_list(list: &str) -> Result<Vec<Kind>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(Kind::from_str)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for kind in [Kind::Pulls].into_iter().chain(Kind::ALL_PER_PR) {
            assert_eq!(kind.as_str().parse::<Kind>().unwrap(), kind);
        }
        assert!("bogus".parse::<Kind>().is_err());
    }

    #[test]
    fn every_first_page_asks_for_100_per_page_except_the_detail() {
        for kind in [Kind::Pulls].into_iter().chain(Kind::ALL_PER_PR) {
            let url = kind.first_page("o/r", 7, "abc");
            assert_eq!(url.contains("per_page=100"), kind != Kind::Pull, "{url}");
        }
    }

    #[test]
    fn a_bounded_list_is_sorted_by_update_and_a_small_limit_shrinks_the_page() {
        assert_eq!(
            list_page("o/r", "open", true, Some(5)),
            "/repos/o/r/pulls?state=open&sort=updated&direction=desc&per_page=5"
        );
        assert_eq!(
            list_page("o/r", "all", false, Some(500)),
            "/repos/o/r/pulls?state=all&sort=created&direction=desc&per_page=100"
        );
    }
}
