//! # X8 commands
//!
//! The command side: runs domain commands through cqrs-es against the X8 event store,
//! with the metadata, idempotency and retry rules of the platform.
//!
//! # Layout
//! - [`context`]: [`CommandContext`]: who asks, the command id, correlation and causation.
//! - [`bus`]: [`CommandBus`]: idempotent, retried execution of one aggregate's commands.
//! - [`error`]: the error type, [`CommandError`].
//! - [`passwords`]: argon2id hashing and verification.
//! - [`accounts`]: users and business registration, login checks.
//! - [`tenants`]: manager assignment and the other tenant commands.
//! - [`companies`]: creating companies (with their tenant-allocated codes) and changing them.
//! - [`conversations`]: conversations from the providers' webhooks, personal fields sealed.
//! - [`deliveries`]: couriers, deliveries, checkpoints, tracking tokens.
//! - [`channels`]: connecting and removing channel connections, the Meta app pool.
//! - [`billing`]: SaaS subscriptions from Stripe: checkout, the Stripe webhook.
//! - [`payments`]: customer payments through Stripe Connect: accounts and orders.
//! - [`loyalty`]: the loyalty program: settings, accounts, referrals, NPS, promotions,
//!   services.
//! - [`sending`]: replies through the platforms' APIs, recorded before and after.
//! - [`clock`]: the injectable clock.
//! - [`vault`]: envelope encryption of personal and secret fields (per-tenant data keys).
//! - [`stripe`]: the Stripe API client trait, webhook signatures, price map, event parsing.
//! - [`infobip`]: Infobip WhatsApp and Viber inbound messages and delivery reports.
//! - [`telegram`]: Telegram Bot API updates as inbound messages.
//! - [`viber`]: Viber's webhook signature.
//! - [`waha`]: WhatsApp through WAHA: the client trait and the session lifecycle.
//! - [`waha_messages`]: WAHA `message` and `message.ack` events as inbound messages and
//!   receipts.
//! - [`deadlines`]: the runner that issues due deadlines' commands exactly once.
//! - [`erasure`]: a business's hard delete: the request, its cancellation, the process
//!   manager and the external cleanups.

pub mod accounts;
pub mod billing;
pub mod bus;
pub mod channels;
pub mod clock;
pub mod companies;
pub mod context;
pub mod conversations;
pub mod deadlines;
pub mod deliveries;
pub mod erasure;
pub mod error;
pub mod infobip;
pub mod loyalty;
pub mod passwords;
pub mod payments;
pub mod sending;
pub mod stripe;
pub mod telegram;
pub mod tenants;
pub mod vault;
pub mod viber;
pub mod waha;
pub mod waha_messages;

pub use bus::{CommandBus, CommandOutcome};
pub use clock::{Clock, SystemClock};
pub use context::CommandContext;
pub use error::CommandError;

use std::sync::Arc;
use x8_domain::billing::connect::ConnectAccount;
use x8_domain::billing::order::Order;
use x8_domain::billing::provider_link::ProviderLink;
use x8_domain::billing::subscription::Subscription;
use x8_domain::billing::unmatched::UnmatchedProviderEvent;
use x8_domain::channel::Channel;
use x8_domain::company::Company;
use x8_domain::conversation::Conversation;
use x8_domain::delivery::{Courier, Delivery};
use x8_domain::erasure::Erasure;
use x8_domain::loyalty::program::LoyaltyProgram;
use x8_domain::loyalty::referral::ReferralCode;
use x8_domain::loyalty::service::Service;
use x8_domain::loyalty::LoyaltyAccount;
use x8_domain::meta_apps::MetaAppPool;
use x8_domain::tenant::Tenant;
use x8_domain::user::User;
use x8_eventstore::EventStore;

