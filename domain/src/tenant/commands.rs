//! Commands of the tenant aggregate.

use super::SubscriptionStatus;
use crate::{Plan, Sealed, TenantId, UserId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What can be asked of a tenant. Times come from the caller's clock (UTC).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TenantCommand {
    /// Register a new business; starts the 7-day trial with 1 channel.
    RegisterTenant {
        /// The new business's id (also the stream id).
        tenant_id: TenantId,
        /// Display name, sealed with the tenant's data key; the caller validated it with
        /// [`super::parse_name`] (1 to 200 characters after trimming) before sealing.
        name: Sealed,
        /// The CLIENT user who owns the business.
        owner_user_id: UserId,
        /// The owner's address, sealed with the tenant's data key.
        owner_email: Sealed,
        /// When the registration happened.
        registered_at: DateTime<Utc>,
    },
    /// Assign a manager to a business that has none.
    AssignManager {
        /// The MANAGER user.
        manager_id: UserId,
    },
    /// Hand the business from its current manager `from` to `to`, in one event.
    ReassignManager {
        /// The manager the caller believes is assigned now.
        from: UserId,
        /// The new manager.
        to: UserId,
    },
    /// Remove the current manager.
    UnassignManager,
    /// End the trial when it ran out without a paid plan (issued by the deadline runner at
    /// `trial_ends_at`). A business no longer trialing is left as it is.
    ExpireTrial {
        /// Now, by the caller's clock; must not be before the trial's end.
        at: DateTime<Utc>,
    },
    /// Allocate the next company code (`COMP001`, `COMP002`, …) to a new company.
    AllocateCompanyCode {
        /// The company that gets it.
        company_id: uuid::Uuid,
    },
    /// The business asks for a cheaper plan. Upgrades go through checkout (billing); a
    /// downgrade is refused while more channels are connected than the new plan allows.
    RequestDowngrade {
        /// The lower plan: FREE, SINGLE or DOUBLE below the current one.
        plan: Plan,
    },
    /// An ADMIN sets any plan (a custom deal). Never refused for the channel count: a tenant
    /// left with too many channels is marked over its limit.
    SetPlan {
        /// The plan.
        plan: Plan,
        /// A custom channel limit; required for SPECIAL, optional otherwise (`None` keeps
        /// the plan's own limit).
        channel_limit: Option<u32>,
    },
    /// A plan change reported by the payment provider: a fact, recorded as it is.
    RecordPlanChange {
        /// The plan the subscription is on now; `None` keeps the current plan (a price the
        /// platform does not map changes only the status).
        plan: Option<Plan>,
        /// The subscription's channel limit when the plan has none of its own (SPECIAL).
        channel_limit: Option<u32>,
        /// The subscription's status.
        subscription_status: SubscriptionStatus,
        /// When the provider observed it (its event's `created`): a change older than the
        /// newest one recorded changes nothing (provider events arrive out of order).
        #[serde(default)]
        observed_at: Option<DateTime<Utc>>,
    },
    /// Reserve a channel slot for a new connection: refused at the limit, over it, when
    /// the trial expired without a plan, or when suspended. Reserving a held slot again
    /// changes nothing.
    ReserveChannelSlot {
        /// The new connection's id.
        channel_id: uuid::Uuid,
    },
    /// Give back a connection's slot (it was removed). Releasing a free slot changes
    /// nothing.
    ReleaseChannelSlot {
        /// The connection.
        channel_id: uuid::Uuid,
    },
    /// Suspend the business (ADMIN).
    SuspendTenant {
        /// Why, for the audit trail.
        reason: String,
    },
    /// Set the business's time zone (daily metrics split days by it). Setting the zone
    /// it has changes nothing.
    SetTimeZone {
        /// The zone.
        time_zone: crate::time_zone::TimeZone,
    },
    /// Ask for the business's hard delete (DOMAIN.md "Hard delete"). Asking again while an
    /// erasure is pending or running changes nothing (erasing twice runs once).
    RequestErasure {
        /// The new erasure's id (also the erasure process's stream id).
        erasure_id: uuid::Uuid,
        /// The user who asked (the owner or an ADMIN).
        requested_by: UserId,
        /// When it was asked (UTC).
        requested_at: DateTime<Utc>,
        /// When the erasure may begin: `requested_at` + the grace period.
        not_before: DateTime<Utc>,
    },
    /// Stop a requested erasure during its grace period. Refused once it began.
    CancelErasure {
        /// The user who cancelled.
        cancelled_by: UserId,
        /// When (UTC).
        at: DateTime<Utc>,
    },
    /// The erasure process begins (its grace period is over): from now on the business
    /// refuses every command but the erasure's own. Beginning a begun erasure changes
    /// nothing.
    BeginErasure {
        /// The erasure that begins; must be the pending one.
        erasure_id: uuid::Uuid,
        /// Now, by the process's clock; not before the grace period's end.
        at: DateTime<Utc>,
    },
    /// The erasure's last compensating command: the business is gone. Its data key is
    /// destroyed right after (crypto-shredding). Erasing an erased business changes
    /// nothing.
    EraseTenant {
        /// The erasure that began.
        erasure_id: uuid::Uuid,
        /// When (UTC).
        at: DateTime<Utc>,
    },
}

impl TenantCommand {
    /// The command's name, recorded in event metadata and the idempotency record.
    pub fn name(&self) -> &'static str {
        match self {
            Self::RegisterTenant { .. } => "RegisterTenant",
            Self::AssignManager { .. } => "AssignManager",
            Self::ReassignManager { .. } => "ReassignManager",
            Self::UnassignManager => "UnassignManager",
            Self::ExpireTrial { .. } => "ExpireTrial",
            Self::AllocateCompanyCode { .. } => "AllocateCompanyCode",
            Self::RequestDowngrade { .. } => "RequestDowngrade",
            Self::SetPlan { .. } => "SetPlan",
            Self::RecordPlanChange { .. } => "RecordPlanChange",
            Self::ReserveChannelSlot { .. } => "ReserveChannelSlot",
            Self::ReleaseChannelSlot { .. } => "ReleaseChannelSlot",
            Self::SuspendTenant { .. } => "SuspendTenant",
            Self::SetTimeZone { .. } => "SetTimeZone",
            Self::RequestErasure { .. } => "RequestErasure",
            Self::CancelErasure { .. } => "CancelErasure",
            Self::BeginErasure { .. } => "BeginErasure",
            Self::EraseTenant { .. } => "EraseTenant",
        }
    }
}
