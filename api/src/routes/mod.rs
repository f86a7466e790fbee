//! One module per resource, each with its `router()`.

pub mod admin;
pub mod auth;
pub mod billing;
pub mod channels;
pub mod companies;
pub mod conversations;
pub mod dashboards;
pub mod deliveries;
pub mod erasures;
pub mod health;
pub mod loyalty;
pub mod managers;
pub mod metrics;
pub mod orders;
pub mod tenants;
pub mod tracking;
pub mod webhooks;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use uuid::Uuid;
use x8_commands::accounts::tenant_name_purpose;
use x8_commands::companies::name_purpose as company_name_purpose;

/// The id of the current request (from `x-request-id`), used as correlation id.
pub struct RequestId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(Uuid::now_v7);
        Ok(Self(id))
    }
}

/// Parses a path id; anything that is not a UUID is 404 (it cannot name a resource).
pub fn path_id(raw: &str) -> Result<Uuid, crate::error::ApiError> {
    raw.parse().map_err(|_| crate::error::ApiError::not_found())
}

/// Whether `caller` may act on business `tenant_id`: an ADMIN always, a CLIENT its own, a
/// MANAGER the businesses assigned to it. Read from the tenant's own stream, so it is
/// current even while projections lag: the state this server's commands left, or loaded
/// within `X8_AUTHORIZATION_MAX_AGE_MS` (a change made through another server process
/// shows within that long; see [`x8_commands::CommandBus::inspect_recent`]).
///
/// # Errors
/// 404 `not_found` for a business that does not exist or that the caller may not see;
/// 410 `tenant_erased` once its erasure began (DOMAIN.md "Hard delete").
pub async fn authorize_tenant(
    state: &crate::AppState,
    caller: &crate::auth::Caller,
    tenant_id: x8_domain::TenantId,
) -> Result<(), crate::error::ApiError> {
    let (allowed, erased) = state
        .commands
        .tenants
        .inspect_recent(
            &tenant_id.to_string(),
            state.authorization_max_age,
            |tenant| (may_see(tenant, caller, tenant_id), tenant.is_erased()),
        )
        .await?;
    match (allowed, erased) {
        (false, _) => Err(crate::error::ApiError::not_found()),
        (true, true) => Err(crate::error::ApiError::tenant_erased()),
        (true, false) => Ok(()),
    }
}

/// Business `tenant_id` loaded from its own stream, if `caller` may see it (see
/// [`authorize_tenant`]), also once erased.
///
/// # Errors
/// 404 `not_found` for a business that does not exist or that the caller may not see.
pub async fn visible_tenant(
    state: &crate::AppState,
    caller: &crate::auth::Caller,
    tenant_id: x8_domain::TenantId,
) -> Result<x8_domain::tenant::Tenant, crate::error::ApiError> {
    let tenant = state.commands.tenants.load(&tenant_id.to_string()).await?;
    if may_see(&tenant, caller, tenant_id) {
        Ok(tenant)
    } else {
        Err(crate::error::ApiError::not_found())
    }
}

/// Whether `caller` may see business `tenant_id` in state `tenant`: it exists, and the
/// caller is an ADMIN, its CLIENT or its MANAGER.
fn may_see(
    tenant: &x8_domain::tenant::Tenant,
    caller: &crate::auth::Caller,
    tenant_id: x8_domain::TenantId,
) -> bool {
    use x8_domain::user::Role;
    tenant.status() != x8_domain::tenant::TenantStatus::Unregistered
        && match caller.role {
            Role::Admin => true,
            Role::Client => caller.tenant_id == Some(tenant_id),
            Role::Manager => tenant.manager() == Some(caller.user_id),
        }
}

/// The business named by a path segment, if `caller` may act on it (see
/// [`authorize_tenant`]).
///
/// # Errors
/// 404 `not_found` for a malformed id, a business that does not exist or one the caller
/// may not see.
pub async fn authorized_tenant(
    state: &crate::AppState,
    caller: &crate::auth::Caller,
    id: &str,
) -> Result<x8_domain::TenantId, crate::error::ApiError> {
    let tenant_id = x8_domain::TenantId(path_id(id)?);
    authorize_tenant(state, caller, tenant_id).await?;
    Ok(tenant_id)
}

