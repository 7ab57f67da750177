//! Storing a page's rows. Every insert is an upsert on the row's natural key, so a
//! page fetched twice (a replay after a crash) leaves each row once.

use super::Result;
use crate::github::pages::{CommentRow, PullRow, Rows, User};
use sqlx::SqliteConnection;

fn login(user: &Option<User>) -> Option<&str> {
    user.as_ref()?.login.as_deref()
}

/// Stores `rows`, fetched for `repo` (and `pr_number` for per-PR pages).
pub(super) async fn store_rows(
    conn: &mut SqliteConnection,
    repo: &str,
    pr_number: Option<i64>,
    rows: &Rows,
) -> Result<()> {
    let pr = pr_number.unwrap_or_default();
    match rows {
        Rows::Pulls(pulls) => {
            for pull in pulls {
                upsert_pull(conn, repo, pull, false).await?;
            }
        }
        Rows::Pull(pull) => upsert_pull(conn, repo, pull, true).await?,
        Rows::Commits(commits) => {
            for c in commits {
                let detail = c.commit.as_ref();
                let git_author = detail.and_then(|d| d.author.as_ref());
                let author = login(&c.author);
                let author_name = git_author.and_then(|a| a.name.as_deref());
                let authored_at = git_author.and_then(|a| a.date.as_deref());
                let message = detail.and_then(|d| d.message.as_deref());
                sqlx::query!(
                    "INSERT INTO gh_pr_commits (repo, pr_number, sha, author, author_name,
                                                authored_at, message)
                     VALUES (?, ?, ?, ?, ?, ?, ?)
                     ON CONFLICT (repo, pr_number, sha) DO UPDATE SET author = excluded.author,
                         author_name = excluded.author_name, authored_at = excluded.authored_at,
                         message = excluded.message",
                    repo,
                    pr,
                    c.sha,
                    author,
                    author_name,
                    authored_at,
                    message
                )
                .execute(&mut *conn)
                .await?;
            }
        }
        Rows::Reviews(reviews) => {
            for r in reviews {
                let reviewer = login(&r.user);
                sqlx::query!(
                    "INSERT INTO gh_pr_reviews (repo, pr_number, review_id, reviewer, state,
                                                submitted_at)
                     VALUES (?, ?, ?, ?, ?, ?)
                     ON CONFLICT (repo, pr_number, review_id) DO UPDATE SET
                         reviewer = excluded.reviewer, state = excluded.state,
                         submitted_at = excluded.submitted_at",
                    repo,
                    pr,
                    r.id,
                    reviewer,
                    r.state,
                    r.submitted_at
                )
                .execute(&mut *conn)
                .await?;
            }
        }
        Rows::Files(files) => {
            for f in files {
                sqlx::query!(
                    "INSERT INTO gh_pr_files (repo, pr_number, filename, status, additions,
                                              deletions, changes)
                     VALUES (?, ?, ?, ?, ?, ?, ?)
                     ON CONFLICT (repo, pr_number, filename) DO UPDATE SET
                         status = excluded.status, additions = excluded.additions,
                         deletions = excluded.deletions, changes = excluded.changes",
                    repo,
                    pr,
                    f.filename,
                    f.status,
                    f.additions,
                    f.deletions,
                    f.changes
                )
                .execute(&mut *conn)
                .await?;
            }
        }
        Rows::CheckRuns(runs) => {
            for run in runs {
                let head_sha = run.head_sha.as_deref().unwrap_or_default();
                sqlx::query!(
                    "INSERT INTO gh_check_runs (repo, pr_number, head_sha, check_run_id, name,
                                                status, conclusion, started_at, completed_at)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                     ON CONFLICT (repo, pr_number, check_run_id) DO UPDATE SET
                         head_sha = excluded.head_sha, name = excluded.name,
                         status = excluded.status, conclusion = excluded.conclusion,
                         started_at = excluded.started_at, completed_at = excluded.completed_at",
                    repo,
                    pr,
                    head_sha,
                    run.id,
                    run.name,
                    run.status,
                    run.conclusion,
                    run.started_at,
                    run.completed_at
                )
                .execute(&mut *conn)
                .await?;
            }
        }
        Rows::ReviewComments(comments) => {
            upsert_comments(conn, repo, pr, "review", comments).await?
        }
        Rows::IssueComments(comments) => upsert_comments(conn, repo, pr, "issue", comments).await?,
    }
    Ok(())
}

/// A list item lacks the line counts; only the detail (`with_counts`) sets them, so a
/// list page fetched after the detail does not erase them.
async fn upsert_pull(
    conn: &mut SqliteConnection,
    repo: &str,
    pull: &PullRow,
    with_counts: bool,
) -> Result<()> {
    let author = login(&pull.user);
    let head_sha = pull.head_sha();
    let head_ref = pull.head.as_ref().and_then(|h| h.name.as_deref());
    let base_ref = pull.base.as_ref().and_then(|b| b.name.as_deref());
    let with_counts = i64::from(with_counts);
    sqlx::query!(
        "INSERT INTO gh_pulls (repo, number, title, state, author, created_at, updated_at,
                               closed_at, merged_at, additions, deletions, changed_files,
                               head_sha, draft, base_ref, head_ref)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
         ON CONFLICT (repo, number) DO UPDATE SET
             title = excluded.title, state = excluded.state, author = excluded.author,
             created_at = excluded.created_at, updated_at = excluded.updated_at,
             closed_at = excluded.closed_at, merged_at = excluded.merged_at,
             additions = CASE WHEN ?17 THEN excluded.additions ELSE additions END,
             deletions = CASE WHEN ?17 THEN excluded.deletions ELSE deletions END,
             changed_files = CASE WHEN ?17 THEN excluded.changed_files ELSE changed_files END,
             head_sha = excluded.head_sha, draft = excluded.draft,
             base_ref = excluded.base_ref, head_ref = excluded.head_ref",
        repo,
        pull.number,
        pull.title,
        pull.state,
        author,
        pull.created_at,
        pull.updated_at,
        pull.closed_at,
        pull.merged_at,
        pull.additions,
        pull.deletions,
        pull.changed_files,
        head_sha,
        pull.draft,
        base_ref,
        head_ref,
        with_counts
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn upsert_comments(
    conn: &mut SqliteConnection,
    repo: &str,
    pr: i64,
    kind: &str,
    comments: &[CommentRow],
) -> Result<()> {
    for c in comments {
        let author = login(&c.user);
        sqlx::query!(
            "INSERT INTO gh_pr_comments (repo, pr_number, kind, comment_id, author, created_at, body)
             VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (repo, kind, comment_id) DO UPDATE SET author = excluded.author,
                 created_at = excluded.created_at, body = excluded.body",
            repo,
            pr,
            kind,
            c.id,
            author,
            c.created_at,
            c.body
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
