//! `seedq status [--json]`: progress per repository (with its GraphQL batch size),
//! jobs by state and kind, failed jobs, tokens (REST requests and GraphQL points),
//! running `work` processes and the estimated finish. Reads only, so it
//! never blocks (nor waits for) running workers. The JSON document is a stable
//! interface (README, "Watching a seed"): add fields, never rename or remove them.

use crate::cli::{Cli, StatusArgs};
use crate::display::format::{self, clock, duration_ms, iso, thousands};
use crate::display::{effective_points, effective_remaining, token_state, Snapshot};
use crate::store::servers::GraphqlUnavailable;
use crate::store::status::{FailedJob, JobCounts, RepoProgress, WorkerRow};
use crate::store::{Create, Store};
use serde_json::json;
use std::collections::HashSet;

/// Failed jobs listed (the total is given too).
const FAILED_LISTED: i64 = 20;
/// The throughput is measured over the jobs done in this last stretch.
const RATE_SPAN_MS: i64 = 5 * 60_000;

/// Up to this many repositories, the text shows each in full.
const SHOWN_IN_FULL: usize = 10;
/// Names given on a folded line.
const NAMES_ON_A_LINE: usize = 5;

/// Version of the JSON document's shape.
pub const JSON_SCHEMA_VERSION: u32 = 1;

pub async fn run(cli: &Cli, args: &StatusArgs) -> anyhow::Result<u8> {
    let store = Store::open(&cli.db, Create::Never, 2).await?;
    let snapshot = Snapshot::read(&store, crate::store::status::Detail::Full).await?;
    let failed = store.failed_jobs(FAILED_LISTED).await?;
    let failed_total = store.failed_count().await?;
    let workers = store.worker_rows().await?;
    let now = snapshot.taken_at;
    let (done_recently, first) = store.done_since(now - RATE_SPAN_MS).await?;
    let no_graphql = store.graphql_unavailable().await?;
    store.close().await;

    // Pages per second over the last few minutes of work.
    let rate_per_sec = first
        .filter(|_| done_recently >= 2)
        .map(|first| done_recently as f64 * 1000.0 / (now - first).max(1000) as f64);
    let estimate = Estimate {
        requests_left: snapshot.requests_left(),
        per_minute: rate_per_sec.map(|r| r * 60.0),
        finish_at: snapshot.finish_at(rate_per_sec),
        paused_until: snapshot.paused_until(),
    };
    let seen = Seen {
        failed: &failed,
        failed_total,
        workers: &workers,
        no_graphql: &no_graphql,
        estimate: &estimate,
    };
    if args.json {
        let document = document(cli, &snapshot, &seen);
        println!("{}", serde_json::to_string_pretty(&document)?);
    } else {
        print_text(cli, &snapshot, &seen, args.all);
    }
    Ok(super::exit::OK)
}

/// What `status` read beside the snapshot.
struct Seen<'a> {
    failed: &'a [FailedJob],
    failed_total: i64,
    workers: &'a [WorkerRow],
    /// API servers found without GraphQL, and why.
    no_graphql: &'a [(String, GraphqlUnavailable)],
    estimate: &'a Estimate,
}

struct Estimate {
    requests_left: i64,
    per_minute: Option<f64>,
    finish_at: Option<i64>,
    paused_until: Option<i64>,
}

