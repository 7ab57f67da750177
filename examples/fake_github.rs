//! A standalone fake GitHub REST and GraphQL API for demos and benchmarks (the same server
//! the integration tests use, from `tests/support/fake_github/`).
//!
//! ```text
//! cargo run --example fake_github -- --port 8080 --repo acme/widgets:200
//!     [--repo other/x:50] [--repo acme/big:100:heavy=30]
//!     [--repo acme/old:10:fork:archived] [--repo acme/secret:5:hidden=T1+T2]
//!     [--user LOGIN] [--many bench:1000:1-2000[:SEED]]
//!     [--limit 5000] [--window-secs 3600] [--latency-ms 0] [--invalid-token T]
//!     [--shared-account TOKEN=LOGIN] [--repo-error owner/name=451]
//!     [--exhaustion-status 403|429] [--alternate-exhaustion-status]
//!     [--p-5xx 0.05] [--p-drop 0.02] [--p-secondary 0.01]
//!     [--secondary-retry-after 2 | --no-retry-after] [--seed 1] [--log-requests]
//!     [--graphql-limit 5000] [--no-graphql] [--graphql-timeout-weight N]
//!     [--graphql-file-weight 10]
//!     [--max-in-flight-per-token N] [--max-points-per-minute N]
//!     [--max-graphql-points-per-minute N]
//!     [--app ID:PUBLIC_KEY_PATH:INSTALLATION_ID[=LIMIT][@LOGIN][+INSTALLATION_ID...]]
//!     [--app-token-ttl-secs 3600]
//! ```
//!
//! Secondary limits (off unless given), per account like GitHub's:
//! `--max-in-flight-per-token N` refuses a request arriving while its token's account has N
//! requests in flight (GitHub: 100, REST and GraphQL together); `--max-points-per-minute N`
//! caps REST points per account per fixed one-minute window (GitHub: 900, a GET is 1
//! point); `--max-graphql-points-per-minute N` does the same for GraphQL (GitHub: 2,000, a
//! query is 1 point). A refusal is a 403 secondary limit with `retry-after`
//! (`--secondary-retry-after`) and penalises the account for that long.
//!
//! `--app` (repeatable) serves a GitHub App: `GET /app/installations` and
//! `POST /app/installations/{id}/access_tokens` take a JWT signed (RS256) by the private key
//! of PUBLIC_KEY_PATH (a PEM public key, e.g. `openssl rsa -in key.pem -pubout`), with
//! `iss` the app ID. Each installation has its own quota, LIMIT requests (and GraphQL
//! points) per window (default `--limit`), shared by every token minted for it, and is
//! installed on LOGIN (default: the owner of the first repository served; a user if named
//! by `--user`, else an organisation). Minted `ghs_` tokens work until their `expires_at`,
//! `--app-token-ttl-secs` after minting, then get 401. E.g.
//! `--app 123:tests/fixtures/app-key.pub.pem:45=12500+46` (installations 45 and 46).
//!
//! GraphQL is served at `POST /graphql` (and `POST /api/graphql`) with its own points bucket
//! per account (`--graphql-limit`, same window as REST); `--no-graphql` answers those paths
//! 404, like a server without GraphQL. `--graphql-timeout-weight N` answers 502 (charged)
//! to queries returning more than N objects' weight, a changed file weighing
//! `--graphql-file-weight` and any other object 1.
//!
//! A repository given as `OWNER/NAME:PRS:heavy=PCT` has about PCT % of its PRs past #7
//! heavy (100-1,200 files, 20-250 commits, dozens of reviews and comments): the first pages
//! of one heavy PR weigh 1,028 to 1,202 in GraphQL (a light PR's at most 121), so a
//! `--graphql-timeout-weight` between the two times out a heavy PR even on its own.
//!
//! A repository's options follow its PR count, `:`-separated, in any order: `heavy=PCT`,
//! `fork`, `archived` (both show in its JSON and in listings' `type=forks`/`sources`) and
//! `hidden=T1+T2` (tokens T1 and T2 cannot see it: 404 on every REST path, NOT_FOUND in
//! GraphQL, left out of listings). `GET /orgs/{org}/repos` and `GET /users/{login}/repos`
//! list an owner's repositories; every owner is an organisation unless named by `--user`
//! (then `/orgs/{login}/repos` answers 404).
//!
//! `--many OWNER:COUNT:MIN-MAX[:SEED]` adds COUNT repositories `OWNER/repo-0001`, ... for
//! scale benchmarks, with PR counts drawn deterministically from SEED (default 0) by
//! `PRS = MIN + floor((MAX - MIN + 1) * u^7)` for `u` uniform in `[0, 1)`: mostly small
//! (median about MIN + (MAX - MIN) / 128), about 9 % above the midpoint, mean about
//! MIN + (MAX - MIN) / 8. E.g. `--many bench:1000:1-2000` serves 1,000 repositories with
//! about 250,000 PRs in all.
//!
//! Prints `fake github listening on http://127.0.0.1:PORT` on stdout (one line, flushed),
//! runs until SIGINT or SIGTERM, then prints the final stats as one line of JSON on stdout.
//! While running: `GET /_fake/stats`, `GET /_fake/truth/{owner}/{repo}`,
//! `POST /_fake/touch/{owner}/{repo}/{n}`, `POST /_fake/faults` (JSON body of `Faults`).

