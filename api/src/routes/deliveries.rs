//! Deliveries (DOMAIN.md "Deliveries"), statuses in AfterShip's vocabulary (`Pending`,
//! `InfoReceived`, `InTransit`, `OutForDelivery`, `AttemptFail`, `Delivered`,
//! `AvailableForPickup`, `Exception`, `Expired`). For the business's users (its CLIENT, its
//! MANAGER, ADMINs):
//!
//! - `POST /api/v1/companies/{id}/couriers` `{name, phone, zones: []}` → 201 `{courier_id,
//!   position}`; 422 `invalid_field`, `invalid_zones`. `GET` lists them (names opened).
//! - `POST /api/v1/companies/{id}/deliveries` `{order_reference, address, customer_name?,
//!   customer_phone?, conversation_id?, eta?}` → 201 `{delivery_id, status: "Pending",
//!   tracking_token, tracking_url, position}`. The token (256 random bits) is shown once;
//!   only its SHA-256 is kept. A repeat with the same `Idempotency-Key` answers without it.
//! - `POST /api/v1/deliveries/{id}/assign` `{courier_id}` → `{delivery_id, courier_id,
//!   position}`; 422 `unknown_courier`.
//! - `POST /api/v1/deliveries/{id}/checkpoints` `{checkpoint_id?, status?, sub_status?,
//!   message?, location?: {lat, lng}, eta?, occurred_at}` → 201 `{delivery_id, status,
//!   position}`: a status change (only a legal one: 409 `illegal_transition` with `from`
//!   and `to`), a courier position, or both. Checkpoints are ordered by `occurred_at`: one
//!   older than the current status is kept as history and changes nothing. 422
//!   `invalid_location`, `empty_checkpoint`, `invalid_field`.
//! - `GET /api/v1/deliveries/{id}` → status, courier, ETA, last location, address (opened),
//!   and the checkpoints by `occurred_at`.
//! - `GET /api/v1/couriers/{id}/deliveries` → the courier's deliveries not yet `Delivered`
//!   or `Expired`.
//! - `POST /api/v1/deliveries/{id}/tracking-token` → `{tracking_token, tracking_url}` (the
//!   old one stops working); `DELETE` revokes it.
//!
//! Reads come from the `deliveries` read models and honour `X-Min-Position`.

use super::{authorize_company, authorize_tenant, open_sealed, path_id, scope_key, RequestId};
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
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;
use x8_commands::deliveries::{
    self as ops, courier_purpose, delivery_purpose, NewCourier, NewDelivery,
};
use x8_domain::delivery::status::ALL;
use x8_domain::delivery::{Checkpoint, Delivery, DeliveryStatus, Location};
use x8_domain::{Sealed, TenantId};
use x8_projections::deliveries::NAME as DELIVERIES;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/companies/{id}/couriers",
            get(list_couriers).post(register_courier),
        )
        .route("/companies/{id}/deliveries", post(create_delivery))
        .route("/deliveries/{id}", get(show))
        .route("/deliveries/{id}/assign", post(assign))
        .route("/deliveries/{id}/checkpoints", post(checkpoint))
        .route(
            "/deliveries/{id}/tracking-token",
            post(reissue_token).delete(revoke_token),
        )
        .route("/couriers/{id}/deliveries", get(courier_deliveries))
}

/// These routes' operations for the OpenAPI document (paths relative to `/api/v1`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list_couriers,
    register_courier,
    create_delivery,
    show,
    assign,
    checkpoint,
    reissue_token,
    revoke_token,
    courier_deliveries
))]
pub(crate) struct Api;

/// The public tracking page of a token.
fn tracking_url(token: &str) -> String {
    format!("/track/{token}")
}

