//! Customer payments (the business's customers pay the business) through Stripe Connect:
//! the tenant's connected account and its orders. The money never touches the SaaS
//! subscription: different aggregates, different Stripe objects, different webhooks'
//! routing (`event.account` names the connected account).

use crate::billing::{link, unmatched, BillingError, WebhookOutcome};
use crate::bus::NamedCommand;
use crate::context::CommandContext;
use crate::error::CommandError;
use crate::stripe::event::StripeEvent;
use crate::stripe::PaymentCheckout;
use crate::Commands;
use uuid::Uuid;
use x8_domain::billing::connect::{check_account_id, ConnectCommand, LinkOrigin};
use x8_domain::billing::order::{
    parse_customer_ref, parse_description, ChargeAccount, OrderCommand, OrderError,
};
use x8_domain::billing::provider_link::LinkKind;
use x8_domain::billing::{Currency, Money};
use x8_domain::company::CompanyError;
use x8_domain::tenant::TenantError;
use x8_domain::TenantId;

impl NamedCommand for ConnectCommand {
    fn command_name(&self) -> &'static str {
        self.name()
    }
    fn tenant_id(&self, aggregate_id: &str) -> Option<Uuid> {
        aggregate_id.parse().ok()
    }
}

impl NamedCommand for OrderCommand {
    fn command_name(&self) -> &'static str {
        self.name()
    }
    fn tenant_id(&self, _aggregate_id: &str) -> Option<Uuid> {
        match self {
            Self::CreateOrder { tenant_id, .. } => Some(tenant_id.0),
            _ => None,
        }
    }
}

/// Starts (or resumes) Stripe onboarding: creates an Express account the first time
/// (linked to the tenant), then an account link. Returns the onboarding URL, the
/// account id and the position of the link (0 when it was linked before).
///
/// # Errors
/// `Connect(AlreadyLinked)` never (an existing account is resumed); `Provider`; see
/// [`crate::CommandBus::execute`].
pub async fn start_onboarding(
    commands: &Commands,
    tenant_id: TenantId,
    ctx: &CommandContext,
) -> Result<(String, String, i64), CommandError<BillingError>> {
    let ctx = ctx.clone().for_tenant(tenant_id.0);
    let account = commands
        .connect_accounts
        .load(&tenant_id.to_string())
        .await
        .map_err(CommandError::unrejected)?;
    let mut position = 0;
    let account_id = match account.account_id() {
        Some(account_id) => account_id.to_string(),
        None => {
            // One account per tenant even when two onboarding requests race: Stripe
            // returns the same account for the same idempotency key (24 h).
            let key = format!("x8-connect-account-{tenant_id}");
            let account_id = commands
                .billing
                .api
                .create_connected_account(tenant_id.0, &key)
                .await
                .map_err(|e| CommandError::Rejected(e.into()))?;
            position = link_account(
                commands,
                tenant_id,
                &account_id,
                LinkOrigin::Onboarding,
                &ctx,
            )
            .await?;
            account_id
        }
    };
    let url = commands
        .billing
        .api
        .create_account_link(
            &account_id,
            &commands.billing.url("connect/refresh"),
            &commands.billing.url("connect/return"),
        )
        .await
        .map_err(|e| CommandError::Rejected(e.into()))?;
    Ok((url, account_id, position))
}

/// Links `account_id` to the tenant (ADMIN, an existing account; or after onboarding).
/// Returns the last position.
///
/// # Errors
/// `LinkedElsewhere` (the account is another tenant's), `Connect(AlreadyLinked |
/// InvalidAccountId)`; see [`crate::CommandBus::execute`].
pub async fn link_account(
    commands: &Commands,
    tenant_id: TenantId,
    account_id: &str,
    origin: LinkOrigin,
    ctx: &CommandContext,
) -> Result<i64, CommandError<BillingError>> {
    let ctx = ctx.clone().for_tenant(tenant_id.0);
    // Before the account is linked to this tenant for good.
    check_account_id(account_id).map_err(|e| CommandError::Rejected(e.into()))?;
    link(
        commands,
        LinkKind::StripeAccount,
        account_id,
        tenant_id,
        &ctx.step("account-link"),
    )
    .await?;
    let outcome = commands
        .connect_accounts
        .execute(
            &tenant_id.to_string(),
            ConnectCommand::LinkAccount {
                tenant_id,
                account_id: account_id.to_string(),
                origin,
            },
            &ctx.step("connect"),
        )
        .await
        .map_err(|e| e.map_rejected(BillingError::Connect))?;
    Ok(outcome.position())
}

/// Runs a Connect command on the tenant's account.
///
/// # Errors
/// See [`crate::CommandBus::execute`].
pub async fn execute_connect(
    commands: &Commands,
    tenant_id: TenantId,
    command: ConnectCommand,
    ctx: &CommandContext,
) -> Result<i64, CommandError<BillingError>> {
    let ctx = ctx.clone().for_tenant(tenant_id.0);
    let outcome = commands
        .connect_accounts
        .execute(&tenant_id.to_string(), command, &ctx)
        .await
        .map_err(|e| e.map_rejected(BillingError::Connect))?;
    Ok(outcome.position())
}

