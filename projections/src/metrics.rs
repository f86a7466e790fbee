//! The metrics read models (migrations/0012): counters per 15-minute UTC bucket and
//! business / company / connection / lead source (`metric_buckets`), every first-response
//! time (`metric_response_times`, for percentiles), and each business's last activity
//! (`tenant_activity`: registration, messages, orders, deliveries, loyalty, by their own
//! times). The daily metrics and the dashboards read them; days are cut in
//! the business's time zone at query time.
//!
//! A figure lands in the bucket of **when it happened** (the message's, payment's or
//! checkpoint's own time), not of when its event arrived: a late event counts on its own
//! day. Counters rely on the runner applying each event exactly once (batch and
//! checkpoint commit together).
//!
//! Streams whose later events carry no business (orders, deliveries, loyalty accounts,
//! conversations) are resolved through `metric_dimensions`, filled from each stream's
//! first event.

use crate::projection::{payload, Projection, ProjectionError};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use sqlx::PgConnection;
use uuid::Uuid;
use x8_domain::billing::order::OrderEvent;
use x8_domain::conversation::ConversationEvent;
use x8_domain::delivery::{DeliveryEvent, DeliveryStatus};
use x8_domain::loyalty::account::{GrantReason, LoyaltyEvent};
use x8_domain::tenant::TenantEvent;
use x8_eventstore::RecordedEvent;

/// Builds the metrics read models.
pub struct MetricsProjection;

/// The projection's name, for waiting on it.
pub const NAME: &str = "metrics";

/// Where a stream's figures are counted.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
struct Dimensions {
    tenant_id: Uuid,
    company_id: Option<Uuid>,
    channel_id: Option<Uuid>,
    lead_source: Option<String>,
}

/// One counter increment.
struct Figure<'a> {
    metric: &'static str,
    detail: &'a str,
    amount: i64,
    at: DateTime<Utc>,
}

impl<'a> Figure<'a> {
    fn new(metric: &'static str, at: DateTime<Utc>) -> Self {
        Self {
            metric,
            detail: "",
            amount: 0,
            at,
        }
    }
    fn detail(mut self, detail: &'a str) -> Self {
        self.detail = detail;
        self
    }
    fn amount(mut self, amount: i64) -> Self {
        self.amount = amount;
        self
    }
}

impl Projection for MetricsProjection {
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
                "conversation" => conversation(conn, event).await,
                "order" => order(conn, event).await,
                "delivery" => delivery(conn, event).await,
                "loyalty_account" => loyalty(conn, event).await,
                "tenant" => registration(conn, event).await,
                _ => Ok(()),
            }
        })
    }

    /// The business's dimensions and activity; the buckets and response times are
    /// anonymous aggregates (ids and numbers) and stay.
    fn tenant_tables(&self) -> &'static [&'static str] {
        &["metric_dimensions", "tenant_activity"]
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "metric_dimensions",
            "metric_buckets",
            "metric_response_times",
            "tenant_activity",
        ]
    }
}

/// A registration is a business's first activity.
async fn registration(
    conn: &mut PgConnection,
    event: &RecordedEvent,
) -> Result<(), ProjectionError> {
    if event.event_type != "TenantRegistered" {
        return Ok(());
    }
    match payload(event)? {
        TenantEvent::TenantRegistered {
            tenant_id,
            registered_at,
            ..
        } => touch(conn, tenant_id.0, registered_at).await,
        _ => Ok(()),
    }
}

