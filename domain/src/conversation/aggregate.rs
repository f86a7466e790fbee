//! A conversation: one per channel connection and customer contact (DOMAIN.md
//! "Conversations and messages"). Its stream id is chosen by the command layer (a blind
//! index of the contact under the tenant's key), never the contact itself.
//!
//! Rules:
//! - an inbound message is recorded once per provider message id; the first one opens the
//!   conversation with its **lead source**, kept for good; one after `resolved` reopens it;
//! - consecutive inbound messages less than the connection's window apart (default 10 s)
//!   form one **batch** for the assistant; a batch is closed once its window has passed
//!   without a new message, and is taken once;
//! - a reply carries its **response time**: seconds from the customer's first unanswered
//!   inbound message to it (none when nothing was waiting);
//! - each outbound message is priced by the 24-hour session window ([`MessageRates`]);
//! - sending is recorded before the provider is called, and the provider's answer after:
//!   accepted (with its id) or failed (with the reason; a failed message can be sent again);
//! - delivery receipts only move forward (sent < delivered < read); `failed` is kept unless a
//!   later success (delivered, read) arrives.
//!
//! Message texts, the contact's address, name and phone are [`Sealed`] with the tenant's
//! data key by the command layer.

use super::lead_source::LeadSource;
use super::pricing::{MessageRates, PricingWindow};
use crate::channel::Platform;
use crate::{Sealed, TenantId};
use chrono::{DateTime, Duration, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// The default buffering window, seconds.
pub const DEFAULT_BATCH_WINDOW_SECS: u32 = 10;

/// Outbound message types (DOMAIN.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum MessageType {
    /// Informational.
    #[serde(rename = "TYPE1")]
    Type1,
    /// Payment request.
    #[serde(rename = "TYPE2")]
    Type2,
    /// Transactional (e.g. a delivery status).
    #[serde(rename = "TYPE3")]
    Type3,
}

impl MessageType {
    /// Every type, in order.
    pub const ALL: [Self; 3] = [Self::Type1, Self::Type2, Self::Type3];

    /// `TYPE1`, `TYPE2` or `TYPE3`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Type1 => "TYPE1",
            Self::Type2 => "TYPE2",
            Self::Type3 => "TYPE3",
        }
    }
}

/// What an inbound message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InboundKind {
    /// Text.
    Text,
    /// An image, a file, a voice note, a sticker, a location…
    Media,
    /// A button press (Telegram callback query, Viber keyboard reply).
    Callback,
}

impl InboundKind {
    /// Every kind, in order.
    pub const ALL: [Self; 3] = [Self::Text, Self::Media, Self::Callback];

    /// `text`, `media` or `callback`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Media => "media",
            Self::Callback => "callback",
        }
    }
}

/// A delivery receipt's status, in the order they can follow each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStatus {
    /// Sent, not known to be delivered.
    Sent,
    /// Delivered to the device.
    Delivered,
    /// Read.
    Read,
    /// Not delivered.
    Failed,
}

impl ReceiptStatus {
    /// `sent`, `delivered`, `read`, `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Failed => "failed",
        }
    }

    /// Whether `self` may follow `current`: forward only; `failed` only before a success;
    /// a success after `failed`.
    fn advances(self, current: Option<Self>) -> bool {
        use ReceiptStatus as R;
        match (current, self) {
            (None, _) => true,
            (Some(R::Failed), status) => matches!(status, R::Delivered | R::Read),
            (Some(_), R::Failed) => current == Some(R::Sent),
            (Some(current), status) => status > current,
        }
    }
}

/// The provider's answer to a send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum SendOutcome {
    /// Accepted, with the provider's message id.
    Accepted {
        /// The provider's id (for receipts).
        provider_message_id: String,
    },
    /// Refused or unreachable.
    Failed {
        /// Why (the provider's error, or the transport's).
        reason: String,
    },
}

/// The contact as the conversation records it when it opens: all sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Contact {
    /// The provider's address of the contact (chat id, WhatsApp id, Viber user id), to
    /// reply to.
    pub address: Sealed,
    /// The customer's name, if the provider gave one.
    pub name: Option<Sealed>,
    /// The customer's phone, if the provider gave one.
    pub phone: Option<Sealed>,
}

