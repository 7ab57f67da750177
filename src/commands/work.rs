//! `seedq work`: runs the queue until it is drained (exit 0, or 3 when jobs failed), the
//! tokens run out with `--exit-when-exhausted` (75), or a signal stops it cleanly
//! (130/143).

use crate::cli::{Api, Cli, WorkArgs};
use crate::cli::{LogFormat, ProgressMode};
use crate::config::{token_sources, validate_api_url, UsageError};
use crate::display::{self, format, Progress, Snapshot};
use crate::github::{app, Client};
use crate::pool::lanes::{self, LaneLimits};
use crate::pool::TokenPool;
use crate::store::{Apis, Create, Store};
use crate::worker::{self, Counters, Settings, Stop};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// GitHub allows at most 100 concurrent requests per user.
pub const MAX_WORKERS: usize = 100;

pub async fn run(cli: &Cli, args: &WorkArgs) -> anyhow::Result<u8> {
    // Personal tokens and GitHub App installation tokens (minted here: bad settings are
    // exit 2 before any request, no token at all exit 1, and nothing is written).
    let sources = token_sources(args.tokens.token_file.as_deref())?;
    let api_url = validate_api_url(&cli.api_url)?;
    // Bad flags are refused before any token is minted.
    let workers = match args.workers {
        Some(0) => return Err(UsageError("--workers must be at least 1".into()).into()),
        Some(n) if n > MAX_WORKERS => {
            return Err(UsageError(format!(
                "--workers {n} is too many: GitHub allows at most {MAX_WORKERS} concurrent requests"
            ))
            .into())
        }
        other => other,
    };
    if !(1..=600).contains(&args.timeout) {
        return Err(UsageError("--timeout must be 1 to 600 seconds".into()).into());
    }
    if args.progress_every == 0 {
        return Err(UsageError("--progress-every must be at least 1 second".into()).into());
    }
    let (reserve, reserve_given_as) = reserve(args)?;
    let per_minute = (
        env_count("SEEDQ_REST_PER_MINUTE", lanes::REST_PER_MINUTE)?,
        env_count("SEEDQ_GRAPHQL_PER_MINUTE", lanes::GRAPHQL_PER_MINUTE)?,
    );
    let mode = display::resolve(args.progress, cli.log_format == LogFormat::Json);
    if mode == ProgressMode::Live && !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return Err(UsageError(
            "--progress live needs a terminal on stderr; use --progress plain".into(),
        )
        .into());
    }
    let gathered = app::gather(sources, &api_url).await?;
    let tokens = &gathered.tokens;
    // Renews installation tokens before they expire, until `run` returns.
    let _renewal = gathered.renew_in_background();
    let workers = workers.unwrap_or_else(|| (2 * tokens.len()).clamp(4, MAX_WORKERS));
    let lanes = LaneLimits::new(workers).per_minute(per_minute.0, per_minute.1);
    // One connection for every write, not one per worker: SQLite runs one write
    // transaction at a time anyway. Workers then queue for the writer in order instead
    // of colliding on the write lock (whose busy handler sleeps 1 to 100 ms), and its
    // page cache stays warm (another connection's commit would invalidate it). Halves
    // the CPU time per job. The second connection serves the occasional read.
    let store = Store::open(&cli.db, Create::Never, 2).await?;
    let client = Client::new(&api_url, Duration::from_secs(args.timeout))?;
    let pool = Arc::new(TokenPool::new(tokens, lanes));

    let shutdown = CancellationToken::new();
    let signal = Arc::new(AtomicU8::new(0));
    tokio::spawn(watch_signals(shutdown.clone(), signal.clone()));

    let quotas = pool.read_quotas(&client).await;
    quotas.check_reserve(reserve, reserve_given_as)?;
    gathered.register_refused(&store).await?;
    pool.prime(&store, quotas).await?;
    let mut settings = Settings {
        workers,
        reserve,
        exit_when_exhausted: args.exit_when_exhausted,
        apis: match args.api {
            Api::Auto => Apis::Auto,
            Api::Graphql => Apis::Graphql,
            Api::Rest => Apis::Rest,
        },
        ..Settings::default()
    };
    if let Some(ms) = env_millis("SEEDQ_RETRY_BASE_MS") {
        settings.retry_base = ms;
    }
    if let Some(ms) = env_millis("SEEDQ_SHUTDOWN_GRACE_MS") {
        settings.shutdown_grace = ms;
    }
    tracing::info!(
        "working on {} with {} token(s) and {workers} worker(s)",
        crate::store::shown(&cli.db),
        pool.len()
    );
    let started = Instant::now();
    let counters = Arc::new(Counters::default());
    let progress = Progress::start(
        mode,
        &cli.db,
        display::Context {
            workers,
            reserve,
            counters: counters.clone(),
            started,
        },
        Duration::from_secs(args.progress_every),
    );
    let stop = worker::run(
        store.clone(),
        client,
        pool,
        gathered.apps.clone(),
        settings,
        shutdown,
        counters.clone(),
    )
    .await;
    progress.finish().await;
    let stop = stop?;
    if let Err(e) = store.checkpoint().await {
        tracing::debug!("checkpoint at exit: {e}");
    }
    let snapshot = Snapshot::read(&store, crate::store::status::Detail::Full).await?;
    let failed_total = store.failed_count().await?;
    store.close().await;
    summarize(&snapshot, &counters, failed_total, started.elapsed());
    Ok(match stop {
        Stop::Drained if failed_total > 0 => super::exit::JOBS_FAILED,
        Stop::Drained => super::exit::OK,
        Stop::Exhausted { until } => {
            let when = until
                .and_then(chrono::DateTime::from_timestamp_millis)
                .map(|t| {
                    t.with_timezone(&chrono::Local)
                        .format("%H:%M:%S")
                        .to_string()
                })
                .unwrap_or_else(|| "unknown".into());
            tracing::warn!("every token is out of quota until {when}; run `seedq work` again then");
            super::exit::EXHAUSTED
        }
        Stop::NoUsableToken => {
            tracing::error!(
                "every token was refused (401 Bad credentials); check GITHUB_SEEDING_TOKENS"
            );
            super::exit::FAILURE
        }
        Stop::NoGraphql => {
            tracing::error!(
                "--api graphql, but this server's GraphQL cannot serve seedq; run `seedq work` \
                 (auto: REST where GraphQL is missing) or `seedq work --api rest`"
            );
            super::exit::FAILURE
        }
        Stop::Interrupted => match signal.load(Ordering::SeqCst) {
            0 | super::exit::SIGINT => super::exit::SIGINT,
            other => other,
        },
    })
}

