//! The credentials vault ("SystemData", DOMAIN.md "Channel connections"): envelope
//! encryption of every personal or secret field before it enters an event.
//!
//! - Each tenant has its own AES-256 **data key**, made on first use and stored in
//!   `data_keys` **wrapped** (AES-256-GCM) by the **master key** from `X8_MASTER_KEY`
//!   (32 random bytes, base64). Staff accounts use the platform's own scope
//!   ([`PLATFORM_SCOPE`]).
//! - A value is sealed with AES-256-GCM under the data key, a random 96-bit nonce, and
//!   associated data binding it to its scope and purpose (so a sealed token copied into
//!   another tenant's or another field's event does not open): [`Sealed`]
//!   `x8v1.<base64url(nonce ‖ ciphertext ‖ tag)>`.
//! - Erasing a tenant destroys its data key ([`Vault::destroy_key`]): every value sealed
//!   for it becomes unreadable for good (crypto-shredding), and sealing for it fails
//!   instead of making a new key.
//!
//! The keys live outside the event log on purpose: the log is append-only, a key must be
//! destroyable. Plaintext and keys are zeroised when dropped.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use sqlx::PgPool;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use uuid::Uuid;
use x8_domain::Sealed;
use zeroize::Zeroizing;

/// The scope of platform data that belongs to no tenant (staff accounts).
pub const PLATFORM_SCOPE: Uuid = Uuid::nil();

const NONCE_BYTES: usize = 12;

