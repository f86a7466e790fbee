-- The WhatsApp session lifecycle on the `channels` read model.
alter table channels
    add column qr_attempts          integer not null default 0,
    add column pairing_code_offered boolean not null default false,
    add column reconnect_attempts   integer not null default 0,
    add column reconnect_due_at     timestamptz;
