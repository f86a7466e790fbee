//! Provider webhooks. Each verifies the sender on the **raw** body before parsing, and
//! dedupes on the provider's delivery id; a failed verification is 401 and appends nothing.
//!
//! - `POST /api/v1/webhooks/waha`: WAHA events. With `X8_WAHA_WEBHOOK_SECRET` set,
//!   `X-Webhook-Hmac` must be the hex HMAC-SHA512 of the body (401 `invalid_signature`
//!   otherwise). Deduplicated on the envelope `id` (a SHA-256 of the body when WAHA sends
//!   none). `session.status` is routed by session name to its connection and recorded;
//!   `message` and `message.ack` are the contact's messages and our messages' receipts
//!   ([`x8_commands::waha_messages`]; the echo of our own sends is ignored). Events for
//!   sessions that are not ours, removed connections and event types not handled answer
//!   200 `{received: true, ignored}` so WAHA does not retry them.
//! - `POST /api/v1/webhooks/telegram/{channel_id}`: Telegram updates for that connection.
//!   `X-Telegram-Bot-Api-Secret-Token` must equal the connection's `webhook_secret`
//!   credential (401 `invalid_signature`); deduplicated on `update_id`. Messages and
//!   callback queries open or continue the contact's conversation; other updates, and
//!   any update for a removed connection, answer 200 `{received, ignored}`.
//! - `POST /api/v1/webhooks/viber/{channel_id}`: Viber callbacks for that connection.
//!   `X-Viber-Content-Signature` (or `?sig=`) must be the HMAC-SHA256 of the raw body under
//!   the connection's `auth_token` credential. `conversation_started` opens the contact's
//!   conversation (its `context` is the lead source), `message` records a message keyed by
//!   its 64-bit `message_token`, `delivered`/`seen`/`failed` are receipts; `webhook`,
//!   `subscribed` and `unsubscribed` are acknowledged.
//! - `POST /api/v1/webhooks/infobip/{channel_id}`: Infobip inbound messages and
//!   delivery/seen reports for a WhatsApp or Viber connection; `X-Webhook-Secret` must equal
//!   the connection's `webhook_secret` credential. Answers one entry per `results[]` item.
//! - Receipts for messages X8 did not send are acknowledged and ignored.
//! - `POST /api/v1/webhooks/stripe`: Stripe events. `Stripe-Signature` is verified on the
//!   raw body under every `X8_STRIPE_WEBHOOK_SECRET` (a rotation), with a timestamp no
//!   older than `X8_STRIPE_TOLERANCE_SECS` (300): 400 `invalid_signature` otherwise.
//!   Deduplicated on the event id; answers 200 `{received, position}`, `{received,
//!   unmatched}` for an event about nothing X8 knows (recorded), or `{received, ignored}`
//!   for an event type not handled (counted in `x8_webhooks_total`, nothing appended).

use crate::app::AppState;
use crate::error::ApiError;
use crate::extract::{ApiQuery, RawBody};
use crate::openapi::Problems;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256, Sha512};
use uuid::Uuid;
use x8_commands::billing::{handle_stripe_event, WebhookOutcome};
use x8_commands::channels::credential;
use x8_commands::conversations::{
    open, receive, record_receipt, ContactDetails, ConversationOpError, InboundMessage,
};
use x8_commands::stripe::event::StripeEvent;
use x8_commands::stripe::signature;
use x8_commands::telegram::Update;
use x8_commands::waha::record_session_status;
use x8_commands::waha_messages::{self, MessageAction};
use x8_commands::{infobip, viber};
use x8_commands::{CommandContext, CommandError};
use x8_domain::channel::whatsapp::channel_of_session;
use x8_domain::channel::{Channel, Platform};
use x8_domain::conversation::ConversationError;

/// The routes.
pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/webhooks/waha", post(waha))
        .route("/webhooks/stripe", post(stripe))
        .route("/webhooks/telegram/{channel_id}", post(telegram))
        .route("/webhooks/viber/{channel_id}", post(viber))
        .route("/webhooks/infobip/{channel_id}", post(infobip))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::webhook_failures::record,
        ))
}

