//! Storing a page's rows. Every insert is an upsert on the row's natural key, so a
//! page fetched twice (a replay after a crash) leaves each row once.
//!
//! A PR's child rows (commits, reviews, files, check runs, comments) also record the
//! page that held them and the last round that saw them: once a round has fetched every
//! page of a PR's endpoint, the rows it did not see are gone upstream (`sweep_unseen`).
//! A page answered 304 is unchanged, so its rows count as seen (`mark_seen`).

use super::Result;
use crate::github::pages::{CommentRow, PullRow, Rows, User};
use crate::github::Kind;
use serde_json::json;
use sqlx::SqliteConnection;

/// A user's login; `None` for a deleted account, which GitHub's REST API shows as its
/// placeholder user `ghost` (and GraphQL as null).
fn login(user: &Option<User>) -> Option<&str> {
    user.as_ref()?.login.as_deref().filter(|l| *l != "ghost")
}

/// One page of one PR's endpoint in one round.
pub(super) struct Page<'a> {
    pub repo: &'a str,
    pub kind: Kind,
    pub pr: i64,
    pub page: i64,
    pub round: i64,
}

/// Stores `rows`, fetched for `repo` (and `pr_number` for per-PR pages) as page `page`
/// in round `round`.
pub(super) async fn store_rows(
    conn: &mut SqliteConnection,
    repo: &str,
    pr_number: Option<i64>,
    rows: &Rows,
    round: i64,
    page: i64,
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
            let items = commits.iter().map(|c| {
                let detail = c.commit.as_ref();
                let git_author = detail.and_then(|d| d.author.as_ref());
                json!([
                    c.sha,
                    login(&c.author),
                    git_author.and_then(|a| a.name.as_deref()),
                    git_author.and_then(|a| a.date.as_deref()),
                    detail.and_then(|d| d.message.as_deref()),
                ])
            });
            let Some(items) = super::json_array(items) else {
                return Ok(());
            };
            sqlx::query!(
                "INSERT INTO gh_pr_commits (repo, pr_number, sha, author, author_name,
                                            authored_at, message, page, seen_round)
                 SELECT ?1, ?2, value ->> 0, value ->> 1, value ->> 2, value ->> 3,
                        value ->> 4, ?3, ?4
                 FROM json_each(?5) WHERE true ORDER BY key
                 ON CONFLICT (repo, pr_number, sha) DO UPDATE SET author = excluded.author,
                     author_name = excluded.author_name, authored_at = excluded.authored_at,
                     message = excluded.message, page = excluded.page,
                     seen_round = excluded.seen_round",
                repo,
                pr,
                page,
                round,
                items
            )
            .execute(&mut *conn)
            .await?;
        }
        Rows::Reviews(reviews) => {
            let items = reviews
                .iter()
                .map(|r| json!([r.id, login(&r.user), r.state, r.submitted_at]));
            let Some(items) = super::json_array(items) else {
                return Ok(());
            };
            sqlx::query!(
                "INSERT INTO gh_pr_reviews (repo, pr_number, review_id, reviewer, state,
                                            submitted_at, page, seen_round)
                 SELECT ?1, ?2, value ->> 0, value ->> 1, value ->> 2, value ->> 3, ?3, ?4
                 FROM json_each(?5) WHERE true ORDER BY key
                 ON CONFLICT (repo, pr_number, review_id) DO UPDATE SET
                     reviewer = excluded.reviewer, state = excluded.state,
                     submitted_at = excluded.submitted_at, page = excluded.page,
                     seen_round = excluded.seen_round",
                repo,
                pr,
                page,
                round,
                items
            )
            .execute(&mut *conn)
            .await?;
        }
        Rows::Files(files) => {
            let items = files
                .iter()
                .map(|f| json!([f.filename, f.status, f.additions, f.deletions, f.changes]));
            let Some(items) = super::json_array(items) else {
                return Ok(());
            };
            sqlx::query!(
                "INSERT INTO gh_pr_files (repo, pr_number, filename, status, additions,
                                          deletions, changes, page, seen_round)
                 SELECT ?1, ?2, value ->> 0, value ->> 1, value ->> 2, value ->> 3,
                        value ->> 4, ?3, ?4
                 FROM json_each(?5) WHERE true ORDER BY key
                 ON CONFLICT (repo, pr_number, filename) DO UPDATE SET
                     status = excluded.status, additions = excluded.additions,
                     deletions = excluded.deletions, changes = excluded.changes,
                     page = excluded.page, seen_round = excluded.seen_round",
                repo,
                pr,
                page,
                round,
                items
            )
            .execute(&mut *conn)
            .await?;
        }
        Rows::CheckRuns(runs) => {
            let items = runs.iter().map(|run| {
                json!([
                    run.head_sha.as_deref().unwrap_or_default(),
                    run.id,
                    run.name,
                    run.status,
                    run.conclusion,
                    run.started_at,
                    run.completed_at,
                ])
            });
            let Some(items) = super::json_array(items) else {
                return Ok(());
            };
            sqlx::query!(
                "INSERT INTO gh_check_runs (repo, pr_number, head_sha, check_run_id, name,
                                            status, conclusion, started_at, completed_at,
                                            page, seen_round)
                 SELECT ?1, ?2, value ->> 0, value ->> 1, value ->> 2, value ->> 3,
                        value ->> 4, value ->> 5, value ->> 6, ?3, ?4
                 FROM json_each(?5) WHERE true ORDER BY key
                 ON CONFLICT (repo, pr_number, check_run_id) DO UPDATE SET
                     head_sha = excluded.head_sha, name = excluded.name,
                     status = excluded.status, conclusion = excluded.conclusion,
                     started_at = excluded.started_at, completed_at = excluded.completed_at,
                     page = excluded.page, seen_round = excluded.seen_round",
                repo,
                pr,
                page,
                round,
                items
            )
            .execute(&mut *conn)
            .await?;
        }
        Rows::ReviewComments(comments) => {
            let seen = (round, page);
            upsert_comments(conn, repo, pr, "review", comments, seen).await?
        }
        Rows::IssueComments(comments) => {
            let seen = (round, page);
            upsert_comments(conn, repo, pr, "issue", comments, seen).await?
        }
    }
    Ok(())
}

