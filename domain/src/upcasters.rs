//! Upcasters: convert stored payloads of old event versions into the current shape when
//! they are read, so aggregates and projections only know the current version. The log
//! itself is never rewritten.
//!
//! Shipped:
//! - `TenantRegistered` 1.0 → 2.0: version 1.0 carried only `tenant_id`, `name`,
//!   `owner_user_id`, `owner_email` and `registered_at`; 2.0 adds the trial terms of
//!   DOMAIN.md: `plan` FREE, `subscription_status` trialing, `channel_limit` 1 and
//!   `trial_ends_at` = `registered_at` + 7 days.

use crate::plan::{TRIAL_CHANNEL_LIMIT, TRIAL_DAYS};
use chrono::{DateTime, Duration, Utc};
use cqrs_es::persist::{EventUpcaster, SemanticVersionEventUpcaster};
use serde_json::{json, Value};

/// Every upcaster, in the order they apply. Give this list to each event store and reader.
pub fn all() -> Vec<Box<dyn EventUpcaster>> {
    vec![Box::new(SemanticVersionEventUpcaster::new(
        "TenantRegistered",
        "2.0",
        Box::new(tenant_registered_v2),
    ))]
}

/// `TenantRegistered` 1.0 → 2.0 (see the module docs). A payload that is not the expected
/// shape is returned unchanged, so deserialisation reports it.
fn tenant_registered_v2(mut payload: Value) -> Value {
    let Some(body) = payload
        .get_mut("TenantRegistered")
        .and_then(Value::as_object_mut)
    else {
        return payload;
    };
    let trial_ends_at = body
        .get("registered_at")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<DateTime<Utc>>().ok())
        .map(|at| at + Duration::days(TRIAL_DAYS));
    body.entry("plan").or_insert(json!("FREE"));
    body.entry("subscription_status")
        .or_insert(json!("trialing"));
    body.entry("channel_limit")
        .or_insert(json!(TRIAL_CHANNEL_LIMIT));
    if let Some(end) = trial_ends_at {
        body.entry("trial_ends_at").or_insert(json!(end));
    }
    payload
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::TenantEvent;
    use cqrs_es::persist::SerializedEvent;

    #[test]
    fn a_version_1_tenant_registration_loads_as_version_2() {
        let old = SerializedEvent::new(
            "t".into(),
            1,
            "tenant".into(),
            "TenantRegistered".into(),
            "1.0".into(),
            json!({"TenantRegistered": {
                "tenant_id": "00000000-0000-0000-0000-000000000001",
                "name": "Old Shop",
                "owner_user_id": "00000000-0000-0000-0000-000000000002",
                "owner_email": "old@shop.test",
                "registered_at": "2025-01-01T00:00:00Z"
            }}),
            json!({}),
        );
        let upcasters = all();
        let upcaster = upcasters
            .iter()
            .find(|u| u.can_upcast(&old.event_type, &old.event_version))
            .expect("an upcaster for 1.0");
        let new = upcaster.upcast(old);
        assert_eq!(new.event_version, "2.0.0");
        let event: TenantEvent = serde_json::from_value(new.payload).unwrap();
        let TenantEvent::TenantRegistered {
            trial_ends_at,
            channel_limit,
            ..
        } = event
        else {
            panic!("not a registration");
        };
        assert_eq!(trial_ends_at.to_rfc3339(), "2025-01-08T00:00:00+00:00");
        assert_eq!(channel_limit, 1);
    }

    #[test]
    fn current_versions_are_not_upcast() {
        assert!(!all()[0].can_upcast("TenantRegistered", "2.0"));
    }
}
