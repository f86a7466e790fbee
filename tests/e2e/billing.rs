//! Billing and payments from signed Stripe webhooks, against a local fake Stripe
//! (wiremock): signatures, dedupe, out-of-order events, plans from prices, Connect orders.

use axum::http::{Method, StatusCode};
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};
use x8_tests::{stripe, TestApp, TestClock, TestResponse};

const SECRET: &str = "whsec_x8_test";
const PRICES: &str = "price_single=SINGLE,price_double=DOUBLE,price_growth=GROWTH";

/// An app at `now` with Stripe pointed at a fake server.
async fn app_at(db: PgConnectOptions, now: DateTime<Utc>) -> (TestApp, MockServer) {
    let stripe = MockServer::start().await;
    let app = TestApp::spawn_with_clock(db, TestClock::at(now))
        .await
        .with_stripe(&stripe.uri(), &[SECRET], PRICES);
    (app, stripe)
}

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_750_000_000 + seconds, 0)
        .single()
        .unwrap()
}

/// The Stripe fixture subscription for `tenant`, on `price`, with `status`, renewing in
/// 30 days.
fn subscription(tenant: Option<Uuid>, price: &str, status: &str) -> Value {
    let mut object = stripe::subscription(tenant, price, status);
    object["items"]["data"][0]["current_period_end"] = json!(at(30 * 86_400).timestamp());
    object
}

use stripe::event;

fn position(response: &TestResponse) -> i64 {
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    response.body["position"].as_i64().unwrap_or(0)
}

async fn plan_events(app: &TestApp, tenant: Uuid) -> usize {
    app.stream_event_types("tenant", tenant)
        .await
        .iter()
        .filter(|t| *t == "PlanChanged")
        .count()
}

#[sqlx::test(migrations = "../migrations")]
async fn stripe_signatures_are_verified_on_the_raw_body(_: PgPoolOptions, db: PgConnectOptions) {
    // given the official vectors' secret and a clock 10 s after their timestamp
    let vectors: Value =
        serde_json::from_str(include_str!("../fixtures/stripe/signature-vectors.json")).unwrap();
    let payload = vectors["payload"].as_str().unwrap().to_string();
    let now = Utc.timestamp_opt(1_700_000_010, 0).single().unwrap();
    let stripe = MockServer::start().await;
    let app = TestApp::spawn_with_clock(db, TestClock::at(now))
        .await
        .with_stripe(&stripe.uri(), &["whsec_test_secret"], PRICES);
    let deliver = |header: String, body: String| {
        let app = &app;
        async move {
            app.send(
                Method::POST,
                "/api/v1/webhooks/stripe",
                None,
                &[("stripe-signature", &header)],
                Some(body),
            )
            .await
        }
    };
    let before = app.event_count().await;

    // then each vector is accepted or refused as stripe-python does, with tolerance 300 s
    for (case, accepted) in [
        (0, false),
        (1, true),
        (2, true),
        (3, true),
        (4, false),
        (5, false),
    ] {
        let header = vectors["vectors"][case]["header"]
            .as_str()
            .unwrap()
            .to_string();
        let response = deliver(header, payload.clone()).await;
        if accepted {
            assert_eq!(
                response.status,
                StatusCode::OK,
                "case {case}: {:?}",
                response.body
            );
        } else {
            response.assert_problem(400, "invalid_signature");
        }
    }
    // a body altered by one byte is refused
    let header = vectors["vectors"][6]["header"]
        .as_str()
        .unwrap()
        .to_string();
    deliver(header.clone(), format!("{payload} "))
        .await
        .assert_problem(400, "invalid_signature");
    let mut flipped = payload.clone().into_bytes();
    flipped[10] ^= 1;
    deliver(header, String::from_utf8(flipped).unwrap())
        .await
        .assert_problem(400, "invalid_signature");
    // a timestamp outside the tolerance is refused, one inside it accepted
    let body = event("evt_old", "ping", now, json!({})).to_string();
    let secret = secrecy::SecretString::from("whsec_test_secret");
    let old = x8_commands::stripe::signature::sign(body.as_bytes(), &secret, now.timestamp() - 301);
    deliver(old, body.clone())
        .await
        .assert_problem(400, "invalid_signature");
    let fresh =
        x8_commands::stripe::signature::sign(body.as_bytes(), &secret, now.timestamp() - 299);
    assert_eq!(deliver(fresh, body).await.status, StatusCode::OK);
    assert_eq!(app.event_count().await, before, "nothing appended");

    // when the secret is rotated (the new secret configured next to an unrelated one)
    let app = app.with_stripe(
        &stripe.uri(),
        &["whsec_unrelated", "whsec_test_secret_rolled_key"],
        PRICES,
    );
    let send = |case: usize| {
        let app = &app;
        let header = vectors["vectors"][case]["header"]
            .as_str()
            .unwrap()
            .to_string();
        let body = payload.clone();
        async move {
            app.send(
                Method::POST,
                "/api/v1/webhooks/stripe",
                None,
                &[("stripe-signature", &header)],
                Some(body),
            )
            .await
        }
    };
    // then a delivery signed with both old and new secrets passes, one with only the old fails
    assert_eq!(send(2).await.status, StatusCode::OK);
    send(1).await.assert_problem(400, "invalid_signature");
}

