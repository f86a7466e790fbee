//! Given/when/then over the subscription's pure `decide`.

use super::*;
use chrono::TimeZone;
use uuid::Uuid;

fn tenant() -> TenantId {
    TenantId(Uuid::from_u128(7))
}

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + seconds, 0)
        .single()
        .expect("valid time")
}

fn given(events: Vec<SubscriptionEvent>) -> Subscription {
    let mut subscription = Subscription::default();
    events.into_iter().for_each(|e| subscription.apply(e));
    subscription
}

fn stripe(status: StripeStatus, plan: Option<Plan>, price: &str) -> StripeSubscription {
    StripeSubscription {
        subscription_id: "sub_1".into(),
        customer_id: Some("cus_1".into()),
        status,
        price: Some(RecurringPrice {
            price_id: price.into(),
            unit_amount: 4999,
            currency: Currency::parse("usd").expect("usd"),
            interval: "month".into(),
            interval_count: 1,
            quantity: 1,
        }),
        plan,
        channel_limit: None,
        current_period_end: Some(at(30 * 86_400)),
        cancel_at_period_end: false,
    }
}

fn recorded(subscription: StripeSubscription, seconds: i64) -> SubscriptionEvent {
    SubscriptionEvent::SubscriptionRecorded {
        tenant_id: tenant(),
        subscription,
        previous_plan: None,
        observed_at: at(seconds),
    }
}

fn record(subscription: StripeSubscription, seconds: i64) -> SubscriptionCommand {
    SubscriptionCommand::RecordSubscription {
        tenant_id: tenant(),
        subscription,
        previous_price_id: None,
        observed_at: at(seconds),
    }
}

#[test]
fn an_older_fact_never_overwrites_a_newer_one() {
    let given = given(vec![recorded(
        stripe(StripeStatus::Active, Some(Plan::Growth), "price_growth"),
        10,
    )]);
    let older = record(
        stripe(StripeStatus::Incomplete, Some(Plan::Double), "price_double"),
        5,
    );
    assert_eq!(given.decide(older), Ok(vec![]));
    assert_eq!(
        given.tenant_plan(),
        Some((Some(Plan::Growth), None, SubscriptionStatus::Active))
    );
}

#[test]
fn a_fact_at_the_same_second_applies() {
    let given = given(vec![recorded(
        stripe(StripeStatus::Incomplete, Some(Plan::Growth), "price_growth"),
        10,
    )]);
    let events = given
        .decide(record(
            stripe(StripeStatus::Active, Some(Plan::Growth), "price_growth"),
            10,
        ))
        .expect("applies");
    assert_eq!(events.len(), 1);
}

#[test]
fn an_unknown_price_is_recorded_and_changes_no_plan() {
    let given = given(vec![recorded(
        stripe(StripeStatus::Active, Some(Plan::Double), "price_double"),
        1,
    )]);
    let events = given
        .decide(record(
            stripe(StripeStatus::PastDue, None, "price_unknown"),
            2,
        ))
        .expect("recorded");
    let mut after = given.clone();
    events.into_iter().for_each(|e| after.apply(e));
    assert_eq!(
        after.tenant_plan(),
        Some((Some(Plan::Double), None, SubscriptionStatus::PastDue))
    );
}

#[test]
fn a_plan_change_names_the_plan_before() {
    let given = given(vec![recorded(
        stripe(StripeStatus::Active, Some(Plan::Growth), "price_growth"),
        1,
    )]);
    let events = given
        .decide(SubscriptionCommand::RecordSubscription {
            tenant_id: tenant(),
            subscription: stripe(StripeStatus::Active, Some(Plan::Single), "price_single"),
            previous_price_id: Some("price_growth".into()),
            observed_at: at(2),
        })
        .expect("recorded");
    assert!(matches!(
        &events[0],
        SubscriptionEvent::SubscriptionRecorded {
            previous_plan: Some(Plan::Growth),
            ..
        }
    ));
}

#[test]
fn incomplete_changes_nothing_for_the_tenant_and_cancelled_falls_back_to_free() {
    let incomplete = given(vec![recorded(
        stripe(StripeStatus::Incomplete, Some(Plan::Growth), "price_growth"),
        1,
    )]);
    assert_eq!(incomplete.tenant_plan(), None);
    let cancelled = given(vec![recorded(
        stripe(StripeStatus::Canceled, Some(Plan::Growth), "price_growth"),
        1,
    )]);
    assert_eq!(
        cancelled.tenant_plan(),
        Some((Some(Plan::Free), None, SubscriptionStatus::Cancelled))
    );
}

