//! Validated settings: tokens from the environment, repository names, the API root.
//! Everything here runs before the database is opened, so bad input writes nothing.

use crate::token::Token;
use std::path::Path;
use thiserror::Error;
use url::Url;

/// Input the user must fix; `main` prints it and exits 2.
#[derive(Debug, Error)]
#[error("{0}")]
pub struct UsageError(pub String);

fn usage(message: impl Into<String>) -> UsageError {
    UsageError(message.into())
}

/// Where the tokens came from, for messages.
const TOKENS_HELP: &str = "set GITHUB_SEEDING_TOKENS=tok1,tok2 (or GITHUB_SEEDING_TOKEN=tok), \
or pass --token-file PATH with one token per line";

/// Reads the tokens: `--token-file` if given, else `GITHUB_SEEDING_TOKENS`, else
/// `GITHUB_SEEDING_TOKEN`. Blanks and surrounding whitespace are ignored, duplicates merged.
pub fn tokens_from_env(token_file: Option<&Path>) -> Result<Vec<Token>, UsageError> {
    personal_tokens(token_file)?.ok_or_else(no_token)
}

fn no_token() -> UsageError {
    usage(format!(
        "no GitHub token: {TOKENS_HELP}; or configure a GitHub App with GITHUB_APP_ID and \
         GITHUB_APP_PRIVATE_KEY_PATH"
    ))
}

/// Where a command's tokens come from: personal tokens, a GitHub App, or both. At least
/// one of the two is configured; the App's installation tokens are minted later (see
/// `github::app::gather`), once the API root is known.
pub struct TokenSources {
    /// From `--token-file`, `GITHUB_SEEDING_TOKENS` or `GITHUB_SEEDING_TOKEN`; may be
    /// empty when an App is configured.
    pub personal: Vec<Token>,
    /// `GITHUB_APP_ID` and its key, when set.
    pub app: Option<AppConfig>,
}

/// Reads and validates every token setting (no network). Personal tokens are optional
/// when a GitHub App is configured; a bad value of either is a [`UsageError`].
pub fn token_sources(token_file: Option<&Path>) -> Result<TokenSources, UsageError> {
    let app = app_from_env()?;
    let personal = match personal_tokens(token_file)? {
        Some(tokens) => tokens,
        None if app.is_some() => Vec::new(),
        None => return Err(no_token()),
    };
    Ok(TokenSources { personal, app })
}

/// The personal tokens, or `None` when none is configured at all.
fn personal_tokens(token_file: Option<&Path>) -> Result<Option<Vec<Token>>, UsageError> {
    let (source, raw) = if let Some(path) = token_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| usage(format!("cannot read token file {}: {e}", path.display())))?;
        // A file may hold one token per line.
        (
            format!("token file {}", path.display()),
            text.replace('\n', ","),
        )
    } else if let Some(raw) = non_empty_var("GITHUB_SEEDING_TOKENS") {
        ("GITHUB_SEEDING_TOKENS".to_owned(), raw)
    } else if let Some(raw) = non_empty_var("GITHUB_SEEDING_TOKEN") {
        ("GITHUB_SEEDING_TOKEN".to_owned(), raw)
    } else {
        return Ok(None);
    };
    parse_tokens(&raw)
        .map(Some)
        .map_err(|e| usage(format!("{source}: {e}")))
}

fn non_empty_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Splits a token list on commas; rejects tokens with inner whitespace or control
/// characters (a line break pasted into the middle of a token).
pub fn parse_tokens(raw: &str) -> Result<Vec<Token>, String> {
    let mut tokens: Vec<Token> = Vec::new();
    for (index, part) in raw.split(',').enumerate() {
        let secret = part.trim();
        if secret.is_empty() {
            continue;
        }
        if secret.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "entry {} contains whitespace or a control character; tokens are separated by commas",
                index + 1
            ));
        }
        if !secret.is_ascii() {
            return Err(format!(
                "entry {} is not ASCII: not a GitHub token",
                index + 1
            ));
        }
        let token = Token::new(secret);
        if !tokens
            .iter()
            .any(|t| t.fingerprint() == token.fingerprint())
        {
            tokens.push(token);
        }
    }
    if tokens.is_empty() {
        return Err(format!("no token in the list: {TOKENS_HELP}"));
    }
    Ok(tokens)
}

