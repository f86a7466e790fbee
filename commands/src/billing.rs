//! SaaS billing (the business pays X8) and the Stripe webhook.
//!
//! - [`start_checkout`] creates a Stripe Checkout Session in subscription mode for a plan
//!   (its price from `X8_STRIPE_PRICE_PLANS`) and records `CheckoutStarted`.
//! - [`handle_stripe_event`] maps a verified Stripe event onto the aggregates: the
//!   tenant's subscription (then the tenant's plan, as a provider fact), its Connect
//!   account, or an order ([`crate::payments`]). The event id is the command id of every
//!   step ([`CommandContext::for_webhook`]), so a redelivery, also a concurrent one, has
//!   one effect. An event that concerns no known tenant is recorded as unmatched.
//! - A tenant is found by `client_reference_id`, `metadata.tenant_id`, or the Stripe
//!   customer learned from an earlier event (a `provider_link` stream).

use crate::bus::NamedCommand;
use crate::context::CommandContext;
use crate::error::CommandError;
use crate::stripe::event::{self, StripeEvent};
use crate::stripe::{
    PricePlans, StripeApi, StripeError, StripeNotConfigured, SubscriptionCheckout,
};
use crate::Commands;
use std::sync::Arc;
use uuid::Uuid;
use x8_domain::billing::connect::{ConnectCommand, ConnectError};
use x8_domain::billing::order::OrderError;
use x8_domain::billing::provider_link::{link_id, LinkKind, LinkToTenant, LinkedElsewhere};
use x8_domain::billing::subscription::{
    StripeStatus, Subscription, SubscriptionCommand, SubscriptionError,
};
use x8_domain::billing::unmatched::{unmatched_id, RecordUnmatched};
use x8_domain::billing::Currency;
use x8_domain::company::CompanyError;
use x8_domain::tenant::{TenantCommand, TenantError};
use x8_domain::{Plan, TenantId};

/// `X8_APP_URL` when unset: the API itself, for local runs.
pub const DEFAULT_APP_URL: &str = "http://127.0.0.1:8080";

/// Stripe settings of the command layer.
pub struct BillingConfig {
    /// The Stripe API (the default fails every call: not configured).
    pub api: Arc<dyn StripeApi>,
    /// `X8_STRIPE_PRICE_PLANS`.
    pub prices: PricePlans,
    /// `X8_APP_URL`: the dashboard Stripe sends payers back to.
    pub app_url: String,
}

impl Default for BillingConfig {
    fn default() -> Self {
        Self {
            api: Arc::new(StripeNotConfigured),
            prices: PricePlans::default(),
            app_url: DEFAULT_APP_URL.into(),
        }
    }
}

impl BillingConfig {
    /// `{X8_APP_URL}/{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.app_url.trim_end_matches('/'))
    }
}

