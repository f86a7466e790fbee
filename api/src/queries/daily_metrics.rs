//! Daily metrics of one business, read from the `metrics` projection's buckets and
//! response-time samples, with days cut in the business's time zone by PostgreSQL.

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use std::collections::BTreeMap;
use uuid::Uuid;
use x8_domain::conversation::{InboundKind, MessageType};

/// Longest range one request may ask for, in days.
pub const MAX_DAYS: u64 = 366;

/// What the figures are split by, besides the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// The company (conversations, payments, deliveries; points belong to no company).
    Company,
    /// The channel connection (conversations and deliveries of a conversation).
    Channel,
    /// The conversation's lead source (`tiktok`, `facebook`, …, `direct`).
    LeadSource,
}

impl GroupBy {
    /// The SQL expression of the group: a literal of this module, never input.
    fn column(group_by: Option<Self>) -> &'static str {
        match group_by {
            None => "null::text",
            Some(Self::Company) => "company_id::text",
            Some(Self::Channel) => "channel_id::text",
            Some(Self::LeadSource) => "lead_source",
        }
    }
}

/// The days asked for, inclusive, in the business's zone.
#[derive(Debug, Clone, Copy)]
pub struct DayRange {
    /// First day.
    pub from: NaiveDate,
    /// Last day (inclusive).
    pub to: NaiveDate,
}

impl DayRange {
    /// `from..=to`, at most [`MAX_DAYS`] long.
    ///
    /// # Errors
    /// A sentence for the client when `to` is before `from` or the range is too long.
    pub fn new(from: NaiveDate, to: NaiveDate) -> Result<Self, String> {
        if to < from {
            return Err(format!("to ({to}) is before from ({from})"));
        }
        if from
            .checked_add_days(Days::new(MAX_DAYS))
            .is_some_and(|end| to >= end)
        {
            return Err(format!("a range is at most {MAX_DAYS} days"));
        }
        Ok(Self { from, to })
    }

    fn days(self) -> impl Iterator<Item = NaiveDate> {
        self.from.iter_days().take_while(move |day| *day <= self.to)
    }
}

/// The figures of one day (and group).
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct DayFigures {
    /// The local day.
    pub day: NaiveDate,
    /// The group's id or name; `null` without `group_by`, and for figures that belong to no
    /// group (points have no company; payments no channel or lead source).
    pub group: Option<String>,
    /// Inbound messages by kind (`text`, `media`, `callback`).
    pub messages_in: BTreeMap<String, i64>,
    /// Outbound messages by type (`TYPE1`, `TYPE2`, `TYPE3`).
    pub messages_out: BTreeMap<String, i64>,
    /// Conversations opened.
    pub conversations_started: i64,
    /// Replies that answered a waiting customer.
    pub replies: i64,
    /// Time from a customer's first unanswered message to the reply, seconds; `null` on a
    /// day without replies.
    pub first_response_secs: Option<ResponseTimes>,
    /// Estimated cost of the outbound messages, micro-euros (DOMAIN.md pricing).
    pub message_cost_micro_eur: i64,
    /// Customer payments received, per currency.
    pub payments: Vec<Payments>,
    /// Deliveries that reached `Delivered`, or `Exception` / `Expired`.
    pub deliveries: Deliveries,
    /// Loyalty points.
    pub points: Points,
}

/// First-response times over a day's replies, seconds. Percentiles are nearest-rank over
/// the samples (never averaged from averages).
#[derive(Debug, Clone, Serialize, PartialEq, sqlx::FromRow, utoipa::ToSchema)]
pub struct ResponseTimes {
    /// Samples.
    pub count: i64,
    /// Mean.
    pub avg: f64,
    /// Median.
    pub p50: i64,
    /// 90th percentile.
    pub p90: i64,
}

/// Payments in one currency.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Payments {
    /// ISO-4217.
    pub currency: String,
    /// Payments.
    pub count: i64,
    /// Their sum, minor units.
    pub amount_minor: i64,
}

/// Delivery outcomes.
#[derive(Debug, Clone, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Deliveries {
    /// Reached `Delivered`.
    pub delivered: i64,
    /// Reached `Exception` or `Expired`.
    pub failed: i64,
}

/// Loyalty points.
#[derive(Debug, Clone, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Points {
    /// Accrued on purchases plus granted (welcome, referral).
    pub accrued: i64,
    /// Redeemed.
    pub redeemed: i64,
}

impl DayFigures {
    fn empty(day: NaiveDate, group: Option<String>) -> Self {
        let zeros = |keys: &[&str]| keys.iter().map(|k| (k.to_string(), 0)).collect();
        Self {
            day,
            group,
            messages_in: zeros(&InboundKind::ALL.map(InboundKind::as_str)),
            messages_out: zeros(&MessageType::ALL.map(MessageType::as_str)),
            conversations_started: 0,
            replies: 0,
            first_response_secs: None,
            message_cost_micro_eur: 0,
            payments: Vec::new(),
            deliveries: Deliveries::default(),
            points: Points::default(),
        }
    }

