//! The live feed of tracking pages: one `LISTEN x8_tracking` connection per process
//! (opened by the first subscriber), fanned out to every open page through a broadcast
//! channel. The deliveries projection sends the notification from the transaction that
//! changes the read model, so a page that hears of a change can read it.

use sqlx::postgres::PgListener;
use sqlx::PgPool;
use std::time::Duration;
use tokio::sync::{broadcast, OnceCell};
use uuid::Uuid;
use x8_projections::deliveries::TRACKING_CHANNEL;

/// Deliveries whose tracking view changed, as they change.
pub struct TrackingFeed {
    pool: PgPool,
    sender: OnceCell<broadcast::Sender<Uuid>>,
}

impl TrackingFeed {
    /// A feed over `pool` (nothing is opened until the first subscriber).
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            sender: OnceCell::new(),
        }
    }

    /// A receiver of changed delivery ids. When this returns, the process is listening,
    /// so a change committed after it is heard.
    ///
    /// # Errors
    /// [`sqlx::Error`] when the listening connection cannot be opened.
    pub async fn subscribe(&self) -> Result<broadcast::Receiver<Uuid>, sqlx::Error> {
        let sender = self
            .sender
            .get_or_try_init(|| async {
                let mut listener = PgListener::connect_with(&self.pool).await?;
                listener.listen(TRACKING_CHANNEL).await?;
                let (sender, _) = broadcast::channel(1024);
                tokio::spawn(forward(listener, sender.clone()));
                Ok::<_, sqlx::Error>(sender)
            })
            .await?;
        Ok(sender.subscribe())
    }
}

/// Forwards notifications until the process ends. A lost connection is re-established by
/// `PgListener`; pages re-read on [`broadcast::error::RecvError::Lagged`], and a
/// reconnection is announced as the nil id (every page re-reads).
async fn forward(mut listener: PgListener, sender: broadcast::Sender<Uuid>) {
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => {
                if let Ok(id) = notification.payload().parse() {
                    let _ = sender.send(id);
                }
            }
            Ok(None) => {
                let _ = sender.send(Uuid::nil());
            }
            Err(error) => {
                tracing::warn!(%error, "tracking feed: listening failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
