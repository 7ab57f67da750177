//! Group commit: the queue's per-job writes of one process, applied in shared
//! transactions.
//!
//! Every job ends in a write transaction (its page's rows and follow-up jobs, its
//! token's quota, and usually the claim of its worker's next job). Workers hand these
//! to one task, which applies in one transaction whatever requests piled up while its
//! previous transaction ran: one `BEGIN IMMEDIATE` and one `COMMIT` for them all, and
//! one copy in the WAL of the pages they share (the queue's indexes, the token rows),
//! instead of one each. When nothing waits, a batch is the one request, applied at once.
//!
//! On PostgreSQL a transaction writes the token rows last, just before COMMIT, and
//! claims come after it (`apply_postgres`): no transaction holds a token's row while
//! it writes anything else, so [`PG_COMMITTERS`] transactions of one process, and
//! those of other processes, run side by side.
//!
//! Invariants:
//! - A worker hears its answer only after the transaction holding its write committed;
//!   a crash before that loses the whole batch, as it would have lost each transaction
//!   (the jobs stay running and are rescued, and their pages fetched again).
//! - Within a batch, every outcome is written before any claim, so a claim sees the
//!   jobs that the completions of its batch added (and every committed batch's).
//! - A fenced request (its lease taken over) writes none of its outcomes and does not
//!   stop the others; what its answer said about its token still counts.
//! - A job is done in the transaction that counts its answer in its token's row: a
//!   request answered and not yet counted is still in flight for every other
//!   answer's reconciliation. (While a quarter or more of a bucket is left above the
//!   reserve, a process writes an answer's figures at most once a second in a window,
//!   and the answer written carries the lowest `remaining` left unwritten in its
//!   window: `reconciled`.)
//! - If a batch's outcomes fail, they are rolled back and each request is applied again
//!   alone, so an error reaches only the worker whose request caused it.
//! - A transaction that writes several token rows takes them in key order
//!   (PostgreSQL; SQLite's write lock covers them), so two transactions never wait on
//!   each other in a circle.
//! - No transaction is held across an HTTP request: a batch holds at most
//!   [`MAX_BATCH`] requests, all already answered by GitHub.

