//! What the benchmarks (`tests/benches/`) share: their databases on DATABASE_URL's server
//! and stock postgres-es's schema.

use sqlx::PgPool;

/// DATABASE_URL, or the local server's `postgres` database.
pub fn server_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// DATABASE_URL with its database replaced by `name`, query string (e.g. a Unix socket
/// `?host=/var/run/postgresql`) kept.
pub fn database_url(name: &str) -> String {
    let server = server_url();
    let (path, query) = server
        .split_once('?')
        .map_or((server.as_str(), None), |(p, q)| (p, Some(q)));
    let base = path.rsplit_once('/').map_or(path, |(base, _)| base);
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

/// Drops database `name` if it exists and creates it empty.
///
/// # Errors
/// [`sqlx::Error`] when the server refuses.
pub async fn fresh_database(name: &str) -> Result<(), sqlx::Error> {
    let admin = PgPool::connect(&server_url()).await?;
    sqlx::query(&format!("drop database if exists {name} with (force)"))
        .execute(&admin)
        .await?;
    sqlx::query(&format!("create database {name}"))
        .execute(&admin)
        .await?;
    admin.close().await;
    Ok(())
}

/// Creates postgres-es 0.5's own schema (`db/init.sql` of the crate) in `pool`'s database.
///
/// # Errors
/// [`sqlx::Error`].
pub async fn postgres_es_schema(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(
        "create table events (aggregate_type text not null, aggregate_id text not null,
             sequence bigint check (sequence >= 0) not null, event_type text not null,
             event_version text not null, payload json not null, metadata json not null,
             primary key (aggregate_type, aggregate_id, sequence));
         create table snapshots (aggregate_type text not null, aggregate_id text not null,
             last_sequence bigint check (last_sequence >= 0) not null,
             current_snapshot bigint check (current_snapshot >= 0) not null,
             payload json not null, primary key (aggregate_type, aggregate_id, last_sequence));",
    )
    .execute(pool)
    .await?;
    Ok(())
}