/// The delivery named by the path, if the caller may act on its business.
async fn authorized_delivery(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<(Uuid, TenantId, Delivery), ApiError> {
    let id = path_id(id)?;
    let delivery = state.commands.deliveries.load(&id.to_string()).await?;
    let tenant = delivery.tenant_id().ok_or_else(ApiError::not_found)?;
    authorize_tenant(state, caller, tenant).await?;
    Ok((id, tenant, delivery))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RegisterCourier {
    name: String,
    phone: String,
    #[serde(default)]
    zones: Vec<String>,
}

/// Registers a courier; 422 `invalid_field`, `invalid_zones`.
#[utoipa::path(
    post, path = "/companies/{id}/couriers",
    params(("id" = Uuid, Path, description = "The company"), IdempotencyKeyHeader),
    request_body = RegisterCourier,
    responses((status = 201, description = "`{courier_id, position}`", body = Object), Problems)
)]
async fn register_courier(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RegisterCourier>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let company_id = path_id(&id)?;
    let company = authorize_company(&state, &caller, company_id).await?;
    let ctx = state.context(Some(&caller), key, request_id);
    let courier = NewCourier {
        name: body.name,
        phone: body.phone,
        zones: body.zones,
    };
    let (courier_id, position) = ops::register_courier(
        &state.commands,
        company.tenant_id(),
        company_id,
        courier,
        &ctx,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "courier_id": courier_id, "position": position })),
    ))
}

#[derive(sqlx::FromRow)]
struct CourierRow {
    courier_id: Uuid,
    name_sealed: String,
    phone_sealed: String,
    zones: Vec<String>,
}

/// The company's couriers (names opened).
#[utoipa::path(
    get, path = "/companies/{id}/couriers",
    params(("id" = Uuid, Path, description = "The company"), MinPositionHeader),
    responses((status = 200, description = "`{couriers: [{courier_id, name, phone, zones}]}`",
        body = Object), Problems)
)]
async fn list_couriers(
    State(state): State<AppState>,
    caller: Caller,
    MinPosition(position): MinPosition,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let company_id = path_id(&id)?;
    let company = authorize_company(&state, &caller, company_id).await?;
    state.wait_for(DELIVERIES, position).await?;
    // language=PostgreSQL
    let rows: Vec<CourierRow> = sqlx::query_as(
        "select courier_id, name_sealed, phone_sealed, zones from couriers
         where company_id = $1 order by registered_at, courier_id",
    )
    .bind(company_id)
    .fetch_all(&state.pool)
    .await?;
    // One key lookup for every courier's fields.
    let key = scope_key(&state, company.tenant_id().0).await?;
    let couriers = rows
        .iter()
        .map(|row| {
            let open = |field: &str, sealed: &str| {
                open_sealed(&key, &courier_purpose(row.courier_id, field), sealed)
            };
            Ok(json!({
                "courier_id": row.courier_id,
                "name": open("name", &row.name_sealed)?,
                "phone": open("phone", &row.phone_sealed)?,
                "zones": row.zones,
            }))
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(Json(json!({ "couriers": couriers })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateDelivery {
    order_reference: String,
    address: String,
    customer_name: Option<String>,
    customer_phone: Option<String>,
    conversation_id: Option<Uuid>,
    eta: Option<DateTime<Utc>>,
}

/// Creates a delivery; the tracking token is shown once.
#[utoipa::path(
    post, path = "/companies/{id}/deliveries",
    params(("id" = Uuid, Path, description = "The company"), IdempotencyKeyHeader),
    request_body = CreateDelivery,
    responses(
        (status = 201, description = "`{delivery_id, status: \"Pending\", tracking_token, \
            tracking_url, position}`", body = Object),
        (status = 200, description = "A repeat with the same `Idempotency-Key`: as 201, \
            without the token", body = Object),
        Problems,
    )
)]
async fn create_delivery(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CreateDelivery>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let company_id = path_id(&id)?;
    let company = authorize_company(&state, &caller, company_id).await?;
    let ctx = state.context(Some(&caller), key, request_id);
    let delivery = NewDelivery {
        order_reference: body.order_reference,
        address: body.address,
        customer_name: body.customer_name,
        customer_phone: body.customer_phone,
        conversation_id: body.conversation_id,
        eta: body.eta,
    };
    let created = ops::create_delivery(
        &state.commands,
        company.tenant_id(),
        company_id,
        delivery,
        &ctx,
    )
    .await?;
    let status = if created.tracking_token.is_some() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json!({
            "delivery_id": created.delivery_id,
            "status": DeliveryStatus::Pending.as_str(),
            "tracking_url": created.tracking_token.as_deref().map(tracking_url),
            "tracking_token": created.tracking_token,
            "position": created.position,
        })),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Assign {
    courier_id: Uuid,
}

/// Assigns a courier; 422 `unknown_courier`.
#[utoipa::path(
    post, path = "/deliveries/{id}/assign",
    params(("id" = Uuid, Path, description = "The delivery"), IdempotencyKeyHeader),
    request_body = Assign,
    responses((status = 200, description = "`{delivery_id, courier_id, position}`",
        body = Object), Problems)
)]
async fn assign(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Assign>,
) -> Result<Json<Value>, ApiError> {
    let (id, tenant, _) = authorized_delivery(&state, &caller, &id).await?;
    let ctx = state.context(Some(&caller), key, request_id);
    let position = ops::assign_courier(&state.commands, tenant, id, body.courier_id, &ctx).await?;
    Ok(Json(
        json!({ "delivery_id": id, "courier_id": body.courier_id, "position": position }),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewCheckpoint {
    checkpoint_id: Option<String>,
    status: Option<DeliveryStatus>,
    sub_status: Option<String>,
    message: Option<String>,
    location: Option<Location>,
    eta: Option<DateTime<Utc>>,
    occurred_at: DateTime<Utc>,
}

/// Records a checkpoint: a legal status change (409 `illegal_transition`), a courier position, or
/// both; 422 `invalid_location`, `empty_checkpoint`.
#[utoipa::path(
    post, path = "/deliveries/{id}/checkpoints",
    params(("id" = Uuid, Path, description = "The delivery"), IdempotencyKeyHeader),
    request_body = NewCheckpoint,
    responses((status = 201, description = "`{delivery_id, status, position}`", body = Object),
        Problems)
)]
async fn checkpoint(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NewCheckpoint>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (id, _, _) = authorized_delivery(&state, &caller, &id).await?;
    let ctx = state.context(Some(&caller), key, request_id);
    let checkpoint = Checkpoint {
        // Without the sender's id, the command id names it (a repeat is the same one).
        checkpoint_id: body
            .checkpoint_id
            .unwrap_or_else(|| ctx.command_id.to_string()),
        status: body.status,
        sub_status: body.sub_status,
        message: body.message,
        location: body.location,
        eta: body.eta,
        occurred_at: body.occurred_at,
    };
    let (position, status) = ops::record_checkpoint(&state.commands, id, checkpoint, &ctx).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "delivery_id": id, "status": status.as_str(), "position": position })),
    ))
}

