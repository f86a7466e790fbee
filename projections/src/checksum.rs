//! Deterministic digests of read models, so a rebuild can be compared with the live model
//! (`x8-replay checksum`).
//!
//! A table's digest is the MD5 of the sorted MD5s of its rows' text forms (every column,
//! in column order), so it depends on the rows and nothing else: not on their physical
//! order, not on when or how often they were written. A projection's digest is the MD5 of
//! its tables' `name rows digest` lines, in [`Projection::tables`] order.

use crate::projection::Projection;
use sqlx::PgPool;

/// One table's digest.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableChecksum {
    /// The table.
    pub table: &'static str,
    /// Its rows.
    pub rows: i64,
    /// MD5 (hex) of the sorted MD5s of its rows.
    pub digest: String,
}

/// A projection's digest.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Checksum {
    /// The projection.
    pub projection: &'static str,
    /// MD5 (hex) over its tables' digests.
    pub digest: String,
    /// Each table's.
    pub tables: Vec<TableChecksum>,
}

/// Digests `projection`'s read model as it is now (see the module docs).
///
/// # Errors
/// [`sqlx::Error`] when a table cannot be read.
pub async fn checksum(pool: &PgPool, projection: &dyn Projection) -> Result<Checksum, sqlx::Error> {
    let mut tables = Vec::new();
    for &table in projection.tables() {
        // language=PostgreSQL
        let (rows, digest): (i64, String) = sqlx::query_as(&format!(
            r#"select count(*), md5(coalesce(string_agg(h, '' order by h), ''))
               from (select md5(t::text) as h from "{table}" t) rows"#
        ))
        .fetch_one(pool)
        .await?;
        tables.push(TableChecksum {
            table,
            rows,
            digest,
        });
    }
    let lines: String = tables
        .iter()
        .map(|t| format!("{} {} {}\n", t.table, t.rows, t.digest))
        .collect();
    // language=PostgreSQL
    let digest: String = sqlx::query_scalar("select md5($1)")
        .bind(lines)
        .fetch_one(pool)
        .await?;
    Ok(Checksum {
        projection: projection.name(),
        digest,
        tables,
    })
}
