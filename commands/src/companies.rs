//! Companies: creation in two steps (the tenant allocates the code, then the company
//! stream is created with it) and changes. See `x8_domain::company` for why the code is
//! allocated by the tenant.

use crate::bus::NamedCommand;
use crate::context::CommandContext;
use crate::error::CommandError;
use crate::Commands;
use cqrs_es::Aggregate;
use uuid::Uuid;
use x8_domain::company::{
    parse_name, Company, CompanyCommand, CompanyError, CompanyStatus, CompanyType,
};
use x8_domain::tenant::{TenantCommand, TenantError, TenantEvent};
use x8_domain::{Sealed, TenantId};

impl NamedCommand for CompanyCommand {
    fn command_name(&self) -> &'static str {
        match self {
            Self::CreateCompany { .. } => "CreateCompany",
            Self::RenameCompany { .. } => "RenameCompany",
            Self::ChangeCompanyStatus { .. } => "ChangeCompanyStatus",
            Self::CloseCompany { .. } => "CloseCompany",
        }
    }
    fn tenant_id(&self, _aggregate_id: &str) -> Option<Uuid> {
        match self {
            Self::CreateCompany { tenant_id, .. } => Some(tenant_id.0),
            _ => None,
        }
    }
}

/// Why a company command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompanyOpError {
    /// Refused by the tenant (e.g. not registered).
    #[error(transparent)]
    Tenant(#[from] TenantError),
    /// Refused by the company.
    #[error(transparent)]
    Company(#[from] CompanyError),
}

/// A created company.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedCompany {
    /// The new company.
    pub company_id: Uuid,
    /// Its code, e.g. `COMP003`.
    pub code: String,
    /// Global position of its creation, for read-your-writes.
    pub position: i64,
}

/// Creates a company of `tenant_id`: allocates the next code on the tenant stream, then
/// creates the company stream with it.
///
/// # Errors
/// [`CompanyOpError`] inside [`CommandError::Rejected`]; see [`crate::CommandBus::execute`].
pub async fn create_company(
    commands: &Commands,
    tenant_id: TenantId,
    name: &str,
    company_type: CompanyType,
    ctx: &CommandContext,
) -> Result<CreatedCompany, CommandError<CompanyOpError>> {
    let name = parse_name(name).map_err(|e| CommandError::Rejected(e.into()))?;
    let ctx = ctx.clone().for_tenant(tenant_id.0).fingerprinted(&[
        "CreateCompany",
        &tenant_id.to_string(),
        &name,
        &format!("{company_type:?}"),
    ]);
    let allocation = commands
        .tenants
        .execute(
            &tenant_id.to_string(),
            TenantCommand::AllocateCompanyCode {
                company_id: Uuid::now_v7(),
            },
            &ctx.step("code"),
        )
        .await
        .map_err(|e| e.map_rejected(CompanyOpError::Tenant))?;
    // The allocation event says which company got which code (on a replay: the first's).
    let position = allocation.position();
    let event = x8_eventstore::all::event_at(commands.store.pool(), position)
        .await?
        .ok_or_else(|| CommandError::Infrastructure(format!("no event at position {position}")))?;
    let Ok(TenantEvent::CompanyCodeAllocated {
        company_id,
        position: number,
        code,
    }) = serde_json::from_value(event.payload)
    else {
        return Err(CommandError::Infrastructure(format!(
            "event {position} is not a code allocation"
        )));
    };
    let name = seal_name(commands, tenant_id, company_id, &name).await?;
    let created = commands
        .companies
        .execute(
            &company_id.to_string(),
            CompanyCommand::CreateCompany {
                tenant_id,
                code: code.clone(),
                position: number,
                name,
                company_type,
            },
            &ctx.step("company"),
        )
        .await
        .map_err(|e| e.map_rejected(CompanyOpError::Company))?;
    Ok(CreatedCompany {
        company_id,
        code,
        position: created.position(),
    })
}

/// Renames and/or changes the status of a company of `tenant_id`. Returns the global
/// position of the last change (0 when nothing changed). A name is validated and, unless
/// it is the current one (which changes nothing), sealed with the business's data key.
///
/// # Errors
/// As [`create_company`].
pub async fn update_company(
    commands: &Commands,
    tenant_id: TenantId,
    company_id: Uuid,
    name: Option<String>,
    status: Option<CompanyStatus>,
    ctx: &CommandContext,
) -> Result<i64, CommandError<CompanyOpError>> {
    let name = name
        .map(|name| parse_name(&name).map_err(|e| CommandError::Rejected(e.into())))
        .transpose()?;
    let ctx = ctx.clone().for_tenant(tenant_id.0).or_fingerprinted(&[
        "UpdateCompany",
        &company_id.to_string(),
        name.as_deref().unwrap_or_default(),
        &format!("{status:?}"),
    ]);
    let rename = match name {
        Some(name) => renaming(commands, tenant_id, company_id, &name).await?,
        None => None,
    };
    let mut position = 0;
    let changes = rename
        .map(|name| ("rename", CompanyCommand::RenameCompany { name }))
        .into_iter()
        .chain(status.map(|status| ("status", CompanyCommand::ChangeCompanyStatus { status })));
    for (step, command) in changes {
        let outcome = commands
            .companies
            .execute(&company_id.to_string(), command, &ctx.step(step))
            .await
            .map_err(|e| e.map_rejected(CompanyOpError::Company))?;
        position = position.max(outcome.position());
    }
    Ok(position)
}

/// The sealed new name of `company_id`, or `None` when `name` is its current name (the
/// aggregate cannot compare sealed values, so renaming to the same name is decided here).
async fn renaming(
    commands: &Commands,
    tenant_id: TenantId,
    company_id: Uuid,
    name: &str,
) -> Result<Option<Sealed>, CommandError<CompanyOpError>> {
    let company = commands
        .companies
        .load(&company_id.to_string())
        .await
        .map_err(|e| e.map_rejected(CompanyOpError::Company))?;
    if company.exists() {
        let current = commands
            .vault
            .open(tenant_id.0, &name_purpose(company_id), company.name())
            .await
            .map_err(|e| e.refusal(erased(tenant_id)))?;
        if *current == *name.as_bytes() {
            return Ok(None);
        }
    }
    seal_name(commands, tenant_id, company_id, name)
        .await
        .map(Some)
}

/// Seals a company's validated name with its business's data key.
async fn seal_name(
    commands: &Commands,
    tenant_id: TenantId,
    company_id: Uuid,
    name: &str,
) -> Result<Sealed, CommandError<CompanyOpError>> {
    commands
        .vault
        .seal(tenant_id.0, &name_purpose(company_id), name.as_bytes())
        .await
        .map_err(|e| e.refusal(erased(tenant_id)))
}

fn erased(tenant: TenantId) -> CompanyOpError {
    TenantError::Erased { tenant }.into()
}

/// The vault purpose of a company's sealed name.
pub fn name_purpose(company_id: Uuid) -> String {
    Sealed::purpose(Company::TYPE, company_id, "name")
}
