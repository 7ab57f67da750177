//! One REST page: GET it (conditionally when an earlier round stored its ETag), then
//! store its rows and follow-up jobs, or snooze, retry or fail it by what the answer
//! said.

use super::{Context, Settings};
use crate::followups::{self, NextPage};
use crate::github::error::FetchError;
use crate::github::{pages, Body, Kind};
use crate::store::access::Refusal;
use crate::store::listings;
use crate::store::queue::{Finished, TokenEvent};
use crate::store::{now_ms, ClaimedJob, Completion, Outcome, Work};
use rand::Rng;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Says which job a message is about: `acme/widgets PR #12 commits page 2`.
pub(super) fn describe(job: &ClaimedJob) -> String {
    match job.pr_number {
        Some(pr) if job.page > 1 => format!("{} PR #{pr} {} page {}", job.repo, job.kind, job.page),
        Some(pr) => format!("{} PR #{pr} {}", job.repo, job.kind),
        None if job.kind == listings::KIND => {
            format!("{} repository list page {}", job.repo, job.page)
        }
        None => format!("{} pull-request list page {}", job.repo, job.page),
    }
}

/// Runs one claimed REST job to its outcome; returns the worker's next work when the
/// page's completion claimed it in the same transaction.
pub(super) async fn run_job(ctx: &Context, job: ClaimedJob) -> crate::store::Result<Option<Work>> {
    let store = &ctx.store;
    let Some(token) = ctx.pool.get(&job.token) else {
        store.release(&job, now_ms()).await?;
        return Ok(None);
    };
    // A listing of an organisation's repositories has no `Kind`: `None`.
    let kind = match job.kind.parse::<Kind>() {
        Ok(kind) => Some(kind),
        Err(_) if job.kind == listings::KIND => None,
        Err(e) => {
            store.fail(&job, &e, None, now_ms()).await?;
            return Ok(None);
        }
    };
    let url = match ctx.client.resolve(&job.url) {
        Ok(url) => url,
        Err(e) => {
            let message = format!("{}: {e}", describe(&job));
            tracing::warn!("{message}");
            store.fail(&job, &message, None, now_ms()).await?;
            ctx.counters.failed.fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        }
    };
    // A page an earlier round fetched is asked for conditionally: a 304 is free.
    // The secret sent: a 401 is about this one (an App's token may be renewed meanwhile).
    let used = token.secret();
    let sent_at = now_ms();
    let fetch = ctx.client.get(&url, token, job.etag.as_deref());
    tokio::pin!(fetch);
    let grace = ctx.settings.shutdown_grace;
    let fetched = tokio::select! {
        fetched = &mut fetch => fetched,
        _ = async { ctx.shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
            store.release(&job, now_ms()).await?;
            return Ok(None);
        }
    };
    ctx.counters.requests.fetch_add(1, Ordering::Relaxed);
    let answer = super::answer_of(fetched.result.as_ref().err());
    ctx.answered(&job.token, answer, sent_at);
    let now = now_ms();
    let rate = fetched.rate;
    let mut next_job = None;
    if fetched.result.is_ok() {
        ctx.saw(&job.repo, &job.token).await?;
    }
    match fetched.result {
        Ok(body) => match kind {
            Some(kind) => next_job = store_fetched(ctx, &job, kind, body, rate, &url, now).await?,
            None => listing_page(ctx, &job, body, rate).await?,
        },
        Err(FetchError::Exhausted { reset_at_ms }) => {
            ctx.counters.refused.fetch_add(1, Ordering::Relaxed);
            let reset_at = reset_at_ms.unwrap_or(now + 60_000);
            tracing::debug!(token = %token, "token out of quota until {reset_at}");
            store
                .snooze(&job, TokenEvent::Exhausted { reset_at }, now)
                .await?;
        }
        Err(FetchError::Secondary { retry_after }) => {
            tracing::warn!(token = %token, "secondary rate limit: nothing more on this token for {} s", retry_after.as_secs());
            let until = now + retry_after.as_millis() as i64;
            store
                .snooze(&job, TokenEvent::Paused { until }, now)
                .await?;
        }
        Err(FetchError::BadCredentials) => {
            let event = ctx.bad_credentials(&job.token, &used).await;
            store.snooze(&job, event, now).await?;
        }
        Err(FetchError::Transient(message)) => retry_or_fail(ctx, &job, &message, rate).await?,
        Err(FetchError::Refused(message)) => refused(ctx, &job, &message, rate).await?,
        Err(FetchError::Fatal(message)) => {
            let message = format!("{}: {message}", describe(&job));
            tracing::warn!("{message}");
            ctx.counters.failed.fetch_add(1, Ordering::Relaxed);
            store.fail(&job, &message, rate, now).await?;
        }
    }
    Ok(next_job)
}

