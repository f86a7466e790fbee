//! SaaS billing and Stripe Connect, per business:
//! - `POST /api/v1/tenants/{id}/billing/checkout` `{plan}` → 201 `{session_id, url,
//!   position}`: a Stripe Checkout Session in subscription mode for the plan's price
//!   (`X8_STRIPE_PRICE_PLANS`); 422 `plan_not_for_sale`, 409 `already_subscribed` (change
//!   plans in Stripe's billing portal), 502 `provider_error`.
//! - `GET /api/v1/tenants/{id}/subscription` → `{tenant_id, plan, subscription_status,
//!   over_limit, stripe: {status, subscription_id, customer_id, price_id, unit_amount,
//!   currency, current_period_end, cancel_at_period_end, last_paid_at} | null,
//!   last_payment_failure: {invoice_id, attempt_count, next_attempt_at, failed_at} | null}`.
//! - `POST /api/v1/tenants/{id}/connect/onboarding` → `{url, account_id, position}`: creates
//!   (once) an Express account and returns its onboarding link.
//! - `PUT /api/v1/tenants/{id}/connect` (ADMIN) `{account_id}` links an existing account;
//!   409 `connect_already_linked`, `account_of_another_tenant`.
//! - `DELETE /api/v1/tenants/{id}/connect` disconnects it (409 `connect_not_linked`).
//! - `GET /api/v1/tenants/{id}/connect` → the account and its status.
//! - `PUT /api/v1/tenants/{id}/connect/commission` (ADMIN) `{commission_bps}` (0–10,000).
//! - `GET /api/v1/admin/revenue` (ADMIN) → `{mrr: [{currency, amount_minor}],
//!   subscriptions_by_status: {status: count}}`: monthly recurring revenue in minor units
//!   per currency over `active` and `past_due` subscriptions (yearly prices / 12).

use super::{authorized_tenant, RequestId};
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ApiJson, IdempotencyKey, MinPosition};
use crate::openapi::{IdempotencyKeyHeader, MinPositionHeader, Problems};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;
use x8_commands::billing::start_checkout;
use x8_commands::payments::{execute_connect, link_account, start_onboarding};
use x8_domain::billing::connect::{ConnectCommand, LinkOrigin};
use x8_domain::Plan;
use x8_projections::billing::NAME as BILLING;
use x8_projections::tenants::NAME as TENANTS;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tenants/{id}/billing/checkout", post(checkout))
        .route("/tenants/{id}/subscription", get(subscription))
        .route("/tenants/{id}/connect/onboarding", post(onboarding))
        .route(
            "/tenants/{id}/connect",
            put(link).delete(disconnect).get(connect_account),
        )
        .route("/tenants/{id}/connect/commission", put(commission))
        .route("/admin/revenue", get(revenue))
}

/// These routes' operations for the OpenAPI document (paths relative to `/api/v1`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    checkout,
    subscription,
    onboarding,
    link,
    disconnect,
    connect_account,
    commission,
    revenue
))]
pub(crate) struct Api;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Checkout {
    plan: Plan,
}

/// Starts a Stripe Checkout Session for a plan; 422 `plan_not_for_sale`, 409 `already_subscribed`,
/// 502 `provider_error`.
#[utoipa::path(
    post, path = "/tenants/{id}/billing/checkout",
    params(("id" = Uuid, Path, description = "The business"), IdempotencyKeyHeader),
    request_body = Checkout,
    responses((status = 201, description = "`{session_id, url, position}`", body = Object),
        Problems)
)]
async fn checkout(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Checkout>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let tenant_id = authorized_tenant(&state, &caller, &id).await?;
    let ctx = state.context(Some(&caller), key, request_id);
    let started = start_checkout(&state.commands, tenant_id, body.plan, &ctx).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "session_id": started.session_id,
            "url": started.url,
            "position": started.position,
        })),
    ))
}

#[derive(sqlx::FromRow)]
struct SubscriptionRow {
    plan: String,
    subscription_status: String,
    over_limit: bool,
    stripe_status: Option<String>,
    subscription_id: Option<String>,
    customer_id: Option<String>,
    price_id: Option<String>,
    unit_amount: Option<i64>,
    currency: Option<String>,
    current_period_end: Option<DateTime<Utc>>,
    cancel_at_period_end: Option<bool>,
    last_paid_at: Option<DateTime<Utc>>,
    failed_invoice_id: Option<String>,
    failed_attempts: Option<i32>,
    next_attempt_at: Option<DateTime<Utc>>,
    last_failure_at: Option<DateTime<Utc>>,
}

