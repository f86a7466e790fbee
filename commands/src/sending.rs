//! Sending replies through the platforms' APIs (DOMAIN.md "Conversations and messages").
//!
//! A reply is recorded first (`MessageSent`, priced, with its response time), then handed
//! to the provider, then the provider's answer is recorded (`MessageAccepted` with its id,
//! or `MessageSendFailed` with the reason). A provider that fails never loses the message:
//! it stays in the conversation as failed and [`retry`] sends it again.
//!
//! Each platform's API sits behind [`MessageApi`] (reqwest; tests point the base URLs at a
//! local fake):
//! - Telegram: `POST {X8_TELEGRAM_API_URL}/bot{bot_token}/sendMessage` `{chat_id, text}`;
//! - Viber: `POST {X8_VIBER_API_URL}/pa/send_message` with `X-Viber-Auth-Token: {auth_token}`
//!   `{receiver, type: "text", text, sender: {name}}`; the 64-bit `message_token` is the id;
//! - WhatsApp through WAHA: `POST {X8_WAHA_URL}/api/sendText` (see [`crate::waha`]);
//! - Infobip (a connection whose credentials hold `infobip_base_url`, `api_key`, `sender`):
//!   `POST {base}/whatsapp/1/message/text` or `POST {base}/viber/2/messages`,
//!   `Authorization: App {api_key}`.
//!
//! Other platforms are recorded as failed ("sending is not supported") until they are wired.

use crate::channels::{credentials, Credentials};
use crate::context::CommandContext;
use crate::conversations::{purpose, vault_error, ConversationOpError};
use crate::error::CommandError;
use crate::waha::WahaApi;
use crate::Commands;
use futures::future::BoxFuture;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;
use x8_domain::channel::whatsapp::session_name;
use x8_domain::channel::{Channel, Platform};
use x8_domain::conversation::{
    ConversationCommand, ConversationError, MessageType, SendOutcome, SendState,
};

/// The platforms' API base URLs (configuration, not secrets).
#[derive(Debug, Clone)]
pub struct ProviderUrls {
    /// `X8_TELEGRAM_API_URL`, default `https://api.telegram.org`.
    pub telegram: String,
    /// `X8_VIBER_API_URL`, default `https://chatapi.viber.com`.
    pub viber: String,
}

impl Default for ProviderUrls {
    fn default() -> Self {
        Self {
            telegram: "https://api.telegram.org".into(),
            viber: "https://chatapi.viber.com".into(),
        }
    }
}

/// A message to hand to a provider, in plaintext.
pub struct Outgoing<'a> {
    /// The connection.
    pub channel: &'a Channel,
    /// Its credentials, opened.
    pub credentials: Option<&'a Credentials>,
    /// The contact's address (chat id, WhatsApp id, Viber user id, phone).
    pub to: &'a str,
    /// The text.
    pub text: &'a str,
}

/// One platform's send call. `Ok` is the provider's message id; `Err` the reason it was
/// not sent (the provider's error, or the transport's).
pub trait MessageApi: Send + Sync {
    /// Sends `message`.
    fn send<'a>(&'a self, message: &'a Outgoing<'a>) -> BoxFuture<'a, Result<String, String>>;

    /// Tells the platform to stop sending the connection's updates (a hard delete's step):
    /// Telegram `deleteWebhook` with `drop_pending_updates`, Viber `set_webhook` with an
    /// empty `url`. `Ok(false)` when the platform has no webhook of ours to remove (WhatsApp
    /// goes through WAHA's session, Instagram and Facebook through the Meta app).
    fn unregister_webhook<'a>(
        &'a self,
        channel: &'a Channel,
        credentials: &'a Credentials,
    ) -> BoxFuture<'a, Result<bool, String>>;
}

/// Every platform's API over HTTP.
pub struct HttpSenders {
    client: reqwest::Client,
    urls: ProviderUrls,
    waha: Arc<dyn WahaApi>,
}

