//! Command-line definitions (clap). Validation that clap cannot do lives in `config`.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "seedq",
    version,
    about = "Seed a SQLite or PostgreSQL database with GitHub pull-request history, as fast as your tokens allow",
    after_help = "Example:\n  export GITHUB_SEEDING_TOKENS=ghp_aaa,ghp_bbb\n  seedq enqueue rust-lang/cargo\n  seedq work\n  sqlite3 seedq.db 'select number, title from pull_requests limit 5'"
)]
pub struct Cli {
    /// The database: a SQLite file, or a PostgreSQL database as
    /// postgres://USER@HOST[:PORT]/DB (a password in the URL is masked in messages).
    #[arg(long, global = true, env = "SEEDQ_DB", default_value = "seedq.db")]
    pub db: PathBuf,

    /// API root; GitHub Enterprise Server is https://HOST/api/v3.
    #[arg(
        long,
        global = true,
        env = "GITHUB_API_URL",
        default_value = "https://api.github.com"
    )]
    pub api_url: String,

    /// More logging (-v debug, -vv trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Less logging (-q warnings only, -qq errors only).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "verbose")]
    pub quiet: u8,

    /// Log lines as text or as JSON objects (one per line), on stderr.
    #[arg(
        long,
        global = true,
        env = "SEEDQ_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Record repositories to seed (cheap: no API call); a seeded one is refreshed.
    #[command(
        after_help = "Example:\n  seedq enqueue posthog/posthog rust-lang/cargo\n  seedq enqueue --org acme --match 'api-*'   # every repository of acme named api-…\n  seedq enqueue acme/widgets --since 2024-01-01 --state closed --with pull,reviews\n  seedq enqueue posthog/posthog   # again, after a seed: refresh only what changed\n  seedq enqueue --from-file repos.txt\n  gh repo list acme --json nameWithOwner -q '.[].nameWithOwner' | seedq enqueue --from-file -\n  seedq enqueue acme/urgent --priority 10   # ahead of everything enqueued before"
    )]
    Enqueue(EnqueueArgs),
    /// Fetch everything queued, then exit 0 (3 if some jobs failed). On a terminal it shows live progress;
    /// elsewhere it logs a progress line every --progress-every seconds.
    #[command(
        after_help = "Example:\n  GITHUB_SEEDING_TOKENS=ghp_aaa,ghp_bbb seedq work --workers 4\n  seedq work --api rest     # REST only, as before GraphQL\n  nohup seedq work --progress-every 60 > seed.log 2>&1 &"
    )]
    Work(WorkArgs),
    /// Show progress, failed jobs, token quota and the estimated finish (safe while
    /// workers run, from another terminal).
    #[command(
        after_help = "Example:\n  seedq status\n  seedq status --json | jq '.repos[] | {repo, prs_complete, prs_expected}'"
    )]
    Status(StatusArgs),
    /// Show each token's quota from GET /rate_limit (free); --check also asks GitHub
    /// which account each token belongs to.
    #[command(after_help = "Example:\n  seedq tokens\n  seedq tokens --check")]
    Tokens(TokensArgs),
    /// Requeue failed jobs (all, one repository's, or one by id) with fresh attempts.
    #[command(
        after_help = "Example:\n  seedq retry                      # every failed job\n  seedq retry --repo acme/widgets\n  seedq retry --id 1234"
    )]
    Retry(RetryArgs),
    /// Drop repositories from the seed: their jobs and their rows (--keep-data: only
    /// their jobs, the rows stay in the views). No confirmation is asked.
    #[command(
        after_help = "Example:\n  seedq remove acme/old-fork\n  seedq remove acme/a acme/b --keep-data"
    )]
    Remove(RemoveArgs),
    /// Copy the whole seed (queue, tokens' quota, ETags, data) into another database, a
    /// SQLite file or PostgreSQL, new or empty; `work` there goes on where this one
    /// stopped and fetches again no page that was done.
    #[command(
        name = "copy-to",
        after_help = "Example:\n  seedq --db seedq.db copy-to postgres://seedq@db.internal/seedq\n  seedq --db postgres://seedq@db.internal/seedq work --workers 4"
    )]
    CopyTo(CopyToArgs),
    /// Print a shell completion script.
    #[command(
        after_help = "Example:\n  seedq completions bash > ~/.local/share/bash-completion/completions/seedq\n  seedq completions zsh > \"${fpath[1]}/_seedq\""
    )]
    Completions(CompletionsArgs),
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Which API `work` fetches with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Api {
    Auto,
    Graphql,
    Rest,
}

/// How `work` shows its progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    /// Live bars on a terminal, plain lines otherwise.
    Auto,
    /// Live bars (needs a terminal on stderr).
    Live,
    /// A plain log line every --progress-every seconds.
    Plain,
    /// Nothing but the summary at the end.
    Off,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("sources").required(true).multiple(true)))]
pub struct EnqueueArgs {
    /// Repositories as owner/name. They are seeded one after another, in this order.
    #[arg(value_name = "OWNER/REPO", group = "sources")]
    pub repos: Vec<String>,

