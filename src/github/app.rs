//! GitHub App installation tokens, beside or instead of personal tokens.
//!
//! seedq signs a JWT with the App's private key (RS256; `iat` a minute in the past for
//! clock skew, `exp` nine minutes ahead, so at most ten minutes after `iat` as GitHub
//! requires; `iss` the App id), lists the App's installations (`GET /app/installations`,
//! unless `GITHUB_APP_INSTALLATION_IDS` names them) and mints one token per installation
//! (`POST /app/installations/{id}/access_tokens`). Each installation is one [`Token`]
//! whose fingerprint and label come from the App and installation ids, so the tokens
//! table keeps one row per installation however often its secret is renewed.
//!
//! Renewal: a background task per installation mints a new token at
//! `expires_at − min(5 min, lifetime / 2)` ([`renew_at`]): five minutes ahead for
//! GitHub's one-hour tokens, half-way for short-lived ones. The new secret replaces the
//! old one in place ([`Token::replace_secret`]), so no work stops; a request in flight
//! keeps the old secret, still valid until it expires. A failed renewal is retried with
//! backoff (1 s doubling to 60 s) until the token expires, and every 60 s after that.
//!
//! Secrets: the key, the JWT and the installation tokens live in memory only. They are
//! sent in `Authorization` headers marked sensitive and never appear in an error, a log
//! line or the database (a minting answer's body is never quoted).

use super::client::{network_error, read_capped};
use super::Client;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::{self, HeaderValue};
use reqwest::{Method, StatusCode};
use std::time::Duration;
use thiserror::Error;
use url::Url;

mod tokens;

pub use tokens::{gather, AppTokens, Gathered, Refused, Renewal};

/// How far in the past a JWT's `iat` is put, for clocks that run ahead of GitHub's.
pub const JWT_BACKDATE_SECS: i64 = 60;
/// How far ahead of now a JWT's `exp` is: `exp − iat` = 600 s, GitHub's maximum.
pub const JWT_EXPIRES_IN_SECS: i64 = 540;
/// The longest a token is renewed ahead of its expiry (shorter lifetimes: half of it).
pub const MAX_RENEW_AHEAD: Duration = Duration::from_secs(5 * 60);
/// Timeout of one App request.
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Pages of `GET /app/installations` followed at most (100 installations each).
const MAX_LIST_PAGES: usize = 1_000;

/// The JWT's claims (GitHub reads these three).
#[derive(serde::Serialize)]
struct Claims {
    iat: i64,
    exp: i64,
    iss: u64,
}

/// Signs the App's JWT for `now_secs` (epoch seconds).
pub fn sign_jwt(
    app_id: u64,
    key: &EncodingKey,
    now_secs: i64,
) -> jsonwebtoken::errors::Result<String> {
    let claims = Claims {
        iat: now_secs - JWT_BACKDATE_SECS,
        exp: now_secs + JWT_EXPIRES_IN_SECS,
        iss: app_id,
    };
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, key)
}

/// When to renew a token minted at `minted_at_ms` that expires at `expires_at_ms`
/// (epoch ms): `expires_at − min(5 min, lifetime / 2)`.
pub fn renew_at(minted_at_ms: i64, expires_at_ms: i64) -> i64 {
    let lifetime = (expires_at_ms - minted_at_ms).max(0);
    expires_at_ms - (lifetime / 2).min(MAX_RENEW_AHEAD.as_millis() as i64)
}

/// Why an App request gave no answer to use.
#[derive(Debug, Error)]
pub enum AppError {
    /// GitHub refused it: 401 (the JWT: wrong key, unknown or mistyped App id), 404 (no
    /// such App, or an installation that is not the App's), 403/422 (a suspended
    /// installation). Asking again will not help.
    #[error("HTTP {status}: {message}")]
    Refused { status: u16, message: String },
    /// A network failure, a server error or an answer of another shape: may pass.
    #[error("{0}")]
    Failed(String),
}

/// An installation as `GET /app/installations` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub id: u64,
    /// The organisation or user it is installed on.
    pub account: Option<String>,
}

/// A freshly minted installation token. No `Debug`: it holds the secret.
pub struct Minted {
    secret: String,
    /// Epoch ms.
    pub expires_at_ms: i64,
}

