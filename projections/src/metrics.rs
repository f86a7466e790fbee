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
//! A batch's counters are added up in memory ([`Pending`]) and written once per batch, one
//! statement per table: a busy bucket (a hot loyalty account's redemptions) is updated once
//! per batch, not once per event (thousands of updates of one row in one transaction slow
//! each other down, as every update leaves a row version behind).
//!
//! Streams whose later events carry no business (orders, deliveries, loyalty accounts,
//! conversations) are resolved through `metric_dimensions`, filled from each stream's
//! first event.

use crate::projection::{payload, Projection, ProjectionError};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use sqlx::PgConnection;
use std::collections::HashMap;
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, sqlx::FromRow)]
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

/// Bucket width: 15 minutes, bins aligned to 2000-01-01 00:00 UTC (a multiple of it from
/// the Unix epoch), as `date_bin('15 minutes', at, '2000-01-01')` cuts them.
const BUCKET_SECS: i64 = 15 * 60;

/// A bucket row's key (`metric_buckets_key`).
#[derive(PartialEq, Eq, Hash)]
struct BucketKey {
    dims: Dimensions,
    bucket_start: DateTime<Utc>,
    metric: &'static str,
    detail: String,
}

/// What a batch adds up before [`Pending::flush`] writes it: each bucket's `(count,
/// amount)` increments, each business's latest activity, the response-time samples
/// `(global position, dimensions, at, seconds)`, the streams' dimensions (looked up for
/// the whole batch at once, or learned from a stream's first event in it) and the ones to
/// remember.
#[derive(Default)]
struct Pending {
    buckets: HashMap<BucketKey, (i64, i64)>,
    activity: HashMap<Uuid, DateTime<Utc>>,
    response_times: Vec<(i64, Dimensions, DateTime<Utc>, i64)>,
    dimensions: HashMap<(String, String), Option<Dimensions>>,
    new_dimensions: Vec<(String, String, Dimensions)>,
}

/// The streams whose later events are counted through `metric_dimensions`.
const DIMENSIONED: [&str; 4] = ["conversation", "order", "delivery", "loyalty_account"];

impl Pending {
    /// Looks up the dimensions of every stream the batch's events belong to, in one query.
    async fn look_up(
        &mut self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        let mut types = Vec::new();
        let mut ids = Vec::new();
        for event in events {
            let key = (event.aggregate_type.clone(), event.aggregate_id.clone());
            if DIMENSIONED.contains(&key.0.as_str()) && !self.dimensions.contains_key(&key) {
                types.push(key.0.clone());
                ids.push(key.1.clone());
                self.dimensions.insert(key, None);
            }
        }
        if types.is_empty() {
            return Ok(());
        }
        #[derive(sqlx::FromRow)]
        struct Known {
            aggregate_type: String,
            aggregate_id: String,
            #[sqlx(flatten)]
            dims: Dimensions,
        }
        // language=PostgreSQL
        let found: Vec<Known> = sqlx::query_as(
            "select d.aggregate_type, d.aggregate_id, d.tenant_id, d.company_id, d.channel_id,
                    d.lead_source
             from unnest($1::text[], $2::text[]) as k(aggregate_type, aggregate_id)
             join metric_dimensions d using (aggregate_type, aggregate_id)",
        )
        .bind(types)
        .bind(ids)
        .fetch_all(conn)
        .await?;
        for known in found {
            self.dimensions
                .insert((known.aggregate_type, known.aggregate_id), Some(known.dims));
        }
        Ok(())
    }

    /// Remembers where the stream of `event` (its first) counts, for its later events.
    fn remember(&mut self, event: &RecordedEvent, dims: &Dimensions) {
        let key = (event.aggregate_type.clone(), event.aggregate_id.clone());
        self.dimensions.insert(key, Some(dims.clone()));
        self.new_dimensions.push((
            event.aggregate_type.clone(),
            event.aggregate_id.clone(),
            dims.clone(),
        ));
    }