/// Why a billing or payment command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BillingError {
    /// Refused by the tenant.
    #[error(transparent)]
    Tenant(#[from] TenantError),
    /// Refused by the subscription.
    #[error(transparent)]
    Subscription(#[from] SubscriptionError),
    /// Refused by the Connect account.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// Refused by the order.
    #[error(transparent)]
    Order(#[from] OrderError),
    /// Refused by the company.
    #[error(transparent)]
    Company(#[from] CompanyError),
    /// The Stripe customer or account belongs to another tenant.
    #[error("this Stripe object belongs to another business")]
    LinkedElsewhere(#[from] LinkedElsewhere),
    /// The plan has no price in `X8_STRIPE_PRICE_PLANS`.
    #[error("plan {0} is not sold through checkout")]
    PlanNotForSale(Plan),
    /// A live subscription exists: change its plan in Stripe's billing portal instead of
    /// starting a second one.
    #[error("the business has a {} subscription already", .0.as_str())]
    AlreadySubscribed(StripeStatus),
    /// A Stripe object lacks what X8 needs (e.g. an unknown subscription status).
    #[error("{0}")]
    Malformed(String),
    /// Stripe refused or could not be reached.
    #[error(transparent)]
    Provider(#[from] StripeError),
}

impl NamedCommand for SubscriptionCommand {
    fn command_name(&self) -> &'static str {
        self.name()
    }
    fn tenant_id(&self, aggregate_id: &str) -> Option<Uuid> {
        aggregate_id.parse().ok()
    }
}

impl NamedCommand for LinkToTenant {
    fn command_name(&self) -> &'static str {
        "LinkProviderObject"
    }
    fn tenant_id(&self, _aggregate_id: &str) -> Option<Uuid> {
        Some(self.tenant_id.0)
    }
}

impl NamedCommand for RecordUnmatched {
    fn command_name(&self) -> &'static str {
        "RecordUnmatchedProviderEvent"
    }
    fn tenant_id(&self, _aggregate_id: &str) -> Option<Uuid> {
        None
    }
}

/// A Checkout Session for the tenant's plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedCheckout {
    /// `cs_…`.
    pub session_id: String,
    /// Where to send the business.
    pub url: String,
    /// Global position of `CheckoutStarted`.
    pub position: i64,
}

/// Creates a subscription-mode Checkout Session for `plan` and records it.
///
/// # Errors
/// `Tenant(NotRegistered)`, `PlanNotForSale`, `AlreadySubscribed`, `Provider`; see
/// [`crate::CommandBus::execute`].
pub async fn start_checkout(
    commands: &Commands,
    tenant_id: TenantId,
    plan: Plan,
    ctx: &CommandContext,
) -> Result<StartedCheckout, CommandError<BillingError>> {
    let tenant = commands
        .tenants
        .load(&tenant_id.to_string())
        .await
        .map_err(CommandError::unrejected)?;
    if tenant.status() == x8_domain::tenant::TenantStatus::Unregistered {
        return Err(CommandError::Rejected(TenantError::NotRegistered.into()));
    }
    let config = &commands.billing;
    let price_id = config
        .prices
        .price_for(plan)
        .ok_or(CommandError::Rejected(BillingError::PlanNotForSale(plan)))?;
    let subscription = load_subscription(commands, tenant_id).await?;
    if let Some(current) = subscription.current() {
        if matches!(
            current.status,
            StripeStatus::Active
                | StripeStatus::Trialing
                | StripeStatus::PastDue
                | StripeStatus::Unpaid
        ) {
            return Err(CommandError::Rejected(BillingError::AlreadySubscribed(
                current.status,
            )));
        }
    }
    let ctx = ctx.clone().for_tenant(tenant_id.0).fingerprinted(&[
        "StartCheckout",
        &tenant_id.to_string(),
        plan.as_str(),
    ]);
    let success_url = config.url("billing/success?session_id={CHECKOUT_SESSION_ID}");
    let cancel_url = config.url("billing/cancelled");
    let session = config
        .api
        .create_subscription_checkout(
            SubscriptionCheckout {
                tenant_id: tenant_id.0,
                price_id,
                customer_id: subscription.customer_id(),
                success_url: &success_url,
                cancel_url: &cancel_url,
            },
            &ctx.command_id.to_string(),
        )
        .await
        .map_err(|e| CommandError::Rejected(e.into()))?;
    let outcome = commands
        .subscriptions
        .execute(
            &tenant_id.to_string(),
            SubscriptionCommand::StartCheckout {
                tenant_id,
                session_id: session.id.clone(),
                plan,
                price_id: price_id.to_string(),
            },
            &ctx,
        )
        .await
        .map_err(|e| e.map_rejected(BillingError::Subscription))?;
    Ok(StartedCheckout {
        session_id: session.id,
        url: session.url,
        position: outcome.position(),
    })
}

/// What a Stripe event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// Applied (position 0 when it changed nothing: a duplicate or a stale fact).
    Recorded {
        /// Global position of the last event appended.
        position: i64,
    },
    /// It concerns nothing X8 knows: recorded as `ProviderEventUnmatched`.
    Unmatched {
        /// Global position of that event.
        position: i64,
        /// Why.
        reason: String,
    },
    /// An event type X8 does not handle: nothing appended.
    Ignored,
}

