//! `GET /health` (the process is up) and `GET /ready` (the database answers and every
//! migration is applied).

use crate::app::AppState;
use crate::error::ApiError;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
}

/// The process is up.
#[utoipa::path(get, path = "/health", tag = "operations", security(()),
    responses((status = 200, description = "`{status: \"ok\"}`", body = Object)))]
pub(crate) async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// The database answers and every migration is applied.
#[utoipa::path(get, path = "/ready", tag = "operations", security(()),
    responses(
        (status = 200, description = "`{status: \"ready\", migrations}`", body = Object),
        (status = 503, description = "`unavailable`", body = crate::openapi::Problem,
            content_type = "application/problem+json"),
    ))]
pub(crate) async fn ready(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let unavailable =
        |detail: &str| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail);
    // language=PostgreSQL
    let applied: Vec<(i64,)> = sqlx::query_as("select version from _sqlx_migrations where success")
        .fetch_all(&state.pool)
        .await
        .map_err(|_| unavailable("the database is not reachable"))?;
    let expected = x8_eventstore::pool::MIGRATOR.iter().count();
    if applied.len() < expected {
        return Err(unavailable("migrations are not all applied"));
    }
    Ok(Json(
        json!({"status": "ready", "migrations": applied.len()}),
    ))
}
