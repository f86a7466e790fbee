//! The channel connection aggregate: commands, events, errors, state and the pure `decide`.

use super::whatsapp::{
    reconnect_delay, SessionStatus, MAX_QR_ATTEMPTS, MAX_RECONNECT_ATTEMPTS,
    QR_ATTEMPTS_BEFORE_PAIRING,
};
use super::{ChannelStatus, Platform};
use crate::conversation::aggregate::DEFAULT_BATCH_WINDOW_SECS;
use crate::{TenantId, UserId};
use chrono::{DateTime, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What can be asked of a connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ChannelCommand {
    /// Create the connection, after its tenant reserved a slot for it.
    CreateChannel {
        /// The connection's id (also the stream id, and the slot's).
        channel_id: Uuid,
        /// The owning business.
        tenant_id: TenantId,
        /// The company it belongs to.
        company_id: Uuid,
        /// The platform.
        platform: Platform,
        /// The Meta app assigned from the pool (Instagram, Facebook).
        meta_app_id: Option<Uuid>,
    },
    /// Record a status reported by the provider or reached by the connect flow.
    ChangeStatus {
        /// The mapped status.
        status: ChannelStatus,
        /// The provider's own status word (e.g. WAHA `SCAN_QR_CODE`), kept as is.
        raw_status: Option<String>,
        /// Why, when the provider says (e.g. a disconnect reason).
        reason: Option<String>,
    },
    /// Record a failure that needs the business: status `ERROR`, error count + 1.
    RecordFailure {
        /// What went wrong, for the business.
        error: String,
        /// The provider's own status word, if any.
        raw_status: Option<String>,
    },
    /// Record a WhatsApp session status reported by WAHA (see [`super::whatsapp`]).
    RecordSessionStatus {
        /// WAHA's status word, e.g. `SCAN_QR_CODE`.
        raw_status: String,
        /// When it was reported (UTC).
        at: DateTime<Utc>,
        /// Why, when WAHA says.
        reason: Option<String>,
        /// Random 0–1000 from the caller, spreading reconnect delays.
        jitter_permille: u16,
    },
    /// Store the connection's credentials, sealed by the vault (never plaintext).
    StoreCredentials {
        /// The sealed credentials (see `x8_commands::vault`).
        sealed: String,
    },
    /// Record that someone read the credentials (for auditors).
    RecordCredentialsViewed {
        /// Who read them.
        viewer: UserId,
    },
    /// Set how long the connection waits for more inbound messages before a batch is
    /// handed to the assistant (DOMAIN.md "Conversations and messages": buffering).
    ConfigureBatchWindow {
        /// Seconds, [`MIN_BATCH_WINDOW_SECS`]..=[`MAX_BATCH_WINDOW_SECS`].
        secs: u32,
    },
    /// Remove the connection. Its slot and Meta app are given back by the command layer.
    RemoveChannel,
    /// Revoke the stored credentials (its business is being erased, DOMAIN.md "Hard
    /// delete"): the connection has none from now on. Also on a removed connection;
    /// revoking none changes nothing.
    RevokeCredentials,
}

/// The shortest buffering window, seconds.
pub const MIN_BATCH_WINDOW_SECS: u32 = 1;
/// The longest buffering window, seconds (a customer waits no longer than this for the
/// assistant to start).
pub const MAX_BATCH_WINDOW_SECS: u32 = 300;

impl ChannelCommand {
    /// The command's name, recorded in event metadata and the idempotency record.
    pub fn name(&self) -> &'static str {
        match self {
            Self::CreateChannel { .. } => "CreateChannel",
            Self::ChangeStatus { .. } => "ChangeChannelStatus",
            Self::RecordFailure { .. } => "RecordChannelFailure",
            Self::RecordSessionStatus { .. } => "RecordSessionStatus",
            Self::StoreCredentials { .. } => "StoreCredentials",
            Self::RecordCredentialsViewed { .. } => "RecordCredentialsViewed",
            Self::ConfigureBatchWindow { .. } => "ConfigureBatchWindow",
            Self::RemoveChannel => "RemoveChannel",
            Self::RevokeCredentials => "RevokeCredentials",
        }
    }
}

