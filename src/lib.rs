//! seedq seeds a SQLite database with a GitHub repository's pull-request history.
//!
//! How the parts fit: `commands/` are the subcommands. `enqueue` records work in the
//! [`store`] (a SQLite queue of jobs, one page each). `work` runs the [`worker`] loop:
//! claim work and reserve its token in one transaction ([`store::queue`]; token and
//! bucket chosen in SQL in [`store::tokens`]) — one REST page, or a batch of pages that
//! one GraphQL query fetches — fetch it with the [`github`] client (REST pages, or
//! [`github::graphql`] queries whose answers become the same rows), then store the rows
//! and the follow-up jobs ([`followups`]), reconcile the token and claim the next work,
//! in one more transaction, which the jobs of the process's other workers that finished
//! meanwhile share (group commit, `store::commit`). [`pool`] holds the tokens' secrets
//! (the store knows only fingerprints).

pub mod cli;
pub mod commands;
pub mod config;
pub mod display;
pub mod followups;
pub mod github;
pub mod pool;
pub mod store;
pub mod token;
pub mod worker;
