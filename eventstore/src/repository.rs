//! cqrs-es's `PersistedEventRepository` over the X8 event log, so `CqrsFramework` works
//! unchanged while appends go through [`crate::append`].
//!
//! Snapshots are taken here, not by cqrs-es. cqrs-es 0.5 computes the snapshot state by
//! re-applying the new events to an aggregate that `EventSink::write` already applied them
//! to, so its snapshot payload counts every new event twice; and postgres-es 0.5 stores the
//! last event's sequence rather than the one the snapshot was taken at. So `persist` ignores
//! the payload cqrs-es hands over and, after a commit that crosses a multiple of N, builds
//! the state at that multiple from the previous snapshot and the stored events, and upserts
//! it (guarded so an older snapshot never replaces a newer one). A snapshot is only a cache:
//! failing to write one is logged, never an error. On load, a snapshot that no longer
//! deserialises is ignored by cqrs-es, which then replays the whole stream.

use crate::append::{
    append, keep_connection, scoped_connection, write_snapshot, AppendReceipt, CommandEvents,
    Preloaded, APPEND_SCOPE,
};
use crate::error::EventStoreError;
use crate::stream::{read_stream, StreamRange};
use crate::EventStore;
use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::{Aggregate, EventEnvelope};
use serde_json::Value;
use sqlx::{FromRow, Row as _};

/// The cqrs-es repository. Build it through [`EventStore::aggregate_store`] so its snapshot
/// interval matches the event store's.
#[derive(Clone)]
pub struct PgEventRepository {
    store: EventStore,
}

impl PgEventRepository {
    /// A repository over `store`.
    pub fn new(store: EventStore) -> Self {
        Self { store }
    }
}

impl From<EventStoreError> for PersistenceError {
    fn from(err: EventStoreError) -> Self {
        match err {
            EventStoreError::Conflict { .. } => PersistenceError::OptimisticLockError,
            EventStoreError::Serialization(e) => {
                PersistenceError::DeserializationError(Box::new(e))
            }
            EventStoreError::Database(e) => PersistenceError::ConnectionError(Box::new(e)),
        }
    }
}

impl PersistedEventRepository for PgEventRepository {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let events = read_stream(
            self.store.pool(),
            A::TYPE,
            aggregate_id,
            StreamRange::default(),
        )
        .await?;
        Ok(events.into_iter().map(Into::into).collect())
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        if let Some(events) = take_preloaded(A::TYPE, aggregate_id, last_sequence) {
            return Ok(events);
        }
        let range = StreamRange {
            after_version: Some(last_sequence as i64),
            ..StreamRange::default()
        };
        // A command holding its load's connection reads on it: never two at once.
        let events = match scoped_connection() {
            Some(mut connection) => {
                let events = read_stream(&mut *connection, A::TYPE, aggregate_id, range).await;
                keep_connection(connection);
                events?
            }
            None => read_stream(self.store.pool(), A::TYPE, aggregate_id, range).await?,
        };
        Ok(events.into_iter().map(Into::into).collect())
    }

    /// Inside a command (an [`APPEND_SCOPE`]), reads the snapshot **and** the events after
    /// it in one query and keeps the events for the `get_last_events` that follows, and the
    /// connection for the append: a command costs two round trips and one pool acquire.
    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        if APPEND_SCOPE.try_with(|_| ()).is_err() {
            return self.snapshot_only::<A>(aggregate_id).await;
        }
        let mut connection = self
            .store
            .pool()
            .acquire()
            .await
            .map_err(EventStoreError::from)?;
        let rows = sqlx::query(&LOAD_SQL)
            .bind(A::TYPE)
            .bind(aggregate_id)
            .fetch_all(&mut *connection)
            .await
            .map_err(EventStoreError::from)?;
        let mut snapshot = None;
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            let read = || -> Result<_, sqlx::Error> {
                let snapshot = match row.try_get::<Option<Value>, _>("snapshot")? {
                    Some(aggregate) => Some(SerializedSnapshot {
                        aggregate_id: aggregate_id.to_string(),
                        aggregate,
                        current_sequence: row.try_get::<i64, _>("snapshot_sequence")? as usize,
                        current_snapshot: row.try_get::<i64, _>("snapshot_version")? as usize,
                    }),
                    None => None,
                };
                let event = match row.try_get::<Option<i64>, _>("global_position")? {
                    Some(_) => Some(crate::RecordedEvent::from_row(row)?),
                    None => None,
                };
                Ok((snapshot, event))
            };
            let (row_snapshot, event) = read().map_err(EventStoreError::from)?;
            snapshot = snapshot.or(row_snapshot);
            events.extend(event.map(SerializedEvent::from));
        }
        let preloaded = Preloaded {
            aggregate_type: A::TYPE,
            aggregate_id: aggregate_id.to_string(),
            after_sequence: snapshot.as_ref().map_or(0, |s| s.current_sequence),
            events,
        };
        let _ = APPEND_SCOPE.try_with(|scope| scope.borrow_mut().preloaded = Some(preloaded));
        keep_connection(connection);
        Ok(snapshot)
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        _snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        let (Some(first), Some(last)) = (events.first(), events.last()) else {
            return Ok(());
        };
        append(&self.store, events).await?;
        self.appended::<A>(first, last).await;
        Ok(())
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        let events = self.get_events::<A>(aggregate_id).await?;
        feed(events).await
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        // language=PostgreSQL
        let rows: Vec<crate::RecordedEvent> = sqlx::query_as(&format!(
            "select {} from events where aggregate_type = $1 order by events.transaction_id, events.global_position",
            crate::all::COLUMNS
        ))
        .bind(A::TYPE)
        .fetch_all(self.store.pool())
        .await
        .map_err(EventStoreError::from)?;
        feed(rows.into_iter().map(Into::into).collect()).await
    }
}

