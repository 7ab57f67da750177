//! What a request's answer writes inside the group commit's transaction: each job's
//! outcome (guarded by its lease), its page's rows, ETag and follow-up jobs, and what
//! the answer said about its token.
//!
//! Invariants:
//! - Every write about a job is guarded by `WHERE id = ? AND lease = ? AND state =
//!   'running'`: a worker whose job was rescued and claimed again writes nothing, not
//!   even its page's rows.
//! - A per-PR page's ETag is stored with its rows, in the same transaction, keyed by the
//!   dedup key without the round; a 304 keeps the rows it stands for.

use super::data;
use super::jobs::{json_array, page_key, ClaimedJob, ListMark, NewJob, Outcome, TokenEvent};
use super::sql::{ChildPage, FetchedPage, PageEtag, Reported, Sql};
use super::Result;
use crate::github::kinds::list_page;
use crate::github::pages::Rows;
use crate::github::{Bucket, Kind, RateLimit};

/// Writes a job's outcome inside the caller's transaction; false (and nothing
/// written) when the lease was taken over.
pub(super) async fn finish_in(
    tx: &mut impl Sql,
    job: &ClaimedJob,
    outcome: &Outcome,
    now: i64,
) -> Result<bool> {
    let fetched = fetched_page(job, outcome);
    let written = match &fetched {
        Some(page) => tx.finish_page(job.id, job.lease, page, now).await?,
        None => tx.finish_job(job.id, job.lease, outcome, now).await?,
    };
    if written == 0 {
        // Fenced: the job was rescued and belongs to someone else now. The guarded
        // UPDATE wrote nothing, and nothing else is written.
        return Ok(false);
    }
    if let Outcome::Done {
        rows,
        etag,
        follow_ups,
        mark,
    } = outcome
    {
        let (rows, etag) = (rows.as_ref(), etag.as_deref());
        // A fetched per-PR page's rows went with its outcome.
        let unstored = rows.filter(|_| fetched.is_none());
        store_page(tx, job, rows, unstored, etag, follow_ups).await?;
        if let Some(mark) = mark {
            remember_mark(tx, job, mark).await?;
        }
        insert_jobs(tx, follow_ups, now).await?;
    }
    Ok(true)
}

/// A fetched per-PR page as its outcome stores it: its rows, and its ETag keyed by
/// `page_key` (a 304 keeps the one stored; a list page's is its repository's mark,
/// `remember_mark`).
fn fetched_page<'a>(job: &'a ClaimedJob, outcome: &'a Outcome) -> Option<FetchedPage<'a>> {
    let Outcome::Done {
        rows: Some(rows),
        etag,
        follow_ups,
        ..
    } = outcome
    else {
        return None;
    };
    let kind = job.kind.parse::<Kind>().ok()?;
    let pr = job.pr_number?;
    let etag = PageEtag {
        key: page_key(&job.repo, &job.kind, job.pr_number, job.page),
        etag: etag.as_deref(),
        token: &job.token,
        next_url: next_page(job, kind, follow_ups),
    };
    let rows = data::page_rows(&job.repo, pr, rows, job.round, job.page)?;
    Some(FetchedPage { etag, rows })
}

/// The URL of the page after `job`'s, when its answer led to one.
fn next_page<'a>(job: &ClaimedJob, kind: Kind, follow_ups: &'a [NewJob]) -> Option<&'a str> {
    follow_ups
        .iter()
        .find(|f| f.kind == kind && f.pr_number == job.pr_number && f.page == job.page + 1)
        .map(|f| f.url.as_str())
}

/// Adds jobs, in order, except those whose dedup key is already there. One statement
/// for a list page's hundreds of per-PR jobs: each statement is a round trip while
/// the write lock is held.
pub(super) async fn insert_jobs(tx: &mut impl Sql, jobs: &[NewJob], now: i64) -> Result<()> {
    let rows = jobs.iter().map(|job| {
        serde_json::json!({
            "repo": job.repo,
            "kind": job.kind.as_str(),
            "pr": job.pr_number,
            "page": job.page,
            "url": job.url,
            "cursor": job.cursor,
            "rest_only": i64::from(job.rest_only()),
            "key": job.dedup_key(),
            "priority": job.priority,
            "round": job.round,
        })
    });
    match json_array(rows) {
        Some(items) => tx.insert_jobs(&items, now).await,
        None => Ok(()),
    }
}

/// The page part of `complete`: the `unstored` rows (or, for a 304, marking the stored
/// ones seen), the sweep of vanished rows after an endpoint's last page, and a list's
/// first page's high-water mark and mark. (A fetched per-PR page's rows and ETag went
/// with its outcome: `fetched_page`.)
async fn store_page(
    tx: &mut impl Sql,
    job: &ClaimedJob,
    rows: Option<&Rows>,
    unstored: Option<&Rows>,
    etag: Option<&str>,
    follow_ups: &[NewJob],
) -> Result<()> {
    let Ok(kind) = job.kind.parse::<Kind>() else {
        return Ok(());
    };
    match unstored {
        Some(Rows::Pulls(pulls)) => {
            data::store_listed(tx, &job.repo, pulls, &job.list_state).await?
        }
        Some(rows) => {
            data::store_rows(tx, &job.repo, job.pr_number, rows, job.round, job.page).await?
        }
        None => {}
    }
    let Some(pr) = job.pr_number else {
        remember_high_water(tx, job, kind, rows).await?;
        // The list a refresh starts with, read at the start of its round: its ETag
        // lets the next refresh ask whether anything changed at all.
        if kind == Kind::Pulls && job.page == 1 && rows.is_some() && job.url == refresh_list(job) {
            let mark = ListMark {
                url: job.url.clone(),
                etag: etag.map(str::to_owned),
                token: job.token.clone(),
                newest_updated_at: None,
            };
            remember_mark(tx, job, &mark).await?;
        }
        return Ok(());
    };
    // Per-PR pages only: a list page answered 304 could not say which PRs to plan.
    let next = next_page(job, kind, follow_ups);
    if let Some(table) = data::child_rows(kind) {
        let page = ChildPage {
            rows: table,
            repo: &job.repo,
            pr,
            page: job.page,
            round: job.round,
        };
        if rows.is_none() {
            tx.mark_seen(page).await?;
        }
        if next.is_none() && job.round > 1 {
            tx.sweep_unseen(page).await?;
        }
    }
    Ok(())
}

