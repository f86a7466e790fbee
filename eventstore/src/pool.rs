//! Connecting to PostgreSQL and applying migrations.
//!
//! The pool does not ping a connection at every acquire (`test_before_acquire(false)`): a
//! measurement of the stock stack found that ping to be one of its extra round trips per
//! command. A broken connection still fails its query, and the caller retries.

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};
use std::str::FromStr;
use std::time::Duration;

/// The SQL migrations of `migrations/`, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// Opens a pool of at most `max_connections` on `database_url`.
///
/// # Errors
/// [`sqlx::Error`] when the URL is malformed or the server unreachable.
pub async fn connect(database_url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    let options = PgConnectOptions::from_str(database_url)?
        .log_statements(tracing::log::LevelFilter::Trace)
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500));
    pool_options(max_connections).connect_with(options).await
}

/// Pool settings shared by the server, the tools and the tests.
pub fn pool_options(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .test_before_acquire(false)
}

/// Creates the database named in `database_url` if it does not exist.
///
/// # Errors
/// [`sqlx::Error`] when the server cannot be reached.
pub async fn ensure_database(database_url: &str) -> Result<(), sqlx::Error> {
    use sqlx::migrate::MigrateDatabase;
    if !sqlx::Postgres::database_exists(database_url).await? {
        sqlx::Postgres::create_database(database_url).await?;
    }
    Ok(())
}

/// Applies the pending migrations.
///
/// # Errors
/// [`sqlx::migrate::MigrateError`] when a migration fails or an applied one was edited.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}
