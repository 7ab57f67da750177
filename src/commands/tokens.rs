//! `seedq tokens`: each token's quota from `GET /rate_limit`, which spends none.

use crate::cli::{Cli, TokensArgs};
use crate::config::{tokens_from_env, validate_api_url};
use crate::github::{Client, FetchError};
use std::time::Duration;

pub async fn run(cli: &Cli, args: &TokensArgs) -> anyhow::Result<u8> {
    let tokens = tokens_from_env(args.tokens.token_file.as_deref())?;
    let api_url = validate_api_url(&cli.api_url)?;
    let client = Client::new(&api_url, Duration::from_secs(30))?;
    let answers = futures_util::future::join_all(tokens.iter().map(|t| client.rate_limit(t))).await;
    let mut invalid = 0;
    println!(
        "{:<20} {:>13}  {:<10} state",
        "token", "remaining", "resets"
    );
    for (token, answer) in tokens.iter().zip(answers) {
        match answer {
            Ok(quota) => {
                let reset = chrono::DateTime::from_timestamp(quota.reset_epoch_secs, 0)
                    .map(|t| {
                        t.with_timezone(&chrono::Local)
                            .format("%H:%M:%S")
                            .to_string()
                    })
                    .unwrap_or_default();
                let state = if quota.remaining == 0 {
                    "exhausted"
                } else {
                    "ok"
                };
                let remaining = format!("{}/{}", quota.remaining, quota.limit);
                println!("{:<20} {remaining:>13}  {reset:<10} {state}", token.label());
            }
            Err(FetchError::BadCredentials) => {
                invalid += 1;
                println!(
                    "{:<20} {:>13}  {:<10} invalid (401 Bad credentials)",
                    token.label(),
                    "-",
                    "-"
                );
            }
            Err(e) => println!(
                "{:<20} {:>13}  {:<10} unknown ({e})",
                token.label(),
                "-",
                "-"
            ),
        }
    }
    Ok(if invalid > 0 {
        super::exit::FAILURE
    } else {
        super::exit::OK
    })
}