#[test]
fn cancellation_at_period_end_keeps_the_plan_until_the_deadline_ends_it() {
    let mut cancelling = stripe(StripeStatus::Active, Some(Plan::Growth), "price_growth");
    cancelling.cancel_at_period_end = true;
    let period_end = cancelling.current_period_end.expect("period end");
    let given = given(vec![recorded(cancelling, 1)]);
    assert_eq!(
        given.tenant_plan(),
        Some((Some(Plan::Growth), None, SubscriptionStatus::Active))
    );

    let early = SubscriptionCommand::EndAtPeriodEnd { at: at(10) };
    assert_eq!(
        given.decide(early),
        Err(SubscriptionError::PeriodNotOver { period_end })
    );
    let events = given
        .decide(SubscriptionCommand::EndAtPeriodEnd { at: period_end })
        .expect("ends");
    let mut after = given.clone();
    events.into_iter().for_each(|e| after.apply(e));
    assert_eq!(
        after.tenant_plan(),
        Some((Some(Plan::Free), None, SubscriptionStatus::Cancelled))
    );
    assert_eq!(
        after.decide(SubscriptionCommand::EndAtPeriodEnd { at: period_end }),
        Ok(vec![])
    );
}

#[test]
fn the_deadline_does_nothing_when_the_cancellation_was_undone() {
    let given = given(vec![recorded(
        stripe(StripeStatus::Active, Some(Plan::Growth), "price_growth"),
        1,
    )]);
    assert_eq!(
        given.decide(SubscriptionCommand::EndAtPeriodEnd {
            at: at(90 * 86_400)
        }),
        Ok(vec![])
    );
}

#[test]
fn a_paid_checkout_puts_the_tenant_on_its_plan_and_an_unpaid_one_does_not() {
    let given = given(vec![SubscriptionEvent::CheckoutStarted {
        tenant_id: tenant(),
        session_id: "cs_1".into(),
        plan: Plan::Double,
        price_id: "price_double".into(),
    }]);
    let complete = |paid| SubscriptionCommand::CompleteCheckout {
        tenant_id: tenant(),
        session_id: "cs_1".into(),
        customer_id: Some("cus_1".into()),
        subscription_id: Some("sub_1".into()),
        paid,
        observed_at: at(1),
    };
    for (paid, expected) in [
        (
            true,
            Some((Some(Plan::Double), None, SubscriptionStatus::Active)),
        ),
        (false, None),
    ] {
        let mut after = given.clone();
        let events = after.decide(complete(paid)).expect("completes");
        events.into_iter().for_each(|e| after.apply(e));
        assert_eq!(after.tenant_plan(), expected);
        assert_eq!(after.customer_id(), Some("cus_1"));
        assert_eq!(after.decide(complete(paid)), Ok(vec![]), "once");
    }
}

#[test]
fn payment_failures_record_attempts_once_and_a_paid_invoice_clears_them() {
    let failed = |attempt_count| SubscriptionCommand::RecordPaymentFailed {
        invoice_id: "in_1".into(),
        attempt_count,
        next_attempt_at: Some(at(86_400)),
        amount_due: 4999,
        currency: Currency::parse("usd").expect("usd"),
        observed_at: at(1),
    };
    let mut subscription = given(vec![]);
    let events = subscription.decide(failed(2)).expect("recorded");
    events.into_iter().for_each(|e| subscription.apply(e));
    assert_eq!(
        subscription.last_failure().map(|f| f.attempt_count),
        Some(2)
    );
    assert_eq!(
        subscription.decide(failed(1)),
        Ok(vec![]),
        "an older attempt"
    );
    assert_eq!(
        subscription.decide(failed(2)),
        Ok(vec![]),
        "the same attempt"
    );

    let paid = SubscriptionCommand::RecordInvoicePaid {
        invoice_id: "in_1".into(),
        amount_paid: 4999,
        currency: Currency::parse("usd").expect("usd"),
        observed_at: at(2),
    };
    let events = subscription.decide(paid.clone()).expect("paid");
    events.into_iter().for_each(|e| subscription.apply(e));
    assert_eq!(subscription.last_failure(), None);
    assert_eq!(subscription.decide(paid), Ok(vec![]));
}

#[test]
fn monthly_amounts_normalise_the_interval() {
    let mut price = stripe(StripeStatus::Active, None, "p")
        .price
        .expect("price");
    assert_eq!(price.monthly_amount(), 4999);
    price.interval = "year".into();
    price.unit_amount = 12_000;
    assert_eq!(price.monthly_amount(), 1000);
    price.quantity = 3;
    assert_eq!(price.monthly_amount(), 3000);
    price.interval = "month".into();
    price.interval_count = 3;
    price.quantity = 1;
    assert_eq!(price.monthly_amount(), 4000);
}