/// What can be asked of a conversation. Times are UTC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ConversationCommand {
    /// Open the conversation before any message, when the provider says the contact
    /// started it (Viber `conversation_started`, with the deep link's context as its lead
    /// source). Nothing when it exists.
    Open {
        /// The business.
        tenant_id: TenantId,
        /// The company the connection serves.
        company_id: Uuid,
        /// The connection.
        channel_id: Uuid,
        /// Its platform.
        platform: Platform,
        /// The contact.
        contact: Contact,
        /// Where the conversation came from.
        lead_source: LeadSource,
        /// When (the provider's time).
        at: DateTime<Utc>,
    },
    /// Record an inbound message (opening or reopening the conversation).
    ReceiveMessage {
        /// The business.
        tenant_id: TenantId,
        /// The company the connection serves.
        company_id: Uuid,
        /// The connection.
        channel_id: Uuid,
        /// Its platform.
        platform: Platform,
        /// The contact.
        contact: Contact,
        /// Where the conversation came from (used only when it opens).
        lead_source: LeadSource,
        /// The provider's message id (dedupe).
        provider_message_id: String,
        /// The text (or a media caption), sealed.
        text: Sealed,
        /// What it is.
        kind: InboundKind,
        /// When the customer sent it (the provider's time).
        sent_at: DateTime<Utc>,
        /// The connection's buffering window, seconds.
        batch_window_secs: u32,
    },
    /// Record an outbound message before it is sent.
    SendMessage {
        /// Its id.
        message_id: Uuid,
        /// The text, sealed.
        text: Sealed,
        /// Its type.
        message_type: MessageType,
        /// Whether it carries rich media.
        rich_media: bool,
        /// The rates now.
        rates: MessageRates,
        /// When.
        at: DateTime<Utc>,
    },
    /// Record the provider's answer to a send (or to a retry).
    RecordSendOutcome {
        /// The message.
        message_id: Uuid,
        /// The answer.
        outcome: SendOutcome,
        /// When.
        at: DateTime<Utc>,
    },
    /// Record a delivery receipt for an outbound message.
    RecordReceipt {
        /// The provider's message id.
        provider_message_id: String,
        /// The status.
        status: ReceiptStatus,
        /// When it happened (the provider's time).
        at: DateTime<Utc>,
    },
    /// Hand a closed batch to the assistant (once).
    TakeBatch {
        /// The batch number.
        batch: u32,
        /// Now.
        at: DateTime<Utc>,
    },
    /// Mark resolved.
    Resolve {
        /// When.
        at: DateTime<Utc>,
    },
}

impl ConversationCommand {
    /// The command's name, recorded in event metadata and the idempotency record.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Open { .. } => "OpenConversation",
            Self::ReceiveMessage { .. } => "ReceiveMessage",
            Self::SendMessage { .. } => "SendMessage",
            Self::RecordSendOutcome { .. } => "RecordSendOutcome",
            Self::RecordReceipt { .. } => "RecordReceipt",
            Self::TakeBatch { .. } => "TakeBatch",
            Self::Resolve { .. } => "ResolveConversation",
        }
    }
}

