//! Channel connections: connecting (a tenant slot, a Meta app when the platform needs
//! one, then the connection stream), removing (the connection, then its slot and app back),
//! and the Meta app pool.
//!
//! Each step is its own command with an id derived from the request's (`ctx.step`), so a
//! request retried with the same `Idempotency-Key` replays the steps that ran and finishes
//! the ones that did not. A connect refused after its slot was reserved (no free Meta app)
//! gives the slot back before answering.

use crate::bus::NamedCommand;
use crate::context::CommandContext;
use crate::error::CommandError;
use crate::Commands;
use sha2::Digest as _;
use uuid::Uuid;
use x8_domain::channel::{Channel, ChannelCommand, ChannelError, ChannelStatus, Platform};
use x8_domain::company::CompanyError;
use x8_domain::meta_apps::{MetaAppCommand, MetaAppError, POOL_ID};
use x8_domain::tenant::{TenantCommand, TenantError};
use x8_domain::TenantId;

impl NamedCommand for ChannelCommand {
    fn command_name(&self) -> &'static str {
        self.name()
    }
    fn tenant_id(&self, _aggregate_id: &str) -> Option<Uuid> {
        match self {
            Self::CreateChannel { tenant_id, .. } => Some(tenant_id.0),
            _ => None,
        }
    }
}

impl NamedCommand for MetaAppCommand {
    fn command_name(&self) -> &'static str {
        self.name()
    }
    fn tenant_id(&self, _aggregate_id: &str) -> Option<Uuid> {
        None
    }
}

