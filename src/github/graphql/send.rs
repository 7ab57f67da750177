//! Sending a query: `POST {endpoint}` with one token, its answer classified.
//!
//! Beside what a REST answer can mean (`FetchError`), a GraphQL request can time out
//! on GitHub's side (10 s: a 502 or 504, charged all the same; the batch was too heavy)
//! or find no GraphQL API at all (404 or 410: an older GitHub Enterprise Server, a
//! proxy): seedq then goes on over REST.

use super::answer::{self, Verdict};
use super::query::Query;
use crate::github::client::{authorization, classify, network_error};
use crate::github::{Body, Client, FetchError, RateLimit};
use crate::token::Token;
use reqwest::header;
use thiserror::Error;
use url::Url;

/// A GraphQL request that gave no answer to read.
#[derive(Debug, Error)]
pub enum GraphqlError {
    /// What a REST request can meet too: quota, secondary limits, 401, network.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// GitHub ended the query (502/504): too heavy for its 10 s. It was charged.
    #[error("{0}")]
    Timeout(String),
    /// The server has no GraphQL API (404/410 for the endpoint).
    #[error("{0}")]
    Unavailable(String),
}

/// The result of one query, with the answer's rate-limit headers (GitHub sends the
/// GraphQL bucket's, `x-ratelimit-resource: graphql`).
#[derive(Debug)]
pub struct GraphqlFetched {
    pub rate: Option<RateLimit>,
    pub result: Result<Verdict, GraphqlError>,
}

impl Client {
    /// The GraphQL endpoint of this client's API root (see [`super::endpoint`]).
    pub fn graphql_url(&self) -> Result<Url, FetchError> {
        self.resolve(&super::endpoint(self.api_root()))
    }

    /// Sends `query` with `token`.
    pub async fn graphql(&self, token: &Token, query: &Query) -> GraphqlFetched {
        let done = |rate, result| GraphqlFetched { rate, result };
        let url = match self.graphql_url() {
            Ok(url) => url,
            Err(e) => return done(None, Err(e.into())),
        };
        let Some(auth) = authorization(token) else {
            return done(None, Err(FetchError::BadCredentials.into()));
        };
        let request = self
            .http
            .post(url.clone())
            .header(header::AUTHORIZATION, auth)
            .header(header::ACCEPT, "application/json")
            .header(header::CONTENT_TYPE, "application/json")
            .body(query.body());
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                let message = network_error("POST", &url, &e);
                return done(None, Err(FetchError::Transient(message).into()));
            }
        };
        let rate = RateLimit::from_headers(response.headers());
        let status = response.status().as_u16();
        let result = match status {
            404 | 410 => Err(GraphqlError::Unavailable(format!(
                "POST {url} answered HTTP {status}: this server has no GraphQL API"
            ))),
            502 | 504 => Err(GraphqlError::Timeout(format!(
                "POST {url}: HTTP {status}: GitHub ended the query (timeout)"
            ))),
            _ => match classify("POST", &url, response, rate.as_ref()).await {
                Ok(Body::Page { bytes, .. }) => Ok(answer::read(&bytes)),
                Ok(Body::NotModified) => Err(GraphqlError::Unavailable(format!(
                    "POST {url} answered 304, not GraphQL"
                ))),
                Err(e) => Err(e.into()),
            },
        };
        done(rate, result)
    }
}
