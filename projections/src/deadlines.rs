//! The `deadlines` projection: schedules durable deadlines from events: a trial's end
//! (`TenantRegistered`), a WhatsApp session restart after a failed QR attempt
//! (`QrAttemptFailed`) or for a reconnect (`ReconnectScheduled`), the end of a
//! subscription cancelled at period end (`SubscriptionRecorded`), the expiry of a loyalty
//! transfer (`PurchaseAccrued`, `PointsGranted` with an `expires_at`); a delivery's
//! customer notification at once (`DeliveryStatusChanged`); a business's erasure at the end
//! of its grace period (`TenantErasureRequested`) and at each retry of a failed cleanup
//! (`StepAttemptFailed`).
//!
//! A deadline's id is derived from the event that scheduled it (UUID v5 of the event id
//! and the kind) and inserted with `on conflict do nothing`, so replaying or rebuilding
//! this projection never schedules anything twice and never revives a deadline that ran.

use crate::projection::{payload, Projection, ProjectionError};
use futures::future::BoxFuture;
use sqlx::PgConnection;
use uuid::Uuid;
use x8_domain::billing::subscription::SubscriptionEvent;
use x8_domain::channel::ChannelEvent;
use x8_domain::deadlines::{
    END_SUBSCRIPTION, EXPIRE_POINTS, EXPIRE_TRIAL, NOTIFY_DELIVERY_STATUS, RESTART_SESSION,
    RUN_ERASURE,
};
use x8_domain::erasure::ErasureEvent;
use x8_domain::loyalty::LoyaltyEvent;
use x8_domain::tenant::TenantEvent;
use x8_eventstore::RecordedEvent;

/// Schedules deadlines into the `deadlines` table.
pub struct DeadlinesProjection;

/// The projection's name.
pub const NAME: &str = "deadlines";

impl Projection for DeadlinesProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        event: &'a RecordedEvent,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(async move {
            match event.event_type.as_str() {
                "TenantRegistered" => {
                    if let TenantEvent::TenantRegistered { trial_ends_at, .. } = payload(event)? {
                        schedule(conn, event, EXPIRE_TRIAL, trial_ends_at).await?;
                    }
                }
                // The next QR attempt starts at once; a reconnect when its back-off ends.
                "QrAttemptFailed" => {
                    if let ChannelEvent::QrAttemptFailed { at, .. } = payload(event)? {
                        schedule(conn, event, RESTART_SESSION, at).await?;
                    }
                }
                "ReconnectScheduled" => {
                    if let ChannelEvent::ReconnectScheduled { due_at, .. } = payload(event)? {
                        schedule(conn, event, RESTART_SESSION, due_at).await?;
                    }
                }
                "SubscriptionRecorded" => {
                    if let SubscriptionEvent::SubscriptionRecorded { subscription, .. } =
                        payload(event)?
                    {
                        if let (true, Some(period_end)) = (
                            subscription.cancel_at_period_end,
                            subscription.current_period_end,
                        ) {
                            schedule(conn, event, END_SUBSCRIPTION, period_end).await?;
                        }
                    }
                }
                "PurchaseAccrued" | "PointsGranted" => {
                    if let LoyaltyEvent::PurchaseAccrued {
                        expires_at: Some(expires_at),
                        points: 1..,
                        ..
                    }
                    | LoyaltyEvent::PointsGranted {
                        expires_at: Some(expires_at),
                        points: 1..,
                        ..
                    } = payload(event)?
                    {
                        schedule(conn, event, EXPIRE_POINTS, expires_at).await?;
                    }
                }
                "TenantErasureRequested" => {
                    if let TenantEvent::TenantErasureRequested { not_before, .. } = payload(event)?
                    {
                        schedule(conn, event, RUN_ERASURE, not_before).await?;
                    }
                }
                "StepAttemptFailed" => {
                    if let ErasureEvent::StepAttemptFailed {
                        retry_at: Some(retry_at),
                        ..
                    } = payload(event)?
                    {
                        schedule(conn, event, RUN_ERASURE, retry_at).await?;
                    }
                }
                "DeliveryStatusChanged" => {
                    schedule(conn, event, NOTIFY_DELIVERY_STATUS, event.recorded_at).await?;
                }
                _ => {}
            }
            Ok(())
        })
    }

    /// None: the schedule records which deadlines ran, so a rebuild replays into it (its
    /// inserts never schedule twice) instead of replacing it.
    fn tables(&self) -> &'static [&'static str] {
        &[]
    }
}

async fn schedule(
    conn: &mut PgConnection,
    cause: &RecordedEvent,
    kind: &str,
    due_at: chrono::DateTime<chrono::Utc>,
) -> Result<(), ProjectionError> {
    // language=PostgreSQL
    sqlx::query(
        "insert into deadlines (deadline_id, kind, aggregate_id, due_at)
         values ($1, $2, $3, $4)
         on conflict (deadline_id) do nothing",
    )
    .bind(Uuid::new_v5(&cause.event_id, kind.as_bytes()))
    .bind(kind)
    .bind(&cause.aggregate_id)
    .bind(due_at)
    .execute(conn)
    .await?;
    Ok(())
}
