//! Deliveries (DOMAIN.md "Deliveries"): couriers, deliveries, checkpoints, public tracking
//! tokens. Names, phones and addresses are sealed with the business's data key before they
//! enter an event; the tracking token is handed out once and stored as its SHA-256 only.

use crate::bus::NamedCommand;
use crate::context::CommandContext;
use crate::error::CommandError;
use crate::vault::{ScopeKey, VaultError};
use crate::Commands;
use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::OsRng;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use x8_domain::delivery::{
    Checkpoint, CourierCommand, CourierError, Delivery, DeliveryCommand, DeliveryError,
    DeliveryStatus, Recipient,
};
use x8_domain::{Sealed, TenantId};

/// Why a delivery operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryOpError {
    /// The delivery refused it.
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
    /// The courier refused it.
    #[error(transparent)]
    Courier(#[from] CourierError),
    /// The courier does not exist or belongs to another business.
    #[error("no such courier in this business")]
    UnknownCourier,
    /// The conversation does not exist or belongs to another business.
    #[error("no such conversation in this business")]
    UnknownConversation,
    /// A name, phone or address that is empty or too long.
    #[error("{0} must be 1 to {1} characters")]
    InvalidField(&'static str, usize),
    /// The business was erased: its data key is gone.
    #[error("the business was erased")]
    KeyDestroyed,
}

impl NamedCommand for DeliveryCommand {
    fn command_name(&self) -> &'static str {
        self.name()
    }
    fn tenant_id(&self, _aggregate_id: &str) -> Option<Uuid> {
        match self {
            Self::CreateDelivery { tenant_id, .. } => Some(tenant_id.0),
            _ => None,
        }
    }
}

impl NamedCommand for CourierCommand {
    fn command_name(&self) -> &'static str {
        "RegisterCourier"
    }
    fn tenant_id(&self, _aggregate_id: &str) -> Option<Uuid> {
        let CourierCommand::RegisterCourier { tenant_id, .. } = self;
        Some(tenant_id.0)
    }
}

/// The vault purpose of a courier's field.
pub fn courier_purpose(courier_id: Uuid, field: &str) -> String {
    Sealed::purpose("courier", courier_id, field)
}

/// The vault purpose of a delivery's field.
pub fn delivery_purpose(delivery_id: Uuid, field: &str) -> String {
    Sealed::purpose("delivery", delivery_id, field)
}

/// The SHA-256 (hex) a tracking token is stored and looked up as.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A fresh tracking token: 256 random bits, base64url (43 characters).
fn new_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The id a command creates: the command id when the client gave an idempotency key (so a
/// repeat names the same resource), a fresh one otherwise.
fn new_id(ctx: &CommandContext) -> Uuid {
    if ctx.client_supplied {
        ctx.command_id
    } else {
        Uuid::new_v4()
    }
}

fn field(
    name: &'static str,
    value: &str,
    max: usize,
) -> Result<String, CommandError<DeliveryOpError>> {
    x8_domain::text::trimmed(value, 1, max).ok_or(CommandError::Rejected(
        DeliveryOpError::InvalidField(name, max),
    ))
}

async fn scope_key(
    commands: &Commands,
    tenant: TenantId,
) -> Result<ScopeKey, CommandError<DeliveryOpError>> {
    commands
        .vault
        .scope_key(tenant.0)
        .await
        .map_err(vault_error)
}

/// A courier to register, in plaintext.
#[derive(Debug, Clone)]
pub struct NewCourier {
    /// Full name (1–200 characters); its first word is shown on tracking pages.
    pub name: String,
    /// Phone (1–40 characters).
    pub phone: String,
    /// Zones served (at most 50, each 1–100 characters).
    pub zones: Vec<String>,
}

/// Registers a courier of `company_id`. Returns its id and the position.
///
/// # Errors
/// `InvalidField`, `Courier(InvalidZones)`, `KeyDestroyed`; see
/// [`crate::CommandBus::execute`].
pub async fn register_courier(
    commands: &Commands,
    tenant: TenantId,
    company_id: Uuid,
    courier: NewCourier,
    ctx: &CommandContext,
) -> Result<(Uuid, i64), CommandError<DeliveryOpError>> {
    let name = field("name", &courier.name, 200)?;
    let phone = field("phone", &courier.phone, 40)?;
    let first_name = name.split_whitespace().next().unwrap_or(&name).to_string();
    // The command carries fresh nonces: fingerprint the request, not the command.
    let ctx = &ctx.clone().or_fingerprinted(&[
        "RegisterCourier",
        &company_id.to_string(),
        &name,
        &phone,
        &courier.zones.join("\n"),
    ]);
    let courier_id = new_id(ctx);
    let key = scope_key(commands, tenant).await?;
    let seal = |field: &str, value: &str| {
        key.seal(&courier_purpose(courier_id, field), value.as_bytes())
            .map_err(vault_error)
    };
    let command = CourierCommand::RegisterCourier {
        tenant_id: tenant,
        company_id,
        name: seal("name", &name)?,
        first_name: seal("first_name", &first_name)?,
        phone: seal("phone", &phone)?,
        zones: courier.zones,
    };
    let outcome = commands
        .couriers
        .execute(&courier_id.to_string(), command, ctx)
        .await
        .map_err(|e| e.map_rejected(DeliveryOpError::Courier))?;
    Ok((courier_id, outcome.position()))
}

/// A delivery to create, in plaintext.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// The order it delivers (1–200 characters).
    pub order_reference: String,
    /// The delivery address (1–500 characters).
    pub address: String,
    /// The customer's name.
    pub customer_name: Option<String>,
    /// The customer's phone.
    pub customer_phone: Option<String>,
    /// The customer's conversation, where status changes are announced.
    pub conversation_id: Option<Uuid>,
    /// The first estimate of arrival.
    pub eta: Option<DateTime<Utc>>,
}

