//! Telegram as the tests drive it: the docs' update fixture shifted in time, a fake Bot
//! API, and a connection whose credentials hold the webhook secret.

use crate::{TestApp, TestResponse};
use axum::http::{Method, StatusCode};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The webhook secret every test connection holds.
pub const SECRET: &str = "tg-secret-0123456789";

/// Credentials of a test bot: token `123:abc` and [`SECRET`].
pub fn credentials() -> Value {
    json!({ "bot_token": "123:abc", "webhook_secret": SECRET })
}

/// The Bot API docs' text update (`/start` from chat 1111111).
pub fn fixture() -> Value {
    serde_json::from_str(include_str!(
        "../fixtures/telegram/update.message.text.json"
    ))
    .expect("fixture")
}

/// The fixture's time: 2015-09-07T17:05:32Z.
pub fn fixture_time() -> DateTime<Utc> {
    DateTime::from_timestamp(FIXTURE_UNIX, 0).expect("time")
}

const FIXTURE_UNIX: i64 = 1_441_645_532;

/// A text message from the fixture's chat, `seconds` after the fixture's time.
pub fn text(update_id: i64, message_id: i64, seconds: i64, body: &str) -> Value {
    text_at(
        update_id,
        message_id,
        fixture_time() + chrono::Duration::seconds(seconds),
        body,
    )
}

/// A text message from the fixture's chat, sent at `at`.
pub fn text_at(update_id: i64, message_id: i64, at: DateTime<Utc>, body: &str) -> Value {
    let mut update = fixture();
    update["update_id"] = json!(update_id);
    update["message"]["message_id"] = json!(message_id);
    update["message"]["date"] = json!(at.timestamp());
    update["message"]["text"] = json!(body);
    update
}

/// The same update from another chat (another customer).
pub fn from_chat(mut update: Value, chat_id: i64) -> Value {
    update["message"]["chat"]["id"] = json!(chat_id);
    update["message"]["from"]["id"] = json!(chat_id);
    update
}

/// A fake Bot API: `sendMessage` answers with message 777, or fails with `status`.
pub async fn fake_bot_api(status: u16) -> MockServer {
    let server = MockServer::start().await;
    let answer = if status == 200 {
        ResponseTemplate::new(200).set_body_json(json!({"ok": true, "result": {"message_id": 777}}))
    } else {
        ResponseTemplate::new(status)
            .set_body_json(json!({"ok": false, "description": "Bad Gateway"}))
    };
    Mock::given(method("POST"))
        .and(path("/bot123:abc/sendMessage"))
        .respond_with(answer)
        .mount(&server)
        .await;
    server
}

impl TestApp {
    /// Connects `platform` to `company` and stores `credentials`; the connection's id.
    pub async fn connection_with(
        &self,
        token: &str,
        company: Uuid,
        platform: &str,
        credentials: &Value,
    ) -> Uuid {
        let connected = self.connect_channel(token, company, platform).await;
        assert_eq!(
            connected.status,
            StatusCode::CREATED,
            "{:?}",
            connected.body
        );
        let channel = connected.body["channel_id"]
            .as_str()
            .expect("channel_id")
            .to_string();
        let stored = self
            .send_json(
                Method::PUT,
                &format!("/api/v1/channels/{channel}/credentials"),
                token,
                credentials,
            )
            .await;
        assert_eq!(stored.status, StatusCode::OK, "{:?}", stored.body);
        channel.parse().expect("uuid")
    }

    /// Delivers `update` to the Telegram webhook of `channel`, with `secret` if any.
    pub async fn telegram_update(
        &self,
        channel: Uuid,
        secret: Option<&str>,
        update: &Value,
    ) -> TestResponse {
        let headers: Vec<(&str, &str)> = secret
            .map(|s| ("x-telegram-bot-api-secret-token", s))
            .into_iter()
            .collect();
        self.send(
            Method::POST,
            &format!("/api/v1/webhooks/telegram/{channel}"),
            None,
            &headers,
            Some(update.to_string()),
        )
        .await
    }

    /// `POST /api/v1/conversations/{id}/messages` with `body` (`{text, type, …}`).
    pub async fn reply(&self, token: &str, conversation: &str, body: Value) -> TestResponse {
        self.send_json(
            Method::POST,
            &format!("/api/v1/conversations/{conversation}/messages"),
            token,
            &body,
        )
        .await
    }
}
