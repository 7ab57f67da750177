//! What seedq learned about an API server: whether it serves GraphQL. `work` records
//! it when it finds out (a 404 for the GraphQL endpoint, an answer that is not
//! GraphQL) and `status` shows it.

use super::db::{read, write_tx};
use super::sql::RepoSql;
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
        write_tx!(&self.db, |tx| {
            tx.set_graphql(api_url, false, Some(reason), now).await?
        });
        Ok(())
    }

    /// Notes that `api_url` answered a GraphQL query.
    pub async fn record_graphql_available(&self, api_url: &str, now: i64) -> Result<()> {
        write_tx!(&self.db, |tx| tx
            .set_graphql(api_url, true, None, now)
            .await?);
        Ok(())
    }

    /// The servers found without GraphQL, by API URL.
    pub async fn graphql_unavailable(&self) -> Result<Vec<(String, GraphqlUnavailable)>> {
        let rows = read!(&self.db, |c| c.graphql_unavailable().await?);
        Ok(rows
            .into_iter()
            .map(|(api_url, reason, checked_at)| {
                let note = GraphqlUnavailable { reason, checked_at };
                (api_url, note)
            })
            .collect())
    }
}
