//! The worker loop: claim → fetch → complete, on `--workers` tasks sharing one
//! process-wide identity, plus a heartbeat that renews the leases of running jobs.
//!
//! Shutdown: on SIGINT/SIGTERM the workers stop claiming; a request in flight gets
//! [`Settings::shutdown_grace`] to finish, after which its job is released (queued
//! again, attempt refunded). A `kill -9` skips all that: the next `work` process sees
//! the dead pid and rescues the jobs at once (see `store::workers`).

use crate::followups;
use crate::github::error::FetchError;
use crate::github::{pages, Body, Client, Kind};
use crate::pool::TokenPool;
use crate::store::queue::TokenEvent;
use crate::store::{now_ms, Claim, ClaimedJob, Completion, Store};
use rand::Rng;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::futures::Notified;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How `work` behaves.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Concurrent requests (worker tasks) in this process.
    pub workers: usize,
    /// Exit (code 75) instead of sleeping when every token is out of quota.
    pub exit_when_exhausted: bool,
    /// How long an in-flight request may run on after a shutdown signal.
    pub shutdown_grace: Duration,
    /// First retry delay after a transient failure; doubles per attempt (with jitter).
    pub retry_base: Duration,
    /// Longest retry delay.
    pub retry_cap: Duration,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            workers: 4,
            exit_when_exhausted: false,
            shutdown_grace: Duration::from_secs(3),
            retry_base: Duration::from_secs(1),
            retry_cap: Duration::from_secs(60),
        }
    }
}

/// Why `run` returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Nothing queued or running is left.
    Drained,
    /// Every token is out of quota until `until` and the user asked not to wait.
    Exhausted { until: Option<i64> },
    /// The shutdown token was cancelled (a signal).
    Interrupted,
    /// Every token was refused with 401.
    NoUsableToken,
}

/// Counters for the end-of-run summary.
#[derive(Debug, Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub pages: AtomicU64,
    pub not_modified: AtomicU64,
    pub refused: AtomicU64,
    pub retried: AtomicU64,
    pub failed: AtomicU64,
    /// Completions that found their lease taken over and wrote nothing.
    pub fenced: AtomicU64,
}

struct Context {
    store: Store,
    client: Client,
    pool: Arc<TokenPool>,
    settings: Settings,
    /// This process's worker id: the `lease_owner` of its jobs.
    owner: String,
    /// Rung when a job added work, so idle workers look again at once.
    wake: Notify,
    /// Cancelled by a signal: stop claiming, release what cannot finish in time.
    shutdown: CancellationToken,
    /// Cancelled when one worker decides the process is done (exhausted, no token).
    stop: CancellationToken,
    counters: Arc<Counters>,
}

/// Runs the workers until the queue is drained, tokens run out (with
/// `exit_when_exhausted`), or `shutdown` is cancelled.
pub async fn run(
    store: Store,
    client: Client,
    pool: Arc<TokenPool>,
    settings: Settings,
    shutdown: CancellationToken,
    counters: Arc<Counters>,
) -> crate::store::Result<Stop> {
    let owner = uuid::Uuid::new_v4().to_string();
    store.register_worker(&owner, now_ms()).await?;
    let ctx = Arc::new(Context {
        store: store.clone(),
        client,
        pool,
        settings: settings.clone(),
        owner: owner.clone(),
        wake: Notify::new(),
        shutdown,
        stop: CancellationToken::new(),
        counters,
    });
    let heartbeat = tokio::spawn(heartbeat(ctx.clone()));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..settings.workers.max(1) {
        tasks.spawn(work_loop(ctx.clone()));
    }
    let mut stop = Stop::Drained;
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(this)) => {
                if this != Stop::Drained {
                    ctx.stop.cancel();
                }
                stop = more_urgent(stop, this);
            }
            Ok(Err(e)) => {
                ctx.stop.cancel();
                first_error.get_or_insert(e);
            }
            Err(join_error) => {
                ctx.stop.cancel();
                tracing::error!("a worker task failed: {join_error}");
            }
        }
    }
    ctx.stop.cancel();
    let _ = heartbeat.await;
    store.deregister_worker(&owner).await?;
    if let Some(e) = first_error {
        return Err(e);
    }
    Ok(stop)
}

