//! Reading `$all`: every committed event exactly once, in one order all readers agree on,
//! while any number of writers commit concurrently.
//!
//! `global_position` comes from a sequence at insert time, so a transaction holding position
//! 10 may commit after one holding 11: a reader that went past 11 would never see 10. Readers
//! therefore order by `(transaction_id, global_position)` and read only below the **read
//! horizon** `pg_snapshot_xmin(pg_current_snapshot())`: every transaction with a smaller id
//! has committed or aborted, so nothing new can appear behind a checkpoint. A long-open
//! transaction holds the horizon back (readers wait); it never makes them skip. This is the
//! technique of Emmett and eugene-khyst/postgresql-event-sourcing.
//!
//! Transaction ids are cluster-wide: an open transaction in any database of the cluster
//! holds the horizon back. Keep the event store on a cluster without long transactions.

use crate::error::EventStoreError;
use chrono::{DateTime, Utc};
use cqrs_es::persist::SerializedEvent;
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

/// The columns of [`RecordedEvent`], for `select` lists.
pub(crate) const COLUMNS: &str =
    "global_position, transaction_id::text::bigint as transaction_id, \
    event_id, aggregate_type, aggregate_id, sequence, event_type, event_version, tenant_id, \
    payload, metadata, recorded_at";

/// A position in `$all`: the `(transaction_id, global_position)` of the last event read.
/// [`Checkpoint::START`] is before every event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Checkpoint {
    /// The writing transaction's id (`xid8`, epoch-extended, so it never wraps).
    pub transaction_id: i64,
    /// The event's global position.
    pub global_position: i64,
}

impl Checkpoint {
    /// Before the first event.
    pub const START: Checkpoint = Checkpoint {
        transaction_id: 0,
        global_position: 0,
    };
}

/// An event as stored, with its place in the log.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, Serialize)]
pub struct RecordedEvent {
    /// Position in the global sequence (assigned at insert; not commit order).
    pub global_position: i64,
    /// The id of the transaction that appended it.
    pub transaction_id: i64,
    /// The event's own id (UUID v7).
    pub event_id: Uuid,
    /// Stream: aggregate type, e.g. `tenant`.
    pub aggregate_type: String,
    /// Stream: aggregate id.
    pub aggregate_id: String,
    /// Version of the stream after this event (1-based).
    pub sequence: i64,
    /// Event type, e.g. `ManagerAssigned`.
    pub event_type: String,
    /// Payload version, e.g. `2.0`.
    pub event_version: String,
    /// The owning tenant, if any.
    pub tenant_id: Option<Uuid>,
    /// The event body (externally tagged enum JSON).
    pub payload: Value,
    /// See [`crate::metadata`].
    pub metadata: Value,
    /// When it was appended (UTC).
    pub recorded_at: DateTime<Utc>,
}

impl RecordedEvent {
    /// This event's place in `$all`.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            transaction_id: self.transaction_id,
            global_position: self.global_position,
        }
    }

    /// Applies matching upcasters to the payload, in order.
    pub fn upcast(mut self, upcasters: &[Box<dyn cqrs_es::persist::EventUpcaster>]) -> Self {
        for upcaster in upcasters {
            if upcaster.can_upcast(&self.event_type, &self.event_version) {
                let upcast = upcaster.upcast(SerializedEvent::from(self.clone()));
                self.payload = upcast.payload;
                self.event_version = upcast.event_version;
            }
        }
        self
    }
}

impl From<RecordedEvent> for SerializedEvent {
    fn from(e: RecordedEvent) -> Self {
        SerializedEvent::new(
            e.aggregate_id,
            e.sequence as usize,
            e.aggregate_type,
            e.event_type,
            e.event_version,
            e.payload,
            e.metadata,
        )
    }
}

/// Which events of `$all` to read.
#[derive(Debug, Clone, Default)]
pub struct AllFilter {
    /// Only this tenant's events.
    pub tenant_id: Option<Uuid>,
    /// Only these event types.
    pub event_types: Option<Vec<String>>,
}

/// One batch of `$all`.
#[derive(Debug, Clone, Default)]
pub struct AllBatch {
    /// Events after the checkpoint and below the read horizon, in order.
    pub events: Vec<RecordedEvent>,
    /// Whether committed-or-not events exist past the horizon (a writer is still open):
    /// read again shortly rather than waiting for the next append signal.
    pub held_by_horizon: bool,
}

/// Reads up to `limit` events of `$all` after `after`, matching `filter`.
///
/// # Errors
/// [`EventStoreError::Database`].
pub async fn read_all(
    executor: impl sqlx::PgExecutor<'_>,
    after: Checkpoint,
    limit: i64,
    filter: &AllFilter,
) -> Result<AllBatch, EventStoreError> {
    // Only the parameters a filter uses are bound, so each shape gets its own plan (and
    // the tenant or type index) instead of one generic plan with `$4 is null or ...`.
    let mut conditions = String::new();
    let mut next = 4;
    if filter.tenant_id.is_some() {
        conditions.push_str(&format!(" and tenant_id = ${next}"));
        next += 1;
    }
    if filter.event_types.is_some() {
        conditions.push_str(&format!(" and event_type = any(${next})"));
    }
    // language=PostgreSQL
    let sql = format!(
        "select {COLUMNS}, transaction_id < pg_snapshot_xmin(pg_current_snapshot()) as below_horizon
         from events
         where (transaction_id, global_position) > ($1::text::xid8, $2){conditions}
         order by events.transaction_id, events.global_position
         limit $3"
    );
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        event: RecordedEvent,
        below_horizon: bool,
    }
    let mut query = sqlx::query_as::<_, Row>(&sql)
        .bind(after.transaction_id.to_string())
        .bind(after.global_position)
        .bind(limit);
    if let Some(tenant_id) = filter.tenant_id {
        query = query.bind(tenant_id);
    }
    if let Some(types) = &filter.event_types {
        query = query.bind(types);
    }
    let rows = query.fetch_all(executor).await?;
    let held_by_horizon = rows.iter().any(|r| !r.below_horizon);
    let events = rows
        .into_iter()
        .take_while(|r| r.below_horizon)
        .map(|r| r.event)
        .collect();
    Ok(AllBatch {
        events,
        held_by_horizon,
    })
}

/// The checkpoint of the event at `global_position`, or `None` if there is none.
///
/// # Errors
/// [`EventStoreError::Database`].
pub async fn checkpoint_of(
    pool: &PgPool,
    global_position: i64,
) -> Result<Option<Checkpoint>, EventStoreError> {
    // language=PostgreSQL
    let row: Option<(i64,)> = sqlx::query_as(
        "select transaction_id::text::bigint from events where global_position = $1",
    )
    .bind(global_position)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(transaction_id,)| Checkpoint {
        transaction_id,
        global_position,
    }))
}

/// The event at `global_position`, if any.
///
/// # Errors
/// [`EventStoreError::Database`].
pub async fn event_at(
    pool: &PgPool,
    global_position: i64,
) -> Result<Option<RecordedEvent>, EventStoreError> {
    // language=PostgreSQL
    Ok(sqlx::query_as(&format!(
        "select {COLUMNS} from events where global_position = $1"
    ))
    .bind(global_position)
    .fetch_optional(pool)
    .await?)
}
