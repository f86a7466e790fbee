//! Stripe events and objects, parsed into domain facts. Tolerant by design: unknown
//! fields are ignored, optional ones may be missing or `null`, expandable references
//! may be an id or an object, and both the current and older API versions are read
//! (the billing period moved from the subscription to `items.data[]` in 2025-03-31).

use super::PricePlans;
use chrono::{DateTime, TimeZone, Utc};
use serde::Deserialize;
use serde_json::Value;
use x8_domain::billing::connect::AccountStatus;
use x8_domain::billing::subscription::{RecurringPrice, StripeStatus, StripeSubscription};
use x8_domain::billing::Currency;

/// A Stripe object that does not have what X8 needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Stripe {object}: {reason}")]
pub struct ParseError {
    /// Which object.
    pub object: &'static str,
    /// What is wrong.
    pub reason: String,
}

fn invalid(object: &'static str, reason: impl Into<String>) -> ParseError {
    ParseError {
        object,
        reason: reason.into(),
    }
}

/// A Stripe event envelope (`object: "event"`).
#[derive(Debug, Clone, Deserialize)]
pub struct StripeEvent {
    /// `evt_…`: the deduplication key.
    pub id: String,
    /// E.g. `customer.subscription.updated` (missing: an event X8 ignores).
    #[serde(rename = "type", default)]
    pub event_type: String,
    /// Unix seconds: orders the facts of one object.
    #[serde(default)]
    pub created: i64,
    /// The connected account, for Connect events.
    #[serde(default)]
    pub account: Option<String>,
    /// The object and, for updates, its changed attributes.
    pub data: EventData,
}

/// `event.data`.
#[derive(Debug, Clone, Deserialize)]
pub struct EventData {
    /// The object as of the event.
    pub object: Value,
    /// The values an update changed, as they were before.
    #[serde(default)]
    pub previous_attributes: Option<Value>,
}

impl StripeEvent {
    /// `created` as UTC.
    pub fn created_at(&self) -> DateTime<Utc> {
        timestamp(self.created).unwrap_or_default()
    }
    /// `data.object.metadata[key]`.
    pub fn metadata(&self, key: &str) -> Option<&str> {
        metadata(&self.data.object, key)
    }
    /// `data.object[key]` as an id (a string, or an expanded object's `id`).
    pub fn reference(&self, key: &str) -> Option<&str> {
        id_of(&self.data.object[key])
    }
}

/// Unix seconds as UTC.
pub fn timestamp(seconds: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_opt(seconds, 0).single()
}

/// `object.metadata[key]`, non-empty.
pub fn metadata<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object["metadata"][key].as_str().filter(|v| !v.is_empty())
}

/// An expandable reference: `"cus_123"` or `{"id": "cus_123", …}`.
pub fn id_of(value: &Value) -> Option<&str> {
    value.as_str().or_else(|| value["id"].as_str())
}

/// A subscription object, with its plan looked up in `prices`.
///
/// # Errors
/// [`ParseError`] when `id` or `status` is missing or the status unknown.
pub fn subscription(object: &Value, prices: &PricePlans) -> Result<StripeSubscription, ParseError> {
    let subscription_id = object["id"]
        .as_str()
        .ok_or_else(|| invalid("subscription", "no id"))?;
    let status: StripeStatus = serde_json::from_value(object["status"].clone()).map_err(|_| {
        invalid(
            "subscription",
            format!("unknown status {}", object["status"]),
        )
    })?;
    let item = &object["items"]["data"][0];
    let price = recurring_price(item);
    let plan = price.as_ref().and_then(|p| prices.plan_of(&p.price_id));
    let current_period_end = item["current_period_end"]
        .as_i64()
        .or_else(|| object["current_period_end"].as_i64())
        .and_then(timestamp);
    Ok(StripeSubscription {
        subscription_id: subscription_id.to_string(),
        customer_id: id_of(&object["customer"]).map(str::to_string),
        status,
        price,
        plan,
        channel_limit: metadata(object, "channel_limit").and_then(|v| v.parse().ok()),
        current_period_end,
        cancel_at_period_end: object["cancel_at_period_end"].as_bool().unwrap_or(false),
    })
}

/// The price of a subscription item (`price`, or the legacy `plan`).
fn recurring_price(item: &Value) -> Option<RecurringPrice> {
    let price = if item["price"].is_object() {
        &item["price"]
    } else {
        &item["plan"]
    };
    let price_id = price["id"].as_str()?;
    let currency = Currency::parse(price["currency"].as_str().unwrap_or_default()).ok()?;
    let recurring = if price["recurring"].is_object() {
        &price["recurring"]
    } else {
        price
    };
    Some(RecurringPrice {
        price_id: price_id.to_string(),
        unit_amount: price["unit_amount"]
            .as_i64()
            .or_else(|| price["amount"].as_i64())
            .unwrap_or(0),
        currency,
        interval: recurring["interval"]
            .as_str()
            .unwrap_or("month")
            .to_string(),
        interval_count: recurring["interval_count"]
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(1),
        quantity: item["quantity"]
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(1),
    })
}

