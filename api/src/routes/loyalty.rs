//! The loyalty program (DOMAIN.md "Loyalty"). Points are integers; amounts integer minor
//! units with an ISO-4217 currency. Cashback: `floor(amount_minor × cashback_bps / 10,000
//! / 100)` points, one point per whole currency unit of cashback, rounded down.
//!
//! Per business (its CLIENT, its MANAGER, an ADMIN):
//! - `PUT /api/v1/tenants/{id}/loyalty/settings` `{cashback_bps = 500, welcome_bonus_points
//!   = 0, referrer_reward_points = 0, referred_reward_points = 0, expiry_days = null}` →
//!   the settings and `position`; 422 `invalid_settings`. `GET` reads them.
//! - `POST /api/v1/tenants/{id}/loyalty/accounts` `{customer_ref, referral_code?}` → 201
//!   `{account_id, referral_code, balance, position}` (200 when the customer had an
//!   account: registering again is safe); 422 `unknown_referral_code`, `self_referral`; 409
//!   `already_registered` (a customer is referred at most once, when registering).
//! - `GET /api/v1/tenants/{id}/loyalty/accounts` → its accounts, newest first (at most 500).
//! - `GET /api/v1/tenants/{id}/loyalty/stats` → `{customers, referred_customers, turnover:
//!   [{currency, purchases, purchases_minor, refunded_minor, net_minor}], points: {issued,
//!   redeemed, expired, reversed, outstanding}, nps: {score, promoters, passives,
//!   detractors, ratings}}`; NPS = % promoters (9–10) − % detractors (0–6) over the customers
//!   with a rating (their latest), `null` without ratings.
//! - `POST|GET /api/v1/tenants/{id}/loyalty/promotions` `{title, valid_from, valid_until,
//!   per_customer_limit?}` → 201 `{promotion_id, position}`; `DELETE
//!   /api/v1/tenants/{id}/loyalty/promotions/{promotion_id}`. `GET` lists those not removed.
//! - `POST|GET /api/v1/tenants/{id}/loyalty/services` `{title, description}` → 201
//!   `{service_id, status: "pending", position}`; `PUT .../services/{service_id}` resubmits
//!   a rejected service (409 `wrong_moderation_status` otherwise).
//!
//! Per account (whoever may act on its business):
//! - `POST /api/v1/loyalty/accounts/{id}/purchases` `{amount_minor, currency, reference}` →
//!   201 `{account_id, reference, points, balance, position}` (200 with the first outcome
//!   when the reference was seen); 422 `invalid_amount`, 409 `reference_reused` (same
//!   reference, another amount).
//! - `POST .../redemptions` `{points, reference}` → 201 `{…, points, balance}`; 409
//!   `insufficient_points` with `balance` and `requested`; 422 `invalid_points`.
//! - `POST .../refunds` `{purchase_reference}` → `{…, points_reversed, shortfall, balance}`:
//!   reverses only what is left of the purchase's points (the rest stays spent: the
//!   shortfall); 422 `unknown_purchase`.
//! - `POST .../nps` `{score}` (0–10; 422 `invalid_score`).
//! - `GET /api/v1/loyalty/accounts/{id}?limit=100` → the account, its totals and its history
//!   (newest first).
//!
//! Moderation (ADMIN): `GET /api/v1/admin/services?status=pending` (oldest first), `POST
//! /api/v1/admin/services/{id}/approve`, `POST /api/v1/admin/services/{id}/reject`
//! `{reason}`.
//!
//! Reads come from the `loyalty` read models and honour `X-Min-Position`.

