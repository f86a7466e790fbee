//! Operations: `GET /api/v1/admin/projections` (ADMIN) → each projection's lag:
//! `[{name, events, seconds, checkpoint: {transaction_id, global_position}}]`, where
//! `events` is how many events of `$all` it has not applied yet and `seconds` the age of
//! the oldest of them.
//!
//! The Meta app pool (ADMIN):
//! - `POST /api/v1/admin/meta-apps` `{meta_app_id, name}` → 201 `{app_id, position}`;
//!   409 `meta_app_registered` for a Meta app id already in the pool
//! - `GET /api/v1/admin/meta-apps` → every app with the connection and business holding it

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ApiJson, IdempotencyKey, MinPosition};
use crate::openapi::{IdempotencyKeyHeader, MinPositionHeader, Problems};
use crate::routes::RequestId;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use x8_commands::channels::register_meta_app;
use x8_projections::channels::NAME as CHANNELS;
use x8_projections::ProjectionLag;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/projections", get(projections))
        .route("/admin/meta-apps", get(meta_apps).post(add_meta_app))
}

/// These routes' operations for the OpenAPI document (paths relative to `/api/v1`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(projections, meta_apps, add_meta_app))]
pub(crate) struct Api;

#[derive(Serialize)]
struct ProjectionStatus {
    name: &'static str,
    #[serde(flatten)]
    lag: ProjectionLag,
}

/// Each projection's lag (ADMIN).
#[utoipa::path(
    get, path = "/admin/projections",
    responses((status = 200, description = "`[{name, events, seconds, checkpoint: \
        {transaction_id, global_position}}]`: `events` not applied yet, `seconds` the age of \
        the oldest of them", body = [Object]), Problems)
)]
async fn projections(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<ProjectionStatus>>, ApiError> {
    caller.require_admin()?;
    let mut statuses = Vec::new();
    for projection in state.projections.projections() {
        let lag = state.projections.lag(projection.name()).await?;
        statuses.push(ProjectionStatus {
            name: projection.name(),
            lag,
        });
    }
    Ok(Json(statuses))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct AddMetaApp {
    meta_app_id: String,
    name: String,
}

#[derive(Serialize, utoipa::ToSchema)]
struct MetaAppAdded {
    app_id: Uuid,
    position: i64,
}

/// Adds a Meta app to the pool (ADMIN); 409 `meta_app_registered`.
#[utoipa::path(
    post, path = "/admin/meta-apps",
    params(IdempotencyKeyHeader),
    request_body = AddMetaApp,
    responses((status = 201, description = "Created", body = MetaAppAdded), Problems)
)]
async fn add_meta_app(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    ApiJson(body): ApiJson<AddMetaApp>,
) -> Result<(StatusCode, Json<MetaAppAdded>), ApiError> {
    caller.require_admin()?;
    let ctx = state.context(Some(&caller), key, request_id);
    let (app_id, position) =
        register_meta_app(&state.commands, &body.meta_app_id, &body.name, &ctx).await?;
    Ok((StatusCode::CREATED, Json(MetaAppAdded { app_id, position })))
}

/// A row of the `meta_apps` read model.
#[derive(Serialize, sqlx::FromRow, utoipa::ToSchema)]
struct MetaAppView {
    app_id: Uuid,
    meta_app_id: String,
    name: String,
    channel_id: Option<Uuid>,
    tenant_id: Option<Uuid>,
    registered_at: DateTime<Utc>,
    last_position: i64,
}

/// The Meta app pool, with the connection and business holding each app (ADMIN).
#[utoipa::path(
    get, path = "/admin/meta-apps",
    params(MinPositionHeader),
    responses((status = 200, description = "OK", body = [MetaAppView]), Problems)
)]
async fn meta_apps(
    State(state): State<AppState>,
    caller: Caller,
    MinPosition(position): MinPosition,
) -> Result<Json<Vec<MetaAppView>>, ApiError> {
    caller.require_admin()?;
    state.wait_for(CHANNELS, position).await?;
    // language=PostgreSQL
    let apps = sqlx::query_as("select * from meta_apps order by registered_at, app_id")
        .fetch_all(&state.pool)
        .await?;
    Ok(Json(apps))
}
