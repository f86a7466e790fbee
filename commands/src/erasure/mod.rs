//! A business's hard delete (DOMAIN.md "Hard delete"): the request, its cancellation in
//! the grace period, and the **process manager** that runs it.
//!
//! - [`request`] appends `TenantErasureRequested` on the tenant stream; the `deadlines`
//!   projection schedules [`RUN_ERASURE`](x8_domain::deadlines::RUN_ERASURE) at the grace
//!   period's end (`X8_ERASURE_GRACE_HOURS`, default 0). [`cancel`] stops it until then.
//! - [`run`] (the deadline's command) begins the erasure on the tenant stream (from then
//!   on the business takes no command), starts the process's own stream, plans one step
//!   per stream the business owns in the log (every stream whose events carry its tenant
//!   id) and per external cleanup, and runs the steps in order, recording each outcome.
//!   A step that calls outside and fails is recorded and retried on the erasure's own
//!   back-off (a `StepAttemptFailed` schedules the next run), then left for manual action.
//!   When every step has an outcome, and planning again finds no new stream, the business
//!   is erased (`TenantErased`), its data key destroyed, and the process completed.
//! - **Never twice.** A step's commands carry ids derived from the erasure and the step,
//!   so a run resumed after a crash between a step's command and its recorded outcome
//!   replays the recorded command instead of appending again; a completed step is never
//!   run again. The outside calls of a step cut off that way are made again: each is
//!   idempotent on the provider's side (deleting a deleted session, webhook or account,
//!   cancelling a cancelled subscription, the cleanups' `Idempotency-Key`).

pub mod cleanup;

use crate::bus::NamedCommand;
use crate::channels::ChannelOpError;
use crate::context::CommandContext;
use crate::error::CommandError;
use crate::{CommandBus, Commands};
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use uuid::Uuid;
use x8_domain::billing::connect::{ConnectCommand, LinkOrigin};
use x8_domain::billing::order::OrderCommand;
use x8_domain::billing::subscription::{StripeStatus, SubscriptionCommand};
use x8_domain::channel::{ChannelCommand, Platform};
use x8_domain::company::CompanyCommand;
use x8_domain::conversation::ConversationCommand;
use x8_domain::delivery::DeliveryCommand;
use x8_domain::erasure::{CleanupTarget, Erasure, ErasureCommand, Step, StepKind, StepOutcome};
use x8_domain::loyalty::LoyaltyCommand;
use x8_domain::tenant::{PendingErasure, Tenant, TenantCommand, TenantError, TenantStatus};
use x8_domain::user::UserCommand;
use x8_domain::{TenantId, UserId};
use x8_eventstore::commands::forget_tenant;
use x8_eventstore::Actor;

pub use cleanup::{CleanupCall, ExternalCleanups, HttpCleanups};

/// Namespace of the command ids of erasure steps.
const STEP_NAMESPACE: Uuid = Uuid::from_u128(0x5e1f_0c1a_7d2b_4e8f_9a3c_2b1d_0e4f_6a7b);

/// How many times one run plans again for streams that appeared while it ran (a message
/// that arrived during the erasure) before leaving them to the next run.
const PLANNING_ROUNDS: usize = 3;

impl NamedCommand for ErasureCommand {
    fn command_name(&self) -> &'static str {
        match self {
            Self::Start { .. } => "StartErasure",
            Self::PlanSteps { .. } => "PlanErasureSteps",
            Self::CompleteStep { .. } => "CompleteErasureStep",
            Self::RecordStepFailure { .. } => "RecordErasureStepFailure",
            Self::Complete { .. } => "CompleteErasure",
        }
    }
    fn tenant_id(&self, _aggregate_id: &str) -> Option<Uuid> {
        match self {
            Self::Start { tenant_id, .. } => Some(tenant_id.0),
            _ => None,
        }
    }
}

