//! `seedq enqueue OWNER/REPO...`: records the work; no API call. On a repository whose
//! seed (or last refresh) is over, it queues a refresh: only PRs updated since that
//! seed are listed and fetched again, and unchanged pages are asked for with ETags.

use crate::cli::{Cli, EnqueueArgs};
use crate::config::{validate_repo, UsageError};
use crate::github::Kind;
use crate::store::rounds::{Enqueued, ListOptions};
use crate::store::{now_ms, Create, Store};

pub async fn run(cli: &Cli, args: &EnqueueArgs) -> anyhow::Result<u8> {
    // Validate everything before the database is touched.
    let repos = args
        .repos
        .iter()
        .map(|r| validate_repo(r))
        .collect::<Result<Vec<_>, _>>()?;
    let options = ListOptions {
        endpoints: args.with.as_deref().map(parse_with).transpose()?,
        since: args
            .since
            .as_deref()
            .map(|s| parse_since(s, chrono::Utc::now()))
            .transpose()?,
        state: args.state.clone(),
        limit: args.limit.map(i64::from),
    };
    let store = Store::open(&cli.db, Create::IfMissing, 2).await?;
    for repo in &repos {
        match store.enqueue_repo(repo, &options, now_ms()).await? {
            Enqueued::New => println!("queued {repo}"),
            Enqueued::Refresh { round, since } => match since {
                Some(since) => println!(
                    "queued a refresh of {repo} (round {round}): PRs updated since {since}"
                ),
                None => println!(
                    "queued a refresh of {repo} (round {round}): every PR (settings changed \
                     or no earlier round completed); unchanged pages cost no quota"
                ),
            },
            Enqueued::InProgress { round } => println!(
                "{repo} is already queued (round {round} is not finished): run `seedq work`"
            ),
        }
    }
    store.close().await;
    Ok(super::exit::OK)
}

fn parse_with(names: &[String]) -> Result<Vec<Kind>, UsageError> {
    let mut endpoints = Vec::new();
    for name in names {
        let kind: Kind = name
            .trim()
            .parse()
            .map_err(|e| UsageError(format!("--with: {e}")))?;
        if kind == Kind::Pulls {
            return Err(UsageError("--with: the pull list is always fetched".into()));
        }
        if !endpoints.contains(&kind) {
            endpoints.push(kind);
        }
    }
    if endpoints.is_empty() {
        return Err(UsageError("--with: name at least one endpoint".into()));
    }
    Ok(endpoints)
}

/// `YYYY-MM-DD` (midnight UTC) or RFC 3339, as GitHub writes times
/// (`YYYY-MM-DDTHH:MM:SSZ`, so that they compare as strings). A future date is a typo.
fn parse_since(input: &str, now: chrono::DateTime<chrono::Utc>) -> Result<String, UsageError> {
    let input = input.trim();
    let when = if let Ok(date) = chrono::NaiveDate::parse_from_str(input, "%Y-%m-%d") {
        date.and_hms_opt(0, 0, 0).map(|t| t.and_utc())
    } else {
        chrono::DateTime::parse_from_rfc3339(input)
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc))
    };
    let Some(when) = when else {
        return Err(UsageError(format!(
            "--since: {input:?} is not a date; expected YYYY-MM-DD or e.g. 2024-06-01T12:00:00Z"
        )));
    };
    if when > now {
        return Err(UsageError(format!(
            "--since: {input} is in the future; no PR was updated since"
        )));
    }
    Ok(when.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_dates_and_rfc3339_and_writes_them_like_github() {
        let now = chrono::Utc::now();
        assert_eq!(
            parse_since("2024-06-01", now).unwrap(),
            "2024-06-01T00:00:00Z"
        );
        assert_eq!(
            parse_since("2024-06-01T12:30:00+02:00", now).unwrap(),
            "2024-06-01T10:30:00Z"
        );
        for bad in ["yesterday", "2024-13-01", "01/06/2024", "", "2999-01-01"] {
            assert!(parse_since(bad, now).is_err(), "{bad}");
        }
    }
}
