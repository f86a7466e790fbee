//! Tenant commands that need more than the tenant's own stream: manager assignment checks
//! that the manager exists and is a MANAGER.

use crate::bus::{CommandOutcome, NamedCommand};
use crate::context::CommandContext;
use crate::error::CommandError;
use crate::Commands;
use uuid::Uuid;
use x8_domain::tenant::{TenantCommand, TenantError};
use x8_domain::user::Role;
use x8_domain::{TenantId, UserId};

impl NamedCommand for TenantCommand {
    fn command_name(&self) -> &'static str {
        self.name()
    }
    fn tenant_id(&self, aggregate_id: &str) -> Option<Uuid> {
        aggregate_id.parse().ok()
    }
}

/// Why a management command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManagementError {
    /// Refused by the tenant aggregate.
    #[error(transparent)]
    Tenant(#[from] TenantError),
    /// The named user does not exist or is not a MANAGER.
    #[error("user {0} is not a manager")]
    NotAManager(UserId),
}

/// Assigns `manager_id` to the business, or hands it over from `replaces` (one
/// `ManagerReassigned` event) when given.
///
/// # Errors
/// [`ManagementError`] inside [`CommandError::Rejected`]; see [`crate::CommandBus::execute`].
pub async fn assign_manager(
    commands: &Commands,
    tenant_id: TenantId,
    manager_id: UserId,
    replaces: Option<UserId>,
    ctx: &CommandContext,
) -> Result<CommandOutcome, CommandError<ManagementError>> {
    let manager = commands
        .users
        .load(&manager_id.to_string())
        .await
        .map_err(|e| e.map_rejected(|_| ManagementError::NotAManager(manager_id)))?;
    if !manager.is_registered() || manager.role() != Role::Manager {
        return Err(CommandError::Rejected(ManagementError::NotAManager(
            manager_id,
        )));
    }
    let command = match replaces {
        Some(from) => TenantCommand::ReassignManager {
            from,
            to: manager_id,
        },
        None => TenantCommand::AssignManager { manager_id },
    };
    execute(commands, tenant_id, command, ctx).await
}

/// Executes a tenant command.
///
/// # Errors
/// See [`crate::CommandBus::execute`].
pub async fn execute(
    commands: &Commands,
    tenant_id: TenantId,
    command: TenantCommand,
    ctx: &CommandContext,
) -> Result<CommandOutcome, CommandError<ManagementError>> {
    commands
        .tenants
        .execute(&tenant_id.to_string(), command, ctx)
        .await
        .map_err(|e| e.map_rejected(ManagementError::Tenant))
}

/// Whether business `tenant_id` is erased or being erased: a deadline of its streams has
/// nothing left to do then (DOMAIN.md "Hard delete").
///
/// # Errors
/// The store's failure, as text for the deadline's row.
pub async fn is_erased(commands: &Commands, tenant_id: TenantId) -> Result<bool, String> {
    commands
        .tenants
        .inspect(&tenant_id.to_string(), x8_domain::tenant::Tenant::is_erased)
        .await
        .map_err(|e| e.to_string())
}
