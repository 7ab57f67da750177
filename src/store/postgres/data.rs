//! The data tables' statements on PostgreSQL. Rows arrive as one JSON array a page,
//! each row an array in the order `data::store_rows` builds it; every insert is an
//! upsert on the row's natural key.

use crate::store::sql::{ChildPage, ChildRows, DataSql, PageEtag, PageRows, PullValues};
use crate::store::Result;
use sqlx::PgConnection;

/// The job a page's rows are stored with: its outcome and ETag go first, in the same
/// statement (`seedq_finish_page`, see its migration), and the rows only if it was
/// written. `None` (`job`) for rows stored on their own.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Finishing<'a> {
    job: Option<i64>,
    lease: Option<i64>,
    now: Option<i64>,
    key: Option<&'a str>,
    etag: Option<&'a str>,
    token: Option<&'a str>,
    next_url: Option<&'a str>,
}

impl<'a> Finishing<'a> {
    pub fn of(id: i64, lease: i64, etag: &'a PageEtag<'a>, now: i64) -> Finishing<'a> {
        Finishing {
            job: Some(id),
            lease: Some(lease),
            now: Some(now),
            key: Some(&etag.key),
            etag: etag.etag,
            token: Some(etag.token),
            next_url: etag.next_url,
        }
    }
}

/// A fetched per-PR page: its job done, its ETag and its rows, in one statement; 1, or
/// 0 when the lease was taken over (nothing written).
pub(super) async fn finish_page(
    conn: &mut PgConnection,
    finishing: Finishing<'_>,
    rows: &PageRows<'_>,
) -> Result<u64> {
    match rows {
        PageRows::Children(page, items) => {
            upsert_children(conn, *page, items.as_deref().unwrap_or("[]"), finishing).await
        }
        PageRows::Pull(values) => upsert_pull(conn, *values, finishing).await,
    }
}

