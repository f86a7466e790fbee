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
    connection(
        app,
        "telegram",
        json!({ "bot_token": "123:abc", "webhook_secret": TELEGRAM_SECRET }),
    )
    .await
    .0
}

/// A business with a connection on `platform` holding `credentials`; its id and the
/// owner's token.
async fn connection(app: &TestApp, platform: &str, credentials: Value) -> (Uuid, String) {
    let (tenant, token) = app.tenant_with_owner("Cafe", "owner@cafe.test").await;
    let company = app.company(&token, tenant).await;
    let connected = app.connect_channel(&token, company, platform).await;
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
            &credentials,
        )
        .await;
    assert_eq!(stored.status, StatusCode::OK, "{:?}", stored.body);
    (channel.parse().unwrap(), token)
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

/// The Viber bot token of the SDK's signature vector.
const VIBER_TOKEN: &str = "44dafb7e0f40021e-61a47a1e6778d187-f2c5a676a07050b3";

async fn viber_callback(app: &TestApp, channel: Uuid, body: &str, token: &str) -> TestResponse {
    let signature = x8_commands::viber::sign(token.as_bytes(), body.as_bytes());
    app.send(
        Method::POST,
        &format!("/api/v1/webhooks/viber/{channel}"),
        None,
        &[("x-viber-content-signature", signature.as_str())],
        Some(body.to_string()),
    )
    .await
}

fn viber_fixture() -> String {
    include_str!("../fixtures/viber/message.text.json").to_string()
}

