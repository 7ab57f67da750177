//! `copy-to`: a whole seed (queue, token rows, ETags, data) moved to another database,
//! of either backend, so that `work` there goes on where the source stopped and
//! fetches again no page that was done.
//!
//! The source is read in one snapshot; the destination is written in one
//! transaction, so a failed copy leaves it as empty as it was. Jobs that were running
//! (a process killed without releasing them) arrive queued, as a rescue would leave
//! them.

use super::db::{read, write_tx};
use super::sql::{CopySql, QueueSql, COPIED_TABLES};
use super::workers::stale_after_ms;
use super::{now_ms, Result, Store, StoreError};

/// Rows read and written at a time.
const PAGE_ROWS: i64 = 5_000;

/// What a copy moved: rows per table, in the order copied.
#[derive(Debug, Default)]
pub struct Copied {
    pub tables: Vec<(&'static str, u64)>,
}

impl Copied {
    /// Rows copied of `table`.
    pub fn rows(&self, table: &str) -> u64 {
        self.tables
            .iter()
            .find(|(name, _)| *name == table)
            .map_or(0, |(_, rows)| *rows)
    }
}

impl Store {
    /// Copies this seed into `dest`, which must hold none.
    pub async fn copy_to(&self, dest: &Store) -> Result<Copied> {
        let now = now_ms();
        let live = self.worker_rows().await?;
        if let Some(w) = live
            .iter()
            .find(|w| w.heartbeat_at > now - stale_after_ms())
        {
            return Err(StoreError::Refused(format!(
                "`seedq work` is running on {} (pid {} on {}); stop it before copying, so \
                 that nothing changes while the seed is read",
                self.shown(),
                w.pid,
                w.host
            )));
        }
        let held = dest.repo_names().await?.len();
        let tokens = dest.token_rows().await?.len();
        if held > 0 || tokens > 0 {
            return Err(StoreError::Refused(format!(
                "{} already holds a seed ({held} repositories, {tokens} tokens); copy-to \
                 fills a new or empty database",
                dest.shown()
            )));
        }
        let copied = read!(&self.db, |source| {
            write_tx!(&dest.db, |target| {
                source.begin_snapshot().await?;
                let copied = copy_tables(source, target).await;
                // Ends the snapshot even after a failure: the connection goes back to
                // the pool.
                let ended = source.end_snapshot().await;
                let copied = copied?;
                ended?;
                // No process of the target holds the jobs that were running.
                target.rescue_abandoned(now).await?;
                target.after_copy().await?;
                copied
            })
        });
        Ok(copied)
    }
}

/// Copies every table, page by page, inside the target's transaction.
async fn copy_tables(
    source: &mut impl CopySql,
    target: &mut (impl CopySql + QueueSql),
) -> Result<Copied> {
    let mut copied = Copied::default();
    for table in COPIED_TABLES {
        let columns = target.columns(table.name).await?;
        if source.columns(table.name).await? != columns {
            return Err(StoreError::Refused(format!(
                "table {} has other columns in the two databases; open both with this seedq \
                 first so that their schemas are the same version",
                table.name
            )));
        }
        let mut rows = 0;
        loop {
            let page = source
                .rows_json(table, &columns, PAGE_ROWS, rows as i64)
                .await?;
            if page.is_empty() {
                break;
            }
            let json = format!("[{}]", page.join(","));
            rows += target.insert_json(table, &columns, &json).await?;
            if (page.len() as i64) < PAGE_ROWS {
                break;
            }
        }
        copied.tables.push((table.name, rows));
    }
    Ok(copied)
}
