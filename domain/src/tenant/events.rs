//! Events of the tenant aggregate, with their stable types and versions.

use crate::{Plan, Sealed, TenantId, UserId};
use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

/// Subscription status of a business (DOMAIN.md: trialing, active, past_due, cancelled, expired).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    /// In the 7-day trial.
    #[default]
    Trialing,
    /// Paid and current.
    Active,
    /// A payment failed; the provider is retrying.
    PastDue,
    /// Cancelled by the business or the provider.
    Cancelled,
    /// The trial or the subscription ran out.
    Expired,
}

impl SubscriptionStatus {
    /// The snake_case name used on the wire and in read models.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trialing => "trialing",
            Self::Active => "active",
            Self::PastDue => "past_due",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }
}

/// Who changed a plan, which decides whether the change could be refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanChangeOrigin {
    /// An ADMIN set the plan (a custom deal): authoritative, like a fact.
    Admin,
    /// The business asked for a downgrade; refused while over the new limit.
    Business,
    /// The payment provider reported the change: a fact, never refused.
    Provider,
}

/// What happened to a tenant. The numbers views need (plan, limit, trial end) are carried
/// by the events so projections copy them instead of recomputing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TenantEvent {
    /// A business registered. Version 2.0 added `plan`, `subscription_status`,
    /// `channel_limit` and `trial_ends_at`; 3.0 seals `owner_email`, 4.0 `name` (see
    /// [`crate::upcasters`]).
    TenantRegistered {
        /// The business.
        tenant_id: TenantId,
        /// Display name, sealed with the tenant's data key (purpose `tenant:<id>:name`).
        name: Sealed,
        /// The CLIENT owner.
        owner_user_id: UserId,
        /// The owner's address, sealed with the tenant's data key.
        owner_email: Sealed,
        /// The plan at registration: FREE.
        plan: Plan,
        /// `trialing` at registration.
        subscription_status: SubscriptionStatus,
        /// Channels allowed: 1 during the trial.
        channel_limit: u32,
        /// When the business registered (UTC).
        registered_at: DateTime<Utc>,
        /// When the trial ends: registration + 7 days (UTC).
        trial_ends_at: DateTime<Utc>,
    },
    /// A manager was assigned to a business that had none.
    ManagerAssigned {
        /// The MANAGER user.
        manager_id: UserId,
    },
    /// The business moved from one manager to another in one step.
    ManagerReassigned {
        /// The manager it had.
        from: UserId,
        /// The manager it has now.
        to: UserId,
    },
    /// The business's manager was removed.
    ManagerUnassigned {
        /// The manager it had.
        manager_id: UserId,
    },
    /// The trial ran out without a paid plan: no new channel connections, existing data
    /// stays readable (DOMAIN.md "Tenant lifecycle and plans").
    TrialExpired {
        /// When the trial ended (the deadline's time, UTC).
        expired_at: DateTime<Utc>,
    },
    /// The next company code went to a company.
    CompanyCodeAllocated {
        /// The company.
        company_id: uuid::Uuid,
        /// Its position among the tenant's companies (1, 2, …).
        position: u32,
        /// Its code, e.g. `COMP001`.
        code: String,
    },
    /// The business's plan changed. A change that leaves more channels than the new limit
    /// (only an ADMIN's or the provider's) sets `over_limit`: no new connection until the
    /// excess is removed (DOMAIN.md "Tenant lifecycle and plans").
    PlanChanged {
        /// The new plan.
        plan: Plan,
        /// Channels allowed now; `None` is unlimited (ENTERPRISE).
        channel_limit: Option<u32>,
        /// The subscription status after the change.
        subscription_status: SubscriptionStatus,
        /// Who changed it.
        origin: PlanChangeOrigin,
        /// Channel connections held (not removed) at the change.
        channels_used: u32,
        /// Whether `channels_used` exceeds `channel_limit`.
        over_limit: bool,
        /// For a provider's change, when the provider observed it (added in 1.0 as an
        /// optional field: older events have none).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        observed_at: Option<DateTime<Utc>>,
    },
    /// A channel slot was reserved for a new connection (before its stream is created).
    ChannelSlotReserved {
        /// The connection that holds the slot.
        channel_id: uuid::Uuid,
        /// Connections held after the reservation.
        channels_used: u32,
    },
    /// A connection was removed (or its creation abandoned) and gave its slot back.
    ChannelSlotReleased {
        /// The connection.
        channel_id: uuid::Uuid,
        /// Connections held after the release.
        channels_used: u32,
        /// Whether the tenant is still over its limit.
        over_limit: bool,
    },
    /// The business was suspended.
    TenantSuspended {
        /// Why.
        reason: String,
    },
    /// The business's time zone changed (from `UTC` at registration).
    TimeZoneChanged {
        /// The zone now.
        time_zone: crate::time_zone::TimeZone,
    },
    /// The business's hard delete was asked for; it begins at `not_before` unless
    /// cancelled first (DOMAIN.md "Hard delete").
    TenantErasureRequested {
        /// The erasure (its process's stream id).
        erasure_id: uuid::Uuid,
        /// The owner or ADMIN who asked.
        requested_by: UserId,
        /// When (UTC).
        requested_at: DateTime<Utc>,
        /// The end of the grace period (UTC).
        not_before: DateTime<Utc>,
    },
    /// The requested erasure was cancelled during its grace period: nothing was erased.
    TenantErasureCancelled {
        /// The erasure.
        erasure_id: uuid::Uuid,
        /// Who cancelled.
        cancelled_by: UserId,
        /// When (UTC).
        at: DateTime<Utc>,
    },
    /// The erasure began: the business refuses commands from now on.
    TenantErasureStarted {
        /// The erasure.
        erasure_id: uuid::Uuid,
        /// When (UTC).
        at: DateTime<Utc>,
    },
    /// The business is erased: every compensating step ran, its data key is destroyed
    /// next. The events stay; the personal fields in them are unreadable for good.
    TenantErased {
        /// The erasure.
        erasure_id: uuid::Uuid,
        /// When (UTC).
        at: DateTime<Utc>,
    },
}

impl DomainEvent for TenantEvent {
    fn event_type(&self) -> String {
        match self {
            Self::TenantRegistered { .. } => "TenantRegistered",
            Self::ManagerAssigned { .. } => "ManagerAssigned",
            Self::ManagerReassigned { .. } => "ManagerReassigned",
            Self::ManagerUnassigned { .. } => "ManagerUnassigned",
            Self::TrialExpired { .. } => "TrialExpired",
            Self::CompanyCodeAllocated { .. } => "CompanyCodeAllocated",
            Self::PlanChanged { .. } => "PlanChanged",
            Self::ChannelSlotReserved { .. } => "ChannelSlotReserved",
            Self::ChannelSlotReleased { .. } => "ChannelSlotReleased",
            Self::TenantSuspended { .. } => "TenantSuspended",
            Self::TimeZoneChanged { .. } => "TimeZoneChanged",
            Self::TenantErasureRequested { .. } => "TenantErasureRequested",
            Self::TenantErasureCancelled { .. } => "TenantErasureCancelled",
            Self::TenantErasureStarted { .. } => "TenantErasureStarted",
            Self::TenantErased { .. } => "TenantErased",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        match self {
            Self::TenantRegistered { .. } => "4.0",
            _ => "1.0",
        }
        .to_string()
    }
}
