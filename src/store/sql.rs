//! The store's statements: one method per SQL statement, implemented once per backend
//! (`sqlite/`, `postgres/`), each compile-time checked against its own schema. The
//! store's logic (`claim`, `finish`, the verbs on `Store`) is written once over this
//! trait, so a behaviour exists once and every backend runs it.
//!
//! A method runs on whatever connection it is given: inside the caller's write
//! transaction for writes, on a pooled connection for reads. What a method must do
//! under concurrency beyond SQLite's one writer (PostgreSQL: several processes write at
//! once) is said on the method; SQLite meets it trivially under `BEGIN IMMEDIATE`.

use super::jobs::Outcome;
use super::Result;
use crate::github::Bucket;
use std::future::Future;

/// The first ready job, with its repository's settings and its page's ETag.
#[derive(Debug)]
pub(crate) struct ReadyJob {
    pub id: i64,
    pub repo: String,
    pub kind: String,
    pub pr_number: Option<i64>,
    pub page: i64,
    pub url: String,
    pub cursor: Option<String>,
    pub rest_only: bool,
    pub attempts: i64,
    pub max_attempts: i64,
    pub round: i64,
    pub endpoints: String,
    pub round_since: Option<String>,
    pub pr_limit: Option<i64>,
    pub pr_state: String,
    pub gql_batch: Option<i64>,
    /// The repository has no refresh list ETag yet (see `Batch::mark`).
    pub unmarked: bool,
    pub etag: Option<String>,
    pub etag_token: Option<String>,
    pub etag_next: Option<String>,
}

/// Which buckets may serve the next job: `graphql` any job but a REST-only one,
/// `rest` REST-only jobs, and every job with `rest_any`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Servable {
    pub graphql: bool,
    pub rest: bool,
    pub rest_any: bool,
}

impl Servable {
    /// Whether a ready job, REST-only or not, is one `next_ready` returns.
    pub fn serves(self, rest_only: bool) -> bool {
        match rest_only {
            true => self.rest,
            false => self.graphql || (self.rest && self.rest_any),
        }
    }
}

/// The queue when nothing could be claimed.
#[derive(Debug)]
pub(crate) struct QueueState {
    pub running: i64,
    pub next_run_at: Option<i64>,
    /// Whether the first ready job (if any) is REST-only.
    pub first_rest_only: Option<bool>,
}

/// A ready job that may join a GraphQL batch.
#[derive(Debug)]
pub(crate) struct Candidate {
    pub id: i64,
    pub kind: String,
    pub page: i64,
    /// Its PR's `changed_files`, when known.
    pub changed_files: Option<i64>,
}

/// A job of a batch as its lease left it.
#[derive(Debug)]
pub(crate) struct Leased {
    pub id: i64,
    pub lease: i64,
    pub kind: String,
    pub pr_number: Option<i64>,
    pub page: i64,
    pub url: String,
    pub cursor: Option<String>,
    pub attempts: i64,
    pub max_attempts: i64,
    pub round: i64,
}

/// A lease to set: who holds it, until when, on which token and bucket.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lease<'a> {
    pub owner: &'a str,
    pub expires_at: i64,
    pub token: &'a str,
    pub now: i64,
}

/// A repository's settings and round, as `enqueue` reads them.
#[derive(Debug)]
pub(crate) struct RepoRound {
    pub round: i64,
    pub endpoints: String,
    pub since: Option<String>,
    pub pr_state: String,
    pub pr_limit: Option<i64>,
    pub high_water: Option<String>,
    pub round_high_water: Option<String>,
}

/// A repository's settings for a new round, as `enqueue` writes them.
#[derive(Debug)]
pub(crate) struct NewRound<'a> {
    pub repo: &'a str,
    pub endpoints: &'a str,
    pub now: i64,
    pub round: i64,
    pub since: Option<&'a str>,
    pub pr_state: &'a str,
    pub pr_limit: Option<i64>,
    pub round_since: Option<&'a str>,
    pub high_water: Option<&'a str>,
    /// Keep the list ETag of the last round (nothing changed and nothing failed).
    pub keep_list_etag: bool,
    /// The repository's new priority (`None`: keep it; 0 for a new one).
    pub priority: Option<i64>,
}

