//! Channel connections (DOMAIN.md "Channel connections"): one aggregate per connection of
//! a company to a platform, with its status `DISCONNECTED → CONNECTING → CONNECTED` and
//! `ERROR` (last error, error count), its Meta app when it has one, its sealed
//! credentials, and removal.
//!
//! The plan limit is not decided here: a connection is created only after its tenant
//! reserved a slot for it (see [`crate::tenant`] for why), and removal gives it back.

mod aggregate;
#[cfg(test)]
mod tests;
pub mod whatsapp;

pub use aggregate::{
    Channel, ChannelCommand, ChannelError, ChannelEvent, MAX_BATCH_WINDOW_SECS,
    MIN_BATCH_WINDOW_SECS,
};

use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// A platform a business connects (serialised in lower case, e.g. `"whatsapp"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// WhatsApp, through a WAHA server.
    #[default]
    Whatsapp,
    /// Telegram Bot API.
    Telegram,
    /// Instagram, through a Meta app from the pool.
    Instagram,
    /// Facebook Messenger, through a Meta app from the pool.
    Facebook,
    /// E-mail (Gmail).
    Email,
    /// TikTok (leads routed to WhatsApp, source kept).
    Tiktok,
    /// Viber (REST bot API or Infobip).
    Viber,
}

impl Platform {
    /// The lower-case name used on the wire and in read models.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Whatsapp => "whatsapp",
            Self::Telegram => "telegram",
            Self::Instagram => "instagram",
            Self::Facebook => "facebook",
            Self::Email => "email",
            Self::Tiktok => "tiktok",
            Self::Viber => "viber",
        }
    }

    /// Whether connecting needs an app from the Meta app pool (Instagram, Facebook).
    pub fn needs_meta_app(self) -> bool {
        matches!(self, Self::Instagram | Self::Facebook)
    }
}

/// An unknown platform name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown platform {0:?}")]
pub struct UnknownPlatform(pub String);

impl FromStr for Platform {
    type Err = UnknownPlatform;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        serde_json::from_value(serde_json::Value::String(s.to_string()))
            .map_err(|_| UnknownPlatform(s.to_string()))
    }
}

/// A connection's status (serialised in upper case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChannelStatus {
    /// Not connected (new, stopped, or logged out).
    #[default]
    Disconnected,
    /// Being connected: session starting, waiting for a QR scan, reconnecting.
    Connecting,
    /// Connected and working.
    Connected,
    /// Failed for good (e.g. reconnects exhausted): needs the business.
    Error,
}

impl ChannelStatus {
    /// The upper-case name used on the wire and in read models.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disconnected => "DISCONNECTED",
            Self::Connecting => "CONNECTING",
            Self::Connected => "CONNECTED",
            Self::Error => "ERROR",
        }
    }
}