/// The end-of-run summary: what the seed holds now and what this run did.
fn summarize(snapshot: &Snapshot, counters: &Counters, failed_total: i64, elapsed: Duration) {
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let (complete, discovered, _) = snapshot.prs();
    let left: i64 = snapshot
        .repos
        .iter()
        .map(|r| r.jobs.queued + r.jobs.running)
        .sum();
    let queries = load(&counters.queries) as i64;
    let graphql = if queries > 0 {
        format!(
            "; {} of them GraphQL queries for {} points, {} timed out",
            format::thousands(queries),
            format::thousands(load(&counters.points) as i64),
            format::thousands(load(&counters.timeouts) as i64),
        )
    } else {
        String::new()
    };
    tracing::info!(
        "summary: {} of {} PRs complete ({} jobs left); {} requests ({} pages, {} not modified, \
         {} refused for quota, {} retried{graphql}); {} failed jobs ({} in this run); elapsed {}",
        format::thousands(complete),
        format::thousands(discovered),
        format::thousands(left),
        format::thousands(load(&counters.requests) as i64),
        format::thousands(load(&counters.pages) as i64),
        format::thousands(load(&counters.not_modified) as i64),
        format::thousands(load(&counters.refused) as i64),
        format::thousands(load(&counters.retried) as i64),
        format::thousands(failed_total),
        format::thousands(load(&counters.failed) as i64),
        format::duration_ms(elapsed.as_millis() as i64),
    );
    if failed_total > 0 {
        let mut failed: Vec<(&str, i64)> = snapshot
            .repos
            .iter()
            .filter(|r| r.jobs.failed > 0)
            .map(|r| (r.repo.as_str(), r.jobs.failed))
            .collect();
        failed.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let shown = failed.len().min(10);
        let mut where_ = failed[..shown]
            .iter()
            .map(|(repo, n)| format!("{repo} {}", format::thousands(*n)))
            .collect::<Vec<_>>()
            .join(", ");
        if failed.len() > shown {
            where_.push_str(&format!(" and {} more repositories", failed.len() - shown));
        }
        tracing::warn!(
            "{failed_total} job(s) failed ({where_}); `seedq status` lists them, `seedq retry` \
             requeues them"
        );
    }
}