/// Applies a verified Stripe event. See the module docs.
///
/// # Errors
/// `Malformed` for an object that does not parse (Stripe retries; nothing appended); see
/// [`crate::CommandBus::execute`].
pub async fn handle_stripe_event(
    commands: &Commands,
    event: &StripeEvent,
) -> Result<WebhookOutcome, CommandError<BillingError>> {
    let ctx = CommandContext::for_webhook("stripe", &event.id);
    let object = &event.data.object;
    let observed_at = event.created_at();
    let outcome = match event.event_type.as_str() {
        "checkout.session.completed" | "checkout.session.async_payment_succeeded"
            if object["mode"] == "subscription" =>
        {
            let Some(tenant_id) = find_tenant(commands, event).await? else {
                return unmatched(commands, event, "no tenant for this checkout session").await;
            };
            let paid = matches!(
                object["payment_status"].as_str(),
                Some("paid" | "no_payment_required")
            );
            let command = SubscriptionCommand::CompleteCheckout {
                tenant_id,
                session_id: object["id"].as_str().unwrap_or_default().to_string(),
                customer_id: event.reference("customer").map(str::to_string),
                subscription_id: event.reference("subscription").map(str::to_string),
                paid,
                observed_at,
            };
            apply_to_subscription(commands, tenant_id, command, &ctx).await?
        }
        "checkout.session.completed"
        | "payment_intent.succeeded"
        | "payment_intent.payment_failed"
        | "charge.refunded" => {
            return crate::payments::handle_payment_event(commands, event, &ctx).await;
        }
        "customer.subscription.created"
        | "customer.subscription.updated"
        | "customer.subscription.deleted" => {
            let subscription = event::subscription(object, &commands.billing.prices)
                .map_err(|e| CommandError::Rejected(BillingError::Malformed(e.to_string())))?;
            let Some(tenant_id) = find_tenant(commands, event).await? else {
                return unmatched(commands, event, "no tenant for this subscription").await;
            };
            let command = SubscriptionCommand::RecordSubscription {
                tenant_id,
                subscription,
                previous_price_id: event::previous_price(event.data.previous_attributes.as_ref()),
                observed_at,
            };
            apply_to_subscription(commands, tenant_id, command, &ctx).await?
        }
        "invoice.paid" | "invoice.payment_failed" => {
            let Some(tenant_id) = find_tenant(commands, event).await? else {
                return unmatched(commands, event, "no tenant for this invoice").await;
            };
            let currency = Currency::parse(object["currency"].as_str().unwrap_or_default())
                .map_err(|e| {
                    CommandError::Rejected(BillingError::Malformed(format!("Stripe invoice: {e}")))
                })?;
            let invoice_id = object["id"].as_str().unwrap_or_default().to_string();
            let command = if event.event_type == "invoice.paid" {
                SubscriptionCommand::RecordInvoicePaid {
                    invoice_id,
                    amount_paid: object["amount_paid"].as_i64().unwrap_or(0),
                    currency,
                    observed_at,
                }
            } else {
                SubscriptionCommand::RecordPaymentFailed {
                    invoice_id,
                    attempt_count: object["attempt_count"]
                        .as_u64()
                        .and_then(|n| u32::try_from(n).ok())
                        .unwrap_or(1),
                    next_attempt_at: object["next_payment_attempt"]
                        .as_i64()
                        .and_then(event::timestamp),
                    amount_due: object["amount_due"].as_i64().unwrap_or(0),
                    currency,
                    observed_at,
                }
            };
            apply_to_subscription(commands, tenant_id, command, &ctx).await?
        }
        "account.updated" => {
            let account_id = event
                .account
                .as_deref()
                .or_else(|| object["id"].as_str())
                .unwrap_or_default();
            let tenant = match event.metadata("tenant_id").and_then(|t| t.parse().ok()) {
                Some(tenant) => Some(TenantId(tenant)),
                None => linked_tenant(commands, LinkKind::StripeAccount, account_id).await?,
            };
            let Some(tenant_id) = tenant else {
                return unmatched(commands, event, "no tenant for this connected account").await;
            };
            let command = ConnectCommand::RecordAccountStatus {
                account_id: account_id.to_string(),
                status: event::account_status(object),
                observed_at,
            };
            let outcome = commands
                .connect_accounts
                .execute(&tenant_id.to_string(), command, &ctx.step("connect"))
                .await
                .map_err(|e| e.map_rejected(BillingError::Connect))?;
            outcome.position()
        }
        other => {
            tracing::info!(event_id = %event.id, event_type = other, "Stripe event type not handled");
            return Ok(WebhookOutcome::Ignored);
        }
    };
    Ok(WebhookOutcome::Recorded { position: outcome })
}