#[allow(dead_code)]
#[path = "../tests/support/fake_github/mod.rs"]
mod fake_github;

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::time::Duration;

use clap::Parser;
use fake_github::{FakeApp, FakeConfig, FakeGithub, FakeInstallation, Faults, RepoSpec};

#[derive(Parser, Debug)]
#[command(about = "A fake GitHub REST and GraphQL API server for seedq demos and benchmarks")]
struct Args {
    /// Port on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// A repository as OWNER/NAME:PR_COUNT, then options in any order: heavy=PCT (about
    /// PCT % of its PRs heavy), fork, archived, hidden=TOKEN1+TOKEN2 (tokens that cannot
    /// see it) (repeatable). Default: acme/widgets:200 (when no --many either).
    #[arg(long = "repo", value_parser = parse_repo)]
    repos: Vec<RepoSpec>,
    /// A login that is a user, not an organisation (repeatable).
    #[arg(long = "user")]
    users: Vec<String>,
    /// OWNER:COUNT:MIN-MAX[:SEED]: COUNT repositories OWNER/repo-0001.. with skewed PR
    /// counts between MIN and MAX (repeatable).
    #[arg(long = "many", value_parser = parse_many)]
    many: Vec<Many>,
    /// Primary quota per account per window.
    #[arg(long, default_value_t = 5000)]
    limit: u32,
    /// Length of a rate-limit window in seconds (fractions allowed).
    #[arg(long, default_value_t = 3600.0)]
    window_secs: f64,
    /// Latency added to every API response, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// A token answered with 401 Bad credentials (repeatable).
    #[arg(long = "invalid-token")]
    invalid_tokens: Vec<String>,
    /// TOKEN=LOGIN: tokens with the same LOGIN share one quota (repeatable).
    #[arg(long = "shared-account", value_parser = parse_pair)]
    shared_accounts: Vec<(String, String)>,
    /// OWNER/NAME=STATUS: every request for that repository gets STATUS (repeatable).
    #[arg(long = "repo-error", value_parser = parse_pair)]
    repo_errors: Vec<(String, String)>,
    /// Status for primary-limit exhaustion (403 or 429).
    #[arg(long, default_value_t = 403)]
    exhaustion_status: u16,
    /// Alternate 403 and 429 for primary-limit exhaustion.
    #[arg(long)]
    alternate_exhaustion_status: bool,
    /// Probability of an injected 502/503.
    #[arg(long = "p-5xx", default_value_t = 0.0)]
    p_5xx: f64,
    /// Probability of a dropped connection.
    #[arg(long, default_value_t = 0.0)]
    p_drop: f64,
    /// Probability of an injected secondary rate limit.
    #[arg(long, default_value_t = 0.0)]
    p_secondary: f64,
    /// Seconds of secondary-limit penalty, sent as `retry-after`.
    #[arg(long, default_value_t = 60)]
    secondary_retry_after: u64,
    /// Send no `retry-after` with secondary limits (the penalty then lasts 60 s).
    #[arg(long)]
    no_retry_after: bool,
    /// Seed of the fault RNG.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Keep a log of every request (memory grows with the number of requests).
    #[arg(long)]
    log_requests: bool,
    /// GraphQL points per account per window.
    #[arg(long, default_value_t = 5000)]
    graphql_limit: u32,
    /// Serve no GraphQL: `POST /graphql` answers 404.
    #[arg(long)]
    no_graphql: bool,
    /// GraphQL answers heavier than this time out with a 502 (still charged).
    #[arg(long)]
    graphql_timeout_weight: Option<u64>,
    /// Weight of one changed file in a GraphQL answer (other objects weigh 1).
    #[arg(long, default_value_t = 10)]
    graphql_file_weight: u64,
    /// Secondary limit: requests of one account in flight at once (GitHub: 100).
    #[arg(long)]
    max_in_flight_per_token: Option<u32>,
    /// Secondary limit: REST points (a GET is 1) per account per minute (GitHub: 900).
    #[arg(long)]
    max_points_per_minute: Option<u32>,
    /// Secondary limit: GraphQL points (a query is 1) per account per minute (GitHub: 2,000).
    #[arg(long)]
    max_graphql_points_per_minute: Option<u32>,
    /// A GitHub App: ID:PUBLIC_KEY_PATH:INSTALLATION_ID[=LIMIT][@LOGIN], more installations
    /// joined with + (repeatable).
    #[arg(long = "app", value_parser = parse_app)]
    apps: Vec<AppArg>,
    /// Lifetime of the installation tokens the apps mint, in seconds.
    #[arg(long, default_value_t = 3600)]
    app_token_ttl_secs: u64,
}

