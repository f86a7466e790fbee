//! `X8_STRIPE_PRICE_PLANS`: which Stripe price is which plan, e.g.
//! `price_123=GROWTH,price_456=DOUBLE`. A price not in the map is an unknown price: its
//! subscription is recorded, but it changes no plan.

use std::collections::BTreeMap;
use x8_domain::Plan;

/// A malformed `X8_STRIPE_PRICE_PLANS`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not `price_id=PLAN`")]
pub struct PricePlansError(pub String);

/// The price → plan map.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PricePlans(BTreeMap<String, Plan>);

impl PricePlans {
    /// Parses `price_a=PLAN,price_b=PLAN` (spaces ignored, empty entries skipped).
    ///
    /// # Errors
    /// [`PricePlansError`] naming the entry.
    pub fn parse(raw: &str) -> Result<Self, PricePlansError> {
        let mut map = BTreeMap::new();
        for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (price, plan) = entry
                .split_once('=')
                .ok_or_else(|| PricePlansError(entry.to_string()))?;
            let plan = plan
                .trim()
                .parse::<Plan>()
                .map_err(|_| PricePlansError(entry.to_string()))?;
            map.insert(price.trim().to_string(), plan);
        }
        Ok(Self(map))
    }

    /// The plan of `price_id`; `None` for an unknown price.
    pub fn plan_of(&self, price_id: &str) -> Option<Plan> {
        self.0.get(price_id).copied()
    }

    /// The price to charge for `plan` (the first in the map's order); `None` when the plan
    /// is not sold through Stripe.
    pub fn price_for(&self, plan: Plan) -> Option<&str> {
        self.0
            .iter()
            .find(|(_, p)| **p == plan)
            .map(|(price, _)| price.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_map_and_finds_both_ways() {
        let prices = PricePlans::parse(" price_123=GROWTH, price_456=DOUBLE,").expect("parses");
        assert_eq!(prices.plan_of("price_123"), Some(Plan::Growth));
        assert_eq!(prices.plan_of("price_999"), None);
        assert_eq!(prices.price_for(Plan::Double), Some("price_456"));
        assert_eq!(prices.price_for(Plan::Single), None);
        assert!(PricePlans::parse("price_1").is_err());
        assert!(PricePlans::parse("price_1=GOLD").is_err());
    }
}
