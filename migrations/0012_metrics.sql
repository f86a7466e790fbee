-- Daily metrics and dashboard read models (projections/src/metrics.rs).

-- A business's time zone (IANA name); daily metrics split days by it.
alter table tenants add column time_zone text not null default 'UTC';

-- Which business, company, connection and lead source a stream's figures belong to,
-- recorded from the stream's first event (later events of most streams carry no tenant).
create table metric_dimensions
(
    aggregate_type text not null,
    aggregate_id   text not null,
    tenant_id      uuid not null,
    company_id     uuid,
    channel_id     uuid,
    lead_source    text,
    primary key (aggregate_type, aggregate_id)
);

-- Counters per 15-minute UTC bucket. Every UTC offset in the tz database is a multiple of
-- 15 minutes, so a local day in any zone is a whole number of buckets, and changing a
-- business's zone re-splits its history without a rebuild. Anonymous by construction: no
-- personal field, only ids and numbers.
--   metric: messages_in (detail: text|media|callback), messages_out (detail: TYPE1|TYPE2|
--   TYPE3, amount: cost in micro-euros), conversations_started, replies (amount: response
--   seconds), payments (detail: currency, amount: minor units), deliveries_delivered,
--   deliveries_failed, points_accrued (detail: purchase|welcome|referral, amount: points),
--   points_redeemed (amount: points)
create table metric_buckets
(
    tenant_id    uuid        not null,
    bucket_start timestamptz not null,
    company_id   uuid,
    channel_id   uuid,
    lead_source  text,
    metric       text        not null,
    detail       text        not null default '',
    count        bigint      not null default 0,
    amount       bigint      not null default 0,
    constraint metric_buckets_key unique nulls not distinct
        (tenant_id, bucket_start, company_id, channel_id, lead_source, metric, detail)
);

-- Every first-response time (inbound → the reply that answered it), so percentiles are
-- computed over the samples of any range, never averaged from averages.
create table metric_response_times
(
    global_position bigint primary key,
    tenant_id       uuid        not null,
    at              timestamptz not null,
    company_id      uuid,
    channel_id      uuid,
    lead_source     text,
    secs            bigint      not null
);

create index metric_response_times_tenant on metric_response_times (tenant_id, at);

-- The latest thing that happened in a business (its streams' own times), for the manager
-- dashboard.
create table tenant_activity
(
    tenant_id        uuid primary key,
    last_activity_at timestamptz not null
);

-- Webhook deliveries X8 refused (bad signature, malformed body, unknown connection), per
-- provider, answer code and hour: a bounded counter, not a log of unauthenticated input.
create table webhook_failures
(
    provider   text        not null,
    code       text        not null,
    hour       timestamptz not null,
    failures   bigint      not null,
    last_at    timestamptz not null,
    primary key (provider, code, hour)
);
