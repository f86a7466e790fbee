//! # X8 end-to-end test support
//!
//! [`TestApp`] runs the real router against a fresh PostgreSQL database (one per test,
//! made by `#[sqlx::test]`), with the projection runner following `$all`, and offers one
//! method per endpoint. [`telegram`] and [`stripe`] build the providers' payloads. [`counter`] is a tiny aggregate for event-store tests; [`bench`]
//! holds what the benchmarks share.

pub mod bench;
pub mod counter;
pub mod stripe;
pub mod telegram;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use secrecy::SecretString;
use serde_json::{json, Value};
use sqlx::postgres::PgConnectOptions;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;
use uuid::Uuid;
use x8_api::auth::AuthKeys;
use x8_api::AppState;
use x8_commands::{CommandContext, SystemClock};
use x8_domain::user::Role;
use x8_eventstore::{Actor, EventStore};

/// The JWT secret of every test app.
pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123456789";
/// The master key of test apps (fixed, so an app restarted on the same database opens
/// the data keys the first one made).
pub const MASTER_KEY: &str = "dGVzdC1tYXN0ZXIta2V5LXRlc3QtbWFzdGVyLWtleSE=";
/// The password of every account the helpers create.
pub const PASSWORD: &str = "correct horse battery staple";

/// Opens a pool of `size` connections on the test database `#[sqlx::test]` made.
pub async fn test_pool(connect: PgConnectOptions, size: u32) -> PgPool {
    x8_eventstore::pool::pool_options(size)
        .connect_with(connect)
        .await
        .expect("connect to the test database")
}

/// An HTTP response, read whole.
#[derive(Debug, Clone)]
pub struct TestResponse {
    /// Status.
    pub status: StatusCode,
    /// `Content-Type`, if any.
    pub content_type: Option<String>,
    /// Body as JSON (`Null` when empty or not JSON).
    pub body: Value,
    /// Body as text (lossy UTF-8).
    pub text: String,
    /// Headers.
    pub headers: axum::http::HeaderMap,
}

impl TestResponse {
    /// The problem's `code` member.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
    /// Asserts a problem+json response with `status` and `code`.
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "status of {:?}", self.body);
        assert_eq!(
            self.content_type.as_deref(),
            Some("application/problem+json")
        );
        assert_eq!(self.code(), code, "code of {:?}", self.body);
        assert_eq!(self.body["status"], json!(status));
    }
}

/// The app under test.
pub struct TestApp {
    /// The router (called in-process with `oneshot`).
    pub router: Router,
    /// The state behind it.
    pub state: AppState,
    /// The event store.
    pub store: EventStore,
}

impl TestApp {
    /// The app on a fresh database with projections running.
    pub async fn spawn(connect: PgConnectOptions) -> Self {
        Self::spawn_with(connect, Duration::from_secs(5)).await
    }

    /// As [`Self::spawn`] with a custom `X-Min-Position` timeout.
    pub async fn spawn_with(connect: PgConnectOptions, min_position_timeout: Duration) -> Self {
        Self::spawn_full(connect, min_position_timeout, Arc::new(SystemClock)).await
    }

    /// As [`Self::spawn`] with the given clock.
    pub async fn spawn_with_clock(
        connect: PgConnectOptions,
        clock: Arc<dyn x8_commands::Clock>,
    ) -> Self {
        Self::spawn_full(connect, Duration::from_secs(5), clock).await
    }

    async fn spawn_full(
        connect: PgConnectOptions,
        min_position_timeout: Duration,
        clock: Arc<dyn x8_commands::Clock>,
    ) -> Self {
        let pool = test_pool(connect, 20).await;
        let store = EventStore::new(pool).with_upcasters(x8_domain::upcasters::all);
        let state = AppState::new(
            &store,
            AuthKeys::new(&SecretString::from(JWT_SECRET)),
            clock,
            x8_commands::vault::MasterKey::from_base64(MASTER_KEY).expect("test master key"),
            min_position_timeout,
        )
        .await
        .expect("app state");
        let mut state = state;
        state.auth_rate = UNLIMITED;
        state.projections.spawn();
        Self {
            router: test_router(&state),
            state,
            store,
        }
    }

    /// The same app with login and registration limited to `limit` per client address
    /// (every test request comes from 127.0.0.1 unless `x-forwarded-for` is trusted).
    pub fn with_auth_rate(mut self, limit: x8_api::rate_limit::AuthRateLimit) -> Self {
        self.state.auth_rate = limit;
        self.router = test_router(&self.state);
        self
    }

    /// The same app reading business state for authorization at most `max_age` old.
    pub fn with_authorization_max_age(mut self, max_age: Duration) -> Self {
        self.state.authorization_max_age = max_age;
        self.router = test_router(&self.state);
        self
    }