/// A stream's snapshot and the events after it, in one query. The snapshot's payload rides
/// on the first row only (the row right after the snapshot, or the only row).
static LOAD_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    // language=PostgreSQL
    format!(
        "with s as (select payload, last_sequence, snapshot_version from snapshots
                    where aggregate_type = $1 and aggregate_id = $2)
         select case when e.sequence is null or e.sequence = coalesce(s.last_sequence, 0) + 1
                     then s.payload end as snapshot,
                s.last_sequence as snapshot_sequence, s.snapshot_version, e.*
         from (select 1) one
         left join s on true
         left join lateral (select {} from events
                            where aggregate_type = $1 and aggregate_id = $2
                              and sequence > coalesce(s.last_sequence, 0)) e on true
         order by e.sequence",
        crate::all::COLUMNS
    )
});

/// The events preloaded by `get_snapshot` for this stream and sequence, if any.
fn take_preloaded(
    aggregate_type: &str,
    aggregate_id: &str,
    after: usize,
) -> Option<Vec<SerializedEvent>> {
    APPEND_SCOPE
        .try_with(|scope| {
            let mut scope = scope.borrow_mut();
            match scope.preloaded.take() {
                Some(p)
                    if p.aggregate_type == aggregate_type
                        && p.aggregate_id == aggregate_id
                        && p.after_sequence == after =>
                {
                    Some(p.events)
                }
                _ => None,
            }
        })
        .ok()
        .flatten()
}

impl PgEventRepository {
    /// Appends several commands' events on one stream in one statement (group commit:
    /// [`append_commands`]), each command with its own idempotency record, then wakes the
    /// subscribers and writes the snapshot a crossed boundary asks for. Returns one receipt
    /// per command, in order. Every command must have at least one event.
    ///
    /// # Errors
    /// [`EventStoreError::Conflict`] when the stream moved or a command id is recorded
    /// already: nothing is appended; [`EventStoreError::Database`].
    pub async fn append_group<A: Aggregate>(
        &self,
        commands: &[CommandEvents<'_>],
    ) -> Result<Vec<AppendReceipt>, EventStoreError> {
        let receipts = self.store.append(commands).await?;
        let first = commands.iter().find_map(|c| c.events.first());
        let last = commands.iter().rev().find_map(|c| c.events.last());
        if let (Some(first), Some(last)) = (first, last) {
            self.appended::<A>(first, last).await;
        }
        Ok(receipts)
    }

    /// After a commit of the events `first..=last` of one stream: wakes the subscribers and
    /// writes the snapshot at the boundary the events crossed, if any.
    async fn appended<A: Aggregate>(&self, first: &SerializedEvent, last: &SerializedEvent) {
        self.store.signal().appended();
        let every = self.store.snapshot_every();
        let boundary = last.sequence / every * every;
        if boundary >= first.sequence && boundary > 0 {
            if let Err(err) = self.snapshot::<A>(&last.aggregate_id, boundary).await {
                tracing::warn!(aggregate_id = %last.aggregate_id, error = %err, "snapshot not written");
            }
        }
    }

    /// The snapshot alone (outside a command).
    async fn snapshot_only<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        // language=PostgreSQL
        let row: Option<(Value, i64, i64)> = sqlx::query_as(
            "select payload, last_sequence, snapshot_version from snapshots
             where aggregate_type = $1 and aggregate_id = $2",
        )
        .bind(A::TYPE)
        .bind(aggregate_id)
        .fetch_optional(self.store.pool())
        .await
        .map_err(EventStoreError::from)?;
        Ok(
            row.map(|(aggregate, last_sequence, version)| SerializedSnapshot {
                aggregate_id: aggregate_id.to_string(),
                aggregate,
                current_sequence: last_sequence as usize,
                current_snapshot: version as usize,
            }),
        )
    }

    /// Writes the snapshot of `aggregate_id` at sequence `at`: the previous snapshot (if it
    /// still deserialises) plus the events after it up to `at`.
    async fn snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
        at: usize,
    ) -> Result<(), PersistenceError> {
        let (mut state, mut version, from) = match self.get_snapshot::<A>(aggregate_id).await? {
            Some(s) if s.current_sequence < at => match serde_json::from_value::<A>(s.aggregate) {
                Ok(state) => (state, s.current_snapshot, s.current_sequence),
                Err(_) => (A::default(), s.current_snapshot, 0),
            },
            Some(_) => return Ok(()),
            None => (A::default(), 0, 0),
        };
        let range = StreamRange {
            after_version: Some(from as i64),
            up_to_version: Some(at as i64),
            ..StreamRange::default()
        };
        let upcasters = self.store.upcasters();
        for event in read_stream(self.store.pool(), A::TYPE, aggregate_id, range).await? {
            let envelope =
                EventEnvelope::<A>::try_from(SerializedEvent::from(event.upcast(&upcasters)))?;
            state.apply(envelope.payload);
        }
        version += 1;
        write_snapshot(
            self.store.pool(),
            A::TYPE,
            aggregate_id,
            at as i64,
            version as i64,
            &serde_json::to_value(&state)?,
        )
        .await?;
        Ok(())
    }
}

async fn feed(events: Vec<SerializedEvent>) -> Result<ReplayStream, PersistenceError> {
    let (mut feed, stream) = ReplayStream::new(events.len().max(1));
    for event in events {
        feed.push(Ok(event)).await?;
    }
    Ok(stream)
}
