//! One GraphQL batch: build the query for its jobs, send it, and give each job the
//! outcome its part of the answer calls for, all in one transaction with the token's
//! new GraphQL figures and what the answer taught about the repository's batch size.
//!
//! - Data: each job's connection page becomes REST rows and follow-ups (its next page
//!   keeps the cursor). A job whose alias has an error is not stored: NOT_FOUND and
//!   FORBIDDEN fail it as REST's 404 and 403 would, anything else retries it.
//! - `RATE_LIMITED` (HTTP 200): the token's GraphQL bucket is spent until its reset;
//!   its REST bucket goes on. A secondary limit pauses the token on both APIs.
//! - A timeout (504, or a 502 whose body says so; charged): the jobs go back with their
//!   attempts, and the repository's batch halves. A PR that times out alone gets its
//!   files over REST (or all its pages, if files were not in the query). A bare 502 is
//!   retried like a server error, and taken for a timeout when the same jobs meet it
//!   again.
//! - No GraphQL here (404/410, an answer that is not GraphQL, a query the server will
//!   not run): the jobs go back untouched, and `auto` goes on over REST, saying so once;
//!   `--api graphql` stops.

use super::rest::{describe, transient};
use super::Context;
use crate::followups::{self, NextPage};
use crate::github::graphql::answer::{Answer, Verdict};
use crate::github::graphql::query::{self, ListAsk, PageAsk};
use crate::github::graphql::rows;
use crate::github::pages::Rows;
use crate::github::{FetchError, GraphqlError, Kind, RateLimit};
use crate::pool::lanes::Answer as LaneAnswer;
use crate::store::queue::{Finished, ListMark, TokenEvent};
use crate::store::{now_ms, rounds, Apis, Batch, BatchFeedback, ClaimedJob, Outcome, Work};
use std::sync::atomic::Ordering;

/// How long a token waits after `RATE_LIMITED` when no reset time came with it.
const RATE_LIMITED_WAIT_MS: i64 = 60_000;

