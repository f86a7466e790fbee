//! The loyalty program's commands (DOMAIN.md "Loyalty"): a business's settings and
//! promotions, its customers' accounts (open with an optional referral code, accrue,
//! redeem, refund, expire, NPS) and the services it submits for moderation.
//!
//! - An account's id is derived from the business and the customer reference
//!   ([`account_id`]), so one customer has one account per business, also when two
//!   registrations race.
//! - Referral codes are claimed in their own streams (`referral_code`, see
//!   [`x8_domain::loyalty::referral`]): a code always names exactly one account.
//! - Settings are read from the business's program stream when a command runs; they never
//!   rewrite past accruals.

use crate::bus::NamedCommand;
use crate::context::CommandContext;
use crate::error::CommandError;
use crate::vault::{ScopeKey, VaultError};
use crate::Commands;
use uuid::Uuid;
use x8_domain::billing::Money;
use x8_domain::loyalty::account::parse_customer_ref;
use x8_domain::loyalty::account::Reversal;
use x8_domain::loyalty::program::{ProgramCommand, ProgramError, Promotion};
use x8_domain::loyalty::referral::{self, ReferralCodeCommand, ReferralCodeError};
use x8_domain::loyalty::service::{ServiceCommand, ServiceError};
use x8_domain::loyalty::{LoyaltyAccount, LoyaltyCommand, LoyaltyError, LoyaltySettings};
use x8_domain::TenantId;

/// Candidate referral codes tried before giving up (each collides with probability about
/// accounts / 10^12).
const CODE_ATTEMPTS: u32 = 8;

/// Why a loyalty operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum LoyaltyOpError {
    /// The account refused it.
    #[error(transparent)]
    Account(#[from] LoyaltyError),
    /// The program refused it (settings, promotions).
    #[error(transparent)]
    Program(#[from] ProgramError),
    /// The moderation refused it.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// No account of this business has that referral code.
    #[error("no account of this business has referral code {0:?}")]
    UnknownReferralCode(String),
    /// The customer has an account already, opened without this referral code: a customer
    /// is referred at most once, when registering.
    #[error("the customer is registered already")]
    AlreadyRegistered {
        /// The existing account.
        account_id: Uuid,
    },
    /// Every candidate referral code was taken (practically impossible).
    #[error("no free referral code for the account")]
    NoFreeReferralCode,
}

impl NamedCommand for LoyaltyCommand {
    fn command_name(&self) -> &'static str {
        self.name()
    }
    fn tenant_id(&self, _aggregate_id: &str) -> Option<Uuid> {
        match self {
            Self::OpenAccount { tenant_id, .. } => Some(tenant_id.0),
            _ => None,
        }
    }
}

impl NamedCommand for ProgramCommand {
    fn command_name(&self) -> &'static str {
        self.name()
    }
    fn tenant_id(&self, aggregate_id: &str) -> Option<Uuid> {
        aggregate_id.parse().ok()
    }
}

impl NamedCommand for ServiceCommand {
    fn command_name(&self) -> &'static str {
        self.name()
    }
    fn tenant_id(&self, _aggregate_id: &str) -> Option<Uuid> {
        match self {
            Self::SubmitService { tenant_id, .. } => Some(tenant_id.0),
            _ => None,
        }
    }
}

impl NamedCommand for ReferralCodeCommand {
    fn command_name(&self) -> &'static str {
        "ClaimReferralCode"
    }
    fn tenant_id(&self, _aggregate_id: &str) -> Option<Uuid> {
        let Self::ClaimReferralCode { tenant_id, .. } = self;
        Some(tenant_id.0)
    }
}

/// The vault purpose of an account's sealed customer reference.
pub fn customer_ref_purpose(account_id: Uuid) -> String {
    x8_domain::Sealed::purpose("loyalty_account", account_id, "customer_ref")
}

/// The account of customer `customer_ref` (validated) at the business whose data key is
/// `key`: a blind index of the reference, so the id reveals nothing about the customer and
/// cannot be recomputed once the business's key is destroyed.
///
/// # Errors
/// See [`ScopeKey::blind_index`].
pub fn account_id(key: &ScopeKey, customer_ref: &str) -> Result<Uuid, VaultError> {
    key.blind_index("loyalty_account:customer_ref", customer_ref.as_bytes())
}

