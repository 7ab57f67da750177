//! Read-only queries for `status`, the live display of `work` and the end-of-run
//! summary. They run outside any write transaction, and never block the workers, nor
//! wait for them (SQLite in WAL mode; PostgreSQL's snapshots). The display opens its
//! own one-connection, read-only handle ([`Store::open_reader`]) so that it never takes
//! a connection a worker needs.

use super::db::read;
use super::sql::{JobCount, PrCounts};
use super::sql::{ReadSql, TokenSql};
use super::{Result, Store};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

pub use super::sql::{FailedJob, WorkerRow};

/// Progress of one repository.
#[derive(Debug, Clone, Serialize)]
pub struct RepoProgress {
    pub repo: String,
    /// PRs listed so far.
    pub prs_discovered: i64,
    /// Listed PRs none of whose jobs are still queued, running or failed.
    pub prs_complete: i64,
    /// Whether the PR list itself has been read to its last page.
    pub list_complete: bool,
    /// How many PRs the repository probably has in all: exact once the list is
    /// complete; before that, estimated from the numbers listed so far (the list comes
    /// newest first, so the PRs still to list have numbers below the lowest seen).
    pub prs_expected: i64,
    pub jobs: JobCounts,
    /// The same counts per job kind (`pulls`, `pull`, `commits`, …).
    pub jobs_by_kind: BTreeMap<String, JobCounts>,
    /// Requests still to send for this repository (an estimate while listing).
    pub requests_left: i64,
    /// What GraphQL queries of this repository taught (absent before the first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub graphql: Option<GraphqlBatches>,
    /// Which tokens can see it, when some were refused (404 or 403): absent while
    /// every token tried could.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access: Option<Access>,
}

/// Which tokens were found to see a repository, and which were refused.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Access {
    /// Labels (masked) of the tokens that fetched pages of it.
    pub seen_by: Vec<String>,
    /// Labels of the tokens refused it.
    pub refused_by: Vec<String>,
    /// Every valid token was refused: no token can see it.
    pub no_token: bool,
}

/// A repository's GraphQL batches: the size learned from its timeouts and successes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GraphqlBatches {
    /// PRs one query asks for now.
    pub batch_prs: i64,
    /// Batch queries answered or timed out.
    pub queries: i64,
    /// Of which GitHub ended for taking too long.
    pub timeouts: i64,
}

/// How much [`Store::repo_progress`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// Everything (`status`, the summary).
    Full,
    /// No 304 counts: what the display reads every second.
    Brief,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct JobCounts {
    pub queued: i64,
    pub running: i64,
    pub done: i64,
    pub failed: i64,
    /// Answers that were 304 Not Modified.
    pub not_modified: i64,
}

impl JobCounts {
    fn state_mut(&mut self, state: &str) -> &mut i64 {
        match state {
            "queued" => &mut self.queued,
            "running" => &mut self.running,
            "done" => &mut self.done,
            _ => &mut self.failed,
        }
    }
}

impl Store {
    /// Every repository's progress. [`Detail::Brief`] leaves out what needs a scan
    /// of the repository's done jobs (per-kind done counts, 304s), for the display
    /// that refreshes every second.
    pub async fn repo_progress(&self, detail: Detail) -> Result<Vec<RepoProgress>> {
        // A handful of grouped queries for all repositories together: a night of
        // thousands of repositories answers as fast as one.
        let (repos, access, tokens, counts, not_modified, prs, incomplete) = read!(&self.db, |c| (
            c.repo_rows().await?,
            c.access_rows().await?,
            c.token_rows().await?,
            c.job_counts().await?,
            match detail {
                Detail::Full => c.not_modified_counts().await?,
                Detail::Brief => Vec::new(),
            },
            c.pr_counts().await?,
            c.incomplete_prs().await?
        ));
        let valid = tokens.iter().filter(|t| t.state != "invalid").count();
        let mut found: HashMap<String, Access> = HashMap::new();
        for (repo, label, sees) in access {
            let one = found.entry(repo).or_default();
            match sees {
                true => one.seen_by.push(label),
                false => one.refused_by.push(label),
            }
        }
        let mut jobs: HashMap<String, Vec<JobCount>> = HashMap::new();
        // The 304s are among the done jobs counted already: they add no job.
        let not_modified = not_modified
            .into_iter()
            .map(|row| JobCount { jobs: 0, ..row });
        for row in counts.into_iter().chain(not_modified) {
            jobs.entry(row.repo.clone()).or_default().push(row);
        }
        let mut prs: HashMap<String, PrCounts> =
            prs.into_iter().map(|p| (p.repo.clone(), p)).collect();
        let incomplete: HashMap<String, i64> = incomplete.into_iter().collect();
        let mut progress = Vec::with_capacity(repos.len());
        for repo in repos {
            let access = found
                .remove(&repo.name)
                .filter(|a| !a.refused_by.is_empty());
            let counts = jobs.remove(&repo.name).unwrap_or_default();
            let listed = prs.remove(&repo.name);
            let incomplete = incomplete.get(&repo.name).copied().unwrap_or(0);
            let mut one = one_repo(repo.name, &repo.endpoints, counts, listed, incomplete);
            one.access = access.map(|mut a| {
                a.no_token = a.seen_by.is_empty() && a.refused_by.len() >= valid;
                a
            });
            one.graphql = (repo.gql_queries > 0).then(|| GraphqlBatches {
                batch_prs: repo.gql_batch.unwrap_or(super::claim::DEFAULT_BATCH_PRS),
                queries: repo.gql_queries,
                timeouts: repo.gql_timeouts,
            });
            progress.push(one);
        }
        Ok(progress)
    }