/// A page that came back (or a 304): its rows and follow-ups stored, perhaps with the
/// worker's next work claimed in the same transaction.
async fn store_fetched(
    ctx: &Context,
    job: &ClaimedJob,
    kind: Kind,
    body: Body,
    rate: Option<crate::github::RateLimit>,
    url: &reqwest::Url,
    now: i64,
) -> crate::store::Result<Option<Work>> {
    let store = &ctx.store;
    match body {
        Body::Page { bytes, etag, next } => match pages::parse(kind, &bytes) {
            Ok(rows) => {
                let next = next.as_deref().map(NextPage::rest);
                let planned = followups::plan(job, kind, rows, next, false);
                let page = Completion {
                    rows: Some(planned.rows),
                    etag,
                    follow_ups: planned.jobs,
                    rate,
                };
                let (done, claimed) = match ctx.completion_claim() {
                    None => (store.complete(job, page, now).await?, None),
                    Some(claim) => store.complete_and_claim(job, page, claim, now).await?,
                };
                ctx.claimed(claimed.as_ref());
                if done {
                    ctx.counters.pages.fetch_add(1, Ordering::Relaxed);
                } else {
                    ctx.counters.fenced.fetch_add(1, Ordering::Relaxed);
                }
                return Ok(claimed);
            }
            Err(e) => retry_or_fail(ctx, job, &format!("GET {url}: {e}"), rate).await?,
        },
        Body::NotModified => {
            ctx.counters.not_modified.fetch_add(1, Ordering::Relaxed);
            let page = Completion {
                rows: None,
                etag: None,
                follow_ups: followups::after_not_modified(job, kind),
                rate,
            };
            store.complete(job, page, now).await?;
        }
    }
    Ok(None)
}

