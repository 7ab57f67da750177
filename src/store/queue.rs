//! The queue's verbs: `claim` (its SQL in `claim`), `complete`, `snooze`, `fail`,
//! `release`, `finish` (the outcomes of one request's jobs, a GraphQL batch's or a
//! retried page's), `retry_failed` (and `enqueue_repo`, in `rounds`).
//!
//! Invariants:
//! - A job is claimed in one `IMMEDIATE` transaction that also reserves its token, so
//!   two workers (in one process or several) never hold the same job, and the quota a
//!   token has left is decremented before the request goes out.
//! - Each claim bumps the job's `lease` (a fencing counter). Every later write about
//!   the job is guarded by `WHERE id = ? AND lease = ? AND state = 'running'`: a worker
//!   whose job was rescued and claimed again writes nothing, not even its page's rows.
//! - Attempts are charged at claim time, so a page that crashes the worker still uses
//!   up attempts and ends `failed`; snoozes (rate limits) and releases (shutdown) give
//!   the attempt back.
//! - A job belongs to a round of its repository (the first seed is round 1, each
//!   refresh one more). Its dedup key holds the round, so a refresh's jobs are new jobs
//!   while a replay within a round adds nothing. A new round starts only when no job of
//!   the current one is queued or running.
//! - A per-PR page's ETag is stored with its rows, in the same transaction, keyed by the
//!   dedup key without the round; a 304 keeps the rows it stands for.

use super::claim::{Apis, Claim, ClaimFor, Work};
use super::commit::{Finish, Request};
use super::{rounds, Result, Store};
use crate::github::pages::Rows;
use crate::github::{Bucket, Kind, RateLimit};
use sqlx::SqliteConnection;

/// A job this worker holds, with the token reserved for it.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub id: i64,
    /// The fencing counter this claim set.
    pub lease: i64,
    pub repo: String,
    pub kind: String,
    pub pr_number: Option<i64>,
    pub page: i64,
    /// The page's REST URL.
    pub url: String,
    /// GraphQL's `after` for this page of the connection, when a GraphQL answer led to it.
    pub cursor: Option<String>,
    /// Attempts so far, this one included.
    pub attempts: i64,
    pub max_attempts: i64,
    /// The repository's per-PR endpoints, for the jobs a list page leads to.
    pub endpoints: String,
    /// Fingerprint of the reserved token...
    pub token: String,
    /// ...and the bucket the request was reserved on (which API fetches it).
    pub bucket: Bucket,
    /// The repository round this job belongs to; its follow-ups belong to it too.
    pub round: i64,
    /// The ETag an earlier round stored for this page (sent as `If-None-Match`)...
    pub etag: Option<String>,
    /// ...and the next page that page led to, which a 304 goes on to.
    pub etag_next: Option<String>,
    /// This round lists PRs (most recently updated first) down to this `updated_at`.
    pub list_since: Option<String>,
    /// This round lists at most this many PRs.
    pub list_limit: Option<i64>,
    /// The PR state selected (`--state`): open, closed or all.
    pub list_state: String,
}

/// A job to add; its `dedup_key` makes adding it twice a no-op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub repo: String,
    pub kind: Kind,
    pub pr_number: Option<i64>,
    pub page: i64,
    /// The page's REST URL (absolute, or a path below the API root).
    pub url: String,
    /// GraphQL's `after` for this page, when a GraphQL answer led to it.
    pub cursor: Option<String>,
    /// 0 for per-PR jobs, 1 for list pages: complete PRs before discovering more.
    pub priority: i64,
    /// The repository round it belongs to.
    pub round: i64,
}

impl NewJob {
    /// `repo|kind|pr|page`, plus `|rN` from round 2 on (round 1 keeps the format of
    /// databases seeded before refreshes existed).
    pub fn dedup_key(&self) -> String {
        let key = page_key(&self.repo, self.kind.as_str(), self.pr_number, self.page);
        if self.round > 1 {
            format!("{key}|r{}", self.round)
        } else {
            key
        }
    }

    /// Whether only REST can fetch this page: GraphQL has no flat list of review
    /// comments, a later page that a REST answer led to has no GraphQL cursor, and a
    /// refresh starts with a conditional REST list page (a 304: nothing changed, free).
    pub fn rest_only(&self) -> bool {
        let refresh_list = self.kind == Kind::Pulls && self.page == 1 && self.round > 1;
        self.kind == Kind::ReviewComments
            || (self.page > 1 && self.cursor.is_none())
            || refresh_list
    }
}

/// What identifies a page across rounds: the key of its stored ETag.
pub fn page_key(repo: &str, kind: &str, pr_number: Option<i64>, page: i64) -> String {
    let pr = pr_number.map(|n| n.to_string()).unwrap_or_default();
    format!("{repo}|{kind}|{pr}|{page}")
}

