//! Viber's `X-Viber-Content-Signature`: lowercase hex HMAC-SHA256 of the raw callback body
//! under the bot's auth token (Viber's bot SDKs; `shared/fixtures/viber`). There is no
//! timestamp in the MAC, so replays are stopped by deduplicating on `message_token`.
//!
//! Callbacks (<https://developers.viber.com/docs/api/rest-bot-api/#callbacks>) become
//! [`Action`]s: `conversation_started` opens the contact's conversation with its lead
//! source, `message` is an inbound message, `delivered`/`seen`/`failed` are receipts.

use crate::conversations::{ContactDetails, InboundMessage};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use x8_domain::conversation::{InboundKind, LeadSource, ReceiptStatus};

/// Whether `signature` (hex, any case) is the body's HMAC-SHA256 under `auth_token`,
/// compared in constant time.
pub fn verify(auth_token: &[u8], body: &[u8], signature: &str) -> bool {
    let Ok(expected) = hex::decode(signature.trim()) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(auth_token) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// The signature of `body` under `auth_token` (for the simulator and tests).
pub fn sign(auth_token: &[u8], body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(auth_token).expect("any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// A Viber callback (<https://developers.viber.com/docs/api/rest-bot-api/#callbacks>),
/// with only the fields we read. `timestamp` and `message_token` exceed 2^53: they are
/// read as 64-bit integers, never through a float.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Callback {
    /// `webhook`, `subscribed`, `unsubscribed`, `conversation_started`, `message`,
    /// `delivered`, `seen`, `failed`, or one Viber adds later.
    pub event: String,
    /// Milliseconds since the epoch.
    pub timestamp: u64,
    /// The message's token (dedupe; what receipts refer to).
    pub message_token: Option<u64>,
    /// The sender of a `message`.
    pub sender: Option<ViberUser>,
    /// The user of `subscribed` and `conversation_started`.
    pub user: Option<ViberUser>,
    /// The user of `unsubscribed`, `delivered`, `seen`, `failed`.
    pub user_id: Option<String>,
    /// `conversation_started`'s context (a deep link parameter).
    pub context: Option<String>,
    /// A `message`'s content.
    pub message: Option<ViberMessage>,
    /// A `failed` callback's reason.
    pub desc: Option<String>,
}

/// A Viber user as callbacks give it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ViberUser {
    /// The user's id (the address to reply to).
    pub id: String,
    /// Display name.
    pub name: Option<String>,
}

/// A message's content.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ViberMessage {
    /// `text`, `picture`, `video`, `file`, `sticker`, `contact`, `url`, `location`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The text (or a media's description).
    pub text: Option<String>,
}

/// What a callback asks of us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `conversation_started`: open the contact's conversation, with the deep link's
    /// `context` as its lead source.
    Open {
        /// The contact.
        contact: ContactDetails,
        /// From `context` (`direct` without one).
        lead_source: LeadSource,
    },
    /// `message`: an inbound message.
    Receive(InboundMessage),
    /// `delivered`, `seen`, `failed`: a receipt for a message we sent.
    Receipt {
        /// The contact's user id.
        address: String,
        /// Our message's token.
        message_token: u64,
        /// Delivered, read or failed.
        status: ReceiptStatus,
    },
    /// `webhook`, `subscribed`, `unsubscribed` and events Viber adds later: acknowledged.
    Ignore,
}

/// A callback Viber says is one of ours but that lacks what its event needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a Viber {event} callback without {missing}")]
pub struct Incomplete {
    /// The event.
    pub event: String,
    /// The field it lacks.
    pub missing: &'static str,
}

impl Callback {
    /// What the callback asks of us.
    ///
    /// # Errors
    /// [`Incomplete`] when the event's own fields are missing.
    pub fn action(&self) -> Result<Action, Incomplete> {
        let missing = |missing| Incomplete {
            event: self.event.clone(),
            missing,
        };
        let contact = |user: &ViberUser| ContactDetails {
            address: user.id.clone(),
            name: user.name.clone().filter(|n| !n.is_empty()),
            phone: None,
        };
        Ok(match self.event.as_str() {
            "conversation_started" => Action::Open {
                contact: contact(self.user.as_ref().ok_or_else(|| missing("user"))?),
                lead_source: self
                    .context
                    .as_deref()
                    .map(LeadSource::from_start_parameter)
                    .unwrap_or_default(),
            },
            "message" => {
                let sender = self.sender.as_ref().ok_or_else(|| missing("sender"))?;
                let message = self.message.as_ref().ok_or_else(|| missing("message"))?;
                let token = self.message_token.ok_or_else(|| missing("message_token"))?;
                Action::Receive(InboundMessage {
                    provider_message_id: token.to_string(),
                    contact: contact(sender),
                    text: message.text.clone().unwrap_or_default(),
                    kind: if message.kind == "text" {
                        InboundKind::Text
                    } else {
                        InboundKind::Media
                    },
                    sent_at: self.at(),
                    lead_source: None,
                })
            }
            "delivered" | "seen" | "failed" => Action::Receipt {
                address: self.user_id.clone().ok_or_else(|| missing("user_id"))?,
                message_token: self.message_token.ok_or_else(|| missing("message_token"))?,
                status: match self.event.as_str() {
                    "delivered" => ReceiptStatus::Delivered,
                    "seen" => ReceiptStatus::Read,
                    _ => ReceiptStatus::Failed,
                },
            },
            _ => Action::Ignore,
        })
    }

