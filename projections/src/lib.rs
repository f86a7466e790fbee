//! # X8 projections
//!
//! Read models built from `$all` by checkpointed catch-up subscriptions, not by cqrs-es's
//! in-process queries (those run after the commit, keep no checkpoint and lose events when
//! the process dies).
//!
//! # Layout
//! - [`projection`]: the [`Projection`] trait a read model implements.
//! - [`runner`]: applying batches atomically with their checkpoint, one active runner per
//!   projection across processes, lag, and waiting for a position (read-your-writes).
//! - [`rebuild`]: blue/green rebuilds into fresh tables swapped in when caught up.
//! - [`checksum`]: deterministic digests of read models, to compare a rebuild with the
//!   live model.
//! - [`tenants`]: the `tenants` and `manager_clients` read models.
//! - [`deadlines`]: schedules durable deadlines (e.g. a trial's end) from events.
//! - [`companies`]: the `companies` read model.
//! - [`channels`]: the `channels` and `meta_apps` read models.
//! - [`billing`]: subscriptions, Connect accounts, orders, unmatched provider events.
//! - [`conversations`]: conversations and their messages (texts sealed).
//! - [`deliveries`]: couriers, deliveries and their checkpoints; tracking notifications.
//! - [`loyalty`]: loyalty programs, accounts and their history, promotions, services.
//! - [`erasures`]: the erasure certificates: each hard delete's steps and outcomes.
//! - [`metrics`]: counters per 15-minute bucket for daily metrics, response-time samples,
//!   last activity per business.

pub mod billing;
pub mod channels;
pub mod checksum;
pub mod companies;
pub mod conversations;
pub mod deadlines;
pub mod deliveries;
pub mod erasures;
pub mod loyalty;
pub mod metrics;
pub mod projection;
pub mod rebuild;
pub mod runner;
mod tail;
pub mod tenants;

pub use projection::{Projection, ProjectionError};
pub use rebuild::{RebuildReport, Scratch};
pub use runner::{ProjectionLag, ProjectionRunner};

use std::sync::Arc;

/// Every projection of the platform, in the order they are registered.
pub fn all() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(tenants::TenantsProjection),
        Arc::new(deadlines::DeadlinesProjection),
        Arc::new(companies::CompaniesProjection),
        Arc::new(channels::ChannelsProjection),
        Arc::new(billing::BillingProjection),
        Arc::new(loyalty::LoyaltyProjection),
        Arc::new(conversations::ConversationsProjection),
        Arc::new(deliveries::DeliveriesProjection),
        Arc::new(metrics::MetricsProjection),
        Arc::new(erasures::ErasuresProjection),
    ]
}
