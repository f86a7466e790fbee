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
use x8_domain::conversation::aggregate::DEFAULT_BATCH_WINDOW_SECS;
use x8_domain::conversation::{
    Contact, ConversationCommand, ConversationError, InboundKind, LeadSource,
};

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
    /// The contact's address on the provider (chat id, WhatsApp id, Viber user id).
    pub address: String,
    /// The contact's name, if given.
    pub name: Option<String>,
    /// The contact's phone, if given.
    pub phone: Option<String>,
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
    format!("conversation:{conversation_id}:{field}")
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
    // One key lookup for the id and every sealed field.
    let key = commands
        .vault
        .scope_key(channel.tenant_id().0)
        .await
        .map_err(vault_error)?;
    let conversation_id = conversation_id(&key, channel, &message.address)?;
    let seal = |field: &str, plaintext: &str| {
        key.seal(&purpose(conversation_id, field), plaintext.as_bytes())
            .map_err(vault_error)
    };
    let contact = Contact {
        address: seal("address", &message.address)?,
        name: message
            .name
            .as_deref()
            .map(|n| seal("name", n))
            .transpose()?,
        phone: message
            .phone
            .as_deref()
            .map(|p| seal("phone", p))
            .transpose()?,
    };
    let text = seal("text", &message.text)?;
    let command = ConversationCommand::ReceiveMessage {
        tenant_id: channel.tenant_id(),
        company_id: channel.company_id(),
        channel_id: channel.id(),
        platform: channel.platform(),
        contact,
        lead_source: message.lead_source.unwrap_or_default(),
        provider_message_id: message.provider_message_id,
        text,
        kind: message.kind,
        sent_at: message.sent_at,
        batch_window_secs: DEFAULT_BATCH_WINDOW_SECS,
    };
    let outcome = commands
        .conversations
        .execute(&conversation_id.to_string(), command, ctx)
        .await
        .map_err(|e| e.map_rejected(ConversationOpError::Conversation))?;
    Ok((conversation_id, outcome.position()))
}

fn vault_error(err: VaultError) -> CommandError<ConversationOpError> {
    match err {
        VaultError::KeyDestroyed(_) => CommandError::Rejected(ConversationOpError::KeyDestroyed),
        other => CommandError::Infrastructure(other.to_string()),
    }
}