/// What happened to a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ConversationEvent {
    /// The first inbound message opened it.
    ConversationOpened {
        /// The business.
        tenant_id: TenantId,
        /// The company.
        company_id: Uuid,
        /// The connection.
        channel_id: Uuid,
        /// Its platform.
        platform: Platform,
        /// The contact, sealed.
        contact: Contact,
        /// Where it came from, for every metric of this conversation.
        lead_source: LeadSource,
        /// When (the first message's time).
        opened_at: DateTime<Utc>,
    },
    /// An inbound message after `resolved` reopened it.
    ConversationReopened {
        /// When.
        at: DateTime<Utc>,
    },
    /// An inbound message.
    MessageReceived {
        /// The provider's id.
        provider_message_id: String,
        /// Sealed text.
        text: Sealed,
        /// What it is.
        kind: InboundKind,
        /// When the customer sent it.
        sent_at: DateTime<Utc>,
        /// The batch it belongs to (1, 2, …).
        batch: u32,
        /// That batch's window, seconds.
        batch_window_secs: u32,
    },
    /// An outbound message, recorded before it is sent.
    MessageSent {
        /// Its id.
        message_id: Uuid,
        /// Sealed text.
        text: Sealed,
        /// Its type.
        message_type: MessageType,
        /// Rich media.
        rich_media: bool,
        /// Session or proactive.
        window: PricingWindow,
        /// Its price, micro-euros.
        cost_micro_eur: i64,
        /// Seconds since the first unanswered inbound message, when it answers one.
        response_time_secs: Option<i64>,
        /// When.
        at: DateTime<Utc>,
    },
    /// The provider accepted it.
    MessageAccepted {
        /// The message.
        message_id: Uuid,
        /// The provider's id.
        provider_message_id: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// The provider refused it or could not be reached; it can be sent again.
    MessageSendFailed {
        /// The message.
        message_id: Uuid,
        /// Why.
        reason: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// A delivery receipt moved the message forward.
    DeliveryReceiptRecorded {
        /// The message.
        message_id: Uuid,
        /// Its status now.
        status: ReceiptStatus,
        /// When it happened.
        at: DateTime<Utc>,
    },
    /// A closed batch was handed to the assistant.
    BatchTaken {
        /// The batch.
        batch: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// Resolved.
    ConversationResolved {
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for ConversationEvent {
    fn event_type(&self) -> String {
        match self {
            Self::ConversationOpened { .. } => "ConversationOpened",
            Self::ConversationReopened { .. } => "ConversationReopened",
            Self::MessageReceived { .. } => "MessageReceived",
            Self::MessageSent { .. } => "MessageSent",
            Self::MessageAccepted { .. } => "MessageAccepted",
            Self::MessageSendFailed { .. } => "MessageSendFailed",
            Self::DeliveryReceiptRecorded { .. } => "DeliveryReceiptRecorded",
            Self::BatchTaken { .. } => "BatchTaken",
            Self::ConversationResolved { .. } => "ConversationResolved",
        }
        .to_string()
    }
    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

/// Why a conversation command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConversationError {
    /// No such conversation.
    #[error("no such conversation")]
    NotFound,
    /// No outbound message with that id.
    #[error("no such message in this conversation")]
    UnknownMessage,
    /// The batch is not closed yet, or was taken, or does not exist.
    #[error("batch {0} is not waiting to be taken")]
    BatchNotWaiting(u32),
    /// A message id reused for another message.
    #[error("message {0} exists")]
    MessageExists(Uuid),
}

/// The inbound batch being filled or waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// Its number (1, 2, …).
    pub number: u32,
    /// The first message's time.
    pub first_at: DateTime<Utc>,
    /// The last message's time.
    pub last_at: DateTime<Utc>,
    /// Messages in it.
    pub messages: u32,
    /// Its window, seconds.
    pub window_secs: u32,
}

impl Batch {
    /// When it closes: its window after its last message.
    pub fn closes_at(&self) -> DateTime<Utc> {
        self.last_at + Duration::seconds(i64::from(self.window_secs))
    }
}

/// A message of the latest batch, as the assistant gets it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchMessage {
    /// The sealed text.
    pub text: Sealed,
    /// What it is.
    pub kind: InboundKind,
    /// When the customer sent it.
    pub sent_at: DateTime<Utc>,
}

/// An outbound message's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Outbound {
    accepted: bool,
    receipt: Option<ReceiptStatus>,
    #[serde(default)]
    failed: bool,
    /// The text until the provider accepts it (to send it again).
    #[serde(default)]
    unsent_text: Option<Sealed>,
}

/// Where an outbound message stands with its provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendState {
    /// Recorded, the provider's answer not yet.
    Pending,
    /// Accepted by the provider.
    Accepted,
    /// The last attempt failed; it can be sent again.
    Failed,
}

/// A conversation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    tenant_id: Option<TenantId>,
    channel_id: Option<Uuid>,
    contact: Contact,
    resolved: bool,
    inbound: BTreeSet<String>,
    last_inbound_at: Option<DateTime<Utc>>,
    first_unanswered_at: Option<DateTime<Utc>>,
    batch: Option<Batch>,
    #[serde(default)]
    batch_messages: Vec<BatchMessage>,
    batches_taken: u32,
    outbound: BTreeMap<Uuid, Outbound>,
    by_provider_id: BTreeMap<String, Uuid>,
}

