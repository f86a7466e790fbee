//! Upcasters: convert stored payloads of old event versions into the current shape when
//! they are read, so aggregates and projections only know the current version. The log
//! itself is never rewritten.
//!
//! Shipped:
//! - `TenantRegistered` 1.0 → 2.0: version 1.0 carried only `tenant_id`, `name`,
//!   `owner_user_id`, `owner_email` and `registered_at`; 2.0 adds the trial terms of
//!   DOMAIN.md: `plan` FREE, `subscription_status` trialing, `channel_limit` 1 and
//!   `trial_ends_at` = `registered_at` + 7 days.
//! - `TenantRegistered` 2.0 → 3.0 and `UserRegistered` 1.0 → 2.0: the e-mail became a
//!   [`Sealed`] value. An upcaster has no keys, so an address stored in clear by an older
//!   version is carried as [`Sealed::legacy`] (marked unencrypted, readable without a key);
//!   such events exist only in databases written before the vault.
//! - `TenantRegistered` 3.0 → 4.0 and `UserRegistered` 2.0 → 3.0: the business's and the
//!   user's display names and the user's password hash became [`Sealed`]; so did
//!   company names (`CompanyCreated` and `CompanyRenamed` 1.0 → 2.0). Old clear values are
//!   carried as legacy the same way.
//! - `OrderCreated` 1.0 → 2.0: `customer_ref` and `description` became [`Sealed`];
//!   `LoyaltyAccountOpened` 1.0 → 2.0: `customer_ref` became [`Sealed`]. Old clear values
//!   are carried as legacy the same way. (Accounts opened under 1.0 keep their id, a UUID
//!   v5 of the business and the reference; new ones use a blind index.)

use crate::plan::{TRIAL_CHANNEL_LIMIT, TRIAL_DAYS};
use crate::Sealed;
use chrono::{DateTime, Duration, Utc};
use cqrs_es::persist::{EventUpcaster, SemanticVersionEventUpcaster};
use serde_json::{json, Value};

/// Every upcaster, in the order they apply. Give this list to each event store and reader.
pub fn all() -> Vec<Box<dyn EventUpcaster>> {
    vec![
        Box::new(SemanticVersionEventUpcaster::new(
            "TenantRegistered",
            "2.0",
            Box::new(tenant_registered_v2),
        )),
        Box::new(SemanticVersionEventUpcaster::new(
            "TenantRegistered",
            "3.0",
            Box::new(|payload| seal_legacy(payload, "TenantRegistered", "owner_email")),
        )),
        Box::new(SemanticVersionEventUpcaster::new(
            "TenantRegistered",
            "4.0",
            Box::new(|payload| seal_legacy(payload, "TenantRegistered", "name")),
        )),
        Box::new(SemanticVersionEventUpcaster::new(
            "UserRegistered",
            "2.0",
            Box::new(|payload| seal_legacy(payload, "UserRegistered", "email")),
        )),
        Box::new(SemanticVersionEventUpcaster::new(
            "UserRegistered",
            "3.0",
            Box::new(|payload| {
                let payload = seal_legacy(payload, "UserRegistered", "name");
                seal_legacy(payload, "UserRegistered", "password_hash")
            }),
        )),
        Box::new(SemanticVersionEventUpcaster::new(
            "CompanyCreated",
            "2.0",
            Box::new(|payload| seal_legacy(payload, "CompanyCreated", "name")),
        )),
        Box::new(SemanticVersionEventUpcaster::new(
            "CompanyRenamed",
            "2.0",
            Box::new(|payload| seal_legacy(payload, "CompanyRenamed", "name")),
        )),
        Box::new(SemanticVersionEventUpcaster::new(
            "OrderCreated",
            "2.0",
            Box::new(|payload| {
                let payload = seal_legacy(payload, "OrderCreated", "customer_ref");
                seal_legacy(payload, "OrderCreated", "description")
            }),
        )),
        Box::new(SemanticVersionEventUpcaster::new(
            "LoyaltyAccountOpened",
            "2.0",
            Box::new(|payload| seal_legacy(payload, "LoyaltyAccountOpened", "customer_ref")),
        )),
    ]
}

