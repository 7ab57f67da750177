//! The queue's verbs: `claim`, `complete`, `snooze`, `retry_later`, `fail`, `release`,
//! `retry_failed` (and `enqueue_repo`, in `rounds`).
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

use super::commit::{ClaimFor, Finish, Request};
use super::{rounds, tokens, Result, Store};
use crate::github::pages::Rows;
use crate::github::{Kind, RateLimit};
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
    pub url: String,
    /// Attempts so far, this one included.
    pub attempts: i64,
    pub max_attempts: i64,
    /// The repository's per-PR endpoints, for the jobs a list page leads to.
    pub endpoints: String,
    /// Fingerprint of the reserved token.
    pub token: String,
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

/// What `claim` found.
#[derive(Debug)]
// One `Claim` per request: the size of the job variant does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Claim {
    Job(ClaimedJob),
    /// No job is ready. `running` jobs (anywhere) may still add work; the earliest
    /// snoozed job becomes ready at `next_run_at`.
    Idle {
        running: i64,
        next_run_at: Option<i64>,
    },
    /// A job is ready but every token is exhausted or paused until `until` (epoch ms;
    /// `None` when no reset time is known). While `running` jobs are in flight their
    /// answers may still show quota the estimate did not count.
    NoToken {
        until: Option<i64>,
        running: i64,
    },
    /// Every token of this process has been refused with 401.
    NoUsableToken,
}

/// A job to add; its `dedup_key` makes adding it twice a no-op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub repo: String,
    pub kind: Kind,
    pub pr_number: Option<i64>,
    pub page: i64,
    pub url: String,
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

/// What happened to the token during the request, applied with the job's outcome.
#[derive(Debug, Clone)]
pub enum TokenEvent {
    /// An answer with `x-ratelimit-*` headers (or none).
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
pub(super) enum Outcome {
    Done {
        rows: Option<Rows>,
        etag: Option<String>,
        follow_ups: Vec<NewJob>,
    },
    Requeue {
        run_at: i64,
        refund_attempt: bool,
        error: Option<String>,
    },
    Fail {
        error: String,
    },
}

/// Milliseconds a claim is valid for without a heartbeat; the heartbeat renews it.
pub const LEASE_MS: i64 = 60_000;

impl Store {
    /// Takes the next ready job and reserves the token with the most effective quota
    /// among `fingerprints` (a JSON array). See the module's invariants. (Abandoned jobs
    /// are rescued by the heartbeat and at start, not here: a claim is on every job's
    /// path and each statement costs a round trip to SQLite's thread.)
    pub async fn claim(&self, owner: &str, fingerprints: &str, now: i64) -> Result<Claim> {
        let claim = ClaimFor::new(self, owner, fingerprints);
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
        Ok(self.finish_page(job, page, None, now).await?.0)
    }

    /// `complete`, then claims `owner`'s next job in the same transaction (saving a
    /// transaction per job). The claim is that of [`Store::claim`]; only a claimed job
    /// is returned (idle or no-token answers are left to a claim of its own).
    pub async fn complete_and_claim(
        &self,
        job: &ClaimedJob,
        page: Completion,
        owner: &str,
        fingerprints: &str,
        now: i64,
    ) -> Result<(bool, Option<ClaimedJob>)> {
        let next = ClaimFor::new(self, owner, fingerprints);
        self.finish_page(job, page, Some(next), now).await
    }

    async fn finish_page(
        &self,
        job: &ClaimedJob,
        page: Completion,
        next: Option<ClaimFor>,
        now: i64,
    ) -> Result<(bool, Option<ClaimedJob>)> {
        let outcome = Outcome::Done {
            rows: page.rows,
            etag: page.etag,
            follow_ups: page.follow_ups,
        };
        self.finish(job, outcome, TokenEvent::Answered(page.rate), next, now)
            .await
    }

