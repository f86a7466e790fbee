#![allow(clippy::unwrap_used)]
//! End-to-end tests against the real PostgreSQL. Each test gets its own fresh database
//! from `#[sqlx::test]`, with the migrations applied, so tests run in parallel.

mod bad_input;
mod billing;
mod channels;
mod companies;
mod conversations;
mod dashboards;
mod deadlines;
mod deliveries;
mod erasure;
mod event_log;
mod idempotency;
mod loyalty;
mod metrics;
mod operations;
mod projections;
mod replay;
mod tenants_api;
mod vault;
mod waha;