/// What a fetched page gives to `complete`: its rows (`None` for a 304), its ETag, the
/// jobs it leads to, and the rate-limit headers of the answer.
#[derive(Debug)]
pub struct Completion {
    pub rows: Option<Rows>,
    pub etag: Option<String>,
    pub follow_ups: Vec<NewJob>,
    pub rate: Option<RateLimit>,
}

/// What happened to the token during the request, applied with the job's outcome to
/// the bucket the job was claimed on (a pause and a 401 concern the whole token).
#[derive(Debug, Clone)]
pub enum TokenEvent {
    /// An answer with rate-limit figures (or none).
    Answered(Option<RateLimit>),
    Exhausted {
        reset_at: i64,
    },
    Paused {
        until: i64,
    },
    Invalid,
}

/// How a job ends (or goes back), written with its token's event.
#[derive(Debug)]
pub enum Outcome {
    /// The page is fetched: its rows (`None` for a 304), ETag and follow-up jobs.
    Done {
        rows: Option<Rows>,
        etag: Option<String>,
        follow_ups: Vec<NewJob>,
        /// With a first seed's GraphQL list page: its list's mark.
        mark: Option<ListMark>,
    },
    /// Back to the queue for `run_at`, with the attempt refunded or not; `rest_only`
    /// sends it to REST from now on (a GraphQL query that timed out even alone).
    Requeue {
        run_at: i64,
        refund_attempt: bool,
        error: Option<String>,
        rest_only: bool,
    },
    /// Failed for good.
    Fail { error: String },
}

impl Outcome {
    /// Back at `run_at` with its attempt refunded: not the job's fault.
    pub fn snoozed(run_at: i64) -> Outcome {
        Outcome::Requeue {
            run_at,
            refund_attempt: true,
            error: None,
            rest_only: false,
        }
    }
}

/// The outcomes of one request's jobs and what the answer said about its token, as
/// [`Store::finish`] writes them together.
#[derive(Debug)]
pub struct Finished {
    pub outcomes: Vec<(ClaimedJob, Outcome)>,
    /// About the token and bucket the jobs were claimed on.
    pub token: TokenEvent,
    /// About the token of a list's mark (a REST request beside a GraphQL list page).
    pub mark_token: Option<(String, TokenEvent)>,
    /// What a GraphQL batch taught about its repository's batch size.
    pub feedback: Option<BatchFeedback>,
}

impl Finished {
    pub fn new(outcomes: Vec<(ClaimedJob, Outcome)>, token: TokenEvent) -> Finished {
        Finished {
            outcomes,
            token,
            mark_token: None,
            feedback: None,
        }
    }
}

/// A list's mark: the REST list page a refresh starts with, fetched at the start of a
/// first seed listed through GraphQL, for its ETag (the next refresh asks for it
/// conditionally) and its newest `updated_at` (the round's high-water mark).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListMark {
    pub url: String,
    pub etag: Option<String>,
    /// Fingerprint of the token that got the ETag.
    pub token: String,
    pub newest_updated_at: Option<String>,
}

/// What a GraphQL query taught about its repository's batch size (see `claim`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchFeedback {
    pub repo: String,
    /// The query's size, in light PRs (`graphql::weight`).
    pub prs: i64,
    /// Whether it was as big as the batch size allowed.
    pub full: bool,
    pub timed_out: bool,
}

/// Milliseconds a claim is valid for without a heartbeat; the heartbeat renews it.
pub const LEASE_MS: i64 = 60_000;

impl Store {
    /// Takes the next ready work and reserves its token: one REST job, or a GraphQL
    /// batch (see `claim`). (Abandoned jobs are rescued by the heartbeat and at start,
    /// not here: a claim is on every job's path and each statement costs a round trip
    /// to SQLite's thread.)
    pub async fn claim(
        &self,
        owner: &str,
        fingerprints: &str,
        apis: Apis,
        now: i64,
    ) -> Result<Claim> {
        let claim = ClaimFor::new(self, owner, fingerprints, apis);
        let ensure = claim.ensure_registered;
        let reply = self.commit(Request::claim(claim, now)).await?;
        if ensure {
            self.mark_registered(now);
        }
        Ok(reply
            .claim
            .expect("a claim without a job to finish is always answered"))
    }

    /// Stores the page's rows, its `etag` and follow-up jobs, reconciles the token and
    /// marks the job done, in one transaction. `rows` is `None` for a 304: the rows the
    /// page stood for stay, marked seen in this round. The last page of a PR's endpoint
    /// deletes that PR's rows of the endpoint that this round did not see. Returns false
    /// (and writes nothing) when the lease was taken over.
    pub async fn complete(&self, job: &ClaimedJob, page: Completion, now: i64) -> Result<bool> {
        let (written, _) = self.finish_page(job, page, None, now).await?;
        Ok(written)
    }

