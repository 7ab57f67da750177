//! Listings of an organisation's or a user's repositories (`enqueue --org/--user`).
//!
//! A listing is a row of `repos` named `org:LOGIN` or `user:LOGIN`: its rounds, its
//! place in the queue, the options its repositories are enqueued with (`endpoints`,
//! `since`, `pr_state`, `pr_limit`, `priority`), and its filters (`listing`, JSON). Its
//! pages are jobs of kind `repos` (REST only), fetched, retried and resumed like every
//! other page; each page enqueues the repositories it names that pass the filters, in
//! the transaction that marks it done, exactly as `enqueue OWNER/REPO` would (a
//! repository seeded before gets a refresh). A later `enqueue --org` lists again and so
//! picks up repositories created since.

use super::db::{read, write_tx};
use super::finish::{apply_token_event, finish_in};
use super::jobs::{page_key, ClaimedJob, Outcome, TokenEvent};
use super::rounds::{enqueue_in, Enqueued, ListOptions};
use super::sql::{NewRound, QueueSql, RepoSql, TokenSql};
use super::{Result, Store};
use crate::github::{Kind, RateLimit};
use serde::{Deserialize, Serialize};

/// The job kind of a listing page.
pub const KIND: &str = "repos";

/// Whose repositories a listing lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Owner {
    Org,
    User,
}

/// A listing's filters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    pub owner: Owner,
    pub login: String,
    /// Forks are left out unless true.
    pub forks: bool,
    /// Archived repositories are left out unless true.
    pub archived: bool,
    /// A glob on the repository's name (or on `owner/name`, if it holds a `/`).
    #[serde(rename = "match")]
    pub pattern: Option<String>,
}

impl Filter {
    /// The listing's row name: `org:LOGIN` or `user:LOGIN`.
    pub fn name(&self) -> String {
        match self.owner {
            Owner::Org => format!("org:{}", self.login),
            Owner::User => format!("user:{}", self.login),
        }
    }

    /// The first page: every repository (public and, where the token may, private),
    /// by name so that the order is stable.
    fn first_page(&self) -> String {
        match self.owner {
            Owner::Org => format!(
                "/orgs/{}/repos?type=all&sort=full_name&direction=asc&per_page=100",
                self.login
            ),
            Owner::User => format!(
                "/users/{}/repos?type=owner&sort=full_name&direction=asc&per_page=100",
                self.login
            ),
        }
    }

    /// Whether a listed repository is wanted.
    pub fn wants(&self, repo: &Listed, pattern: Option<&globset::GlobMatcher>) -> bool {
        if (repo.fork && !self.forks) || (repo.archived && !self.archived) {
            return false;
        }
        let Some(pattern) = pattern else {
            return true;
        };
        let whole = self.pattern.as_deref().is_some_and(|p| p.contains('/'));
        let name = match whole {
            true => repo.full_name.as_str(),
            false => repo.full_name.split('/').nth(1).unwrap_or_default(),
        };
        pattern.is_match(name)
    }
}

/// A repository as a listing page shows it (the fields seedq reads).
#[derive(Debug, Clone, Deserialize)]
pub struct Listed {
    pub full_name: String,
    #[serde(default)]
    pub fork: bool,
    #[serde(default)]
    pub archived: bool,
}

/// What `enqueue_listing` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listing {
    /// Its first page is queued (round `round`).
    Queued { round: i64 },
    /// The listing is still in progress: nothing was added (its filters are updated).
    InProgress { round: i64 },
}

/// What a listing page enqueued.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageEnqueued {
    pub new: Vec<String>,
    pub refreshed: Vec<String>,
    pub in_progress: Vec<String>,
}

