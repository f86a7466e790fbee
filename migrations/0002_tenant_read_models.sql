-- Read models of the tenant slice, built by the `tenants` projection.
create table tenants
(
    tenant_id           uuid primary key,
    name                text        not null,
    status              text        not null,
    plan                text        not null,
    subscription_status text        not null,
    channel_limit       integer,
    trial_ends_at       timestamptz,
    manager_id          uuid,
    owner_user_id       uuid        not null,
    registered_at       timestamptz not null,
    last_position       bigint      not null
);

create index tenants_manager on tenants (manager_id) where manager_id is not null;

-- manager -> its businesses. A business appears at most once (its primary key).
create table manager_clients
(
    tenant_id     uuid primary key,
    manager_id    uuid        not null,
    assigned_at   timestamptz not null,
    last_position bigint      not null
);

create index manager_clients_manager on manager_clients (manager_id);