/// Runs `command` on the tenant's subscription, remembers its Stripe customer, and moves
/// the tenant to the plan the subscription now implies. Returns the last position.
async fn apply_to_subscription(
    commands: &Commands,
    tenant_id: TenantId,
    command: SubscriptionCommand,
    ctx: &CommandContext,
) -> Result<i64, CommandError<BillingError>> {
    // An erased business's events are acknowledged and change nothing (DOMAIN.md "Hard
    // delete"): its subscription was cancelled by the erasure.
    if crate::tenants::is_erased(commands, tenant_id)
        .await
        .map_err(CommandError::Infrastructure)?
    {
        return Ok(0);
    }
    let ctx = ctx.clone().for_tenant(tenant_id.0);
    let outcome = commands
        .subscriptions
        .execute(&tenant_id.to_string(), command, &ctx.step("subscription"))
        .await
        .map_err(|e| e.map_rejected(BillingError::Subscription))?;
    let subscription = load_subscription(commands, tenant_id).await?;
    if let Some(customer) = subscription.customer_id() {
        link(
            commands,
            LinkKind::StripeCustomer,
            customer,
            tenant_id,
            &ctx.step("customer"),
        )
        .await?;
    }
    let synced =
        sync_tenant_plan(commands, tenant_id, &subscription, &ctx.step("tenant-plan")).await?;
    Ok(outcome.position().max(synced))
}

/// Records on the tenant the plan and status `subscription` implies (a provider fact,
/// never refused; an older observation than the tenant's newest changes nothing).
///
/// # Errors
/// See [`crate::CommandBus::execute`].
pub async fn sync_tenant_plan(
    commands: &Commands,
    tenant_id: TenantId,
    subscription: &Subscription,
    ctx: &CommandContext,
) -> Result<i64, CommandError<BillingError>> {
    let Some((plan, channel_limit, subscription_status)) = subscription.tenant_plan() else {
        return Ok(0);
    };
    let command = TenantCommand::RecordPlanChange {
        plan,
        channel_limit,
        subscription_status,
        observed_at: subscription.observed_at(),
    };
    let outcome = commands
        .tenants
        .execute(&tenant_id.to_string(), command, ctx)
        .await
        .map_err(|e| e.map_rejected(BillingError::Tenant))?;
    Ok(outcome.position())
}

