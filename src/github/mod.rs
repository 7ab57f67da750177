//! Everything that speaks to GitHub: the client, the rate-limit headers, error
//! classification, `link` pagination, the endpoints and their page formats, and the
//! GraphQL queries and answers.

pub mod app;
pub mod client;
pub mod error;
pub mod graphql;
pub mod kinds;
pub mod link;
pub mod pages;
pub mod ratelimit;

pub use client::{Body, Client, Fetched, RateLimits};
pub use error::FetchError;
pub use graphql::{GraphqlError, GraphqlFetched};
pub use kinds::Kind;
pub use ratelimit::{Bucket, RateLimit};