/// Marks the clear-text `field` of event `variant` as a legacy [`Sealed`] value.
fn seal_legacy(mut payload: Value, variant: &str, field: &str) -> Value {
    if let Some(value) = payload
        .get_mut(variant)
        .and_then(|body| body.get_mut(field))
    {
        if let Some(plaintext) = value.as_str() {
            *value = json!(Sealed::legacy(plaintext));
        }
    }
    payload
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
    fn a_version_1_tenant_registration_loads_as_the_current_version() {
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
        let new = upcast(old);
        assert_eq!(new.event_version, "4.0.0");
        let event: TenantEvent = serde_json::from_value(new.payload).unwrap();
        let TenantEvent::TenantRegistered {
            trial_ends_at,
            channel_limit,
            owner_email,
            name,
            ..
        } = event
        else {
            panic!("not a registration");
        };
        assert_eq!(name, Sealed::legacy("Old Shop"));
        assert_eq!(trial_ends_at.to_rfc3339(), "2025-01-08T00:00:00+00:00");
        assert_eq!(channel_limit, 1);
        assert_eq!(owner_email, Sealed::legacy("old@shop.test"));
    }

    #[test]
    fn a_version_1_user_registration_carries_its_email_as_legacy() {
        let old = SerializedEvent::new(
            "u".into(),
            1,
            "user".into(),
            "UserRegistered".into(),
            "1.0".into(),
            json!({"UserRegistered": {
                "user_id": "00000000-0000-0000-0000-000000000002",
                "email": "old@shop.test",
                "name": "Old",
                "role": "MANAGER",
                "password_hash": "$argon2id$stub",
                "tenant_id": null
            }}),
            json!({}),
        );
        let new = upcast(old);
        let event: crate::user::UserEvent = serde_json::from_value(new.payload).unwrap();
        let crate::user::UserEvent::UserRegistered {
            email,
            name,
            password_hash,
            ..
        } = event
        else {
            panic!("a registration");
        };
        assert_eq!(email, Sealed::legacy("old@shop.test"));
        assert_eq!(name, Sealed::legacy("Old"));
        assert_eq!(password_hash, Sealed::legacy("$argon2id$stub"));
    }

    #[test]
    fn current_versions_are_not_upcast() {
        for upcaster in all() {
            assert!(!upcaster.can_upcast("TenantRegistered", "4.0"));
            assert!(!upcaster.can_upcast("UserRegistered", "3.0"));
        }
    }

    /// Applies every matching upcaster in order, as the event store does.
    fn upcast(mut event: SerializedEvent) -> SerializedEvent {
        for upcaster in all() {
            if upcaster.can_upcast(&event.event_type, &event.event_version) {
                event = upcaster.upcast(event);
            }
        }
        event
    }

    #[test]
    fn a_version_1_order_carries_its_customer_and_description_as_legacy() {
        let old = SerializedEvent::new(
            "o".into(),
            1,
            "order".into(),
            "OrderCreated".into(),
            "1.0".into(),
            json!({"OrderCreated": {
                "order_id": "00000000-0000-0000-0000-000000000009",
                "tenant_id": "00000000-0000-0000-0000-000000000001",
                "company_id": "00000000-0000-0000-0000-000000000002",
                "customer_ref": "customer-42",
                "amount": {"amount_minor": 2500, "currency": "USD"},
                "description": "Two pizzas",
                "created_at": "2025-01-01T00:00:00Z"
            }}),
            json!({}),
        );
        let new = upcast(old);
        let event: crate::billing::order::OrderEvent = serde_json::from_value(new.payload).unwrap();
        let crate::billing::order::OrderEvent::OrderCreated {
            customer_ref,
            description,
            ..
        } = event
        else {
            panic!("not an order");
        };
        assert_eq!(customer_ref, Sealed::legacy("customer-42"));
        assert_eq!(description, Sealed::legacy("Two pizzas"));
    }

    #[test]
    fn a_version_1_loyalty_account_carries_its_customer_as_legacy() {
        let old = SerializedEvent::new(
            "a".into(),
            1,
            "loyalty_account".into(),
            "LoyaltyAccountOpened".into(),
            "1.0".into(),
            json!({"LoyaltyAccountOpened": {
                "account_id": "00000000-0000-0000-0000-000000000009",
                "tenant_id": "00000000-0000-0000-0000-000000000001",
                "customer_ref": "+381601234567",
                "referral_code": "ABC123",
                "referred_by": null,
                "opened_at": "2025-01-01T00:00:00Z"
            }}),
            json!({}),
        );
        let event: crate::loyalty::LoyaltyEvent =
            serde_json::from_value(upcast(old).payload).unwrap();
        let crate::loyalty::LoyaltyEvent::LoyaltyAccountOpened { customer_ref, .. } = event else {
            panic!("not an opening");
        };
        assert_eq!(customer_ref, Sealed::legacy("+381601234567"));
    }

    #[test]
    fn version_1_company_names_are_carried_as_legacy() {
        let created = SerializedEvent::new(
            "c".into(),
            1,
            "company".into(),
            "CompanyCreated".into(),
            "1.0".into(),
            json!({"CompanyCreated": {
                "tenant_id": "00000000-0000-0000-0000-000000000001",
                "code": "COMP001",
                "position": 1,
                "name": "Ana's Bakery",
                "company_type": "Product"
            }}),
            json!({}),
        );
        let renamed = SerializedEvent::new(
            "c".into(),
            2,
            "company".into(),
            "CompanyRenamed".into(),
            "1.0".into(),
            json!({"CompanyRenamed": {"name": "Ana's Cakes"}}),
            json!({}),
        );
        let names: Vec<Sealed> = [created, renamed]
            .into_iter()
            .map(
                |old| match serde_json::from_value(upcast(old).payload).unwrap() {
                    crate::company::CompanyEvent::CompanyCreated { name, .. }
                    | crate::company::CompanyEvent::CompanyRenamed { name } => name,
                    other => panic!("unexpected {other:?}"),
                },
            )
            .collect();
        assert_eq!(
            names,
            [
                Sealed::legacy("Ana's Bakery"),
                Sealed::legacy("Ana's Cakes")
            ]
        );
    }
}