/// Ends a subscription cancelled at period end (the `END_SUBSCRIPTION` deadline) and
/// moves the tenant back to FREE; nothing when Stripe ended it first or it was renewed.
///
/// # Errors
/// The failure as text, for the deadline's row (retried).
pub async fn end_at_period_end(
    commands: &Commands,
    tenant_id: TenantId,
    ctx: &CommandContext,
) -> Result<(), String> {
    let at = commands.clock.now();
    let ended = commands
        .subscriptions
        .execute(
            &tenant_id.to_string(),
            SubscriptionCommand::EndAtPeriodEnd { at },
            ctx,
        )
        .await;
    match ended {
        // The period was extended: the deadline of the new end will come.
        Err(CommandError::Rejected(SubscriptionError::PeriodNotOver { .. })) => return Ok(()),
        Err(e) => return Err(e.to_string()),
        Ok(_) => {}
    }
    let subscription = load_subscription(commands, tenant_id)
        .await
        .map_err(|e| e.to_string())?;
    sync_tenant_plan(commands, tenant_id, &subscription, &ctx.step("tenant-plan"))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The tenant an event names: `client_reference_id`, `metadata.tenant_id` (also an
/// invoice's subscription metadata), else its customer's link. Only registered tenants.
async fn find_tenant(
    commands: &Commands,
    event: &StripeEvent,
) -> Result<Option<TenantId>, CommandError<BillingError>> {
    let object = &event.data.object;
    let named = object["client_reference_id"]
        .as_str()
        .or_else(|| event.metadata("tenant_id"))
        .or_else(|| event::invoice_tenant(object))
        .and_then(|t| t.parse::<Uuid>().ok())
        .map(TenantId);
    let tenant = match named {
        Some(tenant) => Some(tenant),
        None => match event.reference("customer") {
            Some(customer) => linked_tenant(commands, LinkKind::StripeCustomer, customer).await?,
            None => None,
        },
    };
    let Some(tenant) = tenant else {
        return Ok(None);
    };
    let registered = commands
        .tenants
        .load(&tenant.to_string())
        .await
        .map_err(CommandError::unrejected)?;
    Ok((registered.status() != x8_domain::tenant::TenantStatus::Unregistered).then_some(tenant))
}

/// The tenant a provider object was linked to.
///
/// # Errors
/// See [`crate::CommandBus::load`].
pub async fn linked_tenant(
    commands: &Commands,
    kind: LinkKind,
    provider_id: &str,
) -> Result<Option<TenantId>, CommandError<BillingError>> {
    if provider_id.is_empty() {
        return Ok(None);
    }
    let link = commands
        .provider_links
        .load(&link_id(kind, provider_id))
        .await
        .map_err(CommandError::unrejected)?;
    Ok(link.tenant_id())
}

/// Links a provider object to `tenant_id` (once; another tenant is refused).
///
/// # Errors
/// `LinkedElsewhere`; see [`crate::CommandBus::execute`].
pub async fn link(
    commands: &Commands,
    kind: LinkKind,
    provider_id: &str,
    tenant_id: TenantId,
    ctx: &CommandContext,
) -> Result<i64, CommandError<BillingError>> {
    let outcome = commands
        .provider_links
        .execute(&link_id(kind, provider_id), LinkToTenant { tenant_id }, ctx)
        .await
        .map_err(|e| e.map_rejected(BillingError::LinkedElsewhere))?;
    Ok(outcome.position())
}

/// Records `event` as unmatched (once per event id).
///
/// # Errors
/// See [`crate::CommandBus::execute`].
pub async fn unmatched(
    commands: &Commands,
    event: &StripeEvent,
    reason: &str,
) -> Result<WebhookOutcome, CommandError<BillingError>> {
    let ctx = CommandContext::for_webhook("stripe", &event.id).step("unmatched");
    let command = RecordUnmatched {
        provider: "stripe".into(),
        event_id: event.id.clone(),
        event_type: event.event_type.clone(),
        object_id: event.data.object["id"].as_str().map(str::to_string),
        reason: reason.to_string(),
        received_at: commands.clock.now(),
    };
    let outcome = commands
        .unmatched
        .execute(&unmatched_id("stripe", &event.id), command, &ctx)
        .await
        .map_err(|e| e.map_rejected(|never| match never {}))?;
    tracing::warn!(event_id = %event.id, event_type = %event.event_type, reason, "Stripe event unmatched");
    Ok(WebhookOutcome::Unmatched {
        position: outcome.position(),
        reason: reason.to_string(),
    })
}

async fn load_subscription(
    commands: &Commands,
    tenant_id: TenantId,
) -> Result<Subscription, CommandError<BillingError>> {
    commands
        .subscriptions
        .load(&tenant_id.to_string())
        .await
        .map_err(CommandError::unrejected)
}