/// Why the vault could not seal or open.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// `X8_MASTER_KEY` is not 32 bytes of standard base64.
    #[error("X8_MASTER_KEY must be 32 random bytes in base64 (openssl rand -base64 32)")]
    InvalidMasterKey,
    /// The scope's data key was destroyed (the tenant was erased).
    #[error("the data key of {0} was destroyed")]
    KeyDestroyed(Uuid),
    /// The value is not a sealed value, was sealed for another scope or purpose, or was
    /// tampered with; or a wrapped key does not open with this master key.
    #[error("sealed value does not open: {0}")]
    Corrupt(&'static str),
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl VaultError {
    /// As a command's error: `destroyed` (the operation's own "business erased" refusal)
    /// when the key is gone, an infrastructure failure otherwise.
    pub fn refusal<E: std::error::Error>(self, destroyed: E) -> crate::CommandError<E> {
        match self {
            Self::KeyDestroyed(_) => crate::CommandError::Rejected(destroyed),
            other => crate::CommandError::Infrastructure(other.to_string()),
        }
    }
}

/// The master key: wraps and unwraps the data keys. Never logged.
#[derive(Clone)]
pub struct MasterKey(Arc<Aes256Gcm>);

impl MasterKey {
    /// Parses `X8_MASTER_KEY`: 32 bytes, standard base64.
    ///
    /// # Errors
    /// [`VaultError::InvalidMasterKey`].
    pub fn from_base64(encoded: &str) -> Result<Self, VaultError> {
        let bytes = Zeroizing::new(
            STANDARD
                .decode(encoded.trim())
                .map_err(|_| VaultError::InvalidMasterKey)?,
        );
        if bytes.len() != 32 {
            return Err(VaultError::InvalidMasterKey);
        }
        let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| VaultError::InvalidMasterKey)?;
        Ok(Self(Arc::new(cipher)))
    }

    /// A fresh random key, base64: what `X8_MASTER_KEY` should hold (tests use it too).
    pub fn generate_base64() -> String {
        STANDARD.encode(Aes256Gcm::generate_key(OsRng))
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

/// Seals and opens values with per-tenant data keys. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Vault {
    pool: PgPool,
    master: MasterKey,
}

impl Vault {
    /// A vault over the `data_keys` table of `pool`.
    pub fn new(pool: PgPool, master: MasterKey) -> Self {
        Self { pool, master }
    }

    /// Seals `plaintext` for `scope` (a tenant id, or [`PLATFORM_SCOPE`]) and `purpose`
    /// (e.g. `owner_email`), making the scope's data key on first use. To seal several
    /// values at once, take the [`ScopeKey`] once instead.
    ///
    /// # Errors
    /// [`VaultError::KeyDestroyed`] for an erased tenant; [`VaultError::Database`].
    pub async fn seal(
        &self,
        scope: Uuid,
        purpose: &str,
        plaintext: &[u8],
    ) -> Result<Sealed, VaultError> {
        self.scope_key(scope).await?.seal(purpose, plaintext)
    }

    /// `scope`'s data key (made on first use), for sealing several values and computing
    /// blind indexes with one key lookup.
    ///
    /// # Errors
    /// [`VaultError::KeyDestroyed`] for an erased tenant; [`VaultError::Database`].
    pub async fn scope_key(&self, scope: Uuid) -> Result<ScopeKey, VaultError> {
        Ok(ScopeKey {
            scope,
            key: self.raw_data_key(scope, true).await?,
        })
    }

    /// The data keys of those `scopes` that have one (not destroyed), with one query: for
    /// views that list several businesses. Never makes a key.
    ///
    /// # Errors
    /// [`VaultError::Database`]; [`VaultError::Corrupt`] for a key the master key does not
    /// open.
    pub async fn existing_scope_keys(
        &self,
        scopes: &[Uuid],
    ) -> Result<HashMap<Uuid, ScopeKey>, VaultError> {
        // language=PostgreSQL
        let rows: Vec<(Uuid, Vec<u8>)> = sqlx::query_as(
            "select scope, wrapped_key from data_keys
             where scope = any($1) and wrapped_key is not null",
        )
        .bind(scopes)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(scope, wrapped)| {
                let key = self.unwrap(scope, &wrapped)?;
                Ok((scope, ScopeKey { scope, key }))
            })
            .collect()
    }

    /// Opens a value sealed for `scope` and `purpose`. A legacy value (from an event older
    /// than the vault) opens to its plaintext.
    ///
    /// # Errors
    /// [`VaultError::KeyDestroyed`] once the tenant is erased; [`VaultError::Corrupt`] for
    /// a value of another scope or purpose, or tampered with.
    pub async fn open(
        &self,
        scope: Uuid,
        purpose: &str,
        sealed: &Sealed,
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        if let Some(legacy) = open_legacy(sealed) {
            return legacy;
        }
        // Opening never makes a key: a scope without one has nothing sealed.
        let key = ScopeKey {
            scope,
            key: self.raw_data_key(scope, false).await?,
        };
        key.open(purpose, sealed)
    }

    /// A blind index of `value` for `scope` and `purpose` (see [`ScopeKey::blind_index`]).
    ///
    /// # Errors
    /// [`VaultError::KeyDestroyed`] for an erased tenant; [`VaultError::Database`].
    pub async fn blind_index(
        &self,
        scope: Uuid,
        purpose: &str,
        value: &[u8],
    ) -> Result<Uuid, VaultError> {
        self.scope_key(scope).await?.blind_index(purpose, value)
    }

    /// Destroys `scope`'s data key for good, keeping a tombstone (crypto-shredding).
    ///
    /// # Errors
    /// [`VaultError::Database`].
    pub async fn destroy_key(&self, scope: Uuid) -> Result<(), VaultError> {
        // language=PostgreSQL
        sqlx::query(
            "insert into data_keys (scope, wrapped_key, destroyed_at) values ($1, null, now())
             on conflict (scope) do update set wrapped_key = null,
                 destroyed_at = coalesce(data_keys.destroyed_at, now())",
        )
        .bind(scope)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The unwrapped data key of `scope`; made (and stored wrapped) when `create` and
    /// there is none. Two concurrent first uses agree on one key (`on conflict`). An
    /// existing key costs one query; a new one is generated only when none is stored.
    async fn raw_data_key(
        &self,
        scope: Uuid,
        create: bool,
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let mut row = self.stored_key(scope).await?;
        if row.is_none() && create {
            let fresh = Zeroizing::new(Aes256Gcm::generate_key(OsRng).to_vec());
            let wrapped = self.wrap(scope, &fresh)?;
            // language=PostgreSQL
            sqlx::query(
                "insert into data_keys (scope, wrapped_key) values ($1, $2)
                 on conflict (scope) do nothing",
            )
            .bind(scope)
            .bind(wrapped)
            .execute(&self.pool)
            .await?;
            row = self.stored_key(scope).await?;
        }
        let wrapped = row.flatten().ok_or(VaultError::KeyDestroyed(scope))?;
        self.unwrap(scope, &wrapped)
    }

    /// The stored row of `scope`: `None` without one, `Some(None)` when destroyed.
    async fn stored_key(&self, scope: Uuid) -> Result<Option<Option<Vec<u8>>>, VaultError> {
        // language=PostgreSQL
        Ok(
            sqlx::query_scalar("select wrapped_key from data_keys where scope = $1")
                .bind(scope)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    fn wrap(&self, scope: Uuid, key: &[u8]) -> Result<Vec<u8>, VaultError> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let aad = associated_data(scope, "data-key");
        let ciphertext = self
            .master
            .0
            .encrypt(
                &nonce,
                Payload {
                    msg: key,
                    aad: &aad,
                },
            )
            .map_err(|_| VaultError::Corrupt("wrapping failed"))?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&ciphertext);
        Ok(bytes)
    }

    fn unwrap(&self, scope: Uuid, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let (nonce, ciphertext) = split_nonce(wrapped)?;
        let aad = associated_data(scope, "data-key");
        self.master
            .0
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| VaultError::Corrupt("wrapped key does not open with this master key"))
    }
}