use super::{authorize_tenant, authorized_tenant, open_sealed, path_id, scope_key, RequestId};
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, IdempotencyKey, MinPosition};
use crate::openapi::{IdempotencyKeyHeader, MinPositionHeader, Problems};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;
use x8_commands::loyalty::{self as ops, customer_ref_purpose, AccountChange};
use x8_commands::vault::ScopeKey;
use x8_domain::billing::Money;
use x8_domain::loyalty::program::{ProgramCommand, Promotion};
use x8_domain::loyalty::rules::DEFAULT_CASHBACK_BPS;
use x8_domain::loyalty::LoyaltySettings;
use x8_domain::TenantId;
use x8_projections::loyalty::NAME as LOYALTY;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/tenants/{id}/loyalty/settings",
            put(configure).get(show_settings),
        )
        .route(
            "/tenants/{id}/loyalty/accounts",
            post(open_account).get(list_accounts),
        )
        .route("/tenants/{id}/loyalty/stats", get(stats))
        .route(
            "/tenants/{id}/loyalty/promotions",
            post(create_promotion).get(list_promotions),
        )
        .route(
            "/tenants/{id}/loyalty/promotions/{promotion_id}",
            delete(remove_promotion),
        )
        .route(
            "/tenants/{id}/loyalty/services",
            post(submit_service).get(list_services),
        )
        .route(
            "/tenants/{id}/loyalty/services/{service_id}",
            put(resubmit_service),
        )
        .route("/loyalty/accounts/{id}", get(show_account))
        .route("/loyalty/accounts/{id}/purchases", post(purchase))
        .route("/loyalty/accounts/{id}/redemptions", post(redemption))
        .route("/loyalty/accounts/{id}/refunds", post(refund))
        .route("/loyalty/accounts/{id}/nps", post(nps))
        .route("/admin/services", get(moderation_queue))
        .route("/admin/services/{id}/approve", post(approve_service))
        .route("/admin/services/{id}/reject", post(reject_service))
}

/// These routes' operations for the OpenAPI document (paths relative to `/api/v1`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    configure,
    show_settings,
    open_account,
    list_accounts,
    stats,
    create_promotion,
    list_promotions,
    remove_promotion,
    submit_service,
    list_services,
    resubmit_service,
    show_account,
    purchase,
    redemption,
    refund,
    nps,
    moderation_queue,
    approve_service,
    reject_service
))]
pub(crate) struct Api;

/// The account of the path and its business, if the caller may act on that business.
async fn account(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<(TenantId, Uuid), ApiError> {
    let account_id = path_id(id)?;
    let tenant_id = ops::account_tenant(&state.commands, account_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    authorize_tenant(state, caller, tenant_id).await?;
    Ok((tenant_id, account_id))
}

/// The settings body: every field optional, a missing one takes its default.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[serde(default = "default_cashback_bps")]
    cashback_bps: u32,
    #[serde(default)]
    welcome_bonus_points: i64,
    #[serde(default)]
    referrer_reward_points: i64,
    #[serde(default)]
    referred_reward_points: i64,
    #[serde(default)]
    expiry_days: Option<u32>,
}

fn default_cashback_bps() -> u32 {
    DEFAULT_CASHBACK_BPS
}

fn settings_json(settings: &LoyaltySettings) -> Value {
    json!({
        "cashback_bps": settings.cashback_bps,
        "welcome_bonus_points": settings.welcome_bonus_points,
        "referrer_reward_points": settings.referrer_reward_points,
        "referred_reward_points": settings.referred_reward_points,
        "expiry_days": settings.expiry_days,
    })
}

/// Sets the loyalty settings; 422 `invalid_settings`.
#[utoipa::path(
    put, path = "/tenants/{id}/loyalty/settings",
    params(("id" = Uuid, Path, description = "The business"), IdempotencyKeyHeader),
    request_body = Settings,
    responses((status = 200, description = "the settings and `position`", body = Object), Problems)
)]
async fn configure(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Settings>,
) -> Result<Json<Value>, ApiError> {
    let tenant_id = authorized_tenant(&state, &caller, &id).await?;
    let settings = LoyaltySettings {
        cashback_bps: body.cashback_bps,
        welcome_bonus_points: body.welcome_bonus_points,
        referrer_reward_points: body.referrer_reward_points,
        referred_reward_points: body.referred_reward_points,
        expiry_days: body.expiry_days,
    };
    let ctx = state.context(Some(&caller), key, request_id);
    let command = ProgramCommand::ConfigureProgram {
        tenant_id,
        settings,
    };
    let position = ops::change_program(&state.commands, tenant_id, command, &ctx).await?;
    let mut body = settings_json(&settings);
    body["position"] = position.into();
    Ok(Json(body))
}

