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
        return Err(usage(format!("no GitHub token: {TOKENS_HELP}")));
    };
    parse_tokens(&raw).map_err(|e| usage(format!("{source}: {e}")))
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
