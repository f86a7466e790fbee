//! Infobip's webhooks for WhatsApp and Viber (<https://www.infobip.com/docs/api>): inbound
//! messages and delivery/seen reports, each a body of `results[]`. Infobip signs nothing;
//! the connection's `webhook_secret` credential is sent back by Infobip in a header we
//! configure on its side (`X-Webhook-Secret`), checked by the API layer.
//!
//! - Inbound: `{from, to, integrationType, receivedAt, messageId, message: {type, text |
//!   caption}, contact: {name}}`; deduplicated on `messageId` within the conversation.
//! - Delivery reports: `{messageId, to, status: {groupName}, doneAt}`: `PENDING` → sent,
//!   `DELIVERED` → delivered, `UNDELIVERABLE`, `EXPIRED`, `REJECTED` → failed.
//! - Seen reports: `{messageId, to, seenAt}` → read.
//!
//! Times are Infobip's `2019-07-19T11:23:03.356+0000` (an offset without a colon).

use crate::conversations::{ContactDetails, InboundMessage};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use x8_domain::conversation::{InboundKind, LeadSource, ReceiptStatus};

/// A webhook body.
#[derive(Debug, Deserialize)]
pub struct Webhook {
    /// The messages or reports, in Infobip's order.
    pub results: Vec<Record>,
}

/// One inbound message or report, with the fields we read (others are ignored).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// Infobip's message id.
    pub message_id: String,
    /// Inbound: the customer.
    pub from: Option<String>,
    /// Reports: the customer.
    pub to: Option<String>,
    /// Inbound: when Infobip received it.
    pub received_at: Option<String>,
    /// Inbound: the content.
    pub message: Option<Content>,
    /// Inbound: the customer's profile.
    pub contact: Option<Profile>,
    /// Delivery reports: the status.
    pub status: Option<Status>,
    /// Delivery reports: when it was final.
    pub done_at: Option<String>,
    /// Seen reports: when it was read.
    pub seen_at: Option<String>,
    /// Inbound: a click-to-WhatsApp ad's referral.
    pub referral: Option<Referral>,
}

/// An inbound message's content.
#[derive(Debug, Clone, Deserialize)]
pub struct Content {
    /// `TEXT`, `IMAGE`, `DOCUMENT`, `LOCATION`, `BUTTON`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// Text.
    pub text: Option<String>,
    /// A media caption.
    pub caption: Option<String>,
    /// A button's payload.
    pub payload: Option<String>,
}

/// The customer's profile.
#[derive(Debug, Clone, Deserialize)]
pub struct Profile {
    /// Their name.
    pub name: Option<String>,
}

/// A delivery report's status.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// `PENDING`, `UNDELIVERABLE`, `DELIVERED`, `EXPIRED`, `REJECTED`.
    pub group_name: String,
}

/// A click-to-WhatsApp referral.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Referral {
    /// The ad's URL.
    pub source_url: Option<String>,
}

/// What a result asks of us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A customer's message.
    Receive(InboundMessage),
    /// A report on a message we sent.
    Receipt {
        /// The customer.
        address: String,
        /// The status.
        status: ReceiptStatus,
        /// When.
        at: DateTime<Utc>,
    },
    /// A report that says nothing new, or a result of a kind we do not read.
    Ignore,
}

