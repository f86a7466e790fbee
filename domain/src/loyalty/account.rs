//! A loyalty account: one per business and customer (stream id = account id).
//!
//! Rules (DOMAIN.md "Loyalty"; issue "Loyalty program"):
//! - the welcome bonus is granted once, when the account opens;
//! - each purchase accrues its own transfer (cashback, see [`cashback_points`]) with its
//!   own expiry; the same purchase reference twice has one effect;
//! - a redemption spends the earliest-expiring points first and is refused when the
//!   balance would go below zero ([`LoyaltyError::InsufficientPoints`]); the same reference
//!   twice has one effect;
//! - a refund reverses the purchase's accrual, never more than was accrued, and only what
//!   is left of it: points already spent stay spent and the difference is recorded as the
//!   `shortfall` (the balance never goes negative);
//! - expired transfers are voided when their expiry passes ([`LoyaltyCommand::ExpirePoints`],
//!   safe to run twice);
//! - a referral rewards the referrer once per referred account, never itself.
//!
//! The customer reference is personal (often a phone or an e-mail): the command side
//! validates it ([`parse_customer_ref`]), seals it with the business's data key and derives
//! the account id from it as a blind index under the same key, so after an erasure nobody
//! can link an account to a customer, not even by trying every phone number.
//!
//! [`cashback_points`]: super::cashback_points

use super::{cashback_points, LoyaltySettings};
use crate::billing::Money;
use crate::{Sealed, TenantId};
use chrono::{DateTime, Duration, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// Longest purchase, redemption or customer reference.
pub const MAX_REFERENCE: usize = 200;

/// What can be asked of a loyalty account. Times come from the caller's clock (UTC).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LoyaltyCommand {
    /// Open the account, granting the welcome bonus and, when referred, the referred
    /// customer's reward.
    OpenAccount {
        /// The new account (the stream id).
        account_id: Uuid,
        /// The business.
        tenant_id: TenantId,
        /// The business's reference of its customer ([`parse_customer_ref`]), sealed.
        customer_ref: Sealed,
        /// This account's own referral code.
        referral_code: String,
        /// The account whose referral code was used, if any.
        referred_by: Option<Uuid>,
        /// The business's settings now.
        settings: LoyaltySettings,
        /// When.
        at: DateTime<Utc>,
    },
    /// Accrue cashback on a purchase.
    AccruePurchase {
        /// The purchase's reference (idempotency).
        reference: String,
        /// What was paid.
        amount: Money,
        /// The business's settings now (rate, expiry).
        settings: LoyaltySettings,
        /// When.
        at: DateTime<Utc>,
    },
    /// Spend points.
    Redeem {
        /// The redemption's reference (idempotency).
        reference: String,
        /// Points to spend, > 0.
        points: i64,
        /// When.
        at: DateTime<Utc>,
    },
    /// Reverse a purchase's accrual (a refund).
    ReversePurchase {
        /// The purchase's reference.
        purchase_reference: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// Void the points of transfers whose expiry passed by `at`.
    ExpirePoints {
        /// Now.
        at: DateTime<Utc>,
    },
    /// Reward this account for referring `referred_account`.
    RewardReferral {
        /// The account that registered with this account's code.
        referred_account: Uuid,
        /// The reward.
        points: i64,
        /// The business's expiry setting.
        expiry_days: Option<u32>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Record the customer's NPS rating; the latest counts.
    RateNps {
        /// 0 to 10.
        score: u8,
        /// When.
        at: DateTime<Utc>,
    },
    /// Close the account for good, voiding every point left (its business is being
    /// erased, DOMAIN.md "Hard delete"). Closing a closed account changes nothing.
    CloseAccount {
        /// When.
        at: DateTime<Utc>,
    },
}

impl LoyaltyCommand {
    /// The command's name, recorded in event metadata and the idempotency record.
    pub fn name(&self) -> &'static str {
        match self {
            Self::OpenAccount { .. } => "OpenLoyaltyAccount",
            Self::AccruePurchase { .. } => "AccruePurchase",
            Self::Redeem { .. } => "RedeemPoints",
            Self::ReversePurchase { .. } => "ReversePurchase",
            Self::ExpirePoints { .. } => "ExpirePoints",
            Self::RewardReferral { .. } => "RewardReferral",
            Self::RateNps { .. } => "RateNps",
            Self::CloseAccount { .. } => "CloseLoyaltyAccount",
        }
    }
}

/// Why points were granted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum GrantReason {
    /// The welcome bonus.
    Welcome,
    /// Registered with a referral code.
    Referred {
        /// The referrer's account.
        referrer: Uuid,
    },
    /// Referred another customer.
    Referrer {
        /// The referred account.
        referred: Uuid,
    },
}