/// The value of `--app`, before its key file is read.
#[derive(Clone, Debug)]
struct AppArg {
    /// The app id.
    id: u64,
    /// Path of its PEM public key.
    key_path: String,
    /// Its installations: id, limit (None: `--limit`), login (None: the first owner).
    installations: Vec<(u64, Option<u32>, Option<String>)>,
}

/// The value of `--many`: a batch of generated repositories.
#[derive(Clone, Debug)]
struct Many {
    /// Their owner.
    owner: String,
    /// How many.
    count: u32,
    /// Fewest PRs of one.
    min: u32,
    /// Most PRs of one.
    max: u32,
    /// Seed of the PR-count draws.
    seed: u64,
}

/// Largest PR count of one repository the fake's id layout allows.
const MAX_PRS: u32 = (1 << 24) - 1;

fn parse_pr_count(s: &str, whole: &str) -> Result<u32, String> {
    s.parse::<u32>()
        .ok()
        .filter(|n| *n <= MAX_PRS)
        .ok_or_else(|| format!("bad PR count {s:?} in {whole:?} (0 to {MAX_PRS})"))
}

fn parse_repo(s: &str) -> Result<RepoSpec, String> {
    let usage = || {
        format!(
            "expected OWNER/NAME:PR_COUNT[:heavy=PCT][:fork][:archived][:hidden=T1+T2], got {s:?}"
        )
    };
    let mut parts = s.split(':');
    let (Some(name), Some(count)) = (parts.next(), parts.next()) else {
        return Err(usage());
    };
    let count = parse_pr_count(count, s)?;
    match name.split_once('/') {
        Some((o, r)) if !o.is_empty() && !r.is_empty() && !r.contains('/') => {}
        _ => return Err(usage()),
    }
    let mut spec = RepoSpec::new(name, count);
    for option in parts {
        spec = match option {
            "fork" => spec.fork(),
            "archived" => spec.archived(),
            _ => {
                if let Some(pct) = option.strip_prefix("heavy=") {
                    let pct = pct
                        .parse::<u32>()
                        .ok()
                        .filter(|pct| *pct <= 100)
                        .ok_or_else(|| format!("heavy percent in {s:?} must be 0 to 100"))?;
                    spec.heavy(pct)
                } else if let Some(tokens) = option.strip_prefix("hidden=") {
                    let tokens: Vec<String> = tokens.split('+').map(str::to_string).collect();
                    if tokens.iter().any(String::is_empty) {
                        return Err(format!("empty token in hidden= of {s:?}"));
                    }
                    spec.hidden_from(&tokens)
                } else {
                    return Err(usage());
                }
            }
        };
    }
    Ok(spec)
}

