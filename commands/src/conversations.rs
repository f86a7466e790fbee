//! Conversations (DOMAIN.md "Conversations and messages"): recording what the providers'
//! webhooks deliver, with every personal field sealed before it enters an event.
//!
//! A conversation's stream id is a **blind index** of the connection and the contact's
//! address under the tenant's data key ([`crate::vault::Vault::blind_index`]): the same
//! contact on the same connection always lands in the same conversation, and no phone
//! number or chat id appears in a stream id, so erasing the tenant's key leaves nothing to
//! link an id back to a person.

use crate::bus::NamedCommand;
use crate::context::CommandContext;
use crate::error::CommandError;
use crate::vault::{ScopeKey, VaultError};
use crate::Commands;
use chrono::{DateTime, Utc};
use uuid::Uuid;
use x8_domain::channel::Channel;
use x8_domain::conversation::{
    Contact, ConversationCommand, ConversationError, InboundKind, LeadSource, ReceiptStatus,
};
use x8_domain::Sealed;

/// Why a conversation operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConversationOpError {
    /// The conversation refused it.
    #[error(transparent)]
    Conversation(#[from] ConversationError),
    /// The tenant was erased: its data key is gone.
    #[error("the business was erased")]
    KeyDestroyed,
}

impl NamedCommand for ConversationCommand {
    fn command_name(&self) -> &'static str {
        self.name()
    }
    fn tenant_id(&self, _aggregate_id: &str) -> Option<Uuid> {
        match self {
            Self::ReceiveMessage { tenant_id, .. } => Some(tenant_id.0),
            _ => None,
        }
    }
}

/// An inbound message as a provider's webhook gives it, in plaintext (sealed here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMessage {
    /// The provider's message id (dedupe within the conversation).
    pub provider_message_id: String,
    /// Who sent it.
    pub contact: ContactDetails,
    /// The text, caption or button data.
    pub text: String,
    /// What it is.
    pub kind: InboundKind,
    /// When the customer sent it.
    pub sent_at: DateTime<Utc>,
    /// Where the conversation came from, when the message says (used when it opens).
    pub lead_source: Option<LeadSource>,
}

/// The conversation of `address` on `channel`, a blind index under `key` (the channel's
/// tenant's).
///
/// # Errors
/// [`CommandError::Infrastructure`] when the vault fails.
pub fn conversation_id(
    key: &ScopeKey,
    channel: &Channel,
    address: &str,
) -> Result<Uuid, CommandError<ConversationOpError>> {
    key.blind_index(
        "conversation",
        format!("{}\n{address}", channel.id()).as_bytes(),
    )
    .map_err(vault_error)
}

/// The vault purpose of a conversation's field: binds a sealed value to its conversation.
pub fn purpose(conversation_id: Uuid, field: &str) -> String {
    Sealed::purpose("conversation", conversation_id, field)
}

/// The contact as a provider names it, in plaintext (sealed by [`open`] and [`receive`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContactDetails {
    /// The contact's address on the provider (chat id, WhatsApp id, Viber user id).
    pub address: String,
    /// The contact's name, if given.
    pub name: Option<String>,
    /// The contact's phone, if given.
    pub phone: Option<String>,
}

/// The tenant's key and the conversation of `address` on `channel`, with a sealer for
/// that conversation's fields.
struct Sealer {
    key: ScopeKey,
    conversation_id: Uuid,
}

impl Sealer {
    async fn new(
        commands: &Commands,
        channel: &Channel,
        address: &str,
    ) -> Result<Self, CommandError<ConversationOpError>> {
        // One key lookup for the id and every sealed field.
        let key = commands
            .vault
            .scope_key(channel.tenant_id().0)
            .await
            .map_err(vault_error)?;
        let conversation_id = conversation_id(&key, channel, address)?;
        Ok(Self {
            key,
            conversation_id,
        })
    }

    fn seal(
        &self,
        field: &str,
        plaintext: &str,
    ) -> Result<Sealed, CommandError<ConversationOpError>> {
        self.key
            .seal(&purpose(self.conversation_id, field), plaintext.as_bytes())
            .map_err(vault_error)
    }