/// What happened to a loyalty account. Points are integers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LoyaltyEvent {
    /// The account opened.
    LoyaltyAccountOpened {
        /// The account.
        account_id: Uuid,
        /// The business.
        tenant_id: TenantId,
        /// The customer reference, sealed (2.0; 1.0 carried it in clear).
        customer_ref: Sealed,
        /// Its referral code.
        referral_code: String,
        /// Who referred it.
        referred_by: Option<Uuid>,
        /// When.
        opened_at: DateTime<Utc>,
    },
    /// Points granted outside a purchase (welcome bonus, referral): a transfer.
    PointsGranted {
        /// The transfer's id.
        transfer_id: String,
        /// Why.
        reason: GrantReason,
        /// Points.
        points: i64,
        /// When they expire.
        expires_at: Option<DateTime<Utc>>,
        /// When.
        at: DateTime<Utc>,
    },
    /// A purchase accrued cashback: a transfer named `purchase:{reference}` (possibly of 0
    /// points: the purchase still counts as turnover).
    PurchaseAccrued {
        /// The purchase reference.
        reference: String,
        /// What was paid.
        amount: Money,
        /// Basis points applied.
        cashback_bps: u32,
        /// Points accrued.
        points: i64,
        /// When they expire.
        expires_at: Option<DateTime<Utc>>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Points were spent (earliest-expiring transfers first).
    PointsRedeemed {
        /// The redemption reference.
        reference: String,
        /// Points spent.
        points: i64,
        /// Balance after.
        balance: i64,
        /// When.
        at: DateTime<Utc>,
    },
    /// A purchase was refunded: what was left of its accrual is reversed.
    PurchaseReversed {
        /// The purchase reference.
        purchase_reference: String,
        /// Points removed (≤ accrued, ≤ what was left of it).
        points_reversed: i64,
        /// Points of that accrual already spent, which stay spent.
        shortfall: i64,
        /// When.
        at: DateTime<Utc>,
    },
    /// A transfer's remaining points expired.
    PointsExpired {
        /// The transfer.
        transfer_id: String,
        /// Points voided.
        points: i64,
        /// When it expired.
        expired_at: DateTime<Utc>,
    },
    /// The customer rated the business.
    NpsRated {
        /// 0 to 10.
        score: u8,
        /// When.
        at: DateTime<Utc>,
    },
    /// The account was closed for good; its points were voided.
    LoyaltyAccountClosed {
        /// Points voided (the balance at closing).
        points_voided: i64,
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for LoyaltyEvent {
    fn event_type(&self) -> String {
        match self {
            Self::LoyaltyAccountOpened { .. } => "LoyaltyAccountOpened",
            Self::PointsGranted { .. } => "PointsGranted",
            Self::PurchaseAccrued { .. } => "PurchaseAccrued",
            Self::PointsRedeemed { .. } => "PointsRedeemed",
            Self::PurchaseReversed { .. } => "PurchaseReversed",
            Self::PointsExpired { .. } => "PointsExpired",
            Self::NpsRated { .. } => "NpsRated",
            Self::LoyaltyAccountClosed { .. } => "LoyaltyAccountClosed",
        }
        .to_string()
    }
    fn event_version(&self) -> String {
        match self {
            Self::LoyaltyAccountOpened { .. } => "2.0",
            _ => "1.0",
        }
        .to_string()
    }
}

/// Why a loyalty command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoyaltyError {
    /// No such account.
    #[error("no such loyalty account")]
    NotFound,
    /// The account was closed (its business was erased).
    #[error("the loyalty account is closed")]
    Closed,
    /// The account is open already.
    #[error("the customer has a loyalty account already")]
    AlreadyOpen,
    /// Spending more than the balance.
    #[error("{requested} points asked, {balance} available")]
    InsufficientPoints {
        /// Points available.
        balance: i64,
        /// Points asked for.
        requested: i64,
    },
    /// Zero or negative points.
    #[error("points must be positive")]
    InvalidPoints,
    /// Not 0 to 10.
    #[error("an NPS score is 0 to 10")]
    InvalidScore,
    /// No purchase with that reference.
    #[error("no purchase {0:?} on this account")]
    UnknownPurchase(String),
    /// An account referring itself.
    #[error("a customer cannot refer themselves")]
    SelfReferral,
    /// A purchase or redemption reference used before with another amount.
    #[error("reference {0:?} was used for a different amount")]
    ReferenceReused(String),
    /// Empty or too long reference.
    #[error("{0} must be 1 to {MAX_REFERENCE} characters")]
    InvalidReference(&'static str),
}

/// What a refund reversed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reversal {
    /// Points removed from the balance.
    pub points_reversed: i64,
    /// Points of the accrual already spent (or expired), which stay spent.
    pub shortfall: i64,
}

/// A transfer: points granted or accrued together, spent and expired together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Transfer {
    id: String,
    points: i64,
    remaining: i64,
    expires_at: Option<DateTime<Utc>>,
}

