//! An order a business's customer pays through the business's Stripe Connect account
//! (DOMAIN.md "Payments", flow 2). One aggregate per order (stream id = order id).
//!
//! Status: `no_payment_link → payment_link_sent → paid`, plus `failed` (a link may be
//! sent again) and `refunded`. A payment link needs a connected account that takes
//! charges. Paying an order twice has one effect: the same payment again changes
//! nothing; a second, different payment is recorded as a duplicate for the business to
//! refund, never as a second `paid`.
//!
//! The customer reference and the description are personal (a clinic's "root canal for
//! Ana"): the command side validates them ([`parse_customer_ref`], [`parse_description`])
//! and seals them with the business's data key before they reach the order; the order
//! only carries them.

use super::{Money, MoneyError};
use crate::{Sealed, TenantId};
use chrono::{DateTime, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An order's payment status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Created; no payment link yet (also before creation).
    #[default]
    NoPaymentLink,
    /// A payment link was sent.
    PaymentLinkSent,
    /// Paid.
    Paid,
    /// The payment failed; a new link may be sent.
    Failed,
    /// Refunded after payment.
    Refunded,
    /// Closed unpaid: its business was erased (DOMAIN.md "Hard delete").
    Closed,
}

impl OrderStatus {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoPaymentLink => "no_payment_link",
            Self::PaymentLinkSent => "payment_link_sent",
            Self::Paid => "paid",
            Self::Failed => "failed",
            Self::Refunded => "refunded",
            Self::Closed => "closed",
        }
    }
}

/// The connected account a link is sent for, as the Connect aggregate has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeAccount {
    /// `acct_…`; `None` when none is linked.
    pub account_id: Option<String>,
    /// Whether it takes charges.
    pub charges_enabled: bool,
}

/// What can be asked of an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OrderCommand {
    /// Create the order.
    CreateOrder {
        /// The new order's id (the stream id).
        order_id: Uuid,
        /// The business.
        tenant_id: TenantId,
        /// The company selling.
        company_id: Uuid,
        /// The business's reference of its customer ([`parse_customer_ref`]), sealed.
        customer_ref: Sealed,
        /// What is paid.
        amount: Money,
        /// What for ([`parse_description`]), shown on the payment page; sealed.
        description: Sealed,
        /// When (UTC).
        created_at: DateTime<Utc>,
    },
    /// Record the payment link the provider made.
    SendPaymentLink {
        /// The connected account.
        account: ChargeAccount,
        /// The provider's session (`cs_…`).
        session_id: String,
        /// The URL the customer pays at.
        url: String,
        /// The platform's commission on this payment, minor units.
        commission_minor: i64,
        /// When (UTC).
        sent_at: DateTime<Utc>,
    },
    /// A payment succeeded (`payment_intent.succeeded`, or `checkout.session.completed`
    /// with `payment_status = paid`).
    RecordPayment {
        /// The account that was paid.
        account_id: String,
        /// The payment (`pi_…`, else the session `cs_…`).
        payment_ref: String,
        /// What was paid.
        amount: Money,
        /// When (the Stripe event's `created`).
        paid_at: DateTime<Utc>,
    },
    /// A payment attempt failed (`payment_intent.payment_failed`).
    RecordPaymentFailure {
        /// The account.
        account_id: String,
        /// The payment.
        payment_ref: String,
        /// Stripe's message.
        reason: String,
        /// When.
        failed_at: DateTime<Utc>,
    },
    /// The payment was refunded (`charge.refunded`).
    RecordRefund {
        /// The account.
        account_id: String,
        /// The payment.
        payment_ref: String,
        /// Refunded so far, minor units.
        amount_refunded: i64,
        /// When.
        refunded_at: DateTime<Utc>,
    },
    /// Close the order if it is not paid (its business is being erased). A paid or
    /// refunded order stays as it is: its payment is a financial fact. Closing a closed
    /// order changes nothing.
    CloseOrder {
        /// When (UTC).
        at: DateTime<Utc>,
    },
}

impl OrderCommand {
    /// The command's name, recorded in event metadata and the idempotency record.
    pub fn name(&self) -> &'static str {
        match self {
            Self::CreateOrder { .. } => "CreateOrder",
            Self::SendPaymentLink { .. } => "SendPaymentLink",
            Self::RecordPayment { .. } => "RecordPayment",
            Self::RecordPaymentFailure { .. } => "RecordPaymentFailure",
            Self::RecordRefund { .. } => "RecordRefund",
            Self::CloseOrder { .. } => "CloseOrder",
        }
    }
}

