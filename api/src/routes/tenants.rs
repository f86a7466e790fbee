//! Businesses (tenants):
//! - `POST /api/v1/tenants` (public) `{name, owner_email, owner_password}` → 201 `{tenant_id, position}`
//! - `GET /api/v1/tenants/{id}` → the `tenants` read model row
//! - `PUT /api/v1/tenants/{id}/manager` (ADMIN) `{manager_id, replaces?}` → `{tenant_id, manager_id, position}`
//! - `DELETE /api/v1/tenants/{id}/manager` (ADMIN) → `{tenant_id, position}`
//! - `POST /api/v1/tenants/{id}/suspension` (ADMIN) `{reason}` → `{tenant_id, position}`
//! - `PUT /api/v1/tenants/{id}/plan` `{plan, channel_limit?}` → `{tenant_id, plan,
//!   channel_limit, over_limit, position}`. An ADMIN sets any plan (`channel_limit` is
//!   required for SPECIAL) and is never refused for the channel count: a business left with
//!   too many channels is marked `over_limit`. The business (its CLIENT or MANAGER) may
//!   only downgrade to FREE, SINGLE or DOUBLE (403 `upgrade_requires_checkout`), and not
//!   while it holds more channels than the new limit (409 `over_channel_limit`, listing the
//!   `connection_ids` to remove).
//! - `GET /api/v1/tenants/{id}/usage` → `{plan, status, trial_ends_at, channels_used,
//!   channel_limit, over_limit}`; `status` is the subscription status, `channel_limit`
//!   `null` is unlimited.
//! - `PUT /api/v1/tenants/{id}/time-zone` `{time_zone}` (IANA name, e.g. `Europe/Belgrade`)
//!   → `{tenant_id, time_zone, position}`; daily metrics cut days in it (default `UTC`).
//!   400 `invalid_time_zone`.
//!
//! A CLIENT sees only its own business, a MANAGER only those assigned to it, an ADMIN all;
//! anything else is 404, so existence is not revealed.

use super::{authorize_tenant, open_business_names, path_id, RequestId};
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ApiJson, IdempotencyKey, MinPosition};
use crate::openapi::{IdempotencyKeyHeader, MinPositionHeader, Problems};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use x8_commands::accounts::register_business;
use x8_commands::tenants::{assign_manager, execute};
use x8_domain::tenant::TenantCommand;
use x8_domain::time_zone::{InvalidTimeZone, TimeZone};
use x8_domain::user::Role;
use x8_domain::{Plan, TenantId, UserId};
use x8_projections::tenants::NAME as TENANTS;

/// The routes.
pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/tenants",
            post(register).layer(crate::rate_limit::layer(state.auth_rate)),
        )
        .route("/tenants/{id}", get(show))
        .route(
            "/tenants/{id}/manager",
            put(set_manager).delete(unassign_manager),
        )
        .route("/tenants/{id}/suspension", post(suspend))
        .route("/tenants/{id}/plan", put(set_plan))
        .route("/tenants/{id}/usage", get(usage))
        .route("/tenants/{id}/time-zone", put(set_time_zone))
}

/// These routes' operations for the OpenAPI document (paths relative to `/api/v1`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    register,
    show,
    super::erasures::request,
    set_manager,
    unassign_manager,
    suspend,
    set_plan,
    usage,
    set_time_zone
))]
pub(crate) struct Api;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Register {
    name: String,
    owner_email: String,
    owner_password: String,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Registered {
    tenant_id: Uuid,
    position: i64,
}

/// Registers a business and its owner (public); 429 `rate_limited`.
#[utoipa::path(
    post, path = "/tenants",
    security(()),
    params(IdempotencyKeyHeader),
    request_body = Register,
    responses((status = 201, description = "Created", body = Registered), Problems)
)]
async fn register(
    State(state): State<AppState>,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    ApiJson(body): ApiJson<Register>,
) -> Result<(StatusCode, Json<Registered>), ApiError> {
    let ctx = state.context(None, key, request_id);
    let registration = register_business(
        &state.commands,
        &body.name,
        &body.owner_email,
        body.owner_password,
        &ctx,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(Registered {
            tenant_id: registration.tenant_id.0,
            position: registration.position,
        }),
    ))
}

