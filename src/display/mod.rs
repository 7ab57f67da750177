//! What people see while a seed runs: the live bars of `work` on a terminal, a plain
//! progress line elsewhere, and the numbers `status` shows (a [`Snapshot`] and its
//! [`estimate`]).
//!
//! The display never slows the workers: it runs on its own task, reads the database
//! through its own read-only connection (cheap queries, once a second at most), and
//! reads the workers' in-process [`Counters`], which are plain atomics.

pub mod estimate;
pub mod format;
mod live;
pub mod logs;

use crate::cli::ProgressMode;
use crate::store::status::{Detail, RepoProgress};
use crate::store::tokens::{BucketRow, TokenRow};
use crate::store::{now_ms, Store};
use crate::worker::Counters;
use estimate::Quota;
use std::collections::{HashMap, VecDeque};
use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Whether stderr may carry colours: a terminal, and `NO_COLOR` unset or empty.
pub fn color_on_stderr() -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && std::io::stderr().is_terminal()
}

/// The database's view of the seed at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Epoch ms.
    pub taken_at: i64,
    pub repos: Vec<RepoProgress>,
    pub tokens: Vec<TokenRow>,
}

impl Snapshot {
    pub async fn read(store: &Store, detail: Detail) -> crate::store::Result<Snapshot> {
        Ok(Snapshot {
            repos: store.repo_progress(detail).await?,
            tokens: store.token_rows().await?,
            taken_at: now_ms(),
        })
    }

    /// Requests still to send, all repositories together (an estimate while listing).
    pub fn requests_left(&self) -> i64 {
        self.repos.iter().map(|r| r.requests_left).sum()
    }

    /// PRs complete, discovered and expected, all repositories together.
    pub fn prs(&self) -> (i64, i64, i64) {
        self.repos.iter().fold((0, 0, 0), |(c, d, e), r| {
            (c + r.prs_complete, d + r.prs_discovered, e + r.prs_expected)
        })
    }

    pub fn quotas(&self) -> Vec<Quota> {
        Quota::of(&self.tokens)
    }

    /// When every usable token is spent or paused: when the first comes back.
    pub fn paused_until(&self) -> Option<i64> {
        estimate::paused_until(&self.quotas(), self.taken_at)
    }

    /// Estimated finish (epoch ms), given the throughput while quota lasts.
    pub fn finish_at(&self, rate_per_sec: Option<f64>) -> Option<i64> {
        self.finish_at_with(rate_per_sec, estimate::window_ms())
    }

    /// [`Snapshot::finish_at`] with a known rate-limit window.
    pub fn finish_at_with(&self, rate_per_sec: Option<f64>, window_ms: i64) -> Option<i64> {
        estimate::finish_at(
            self.requests_left(),
            &self.quotas(),
            rate_per_sec,
            window_ms,
            self.taken_at,
        )
    }
}

/// A token's quota as it stands: a token past its reset is full again.
pub fn effective_remaining(token: &TokenRow, now: i64) -> i64 {
    match token.reset_at {
        Some(reset) if reset <= now => token.quota_limit,
        _ => token.remaining.max(0),
    }
}

/// A token's GraphQL points as they stand: a bucket past its reset is full again.
pub fn effective_points(bucket: &BucketRow, now: i64) -> i64 {
    match bucket.reset_at {
        Some(reset) if reset <= now => bucket.quota_limit,
        _ => bucket.remaining.max(0),
    }
}

/// A token's state as it stands: `ok`, `exhausted` (no quota before its reset),
/// `paused` (a secondary limit) or `invalid` (401).
pub fn token_state(token: &TokenRow, now: i64) -> &'static str {
    if token.state == "invalid" {
        "invalid"
    } else if token.paused_until.is_some_and(|p| p > now) {
        "paused"
    } else if effective_remaining(token, now) == 0 {
        "exhausted"
    } else {
        "ok"
    }
}

/// Requests per minute over the last minute, from samples of the request counter.
#[derive(Default)]
struct RateMeter {
    /// (when, requests so far, whether every token was spent then)
    samples: VecDeque<(Instant, u64, bool)>,
}

impl RateMeter {
    fn record(&mut self, total: u64, waiting: bool) {
        let now = Instant::now();
        self.samples.push_back((now, total, waiting));
        while self.samples.len() > 2
            && now.duration_since(self.samples[0].0) > Duration::from_secs(60)
        {
            self.samples.pop_front();
        }
    }

    fn per_minute(&self) -> Option<f64> {
        let (first, last) = (self.samples.front()?, self.samples.back()?);
        let secs = last.0.duration_since(first.0).as_secs_f64();
        (secs >= 1.0).then(|| (last.1 - first.1) as f64 * 60.0 / secs)
    }