fn parse_many(s: &str) -> Result<Many, String> {
    let usage = || format!("expected OWNER:COUNT:MIN-MAX[:SEED], got {s:?}");
    let parts: Vec<&str> = s.split(':').collect();
    let (owner, count, range, seed) = match parts.as_slice() {
        [owner, count, range] => (*owner, *count, *range, "0"),
        [owner, count, range, seed] => (*owner, *count, *range, *seed),
        _ => return Err(usage()),
    };
    if owner.is_empty() || owner.contains('/') {
        return Err(usage());
    }
    let count: u32 = count
        .parse()
        .map_err(|e| format!("bad COUNT in {s:?}: {e}"))?;
    let (min, max) = range.split_once('-').ok_or_else(usage)?;
    let (min, max) = (parse_pr_count(min, s)?, parse_pr_count(max, s)?);
    if min > max {
        return Err(format!("MIN above MAX in {s:?}"));
    }
    let seed: u64 = seed
        .parse()
        .map_err(|e| format!("bad SEED in {s:?}: {e}"))?;
    Ok(Many {
        owner: owner.to_string(),
        count,
        min,
        max,
        seed,
    })
}

/// Parses `--app ID:PUBLIC_KEY_PATH:INSTALLATION_ID[=LIMIT][@LOGIN][+...]` (the key file is
/// read later, by [`load_apps`]).
fn parse_app(s: &str) -> Result<AppArg, String> {
    let usage = || {
        format!(
            "expected ID:PUBLIC_KEY_PATH:INSTALLATION_ID[=LIMIT][@LOGIN][+INSTALLATION_ID...], \
             got {s:?}"
        )
    };
    let (id, rest) = s.split_once(':').ok_or_else(usage)?;
    let (key_path, installations) = rest.rsplit_once(':').ok_or_else(usage)?;
    let id: u64 = id
        .parse()
        .map_err(|_| format!("bad app ID {id:?} in {s:?}"))?;
    if key_path.is_empty() {
        return Err(usage());
    }
    let mut parsed = Vec::new();
    for one in installations.split('+') {
        let (one, login) = match one.split_once('@') {
            Some((one, login)) if !login.is_empty() => (one, Some(login.to_string())),
            Some(_) => return Err(format!("empty LOGIN in {s:?}")),
            None => (one, None),
        };
        let (inst, limit) = match one.split_once('=') {
            Some((inst, limit)) => {
                let limit: u32 = limit
                    .parse()
                    .map_err(|_| format!("bad LIMIT {limit:?} in {s:?}"))?;
                (inst, Some(limit))
            }
            None => (one, None),
        };
        let inst: u64 = inst
            .parse()
            .map_err(|_| format!("bad INSTALLATION_ID {inst:?} in {s:?}"))?;
        parsed.push((inst, limit, login));
    }
    Ok(AppArg {
        id,
        key_path: key_path.to_string(),
        installations: parsed,
    })
}

