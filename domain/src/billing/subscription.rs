//! A tenant's SaaS subscription, as Stripe reports it (one aggregate per tenant, stream
//! id = tenant id). It holds the Stripe side (customer, subscription, status, price,
//! period, cancellation, payment failures) and decides, in [`Subscription::tenant_plan`],
//! which plan and status the tenant is on; the tenant records that as a provider fact
//! (`RecordPlanChange`), which is never refused (DOMAIN.md "Tenant lifecycle and plans").
//!
//! Rules:
//! - **Out of order.** Every Stripe fact carries the event's `created` (`observed_at`);
//!   a fact older than the newest one applied changes nothing (ties apply: Stripe's
//!   `created` has one-second resolution).
//! - **Unknown prices** are recorded with `plan: None` and change no plan.
//! - **Cancellation at period end** keeps the plan until `current_period_end`; a durable
//!   deadline then ends it ([`SubscriptionCommand::EndAtPeriodEnd`]) unless Stripe's
//!   `customer.subscription.deleted` came first. No refunds.
//! - Dunning is Stripe's: a failed invoice payment records the attempt count and the next
//!   attempt.

use super::Currency;
use crate::tenant::SubscriptionStatus;
use crate::{Plan, TenantId};
use chrono::{DateTime, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

/// A Stripe subscription status (Stripe API, `subscription.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StripeStatus {
    /// In a Stripe trial.
    Trialing,
    /// Paid and current.
    Active,
    /// The latest invoice failed; Stripe retries.
    PastDue,
    /// Cancelled (also what `customer.subscription.deleted` carries).
    Canceled,
    /// Retries exhausted; left open unpaid.
    Unpaid,
    /// The first payment has not succeeded yet.
    Incomplete,
    /// The first payment never succeeded within 23 hours.
    IncompleteExpired,
    /// A trial ended without a payment method.
    Paused,
}

impl StripeStatus {
    /// Stripe's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trialing => "trialing",
            Self::Active => "active",
            Self::PastDue => "past_due",
            Self::Canceled => "canceled",
            Self::Unpaid => "unpaid",
            Self::Incomplete => "incomplete",
            Self::IncompleteExpired => "incomplete_expired",
            Self::Paused => "paused",
        }
    }

    /// The tenant's status for this Stripe status; `None` while the first payment is
    /// pending (`incomplete`): the tenant keeps what it has.
    pub fn tenant_status(self) -> Option<SubscriptionStatus> {
        match self {
            Self::Trialing => Some(SubscriptionStatus::Trialing),
            Self::Active => Some(SubscriptionStatus::Active),
            Self::PastDue | Self::Unpaid => Some(SubscriptionStatus::PastDue),
            Self::Canceled | Self::IncompleteExpired => Some(SubscriptionStatus::Cancelled),
            Self::Paused => Some(SubscriptionStatus::Expired),
            Self::Incomplete => None,
        }
    }
}

/// A recurring price of a subscription item (Stripe `price` + item `quantity`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecurringPrice {
    /// Stripe's price id (`price_…`), the key of the price → plan map.
    pub price_id: String,
    /// Minor units per interval and unit.
    pub unit_amount: i64,
    /// ISO-4217.
    pub currency: Currency,
    /// `day`, `week`, `month` or `year`.
    pub interval: String,
    /// Intervals per billing period (≥ 1).
    pub interval_count: u32,
    /// Units (≥ 1).
    pub quantity: u32,
}

impl RecurringPrice {
    /// The amount per month in minor units, for monthly recurring revenue: yearly prices
    /// divided by 12, weekly × 52 / 12, daily × 365 / 12, rounded down.
    pub fn monthly_amount(&self) -> i64 {
        let per_period = self.unit_amount * i64::from(self.quantity.max(1));
        let count = i64::from(self.interval_count.max(1));
        match self.interval.as_str() {
            "year" => per_period / (12 * count),
            "week" => per_period * 52 / (12 * count),
            "day" => per_period * 365 / (12 * count),
            _ => per_period / count,
        }
    }
}