/// The company `company_id` from its own stream, if `caller` may act on its business: as
/// this server's commands left or loaded it at most `X8_AUTHORIZATION_MAX_AGE_MS` ago (see
/// [`authorize_tenant`]).
///
/// # Errors
/// 404 `not_found` when it does not exist or the caller may not see it.
pub async fn authorize_company(
    state: &crate::AppState,
    caller: &crate::auth::Caller,
    company_id: Uuid,
) -> Result<x8_domain::company::Company, crate::error::ApiError> {
    let company = state
        .commands
        .companies
        .inspect_recent(
            &company_id.to_string(),
            state.authorization_max_age,
            Clone::clone,
        )
        .await?;
    if !company.exists() {
        return Err(crate::error::ApiError::not_found());
    }
    authorize_tenant(state, caller, company.tenant_id()).await?;
    Ok(company)
}

/// `tenant`'s data key, for opening several of its sealed fields with one lookup.
///
/// # Errors
/// 410 `tenant_erased` once the business was erased.
pub async fn scope_key(
    state: &crate::AppState,
    tenant: Uuid,
) -> Result<x8_commands::vault::ScopeKey, crate::error::ApiError> {
    state
        .commands
        .vault
        .scope_key(tenant)
        .await
        .map_err(vault_problem)
}

/// Opens a value sealed for `purpose` under `key`, as text.
///
/// # Errors
/// 410 `tenant_erased`; 500 for a value that does not open.
pub fn open_sealed(
    key: &x8_commands::vault::ScopeKey,
    purpose: &str,
    sealed: &str,
) -> Result<String, crate::error::ApiError> {
    let plaintext = key
        .open(purpose, &x8_domain::Sealed(sealed.to_string()))
        .map_err(vault_problem)?;
    Ok(String::from_utf8_lossy(&plaintext).into_owned())
}

/// Opens, in place, the sealed business names of `rows` (one key query for them all):
/// `field` gives each row's business and its sealed name. A business erased since its row
/// was read (its key is gone, its row about to be deleted) reads `[erased]`.
///
/// # Errors
/// 500 when the keys cannot be read or a name does not open.
pub async fn open_business_names<T>(
    state: &crate::AppState,
    rows: &mut [T],
    field: impl Fn(&mut T) -> (Uuid, &mut String),
) -> Result<(), crate::error::ApiError> {
    let tenants: Vec<Uuid> = rows.iter_mut().map(|row| field(row).0).collect();
    let keys = state
        .commands
        .vault
        .existing_scope_keys(&tenants)
        .await
        .map_err(crate::error::ApiError::internal)?;
    for row in rows {
        let (tenant, name) = field(row);
        *name = match keys.get(&tenant) {
            Some(key) => open_sealed(key, &tenant_name_purpose(tenant), name)?,
            None => "[erased]".into(),
        };
    }
    Ok(())
}

/// Opens, in place, the sealed names of companies of the business whose data `key` is
/// given: `field` gives each row's company and its sealed name.
///
/// # Errors
/// 500 for a name that does not open.
pub fn open_company_names<T>(
    key: &x8_commands::vault::ScopeKey,
    rows: &mut [T],
    field: impl Fn(&mut T) -> (Uuid, &mut String),
) -> Result<(), crate::error::ApiError> {
    for row in rows {
        let (company, name) = field(row);
        *name = open_sealed(key, &company_name_purpose(company), name)?;
    }
    Ok(())
}

fn vault_problem(err: x8_commands::vault::VaultError) -> crate::error::ApiError {
    match err {
        x8_commands::vault::VaultError::KeyDestroyed(_) => crate::error::ApiError::tenant_erased(),
        other => crate::error::ApiError::internal(other),
    }
}