/// Asks for the hard delete of `tenant_id` by `requested_by` (the owner, who re-entered
/// the password, or an ADMIN: the caller checks). It begins after the grace period
/// (`commands.erasure_grace`). Asking while an erasure is pending returns that one.
///
/// # Errors
/// `NotRegistered`, `Erased`; see [`crate::CommandBus::execute`].
pub async fn request(
    commands: &Commands,
    tenant_id: TenantId,
    requested_by: UserId,
    ctx: &CommandContext,
) -> Result<(PendingErasure, i64), CommandError<TenantError>> {
    let now = commands.clock.now();
    let mut ctx = ctx.clone().for_tenant(tenant_id.0);
    if ctx.fingerprint.is_none() {
        // The erasure id is generated: a retried request is the same request.
        ctx = ctx.fingerprinted(&["RequestErasure", &tenant_id.to_string()]);
    }
    let command = TenantCommand::RequestErasure {
        erasure_id: Uuid::now_v7(),
        requested_by,
        requested_at: now,
        not_before: now + commands.erasure_grace,
    };
    let (outcome, pending) = commands
        .tenants
        .execute_and_read(&tenant_id.to_string(), command, &ctx, Tenant::erasure)
        .await?;
    let pending = pending.ok_or_else(|| {
        CommandError::Infrastructure("the erasure request left no pending erasure".into())
    })?;
    Ok((pending, outcome.position()))
}

/// Cancels the pending erasure of `tenant_id` during its grace period. Returns the
/// cancelled erasure's id and the position.
///
/// # Errors
/// `NoErasurePending`, `ErasureStarted`, `Erased`; see [`crate::CommandBus::execute`].
pub async fn cancel(
    commands: &Commands,
    tenant_id: TenantId,
    cancelled_by: UserId,
    ctx: &CommandContext,
) -> Result<(Uuid, i64), CommandError<TenantError>> {
    let ctx = ctx.clone().for_tenant(tenant_id.0);
    let pending = commands
        .tenants
        .inspect(&tenant_id.to_string(), Tenant::erasure)
        .await?;
    let command = TenantCommand::CancelErasure {
        cancelled_by,
        at: commands.clock.now(),
    };
    let outcome = commands
        .tenants
        .execute(&tenant_id.to_string(), command, &ctx)
        .await?;
    let erasure_id = pending.map(|p| p.erasure_id).unwrap_or_default();
    Ok((erasure_id, outcome.position()))
}

/// What one [`run_until`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// No erasure to run (none pending, or cancelled).
    NothingPending,
    /// Steps are waiting for a retry; the next run is scheduled.
    Waiting,
    /// The business is erased and the process completed.
    Completed,
}

/// Runs the erasure of the business named by `aggregate_id` (the tenant, or the erasure
/// process for a retry) as far as it can: the deadline runner's command.
///
/// # Errors
/// Why the run stopped (the store failed): the deadline is retried and the run resumes.
pub async fn run(commands: &Commands, aggregate_id: &str) -> Result<RunOutcome, String> {
    run_until(commands, aggregate_id, None).await
}

/// As [`run`], stopping as if the process died right after the work of the
/// `crash_after`th step of this run, before its outcome is recorded (fault injection for
/// the crash tests).
///
/// # Errors
/// As [`run`]; `injected crash` when stopped.
pub async fn run_until(
    commands: &Commands,
    aggregate_id: &str,
    crash_after: Option<usize>,
) -> Result<RunOutcome, String> {
    let Some(tenant_id) = tenant_of(commands, aggregate_id).await? else {
        return Ok(RunOutcome::NothingPending);
    };
    let tenant = commands
        .tenants
        .load(&tenant_id.to_string())
        .await
        .map_err(|e| e.to_string())?;
    let Some(pending) = tenant.erasure() else {
        return Ok(RunOutcome::NothingPending);
    };
    let done = commands
        .erasures
        .load(&pending.erasure_id.to_string())
        .await
        .map_err(|e| e.to_string())?
        .completed_at();
    if done.is_some() {
        return Ok(RunOutcome::Completed);
    }
    let mut process = Process {
        commands,
        tenant_id,
        erasure_id: pending.erasure_id,
        owner: tenant.owner(),
        steps_run: 0,
        crash_after,
    };
    process.begin(pending).await?;
    for _ in 0..PLANNING_ROUNDS {
        process.plan().await?;
        if !process.run_pending().await? {
            return Ok(RunOutcome::Waiting);
        }
        if !process.plan().await? {
            process.finish().await?;
            return Ok(RunOutcome::Completed);
        }
    }
    Ok(RunOutcome::Waiting)
}