    /// Points WhatsApp at the WAHA server at `url` (a local fake) and, with `secret`,
    /// requires signed WAHA webhooks.
    pub fn with_waha(mut self, url: &str, secret: Option<&str>) -> Self {
        let webhook = secret.map(|s| {
            (
                "http://x8.test/api/v1/webhooks/waha".to_string(),
                Some(SecretString::from(s)),
            )
        });
        let waha =
            x8_commands::waha::WahaHttp::new(url, Some(SecretString::from("waha-key")), webhook);
        self.state.commands = self.state.commands.clone().with_waha(Arc::new(waha));
        self.state.waha_webhook_secret = secret.map(SecretString::from);
        self.router = test_router(&self.state);
        self
    }

    /// Sends Telegram and Viber replies to the server at `url` (a local fake).
    pub fn with_bot_apis(mut self, url: &str) -> Self {
        self.state.commands =
            self.state
                .commands
                .clone()
                .with_provider_urls(x8_commands::sending::ProviderUrls {
                    telegram: url.to_string(),
                    viber: url.to_string(),
                });
        self.router = test_router(&self.state);
        self
    }

    /// Points Stripe at the server at `url` (a local fake), verifies Stripe webhooks with
    /// `secrets`, and maps prices with `prices` (`X8_STRIPE_PRICE_PLANS` syntax).
    pub fn with_stripe(mut self, url: &str, secrets: &[&str], prices: &str) -> Self {
        let api = x8_commands::stripe::StripeHttp::new(url, SecretString::from("sk_test_x8"));
        self.state.commands =
            self.state
                .commands
                .clone()
                .with_billing(x8_commands::billing::BillingConfig {
                    api: Arc::new(api),
                    prices: x8_commands::stripe::PricePlans::parse(prices).expect("prices"),
                    app_url: "https://app.x8.test".into(),
                });
        self.state.stripe_webhook = x8_api::app::StripeWebhook {
            secrets: secrets.iter().map(|s| SecretString::from(*s)).collect(),
            tolerance_secs: 300,
        };
        self.router = test_router(&self.state);
        self
    }

    /// Sends the hard delete's external cleanups to `url` (a local fake):
    /// `{url}/n8n`, `{url}/kb` and `{url}/media`, each only when listed in `targets`.
    pub fn with_cleanups(
        mut self,
        url: &str,
        targets: &[x8_domain::erasure::CleanupTarget],
    ) -> Self {
        use x8_domain::erasure::CleanupTarget as T;
        let urls = targets
            .iter()
            .map(|target| {
                let path = match target {
                    T::Automations => "n8n",
                    T::KnowledgeBases => "kb",
                    T::Media => "media",
                };
                (*target, format!("{url}/{path}"))
            })
            .collect();
        let cleanups = x8_commands::erasure::HttpCleanups::new(urls, None);
        self.state.commands = self
            .state
            .commands
            .clone()
            .with_cleanups(Arc::new(cleanups));
        self.router = test_router(&self.state);
        self
    }

    /// Begins hard deletes `hours` after they are asked for.
    pub fn with_erasure_grace(mut self, hours: i64) -> Self {
        self.state.commands = self
            .state
            .commands
            .clone()
            .with_erasure_grace(chrono::Duration::hours(hours));
        self.router = test_router(&self.state);
        self
    }

    /// `DELETE /api/v1/tenants/{id}`, with the owner's `password` when given.
    pub async fn erase(&self, token: &str, tenant: Uuid, password: Option<&str>) -> TestResponse {
        let body = password.map(|p| json!({ "password": p }).to_string());
        self.send(
            Method::DELETE,
            &format!("/api/v1/tenants/{tenant}"),
            Some(token),
            &[],
            body,
        )
        .await
    }

    /// Waits until every projection applied the whole log.
    pub async fn caught_up(&self) {
        let position = self.max_position().await;
        for projection in self.state.projections.projections() {
            self.state
                .projections
                .wait_for(projection.name(), position, Duration::from_secs(10))
                .await
                .expect("projections catch up");
        }
    }

    /// Delivers `event` to `POST /api/v1/webhooks/stripe`, signed with `secret` at the
    /// app clock's now.
    pub async fn stripe_webhook(&self, event: &Value, secret: &str) -> TestResponse {
        let body = event.to_string();
        let now = self.state.commands.clock.now().timestamp();
        let signature =
            x8_commands::stripe::signature::sign(body.as_bytes(), &SecretString::from(secret), now);
        self.send(
            Method::POST,
            "/api/v1/webhooks/stripe",
            None,
            &[("stripe-signature", &signature)],
            Some(body),
        )
        .await
    }

