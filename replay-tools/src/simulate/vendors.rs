//! The vendors around the server, as the simulator plays them: a local stand-in for the
//! APIs the server calls (WAHA, the Telegram Bot API, Viber's REST API, Infobip, Stripe),
//! and the webhooks
//! the vendors send, in their own formats (`../shared/fixtures`) and signed as they sign.

use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use uuid::Uuid;

/// Serves, on `bind`, the answers to every call the server makes: WAHA's
/// `POST /api/sessions` and `/api/sendText` (`id`), the Bot API's `sendMessage`
/// (`ok`, `result.message_id`), Viber's `/pa/send_message` (`status: 0`,
/// `message_token`), Infobip's `/viber/2/messages` (`messageId`), and Stripe's
/// `POST /v1/accounts`, `/v1/account_links`, `/v1/checkout/sessions`,
/// `DELETE /v1/subscriptions/{id}` and `/v1/accounts/{id}` (a hard delete's steps).
/// Point `X8_WAHA_URL`, `X8_TELEGRAM_API_URL`, `X8_VIBER_API_URL` and `X8_STRIPE_API_URL`
/// at it, and an Infobip connection's `infobip_base_url` credential.
///
/// Stripe's objects are named after what they are made for (the business, the order), so
/// a call the server repeats after a crash gets the same object, as Stripe's idempotency
/// keys give it.
///
/// # Errors
/// The address cannot be bound.
pub async fn serve(bind: &str) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| anyhow::anyhow!("cannot serve the vendor APIs on {bind}: {e}"))?;
    let sent = Arc::new(AtomicU64::new(1));
    let app = axum::Router::new().fallback(
        move |method: axum::http::Method, uri: axum::http::Uri, body: axum::body::Bytes| {
            let n = sent.fetch_add(1, Ordering::Relaxed);
            async move { (StatusCode::OK, Json(answer(&method, uri.path(), &body, n))) }
        },
    );
    Ok(tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    }))
}

/// The stand-in's answer to call number `n`: `body` is Stripe's form, empty elsewhere.
fn answer(method: &axum::http::Method, path: &str, body: &[u8], n: u64) -> Value {
    let form: std::collections::HashMap<String, String> =
        form_urlencoded::parse(body).into_owned().collect();
    let field = |name: &str| form.get(name).map_or("", String::as_str);
    match path {
        "/v1/accounts" => {
            json!({"id": connected_account(field("metadata[tenant_id]")), "object": "account"})
        }
        "/v1/account_links" => json!({"object": "account_link",
            "url": format!("https://connect.stripe.test/setup/{}", field("account"))}),
        "/v1/checkout/sessions" => {
            let made_for = match field("metadata[order_id]") {
                "" => field("metadata[tenant_id]"),
                order => order,
            };
            let id = checkout_session(made_for);
            json!({"id": id, "object": "checkout.session",
                   "url": format!("https://checkout.stripe.test/c/pay/{id}")})
        }
        _ => {
            if let Some(id) = path.strip_prefix("/v1/subscriptions/") {
                return cancelled_subscription(id);
            }
            if let Some(id) = path.strip_prefix("/v1/accounts/") {
                if method == axum::http::Method::DELETE {
                    return json!({"id": id, "object": "account", "deleted": true});
                }
            }
            json!({
                "ok": true, "result": {"message_id": n}, "status": 0, "status_message": "ok",
                "message_token": 5_000_000_000_000_000_000u64 + n,
                "id": format!("true_sim@c.us_{n:032X}"),
                "messageId": format!("ib-out-{n}"),
            })
        }
    }
}

/// The Connect account the stand-in makes for the business `tenant` (a UUID).
pub fn connected_account(tenant: &str) -> String {
    format!("acct_sim_{}", tenant.replace('-', ""))
}

/// The Checkout Session the stand-in makes for an order (or a business's subscription).
pub fn checkout_session(made_for: &str) -> String {
    format!("cs_sim_{}", made_for.replace('-', ""))
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
    stripe_event(id, event_type, None, object, created)
}

/// `Stripe-Signature` of `body` under the endpoint's `secret`, timestamped now.
pub fn stripe_signature(secret: &str, body: &str) -> String {
    let secret = SecretString::from(secret.to_string());
    x8_commands::stripe::signature::sign(body.as_bytes(), &secret, Utc::now().timestamp())
}