/// The business a run is for: `aggregate_id` names the tenant (the grace period's
/// deadline) or the erasure process (a retry's deadline).
async fn tenant_of(commands: &Commands, aggregate_id: &str) -> Result<Option<TenantId>, String> {
    let id: Uuid = aggregate_id
        .parse()
        .map_err(|_| format!("bad erasure or tenant id {aggregate_id}"))?;
    let erasure = commands
        .erasures
        .load(&id.to_string())
        .await
        .map_err(|e| e.to_string())?;
    if let Some(tenant_id) = erasure.tenant_id() {
        return Ok(Some(tenant_id));
    }
    let tenant = commands
        .tenants
        .load(&id.to_string())
        .await
        .map_err(|e| e.to_string())?;
    Ok((tenant.status() != TenantStatus::Unregistered).then_some(TenantId(id)))
}

/// One run of one erasure.
struct Process<'a> {
    commands: &'a Commands,
    tenant_id: TenantId,
    erasure_id: Uuid,
    owner: Option<UserId>,
    steps_run: usize,
    crash_after: Option<usize>,
}

/// Why a step did not complete.
enum StepFailure {
    /// An outside call failed: recorded, retried later, then left for manual action.
    Outside(String),
    /// The store failed: the run stops and its deadline is retried.
    Store(String),
}

impl<E: std::error::Error> From<CommandError<E>> for StepFailure {
    fn from(error: CommandError<E>) -> Self {
        Self::Store(error.to_string())
    }
}

