//! One file per subcommand. Each returns the process exit code, or an error that
//! `main` turns into a message and a code.

pub mod enqueue;
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
