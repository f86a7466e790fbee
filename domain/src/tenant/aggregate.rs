//! The tenant aggregate: state, the pure `decide`, and `apply`.

use super::{PlanChangeOrigin, SubscriptionStatus, TenantCommand, TenantError, TenantEvent};
use crate::plan::{TRIAL_CHANNEL_LIMIT, TRIAL_DAYS};
use crate::{Plan, TenantId, UserId};
use chrono::{DateTime, Duration, Utc};
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

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
    /// Hard-deleted (DOMAIN.md "Hard delete"): takes no more commands.
    Erased,
}

/// A business's requested (or running) erasure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingErasure {
    /// The erasure's id.
    pub erasure_id: Uuid,
    /// The end of its grace period.
    pub not_before: DateTime<Utc>,
    /// Whether it began (then it can no longer be cancelled).
    pub started: bool,
    /// Who asked for it.
    pub requested_by: UserId,
    /// When it was asked.
    pub requested_at: DateTime<Utc>,
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
    /// Channels allowed; `None` is unlimited.
    #[serde(default = "trial_channel_limit")]
    channel_limit: Option<u32>,
    /// Connections holding a slot, oldest first.
    #[serde(default)]
    channels: Vec<Uuid>,
    /// The newest provider observation applied (out-of-order provider facts).
    #[serde(default)]
    provider_observed_at: Option<DateTime<Utc>>,
    /// Where its days start and end.
    #[serde(default)]
    time_zone: crate::time_zone::TimeZone,
    /// The erasure asked for and not cancelled, if any.
    #[serde(default)]
    erasure: Option<PendingErasure>,
    /// The CLIENT who owns it.
    #[serde(default)]
    owner: Option<UserId>,
}

fn trial_channel_limit() -> Option<u32> {
    Some(TRIAL_CHANNEL_LIMIT)
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
    /// The CLIENT who owns the business (`None` until registered).
    pub fn owner(&self) -> Option<UserId> {
        self.owner
    }
    /// The current manager, if any.
    pub fn manager(&self) -> Option<UserId> {
        self.manager
    }
    /// The current plan.
    pub fn plan(&self) -> Plan {
        self.plan
    }

    /// Subscription status.
    pub fn subscription_status(&self) -> SubscriptionStatus {
        self.subscription_status
    }
    /// Its time zone (`UTC` until set).
    pub fn time_zone(&self) -> &crate::time_zone::TimeZone {
        &self.time_zone
    }
    /// When the trial ends (or ended).
    pub fn trial_ends_at(&self) -> Option<DateTime<Utc>> {
        self.trial_ends_at
    }
    /// The erasure asked for and not cancelled (kept after the business is erased).
    pub fn erasure(&self) -> Option<PendingErasure> {
        self.erasure
    }
    /// Whether the business is erased or its erasure began: it takes no more commands.
    pub fn is_erased(&self) -> bool {
        self.status == TenantStatus::Erased || self.erasure.is_some_and(|e| e.started)
    }
    /// Channels allowed; `None` is unlimited.
    pub fn channel_limit(&self) -> Option<u32> {
        self.channel_limit
    }
    /// The connections holding a slot, oldest first.
    pub fn channels(&self) -> &[Uuid] {
        &self.channels
    }
    /// Whether more connections are held than the plan allows (after a downgrade that
    /// could not be refused).
    pub fn over_limit(&self) -> bool {
        self.channel_limit
            .is_some_and(|limit| self.channels_used() > limit)
    }
    fn channels_used(&self) -> u32 {
        u32::try_from(self.channels.len()).unwrap_or(u32::MAX)
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
        if let Some(events) = self.decide_erasure(&command)? {
            return Ok(events);
        }
        match command {
            C::RegisterTenant { .. } => unreachable!("handled above"),
            C::RequestErasure { .. }
            | C::CancelErasure { .. }
            | C::BeginErasure { .. }
            | C::EraseTenant { .. } => unreachable!("decided by decide_erasure"),
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
            C::RequestDowngrade { plan } => self.request_downgrade(plan),
            C::SetPlan {
                plan,
                channel_limit,
            } => {
                let limit = match (plan, channel_limit) {
                    (_, Some(limit)) => Some(limit),
                    (Plan::Special, None) => {
                        return Err(TenantError::ChannelLimitRequired { plan })
                    }
                    (plan, None) => plan.channel_limit(),
                };
                Ok(self.plan_changed(
                    plan,
                    limit,
                    SubscriptionStatus::Active,
                    PlanChangeOrigin::Admin,
                    None,
                ))
            }
            C::RecordPlanChange {
                plan,
                channel_limit,
                subscription_status,
                observed_at,
            } => {
                // A fact: never refused, but an older observation than the newest
                // recorded changes nothing. SPECIAL without a limit keeps the current one.
                if let (Some(at), Some(newest)) = (observed_at, self.provider_observed_at) {
                    if at < newest {
                        return Ok(vec![]);
                    }
                }
                let plan = plan.unwrap_or(self.plan);
                let limit = match plan {
                    Plan::Special => channel_limit.or(self.channel_limit),
                    _ => channel_limit.or(plan.channel_limit()),
                };
                Ok(self.plan_changed(
                    plan,
                    limit,
                    subscription_status,
                    PlanChangeOrigin::Provider,
                    observed_at,
                ))
            }
            C::ReserveChannelSlot { channel_id } => self.reserve_channel_slot(channel_id),
            C::ReleaseChannelSlot { channel_id } => {
                if !self.channels.contains(&channel_id) {
                    return Ok(vec![]);
                }
                let used = self.channels_used() - 1;
                Ok(vec![E::ChannelSlotReleased {
                    channel_id,
                    channels_used: used,
                    over_limit: self.channel_limit.is_some_and(|limit| used > limit),
                }])
            }
            C::SuspendTenant { reason } => match self.status {
                TenantStatus::Suspended => Err(TenantError::AlreadySuspended { tenant }),
                _ => Ok(vec![E::TenantSuspended { reason }]),
            },
            C::SetTimeZone { time_zone } if time_zone == self.time_zone => Ok(vec![]),
            C::SetTimeZone { time_zone } => Ok(vec![E::TimeZoneChanged { time_zone }]),
        }
    }
}

