//! The vendors around the server, as the simulator plays them: a local stand-in for the
//! APIs the server calls (WAHA, the Telegram Bot API, Viber's REST API), and the webhooks
//! the vendors send, in their own formats (`../shared/fixtures`) and signed as they sign.

use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use uuid::Uuid;

/// Serves, on `bind`, one answer that satisfies every call the server makes: WAHA's
/// `POST /api/sessions` and `/api/sendText` (`id`), the Bot API's `sendMessage`
/// (`ok`, `result.message_id`), Viber's `/pa/send_message` (`status: 0`,
/// `message_token`) and Stripe's `DELETE /v1/subscriptions/{id}` (a hard delete's step).
/// Point `X8_WAHA_URL`, `X8_TELEGRAM_API_URL`, `X8_VIBER_API_URL` and `X8_STRIPE_API_URL`
/// at it.
///
/// # Errors
/// The address cannot be bound.
pub async fn serve(bind: &str) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| anyhow::anyhow!("cannot serve the vendor APIs on {bind}: {e}"))?;
    let sent = Arc::new(AtomicU64::new(1));
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let n = sent.fetch_add(1, Ordering::Relaxed);
        async move {
            if let Some(id) = uri.path().strip_prefix("/v1/subscriptions/") {
                return (StatusCode::OK, Json(cancelled_subscription(id)));
            }
            (
                StatusCode::OK,
                Json(json!({
                    "ok": true, "result": {"message_id": n}, "status": 0, "status_message": "ok",
                    "message_token": 5_000_000_000_000_000_000u64 + n,
                    "id": format!("true_sim@c.us_{n:032X}"),
                })),
            )
        }
    });
    Ok(tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    }))
}

/// Stripe's answer to cancelling subscription `id`: the object, `canceled`.
fn cancelled_subscription(id: &str) -> Value {
    let mut object = subscription_fixture();
    object["id"] = json!(id);
    object["status"] = json!("canceled");
    object
}

fn subscription_fixture() -> Value {
    serde_json::from_str(include_str!(
        "../../../tests/fixtures/stripe/subscription.json"
    ))
    .unwrap_or(Value::Null)
}

/// A Telegram text update (the Bot API docs' fixture) from chat `chat`.
pub fn telegram_text(update_id: i64, chat: i64, at: DateTime<Utc>, text: &str) -> Value {
    let mut update: Value = serde_json::from_str(include_str!(
        "../../../tests/fixtures/telegram/update.message.text.json"
    ))
    .unwrap_or(Value::Null);
    update["update_id"] = json!(update_id);
    update["message"]["message_id"] = json!(update_id);
    update["message"]["date"] = json!(at.timestamp());
    update["message"]["text"] = json!(text);
    update["message"]["chat"]["id"] = json!(chat);
    update["message"]["from"]["id"] = json!(chat);
    update
}

/// A Viber `message` callback (the docs' fixture) from `sender`, as the raw body to sign.
pub fn viber_text(token: u64, sender: &str, at: DateTime<Utc>, text: &str) -> String {
    let mut message: Value = serde_json::from_str(include_str!(
        "../../../tests/fixtures/viber/message.text.json"
    ))
    .unwrap_or(Value::Null);
    message["timestamp"] = json!(at.timestamp_millis());
    message["sender"]["id"] = json!(sender);
    message["sender"]["name"] = json!("Viber customer");
    message["message"]["text"] = json!(text);
    // serde_json keeps a u64 exact (Viber's tokens exceed 2^53).
    message["message_token"] = json!(token);
    message.to_string()
}

/// `X-Viber-Content-Signature` of `body` under the bot's `auth_token`.
pub fn viber_signature(auth_token: &str, body: &str) -> String {
    x8_commands::viber::sign(auth_token.as_bytes(), body.as_bytes())
}

/// A WAHA `session.status` event (the fixture) for `session`.
pub fn waha_status(session: &str, status: &str) -> Value {
    let mut event: Value = serde_json::from_str(include_str!(
        "../../../tests/fixtures/waha/session.status.working.json"
    ))
    .unwrap_or(Value::Null);
    event["id"] = json!(format!("evt_{}", Uuid::new_v4().simple()));
    event["session"] = json!(session);
    event["payload"]["status"] = json!(status);
    event
}

/// A WAHA `message` event (the fixture) from `phone` to `session`.
pub fn waha_text(session: &str, id: &str, phone: &str, at: DateTime<Utc>, text: &str) -> Value {
    let mut event: Value = serde_json::from_str(include_str!(
        "../../../tests/fixtures/waha/message.text.json"
    ))
    .unwrap_or(Value::Null);
    event["id"] = json!(format!("evt_{id}"));
    event["session"] = json!(session);
    let payload = &mut event["payload"];
    payload["id"] = json!(format!("false_{phone}@c.us_{id}"));
    payload["fromMe"] = json!(false);
    payload["from"] = json!(format!("{phone}@c.us"));
    payload["to"] = json!("38160000000@c.us");
    payload["timestamp"] = json!(at.timestamp());
    payload["body"] = json!(text);
    event
}

/// `X-Webhook-Hmac`: hex HMAC-SHA512 of `body` under WAHA's webhook `secret`.
pub fn waha_signature(secret: &str, body: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = match Hmac::<sha2::Sha512>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// An Infobip inbound text for WhatsApp or Viber (`integration`: `WHATSAPP`, `VIBER_BOT`).
pub fn infobip_text(
    id: &str,
    from: &str,
    integration: &str,
    at: DateTime<Utc>,
    text: &str,
) -> Value {
    json!({"results": [{"from": from, "to": "385921004026", "integrationType": integration,
        "receivedAt": at.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string(), "messageId": id,
        "message": {"text": text, "type": "TEXT"}, "contact": {"name": "Infobip customer"}}],
        "messageCount": 1, "pendingMessageCount": 0})
}

/// A Stripe subscription event (`customer.subscription.created|updated`) for `tenant` on
/// `price`, from the API reference's subscription object.
pub fn stripe_subscription(
    id: &str,
    event_type: &str,
    tenant: Uuid,
    number: usize,
    price: &str,
    created: DateTime<Utc>,
) -> Value {
    let mut object = subscription_fixture();
    object["id"] = json!(format!("sub_sim_{number}"));
    object["customer"] = json!(format!("cus_sim_{number}"));
    object["metadata"] = json!({ "tenant_id": tenant.to_string() });
    object["items"]["data"][0]["price"]["id"] = json!(price);
    object["status"] = json!("active");
    object["cancel_at_period_end"] = json!(false);
    json!({
        "id": id, "object": "event", "type": event_type, "created": created.timestamp(),
        "api_version": "2025-03-31.basil", "livemode": false, "pending_webhooks": 1,
        "data": { "object": object }
    })
}

/// `Stripe-Signature` of `body` under the endpoint's `secret`, timestamped now.
pub fn stripe_signature(secret: &str, body: &str) -> String {
    let secret = SecretString::from(secret.to_string());
    x8_commands::stripe::signature::sign(body.as_bytes(), &secret, Utc::now().timestamp())
}
