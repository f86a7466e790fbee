//! Deliveries against the real PostgreSQL: legal transitions only, checkpoints ordered by
//! when they happened, the public tracking page and its live stream.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tower::ServiceExt;
use uuid::Uuid;
use x8_projections::metrics::MetricsProjection;
use x8_replay::checksum::checksums;
use x8_tests::{TestApp, TestResponse};

/// A business with a company, a courier and one delivery: (token, company, courier,
/// delivery, tracking token).
struct Given {
    token: String,
    courier: String,
    delivery: String,
    tracking: String,
}

async fn given_a_delivery(app: &TestApp) -> Given {
    let (tenant, token) = app.tenant_with_owner("Pizza", "owner@pizza.test").await;
    let company = app.company(&token, tenant).await;
    let courier = app
        .send_json(
            Method::POST,
            &format!("/api/v1/companies/{company}/couriers"),
            &token,
            &json!({"name": "Marko Petrović", "phone": "+381601234567", "zones": ["Vračar"]}),
        )
        .await;
    assert_eq!(courier.status, StatusCode::CREATED, "{:?}", courier.body);
    let created = app
        .send_json(
            Method::POST,
            &format!("/api/v1/companies/{company}/deliveries"),
            &token,
            &json!({"order_reference": "ORD-7731", "address": "Knez Mihailova 12, Beograd",
                    "customer_name": "Ana Jovanović", "customer_phone": "+381609999999",
                    "eta": "2026-11-21T18:00:00Z"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["status"], "Pending");
    let tracking = created.body["tracking_token"].as_str().unwrap().to_string();
    assert!(tracking.len() >= 43, "at least 256 bits, base64url");
    Given {
        token,
        courier: courier.body["courier_id"].as_str().unwrap().to_string(),
        delivery: created.body["delivery_id"].as_str().unwrap().to_string(),
        tracking,
    }
}

fn t(seconds: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-21T17:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
        + Duration::seconds(seconds)
}

async fn checkpoint(app: &TestApp, given: &Given, body: Value) -> TestResponse {
    app.send_json(
        Method::POST,
        &format!("/api/v1/deliveries/{}/checkpoints", given.delivery),
        &given.token,
        &body,
    )
    .await
}

async fn assign(app: &TestApp, given: &Given) {
    let assigned = app
        .send_json(
            Method::POST,
            &format!("/api/v1/deliveries/{}/assign", given.delivery),
            &given.token,
            &json!({ "courier_id": given.courier }),
        )
        .await;
    assert_eq!(assigned.status, StatusCode::OK, "{:?}", assigned.body);
}

#[sqlx::test(migrations = "../migrations")]
async fn only_legal_transitions_are_recorded_and_a_late_checkpoint_never_rolls_back(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    // Given a pending delivery assigned to a courier
    let app = TestApp::spawn(db).await;
    let given = given_a_delivery(&app).await;
    assign(&app, &given).await;
    // When it is marked Delivered straight from Pending: 409, nothing appended
    let before = app.event_count().await;
    let illegal = checkpoint(
        &app,
        &given,
        json!({"status": "Delivered", "occurred_at": t(5)}),
    )
    .await;
    illegal.assert_problem(409, "illegal_transition");
    assert_eq!(illegal.body["from"], "Pending");
    assert_eq!(illegal.body["to"], "Delivered");
    checkpoint(
        &app,
        &given,
        json!({"status": "Teleported", "occurred_at": t(5)}),
    )
    .await
    .assert_problem(400, "invalid_body");
    checkpoint(
        &app,
        &given,
        json!({"location": {"lat": 91.0, "lng": 0.0}, "occurred_at": t(5)}),
    )
    .await
    .assert_problem(422, "invalid_location");
    assert_eq!(app.event_count().await, before);
    // When it goes in transit at T+10, out for delivery at T+20, and a checkpoint that
    // happened at T+15 arrives last
    for (id, status, at) in [("c1", "InTransit", 10), ("c2", "OutForDelivery", 20)] {
        let recorded = checkpoint(
            &app,
            &given,
            json!({"checkpoint_id": id, "status": status,
            "location": {"lat": 44.81, "lng": 20.46 + at as f64 / 1000.0}, "occurred_at": t(at)}),
        )
        .await;
        assert_eq!(recorded.status, StatusCode::CREATED, "{:?}", recorded.body);
    }
    let late = checkpoint(
        &app,
        &given,
        json!({"checkpoint_id": "c-late", "status": "InTransit",
        "location": {"lat": 1.0, "lng": 1.0}, "occurred_at": t(15)}),
    )
    .await;
    assert_eq!(late.status, StatusCode::CREATED, "{:?}", late.body);
    // Then the status stays OutForDelivery, the pin where it was at T+20, and the late
    // checkpoint is history in its place
    assert_eq!(late.body["status"], "OutForDelivery");
    let view = app
        .get_caught_up(
            &given.token,
            &format!("/api/v1/deliveries/{}", given.delivery),
        )
        .await;
    assert_eq!(view.body["status"], "OutForDelivery", "{:?}", view.body);
    assert_eq!(view.body["location"]["lng"], 20.48);
    assert_eq!(view.body["address"], "Knez Mihailova 12, Beograd");
    let order: Vec<(&str, bool)> = view.body["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["checkpoint_id"].as_str().unwrap(),
                c["late"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(order, [("c1", false), ("c-late", true), ("c2", false)]);
    // And the same checkpoint again changes nothing
    let before = app.event_count().await;
    checkpoint(
        &app,
        &given,
        json!({"checkpoint_id": "c2", "status": "OutForDelivery", "occurred_at": t(20)}),
    )
    .await;
    assert_eq!(app.event_count().await, before);
    // And the courier's active deliveries hold it until it is delivered
    let active = format!("/api/v1/couriers/{}/deliveries", given.courier);
    let listed = app.get_caught_up(&given.token, &active).await;
    assert_eq!(listed.body["deliveries"].as_array().unwrap().len(), 1);
    let delivered = checkpoint(
        &app,
        &given,
        json!({"status": "Delivered", "occurred_at": t(30)}),
    )
    .await;
    assert_eq!(
        delivered.body["status"], "Delivered",
        "{:?}",
        delivered.body
    );
    let listed = app.get_caught_up(&given.token, &active).await;
    assert_eq!(listed.body["deliveries"].as_array().unwrap().len(), 0);
    // And nothing leaves Delivered
    checkpoint(
        &app,
        &given,
        json!({"status": "InTransit", "occurred_at": t(40)}),
    )
    .await
    .assert_problem(409, "illegal_transition");
}

#[sqlx::test(migrations = "../migrations")]
async fn the_tracking_page_shows_status_courier_first_name_eta_and_location_and_nothing_else(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    // Given an assigned delivery in transit
    let app = TestApp::spawn(db).await;
    let given = given_a_delivery(&app).await;
    assign(&app, &given).await;
    checkpoint(
        &app,
        &given,
        json!({"status": "InTransit", "location": {"lat": 44.8, "lng": 20.4},
        "message": "left the depot", "occurred_at": t(10)}),
    )
    .await;
    app.get_caught_up(
        &given.token,
        &format!("/api/v1/deliveries/{}", given.delivery),
    )
    .await;
    // When anyone opens its tracking page, without logging in
    let page = app
        .send(
            Method::GET,
            &format!("/track/{}", given.tracking),
            None,
            &[],
            None,
        )
        .await;
    // Then it shows the public fields only
    assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
    let mut keys: Vec<&str> = page
        .body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "courier_first_name",
            "eta",
            "location",
            "status",
            "updated_at"
        ]
    );
    assert_eq!(page.body["status"], "InTransit");
    assert_eq!(page.body["courier_first_name"], "Marko");
    assert_eq!(page.body["eta"], "2026-11-21T18:00:00Z");
    assert_eq!(page.body["location"]["lat"], 44.8);
    let text = page.body.to_string();
    for internal in [
        given.delivery.as_str(),
        given.courier.as_str(),
        "ORD-7731",
        "Knez",
        "Petrović",
        "+381",
        "Ana",
        "left the depot",
    ] {
        assert!(
            !text.contains(internal),
            "{internal} on the public page: {text}"
        );
    }
    // And an unknown token, and the token once revoked, are 404
    app.send(Method::GET, "/track/not-a-token", None, &[], None)
        .await
        .assert_problem(404, "not_found");
    let revoked = app
        .send(
            Method::DELETE,
            &format!("/api/v1/deliveries/{}/tracking-token", given.delivery),
            Some(&given.token),
            &[],
            None,
        )
        .await;
    let position = revoked.body["position"].as_i64().unwrap().to_string();
    app.send(
        Method::GET,
        &format!("/api/v1/deliveries/{}", given.delivery),
        Some(&given.token),
        &[("x-min-position", &position)],
        None,
    )
    .await;
    app.send(
        Method::GET,
        &format!("/track/{}", given.tracking),
        None,
        &[],
        None,
    )
    .await
    .assert_problem(404, "not_found");
    // And the token appears nowhere in the database
    let leaks: i64 = sqlx::query_scalar(
        "select (select count(*) from events where payload::text like '%' || $1 || '%')
              + (select count(*) from deliveries where token_hash = $1)",
    )
    .bind(&given.tracking)
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    assert_eq!(leaks, 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn the_live_stream_receives_a_status_change_within_a_second(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    // Given a pending delivery and its tracking page's stream, open
    let app = TestApp::spawn(db).await;
    let given = given_a_delivery(&app).await;
    app.get_caught_up(
        &given.token,
        &format!("/api/v1/deliveries/{}", given.delivery),
    )
    .await;
    let request = Request::get(format!("/track/{}/events", given.tracking))
        .body(Body::empty())
        .unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut stream = response.into_body().into_data_stream();
    let first = String::from_utf8(stream.next().await.unwrap().unwrap().to_vec()).unwrap();
    assert!(
        first.contains("event: tracking") && first.contains("Pending"),
        "{first}"
    );
    // When the delivery goes in transit
    let sent = std::time::Instant::now();
    let changed = checkpoint(
        &app,
        &given,
        json!({"status": "InTransit", "occurred_at": t(10)}),
    )
    .await;
    assert_eq!(changed.status, StatusCode::CREATED, "{:?}", changed.body);
    // Then the stream carries the new status within a second
    let next = tokio::time::timeout(std::time::Duration::from_secs(1), async {
        loop {
            let chunk = stream.next().await.unwrap().unwrap();
            let text = String::from_utf8(chunk.to_vec()).unwrap();
            if text.contains("InTransit") {
                return text;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no update within a second ({:?})", sent.elapsed()));
    assert!(next.contains("event: tracking"));
    // An unknown token has no stream
    let missing = app
        .send(
            Method::GET,
            &format!("/track/{}/events", Uuid::new_v4()),
            None,
            &[],
            None,
        )
        .await;
    missing.assert_problem(404, "not_found");
}

#[sqlx::test(migrations = "../migrations")]
async fn each_new_status_is_announced_once_in_the_customers_conversation(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    // Given a customer who wrote on Telegram, and a delivery for them naming that
    // conversation
    let telegram = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path("/bot123:abc/sendMessage"))
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .set_body_json(json!({"ok": true, "result": {"message_id": 900}})),
        )
        .mount(&telegram)
        .await;
    let app = TestApp::spawn(db).await.with_bot_apis(&telegram.uri());
    let (tenant, token) = app.tenant_with_owner("Pizza", "owner@pizza.test").await;
    let company = app.company(&token, tenant).await;
    let channel = app.connect_channel(&token, company, "telegram").await.body["channel_id"]
        .as_str()
        .unwrap()
        .to_string();
    app.send_json(
        Method::PUT,
        &format!("/api/v1/channels/{channel}/credentials"),
        &token,
        &json!({"bot_token": "123:abc", "webhook_secret": "s3cret-s3cret"}),
    )
    .await;
    let update = include_str!("../fixtures/telegram/update.message.text.json");
    let inbound = app
        .send(
            Method::POST,
            &format!("/api/v1/webhooks/telegram/{channel}"),
            None,
            &[("x-telegram-bot-api-secret-token", "s3cret-s3cret")],
            Some(update.to_string()),
        )
        .await;
    let conversation = inbound.body["conversation_id"]
        .as_str()
        .unwrap()
        .to_string();
    let created = app
        .send_json(
            Method::POST,
            &format!("/api/v1/companies/{company}/deliveries"),
            &token,
            &json!({"order_reference": "ORD-1", "address": "Somewhere 1",
                    "conversation_id": conversation}),
        )
        .await;
    let delivery = created.body["delivery_id"].as_str().unwrap().to_string();
    // When it goes in transit, and the deadline runner runs twice
    let path = format!("/api/v1/deliveries/{delivery}/checkpoints");
    let moved = app
        .send_json(
            Method::POST,
            &path,
            &token,
            &json!({"status": "InTransit", "occurred_at": t(1)}),
        )
        .await;
    let run = |position: i64| {
        let app = &app;
        async move {
            app.state
                .projections
                .wait_for("deadlines", position, std::time::Duration::from_secs(5))
                .await
                .unwrap();
            app.deadlines().run_due(100).await.unwrap()
        }
    };
    run(moved.body["position"].as_i64().unwrap()).await;
    run(app.max_position().await).await;
    // And the same status again with another sub-status
    let again = app
        .send_json(
            Method::POST,
            &path,
            &token,
            &json!({"status": "InTransit", "sub_status": "InTransit_003", "occurred_at": t(2)}),
        )
        .await;
    run(again.body["position"].as_i64().unwrap()).await;
    // Then the customer got one TYPE3 message, "on its way"
    let sent = telegram.received_requests().await.unwrap();
    assert_eq!(sent.len(), 1);
    let body: Value = serde_json::from_slice(&sent[0].body).unwrap();
    assert_eq!(body["text"], "Your order is on its way.");
    let history = app
        .get_caught_up(
            &token,
            &format!("/api/v1/conversations/{conversation}/messages"),
        )
        .await;
    let out: Vec<&Value> = history.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["direction"] == "out")
        .collect();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["kind"], "TYPE3");
    assert_eq!(
        app.stream_event_types("delivery", delivery.parse().unwrap())
            .await
            .iter()
            .filter(|t| *t == "CustomerNotified")
            .count(),
        1
    );
    // And the metrics rebuilt from the log in one batch equal the live ones, built as it
    // happened (the delivery counts on its conversation's connection either way)
    app.caught_up().await;
    let live = checksums(&app.store, "metrics").await.unwrap();
    app.state
        .projections
        .rebuild(&MetricsProjection, &|_| {})
        .await
        .unwrap();
    assert_eq!(checksums(&app.store, "metrics").await.unwrap(), live);
    // And a delivery naming another business's conversation is refused
    let (other, other_token) = app.tenant_with_owner("Other", "owner@other.test").await;
    let other_company = app.company(&other_token, other).await;
    app.send_json(
        Method::POST,
        &format!("/api/v1/companies/{other_company}/deliveries"),
        &other_token,
        &json!({"order_reference": "X", "address": "Y", "conversation_id": conversation}),
    )
    .await
    .assert_problem(422, "unknown_conversation");
}
