//! Live `seedq work` processes. A process registers itself, beats every few seconds
//! (renewing the leases of its running jobs), and deregisters on a clean exit. A
//! process killed with `kill -9` leaves a row behind: the next process on the same host
//! sees its pid is gone, deletes the row and rescues its jobs at once, without
//! waiting for a lease to expire; on other hosts a stale heartbeat does the same.

use super::queue::LEASE_MS;
use super::{Result, Store};
use sqlx::SqliteConnection;

/// A worker whose heartbeat is older than this is taken for dead.
pub const STALE_AFTER_MS: i64 = 20_000;

/// [`STALE_AFTER_MS`], or the test-only `SEEDQ_STALE_AFTER_MS`.
fn stale_after_ms() -> i64 {
    static STALE: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *STALE.get_or_init(|| {
        std::env::var("SEEDQ_STALE_AFTER_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(STALE_AFTER_MS)
    })
}

impl Store {
    pub async fn register_worker(&self, id: &str, now: i64) -> Result<()> {
        let pid = i64::from(std::process::id());
        let host = host_name();
        let mut tx = self.begin_immediate().await?;
        sqlx::query!(
            "INSERT INTO workers (id, pid, host, started_at, heartbeat_at) VALUES (?1, ?2, ?3, ?4, ?4)",
            id,
            pid,
            host,
            now
        )
        .execute(&mut *tx)
        .await?;
        // Jobs left by a process that exited without releasing them (or whose lease ran
        // out) are taken over now; those of dead processes when they are reaped below.
        super::queue::rescue_abandoned(&mut tx, now).await?;
        tx.commit().await?;
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
    pub async fn heartbeat(&self, id: &str, now: i64) -> Result<()> {
        let lease_expires_at = now + LEASE_MS;
        let mut tx = self.begin_immediate().await?;
        ensure_registered(&mut tx, id, now).await?;
        sqlx::query!("UPDATE workers SET heartbeat_at = ? WHERE id = ?", now, id)
            .execute(&mut *tx)
            .await?;
        sqlx::query!(
            "UPDATE job_queue SET lease_expires_at = ? WHERE state = 'running' AND lease_owner = ?",
            lease_expires_at,
            id
        )
        .execute(&mut *tx)
        .await?;
        super::queue::rescue_abandoned(&mut tx, now).await?;
        tx.commit().await?;
        self.mark_registered(now);
        Ok(())
    }

    /// Deletes the rows of workers that are gone: a dead pid on this host (or our own
    /// pid under another worker id: a previous process's), or a heartbeat older than
    /// [`STALE_AFTER_MS`] anywhere.
    pub async fn reap_dead_workers(&self, me: &str, now: i64) -> Result<()> {
        let host = host_name();
        let my_pid = i64::from(std::process::id());
        let rows = sqlx::query!("SELECT id, pid, host, heartbeat_at FROM workers")
            .fetch_all(self.pool())
            .await?;
        let dead: Vec<String> = rows
            .into_iter()
            .filter(|w| w.id != me)
            .filter(|w| {
                w.heartbeat_at < now - stale_after_ms()
                    || (w.host == host && (w.pid == my_pid || !process_alive(w.pid)))
            })
            .map(|w| w.id)
            .collect();
        if dead.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_immediate().await?;
        for id in &dead {
            sqlx::query!("DELETE FROM workers WHERE id = ?", id)
                .execute(&mut *tx)
                .await?;
        }
        super::queue::rescue_abandoned(&mut tx, now).await?;
        tx.commit().await?;
        tracing::info!(
            count = dead.len(),
            "found work left by a stopped process; resuming it"
        );
        Ok(())
    }

    pub async fn deregister_worker(&self, id: &str) -> Result<()> {
        let mut tx = self.begin_immediate().await?;
        sqlx::query!("DELETE FROM workers WHERE id = ?", id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Registers worker `id` again if its row is gone: another process took it for dead
/// (it was paused, e.g. Ctrl-Z or a suspended laptop, past [`STALE_AFTER_MS`]) and took
/// over its jobs. Without its row, every job it claimed after resuming would be taken
/// over again at once and fetched twice. Called inside `claim`'s transaction unless
/// the row was written recently (`Store::registration_fresh`).
pub(super) async fn ensure_registered(
    conn: &mut SqliteConnection,
    id: &str,
    now: i64,
) -> Result<()> {
    let pid = i64::from(std::process::id());
    let host = host_name();
    let added = sqlx::query!(
        "INSERT INTO workers (id, pid, host, started_at, heartbeat_at) VALUES (?1, ?2, ?3, ?4, ?4)
         ON CONFLICT (id) DO NOTHING",
        id,
        pid,
        host,
        now
    )
    .execute(&mut *conn)
    .await?;
    if added.rows_affected() > 0 {
        tracing::warn!(
            "this process was taken for stopped (paused longer than its heartbeat allows); \
             its jobs in flight were handed to another worker and it carries on with new ones"
        );
    }
    Ok(())
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// Whether `pid` is a live (not zombie) process. Where `/proc` is missing the answer is
/// "alive", and the heartbeat decides.
fn process_alive(pid: i64) -> bool {
    let proc_root = std::path::Path::new("/proc");
    if !proc_root.join("self").exists() {
        return true;
    }
    match std::fs::read_to_string(proc_root.join(pid.to_string()).join("stat")) {
        // The state is the first field after the command name in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}
