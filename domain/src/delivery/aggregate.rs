//! A delivery (DOMAIN.md "Deliveries"; statuses from AfterShip, see [`DeliveryStatus`]).
//!
//! Rules:
//! - a status changes only along [`DeliveryStatus::can_become`]; otherwise the checkpoint is
//!   refused ([`DeliveryError::IllegalTransition`]);
//! - checkpoints are ordered by when they happened, not by arrival: one older than the
//!   latest status is kept in the history (`late`) and never rolls the status back;
//! - a checkpoint id is recorded once;
//! - the public tracking token is stored as its SHA-256 only, can be revoked and reissued;
//! - the customer is notified once per status reached.
//!
//! The address and the customer's name and phone are [`Sealed`] by the command layer.

use super::status::DeliveryStatus;
use crate::{Sealed, TenantId};
use chrono::{DateTime, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use uuid::Uuid;

/// A courier's position, WGS 84 degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Location {
    /// Latitude, −90 to 90.
    pub lat: f64,
    /// Longitude, −180 to 180.
    pub lng: f64,
}

impl Location {
    /// Whether both coordinates are in range (and are numbers).
    pub fn is_valid(&self) -> bool {
        (-90.0..=90.0).contains(&self.lat) && (-180.0..=180.0).contains(&self.lng)
    }
}

/// The customer of a delivery, sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Recipient {
    /// Name.
    pub name: Option<Sealed>,
    /// Phone.
    pub phone: Option<Sealed>,
}

/// A checkpoint as reported (by a courier app, a carrier, staff).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The reporter's id for it (idempotency).
    pub checkpoint_id: String,
    /// A new status, if it reports one.
    pub status: Option<DeliveryStatus>,
    /// A finer status (AfterShip's `subtag`, free text), e.g. `InTransit_003`.
    pub sub_status: Option<String>,
    /// A human message, e.g. "Arrived at the depot".
    pub message: Option<String>,
    /// The courier's position, if it reports one.
    pub location: Option<Location>,
    /// A new estimated time of arrival.
    pub eta: Option<DateTime<Utc>>,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
}

