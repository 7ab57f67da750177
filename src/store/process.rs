//! This process as a worker row knows it: its host and pid, and whether another
//! process on the same host is still alive.

/// This process's id.
pub fn pid() -> i64 {
    i64::from(std::process::id())
}

/// The host name a worker row records (to tell whether a pid can be checked here).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".to_owned())
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
