//! Payments (DOMAIN.md "Payments"): two money flows that never mix.
//!
//! 1. **SaaS subscriptions**, the business paying X8: [`subscription`] holds what Stripe
//!    says of a tenant's subscription (one aggregate per tenant) and decides which plan
//!    the tenant is on; the tenant aggregate records the plan change as a provider fact.
//! 2. **Customer payments**, the business's customers paying the business through Stripe
//!    Connect: [`connect`] is the tenant's connected account, [`order`] one order's
//!    payment status (`no_payment_link → payment_link_sent → paid`).
//!
//! [`provider_link`] remembers which tenant a Stripe customer or connected account
//! belongs to; [`unmatched`] keeps provider events that concern no known tenant, so
//! nothing is dropped silently. Money is [`Money`]: integer minor units plus an ISO-4217
//! [`Currency`].

pub mod connect;
pub mod money;
pub mod order;
pub mod provider_link;
pub mod subscription;
pub mod unmatched;

pub use money::{Currency, Money, MoneyError};