    /// Adds one `figure` to its bucket, and moves the business's last activity forward.
    fn count(&mut self, dims: &Dimensions, figure: Figure<'_>) {
        let start = figure.at.timestamp().div_euclid(BUCKET_SECS) * BUCKET_SECS;
        let key = BucketKey {
            dims: dims.clone(),
            bucket_start: DateTime::from_timestamp(start, 0).unwrap_or(figure.at),
            metric: figure.metric,
            detail: figure.detail.to_string(),
        };
        let (count, amount) = self.buckets.entry(key).or_default();
        *count += 1;
        *amount += figure.amount;
        self.touch(dims.tenant_id, figure.at);
    }

    /// Moves `tenant`'s last activity to `at` unless it is already later.
    fn touch(&mut self, tenant: Uuid, at: DateTime<Utc>) {
        let last = self.activity.entry(tenant).or_insert(at);
        *last = (*last).max(at);
    }

    /// Writes what the batch added up: one statement per table.
    async fn flush(self, conn: &mut PgConnection) -> Result<(), ProjectionError> {
        if !self.new_dimensions.is_empty() {
            let mut rows = DimensionColumns::default();
            for (aggregate_type, aggregate_id, dims) in self.new_dimensions {
                rows.aggregate_type.push(aggregate_type);
                rows.aggregate_id.push(aggregate_id);
                rows.tenant_id.push(dims.tenant_id);
                rows.company_id.push(dims.company_id);
                rows.channel_id.push(dims.channel_id);
                rows.lead_source.push(dims.lead_source);
            }
            // language=PostgreSQL
            sqlx::query(
                "insert into metric_dimensions (aggregate_type, aggregate_id, tenant_id,
                     company_id, channel_id, lead_source)
                 select * from unnest($1::text[], $2::text[], $3::uuid[], $4::uuid[],
                     $5::uuid[], $6::text[])
                 on conflict do nothing",
            )
            .bind(rows.aggregate_type)
            .bind(rows.aggregate_id)
            .bind(rows.tenant_id)
            .bind(rows.company_id)
            .bind(rows.channel_id)
            .bind(rows.lead_source)
            .execute(&mut *conn)
            .await?;
        }
        if !self.buckets.is_empty() {
            let mut rows = BucketColumns::default();
            for (key, (count, amount)) in self.buckets {
                rows.push(key, count, amount);
            }
            // language=PostgreSQL
            sqlx::query(
                "insert into metric_buckets as b (tenant_id, bucket_start, company_id,
                     channel_id, lead_source, metric, detail, count, amount)
                 select * from unnest($1::uuid[], $2::timestamptz[], $3::uuid[], $4::uuid[],
                     $5::text[], $6::text[], $7::text[], $8::int8[], $9::int8[])
                 on conflict on constraint metric_buckets_key
                 do update set count = b.count + excluded.count,
                               amount = b.amount + excluded.amount",
            )
            .bind(rows.tenant_id)
            .bind(rows.bucket_start)
            .bind(rows.company_id)
            .bind(rows.channel_id)
            .bind(rows.lead_source)
            .bind(rows.metric)
            .bind(rows.detail)
            .bind(rows.count)
            .bind(rows.amount)
            .execute(&mut *conn)
            .await?;
        }
        if !self.response_times.is_empty() {
            let mut rows = ResponseTimeColumns::default();
            for (position, dims, at, secs) in self.response_times {
                rows.push(position, dims, at, secs);
            }
            // language=PostgreSQL
            sqlx::query(
                "insert into metric_response_times (global_position, tenant_id, at,
                     company_id, channel_id, lead_source, secs)
                 select * from unnest($1::int8[], $2::uuid[], $3::timestamptz[], $4::uuid[],
                     $5::uuid[], $6::text[], $7::int8[])
                 on conflict do nothing",
            )
            .bind(rows.global_position)
            .bind(rows.tenant_id)
            .bind(rows.at)
            .bind(rows.company_id)
            .bind(rows.channel_id)
            .bind(rows.lead_source)
            .bind(rows.secs)
            .execute(&mut *conn)
            .await?;
        }
        if !self.activity.is_empty() {
            let (tenants, times): (Vec<Uuid>, Vec<DateTime<Utc>>) =
                self.activity.into_iter().unzip();
            // language=PostgreSQL
            sqlx::query(
                "insert into tenant_activity as a (tenant_id, last_activity_at)
                 select * from unnest($1::uuid[], $2::timestamptz[])
                 on conflict (tenant_id) do update
                 set last_activity_at = greatest(a.last_activity_at, excluded.last_activity_at)",
            )
            .bind(tenants)
            .bind(times)
            .execute(conn)
            .await?;
        }
        Ok(())
    }
}