    /// When it happened.
    pub fn at(&self) -> chrono::DateTime<chrono::Utc> {
        let millis = i64::try_from(self.timestamp).unwrap_or(i64::MAX);
        chrono::DateTime::from_timestamp_millis(millis).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn the_sdk_vector_verifies_and_its_negatives_do_not() {
        let vector: Value = serde_json::from_str(include_str!(
            "../../tests/fixtures/viber/signature-vector.json"
        ))
        .expect("vector");
        let token = vector["auth_token"].as_str().expect("token");
        let body = vector["body"].as_str().expect("body");
        let signature = vector["expected_signature"].as_str().expect("signature");
        assert!(verify(token.as_bytes(), body.as_bytes(), signature));
        assert_eq!(sign(token.as_bytes(), body.as_bytes()), signature);
        for negative in vector["negative"].as_array().expect("negatives") {
            assert!(!verify(
                negative["auth_token"].as_str().expect("token").as_bytes(),
                negative["body"].as_str().expect("body").as_bytes(),
                negative["signature"].as_str().expect("signature"),
            ));
        }
    }

    #[test]
    fn message_tokens_and_timestamps_above_2_pow_53_are_read_exactly() {
        let callback: Callback =
            serde_json::from_str(include_str!("../../tests/fixtures/viber/message.text.json"))
                .expect("callback");
        assert_eq!(callback.event, "message");
        assert_eq!(callback.message_token, Some(4_912_661_846_655_238_145));
        assert!(callback.message_token > Some(1 << 53));
        assert_eq!(callback.timestamp, 1_457_764_197_627);
        assert_eq!(callback.at().timestamp_millis(), 1_457_764_197_627);
        assert_eq!(
            callback.sender.as_ref().map(|s| s.id.as_str()),
            Some("01234567890A=")
        );
        assert_eq!(
            callback.message.as_ref().map(|m| m.kind.as_str()),
            Some("text")
        );
        let Ok(Action::Receive(inbound)) = callback.action() else {
            panic!("a message");
        };
        assert_eq!(inbound.provider_message_id, "4912661846655238145");
        let webhook: Callback = serde_json::from_str(
            r#"{"event":"webhook","timestamp":4977069964384421269,"message_token":1478683725125}"#,
        )
        .expect("webhook");
        assert_eq!(webhook.timestamp, 4_977_069_964_384_421_269);
        assert_eq!(webhook.action(), Ok(Action::Ignore));
    }

    #[test]
    fn conversation_started_carries_its_context_and_receipts_their_token() {
        let started: Callback = serde_json::from_value(serde_json::json!({
            "event": "conversation_started", "timestamp": 1_457_764_197_627_u64,
            "message_token": 4_912_661_846_655_238_145_u64, "type": "open",
            "context": "tiktok_summer", "user": {"id": "01234567890A=", "name": "John"},
            "subscribed": false
        }))
        .expect("callback");
        let Ok(Action::Open {
            contact,
            lead_source,
        }) = started.action()
        else {
            panic!("open");
        };
        assert_eq!(
            (contact.address.as_str(), lead_source.source.as_str()),
            ("01234567890A=", "tiktok")
        );
        let seen: Callback = serde_json::from_value(serde_json::json!({
            "event": "seen", "timestamp": 1_457_764_197_627_u64,
            "message_token": 18_446_744_073_709_551_615_u64, "user_id": "01234567890A="
        }))
        .expect("callback");
        assert_eq!(
            seen.action(),
            Ok(Action::Receipt {
                address: "01234567890A=".into(),
                message_token: u64::MAX,
                status: ReceiptStatus::Read
            })
        );
        let incomplete: Callback =
            serde_json::from_value(serde_json::json!({"event": "message", "timestamp": 1}))
                .expect("callback");
        assert!(incomplete.action().is_err());
    }
}