use super::batch_size;
#[cfg(feature = "postgres")]
use super::claim::claim_rest_at_once;
use super::claim::{claim_in, Claim, ClaimFor};
use super::db::{write_tx, Db};
use super::finish::{apply_token_event, finish_in};
use super::jobs::{BatchFeedback, ClaimedJob, Finished, Outcome, TokenEvent};
use super::reconciled::Reconciled;
use super::sql::{Sql, TokenSql};
use super::{Result, Store, StoreError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Most requests applied in one transaction: a bound on how long the write lock is held
/// (other processes wait for it) and on a batch's rollback.
const MAX_BATCH: usize = 64;

/// A job's outcome to write, guarded by its lease.
#[derive(Debug)]
struct Finish {
    pub job: ClaimedJob,
    pub outcome: Outcome,
}

/// One worker's writes for one transaction: the outcomes of the jobs of one HTTP
/// request (one REST page, or a GraphQL batch) with what the answer said about their
/// token, and a claim (only if some outcome was written: a worker whose every job was
/// taken over claims on its own later).
#[derive(Debug)]
pub(super) struct Request {
    finishes: Vec<Finish>,
    token: TokenEvent,
    mark_token: Option<(String, TokenEvent)>,
    feedback: Option<BatchFeedback>,
    claim: Option<ClaimFor>,
    now: i64,
    /// Whether the answer's rate-limit figures are written (`reconciled`): decided by
    /// the committer before the batch is applied.
    write_figures: bool,
}

impl Request {
    pub fn claim(claim: ClaimFor, now: i64) -> Request {
        Request {
            finishes: Vec::new(),
            token: TokenEvent::Answered(None),
            mark_token: None,
            feedback: None,
            claim: Some(claim),
            now,
            write_figures: true,
        }
    }

    pub fn finish(finished: Finished, claim: Option<ClaimFor>, now: i64) -> Request {
        Request {
            finishes: finished
                .outcomes
                .into_iter()
                .map(|(job, outcome)| Finish { job, outcome })
                .collect(),
            token: finished.token,
            mark_token: finished.mark_token,
            feedback: finished.feedback,
            claim,
            now,
            write_figures: true,
        }
    }

    /// The token and bucket of its answer's figures, and the figures; `None` when it
    /// has none.
    fn figures(&self) -> Option<(&str, crate::github::Bucket, &crate::github::RateLimit)> {
        let job = &self.finishes.first()?.job;
        match &self.token {
            TokenEvent::Answered(Some(rate)) => Some((&job.token, job.bucket, rate)),
            _ => None,
        }
    }
}

/// What a request did once committed.
#[derive(Debug)]
pub(super) struct Reply {
    /// Outcomes written (the others were fenced: nothing written for them).
    pub written: usize,
    /// What the claim found; `None` without a claim or when every outcome was fenced.
    pub claim: Option<Claim>,
}

type Pending = (Request, oneshot::Sender<Result<Reply>>);

/// The sending side of the task that applies requests.
pub(super) struct Committer {
    requests: mpsc::UnboundedSender<Pending>,
    /// How well requests were grouped, for the debug log at close.
    counts: Arc<Counts>,
    /// Which answers' figures were written, and the freshest left unwritten.
    reconciled: Arc<Reconciled>,
}

/// What the task did so far.
#[derive(Debug, Default)]
pub(super) struct Counts {
    /// Requests answered.
    pub requests: AtomicU64,
    /// Transactions committed.
    pub transactions: AtomicU64,
}

impl Committer {
    pub fn counts(&self) -> (u64, u64) {
        let requests = self.counts.requests.load(Ordering::Relaxed);
        (requests, self.counts.transactions.load(Ordering::Relaxed))
    }
}

impl Store {
    /// Applies `request` in a transaction shared with the requests other workers of this
    /// process sent meanwhile, and answers once it committed.
    pub(super) async fn commit(&self, request: Request) -> Result<Reply> {
        let committer = self.committer.get_or_init(|| {
            let (requests, receiver) = mpsc::unbounded_channel();
            let counts = Arc::new(Counts::default());
            let reconciled = Arc::new(Reconciled::default());
            tokio::spawn(run(
                self.db.clone(),
                receiver,
                counts.clone(),
                reconciled.clone(),
            ));
            Committer {
                requests,
                counts,
                reconciled,
            }
        });
        let (answer, answered) = oneshot::channel();
        let gone = || StoreError::Sql(sqlx::Error::WorkerCrashed);
        committer
            .requests
            .send((request, answer))
            .map_err(|_| gone())?;
        answered.await.map_err(|_| gone())?
    }

    /// Writes the freshest answer of each bucket whose figures this process left
    /// unwritten (`reconciled`), in one transaction: called by the heartbeat and when
    /// `work` ends, so that the token rows end as exact as if every answer had been
    /// written. Only into the window the row is in, and not into a spent or refused
    /// bucket: a refusal written since (by any process) is newer than the answer.
    pub async fn write_skipped_figures(&self, now: i64) -> Result<()> {
        let Some(committer) = self.committer.get() else {
            return Ok(());
        };
        let skipped = committer.reconciled.take_skipped();
        if skipped.is_empty() {
            return Ok(());
        }
        write_tx!(&self.db, |tx| {
            tx.lock_tokens().await?;
            let rows = tx.token_rows().await?;
            for (token, bucket, rate) in &skipped {
                let Some(row) = rows.iter().find(|r| &r.fingerprint == token) else {
                    continue;
                };
                let (remaining, reset_at) = match bucket {
                    crate::github::Bucket::Core => (row.remaining, row.reset_at),
                    crate::github::Bucket::Graphql => (row.graphql.remaining, row.graphql.reset_at),
                };
                if remaining <= 0 || reset_at.is_none() || reset_at != rate.reset_at_ms(now) {
                    continue;
                }
                let answered = TokenEvent::Answered(Some(rate.clone()));
                apply_token_event(tx, token, *bucket, &answered, "[]", now).await?;
            }
        });
        Ok(())
    }
}

/// The task: takes what is waiting (at least one request), applies it, answers; ends
/// when every `Store` handle of the process is gone. On PostgreSQL, [`PG_COMMITTERS`]
/// transactions run at once (each on its connection): while one waits for the
/// server, the next takes what piled up meanwhile. SQLite has one writer: one at a time.
async fn run(
    db: Db,
    receiver: mpsc::UnboundedReceiver<Pending>,
    counts: Arc<Counts>,
    reconciled: Arc<Reconciled>,
) {
    let committers = match db {
        #[cfg(feature = "postgres")]
        Db::Postgres(_) => PG_COMMITTERS,
        #[allow(unreachable_patterns)]
        _ => 1,
    };
    let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
    let mut running = tokio::task::JoinSet::new();
    for _ in 0..committers {
        let (receiver, counts) = (receiver.clone(), counts.clone());
        running.spawn(commit_from(
            db.clone(),
            receiver,
            counts,
            reconciled.clone(),
        ));
    }
    while running.join_next().await.is_some() {}
}

/// How many transactions of one process's group commit run at once on PostgreSQL.
#[cfg(feature = "postgres")]
pub(crate) const PG_COMMITTERS: usize = 3;

/// One committer: waits for requests (one committer waits at a time), applies them.
async fn commit_from(
    db: Db,
    receiver: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Pending>>>,
    counts: Arc<Counts>,
    reconciled: Arc<Reconciled>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let committed = |requests: &[Request]| {
        counts.transactions.fetch_add(1, Ordering::Relaxed);
        for request in requests.iter().filter(|r| r.write_figures) {
            if let Some((token, bucket, rate)) = request.figures() {
                reconciled.written(token, bucket, rate, request.now);
            }
        }
    };
    loop {
        let received = receiver.lock().await.recv_many(&mut batch, MAX_BATCH).await;
        if received == 0 {
            return;
        }
        counts
            .requests
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        let (mut requests, answers): (Vec<Request>, Vec<_>) = batch.drain(..).unzip();
        for request in &mut requests {
            if let Some(claim) = &request.claim {
                reconciled.reserve(claim.reserve);
            }
            let write = request
                .figures()
                .map(|(token, bucket, rate)| reconciled.to_write(token, bucket, rate, request.now));
            request.write_figures = !matches!(write, Some(None));
            if let Some(Some(rate)) = write {
                request.token = TokenEvent::Answered(Some(rate));
            }
        }
        if requests.len() > 1 {
            match apply(&db, &requests).await {
                Ok(replies) => {
                    committed(&requests);
                    for (answer, reply) in answers.into_iter().zip(replies) {
                        let _ = answer.send(reply);
                    }
                    continue;
                }
                Err(e) => tracing::debug!(
                    "a batch of {} writes failed ({e}); applying them one at a time",
                    requests.len()
                ),
            }
        }
        for (request, answer) in requests.iter().zip(answers) {
            let reply = apply(&db, std::slice::from_ref(request)).await;
            if reply.is_ok() {
                committed(std::slice::from_ref(request));
            }
            let _ = answer.send(reply.and_then(|mut replies| replies.remove(0)));
        }
    }
}

/// What applying a batch gave each of its requests: its reply, or the error of its own
/// part written after the batch's outcomes committed (PostgreSQL's claims).
type Replies = Vec<Result<Reply>>;

/// Applies `requests`, in one transaction on SQLite; on PostgreSQL, the outcomes in
/// one transaction, then the token rows' writes and the claims (`apply_postgres`).
/// An error means nothing was written (the transaction is applied again first when
/// the database failed it to break a deadlock: see `write_tx!`).
async fn apply(db: &Db, requests: &[Request]) -> Result<Replies> {
    match db {
        #[cfg(feature = "postgres")]
        Db::Postgres(pg) => apply_postgres(pg, requests).await,
        #[allow(unreachable_patterns)]
        _ => Ok(write_tx!(db, |tx| apply_in(tx, requests).await?)
            .into_iter()
            .map(Ok)
            .collect()),
    }
}

/// Applies `requests` inside the caller's transaction, in two phases:
/// - first every request's outcomes (the jobs' rows, guarded by their leases, their
///   pages, ETags and follow-up jobs) and what its batch taught (`finish_all`);
/// - then the token rows: each request's token event, then each claim (in the order
///   sent), which sees every job the batch added.
async fn apply_in(tx: &mut impl Sql, requests: &[Request]) -> Result<Vec<Reply>> {
    let written = finish_all(tx, requests).await?;
    // Every request spends or credits some token: lock them all first, in one order.
    tx.lock_tokens().await?;
    token_events(tx, requests).await?;
    let mut replies = Vec::with_capacity(requests.len());
    for (request, written) in requests.iter().zip(written) {
        let claim = match claim_of(request, written) {
            Some(c) => Some(claim_in(tx, c, request.now).await?),
            None => None,
        };
        replies.push(Reply { written, claim });
    }
    Ok(replies)
}

/// Writes every request's outcomes and what its batch taught; how many outcomes of
/// each were written (the others were fenced). These rows are the requests' own: no
/// other transaction waits for them.
async fn finish_all(tx: &mut impl Sql, requests: &[Request]) -> Result<Vec<usize>> {
    let mut written = Vec::with_capacity(requests.len());
    for request in requests {
        let mut n = 0;
        for finish in &request.finishes {
            n += usize::from(finish_in(tx, &finish.job, &finish.outcome, request.now).await?);
        }
        if let Some(feedback) = request.feedback.as_ref().filter(|_| n > 0) {
            batch_size::learn(tx, feedback).await?;
        }
        written.push(n);
    }
    Ok(written)
}

/// What each request's answer said about its token (and its list mark's). It is about
/// the token whoever holds the jobs now, so it counts even when every job of the
/// request was taken over (an answer from a window that has ended counts for
/// nothing). Written in the order of the token rows' keys (fingerprint, then bucket),
/// the order every transaction that writes several of them takes them in: a batch
/// mixes REST and GraphQL answers and list marks (a GraphQL answer's row, then a mark's
/// `core` row of another token), and written in the requests' order two transactions
/// could each hold a row the other waits for.
async fn token_events(tx: &mut impl Sql, requests: &[Request]) -> Result<()> {
    for write in token_writes(requests) {
        let TokenWrite {
            token,
            bucket,
            event,
            own,
            now,
        } = write;
        apply_token_event(tx, token, bucket, event, &own, now).await?;
    }
    Ok(())
}

/// One token event to write: on `token`'s `bucket` row (`own`: see `apply_token_event`).
#[derive(Debug)]
struct TokenWrite<'a> {
    token: &'a str,
    bucket: crate::github::Bucket,
    event: &'a TokenEvent,
    own: Arc<String>,
    now: i64,
}