/// A Stripe subscription object, reduced to what X8 keeps. The plan is resolved from the
/// price by the command layer (`X8_STRIPE_PRICE_PLANS`); `None` is an unknown price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeSubscription {
    /// `sub_…`.
    pub subscription_id: String,
    /// `cus_…`.
    pub customer_id: Option<String>,
    /// Its status.
    pub status: StripeStatus,
    /// The first item's price.
    pub price: Option<RecurringPrice>,
    /// The plan of that price; `None` when the price is not in the map.
    pub plan: Option<Plan>,
    /// A SPECIAL subscription's channel limit (`metadata.channel_limit`).
    pub channel_limit: Option<u32>,
    /// End of the current period (on the subscription in older API versions, on the
    /// items since 2025-03-31).
    pub current_period_end: Option<DateTime<Utc>>,
    /// Whether it ends at the period's end.
    pub cancel_at_period_end: bool,
}

/// What can be asked of a subscription. `observed_at` is the Stripe event's `created`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SubscriptionCommand {
    /// A Checkout Session in subscription mode was created for the tenant.
    StartCheckout {
        /// The tenant.
        tenant_id: TenantId,
        /// `cs_…`.
        session_id: String,
        /// The plan asked for.
        plan: Plan,
        /// The price charged.
        price_id: String,
    },
    /// `checkout.session.completed` (or `async_payment_succeeded`) in subscription mode.
    CompleteCheckout {
        /// The tenant.
        tenant_id: TenantId,
        /// `cs_…`.
        session_id: String,
        /// `cus_…`.
        customer_id: Option<String>,
        /// `sub_…`.
        subscription_id: Option<String>,
        /// `payment_status` is `paid` (or `no_payment_required`).
        paid: bool,
        /// The event's `created`.
        observed_at: DateTime<Utc>,
    },
    /// `customer.subscription.created|updated|deleted`.
    RecordSubscription {
        /// The tenant.
        tenant_id: TenantId,
        /// The subscription as the event carries it.
        subscription: StripeSubscription,
        /// The price before, from `previous_attributes` (an update that changed plan).
        previous_price_id: Option<String>,
        /// The event's `created`.
        observed_at: DateTime<Utc>,
    },
    /// `invoice.paid`.
    RecordInvoicePaid {
        /// `in_…`.
        invoice_id: String,
        /// `amount_paid`, minor units.
        amount_paid: i64,
        /// ISO-4217.
        currency: Currency,
        /// The event's `created`.
        observed_at: DateTime<Utc>,
    },
    /// `invoice.payment_failed`: dunning is Stripe's, X8 records it.
    RecordPaymentFailed {
        /// `in_…`.
        invoice_id: String,
        /// Attempts so far.
        attempt_count: u32,
        /// When Stripe tries again; `None` when it will not.
        next_attempt_at: Option<DateTime<Utc>>,
        /// `amount_due`, minor units.
        amount_due: i64,
        /// ISO-4217.
        currency: Currency,
        /// The event's `created`.
        observed_at: DateTime<Utc>,
    },
    /// The deadline at `current_period_end` of a subscription cancelled at period end.
    EndAtPeriodEnd {
        /// Now, by the caller's clock.
        at: DateTime<Utc>,
    },
}

impl SubscriptionCommand {
    /// The command's name, recorded in event metadata and the idempotency record.
    pub fn name(&self) -> &'static str {
        match self {
            Self::StartCheckout { .. } => "StartCheckout",
            Self::CompleteCheckout { .. } => "CompleteCheckout",
            Self::RecordSubscription { .. } => "RecordSubscription",
            Self::RecordInvoicePaid { .. } => "RecordInvoicePaid",
            Self::RecordPaymentFailed { .. } => "RecordPaymentFailed",
            Self::EndAtPeriodEnd { .. } => "EndAtPeriodEnd",
        }
    }
}

