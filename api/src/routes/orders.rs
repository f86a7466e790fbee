//! Orders paid by a business's customers through its Stripe Connect account (the purchase
//! log):
//! - `POST /api/v1/companies/{id}/orders` `{customer_ref, amount_minor, currency,
//!   description}` → 201 `{order_id, status: "no_payment_link", position}`; 422
//!   `invalid_amount` (not a positive integer of minor units or not an ISO-4217 code),
//!   `invalid_field`.
//! - `POST /api/v1/orders/{id}/payment-link` → `{order_id, url, position}`: a Stripe
//!   Checkout Session on the connected account (the commission as application fee); 409
//!   `connect_not_ready` while the account is missing or cannot take charges,
//!   `order_already_paid`.
//! - `GET /api/v1/orders/{id}` → the order.
//! - `GET /api/v1/tenants/{id}/orders?company_id=&status=` → the business's orders, newest
//!   first (at most 500).

use super::{authorize_company, authorize_tenant, open_sealed, path_id, scope_key, RequestId};
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, IdempotencyKey, MinPosition};
use crate::openapi::{IdempotencyKeyHeader, MinPositionHeader, Problems};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;
use x8_commands::payments::{create_order, order_purpose, send_payment_link, NewOrder};
use x8_commands::vault::ScopeKey;
use x8_domain::billing::order::OrderStatus;
use x8_domain::TenantId;
use x8_projections::billing::NAME as BILLING;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/companies/{id}/orders", post(create))
        .route("/orders/{id}/payment-link", post(payment_link))
        .route("/orders/{id}", get(show))
        .route("/tenants/{id}/orders", get(list))
}

/// These routes' operations for the OpenAPI document (paths relative to `/api/v1`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(create, payment_link, show, list))]
pub(crate) struct Api;

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = NewOrder)]
#[serde(deny_unknown_fields)]
struct Create {
    customer_ref: String,
    amount_minor: i64,
    currency: String,
    description: String,
}

/// Creates an order; 422 `invalid_amount`, `invalid_field`.
#[utoipa::path(
    post, path = "/companies/{id}/orders",
    params(("id" = Uuid, Path, description = "The company"), IdempotencyKeyHeader),
    request_body = Create,
    responses((status = 201, description = "`{order_id, status: \"no_payment_link\", \
        position}`", body = Object), Problems)
)]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Create>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let company_id = path_id(&id)?;
    authorize_company(&state, &caller, company_id).await?;
    let ctx = state.context(Some(&caller), key, request_id);
    let order = NewOrder {
        customer_ref: body.customer_ref,
        amount_minor: body.amount_minor,
        currency: body.currency,
        description: body.description,
    };
    let (order_id, position) = create_order(&state.commands, company_id, order, &ctx).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "order_id": order_id,
            "status": OrderStatus::NoPaymentLink.as_str(),
            "position": position,
        })),
    ))
}

/// The order of the path, if the caller may act on its business.
async fn authorize_order(state: &AppState, caller: &Caller, id: &str) -> Result<Uuid, ApiError> {
    let order_id = path_id(id)?;
    let order = state
        .commands
        .orders
        .load(&order_id.to_string())
        .await
        .map_err(|e| e.map_rejected(x8_commands::billing::BillingError::Order))?;
    let tenant_id = order.tenant_id().ok_or_else(ApiError::not_found)?;
    authorize_tenant(state, caller, tenant_id).await?;
    Ok(order_id)
}

/// A Stripe Checkout link on the connected account; 409 `connect_not_ready`, `order_already_paid`.
#[utoipa::path(
    post, path = "/orders/{id}/payment-link",
    params(("id" = Uuid, Path, description = "The order"), IdempotencyKeyHeader),
    responses((status = 200, description = "`{order_id, url, position}`", body = Object), Problems)
)]
async fn payment_link(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let order_id = authorize_order(&state, &caller, &id).await?;
    let ctx = state.context(Some(&caller), key, request_id);
    let (url, position) = send_payment_link(&state.commands, order_id, &ctx).await?;
    Ok(Json(
        json!({ "order_id": order_id, "url": url, "position": position }),
    ))
}