/// A created delivery.
#[derive(Debug, Clone)]
pub struct CreatedDelivery {
    /// Its id.
    pub delivery_id: Uuid,
    /// The public tracking token, shown once (`None` when this was a repeated request:
    /// only its hash is kept; reissue one instead).
    pub tracking_token: Option<String>,
    /// The position.
    pub position: i64,
}

/// Creates a delivery of `company_id`, `Pending`, with a fresh tracking token.
///
/// # Errors
/// `InvalidField`, `UnknownConversation`, `Delivery(InvalidText)`, `KeyDestroyed`; see
/// [`crate::CommandBus::execute`].
pub async fn create_delivery(
    commands: &Commands,
    tenant: TenantId,
    company_id: Uuid,
    delivery: NewDelivery,
    ctx: &CommandContext,
) -> Result<CreatedDelivery, CommandError<DeliveryOpError>> {
    let address = field("address", &delivery.address, 500)?;
    if let Some(conversation_id) = delivery.conversation_id {
        let conversation = commands
            .conversations
            .load(&conversation_id.to_string())
            .await
            .map_err(CommandError::unrejected)?;
        if conversation.tenant_id() != Some(tenant) {
            return Err(CommandError::Rejected(DeliveryOpError::UnknownConversation));
        }
    }
    // The command carries fresh nonces and a fresh token: fingerprint the request.
    let eta = delivery.eta.map(|at| at.to_rfc3339()).unwrap_or_default();
    let conversation = delivery
        .conversation_id
        .map(|id| id.to_string())
        .unwrap_or_default();
    let ctx = &ctx.clone().or_fingerprinted(&[
        "CreateDelivery",
        &company_id.to_string(),
        &delivery.order_reference,
        &address,
        delivery.customer_name.as_deref().unwrap_or_default(),
        delivery.customer_phone.as_deref().unwrap_or_default(),
        &conversation,
        &eta,
    ]);
    let delivery_id = new_id(ctx);
    let key = scope_key(commands, tenant).await?;
    let seal = |field: &str, value: &str| {
        key.seal(&delivery_purpose(delivery_id, field), value.as_bytes())
            .map_err(vault_error)
    };
    let optional = |name: &'static str, value: &Option<String>| {
        value
            .as_deref()
            .map(|v| field(name, v, 200).and_then(|v| seal(name, &v)))
            .transpose()
    };
    let token = new_token();
    let command = DeliveryCommand::CreateDelivery {
        tenant_id: tenant,
        company_id,
        order_reference: delivery.order_reference,
        address: seal("address", &address)?,
        recipient: Recipient {
            name: optional("customer_name", &delivery.customer_name)?,
            phone: optional("customer_phone", &delivery.customer_phone)?,
        },
        conversation_id: delivery.conversation_id,
        eta: delivery.eta,
        tracking_token_hash: token_hash(&token),
        at: commands.clock.now(),
    };
    let outcome = commands
        .deliveries
        .execute(&delivery_id.to_string(), command, ctx)
        .await
        .map_err(|e| e.map_rejected(DeliveryOpError::Delivery))?;
    Ok(CreatedDelivery {
        delivery_id,
        tracking_token: (!outcome.replayed).then_some(token),
        position: outcome.position(),
    })
}

/// Assigns `courier_id` (a courier of the same business) to the delivery.
///
/// # Errors
/// `UnknownCourier`, `Delivery(NotFound)`; see [`crate::CommandBus::execute`].
pub async fn assign_courier(
    commands: &Commands,
    tenant: TenantId,
    delivery_id: Uuid,
    courier_id: Uuid,
    ctx: &CommandContext,
) -> Result<i64, CommandError<DeliveryOpError>> {
    let courier = commands
        .couriers
        .load(&courier_id.to_string())
        .await
        .map_err(CommandError::unrejected)?;
    if courier.tenant_id() != Some(tenant) {
        return Err(CommandError::Rejected(DeliveryOpError::UnknownCourier));
    }
    let command = DeliveryCommand::AssignCourier {
        courier_id,
        at: commands.clock.now(),
    };
    execute(commands, delivery_id, command, ctx).await
}

