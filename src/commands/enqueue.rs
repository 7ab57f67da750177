//! `seedq enqueue OWNER/REPO...`: records the work; no API call.

use crate::cli::{Cli, EnqueueArgs};
use crate::config::{validate_repo, UsageError};
use crate::github::Kind;
use crate::store::{now_ms, Create, Store};

pub async fn run(cli: &Cli, args: &EnqueueArgs) -> anyhow::Result<u8> {
    // Validate everything before the database is touched.
    let repos = args
        .repos
        .iter()
        .map(|r| validate_repo(r))
        .collect::<Result<Vec<_>, _>>()?;
    let mut endpoints = Vec::new();
    for name in &args.with {
        let kind: Kind = name
            .trim()
            .parse()
            .map_err(|e| UsageError(format!("--with: {e}")))?;
        if kind == Kind::Pulls {
            return Err(UsageError("--with: the pull list is always fetched".into()).into());
        }
        if !endpoints.contains(&kind) {
            endpoints.push(kind);
        }
    }
    if endpoints.is_empty() {
        return Err(UsageError("--with: name at least one endpoint".into()).into());
    }
    let store = Store::open(&cli.db, Create::IfMissing, 2).await?;
    for repo in &repos {
        if store.enqueue_repo(repo, &endpoints, now_ms()).await? {
            println!("queued {repo}");
        } else {
            println!("{repo} is already queued");
        }
    }
    store.close().await;
    Ok(super::exit::OK)
}