/// Upserts a page of child rows, after `finishing`'s job (when there is one, and only if
/// it was written); whether written (1) or fenced (0).
async fn upsert_children(
    conn: &mut PgConnection,
    p: ChildPage<'_>,
    items: &str,
    f: Finishing<'_>,
) -> Result<u64> {
    let (repo, pr, page, round) = (p.repo, p.pr, p.page, p.round);
    let written = match p.rows {
        ChildRows::Commits => {
            sqlx::query_scalar!(
                r#"WITH done AS MATERIALIZED (
                     SELECT CASE WHEN $6::bigint IS NULL THEN 1
                                 ELSE seedq_finish_page($6, $7, $8, $9, $10, $11, $12) END AS written),
                 stored AS (
                 INSERT INTO gh_pr_commits (repo, pr_number, sha, author, author_name,
                                            authored_at, message, page, seen_round)
                 SELECT $1, $2, value ->> 0, value ->> 1, value ->> 2, value ->> 3,
                        value ->> 4, $3, $4
                 FROM jsonb_array_elements($5::text::jsonb) WITH ORDINALITY AS j(value, n)
                 WHERE (SELECT written FROM done) = 1 ORDER BY j.n
                 ON CONFLICT (repo, pr_number, sha) DO UPDATE SET author = excluded.author,
                     author_name = excluded.author_name, authored_at = excluded.authored_at,
                     message = excluded.message, page = excluded.page,
                     seen_round = excluded.seen_round)
                 SELECT written AS "written!" FROM done"#,
                repo,
                pr,
                page,
                round,
                items,
                f.job,
                f.lease,
                f.now,
                f.key,
                f.etag,
                f.token,
                f.next_url
            )
            .fetch_one(&mut *conn)
            .await?
        }
        ChildRows::Reviews => {
            sqlx::query_scalar!(
                r#"WITH done AS MATERIALIZED (
                     SELECT CASE WHEN $6::bigint IS NULL THEN 1
                                 ELSE seedq_finish_page($6, $7, $8, $9, $10, $11, $12) END AS written),
                 stored AS (
                 INSERT INTO gh_pr_reviews (repo, pr_number, review_id, reviewer, state,
                                            submitted_at, page, seen_round)
                 SELECT $1, $2, (value ->> 0)::bigint, value ->> 1, value ->> 2, value ->> 3, $3, $4
                 FROM jsonb_array_elements($5::text::jsonb) WITH ORDINALITY AS j(value, n)
                 WHERE (SELECT written FROM done) = 1 ORDER BY j.n
                 ON CONFLICT (repo, pr_number, review_id) DO UPDATE SET
                     reviewer = excluded.reviewer, state = excluded.state,
                     submitted_at = excluded.submitted_at, page = excluded.page,
                     seen_round = excluded.seen_round)
                 SELECT written AS "written!" FROM done"#,
                repo,
                pr,
                page,
                round,
                items,
                f.job,
                f.lease,
                f.now,
                f.key,
                f.etag,
                f.token,
                f.next_url
            )
            .fetch_one(&mut *conn)
            .await?
        }
        ChildRows::Files => {
            sqlx::query_scalar!(
                r#"WITH done AS MATERIALIZED (
                     SELECT CASE WHEN $6::bigint IS NULL THEN 1
                                 ELSE seedq_finish_page($6, $7, $8, $9, $10, $11, $12) END AS written),
                 stored AS (
                 INSERT INTO gh_pr_files (repo, pr_number, filename, status, additions,
                                          deletions, changes, page, seen_round)
                 SELECT $1, $2, value ->> 0, value ->> 1, (value ->> 2)::bigint,
                        (value ->> 3)::bigint, (value ->> 4)::bigint, $3, $4
                 FROM jsonb_array_elements($5::text::jsonb) WITH ORDINALITY AS j(value, n)
                 WHERE (SELECT written FROM done) = 1 ORDER BY j.n
                 ON CONFLICT (repo, pr_number, filename) DO UPDATE SET
                     status = excluded.status, additions = excluded.additions,
                     deletions = excluded.deletions, changes = excluded.changes,
                     page = excluded.page, seen_round = excluded.seen_round)
                 SELECT written AS "written!" FROM done"#,
                repo,
                pr,
                page,
                round,
                items,
                f.job,
                f.lease,
                f.now,
                f.key,
                f.etag,
                f.token,
                f.next_url
            )
            .fetch_one(&mut *conn)
            .await?
        }
        ChildRows::CheckRuns => {
            sqlx::query_scalar!(
                r#"WITH done AS MATERIALIZED (
                     SELECT CASE WHEN $6::bigint IS NULL THEN 1
                                 ELSE seedq_finish_page($6, $7, $8, $9, $10, $11, $12) END AS written),
                 stored AS (
                 INSERT INTO gh_check_runs (repo, pr_number, head_sha, check_run_id, name,
                                            status, conclusion, started_at, completed_at,
                                            page, seen_round)
                 SELECT $1, $2, value ->> 0, (value ->> 1)::bigint, value ->> 2, value ->> 3,
                        value ->> 4, value ->> 5, value ->> 6, $3, $4
                 FROM jsonb_array_elements($5::text::jsonb) WITH ORDINALITY AS j(value, n)
                 WHERE (SELECT written FROM done) = 1 ORDER BY j.n
                 ON CONFLICT (repo, pr_number, check_run_id) DO UPDATE SET
                     head_sha = excluded.head_sha, name = excluded.name,
                     status = excluded.status, conclusion = excluded.conclusion,
                     started_at = excluded.started_at, completed_at = excluded.completed_at,
                     page = excluded.page, seen_round = excluded.seen_round)
                 SELECT written AS "written!" FROM done"#,
                repo,
                pr,
                page,
                round,
                items,
                f.job,
                f.lease,
                f.now,
                f.key,
                f.etag,
                f.token,
                f.next_url
            )
            .fetch_one(&mut *conn)
            .await?
        }
        ChildRows::ReviewComments | ChildRows::IssueComments => {
            let kind = p.rows.comment_kind();
            sqlx::query_scalar!(
                r#"WITH done AS MATERIALIZED (
                     SELECT CASE WHEN $7::bigint IS NULL THEN 1
                                 ELSE seedq_finish_page($7, $8, $9, $10, $11, $12, $13) END AS written),
                 stored AS (
                 INSERT INTO gh_pr_comments (repo, pr_number, kind, comment_id, author,
                                             created_at, body, page, seen_round)
                 SELECT $1, $2, $3, (value ->> 0)::bigint, value ->> 1, value ->> 2, value ->> 3, $4, $5
                 FROM jsonb_array_elements($6::text::jsonb) WITH ORDINALITY AS j(value, n)
                 WHERE (SELECT written FROM done) = 1 ORDER BY j.n
                 ON CONFLICT (repo, kind, comment_id) DO UPDATE SET author = excluded.author,
                     created_at = excluded.created_at, body = excluded.body,
                     page = excluded.page, seen_round = excluded.seen_round)
                 SELECT written AS "written!" FROM done"#,
                repo,
                pr,
                kind,
                page,
                round,
                items,
                f.job,
                f.lease,
                f.now,
                f.key,
                f.etag,
                f.token,
                f.next_url
            )
            .fetch_one(&mut *conn)
            .await?
        }
    };
    Ok(written as u64)
}

impl DataSql for PgConnection {
    async fn upsert_children(&mut self, p: ChildPage<'_>, items: &str) -> Result<()> {
        upsert_children(self, p, items, Finishing::default()).await?;
        Ok(())
    }

    async fn pull_known(&mut self, repo: &str, number: i64) -> Result<bool> {
        let n = sqlx::query_scalar!(
            r#"SELECT count(*) AS "n!: i64" FROM gh_pulls WHERE repo = $1 AND number = $2"#,
            repo,
            number
        )
        .fetch_one(&mut *self)
        .await?;
        Ok(n > 0)
    }

    async fn upsert_pull(&mut self, pull: PullValues<'_>) -> Result<()> {
        upsert_pull(self, pull, Finishing::default()).await?;
        Ok(())
    }

