//! WAHA's `message` and `message.ack` events (<https://waha.devlike.pro/docs/how-to/events/>)
//! as inbound messages and delivery receipts.
//!
//! - `message` with `fromMe: true` is the echo of our own send (or of the phone's owner
//!   writing from the app): ignored, the reply was recorded when we sent it.
//! - WAHA message ids are `{fromMe}_{chat id}_{key}`: the chat id is a phone number, so only
//!   the key (unique within the chat, i.e. the conversation) is kept as the provider's id.
//! - A click-to-WhatsApp ad's referral (`referral.source_url`, or WEBJS's
//!   `_data.ctwaContext.sourceUrl`) is the conversation's lead source.
//! - `message.ack` levels: `-1` ERROR → failed, `1` SERVER → sent, `2` DEVICE → delivered,
//!   `3` READ and `4` PLAYED → read; `0` PENDING says nothing.

use crate::conversations::{ContactDetails, InboundMessage};
use chrono::{DateTime, Utc};
use serde_json::Value;
use x8_domain::conversation::{InboundKind, LeadSource, ReceiptStatus};

/// What a WAHA message event asks of us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageAction {
    /// A customer's message.
    Receive(InboundMessage),
    /// A receipt for a message we sent.
    Receipt {
        /// The customer's chat id.
        address: String,
        /// The message's key.
        provider_message_id: String,
        /// Its status.
        status: ReceiptStatus,
    },
    /// Our own echo, a pending ack, a status broadcast or a group message.
    Ignore(&'static str),
}

/// A WAHA message event lacking a field it needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a WAHA {event} event without payload.{missing}")]
pub struct Incomplete {
    /// `message` or `message.ack`.
    pub event: &'static str,
    /// The field.
    pub missing: &'static str,
}

/// The key of a WAHA message id (`true_123@c.us_3EB0…` → `3EB0…`): what stays the same
/// between the send's answer, the acks and the echo, without the phone number.
pub fn message_key(id: &str) -> &str {
    id.rsplit('_').next().unwrap_or(id)
}

/// Reads a `message` event's payload; `received_at` dates one without a timestamp.
///
/// # Errors
/// [`Incomplete`].
pub fn message(payload: &Value, received_at: DateTime<Utc>) -> Result<MessageAction, Incomplete> {
    let missing = |missing| Incomplete {
        event: "message",
        missing,
    };
    if payload["fromMe"].as_bool().unwrap_or(false) {
        return Ok(MessageAction::Ignore("our own message"));
    }
    let from = payload["from"].as_str().ok_or_else(|| missing("from"))?;
    if !from.ends_with("@c.us") && !from.ends_with("@s.whatsapp.net") {
        return Ok(MessageAction::Ignore("not a one-to-one chat"));
    }
    let id = payload["id"].as_str().ok_or_else(|| missing("id"))?;
    let has_media = payload["hasMedia"].as_bool().unwrap_or(false);
    let sent_at = payload["timestamp"]
        .as_i64()
        .and_then(|t| DateTime::from_timestamp(t, 0))
        .unwrap_or(received_at);
    let name = payload["_data"]["notifyName"]
        .as_str()
        .or_else(|| payload["_data"]["pushName"].as_str())
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    let phone = from.split('@').next().map(|digits| format!("+{digits}"));
    let referral = payload["referral"]["source_url"]
        .as_str()
        .or_else(|| payload["_data"]["ctwaContext"]["sourceUrl"].as_str());
    Ok(MessageAction::Receive(InboundMessage {
        provider_message_id: message_key(id).to_string(),
        contact: ContactDetails {
            address: from.to_string(),
            name,
            phone,
        },
        text: payload["body"].as_str().unwrap_or_default().to_string(),
        kind: if has_media {
            InboundKind::Media
        } else {
            InboundKind::Text
        },
        sent_at,
        lead_source: referral.map(LeadSource::from_ad_url),
    }))
}

/// Reads a `message.ack` event's payload.
///
/// # Errors
/// [`Incomplete`].
pub fn ack(payload: &Value) -> Result<MessageAction, Incomplete> {
    let missing = |missing| Incomplete {
        event: "message.ack",
        missing,
    };
    if !payload["fromMe"].as_bool().unwrap_or(true) {
        return Ok(MessageAction::Ignore("an ack of the customer's message"));
    }
    let id = payload["id"].as_str().ok_or_else(|| missing("id"))?;
    let to = payload["to"].as_str().ok_or_else(|| missing("to"))?;
    let status = match payload["ack"].as_i64().ok_or_else(|| missing("ack"))? {
        -1 => ReceiptStatus::Failed,
        1 => ReceiptStatus::Sent,
        2 => ReceiptStatus::Delivered,
        3 | 4 => ReceiptStatus::Read,
        _ => return Ok(MessageAction::Ignore("pending")),
    };
    Ok(MessageAction::Receipt {
        address: to.to_string(),
        provider_message_id: message_key(id).to_string(),
        status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fixture() -> Value {
        serde_json::from_str(include_str!("../../tests/fixtures/waha/message.text.json"))
            .expect("fixture")
    }

    #[test]
    fn the_docs_message_is_our_own_echo_and_is_ignored() {
        let envelope = fixture();
        assert_eq!(
            message(&envelope["payload"], Utc::now()),
            Ok(MessageAction::Ignore("our own message"))
        );
    }

    #[test]
    fn a_customer_message_keeps_the_key_of_its_id_and_its_ad_referral() {
        let mut payload = fixture()["payload"].clone();
        payload["fromMe"] = json!(false);
        payload["id"] = json!("false_11111111111@c.us_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
        payload["_data"] = json!({"notifyName": "Ana"});
        payload["referral"] = json!({"source_url": "https://www.tiktok.com/@cafe/video/1"});
        let Ok(MessageAction::Receive(inbound)) = message(&payload, Utc::now()) else {
            panic!("received");
        };
        assert_eq!(
            inbound.provider_message_id,
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        );
        assert_eq!(inbound.contact.address, "11111111111@c.us");
        assert_eq!(inbound.contact.phone.as_deref(), Some("+11111111111"));
        assert_eq!(inbound.contact.name.as_deref(), Some("Ana"));
        assert_eq!(inbound.text, "Hi there!");
        assert_eq!(inbound.sent_at.timestamp(), 1_667_561_485);
        assert_eq!(
            inbound.lead_source.map(|l| l.source).as_deref(),
            Some("tiktok")
        );
    }

    #[test]
    fn ack_levels_map_to_receipts() {
        let ack_of = |level: i64| {
            ack(
                &json!({"id": "true_111@c.us_KEY", "from": "999@c.us", "to": "111@c.us",
                "fromMe": true, "ack": level}),
            )
        };
        let status = |level| match ack_of(level) {
            Ok(MessageAction::Receipt { status, .. }) => Some(status),
            _ => None,
        };
        assert_eq!(status(-1), Some(ReceiptStatus::Failed));
        assert_eq!(status(0), None);
        assert_eq!(status(1), Some(ReceiptStatus::Sent));
        assert_eq!(status(2), Some(ReceiptStatus::Delivered));
        assert_eq!(status(3), Some(ReceiptStatus::Read));
        assert_eq!(status(4), Some(ReceiptStatus::Read));
        assert!(
            matches!(ack_of(2), Ok(MessageAction::Receipt { provider_message_id, address, .. })
            if provider_message_id == "KEY" && address == "111@c.us")
        );
        assert!(ack(&json!({"fromMe": true, "ack": 2})).is_err());
    }
}