impl Client {
    /// One request to an App endpoint with the App's JWT: the body and the `link`
    /// header's next page on success.
    async fn app_request(
        &self,
        method: Method,
        url: &Url,
        jwt: &str,
    ) -> Result<(Vec<u8>, Option<String>), AppError> {
        let mut auth = HeaderValue::from_str(&format!("Bearer {jwt}"))
            .map_err(|_| AppError::Failed("the App's JWT is not a valid header value".into()))?;
        auth.set_sensitive(true);
        let response = self
            .http
            .request(method.clone(), url.clone())
            .header(header::AUTHORIZATION, auth)
            .header(header::ACCEPT, "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| AppError::Failed(network_error(method.as_str(), url, &e)))?;
        let status = response.status();
        let next = response
            .headers()
            .get(header::LINK)
            .and_then(|v| v.to_str().ok())
            .and_then(super::link::next_url);
        let bytes = read_capped(method.as_str(), url, response)
            .await
            .map_err(|e| AppError::Failed(e.to_string()))?;
        if status.is_success() {
            return Ok((bytes, next));
        }
        let message = github_message(&bytes);
        match status {
            StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS => Err(AppError::Failed(
                format!("{method} {url}: HTTP {}: {message}", status.as_u16()),
            )),
            s if s.is_client_error() => Err(AppError::Refused {
                status: s.as_u16(),
                message,
            }),
            s => Err(AppError::Failed(format!(
                "{method} {url}: HTTP {}: {message}",
                s.as_u16()
            ))),
        }
    }

    /// `GET /app/installations`, every page of 100.
    pub async fn app_installations(&self, jwt: &str) -> Result<Vec<Listed>, AppError> {
        #[derive(serde::Deserialize)]
        struct Item {
            id: u64,
            account: Option<Account>,
        }
        #[derive(serde::Deserialize)]
        struct Account {
            login: String,
        }
        let resolve = |url: &str| {
            self.resolve(url)
                .map_err(|e| AppError::Failed(e.to_string()))
        };
        let mut url = resolve("/app/installations?per_page=100")?;
        let mut listed = Vec::new();
        for _ in 0..MAX_LIST_PAGES {
            let (bytes, next) = self.app_request(Method::GET, &url, jwt).await?;
            let items: Vec<Item> = serde_json::from_slice(&bytes).map_err(|e| {
                AppError::Failed(format!("GET {url}: not a list of installations: {e}"))
            })?;
            listed.extend(items.into_iter().map(|item| Listed {
                id: item.id,
                account: item.account.map(|a| a.login),
            }));
            match next {
                Some(next) => url = resolve(&next)?,
                None => break,
            }
        }
        Ok(listed)
    }

    /// `POST /app/installations/{id}/access_tokens`: a new token for the installation.
    pub async fn mint_installation_token(
        &self,
        jwt: &str,
        installation_id: u64,
    ) -> Result<Minted, AppError> {
        #[derive(serde::Deserialize)]
        struct Answer {
            token: String,
            expires_at: chrono::DateTime<chrono::Utc>,
        }
        let path = format!("/app/installations/{installation_id}/access_tokens");
        let url = self
            .resolve(&path)
            .map_err(|e| AppError::Failed(e.to_string()))?;
        let (bytes, _) = self.app_request(Method::POST, &url, jwt).await?;
        // The body holds the token: its parse error (which may quote it) is not shown.
        let unexpected = || {
            AppError::Failed(format!(
                "POST {url}: the answer has no token and expires_at"
            ))
        };
        let answer: Answer = serde_json::from_slice(&bytes).map_err(|_| unexpected())?;
        let usable = !answer.token.is_empty()
            && answer
                .token
                .chars()
                .all(|c| c.is_ascii_graphic() && c != ',');
        if !usable {
            return Err(unexpected());
        }
        Ok(Minted {
            secret: answer.token,
            expires_at_ms: answer.expires_at.timestamp_millis(),
        })
    }
}

/// GitHub's `{"message": "…"}`, or the start of whatever else came.
fn github_message(bytes: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Body {
        message: Option<String>,
    }
    let text = match serde_json::from_slice::<Body>(bytes) {
        Ok(Body { message: Some(m) }) => m,
        _ => String::from_utf8_lossy(bytes)
            .lines()
            .next()
            .unwrap_or("")
            .to_owned(),
    };
    text.trim().chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_is_five_minutes_ahead_for_an_hour_and_half_way_for_seconds() {
        let hour = 3_600_000;
        assert_eq!(renew_at(0, hour), hour - 5 * 60_000);
        assert_eq!(renew_at(1_000, 4_000), 2_500);
        // A token already expired when minted (clocks apart) is renewed at once.
        assert_eq!(renew_at(5_000, 4_000), 4_000);
    }

    #[test]
    fn the_jwt_is_signed_backdated_and_lives_at_most_ten_minutes() {
        let pem = std::fs::read("tests/fixtures/app-key.pem").unwrap();
        let key = EncodingKey::from_rsa_pem(&pem).unwrap();
        let now = chrono::Utc::now().timestamp();
        let jwt = sign_jwt(12345, &key, now).unwrap();
        let public = std::fs::read("tests/fixtures/app-key.pub.pem").unwrap();
        let public = jsonwebtoken::DecodingKey::from_rsa_pem(&public).unwrap();
        let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
        validation.required_spec_claims.clear();
        let claims = jsonwebtoken::decode::<serde_json::Value>(&jwt, &public, &validation)
            .unwrap()
            .claims;
        assert_eq!(claims["iss"], 12345);
        assert_eq!(claims["iat"], now - 60);
        let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
        assert!(lifetime <= 600, "{lifetime}");
    }
}
