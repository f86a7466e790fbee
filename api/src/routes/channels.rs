//! Channel connections:
//! - `POST /api/v1/companies/{id}/channels` `{platform}` (`whatsapp`|`telegram`|
//!   `instagram`|`facebook`|`email`|`tiktok`|`viber`) → 201 `{channel_id, status, position}`;
//!   409 `over_channel_limit` (with `connection_ids` to remove), `channels_restricted`,
//!   `meta_app_pool_empty`
//! - `GET /api/v1/companies/{id}/channels` → the company's connections (not removed)
//! - `GET /api/v1/channels/{id}` → one connection (removed ones too, with `removed_at`)
//! - `DELETE /api/v1/channels/{id}` → `{channel_id, position}`: removes it, gives its
//!   slot and Meta app back
//!
//! - `PUT /api/v1/channels/{id}/credentials` `{<name>: <string>, …}` (the provider's tokens
//!   and keys, at most 32 fields) → `{channel_id, position}`: sealed with the tenant's data
//!   key before they enter an event (see `x8_commands::vault`)
//! - `GET /api/v1/channels/{id}/credentials` → `{channel_id, credentials, position}`, with
//!   `Cache-Control: no-store`; every read first appends `CredentialsViewed` (who; the
//!   event's time is when) for auditors. 404 `no_credentials` when none were stored.
//!
//! - `PUT /api/v1/channels/{id}/batch-window` `{secs}` (1–300; default 10) →
//!   `{channel_id, position}`: how long consecutive inbound messages are gathered into one
//!   batch for the assistant; 422 `invalid_batch_window`.
//!
//! - `GET /api/v1/channels/{id}/qr` (WhatsApp) → `{qr, qr_attempts, pairing_code_offered}`:
//!   the QR value to render, from WAHA
//! - `POST /api/v1/channels/{id}/pairing-code` (WhatsApp) `{phone_number}` (digits, with
//!   country code) → `{code}`; 409 `pairing_code_not_offered` before 3 failed QR attempts
//! - WAHA failures are 502 `provider_error`; 409 `not_whatsapp` on other platforms.
//!
//! Who: the owning CLIENT, its assigned MANAGER, ADMINs; anyone else gets 404.

use super::{authorize_company, authorize_tenant, path_id, RequestId};
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ApiJson, IdempotencyKey, MinPosition};
use crate::openapi::{IdempotencyKeyHeader, MinPositionHeader, Problems};
use axum::extract::{Path, State};
use axum::http::header;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;
use x8_commands::channels::{connect_channel, remove_channel, store_credentials, view_credentials};
use x8_domain::channel::{Channel, ChannelStatus, Platform};
use x8_domain::TenantId;
use x8_projections::channels::NAME as CHANNELS;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/companies/{id}/channels", get(list).post(connect))
        .route("/channels/{id}", get(show).delete(remove))
        .route(
            "/channels/{id}/credentials",
            get(read_credentials).put(put_credentials),
        )
        .route(
            "/channels/{id}/batch-window",
            axum::routing::put(batch_window),
        )
        .route("/channels/{id}/qr", get(qr))
        .route(
            "/channels/{id}/pairing-code",
            axum::routing::post(pairing_code),
        )
}

/// These routes' operations for the OpenAPI document (paths relative to `/api/v1`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list,
    connect,
    show,
    remove,
    read_credentials,
    put_credentials,
    batch_window,
    qr,
    pairing_code
))]
pub(crate) struct Api;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Connect {
    platform: Platform,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Connected {
    channel_id: Uuid,
    status: ChannelStatus,
    position: i64,
}

/// Connects a channel; 409 `over_channel_limit` (with `connection_ids`), `channels_restricted`,
/// `meta_app_pool_empty`.
#[utoipa::path(
    post, path = "/companies/{id}/channels",
    params(("id" = Uuid, Path, description = "The company"), IdempotencyKeyHeader),
    request_body = Connect,
    responses((status = 201, description = "Created", body = Connected), Problems)
)]
async fn connect(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Connect>,
) -> Result<(StatusCode, Json<Connected>), ApiError> {
    let company_id = path_id(&id)?;
    authorize_company(&state, &caller, company_id).await?;
    let ctx = state.context(Some(&caller), key, request_id);
    let connected = connect_channel(&state.commands, company_id, body.platform, &ctx).await?;
    Ok((
        StatusCode::CREATED,
        Json(Connected {
            channel_id: connected.channel_id,
            status: connected.status,
            position: connected.position,
        }),
    ))
}

