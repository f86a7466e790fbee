//! Which tenant a payment provider's object belongs to: a Stripe customer (`cus_…`,
//! learned from a checkout or a subscription carrying our tenant id) or a connected
//! account (`acct_…`). One stream per provider object ([`link_id`]), so a later event
//! that names only the customer finds its tenant by reading one stream, consistently.
//! An object belongs to one tenant for good.

use crate::TenantId;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

/// The stream id of a provider object: `stripe-customer:cus_123`,
/// `stripe-account:acct_123`.
pub fn link_id(kind: LinkKind, provider_id: &str) -> String {
    format!("{}:{provider_id}", kind.as_str())
}

/// What kind of provider object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkKind {
    /// A Stripe customer (the business as X8's customer).
    StripeCustomer,
    /// A Stripe Connect account (the business's own account).
    StripeAccount,
}

impl LinkKind {
    /// The stream id prefix.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StripeCustomer => "stripe-customer",
            Self::StripeAccount => "stripe-account",
        }
    }
}

/// Link the object to a tenant; linking it again to the same tenant changes nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkToTenant {
    /// The tenant.
    pub tenant_id: TenantId,
}

/// The object was linked to a tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ProviderLinkEvent {
    /// Linked for good.
    ProviderObjectLinked {
        /// The tenant.
        tenant_id: TenantId,
    },
}

/// The object already belongs to another tenant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("this provider object belongs to tenant {owner}")]
pub struct LinkedElsewhere {
    /// Its tenant.
    pub owner: TenantId,
}

/// A provider object and its tenant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProviderLink {
    tenant_id: Option<TenantId>,
}

impl ProviderLink {
    /// The tenant, once linked.
    pub fn tenant_id(&self) -> Option<TenantId> {
        self.tenant_id
    }

    /// Pure decision.
    ///
    /// # Errors
    /// [`LinkedElsewhere`].
    pub fn decide(&self, command: LinkToTenant) -> Result<Vec<ProviderLinkEvent>, LinkedElsewhere> {
        match self.tenant_id {
            Some(owner) if owner == command.tenant_id => Ok(vec![]),
            Some(owner) => Err(LinkedElsewhere { owner }),
            None => Ok(vec![ProviderLinkEvent::ProviderObjectLinked {
                tenant_id: command.tenant_id,
            }]),
        }
    }
}

impl DomainEvent for ProviderLinkEvent {
    fn event_type(&self) -> String {
        "ProviderObjectLinked".to_string()
    }
    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

impl Aggregate for ProviderLink {
    const TYPE: &'static str = "provider_link";
    type Command = LinkToTenant;
    type Event = ProviderLinkEvent;
    type Error = LinkedElsewhere;
    type Services = ();

    crate::handle_by_decide!();

    fn apply(&mut self, event: Self::Event) {
        let ProviderLinkEvent::ProviderObjectLinked { tenant_id } = event;
        self.tenant_id = Some(tenant_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn an_object_belongs_to_one_tenant_for_good() {
        let (a, b) = (TenantId(Uuid::from_u128(1)), TenantId(Uuid::from_u128(2)));
        let mut link = ProviderLink::default();
        let events = link.decide(LinkToTenant { tenant_id: a }).expect("links");
        events.into_iter().for_each(|e| link.apply(e));
        assert_eq!(link.decide(LinkToTenant { tenant_id: a }), Ok(vec![]));
        assert_eq!(
            link.decide(LinkToTenant { tenant_id: b }),
            Err(LinkedElsewhere { owner: a })
        );
        assert_eq!(
            link_id(LinkKind::StripeCustomer, "cus_1"),
            "stripe-customer:cus_1"
        );
    }
}