/// Whether `scope`'s data key was destroyed (its tenant erased): every value sealed for it
/// is unreadable for good. Needs no master key (tools that only redact use it).
///
/// # Errors
/// [`VaultError::Database`].
pub async fn is_key_destroyed(pool: &PgPool, scope: Uuid) -> Result<bool, VaultError> {
    // language=PostgreSQL
    let destroyed: Option<bool> =
        sqlx::query_scalar("select destroyed_at is not null from data_keys where scope = $1")
            .bind(scope)
            .fetch_optional(pool)
            .await?;
    Ok(destroyed.unwrap_or(false))
}

/// One scope's data key in memory (zeroised when dropped): seals values and computes
/// blind indexes without another key lookup. Take it for one request; never keep it.
pub struct ScopeKey {
    scope: Uuid,
    key: Zeroizing<Vec<u8>>,
}

impl ScopeKey {
    /// Seals `plaintext` for `purpose` (AES-256-GCM, random nonce, scope and purpose as
    /// associated data).
    ///
    /// # Errors
    /// [`VaultError::Corrupt`] if the key is not a 256-bit key.
    pub fn seal(&self, purpose: &str, plaintext: &[u8]) -> Result<Sealed, VaultError> {
        let cipher = Aes256Gcm::new_from_slice(&self.key)
            .map_err(|_| VaultError::Corrupt("data key length"))?;
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let aad = associated_data(self.scope, purpose);
        let ciphertext = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| VaultError::Corrupt("encryption failed"))?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&ciphertext);
        Ok(Sealed(format!(
            "{}{}",
            Sealed::V1,
            URL_SAFE_NO_PAD.encode(bytes)
        )))
    }

    /// Opens a value sealed for this scope and `purpose` (a legacy value opens to its
    /// plaintext).
    ///
    /// # Errors
    /// [`VaultError::Corrupt`] for a value of another scope or purpose, or tampered with.
    pub fn open(&self, purpose: &str, sealed: &Sealed) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        if let Some(legacy) = open_legacy(sealed) {
            return legacy;
        }
        let encoded = sealed
            .as_str()
            .strip_prefix(Sealed::V1)
            .ok_or(VaultError::Corrupt("unknown format"))?;
        let bytes = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| VaultError::Corrupt("bad base64"))?;
        let (nonce, ciphertext) = split_nonce(&bytes)?;
        let cipher = Aes256Gcm::new_from_slice(&self.key)
            .map_err(|_| VaultError::Corrupt("data key length"))?;
        let aad = associated_data(self.scope, purpose);
        cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| VaultError::Corrupt("authentication failed"))
    }

    /// A **blind index** of `value` for `purpose`: a stable id computed with HMAC-SHA256
    /// under the data key (first 16 bytes, as a UUID v8). The same value always gives the
    /// same id, so it can key a stream (a conversation per contact) without the value
    /// appearing anywhere; once the key is destroyed nobody can link an id back to a
    /// value, not even by trying every phone number.
    ///
    /// # Errors
    /// [`VaultError::Corrupt`] if the key cannot key an HMAC (never for a data key).
    pub fn blind_index(&self, purpose: &str, value: &[u8]) -> Result<Uuid, VaultError> {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.key)
            .map_err(|_| VaultError::Corrupt("data key length"))?;
        mac.update(b"blind-index\0");
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(value);
        let digest = mac.finalize().into_bytes();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Ok(uuid::Builder::from_custom_bytes(bytes).into_uuid())
    }
}

/// A legacy value's plaintext (from an event older than the vault), `None` for a sealed one.
fn open_legacy(sealed: &Sealed) -> Option<Result<Zeroizing<Vec<u8>>, VaultError>> {
    let legacy = sealed.as_str().strip_prefix(Sealed::LEGACY)?;
    Some(
        URL_SAFE_NO_PAD
            .decode(legacy)
            .map(Zeroizing::new)
            .map_err(|_| VaultError::Corrupt("bad legacy value")),
    )
}

/// Splits `nonce ‖ ciphertext`.
fn split_nonce(bytes: &[u8]) -> Result<(Nonce<aes_gcm::aead::consts::U12>, &[u8]), VaultError> {
    if bytes.len() < NONCE_BYTES {
        return Err(VaultError::Corrupt("too short"));
    }
    let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
    let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| VaultError::Corrupt("nonce"))?;
    Ok((Nonce::from(nonce), ciphertext))
}

/// Associated data: the scope's 16 bytes, then the purpose.
fn associated_data(scope: Uuid, purpose: &str) -> Vec<u8> {
    let mut aad = scope.as_bytes().to_vec();
    aad.extend_from_slice(purpose.as_bytes());
    aad
}
