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