/// The business's plan and Stripe subscription.
#[utoipa::path(
    get, path = "/tenants/{id}/subscription",
    params(("id" = Uuid, Path, description = "The business"), MinPositionHeader),
    responses((status = 200, description = "`{tenant_id, plan, subscription_status, over_limit, \
        stripe: {status, subscription_id, customer_id, price_id, unit_amount, currency, \
        current_period_end, cancel_at_period_end, last_paid_at} | null, last_payment_failure: \
        {invoice_id, attempt_count, next_attempt_at, failed_at} | null}`", body = Object), Problems)
)]
async fn subscription(
    State(state): State<AppState>,
    caller: Caller,
    MinPosition(position): MinPosition,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tenant_id = authorized_tenant(&state, &caller, &id).await?;
    state.wait_for(TENANTS, position).await?;
    state.wait_for(BILLING, position).await?;
    // language=PostgreSQL
    let row: SubscriptionRow = sqlx::query_as(
        "select t.plan, t.subscription_status, t.over_limit, s.stripe_status, s.subscription_id,
                s.customer_id, s.price_id, s.unit_amount, s.currency, s.current_period_end,
                s.cancel_at_period_end, s.last_paid_at, s.failed_invoice_id, s.failed_attempts,
                s.next_attempt_at, s.last_failure_at
         from tenants t left join subscriptions s using (tenant_id)
         where t.tenant_id = $1",
    )
    .bind(tenant_id.0)
    .fetch_optional(&state.pool)
    .await?
    .ok_or_else(ApiError::not_found)?;
    let stripe = row.stripe_status.as_ref().map(|status| {
        json!({
            "status": status,
            "subscription_id": row.subscription_id,
            "customer_id": row.customer_id,
            "price_id": row.price_id,
            "unit_amount": row.unit_amount,
            "currency": row.currency,
            "current_period_end": row.current_period_end,
            "cancel_at_period_end": row.cancel_at_period_end.unwrap_or(false),
            "last_paid_at": row.last_paid_at,
        })
    });
    let failure = row.failed_invoice_id.as_ref().map(|invoice| {
        json!({
            "invoice_id": invoice,
            "attempt_count": row.failed_attempts,
            "next_attempt_at": row.next_attempt_at,
            "failed_at": row.last_failure_at,
        })
    });
    Ok(Json(json!({
        "tenant_id": tenant_id.0,
        "plan": row.plan,
        "subscription_status": row.subscription_status,
        "over_limit": row.over_limit,
        "stripe": stripe,
        "last_payment_failure": failure,
    })))
}

