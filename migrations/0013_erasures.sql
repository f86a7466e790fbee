-- Hard delete (DOMAIN.md "Hard delete"; projections/src/erasures.rs).

-- A business's pending erasure on its row, for its dashboard and the operators.
alter table tenants
    add column erasure_id         uuid,
    add column erasure_not_before timestamptz;

-- The erasure certificates: one row per erasure asked for, kept after the business's own
-- rows are deleted. Ids, times and outcomes only: nothing personal.
create table erasures
(
    erasure_id    uuid primary key,
    tenant_id     uuid        not null,
    status        text        not null
        check (status in ('requested', 'cancelled', 'running', 'completed')),
    requested_by  uuid        not null,
    requested_at  timestamptz not null,
    not_before    timestamptz not null,
    cancelled_by  uuid,
    cancelled_at  timestamptz,
    started_at    timestamptz,
    tenant_erased_at timestamptz,
    completed_at  timestamptz,
    last_position bigint      not null
);

create index erasures_tenant on erasures (tenant_id);

-- Each step of an erasure in the order it was planned, with its outcome once it has one
-- (done | nothing_to_do | not_configured | manual_action_required) and the failed calls of
-- an external cleanup.
create table erasure_steps
(
    erasure_id   uuid        not null references erasures on delete cascade,
    position     integer     not null,
    kind         text        not null,
    subject      text        not null,
    outcome      text,
    failures     integer     not null default 0,
    last_error   text,
    retry_at     timestamptz,
    completed_at timestamptz,
    primary key (erasure_id, kind, subject)
);

create index erasure_steps_order on erasure_steps (erasure_id, position);
