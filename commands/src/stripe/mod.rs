//! Stripe: the outbound API calls (behind [`StripeApi`], so tests point them at a local
//! fake server), the webhook signature scheme ([`signature`]), the price → plan map
//! ([`PricePlans`]) and the parsing of Stripe's objects into domain facts ([`event`]),
//! tolerant of older API versions and missing optional fields.

mod client;
pub mod event;
mod prices;
pub mod signature;

pub use client::{
    CheckoutSession, PaymentCheckout, StripeApi, StripeError, StripeHttp, StripeNotConfigured,
    SubscriptionCheckout, STRIPE_API,
};
pub use prices::{PricePlans, PricePlansError};
