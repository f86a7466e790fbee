//! The projection runner: each projection is a catch-up subscription over `$all` with its
//! own checkpoint row.
//!
//! - A batch is read, applied and the checkpoint advanced **in one transaction**: a crash
//!   or a failing event rolls the whole batch back, so nothing is lost or applied twice.
//! - One active runner per projection across processes: each batch first takes
//!   `pg_try_advisory_xact_lock` on the projection's name; a runner that does not get it
//!   skips the round. The lock is taken before anything is written, so the batch's reads
//!   do not hold the `$all` read horizon back with an xid of their own.
//! - The runners of one process share what they read of `$all` ([`crate::tail`]): the
//!   first to reach the head reads the next batch, the others take it from memory.
//! - Runners wake on the [`AppendSignal`](x8_eventstore::AppendSignal) after a commit (also
//!   while an open writer holds the horizon, at most 10 ms later), and poll as a fall-back.
//! - A batch's commit does not wait for the WAL flush (`synchronous_commit = off`): a read
//!   model is derived, and a batch lost in a crash is lost with its checkpoint and
//!   re-applied.

use crate::projection::{erased_tenant, Projection, ProjectionError};
use crate::tail::Tail;
use sqlx::PgConnection;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;
use x8_eventstore::all::{checkpoint_of, read_all, AllBatch, AllFilter};
use x8_eventstore::{Checkpoint, EventStore, RecordedEvent};

/// Events per batch unless configured otherwise.
pub const DEFAULT_BATCH_SIZE: i64 = 500;
/// Poll interval when no signal arrives.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// Pause after a partial batch unless configured otherwise, so that under load a batch
/// carries many events rather than one transaction per append (the latency
/// read-your-writes pays at most, under load).
pub const DEFAULT_COALESCE: Duration = Duration::from_millis(5);
/// Longest wait before reading again while a writer holds the read horizon (a commit's
/// signal ends it sooner).
const HORIZON_RETRY: Duration = Duration::from_millis(10);

/// What one batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchOutcome {
    /// Applied this many events and advanced the checkpoint to the last one.
    Applied(usize),
    /// Caught up; `held_by_horizon` when newer events wait for an open writer.
    CaughtUp {
        /// Newer events exist behind the read horizon.
        held_by_horizon: bool,
    },
    /// Another runner holds the projection.
    Busy,
}

/// How far a projection is behind the head of `$all`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ProjectionLag {
    /// Events not applied yet.
    pub events: i64,
    /// Age of the oldest event not applied yet, in seconds (0 when caught up).
    pub seconds: f64,
    /// The checkpoint.
    pub checkpoint: Checkpoint,
}

/// Why waiting for a position failed.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// The projection did not reach the position in time.
    #[error("projection {projection} has not reached position {position} yet")]
    Lagging {
        /// The projection.
        projection: &'static str,
        /// The position waited for.
        position: i64,
    },
    /// The database failed.
    #[error(transparent)]
    Database(#[from] x8_eventstore::EventStoreError),
}

/// Runs projections against one event store.
#[derive(Clone)]
pub struct ProjectionRunner {
    pub(crate) store: EventStore,
    projections: Vec<Arc<dyn Projection>>,
    batch_size: i64,
    coalesce: Duration,
    pub(crate) upcasters: Arc<Vec<Box<dyn cqrs_es::persist::EventUpcaster>>>,
    /// The recent events of `$all` the runners have read, shared between them.
    tail: Arc<Tail>,
}

impl ProjectionRunner {
    /// A runner for `projections`, applying the store's upcasters.
    pub fn new(store: EventStore, projections: Vec<Arc<dyn Projection>>) -> Self {
        Self {
            upcasters: Arc::new(store.upcasters()),
            store,
            projections,
            batch_size: DEFAULT_BATCH_SIZE,
            coalesce: DEFAULT_COALESCE,
            tail: Arc::new(Tail::default()),
        }
    }

    /// Events per batch.
    pub fn with_batch_size(mut self, batch_size: i64) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Pause after a partial batch under load ([`DEFAULT_COALESCE`]): longer means fewer,
    /// larger batches (less work for the database per event) and a longer wait for
    /// read-your-writes while commands keep coming.
    pub fn with_coalesce(mut self, coalesce: Duration) -> Self {
        self.coalesce = coalesce;
        self
    }

    /// The registered projections.
    pub fn projections(&self) -> &[Arc<dyn Projection>] {
        &self.projections
    }

