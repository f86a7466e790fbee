//! # X8 API
//!
//! The HTTP surface of X8 core (axum 0.8). Handlers are thin: extract, build the command,
//! call the command layer, map the result. Every error is an RFC 9457
//! `application/problem+json` body with a stable `code`.
//!
//! # Layout
//! - [`settings`]: configuration from `X8_*` environment variables and `DATABASE_URL`.
//! - [`error`]: [`ApiError`](error::ApiError), the one error type of the API.
//! - [`extract`]: JSON bodies, `Idempotency-Key` and `X-Min-Position`.
//! - [`auth`]: JWT access and refresh tokens (HS256) and the signed-in caller.
//! - [`routes`]: one module per resource, each with its `router()`.
//! - [`queries`]: the larger read-side queries (daily metrics, dashboards).
//! - [`telemetry`]: tracing set-up (text or JSON lines).
//! - [`tracking_feed`]: live changes for public tracking pages (`LISTEN x8_tracking`).
//! - [`openapi`]: the OpenAPI 3.1 document and Swagger UI.
//! - [`prometheus`]: the Prometheus exposition at `/metrics`.
//! - [`rate_limit`]: per-address limits on login and registration.
//! - [`webhook_failures`]: counting refused webhook deliveries.
//! - [`app`]: wiring the event store, command buses and projections into [`AppState`].

pub mod app;
pub mod auth;
pub mod error;
pub mod extract;
pub mod openapi;
pub mod prometheus;
pub mod queries;
pub mod rate_limit;
pub mod routes;
pub mod settings;
pub mod telemetry;
pub mod tracking_feed;
pub mod webhook_failures;

pub use app::{router, AppState};
