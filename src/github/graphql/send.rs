//! Sending a query: `POST {endpoint}` with one token, its answer classified.
//!
//! Beside what a REST answer can mean (`FetchError`), a GraphQL request can time out
//! on GitHub's side (10 s: a 502 or 504, charged all the same; the batch was too heavy)
//! or find no GraphQL API at all (404 or 410: an older GitHub Enterprise Server, a
//! proxy): seedq then goes on over REST.

use super::answer::{self, Verdict};
use super::query::Query;
use crate::github::client::{authorization, classify, network_error, read_capped};
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
    /// GitHub ended the query (504, or 502 saying so): too heavy for its 10 s. It was
    /// charged.
    #[error("{0}")]
    Timeout(String),
    /// A 502 that does not say why: a passing fault, or a timeout behind a proxy's
    /// error page (the worker tells them apart by whether the same jobs meet it again).
    #[error("{0}")]
    BadGateway(String),
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
            504 => Err(GraphqlError::Timeout(format!(
                "POST {url}: HTTP 504: GitHub ended the query (timeout)"
            ))),
            502 => {
                // Capped like any body; a body that cannot be read says nothing.
                let body = read_capped("POST", &url, response)
                    .await
                    .unwrap_or_default();
                let message = format!("POST {url}: HTTP 502: {}", excerpt(&body));
                Err(if says_timeout(&body) {
                    GraphqlError::Timeout(message)
                } else {
                    GraphqlError::BadGateway(message)
                })
            }
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

/// Whether a 502's body is GitHub's GraphQL timeout ("Something went wrong while
/// executing your query. This may be the result of a timeout, …", or "We couldn't
/// respond to your request in time").
fn says_timeout(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(&body[..body.len().min(4096)]).to_ascii_lowercase();
    text.trim_start().starts_with('{')
        && ["timeout", "something went wrong", "in time"]
            .iter()
            .any(|m| text.contains(m))
}

/// The start of a body, for a message.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    text.lines().next().unwrap_or("").trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_502_is_a_timeout_when_its_graphql_body_says_so() {
        let github = br#"{"data":null,"errors":[{"message":"Something went wrong while executing your query. This may be the result of a timeout, or it could be a GitHub bug. Please include `0400:3A2B` when reporting this issue."}]}"#;
        assert!(says_timeout(github));
        assert!(!says_timeout(
            b"<html><h1>502 Bad Gateway</h1> Unicorn! taking too long</html>"
        ));
        assert!(!says_timeout(b""));
    }
}
