-- The credentials vault's data keys (envelope encryption; see commands/src/vault.rs).
-- One AES-256 data key per tenant (the nil uuid is the platform's own scope, for staff),
-- stored wrapped by the master key (X8_MASTER_KEY): nonce (12 bytes) || AES-256-GCM
-- ciphertext with tag. Not in the event log on purpose: erasing a tenant destroys its key
-- here (crypto-shredding) and keeps a tombstone, so the key is never silently re-created.
create table data_keys
(
    scope        uuid primary key,
    wrapped_key  bytea,
    created_at   timestamptz not null default now(),
    destroyed_at timestamptz,
    constraint data_keys_destroyed check ((wrapped_key is null) = (destroyed_at is not null))
);