/// What happened to an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OrderEvent {
    /// Created, with no payment link.
    OrderCreated {
        /// The order.
        order_id: Uuid,
        /// The business.
        tenant_id: TenantId,
        /// The company.
        company_id: Uuid,
        /// The customer reference, sealed (2.0; 1.0 carried it in clear).
        customer_ref: Sealed,
        /// The amount.
        amount: Money,
        /// What for, sealed (2.0; 1.0 carried it in clear).
        description: Sealed,
        /// When.
        created_at: DateTime<Utc>,
    },
    /// A payment link was sent.
    PaymentLinkSent {
        /// `acct_…`.
        account_id: String,
        /// `cs_…`.
        session_id: String,
        /// The URL.
        url: String,
        /// Platform commission, minor units.
        commission_minor: i64,
        /// When.
        sent_at: DateTime<Utc>,
    },
    /// The order was paid.
    OrderPaid {
        /// `acct_…`.
        account_id: String,
        /// The payment.
        payment_ref: String,
        /// What was paid.
        amount: Money,
        /// When.
        paid_at: DateTime<Utc>,
    },
    /// A second, different payment arrived for a paid order: to refund by hand.
    DuplicatePaymentReceived {
        /// The second payment.
        payment_ref: String,
        /// What it paid.
        amount: Money,
        /// When.
        paid_at: DateTime<Utc>,
    },
    /// A payment attempt failed.
    OrderPaymentFailed {
        /// The payment.
        payment_ref: String,
        /// Why.
        reason: String,
        /// When.
        failed_at: DateTime<Utc>,
    },
    /// The payment was refunded.
    OrderRefunded {
        /// The payment.
        payment_ref: String,
        /// Minor units.
        amount_refunded: i64,
        /// When.
        refunded_at: DateTime<Utc>,
    },
    /// The order was closed unpaid (its business is being erased).
    OrderClosed {
        /// When (UTC).
        at: DateTime<Utc>,
    },
}

impl DomainEvent for OrderEvent {
    fn event_type(&self) -> String {
        match self {
            Self::OrderCreated { .. } => "OrderCreated",
            Self::PaymentLinkSent { .. } => "PaymentLinkSent",
            Self::OrderPaid { .. } => "OrderPaid",
            Self::DuplicatePaymentReceived { .. } => "DuplicatePaymentReceived",
            Self::OrderPaymentFailed { .. } => "OrderPaymentFailed",
            Self::OrderRefunded { .. } => "OrderRefunded",
            Self::OrderClosed { .. } => "OrderClosed",
        }
        .to_string()
    }
    fn event_version(&self) -> String {
        match self {
            Self::OrderCreated { .. } => "2.0",
            _ => "1.0",
        }
        .to_string()
    }
}

/// Why an order command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// The order exists.
    #[error("order {0} exists")]
    AlreadyExists(Uuid),
    /// No such order.
    #[error("no such order")]
    NotFound,
    /// The connected account is missing or does not take charges yet.
    #[error("the business's Stripe Connect account does not take charges yet")]
    ConnectNotReady,
    /// Paid or refunded: no new link.
    #[error("order is {}", .0.as_str())]
    AlreadyPaid(OrderStatus),
    /// A payment event for another account than the order's link.
    #[error("the payment is for account {paid}, the order's link is for {expected:?}")]
    WrongAccount {
        /// The account paid.
        paid: String,
        /// The account of the link.
        expected: Option<String>,
    },
    /// Bad amount or currency.
    #[error(transparent)]
    Money(#[from] MoneyError),
    /// Empty or too long customer reference or description.
    #[error("{field} must be 1 to {max} characters")]
    InvalidText {
        /// Which.
        field: &'static str,
        /// Its limit.
        max: usize,
    },
}

/// An order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Order {
    order_id: Option<Uuid>,
    tenant_id: Option<TenantId>,
    company_id: Option<Uuid>,
    status: OrderStatus,
    amount: Option<Money>,
    description: Sealed,
    account_id: Option<String>,
    payment_ref: Option<String>,
    duplicates: Vec<String>,
}

impl Order {
    /// Whether the order exists.
    pub fn exists(&self) -> bool {
        self.order_id.is_some()
    }
    /// Its business.
    pub fn tenant_id(&self) -> Option<TenantId> {
        self.tenant_id
    }
    /// Its company.
    pub fn company_id(&self) -> Option<Uuid> {
        self.company_id
    }
    /// Its status.
    pub fn status(&self) -> OrderStatus {
        self.status
    }
    /// Its amount.
    pub fn amount(&self) -> Option<&Money> {
        self.amount.as_ref()
    }
    /// Its description.
    pub fn description(&self) -> &Sealed {
        &self.description
    }

    /// Whether a payment link may be sent now through `account` (checked before the
    /// provider is asked for one); returns the account id.
    ///
    /// # Errors
    /// `NotFound`, `AlreadyPaid`, `ConnectNotReady`.
    pub fn check_link(&self, account: &ChargeAccount) -> Result<String, OrderError> {
        if !self.exists() {
            return Err(OrderError::NotFound);
        }
        if matches!(self.status, OrderStatus::Paid | OrderStatus::Refunded) {
            return Err(OrderError::AlreadyPaid(self.status));
        }
        match &account.account_id {
            Some(account_id) if account.charges_enabled => Ok(account_id.clone()),
            _ => Err(OrderError::ConnectNotReady),
        }
    }

    fn check_account(&self, account_id: &str) -> Result<(), OrderError> {
        if !self.exists() {
            return Err(OrderError::NotFound);
        }
        match &self.account_id {
            Some(expected) if expected == account_id => Ok(()),
            expected => Err(OrderError::WrongAccount {
                paid: account_id.to_string(),
                expected: expected.clone(),
            }),
        }
    }