    /// The repositories enqueued, as typed.
    pub async fn repo_names(&self) -> Result<Vec<String>> {
        read!(&self.db, |c| c.repo_names().await)
    }

    /// Failed jobs, newest first.
    pub async fn failed_jobs(&self, limit: i64) -> Result<Vec<FailedJob>> {
        read!(&self.db, |c| c.failed_jobs(limit).await)
    }

    /// How many jobs have failed, all repositories together.
    pub async fn failed_count(&self) -> Result<i64> {
        read!(&self.db, |c| c.failed_count().await)
    }

    /// Jobs completed since `since` (epoch ms) and the earliest of their completion
    /// times: the recent throughput, for a `status` run in another process.
    pub async fn done_since(&self, since: i64) -> Result<(i64, Option<i64>)> {
        read!(&self.db, |c| c.done_since(since).await)
    }

    /// The `seedq work` processes registered now (a killed one may linger until the
    /// next `work` notices it).
    pub async fn worker_rows(&self) -> Result<Vec<WorkerRow>> {
        read!(&self.db, |c| c.worker_rows().await)
    }
}

/// One repository's progress from its job counts (by kind and state) and its listed
/// PRs.
fn one_repo(
    repo: String,
    endpoints: &str,
    counts: Vec<JobCount>,
    listed: Option<PrCounts>,
    incomplete: i64,
) -> RepoProgress {
    let (discovered, lowest, highest) =
        listed.map_or((0, None, None), |p| (p.discovered, p.lowest, p.highest));
    let mut jobs = JobCounts::default();
    let mut jobs_by_kind: BTreeMap<String, JobCounts> = BTreeMap::new();
    let mut list_pending = 0;
    for row in counts {
        *jobs.state_mut(&row.state) += row.jobs;
        jobs.not_modified += row.not_modified;
        if row.state != "done" && row.kind == "pulls" {
            list_pending += row.jobs;
        }
        let kind = jobs_by_kind.entry(row.kind).or_default();
        *kind.state_mut(&row.state) += row.jobs;
        kind.not_modified += row.not_modified;
    }
    let total_jobs = jobs.queued + jobs.running + jobs.done + jobs.failed;
    let list_complete = list_pending == 0;
    let prs_expected = if list_complete {
        discovered
    } else {
        discovered + unlisted_estimate(discovered, lowest, highest)
    };
    // Requests a PR costs, as seen so far (extra pages included); before any PR is
    // listed, one per endpoint.
    // Jobs that are not list pages: the done list pages are about one per 100 PRs.
    let per_pr_jobs = total_jobs - list_pending - (discovered + 99) / 100;
    let per_pr = if discovered > 0 && per_pr_jobs > 0 {
        per_pr_jobs as f64 / discovered as f64
    } else {
        endpoints
            .split(',')
            .filter(|e| !e.is_empty())
            .count()
            .max(1) as f64
    };
    let unlisted = (prs_expected - discovered) as f64;
    let requests_left = jobs.queued
        + jobs.running
        + (unlisted * per_pr).round() as i64
        + (unlisted / 100.0).ceil() as i64;
    RepoProgress {
        repo,
        prs_discovered: discovered,
        prs_complete: (discovered - incomplete).max(0),
        list_complete,
        prs_expected,
        jobs,
        jobs_by_kind,
        requests_left,
        graphql: None,
        access: None,
    }
}

/// PRs not listed yet, estimated from the listed ones: the list runs newest first, so
/// the rest have numbers below `lowest`; PR numbers are shared with issues, so only
/// the share of numbers that were PRs in the listed range counts.
fn unlisted_estimate(discovered: i64, lowest: Option<i64>, highest: Option<i64>) -> i64 {
    match (lowest, highest) {
        (Some(lowest), Some(highest)) if highest >= lowest && discovered > 0 => {
            let density = discovered as f64 / (highest - lowest + 1) as f64;
            ((lowest - 1) as f64 * density.min(1.0)).round() as i64
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::unlisted_estimate;

    #[test]
    fn unlisted_prs_are_estimated_from_the_listed_numbers() {
        // 100 listed, numbers 201..=300: 200 more below.
        assert_eq!(unlisted_estimate(100, Some(201), Some(300)), 200);
        // Half the numbers were issues: about half of what lies below is PRs.
        assert_eq!(unlisted_estimate(50, Some(201), Some(300)), 100);
        assert_eq!(unlisted_estimate(0, None, None), 0);
        assert_eq!(unlisted_estimate(10, Some(1), Some(10)), 0);
    }
}