    async fn mark_seen(&mut self, p: ChildPage<'_>) -> Result<()> {
        let (repo, pr, page, round) = (p.repo, p.pr, p.page, p.round);
        let kind = p.rows.comment_kind();
        let query = match p.rows {
            ChildRows::Commits => sqlx::query!(
                "UPDATE gh_pr_commits SET seen_round = $4
             WHERE repo = $1 AND pr_number = $2 AND page = $3",
                repo,
                pr,
                page,
                round
            ),
            ChildRows::Reviews => sqlx::query!(
                "UPDATE gh_pr_reviews SET seen_round = $4
             WHERE repo = $1 AND pr_number = $2 AND page = $3",
                repo,
                pr,
                page,
                round
            ),
            ChildRows::Files => sqlx::query!(
                "UPDATE gh_pr_files SET seen_round = $4
             WHERE repo = $1 AND pr_number = $2 AND page = $3",
                repo,
                pr,
                page,
                round
            ),
            ChildRows::CheckRuns => sqlx::query!(
                "UPDATE gh_check_runs SET seen_round = $4
             WHERE repo = $1 AND pr_number = $2 AND page = $3",
                repo,
                pr,
                page,
                round
            ),
            ChildRows::ReviewComments | ChildRows::IssueComments => sqlx::query!(
                "UPDATE gh_pr_comments SET seen_round = $4
             WHERE repo = $1 AND pr_number = $2 AND page = $3 AND kind = $5",
                repo,
                pr,
                page,
                round,
                kind
            ),
        };
        query.execute(&mut *self).await?;
        Ok(())
    }

    async fn sweep_unseen(&mut self, p: ChildPage<'_>) -> Result<()> {
        let (repo, pr, round) = (p.repo, p.pr, p.round);
        let kind = p.rows.comment_kind();
        let query = match p.rows {
            ChildRows::Commits => sqlx::query!(
                "DELETE FROM gh_pr_commits WHERE repo = $1 AND pr_number = $2 AND seen_round < $3",
                repo,
                pr,
                round
            ),
            ChildRows::Reviews => sqlx::query!(
                "DELETE FROM gh_pr_reviews WHERE repo = $1 AND pr_number = $2 AND seen_round < $3",
                repo,
                pr,
                round
            ),
            ChildRows::Files => sqlx::query!(
                "DELETE FROM gh_pr_files WHERE repo = $1 AND pr_number = $2 AND seen_round < $3",
                repo,
                pr,
                round
            ),
            ChildRows::CheckRuns => sqlx::query!(
                "DELETE FROM gh_check_runs WHERE repo = $1 AND pr_number = $2 AND seen_round < $3",
                repo,
                pr,
                round
            ),
            ChildRows::ReviewComments | ChildRows::IssueComments => sqlx::query!(
                "DELETE FROM gh_pr_comments
             WHERE repo = $1 AND pr_number = $2 AND kind = $3 AND seen_round < $4",
                repo,
                pr,
                kind,
                round
            ),
        };
        query.execute(&mut *self).await?;
        Ok(())
    }
}

/// Upserts a PR's row, after `finishing`'s job (as `upsert_children`).
async fn upsert_pull(
    conn: &mut PgConnection,
    pull: PullValues<'_>,
    f: Finishing<'_>,
) -> Result<u64> {
    let draft = pull.draft.map(i64::from);
    let written = sqlx::query_scalar!(
            r#"WITH done AS MATERIALIZED (
                 SELECT CASE WHEN $18::bigint IS NULL THEN 1
                             ELSE seedq_finish_page($18, $19, $20, $21, $22, $23, $24) END AS written),
             stored AS (
             INSERT INTO gh_pulls (repo, number, title, state, author, created_at, updated_at,
                                   closed_at, merged_at, additions, deletions, changed_files,
                                   head_sha, draft, base_ref, head_ref)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16
             WHERE (SELECT written FROM done) = 1
             ON CONFLICT (repo, number) DO UPDATE SET
                 title = excluded.title, state = excluded.state, author = excluded.author,
                 created_at = excluded.created_at, updated_at = excluded.updated_at,
                 closed_at = excluded.closed_at, merged_at = excluded.merged_at,
                 additions = CASE WHEN $17 THEN excluded.additions ELSE gh_pulls.additions END,
                 deletions = CASE WHEN $17 THEN excluded.deletions ELSE gh_pulls.deletions END,
                 changed_files = CASE WHEN $17 THEN excluded.changed_files ELSE gh_pulls.changed_files END,
                 head_sha = excluded.head_sha, draft = excluded.draft,
                 base_ref = excluded.base_ref, head_ref = excluded.head_ref)
             SELECT written AS "written!" FROM done"#,
            pull.repo,
            pull.number,
            pull.title,
            pull.state,
            pull.author,
            pull.created_at,
            pull.updated_at,
            pull.closed_at,
            pull.merged_at,
            pull.additions,
            pull.deletions,
            pull.changed_files,
            pull.head_sha,
            draft,
            pull.base_ref,
            pull.head_ref,
            pull.with_counts,
            f.job,
            f.lease,
            f.now,
            f.key,
            f.etag,
            f.token,
            f.next_url
        )
        .fetch_one(&mut *conn)
        .await?;
    Ok(written as u64)
}