/// The loyalty settings.
#[utoipa::path(
    get, path = "/tenants/{id}/loyalty/settings",
    params(("id" = Uuid, Path, description = "The business")),
    responses((status = 200, description = "`{cashback_bps, welcome_bonus_points, \
        referrer_reward_points, referred_reward_points, expiry_days}`", body = Object), Problems)
)]
async fn show_settings(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tenant_id = authorized_tenant(&state, &caller, &id).await?;
    let settings = ops::settings(&state.commands, tenant_id).await?;
    Ok(Json(settings_json(&settings)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct OpenAccount {
    customer_ref: String,
    referral_code: Option<String>,
}

/// Opens a customer's loyalty account (200 when it exists); 422 `unknown_referral_code`,
/// `self_referral`; 409 `already_registered`.
#[utoipa::path(
    post, path = "/tenants/{id}/loyalty/accounts",
    params(("id" = Uuid, Path, description = "The business"), IdempotencyKeyHeader),
    request_body = OpenAccount,
    responses(
        (status = 201, description = "`{account_id, referral_code, balance, position}`",
            body = Object),
        (status = 200, description = "The customer had an account: the same shape",
            body = Object),
        Problems,
    )
)]
async fn open_account(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<OpenAccount>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let tenant_id = authorized_tenant(&state, &caller, &id).await?;
    let ctx = state.context(Some(&caller), key, request_id);
    let opened = ops::open_account(
        &state.commands,
        tenant_id,
        &body.customer_ref,
        body.referral_code.as_deref(),
        &ctx,
    )
    .await?;
    let status = if opened.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json!({
            "account_id": opened.account_id,
            "referral_code": opened.referral_code,
            "balance": opened.balance,
            "position": opened.position,
        })),
    ))
}