/// A customer's loyalty account.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoyaltyAccount {
    account_id: Option<Uuid>,
    tenant_id: Option<TenantId>,
    customer_ref: Sealed,
    referral_code: String,
    referred_by: Option<Uuid>,
    /// Oldest first.
    transfers: Vec<Transfer>,
    /// Purchase reference → what was paid.
    purchases: BTreeMap<String, Money>,
    /// Purchase reference → its reversal.
    reversals: BTreeMap<String, Reversal>,
    /// Redemption reference → points spent.
    redemptions: BTreeMap<String, i64>,
    referrals_rewarded: BTreeSet<Uuid>,
    nps: Option<u8>,
    #[serde(default)]
    closed: bool,
}

impl LoyaltyAccount {
    /// Whether it is open.
    pub fn exists(&self) -> bool {
        self.account_id.is_some()
    }
    /// Its business.
    pub fn tenant_id(&self) -> Option<TenantId> {
        self.tenant_id
    }
    /// The customer reference.
    pub fn customer_ref(&self) -> &Sealed {
        &self.customer_ref
    }
    /// Its referral code.
    pub fn referral_code(&self) -> &str {
        &self.referral_code
    }
    /// Points available: the sum of what is left of every transfer. Never negative.
    pub fn balance(&self) -> i64 {
        self.transfers.iter().map(|t| t.remaining).sum()
    }
    /// Points accrued by purchase `reference`, if it was recorded.
    pub fn accrued(&self, reference: &str) -> Option<i64> {
        self.purchase_transfer(reference).map(|t| t.points)
    }

    /// The transfer of purchase `reference`. Purchase transfers are named `purchase:{ref}`,
    /// so no purchase reference can name a grant's transfer (`welcome`, `referred:…`).
    fn purchase_transfer(&self, reference: &str) -> Option<&Transfer> {
        let id = purchase_transfer_id(reference);
        self.transfers.iter().find(|t| t.id == id)
    }
    /// What the refund of purchase `reference` reversed, if it was refunded.
    pub fn reversal(&self, reference: &str) -> Option<Reversal> {
        self.reversals.get(reference).copied()
    }
    /// The account whose referral code opened this one.
    pub fn referred_by(&self) -> Option<Uuid> {
        self.referred_by
    }
    /// The latest NPS rating.
    pub fn nps(&self) -> Option<u8> {
        self.nps
    }

    fn expiry(at: DateTime<Utc>, days: Option<u32>) -> Option<DateTime<Utc>> {
        days.map(|days| at + Duration::days(i64::from(days)))
    }