impl HttpSenders {
    /// Senders over `urls` (WhatsApp through `waha`), with a 10 s timeout per call.
    pub fn new(urls: ProviderUrls, waha: Arc<dyn WahaApi>) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Self { client, urls, waha }
    }

    async fn send_now(&self, message: &Outgoing<'_>) -> Result<String, String> {
        let credential = |name| credential_of(message, name);
        if message
            .credentials
            .and_then(|c| c.get("infobip_base_url"))
            .is_some()
        {
            return self.infobip(message).await;
        }
        match message.channel.platform() {
            Platform::Telegram => {
                let url = format!(
                    "{}/bot{}/sendMessage",
                    self.urls.telegram.trim_end_matches('/'),
                    credential("bot_token")?
                );
                let body = json!({ "chat_id": message.to, "text": message.text });
                let answer = post(self.client.post(url).json(&body)).await?;
                if answer["ok"].as_bool() != Some(true) {
                    return Err(describe(&answer, "description"));
                }
                Ok(answer["result"]["message_id"].to_string())
            }
            Platform::Viber => {
                let url = format!("{}/pa/send_message", self.urls.viber.trim_end_matches('/'));
                let body = json!({
                    "receiver": message.to, "type": "text", "text": message.text,
                    "sender": { "name": credential("sender_name").unwrap_or("X8") },
                });
                let request = self
                    .client
                    .post(url)
                    .header("X-Viber-Auth-Token", credential("auth_token")?)
                    .json(&body);
                let answer = post(request).await?;
                if answer["status"].as_i64() != Some(0) {
                    return Err(describe(&answer, "status_message"));
                }
                // A u64 above 2^53: serde_json keeps it exact; never through f64.
                answer["message_token"]
                    .as_u64()
                    .map(|token| token.to_string())
                    .ok_or_else(|| "Viber answered without a message_token".to_string())
            }
            Platform::Whatsapp => {
                let session = session_name(message.channel.id());
                let id = self
                    .waha
                    .send_text(&session, message.to, message.text)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(crate::waha_messages::message_key(&id).to_string())
            }
            other => Err(format!("sending on {} is not supported", other.as_str())),
        }
    }

    async fn infobip(&self, message: &Outgoing<'_>) -> Result<String, String> {
        let credential = |name| credential_of(message, name);
        let base = credential("infobip_base_url")?.trim_end_matches('/');
        let auth = format!("App {}", credential("api_key")?);
        let sender = credential("sender")?;
        let (url, body) = match message.channel.platform() {
            Platform::Viber => (
                format!("{base}/viber/2/messages"),
                json!({ "messages": [{ "sender": sender, "destinations": [{ "to": message.to }],
                        "content": { "type": "TEXT", "text": message.text } }] }),
            ),
            _ => (
                format!("{base}/whatsapp/1/message/text"),
                json!({ "from": sender, "to": message.to, "content": { "text": message.text } }),
            ),
        };
        let answer = post(
            self.client
                .post(url)
                .header("Authorization", auth)
                .json(&body),
        )
        .await?;
        answer["messageId"]
            .as_str()
            .or_else(|| answer["messages"][0]["messageId"].as_str())
            .map(str::to_string)
            .ok_or_else(|| "Infobip answered without a messageId".to_string())
    }
}

impl MessageApi for HttpSenders {
    fn send<'a>(&'a self, message: &'a Outgoing<'a>) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(self.send_now(message))
    }

    fn unregister_webhook<'a>(
        &'a self,
        channel: &'a Channel,
        credentials: &'a Credentials,
    ) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async move {
            let credential = |name| {
                credentials
                    .get(name)
                    .ok_or_else(|| format!("the connection has no {name} credential"))
            };
            match channel.platform() {
                Platform::Telegram => {
                    let url = format!(
                        "{}/bot{}/deleteWebhook",
                        self.urls.telegram.trim_end_matches('/'),
                        credential("bot_token")?
                    );
                    let body = json!({ "drop_pending_updates": true });
                    let answer = post(self.client.post(url).json(&body)).await?;
                    if answer["ok"].as_bool() != Some(true) {
                        return Err(describe(&answer, "description"));
                    }
                    Ok(true)
                }
                Platform::Viber => {
                    let url = format!("{}/pa/set_webhook", self.urls.viber.trim_end_matches('/'));
                    let request = self
                        .client
                        .post(url)
                        .header("X-Viber-Auth-Token", credential("auth_token")?)
                        .json(&json!({ "url": "" }));
                    let answer = post(request).await?;
                    if answer["status"].as_i64() != Some(0) {
                        return Err(describe(&answer, "status_message"));
                    }
                    Ok(true)
                }
                _ => Ok(false),
            }
        })
    }
}

