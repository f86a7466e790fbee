-- Payments (DOMAIN.md "Payments"): read models built by the `billing` projection.

-- One row per tenant that has a Stripe subscription or started a checkout.
create table subscriptions
(
    tenant_id            uuid primary key,
    subscription_id      text,
    customer_id          text,
    stripe_status        text,
    -- The plan of the price; null for a price not in X8_STRIPE_PRICE_PLANS.
    plan                 text,
    price_id             text,
    unit_amount          bigint,
    currency             text,
    -- Minor units per month (yearly prices / 12, …), for MRR.
    monthly_amount       bigint,
    current_period_end   timestamptz,
    cancel_at_period_end boolean     not null default false,
    ended_at             timestamptz,
    last_paid_at         timestamptz,
    failed_invoice_id    text,
    failed_attempts      integer,
    next_attempt_at      timestamptz,
    last_failure_at      timestamptz,
    checkouts_started    integer     not null default 0,
    observed_at          timestamptz,
    last_position        bigint      not null
);

create index subscriptions_status on subscriptions (stripe_status);

-- The tenants' Stripe Connect accounts.
create table connect_accounts
(
    tenant_id         uuid primary key,
    account_id        text,
    origin            text,
    charges_enabled   boolean not null default false,
    payouts_enabled   boolean not null default false,
    details_submitted boolean not null default false,
    requirements_due  jsonb   not null default '[]',
    disabled_reason   text,
    commission_bps    integer not null default 0,
    last_position     bigint  not null
);

-- The purchase log: one row per order.
create table orders
(
    order_id           uuid primary key,
    tenant_id          uuid        not null,
    company_id         uuid        not null,
    customer_ref       text        not null,
    amount_minor       bigint      not null,
    currency           text        not null,
    description        text        not null,
    status             text        not null,
    payment_link_url   text,
    account_id         text,
    payment_ref        text,
    commission_minor   bigint      not null default 0,
    amount_paid_minor  bigint,
    duplicate_payments integer     not null default 0,
    failure_reason     text,
    created_at         timestamptz not null,
    link_sent_at       timestamptz,
    paid_at            timestamptz,
    refunded_at        timestamptz,
    last_position      bigint      not null
);

create index orders_tenant on orders (tenant_id, created_at desc);
create index orders_company on orders (company_id, status);

-- Provider events that matched no tenant, order or account.
create table unmatched_provider_events
(
    provider    text        not null,
    event_id    text        not null,
    event_type  text        not null,
    object_id   text,
    reason      text        not null,
    received_at timestamptz not null,
    primary key (provider, event_id)
);
