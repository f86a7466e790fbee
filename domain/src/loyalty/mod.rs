//! The loyalty program (DOMAIN.md "Loyalty"), modelled on Open Loyalty: each accrual is its
//! own transfer with its own expiry, balances are derived from the transfers, and spending
//! checks the available points inside the aggregate, so the balance never goes below
//! zero, also under concurrent redemptions.
//!
//! - [`account`]: one loyalty account per business and customer.
//! - [`program`]: a business's settings and promotions.
//! - [`service`]: services submitted by businesses, moderated by admins.
//! - [`referral`]: referral codes and the account each belongs to.
//! - [`rules`]: the partner's settings and the cashback rounding rule.

pub mod account;
pub mod program;
pub mod referral;
pub mod rules;
pub mod service;

pub use account::{LoyaltyAccount, LoyaltyCommand, LoyaltyError, LoyaltyEvent};
pub use rules::{cashback_points, nps_score, LoyaltySettings};