/// What happened to a subscription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SubscriptionEvent {
    /// A Checkout Session was created.
    CheckoutStarted {
        /// The tenant.
        tenant_id: TenantId,
        /// `cs_…`.
        session_id: String,
        /// The plan asked for.
        plan: Plan,
        /// The price charged.
        price_id: String,
    },
    /// A Checkout Session completed. `plan` is the plan it was started for (when X8
    /// started it).
    CheckoutCompleted {
        /// The tenant.
        tenant_id: TenantId,
        /// `cs_…`.
        session_id: String,
        /// `cus_…`.
        customer_id: Option<String>,
        /// `sub_…`.
        subscription_id: Option<String>,
        /// Whether it was paid.
        paid: bool,
        /// The plan it was started for.
        plan: Option<Plan>,
        /// The Stripe event's `created`.
        observed_at: DateTime<Utc>,
    },
    /// Stripe reported the subscription's state. `previous_plan` is set when the event
    /// changed the plan (an upgrade or a downgrade from Stripe: a fact).
    SubscriptionRecorded {
        /// The tenant.
        tenant_id: TenantId,
        /// The subscription.
        subscription: StripeSubscription,
        /// The plan before, when this changed it.
        previous_plan: Option<Plan>,
        /// The Stripe event's `created`.
        observed_at: DateTime<Utc>,
    },
    /// An invoice was paid.
    InvoicePaid {
        /// `in_…`.
        invoice_id: String,
        /// Minor units.
        amount_paid: i64,
        /// ISO-4217.
        currency: Currency,
        /// The Stripe event's `created`.
        observed_at: DateTime<Utc>,
    },
    /// An invoice payment failed.
    InvoicePaymentFailed {
        /// `in_…`.
        invoice_id: String,
        /// Attempts so far.
        attempt_count: u32,
        /// Stripe's next attempt, if any.
        next_attempt_at: Option<DateTime<Utc>>,
        /// Minor units.
        amount_due: i64,
        /// ISO-4217.
        currency: Currency,
        /// The Stripe event's `created`.
        observed_at: DateTime<Utc>,
    },
    /// A subscription cancelled at period end reached its end before Stripe said so.
    SubscriptionEnded {
        /// The period's end.
        period_end: DateTime<Utc>,
        /// When the deadline ran.
        ended_at: DateTime<Utc>,
    },
}

impl DomainEvent for SubscriptionEvent {
    fn event_type(&self) -> String {
        match self {
            Self::CheckoutStarted { .. } => "CheckoutStarted",
            Self::CheckoutCompleted { .. } => "CheckoutCompleted",
            Self::SubscriptionRecorded { .. } => "SubscriptionRecorded",
            Self::InvoicePaid { .. } => "InvoicePaid",
            Self::InvoicePaymentFailed { .. } => "InvoicePaymentFailed",
            Self::SubscriptionEnded { .. } => "SubscriptionEnded",
        }
        .to_string()
    }
    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

/// Refusals (only the deadline can be early).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscriptionError {
    /// `EndAtPeriodEnd` before the period's end.
    #[error("the period ends at {period_end}")]
    PeriodNotOver {
        /// The period's end.
        period_end: DateTime<Utc>,
    },
}

/// The last failed payment, until an invoice is paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentFailure {
    /// `in_…`.
    pub invoice_id: String,
    /// Attempts so far.
    pub attempt_count: u32,
    /// Stripe's next attempt.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When the failure was reported.
    pub failed_at: DateTime<Utc>,
}

/// A tenant's subscription.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    tenant_id: Option<TenantId>,
    /// Checkouts started: session id → plan.
    checkouts: Vec<(String, Plan)>,
    completed_checkouts: Vec<String>,
    #[serde(default)]
    paid_checkouts: Vec<String>,
    customer_id: Option<String>,
    current: Option<StripeSubscription>,
    /// The plan last mapped from a known price (kept across unknown prices).
    plan: Option<Plan>,
    /// A paid checkout's plan, until the subscription itself is reported.
    checkout_plan: Option<Plan>,
    ended: bool,
    /// The newest `observed_at` applied.
    observed_at: Option<DateTime<Utc>>,
    last_failure: Option<PaymentFailure>,
    paid_invoices: Vec<String>,
}