#[sqlx::test(migrations = "../migrations")]
async fn the_same_event_delivered_five_times_concurrently_has_one_effect(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    // given a business
    let (app, _stripe) = app_at(db, at(0)).await;
    let (tenant, token) = app.tenant_with_owner("Dupes", "dupes@example.com").await;
    let created = event(
        "evt_dup_1",
        "customer.subscription.created",
        at(0),
        subscription(Some(tenant), "price_growth", "active"),
    );

    // when Stripe delivers the same event five times at once
    let deliveries = (0..5).map(|_| app.stripe_webhook(&created, SECRET));
    let responses = futures::future::join_all(deliveries).await;

    // then every delivery gets 200 and the subscription and plan changed once
    for response in &responses {
        assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    }
    assert_eq!(
        app.stream_event_types("subscription", tenant).await,
        vec!["SubscriptionRecorded"]
    );
    assert_eq!(plan_events(&app, tenant).await, 1);
    let view = app
        .get_caught_up(&token, &format!("/api/v1/tenants/{tenant}/subscription"))
        .await;
    assert_eq!(view.body["plan"], "GROWTH");
    assert_eq!(view.body["subscription_status"], "active");
    assert_eq!(view.body["stripe"]["status"], "active");

    // and a sixth, later delivery is answered 200 with no effect
    let again = app.stripe_webhook(&created, SECRET).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(plan_events(&app, tenant).await, 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn an_update_arriving_before_the_create_leaves_the_newest_state(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    // given a business subscribing to DOUBLE, then upgrading to GROWTH ten seconds later
    let (app, _stripe) = app_at(db, at(20)).await;
    let (tenant, token) = app.tenant_with_owner("Order", "order@example.com").await;
    let created = event(
        "evt_created",
        "customer.subscription.created",
        at(0),
        subscription(Some(tenant), "price_double", "active"),
    );
    let mut updated = event(
        "evt_updated",
        "customer.subscription.updated",
        at(10),
        subscription(Some(tenant), "price_growth", "active"),
    );
    updated["data"]["previous_attributes"] =
        json!({ "items": { "data": [{ "price": { "id": "price_double" } }] } });

    // when Stripe delivers the update first
    position(&app.stripe_webhook(&updated, SECRET).await);
    position(&app.stripe_webhook(&created, SECRET).await);

    // then the final state is the update's
    let view = app
        .get_caught_up(&token, &format!("/api/v1/tenants/{tenant}/subscription"))
        .await;
    assert_eq!(view.body["plan"], "GROWTH", "{:?}", view.body);
    assert_eq!(view.body["stripe"]["price_id"], "price_growth");
    let usage = app.usage(&token, tenant, app.max_position().await).await;
    assert_eq!(usage.body["channel_limit"], 4);
    assert_eq!(
        app.stream_event_types("subscription", tenant).await,
        vec!["SubscriptionRecorded"],
        "the older create changed nothing"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn an_upgrade_raises_the_limit_and_a_downgrade_with_excess_channels_blocks_connects(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    // given a business in its trial (1 channel) with one connection
    let (app, _stripe) = app_at(db, at(0)).await;
    let (tenant, token) = app.tenant_with_owner("Grow", "grow@example.com").await;
    let company = app.company(&token, tenant).await;
    assert_eq!(
        app.connect_channel(&token, company, "telegram")
            .await
            .status,
        StatusCode::CREATED
    );
    app.connect_channel(&token, company, "viber")
        .await
        .assert_problem(409, "over_channel_limit");

    // when Stripe reports an active GROWTH subscription
    let growth = event(
        "evt_growth",
        "customer.subscription.created",
        at(1),
        subscription(Some(tenant), "price_growth", "active"),
    );
    position(&app.stripe_webhook(&growth, SECRET).await);

    // then the limit is 4 at once and a second channel connects
    let second = app.connect_channel(&token, company, "viber").await;
    assert_eq!(second.status, StatusCode::CREATED, "{:?}", second.body);

    // when Stripe reports a downgrade to SINGLE (a fact: never refused)
    let mut single = event(
        "evt_single",
        "customer.subscription.updated",
        at(2),
        subscription(None, "price_single", "active"),
    );
    single["data"]["previous_attributes"] =
        json!({ "items": { "data": [{ "price": { "id": "price_growth" } }] } });
    position(&app.stripe_webhook(&single, SECRET).await);

    // then the business is over its limit and a new connect is refused
    let usage = app.usage(&token, tenant, app.max_position().await).await;
    assert_eq!(usage.body["plan"], "SINGLE");
    assert_eq!(usage.body["over_limit"], true);
    assert_eq!(usage.body["channels_used"], 2);
    app.connect_channel(&token, company, "instagram")
        .await
        .assert_problem(409, "over_channel_limit");
}

#[sqlx::test(migrations = "../migrations")]
async fn unknown_types_are_ignored_and_events_for_no_tenant_are_recorded_as_unmatched(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    let (app, _stripe) = app_at(db, at(0)).await;
    let before = app.event_count().await;

    // when Stripe sends an event type X8 does not handle
    let odd = event(
        "evt_odd",
        "customer.tax_id.created",
        at(0),
        json!({"id": "txi_1"}),
    );
    let response = app.stripe_webhook(&odd, SECRET).await;

    // then it is acknowledged and nothing is appended
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.body["ignored"], "event type not handled");
    assert_eq!(app.event_count().await, before);

    // when a subscription arrives for a customer no business is known by
    let stray = event(
        "evt_stray",
        "customer.subscription.updated",
        at(0),
        subscription(None, "price_growth", "active"),
    );
    let response = app.stripe_webhook(&stray, SECRET).await;
    let again = app.stripe_webhook(&stray, SECRET).await;

    // then it is recorded once as unmatched, not dropped
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        response.body["unmatched"],
        "no tenant for this subscription"
    );
    assert_eq!(again.status, StatusCode::OK);
    let unmatched: i64 = sqlx::query_scalar(
        "select count(*) from events where event_type = 'ProviderEventUnmatched'",
    )
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    assert_eq!(unmatched, 1);

    // and a body that is not a Stripe event is 400 with nothing appended
    let count = app.event_count().await;
    let bad = app
        .stripe_webhook(&json!(["not", "an", "event"]), SECRET)
        .await;
    bad.assert_problem(400, "invalid_body");
    assert_eq!(app.event_count().await, count);
}

#[sqlx::test(migrations = "../migrations")]
async fn checkout_creates_a_subscription_session_and_a_paid_completion_sets_the_plan(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    // given a fake Stripe that creates Checkout Sessions for our tenant
    let (app, stripe) = app_at(db, at(0)).await;
    let (tenant, token) = app.tenant_with_owner("Buyer", "buyer@example.com").await;
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .and(header("authorization", "Bearer sk_test_x8"))
        .and(body_string_contains("mode=subscription"))
        .and(body_string_contains(format!(
            "client_reference_id={tenant}"
        )))
        .and(body_string_contains(format!(
            "metadata%5Btenant_id%5D={tenant}"
        )))
        .and(body_string_contains(
            "line_items%5B0%5D%5Bprice%5D=price_double",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "cs_test_1", "object": "checkout.session",
            "url": "https://checkout.stripe.com/c/pay/cs_test_1"
        })))
        .expect(1)
        .mount(&stripe)
        .await;

    // when the business asks for DOUBLE
    let path = format!("/api/v1/tenants/{tenant}/billing/checkout");
    let body = json!({"plan": "DOUBLE"}).to_string();
    let response = app
        .send(Method::POST, &path, Some(&token), &[], Some(body))
        .await;

    // then it gets the session's URL
    assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
    assert_eq!(
        response.body["url"],
        "https://checkout.stripe.com/c/pay/cs_test_1"
    );
    // and a plan without a price is refused
    let enterprise = json!({"plan": "ENTERPRISE"}).to_string();
    app.send(Method::POST, &path, Some(&token), &[], Some(enterprise))
        .await
        .assert_problem(422, "plan_not_for_sale");

    // when the session completes unpaid, then paid (the fixture, with our ids)
    let mut session: Value = serde_json::from_str(include_str!(
        "../fixtures/stripe/event.checkout.session.completed.json"
    ))
    .unwrap();
    session["created"] = json!(at(1).timestamp());
    let object = &mut session["data"]["object"];
    object["id"] = json!("cs_test_1");
    object["mode"] = json!("subscription");
    object["client_reference_id"] = json!(tenant.to_string());
    object["customer"] = json!("cus_buyer");
    object["subscription"] = json!("sub_buyer");
    position(&app.stripe_webhook(&session, SECRET).await);
    let usage = app.usage(&token, tenant, app.max_position().await).await;
    assert_eq!(usage.body["plan"], "FREE", "unpaid changes nothing");

    // when its delayed payment succeeds (tests set payment_status themselves)
    let mut paid = session.clone();
    paid["id"] = json!("evt_paid");
    paid["type"] = json!("checkout.session.async_payment_succeeded");
    paid["data"]["object"]["payment_status"] = json!("paid");
    position(&app.stripe_webhook(&paid, SECRET).await);
    position(&app.stripe_webhook(&paid, SECRET).await);

    // then the business is on the plan it checked out, once
    let usage = app.usage(&token, tenant, app.max_position().await).await;
    assert_eq!(usage.body["plan"], "DOUBLE");
    assert_eq!(plan_events(&app, tenant).await, 1);

    // and a later subscription event names only the customer: found by the link
    let mut sub = subscription(None, "price_growth", "active");
    sub["customer"] = json!("cus_buyer");
    let created = event("evt_sub_buyer", "customer.subscription.created", at(2), sub);
    position(&app.stripe_webhook(&created, SECRET).await);
    let usage = app.usage(&token, tenant, app.max_position().await).await;
    assert_eq!(usage.body["plan"], "GROWTH");
    assert_eq!(usage.body["channel_limit"], 4);
}