    /// Puts a rate-limited job back at once, without charging the attempt; the token
    /// event keeps the next claim off the limited token.
    pub async fn snooze(&self, job: &ClaimedJob, token: TokenEvent, now: i64) -> Result<bool> {
        let outcome = Outcome::Requeue {
            run_at: now,
            refund_attempt: true,
            error: None,
        };
        Ok(self.finish(job, outcome, token, None, now).await?.0)
    }

    /// Puts a job that failed transiently back for `run_at`, keeping the attempt.
    pub async fn retry_later(
        &self,
        job: &ClaimedJob,
        error: &str,
        run_at: i64,
        rate: Option<RateLimit>,
        now: i64,
    ) -> Result<bool> {
        let outcome = Outcome::Requeue {
            run_at,
            refund_attempt: false,
            error: Some(error.to_owned()),
        };
        let answered = TokenEvent::Answered(rate);
        Ok(self.finish(job, outcome, answered, None, now).await?.0)
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
        let answered = TokenEvent::Answered(rate);
        Ok(self.finish(job, outcome, answered, None, now).await?.0)
    }

    /// Gives a job back unfinished (shutdown): ready at once, attempt refunded.
    pub async fn release(&self, job: &ClaimedJob, now: i64) -> Result<bool> {
        self.snooze(job, TokenEvent::Answered(None), now).await
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

    /// Applies a job's outcome and token event in one transaction, guarded by the lease
    /// (see `commit`: it may share that transaction with other workers' requests).
    /// With `next` it also claims that worker's next job in the same transaction: one
    /// commit per job instead of two.
    async fn finish(
        &self,
        job: &ClaimedJob,
        outcome: Outcome,
        token: TokenEvent,
        next: Option<ClaimFor>,
        now: i64,
    ) -> Result<(bool, Option<ClaimedJob>)> {
        let ensure = next.as_ref().is_some_and(|next| next.ensure_registered);
        let finish = Finish {
            job: job.clone(),
            outcome,
            token,
        };
        let reply = self.commit(Request::finish(finish, next, now)).await?;
        if ensure && reply.claim.is_some() {
            self.mark_registered(now);
        }
        let claimed = match reply.claim {
            Some(Claim::Job(job)) => Some(job),
            _ => None,
        };
        Ok((reply.finished, claimed))
    }
}

/// Writes a job's outcome and its token's event inside the caller's transaction;
/// false (and nothing written) when the lease was taken over.
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
                     lease_expires_at = NULL, last_error = NULL,
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
        } => {
            let refund = i64::from(*refund_attempt);
            sqlx::query!(
                "UPDATE job_queue SET state = 'queued', attempts = max(attempts - ?, 0),
                     run_at = ?, last_error = coalesce(?, last_error), lease_owner = NULL,
                     lease_expires_at = NULL, token = NULL, updated_at = ?
                 WHERE id = ? AND lease = ? AND state = 'running'",
                refund,
                run_at,
                error,
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
                     lease_expires_at = NULL, updated_at = ?
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
    } = &finish.outcome
    {
        let (rows, etag) = (rows.as_ref(), etag.as_deref());
        rounds::store_page(&mut *tx, job, rows, etag, follow_ups, now).await?;
        insert_jobs(&mut *tx, follow_ups, now).await?;
    }
    tokens::apply(&mut *tx, &job.token, &finish.token, now).await?;
    Ok(true)
}

/// A claim (see [`Store::claim`]) inside the caller's write transaction: the group
/// commit's, which may also hold the completion of the worker's previous job.
pub(super) async fn claim_in(
    tx: &mut SqliteConnection,
    owner: &str,
    fingerprints: &str,
    ensure_registered: bool,
    now: i64,
) -> Result<Claim> {
    if ensure_registered {
        super::workers::ensure_registered(&mut *tx, owner, now).await?;
    }
    // The job with the ETag its page got in an earlier round (key: `page_key`).
    let job = sqlx::query!(
        r#"SELECT q.id, q.repo, q.kind, q.pr_number, q.page, q.url, q.attempts,
                  q.max_attempts, q.round, r.endpoints, r.round_since, r.pr_limit,
                  r.pr_state, e.etag AS "etag?", e.token AS "etag_token?",
                  e.next_url AS "etag_next?"
           FROM job_queue q JOIN repos r ON r.name = q.repo
           LEFT JOIN page_etags e ON e.page_key = q.repo || '|' || q.kind || '|'
                                                  || coalesce(q.pr_number, '') || '|' || q.page
           WHERE q.state = 'queued' AND q.run_at <= ?
           ORDER BY q.priority, q.id LIMIT 1"#,
        now
    )
    .fetch_optional(&mut *tx)
    .await?;
    // `INDEXED BY`: left alone, the planner counts running jobs by scanning
    // `job_queue_repo`, that is every job ever queued (milliseconds at 100,000).
    let Some(job) = job else {
        let idle = sqlx::query!(
            r#"SELECT (SELECT count(*) FROM job_queue INDEXED BY job_queue_running
                       WHERE state = 'running') AS "running!: i64",
                      (SELECT min(run_at) FROM job_queue WHERE state = 'queued') AS "next_run_at: i64""#
        )
        .fetch_one(&mut *tx)
        .await?;
        return Ok(Claim::Idle {
            running: idle.running,
            next_run_at: idle.next_run_at,
        });
    };
    // An ETag answers 304 (free) only to the token that got it: `take` prefers that
    // token while it has quota, else takes the best as usual.
    let etag_token = job.etag.as_ref().and(job.etag_token.as_deref());
    let Some(token) = tokens::take(&mut *tx, fingerprints, etag_token, now).await? else {
        let wait = tokens::earliest_available(&mut *tx, fingerprints, now).await?;
        let running = sqlx::query_scalar!(
            r#"SELECT count(*) AS "n!: i64" FROM job_queue INDEXED BY job_queue_running
               WHERE state = 'running'"#
        )
        .fetch_one(&mut *tx)
        .await?;
        return Ok(match wait {
            None => Claim::NoUsableToken,
            Some(until) => Claim::NoToken { until, running },
        });
    };
    let lease_expires_at = now + LEASE_MS;
    let lease = sqlx::query_scalar!(
        "UPDATE job_queue SET state = 'running', lease = lease + 1, lease_owner = ?,
             lease_expires_at = ?, token = ?, attempts = attempts + 1, updated_at = ?
         WHERE id = ? RETURNING lease",
        owner,
        lease_expires_at,
        token,
        now,
        job.id
    )
    .fetch_one(&mut *tx)
    .await?;
    Ok(Claim::Job(ClaimedJob {
        id: job.id,
        lease,
        repo: job.repo,
        kind: job.kind,
        pr_number: job.pr_number,
        page: job.page,
        url: job.url,
        attempts: job.attempts + 1,
        max_attempts: job.max_attempts,
        endpoints: job.endpoints,
        token,
        round: job.round,
        etag: job.etag,
        etag_next: job.etag_next,
        list_since: job.round_since,
        list_limit: job.pr_limit,
        list_state: job.pr_state,
    }))
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
                                created_at, updated_at, round)
         SELECT json_extract(value, '$.repo'), json_extract(value, '$.kind'),
                json_extract(value, '$.pr'), json_extract(value, '$.page'),
                json_extract(value, '$.url'), json_extract(value, '$.key'),
                json_extract(value, '$.priority'), ?2, ?2, ?2, json_extract(value, '$.round')
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
             lease_owner = NULL, lease_expires_at = NULL, token = NULL, updated_at = ?1
         WHERE state = 'running'
           AND (lease_expires_at < ?1 OR lease_owner IS NULL
                OR lease_owner NOT IN (SELECT id FROM workers))",
        now
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}
