//! What a read model implements to be fed by the runner.

use futures::future::BoxFuture;
use sqlx::PgConnection;
use x8_eventstore::RecordedEvent;

/// Why applying an event failed. The batch is rolled back and retried.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// The read model's SQL failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The event payload did not deserialise.
    #[error("event {event_id} ({event_type}): {source}")]
    Payload {
        /// The event.
        event_id: uuid::Uuid,
        /// Its type.
        event_type: String,
        /// The serde error.
        source: serde_json::Error,
    },
    /// Anything else (e.g. an injected failure in tests).
    #[error("{0}")]
    Other(String),
}

/// A read model fed from `$all`.
///
/// `apply` runs inside the batch's transaction; it must only write through `conn`, so the
/// batch and the checkpoint commit together. Events it does not care about are ignored.
pub trait Projection: Send + Sync + 'static {
    /// Stable name: the checkpoint row's key.
    fn name(&self) -> &'static str;

    /// Applies one event (already upcast) to the read model.
    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        event: &'a RecordedEvent,
    ) -> BoxFuture<'a, Result<(), ProjectionError>>;

    /// Applies the events of one batch, in order, as [`Self::apply`] does each (the
    /// default). A projection whose events update the same rows again and again (counters)
    /// overrides it to fold them in memory and write each row once per batch; the runner
    /// passes a business's erasure (`TenantErased`) only as the last event of a call, so
    /// the rows it then deletes are never written again by the same call.
    fn apply_batch<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        events: &'a [RecordedEvent],
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(async move {
            for event in events {
                self.apply(conn, event).await?;
            }
            Ok(())
        })
    }

    /// The read model's tables that hold a business's rows (each with a `tenant_id`
    /// column): when the business is erased (`TenantErased`, DOMAIN.md "Hard delete") the
    /// runner deletes its rows from them, in the batch that applies the event. Tables of
    /// anonymous aggregates, or of shared resources (the Meta app pool), are not listed.
    fn tenant_tables(&self) -> &'static [&'static str] {
        &[]
    }

    /// The read model's tables, parents before children (a child's foreign key points to
    /// a table listed before it). A rebuild builds fresh copies of them and swaps them in,
    /// and `x8-replay checksum` digests them. Empty for a projection whose table is not
    /// only derived data (the deadline schedule, which records what ran).
    fn tables(&self) -> &'static [&'static str];
}

/// Deserialises an event's payload into the domain event type `E`.
///
/// # Errors
/// [`ProjectionError::Payload`].
pub fn payload<E: serde::de::DeserializeOwned>(
    event: &RecordedEvent,
) -> Result<E, ProjectionError> {
    serde_json::from_value(event.payload.clone()).map_err(|source| ProjectionError::Payload {
        event_id: event.event_id,
        event_type: event.event_type.clone(),
        source,
    })
}

/// The event's stream id as a UUID (tenant, company, … streams are keyed by UUID).
///
/// # Errors
/// [`ProjectionError::Other`] naming the malformed id.
pub fn stream_uuid(event: &RecordedEvent) -> Result<uuid::Uuid, ProjectionError> {
    event.aggregate_id.parse().map_err(|_| {
        ProjectionError::Other(format!(
            "bad {} id {}",
            event.aggregate_type, event.aggregate_id
        ))
    })
}

/// The business an event erases: the stream id of a tenant's `TenantErased`.
pub fn erased_tenant(event: &RecordedEvent) -> Option<uuid::Uuid> {
    (event.aggregate_type == "tenant" && event.event_type == "TenantErased")
        .then(|| event.aggregate_id.parse().ok())
        .flatten()
}
