//! `copy-to`'s statements on SQLite: rows as `json_object`s, inserted from `json_each`.

use crate::store::sql::{CopiedTable, CopySql};
use crate::store::Result;
use sqlx::SqliteConnection;

impl CopySql for SqliteConnection {
    async fn columns(&mut self, table: &str) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT name FROM pragma_table_info(?) ORDER BY cid")
                .bind(table)
                .fetch_all(&mut *self)
                .await?,
        )
    }

    async fn begin_snapshot(&mut self) -> Result<()> {
        // A deferred transaction's first read fixes its snapshot (WAL mode).
        sqlx::query("BEGIN").execute(&mut *self).await?;
        Ok(())
    }

    async fn end_snapshot(&mut self) -> Result<()> {
        sqlx::query("COMMIT").execute(&mut *self).await?;
        Ok(())
    }

    async fn rows_json(
        &mut self,
        table: &CopiedTable,
        columns: &[String],
        limit: i64,
        offset: i64,
    ) -> Result<Vec<String>> {
        let fields: Vec<String> = columns.iter().map(|c| format!("'{c}', \"{c}\"")).collect();
        let sql = format!(
            "SELECT json_object({}) FROM \"{}\" ORDER BY {} LIMIT ? OFFSET ?",
            fields.join(", "),
            table.name,
            table.key
        );
        Ok(sqlx::query_scalar(&sql)
            .bind(limit)
            .bind(offset)
            .fetch_all(&mut *self)
            .await?)
    }

    async fn insert_json(
        &mut self,
        table: &CopiedTable,
        columns: &[String],
        rows: &str,
    ) -> Result<u64> {
        let names: Vec<String> = columns.iter().map(|c| format!("\"{c}\"")).collect();
        let values: Vec<String> = columns
            .iter()
            .map(|c| format!("json_extract(value, '$.{c}')"))
            .collect();
        let sql = format!(
            "INSERT INTO \"{}\" ({}) SELECT {} FROM json_each(?) ORDER BY key",
            table.name,
            names.join(", "),
            values.join(", ")
        );
        let done = sqlx::query(&sql).bind(rows).execute(&mut *self).await?;
        Ok(done.rows_affected())
    }

    async fn after_copy(&mut self) -> Result<()> {
        // An INTEGER PRIMARY KEY goes on from the largest id there.
        Ok(())
    }
}
