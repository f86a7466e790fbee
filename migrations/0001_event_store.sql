-- The event log: one append-only table for every stream.
--
-- Order: `global_position` is assigned at insert time, so it is NOT commit order. Readers of
-- `$all` order by (transaction_id, global_position) and only read below the read horizon
-- `pg_snapshot_xmin(pg_current_snapshot())`: every transaction with a smaller id has ended,
-- so no row can ever appear behind a reader's checkpoint (see eventstore/src/all.rs).
create table events
(
    global_position bigint generated always as identity primary key,
    transaction_id  xid8        not null default pg_current_xact_id(),
    event_id        uuid        not null,
    aggregate_type  text        not null,
    aggregate_id    text        not null,
    sequence        bigint      not null check (sequence > 0),
    event_type      text        not null,
    event_version   text        not null,
    tenant_id       uuid,
    payload         jsonb       not null,
    metadata        jsonb       not null,
    recorded_at     timestamptz not null default now(),
    constraint events_stream_sequence_key unique (aggregate_type, aggregate_id, sequence),
    constraint events_event_id_key unique (event_id)
);

-- $all in commit-safe order, and the same filtered by tenant or event type.
create index events_all_order on events (transaction_id, global_position);
create index events_tenant_order on events (tenant_id, transaction_id, global_position) where tenant_id is not null;
create index events_type_order on events (event_type, transaction_id, global_position);

-- Every executed command, recorded in the same statement as its events: the idempotency
-- record. The same command id twice appends once; the second caller reads this row.
create table commands
(
    command_id     uuid primary key,
    command_name   text        not null,
    fingerprint    text        not null,
    aggregate_type text        not null,
    aggregate_id   text        not null,
    first_position bigint      not null,
    last_position  bigint      not null,
    event_count    integer     not null,
    recorded_at    timestamptz not null default now()
);

-- Aggregate snapshots, one row per stream, taken every N events.
create table snapshots
(
    aggregate_type   text        not null,
    aggregate_id     text        not null,
    last_sequence    bigint      not null check (last_sequence > 0),
    snapshot_version bigint      not null check (snapshot_version > 0),
    payload          jsonb       not null,
    recorded_at      timestamptz not null default now(),
    primary key (aggregate_type, aggregate_id)
);

-- One checkpoint per projection: the (transaction_id, global_position) of the last event
-- applied, advanced in the same transaction as the read model.
create table projection_checkpoints
(
    projection_name text primary key,
    transaction_id  xid8        not null default '0'::xid8,
    global_position bigint      not null default 0,
    updated_at      timestamptz not null default now()
);