/// Runs one claimed batch to its outcomes; returns the worker's next work when the
/// completion claimed it in the same transaction.
pub(super) async fn run_batch(ctx: &Context, batch: Batch) -> crate::store::Result<Option<Work>> {
    let Some(first) = batch.jobs.first() else {
        return Ok(None);
    };
    let Some(token) = ctx.pool.get(&first.token) else {
        super::release(ctx, batch.jobs).await?;
        return Ok(None);
    };
    let (owner, name) = first.repo.split_once('/').unwrap_or((&first.repo, ""));
    let list = first.kind == Kind::Pulls.as_str();
    let query = if list {
        match ListAsk::from_rest_url(&first.url, first.cursor.clone()) {
            Ok(ask) => query::list(owner, name, &ask),
            Err(e) => {
                let outcomes = to_rest(batch.jobs, Some(e));
                return finish(ctx, outcomes, TokenEvent::Answered(None), None).await;
            }
        }
    } else {
        query::batch(owner, name, &asks(&batch.jobs))
    };
    // A first seed's list: its mark first, before any PR of the round is fetched.
    let mark = match (&batch.mark, list) {
        (Some(fingerprint), true) => Some(fetch_mark(ctx, fingerprint, first).await),
        _ => None,
    };
    ctx.counters.queries.fetch_add(1, Ordering::Relaxed);
    ctx.counters
        .points
        .fetch_add(batch.points as u64, Ordering::Relaxed);
    let used = token.secret();
    let sent_at = now_ms();
    let send = ctx.client.graphql(token, &query);
    tokio::pin!(send);
    let grace = ctx.settings.shutdown_grace;
    let fetched = tokio::select! {
        fetched = &mut send => fetched,
        _ = async { ctx.shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
            super::release(ctx, batch.jobs).await?;
            return Ok(None);
        }
    };
    ctx.counters.requests.fetch_add(1, Ordering::Relaxed);
    ctx.answered(&first.token, lane_answer(&fetched.result), sent_at);
    let now = now_ms();
    let (size, full) = (batch.size, batch.full);
    let repo = batch.jobs[0].repo.clone();
    let feedback = |timed_out| {
        (!list).then(|| BatchFeedback {
            repo: repo.clone(),
            prs: size,
            full,
            timed_out,
        })
    };
    let rate = fetched.rate;
    let (mark, mark_token) = match mark {
        Some((mark, token)) => (mark, token),
        None => (None, None),
    };
    // The mark was read before any page of the round: it holds whatever became of the
    // list query (which goes back to the queue unless it brought data).
    if let (Some(mark), false) = (&mark, matches!(fetched.result, Ok(Verdict::Data(_)))) {
        ctx.store.remember_list_mark(&batch.jobs[0], mark).await?;
    }
    match fetched.result {
        Ok(Verdict::Data(answer)) => {
            if !ctx.graphql_answered.swap(true, Ordering::Relaxed) {
                let api_root = ctx.client.api_root();
                ctx.store.record_graphql_available(api_root, now).await?;
            }
            let rate = answer.rate_limit().or(rate);
            if answer.repository().is_none() {
                // The repository resolved to null: gone, renamed, or hidden from this
                // token. REST tells which, page by page, and tries the other tokens.
                let errors: Vec<String> = answer.errors.iter().map(|e| e.describe()).collect();
                let message = format!("GraphQL: repository is null: {}", errors.join("; "));
                tracing::debug!("{repo}: {message}; these pages go to REST");
                let outcomes = to_rest(batch.jobs, Some(message));
                return finish(ctx, outcomes, TokenEvent::Answered(rate), None).await;
            }
            ctx.saw(&repo, &batch.jobs[0].token).await?;
            let outcomes = batch
                .jobs
                .into_iter()
                .map(|job| {
                    let mut outcome = outcome(ctx, &job, &answer, list, now);
                    if let Outcome::Done { mark: with, .. } = &mut outcome {
                        with.clone_from(&mark);
                    }
                    (job, outcome)
                })
                .collect();
            let mut finished = Finished::new(outcomes, TokenEvent::Answered(rate));
            finished.feedback = feedback(false);
            finished.mark_token = mark_token;
            write(ctx, finished).await
        }
        Ok(Verdict::RateLimited(message)) => {
            ctx.counters.refused.fetch_add(1, Ordering::Relaxed);
            let reset_at = rate
                .as_ref()
                .and_then(|r| r.reset_at_ms(now))
                .filter(|&at| at > now)
                .unwrap_or(now + RATE_LIMITED_WAIT_MS);
            tracing::debug!(token = %token, "GraphQL points spent until {reset_at}: {message}");
            snooze(ctx, batch.jobs, TokenEvent::Exhausted { reset_at }, now).await
        }
        Ok(Verdict::Secondary(_)) => {
            let pause = crate::github::error::SECONDARY_DEFAULT_PAUSE;
            tracing::warn!(token = %token, "secondary rate limit: nothing more on this token for {} s", pause.as_secs());
            let until = now + pause.as_millis() as i64;
            snooze(ctx, batch.jobs, TokenEvent::Paused { until }, now).await
        }
        Ok(Verdict::Failed(message)) => {
            let outcomes = retry_all(ctx, batch.jobs, &message, now);
            finish(ctx, outcomes, TokenEvent::Answered(rate), None).await
        }
        Ok(Verdict::Rejected(reason) | Verdict::NotGraphql(reason))
        | Err(GraphqlError::Unavailable(reason)) => {
            graphql_unavailable(ctx, &reason).await?;
            super::release(ctx, batch.jobs).await?;
            Ok(None)
        }
        // A bare 502 met by the same jobs again is taken for a timeout behind a proxy.
        Err(GraphqlError::BadGateway(message)) if batch.jobs[0].attempts < 2 => {
            let outcomes = retry_all(ctx, batch.jobs, &message, now);
            finish(ctx, outcomes, TokenEvent::Answered(rate), None).await
        }
        Err(GraphqlError::Timeout(message) | GraphqlError::BadGateway(message)) => {
            ctx.counters.timeouts.fetch_add(1, Ordering::Relaxed);
            let outcomes = if list {
                retry_all(ctx, batch.jobs, &message, now)
            } else {
                after_timeout(batch.jobs, &message, now)
            };
            finish(ctx, outcomes, TokenEvent::Answered(rate), feedback(true)).await
        }
        Err(GraphqlError::Fetch(error)) => {
            fetch_error(ctx, batch.jobs, error, rate, &used, now).await
        }
    }
}