/// What happened to a connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ChannelEvent {
    /// The connection was created, `DISCONNECTED`.
    ChannelCreated {
        /// The connection (also the stream id).
        channel_id: Uuid,
        /// The owning business.
        tenant_id: TenantId,
        /// Its company.
        company_id: Uuid,
        /// The platform.
        platform: Platform,
        /// Its Meta app, for Instagram and Facebook.
        meta_app_id: Option<Uuid>,
    },
    /// The status changed.
    ChannelStatusChanged {
        /// The status it had.
        from: ChannelStatus,
        /// The status it has.
        to: ChannelStatus,
        /// The provider's status word.
        raw_status: Option<String>,
        /// Why, when known.
        reason: Option<String>,
    },
    /// The connection failed: status `ERROR`.
    ChannelFailed {
        /// What went wrong.
        error: String,
        /// Failures so far, this one included.
        error_count: u32,
        /// The provider's status word.
        raw_status: Option<String>,
    },
    /// A WhatsApp QR attempt failed (the session failed before it ever worked); the
    /// session is restarted for the next attempt.
    QrAttemptFailed {
        /// Failed attempts so far, this one included.
        attempt: u32,
        /// When it failed (UTC): the next attempt starts then.
        at: DateTime<Utc>,
    },
    /// After repeated failed QR attempts, a pairing code is offered (QR stays available).
    PairingCodeOffered {
        /// Failed QR attempts when it was offered.
        after_attempts: u32,
    },
    /// A working WhatsApp session failed: a reconnect is due at `due_at`.
    ReconnectScheduled {
        /// The reconnect attempt (1-based).
        attempt: u32,
        /// When it is due (UTC).
        due_at: DateTime<Utc>,
        /// Why the session was lost, when known.
        reason: Option<String>,
    },
    /// New credentials were stored, sealed with the tenant's data key.
    CredentialsStored {
        /// The sealed credentials.
        sealed: String,
    },
    /// Someone read the credentials.
    CredentialsViewed {
        /// Who.
        viewer: UserId,
    },
    /// The buffering window changed.
    BatchWindowConfigured {
        /// Seconds.
        secs: u32,
    },
    /// The connection was removed.
    ChannelRemoved {
        /// The Meta app it gives back, if any.
        meta_app_id: Option<Uuid>,
    },
    /// The stored credentials were revoked.
    CredentialsRevoked,
}

impl DomainEvent for ChannelEvent {
    fn event_type(&self) -> String {
        match self {
            Self::ChannelCreated { .. } => "ChannelCreated",
            Self::ChannelStatusChanged { .. } => "ChannelStatusChanged",
            Self::ChannelFailed { .. } => "ChannelFailed",
            Self::QrAttemptFailed { .. } => "QrAttemptFailed",
            Self::PairingCodeOffered { .. } => "PairingCodeOffered",
            Self::ReconnectScheduled { .. } => "ReconnectScheduled",
            Self::CredentialsStored { .. } => "CredentialsStored",
            Self::CredentialsViewed { .. } => "CredentialsViewed",
            Self::BatchWindowConfigured { .. } => "BatchWindowConfigured",
            Self::ChannelRemoved { .. } => "ChannelRemoved",
            Self::CredentialsRevoked => "CredentialsRevoked",
        }
        .to_string()
    }
    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

/// A refused connection command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// The stream already holds a connection.
    #[error("channel {0} exists already")]
    AlreadyCreated(Uuid),
    /// No such connection.
    #[error("channel not found")]
    NotFound,
    /// The connection was removed.
    #[error("channel {0} was removed")]
    Removed(Uuid),
    /// No credentials were stored.
    #[error("channel {0} has no credentials")]
    NoCredentials(Uuid),
    /// A buffering window outside its bounds.
    #[error("the batch window must be {MIN_BATCH_WINDOW_SECS} to {MAX_BATCH_WINDOW_SECS} seconds, not {0}")]
    InvalidBatchWindow(u32),
}

/// A channel connection, as far as its stream tells.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    id: Uuid,
    tenant_id: TenantId,
    company_id: Uuid,
    platform: Platform,
    status: ChannelStatus,
    raw_status: Option<String>,
    last_error: Option<String>,
    error_count: u32,
    meta_app_id: Option<Uuid>,
    credentials: Option<String>,
    created: bool,
    removed: bool,
    /// The WhatsApp session has worked since it was created: a failure is a disconnect.
    #[serde(default)]
    authenticated: bool,
    #[serde(default)]
    qr_attempts: u32,
    #[serde(default)]
    pairing_offered: bool,
    #[serde(default)]
    reconnect_attempts: u32,
    #[serde(default)]
    batch_window_secs: Option<u32>,
}

