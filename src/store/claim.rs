//! Claims: which work a worker gets next, on which token and which API.
//!
//! A claim runs in one `IMMEDIATE` transaction (see `commit`) that picks the next
//! ready job (`state = 'queued' AND run_at <= now`, per-PR jobs before list pages),
//! reserves its token's quota and leases it. Which API fetches it follows `Apis`:
//! - REST: the job alone, one request reserved on the `core` bucket of the token with
//!   the most REST quota (the token an ETag is tied to first);
//! - GraphQL: the job and the ready jobs after it in the same repository that GraphQL
//!   can serve, up to the repository's batch size in PRs and to what one query costing
//!   one point holds, leased together and reserved on the `graphql` bucket of the token
//!   with the most points (a list page goes alone).
//!
//! With both APIs allowed (`Apis::Auto`) GraphQL goes first: it fetches a PR for a
//! few hundredths of a point where REST spends five requests. REST takes what only it
//! can fetch and, whenever no token has GraphQL points left, everything else: each
//! token's two buckets are spent, neither waits for the other.

use super::jobs::{ClaimedJob, LEASE_MS};
use super::process;
use super::sql::{Lease, QueueState, ReadyJob, Servable, Sql};
use super::Result;
use crate::github::graphql::{self, MAX_REQUESTS_PER_QUERY};
use crate::github::{Bucket, Kind};

/// Which APIs may fetch the work of a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Apis {
    /// REST only (`--api rest`, or a server without GraphQL).
    Rest,
    /// GraphQL, and REST only for the pages GraphQL cannot fetch (`--api graphql`).
    Graphql,
    /// Both: GraphQL first, REST for the rest and whenever GraphQL's points are out.
    Auto,
}

/// A worker's claim of its next work.
#[derive(Debug, Clone)]
pub struct ClaimFor {
    /// The worker id the work is leased to.
    pub owner: String,
    /// The process's tokens, as a JSON array of fingerprints: whether any of them may
    /// see a repository, and when one has quota again, are asked of these.
    pub fingerprints: String,
    /// The tokens this claim may choose from (those with a free place in their lane,
    /// `pool::lanes`), as a JSON array of fingerprints; often all of them.
    pub choose_from: String,
    /// The APIs it may use.
    pub apis: Apis,
    /// Check that the worker row is still there first (it may have been taken for dead).
    pub ensure_registered: bool,
    /// `--reserve`: no token is taken below this many remaining in a window.
    pub reserve: i64,
}

/// What `claim` found.
#[derive(Debug)]
// One `Claim` per claim: the size of the work variant does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Claim {
    Work(Work),
    /// No job is ready. `running` jobs (anywhere) may still add work; the earliest
    /// snoozed job becomes ready at `next_run_at`.
    Idle {
        running: i64,
        next_run_at: Option<i64>,
    },
    /// A job is ready but every token is exhausted or paused on the buckets that could
    /// fetch it until `until` (epoch ms; `None` when no reset time is known). While
    /// `running` jobs are in flight their answers may still show quota the estimate did
    /// not count.
    NoToken {
        until: Option<i64>,
        running: i64,
    },
    /// Every token of this process has been refused with 401.
    NoUsableToken,
}

/// Work a worker holds: one request's worth.
#[derive(Debug)]
// One `Work` per request: the size of the job variant does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Work {
    /// One REST page.
    Rest(ClaimedJob),
    /// Jobs fetched by one GraphQL query.
    Graphql(Batch),
}

/// The jobs of one GraphQL query, all of one repository, leased together on one token.
#[derive(Debug, Clone)]
pub struct Batch {
    pub jobs: Vec<ClaimedJob>,
    /// Its size, in light PRs (see `graphql::weight`), rounded up.
    pub size: i64,
    /// Whether it holds as much as the repository's batch size allows (the next ready
    /// job would have gone over): only a full batch that succeeds teaches that more fits.
    pub full: bool,
    /// The points reserved on the token's GraphQL bucket: the query's cost by GitHub's
    /// formula.
    pub points: i64,
    /// For a first seed's first list page: a token with one REST request reserved for
    /// the list's mark, fetched before the list (see `ListMark`), so that a refresh can
    /// ask conditionally whether anything changed. `None` when no token has REST quota.
    pub mark: Option<String>,
}