/// A change's response: 201 when it appended, 200 with the first outcome otherwise.
fn change_response(
    account_id: Uuid,
    change: &AccountChange,
    mut body: Value,
) -> (StatusCode, Json<Value>) {
    body["account_id"] = json!(account_id);
    body["balance"] = change.balance.into();
    body["position"] = change.position.into();
    let status = if change.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    (status, Json(body))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Purchase {
    amount_minor: i64,
    currency: String,
    reference: String,
}

/// Records a purchase and its cashback points (200 with the first outcome for a known reference);
/// 422 `invalid_amount`, 409 `reference_reused`.
#[utoipa::path(
    post, path = "/loyalty/accounts/{id}/purchases",
    params(("id" = Uuid, Path, description = "The loyalty account"), IdempotencyKeyHeader),
    request_body = Purchase,
    responses(
        (status = 201, description = "`{account_id, reference, points, balance, position}`",
        body = Object),
        (status = 200, description = "A repeat of a known reference: the first outcome",
        body = Object),
        Problems,
    )
)]
async fn purchase(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Purchase>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (tenant_id, account_id) = account(&state, &caller, &id).await?;
    let amount = Money::positive(body.amount_minor, &body.currency).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_amount",
            e.to_string(),
        )
    })?;
    let ctx = state.context(Some(&caller), key, request_id);
    let change = ops::accrue(
        &state.commands,
        tenant_id,
        account_id,
        amount,
        &body.reference,
        &ctx,
    )
    .await?;
    Ok(change_response(
        account_id,
        &change,
        json!({ "reference": body.reference.trim(), "points": change.points }),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Redemption {
    points: i64,
    reference: String,
}

/// Redeems points; 409 `insufficient_points` (with `balance`, `requested`), 422 `invalid_points`.
#[utoipa::path(
    post, path = "/loyalty/accounts/{id}/redemptions",
    params(("id" = Uuid, Path, description = "The loyalty account"), IdempotencyKeyHeader),
    request_body = Redemption,
    responses(
        (status = 201, description = "`{account_id, reference, points, balance, position}`",
        body = Object),
        (status = 200, description = "A repeat of a known reference: the first outcome",
        body = Object),
        Problems,
    )
)]
async fn redemption(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Redemption>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (tenant_id, account_id) = account(&state, &caller, &id).await?;
    let ctx = state.context(Some(&caller), key, request_id);
    let change = ops::redeem(
        &state.commands,
        tenant_id,
        account_id,
        body.points,
        &body.reference,
        &ctx,
    )
    .await?;
    Ok(change_response(
        account_id,
        &change,
        json!({ "reference": body.reference.trim(), "points": change.points }),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Refund {
    purchase_reference: String,
}

/// Refunds a purchase, reversing what is left of its points; 422 `unknown_purchase`.
#[utoipa::path(
    post, path = "/loyalty/accounts/{id}/refunds",
    params(("id" = Uuid, Path, description = "The loyalty account"), IdempotencyKeyHeader),
    request_body = Refund,
    responses(
        (status = 201, description = "`{account_id, purchase_reference, points_reversed, \
        shortfall, balance, position}`", body = Object),
        (status = 200, description = "A repeat of a known reference: the first outcome",
        body = Object),
        Problems,
    )
)]
async fn refund(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Refund>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (tenant_id, account_id) = account(&state, &caller, &id).await?;
    let ctx = state.context(Some(&caller), key, request_id);
    let change = ops::refund(
        &state.commands,
        tenant_id,
        account_id,
        &body.purchase_reference,
        &ctx,
    )
    .await?;
    Ok(change_response(
        account_id,
        &change,
        json!({
            "purchase_reference": body.purchase_reference.trim(),
            "points_reversed": change.points,
            "shortfall": change.shortfall,
        }),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Nps {
    score: u8,
}

/// Records the customer's NPS rating (0–10); 422 `invalid_score`.
#[utoipa::path(
    post, path = "/loyalty/accounts/{id}/nps",
    params(("id" = Uuid, Path, description = "The loyalty account"), IdempotencyKeyHeader),
    request_body = Nps,
    responses((status = 200, description = "`{account_id, score, position}`", body = Object),
        Problems)
)]
async fn nps(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Nps>,
) -> Result<Json<Value>, ApiError> {
    let (tenant_id, account_id) = account(&state, &caller, &id).await?;
    let ctx = state.context(Some(&caller), key, request_id);
    let position = ops::rate(&state.commands, tenant_id, account_id, body.score, &ctx).await?;
    Ok(Json(
        json!({ "account_id": account_id, "score": body.score, "position": position }),
    ))
}

/// A row of `loyalty_accounts`; `customer_ref` is sealed until [`AccountView::open`].
#[derive(Serialize, sqlx::FromRow)]
struct AccountView {
    account_id: Uuid,
    tenant_id: Uuid,
    #[sqlx(rename = "customer_ref_sealed")]
    customer_ref: String,
    referral_code: String,
    referred_by: Option<Uuid>,
    balance: i64,
    points_issued: i64,
    points_redeemed: i64,
    points_expired: i64,
    points_reversed: i64,
    nps: Option<i16>,
    opened_at: DateTime<Utc>,
    last_activity_at: DateTime<Utc>,
}

impl AccountView {
    /// The row with its customer reference opened with the business's data `key`.
    fn open(mut self, key: &ScopeKey) -> Result<Self, ApiError> {
        let purpose = customer_ref_purpose(self.account_id);
        self.customer_ref = open_sealed(key, &purpose, &self.customer_ref)?;
        Ok(self)
    }
}

const ACCOUNT_COLUMNS: &str =
    "account_id, tenant_id, customer_ref_sealed, referral_code, referred_by,
    balance, points_issued, points_redeemed, points_expired, points_reversed, nps, opened_at,
    last_activity_at";

/// A row of `loyalty_transactions`.
#[derive(Serialize, sqlx::FromRow)]
struct TransactionView {
    position: i64,
    kind: String,
    reference: Option<String>,
    points: i64,
    amount_minor: Option<i64>,
    currency: Option<String>,
    shortfall: Option<i64>,
    balance_after: i64,
    at: DateTime<Utc>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    limit: Option<i64>,
}

/// A loyalty account, its totals and its history, newest first.
#[utoipa::path(
    get, path = "/loyalty/accounts/{id}",
    params(("id" = Uuid, Path, description = "The loyalty account"), HistoryQuery,
        MinPositionHeader),
    responses((status = 200, description = "the account row (`account_id, customer_ref, \
        referral_code, balance, points_issued, …`) with `history: [{position, kind, reference, \
        points, amount_minor, currency, shortfall, balance_after, at}]`", body = Object), Problems)
)]
async fn show_account(
    State(state): State<AppState>,
    caller: Caller,
    MinPosition(position): MinPosition,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> Result<Json<Value>, ApiError> {
    let (_, account_id) = account(&state, &caller, &id).await?;
    state.wait_for(LOYALTY, position).await?;
    // language=PostgreSQL
    let account: AccountView = sqlx::query_as::<_, AccountView>(&format!(
        "select {ACCOUNT_COLUMNS} from loyalty_accounts where account_id = $1"
    ))
    .bind(account_id)
    .fetch_optional(&state.pool)
    .await?
    .ok_or_else(ApiError::not_found)?;
    let key = scope_key(&state, account.tenant_id).await?;
    let account = account.open(&key)?;
    // language=PostgreSQL
    let history: Vec<TransactionView> = sqlx::query_as(
        "select global_position as position, kind, reference, points, amount_minor, currency,
                shortfall, balance_after, at
         from loyalty_transactions where account_id = $1
         order by global_position desc limit $2",
    )
    .bind(account_id)
    .bind(query.limit.unwrap_or(100).clamp(1, 1000))
    .fetch_all(&state.pool)
    .await?;
    let mut body = json!(account);
    body["history"] = json!(history);
    Ok(Json(body))
}

/// The business's loyalty accounts, newest first (at most 500).
#[utoipa::path(
    get, path = "/tenants/{id}/loyalty/accounts",
    params(("id" = Uuid, Path, description = "The business"), MinPositionHeader),
    responses((status = 200, description = "`{accounts: [...]}`", body = Object), Problems)
)]
async fn list_accounts(
    State(state): State<AppState>,
    caller: Caller,
    MinPosition(position): MinPosition,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tenant_id = authorized_tenant(&state, &caller, &id).await?;
    state.wait_for(LOYALTY, position).await?;
    // language=PostgreSQL
    let accounts: Vec<AccountView> = sqlx::query_as(&format!(
        "select {ACCOUNT_COLUMNS} from loyalty_accounts where tenant_id = $1
         order by opened_at desc, account_id limit 500"
    ))
    .bind(tenant_id.0)
    .fetch_all(&state.pool)
    .await?;
    let key = scope_key(&state, tenant_id.0).await?;
    let accounts = accounts
        .into_iter()
        .map(|account| account.open(&key))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(json!({ "accounts": accounts })))
}

