//! What a fetched page leads to: the per-PR jobs of each PR on a list page, and the
//! next page of any paginated endpoint. Pure functions of the page, so a replayed page
//! plans the same jobs (and the dedup keys make them no-ops).

use crate::github::kinds::{parse_list, Kind};
use crate::github::pages::Rows;
use crate::store::{ClaimedJob, NewJob};

/// The jobs to add after `job` fetched `rows` with `next` as its `link: rel="next"`.
pub fn plan(job: &ClaimedJob, kind: Kind, rows: &Rows, next: Option<&str>) -> Vec<NewJob> {
    let mut jobs = Vec::new();
    if let Rows::Pulls(pulls) = rows {
        // A bad endpoint list was refused at enqueue; fall back to the defaults.
        let endpoints =
            parse_list(&job.endpoints).unwrap_or_else(|_| Kind::DEFAULT_PER_PR.to_vec());
        for pull in pulls {
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
                    priority: 0,
                });
            }
        }
    }
    // An empty page ends pagination whatever the link says, and so does a link back to
    // the same page: a garbage `link` header cannot make the queue loop.
    if let Some(next) = next {
        if !rows.is_empty() && job.page < kind.max_pages() && next != job.url {
            jobs.push(NewJob {
                repo: job.repo.clone(),
                kind,
                pr_number: job.pr_number,
                page: job.page + 1,
                url: next.to_owned(),
                priority: if kind == Kind::Pulls { 1 } else { 0 },
            });
        }
    }
    jobs
}

fn is_sha(s: &str) -> bool {
    (7..=64).contains(&s.len()) && s.chars().all(|c| c.is_ascii_hexdigit())
}

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
            attempts: 1,
            max_attempts: 6,
            endpoints: "pull,commits,check_runs".into(),
            token: "f".into(),
        }
    }

    #[test]
    fn a_list_page_plans_each_endpoint_of_each_pr_and_the_next_page() {
        let body = br#"[{"number": 7, "head": {"sha": "0123456789abcdef0123456789abcdef01234567"}},
                        {"number": 8, "head": {"sha": "not a sha"}}]"#;
        let rows = parse(Kind::Pulls, body).unwrap();
        let jobs = plan(
            &job("pulls", 1),
            Kind::Pulls,
            &rows,
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
        let empty = parse(Kind::Commits, b"[]").unwrap();
        assert!(plan(
            &job("commits", 1),
            Kind::Commits,
            &empty,
            Some("https://x/next")
        )
        .is_empty());
        let one = parse(Kind::Commits, br#"[{"sha": "abc"}]"#).unwrap();
        assert!(plan(
            &job("commits", 3),
            Kind::Commits,
            &one,
            Some("https://x/next")
        )
        .is_empty());
        let same = job("commits", 1);
        assert!(plan(&same, Kind::Commits, &one, Some(&same.url.clone())).is_empty());
        assert_eq!(
            plan(&job("commits", 2), Kind::Commits, &one, Some("https://x/n")).len(),
            1
        );
    }
}
