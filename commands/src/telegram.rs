//! Telegram Bot API updates (<https://core.telegram.org/bots/api#update>) as inbound
//! messages. Authenticity is the `X-Telegram-Bot-Api-Secret-Token` header (the secret set
//! with `setWebhook`); redeliveries are deduplicated on `update_id`.
//!
//! Messages (text, or a caption, or media) and callback queries (button presses) are
//! read; other updates (edits, channel posts, polls…) are acknowledged and ignored. A
//! `/start <payload>` carries the conversation's lead source.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use x8_domain::conversation::{InboundKind, LeadSource};

/// An update, with only the fields we read (unknown ones are ignored).
#[derive(Debug, Deserialize)]
pub struct Update {
    /// The update's id (dedupe).
    pub update_id: i64,
    message: Option<Message>,
    callback_query: Option<CallbackQuery>,
}

#[derive(Debug, Deserialize)]
struct Message {
    message_id: i64,
    date: i64,
    chat: Chat,
    from: Option<User>,
    text: Option<String>,
    caption: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Chat {
    id: i64,
}

#[derive(Debug, Deserialize)]
struct User {
    id: i64,
    first_name: Option<String>,
    last_name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CallbackQuery {
    id: String,
    from: User,
    message: Option<Message>,
    data: Option<String>,
}

/// An inbound message read from an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    /// The message id (unique within its chat, i.e. its conversation), or `callback:{id}`:
    /// never the chat id, which is personal.
    pub provider_message_id: String,
    /// The chat to reply to.
    pub chat_id: i64,
    /// The sender's name, if given.
    pub name: Option<String>,
    /// The text, caption or button data (empty for bare media).
    pub text: String,
    /// What it is.
    pub kind: InboundKind,
    /// When it was sent (a callback query's: when it arrived).
    pub sent_at: DateTime<Utc>,
    /// From `/start <payload>`.
    pub lead_source: Option<LeadSource>,
}

impl Update {
    /// The inbound message this update carries, if any; `received_at` dates a callback.
    pub fn inbound(&self, received_at: DateTime<Utc>) -> Option<Inbound> {
        if let Some(message) = &self.message {
            let text = message
                .text
                .clone()
                .or_else(|| message.caption.clone())
                .unwrap_or_default();
            let kind = if message.text.is_some() {
                InboundKind::Text
            } else {
                InboundKind::Media
            };
            let lead_source = text
                .strip_prefix("/start")
                .filter(|rest| rest.is_empty() || rest.starts_with(' '))
                .map(LeadSource::from_start_parameter);
            return Some(Inbound {
                provider_message_id: message.message_id.to_string(),
                chat_id: message.chat.id,
                name: message.from.as_ref().and_then(User::name),
                text,
                kind,
                sent_at: DateTime::from_timestamp(message.date, 0).unwrap_or(received_at),
                lead_source,
            });
        }
        let query = self.callback_query.as_ref()?;
        Some(Inbound {
            provider_message_id: format!("callback:{}", query.id),
            chat_id: query.message.as_ref().map_or(query.from.id, |m| m.chat.id),
            name: query.from.name(),
            text: query.data.clone().unwrap_or_default(),
            kind: InboundKind::Callback,
            sent_at: received_at,
            lead_source: None,
        })
    }
}

impl User {
    fn name(&self) -> Option<String> {
        let name = [self.first_name.as_deref(), self.last_name.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        (!name.is_empty()).then_some(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_760_000_000, 0).expect("time")
    }

    #[test]
    fn the_docs_update_is_a_start_message_from_a_named_user() {
        let update: Update = serde_json::from_str(include_str!(
            "../../tests/fixtures/telegram/update.message.text.json"
        ))
        .expect("update");
        assert_eq!(update.update_id, 10_000);
        let inbound = update.inbound(now()).expect("a message");
        assert_eq!(inbound.provider_message_id, "1365");
        assert_eq!(inbound.chat_id, 1_111_111);
        assert_eq!(
            inbound.name.as_deref(),
            Some("Test Firstname Test Lastname")
        );
        assert_eq!(inbound.sent_at.timestamp(), 1_441_645_532);
        assert_eq!(inbound.lead_source, Some(LeadSource::direct()));
    }

    #[test]
    fn a_start_payload_is_the_lead_source_and_callbacks_and_unknown_updates_are_read() {
        let update: Update = serde_json::from_str(
            r#"{"update_id":1,"message":{"message_id":2,"date":1,"chat":{"id":3},
                "text":"/start tiktok_spring","entities":[{"type":"bot_command"}]}}"#,
        )
        .expect("update");
        let lead = update
            .inbound(now())
            .and_then(|i| i.lead_source)
            .expect("lead");
        assert_eq!(lead.source, "tiktok");
        let callback: Update = serde_json::from_str(
            r#"{"update_id":2,"callback_query":{"id":"77","from":{"id":5,"first_name":"A"},
                "message":{"message_id":9,"date":1,"chat":{"id":6}},"data":"menu:pay"}}"#,
        )
        .expect("callback");
        let inbound = callback.inbound(now()).expect("callback");
        assert_eq!(
            (inbound.kind, inbound.chat_id, inbound.text.as_str()),
            (InboundKind::Callback, 6, "menu:pay")
        );
        let poll: Update =
            serde_json::from_str(r#"{"update_id":3,"poll":{"id":"1"}}"#).expect("poll");
        assert_eq!(poll.inbound(now()), None);
        let not_start: Update = serde_json::from_str(
            r#"{"update_id":4,"message":{"message_id":2,"date":1,"chat":{"id":3},"text":"/startle"}}"#,
        )
        .expect("update");
        assert_eq!(not_start.inbound(now()).and_then(|i| i.lead_source), None);
    }
}