/// A page of an organisation's or a user's repositories: those the listing's filters
/// let through are enqueued, with its next page, as the page is marked done.
async fn listing_page(
    ctx: &Context,
    job: &ClaimedJob,
    body: Body,
    rate: Option<crate::github::RateLimit>,
) -> crate::store::Result<()> {
    let Body::Page { bytes, next, .. } = body else {
        // Never asked conditionally: a 304 is the server's mistake.
        return retry_or_fail(ctx, job, "a listing page answered 304 Not Modified", rate).await;
    };
    let Some((filter, priority)) = ctx.store.listing(&job.repo).await? else {
        let error = format!("{}: the listing's filters are missing", job.repo);
        ctx.counters.failed.fetch_add(1, Ordering::Relaxed);
        ctx.store.fail(job, &error, rate, now_ms()).await?;
        return Ok(());
    };
    let listed: Vec<listings::Listed> = match serde_json::from_slice(&bytes) {
        Ok(listed) => listed,
        Err(e) => {
            let message = format!("{}: not a list of repositories: {e}", describe(job));
            return retry_or_fail(ctx, job, &message, rate).await;
        }
    };
    // Checked when enqueued: a pattern that no longer compiles matches nothing.
    let pattern = filter
        .pattern
        .as_deref()
        .map(|p| globset::Glob::new(p).map(|g| g.compile_matcher()).ok());
    let pattern = match pattern {
        Some(None) => {
            return retry_or_fail(ctx, job, "the listing's --match is not a glob", rate).await
        }
        Some(Some(matcher)) => Some(matcher),
        None => None,
    };
    let mut wanted = Vec::new();
    for repo in &listed {
        match crate::config::validate_repo(&repo.full_name) {
            Ok(name) if filter.wants(repo, pattern.as_ref()) => wanted.push(name),
            Ok(_) => {}
            Err(e) => tracing::warn!("{}: skipped: {e}", describe(job)),
        }
    }
    let now = now_ms();
    let told = ctx
        .store
        .listed(job, &wanted, next.as_deref(), priority, rate, now)
        .await?;
    match told {
        Some(told) => {
            ctx.counters.pages.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                "{}: {} repositories listed, {} wanted: {} new, {} refreshed, {} already queued",
                describe(job),
                listed.len(),
                wanted.len(),
                told.new.len(),
                told.refreshed.len(),
                told.in_progress.len()
            );
            ctx.wake.notify_waiters();
        }
        None => {
            ctx.counters.fenced.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// A 404, or a 403 that is no rate limit: the token may not see the repository, and
/// another token may (see `store::access`).
async fn refused(
    ctx: &Context,
    job: &ClaimedJob,
    message: &str,
    rate: Option<crate::github::RateLimit>,
) -> crate::store::Result<()> {
    let now = now_ms();
    let message = format!("{}: {message}", describe(job));
    let fingerprints = ctx.pool.fingerprints_json();
    let refusal = ctx
        .store
        .refused(&job.repo, &job.token, &message, fingerprints, now)
        .await?;
    let token = ctx.pool.get(&job.token);
    let token = token.map(|t| t.to_string()).unwrap_or_default();
    match refusal {
        Refusal::Hidden { others } => tracing::info!(
            token = %token,
            "{message}: this token cannot see {}; {others} other token(s) will try",
            job.repo
        ),
        Refusal::Final => {
            tracing::warn!("{message}");
            ctx.counters.failed.fetch_add(1, Ordering::Relaxed);
        }
        Refusal::NoToken { .. } => {
            ctx.counters.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
    let outcome = refusal.outcome(job, &message, now);
    let finished = Finished::new(vec![(job.clone(), outcome)], TokenEvent::Answered(rate));
    ctx.store.finish(finished, None, now).await?;
    if let Refusal::NoToken { tokens } = refusal {
        let others = ctx.store.fail_unseen(&job.repo, tokens, now).await?;
        ctx.counters.failed.fetch_add(others, Ordering::Relaxed);
        tracing::warn!(
            "{message}; {}; {} job(s) failed",
            crate::store::access::no_token_sees(&job.repo, tokens),
            others + 1
        );
    }
    Ok(())
}

/// A transient failure: the job goes back after a backoff, or fails once its attempts
/// are used up (see [`transient`]).
async fn retry_or_fail(
    ctx: &Context,
    job: &ClaimedJob,
    message: &str,
    rate: Option<crate::github::RateLimit>,
) -> crate::store::Result<()> {
    let now = now_ms();
    let outcome = transient(ctx, job, message, now);
    let finished = Finished::new(vec![(job.clone(), outcome)], TokenEvent::Answered(rate));
    ctx.store.finish(finished, None, now).await?;
    Ok(())
}

/// What a transient failure of `job` calls for: back after a backoff with jitter, its
/// attempt kept, or failed (and logged) once its attempts are used up.
pub(super) fn transient(ctx: &Context, job: &ClaimedJob, message: &str, now: i64) -> Outcome {
    if job.attempts >= job.max_attempts {
        let error = format!(
            "{}: gave up after {} attempts: {message}",
            describe(job),
            job.attempts
        );
        tracing::warn!("{error}");
        ctx.counters.failed.fetch_add(1, Ordering::Relaxed);
        return Outcome::Fail { error };
    }
    let delay = backoff(&ctx.settings, job.attempts);
    tracing::debug!("{}: {message}; retrying in {delay:?}", describe(job));
    ctx.counters.retried.fetch_add(1, Ordering::Relaxed);
    Outcome::Requeue {
        run_at: now + delay.as_millis() as i64,
        refund_attempt: false,
        error: Some(message.to_owned()),
        rest_only: false,
    }
}

/// Exponential backoff with jitter: base × 2^(attempt-1), capped, times 0.5–1.0.
fn backoff(settings: &Settings, attempts: i64) -> Duration {
    let exponent = attempts.clamp(1, 20) as u32 - 1;
    let full = settings
        .retry_base
        .saturating_mul(2u32.saturating_pow(exponent))
        .min(settings.retry_cap);
    full.mul_f64(rand::thread_rng().gen_range(0.5..=1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::Settings;

    #[test]
    fn backoff_grows_and_is_capped() {
        let settings = Settings::default();
        assert!(backoff(&settings, 1) <= Duration::from_secs(1));
        assert!(backoff(&settings, 3) >= Duration::from_secs(2));
        assert!(backoff(&settings, 30) <= Duration::from_secs(60));
    }
}