impl Conversation {
    /// Whether it exists.
    pub fn exists(&self) -> bool {
        self.tenant_id.is_some()
    }
    /// Its business.
    pub fn tenant_id(&self) -> Option<TenantId> {
        self.tenant_id
    }
    /// Its connection.
    pub fn channel_id(&self) -> Option<Uuid> {
        self.channel_id
    }
    /// The contact, sealed.
    pub fn contact(&self) -> &Contact {
        &self.contact
    }
    /// The latest batch's messages, in the order they were recorded.
    pub fn batch_messages(&self) -> &[BatchMessage] {
        &self.batch_messages
    }
    /// The latest batch, if any, and whether it was taken.
    pub fn latest_batch(&self) -> Option<(Batch, bool)> {
        self.batch
            .map(|batch| (batch, batch.number <= self.batches_taken))
    }
    /// Where the outbound message stands, if it exists.
    pub fn send_state(&self, message_id: Uuid) -> Option<SendState> {
        self.outbound
            .get(&message_id)
            .map(|o| match (o.accepted, o.failed) {
                (true, _) => SendState::Accepted,
                (false, true) => SendState::Failed,
                (false, false) => SendState::Pending,
            })
    }
    /// The sealed text of an outbound message the provider has not accepted yet.
    pub fn unsent_text(&self, message_id: Uuid) -> Option<&Sealed> {
        self.outbound.get(&message_id)?.unsent_text.as_ref()
    }
    /// The message a provider id belongs to.
    pub fn message_of(&self, provider_message_id: &str) -> Option<Uuid> {
        self.by_provider_id.get(provider_message_id).copied()
    }

    /// Pure decision.
    ///
    /// # Errors
    /// [`ConversationError`].
    pub fn decide(
        &self,
        command: ConversationCommand,
    ) -> Result<Vec<ConversationEvent>, ConversationError> {
        use ConversationCommand as C;
        use ConversationEvent as E;
        if let C::Open {
            tenant_id,
            company_id,
            channel_id,
            platform,
            contact,
            lead_source,
            at,
        } = command
        {
            if self.exists() {
                return Ok(vec![]);
            }
            return Ok(vec![E::ConversationOpened {
                tenant_id,
                company_id,
                channel_id,
                platform,
                contact,
                lead_source,
                opened_at: at,
            }]);
        }
        if let C::ReceiveMessage {
            tenant_id,
            company_id,
            channel_id,
            platform,
            contact,
            lead_source,
            provider_message_id,
            text,
            kind,
            sent_at,
            batch_window_secs,
        } = command
        {
            if self.inbound.contains(&provider_message_id) {
                return Ok(vec![]);
            }
            let mut events = vec![];
            if !self.exists() {
                events.push(E::ConversationOpened {
                    tenant_id,
                    company_id,
                    channel_id,
                    platform,
                    contact,
                    lead_source,
                    opened_at: sent_at,
                });
            } else if self.resolved {
                events.push(E::ConversationReopened { at: sent_at });
            }
            let batch = match self.batch {
                Some(batch) if batch.number > self.batches_taken && sent_at < batch.closes_at() => {
                    batch.number
                }
                Some(batch) => batch.number + 1,
                None => 1,
            };
            events.push(E::MessageReceived {
                provider_message_id,
                text,
                kind,
                sent_at,
                batch,
                batch_window_secs,
            });
            return Ok(events);
        }
        if !self.exists() {
            return Err(ConversationError::NotFound);
        }
        Ok(match command {
            C::Open { .. } | C::ReceiveMessage { .. } => unreachable!("handled above"),
            C::SendMessage {
                message_id,
                text,
                message_type,
                rich_media,
                rates,
                at,
            } => {
                if self.outbound.contains_key(&message_id) {
                    return Err(ConversationError::MessageExists(message_id));
                }
                let (window, cost_micro_eur) = rates.price(self.last_inbound_at, at, rich_media);
                vec![E::MessageSent {
                    message_id,
                    text,
                    message_type,
                    rich_media,
                    window,
                    cost_micro_eur,
                    response_time_secs: self
                        .first_unanswered_at
                        .map(|waiting| (at - waiting).num_seconds().max(0)),
                    at,
                }]
            }
            C::RecordSendOutcome {
                message_id,
                outcome,
                at,
            } => {
                let outbound = self
                    .outbound
                    .get(&message_id)
                    .ok_or(ConversationError::UnknownMessage)?;
                if outbound.accepted {
                    return Ok(vec![]);
                }
                match outcome {
                    SendOutcome::Accepted {
                        provider_message_id,
                    } => vec![E::MessageAccepted {
                        message_id,
                        provider_message_id,
                        at,
                    }],
                    SendOutcome::Failed { reason } => vec![E::MessageSendFailed {
                        message_id,
                        reason,
                        at,
                    }],
                }
            }
            C::RecordReceipt {
                provider_message_id,
                status,
                at,
            } => {
                let message_id = self
                    .message_of(&provider_message_id)
                    .ok_or(ConversationError::UnknownMessage)?;
                let current = self.outbound.get(&message_id).and_then(|o| o.receipt);
                if !status.advances(current) {
                    return Ok(vec![]);
                }
                vec![E::DeliveryReceiptRecorded {
                    message_id,
                    status,
                    at,
                }]
            }
            C::TakeBatch { batch, at } => match self.batch {
                Some(latest)
                    if latest.number == batch
                        && batch > self.batches_taken
                        && at >= latest.closes_at() =>
                {
                    vec![E::BatchTaken { batch, at }]
                }
                _ if batch <= self.batches_taken => vec![],
                _ => return Err(ConversationError::BatchNotWaiting(batch)),
            },
            C::Resolve { at } => {
                if self.resolved {
                    vec![]
                } else {
                    vec![E::ConversationResolved { at }]
                }
            }
        })
    }
}

