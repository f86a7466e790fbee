//! Reading one stream: whole, after a version, up to a version or up to a time.

use crate::all::{RecordedEvent, COLUMNS};
use crate::error::EventStoreError;
use chrono::{DateTime, Utc};

/// Which part of a stream to read. The default is the whole stream.
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamRange {
    /// Only events with a sequence greater than this.
    pub after_version: Option<i64>,
    /// Only events with a sequence up to and including this.
    pub up_to_version: Option<i64>,
    /// Only events recorded at or before this time (an auditor's "as of").
    pub recorded_until: Option<DateTime<Utc>>,
}

/// The events of stream `aggregate_type/aggregate_id` in `range`, in sequence order.
///
/// # Errors
/// [`EventStoreError::Database`].
pub async fn read_stream(
    executor: impl sqlx::PgExecutor<'_>,
    aggregate_type: &str,
    aggregate_id: &str,
    range: StreamRange,
) -> Result<Vec<RecordedEvent>, EventStoreError> {
    // language=PostgreSQL
    let sql = format!(
        "select {COLUMNS} from events
         where aggregate_type = $1 and aggregate_id = $2
           and sequence > $3 and sequence <= $4 and recorded_at <= $5
         order by sequence"
    );
    Ok(sqlx::query_as(&sql)
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(range.after_version.unwrap_or(0))
        .bind(range.up_to_version.unwrap_or(i64::MAX))
        .bind(range.recorded_until.unwrap_or(DateTime::<Utc>::MAX_UTC))
        .fetch_all(executor)
        .await?)
}

/// Every event of the log, stream after stream (by aggregate type, then id), each stream in
/// sequence order: what a tool that replays every aggregate reads. Streamed from one
/// cursor, so memory stays at one row whatever the log's size.
///
/// Read it while nothing appends if every stream must be complete; an event committed
/// during the read appears or not depending on where the cursor is.
///
/// # Errors
/// Each item: [`EventStoreError::Database`].
pub fn every_stream(
    pool: &sqlx::PgPool,
) -> futures::stream::BoxStream<'_, Result<RecordedEvent, EventStoreError>> {
    use futures::StreamExt as _;
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        // language=PostgreSQL
        format!("select {COLUMNS} from events order by aggregate_type, aggregate_id, sequence")
    });
    sqlx::query_as(SQL.as_str())
        .fetch(pool)
        .map(|row| row.map_err(EventStoreError::from))
        .boxed()
}
