//! Rounds: a repository is seeded in rounds (the first seed is round 1, each refresh
//! one more). `enqueue_repo` starts a round; `store_page` records, as a round's pages
//! complete, what the next round needs: the ETag of each per-PR page (with the
//! fingerprint of the token that got it), which child rows each round saw (rows a
//! round did not see on a PR it refetched in full are gone upstream), and the newest
//! `updated_at` on the list's first page, the round's high-water mark.
//!
//! A refresh lists PRs sorted by `updated`, newest first, and stops at the high-water
//! mark of the last round that completed without failures: every change upstream after
//! that round's list was read has a later `updated_at`, so nothing is missed, and a PR
//! exactly at the mark is fetched again (its pages mostly answer 304, for free).

use super::db::write_tx;
use super::finish::{insert_jobs, remember_mark};
use super::jobs::{ClaimedJob, ListMark, NewJob};
use super::sql::{NewRound, Sql};
use super::{Result, Store};
use crate::github::kinds::list_page;
use crate::github::Kind;

pub use super::finish::refresh_list;

/// How a repository is listed: `enqueue`'s options. A `None` keeps the stored value (or
/// the default, for a new repository).
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub endpoints: Option<Vec<Kind>>,
    /// `YYYY-MM-DDTHH:MM:SSZ`: only PRs updated since.
    pub since: Option<String>,
    /// open, closed or all.
    pub state: Option<String>,
    pub limit: Option<i64>,
    /// `--priority`: a higher one goes ahead of the repositories enqueued before.
    pub priority: Option<i64>,
}

/// A repository's stored listing settings.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RepoSettings {
    endpoints: String,
    since: Option<String>,
    state: String,
    limit: Option<i64>,
}

impl RepoSettings {
    fn with(mut self, options: &ListOptions) -> RepoSettings {
        if let Some(kinds) = &options.endpoints {
            let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
            self.endpoints = names.join(",");
        }
        if options.since.is_some() {
            self.since.clone_from(&options.since);
        }
        if let Some(state) = &options.state {
            self.state.clone_from(state);
        }
        if options.limit.is_some() {
            self.limit = options.limit;
        }
        self
    }
}

/// What `enqueue_repo` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// A new repository: its first seed is queued.
    New,
    /// A seeded repository: a refresh (`round`) is queued that lists PRs updated since
    /// `since` (None: every PR, when settings changed or no round completed cleanly).
    Refresh { round: i64, since: Option<String> },
    /// The repository's current round is still queued or running: nothing was added.
    InProgress { round: i64 },
}

impl Store {
    /// Records a repository and the first list page of its next round: round 1 (the
    /// first seed) for a new repository, a refresh for one whose current round has
    /// nothing queued or running. A refresh lists PRs down to the high-water mark of the
    /// last round that completed without failures (or `--since`, if later); settings
    /// that changed make it list every PR again. While a round is in progress nothing
    /// is written.
    pub async fn enqueue_repo(
        &self,
        repo: &str,
        options: &ListOptions,
        now: i64,
    ) -> Result<Enqueued> {
        let started = write_tx!(&self.db, |tx| enqueue_in(tx, repo, options, now).await?);
        Ok(Enqueued::from_started(started))
    }
}

impl Enqueued {
    /// What `enqueue_in` did, told.
    pub(super) fn from_started(started: std::result::Result<(i64, Option<String>), i64>) -> Self {
        match started {
            Err(round) => Enqueued::InProgress { round },
            Ok((1, _)) => Enqueued::New,
            Ok((round, since)) => Enqueued::Refresh { round, since },
        }
    }
}

/// `enqueue_repo` inside the caller's transaction: the round started (its number and
/// the time its list goes back to), or `Err(round)` while the current one is in
/// progress.
pub(super) async fn enqueue_in(
    tx: &mut impl Sql,
    repo: &str,
    options: &ListOptions,
    now: i64,
) -> Result<std::result::Result<(i64, Option<String>), i64>> {
    Ok('round: {
        let existing = tx.repo_round(repo).await?;
        let defaults = RepoSettings {
            endpoints: Kind::DEFAULT_PER_PR.map(Kind::as_str).join(","),
            since: None,
            state: "all".to_owned(),
            limit: None,
        };
        // The refresh list's ETag says "nothing changed since the last round started":
        // worth keeping only when that round completed cleanly with these settings.
        let (round, settings, high_water, keep_list_etag) = match existing {
            None => (1, defaults.with(options), None, false),
            Some(row) => {
                let (pending, failed) = tx.round_jobs(repo, row.round).await?;
                if pending > 0 {
                    // Nothing written but a new priority.
                    if let Some(priority) = options.priority {
                        tx.set_priority(repo, priority).await?;
                    }
                    break 'round Err(row.round);
                }
                let stored = RepoSettings {
                    endpoints: row.endpoints,
                    since: row.since,
                    state: row.pr_state,
                    limit: row.pr_limit,
                };
                let wanted = stored.clone().with(options);
                let high_water = if wanted != stored {
                    None
                } else if failed == 0 {
                    row.round_high_water.or(row.high_water)
                } else {
                    row.high_water
                };
                let keep = wanted == stored && failed == 0;
                (row.round + 1, wanted, high_water, keep)
            }
        };
        // GitHub's timestamps have one format, so the later one is the larger string.
        let round_since = settings.since.clone().max(high_water.clone());
        tx.start_round(NewRound {
            repo,
            endpoints: &settings.endpoints,
            now,
            round,
            since: settings.since.as_deref(),
            pr_state: &settings.state,
            pr_limit: settings.limit,
            round_since: round_since.as_deref(),
            high_water: high_water.as_deref(),
            keep_list_etag,
            priority: options.priority,
        })
        .await?;
        let first = NewJob {
            repo: repo.to_owned(),
            kind: Kind::Pulls,
            pr_number: None,
            page: 1,
            // A refresh lists every state, so that a PR that left the selection (an
            // open PR now closed) has its row updated; only selected PRs are fetched.
            url: list_page(
                repo,
                if round > 1 { "all" } else { &settings.state },
                round_since.is_some(),
                settings.limit,
            ),
            cursor: None,
            priority: 1,
            round,
        };
        insert_jobs(tx, std::slice::from_ref(&first), now).await?;
        Ok((round, round_since))
    })
}

impl Store {
    /// Records a list's mark on its own (its list page could not be fetched through
    /// GraphQL and went back to the queue): it was read before any page of the round, so
    /// it still holds, and the next refresh need not ask for the whole list.
    pub async fn remember_list_mark(&self, job: &ClaimedJob, mark: &ListMark) -> Result<()> {
        write_tx!(&self.db, |tx| remember_mark(tx, job, mark).await?);
        Ok(())
    }
}