/// A new order.
#[derive(Debug, Clone)]
pub struct NewOrder {
    /// The business's reference of its customer.
    pub customer_ref: String,
    /// Minor units, positive.
    pub amount_minor: i64,
    /// ISO-4217.
    pub currency: String,
    /// What for.
    pub description: String,
}

/// The vault purpose of an order's sealed `field` (`customer_ref`, `description`).
pub fn order_purpose(order_id: Uuid, field: &str) -> String {
    x8_domain::Sealed::purpose("order", order_id, field)
}

/// The refusal when the business's data key is gone (it was erased).
fn erased(tenant: TenantId) -> BillingError {
    TenantError::Erased { tenant }.into()
}

/// The order id a create request makes: derived from the command id, so a retried
/// request (same `Idempotency-Key`) names the same order.
pub fn order_id_for(ctx: &CommandContext) -> Uuid {
    Uuid::new_v5(&ctx.command_id, b"order")
}

/// Creates an order of company `company_id`, its customer reference and description
/// sealed with the business's data key. Returns its id and position. A retry with the same
/// `Idempotency-Key` and body is answered from the first run.
///
/// # Errors
/// `Company(NotFound)`, `Order(Money | InvalidText)`, `Tenant(Erased)`; see
/// [`crate::CommandBus::execute`].
pub async fn create_order(
    commands: &Commands,
    company_id: Uuid,
    order: NewOrder,
    ctx: &CommandContext,
) -> Result<(Uuid, i64), CommandError<BillingError>> {
    let rejected = |e: OrderError| CommandError::Rejected(e.into());
    let customer_ref = parse_customer_ref(&order.customer_ref).map_err(rejected)?;
    let description = parse_description(&order.description).map_err(rejected)?;
    let currency = Currency::parse(&order.currency).map_err(|e| rejected(OrderError::Money(e)))?;
    let company = commands
        .companies
        .load(&company_id.to_string())
        .await
        .map_err(CommandError::unrejected)?;
    if !company.exists() {
        return Err(CommandError::Rejected(CompanyError::NotFound.into()));
    }
    let tenant_id = company.tenant_id();
    // The command carries fresh nonces: fingerprint the request, not the command.
    let ctx = ctx.clone().for_tenant(tenant_id.0).or_fingerprinted(&[
        "CreateOrder",
        &company_id.to_string(),
        &customer_ref,
        &order.amount_minor.to_string(),
        currency.as_str(),
        &description,
    ]);
    let order_id = order_id_for(&ctx);
    let key = commands
        .vault
        .scope_key(tenant_id.0)
        .await
        .map_err(|e| e.refusal(erased(tenant_id)))?;
    let seal = |field: &str, value: &str| {
        key.seal(&order_purpose(order_id, field), value.as_bytes())
            .map_err(|e| e.refusal(erased(tenant_id)))
    };
    let command = OrderCommand::CreateOrder {
        order_id,
        tenant_id,
        company_id,
        customer_ref: seal("customer_ref", &customer_ref)?,
        amount: Money {
            amount_minor: order.amount_minor,
            currency,
        },
        description: seal("description", &description)?,
        created_at: commands.clock.now(),
    };
    let outcome = execute_order(commands, order_id, command, &ctx).await?;
    Ok((order_id, outcome))
}

/// Sends a payment link for the order: checks the connected account takes charges,
/// creates a payment-mode Checkout Session on it (commission as application fee), and
/// records it. Returns the URL and the position.
///
/// # Errors
/// `Order(NotFound | ConnectNotReady | AlreadyPaid)`, `Provider`; see
/// [`crate::CommandBus::execute`].
pub async fn send_payment_link(
    commands: &Commands,
    order_id: Uuid,
    ctx: &CommandContext,
) -> Result<(String, i64), CommandError<BillingError>> {
    let order = commands
        .orders
        .load(&order_id.to_string())
        .await
        .map_err(CommandError::unrejected)?;
    let (Some(tenant_id), Some(amount)) = (order.tenant_id(), order.amount()) else {
        return Err(CommandError::Rejected(OrderError::NotFound.into()));
    };
    let ctx = ctx.clone().for_tenant(tenant_id.0);
    let connect = commands
        .connect_accounts
        .load(&tenant_id.to_string())
        .await
        .map_err(CommandError::unrejected)?;
    let account = ChargeAccount {
        account_id: connect.account_id().map(str::to_string),
        charges_enabled: connect.charges_enabled(),
    };
    let account_id = order
        .check_link(&account)
        .map_err(|e| CommandError::Rejected(e.into()))?;
    let commission_minor = amount.amount_minor * i64::from(connect.commission_bps()) / 10_000;
    let description = commands
        .vault
        .open(
            tenant_id.0,
            &order_purpose(order_id, "description"),
            order.description(),
        )
        .await
        .map_err(|e| e.refusal(erased(tenant_id)))?;
    let description = String::from_utf8_lossy(&description);
    let currency = amount.currency.to_stripe();
    let success_url = commands.billing.url("orders/paid");
    let cancel_url = commands.billing.url("orders/cancelled");
    let session = commands
        .billing
        .api
        .create_payment_checkout(
            PaymentCheckout {
                account_id: &account_id,
                order_id,
                tenant_id: tenant_id.0,
                amount_minor: amount.amount_minor,
                currency: &currency,
                description: &description,
                application_fee_minor: commission_minor,
                success_url: &success_url,
                cancel_url: &cancel_url,
            },
            &ctx.command_id.to_string(),
        )
        .await
        .map_err(|e| CommandError::Rejected(e.into()))?;
    let command = OrderCommand::SendPaymentLink {
        account,
        session_id: session.id,
        url: session.url.clone(),
        commission_minor,
        sent_at: commands.clock.now(),
    };
    let position = execute_order(commands, order_id, command, &ctx).await?;
    Ok((session.url, position))
}