/// A row of the `channels` read model.
#[derive(Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub(crate) struct ChannelView {
    channel_id: Uuid,
    tenant_id: Uuid,
    company_id: Uuid,
    platform: String,
    status: String,
    raw_status: Option<String>,
    last_error: Option<String>,
    error_count: i32,
    meta_app_id: Option<Uuid>,
    has_credentials: bool,
    qr_attempts: i32,
    pairing_code_offered: bool,
    reconnect_attempts: i32,
    reconnect_due_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    removed_at: Option<DateTime<Utc>>,
    last_position: i64,
}

/// The company's channel connections (not removed).
#[utoipa::path(
    get, path = "/companies/{id}/channels",
    params(("id" = Uuid, Path, description = "The company"), MinPositionHeader),
    responses((status = 200, description = "OK", body = [ChannelView]), Problems)
)]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    MinPosition(position): MinPosition,
    Path(id): Path<String>,
) -> Result<Json<Vec<ChannelView>>, ApiError> {
    let company_id = path_id(&id)?;
    authorize_company(&state, &caller, company_id).await?;
    state.wait_for(CHANNELS, position).await?;
    // language=PostgreSQL
    let channels = sqlx::query_as(
        "select * from channels where company_id = $1 and removed_at is null
         order by created_at, channel_id",
    )
    .bind(company_id)
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(channels))
}

/// One channel connection (removed ones too, with `removed_at`).
#[utoipa::path(
    get, path = "/channels/{id}",
    params(("id" = Uuid, Path, description = "The channel connection"), MinPositionHeader),
    responses((status = 200, description = "OK", body = ChannelView), Problems)
)]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    MinPosition(position): MinPosition,
    Path(id): Path<String>,
) -> Result<Json<ChannelView>, ApiError> {
    let channel_id = path_id(&id)?;
    state.wait_for(CHANNELS, position).await?;
    // language=PostgreSQL
    let channel: ChannelView = sqlx::query_as("select * from channels where channel_id = $1")
        .bind(channel_id)
        .fetch_optional(&state.pool)
        .await?
        .ok_or_else(ApiError::not_found)?;
    authorize_tenant(&state, &caller, TenantId(channel.tenant_id)).await?;
    Ok(Json(channel))
}

/// A change to a connection: its id and the global position of the last event.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ChannelChanged)]
struct Changed {
    channel_id: Uuid,
    position: i64,
}

/// Removes a connection, giving its slot and Meta app back.
#[utoipa::path(
    delete, path = "/channels/{id}",
    params(("id" = Uuid, Path, description = "The channel connection"), IdempotencyKeyHeader),
    responses((status = 200, description = "OK", body = Changed), Problems)
)]
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
) -> Result<Json<Changed>, ApiError> {
    let channel = load_channel(&state, &caller, &id).await?;
    let ctx = state.context(Some(&caller), key, request_id);
    let position = remove_channel(&state.commands, &channel, &ctx).await?;
    Ok(Json(Changed {
        channel_id: channel.id(),
        position,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct BatchWindow {
    secs: u32,
}

/// Sets how long consecutive inbound messages are gathered into one batch (1–300 s); 422
/// `invalid_batch_window`.
#[utoipa::path(
    put, path = "/channels/{id}/batch-window",
    params(("id" = Uuid, Path, description = "The channel connection"), IdempotencyKeyHeader),
    request_body = BatchWindow,
    responses((status = 200, description = "OK", body = Changed), Problems)
)]
async fn batch_window(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<BatchWindow>,
) -> Result<Json<Changed>, ApiError> {
    let channel = load_channel(&state, &caller, &id).await?;
    let ctx = state.context(Some(&caller), key, request_id);
    let outcome = state
        .commands
        .channels
        .execute(
            &channel.id().to_string(),
            x8_domain::channel::ChannelCommand::ConfigureBatchWindow { secs: body.secs },
            &ctx,
        )
        .await?;
    Ok(Json(Changed {
        channel_id: channel.id(),
        position: outcome.position(),
    }))
}

/// Most fields a credentials document may have.
const MAX_CREDENTIAL_FIELDS: usize = 32;

/// Stores the provider's tokens and keys (1–32 string fields), sealed with the business's data key.
#[utoipa::path(
    put, path = "/channels/{id}/credentials",
    params(("id" = Uuid, Path, description = "The channel connection"), IdempotencyKeyHeader),
    request_body(content = HashMap<String, String>, description = "The provider's credential \
        fields, names to strings"),
    responses((status = 200, description = "OK", body = Changed), Problems)
)]
async fn put_credentials(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<BTreeMap<String, String>>,
) -> Result<Json<Changed>, ApiError> {
    if body.is_empty() || body.len() > MAX_CREDENTIAL_FIELDS {
        return Err(ApiError::invalid_body(format!(
            "credentials are 1 to {MAX_CREDENTIAL_FIELDS} string fields"
        )));
    }
    let channel = load_channel(&state, &caller, &id).await?;
    let plaintext = zeroize::Zeroizing::new(serde_json::to_vec(&body).map_err(ApiError::internal)?);
    let ctx = state.context(Some(&caller), key, request_id);
    let position = store_credentials(&state.commands, &channel, &plaintext, &ctx).await?;
    Ok(Json(Changed {
        channel_id: channel.id(),
        position,
    }))
}

