//! Accounts: registering businesses (owner + tenant), managers and admins, and checking
//! a login.
//!
//! Registering a business is two commands: `RegisterUser` on the owner's stream (which
//! enforces one account per e-mail) and then `RegisterTenant`. Both get command ids derived
//! from the request's, so a retried request (same `Idempotency-Key`) resumes where the
//! first stopped and answers with the first one's ids. A registration cut off between the
//! two commands (the account exists, the business does not) is resumed when the same owner
//! registers again with the same password.

use crate::bus::NamedCommand;
use crate::context::CommandContext;
use crate::error::CommandError;
use crate::passwords::{self, PasswordError};
use crate::vault::{ScopeKey, VaultError, PLATFORM_SCOPE};
use crate::Commands;
use cqrs_es::Aggregate;
use uuid::Uuid;
use x8_domain::email::InvalidEmail;
use x8_domain::tenant::{Tenant, TenantCommand, TenantError, TenantStatus};
use x8_domain::user::{PasswordHash, Role, User, UserCommand, UserError};
use x8_domain::{Email, Sealed, TenantId, UserId};

/// Why an account could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// Malformed address.
    #[error(transparent)]
    InvalidEmail(#[from] InvalidEmail),
    /// Unusable password.
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// Refused by the user aggregate (e.g. the address is taken).
    #[error(transparent)]
    User(#[from] UserError),
    /// Refused by the tenant aggregate (e.g. a blank name).
    #[error(transparent)]
    Tenant(#[from] TenantError),
}

/// A registered business.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessRegistration {
    /// The new business.
    pub tenant_id: TenantId,
    /// Its owner (CLIENT).
    pub owner_user_id: UserId,
    /// Global position of the registration, for read-your-writes.
    pub position: i64,
}

impl NamedCommand for UserCommand {
    fn command_name(&self) -> &'static str {
        match self {
            UserCommand::RegisterUser { .. } => "RegisterUser",
            UserCommand::CloseAccount { .. } => "CloseAccount",
        }
    }
    fn tenant_id(&self, _aggregate_id: &str) -> Option<Uuid> {
        match self {
            UserCommand::RegisterUser { tenant_id, .. } => tenant_id.map(|t| t.0),
            UserCommand::CloseAccount { .. } => None,
        }
    }
}

/// Registers a business and its owner: the 7-day trial starts now.
///
/// # Errors
/// [`AccountError`] inside [`CommandError::Rejected`] for bad input or a taken address;
/// the other [`CommandError`] variants as [`crate::CommandBus::execute`].
pub async fn register_business(
    commands: &Commands,
    name: &str,
    owner_email: &str,
    owner_password: String,
    ctx: &CommandContext,
) -> Result<BusinessRegistration, CommandError<AccountError>> {
    let email = Email::parse(owner_email).map_err(|e| CommandError::Rejected(e.into()))?;
    // Checked before the owner's account exists, so a bad name leaves no account behind.
    let name = x8_domain::tenant::parse_name(name).map_err(|e| CommandError::Rejected(e.into()))?;
    let name = name.as_str();
    let ctx = ctx
        .clone()
        .fingerprinted(&["RegisterBusiness", name, email.as_str()]);
    let user_id = UserId::for_email(&email);
    let password_check = owner_password.clone();
    let password_hash = passwords::hash(owner_password)
        .await
        .map_err(|e| CommandError::Rejected(e.into()))?;

    let new_tenant = TenantId::new();
    let sealed = seal_account(
        commands,
        new_tenant.0,
        user_id,
        &email,
        name,
        &password_hash,
    )
    .await?;
    let registered = commands
        .users
        .execute(
            &user_id.to_string(),
            UserCommand::RegisterUser {
                user_id,
                email: email.clone(),
                sealed_email: sealed.email,
                name: sealed.name,
                role: Role::Client,
                password_hash: sealed.password_hash,
                tenant_id: Some(new_tenant),
            },
            &ctx.step("user"),
        )
        .await;
    // On a replay the stream holds the first request's tenant id, not the one made above.
    let owner = commands
        .users
        .load(&user_id.to_string())
        .await
        .map_err(|e| e.map_rejected(AccountError::User))?;
    if let Err(err) = registered {
        let resumable = matches!(err, CommandError::Rejected(UserError::EmailTaken { .. }))
            && is_interrupted_registration(commands, &owner, name, password_check).await?;
        if !resumable {
            return Err(err.map_rejected(AccountError::User));
        }
    }
    let tenant_id = owner
        .tenant_id()
        .ok_or(CommandError::Rejected(AccountError::User(
            UserError::TenantRoleMismatch,
        )))?;

    let key = scope_key(commands, tenant_id.0).await?;
    let outcome = commands
        .tenants
        .execute(
            &tenant_id.to_string(),
            TenantCommand::RegisterTenant {
                tenant_id,
                name: seal(&key, &tenant_name_purpose(tenant_id.0), name)?,
                owner_user_id: user_id,
                owner_email: seal(&key, EMAIL_PURPOSE, email.as_str())?,
                registered_at: commands.clock.now(),
            },
            &ctx.step("tenant"),
        )
        .await
        .map_err(|e| e.map_rejected(AccountError::Tenant))?;
    Ok(BusinessRegistration {
        tenant_id,
        owner_user_id: user_id,
        position: outcome.position(),
    })
}