/// A GitHub App, from `GITHUB_APP_ID`, `GITHUB_APP_PRIVATE_KEY_PATH` and
/// `GITHUB_APP_INSTALLATION_IDS`. The key is a secret: `Debug` leaves it out.
#[derive(Clone)]
pub struct AppConfig {
    /// The App's numeric id: the `iss` of its JWTs.
    pub app_id: u64,
    /// The App's RSA private key, checked at load by signing a JWT with it.
    pub key: jsonwebtoken::EncodingKey,
    /// The installations to use; `None`: every installation of the App.
    pub installation_ids: Option<Vec<u64>>,
}

impl std::fmt::Debug for AppConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppConfig")
            .field("app_id", &self.app_id)
            .field("installation_ids", &self.installation_ids)
            .finish_non_exhaustive()
    }
}

const APP_HELP: &str = "a GitHub App needs both GITHUB_APP_ID (the number shown as \"App ID\" \
on the App's settings page) and GITHUB_APP_PRIVATE_KEY_PATH (the .pem file of a private key \
generated there)";

/// Reads the GitHub App settings; `None` when none of them is set.
pub fn app_from_env() -> Result<Option<AppConfig>, UsageError> {
    let id = non_empty_var("GITHUB_APP_ID");
    let key_path = non_empty_var("GITHUB_APP_PRIVATE_KEY_PATH");
    let installations = non_empty_var("GITHUB_APP_INSTALLATION_IDS");
    let (id, key_path) = match (id, key_path) {
        (None, None) if installations.is_none() => return Ok(None),
        (Some(id), Some(path)) => (id, path),
        (None, None) => {
            return Err(usage(format!(
                "GITHUB_APP_INSTALLATION_IDS is set but GITHUB_APP_ID and \
                 GITHUB_APP_PRIVATE_KEY_PATH are not: {APP_HELP}"
            )))
        }
        (Some(_), None) => {
            return Err(usage(format!(
                "GITHUB_APP_ID is set but GITHUB_APP_PRIVATE_KEY_PATH is not: {APP_HELP}"
            )))
        }
        (None, Some(_)) => {
            return Err(usage(format!(
                "GITHUB_APP_PRIVATE_KEY_PATH is set but GITHUB_APP_ID is not: {APP_HELP}"
            )))
        }
    };
    let app_id = parse_app_id(&id)?;
    let key = load_app_key(Path::new(key_path.trim()), app_id)?;
    let installation_ids = installations
        .as_deref()
        .map(parse_installation_ids)
        .transpose()?;
    Ok(Some(AppConfig {
        app_id,
        key,
        installation_ids,
    }))
}

fn parse_app_id(raw: &str) -> Result<u64, UsageError> {
    match raw.trim().parse::<u64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(usage(format!(
            "GITHUB_APP_ID {:?} is not an App id: it must be a positive number, the \"App ID\" \
             shown on the App's settings page (not its client id or name)",
            raw.trim().chars().take(40).collect::<String>()
        ))),
    }
}

/// Reads the App's private key and proves it can sign a JWT (a PEM that is not an RSA
/// private key, an EC key say, fails here rather than at the first request).
fn load_app_key(path: &Path, app_id: u64) -> Result<jsonwebtoken::EncodingKey, UsageError> {
    let pem = std::fs::read(path).map_err(|e| {
        usage(format!(
            "GITHUB_APP_PRIVATE_KEY_PATH: cannot read {}: {e}; set it to the App's private key \
             file (.pem)",
            path.display()
        ))
    })?;
    let not_rsa = |why: String| {
        usage(format!(
            "GITHUB_APP_PRIVATE_KEY_PATH: {} is not an RSA private key in PEM ({why}); GitHub \
             App keys are RSA, `BEGIN RSA PRIVATE KEY` (PKCS#1) or `BEGIN PRIVATE KEY` (PKCS#8): \
             generate one on the App's settings page",
            path.display()
        ))
    };
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(&pem).map_err(|e| not_rsa(e.to_string()))?;
    crate::github::app::sign_jwt(app_id, &key, chrono::Utc::now().timestamp())
        .map_err(|e| not_rsa(format!("cannot sign with it: {e}")))?;
    Ok(key)
}

