//! Repositories' statements on PostgreSQL. A read-then-write of a repository's row
//! (`enqueue`, a learned batch size) locks it `FOR UPDATE` first, so two processes do
//! not both start a round or both count one query.

use crate::store::sql::{LearnedBatch, NewRound, RepoRound, RepoSql};
use crate::store::Result;
use sqlx::PgConnection;

impl RepoSql for PgConnection {
    async fn repo_round(&mut self, repo: &str) -> Result<Option<RepoRound>> {
        let row = sqlx::query!(
            "SELECT round, endpoints, since, pr_state, pr_limit, high_water, round_high_water
             FROM repos WHERE name = $1 FOR UPDATE",
            repo
        )
        .fetch_optional(&mut *self)
        .await?;
        Ok(row.map(|r| RepoRound {
            round: r.round,
            endpoints: r.endpoints,
            since: r.since,
            pr_state: r.pr_state,
            pr_limit: r.pr_limit,
            high_water: r.high_water,
            round_high_water: r.round_high_water,
        }))
    }

    async fn round_jobs(&mut self, repo: &str, round: i64) -> Result<(i64, i64)> {
        let jobs = sqlx::query!(
            r#"SELECT count(*) FILTER (WHERE state IN ('queued', 'running')) AS "pending!",
                      count(*) FILTER (WHERE state = 'failed') AS "failed!"
               FROM job_queue WHERE repo = $1 AND round = $2"#,
            repo,
            round
        )
        .fetch_one(&mut *self)
        .await?;
        Ok((jobs.pending, jobs.failed))
    }

    async fn start_round(&mut self, r: NewRound<'_>) -> Result<()> {
        sqlx::query!(
            "INSERT INTO repos (name, endpoints, enqueued_at, round, since, pr_state, pr_limit,
                                round_since, round_high_water, high_water)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9)
             ON CONFLICT (name) DO UPDATE SET endpoints = $2, round = $4, since = $5,
                 pr_state = $6, pr_limit = $7, round_since = $8, round_high_water = NULL,
                 high_water = $9,
                 list_etag = CASE WHEN $10 THEN repos.list_etag END,
                 list_etag_token = CASE WHEN $10 THEN repos.list_etag_token END,
                 list_etag_url = CASE WHEN $10 THEN repos.list_etag_url END",
            r.repo,
            r.endpoints,
            r.now,
            r.round,
            r.since,
            r.pr_state,
            r.pr_limit,
            r.round_since,
            r.high_water,
            r.keep_list_etag
        )
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn raise_high_water(
        &mut self,
        repo: &str,
        round: i64,
        newest: Option<&str>,
    ) -> Result<()> {
        sqlx::query!(
            r#"UPDATE repos
               SET round_high_water = GREATEST(coalesce(round_high_water, $1) COLLATE "C", $1)
               WHERE name = $2 AND round = $3 AND $1::text IS NOT NULL"#,
            newest,
            repo,
            round
        )
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn set_list_etag(
        &mut self,
        repo: &str,
        round: i64,
        etag: Option<&str>,
        token: Option<&str>,
        url: Option<&str>,
    ) -> Result<()> {
        sqlx::query!(
            "UPDATE repos SET list_etag = $1, list_etag_token = $2, list_etag_url = $3
             WHERE name = $4 AND round = $5",
            etag,
            token,
            url,
            repo,
            round
        )
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn learned_batch(&mut self, repo: &str) -> Result<Option<LearnedBatch>> {
        let row = sqlx::query!(
            "SELECT gql_batch, gql_streak, gql_ceiling FROM repos WHERE name = $1 FOR UPDATE",
            repo
        )
        .fetch_optional(&mut *self)
        .await?;
        Ok(row.map(|r| LearnedBatch {
            batch: r.gql_batch,
            streak: r.gql_streak,
            ceiling: r.gql_ceiling,
        }))
    }

    async fn set_learned_batch(
        &mut self,
        repo: &str,
        learned: LearnedBatch,
        timed_out: bool,
    ) -> Result<()> {
        let timeouts = i64::from(timed_out);
        sqlx::query!(
            "UPDATE repos SET gql_batch = $1, gql_streak = $2, gql_ceiling = $3,
                 gql_queries = gql_queries + 1, gql_timeouts = gql_timeouts + $4
             WHERE name = $5",
            learned.batch,
            learned.streak,
            learned.ceiling,
            timeouts,
            repo
        )
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn set_graphql(
        &mut self,
        api_url: &str,
        available: bool,
        reason: Option<&str>,
        now: i64,
    ) -> Result<()> {
        let graphql = if available { "yes" } else { "no" };
        sqlx::query!(
            "INSERT INTO api_servers (api_url, graphql, reason, checked_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (api_url) DO UPDATE SET graphql = $2, reason = $3, checked_at = $4",
            api_url,
            graphql,
            reason,
            now
        )
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn graphql_unavailable(&mut self) -> Result<Vec<(String, String, i64)>> {
        let rows = sqlx::query!(
            r#"SELECT api_url, reason AS "reason!", checked_at FROM api_servers
               WHERE graphql = 'no' AND reason IS NOT NULL ORDER BY api_url COLLATE "C""#
        )
        .fetch_all(&mut *self)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.api_url, r.reason, r.checked_at))
            .collect())
    }
}