/// Whether `owner` is a CLIENT whose business was never registered (its registration was
/// cut off between the two commands) and this request is that registration again: the same
/// business `name` and the owner's `password`. Then it resumes instead of hitting
/// `email_taken`; a different business for the same address is still refused.
async fn is_interrupted_registration(
    commands: &Commands,
    owner: &User,
    name: &str,
    password: String,
) -> Result<bool, CommandError<AccountError>> {
    let Some(tenant_id) = owner.tenant_id() else {
        return Ok(false);
    };
    let purpose = user_purpose(owner.id(), "name");
    let current = commands
        .vault
        .open(tenant_id.0, &purpose, owner.name())
        .await
        .map_err(|e| CommandError::Infrastructure(e.to_string()))?;
    if *current != *name.as_bytes() {
        return Ok(false);
    }
    let tenant = commands
        .tenants
        .load(&tenant_id.to_string())
        .await
        .map_err(|e| e.map_rejected(AccountError::Tenant))?;
    if tenant.status() != TenantStatus::Unregistered {
        return Ok(false);
    }
    verify_password(commands, owner, password).await
}

/// Registers platform staff: a MANAGER or an ADMIN. Returns the user id and the position.
///
/// # Errors
/// As [`register_business`].
pub async fn register_staff(
    commands: &Commands,
    email: &str,
    password: String,
    name: &str,
    role: Role,
    ctx: &CommandContext,
) -> Result<(UserId, i64), CommandError<AccountError>> {
    let email = Email::parse(email).map_err(|e| CommandError::Rejected(e.into()))?;
    let name = name.trim();
    let ctx =
        ctx.clone()
            .fingerprinted(&["RegisterStaff", &role.to_string(), name, email.as_str()]);
    let user_id = UserId::for_email(&email);
    let password_hash = passwords::hash(password)
        .await
        .map_err(|e| CommandError::Rejected(e.into()))?;
    let sealed = seal_account(
        commands,
        PLATFORM_SCOPE,
        user_id,
        &email,
        name,
        &password_hash,
    )
    .await?;
    let outcome = commands
        .users
        .execute(
            &user_id.to_string(),
            UserCommand::RegisterUser {
                user_id,
                sealed_email: sealed.email,
                email,
                name: sealed.name,
                role,
                password_hash: sealed.password_hash,
                tenant_id: None,
            },
            &ctx,
        )
        .await
        .map_err(|e| e.map_rejected(AccountError::User))?;
    Ok((user_id, outcome.position()))
}

/// An account's personal fields, sealed for its scope.
struct SealedAccount {
    email: Sealed,
    name: Sealed,
    password_hash: Sealed,
}