/// A row of the `tenants` read model.
#[derive(Serialize, sqlx::FromRow, utoipa::ToSchema)]
struct TenantView {
    tenant_id: Uuid,
    #[sqlx(rename = "name_sealed")]
    name: String,
    status: String,
    plan: String,
    subscription_status: String,
    channel_limit: Option<i32>,
    trial_ends_at: Option<DateTime<Utc>>,
    channels_used: i32,
    over_limit: bool,
    manager_id: Option<Uuid>,
    owner_user_id: Uuid,
    registered_at: DateTime<Utc>,
    time_zone: String,
    last_position: i64,
}

/// The business (its `tenants` read-model row).
#[utoipa::path(
    get, path = "/tenants/{id}",
    params(("id" = Uuid, Path, description = "The business"), MinPositionHeader),
    responses((status = 200, description = "OK", body = TenantView), Problems)
)]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    MinPosition(position): MinPosition,
    Path(id): Path<String>,
) -> Result<Json<TenantView>, ApiError> {
    let tenant_id = TenantId(path_id(&id)?);
    authorize_tenant(&state, &caller, tenant_id).await?;
    state.wait_for(TENANTS, position).await?;
    // language=PostgreSQL
    let view: TenantView = sqlx::query_as("select * from tenants where tenant_id = $1")
        .bind(tenant_id.0)
        .fetch_optional(&state.pool)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let mut views = [view];
    open_business_names(&state, &mut views, |v| (v.tenant_id, &mut v.name)).await?;
    let [view] = views;
    Ok(Json(view))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SetManager {
    manager_id: Uuid,
    /// For a hand-over: the manager the business has now.
    #[serde(default)]
    replaces: Option<Uuid>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ManagerSet {
    tenant_id: Uuid,
    manager_id: Uuid,
    position: i64,
}

/// Assigns the business's manager (ADMIN).
#[utoipa::path(
    put, path = "/tenants/{id}/manager",
    params(("id" = Uuid, Path, description = "The business"), IdempotencyKeyHeader),
    request_body = SetManager,
    responses((status = 200, description = "OK", body = ManagerSet), Problems)
)]
async fn set_manager(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SetManager>,
) -> Result<Json<ManagerSet>, ApiError> {
    caller.require_admin()?;
    let tenant_id = TenantId(path_id(&id)?);
    let ctx = state.context(Some(&caller), key, request_id);
    let outcome = assign_manager(
        &state.commands,
        tenant_id,
        UserId(body.manager_id),
        body.replaces.map(UserId),
        &ctx,
    )
    .await?;
    Ok(Json(ManagerSet {
        tenant_id: tenant_id.0,
        manager_id: body.manager_id,
        position: outcome.position(),
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = TenantChanged)]
struct Changed {
    tenant_id: Uuid,
    position: i64,
}

/// Unassigns the business's manager (ADMIN).
#[utoipa::path(
    delete, path = "/tenants/{id}/manager",
    params(("id" = Uuid, Path, description = "The business"), IdempotencyKeyHeader),
    responses((status = 200, description = "OK", body = Changed), Problems)
)]
async fn unassign_manager(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
) -> Result<Json<Changed>, ApiError> {
    caller.require_admin()?;
    let tenant_id = TenantId(path_id(&id)?);
    let ctx = state.context(Some(&caller), key, request_id);
    let outcome = execute(
        &state.commands,
        tenant_id,
        TenantCommand::UnassignManager,
        &ctx,
    )
    .await?;
    Ok(Json(Changed {
        tenant_id: tenant_id.0,
        position: outcome.position(),
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Suspend {
    reason: String,
}

/// Suspends the business (ADMIN).
#[utoipa::path(
    post, path = "/tenants/{id}/suspension",
    params(("id" = Uuid, Path, description = "The business"), IdempotencyKeyHeader),
    request_body = Suspend,
    responses((status = 200, description = "OK", body = Changed), Problems)
)]
async fn suspend(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Suspend>,
) -> Result<Json<Changed>, ApiError> {
    caller.require_admin()?;
    let tenant_id = TenantId(path_id(&id)?);
    let ctx = state.context(Some(&caller), key, request_id);
    let command = TenantCommand::SuspendTenant {
        reason: body.reason,
    };
    let outcome = execute(&state.commands, tenant_id, command, &ctx).await?;
    Ok(Json(Changed {
        tenant_id: tenant_id.0,
        position: outcome.position(),
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SetPlan {
    plan: Plan,
    #[serde(default)]
    channel_limit: Option<u32>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct PlanSet {
    tenant_id: Uuid,
    plan: Plan,
    channel_limit: Option<u32>,
    over_limit: bool,
    position: i64,
}

/// Changes the plan: an ADMIN any plan; the business only downgrades (403
/// `upgrade_requires_checkout`, 409 `over_channel_limit`).
#[utoipa::path(
    put, path = "/tenants/{id}/plan",
    params(("id" = Uuid, Path, description = "The business"), IdempotencyKeyHeader),
    request_body = SetPlan,
    responses((status = 200, description = "OK", body = PlanSet), Problems)
)]
async fn set_plan(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SetPlan>,
) -> Result<Json<PlanSet>, ApiError> {
    let tenant_id = TenantId(path_id(&id)?);
    authorize_tenant(&state, &caller, tenant_id).await?;
    let command = match (caller.role, body.channel_limit) {
        (Role::Admin, channel_limit) => TenantCommand::SetPlan {
            plan: body.plan,
            channel_limit,
        },
        (_, None) => TenantCommand::RequestDowngrade { plan: body.plan },
        (_, Some(_)) => {
            return Err(ApiError::forbidden().with("detail", "only an ADMIN sets a channel limit"))
        }
    };
    let ctx = state.context(Some(&caller), key, request_id);
    let outcome = execute(&state.commands, tenant_id, command, &ctx).await?;
    let tenant = state.commands.tenants.load(&tenant_id.to_string()).await?;
    Ok(Json(PlanSet {
        tenant_id: tenant_id.0,
        plan: tenant.plan(),
        channel_limit: tenant.channel_limit(),
        over_limit: tenant.over_limit(),
        position: outcome.position(),
    }))
}

/// Plan usage, from the `tenants` read model.
#[derive(Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[schema(as = TenantUsage)]
struct Usage {
    plan: String,
    #[sqlx(rename = "subscription_status")]
    status: String,
    trial_ends_at: Option<DateTime<Utc>>,
    channels_used: i32,
    channel_limit: Option<i32>,
    over_limit: bool,
}

/// Plan, subscription status and channel usage (`channel_limit` null is unlimited).
#[utoipa::path(
    get, path = "/tenants/{id}/usage",
    params(("id" = Uuid, Path, description = "The business"), MinPositionHeader),
    responses((status = 200, description = "OK", body = Usage), Problems)
)]
async fn usage(
    State(state): State<AppState>,
    caller: Caller,
    MinPosition(position): MinPosition,
    Path(id): Path<String>,
) -> Result<Json<Usage>, ApiError> {
    let tenant_id = TenantId(path_id(&id)?);
    authorize_tenant(&state, &caller, tenant_id).await?;
    state.wait_for(TENANTS, position).await?;
    // language=PostgreSQL
    let usage: Usage = sqlx::query_as(
        "select plan, subscription_status, trial_ends_at, channels_used, channel_limit,
                over_limit
         from tenants where tenant_id = $1",
    )
    .bind(tenant_id.0)
    .fetch_optional(&state.pool)
    .await?
    .ok_or_else(ApiError::not_found)?;
    Ok(Json(usage))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SetTimeZone {
    /// An IANA name, e.g. `Europe/Belgrade`.
    time_zone: String,
}

#[derive(Serialize, utoipa::ToSchema)]
struct TimeZoneSet {
    tenant_id: Uuid,
    time_zone: String,
    position: i64,
}

/// `PUT /tenants/{id}/time-zone`: where the business's days start, for daily metrics.
/// 400 `invalid_time_zone` for a name that is not in the IANA tz database.
#[utoipa::path(
    put, path = "/tenants/{id}/time-zone",
    params(("id" = Uuid, Path, description = "The business"), IdempotencyKeyHeader),
    request_body = SetTimeZone,
    responses((status = 200, description = "OK", body = TimeZoneSet), Problems)
)]
async fn set_time_zone(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SetTimeZone>,
) -> Result<Json<TimeZoneSet>, ApiError> {
    let tenant_id = TenantId(path_id(&id)?);
    authorize_tenant(&state, &caller, tenant_id).await?;
    let time_zone: TimeZone = body.time_zone.parse().map_err(|e: InvalidTimeZone| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_time_zone", e.to_string())
    })?;
    let ctx = state.context(Some(&caller), key, request_id);
    let command = TenantCommand::SetTimeZone {
        time_zone: time_zone.clone(),
    };
    let outcome = execute(&state.commands, tenant_id, command, &ctx).await?;
    Ok(Json(TimeZoneSet {
        tenant_id: tenant_id.0,
        time_zone: time_zone.to_string(),
        position: outcome.position(),
    }))
}
