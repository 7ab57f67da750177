//! Shared support for seedq's integration tests: the fake GitHub server and the harness
//! that runs the real `seedq` binary against it.
#![allow(dead_code)]

pub mod fake_github;
pub mod harness;
pub mod postgres;
