//! The three dashboards, each assembled from read models only: `tenants`, `companies`,
//! `channels`, `conversations`, `orders`, `subscriptions`, `deliveries`,
//! `loyalty_accounts`, and the `metrics` projection's buckets, samples and activity.

use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use serde::Serialize;
use sqlx::PgPool;
use std::collections::BTreeMap;
use uuid::Uuid;
use x8_domain::conversation::{InboundKind, MessageType};

/// Every projection a dashboard reads, for read-your-writes.
pub const PROJECTIONS: [&str; 8] = [
    x8_projections::tenants::NAME,
    x8_projections::companies::NAME,
    x8_projections::channels::NAME,
    x8_projections::conversations::NAME,
    x8_projections::billing::NAME,
    x8_projections::deliveries::NAME,
    x8_projections::loyalty::NAME,
    x8_projections::metrics::NAME,
];

/// Trials ending within this many days are flagged on the admin dashboard.
pub const TRIAL_ENDING_DAYS: i64 = 3;

// ---------------------------------------------------------------------------------------
// Client dashboard

/// `GET /dashboards/client/{tenant_id}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ClientDashboard {
    /// The business.
    pub tenant_id: Uuid,
    /// Its name.
    pub name: String,
    /// `active` or `suspended`.
    pub status: String,
    /// Its plan (`FREE`, `SINGLE`, …).
    pub plan: String,
    /// `trialing`, `active`, `past_due`, `cancelled`, `expired`.
    pub subscription_status: String,
    /// Its IANA time zone.
    pub time_zone: String,
    /// Channels used against the plan's limit.
    pub usage: Usage,
    /// Per company, in code order.
    pub companies: Vec<CompanyFigures>,
    /// Customer orders by status and currency.
    pub payments: Vec<PaymentsByStatus>,
    /// Deliveries by AfterShip status (every status listed).
    pub deliveries: BTreeMap<String, i64>,
    /// The loyalty program's totals.
    pub loyalty: Loyalty,
}

/// Plan usage.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Usage {
    /// Connections held.
    pub channels_used: i32,
    /// Connections allowed; `null` is unlimited.
    pub channel_limit: Option<i32>,
    /// More held than allowed (after a downgrade by an ADMIN or the provider).
    pub over_limit: bool,
    /// When the trial ends (or ended).
    pub trial_ends_at: Option<DateTime<Utc>>,
}

/// One company's figures, all time.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CompanyFigures {
    /// The company.
    pub company_id: Uuid,
    /// `COMP001`, …
    pub code: String,
    /// Its name.
    pub name: String,
    /// Messages by direction and type.
    pub messages: Messages,
    /// First-response times, seconds.
    pub first_response_secs: ResponseSummary,
    /// Conversations now.
    pub conversations: Conversations,
    /// Its connections (not removed) and their status.
    pub channels: Vec<ChannelStatus>,
}

/// Message counts by type.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Messages {
    /// Inbound, by kind (`text`, `media`, `callback`).
    pub inbound: BTreeMap<String, i64>,
    /// Outbound, by type (`TYPE1`, `TYPE2`, `TYPE3`).
    pub outbound: BTreeMap<String, i64>,
}

/// Mean and median over every first-response sample.
#[derive(Debug, Clone, Default, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ResponseSummary {
    /// Samples.
    pub count: i64,
    /// Mean, `null` without samples.
    pub avg: Option<f64>,
    /// Nearest-rank median, `null` without samples.
    pub median: Option<i64>,
}

/// Conversations now.
#[derive(Debug, Clone, Default, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Conversations {
    /// Not resolved.
    pub open: i64,
    /// With a customer message no reply has answered yet.
    pub unanswered: i64,
}

/// A connection's status.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ChannelStatus {
    /// The connection.
    pub channel_id: Uuid,
    /// `whatsapp`, `telegram`, …
    pub platform: String,
    /// `DISCONNECTED`, `CONNECTING`, `CONNECTED`, `ERROR`.
    pub status: String,
    #[serde(skip)]
    company_id: Uuid,
}