/// Creates (once) the business's Stripe Connect Express account and returns its onboarding link.
#[utoipa::path(
    post, path = "/tenants/{id}/connect/onboarding",
    params(("id" = Uuid, Path, description = "The business"), IdempotencyKeyHeader),
    responses((status = 200, description = "`{url, account_id, position}`", body = Object),
        Problems)
)]
async fn onboarding(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tenant_id = authorized_tenant(&state, &caller, &id).await?;
    let ctx = state.context(Some(&caller), key, request_id);
    let (url, account_id, position) = start_onboarding(&state.commands, tenant_id, &ctx).await?;
    Ok(Json(
        json!({ "url": url, "account_id": account_id, "position": position }),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Link {
    account_id: String,
}

/// Links an existing Stripe Connect account (ADMIN); 409 `connect_already_linked`,
/// `account_of_another_tenant`.
#[utoipa::path(
    put, path = "/tenants/{id}/connect",
    params(("id" = Uuid, Path, description = "The business"), IdempotencyKeyHeader),
    request_body = Link,
    responses((status = 200, description = "`{tenant_id, account_id, position}`",
        body = Object), Problems)
)]
async fn link(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Link>,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    let tenant_id = authorized_tenant(&state, &caller, &id).await?;
    let ctx = state.context(Some(&caller), key, request_id);
    let position = link_account(
        &state.commands,
        tenant_id,
        body.account_id.trim(),
        LinkOrigin::Admin,
        &ctx,
    )
    .await?;
    Ok(Json(json!({
        "tenant_id": tenant_id.0,
        "account_id": body.account_id.trim(),
        "position": position,
    })))
}

/// Disconnects the Stripe Connect account; 409 `connect_not_linked`.
#[utoipa::path(
    delete, path = "/tenants/{id}/connect",
    params(("id" = Uuid, Path, description = "The business"), IdempotencyKeyHeader),
    responses((status = 200, description = "`{tenant_id, position}`", body = Object), Problems)
)]
async fn disconnect(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tenant_id = authorized_tenant(&state, &caller, &id).await?;
    let ctx = state.context(Some(&caller), key, request_id);
    let position =
        execute_connect(&state.commands, tenant_id, ConnectCommand::Disconnect, &ctx).await?;
    Ok(Json(
        json!({ "tenant_id": tenant_id.0, "position": position }),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Commission {
    commission_bps: u32,
}

/// Sets the platform's commission on the business's customer payments (ADMIN), basis points
/// 0–10,000.
#[utoipa::path(
    put, path = "/tenants/{id}/connect/commission",
    params(("id" = Uuid, Path, description = "The business"), IdempotencyKeyHeader),
    request_body = Commission,
    responses((status = 200, description = "`{tenant_id, commission_bps, position}`",
        body = Object), Problems)
)]
async fn commission(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Commission>,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    let tenant_id = authorized_tenant(&state, &caller, &id).await?;
    let ctx = state.context(Some(&caller), key, request_id);
    let command = ConnectCommand::SetCommission {
        commission_bps: body.commission_bps,
    };
    let position = execute_connect(&state.commands, tenant_id, command, &ctx).await?;
    Ok(Json(json!({
        "tenant_id": tenant_id.0,
        "commission_bps": body.commission_bps,
        "position": position,
    })))
}

/// A row of `connect_accounts`.
#[derive(Serialize, sqlx::FromRow, utoipa::ToSchema)]
struct ConnectView {
    tenant_id: Uuid,
    account_id: Option<String>,
    origin: Option<String>,
    charges_enabled: bool,
    payouts_enabled: bool,
    details_submitted: bool,
    requirements_due: Value,
    disabled_reason: Option<String>,
    commission_bps: i32,
}

/// The Stripe Connect account and its status.
#[utoipa::path(
    get, path = "/tenants/{id}/connect",
    params(("id" = Uuid, Path, description = "The business"), MinPositionHeader),
    responses((status = 200, description = "OK", body = ConnectView), Problems)
)]
async fn connect_account(
    State(state): State<AppState>,
    caller: Caller,
    MinPosition(position): MinPosition,
    Path(id): Path<String>,
) -> Result<Json<ConnectView>, ApiError> {
    let tenant_id = authorized_tenant(&state, &caller, &id).await?;
    state.wait_for(BILLING, position).await?;
    // language=PostgreSQL
    let view: Option<ConnectView> = sqlx::query_as(
        "select tenant_id, account_id, origin, charges_enabled, payouts_enabled,
                details_submitted, requirements_due, disabled_reason, commission_bps
         from connect_accounts where tenant_id = $1",
    )
    .bind(tenant_id.0)
    .fetch_optional(&state.pool)
    .await?;
    Ok(Json(view.unwrap_or(ConnectView {
        tenant_id: tenant_id.0,
        account_id: None,
        origin: None,
        charges_enabled: false,
        payouts_enabled: false,
        details_submitted: false,
        requirements_due: json!([]),
        disabled_reason: None,
        commission_bps: 0,
    })))
}

/// Monthly recurring revenue per currency and subscriptions by status (ADMIN).
#[utoipa::path(
    get, path = "/admin/revenue",
    params(MinPositionHeader),
    responses((status = 200, description = "`{mrr: [{currency, amount_minor}], \
        subscriptions_by_status: {status: count}}`: MRR in minor units over `active` and \
        `past_due` subscriptions (yearly prices / 12)", body = Object), Problems)
)]
async fn revenue(
    State(state): State<AppState>,
    caller: Caller,
    MinPosition(position): MinPosition,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    state.wait_for(BILLING, position).await?;
    let mrr = crate::queries::dashboards::mrr(&state.pool).await?;
    let statuses = crate::queries::dashboards::subscriptions_by_status(&state.pool).await?;
    Ok(Json(json!({
        "mrr": mrr,
        "subscriptions_by_status": statuses.by_status,
    })))
}
