//! The queue's values: a claimed job, a job to add, and how a request's jobs end. Every
//! layer of the store speaks them; they depend on nothing in it.

use crate::github::pages::Rows;
use crate::github::{Bucket, Kind, RateLimit};

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

/// Rows as one JSON array, for one `INSERT … SELECT` over the array's elements (one
/// statement for a page's rows or jobs instead of one per row); `None` when there are
/// none.
pub(crate) fn json_array(items: impl Iterator<Item = serde_json::Value>) -> Option<String> {
    let items: Vec<serde_json::Value> = items.collect();
    (!items.is_empty()).then(|| serde_json::Value::Array(items).to_string())
}