    /// Pure decision.
    ///
    /// # Errors
    /// [`LoyaltyError`].
    pub fn decide(&self, command: LoyaltyCommand) -> Result<Vec<LoyaltyEvent>, LoyaltyError> {
        use LoyaltyCommand as C;
        use LoyaltyEvent as E;
        if let C::OpenAccount {
            account_id,
            tenant_id,
            customer_ref,
            referral_code,
            referred_by,
            settings,
            at,
        } = command
        {
            if self.exists() {
                return Err(LoyaltyError::AlreadyOpen);
            }
            if referred_by == Some(account_id) {
                return Err(LoyaltyError::SelfReferral);
            }
            let expires_at = Self::expiry(at, settings.expiry_days);
            let mut events = vec![E::LoyaltyAccountOpened {
                account_id,
                tenant_id,
                customer_ref,
                referral_code,
                referred_by,
                opened_at: at,
            }];
            if settings.welcome_bonus_points > 0 {
                events.push(E::PointsGranted {
                    transfer_id: "welcome".into(),
                    reason: GrantReason::Welcome,
                    points: settings.welcome_bonus_points,
                    expires_at,
                    at,
                });
            }
            if let (Some(referrer), true) = (referred_by, settings.referred_reward_points > 0) {
                events.push(E::PointsGranted {
                    transfer_id: format!("referred:{referrer}"),
                    reason: GrantReason::Referred { referrer },
                    points: settings.referred_reward_points,
                    expires_at,
                    at,
                });
            }
            return Ok(events);
        }
        if !self.exists() {
            return Err(LoyaltyError::NotFound);
        }
        if self.closed {
            return match command {
                C::CloseAccount { .. } => Ok(vec![]),
                _ => Err(LoyaltyError::Closed),
            };
        }
        Ok(match command {
            C::OpenAccount { .. } => unreachable!("handled above"),
            C::CloseAccount { at } => vec![E::LoyaltyAccountClosed {
                points_voided: self.balance(),
                at,
            }],
            C::AccruePurchase {
                reference: raw,
                amount,
                settings,
                at,
            } => {
                let reference = reference("reference", &raw)?;
                if let Some(paid) = self.purchases.get(&reference) {
                    return if *paid == amount {
                        Ok(vec![])
                    } else {
                        Err(LoyaltyError::ReferenceReused(reference))
                    };
                }
                vec![E::PurchaseAccrued {
                    points: cashback_points(amount.amount_minor, settings.cashback_bps),
                    reference,
                    amount,
                    cashback_bps: settings.cashback_bps,
                    expires_at: Self::expiry(at, settings.expiry_days),
                    at,
                }]
            }
            C::Redeem {
                reference: raw,
                points,
                at,
            } => {
                let reference = reference("reference", &raw)?;
                if let Some(&spent) = self.redemptions.get(&reference) {
                    return if spent == points {
                        Ok(vec![])
                    } else {
                        Err(LoyaltyError::ReferenceReused(reference))
                    };
                }
                if points <= 0 {
                    return Err(LoyaltyError::InvalidPoints);
                }
                let balance = self.available(at);
                if points > balance {
                    return Err(LoyaltyError::InsufficientPoints {
                        balance,
                        requested: points,
                    });
                }
                // Expired transfers are voided first, so the spend never touches them.
                let mut events = self.expirations(at);
                events.push(E::PointsRedeemed {
                    reference,
                    points,
                    balance: balance - points,
                    at,
                });
                events
            }
            C::ReversePurchase {
                purchase_reference,
                at,
            } => {
                let purchase_reference = reference("purchase_reference", &purchase_reference)?;
                if self.reversals.contains_key(&purchase_reference) {
                    return Ok(vec![]);
                }
                let Some(transfer) = self.purchase_transfer(&purchase_reference) else {
                    return Err(LoyaltyError::UnknownPurchase(purchase_reference));
                };
                vec![E::PurchaseReversed {
                    points_reversed: transfer.remaining,
                    shortfall: transfer.points - transfer.remaining,
                    purchase_reference,
                    at,
                }]
            }
            C::ExpirePoints { at } => self.expirations(at),
            C::RewardReferral {
                referred_account,
                points,
                expiry_days,
                at,
            } => {
                if Some(referred_account) == self.account_id {
                    return Err(LoyaltyError::SelfReferral);
                }
                if self.referrals_rewarded.contains(&referred_account) || points <= 0 {
                    return Ok(vec![]);
                }
                vec![E::PointsGranted {
                    transfer_id: format!("referrer:{referred_account}"),
                    reason: GrantReason::Referrer {
                        referred: referred_account,
                    },
                    points,
                    expires_at: Self::expiry(at, expiry_days),
                    at,
                }]
            }
            C::RateNps { score, at } => {
                if score > 10 {
                    return Err(LoyaltyError::InvalidScore);
                }
                vec![E::NpsRated { score, at }]
            }
        })
    }

    /// Points not expired at `at`.
    fn available(&self, at: DateTime<Utc>) -> i64 {
        self.transfers
            .iter()
            .filter(|t| t.expires_at.is_none_or(|expiry| expiry > at))
            .map(|t| t.remaining)
            .sum()
    }

