//! Live `seedq work` processes. A process registers itself, beats every few seconds
//! (renewing the leases of its running jobs), and deregisters on a clean exit. A
//! process killed with `kill -9` leaves a row behind: the next process on the same host
//! sees its pid is gone, deletes the row and rescues its jobs at once, without
//! waiting for a lease to expire; on other hosts a stale heartbeat does the same.

use super::db::{read, write_tx};
use super::jobs::LEASE_MS;
use super::process;
use super::sql::{QueueSql, TokenSql, WorkerSql};
use super::{Result, Store};

/// A worker whose heartbeat is older than this is taken for dead.
pub const STALE_AFTER_MS: i64 = 20_000;

/// [`STALE_AFTER_MS`], or the test-only `SEEDQ_STALE_AFTER_MS`.
pub(super) fn stale_after_ms() -> i64 {
    static STALE: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *STALE.get_or_init(|| {
        std::env::var("SEEDQ_STALE_AFTER_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(STALE_AFTER_MS)
    })
}

/// What a heartbeat records beside the time.
#[derive(Debug, Clone, Default)]
pub struct Beat {
    /// The process's `--reserve`.
    pub reserve: i64,
    /// Each token's lane (requests it may have in flight), by fingerprint.
    pub concurrency: Vec<(String, i64)>,
}

impl Store {
    /// Registers this process as worker `id`, with its `--reserve` (for `status`).
    pub async fn register_worker(&self, id: &str, reserve: i64, now: i64) -> Result<()> {
        let (pid, host) = (process::pid(), process::host_name());
        write_tx!(&self.db, |tx| {
            tx.add_worker(id, pid, &host, reserve, now, false).await?;
            // Jobs left by a process that exited without releasing them (or whose lease
            // ran out) are taken over now; those of dead processes when they are reaped
            // below.
            tx.rescue_abandoned(now).await?;
        });
        self.mark_registered(now);
        self.reap_dead_workers(id, now).await
    }

    /// Notes that this process's worker row was written at `now`.
    pub(super) fn mark_registered(&self, now: i64) {
        self.registered_at
            .store(now, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether this process's worker row was written so recently that no other process
    /// can have taken it for dead (half the stale time: room for clock skew between
    /// hosts). A process paused for longer (Ctrl-Z) finds this false and checks its row
    /// before claiming again.
    pub(super) fn registration_fresh(&self) -> bool {
        let at = self
            .registered_at
            .load(std::sync::atomic::Ordering::Relaxed);
        super::now_ms() - at < stale_after_ms() / 2
    }

    /// Renews this worker's heartbeat (registering it again if another process took it
    /// for dead) and the leases of its running jobs, and takes over jobs whose worker
    /// is gone or whose lease ran out.
    /// `beat` also carries what `status` shows of the process: its reserve and the
    /// concurrency its tokens' lanes learned.
    pub async fn heartbeat(&self, id: &str, beat: &Beat, now: i64) -> Result<()> {
        let lease_expires_at = now + LEASE_MS;
        let (pid, host) = (process::pid(), process::host_name());
        write_tx!(&self.db, |tx| {
            for (fingerprint, concurrency) in &beat.concurrency {
                tx.set_concurrency(fingerprint, *concurrency).await?;
            }
            if tx
                .add_worker(id, pid, &host, beat.reserve, now, true)
                .await?
            {
                tracing::warn!(
                    "this process was taken for stopped (paused longer than its heartbeat \
                     allows); its jobs in flight were handed to another worker"
                );
            }
            tx.beat(id, now, lease_expires_at).await?;
            tx.rescue_abandoned(now).await?;
        });
        self.mark_registered(now);
        Ok(())
    }

    /// Deletes the rows of workers that are gone: a dead pid on this host (or our own
    /// pid under another worker id: a previous process's), or a heartbeat older than
    /// [`STALE_AFTER_MS`] anywhere.
    pub async fn reap_dead_workers(&self, me: &str, now: i64) -> Result<()> {
        let (my_pid, host) = (process::pid(), process::host_name());
        let rows = read!(&self.db, |c| c.worker_beats().await?);
        let dead: Vec<String> = rows
            .into_iter()
            .filter(|w| w.id != me)
            .filter(|w| {
                w.heartbeat_at < now - stale_after_ms()
                    || (w.host == host && (w.pid == my_pid || !process::alive(w.pid)))
            })
            .map(|w| w.id)
            .collect();
        if dead.is_empty() {
            return Ok(());
        }
        write_tx!(&self.db, |tx| {
            for id in &dead {
                tx.delete_worker(id).await?;
            }
            tx.rescue_abandoned(now).await?;
        });
        tracing::info!(
            count = dead.len(),
            "found work left by a stopped process; resuming it"
        );
        Ok(())
    }

    pub async fn deregister_worker(&self, id: &str) -> Result<()> {
        write_tx!(&self.db, |tx| tx.delete_worker(id).await?);
        Ok(())
    }
}