async fn conversation(
    conn: &mut PgConnection,
    event: &RecordedEvent,
) -> Result<(), ProjectionError> {
    use ConversationEvent as E;
    let event_payload = payload(event)?;
    if let E::ConversationOpened {
        tenant_id,
        company_id,
        channel_id,
        lead_source,
        opened_at,
        ..
    } = &event_payload
    {
        let dims = Dimensions {
            tenant_id: tenant_id.0,
            company_id: Some(*company_id),
            channel_id: Some(*channel_id),
            lead_source: Some(lead_source.source.clone()),
        };
        remember(conn, event, &dims).await?;
        return count(
            conn,
            &dims,
            Figure::new("conversations_started", *opened_at),
        )
        .await;
    }
    let Some(dims) = dimensions(conn, event).await? else {
        return Ok(());
    };
    match event_payload {
        E::MessageReceived { kind, sent_at, .. } => {
            let figure = Figure::new("messages_in", sent_at).detail(kind.as_str());
            count(conn, &dims, figure).await
        }
        E::MessageSent {
            message_type,
            cost_micro_eur,
            response_time_secs,
            at,
            ..
        } => {
            let sent = Figure::new("messages_out", at)
                .detail(message_type.as_str())
                .amount(cost_micro_eur);
            count(conn, &dims, sent).await?;
            let Some(secs) = response_time_secs else {
                return Ok(());
            };
            count(conn, &dims, Figure::new("replies", at).amount(secs)).await?;
            // language=PostgreSQL
            sqlx::query(
                "insert into metric_response_times (global_position, tenant_id, at,
                     company_id, channel_id, lead_source, secs)
                 values ($1, $2, $3, $4, $5, $6, $7)
                 on conflict do nothing",
            )
            .bind(event.global_position)
            .bind(dims.tenant_id)
            .bind(at)
            .bind(dims.company_id)
            .bind(dims.channel_id)
            .bind(&dims.lead_source)
            .bind(secs)
            .execute(conn)
            .await?;
            Ok(())
        }
        _ => Ok(()),
    }
}

async fn order(conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), ProjectionError> {
    match payload(event)? {
        OrderEvent::OrderCreated {
            tenant_id,
            company_id,
            created_at,
            ..
        } => {
            let dims = Dimensions {
                tenant_id: tenant_id.0,
                company_id: Some(company_id),
                ..Dimensions::default()
            };
            remember(conn, event, &dims).await?;
            touch(conn, dims.tenant_id, created_at).await
        }
        OrderEvent::OrderPaid {
            amount, paid_at, ..
        } => {
            let Some(dims) = dimensions(conn, event).await? else {
                return Ok(());
            };
            let figure = Figure::new("payments", paid_at)
                .detail(amount.currency.as_str())
                .amount(amount.amount_minor);
            count(conn, &dims, figure).await
        }
        _ => Ok(()),
    }
}

async fn delivery(conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), ProjectionError> {
    match payload(event)? {
        DeliveryEvent::DeliveryCreated {
            tenant_id,
            company_id,
            conversation_id,
            at,
            ..
        } => {
            // A delivery for a conversation counts on that conversation's connection and
            // lead source too.
            let from_conversation = match conversation_id {
                Some(id) => {
                    // language=PostgreSQL
                    sqlx::query_as::<_, Dimensions>(
                        "select tenant_id, company_id, channel_id, lead_source
                         from metric_dimensions
                         where aggregate_type = 'conversation' and aggregate_id = $1",
                    )
                    .bind(id.to_string())
                    .fetch_optional(&mut *conn)
                    .await?
                }
                None => None,
            }
            .unwrap_or_default();
            let dims = Dimensions {
                tenant_id: tenant_id.0,
                company_id: Some(company_id),
                channel_id: from_conversation.channel_id,
                lead_source: from_conversation.lead_source,
            };
            remember(conn, event, &dims).await?;
            touch(conn, dims.tenant_id, at).await
        }
        DeliveryEvent::DeliveryStatusChanged {
            to, occurred_at, ..
        } => {
            let metric = match to {
                DeliveryStatus::Delivered => "deliveries_delivered",
                // AfterShip's terminal problems; `AttemptFail` may still end delivered.
                DeliveryStatus::Exception | DeliveryStatus::Expired => "deliveries_failed",
                _ => return Ok(()),
            };
            let Some(dims) = dimensions(conn, event).await? else {
                return Ok(());
            };
            count(conn, &dims, Figure::new(metric, occurred_at)).await
        }
        _ => Ok(()),
    }
}

