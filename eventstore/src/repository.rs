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

use crate::append::{append, write_snapshot};
use crate::error::EventStoreError;
use crate::stream::{read_stream, StreamRange};
use crate::EventStore;
use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::{Aggregate, EventEnvelope};
use serde_json::Value;

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
        let range = StreamRange {
            after_version: Some(last_sequence as i64),
            ..StreamRange::default()
        };
        let events = read_stream(self.store.pool(), A::TYPE, aggregate_id, range).await?;
        Ok(events.into_iter().map(Into::into).collect())
    }

    async fn get_snapshot<A: Aggregate>(
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

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        _snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        let (Some(first), Some(last)) = (events.first(), events.last()) else {
            return Ok(());
        };
        append(self.store.pool(), events).await?;
        self.store.signal().appended();
        let every = self.store.snapshot_every();
        let boundary = last.sequence / every * every;
        if boundary >= first.sequence && boundary > 0 {
            if let Err(err) = self.snapshot::<A>(&last.aggregate_id, boundary).await {
                tracing::warn!(aggregate_id = %last.aggregate_id, error = %err, "snapshot not written");
            }
        }
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
            "select {} from events where aggregate_type = $1 order by transaction_id, global_position",
            crate::all::COLUMNS
        ))
        .bind(A::TYPE)
        .fetch_all(self.store.pool())
        .await
        .map_err(EventStoreError::from)?;
        feed(rows.into_iter().map(Into::into).collect()).await
    }
}

impl PgEventRepository {
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
