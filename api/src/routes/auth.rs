//! `POST /api/v1/auth/login` and `POST /api/v1/auth/refresh`.

use crate::app::AppState;
use crate::auth::{TokenKind, TokenPair};
use crate::error::ApiError;
use crate::extract::ApiJson;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use x8_commands::accounts::authenticate;
use x8_domain::UserId;

/// The routes.
pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/auth/login",
            post(login).layer(crate::rate_limit::layer(state.auth_rate)),
        )
        .route("/auth/refresh", post(refresh))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    email: String,
    password: String,
}

async fn login(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Login>,
) -> Result<Json<TokenPair>, ApiError> {
    let user = authenticate(&state.commands, &body.email, body.password)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "wrong e-mail or password",
            )
        })?;
    Ok(Json(state.auth.issue(
        user.id(),
        user.role(),
        user.tenant_id(),
    )?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Refresh {
    refresh_token: String,
}

async fn refresh(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Refresh>,
) -> Result<Json<TokenPair>, ApiError> {
    let claims = state.auth.verify(&body.refresh_token, TokenKind::Refresh)?;
    let user = state.commands.users.load(&claims.sub.to_string()).await?;
    if !user.is_registered() {
        return Err(ApiError::unauthorized());
    }
    Ok(Json(state.auth.issue(
        UserId(claims.sub),
        user.role(),
        user.tenant_id(),
    )?))
}