/// Every command bus of the platform, built once at start-up.
#[derive(Clone)]
pub struct Commands {
    /// The tenant aggregate's bus.
    pub tenants: Arc<CommandBus<Tenant>>,
    /// The user aggregate's bus.
    pub users: Arc<CommandBus<User>>,
    /// The company aggregate's bus.
    pub companies: Arc<CommandBus<Company>>,
    /// The channel connection aggregate's bus.
    pub channels: Arc<CommandBus<Channel>>,
    /// The Meta app pool's bus.
    pub meta_apps: Arc<CommandBus<MetaAppPool>>,
    /// Tenants' SaaS subscriptions.
    pub subscriptions: Arc<CommandBus<Subscription>>,
    /// Tenants' Stripe Connect accounts.
    pub connect_accounts: Arc<CommandBus<ConnectAccount>>,
    /// Orders paid through Connect.
    pub orders: Arc<CommandBus<Order>>,
    /// Which tenant a Stripe customer or account belongs to.
    pub provider_links: Arc<CommandBus<ProviderLink>>,
    /// Provider events that matched nothing.
    pub unmatched: Arc<CommandBus<UnmatchedProviderEvent>>,
    /// Conversations with customers.
    pub conversations: Arc<CommandBus<Conversation>>,
    /// Deliveries.
    pub deliveries: Arc<CommandBus<Delivery>>,
    /// Couriers.
    pub couriers: Arc<CommandBus<Courier>>,
    /// Customers' loyalty accounts.
    pub loyalty_accounts: Arc<CommandBus<LoyaltyAccount>>,
    /// Businesses' loyalty programs (settings, promotions).
    pub loyalty_programs: Arc<CommandBus<LoyaltyProgram>>,
    /// Services submitted for moderation.
    pub loyalty_services: Arc<CommandBus<Service>>,
    /// Which account a referral code belongs to.
    pub referral_codes: Arc<CommandBus<ReferralCode>>,
    /// Hard deletes' processes.
    pub erasures: Arc<CommandBus<Erasure>>,
    /// The external cleanups of a hard delete (`X8_N8N_URL`, `X8_KB_CLEANUP_URL`,
    /// `X8_MEDIA_CLEANUP_URL`; none configured by default).
    pub cleanups: Arc<dyn erasure::ExternalCleanups>,
    /// How long after a hard delete is asked for it begins (`X8_ERASURE_GRACE_HOURS`,
    /// default 0): until then it can be cancelled.
    pub erasure_grace: chrono::Duration,
    /// Stripe: the API, the price map, the return URLs.
    pub billing: Arc<billing::BillingConfig>,
    /// The clock commands read the time from.
    pub clock: Arc<dyn Clock>,
    /// The event store (for reading what a command appended).
    pub store: EventStore,
    /// Seals personal and secret fields with the tenants' data keys.
    pub vault: vault::Vault,
    /// The WAHA server (WhatsApp).
    pub waha: Arc<dyn waha::WahaApi>,
    /// The platforms' APIs replies are sent through.
    pub senders: Arc<dyn sending::MessageApi>,
    /// Their base URLs.
    pub provider_urls: sending::ProviderUrls,
    /// The prices of outbound messages (`X8_MESSAGE_RATES`).
    pub message_rates: x8_domain::conversation::MessageRates,
}

impl Commands {
    /// Builds the buses over `store`, with the vault's data keys in the same database.
    pub fn new(store: &EventStore, clock: Arc<dyn Clock>, master_key: vault::MasterKey) -> Self {
        Self {
            tenants: Arc::new(CommandBus::new(store)),
            users: Arc::new(CommandBus::new(store)),
            companies: Arc::new(CommandBus::new(store)),
            channels: Arc::new(CommandBus::new(store)),
            meta_apps: Arc::new(CommandBus::new(store)),
            subscriptions: Arc::new(CommandBus::new(store)),
            connect_accounts: Arc::new(CommandBus::new(store)),
            orders: Arc::new(CommandBus::new(store)),
            provider_links: Arc::new(CommandBus::new(store)),
            unmatched: Arc::new(CommandBus::new(store)),
            conversations: Arc::new(CommandBus::new(store)),
            deliveries: Arc::new(CommandBus::new(store)),
            couriers: Arc::new(CommandBus::new(store)),
            loyalty_accounts: Arc::new(CommandBus::new(store)),
            loyalty_programs: Arc::new(CommandBus::new(store)),
            loyalty_services: Arc::new(CommandBus::new(store)),
            referral_codes: Arc::new(CommandBus::new(store)),
            erasures: Arc::new(CommandBus::new(store)),
            cleanups: Arc::new(erasure::HttpCleanups::none()),
            erasure_grace: chrono::Duration::zero(),
            billing: Arc::new(billing::BillingConfig::default()),
            clock,
            store: store.clone(),
            vault: vault::Vault::new(store.pool().clone(), master_key),
            waha: Arc::new(waha::WahaNotConfigured),
            senders: Arc::new(sending::HttpSenders::new(
                sending::ProviderUrls::default(),
                Arc::new(waha::WahaNotConfigured),
            )),
            provider_urls: sending::ProviderUrls::default(),
            message_rates: x8_domain::conversation::MessageRates::default(),
        }
    }

    /// Sends replies through the platforms' APIs at `urls`.
    pub fn with_provider_urls(mut self, urls: sending::ProviderUrls) -> Self {
        self.provider_urls = urls;
        self.rebuild_senders()
    }

    /// Prices outbound messages at `rates`.
    pub fn with_message_rates(mut self, rates: x8_domain::conversation::MessageRates) -> Self {
        self.message_rates = rates;
        self
    }

    fn rebuild_senders(mut self) -> Self {
        self.senders = Arc::new(sending::HttpSenders::new(
            self.provider_urls.clone(),
            self.waha.clone(),
        ));
        self
    }

    /// Uses `waha` for WhatsApp (the default fails every call: WAHA not configured).
    pub fn with_waha(mut self, waha: Arc<dyn waha::WahaApi>) -> Self {
        self.waha = waha;
        self.rebuild_senders()
    }

    /// Calls the external cleanups through `cleanups`.
    pub fn with_cleanups(mut self, cleanups: Arc<dyn erasure::ExternalCleanups>) -> Self {
        self.cleanups = cleanups;
        self
    }

    /// Begins hard deletes `grace` after they are asked for.
    pub fn with_erasure_grace(mut self, grace: chrono::Duration) -> Self {
        self.erasure_grace = grace;
        self
    }

    /// Uses `billing` for Stripe (the default fails every call: Stripe not configured).
    pub fn with_billing(mut self, billing: billing::BillingConfig) -> Self {
        self.billing = Arc::new(billing);
        self
    }
}
