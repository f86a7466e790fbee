//! The `tenants` and `manager_clients` read models (migrations/0002).
//!
//! Every row remembers the global position of the last event applied to it, and updates
//! are guarded by it, so re-applying an event (e.g. by hand) is harmless.

use crate::projection::{payload, stream_uuid, Projection, ProjectionError};
use futures::future::BoxFuture;
use sqlx::PgConnection;
use uuid::Uuid;
use x8_domain::tenant::TenantEvent;
use x8_eventstore::RecordedEvent;

/// Builds `tenants` (one row per business) and `manager_clients` (manager → businesses).
pub struct TenantsProjection;

/// The projection's name, for waiting on it.
pub const NAME: &str = "tenants";

impl Projection for TenantsProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        event: &'a RecordedEvent,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(async move {
            if event.aggregate_type != "tenant" {
                return Ok(());
            }
            let tenant_id = stream_uuid(event)?;
            apply(conn, tenant_id, event, payload(event)?).await
        })
    }

    fn tenant_tables(&self) -> &'static [&'static str] {
        &["manager_clients", "tenants"]
    }

    fn tables(&self) -> &'static [&'static str] {
        &["tenants", "manager_clients"]
    }
}

async fn apply(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    event: &RecordedEvent,
    payload: TenantEvent,
) -> Result<(), ProjectionError> {
    let position = event.global_position;
    match payload {
        TenantEvent::TenantRegistered {
            name,
            owner_user_id,
            plan,
            subscription_status,
            channel_limit,
            registered_at,
            trial_ends_at,
            ..
        } => {
            // language=PostgreSQL
            sqlx::query(
                "insert into tenants (tenant_id, name_sealed, status, plan, subscription_status,
                     channel_limit, trial_ends_at, owner_user_id, registered_at, last_position)
                 values ($1, $2, 'active', $3, $4, $5, $6, $7, $8, $9)
                 on conflict (tenant_id) do nothing",
            )
            .bind(tenant_id)
            .bind(name.as_str())
            .bind(plan.as_str())
            .bind(subscription_status.as_str())
            .bind(channel_limit as i32)
            .bind(trial_ends_at)
            .bind(owner_user_id.0)
            .bind(registered_at)
            .bind(position)
            .execute(&mut *conn)
            .await?;
        }
        TenantEvent::ManagerAssigned { manager_id }
        | TenantEvent::ManagerReassigned { to: manager_id, .. } => {
            if set_manager(conn, tenant_id, Some(manager_id.0), position).await? {
                // language=PostgreSQL
                sqlx::query(
                    "insert into manager_clients (tenant_id, manager_id, assigned_at, last_position)
                     values ($1, $2, $3, $4)
                     on conflict (tenant_id) do update
                         set manager_id = excluded.manager_id, assigned_at = excluded.assigned_at,
                             last_position = excluded.last_position",
                )
                .bind(tenant_id)
                .bind(manager_id.0)
                .bind(event.recorded_at)
                .bind(position)
                .execute(&mut *conn)
                .await?;
            }
        }
        TenantEvent::ManagerUnassigned { .. } => {
            if set_manager(conn, tenant_id, None, position).await? {
                // language=PostgreSQL
                sqlx::query("delete from manager_clients where tenant_id = $1")
                    .bind(tenant_id)
                    .execute(&mut *conn)
                    .await?;
            }
        }
        // Company codes are read from the companies' own streams (the `companies` projection).
        TenantEvent::CompanyCodeAllocated { .. } => {}
        TenantEvent::TrialExpired { .. } => {
            set_field(conn, tenant_id, "subscription_status", "expired", position).await?;
        }
        TenantEvent::PlanChanged {
            plan,
            channel_limit,
            subscription_status,
            channels_used,
            over_limit,
            ..
        } => {
            // language=PostgreSQL
            sqlx::query(
                "update tenants set plan = $2, channel_limit = $3, subscription_status = $4,
                     channels_used = $5, over_limit = $6, last_position = $7
                 where tenant_id = $1 and last_position < $7",
            )
            .bind(tenant_id)
            .bind(plan.as_str())
            .bind(channel_limit.map(|limit| limit as i32))
            .bind(subscription_status.as_str())
            .bind(channels_used as i32)
            .bind(over_limit)
            .bind(position)
            .execute(&mut *conn)
            .await?;
        }
        TenantEvent::ChannelSlotReserved { channels_used, .. } => {
            set_usage(conn, tenant_id, channels_used, None, position).await?;
        }
        TenantEvent::ChannelSlotReleased {
            channels_used,
            over_limit,
            ..
        } => {
            set_usage(conn, tenant_id, channels_used, Some(over_limit), position).await?;
        }
        TenantEvent::TenantSuspended { .. } => {
            set_field(conn, tenant_id, "status", "suspended", position).await?;
        }
        TenantEvent::TimeZoneChanged { time_zone } => {
            set_field(conn, tenant_id, "time_zone", time_zone.as_str(), position).await?;
        }
        TenantEvent::TenantErasureRequested {
            erasure_id,
            not_before,
            ..
        } => set_erasure(conn, tenant_id, Some((erasure_id, not_before)), position).await?,
        TenantEvent::TenantErasureCancelled { .. } => {
            set_erasure(conn, tenant_id, None, position).await?;
        }
        TenantEvent::TenantErasureStarted { .. } => {
            set_field(conn, tenant_id, "status", "erasing", position).await?;
        }
        // The runner deletes the business's rows (`tenant_tables`).
        TenantEvent::TenantErased { .. } => {}
    }
    Ok(())
}

/// Sets a text column of the tenant's row unless the row already reflects a later event.
/// `column` is one of this module's literals, never input.
async fn set_field(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    column: &'static str,
    value: &str,
    position: i64,
) -> Result<(), ProjectionError> {
    // language=PostgreSQL
    sqlx::query(&format!(
        "update tenants set {column} = $2, last_position = $3
         where tenant_id = $1 and last_position < $3"
    ))
    .bind(tenant_id)
    .bind(value)
    .bind(position)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Sets (or clears) the business's pending erasure.
async fn set_erasure(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    erasure: Option<(Uuid, chrono::DateTime<chrono::Utc>)>,
    position: i64,
) -> Result<(), ProjectionError> {
    // language=PostgreSQL
    sqlx::query(
        "update tenants set erasure_id = $2, erasure_not_before = $3, last_position = $4
         where tenant_id = $1 and last_position < $4",
    )
    .bind(tenant_id)
    .bind(erasure.map(|(id, _)| id))
    .bind(erasure.map(|(_, at)| at))
    .bind(position)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Sets the channels in use (and the over-limit flag when the event says).
async fn set_usage(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    channels_used: u32,
    over_limit: Option<bool>,
    position: i64,
) -> Result<(), ProjectionError> {
    // language=PostgreSQL
    sqlx::query(
        "update tenants set channels_used = $2, over_limit = coalesce($3, over_limit),
             last_position = $4
         where tenant_id = $1 and last_position < $4",
    )
    .bind(tenant_id)
    .bind(channels_used as i32)
    .bind(over_limit)
    .bind(position)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Sets the tenant's manager; `false` when the row already reflects a later event.
async fn set_manager(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    manager_id: Option<Uuid>,
    position: i64,
) -> Result<bool, ProjectionError> {
    // language=PostgreSQL
    let result = sqlx::query(
        "update tenants set manager_id = $2, last_position = $3
         where tenant_id = $1 and last_position < $3",
    )
    .bind(tenant_id)
    .bind(manager_id)
    .bind(position)
    .execute(&mut *conn)
    .await?;
    Ok(result.rows_affected() == 1)
}
