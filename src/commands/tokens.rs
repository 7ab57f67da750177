//! `seedq tokens [--check]`: each token's quotas (REST requests and GraphQL points)
//! from `GET /rate_limit`, which spends none; with `--check`, also the account behind
//! each token (`GET /user`, one request each), warning about tokens of one account:
//! they share one quota and add nothing. A GitHub App's installations are listed too
//! (their tokens minted for the purpose), each as one token.

use crate::cli::{Cli, TokensArgs};
use crate::config::{token_sources, validate_api_url};
use crate::display::format;
use crate::github::client::{BucketQuota, RateLimits};
use crate::github::{app, Client, FetchError};
use crate::token::Token;
use std::collections::BTreeMap;
use std::time::Duration;

/// What GitHub said about one token.
struct Report<'a> {
    token: &'a Token,
    quota: Result<RateLimits, FetchError>,
    /// `Some` with `--check`.
    account: Option<Result<String, FetchError>>,
}

pub async fn run(cli: &Cli, args: &TokensArgs) -> anyhow::Result<u8> {
    let sources = token_sources(args.tokens.token_file.as_deref())?;
    let api_url = validate_api_url(&cli.api_url)?;
    let gathered = app::gather(sources, &api_url).await?;
    let tokens = &gathered.tokens;
    let client = Client::new(&api_url, Duration::from_secs(30))?;
    let apps = gathered.apps.as_ref();
    let reports = futures_util::future::join_all(tokens.iter().map(|token| {
        let client = &client;
        async move {
            let quota = client.rate_limit(token).await;
            let account = if token.is_installation() {
                // `GET /user` is not for installation tokens: the App's listing names
                // the account (not known when GITHUB_APP_INSTALLATION_IDS names them).
                let account = apps.and_then(|a| a.account(token.fingerprint()));
                args.check
                    .then(|| Ok(account.unwrap_or("(installation)").to_owned()))
            } else if args.check && !matches!(quota, Err(FetchError::BadCredentials)) {
                Some(client.user(token).await)
            } else {
                None
            };
            Report {
                token,
                quota,
                account,
            }
        }
    }))
    .await;

    let width = tokens
        .iter()
        .chain(gathered.refused.iter().map(|r| &r.token))
        .map(|t| t.label().chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    let account_header = if args.check { "  account" } else { "" };
    // Every request is answered: from here on it only prints.
    super::quiet_on_closed_stdout();
    println!(
        "{:<width$} {:>15}  {:<10} {:<10} {:>15}  {:<10}{account_header}",
        "token", "remaining/limit", "resets", "state", "graphql points", "resets"
    );
    let mut invalid = Vec::new();
    // Installations GitHub refused (at minting, or their token right after).
    let mut refused_apps: Vec<(&str, String)> = Vec::new();
    let mut unknown = 0;
    let mut by_account: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for report in &reports {
        let label = report.token.label();
        let shown = |q: &BucketQuota| {
            let quota = format!(
                "{}/{}",
                format::thousands(q.remaining),
                format::thousands(q.limit)
            );
            (quota, format::clock(q.reset_epoch_secs * 1000))
        };
        let none = || ("-".to_owned(), "-".to_owned());
        let ((quota, reset), state, (points, points_reset)) = match &report.quota {
            Ok(q) => (
                shown(&q.core),
                if q.core.remaining == 0 {
                    "exhausted"
                } else {
                    "ok"
                }
                .to_owned(),
                q.graphql.as_ref().map_or_else(none, shown),
            ),
            Err(FetchError::BadCredentials) if report.token.is_installation() => {
                refused_apps.push((label, "its new token got 401 Bad credentials".into()));
                (none(), "invalid (401 Bad credentials)".into(), none())
            }
            Err(FetchError::BadCredentials) => {
                invalid.push(label);
                (none(), "invalid (401 Bad credentials)".into(), none())
            }
            Err(e) => {
                unknown += 1;
                (none(), format!("unknown: {e}"), none())
            }
        };
        let account = match &report.account {
            None => String::new(),
            Some(Ok(login)) => {
                if !report.token.is_installation() {
                    by_account.entry(login.clone()).or_default().push(label);
                }
                format!("  {login}")
            }
            Some(Err(FetchError::BadCredentials)) => {
                invalid.push(label);
                "  - (401 Bad credentials)".into()
            }
            Some(Err(FetchError::Exhausted { .. })) => "  unknown (out of quota)".into(),
            Some(Err(e)) => format!("  unknown: {e}"),
        };
        println!(
            "{label:<width$} {quota:>15}  {reset:<10} {state:<10} {points:>15}  \
             {points_reset:<10}{account}"
        );
    }
    for refused in &gathered.refused {
        let label = refused.token.label();
        let state = "invalid (refused at minting)";
        println!("{label:<width$} {:>15}  {:<10} {state}", "-", "-");
        refused_apps.push((
            label,
            format!("GitHub would not mint its token ({})", refused.error),
        ));
    }

    for (login, labels) in by_account.iter().filter(|(_, l)| l.len() > 1) {
        eprintln!(
            "warning: {} belong to the same account ({login}): they share one quota and add \
             nothing; keep one of them",
            labels.join(", ")
        );
    }
    invalid.dedup();
    if !invalid.is_empty() {
        eprintln!(
            "error: {} refused with 401 Bad credentials: renew or remove {} in \
             GITHUB_SEEDING_TOKENS (or your --token-file)",
            invalid.join(", "),
            if invalid.len() == 1 { "it" } else { "them" }
        );
    }
    for (label, why) in &refused_apps {
        eprintln!(
            "error: {label}: {why}: check GITHUB_APP_INSTALLATION_IDS, or the installation on \
             GitHub"
        );
    }
    if unknown > 0 {
        eprintln!("warning: {unknown} token(s) could not be checked; is {api_url} reachable?");
    }
    Ok(if invalid.is_empty() && refused_apps.is_empty() {
        super::exit::OK
    } else {
        super::exit::FAILURE
    })
}