/// Orders in one status and currency.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct PaymentsByStatus {
    /// `no_payment_link`, `payment_link_sent`, `paid`, `failed`, `refunded`.
    pub status: String,
    /// ISO-4217, upper case.
    pub currency: String,
    /// Orders.
    pub count: i64,
    /// Their amounts, minor units.
    pub amount_minor: i64,
}

/// Loyalty totals, points.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Loyalty {
    /// Customer accounts.
    pub accounts: i64,
    /// Accrued on purchases plus granted.
    pub points_issued: i64,
    /// Redeemed.
    pub points_redeemed: i64,
    /// Balances now (issued − redeemed − expired − reversed).
    pub points_outstanding: i64,
    /// Net promoter score over the customers' latest ratings.
    #[sqlx(flatten)]
    pub nps: Nps,
}

/// NPS over each customer's latest rating, as the loyalty statistics show it.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Nps {
    /// % promoters − % detractors, one decimal ([`x8_domain::loyalty::nps_score`]); `null`
    /// without ratings.
    #[sqlx(skip)]
    pub score: Option<f64>,
    /// Customers who rated.
    pub ratings: i64,
    /// Rated 9 or 10.
    pub promoters: i64,
    /// Rated 7 or 8.
    pub passives: i64,
    /// Rated 0 to 6.
    pub detractors: i64,
}

impl Nps {
    fn scored(mut self) -> Self {
        self.score = x8_domain::loyalty::nps_score(self.promoters, self.detractors, self.ratings);
        self
    }
}

#[derive(sqlx::FromRow)]
struct TenantRow {
    name: String,
    status: String,
    plan: String,
    subscription_status: String,
    time_zone: String,
    #[sqlx(flatten)]
    usage: Usage,
}

#[derive(sqlx::FromRow)]
struct CompanyRow {
    company_id: Uuid,
    code: String,
    name: String,
}

#[derive(sqlx::FromRow)]
struct MessageRow {
    company_id: Option<Uuid>,
    metric: String,
    detail: String,
    count: i64,
}

#[derive(sqlx::FromRow)]
struct PerCompany<T> {
    company_id: Option<Uuid>,
    #[sqlx(flatten)]
    figures: T,
}

#[derive(sqlx::FromRow)]
struct StatusCount {
    status: String,
    count: i64,
}

