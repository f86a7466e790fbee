//! Typed identifiers. Each wraps a UUID and serialises as the bare UUID string.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new, time-ordered id (UUID v7).
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self(Uuid::nil())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }
    };
}

uuid_id!(
    /// A business (tenant): the owner of companies, channels and its customers' data.
    TenantId
);
uuid_id!(
    /// A platform user: a business owner (CLIENT), platform staff (MANAGER) or an ADMIN.
    UserId
);

/// Namespace of the name-based user ids (UUID v5 of the normalised e-mail).
const USER_EMAIL_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2a4e_8d0b_4f7e_9a53_1b2c_3d4e_5f60);

impl UserId {
    /// The user id that belongs to an e-mail address: UUID v5 of the normalised address.
    ///
    /// Deriving the stream id from the address makes "one account per e-mail" the event
    /// store's own stream uniqueness: two concurrent registrations of one address race for
    /// sequence 1 of the same stream, and exactly one wins.
    pub fn for_email(email: &crate::Email) -> Self {
        Self(Uuid::new_v5(
            &USER_EMAIL_NAMESPACE,
            email.as_str().as_bytes(),
        ))
    }
}
