//! A business's hard delete (DOMAIN.md "Hard delete"):
//! - `DELETE /api/v1/tenants/{id}` → 202 `{erasure_id, tenant_id, status, not_before,
//!   position}`: by its owner, who re-enters the password (`{password}`; 403
//!   `password_required` without it, 403 `wrong_password`), or by an ADMIN (no body).
//!   Nothing is deleted by the request itself: the erasure process begins at
//!   `not_before` (now + `X8_ERASURE_GRACE_HOURS`). Asking again returns the same erasure.
//! - `POST /api/v1/tenants/{id}/erasure/cancel` (owner or ADMIN) → `{erasure_id, tenant_id,
//!   status: "cancelled", position}` during the grace period; 409 `erasure_started` after,
//!   409 `no_erasure_pending` without one.
//! - `GET /api/v1/admin/erasures/{id}` (ADMIN) → the erasure certificate: `{erasure_id,
//!   tenant_id, status, requested_by, requested_at, not_before, cancelled_by, cancelled_at,
//!   started_at, tenant_erased_at, completed_at, manual_actions, steps: [{kind, subject,
//!   outcome, failures, last_error, retry_at, completed_at}]}`; `outcome` is `done`,
//!   `nothing_to_do`, `not_configured`, `manual_action_required` or `null` (pending).
//!
//! After the erasure began, every request about the business is 410 `tenant_erased`.

use super::{path_id, RequestId};
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{IdempotencyKey, MinPosition, RawBody};
use crate::openapi::{IdempotencyKeyHeader, MinPositionHeader, Problems};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use x8_commands::erasure;
use x8_domain::tenant::Tenant;
use x8_domain::user::Role;
use x8_domain::TenantId;
use x8_projections::erasures::NAME as ERASURES;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tenants/{id}", axum::routing::delete(request))
        .route("/tenants/{id}/erasure/cancel", post(cancel))
        .route("/admin/erasures/{id}", get(certificate))
}

/// These routes' operations for the OpenAPI document (paths relative to `/api/v1`).
/// `DELETE /tenants/{id}` is listed with the tenants' operations: a path's operations
/// are documented by one module.
#[derive(utoipa::OpenApi)]
#[openapi(paths(cancel, certificate))]
pub(crate) struct Api;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Confirmation {
    /// The owner's password, re-entered.
    password: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ErasureRequested {
    erasure_id: Uuid,
    tenant_id: Uuid,
    /// `requested` (in its grace period) or `started`.
    status: &'static str,
    /// When the erasure begins (UTC).
    not_before: DateTime<Utc>,
    position: i64,
}

/// Asks for the business's hard delete: its owner (password re-entered) or an ADMIN.
#[utoipa::path(
    delete, path = "/tenants/{id}",
    params(("id" = Uuid, Path, description = "The business"), IdempotencyKeyHeader),
    request_body(content = Option<Confirmation>, description = "The owner's password; an \
        ADMIN sends no body"),
    responses((status = 202, description = "Accepted: the erasure begins at `not_before`",
        body = ErasureRequested), Problems)
)]
pub(crate) async fn request(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
    RawBody(body): RawBody,
) -> Result<(StatusCode, Json<ErasureRequested>), ApiError> {
    let tenant_id = TenantId(path_id(&id)?);
    let tenant = owned_or_admin(&state, &caller, tenant_id).await?;
    if caller.role != Role::Admin {
        confirm_password(&state, &caller, &body).await?;
    }
    if let Some(pending) = tenant.erasure().filter(|p| p.started) {
        // Erasing twice runs once: the running (or finished) erasure answers.
        return Ok((
            StatusCode::ACCEPTED,
            Json(ErasureRequested {
                erasure_id: pending.erasure_id,
                tenant_id: tenant_id.0,
                status: "started",
                not_before: pending.not_before,
                position: 0,
            }),
        ));
    }
    let ctx = state.context(Some(&caller), key, request_id);
    let (pending, position) =
        erasure::request(&state.commands, tenant_id, caller.user_id, &ctx).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(ErasureRequested {
            erasure_id: pending.erasure_id,
            tenant_id: tenant_id.0,
            status: if pending.started {
                "started"
            } else {
                "requested"
            },
            not_before: pending.not_before,
            position,
        }),
    ))
}

#[derive(Serialize, utoipa::ToSchema)]
struct ErasureCancelled {
    erasure_id: Uuid,
    tenant_id: Uuid,
    /// `cancelled`.
    status: &'static str,
    position: i64,
}