/// The client dashboard of `tenant`, or `None` when the read model has no such business.
/// The business's and its companies' names are sealed: the caller opens them.
///
/// # Errors
/// [`sqlx::Error`] when a query fails.
pub async fn client(pool: &PgPool, tenant: Uuid) -> Result<Option<ClientDashboard>, sqlx::Error> {
    // language=PostgreSQL
    let Some(row): Option<TenantRow> = sqlx::query_as(
        "select name_sealed as name, status, plan, subscription_status, time_zone, channels_used,
                channel_limit, over_limit, trial_ends_at
         from tenants where tenant_id = $1",
    )
    .bind(tenant)
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    // language=PostgreSQL
    let companies: Vec<CompanyRow> = sqlx::query_as(
        "select company_id, code, name_sealed as name from companies
         where tenant_id = $1 order by position",
    )
    .bind(tenant)
    .fetch_all(pool)
    .await?;
    // language=PostgreSQL
    let messages: Vec<MessageRow> = sqlx::query_as(
        "select company_id, metric, detail, sum(count)::bigint as count from metric_buckets
         where tenant_id = $1 and metric in ('messages_in', 'messages_out')
         group by 1, 2, 3",
    )
    .bind(tenant)
    .fetch_all(pool)
    .await?;
    // language=PostgreSQL
    let responses: Vec<PerCompany<ResponseSummary>> = sqlx::query_as(
        "select company_id, count(*) as count, avg(secs)::float8 as avg,
                percentile_disc(0.5) within group (order by secs) as median
         from metric_response_times where tenant_id = $1 group by 1",
    )
    .bind(tenant)
    .fetch_all(pool)
    .await?;
    // language=PostgreSQL
    let conversations: Vec<PerCompany<Conversations>> = sqlx::query_as(
        "select company_id, count(*) filter (where status = 'open') as open,
                count(*) filter (where first_unanswered_at is not null) as unanswered
         from conversations where tenant_id = $1 group by 1",
    )
    .bind(tenant)
    .fetch_all(pool)
    .await?;
    // language=PostgreSQL
    let channels: Vec<ChannelStatus> = sqlx::query_as(
        "select channel_id, platform, status, company_id from channels
         where tenant_id = $1 and removed_at is null order by created_at, channel_id",
    )
    .bind(tenant)
    .fetch_all(pool)
    .await?;
    // language=PostgreSQL
    let payments: Vec<PaymentsByStatus> = sqlx::query_as(
        "select status, currency, count(*) as count, sum(amount_minor)::bigint as amount_minor
         from orders where tenant_id = $1 group by 1, 2 order by 1, 2",
    )
    .bind(tenant)
    .fetch_all(pool)
    .await?;
    // language=PostgreSQL
    let deliveries: Vec<StatusCount> = sqlx::query_as(
        "select status, count(*) as count from deliveries where tenant_id = $1 group by 1",
    )
    .bind(tenant)
    .fetch_all(pool)
    .await?;
    // language=PostgreSQL
    let loyalty: Loyalty = sqlx::query_as(
        "select count(*) as accounts,
                coalesce(sum(points_issued), 0)::bigint as points_issued,
                coalesce(sum(points_redeemed), 0)::bigint as points_redeemed,
                coalesce(sum(balance), 0)::bigint as points_outstanding,
                count(nps) as ratings,
                count(*) filter (where nps >= 9) as promoters,
                count(*) filter (where nps between 7 and 8) as passives,
                count(*) filter (where nps <= 6) as detractors
         from loyalty_accounts where tenant_id = $1",
    )
    .bind(tenant)
    .fetch_one(pool)
    .await?;

    let companies = companies
        .into_iter()
        .map(|c| CompanyFigures {
            messages: company_messages(&messages, c.company_id),
            first_response_secs: take(&responses, c.company_id).unwrap_or_default(),
            conversations: take(&conversations, c.company_id).unwrap_or_default(),
            channels: channels
                .iter()
                .filter(|ch| ch.company_id == c.company_id)
                .cloned()
                .collect(),
            company_id: c.company_id,
            code: c.code,
            name: c.name,
        })
        .collect();
    let mut by_status: BTreeMap<String, i64> = x8_domain::delivery::status::ALL
        .iter()
        .map(|s| (s.as_str().to_string(), 0))
        .collect();
    for row in deliveries {
        by_status.insert(row.status, row.count);
    }
    Ok(Some(ClientDashboard {
        tenant_id: tenant,
        name: row.name,
        status: row.status,
        plan: row.plan,
        subscription_status: row.subscription_status,
        time_zone: row.time_zone,
        usage: row.usage,
        companies,
        payments,
        deliveries: by_status,
        loyalty: Loyalty {
            nps: loyalty.nps.scored(),
            ..loyalty
        },
    }))
}

fn company_messages(rows: &[MessageRow], company: Uuid) -> Messages {
    let zeros = |keys: &[&str]| keys.iter().map(|k| (k.to_string(), 0)).collect();
    let mut messages = Messages {
        inbound: zeros(&InboundKind::ALL.map(InboundKind::as_str)),
        outbound: zeros(&MessageType::ALL.map(MessageType::as_str)),
    };
    for row in rows.iter().filter(|r| r.company_id == Some(company)) {
        let side = if row.metric == "messages_in" {
            &mut messages.inbound
        } else {
            &mut messages.outbound
        };
        *side.entry(row.detail.clone()).or_default() += row.count;
    }
    messages
}

fn take<T: Clone>(rows: &[PerCompany<T>], company: Uuid) -> Option<T> {
    rows.iter()
        .find(|r| r.company_id == Some(company))
        .map(|r| r.figures.clone())
}

// ---------------------------------------------------------------------------------------
// Manager dashboard

