//! The delivery read models (migrations/0011): `couriers`, `deliveries` (latest status,
//! location, ETA, the tracking token's hash) and `delivery_checkpoints` (the history, late
//! ones flagged). Each change a tracking page shows also sends `NOTIFY x8_tracking,
//! '<delivery id>'` from the batch's transaction, so the page's live stream hears of it
//! when, and only when, the read model has it.
//!
//! Delivery rows are guarded by their last position, checkpoints keyed by id, so
//! re-applying an event is harmless. A late checkpoint (older than the current status) is
//! history only; a location moves the pin only when it is newer than the pin.

use crate::projection::{payload, stream_uuid, Projection, ProjectionError};
use futures::future::BoxFuture;
use sqlx::PgConnection;
use uuid::Uuid;
use x8_domain::delivery::{CourierEvent, DeliveryEvent};
use x8_eventstore::RecordedEvent;

/// Builds the delivery read models.
pub struct DeliveriesProjection;

/// The projection's name, for waiting on it.
pub const NAME: &str = "deliveries";

/// The channel tracking pages listen on; the payload is the delivery's id.
pub const TRACKING_CHANNEL: &str = "x8_tracking";

impl Projection for DeliveriesProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        event: &'a RecordedEvent,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(async move {
            match event.aggregate_type.as_str() {
                "delivery" => apply_delivery(conn, event).await,
                "courier" => apply_courier(conn, event).await,
                _ => Ok(()),
            }
        })
    }

    fn tenant_tables(&self) -> &'static [&'static str] {
        &["deliveries", "couriers"]
    }

    fn tables(&self) -> &'static [&'static str] {
        &["couriers", "deliveries", "delivery_checkpoints"]
    }
}

async fn apply_courier(
    conn: &mut PgConnection,
    event: &RecordedEvent,
) -> Result<(), ProjectionError> {
    let CourierEvent::CourierRegistered {
        tenant_id,
        company_id,
        name,
        first_name,
        phone,
        zones,
    } = payload(event)?;
    // language=PostgreSQL
    sqlx::query(
        "insert into couriers (courier_id, tenant_id, company_id, name_sealed,
             first_name_sealed, phone_sealed, zones, registered_at, last_position)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         on conflict (courier_id) do nothing",
    )
    .bind(stream_uuid(event)?)
    .bind(tenant_id.0)
    .bind(company_id)
    .bind(name.as_str())
    .bind(first_name.as_str())
    .bind(phone.as_str())
    .bind(&zones)
    .bind(event.recorded_at)
    .bind(event.global_position)
    .execute(conn)
    .await?;
    Ok(())
}

async fn apply_delivery(
    conn: &mut PgConnection,
    event: &RecordedEvent,
) -> Result<(), ProjectionError> {
    use DeliveryEvent as E;
    let id = stream_uuid(event)?;
    let position = event.global_position;
    let at = event.recorded_at;
    // language=PostgreSQL
    let update = match payload(event)? {
        E::DeliveryCreated {
            tenant_id,
            company_id,
            order_reference,
            address,
            conversation_id,
            eta,
            ..
        } => sqlx::query(
            "insert into deliveries (delivery_id, tenant_id, company_id, order_reference,
                 address_sealed, conversation_id, eta, created_at, updated_at, last_position)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)
             on conflict (delivery_id) do nothing",
        )
        .bind(id)
        .bind(tenant_id.0)
        .bind(company_id)
        .bind(order_reference)
        .bind(address.0)
        .bind(conversation_id)
        .bind(eta)
        .bind(at)
        .bind(position),
        E::CourierAssigned { courier_id, .. } => sqlx::query(
            "update deliveries set courier_id = $2, updated_at = $3, last_position = $4
             where delivery_id = $1 and last_position < $4",
        )
        .bind(id)
        .bind(courier_id)
        .bind(at)
        .bind(position),
        E::CheckpointRecorded {
            checkpoint,
            late,
            at: recorded_at,
        } => {
            // language=PostgreSQL
            sqlx::query(
                "insert into delivery_checkpoints (delivery_id, checkpoint_id, status,
                     sub_status, message, lat, lng, eta, occurred_at, late, recorded_at,
                     position)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                 on conflict do nothing",
            )
            .bind(id)
            .bind(&checkpoint.checkpoint_id)
            .bind(checkpoint.status.map(|s| s.as_str()))
            .bind(&checkpoint.sub_status)
            .bind(&checkpoint.message)
            .bind(checkpoint.location.map(|l| l.lat))
            .bind(checkpoint.location.map(|l| l.lng))
            .bind(checkpoint.eta)
            .bind(checkpoint.occurred_at)
            .bind(late)
            .bind(recorded_at)
            .bind(position)
            .execute(&mut *conn)
            .await?;
            if late {
                return Ok(());
            }
            let (lat, lng) = checkpoint.location.map(|l| (l.lat, l.lng)).unzip();
            sqlx::query(
                "update deliveries set
                     eta = coalesce($2, eta),
                     last_message = coalesce($3, last_message),
                     last_lat = case when $4::float8 is not null
                         and $6 >= coalesce(last_location_at, '-infinity') then $4 else last_lat end,
                     last_lng = case when $4::float8 is not null
                         and $6 >= coalesce(last_location_at, '-infinity') then $5 else last_lng end,
                     last_location_at = case when $4::float8 is not null
                         and $6 >= coalesce(last_location_at, '-infinity') then $6 else last_location_at end,
                     updated_at = $7, last_position = $8
                 where delivery_id = $1 and last_position < $8",
            )
            .bind(id)
            .bind(checkpoint.eta)
            .bind(checkpoint.message)
            .bind(lat)
            .bind(lng)
            .bind(checkpoint.occurred_at)
            .bind(at)
            .bind(position)
        }
        E::DeliveryStatusChanged {
            to,
            sub_status,
            occurred_at,
            ..
        } => sqlx::query(
            "update deliveries set status = $2, sub_status = $3, status_at = $4,
                 updated_at = $5, last_position = $6
             where delivery_id = $1 and last_position < $6",
        )
        .bind(id)
        .bind(to.as_str())
        .bind(sub_status)
        .bind(occurred_at)
        .bind(at)
        .bind(position),
        E::TrackingTokenIssued { token_hash, .. } => sqlx::query(
            "update deliveries set token_hash = $2, last_position = $3
             where delivery_id = $1 and last_position < $3",
        )
        .bind(id)
        .bind(token_hash)
        .bind(position),
        E::TrackingTokenRevoked { token_hash, .. } => sqlx::query(
            "update deliveries set token_hash = null, last_position = $3
             where delivery_id = $1 and token_hash = $2 and last_position < $3",
        )
        .bind(id)
        .bind(token_hash)
        .bind(position),
        E::CustomerNotified { .. } => return Ok(()),
    };
    update.execute(&mut *conn).await?;
    notify(conn, id).await
}

/// Tells tracking pages that `delivery_id` changed (delivered when the batch commits).
async fn notify(conn: &mut PgConnection, delivery_id: Uuid) -> Result<(), ProjectionError> {
    // language=PostgreSQL
    sqlx::query("select pg_notify($1, $2)")
        .bind(TRACKING_CHANNEL)
        .bind(delivery_id.to_string())
        .execute(conn)
        .await?;
    Ok(())
}
