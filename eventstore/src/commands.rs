//! The idempotency record: what an executed command appended, by command id.

use crate::append::AppendReceipt;
use crate::error::EventStoreError;
use sqlx::PgPool;
use uuid::Uuid;

/// A command recorded in the same statement as its events.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RecordedCommand {
    /// The command id.
    pub command_id: Uuid,
    /// Its name.
    pub command_name: String,
    /// Hash of name, stream and body (see `AppendScope::fingerprint`).
    pub fingerprint: String,
    /// The stream it appended to.
    pub aggregate_type: String,
    /// The stream it appended to.
    pub aggregate_id: String,
    /// Global position of its first event.
    pub first_position: i64,
    /// Global position of its last event.
    pub last_position: i64,
    /// How many events it appended.
    pub event_count: i32,
}

impl RecordedCommand {
    /// The receipt the first execution got.
    pub fn receipt(&self) -> AppendReceipt {
        AppendReceipt {
            command_id: self.command_id,
            first_position: self.first_position,
            last_position: self.last_position,
            event_count: self.event_count,
        }
    }
}

/// The recorded command `command_id`, if it ran.
///
/// # Errors
/// [`EventStoreError::Database`].
pub async fn find_command(
    pool: &PgPool,
    command_id: Uuid,
) -> Result<Option<RecordedCommand>, EventStoreError> {
    // language=PostgreSQL
    Ok(sqlx::query_as(
        "select command_id, command_name, fingerprint, aggregate_type, aggregate_id,
                first_position, last_position, event_count
         from commands where command_id = $1",
    )
    .bind(command_id)
    .fetch_optional(pool)
    .await?)
}