impl Channel {
    /// The connection's id.
    pub fn id(&self) -> Uuid {
        self.id
    }
    /// Whether the stream holds a connection (removed or not).
    pub fn exists(&self) -> bool {
        self.created
    }
    /// Whether it was removed.
    pub fn is_removed(&self) -> bool {
        self.removed
    }
    /// The owning business.
    pub fn tenant_id(&self) -> TenantId {
        self.tenant_id
    }
    /// Its company.
    pub fn company_id(&self) -> Uuid {
        self.company_id
    }
    /// The platform.
    pub fn platform(&self) -> Platform {
        self.platform
    }
    /// The current status.
    pub fn status(&self) -> ChannelStatus {
        self.status
    }
    /// The Meta app it holds.
    pub fn meta_app_id(&self) -> Option<Uuid> {
        self.meta_app_id
    }
    /// The provider's last status word.
    pub fn raw_status(&self) -> Option<&str> {
        self.raw_status.as_deref()
    }
    /// Failed WhatsApp QR attempts.
    pub fn qr_attempts(&self) -> u32 {
        self.qr_attempts
    }
    /// Whether a pairing code is offered.
    pub fn pairing_offered(&self) -> bool {
        self.pairing_offered
    }
    /// Reconnect attempts since the session last worked.
    pub fn reconnect_attempts(&self) -> u32 {
        self.reconnect_attempts
    }
    /// Its buffering window, seconds (default [`DEFAULT_BATCH_WINDOW_SECS`]).
    pub fn batch_window_secs(&self) -> u32 {
        self.batch_window_secs.unwrap_or(DEFAULT_BATCH_WINDOW_SECS)
    }
    /// The sealed credentials, if stored.
    pub fn sealed_credentials(&self) -> Option<&str> {
        self.credentials.as_deref()
    }

    /// Decides which events a command produces, or why it is refused. Pure.
    ///
    /// # Errors
    /// A [`ChannelError`] naming the broken rule.
    pub fn decide(&self, command: ChannelCommand) -> Result<Vec<ChannelEvent>, ChannelError> {
        use ChannelCommand as C;
        use ChannelEvent as E;
        if let C::CreateChannel {
            channel_id,
            tenant_id,
            company_id,
            platform,
            meta_app_id,
        } = command
        {
            if self.created {
                return Err(ChannelError::AlreadyCreated(self.id));
            }
            return Ok(vec![E::ChannelCreated {
                channel_id,
                tenant_id,
                company_id,
                platform,
                meta_app_id,
            }]);
        }
        if !self.created {
            return Err(ChannelError::NotFound);
        }
        if let C::RevokeCredentials = command {
            return Ok(match self.credentials {
                Some(_) => vec![E::CredentialsRevoked],
                None => vec![],
            });
        }
        if self.removed {
            return match command {
                C::RemoveChannel => Ok(vec![]),
                _ => Err(ChannelError::Removed(self.id)),
            };
        }
        match command {
            C::CreateChannel { .. } | C::RevokeCredentials => unreachable!("handled above"),
            C::ChangeStatus {
                status,
                raw_status,
                reason,
            } => Ok(self.status_change(status, raw_status, reason)),
            C::RecordSessionStatus {
                raw_status,
                at,
                reason,
                jitter_permille,
            } => Ok(self.session_status(raw_status, at, reason, jitter_permille)),
            C::RecordFailure { error, raw_status } => Ok(vec![E::ChannelFailed {
                error,
                error_count: self.error_count + 1,
                raw_status,
            }]),
            C::StoreCredentials { sealed } => Ok(vec![E::CredentialsStored { sealed }]),
            C::RecordCredentialsViewed { viewer } => match self.credentials {
                Some(_) => Ok(vec![E::CredentialsViewed { viewer }]),
                None => Err(ChannelError::NoCredentials(self.id)),
            },
            C::ConfigureBatchWindow { secs } => {
                if !(MIN_BATCH_WINDOW_SECS..=MAX_BATCH_WINDOW_SECS).contains(&secs) {
                    return Err(ChannelError::InvalidBatchWindow(secs));
                }
                if secs == self.batch_window_secs() {
                    return Ok(vec![]);
                }
                Ok(vec![E::BatchWindowConfigured { secs }])
            }
            C::RemoveChannel => Ok(vec![E::ChannelRemoved {
                meta_app_id: self.meta_app_id,
            }]),
        }
    }
}

