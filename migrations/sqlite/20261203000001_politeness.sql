-- seedq schema, version 7: a good API citizen.

-- The requests a token may have in flight, as the last `seedq work` learned them from
-- GitHub's secondary limits (adaptive concurrency); NULL before any `work` used it.
ALTER TABLE token_state ADD COLUMN concurrency INTEGER;

-- Each `work` process's `--reserve`: requests it leaves on every token in a window.
ALTER TABLE workers ADD COLUMN reserve INTEGER NOT NULL DEFAULT 0;

-- `status` counts every repository's jobs by state and kind, and its PRs with a job
-- not done, from this index alone (a scan of a few bytes per job, not of the table);
-- lookups by (repo, state) use it as before. Pages answered 304 are counted from the
-- second, which holds only those.
DROP INDEX job_queue_repo;
CREATE INDEX job_queue_repo ON job_queue (repo, state, kind, pr_number);
CREATE INDEX job_queue_not_modified ON job_queue (repo, kind) WHERE not_modified > 0;