    fn add(&mut self, row: BucketRow) {
        match row.metric.as_str() {
            "messages_in" => *self.messages_in.entry(row.detail).or_default() += row.count,
            "messages_out" => {
                *self.messages_out.entry(row.detail).or_default() += row.count;
                self.message_cost_micro_eur += row.amount;
            }
            "conversations_started" => self.conversations_started += row.count,
            "replies" => self.replies += row.count,
            "payments" => self.payments.push(Payments {
                currency: row.detail,
                count: row.count,
                amount_minor: row.amount,
            }),
            "deliveries_delivered" => self.deliveries.delivered += row.count,
            "deliveries_failed" => self.deliveries.failed += row.count,
            "points_accrued" => self.points.accrued += row.amount,
            "points_redeemed" => self.points.redeemed += row.amount,
            _ => {}
        }
    }
}

#[derive(sqlx::FromRow)]
struct BucketRow {
    day: NaiveDate,
    grp: Option<String>,
    metric: String,
    detail: String,
    count: i64,
    amount: i64,
}

#[derive(sqlx::FromRow)]
struct ResponseRow {
    day: NaiveDate,
    grp: Option<String>,
    #[sqlx(flatten)]
    times: ResponseTimes,
}

/// The figures of `tenant` per day of `range` in `time_zone` (an IANA name PostgreSQL
/// knows), split by `group_by`. Without `group_by` every day of the range is listed, with
/// zeros where nothing happened; with it, the (day, group) pairs that have figures.
///
/// # Errors
/// [`sqlx::Error`] when a query fails.
pub async fn daily(
    pool: &PgPool,
    tenant: Uuid,
    time_zone: &str,
    range: DayRange,
    group_by: Option<GroupBy>,
) -> Result<Vec<DayFigures>, sqlx::Error> {
    let group = GroupBy::column(group_by);
    // A local day [d 00:00, d+1 00:00) in the zone, as UTC instants.
    let bounds = "tenant_id = $1
         and {time} >= ($2::date::timestamp at time zone $4)
         and {time} < (($3::date + 1)::timestamp at time zone $4)";
    let buckets: Vec<BucketRow> = fetch_in_range(
        pool,
        &format!(
            "select (bucket_start at time zone $4)::date as day, {group} as grp, metric, detail,
                sum(count)::bigint as count, sum(amount)::bigint as amount
         from metric_buckets
         where {}
         group by 1, 2, 3, 4
         order by 1, 2, 3, 4",
            bounds.replace("{time}", "bucket_start")
        ),
        tenant,
        range,
        time_zone,
    )
    .await?;
    let responses: Vec<ResponseRow> = fetch_in_range(
        pool,
        &format!(
            "select (at at time zone $4)::date as day, {group} as grp, count(*) as count,
                avg(secs)::float8 as avg,
                percentile_disc(0.5) within group (order by secs) as p50,
                percentile_disc(0.9) within group (order by secs) as p90
         from metric_response_times
         where {}
         group by 1, 2",
            bounds.replace("{time}", "at")
        ),
        tenant,
        range,
        time_zone,
    )
    .await?;

    let mut days: BTreeMap<(NaiveDate, Option<String>), DayFigures> = BTreeMap::new();
    if group_by.is_none() {
        for day in range.days() {
            days.insert((day, None), DayFigures::empty(day, None));
        }
    }
    for row in buckets {
        days.entry((row.day, row.grp.clone()))
            .or_insert_with(|| DayFigures::empty(row.day, row.grp.clone()))
            .add(row);
    }
    for row in responses {
        days.entry((row.day, row.grp.clone()))
            .or_insert_with(|| DayFigures::empty(row.day, row.grp.clone()))
            .first_response_secs = Some(row.times);
    }
    Ok(days.into_values().collect())
}

/// Runs `sql` with `$1` = `tenant`, `$2`/`$3` = the range's first and last local day and
/// `$4` = `time_zone`, the parameters both daily queries take.
async fn fetch_in_range<T>(
    pool: &PgPool,
    sql: &str,
    tenant: Uuid,
    range: DayRange,
    time_zone: &str,
) -> Result<Vec<T>, sqlx::Error>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    sqlx::query_as(sql)
        .bind(tenant)
        .bind(range.from)
        .bind(range.to)
        .bind(time_zone)
        .fetch_all(pool)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(raw: &str) -> NaiveDate {
        raw.parse().expect("date")
    }

    #[test]
    fn a_range_is_ordered_and_at_most_a_leap_year_long() {
        assert!(DayRange::new(date("2026-01-02"), date("2026-01-01")).is_err());
        assert!(DayRange::new(date("2026-01-01"), date("2026-01-01")).is_ok());
        assert!(DayRange::new(date("2024-01-01"), date("2024-12-31")).is_ok());
        assert!(DayRange::new(date("2024-01-01"), date("2025-01-01")).is_err());
    }

    #[test]
    fn an_empty_day_lists_every_message_kind_and_type_at_zero() {
        let day = DayFigures::empty(date("2026-11-01"), None);
        assert_eq!(day.messages_in.len(), 3);
        assert_eq!(day.messages_out.get("TYPE3"), Some(&0));
    }
}
