//! Every aggregate type of the domain, replayable from stored events one at a time: the
//! shared ground of `verify` (which checks the rules of DOMAIN.md while replaying) and
//! `state` (which shows the state reached).

use cqrs_es::Aggregate;
use serde_json::Value;
use x8_domain::billing::order::{Order, OrderEvent, OrderStatus};
use x8_domain::loyalty::LoyaltyAccount;
use x8_domain::tenant::{Tenant, TenantEvent};
use x8_eventstore::RecordedEvent;

/// Why an event did not replay cleanly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Broken {
    /// The aggregate cannot read the event (nothing was applied).
    Unreadable(String),
    /// The event, applied, breaks a rule of the domain.
    Rule(String),
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreadable(why) | Self::Rule(why) => f.write_str(why),
        }
    }
}

/// An aggregate's state, replayed one stored event at a time.
pub(crate) trait Replay: Send {
    /// Deserialises `event`, checks the rules and applies it. A broken rule is returned
    /// after the event is applied anyway (it is history); an event the aggregate cannot
    /// read is returned without applying anything.
    fn apply(&mut self, event: &RecordedEvent) -> Result<(), Broken>;

    /// The state reached, as the aggregate serialises it (sealed fields still sealed).
    fn state(&self) -> serde_json::Result<Value>;
}

/// A rule checked with the state before an event and the event itself.
type Before<A> = fn(&A, &<A as Aggregate>::Event) -> Result<(), String>;
/// A rule checked with the state after an event.
type After<A> = fn(&A) -> Result<(), String>;

struct Replaying<A: Aggregate> {
    state: A,
    before: Before<A>,
    after: After<A>,
}

impl<A: Aggregate + 'static> Replaying<A> {
    fn boxed() -> Box<dyn Replay> {
        Self::with_rules(|_, _| Ok(()), |_| Ok(()))
    }

    fn with_rules(before: Before<A>, after: After<A>) -> Box<dyn Replay> {
        Box::new(Self {
            state: A::default(),
            before,
            after,
        })
    }
}

impl<A: Aggregate> Replay for Replaying<A> {
    fn apply(&mut self, event: &RecordedEvent) -> Result<(), Broken> {
        let domain_event: A::Event =
            serde_json::from_value(event.payload.clone()).map_err(|e| {
                Broken::Unreadable(format!(
                    "{} {}: not a {} event: {e}",
                    event.event_type,
                    event.event_version,
                    A::TYPE
                ))
            })?;
        let before = (self.before)(&self.state, &domain_event);
        self.state.apply(domain_event);
        before
            .and_then(|()| (self.after)(&self.state))
            .map_err(Broken::Rule)
    }

    fn state(&self) -> serde_json::Result<Value> {
        serde_json::to_value(&self.state)
    }
}

/// The replay of an aggregate type, with its rules, from the empty state; `None` for a
/// type no aggregate has.
pub(crate) fn replay_for(aggregate_type: &str) -> Option<Box<dyn Replay>> {
    use x8_domain::{billing, channel, company, conversation, delivery, erasure, loyalty};
    use x8_domain::{meta_apps, user};
    Some(match aggregate_type {
        Tenant::TYPE => Replaying::<Tenant>::with_rules(tenant_rules, |_| Ok(())),
        LoyaltyAccount::TYPE => Replaying::<LoyaltyAccount>::with_rules(
            |_, _| Ok(()),
            |account| {
                if account.balance() < 0 {
                    return Err(format!(
                        "loyalty balance {} points, below zero",
                        account.balance()
                    ));
                }
                Ok(())
            },
        ),
        Order::TYPE => Replaying::<Order>::with_rules(
            |order, event| match event {
                OrderEvent::OrderPaid { .. }
                    if matches!(order.status(), OrderStatus::Paid | OrderStatus::Refunded) =>
                {
                    Err("order paid twice".into())
                }
                _ => Ok(()),
            },
            |_| Ok(()),
        ),
        user::User::TYPE => Replaying::<user::User>::boxed(),
        company::Company::TYPE => Replaying::<company::Company>::boxed(),
        channel::Channel::TYPE => Replaying::<channel::Channel>::boxed(),
        meta_apps::MetaAppPool::TYPE => Replaying::<meta_apps::MetaAppPool>::boxed(),
        conversation::Conversation::TYPE => Replaying::<conversation::Conversation>::boxed(),
        delivery::Delivery::TYPE => Replaying::<delivery::Delivery>::boxed(),
        delivery::Courier::TYPE => Replaying::<delivery::Courier>::boxed(),
        loyalty::program::LoyaltyProgram::TYPE => {
            Replaying::<loyalty::program::LoyaltyProgram>::boxed()
        }
        loyalty::service::Service::TYPE => Replaying::<loyalty::service::Service>::boxed(),
        loyalty::referral::ReferralCode::TYPE => {
            Replaying::<loyalty::referral::ReferralCode>::boxed()
        }
        billing::connect::ConnectAccount::TYPE => {
            Replaying::<billing::connect::ConnectAccount>::boxed()
        }
        billing::subscription::Subscription::TYPE => {
            Replaying::<billing::subscription::Subscription>::boxed()
        }
        billing::provider_link::ProviderLink::TYPE => {
            Replaying::<billing::provider_link::ProviderLink>::boxed()
        }
        billing::unmatched::UnmatchedProviderEvent::TYPE => {
            Replaying::<billing::unmatched::UnmatchedProviderEvent>::boxed()
        }
        erasure::Erasure::TYPE => Replaying::<erasure::Erasure>::boxed(),
        _ => return None,
    })
}

/// One manager at a time (a reassignment names the manager the business had); a slot is
/// never reserved past the plan's limit (DOMAIN.md "People and roles", "Tenant lifecycle
/// and plans"). A downgrade may leave a business over its limit; reserving more may not.
fn tenant_rules(tenant: &Tenant, event: &TenantEvent) -> Result<(), String> {
    match event {
        TenantEvent::ManagerAssigned { manager_id } => match tenant.manager() {
            Some(current) => Err(format!(
                "manager {manager_id} assigned while {current} still manages the business"
            )),
            None => Ok(()),
        },
        TenantEvent::ManagerReassigned { from, .. } if tenant.manager() != Some(*from) => Err(
            format!("reassigned from {from}, which was not the business's manager"),
        ),
        TenantEvent::ChannelSlotReserved { channels_used, .. } => match tenant.channel_limit() {
            Some(limit) if *channels_used > limit => Err(format!(
                "channel slot reserved: {channels_used} connections on a plan of {limit}"
            )),
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}
