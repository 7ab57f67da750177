//! Everything that speaks to GitHub: the client, the rate-limit headers, error
//! classification, `link` pagination, the endpoints and their page formats.

pub mod client;
pub mod error;
pub mod kinds;
pub mod link;
pub mod pages;
pub mod ratelimit;

pub use client::{Body, Client, Fetched};
pub use error::FetchError;
pub use kinds::Kind;
pub use ratelimit::RateLimit;