impl Subscription {
    /// The Stripe customer, once known.
    pub fn customer_id(&self) -> Option<&str> {
        self.customer_id.as_deref()
    }
    /// The subscription as last reported.
    pub fn current(&self) -> Option<&StripeSubscription> {
        self.current.as_ref()
    }
    /// The newest Stripe fact's time applied.
    pub fn observed_at(&self) -> Option<DateTime<Utc>> {
        self.observed_at
    }
    /// The last failed payment, cleared by a paid invoice.
    pub fn last_failure(&self) -> Option<&PaymentFailure> {
        self.last_failure.as_ref()
    }

    /// The plan, channel limit and status the tenant should be on, or `None` when nothing
    /// is known yet (or the first payment is pending). `plan: None` keeps the tenant's
    /// plan (an unknown price changes no plan, only the status).
    pub fn tenant_plan(&self) -> Option<(Option<Plan>, Option<u32>, SubscriptionStatus)> {
        if self.ended {
            return Some((Some(Plan::Free), None, SubscriptionStatus::Cancelled));
        }
        match &self.current {
            Some(current) => {
                let status = current.status.tenant_status()?;
                if status == SubscriptionStatus::Cancelled {
                    return Some((Some(Plan::Free), None, status));
                }
                Some((self.plan, current.channel_limit, status))
            }
            None => self
                .checkout_plan
                .map(|plan| (Some(plan), None, SubscriptionStatus::Active)),
        }
    }

    fn is_stale(&self, observed_at: DateTime<Utc>) -> bool {
        self.observed_at.is_some_and(|newest| observed_at < newest)
    }

    /// Pure decision.
    ///
    /// # Errors
    /// [`SubscriptionError::PeriodNotOver`] for an early deadline.
    pub fn decide(
        &self,
        command: SubscriptionCommand,
    ) -> Result<Vec<SubscriptionEvent>, SubscriptionError> {
        use SubscriptionCommand as C;
        use SubscriptionEvent as E;
        Ok(match command {
            C::StartCheckout {
                tenant_id,
                session_id,
                plan,
                price_id,
            } => {
                if self.checkouts.iter().any(|(id, _)| *id == session_id) {
                    return Ok(vec![]);
                }
                vec![E::CheckoutStarted {
                    tenant_id,
                    session_id,
                    plan,
                    price_id,
                }]
            }
            C::CompleteCheckout {
                tenant_id,
                session_id,
                customer_id,
                subscription_id,
                paid,
                observed_at,
            } => {
                // A session completes once, and may be paid later (a delayed payment method).
                let seen = if paid {
                    &self.paid_checkouts
                } else {
                    &self.completed_checkouts
                };
                if seen.contains(&session_id) || self.is_stale(observed_at) {
                    return Ok(vec![]);
                }
                let plan = self
                    .checkouts
                    .iter()
                    .find(|(id, _)| *id == session_id)
                    .map(|(_, plan)| *plan);
                vec![E::CheckoutCompleted {
                    tenant_id,
                    session_id,
                    customer_id,
                    subscription_id,
                    paid,
                    plan,
                    observed_at,
                }]
            }
            C::RecordSubscription {
                tenant_id,
                subscription,
                previous_price_id,
                observed_at,
            } => {
                if self.is_stale(observed_at) || self.current.as_ref() == Some(&subscription) {
                    return Ok(vec![]);
                }
                let before = self.plan.or(self.checkout_plan);
                let changed = subscription.plan.is_some() && subscription.plan != before;
                let price_changed = previous_price_id.is_some_and(|previous| {
                    subscription.price.as_ref().map(|p| &p.price_id) != Some(&previous)
                });
                vec![E::SubscriptionRecorded {
                    tenant_id,
                    subscription,
                    previous_plan: if changed || price_changed {
                        before
                    } else {
                        None
                    },
                    observed_at,
                }]
            }
            C::RecordInvoicePaid {
                invoice_id,
                amount_paid,
                currency,
                observed_at,
            } => {
                if self.paid_invoices.contains(&invoice_id) {
                    return Ok(vec![]);
                }
                vec![E::InvoicePaid {
                    invoice_id,
                    amount_paid,
                    currency,
                    observed_at,
                }]
            }
            C::RecordPaymentFailed {
                invoice_id,
                attempt_count,
                next_attempt_at,
                amount_due,
                currency,
                observed_at,
            } => {
                let known = self.last_failure.as_ref().is_some_and(|failure| {
                    failure.invoice_id == invoice_id && failure.attempt_count >= attempt_count
                });
                if known || self.paid_invoices.contains(&invoice_id) {
                    return Ok(vec![]);
                }
                vec![E::InvoicePaymentFailed {
                    invoice_id,
                    attempt_count,
                    next_attempt_at,
                    amount_due,
                    currency,
                    observed_at,
                }]
            }
            C::EndAtPeriodEnd { at } => {
                let Some(current) = &self.current else {
                    return Ok(vec![]);
                };
                let (Some(period_end), true, false) = (
                    current.current_period_end,
                    current.cancel_at_period_end,
                    self.ended || current.status == StripeStatus::Canceled,
                ) else {
                    return Ok(vec![]);
                };
                if at < period_end {
                    return Err(SubscriptionError::PeriodNotOver { period_end });
                }
                vec![E::SubscriptionEnded {
                    period_end,
                    ended_at: at,
                }]
            }
        })
    }
}

