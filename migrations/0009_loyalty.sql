-- Loyalty (DOMAIN.md "Loyalty"): read models built by the `loyalty` projection.
-- Points are integers; amounts are integer minor units with their ISO-4217 currency.

-- A business's settings (a row once it configured them; the defaults otherwise).
create table loyalty_programs
(
    tenant_id              uuid primary key,
    cashback_bps           integer not null,
    welcome_bonus_points   bigint  not null,
    referrer_reward_points bigint  not null,
    referred_reward_points bigint  not null,
    expiry_days            integer,
    last_position          bigint  not null
);

-- One row per customer account, with its running totals.
create table loyalty_accounts
(
    account_id       uuid primary key,
    tenant_id        uuid        not null,
    customer_ref     text        not null,
    referral_code    text        not null,
    referred_by      uuid,
    balance          bigint      not null default 0,
    -- Accrued on purchases plus granted (welcome, referrals).
    points_issued    bigint      not null default 0,
    points_redeemed  bigint      not null default 0,
    points_expired   bigint      not null default 0,
    points_reversed  bigint      not null default 0,
    nps              smallint,
    opened_at        timestamptz not null,
    last_activity_at timestamptz not null,
    last_position    bigint      not null
);

create index loyalty_accounts_tenant on loyalty_accounts (tenant_id);

-- Every change of a balance (the account's history) and the purchases (turnover).
create table loyalty_transactions
(
    global_position bigint primary key,
    account_id      uuid        not null,
    tenant_id       uuid        not null,
    kind            text        not null check (kind in
        ('welcome', 'referred', 'referrer', 'purchase', 'redemption', 'reversal', 'expiry')),
    -- The purchase, redemption or reversed purchase reference; the transfer for an expiry.
    reference       text,
    -- Signed: positive when earned, negative when spent, reversed or expired.
    points          bigint      not null,
    -- Purchases and reversals: the purchase's amount.
    amount_minor    bigint,
    currency        text,
    -- Reversals: points of the purchase already spent, which stayed spent.
    shortfall       bigint,
    balance_after   bigint      not null,
    at              timestamptz not null
);

create index loyalty_transactions_account on loyalty_transactions (account_id, global_position);
create index loyalty_transactions_tenant on loyalty_transactions (tenant_id, kind, at);

create table loyalty_promotions
(
    promotion_id       uuid primary key,
    tenant_id          uuid        not null,
    title              text        not null,
    valid_from         timestamptz not null,
    valid_until        timestamptz not null,
    per_customer_limit integer,
    created_at         timestamptz not null,
    removed_at         timestamptz
);

create index loyalty_promotions_tenant on loyalty_promotions (tenant_id, valid_from);

-- Services businesses submit; the admins' moderation queue is the pending ones.
create table loyalty_services
(
    service_id       uuid primary key,
    tenant_id        uuid        not null,
    title            text        not null,
    description      text        not null,
    status           text        not null check (status in ('pending', 'approved', 'rejected')),
    rejection_reason text,
    submitted_at     timestamptz not null,
    decided_at       timestamptz,
    last_position    bigint      not null
);

create index loyalty_services_tenant on loyalty_services (tenant_id);
create index loyalty_services_queue on loyalty_services (submitted_at) where status = 'pending';