/// `metric_dimensions` rows as columns, for one `unnest` insert.
#[derive(Default)]
struct DimensionColumns {
    aggregate_type: Vec<String>,
    aggregate_id: Vec<String>,
    tenant_id: Vec<Uuid>,
    company_id: Vec<Option<Uuid>>,
    channel_id: Vec<Option<Uuid>>,
    lead_source: Vec<Option<String>>,
}

/// `metric_buckets` rows as columns, for one `unnest` insert.
#[derive(Default)]
struct BucketColumns {
    tenant_id: Vec<Uuid>,
    bucket_start: Vec<DateTime<Utc>>,
    company_id: Vec<Option<Uuid>>,
    channel_id: Vec<Option<Uuid>>,
    lead_source: Vec<Option<String>>,
    metric: Vec<&'static str>,
    detail: Vec<String>,
    count: Vec<i64>,
    amount: Vec<i64>,
}

impl BucketColumns {
    fn push(&mut self, key: BucketKey, count: i64, amount: i64) {
        self.tenant_id.push(key.dims.tenant_id);
        self.bucket_start.push(key.bucket_start);
        self.company_id.push(key.dims.company_id);
        self.channel_id.push(key.dims.channel_id);
        self.lead_source.push(key.dims.lead_source);
        self.metric.push(key.metric);
        self.detail.push(key.detail);
        self.count.push(count);
        self.amount.push(amount);
    }
}

/// `metric_response_times` rows as columns, for one `unnest` insert.
#[derive(Default)]
struct ResponseTimeColumns {
    global_position: Vec<i64>,
    tenant_id: Vec<Uuid>,
    at: Vec<DateTime<Utc>>,
    company_id: Vec<Option<Uuid>>,
    channel_id: Vec<Option<Uuid>>,
    lead_source: Vec<Option<String>>,
    secs: Vec<i64>,
}

impl ResponseTimeColumns {
    fn push(&mut self, position: i64, dims: Dimensions, at: DateTime<Utc>, secs: i64) {
        self.global_position.push(position);
        self.tenant_id.push(dims.tenant_id);
        self.at.push(at);
        self.company_id.push(dims.company_id);
        self.channel_id.push(dims.channel_id);
        self.lead_source.push(dims.lead_source);
        self.secs.push(secs);
    }
}

