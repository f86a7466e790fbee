//! Platform users: business owners (CLIENT), platform staff (MANAGER) and ADMINs.
//!
//! A user's stream id is [`UserId::for_email`](crate::UserId::for_email), so the rule "an
//! e-mail address belongs to one account, also under concurrent registration" is enforced
//! by the event store's stream uniqueness: the second registration finds the stream taken.

use crate::{Email, Sealed, TenantId, UserId};
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A user's role (DOMAIN.md "People and roles").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    /// A business owner; sees only its own tenant.
    #[default]
    Client,
    /// Platform staff; sees the businesses assigned to it.
    Manager,
    /// Platform operator; sees everything.
    Admin,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Client => "CLIENT",
            Role::Manager => "MANAGER",
            Role::Admin => "ADMIN",
        })
    }
}

/// A PHC-format password hash (argon2id), made by the command layer. Never the password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct PasswordHash(pub String);

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(..)")
    }
}

/// What can be asked of a user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum UserCommand {
    /// Create the account. `user_id` must be `UserId::for_email(&email)`.
    RegisterUser {
        /// The account id.
        user_id: UserId,
        /// Login address, to check the id against; never stored.
        email: Email,
        /// The same address sealed (the CLIENT's tenant key, or the platform's for staff):
        /// what the event stores.
        sealed_email: Sealed,
        /// Display name, sealed (purpose `user:<id>:name`, same scope as the address).
        name: Sealed,
        /// Role.
        role: Role,
        /// The argon2id [`PasswordHash`], sealed (purpose `user:<id>:password_hash`), so an
        /// erased account's hash cannot be attacked offline.
        password_hash: Sealed,
        /// For a CLIENT, the business it owns.
        tenant_id: Option<TenantId>,
    },
    /// Close the account for good: its business was erased (DOMAIN.md "Hard delete"). It
    /// can no longer log in; the address may register again as a new account. Closing a
    /// closed account changes nothing.
    CloseAccount {
        /// When (UTC).
        at: chrono::DateTime<chrono::Utc>,
    },
}

/// What happened to a user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum UserEvent {
    /// The account was created. Version 2.0 seals `email`, 3.0 `name` and
    /// `password_hash` (see [`crate::upcasters`]).
    UserRegistered {
        /// The account id.
        user_id: UserId,
        /// Login address, sealed.
        email: Sealed,
        /// Display name, sealed (purpose `user:<id>:name`).
        name: Sealed,
        /// Role.
        role: Role,
        /// The argon2id hash of the password, sealed (purpose `user:<id>:password_hash`).
        password_hash: Sealed,
        /// For a CLIENT, the business it owns.
        tenant_id: Option<TenantId>,
    },
    /// The account was closed for good (its business was erased).
    UserClosed {
        /// When (UTC).
        at: chrono::DateTime<chrono::Utc>,
    },
}

impl DomainEvent for UserEvent {
    fn event_type(&self) -> String {
        match self {
            Self::UserRegistered { .. } => "UserRegistered".into(),
            Self::UserClosed { .. } => "UserClosed".into(),
        }
    }
    fn event_version(&self) -> String {
        match self {
            Self::UserRegistered { .. } => "3.0".into(),
            Self::UserClosed { .. } => "1.0".into(),
        }
    }
}

/// A refused user command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    /// The address already has an account.
    #[error("an account with e-mail {email} already exists")]
    EmailTaken {
        /// The address.
        email: Email,
    },
    /// `user_id` is not the id derived from the address.
    #[error("user id does not belong to e-mail {email}")]
    IdMismatch {
        /// The address.
        email: Email,
    },
    /// A CLIENT needs its tenant; other roles have none.
    #[error("a CLIENT must own exactly one business, other roles none")]
    TenantRoleMismatch,
}

/// A user account.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct User {
    registered: bool,
    id: UserId,
    email: Option<Sealed>,
    name: Sealed,
    role: Role,
    password_hash: Sealed,
    tenant_id: Option<TenantId>,
    #[serde(default)]
    closed: bool,
}

impl User {
    /// Whether the account exists (and is not closed).
    pub fn is_registered(&self) -> bool {
        self.registered && !self.closed
    }
    /// Whether the account was closed for good (its business was erased).
    pub fn is_closed(&self) -> bool {
        self.closed
    }
    /// The account id.
    pub fn id(&self) -> UserId {
        self.id
    }
    /// The role.
    pub fn role(&self) -> Role {
        self.role
    }
    /// The sealed password hash, to open and verify a login against.
    pub fn password_hash(&self) -> &Sealed {
        &self.password_hash
    }
    /// For a CLIENT, its business.
    pub fn tenant_id(&self) -> Option<TenantId> {
        self.tenant_id
    }
    /// Display name, sealed.
    pub fn name(&self) -> &Sealed {
        &self.name
    }