/// A business's loyalty settings now (the defaults until it configures them).
///
/// # Errors
/// [`CommandError::Infrastructure`].
pub async fn settings(
    commands: &Commands,
    tenant_id: TenantId,
) -> Result<LoyaltySettings, CommandError<LoyaltyOpError>> {
    let program = commands
        .loyalty_programs
        .load(&tenant_id.to_string())
        .await
        .map_err(CommandError::unrejected)?;
    Ok(program.settings())
}

/// Runs a program command (settings, promotions) on the business's program. Returns the
/// last position.
///
/// # Errors
/// `Program(InvalidSettings | InvalidPromotion | PromotionExists | PromotionNotFound)`;
/// see [`crate::CommandBus::execute`].
pub async fn change_program(
    commands: &Commands,
    tenant_id: TenantId,
    command: ProgramCommand,
    ctx: &CommandContext,
) -> Result<i64, CommandError<LoyaltyOpError>> {
    let outcome = commands
        .loyalty_programs
        .execute(
            &tenant_id.to_string(),
            command,
            &ctx.clone().for_tenant(tenant_id.0),
        )
        .await
        .map_err(|e| e.map_rejected(LoyaltyOpError::Program))?;
    Ok(outcome.position())
}

/// Creates a promotion; its id is new. Returns `(promotion_id, position)`.
///
/// # Errors
/// As [`change_program`].
pub async fn create_promotion(
    commands: &Commands,
    tenant_id: TenantId,
    mut promotion: Promotion,
    ctx: &CommandContext,
) -> Result<(Uuid, i64), CommandError<LoyaltyOpError>> {
    let ctx = ctx.clone().fingerprinted(&[
        "CreatePromotion",
        &tenant_id.to_string(),
        &promotion.title,
        &promotion.valid_from.to_rfc3339(),
        &promotion.valid_until.to_rfc3339(),
        &format!("{:?}", promotion.per_customer_limit),
    ]);
    // A retry with the same idempotency key gets the same id.
    promotion.promotion_id = Uuid::new_v5(&ctx.command_id, b"promotion");
    let promotion_id = promotion.promotion_id;
    let command = ProgramCommand::CreatePromotion {
        tenant_id,
        promotion,
    };
    let position = change_program(commands, tenant_id, command, &ctx).await?;
    Ok((promotion_id, position))
}

/// An account as a request sees it after opening it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedAccount {
    /// The account.
    pub account_id: Uuid,
    /// Its referral code.
    pub referral_code: String,
    /// Its balance (points).
    pub balance: i64,
    /// Whether this request opened it (`false`: it existed, e.g. a retried registration).
    pub created: bool,
    /// The last position the request appended (0 if none).
    pub position: i64,
}

