//! Viber's `X-Viber-Content-Signature`: lowercase hex HMAC-SHA256 of the raw callback body
//! under the bot's auth token (Viber's bot SDKs; `shared/fixtures/viber`). There is no
//! timestamp in the MAC, so replays are stopped by deduplicating on `message_token`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

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

impl Callback {
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
            callback.sender.map(|s| s.id).as_deref(),
            Some("01234567890A=")
        );
        assert_eq!(callback.message.map(|m| m.kind).as_deref(), Some("text"));
        let webhook: Callback = serde_json::from_str(
            r#"{"event":"webhook","timestamp":4977069964384421269,"message_token":1478683725125}"#,
        )
        .expect("webhook");
        assert_eq!(webhook.timestamp, 4_977_069_964_384_421_269);
    }
}
