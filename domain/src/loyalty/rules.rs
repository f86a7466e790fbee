//! A partner's loyalty settings and the cashback rule.

use serde::{Deserialize, Serialize};

/// The default cashback: 500 basis points = 5 % (DOMAIN.md "Loyalty").
pub const DEFAULT_CASHBACK_BPS: u32 = 500;

/// A business's loyalty settings. Points are integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoyaltySettings {
    /// Cashback rate in basis points (500 = 5 %), 0 to 10,000.
    pub cashback_bps: u32,
    /// Points granted once when an account opens.
    pub welcome_bonus_points: i64,
    /// Points for the customer whose referral code was used.
    pub referrer_reward_points: i64,
    /// Points for the customer who registered with a referral code.
    pub referred_reward_points: i64,
    /// Days until an accrual's points expire; `None`: they never do.
    pub expiry_days: Option<u32>,
}

impl Default for LoyaltySettings {
    fn default() -> Self {
        Self {
            cashback_bps: DEFAULT_CASHBACK_BPS,
            welcome_bonus_points: 0,
            referrer_reward_points: 0,
            referred_reward_points: 0,
            expiry_days: None,
        }
    }
}

/// Cashback points for a purchase of `amount_minor` minor units at `cashback_bps`:
/// `floor(amount_minor × cashback_bps / 10,000 / 100)`, i.e. one point per whole currency
/// unit of cashback, rounded down (5 % of $19.99 = 99.95 cents → 0 points; of $20.00 →
/// 1 point). Non-positive amounts earn nothing. Computed in 128 bits: never overflows.
pub fn cashback_points(amount_minor: i64, cashback_bps: u32) -> i64 {
    if amount_minor <= 0 {
        return 0;
    }
    let points = i128::from(amount_minor) * i128::from(cashback_bps) / 1_000_000;
    i64::try_from(points).unwrap_or(i64::MAX)
}

/// Net Promoter Score in percent (DOMAIN.md "Loyalty"): % promoters (9–10) − %
/// detractors (0–6) over `ratings` customers, one decimal; `None` without ratings.
pub fn nps_score(promoters: i64, detractors: i64, ratings: i64) -> Option<f64> {
    (ratings > 0).then(|| {
        let tenths = ((promoters - detractors) * 1000) as f64 / ratings as f64;
        tenths.round() / 10.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_point_per_whole_currency_unit_of_cashback_rounded_down() {
        assert_eq!(cashback_points(1_999, 500), 0, "99.95 cents of cashback");
        assert_eq!(cashback_points(2_000, 500), 1, "exactly 1.00");
        assert_eq!(cashback_points(3_999, 500), 1, "1.9995");
        assert_eq!(cashback_points(4_000, 500), 2);
        assert_eq!(cashback_points(100_000, 500), 50);
        assert_eq!(cashback_points(100_000, 0), 0);
        assert_eq!(cashback_points(100, 10_000), 1, "100 % of 1.00");
        assert_eq!(cashback_points(99, 10_000), 0);
        assert_eq!(cashback_points(0, 500), 0);
        assert_eq!(cashback_points(-5_000, 500), 0);
        assert_eq!(cashback_points(i64::MAX, 10_000), i64::MAX / 100);
    }

    #[test]
    fn nps_is_percent_promoters_minus_percent_detractors() {
        assert_eq!(nps_score(0, 0, 0), None);
        assert_eq!(nps_score(2, 1, 4), Some(25.0), "50 % − 25 %");
        assert_eq!(nps_score(1, 2, 3), Some(-33.3));
        assert_eq!(nps_score(3, 0, 3), Some(100.0));
    }
}