impl Process<'_> {
    fn now(&self) -> DateTime<Utc> {
        self.commands.clock.now()
    }

    /// The context of the erasure's own commands: by the system, correlated with the
    /// erasure, stamped with the business.
    fn ctx(&self) -> CommandContext {
        CommandContext::new(Actor::System)
            .correlated(self.erasure_id)
            .for_tenant(self.tenant_id.0)
    }

    /// The context of a step's command `part`: its id derives from the erasure, the step
    /// and the part, so running the step again replays the recorded outcome.
    fn step_ctx(&self, step: &Step, part: &str) -> CommandContext {
        let key = format!("{}/{}/{part}", self.erasure_id, step.key());
        let mut ctx = self.ctx().fingerprinted(&["erasure-step", &key]);
        ctx.command_id = Uuid::new_v5(&STEP_NAMESPACE, key.as_bytes());
        ctx.client_supplied = true;
        ctx
    }

    /// Executes a command on the process's stream; whether it appended.
    async fn record(&self, command: ErasureCommand) -> Result<bool, String> {
        let outcome = self
            .commands
            .erasures
            .execute(&self.erasure_id.to_string(), command, &self.ctx())
            .await
            .map_err(|e| e.to_string())?;
        Ok(outcome.receipt.is_some())
    }

    async fn erasure(&self) -> Result<Erasure, String> {
        self.commands
            .erasures
            .load(&self.erasure_id.to_string())
            .await
            .map_err(|e| e.to_string())
    }

    /// Begins on the tenant stream (refused during the grace period) and starts the
    /// process's stream.
    async fn begin(&self, pending: PendingErasure) -> Result<(), String> {
        let begin = TenantCommand::BeginErasure {
            erasure_id: self.erasure_id,
            at: self.now(),
        };
        self.commands
            .tenants
            .execute(&self.tenant_id.to_string(), begin, &self.ctx())
            .await
            .map_err(|e| e.to_string())?;
        self.record(ErasureCommand::Start {
            tenant_id: self.tenant_id,
            requested_by: pending.requested_by.0,
            requested_at: pending.requested_at,
            at: self.now(),
        })
        .await?;
        Ok(())
    }

    /// Plans a step for every stream the business owns in the log and for every external
    /// cleanup, then the final two. Returns whether any step was new.
    async fn plan(&self) -> Result<bool, String> {
        let mut steps = owned_streams(self.commands, self.tenant_id)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(owner) = self.owner {
            steps.push(Step::new(StepKind::CloseUser, owner.0));
        }
        steps.extend(
            CleanupTarget::ALL
                .into_iter()
                .map(|target| Step::new(StepKind::ExternalCleanup, target.as_str())),
        );
        // Stable order: by kind (channels first, the business and its key last), then by
        // the stream's first appearance in the log.
        steps.sort_by_key(|step| step.kind);
        steps.push(Step::new(StepKind::EraseTenant, self.tenant_id));
        steps.push(Step::new(StepKind::DestroyDataKey, self.tenant_id));
        self.record(ErasureCommand::PlanSteps { steps }).await
    }

    /// Runs every pending step but the final ones whose retry is due. Returns whether
    /// every one of them has an outcome now.
    async fn run_pending(&mut self) -> Result<bool, String> {
        let erasure = self.erasure().await?;
        let now = self.now();
        let due: Vec<Step> = erasure
            .pending()
            .filter(|step| !step.kind.is_final())
            .filter(|step| erasure.retry_at(step).is_none_or(|at| at <= now))
            .cloned()
            .collect();
        for step in due {
            let result = self.execute(&step).await;
            self.steps_run += 1;
            if self.crash_after == Some(self.steps_run) {
                return Err("injected crash".into());
            }
            match result {
                Ok(outcome) => {
                    self.record(ErasureCommand::CompleteStep {
                        step,
                        outcome,
                        at: self.now(),
                    })
                    .await?;
                }
                Err(StepFailure::Outside(error)) => {
                    tracing::warn!(erasure_id = %self.erasure_id, step = %step.key(), %error, "erasure step failed");
                    self.record(ErasureCommand::RecordStepFailure {
                        step,
                        error,
                        at: self.now(),
                    })
                    .await?;
                }
                Err(StepFailure::Store(error)) => return Err(error),
            }
        }
        let erasure = self.erasure().await?;
        let all_done = erasure.pending().all(|step| step.kind.is_final());
        Ok(all_done)
    }

    /// The business is erased, its key destroyed, its commands' fingerprints and its
    /// snapshots forgotten, the process completed.
    async fn finish(&self) -> Result<(), String> {
        let erase = Step::new(StepKind::EraseTenant, self.tenant_id);
        let command = TenantCommand::EraseTenant {
            erasure_id: self.erasure_id,
            at: self.now(),
        };
        let erased = self
            .commands
            .tenants
            .execute(
                &self.tenant_id.to_string(),
                command,
                &self.step_ctx(&erase, "erase"),
            )
            .await
            .map_err(|e| e.to_string())?;
        self.complete(erase, done_if(erased.receipt.is_some()))
            .await?;
        let destroy = Step::new(StepKind::DestroyDataKey, self.tenant_id);
        self.commands
            .vault
            .destroy_key(self.tenant_id.0)
            .await
            .map_err(|e| e.to_string())?;
        forget_tenant(
            self.commands.store.pool(),
            self.tenant_id.0,
            self.erasure_id,
        )
        .await
        .map_err(|e| e.to_string())?;
        self.complete(destroy, StepOutcome::Done).await?;
        self.record(ErasureCommand::Complete { at: self.now() })
            .await?;
        Ok(())
    }

    async fn complete(&self, step: Step, outcome: StepOutcome) -> Result<(), String> {
        self.record(ErasureCommand::CompleteStep {
            step,
            outcome,
            at: self.now(),
        })
        .await
        .map(|_| ())
    }

    /// Does one step's work.
    async fn execute(&self, step: &Step) -> Result<StepOutcome, StepFailure> {
        let commands = self.commands;
        let at = self.now();
        let subject = step.subject.as_str();
        let ctx = |part| self.step_ctx(step, part);
        match step.kind {
            StepKind::RemoveChannel => self.remove_channel(step, subject).await,
            StepKind::CancelSubscription => self.cancel_subscription(step, subject).await,
            StepKind::DisconnectConnectAccount => self.disconnect(step, subject).await,
            StepKind::CloseOrder => {
                compensate(
                    &commands.orders,
                    subject,
                    OrderCommand::CloseOrder { at },
                    &ctx("close"),
                )
                .await
            }
            StepKind::CloseLoyaltyAccount => {
                let command = LoyaltyCommand::CloseAccount { at };
                compensate(&commands.loyalty_accounts, subject, command, &ctx("close")).await
            }
            StepKind::RevokeTrackingToken => {
                let command = DeliveryCommand::RevokeTrackingToken { at };
                compensate(&commands.deliveries, subject, command, &ctx("revoke")).await
            }
            StepKind::CloseConversation => {
                let command = ConversationCommand::Resolve { at };
                compensate(&commands.conversations, subject, command, &ctx("close")).await
            }
            StepKind::CloseCompany => {
                let command = CompanyCommand::CloseCompany { at };
                compensate(&commands.companies, subject, command, &ctx("close")).await
            }
            StepKind::CloseUser => {
                let command = UserCommand::CloseAccount { at };
                compensate(&commands.users, subject, command, &ctx("close")).await
            }
            StepKind::ExternalCleanup => {
                let Some(target) = CleanupTarget::parse(subject) else {
                    return Ok(manual(format!("unknown cleanup target {subject}")));
                };
                match commands
                    .cleanups
                    .erase(target, self.tenant_id.0, self.erasure_id)
                    .await
                {
                    Ok(CleanupCall::Done) => Ok(StepOutcome::Done),
                    Ok(CleanupCall::NotConfigured) => Ok(StepOutcome::NotConfigured),
                    Err(error) => Err(StepFailure::Outside(error)),
                }
            }
            StepKind::EraseTenant | StepKind::DestroyDataKey => {
                unreachable!("final steps run in finish")
            }
        }
    }

    /// Ends the connection at its provider (WAHA session logged out and deleted, Telegram
    /// or Viber webhook removed), then records its removal (slot and Meta app given back)
    /// and revokes its credentials.
    async fn remove_channel(&self, step: &Step, subject: &str) -> Result<StepOutcome, StepFailure> {
        let commands = self.commands;
        let channel = commands.channels.load(subject).await?;
        if !channel.exists() {
            return Ok(StepOutcome::NothingToDo);
        }
        match channel.platform() {
            Platform::Whatsapp => {
                let session = x8_domain::channel::whatsapp::session_name(channel.id());
                for result in [
                    commands.waha.logout(&session).await,
                    commands.waha.delete(&session).await,
                ] {
                    match result {
                        Ok(()) => {}
                        // Gone already (a retry, or removed before): nothing to end.
                        Err(crate::waha::WahaError::Status { status: 404, .. }) => {}
                        Err(error) => return Err(StepFailure::Outside(error.to_string())),
                    }
                }
            }
            _ => {
                let credentials = crate::channels::credentials(commands, &channel)
                    .await
                    .map_err(|e| StepFailure::Store(e.to_string()))?;
                if let Some(credentials) = credentials {
                    commands
                        .senders
                        .unregister_webhook(&channel, &credentials)
                        .await
                        .map_err(StepFailure::Outside)?;
                }
            }
        }
        crate::channels::record_removal(commands, &channel, &self.step_ctx(step, "remove"))
            .await
            .map_err(|e: CommandError<ChannelOpError>| StepFailure::Store(e.to_string()))?;
        compensate(
            &commands.channels,
            subject,
            ChannelCommand::RevokeCredentials,
            &self.step_ctx(step, "revoke"),
        )
        .await?;
        Ok(StepOutcome::Done)
    }

    /// Cancels the Stripe subscription at once and records Stripe's answer.
    async fn cancel_subscription(
        &self,
        step: &Step,
        subject: &str,
    ) -> Result<StepOutcome, StepFailure> {
        let commands = self.commands;
        let subscription = commands.subscriptions.load(subject).await?;
        let Some(current) = subscription.current() else {
            return Ok(StepOutcome::NothingToDo);
        };
        if matches!(
            current.status,
            StripeStatus::Canceled | StripeStatus::IncompleteExpired
        ) {
            return Ok(StepOutcome::NothingToDo);
        }
        let object = match commands
            .billing
            .api
            .cancel_subscription(&current.subscription_id)
            .await
        {
            Ok(object) => object,
            Err(crate::stripe::StripeError::Status { status: 404, .. }) => {
                return Ok(StepOutcome::NothingToDo)
            }
            Err(error) => return Err(StepFailure::Outside(error.to_string())),
        };
        let cancelled = crate::stripe::event::subscription(&object, &commands.billing.prices)
            .map_err(|e| StepFailure::Outside(format!("Stripe's answer: {e}")))?;
        let command = SubscriptionCommand::RecordSubscription {
            tenant_id: self.tenant_id,
            subscription: cancelled,
            previous_price_id: None,
            observed_at: self.now(),
        };
        compensate(
            &commands.subscriptions,
            subject,
            command,
            &self.step_ctx(step, "record"),
        )
        .await?;
        Ok(StepOutcome::Done)
    }

    /// Deletes the Connect account X8 created (an account an ADMIN linked belongs to the
    /// business: it is only unlinked) and records the disconnection.
    async fn disconnect(&self, step: &Step, subject: &str) -> Result<StepOutcome, StepFailure> {
        let commands = self.commands;
        let account = commands.connect_accounts.load(subject).await?;
        let Some(account_id) = account.account_id() else {
            return Ok(StepOutcome::NothingToDo);
        };
        if account.origin() == Some(LinkOrigin::Onboarding) {
            match commands.billing.api.delete_account(account_id).await {
                Ok(()) | Err(crate::stripe::StripeError::Status { status: 404, .. }) => {}
                Err(error) => return Err(StepFailure::Outside(error.to_string())),
            }
        }
        compensate(
            &commands.connect_accounts,
            subject,
            ConnectCommand::Disconnect,
            &self.step_ctx(step, "disconnect"),
        )
        .await
    }
}