#[sqlx::test(migrations = "../migrations")]
async fn cancellation_at_period_end_keeps_the_plan_until_the_deadline_ends_it(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    // given an active GROWTH subscription set to cancel at its period's end
    let clock = TestClock::at(at(0));
    let stripe = MockServer::start().await;
    let app = TestApp::spawn_with_clock(db, clock.clone())
        .await
        .with_stripe(&stripe.uri(), &[SECRET], PRICES);
    let (tenant, token) = app
        .tenant_with_owner("Leaving", "leaving@example.com")
        .await;
    let mut object = subscription(Some(tenant), "price_growth", "active");
    object["cancel_at_period_end"] = json!(true);
    let cancelling = event("evt_cancel", "customer.subscription.updated", at(1), object);
    position(&app.stripe_webhook(&cancelling, SECRET).await);
    let usage = app.usage(&token, tenant, app.max_position().await).await;
    assert_eq!(usage.body["plan"], "GROWTH");

    // when the period has not ended, the deadline does not run
    app.usage(&token, tenant, app.max_position().await).await;
    clock.advance(Duration::days(29));
    app.deadlines().run_due(10).await.unwrap();
    assert_eq!(plan_events(&app, tenant).await, 1);

    // when the period ends
    clock.advance(Duration::days(2));
    let report = app.deadlines().run_due(10).await.unwrap();

    // then the deadline ends it: back to FREE, cancelled
    assert!(report.done >= 1, "{report:?}");
    let view = app
        .get_caught_up(&token, &format!("/api/v1/tenants/{tenant}/subscription"))
        .await;
    assert_eq!(view.body["plan"], "FREE", "{:?}", view.body);
    assert_eq!(view.body["subscription_status"], "cancelled");
    // and Stripe's own deletion afterwards changes nothing more
    let mut deleted = subscription(Some(tenant), "price_growth", "canceled");
    deleted["cancel_at_period_end"] = json!(true);
    let deleted = event(
        "evt_deleted",
        "customer.subscription.deleted",
        at(31 * 86_400),
        deleted,
    );
    let before = plan_events(&app, tenant).await;
    position(&app.stripe_webhook(&deleted, SECRET).await);
    assert_eq!(plan_events(&app, tenant).await, before);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_failed_invoice_records_attempts_and_revenue_counts_active_subscriptions(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    let (app, _stripe) = app_at(db, at(0)).await;
    let admin = app.admin().await;
    let (tenant, token) = app
        .tenant_with_owner("Dunning", "dunning@example.com")
        .await;
    let created = event(
        "evt_d1",
        "customer.subscription.created",
        at(0),
        subscription(Some(tenant), "price_growth", "active"),
    );
    position(&app.stripe_webhook(&created, SECRET).await);

    // when an invoice payment fails (the 2025 invoice shape: no subscription metadata,
    // the customer names the business)
    let invoice = json!({
        "id": "in_1", "object": "invoice", "customer": "cus_QXg1o8vcGmoR32",
        "amount_due": 2000, "currency": "usd", "attempt_count": 2,
        "next_payment_attempt": at(3 * 86_400).timestamp()
    });
    position(
        &app.stripe_webhook(
            &event("evt_f1", "invoice.payment_failed", at(5), invoice),
            SECRET,
        )
        .await,
    );

    // then the subscription view shows the attempt and the next one
    let view = app
        .get_caught_up(&token, &format!("/api/v1/tenants/{tenant}/subscription"))
        .await;
    let failure = &view.body["last_payment_failure"];
    assert_eq!(failure["invoice_id"], "in_1", "{:?}", view.body);
    assert_eq!(failure["attempt_count"], 2);
    assert!(failure["next_attempt_at"].is_string());

    // and revenue counts the active subscription's monthly amount (the fixture's $20.00)
    let revenue = app.get_caught_up(&admin, "/api/v1/admin/revenue").await;
    assert_eq!(
        revenue.body["mrr"],
        json!([{"currency": "USD", "amount_minor": 2000}])
    );
    assert_eq!(revenue.body["subscriptions_by_status"]["active"], 1);
    app.get_caught_up(&token, "/api/v1/admin/revenue")
        .await
        .assert_problem(403, "forbidden");

    // when the invoice is paid, the failure is cleared
    let paid = json!({"id": "in_1", "object": "invoice", "customer": "cus_QXg1o8vcGmoR32",
                      "amount_paid": 2000, "currency": "usd"});
    position(
        &app.stripe_webhook(&event("evt_p1", "invoice.paid", at(6), paid), SECRET)
            .await,
    );
    let view = app
        .get_caught_up(&token, &format!("/api/v1/tenants/{tenant}/subscription"))
        .await;
    assert_eq!(view.body["last_payment_failure"], Value::Null);
}

#[sqlx::test(migrations = "../migrations")]
async fn an_order_is_paid_once_and_links_need_charges_enabled(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    // given a business whose admin-linked Connect account cannot take charges yet
    let (app, stripe) = app_at(db, at(0)).await;
    let admin = app.admin().await;
    let (tenant, token) = app.tenant_with_owner("Pizza", "pizza@example.com").await;
    let company = app.company(&token, tenant).await;
    let link = json!({"account_id": "acct_pizza"}).to_string();
    let connect = format!("/api/v1/tenants/{tenant}/connect");
    let linked = app
        .send(Method::PUT, &connect, Some(&admin), &[], Some(link))
        .await;
    assert_eq!(linked.status, StatusCode::OK, "{:?}", linked.body);
    let order = json!({"customer_ref": "cust-7", "amount_minor": 2500, "currency": "eur",
                       "description": "Two pizzas"})
    .to_string();
    let created = app
        .send(
            Method::POST,
            &format!("/api/v1/companies/{company}/orders"),
            Some(&token),
            &[],
            Some(order),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["status"], "no_payment_link");
    let order_id: Uuid = created.body["order_id"].as_str().unwrap().parse().unwrap();
    let link_path = format!("/api/v1/orders/{order_id}/payment-link");

    // when a payment link is asked for, it is refused
    app.send(Method::POST, &link_path, Some(&token), &[], None)
        .await
        .assert_problem(409, "connect_not_ready");

    // when Stripe reports the account can take charges (from the connected account)
    let mut account: Value =
        serde_json::from_str(include_str!("../fixtures/stripe/account.json")).unwrap();
    account["id"] = json!("acct_pizza");
    account["charges_enabled"] = json!(true);
    account["metadata"] = json!({});
    let mut updated = event("evt_acct", "account.updated", at(1), account);
    updated["account"] = json!("acct_pizza");
    position(&app.stripe_webhook(&updated, SECRET).await);

    // then a link is made on the connected account
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .and(header("stripe-account", "acct_pizza"))
        .and(body_string_contains("mode=payment"))
        .and(body_string_contains(format!(
            "metadata%5Border_id%5D={order_id}"
        )))
        .and(body_string_contains("unit_amount%5D=2500"))
        .and(body_string_contains("currency%5D=eur"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "cs_order_1", "url": "https://checkout.stripe.com/c/pay/cs_order_1"
        })))
        .expect(1)
        .mount(&stripe)
        .await;
    let sent = app
        .send(Method::POST, &link_path, Some(&token), &[], None)
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{:?}", sent.body);
    assert_eq!(
        sent.body["url"],
        "https://checkout.stripe.com/c/pay/cs_order_1"
    );

    // when the payment succeeds, and Stripe also reports the completed session and
    // redelivers the payment
    let intent = json!({"id": "pi_1", "object": "payment_intent", "amount_received": 2500,
                        "currency": "eur", "metadata": {"order_id": order_id.to_string()}});
    let mut succeeded = event("evt_pi_1", "payment_intent.succeeded", at(2), intent);
    succeeded["account"] = json!("acct_pizza");
    let session = json!({"id": "cs_order_1", "object": "checkout.session", "mode": "payment",
                         "payment_status": "paid", "payment_intent": "pi_1",
                         "amount_total": 2500, "currency": "eur",
                         "metadata": {"order_id": order_id.to_string()}});
    let mut completed = event("evt_cs_1", "checkout.session.completed", at(2), session);
    completed["account"] = json!("acct_pizza");
    let deliveries = [&succeeded, &completed, &succeeded, &completed]
        .map(|delivery| app.stripe_webhook(delivery, SECRET));
    for response in futures::future::join_all(deliveries).await {
        position(&response);
    }

    // then the order is paid once
    assert_eq!(
        app.stream_event_types("order", order_id).await,
        vec!["OrderCreated", "PaymentLinkSent", "OrderPaid"]
    );
    let view = app
        .get_caught_up(&token, &format!("/api/v1/orders/{order_id}"))
        .await;
    assert_eq!(view.body["status"], "paid", "{:?}", view.body);
    assert_eq!(view.body["amount_paid_minor"], 2500);
    assert_eq!(view.body["currency"], "EUR");
    let log = app
        .get_caught_up(
            &token,
            &format!("/api/v1/tenants/{tenant}/orders?status=paid"),
        )
        .await;
    assert_eq!(log.body.as_array().map(Vec::len), Some(1), "{:?}", log.body);
    // and a link for a paid order is refused; a new order starts over
    app.send(Method::POST, &link_path, Some(&token), &[], None)
        .await
        .assert_problem(409, "order_already_paid");
    // and the SaaS subscription never saw any of it
    assert!(app
        .stream_event_types("subscription", tenant)
        .await
        .is_empty());
}