fn document(cli: &Cli, snapshot: &Snapshot, seen: &Seen) -> serde_json::Value {
    let now = snapshot.taken_at;
    let (failed, failed_total, workers, estimate) =
        (seen.failed, seen.failed_total, seen.workers, seen.estimate);
    let tokens: Vec<_> = snapshot
        .tokens
        .iter()
        .map(|t| {
            let mut token = json!({
                "label": t.label,
                "remaining": effective_remaining(t, now),
                "limit": t.quota_limit,
                "reset_at": iso(t.reset_at.filter(|&r| r > now)),
                "state": token_state(t, now),
                "paused_until": iso(t.paused_until.filter(|&p| p > now)),
                "requests": t.requests,
                "refused": t.refused,
                "last_error": t.last_error,
                "concurrency": t.concurrency,
            });
            // The GraphQL bucket, once `work` has used it.
            if t.graphql.requests > 0 {
                let points = effective_points(&t.graphql, now);
                token["graphql"] = json!({
                    "remaining": points,
                    "limit": t.graphql.quota_limit,
                    "reset_at": iso(t.graphql.reset_at.filter(|&r| r > now)),
                    "state": if points == 0 { "exhausted" } else { "ok" },
                    "queries": t.graphql.requests,
                    "points": t.graphql.spent,
                    "refused": t.graphql.refused,
                });
            }
            token
        })
        .collect();
    let workers: Vec<_> = workers
        .iter()
        .map(|w| {
            json!({
                "pid": w.pid,
                "host": w.host,
                "started_at": iso(Some(w.started_at)),
                "heartbeat_at": iso(Some(w.heartbeat_at)),
                "reserve": w.reserve,
            })
        })
        .collect();
    let mut document = json!({
        "schema_version": JSON_SCHEMA_VERSION,
        "database": crate::store::shown(&cli.db),
        "generated_at": iso(Some(now)),
        "repos": snapshot.repos,
        "tokens": tokens,
        "paused_until": iso(estimate.paused_until),
        "workers": workers,
        "failed_jobs_total": failed_total,
        "failed_jobs": failed,
        "estimate": {
            "requests_left": estimate.requests_left,
            "requests_per_minute": estimate.per_minute.map(|r| r.round() as i64),
            "finishes_at": iso(estimate.finish_at),
            "seconds_left": estimate.finish_at.map(|at| ((at - now).max(0) + 999) / 1000),
        },
    });
    // Servers found without GraphQL (where `work` fell back to REST), when there are.
    if !seen.no_graphql.is_empty() {
        let servers: Vec<_> = seen
            .no_graphql
            .iter()
            .map(|(url, why)| {
                json!({
                    "api_url": url,
                    "reason": why.reason,
                    "checked_at": iso(Some(why.checked_at)),
                })
            })
            .collect();
        document["graphql_unavailable"] = json!(servers);
    }
    document
}