/// A row of the `orders` read model; `customer_ref` and `description` are sealed until
/// [`OrderView::open`].
#[derive(Serialize, sqlx::FromRow, utoipa::ToSchema)]
struct OrderView {
    order_id: Uuid,
    tenant_id: Uuid,
    company_id: Uuid,
    #[sqlx(rename = "customer_ref_sealed")]
    customer_ref: String,
    amount_minor: i64,
    currency: String,
    #[sqlx(rename = "description_sealed")]
    description: String,
    status: String,
    payment_link_url: Option<String>,
    payment_ref: Option<String>,
    commission_minor: i64,
    amount_paid_minor: Option<i64>,
    duplicate_payments: i32,
    failure_reason: Option<String>,
    created_at: DateTime<Utc>,
    link_sent_at: Option<DateTime<Utc>>,
    paid_at: Option<DateTime<Utc>>,
    refunded_at: Option<DateTime<Utc>>,
}

impl OrderView {
    /// The row with its sealed fields opened with the business's data `key`.
    fn open(mut self, key: &ScopeKey) -> Result<Self, ApiError> {
        let id = self.order_id;
        self.customer_ref =
            open_sealed(key, &order_purpose(id, "customer_ref"), &self.customer_ref)?;
        self.description = open_sealed(key, &order_purpose(id, "description"), &self.description)?;
        Ok(self)
    }
}

const ORDER_COLUMNS: &str = "order_id, tenant_id, company_id, customer_ref_sealed, amount_minor,
    currency, description_sealed, status, payment_link_url, payment_ref, commission_minor,
    amount_paid_minor, duplicate_payments, failure_reason, created_at, link_sent_at, paid_at,
    refunded_at";

/// One order.
#[utoipa::path(
    get, path = "/orders/{id}",
    params(("id" = Uuid, Path, description = "The order"), MinPositionHeader),
    responses((status = 200, description = "OK", body = OrderView), Problems)
)]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    MinPosition(position): MinPosition,
    Path(id): Path<String>,
) -> Result<Json<OrderView>, ApiError> {
    let order_id = authorize_order(&state, &caller, &id).await?;
    state.wait_for(BILLING, position).await?;
    let row: Option<OrderView> = sqlx::query_as(&format!(
        "select {ORDER_COLUMNS} from orders where order_id = $1"
    ))
    .bind(order_id)
    .fetch_optional(&state.pool)
    .await?;
    let row = row.ok_or_else(ApiError::not_found)?;
    let key = scope_key(&state, row.tenant_id).await?;
    Ok(Json(row.open(&key)?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct Filter {
    company_id: Option<Uuid>,
    status: Option<OrderStatus>,
}

/// The business's orders, newest first (at most 500).
#[utoipa::path(
    get, path = "/tenants/{id}/orders",
    params(("id" = Uuid, Path, description = "The business"), Filter, MinPositionHeader),
    responses((status = 200, description = "OK", body = [OrderView]), Problems)
)]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    MinPosition(position): MinPosition,
    Path(id): Path<String>,
    ApiQuery(filter): ApiQuery<Filter>,
) -> Result<Json<Vec<OrderView>>, ApiError> {
    let tenant_id = TenantId(path_id(&id)?);
    authorize_tenant(&state, &caller, tenant_id).await?;
    state.wait_for(BILLING, position).await?;
    let rows: Vec<OrderView> = sqlx::query_as(&format!(
        "select {ORDER_COLUMNS} from orders
         where tenant_id = $1 and ($2::uuid is null or company_id = $2)
           and ($3::text is null or status = $3)
         order by created_at desc, order_id limit 500"
    ))
    .bind(tenant_id.0)
    .bind(filter.company_id)
    .bind(filter.status.map(OrderStatus::as_str))
    .fetch_all(&state.pool)
    .await?;
    let key = scope_key(&state, tenant_id.0).await?;
    let orders = rows.into_iter().map(|row| row.open(&key));
    Ok(Json(orders.collect::<Result<_, _>>()?))
}