/// What can be asked of a delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DeliveryCommand {
    /// Create it, `Pending`, with its first tracking token.
    CreateDelivery {
        /// The business.
        tenant_id: TenantId,
        /// The company.
        company_id: Uuid,
        /// The order it delivers (the business's reference).
        order_reference: String,
        /// The address, sealed.
        address: Sealed,
        /// The customer.
        recipient: Recipient,
        /// The customer's conversation, to notify them on.
        conversation_id: Option<Uuid>,
        /// The first estimated time of arrival.
        eta: Option<DateTime<Utc>>,
        /// SHA-256 (hex) of the public tracking token.
        tracking_token_hash: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// Assign (or reassign) a courier.
    AssignCourier {
        /// The courier.
        courier_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// Record a checkpoint.
    RecordCheckpoint {
        /// The checkpoint.
        checkpoint: Checkpoint,
        /// When it arrived.
        at: DateTime<Utc>,
    },
    /// Replace the tracking token (the old one stops working).
    ReissueTrackingToken {
        /// SHA-256 (hex) of the new token.
        tracking_token_hash: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// Revoke the tracking token.
    RevokeTrackingToken {
        /// When.
        at: DateTime<Utc>,
    },
    /// Record that the customer was told of `status`.
    RecordNotification {
        /// The status told.
        status: DeliveryStatus,
        /// The outbound message.
        message_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
}

impl DeliveryCommand {
    /// The command's name, recorded in event metadata and the idempotency record.
    pub fn name(&self) -> &'static str {
        match self {
            Self::CreateDelivery { .. } => "CreateDelivery",
            Self::AssignCourier { .. } => "AssignCourier",
            Self::RecordCheckpoint { .. } => "RecordCheckpoint",
            Self::ReissueTrackingToken { .. } => "ReissueTrackingToken",
            Self::RevokeTrackingToken { .. } => "RevokeTrackingToken",
            Self::RecordNotification { .. } => "RecordDeliveryNotification",
        }
    }
}

/// What happened to a delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DeliveryEvent {
    /// Created.
    DeliveryCreated {
        /// The business.
        tenant_id: TenantId,
        /// The company.
        company_id: Uuid,
        /// The order reference.
        order_reference: String,
        /// Sealed address.
        address: Sealed,
        /// The customer, sealed.
        recipient: Recipient,
        /// The customer's conversation.
        conversation_id: Option<Uuid>,
        /// ETA.
        eta: Option<DateTime<Utc>>,
        /// When.
        at: DateTime<Utc>,
    },
    /// A courier was assigned.
    CourierAssigned {
        /// The courier.
        courier_id: Uuid,
        /// The courier before, if reassigned.
        previous: Option<Uuid>,
        /// When.
        at: DateTime<Utc>,
    },
    /// A checkpoint, in the history.
    CheckpointRecorded {
        /// The checkpoint.
        checkpoint: Checkpoint,
        /// Older than the latest status: history only.
        late: bool,
        /// When it arrived.
        at: DateTime<Utc>,
    },
    /// The status changed (a newer checkpoint with another status).
    DeliveryStatusChanged {
        /// Before.
        from: DeliveryStatus,
        /// After.
        to: DeliveryStatus,
        /// The checkpoint's sub-status.
        sub_status: Option<String>,
        /// When it happened.
        occurred_at: DateTime<Utc>,
    },
    /// A tracking token was issued (the previous one, if any, stops working).
    TrackingTokenIssued {
        /// SHA-256 (hex) of the token.
        token_hash: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// The tracking token was revoked.
    TrackingTokenRevoked {
        /// SHA-256 (hex) of the token.
        token_hash: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// The customer was told of a status.
    CustomerNotified {
        /// The status.
        status: DeliveryStatus,
        /// The outbound message.
        message_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for DeliveryEvent {
    fn event_type(&self) -> String {
        match self {
            Self::DeliveryCreated { .. } => "DeliveryCreated",
            Self::CourierAssigned { .. } => "CourierAssigned",
            Self::CheckpointRecorded { .. } => "CheckpointRecorded",
            Self::DeliveryStatusChanged { .. } => "DeliveryStatusChanged",
            Self::TrackingTokenIssued { .. } => "TrackingTokenIssued",
            Self::TrackingTokenRevoked { .. } => "TrackingTokenRevoked",
            Self::CustomerNotified { .. } => "CustomerNotified",
        }
        .to_string()
    }
    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

/// Why a delivery command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// No such delivery.
    #[error("no such delivery")]
    NotFound,
    /// It exists.
    #[error("the delivery exists")]
    AlreadyExists,
    /// The status cannot follow the current one.
    #[error("a delivery {from} cannot become {to}")]
    IllegalTransition {
        /// The current status.
        from: DeliveryStatus,
        /// The asked-for one.
        to: DeliveryStatus,
    },
    /// Coordinates out of range.
    #[error("latitude must be −90 to 90 and longitude −180 to 180")]
    InvalidLocation,
    /// Empty or too long text.
    #[error("{0} must be 1 to 200 characters")]
    InvalidText(&'static str),
    /// A checkpoint with neither a status, a location nor a message.
    #[error("a checkpoint needs a status, a location or a message")]
    EmptyCheckpoint,
}

/// A delivery.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    tenant_id: Option<TenantId>,
    company_id: Option<Uuid>,
    conversation_id: Option<Uuid>,
    status: DeliveryStatus,
    /// When the current status happened.
    status_at: Option<DateTime<Utc>>,
    courier_id: Option<Uuid>,
    token_hash: Option<String>,
    checkpoints: BTreeSet<String>,
    notified: BTreeSet<String>,
}

impl Delivery {
    /// Whether it exists.
    pub fn exists(&self) -> bool {
        self.tenant_id.is_some()
    }
    /// Its business.
    pub fn tenant_id(&self) -> Option<TenantId> {
        self.tenant_id
    }
    /// Its company.
    pub fn company_id(&self) -> Option<Uuid> {
        self.company_id
    }
    /// The current status.
    pub fn status(&self) -> DeliveryStatus {
        self.status
    }
    /// The assigned courier.
    pub fn courier_id(&self) -> Option<Uuid> {
        self.courier_id
    }
    /// The customer's conversation.
    pub fn conversation_id(&self) -> Option<Uuid> {
        self.conversation_id
    }
    /// Whether the customer was told of `status`.
    pub fn notified(&self, status: DeliveryStatus) -> bool {
        self.notified.contains(status.as_str())
    }

    /// Pure decision.
    ///
    /// # Errors
    /// [`DeliveryError`].
    pub fn decide(&self, command: DeliveryCommand) -> Result<Vec<DeliveryEvent>, DeliveryError> {
        use DeliveryCommand as C;
        use DeliveryEvent as E;
        if let C::CreateDelivery {
            tenant_id,
            company_id,
            order_reference,
            address,
            recipient,
            conversation_id,
            eta,
            tracking_token_hash,
            at,
        } = command
        {
            if self.exists() {
                return Err(DeliveryError::AlreadyExists);
            }
            let order_reference = text("order_reference", &order_reference)?;
            return Ok(vec![
                E::DeliveryCreated {
                    tenant_id,
                    company_id,
                    order_reference,
                    address,
                    recipient,
                    conversation_id,
                    eta,
                    at,
                },
                E::TrackingTokenIssued {
                    token_hash: tracking_token_hash,
                    at,
                },
            ]);
        }
        if !self.exists() {
            return Err(DeliveryError::NotFound);
        }
        Ok(match command {
            C::CreateDelivery { .. } => unreachable!("handled above"),
            C::AssignCourier { courier_id, at } => {
                if self.courier_id == Some(courier_id) {
                    return Ok(vec![]);
                }
                vec![E::CourierAssigned {
                    courier_id,
                    previous: self.courier_id,
                    at,
                }]
            }
            C::RecordCheckpoint { checkpoint, at } => self.checkpoint(checkpoint, at)?,
            C::ReissueTrackingToken {
                tracking_token_hash,
                at,
            } => {
                let mut events = self.revocation(at);
                events.push(E::TrackingTokenIssued {
                    token_hash: tracking_token_hash,
                    at,
                });
                events
            }
            C::RevokeTrackingToken { at } => self.revocation(at),
            C::RecordNotification {
                status,
                message_id,
                at,
            } => {
                if self.notified(status) {
                    return Ok(vec![]);
                }
                vec![E::CustomerNotified {
                    status,
                    message_id,
                    at,
                }]
            }
        })
    }

    fn checkpoint(
        &self,
        mut checkpoint: Checkpoint,
        at: DateTime<Utc>,
    ) -> Result<Vec<DeliveryEvent>, DeliveryError> {
        checkpoint.checkpoint_id = text("checkpoint_id", &checkpoint.checkpoint_id)?;
        if self.checkpoints.contains(&checkpoint.checkpoint_id) {
            return Ok(vec![]);
        }
        if checkpoint.status.is_none()
            && checkpoint.location.is_none()
            && checkpoint.message.is_none()
        {
            return Err(DeliveryError::EmptyCheckpoint);
        }
        if checkpoint.location.is_some_and(|l| !l.is_valid()) {
            return Err(DeliveryError::InvalidLocation);
        }
        checkpoint.message = optional_text("message", checkpoint.message)?;
        checkpoint.sub_status = optional_text("sub_status", checkpoint.sub_status)?;
        let late = self
            .status_at
            .is_some_and(|current| checkpoint.occurred_at < current);
        let change = match checkpoint.status {
            Some(to) if !late && to != self.status => {
                if !self.status.can_become(to) {
                    return Err(DeliveryError::IllegalTransition {
                        from: self.status,
                        to,
                    });
                }
                Some(DeliveryEvent::DeliveryStatusChanged {
                    from: self.status,
                    to,
                    sub_status: checkpoint.sub_status.clone(),
                    occurred_at: checkpoint.occurred_at,
                })
            }
            Some(to) if !late && to == self.status && self.status.is_final() => {
                return Err(DeliveryError::IllegalTransition {
                    from: self.status,
                    to,
                })
            }
            _ => None,
        };
        let mut events = vec![DeliveryEvent::CheckpointRecorded {
            checkpoint,
            late,
            at,
        }];
        events.extend(change);
        Ok(events)
    }

    fn revocation(&self, at: DateTime<Utc>) -> Vec<DeliveryEvent> {
        self.token_hash
            .iter()
            .map(|token_hash| DeliveryEvent::TrackingTokenRevoked {
                token_hash: token_hash.clone(),
                at,
            })
            .collect()
    }
}

fn text(field: &'static str, raw: &str) -> Result<String, DeliveryError> {
    crate::text::trimmed(raw, 1, 200).ok_or(DeliveryError::InvalidText(field))
}

fn optional_text(
    field: &'static str,
    raw: Option<String>,
) -> Result<Option<String>, DeliveryError> {
    raw.map(|raw| text(field, &raw)).transpose()
}

impl Aggregate for Delivery {
    const TYPE: &'static str = "delivery";
    type Command = DeliveryCommand;
    type Event = DeliveryEvent;
    type Error = DeliveryError;
    type Services = ();

    crate::handle_by_decide!();

    fn apply(&mut self, event: Self::Event) {
        use DeliveryEvent as E;
        match event {
            E::DeliveryCreated {
                tenant_id,
                company_id,
                conversation_id,
                ..
            } => {
                self.tenant_id = Some(tenant_id);
                self.company_id = Some(company_id);
                self.conversation_id = conversation_id;
            }
            E::CourierAssigned { courier_id, .. } => self.courier_id = Some(courier_id),
            E::CheckpointRecorded { checkpoint, .. } => {
                self.checkpoints.insert(checkpoint.checkpoint_id);
            }
            E::DeliveryStatusChanged {
                to, occurred_at, ..
            } => {
                self.status = to;
                self.status_at = Some(occurred_at);
            }
            E::TrackingTokenIssued { token_hash, .. } => self.token_hash = Some(token_hash),
            E::TrackingTokenRevoked { .. } => self.token_hash = None,
            E::CustomerNotified { status, .. } => {
                self.notified.insert(status.as_str().to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests;
