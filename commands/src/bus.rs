//! The command bus: load, decide, append, through cqrs-es, made idempotent and retried.
//!
//! - **Idempotency.** The command id is recorded in the append's own statement. Before
//!   executing a command whose id the client chose, the bus looks for the record and returns
//!   the first execution's outcome. Two concurrent executions of one id collide on the
//!   record (or the loser is refused by the state the winner made); either way the loser
//!   re-reads the record and returns the same outcome.
//! - **Conflicts.** An expected-version conflict reloads and re-decides, at most
//!   [`MAX_ATTEMPTS`] times with a short jittered back-off, then [`CommandError::Conflict`].
//! - A command that appends nothing (already in the asked-for state) is not recorded.
//! - **Hot aggregates.** Within one process, commands on the same stream take turns
//!   ([`StreamLocks`]) instead of racing to a conflict; across processes the expected
//!   version still decides.

use crate::context::CommandContext;
use crate::error::CommandError;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateError, CqrsFramework, EventStore as _};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::time::Duration;
use uuid::Uuid;
use x8_eventstore::append::{AppendReceipt, AppendScope, APPEND_SCOPE};
use x8_eventstore::commands::find_command;
use x8_eventstore::{EventMetadata, EventStore, PgEventRepository};

/// Executions of one command before giving up on conflicts.
pub const MAX_ATTEMPTS: usize = 8;

/// A command whose name is recorded with its events.
pub trait NamedCommand: Serialize {
    /// E.g. `AssignManager`.
    fn command_name(&self) -> &'static str;
    /// The tenant that owns the stream `aggregate_id`, if any (stored with every event).
    fn tenant_id(&self, aggregate_id: &str) -> Option<Uuid>;
}

/// What a successful command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutcome {
    /// The command id.
    pub command_id: Uuid,
    /// The stream's aggregate id.
    pub aggregate_id: String,
    /// The append, or `None` when the command changed nothing.
    pub receipt: Option<AppendReceipt>,
    /// Whether this is the recorded outcome of an earlier execution of the same id.
    pub replayed: bool,
}

impl CommandOutcome {
    /// Global position of the last appended event, for read-your-writes (0 if none).
    pub fn position(&self) -> i64 {
        self.receipt.as_ref().map_or(0, |r| r.last_position)
    }
}

/// Striped async locks over stream ids: commands on one stream take turns within a
/// process. 1,024 stripes keep unrelated streams from waiting on each other in practice,
/// with memory bounded and nothing to clean up. Holds no state: after a restart there is
/// nothing to recover.
pub struct StreamLocks {
    stripes: Vec<tokio::sync::Mutex<()>>,
}

impl StreamLocks {
    const STRIPES: usize = 1024;

