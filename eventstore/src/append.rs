//! The append: a command's events and its idempotency record, all-or-nothing, optimistic on
//! the stream's expected version.
//!
//! It is **one statement, one round trip**: the events go in through
//! `unnest` of arrays and the `commands` row is inserted by a data-modifying CTE over the
//! inserted rows, so both commit together or not at all. The expected version is enforced by
//! the unique `(aggregate_type, aggregate_id, sequence)`: a writer that loaded an older
//! version collides on the next sequence and gets [`EventStoreError::Conflict`].

use crate::error::{is_conflict, EventStoreError};
use crate::metadata::{uuid_field, COMMAND_ID, COMMAND_NAME, TENANT_ID};
use cqrs_es::persist::SerializedEvent;
use serde_json::Value;
use std::cell::RefCell;
use uuid::Uuid;

/// What an append wrote: the command it recorded and the global positions of its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendReceipt {
    /// The recorded command id.
    pub command_id: Uuid,
    /// Global position of the first event.
    pub first_position: i64,
    /// Global position of the last event (what read-your-writes waits for).
    pub last_position: i64,
    /// Number of events appended.
    pub event_count: i32,
}

/// Per-command context handed from the command layer to the repository through a task
/// local, because cqrs-es's `persist` signature has no room for it.
#[derive(Debug, Default)]
pub struct AppendScope {
    /// Fingerprint of the command (hash of its name, stream and body), stored with the
    /// idempotency record so a reused key with a different command is detected.
    pub fingerprint: String,
    /// Filled by the repository after a successful append.
    pub receipt: Option<AppendReceipt>,
    /// Events read together with the snapshot (one round trip), kept for the
    /// `get_last_events` call cqrs-es makes right after `get_snapshot`.
    pub(crate) preloaded: Option<Preloaded>,
    /// The connection the load used, kept for the append: one pool acquire per command.
    /// Dropped (back to the pool) with the scope when the command is refused.
    pub(crate) connection: Option<sqlx::pool::PoolConnection<sqlx::Postgres>>,
}

impl AppendScope {
    /// The scope of one command execution with the command's fingerprint.
    pub fn new(fingerprint: String) -> Self {
        Self {
            fingerprint,
            ..Self::default()
        }
    }
}

/// Takes the connection this command's load left in its [`APPEND_SCOPE`], if any.
pub(crate) fn scoped_connection() -> Option<sqlx::pool::PoolConnection<sqlx::Postgres>> {
    APPEND_SCOPE
        .try_with(|scope| scope.borrow_mut().connection.take())
        .ok()
        .flatten()
}

/// Puts a connection back into this command's [`APPEND_SCOPE`] for its next statement.
pub(crate) fn keep_connection(connection: sqlx::pool::PoolConnection<sqlx::Postgres>) {
    let _ = APPEND_SCOPE.try_with(|scope| scope.borrow_mut().connection = Some(connection));
}

/// The events after a snapshot, read in the same query as the snapshot.
#[derive(Debug)]
pub(crate) struct Preloaded {
    pub aggregate_type: &'static str,
    pub aggregate_id: String,
    pub after_sequence: usize,
    pub events: Vec<SerializedEvent>,
}

tokio::task_local! {
    /// The [`AppendScope`] of the command being executed on this task, if any.
    pub static APPEND_SCOPE: RefCell<AppendScope>;
}

// language=PostgreSQL
const APPEND_SQL: &str = r#"
with appended as (
    insert into events (event_id, aggregate_type, aggregate_id, sequence, event_type,
                        event_version, tenant_id, payload, metadata)
    select * from unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[], $5::text[],
                         $6::text[], $7::uuid[], $8::jsonb[], $9::jsonb[])
    returning global_position
), recorded as (
    insert into commands (command_id, command_name, fingerprint, aggregate_type, aggregate_id,
                          first_position, last_position, event_count)
    select $10, $11, $12, $2[1], $3[1], min(global_position), max(global_position), count(*)
    from appended
    returning first_position, last_position, event_count
)
select first_position, last_position, event_count from recorded
"#;

// language=PostgreSQL
const SNAPSHOT_SQL: &str = r#"
insert into snapshots (aggregate_type, aggregate_id, last_sequence, snapshot_version, payload)
values ($1, $2, $3, $4, $5)
on conflict (aggregate_type, aggregate_id) do update
    set last_sequence = excluded.last_sequence,
        snapshot_version = excluded.snapshot_version,
        payload = excluded.payload,
        recorded_at = now()
    where snapshots.last_sequence < excluded.last_sequence