/// The apps of `--app`, their keys read and checked; an error names the bad one.
fn load_apps(args: &Args, default_login: &str) -> Result<Vec<FakeApp>, String> {
    let mut apps = Vec::new();
    let mut seen = HashSet::new();
    for a in &args.apps {
        let pem = std::fs::read_to_string(&a.key_path)
            .map_err(|e| format!("--app {}: cannot read {}: {e}", a.id, a.key_path))?;
        FakeApp::check_public_key(&pem)
            .map_err(|e| format!("--app {}: {}: {e}", a.id, a.key_path))?;
        let mut installations = Vec::new();
        for (inst, limit, login) in &a.installations {
            if !seen.insert(*inst) {
                return Err(format!("installation {inst} is given twice"));
            }
            let login = login.as_deref().unwrap_or(default_login);
            installations.push(FakeInstallation::new(
                *inst,
                login,
                limit.unwrap_or(args.limit),
            ));
        }
        apps.push(
            FakeApp::new(a.id, &pem, installations)
                .token_ttl(Duration::from_secs(args.app_token_ttl_secs)),
        );
    }
    Ok(apps)
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

fn main() {
    let args = Args::parse();
    let mut repos = args.repos.clone();
    for m in &args.many {
        repos.extend(RepoSpec::many(&m.owner, m.count, m.min..=m.max, m.seed));
    }
    if repos.is_empty() {
        repos.push(RepoSpec::new("acme/widgets", 200));
    }
    let mut names = HashSet::new();
    let mut ids = HashSet::new();
    for r in &repos {
        if !names.insert(r.full_name.to_ascii_lowercase()) || !ids.insert(r.id) {
            eprintln!("repository {} (id {}) is given twice", r.full_name, r.id);
            std::process::exit(2);
        }
    }
    let mut repo_errors = HashMap::new();
    for (name, status) in &args.repo_errors {
        let status: u16 = status.parse().unwrap_or_else(|_| {
            eprintln!("bad status in --repo-error {name}={status}");
            std::process::exit(2)
        });
        repo_errors.insert(name.clone(), status);
    }
    if !args.window_secs.is_finite() || args.window_secs <= 0.0 {
        eprintln!("--window-secs must be positive");
        std::process::exit(2);
    }
    if args.app_token_ttl_secs == 0 {
        eprintln!("--app-token-ttl-secs must be positive");
        std::process::exit(2);
    }
    let first_owner = repos[0].full_name.split('/').next().unwrap_or("acme");
    let apps = load_apps(&args, first_owner).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    let config = FakeConfig {
        repos: repos.clone(),
        users: args.users.iter().cloned().collect(),
        limit: args.limit,
        window: Duration::from_secs_f64(args.window_secs),
        latency: Duration::from_millis(args.latency_ms),
        invalid_tokens: args.invalid_tokens.iter().cloned().collect::<HashSet<_>>(),
        shared_accounts: args.shared_accounts.iter().cloned().collect(),
        exhaustion_status: args.exhaustion_status,
        alternate_exhaustion_status: args.alternate_exhaustion_status,
        repo_errors,
        record_requests: args.log_requests,
        faults: Faults {
            p_server_error: args.p_5xx,
            p_drop: args.p_drop,
            p_secondary: args.p_secondary,
            secondary_retry_after: (!args.no_retry_after).then_some(args.secondary_retry_after),
            seed: args.seed,
        },
        graphql: !args.no_graphql,
        graphql_limit: args.graphql_limit,
        graphql_timeout_weight: args.graphql_timeout_weight,
        graphql_file_weight: args.graphql_file_weight,
        max_in_flight_per_token: args.max_in_flight_per_token,
        max_points_per_minute: args.max_points_per_minute,
        max_graphql_points_per_minute: args.max_graphql_points_per_minute,
        apps: apps.clone(),
        ..FakeConfig::default()
    };

    // Signal handlers first, so a script may signal as soon as it has read the URL.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut term = rt
        .block_on(async {
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        })
        .expect("SIGTERM handler");
    let mut int = rt
        .block_on(async {
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        })
        .expect("SIGINT handler");

    let fake = FakeGithub::spawn_on(config, args.port);
    // One line per --repo (or the default); one per --many batch.
    let single = repos.len() - args.many.iter().map(|m| m.count as usize).sum::<usize>();
    for r in repos.iter().take(single) {
        let mut flags = String::new();
        for (on, flag) in [(r.fork, ", fork"), (r.archived, ", archived")] {
            if on {
                flags.push_str(flag);
            }
        }
        if !r.hidden_from.is_empty() {
            flags.push_str(&format!(", hidden from {}", r.hidden_from.len()));
        }
        eprintln!(
            "serving {} (id {}, {} PRs, {} % heavy{flags}) at {}/repos/{}",
            r.full_name,
            r.id,
            r.pr_count,
            r.heavy_percent,
            fake.url(),
            r.full_name
        );
    }
    let mut batch = &repos[single..];
    for m in &args.many {
        let (these, rest) = batch.split_at(m.count as usize);
        batch = rest;
        let prs: u64 = these.iter().map(|r| u64::from(r.pr_count)).sum();
        eprintln!(
            "serving {} repositories {}/repo-0001.. ({prs} PRs in all, {}-{} each) at {}/orgs/{}/repos",
            m.count,
            m.owner,
            m.min,
            m.max,
            fake.url(),
            m.owner
        );
    }
    for app in &apps {
        for inst in &app.installations {
            eprintln!(
                "serving app {} (client id {}) installation {} on {} ({} requests per window, \
                 tokens last {} s) at {}/app/installations",
                app.id,
                app.client_id,
                inst.id,
                inst.account,
                inst.limit,
                app.token_ttl.as_secs(),
                fake.url()
            );
        }
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "fake github listening on {}", fake.url()).expect("stdout");
    out.flush().expect("stdout");
    drop(out);

    rt.block_on(async {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    });
    let stats = fake.stats();
    fake.shutdown();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{}",
        serde_json::to_string(&stats).expect("stats json")
    )
    .expect("stdout");
    out.flush().expect("stdout");
}