#[derive(sqlx::FromRow)]
struct AccountTotals {
    customers: i64,
    referred_customers: i64,
    issued: i64,
    redeemed: i64,
    expired: i64,
    reversed: i64,
    outstanding: i64,
    promoters: i64,
    passives: i64,
    detractors: i64,
}

#[derive(Serialize, sqlx::FromRow)]
struct Turnover {
    currency: String,
    purchases: i64,
    purchases_minor: i64,
    refunded_minor: i64,
    net_minor: i64,
}

/// Loyalty figures: customers, turnover, points and NPS.
#[utoipa::path(
    get, path = "/tenants/{id}/loyalty/stats",
    params(("id" = Uuid, Path, description = "The business"), MinPositionHeader),
    responses((status = 200, description = "`{tenant_id, customers, referred_customers, \
        turnover: [{currency, purchases, purchases_minor, refunded_minor, net_minor}], points: \
        {issued, redeemed, expired, reversed, outstanding}, nps: {score, promoters, passives, \
        detractors, ratings}}`", body = Object), Problems)
)]
async fn stats(
    State(state): State<AppState>,
    caller: Caller,
    MinPosition(position): MinPosition,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tenant_id = authorized_tenant(&state, &caller, &id).await?;
    state.wait_for(LOYALTY, position).await?;
    // language=PostgreSQL
    let totals: AccountTotals = sqlx::query_as(
        "select count(*) as customers,
                count(referred_by) as referred_customers,
                coalesce(sum(points_issued), 0)::bigint as issued,
                coalesce(sum(points_redeemed), 0)::bigint as redeemed,
                coalesce(sum(points_expired), 0)::bigint as expired,
                coalesce(sum(points_reversed), 0)::bigint as reversed,
                coalesce(sum(balance), 0)::bigint as outstanding,
                count(*) filter (where nps >= 9) as promoters,
                count(*) filter (where nps between 7 and 8) as passives,
                count(*) filter (where nps <= 6) as detractors
         from loyalty_accounts where tenant_id = $1",
    )
    .bind(tenant_id.0)
    .fetch_one(&state.pool)
    .await?;
    // language=PostgreSQL
    let turnover: Vec<Turnover> = sqlx::query_as(
        "select currency,
                count(*) filter (where kind = 'purchase') as purchases,
                coalesce(sum(amount_minor) filter (where kind = 'purchase'), 0)::bigint
                    as purchases_minor,
                coalesce(sum(amount_minor) filter (where kind = 'reversal'), 0)::bigint
                    as refunded_minor,
                (coalesce(sum(amount_minor) filter (where kind = 'purchase'), 0)
                    - coalesce(sum(amount_minor) filter (where kind = 'reversal'), 0))::bigint
                    as net_minor
         from loyalty_transactions
         where tenant_id = $1 and kind in ('purchase', 'reversal') and currency is not null
         group by currency order by currency",
    )
    .bind(tenant_id.0)
    .fetch_all(&state.pool)
    .await?;
    let ratings = totals.promoters + totals.passives + totals.detractors;
    Ok(Json(json!({
        "tenant_id": tenant_id,
        "customers": totals.customers,
        "referred_customers": totals.referred_customers,
        "turnover": turnover,
        "points": {
            "issued": totals.issued,
            "redeemed": totals.redeemed,
            "expired": totals.expired,
            "reversed": totals.reversed,
            "outstanding": totals.outstanding,
        },
        "nps": {
            "score": x8_domain::loyalty::nps_score(totals.promoters, totals.detractors, ratings),
            "promoters": totals.promoters,
            "passives": totals.passives,
            "detractors": totals.detractors,
            "ratings": ratings,
        },
    })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewPromotion {
    title: String,
    valid_from: DateTime<Utc>,
    valid_until: DateTime<Utc>,
    per_customer_limit: Option<u32>,
}

/// Creates a promotion.
#[utoipa::path(
    post, path = "/tenants/{id}/loyalty/promotions",
    params(("id" = Uuid, Path, description = "The business"), IdempotencyKeyHeader),
    request_body = NewPromotion,
    responses((status = 201, description = "`{promotion_id, position}`", body = Object), Problems)
)]
async fn create_promotion(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NewPromotion>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let tenant_id = authorized_tenant(&state, &caller, &id).await?;
    let ctx = state.context(Some(&caller), key, request_id);
    let promotion = Promotion {
        promotion_id: Uuid::nil(),
        title: body.title,
        valid_from: body.valid_from,
        valid_until: body.valid_until,
        per_customer_limit: body.per_customer_limit,
    };
    let (promotion_id, position) =
        ops::create_promotion(&state.commands, tenant_id, promotion, &ctx).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "promotion_id": promotion_id, "position": position })),
    ))
}

