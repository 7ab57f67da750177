//! Tokens that see different repositories, and removing repositories.
//!
//! GitHub answers 404 (or a 403 that is no rate limit) to a token that cannot see a
//! repository. Such an answer from a token not yet known to see the repository is taken
//! for "this token cannot see it": recorded in `repo_access`, and the job goes back to
//! the queue for another token (`take` passes over tokens recorded as refused). Once no
//! token of the process may see the repository, its jobs fail with a message that says
//! so. From a token that fetched a page of the repository before, the same answer is
//! about the page itself, and fails the job as before.

use super::db::{read, write_tx};
use super::jobs::{ClaimedJob, Outcome};
use super::sql::{QueueSql, RepoSql};
use super::{Result, Store};

/// The error of the jobs of a repository no token can see.
pub(crate) fn no_token_sees(repo: &str, tokens: i64) -> String {
    let all = if tokens == 1 {
        "the only token".to_owned()
    } else {
        format!("all {tokens} tokens")
    };
    format!(
        "{repo}: no token can see it ({all} answered 404 or 403); check the name, or add a \
         token with access"
    )
}

/// What a refusal (404, or 403 without a rate limit) of `token` for a repository means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The token fetched pages of the repository before: the page itself is refused.
    Final,
    /// The token cannot see the repository; `others` tokens may still.
    Hidden { others: i64 },
    /// No token of this process may see the repository.
    NoToken { tokens: i64 },
}

impl Refusal {
    /// The outcome of a job refused so, with the answer's `message`.
    pub fn outcome(&self, job: &ClaimedJob, message: &str, now: i64) -> Outcome {
        match self {
            Refusal::Final => Outcome::Fail {
                error: message.to_owned(),
            },
            Refusal::Hidden { .. } => Outcome::Requeue {
                run_at: now,
                refund_attempt: true,
                error: Some(format!(
                    "{message} (this token cannot see {}; another token will try)",
                    job.repo
                )),
                rest_only: false,
            },
            Refusal::NoToken { tokens } => Outcome::Fail {
                error: format!("{message}; {}", no_token_sees(&job.repo, *tokens)),
            },
        }
    }
}

/// What `remove` deleted of one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    pub repo: String,
    pub jobs: u64,
    /// Rows of the data tables (0 with `--keep-data`).
    pub rows: u64,
}

impl Store {
    /// Records that `token` was refused `repo` and says what that means (see the module
    /// docs). `fingerprints` are the tokens of this process, as a JSON array.
    pub async fn refused(
        &self,
        repo: &str,
        token: &str,
        error: &str,
        fingerprints: &str,
        now: i64,
    ) -> Result<Refusal> {
        Ok(write_tx!(&self.db, |tx| {
            if tx.access(repo, token).await? == Some(true) {
                Refusal::Final
            } else {
                tx.record_access(repo, token, false, Some(error), now)
                    .await?;
                match tx.may_see(repo, fingerprints).await? {
                    (valid, 0) => Refusal::NoToken { tokens: valid },
                    (_, others) => Refusal::Hidden { others },
                }
            }
        }))
    }

    /// Records that `token` fetched a page of `repo`.
    pub async fn saw(&self, repo: &str, token: &str, now: i64) -> Result<()> {
        write_tx!(&self.db, |tx| tx
            .record_access(repo, token, true, None, now)
            .await?);
        Ok(())
    }

    /// Fails the queued jobs of a repository no token can see; how many.
    pub async fn fail_unseen(&self, repo: &str, tokens: i64, now: i64) -> Result<u64> {
        let error = no_token_sees(repo, tokens);
        Ok(write_tx!(&self.db, |tx| tx
            .fail_queued(repo, &error, now)
            .await?))
    }

    /// Removes repositories: their jobs, ETags, access records and rows of `repos`, and
    /// unless `keep_data` their data. Unknown names remove nothing: `Err` lists them.
    pub async fn remove_repos(
        &self,
        repos: &[String],
        keep_data: bool,
    ) -> Result<std::result::Result<Vec<Removed>, Vec<String>>> {
        let names = serde_json::to_string(repos).expect("strings serialize");
        let known = read!(&self.db, |c| c.known_repos(&names).await)?;
        let unknown: Vec<String> = repos
            .iter()
            .filter(|r| !known.contains(r))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            return Ok(Err(unknown));
        }
        let removed = write_tx!(&self.db, |tx| {
            let mut removed = Vec::new();
            for repo in repos {
                let (jobs, rows) = tx.remove_repo(repo, !keep_data).await?;
                removed.push(Removed {
                    repo: repo.clone(),
                    jobs,
                    rows,
                });
            }
            removed
        });
        Ok(Ok(removed))
    }
}
