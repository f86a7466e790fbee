//! Conversations from the providers' webhooks against the real PostgreSQL: verification,
//! dedupe, lead sources, personal fields sealed in the log.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;
use x8_tests::{TestApp, TestResponse};

const TELEGRAM_SECRET: &str = "tg-secret-0123456789";

/// A business with a Telegram connection whose credentials hold the webhook secret.
async fn telegram_connection(app: &TestApp) -> Uuid {
    let (tenant, token) = app.tenant_with_owner("Cafe", "owner@cafe.test").await;
    let company = app.company(&token, tenant).await;
    let connected = app.connect_channel(&token, company, "telegram").await;
    assert_eq!(
        connected.status,
        StatusCode::CREATED,
        "{:?}",
        connected.body
    );
    let channel = connected.body["channel_id"].as_str().unwrap().to_string();
    let stored = app
        .send_json(
            Method::PUT,
            &format!("/api/v1/channels/{channel}/credentials"),
            &token,
            &json!({ "bot_token": "123:abc", "webhook_secret": TELEGRAM_SECRET }),
        )
        .await;
    assert_eq!(stored.status, StatusCode::OK, "{:?}", stored.body);
    channel.parse().unwrap()
}

async fn deliver(
    app: &TestApp,
    channel: Uuid,
    secret: Option<&str>,
    update: &Value,
) -> TestResponse {
    let headers: Vec<(&str, &str)> = secret
        .map(|s| ("x-telegram-bot-api-secret-token", s))
        .into_iter()
        .collect();
    app.send(
        Method::POST,
        &format!("/api/v1/webhooks/telegram/{channel}"),
        None,
        &headers,
        Some(update.to_string()),
    )
    .await
}

fn fixture() -> Value {
    serde_json::from_str(include_str!(
        "../fixtures/telegram/update.message.text.json"
    ))
    .unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn a_telegram_update_opens_one_conversation_once_with_its_personal_data_sealed(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    // Given a Telegram connection with its webhook secret
    let app = TestApp::spawn(db).await;
    let channel = telegram_connection(&app).await;
    // When the docs' update arrives, twice
    let first = deliver(&app, channel, Some(TELEGRAM_SECRET), &fixture()).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    let again = deliver(&app, channel, Some(TELEGRAM_SECRET), &fixture()).await;
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
    // Then one conversation with one message, opened from /start as direct
    let conversation: Uuid = first.body["conversation_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(again.body["conversation_id"], first.body["conversation_id"]);
    assert_eq!(
        app.stream_event_types("conversation", conversation).await,
        ["ConversationOpened", "MessageReceived"]
    );
    // And neither the name, the chat id nor the text is readable in the log
    let payloads: Vec<String> = sqlx::query_scalar(
        "select payload::text from events where aggregate_type = 'conversation'",
    )
    .fetch_all(app.store.pool())
    .await
    .unwrap();
    for payload in &payloads {
        for personal in ["Test Firstname", "1111111", "/start"] {
            assert!(!payload.contains(personal), "{personal} in {payload}");
        }
    }
    assert!(!conversation.to_string().contains("1111111"));
    assert!(
        payloads[0].contains(r#""source": "direct""#)
            || payloads[0].contains(r#""source":"direct""#)
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_wrong_or_missing_telegram_secret_is_401_and_appends_nothing(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    let app = TestApp::spawn(db).await;
    let channel = telegram_connection(&app).await;
    let before = app.event_count().await;
    deliver(&app, channel, Some("wrong"), &fixture())
        .await
        .assert_problem(401, "invalid_signature");
    deliver(&app, channel, None, &fixture())
        .await
        .assert_problem(401, "invalid_signature");
    // an unknown connection is 404; malformed JSON with the right secret is 400
    deliver(&app, Uuid::new_v4(), Some(TELEGRAM_SECRET), &fixture())
        .await
        .assert_problem(404, "not_found");
    let malformed = app
        .send(
            Method::POST,
            &format!("/api/v1/webhooks/telegram/{channel}"),
            None,
            &[("x-telegram-bot-api-secret-token", TELEGRAM_SECRET)],
            Some("{".into()),
        )
        .await;
    malformed.assert_problem(400, "invalid_body");
    assert_eq!(app.event_count().await, before);
    // an update type not handled is acknowledged, nothing appended
    let poll = deliver(
        &app,
        channel,
        Some(TELEGRAM_SECRET),
        &json!({"update_id": 5, "poll": {}}),
    )
    .await;
    assert_eq!(poll.status, StatusCode::OK);
    assert_eq!(app.event_count().await, before);
}
