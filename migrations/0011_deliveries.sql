-- Deliveries (issue 6): couriers, deliveries with their latest status, location and ETA,
-- and their checkpoints. Names, phones and addresses stay sealed, as in the log. The public
-- tracking page finds a delivery by the SHA-256 of its token (never the token itself).

create table couriers (
    courier_id          uuid primary key,
    tenant_id           uuid not null,
    company_id          uuid not null,
    name_sealed         text not null,
    first_name_sealed   text not null,
    phone_sealed        text not null,
    zones               text[] not null,
    registered_at       timestamptz not null,
    last_position       bigint not null
);
create index couriers_by_company on couriers (company_id);

create table deliveries (
    delivery_id         uuid primary key,
    tenant_id           uuid not null,
    company_id          uuid not null,
    order_reference     text not null,
    address_sealed      text not null,
    conversation_id     uuid,
    -- AfterShip's tags: Pending, InfoReceived, InTransit, OutForDelivery, AttemptFail,
    -- Delivered, AvailableForPickup, Exception, Expired
    status              text not null default 'Pending',
    sub_status          text,
    status_at           timestamptz,
    last_message        text,
    courier_id          uuid,
    eta                 timestamptz,
    last_lat            double precision,
    last_lng            double precision,
    last_location_at    timestamptz,
    token_hash          text unique,
    created_at          timestamptz not null,
    updated_at          timestamptz not null,
    last_position       bigint not null
);
create index deliveries_by_company on deliveries (company_id, created_at desc);
create index deliveries_by_courier on deliveries (courier_id, status);

create table delivery_checkpoints (
    delivery_id         uuid not null references deliveries on delete cascade,
    checkpoint_id       text not null,
    status              text,
    sub_status          text,
    message             text,
    lat                 double precision,
    lng                 double precision,
    eta                 timestamptz,
    occurred_at         timestamptz not null,
    late                boolean not null,
    recorded_at         timestamptz not null,
    position            bigint not null,
    primary key (delivery_id, checkpoint_id)
);