/// These routes' operations for the OpenAPI document (paths relative to `/api/v1`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(waha, stripe, telegram, viber, infobip))]
pub(crate) struct Api;

/// The connection a provider's webhook URL names, if it is a live connection of
/// `platform`; `None` when it is not one of ours (acknowledged and ignored).
async fn webhook_channel(
    state: &AppState,
    id: &str,
    platforms: &[Platform],
) -> Result<Option<Channel>, ApiError> {
    let Ok(channel_id) = id.parse::<Uuid>() else {
        return Err(ApiError::not_found());
    };
    let channel = state
        .commands
        .channels
        .load(&channel_id.to_string())
        .await?;
    if !channel.exists() || !platforms.contains(&channel.platform()) {
        return Err(ApiError::not_found());
    }
    Ok((!channel.is_removed()).then_some(channel))
}

/// Whether `presented` equals the connection's credential `name` (compared as SHA-256
/// digests, so the time taken says nothing about the secret). A connection without that
/// credential accepts nothing.
///
/// # Errors
/// 401 `invalid_signature`.
async fn verify_shared_secret(
    state: &AppState,
    channel: &Channel,
    name: &str,
    presented: Option<&str>,
) -> Result<(), ApiError> {
    let secret = credential(&state.commands, channel, name).await?;
    let matches = match (secret, presented) {
        (Some(secret), Some(presented)) => {
            Sha256::digest(secret.as_bytes()) == Sha256::digest(presented.as_bytes())
        }
        _ => false,
    };
    if matches {
        Ok(())
    } else {
        Err(invalid_signature(format!(
            "the webhook's {name} does not match the connection's"
        )))
    }
}

/// Telegram: `X-Telegram-Bot-Api-Secret-Token` must equal the connection's
/// `webhook_secret` credential; deduplicated on `update_id`.
#[utoipa::path(
    post, path = "/webhooks/telegram/{channel_id}",
    security(()),
    params(("channel_id" = Uuid, Path, description = "The channel connection")),
    request_body(content = Object, description = "The provider's own payload, verified on the \
        raw bytes"),
    responses((status = 200, description = "`{received: true, conversation_id, position}` or \
        `{received: true, ignored}`", body = Object), Problems)
)]
async fn telegram(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<Value>, ApiError> {
    let Some(channel) = webhook_channel(&state, &id, &[Platform::Telegram]).await? else {
        return Ok(ignored("the connection was removed"));
    };
    let presented = headers
        .get("x-telegram-bot-api-secret-token")
        .and_then(|v| v.to_str().ok());
    verify_shared_secret(&state, &channel, "webhook_secret", presented).await?;
    let update: Update = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid_body(format!("not a Telegram update: {e}")))?;
    let Some(inbound) = update.inbound(state.commands.clock.now()) else {
        count("telegram", "ignored");
        return Ok(ignored("update type not handled"));
    };
    let ctx = CommandContext::for_webhook(
        "telegram",
        &format!("{}:{}", channel.id(), update.update_id),
    );
    let message = InboundMessage {
        provider_message_id: inbound.provider_message_id,
        contact: ContactDetails {
            address: inbound.chat_id.to_string(),
            name: inbound.name,
            phone: None,
        },
        text: inbound.text,
        kind: inbound.kind,
        sent_at: inbound.sent_at,
        lead_source: inbound.lead_source,
    };
    let recorded = receive(&state.commands, &channel, message, &ctx).await?;
    count("telegram", "recorded");
    Ok(recorded_answer(recorded))
}

