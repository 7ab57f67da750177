//! `seedq --db SRC copy-to DEST`: moves a whole seed to another database, of either
//! backend (a SQLite file that outgrew one machine moves to PostgreSQL, or back).

use crate::cli::{Cli, CopyToArgs};
use crate::config::UsageError;
use crate::display::format::thousands;
use crate::store::{shown, Create, Store};
use std::path::Path;
use std::time::Instant;

pub async fn run(cli: &Cli, args: &CopyToArgs) -> anyhow::Result<u8> {
    if args.dest == cli.db {
        return Err(UsageError(format!(
            "copy-to {}: that is the database --db names; give another destination",
            shown(&args.dest)
        ))
        .into());
    }
    let source = Store::open(&cli.db, Create::Never, 2).await?;
    let new_file = !args.dest.exists() && !is_url(&args.dest);
    let started = Instant::now();
    let copied = match Store::open(&args.dest, Create::IfMissing, 2).await {
        Ok(dest) => {
            let copied = source.copy_to(&dest).await;
            dest.close().await;
            copied
        }
        Err(e) => Err(e),
    };
    source.close().await;
    let copied = match copied {
        Ok(copied) => copied,
        Err(e) => {
            if new_file {
                // A refused or failed copy leaves no file behind that it created.
                remove_sqlite_file(&args.dest);
            }
            return Err(e.into());
        }
    };
    let rows = |table: &str| thousands(copied.rows(table) as i64);
    let children: u64 = [
        "gh_pr_commits",
        "gh_pr_reviews",
        "gh_pr_files",
        "gh_check_runs",
        "gh_pr_comments",
    ]
    .iter()
    .map(|t| copied.rows(t))
    .sum();
    println!(
        "copied {} to {} in {:.1} s: {} repositories, {} jobs, {} PRs and {} child rows, \
         {} tokens, {} ETags",
        shown(&cli.db),
        shown(&args.dest),
        started.elapsed().as_secs_f64(),
        rows("repos"),
        rows("job_queue"),
        rows("gh_pulls"),
        thousands(children as i64),
        rows("token_state"),
        rows("page_etags"),
    );
    println!("go on there with: seedq --db {} work", shown(&args.dest));
    Ok(crate::commands::exit::OK)
}

fn is_url(location: &Path) -> bool {
    crate::store::is_postgres(&location.to_string_lossy())
}

/// Removes a SQLite file this command created, with its journal files.
fn remove_sqlite_file(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(name);
    }
}