impl Aggregate for Conversation {
    const TYPE: &'static str = "conversation";
    type Command = ConversationCommand;
    type Event = ConversationEvent;
    type Error = ConversationError;
    type Services = ();

    crate::handle_by_decide!();

    fn apply(&mut self, event: Self::Event) {
        use ConversationEvent as E;
        match event {
            E::ConversationOpened {
                tenant_id,
                channel_id,
                contact,
                ..
            } => {
                self.tenant_id = Some(tenant_id);
                self.channel_id = Some(channel_id);
                self.contact = contact;
            }
            E::ConversationReopened { .. } => self.resolved = false,
            E::MessageReceived {
                provider_message_id,
                text,
                kind,
                sent_at,
                batch,
                batch_window_secs,
            } => {
                if self.batch.map(|b| b.number) != Some(batch) {
                    self.batch_messages.clear();
                }
                self.batch_messages.push(BatchMessage {
                    text,
                    kind,
                    sent_at,
                });
                self.inbound.insert(provider_message_id);
                self.last_inbound_at = self.last_inbound_at.max(Some(sent_at));
                self.first_unanswered_at = self.first_unanswered_at.or(Some(sent_at));
                self.batch = Some(match self.batch {
                    Some(current) if current.number == batch => Batch {
                        last_at: current.last_at.max(sent_at),
                        messages: current.messages + 1,
                        ..current
                    },
                    _ => Batch {
                        number: batch,
                        first_at: sent_at,
                        last_at: sent_at,
                        messages: 1,
                        window_secs: batch_window_secs,
                    },
                });
            }
            E::MessageSent {
                message_id, text, ..
            } => {
                self.first_unanswered_at = None;
                self.outbound.insert(
                    message_id,
                    Outbound {
                        accepted: false,
                        receipt: None,
                        failed: false,
                        unsent_text: Some(text),
                    },
                );
            }
            E::MessageAccepted {
                message_id,
                provider_message_id,
                ..
            } => {
                if let Some(outbound) = self.outbound.get_mut(&message_id) {
                    outbound.accepted = true;
                    outbound.unsent_text = None;
                }
                self.by_provider_id.insert(provider_message_id, message_id);
            }
            E::MessageSendFailed { message_id, .. } => {
                if let Some(outbound) = self.outbound.get_mut(&message_id) {
                    outbound.failed = true;
                }
            }
            E::DeliveryReceiptRecorded {
                message_id, status, ..
            } => {
                if let Some(outbound) = self.outbound.get_mut(&message_id) {
                    outbound.receipt = Some(status);
                }
            }
            E::BatchTaken { batch, .. } => self.batches_taken = self.batches_taken.max(batch),
            E::ConversationResolved { .. } => self.resolved = true,
        }
    }
}

#[cfg(test)]
mod tests;