/// Viber: `X-Viber-Content-Signature` (or the `sig` query parameter, as Viber's SDK
/// middleware accepts) must be the HMAC-SHA256 of the raw body under the connection's
/// `auth_token` credential; deduplicated on the event and `message_token`.
#[utoipa::path(
    post, path = "/webhooks/viber/{channel_id}",
    security(()),
    params(("channel_id" = Uuid, Path, description = "The channel connection"), SignatureQuery),
    request_body(content = Object, description = "The provider's own payload, verified on the \
        raw bytes"),
    responses((status = 200, description = "`{received: true, position}` or `{received: true, \
        ignored}`", body = Object), Problems)
)]
async fn viber(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<SignatureQuery>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<Value>, ApiError> {
    let Some(channel) = webhook_channel(&state, &id, &[Platform::Viber]).await? else {
        return Ok(ignored("the connection was removed"));
    };
    let signature = headers
        .get("x-viber-content-signature")
        .and_then(|v| v.to_str().ok())
        .or(query.sig.as_deref())
        .unwrap_or_default();
    let token = credential(&state.commands, &channel, "auth_token").await?;
    if !token.is_some_and(|t| viber::verify(t.as_bytes(), &body, signature)) {
        return Err(invalid_signature(
            "X-Viber-Content-Signature does not match the body",
        ));
    }
    let callback: viber::Callback = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid_body(format!("not a Viber callback: {e}")))?;
    let action = callback
        .action()
        .map_err(|e| ApiError::invalid_body(e.to_string()))?;
    let delivery = match callback.message_token {
        Some(token) => format!("{}:{}:{token}", channel.id(), callback.event),
        None => format!("{}:{}", channel.id(), hex::encode(Sha256::digest(&body))),
    };
    let ctx = CommandContext::for_webhook("viber", &delivery);
    let at = callback.at();
    let recorded = match action {
        viber::Action::Open {
            contact,
            lead_source,
        } => open(&state.commands, &channel, &contact, lead_source, at, &ctx).await?,
        viber::Action::Receive(message) => {
            receive(&state.commands, &channel, message, &ctx).await?
        }
        viber::Action::Receipt {
            address,
            message_token,
            status,
        } => {
            let receipt = record_receipt(
                &state.commands,
                &channel,
                &address,
                message_token.to_string(),
                status,
                at,
                &ctx,
            )
            .await;
            match receipt_outcome("viber", receipt)? {
                Ok(recorded) => recorded,
                Err(ignored) => return Ok(ignored),
            }
        }
        viber::Action::Ignore => {
            count("viber", "ignored");
            return Ok(ignored("event type not handled"));
        }
    };
    count("viber", "recorded");
    Ok(recorded_answer(recorded))
}

/// Infobip (WhatsApp or Viber): `X-Webhook-Secret` must equal the connection's
/// `webhook_secret` credential; each of `results[]` is deduplicated on its message id and
/// what it reports.
#[utoipa::path(
    post, path = "/webhooks/infobip/{channel_id}",
    security(()),
    params(("channel_id" = Uuid, Path, description = "The channel connection")),
    request_body(content = Object, description = "The provider's own payload, verified on the \
        raw bytes"),
    responses((status = 200, description = "`{received: true, results: [...]}`, one entry per \
        `results[]` item", body = Object), Problems)
)]
async fn infobip(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<Value>, ApiError> {
    let platforms = [Platform::Whatsapp, Platform::Viber];
    let Some(channel) = webhook_channel(&state, &id, &platforms).await? else {
        return Ok(ignored("the connection was removed"));
    };
    let presented = headers
        .get("x-webhook-secret")
        .and_then(|v| v.to_str().ok());
    verify_shared_secret(&state, &channel, "webhook_secret", presented).await?;
    let webhook: infobip::Webhook = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid_body(format!("not an Infobip webhook: {e}")))?;
    let now = state.commands.clock.now();
    let mut answers = Vec::with_capacity(webhook.results.len());
    for record in &webhook.results {
        let ctx = CommandContext::for_webhook(
            "infobip",
            &format!("{}:{}", channel.id(), record.delivery_id()),
        );
        let recorded = match record.action(now) {
            infobip::Action::Receive(message) => {
                receive(&state.commands, &channel, message, &ctx).await?
            }
            infobip::Action::Receipt {
                address,
                status,
                at,
            } => {
                let receipt = record_receipt(
                    &state.commands,
                    &channel,
                    &address,
                    record.message_id.clone(),
                    status,
                    at,
                    &ctx,
                )
                .await;
                match receipt_outcome("infobip", receipt)? {
                    Ok(recorded) => recorded,
                    Err(Json(ignored)) => {
                        answers.push(ignored);
                        continue;
                    }
                }
            }
            infobip::Action::Ignore => {
                count("infobip", "ignored");
                answers.push(ignored("nothing to record").0);
                continue;
            }
        };
        count("infobip", "recorded");
        answers.push(recorded_answer(recorded).0);
    }
    Ok(Json(json!({ "received": true, "results": answers })))
}

