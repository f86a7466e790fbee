//! The `channels` and `meta_apps` read models (migrations/0005): one row per connection
//! (removed ones kept with `removed_at`), and the Meta app pool with each app's holder.

use crate::projection::{payload, stream_uuid, Projection, ProjectionError};
use futures::future::BoxFuture;
use sqlx::PgConnection;
use x8_domain::channel::{ChannelEvent, ChannelStatus};
use x8_domain::meta_apps::MetaAppEvent;
use x8_eventstore::RecordedEvent;

/// Builds `channels` and `meta_apps`.
pub struct ChannelsProjection;

/// The projection's name, for waiting on it.
pub const NAME: &str = "channels";

impl Projection for ChannelsProjection {
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
                "channel" => apply_channel(conn, event).await,
                "meta_app_pool" => apply_meta_app(conn, event).await,
                _ => Ok(()),
            }
        })
    }

    /// Every row of a business; the meta app pool is shared and keeps its rows.
    fn tenant_tables(&self) -> &'static [&'static str] {
        &["channels"]
    }

    fn tables(&self) -> &'static [&'static str] {
        &["channels", "meta_apps"]
    }
}

async fn apply_channel(
    conn: &mut PgConnection,
    event: &RecordedEvent,
) -> Result<(), ProjectionError> {
    let channel_id = stream_uuid(event)?;
    let position = event.global_position;
    // Every update is guarded by the row's last position, so re-applying is harmless.
    // language=PostgreSQL
    let query = match payload(event)? {
        ChannelEvent::ChannelCreated {
            tenant_id,
            company_id,
            platform,
            meta_app_id,
            ..
        } => sqlx::query(
            "insert into channels (channel_id, tenant_id, company_id, platform, status,
                                   meta_app_id, created_at, last_position)
             values ($1, $2, $3, $4, $5, $6, $7, $8)
             on conflict (channel_id) do nothing",
        )
        .bind(channel_id)
        .bind(tenant_id.0)
        .bind(company_id)
        .bind(platform.as_str())
        .bind(ChannelStatus::Disconnected.as_str())
        .bind(meta_app_id)
        .bind(event.recorded_at)
        .bind(position),
        ChannelEvent::ChannelStatusChanged { to, raw_status, .. } => sqlx::query(
            "update channels set status = $2, raw_status = $3, last_position = $4,
                 qr_attempts = case when $2 = 'CONNECTED' then 0 else qr_attempts end,
                 reconnect_attempts = case when $2 = 'CONNECTED' then 0 else reconnect_attempts end,
                 reconnect_due_at = case when $2 = 'CONNECTED' then null else reconnect_due_at end
             where channel_id = $1 and last_position < $4",
        )
        .bind(channel_id)
        .bind(to.as_str())
        .bind(raw_status)
        .bind(position),
        ChannelEvent::QrAttemptFailed { attempt, .. } => sqlx::query(
            "update channels set qr_attempts = $2, last_position = $3
             where channel_id = $1 and last_position < $3",
        )
        .bind(channel_id)
        .bind(attempt as i32)
        .bind(position),
        ChannelEvent::PairingCodeOffered { .. } => sqlx::query(
            "update channels set pairing_code_offered = true, last_position = $2
             where channel_id = $1 and last_position < $2",
        )
        .bind(channel_id)
        .bind(position),
        ChannelEvent::ReconnectScheduled {
            attempt, due_at, ..
        } => sqlx::query(
            "update channels set reconnect_attempts = $2, reconnect_due_at = $3,
                 last_position = $4
             where channel_id = $1 and last_position < $4",
        )
        .bind(channel_id)
        .bind(attempt as i32)
        .bind(due_at)
        .bind(position),
        ChannelEvent::ChannelFailed {
            error,
            error_count,
            raw_status,
        } => sqlx::query(
            "update channels set status = 'ERROR', last_error = $2, error_count = $3,
                 raw_status = coalesce($4, raw_status), last_position = $5
             where channel_id = $1 and last_position < $5",
        )
        .bind(channel_id)
        .bind(error)
        .bind(error_count as i32)
        .bind(raw_status)
        .bind(position),
        ChannelEvent::CredentialsStored { .. } => sqlx::query(
            "update channels set has_credentials = true, last_position = $2
             where channel_id = $1 and last_position < $2",
        )
        .bind(channel_id)
        .bind(position),
        ChannelEvent::CredentialsViewed { .. } => return Ok(()),
        ChannelEvent::CredentialsRevoked => sqlx::query(
            "update channels set has_credentials = false, last_position = $2
             where channel_id = $1 and last_position < $2",
        )
        .bind(channel_id)
        .bind(position),
        ChannelEvent::BatchWindowConfigured { secs } => sqlx::query(
            "update channels set batch_window_secs = $2, last_position = $3
             where channel_id = $1 and last_position < $3",
        )
        .bind(channel_id)
        .bind(secs as i32)
        .bind(position),
        ChannelEvent::ChannelRemoved { .. } => sqlx::query(
            "update channels set removed_at = $2, status = 'DISCONNECTED', last_position = $3
             where channel_id = $1 and last_position < $3",
        )
        .bind(channel_id)
        .bind(event.recorded_at)
        .bind(position),
    };
    query.execute(conn).await?;
    Ok(())
}

async fn apply_meta_app(
    conn: &mut PgConnection,
    event: &RecordedEvent,
) -> Result<(), ProjectionError> {
    let position = event.global_position;
    // language=PostgreSQL
    let query = match payload(event)? {
        MetaAppEvent::MetaAppRegistered {
            app_id,
            meta_app_id,
            name,
        } => sqlx::query(
            "insert into meta_apps (app_id, meta_app_id, name, registered_at, last_position)
             values ($1, $2, $3, $4, $5)
             on conflict (app_id) do nothing",
        )
        .bind(app_id)
        .bind(meta_app_id)
        .bind(name)
        .bind(event.recorded_at)
        .bind(position),
        MetaAppEvent::MetaAppAssigned {
            app_id,
            channel_id,
            tenant_id,
        } => sqlx::query(
            "update meta_apps set channel_id = $2, tenant_id = $3, last_position = $4
             where app_id = $1 and last_position < $4",
        )
        .bind(app_id)
        .bind(channel_id)
        .bind(tenant_id.0)
        .bind(position),
        MetaAppEvent::MetaAppReleased { app_id, .. } => sqlx::query(
            "update meta_apps set channel_id = null, tenant_id = null, last_position = $2
             where app_id = $1 and last_position < $2",
        )
        .bind(app_id)
        .bind(position),
    };
    query.execute(conn).await?;
    Ok(())
}
