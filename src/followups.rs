//! What a fetched page leads to: which PRs of a list page this round wants, the per-PR
//! jobs of each, and the next page of any paginated endpoint. Pure functions of the page
//! and the job, so a replayed page plans the same jobs (and the dedup keys make them
//! no-ops). Every planned job belongs to the job's round.
//!
//! A page fetched through GraphQL plans the same jobs as its REST twin, with two
//! differences: its next page carries the connection's cursor beside the REST URL of
//! that page (so either API can fetch it), and a list page plans no PR detail (`pull`)
//! job, since GraphQL's list already holds the line counts.

use crate::github::kinds::{list_per_page, parse_list, Kind};
use crate::github::pages::{PullRow, Rows};
use crate::store::{ClaimedJob, NewJob};

/// A page's rows to store and the jobs to add.
#[derive(Debug)]
pub struct Planned {
    pub rows: Rows,
    pub jobs: Vec<NewJob>,
}

/// The page after the one fetched: REST's `link: rel="next"` URL, or for a GraphQL
/// answer the REST URL of the same page with the connection's cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextPage {
    pub url: String,
    pub cursor: Option<String>,
}

impl NextPage {
    /// REST's next page, from the `link` header.
    pub fn rest(url: &str) -> NextPage {
        NextPage {
            url: url.to_owned(),
            cursor: None,
        }
    }

    /// The next page of a GraphQL connection: `cursor`, and the REST URL that holds the
    /// same items (`page + 1` of `url` at 100 per page, which GraphQL pages match).
    pub fn graphql(url: &str, page: i64, cursor: &str) -> NextPage {
        NextPage {
            url: with_page(url, page + 1),
            cursor: Some(cursor.to_owned()),
        }
    }
}

/// `url` with its `page` parameter set to `page`.
pub fn with_page(url: &str, page: i64) -> String {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let mut params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .filter(|(k, _)| k != "page")
        .collect();
    params.push(("page".to_owned(), page.to_string()));
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    format!("{path}?{query}")
}

/// What follows `job`'s page: `rows` (a list page trimmed to the PRs this round wants)
/// and the jobs they lead to, with `next` as the page after it. `by_graphql`: the page
/// came from a GraphQL answer.
pub fn plan(
    job: &ClaimedJob,
    kind: Kind,
    mut rows: Rows,
    next: Option<NextPage>,
    by_graphql: bool,
) -> Planned {
    let mut list_ended = false;
    if let Rows::Pulls(pulls) = &mut rows {
        let (wanted, ended) = wanted_prs(job, pulls);
        list_ended = ended;
        pulls.truncate(wanted);
        if by_graphql && !endpoints(job).contains(&Kind::Pull) {
            // Line counts come with the detail (`pull`): without it, none, as over REST.
            for pull in pulls.iter_mut() {
                (pull.additions, pull.deletions, pull.changed_files) = (None, None, None);
            }
        }
    }
    let jobs = jobs_for(job, kind, &rows, next, list_ended, by_graphql);
    Planned { rows, jobs }
}

/// The repository's per-PR endpoints. A bad list was refused at enqueue; the defaults
/// stand in for one.
fn endpoints(job: &ClaimedJob) -> Vec<Kind> {
    parse_list(&job.endpoints).unwrap_or_else(|_| Kind::DEFAULT_PER_PR.to_vec())
}

/// What follows a page answered 304: its rows stay, and the next page it led to last
/// time (stored with its ETag) is fetched too, since a later page may have changed.
pub fn after_not_modified(job: &ClaimedJob, kind: Kind) -> Vec<NewJob> {
    match &job.etag_next {
        Some(next) if job.page < kind.max_pages() && *next != job.url => vec![NewJob {
            repo: job.repo.clone(),
            kind,
            pr_number: job.pr_number,
            page: job.page + 1,
            url: next.clone(),
            cursor: None,
            priority: 0,
            round: job.round,
        }],
        _ => Vec::new(),
    }
}

