//! The Meta app pool (DOMAIN.md "Channel connections"): pre-reviewed Meta apps that
//! admins register; connecting Instagram or Facebook assigns one free app to the
//! connection, removing the connection returns it.
//!
//! The pool is **one aggregate** (one stream, [`POOL_ID`]): "never one app to two
//! businesses" is then a decision on one state, and concurrent assignments take turns on
//! the stream's expected version. Assignments are rare (one per Meta connection), so one
//! stream is no bottleneck, and its snapshots keep loading it cheap.

use crate::TenantId;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// The pool's stream id (there is one pool).
pub const POOL_ID: &str = "meta-app-pool";

/// What can be asked of the pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MetaAppCommand {
    /// Add a pre-reviewed app (ADMIN).
    RegisterApp {
        /// Our id for the app.
        app_id: Uuid,
        /// Meta's app id (digits, as Meta shows it).
        meta_app_id: String,
        /// A name for admins.
        name: String,
    },
    /// Assign a free app to a new Instagram or Facebook connection. A connection that
    /// holds an app already keeps it.
    AssignApp {
        /// The connection.
        channel_id: Uuid,
        /// Its business.
        tenant_id: TenantId,
    },
    /// Return a connection's app to the pool; nothing when it holds none.
    ReleaseApp {
        /// The connection.
        channel_id: Uuid,
    },
}

impl MetaAppCommand {
    /// The command's name, recorded in event metadata and the idempotency record.
    pub fn name(&self) -> &'static str {
        match self {
            Self::RegisterApp { .. } => "RegisterMetaApp",
            Self::AssignApp { .. } => "AssignMetaApp",
            Self::ReleaseApp { .. } => "ReleaseMetaApp",
        }
    }
}

/// What happened in the pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MetaAppEvent {
    /// An app joined the pool, free.
    MetaAppRegistered {
        /// Our id.
        app_id: Uuid,
        /// Meta's id.
        meta_app_id: String,
        /// Its name.
        name: String,
    },
    /// An app went to a connection.
    MetaAppAssigned {
        /// The app.
        app_id: Uuid,
        /// The connection.
        channel_id: Uuid,
        /// Its business.
        tenant_id: TenantId,
    },
    /// A connection gave its app back: free again.
    MetaAppReleased {
        /// The app.
        app_id: Uuid,
        /// The connection it had.
        channel_id: Uuid,
    },
}

impl DomainEvent for MetaAppEvent {
    fn event_type(&self) -> String {
        match self {
            Self::MetaAppRegistered { .. } => "MetaAppRegistered",
            Self::MetaAppAssigned { .. } => "MetaAppAssigned",
            Self::MetaAppReleased { .. } => "MetaAppReleased",
        }
        .to_string()
    }
    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

/// A refused pool command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetaAppError {
    /// Every app is assigned.
    #[error("no free Meta app in the pool")]
    PoolEmpty,
    /// The Meta app id is registered already.
    #[error("Meta app {0} is in the pool already")]
    AlreadyRegistered(String),
    /// The Meta app id is not 1 to 32 digits, or the name not 1 to 200 characters.
    #[error("a Meta app needs a numeric id and a name")]
    Invalid,
}

/// One app of the pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaApp {
    /// Meta's id.
    pub meta_app_id: String,
    /// Its name.
    pub name: String,
    /// The connection holding it, if any.
    pub assigned_to: Option<Uuid>,
}

/// The pool.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetaAppPool {
    apps: BTreeMap<Uuid, MetaApp>,
    /// Apps in registration order, so the oldest free app goes first.
    order: Vec<Uuid>,
}

impl MetaAppPool {
    /// The app `channel_id` holds.
    pub fn app_of(&self, channel_id: Uuid) -> Option<(Uuid, &MetaApp)> {
        self.apps
            .iter()
            .find(|(_, app)| app.assigned_to == Some(channel_id))
            .map(|(id, app)| (*id, app))
    }

    /// Every app, in registration order.
    pub fn apps(&self) -> impl Iterator<Item = (Uuid, &MetaApp)> {
        self.order.iter().map(|id| (*id, &self.apps[id]))
    }

