//! WhatsApp through a WAHA server: the outbound calls (behind [`WahaApi`], so tests point
//! them at a local fake server) and the session lifecycle around them (see
//! `x8_domain::channel::whatsapp` for the rules).
//!
//! - Connecting WhatsApp starts a WAHA session named after the connection
//!   ([`session_name`]), with our tenant and connection ids in its `metadata`.
//! - WAHA reports statuses to `POST /api/v1/webhooks/waha`; [`record_session_status`]
//!   records them, deduplicated on the webhook's id.
//! - Restarts (the next QR attempt, a reconnect) run on the durable deadline mechanism
//!   ([`restart_session`]); a restart never logs out: the session's credentials are
//!   removed only when the connection is removed.

use crate::channels::ChannelOpError;
use crate::context::CommandContext;
use crate::error::CommandError;
use crate::Commands;
use futures::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use std::time::Duration;
use uuid::Uuid;
use x8_domain::channel::whatsapp::session_name;
use x8_domain::channel::{Channel, ChannelCommand, ChannelStatus};

/// Why a WAHA call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WahaError {
    /// `X8_WAHA_URL` is not set.
    #[error("WAHA is not configured (X8_WAHA_URL)")]
    NotConfigured,
    /// The server could not be reached or timed out.
    #[error("WAHA unreachable: {0}")]
    Unreachable(String),
    /// The server answered with an error status.
    #[error("WAHA answered {status}: {body}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The start of its body.
        body: String,
    },
}

/// The WAHA calls X8 makes. Session names come from [`session_name`].
pub trait WahaApi: Send + Sync {
    /// `POST /api/sessions` `{name, start: true, config: {metadata, webhooks}}`: creates and
    /// starts a session carrying our ids in its metadata.
    fn start_session<'a>(
        &'a self,
        session: &'a str,
        metadata: Value,
    ) -> BoxFuture<'a, Result<(), WahaError>>;
    /// `GET /api/{session}/auth/qr?format=raw` → the QR value to render.
    fn qr_code<'a>(&'a self, session: &'a str) -> BoxFuture<'a, Result<String, WahaError>>;
    /// `POST /api/{session}/auth/request-code` `{phoneNumber}` → the pairing code.
    fn request_pairing_code<'a>(
        &'a self,
        session: &'a str,
        phone_number: &'a str,
    ) -> BoxFuture<'a, Result<String, WahaError>>;
    /// `POST /api/sessions/{session}/restart`.
    fn restart<'a>(&'a self, session: &'a str) -> BoxFuture<'a, Result<(), WahaError>>;
    /// `POST /api/sessions/{session}/logout`: forgets the paired device (explicit only).
    fn logout<'a>(&'a self, session: &'a str) -> BoxFuture<'a, Result<(), WahaError>>;
    /// `DELETE /api/sessions/{session}`.
    fn delete<'a>(&'a self, session: &'a str) -> BoxFuture<'a, Result<(), WahaError>>;
    /// `POST /api/sendText` `{session, chatId, text}` → the sent message's id
    /// (`true_{chat}_{key}`).
    fn send_text<'a>(
        &'a self,
        session: &'a str,
        chat_id: &'a str,
        text: &'a str,
    ) -> BoxFuture<'a, Result<String, WahaError>>;
}

/// WAHA over HTTP (reqwest), with `X-Api-Key`.
pub struct WahaHttp {
    client: reqwest::Client,
    base_url: String,
    api_key: Option<SecretString>,
    webhook: Option<(String, Option<SecretString>)>,
}

