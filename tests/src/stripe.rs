//! Stripe as the tests drive it: the fixture subscription and event envelopes.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

/// The Stripe fixture subscription (customer `cus_QXg1o8vcGmoR32`, $20.00 a month) for
/// `tenant`, on `price`, with `status`, not cancelling.
pub fn subscription(tenant: Option<Uuid>, price: &str, status: &str) -> Value {
    let mut object: Value =
        serde_json::from_str(include_str!("../fixtures/stripe/subscription.json"))
            .expect("fixture");
    if let Some(tenant) = tenant {
        object["metadata"] = json!({ "tenant_id": tenant.to_string() });
    }
    object["items"]["data"][0]["price"]["id"] = json!(price);
    object["status"] = json!(status);
    object["cancel_at_period_end"] = json!(false);
    object
}

/// A Stripe event envelope around `object`.
pub fn event(id: &str, event_type: &str, created: DateTime<Utc>, object: Value) -> Value {
    json!({
        "id": id, "object": "event", "type": event_type, "created": created.timestamp(),
        "api_version": "2025-03-31.basil", "livemode": false, "pending_webhooks": 1,
        "data": { "object": object }
    })
}