#[sqlx::test(migrations = "../migrations")]
async fn onboarding_creates_one_connected_account_and_returns_its_link(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    // given a fake Stripe that creates accounts and account links
    let (app, stripe) = app_at(db, at(0)).await;
    let (tenant, token) = app
        .tenant_with_owner("Onboard", "onboard@example.com")
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/accounts"))
        .and(body_string_contains(format!(
            "metadata%5Btenant_id%5D={tenant}"
        )))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "acct_new"})))
        .expect(1)
        .mount(&stripe)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/account_links"))
        .and(body_string_contains("account=acct_new"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "url": "https://connect.stripe.com/setup/e/acct_new/abc"
        })))
        .expect(2)
        .mount(&stripe)
        .await;
    let path = format!("/api/v1/tenants/{tenant}/connect/onboarding");

    // when the business starts onboarding twice
    let first = app.send(Method::POST, &path, Some(&token), &[], None).await;
    let second = app.send(Method::POST, &path, Some(&token), &[], None).await;

    // then one account was created and both answers carry its onboarding link
    for response in [&first, &second] {
        assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
        assert_eq!(response.body["account_id"], "acct_new");
        assert_eq!(
            response.body["url"],
            "https://connect.stripe.com/setup/e/acct_new/abc"
        );
    }
    let view = app
        .get_caught_up(&token, &format!("/api/v1/tenants/{tenant}/connect"))
        .await;
    assert_eq!(view.body["account_id"], "acct_new");
    assert_eq!(view.body["charges_enabled"], false);

    // and the business may disconnect it
    let path = format!("/api/v1/tenants/{tenant}/connect");
    let gone = app
        .send(Method::DELETE, &path, Some(&token), &[], None)
        .await;
    assert_eq!(gone.status, StatusCode::OK);
    app.send(Method::DELETE, &path, Some(&token), &[], None)
        .await
        .assert_problem(409, "connect_not_linked");
}

