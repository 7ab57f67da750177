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

use super::queue::{insert_jobs, page_key, ClaimedJob, ListMark, NewJob};
use super::{data, Result, Store};
use crate::github::kinds::list_page;
use crate::github::pages::Rows;
use crate::github::Kind;
use sqlx::SqliteConnection;

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
        let mut tx = self.begin_immediate().await?;
        let existing = sqlx::query!(
            "SELECT round, endpoints, since, pr_state, pr_limit, high_water, round_high_water
             FROM repos WHERE name = ?",
            repo
        )
        .fetch_optional(&mut *tx)
        .await?;
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
                let jobs = sqlx::query!(
                    r#"SELECT coalesce(sum(state IN ('queued', 'running')), 0) AS "pending!: i64",
                              coalesce(sum(state = 'failed'), 0) AS "failed!: i64"
                       FROM job_queue WHERE repo = ? AND round = ?"#,
                    repo,
                    row.round
                )
                .fetch_one(&mut *tx)
                .await?;
                if jobs.pending > 0 {
                    tx.rollback().await?;
                    return Ok(Enqueued::InProgress { round: row.round });
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
                } else if jobs.failed == 0 {
                    row.round_high_water.or(row.high_water)
                } else {
                    row.high_water
                };
                let keep = wanted == stored && jobs.failed == 0;
                (row.round + 1, wanted, high_water, keep)
            }
        };
        // GitHub's timestamps have one format, so the later one is the larger string.
        let round_since = settings.since.clone().max(high_water.clone());
        sqlx::query!(
            "INSERT INTO repos (name, endpoints, enqueued_at, round, since, pr_state, pr_limit,
                                round_since, round_high_water, high_water)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL, ?9)
             ON CONFLICT (name) DO UPDATE SET endpoints = ?2, round = ?4, since = ?5,
                 pr_state = ?6, pr_limit = ?7, round_since = ?8, round_high_water = NULL,
                 high_water = ?9,
                 list_etag = CASE WHEN ?10 THEN list_etag END,
                 list_etag_token = CASE WHEN ?10 THEN list_etag_token END,
                 list_etag_url = CASE WHEN ?10 THEN list_etag_url END",
            repo,
            settings.endpoints,
            now,
            round,
            settings.since,
            settings.state,
            settings.limit,
            round_since,
            high_water,
            keep_list_etag
        )
        .execute(&mut *tx)
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
        insert_jobs(&mut tx, std::slice::from_ref(&first), now).await?;
        tx.commit().await?;
        Ok(if round == 1 {
            Enqueued::New
        } else {
            Enqueued::Refresh {
                round,
                since: round_since,
            }
        })
    }
}

/// The page part of `complete`: rows (or, for a 304, marking the stored ones seen), the
/// ETag, the sweep of vanished rows after an endpoint's last page, and a list's first
/// page's high-water mark.
pub(super) async fn store_page(
    conn: &mut SqliteConnection,
    job: &ClaimedJob,
    rows: Option<&Rows>,
    etag: Option<&str>,
    follow_ups: &[NewJob],
    now: i64,
) -> Result<()> {
    let Ok(kind) = job.kind.parse::<Kind>() else {
        return Ok(());
    };
    match rows {
        Some(Rows::Pulls(pulls)) => {
            data::store_listed(conn, &job.repo, pulls, &job.list_state).await?
        }
        Some(rows) => {
            data::store_rows(conn, &job.repo, job.pr_number, rows, job.round, job.page).await?
        }
        None => {}
    }
    let Some(pr) = job.pr_number else {
        remember_high_water(conn, job, kind, rows).await?;
        // The list a refresh starts with, read at the start of its round: its ETag
        // lets the next refresh ask whether anything changed at all.
        if kind == Kind::Pulls && job.page == 1 && rows.is_some() && job.url == refresh_list(job) {
            let mark = ListMark {
                url: job.url.clone(),
                etag: etag.map(str::to_owned),
                token: job.token.clone(),
                newest_updated_at: None,
            };
            remember_mark(conn, job, &mark).await?;
        }
        return Ok(());
    };
    // Per-PR pages only: a list page answered 304 could not say which PRs to plan.
    let next = follow_ups
        .iter()
        .find(|f| f.kind == kind && f.pr_number == job.pr_number && f.page == job.page + 1)
        .map(|f| f.url.as_str());
    if rows.is_some() {
        let key = page_key(&job.repo, &job.kind, job.pr_number, job.page);
        data::remember_etag(conn, &key, etag, &job.token, next, now).await?;
    }
    if kind.is_per_pr_list() {
        let page = data::Page {
            repo: &job.repo,
            kind,
            pr,
            page: job.page,
            round: job.round,
        };
        if rows.is_none() {
            data::mark_seen(conn, &page).await?;
        }
        // The first round (1) has nothing older to sweep: every row's round is 1.
        if next.is_none() && job.round > 1 {
            data::sweep_unseen(conn, &page).await?;
        }
    }
    Ok(())
}

/// A list's first page records the newest `updated_at` on it: the round's high-water
/// mark (any later change upstream has a later `updated_at`).
async fn remember_high_water(
    conn: &mut SqliteConnection,
    job: &ClaimedJob,
    kind: Kind,
    rows: Option<&Rows>,
) -> Result<()> {
    if let (Kind::Pulls, 1, Some(Rows::Pulls(pulls))) = (kind, job.page, rows) {
        let newest = pulls.iter().filter_map(|p| p.updated_at.clone()).max();
        raise_high_water(conn, job, newest.as_deref()).await?;
    }
    Ok(())
}

/// Raises the round's high-water mark to `newest` (a mark and a list's first page may
/// both tell one; the later is right).
async fn raise_high_water(
    conn: &mut SqliteConnection,
    job: &ClaimedJob,
    newest: Option<&str>,
) -> Result<()> {
    sqlx::query!(
        "UPDATE repos SET round_high_water = max(coalesce(round_high_water, ?1), ?1)
         WHERE name = ?2 AND round = ?3 AND ?1 IS NOT NULL",
        newest,
        job.repo,
        job.round
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Store {
    /// Records a list's mark on its own (its list page could not be fetched through
    /// GraphQL and went back to the queue): it was read before any page of the round, so
    /// it still holds, and the next refresh need not ask for the whole list.
    pub async fn remember_list_mark(&self, job: &ClaimedJob, mark: &ListMark) -> Result<()> {
        let mut tx = self.begin_immediate().await?;
        remember_mark(&mut tx, job, mark).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The URL of the list page a refresh of `job`'s repository starts with.
pub fn refresh_list(job: &ClaimedJob) -> String {
    list_page(&job.repo, "all", true, job.list_limit)
}

/// Records a list's mark: the ETag of the refresh list page (or forgets an old one, if
/// the page came without), and its newest `updated_at` as the round's high-water mark.
pub(super) async fn remember_mark(
    conn: &mut SqliteConnection,
    job: &ClaimedJob,
    mark: &ListMark,
) -> Result<()> {
    raise_high_water(conn, job, mark.newest_updated_at.as_deref()).await?;
    let token = mark.etag.as_ref().map(|_| mark.token.as_str());
    let url = mark.etag.as_ref().map(|_| mark.url.as_str());
    sqlx::query!(
        "UPDATE repos SET list_etag = ?1, list_etag_token = ?2, list_etag_url = ?3
         WHERE name = ?4 AND round = ?5",
        mark.etag,
        token,
        url,
        job.repo,
        job.round
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}