async fn execute_order(
    commands: &Commands,
    order_id: Uuid,
    command: OrderCommand,
    ctx: &CommandContext,
) -> Result<i64, CommandError<BillingError>> {
    let outcome = commands
        .orders
        .execute(&order_id.to_string(), command, ctx)
        .await
        .map_err(|e| e.map_rejected(BillingError::Order))?;
    Ok(outcome.position())
}

/// A Connect payment event: `payment_intent.succeeded|payment_failed`,
/// `checkout.session.completed` in payment mode, `charge.refunded`, each for a connected
/// account (`event.account`) and carrying `metadata.order_id`. Anything else, or a
/// payment to another account than the order's, is recorded as unmatched.
///
/// # Errors
/// See [`crate::CommandBus::execute`].
pub async fn handle_payment_event(
    commands: &Commands,
    event: &StripeEvent,
    ctx: &CommandContext,
) -> Result<WebhookOutcome, CommandError<BillingError>> {
    let object = &event.data.object;
    let (Some(account_id), Some(order_id)) = (
        event.account.as_deref(),
        event
            .metadata("order_id")
            .and_then(|id| id.parse::<Uuid>().ok()),
    ) else {
        return unmatched(commands, event, "not a Connect payment for an X8 order").await;
    };
    let order = commands
        .orders
        .load(&order_id.to_string())
        .await
        .map_err(CommandError::unrejected)?;
    if !order.exists() {
        return unmatched(commands, event, "no such order").await;
    }
    if order.status() == x8_domain::billing::order::OrderStatus::Closed {
        // Closed by its business's erasure: acknowledged, changes nothing.
        return Ok(WebhookOutcome::Ignored);
    }
    let at = event.created_at();
    let payment_ref = |fallback: &str| {
        event
            .reference("payment_intent")
            .unwrap_or(fallback)
            .to_string()
    };
    let object_id = object["id"].as_str().unwrap_or_default();
    let amount = |field: &str| {
        Currency::parse(object["currency"].as_str().unwrap_or_default()).map(|currency| Money {
            amount_minor: object[field].as_i64().unwrap_or(0),
            currency,
        })
    };
    let command = match event.event_type.as_str() {
        "checkout.session.completed" if object["payment_status"] == "paid" => {
            match amount("amount_total") {
                Ok(amount) => Some(OrderCommand::RecordPayment {
                    account_id: account_id.into(),
                    payment_ref: payment_ref(object_id),
                    amount,
                    paid_at: at,
                }),
                Err(_) => None,
            }
        }
        "payment_intent.succeeded" => {
            amount("amount_received")
                .ok()
                .map(|amount| OrderCommand::RecordPayment {
                    account_id: account_id.into(),
                    payment_ref: object_id.to_string(),
                    amount,
                    paid_at: at,
                })
        }
        "payment_intent.payment_failed" => Some(OrderCommand::RecordPaymentFailure {
            account_id: account_id.into(),
            payment_ref: object_id.to_string(),
            reason: object["last_payment_error"]["code"]
                .as_str()
                .or_else(|| object["last_payment_error"]["message"].as_str())
                .unwrap_or("payment_failed")
                .to_string(),
            failed_at: at,
        }),
        "charge.refunded" => Some(OrderCommand::RecordRefund {
            account_id: account_id.into(),
            payment_ref: payment_ref(object_id),
            amount_refunded: object["amount_refunded"].as_i64().unwrap_or(0),
            refunded_at: at,
        }),
        // An unpaid session completing (e.g. a delayed payment method) changes nothing yet.
        _ => None,
    };
    let Some(command) = command else {
        return Ok(WebhookOutcome::Recorded { position: 0 });
    };
    let ctx = match order.tenant_id() {
        Some(tenant) => ctx.clone().for_tenant(tenant.0),
        None => ctx.clone(),
    };
    match execute_order(commands, order_id, command, &ctx.step("order")).await {
        Ok(position) => Ok(WebhookOutcome::Recorded { position }),
        Err(CommandError::Rejected(BillingError::Order(e @ OrderError::WrongAccount { .. }))) => {
            unmatched(commands, event, &e.to_string()).await
        }
        Err(e) => Err(e),
    }
}