    /// `complete`, then claims `next`'s work in the same transaction (saving a
    /// transaction per job). Only claimed work is returned (idle or no-token answers are
    /// left to a claim of its own).
    pub async fn complete_and_claim(
        &self,
        job: &ClaimedJob,
        page: Completion,
        next: ClaimFor,
        now: i64,
    ) -> Result<(bool, Option<Work>)> {
        self.finish_page(job, page, Some(next), now).await
    }

    async fn finish_page(
        &self,
        job: &ClaimedJob,
        page: Completion,
        next: Option<ClaimFor>,
        now: i64,
    ) -> Result<(bool, Option<Work>)> {
        let outcome = Outcome::Done {
            rows: page.rows,
            etag: page.etag,
            follow_ups: page.follow_ups,
            mark: None,
        };
        let token = TokenEvent::Answered(page.rate);
        let finished = Finished::new(vec![(job.clone(), outcome)], token);
        let (written, work) = self.finish(finished, next, now).await?;
        Ok((written > 0, work))
    }

    /// Puts a rate-limited job back at once, without charging the attempt; the token
    /// event keeps the next claim off the limited token.
    pub async fn snooze(&self, job: &ClaimedJob, token: TokenEvent, now: i64) -> Result<bool> {
        self.finish_one(job, Outcome::snoozed(now), token, now)
            .await
    }

    /// Marks a job failed for good with its error.
    pub async fn fail(
        &self,
        job: &ClaimedJob,
        error: &str,
        rate: Option<RateLimit>,
        now: i64,
    ) -> Result<bool> {
        let outcome = Outcome::Fail {
            error: error.to_owned(),
        };
        self.finish_one(job, outcome, TokenEvent::Answered(rate), now)
            .await
    }

    /// Gives a job back unfinished (shutdown): ready at once, attempt refunded.
    pub async fn release(&self, job: &ClaimedJob, now: i64) -> Result<bool> {
        self.snooze(job, TokenEvent::Answered(None), now).await
    }

    async fn finish_one(
        &self,
        job: &ClaimedJob,
        outcome: Outcome,
        token: TokenEvent,
        now: i64,
    ) -> Result<bool> {
        let finished = Finished::new(vec![(job.clone(), outcome)], token);
        let (written, _) = self.finish(finished, None, now).await?;
        Ok(written > 0)
    }

    /// Writes the outcome of each job of one request (a REST page, or the jobs of a
    /// GraphQL batch) and what the answer said about their token, in one transaction
    /// guarded by each job's lease (see `commit`: it may share that transaction with
    /// other workers' requests). With `next` it also claims that worker's next work in
    /// the same transaction: one commit per request instead of two. Returns how many
    /// outcomes were written (the others were fenced).
    pub async fn finish(
        &self,
        finished: Finished,
        next: Option<ClaimFor>,
        now: i64,
    ) -> Result<(usize, Option<Work>)> {
        let ensure = next.as_ref().is_some_and(|next| next.ensure_registered);
        let reply = self.commit(Request::finish(finished, next, now)).await?;
        if ensure && reply.claim.is_some() {
            self.mark_registered(now);
        }
        let work = match reply.claim {
            Some(Claim::Work(work)) => Some(work),
            _ => None,
        };
        Ok((reply.written, work))
    }