/// How many PRs at the head of a list page the round wants, and whether the list ends
/// there. The list is sorted by `updated` (descending) whenever the round has a
/// `list_since`, so the PRs updated before it come last; `list_limit` caps the PRs
/// listed in the round. A PR exactly at the mark is kept: a change in the same second
/// must not be missed.
fn wanted_prs(job: &ClaimedJob, pulls: &[PullRow]) -> (usize, bool) {
    let mut wanted = match &job.list_since {
        Some(since) => pulls
            .iter()
            .take_while(|p| p.updated_at.as_deref().is_none_or(|u| u >= since.as_str()))
            .count(),
        None => pulls.len(),
    };
    let mut ended = wanted < pulls.len();
    if let Some(limit) = job.list_limit {
        let before = (job.page - 1).saturating_mul(list_per_page(Some(limit)));
        let left = (limit - before).max(0) as usize;
        ended |= wanted >= left;
        wanted = wanted.min(left);
    }
    (wanted, ended)
}

fn jobs_for(
    job: &ClaimedJob,
    kind: Kind,
    rows: &Rows,
    next: Option<NextPage>,
    list_ended: bool,
    by_graphql: bool,
) -> Vec<NewJob> {
    let mut jobs = Vec::new();
    if let Rows::Pulls(pulls) = rows {
        let mut endpoints = endpoints(job);
        if by_graphql {
            endpoints.retain(|&e| e != Kind::Pull);
        }
        let selected =
            |state: Option<&str>| job.list_state == "all" || state == Some(&job.list_state);
        for pull in pulls.iter().filter(|p| selected(p.state.as_deref())) {
            for &endpoint in &endpoints {
                let head_sha = pull.head_sha().unwrap_or_default();
                if endpoint == Kind::CheckRuns && !is_sha(head_sha) {
                    continue;
                }
                jobs.push(NewJob {
                    repo: job.repo.clone(),
                    kind: endpoint,
                    pr_number: Some(pull.number),
                    page: 1,
                    url: endpoint.first_page(&job.repo, pull.number, head_sha),
                    cursor: None,
                    priority: 0,
                    round: job.round,
                });
            }
        }
    }
    // An empty page ends pagination whatever the link says, and so does a link back to
    // the same page: a garbage `link` header cannot make the queue loop. A list ends
    // at the round's mark or limit.
    if let Some(next) = next {
        if !rows.is_empty() && !list_ended && job.page < kind.max_pages() && next.url != job.url {
            jobs.push(NewJob {
                repo: job.repo.clone(),
                kind,
                pr_number: job.pr_number,
                page: job.page + 1,
                url: next.url,
                cursor: next.cursor,
                priority: if kind == Kind::Pulls { 1 } else { 0 },
                round: job.round,
            });
        }
    }
    jobs
}

