//! Dashboards, read from projections only (`X-Min-Position` honoured on all of them):
//! - `GET /api/v1/dashboards/client/{tenant_id}` → plan, status, usage; per company the
//!   messages by direction and type, mean and median first-response time, open and
//!   unanswered conversations, channel statuses; customer payments by status and currency;
//!   deliveries by status; loyalty points issued, redeemed, outstanding and NPS
//!   ([`ClientDashboard`](crate::queries::dashboards::ClientDashboard)).
//! - `GET /api/v1/dashboards/manager/{manager_id}` → `{manager_id, businesses: [{tenant_id,
//!   name, status, plan, subscription_status, renews_at, cancel_at_period_end, over_limit,
//!   channels_used, channel_limit, channels_in_error, last_activity_at}]}`.
//! - `GET /api/v1/dashboards/admin` (ADMIN; 403 `forbidden` otherwise) → businesses by
//!   status, subscriptions by status, trials (and those ending within 3 days), MRR per
//!   currency, churn this month, channels by platform and status, webhook failures in the
//!   last 24 hours ([`AdminDashboard`](crate::queries::dashboards::AdminDashboard)).
//!
//! A CLIENT sees its own business, a MANAGER its businesses and its own dashboard, an
//! ADMIN everything; anything else is 404.

use super::{
    authorized_tenant, open_business_names, open_company_names, open_sealed, path_id, scope_key,
};
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::MinPosition;
use crate::openapi::MinPositionHeader;
use crate::queries::dashboards::{self, AdminDashboard, ClientDashboard, ManagedBusiness};
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use uuid::Uuid;
use x8_commands::accounts::tenant_name_purpose;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/dashboards/client/{tenant_id}", get(client))
        .route("/dashboards/manager/{manager_id}", get(manager))
        .route("/dashboards/admin", get(admin))
}

/// These routes' operations for the OpenAPI document (paths relative to `/api/v1`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(client, manager, admin))]
pub(crate) struct Api;

/// Waits until every projection a dashboard reads reflects `position`.
async fn caught_up(state: &AppState, position: i64) -> Result<(), ApiError> {
    for projection in dashboards::PROJECTIONS {
        state.wait_for(projection, position).await?;
    }
    Ok(())
}

/// The client dashboard of a business.
#[utoipa::path(get, path = "/dashboards/client/{tenant_id}",
    params(("tenant_id" = Uuid, Path, description = "The business"), MinPositionHeader),
    responses(
        (status = 200, body = ClientDashboard),
        (status = 404, description = "`not_found`: no such business, or not the caller's",
            body = crate::openapi::Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn client(
    State(state): State<AppState>,
    caller: Caller,
    MinPosition(position): MinPosition,
    Path(id): Path<String>,
) -> Result<Json<ClientDashboard>, ApiError> {
    let tenant_id = authorized_tenant(&state, &caller, &id).await?;
    caught_up(&state, position).await?;
    let mut dashboard = dashboards::client(&state.pool, tenant_id.0)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let key = scope_key(&state, tenant_id.0).await?;
    dashboard.name = open_sealed(&key, &tenant_name_purpose(tenant_id.0), &dashboard.name)?;
    open_company_names(&key, &mut dashboard.companies, |c| {
        (c.company_id, &mut c.name)
    })?;
    Ok(Json(dashboard))
}

/// A manager's businesses.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ManagerDashboard {
    manager_id: Uuid,
    businesses: Vec<ManagedBusiness>,
}

/// A manager's dashboard: its businesses.
#[utoipa::path(get, path = "/dashboards/manager/{manager_id}",
    params(("manager_id" = Uuid, Path, description = "The MANAGER user"), MinPositionHeader),
    responses(
        (status = 200, body = ManagerDashboard),
        (status = 404, description = "`not_found`: another manager's, or a CLIENT asking",
            body = crate::openapi::Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn manager(
    State(state): State<AppState>,
    caller: Caller,
    MinPosition(position): MinPosition,
    Path(id): Path<String>,
) -> Result<Json<ManagerDashboard>, ApiError> {
    let manager_id = path_id(&id)?;
    caller.require_manager_or_admin(manager_id)?;
    caught_up(&state, position).await?;
    let mut businesses = dashboards::manager(&state.pool, manager_id).await?;
    open_business_names(&state, &mut businesses, |b| (b.tenant_id, &mut b.name)).await?;
    businesses.sort_by(|a, b| {
        (a.name.to_lowercase(), a.tenant_id).cmp(&(b.name.to_lowercase(), b.tenant_id))
    });
    Ok(Json(ManagerDashboard {
        manager_id,
        businesses,
    }))
}

/// The platform dashboard (ADMIN).
#[utoipa::path(get, path = "/dashboards/admin",
    params(MinPositionHeader),
    responses(
        (status = 200, body = AdminDashboard),
        (status = 403, description = "`forbidden`: not an ADMIN",
            body = crate::openapi::Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn admin(
    State(state): State<AppState>,
    caller: Caller,
    MinPosition(position): MinPosition,
) -> Result<Json<AdminDashboard>, ApiError> {
    caller.require_admin()?;
    caught_up(&state, position).await?;
    let now = state.commands.clock.now();
    Ok(Json(dashboards::admin(&state.pool, now).await?))
}