/// A Stripe event envelope of `event_type` around `object`, for a connected account when
/// `account` is given (Connect events carry it beside the object).
fn stripe_event(
    id: &str,
    event_type: &str,
    account: Option<&str>,
    object: Value,
    created: DateTime<Utc>,
) -> Value {
    let mut event = json!({
        "id": id, "object": "event", "type": event_type, "created": created.timestamp(),
        "api_version": "2025-03-31.basil", "livemode": false, "pending_webhooks": 1,
        "data": { "object": object }
    });
    if let Some(account) = account {
        event["account"] = json!(account);
    }
    event
}

/// A Stripe `invoice.paid` or `invoice.payment_failed` event for the subscription of
/// business `number` (found by its Stripe customer, learned from the subscription's
/// events): `amount_minor` EUR, the attempt `attempt` and, for a failure, Stripe's next
/// attempt three days later.
pub fn stripe_invoice(
    id: &str,
    event_type: &str,
    number: usize,
    invoice: &str,
    amount_minor: i64,
    attempt: u32,
    created: DateTime<Utc>,
) -> Value {
    let paid = event_type == "invoice.paid";
    let next_attempt = (!paid).then(|| (created + chrono::Duration::days(3)).timestamp());
    let object = json!({
        "id": invoice, "object": "invoice", "customer": format!("cus_sim_{number}"),
        "subscription": format!("sub_sim_{number}"), "currency": "eur",
        "amount_due": amount_minor, "amount_paid": if paid { amount_minor } else { 0 },
        "amount_remaining": if paid { 0 } else { amount_minor },
        "attempt_count": attempt, "attempted": true, "paid": paid,
        "status": if paid { "paid" } else { "open" },
        "billing_reason": "subscription_cycle", "collection_method": "charge_automatically",
        "next_payment_attempt": next_attempt, "created": created.timestamp(), "livemode": false,
    });
    stripe_event(id, event_type, None, object, created)
}

/// A Stripe Connect `account.updated` event (the API reference's account object) for the
/// business's connected `account`: onboarding finished, charges and payouts enabled.
pub fn stripe_account_ready(
    id: &str,
    account: &str,
    tenant: Uuid,
    created: DateTime<Utc>,
) -> Value {
    let mut object: Value =
        serde_json::from_str(include_str!("../../../tests/fixtures/stripe/account.json"))
            .unwrap_or(Value::Null);
    object["id"] = json!(account);
    object["charges_enabled"] = json!(true);
    object["payouts_enabled"] = json!(true);
    object["details_submitted"] = json!(true);
    object["metadata"] = json!({ "tenant_id": tenant.to_string() });
    object["requirements"]["currently_due"] = json!([]);
    object["requirements"]["eventually_due"] = json!([]);
    object["requirements"]["disabled_reason"] = Value::Null;
    stripe_event(id, "account.updated", Some(account), object, created)
}

/// A Stripe Connect `checkout.session.completed` (the API reference's event) for the
/// payment link of `order` on the connected `account`: paid, `amount_minor` EUR, with the
/// payment intent `payment_intent`.
pub fn stripe_order_paid(
    id: &str,
    account: &str,
    order: Uuid,
    tenant: Uuid,
    amount_minor: i64,
    payment_intent: &str,
    created: DateTime<Utc>,
) -> Value {
    let mut event: Value = serde_json::from_str(include_str!(
        "../../../tests/fixtures/stripe/event.checkout.session.completed.json"
    ))
    .unwrap_or(Value::Null);
    let object = &mut event["data"]["object"];
    object["id"] = json!(checkout_session(&order.to_string()));
    object["mode"] = json!("payment");
    object["status"] = json!("complete");
    object["payment_status"] = json!("paid");
    object["amount_subtotal"] = json!(amount_minor);
    object["amount_total"] = json!(amount_minor);
    object["currency"] = json!("eur");
    object["payment_intent"] = json!(payment_intent);
    object["subscription"] = Value::Null;
    object["metadata"] = json!({ "order_id": order.to_string(), "tenant_id": tenant.to_string() });
    let object = object.take();
    stripe_event(
        id,
        "checkout.session.completed",
        Some(account),
        object,
        created,
    )
}