/// `?sig=` on a provider's webhook URL.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct SignatureQuery {
    sig: Option<String>,
}

/// The answer to a recorded conversation webhook.
fn recorded_answer((conversation_id, position): (Uuid, i64)) -> Json<Value> {
    Json(json!({ "received": true, "conversation_id": conversation_id, "position": position }))
}

/// A receipt's outcome: recorded, or acknowledged and ignored when it is about no
/// conversation or no message of ours (a receipt for a message sent outside X8).
fn receipt_outcome(
    provider: &'static str,
    result: Result<(Uuid, i64), CommandError<ConversationOpError>>,
) -> Result<Result<(Uuid, i64), Json<Value>>, ApiError> {
    match result {
        Ok(recorded) => Ok(Ok(recorded)),
        Err(CommandError::Rejected(ConversationOpError::Conversation(
            ConversationError::NotFound | ConversationError::UnknownMessage,
        ))) => {
            count(provider, "ignored");
            Ok(Err(ignored("a receipt for no message X8 sent")))
        }
        Err(e) => Err(e.into()),
    }
}

/// 401 `invalid_signature`.
fn invalid_signature(detail: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "invalid_signature", detail)
}

/// A WAHA webhook envelope (unknown fields ignored: WAHA adds fields over time).
#[derive(Deserialize)]
struct WahaEnvelope {
    #[serde(default)]
    id: Option<String>,
    event: String,
    session: String,
    #[serde(default)]
    metadata: Option<Value>,
    #[serde(default)]
    payload: Value,
}

/// WAHA events; `X-Webhook-Hmac` (HMAC-SHA512) when `X8_WAHA_WEBHOOK_SECRET` is set, 401
/// `invalid_signature`.
#[utoipa::path(
    post, path = "/webhooks/waha",
    security(()),
    request_body(content = Object, description = "The provider's own payload, verified on the \
        raw bytes"),
    responses((status = 200, description = "`{received: true, position}` or `{received: true, \
        ignored}`", body = Object), Problems)
)]
async fn waha(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<Value>, ApiError> {
    if let Some(secret) = &state.waha_webhook_secret {
        let signature = headers
            .get("x-webhook-hmac")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        verify_hmac_sha512(secret.expose_secret().as_bytes(), &body, signature)?;
    }
    let envelope: WahaEnvelope = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid_body(format!("not a WAHA event: {e}")))?;
    if !matches!(
        envelope.event.as_str(),
        "session.status" | "message" | "message.ack"
    ) {
        count("waha", "ignored");
        return Ok(ignored("event type not handled"));
    }
    let Some(channel_id) = channel_of_session(&envelope.session).or_else(|| {
        envelope.metadata.as_ref()?["x8.channel_id"]
            .as_str()?
            .parse::<Uuid>()
            .ok()
    }) else {
        return Ok(ignored("not an X8 session"));
    };
    let channel = state
        .commands
        .channels
        .load(&channel_id.to_string())
        .await?;
    if !channel.exists() || channel.is_removed() {
        return Ok(ignored("no such connection"));
    }
    let delivery = envelope
        .id
        .clone()
        .unwrap_or_else(|| hex::encode(Sha256::digest(&body)));
    if envelope.event == "session.status" {
        let Some(raw_status) = envelope.payload["status"].as_str() else {
            return Err(ApiError::invalid_body(
                "session.status without payload.status",
            ));
        };
        let reason = envelope.payload["reason"].as_str().map(str::to_string);
        let position =
            record_session_status(&state.commands, &channel, raw_status, reason, &delivery).await?;
        count("waha", "recorded");
        return Ok(Json(json!({ "received": true, "position": position })));
    }
    let action = if envelope.event == "message" {
        waha_messages::message(&envelope.payload, state.commands.clock.now())
    } else {
        waha_messages::ack(&envelope.payload)
    }
    .map_err(|e| ApiError::invalid_body(e.to_string()))?;
    let ctx = CommandContext::for_webhook("waha", &format!("{}:{delivery}", channel.id()));
    let recorded = match action {
        MessageAction::Receive(message) => {
            receive(&state.commands, &channel, message, &ctx).await?
        }
        MessageAction::Receipt {
            address,
            provider_message_id,
            status,
        } => {
            let at = envelope.payload["timestamp"]
                .as_i64()
                .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
                .unwrap_or_else(|| state.commands.clock.now());
            let receipt = record_receipt(
                &state.commands,
                &channel,
                &address,
                provider_message_id,
                status,
                at,
                &ctx,
            )
            .await;
            match receipt_outcome("waha", receipt)? {
                Ok(recorded) => recorded,
                Err(ignored) => return Ok(ignored),
            }
        }
        MessageAction::Ignore(why) => {
            count("waha", "ignored");
            return Ok(ignored(why));
        }
    };
    count("waha", "recorded");
    Ok(recorded_answer(recorded))
}

