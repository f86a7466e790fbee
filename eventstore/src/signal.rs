//! Waking subscribers after a commit.
//!
//! Never a `NOTIFY` inside the append's transaction: a notifying transaction takes a
//! database-wide lock at commit that serialises every writer (PostgreSQL `async.c`).
//! Instead: in-process, a `watch` counter bumped after the commit; across processes, a
//! coalesced `NOTIFY x8_events` sent in its own statement after the commit (at most one per
//! [`NOTIFY_WINDOW`]), received by [`AppendSignal::listen`]; polling covers anything missed.

use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The PostgreSQL channel used across processes.
pub const CHANNEL: &str = "x8_events";
/// Appends within this window share one `NOTIFY`.
pub const NOTIFY_WINDOW: Duration = Duration::from_millis(20);

/// A cloneable "something was appended" signal.
#[derive(Clone)]
pub struct AppendSignal {
    /// Bumped by local appends (drives the cross-process NOTIFY).
    appended: Arc<watch::Sender<u64>>,
    /// Bumped by local appends and by NOTIFYs from other processes (wakes subscribers).
    wakeups: Arc<watch::Sender<u64>>,
}

impl Default for AppendSignal {
    fn default() -> Self {
        Self::new()
    }
}

impl AppendSignal {
    /// A fresh signal with no subscribers.
    pub fn new() -> Self {
        Self {
            appended: Arc::new(watch::channel(0).0),
            wakeups: Arc::new(watch::channel(0).0),
        }
    }

    /// Called after a committed append.
    pub fn appended(&self) {
        self.appended.send_modify(|n| *n = n.wrapping_add(1));
        self.wake();
    }

    fn wake(&self) {
        self.wakeups.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that changes on every wake-up.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.wakeups.subscribe()
    }

    /// Spawns the cross-process half: a task that sends a coalesced `NOTIFY` after local
    /// appends, and a task that turns other processes' `NOTIFY`s into local wake-ups.
    /// Both end when the pool closes.
    pub fn spawn_cross_process(&self, pool: PgPool) {
        let mut appended = self.appended.subscribe();
        let notify_pool = pool.clone();
        tokio::spawn(async move {
            while appended.changed().await.is_ok() {
                if notify_pool.is_closed() {
                    break;
                }
                // language=PostgreSQL
                if let Err(err) = sqlx::query("select pg_notify($1, '')")
                    .bind(CHANNEL)
                    .execute(&notify_pool)
                    .await
                {
                    tracing::debug!(error = %err, "append NOTIFY failed; subscribers will poll");
                }
                tokio::time::sleep(NOTIFY_WINDOW).await;
            }
        });
        let signal = self.clone();
        tokio::spawn(async move { signal.listen(pool).await });
    }

    /// Turns `NOTIFY x8_events` into wake-ups until the pool closes.
    pub async fn listen(&self, pool: PgPool) {
        while !pool.is_closed() {
            let mut listener = match sqlx::postgres::PgListener::connect_with(&pool).await {
                Ok(listener) => listener,
                Err(_) => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if listener.listen(CHANNEL).await.is_err() {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            while let Ok(Some(_)) = listener.try_recv().await {
                self.wake();
            }
        }
    }
}
