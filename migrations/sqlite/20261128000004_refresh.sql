-- seedq schema, version 4: refresh rounds, conditional requests, selective seeding.

-- Per-repository settings (`enqueue --since/--state/--limit`) and refresh rounds.
-- A round is one pass over the repository: the first seed is round 1, each refresh
-- adds one. Its jobs have their own dedup keys, so a refresh's jobs are new jobs while
-- replays within one round stay idempotent.
ALTER TABLE repos ADD COLUMN round INTEGER NOT NULL DEFAULT 1;
-- `--since`, normalised to GitHub's `YYYY-MM-DDTHH:MM:SSZ`: only PRs updated since.
ALTER TABLE repos ADD COLUMN since TEXT;
-- `--state`: open, closed or all.
ALTER TABLE repos ADD COLUMN pr_state TEXT NOT NULL DEFAULT 'all'
    CHECK (pr_state IN ('open', 'closed', 'all'));
-- `--limit`: at most this many PRs listed per round.
ALTER TABLE repos ADD COLUMN pr_limit INTEGER;
-- The current round lists PRs (sorted by updated, descending) down to this
-- `updated_at`: the later of `since` and `high_water`. NULL: the whole list.
ALTER TABLE repos ADD COLUMN round_since TEXT;
-- The newest `updated_at` on the current round's first list page: every later change
-- upstream has a later `updated_at`. Becomes `high_water` once the round is complete.
ALTER TABLE repos ADD COLUMN round_high_water TEXT;
-- `round_high_water` of the last round that completed with no failed job.
ALTER TABLE repos ADD COLUMN high_water TEXT;

ALTER TABLE job_queue ADD COLUMN round INTEGER NOT NULL DEFAULT 1;
CREATE INDEX job_queue_repo_round ON job_queue (repo, round, state);

-- The ETag of each per-PR page, for `If-None-Match` on a refresh. Keyed by the job's
-- dedup key without its round (`repo|kind|pr|page`). ETags are tied to the token that
-- got them: `token` is its fingerprint, never the secret.
CREATE TABLE page_etags (
    page_key   TEXT PRIMARY KEY NOT NULL,
    etag       TEXT NOT NULL,
    token      TEXT NOT NULL,
    -- The next page this page led to (NULL: it was the last), so a 304 can go on.
    next_url   TEXT,
    updated_at INTEGER NOT NULL
);

-- Child rows remember the page that held them and the last round that saw them: when
-- every page of a PR's endpoint has been fetched in a round, rows not seen in that
-- round are gone upstream and are deleted (a 304 page marks its rows seen).
ALTER TABLE gh_pr_commits ADD COLUMN page INTEGER NOT NULL DEFAULT 1;
ALTER TABLE gh_pr_commits ADD COLUMN seen_round INTEGER NOT NULL DEFAULT 1;
ALTER TABLE gh_pr_reviews ADD COLUMN page INTEGER NOT NULL DEFAULT 1;
ALTER TABLE gh_pr_reviews ADD COLUMN seen_round INTEGER NOT NULL DEFAULT 1;
ALTER TABLE gh_pr_files ADD COLUMN page INTEGER NOT NULL DEFAULT 1;
ALTER TABLE gh_pr_files ADD COLUMN seen_round INTEGER NOT NULL DEFAULT 1;
ALTER TABLE gh_check_runs ADD COLUMN page INTEGER NOT NULL DEFAULT 1;
ALTER TABLE gh_check_runs ADD COLUMN seen_round INTEGER NOT NULL DEFAULT 1;
ALTER TABLE gh_pr_comments ADD COLUMN page INTEGER NOT NULL DEFAULT 1;
ALTER TABLE gh_pr_comments ADD COLUMN seen_round INTEGER NOT NULL DEFAULT 1;
CREATE INDEX gh_pr_comments_pr ON gh_pr_comments (repo, pr_number, kind);
