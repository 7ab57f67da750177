//! GitHub Apps: the apps a server knows ([`FakeApp`], [`FakeInstallation`]), the check of
//! an app's JWT ([`Apps::verify`]) and the installation access tokens it mints
//! ([`Apps::mint`]). The endpoints themselves are in [`super::app_routes`].
//!
//! The JWT is checked as GitHub documents it
//! (<https://docs.github.com/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-json-web-token-jwt-for-a-github-app>):
//! signed with RS256 by the app's private key; `iss` the app's id (GitHub takes the number
//! or its string) or its client id (`Iv1.` + 16 hex digits here, [`FakeApp::client_id`]);
//! `iat` not in the future; `exp` in the future and "no more than 10 minutes into the
//! future". Refusals carry the messages GitHub sends, as users report them:
//!
//! | refusal | status, message | reported in |
//! |---|---|---|
//! | not a JWT, not RS256, bad signature, another app's key | 401 [`JWT_UNDECODABLE`] | octokit/auth-app.js#375, actions/create-github-app-token#153 |
//! | `iss` neither a number nor a known client id | 401 [`JWT_ISS_INVALID`] | actions/create-github-app-token#386 |
//! | `iss` a number that is no app's id | 404 [`INTEGRATION_NOT_FOUND`] | octokit/authentication-strategies.js#165 |
//! | `iat` missing, not an integer, or in the future | 401 [`JWT_IAT_INVALID`] | probot/probot#967, adriangodong/githubjwt#60 |
//! | `exp` missing or not after now | 401 [`JWT_EXPIRED`] | PyGithub's recorded tests (`testGetAccessTokenWithExpiredJWT`) |
//! | `exp` more than 10 minutes after now or after `iat` | 401 [`JWT_EXP_TOO_FAR`] | rocq-prover/bot#204, probot/probot#942, octokit/auth-app.js#698 |
//!
//! GitHub tolerates next to no clock skew for `iat` (a client whose clock ran a few seconds
//! ahead was refused, adriangodong/githubjwt#60, microsoft/AL-Go#2289); the fake allows
//! [`JWT_CLOCK_SKEW_SECS`]. That `exp - iat` may not pass 600 s either is this fake's
//! reading (GitHub's docs state the limit from now only; every client library keeps both).
//!
//! A minted token (`ghs_` + 36 letters and digits) authenticates REST and GraphQL requests
//! until its `expires_at` (now + [`FakeApp::token_ttl`], whole seconds), then gets 401 "Bad
//! credentials", as does a `ghs_` token this server never minted (only when apps are
//! configured: without apps any token is valid, as before). Every token of an installation
//! shares the account `installation:{id}`, whose REST limit and GraphQL points are the
//! installation's `limit` (GitHub scales both alike for installations).

use std::collections::HashMap;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rand::Rng;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// 401: the token is not a JWT, or its signature does not verify with the app's key.
pub const JWT_UNDECODABLE: &str = "A JSON web token could not be decoded";
/// 401: `iss` is neither an app id nor a client id.
pub const JWT_ISS_INVALID: &str = "'Issuer' claim ('iss') must be an Integer";
/// 404: `iss` names no app.
pub const INTEGRATION_NOT_FOUND: &str = "Integration not found";
/// 401: `iat` is missing, not an integer, or in the future.
pub const JWT_IAT_INVALID: &str =
    "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued";
/// 401: `exp` is missing, not a number, or not in the future.
pub const JWT_EXPIRED: &str = "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires";
/// 401: `exp` is more than 10 minutes away (from now, or from `iat`).
pub const JWT_EXP_TOO_FAR: &str = "'Expiration time' claim ('exp') is too far in the future";
/// Longest JWT lifetime GitHub accepts, in seconds.
pub const JWT_MAX_LIFETIME_SECS: i64 = 600;
/// Seconds an `iat` (or an `exp`) may be ahead of the server's clock.
pub const JWT_CLOCK_SKEW_SECS: i64 = 1;
/// Default lifetime of an installation token (GitHub: one hour).
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(3600);

/// A GitHub App the server knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeApp {
    /// The app id: a JWT's `iss` (number or string).
    pub id: u64,
    /// The app's client id, also accepted as `iss` (default: [`FakeApp::default_client_id`]).
    pub client_id: String,
    /// The app's RSA public key, PEM (`BEGIN PUBLIC KEY` or `BEGIN RSA PUBLIC KEY`). A key
    /// that does not parse makes every JWT of the app undecodable.
    pub public_key_pem: String,
    /// Where the app is installed; listed by `GET /app/installations` in this order.
    pub installations: Vec<FakeInstallation>,
    /// Lifetime of the tokens it mints (GitHub: one hour; tests use seconds).
    pub token_ttl: Duration,
}

