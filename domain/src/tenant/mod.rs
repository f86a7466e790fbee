//! The business (tenant) aggregate: registration with its 7-day trial, manager assignment
//! and suspension.
//!
//! Invariant (DOMAIN.md "People and roles"): a business has at most one manager at a time;
//! a change of manager is one `ManagerReassigned` event, never two managers at once.

mod aggregate;
mod commands;
mod error;
mod events;
#[cfg(test)]
mod tests;

pub use aggregate::{parse_name, Tenant, TenantStatus};
pub use commands::TenantCommand;
pub use error::TenantError;
pub use events::{SubscriptionStatus, TenantEvent};