impl Store {
    /// Queues a listing's first page, unless the listing is in progress. `options` are
    /// the enqueue options its repositories get.
    pub async fn enqueue_listing(
        &self,
        filter: &Filter,
        options: &ListOptions,
        now: i64,
    ) -> Result<Listing> {
        let name = filter.name();
        let json = serde_json::to_string(filter).expect("a filter serializes");
        let endpoints = options
            .endpoints
            .as_ref()
            .unwrap_or(&Kind::DEFAULT_PER_PR.to_vec())
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(",");
        Ok(write_tx!(&self.db, |tx| 'listing: {
            let round = match tx.repo_round(&name).await? {
                None => 1,
                Some(row) => {
                    tx.set_listing(&name, &json).await?;
                    if tx.round_jobs(&name, row.round).await?.0 > 0 {
                        if let Some(priority) = options.priority {
                            tx.set_priority(&name, priority).await?;
                        }
                        break 'listing Listing::InProgress { round: row.round };
                    }
                    row.round + 1
                }
            };
            tx.start_round(NewRound {
                repo: &name,
                endpoints: &endpoints,
                now,
                round,
                since: options.since.as_deref(),
                pr_state: options.state.as_deref().unwrap_or("all"),
                pr_limit: options.limit,
                round_since: options.since.as_deref(),
                high_water: None,
                keep_list_etag: false,
                priority: options.priority,
            })
            .await?;
            tx.set_listing(&name, &json).await?;
            insert_page(tx, &name, 1, &filter.first_page(), round, now).await?;
            Listing::Queued { round }
        }))
    }

    /// A listing's filters and priority.
    pub async fn listing(&self, name: &str) -> Result<Option<(Filter, i64)>> {
        let row = read!(&self.db, |c| c.listing_of(name).await)?;
        Ok(row.and_then(|(json, priority)| Some((serde_json::from_str(&json).ok()?, priority))))
    }

    /// Marks a listing page done, queues its next page, and enqueues `repos` with the
    /// listing's options, in one transaction; `None` (nothing written) when the job's
    /// lease was taken over.
    pub async fn listed(
        &self,
        job: &ClaimedJob,
        repos: &[String],
        next: Option<&str>,
        priority: i64,
        rate: Option<RateLimit>,
        now: i64,
    ) -> Result<Option<PageEnqueued>> {
        let options = ListOptions {
            endpoints: Some(
                job.endpoints
                    .split(',')
                    .filter_map(|k| k.parse().ok())
                    .collect(),
            ),
            since: job.list_since.clone(),
            state: Some(job.list_state.clone()),
            limit: job.list_limit,
            priority: (priority != 0).then_some(priority),
        };
        let done = Outcome::Done {
            rows: None,
            etag: None,
            follow_ups: Vec::new(),
            mark: None,
        };
        Ok(write_tx!(&self.db, |tx| 'page: {
            tx.lock_tokens().await?;
            let event = TokenEvent::Answered(rate.clone());
            let own = serde_json::json!([[job.id, job.lease]]).to_string();
            apply_token_event(tx, &job.token, job.bucket, &event, &own, now).await?;
            if !finish_in(tx, job, &done, now).await? {
                break 'page None;
            }
            if let Some(next) = next {
                insert_page(tx, &job.repo, job.page + 1, next, job.round, now).await?;
            }
            let mut told = PageEnqueued::default();
            for repo in repos {
                match Enqueued::from_started(enqueue_in(tx, repo, &options, now).await?) {
                    Enqueued::New => told.new.push(repo.clone()),
                    Enqueued::Refresh { .. } => told.refreshed.push(repo.clone()),
                    Enqueued::InProgress { .. } => told.in_progress.push(repo.clone()),
                }
            }
            Some(told)
        }))
    }
}

/// Adds a listing page's job (a list page's place: after the per-PR jobs).
async fn insert_page(
    tx: &mut impl QueueSql,
    name: &str,
    page: i64,
    url: &str,
    round: i64,
    now: i64,
) -> Result<()> {
    let key = page_key(name, KIND, None, page);
    let key = match round {
        1 => key,
        round => format!("{key}|r{round}"),
    };
    let item = serde_json::json!([{
        "repo": name,
        "kind": KIND,
        "pr": null,
        "page": page,
        "url": url,
        "cursor": null,
        "rest_only": 1,
        "key": key,
        "priority": 1,
        "round": round,
    }]);
    tx.insert_jobs(&item.to_string(), now).await
}
