//! Why a tenant command is refused: one variant per broken rule.

use super::SubscriptionStatus;
use crate::{Plan, TenantId, UserId};

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
    /// The plan's channel limit would be exceeded (DOMAIN.md "Tenant lifecycle and
    /// plans"). `remove` names the connections whose removal would make the request pass.
    #[error("business {tenant} holds {used} channels; the limit is {limit}")]
    OverChannelLimit {
        /// The business.
        tenant: TenantId,
        /// The limit that applies (the current one, or the requested plan's).
        limit: u32,
        /// Connections held.
        used: u32,
        /// Connections to remove first, newest first.
        remove: Vec<uuid::Uuid>,
    },
    /// A business may only downgrade itself; upgrades go through checkout.
    #[error("{from} to {to} is not a downgrade: upgrades go through checkout")]
    UpgradeRequiresCheckout {
        /// The current plan.
        from: Plan,
        /// The requested plan.
        to: Plan,
    },
    /// SPECIAL (and ENTERPRISE) are custom deals, set by an ADMIN or the provider.
    #[error("plan {plan} is a custom deal, not self-service")]
    CustomPlan {
        /// The requested plan.
        plan: Plan,
    },
    /// SPECIAL has no channel limit of its own: the change must carry one.
    #[error("plan {plan} needs a channel limit")]
    ChannelLimitRequired {
        /// The plan.
        plan: Plan,
    },
    /// The trial ran out (or the subscription ended): no new channel connections.
    #[error("business {tenant} has no paid plan ({status:?}): new channels are restricted")]
    ChannelsRestricted {
        /// The business.
        tenant: TenantId,
        /// Its subscription status.
        status: SubscriptionStatus,
    },
    /// The business is suspended.
    #[error("business {tenant} is suspended")]
    Suspended {
        /// The business.
        tenant: TenantId,
    },
    /// The business is erased, or its erasure began: it takes no more commands
    /// (DOMAIN.md "Hard delete").
    #[error("business {tenant} is erased")]
    Erased {
        /// The business.
        tenant: TenantId,
    },
    /// Cancel or begin without a pending erasure (none asked for, or cancelled).
    #[error("business {tenant} has no pending erasure")]
    NoErasurePending {
        /// The business.
        tenant: TenantId,
    },
    /// Cancel after the erasure began: too late.
    #[error("the erasure of business {tenant} has begun and cannot be cancelled")]
    ErasureStarted {
        /// The business.
        tenant: TenantId,
    },
    /// Begin before the grace period's end.
    #[error("the erasure of business {tenant} may begin at {not_before}, not before")]
    ErasureGracePeriod {
        /// The business.
        tenant: TenantId,
        /// The grace period's end.
        not_before: chrono::DateTime<chrono::Utc>,
    },
    /// Begin or erase with another erasure's id than the pending one.
    #[error("erasure {erasure} is not the pending erasure of business {tenant}")]
    ErasureMismatch {
        /// The business.
        tenant: TenantId,
        /// The id given.
        erasure: uuid::Uuid,
    },
}
