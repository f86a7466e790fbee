//! WhatsApp through WAHA, against a local fake WAHA server (wiremock): session start,
//! fixture-driven status webhooks, HMAC, dedupe, QR attempts, reconnect back-off.

use axum::http::Method;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;
use wiremock::matchers::{body_partial_json, header, method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};
use x8_tests::{TestApp, TestClock, TestResponse};

const SECRET: &str = "waha-webhook-secret";

/// The WAHA fixture `session.status.working.json`, for `session`, with `status`.
fn status_event(session: &str, status: &str, id: Option<&str>) -> Value {
    let mut event: Value =
        serde_json::from_str(include_str!("../fixtures/waha/session.status.working.json")).unwrap();
    event["session"] = json!(session);
    event["payload"]["status"] = json!(status);
    if let Some(id) = id {
        event["id"] = json!(id);
    }
    event
}

fn sign(body: &str) -> String {
    let mut mac = Hmac::<sha2::Sha512>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// A fake WAHA that accepts every call we make.
async fn fake_waha() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/sessions"))
        .and(header("x-api-key", "waha-key"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"status": "STARTING"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(r"^/api/x8-[0-9a-f]{32}/auth/qr$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": "2@qr-value"})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/api/x8-[0-9a-f]{32}/auth/request-code$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"code": "ABCD-EFGH"})))
        .mount(&server)
        .await;
    server
}

struct Whatsapp {
    app: TestApp,
    owner: String,
    channel: Uuid,
    session: String,
}

