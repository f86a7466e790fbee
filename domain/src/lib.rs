//! # X8 domain
//!
//! The pure decisions of X8 core: aggregates, their commands, events and errors, and the
//! value types they are made of. Nothing here does I/O: time, ids and password hashes
//! are handed in by the command layer, so every rule is testable with given/when/then.
//!
//! # Layout
//! - [`ids`]: typed identifiers (`TenantId`, `UserId`).
//! - [`email`]: a parsed, normalised e-mail address.
//! - [`plan`]: the plan table of DOMAIN.md (prices in cents, channel limits).
//! - [`sealed`]: personal and secret fields, sealed with the tenant's data key.
//! - [`tenant`]: the business (tenant) aggregate: registration, trial, manager assignment,
//!   company code allocation.
//! - [`billing`]: payments: SaaS subscriptions from Stripe, Stripe Connect accounts, orders.
//! - [`channel`]: channel connections (platform, status, Meta app, sealed credentials).
//! - [`conversation`]: conversations with customers: messages, replies, receipts, lead
//!   sources, batches for the assistant, message costs.
//! - [`delivery`]: couriers and deliveries: AfterShip statuses, ordered checkpoints,
//!   tracking tokens.
//! - [`company`]: companies of a business, with their `COMP001` codes.
//! - [`meta_apps`]: the pool of pre-reviewed Meta apps for Instagram and Facebook.
//! - [`loyalty`]: loyalty accounts: cashback transfers, redemptions, refunds, expiry, referrals, NPS.
//! - [`user`]: platform users (CLIENT, MANAGER, ADMIN) with their password hashes.
//! - [`text`]: trimmed, length-checked free text.
//! - [`time_zone`]: a business's IANA time zone, for daily metrics.
//! - [`upcasters`]: conversions of old event versions to the current ones.
//! - [`deadlines`]: the kinds of durable deadline (commands due at a time).
//! - [`erasure`]: a business's hard delete as a process manager whose steps are events.

pub mod billing;
pub mod channel;
pub mod company;
pub mod conversation;
pub mod deadlines;
pub mod delivery;
pub mod email;
pub mod erasure;
pub mod ids;
pub mod loyalty;
pub mod meta_apps;
pub mod plan;
pub mod sealed;
pub mod tenant;
pub mod text;
pub mod time_zone;
pub mod upcasters;
pub mod user;

pub use email::Email;
pub use sealed::Sealed;

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;

/// The `Aggregate::handle` of every aggregate in this crate: run the pure `decide` and
/// write its events to the sink ([`emit`]). Use inside `impl Aggregate for …`.
macro_rules! handle_by_decide {
    () => {
        async fn handle(
            &mut self,
            command: Self::Command,
            _services: &Self::Services,
            sink: &cqrs_es::event_sink::EventSink<Self>,
        ) -> Result<(), Self::Error> {
            let events = self.decide(command)?;
            crate::emit(self, sink, events).await;
            Ok(())
        }
    };
}
pub(crate) use handle_by_decide;

/// Writes `events` (the result of an aggregate's pure `decide`) to the sink, applying each
/// to the aggregate: the whole of every `Aggregate::handle` in this crate.
pub(crate) async fn emit<A: Aggregate>(
    aggregate: &mut A,
    sink: &EventSink<A>,
    events: Vec<A::Event>,
) {
    for event in events {
        sink.write(event, aggregate).await;
    }
}
pub use ids::{TenantId, UserId};
pub use plan::Plan;
