//! The command bus: load, decide, append, through cqrs-es, made idempotent and retried.
//!
//! - **Idempotency.** The command id is recorded in the append's own statement, so a
//!   second execution of an id cannot append: it collides on the record (a conflict), or
//!   the state the first made refuses it or leaves it nothing to do. In each case the bus
//!   then reads the record and returns the first execution's outcome. A first execution,
//!   the common case, costs no lookup: the record is read only when the append did not
//!   happen.
//! - **Conflicts.** An expected-version conflict reloads and re-decides, at most
//!   [`MAX_ATTEMPTS`] times with a short jittered back-off, then [`CommandError::Conflict`].
//! - A command that appends nothing (already in the asked-for state) is not recorded.
//! - **Hot aggregates.** Within one process, commands on the same stream take turns
//!   ([`StreamLocks`]) instead of racing to a conflict, and each turn starts from the state
//!   the previous one left (cached per stripe) instead of reloading the stream: one round
//!   trip per command. Across processes the expected version still decides: a stale cache
//!   ends in a conflict and a reload, and a refusal decided on the cache is confirmed on
//!   the log before it is returned.
//! - **Group commit.** Commands that queue up on a stream while its turn is taken are
//!   decided, at the next turn, one after the other on the evolving state, and their
//!   events appended in **one statement** with one idempotency record per command; each
//!   caller gets its own receipt. So a hot stream pays one round trip and one WAL flush per
//!   group, not per command. The group stops before the first command that is refused or
//!   changes nothing, and a conflict on the group's append (the stream moved, or one of its
//!   command ids is recorded already) sends every command of it back to be executed alone:
//!   the outcome of every command is the one it would have had alone, in queue order.

use crate::context::CommandContext;
use crate::error::CommandError;
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::SerializedEvent;
use cqrs_es::persist::{EventStoreAggregateContext, PersistedEventStore};
use cqrs_es::EventEnvelope;
use cqrs_es::{Aggregate, AggregateError, EventStore as _};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use uuid::Uuid;
use x8_eventstore::append::{AppendReceipt, AppendScope, CommandEvents, APPEND_SCOPE};
use x8_eventstore::commands::find_command;
use x8_eventstore::{EventMetadata, EventStore, PgEventRepository};

/// Counter of executed commands by `aggregate`, `command` and `outcome` (`accepted`,
/// `unchanged`, `replayed`, `rejected`, `conflict`, `idempotency_key_reused`, `error`).
pub const COMMANDS_TOTAL: &str = "x8_commands_total";

/// Executions of one command before giving up on conflicts.
pub const MAX_ATTEMPTS: usize = 8;

/// Most commands appended in one statement by a group commit.
pub const MAX_GROUP: usize = 128;

/// Histogram of the number of commands per group commit (`aggregate`).
pub const GROUP_COMMANDS: &str = "x8_group_commit_commands";

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

/// The last known state of one stream: the aggregate after `sequence` events, as the log
/// confirmed it at `confirmed_at` (loaded, or appended at that version).
struct CachedState<A> {
    aggregate_id: String,
    aggregate: A,
    sequence: usize,
    confirmed_at: Instant,
}

/// Reads what a caller wants from the state its command left (type-erased, because the
/// turn's holder may run it on behalf of another task).
type Read<A> = Arc<dyn Fn(&A) -> Box<dyn Any + Send> + Send + Sync>;

/// What a command's execution answers: its outcome and what its [`Read`] returned.
type Answer<A> =
    Result<(CommandOutcome, Box<dyn Any + Send>), CommandError<<A as Aggregate>::Error>>;

/// Everything needed to execute one command.
struct Job<A: Aggregate> {
    aggregate_id: String,
    command: A::Command,
    command_id: Uuid,
    client_supplied: bool,
    fingerprint: String,
    metadata: HashMap<String, String>,
    read: Read<A>,
}

/// A command waiting for its stream's turn, and where to send its answer.
struct Pending<A: Aggregate> {
    job: Arc<Job<A>>,
    answer: oneshot::Sender<Answer<A>>,
}

/// The states a stripe keeps: those of its [`StripeCache::WAYS`] most recently used streams,
/// oldest first, so streams that share a stripe do not evict each other at every turn.
struct StripeCache<A> {
    entries: Vec<CachedState<A>>,
}

impl<A> StripeCache<A> {
    const WAYS: usize = 4;

