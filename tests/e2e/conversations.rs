//! Conversations from the providers' webhooks against the real PostgreSQL: verification,
//! dedupe, lead sources, personal fields sealed in the log.

use axum::http::{Method, StatusCode};
use chrono::Duration;
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};
use x8_projections::conversations::ConversationsProjection;
use x8_replay::checksum::checksums;
use x8_tests::{telegram, TestApp, TestClock, TestResponse};

const TELEGRAM_SECRET: &str = telegram::SECRET;

/// A business with a Telegram connection whose credentials hold the webhook secret.
async fn telegram_connection(app: &TestApp) -> Uuid {
    connection(app, "telegram", telegram::credentials()).await.0
}

/// A business with a connection on `platform` holding `credentials`; its id and the
/// owner's token.
async fn connection(app: &TestApp, platform: &str, credentials: Value) -> (Uuid, String) {
    let (tenant, token) = app.tenant_with_owner("Cafe", "owner@cafe.test").await;
    let company = app.company(&token, tenant).await;
    let channel = app
        .connection_with(&token, company, platform, &credentials)
        .await;
    (channel, token)
}

use telegram::{fixture, fixture_time, text as telegram_text};

/// An app on `clock` with a Telegram bot (token `123:abc`) whose fake Bot API answers
/// `status`: the app, the fake, the connection and its owner's token.
async fn bot_at(
    db: PgConnectOptions,
    clock: std::sync::Arc<TestClock>,
    status: u16,
) -> (TestApp, wiremock::MockServer, Uuid, String) {
    let telegram = telegram::fake_bot_api(status).await;
    let app = TestApp::spawn_with_clock(db, clock)
        .await
        .with_bot_apis(&telegram.uri());
    let (channel, token) = connection(
        &app,
        "telegram",
        json!({ "bot_token": "123:abc", "webhook_secret": TELEGRAM_SECRET }),
    )
    .await;
    (app, telegram, channel, token)
}

