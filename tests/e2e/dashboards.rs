//! Client, manager and admin dashboards against scenarios whose figures are computed by
//! hand, and their isolation between businesses.

use axum::http::{Method, StatusCode};
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};
use x8_tests::{stripe, telegram, TestApp, TestClock, TestResponse};

const STRIPE_SECRET: &str = "whsec_x8_dashboards";

fn t0() -> DateTime<Utc> {
    "2026-11-10T08:00:00Z".parse().unwrap()
}

fn created(response: TestResponse, id: &str) -> String {
    assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
    response.body[id].as_str().unwrap().to_string()
}

async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> TestResponse {
    app.send_json(Method::POST, path, token, &body).await
}

async fn ok(response: TestResponse) -> Value {
    assert!(response.status.is_success(), "{:?}", response.body);
    response.body
}

#[sqlx::test(migrations = "../migrations")]
async fn the_client_dashboard_shows_the_figures_of_its_business(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    // Given a business on DOUBLE with two companies and a Telegram bot in each
    let bot = telegram::fake_bot_api(200).await;
    let clock = TestClock::at(t0());
    let app = TestApp::spawn_with_clock(db, clock.clone())
        .await
        .with_bot_apis(&bot.uri());
    let admin = app.admin().await;
    let (tenant, token) = app.tenant_with_owner("Cafe", "owner@cafe.test").await;
    ok(app
        .set_plan(&admin, tenant, json!({"plan": "DOUBLE"}))
        .await)
    .await;
    let shop = app.company(&token, tenant).await;
    let kiosk: Uuid = created(
        app.create_company(&token, tenant, "Kiosk", "Product").await,
        "company_id",
    )
    .parse()
    .unwrap();
    let shop_bot = app
        .connection_with(&token, shop, "telegram", &telegram::credentials())
        .await;
    app.connection_with(&token, kiosk, "telegram", &telegram::credentials())
        .await;

    // And in the shop: chat 1 answered after 60 s and, later, after 300 s (a TYPE2); chat 2
    // waiting; chat 3 answered after 100 s and resolved
    let receive = |chat: i64, update: i64, secs: i64| {
        let app = &app;
        async move {
            let message = telegram::from_chat(
                telegram::text_at(update, update, t0() + Duration::seconds(secs), "Hello"),
                chat,
            );
            let answer = app
                .telegram_update(shop_bot, Some(telegram::SECRET), &message)
                .await;
            ok(answer).await["conversation_id"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let reply = |conversation: String, secs: i64, kind: &'static str| {
        let (app, token, clock) = (&app, &token, &clock);
        async move {
            clock.set(t0() + Duration::seconds(secs));
            let sent = app
                .reply(token, &conversation, json!({"text": "Hi", "type": kind}))
                .await;
            assert_eq!(sent.status, StatusCode::CREATED, "{:?}", sent.body);
        }
    };
    let chat1 = receive(1, 1, 0).await;
    reply(chat1.clone(), 60, "TYPE1").await;
    receive(1, 2, 120).await;
    reply(chat1, 420, "TYPE2").await;
    receive(2, 3, 500).await;
    let chat3 = receive(3, 4, 600).await;
    reply(chat3.clone(), 700, "TYPE1").await;
    ok(post(
        &app,
        &token,
        &format!("/api/v1/conversations/{chat3}/resolve"),
        json!({}),
    )
    .await)
    .await;

    // And three orders without payment links: €10.00, €25.00 and $7.00
    for (amount, currency) in [(1000, "EUR"), (2500, "EUR"), (700, "USD")] {
        let order = json!({"customer_ref": "c-1", "amount_minor": amount,
                           "currency": currency, "description": "Coffee beans"});
        created(
            post(
                &app,
                &token,
                &format!("/api/v1/companies/{shop}/orders"),
                order,
            )
            .await,
            "order_id",
        );
    }

    // And three deliveries: one pending, one in transit, one delivered
    let mut deliveries = vec![];
    for reference in ["D-1", "D-2", "D-3"] {
        let body = json!({"order_reference": reference, "address": "Knez Mihailova 12"});
        let path = format!("/api/v1/companies/{shop}/deliveries");
        deliveries.push(created(
            post(&app, &token, &path, body).await,
            "delivery_id",
        ));
    }
    let checkpoints = [
        (&deliveries[1], "InTransit", 800),
        (&deliveries[2], "InTransit", 800),
        (&deliveries[2], "OutForDelivery", 900),
        (&deliveries[2], "Delivered", 1000),
    ];
    for (delivery, status, secs) in checkpoints {
        let body = json!({"status": status, "occurred_at": t0() + Duration::seconds(secs)});
        let path = format!("/api/v1/deliveries/{delivery}/checkpoints");
        ok(post(&app, &token, &path, body).await).await;
    }

    // And a loyalty program at 5 %: a buys for €100 (5 points) and redeems 3, b buys for
    // €40 (2 points); ratings 10 (a), 5 (b), 8 (c)
    let settings = format!("/api/v1/tenants/{tenant}/loyalty/settings");
    ok(app
        .send_json(
            Method::PUT,
            &settings,
            &token,
            &json!({"cashback_bps": 500}),
        )
        .await)
    .await;
    let mut accounts = vec![];
    for customer in ["a", "b", "c"] {
        let path = format!("/api/v1/tenants/{tenant}/loyalty/accounts");
        let body = json!({"customer_ref": customer});
        accounts.push(created(post(&app, &token, &path, body).await, "account_id"));
    }
    let account = |i: usize, what: &str| format!("/api/v1/loyalty/accounts/{}/{what}", accounts[i]);
    for (i, amount) in [(0, 10_000), (1, 4_000)] {
        let body = json!({"amount_minor": amount, "currency": "EUR", "reference": format!("p{i}")});
        ok(post(&app, &token, &account(i, "purchases"), body).await).await;
    }
    let redemption = json!({"points": 3, "reference": "r1"});
    ok(post(&app, &token, &account(0, "redemptions"), redemption).await).await;
    for (i, score) in [(0, 10), (1, 5), (2, 8)] {
        ok(post(&app, &token, &account(i, "nps"), json!({"score": score})).await).await;
    }

    // When the owner reads its dashboard
    let dashboard = app
        .get_caught_up(&token, &format!("/api/v1/dashboards/client/{tenant}"))
        .await;
    assert_eq!(dashboard.status, StatusCode::OK, "{:?}", dashboard.body);
    let d = &dashboard.body;

    // Then the plan and usage
    assert_eq!(d["plan"], "DOUBLE");
    assert_eq!(d["status"], "active");
    assert_eq!(d["usage"]["channels_used"], 2);
    assert_eq!(d["usage"]["channel_limit"], 2);
    assert_eq!(d["usage"]["over_limit"], false);
    // And the shop: 4 inbound texts; 2 TYPE1 and 1 TYPE2 out; responses 60, 300, 100 s
    // (mean 460 / 3, nearest-rank median 100); 2 open, 1 unanswered; its bot
    let companies = d["companies"].as_array().unwrap();
    assert_eq!(companies.len(), 2);
    let shop_figures = &companies[0];
    assert_eq!(shop_figures["code"], "COMP001");
    assert_eq!(
        shop_figures["messages"],
        json!({"inbound": {"text": 4, "media": 0, "callback": 0},
               "outbound": {"TYPE1": 2, "TYPE2": 1, "TYPE3": 0}})
    );
    let response = &shop_figures["first_response_secs"];
    assert_eq!(response["count"], 3);
    assert!((response["avg"].as_f64().unwrap() - 460.0 / 3.0).abs() < 1e-9);
    assert_eq!(response["median"], 100);
    assert_eq!(
        shop_figures["conversations"],
        json!({"open": 2, "unanswered": 1})
    );
    let shop_channels = shop_figures["channels"].as_array().unwrap();
    assert_eq!(shop_channels.len(), 1);
    assert_eq!(shop_channels[0]["channel_id"], shop_bot.to_string());
    assert_eq!(shop_channels[0]["platform"], "telegram");
    // And the kiosk: nothing yet but its bot
    let kiosk_figures = &companies[1];
    assert_eq!(kiosk_figures["code"], "COMP002");
    assert_eq!(kiosk_figures["messages"]["inbound"]["text"], 0);
    assert_eq!(
        kiosk_figures["first_response_secs"],
        json!({"count": 0, "avg": null, "median": null})
    );
    assert_eq!(
        kiosk_figures["conversations"],
        json!({"open": 0, "unanswered": 0})
    );
    assert_eq!(kiosk_figures["channels"].as_array().unwrap().len(), 1);
    // And customer payments by status and currency
    assert_eq!(
        d["payments"],
        json!([
            {"status": "no_payment_link", "currency": "EUR", "count": 2, "amount_minor": 3500},
            {"status": "no_payment_link", "currency": "USD", "count": 1, "amount_minor": 700}
        ])
    );
    // And deliveries by status, every status listed
    assert_eq!(d["deliveries"]["Pending"], 1);
    assert_eq!(d["deliveries"]["InTransit"], 1);
    assert_eq!(d["deliveries"]["Delivered"], 1);
    assert_eq!(d["deliveries"]["Exception"], 0);
    assert_eq!(d["deliveries"].as_object().unwrap().len(), 9);
    // And loyalty: 7 issued, 3 redeemed, 4 outstanding; NPS (1 − 1) / 3 = 0
    assert_eq!(
        d["loyalty"],
        json!({"accounts": 3, "points_issued": 7, "points_redeemed": 3,
               "points_outstanding": 4,
               "nps": {"score": 0.0, "ratings": 3, "promoters": 1, "passives": 1,
                       "detractors": 1}})
    );

    // And the day's metrics agree: 1 delivered, 7 points accrued, 3 redeemed
    let metrics = app
        .get_caught_up(
            &token,
            &format!("/api/v1/metrics/daily?tenant_id={tenant}&from=2026-11-10&to=2026-11-10"),
        )
        .await;
    let day = &metrics.body["days"][0];
    assert_eq!(day["deliveries"], json!({"delivered": 1, "failed": 0}));
    assert_eq!(day["points"], json!({"accrued": 7, "redeemed": 3}));
    assert_eq!(day["messages_in"]["text"], 4);
    assert_eq!(day["conversations_started"], 3);
}

/// A subscription to `price` for `tenant`, as customer `customer`, renewing at `renews`.
fn subscription(tenant: Uuid, customer: &str, price: &str, renews: DateTime<Utc>) -> Value {
    let mut object = stripe::subscription(Some(tenant), price, "active");
    object["id"] = json!(format!("sub_{customer}"));
    object["customer"] = json!(customer);
    object["items"]["data"][0]["current_period_end"] = json!(renews.timestamp());
    object
}

#[sqlx::test(migrations = "../migrations")]
async fn manager_and_admin_dashboards_show_businesses_revenue_trials_and_failures(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    // Given Stripe, and a WAHA that cannot start sessions
    let stripe_api = MockServer::start().await;
    let waha = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&waha)
        .await;
    let clock = TestClock::at(t0() - Duration::days(5));
    let app = TestApp::spawn_with_clock(db, clock.clone())
        .await
        .with_stripe(
            &stripe_api.uri(),
            &[STRIPE_SECRET],
            "price_single=SINGLE,price_double=DOUBLE",
        )
        .with_waha(&waha.uri(), None);
    // And Deli registered five days ago (its trial ends in two days), the others now
    let (deli, _) = app.tenant_with_owner("Deli", "owner@deli.test").await;
    clock.set(t0());
    let (cafe, cafe_token) = app.tenant_with_owner("Cafe", "owner@cafe.test").await;
    let (bakery, bakery_token) = app.tenant_with_owner("Bakery", "owner@bakery.test").await;
    let (shady, _) = app.tenant_with_owner("Shady", "owner@shady.test").await;
    let (gone, _) = app.tenant_with_owner("Gone", "owner@gone.test").await;
    let admin = app.admin().await;
    let (m1, m1_token) = app.manager(&admin, "m1@x8.test").await;
    let (m2, m2_token) = app.manager(&admin, "m2@x8.test").await;
    for (tenant, manager) in [(cafe, m1), (bakery, m1), (deli, m2)] {
        ok(app.assign_manager(&admin, tenant, manager, None).await).await;
    }
    let suspension = format!("/api/v1/tenants/{shady}/suspension");
    ok(post(&app, &admin, &suspension, json!({"reason": "fraud"})).await).await;
    // And Cafe pays $20.00 a month for SINGLE, renewing in 30 days; Gone subscribed and
    // cancelled this month
    let renews = t0() + Duration::days(30);
    for (id, event_type, object) in [
        (
            "evt_1",
            "customer.subscription.created",
            subscription(cafe, "cus_cafe", "price_single", renews),
        ),
        (
            "evt_2",
            "customer.subscription.created",
            subscription(gone, "cus_gone", "price_double", renews),
        ),
    ] {
        ok(app
            .stripe_webhook(&stripe::event(id, event_type, t0(), object), STRIPE_SECRET)
            .await)
        .await;
    }
    let mut cancelled = subscription(gone, "cus_gone", "price_double", renews);
    cancelled["status"] = json!("canceled");
    let deleted = stripe::event(
        "evt_3",
        "customer.subscription.deleted",
        t0() + Duration::hours(1),
        cancelled,
    );
    ok(app.stripe_webhook(&deleted, STRIPE_SECRET).await).await;
    // And Cafe's WhatsApp failed to start (ERROR); Bakery has a Telegram bot that a
    // customer wrote to an hour from now
    let cafe_company = app.company(&cafe_token, cafe).await;
    ok(app
        .connect_channel(&cafe_token, cafe_company, "whatsapp")
        .await)
    .await;
    let bakery_company = app.company(&bakery_token, bakery).await;
    let bakery_bot = app
        .connection_with(
            &bakery_token,
            bakery_company,
            "telegram",
            &telegram::credentials(),
        )
        .await;
    let message = telegram::text_at(1, 1, t0() + Duration::hours(1), "Bread?");
    ok(app
        .telegram_update(bakery_bot, Some(telegram::SECRET), &message)
        .await)
    .await;
    // And two Telegram deliveries with a wrong secret and a Stripe one with a bad signature
    for _ in 0..2 {
        app.telegram_update(bakery_bot, Some("wrong"), &message)
            .await
            .assert_problem(401, "invalid_signature");
    }
    app.send(
        Method::POST,
        "/api/v1/webhooks/stripe",
        None,
        &[("stripe-signature", "t=1,v1=00")],
        Some("{}".into()),
    )
    .await
    .assert_problem(400, "invalid_signature");

    // When manager 1 reads its dashboard
    let path = format!("/api/v1/dashboards/manager/{m1}");
    let dashboard = app.get_caught_up(&m1_token, &path).await;
    assert_eq!(dashboard.status, StatusCode::OK, "{:?}", dashboard.body);
    // Then its two businesses, by name
    let businesses = dashboard.body["businesses"].as_array().unwrap();
    let names: Vec<&str> = businesses
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Bakery", "Cafe"]);
    let (bakery_row, cafe_row) = (&businesses[0], &businesses[1]);
    assert_eq!(bakery_row["plan"], "FREE");
    assert_eq!(bakery_row["subscription_status"], "trialing");
    assert_eq!(bakery_row["renews_at"], json!(t0() + Duration::days(7)));
    assert_eq!(bakery_row["channels_in_error"], 0);
    assert_eq!(
        bakery_row["last_activity_at"],
        json!(t0() + Duration::hours(1))
    );
    assert_eq!(cafe_row["plan"], "SINGLE");
    assert_eq!(cafe_row["subscription_status"], "active");
    assert_eq!(cafe_row["renews_at"], json!(renews));
    assert_eq!(cafe_row["cancel_at_period_end"], false);
    assert_eq!(cafe_row["over_limit"], false);
    assert_eq!(cafe_row["channels_used"], 1);
    assert_eq!(cafe_row["channel_limit"], 1);
    assert_eq!(cafe_row["channels_in_error"], 1);
    assert_eq!(cafe_row["last_activity_at"], json!(t0()));
    // And manager 2 sees only Deli, and not manager 1's dashboard; a client sees neither
    let other = app
        .get_caught_up(&m2_token, &format!("/api/v1/dashboards/manager/{m2}"))
        .await;
    assert_eq!(other.body["businesses"].as_array().unwrap().len(), 1);
    assert_eq!(other.body["businesses"][0]["name"], "Deli");
    app.get_caught_up(&m2_token, &path)
        .await
        .assert_problem(404, "not_found");
    app.get_caught_up(&cafe_token, &path)
        .await
        .assert_problem(404, "not_found");
    // And an ADMIN sees any manager's
    let as_admin = app.get_caught_up(&admin, &path).await;
    assert_eq!(as_admin.body["businesses"].as_array().unwrap().len(), 2);

    // When the ADMIN reads the platform dashboard
    let platform = app.get_caught_up(&admin, "/api/v1/dashboards/admin").await;
    assert_eq!(platform.status, StatusCode::OK, "{:?}", platform.body);
    let p = &platform.body;
    // Then five businesses, one suspended
    assert_eq!(
        p["businesses"],
        json!({"total": 5, "by_status": {"active": 4, "suspended": 1}})
    );
    assert_eq!(
        p["subscriptions"],
        json!({"total": 2, "by_status": {"active": 1, "canceled": 1}})
    );
    // And Deli and Bakery on trial (Shady is suspended), Deli's ending within 3 days
    assert_eq!(p["trials"], json!({"active": 2, "ending_within_3_days": 1}));
    assert_eq!(p["mrr"], json!([{"currency": "USD", "amount_minor": 2000}]));
    assert_eq!(p["churn_this_month"], json!({"ended": 1, "cancelling": 0}));
    let channels = p["channels"].as_array().unwrap();
    assert_eq!(channels.len(), 2, "{channels:?}");
    assert!(channels.contains(&json!({"platform": "whatsapp", "status": "ERROR", "count": 1})));
    assert!(channels
        .iter()
        .any(|c| c["platform"] == "telegram" && c["count"] == 1));
    let failures: Vec<(String, String, i64)> = p["webhook_failures_24h"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["provider"].as_str().unwrap().to_string(),
                f["code"].as_str().unwrap().to_string(),
                f["count"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        failures,
        [
            ("stripe".to_string(), "invalid_signature".to_string(), 1),
            ("telegram".to_string(), "invalid_signature".to_string(), 2)
        ]
    );
    // And no one else reads it
    app.get_caught_up(&m1_token, "/api/v1/dashboards/admin")
        .await
        .assert_problem(403, "forbidden");
}

#[sqlx::test(migrations = "../migrations")]
async fn every_dashboard_and_metrics_read_of_another_business_is_404(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    // Given two businesses
    let app = TestApp::spawn(db).await;
    let (mine, my_token) = app.tenant_with_owner("Mine", "owner@mine.test").await;
    let (theirs, _) = app.tenant_with_owner("Theirs", "owner@theirs.test").await;
    let admin = app.admin().await;
    let (manager, _) = app.manager(&admin, "m@x8.test").await;
    ok(app.assign_manager(&admin, theirs, manager, None).await).await;
    // When one reads the other's dashboards and metrics: 404, as for what does not exist
    for path in [
        format!("/api/v1/dashboards/client/{theirs}"),
        format!("/api/v1/dashboards/manager/{manager}"),
        format!("/api/v1/metrics/daily?tenant_id={theirs}"),
        format!("/api/v1/metrics/daily?tenant_id={theirs}&group_by=company"),
        format!("/api/v1/dashboards/client/{}", Uuid::new_v4()),
    ] {
        app.get_caught_up(&my_token, &path)
            .await
            .assert_problem(404, "not_found");
    }
    // And its own are readable
    for path in [
        format!("/api/v1/dashboards/client/{mine}"),
        format!("/api/v1/metrics/daily?tenant_id={mine}"),
    ] {
        let response = app.get_caught_up(&my_token, &path).await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "{path}: {:?}",
            response.body
        );
    }
}
