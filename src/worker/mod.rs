//! The worker loop: claim → fetch → complete, on `--workers` tasks sharing one
//! process-wide identity, plus a heartbeat that renews the leases of running jobs.
//! A claim gives one REST page (`rest`) or a GraphQL batch (`graphql`).
//!
//! Shutdown: on SIGINT/SIGTERM the workers stop claiming; a request in flight gets
//! [`Settings::shutdown_grace`] to finish, after which its jobs are released (queued
//! again, attempt refunded). A `kill -9` skips all that: the next `work` process sees
//! the dead pid and rescues the jobs at once (see `store::workers`).

mod graphql;
mod places;
mod rest;

use places::{answer_of, wait_for_room, HOLD};

use crate::github::app::AppTokens;
use crate::github::Client;
use crate::pool::TokenPool;
use crate::store::{now_ms, Apis, Claim, ClaimedJob, Outcome, Store, Work};
use std::cell::RefCell;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    /// Which APIs fetch (`--api`).
    pub apis: Apis,
    /// `--reserve`: requests left on every token in each window.
    pub reserve: i64,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            workers: 4,
            exit_when_exhausted: false,
            shutdown_grace: Duration::from_secs(3),
            retry_base: Duration::from_secs(1),
            retry_cap: Duration::from_secs(60),
            apis: Apis::Rest,
            reserve: 0,
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
    /// `--api graphql` on a server whose GraphQL cannot serve seedq (the reason).
    NoGraphql,
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
    /// GraphQL queries sent (counted in `requests` too)...
    pub queries: AtomicU64,
    /// ...the points reserved for them...
    pub points: AtomicU64,
    /// ...and those GitHub ended for taking too long.
    pub timeouts: AtomicU64,
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
    /// What the claims may use: `settings.apis`, until the server shows it has no
    /// GraphQL (then REST).
    graphql_gone: AtomicBool,
    /// Whether a GraphQL answer with data came back (recorded once for `status`).
    graphql_answered: AtomicBool,
    /// The GitHub App whose installation tokens are in the pool, if any.
    apps: Option<AppTokens>,
    /// When a 401 last made an installation's token be renewed, by fingerprint.
    renewed_at: std::sync::Mutex<std::collections::HashMap<String, i64>>,
    /// (repository, token) pairs this process recorded as seen (`repo_access`).
    seen: std::sync::Mutex<std::collections::HashSet<(String, String)>>,
}

impl Context {
    /// The APIs claims may use now.
    fn apis(&self) -> Apis {
        if self.graphql_gone.load(Ordering::Relaxed) {
            Apis::Rest
        } else {
            self.settings.apis
        }
    }

    /// Records, once per process, that `token` fetched a page of `repo`: a later 404
    /// from it is then about the page, not the repository (`store::access`).
    async fn saw(&self, repo: &str, token: &str) -> crate::store::Result<()> {
        let key = (repo.to_owned(), token.to_owned());
        let new = self
            .seen
            .lock()
            .map(|mut seen| seen.insert(key))
            .unwrap_or(false);
        if new {
            self.store.saw(repo, token, now_ms()).await?;
        }
        Ok(())
    }

    /// Whether the workers are stopping (a signal, or the process is done).
    fn stopping(&self) -> bool {
        self.shutdown.is_cancelled() || self.stop.is_cancelled()
    }
}

