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
use crate::config::{AppConfig, TokenSources};
use crate::github::Bucket;
use crate::store::queue::TokenEvent;
use crate::store::{now_ms, Store};
use crate::token::Token;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::{self, HeaderValue};
use reqwest::{Method, StatusCode};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use url::Url;

/// How far in the past a JWT's `iat` is put, for clocks that run ahead of GitHub's.
pub const JWT_BACKDATE_SECS: i64 = 60;
/// How far ahead of now a JWT's `exp` is: `exp − iat` = 600 s, GitHub's maximum.
pub const JWT_EXPIRES_IN_SECS: i64 = 540;
/// The longest a token is renewed ahead of its expiry (shorter lifetimes: half of it).
pub const MAX_RENEW_AHEAD: Duration = Duration::from_secs(5 * 60);
/// A token minted less than this long ago is taken as fresh by [`AppTokens::renew_now`]:
/// the 401 that asked for it was for its predecessor.
pub const FRESH_FOR: Duration = Duration::from_secs(1);
/// The first wait after a failed renewal; it doubles up to [`RETRY_CAP`].
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_CAP: Duration = Duration::from_secs(60);
/// Attempts to mint at start, for failures that may pass (network, 5xx).
const START_ATTEMPTS: u32 = 3;
/// Timeout of one App request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
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

/// The installation tokens of one App, kept fresh. Clones share them.
///
/// For the worker: a request sent with an installation token ([`Token::is_installation`])
/// that comes back 401 may only have met an expired token. Call
/// [`AppTokens::renew_now`] with its fingerprint before recording the token invalid.
#[derive(Clone)]
pub struct AppTokens {
    shared: Arc<Shared>,
}

struct Shared {
    app_id: u64,
    /// Signs a JWT for each minting.
    key: EncodingKey,
    /// Speaks to the App endpoints of the API root.
    client: Client,
    /// Every installation that got a token at start.
    installations: Vec<Installation>,
}

/// One installation and the state of its token.
struct Installation {
    id: u64,
    /// Its row in the tokens table; the secret is replaced at each renewal.
    token: Token,
    /// The account it is installed on, when the App's listing said.
    account: Option<String>,
    /// When the current secret was minted and when it expires (epoch ms).
    minted_at_ms: AtomicI64,
    expires_at_ms: AtomicI64,
    /// Counts mintings: a renewal that saw generation g and finds another knows the
    /// token was renewed meanwhile, and mints nothing.
    generation: AtomicU64,
    /// One minting at a time per installation.
    renewing: tokio::sync::Mutex<()>,
}

/// An installation GitHub would not give a token at start.
pub struct Refused {
    /// Its row (no secret), to mark invalid.
    pub token: Token,
    pub error: AppError,
}

/// What the tokens of one command are: the personal tokens and the App's
/// installations that got a token, and the installations refused.
pub struct Gathered {
    /// Personal tokens first, then one per installation.
    pub tokens: Vec<Token>,
    /// The App's tokens, to renew (and for the worker's [`AppTokens::renew_now`]);
    /// `None` without an App or when none of its installations got a token.
    pub apps: Option<AppTokens>,
    /// Installations refused at minting (401, 404): invalid rows of the tokens table.
    pub refused: Vec<Refused>,
}

/// Gathers the tokens of `sources`, minting the App's installation tokens at `api_url`.
/// Fails (exit 1) when no token is left at all, saying why.
pub async fn gather(sources: TokenSources, api_url: &str) -> anyhow::Result<Gathered> {
    let TokenSources { personal, app } = sources;
    let Some(app) = app else {
        return Ok(Gathered {
            tokens: personal,
            apps: None,
            refused: Vec::new(),
        });
    };
    let client = Client::new(api_url, REQUEST_TIMEOUT)?;
    let (apps, refused, problem) = AppTokens::start(&app, client).await;
    let mut tokens = personal;
    let personal_count = tokens.len();
    tokens.extend(apps.tokens());
    if let Some(problem) = &problem {
        if tokens.is_empty() {
            anyhow::bail!(
                "no usable GitHub token: {problem}, and no personal token is set \
                 (GITHUB_SEEDING_TOKENS, GITHUB_SEEDING_TOKEN or --token-file)"
            );
        }
        tracing::error!("{problem}; going on with the other tokens");
    }
    if !apps.shared.installations.is_empty() {
        tracing::info!(
            "GitHub App {}: {} installation token(s) beside {personal_count} personal token(s); \
             renewed before they expire",
            app.app_id,
            apps.shared.installations.len()
        );
    }
    Ok(Gathered {
        tokens,
        apps: (!apps.shared.installations.is_empty()).then_some(apps),
        refused,
    })
}

impl Gathered {
    /// Records the refused installations in the tokens table as invalid, so that
    /// `status` shows them.
    pub async fn register_refused(&self, store: &Store) -> crate::store::Result<()> {
        if self.refused.is_empty() {
            return Ok(());
        }
        let rows: Vec<Token> = self.refused.iter().map(|r| r.token.clone()).collect();
        let now = now_ms();
        store.register_tokens(&rows, now).await?;
        for row in &rows {
            store
                .record_token_event(row.fingerprint(), Bucket::Core, TokenEvent::Invalid, now)
                .await?;
        }
        Ok(())
    }