/// Stores a list page's PRs: those in the selected `state` (open, closed or all), and of
/// the others only those the database already holds (a PR that left the selection,
/// e.g. closed since, is updated, not added).
pub(super) async fn store_listed(
    conn: &mut SqliteConnection,
    repo: &str,
    pulls: &[PullRow],
    state: &str,
) -> Result<()> {
    for pull in pulls {
        let selected = state == "all" || pull.state.as_deref() == Some(state);
        let known = selected
            || sqlx::query_scalar!(
                r#"SELECT count(*) AS "n!: i64" FROM gh_pulls WHERE repo = ? AND number = ?"#,
                repo,
                pull.number
            )
            .fetch_one(&mut *conn)
            .await?
                > 0;
        if known {
            // A REST list item has no line counts; a GraphQL one does (see `followups`).
            let with_counts = pull.additions.is_some();
            upsert_pull(conn, repo, pull, with_counts).await?;
        }
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
    (round, page): (i64, i64),
) -> Result<()> {
    let items = comments
        .iter()
        .map(|c| json!([c.id, login(&c.user), c.created_at, c.body]));
    let Some(items) = super::json_array(items) else {
        return Ok(());
    };
    sqlx::query!(
        "INSERT INTO gh_pr_comments (repo, pr_number, kind, comment_id, author, created_at,
                                     body, page, seen_round)
         SELECT ?1, ?2, ?3, value ->> 0, value ->> 1, value ->> 2, value ->> 3, ?4, ?5
         FROM json_each(?6) WHERE true ORDER BY key
         ON CONFLICT (repo, kind, comment_id) DO UPDATE SET author = excluded.author,
             created_at = excluded.created_at, body = excluded.body,
             page = excluded.page, seen_round = excluded.seen_round",
        repo,
        pr,
        kind,
        page,
        round,
        items
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The comment kind of `gh_pr_comments` an endpoint fills.
fn comment_kind(kind: Kind) -> &'static str {
    if kind == Kind::ReviewComments {
        "review"
    } else {
        "issue"
    }
}

/// A 304 for `page`: the rows it held last time are still current; mark them seen.
pub(super) async fn mark_seen(conn: &mut SqliteConnection, p: &Page<'_>) -> Result<()> {
    let (repo, pr, page, round) = (p.repo, p.pr, p.page, p.round);
    match p.kind {
        Kind::Commits => {
            sqlx::query!(
                "UPDATE gh_pr_commits SET seen_round = ?4
                 WHERE repo = ?1 AND pr_number = ?2 AND page = ?3",
                repo,
                pr,
                page,
                round
            )
            .execute(&mut *conn)
            .await?;
        }
        Kind::Reviews => {
            sqlx::query!(
                "UPDATE gh_pr_reviews SET seen_round = ?4
                 WHERE repo = ?1 AND pr_number = ?2 AND page = ?3",
                repo,
                pr,
                page,
                round
            )
            .execute(&mut *conn)
            .await?;
        }
        Kind::Files => {
            sqlx::query!(
                "UPDATE gh_pr_files SET seen_round = ?4
                 WHERE repo = ?1 AND pr_number = ?2 AND page = ?3",
                repo,
                pr,
                page,
                round
            )
            .execute(&mut *conn)
            .await?;
        }
        Kind::CheckRuns => {
            sqlx::query!(
                "UPDATE gh_check_runs SET seen_round = ?4
                 WHERE repo = ?1 AND pr_number = ?2 AND page = ?3",
                repo,
                pr,
                page,
                round
            )
            .execute(&mut *conn)
            .await?;
        }
        Kind::ReviewComments | Kind::IssueComments => {
            let kind = comment_kind(p.kind);
            sqlx::query!(
                "UPDATE gh_pr_comments SET seen_round = ?4
                 WHERE repo = ?1 AND pr_number = ?2 AND page = ?3 AND kind = ?5",
                repo,
                pr,
                page,
                round,
                kind
            )
            .execute(&mut *conn)
            .await?;
        }
        Kind::Pulls | Kind::Pull => {}
    }
    Ok(())
}

/// After the last page of a PR's endpoint in a round: deletes that PR's rows of the
/// endpoint the round did not see (gone upstream). Every earlier page of the round is
/// done by then: a page is queued only when the one before it completes.
pub(super) async fn sweep_unseen(conn: &mut SqliteConnection, p: &Page<'_>) -> Result<()> {
    let (repo, pr, round) = (p.repo, p.pr, p.round);
    match p.kind {
        Kind::Commits => {
            sqlx::query!(
                "DELETE FROM gh_pr_commits WHERE repo = ? AND pr_number = ? AND seen_round < ?",
                repo,
                pr,
                round
            )
            .execute(&mut *conn)
            .await?;
        }
        Kind::Reviews => {
            sqlx::query!(
                "DELETE FROM gh_pr_reviews WHERE repo = ? AND pr_number = ? AND seen_round < ?",
                repo,
                pr,
                round
            )
            .execute(&mut *conn)
            .await?;
        }
        Kind::Files => {
            sqlx::query!(
                "DELETE FROM gh_pr_files WHERE repo = ? AND pr_number = ? AND seen_round < ?",
                repo,
                pr,
                round
            )
            .execute(&mut *conn)
            .await?;
        }
        Kind::CheckRuns => {
            sqlx::query!(
                "DELETE FROM gh_check_runs WHERE repo = ? AND pr_number = ? AND seen_round < ?",
                repo,
                pr,
                round
            )
            .execute(&mut *conn)
            .await?;
        }
        Kind::ReviewComments | Kind::IssueComments => {
            let kind = comment_kind(p.kind);
            sqlx::query!(
                "DELETE FROM gh_pr_comments
                 WHERE repo = ? AND pr_number = ? AND kind = ? AND seen_round < ?",
                repo,
                pr,
                kind,
                round
            )
            .execute(&mut *conn)
            .await?;
        }
        Kind::Pulls | Kind::Pull => {}
    }
    Ok(())
}

/// Stores a page's ETag with the fingerprint of the token that got it (ETags are tied
/// to a token) and the next page it led to; a page without an ETag forgets the old one.
pub(super) async fn remember_etag(
    conn: &mut SqliteConnection,
    page_key: &str,
    etag: Option<&str>,
    token: &str,
    next_url: Option<&str>,
    now: i64,
) -> Result<()> {
    match etag {
        Some(etag) => {
            sqlx::query!(
                "INSERT INTO page_etags (page_key, etag, token, next_url, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (page_key) DO UPDATE SET etag = ?2, token = ?3, next_url = ?4,
                     updated_at = ?5",
                page_key,
                etag,
                token,
                next_url,
                now
            )
            .execute(&mut *conn)
            .await?;
        }
        None => {
            sqlx::query!("DELETE FROM page_etags WHERE page_key = ?", page_key)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}
