-- The physical limit for the append benchmark: one event row per transaction into the same
-- `events` table (same indexes), as pgbench drives it:
--   pgbench -n -c 32 -j 2 -T 5 -f scripts/bench/pgbench-append.sql x8_bench
insert into events (event_id, aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
values (gen_random_uuid(), 'pgbench', gen_random_uuid()::text, 1, 'Added', '1.0', '{"writer": 0}', '{"command_id": "x"}');