async fn loyalty(conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), ProjectionError> {
    use LoyaltyEvent as E;
    let event_payload = payload(event)?;
    if let E::LoyaltyAccountOpened {
        tenant_id,
        opened_at,
        ..
    } = &event_payload
    {
        let dims = Dimensions {
            tenant_id: tenant_id.0,
            ..Dimensions::default()
        };
        remember(conn, event, &dims).await?;
        return touch(conn, dims.tenant_id, *opened_at).await;
    }
    let figure = match event_payload {
        E::PurchaseAccrued { points, at, .. } => Figure::new("points_accrued", at)
            .detail("purchase")
            .amount(points),
        E::PointsGranted {
            reason, points, at, ..
        } => {
            let detail = match reason {
                GrantReason::Welcome => "welcome",
                GrantReason::Referred { .. } | GrantReason::Referrer { .. } => "referral",
            };
            Figure::new("points_accrued", at)
                .detail(detail)
                .amount(points)
        }
        E::PointsRedeemed { points, at, .. } => Figure::new("points_redeemed", at).amount(points),
        _ => return Ok(()),
    };
    let Some(dims) = dimensions(conn, event).await? else {
        return Ok(());
    };
    count(conn, &dims, figure).await
}

/// Records where the stream of `event` counts.
async fn remember(
    conn: &mut PgConnection,
    event: &RecordedEvent,
    dims: &Dimensions,
) -> Result<(), ProjectionError> {
    // language=PostgreSQL
    sqlx::query(
        "insert into metric_dimensions (aggregate_type, aggregate_id, tenant_id, company_id,
             channel_id, lead_source)
         values ($1, $2, $3, $4, $5, $6)
         on conflict do nothing",
    )
    .bind(&event.aggregate_type)
    .bind(&event.aggregate_id)
    .bind(dims.tenant_id)
    .bind(dims.company_id)
    .bind(dims.channel_id)
    .bind(&dims.lead_source)
    .execute(conn)
    .await?;
    Ok(())
}

/// Where the stream of `event` counts; `None` for a stream whose first event was never
/// seen (nothing to attribute it to).
async fn dimensions(
    conn: &mut PgConnection,
    event: &RecordedEvent,
) -> Result<Option<Dimensions>, ProjectionError> {
    // language=PostgreSQL
    Ok(sqlx::query_as(
        "select tenant_id, company_id, channel_id, lead_source from metric_dimensions
         where aggregate_type = $1 and aggregate_id = $2",
    )
    .bind(&event.aggregate_type)
    .bind(&event.aggregate_id)
    .fetch_optional(conn)
    .await?)
}

/// Adds one `figure` to its bucket, and moves the business's last activity forward.
async fn count(
    conn: &mut PgConnection,
    dims: &Dimensions,
    figure: Figure<'_>,
) -> Result<(), ProjectionError> {
    // language=PostgreSQL
    sqlx::query(
        "insert into metric_buckets as b (tenant_id, bucket_start, company_id, channel_id,
             lead_source, metric, detail, count, amount)
         values ($1, date_bin('15 minutes', $2, timestamptz '2000-01-01 00:00:00+00'),
                 $3, $4, $5, $6, $7, 1, $8)
         on conflict on constraint metric_buckets_key
         do update set count = b.count + 1, amount = b.amount + excluded.amount",
    )
    .bind(dims.tenant_id)
    .bind(figure.at)
    .bind(dims.company_id)
    .bind(dims.channel_id)
    .bind(&dims.lead_source)
    .bind(figure.metric)
    .bind(figure.detail)
    .bind(figure.amount)
    .execute(&mut *conn)
    .await?;
    touch(conn, dims.tenant_id, figure.at).await
}

/// Moves `tenant`'s last activity to `at` unless it is already later.
async fn touch(
    conn: &mut PgConnection,
    tenant: Uuid,
    at: DateTime<Utc>,
) -> Result<(), ProjectionError> {
    // language=PostgreSQL
    sqlx::query(
        "insert into tenant_activity as a (tenant_id, last_activity_at) values ($1, $2)
         on conflict (tenant_id) do update
         set last_activity_at = greatest(a.last_activity_at, excluded.last_activity_at)",
    )
    .bind(tenant)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}