    fn contact(
        &self,
        details: &ContactDetails,
    ) -> Result<Contact, CommandError<ConversationOpError>> {
        let optional = |field: &str, value: &Option<String>| {
            value.as_deref().map(|v| self.seal(field, v)).transpose()
        };
        Ok(Contact {
            address: self.seal("address", &details.address)?,
            name: optional("name", &details.name)?,
            phone: optional("phone", &details.phone)?,
        })
    }
}

/// Opens the conversation of `contact` on `channel` before any message (Viber
/// `conversation_started`), with its lead source. Returns the conversation and the last
/// position (0 when it was open already).
///
/// # Errors
/// `KeyDestroyed`; see [`crate::CommandBus::execute`].
pub async fn open(
    commands: &Commands,
    channel: &Channel,
    contact: &ContactDetails,
    lead_source: LeadSource,
    at: DateTime<Utc>,
    ctx: &CommandContext,
) -> Result<(Uuid, i64), CommandError<ConversationOpError>> {
    let sealer = Sealer::new(commands, channel, &contact.address).await?;
    let command = ConversationCommand::Open {
        tenant_id: channel.tenant_id(),
        company_id: channel.company_id(),
        channel_id: channel.id(),
        platform: channel.platform(),
        contact: sealer.contact(contact)?,
        lead_source,
        at,
    };
    execute(commands, sealer.conversation_id, command, ctx).await
}

/// Records an inbound message on its conversation (opening or reopening it). Returns the
/// conversation and the last position (0 when it was a duplicate).
///
/// # Errors
/// `KeyDestroyed`; see [`crate::CommandBus::execute`].
pub async fn receive(
    commands: &Commands,
    channel: &Channel,
    message: InboundMessage,
    ctx: &CommandContext,
) -> Result<(Uuid, i64), CommandError<ConversationOpError>> {
    let sealer = Sealer::new(commands, channel, &message.contact.address).await?;
    let command = ConversationCommand::ReceiveMessage {
        tenant_id: channel.tenant_id(),
        company_id: channel.company_id(),
        channel_id: channel.id(),
        platform: channel.platform(),
        contact: sealer.contact(&message.contact)?,
        lead_source: message.lead_source.unwrap_or_default(),
        provider_message_id: message.provider_message_id,
        text: sealer.seal("text", &message.text)?,
        kind: message.kind,
        sent_at: message.sent_at,
        batch_window_secs: channel.batch_window_secs(),
    };
    execute(commands, sealer.conversation_id, command, ctx).await
}

/// Records a provider's delivery receipt for the message `provider_message_id` sent to
/// `address` on `channel`. Returns the conversation and the last position (0 when the
/// receipt changed nothing: a duplicate, or a status behind the message's).
///
/// # Errors
/// `NotFound` (no conversation with that contact), `UnknownMessage` (not a message we
/// sent), `KeyDestroyed`; see [`crate::CommandBus::execute`].
pub async fn record_receipt(
    commands: &Commands,
    channel: &Channel,
    address: &str,
    provider_message_id: String,
    status: ReceiptStatus,
    at: DateTime<Utc>,
    ctx: &CommandContext,
) -> Result<(Uuid, i64), CommandError<ConversationOpError>> {
    let conversation_id = Sealer::new(commands, channel, address)
        .await?
        .conversation_id;
    let command = ConversationCommand::RecordReceipt {
        provider_message_id,
        status,
        at,
    };
    let ctx = ctx.clone().for_tenant(channel.tenant_id().0);
    execute(commands, conversation_id, command, &ctx).await
}

async fn execute(
    commands: &Commands,
    conversation_id: Uuid,
    command: ConversationCommand,
    ctx: &CommandContext,
) -> Result<(Uuid, i64), CommandError<ConversationOpError>> {
    let outcome = commands
        .conversations
        .execute(&conversation_id.to_string(), command, ctx)
        .await
        .map_err(|e| e.map_rejected(ConversationOpError::Conversation))?;
    Ok((conversation_id, outcome.position()))
}

/// A vault failure as a conversation operation's error (`KeyDestroyed` once erased).
pub(crate) fn vault_error(err: VaultError) -> CommandError<ConversationOpError> {
    err.refusal(ConversationOpError::KeyDestroyed)
}