    /// Sends a request. `body` is sent as JSON text when it is a `Value`.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> TestResponse {
        // Every test request comes from 127.0.0.1, as a served connection's would.
        let peer = std::net::SocketAddr::from(([127, 0, 0, 1], 40_000));
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .extension(axum::extract::ConnectInfo(peer));
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(body.map_or_else(Body::empty, Body::from))
            .expect("request");
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("response");
        let status = response.status();
        let headers = response.headers().clone();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        TestResponse {
            status,
            content_type,
            body,
            text: String::from_utf8_lossy(&bytes).into_owned(),
            headers,
        }
    }

    /// `POST /api/v1/tenants`.
    pub async fn register_tenant(
        &self,
        name: &str,
        email: &str,
        key: Option<&str>,
    ) -> TestResponse {
        let headers: Vec<(&str, &str)> = key.map(|k| ("idempotency-key", k)).into_iter().collect();
        let body = json!({"name": name, "owner_email": email, "owner_password": PASSWORD});
        self.send(
            Method::POST,
            "/api/v1/tenants",
            None,
            &headers,
            Some(body.to_string()),
        )
        .await
    }

    /// Registers a business and returns `(tenant_id, owner's access token)`.
    pub async fn tenant_with_owner(&self, name: &str, email: &str) -> (Uuid, String) {
        let response = self.register_tenant(name, email, None).await;
        assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
        let tenant_id = response.body["tenant_id"]
            .as_str()
            .expect("tenant_id")
            .parse()
            .expect("uuid");
        (tenant_id, self.login(email).await)
    }

    /// `POST /api/v1/auth/login` with [`PASSWORD`]; returns the access token.
    pub async fn login(&self, email: &str) -> String {
        let response = self.login_response(email, PASSWORD).await;
        assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
        response.body["access_token"]
            .as_str()
            .expect("token")
            .to_string()
    }

    /// `POST /api/v1/auth/login`.
    pub async fn login_response(&self, email: &str, password: &str) -> TestResponse {
        let body = json!({"email": email, "password": password});
        self.send(
            Method::POST,
            "/api/v1/auth/login",
            None,
            &[],
            Some(body.to_string()),
        )
        .await
    }

    /// Creates an ADMIN as `x8-api admin create` does; returns its access token.
    pub async fn admin(&self) -> String {
        let email = format!("admin-{}@x8.test", Uuid::new_v4().simple());
        x8_commands::accounts::register_staff(
            &self.state.commands,
            &email,
            PASSWORD.into(),
            "Admin",
            Role::Admin,
            &CommandContext::new(Actor::System),
        )
        .await
        .expect("admin");
        self.login(&email).await
    }

    /// `POST /api/v1/managers`; returns `(manager_id, manager's access token)`.
    pub async fn manager(&self, admin: &str, email: &str) -> (Uuid, String) {
        let body = json!({"email": email, "password": PASSWORD, "name": "Manager"});
        let response = self
            .send(
                Method::POST,
                "/api/v1/managers",
                Some(admin),
                &[],
                Some(body.to_string()),
            )
            .await;
        assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
        let id = response.body["manager_id"]
            .as_str()
            .expect("id")
            .parse()
            .expect("uuid");
        (id, self.login(email).await)
    }

    /// `PUT /api/v1/tenants/{id}/manager`.
    pub async fn assign_manager(
        &self,
        admin: &str,
        tenant: Uuid,
        manager: Uuid,
        key: Option<&str>,
    ) -> TestResponse {
        let headers: Vec<(&str, &str)> = key.map(|k| ("idempotency-key", k)).into_iter().collect();
        let body = json!({"manager_id": manager});
        self.send(
            Method::PUT,
            &format!("/api/v1/tenants/{tenant}/manager"),
            Some(admin),
            &headers,
            Some(body.to_string()),
        )
        .await
    }

    /// `POST /api/v1/tenants/{id}/companies`.
    pub async fn create_company(
        &self,
        token: &str,
        tenant: Uuid,
        name: &str,
        company_type: &str,
    ) -> TestResponse {
        let body = json!({"name": name, "type": company_type});
        let path = format!("/api/v1/tenants/{tenant}/companies");
        self.send(
            Method::POST,
            &path,
            Some(token),
            &[],
            Some(body.to_string()),
        )
        .await
    }

    /// Creates a company and returns its id.
    pub async fn company(&self, token: &str, tenant: Uuid) -> Uuid {
        let response = self.create_company(token, tenant, "Shop", "Product").await;
        assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
        response.body["company_id"]
            .as_str()
            .expect("company_id")
            .parse()
            .expect("uuid")
    }

    /// `POST /api/v1/companies/{id}/channels` `{platform}`.
    pub async fn connect_channel(
        &self,
        token: &str,
        company: Uuid,
        platform: &str,
    ) -> TestResponse {
        let body = json!({ "platform": platform });
        let path = format!("/api/v1/companies/{company}/channels");
        self.send(
            Method::POST,
            &path,
            Some(token),
            &[],
            Some(body.to_string()),
        )
        .await
    }

    /// `PUT /api/v1/tenants/{id}/plan` with `body`.
    pub async fn set_plan(&self, token: &str, tenant: Uuid, body: Value) -> TestResponse {
        let path = format!("/api/v1/tenants/{tenant}/plan");
        self.send(Method::PUT, &path, Some(token), &[], Some(body.to_string()))
            .await
    }

    /// `GET /api/v1/tenants/{id}/usage` reflecting `min_position`.
    pub async fn usage(&self, token: &str, tenant: Uuid, min_position: i64) -> TestResponse {
        let position = min_position.to_string();
        let path = format!("/api/v1/tenants/{tenant}/usage");
        self.send(
            Method::GET,
            &path,
            Some(token),
            &[("x-min-position", &position)],
            None,
        )
        .await
    }

    /// `DELETE /api/v1/tenants/{id}/manager`.
    pub async fn unassign_manager(&self, admin: &str, tenant: Uuid) -> TestResponse {
        let path = format!("/api/v1/tenants/{tenant}/manager");
        self.send(Method::DELETE, &path, Some(admin), &[], None)
            .await
    }

    /// `GET /api/v1/tenants/{id}` with `X-Min-Position`.
    pub async fn get_tenant(&self, token: &str, tenant: Uuid, min_position: i64) -> TestResponse {
        let position = min_position.to_string();
        self.send(
            Method::GET,
            &format!("/api/v1/tenants/{tenant}"),
            Some(token),
            &[("x-min-position", &position)],
            None,
        )
        .await
    }

    /// The deadline runner of this app (not spawned: tests call `run_due`).
    pub fn deadlines(&self) -> x8_commands::deadlines::DeadlineRunner {
        x8_commands::deadlines::DeadlineRunner::new(
            self.state.commands.clone(),
            self.store.pool().clone(),
        )
    }

    /// The global position of the last event in the log (0 when empty).
    pub async fn max_position(&self) -> i64 {
        sqlx::query_scalar("select coalesce(max(global_position), 0) from events")
            .fetch_one(self.store.pool())
            .await
            .expect("max position")
    }

    /// `GET path` reading at least everything in the log now (`X-Min-Position`).
    pub async fn get_caught_up(&self, token: &str, path: &str) -> TestResponse {
        let position = self.max_position().await.to_string();
        self.send(
            Method::GET,
            path,
            Some(token),
            &[("x-min-position", &position)],
            None,
        )
        .await
    }

    /// `method path` with the JSON `body`.
    pub async fn send_json(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: &Value,
    ) -> TestResponse {
        self.send(method, path, Some(token), &[], Some(body.to_string()))
            .await
    }

    /// Number of events in the log.
    pub async fn event_count(&self) -> i64 {
        sqlx::query_scalar("select count(*) from events")
            .fetch_one(self.store.pool())
            .await
            .expect("count")
    }

    /// The event types of one stream, in order.
    pub async fn stream_event_types(&self, aggregate_type: &str, id: Uuid) -> Vec<String> {
        sqlx::query_scalar(
            "select event_type from events where aggregate_type = $1 and aggregate_id = $2 order by sequence",
        )
        .bind(aggregate_type)
        .bind(id.to_string())
        .fetch_all(self.store.pool())
        .await
        .expect("stream")
    }
}

/// Limits too high for any test to reach but the rate-limit tests.
pub(crate) const UNLIMITED: x8_api::rate_limit::AuthRateLimit = x8_api::rate_limit::AuthRateLimit {
    per_minute: 600_000,
    burst: 100_000,
    trust_forwarded_for: false,
};

/// The router of `state`.
fn test_router(state: &AppState) -> Router {
    x8_api::router(state.clone())
}

/// A clock the test moves by hand.
#[derive(Debug)]
pub struct TestClock(std::sync::Mutex<chrono::DateTime<chrono::Utc>>);

impl TestClock {
    /// A clock standing at `at`.
    pub fn at(at: chrono::DateTime<chrono::Utc>) -> Arc<Self> {
        Arc::new(Self(std::sync::Mutex::new(at)))
    }

    /// Sets the clock to `at`.
    pub fn set(&self, at: chrono::DateTime<chrono::Utc>) {
        *self.0.lock().expect("clock") = at;
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: chrono::Duration) {
        let mut now = self.0.lock().expect("clock");
        *now += by;
    }
}

impl x8_commands::Clock for TestClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        *self.0.lock().expect("clock")
    }
}