/// Removes a promotion.
#[utoipa::path(
    delete, path = "/tenants/{id}/loyalty/promotions/{promotion_id}",
    params(
        ("id" = Uuid, Path, description = "The business"),
        ("promotion_id" = Uuid, Path, description = "The promotion"),
        IdempotencyKeyHeader,
    ),
    responses((status = 200, description = "`{promotion_id, position}`", body = Object), Problems)
)]
async fn remove_promotion(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    Path((id, promotion_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let tenant_id = authorized_tenant(&state, &caller, &id).await?;
    let promotion_id = path_id(&promotion_id)?;
    let ctx = state.context(Some(&caller), key, request_id);
    let command = ProgramCommand::RemovePromotion { promotion_id };
    let position = ops::change_program(&state.commands, tenant_id, command, &ctx).await?;
    Ok(Json(
        json!({ "promotion_id": promotion_id, "position": position }),
    ))
}

/// A row of `loyalty_promotions`.
#[derive(Serialize, sqlx::FromRow)]
struct PromotionView {
    promotion_id: Uuid,
    title: String,
    valid_from: DateTime<Utc>,
    valid_until: DateTime<Utc>,
    per_customer_limit: Option<i32>,
    created_at: DateTime<Utc>,
}

/// The promotions not removed.
#[utoipa::path(
    get, path = "/tenants/{id}/loyalty/promotions",
    params(("id" = Uuid, Path, description = "The business"), MinPositionHeader),
    responses((status = 200, description = "`{promotions: [{promotion_id, title, valid_from, \
        valid_until, per_customer_limit, created_at}]}`", body = Object), Problems)
)]
async fn list_promotions(
    State(state): State<AppState>,
    caller: Caller,
    MinPosition(position): MinPosition,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tenant_id = authorized_tenant(&state, &caller, &id).await?;
    state.wait_for(LOYALTY, position).await?;
    // language=PostgreSQL
    let promotions: Vec<PromotionView> = sqlx::query_as(
        "select promotion_id, title, valid_from, valid_until, per_customer_limit, created_at
         from loyalty_promotions where tenant_id = $1 and removed_at is null
         order by valid_from, promotion_id",
    )
    .bind(tenant_id.0)
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(json!({ "promotions": promotions })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ServiceBody {
    title: String,
    #[serde(default)]
    description: String,
}

/// Submits a service for moderation.
#[utoipa::path(
    post, path = "/tenants/{id}/loyalty/services",
    params(("id" = Uuid, Path, description = "The business"), IdempotencyKeyHeader),
    request_body = ServiceBody,
    responses((status = 200, description = "`{service_id, status: \"pending\", position}`",
        body = Object), Problems)
)]
async fn submit_service(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ServiceBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let tenant_id = authorized_tenant(&state, &caller, &id).await?;
    submitted(&state, &caller, key, request_id, tenant_id, None, body).await
}

