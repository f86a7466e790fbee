//! The Prometheus exposition at `GET /metrics` (the `metrics` facade with
//! `metrics-exporter-prometheus`):
//! - `x8_commands_total{aggregate, command, outcome}` (counter, from the command bus);
//! - `x8_append_seconds{outcome}` (histogram of event-log appends);
//! - `x8_webhooks_total{provider, outcome}` (counter);
//! - `x8_projection_lag_events{projection}`, `x8_projection_lag_seconds{projection}`
//!   (gauges, read at scrape time);
//! - `x8_deadlines{state}` (gauge: `pending`, `due` — pending and past their time — and
//!   `failed`, read at scrape time).
//!
//! With `X8_METRICS_TOKEN` set the scrape needs `Authorization: Bearer <token>` (401
//! `unauthorized` otherwise); without it the endpoint is open, for a private network.

use crate::app::AppState;
use crate::error::ApiError;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// Append latency buckets, seconds.
const APPEND_BUCKETS: [f64; 12] = [
    0.000_5, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder, installed as the global `metrics` recorder on first use (a
/// second app in the same process, as in tests, shares it).
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(x8_eventstore::append::APPEND_SECONDS.to_string()),
                &APPEND_BUCKETS,
            )
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was installed already; /metrics shows ours only");
        }
        handle
    })
}

/// `GET /metrics`: the text exposition format.
///
/// # Errors
/// 401 `unauthorized` when `X8_METRICS_TOKEN` is set and not presented; 500 when the
/// scrape-time gauges cannot be read.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    security((), ("metrics_token" = [])),
    responses(
        (status = 200, description = "Prometheus text exposition format (version 0.0.4)",
            content_type = "text/plain", body = String),
        crate::openapi::Problems,
    ))]
pub async fn scrape(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    if let Some(expected) = &state.metrics_token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        // Compared as digests: constant length, no early exit on the secret's bytes.
        if Sha256::digest(presented.as_bytes())
            != Sha256::digest(expected.expose_secret().as_bytes())
        {
            return Err(ApiError::unauthorized());
        }
    }
    for projection in state.projections.projections() {
        let name = projection.name();
        let lag = state.projections.lag(name).await?;
        metrics::gauge!("x8_projection_lag_events", "projection" => name).set(lag.events as f64);
        metrics::gauge!("x8_projection_lag_seconds", "projection" => name).set(lag.seconds);
    }
    // language=PostgreSQL
    let (pending, due, failed): (i64, i64, i64) = sqlx::query_as(
        "select count(*) filter (where status = 'pending'),
                count(*) filter (where status = 'pending' and due_at <= $1),
                count(*) filter (where status = 'failed')
         from deadlines",
    )
    .bind(state.commands.clock.now())
    .fetch_one(&state.pool)
    .await?;
    for (label, count) in [("pending", pending), ("due", due), ("failed", failed)] {
        metrics::gauge!("x8_deadlines", "state" => label).set(count as f64);
    }
    let handle = handle();
    handle.run_upkeep();
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    ))
}