impl Channel {
    /// `ChannelStatusChanged`, or nothing when status and raw status are as they are.
    fn status_change(
        &self,
        to: ChannelStatus,
        raw_status: Option<String>,
        reason: Option<String>,
    ) -> Vec<ChannelEvent> {
        if to == self.status && raw_status == self.raw_status {
            return vec![];
        }
        vec![ChannelEvent::ChannelStatusChanged {
            from: self.status,
            to,
            raw_status,
            reason,
        }]
    }

    /// The lifecycle of [`super::whatsapp`].
    fn session_status(
        &self,
        raw_status: String,
        at: DateTime<Utc>,
        reason: Option<String>,
        jitter_permille: u16,
    ) -> Vec<ChannelEvent> {
        let parsed = SessionStatus::parse(&raw_status);
        if let Some(status) = parsed.channel_status() {
            return self.status_change(status, Some(raw_status), reason);
        }
        // FAILED. A second FAILED without a (re)start in between is the same failure.
        if self.raw_status.as_deref() == Some(raw_status.as_str()) {
            return vec![];
        }
        let failed = |error: String| ChannelEvent::ChannelFailed {
            error,
            error_count: self.error_count + 1,
            raw_status: Some(raw_status.clone()),
        };
        if self.authenticated {
            let attempt = self.reconnect_attempts + 1;
            if attempt > MAX_RECONNECT_ATTEMPTS {
                return vec![failed(format!(
                    "the WhatsApp session did not reconnect after {MAX_RECONNECT_ATTEMPTS} attempts"
                ))];
            }
            let mut events = self.status_change(
                ChannelStatus::Connecting,
                Some(raw_status.clone()),
                reason.clone(),
            );
            events.push(ChannelEvent::ReconnectScheduled {
                attempt,
                due_at: at + reconnect_delay(attempt, jitter_permille),
                reason,
            });
            return events;
        }
        let attempt = self.qr_attempts + 1;
        if attempt >= MAX_QR_ATTEMPTS {
            return vec![failed(format!(
                "the WhatsApp session was not paired after {MAX_QR_ATTEMPTS} attempts"
            ))];
        }
        let mut events =
            self.status_change(ChannelStatus::Connecting, Some(raw_status.clone()), reason);
        events.push(ChannelEvent::QrAttemptFailed { attempt, at });
        if attempt >= QR_ATTEMPTS_BEFORE_PAIRING && !self.pairing_offered {
            events.push(ChannelEvent::PairingCodeOffered {
                after_attempts: attempt,
            });
        }
        events
    }
}

impl Aggregate for Channel {
    const TYPE: &'static str = "channel";
    type Command = ChannelCommand;
    type Event = ChannelEvent;
    type Error = ChannelError;
    type Services = ();

    crate::handle_by_decide!();

    fn apply(&mut self, event: Self::Event) {
        match event {
            ChannelEvent::ChannelCreated {
                channel_id,
                tenant_id,
                company_id,
                platform,
                meta_app_id,
            } => {
                self.created = true;
                self.id = channel_id;
                self.tenant_id = tenant_id;
                self.company_id = company_id;
                self.platform = platform;
                self.meta_app_id = meta_app_id;
                self.status = ChannelStatus::Disconnected;
            }
            ChannelEvent::ChannelStatusChanged { to, raw_status, .. } => {
                self.status = to;
                self.raw_status = raw_status;
                if to == ChannelStatus::Connected {
                    self.authenticated = true;
                    self.qr_attempts = 0;
                    self.reconnect_attempts = 0;
                }
            }
            ChannelEvent::QrAttemptFailed { attempt, .. } => self.qr_attempts = attempt,
            ChannelEvent::PairingCodeOffered { .. } => self.pairing_offered = true,
            ChannelEvent::ReconnectScheduled { attempt, .. } => self.reconnect_attempts = attempt,
            ChannelEvent::ChannelFailed {
                error,
                error_count,
                raw_status,
            } => {
                self.status = ChannelStatus::Error;
                self.last_error = Some(error);
                self.error_count = error_count;
                self.raw_status = raw_status;
            }
            ChannelEvent::CredentialsStored { sealed } => self.credentials = Some(sealed),
            ChannelEvent::CredentialsRevoked => self.credentials = None,
            ChannelEvent::CredentialsViewed { .. } => {}
            ChannelEvent::BatchWindowConfigured { secs } => self.batch_window_secs = Some(secs),
            ChannelEvent::ChannelRemoved { .. } => {
                self.removed = true;
                self.meta_app_id = None;
            }
        }
    }
}
