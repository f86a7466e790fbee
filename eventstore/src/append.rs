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
    returning global_position, aggregate_type, aggregate_id, sequence
), recorded as (
    insert into commands (command_id, command_name, fingerprint, aggregate_type, aggregate_id,
                          first_position, last_position, event_count)
    select c.command_id, c.command_name, c.fingerprint, c.aggregate_type, c.aggregate_id,
           min(a.global_position), max(a.global_position), count(*)
    from unnest($10::uuid[], $11::text[], $12::text[], $13::text[], $14::text[],
                $15::bigint[], $16::bigint[])
             as c(command_id, command_name, fingerprint, aggregate_type, aggregate_id,
                  first_sequence, last_sequence)
    join appended a on a.aggregate_type = c.aggregate_type and a.aggregate_id = c.aggregate_id
                   and a.sequence between c.first_sequence and c.last_sequence
    group by c.command_id, c.command_name, c.fingerprint, c.aggregate_type, c.aggregate_id,
             c.first_sequence
    returning command_id, first_position, last_position, event_count
)
select command_id, first_position, last_position, event_count from recorded
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

/// Histogram of append latency, seconds, by `outcome` (`appended`, `conflict`, `error`):
/// one statement that inserts the events and the command records.
pub const APPEND_SECONDS: &str = "x8_append_seconds";

/// One command's part of an append: its events (consecutive sequences of one stream) and
/// the fingerprint its idempotency record keeps.
#[derive(Debug, Clone, Copy)]
pub struct CommandEvents<'a> {
    /// The events, each carrying the command's metadata ([`crate::metadata`] keys: the
    /// command id, name and tenant are read from the first).
    pub events: &'a [SerializedEvent],
    /// Hash of the command (see [`AppendScope::fingerprint`]).
    pub fingerprint: &'a str,
}

/// Appends one command's `events` (one stream, consecutive sequences) through the store's
/// writers ([`crate::writer`]), with the fingerprint of this task's [`APPEND_SCOPE`]; the
/// receipt also goes into the scope.
///
/// # Errors
/// As [`append_commands`].
pub(crate) async fn append(
    store: &crate::EventStore,
    events: &[SerializedEvent],
) -> Result<Option<AppendReceipt>, EventStoreError> {
    if events.is_empty() {
        return Ok(None);
    }
    // The load's connection goes back to the pool: a writer appends.
    drop(scoped_connection());
    let fingerprint = APPEND_SCOPE
        .try_with(|scope| scope.borrow().fingerprint.clone())
        .unwrap_or_default();
    let command = CommandEvents {
        events,
        fingerprint: &fingerprint,
    };
    let receipt = store.append(&[command]).await?.pop();
    let _ = APPEND_SCOPE.try_with(|scope| scope.borrow_mut().receipt = receipt.clone());
    Ok(receipt)
}

/// Appends the events of several commands, each on one stream with consecutive
/// sequences, and records every command, in **one statement**: all commit or none does
/// (group commit). Returns each non-empty command's receipt, in the order given. A command
/// without a command id in its metadata gets a generated one.
///
/// # Errors
/// [`EventStoreError::Conflict`] when a stream moved or a command id is recorded already
/// (or given twice); [`EventStoreError::Database`] otherwise.
pub(crate) async fn append_commands(
    pool: &sqlx::PgPool,
    commands: &[CommandEvents<'_>],
) -> Result<Vec<AppendReceipt>, EventStoreError> {
    let Some(first) = commands.iter().find_map(|c| c.events.first()) else {
        return Ok(Vec::new());
    };
    let stream = format!("{}/{}", first.aggregate_type, first.aggregate_id);
    let n: usize = commands.iter().map(|c| c.events.len()).sum();
    let mut ids = Vec::with_capacity(n);
    let mut types = Vec::with_capacity(n);
    let mut aggregate_ids = Vec::with_capacity(n);
    let mut sequences = Vec::with_capacity(n);
    let mut event_types = Vec::with_capacity(n);
    let mut versions = Vec::with_capacity(n);
    let mut tenants = Vec::with_capacity(n);
    let mut payloads = Vec::with_capacity(n);
    let mut metadatas = Vec::with_capacity(n);
    let mut command_ids = Vec::with_capacity(commands.len());
    let mut command_names = Vec::with_capacity(commands.len());
    let mut fingerprints = Vec::with_capacity(commands.len());
    let mut command_types = Vec::with_capacity(commands.len());
    let mut command_streams = Vec::with_capacity(commands.len());
    let mut first_sequences = Vec::with_capacity(commands.len());
    let mut last_sequences = Vec::with_capacity(commands.len());
    for command in commands {
        let (Some(first), Some(last)) = (command.events.first(), command.events.last()) else {
            continue;
        };
        let tenant_id = uuid_field(&first.metadata, TENANT_ID);
        command_ids.push(uuid_field(&first.metadata, COMMAND_ID).unwrap_or_else(Uuid::now_v7));
        command_names.push(
            first
                .metadata
                .get(COMMAND_NAME)
                .and_then(Value::as_str)
                .unwrap_or("unknown"),
        );
        fingerprints.push(command.fingerprint);
        command_types.push(first.aggregate_type.as_str());
        command_streams.push(first.aggregate_id.as_str());
        first_sequences.push(first.sequence as i64);
        last_sequences.push(last.sequence as i64);
        for event in command.events {
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
    }

    let query = sqlx::query_as::<_, (Uuid, i64, i64, i32)>(APPEND_SQL)
        .bind(&ids)
        .bind(&types)
        .bind(&aggregate_ids)
        .bind(&sequences)
        .bind(&event_types)
        .bind(&versions)
        .bind(&tenants)
        .bind(&payloads)
        .bind(&metadatas)
        .bind(&command_ids)
        .bind(&command_names)
        .bind(&fingerprints)
        .bind(&command_types)
        .bind(&command_streams)
        .bind(&first_sequences)
        .bind(&last_sequences);
    let started = std::time::Instant::now();
    let result = query.fetch_all(pool).await;
    let outcome = match &result {
        Ok(_) => "appended",
        Err(err) if is_conflict(err) => "conflict",
        Err(_) => "error",
    };
    metrics::histogram!(APPEND_SECONDS, "outcome" => outcome)
        .record(started.elapsed().as_secs_f64());
    let rows = result.map_err(|err| {
        if is_conflict(&err) {
            EventStoreError::Conflict { stream }
        } else {
            EventStoreError::Database(err)
        }
    })?;
    Ok(command_ids
        .iter()
        .map(|command_id| {
            let (_, first_position, last_position, event_count) = rows
                .iter()
                .find(|row| row.0 == *command_id)
                .copied()
                .unwrap_or((*command_id, 0, 0, 0));
            AppendReceipt {
                command_id: *command_id,
                first_position,
                last_position,
                event_count,
            }
        })
        .collect())
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