/// The price before an update, from `previous_attributes` (`items.data[0].price.id`, or
/// the legacy `plan.id`).
pub fn previous_price(previous: Option<&Value>) -> Option<String> {
    let previous = previous?;
    let item = &previous["items"]["data"][0];
    item["price"]["id"]
        .as_str()
        .or_else(|| item["plan"]["id"].as_str())
        .or_else(|| previous["plan"]["id"].as_str())
        .map(str::to_string)
}

/// An account object's status (`account.updated`).
pub fn account_status(object: &Value) -> AccountStatus {
    let requirements = &object["requirements"];
    AccountStatus {
        charges_enabled: object["charges_enabled"].as_bool().unwrap_or(false),
        payouts_enabled: object["payouts_enabled"].as_bool().unwrap_or(false),
        details_submitted: object["details_submitted"].as_bool().unwrap_or(false),
        requirements_due: requirements["currently_due"]
            .as_array()
            .map(|due| {
                due.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        disabled_reason: requirements["disabled_reason"].as_str().map(str::to_string),
    }
}

/// The tenant an invoice names in its subscription's metadata: `parent.
/// subscription_details.metadata` (2025 API) or `subscription_details.metadata` (older).
pub fn invoice_tenant(invoice: &Value) -> Option<&str> {
    invoice["parent"]["subscription_details"]["metadata"]["tenant_id"]
        .as_str()
        .or_else(|| invoice["subscription_details"]["metadata"]["tenant_id"].as_str())
        .or_else(|| metadata(invoice, "tenant_id"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/../tests/fixtures/stripe/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json")
    }

    #[test]
    fn reads_todays_subscription_with_the_period_on_its_items() {
        let prices = PricePlans::parse("price_1PgafmB7WZ01zgkW6dKueIc5=GROWTH").expect("map");
        let sub = subscription(&fixture("subscription.json"), &prices).expect("parses");
        assert_eq!(sub.status, StripeStatus::Active);
        assert_eq!(sub.customer_id.as_deref(), Some("cus_QXg1o8vcGmoR32"));
        assert_eq!(sub.plan, Some(x8_domain::Plan::Growth));
        assert_eq!(sub.current_period_end, timestamp(976_287_773));
        assert!(sub.cancel_at_period_end);
        let price = sub.price.expect("price");
        assert_eq!((price.unit_amount, price.currency.as_str()), (2000, "USD"));
    }

    #[test]
    fn reads_an_older_subscription_with_the_period_on_it_and_a_legacy_plan() {
        let old = json!({
            "id": "sub_old", "status": "past_due", "customer": {"id": "cus_1"},
            "current_period_end": 1_700_000_000,
            "items": {"data": [{"plan": {"id": "plan_x", "amount": 999, "currency": "eur",
                                          "interval": "year", "interval_count": 1}}]}
        });
        let sub = subscription(&old, &PricePlans::default()).expect("parses");
        assert_eq!(sub.customer_id.as_deref(), Some("cus_1"));
        assert_eq!(sub.plan, None, "an unknown price");
        assert_eq!(sub.current_period_end, timestamp(1_700_000_000));
        assert!(!sub.cancel_at_period_end, "missing means false");
        assert_eq!(sub.price.expect("price").interval, "year");
    }

    #[test]
    fn refuses_an_unknown_status() {
        let odd = json!({"id": "sub_1", "status": "frozen"});
        assert!(subscription(&odd, &PricePlans::default()).is_err());
    }

    #[test]
    fn reads_an_accounts_status() {
        let status = account_status(&fixture("account.json"));
        assert!(status
            .requirements_due
            .contains(&"external_account".to_string()));
        assert_eq!(
            status.disabled_reason.as_deref(),
            Some("requirements.past_due")
        );
    }

    #[test]
    fn reads_the_previous_price_of_either_shape() {
        let new = json!({"items": {"data": [{"price": {"id": "price_a"}}]}});
        let old = json!({"plan": {"id": "plan_b"}});
        assert_eq!(previous_price(Some(&new)).as_deref(), Some("price_a"));
        assert_eq!(previous_price(Some(&old)).as_deref(), Some("plan_b"));
        assert_eq!(previous_price(None), None);
    }
}