    /// Creates the checkpoint rows that do not exist yet.
    ///
    /// # Errors
    /// [`sqlx::Error`].
    pub async fn register(&self) -> Result<(), sqlx::Error> {
        for projection in &self.projections {
            // language=PostgreSQL
            sqlx::query(
                "insert into projection_checkpoints (projection_name) values ($1)
                 on conflict do nothing",
            )
            .bind(projection.name())
            .execute(self.store.pool())
            .await?;
        }
        Ok(())
    }

    /// Spawns one task per projection that keeps it caught up until the pool closes.
    pub fn spawn(&self) {
        for projection in &self.projections {
            let runner = self.clone();
            let projection = projection.clone();
            tokio::spawn(async move { runner.follow(projection).await });
        }
    }

    async fn follow(&self, projection: Arc<dyn Projection>) {
        let mut wakeups = self.store.signal().subscribe();
        let mut failures = 0u32;
        while !self.store.pool().is_closed() {
            wakeups.borrow_and_update();
            match self.run_batch(projection.as_ref()).await {
                Ok(BatchOutcome::Applied(n)) => {
                    failures = 0;
                    // A full batch: more is waiting. Otherwise let the next events gather
                    // instead of committing a transaction per append under load.
                    if (n as i64) < self.batch_size {
                        tokio::time::sleep(self.coalesce).await;
                    }
                }
                // The writer holding the horizon signals when it commits; another
                // process's writer may not, hence the bound.
                Ok(BatchOutcome::CaughtUp {
                    held_by_horizon: true,
                }) => {
                    let _ = tokio::time::timeout(HORIZON_RETRY, wakeups.changed()).await;
                    tokio::time::sleep(self.coalesce).await;
                }
                Ok(
                    BatchOutcome::CaughtUp {
                        held_by_horizon: false,
                    }
                    | BatchOutcome::Busy,
                ) => {
                    let _ = tokio::time::timeout(POLL_INTERVAL, wakeups.changed()).await;
                }
                Err(err) => {
                    failures = failures.saturating_add(1);
                    let delay = Duration::from_millis(50 * 2u64.pow(failures.min(6)));
                    tracing::error!(projection = projection.name(), error = %err, ?delay, "projection batch failed; retrying");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// Applies one batch of `projection` and advances its checkpoint, atomically.
    ///
    /// # Errors
    /// [`ProjectionError`] from the read model or the database; the batch is rolled back.
    #[tracing::instrument(skip_all, fields(projection = projection.name()))]
    pub async fn run_batch(
        &self,
        projection: &dyn Projection,
    ) -> Result<BatchOutcome, ProjectionError> {
        let mut tx = self.store.pool().begin().await?;
        // A read model is derived data: if the server crashes before this commit reaches
        // the disk, the batch and its checkpoint are lost together and re-applied from the
        // log. So the commit does not wait for the WAL flush (the events' appends do). Set in
        // the statement that takes the lock: one round trip.
        // language=PostgreSQL
        let (_, locked): (String, bool) = sqlx::query_as(
            "select set_config('synchronous_commit', 'off', true),
                    pg_try_advisory_xact_lock(hashtext('x8.projection'), hashtext($1))",
        )
        .bind(projection.name())
        .fetch_one(&mut *tx)
        .await?;
        if !locked {
            return Ok(BatchOutcome::Busy);
        }
        let checkpoint = read_checkpoint(&mut tx, projection.name()).await?;
        let (events, held_by_horizon) = match self.tail.after(checkpoint, self.batch_size as usize)
        {
            Some(events) => (events, false),
            None => {
                let batch = self
                    .read_batch(&mut *tx, checkpoint, self.batch_size)
                    .await?;
                self.tail.extend(checkpoint, &batch.events);
                (batch.events, batch.held_by_horizon)
            }
        };
        let Some(last) = events.last().map(|e| e.checkpoint()) else {
            return Ok(BatchOutcome::CaughtUp { held_by_horizon });
        };
        let applied = events.len();
        self.apply_events(&mut tx, projection, &events).await?;
        // language=PostgreSQL
        sqlx::query(
            "update projection_checkpoints
             set transaction_id = $2::text::xid8, global_position = $3, updated_at = now()
             where projection_name = $1",
        )
        .bind(projection.name())
        .bind(last.transaction_id.to_string())
        .bind(last.global_position)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(BatchOutcome::Applied(applied))
    }

    /// Runs batches until `projection` is caught up (tests and tools).
    ///
    /// # Errors
    /// As [`Self::run_batch`].
    pub async fn catch_up(&self, projection: &dyn Projection) -> Result<usize, ProjectionError> {
        let mut total = 0;
        loop {
            match self.run_batch(projection).await? {
                BatchOutcome::Applied(n) => total += n,
                BatchOutcome::CaughtUp {
                    held_by_horizon: true,
                }
                | BatchOutcome::Busy => {
                    tokio::time::sleep(HORIZON_RETRY).await;
                }
                BatchOutcome::CaughtUp {
                    held_by_horizon: false,
                } => return Ok(total),
            }
        }
    }

    /// How far `name` is behind.
    ///
    /// # Errors
    /// [`sqlx::Error`].
    pub async fn lag(&self, name: &str) -> Result<ProjectionLag, sqlx::Error> {
        let mut conn = self.store.pool().acquire().await?;
        let checkpoint = read_checkpoint(&mut conn, name).await?;
        // language=PostgreSQL
        let (events, seconds): (i64, Option<f64>) = sqlx::query_as(
            "select count(*), extract(epoch from now() - min(recorded_at))::float8 from events
             where (transaction_id, global_position) > ($1::text::xid8, $2)",
        )
        .bind(checkpoint.transaction_id.to_string())
        .bind(checkpoint.global_position)
        .fetch_one(&mut *conn)
        .await?;
        Ok(ProjectionLag {
            events,
            seconds: seconds.unwrap_or(0.0).max(0.0),
            checkpoint,
        })
    }

    /// Waits until projection `name` has applied the event at global `position`, checking
    /// every 5 ms, for at most `timeout`. Position 0 is always reached.
    ///
    /// # Errors
    /// [`WaitError::Lagging`] after `timeout` (also for a position that does not exist).
    pub async fn wait_for(
        &self,
        name: &'static str,
        position: i64,
        timeout: Duration,
    ) -> Result<(), WaitError> {
        if position <= 0 {
            return Ok(());
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let target = loop {
            if let Some(target) = checkpoint_of(self.store.pool(), position).await? {
                break target;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(WaitError::Lagging {
                    projection: name,
                    position,
                });
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        loop {
            let mut conn = self
                .store
                .pool()
                .acquire()
                .await
                .map_err(x8_eventstore::EventStoreError::from)?;
            let current = read_checkpoint(&mut conn, name)
                .await
                .map_err(x8_eventstore::EventStoreError::from)?;
            drop(conn);
            if current >= target {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(WaitError::Lagging {
                    projection: name,
                    position,
                });
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl ProjectionRunner {
    /// Reads up to `limit` events of `$all` after `after`, upcast to their current
    /// versions, as the projections apply them.
    pub(crate) async fn read_batch(
        &self,
        executor: impl sqlx::PgExecutor<'_>,
        after: Checkpoint,
        limit: i64,
    ) -> Result<AllBatch, ProjectionError> {
        let mut batch = read_all(executor, after, limit, &AllFilter::default())
            .await
            .map_err(|e| ProjectionError::Other(e.to_string()))?;
        batch.events = std::mem::take(&mut batch.events)
            .into_iter()
            .map(|event| event.upcast(&self.upcasters))
            .collect();
        Ok(batch)
    }

    /// Applies upcast `events` ([`Self::read_batch`]) to `projection` in order
    /// ([`Projection::apply_batch`]), deleting an erased business's rows
    /// ([`Projection::tenant_tables`]) right after its `TenantErased`.
    pub(crate) async fn apply_events(
        &self,
        conn: &mut PgConnection,
        projection: &dyn Projection,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        for segment in events.split_inclusive(|event| erased_tenant(event).is_some()) {
            projection.apply_batch(conn, segment).await?;
            if let Some(tenant_id) = segment.last().and_then(erased_tenant) {
                delete_tenant_rows(conn, projection, tenant_id).await?;
            }
        }
        Ok(())
    }
}

/// Deletes an erased business's rows from the projection's [`Projection::tenant_tables`].
async fn delete_tenant_rows(
    conn: &mut PgConnection,
    projection: &dyn Projection,
    tenant_id: Uuid,
) -> Result<(), ProjectionError> {
    for table in projection.tenant_tables() {
        // language=PostgreSQL
        sqlx::query(&format!("delete from {table} where tenant_id = $1"))
            .bind(tenant_id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

pub(crate) async fn read_checkpoint(
    conn: &mut sqlx::PgConnection,
    name: &str,
) -> Result<Checkpoint, sqlx::Error> {
    // language=PostgreSQL
    let row: Option<(i64, i64)> = sqlx::query_as(
        "select transaction_id::text::bigint, global_position from projection_checkpoints
         where projection_name = $1",
    )
    .bind(name)
    .fetch_optional(conn)
    .await?;
    Ok(
        row.map_or(Checkpoint::START, |(transaction_id, global_position)| {
            Checkpoint {
                transaction_id,
                global_position,
            }
        }),
    )
}
