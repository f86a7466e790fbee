-- Channel connections and plan usage: read models built by the `tenants`, `channels`
-- and `meta_apps` projections.

-- Usage on the tenant row (GET /tenants/{id}/usage).
alter table tenants
    add column channels_used integer not null default 0,
    add column over_limit    boolean not null default false;

-- One row per channel connection, removed ones included (removed_at set).
create table channels
(
    channel_id    uuid primary key,
    tenant_id     uuid        not null,
    company_id    uuid        not null,
    platform      text        not null,
    status        text        not null,
    raw_status    text,
    last_error    text,
    error_count   integer     not null default 0,
    meta_app_id   uuid,
    has_credentials boolean   not null default false,
    created_at    timestamptz not null,
    removed_at    timestamptz,
    last_position bigint      not null
);

create index channels_company on channels (company_id) where removed_at is null;
create index channels_tenant on channels (tenant_id);

-- The Meta app pool, for admins.
create table meta_apps
(
    app_id        uuid primary key,
    meta_app_id   text        not null unique,
    name          text        not null,
    channel_id    uuid,
    tenant_id     uuid,
    registered_at timestamptz not null,
    last_position bigint      not null
);