/// Resubmits a rejected service; 409 `wrong_moderation_status`.
#[utoipa::path(
    put, path = "/tenants/{id}/loyalty/services/{service_id}",
    params(("id" = Uuid, Path, description = "The business"), ("service_id" = Uuid, Path,
        description = "The service"), IdempotencyKeyHeader),
    request_body = ServiceBody,
    responses((status = 200, description = "`{service_id, status: \"pending\", position}`",
        body = Object), Problems)
)]
async fn resubmit_service(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    Path((id, service_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<ServiceBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let tenant_id = authorized_tenant(&state, &caller, &id).await?;
    let service_id = path_id(&service_id)?;
    let owner = state
        .commands
        .loyalty_services
        .load(&service_id.to_string())
        .await
        .map_err(|e| e.map_rejected(ops::LoyaltyOpError::Service))?
        .tenant_id();
    if owner != Some(tenant_id) {
        return Err(ApiError::not_found());
    }
    submitted(
        &state,
        &caller,
        key,
        request_id,
        tenant_id,
        Some(service_id),
        body,
    )
    .await
}

async fn submitted(
    state: &AppState,
    caller: &Caller,
    key: Option<String>,
    request_id: Uuid,
    tenant_id: TenantId,
    service_id: Option<Uuid>,
    body: ServiceBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let ctx = state.context(Some(caller), key, request_id);
    let (service_id, position) = ops::submit_service(
        &state.commands,
        tenant_id,
        service_id,
        &body.title,
        &body.description,
        &ctx,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "service_id": service_id, "status": "pending", "position": position })),
    ))
}