impl Aggregate for Subscription {
    const TYPE: &'static str = "subscription";
    type Command = SubscriptionCommand;
    type Event = SubscriptionEvent;
    type Error = SubscriptionError;
    type Services = ();

    crate::handle_by_decide!();

    fn apply(&mut self, event: Self::Event) {
        use SubscriptionEvent as E;
        match event {
            E::CheckoutStarted {
                tenant_id,
                session_id,
                plan,
                ..
            } => {
                self.tenant_id = Some(tenant_id);
                self.checkouts.push((session_id, plan));
            }
            E::CheckoutCompleted {
                tenant_id,
                session_id,
                customer_id,
                paid,
                plan,
                observed_at,
                ..
            } => {
                self.tenant_id = Some(tenant_id);
                if paid {
                    self.paid_checkouts.push(session_id.clone());
                }
                self.completed_checkouts.push(session_id);
                self.customer_id = customer_id.or(self.customer_id.take());
                if paid && self.current.is_none() {
                    self.checkout_plan = plan;
                    self.ended = false;
                }
                self.observed_at = Some(observed_at);
            }
            E::SubscriptionRecorded {
                tenant_id,
                subscription,
                observed_at,
                ..
            } => {
                self.tenant_id = Some(tenant_id);
                if subscription.customer_id.is_some() {
                    self.customer_id = subscription.customer_id.clone();
                }
                if subscription.plan.is_some() {
                    self.plan = subscription.plan;
                }
                // A new subscription after an ended one starts over.
                self.ended = self.ended && subscription.status == StripeStatus::Canceled;
                self.current = Some(subscription);
                self.observed_at = Some(observed_at);
            }
            E::InvoicePaid { invoice_id, .. } => {
                self.paid_invoices.push(invoice_id);
                self.last_failure = None;
            }
            E::InvoicePaymentFailed {
                invoice_id,
                attempt_count,
                next_attempt_at,
                observed_at,
                ..
            } => {
                self.last_failure = Some(PaymentFailure {
                    invoice_id,
                    attempt_count,
                    next_attempt_at,
                    failed_at: observed_at,
                });
            }
            E::SubscriptionEnded { period_end, .. } => {
                self.ended = true;
                // The end is a fact as of the period's end: older Stripe facts stay stale.
                self.observed_at = self.observed_at.max(Some(period_end));
            }
        }
    }
}

#[cfg(test)]
mod tests;
