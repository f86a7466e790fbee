//! Errors of the event store layer.

/// A failed event-store operation.
#[derive(Debug, thiserror::Error)]
pub enum EventStoreError {
    /// The stream moved past the expected version, or the command id is already recorded.
    #[error("expected version conflict on {stream}")]
    Conflict {
        /// `aggregate_type/aggregate_id`.
        stream: String,
    },
    /// A stored payload or metadata could not be (de)serialised.
    #[error("serialization: {0}")]
    Serialization(#[from] serde_json::Error),
    /// The database failed or is unreachable.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// Unique-constraint names whose violation means "someone else appended first".
pub(crate) const CONFLICT_CONSTRAINTS: [&str; 2] = ["events_stream_sequence_key", "commands_pkey"];

/// Whether `err` is a unique violation of one of [`CONFLICT_CONSTRAINTS`].
pub(crate) fn is_conflict(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => {
            db.is_unique_violation()
                && db
                    .constraint()
                    .is_some_and(|c| CONFLICT_CONSTRAINTS.contains(&c))
        }
        _ => false,
    }
}