#[sqlx::test(migrations = "../migrations")]
async fn viber_callbacks_are_verified_deduplicated_and_keep_64_bit_tokens_exact(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    // Given a Viber connection holding the bot's auth token
    let app = TestApp::spawn(db).await;
    let (channel, _) = connection(&app, "viber", json!({ "auth_token": VIBER_TOKEN })).await;
    let before = app.event_count().await;
    // When the docs' message arrives signed with another token, or unsigned: 401, nothing
    viber_callback(&app, channel, &viber_fixture(), "another-token")
        .await
        .assert_problem(401, "invalid_signature");
    let unsigned = app
        .send(
            Method::POST,
            &format!("/api/v1/webhooks/viber/{channel}"),
            None,
            &[],
            Some(viber_fixture()),
        )
        .await;
    unsigned.assert_problem(401, "invalid_signature");
    assert_eq!(app.event_count().await, before);
    // When it arrives signed, twice (the signature may also come as ?sig=)
    let first = viber_callback(&app, channel, &viber_fixture(), VIBER_TOKEN).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    let signature = x8_commands::viber::sign(VIBER_TOKEN.as_bytes(), viber_fixture().as_bytes());
    let again = app
        .send(
            Method::POST,
            &format!("/api/v1/webhooks/viber/{channel}?sig={signature}"),
            None,
            &[],
            Some(viber_fixture()),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
    // Then one conversation with one message whose token is exact (above 2^53)
    let conversation: Uuid = first.body["conversation_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        app.stream_event_types("conversation", conversation).await,
        ["ConversationOpened", "MessageReceived"]
    );
    let token: String = sqlx::query_scalar(
        "select payload->'MessageReceived'->>'provider_message_id' from events
         where aggregate_type = 'conversation' and event_type = 'MessageReceived'",
    )
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    assert_eq!(token, "4912661846655238145");
    // And a receipt for a message X8 did not send, and a `webhook` check, are acknowledged
    let after = app.event_count().await;
    let seen = json!({"event": "seen", "timestamp": 1_457_764_197_627_u64,
        "message_token": 4_912_661_846_655_238_146_u64, "user_id": "01234567890A="})
    .to_string();
    let receipt = viber_callback(&app, channel, &seen, VIBER_TOKEN).await;
    assert_eq!(receipt.status, StatusCode::OK, "{:?}", receipt.body);
    assert!(receipt.body["ignored"].is_string());
    let check =
        r#"{"event":"webhook","timestamp":4977069964384421269,"message_token":1478683725125}"#;
    let checked = viber_callback(&app, channel, check, VIBER_TOKEN).await;
    assert_eq!(checked.status, StatusCode::OK, "{:?}", checked.body);
    assert_eq!(app.event_count().await, after);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_viber_conversation_started_from_an_ad_keeps_that_lead_source(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    // Given a Viber connection
    let app = TestApp::spawn(db).await;
    let (channel, _) = connection(&app, "viber", json!({ "auth_token": VIBER_TOKEN })).await;
    // When the contact opens the chat from a TikTok deep link, then writes
    let started = json!({"event": "conversation_started", "timestamp": 1_457_764_197_000_u64,
        "message_token": 4_912_661_846_655_238_100_u64, "type": "open",
        "context": "tiktok_autumn", "user": {"id": "01234567890A=", "name": "Jo"},
        "subscribed": false})
    .to_string();
    let opened = viber_callback(&app, channel, &started, VIBER_TOKEN).await;
    assert_eq!(opened.status, StatusCode::OK, "{:?}", opened.body);
    let message = viber_callback(&app, channel, &viber_fixture(), VIBER_TOKEN).await;
    // Then the message continues the conversation opened with source tiktok
    assert_eq!(
        message.body["conversation_id"],
        opened.body["conversation_id"]
    );
    let source: String = sqlx::query_scalar(
        "select payload->'ConversationOpened'->'lead_source'->>'source' from events
         where event_type = 'ConversationOpened'",
    )
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    assert_eq!(source, "tiktok");
}

const INFOBIP_SECRET: &str = "infobip-shared-secret";

async fn infobip(app: &TestApp, channel: Uuid, secret: &str, body: &Value) -> TestResponse {
    app.send(
        Method::POST,
        &format!("/api/v1/webhooks/infobip/{channel}"),
        None,
        &[("x-webhook-secret", secret)],
        Some(body.to_string()),
    )
    .await
}

#[sqlx::test(migrations = "../migrations")]
async fn infobip_results_are_checked_against_the_shared_secret_and_recorded_once(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    // Given a Viber connection through Infobip
    let app = TestApp::spawn(db).await;
    let (channel, _) = connection(
        &app,
        "viber",
        json!({ "api_key": "ib-key", "webhook_secret": INFOBIP_SECRET }),
    )
    .await;
    let inbound = json!({"results": [{"from": "385916242493", "to": "385921004026",
        "integrationType": "VIBER_BOT", "receivedAt": "2019-07-19T11:23:03.356+0000",
        "messageId": "ABEGOFl3YgSSAhALB0yv_yohWlRj", "message": {"text": "Hello", "type": "TEXT"},
        "contact": {"name": "Frank"}}], "messageCount": 1, "pendingMessageCount": 0});
    let before = app.event_count().await;
    // When it arrives with a wrong secret: 401, nothing appended
    infobip(&app, channel, "wrong", &inbound)
        .await
        .assert_problem(401, "invalid_signature");
    assert_eq!(app.event_count().await, before);
    // When it arrives twice with the right one
    let first = infobip(&app, channel, INFOBIP_SECRET, &inbound).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    let again = infobip(&app, channel, INFOBIP_SECRET, &inbound).await;
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
    // Then one conversation with one message
    let conversation: Uuid = first.body["results"][0]["conversation_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        app.stream_event_types("conversation", conversation).await,
        ["ConversationOpened", "MessageReceived"]
    );
    // And a report on a message X8 did not send is acknowledged, nothing appended
    let after = app.event_count().await;
    let report = json!({"results": [{"messageId": "not-ours", "to": "385916242493",
        "doneAt": "2019-07-19T11:24:02.000+0000", "status": {"groupName": "DELIVERED"}}]});
    let answered = infobip(&app, channel, INFOBIP_SECRET, &report).await;
    assert_eq!(answered.status, StatusCode::OK, "{:?}", answered.body);
    assert!(answered.body["results"][0]["ignored"].is_string());
    assert_eq!(app.event_count().await, after);
}
