//! Deliveries (DOMAIN.md "Deliveries"): couriers, deliveries with AfterShip's statuses,
//! checkpoints ordered by when they happened, public tracking tokens, customer
//! notifications.
//!
//! - [`status`]: the statuses and their legal transitions.
//! - [`aggregate`]: the delivery aggregate.
//! - [`courier`]: the courier aggregate.

pub mod aggregate;
pub mod courier;
pub mod status;

pub use aggregate::{
    Checkpoint, Delivery, DeliveryCommand, DeliveryError, DeliveryEvent, Location, Recipient,
};
pub use courier::{Courier, CourierCommand, CourierError, CourierEvent};
pub use status::DeliveryStatus;
