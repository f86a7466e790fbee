//! Why a tenant command is refused: one variant per broken rule.

use crate::{TenantId, UserId};

/// A refused tenant command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantError {
    /// The stream already holds a registration.
    #[error("business {tenant} is already registered")]
    AlreadyRegistered {
        /// The business.
        tenant: TenantId,
    },
    /// The command needs a registered business.
    #[error("business is not registered")]
    NotRegistered,
    /// The name is empty or longer than 200 characters.
    #[error("a business name must have 1 to 200 characters")]
    InvalidName,
    /// At most one manager per business (DOMAIN.md).
    #[error("business {tenant} already has manager {manager}")]
    ManagerAlreadyAssigned {
        /// The business.
        tenant: TenantId,
        /// Its current manager.
        manager: UserId,
    },
    /// A reassignment named a `from` manager that is not the current one.
    #[error("business {tenant} is managed by {current:?}, not {expected}")]
    ManagerMismatch {
        /// The business.
        tenant: TenantId,
        /// The manager the caller named.
        expected: UserId,
        /// The actual manager, if any.
        current: Option<UserId>,
    },
    /// Unassign or reassign on a business without a manager.
    #[error("business {tenant} has no manager")]
    NoManagerAssigned {
        /// The business.
        tenant: TenantId,
    },
    /// `ExpireTrial` arrived before the trial's end.
    #[error("the trial of business {tenant} ends at {ends_at}, not yet")]
    TrialNotOver {
        /// The business.
        tenant: TenantId,
        /// When the trial ends.
        ends_at: chrono::DateTime<chrono::Utc>,
    },
    /// The business is suspended already.
    #[error("business {tenant} is already suspended")]
    AlreadySuspended {
        /// The business.
        tenant: TenantId,
    },
}