/// Runs a compensating command: `Done` when it appended (or had appended, replayed),
/// `NothingToDo` when the stream was already in that state; a refusal is left for manual
/// action with its reason.
async fn compensate<A>(
    bus: &CommandBus<A>,
    aggregate_id: &str,
    command: A::Command,
    ctx: &CommandContext,
) -> Result<StepOutcome, StepFailure>
where
    A: Aggregate<Services = ()> + 'static,
    A::Command: NamedCommand + Clone + Send + Sync,
    A::Error: Send,
{
    match bus.execute(aggregate_id, command, ctx).await {
        Ok(outcome) => Ok(done_if(outcome.receipt.is_some())),
        Err(CommandError::Rejected(refusal)) => Ok(manual(refusal.to_string())),
        Err(other) => Err(other.into()),
    }
}

fn done_if(appended: bool) -> StepOutcome {
    if appended {
        StepOutcome::Done
    } else {
        StepOutcome::NothingToDo
    }
}

fn manual(reason: String) -> StepOutcome {
    StepOutcome::ManualActionRequired {
        attempts: 1,
        last_error: reason,
    }
}

/// The compensating steps of every stream the business owns in the log (its events carry
/// its tenant id), in the order the streams first appeared.
async fn owned_streams(commands: &Commands, tenant_id: TenantId) -> Result<Vec<Step>, sqlx::Error> {
    // language=PostgreSQL
    let streams: Vec<(String, String)> = sqlx::query_as(
        "select aggregate_type, aggregate_id from events where tenant_id = $1
         group by aggregate_type, aggregate_id
         order by min(global_position)",
    )
    .bind(tenant_id.0)
    .fetch_all(commands.store.pool())
    .await?;
    Ok(streams
        .into_iter()
        .filter_map(|(aggregate_type, aggregate_id)| {
            compensation(&aggregate_type).map(|kind| Step::new(kind, aggregate_id))
        })
        .collect())
}

/// The step that compensates a stream of `aggregate_type`; `None` for streams whose
/// personal fields go with the data key and that hold nothing to close (couriers,
/// programs, services, referral codes, provider links), and for the business itself.
fn compensation(aggregate_type: &str) -> Option<StepKind> {
    Some(match aggregate_type {
        "channel" => StepKind::RemoveChannel,
        "subscription" => StepKind::CancelSubscription,
        "connect_account" => StepKind::DisconnectConnectAccount,
        "order" => StepKind::CloseOrder,
        "loyalty_account" => StepKind::CloseLoyaltyAccount,
        "delivery" => StepKind::RevokeTrackingToken,
        "conversation" => StepKind::CloseConversation,
        "company" => StepKind::CloseCompany,
        "user" => StepKind::CloseUser,
        _ => return None,
    })
}