/// Issues a new tracking token (the old one stops working).
#[utoipa::path(
    post, path = "/deliveries/{id}/tracking-token",
    params(("id" = Uuid, Path, description = "The delivery"), IdempotencyKeyHeader),
    responses((status = 200, description = "`{delivery_id, tracking_token, tracking_url, \
        position}`", body = Object), Problems)
)]
async fn reissue_token(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (id, _, _) = authorized_delivery(&state, &caller, &id).await?;
    let ctx = state.context(Some(&caller), key, request_id);
    let (token, position) = ops::reissue_token(&state.commands, id, &ctx).await?;
    Ok(Json(json!({
        "delivery_id": id,
        "tracking_url": token.as_deref().map(tracking_url),
        "tracking_token": token,
        "position": position,
    })))
}

/// Revokes the tracking token.
#[utoipa::path(
    delete, path = "/deliveries/{id}/tracking-token",
    params(("id" = Uuid, Path, description = "The delivery"), IdempotencyKeyHeader),
    responses((status = 200, description = "`{delivery_id, position}`", body = Object), Problems)
)]
async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (id, _, _) = authorized_delivery(&state, &caller, &id).await?;
    let ctx = state.context(Some(&caller), key, request_id);
    let position = ops::revoke_token(&state.commands, id, &ctx).await?;
    Ok(Json(json!({ "delivery_id": id, "position": position })))
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    delivery_id: Uuid,
    company_id: Uuid,
    order_reference: String,
    address_sealed: String,
    conversation_id: Option<Uuid>,
    status: String,
    sub_status: Option<String>,
    status_at: Option<DateTime<Utc>>,
    last_message: Option<String>,
    courier_id: Option<Uuid>,
    eta: Option<DateTime<Utc>>,
    last_lat: Option<f64>,
    last_lng: Option<f64>,
    last_location_at: Option<DateTime<Utc>>,
    tracking_active: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

const DELIVERY_COLUMNS: &str = "delivery_id, company_id, order_reference, address_sealed,
    conversation_id, status, sub_status, status_at, last_message, courier_id, eta, last_lat,
    last_lng, last_location_at, token_hash is not null as tracking_active, created_at,
    updated_at";

