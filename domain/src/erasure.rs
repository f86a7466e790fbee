//! The erasure process (DOMAIN.md "Hard delete"): a **process manager** whose progress is
//! its own stream of events, so it resumes after a crash and never runs a step twice.
//!
//! A business's hard delete is asked for on the tenant stream (`TenantErasureRequested`);
//! when its grace period ends the process begins (`ErasureStarted`), plans one **step** per
//! compensating command and per external cleanup (`StepsPlanned`), records each step's
//! outcome as it completes (`StepCompleted`), and ends with `ErasureCompleted` once every
//! step has an outcome. The stream is the erasure certificate: each step with its outcome
//! and time.
//!
//! A step that calls outside (WAHA, Telegram, Stripe, the external cleanups of automation
//! workflows, knowledge bases and media) may fail: each failed attempt is recorded
//! (`StepAttemptFailed`) with the time of its retry, on a doubling back-off
//! ([`RETRY_BACKOFF`]); the [`STEP_ATTEMPTS`]th failure completes the step as
//! [`StepOutcome::ManualActionRequired`], never silently dropped.
//!
//! The stream id is the erasure id. The aggregate is pure: the command layer runs the
//! steps and tells it what happened.

use crate::TenantId;
use chrono::{DateTime, Duration, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Attempts of a step that calls outside before it is left for manual action.
pub const STEP_ATTEMPTS: u32 = 5;
/// The wait after a step's first failed attempt; it doubles after each further one
/// (1, 2, 4, 8 minutes).
pub const RETRY_BACKOFF: Duration = Duration::minutes(1);

/// What a step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// Remove a channel connection: its session or webhook at the provider ended, its
    /// slot and Meta app given back, its credentials revoked. Subject: the connection.
    RemoveChannel,
    /// Cancel the Stripe subscription through the Stripe API. Subject: the tenant.
    CancelSubscription,
    /// Disconnect the Stripe Connect account. Subject: the tenant.
    DisconnectConnectAccount,
    /// Close an order that is not paid. Subject: the order.
    CloseOrder,
    /// Close a loyalty account, voiding its points. Subject: the account.
    CloseLoyaltyAccount,
    /// Revoke a delivery's tracking token. Subject: the delivery.
    RevokeTrackingToken,
    /// Close a conversation. Subject: the conversation.
    CloseConversation,
    /// Close a company. Subject: the company.
    CloseCompany,
    /// Close a user account of the business (its owner). Subject: the user.
    CloseUser,
    /// An external cleanup the core does not own. Subject: the target
    /// ([`CleanupTarget::as_str`]).
    ExternalCleanup,
    /// The business itself (`TenantErased`), after every other step. Subject: the tenant.
    EraseTenant,
    /// Destroy the business's data key (crypto-shredding), last. Subject: the tenant.
    DestroyDataKey,
}

impl StepKind {
    /// The snake_case name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RemoveChannel => "remove_channel",
            Self::CancelSubscription => "cancel_subscription",
            Self::DisconnectConnectAccount => "disconnect_connect_account",
            Self::CloseOrder => "close_order",
            Self::CloseLoyaltyAccount => "close_loyalty_account",
            Self::RevokeTrackingToken => "revoke_tracking_token",
            Self::CloseConversation => "close_conversation",
            Self::CloseCompany => "close_company",
            Self::CloseUser => "close_user",
            Self::ExternalCleanup => "external_cleanup",
            Self::EraseTenant => "erase_tenant",
            Self::DestroyDataKey => "destroy_data_key",
        }
    }

    /// Whether the step runs only after every other step completed (the business and its
    /// key go last).
    pub fn is_final(self) -> bool {
        matches!(self, Self::EraseTenant | Self::DestroyDataKey)
    }
}

/// External cleanups, each at a configured endpoint (DOMAIN.md "Hard delete").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CleanupTarget {
    /// Automation workflows, nodes and credentials (n8n, `X8_N8N_URL`).
    Automations,
    /// Knowledge bases (`X8_KB_CLEANUP_URL`).
    KnowledgeBases,
    /// Media folders (Cloudinary, `X8_MEDIA_CLEANUP_URL`).
    Media,
}