/// What a GraphQL answer says of the token's concurrency.
fn lane_answer(result: &Result<Verdict, GraphqlError>) -> LaneAnswer {
    match result {
        Ok(Verdict::Secondary(_)) => LaneAnswer::Secondary {
            pause_ms: crate::github::error::SECONDARY_DEFAULT_PAUSE.as_millis() as i64,
        },
        Ok(_) => LaneAnswer::Taken,
        Err(GraphqlError::Fetch(error)) => super::answer_of(Some(error)),
        Err(_) => LaneAnswer::Neutral,
    }
}

/// The pages of a batch's jobs, as the query builder takes them.
fn asks(jobs: &[ClaimedJob]) -> Vec<PageAsk> {
    jobs.iter()
        .filter_map(|job| {
            Some(PageAsk {
                kind: job.kind.parse().ok()?,
                pr: job.pr_number?,
                page: job.page,
                cursor: job.cursor.clone(),
                head_sha: head_sha(&job.url),
            })
        })
        .collect()
}

/// The commit of a check-runs URL (`…/commits/{sha}/check-runs…`).
fn head_sha(url: &str) -> Option<String> {
    let path = url.split('?').next()?;
    let mut parts = path.rsplit('/');
    (parts.next()? == "check-runs").then_some(())?;
    Some(parts.next()?.to_owned())
}

/// What one job's part of a data answer calls for.
fn outcome(ctx: &Context, job: &ClaimedJob, answer: &Answer, list: bool, now: i64) -> Outcome {
    let Ok(kind) = job.kind.parse::<Kind>() else {
        return Outcome::Fail {
            error: format!("unknown job kind {:?}", job.kind),
        };
    };
    let pr = job.pr_number.unwrap_or_default();
    let alias = if list {
        "pullRequests".to_owned()
    } else if kind == Kind::CheckRuns {
        query::head_alias(pr)
    } else {
        query::pr_alias(pr)
    };
    let errors = answer.errors_for(&alias);
    if !errors.is_empty() {
        let message: Vec<String> = errors.iter().map(|e| e.describe()).collect();
        let message = format!("{}: GraphQL: {}", describe(job), message.join("; "));
        return if errors.iter().all(|e| e.is_final()) {
            ctx.counters.failed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("{message}");
            Outcome::Fail { error: message }
        } else {
            transient(ctx, job, &message, now)
        };
    }
    let page = match page_of(job, kind, answer, &alias, list) {
        Ok(page) => page,
        Err(e) => return transient(ctx, job, &format!("{}: {e}", describe(job)), now),
    };
    let (rows, next) = match page {
        Some(page) => page,
        None => {
            let error = format!(
                "{}: not found (GraphQL answered null), or the tokens cannot see it",
                describe(job)
            );
            tracing::warn!("{error}");
            ctx.counters.failed.fetch_add(1, Ordering::Relaxed);
            return Outcome::Fail { error };
        }
    };
    let next = next.map(|cursor| NextPage::graphql(&job.url, job.page, &cursor));
    let planned = followups::plan(job, kind, rows, next, true);
    ctx.counters.pages.fetch_add(1, Ordering::Relaxed);
    Outcome::Done {
        rows: Some(planned.rows),
        etag: None,
        follow_ups: planned.jobs,
        mark: None,
    }
}

/// A job's rows in the answer and the cursor of its next page; `None` when what it
/// asks about is not there (the repository or the PR resolved to null).
fn page_of(
    job: &ClaimedJob,
    kind: Kind,
    answer: &Answer,
    alias: &str,
    list: bool,
) -> Result<Option<(Rows, Option<String>)>, String> {
    let Some(repository) = answer.repository() else {
        return Ok(None);
    };
    if list {
        let (pulls, info) = rows::pulls(repository)?;
        return Ok(Some((Rows::Pulls(pulls), info.next().map(str::to_owned))));
    }
    let node = &repository[alias];
    if kind == Kind::CheckRuns {
        // No commit, or a commit without checks: no rows.
        let contexts = &node["statusCheckRollup"]["contexts"];
        let sha = head_sha(&job.url).unwrap_or_default();
        let (rows, info) = rows::connection(kind, contexts, &sha)?;
        return Ok(Some((rows, info.next().map(str::to_owned))));
    }
    if node.is_null() {
        return Ok(None);
    }
    if kind == Kind::Pull {
        return Ok(Some((Rows::Pull(Box::new(rows::pull(node)?)), None)));
    }
    let field = query::pr_field(kind).ok_or_else(|| format!("{kind} is not a PR connection"))?;
    let (rows, info) = rows::connection(kind, &node[field], "")?;
    Ok(Some((rows, info.next().map(str::to_owned))))
}

