//! Operations: `GET /api/v1/admin/projections` (ADMIN) → each projection's lag:
//! `[{name, events, seconds, checkpoint: {transaction_id, global_position}}]`, where
//! `events` is how many events of `$all` it has not applied yet and `seconds` the age of
//! the oldest of them.

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use x8_projections::ProjectionLag;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/admin/projections", get(projections))
}

#[derive(Serialize)]
struct ProjectionStatus {
    name: &'static str,
    #[serde(flatten)]
    lag: ProjectionLag,
}

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
