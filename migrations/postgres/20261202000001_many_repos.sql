-- seedq schema, version 6: many repositories (see the SQLite migration of the same name).

ALTER TABLE repos ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE repos ADD COLUMN priority BIGINT NOT NULL DEFAULT 0;
UPDATE repos SET seq = r.n
FROM (SELECT name, row_number() OVER (ORDER BY enqueued_at, name COLLATE "C") AS n FROM repos) r
WHERE r.name = repos.name;
UPDATE job_queue SET priority = priority + 2 * (SELECT seq FROM repos WHERE name = job_queue.repo);

ALTER TABLE repos ADD COLUMN listing TEXT;

CREATE TABLE repo_access (
    repo       TEXT NOT NULL,
    token      TEXT NOT NULL,
    sees       BIGINT NOT NULL CHECK (sees IN (0, 1)),
    error      TEXT,
    checked_at BIGINT NOT NULL,
    PRIMARY KEY (repo, token)
);