"#;

/// Appends `events` (one stream, consecutive sequences).
///
/// The command id, command name and tenant are read from the first event's metadata
/// ([`crate::metadata`] keys); a missing command id is generated.
///
/// # Errors
/// [`EventStoreError::Conflict`] when the stream moved or the command id is recorded
/// already; [`EventStoreError::Database`] otherwise.
/// Histogram of append latency, seconds, by `outcome` (`appended`, `conflict`, `error`):
/// one statement that inserts the events and the command record.
pub const APPEND_SECONDS: &str = "x8_append_seconds";

pub(crate) async fn append(
    pool: &sqlx::PgPool,
    events: &[SerializedEvent],
) -> Result<Option<AppendReceipt>, EventStoreError> {
    let Some(first) = events.first() else {
        return Ok(None);
    };
    let stream = format!("{}/{}", first.aggregate_type, first.aggregate_id);
    let command_id = uuid_field(&first.metadata, COMMAND_ID).unwrap_or_else(Uuid::now_v7);
    let command_name = first
        .metadata
        .get(COMMAND_NAME)
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_string();
    let tenant_id = uuid_field(&first.metadata, TENANT_ID);
    let fingerprint = APPEND_SCOPE
        .try_with(|scope| scope.borrow().fingerprint.clone())
        .unwrap_or_default();

    let n = events.len();
    let mut ids = Vec::with_capacity(n);
    let mut types = Vec::with_capacity(n);
    let mut aggregate_ids = Vec::with_capacity(n);
    let mut sequences = Vec::with_capacity(n);
    let mut event_types = Vec::with_capacity(n);
    let mut versions = Vec::with_capacity(n);
    let mut tenants = Vec::with_capacity(n);
    let mut payloads = Vec::with_capacity(n);
    let mut metadatas = Vec::with_capacity(n);
    for event in events {
        ids.push(Uuid::now_v7());
        types.push(event.aggregate_type.as_str());
        aggregate_ids.push(event.aggregate_id.as_str());
        sequences.push(event.sequence as i64);
        event_types.push(event.event_type.as_str());
        versions.push(event.event_version.as_str());
        tenants.push(tenant_id);
        payloads.push(&event.payload);
        metadatas.push(&event.metadata);
    }

    let query = sqlx::query_as::<_, (i64, i64, i32)>(APPEND_SQL)
        .bind(&ids)
        .bind(&types)
        .bind(&aggregate_ids)
        .bind(&sequences)
        .bind(&event_types)
        .bind(&versions)
        .bind(&tenants)
        .bind(&payloads)
        .bind(&metadatas)
        .bind(command_id)
        .bind(&command_name)
        .bind(&fingerprint);
    let started = std::time::Instant::now();
    let result = match scoped_connection() {
        Some(mut connection) => query.fetch_one(&mut *connection).await,
        None => query.fetch_one(pool).await,
    };
    let outcome = match &result {
        Ok(_) => "appended",
        Err(err) if is_conflict(err) => "conflict",
        Err(_) => "error",
    };
    metrics::histogram!(APPEND_SECONDS, "outcome" => outcome)
        .record(started.elapsed().as_secs_f64());
    let (first_position, last_position, event_count) = result.map_err(|err| {
        if is_conflict(&err) {
            EventStoreError::Conflict { stream }
        } else {
            EventStoreError::Database(err)
        }
    })?;
    let receipt = AppendReceipt {
        command_id,
        first_position,
        last_position,
        event_count,
    };
    let _ = APPEND_SCOPE.try_with(|scope| scope.borrow_mut().receipt = Some(receipt.clone()));
    Ok(Some(receipt))
}

/// Upserts the snapshot of a stream taken at `last_sequence`, unless a newer one exists.
///
/// # Errors
/// [`EventStoreError::Database`].
pub(crate) async fn write_snapshot(
    pool: &sqlx::PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
    last_sequence: i64,
    snapshot_version: i64,
    payload: &Value,
) -> Result<(), EventStoreError> {
    sqlx::query(SNAPSHOT_SQL)
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(last_sequence)
        .bind(snapshot_version)
        .bind(payload)
        .execute(pool)
        .await?;
    Ok(())
}