/// What a repository's GraphQL queries taught so far.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LearnedBatch {
    pub batch: Option<i64>,
    pub streak: i64,
    pub ceiling: Option<i64>,
}

/// A PR's columns, as one upsert writes them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PullValues<'a> {
    pub repo: &'a str,
    pub number: i64,
    pub title: Option<&'a str>,
    pub state: Option<&'a str>,
    pub author: Option<&'a str>,
    pub created_at: Option<&'a str>,
    pub updated_at: Option<&'a str>,
    pub closed_at: Option<&'a str>,
    pub merged_at: Option<&'a str>,
    pub additions: Option<i64>,
    pub deletions: Option<i64>,
    pub changed_files: Option<i64>,
    pub head_sha: Option<&'a str>,
    pub draft: Option<bool>,
    pub base_ref: Option<&'a str>,
    pub head_ref: Option<&'a str>,
    /// Whether the line counts are known (a REST list item has none: keep the stored).
    pub with_counts: bool,
}

/// The child-row tables of a PR, one per per-PR list endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChildRows {
    Commits,
    Reviews,
    Files,
    CheckRuns,
    ReviewComments,
    IssueComments,
}

impl ChildRows {
    /// `gh_pr_comments.kind` of a comments endpoint.
    pub fn comment_kind(self) -> &'static str {
        if self == ChildRows::ReviewComments {
            "review"
        } else {
            "issue"
        }
    }
}

/// One page of a PR's child rows, in a round.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChildPage<'a> {
    pub rows: ChildRows,
    pub repo: &'a str,
    pub pr: i64,
    pub page: i64,
    pub round: i64,
}

/// A bucket's figures from an answer's rate-limit headers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reported {
    pub remaining: i64,
    pub reset_at: i64,
    pub limit: Option<i64>,
}

/// A worker row.
#[derive(Debug)]
pub(crate) struct WorkerBeat {
    pub id: String,
    pub pid: i64,
    pub host: String,
    pub heartbeat_at: i64,
}

/// A token's row, for `status` and `tokens`: its REST bucket's figures (as before
/// GraphQL) and its GraphQL bucket's.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TokenRow {
    pub fingerprint: String,
    pub label: String,
    pub quota_limit: i64,
    pub remaining: i64,
    pub reset_at: Option<i64>,
    pub state: String,
    pub paused_until: Option<i64>,
    pub requests: i64,
    pub refused: i64,
    pub last_error: Option<String>,
    pub graphql: BucketRow,
    /// Requests it may have in flight, as the last `work` learned (adaptive
    /// concurrency); `None` before any `work` ran with it.
    pub concurrency: Option<i64>,
}

/// One bucket of a token.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct BucketRow {
    pub quota_limit: i64,
    pub remaining: i64,
    pub reset_at: Option<i64>,
    /// Requests (GraphQL: queries) sent.
    pub requests: i64,
    /// Units reserved for them (GraphQL: points).
    pub spent: i64,
    pub refused: i64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct FailedJob {
    pub id: i64,
    pub repo: String,
    pub kind: String,
    pub pr_number: Option<i64>,
    pub page: i64,
    pub attempts: i64,
    pub last_error: Option<String>,
}

/// A live `seedq work` process, from its row in `workers`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WorkerRow {
    pub pid: i64,
    pub host: String,
    pub started_at: i64,
    pub heartbeat_at: i64,
    /// Its `--reserve`.
    pub reserve: i64,
}

/// A repository as `status` lists it.
#[derive(Debug)]
pub(crate) struct RepoRow {
    pub name: String,
    pub endpoints: String,
    pub gql_batch: Option<i64>,
    pub gql_queries: i64,
    pub gql_timeouts: i64,
}

