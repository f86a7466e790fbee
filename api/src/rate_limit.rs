//! Rate limits on the unauthenticated entry points (login, registration), per client
//! address, with `tower_governor` (GCRA). Over the limit: 429 `rate_limited` problem with
//! `Retry-After` in seconds. Webhooks are not limited (providers retry in bursts); their
//! bodies are capped like every body.
//!
//! Settings: `X8_AUTH_RATE_PER_MINUTE` (default 20), `X8_AUTH_RATE_BURST` (default 10),
//! `X8_TRUST_FORWARDED_FOR` (default false: the peer address; true behind a reverse proxy
//! that sets `X-Forwarded-For` / `X-Real-IP` / `Forwarded`, whose first address is used).

use crate::error::ApiError;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use axum::response::IntoResponse;
use governor::clock::QuantaInstant;
use governor::middleware::NoOpMiddleware;
use std::net::IpAddr;
use std::time::Duration;
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::key_extractor::{KeyExtractor, PeerIpKeyExtractor, SmartIpKeyExtractor};
use tower_governor::{GovernorError, GovernorLayer};

/// How fast one client address may call the limited routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthRateLimit {
    /// Sustained requests per minute (≥ 1).
    pub per_minute: u32,
    /// Requests allowed at once before the rate applies (≥ 1).
    pub burst: u32,
    /// Key on the forwarding headers' client address instead of the peer's.
    pub trust_forwarded_for: bool,
}

impl Default for AuthRateLimit {
    fn default() -> Self {
        Self {
            per_minute: 20,
            burst: 10,
            trust_forwarded_for: false,
        }
    }
}

/// The client address, from the connection or, when trusted, the forwarding headers.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress {
    trust_forwarded_for: bool,
}

impl KeyExtractor for ClientAddress {
    type Key = IpAddr;

    fn extract<T>(&self, req: &Request<T>) -> Result<Self::Key, GovernorError> {
        if self.trust_forwarded_for {
            SmartIpKeyExtractor.extract(req)
        } else {
            PeerIpKeyExtractor.extract(req)
        }
    }
}

/// The limiter layer of one route (each route counts on its own). A background task
/// forgets idle addresses every minute, so memory stays bounded.
pub fn layer(
    limit: AuthRateLimit,
) -> GovernorLayer<ClientAddress, NoOpMiddleware<QuantaInstant>, Body> {
    // At most u32::MAX per minute: the period stays ≥ 13 ns, never zero.
    let period = Duration::from_nanos(60_000_000_000 / u64::from(limit.per_minute.max(1)));
    let config = GovernorConfigBuilder::default()
        .period(period)
        .burst_size(limit.burst.max(1))
        .key_extractor(ClientAddress {
            trust_forwarded_for: limit.trust_forwarded_for,
        })
        .finish()
        .unwrap_or_else(|| unreachable!("period and burst are at least 1"));
    let limiter = config.limiter().clone();
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(60));
            loop {
                every.tick().await;
                limiter.retain_recent();
            }
        });
    }
    GovernorLayer::new(config).error_handler(problem)
}

fn problem(error: GovernorError) -> Response<Body> {
    match error {
        GovernorError::TooManyRequests { wait_time, .. } => {
            ApiError::rate_limited(wait_time.max(1)).into_response()
        }
        GovernorError::UnableToExtractKey => ApiError::new(
            StatusCode::BAD_REQUEST,
            "client_address_unknown",
            "the client address could not be read from the connection or its headers",
        )
        .into_response(),
        GovernorError::Other { code, msg, .. } => {
            ApiError::new(code, "rate_limited", msg.unwrap_or_default()).into_response()
        }
    }
}