/// The token events of `requests`, in the order of the rows' keys.
fn token_writes(requests: &[Request]) -> Vec<TokenWrite<'_>> {
    let mut writes = Vec::new();
    for request in requests {
        let Some(job) = request.finishes.first().map(|f| &f.job) else {
            continue;
        };
        let own = request.finishes.iter().map(|f| [f.job.id, f.job.lease]);
        let own = serde_json::to_string(&own.collect::<Vec<_>>()).expect("numbers serialize");
        let own = Arc::new(own);
        if request.write_figures {
            writes.push(TokenWrite {
                token: &job.token,
                bucket: job.bucket,
                event: &request.token,
                own: own.clone(),
                now: request.now,
            });
        }
        if let Some((token, event)) = &request.mark_token {
            writes.push(TokenWrite {
                token,
                bucket: crate::github::Bucket::Core,
                event,
                own,
                now: request.now,
            });
        }
    }
    writes.sort_by(|a, b| (a.token, a.bucket.as_str()).cmp(&(b.token, b.bucket.as_str())));
    writes
}

/// The claim to make for `request`: none when it has none, or when it finished jobs
/// and every one of them was taken over.
fn claim_of(request: &Request, written: usize) -> Option<&ClaimFor> {
    let claim = request.claim.as_ref()?;
    (written > 0 || request.finishes.is_empty()).then_some(claim)
}

/// `pg_tx!(conn, |tx| body)`: `body` in a transaction on `conn`, committed; run again
/// when PostgreSQL failed it to break a deadlock (as `write_tx!`).
#[cfg(feature = "postgres")]
macro_rules! pg_tx {
    ($conn:expr, |$tx:ident| $body:expr) => {
        super::db::retried!(
            async {
                let mut open = sqlx::Connection::begin(&mut *$conn).await?;
                let $tx = &mut *open;
                let value = $body;
                open.commit().await?;
                Ok(value)
            }
            .await
        )
    };
}

