-- seedq schema, version 1.
--
-- Internal tables hold epoch milliseconds and are free to change between versions;
-- the views at the end (pull_requests, pr_commits, ..., jobs, tokens) are the public,
-- stable interface documented in README.md.

-- Repositories the user enqueued, spelled exactly as typed.
CREATE TABLE repos (
    name        TEXT PRIMARY KEY NOT NULL,
    -- Comma-separated per-PR endpoints to fetch (kinds of job_queue).
    endpoints   TEXT NOT NULL,
    enqueued_at INTEGER NOT NULL
);

-- The queue: one job is one HTTP request for one page.
CREATE TABLE job_queue (
    id               INTEGER PRIMARY KEY NOT NULL,
    repo             TEXT NOT NULL REFERENCES repos(name),
    kind             TEXT NOT NULL,
    pr_number        INTEGER,
    page             INTEGER NOT NULL DEFAULT 1,
    -- Absolute URL, or a path below the API root (resolved at fetch time).
    url              TEXT NOT NULL,
    -- repo|kind|pr|page: makes enqueueing idempotent, so replays add nothing.
    dedup_key        TEXT NOT NULL UNIQUE,
    -- Lower runs first: per-PR jobs (0) before list pages (1).
    priority         INTEGER NOT NULL,
    state            TEXT NOT NULL DEFAULT 'queued'
                     CHECK (state IN ('queued', 'running', 'done', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL DEFAULT 6,
    run_at           INTEGER NOT NULL,
    -- Fencing counter, bumped at every claim; writes are guarded by it.
    lease            INTEGER NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    -- Fingerprint of the token the running job was given.
    token            TEXT,
    last_error       TEXT,
    -- Responses answered 304 Not Modified (no quota spent).
    not_modified     INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX job_queue_ready ON job_queue (priority, id) WHERE state = 'queued';
CREATE INDEX job_queue_running ON job_queue (lease_owner) WHERE state = 'running';
CREATE INDEX job_queue_repo ON job_queue (repo, state);

-- One row per token, known by fingerprint; the secret itself is never stored.
CREATE TABLE token_state (
    fingerprint  TEXT PRIMARY KEY NOT NULL,
    label        TEXT NOT NULL,
    quota_limit  INTEGER NOT NULL DEFAULT 5000,
    -- Last known remaining quota, minus local reservations.
    remaining    INTEGER NOT NULL DEFAULT 5000,
    -- Lowest x-ratelimit-remaining seen in the current window: the freshest answer's.
    header_remaining INTEGER,
    -- End of the current window (epoch ms); NULL while unknown.
    reset_at     INTEGER,
    state        TEXT NOT NULL DEFAULT 'ok'
                 CHECK (state IN ('ok', 'exhausted', 'paused', 'invalid')),
    paused_until INTEGER,
    requests     INTEGER NOT NULL DEFAULT 0,
    -- Requests that were answered "rate limit exceeded".
    refused      INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    updated_at   INTEGER NOT NULL
);

-- Live `seedq work` processes; a job whose owner is gone is rescued at once.
CREATE TABLE workers (
    id           TEXT PRIMARY KEY NOT NULL,
    pid          INTEGER NOT NULL,
    host         TEXT NOT NULL,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
);

CREATE TABLE gh_pulls (
    repo          TEXT NOT NULL,
    number        INTEGER NOT NULL,
    title         TEXT,
    state         TEXT,
    author        TEXT,
    created_at    TEXT,
    updated_at    TEXT,
    closed_at     TEXT,
    merged_at     TEXT,
    additions     INTEGER,
    deletions     INTEGER,
    changed_files INTEGER,
    head_sha      TEXT,
    draft         INTEGER,
    base_ref      TEXT,
    head_ref      TEXT,
    PRIMARY KEY (repo, number)
);

CREATE TABLE gh_pr_commits (
    repo        TEXT NOT NULL,
    pr_number   INTEGER NOT NULL,
    sha         TEXT NOT NULL,
    author      TEXT,
    author_name TEXT,
    authored_at TEXT,
    message     TEXT,
    PRIMARY KEY (repo, pr_number, sha)
);

CREATE TABLE gh_pr_reviews (
    repo         TEXT NOT NULL,
    pr_number    INTEGER NOT NULL,
    review_id    INTEGER NOT NULL,
    reviewer     TEXT,
    state        TEXT,
    submitted_at TEXT,
    PRIMARY KEY (repo, pr_number, review_id)
);

CREATE TABLE gh_pr_files (
    repo      TEXT NOT NULL,
    pr_number INTEGER NOT NULL,
    filename  TEXT NOT NULL,
    status    TEXT,
    additions INTEGER,
    deletions INTEGER,
    changes   INTEGER,
    PRIMARY KEY (repo, pr_number, filename)
);

CREATE TABLE gh_check_runs (
    repo         TEXT NOT NULL,
    pr_number    INTEGER NOT NULL,
    head_sha     TEXT NOT NULL,
    check_run_id INTEGER NOT NULL,
    name         TEXT,
    status       TEXT,
    conclusion   TEXT,
    started_at   TEXT,
    completed_at TEXT,
    PRIMARY KEY (repo, pr_number, check_run_id)
);

CREATE TABLE gh_pr_comments (
    repo       TEXT NOT NULL,
    pr_number  INTEGER NOT NULL,
    -- 'review' (on the diff) or 'issue' (on the conversation).
    kind       TEXT NOT NULL CHECK (kind IN ('review', 'issue')),
    comment_id INTEGER NOT NULL,
    author     TEXT,
    created_at TEXT,
    body       TEXT,
    PRIMARY KEY (repo, kind, comment_id)
);

-- Public views: stable names and columns.
CREATE VIEW pull_requests AS
SELECT repo, number, title, state, author, created_at, updated_at, closed_at, merged_at,
       additions, deletions, changed_files, head_sha, draft, base_ref, head_ref
FROM gh_pulls;

CREATE VIEW pr_commits AS
SELECT repo, pr_number, sha, author, author_name, authored_at, message FROM gh_pr_commits;

CREATE VIEW pr_reviews AS
SELECT repo, pr_number, review_id, reviewer, state, submitted_at FROM gh_pr_reviews;

CREATE VIEW pr_files AS
SELECT repo, pr_number, filename, status, additions, deletions, changes FROM gh_pr_files;

CREATE VIEW pr_check_runs AS
SELECT repo, pr_number, head_sha, check_run_id, name, status, conclusion, started_at, completed_at
FROM gh_check_runs;

CREATE VIEW pr_review_comments AS
SELECT repo, pr_number, comment_id, author, created_at, body FROM gh_pr_comments WHERE kind = 'review';

CREATE VIEW pr_issue_comments AS
SELECT repo, pr_number, comment_id, author, created_at, body FROM gh_pr_comments WHERE kind = 'issue';

CREATE VIEW jobs AS
SELECT id, repo, kind, pr_number, page, state, attempts, last_error, not_modified,
       strftime('%Y-%m-%dT%H:%M:%fZ', run_at / 1000.0, 'unixepoch') AS run_at,
       strftime('%Y-%m-%dT%H:%M:%fZ', updated_at / 1000.0, 'unixepoch') AS updated_at
FROM job_queue;

CREATE VIEW tokens AS
SELECT label, remaining, quota_limit, 
       strftime('%Y-%m-%dT%H:%M:%SZ', reset_at / 1000.0, 'unixepoch') AS reset_at,
       state,
       strftime('%Y-%m-%dT%H:%M:%SZ', paused_until / 1000.0, 'unixepoch') AS paused_until,
       requests, refused, last_error
FROM token_state;