/// Opens the account of customer `customer_ref` at business `tenant_id`, optionally
/// referred by the account whose code is `referral_code`: the welcome bonus, the referred
/// customer's reward and the referrer's reward are each granted once.
///
/// Registering again is safe: with no code or with the code the account was opened with,
/// the existing account is returned (and a referrer reward a crash left out is granted);
/// with another code it is refused, since a customer is referred at most once.
///
/// # Errors
/// `UnknownReferralCode`, `Account(SelfReferral | InvalidReference)`, `AlreadyRegistered`;
/// see [`crate::CommandBus::execute`].
pub async fn open_account(
    commands: &Commands,
    tenant_id: TenantId,
    customer_ref: &str,
    referral_code: Option<&str>,
    ctx: &CommandContext,
) -> Result<OpenedAccount, CommandError<LoyaltyOpError>> {
    let customer_ref = parse_customer_ref(customer_ref)
        .map_err(|e| CommandError::Rejected(LoyaltyOpError::Account(e)))?;
    let erased = |e: VaultError| e.refusal(LoyaltyOpError::Account(LoyaltyError::Closed));
    let key = commands
        .vault
        .scope_key(tenant_id.0)
        .await
        .map_err(erased)?;
    let account_id = account_id(&key, &customer_ref).map_err(erased)?;
    let stream = account_id.to_string();
    let ctx = ctx.clone().for_tenant(tenant_id.0).fingerprinted(&[
        "OpenLoyaltyAccount",
        &tenant_id.to_string(),
        &customer_ref,
        referral_code.unwrap_or_default(),
    ]);
    let referrer = match referral_code {
        Some(code) => Some(referrer(commands, tenant_id, code).await?),
        None => None,
    };
    if referrer == Some(account_id) {
        return Err(CommandError::Rejected(LoyaltyError::SelfReferral.into()));
    }
    let settings = settings(commands, tenant_id).await?;
    let code = claim_referral_code(commands, tenant_id, account_id, &ctx).await?;
    let open = LoyaltyCommand::OpenAccount {
        account_id,
        tenant_id,
        customer_ref: key
            .seal(&customer_ref_purpose(account_id), customer_ref.as_bytes())
            .map_err(erased)?,
        referral_code: code,
        referred_by: referrer,
        settings,
        at: commands.clock.now(),
    };
    let summary =
        |a: &LoyaltyAccount| (a.referral_code().to_string(), a.balance(), a.referred_by());
    let (mut position, created, (referral_code, balance, referred_by)) = match commands
        .loyalty_accounts
        .execute_and_read(&stream, open, &ctx.step("open"), summary)
        .await
    {
        Ok((outcome, summary)) => (outcome.position(), !outcome.replayed, summary),
        Err(CommandError::Rejected(LoyaltyError::AlreadyOpen)) => {
            let summary = commands
                .loyalty_accounts
                .inspect(&stream, summary)
                .await
                .map_err(CommandError::unrejected)?;
            if referrer.is_some() && referrer != summary.2 {
                return Err(CommandError::Rejected(LoyaltyOpError::AlreadyRegistered {
                    account_id,
                }));
            }
            (0, false, summary)
        }
        Err(e) => return Err(e.map_rejected(LoyaltyOpError::Account)),
    };
    if let Some(referrer) = referred_by {
        let reward = LoyaltyCommand::RewardReferral {
            referred_account: account_id,
            points: settings.referrer_reward_points,
            expiry_days: settings.expiry_days,
            at: commands.clock.now(),
        };
        let outcome = commands
            .loyalty_accounts
            .execute(&referrer.to_string(), reward, &ctx.step("referrer-reward"))
            .await
            .map_err(|e| e.map_rejected(LoyaltyOpError::Account))?;
        position = position.max(outcome.position());
    }
    Ok(OpenedAccount {
        account_id,
        referral_code,
        balance,
        created,
        position,
    })
}

/// The account whose code is `raw` (as typed: case and surrounding spaces do not matter).
async fn referrer(
    commands: &Commands,
    tenant_id: TenantId,
    raw: &str,
) -> Result<Uuid, CommandError<LoyaltyOpError>> {
    let unknown = || CommandError::Rejected(LoyaltyOpError::UnknownReferralCode(raw.to_string()));
    let code = referral::normalise(raw).ok_or_else(unknown)?;
    commands
        .referral_codes
        .load(&referral::stream_id(tenant_id, &code))
        .await
        .map_err(CommandError::unrejected)?
        .account_id()
        .ok_or_else(unknown)
}

/// Claims the account's first free candidate code (the same one on every retry).
async fn claim_referral_code(
    commands: &Commands,
    tenant_id: TenantId,
    account_id: Uuid,
    ctx: &CommandContext,
) -> Result<String, CommandError<LoyaltyOpError>> {
    for attempt in 0..CODE_ATTEMPTS {
        let code = referral::candidate(account_id, attempt);
        let claim = ReferralCodeCommand::ClaimReferralCode {
            tenant_id,
            code: code.clone(),
            account_id,
        };
        match commands
            .referral_codes
            .execute(
                &referral::stream_id(tenant_id, &code),
                claim,
                &ctx.step(&format!("referral-code-{attempt}")),
            )
            .await
        {
            Ok(_) => return Ok(code),
            Err(CommandError::Rejected(ReferralCodeError::Taken)) => continue,
            Err(e) => return Err(e.unrejected()),
        }
    }
    Err(CommandError::Rejected(LoyaltyOpError::NoFreeReferralCode))
}

/// What a purchase, redemption or refund left on the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountChange {
    /// Points this operation added (a purchase) or removed (a redemption, a refund's
    /// reversal): of the first execution when the reference was seen before.
    pub points: i64,
    /// For a refund: the points already spent, which stay spent.
    pub shortfall: i64,
    /// The balance after it (points).
    pub balance: i64,
    /// Whether the reference was seen before (nothing changed now).
    pub replayed: bool,
    /// The position appended (0 when nothing was).
    pub position: i64,
}