/// From now on the fake Bot API accepts every message, as message 778.
async fn bot_api_recovers(telegram: &wiremock::MockServer) {
    telegram.reset().await;
    Mock::given(method("POST"))
        .and(path("/bot123:abc/sendMessage"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"ok": true, "result": {"message_id": 778}})),
        )
        .mount(telegram)
        .await;
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
    let first = app
        .telegram_update(channel, Some(TELEGRAM_SECRET), &fixture())
        .await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    let again = app
        .telegram_update(channel, Some(TELEGRAM_SECRET), &fixture())
        .await;
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
    app.telegram_update(channel, Some("wrong"), &fixture())
        .await
        .assert_problem(401, "invalid_signature");
    app.telegram_update(channel, None, &fixture())
        .await
        .assert_problem(401, "invalid_signature");
    // an unknown connection is 404; malformed JSON with the right secret is 400
    app.telegram_update(Uuid::new_v4(), Some(TELEGRAM_SECRET), &fixture())
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
    let poll = app
        .telegram_update(
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
    let (channel, owner) = connection(&app, "viber", json!({ "auth_token": VIBER_TOKEN })).await;
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
    let history = app
        .get_caught_up(
            &owner,
            &format!("/api/v1/conversations/{conversation}/messages"),
        )
        .await;
    assert_eq!(
        history.body["messages"][0]["message_id"],
        "4912661846655238145"
    );
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

#[sqlx::test(migrations = "../migrations")]
async fn a_reply_is_sent_priced_and_timed_and_the_read_model_carries_its_lead_source(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    // Given a conversation opened from a TikTok /start link at T, and the clock at T+90 s
    let clock = TestClock::at(fixture_time() + Duration::seconds(90));
    let (app, telegram, channel, token) = bot_at(db, clock.clone(), 200).await;
    let opened = app
        .telegram_update(
            channel,
            Some(TELEGRAM_SECRET),
            &telegram_text(1, 1, 0, "/start tiktok_autumn"),
        )
        .await;
    let conversation = opened.body["conversation_id"].as_str().unwrap().to_string();
    app.telegram_update(
        channel,
        Some(TELEGRAM_SECRET),
        &telegram_text(2, 2, 30, "Is it open?"),
    )
    .await;
    // When we reply 90 s after the first unanswered message
    let sent = app
        .reply(
            &token,
            &conversation,
            json!({"text": "Yes, until 22:00", "type": "TYPE1"}),
        )
        .await;
    // Then Telegram accepted it and the reply is recorded with its id
    assert_eq!(sent.status, StatusCode::CREATED, "{:?}", sent.body);
    assert_eq!(sent.body["status"], "accepted");
    assert_eq!(sent.body["provider_message_id"], "777");
    let requests = telegram.received_requests().await.unwrap();
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(
        body,
        json!({"chat_id": "1111111", "text": "Yes, until 22:00"})
    );
    // And the read model: lead source tiktok, response time 90 s, a session-priced message
    let position = sent.body["position"].as_i64().unwrap();
    let view = app
        .send(
            Method::GET,
            &format!("/api/v1/conversations/{conversation}"),
            Some(&token),
            &[("x-min-position", &position.to_string())],
            None,
        )
        .await;
    assert_eq!(view.body["lead_source"], "tiktok", "{:?}", view.body);
    assert_eq!(view.body["contact_name"], "Test Firstname Test Lastname");
    assert_eq!(view.body["avg_response_secs"], 90);
    assert_eq!(view.body["cost_micro_eur"], 4_500);
    assert_eq!(view.body["waiting_since"], Value::Null);
    let history = app
        .get_caught_up(
            &token,
            &format!("/api/v1/conversations/{conversation}/messages"),
        )
        .await;
    let messages = history.body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[1]["text"], "Is it open?");
    assert_eq!(messages[2]["direction"], "out");
    assert_eq!(messages[2]["text"], "Yes, until 22:00");
    assert_eq!(messages[2]["status"], "accepted");
    assert_eq!(messages[2]["response_time_secs"], 90);
    assert_eq!(messages[2]["pricing_window"], "session");
    // And the company's list filters by lead source and shows nothing unanswered
    let company: String = sqlx::query_scalar::<_, Uuid>("select company_id from conversations")
        .fetch_one(app.store.pool())
        .await
        .unwrap()
        .to_string();
    let tiktok = app
        .get_caught_up(
            &token,
            &format!("/api/v1/companies/{company}/conversations?lead_source=tiktok"),
        )
        .await;
    assert_eq!(tiktok.body["conversations"].as_array().unwrap().len(), 1);
    let unanswered = app
        .get_caught_up(
            &token,
            &format!("/api/v1/companies/{company}/conversations?unanswered=true"),
        )
        .await;
    assert_eq!(
        unanswered.body["conversations"].as_array().unwrap().len(),
        0
    );
    // And a proactive message a day after the last inbound one costs the proactive rate
    clock.advance(Duration::hours(24) + Duration::seconds(30));
    let later = app
        .reply(
            &token,
            &conversation,
            json!({"text": "Your order is ready", "type": "TYPE3", "rich_media": true}),
        )
        .await;
    assert_eq!(later.status, StatusCode::CREATED, "{:?}", later.body);
    let history = app
        .get_caught_up(
            &token,
            &format!("/api/v1/conversations/{conversation}/messages"),
        )
        .await;
    let last = &history.body["messages"][3];
    assert_eq!(last["pricing_window"], "proactive");
    assert_eq!(last["cost_micro_eur"], 10_800);
    assert_eq!(last["kind"], "TYPE3");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_provider_failure_is_recorded_as_failed_and_a_retry_sends_it(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    // Given a conversation and a Telegram API that answers 502
    let telegram = telegram::fake_bot_api(502).await;
    let app = TestApp::spawn(db).await.with_bot_apis(&telegram.uri());
    let (channel, token) = connection(
        &app,
        "telegram",
        json!({ "bot_token": "123:abc", "webhook_secret": TELEGRAM_SECRET }),
    )
    .await;
    let opened = app
        .telegram_update(channel, Some(TELEGRAM_SECRET), &fixture())
        .await;
    let conversation = opened.body["conversation_id"].as_str().unwrap().to_string();
    // When we reply
    let sent = app
        .reply(
            &token,
            &conversation,
            json!({"text": "Hello!", "type": "TYPE1"}),
        )
        .await;
    // Then the message is kept, failed, with the provider's reason
    assert_eq!(sent.status, StatusCode::CREATED, "{:?}", sent.body);
    assert_eq!(sent.body["status"], "failed");
    assert!(sent.body["failure_reason"]
        .as_str()
        .unwrap()
        .contains("502"));
    let message_id = sent.body["message_id"].as_str().unwrap().to_string();
    let history = app
        .get_caught_up(
            &token,
            &format!("/api/v1/conversations/{conversation}/messages"),
        )
        .await;
    assert_eq!(history.body["messages"][1]["status"], "failed");
    assert_eq!(history.body["messages"][1]["text"], "Hello!");
    // When Telegram recovers and the message is retried
    bot_api_recovers(&telegram).await;
    let retried = app
        .send_json(
            Method::POST,
            &format!("/api/v1/conversations/{conversation}/messages/{message_id}/retry"),
            &token,
            &json!({}),
        )
        .await;
    // Then it is accepted, once: a second retry sends nothing
    assert_eq!(retried.body["status"], "accepted", "{:?}", retried.body);
    assert_eq!(retried.body["provider_message_id"], "778");
    let again = app
        .send_json(
            Method::POST,
            &format!("/api/v1/conversations/{conversation}/messages/{message_id}/retry"),
            &token,
            &json!({}),
        )
        .await;
    assert_eq!(again.body["status"], "accepted");
    assert_eq!(telegram.received_requests().await.unwrap().len(), 1);
    let conversation: Uuid = conversation.parse().unwrap();
    assert_eq!(
        app.stream_event_types("conversation", conversation).await,
        [
            "ConversationOpened",
            "MessageReceived",
            "MessageSent",
            "MessageSendFailed",
            "MessageAccepted"
        ]
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn three_messages_within_the_window_form_one_batch_and_a_fourth_after_it_another(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    // Given a Telegram connection with the default 10 s window, the clock at T+5 s
    let clock = TestClock::at(fixture_time() + Duration::seconds(5));
    let app = TestApp::spawn_with_clock(db, clock.clone()).await;
    let (channel, token) = connection(
        &app,
        "telegram",
        json!({ "bot_token": "123:abc", "webhook_secret": TELEGRAM_SECRET }),
    )
    .await;
    // When three messages arrive at T, T+4 s and T+9 s
    let mut conversation = String::new();
    for (n, seconds, text) in [(1, 0, "hi"), (2, 4, "I want"), (3, 9, "a pizza")] {
        let answer = app
            .telegram_update(
                channel,
                Some(TELEGRAM_SECRET),
                &telegram_text(n, n, seconds, text),
            )
            .await;
        conversation = answer.body["conversation_id"].as_str().unwrap().to_string();
    }
    let pending = format!("/api/v1/conversations/{conversation}/pending-batch");
    // Then before T+19 s the batch is still filling
    app.send(Method::GET, &pending, Some(&token), &[], None)
        .await
        .assert_problem(404, "no_pending_batch");
    // And once the window has passed it is one batch of three, taken once
    clock.advance(Duration::seconds(15));
    let batch = app
        .send(Method::GET, &pending, Some(&token), &[], None)
        .await;
    assert_eq!(batch.status, StatusCode::OK, "{:?}", batch.body);
    assert_eq!(batch.body["batch"], 1);
    let texts: Vec<&str> = batch.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["hi", "I want", "a pizza"]);
    let take = format!("{pending}/1/take");
    let taken = app.send_json(Method::POST, &take, &token, &json!({})).await;
    assert_eq!(taken.status, StatusCode::OK, "{:?}", taken.body);
    app.send(Method::GET, &pending, Some(&token), &[], None)
        .await
        .assert_problem(404, "no_pending_batch");
    // When a fourth message arrives after the window
    app.telegram_update(
        channel,
        Some(TELEGRAM_SECRET),
        &telegram_text(4, 4, 25, "and a cola"),
    )
    .await;
    clock.advance(Duration::seconds(30));
    // Then it starts batch 2, on its own
    let second = app
        .send(Method::GET, &pending, Some(&token), &[], None)
        .await;
    assert_eq!(second.body["batch"], 2, "{:?}", second.body);
    assert_eq!(second.body["messages"].as_array().unwrap().len(), 1);
    // And a window outside 1–300 s is refused, a valid one recorded
    let window = format!("/api/v1/channels/{channel}/batch-window");
    app.send_json(Method::PUT, &window, &token, &json!({"secs": 0}))
        .await
        .assert_problem(422, "invalid_batch_window");
    let set = app
        .send_json(Method::PUT, &window, &token, &json!({"secs": 30}))
        .await;
    assert_eq!(set.status, StatusCode::OK, "{:?}", set.body);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_conversation_s_read_model_is_the_same_built_event_by_event_or_in_one_batch(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    // Given a conversation whose first reply fails and is retried, a second reply, a
    // resolution and a customer message that reopens it, each applied as it happened
    let clock = TestClock::at(fixture_time() + Duration::seconds(90));
    let (app, telegram, channel, token) = bot_at(db, clock, 502).await;
    let opened = app
        .telegram_update(
            channel,
            Some(TELEGRAM_SECRET),
            &telegram_text(1, 1, 0, "Hi"),
        )
        .await;
    let conversation = opened.body["conversation_id"].as_str().unwrap().to_string();
    app.telegram_update(
        channel,
        Some(TELEGRAM_SECRET),
        &telegram_text(2, 2, 20, "Anyone?"),
    )
    .await;
    let failed = app
        .reply(
            &token,
            &conversation,
            json!({"text": "Yes", "type": "TYPE1"}),
        )
        .await;
    assert_eq!(failed.body["status"], "failed", "{:?}", failed.body);
    bot_api_recovers(&telegram).await;
    let message_id = failed.body["message_id"].as_str().unwrap();
    let retry = format!("/api/v1/conversations/{conversation}/messages/{message_id}/retry");
    app.send_json(Method::POST, &retry, &token, &json!({}))
        .await;
    app.reply(
        &token,
        &conversation,
        json!({"text": "How can I help?", "type": "TYPE2"}),
    )
    .await;
    let resolve = format!("/api/v1/conversations/{conversation}/resolve");
    let resolved = app
        .send_json(Method::POST, &resolve, &token, &json!({}))
        .await;
    assert!(resolved.status.is_success(), "{:?}", resolved.body);
    app.telegram_update(
        channel,
        Some(TELEGRAM_SECRET),
        &telegram_text(3, 3, 600, "One more thing"),
    )
    .await;
    app.caught_up().await;
    let live = checksums(&app.store, "conversations").await.unwrap();
    // (every event of the stream is recorded as its business's, replies and outcomes too)
    // language=PostgreSQL
    let unowned: Vec<String> = sqlx::query_scalar(
        "select event_type from events
         where aggregate_type = 'conversation' and aggregate_id = $1 and tenant_id is null",
    )
    .bind(&conversation)
    .fetch_all(app.store.pool())
    .await
    .unwrap();
    assert!(
        unowned.is_empty(),
        "events without their business: {unowned:?}"
    );

    // When the read models are rebuilt from the log, the whole of it in one batch
    let only = ConversationsProjection;
    app.state.projections.rebuild(&only, &|_| {}).await.unwrap();

    // Then they equal the ones built as it happened
    assert_eq!(checksums(&app.store, "conversations").await.unwrap(), live);
    // And they say what happened: open again, 3 in, 2 out (the retried one accepted),
    // waiting since the last message
    let view = app
        .get_caught_up(&token, &format!("/api/v1/conversations/{conversation}"))
        .await;
    assert_eq!(view.body["status"], "open", "{:?}", view.body);
    assert_eq!(view.body["messages_in"], 3);
    assert_eq!(view.body["messages_out"], 2);
    assert_eq!(view.body["cost_micro_eur"], 9_000);
    let waiting_since: chrono::DateTime<chrono::Utc> = view.body["waiting_since"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(waiting_since, fixture_time() + Duration::seconds(600));
    let history = app
        .get_caught_up(
            &token,
            &format!("/api/v1/conversations/{conversation}/messages"),
        )
        .await;
    let statuses: Vec<&Value> = history.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["status"])
        .collect();
    assert_eq!(
        statuses,
        [
            &Value::Null,
            &Value::Null,
            &json!("accepted"),
            &json!("accepted"),
            &Value::Null
        ]
    );
}