fn retry_all(
    ctx: &Context,
    jobs: Vec<ClaimedJob>,
    message: &str,
    now: i64,
) -> Vec<(ClaimedJob, Outcome)> {
    jobs.into_iter()
        .map(|job| {
            let outcome = transient(ctx, &job, message, now);
            (job, outcome)
        })
        .collect()
}

/// After a timeout: every job back at once with its attempt (the query, not the job,
/// was too heavy; the batch halves). A PR that timed out alone sends its files (or, if
/// files were not asked for, all its pages) to REST.
fn after_timeout(jobs: Vec<ClaimedJob>, message: &str, now: i64) -> Vec<(ClaimedJob, Outcome)> {
    let mut prs: Vec<Option<i64>> = jobs.iter().map(|j| j.pr_number).collect();
    prs.sort_unstable();
    prs.dedup();
    let alone = prs.len() <= 1;
    let has_files = jobs.iter().any(|j| j.kind == Kind::Files.as_str());
    jobs.into_iter()
        .map(|job| {
            let to_rest = alone && (!has_files || job.kind == Kind::Files.as_str());
            if to_rest {
                tracing::info!(
                    "{}: GitHub's GraphQL timed out on this PR alone; fetching it over REST",
                    describe(&job)
                );
            }
            let outcome = Outcome::Requeue {
                run_at: now,
                refund_attempt: true,
                error: Some(message.to_owned()),
                rest_only: to_rest,
            };
            (job, outcome)
        })
        .collect()
}

/// Jobs GraphQL could not fetch, handed to REST (attempt refunded).
fn to_rest(jobs: Vec<ClaimedJob>, error: Option<String>) -> Vec<(ClaimedJob, Outcome)> {
    let now = now_ms();
    jobs.into_iter()
        .map(|job| {
            let outcome = Outcome::Requeue {
                run_at: now,
                refund_attempt: true,
                error: error.clone(),
                rest_only: true,
            };
            (job, outcome)
        })
        .collect()
}

/// What a failed request means for the batch, as for a REST page: quota, a secondary
/// limit and a 401 snooze the jobs (the token takes the blow); a network error retries
/// them; a final refusal (a 403 without a rate limit, a 422) hands them to REST, which
/// says what is wrong page by page.
async fn fetch_error(
    ctx: &Context,
    jobs: Vec<ClaimedJob>,
    error: FetchError,
    rate: Option<RateLimit>,
    used: &str,
    now: i64,
) -> crate::store::Result<Option<Work>> {
    let token = jobs[0].token.clone();
    match error {
        FetchError::Exhausted { reset_at_ms } => {
            ctx.counters.refused.fetch_add(1, Ordering::Relaxed);
            let reset_at = reset_at_ms.unwrap_or(now + RATE_LIMITED_WAIT_MS);
            snooze(ctx, jobs, TokenEvent::Exhausted { reset_at }, now).await
        }
        FetchError::Secondary { retry_after } => {
            tracing::warn!(
                "secondary rate limit: nothing more on this token for {} s",
                retry_after.as_secs()
            );
            let until = now + retry_after.as_millis() as i64;
            snooze(ctx, jobs, TokenEvent::Paused { until }, now).await
        }
        FetchError::BadCredentials => {
            let event = ctx.bad_credentials(&token, used).await;
            snooze(ctx, jobs, event, now).await
        }
        FetchError::Transient(message) => {
            let outcomes = retry_all(ctx, jobs, &message, now);
            finish(ctx, outcomes, TokenEvent::Answered(rate), None).await
        }
        FetchError::Fatal(message) | FetchError::Refused(message) => {
            tracing::debug!("GraphQL refused ({message}); these pages go to REST");
            let outcomes = to_rest(jobs, Some(message));
            finish(ctx, outcomes, TokenEvent::Answered(rate), None).await
        }
    }
}

async fn snooze(
    ctx: &Context,
    jobs: Vec<ClaimedJob>,
    event: TokenEvent,
    now: i64,
) -> crate::store::Result<Option<Work>> {
    let outcomes = jobs
        .into_iter()
        .map(|job| (job, Outcome::snoozed(now)))
        .collect();
    finish(ctx, outcomes, event, None).await
}

