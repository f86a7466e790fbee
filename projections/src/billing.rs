//! The payment read models (migrations/0008): `subscriptions` (billing per tenant, MRR),
//! `connect_accounts`, `orders` (the purchase log) and `unmatched_provider_events`.
//! Every update is guarded by the row's last position, so re-applying is harmless.

use crate::projection::{payload, stream_uuid, Projection, ProjectionError};
use futures::future::BoxFuture;
use sqlx::PgConnection;
use x8_domain::billing::connect::ConnectEvent;
use x8_domain::billing::order::{OrderEvent, OrderStatus};
use x8_domain::billing::subscription::SubscriptionEvent;
use x8_domain::billing::unmatched::UnmatchedEvent;
use x8_eventstore::RecordedEvent;

/// Builds the payment read models.
pub struct BillingProjection;

/// The projection's name, for waiting on it.
pub const NAME: &str = "billing";

impl Projection for BillingProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        event: &'a RecordedEvent,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(async move {
            match event.aggregate_type.as_str() {
                "subscription" => apply_subscription(conn, event).await,
                "connect_account" => apply_connect(conn, event).await,
                "order" => apply_order(conn, event).await,
                "unmatched_provider_event" => apply_unmatched(conn, event).await,
                _ => Ok(()),
            }
        })
    }

    fn tenant_tables(&self) -> &'static [&'static str] {
        &["orders", "connect_accounts", "subscriptions"]
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "subscriptions",
            "connect_accounts",
            "orders",
            "unmatched_provider_events",
        ]
    }
}

async fn apply_subscription(
    conn: &mut PgConnection,
    event: &RecordedEvent,
) -> Result<(), ProjectionError> {
    let tenant_id = stream_uuid(event)?;
    let position = event.global_position;
    ensure_row(conn, "subscriptions", tenant_id).await?;
    // language=PostgreSQL
    let query = match payload(event)? {
        SubscriptionEvent::CheckoutStarted { .. } => sqlx::query(
            "update subscriptions set checkouts_started = checkouts_started + 1, last_position = $2
             where tenant_id = $1 and last_position < $2",
        )
        .bind(tenant_id)
        .bind(position),
        SubscriptionEvent::CheckoutCompleted {
            customer_id,
            subscription_id,
            plan,
            paid,
            observed_at,
            ..
        } => sqlx::query(
            "update subscriptions set customer_id = coalesce($3, customer_id),
                 subscription_id = coalesce($4, subscription_id),
                 plan = coalesce(plan, $5), stripe_status = coalesce(stripe_status, $6),
                 observed_at = $7, last_position = $2
             where tenant_id = $1 and last_position < $2",
        )
        .bind(tenant_id)
        .bind(position)
        .bind(customer_id)
        .bind(subscription_id)
        .bind(plan.filter(|_| paid).map(|p| p.as_str()))
        .bind(paid.then_some("active"))
        .bind(observed_at),
        SubscriptionEvent::SubscriptionRecorded {
            subscription: s,
            observed_at,
            ..
        } => sqlx::query(
            "update subscriptions set subscription_id = $3, customer_id = coalesce($4, customer_id),
                 stripe_status = $5, plan = $6, price_id = $7, unit_amount = $8, currency = $9,
                 monthly_amount = $10, current_period_end = $11, cancel_at_period_end = $12,
                 ended_at = null, observed_at = $13, last_position = $2
             where tenant_id = $1 and last_position < $2",
        )
        .bind(tenant_id)
        .bind(position)
        .bind(s.subscription_id.clone())
        .bind(s.customer_id.clone())
        .bind(s.status.as_str())
        .bind(s.plan.map(|p| p.as_str()))
        .bind(s.price.as_ref().map(|p| p.price_id.clone()))
        .bind(s.price.as_ref().map(|p| p.unit_amount))
        .bind(s.price.as_ref().map(|p| p.currency.to_string()))
        .bind(s.price.as_ref().map(|p| p.monthly_amount()))
        .bind(s.current_period_end)
        .bind(s.cancel_at_period_end)
        .bind(observed_at),
        SubscriptionEvent::InvoicePaid { observed_at, .. } => sqlx::query(
            "update subscriptions set last_paid_at = $3, failed_invoice_id = null,
                 failed_attempts = null, next_attempt_at = null, last_failure_at = null,
                 last_position = $2
             where tenant_id = $1 and last_position < $2",
        )
        .bind(tenant_id)
        .bind(position)
        .bind(observed_at),
        SubscriptionEvent::InvoicePaymentFailed {
            invoice_id,
            attempt_count,
            next_attempt_at,
            observed_at,
            ..
        } => sqlx::query(
            "update subscriptions set failed_invoice_id = $3, failed_attempts = $4,
                 next_attempt_at = $5, last_failure_at = $6, last_position = $2
             where tenant_id = $1 and last_position < $2",
        )
        .bind(tenant_id)
        .bind(position)
        .bind(invoice_id)
        .bind(i32::try_from(attempt_count).unwrap_or(i32::MAX))
        .bind(next_attempt_at)
        .bind(observed_at),
        SubscriptionEvent::SubscriptionEnded { ended_at, .. } => sqlx::query(
            "update subscriptions set stripe_status = 'canceled', ended_at = $3,
                 last_position = $2
             where tenant_id = $1 and last_position < $2",
        )
        .bind(tenant_id)
        .bind(position)
        .bind(ended_at),
    };
    query.execute(conn).await?;
    Ok(())
}