    /// Pure decision.
    ///
    /// # Errors
    /// [`OrderError`].
    pub fn decide(&self, command: OrderCommand) -> Result<Vec<OrderEvent>, OrderError> {
        use OrderCommand as C;
        use OrderEvent as E;
        Ok(match command {
            C::CreateOrder {
                order_id,
                tenant_id,
                company_id,
                customer_ref,
                amount,
                description,
                created_at,
            } => {
                if self.exists() {
                    return Err(OrderError::AlreadyExists(order_id));
                }
                let amount = Money::positive(amount.amount_minor, amount.currency.as_str())?;
                vec![E::OrderCreated {
                    order_id,
                    tenant_id,
                    company_id,
                    customer_ref,
                    amount,
                    description,
                    created_at,
                }]
            }
            C::SendPaymentLink {
                account,
                session_id,
                url,
                commission_minor,
                sent_at,
            } => vec![E::PaymentLinkSent {
                account_id: self.check_link(&account)?,
                session_id,
                url,
                commission_minor,
                sent_at,
            }],
            C::RecordPayment {
                account_id,
                payment_ref,
                amount,
                paid_at,
            } => {
                self.check_account(&account_id)?;
                let seen = self.payment_ref.as_ref() == Some(&payment_ref)
                    || self.duplicates.contains(&payment_ref);
                match self.status {
                    _ if seen => vec![],
                    OrderStatus::Paid | OrderStatus::Refunded => {
                        vec![E::DuplicatePaymentReceived {
                            payment_ref,
                            amount,
                            paid_at,
                        }]
                    }
                    _ => vec![E::OrderPaid {
                        account_id,
                        payment_ref,
                        amount,
                        paid_at,
                    }],
                }
            }
            C::RecordPaymentFailure {
                account_id,
                payment_ref,
                reason,
                failed_at,
            } => {
                self.check_account(&account_id)?;
                if self.status != OrderStatus::PaymentLinkSent {
                    return Ok(vec![]);
                }
                vec![E::OrderPaymentFailed {
                    payment_ref,
                    reason,
                    failed_at,
                }]
            }
            C::RecordRefund {
                account_id,
                payment_ref,
                amount_refunded,
                refunded_at,
            } => {
                self.check_account(&account_id)?;
                if self.status != OrderStatus::Paid
                    || self.payment_ref.as_ref() != Some(&payment_ref)
                {
                    return Ok(vec![]);
                }
                vec![E::OrderRefunded {
                    payment_ref,
                    amount_refunded,
                    refunded_at,
                }]
            }
            C::CloseOrder { at } => match self.status {
                _ if !self.exists() => return Err(OrderError::NotFound),
                OrderStatus::NoPaymentLink | OrderStatus::PaymentLinkSent | OrderStatus::Failed => {
                    vec![E::OrderClosed { at }]
                }
                OrderStatus::Paid | OrderStatus::Refunded | OrderStatus::Closed => vec![],
            },
        })
    }
}

/// A customer reference: trimmed, 1 to 200 characters.
///
/// # Errors
/// [`OrderError::InvalidText`] naming `customer_ref`.
pub fn parse_customer_ref(raw: &str) -> Result<String, OrderError> {
    text("customer_ref", raw, 200)
}

/// An order's description: trimmed, 1 to 500 characters.
///
/// # Errors
/// [`OrderError::InvalidText`] naming `description`.
pub fn parse_description(raw: &str) -> Result<String, OrderError> {
    text("description", raw, 500)
}

fn text(field: &'static str, raw: &str, max: usize) -> Result<String, OrderError> {
    crate::text::trimmed(raw, 1, max).ok_or(OrderError::InvalidText { field, max })
}

impl Aggregate for Order {
    const TYPE: &'static str = "order";
    type Command = OrderCommand;
    type Event = OrderEvent;
    type Error = OrderError;
    type Services = ();

    crate::handle_by_decide!();

    fn apply(&mut self, event: Self::Event) {
        match event {
            OrderEvent::OrderCreated {
                order_id,
                tenant_id,
                company_id,
                amount,
                description,
                ..
            } => {
                self.order_id = Some(order_id);
                self.tenant_id = Some(tenant_id);
                self.company_id = Some(company_id);
                self.amount = Some(amount);
                self.description = description;
            }
            OrderEvent::PaymentLinkSent { account_id, .. } => {
                self.account_id = Some(account_id);
                self.status = OrderStatus::PaymentLinkSent;
            }
            OrderEvent::OrderPaid { payment_ref, .. } => {
                self.payment_ref = Some(payment_ref);
                self.status = OrderStatus::Paid;
            }
            OrderEvent::DuplicatePaymentReceived { payment_ref, .. } => {
                self.duplicates.push(payment_ref);
            }
            OrderEvent::OrderPaymentFailed { .. } => self.status = OrderStatus::Failed,
            OrderEvent::OrderRefunded { .. } => self.status = OrderStatus::Refunded,
            OrderEvent::OrderClosed { .. } => self.status = OrderStatus::Closed,
        }
    }
}

#[cfg(test)]
mod tests;