impl Tenant {
    /// The erasure commands' events, and the refusal of every other command once the
    /// erasure began (but giving back a slot, which the erasure's channel removals do).
    /// `None`: an ordinary command on a business that takes commands.
    fn decide_erasure(
        &self,
        command: &TenantCommand,
    ) -> Result<Option<Vec<TenantEvent>>, TenantError> {
        use TenantCommand as C;
        use TenantEvent as E;
        let tenant = self.id;
        let pending = self.erasure;
        let events = match *command {
            C::RequestErasure { .. } | C::CancelErasure { .. }
                if self.status == TenantStatus::Erased =>
            {
                return Err(TenantError::Erased { tenant })
            }
            C::RequestErasure {
                erasure_id,
                requested_by,
                requested_at,
                not_before,
            } => match pending {
                Some(_) => vec![],
                None => vec![E::TenantErasureRequested {
                    erasure_id,
                    requested_by,
                    requested_at,
                    not_before: not_before.max(requested_at),
                }],
            },
            C::CancelErasure { cancelled_by, at } => match pending {
                None => return Err(TenantError::NoErasurePending { tenant }),
                Some(erasure) if erasure.started => {
                    return Err(TenantError::ErasureStarted { tenant })
                }
                Some(erasure) => vec![E::TenantErasureCancelled {
                    erasure_id: erasure.erasure_id,
                    cancelled_by,
                    at,
                }],
            },
            C::BeginErasure { erasure_id, at } => match pending {
                None => return Err(TenantError::NoErasurePending { tenant }),
                Some(erasure) if erasure.erasure_id != erasure_id => {
                    return Err(TenantError::ErasureMismatch {
                        tenant,
                        erasure: erasure_id,
                    })
                }
                Some(erasure) if erasure.started => vec![],
                Some(erasure) if at < erasure.not_before => {
                    return Err(TenantError::ErasureGracePeriod {
                        tenant,
                        not_before: erasure.not_before,
                    })
                }
                Some(_) => vec![E::TenantErasureStarted { erasure_id, at }],
            },
            C::EraseTenant { erasure_id, at } => match pending {
                Some(erasure) if erasure.erasure_id == erasure_id && erasure.started => {
                    if self.status == TenantStatus::Erased {
                        vec![]
                    } else {
                        vec![E::TenantErased { erasure_id, at }]
                    }
                }
                _ => {
                    return Err(TenantError::ErasureMismatch {
                        tenant,
                        erasure: erasure_id,
                    })
                }
            },
            C::ReleaseChannelSlot { .. } => return Ok(None),
            _ if self.is_erased() => return Err(TenantError::Erased { tenant }),
            _ => return Ok(None),
        };
        Ok(Some(events))
    }

    /// A business's own plan change: only to a cheaper self-service plan, and only when
    /// its connections fit the new limit.
    fn request_downgrade(&self, plan: Plan) -> Result<Vec<TenantEvent>, TenantError> {
        let Some(limit) = plan.channel_limit().filter(|_| plan != Plan::Special) else {
            return Err(TenantError::CustomPlan { plan });
        };
        if plan == self.plan {
            return Ok(vec![]);
        }
        if plan.rank() > self.plan.rank() {
            return Err(TenantError::UpgradeRequiresCheckout {
                from: self.plan,
                to: plan,
            });
        }
        self.check_fits(limit, 0)?;
        Ok(self.plan_changed(
            plan,
            Some(limit),
            self.subscription_status,
            PlanChangeOrigin::Business,
            None,
        ))
    }

