//! Managers:
//! - `POST /api/v1/managers` (ADMIN) `{email, password, name}` → 201 `{manager_id, position}`
//! - `GET /api/v1/managers/{id}/clients` (ADMIN, or that MANAGER) → its businesses

use super::{open_business_names, path_id, RequestId};
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ApiJson, IdempotencyKey, MinPosition};
use crate::openapi::{IdempotencyKeyHeader, MinPositionHeader, Problems};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use x8_commands::accounts::register_staff;
use x8_domain::user::Role;
use x8_projections::tenants::NAME as TENANTS;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/managers", post(create))
        .route("/managers/{id}/clients", get(clients))
}

/// These routes' operations for the OpenAPI document (paths relative to `/api/v1`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(create, clients))]
pub(crate) struct Api;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateManager {
    email: String,
    password: String,
    name: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ManagerCreated)]
struct Created {
    manager_id: Uuid,
    position: i64,
}

/// Creates a MANAGER user (ADMIN).
#[utoipa::path(
    post, path = "/managers",
    params(IdempotencyKeyHeader),
    request_body = CreateManager,
    responses((status = 201, description = "Created", body = Created), Problems)
)]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    ApiJson(body): ApiJson<CreateManager>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    caller.require_admin()?;
    let ctx = state.context(Some(&caller), key, request_id);
    let (manager_id, position) = register_staff(
        &state.commands,
        &body.email,
        body.password,
        &body.name,
        Role::Manager,
        &ctx,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(Created {
            manager_id: manager_id.0,
            position,
        }),
    ))
}

#[derive(Serialize, sqlx::FromRow, utoipa::ToSchema)]
struct Client {
    tenant_id: Uuid,
    name: String,
    status: String,
    plan: String,
    subscription_status: String,
    trial_ends_at: Option<DateTime<Utc>>,
    assigned_at: DateTime<Utc>,
}

/// A manager's businesses (ADMIN, or that MANAGER).
#[utoipa::path(
    get, path = "/managers/{id}/clients",
    params(("id" = Uuid, Path, description = "The MANAGER user"), MinPositionHeader),
    responses((status = 200, description = "OK", body = [Client]), Problems)
)]
async fn clients(
    State(state): State<AppState>,
    caller: Caller,
    MinPosition(position): MinPosition,
    Path(id): Path<String>,
) -> Result<Json<Vec<Client>>, ApiError> {
    let manager_id = path_id(&id)?;
    caller.require_manager_or_admin(manager_id)?;
    state.wait_for(TENANTS, position).await?;
    // language=PostgreSQL
    let mut clients: Vec<Client> = sqlx::query_as(
        "select t.tenant_id, t.name_sealed as name, t.status, t.plan, t.subscription_status, t.trial_ends_at,
                m.assigned_at
         from manager_clients m join tenants t using (tenant_id)
         where m.manager_id = $1
         order by m.assigned_at, t.tenant_id",
    )
    .bind(manager_id)
    .fetch_all(&state.pool)
    .await?;
    open_business_names(&state, &mut clients, |c| (c.tenant_id, &mut c.name)).await?;
    Ok(Json(clients))
}
