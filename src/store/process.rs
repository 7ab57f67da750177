//! This process as a worker row knows it: its host and pid, and whether another
//! process on the same host is still alive.

/// This process's id.
pub fn pid() -> i64 {
    i64::from(std::process::id())
}

/// The host name a worker row records (to tell whether a pid can be checked here):
/// `SEEDQ_HOST` when set (for containers that share a host name but not a process
/// table), else the machine's.
pub fn host_name() -> String {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        std::env::var("SEEDQ_HOST")
            .ok()
            .filter(|h| !h.trim().is_empty())
            .or_else(|| {
                std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .ok()
                    .map(|h| h.trim().to_owned())
            })
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "unknown".to_owned())
    })
    .clone()
}

/// Whether `pid` is a live (not zombie) process. Where `/proc` is missing the answer is
/// "alive", and the heartbeat decides.
pub fn alive(pid: i64) -> bool {
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
