//! `POST /api/v1/auth/login` and `POST /api/v1/auth/refresh`.

use crate::app::AppState;
use crate::auth::{TokenKind, TokenPair};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::openapi::Problems;
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

/// These routes' operations for the OpenAPI document (paths relative to `/api/v1`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(login, refresh))]
pub(crate) struct Api;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Login {
    email: String,
    password: String,
}

/// Exchanges e-mail and password for a token pair; 401 `invalid_credentials`, 429 `rate_limited`.
#[utoipa::path(
    post, path = "/auth/login",
    security(()),
    request_body = Login,
    responses((status = 200, description = "OK", body = TokenPair), Problems)
)]
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

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Refresh {
    refresh_token: String,
}

/// Exchanges a refresh token for a new pair; 401 `unauthorized`.
#[utoipa::path(
    post, path = "/auth/refresh",
    security(()),
    request_body = Refresh,
    responses((status = 200, description = "OK", body = TokenPair), Problems)
)]
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
