//! Tokens are secrets: this type keeps the secret out of `Debug`, `Display`, logs and
//! the database. The store knows a token by its [`Token::fingerprint`] and shows it by
//! its [`Token::label`].

use sha2::{Digest, Sha256};
use std::fmt;

/// A GitHub token with its public identity.
#[derive(Clone)]
pub struct Token {
    /// The secret, sent only in the `Authorization` header.
    secret: String,
    /// First 16 hex digits of the secret's SHA-256: the database's key for the token.
    fingerprint: String,
    /// A masked rendering such as `ghp_…x7Qa`, safe to print.
    label: String,
}

impl Token {
    /// Wraps a secret that has already been validated (no whitespace, not empty).
    pub fn new(secret: &str) -> Token {
        Token {
            secret: secret.to_owned(),
            fingerprint: fingerprint(secret),
            label: mask(secret),
        }
    }

    /// The secret, for the `Authorization` header and nothing else.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    pub fn label(&self) -> &str {
        &self.label
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
}
