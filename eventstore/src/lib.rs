//! # X8 event store
//!
//! The PostgreSQL event log that everything in X8 core stands on. It implements cqrs-es
//! 0.5's [`PersistedEventRepository`](cqrs_es::persist::PersistedEventRepository), so
//! `CqrsFramework` works unchanged, and adds what postgres-es lacks: a gap-free global
//! order, per-event ids and tenants, one round trip per append, and the command's
//! idempotency record written in the append's own statement.
//!
//! # Layout
//! - [`pool`]: connecting (no ping per acquire, no TLS on loopback) and migrations.
//! - [`metadata`]: the metadata every event carries (actor, correlation, causation, command).
//! - [`append`]: the append statement and the [`AppendReceipt`](append::AppendReceipt) a command gets back.
//! - [`repository`]: the cqrs-es repository over [`append`] and [`stream`]; snapshots.
//! - [`stream`]: reading one stream (whole, from/up to a version, up to a time).
//! - [`all`]: reading `$all` in commit-safe order from a [`Checkpoint`].
//! - [`commands`]: the recorded outcome of an executed command (idempotency).
//! - [`signal`]: waking subscribers after a commit, in-process and across processes.
//! - [`writer`]: the writer tasks that gather concurrent appends into one statement.
//! - [`error`]: the error type, [`EventStoreError`].

pub mod all;
pub mod append;
pub mod commands;
pub mod error;
pub mod metadata;
pub mod pool;
pub mod repository;
pub mod signal;
pub mod stream;
pub mod writer;

pub use all::{AllFilter, Checkpoint, RecordedEvent};
pub use error::EventStoreError;
pub use metadata::{Actor, EventMetadata};
pub use repository::PgEventRepository;
pub use signal::AppendSignal;

use sqlx::PgPool;
use std::sync::{Arc, OnceLock};

/// Makes the upcasters every reader of the log applies (a factory, because cqrs-es takes
/// them by value and they are not `Clone`).
pub type UpcasterFactory = fn() -> Vec<Box<dyn cqrs_es::persist::EventUpcaster>>;

/// Handle on the event log: the pool, the append signal, the snapshot interval and the
/// upcasters. Cheap to clone.
#[derive(Clone)]
pub struct EventStore {
    pool: PgPool,
    signal: AppendSignal,
    snapshot_every: usize,
    upcasters: UpcasterFactory,
    writers: Arc<OnceLock<writer::Writers>>,
}

/// Snapshot an aggregate every this many events unless configured otherwise.
pub const DEFAULT_SNAPSHOT_EVERY: usize = 100;

impl EventStore {
    /// A store over `pool` that snapshots every [`DEFAULT_SNAPSHOT_EVERY`] events.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            signal: AppendSignal::new(),
            snapshot_every: DEFAULT_SNAPSHOT_EVERY,
            upcasters: Vec::new,
            writers: Arc::default(),
        }
    }

    /// Appends `commands` (each non-empty, on one stream) through the writers, which put
    /// concurrent appends into one statement (spawned on the first append). One receipt
    /// per command, in order.
    ///
    /// # Errors
    /// As [`append::append_commands`].
    pub(crate) async fn append(
        &self,
        commands: &[append::CommandEvents<'_>],
    ) -> Result<Vec<append::AppendReceipt>, EventStoreError> {
        self.writers
            .get_or_init(|| writer::Writers::spawn(self.pool.clone()))
            .append(&self.pool, commands)
            .await
    }

    /// Applies the upcasters `factory` makes to every event read (streams and `$all`).
    pub fn with_upcasters(mut self, factory: UpcasterFactory) -> Self {
        self.upcasters = factory;
        self
    }

    /// A fresh list of the configured upcasters.
    pub fn upcasters(&self) -> Vec<Box<dyn cqrs_es::persist::EventUpcaster>> {
        (self.upcasters)()
    }

    /// Snapshot every `n` events (at least 1).
    pub fn with_snapshot_every(mut self, n: usize) -> Self {
        self.snapshot_every = n.max(1);
        self
    }

    /// The pool (shared with read models: one `PgPool` type across the workspace).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The signal raised after every committed append.
    pub fn signal(&self) -> &AppendSignal {
        &self.signal
    }

    /// Events between snapshots.
    pub fn snapshot_every(&self) -> usize {
        self.snapshot_every
    }

    /// A cqrs-es event store for aggregate `A` over this log, loading from snapshots taken
    /// every [`Self::snapshot_every`] events, with the configured upcasters.
    pub fn aggregate_store<A: cqrs_es::Aggregate>(
        &self,
    ) -> cqrs_es::persist::PersistedEventStore<PgEventRepository, A> {
        cqrs_es::persist::PersistedEventStore::new_snapshot_store(
            PgEventRepository::new(self.clone()),
            self.snapshot_every,
        )
        .with_upcasters(self.upcasters())
    }
}