/// `--reserve`, else `SEEDQ_RESERVE`, else 0; and which of them gave it, for messages.
fn reserve(args: &WorkArgs) -> Result<(i64, &'static str), UsageError> {
    if let Some(n) = args.reserve {
        return Ok((i64::from(n), "--reserve"));
    }
    match std::env::var("SEEDQ_RESERVE") {
        Ok(raw) if !raw.trim().is_empty() => match raw.trim().parse::<u32>() {
            Ok(n) => Ok((i64::from(n), "SEEDQ_RESERVE")),
            Err(_) => Err(UsageError(format!(
                "SEEDQ_RESERVE={raw:?} is not a number of requests (0 or more)"
            ))),
        },
        _ => Ok((0, "--reserve")),
    }
}

/// A count from the environment variable `name` (0 or more), or `default` when unset.
fn env_count(name: &str, default: usize) -> Result<usize, UsageError> {
    match std::env::var(name) {
        Ok(raw) if !raw.trim().is_empty() => raw.trim().parse::<usize>().map_err(|_| {
            UsageError(format!(
                "{name}={raw:?} is not a number of requests a minute (0 for no limit)"
            ))
        }),
        _ => Ok(default),
    }
}

fn env_millis(name: &str) -> Option<Duration> {
    std::env::var(name)
        .ok()?
        .parse::<u64>()
        .ok()
        .map(Duration::from_millis)
}

/// Cancels `shutdown` on the first SIGINT or SIGTERM, remembering which (as the exit
/// code it calls for). A second signal, a second or more later, exits at once.
async fn watch_signals(shutdown: CancellationToken, signal: Arc<AtomicU8>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal as listen, SignalKind};
        let (Ok(mut interrupt), Ok(mut terminate)) = (
            listen(SignalKind::interrupt()),
            listen(SignalKind::terminate()),
        ) else {
            return;
        };
        let mut first_at: Option<std::time::Instant> = None;
        loop {
            let code = tokio::select! {
                _ = interrupt.recv() => super::exit::SIGINT,
                _ = terminate.recv() => super::exit::SIGTERM,
            };
            match first_at {
                // `timeout`, process managers and a terminal's Ctrl-C may deliver the
                // same stop to the process and its group at once: a repeat within a
                // second is the same request, not "quit at once".
                Some(at) if at.elapsed() < std::time::Duration::from_secs(1) => continue,
                Some(_) => std::process::exit(i32::from(code)),
                None => first_at = Some(std::time::Instant::now()),
            }
            signal.store(code, Ordering::SeqCst);
            tracing::info!(
                "stopping: finishing the requests in flight (signal again to quit at once)"
            );
            shutdown.cancel();
        }
    }
    #[cfg(not(unix))]
    {
        if tokio::signal::ctrl_c().await.is_ok() {
            signal.store(super::exit::SIGINT, Ordering::SeqCst);
            shutdown.cancel();
        }
    }
}