impl DeliveryRow {
    fn view(&self, address: Option<String>) -> Value {
        let location = self
            .last_lat
            .zip(self.last_lng)
            .map(|(lat, lng)| json!({ "lat": lat, "lng": lng, "at": self.last_location_at }));
        json!({
            "delivery_id": self.delivery_id,
            "company_id": self.company_id,
            "order_reference": self.order_reference,
            "address": address,
            "conversation_id": self.conversation_id,
            "status": self.status,
            "sub_status": self.sub_status,
            "status_at": self.status_at,
            "message": self.last_message,
            "courier_id": self.courier_id,
            "eta": self.eta,
            "location": location,
            "tracking_active": self.tracking_active,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        })
    }
}

#[derive(sqlx::FromRow, serde::Serialize)]
struct CheckpointRow {
    checkpoint_id: String,
    status: Option<String>,
    sub_status: Option<String>,
    message: Option<String>,
    lat: Option<f64>,
    lng: Option<f64>,
    eta: Option<DateTime<Utc>>,
    occurred_at: DateTime<Utc>,
    late: bool,
    recorded_at: DateTime<Utc>,
}

/// A delivery: status, courier, ETA, last location, address and its checkpoints by `occurred_at`.
#[utoipa::path(
    get, path = "/deliveries/{id}",
    params(("id" = Uuid, Path, description = "The delivery"), MinPositionHeader),
    responses((status = 200, description = "the delivery with `checkpoints: [{checkpoint_id, \
        status, sub_status, message, lat, lng, eta, occurred_at, late, recorded_at}]`",
        body = Object), Problems)
)]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    MinPosition(position): MinPosition,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (id, tenant, _) = authorized_delivery(&state, &caller, &id).await?;
    state.wait_for(DELIVERIES, position).await?;
    // language=PostgreSQL
    let row: DeliveryRow = sqlx::query_as(&format!(
        "select {DELIVERY_COLUMNS} from deliveries where delivery_id = $1"
    ))
    .bind(id)
    .fetch_optional(&state.pool)
    .await?
    .ok_or_else(ApiError::not_found)?;
    // language=PostgreSQL
    let checkpoints: Vec<CheckpointRow> = sqlx::query_as(
        "select checkpoint_id, status, sub_status, message, lat, lng, eta, occurred_at, late,
                recorded_at
         from delivery_checkpoints where delivery_id = $1 order by occurred_at, position",
    )
    .bind(id)
    .fetch_all(&state.pool)
    .await?;
    let address = ops::open(
        &state.commands,
        tenant,
        &delivery_purpose(id, "address"),
        &Sealed(row.address_sealed.clone()),
    )
    .await?;
    let mut view = row.view(Some(address));
    view["checkpoints"] = json!(checkpoints);
    Ok(Json(view))
}

/// The courier's deliveries not yet `Delivered` or `Expired`.
#[utoipa::path(
    get, path = "/couriers/{id}/deliveries",
    params(("id" = Uuid, Path, description = "The courier"), MinPositionHeader),
    responses((status = 200, description = "`{courier_id, deliveries: [...]}`", body = Object),
        Problems)
)]
async fn courier_deliveries(
    State(state): State<AppState>,
    caller: Caller,
    MinPosition(position): MinPosition,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let courier_id = path_id(&id)?;
    let courier = state
        .commands
        .couriers
        .load(&courier_id.to_string())
        .await?;
    let tenant = courier.tenant_id().ok_or_else(ApiError::not_found)?;
    authorize_tenant(&state, &caller, tenant).await?;
    state.wait_for(DELIVERIES, position).await?;
    let finals: Vec<&str> = ALL
        .iter()
        .filter(|s| s.is_final())
        .map(|s| s.as_str())
        .collect();
    // language=PostgreSQL
    let rows: Vec<DeliveryRow> = sqlx::query_as(&format!(
        "select {DELIVERY_COLUMNS} from deliveries
         where courier_id = $1 and not (status = any($2))
         order by created_at, delivery_id"
    ))
    .bind(courier_id)
    .bind(&finals)
    .fetch_all(&state.pool)
    .await?;
    let deliveries: Vec<Value> = rows.iter().map(|row| row.view(None)).collect();
    Ok(Json(
        json!({ "courier_id": courier_id, "deliveries": deliveries }),
    ))
}
