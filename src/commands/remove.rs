//! `seedq remove OWNER/REPO... [--keep-data]`: drops repositories from the seed, with
//! their jobs, ETags and records of which token sees them, and unless `--keep-data`
//! their rows. An unknown name removes nothing (exit 2). A worker running one of their
//! jobs finds its lease gone and writes nothing.

use crate::cli::{Cli, RemoveArgs};
use crate::config::{validate_repo, UsageError};
use crate::display::format;
use crate::store::{Create, Store};

pub async fn run(cli: &Cli, args: &RemoveArgs) -> anyhow::Result<u8> {
    let mut repos = args
        .repos
        .iter()
        .map(|r| validate_repo(r))
        .collect::<Result<Vec<_>, _>>()?;
    let mut seen = std::collections::HashSet::new();
    repos.retain(|r| seen.insert(r.clone()));
    let store = Store::open(&cli.db, Create::Never, 2).await?;
    let removed = store.remove_repos(&repos, args.keep_data).await;
    store.close().await;
    let removed = match removed? {
        Ok(removed) => removed,
        Err(unknown) => {
            return Err(UsageError(format!(
                "not in {}: {}; nothing was removed (`seedq status` lists the repositories)",
                crate::store::shown(&cli.db),
                unknown.join(", ")
            ))
            .into())
        }
    };
    for r in removed {
        let jobs = format::thousands(r.jobs as i64);
        if args.keep_data {
            println!("removed {}: {jobs} jobs (its rows are kept)", r.repo);
        } else {
            let rows = format::thousands(r.rows as i64);
            println!("removed {}: {jobs} jobs and {rows} rows", r.repo);
        }
    }
    Ok(super::exit::OK)
}