use crate::github::graphql::query::is_sha;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::github::pages::parse;

    fn job(kind: &str, page: i64) -> ClaimedJob {
        ClaimedJob {
            id: 1,
            lease: 1,
            repo: "o/r".into(),
            kind: kind.into(),
            pr_number: None,
            page,
            url: "/repos/o/r/pulls?per_page=100".into(),
            cursor: None,
            attempts: 1,
            max_attempts: 6,
            endpoints: "pull,commits,check_runs".into(),
            token: "f".into(),
            bucket: crate::github::Bucket::Core,
            round: 1,
            etag: None,
            etag_next: None,
            list_since: None,
            list_limit: None,
            list_state: "all".into(),
        }
    }

    fn jobs(job: &ClaimedJob, kind: Kind, body: &[u8], next: Option<&str>) -> Vec<NewJob> {
        let next = next.map(NextPage::rest);
        plan(job, kind, parse(kind, body).unwrap(), next, false).jobs
    }

    #[test]
    fn a_list_page_plans_each_endpoint_of_each_pr_and_the_next_page() {
        let body = br#"[{"number": 7, "head": {"sha": "0123456789abcdef0123456789abcdef01234567"}},
                        {"number": 8, "head": {"sha": "not a sha"}}]"#;
        let jobs = jobs(
            &job("pulls", 1),
            Kind::Pulls,
            body,
            Some("https://x/repositories/1/pulls?page=2"),
        );
        let keys: Vec<String> = jobs.iter().map(NewJob::dedup_key).collect();
        assert_eq!(
            keys,
            [
                "o/r|pull|7|1",
                "o/r|commits|7|1",
                "o/r|check_runs|7|1",
                "o/r|pull|8|1",
                "o/r|commits|8|1",
                "o/r|pulls||2"
            ]
        );
        assert_eq!(
            jobs.last().unwrap().url,
            "https://x/repositories/1/pulls?page=2"
        );
        assert_eq!(jobs.last().unwrap().priority, 1);
    }

    #[test]
    fn pagination_stops_on_empty_pages_self_links_and_caps() {
        let next = Some("https://x/next");
        assert!(jobs(&job("commits", 1), Kind::Commits, b"[]", next).is_empty());
        let one = br#"[{"sha": "abc"}]"#;
        assert!(jobs(&job("commits", 3), Kind::Commits, one, next).is_empty());
        let same = job("commits", 1);
        assert!(jobs(&same, Kind::Commits, one, Some(&same.url.clone())).is_empty());
        assert_eq!(
            jobs(&job("commits", 2), Kind::Commits, one, Some("https://x/n")).len(),
            1
        );
    }

    const THREE: &[u8] = br#"[{"number": 9, "updated_at": "2024-03-01T00:00:00Z"},
                              {"number": 8, "updated_at": "2024-02-01T00:00:00Z"},
                              {"number": 7, "updated_at": "2024-01-01T00:00:00Z"}]"#;

    #[test]
    fn a_list_stops_at_the_rounds_mark_keeping_the_pr_at_the_mark() {
        let mut list = job("pulls", 1);
        list.list_since = Some("2024-02-01T00:00:00Z".into());
        let planned = plan(
            &list,
            Kind::Pulls,
            parse(Kind::Pulls, THREE).unwrap(),
            Some(NextPage::rest("https://x/2")),
            false,
        );
        assert_eq!(planned.rows.len(), 2, "#7 is older than the mark");
        let prs: Vec<_> = planned.jobs.iter().map(|j| j.pr_number).collect();
        // pull and commits of each (no head sha, so no check runs), and no next page.
        assert_eq!(prs, [Some(9), Some(9), Some(8), Some(8)]);
    }

    #[test]
    fn a_limit_counts_the_prs_of_earlier_pages() {
        let mut list = job("pulls", 2);
        list.list_limit = Some(101);
        let planned = plan(
            &list,
            Kind::Pulls,
            parse(Kind::Pulls, THREE).unwrap(),
            Some(NextPage::rest("https://x/3")),
            false,
        );
        assert_eq!(planned.rows.len(), 1);
        assert!(planned.jobs.iter().all(|j| j.kind != Kind::Pulls));

        // A page that reaches the limit exactly is the last one too.
        let mut first = job("pulls", 1);
        first.list_limit = Some(3);
        let planned = plan(
            &first,
            Kind::Pulls,
            parse(Kind::Pulls, THREE).unwrap(),
            Some(NextPage::rest("https://x/2")),
            false,
        );
        assert_eq!(planned.rows.len(), 3);
        assert!(planned.jobs.iter().all(|j| j.kind != Kind::Pulls));
    }

    #[test]
    fn only_prs_in_the_selected_state_get_jobs() {
        let mut open = job("pulls", 1);
        open.list_state = "open".into();
        let body = br#"[{"number": 9, "state": "closed"}, {"number": 8, "state": "open"}]"#;
        let planned = plan(
            &open,
            Kind::Pulls,
            parse(Kind::Pulls, body).unwrap(),
            None,
            false,
        );
        assert_eq!(planned.rows.len(), 2, "the store updates #9 if it holds it");
        assert!(planned.jobs.iter().all(|j| j.pr_number == Some(8)));
    }

    #[test]
    fn a_refresh_plans_jobs_of_its_own_round_and_a_304_goes_on_to_the_stored_next_page() {
        let mut commits = job("commits", 1);
        commits.round = 3;
        commits.pr_number = Some(6);
        assert!(after_not_modified(&commits, Kind::Commits).is_empty());
        commits.etag_next = Some("https://x/commits?page=2".into());
        let next = after_not_modified(&commits, Kind::Commits);
        assert_eq!(next[0].dedup_key(), "o/r|commits|6|2|r3");
        assert_eq!(next[0].url, "https://x/commits?page=2");
    }
}
