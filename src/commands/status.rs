//! `seedq status [--json]`: progress per repository, failed jobs and tokens. Reads
//! only, so it never blocks (nor waits for) running workers.

use crate::cli::{Cli, StatusArgs};
use crate::store::{Create, Store};

fn time(ms: Option<i64>) -> Option<String> {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

pub async fn run(cli: &Cli, args: &StatusArgs) -> anyhow::Result<u8> {
    let store = Store::open(&cli.db, Create::Never, 2).await?;
    let repos = store.repo_progress().await?;
    let tokens = store.token_rows().await?;
    let failed = store.failed_jobs(20).await?;
    store.close().await;

    if args.json {
        let tokens: Vec<_> = tokens
            .iter()
            .map(|t| {
                serde_json::json!({
                    "label": t.label,
                    "remaining": t.remaining,
                    "limit": t.quota_limit,
                    "reset_at": time(t.reset_at),
                    "state": t.state,
                    "paused_until": time(t.paused_until),
                    "requests": t.requests,
                    "refused": t.refused,
                })
            })
            .collect();
        let document = serde_json::json!({
            "database": cli.db.display().to_string(),
            "repos": repos,
            "tokens": tokens,
            "failed_jobs": failed,
        });
        println!("{}", serde_json::to_string_pretty(&document)?);
        return Ok(super::exit::OK);
    }

    println!("database {}", cli.db.display());
    if repos.is_empty() {
        println!("nothing queued: run `seedq enqueue owner/repo`");
    }
    for r in &repos {
        let list = if r.list_complete {
            "all listed"
        } else {
            "listing"
        };
        println!(
            "{}: {} of {} PRs complete ({list}); jobs {} queued, {} running, {} done, {} failed",
            r.repo,
            r.prs_complete,
            r.prs_discovered,
            r.jobs.queued,
            r.jobs.running,
            r.jobs.done,
            r.jobs.failed
        );
    }
    if !tokens.is_empty() {
        println!("tokens:");
    }
    for t in &tokens {
        let reset = time(t.reset_at).unwrap_or_else(|| "-".into());
        println!(
            "  {:<20} {:>6}/{:<6} reset {reset}  {}  {} requests",
            t.label, t.remaining, t.quota_limit, t.state, t.requests
        );
    }
    if !failed.is_empty() {
        println!(
            "failed jobs (latest {}; `seedq retry` requeues them):",
            failed.len()
        );
        for f in &failed {
            println!(
                "  #{} {}",
                f.id,
                f.last_error.as_deref().unwrap_or("(no error recorded)")
            );
        }
    }
    Ok(super::exit::OK)
}
