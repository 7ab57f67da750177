//! What seedq learned about an API server: whether it serves GraphQL. `work` records
//! it when it finds out (a 404 for the GraphQL endpoint, an answer that is not
//! GraphQL) and `status` shows it.

use super::{Result, Store};

/// Why GraphQL is not used on a server, and since when.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GraphqlUnavailable {
    pub reason: String,
    /// Epoch ms.
    pub checked_at: i64,
}

impl Store {
    /// Notes that `api_url`'s GraphQL cannot serve seedq, and why.
    pub async fn record_graphql_unavailable(
        &self,
        api_url: &str,
        reason: &str,
        now: i64,
    ) -> Result<()> {
        let mut tx = self.begin_immediate().await?;
        sqlx::query!(
            "INSERT INTO api_servers (api_url, graphql, reason, checked_at) VALUES (?1, 'no', ?2, ?3)
             ON CONFLICT (api_url) DO UPDATE SET graphql = 'no', reason = ?2, checked_at = ?3",
            api_url,
            reason,
            now
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Notes that `api_url` answered a GraphQL query.
    pub async fn record_graphql_available(&self, api_url: &str, now: i64) -> Result<()> {
        let mut tx = self.begin_immediate().await?;
        sqlx::query!(
            "INSERT INTO api_servers (api_url, graphql, reason, checked_at) VALUES (?1, 'yes', NULL, ?2)
             ON CONFLICT (api_url) DO UPDATE SET graphql = 'yes', reason = NULL, checked_at = ?2",
            api_url,
            now
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The servers found without GraphQL, by API URL.
    pub async fn graphql_unavailable(&self) -> Result<Vec<(String, GraphqlUnavailable)>> {
        let rows = sqlx::query!(
            r#"SELECT api_url, reason AS "reason!", checked_at FROM api_servers
               WHERE graphql = 'no' AND reason IS NOT NULL ORDER BY api_url"#
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let note = GraphqlUnavailable {
                    reason: r.reason,
                    checked_at: r.checked_at,
                };
                (r.api_url, note)
            })
            .collect())
    }
}