impl Whatsapp {
    async fn connect(connect: PgConnectOptions, waha: &MockServer, clock: Arc<TestClock>) -> Self {
        let app = TestApp::spawn_with_clock(connect, clock)
            .await
            .with_waha(&waha.uri(), Some(SECRET));
        let (tenant, owner) = app.tenant_with_owner("Chat", "chat@x8.test").await;
        let company = app.company(&owner, tenant).await;
        let created = app.connect_channel(&owner, company, "whatsapp").await;
        assert_eq!(created.status.as_u16(), 201, "{:?}", created.body);
        assert_eq!(created.body["status"], "CONNECTING");
        let channel: Uuid = created.body["channel_id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let session = format!("x8-{}", channel.simple());
        Self {
            app,
            owner,
            channel,
            session,
        }
    }

    /// A status webhook with a fresh envelope id, as WAHA sends them.
    async fn webhook(&self, status: &str) -> TestResponse {
        let id = format!("evt_{}", Uuid::new_v4().simple());
        self.webhook_with_id(status, Some(&id)).await
    }

    /// A status webhook with the given envelope id (`None`: none, as in the fixture).
    async fn webhook_with_id(&self, status: &str, id: Option<&str>) -> TestResponse {
        self.post(&status_event(&self.session, status, id)).await
    }

    /// Any WAHA event, signed.
    async fn post(&self, event: &Value) -> TestResponse {
        let body = event.to_string();
        let signature = sign(&body);
        self.app
            .send(
                Method::POST,
                "/api/v1/webhooks/waha",
                None,
                &[("x-webhook-hmac", &signature)],
                Some(body),
            )
            .await
    }

    async fn view(&self, position: i64) -> Value {
        let path = format!("/api/v1/channels/{}", self.channel);
        self.app
            .send(
                Method::GET,
                &path,
                Some(&self.owner),
                &[("x-min-position", &position.to_string())],
                None,
            )
            .await
            .body
    }

    /// Runs the deadlines that are due once the `deadlines` projection saw `position`.
    async fn run_deadlines(&self, position: i64) -> usize {
        self.app
            .state
            .projections
            .wait_for("deadlines", position, Duration::from_secs(5))
            .await
            .unwrap();
        self.app.deadlines().run_due(100).await.unwrap().done
    }
}

fn position(response: &TestResponse) -> i64 {
    assert_eq!(response.status.as_u16(), 200, "{:?}", response.body);
    response.body["position"].as_i64().unwrap()
}

fn now() -> Arc<TestClock> {
    TestClock::at(chrono::Utc::now())
}

#[sqlx::test(migrations = "../migrations")]
async fn connecting_whatsapp_starts_a_waha_session_with_our_ids_in_its_metadata(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let waha = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/sessions"))
        .and(body_partial_json(
            json!({"start": true, "config": {"webhooks": [{"hmac": {"key": SECRET}}]}}),
        ))
        .respond_with(ResponseTemplate::new(201))
        .expect(1)
        .mount(&waha)
        .await;
    let wa = Whatsapp::connect(connect, &waha, now()).await;

    let requests = waha.received_requests().await.unwrap();
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(body["name"], wa.session);
    assert_eq!(
        body["config"]["metadata"]["x8.channel_id"],
        wa.channel.to_string()
    );
    assert!(body["config"]["metadata"]["x8.tenant_id"].is_string());
}

#[sqlx::test(migrations = "../migrations")]
async fn session_statuses_from_the_fixture_drive_the_connection_status(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let waha = fake_waha().await;
    let wa = Whatsapp::connect(connect, &waha, now()).await;

    for (raw, status) in [
        ("SCAN_QR_CODE", "CONNECTING"),
        ("WORKING", "CONNECTED"),
        ("STOPPED", "DISCONNECTED"),
        ("SOMETHING_NEW", "CONNECTING"),
    ] {
        let answer = wa.webhook(raw).await;
        let view = wa.view(position(&answer)).await;
        assert_eq!(view["status"], status, "{raw}: {view:?}");
        assert_eq!(view["raw_status"], raw);
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_tampered_or_missing_hmac_is_401_and_appends_nothing(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let waha = fake_waha().await;
    let wa = Whatsapp::connect(connect, &waha, now()).await;
    let before = wa.app.event_count().await;

    let body = status_event(&wa.session, "WORKING", None).to_string();
    let signature = sign(&body);
    let tampered = body.replace("WORKING", "STOPPED");
    for headers in [vec![("x-webhook-hmac", signature.as_str())], vec![]] {
        wa.app
            .send(
                Method::POST,
                "/api/v1/webhooks/waha",
                None,
                &headers,
                Some(tampered.clone()),
            )
            .await
            .assert_problem(401, "invalid_signature");
    }
    wa.app
        .send(
            Method::POST,
            "/api/v1/webhooks/waha",
            None,
            &[("x-webhook-hmac", "not-hex")],
            Some(body),
        )
        .await
        .assert_problem(401, "invalid_signature");

    assert_eq!(wa.app.event_count().await, before);
}

#[sqlx::test(migrations = "../migrations")]
async fn the_same_webhook_twice_has_one_effect(_options: PgPoolOptions, connect: PgConnectOptions) {
    let waha = fake_waha().await;
    let wa = Whatsapp::connect(connect, &waha, now()).await;
    let before = wa.app.event_count().await;

    // with an envelope id, delivered twice at once
    let (first, second) = tokio::join!(
        wa.webhook_with_id("WORKING", Some("evt_01hz")),
        wa.webhook_with_id("WORKING", Some("evt_01hz"))
    );
    assert_eq!(position(&first), position(&second));
    // and without one (the fixture has none), delivered twice: deduped on the body
    let third = wa.webhook_with_id("STOPPED", None).await;
    let fourth = wa.webhook_with_id("STOPPED", None).await;
    assert_eq!(position(&third), position(&fourth));

    assert_eq!(wa.app.event_count().await, before + 2);
}

#[sqlx::test(migrations = "../migrations")]
async fn three_failed_qr_attempts_offer_a_pairing_code(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    // given a fake WAHA that counts restarts
    let waha = fake_waha().await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/api/sessions/x8-[0-9a-f]{32}/restart$"))
        .respond_with(ResponseTemplate::new(201))
        .expect(3)
        .mount(&waha)
        .await;
    let wa = Whatsapp::connect(connect, &waha, now()).await;
    let pairing = |phone: &str| {
        let body = json!({ "phone_number": phone }).to_string();
        let path = format!("/api/v1/channels/{}/pairing-code", wa.channel);
        let owner = wa.owner.clone();
        let app = &wa.app;
        async move {
            app.send(Method::POST, &path, Some(&owner), &[], Some(body))
                .await
        }
    };

    // when three QR attempts fail, each followed by the restart for the next one
    for attempt in 1..=3 {
        wa.webhook("SCAN_QR_CODE").await;
        let failed = wa.webhook("FAILED").await;
        let position = position(&failed);
        assert_eq!(
            wa.run_deadlines(position).await,
            1,
            "restart after attempt {attempt}"
        );
        let view = wa.view(position).await;
        assert_eq!(view["qr_attempts"], attempt);
        assert_eq!(view["status"], "CONNECTING");
        if attempt < 3 {
            assert_eq!(view["pairing_code_offered"], false);
            pairing("4915112345678")
                .await
                .assert_problem(409, "pairing_code_not_offered");
        } else {
            assert_eq!(view["pairing_code_offered"], true);
        }
        wa.webhook("STARTING").await;
    }

    // then a pairing code is offered, and the QR stays available
    let code = pairing("+4915112345678").await;
    assert_eq!(code.status.as_u16(), 200, "{:?}", code.body);
    assert_eq!(code.body["code"], "ABCD-EFGH");
    let qr = wa
        .app
        .send(
            Method::GET,
            &format!("/api/v1/channels/{}/qr", wa.channel),
            Some(&wa.owner),
            &[],
            None,
        )
        .await;
    assert_eq!(qr.body["qr"], "2@qr-value");
    assert_eq!(qr.body["pairing_code_offered"], true);
}

#[sqlx::test(migrations = "../migrations")]
async fn ten_failed_reconnects_put_the_connection_in_error(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    // given a working session and a fake WAHA that counts restarts
    let waha = fake_waha().await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/api/sessions/x8-[0-9a-f]{32}/restart$"))
        .respond_with(ResponseTemplate::new(201))
        .expect(10)
        .mount(&waha)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/api/sessions/x8-[0-9a-f]{32}/logout$"))
        .respond_with(ResponseTemplate::new(201))
        .expect(0)
        .mount(&waha)
        .await;
    let clock = now();
    let wa = Whatsapp::connect(connect, &waha, clock.clone()).await;
    wa.webhook("WORKING").await;

    // when it disconnects and each of the 10 reconnects fails
    for attempt in 1..=10u32 {
        let failed = wa.webhook("FAILED").await;
        let position = position(&failed);
        let view = wa.view(position).await;
        assert_eq!(view["reconnect_attempts"], attempt);
        assert_eq!(view["status"], "CONNECTING");
        // not before its back-off (5 s doubling, ±10 %) ...
        assert_eq!(
            wa.run_deadlines(position).await,
            0,
            "attempt {attempt} ran early"
        );
        // ... and once it passed
        let back_off = 5i64 * (1 << (attempt - 1));
        clock.advance(chrono::Duration::milliseconds(back_off * 1100 + 1));
        assert_eq!(wa.run_deadlines(position).await, 1, "attempt {attempt}");
        wa.webhook("STARTING").await;
    }
    let gave_up = wa.webhook("FAILED").await;

    // then the connection is in ERROR, its session restarted 10 times and never logged out
    let view = wa.view(position(&gave_up)).await;
    assert_eq!(view["status"], "ERROR");
    assert_eq!(view["error_count"], 1);
    assert!(view["last_error"].as_str().unwrap().contains("10 attempts"));
    assert_eq!(view["raw_status"], "FAILED");
}

#[sqlx::test(migrations = "../migrations")]
async fn webhooks_for_other_sessions_and_events_are_acknowledged_and_ignored(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let waha = fake_waha().await;
    let wa = Whatsapp::connect(connect, &waha, now()).await;
    let before = wa.app.event_count().await;

    let foreign = status_event("default", "WORKING", None).to_string();
    let message = include_str!("../fixtures/waha/message.text.json").to_string();
    for body in [foreign, message] {
        let signature = sign(&body);
        let answer = wa
            .app
            .send(
                Method::POST,
                "/api/v1/webhooks/waha",
                None,
                &[("x-webhook-hmac", &signature)],
                Some(body),
            )
            .await;
        assert_eq!(answer.status.as_u16(), 200, "{:?}", answer.body);
        assert!(answer.body["ignored"].is_string());
    }
    let garbage = "{not json";
    wa.app
        .send(
            Method::POST,
            "/api/v1/webhooks/waha",
            None,
            &[("x-webhook-hmac", &sign(garbage))],
            Some(garbage.into()),
        )
        .await
        .assert_problem(400, "invalid_body");

    assert_eq!(wa.app.event_count().await, before);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_customer_message_opens_one_conversation_and_our_echo_is_ignored(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    // Given a WhatsApp connection
    let waha = fake_waha().await;
    let wa = Whatsapp::connect(connect, &waha, now()).await;
    let mut event: Value =
        serde_json::from_str(include_str!("../fixtures/waha/message.text.json")).unwrap();
    event["session"] = json!(wa.session);
    let before = wa.app.event_count().await;
    // When the fixture (our own message's echo) arrives: acknowledged, nothing appended
    let echo = wa.post(&event).await;
    assert_eq!(echo.status.as_u16(), 200, "{:?}", echo.body);
    assert_eq!(echo.body["ignored"], "our own message");
    assert_eq!(wa.app.event_count().await, before);
    // When the customer's message arrives, twice
    event["payload"]["fromMe"] = json!(false);
    event["payload"]["id"] = json!("false_11111111111@c.us_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    let first = wa.post(&event).await;
    assert_eq!(first.status.as_u16(), 200, "{:?}", first.body);
    let again = wa.post(&event).await;
    assert_eq!(again.body["conversation_id"], first.body["conversation_id"]);
    // Then one conversation, one message, and the phone number nowhere in the log
    let conversation: Uuid = first.body["conversation_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        wa.app
            .stream_event_types("conversation", conversation)
            .await,
        ["ConversationOpened", "MessageReceived"]
    );
    let leaks: i64 = sqlx::query_scalar(
        "select count(*) from events where aggregate_type = 'conversation'
           and (payload::text like '%11111111111%' or payload::text like '%Hi there%')",
    )
    .fetch_one(wa.app.store.pool())
    .await
    .unwrap();
    assert_eq!(leaks, 0);
}
