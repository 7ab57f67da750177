//! Read-only queries for `status` and the end-of-run summary. They run outside any
//! write transaction; in WAL mode they never block the workers, nor wait for them.

use super::{Result, Store};
use serde::Serialize;

/// Progress of one repository.
#[derive(Debug, Clone, Serialize)]
pub struct RepoProgress {
    pub repo: String,
    /// PRs listed so far.
    pub prs_discovered: i64,
    /// Listed PRs none of whose jobs are still queued, running or failed.
    pub prs_complete: i64,
    /// Whether the PR list itself has been read to its last page.
    pub list_complete: bool,
    pub jobs: JobCounts,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct JobCounts {
    pub queued: i64,
    pub running: i64,
    pub done: i64,
    pub failed: i64,
    /// Answers that were 304 Not Modified.
    pub not_modified: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FailedJob {
    pub id: i64,
    pub repo: String,
    pub kind: String,
    pub pr_number: Option<i64>,
    pub page: i64,
    pub attempts: i64,
    pub last_error: Option<String>,
}

impl Store {
    pub async fn repo_progress(&self) -> Result<Vec<RepoProgress>> {
        let repos = sqlx::query_scalar!("SELECT name FROM repos ORDER BY name")
            .fetch_all(self.pool())
            .await?;
        let mut progress = Vec::with_capacity(repos.len());
        for repo in repos {
            let counts = sqlx::query!(
                r#"SELECT coalesce(sum(state = 'queued'), 0) AS "queued!: i64",
                          coalesce(sum(state = 'running'), 0) AS "running!: i64",
                          coalesce(sum(state = 'done'), 0) AS "done!: i64",
                          coalesce(sum(state = 'failed'), 0) AS "failed!: i64",
                          coalesce(sum(not_modified), 0) AS "not_modified!: i64",
                          coalesce(sum(kind = 'pulls' AND state <> 'done'), 0) AS "list_pending!: i64"
                   FROM job_queue WHERE repo = ?"#,
                repo
            )
            .fetch_one(self.pool())
            .await?;
            let prs = sqlx::query!(
                r#"SELECT (SELECT count(*) FROM gh_pulls WHERE repo = ?1) AS "discovered!: i64",
                          (SELECT count(DISTINCT pr_number) FROM job_queue
                           WHERE repo = ?1 AND state <> 'done' AND pr_number IS NOT NULL)
                              AS "incomplete!: i64""#,
                repo
            )
            .fetch_one(self.pool())
            .await?;
            progress.push(RepoProgress {
                repo,
                prs_discovered: prs.discovered,
                prs_complete: (prs.discovered - prs.incomplete).max(0),
                list_complete: counts.list_pending == 0,
                jobs: JobCounts {
                    queued: counts.queued,
                    running: counts.running,
                    done: counts.done,
                    failed: counts.failed,
                    not_modified: counts.not_modified,
                },
            });
        }
        Ok(progress)
    }

    /// Failed jobs, newest first.
    pub async fn failed_jobs(&self, limit: i64) -> Result<Vec<FailedJob>> {
        Ok(sqlx::query_as!(
            FailedJob,
            "SELECT id, repo, kind, pr_number, page, attempts, last_error FROM job_queue
             WHERE state = 'failed' ORDER BY updated_at DESC, id LIMIT ?",
            limit
        )
        .fetch_all(self.pool())
        .await?)
    }
}