    /// Takes the state of `aggregate_id` out, if kept.
    fn take(&mut self, aggregate_id: &str) -> Option<CachedState<A>> {
        let index = self
            .entries
            .iter()
            .position(|c| c.aggregate_id == aggregate_id)?;
        Some(self.entries.remove(index))
    }

    /// Keeps `state` as the most recently used, dropping the oldest beyond [`Self::WAYS`].
    fn put(&mut self, state: CachedState<A>) {
        self.take(&state.aggregate_id);
        if self.entries.len() >= Self::WAYS {
            self.entries.remove(0);
        }
        self.entries.push(state);
    }

    fn get(&self, aggregate_id: &str) -> Option<&CachedState<A>> {
        self.entries.iter().find(|c| c.aggregate_id == aggregate_id)
    }
}

/// One stripe: the turn (holding the states its last commands left) and the commands
/// queued for it.
struct Stripe<A: Aggregate> {
    turn: tokio::sync::Mutex<StripeCache<A>>,
    queue: std::sync::Mutex<Vec<Pending<A>>>,
}

impl<A: Aggregate> Stripe<A> {
    /// Takes up to [`MAX_GROUP`] queued commands of stream `aggregate_id`, oldest first.
    fn take_queued(&self, aggregate_id: &str) -> Vec<Pending<A>> {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let mut taken = Vec::new();
        let mut kept = Vec::with_capacity(queue.len());
        for pending in queue.drain(..) {
            if pending.job.aggregate_id == aggregate_id && taken.len() < MAX_GROUP {
                taken.push(pending);
            } else {
                kept.push(pending);
            }
        }
        *queue = kept;
        taken
    }
}

/// Striped turns over stream ids: commands on one stream take turns within a process, and
/// those that queue up meanwhile are executed together at the next turn (group commit).
/// Each stripe also keeps the states its commands left on its four most recently used
/// streams, so a busy stream is decided without reloading it (see
/// [`CommandBus::execute`]), also when it shares its stripe with others.
///
/// 1,024 stripes keep unrelated streams from waiting on each other in practice, with
/// memory bounded (four cached aggregates per stripe) and nothing to clean up. The cache
/// is only a copy of the log: after a restart it starts empty and every stream is loaded.
pub struct StreamLocks<A: Aggregate> {
    stripes: Vec<Stripe<A>>,
}

impl<A: Aggregate> StreamLocks<A> {
    const STRIPES: usize = 1024;

    fn new() -> Self {
        Self {
            stripes: (0..Self::STRIPES)
                .map(|_| Stripe {
                    turn: tokio::sync::Mutex::new(StripeCache {
                        entries: Vec::new(),
                    }),
                    queue: std::sync::Mutex::new(Vec::new()),
                })
                .collect(),
        }
    }

    /// The stripe of stream `aggregate_id`.
    fn stripe(&self, aggregate_id: &str) -> &Stripe<A> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        aggregate_id.hash(&mut hasher);
        &self.stripes[hasher.finish() as usize % Self::STRIPES]
    }

    /// Waits for the turn of stream `aggregate_id`; the guard holds the stripe's cache.
    async fn lock(&self, aggregate_id: &str) -> tokio::sync::MutexGuard<'_, StripeCache<A>> {
        self.stripe(aggregate_id).turn.lock().await
    }
}

/// What deciding a command on a stream's state produced.
struct Decided<A: Aggregate> {
    /// The state after the events.
    aggregate: A,
    /// The stream's version the decision was made on (the expected version).
    sequence: usize,
    events: Vec<A::Event>,
}

/// Executes commands of aggregate `A`.
pub struct CommandBus<A: Aggregate<Services = ()>> {
    loader: PersistedEventStore<PgEventRepository, A>,
    repository: PgEventRepository,
    store: EventStore,
    locks: StreamLocks<A>,
}