/// Parses Infobip's `2019-07-19T11:23:03.356+0000` (or RFC 3339).
pub fn parse_time(value: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(value))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl Record {
    /// What the result asks of us; `received_at` dates one without a time.
    pub fn action(&self, received_at: DateTime<Utc>) -> Action {
        let time =
            |value: &Option<String>| value.as_deref().and_then(parse_time).unwrap_or(received_at);
        if let (Some(from), Some(content)) = (&self.from, &self.message) {
            let text = [&content.text, &content.caption, &content.payload]
                .into_iter()
                .find_map(Clone::clone)
                .unwrap_or_default();
            let kind = match content.kind.as_str() {
                "TEXT" => InboundKind::Text,
                "BUTTON" | "INTERACTIVE_BUTTON_REPLY" | "INTERACTIVE_LIST_REPLY" => {
                    InboundKind::Callback
                }
                _ => InboundKind::Media,
            };
            return Action::Receive(InboundMessage {
                provider_message_id: self.message_id.clone(),
                contact: ContactDetails {
                    address: from.clone(),
                    name: self.contact.as_ref().and_then(|c| c.name.clone()),
                    phone: from
                        .chars()
                        .all(|c| c.is_ascii_digit())
                        .then(|| format!("+{from}")),
                },
                text,
                kind,
                sent_at: time(&self.received_at),
                lead_source: self
                    .referral
                    .as_ref()
                    .and_then(|r| r.source_url.as_deref())
                    .map(LeadSource::from_ad_url),
            });
        }
        let Some(to) = &self.to else {
            return Action::Ignore;
        };
        let (status, at) = if self.seen_at.is_some() {
            (ReceiptStatus::Read, time(&self.seen_at))
        } else {
            let status = match self.status.as_ref().map(|s| s.group_name.as_str()) {
                Some("PENDING") => ReceiptStatus::Sent,
                Some("DELIVERED") => ReceiptStatus::Delivered,
                Some("UNDELIVERABLE" | "EXPIRED" | "REJECTED") => ReceiptStatus::Failed,
                _ => return Action::Ignore,
            };
            (status, time(&self.done_at))
        };
        Action::Receipt {
            address: to.clone(),
            status,
            at,
        }
    }

    /// The delivery's id for deduplication: the message and what the result says of it.
    pub fn delivery_id(&self) -> String {
        let kind = if self.message.is_some() {
            "inbound"
        } else if self.seen_at.is_some() {
            "seen"
        } else {
            self.status
                .as_ref()
                .map_or("report", |s| s.group_name.as_str())
        };
        format!("{}:{kind}", self.message_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inbound_whatsapp_message_and_its_reports_are_read() {
        let inbound: Webhook = serde_json::from_str(
            r#"{"results":[{"from":"385916242493","to":"385921004026","integrationType":"WHATSAPP",
            "receivedAt":"2019-07-19T11:23:03.356+0000","messageId":"ABEGOFl3YgSSAhALB0yv_yohWlRj",
            "pairedMessageId":null,"callbackData":null,"message":{"text":"Hello","type":"TEXT"},
            "contact":{"name":"Frank"},"price":{"pricePerMessage":0,"currency":"EUR"}}],
            "messageCount":1,"pendingMessageCount":0}"#,
        )
        .expect("inbound");
        let Action::Receive(message) = inbound.results[0].action(Utc::now()) else {
            panic!("inbound");
        };
        assert_eq!(message.contact.address, "385916242493");
        assert_eq!(message.contact.phone.as_deref(), Some("+385916242493"));
        assert_eq!(message.text, "Hello");
        assert_eq!(message.sent_at.timestamp_millis(), 1_563_535_383_356);

        let report: Webhook = serde_json::from_str(
            r#"{"results":[{"bulkId":"B","messageId":"M1","to":"385916242493",
            "sentAt":"2019-07-19T11:24:00.000+0000","doneAt":"2019-07-19T11:24:02.000+0000",
            "messageCount":1,"status":{"groupId":3,"groupName":"DELIVERED","id":5,
            "name":"DELIVERED_TO_HANDSET","description":"Message delivered to handset"},
            "error":{"groupId":0,"groupName":"OK","id":0,"name":"NO_ERROR"}}]}"#,
        )
        .expect("report");
        assert!(matches!(
            report.results[0].action(Utc::now()),
            Action::Receipt {
                status: ReceiptStatus::Delivered,
                ..
            }
        ));
        assert_eq!(report.results[0].delivery_id(), "M1:DELIVERED");
        let seen: Webhook = serde_json::from_str(
            r#"{"results":[{"messageId":"M1","from":"385921004026","to":"385916242493",
            "sentAt":"2019-07-19T11:24:00.000+0000","seenAt":"2019-07-19T11:25:00.000+0000"}]}"#,
        )
        .expect("seen");
        assert!(matches!(
            seen.results[0].action(Utc::now()),
            Action::Receipt {
                status: ReceiptStatus::Read,
                ..
            }
        ));
    }
}