/// The connection's credential `name`, or why the message cannot be sent without it.
fn credential_of<'a>(message: &'a Outgoing<'_>, name: &str) -> Result<&'a str, String> {
    message
        .credentials
        .and_then(|c| c.get(name))
        .ok_or_else(|| format!("the connection has no {name} credential"))
}

/// Sends `request`; a non-2xx answer is an error with its status and the body's start.
async fn post(request: reqwest::RequestBuilder) -> Result<Value, String> {
    let response = request
        .send()
        .await
        .map_err(|e| format!("unreachable: {}", e.without_url()))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| format!("unreachable: {}", e.without_url()))?;
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    if !status.is_success() {
        let detail: String = text.chars().take(200).collect();
        return Err(format!("HTTP {}: {detail}", status.as_u16()));
    }
    Ok(body)
}

fn describe(answer: &Value, field: &str) -> String {
    answer[field]
        .as_str()
        .map_or_else(|| "refused by the provider".to_string(), str::to_string)
}

/// A reply to send.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The text.
    pub text: String,
    /// Its type.
    pub message_type: MessageType,
    /// Whether it carries rich media (priced +20 %).
    pub rich_media: bool,
}

/// Where a sent reply stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendReport {
    /// The message.
    pub message_id: Uuid,
    /// Accepted or failed (pending only if the outcome could not be recorded).
    pub state: SendState,
    /// The provider's id when accepted, the reason when failed.
    pub outcome: Option<SendOutcome>,
    /// The last position appended (0 when nothing was).
    pub position: i64,
}

/// Records `reply` on the conversation, sends it, and records the provider's answer.
/// With an idempotency key the message id is the command id: a repeated request reports
/// the message as it stands and sends nothing twice.
///
/// # Errors
/// `Conversation(NotFound)`, `KeyDestroyed`; see [`crate::CommandBus::execute`]. A
/// provider's failure is not an error: it is recorded and reported as `Failed`.
pub async fn send(
    commands: &Commands,
    conversation_id: Uuid,
    reply: Reply,
    ctx: &CommandContext,
) -> Result<SendReport, CommandError<ConversationOpError>> {
    let id = conversation_id.to_string();
    let conversation = commands
        .conversations
        .load(&id)
        .await
        .map_err(|e| e.map_rejected(ConversationOpError::Conversation))?;
    let Some(tenant) = conversation.tenant_id() else {
        return Err(CommandError::Rejected(ConversationOpError::Conversation(
            ConversationError::NotFound,
        )));
    };
    let key = commands
        .vault
        .scope_key(tenant.0)
        .await
        .map_err(vault_error)?;
    // The command carries a fresh nonce: fingerprint the request, not the command.
    let ctx = &ctx.clone().for_tenant(tenant.0).or_fingerprinted(&[
        "SendMessage",
        &id,
        &reply.text,
        &format!("{:?}", reply.message_type),
        if reply.rich_media { "rich" } else { "plain" },
    ]);
    let message_id = if ctx.client_supplied {
        ctx.command_id
    } else {
        Uuid::new_v4()
    };
    let text = key
        .seal(&purpose(conversation_id, "text"), reply.text.as_bytes())
        .map_err(vault_error)?;
    let recorded = commands
        .conversations
        .execute(
            &id,
            ConversationCommand::SendMessage {
                message_id,
                text,
                message_type: reply.message_type,
                rich_media: reply.rich_media,
                rates: commands.message_rates,
                at: commands.clock.now(),
            },
            ctx,
        )
        .await
        .map_err(|e| e.map_rejected(ConversationOpError::Conversation))?;
    deliver(
        commands,
        conversation_id,
        message_id,
        recorded.replayed,
        &ctx.step("outcome"),
    )
    .await
}

