//! The installation tokens of one App: minted at start ([`gather`]), renewed in the
//! background before they expire ([`AppTokens::renew_in_background`]) or at once when a
//! request meets a 401 ([`AppTokens::renew_now`]). See the parent module for the rules.

use super::{renew_at, sign_jwt, AppError, Listed, Minted, REQUEST_TIMEOUT};
use crate::config::{AppConfig, TokenSources};
use crate::github::{Bucket, Client};
use crate::store::queue::TokenEvent;
use crate::store::{now_ms, Store};
use crate::token::Token;
use jsonwebtoken::EncodingKey;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The first wait after a failed renewal; it doubles up to [`RETRY_CAP`].
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_CAP: Duration = Duration::from_secs(60);
/// Attempts to mint at start, for failures that may pass (network, 5xx).
const START_ATTEMPTS: u32 = 3;

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
    /// with the secret `used` (an expired or revoked token, a clock that runs late).
    ///
    /// - `Ok(true)`: a token other than `used` is in place (minted by this call, or by
    ///   a renewal since the request was sent): send the request again, and do not
    ///   record the token invalid;
    /// - `Ok(false)`: `fingerprint` is no installation of this App (a personal token):
    ///   its 401 means what it always did;
    /// - `Err`: GitHub would not renew it: record the token invalid.
    ///
    /// Concurrent calls for one token mint once. A 401 again with the token a 401
    /// renewed means the installation itself is refused: the caller records it invalid
    /// rather than asking again.
    pub async fn renew_now(&self, fingerprint: &str, used: &str) -> Result<bool, AppError> {
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
        if installation.token.secret() != used {
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