/// One business of a manager.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ManagedBusiness {
    /// The business.
    pub tenant_id: Uuid,
    /// Its name.
    pub name: String,
    /// `active` or `suspended`.
    pub status: String,
    /// Its plan.
    pub plan: String,
    /// The tenant's subscription status (`trialing`, `active`, `past_due`, …).
    pub subscription_status: String,
    /// When the paid period renews (Stripe's `current_period_end`); for a trial, its end.
    pub renews_at: Option<DateTime<Utc>>,
    /// Whether the subscription ends at the period's end instead of renewing.
    pub cancel_at_period_end: bool,
    /// More channels held than allowed.
    pub over_limit: bool,
    /// Connections held.
    pub channels_used: i32,
    /// Connections allowed; `null` is unlimited.
    pub channel_limit: Option<i32>,
    /// Connections in `ERROR`.
    pub channels_in_error: i64,
    /// When something last happened in it (a message, order, delivery, loyalty or
    /// account event), by the event's own time.
    pub last_activity_at: Option<DateTime<Utc>>,
}

/// The businesses assigned to `manager`, their names sealed (the caller opens them, then
/// sorts by name).
///
/// # Errors
/// [`sqlx::Error`] when the query fails.
pub async fn manager(pool: &PgPool, manager: Uuid) -> Result<Vec<ManagedBusiness>, sqlx::Error> {
    // language=PostgreSQL
    sqlx::query_as(
        "select t.tenant_id, t.name_sealed as name, t.status, t.plan, t.subscription_status,
                case when t.subscription_status = 'trialing' and s.current_period_end is null
                     then t.trial_ends_at else s.current_period_end end as renews_at,
                coalesce(s.cancel_at_period_end, false) as cancel_at_period_end,
                t.over_limit, t.channels_used, t.channel_limit,
                (select count(*) from channels c
                 where c.tenant_id = t.tenant_id and c.removed_at is null
                   and c.status = 'ERROR') as channels_in_error,
                a.last_activity_at
         from tenants t
         left join subscriptions s on s.tenant_id = t.tenant_id
         left join tenant_activity a on a.tenant_id = t.tenant_id
         where t.manager_id = $1",
    )
    .bind(manager)
    .fetch_all(pool)
    .await
}

// ---------------------------------------------------------------------------------------
// Admin dashboard

/// `GET /dashboards/admin`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AdminDashboard {
    /// Businesses by status (`active`, `suspended`) and in total.
    pub businesses: Counted,
    /// Subscriptions by Stripe status; `active` is Stripe's `active`.
    pub subscriptions: Counted,
    /// Businesses on their free trial.
    pub trials: Trials,
    /// Monthly recurring revenue of `active` and `past_due` subscriptions, minor units per
    /// currency (yearly prices count a twelfth).
    pub mrr: Vec<Amount>,
    /// Subscriptions that ended since the first of this month (UTC), and those set to end
    /// at their period's end.
    pub churn_this_month: Churn,
    /// Connections (not removed) by platform and status.
    pub channels: Vec<ChannelCount>,
    /// Webhook deliveries refused in the current clock hour and the 23 before, by
    /// provider and answer code.
    pub webhook_failures_24h: Vec<WebhookFailures>,
}

/// A total and its split by status.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Counted {
    /// All.
    pub total: i64,
    /// By status.
    pub by_status: BTreeMap<String, i64>,
}

impl Counted {
    fn from(rows: Vec<StatusCount>) -> Self {
        Self {
            total: rows.iter().map(|r| r.count).sum(),
            by_status: rows.into_iter().map(|r| (r.status, r.count)).collect(),
        }
    }
}

/// Trials.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Trials {
    /// Businesses trialing now.
    pub active: i64,
    /// Of those, the trials ending within 3 days.
    pub ending_within_3_days: i64,
}

/// An amount in one currency.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Amount {
    /// ISO-4217, upper case.
    pub currency: String,
    /// Minor units.
    pub amount_minor: i64,
}

/// Churn.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Churn {
    /// Subscriptions cancelled (or ended at their period's end) this month, by the
    /// provider's time.
    pub ended: i64,
    /// Subscriptions that will end at their period's end.
    pub cancelling: i64,
}

/// Connections on one platform in one status.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ChannelCount {
    /// `whatsapp`, …
    pub platform: String,
    /// `CONNECTED`, …
    pub status: String,
    /// Connections.
    pub count: i64,
}