/// `GITHUB_APP_INSTALLATION_IDS`: comma-separated positive numbers, blanks ignored,
/// duplicates merged.
fn parse_installation_ids(raw: &str) -> Result<Vec<u64>, UsageError> {
    let mut ids = Vec::new();
    for (index, part) in raw.split(',').enumerate() {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        match part.parse::<u64>() {
            Ok(id) if id > 0 => {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            _ => {
                return Err(usage(format!(
                    "GITHUB_APP_INSTALLATION_IDS: entry {} ({:?}) is not an installation id (a \
                     positive number); separate ids with commas, or unset it to use every \
                     installation of the App",
                    index + 1,
                    part.chars().take(40).collect::<String>()
                )))
            }
        }
    }
    Ok(ids)
}

/// Checks `owner/name` the way GitHub would: owner 1-39 of `[A-Za-z0-9-]` not starting
/// or ending with `-`; name 1-100 of `[A-Za-z0-9._-]`, not `.` or `..`.
pub fn validate_repo(input: &str) -> Result<String, UsageError> {
    let bad = |why: &str| {
        usage(format!(
            "invalid repository {input:?}: {why}; expected owner/name, e.g. rust-lang/cargo"
        ))
    };
    let mut parts = input.split('/');
    let (Some(owner), Some(name), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad("it must have exactly one '/'"));
    };
    if owner.is_empty() || owner.len() > 39 {
        return Err(bad("the owner must be 1 to 39 characters"));
    }
    if !owner.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        || owner.starts_with('-')
        || owner.ends_with('-')
    {
        return Err(bad(
            "the owner may hold only letters, digits and inner hyphens",
        ));
    }
    if name.is_empty() || name.len() > 100 {
        return Err(bad("the name must be 1 to 100 characters"));
    }
    if name == "." || name == ".." {
        return Err(bad("the name cannot be '.' or '..'"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(bad(
            "the name may hold only letters, digits, '.', '_' and '-'",
        ));
    }
    Ok(input.to_owned())
}

/// Validates the API root (`https://api.github.com`, `https://HOST/api/v3`, or a
/// loopback `http://` URL for tests) and returns it without a trailing slash.
pub fn validate_api_url(input: &str) -> Result<String, UsageError> {
    let bad = |why: String| {
        usage(format!(
            "invalid API URL {input:?}: {why}; expected e.g. https://api.github.com or https://ghe.example.com/api/v3"
        ))
    };
    let url = Url::parse(input.trim()).map_err(|e| bad(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(format!(
            "scheme {:?} is not http or https",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host".to_owned()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("it must not have a query or fragment".to_owned()));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_trimmed_deduplicated_and_blanks_skipped() {
        let tokens = parse_tokens(" aaaa , bbbb,,aaaa, cccc\n").unwrap();
        let labels: Vec<_> = tokens.iter().map(|t| t.fingerprint().to_owned()).collect();
        assert_eq!(labels.len(), 3);
    }

    #[test]
    fn token_with_inner_whitespace_is_refused() {
        assert!(parse_tokens("ab cd").is_err());
        assert!(parse_tokens("ab\tcd").is_err());
        assert!(parse_tokens("ab\ncd").is_err());
        assert!(parse_tokens(" , ,").is_err());
    }

    #[test]
    fn app_ids_must_be_positive_numbers() {
        assert_eq!(parse_app_id(" 12345 ").unwrap(), 12345);
        for bad in ["0", "-1", "Iv1.abc", "12a", "1.5", ""] {
            let message = parse_app_id(bad).unwrap_err().to_string();
            assert!(message.contains("GITHUB_APP_ID"), "{message}");
        }
    }

    #[test]
    fn installation_ids_are_numbers_separated_by_commas() {
        assert_eq!(
            parse_installation_ids(" 45, 46,,45 ").unwrap(),
            vec![45, 46]
        );
        let message = parse_installation_ids("45,forty-six")
            .unwrap_err()
            .to_string();
        assert!(message.contains("GITHUB_APP_INSTALLATION_IDS"), "{message}");
        assert!(message.contains("entry 2"), "{message}");
        assert!(parse_installation_ids("0").is_err());
    }

    #[test]
    fn repo_names_are_checked_like_github() {
        for good in [
            "rust-lang/cargo",
            "a/b",
            "posthog/posthog.com",
            "x/.github",
            "o/_r",
        ] {
            assert!(validate_repo(good).is_ok(), "{good}");
        }
        let long_owner = format!("{}/r", "a".repeat(40));
        let long_name = format!("o/{}", "a".repeat(101));
        for bad in [
            "foo",
            "a/b/c",
            "../x",
            "/x",
            "x/",
            "",
            " a/b",
            "a /b",
            "-a/b",
            "a-/b",
            "a/..",
            "a/.",
            "a/b c",
            "a/ü",
            &long_owner,
            &long_name,
        ] {
            assert!(validate_repo(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn api_url_must_be_http() {
        assert_eq!(
            validate_api_url("https://ghe.example.com/api/v3/").unwrap(),
            "https://ghe.example.com/api/v3"
        );
        assert!(validate_api_url("not a url").is_err());
        assert!(validate_api_url("ftp://x").is_err());
        assert!(validate_api_url("https://x/?a=1").is_err());
    }
}
