//! Daily metrics:
//! - `GET /api/v1/metrics/daily?tenant_id=&from=&to=&group_by=company|channel|lead_source`
//!   → `{tenant_id, time_zone, from, to, group_by, days: [{day, group, messages_in,
//!   messages_out, conversations_started, replies, first_response_secs: {count, avg, p50,
//!   p90} | null, message_cost_micro_eur, payments: [{currency, count, amount_minor}],
//!   deliveries: {delivered, failed}, points: {accrued, redeemed}}]}`.
//!
//! Days are the business's local days (`PUT /tenants/{id}/time-zone`, default UTC);
//! `from`/`to` are local dates, inclusive, at most 366 days apart, defaulting to the 30
//! days ending today. A figure counts on the day it happened, however late its event
//! arrived. 400 `invalid_query` for a malformed parameter or range; 404 for a business the
//! caller may not see. Reads the `metrics` and `tenants` projections (`X-Min-Position`).

use super::authorize_tenant;
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ApiQuery, MinPosition};
use crate::openapi::MinPositionHeader;
use crate::queries::daily_metrics::{daily as daily_figures, DayFigures, DayRange, GroupBy};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use x8_domain::TenantId;
use x8_projections::metrics::NAME as METRICS;
use x8_projections::tenants::NAME as TENANTS;

/// Days listed when the request names no `from`.
const DEFAULT_DAYS: u64 = 30;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/metrics/daily", get(daily))
}

/// These routes' operations for the OpenAPI document (paths relative to `/api/v1`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(daily))]
pub(crate) struct Api;

/// The query string.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct DailyQuery {
    /// The business.
    tenant_id: Uuid,
    /// First local day (default: 29 days before `to`).
    from: Option<NaiveDate>,
    /// Last local day, inclusive (default: today in the business's zone).
    to: Option<NaiveDate>,
    /// Split each day by company, connection or lead source.
    group_by: Option<GroupBy>,
}

/// Daily figures of one business.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct DailyMetrics {
    tenant_id: Uuid,
    time_zone: String,
    from: NaiveDate,
    to: NaiveDate,
    group_by: Option<GroupBy>,
    days: Vec<DayFigures>,
}

/// Daily metrics of a business, in its time zone.
#[utoipa::path(get, path = "/metrics/daily",
    params(DailyQuery, MinPositionHeader),
    responses(
        (status = 200, body = DailyMetrics),
        (status = 400, description = "`invalid_query`", body = crate::openapi::Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = crate::openapi::Problem,
            content_type = "application/problem+json"),
    ))]
pub(crate) async fn daily(
    State(state): State<AppState>,
    caller: Caller,
    MinPosition(position): MinPosition,
    ApiQuery(query): ApiQuery<DailyQuery>,
) -> Result<Json<DailyMetrics>, ApiError> {
    let tenant_id = TenantId(query.tenant_id);
    authorize_tenant(&state, &caller, tenant_id).await?;
    state.wait_for(TENANTS, position).await?;
    state.wait_for(METRICS, position).await?;
    // language=PostgreSQL
    let (time_zone, today): (String, NaiveDate) = sqlx::query_as(
        "select time_zone, ($2::timestamptz at time zone time_zone)::date
         from tenants where tenant_id = $1",
    )
    .bind(tenant_id.0)
    .bind(state.commands.clock.now())
    .fetch_optional(&state.pool)
    .await?
    .ok_or_else(ApiError::not_found)?;
    let to = query.to.unwrap_or(today);
    let from = query
        .from
        .unwrap_or_else(|| to - Days::new(DEFAULT_DAYS - 1));
    let range = DayRange::new(from, to)
        .map_err(|why| ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", why))?;
    let days = daily_figures(&state.pool, tenant_id.0, &time_zone, range, query.group_by).await?;
    Ok(Json(DailyMetrics {
        tenant_id: tenant_id.0,
        time_zone,
        from,
        to,
        group_by: query.group_by,
        days,
    }))
}