/// A repository's GraphQL batch size, in light PRs (`graphql::weight`), before anything
/// was learned about it: more than one point's worth of light PRs, so that the cost
/// decides until timeouts teach otherwise.
pub const DEFAULT_BATCH_PRS: i64 = 50;
/// The largest batch size, however well the repository answers.
pub const MAX_BATCH_PRS: i64 = 100;

impl ReadyJob {
    /// The job as its claim leased it (`lease`, on `token`'s `bucket`).
    pub(super) fn claimed(self, lease: i64, token: &str, bucket: Bucket) -> ClaimedJob {
        ClaimedJob {
            id: self.id,
            lease,
            repo: self.repo,
            kind: self.kind,
            pr_number: self.pr_number,
            page: self.page,
            url: self.url,
            cursor: self.cursor,
            attempts: self.attempts + 1,
            max_attempts: self.max_attempts,
            endpoints: self.endpoints,
            token: token.to_owned(),
            bucket,
            round: self.round,
            etag: self.etag,
            etag_next: self.etag_next,
            list_since: self.round_since,
            list_limit: self.pr_limit,
            list_state: self.pr_state,
        }
    }
}

/// A claim (see the module docs) inside the caller's write transaction: the group
/// commit's, which may also hold the completion of the worker's previous work.
pub(super) async fn claim_in(tx: &mut impl Sql, claim: &ClaimFor, now: i64) -> Result<Claim> {
    if claim.ensure_registered {
        ensure_registered(tx, claim, now).await?;
    }
    let fingerprints = claim.choose_from.as_str();
    // Which buckets may serve what: GraphQL while some token has points (REST-only
    // jobs aside); REST for REST-only jobs, and for every job when GraphQL may not
    // or cannot. In REST mode the claim does not ask: `take` tells.
    let servable = match claim.apis {
        Apis::Rest => Servable {
            graphql: false,
            rest: true,
            rest_any: true,
        },
        apis => {
            let (core, graphql) = tx.usable(fingerprints, claim.reserve, now).await?;
            Servable {
                graphql,
                rest: core,
                rest_any: apis == Apis::Auto && !graphql,
            }
        }
    };
    // A job no token with quota can see (its repository is hidden from the tokens that
    // have some) must not hold up the next repositories' work: up to a few repositories
    // are passed over.
    let mut passed_over: Vec<String> = Vec::new();
    loop {
        let exclude = serde_json::to_string(&passed_over).expect("strings serialize");
        let Some(job) = tx.next_ready(servable, &exclude, now).await? else {
            let found_none = passed_over.is_empty().then_some(servable);
            return nothing_claimable(tx, claim, found_none, now).await;
        };
        let repo = job.repo.clone();
        if servable.graphql && !job.rest_only {
            if let Some(batch) = claim_batch(tx, claim, job, now).await? {
                return Ok(Claim::Work(Work::Graphql(batch)));
            }
            // Fewer points left than the query costs: the next claim looks again.
        } else if let Some(work) = claim_rest(tx, claim, job, now).await? {
            return Ok(Claim::Work(work));
        }
        // No token that may see the repository is left: its jobs fail, all at once,
        // instead of waiting for a token that will never come.
        let (valid, may) = tx.may_see(&repo, &claim.fingerprints).await?;
        if valid > 0 && may == 0 {
            let error = super::access::no_token_sees(&repo, valid);
            let failed = tx.fail_queued(&repo, &error, now).await?;
            tracing::warn!("{error}: {failed} job(s) failed");
            continue;
        }
        if passed_over.len() >= MAX_PASSED_OVER {
            return nothing_claimable(tx, claim, None, now).await;
        }
        passed_over.push(repo);
    }
}

