//! A tenant's Stripe Connect account (one aggregate per tenant, stream id = tenant id):
//! the account its customers pay into (DOMAIN.md "Payments", flow 2).
//!
//! Linked by onboarding (X8 creates an Express account) or by an ADMIN (an existing
//! account), disconnected by the business or an ADMIN. `account.updated` events record
//! whether Stripe lets the account take charges and pay out, and what it still needs.
//! The platform commission is kept in basis points (0 by default, at most 10,000).

use crate::TenantId;
use chrono::{DateTime, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

/// The largest commission: 10,000 basis points = 100 %.
pub const MAX_COMMISSION_BPS: u32 = 10_000;

/// How an account came to be linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkOrigin {
    /// X8 created it for the business's onboarding.
    Onboarding,
    /// An ADMIN linked an existing account.
    Admin,
}

impl LinkOrigin {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Onboarding => "onboarding",
            Self::Admin => "admin",
        }
    }
}

/// What Stripe says of the account (`account.updated`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountStatus {
    /// It can take charges.
    pub charges_enabled: bool,
    /// It can be paid out.
    pub payouts_enabled: bool,
    /// Onboarding details were submitted.
    pub details_submitted: bool,
    /// `requirements.currently_due`.
    pub requirements_due: Vec<String>,
    /// `requirements.disabled_reason`.
    pub disabled_reason: Option<String>,
}

/// What can be asked of a connected account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ConnectCommand {
    /// Link `account_id`. Linking the linked account again changes nothing; another one
    /// is refused until the current one is disconnected.
    LinkAccount {
        /// The tenant.
        tenant_id: TenantId,
        /// `acct_…`.
        account_id: String,
        /// How.
        origin: LinkOrigin,
    },
    /// Disconnect the linked account.
    Disconnect,
    /// Record `account.updated` for `account_id` (ignored for an account not linked, or
    /// older than the newest status).
    RecordAccountStatus {
        /// `acct_…`.
        account_id: String,
        /// The status.
        status: AccountStatus,
        /// The Stripe event's `created`.
        observed_at: DateTime<Utc>,
    },
    /// Set the platform commission (ADMIN), in basis points.
    SetCommission {
        /// 0 to [`MAX_COMMISSION_BPS`].
        commission_bps: u32,
    },
}

impl ConnectCommand {
    /// The command's name, recorded in event metadata and the idempotency record.
    pub fn name(&self) -> &'static str {
        match self {
            Self::LinkAccount { .. } => "LinkConnectAccount",
            Self::Disconnect => "DisconnectConnectAccount",
            Self::RecordAccountStatus { .. } => "RecordConnectAccountStatus",
            Self::SetCommission { .. } => "SetCommission",
        }
    }
}

/// What happened to a connected account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ConnectEvent {
    /// An account was linked.
    ConnectAccountLinked {
        /// The tenant.
        tenant_id: TenantId,
        /// `acct_…`.
        account_id: String,
        /// How.
        origin: LinkOrigin,
    },
    /// The account was disconnected: no payment link until another is linked.
    ConnectAccountDisconnected {
        /// `acct_…`.
        account_id: String,
    },
    /// Stripe reported the account's status.
    ConnectAccountUpdated {
        /// `acct_…`.
        account_id: String,
        /// The status.
        status: AccountStatus,
        /// The Stripe event's `created`.
        observed_at: DateTime<Utc>,
    },
    /// The platform commission changed.
    CommissionSet {
        /// Basis points.
        commission_bps: u32,
    },
}

impl DomainEvent for ConnectEvent {
    fn event_type(&self) -> String {
        match self {
            Self::ConnectAccountLinked { .. } => "ConnectAccountLinked",
            Self::ConnectAccountDisconnected { .. } => "ConnectAccountDisconnected",
            Self::ConnectAccountUpdated { .. } => "ConnectAccountUpdated",
            Self::CommissionSet { .. } => "CommissionSet",
        }
        .to_string()
    }
    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

/// Why a Connect command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// Another account is linked.
    #[error("account {linked} is linked; disconnect it first")]
    AlreadyLinked {
        /// The linked account.
        linked: String,
    },
    /// No account is linked.
    #[error("no Stripe Connect account is linked")]
    NotLinked,
    /// Not an `acct_…` id.
    #[error("{0:?} is not a Stripe account id (acct_…)")]
    InvalidAccountId(String),
    /// Above 100 %.
    #[error("commission {0} bps is above {MAX_COMMISSION_BPS}")]
    InvalidCommission(u32),
}

/// A tenant's connected account.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConnectAccount {
    tenant_id: Option<TenantId>,
    account_id: Option<String>,
    status: AccountStatus,
    observed_at: Option<DateTime<Utc>>,
    commission_bps: u32,
    #[serde(default)]
    origin: Option<LinkOrigin>,
}

impl ConnectAccount {
    /// The linked account.
    pub fn account_id(&self) -> Option<&str> {
        self.account_id.as_deref()
    }
    /// How the linked account came (X8 created it, or an ADMIN linked an existing one).
    pub fn origin(&self) -> Option<LinkOrigin> {
        self.origin
    }
    /// Whether payment links may be sent: an account is linked and takes charges.
    pub fn charges_enabled(&self) -> bool {
        self.account_id.is_some() && self.status.charges_enabled
    }
    /// The last reported status.
    pub fn status(&self) -> &AccountStatus {
        &self.status
    }
    /// The platform commission in basis points.
    pub fn commission_bps(&self) -> u32 {
        self.commission_bps
    }