    /// Decides a command. Pure.
    ///
    /// # Errors
    /// A [`UserError`] naming the broken rule.
    pub fn decide(&self, command: UserCommand) -> Result<Vec<UserEvent>, UserError> {
        match command {
            UserCommand::RegisterUser {
                user_id,
                email,
                sealed_email,
                name,
                role,
                password_hash,
                tenant_id,
            } => {
                if self.is_registered() {
                    return Err(UserError::EmailTaken { email });
                }
                if user_id != UserId::for_email(&email) {
                    return Err(UserError::IdMismatch { email });
                }
                if (role == Role::Client) != tenant_id.is_some() {
                    return Err(UserError::TenantRoleMismatch);
                }
                Ok(vec![UserEvent::UserRegistered {
                    user_id,
                    email: sealed_email,
                    name,
                    role,
                    password_hash,
                    tenant_id,
                }])
            }
            UserCommand::CloseAccount { at } => Ok(if self.is_registered() {
                vec![UserEvent::UserClosed { at }]
            } else {
                vec![]
            }),
        }
    }
}

impl Aggregate for User {
    const TYPE: &'static str = "user";
    type Command = UserCommand;
    type Event = UserEvent;
    type Error = UserError;
    type Services = ();

    crate::handle_by_decide!();

    fn apply(&mut self, event: Self::Event) {
        match event {
            UserEvent::UserRegistered {
                user_id,
                email,
                name,
                role,
                password_hash,
                tenant_id,
            } => {
                *self = Self {
                    registered: true,
                    id: user_id,
                    email: Some(email),
                    name,
                    role,
                    password_hash,
                    tenant_id,
                    closed: false,
                }
            }
            UserEvent::UserClosed { .. } => {
                *self = Self {
                    registered: true,
                    closed: true,
                    id: self.id,
                    ..Self::default()
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;
    use uuid::Uuid;

    fn email() -> Email {
        Email::parse("ana@x8.test").unwrap()
    }
    fn sealed() -> Sealed {
        Sealed("x8v1.sealed-ana".into())
    }
    fn register(role: Role, tenant_id: Option<TenantId>) -> UserCommand {
        UserCommand::RegisterUser {
            user_id: UserId::for_email(&email()),
            email: email(),
            sealed_email: sealed(),
            name: Sealed("x8v1.sealed-name".into()),
            role,
            password_hash: Sealed("x8v1.sealed-hash".into()),
            tenant_id,
        }
    }
    fn registered() -> UserEvent {
        UserEvent::UserRegistered {
            user_id: UserId::for_email(&email()),
            email: sealed(),
            name: Sealed("x8v1.sealed-name".into()),
            role: Role::Manager,
            password_hash: Sealed("x8v1.sealed-hash".into()),
            tenant_id: None,
        }
    }

    #[test]
    fn a_manager_registers() {
        TestFramework::<User>::with(())
            .given_no_previous_events()
            .when(register(Role::Manager, None))
            .then_expect_events(vec![registered()]);
    }

    #[test]
    fn a_taken_email_is_refused() {
        TestFramework::<User>::with(())
            .given(vec![registered()])
            .when(register(Role::Admin, None))
            .then_expect_error(UserError::EmailTaken { email: email() });
    }

    #[test]
    fn a_client_without_a_business_is_refused() {
        TestFramework::<User>::with(())
            .given_no_previous_events()
            .when(register(Role::Client, None))
            .then_expect_error(UserError::TenantRoleMismatch);
    }

    #[test]
    fn a_manager_with_a_business_is_refused() {
        TestFramework::<User>::with(())
            .given_no_previous_events()
            .when(register(Role::Manager, Some(TenantId(Uuid::from_u128(1)))))
            .then_expect_error(UserError::TenantRoleMismatch);
    }

    #[test]
    fn the_user_id_must_be_derived_from_the_email() {
        let mut command = register(Role::Manager, None);
        let UserCommand::RegisterUser { user_id, .. } = &mut command else {
            panic!("a registration");
        };
        *user_id = UserId(Uuid::from_u128(7));
        TestFramework::<User>::with(())
            .given_no_previous_events()
            .when(command)
            .then_expect_error(UserError::IdMismatch { email: email() });
    }

    #[test]
    fn a_closed_account_is_gone_and_its_address_may_register_again() {
        let at = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
        let closed = UserEvent::UserClosed { at };
        TestFramework::<User>::with(())
            .given(vec![registered()])
            .when(UserCommand::CloseAccount { at })
            .then_expect_events(vec![closed.clone()]);
        TestFramework::<User>::with(())
            .given(vec![registered(), closed.clone()])
            .when(UserCommand::CloseAccount { at })
            .then_expect_events(vec![]);
        TestFramework::<User>::with(())
            .given(vec![registered(), closed])
            .when(register(Role::Manager, None))
            .then_expect_events(vec![registered()]);
    }
}