/// PostgreSQL, REST only: the claim in one statement, outside any transaction
/// (`postgres::claim_rest`), so that claims hold a token's row only while they run.
/// `None` when that statement cannot decide: no token took the first ready job, or the
/// worker's row must be checked first. The caller then makes the claim in a
/// transaction (`claim_in`), which says why nothing was claimed or passes over the
/// repository. When it locked no job, the queue's state, read without locking
/// anything, says what to wait for (`Claim::Idle`): a job to become ready, or, when
/// some are ready, the concurrent claims that hold them (every ready job is one this
/// claim could take).
#[cfg(feature = "postgres")]
pub(super) async fn claim_rest_at_once(
    conn: &mut sqlx::PgConnection,
    claim: &ClaimFor,
    now: i64,
) -> Result<Option<Claim>> {
    if claim.apis != Apis::Rest || claim.ensure_registered {
        return Ok(None);
    }
    let (owner, expires_at) = (claim.owner.as_str(), now + LEASE_MS);
    let fingerprints = claim.choose_from.as_str();
    let claimed =
        super::postgres::claim_rest(conn, fingerprints, owner, expires_at, claim.reserve, now)
            .await?;
    let Some(claimed) = claimed else {
        let state = super::sql::QueueSql::queue_state(conn, now).await?;
        let held = state.first_rest_only.is_some();
        return Ok(Some(idle(&state, held, now)));
    };
    Ok(match (claimed.token, claimed.lease) {
        (Some(token), Some(lease)) => Some(Claim::Work(Work::Rest(claimed.job.claimed(
            lease,
            &token,
            Bucket::Core,
        )))),
        _ => None,
    })
}

/// How many repositories a claim passes over when no token can take their first job.
const MAX_PASSED_OVER: usize = 3;

/// Leases `job` alone on the `core` bucket of the best token that may see its
/// repository; `None` when none has a request left.
async fn claim_rest(
    tx: &mut impl Sql,
    claim: &ClaimFor,
    job: ReadyJob,
    now: i64,
) -> Result<Option<Work>> {
    // An ETag answers 304 (free) only to the token that got it: `take` prefers that
    // token while it has quota, else takes the best as usual.
    let etag_token = job.etag.as_ref().and(job.etag_token.as_deref());
    let fingerprints = claim.choose_from.as_str();
    let Some(token) = tx
        .take(
            fingerprints,
            Bucket::Core,
            1,
            etag_token,
            &job.repo,
            claim.reserve,
            now,
        )
        .await?
    else {
        return Ok(None);
    };
    let lease = Lease {
        owner: &claim.owner,
        expires_at: now + LEASE_MS,
        token: &token,
        now,
    };
    let lease = tx.lease_rest(job.id, lease).await?;
    Ok(Some(Work::Rest(job.claimed(lease, &token, Bucket::Core))))
}

/// Registers worker `id` again if its row is gone: another process took it for dead
/// (it was paused, e.g. Ctrl-Z or a suspended laptop, past the stale time) and took
/// over its jobs. Without its row, every job it claimed after resuming would be taken
/// over again at once and fetched twice. Called inside the claim's transaction unless
/// the row was written recently (`Store::registration_fresh`).
async fn ensure_registered(tx: &mut impl Sql, claim: &ClaimFor, now: i64) -> Result<()> {
    let (pid, host) = (process::pid(), process::host_name());
    if tx
        .add_worker(&claim.owner, pid, &host, claim.reserve, now, true)
        .await?
    {
        tracing::warn!(
            "this process was taken for stopped (paused longer than its heartbeat allows); \
             its jobs in flight were handed to another worker and it carries on with new ones"
        );
    }
    Ok(())
}

/// How soon a claim looks again when the ready jobs it could serve were all held by
/// concurrent claims.
const HELD_RETRY_MS: i64 = 50;

/// `Idle` for a claim that took nothing, the queue being in `state`. When the ready
/// jobs it could serve were all `held` by concurrent claims (PostgreSQL's `SKIP
/// LOCKED` passes over a job another claim locked and has not yet leased), it looks
/// again shortly instead of waiting for the tokens' reset: they are not what is
/// missing.
fn idle(state: &QueueState, held: bool, now: i64) -> Claim {
    Claim::Idle {
        running: state.running,
        next_run_at: match held {
            true => Some(now + HELD_RETRY_MS),
            false => state.next_run_at,
        },
    }
}