/// A repository's jobs counted by kind and state (`kind` empty when counted by
/// state only).
#[derive(Debug)]
pub(crate) struct JobCount {
    pub repo: String,
    pub kind: String,
    pub state: String,
    pub jobs: i64,
    pub not_modified: i64,
}

/// What `status` knows of a repository's PRs.
#[derive(Debug)]
pub(crate) struct PrCounts {
    pub repo: String,
    pub discovered: i64,
    pub lowest: Option<i64>,
    pub highest: Option<i64>,
}

/// Every statement of a backend: one trait per table family, each implemented in the
/// backend's file of that name. `fingerprints` arguments are JSON arrays of token
/// fingerprints; `items` arguments JSON arrays of rows (see `jobs::json_array`).
pub(crate) trait Sql: QueueSql + TokenSql + RepoSql + DataSql + WorkerSql + ReadSql {}

impl<T: QueueSql + TokenSql + RepoSql + DataSql + WorkerSql + ReadSql> Sql for T {}

/// A per-PR page's ETag as its completion stores it (`QueueSql::finish_page`), with the
/// fingerprint of the token that got it (ETags are tied to a token) and the next page
/// it led to; a page without an ETag forgets the old one.
#[derive(Debug)]
pub(crate) struct PageEtag<'a> {
    pub key: String,
    pub etag: Option<&'a str>,
    pub token: &'a str,
    pub next_url: Option<&'a str>,
}

/// A fetched per-PR page as its completion stores it (`QueueSql::finish_page`): its
/// ETag and its rows.
#[derive(Debug)]
pub(crate) struct FetchedPage<'a> {
    pub etag: PageEtag<'a>,
    pub rows: PageRows<'a>,
}