/// Seals an account's address, name and password hash for `scope` (its business, or the
/// platform for staff) with one key lookup.
async fn seal_account(
    commands: &Commands,
    scope: Uuid,
    user_id: UserId,
    email: &Email,
    name: &str,
    password_hash: &PasswordHash,
) -> Result<SealedAccount, CommandError<AccountError>> {
    let key = scope_key(commands, scope).await?;
    Ok(SealedAccount {
        email: seal(&key, EMAIL_PURPOSE, email.as_str())?,
        name: seal(&key, &user_purpose(user_id, "name"), name)?,
        password_hash: seal(
            &key,
            &user_purpose(user_id, "password_hash"),
            &password_hash.0,
        )?,
    })
}

async fn scope_key(
    commands: &Commands,
    scope: Uuid,
) -> Result<ScopeKey, CommandError<AccountError>> {
    commands
        .vault
        .scope_key(scope)
        .await
        .map_err(|e| CommandError::Infrastructure(e.to_string()))
}

fn seal(
    key: &ScopeKey,
    purpose: &str,
    plaintext: &str,
) -> Result<Sealed, CommandError<AccountError>> {
    key.seal(purpose, plaintext.as_bytes())
        .map_err(|e| CommandError::Infrastructure(e.to_string()))
}

/// The vault purpose of sealed e-mail addresses (owner and staff accounts).
pub const EMAIL_PURPOSE: &str = "email";

/// The vault purpose of a user's sealed `field` (`name`, `password_hash`).
pub fn user_purpose(user_id: UserId, field: &str) -> String {
    Sealed::purpose(User::TYPE, user_id, field)
}

/// The vault purpose of a business's sealed name.
pub fn tenant_name_purpose(tenant_id: Uuid) -> String {
    Sealed::purpose(Tenant::TYPE, tenant_id, "name")
}

/// The vault scope of `user`'s sealed fields: its business, or the platform for staff.
pub fn user_scope(user: &User) -> Uuid {
    user.tenant_id().map_or(PLATFORM_SCOPE, |tenant| tenant.0)
}

/// Whether `password` is `user`'s: opens the sealed hash with the account's scope key and
/// verifies it (argon2id, on a blocking thread). An account whose business was erased has
/// no readable hash: `false`.
///
/// # Errors
/// [`CommandError::Infrastructure`] when the key cannot be read or the hash does not open.
pub async fn verify_password<E: std::error::Error>(
    commands: &Commands,
    user: &User,
    password: String,
) -> Result<bool, CommandError<E>> {
    let purpose = user_purpose(user.id(), "password_hash");
    let hash = match commands
        .vault
        .open(user_scope(user), &purpose, user.password_hash())
        .await
    {
        Ok(hash) => hash,
        Err(VaultError::KeyDestroyed(_)) => return Ok(false),
        Err(err) => return Err(CommandError::Infrastructure(err.to_string())),
    };
    let hash = PasswordHash(String::from_utf8_lossy(&hash).into_owned());
    Ok(passwords::verify(password, hash).await)
}

/// A well-formed argon2id hash of a random password, verified against when the account
/// does not exist so that a login takes as long for unknown addresses as for known ones.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Gyr+Vjqjt4ZPu0p4ePnuK/YfLv4IQ1MfA7X0XtzOxpk";

/// The account for `email` if `password` is right, else `None` (unknown address and wrong
/// password are indistinguishable).
///
/// # Errors
/// [`CommandError::Infrastructure`] when the account's stream cannot be read.
pub async fn authenticate(
    commands: &Commands,
    email: &str,
    password: String,
) -> Result<Option<User>, CommandError<UserError>> {
    let Ok(email) = Email::parse(email) else {
        passwords::verify(password, PasswordHash(DUMMY_HASH.into())).await;
        return Ok(None);
    };
    let user = commands
        .users
        .load(&UserId::for_email(&email).to_string())
        .await?;
    if !user.is_registered() {
        passwords::verify(password, PasswordHash(DUMMY_HASH.into())).await;
        return Ok(None);
    }
    let valid = verify_password(commands, &user, password).await?;
    Ok(valid.then_some(user))
}

#[cfg(test)]
mod tests {
    use super::DUMMY_HASH;

    #[test]
    fn the_dummy_hash_is_a_valid_argon2id_hash() {
        // An invalid one would make unknown-address logins fail fast (a timing oracle).
        assert!(argon2::password_hash::PasswordHash::new(DUMMY_HASH).is_ok());
    }
}