    /// Decides which events a command produces, or why it is refused. Pure.
    ///
    /// # Errors
    /// A [`MetaAppError`].
    pub fn decide(&self, command: MetaAppCommand) -> Result<Vec<MetaAppEvent>, MetaAppError> {
        match command {
            MetaAppCommand::RegisterApp {
                app_id,
                meta_app_id,
                name,
            } => {
                let meta_app_id = meta_app_id.trim().to_string();
                let name = name.trim().to_string();
                let digits = !meta_app_id.is_empty()
                    && meta_app_id.len() <= 32
                    && meta_app_id.bytes().all(|b| b.is_ascii_digit());
                if !digits || name.is_empty() || name.chars().count() > 200 {
                    return Err(MetaAppError::Invalid);
                }
                if self.apps.values().any(|app| app.meta_app_id == meta_app_id) {
                    return Err(MetaAppError::AlreadyRegistered(meta_app_id));
                }
                Ok(vec![MetaAppEvent::MetaAppRegistered {
                    app_id,
                    meta_app_id,
                    name,
                }])
            }
            MetaAppCommand::AssignApp {
                channel_id,
                tenant_id,
            } => {
                if self.app_of(channel_id).is_some() {
                    return Ok(vec![]);
                }
                let free = self
                    .order
                    .iter()
                    .find(|id| self.apps[*id].assigned_to.is_none())
                    .ok_or(MetaAppError::PoolEmpty)?;
                Ok(vec![MetaAppEvent::MetaAppAssigned {
                    app_id: *free,
                    channel_id,
                    tenant_id,
                }])
            }
            MetaAppCommand::ReleaseApp { channel_id } => Ok(self
                .app_of(channel_id)
                .map(|(app_id, _)| MetaAppEvent::MetaAppReleased { app_id, channel_id })
                .into_iter()
                .collect()),
        }
    }
}

impl Aggregate for MetaAppPool {
    const TYPE: &'static str = "meta_app_pool";
    type Command = MetaAppCommand;
    type Event = MetaAppEvent;
    type Error = MetaAppError;
    type Services = ();

    crate::handle_by_decide!();

    fn apply(&mut self, event: Self::Event) {
        match event {
            MetaAppEvent::MetaAppRegistered {
                app_id,
                meta_app_id,
                name,
            } => {
                self.order.push(app_id);
                self.apps.insert(
                    app_id,
                    MetaApp {
                        meta_app_id,
                        name,
                        assigned_to: None,
                    },
                );
            }
            MetaAppEvent::MetaAppAssigned {
                app_id, channel_id, ..
            } => {
                if let Some(app) = self.apps.get_mut(&app_id) {
                    app.assigned_to = Some(channel_id);
                }
            }
            MetaAppEvent::MetaAppReleased { app_id, .. } => {
                if let Some(app) = self.apps.get_mut(&app_id) {
                    app.assigned_to = None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    type PoolTest = TestFramework<MetaAppPool>;

    fn app(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }
    fn registered(n: u128) -> MetaAppEvent {
        MetaAppEvent::MetaAppRegistered {
            app_id: app(n),
            meta_app_id: format!("10{n}"),
            name: format!("app {n}"),
        }
    }
    fn assigned(n: u128, channel: u128) -> MetaAppEvent {
        MetaAppEvent::MetaAppAssigned {
            app_id: app(n),
            channel_id: Uuid::from_u128(channel),
            tenant_id: TenantId(Uuid::from_u128(500)),
        }
    }
    fn assign(channel: u128) -> MetaAppCommand {
        MetaAppCommand::AssignApp {
            channel_id: Uuid::from_u128(channel),
            tenant_id: TenantId(Uuid::from_u128(500)),
        }
    }

    #[test]
    fn the_oldest_free_app_is_assigned() {
        PoolTest::with(())
            .given(vec![registered(1), registered(2), assigned(1, 90)])
            .when(assign(91))
            .then_expect_events(vec![assigned(2, 91)]);
    }

    #[test]
    fn an_empty_pool_refuses() {
        PoolTest::with(())
            .given(vec![registered(1), assigned(1, 90)])
            .when(assign(91))
            .then_expect_error(MetaAppError::PoolEmpty);
    }

    #[test]
    fn a_connection_keeps_its_app() {
        PoolTest::with(())
            .given(vec![registered(1), registered(2), assigned(1, 90)])
            .when(assign(90))
            .then_expect_events(vec![]);
    }

    #[test]
    fn a_released_app_is_free_again() {
        PoolTest::with(())
            .given(vec![
                registered(1),
                assigned(1, 90),
                MetaAppEvent::MetaAppReleased {
                    app_id: app(1),
                    channel_id: Uuid::from_u128(90),
                },
            ])
            .when(assign(91))
            .then_expect_events(vec![assigned(1, 91)]);
    }

    #[test]
    fn releasing_without_an_app_changes_nothing() {
        PoolTest::with(())
            .given(vec![registered(1)])
            .when(MetaAppCommand::ReleaseApp {
                channel_id: Uuid::from_u128(90),
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn a_meta_app_is_registered_once() {
        PoolTest::with(())
            .given(vec![registered(1)])
            .when(MetaAppCommand::RegisterApp {
                app_id: app(2),
                meta_app_id: "101".into(),
                name: "again".into(),
            })
            .then_expect_error(MetaAppError::AlreadyRegistered("101".into()));
    }

    #[test]
    fn a_meta_app_id_is_digits() {
        PoolTest::with(())
            .given_no_previous_events()
            .when(MetaAppCommand::RegisterApp {
                app_id: app(2),
                meta_app_id: "abc".into(),
                name: "x".into(),
            })
            .then_expect_error(MetaAppError::Invalid);
    }
}
