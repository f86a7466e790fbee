//! Companies of a business:
//! - `POST /api/v1/tenants/{id}/companies` `{name, type}` (`Product`|`Service`|`Hybrid`)
//!   → 201 `{company_id, code, position}`
//! - `GET /api/v1/tenants/{id}/companies` → the tenant's companies, by code, each with
//!   its connections' statuses: `channels: [{channel_id, platform, status}]`
//! - `GET /api/v1/companies/{id}` → one company, with its `channels`
//! - `PATCH /api/v1/companies/{id}` `{name?, status?}` (`ACTIVE`|`INACTIVE`|`SUSPENDED`)
//!   → `{company_id, position}`
//!
//! Who: the owning CLIENT, its assigned MANAGER, ADMINs; anyone else gets 404.

use super::{
    authorize_company, authorize_tenant, open_company_names, path_id, scope_key, RequestId,
};
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ApiJson, IdempotencyKey, MinPosition};
use crate::openapi::{IdempotencyKeyHeader, MinPositionHeader, Problems};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use x8_commands::companies::{create_company, update_company};
use x8_domain::company::{CompanyStatus, CompanyType};
use x8_domain::TenantId;
use x8_projections::channels::NAME as CHANNELS;
use x8_projections::companies::NAME as COMPANIES;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tenants/{id}/companies", get(list).post(create))
        .route("/companies/{id}", get(show).patch(update))
}

/// These routes' operations for the OpenAPI document (paths relative to `/api/v1`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, create, show, update))]
pub(crate) struct Api;

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = NewCompany)]
#[serde(deny_unknown_fields)]
struct Create {
    name: String,
    #[serde(rename = "type")]
    company_type: CompanyType,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = CompanyCreated)]
struct Created {
    company_id: Uuid,
    code: String,
    position: i64,
}

/// Creates a company.
#[utoipa::path(
    post, path = "/tenants/{id}/companies",
    params(("id" = Uuid, Path, description = "The business"), IdempotencyKeyHeader),
    request_body = Create,
    responses((status = 201, description = "Created", body = Created), Problems)
)]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Create>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    let tenant_id = TenantId(path_id(&id)?);
    authorize_tenant(&state, &caller, tenant_id).await?;
    let ctx = state.context(Some(&caller), key, request_id);
    let created = create_company(
        &state.commands,
        tenant_id,
        &body.name,
        body.company_type,
        &ctx,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(Created {
            company_id: created.company_id,
            code: created.code,
            position: created.position,
        }),
    ))
}

/// A row of the `companies` read model.
#[derive(Serialize, sqlx::FromRow, utoipa::ToSchema)]
struct CompanyView {
    company_id: Uuid,
    tenant_id: Uuid,
    code: String,
    position: i32,
    #[sqlx(rename = "name_sealed")]
    name: String,
    #[serde(rename = "type")]
    company_type: String,
    status: String,
    created_at: DateTime<Utc>,
    last_position: i64,
    /// Its connections (not removed): `[{channel_id, platform, status}]`.
    /// `[{channel_id, platform, status}]`.
    #[schema(value_type = Vec<Object>)]
    channels: sqlx::types::Json<serde_json::Value>,
}

/// The companies read model joined with its connections' statuses.
// language=PostgreSQL
const SELECT_COMPANIES: &str = "
    select c.*,
           coalesce((select json_agg(json_build_object('channel_id', ch.channel_id,
                                                       'platform', ch.platform,
                                                       'status', ch.status)
                                     order by ch.created_at, ch.channel_id)
                     from channels ch
                     where ch.company_id = c.company_id and ch.removed_at is null),
                    '[]') as channels
    from companies c";

/// The business's companies by code, each with its connections' statuses.
#[utoipa::path(
    get, path = "/tenants/{id}/companies",
    params(("id" = Uuid, Path, description = "The business"), MinPositionHeader),
    responses((status = 200, description = "OK", body = [CompanyView]), Problems)
)]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    MinPosition(position): MinPosition,
    Path(id): Path<String>,
) -> Result<Json<Vec<CompanyView>>, ApiError> {
    let tenant_id = TenantId(path_id(&id)?);
    authorize_tenant(&state, &caller, tenant_id).await?;
    wait_for_views(&state, position).await?;
    let mut companies: Vec<CompanyView> = sqlx::query_as(&format!(
        "{SELECT_COMPANIES} where c.tenant_id = $1 order by c.position"
    ))
    .bind(tenant_id.0)
    .fetch_all(&state.pool)
    .await?;
    let key = scope_key(&state, tenant_id.0).await?;
    open_company_names(&key, &mut companies, |c| (c.company_id, &mut c.name))?;
    Ok(Json(companies))
}

/// One company, with its connections.
#[utoipa::path(
    get, path = "/companies/{id}",
    params(("id" = Uuid, Path, description = "The company"), MinPositionHeader),
    responses((status = 200, description = "OK", body = CompanyView), Problems)
)]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    MinPosition(position): MinPosition,
    Path(id): Path<String>,
) -> Result<Json<CompanyView>, ApiError> {
    let company_id = path_id(&id)?;
    wait_for_views(&state, position).await?;
    let company: CompanyView =
        sqlx::query_as(&format!("{SELECT_COMPANIES} where c.company_id = $1"))
            .bind(company_id)
            .fetch_optional(&state.pool)
            .await?
            .ok_or_else(ApiError::not_found)?;
    authorize_tenant(&state, &caller, TenantId(company.tenant_id)).await?;
    let key = scope_key(&state, company.tenant_id).await?;
    let mut companies = [company];
    open_company_names(&key, &mut companies, |c| (c.company_id, &mut c.name))?;
    let [company] = companies;
    Ok(Json(company))
}

/// Read-your-writes over both read models a company view joins.
async fn wait_for_views(state: &AppState, position: i64) -> Result<(), ApiError> {
    state.wait_for(COMPANIES, position).await?;
    state.wait_for(CHANNELS, position).await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Update {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    status: Option<CompanyStatus>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Updated {
    company_id: Uuid,
    position: i64,
}

/// Renames a company or changes its status.
#[utoipa::path(
    patch, path = "/companies/{id}",
    params(("id" = Uuid, Path, description = "The company"), IdempotencyKeyHeader),
    request_body = Update,
    responses((status = 200, description = "OK", body = Updated), Problems)
)]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Update>,
) -> Result<Json<Updated>, ApiError> {
    let company_id = path_id(&id)?;
    let company = authorize_company(&state, &caller, company_id).await?;
    let ctx = state.context(Some(&caller), key, request_id);
    let position = update_company(
        &state.commands,
        company.tenant_id(),
        company_id,
        body.name,
        body.status,
        &ctx,
    )
    .await?;
    Ok(Json(Updated {
        company_id,
        position,
    }))
}
