//! The tenant aggregate: state, the pure `decide`, and `apply`.

use super::{SubscriptionStatus, TenantCommand, TenantError, TenantEvent};
use crate::plan::{TRIAL_CHANNEL_LIMIT, TRIAL_DAYS};
use crate::{Plan, TenantId, UserId};
use chrono::{DateTime, Duration, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

/// Lifecycle status of a business.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    /// Not registered yet (an empty stream).
    #[default]
    Unregistered,
    /// Registered and usable.
    Active,
    /// Suspended by an admin.
    Suspended,
}

/// A business, as far as its own stream tells.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tenant {
    id: TenantId,
    status: TenantStatus,
    plan: Plan,
    subscription_status: SubscriptionStatus,
    trial_ends_at: Option<DateTime<Utc>>,
    manager: Option<UserId>,
    #[serde(default)]
    companies: u32,
}

impl Tenant {
    /// The business's id (nil until registered).
    pub fn id(&self) -> TenantId {
        self.id
    }
    /// Lifecycle status.
    pub fn status(&self) -> TenantStatus {
        self.status
    }
    /// The current manager, if any.
    pub fn manager(&self) -> Option<UserId> {
        self.manager
    }
    /// The current plan.
    pub fn plan(&self) -> Plan {
        self.plan
    }

    /// Decides which events a command produces, or why it is refused. Pure.
    ///
    /// # Errors
    /// A [`TenantError`] naming the broken rule.
    pub fn decide(&self, command: TenantCommand) -> Result<Vec<TenantEvent>, TenantError> {
        use TenantCommand as C;
        use TenantEvent as E;
        if let C::RegisterTenant {
            tenant_id,
            name,
            owner_user_id,
            owner_email,
            registered_at,
        } = command
        {
            if self.status != TenantStatus::Unregistered {
                return Err(TenantError::AlreadyRegistered { tenant: self.id });
            }
            let name = parse_name(&name)?;
            return Ok(vec![E::TenantRegistered {
                tenant_id,
                name,
                owner_user_id,
                owner_email,
                plan: Plan::Free,
                subscription_status: SubscriptionStatus::Trialing,
                channel_limit: TRIAL_CHANNEL_LIMIT,
                registered_at,
                trial_ends_at: registered_at + Duration::days(TRIAL_DAYS),
            }]);
        }
        if self.status == TenantStatus::Unregistered {
            return Err(TenantError::NotRegistered);
        }
        let tenant = self.id;
        match command {
            C::RegisterTenant { .. } => unreachable!("handled above"),
            C::AssignManager { manager_id } => match self.manager {
                Some(current) if current == manager_id => Ok(vec![]),
                Some(current) => Err(TenantError::ManagerAlreadyAssigned {
                    tenant,
                    manager: current,
                }),
                None => Ok(vec![E::ManagerAssigned { manager_id }]),
            },
            C::ReassignManager { from, to } => match self.manager {
                Some(current) if current == from && from == to => Ok(vec![]),
                Some(current) if current == from => Ok(vec![E::ManagerReassigned { from, to }]),
                current => Err(TenantError::ManagerMismatch {
                    tenant,
                    expected: from,
                    current,
                }),
            },
            C::UnassignManager => match self.manager {
                Some(manager_id) => Ok(vec![E::ManagerUnassigned { manager_id }]),
                None => Err(TenantError::NoManagerAssigned { tenant }),
            },
            C::ExpireTrial { at } => match (self.subscription_status, self.trial_ends_at) {
                (SubscriptionStatus::Trialing, Some(ends_at)) if at < ends_at => {
                    Err(TenantError::TrialNotOver { tenant, ends_at })
                }
                (SubscriptionStatus::Trialing, Some(ends_at)) => Ok(vec![E::TrialExpired {
                    expired_at: ends_at,
                }]),
                _ => Ok(vec![]),
            },
            C::AllocateCompanyCode { company_id } => {
                let position = self.companies + 1;
                Ok(vec![E::CompanyCodeAllocated {
                    company_id,
                    position,
                    code: crate::company::company_code(position),
                }])
            }
            C::SuspendTenant { reason } => match self.status {
                TenantStatus::Suspended => Err(TenantError::AlreadySuspended { tenant }),
                _ => Ok(vec![E::TenantSuspended { reason }]),
            },
        }
    }
}

/// A business name: trimmed, 1 to 200 characters.
///
/// # Errors
/// [`TenantError::InvalidName`].
pub fn parse_name(raw: &str) -> Result<String, TenantError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(TenantError::InvalidName);
    }
    Ok(name.to_string())
}

impl Aggregate for Tenant {
    const TYPE: &'static str = "tenant";
    type Command = TenantCommand;
    type Event = TenantEvent;
    type Error = TenantError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let events = self.decide(command)?;
        crate::emit(self, sink, events).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            TenantEvent::TenantRegistered {
                tenant_id,
                plan,
                subscription_status,
                trial_ends_at,
                ..
            } => {
                self.id = tenant_id;
                self.status = TenantStatus::Active;
                self.plan = plan;
                self.subscription_status = subscription_status;
                self.trial_ends_at = Some(trial_ends_at);
            }
            TenantEvent::ManagerAssigned { manager_id } => self.manager = Some(manager_id),
            TenantEvent::ManagerReassigned { to, .. } => self.manager = Some(to),
            TenantEvent::ManagerUnassigned { .. } => self.manager = None,
            TenantEvent::TrialExpired { .. } => {
                self.subscription_status = SubscriptionStatus::Expired;
            }
            TenantEvent::CompanyCodeAllocated { position, .. } => self.companies = position,
            TenantEvent::TenantSuspended { .. } => self.status = TenantStatus::Suspended,
        }
    }
}
