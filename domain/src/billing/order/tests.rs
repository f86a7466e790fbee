//! Given/when/then over the order's pure `decide`.

use super::*;
use chrono::TimeZone;

fn now() -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000, 0).single().expect("time")
}

fn usd(amount_minor: i64) -> Money {
    Money::positive(amount_minor, "usd").expect("money")
}

fn created() -> Order {
    let mut order = Order::default();
    let events = order
        .decide(OrderCommand::CreateOrder {
            order_id: Uuid::from_u128(9),
            tenant_id: TenantId(Uuid::from_u128(1)),
            company_id: Uuid::from_u128(2),
            customer_ref: Sealed("x8v1.customer".into()),
            amount: usd(2500),
            description: Sealed("x8v1.description".into()),
            created_at: now(),
        })
        .expect("created");
    events.into_iter().for_each(|e| order.apply(e));
    order
}

fn ready() -> ChargeAccount {
    ChargeAccount {
        account_id: Some("acct_1".into()),
        charges_enabled: true,
    }
}

fn link_sent() -> Order {
    let mut order = created();
    let events = order
        .decide(OrderCommand::SendPaymentLink {
            account: ready(),
            session_id: "cs_1".into(),
            url: "https://checkout.stripe.com/c/cs_1".into(),
            commission_minor: 0,
            sent_at: now(),
        })
        .expect("sent");
    events.into_iter().for_each(|e| order.apply(e));
    order
}

fn payment(account: &str, payment_ref: &str) -> OrderCommand {
    OrderCommand::RecordPayment {
        account_id: account.into(),
        payment_ref: payment_ref.into(),
        amount: usd(2500),
        paid_at: now(),
    }
}

#[test]
fn a_new_order_has_no_payment_link() {
    assert_eq!(created().status(), OrderStatus::NoPaymentLink);
}

#[test]
fn a_link_needs_an_account_that_takes_charges() {
    let order = created();
    for account in [
        ChargeAccount {
            account_id: None,
            charges_enabled: false,
        },
        ChargeAccount {
            account_id: Some("acct_1".into()),
            charges_enabled: false,
        },
    ] {
        assert_eq!(order.check_link(&account), Err(OrderError::ConnectNotReady));
    }
    assert_eq!(order.check_link(&ready()), Ok("acct_1".to_string()));
    assert_eq!(link_sent().status(), OrderStatus::PaymentLinkSent);
}

#[test]
fn paying_twice_has_one_effect() {
    let mut order = link_sent();
    let events = order.decide(payment("acct_1", "pi_1")).expect("paid");
    assert_eq!(events.len(), 1);
    events.into_iter().for_each(|e| order.apply(e));
    assert_eq!(order.status(), OrderStatus::Paid);
    assert_eq!(
        order.decide(payment("acct_1", "pi_1")),
        Ok(vec![]),
        "the same payment"
    );

    let events = order.decide(payment("acct_1", "pi_2")).expect("recorded");
    assert!(matches!(
        events[..],
        [OrderEvent::DuplicatePaymentReceived { .. }]
    ));
    events.into_iter().for_each(|e| order.apply(e));
    assert_eq!(order.status(), OrderStatus::Paid);
    assert_eq!(order.decide(payment("acct_1", "pi_2")), Ok(vec![]));
    assert!(matches!(
        order.check_link(&ready()),
        Err(OrderError::AlreadyPaid(OrderStatus::Paid))
    ));
}

#[test]
fn a_payment_to_another_account_is_refused() {
    assert!(matches!(
        link_sent().decide(payment("acct_other", "pi_1")),
        Err(OrderError::WrongAccount { .. })
    ));
}

#[test]
fn a_failed_payment_allows_a_new_link() {
    let mut order = link_sent();
    let events = order
        .decide(OrderCommand::RecordPaymentFailure {
            account_id: "acct_1".into(),
            payment_ref: "pi_1".into(),
            reason: "card_declined".into(),
            failed_at: now(),
        })
        .expect("recorded");
    events.into_iter().for_each(|e| order.apply(e));
    assert_eq!(order.status(), OrderStatus::Failed);
    assert_eq!(order.check_link(&ready()), Ok("acct_1".to_string()));
}

#[test]
fn orders_need_a_positive_amount_and_texts() {
    let create = |amount_minor| OrderCommand::CreateOrder {
        order_id: Uuid::from_u128(9),
        tenant_id: TenantId(Uuid::from_u128(1)),
        company_id: Uuid::from_u128(2),
        customer_ref: Sealed("x8v1.customer".into()),
        amount: Money {
            amount_minor,
            currency: super::super::Currency::parse("usd").expect("usd"),
        },
        description: Sealed("x8v1.description".into()),
        created_at: now(),
    };
    assert_eq!(
        Order::default().decide(create(0)),
        Err(OrderError::Money(MoneyError::NotPositive(0)))
    );
    // the texts are checked before they are sealed
    assert_eq!(
        parse_customer_ref("  "),
        Err(OrderError::InvalidText {
            field: "customer_ref",
            max: 200
        })
    );
    assert_eq!(parse_customer_ref(" c-42 "), Ok("c-42".to_string()));
    assert_eq!(
        parse_description(&"x".repeat(501)),
        Err(OrderError::InvalidText {
            field: "description",
            max: 500
        })
    );
}

#[test]
fn an_unpaid_order_is_closed_for_an_erasure_and_a_paid_one_stays() {
    // given an order with a link sent
    let mut order = link_sent();
    // when it is closed, then it closes once
    let events = order.decide(OrderCommand::CloseOrder { at: now() });
    assert_eq!(events, Ok(vec![OrderEvent::OrderClosed { at: now() }]));
    events.unwrap().into_iter().for_each(|e| order.apply(e));
    assert_eq!(order.status(), OrderStatus::Closed);
    assert_eq!(
        order.decide(OrderCommand::CloseOrder { at: now() }),
        Ok(vec![])
    );

    // given a paid order, when it is closed, then its payment stands
    let mut paid = link_sent();
    let events = paid.decide(payment("acct_1", "pi_1")).expect("paid");
    events.into_iter().for_each(|e| paid.apply(e));
    assert_eq!(
        paid.decide(OrderCommand::CloseOrder { at: now() }),
        Ok(vec![])
    );
}