fn print_text(cli: &Cli, snapshot: &Snapshot, seen: &Seen, all: bool) {
    let now = snapshot.taken_at;
    let (failed, failed_total, workers, estimate) =
        (seen.failed, seen.failed_total, seen.workers, seen.estimate);
    println!("database {}", crate::store::shown(&cli.db));
    match workers {
        [] => println!("no `seedq work` is running"),
        [w] => println!(
            "`seedq work` running: pid {} on {}, for {}",
            w.pid,
            w.host,
            duration_ms(now - w.started_at)
        ),
        many => println!(
            "{} `seedq work` processes running (pids {})",
            many.len(),
            many.iter()
                .map(|w| w.pid.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
    // The largest reserve any of them keeps (`work --reserve`).
    if let Some(reserve) = workers.iter().map(|w| w.reserve).max().filter(|&r| r > 0) {
        println!(
            "reserve {}: no token is taken below that many requests (or GraphQL points) \
             left in its window",
            thousands(reserve)
        );
    }
    if snapshot.repos.is_empty() {
        println!("nothing queued: run `seedq enqueue owner/repo`");
    }
    let folded = Folded::of(&snapshot.repos, all);
    for r in snapshot.repos.iter().filter(|r| !folded.hides(r)) {
        // A listing of an organisation's or a user's repositories (`org:LOGIN`).
        if r.repo.contains(':') {
            let pages = thousands(r.jobs.done);
            let state = if r.jobs.queued + r.jobs.running > 0 {
                format!("listing its repositories ({pages} page(s) read)")
            } else if r.jobs.failed > 0 {
                "its listing failed (see the failed jobs below)".to_owned()
            } else {
                format!("listed ({pages} page(s)); its repositories are queued")
            };
            println!();
            println!("{}: {state}", r.repo);
            continue;
        }
        let list_stuck = r
            .jobs_by_kind
            .get("pulls")
            .is_some_and(|l| l.failed > 0 && l.queued + l.running == 0);
        let list = if r.list_complete {
            "all listed".to_owned()
        } else if list_stuck {
            "a list page failed".to_owned()
        } else {
            format!("listing, ~{} in all", thousands(r.prs_expected))
        };
        let failed = match r.jobs.failed {
            0 => String::new(),
            n => format!("; {} failed", thousands(n)),
        };
        println!();
        println!(
            "{}: {} of {} PRs complete ({list}){failed}",
            r.repo,
            thousands(r.prs_complete),
            thousands(r.prs_discovered),
        );
        if let Some(a) = &r.access {
            if a.no_token {
                println!(
                    "  no token can see it: refused (404 or 403) to {}; check the name, or add a \
                     token with access and run `seedq retry --repo {}`",
                    a.refused_by.join(", "),
                    r.repo
                );
            } else {
                let seen = match a.seen_by.as_slice() {
                    [] => "not yet known".to_owned(),
                    seen => seen.join(", "),
                };
                println!(
                    "  seen by {seen}; not by {} (404 or 403)",
                    a.refused_by.join(", ")
                );
            }
        }
        if let Some(g) = &r.graphql {
            println!(
                "  GraphQL: {} PRs per query (learned; {} queries, {} timed out)",
                thousands(g.batch_prs),
                thousands(g.queries),
                thousands(g.timeouts)
            );
        }
        // After a refresh: how many done pages were 304 Not Modified (free).
        let with_304 = r.jobs.not_modified > 0;
        let not_modified = |c: &JobCounts| match with_304 {
            true => format!(" {:>8}", thousands(c.not_modified)),
            false => String::new(),
        };
        println!(
            "  {:<16} {:>8} {:>8} {:>8} {:>8}{}",
            "jobs",
            "queued",
            "running",
            "done",
            "failed",
            if with_304 { "  of which 304" } else { "" }
        );
        let rows = r.jobs_by_kind.iter().map(|(k, c)| (k.as_str(), c));
        for (kind, c) in rows.chain([("all", &r.jobs)]) {
            println!(
                "  {kind:<16} {:>8} {:>8} {:>8} {:>8}{}",
                thousands(c.queued),
                thousands(c.running),
                thousands(c.done),
                thousands(c.failed),
                not_modified(c)
            );
        }
    }

    folded.print();

    if !snapshot.tokens.is_empty() {
        println!();
        let width = snapshot
            .tokens
            .iter()
            .map(|t| t.label.chars().count())
            .max()
            .unwrap_or(5)
            .max(5);
        println!(
            "{:<width$} {:>15}  {:<10} {:<10} {:>9} {:>8} {:>15}  {:<10} {:>9}",
            "token",
            "remaining/limit",
            "resets",
            "state",
            "requests",
            "refused",
            "graphql points",
            "resets",
            "in flight"
        );
        for t in &snapshot.tokens {
            let reset = t
                .reset_at
                .filter(|&r| r > now)
                .map_or_else(|| "-".to_owned(), clock);
            let state = match t.paused_until {
                Some(until) if until > now => format!("paused until {}", clock(until)),
                _ => token_state(t, now).to_owned(),
            };
            let quota = format!(
                "{}/{}",
                thousands(effective_remaining(t, now)),
                thousands(t.quota_limit)
            );
            let points = format!(
                "{}/{}",
                thousands(effective_points(&t.graphql, now)),
                thousands(t.graphql.quota_limit)
            );
            let points_reset = t
                .graphql
                .reset_at
                .filter(|&r| r > now)
                .map_or_else(|| "-".to_owned(), clock);
            // The requests it may have in flight, as the last `work` learned.
            let in_flight = t
                .concurrency
                .map_or_else(|| "-".to_owned(), |n| format!("≤ {n}"));
            println!(
                "{:<width$} {quota:>15}  {reset:<10} {state:<10} {:>9} {:>8} {points:>15}  \
                 {points_reset:<10} {in_flight:>9}",
                t.label,
                thousands(t.requests),
                thousands(t.refused)
            );
        }
    }
    for (url, why) in seen.no_graphql {
        println!(
            "GraphQL is not available on {url} (found at {}: {}); `seedq work` fetches there \
             over REST",
            clock(why.checked_at),
            why.reason
        );
    }
    if let Some(until) = estimate.paused_until {
        println!(
            "every token is out of quota: work resumes at {} (in {})",
            clock(until),
            duration_ms(until - now)
        );
    }

    if !failed.is_empty() {
        println!();
        println!(
            "failed jobs: {} (`seedq retry` requeues them all, `seedq retry --id N` one):",
            thousands(failed_total)
        );
        for f in failed {
            println!(
                "  #{} {}",
                f.id,
                f.last_error.as_deref().unwrap_or("(no error recorded)")
            );
        }
        if failed_total > failed.len() as i64 {
            println!(
                "  … and {} more: {}",
                thousands(failed_total - failed.len() as i64),
                crate::store::shell_query(
                    &cli.db,
                    "select id, last_error from jobs where state = 'failed'"
                )
            );
        }
    }

    println!();
    let rate = estimate
        .per_minute
        .map(|r| format!(" at {} pages/min", thousands(r.round() as i64)))
        .unwrap_or_default();
    match (estimate.requests_left, estimate.finish_at) {
        (0, _) => println!("nothing left to fetch"),
        (left, Some(at)) => println!(
            "estimate: ~{} pages left{rate}; finishes in ~{} ({})",
            thousands(left),
            format::duration_ms(at - now),
            clock(at)
        ),
        (left, None) => println!(
            "estimate: ~{} pages left; finish time unknown until `seedq work` has run a while",
            thousands(left)
        ),
    }
}

/// The repositories the text counts on one line instead of showing in full: the
/// complete ones and those not started, once there are more than [`SHOWN_IN_FULL`]
/// (and no `--all`). A repository in progress, with a failed job or refused to a
/// token is always shown in full.
struct Folded<'a> {
    complete: Vec<&'a RepoProgress>,
    waiting: Vec<&'a RepoProgress>,
    names: HashSet<&'a str>,
}

impl<'a> Folded<'a> {
    fn of(repos: &'a [RepoProgress], all: bool) -> Self {
        let mut folded = Folded {
            complete: Vec::new(),
            waiting: Vec::new(),
            names: HashSet::new(),
        };
        if all || repos.len() <= SHOWN_IN_FULL {
            return folded;
        }
        for r in repos {
            let quiet = r.access.is_none() && r.jobs.failed == 0 && r.jobs.running == 0;
            // A listing (`org:LOGIN`) takes one line anyway.
            if !quiet || r.repo.contains(':') {
                continue;
            }
            if r.jobs.queued == 0 && r.list_complete {
                folded.complete.push(r);
            } else if r.jobs.done == 0 {
                folded.waiting.push(r);
            } else {
                continue;
            }
            folded.names.insert(&r.repo);
        }
        folded
    }

    fn hides(&self, repo: &RepoProgress) -> bool {
        self.names.contains(repo.repo.as_str())
    }

    fn print(&self) {
        let names = |list: &[&RepoProgress]| {
            let shown: Vec<_> = list
                .iter()
                .take(NAMES_ON_A_LINE)
                .map(|r| r.repo.as_str())
                .collect();
            match list.len() > NAMES_ON_A_LINE {
                true => format!("{}, …", shown.join(", ")),
                false => shown.join(", "),
            }
        };
        if self.complete.is_empty() && self.waiting.is_empty() {
            return;
        }
        println!();
        if !self.complete.is_empty() {
            let prs: i64 = self.complete.iter().map(|r| r.prs_complete).sum();
            let jobs: i64 = self.complete.iter().map(|r| r.jobs.done).sum();
            println!(
                "{} repositories complete: {} PRs, {} jobs done ({})",
                thousands(self.complete.len() as i64),
                thousands(prs),
                thousands(jobs),
                names(&self.complete)
            );
        }
        if !self.waiting.is_empty() {
            let jobs: i64 = self.waiting.iter().map(|r| r.jobs.queued).sum();
            println!(
                "{} repositories not started: {} jobs queued; next {}",
                thousands(self.waiting.len() as i64),
                thousands(jobs),
                names(&self.waiting)
            );
        }
        println!("(`seedq status --all` shows each repository in full)");
    }
}