impl<A> CommandBus<A>
where
    A: Aggregate<Services = ()> + 'static,
    A::Command: NamedCommand + Clone + Send + Sync + 'static,
    A::Error: Send + 'static,
{
    /// A bus over `store` (with the store's snapshots and upcasters).
    pub fn new(store: &EventStore) -> Self {
        Self {
            loader: store.aggregate_store::<A>(),
            repository: PgEventRepository::new(store.clone()),
            store: store.clone(),
            locks: StreamLocks::new(),
        }
    }

    /// The current state of `aggregate_id` (the default state for an empty stream).
    ///
    /// # Errors
    /// [`CommandError::Infrastructure`] when the stream cannot be read.
    pub async fn load(&self, aggregate_id: &str) -> Result<A, CommandError<A::Error>> {
        Ok(self.load_context(aggregate_id).await?.aggregate)
    }

    /// Loads `aggregate_id` in one round trip: inside an [`AppendScope`] the repository
    /// reads the snapshot and the events after it in one query (outside one, cqrs-es's
    /// load is two).
    async fn load_context(
        &self,
        aggregate_id: &str,
    ) -> Result<EventStoreAggregateContext<A>, CommandError<A::Error>> {
        APPEND_SCOPE
            .scope(
                RefCell::new(AppendScope::default()),
                self.loader.load_aggregate(aggregate_id),
            )
            .await
            .map_err(infrastructure)
    }

    /// Reads the current state of `aggregate_id` through `read`, waiting for the stream's
    /// turn: the state every command of this process left, loaded (and cached) when this
    /// process has none. A command appended by another process since may be missing, so
    /// use it for facts that never change once written (the tenant owning a stream).
    ///
    /// # Errors
    /// [`CommandError::Infrastructure`] when the stream cannot be read.
    pub async fn inspect<R>(
        &self,
        aggregate_id: &str,
        read: impl FnOnce(&A) -> R,
    ) -> Result<R, CommandError<A::Error>> {
        let mut turn = self.locks.lock(aggregate_id).await;
        Ok(read(self.current(&mut turn, aggregate_id).await?))
    }

    /// Reads the state of `aggregate_id` through `read`, at most `max_age` old: the state
    /// this process's commands left or last loaded, when the log confirmed it within
    /// `max_age` (its own commands confirm it as they append); otherwise loaded again.
    /// Commands of other processes show within `max_age`. For checks that may lag a
    /// moment behind other processes, such as authorization; `Duration::ZERO` always
    /// loads.
    ///
    /// # Errors
    /// [`CommandError::Infrastructure`] when the stream cannot be read.
    pub async fn inspect_recent<R>(
        &self,
        aggregate_id: &str,
        max_age: Duration,
        read: impl FnOnce(&A) -> R,
    ) -> Result<R, CommandError<A::Error>> {
        let mut turn = self.locks.lock(aggregate_id).await;
        if turn
            .get(aggregate_id)
            .is_some_and(|c| c.confirmed_at.elapsed() > max_age)
        {
            turn.take(aggregate_id);
        }
        Ok(read(self.current(&mut turn, aggregate_id).await?))
    }

    /// Executes `command` on `aggregate_id`.
    ///
    /// # Errors
    /// [`CommandError::Rejected`] with the aggregate's reason; [`CommandError::Conflict`]
    /// after [`MAX_ATTEMPTS`]; [`CommandError::IdempotencyKeyReused`] when the id was used
    /// for another command; [`CommandError::Infrastructure`].
    pub async fn execute(
        &self,
        aggregate_id: &str,
        command: A::Command,
        ctx: &CommandContext,
    ) -> Result<CommandOutcome, CommandError<A::Error>> {
        let (outcome, ()) = self
            .execute_and_read(aggregate_id, command, ctx, |_| ())
            .await?;
        Ok(outcome)
    }

    /// Executes `command` on `aggregate_id`, then reads the state it left through `read`
    /// in the same turn (e.g. the balance after a redemption), without loading the stream
    /// again. When the outcome is a recorded one (`replayed`), `read` sees the current
    /// state. `read` may run on another task (the one whose turn executes the command).
    ///
    /// # Errors
    /// As [`Self::execute`].
    #[tracing::instrument(skip_all, fields(aggregate = A::TYPE, aggregate_id, command = command.command_name(), command_id = %ctx.command_id))]
    pub async fn execute_and_read<R: Send + 'static>(
        &self,
        aggregate_id: &str,
        command: A::Command,
        ctx: &CommandContext,
        read: impl Fn(&A) -> R + Send + Sync + 'static,
    ) -> Result<(CommandOutcome, R), CommandError<A::Error>> {
        let name = command.command_name();
        let read: Read<A> = Arc::new(move |a: &A| Box::new(read(a)) as Box<dyn Any + Send>);
        let result = self.run(aggregate_id, command, ctx, read).await.and_then(
            |(outcome, value)| match value.downcast::<R>() {
                Ok(value) => Ok((outcome, *value)),
                Err(_) => Err(CommandError::Infrastructure(
                    "command bus: read result of another type".into(),
                )),
            },
        );
        let outcome = match &result {
            Ok((o, _)) if o.replayed => "replayed",
            Ok((o, _)) if o.receipt.is_none() => "unchanged",
            Ok(_) => "accepted",
            Err(CommandError::Rejected(_)) => "rejected",
            Err(CommandError::Conflict) => "conflict",
            Err(CommandError::IdempotencyKeyReused) => "idempotency_key_reused",
            Err(CommandError::Infrastructure(_)) => "error",
        };
        metrics::counter!(COMMANDS_TOTAL, "aggregate" => A::TYPE, "command" => name, "outcome" => outcome)
            .increment(1);
        result
    }

    /// Queues the command on its stream's stripe and waits for its answer; when the turn
    /// comes to this task first, it executes every command queued for the stream.
    async fn run(
        &self,
        aggregate_id: &str,
        command: A::Command,
        ctx: &CommandContext,
        read: Read<A>,
    ) -> Answer<A> {
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
        let job = Arc::new(Job {
            aggregate_id: aggregate_id.to_string(),
            command,
            command_id: ctx.command_id,
            client_supplied: ctx.client_supplied,
            fingerprint,
            metadata,
            read,
        });
        let (answer, mut answered) = oneshot::channel();
        let stripe = self.locks.stripe(aggregate_id);
        stripe
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Pending {
                job: job.clone(),
                answer,
            });
        let answer = tokio::select! {
            biased;
            answer = &mut answered => answer,
            mut turn = stripe.turn.lock() => {
                self.lead(stripe, &mut turn, aggregate_id).await;
                drop(turn);
                answered.await
            }
        };
        match answer {
            Ok(answer) => answer,
            // The task that took the command was dropped before answering (its caller went
            // away): execute it here; its id makes a second execution replay the first.
            Err(_) => {
                let mut turn = stripe.turn.lock().await;
                self.run_alone(&mut turn, &job).await
            }
        }
    }

    /// With the stream's turn: executes the commands queued for `aggregate_id`, as one
    /// group when there are several, and answers each.
    async fn lead(&self, stripe: &Stripe<A>, turn: &mut StripeCache<A>, aggregate_id: &str) {
        let mut queued = stripe.take_queued(aggregate_id);
        if queued.len() > 1 {
            queued = self.commit_group(turn, aggregate_id, queued).await;
        }
        for pending in queued {
            let answer = self.run_alone(turn, &pending.job).await;
            let _ = pending.answer.send(answer);
        }
    }

    /// Decides `group` (several commands on `aggregate_id`, oldest first) in turn on the
    /// stream's evolving state, up to the first one that is refused or changes nothing, and
    /// appends the decided ones in one statement. Answers those; returns the commands left
    /// to execute alone: the rest, or the whole group when the append conflicts.
    async fn commit_group(
        &self,
        turn: &mut StripeCache<A>,
        aggregate_id: &str,
        group: Vec<Pending<A>>,
    ) -> Vec<Pending<A>> {
        if self.current(turn, aggregate_id).await.is_err() {
            return group;
        }
        let Some(CachedState {
            aggregate,
            sequence,
            confirmed_at,
            ..
        }) = turn.take(aggregate_id)
        else {
            return group;
        };
        let mut state = Some(aggregate);
        let mut next = sequence;
        let mut decided = Vec::with_capacity(group.len());
        let mut alone = Vec::new();
        let mut queued = group.into_iter();
        for pending in queued.by_ref() {
            let Some(aggregate) = state.take() else {
                alone.push(pending);
                break;
            };
            match handle(aggregate, pending.job.command.clone()).await {
                Ok((aggregate, events)) if !events.is_empty() => {
                    let job = &pending.job;
                    match serialize::<A>(&job.aggregate_id, next, events, &job.metadata) {
                        Ok(events) => {
                            next += events.len();
                            let value = (job.read)(&aggregate);
                            decided.push((pending, events, value));
                            state = Some(aggregate);
                        }
                        Err(err) => {
                            tracing::warn!(error = %err, "event not serialisable");
                            alone.push(pending);
                            break;
                        }
                    }
                }
                Ok((aggregate, _)) => {
                    state = Some(aggregate);
                    alone.push(pending);
                    break;
                }
                // The state is spent: the refusal is confirmed alone, on a fresh load.
                Err(_) => {
                    alone.push(pending);
                    break;
                }
            }
        }
        alone.extend(queued);

        if decided.is_empty() {
            if let Some(aggregate) = state {
                turn.put(CachedState {
                    aggregate_id: aggregate_id.to_string(),
                    aggregate,
                    sequence,
                    confirmed_at,
                });
            }
            return alone;
        }
        let commands: Vec<CommandEvents<'_>> = decided
            .iter()
            .map(|(pending, events, _)| CommandEvents {
                events,
                fingerprint: &pending.job.fingerprint,
            })
            .collect();
        match self.repository.append_group::<A>(&commands).await {
            Ok(receipts) => {
                metrics::histogram!(GROUP_COMMANDS, "aggregate" => A::TYPE)
                    .record(decided.len() as f64);
                if let Some(aggregate) = state {
                    turn.put(CachedState {
                        aggregate_id: aggregate_id.to_string(),
                        aggregate,
                        sequence: next,
                        confirmed_at: Instant::now(),
                    });
                }
                for ((pending, _, value), receipt) in decided.into_iter().zip(receipts) {
                    let outcome = CommandOutcome {
                        command_id: pending.job.command_id,
                        aggregate_id: aggregate_id.to_string(),
                        receipt: Some(receipt),
                        replayed: false,
                    };
                    let _ = pending.answer.send(Ok((outcome, value)));
                }
                alone
            }
            Err(err) => {
                tracing::debug!(error = %err, commands = decided.len(), "group append failed; executing alone");
                decided.into_iter().map(|(p, ..)| p).chain(alone).collect()
            }
        }
    }

    /// Executes one command with the stream's turn held: decide on the cached state (or a
    /// load), append, retry on conflicts, and answer a repeated id with its recorded
    /// outcome.
    async fn run_alone(&self, turn: &mut StripeCache<A>, job: &Job<A>) -> Answer<A> {
        let Job {
            aggregate_id,
            command,
            command_id,
            client_supplied,
            fingerprint,
            metadata,
            read,
        } = job;
        let (aggregate_id, command_id) = (aggregate_id.as_str(), *command_id);
        let mut recorded = None;
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                recorded = self.recorded(command_id, fingerprint).await?;
                if recorded.is_some() {
                    break;
                }
                backoff(attempt).await;
            }
            // Taken out: any failure below leaves the stripe without the stream's state.
            let cached = turn.take(aggregate_id);
            let scope = RefCell::new(AppendScope::new(fingerprint.clone()));
            let (result, scope) = APPEND_SCOPE
                .scope(scope, async {
                    let result = self
                        .decide_and_commit(aggregate_id, cached, command.clone(), metadata)
                        .await;
                    (result, APPEND_SCOPE.with(|s| s.take()))
                })
                .await;
            match result {
                Ok(state) => {
                    turn.put(state);
                    if scope.receipt.is_none() && *client_supplied {
                        // Nothing to append: perhaps because an earlier execution of this
                        // id did it. Then its outcome is the answer.
                        recorded = self.recorded(command_id, fingerprint).await?;
                        if recorded.is_some() {
                            break;
                        }
                    }
                    let value = read(self.current(turn, aggregate_id).await?);
                    let outcome = CommandOutcome {
                        command_id,
                        aggregate_id: aggregate_id.to_string(),
                        receipt: scope.receipt,
                        replayed: false,
                    };
                    return Ok((outcome, value));
                }
                Err(AggregateError::AggregateConflict) => {
                    tracing::debug!(attempt, "expected version conflict; retrying");
                }
                Err(AggregateError::UserError(e)) => {
                    // An earlier (or concurrent) execution of this id may have committed;
                    // then the rejection is of its own effect.
                    if *client_supplied {
                        recorded = self.recorded(command_id, fingerprint).await?;
                    }
                    if recorded.is_none() {
                        return Err(CommandError::Rejected(e));
                    }
                    break;
                }
                Err(other) => return Err(infrastructure(other)),
            }
        }
        if recorded.is_none() {
            recorded = self.recorded(command_id, fingerprint).await?;
        }
        let outcome = recorded.ok_or(CommandError::Conflict)?;
        let value = read(self.current(turn, aggregate_id).await?);
        Ok((outcome, value))
    }

    /// The state of `aggregate_id` in `cache` (the stream's stripe, whose turn the caller
    /// holds), loaded into it when it does not keep it.
    async fn current<'s>(
        &self,
        cache: &'s mut StripeCache<A>,
        aggregate_id: &str,
    ) -> Result<&'s A, CommandError<A::Error>> {
        if cache.get(aggregate_id).is_none() {
            let context = self.load_context(aggregate_id).await?;
            cache.put(CachedState {
                aggregate_id: aggregate_id.to_string(),
                aggregate: context.aggregate,
                sequence: context.current_sequence,
                confirmed_at: Instant::now(),
            });
        }
        match cache.get(aggregate_id) {
            Some(cached) => Ok(&cached.aggregate),
            None => unreachable!("kept above"),
        }
    }

    /// Decides `command` on the stream's state and appends the events at the version it
    /// was decided on. Returns the new state to cache.
    async fn decide_and_commit(
        &self,
        aggregate_id: &str,
        cached: Option<CachedState<A>>,
        command: A::Command,
        metadata: &HashMap<String, String>,
    ) -> Result<CachedState<A>, AggregateError<A::Error>> {
        let decided = self.decide(aggregate_id, cached, command).await?;
        let sequence = decided.sequence + decided.events.len();
        if !decided.events.is_empty() {
            // Our repository writes its own snapshots from the log, so the state in the
            // context is never read: no copy of the aggregate is made for it.
            let context = EventStoreAggregateContext {
                aggregate_id: aggregate_id.to_string(),
                aggregate: A::default(),
                current_sequence: decided.sequence,
                current_snapshot: None,
            };
            self.loader
                .commit(decided.events, context, metadata.clone())
                .await?;
        }
        // Appended at the version decided on, or decided on a fresh load.
        Ok(CachedState {
            aggregate_id: aggregate_id.to_string(),
            aggregate: decided.aggregate,
            sequence,
            confirmed_at: Instant::now(),
        })
    }

    /// Decides on the cached state when there is one and it yields events (their append
    /// checks the version: a stale cache ends in a conflict and a reload). A refusal or a
    /// no-op decided on the cache is confirmed on a fresh load, since another process may
    /// have moved the stream since.
    async fn decide(
        &self,
        aggregate_id: &str,
        cached: Option<CachedState<A>>,
        command: A::Command,
    ) -> Result<Decided<A>, AggregateError<A::Error>> {
        if let Some(CachedState {
            aggregate,
            sequence,
            ..
        }) = cached
        {
            if let Ok((aggregate, events)) = handle(aggregate, command.clone()).await {
                if !events.is_empty() {
                    return Ok(Decided {
                        aggregate,
                        sequence,
                        events,
                    });
                }
            }
        }
        let context = self.loader.load_aggregate(aggregate_id).await?;
        let (aggregate, events) = handle(context.aggregate, command)
            .await
            .map_err(AggregateError::UserError)?;
        Ok(Decided {
            aggregate,
            sequence: context.current_sequence,
            events,
        })
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

/// `events` of one command as stored: sequences after `sequence`, with `metadata`.
fn serialize<A: Aggregate>(
    aggregate_id: &str,
    sequence: usize,
    events: Vec<A::Event>,
    metadata: &HashMap<String, String>,
) -> Result<Vec<SerializedEvent>, cqrs_es::persist::PersistenceError> {
    events
        .into_iter()
        .zip(sequence + 1..)
        .map(|(payload, sequence)| {
            SerializedEvent::try_from(&EventEnvelope::<A> {
                aggregate_id: aggregate_id.to_string(),
                sequence,
                payload,
                metadata: metadata.clone(),
            })
        })
        .collect()
}

/// Runs the aggregate's `handle` on `aggregate`: the state after the events, and the events.
async fn handle<A: Aggregate<Services = ()>>(
    mut aggregate: A,
    command: A::Command,
) -> Result<(A, Vec<A::Event>), A::Error> {
    let sink = EventSink::default();
    aggregate.handle(command, &(), &sink).await?;
    Ok((aggregate, sink.collect().await))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn state(id: &str) -> CachedState<u32> {
        CachedState {
            aggregate_id: id.into(),
            aggregate: 0,
            sequence: 1,
            confirmed_at: Instant::now(),
        }
    }

    #[test]
    fn a_stripe_keeps_its_four_most_recently_used_streams() {
        // Given a stripe that kept a, b, c, d in that order
        let mut cache = StripeCache {
            entries: Vec::new(),
        };
        for id in ["a", "b", "c", "d"] {
            cache.put(state(id));
        }
        // When a is used again and then e comes
        let a = cache.take("a").expect("kept");
        cache.put(a);
        cache.put(state("e"));
        // Then b, the least recently used, is dropped and the others are kept
        assert!(cache.get("b").is_none());
        for id in ["a", "c", "d", "e"] {
            assert!(cache.get(id).is_some(), "{id}");
        }
        // and a stream taken out is no longer kept
        assert!(cache.take("c").is_some());
        assert!(cache.get("c").is_none());
    }
}