/// Adds one event's figures to `pending`.
async fn add(
    conn: &mut PgConnection,
    pending: &mut Pending,
    event: &RecordedEvent,
) -> Result<(), ProjectionError> {
    match event.aggregate_type.as_str() {
        "conversation" => conversation(conn, pending, event).await,
        "order" => order(conn, pending, event).await,
        "delivery" => delivery(conn, pending, event).await,
        "loyalty_account" => loyalty(conn, pending, event).await,
        "tenant" => registration(pending, event),
        _ => Ok(()),
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
        self.apply_batch(conn, std::slice::from_ref(event))
    }

    fn apply_batch<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        events: &'a [RecordedEvent],
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(async move {
            let mut pending = Pending::default();
            pending.look_up(conn, events).await?;
            for event in events {
                add(conn, &mut pending, event).await?;
            }
            pending.flush(conn).await
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
fn registration(pending: &mut Pending, event: &RecordedEvent) -> Result<(), ProjectionError> {
    if event.event_type != "TenantRegistered" {
        return Ok(());
    }
    if let TenantEvent::TenantRegistered {
        tenant_id,
        registered_at,
        ..
    } = payload(event)?
    {
        pending.touch(tenant_id.0, registered_at);
    }
    Ok(())
}

async fn conversation(
    conn: &mut PgConnection,
    pending: &mut Pending,
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
        pending.remember(event, &dims);
        pending.count(&dims, Figure::new("conversations_started", *opened_at));
        return Ok(());
    }
    let Some(dims) = stream_dimensions(conn, pending, event).await? else {
        return Ok(());
    };
    match event_payload {
        E::MessageReceived { kind, sent_at, .. } => {
            pending.count(
                &dims,
                Figure::new("messages_in", sent_at).detail(kind.as_str()),
            );
            Ok(())
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
            pending.count(&dims, sent);
            if let Some(secs) = response_time_secs {
                pending.count(&dims, Figure::new("replies", at).amount(secs));
                pending
                    .response_times
                    .push((event.global_position, dims, at, secs));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

async fn order(
    conn: &mut PgConnection,
    pending: &mut Pending,
    event: &RecordedEvent,
) -> Result<(), ProjectionError> {
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
            pending.remember(event, &dims);
            pending.touch(dims.tenant_id, created_at);
            Ok(())
        }
        OrderEvent::OrderPaid {
            amount, paid_at, ..
        } => {
            let Some(dims) = stream_dimensions(conn, pending, event).await? else {
                return Ok(());
            };
            let figure = Figure::new("payments", paid_at)
                .detail(amount.currency.as_str())
                .amount(amount.amount_minor);
            pending.count(&dims, figure);
            Ok(())
        }
        _ => Ok(()),
    }
}

async fn delivery(
    conn: &mut PgConnection,
    pending: &mut Pending,
    event: &RecordedEvent,
) -> Result<(), ProjectionError> {
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
                Some(id) => dimensions(conn, pending, "conversation", &id.to_string()).await?,
                None => None,
            }
            .unwrap_or_default();
            let dims = Dimensions {
                tenant_id: tenant_id.0,
                company_id: Some(company_id),
                channel_id: from_conversation.channel_id,
                lead_source: from_conversation.lead_source,
            };
            pending.remember(event, &dims);
            pending.touch(dims.tenant_id, at);
            Ok(())
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
            let Some(dims) = stream_dimensions(conn, pending, event).await? else {
                return Ok(());
            };
            pending.count(&dims, Figure::new(metric, occurred_at));
            Ok(())
        }
        _ => Ok(()),
    }
}

async fn loyalty(
    conn: &mut PgConnection,
    pending: &mut Pending,
    event: &RecordedEvent,
) -> Result<(), ProjectionError> {
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
        pending.remember(event, &dims);
        pending.touch(dims.tenant_id, *opened_at);
        return Ok(());
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
    let Some(dims) = stream_dimensions(conn, pending, event).await? else {
        return Ok(());
    };
    pending.count(&dims, figure);
    Ok(())
}

/// Where stream `aggregate_type`/`aggregate_id` counts: as the batch knows it (looked up
/// for all its streams at once, or learned from a stream's first event in it, not yet
/// written), else from `metric_dimensions`; `None` for a stream whose first event was
/// never seen (nothing to attribute it to).
async fn dimensions(
    conn: &mut PgConnection,
    pending: &mut Pending,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Option<Dimensions>, ProjectionError> {
    let key = (aggregate_type.to_string(), aggregate_id.to_string());
    if let Some(known) = pending.dimensions.get(&key) {
        return Ok(known.clone());
    }
    // language=PostgreSQL
    let found: Option<Dimensions> = sqlx::query_as(
        "select tenant_id, company_id, channel_id, lead_source from metric_dimensions
         where aggregate_type = $1 and aggregate_id = $2",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .fetch_optional(conn)
    .await?;
    pending.dimensions.insert(key, found.clone());
    Ok(found)
}

/// Where the stream of `event` counts (see [`dimensions`]).
async fn stream_dimensions(
    conn: &mut PgConnection,
    pending: &mut Pending,
    event: &RecordedEvent,
) -> Result<Option<Dimensions>, ProjectionError> {
    dimensions(conn, pending, &event.aggregate_type, &event.aggregate_id).await
}