#[sqlx::test(migrations = "../migrations")]
async fn bad_billing_input_is_refused_and_changes_nothing(_: PgPoolOptions, db: PgConnectOptions) {
    let (app, _stripe) = app_at(db, at(0)).await;
    let (tenant, token) = app.tenant_with_owner("Strict", "strict@example.com").await;
    let (other, other_token) = app.tenant_with_owner("Other", "other@example.com").await;
    let company = app.company(&token, tenant).await;
    let before = app.event_count().await;
    let orders = format!("/api/v1/companies/{company}/orders");
    let order = |amount: Value, currency: &str| {
        json!({"customer_ref": "c", "amount_minor": amount, "currency": currency,
               "description": "d"})
        .to_string()
    };

    // amounts are positive integers of minor units, currencies ISO-4217 codes
    for (body, status, code) in [
        (order(json!(0), "usd"), 422, Some("invalid_amount")),
        (order(json!(-5), "usd"), 422, Some("invalid_amount")),
        (order(json!(100), "dollars"), 422, Some("invalid_amount")),
        (order(json!(12.5), "usd"), 0, None),
        ("{not json".to_string(), 0, None),
    ] {
        let response = app
            .send(Method::POST, &orders, Some(&token), &[], Some(body))
            .await;
        match code {
            Some(code) => response.assert_problem(status, code),
            None => assert!(response.status.is_client_error(), "{:?}", response.body),
        }
    }
    // an unknown plan, another business's tenant, a non-admin linking an account
    let checkout = format!("/api/v1/tenants/{tenant}/billing/checkout");
    let gold = json!({"plan": "GOLD"}).to_string();
    let response = app
        .send(Method::POST, &checkout, Some(&token), &[], Some(gold))
        .await;
    assert!(response.status.is_client_error(), "{:?}", response.body);
    let double = json!({"plan": "DOUBLE"}).to_string();
    app.send(
        Method::POST,
        &checkout,
        Some(&other_token),
        &[],
        Some(double),
    )
    .await
    .assert_problem(404, "not_found");
    let stray = order(json!(100), "usd");
    app.send(Method::POST, &orders, Some(&other_token), &[], Some(stray))
        .await
        .assert_problem(404, "not_found");
    let link = json!({"account_id": "acct_1"}).to_string();
    let connect = format!("/api/v1/tenants/{other}/connect");
    app.send(Method::PUT, &connect, Some(&other_token), &[], Some(link))
        .await
        .assert_problem(403, "forbidden");
    let filter = format!("/api/v1/tenants/{tenant}/orders?status=lost");
    app.send(Method::GET, &filter, Some(&token), &[], None)
        .await
        .assert_problem(400, "invalid_query");
    assert_eq!(app.event_count().await, before, "nothing appended");
}
