//! Services a business offers through the loyalty program, moderated by admins (one
//! aggregate per service): submitted → approved, or rejected with a reason. A rejected
//! service may be revised and submitted again; an approved one is final.

use crate::TenantId;
use chrono::{DateTime, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where a service stands in the moderation queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ModerationStatus {
    /// Not submitted (an empty stream).
    #[default]
    Draft,
    /// Waiting for an admin.
    Pending,
    /// Approved: shown to customers.
    Approved,
    /// Rejected, with a reason.
    Rejected,
}

/// What can be asked of a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ServiceCommand {
    /// Submit (or, after a rejection, resubmit) the service.
    SubmitService {
        /// The service (the stream id).
        service_id: Uuid,
        /// The business.
        tenant_id: TenantId,
        /// 1 to 200 characters.
        title: String,
        /// Up to 2,000 characters.
        description: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// An ADMIN approves it.
    ApproveService {
        /// When.
        at: DateTime<Utc>,
    },
    /// An ADMIN rejects it.
    RejectService {
        /// Why, 1 to 500 characters, shown to the business.
        reason: String,
        /// When.
        at: DateTime<Utc>,
    },
}

impl ServiceCommand {
    /// The command's name, recorded in event metadata and the idempotency record.
    pub fn name(&self) -> &'static str {
        match self {
            Self::SubmitService { .. } => "SubmitService",
            Self::ApproveService { .. } => "ApproveService",
            Self::RejectService { .. } => "RejectService",
        }
    }
}

/// What happened to a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ServiceEvent {
    /// Submitted for moderation.
    ServiceSubmitted {
        /// The service.
        service_id: Uuid,
        /// The business.
        tenant_id: TenantId,
        /// Title.
        title: String,
        /// Description.
        description: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// Approved.
    ServiceApproved {
        /// When.
        at: DateTime<Utc>,
    },
    /// Rejected.
    ServiceRejected {
        /// Why.
        reason: String,
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for ServiceEvent {
    fn event_type(&self) -> String {
        match self {
            Self::ServiceSubmitted { .. } => "ServiceSubmitted",
            Self::ServiceApproved { .. } => "ServiceApproved",
            Self::ServiceRejected { .. } => "ServiceRejected",
        }
        .to_string()
    }
    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

/// Why a moderation command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// No such service.
    #[error("no such service")]
    NotFound,
    /// Not in a state where this applies (e.g. approving an approved service).
    #[error("the service is {0:?}")]
    WrongStatus(ModerationStatus),
    /// Empty or too long text.
    #[error("{field} must be {min} to {max} characters")]
    InvalidText {
        /// Which.
        field: &'static str,
        /// At least.
        min: usize,
        /// At most.
        max: usize,
    },
}

/// A service in moderation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Service {
    tenant_id: Option<TenantId>,
    status: ModerationStatus,
}

impl Service {
    /// Its business.
    pub fn tenant_id(&self) -> Option<TenantId> {
        self.tenant_id
    }
    /// Its moderation status.
    pub fn status(&self) -> ModerationStatus {
        self.status
    }

    /// Pure decision.
    ///
    /// # Errors
    /// [`ServiceError`].
    pub fn decide(&self, command: ServiceCommand) -> Result<Vec<ServiceEvent>, ServiceError> {
        use ModerationStatus as S;
        Ok(match command {
            ServiceCommand::SubmitService {
                service_id,
                tenant_id,
                title,
                description,
                at,
            } => {
                if !matches!(self.status, S::Draft | S::Rejected) {
                    return Err(ServiceError::WrongStatus(self.status));
                }
                vec![ServiceEvent::ServiceSubmitted {
                    service_id,
                    tenant_id,
                    title: text("title", &title, 1, 200)?,
                    description: text("description", &description, 0, 2000)?,
                    at,
                }]
            }
            ServiceCommand::ApproveService { at } => match self.status {
                S::Draft => return Err(ServiceError::NotFound),
                S::Pending => vec![ServiceEvent::ServiceApproved { at }],
                status => return Err(ServiceError::WrongStatus(status)),
            },
            ServiceCommand::RejectService { reason, at } => match self.status {
                S::Draft => return Err(ServiceError::NotFound),
                S::Pending => vec![ServiceEvent::ServiceRejected {
                    reason: text("reason", &reason, 1, 500)?,
                    at,
                }],
                status => return Err(ServiceError::WrongStatus(status)),
            },
        })
    }
}

fn text(field: &'static str, raw: &str, min: usize, max: usize) -> Result<String, ServiceError> {
    crate::text::trimmed(raw, min, max).ok_or(ServiceError::InvalidText { field, min, max })
}

impl Aggregate for Service {
    const TYPE: &'static str = "loyalty_service";
    type Command = ServiceCommand;
    type Event = ServiceEvent;
    type Error = ServiceError;
    type Services = ();

    crate::handle_by_decide!();

    fn apply(&mut self, event: Self::Event) {
        match event {
            ServiceEvent::ServiceSubmitted { tenant_id, .. } => {
                self.tenant_id = Some(tenant_id);
                self.status = ModerationStatus::Pending;
            }
            ServiceEvent::ServiceApproved { .. } => self.status = ModerationStatus::Approved,
            ServiceEvent::ServiceRejected { .. } => self.status = ModerationStatus::Rejected,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000, 0).single().expect("time")
    }

    fn submit() -> ServiceCommand {
        ServiceCommand::SubmitService {
            service_id: Uuid::from_u128(1),
            tenant_id: TenantId(Uuid::from_u128(2)),
            title: "Free delivery".into(),
            description: "Within 5 km".into(),
            at: now(),
        }
    }

    fn run(service: &mut Service, command: ServiceCommand) -> Result<(), ServiceError> {
        let events = service.decide(command)?;
        events.into_iter().for_each(|e| service.apply(e));
        Ok(())
    }

    #[test]
    fn a_submitted_service_is_approved_once() {
        let mut service = Service::default();
        assert_eq!(
            run(&mut service, ServiceCommand::ApproveService { at: now() }),
            Err(ServiceError::NotFound)
        );
        run(&mut service, submit()).expect("submitted");
        run(&mut service, ServiceCommand::ApproveService { at: now() }).expect("approved");
        assert_eq!(service.status(), ModerationStatus::Approved);
        assert_eq!(
            run(&mut service, ServiceCommand::ApproveService { at: now() }),
            Err(ServiceError::WrongStatus(ModerationStatus::Approved))
        );
        assert!(run(&mut service, submit()).is_err(), "approved is final");
    }

    #[test]
    fn a_rejection_needs_a_reason_and_the_service_may_be_resubmitted() {
        let mut service = Service::default();
        run(&mut service, submit()).expect("submitted");
        let reject = |reason: &str| ServiceCommand::RejectService {
            reason: reason.into(),
            at: now(),
        };
        assert!(matches!(
            run(&mut service, reject("  ")),
            Err(ServiceError::InvalidText {
                field: "reason",
                ..
            })
        ));
        run(&mut service, reject("Misleading title")).expect("rejected");
        assert_eq!(service.status(), ModerationStatus::Rejected);
        run(&mut service, submit()).expect("resubmitted");
        assert_eq!(service.status(), ModerationStatus::Pending);
    }
}