/// The connection's credentials, opened; each read is recorded (`CredentialsViewed`).
/// `Cache-Control: no-store`; 404 `no_credentials`.
#[utoipa::path(
    get, path = "/channels/{id}/credentials",
    params(("id" = Uuid, Path, description = "The channel connection")),
    responses((status = 200, description = "`{channel_id, credentials: {<name>: <string>}, \
        position}`", body = Object), Problems)
)]
async fn read_credentials(
    State(state): State<AppState>,
    caller: Caller,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let channel = load_channel(&state, &caller, &id).await?;
    let ctx = state.context(Some(&caller), None, request_id);
    let (plaintext, position) =
        view_credentials(&state.commands, &channel, caller.user_id, &ctx).await?;
    let credentials: serde_json::Value =
        serde_json::from_slice(&plaintext).map_err(ApiError::internal)?;
    let body = serde_json::json!({
        "channel_id": channel.id(),
        "credentials": credentials,
        "position": position,
    });
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)))
}

/// The WhatsApp connection `raw_id`, if `caller` may act on it.
async fn load_whatsapp(
    state: &AppState,
    caller: &Caller,
    raw_id: &str,
) -> Result<Channel, ApiError> {
    let channel = load_channel(state, caller, raw_id).await?;
    if channel.platform() != Platform::Whatsapp || channel.is_removed() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_whatsapp",
            "QR and pairing codes are for WhatsApp connections that are not removed",
        ));
    }
    Ok(channel)
}

/// The WhatsApp QR value to render, from WAHA; 409 `not_whatsapp`, 502 `provider_error`.
#[utoipa::path(
    get, path = "/channels/{id}/qr",
    params(("id" = Uuid, Path, description = "The channel connection")),
    responses((status = 200, description = "`{qr, qr_attempts, pairing_code_offered}`",
        body = Object), Problems)
)]
async fn qr(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let channel = load_whatsapp(&state, &caller, &id).await?;
    let session = x8_domain::channel::whatsapp::session_name(channel.id());
    let qr = state.commands.waha.qr_code(&session).await?;
    Ok(Json(serde_json::json!({
        "qr": qr,
        "qr_attempts": channel.qr_attempts(),
        "pairing_code_offered": channel.pairing_offered(),
    })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PairingRequest {
    phone_number: String,
}

/// A WhatsApp pairing code for a phone number; 409 `pairing_code_not_offered` before 3 failed QR
/// attempts.
#[utoipa::path(
    post, path = "/channels/{id}/pairing-code",
    params(("id" = Uuid, Path, description = "The channel connection")),
    request_body = PairingRequest,
    responses((status = 200, description = "`{code}`", body = Object), Problems)
)]
async fn pairing_code(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PairingRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let channel = load_whatsapp(&state, &caller, &id).await?;
    let phone = body.phone_number.trim().trim_start_matches('+');
    if !(7..=15).contains(&phone.len()) || !phone.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_phone_number",
            "phone_number is 7 to 15 digits with the country code",
        ));
    }
    if !channel.pairing_offered() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "pairing_code_not_offered",
            "a pairing code is offered after 3 failed QR attempts; scan the QR code",
        ));
    }
    let session = x8_domain::channel::whatsapp::session_name(channel.id());
    let code = state
        .commands
        .waha
        .request_pairing_code(&session, phone)
        .await?;
    Ok(Json(serde_json::json!({ "code": code })))
}

/// The connection `raw_id` from its own stream, if `caller` may act on its business.
///
/// # Errors
/// 404 `not_found` when it does not exist or the caller may not see it.
pub(crate) async fn load_channel(
    state: &AppState,
    caller: &Caller,
    raw_id: &str,
) -> Result<Channel, ApiError> {
    let channel_id = path_id(raw_id)?;
    let channel = state
        .commands
        .channels
        .load(&channel_id.to_string())
        .await?;
    if !channel.exists() {
        return Err(ApiError::not_found());
    }
    authorize_tenant(state, caller, channel.tenant_id()).await?;
    Ok(channel)
}
