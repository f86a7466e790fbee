//! The log's writers: appends from many tasks, on any streams, gathered into one statement
//! (group commit across streams).
//!
//! Every append goes to a queue that [`WRITERS`] writer tasks drain: each takes whatever
//! is queued when it is free (up to [`MAX_BATCH_EVENTS`] events) and appends it all in one
//! [`append_commands`] statement, so under load many commands share one round trip and
//! one commit (one WAL flush), and an idle log writes an append at once. A statement is
//! atomic, so when a batch of several appends fails (a conflict on one stream, a recorded
//! command id), each append is retried in its own statement and gets its own outcome: the
//! outcome of every append is the one it would have had alone.
//!
//! The writers are spawned on the first append, on that runtime, and end when the last
//! clone of the [`crate::EventStore`] is dropped. Appends whose writers are gone (their
//! runtime shut down) are written by the caller itself.

use crate::append::{append_commands, AppendReceipt, CommandEvents};
use crate::error::EventStoreError;
use cqrs_es::persist::SerializedEvent;
use sqlx::PgPool;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Writer tasks, i.e. statements in flight at once.
pub const WRITERS: usize = 2;

/// Most events one statement appends (a request is never split).
pub const MAX_BATCH_EVENTS: usize = 1_000;

/// Histogram of appends (commands) per statement.
pub const BATCH_COMMANDS: &str = "x8_append_batch_commands";

/// One command's events and fingerprint, owned while they wait for a writer.
struct QueuedCommand {
    events: Vec<SerializedEvent>,
    fingerprint: String,
}

/// One caller's append (one or several commands on one stream) and where its answer goes.
struct Request {
    commands: Vec<QueuedCommand>,
    answer: oneshot::Sender<Result<Vec<AppendReceipt>, EventStoreError>>,
}

impl Request {
    fn event_count(&self) -> usize {
        self.commands.iter().map(|c| c.events.len()).sum()
    }

    fn borrowed(&self) -> Vec<CommandEvents<'_>> {
        self.commands
            .iter()
            .map(|c| CommandEvents {
                events: &c.events,
                fingerprint: &c.fingerprint,
            })
            .collect()
    }
}

/// The queue in front of the writer tasks.
pub(crate) struct Writers {
    queue: mpsc::UnboundedSender<Request>,
}

impl Writers {
    /// Spawns [`WRITERS`] tasks writing through `pool`.
    pub(crate) fn spawn(pool: PgPool) -> Self {
        let (queue, requests) = mpsc::unbounded_channel::<Request>();
        let requests = Arc::new(tokio::sync::Mutex::new(requests));
        for _ in 0..WRITERS {
            let (pool, requests) = (pool.clone(), requests.clone());
            tokio::spawn(async move {
                while let Some(batch) = next_batch(&requests).await {
                    write(&pool, batch).await;
                }
            });
        }
        Self { queue }
    }

    /// Appends `commands` (non-empty, one stream) in the next statement a writer makes.
    /// Returns one receipt per command, in order.
    ///
    /// # Errors
    /// As [`append_commands`].
    pub(crate) async fn append(
        &self,
        pool: &PgPool,
        commands: &[CommandEvents<'_>],
    ) -> Result<Vec<AppendReceipt>, EventStoreError> {
        let (answer, answered) = oneshot::channel();
        let request = Request {
            commands: commands
                .iter()
                .filter(|c| !c.events.is_empty())
                .map(|c| QueuedCommand {
                    events: c.events.to_vec(),
                    fingerprint: c.fingerprint.to_string(),
                })
                .collect(),
            answer,
        };
        match self.queue.send(request) {
            Ok(()) => match answered.await {
                Ok(result) => result,
                // The writer was dropped mid-statement (its runtime is shutting down).
                Err(_) => Err(EventStoreError::Database(sqlx::Error::PoolClosed)),
            },
            Err(mpsc::error::SendError(request)) => {
                append_commands(pool, &request.borrowed()).await
            }
        }
    }
}

/// Waits for a request, then takes every request queued behind it, up to
/// [`MAX_BATCH_EVENTS`] events. `None` once every sender is gone.
async fn next_batch(
    requests: &tokio::sync::Mutex<mpsc::UnboundedReceiver<Request>>,
) -> Option<Vec<Request>> {
    let mut requests = requests.lock().await;
    let first = requests.recv().await?;
    let mut events = first.event_count();
    let mut batch = vec![first];
    while events < MAX_BATCH_EVENTS {
        match requests.try_recv() {
            Ok(request) => {
                events += request.event_count();
                batch.push(request);
            }
            Err(_) => break,
        }
    }
    Some(batch)
}

/// Appends `batch` in one statement and answers each request with its receipts; when the
/// statement fails and holds several requests, retries each in its own.
async fn write(pool: &PgPool, batch: Vec<Request>) {
    metrics::histogram!(BATCH_COMMANDS)
        .record(batch.iter().map(|r| r.commands.len()).sum::<usize>() as f64);
    if batch.len() > 1 {
        let commands: Vec<CommandEvents<'_>> = batch.iter().flat_map(Request::borrowed).collect();
        if let Ok(mut receipts) = append_commands(pool, &commands).await {
            for request in batch.into_iter().rev() {
                let own = receipts.split_off(receipts.len().saturating_sub(request.commands.len()));
                let _ = request.answer.send(Ok(own));
            }
            return;
        }
    }
    for request in batch {
        let result = append_commands(pool, &request.borrowed()).await;
        let _ = request.answer.send(result);
    }
}