/// Refused webhook deliveries.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct WebhookFailures {
    /// `stripe`, `waha`, `telegram`, `viber`, `infobip`.
    pub provider: String,
    /// The problem code answered (`invalid_signature`, `invalid_body`, `not_found`, …).
    pub code: String,
    /// Deliveries.
    pub count: i64,
    /// The latest.
    pub last_at: DateTime<Utc>,
}

/// The admin dashboard at `now`.
///
/// # Errors
/// [`sqlx::Error`] when a query fails.
pub async fn admin(pool: &PgPool, now: DateTime<Utc>) -> Result<AdminDashboard, sqlx::Error> {
    // language=PostgreSQL
    let businesses: Vec<StatusCount> =
        sqlx::query_as("select status, count(*) as count from tenants group by 1")
            .fetch_all(pool)
            .await?;
    let subscriptions = subscriptions_by_status(pool).await?;
    // language=PostgreSQL
    let trials: Trials = sqlx::query_as(
        "select count(*) as active,
                count(*) filter (where trial_ends_at <= $1 + make_interval(days => $2))
                    as ending_within_3_days
         from tenants
         where subscription_status = 'trialing' and status = 'active' and trial_ends_at > $1",
    )
    .bind(now)
    .bind(TRIAL_ENDING_DAYS as i32)
    .fetch_one(pool)
    .await?;
    let mrr = mrr(pool).await?;
    // language=PostgreSQL
    let churn: Churn = sqlx::query_as(
        "select count(*) filter (where stripe_status in ('canceled', 'incomplete_expired')
                                   and coalesce(ended_at, observed_at) >= $1) as ended,
                count(*) filter (where cancel_at_period_end and ended_at is null) as cancelling
         from subscriptions",
    )
    .bind(month_start(now))
    .fetch_one(pool)
    .await?;
    // language=PostgreSQL
    let channels: Vec<ChannelCount> = sqlx::query_as(
        "select platform, status, count(*) as count from channels where removed_at is null
         group by 1, 2 order by 1, 2",
    )
    .fetch_all(pool)
    .await?;
    // language=PostgreSQL
    let webhook_failures_24h: Vec<WebhookFailures> = sqlx::query_as(
        "select provider, code, sum(failures)::bigint as count, max(last_at) as last_at
         from webhook_failures where hour > $1 - interval '24 hours'
         group by 1, 2 order by 1, 2",
    )
    .bind(now)
    .fetch_all(pool)
    .await?;
    Ok(AdminDashboard {
        businesses: Counted::from(businesses),
        subscriptions,
        trials,
        mrr,
        churn_this_month: churn,
        channels,
        webhook_failures_24h,
    })
}

/// Monthly recurring revenue: minor units per currency over `active` and `past_due`
/// subscriptions (yearly prices count a twelfth).
///
/// # Errors
/// [`sqlx::Error`] when the query fails.
pub async fn mrr(pool: &PgPool) -> Result<Vec<Amount>, sqlx::Error> {
    // language=PostgreSQL
    sqlx::query_as(
        "select currency, sum(monthly_amount)::bigint as amount_minor from subscriptions
         where stripe_status in ('active', 'past_due') and ended_at is null
           and currency is not null and monthly_amount is not null
         group by 1 order by 1",
    )
    .fetch_all(pool)
    .await
}

/// Subscriptions by Stripe status.
///
/// # Errors
/// [`sqlx::Error`] when the query fails.
pub async fn subscriptions_by_status(pool: &PgPool) -> Result<Counted, sqlx::Error> {
    // language=PostgreSQL
    let rows: Vec<StatusCount> = sqlx::query_as(
        "select stripe_status as status, count(*) as count from subscriptions
         where stripe_status is not null group by 1",
    )
    .fetch_all(pool)
    .await?;
    Ok(Counted::from(rows))
}

/// The first instant of `now`'s month, UTC.
fn month_start(now: DateTime<Utc>) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
        .single()
        .unwrap_or(now - Duration::days(i64::from(now.day0())))
}
