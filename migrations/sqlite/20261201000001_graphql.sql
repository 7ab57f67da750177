-- seedq schema, version 5: GraphQL beside REST.

-- A token has one rate-limit bucket per API: 'core' (REST requests) and 'graphql'
-- (GraphQL points), each with its own quota and window. Whether a token is usable at
-- all (invalid, paused by a secondary limit, which GitHub applies to both APIs) stays
-- on token_state.
CREATE TABLE token_buckets (
    fingerprint      TEXT NOT NULL REFERENCES token_state(fingerprint),
    bucket           TEXT NOT NULL CHECK (bucket IN ('core', 'graphql')),
    quota_limit      INTEGER NOT NULL DEFAULT 5000,
    -- Last known remaining quota, minus local reservations.
    remaining        INTEGER NOT NULL DEFAULT 5000,
    -- Lowest remaining count an answer reported in the current window.
    header_remaining INTEGER,
    -- End of the current window (epoch ms); NULL while unknown.
    reset_at         INTEGER,
    -- Refused for quota in the current window (cleared by a later answer or a reset).
    exhausted        INTEGER NOT NULL DEFAULT 0,
    -- Requests sent on this bucket (GraphQL: queries).
    requests         INTEGER NOT NULL DEFAULT 0,
    -- Units reserved for them: requests, or GraphQL points as computed before sending.
    spent            INTEGER NOT NULL DEFAULT 0,
    -- Requests answered "rate limit exceeded" (GraphQL: RATE_LIMITED).
    refused          INTEGER NOT NULL DEFAULT 0,
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (fingerprint, bucket)
);

INSERT INTO token_buckets (fingerprint, bucket, quota_limit, remaining, header_remaining,
                           reset_at, exhausted, requests, spent, refused, updated_at)
SELECT fingerprint, 'core', quota_limit, remaining, header_remaining, reset_at,
       state = 'exhausted', requests, requests, refused, updated_at
FROM token_state;
INSERT INTO token_buckets (fingerprint, bucket, updated_at)
SELECT fingerprint, 'graphql', updated_at FROM token_state;

DROP VIEW tokens;
ALTER TABLE token_state DROP COLUMN quota_limit;
ALTER TABLE token_state DROP COLUMN remaining;
ALTER TABLE token_state DROP COLUMN header_remaining;
ALTER TABLE token_state DROP COLUMN reset_at;
ALTER TABLE token_state DROP COLUMN requests;
ALTER TABLE token_state DROP COLUMN refused;
-- 'exhausted' now lives on the bucket; a pause shows while paused_until is ahead.
UPDATE token_state SET state = 'ok' WHERE state IN ('exhausted', 'paused');

-- Public view: the REST bucket's columns as before, then the GraphQL bucket's.
CREATE VIEW tokens AS
SELECT t.label, c.remaining, c.quota_limit,
       strftime('%Y-%m-%dT%H:%M:%SZ', c.reset_at / 1000.0, 'unixepoch') AS reset_at,
       CASE WHEN t.state = 'invalid' THEN 'invalid'
            WHEN t.paused_until > CAST(strftime('%s', 'now') AS INTEGER) * 1000 THEN 'paused'
            WHEN c.remaining <= 0 AND c.reset_at > CAST(strftime('%s', 'now') AS INTEGER) * 1000 THEN 'exhausted'
            ELSE 'ok' END AS state,
       strftime('%Y-%m-%dT%H:%M:%SZ', t.paused_until / 1000.0, 'unixepoch') AS paused_until,
       c.requests, c.refused, t.last_error,
       g.remaining AS graphql_remaining, g.quota_limit AS graphql_limit,
       strftime('%Y-%m-%dT%H:%M:%SZ', g.reset_at / 1000.0, 'unixepoch') AS graphql_reset_at,
       CASE WHEN g.remaining <= 0 AND g.reset_at > CAST(strftime('%s', 'now') AS INTEGER) * 1000
            THEN 'exhausted' ELSE 'ok' END AS graphql_state,
       g.requests AS graphql_queries, g.spent AS graphql_points, g.refused AS graphql_refused
FROM token_state t
JOIN token_buckets c ON c.fingerprint = t.fingerprint AND c.bucket = 'core'
JOIN token_buckets g ON g.fingerprint = t.fingerprint AND g.bucket = 'graphql';

-- A job is one page, fetched by either API. `url` is its REST form; a page that a
-- GraphQL answer led to also has the connection's `cursor` (GraphQL's `after`).
ALTER TABLE job_queue ADD COLUMN cursor TEXT;
-- 1: only REST can fetch it (review comments, a REST page without a cursor, or files
-- of a PR whose GraphQL query timed out even alone).
ALTER TABLE job_queue ADD COLUMN rest_only INTEGER NOT NULL DEFAULT 0;
-- While running: the bucket of `token` it was claimed on.
ALTER TABLE job_queue ADD COLUMN bucket TEXT;
-- While running: the GraphQL points reserved for its query (on one job of the batch).
ALTER TABLE job_queue ADD COLUMN points INTEGER NOT NULL DEFAULT 0;
UPDATE job_queue SET rest_only = 1
WHERE kind = 'review_comments' OR (page > 1 AND cursor IS NULL);
UPDATE job_queue SET bucket = 'core' WHERE state = 'running';

-- GraphQL batches: how many PRs one query of this repository asks for, learned from
-- timeouts (halved on each) and successes (grown back after a run of them).
ALTER TABLE repos ADD COLUMN gql_batch INTEGER;
-- Queries answered in a row since the size last changed.
ALTER TABLE repos ADD COLUMN gql_streak INTEGER NOT NULL DEFAULT 0;
-- The smallest size that timed out (growth slows down below it).
ALTER TABLE repos ADD COLUMN gql_ceiling INTEGER;
ALTER TABLE repos ADD COLUMN gql_queries INTEGER NOT NULL DEFAULT 0;
ALTER TABLE repos ADD COLUMN gql_timeouts INTEGER NOT NULL DEFAULT 0;

-- The ETag of the list page a refresh starts with (most recently updated first), from
-- the start of the last round that read it: a refresh asks for it conditionally, and a
-- 304 means no PR changed since. Tied, like every ETag, to the token that got it. It is
-- dropped when a round fails or settings change (the next round must list further).
ALTER TABLE repos ADD COLUMN list_etag TEXT;
ALTER TABLE repos ADD COLUMN list_etag_token TEXT;
ALTER TABLE repos ADD COLUMN list_etag_url TEXT;

-- What seedq learned about an API server: whether it serves GraphQL.
CREATE TABLE api_servers (
    api_url    TEXT PRIMARY KEY NOT NULL,
    graphql    TEXT NOT NULL CHECK (graphql IN ('yes', 'no')),
    -- Why not (the answer that showed it), for `status`.
    reason     TEXT,
    checked_at INTEGER NOT NULL
);