/// Writes the batch's outcomes with the token's event and what a timeout or an answer
/// taught about the batch size.
async fn finish(
    ctx: &Context,
    outcomes: Vec<(ClaimedJob, Outcome)>,
    event: TokenEvent,
    feedback: Option<BatchFeedback>,
) -> crate::store::Result<Option<Work>> {
    let mut finished = Finished::new(outcomes, event);
    finished.feedback = feedback;
    write(ctx, finished).await
}

/// Writes what a batch came to (claiming the worker's next work unless stopping).
async fn write(ctx: &Context, finished: Finished) -> crate::store::Result<Option<Work>> {
    let jobs = finished.outcomes.len();
    let next = ctx.completion_claim();
    let (written, work) = ctx.store.finish(finished, next, now_ms()).await?;
    ctx.claimed(work.as_ref());
    ctx.counters
        .fenced
        .fetch_add((jobs - written) as u64, Ordering::Relaxed);
    Ok(work)
}

/// Fetches a first seed's list mark over REST (see `ListMark`): the list a refresh
/// starts with, for its ETag and newest `updated_at`. A failure only costs the
/// optimisation: the first refresh then lists without `If-None-Match`.
async fn fetch_mark(
    ctx: &Context,
    fingerprint: &str,
    job: &ClaimedJob,
) -> (Option<ListMark>, Option<(String, TokenEvent)>) {
    let Some(token) = ctx.pool.get(fingerprint) else {
        return (None, None);
    };
    let url = rounds::refresh_list(job);
    let Ok(resolved) = ctx.client.resolve(&url) else {
        return (None, None);
    };
    let used = token.secret();
    let fetched = ctx.client.get(&resolved, token, None).await;
    ctx.counters.requests.fetch_add(1, Ordering::Relaxed);
    let now = now_ms();
    let (mark, event) = match fetched.result {
        Ok(crate::github::Body::Page { bytes, etag, .. }) => {
            let newest = match crate::github::pages::parse(Kind::Pulls, &bytes) {
                Ok(Rows::Pulls(pulls)) => pulls.into_iter().filter_map(|p| p.updated_at).max(),
                _ => None,
            };
            let mark = ListMark {
                url,
                etag,
                token: fingerprint.to_owned(),
                newest_updated_at: newest,
            };
            (Some(mark), TokenEvent::Answered(fetched.rate))
        }
        Err(FetchError::Exhausted { reset_at_ms }) => {
            let reset_at = reset_at_ms.unwrap_or(now + RATE_LIMITED_WAIT_MS);
            (None, TokenEvent::Exhausted { reset_at })
        }
        Err(FetchError::Secondary { retry_after }) => {
            let until = now + retry_after.as_millis() as i64;
            (None, TokenEvent::Paused { until })
        }
        Err(FetchError::BadCredentials) => (None, ctx.bad_credentials(fingerprint, &used).await),
        Err(e) => {
            tracing::debug!("{}: the list's mark: {e}", describe(job));
            (None, TokenEvent::Answered(fetched.rate))
        }
        Ok(crate::github::Body::NotModified) => (None, TokenEvent::Answered(fetched.rate)),
    };
    (mark, Some((fingerprint.to_owned(), event)))
}

/// The server cannot serve seedq's GraphQL: `auto` goes on over REST (said once, and
/// recorded for `status`), `--api graphql` stops.
async fn graphql_unavailable(ctx: &Context, reason: &str) -> crate::store::Result<()> {
    let first = !ctx.graphql_gone.swap(true, Ordering::SeqCst);
    if !first {
        return Ok(());
    }
    ctx.store
        .record_graphql_unavailable(ctx.client.api_root(), reason, now_ms())
        .await?;
    if ctx.settings.apis == Apis::Graphql {
        tracing::error!(
            "GraphQL is not available here ({reason}); stopping (use --api auto or rest)"
        );
        ctx.stop.cancel();
    } else {
        tracing::warn!("GraphQL is not available here ({reason}); going on over REST");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_commit_of_a_check_runs_url() {
        assert_eq!(
            head_sha("/repos/o/r/commits/abc123/check-runs?per_page=100&page=2").as_deref(),
            Some("abc123")
        );
        assert_eq!(head_sha("/repos/o/r/pulls/1/files?per_page=100"), None);
    }
}