/// A per-PR page's rows (`data::page_rows`).
#[derive(Debug)]
pub(crate) enum PageRows<'a> {
    /// Child rows: `items` is a JSON array of arrays (see `DataSql::upsert_children`),
    /// `None` for a page without any.
    Children(ChildPage<'a>, Option<String>),
    /// A PR's detail.
    Pull(PullValues<'a>),
}

/// The queue: outcomes, new jobs, rescues and claims.
pub(crate) trait QueueSql: Send {
    /// Writes a running job's outcome (its state, not its rows), guarded by its lease;
    /// rows changed (0: fenced).
    fn finish_job(
        &mut self,
        id: i64,
        lease: i64,
        outcome: &Outcome,
        now: i64,
    ) -> impl Future<Output = Result<u64>> + Send;
    /// A running job done with a fetched per-PR page (not a 304): `finish_job`, and,
    /// when it was written, the page's ETag remembered and its rows upserted
    /// (`FetchedPage`); one statement where the backend can. Rows changed (0: fenced,
    /// and nothing written).
    fn finish_page(
        &mut self,
        id: i64,
        lease: i64,
        page: &FetchedPage<'_>,
        now: i64,
    ) -> impl Future<Output = Result<u64>> + Send;
    /// Adds the jobs of `items` (see `finish::insert_jobs`) in order, skipping dedup keys
    /// already there.
    fn insert_jobs(&mut self, items: &str, now: i64) -> impl Future<Output = Result<()>> + Send;
    /// Puts back running jobs whose worker is gone or whose lease ran out (failing
    /// those out of attempts).
    fn rescue_abandoned(&mut self, now: i64) -> impl Future<Output = Result<()>> + Send;
    /// Requeues failed jobs (all, or of one repository or id); how many.
    fn retry_failed(
        &mut self,
        repo: Option<&str>,
        id: Option<i64>,
        now: i64,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// The first ready job `servable` allows (per-PR jobs first, then by age), locked
    /// for this transaction: no concurrent transaction gets it (PostgreSQL: `FOR UPDATE
    /// SKIP LOCKED`).
    /// Jobs of the repositories in `exclude` (a JSON array of names) are passed over.
    fn next_ready(
        &mut self,
        servable: Servable,
        exclude: &str,
        now: i64,
    ) -> impl Future<Output = Result<Option<ReadyJob>>> + Send;
    /// Fails every queued job of `repo` with `error`; how many.
    fn fail_queued(
        &mut self,
        repo: &str,
        error: &str,
        now: i64,
    ) -> impl Future<Output = Result<u64>> + Send;
    /// Deletes a repository's jobs, ETags and access records, and its row of `repos`;
    /// with `data`, its rows in the data tables too. What was deleted: (jobs, rows).
    fn remove_repo(
        &mut self,
        repo: &str,
        data: bool,
    ) -> impl Future<Output = Result<(u64, u64)>> + Send;
    /// Running jobs, the earliest `run_at` queued, and whether the first ready job is
    /// REST-only.
    fn queue_state(&mut self, now: i64) -> impl Future<Output = Result<QueueState>> + Send;
    /// Ready non-list jobs of `repo` that GraphQL may fetch, in queue order, at most
    /// `limit`, locked as `next_ready` locks.
    fn batch_candidates(
        &mut self,
        repo: &str,
        limit: i64,
        now: i64,
    ) -> impl Future<Output = Result<Vec<Candidate>>> + Send;
    /// Leases one job on the `core` bucket; its new fencing counter.
    fn lease_rest(&mut self, id: i64, lease: Lease<'_>)
        -> impl Future<Output = Result<i64>> + Send;
    /// Leases the jobs `ids` (a JSON array) on the `graphql` bucket, the query's
    /// `points` held by `first`.
    fn lease_batch(
        &mut self,
        ids: &str,
        first: i64,
        points: i64,
        lease: Lease<'_>,
    ) -> impl Future<Output = Result<Vec<Leased>>> + Send;
}

/// The token table and its buckets.
pub(crate) trait TokenSql: Send {
    /// Locks every token bucket's row, always in the same order, until the transaction
    /// ends. A group commit touches several tokens in whatever order its requests came
    /// in; without this, two processes could each hold the row the other waits for
    /// (PostgreSQL breaks such a deadlock only after a second). SQLite's write lock,
    /// taken at `BEGIN IMMEDIATE`, already covers every row: nothing to do there.
    fn lock_tokens(&mut self) -> impl Future<Output = Result<()>> + Send;
    /// Adds a token's row and both buckets if missing; an invalid token gets another
    /// chance.
    fn register_token(
        &mut self,
        fingerprint: &str,
        label: &str,
        now: i64,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Takes `units` (one request, or a query's points) off `bucket` of the usable token
    /// with the most effective quota there, before the request is sent, and returns that
    /// token. `preferred` (the token an ETag is tied to: its 304s are free) goes first
    /// while it has quota; ties go to the token that sent fewer requests on the bucket.
    /// `None` when no token has `units` left, even after another transaction took some
    /// meanwhile. Choosing and reserving are one statement: each statement is a round
    /// trip while the write lock (SQLite) or the bucket's row lock (PostgreSQL) is held.
    /// Tokens known not to see `repo` (`repo_access`) are passed over, and so are
    /// tokens that would go below `reserve` remaining.
    #[allow(clippy::too_many_arguments)]
    fn take(
        &mut self,
        fingerprints: &str,
        bucket: Bucket,
        units: i64,
        preferred: Option<&str>,
        repo: &str,
        reserve: i64,
        now: i64,
    ) -> impl Future<Output = Result<Option<String>>> + Send;
    /// Whether some usable token has quota above `reserve` now: (REST, GraphQL).
    fn usable(
        &mut self,
        fingerprints: &str,
        reserve: i64,
        now: i64,
    ) -> impl Future<Output = Result<(bool, bool)>> + Send;
    /// Valid tokens' buckets among `buckets` (a JSON array of names), and the earliest
    /// time one is usable again.
    fn earliest_available(
        &mut self,
        fingerprints: &str,
        buckets: &str,
        now: i64,
    ) -> impl Future<Output = Result<(i64, Option<i64>)>> + Send;
    /// Records a refusal for quota on a bucket, until `reset_at`.
    fn exhaust(
        &mut self,
        fingerprint: &str,
        bucket: Bucket,
        reset_at: i64,
        now: i64,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Records the requests a token may have in flight, as a `work` process learned.
    fn set_concurrency(
        &mut self,
        fingerprint: &str,
        concurrency: i64,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Pauses a token (both APIs) until `until` (a secondary limit).
    fn pause(
        &mut self,
        fingerprint: &str,
        until: i64,
        now: i64,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Marks a token invalid (401).
    fn invalidate(
        &mut self,
        fingerprint: &str,
        now: i64,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Reconciles a bucket with an answer's figures (see `finish::reconcile`); `own`:
    /// the answered request's jobs, `[id, lease]` pairs in a JSON array, not in flight.
    fn reconcile(
        &mut self,
        fingerprint: &str,
        bucket: Bucket,
        reported: Reported,
        own: &str,
        now: i64,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Every token with both buckets, most REST quota first.
    fn token_rows(&mut self) -> impl Future<Output = Result<Vec<TokenRow>>> + Send;
}

/// Repositories: rounds, list marks, learned batch sizes; and what API servers serve.
pub(crate) trait RepoSql: Send {
    /// A repository's round and settings, locked for this transaction.
    fn repo_round(&mut self, repo: &str) -> impl Future<Output = Result<Option<RepoRound>>> + Send;
    /// Jobs of a round still queued or running, and failed.
    fn round_jobs(
        &mut self,
        repo: &str,
        round: i64,
    ) -> impl Future<Output = Result<(i64, i64)>> + Send;
    /// Writes a repository's settings for its new round.
    fn start_round(&mut self, round: NewRound<'_>) -> impl Future<Output = Result<()>> + Send;
    /// Raises the round's high-water mark to `newest`.
    fn raise_high_water(
        &mut self,
        repo: &str,
        round: i64,
        newest: Option<&str>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Stores the list ETag a refresh starts with (all `None`: forgets it).
    fn set_list_etag(
        &mut self,
        repo: &str,
        round: i64,
        etag: Option<&str>,
        token: Option<&str>,
        url: Option<&str>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// What GraphQL taught about a repository's batch size, locked for this transaction.
    fn learned_batch(
        &mut self,
        repo: &str,
    ) -> impl Future<Output = Result<Option<LearnedBatch>>> + Send;
    /// Stores a batch size learned, counting one query (and a timeout).
    fn set_learned_batch(
        &mut self,
        repo: &str,
        learned: LearnedBatch,
        timed_out: bool,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Records whether an API server serves GraphQL (`reason`: why not).
    fn set_graphql(
        &mut self,
        api_url: &str,
        available: bool,
        reason: Option<&str>,
        now: i64,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Servers known not to serve GraphQL: (API URL, reason, checked at).
    fn graphql_unavailable(
        &mut self,
    ) -> impl Future<Output = Result<Vec<(String, String, i64)>>> + Send;
    /// Sets a repository's priority, and its jobs' place in the queue with it.
    fn set_priority(
        &mut self,
        repo: &str,
        priority: i64,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Whether `token` is known to see `repo` (`None`: not known either way).
    fn access(
        &mut self,
        repo: &str,
        token: &str,
    ) -> impl Future<Output = Result<Option<bool>>> + Send;
    /// Records whether `token` sees `repo` (and the refusal, if not).
    fn record_access(
        &mut self,
        repo: &str,
        token: &str,
        sees: bool,
        error: Option<&str>,
        now: i64,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Of `fingerprints` (a JSON array): the valid tokens, and those of them not known
    /// to be refused by `repo`.
    fn may_see(
        &mut self,
        repo: &str,
        fingerprints: &str,
    ) -> impl Future<Output = Result<(i64, i64)>> + Send;
    /// Stores a listing's filters (JSON) on its row.
    fn set_listing(&mut self, name: &str, json: &str) -> impl Future<Output = Result<()>> + Send;
    /// A listing's filters (JSON) and priority.
    fn listing_of(
        &mut self,
        name: &str,
    ) -> impl Future<Output = Result<Option<(String, i64)>>> + Send;
    /// Forgets which tokens were refused `repo` (`None`: every repository).
    fn forget_refusals(&mut self, repo: Option<&str>) -> impl Future<Output = Result<()>> + Send;
    /// Which of `names` (a JSON array) are repositories of the seed.
    fn known_repos(&mut self, names: &str) -> impl Future<Output = Result<Vec<String>>> + Send;
}

/// The data tables.
pub(crate) trait DataSql: Send {
    /// Upserts a page of child rows (`items`: a JSON array of arrays, in the order
    /// `data::store_rows` builds them).
    fn upsert_children(
        &mut self,
        page: ChildPage<'_>,
        items: &str,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Whether a PR is stored.
    fn pull_known(&mut self, repo: &str, number: i64) -> impl Future<Output = Result<bool>> + Send;
    fn upsert_pull(&mut self, pull: PullValues<'_>) -> impl Future<Output = Result<()>> + Send;
    /// A 304 for a page: the rows it held last time are still current; marks them seen
    /// in its round.
    fn mark_seen(&mut self, page: ChildPage<'_>) -> impl Future<Output = Result<()>> + Send;
    /// After the last page of a PR's endpoint in a round: deletes that PR's rows of the
    /// endpoint the round did not see (gone upstream). Every earlier page of the round
    /// is done by then: a page is queued only when the one before it completes.
    fn sweep_unseen(&mut self, page: ChildPage<'_>) -> impl Future<Output = Result<()>> + Send;
}

/// Live `seedq work` processes.
pub(crate) trait WorkerSql: Send {
    /// Adds a worker row; with `if_missing`, only when there is none (whether it did).
    /// `reserve` is its `--reserve`, for `status`.
    fn add_worker(
        &mut self,
        id: &str,
        pid: i64,
        host: &str,
        reserve: i64,
        now: i64,
        if_missing: bool,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Renews a worker's heartbeat and its running jobs' leases.
    fn beat(
        &mut self,
        id: &str,
        now: i64,
        lease_expires_at: i64,
    ) -> impl Future<Output = Result<()>> + Send;
    fn worker_beats(&mut self) -> impl Future<Output = Result<Vec<WorkerBeat>>> + Send;
    fn delete_worker(&mut self, id: &str) -> impl Future<Output = Result<()>> + Send;
}

/// Read-only queries for `status`, the live display and the summary.
pub(crate) trait ReadSql: Send {
    /// Repositories in queue order: a higher priority first, then as enqueued.
    fn repo_rows(&mut self) -> impl Future<Output = Result<Vec<RepoRow>>> + Send;
    /// What each token was found to see: (repository, token label, sees).
    fn access_rows(&mut self) -> impl Future<Output = Result<Vec<(String, String, bool)>>> + Send;
    /// Every repository's jobs by kind and state (`not_modified` 0): one pass over an
    /// index.
    fn job_counts(&mut self) -> impl Future<Output = Result<Vec<JobCount>>> + Send;
    /// Every repository's done pages answered 304, by kind (`jobs` and `not_modified`
    /// both count them).
    fn not_modified_counts(&mut self) -> impl Future<Output = Result<Vec<JobCount>>> + Send;
    /// Every repository's listed PRs (a repository with none has no row).
    fn pr_counts(&mut self) -> impl Future<Output = Result<Vec<PrCounts>>> + Send;
    /// Every repository's listed PRs with a job not done: (repository, PRs).
    fn incomplete_prs(&mut self) -> impl Future<Output = Result<Vec<(String, i64)>>> + Send;
    fn repo_names(&mut self) -> impl Future<Output = Result<Vec<String>>> + Send;
    /// Failed jobs, newest first.
    fn failed_jobs(&mut self, limit: i64) -> impl Future<Output = Result<Vec<FailedJob>>> + Send;
    fn failed_count(&mut self) -> impl Future<Output = Result<i64>> + Send;
    /// Jobs done since `since` and the earliest of their times.
    fn done_since(&mut self, since: i64)
        -> impl Future<Output = Result<(i64, Option<i64>)>> + Send;
    fn worker_rows(&mut self) -> impl Future<Output = Result<Vec<WorkerRow>>> + Send;
}

/// A table as `copy-to` moves it: its name and the columns it is ordered by (its
/// primary key), in the order the tables are filled (foreign keys first).
pub(crate) struct CopiedTable {
    pub name: &'static str,
    pub key: &'static str,
}

/// Every table of a seed that `copy-to` moves. `workers` stays: its rows are live
/// processes of the source.
pub(crate) const COPIED_TABLES: &[CopiedTable] = &[
    CopiedTable {
        name: "repos",
        key: "name",
    },
    CopiedTable {
        name: "token_state",
        key: "fingerprint",
    },
    CopiedTable {
        name: "token_buckets",
        key: "fingerprint, bucket",
    },
    CopiedTable {
        name: "api_servers",
        key: "api_url",
    },
    CopiedTable {
        name: "job_queue",
        key: "id",
    },
    CopiedTable {
        name: "page_etags",
        key: "page_key",
    },
    CopiedTable {
        name: "repo_access",
        key: "repo, token",
    },
    CopiedTable {
        name: "gh_pulls",
        key: "repo, number",
    },
    CopiedTable {
        name: "gh_pr_commits",
        key: "repo, pr_number, sha",
    },
    CopiedTable {
        name: "gh_pr_reviews",
        key: "repo, pr_number, review_id",
    },
    CopiedTable {
        name: "gh_pr_files",
        key: "repo, pr_number, filename",
    },
    CopiedTable {
        name: "gh_check_runs",
        key: "repo, pr_number, check_run_id",
    },
    CopiedTable {
        name: "gh_pr_comments",
        key: "repo, kind, comment_id",
    },
];

/// `copy-to`'s statements: whole tables as JSON, one page of rows at a time. Their
/// text is built from [`COPIED_TABLES`] and the columns the schema lists, never from
/// input, so they are the one place where queries are not checked at compile time:
/// both schemas hold the same tables and columns (`tests/postgres.rs` checks it).
pub(crate) trait CopySql: Send {
    /// A table's columns, in order.
    fn columns(&mut self, table: &str) -> impl Future<Output = Result<Vec<String>>> + Send;
    /// Starts a read-only snapshot: the pages read next are of one state of the database.
    fn begin_snapshot(&mut self) -> impl Future<Output = Result<()>> + Send;
    fn end_snapshot(&mut self) -> impl Future<Output = Result<()>> + Send;
    /// A page of a table's rows, each a JSON object of `columns`, in `table.key` order.
    fn rows_json(
        &mut self,
        table: &CopiedTable,
        columns: &[String],
        limit: i64,
        offset: i64,
    ) -> impl Future<Output = Result<Vec<String>>> + Send;
    /// Inserts rows (a JSON array of objects of `columns`); how many.
    fn insert_json(
        &mut self,
        table: &CopiedTable,
        columns: &[String],
        rows: &str,
    ) -> impl Future<Output = Result<u64>> + Send;
    /// What the database needs after rows were inserted with their ids (PostgreSQL:
    /// the job id sequence moves past them).
    fn after_copy(&mut self) -> impl Future<Output = Result<()>> + Send;
}
