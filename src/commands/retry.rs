//! `seedq retry [--repo R] [--id N]`: requeues failed jobs with fresh attempts.

use crate::cli::{Cli, RetryArgs};
use crate::config::validate_repo;
use crate::store::{now_ms, Create, Store};

pub async fn run(cli: &Cli, args: &RetryArgs) -> anyhow::Result<u8> {
    let repo = args.repo.as_deref().map(validate_repo).transpose()?;
    let store = Store::open(&cli.db, Create::Never, 2).await?;
    let count = store
        .retry_failed(repo.as_deref(), args.id, now_ms())
        .await?;
    println!("requeued {count} failed job(s); run `seedq work` to fetch them");
    store.close().await;
    Ok(super::exit::OK)
}
