//! The composition root: wires the event store, the command buses and the projection runner
//! into the state every handler shares, and builds the router with its middleware.

use crate::auth::{AuthKeys, Caller};
use crate::error::ApiError;
use crate::extract::MAX_BODY_BYTES;
use crate::routes;
use axum::extract::{DefaultBodyLimit, MatchedPath};
use axum::http::Request;
use axum::Router;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use uuid::Uuid;
use x8_commands::vault::MasterKey;
use x8_commands::{Clock, CommandContext, Commands};
use x8_eventstore::{Actor, EventStore};
use x8_projections::runner::WaitError;
use x8_projections::ProjectionRunner;

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The command buses.
    pub commands: Commands,
    /// The projection runner (lag, read-your-writes).
    pub projections: ProjectionRunner,
    /// The pool, for read-model queries.
    pub pool: PgPool,
    /// JWT keys.
    pub auth: Arc<AuthKeys>,
    /// Longest wait for `X-Min-Position`.
    pub min_position_timeout: Duration,
    /// `X8_WAHA_WEBHOOK_SECRET`: when set, WAHA webhooks must be signed with it.
    pub waha_webhook_secret: Option<secrecy::SecretString>,
    /// How Stripe webhooks are verified.
    pub stripe_webhook: StripeWebhook,
    /// Live changes for tracking pages.
    pub tracking: Arc<crate::tracking_feed::TrackingFeed>,
    /// `X8_METRICS_TOKEN`: when set, `GET /metrics` needs it as a bearer token.
    pub metrics_token: Option<secrecy::SecretString>,
    /// Limits on login and registration per client address.
    pub auth_rate: crate::rate_limit::AuthRateLimit,
    /// `X8_AUTHORIZATION_MAX_AGE_MS`: how old the business state an authorization reads
    /// may be (see [`crate::routes::authorize_tenant`]).
    pub authorization_max_age: Duration,
}

/// Default of [`AppState::authorization_max_age`]: one second.
pub const DEFAULT_AUTHORIZATION_MAX_AGE: Duration = Duration::from_secs(1);

/// `X8_STRIPE_WEBHOOK_SECRET` and `X8_STRIPE_TOLERANCE_SECS`.
#[derive(Clone)]
pub struct StripeWebhook {
    /// The signing secrets (several during a rotation); none refuses every delivery.
    pub secrets: Vec<secrecy::SecretString>,
    /// Oldest accepted signature timestamp, in seconds.
    pub tolerance_secs: i64,
}

impl Default for StripeWebhook {
    fn default() -> Self {
        Self {
            secrets: Vec::new(),
            tolerance_secs: x8_commands::stripe::signature::DEFAULT_TOLERANCE_SECS,
        }
    }
}

impl AppState {
    /// State over `store`, with every projection registered (not started: call
    /// [`ProjectionRunner::spawn`] to keep them caught up).
    ///
    /// # Errors
    /// [`sqlx::Error`] when the checkpoint rows cannot be created.
    pub async fn new(
        store: &EventStore,
        auth: AuthKeys,
        clock: Arc<dyn Clock>,
        master_key: MasterKey,
        min_position_timeout: Duration,
    ) -> Result<Self, sqlx::Error> {
        crate::prometheus::handle();
        let projections = ProjectionRunner::new(store.clone(), x8_projections::all());
        projections.register().await?;
        Ok(Self {
            commands: Commands::new(store, clock, master_key),
            projections,
            pool: store.pool().clone(),
            auth: Arc::new(auth),
            min_position_timeout,
            waha_webhook_secret: None,
            stripe_webhook: StripeWebhook::default(),
            tracking: Arc::new(crate::tracking_feed::TrackingFeed::new(
                store.pool().clone(),
            )),
            metrics_token: None,
            auth_rate: crate::rate_limit::AuthRateLimit::default(),
            authorization_max_age: DEFAULT_AUTHORIZATION_MAX_AGE,
        })
    }

    /// The command context of a request: the caller (or anonymous), the request id as
    /// correlation id, and the client's idempotency key scoped to the caller.
    pub fn context(
        &self,
        caller: Option<&Caller>,
        key: Option<String>,
        request_id: Uuid,
    ) -> CommandContext {
        let actor = caller.map_or(Actor::Anonymous, Caller::actor);
        let scope = caller.map_or("anonymous".to_string(), |c| c.user_id.to_string());
        let ctx = CommandContext::new(actor).correlated(request_id);
        match key {
            Some(key) => ctx.with_idempotency_key(&scope, &key),
            None => ctx,
        }
    }

    /// Waits until `projection` reflects global `position` (read-your-writes).
    ///
    /// # Errors
    /// 503 `projection_lagging` after the configured timeout.
    pub async fn wait_for(&self, projection: &'static str, position: i64) -> Result<(), ApiError> {
        match self
            .projections
            .wait_for(projection, position, self.min_position_timeout)
            .await
        {
            Ok(()) => Ok(()),
            Err(e @ WaitError::Lagging { .. }) => Err(ApiError::projection_lagging(e.to_string())),
            Err(WaitError::Database(e)) => Err(ApiError::internal(e)),
        }
    }
}

/// The whole API: routes, 1 MiB body limit, `x-request-id` set and echoed, and a trace
/// span per request carrying the request id and the matched route.
pub fn router(state: AppState) -> Router {
    let trace = TraceLayer::new_for_http()
        .make_span_with(|request: &Request<_>| {
            let matched_path = request
                .extensions()
                .get::<MatchedPath>()
                .map(MatchedPath::as_str)
                .unwrap_or("");
            let request_id = request
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            tracing::info_span!("request", method = %request.method(), matched_path, request_id)
        })
        .on_response(DefaultOnResponse::new().level(Level::INFO));
    Router::new()
        .merge(routes::health::router())
        .merge(crate::openapi::router())
        .route("/metrics", axum::routing::get(crate::prometheus::scrape))
        .nest(
            "/api/v1",
            Router::new()
                .merge(routes::admin::router())
                .merge(routes::auth::router(&state))
                .merge(routes::billing::router())
                .merge(routes::orders::router())
                .merge(routes::loyalty::router())
                .merge(routes::channels::router())
                .merge(routes::companies::router())
                .merge(routes::conversations::router())
                .merge(routes::dashboards::router())
                .merge(routes::tenants::router(&state))
                .merge(routes::managers::router())
                .merge(routes::metrics::router())
                .merge(routes::deliveries::router())
                .merge(routes::erasures::router())
                .merge(routes::webhooks::router(&state)),
        )
        .merge(routes::tracking::router())
        .fallback(|| async { ApiError::not_found() })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(trace)
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}
