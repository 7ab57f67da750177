//! The queue's verbs: `claim` (its SQL in `claim`), `complete`, `snooze`, `fail`,
//! `release`, `finish` (the outcomes of one request's jobs, a GraphQL batch's or a
//! retried page's), `retry_failed` (and `enqueue_repo`, in `rounds`).
//!
//! Invariants:
//! - A job is claimed in one transaction that also reserves its token, so two workers
//!   (in one process or several, on one host or several) never hold the same job, and
//!   the quota a token has left is decremented before the request goes out. (SQLite:
//!   an `IMMEDIATE` transaction, one writer at a time; PostgreSQL: the job's row is
//!   locked `FOR UPDATE SKIP LOCKED`, so concurrent claims take different jobs.)
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
use super::commit::Request;
use super::db::write_tx;
use super::sql::{QueueSql, RepoSql};
use super::{Result, Store};
use crate::github::RateLimit;

pub use super::jobs::{
    page_key, BatchFeedback, ClaimedJob, Completion, Finished, ListMark, NewJob, Outcome,
    TokenEvent, LEASE_MS,
};

impl ClaimFor {
    pub fn new(store: &Store, owner: &str, fingerprints: &str, apis: Apis) -> ClaimFor {
        ClaimFor {
            owner: owner.to_owned(),
            fingerprints: fingerprints.to_owned(),
            choose_from: fingerprints.to_owned(),
            apis,
            ensure_registered: !store.registration_fresh(),
            reserve: 0,
        }
    }

    /// The same claim, choosing only from `fingerprints` (a JSON array).
    pub fn choosing_from(mut self, fingerprints: String) -> ClaimFor {
        self.choose_from = fingerprints;
        self
    }

    /// The same claim, keeping `reserve` remaining on every token (`--reserve`).
    pub fn with_reserve(mut self, reserve: i64) -> ClaimFor {
        self.reserve = reserve;
        self
    }
}

impl Store {
    /// Takes the next ready work and reserves its token: one REST job, or a GraphQL
    /// batch (see `claim`). (Abandoned jobs are rescued by the heartbeat and at start,
    /// not here: a claim is on every job's path and each statement costs a round trip
    /// to SQLite's thread.)
    pub async fn claim(&self, claim: ClaimFor, now: i64) -> Result<Claim> {
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
    /// Requeues failed jobs; retrying all jobs or a repository's also forgets which
    /// tokens were refused it (access may have been granted since).
    pub async fn retry_failed(&self, repo: Option<&str>, id: Option<i64>, now: i64) -> Result<u64> {
        Ok(write_tx!(&self.db, |tx| {
            if id.is_none() {
                tx.forget_refusals(repo).await?;
            }
            tx.retry_failed(repo, id, now).await?
        }))
    }
}
