//! Repositories' statements on SQLite: rounds, list marks, learned batch sizes, and
//! what API servers serve.

use crate::store::sql::{LearnedBatch, NewRound, RepoRound, RepoSql};
use crate::store::Result;
use sqlx::SqliteConnection;

impl RepoSql for SqliteConnection {
    async fn repo_round(&mut self, repo: &str) -> Result<Option<RepoRound>> {
        let row = sqlx::query!(
            "SELECT round, endpoints, since, pr_state, pr_limit, high_water, round_high_water
             FROM repos WHERE name = ?",
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
            r#"SELECT coalesce(sum(state IN ('queued', 'running')), 0) AS "pending!: i64",
                      coalesce(sum(state = 'failed'), 0) AS "failed!: i64"
               FROM job_queue WHERE repo = ? AND round = ?"#,
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
                                round_since, round_high_water, high_water, seq, priority)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL, ?9,
                     (SELECT coalesce(max(seq), 0) + 1 FROM repos), coalesce(?11, 0))
             ON CONFLICT (name) DO UPDATE SET endpoints = ?2, round = ?4, since = ?5,
                 pr_state = ?6, pr_limit = ?7, round_since = ?8, round_high_water = NULL,
                 high_water = ?9, seq = excluded.seq,
                 priority = coalesce(?11, repos.priority),
                 list_etag = CASE WHEN ?10 THEN list_etag END,
                 list_etag_token = CASE WHEN ?10 THEN list_etag_token END,
                 list_etag_url = CASE WHEN ?10 THEN list_etag_url END",
            r.repo,
            r.endpoints,
            r.now,
            r.round,
            r.since,
            r.pr_state,
            r.pr_limit,
            r.round_since,
            r.high_water,
            r.keep_list_etag,
            r.priority
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
            "UPDATE repos SET round_high_water = max(coalesce(round_high_water, ?1), ?1)
             WHERE name = ?2 AND round = ?3 AND ?1 IS NOT NULL",
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
            "UPDATE repos SET list_etag = ?1, list_etag_token = ?2, list_etag_url = ?3
             WHERE name = ?4 AND round = ?5",
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
            "SELECT gql_batch, gql_streak, gql_ceiling FROM repos WHERE name = ?",
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
            "UPDATE repos SET gql_batch = ?, gql_streak = ?, gql_ceiling = ?,
                 gql_queries = gql_queries + 1, gql_timeouts = gql_timeouts + ?
             WHERE name = ?",
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
            "INSERT INTO api_servers (api_url, graphql, reason, checked_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (api_url) DO UPDATE SET graphql = ?2, reason = ?3, checked_at = ?4",
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
               WHERE graphql = 'no' AND reason IS NOT NULL ORDER BY api_url"#
        )
        .fetch_all(&mut *self)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.api_url, r.reason, r.checked_at))
            .collect())
    }

    async fn set_priority(&mut self, repo: &str, priority: i64) -> Result<()> {
        sqlx::query!(
            // A job's place: 2 × (seq - priority × 2^32) + its kind's (see the migration).
            "UPDATE job_queue
             SET priority = priority
                 + 2 * ((SELECT priority FROM repos WHERE name = ?1) - ?2) * 4294967296
             WHERE repo = ?1 AND state IN ('queued', 'running')",
            repo,
            priority
        )
        .execute(&mut *self)
        .await?;
        sqlx::query!(
            "UPDATE repos SET priority = ? WHERE name = ?",
            priority,
            repo
        )
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn access(&mut self, repo: &str, token: &str) -> Result<Option<bool>> {
        Ok(sqlx::query_scalar!(
            r#"SELECT sees AS "sees: bool" FROM repo_access WHERE repo = ? AND token = ?"#,
            repo,
            token
        )
        .fetch_optional(&mut *self)
        .await?)
    }

    async fn record_access(
        &mut self,
        repo: &str,
        token: &str,
        sees: bool,
        error: Option<&str>,
        now: i64,
    ) -> Result<()> {
        sqlx::query!(
            "INSERT INTO repo_access (repo, token, sees, error, checked_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (repo, token) DO UPDATE SET sees = ?3, error = ?4, checked_at = ?5",
            repo,
            token,
            sees,
            error,
            now
        )
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn may_see(&mut self, repo: &str, fingerprints: &str) -> Result<(i64, i64)> {
        let row = sqlx::query!(
            r#"SELECT count(*) AS "valid!: i64",
                      coalesce(sum(NOT EXISTS (SELECT 1 FROM repo_access a
                                               WHERE a.repo = ?1 AND a.token = t.fingerprint
                                                 AND a.sees = 0)), 0) AS "may!: i64"
               FROM token_state t
               WHERE t.fingerprint IN (SELECT value FROM json_each(?2)) AND t.state <> 'invalid'"#,
            repo,
            fingerprints
        )
        .fetch_one(&mut *self)
        .await?;
        Ok((row.valid, row.may))
    }

    async fn set_listing(&mut self, name: &str, json: &str) -> Result<()> {
        sqlx::query!("UPDATE repos SET listing = ? WHERE name = ?", json, name)
            .execute(&mut *self)
            .await?;
        Ok(())
    }

    async fn listing_of(&mut self, name: &str) -> Result<Option<(String, i64)>> {
        let row = sqlx::query!(
            r#"SELECT listing AS "listing!", priority FROM repos
               WHERE name = ? AND listing IS NOT NULL"#,
            name
        )
        .fetch_optional(&mut *self)
        .await?;
        Ok(row.map(|r| (r.listing, r.priority)))
    }

    async fn forget_refusals(&mut self, repo: Option<&str>) -> Result<()> {
        sqlx::query!(
            "DELETE FROM repo_access WHERE sees = 0 AND (?1 IS NULL OR repo = ?1)",
            repo
        )
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn known_repos(&mut self, names: &str) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar!(
            "SELECT name FROM repos WHERE name IN (SELECT value FROM json_each(?)) ORDER BY name",
            names
        )
        .fetch_all(&mut *self)
        .await?)
    }
}