/// PostgreSQL: the outcomes (`finish_all`) and then the token events in one
/// transaction, committed; then, outside it, each claim, a REST claim in one statement
/// (`claim_rest_at_once`) and any other in a transaction of its own that locks the
/// token rows first. A token's row is held from its event to COMMIT, and by a claim
/// for one statement: the group commits of several processes, and the several
/// committers of one, run side by side instead of queueing for those rows.
#[cfg(feature = "postgres")]
async fn apply_postgres(db: &super::postgres::Db, requests: &[Request]) -> Result<Replies> {
    let mut conn = db.pool.acquire().await?;
    let written = match requests.iter().any(|r| !r.finishes.is_empty()) {
        true => pg_tx!(conn, |tx| {
            let written = finish_all(tx, requests).await?;
            // Last, so that the token rows are held only until COMMIT; in the order of
            // their keys, so that two transactions never wait on each other in a
            // circle.
            token_events(tx, requests).await?;
            written
        })?,
        false => vec![0; requests.len()],
    };
    let mut replies = Vec::with_capacity(requests.len());
    for (request, written) in requests.iter().zip(written) {
        let reply = match claim_of(request, written) {
            None => Ok(Reply {
                written,
                claim: None,
            }),
            Some(c) => claim_postgres(&mut conn, c, request.now)
                .await
                .map(|claim| Reply {
                    written,
                    claim: Some(claim),
                }),
        };
        replies.push(reply);
    }
    Ok(replies)
}