async fn apply_connect(
    conn: &mut PgConnection,
    event: &RecordedEvent,
) -> Result<(), ProjectionError> {
    let tenant_id = stream_uuid(event)?;
    let position = event.global_position;
    ensure_row(conn, "connect_accounts", tenant_id).await?;
    // language=PostgreSQL
    let query = match payload(event)? {
        ConnectEvent::ConnectAccountLinked {
            account_id, origin, ..
        } => sqlx::query(
            "update connect_accounts set account_id = $3, origin = $4, charges_enabled = false,
                 payouts_enabled = false, details_submitted = false, requirements_due = '[]',
                 disabled_reason = null, last_position = $2
             where tenant_id = $1 and last_position < $2",
        )
        .bind(tenant_id)
        .bind(position)
        .bind(account_id)
        .bind(origin.as_str()),
        ConnectEvent::ConnectAccountDisconnected { .. } => sqlx::query(
            "update connect_accounts set account_id = null, origin = null,
                 charges_enabled = false, payouts_enabled = false, details_submitted = false,
                 requirements_due = '[]', disabled_reason = null, last_position = $2
             where tenant_id = $1 and last_position < $2",
        )
        .bind(tenant_id)
        .bind(position),
        ConnectEvent::ConnectAccountUpdated { status, .. } => sqlx::query(
            "update connect_accounts set charges_enabled = $3, payouts_enabled = $4,
                 details_submitted = $5, requirements_due = $6, disabled_reason = $7,
                 last_position = $2
             where tenant_id = $1 and last_position < $2",
        )
        .bind(tenant_id)
        .bind(position)
        .bind(status.charges_enabled)
        .bind(status.payouts_enabled)
        .bind(status.details_submitted)
        .bind(serde_json::Value::from(status.requirements_due))
        .bind(status.disabled_reason),
        ConnectEvent::CommissionSet { commission_bps } => sqlx::query(
            "update connect_accounts set commission_bps = $3, last_position = $2
             where tenant_id = $1 and last_position < $2",
        )
        .bind(tenant_id)
        .bind(position)
        .bind(i32::try_from(commission_bps).unwrap_or(i32::MAX)),
    };
    query.execute(conn).await?;
    Ok(())
}

/// Creates the tenant's empty row in `table` (one per tenant) if it is not there yet,
/// so every event can be applied as a guarded update.
async fn ensure_row(
    conn: &mut PgConnection,
    table: &'static str,
    tenant_id: uuid::Uuid,
) -> Result<(), ProjectionError> {
    // language=PostgreSQL
    sqlx::query(&format!(
        "insert into {table} (tenant_id, last_position) values ($1, 0)
         on conflict (tenant_id) do nothing"
    ))
    .bind(tenant_id)
    .execute(conn)
    .await?;
    Ok(())
}