    /// `PointsExpired` for every transfer whose expiry passed by `at` with points left.
    fn expirations(&self, at: DateTime<Utc>) -> Vec<LoyaltyEvent> {
        self.transfers
            .iter()
            .filter_map(|t| match t.expires_at {
                Some(expiry) if expiry <= at && t.remaining > 0 => {
                    Some(LoyaltyEvent::PointsExpired {
                        transfer_id: t.id.clone(),
                        points: t.remaining,
                        expired_at: expiry,
                    })
                }
                _ => None,
            })
            .collect()
    }

    /// Spends `points` from the transfers, earliest expiry first (never-expiring last),
    /// then oldest first.
    fn spend(&mut self, mut points: i64) {
        let mut order: Vec<usize> = (0..self.transfers.len()).collect();
        order.sort_by_key(|&i| {
            (
                self.transfers[i].expires_at.is_none(),
                self.transfers[i].expires_at,
                i,
            )
        });
        for i in order {
            if points == 0 {
                break;
            }
            let transfer = &mut self.transfers[i];
            let taken = transfer.remaining.min(points);
            transfer.remaining -= taken;
            points -= taken;
        }
    }

    fn push_transfer(&mut self, id: String, points: i64, expires_at: Option<DateTime<Utc>>) {
        self.transfers.push(Transfer {
            id,
            points,
            remaining: points,
            expires_at,
        });
    }
}

fn purchase_transfer_id(reference: &str) -> String {
    format!("purchase:{reference}")
}

/// A customer reference: trimmed, 1 to 200 characters.
///
/// # Errors
/// [`LoyaltyError::InvalidReference`] naming `customer_ref`.
pub fn parse_customer_ref(raw: &str) -> Result<String, LoyaltyError> {
    reference("customer_ref", raw)
}

fn reference(field: &'static str, raw: &str) -> Result<String, LoyaltyError> {
    crate::text::trimmed(raw, 1, MAX_REFERENCE).ok_or(LoyaltyError::InvalidReference(field))
}

impl Aggregate for LoyaltyAccount {
    const TYPE: &'static str = "loyalty_account";
    type Command = LoyaltyCommand;
    type Event = LoyaltyEvent;
    type Error = LoyaltyError;
    type Services = ();

    crate::handle_by_decide!();

    fn apply(&mut self, event: Self::Event) {
        use LoyaltyEvent as E;
        match event {
            E::LoyaltyAccountOpened {
                account_id,
                tenant_id,
                customer_ref,
                referral_code,
                referred_by,
                ..
            } => {
                self.account_id = Some(account_id);
                self.tenant_id = Some(tenant_id);
                self.customer_ref = customer_ref;
                self.referral_code = referral_code;
                self.referred_by = referred_by;
            }
            E::PointsGranted {
                transfer_id,
                reason,
                points,
                expires_at,
                ..
            } => {
                if let GrantReason::Referrer { referred } = reason {
                    self.referrals_rewarded.insert(referred);
                }
                self.push_transfer(transfer_id, points, expires_at);
            }
            E::PurchaseAccrued {
                reference,
                amount,
                points,
                expires_at,
                ..
            } => {
                self.purchases.insert(reference.clone(), amount);
                self.push_transfer(purchase_transfer_id(&reference), points, expires_at);
            }
            E::PointsRedeemed {
                reference, points, ..
            } => {
                self.redemptions.insert(reference, points);
                self.spend(points);
            }
            E::PurchaseReversed {
                purchase_reference,
                points_reversed,
                shortfall,
                ..
            } => {
                let id = purchase_transfer_id(&purchase_reference);
                if let Some(t) = self.transfers.iter_mut().find(|t| t.id == id) {
                    t.remaining = 0;
                }
                self.reversals.insert(
                    purchase_reference,
                    Reversal {
                        points_reversed,
                        shortfall,
                    },
                );
            }
            E::PointsExpired { transfer_id, .. } => {
                if let Some(t) = self.transfers.iter_mut().find(|t| t.id == transfer_id) {
                    t.remaining = 0;
                }
            }
            E::NpsRated { score, .. } => self.nps = Some(score),
            E::LoyaltyAccountClosed { .. } => {
                self.closed = true;
                self.transfers.iter_mut().for_each(|t| t.remaining = 0);
            }
        }
    }
}

#[cfg(test)]
mod tests;