/// The business owning account `account_id`, if the account exists (for authorization).
///
/// # Errors
/// [`CommandError::Infrastructure`].
pub async fn account_tenant(
    commands: &Commands,
    account_id: Uuid,
) -> Result<Option<TenantId>, CommandError<LoyaltyOpError>> {
    commands
        .loyalty_accounts
        .inspect(&account_id.to_string(), LoyaltyAccount::tenant_id)
        .await
        .map_err(CommandError::unrejected)
}

/// Accrues cashback on a purchase of `amount` with reference `reference` (idempotent: the
/// same reference and amount again changes nothing), at the business's settings now.
///
/// # Errors
/// `Account(NotFound | InvalidReference | ReferenceReused)`; see
/// [`crate::CommandBus::execute`].
pub async fn accrue(
    commands: &Commands,
    tenant_id: TenantId,
    account_id: Uuid,
    amount: Money,
    reference: &str,
    ctx: &CommandContext,
) -> Result<AccountChange, CommandError<LoyaltyOpError>> {
    let settings = settings(commands, tenant_id).await?;
    let ctx = ctx.clone().for_tenant(tenant_id.0).fingerprinted(&[
        "AccruePurchase",
        &account_id.to_string(),
        reference,
        &amount.amount_minor.to_string(),
        amount.currency.as_str(),
    ]);
    let command = LoyaltyCommand::AccruePurchase {
        reference: reference.to_string(),
        amount,
        settings,
        at: commands.clock.now(),
    };
    let reference = reference.trim().to_string();
    run(commands, account_id, command, &ctx, move |a| {
        (a.accrued(&reference).unwrap_or_default(), 0)
    })
    .await
}

/// Spends `points` under reference `reference` (idempotent). The balance never goes below
/// zero: the account refuses with `InsufficientPoints { balance, requested }`.
///
/// # Errors
/// `Account(NotFound | InsufficientPoints | InvalidPoints | InvalidReference |
/// ReferenceReused)`; see [`crate::CommandBus::execute`].
pub async fn redeem(
    commands: &Commands,
    tenant_id: TenantId,
    account_id: Uuid,
    points: i64,
    reference: &str,
    ctx: &CommandContext,
) -> Result<AccountChange, CommandError<LoyaltyOpError>> {
    let ctx = ctx.clone().for_tenant(tenant_id.0).fingerprinted(&[
        "RedeemPoints",
        &account_id.to_string(),
        reference,
        &points.to_string(),
    ]);
    let command = LoyaltyCommand::Redeem {
        reference: reference.to_string(),
        points,
        at: commands.clock.now(),
    };
    run(commands, account_id, command, &ctx, move |_| (points, 0)).await
}

/// Reverses the accrual of purchase `purchase_reference` (a refund): only what is left of
/// it; the points already spent stay spent and are reported as the shortfall. Refunding
/// twice changes nothing.
///
/// # Errors
/// `Account(NotFound | UnknownPurchase)`; see [`crate::CommandBus::execute`].
pub async fn refund(
    commands: &Commands,
    tenant_id: TenantId,
    account_id: Uuid,
    purchase_reference: &str,
    ctx: &CommandContext,
) -> Result<AccountChange, CommandError<LoyaltyOpError>> {
    let ctx = ctx.clone().for_tenant(tenant_id.0).fingerprinted(&[
        "ReversePurchase",
        &account_id.to_string(),
        purchase_reference,
    ]);
    let command = LoyaltyCommand::ReversePurchase {
        purchase_reference: purchase_reference.to_string(),
        at: commands.clock.now(),
    };
    let reference = purchase_reference.trim().to_string();
    run(commands, account_id, command, &ctx, move |a| {
        let Reversal {
            points_reversed,
            shortfall,
        } = a.reversal(&reference).unwrap_or(Reversal {
            points_reversed: 0,
            shortfall: 0,
        });
        (points_reversed, shortfall)
    })
    .await
}

/// Records the customer's NPS rating (0 to 10; the latest counts). Returns the position.
///
/// # Errors
/// `Account(NotFound | InvalidScore)`; see [`crate::CommandBus::execute`].
pub async fn rate(
    commands: &Commands,
    tenant_id: TenantId,
    account_id: Uuid,
    score: u8,
    ctx: &CommandContext,
) -> Result<i64, CommandError<LoyaltyOpError>> {
    let command = LoyaltyCommand::RateNps {
        score,
        at: commands.clock.now(),
    };
    let ctx = ctx.clone().for_tenant(tenant_id.0).fingerprinted(&[
        "RateNps",
        &account_id.to_string(),
        &score.to_string(),
    ]);
    let change = run(commands, account_id, command, &ctx, |_| (0, 0)).await?;
    Ok(change.position)
}