/// One installation of an app, on an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeInstallation {
    /// The installation id (`/app/installations/{id}/access_tokens`).
    pub id: u64,
    /// The login of the organisation or user it is installed on (a user when listed in
    /// `FakeConfig::users`, else an organisation).
    pub account: String,
    /// Primary limit of its tokens, REST requests and GraphQL points per window alike
    /// (GitHub: 5,000 to 12,500 an hour, 15,000 on Enterprise Cloud).
    pub limit: u32,
}

impl FakeInstallation {
    /// Installation `id` on `account` with `limit` requests (and points) per window.
    pub fn new(id: u64, account: &str, limit: u32) -> FakeInstallation {
        FakeInstallation {
            id,
            account: account.to_string(),
            limit,
        }
    }

    /// The rate-limit account all of its tokens share.
    pub fn account_login(id: u64) -> String {
        format!("installation:{id}")
    }
}

impl FakeApp {
    /// App `id` verifying JWTs with `public_key_pem`, installed as `installations`, minting
    /// tokens that last an hour, with the client id [`FakeApp::default_client_id`].
    pub fn new(id: u64, public_key_pem: &str, installations: Vec<FakeInstallation>) -> FakeApp {
        FakeApp {
            id,
            client_id: FakeApp::default_client_id(id),
            public_key_pem: public_key_pem.to_string(),
            installations,
            token_ttl: DEFAULT_TOKEN_TTL,
        }
    }

    /// The same app, minting tokens that last `ttl`.
    pub fn token_ttl(self, ttl: Duration) -> FakeApp {
        FakeApp {
            token_ttl: ttl,
            ..self
        }
    }

    /// `Iv1.` and 16 hex digits derived from the app id, shaped like GitHub's client ids.
    pub fn default_client_id(id: u64) -> String {
        let digest = Sha256::digest(format!("client-id:{id}").as_bytes());
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("Iv1.{hex}")
    }

    /// Whether `pem` is an RSA public key that JWTs can be verified with (the example binary
    /// checks its `--app` keys with it).
    pub fn check_public_key(pem: &str) -> Result<(), String> {
        // jsonwebtoken also takes a private key here, which then verifies nothing.
        if !pem.contains("PUBLIC KEY-----") {
            return Err("not a public key (BEGIN PUBLIC KEY or BEGIN RSA PUBLIC KEY)".into());
        }
        DecodingKey::from_rsa_pem(pem.as_bytes())
            .map(|_| ())
            .map_err(|e| format!("not an RSA public key in PEM: {e}"))
    }
}

/// Why a JWT was refused: the status and GitHub's message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// 401, or 404 for an unknown app.
    pub status: u16,
    /// The `message` of the answer.
    pub message: &'static str,
}

impl Refusal {
    /// A 401 with `message`.
    fn unauthorized(message: &'static str) -> Refusal {
        Refusal {
            status: 401,
            message,
        }
    }
}

/// A token minted by [`Apps::mint`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Minted {
    /// Its installation.
    pub installation: u64,
    /// The installation's limit.
    pub limit: u32,
    /// When it stops working (epoch ms, a whole second: its `expires_at`).
    pub expires_ms: u64,
}

/// The apps of a running server and the tokens they minted.
pub struct Apps {
    /// The configured apps, each with its parsed key (None when the PEM does not parse).
    apps: Vec<(FakeApp, Option<DecodingKey>)>,
    /// Every token minted, by token.
    minted: HashMap<String, Minted>,
}

impl Apps {
    /// The runtime state of `apps` (no token minted yet).
    pub fn new(apps: &[FakeApp]) -> Apps {
        Apps {
            apps: apps
                .iter()
                .map(|a| {
                    let key = FakeApp::check_public_key(&a.public_key_pem)
                        .ok()
                        .and_then(|_| DecodingKey::from_rsa_pem(a.public_key_pem.as_bytes()).ok());
                    (a.clone(), key)
                })
                .collect(),
            minted: HashMap::new(),
        }
    }

    /// The token's installation, if this server minted it (expired or not).
    pub fn minted(&self, token: &str) -> Option<Minted> {
        self.minted.get(token).copied()
    }

    /// Ends every token minted so far for `installation` (a revocation, or a clock that
    /// ran ahead): they get 401 from now on; tokens minted later work. How many ended.
    pub fn revoke(&mut self, installation: u64) -> usize {
        let mut ended = 0;
        for m in self.minted.values_mut() {
            if m.installation == installation && m.expires_ms > 0 {
                m.expires_ms = 0;
                ended += 1;
            }
        }
        ended
    }

    /// Whether `token` may authenticate at `now_ms`: not a minted token past its expiry, nor
    /// (when apps are configured) a `ghs_` token never minted here.
    pub fn accepts(&self, token: &str, now_ms: u64) -> bool {
        match self.minted.get(token) {
            Some(m) => now_ms < m.expires_ms,
            None => self.apps.is_empty() || !token.starts_with("ghs_"),
        }
    }