/// A list's first page records the newest `updated_at` on it: the round's high-water
/// mark (any later change upstream has a later `updated_at`).
async fn remember_high_water(
    tx: &mut impl Sql,
    job: &ClaimedJob,
    kind: Kind,
    rows: Option<&Rows>,
) -> Result<()> {
    if let (Kind::Pulls, 1, Some(Rows::Pulls(pulls))) = (kind, job.page, rows) {
        let newest = pulls.iter().filter_map(|p| p.updated_at.clone()).max();
        raise_high_water(tx, job, newest.as_deref()).await?;
    }
    Ok(())
}

/// Raises the round's high-water mark to `newest` (a mark and a list's first page may
/// both tell one; the later is right).
pub(super) async fn raise_high_water(
    tx: &mut impl Sql,
    job: &ClaimedJob,
    newest: Option<&str>,
) -> Result<()> {
    tx.raise_high_water(&job.repo, job.round, newest).await?;
    Ok(())
}

/// The URL of the list page a refresh of `job`'s repository starts with.
pub fn refresh_list(job: &ClaimedJob) -> String {
    list_page(&job.repo, "all", true, job.list_limit)
}

/// Records a list's mark: the ETag of the refresh list page (or forgets an old one, if
/// the page came without), and its newest `updated_at` as the round's high-water mark.
pub(super) async fn remember_mark(
    tx: &mut impl Sql,
    job: &ClaimedJob,
    mark: &ListMark,
) -> Result<()> {
    raise_high_water(tx, job, mark.newest_updated_at.as_deref()).await?;
    let token = mark.etag.as_ref().map(|_| mark.token.as_str());
    let url = mark.etag.as_ref().map(|_| mark.url.as_str());
    let (etag, token, url) = (mark.etag.as_deref(), token, url);
    tx.set_list_etag(&job.repo, job.round, etag, token, url)
        .await?;
    Ok(())
}

/// Applies a token event inside the caller's transaction: an answer's rate-limit
/// figures and a refusal for quota concern `bucket`; a pause or a 401 the whole token.
/// `own`: the jobs of the request answered, as a JSON array of `[id, lease]` (see
/// `reconcile`).
pub(super) async fn apply_token_event(
    tx: &mut impl Sql,
    fingerprint: &str,
    bucket: Bucket,
    event: &TokenEvent,
    own: &str,
    now: i64,
) -> Result<()> {
    match *event {
        TokenEvent::Answered(None) => Ok(()),
        TokenEvent::Answered(Some(ref rate)) => {
            reconcile(tx, fingerprint, bucket, rate, own, now).await
        }
        TokenEvent::Exhausted { reset_at } => tx.exhaust(fingerprint, bucket, reset_at, now).await,
        TokenEvent::Paused { until } => tx.pause(fingerprint, until, now).await,
        TokenEvent::Invalid => tx.invalidate(fingerprint, now).await,
    }
}

/// Reconciles the local view of a bucket with an answer's figures. The answer's
/// `remaining` may not yet count the other requests in flight on this bucket, so while
/// any are, what they reserved is taken off it (erring low). Once none is in flight,
/// the lowest `remaining` seen in the window (the freshest answer's) is exact, and
/// replaces the estimate. A later window (larger reset) replaces what we knew; an older
/// window's answer is stale.
///
/// In flight is every job running on the bucket but the answered request's own
/// (`own`, done by then, or still running under their leases where an answer comes
/// before its job's outcome): the answer counts those. A job is done in the
/// transaction that reconciles its answer, so a request answered but not yet
/// reconciled always counts as in flight: otherwise an answer older than it would
/// raise the estimate by its request.
async fn reconcile(
    tx: &mut impl Sql,
    fingerprint: &str,
    bucket: Bucket,
    rate: &RateLimit,
    own: &str,
    now: i64,
) -> Result<()> {
    let (Some(remaining), Some(reset_at)) = (rate.remaining, rate.reset_at_ms(now)) else {
        return Ok(());
    };
    // An answer whose window has ended (`reset_at_ms` brings a past reset to `now`)
    // tells nothing about the current one. Taken for a newer window, it would undo
    // the rollover a claim already made, and the new window's quota would be counted
    // from full twice.
    if reset_at <= now {
        return Ok(());
    }
    let reported = Reported {
        remaining,
        reset_at,
        limit: rate.limit,
    };
    tx.reconcile(fingerprint, bucket, reported, own, now).await
}