impl WahaHttp {
    /// A client for the WAHA server at `base_url` (`X8_WAHA_URL`), authenticated with
    /// `api_key` (`X8_WAHA_API_KEY`). `webhook` is our webhook URL and HMAC key, given to
    /// every session WAHA starts (`X8_WAHA_WEBHOOK_URL`, `X8_WAHA_WEBHOOK_SECRET`).
    pub fn new(
        base_url: &str,
        api_key: Option<SecretString>,
        webhook: Option<(String, Option<SecretString>)>,
    ) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap_or_default();
        Self {
            client,
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key,
            webhook,
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, WahaError> {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base_url));
        if let Some(key) = &self.api_key {
            request = request.header("X-Api-Key", key.expose_secret());
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| WahaError::Unreachable(e.without_url().to_string()))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| WahaError::Unreachable(e.without_url().to_string()))?;
        if !status.is_success() {
            return Err(WahaError::Status {
                status: status.as_u16(),
                body: text.chars().take(200).collect(),
            });
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

impl WahaApi for WahaHttp {
    fn start_session<'a>(
        &'a self,
        session: &'a str,
        metadata: Value,
    ) -> BoxFuture<'a, Result<(), WahaError>> {
        Box::pin(async move {
            let mut config = json!({ "metadata": metadata });
            if let Some((url, secret)) = &self.webhook {
                let mut hook = json!({
                    "url": url,
                    "events": ["session.status", "message", "message.ack"],
                });
                if let Some(secret) = secret {
                    hook["hmac"] = json!({ "key": secret.expose_secret() });
                }
                config["webhooks"] = json!([hook]);
            }
            let body = json!({ "name": session, "start": true, "config": config });
            self.call(reqwest::Method::POST, "/api/sessions", Some(body))
                .await
                .map(|_| ())
        })
    }

    fn qr_code<'a>(&'a self, session: &'a str) -> BoxFuture<'a, Result<String, WahaError>> {
        Box::pin(async move {
            let path = format!("/api/{session}/auth/qr?format=raw");
            let body = self.call(reqwest::Method::GET, &path, None).await?;
            Ok(body["value"].as_str().unwrap_or_default().to_string())
        })
    }

    fn request_pairing_code<'a>(
        &'a self,
        session: &'a str,
        phone_number: &'a str,
    ) -> BoxFuture<'a, Result<String, WahaError>> {
        Box::pin(async move {
            let path = format!("/api/{session}/auth/request-code");
            let body = json!({ "phoneNumber": phone_number });
            let answer = self.call(reqwest::Method::POST, &path, Some(body)).await?;
            Ok(answer["code"].as_str().unwrap_or_default().to_string())
        })
    }

    fn restart<'a>(&'a self, session: &'a str) -> BoxFuture<'a, Result<(), WahaError>> {
        Box::pin(async move {
            let path = format!("/api/sessions/{session}/restart");
            self.call(reqwest::Method::POST, &path, None)
                .await
                .map(|_| ())
        })
    }

    fn logout<'a>(&'a self, session: &'a str) -> BoxFuture<'a, Result<(), WahaError>> {
        Box::pin(async move {
            let path = format!("/api/sessions/{session}/logout");
            self.call(reqwest::Method::POST, &path, None)
                .await
                .map(|_| ())
        })
    }

    fn delete<'a>(&'a self, session: &'a str) -> BoxFuture<'a, Result<(), WahaError>> {
        Box::pin(async move {
            let path = format!("/api/sessions/{session}");
            self.call(reqwest::Method::DELETE, &path, None)
                .await
                .map(|_| ())
        })
    }

    fn send_text<'a>(
        &'a self,
        session: &'a str,
        chat_id: &'a str,
        text: &'a str,
    ) -> BoxFuture<'a, Result<String, WahaError>> {
        Box::pin(async move {
            let body = json!({ "session": session, "chatId": chat_id, "text": text });
            let answer = self
                .call(reqwest::Method::POST, "/api/sendText", Some(body))
                .await?;
            // WEBJS answers `id: {_serialized}`, NOWEB and GOWS `id: "…"`.
            Ok(answer["id"]["_serialized"]
                .as_str()
                .or_else(|| answer["id"].as_str())
                .unwrap_or_default()
                .to_string())
        })
    }
}

/// WAHA when `X8_WAHA_URL` is unset: every call fails with [`WahaError::NotConfigured`].
pub struct WahaNotConfigured;