    /// Checks an app JWT (see the module docs) at `now_secs` (epoch seconds): the app it
    /// authenticates, or the refusal.
    pub fn verify(&self, jwt: &str, now_secs: i64) -> Result<&FakeApp, Refusal> {
        let undecodable = Refusal::unauthorized(JWT_UNDECODABLE);
        // The issuer picks the key, so the claims are read before the signature is checked;
        // nothing read here is trusted until it is.
        let mut unverified = lenient(Algorithm::RS256);
        unverified.insecure_disable_signature_validation();
        let claims =
            jsonwebtoken::decode::<Value>(jwt, &DecodingKey::from_secret(&[]), &unverified)
                .map_err(|_| undecodable)?
                .claims;
        let (app, key) = self.issuer(claims.get("iss"))?;
        let key = key.ok_or(undecodable)?;
        let claims = jsonwebtoken::decode::<Value>(jwt, key, &lenient(Algorithm::RS256))
            .map_err(|_| undecodable)?
            .claims;
        let iat = claims
            .get("iat")
            .and_then(Value::as_i64)
            .filter(|&iat| iat <= now_secs + JWT_CLOCK_SKEW_SECS)
            .ok_or(Refusal::unauthorized(JWT_IAT_INVALID))?;
        let exp = claims
            .get("exp")
            .and_then(Value::as_f64)
            .filter(|&exp| exp > now_secs as f64)
            .ok_or(Refusal::unauthorized(JWT_EXPIRED))?;
        let latest = (now_secs + JWT_MAX_LIFETIME_SECS + JWT_CLOCK_SKEW_SECS)
            .min(iat + JWT_MAX_LIFETIME_SECS) as f64;
        if exp > latest {
            return Err(Refusal::unauthorized(JWT_EXP_TOO_FAR));
        }
        Ok(app)
    }

    /// The app an `iss` claim names, with its key.
    fn issuer(&self, iss: Option<&Value>) -> Result<(&FakeApp, Option<&DecodingKey>), Refusal> {
        let id = match iss {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => match s.parse::<u64>() {
                Ok(id) => Some(id),
                Err(_) => {
                    let by_client = self.apps.iter().find(|(a, _)| a.client_id == *s);
                    if let Some((app, key)) = by_client {
                        return Ok((app, key.as_ref()));
                    }
                    None
                }
            },
            _ => None,
        };
        let id = id.ok_or(Refusal::unauthorized(JWT_ISS_INVALID))?;
        self.apps
            .iter()
            .find(|(a, _)| a.id == id)
            .map(|(app, key)| (app, key.as_ref()))
            .ok_or(Refusal {
                status: 404,
                message: INTEGRATION_NOT_FOUND,
            })
    }

    /// Mints a token for installation `installation` of `app` at `now_ms`: the token and its
    /// record, or None when the app has no such installation.
    pub fn mint(&mut self, app: u64, installation: u64, now_ms: u64) -> Option<(String, Minted)> {
        let (app, _) = self.apps.iter().find(|(a, _)| a.id == app)?;
        let inst = app.installations.iter().find(|i| i.id == installation)?;
        let ttl_ms = app.token_ttl.as_millis() as u64;
        let minted = Minted {
            installation,
            limit: inst.limit,
            // Valid until the second that `expires_at` shows, not a moment longer.
            expires_ms: (now_ms + ttl_ms) / 1000 * 1000,
        };
        let mut rng = rand::thread_rng();
        let token = loop {
            let tail: String = (0..36)
                .map(|_| char::from(rng.sample(rand::distributions::Alphanumeric)))
                .collect();
            let token = format!("ghs_{tail}");
            if !self.minted.contains_key(&token) {
                break token;
            }
        };
        self.minted.insert(token.clone(), minted);
        Some((token, minted))
    }
}

/// A validation that checks the signature and algorithm only: the claims are checked by
/// [`Apps::verify`] itself, with GitHub's messages.
fn lenient(alg: Algorithm) -> Validation {
    let mut v = Validation::new(alg);
    v.required_spec_claims.clear();
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.leeway = 0;
    v
}

/// What the request log and the per-token stats show for a JWT (and for any token sent to
/// an app endpoint): never the token itself, a fingerprint (`jwt:` + the first 8 hex
/// digits of its sha256).
pub fn jwt_label(jwt: &str) -> String {
    let digest = Sha256::digest(jwt.as_bytes());
    let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("jwt:{hex}")
}

/// Whether a bearer token has a JWT's shape: three dot-separated parts, the first a
/// base64url JSON object (`eyJ`). Such tokens are logged by [`jwt_label`] only.
pub fn looks_like_jwt(token: &str) -> bool {
    token.starts_with("eyJ") && token.split('.').count() == 3
}
