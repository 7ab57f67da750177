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

use super::queue::{ClaimedJob, LEASE_MS};
use super::{tokens, Result, Store};
use crate::github::graphql::{self, MAX_REQUESTS_PER_QUERY};
use crate::github::{Bucket, Kind};
use sqlx::SqliteConnection;

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
    /// The tokens it may use, as a JSON array of fingerprints.
    pub fingerprints: String,
    /// The APIs it may use.
    pub apis: Apis,
    /// Check that the worker row is still there first (it may have been taken for dead).
    pub ensure_registered: bool,
}

impl ClaimFor {
    pub fn new(store: &Store, owner: &str, fingerprints: &str, apis: Apis) -> ClaimFor {
        ClaimFor {
            owner: owner.to_owned(),
            fingerprints: fingerprints.to_owned(),
            apis,
            ensure_registered: !store.registration_fresh(),
        }
    }
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
/// The next ready job, with its repository's settings and its page's ETag.
struct ReadyJob {
    id: i64,
    repo: String,
    kind: String,
    pr_number: Option<i64>,
    page: i64,
    url: String,
    cursor: Option<String>,
    rest_only: bool,
    attempts: i64,
    max_attempts: i64,
    round: i64,
    endpoints: String,
    round_since: Option<String>,
    pr_limit: Option<i64>,
    pr_state: String,
    gql_batch: Option<i64>,
    /// The repository has no refresh list ETag yet (see `Batch::mark`).
    unmarked: bool,
    etag: Option<String>,
    etag_token: Option<String>,
    etag_next: Option<String>,
}

impl ReadyJob {
    fn claimed(self, lease: i64, token: &str, bucket: Bucket) -> ClaimedJob {
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
pub(super) async fn claim_in(
    tx: &mut SqliteConnection,
    claim: &ClaimFor,
    now: i64,
) -> Result<Claim> {
    if claim.ensure_registered {
        super::workers::ensure_registered(&mut *tx, &claim.owner, now).await?;
    }
    let fingerprints = claim.fingerprints.as_str();
    // Which buckets may serve what: GraphQL while some token has points (REST-only
    // jobs aside); REST for REST-only jobs, and for every job when GraphQL may not
    // or cannot. In REST mode the claim does not ask: `take` tells.
    let (graphql, rest, rest_any) = match claim.apis {
        Apis::Rest => (false, true, true),
        apis => {
            let (core, graphql) = tokens::usable(&mut *tx, fingerprints, now).await?;
            (graphql, core, apis == Apis::Auto && !graphql)
        }
    };
    let Some(job) = next_ready(&mut *tx, (graphql, rest, rest_any), now).await? else {
        return nothing_claimable(&mut *tx, claim, now).await;
    };
    if graphql && !job.rest_only {
        if let Some(batch) = claim_batch(&mut *tx, claim, job, now).await? {
            return Ok(Claim::Work(Work::Graphql(batch)));
        }
        // Fewer points left than the query costs: the next claim looks again.
        return nothing_claimable(&mut *tx, claim, now).await;
    }
    // An ETag answers 304 (free) only to the token that got it: `take` prefers that
    // token while it has quota, else takes the best as usual.
    let etag_token = job.etag.as_ref().and(job.etag_token.as_deref());
    let Some(token) =
        tokens::take(&mut *tx, fingerprints, Bucket::Core, 1, etag_token, now).await?
    else {
        return nothing_claimable(&mut *tx, claim, now).await;
    };
    let lease_expires_at = now + LEASE_MS;
    let lease = sqlx::query_scalar!(
        "UPDATE job_queue SET state = 'running', lease = lease + 1, lease_owner = ?,
             lease_expires_at = ?, token = ?, bucket = 'core', attempts = attempts + 1,
             updated_at = ?
         WHERE id = ? RETURNING lease",
        claim.owner,
        lease_expires_at,
        token,
        now,
        job.id
    )
    .fetch_one(&mut *tx)
    .await?;
    Ok(Claim::Work(Work::Rest(job.claimed(
        lease,
        &token,
        Bucket::Core,
    ))))
}

/// The first ready job (per-PR jobs first, then by age) that one of the allowed
/// buckets may serve: `graphql` (any job but a REST-only one), `rest` (REST-only jobs,
/// and every job with `rest_any`).
async fn next_ready(
    tx: &mut SqliteConnection,
    (graphql, rest, rest_any): (bool, bool, bool),
    now: i64,
) -> Result<Option<ReadyJob>> {
    // The job with the ETag its page got in an earlier round (key: `page_key`).
    let job = sqlx::query!(
        r#"SELECT q.id, q.repo, q.kind, q.pr_number, q.page, q.url, q.cursor,
                  q.rest_only AS "rest_only: bool", q.attempts, q.max_attempts, q.round,
                  r.endpoints, r.round_since, r.pr_limit, r.pr_state, r.gql_batch,
                  r.list_etag IS NULL AS "unmarked!: bool",
                  coalesce(e.etag, CASE WHEN q.url = r.list_etag_url THEN r.list_etag END)
                      AS "etag?",
                  coalesce(e.token, CASE WHEN q.url = r.list_etag_url THEN r.list_etag_token END)
                      AS "etag_token?",
                  e.next_url AS "etag_next?"
           FROM job_queue q JOIN repos r ON r.name = q.repo
           LEFT JOIN page_etags e ON e.page_key = q.repo || '|' || q.kind || '|'
                                                  || coalesce(q.pr_number, '') || '|' || q.page
           WHERE q.state = 'queued' AND q.run_at <= ?1
             AND ((?2 AND q.rest_only = 0) OR (?3 AND (q.rest_only = 1 OR ?4)))
           ORDER BY q.priority, q.id LIMIT 1"#,
        now,
        graphql,
        rest,
        rest_any
    )
    .fetch_optional(&mut *tx)
    .await?;
    Ok(job.map(|j| ReadyJob {
        id: j.id,
        repo: j.repo,
        kind: j.kind,
        pr_number: j.pr_number,
        page: j.page,
        url: j.url,
        cursor: j.cursor,
        rest_only: j.rest_only,
        attempts: j.attempts,
        max_attempts: j.max_attempts,
        round: j.round,
        endpoints: j.endpoints,
        round_since: j.round_since,
        pr_limit: j.pr_limit,
        pr_state: j.pr_state,
        gql_batch: j.gql_batch,
        unmarked: j.unmarked,
        etag: j.etag,
        etag_token: j.etag_token,
        etag_next: j.etag_next,
    }))
}

/// Why nothing was claimed: no job is ready (`Idle`), or the ready ones wait for quota
/// on the buckets that could serve the first of them (`NoToken`), or no token is left.
async fn nothing_claimable(tx: &mut SqliteConnection, claim: &ClaimFor, now: i64) -> Result<Claim> {
    // `INDEXED BY`: left alone, the planner counts running jobs by scanning
    // `job_queue_repo`, that is every job ever queued (milliseconds at 100,000).
    let state = sqlx::query!(
        r#"SELECT (SELECT count(*) FROM job_queue INDEXED BY job_queue_running
                   WHERE state = 'running') AS "running!: i64",
                  (SELECT min(run_at) FROM job_queue WHERE state = 'queued') AS "next_run_at: i64",
                  (SELECT rest_only FROM job_queue WHERE state = 'queued' AND run_at <= ?1
                   ORDER BY priority, id LIMIT 1) AS "first_rest_only: bool""#,
        now
    )
    .fetch_one(&mut *tx)
    .await?;
    let Some(first_rest_only) = state.first_rest_only else {
        return Ok(Claim::Idle {
            running: state.running,
            next_run_at: state.next_run_at,
        });
    };
    let buckets: &[Bucket] = match (claim.apis, first_rest_only) {
        (Apis::Rest, _) | (_, true) => &[Bucket::Core],
        (Apis::Graphql, false) => &[Bucket::Graphql],
        (Apis::Auto, false) => &[Bucket::Core, Bucket::Graphql],
    };
    let wait = tokens::earliest_available(&mut *tx, &claim.fingerprints, buckets, now).await?;
    Ok(match wait {
        None => Claim::NoUsableToken,
        Some(until) => Claim::NoToken {
            until,
            running: state.running,
        },
    })
}

/// Leases `first` and the ready jobs after it that one GraphQL query can carry, on the
/// token with the most GraphQL points; `None` when no token has the query's cost left.
async fn claim_batch(
    tx: &mut SqliteConnection,
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
        let candidates = sqlx::query!(
            r#"SELECT q.id, q.kind, q.page, p.changed_files
               FROM job_queue q
               LEFT JOIN gh_pulls p ON p.repo = q.repo AND p.number = q.pr_number
               WHERE q.state = 'queued' AND q.run_at <= ?1 AND q.repo = ?2
                 AND q.rest_only = 0 AND q.kind <> 'pulls'
               ORDER BY q.priority, q.id LIMIT ?3"#,
            now,
            first.repo,
            limit
        )
        .fetch_all(&mut *tx)
        .await?;
        for job in candidates {
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
            // Not reached: `first` leads the same order. Never claim an empty batch.
            chosen.push(first.id);
            requests = 1;
        }
    }
    let points = graphql::cost(requests);
    let Some(token) = tokens::take(
        &mut *tx,
        &claim.fingerprints,
        Bucket::Graphql,
        points,
        None,
        now,
    )
    .await?
    else {
        return Ok(None);
    };
    let ids = serde_json::to_string(&chosen).expect("numbers serialize");
    let lease_expires_at = now + LEASE_MS;
    let rows = sqlx::query!(
        r#"UPDATE job_queue SET state = 'running', lease = lease + 1, lease_owner = ?1,
               lease_expires_at = ?2, token = ?3, bucket = 'graphql',
               points = CASE WHEN id = ?4 THEN ?5 ELSE 0 END, attempts = attempts + 1,
               updated_at = ?6
           WHERE id IN (SELECT value FROM json_each(?7))
           RETURNING id AS "id!", kind, pr_number, page, url, cursor, attempts, max_attempts,
                     round, lease"#,
        claim.owner,
        lease_expires_at,
        token,
        first.id,
        points,
        now,
        ids
    )
    .fetch_all(&mut *tx)
    .await?;
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
        true => tokens::take(&mut *tx, &claim.fingerprints, Bucket::Core, 1, None, now).await?,
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