    fn new() -> Self {
        Self {
            stripes: (0..Self::STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }

    /// Waits for the turn of stream `aggregate_id`.
    async fn lock(&self, aggregate_id: &str) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        aggregate_id.hash(&mut hasher);
        self.stripes[hasher.finish() as usize % Self::STRIPES]
            .lock()
            .await
    }
}

/// Executes commands of aggregate `A`.
pub struct CommandBus<A: Aggregate<Services = ()>> {
    cqrs: CqrsFramework<A, PersistedEventStore<PgEventRepository, A>>,
    loader: PersistedEventStore<PgEventRepository, A>,
    store: EventStore,
    locks: StreamLocks,
}

impl<A> CommandBus<A>
where
    A: Aggregate<Services = ()> + 'static,
    A::Command: NamedCommand,
{
    /// A bus over `store` (with the store's snapshots and upcasters).
    pub fn new(store: &EventStore) -> Self {
        Self {
            cqrs: CqrsFramework::new(store.aggregate_store::<A>(), vec![], ()),
            loader: store.aggregate_store::<A>(),
            store: store.clone(),
            locks: StreamLocks::new(),
        }
    }

    /// The current state of `aggregate_id` (the default state for an empty stream).
    ///
    /// # Errors
    /// [`CommandError::Infrastructure`] when the stream cannot be read.
    pub async fn load(&self, aggregate_id: &str) -> Result<A, CommandError<A::Error>> {
        let context = self
            .loader
            .load_aggregate(aggregate_id)
            .await
            .map_err(infrastructure)?;
        Ok(context.aggregate)
    }

    /// Executes `command` on `aggregate_id`.
    ///
    /// # Errors
    /// [`CommandError::Rejected`] with the aggregate's reason; [`CommandError::Conflict`]
    /// after [`MAX_ATTEMPTS`]; [`CommandError::IdempotencyKeyReused`] when the id was used
    /// for another command; [`CommandError::Infrastructure`].
    #[tracing::instrument(skip_all, fields(aggregate = A::TYPE, aggregate_id, command = command.command_name(), command_id = %ctx.command_id))]
    pub async fn execute(
        &self,
        aggregate_id: &str,
        command: A::Command,
        ctx: &CommandContext,
    ) -> Result<CommandOutcome, CommandError<A::Error>>
    where
        A::Command: Clone,
    {
        let fingerprint = ctx
            .fingerprint
            .clone()
            .unwrap_or_else(|| fingerprint::<A>(aggregate_id, &command));
        let metadata = EventMetadata {
            actor: ctx.actor.clone(),
            correlation_id: ctx.correlation_id,
            causation_id: ctx.causation_id,
            command_id: ctx.command_id,
            command_name: command.command_name().to_string(),
            tenant_id: command.tenant_id(aggregate_id).or(ctx.tenant_id),
        }
        .to_map();

        let _turn = self.locks.lock(aggregate_id).await;
        for attempt in 0..MAX_ATTEMPTS {
            if ctx.client_supplied || attempt > 0 {
                if let Some(outcome) = self.recorded(ctx.command_id, &fingerprint).await? {
                    return Ok(outcome);
                }
            }
            if attempt > 0 {
                backoff(attempt).await;
            }
            let scope = RefCell::new(AppendScope::new(fingerprint.clone()));
            let (result, scope) = APPEND_SCOPE
                .scope(scope, async {
                    let result = self
                        .cqrs
                        .execute_with_metadata(aggregate_id, command.clone(), metadata.clone())
                        .await;
                    (result, APPEND_SCOPE.with(|s| s.take()))
                })
                .await;
            match result {
                Ok(()) => {
                    return Ok(CommandOutcome {
                        command_id: ctx.command_id,
                        aggregate_id: aggregate_id.to_string(),
                        receipt: scope.receipt,
                        replayed: false,
                    })
                }
                Err(AggregateError::AggregateConflict) => {
                    tracing::debug!(attempt, "expected version conflict; retrying");
                }
                Err(AggregateError::UserError(e)) => {
                    // A concurrent execution of the same id may have committed between our
                    // check and our load; then the rejection is of our own effect.
                    if ctx.client_supplied {
                        if let Some(outcome) = self.recorded(ctx.command_id, &fingerprint).await? {
                            return Ok(outcome);
                        }
                    }
                    return Err(CommandError::Rejected(e));
                }
                Err(other) => return Err(infrastructure(other)),
            }
        }
        if let Some(outcome) = self.recorded(ctx.command_id, &fingerprint).await? {
            return Ok(outcome);
        }
        Err(CommandError::Conflict)
    }

    async fn recorded(
        &self,
        command_id: Uuid,
        fingerprint: &str,
    ) -> Result<Option<CommandOutcome>, CommandError<A::Error>> {
        let Some(recorded) = find_command(self.store.pool(), command_id).await? else {
            return Ok(None);
        };
        if recorded.fingerprint != fingerprint {
            return Err(CommandError::IdempotencyKeyReused);
        }
        Ok(Some(CommandOutcome {
            command_id,
            aggregate_id: recorded.aggregate_id.clone(),
            receipt: Some(recorded.receipt()),
            replayed: true,
        }))
    }
}

fn infrastructure<E: std::error::Error>(err: AggregateError<E>) -> CommandError<E> {
    CommandError::Infrastructure(err.to_string())
}

/// Hash of the aggregate type, the stream and the command body (SHA-256, hex).
/// Callers whose commands carry generated values (salts, new ids) set
/// [`CommandContext::fingerprint`] from the request instead.
fn fingerprint<A: Aggregate>(aggregate_id: &str, command: &A::Command) -> String
where
    A::Command: NamedCommand,
{
    let mut hasher = Sha256::new();
    hasher.update(A::TYPE.as_bytes());
    hasher.update([0]);
    hasher.update(aggregate_id.as_bytes());
    hasher.update([0]);
    hasher.update(serde_json::to_vec(command).unwrap_or_default());
    hex::encode(hasher.finalize())
}

/// Sleeps 1–2 ms × 2^attempt (capped at 64 ms), jittered so racing writers spread out.
async fn backoff(attempt: usize) {
    let base = 1u64 << attempt.min(6);
    let jitter = u64::from(Uuid::new_v4().as_u128() as u8) % (base + 1);
    tokio::time::sleep(Duration::from_millis(base + jitter)).await;
}
