//! Password hashing: argon2id with the argon2 crate's defaults (OWASP's recommended
//! m=19 MiB, t=2, p=1), run on the blocking pool because it is deliberately slow.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use x8_domain::user::PasswordHash as StoredHash;

/// Shortest accepted password, in characters (NIST SP 800-63B minimum).
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest accepted password, in bytes (bounds hashing work).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Why a password cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Shorter than [`MIN_PASSWORD_CHARS`] or longer than [`MAX_PASSWORD_BYTES`].
    #[error("a password must have at least 8 characters and at most 1024 bytes")]
    Length,
    /// Hashing failed (should not happen).
    #[error("password hashing failed")]
    Hashing,
}

/// Hashes `password` (argon2id, random salt) in PHC format.
///
/// # Errors
/// [`PasswordError::Length`] for a too short or too long password.
pub async fn hash(password: String) -> Result<StoredHash, PasswordError> {
    if password.chars().count() < MIN_PASSWORD_CHARS || password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::Length);
    }
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| StoredHash(h.to_string()))
            .map_err(|_| PasswordError::Hashing)
    })
    .await
    .map_err(|_| PasswordError::Hashing)?
}

/// Whether `password` matches `stored`. Constant-time in the hash comparison.
pub async fn verify(password: String, stored: StoredHash) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&stored.0)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}