/// Voids the account's points whose expiry passed by now (the `loyalty.expire_points`
/// deadline). Safe to run twice.
///
/// # Errors
/// As [`crate::CommandBus::execute`], as text (the deadline runner records it).
pub async fn expire_points(
    commands: &Commands,
    account_id: Uuid,
    ctx: &CommandContext,
) -> Result<(), String> {
    let command = LoyaltyCommand::ExpirePoints {
        at: commands.clock.now(),
    };
    match commands
        .loyalty_accounts
        .execute(&account_id.to_string(), command, ctx)
        .await
    {
        // Closed by its business's erasure: nothing left to expire.
        Err(CommandError::Rejected(LoyaltyError::Closed)) => Ok(()),
        other => other.map(|_| ()).map_err(|e| e.to_string()),
    }
}

/// Runs an account command and reads `(points, shortfall)` and the balance from the state
/// it left, in the same turn.
async fn run(
    commands: &Commands,
    account_id: Uuid,
    command: LoyaltyCommand,
    ctx: &CommandContext,
    read: impl Fn(&LoyaltyAccount) -> (i64, i64) + Send + Sync + 'static,
) -> Result<AccountChange, CommandError<LoyaltyOpError>> {
    let (outcome, ((points, shortfall), balance)) = commands
        .loyalty_accounts
        .execute_and_read(&account_id.to_string(), command, ctx, move |a| {
            (read(a), a.balance())
        })
        .await
        .map_err(|e| e.map_rejected(LoyaltyOpError::Account))?;
    Ok(AccountChange {
        points,
        shortfall,
        balance,
        replayed: outcome.receipt.is_none() || outcome.replayed,
        position: outcome.position(),
    })
}

/// Submits a service for moderation (or resubmits a rejected one when `service_id` is
/// given). Returns `(service_id, position)`.
///
/// # Errors
/// `Service(WrongStatus | InvalidText)`; see [`crate::CommandBus::execute`].
pub async fn submit_service(
    commands: &Commands,
    tenant_id: TenantId,
    service_id: Option<Uuid>,
    title: &str,
    description: &str,
    ctx: &CommandContext,
) -> Result<(Uuid, i64), CommandError<LoyaltyOpError>> {
    let ctx = ctx.clone().for_tenant(tenant_id.0).fingerprinted(&[
        "SubmitService",
        &tenant_id.to_string(),
        &service_id.map(|id| id.to_string()).unwrap_or_default(),
        title,
        description,
    ]);
    let service_id = service_id.unwrap_or_else(|| Uuid::new_v5(&ctx.command_id, b"service"));
    let command = ServiceCommand::SubmitService {
        service_id,
        tenant_id,
        title: title.to_string(),
        description: description.to_string(),
        at: commands.clock.now(),
    };
    let outcome = commands
        .loyalty_services
        .execute(&service_id.to_string(), command, &ctx)
        .await
        .map_err(|e| e.map_rejected(LoyaltyOpError::Service))?;
    Ok((service_id, outcome.position()))
}

/// An admin's moderation decision: approve (`None`) or reject with a reason. Returns the
/// position.
///
/// # Errors
/// `Service(NotFound | WrongStatus | InvalidText)`; see [`crate::CommandBus::execute`].
pub async fn moderate_service(
    commands: &Commands,
    service_id: Uuid,
    rejection: Option<&str>,
    ctx: &CommandContext,
) -> Result<i64, CommandError<LoyaltyOpError>> {
    let at = commands.clock.now();
    let (command, ctx) = match rejection {
        None => (
            ServiceCommand::ApproveService { at },
            ctx.clone()
                .fingerprinted(&["ApproveService", &service_id.to_string()]),
        ),
        Some(reason) => (
            ServiceCommand::RejectService {
                reason: reason.to_string(),
                at,
            },
            ctx.clone()
                .fingerprinted(&["RejectService", &service_id.to_string(), reason]),
        ),
    };
    let outcome = commands
        .loyalty_services
        .execute(&service_id.to_string(), command, &ctx)
        .await
        .map_err(|e| e.map_rejected(LoyaltyOpError::Service))?;
    Ok(outcome.position())
}
