//! Sealed values: personal and secret fields as events carry them.
//!
//! Every personal or secret field of an event (an owner's e-mail, a channel's tokens) is
//! sealed with its **tenant's data key** before the event exists (envelope encryption, see
//! `x8_commands::vault`). Destroying the tenant's key (hard delete, crypto-shredding)
//! makes every such field unreadable while the events, their order and their non-personal
//! facts stay. The domain never sees plaintext of a sealed field and never opens one.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A sealed value: `x8v1.<base64url(nonce ‖ ciphertext ‖ tag)>` (AES-256-GCM). Values
/// written before the vault existed are carried by upcasters as
/// `x8v0.<base64url(plaintext)>` (see [`Sealed::legacy`]).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Sealed(pub String);

impl Sealed {
    /// Prefix of values sealed with a data key.
    pub const V1: &'static str = "x8v1.";
    /// Prefix of legacy, unencrypted values (from events older than the vault).
    pub const LEGACY: &'static str = "x8v0.";

    /// The purpose a field of an aggregate is sealed for: `<aggregate type>:<id>:<field>`,
    /// e.g. `tenant:<uuid>:name`. The purpose is bound into the ciphertext (associated
    /// data), so a sealed value cannot be passed off as another field or another stream's.
    pub fn purpose(aggregate_type: &str, id: impl fmt::Display, field: &str) -> String {
        format!("{aggregate_type}:{id}:{field}")
    }

    /// Wraps a plaintext found in an old event, marked as such.
    pub fn legacy(plaintext: &str) -> Self {
        use base64::Engine as _;
        let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(plaintext);
        Self(format!("{}{encoded}", Self::LEGACY))
    }

    /// The sealed text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Sealed {
    /// Shows the format only: a sealed value is opaque even in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let version = self.0.split('.').next().unwrap_or("");
        write!(f, "Sealed({version}..)")
    }
}