    /// Requeues failed jobs, all or those of one repository or id; returns how many.
    pub async fn retry_failed(&self, repo: Option<&str>, id: Option<i64>, now: i64) -> Result<u64> {
        let mut tx = self.begin_immediate().await?;
        let done = sqlx::query!(
            "UPDATE job_queue SET state = 'queued', attempts = 0, run_at = ?1, updated_at = ?1
             WHERE state = 'failed' AND (?2 IS NULL OR repo = ?2) AND (?3 IS NULL OR id = ?3)",
            now,
            repo,
            id
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }
}

/// Writes a job's outcome inside the caller's transaction; false (and nothing
/// written) when the lease was taken over.
pub(super) async fn finish_in(
    tx: &mut SqliteConnection,
    finish: &Finish,
    now: i64,
) -> Result<bool> {
    let job = &finish.job;
    let updated = match &finish.outcome {
        Outcome::Done { rows, .. } => {
            let not_modified = i64::from(rows.is_none());
            sqlx::query!(
                "UPDATE job_queue SET state = 'done', lease_owner = NULL,
                     lease_expires_at = NULL, last_error = NULL, points = 0,
                     not_modified = not_modified + ?, updated_at = ?
                 WHERE id = ? AND lease = ? AND state = 'running'",
                not_modified,
                now,
                job.id,
                job.lease
            )
            .execute(&mut *tx)
            .await?
        }
        Outcome::Requeue {
            run_at,
            refund_attempt,
            error,
            rest_only,
        } => {
            let refund = i64::from(*refund_attempt);
            let rest_only = i64::from(*rest_only);
            sqlx::query!(
                "UPDATE job_queue SET state = 'queued', attempts = max(attempts - ?, 0),
                     run_at = ?, last_error = coalesce(?, last_error), lease_owner = NULL,
                     lease_expires_at = NULL, token = NULL, bucket = NULL, points = 0,
                     rest_only = max(rest_only, ?), updated_at = ?
                 WHERE id = ? AND lease = ? AND state = 'running'",
                refund,
                run_at,
                error,
                rest_only,
                now,
                job.id,
                job.lease
            )
            .execute(&mut *tx)
            .await?
        }
        Outcome::Fail { error } => {
            sqlx::query!(
                "UPDATE job_queue SET state = 'failed', last_error = ?, lease_owner = NULL,
                     lease_expires_at = NULL, points = 0, updated_at = ?
                 WHERE id = ? AND lease = ? AND state = 'running'",
                error,
                now,
                job.id,
                job.lease
            )
            .execute(&mut *tx)
            .await?
        }
    };
    if updated.rows_affected() == 0 {
        // Fenced: the job was rescued and belongs to someone else now. The guarded
        // UPDATE wrote nothing, and nothing else is written.
        return Ok(false);
    }
    if let Outcome::Done {
        rows,
        etag,
        follow_ups,
        mark,
    } = &finish.outcome
    {
        let (rows, etag) = (rows.as_ref(), etag.as_deref());
        rounds::store_page(&mut *tx, job, rows, etag, follow_ups, now).await?;
        if let Some(mark) = mark {
            rounds::remember_mark(&mut *tx, job, mark).await?;
        }
        insert_jobs(&mut *tx, follow_ups, now).await?;
    }
    Ok(true)
}

/// Adds jobs, in order, except those whose dedup key is already there. One statement
/// for a list page's hundreds of per-PR jobs: each statement is a hand-off to SQLite's
/// thread while the write lock is held.
pub(super) async fn insert_jobs(
    conn: &mut SqliteConnection,
    jobs: &[NewJob],
    now: i64,
) -> Result<()> {
    let rows = jobs.iter().map(|job| {
        serde_json::json!({
            "repo": job.repo,
            "kind": job.kind.as_str(),
            "pr": job.pr_number,
            "page": job.page,
            "url": job.url,
            "cursor": job.cursor,
            "rest_only": job.rest_only(),
            "key": job.dedup_key(),
            "priority": job.priority,
            "round": job.round,
        })
    });
    let Some(rows) = super::json_array(rows) else {
        return Ok(());
    };
    // `WHERE true` lets SQLite parse the upsert after a SELECT; `key` is the array index.
    sqlx::query!(
        "INSERT INTO job_queue (repo, kind, pr_number, page, url, dedup_key, priority, run_at,
                                created_at, updated_at, round, cursor, rest_only)
         SELECT json_extract(value, '$.repo'), json_extract(value, '$.kind'),
                json_extract(value, '$.pr'), json_extract(value, '$.page'),
                json_extract(value, '$.url'), json_extract(value, '$.key'),
                json_extract(value, '$.priority'), ?2, ?2, ?2, json_extract(value, '$.round'),
                json_extract(value, '$.cursor'), json_extract(value, '$.rest_only')
         FROM json_each(?1) WHERE true ORDER BY key
         ON CONFLICT (dedup_key) DO NOTHING",
        rows,
        now
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Puts back the running jobs whose worker is gone (not in `workers`: it exited or was
/// reaped as dead) or whose lease ran out. A job that has used all its attempts this
/// way (it keeps killing its worker) is failed instead of looping forever.
pub(super) async fn rescue_abandoned(conn: &mut SqliteConnection, now: i64) -> Result<()> {
    sqlx::query!(
        "UPDATE job_queue
         SET state = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'queued' END,
             last_error = CASE WHEN attempts >= max_attempts
                 THEN 'its worker stopped while running it ' || attempts || ' times'
                 ELSE last_error END,
             lease_owner = NULL, lease_expires_at = NULL, token = NULL, bucket = NULL,
             points = 0, updated_at = ?1
         WHERE state = 'running'
           AND (lease_expires_at < ?1 OR lease_owner IS NULL
                OR lease_owner NOT IN (SELECT id FROM workers))",
        now
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}