fn more_urgent(a: Stop, b: Stop) -> Stop {
    let rank = |s: Stop| match s {
        Stop::Drained => 0,
        Stop::Exhausted { .. } => 1,
        Stop::NoUsableToken => 2,
        Stop::Interrupted => 3,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

async fn heartbeat(ctx: Arc<Context>) {
    let mut beats: u64 = 0;
    loop {
        tokio::select! {
            _ = ctx.stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
        beats += 1;
        let now = now_ms();
        if beats.is_multiple_of(5) {
            if let Err(e) = ctx.store.reap_dead_workers(&ctx.owner, now).await {
                tracing::warn!("could not check for stopped workers: {e}");
            }
        }
        if let Err(e) = ctx.store.heartbeat(&ctx.owner, now).await {
            tracing::warn!("heartbeat failed: {e}");
        }
    }
}

async fn work_loop(ctx: Arc<Context>) -> crate::store::Result<Stop> {
    // The job claimed in the transaction that completed the previous one, if any.
    let mut next: Option<ClaimedJob> = None;
    loop {
        if ctx.shutdown.is_cancelled() || ctx.stop.is_cancelled() {
            // A job claimed but not sent yet goes back at once, attempt refunded.
            if let Some(job) = next.take() {
                ctx.store.release(&job, now_ms()).await?;
            }
            return Ok(if ctx.shutdown.is_cancelled() {
                Stop::Interrupted
            } else {
                Stop::Drained
            });
        }
        // Listen before claiming: a job that adds work between this claim finding
        // nothing and the wait below must still wake this worker (`notify_waiters`
        // keeps no permit for a worker that is not listening yet).
        let woken = ctx.wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let now = now_ms();
        let claim = match next.take() {
            Some(job) => Claim::Job(job),
            None => {
                ctx.store
                    .claim(&ctx.owner, ctx.pool.fingerprints_json(), now)
                    .await?
            }
        };
        match claim {
            Claim::Job(job) => {
                next = run_job(&ctx, job).await?;
                // New jobs, a ready retry or quota the answer revealed: look again.
                ctx.wake.notify_waiters();
            }
            Claim::Idle {
                running,
                next_run_at,
            } => {
                if running == 0 && next_run_at.is_none() {
                    return Ok(Stop::Drained);
                }
                // Another worker's job may add work (it rings `wake`); a snoozed job
                // becomes ready at `next_run_at`; other processes are polled.
                let poll_ms = next_run_at.map_or(250, |at| (at - now).clamp(1, 250));
                wait(&ctx, woken, Duration::from_millis(poll_ms as u64)).await;
            }
            Claim::NoToken { until, running } => {
                let until = until.unwrap_or(now + 60_000).max(now);
                if running > 0 {
                    // Answers in flight correct the quota estimate; look again then.
                    let poll = Duration::from_millis(((until - now) as u64).min(250));
                    wait(&ctx, woken, poll).await;
                    continue;
                }
                if ctx.settings.exit_when_exhausted {
                    return Ok(Stop::Exhausted { until: Some(until) });
                }
                ctx.pool.announce_wait(until);
                wait(&ctx, woken, Duration::from_millis((until - now) as u64 + 5)).await;
            }
            Claim::NoUsableToken => return Ok(Stop::NoUsableToken),
        }
    }
}

/// Sleeps for `duration` unless work arrives (`woken`, listening since before the
/// claim) or the process is stopping.
async fn wait(ctx: &Context, woken: Pin<&mut Notified<'_>>, duration: Duration) {
    tokio::select! {
        _ = woken => {}
        _ = tokio::time::sleep(duration) => {}
        _ = ctx.shutdown.cancelled() => {}
        _ = ctx.stop.cancelled() => {}
    }
}

/// Says which job a message is about: `acme/widgets PR #12 commits page 2`.
fn describe(job: &ClaimedJob) -> String {
    match job.pr_number {
        Some(pr) if job.page > 1 => format!("{} PR #{pr} {} page {}", job.repo, job.kind, job.page),
        Some(pr) => format!("{} PR #{pr} {}", job.repo, job.kind),
        None => format!("{} pull-request list page {}", job.repo, job.page),
    }
}

/// Runs one claimed job to its outcome; returns the worker's next job when the page's
/// completion claimed one in the same transaction.
async fn run_job(ctx: &Context, job: ClaimedJob) -> crate::store::Result<Option<ClaimedJob>> {
    let store = &ctx.store;
    let Some(token) = ctx.pool.get(&job.token) else {
        store.release(&job, now_ms()).await?;
        return Ok(None);
    };
    let kind = match job.kind.parse::<Kind>() {
        Ok(kind) => kind,
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
    let now = now_ms();
    let rate = fetched.rate;
    let mut next_job = None;
    match fetched.result {
        Ok(Body::Page { bytes, etag, next }) => match pages::parse(kind, &bytes) {
            Ok(rows) => {
                let planned = followups::plan(&job, kind, rows, next.as_deref());
                let page = Completion {
                    rows: Some(planned.rows),
                    etag,
                    follow_ups: planned.jobs,
                    rate,
                };
                let stopping = ctx.shutdown.is_cancelled() || ctx.stop.is_cancelled();
                let (done, claimed) = if stopping {
                    (store.complete(&job, page, now).await?, None)
                } else {
                    let fingerprints = ctx.pool.fingerprints_json();
                    store
                        .complete_and_claim(&job, page, &ctx.owner, fingerprints, now)
                        .await?
                };
                next_job = claimed;
                if done {
                    ctx.counters.pages.fetch_add(1, Ordering::Relaxed);
                } else {
                    ctx.counters.fenced.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(e) => retry_or_fail(ctx, &job, &format!("GET {url}: {e}"), rate).await?,
        },
        Ok(Body::NotModified) => {
            ctx.counters.not_modified.fetch_add(1, Ordering::Relaxed);
            let page = Completion {
                rows: None,
                etag: None,
                follow_ups: followups::after_not_modified(&job, kind),
                rate,
            };
            store.complete(&job, page, now).await?;
        }
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
            tracing::error!(token = %token, "401 Bad credentials: this token is disabled; the others carry on");
            store.snooze(&job, TokenEvent::Invalid, now).await?;
        }
        Err(FetchError::Transient(message)) => retry_or_fail(ctx, &job, &message, rate).await?,
        Err(FetchError::Fatal(message)) => {
            let message = format!("{}: {message}", describe(&job));
            tracing::warn!("{message}");
            ctx.counters.failed.fetch_add(1, Ordering::Relaxed);
            store.fail(&job, &message, rate, now).await?;
        }
    }
    Ok(next_job)
}

async fn retry_or_fail(
    ctx: &Context,
    job: &ClaimedJob,
    message: &str,
    rate: Option<crate::github::RateLimit>,
) -> crate::store::Result<()> {
    let now = now_ms();
    if job.attempts >= job.max_attempts {
        let message = format!(
            "{}: gave up after {} attempts: {message}",
            describe(job),
            job.attempts
        );
        tracing::warn!("{message}");
        ctx.counters.failed.fetch_add(1, Ordering::Relaxed);
        ctx.store.fail(job, &message, rate, now).await?;
    } else {
        let delay = backoff(&ctx.settings, job.attempts);
        tracing::debug!("{}: {message}; retrying in {delay:?}", describe(job));
        ctx.counters.retried.fetch_add(1, Ordering::Relaxed);
        let run_at = now + delay.as_millis() as i64;
        ctx.store
            .retry_later(job, message, run_at, rate, now)
            .await?;
    }
    Ok(())
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

    #[test]
    fn backoff_grows_and_is_capped() {
        let settings = Settings::default();
        assert!(backoff(&settings, 1) <= Duration::from_secs(1));
        assert!(backoff(&settings, 3) >= Duration::from_secs(2));
        assert!(backoff(&settings, 30) <= Duration::from_secs(60));
    }
}