    /// Pure decision.
    ///
    /// # Errors
    /// [`ConnectError`].
    pub fn decide(&self, command: ConnectCommand) -> Result<Vec<ConnectEvent>, ConnectError> {
        use ConnectCommand as C;
        use ConnectEvent as E;
        Ok(match command {
            C::LinkAccount {
                tenant_id,
                account_id,
                origin,
            } => {
                check_account_id(&account_id)?;
                match &self.account_id {
                    Some(linked) if *linked == account_id => vec![],
                    Some(linked) => {
                        return Err(ConnectError::AlreadyLinked {
                            linked: linked.clone(),
                        })
                    }
                    None => vec![E::ConnectAccountLinked {
                        tenant_id,
                        account_id,
                        origin,
                    }],
                }
            }
            C::Disconnect => match &self.account_id {
                Some(account_id) => vec![E::ConnectAccountDisconnected {
                    account_id: account_id.clone(),
                }],
                None => return Err(ConnectError::NotLinked),
            },
            C::RecordAccountStatus {
                account_id,
                status,
                observed_at,
            } => {
                let stale = self.observed_at.is_some_and(|newest| observed_at < newest);
                if self.account_id.as_deref() != Some(account_id.as_str())
                    || stale
                    || status == self.status
                {
                    return Ok(vec![]);
                }
                vec![E::ConnectAccountUpdated {
                    account_id,
                    status,
                    observed_at,
                }]
            }
            C::SetCommission { commission_bps } => {
                if commission_bps > MAX_COMMISSION_BPS {
                    return Err(ConnectError::InvalidCommission(commission_bps));
                }
                if commission_bps == self.commission_bps {
                    return Ok(vec![]);
                }
                vec![E::CommissionSet { commission_bps }]
            }
        })
    }
}

/// Checks a Stripe account id: `acct_…`, at most 255 characters.
///
/// # Errors
/// [`ConnectError::InvalidAccountId`].
pub fn check_account_id(account_id: &str) -> Result<(), ConnectError> {
    if !account_id.starts_with("acct_") || account_id.len() > 255 {
        return Err(ConnectError::InvalidAccountId(account_id.to_string()));
    }
    Ok(())
}

impl Aggregate for ConnectAccount {
    const TYPE: &'static str = "connect_account";
    type Command = ConnectCommand;
    type Event = ConnectEvent;
    type Error = ConnectError;
    type Services = ();

    crate::handle_by_decide!();

    fn apply(&mut self, event: Self::Event) {
        match event {
            ConnectEvent::ConnectAccountLinked {
                tenant_id,
                account_id,
                origin,
                ..
            } => {
                self.tenant_id = Some(tenant_id);
                self.origin = Some(origin);
                self.account_id = Some(account_id);
                self.status = AccountStatus::default();
                self.observed_at = None;
            }
            ConnectEvent::ConnectAccountDisconnected { .. } => {
                self.account_id = None;
                self.status = AccountStatus::default();
            }
            ConnectEvent::ConnectAccountUpdated {
                status,
                observed_at,
                ..
            } => {
                self.status = status;
                self.observed_at = Some(observed_at);
            }
            ConnectEvent::CommissionSet { commission_bps } => self.commission_bps = commission_bps,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use uuid::Uuid;

    fn linked() -> ConnectAccount {
        let mut account = ConnectAccount::default();
        account.apply(ConnectEvent::ConnectAccountLinked {
            tenant_id: TenantId(Uuid::from_u128(1)),
            account_id: "acct_1".into(),
            origin: LinkOrigin::Admin,
        });
        account
    }

    fn update(account: &str, charges_enabled: bool, seconds: i64) -> ConnectCommand {
        ConnectCommand::RecordAccountStatus {
            account_id: account.into(),
            status: AccountStatus {
                charges_enabled,
                ..AccountStatus::default()
            },
            observed_at: Utc.timestamp_opt(seconds, 0).single().expect("time"),
        }
    }

    #[test]
    fn charges_need_a_linked_account_that_stripe_enabled() {
        let mut account = linked();
        assert!(!account.charges_enabled());
        let events = account
            .decide(update("acct_1", true, 10))
            .expect("recorded");
        events.into_iter().for_each(|e| account.apply(e));
        assert!(account.charges_enabled());
        assert_eq!(
            account.decide(update("acct_1", false, 5)),
            Ok(vec![]),
            "stale"
        );
        assert_eq!(
            account.decide(update("acct_2", false, 20)),
            Ok(vec![]),
            "not ours"
        );
        let events = account
            .decide(ConnectCommand::Disconnect)
            .expect("disconnects");
        events.into_iter().for_each(|e| account.apply(e));
        assert!(!account.charges_enabled());
    }

    #[test]
    fn one_account_at_a_time() {
        let account = linked();
        let link = |id: &str| ConnectCommand::LinkAccount {
            tenant_id: TenantId(Uuid::from_u128(1)),
            account_id: id.into(),
            origin: LinkOrigin::Admin,
        };
        assert_eq!(account.decide(link("acct_1")), Ok(vec![]));
        assert_eq!(
            account.decide(link("acct_2")),
            Err(ConnectError::AlreadyLinked {
                linked: "acct_1".into()
            })
        );
        assert!(matches!(
            ConnectAccount::default().decide(link("cus_1")),
            Err(ConnectError::InvalidAccountId(_))
        ));
    }

    #[test]
    fn commission_is_at_most_one_hundred_percent() {
        let account = linked();
        let set = |commission_bps| ConnectCommand::SetCommission { commission_bps };
        assert_eq!(account.decide(set(0)), Ok(vec![]), "the default");
        assert!(account.decide(set(250)).is_ok());
        assert_eq!(
            account.decide(set(10_001)),
            Err(ConnectError::InvalidCommission(10_001))
        );
    }
}