    /// Also the repositories listed in this file: one owner/name a line; blank lines
    /// and `#` comments are skipped. `-` reads standard input.
    #[arg(long, value_name = "PATH", group = "sources")]
    pub from_file: Option<PathBuf>,

    /// Every repository of this organisation, listed through the API by `work`
    /// (repeatable). Enqueued again later, it picks up repositories created since.
    #[arg(long, value_name = "ORG", group = "sources")]
    pub org: Vec<String>,

    /// Every repository this user owns, listed through the API by `work` (repeatable).
    #[arg(long, value_name = "LOGIN", group = "sources")]
    pub user: Vec<String>,

    /// With --org/--user: forks too (left out by default).
    #[arg(long)]
    pub include_forks: bool,

    /// With --org/--user: archived repositories too (left out by default).
    #[arg(long)]
    pub include_archived: bool,

    /// With --org/--user: only repositories whose name matches this glob (`*`, `?`,
    /// `[abc]`, `{a,b}`), e.g. 'api-*'; a pattern with a `/` matches owner/name.
    #[arg(long = "match", value_name = "GLOB")]
    pub pattern: Option<String>,

    /// Seed these repositories before those enqueued earlier with a lower priority
    /// (default 0; negative puts them behind). Given again on a queued repository, it
    /// moves it.
    #[arg(long, value_name = "N", allow_negative_numbers = true,
          value_parser = clap::value_parser!(i64).range(-1_000_000..=1_000_000))]
    pub priority: Option<i64>,

    /// Per-PR endpoints to fetch, comma-separated: pull, commits, reviews, files,
    /// check_runs, review_comments, issue_comments. [default for a new repository:
    /// pull,commits,reviews,files,check_runs; a refresh keeps the stored list]
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub with: Option<Vec<String>>,

    /// Only PRs updated since DATE (YYYY-MM-DD or RFC 3339, e.g. 2024-06-01T12:00:00Z).
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,

    /// Only PRs in this state. [default for a new repository: all]
    #[arg(long, value_parser = ["open", "closed", "all"])]
    pub state: Option<String>,

    /// Only the N most recent PRs (most recently created; with --since or on a
    /// refresh, most recently updated).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: Option<u32>,
}

#[derive(Debug, Args)]
pub struct TokenSource {
    /// Read tokens from this file (one per line or comma-separated) instead of
    /// GITHUB_SEEDING_TOKENS / GITHUB_SEEDING_TOKEN.
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct WorkArgs {
    /// Concurrent requests. Default: 2 per token, at least 4.
    #[arg(long, short = 'w')]
    pub workers: Option<usize>,

    /// Exit with code 75 when every token is out of quota instead of waiting for reset.
    #[arg(long)]
    pub exit_when_exhausted: bool,

    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,

    /// Live bars, plain progress lines, or neither.
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: ProgressMode,

    /// Seconds between plain progress lines (when not on a terminal).
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub progress_every: u64,

    /// Which API fetches: auto spends each token's GraphQL points and REST requests
    /// together (GraphQL first: far fewer per PR); graphql fetches through GraphQL
    /// what it can; rest is REST only.
    #[arg(long, env = "SEEDQ_API", value_enum, default_value = "auto")]
    pub api: Api,

    /// Requests to leave on every token in each rate-limit window, for its owner's own
    /// use (their `gh`, editor, CI): no token is taken below N remaining; work waits
    /// for the reset instead, as when a token is spent. Also SEEDQ_RESERVE. Default 0.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub reserve: Option<u32>,

    #[command(flatten)]
    pub tokens: TokenSource,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print a JSON document instead of text.
    #[arg(long)]
    pub json: bool,

    /// Show every repository in full. Without it, once more than a few are queued,
    /// the text shows in full only those in progress or with a problem, and counts
    /// the complete and the not yet started ones on a line each.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct TokensArgs {
    /// Also ask GitHub which account each token belongs to (GET /user, one request
    /// each) and warn about tokens of one account: they share one quota.
    #[arg(long)]
    pub check: bool,

    #[command(flatten)]
    pub tokens: TokenSource,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct CopyToArgs {
    /// The database to fill: a SQLite file path (created if missing), or
    /// postgres://USER@HOST[:PORT]/DB (an empty database).
    #[arg(value_name = "DEST")]
    pub dest: PathBuf,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// Repositories of the seed, as owner/name.
    #[arg(required = true, value_name = "OWNER/REPO")]
    pub repos: Vec<String>,

    /// Keep the repositories' rows in the data tables (pull_requests, pr_files, …);
    /// drop only their jobs and their place in the queue.
    #[arg(long)]
    pub keep_data: bool,
}

#[derive(Debug, Args)]
pub struct RetryArgs {
    /// Only this repository's failed jobs.
    #[arg(long, value_name = "OWNER/REPO")]
    pub repo: Option<String>,

    /// Only the failed job with this id.
    #[arg(long)]
    pub id: Option<i64>,
}
