//! The business (tenant) aggregate: registration with its 7-day trial, manager assignment
//! and suspension.
//!
//! Invariant (DOMAIN.md "People and roles"): a business has at most one manager at a time;
//! a change of manager is one `ManagerReassigned` event, never two managers at once.
//!
//! Invariant (DOMAIN.md "Tenant lifecycle and plans"): the channel connections that are
//! not removed never exceed the plan's limit, also under concurrent connects. The tenant
//! holds the **slots**: a connection first reserves one here (`ReserveChannelSlot`), and
//! only then is its own stream created; removing it releases the slot. The check and the
//! reservation are one decision on one stream, so the stream's expected version makes
//! concurrent connects take turns and the limit holds, and replaying the tenant stream
//! alone shows it held. (The alternative, appending to the connection stream conditional
//! on the tenant stream's version, would need a cross-stream append and still a count
//! kept somewhere; the slots keep it in the aggregate that owns the rule.) A creation cut
//! off between the reservation and the connection stream leaves a held slot; retrying
//! the request with the same `Idempotency-Key` finishes it.

mod aggregate;
mod commands;
mod error;
mod events;
#[cfg(test)]
mod tests;

pub use aggregate::{parse_name, PendingErasure, Tenant, TenantStatus};
pub use commands::TenantCommand;
pub use error::TenantError;
pub use events::{PlanChangeOrigin, SubscriptionStatus, TenantEvent};