/// Cancels the business's erasure during its grace period (owner or ADMIN).
#[utoipa::path(
    post, path = "/tenants/{id}/erasure/cancel",
    params(("id" = Uuid, Path, description = "The business"), IdempotencyKeyHeader),
    responses((status = 200, description = "OK", body = ErasureCancelled), Problems)
)]
async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
) -> Result<Json<ErasureCancelled>, ApiError> {
    let tenant_id = TenantId(path_id(&id)?);
    owned_or_admin(&state, &caller, tenant_id).await?;
    let ctx = state.context(Some(&caller), key, request_id);
    let (erasure_id, position) =
        erasure::cancel(&state.commands, tenant_id, caller.user_id, &ctx).await?;
    Ok(Json(ErasureCancelled {
        erasure_id,
        tenant_id: tenant_id.0,
        status: "cancelled",
        position,
    }))
}

/// The business, if the caller is its owner or an ADMIN (a manager may not erase it).
///
/// # Errors
/// 404 `not_found` for a business the caller may not see; 403 `forbidden` for its
/// manager.
async fn owned_or_admin(
    state: &AppState,
    caller: &Caller,
    tenant_id: TenantId,
) -> Result<Tenant, ApiError> {
    let tenant = super::visible_tenant(state, caller, tenant_id).await?;
    match caller.role {
        Role::Admin | Role::Client => Ok(tenant),
        Role::Manager => Err(ApiError::forbidden()),
    }
}

/// Checks the owner's re-entered password.
///
/// # Errors
/// 400 for a malformed body; 403 `password_required` without one, `wrong_password`.
async fn confirm_password(state: &AppState, caller: &Caller, body: &[u8]) -> Result<(), ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "password_required",
            "the owner re-enters the password to erase the business",
        ));
    }
    let Confirmation { password } =
        serde_json::from_slice(body).map_err(|e| ApiError::invalid_body(e.to_string()))?;
    let user = state
        .commands
        .users
        .load(&caller.user_id.to_string())
        .await?;
    let valid = user.is_registered()
        && x8_commands::accounts::verify_password::<std::convert::Infallible>(
            &state.commands,
            &user,
            password,
        )
        .await
        .map_err(ApiError::internal)?;
    if valid {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "wrong_password",
            "the password is not the owner's",
        ))
    }
}

/// A row of the `erasures` read model.
#[derive(Serialize, sqlx::FromRow, utoipa::ToSchema)]
struct Certificate {
    erasure_id: Uuid,
    tenant_id: Uuid,
    /// `requested`, `cancelled`, `running` or `completed`.
    status: String,
    requested_by: Uuid,
    requested_at: DateTime<Utc>,
    not_before: DateTime<Utc>,
    cancelled_by: Option<Uuid>,
    cancelled_at: Option<DateTime<Utc>>,
    started_at: Option<DateTime<Utc>>,
    tenant_erased_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
    /// Steps left for someone to finish by hand.
    #[sqlx(default)]
    manual_actions: i64,
    #[sqlx(skip)]
    steps: Vec<CertificateStep>,
}

/// One step of an erasure.
#[derive(Serialize, sqlx::FromRow, utoipa::ToSchema)]
struct CertificateStep {
    /// E.g. `remove_channel`, `cancel_subscription`, `external_cleanup`, `erase_tenant`,
    /// `destroy_data_key`.
    kind: String,
    /// The stream (or cleanup target) it acts on.
    subject: String,
    /// `done`, `nothing_to_do`, `not_configured`, `manual_action_required`; `null` while
    /// pending.
    outcome: Option<String>,
    /// Failed attempts.
    failures: i32,
    last_error: Option<String>,
    retry_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
}

/// The erasure certificate: each step with its outcome and time (ADMIN).
#[utoipa::path(
    get, path = "/admin/erasures/{id}",
    params(("id" = Uuid, Path, description = "The erasure"), MinPositionHeader),
    responses((status = 200, description = "OK", body = Certificate), Problems)
)]
async fn certificate(
    State(state): State<AppState>,
    caller: Caller,
    MinPosition(min_position): MinPosition,
    Path(id): Path<String>,
) -> Result<Json<Certificate>, ApiError> {
    caller.require_admin()?;
    let erasure_id = path_id(&id)?;
    state.wait_for(ERASURES, min_position).await?;
    let pool = &state.pool;
    // language=PostgreSQL
    let mut certificate: Certificate = sqlx::query_as(
        "select e.*, (select count(*) from erasure_steps s
                      where s.erasure_id = e.erasure_id
                        and s.outcome = 'manual_action_required') as manual_actions
         from erasures e where erasure_id = $1",
    )
    .bind(erasure_id)
    .fetch_optional(pool)
    .await?
    .ok_or_else(ApiError::not_found)?;
    // language=PostgreSQL
    certificate.steps = sqlx::query_as(
        "select kind, subject, outcome, failures, last_error, retry_at, completed_at
         from erasure_steps where erasure_id = $1 order by position",
    )
    .bind(erasure_id)
    .fetch_all(pool)
    .await?;
    Ok(Json(certificate))
}
