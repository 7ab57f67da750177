//! `seedq enqueue OWNER/REPO...`: records the work; no API call. On a repository whose
//! seed (or last refresh) is over, it queues a refresh: only PRs updated since that
//! seed are listed and fetched again, and unchanged pages are asked for with ETags.

use crate::cli::{Cli, EnqueueArgs};
use crate::config::{validate_repo, UsageError};
use crate::github::Kind;
use crate::store::listings::{Filter, Listing, Owner};
use crate::store::rounds::{Enqueued, ListOptions};
use crate::store::{now_ms, Create, Store};

pub async fn run(cli: &Cli, args: &EnqueueArgs) -> anyhow::Result<u8> {
    // Validate everything before the database is touched.
    let mut repos = args
        .repos
        .iter()
        .map(|r| validate_repo(r))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(path) = &args.from_file {
        repos.extend(read_list(path)?);
    }
    // Each once, in the order first named.
    let mut seen = std::collections::HashSet::new();
    repos.retain(|r| seen.insert(r.to_ascii_lowercase()));
    let options = ListOptions {
        endpoints: args.with.as_deref().map(parse_with).transpose()?,
        since: args
            .since
            .as_deref()
            .map(|s| parse_since(s, chrono::Utc::now()))
            .transpose()?,
        state: args.state.clone(),
        limit: args.limit.map(i64::from),
        priority: args.priority,
    };
    let listings = listings(args)?;
    let store = Store::open(&cli.db, Create::IfMissing, 2).await?;
    for filter in &listings {
        let name = filter.name();
        match store.enqueue_listing(filter, &options, now_ms()).await? {
            Listing::Queued { .. } => {
                println!("queued {name}: `seedq work` lists its repositories, then seeds each")
            }
            Listing::InProgress { round } => {
                println!("{name} is already being listed (round {round}); its filters are updated")
            }
        }
    }
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

/// The `--org`/`--user` listings asked for, their filters checked.
fn listings(args: &EnqueueArgs) -> Result<Vec<Filter>, UsageError> {
    if let Some(pattern) = &args.pattern {
        globset::Glob::new(pattern)
            .map_err(|e| UsageError(format!("--match {pattern:?}: not a glob: {e}")))?;
    }
    let with_listing = !args.org.is_empty() || !args.user.is_empty();
    if !with_listing && (args.include_forks || args.include_archived || args.pattern.is_some()) {
        return Err(UsageError(
            "--include-forks, --include-archived and --match filter --org and --user listings"
                .into(),
        ));
    }
    let orgs = args.org.iter().map(|l| (Owner::Org, "--org", l));
    let users = args.user.iter().map(|l| (Owner::User, "--user", l));
    orgs.chain(users)
        .map(|(owner, flag, login)| {
            let login = login.trim();
            let valid = (1..=39).contains(&login.len())
                && login.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !login.starts_with('-')
                && !login.ends_with('-');
            if !valid {
                return Err(UsageError(format!(
                    "{flag} {login:?}: not a GitHub login (1 to 39 letters, digits and inner \
                     hyphens), e.g. {flag} rust-lang"
                )));
            }
            Ok(Filter {
                owner,
                login: login.to_owned(),
                forks: args.include_forks,
                archived: args.include_archived,
                pattern: args.pattern.clone(),
            })
        })
        .collect()
}

/// The repositories of a list file (`-`: standard input): one `owner/name` a line,
/// blank lines and `#` comments skipped. A bad line is named with its number.
fn read_list(path: &std::path::Path) -> Result<Vec<String>, UsageError> {
    let shown = path.display();
    let text = if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|e| UsageError(format!("--from-file -: cannot read standard input: {e}")))?;
        text
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| UsageError(format!("--from-file {shown}: cannot read it: {e}")))?
    };
    parse_list(&text)
        .map_err(|(line, e)| UsageError(format!("--from-file {shown}, line {line}: {e}")))
}

/// The repositories of a list's text, or the first bad line's number and what is wrong.
fn parse_list(text: &str) -> Result<Vec<String>, (usize, String)> {
    let mut repos = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let repo = validate_repo(line).map_err(|e| (n + 1, e.0))?;
        repos.push(repo);
    }
    Ok(repos)
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

    #[test]
    fn a_list_skips_blanks_and_comments_and_names_a_bad_line() {
        let text = "# the night's list\nacme/widgets\n\n  rust-lang/cargo   # build tool\r\n";
        assert_eq!(
            parse_list(text).unwrap(),
            ["acme/widgets", "rust-lang/cargo"]
        );
        let (line, error) = parse_list("acme/widgets\n\nnot a repo\n").unwrap_err();
        assert_eq!(line, 3);
        assert!(error.contains("not a repo"), "{error}");
    }
}
