//! `seedq retry [--repo R] [--id N]`: requeues failed jobs with fresh attempts, saying
//! which ones and what had gone wrong, so the user can tell whether another try helps.

use crate::cli::{Cli, RetryArgs};
use crate::config::{validate_repo, UsageError};
use crate::display::format;
use crate::store::{now_ms, Create, Store};

/// How many requeued jobs are listed by name.
const LISTED: usize = 10;

pub async fn run(cli: &Cli, args: &RetryArgs) -> anyhow::Result<u8> {
    let repo = args.repo.as_deref().map(validate_repo).transpose()?;
    let store = Store::open(&cli.db, Create::Never, 2).await?;
    if let Some(repo) = &repo {
        if !store.repo_names().await?.contains(repo) {
            store.close().await;
            return Err(UsageError(format!(
                "{repo} is not queued in {}; `seedq status` lists the repositories",
                crate::store::shown(&cli.db)
            ))
            .into());
        }
    }
    let failed: Vec<_> = store
        .failed_jobs(i64::MAX)
        .await?
        .into_iter()
        .filter(|j| {
            repo.as_ref().is_none_or(|r| &j.repo == r) && args.id.is_none_or(|id| j.id == id)
        })
        .collect();
    if failed.is_empty() {
        store.close().await;
        if let Some(id) = args.id {
            return Err(UsageError(format!(
                "job {id} is not a failed job; `seedq status` lists the failed jobs"
            ))
            .into());
        }
        match &repo {
            Some(repo) => println!("{repo} has no failed jobs: nothing to retry"),
            None => println!("no failed jobs: nothing to retry"),
        }
        return Ok(super::exit::OK);
    }
    let count = store
        .retry_failed(repo.as_deref(), args.id, now_ms())
        .await?;
    store.close().await;
    println!(
        "requeued {} failed job(s):",
        format::thousands(count as i64)
    );
    for job in failed.iter().take(LISTED) {
        // The error names the job already (`acme/x PR #12 commits: HTTP 404 …`).
        let what = match (&job.last_error, job.pr_number) {
            (Some(error), _) => error.clone(),
            (None, Some(pr)) => format!("{} PR #{pr} {}", job.repo, job.kind),
            (None, None) => format!("{} pull-request list page {}", job.repo, job.page),
        };
        println!("  #{} {what}", job.id);
    }
    if failed.len() > LISTED {
        println!(
            "  … and {} more",
            format::thousands((failed.len() - LISTED) as i64)
        );
    }
    println!("run `seedq work` to fetch them; errors such as 404 will fail again until fixed");
    Ok(super::exit::OK)
}