    /// Starts renewing the installation tokens in the background; they are renewed
    /// until the returned guard is dropped.
    pub fn renew_in_background(&self) -> Option<Renewal> {
        self.apps.as_ref().map(AppTokens::renew_in_background)
    }
}

/// The renewal tasks; dropping it stops them.
pub struct Renewal {
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Renewal {
    fn drop(&mut self) {
        self.stop.cancel();
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl AppTokens {
    /// Mints a token for each installation: the App's tokens, the installations
    /// refused, and what kept the App from giving any token (listing refused, no
    /// installation, every one refused).
    async fn start(app: &AppConfig, client: Client) -> (AppTokens, Vec<Refused>, Option<String>) {
        let app_id = app.app_id;
        let mut shared = Shared {
            app_id,
            key: app.key.clone(),
            client,
            installations: Vec::new(),
        };
        let mut refused = Vec::new();
        let listed = match &app.installation_ids {
            Some(ids) => ids.iter().map(|&id| Listed { id, account: None }).collect(),
            None => match shared.list().await {
                Ok(listed) => listed,
                Err(e) => {
                    let problem = format!(
                        "GitHub App {app_id}: GitHub refused to list its installations \
                         (GET /app/installations: {e}){}",
                        listing_hint(&e)
                    );
                    return (AppTokens::from(shared), refused, Some(problem));
                }
            },
        };
        if listed.is_empty() {
            let problem = format!(
                "GitHub App {app_id} has no installation: install it on the organisations or \
                 accounts whose repositories you seed"
            );
            return (AppTokens::from(shared), refused, Some(problem));
        }
        let minted =
            futures_util::future::join_all(listed.iter().map(|one| shared.mint_at_start(one.id)))
                .await;
        for (one, minted) in listed.into_iter().zip(minted) {
            let token = Token::installation(app_id, one.id, "");
            match minted {
                Ok(minted) => {
                    token.replace_secret(&minted.secret);
                    shared.installations.push(Installation {
                        id: one.id,
                        token,
                        account: one.account,
                        minted_at_ms: AtomicI64::new(now_ms()),
                        expires_at_ms: AtomicI64::new(minted.expires_at_ms),
                        generation: AtomicU64::new(0),
                        renewing: tokio::sync::Mutex::new(()),
                    });
                }
                Err(error) => {
                    let hint = match (&error, &app.installation_ids) {
                        (AppError::Refused { .. }, Some(_)) => {
                            "; check GITHUB_APP_INSTALLATION_IDS: is it one of this App's \
                             installations?"
                        }
                        (AppError::Refused { .. }, None) => {
                            "; check the installation on GitHub (suspended?)"
                        }
                        _ => "",
                    };
                    tracing::error!(
                        token = %token,
                        "{token}: no installation token: {error}{hint}; the other tokens carry on"
                    );
                    if matches!(error, AppError::Refused { .. }) {
                        refused.push(Refused { token, error });
                    }
                }
            }
        }
        let problem = shared.installations.is_empty().then(|| {
            format!(
                "GitHub App {app_id}: none of its installations got a token (see the errors \
                 above){}",
                if app.installation_ids.is_some() {
                    "; check GITHUB_APP_INSTALLATION_IDS"
                } else {
                    ""
                }
            )
        });
        (AppTokens::from(shared), refused, problem)
    }

    /// The installation tokens, one per installation.
    pub fn tokens(&self) -> Vec<Token> {
        self.shared
            .installations
            .iter()
            .map(|i| i.token.clone())
            .collect()
    }

    /// The account an installation token's installation is on, when known.
    pub fn account(&self, fingerprint: &str) -> Option<&str> {
        self.shared
            .find(fingerprint)
            .and_then(|i| i.account.as_deref())
    }

    /// Renews the installation token of `fingerprint` now, for a request that got 401
    /// with it (an expired token, a clock that runs late).
    ///
    /// - `Ok(true)`: a fresh token is in place (minted by this call, or by another
    ///   renewal less than [`FRESH_FOR`] ago or while this call waited): send the
    ///   request again, and do not record the token invalid;
    /// - `Ok(false)`: `fingerprint` is no installation of this App (a personal token):
    ///   its 401 means what it always did;
    /// - `Err`: GitHub would not renew it: record the token invalid.
    ///
    /// Concurrent calls for one installation mint once. A 401 again right after a
    /// renewal means the installation itself is refused: record it invalid rather than
    /// asking again.
    pub async fn renew_now(&self, fingerprint: &str) -> Result<bool, AppError> {
        let Some(index) = self
            .shared
            .installations
            .iter()
            .position(|i| i.token.fingerprint() == fingerprint)
        else {
            return Ok(false);
        };
        let installation = &self.shared.installations[index];
        let seen = installation.generation.load(Ordering::SeqCst);
        let minted_at = installation.minted_at_ms.load(Ordering::SeqCst);
        if now_ms() - minted_at < FRESH_FOR.as_millis() as i64 {
            return Ok(true);
        }
        tracing::info!(token = %installation.token, "{}: 401 with its token; renewing it now", installation.token);
        self.shared.renew(index, seen).await?;
        Ok(true)
    }

    /// Starts one renewal task per installation (see the module docs).
    pub fn renew_in_background(&self) -> Renewal {
        let stop = CancellationToken::new();
        let tasks = (0..self.shared.installations.len())
            .map(|index| tokio::spawn(keep_fresh(self.shared.clone(), index, stop.clone())))
            .collect();
        Renewal { stop, tasks }
    }
}

impl From<Shared> for AppTokens {
    fn from(shared: Shared) -> AppTokens {
        AppTokens {
            shared: Arc::new(shared),
        }
    }
}

/// What to check after `GET /app/installations` was refused.
fn listing_hint(error: &AppError) -> &'static str {
    match error {
        AppError::Refused { status: 401, .. } => {
            ": check GITHUB_APP_ID and that GITHUB_APP_PRIVATE_KEY_PATH is a current private \
             key of that App"
        }
        AppError::Refused { status: 404, .. } => ": no App has that id: check GITHUB_APP_ID",
        _ => "",
    }
}

impl Shared {
    fn jwt(&self) -> Result<String, AppError> {
        sign_jwt(self.app_id, &self.key, chrono::Utc::now().timestamp())
            .map_err(|e| AppError::Failed(format!("cannot sign the App's JWT: {e}")))
    }

    fn find(&self, fingerprint: &str) -> Option<&Installation> {
        self.installations
            .iter()
            .find(|i| i.token.fingerprint() == fingerprint)
    }

    async fn list(&self) -> Result<Vec<Listed>, AppError> {
        self.client.app_installations(&self.jwt()?).await
    }

    /// Mints the first token of an installation, trying again a few times over failures
    /// that may pass.
    async fn mint_at_start(&self, installation_id: u64) -> Result<Minted, AppError> {
        let mut delay = RETRY_FIRST;
        let mut attempt = 1;
        loop {
            let minted = self
                .client
                .mint_installation_token(&self.jwt()?, installation_id)
                .await;
            match minted {
                Err(AppError::Failed(why)) if attempt < START_ATTEMPTS => {
                    tracing::warn!(
                        "app {} / installation {installation_id}: minting failed ({why}); \
                         trying again in {} s",
                        self.app_id,
                        delay.as_secs()
                    );
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Mints a new token for installation `index`, unless it was renewed since
    /// generation `seen` (by then another renewal did the work).
    async fn renew(&self, index: usize, seen: u64) -> Result<(), AppError> {
        let installation = &self.installations[index];
        let _one_at_a_time = installation.renewing.lock().await;
        if installation.generation.load(Ordering::SeqCst) != seen {
            return Ok(());
        }
        let minted_at = now_ms();
        let minted = self
            .client
            .mint_installation_token(&self.jwt()?, installation.id)
            .await?;
        installation.token.replace_secret(&minted.secret);
        installation.minted_at_ms.store(minted_at, Ordering::SeqCst);
        installation
            .expires_at_ms
            .store(minted.expires_at_ms, Ordering::SeqCst);
        installation.generation.fetch_add(1, Ordering::SeqCst);
        tracing::debug!(
            token = %installation.token,
            "{}: renewed its token (valid for {} s)",
            installation.token,
            (minted.expires_at_ms - minted_at) / 1000
        );
        Ok(())
    }
}

/// Renews installation `index` at [`renew_at`], over and over, until `stop`.
async fn keep_fresh(shared: Arc<Shared>, index: usize, stop: CancellationToken) {
    let installation = &shared.installations[index];
    loop {
        let seen = installation.generation.load(Ordering::SeqCst);
        let due = renew_at(
            installation.minted_at_ms.load(Ordering::SeqCst),
            installation.expires_at_ms.load(Ordering::SeqCst),
        );
        let wait = Duration::from_millis((due - now_ms()).max(0) as u64);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        let mut delay = RETRY_FIRST;
        let mut said_expired = false;
        while let Err(e) = shared.renew(index, seen).await {
            let now = now_ms();
            let expires_at = installation.expires_at_ms.load(Ordering::SeqCst);
            let pause = if now < expires_at {
                tracing::warn!(
                    token = %installation.token,
                    "{}: could not renew its token ({e}); trying again in {} s, before it \
                     expires in {} s",
                    installation.token,
                    delay.as_secs(),
                    (expires_at - now) / 1000
                );
                delay.min(Duration::from_millis((expires_at - now) as u64))
            } else {
                if !said_expired {
                    tracing::error!(
                        token = %installation.token,
                        "{}: its token expired and could not be renewed ({e}); GitHub refuses \
                         its requests until a renewal succeeds (trying every {} s)",
                        installation.token,
                        RETRY_CAP.as_secs()
                    );
                    said_expired = true;
                }
                RETRY_CAP
            };
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(pause) => {}
            }
            delay = (delay * 2).min(RETRY_CAP);
        }
    }
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
