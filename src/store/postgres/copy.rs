//! `copy-to`'s statements on PostgreSQL: rows as `row_to_json`, inserted through
//! `jsonb_populate_recordset`, which gives each value its column's type.

use crate::store::sql::{CopiedTable, CopySql};
use crate::store::Result;
use sqlx::PgConnection;

impl CopySql for PgConnection {
    async fn columns(&mut self, table: &str) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT column_name::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1
             ORDER BY ordinal_position",
        )
        .bind(table)
        .fetch_all(&mut *self)
        .await?)
    }

    async fn begin_snapshot(&mut self) -> Result<()> {
        sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut *self)
            .await?;
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
        let names: Vec<String> = columns.iter().map(|c| format!("\"{c}\"")).collect();
        // Text keys in byte order, as SQLite orders them (numbers have no collation).
        let text: Vec<String> = sqlx::query_scalar(
            "SELECT column_name::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1
               AND data_type IN ('text', 'character varying')",
        )
        .bind(table.name)
        .fetch_all(&mut *self)
        .await?;
        let key: Vec<String> = table
            .key
            .split(", ")
            .map(|k| match text.iter().any(|t| t == k) {
                true => format!("\"{k}\" COLLATE \"C\""),
                false => format!("\"{k}\""),
            })
            .collect();
        let sql = format!(
            "SELECT row_to_json(r)::text FROM (SELECT {} FROM \"{}\" ORDER BY {} LIMIT $1 OFFSET $2) r",
            names.join(", "),
            table.name,
            key.join(", ")
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
        let names = names.join(", ");
        let sql = format!(
            "INSERT INTO \"{0}\" ({1}) SELECT {1} FROM jsonb_populate_recordset(NULL::\"{0}\", $1::jsonb)",
            table.name, names
        );
        let done = sqlx::query(&sql).bind(rows).execute(&mut *self).await?;
        Ok(done.rows_affected())
    }

    async fn after_copy(&mut self) -> Result<()> {
        sqlx::query(
            "SELECT setval(pg_get_serial_sequence('job_queue', 'id'),
                           coalesce((SELECT max(id) FROM job_queue), 0) + 1, false)",
        )
        .execute(&mut *self)
        .await?;
        Ok(())
    }
}