    /// A new connection's slot: refused when suspended, restricted, or at the limit.
    fn reserve_channel_slot(&self, channel_id: Uuid) -> Result<Vec<TenantEvent>, TenantError> {
        if self.channels.contains(&channel_id) {
            return Ok(vec![]);
        }
        if self.status == TenantStatus::Suspended {
            return Err(TenantError::Suspended { tenant: self.id });
        }
        if matches!(
            self.subscription_status,
            SubscriptionStatus::Expired | SubscriptionStatus::Cancelled
        ) {
            return Err(TenantError::ChannelsRestricted {
                tenant: self.id,
                status: self.subscription_status,
            });
        }
        if let Some(limit) = self.channel_limit {
            self.check_fits(limit, 1)?;
        }
        Ok(vec![TenantEvent::ChannelSlotReserved {
            channel_id,
            channels_used: self.channels_used() + 1,
        }])
    }

    /// Refuses when the held connections plus `adding` exceed `limit`, naming the newest
    /// connections whose removal would make room.
    fn check_fits(&self, limit: u32, adding: u32) -> Result<(), TenantError> {
        let used = self.channels_used();
        let excess = (used + adding).saturating_sub(limit) as usize;
        if excess == 0 {
            return Ok(());
        }
        Err(TenantError::OverChannelLimit {
            tenant: self.id,
            limit,
            used,
            remove: self.channels.iter().rev().take(excess).copied().collect(),
        })
    }

    /// The `PlanChanged` event, or none when nothing would change.
    fn plan_changed(
        &self,
        plan: Plan,
        channel_limit: Option<u32>,
        subscription_status: SubscriptionStatus,
        origin: PlanChangeOrigin,
        observed_at: Option<DateTime<Utc>>,
    ) -> Vec<TenantEvent> {
        if (plan, channel_limit, subscription_status)
            == (self.plan, self.channel_limit, self.subscription_status)
        {
            return vec![];
        }
        let channels_used = self.channels_used();
        vec![TenantEvent::PlanChanged {
            plan,
            channel_limit,
            subscription_status,
            origin,
            channels_used,
            over_limit: channel_limit.is_some_and(|limit| channels_used > limit),
            observed_at,
        }]
    }
}

/// A business name: trimmed, 1 to 200 characters.
///
/// # Errors
/// [`TenantError::InvalidName`].
pub fn parse_name(raw: &str) -> Result<String, TenantError> {
    crate::text::trimmed(raw, 1, 200).ok_or(TenantError::InvalidName)
}

impl Aggregate for Tenant {
    const TYPE: &'static str = "tenant";
    type Command = TenantCommand;
    type Event = TenantEvent;
    type Error = TenantError;
    type Services = ();

    crate::handle_by_decide!();

    fn apply(&mut self, event: Self::Event) {
        match event {
            TenantEvent::TenantRegistered {
                tenant_id,
                plan,
                subscription_status,
                trial_ends_at,
                channel_limit,
                owner_user_id,
                ..
            } => {
                self.owner = Some(owner_user_id);
                self.channel_limit = Some(channel_limit);
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
            TenantEvent::PlanChanged {
                plan,
                channel_limit,
                subscription_status,
                observed_at,
                ..
            } => {
                if observed_at.is_some() {
                    self.provider_observed_at = observed_at;
                }
                self.plan = plan;
                self.channel_limit = channel_limit;
                self.subscription_status = subscription_status;
            }
            TenantEvent::ChannelSlotReserved { channel_id, .. } => self.channels.push(channel_id),
            TenantEvent::ChannelSlotReleased { channel_id, .. } => {
                self.channels.retain(|held| *held != channel_id);
            }
            TenantEvent::TenantSuspended { .. } => self.status = TenantStatus::Suspended,
            TenantEvent::TimeZoneChanged { time_zone } => self.time_zone = time_zone,
            TenantEvent::TenantErasureRequested {
                erasure_id,
                not_before,
                requested_by,
                requested_at,
            } => {
                self.erasure = Some(PendingErasure {
                    erasure_id,
                    not_before,
                    started: false,
                    requested_by,
                    requested_at,
                });
            }
            TenantEvent::TenantErasureCancelled { .. } => self.erasure = None,
            TenantEvent::TenantErasureStarted { .. } => {
                if let Some(erasure) = &mut self.erasure {
                    erasure.started = true;
                }
            }
            TenantEvent::TenantErased { .. } => self.status = TenantStatus::Erased,
        }
    }
}
