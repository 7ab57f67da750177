-- seedq schema, version 6: many repositories.

-- Order: repositories complete one after another, in the order they were enqueued
-- (`seq`, renewed by each refresh), a higher `priority` first. A job's `priority` holds
-- its repository's rank (`seq - priority * 2^32`) times two, plus 1 for a list page
-- (0 for a per-PR page), so that the ready index orders whole repositories.
ALTER TABLE repos ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE repos ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
UPDATE repos SET seq = (SELECT count(*) FROM repos r
                        WHERE r.enqueued_at < repos.enqueued_at
                           OR (r.enqueued_at = repos.enqueued_at AND r.name <= repos.name));
UPDATE job_queue SET priority = priority + 2 * (SELECT seq FROM repos WHERE name = job_queue.repo);

-- Listings of an organisation's or a user's repositories (`enqueue --org/--user`): a
-- row of `repos` named `org:LOGIN` or `user:LOGIN` carries the listing's round and the
-- options its repositories are enqueued with; `listing` holds its filters as JSON.
ALTER TABLE repos ADD COLUMN listing TEXT;

-- Which token can see which repository: GitHub answers 404 (or 403) to a token that
-- cannot. `sees` is 1 once the token fetched a page of it, 0 once it was refused.
CREATE TABLE repo_access (
    repo       TEXT NOT NULL,
    token      TEXT NOT NULL,
    sees       INTEGER NOT NULL CHECK (sees IN (0, 1)),
    error      TEXT,
    checked_at INTEGER NOT NULL,
    PRIMARY KEY (repo, token)
);
