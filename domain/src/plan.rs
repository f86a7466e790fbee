//! The plan table of DOMAIN.md ("Tenant (business) lifecycle and plans"), in one place.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Length of the trial that every registration starts, in days (DOMAIN.md).
pub const TRIAL_DAYS: i64 = 7;
/// Channels allowed during the trial (DOMAIN.md: "exactly 1 channel").
pub const TRIAL_CHANNEL_LIMIT: u32 = 1;

/// A subscription plan. Serialised in upper case (`"GROWTH"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Plan {
    /// $0, 1 channel; also the plan of a business in its trial.
    #[default]
    Free,
    /// $9.99 / month, 1 channel.
    Single,
    /// $19.99 / month, 2 channels.
    Double,
    /// $49.99 / month, 4 channels.
    Growth,
    /// Custom price, unlimited channels.
    Enterprise,
    /// $29.99 / month promo; the channel limit is set per subscription.
    Special,
}

impl Plan {
    /// Monthly list price in US cents; `None` for ENTERPRISE (custom).
    pub fn monthly_price_cents(self) -> Option<i64> {
        match self {
            Plan::Free => Some(0),
            Plan::Single => Some(999),
            Plan::Double => Some(1999),
            Plan::Growth => Some(4999),
            Plan::Enterprise => None,
            Plan::Special => Some(2999),
        }
    }

    /// The plan's own channel limit; `None` means unlimited (ENTERPRISE) or set per
    /// subscription (SPECIAL, where the subscription carries the number).
    pub fn channel_limit(self) -> Option<u32> {
        match self {
            Plan::Free | Plan::Single => Some(1),
            Plan::Double => Some(2),
            Plan::Growth => Some(4),
            Plan::Enterprise | Plan::Special => None,
        }
    }

    /// The plan's place in the price order (FREE 0 < SINGLE < DOUBLE < SPECIAL < GROWTH <
    /// ENTERPRISE 5): a move to a lower rank is a downgrade.
    pub fn rank(self) -> u8 {
        match self {
            Plan::Free => 0,
            Plan::Single => 1,
            Plan::Double => 2,
            Plan::Special => 3,
            Plan::Growth => 4,
            Plan::Enterprise => 5,
        }
    }

    /// The upper-case name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Free => "FREE",
            Plan::Single => "SINGLE",
            Plan::Double => "DOUBLE",
            Plan::Growth => "GROWTH",
            Plan::Enterprise => "ENTERPRISE",
            Plan::Special => "SPECIAL",
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown plan name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown plan {0:?}")]
pub struct UnknownPlan(pub String);

impl FromStr for Plan {
    type Err = UnknownPlan;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        serde_json::from_value(serde_json::Value::String(s.to_string()))
            .map_err(|_| UnknownPlan(s.to_string()))
    }
}