impl CleanupTarget {
    /// Every target, in the order the process calls them.
    pub const ALL: [Self; 3] = [Self::Automations, Self::KnowledgeBases, Self::Media];

    /// The step subject: `automations`, `knowledge_bases`, `media`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Automations => "automations",
            Self::KnowledgeBases => "knowledge_bases",
            Self::Media => "media",
        }
    }

    /// The target named by a step subject.
    pub fn parse(subject: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == subject)
    }
}

/// One step of an erasure: a kind and the stream (or cleanup target) it acts on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Step {
    /// What it does.
    pub kind: StepKind,
    /// The aggregate id (or cleanup target) it acts on.
    pub subject: String,
}

impl Step {
    /// A step of `kind` on `subject`.
    pub fn new(kind: StepKind, subject: impl ToString) -> Self {
        Self {
            kind,
            subject: subject.to_string(),
        }
    }

    /// The step's identity as text, `<kind>/<subject>`: stable, used as a map key and to
    /// derive the step's command ids.
    pub fn key(&self) -> String {
        format!("{}/{}", self.kind.as_str(), self.subject)
    }
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum StepOutcome {
    /// The compensating command or the cleanup ran.
    Done,
    /// Nothing was left to do (e.g. an order already paid, a removed connection).
    NothingToDo,
    /// The cleanup's endpoint is not configured on this platform: nothing to call.
    NotConfigured,
    /// The step failed [`STEP_ATTEMPTS`] times: someone must finish it by hand.
    ManualActionRequired {
        /// Calls made.
        attempts: u32,
        /// The last call's error.
        last_error: String,
    },
}

/// What can be asked of an erasure process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ErasureCommand {
    /// Begin (after the tenant's `TenantErasureStarted`). Beginning again changes nothing.
    Start {
        /// The business being erased.
        tenant_id: TenantId,
        /// Who asked for it.
        requested_by: uuid::Uuid,
        /// When it was asked.
        requested_at: DateTime<Utc>,
        /// Now.
        at: DateTime<Utc>,
    },
    /// Plan steps; those already planned are left out (planning again after new streams
    /// appeared adds only them).
    PlanSteps {
        /// The steps, in the order they run.
        steps: Vec<Step>,
    },
    /// Record a step's outcome. Completing a completed step changes nothing.
    CompleteStep {
        /// The step.
        step: Step,
        /// How it ended.
        outcome: StepOutcome,
        /// When.
        at: DateTime<Utc>,
    },
    /// Record a failed attempt of a step (an outside call failed): retried later, or left
    /// for manual action after [`STEP_ATTEMPTS`] attempts.
    RecordStepFailure {
        /// The step.
        step: Step,
        /// What failed (no personal data: a status or a transport error).
        error: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// End the process once every planned step has an outcome. Ending again changes
    /// nothing.
    Complete {
        /// When.
        at: DateTime<Utc>,
    },
}

/// What happened in an erasure process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ErasureEvent {
    /// The process began.
    ErasureStarted {
        /// The business being erased.
        tenant_id: TenantId,
        /// Who asked for it.
        requested_by: uuid::Uuid,
        /// When it was asked (UTC).
        requested_at: DateTime<Utc>,
        /// When it began (UTC).
        started_at: DateTime<Utc>,
    },
    /// Steps were planned, in the order they run.
    StepsPlanned {
        /// The new steps.
        steps: Vec<Step>,
    },
    /// A step completed.
    StepCompleted {
        /// The step.
        step: Step,
        /// How.
        #[serde(flatten)]
        outcome: StepOutcome,
        /// When (UTC).
        at: DateTime<Utc>,
    },
    /// An attempt of a step failed (an outside call failed).
    StepAttemptFailed {
        /// The step.
        step: Step,
        /// Which call failed (1, 2, …).
        attempt: u32,
        /// What failed.
        error: String,
        /// When (UTC).
        at: DateTime<Utc>,
        /// When it is called again; `None` after the last attempt.
        retry_at: Option<DateTime<Utc>>,
    },
    /// Every step has an outcome: the business is erased.
    ErasureCompleted {
        /// When (UTC).
        at: DateTime<Utc>,
    },
}

