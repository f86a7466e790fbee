//! The metadata every event carries, stored in `events.metadata` (jsonb, string values).
//!
//! cqrs-es hands a command's metadata to the repository as a `HashMap<String, String>`
//! copied onto each of its events; these are its keys.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use uuid::Uuid;

/// Metadata key: who caused the event ([`Actor`] as text).
pub const ACTOR: &str = "actor";
/// Metadata key: the request or process the event belongs to.
pub const CORRELATION_ID: &str = "correlation_id";
/// Metadata key: the message (command or event) that caused this one.
pub const CAUSATION_ID: &str = "causation_id";
/// Metadata key: the command id (idempotency key).
pub const COMMAND_ID: &str = "command_id";
/// Metadata key: the command's name.
pub const COMMAND_NAME: &str = "command_name";
/// Metadata key: the tenant the event belongs to (also the `tenant_id` column).
pub const TENANT_ID: &str = "tenant_id";

/// Who caused an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Actor {
    /// A signed-in user, with its role (`CLIENT`, `MANAGER`, `ADMIN`).
    User {
        /// The user id.
        id: Uuid,
        /// The role at the time.
        role: String,
    },
    /// Anyone, before signing in (e.g. a business registering itself).
    Anonymous,
    /// A provider's webhook, e.g. `webhook:stripe`.
    Webhook(String),
    /// The platform itself (deadlines, process managers, tools).
    System,
}

impl fmt::Display for Actor {
    /// `user:<id>:<role>`, `anonymous`, `webhook:<provider>` or `system`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::User { id, role } => write!(f, "user:{id}:{role}"),
            Actor::Anonymous => f.write_str("anonymous"),
            Actor::Webhook(provider) => write!(f, "webhook:{provider}"),
            Actor::System => f.write_str("system"),
        }
    }
}

/// The metadata of one command's events.
#[derive(Debug, Clone)]
pub struct EventMetadata {
    /// Who.
    pub actor: Actor,
    /// The request or process.
    pub correlation_id: Uuid,
    /// What caused it, if not the request itself.
    pub causation_id: Option<Uuid>,
    /// The command id.
    pub command_id: Uuid,
    /// The command name.
    pub command_name: String,
    /// The tenant, for tenant-owned streams.
    pub tenant_id: Option<Uuid>,
}

impl EventMetadata {
    /// The map cqrs-es copies onto every event of the command.
    pub fn to_map(&self) -> HashMap<String, String> {
        let mut map = HashMap::from([
            (ACTOR.to_string(), self.actor.to_string()),
            (CORRELATION_ID.to_string(), self.correlation_id.to_string()),
            (COMMAND_ID.to_string(), self.command_id.to_string()),
            (COMMAND_NAME.to_string(), self.command_name.clone()),
        ]);
        if let Some(causation) = self.causation_id {
            map.insert(CAUSATION_ID.to_string(), causation.to_string());
        }
        if let Some(tenant) = self.tenant_id {
            map.insert(TENANT_ID.to_string(), tenant.to_string());
        }
        map
    }
}

/// Reads a UUID-valued key from stored metadata.
pub fn uuid_field(metadata: &serde_json::Value, key: &str) -> Option<Uuid> {
    metadata.get(key)?.as_str()?.parse().ok()
}
