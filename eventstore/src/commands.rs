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

/// The fingerprint an erased business's recorded commands keep: a retry of one of them is
/// refused as a reused key (the business takes no commands anyway).
pub const ERASED_FINGERPRINT: &str = "erased";

/// Forgets what the event log's side tables could still tell about an erased business
/// (DOMAIN.md "Hard delete"): the fingerprints of its recorded commands (hashes of request
/// bodies, e.g. a registration's name and e-mail, guessable by trying values) become
/// [`ERASED_FINGERPRINT`], and its streams' snapshots (a cache of state) are deleted.
/// Commands correlated with `keep` (the erasure's own steps, which it may replay after a
/// crash) keep theirs. The events are untouched. Returns the rows changed.
///
/// # Errors
/// [`EventStoreError::Database`].
pub async fn forget_tenant(
    pool: &PgPool,
    tenant_id: Uuid,
    keep: Uuid,
) -> Result<u64, EventStoreError> {
    let mut tx = pool.begin().await?;
    // language=PostgreSQL
    let scrubbed = sqlx::query(
        "update commands c set fingerprint = $3
         from events e
         where e.global_position = c.first_position and e.tenant_id = $1
           and e.metadata ->> 'correlation_id' is distinct from $2::text
           and c.fingerprint <> $3",
    )
    .bind(tenant_id)
    .bind(keep.to_string())
    .bind(ERASED_FINGERPRINT)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    // language=PostgreSQL
    let dropped = sqlx::query(
        "delete from snapshots s
         using (select distinct aggregate_type, aggregate_id from events where tenant_id = $1) t
         where s.aggregate_type = t.aggregate_type and s.aggregate_id = t.aggregate_id",
    )
    .bind(tenant_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(scrubbed + dropped)
}