impl DomainEvent for ErasureEvent {
    fn event_type(&self) -> String {
        match self {
            Self::ErasureStarted { .. } => "ErasureStarted",
            Self::StepsPlanned { .. } => "StepsPlanned",
            Self::StepCompleted { .. } => "StepCompleted",
            Self::StepAttemptFailed { .. } => "StepAttemptFailed",
            Self::ErasureCompleted { .. } => "ErasureCompleted",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

/// A refused erasure command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErasureError {
    /// The process has not started.
    #[error("the erasure has not started")]
    NotStarted,
    /// The step was never planned.
    #[error("step {kind:?} on {subject} is not planned")]
    UnknownStep {
        /// Its kind.
        kind: StepKind,
        /// Its subject.
        subject: String,
    },
    /// Complete while steps have no outcome yet.
    #[error("{pending} steps have no outcome yet")]
    StepsPending {
        /// How many.
        pending: usize,
    },
    /// The process is over: nothing more can be planned.
    #[error("the erasure is completed")]
    Completed,
}

/// An erasure process, as its stream tells.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Erasure {
    tenant_id: Option<TenantId>,
    planned: Vec<Step>,
    /// The planned steps' keys ([`Step::key`]).
    planned_keys: BTreeSet<String>,
    /// Outcomes by step key.
    outcomes: BTreeMap<String, StepOutcome>,
    /// Failed attempts by step key.
    failures: BTreeMap<String, u32>,
    /// When a failed step is tried again, by step key.
    retries: BTreeMap<String, DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
}

impl Erasure {
    /// The business being erased (`None` before the start).
    pub fn tenant_id(&self) -> Option<TenantId> {
        self.tenant_id
    }
    /// The planned steps, in order.
    pub fn planned(&self) -> &[Step] {
        &self.planned
    }
    /// A step's outcome, if it completed.
    pub fn outcome(&self, step: &Step) -> Option<&StepOutcome> {
        self.outcomes.get(&step.key())
    }
    /// The failed attempts of a step so far.
    pub fn failures(&self, step: &Step) -> u32 {
        self.failures.get(&step.key()).copied().unwrap_or(0)
    }
    /// When a failed step is tried again (`None`: it has not failed, or it completed).
    pub fn retry_at(&self, step: &Step) -> Option<DateTime<Utc>> {
        self.retries.get(&step.key()).copied()
    }
    /// Planned steps without an outcome, in order.
    pub fn pending(&self) -> impl Iterator<Item = &Step> {
        self.planned
            .iter()
            .filter(|step| !self.outcomes.contains_key(&step.key()))
    }
    /// When the process ended, if it did.
    pub fn completed_at(&self) -> Option<DateTime<Utc>> {
        self.completed_at
    }

    /// Decides which events a command produces, or why it is refused. Pure.
    ///
    /// # Errors
    /// An [`ErasureError`].
    pub fn decide(&self, command: ErasureCommand) -> Result<Vec<ErasureEvent>, ErasureError> {
        use ErasureCommand as C;
        use ErasureEvent as E;
        if let C::Start {
            tenant_id,
            requested_by,
            requested_at,
            at,
        } = command
        {
            return Ok(match self.tenant_id {
                Some(_) => vec![],
                None => vec![E::ErasureStarted {
                    tenant_id,
                    requested_by,
                    requested_at,
                    started_at: at,
                }],
            });
        }
        if self.tenant_id.is_none() {
            return Err(ErasureError::NotStarted);
        }
        match command {
            C::Start { .. } => unreachable!("handled above"),
            C::PlanSteps { steps } => {
                let mut seen = BTreeSet::new();
                let new: Vec<Step> = steps
                    .into_iter()
                    .filter(|step| {
                        let key = step.key();
                        !self.planned_keys.contains(&key) && seen.insert(key)
                    })
                    .collect();
                match (new.is_empty(), self.completed_at) {
                    (true, _) => Ok(vec![]),
                    (false, Some(_)) => Err(ErasureError::Completed),
                    (false, None) => Ok(vec![E::StepsPlanned { steps: new }]),
                }
            }
            C::CompleteStep { step, outcome, at } => {
                self.check_planned(&step)?;
                if self.outcome(&step).is_some() {
                    return Ok(vec![]);
                }
                Ok(vec![E::StepCompleted { step, outcome, at }])
            }
            C::RecordStepFailure { step, error, at } => {
                self.check_planned(&step)?;
                if self.outcome(&step).is_some() {
                    return Ok(vec![]);
                }
                let attempt = self.failures(&step) + 1;
                if attempt >= STEP_ATTEMPTS {
                    return Ok(vec![
                        E::StepAttemptFailed {
                            step: step.clone(),
                            attempt,
                            error: error.clone(),
                            at,
                            retry_at: None,
                        },
                        E::StepCompleted {
                            step,
                            outcome: StepOutcome::ManualActionRequired {
                                attempts: attempt,
                                last_error: error,
                            },
                            at,
                        },
                    ]);
                }
                Ok(vec![E::StepAttemptFailed {
                    step,
                    attempt,
                    error,
                    at,
                    retry_at: Some(at + retry_backoff(attempt)),
                }])
            }
            C::Complete { at } => {
                if self.completed_at.is_some() {
                    return Ok(vec![]);
                }
                match self.pending().count() {
                    0 => Ok(vec![E::ErasureCompleted { at }]),
                    pending => Err(ErasureError::StepsPending { pending }),
                }
            }
        }
    }