    /// Requests per second while some token had quota: the pace the quota allows.
    fn working_per_sec(&self) -> Option<f64> {
        let (mut requests, mut secs) = (0u64, 0.0);
        for pair in self.samples.iter().collect::<Vec<_>>().windows(2) {
            if !pair[1].2 {
                requests += pair[1].1 - pair[0].1;
                secs += pair[1].0.duration_since(pair[0].0).as_secs_f64();
            }
        }
        (secs >= 1.0 && requests > 0).then(|| requests as f64 / secs)
    }
}

/// Learns the rate-limit window from the tokens' resets while `work` runs: when a
/// token's reset moves on from one that has passed, the gap is at least one window
/// (a window starts at the first request after a reset), and close to it while busy.
#[derive(Default)]
struct WindowMeter {
    last_reset: HashMap<String, i64>,
    shortest: Option<i64>,
}

impl WindowMeter {
    fn observe(&mut self, tokens: &[TokenRow], now: i64) {
        for token in tokens {
            let Some(reset) = token.reset_at else {
                continue;
            };
            if let Some(&previous) = self.last_reset.get(&token.fingerprint) {
                if reset > previous && previous <= now {
                    let gap = reset - previous;
                    self.shortest = Some(self.shortest.map_or(gap, |s| s.min(gap)));
                }
            }
            self.last_reset.insert(token.fingerprint.clone(), reset);
        }
    }

    /// `SEEDQ_RATE_WINDOW_SECS` if set, else what was seen, else GitHub's hour.
    fn window_ms(&self) -> i64 {
        if std::env::var_os("SEEDQ_RATE_WINDOW_SECS").is_some() {
            return estimate::window_ms();
        }
        self.shortest.map_or(estimate::DEFAULT_WINDOW_MS, |s| {
            s.min(estimate::DEFAULT_WINDOW_MS)
        })
    }
}

/// The running display of one `work`; [`Progress::finish`] takes it off the screen.
pub struct Progress {
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Which display `mode` means here: `Auto` is live on a terminal (text logs), plain
/// lines elsewhere.
pub fn resolve(mode: ProgressMode, json_logs: bool) -> ProgressMode {
    match mode {
        ProgressMode::Auto => {
            let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
            if std::io::stderr().is_terminal() && !dumb && !json_logs {
                ProgressMode::Live
            } else {
                ProgressMode::Plain
            }
        }
        other => other,
    }
}

/// What the display shows beside the database.
pub struct Context {
    pub workers: usize,
    /// `--reserve`.
    pub reserve: i64,
    pub counters: Arc<Counters>,
    pub started: Instant,
}

impl Progress {
    /// Starts the display for `mode` (already [`resolve`]d); `every` is the interval
    /// of plain lines.
    pub fn start(mode: ProgressMode, db: &Path, context: Context, every: Duration) -> Progress {
        let stop = CancellationToken::new();
        let task = match mode {
            ProgressMode::Off | ProgressMode::Auto => None,
            ProgressMode::Live | ProgressMode::Plain => {
                let db = db.to_owned();
                let stop = stop.clone();
                let live = mode == ProgressMode::Live;
                Some(tokio::spawn(async move {
                    if let Err(e) = show(live, &db, context, every, stop).await {
                        tracing::debug!("progress display stopped: {e}");
                    }
                }))
            }
        };
        Progress { stop, task }
    }

    /// Stops the display and clears the bars, so the summary follows a clean screen.
    pub async fn finish(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

async fn show(
    live: bool,
    db: &Path,
    context: Context,
    every: Duration,
    stop: CancellationToken,
) -> crate::store::Result<()> {
    let store = Store::open_reader(db).await?;
    let mut screen = live.then(|| live::Screen::new(context.workers, context.reserve));
    let mut meter = RateMeter::default();
    // Pages fetched: the pace of a GraphQL seed, where one request fetches many.
    let mut pages = RateMeter::default();
    let mut windows = WindowMeter::default();
    let mut waiting = false;
    let mut last_line: Option<Instant> = None;
    let mut next_read = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let counters = &context.counters;
        meter.record(counters.requests.load(Ordering::Relaxed), waiting);
        let fetched =
            counters.pages.load(Ordering::Relaxed) + counters.not_modified.load(Ordering::Relaxed);
        pages.record(fetched, waiting);
        let due = last_line.is_none_or(|at| at.elapsed() + Duration::from_millis(500) >= every);
        if (screen.is_none() && !due) || Instant::now() < next_read {
            continue;
        }
        // A read error (a busy moment, a migration) skips one refresh, nothing more.
        let reading = Instant::now();
        let snapshot = match Snapshot::read(&store, Detail::Brief).await {
            Ok(snapshot) => snapshot,
            Err(e) => {
                tracing::debug!("progress: {e}");
                continue;
            }
        };
        // On a huge queue the reads slow down: keep them under a tenth of the time.
        next_read = reading + reading.elapsed() * 10;
        waiting = snapshot.paused_until().is_some();
        windows.observe(&snapshot.tokens, snapshot.taken_at);
        // The estimate counts pages left: over REST a request is a page.
        let pace = match counters.queries.load(Ordering::Relaxed) {
            0 => meter.working_per_sec(),
            _ => pages.working_per_sec(),
        };
        let view = View {
            snapshot: &snapshot,
            per_minute: meter.per_minute(),
            finish_at: snapshot.finish_at_with(pace, windows.window_ms()),
            requests: context.counters.requests.load(Ordering::Relaxed),
            elapsed: context.started.elapsed(),
        };
        match &mut screen {
            Some(screen) => screen.draw(&view),
            None => {
                last_line = Some(Instant::now());
                plain_line(&view);
            }
        }
    }
    if let Some(screen) = screen {
        screen.clear();
    }
    store.close().await;
    Ok(())
}

/// One refresh's numbers.
struct View<'a> {
    snapshot: &'a Snapshot,
    per_minute: Option<f64>,
    finish_at: Option<i64>,
    requests: u64,
    elapsed: Duration,
}

impl View<'_> {
    /// `ETA 3m 05s (21:43:30)`, or why there is none.
    fn eta(&self) -> String {
        let now = self.snapshot.taken_at;
        match self.finish_at {
            Some(at) => format!(
                "finishes in ~{} ({})",
                format::duration_ms(at - now),
                format::clock(at)
            ),
            None => "finish time not known yet".into(),
        }
    }