/// Runs the workers until the queue is drained, tokens run out (with
/// `exit_when_exhausted`), or `shutdown` is cancelled.
pub async fn run(
    store: Store,
    client: Client,
    pool: Arc<TokenPool>,
    apps: Option<AppTokens>,
    settings: Settings,
    shutdown: CancellationToken,
    counters: Arc<Counters>,
) -> crate::store::Result<Stop> {
    let owner = uuid::Uuid::new_v4().to_string();
    store
        .register_worker(&owner, settings.reserve, now_ms())
        .await?;
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
        graphql_gone: AtomicBool::new(settings.apis == Apis::Rest),
        graphql_answered: AtomicBool::new(false),
        seen: Default::default(),
        apps,
        renewed_at: Default::default(),
    });
    let heartbeat = tokio::spawn(heartbeat(ctx.clone()));
    // Other processes' new work wakes idle workers here at once (PostgreSQL).
    let listener = {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let stop = ctx.stop.clone();
            ctx.store
                .listen_for_work(|| ctx.wake.notify_waiters(), stop)
                .await
        })
    };
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..settings.workers.max(1) {
        tasks.spawn(HOLD.scope(RefCell::new(None), work_loop(ctx.clone())));
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
    let _ = listener.await;
    // The quota the last answers showed, and what the lanes learned last, for `status`.
    if let Err(e) = store.write_skipped_figures(now_ms()).await {
        tracing::warn!("could not write the last answers' quota figures: {e}");
    }
    store.heartbeat(&owner, &ctx.beat(), now_ms()).await?;
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
        Stop::NoUsableToken | Stop::NoGraphql => 2,
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
        if let Err(e) = ctx.store.heartbeat(&ctx.owner, &ctx.beat(), now).await {
            tracing::warn!("heartbeat failed: {e}");
        }
        // The answers' figures left unwritten lag the token rows by a beat at most.
        if let Err(e) = ctx.store.write_skipped_figures(now).await {
            tracing::warn!("could not write the last answers' quota figures: {e}");
        }
    }
}

async fn work_loop(ctx: Arc<Context>) -> crate::store::Result<Stop> {
    // The work claimed in the transaction that completed the previous one, if any.
    let mut next: Option<Work> = None;
    loop {
        if ctx.stopping() {
            // Work claimed but not sent yet goes back at once, attempt refunded.
            if let Some(work) = next.take() {
                release(&ctx, work.jobs()).await?;
            }
            return Ok(if ctx.shutdown.is_cancelled() {
                Stop::Interrupted
            } else if ctx.settings.apis == Apis::Graphql && ctx.graphql_gone.load(Ordering::Relaxed)
            {
                Stop::NoGraphql
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
            Some(work) => Claim::Work(work),
            None => {
                // The place of the request just answered is given back.
                ctx.claimed(None);
                let lanes = ctx.pool.lanes();
                let Some(mut hold) = lanes.hold_free(None, now) else {
                    // Every token has as many requests in flight as its lane allows.
                    wait_for_room(&ctx, now).await;
                    continue;
                };
                let claim = ctx.store.claim(ctx.claim_for(&hold), now).await?;
                match &claim {
                    Claim::Work(work) => {
                        ctx.keep(&mut hold, work);
                        let _ = HOLD.try_with(|h| *h.borrow_mut() = Some(hold));
                    }
                    // Tokens with quota may be those whose lanes are full: wait for a
                    // place, not for a reset.
                    Claim::NoToken { .. } if !hold.every() => {
                        drop(hold);
                        wait_for_room(&ctx, now).await;
                        continue;
                    }
                    _ => {}
                }
                claim
            }
        };
        match claim {
            Claim::Work(Work::Rest(job)) => {
                next = rest::run_job(&ctx, job).await?;
                // New jobs, a ready retry or quota the answer revealed: look again.
                ctx.wake.notify_waiters();
            }
            Claim::Work(Work::Graphql(batch)) => {
                next = graphql::run_batch(&ctx, batch).await?;
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

impl Work {
    /// The jobs this work holds.
    fn jobs(self) -> Vec<ClaimedJob> {
        match self {
            Work::Rest(job) => vec![job],
            Work::Graphql(batch) => batch.jobs,
        }
    }
}

/// Gives jobs back unfinished (shutdown): ready at once, attempts refunded.
async fn release(ctx: &Context, jobs: Vec<ClaimedJob>) -> crate::store::Result<()> {
    let now = now_ms();
    let outcomes = jobs
        .into_iter()
        .map(|job| (job, Outcome::snoozed(now)))
        .collect();
    let answered = crate::store::queue::TokenEvent::Answered(None);
    let finished = crate::store::queue::Finished::new(outcomes, answered);
    ctx.store.finish(finished, None, now).await?;
    Ok(())
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