    fn check_planned(&self, step: &Step) -> Result<(), ErasureError> {
        if self.planned_keys.contains(&step.key()) {
            Ok(())
        } else {
            Err(ErasureError::UnknownStep {
                kind: step.kind,
                subject: step.subject.clone(),
            })
        }
    }
}

/// The wait after a step's `attempt`th failure: [`RETRY_BACKOFF`] × 2^(attempt − 1).
pub fn retry_backoff(attempt: u32) -> Duration {
    RETRY_BACKOFF * (1 << attempt.saturating_sub(1).min(16))
}

impl Aggregate for Erasure {
    const TYPE: &'static str = "erasure";
    type Command = ErasureCommand;
    type Event = ErasureEvent;
    type Error = ErasureError;
    type Services = ();

    crate::handle_by_decide!();

    fn apply(&mut self, event: Self::Event) {
        match event {
            ErasureEvent::ErasureStarted { tenant_id, .. } => self.tenant_id = Some(tenant_id),
            ErasureEvent::StepsPlanned { steps } => {
                self.planned_keys.extend(steps.iter().map(Step::key));
                self.planned.extend(steps);
            }
            ErasureEvent::StepCompleted { step, outcome, .. } => {
                let key = step.key();
                self.retries.remove(&key);
                self.outcomes.insert(key, outcome);
            }
            ErasureEvent::StepAttemptFailed {
                step,
                attempt,
                retry_at,
                ..
            } => {
                let key = step.key();
                match retry_at {
                    Some(at) => self.retries.insert(key.clone(), at),
                    None => self.retries.remove(&key),
                };
                self.failures.insert(key, attempt);
            }
            ErasureEvent::ErasureCompleted { at } => self.completed_at = Some(at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use cqrs_es::test::TestFramework;
    use uuid::Uuid;

    type ErasureTest = TestFramework<Erasure>;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap()
    }
    fn tenant() -> TenantId {
        TenantId(Uuid::from_u128(1))
    }
    fn started() -> ErasureEvent {
        ErasureEvent::ErasureStarted {
            tenant_id: tenant(),
            requested_by: Uuid::from_u128(2),
            requested_at: at(),
            started_at: at(),
        }
    }
    fn order() -> Step {
        Step::new(StepKind::CloseOrder, "order-1")
    }
    fn media() -> Step {
        Step::new(StepKind::ExternalCleanup, CleanupTarget::Media.as_str())
    }
    fn planned() -> ErasureEvent {
        ErasureEvent::StepsPlanned {
            steps: vec![order(), media()],
        }
    }
    fn failed(attempt: u32) -> ErasureEvent {
        ErasureEvent::StepAttemptFailed {
            step: media(),
            attempt,
            error: "503".into(),
            at: at(),
            retry_at: Some(at() + retry_backoff(attempt)),
        }
    }

    #[test]
    fn starting_twice_starts_once() {
        ErasureTest::with(())
            .given_no_previous_events()
            .when(ErasureCommand::Start {
                tenant_id: tenant(),
                requested_by: Uuid::from_u128(2),
                requested_at: at(),
                at: at(),
            })
            .then_expect_events(vec![started()]);
        ErasureTest::with(())
            .given(vec![started()])
            .when(ErasureCommand::Start {
                tenant_id: tenant(),
                requested_by: Uuid::from_u128(2),
                requested_at: at(),
                at: at() + Duration::hours(1),
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn planning_again_adds_only_the_new_steps() {
        let delivery = Step::new(StepKind::RevokeTrackingToken, "delivery-1");
        ErasureTest::with(())
            .given(vec![started(), planned()])
            .when(ErasureCommand::PlanSteps {
                steps: vec![order(), delivery.clone(), delivery.clone()],
            })
            .then_expect_events(vec![ErasureEvent::StepsPlanned {
                steps: vec![delivery],
            }]);
    }

    #[test]
    fn a_step_completes_once() {
        let done = ErasureEvent::StepCompleted {
            step: order(),
            outcome: StepOutcome::Done,
            at: at(),
        };
        ErasureTest::with(())
            .given(vec![started(), planned()])
            .when(ErasureCommand::CompleteStep {
                step: order(),
                outcome: StepOutcome::Done,
                at: at(),
            })
            .then_expect_events(vec![done.clone()]);
        ErasureTest::with(())
            .given(vec![started(), planned(), done])
            .when(ErasureCommand::CompleteStep {
                step: order(),
                outcome: StepOutcome::NothingToDo,
                at: at(),
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn an_unplanned_step_is_refused() {
        ErasureTest::with(())
            .given(vec![started(), planned()])
            .when(ErasureCommand::CompleteStep {
                step: Step::new(StepKind::CloseOrder, "order-2"),
                outcome: StepOutcome::Done,
                at: at(),
            })
            .then_expect_error(ErasureError::UnknownStep {
                kind: StepKind::CloseOrder,
                subject: "order-2".into(),
            });
    }

    #[test]
    fn a_failed_step_is_retried_on_a_doubling_back_off() {
        assert_eq!(retry_backoff(1), Duration::minutes(1));
        assert_eq!(retry_backoff(4), Duration::minutes(8));
        ErasureTest::with(())
            .given(vec![started(), planned(), failed(1)])
            .when(ErasureCommand::RecordStepFailure {
                step: media(),
                error: "503".into(),
                at: at(),
            })
            .then_expect_events(vec![failed(2)]);
    }

    #[test]
    fn the_last_failed_attempt_leaves_the_step_for_manual_action() {
        let mut given = vec![started(), planned()];
        given.extend((1..STEP_ATTEMPTS).map(failed));
        ErasureTest::with(())
            .given(given)
            .when(ErasureCommand::RecordStepFailure {
                step: media(),
                error: "timeout".into(),
                at: at(),
            })
            .then_expect_events(vec![
                ErasureEvent::StepAttemptFailed {
                    step: media(),
                    attempt: STEP_ATTEMPTS,
                    error: "timeout".into(),
                    at: at(),
                    retry_at: None,
                },
                ErasureEvent::StepCompleted {
                    step: media(),
                    outcome: StepOutcome::ManualActionRequired {
                        attempts: STEP_ATTEMPTS,
                        last_error: "timeout".into(),
                    },
                    at: at(),
                },
            ]);
    }

    #[test]
    fn it_completes_only_when_every_step_has_an_outcome() {
        ErasureTest::with(())
            .given(vec![started(), planned()])
            .when(ErasureCommand::Complete { at: at() })
            .then_expect_error(ErasureError::StepsPending { pending: 2 });
        let outcomes = [order(), media()].map(|step| ErasureEvent::StepCompleted {
            step,
            outcome: StepOutcome::Done,
            at: at(),
        });
        let mut given = vec![started(), planned()];
        given.extend(outcomes);
        ErasureTest::with(())
            .given(given.clone())
            .when(ErasureCommand::Complete { at: at() })
            .then_expect_events(vec![ErasureEvent::ErasureCompleted { at: at() }]);
        given.push(ErasureEvent::ErasureCompleted { at: at() });
        ErasureTest::with(())
            .given(given)
            .when(ErasureCommand::Complete { at: at() })
            .then_expect_events(vec![]);
    }
}