    fn rate(&self) -> String {
        match self.per_minute {
            Some(rate) => format!("{} req/min", format::thousands(rate.round() as i64)),
            None => "- req/min".into(),
        }
    }
}

/// The line logged every `--progress-every` seconds off a terminal.
fn plain_line(view: &View) {
    let (complete, discovered, expected) = view.snapshot.prs();
    let now = view.snapshot.taken_at;
    let quota: i64 = view
        .snapshot
        .tokens
        .iter()
        .filter(|t| t.state != "invalid")
        .map(|t| effective_remaining(t, now))
        .sum();
    let points: i64 = view
        .snapshot
        .tokens
        .iter()
        .filter(|t| t.state != "invalid" && t.graphql.requests > 0)
        .map(|t| effective_points(&t.graphql, now))
        .sum();
    let used_graphql = view.snapshot.tokens.iter().any(|t| t.graphql.requests > 0);
    let points = match used_graphql {
        true => format!(" requests, {} GraphQL points", format::thousands(points)),
        false => String::new(),
    };
    let paused = match view.snapshot.paused_until() {
        Some(until) => format!(
            "; every token is out of quota, resuming in {} ({})",
            format::duration_ms(until - now),
            format::clock(until)
        ),
        None => String::new(),
    };
    tracing::info!(
        "progress: {} of {} PRs complete ({} listed); {}; {} requests in {}; quota left {}{points}; {}{paused}",
        format::thousands(complete),
        format::thousands(expected.max(discovered)),
        format::thousands(discovered),
        view.rate(),
        format::thousands(view.requests as i64),
        format::duration_ms(view.elapsed.as_millis() as i64),
        format::thousands(quota),
        view.eta(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(fingerprint: &str, reset_at: i64) -> TokenRow {
        TokenRow {
            fingerprint: fingerprint.into(),
            label: "ghp_…test".into(),
            quota_limit: 5000,
            remaining: 10,
            reset_at: Some(reset_at),
            state: "ok".into(),
            paused_until: None,
            requests: 0,
            refused: 0,
            last_error: None,
            graphql: Default::default(),
            concurrency: None,
        }
    }

    #[test]
    fn the_window_is_learned_from_a_reset_that_moved_on() {
        let mut meter = WindowMeter::default();
        meter.observe(&[row("a", 10_000)], 5_000);
        assert_eq!(meter.shortest, None, "one reset tells nothing");
        // Still the same window: nothing learned.
        meter.observe(&[row("a", 10_000)], 9_000);
        assert_eq!(meter.shortest, None);
        // The reset passed and a new window began just after it.
        meter.observe(&[row("a", 20_100)], 10_500);
        assert_eq!(meter.shortest, Some(10_100));
        // An idle token's longer gap does not make the window longer.
        meter.observe(&[row("a", 60_000)], 55_000);
        assert_eq!(meter.shortest, Some(10_100));
    }

    #[test]
    fn a_token_past_its_reset_counts_as_full() {
        let token = row("a", 1_000);
        assert_eq!(effective_remaining(&token, 2_000), 5000);
        assert_eq!(effective_remaining(&token, 500), 10);
        assert_eq!(
            token_state(
                &TokenRow {
                    remaining: 0,
                    ..token.clone()
                },
                500
            ),
            "exhausted"
        );
        assert_eq!(
            token_state(
                &TokenRow {
                    remaining: 0,
                    ..token
                },
                2_000
            ),
            "ok"
        );
    }
}
