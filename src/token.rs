//! Tokens are secrets: this type keeps the secret out of `Debug`, `Display`, logs and
//! the database. The store knows a token by its [`Token::fingerprint`] and shows it by
//! its [`Token::label`].
//!
//! A personal token's secret never changes. A GitHub App installation's token is
//! renewed before it expires (see `github::app`): its secret is shared by every clone
//! and replaced in place, while its fingerprint and label, derived from the app and
//! installation ids rather than from the secret, stay the same, so that the database
//! keeps one row per installation across renewals.

use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::{Arc, RwLock};

/// A GitHub token with its public identity.
#[derive(Clone)]
pub struct Token {
    /// The secret, sent only in the `Authorization` header. Shared by clones, so that a
    /// renewal reaches every holder (the pool, the workers) at once.
    secret: Arc<RwLock<String>>,
    /// 16 hex digits of a SHA-256: the database's key for the token. Of the secret for a
    /// personal token, of `app:{APP_ID}:installation:{ID}` for an installation.
    fingerprint: String,
    /// A rendering safe to print: `ghp_…x7Qa`, or `app 12345 / installation 678`.
    label: String,
    /// Which installation the token stands for, if it is one.
    installation: Option<Installation>,
}

/// The ids of a GitHub App installation, public (they are no secret).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Installation {
    pub app_id: u64,
    pub installation_id: u64,
}

impl Token {
    /// Wraps a secret that has already been validated (no whitespace, not empty).
    pub fn new(secret: &str) -> Token {
        Token {
            secret: Arc::new(RwLock::new(secret.to_owned())),
            fingerprint: fingerprint(secret),
            label: mask(secret),
            installation: None,
        }
    }

    /// The token of a GitHub App installation, whose `secret` (an installation access
    /// token, `ghs_…`) is replaced by [`Token::replace_secret`] at each renewal. Empty
    /// for an installation that could not get a token (it is then only a table row).
    pub fn installation(app_id: u64, installation_id: u64, secret: &str) -> Token {
        Token {
            secret: Arc::new(RwLock::new(secret.to_owned())),
            fingerprint: fingerprint(&format!("app:{app_id}:installation:{installation_id}")),
            label: format!("app {app_id} / installation {installation_id}"),
            installation: Some(Installation {
                app_id,
                installation_id,
            }),
        }
    }

    /// The secret, for the `Authorization` header and nothing else. A copy: an
    /// installation's may be renewed at any moment (a request in flight keeps the old
    /// one, still valid until it expires).
    pub fn secret(&self) -> String {
        self.secret
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Puts a renewed secret in place, for this token and every clone of it.
    pub fn replace_secret(&self, secret: &str) {
        let mut current = self.secret.write().unwrap_or_else(|e| e.into_inner());
        secret.clone_into(&mut current);
    }

    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// The app and installation this token stands for; `None` for a personal token.
    pub fn installation_ids(&self) -> Option<Installation> {
        self.installation
    }

    /// Whether this is a GitHub App installation token: a 401 on it may only mean that
    /// it expired, and `github::app::AppTokens::renew_now` gets a fresh one.
    pub fn is_installation(&self) -> bool {
        self.installation.is_some()
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({})", self.label)
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label)
    }
}

/// The short hash that identifies a token in the database.
pub fn fingerprint(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Masks a token for display: its type prefix (`ghp_`, `github_pat_`, …) and last four
/// characters, `ghp_…x7Qa`. Tokens shorter than 16 characters would give away too much
/// that way; they show a fingerprint instead (`…#3f2a9c`).
pub fn mask(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() < 16 {
        return format!("…#{}", &fingerprint(secret)[..6]);
    }
    let prefix = if secret.starts_with("github_pat_") {
        "github_pat_"
    } else {
        match secret.find('_') {
            Some(end) if end <= 4 => &secret[..=end],
            _ => "",
        }
    };
    let last4: String = chars[chars.len() - 4..].iter().collect();
    format!("{prefix}…{last4}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_keeps_prefix_and_last_four() {
        assert_eq!(mask("ghp_abcdefghijklmnopqrstuvwxyz0123x7Qa"), "ghp_…x7Qa");
        assert_eq!(
            mask("github_pat_11ABCDEFG0123456789_abcdefghijklmnop"),
            "github_pat_…mnop"
        );
    }

    #[test]
    fn short_tokens_show_only_a_fingerprint() {
        let label = mask("t1");
        assert!(label.starts_with("…#"));
        assert!(!label.contains("t1"));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let token = Token::new("ghp_secretsecretsecretsecretABCD");
        assert!(!format!("{token:?}").contains("secretsecret"));
        assert_eq!(token.fingerprint().len(), 16);
    }

    #[test]
    fn an_installation_keeps_its_fingerprint_and_label_across_renewals() {
        let token = Token::installation(12345, 678, "ghs_firstfirstfirstfirstfirst0001");
        let held_by_a_worker = token.clone();
        let (fingerprint, label) = (token.fingerprint().to_owned(), token.label().to_owned());
        token.replace_secret("ghs_secondsecondsecondsecond0002");
        assert_eq!(
            held_by_a_worker.secret(),
            "ghs_secondsecondsecondsecond0002"
        );
        assert_eq!(held_by_a_worker.fingerprint(), fingerprint);
        assert_eq!(
            fingerprint,
            super::fingerprint("app:12345:installation:678")
        );
        assert_eq!(label, "app 12345 / installation 678");
        assert!(token.is_installation());
        assert!(!Token::new("ghp_aaaaaaaaaaaaaaaaaaaa").is_installation());
        let shown = format!("{token:?} {token}");
        assert!(!shown.contains("ghs_"), "{shown}");
    }
}