async fn apply_order(
    conn: &mut PgConnection,
    event: &RecordedEvent,
) -> Result<(), ProjectionError> {
    let order_id = stream_uuid(event)?;
    let position = event.global_position;
    // language=PostgreSQL
    let query = match payload(event)? {
        OrderEvent::OrderCreated {
            tenant_id,
            company_id,
            customer_ref,
            amount,
            description,
            created_at,
            ..
        } => {
            sqlx::query(
                "insert into orders (order_id, last_position, tenant_id, company_id,
                     customer_ref_sealed, amount_minor, currency, description_sealed, status,
                     created_at)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 on conflict (order_id) do nothing",
            )
            .bind(order_id)
            .bind(position)
            .bind(tenant_id.0)
            .bind(company_id)
            .bind(customer_ref.0)
            .bind(amount.amount_minor)
            .bind(amount.currency.to_string())
            .bind(description.0)
            .bind(OrderStatus::NoPaymentLink.as_str())
            .bind(created_at)
            .execute(conn)
            .await?;
            return Ok(());
        }
        OrderEvent::PaymentLinkSent {
            account_id,
            url,
            commission_minor,
            sent_at,
            ..
        } => sqlx::query(
            "update orders set status = $3, account_id = $4, payment_link_url = $5,
                 commission_minor = $6, link_sent_at = $7, failure_reason = null,
                 last_position = $2
             where order_id = $1 and last_position < $2",
        )
        .bind(order_id)
        .bind(position)
        .bind(OrderStatus::PaymentLinkSent.as_str())
        .bind(account_id)
        .bind(url)
        .bind(commission_minor)
        .bind(sent_at),
        OrderEvent::OrderPaid {
            payment_ref,
            amount,
            paid_at,
            ..
        } => sqlx::query(
            "update orders set status = $3, payment_ref = $4, amount_paid_minor = $5,
                 paid_at = $6, last_position = $2
             where order_id = $1 and last_position < $2",
        )
        .bind(order_id)
        .bind(position)
        .bind(OrderStatus::Paid.as_str())
        .bind(payment_ref)
        .bind(amount.amount_minor)
        .bind(paid_at),
        OrderEvent::DuplicatePaymentReceived { .. } => sqlx::query(
            "update orders set duplicate_payments = duplicate_payments + 1, last_position = $2
             where order_id = $1 and last_position < $2",
        )
        .bind(order_id)
        .bind(position),
        OrderEvent::OrderPaymentFailed { reason, .. } => sqlx::query(
            "update orders set status = $3, failure_reason = $4, last_position = $2
             where order_id = $1 and last_position < $2",
        )
        .bind(order_id)
        .bind(position)
        .bind(OrderStatus::Failed.as_str())
        .bind(reason),
        OrderEvent::OrderRefunded { refunded_at, .. } => sqlx::query(
            "update orders set status = $3, refunded_at = $4, last_position = $2
             where order_id = $1 and last_position < $2",
        )
        .bind(order_id)
        .bind(position)
        .bind(OrderStatus::Refunded.as_str())
        .bind(refunded_at),
        OrderEvent::OrderClosed { .. } => sqlx::query(
            "update orders set status = $3, last_position = $2
             where order_id = $1 and last_position < $2",
        )
        .bind(order_id)
        .bind(position)
        .bind(OrderStatus::Closed.as_str()),
    };
    query.execute(conn).await?;
    Ok(())
}

async fn apply_unmatched(
    conn: &mut PgConnection,
    event: &RecordedEvent,
) -> Result<(), ProjectionError> {
    let UnmatchedEvent::ProviderEventUnmatched(e) = payload(event)?;
    // language=PostgreSQL
    sqlx::query(
        "insert into unmatched_provider_events
             (provider, event_id, event_type, object_id, reason, received_at)
         values ($1, $2, $3, $4, $5, $6)
         on conflict do nothing",
    )
    .bind(e.provider)
    .bind(e.event_id)
    .bind(e.event_type)
    .bind(e.object_id)
    .bind(e.reason)
    .bind(e.received_at)
    .execute(conn)
    .await?;
    Ok(())
}