/// Stripe events, `Stripe-Signature` verified on the raw body; 400 `invalid_signature`.
#[utoipa::path(
    post, path = "/webhooks/stripe",
    security(()),
    request_body(content = Object, description = "The provider's own payload, verified on the \
        raw bytes"),
    responses((status = 200, description = "`{received, position}`, `{received, unmatched, \
        position}` or `{received, ignored}`", body = Object), Problems)
)]
async fn stripe(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<Value>, ApiError> {
    let header = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let config = &state.stripe_webhook;
    if let Err(e) = signature::verify(
        header,
        &body,
        &config.secrets,
        state.commands.clock.now(),
        Some(config.tolerance_secs),
    ) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_signature",
            e.to_string(),
        ));
    }
    let event: StripeEvent = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid_body(format!("not a Stripe event: {e}")))?;
    let answer = match handle_stripe_event(&state.commands, &event).await? {
        WebhookOutcome::Recorded { position } => {
            count("stripe", "recorded");
            json!({ "received": true, "position": position })
        }
        WebhookOutcome::Unmatched { position, reason } => {
            count("stripe", "unmatched");
            json!({ "received": true, "unmatched": reason, "position": position })
        }
        WebhookOutcome::Ignored => {
            count("stripe", "ignored");
            return Ok(ignored("event type not handled"));
        }
    };
    Ok(Json(answer))
}

/// Counts a webhook delivery in `x8_webhooks_total{provider, outcome}`.
fn count(provider: &'static str, outcome: &'static str) {
    metrics::counter!("x8_webhooks_total", "provider" => provider, "outcome" => outcome)
        .increment(1);
}

fn ignored(why: &str) -> Json<Value> {
    Json(json!({ "received": true, "ignored": why }))
}

/// Checks `signature` (hex) against the HMAC-SHA512 of `body` under `key`, in constant
/// time.
///
/// # Errors
/// 401 `invalid_signature`.
fn verify_hmac_sha512(key: &[u8], body: &[u8], signature: &str) -> Result<(), ApiError> {
    let invalid = || invalid_signature("X-Webhook-Hmac does not match the body");
    let expected = hex::decode(signature.trim()).map_err(|_| invalid())?;
    let mut mac = Hmac::<Sha512>::new_from_slice(key).map_err(|_| invalid())?;
    mac.update(body);
    mac.verify_slice(&expected).map_err(|_| invalid())
}