/// Records a checkpoint (a status change, a courier location, a message). Returns the
/// position and the delivery's status after it.
///
/// # Errors
/// `Delivery(IllegalTransition | InvalidLocation | InvalidText | EmptyCheckpoint)`; see
/// [`crate::CommandBus::execute`].
pub async fn record_checkpoint(
    commands: &Commands,
    delivery_id: Uuid,
    checkpoint: Checkpoint,
    ctx: &CommandContext,
) -> Result<(i64, DeliveryStatus), CommandError<DeliveryOpError>> {
    let command = DeliveryCommand::RecordCheckpoint {
        checkpoint,
        at: commands.clock.now(),
    };
    let (outcome, status) = commands
        .deliveries
        .execute_and_read(&delivery_id.to_string(), command, ctx, Delivery::status)
        .await
        .map_err(|e| e.map_rejected(DeliveryOpError::Delivery))?;
    Ok((outcome.position(), status))
}

/// Revokes the delivery's tracking token and issues a new one, returned once.
///
/// # Errors
/// `Delivery(NotFound)`; see [`crate::CommandBus::execute`].
pub async fn reissue_token(
    commands: &Commands,
    delivery_id: Uuid,
    ctx: &CommandContext,
) -> Result<(Option<String>, i64), CommandError<DeliveryOpError>> {
    let token = new_token();
    let command = DeliveryCommand::ReissueTrackingToken {
        tracking_token_hash: token_hash(&token),
        at: commands.clock.now(),
    };
    let outcome = commands
        .deliveries
        .execute(&delivery_id.to_string(), command, ctx)
        .await
        .map_err(|e| e.map_rejected(DeliveryOpError::Delivery))?;
    Ok(((!outcome.replayed).then_some(token), outcome.position()))
}

/// Revokes the delivery's tracking token: its page answers 404 from then on.
///
/// # Errors
/// `Delivery(NotFound)`; see [`crate::CommandBus::execute`].
pub async fn revoke_token(
    commands: &Commands,
    delivery_id: Uuid,
    ctx: &CommandContext,
) -> Result<i64, CommandError<DeliveryOpError>> {
    let command = DeliveryCommand::RevokeTrackingToken {
        at: commands.clock.now(),
    };
    execute(commands, delivery_id, command, ctx).await
}

async fn execute(
    commands: &Commands,
    delivery_id: Uuid,
    command: DeliveryCommand,
    ctx: &CommandContext,
) -> Result<i64, CommandError<DeliveryOpError>> {
    let outcome = commands
        .deliveries
        .execute(&delivery_id.to_string(), command, ctx)
        .await
        .map_err(|e| e.map_rejected(DeliveryOpError::Delivery))?;
    Ok(outcome.position())
}

/// Tells the delivery's customer, through its conversation, the status it has reached (a
/// `TYPE3` message), once per status; nothing without a conversation or when that status
/// was announced. Run by the deadline runner (`delivery.notify_customer`): the message id
/// derives from the deadline, so a re-run after a crash records and sends it once. A
/// provider failure stays on the conversation as a failed message (retry it there) and
/// the status counts as announced.
///
/// # Errors
/// A message for the deadline runner, which retries with back-off.
pub async fn notify_customer(
    commands: &Commands,
    delivery_id: Uuid,
    ctx: &CommandContext,
) -> Result<(), String> {
    let delivery = commands
        .deliveries
        .load(&delivery_id.to_string())
        .await
        .map_err(|e| e.to_string())?;
    let status = delivery.status();
    let Some(conversation_id) = delivery.conversation_id() else {
        return Ok(());
    };
    if let Some(tenant_id) = delivery.tenant_id() {
        if crate::tenants::is_erased(commands, tenant_id).await? {
            return Ok(());
        }
    }
    if delivery.notified(status) {
        return Ok(());
    }
    let conversation = commands
        .conversations
        .load(&conversation_id.to_string())
        .await
        .map_err(|e| e.to_string())?;
    if conversation.tenant_id() != delivery.tenant_id() {
        tracing::warn!(%delivery_id, %conversation_id, "delivery names no conversation of its business");
        return Ok(());
    }
    let reply = crate::sending::Reply {
        text: status.customer_message().to_string(),
        message_type: x8_domain::conversation::MessageType::Type3,
        rich_media: false,
    };
    let step = ctx.step(&format!("notify:{}", status.as_str()));
    let report = crate::sending::send(commands, conversation_id, reply, &step)
        .await
        .map_err(|e| e.to_string())?;
    let command = DeliveryCommand::RecordNotification {
        status,
        message_id: report.message_id,
        at: commands.clock.now(),
    };
    execute(commands, delivery_id, command, &step.step("recorded"))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Opens a value sealed for a courier or a delivery of `tenant`.
///
/// # Errors
/// `KeyDestroyed`; [`CommandError::Infrastructure`] for a corrupt value.
pub async fn open(
    commands: &Commands,
    tenant: TenantId,
    purpose: &str,
    sealed: &Sealed,
) -> Result<String, CommandError<DeliveryOpError>> {
    let plaintext = commands
        .vault
        .open(tenant.0, purpose, sealed)
        .await
        .map_err(vault_error)?;
    Ok(String::from_utf8_lossy(&plaintext).into_owned())
}

fn vault_error(err: VaultError) -> CommandError<DeliveryOpError> {
    err.refusal(DeliveryOpError::KeyDestroyed)
}