/// A row of `loyalty_services`.
#[derive(Serialize, sqlx::FromRow)]
struct ServiceView {
    service_id: Uuid,
    tenant_id: Uuid,
    title: String,
    description: String,
    status: String,
    rejection_reason: Option<String>,
    submitted_at: DateTime<Utc>,
    decided_at: Option<DateTime<Utc>>,
}

const SERVICE_COLUMNS: &str = "service_id, tenant_id, title, description, status,
    rejection_reason, submitted_at, decided_at";

/// The business's services with their moderation status.
#[utoipa::path(
    get, path = "/tenants/{id}/loyalty/services",
    params(("id" = Uuid, Path, description = "The business"), MinPositionHeader),
    responses((status = 200, description = "`{services: [...]}`", body = Object), Problems)
)]
async fn list_services(
    State(state): State<AppState>,
    caller: Caller,
    MinPosition(position): MinPosition,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tenant_id = authorized_tenant(&state, &caller, &id).await?;
    state.wait_for(LOYALTY, position).await?;
    // language=PostgreSQL
    let services: Vec<ServiceView> = sqlx::query_as(&format!(
        "select {SERVICE_COLUMNS} from loyalty_services where tenant_id = $1
         order by submitted_at desc, service_id"
    ))
    .bind(tenant_id.0)
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(json!({ "services": services })))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct QueueQuery {
    status: Option<String>,
}

/// Services by moderation status, oldest first (ADMIN).
#[utoipa::path(
    get, path = "/admin/services",
    params(QueueQuery, MinPositionHeader),
    responses((status = 200, description = "`{services: [...]}`", body = Object), Problems)
)]
async fn moderation_queue(
    State(state): State<AppState>,
    caller: Caller,
    MinPosition(position): MinPosition,
    ApiQuery(query): ApiQuery<QueueQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    let status = query.status.unwrap_or_else(|| "pending".to_string());
    if !matches!(status.as_str(), "pending" | "approved" | "rejected") {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "status must be pending, approved or rejected",
        )
        .with("field", "status"));
    }
    state.wait_for(LOYALTY, position).await?;
    // language=PostgreSQL
    let services: Vec<ServiceView> = sqlx::query_as(&format!(
        "select {SERVICE_COLUMNS} from loyalty_services where status = $1
         order by submitted_at, service_id limit 500"
    ))
    .bind(status)
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(json!({ "services": services })))
}

/// Approves a service (ADMIN).
#[utoipa::path(
    post, path = "/admin/services/{id}/approve",
    params(("id" = Uuid, Path, description = "The service"), IdempotencyKeyHeader),
    responses((status = 200, description = "`{service_id, status: \"approved\", position}`",
        body = Object), Problems)
)]
async fn approve_service(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    let service_id = path_id(&id)?;
    let ctx = state.context(Some(&caller), key, request_id);
    let position = ops::moderate_service(&state.commands, service_id, None, &ctx).await?;
    Ok(Json(
        json!({ "service_id": service_id, "status": "approved", "position": position }),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Rejection {
    reason: String,
}

/// Rejects a service with a reason (ADMIN).
#[utoipa::path(
    post, path = "/admin/services/{id}/reject",
    params(("id" = Uuid, Path, description = "The service"), IdempotencyKeyHeader),
    request_body = Rejection,
    responses((status = 200, description = "`{service_id, status: \"rejected\", position}`",
        body = Object), Problems)
)]
async fn reject_service(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Rejection>,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    let service_id = path_id(&id)?;
    let ctx = state.context(Some(&caller), key, request_id);
    let position =
        ops::moderate_service(&state.commands, service_id, Some(&body.reason), &ctx).await?;
    Ok(Json(
        json!({ "service_id": service_id, "status": "rejected", "position": position }),
    ))
}