/// Sends a failed (or never answered) message again.
///
/// # Errors
/// `Conversation(NotFound | UnknownMessage)`, `KeyDestroyed`; see
/// [`crate::CommandBus::execute`].
pub async fn retry(
    commands: &Commands,
    conversation_id: Uuid,
    message_id: Uuid,
    ctx: &CommandContext,
) -> Result<SendReport, CommandError<ConversationOpError>> {
    deliver(commands, conversation_id, message_id, false, ctx).await
}

/// Hands a recorded message to its provider unless it was accepted already (or this is a
/// repeated request), and records the answer.
async fn deliver(
    commands: &Commands,
    conversation_id: Uuid,
    message_id: Uuid,
    replayed: bool,
    ctx: &CommandContext,
) -> Result<SendReport, CommandError<ConversationOpError>> {
    let id = conversation_id.to_string();
    let conversation = commands
        .conversations
        .load(&id)
        .await
        .map_err(|e| e.map_rejected(ConversationOpError::Conversation))?;
    let unknown = || {
        CommandError::Rejected(ConversationOpError::Conversation(
            ConversationError::UnknownMessage,
        ))
    };
    let state = conversation.send_state(message_id).ok_or_else(unknown)?;
    if state == SendState::Accepted || (replayed && state != SendState::Pending) {
        return Ok(SendReport {
            message_id,
            state,
            outcome: None,
            position: 0,
        });
    }
    let tenant = conversation.tenant_id().ok_or_else(unknown)?.0;
    let open = |field: &str, sealed: &x8_domain::Sealed| {
        let purpose = purpose(conversation_id, field);
        let sealed = sealed.clone();
        async move {
            let plaintext = commands
                .vault
                .open(tenant, &purpose, &sealed)
                .await
                .map_err(vault_error)?;
            Ok::<_, CommandError<ConversationOpError>>(
                String::from_utf8_lossy(&plaintext).into_owned(),
            )
        }
    };
    let text = open(
        "text",
        conversation.unsent_text(message_id).ok_or_else(unknown)?,
    )
    .await?;
    let address = open("address", &conversation.contact().address).await?;
    let channel_id = conversation.channel_id().unwrap_or_default();
    let channel = commands
        .channels
        .load(&channel_id.to_string())
        .await
        .map_err(CommandError::unrejected)?;
    let outcome = if channel.is_removed() {
        Err("the connection was removed".to_string())
    } else {
        let credentials = credentials(commands, &channel)
            .await
            .map_err(|e| CommandError::Infrastructure(e.to_string()))?;
        let outgoing = Outgoing {
            channel: &channel,
            credentials: credentials.as_ref(),
            to: &address,
            text: &text,
        };
        commands.senders.send(&outgoing).await
    };
    let outcome = match outcome {
        Ok(provider_message_id) => SendOutcome::Accepted {
            provider_message_id,
        },
        Err(reason) => SendOutcome::Failed { reason },
    };
    let answer = commands
        .conversations
        .execute(
            &id,
            ConversationCommand::RecordSendOutcome {
                message_id,
                outcome: outcome.clone(),
                at: commands.clock.now(),
            },
            &ctx.clone().for_tenant(tenant),
        )
        .await
        .map_err(|e| e.map_rejected(ConversationOpError::Conversation))?;
    let state = match outcome {
        SendOutcome::Accepted { .. } => SendState::Accepted,
        SendOutcome::Failed { .. } => SendState::Failed,
    };
    Ok(SendReport {
        message_id,
        state,
        outcome: Some(outcome),
        position: answer.position(),
    })
}