/// Why nothing was claimed: no job is ready (`Idle`), or the ready ones wait for quota
/// on the buckets that could serve the first of them (`NoToken`), or no token is left.
///
/// `found_none` is the filter of a claim that found no ready job it could take, with
/// no repository passed over. If the first ready job passes that filter all the same,
/// a concurrent claim holds it and the buckets are not what is missing (`idle`). On
/// SQLite a claim sees every ready job, so this never happens there.
async fn nothing_claimable(
    tx: &mut impl Sql,
    claim: &ClaimFor,
    found_none: Option<Servable>,
    now: i64,
) -> Result<Claim> {
    let state = tx.queue_state(now).await?;
    let Some(first_rest_only) = state.first_rest_only else {
        return Ok(idle(&state, false, now));
    };
    if found_none.is_some_and(|s| s.serves(first_rest_only)) {
        return Ok(idle(&state, true, now));
    }
    let buckets: &[Bucket] = match (claim.apis, first_rest_only) {
        (Apis::Rest, _) | (_, true) => &[Bucket::Core],
        (Apis::Graphql, false) => &[Bucket::Graphql],
        (Apis::Auto, false) => &[Bucket::Core, Bucket::Graphql],
    };
    let names: Vec<&str> = buckets.iter().map(|b| b.as_str()).collect();
    let names = serde_json::to_string(&names).expect("strings serialize");
    let (usable, until) = tx
        .earliest_available(&claim.fingerprints, &names, now)
        .await?;
    Ok(if usable == 0 {
        Claim::NoUsableToken
    } else {
        Claim::NoToken {
            until,
            running: state.running,
        }
    })
}

/// Leases `first` and the ready jobs after it that one GraphQL query can carry, on the
/// token with the most GraphQL points; `None` when no token has the query's cost left.
async fn claim_batch(
    tx: &mut impl Sql,
    claim: &ClaimFor,
    first: ReadyJob,
    now: i64,
) -> Result<Option<Batch>> {
    let mut chosen = Vec::new();
    let (mut requests, mut load, mut full) = (0, 0.0, false);
    let list = first.kind == Kind::Pulls.as_str();
    if list {
        chosen.push(first.id);
        requests = graphql::requests_for(Kind::Pulls);
    } else {
        // In light PRs: a page heavy to answer (many files) takes the room of many.
        let max = first.gql_batch.unwrap_or(DEFAULT_BATCH_PRS) as f64;
        let limit = MAX_REQUESTS_PER_QUERY;
        for job in tx.batch_candidates(&first.repo, limit, now).await? {
            let Ok(kind) = job.kind.parse::<Kind>() else {
                continue;
            };
            let needs = graphql::requests_for(kind);
            let share =
                graphql::weight(kind, job.page, job.changed_files) / graphql::LIGHT_PR_WEIGHT;
            if requests + needs > MAX_REQUESTS_PER_QUERY
                || (!chosen.is_empty() && load + share > max)
            {
                full = true;
                break;
            }
            requests += needs;
            load += share;
            chosen.push(job.id);
        }
        if chosen.is_empty() {
            // `first` leads the same order; only a concurrent claim (PostgreSQL) can
            // have taken every candidate meanwhile. Never claim an empty batch.
            return Ok(None);
        }
    }
    let points = graphql::cost(requests);
    let fingerprints = claim.choose_from.as_str();
    let Some(token) = tx
        .take(
            fingerprints,
            Bucket::Graphql,
            points,
            None,
            &first.repo,
            claim.reserve,
            now,
        )
        .await?
    else {
        return Ok(None);
    };
    let ids = serde_json::to_string(&chosen).expect("numbers serialize");
    let lease = Lease {
        owner: &claim.owner,
        expires_at: now + LEASE_MS,
        token: &token,
        now,
    };
    let rows = tx.lease_batch(&ids, chosen[0], points, lease).await?;
    let mut jobs: Vec<ClaimedJob> = rows
        .into_iter()
        .map(|row| ClaimedJob {
            id: row.id,
            lease: row.lease,
            repo: first.repo.clone(),
            kind: row.kind,
            pr_number: row.pr_number,
            page: row.page,
            url: row.url,
            cursor: row.cursor,
            attempts: row.attempts,
            max_attempts: row.max_attempts,
            endpoints: first.endpoints.clone(),
            token: token.clone(),
            bucket: Bucket::Graphql,
            round: row.round,
            etag: None,
            etag_next: None,
            list_since: first.round_since.clone(),
            list_limit: first.pr_limit,
            list_state: first.pr_state.clone(),
        })
        .collect();
    // `RETURNING` gives no order: keep the queue's.
    jobs.sort_by_key(|j| chosen.iter().position(|&id| id == j.id));
    let mark = match list && first.round == 1 && first.page == 1 && first.unmarked {
        true => {
            tx.take(
                fingerprints,
                Bucket::Core,
                1,
                None,
                &first.repo,
                claim.reserve,
                now,
            )
            .await?
        }
        false => None,
    };
    Ok(Some(Batch {
        jobs,
        size: load.ceil() as i64,
        full,
        points,
        mark,
    }))
}
