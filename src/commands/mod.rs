//! One file per subcommand. Each returns the process exit code, or an error that
//! `main` turns into a message and a code.

pub mod copy;
pub mod enqueue;
pub mod remove;
pub mod retry;
pub mod status;
pub mod tokens;
pub mod work;

use std::process::ExitCode;

/// Exit codes of the contract (README, "Exit codes").
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILURE: u8 = 1;
    pub const USAGE: u8 = 2;
    /// `work` drained the queue, but some jobs failed.
    pub const JOBS_FAILED: u8 = 3;
    pub const EXHAUSTED: u8 = 75;
    pub const SIGINT: u8 = 130;
    pub const SIGTERM: u8 = 143;
}

pub fn code(value: u8) -> ExitCode {
    ExitCode::from(value)
}

/// Lets a command whose output goes to a reader that stops early (`seedq status | head`)
/// end quietly, as Unix tools do, instead of panicking in `println!` on the closed
/// pipe: SIGPIPE gets its default action back (Rust ignores it). Call it only once no
/// network I/O is left (a socket the server closed raises SIGPIPE too), and never in
/// `work`: a closed log pipe must not stop a seed.
pub fn quiet_on_closed_stdout() {
    #[cfg(unix)]
    // SAFETY: sets the disposition of SIGPIPE to its default; no handler is involved.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// What `SEEDQ_ONE_CPU` asks of `work`: run on one CPU (the default, `1`) or anywhere
/// (`0`). Anything else is refused with a message.
pub fn one_cpu_setting() -> Result<bool, crate::config::UsageError> {
    match std::env::var("SEEDQ_ONE_CPU").as_deref() {
        Err(_) | Ok("1") => Ok(true),
        Ok("0") => Ok(false),
        Ok(other) => Err(crate::config::UsageError(format!(
            "SEEDQ_ONE_CPU={other:?}: expected 1 (run `work` on one CPU, the default) or 0 \
             (let it run on any CPU)"
        ))),
    }
}

/// Keeps this process (and every thread it starts from here on) on the CPU it runs
/// on now. `work` hands every SQL statement from the async runtime's threads to
/// sqlx's SQLite thread and back: on one CPU each hand-off is a plain context switch,
/// across CPUs a wake-up of another CPU, which on the 2-core benchmark machine made a
/// job cost twice the CPU time and half the throughput. One CPU is far more than the
/// quota needs (README, "Performance"). Best effort: on failure nothing changes.
pub fn run_on_one_cpu() {
    #[cfg(target_os = "linux")]
    // SAFETY: `cpu_set_t` is plain data (zeroed is the empty set), and the calls only
    // read the set passed by reference; pid 0 is the calling thread.
    unsafe {
        let cpu = libc::sched_getcpu();
        if cpu < 0 {
            return;
        }
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu as usize, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}