impl WahaApi for WahaNotConfigured {
    fn start_session<'a>(&'a self, _: &'a str, _: Value) -> BoxFuture<'a, Result<(), WahaError>> {
        Box::pin(async { Err(WahaError::NotConfigured) })
    }
    fn qr_code<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<String, WahaError>> {
        Box::pin(async { Err(WahaError::NotConfigured) })
    }
    fn request_pairing_code<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
    ) -> BoxFuture<'a, Result<String, WahaError>> {
        Box::pin(async { Err(WahaError::NotConfigured) })
    }
    fn restart<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<(), WahaError>> {
        Box::pin(async { Err(WahaError::NotConfigured) })
    }
    fn logout<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<(), WahaError>> {
        Box::pin(async { Err(WahaError::NotConfigured) })
    }
    fn delete<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<(), WahaError>> {
        Box::pin(async { Err(WahaError::NotConfigured) })
    }
    fn send_text<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        _: &'a str,
    ) -> BoxFuture<'a, Result<String, WahaError>> {
        Box::pin(async { Err(WahaError::NotConfigured) })
    }
}

/// Starts the WAHA session of a new WhatsApp connection and records `CONNECTING`
/// (`STARTING`); a failed start is recorded as the connection's error. Returns the status
/// reached and the position of the recorded event.
///
/// # Errors
/// See [`crate::CommandBus::execute`].
pub async fn start_session(
    commands: &Commands,
    channel: &Channel,
    ctx: &CommandContext,
) -> Result<(ChannelStatus, i64), CommandError<ChannelOpError>> {
    let session = session_name(channel.id());
    let metadata = json!({
        "x8.tenant_id": channel.tenant_id().to_string(),
        "x8.channel_id": channel.id().to_string(),
    });
    let (status, command) = match commands.waha.start_session(&session, metadata).await {
        Ok(()) => (
            ChannelStatus::Connecting,
            ChannelCommand::ChangeStatus {
                status: ChannelStatus::Connecting,
                raw_status: Some("STARTING".into()),
                reason: None,
            },
        ),
        Err(error) => {
            tracing::warn!(channel_id = %channel.id(), %error, "WAHA session did not start");
            let failure = ChannelCommand::RecordFailure {
                error: error.to_string(),
                raw_status: None,
            };
            (ChannelStatus::Error, failure)
        }
    };
    let position = crate::channels::execute(commands, channel, command, ctx).await?;
    Ok((status, position))
}

/// Records a WAHA `session.status` webhook for connection `channel`. `webhook_id` is the
/// envelope's id (or a digest of the body when WAHA sent none): the same delivery twice,
/// also concurrently, has one effect. Returns the position (0 when nothing changed).
///
/// # Errors
/// `Channel(NotFound | Removed)`; see [`crate::CommandBus::execute`].
pub async fn record_session_status(
    commands: &Commands,
    channel: &Channel,
    raw_status: &str,
    reason: Option<String>,
    webhook_id: &str,
) -> Result<i64, CommandError<ChannelOpError>> {
    let ctx = CommandContext::for_webhook("waha", webhook_id);
    let command = ChannelCommand::RecordSessionStatus {
        raw_status: raw_status.to_string(),
        at: commands.clock.now(),
        reason,
        jitter_permille: (Uuid::new_v4().as_u128() % 1001) as u16,
    };
    crate::channels::execute(commands, channel, command, &ctx).await
}

/// Restarts the WAHA session of `channel_id` (a deadline: the next QR attempt or a
/// reconnect). Nothing happens when the connection is gone, connected again, or in
/// `ERROR`: the deadline has nothing left to do.
///
/// # Errors
/// The WAHA or store failure, as text for the deadline's row; the deadline is retried.
pub async fn restart_session(commands: &Commands, channel_id: Uuid) -> Result<(), String> {
    let channel = commands
        .channels
        .load(&channel_id.to_string())
        .await
        .map_err(|e| e.to_string())?;
    if !channel.exists() || channel.is_removed() || channel.status() != ChannelStatus::Connecting {
        return Ok(());
    }
    commands
        .waha
        .restart(&session_name(channel_id))
        .await
        .map_err(|e| e.to_string())
}

/// Logs the removed connection's WAHA session out and deletes it (the explicit removal of
/// its credentials). Failures are logged, not retried: the session is ours to clean up by
/// hand then.
pub async fn end_session(commands: &Commands, channel_id: Uuid) {
    let session = session_name(channel_id);
    for (step, result) in [
        ("logout", commands.waha.logout(&session).await),
        ("delete", commands.waha.delete(&session).await),
    ] {
        if let Err(error) = result {
            tracing::warn!(%channel_id, step, %error, "WAHA session cleanup failed");
        }
    }
}