/// A claim on PostgreSQL: in one statement when it can (`claim_rest_at_once`), else in
/// a transaction that locks the token rows first.
#[cfg(feature = "postgres")]
async fn claim_postgres(
    conn: &mut sqlx::PgConnection,
    claim: &ClaimFor,
    now: i64,
) -> Result<Claim> {
    if let Some(claimed) = claim_rest_at_once(conn, claim, now).await? {
        return Ok(claimed);
    }
    pg_tx!(conn, |tx| {
        tx.lock_tokens().await?;
        claim_in(tx, claim, now).await?
    })
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;
    use crate::github::pages::Rows;
    use crate::github::Kind;
    use crate::store::rounds::ListOptions;
    use crate::store::{now_ms, Apis, Completion, Create, NewJob, Work};
    use crate::token::Token;

    /// A database in a temp dir with one worker, one token and `prs` claimed jobs.
    struct Claimed {
        store: Store,
        jobs: Vec<ClaimedJob>,
        /// The token's fingerprint as a JSON array, for further claims.
        fingerprints: String,
        _dir: tempfile::TempDir,
    }

    const OWNER: &str = "worker-1";

    async fn claimed_jobs(prs: i64) -> Claimed {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seedq.db");
        claimed_jobs_at(&path, prs, dir).await
    }

    /// As `claimed_jobs`, in the database at `location` (a file or a PostgreSQL URL).
    async fn claimed_jobs_at(
        location: &std::path::Path,
        prs: i64,
        dir: tempfile::TempDir,
    ) -> Claimed {
        let store = Store::open(location, Create::IfMissing, 4).await.unwrap();
        let now = now_ms();
        // Any string will do: the store sees only its fingerprint, and nothing is sent.
        let token = Token::new("test-secret-of-the-group-commit-tests");
        store
            .register_tokens(std::slice::from_ref(&token), now)
            .await
            .unwrap();
        let fingerprints = serde_json::json!([token.fingerprint()]).to_string();
        store.register_worker(OWNER, 0, now).await.unwrap();
        store
            .enqueue_repo("o/r", &ListOptions::default(), now)
            .await
            .unwrap();
        let claim = || store.claim(ClaimFor::new(&store, OWNER, &fingerprints, Apis::Rest), now);
        let Claim::Work(Work::Rest(list)) = claim().await.unwrap() else {
            panic!("the list page is ready");
        };
        let listed = Completion {
            rows: Some(Rows::Pulls(Vec::new())),
            etag: None,
            follow_ups: (1..=prs).map(|pr| commits_job("o/r", pr)).collect(),
            rate: None,
        };
        assert!(store.complete(&list, listed, now).await.unwrap());
        let mut jobs = Vec::new();
        for _ in 0..prs {
            match claim().await.unwrap() {
                Claim::Work(Work::Rest(job)) => jobs.push(job),
                other => panic!("expected a job, got {other:?}"),
            }
        }
        Claimed {
            store,
            jobs,
            fingerprints,
            _dir: dir,
        }
    }

    fn commits_job(repo: &str, pr: i64) -> NewJob {
        NewJob {
            repo: repo.to_owned(),
            kind: Kind::Commits,
            pr_number: Some(pr),
            page: 1,
            url: format!("https://api.github.com/repos/{repo}/pulls/{pr}/commits?per_page=100"),
            cursor: None,
            priority: 0,
            round: 1,
        }
    }

    fn empty_page(follow_ups: Vec<NewJob>) -> Completion {
        Completion {
            rows: Some(Rows::Commits(Vec::new())),
            etag: None,
            follow_ups,
            rate: None,
        }
    }

    /// An empty page whose answer says `remaining` requests are left until `reset_secs`.
    fn answer(remaining: i64, reset_secs: i64) -> Completion {
        Completion {
            rate: Some(crate::github::RateLimit {
                limit: Some(5000),
                remaining: Some(remaining),
                reset_epoch_secs: Some(reset_secs),
                ..Default::default()
            }),
            ..empty_page(Vec::new())
        }
    }

    fn pool(store: &Store) -> &sqlx::SqlitePool {
        match &store.db {
            Db::Sqlite(db) => &db.pool,
            #[allow(unreachable_patterns)]
            _ => unreachable!("the tests open a SQLite file"),
        }
    }

    fn transactions(store: &Store) -> u64 {
        let committer = store.committer.get().expect("the store has committed");
        committer.counts().1
    }

    async fn state_and_lease(store: &Store, id: i64) -> (String, i64) {
        sqlx::query_as("SELECT state, lease FROM job_queue WHERE id = ?")
            .bind(id)
            .fetch_one(pool(store))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn concurrent_completions_share_one_transaction_and_a_fenced_one_writes_nothing() {
        let Claimed {
            store, jobs, _dir, ..
        } = claimed_jobs(3).await;
        let [a, b, c] = &jobs[..] else { unreachable!() };
        // b's job was rescued and claimed by someone else meanwhile.
        sqlx::query("UPDATE job_queue SET lease = lease + 1 WHERE id = ?")
            .bind(b.id)
            .execute(pool(&store))
            .await
            .unwrap();
        let before = transactions(&store);
        let now = now_ms();
        let (done_a, done_b, done_c) = tokio::join!(
            store.complete(a, empty_page(Vec::new()), now),
            store.complete(b, empty_page(Vec::new()), now),
            store.complete(c, empty_page(Vec::new()), now),
        );
        assert_eq!(
            (done_a.unwrap(), done_b.unwrap(), done_c.unwrap()),
            (true, false, true)
        );
        assert_eq!(
            transactions(&store) - before,
            1,
            "one transaction for three"
        );
        assert_eq!(state_and_lease(&store, a.id).await.0, "done");
        assert_eq!(
            state_and_lease(&store, b.id).await,
            ("running".to_owned(), b.lease + 1)
        );
        assert_eq!(state_and_lease(&store, c.id).await.0, "done");
    }

    async fn core_remaining(store: &Store) -> (i64, Option<i64>) {
        sqlx::query_as("SELECT remaining, reset_at FROM token_buckets WHERE bucket = 'core'")
            .fetch_one(pool(store))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn an_answer_from_a_window_that_has_ended_leaves_the_quota_alone() {
        let Claimed {
            store, jobs, _dir, ..
        } = claimed_jobs(2).await;
        let now = now_ms();
        let before = core_remaining(&store).await;
        // Sent in the window that ended a second ago: nothing learned.
        let stale = answer(7, now / 1000 - 1);
        assert!(store.complete(&jobs[0], stale, now).await.unwrap());
        assert_eq!(core_remaining(&store).await, before);
        // The current window's answer is taken (nothing else in flight: exactly).
        let reset_secs = now / 1000 + 60;
        assert!(store
            .complete(&jobs[1], answer(7, reset_secs), now)
            .await
            .unwrap());
        assert_eq!(core_remaining(&store).await, (7, Some(reset_secs * 1000)));
    }

    #[tokio::test]
    async fn a_failing_write_in_a_batch_reaches_only_its_worker() {
        let Claimed {
            store, jobs, _dir, ..
        } = claimed_jobs(3).await;
        let [a, b, c] = &jobs[..] else { unreachable!() };
        // A follow-up of a repository that was never enqueued breaks a foreign key.
        let broken = vec![commits_job("nobody/else", 1)];
        let now = now_ms();
        let (done_a, done_b, done_c) = tokio::join!(
            store.complete(a, empty_page(Vec::new()), now),
            store.complete(b, empty_page(broken), now),
            store.complete(c, empty_page(vec![commits_job("o/r", 9)]), now),
        );
        assert!(done_a.unwrap());
        let error = done_b.expect_err("the broken write fails").to_string();
        assert!(error.contains("FOREIGN KEY"), "{error}");
        assert!(done_c.unwrap());
        assert_eq!(state_and_lease(&store, a.id).await.0, "done");
        assert_eq!(state_and_lease(&store, b.id).await.0, "running");
        assert_eq!(state_and_lease(&store, c.id).await.0, "done");
        let added: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM job_queue WHERE repo = 'o/r' AND pr_number = 9",
        )
        .fetch_one(pool(&store))
        .await
        .unwrap();
        assert_eq!(added, 1, "c's follow-up was written");
    }

    #[tokio::test]
    async fn a_claim_sees_the_jobs_added_before_it_in_the_same_batch() {
        let Claimed {
            store,
            jobs,
            fingerprints,
            _dir,
        } = claimed_jobs(1).await;
        let now = now_ms();
        // Nothing is queued: only the follow-up that the completion adds can be claimed.
        let (done, claim) = tokio::join!(
            store.complete(&jobs[0], empty_page(vec![commits_job("o/r", 7)]), now),
            store.claim(ClaimFor::new(&store, OWNER, &fingerprints, Apis::Rest), now),
        );
        assert!(done.unwrap());
        match claim.unwrap() {
            Claim::Work(Work::Rest(job)) => assert_eq!(job.pr_number, Some(7)),
            other => panic!("expected the new job, got {other:?}"),
        }
    }

    /// A batch's token events are written in the order of the rows' keys (fingerprint,
    /// then bucket), as `lock_tokens` takes them: a GraphQL answer on token b, a REST
    /// answer on b and a list mark on a's `core` row, sent in that order, are written
    /// a/core, b/core, b/graphql. In the order sent, a transaction holding b/graphql
    /// and waiting for b/core deadlocked with claims locking every row (seen in the
    /// PostgreSQL server's log during the benchmark).
    #[test]
    fn token_events_are_written_in_the_order_of_the_rows_keys() {
        use crate::github::Bucket;
        let job = |id: i64, token: &str, bucket: Bucket| ClaimedJob {
            id,
            lease: 1,
            repo: "o/r".into(),
            kind: "commits".into(),
            pr_number: Some(id),
            page: 1,
            url: String::new(),
            cursor: None,
            attempts: 1,
            max_attempts: 5,
            endpoints: "[]".into(),
            token: token.into(),
            bucket,
            round: 1,
            etag: None,
            etag_next: None,
            list_since: None,
            list_limit: None,
            list_state: "all".into(),
        };
        let answered = || TokenEvent::Answered(None);
        let request = |job: ClaimedJob, mark: Option<&str>| {
            let mut finished = Finished::new(vec![(job, Outcome::snoozed(0))], answered());
            finished.mark_token = mark.map(|t| (t.to_owned(), answered()));
            Request::finish(finished, None, 0)
        };
        let requests = [
            request(job(1, "bb", Bucket::Graphql), Some("aa")),
            request(job(2, "bb", Bucket::Core), None),
        ];
        let order: Vec<(&str, &str)> = token_writes(&requests)
            .iter()
            .map(|w| (w.token, w.bucket.as_str()))
            .collect();
        assert_eq!(order, [("aa", "core"), ("bb", "core"), ("bb", "graphql")]);
    }

    /// `on_both!(sqlite_test, postgres_test, body)`: `body(location)` as a test on a
    /// SQLite file, and as one on a scratch PostgreSQL database (a line and no test
    /// where no server answers).
    macro_rules! on_both {
        ($sqlite:ident, $postgres:ident, $body:ident) => {
            #[tokio::test]
            async fn $sqlite() {
                let dir = tempfile::tempdir().unwrap();
                $body(&dir.path().join("seedq.db")).await;
            }

            #[cfg(feature = "postgres")]
            #[tokio::test]
            async fn $postgres() {
                let Some((url, _dropped)) = scratch_postgres(stringify!($postgres)).await else {
                    return;
                };
                $body(std::path::Path::new(&url)).await;
            }
        };
    }

    /// A database of this test's own on the PostgreSQL server of the tests
    /// (`SEEDQ_TEST_POSTGRES`), dropped by the returned guard; `None`, and one line
    /// said, when no server answers.
    #[cfg(feature = "postgres")]
    async fn scratch_postgres(test: &str) -> Option<(String, impl Drop)> {
        use sqlx::Connection;
        let server = std::env::var("SEEDQ_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let Ok(mut admin) = sqlx::PgConnection::connect(&server).await else {
            println!("{test} skipped: no PostgreSQL server answers at {server}");
            return None;
        };
        let name = format!("seedq_unit_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap();
        let (root, _) = server.rsplit_once('/').expect("postgres://USER@HOST/DB");
        struct Dropped(String, String);
        impl Drop for Dropped {
            fn drop(&mut self) {
                let (server, name) = (self.0.clone(), self.1.clone());
                // Its own thread and runtime: the test's runtime is shutting down.
                let _ = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    runtime.block_on(async move {
                        let mut admin = sqlx::PgConnection::connect(&server).await?;
                        let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                        sqlx::query(&drop).execute(&mut admin).await.map(|_| ())
                    })
                })
                .join();
            }
        }
        Some((format!("{root}/{name}"), Dropped(server.clone(), name)))
    }

    /// `claimed_jobs` in a scratch PostgreSQL database (its URL, and the guard that
    /// drops it); `None` when no server answers.
    #[cfg(feature = "postgres")]
    async fn claimed_on_postgres(test: &str, prs: i64) -> Option<(String, impl Drop, Claimed)> {
        let (url, dropped) = scratch_postgres(test).await?;
        let dir = tempfile::tempdir().unwrap();
        let claimed = claimed_jobs_at(std::path::Path::new(&url), prs, dir).await;
        Some((url, dropped, claimed))
    }

    #[cfg(feature = "postgres")]
    #[tokio::test]
    async fn on_postgres_a_page_is_written_with_its_rows_and_a_fenced_one_writes_nothing() {
        use sqlx::Connection;
        let test = "on_postgres_a_page_is_written_with_its_rows_and_a_fenced_one_writes_nothing";
        let Some((url, _dropped, Claimed { store, jobs, .. })) = claimed_on_postgres(test, 3).await
        else {
            return;
        };
        let [a, b, c] = &jobs[..] else { unreachable!() };
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        // b's job was rescued and claimed by someone else meanwhile.
        sqlx::query("UPDATE job_queue SET lease = lease + 1 WHERE id = $1")
            .bind(b.id)
            .execute(&mut conn)
            .await
            .unwrap();
        let page = |sha: &str, etag: Option<&str>| Completion {
            rows: Some(Rows::Commits(vec![serde_json::from_value(
                serde_json::json!({"sha": sha, "commit": {"message": "m"}}),
            )
            .unwrap()])),
            etag: etag.map(str::to_owned),
            follow_ups: Vec::new(),
            rate: None,
        };
        let now = now_ms();
        // One at a time: each page's outcome, ETag and rows are one statement.
        assert!(store
            .complete(a, page("a1", Some("\"e-a\"")), now)
            .await
            .unwrap());
        assert!(!store
            .complete(b, page("b1", Some("\"e-b\"")), now)
            .await
            .unwrap());
        assert!(store.complete(c, page("c1", None), now).await.unwrap());
        let states: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, lease FROM job_queue WHERE id = ANY($1) ORDER BY id")
                .bind(vec![a.id, b.id, c.id])
                .fetch_all(&mut conn)
                .await
                .unwrap();
        let states: Vec<&str> = states.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(states, ["done", "running", "done"]);
        let commits: Vec<(i64, String, Option<String>)> =
            sqlx::query_as("SELECT pr_number, sha, message FROM gh_pr_commits ORDER BY pr_number")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        let pr = |job: &ClaimedJob| job.pr_number.unwrap();
        assert_eq!(
            commits,
            [
                (pr(a), "a1".to_owned(), Some("m".to_owned())),
                (pr(c), "c1".to_owned(), Some("m".to_owned()))
            ],
            "the fenced page's row is not written"
        );
        let etags: Vec<(String, String)> =
            sqlx::query_as("SELECT page_key, etag FROM page_etags ORDER BY page_key")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        let key = crate::store::jobs::page_key(&a.repo, &a.kind, a.pr_number, a.page);
        assert_eq!(etags, [(key, "\"e-a\"".to_owned())], "only a's ETag");
        drop(store);
        conn.close().await.unwrap();
    }

    /// Two jobs in flight on one token; the first answered says 100 left: the other is
    /// still in flight (99 is what may be spent), the answered one is not (not 98).
    async fn an_answer_counts_the_others_in_flight_but_not_its_own(location: &std::path::Path) {
        let dir = tempfile::tempdir().unwrap();
        let Claimed { store, jobs, .. } = claimed_jobs_at(location, 2, dir).await;
        let now = now_ms();
        let reset_secs = now / 1000 + 60;
        let answered = answer(100, reset_secs);
        assert!(store.complete(&jobs[0], answered, now).await.unwrap());
        let rows = store.token_rows().await.unwrap();
        let row = &rows[0];
        assert_eq!((row.remaining, row.reset_at), (99, Some(reset_secs * 1000)));
    }

    on_both!(
        on_sqlite_an_answer_counts_the_others_in_flight_but_not_its_own,
        on_postgres_an_answer_counts_the_others_in_flight_but_not_its_own,
        an_answer_counts_the_others_in_flight_but_not_its_own
    );

    /// While a quarter of the limit or more is left, a window's figures are written
    /// once and then at most once a second (`reconciled`); below a quarter, every time.
    async fn figures_are_written_once_a_second_while_a_quarter_is_left(location: &std::path::Path) {
        let dir = tempfile::tempdir().unwrap();
        let Claimed { store, jobs, .. } = claimed_jobs_at(location, 4, dir).await;
        let now = now_ms();
        let reset_secs = now / 1000 + 60;
        let every = crate::store::reconciled::EVERY_MS;
        async fn remaining(store: &Store) -> i64 {
            store.token_rows().await.unwrap()[0].remaining
        }
        // The window's first answer: the three others are in flight.
        assert!(store
            .complete(&jobs[0], answer(4000, reset_secs), now)
            .await
            .unwrap());
        assert_eq!(remaining(&store).await, 3997);
        // Soon after, in the same window: not written.
        assert!(store
            .complete(&jobs[1], answer(3900, reset_secs), now + 10)
            .await
            .unwrap());
        assert_eq!(
            remaining(&store).await,
            3997,
            "written again within a second"
        );
        // A second later: written (one job still in flight).
        assert!(store
            .complete(&jobs[2], answer(3800, reset_secs), now + every)
            .await
            .unwrap());
        assert_eq!(remaining(&store).await, 3799);
        // Under a quarter: written at once, exact with nothing in flight.
        assert!(store
            .complete(&jobs[3], answer(1000, reset_secs), now + every + 10)
            .await
            .unwrap());
        assert_eq!(remaining(&store).await, 1000);
    }

    /// An answer left unwritten is written when `work` ends: the row ends exact.
    async fn the_last_skipped_answer_is_written_at_the_end(location: &std::path::Path) {
        let dir = tempfile::tempdir().unwrap();
        let Claimed { store, jobs, .. } = claimed_jobs_at(location, 2, dir).await;
        let now = now_ms();
        let reset_secs = now / 1000 + 60;
        assert!(store
            .complete(&jobs[0], answer(4000, reset_secs), now)
            .await
            .unwrap());
        assert!(store
            .complete(&jobs[1], answer(3998, reset_secs), now + 10)
            .await
            .unwrap());
        let remaining = || async { store.token_rows().await.unwrap()[0].remaining };
        assert_eq!(
            remaining().await,
            3999,
            "the second answer is not written yet"
        );
        store.write_skipped_figures(now + 20).await.unwrap();
        assert_eq!(remaining().await, 3998, "nothing in flight: exact");
        store.write_skipped_figures(now + 30).await.unwrap();
        assert_eq!(remaining().await, 3998);
    }

    /// b's answer, left unwritten, is done and no longer in flight; a's, sent before
    /// b's and answered after, does not count b's request: what is written for a is
    /// b's figure, the freshest of the window, so the count is never too high.
    #[tokio::test]
    async fn an_older_answer_written_after_a_skipped_one_carries_the_skipped_figure() {
        let Claimed {
            store, jobs, _dir, ..
        } = claimed_jobs(3).await;
        let [x, a, b] = &jobs[..] else { unreachable!() };
        let now = now_ms();
        let reset_secs = now / 1000 + 60;
        let every = crate::store::reconciled::EVERY_MS;
        assert!(store
            .complete(x, answer(4000, reset_secs), now)
            .await
            .unwrap());
        assert_eq!(store.token_rows().await.unwrap()[0].remaining, 3998);
        assert!(store
            .complete(b, answer(3997, reset_secs), now + 10)
            .await
            .unwrap());
        assert!(store
            .complete(a, answer(3998, reset_secs), now + every)
            .await
            .unwrap());
        assert_eq!(store.token_rows().await.unwrap()[0].remaining, 3997);
    }

    /// A refusal written after an answer was left unwritten is newer: writing that
    /// answer later must not give the bucket quota back.
    #[tokio::test]
    async fn a_skipped_answer_does_not_undo_a_later_refusal() {
        let Claimed {
            store, jobs, _dir, ..
        } = claimed_jobs(3).await;
        let now = now_ms();
        let reset_secs = now / 1000 + 60;
        for (job, left, at) in [(&jobs[0], 4000, now), (&jobs[1], 3998, now + 10)] {
            assert!(store
                .complete(job, answer(left, reset_secs), at)
                .await
                .unwrap());
        }
        let refused = TokenEvent::Exhausted {
            reset_at: reset_secs * 1000,
        };
        assert!(store.snooze(&jobs[2], refused, now + 20).await.unwrap());
        store.write_skipped_figures(now + 30).await.unwrap();
        let (remaining, exhausted): (i64, i64) =
            sqlx::query_as("SELECT remaining, exhausted FROM token_buckets WHERE bucket = 'core'")
                .fetch_one(pool(&store))
                .await
                .unwrap();
        assert_eq!((remaining, exhausted), (0, 1), "still refused");
    }

    on_both!(
        on_sqlite_the_last_skipped_answer_is_written_at_the_end,
        on_postgres_the_last_skipped_answer_is_written_at_the_end,
        the_last_skipped_answer_is_written_at_the_end
    );

    on_both!(
        on_sqlite_figures_are_written_once_a_second_while_a_quarter_is_left,
        on_postgres_figures_are_written_once_a_second_while_a_quarter_is_left,
        figures_are_written_once_a_second_while_a_quarter_is_left
    );

    /// A claim that commits while an answer is being reconciled (its statement already
    /// has its snapshot, and waits for the token's row) is in flight: the answer does
    /// not count its request.
    #[cfg(feature = "postgres")]
    #[tokio::test]
    async fn on_postgres_a_claim_racing_an_answer_counts_as_in_flight() {
        use sqlx::Connection;
        let test = "on_postgres_a_claim_racing_an_answer_counts_as_in_flight";
        let Some((url, _dropped, Claimed { store, jobs, .. })) = claimed_on_postgres(test, 3).await
        else {
            return;
        };
        let [a, _b, x] = &jobs[..] else {
            unreachable!()
        };
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query("UPDATE job_queue SET state = 'queued' WHERE id = $1")
            .bind(x.id)
            .execute(&mut conn)
            .await
            .unwrap();
        // Another process claims x: its transaction holds the token's row.
        let mut claim = conn.begin().await.unwrap();
        sqlx::query("UPDATE job_queue SET state = 'running' WHERE id = $1")
            .bind(x.id)
            .execute(&mut *claim)
            .await
            .unwrap();
        sqlx::query(
            "UPDATE token_buckets SET requests = requests + 1, remaining = remaining - 1
             WHERE bucket = 'core'",
        )
        .execute(&mut *claim)
        .await
        .unwrap();
        let now = now_ms();
        let reset_secs = now / 1000 + 60;
        let answered = answer(100, reset_secs);
        let store = std::sync::Arc::new(store);
        let completing = {
            let (store, a) = (store.clone(), a.clone());
            tokio::spawn(async move { store.complete(&a, answered, now).await })
        };
        // The answer's statement takes its snapshot and waits for the row.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        claim.commit().await.unwrap();
        assert!(completing.await.unwrap().unwrap());
        let rows = store.token_rows().await.unwrap();
        // In flight besides a's own: b, and x claimed meanwhile.
        assert_eq!(rows[0].remaining, 98, "b and x are in flight");
        conn.close().await.unwrap();
    }

    /// A claim that finds every ready job held by a concurrent claim (locked, not yet
    /// leased: `SKIP LOCKED` passes over it) looks again soon; its token has quota, so
    /// it is not told to wait for a reset. (It was: at the end of a seed, a process
    /// whose last claim raced another process's slept until the tokens' reset, an
    /// hour, with the queue drained.)
    #[cfg(feature = "postgres")]
    #[tokio::test]
    async fn on_postgres_a_claim_that_finds_the_ready_jobs_held_looks_again_soon() {
        use sqlx::Connection;
        let test = "on_postgres_a_claim_that_finds_the_ready_jobs_held_looks_again_soon";
        let Some((url, _dropped, claimed)) = claimed_on_postgres(test, 2).await else {
            return;
        };
        let Claimed {
            store,
            jobs,
            fingerprints,
            ..
        } = claimed;
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query("UPDATE job_queue SET state = 'queued', lease_owner = NULL WHERE id = $1")
            .bind(jobs[0].id)
            .execute(&mut conn)
            .await
            .unwrap();
        // Another process's claim has locked it and not yet committed.
        let mut other = conn.begin().await.unwrap();
        sqlx::query("SELECT id FROM job_queue WHERE state = 'queued' FOR UPDATE")
            .execute(&mut *other)
            .await
            .unwrap();
        let now = now_ms();
        for apis in [Apis::Rest, Apis::Auto] {
            let claim = ClaimFor::new(&store, OWNER, &fingerprints, apis);
            match store.claim(claim, now).await.unwrap() {
                Claim::Idle {
                    running: 1,
                    next_run_at: Some(at),
                } => assert!(
                    at > now && at - now <= 250,
                    "looks again in {} ms",
                    at - now
                ),
                other => panic!("{apis:?}: expected to look again soon, got {other:?}"),
            }
        }
        other.rollback().await.unwrap();
        let claim = ClaimFor::new(&store, OWNER, &fingerprints, Apis::Rest);
        let Claim::Work(Work::Rest(job)) = store.claim(claim, now).await.unwrap() else {
            panic!("the job is free again");
        };
        assert_eq!(job.id, jobs[0].id);
        conn.close().await.unwrap();
    }
}
