//! Counting refused webhook deliveries: every non-2xx answer of a webhook route goes to
//! `x8_webhooks_total{provider, outcome=<problem code>}` and to the `webhook_failures`
//! table (one counter per provider, code and hour, so unauthenticated senders cannot grow
//! it), which the admin dashboard reads. Accepted deliveries are counted by the handlers
//! with their outcome (`recorded`, `ignored`, `unmatched`).

use crate::app::AppState;
use crate::error::ProblemCode;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// The providers with webhook routes, as metric labels.
const PROVIDERS: [&str; 5] = ["stripe", "waha", "telegram", "viber", "infobip"];

/// Middleware for the webhook routes (`route_layer`, so unknown paths are not counted).
pub async fn record(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let provider = provider_of(request.uri().path());
    let response = next.run(request).await;
    if !response.status().is_success() {
        let code = response
            .extensions()
            .get::<ProblemCode>()
            .map_or("unknown", |code| code.0);
        metrics::counter!("x8_webhooks_total", "provider" => provider, "outcome" => code)
            .increment(1);
        let now = state.commands.clock.now();
        if let Err(e) = store(&state.pool, provider, code, now).await {
            tracing::warn!(error = %e, provider, code, "could not count a webhook failure");
        }
    }
    response
}

/// The provider named after `webhooks/` in `path`.
fn provider_of(path: &str) -> &'static str {
    let segment = path
        .split('/')
        .skip_while(|s| *s != "webhooks")
        .nth(1)
        .unwrap_or_default();
    PROVIDERS
        .into_iter()
        .find(|p| *p == segment)
        .unwrap_or("unknown")
}

async fn store(
    pool: &PgPool,
    provider: &str,
    code: &str,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    // language=PostgreSQL
    sqlx::query(
        "insert into webhook_failures as f (provider, code, hour, failures, last_at)
         values ($1, $2, date_trunc('hour', $3), 1, $3)
         on conflict (provider, code, hour)
         do update set failures = f.failures + 1, last_at = greatest(f.last_at, excluded.last_at)",
    )
    .bind(provider)
    .bind(code)
    .bind(at)
    .execute(pool)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::provider_of;

    #[test]
    fn the_provider_is_the_segment_after_webhooks() {
        assert_eq!(provider_of("/webhooks/telegram/abc"), "telegram");
        assert_eq!(provider_of("/api/v1/webhooks/stripe"), "stripe");
        assert_eq!(provider_of("/api/v1/webhooks/evil"), "unknown");
    }
}