/// Why a channel operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelOpError {
    /// Refused by the tenant (plan limit, restricted, suspended).
    #[error(transparent)]
    Tenant(#[from] TenantError),
    /// Refused by the connection.
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// The company does not exist.
    #[error(transparent)]
    Company(#[from] CompanyError),
    /// Refused by the Meta app pool (empty).
    #[error(transparent)]
    MetaApp(#[from] MetaAppError),
    /// The tenant's data key was destroyed (erased): its sealed fields are gone for good.
    #[error("the business's data key was destroyed")]
    KeyDestroyed,
}

/// Maps a vault failure: a destroyed key is a refusal, anything else infrastructure.
fn vault_error(err: crate::vault::VaultError) -> CommandError<ChannelOpError> {
    err.refusal(ChannelOpError::KeyDestroyed)
}

/// A new connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectedChannel {
    /// Its id.
    pub channel_id: Uuid,
    /// Its business.
    pub tenant_id: TenantId,
    /// Its status (`DISCONNECTED` until the provider reports).
    pub status: ChannelStatus,
    /// Global position of its last event, for read-your-writes.
    pub position: i64,
}

/// The connection id a connect request creates: derived from the command id, so a retried
/// request (same `Idempotency-Key`) names the same connection.
pub fn channel_id_for(ctx: &CommandContext) -> Uuid {
    Uuid::new_v5(&ctx.command_id, b"channel")
}

/// Connects `platform` to company `company_id`: reserves a slot on the tenant (the plan
/// limit), takes a Meta app for Instagram and Facebook, creates the connection, and for
/// WhatsApp starts its WAHA session (`CONNECTING`, or `ERROR` when WAHA refuses).
///
/// # Errors
/// [`ChannelOpError`] inside [`CommandError::Rejected`]: `Company(NotFound)`,
/// `Tenant(OverChannelLimit | ChannelsRestricted | Suspended)`, `MetaApp(PoolEmpty)`; see
/// also [`crate::CommandBus::execute`].
pub async fn connect_channel(
    commands: &Commands,
    company_id: Uuid,
    platform: Platform,
    ctx: &CommandContext,
) -> Result<ConnectedChannel, CommandError<ChannelOpError>> {
    let company = commands
        .companies
        .load(&company_id.to_string())
        .await
        .map_err(|e| e.map_rejected(ChannelOpError::Company))?;
    if !company.exists() {
        return Err(CommandError::Rejected(CompanyError::NotFound.into()));
    }
    let tenant_id = company.tenant_id();
    let ctx = ctx.clone().for_tenant(tenant_id.0).fingerprinted(&[
        "ConnectChannel",
        &company_id.to_string(),
        platform.as_str(),
    ]);
    let channel_id = channel_id_for(&ctx);
    commands
        .tenants
        .execute(
            &tenant_id.to_string(),
            TenantCommand::ReserveChannelSlot { channel_id },
            &ctx.step("slot"),
        )
        .await
        .map_err(|e| e.map_rejected(ChannelOpError::Tenant))?;
    let mut meta_app_id = None;
    if platform.needs_meta_app() {
        let assigned = commands
            .meta_apps
            .execute(
                POOL_ID,
                MetaAppCommand::AssignApp {
                    channel_id,
                    tenant_id,
                },
                &ctx.step("meta-app"),
            )
            .await;
        if let Err(err) = assigned {
            release_slot(commands, tenant_id, channel_id, &ctx.step("slot-back")).await?;
            return Err(err.map_rejected(ChannelOpError::MetaApp));
        }
        let pool = commands
            .meta_apps
            .load(POOL_ID)
            .await
            .map_err(|e| e.map_rejected(ChannelOpError::MetaApp))?;
        meta_app_id = pool.app_of(channel_id).map(|(app_id, _)| app_id);
    }
    let created = commands
        .channels
        .execute(
            &channel_id.to_string(),
            ChannelCommand::CreateChannel {
                channel_id,
                tenant_id,
                company_id,
                platform,
                meta_app_id,
            },
            &ctx.step("channel"),
        )
        .await
        .map_err(|e| e.map_rejected(ChannelOpError::Channel))?;
    let mut connected = ConnectedChannel {
        channel_id,
        tenant_id,
        status: ChannelStatus::Disconnected,
        position: created.position(),
    };
    if platform == Platform::Whatsapp {
        let channel = commands
            .channels
            .load(&channel_id.to_string())
            .await
            .map_err(|e| e.map_rejected(ChannelOpError::Channel))?;
        // A retried connect finds the session started already and reports its status.
        connected.status = channel.status();
        if channel.status() == ChannelStatus::Disconnected {
            let (status, started) =
                crate::waha::start_session(commands, &channel, &ctx.step("session")).await?;
            connected.status = status;
            connected.position = connected.position.max(started);
        }
    }
    Ok(connected)
}

/// Removes connection `channel_id`, then gives back its tenant slot and its Meta app.
/// Removing a removed connection finishes any step left undone. Returns the global
/// position of the last event appended (0 when nothing changed).
///
/// # Errors
/// `Channel(NotFound)`; see [`crate::CommandBus::execute`].
pub async fn remove_channel(
    commands: &Commands,
    channel: &Channel,
    ctx: &CommandContext,
) -> Result<i64, CommandError<ChannelOpError>> {
    let position = record_removal(commands, channel, ctx).await?;
    if channel.platform() == Platform::Whatsapp && !channel.is_removed() {
        crate::waha::end_session(commands, channel.id()).await;
    }
    Ok(position)
}

/// The removal's records: `RemoveChannel`, the tenant slot and the Meta app given back,
/// without ending the provider's session (the hard delete ends it first and records a
/// failure instead of logging it). Returns the global position of the last event.
///
/// # Errors
/// As [`remove_channel`].
pub(crate) async fn record_removal(
    commands: &Commands,
    channel: &Channel,
    ctx: &CommandContext,
) -> Result<i64, CommandError<ChannelOpError>> {
    let channel_id = channel.id();
    let tenant_id = channel.tenant_id();
    let ctx = ctx.clone().for_tenant(tenant_id.0);
    let removed = commands
        .channels
        .execute(
            &channel_id.to_string(),
            ChannelCommand::RemoveChannel,
            &ctx.step("remove"),
        )
        .await
        .map_err(|e| e.map_rejected(ChannelOpError::Channel))?;
    let mut position = removed.position();
    position =
        position.max(release_slot(commands, tenant_id, channel_id, &ctx.step("slot")).await?);
    if channel.platform().needs_meta_app() {
        let released = commands
            .meta_apps
            .execute(
                POOL_ID,
                MetaAppCommand::ReleaseApp { channel_id },
                &ctx.step("meta-app"),
            )
            .await
            .map_err(|e| e.map_rejected(ChannelOpError::MetaApp))?;
        position = position.max(released.position());
    }
    Ok(position)
}

async fn release_slot(
    commands: &Commands,
    tenant_id: TenantId,
    channel_id: Uuid,
    ctx: &CommandContext,
) -> Result<i64, CommandError<ChannelOpError>> {
    let released = commands
        .tenants
        .execute(
            &tenant_id.to_string(),
            TenantCommand::ReleaseChannelSlot { channel_id },
            ctx,
        )
        .await
        .map_err(|e| e.map_rejected(ChannelOpError::Tenant))?;
    Ok(released.position())
}

/// Executes a command on an existing connection.
///
/// # Errors
/// See [`crate::CommandBus::execute`].
pub async fn execute(
    commands: &Commands,
    channel: &Channel,
    command: ChannelCommand,
    ctx: &CommandContext,
) -> Result<i64, CommandError<ChannelOpError>> {
    let ctx = ctx.clone().for_tenant(channel.tenant_id().0);
    let outcome = commands
        .channels
        .execute(&channel.id().to_string(), command, &ctx)
        .await
        .map_err(|e| e.map_rejected(ChannelOpError::Channel))?;
    Ok(outcome.position())
}

/// The vault purpose of a connection's credentials: bound to the connection, so sealed
/// credentials copied to another connection's stream do not open.
fn credentials_purpose(channel_id: Uuid) -> String {
    format!("channel-credentials:{channel_id}")
}

/// Seals `credentials` (the provider's tokens and keys, as JSON) with the tenant's data
/// key and stores them on the connection. Returns the global position.
///
/// # Errors
/// `Channel(NotFound | Removed)`, `KeyDestroyed`; [`CommandError::Infrastructure`] when
/// the vault fails otherwise.
pub async fn store_credentials(
    commands: &Commands,
    channel: &Channel,
    credentials: &[u8],
    ctx: &CommandContext,
) -> Result<i64, CommandError<ChannelOpError>> {
    let sealed = commands
        .vault
        .seal(
            channel.tenant_id().0,
            &credentials_purpose(channel.id()),
            credentials,
        )
        .await
        .map_err(|e| CommandError::Infrastructure(e.to_string()))?;
    let ctx = ctx.clone().fingerprinted(&[
        "StoreCredentials",
        &channel.id().to_string(),
        &hex::encode(sha2::Sha256::digest(credentials)),
    ]);
    execute(
        commands,
        channel,
        ChannelCommand::StoreCredentials { sealed: sealed.0 },
        &ctx,
    )
    .await
}

/// Records that `viewer` reads the connection's credentials (`CredentialsViewed`, before
/// anything is revealed), then opens them. Returns the plaintext and the position.
///
/// # Errors
/// `Channel(NoCredentials | Removed)`, `KeyDestroyed`; [`CommandError::Infrastructure`]
/// when the vault cannot open them otherwise.
pub async fn view_credentials(
    commands: &Commands,
    channel: &Channel,
    viewer: x8_domain::UserId,
    ctx: &CommandContext,
) -> Result<(zeroize::Zeroizing<Vec<u8>>, i64), CommandError<ChannelOpError>> {
    let position = execute(
        commands,
        channel,
        ChannelCommand::RecordCredentialsViewed { viewer },
        ctx,
    )
    .await?;
    let sealed = channel.sealed_credentials().ok_or(CommandError::Rejected(
        ChannelError::NoCredentials(channel.id()).into(),
    ))?;
    let plaintext = commands
        .vault
        .open(
            channel.tenant_id().0,
            &credentials_purpose(channel.id()),
            &x8_domain::Sealed(sealed.to_string()),
        )
        .await
        .map_err(vault_error)?;
    Ok((plaintext, position))
}

/// One credential of the connection (a field of its credentials' JSON object), opened for
/// the platform's own use (verifying a webhook, calling the provider): no person reads
/// it, so no `CredentialsViewed` is recorded. `None` when the connection has no
/// credentials or not that field.
///
/// # Errors
/// `KeyDestroyed` (the tenant was erased); [`CommandError::Infrastructure`] when the vault
/// cannot open them otherwise or they are not a JSON object.
pub async fn credential(
    commands: &Commands,
    channel: &Channel,
    name: &str,
) -> Result<Option<zeroize::Zeroizing<String>>, CommandError<ChannelOpError>> {
    Ok(credentials(commands, channel).await?.and_then(|fields| {
        fields
            .get(name)
            .map(|v| zeroize::Zeroizing::new(v.to_string()))
    }))
}

/// The connection's credentials, opened (the platform's own use: sending, webhook checks;
/// not an audited read). `None` when none are stored.
///
/// # Errors
/// As [`credential`].
pub async fn credentials(
    commands: &Commands,
    channel: &Channel,
) -> Result<Option<Credentials>, CommandError<ChannelOpError>> {
    let Some(sealed) = channel.sealed_credentials() else {
        return Ok(None);
    };
    let plaintext = commands
        .vault
        .open(
            channel.tenant_id().0,
            &credentials_purpose(channel.id()),
            &x8_domain::Sealed(sealed.to_string()),
        )
        .await
        .map_err(vault_error)?;
    let fields: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&plaintext)
        .map_err(|_| CommandError::Infrastructure("credentials are not a JSON object".into()))?;
    Ok(Some(Credentials(fields)))
}

/// A connection's opened credentials: the provider's field names and values.
pub struct Credentials(serde_json::Map<String, serde_json::Value>);

impl Credentials {
    /// The string field `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(serde_json::Value::as_str)
    }
}

/// Adds an app to the Meta app pool (ADMIN). Returns its id and the global position.
///
/// # Errors
/// `MetaApp(AlreadyRegistered | Invalid)`; see [`crate::CommandBus::execute`].
pub async fn register_meta_app(
    commands: &Commands,
    meta_app_id: &str,
    name: &str,
    ctx: &CommandContext,
) -> Result<(Uuid, i64), CommandError<ChannelOpError>> {
    let ctx = ctx
        .clone()
        .fingerprinted(&["RegisterMetaApp", meta_app_id, name]);
    let app_id = Uuid::new_v5(&ctx.command_id, b"meta-app");
    let outcome = commands
        .meta_apps
        .execute(
            POOL_ID,
            MetaAppCommand::RegisterApp {
                app_id,
                meta_app_id: meta_app_id.to_string(),
                name: name.to_string(),
            },
            &ctx,
        )
        .await
        .map_err(|e| e.map_rejected(ChannelOpError::MetaApp))?;
    Ok((app_id, outcome.position()))
}
