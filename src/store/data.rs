//! Storing a page's rows. Every insert is an upsert on the row's natural key, so a
//! page fetched twice (a replay after a crash) leaves each row once.
//!
//! A PR's child rows (commits, reviews, files, check runs, comments) also record the
//! page that held them and the last round that saw them: once a round has fetched every
//! page of a PR's endpoint, the rows it did not see are gone upstream (`sweep_unseen`).
//! A page answered 304 is unchanged, so its rows count as seen (`mark_seen`).

use super::jobs::json_array;
use super::sql::{ChildPage, ChildRows, PageRows, PullValues, Sql};
use super::Result;
use crate::github::pages::{PullRow, Rows, User};
use crate::github::Kind;
use serde_json::json;

/// A user's login; `None` for a deleted account, which GitHub's REST API shows as its
/// placeholder user `ghost` (and GraphQL as null).
fn login(user: &Option<User>) -> Option<&str> {
    user.as_ref()?.login.as_deref().filter(|l| *l != "ghost")
}

/// The child-row table of a per-PR list endpoint.
pub(super) fn child_rows(kind: Kind) -> Option<ChildRows> {
    Some(match kind {
        Kind::Commits => ChildRows::Commits,
        Kind::Reviews => ChildRows::Reviews,
        Kind::Files => ChildRows::Files,
        Kind::CheckRuns => ChildRows::CheckRuns,
        Kind::ReviewComments => ChildRows::ReviewComments,
        Kind::IssueComments => ChildRows::IssueComments,
        Kind::Pulls | Kind::Pull => return None,
    })
}

/// Stores `rows`, fetched for `repo` (and `pr_number` for per-PR pages) as page `page`
/// in round `round`.
pub(super) async fn store_rows(
    tx: &mut impl Sql,
    repo: &str,
    pr_number: Option<i64>,
    rows: &Rows,
    round: i64,
    page: i64,
) -> Result<()> {
    if let Rows::Pulls(pulls) = rows {
        for pull in pulls {
            tx.upsert_pull(pull_values(repo, pull, false)).await?;
        }
        return Ok(());
    }
    let pr = pr_number.unwrap_or_default();
    match page_rows(repo, pr, rows, round, page) {
        Some(PageRows::Pull(values)) => tx.upsert_pull(values).await,
        Some(PageRows::Children(page, Some(items))) => tx.upsert_children(page, &items).await,
        Some(PageRows::Children(_, None)) | None => Ok(()),
    }
}

/// The rows of a per-PR page (`pr`), fetched as page `page` in round `round`, as one
/// statement writes them; `None` for a list page's PRs (`Rows::Pulls`).
pub(super) fn page_rows<'a>(
    repo: &'a str,
    pr: i64,
    rows: &'a Rows,
    round: i64,
    page: i64,
) -> Option<PageRows<'a>> {
    let (table, items) = match rows {
        Rows::Pulls(_) => return None,
        Rows::Pull(pull) => return Some(PageRows::Pull(pull_values(repo, pull, true))),
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
            (ChildRows::Commits, json_array(items))
        }
        Rows::Reviews(reviews) => {
            let items = reviews
                .iter()
                .map(|r| json!([r.id, login(&r.user), r.state, r.submitted_at]));
            (ChildRows::Reviews, json_array(items))
        }
        Rows::Files(files) => {
            let items = files
                .iter()
                .map(|f| json!([f.filename, f.status, f.additions, f.deletions, f.changes]));
            (ChildRows::Files, json_array(items))
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
            (ChildRows::CheckRuns, json_array(items))
        }
        Rows::ReviewComments(comments) | Rows::IssueComments(comments) => {
            let table = match rows {
                Rows::ReviewComments(_) => ChildRows::ReviewComments,
                _ => ChildRows::IssueComments,
            };
            let items = comments
                .iter()
                .map(|c| json!([c.id, login(&c.user), c.created_at, c.body]));
            (table, json_array(items))
        }
    };
    let page = ChildPage {
        rows: table,
        repo,
        pr,
        page,
        round,
    };
    Some(PageRows::Children(page, items))
}

/// Stores a list page's PRs: those in the selected `state` (open, closed or all), and of
/// the others only those the database already holds (a PR that left the selection,
/// e.g. closed since, is updated, not added).
pub(super) async fn store_listed(
    tx: &mut impl Sql,
    repo: &str,
    pulls: &[PullRow],
    state: &str,
) -> Result<()> {
    for pull in pulls {
        let selected = state == "all" || pull.state.as_deref() == Some(state);
        if selected || tx.pull_known(repo, pull.number).await? {
            // A REST list item has no line counts; a GraphQL one does (see `followups`).
            let with_counts = pull.additions.is_some();
            tx.upsert_pull(pull_values(repo, pull, with_counts)).await?;
        }
    }
    Ok(())
}

/// A PR's columns. A list item lacks the line counts; only the detail (`with_counts`)
/// sets them, so a list page fetched after the detail does not erase them.
fn pull_values<'a>(repo: &'a str, pull: &'a PullRow, with_counts: bool) -> PullValues<'a> {
    PullValues {
        repo,
        number: pull.number,
        title: pull.title.as_deref(),
        state: pull.state.as_deref(),
        author: login(&pull.user),
        created_at: pull.created_at.as_deref(),
        updated_at: pull.updated_at.as_deref(),
        closed_at: pull.closed_at.as_deref(),
        merged_at: pull.merged_at.as_deref(),
        additions: pull.additions,
        deletions: pull.deletions,
        changed_files: pull.changed_files,
        head_sha: pull.head_sha(),
        draft: pull.draft,
        base_ref: pull.base.as_ref().and_then(|b| b.name.as_deref()),
        head_ref: pull.head.as_ref().and_then(|h| h.name.as_deref()),
        with_counts,
    }
}
