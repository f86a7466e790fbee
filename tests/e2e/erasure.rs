//! Hard delete (DOMAIN.md "Hard delete"): the erasure process against fake Stripe, WAHA,
//! Telegram and cleanup servers, its certificate, crypto-shredding checked over every
//! table, a crash between steps, retried and abandoned cleanups, cancellation.

use axum::http::{Method, StatusCode};
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};
use x8_domain::erasure::CleanupTarget;
use x8_tests::{stripe, telegram, TestApp, TestClock, TestResponse, PASSWORD};

const STRIPE_SECRET: &str = "whsec_x8_erasure";
const PRICES: &str = "price_growth=GROWTH";

/// What the erased business's people wrote or were: none of it may stay readable.
const PERSONAL: [&str; 13] = [
    "Erase Me Clinic",
    "Dental Care Erasović",
    "erase.owner@x8.test",
    "loyal-customer-+381605557777",
    "order-cust-1",
    "Consultation for Erasović",
    "Erasović",
    "my-secret-diagnosis-4411",
    "Knez Mihailova 12",
    "Ana Jovanović",
    "+381609999999",
    "Marko Petrović",
    "+381601234567",
];

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap()
}

/// Fakes of every outside system an erasure calls.
struct Fakes {
    stripe: MockServer,
    waha: MockServer,
    bots: MockServer,
    cleanups: MockServer,
}

impl Fakes {
    async fn start() -> Self {
        let waha = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/api/sessions"))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({"status": "STARTING"})))
            .mount(&waha)
            .await;
        Self {
            stripe: MockServer::start().await,
            waha,
            bots: telegram::fake_bot_api(200).await,
            cleanups: MockServer::start().await,
        }
    }

    async fn app(&self, db: PgConnectOptions, clock: Arc<TestClock>) -> TestApp {
        TestApp::spawn_with_clock(db, clock)
            .await
            .with_stripe(&self.stripe.uri(), &[STRIPE_SECRET], PRICES)
            .with_waha(&self.waha.uri(), None)
            .with_bot_apis(&self.bots.uri())
            .with_cleanups(&self.cleanups.uri(), &CleanupTarget::ALL)
    }

    /// Every cleanup endpoint answers 200, once each.
    async fn cleanups_succeed_once(&self) {
        for endpoint in ["/n8n", "/kb", "/media"] {
            Mock::given(method("POST"))
                .and(path(endpoint))
                .respond_with(ResponseTemplate::new(200))
                .expect(1)
                .mount(&self.cleanups)
                .await;
        }
    }
}

/// A business with something of every kind: two channels (Telegram, WhatsApp), a
/// conversation, a Stripe subscription, a Connect account, an order, a loyalty account
/// with points, a courier and a delivery.
struct Business {
    tenant: Uuid,
    owner: String,
    telegram: Uuid,
    delivery: String,
}

async fn business_with_everything(app: &TestApp, fakes: &Fakes, admin: &str) -> Business {
    let (tenant, owner) = app
        .tenant_with_owner("Erase Me Clinic", "erase.owner@x8.test")
        .await;
    let plan = app.set_plan(admin, tenant, json!({"plan": "GROWTH"})).await;
    assert_eq!(plan.status, StatusCode::OK, "{:?}", plan.body);
    let created = app
        .create_company(&owner, tenant, "Dental Care Erasović", "Service")
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let company: Uuid = created.body["company_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    // channels and a customer's message
    let telegram = app
        .connection_with(&owner, company, "telegram", &telegram::credentials())
        .await;
    let whatsapp = app.connect_channel(&owner, company, "whatsapp").await;
    assert_eq!(whatsapp.status, StatusCode::CREATED, "{:?}", whatsapp.body);
    let mut update = telegram::text(1, 1, 0, "my-secret-diagnosis-4411");
    update["message"]["from"]["last_name"] = json!("Erasović");
    update["message"]["chat"]["last_name"] = json!("Erasović");
    let received = app
        .telegram_update(telegram, Some(telegram::SECRET), &update)
        .await;
    assert_eq!(received.status, StatusCode::OK, "{:?}", received.body);

    // the SaaS subscription and the Connect account
    let subscription = stripe::subscription(Some(tenant), "price_growth", "active");
    let created = stripe::event(
        "evt_erase_sub",
        "customer.subscription.created",
        now(),
        subscription,
    );
    let recorded = app.stripe_webhook(&created, STRIPE_SECRET).await;
    assert_eq!(recorded.status, StatusCode::OK, "{:?}", recorded.body);
    Mock::given(method("POST"))
        .and(path("/v1/accounts"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "acct_erase"})))
        .mount(&fakes.stripe)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/account_links"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"url": "https://connect.test/a"})),
        )
        .mount(&fakes.stripe)
        .await;
    let onboarding = app
        .send(
            Method::POST,
            &format!("/api/v1/tenants/{tenant}/connect/onboarding"),
            Some(&owner),
            &[],
            None,
        )
        .await;
    assert!(onboarding.status.is_success(), "{:?}", onboarding.body);

    // an order, a loyalty account with points
    let order = json!({"customer_ref": "order-cust-1", "amount_minor": 2500, "currency": "eur",
                       "description": "Consultation for Erasović"});
    let path = format!("/api/v1/companies/{company}/orders");
    let order = app.send_json(Method::POST, &path, &owner, &order).await;
    assert_eq!(order.status, StatusCode::CREATED, "{:?}", order.body);
    let settings = json!({"welcome_bonus_points": 100});
    let path = format!("/api/v1/tenants/{tenant}/loyalty/settings");
    let configured = app.send_json(Method::PUT, &path, &owner, &settings).await;
    assert_eq!(configured.status, StatusCode::OK, "{:?}", configured.body);
    let path = format!("/api/v1/tenants/{tenant}/loyalty/accounts");
    let account = app
        .send_json(
            Method::POST,
            &path,
            &owner,
            &json!({"customer_ref": "loyal-customer-+381605557777"}),
        )
        .await;
    assert_eq!(account.status, StatusCode::CREATED, "{:?}", account.body);

    // a courier and a delivery
    let delivery = delivery(
        app,
        &owner,
        company,
        ("Marko Petrović", "+381601234567"),
        ("Knez Mihailova 12", "Ana Jovanović", "+381609999999"),
    )
    .await;
    Business {
        tenant,
        owner,
        telegram,
        delivery,
    }
}

/// Registers a courier and creates a delivery; the delivery's id.
async fn delivery(
    app: &TestApp,
    token: &str,
    company: Uuid,
    courier: (&str, &str),
    customer: (&str, &str, &str),
) -> String {
    let body = json!({"name": courier.0, "phone": courier.1, "zones": ["Vračar"]});
    let path = format!("/api/v1/companies/{company}/couriers");
    let registered = app.send_json(Method::POST, &path, token, &body).await;
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{:?}",
        registered.body
    );
    let body = json!({"order_reference": "ORD-1", "address": customer.0,
                      "customer_name": customer.1, "customer_phone": customer.2,
                      "eta": "2026-11-23T18:00:00Z"});
    let path = format!("/api/v1/companies/{company}/deliveries");
    let created = app.send_json(Method::POST, &path, token, &body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    created.body["delivery_id"].as_str().unwrap().to_string()
}

/// The erasure's outside calls answer as Stripe, WAHA and Telegram do, once each.
async fn providers_accept_the_teardown(fakes: &Fakes, telegram_calls: u64) {
    let mut cancelled = stripe::subscription(None, "price_growth", "canceled");
    cancelled["metadata"] = json!({});
    let subscription_id = cancelled["id"].as_str().unwrap().to_string();
    Mock::given(method("DELETE"))
        .and(path(format!("/v1/subscriptions/{subscription_id}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(cancelled))
        .expect(1)
        .mount(&fakes.stripe)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/v1/accounts/acct_erase"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": "acct_erase", "deleted": true})),
        )
        .expect(1)
        .mount(&fakes.stripe)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/api/sessions/x8-[0-9a-f]{32}/logout$"))
        .respond_with(ResponseTemplate::new(201))
        .expect(1)
        .mount(&fakes.waha)
        .await;
    Mock::given(method("DELETE"))
        .and(path_regex(r"^/api/sessions/x8-[0-9a-f]{32}$"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&fakes.waha)
        .await;
    Mock::given(method("POST"))
        .and(path("/bot123:abc/deleteWebhook"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true, "result": true})))
        .expect(telegram_calls)
        .mount(&fakes.bots)
        .await;
}

/// The idempotency fingerprint the erased business's registration was recorded with: a
/// plain hash of its name and e-mail, which anyone could recompute.
fn registration_fingerprint() -> String {
    x8_commands::context::CommandContext::new(x8_eventstore::Actor::Anonymous)
        .fingerprinted(&["RegisterBusiness", "Erase Me Clinic", "erase.owner@x8.test"])
        .fingerprint
        .unwrap()
}

/// Runs due deadlines after the projections scheduled them.
async fn run_deadlines(app: &TestApp) {
    app.caught_up().await;
    app.deadlines().run_due(100).await.unwrap();
    app.caught_up().await;
}

async fn certificate(app: &TestApp, admin: &str, erasure: &str) -> TestResponse {
    let response = app
        .get_caught_up(admin, &format!("/api/v1/admin/erasures/{erasure}"))
        .await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    response
}

/// Step kind → outcomes, from a certificate.
fn outcomes(certificate: &Value) -> HashMap<String, Vec<String>> {
    let mut outcomes: HashMap<String, Vec<String>> = HashMap::new();
    for step in certificate["steps"].as_array().unwrap() {
        outcomes
            .entry(step["kind"].as_str().unwrap().to_string())
            .or_default()
            .push(step["outcome"].as_str().unwrap_or("pending").to_string());
    }
    outcomes
}

/// Rows of every table of the database whose text holds `needle`.
async fn tables_holding(app: &TestApp, needle: &str) -> Vec<String> {
    let tables: Vec<String> = sqlx::query_scalar(
        "select table_name::text from information_schema.tables
         where table_schema = 'public' and table_type = 'BASE TABLE'",
    )
    .fetch_all(app.store.pool())
    .await
    .unwrap();
    let mut holding = Vec::new();
    for table in tables {
        let count: i64 = sqlx::query_scalar(&format!(
            "select count(*) from \"{table}\" t where t::text like '%' || $1 || '%'"
        ))
        .bind(needle)
        .fetch_one(app.store.pool())
        .await
        .unwrap();
        if count > 0 {
            holding.push(format!("{table} ({count})"));
        }
    }
    holding
}

#[sqlx::test(migrations = "../migrations")]
async fn erasing_a_business_compensates_everything_it_owns_and_leaves_nothing_personal_readable(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    // given a business with something of every kind, and a second one
    let fakes = Fakes::start().await;
    let app = fakes.app(db, TestClock::at(now())).await;
    let admin = app.admin().await;
    let erased = business_with_everything(&app, &fakes, &admin).await;
    let (kept, kept_owner) = app
        .tenant_with_owner("Keep Me Bakery", "keep.owner@x8.test")
        .await;
    let kept_company = app.company(&kept_owner, kept).await;
    let kept_delivery = delivery(
        &app,
        &kept_owner,
        kept_company,
        ("Ivana Kept", "+381605550000"),
        (
            "Bulevar Kralja Aleksandra 73",
            "Petar Kept",
            "+381605551111",
        ),
    )
    .await;
    providers_accept_the_teardown(&fakes, 1).await;
    fakes.cleanups_succeed_once().await;
    let before = app
        .get_caught_up(
            &erased.owner,
            &format!("/api/v1/deliveries/{}", erased.delivery),
        )
        .await;
    assert!(
        before.text.contains("Knez Mihailova 12"),
        "readable before: {}",
        before.text
    );

    let fingerprinted: i64 =
        sqlx::query_scalar("select count(*) from commands where fingerprint = $1")
            .bind(registration_fingerprint())
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    assert_eq!(
        fingerprinted, 2,
        "the registration's user and tenant commands"
    );

    // when the owner asks for the erasure (twice), with the password re-entered
    let requested = app
        .erase(&erased.owner, erased.tenant, Some(PASSWORD))
        .await;
    assert_eq!(
        requested.status,
        StatusCode::ACCEPTED,
        "{:?}",
        requested.body
    );
    let erasure = requested.body["erasure_id"].as_str().unwrap().to_string();
    let again = app
        .erase(&erased.owner, erased.tenant, Some(PASSWORD))
        .await;
    assert_eq!(again.body["erasure_id"], requested.body["erasure_id"]);
    run_deadlines(&app).await;

    // then every step is recorded, with its outcome
    let certificate = certificate(&app, &admin, &erasure).await;
    assert_eq!(
        certificate.body["status"], "completed",
        "{:?}",
        certificate.body
    );
    assert_eq!(certificate.body["manual_actions"], 0);
    let outcomes = outcomes(&certificate.body);
    for (kind, expected) in [
        ("remove_channel", vec!["done", "done"]),
        ("cancel_subscription", vec!["done"]),
        ("disconnect_connect_account", vec!["done"]),
        ("close_order", vec!["done"]),
        ("close_loyalty_account", vec!["done"]),
        ("revoke_tracking_token", vec!["done"]),
        ("close_conversation", vec!["done"]),
        ("close_company", vec!["done"]),
        ("close_user", vec!["done"]),
        ("external_cleanup", vec!["done", "done", "done"]),
        ("erase_tenant", vec!["done"]),
        ("destroy_data_key", vec!["done"]),
    ] {
        assert_eq!(
            outcomes.get(kind),
            Some(&expected.iter().map(|s| s.to_string()).collect()),
            "{kind}: {:?}",
            certificate.body
        );
    }
    // and the fakes got their calls (each `expect` is checked when the servers drop)

    // and no table holds any of the erased business's personal strings
    for needle in PERSONAL {
        assert_eq!(
            tables_holding(&app, needle).await,
            Vec::<String>::new(),
            "{needle}"
        );
    }
    // and the idempotency records keep no guessable hash of the registration's name and
    // e-mail (SHA-256 of the request), nor snapshots of its state
    let registration = registration_fingerprint();
    let remembered: i64 = sqlx::query_scalar(
        "select count(*) from commands c join events e on e.global_position = c.first_position
         where c.fingerprint = $1 or (e.tenant_id = $2 and c.fingerprint <> 'erased'
               and e.metadata ->> 'correlation_id' <> $3)",
    )
    .bind(&registration)
    .bind(erased.tenant)
    .bind(&erasure)
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    assert_eq!(remembered, 0);

    // and an auditor's history shows them as [erased] around the facts that stay
    let history = x8_replay::history::entries(&app.store, "delivery", &erased.delivery.to_string())
        .await
        .unwrap();
    let printed = serde_json::to_string(&history).unwrap();
    assert!(printed.contains(x8_replay::history::ERASED), "{printed}");
    assert!(PERSONAL.iter().all(|p| !printed.contains(p)), "{printed}");
    assert_eq!(history[0].event_type, "DeliveryCreated");
    let kept_history =
        x8_replay::history::entries(&app.store, "delivery", &kept_delivery.to_string())
            .await
            .unwrap();
    let kept_printed = serde_json::to_string(&kept_history).unwrap();
    assert!(
        kept_printed.contains(x8_replay::history::SEALED),
        "{kept_printed}"
    );
    assert!(
        !kept_printed.contains(x8_replay::history::ERASED),
        "{kept_printed}"
    );
    // (an auditor holding the master key reads the kept business's fields, and still
    // nothing of the erased one's)
    let (store, vault) = (&app.store, &app.state.commands.vault);
    let opened = |kind: &'static str, id: String| async move {
        let entries = x8_replay::history::opened_entries(store, vault, kind, &id)
            .await
            .unwrap();
        serde_json::to_string(&entries).unwrap()
    };
    let kept_opened = opened("delivery", kept_delivery.to_string()).await;
    for personal in ["Bulevar Kralja Aleksandra 73", "Petar Kept"] {
        assert!(kept_opened.contains(personal), "{kept_opened}");
    }
    assert!(
        !kept_opened.contains(x8_replay::history::SEALED),
        "{kept_opened}"
    );
    let kept_registration = opened("tenant", kept.to_string()).await;
    for personal in ["Keep Me Bakery", "keep.owner@x8.test"] {
        assert!(kept_registration.contains(personal), "{kept_registration}");
    }
    let erased_opened = opened("delivery", erased.delivery.to_string()).await;
    assert!(
        PERSONAL.iter().all(|p| !erased_opened.contains(p)),
        "{erased_opened}"
    );
    assert!(
        erased_opened.contains(x8_replay::history::ERASED),
        "{erased_opened}"
    );
    // and replaying every stream of the log, the erased ones included, breaks no rule
    let report = x8_replay::verify::verify(&app.store).await.unwrap();
    assert_eq!(report.violations, vec![], "{report:?}");
    assert!(report.streams > 20, "{report:?}");

    // while the other business's data is intact and readable
    let kept_tenant = app
        .get_caught_up(&kept_owner, &format!("/api/v1/tenants/{kept}"))
        .await;
    assert_eq!(
        kept_tenant.body["name"], "Keep Me Bakery",
        "{:?}",
        kept_tenant.body
    );
    let kept_view = app
        .get_caught_up(&kept_owner, &format!("/api/v1/deliveries/{kept_delivery}"))
        .await;
    assert_eq!(kept_view.status, StatusCode::OK, "{:?}", kept_view.body);
    assert!(
        kept_view.text.contains("Bulevar Kralja Aleksandra 73"),
        "{}",
        kept_view.text
    );

    // and the erased business is gone: 410 for its requests, its owner cannot log in,
    // its webhooks are acknowledged and ignored
    app.get_caught_up(&admin, &format!("/api/v1/tenants/{}", erased.tenant))
        .await
        .assert_problem(410, "tenant_erased");
    app.get_caught_up(&admin, &format!("/api/v1/deliveries/{}", erased.delivery))
        .await
        .assert_problem(410, "tenant_erased");
    assert_eq!(
        app.login_response("erase.owner@x8.test", PASSWORD)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let before = app.event_count().await;
    let late = app
        .telegram_update(
            erased.telegram,
            Some(telegram::SECRET),
            &telegram::text(2, 2, 60, "hello?"),
        )
        .await;
    assert_eq!(late.status, StatusCode::OK, "{:?}", late.body);
    assert_eq!(app.event_count().await, before, "nothing appended");

    // and erasing again runs nothing twice
    run_deadlines(&app).await;
    assert_eq!(
        app.stream_event_types("tenant", erased.tenant)
            .await
            .iter()
            .filter(|t| *t == "TenantErased")
            .count(),
        1
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_process_killed_between_steps_completes_on_restart_and_runs_no_step_twice(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    // given a business with something of every kind, asked to be erased
    let fakes = Fakes::start().await;
    let clock = TestClock::at(now());
    let app = fakes.app(db.clone(), clock.clone()).await;
    let admin = app.admin().await;
    let erased = business_with_everything(&app, &fakes, &admin).await;
    providers_accept_the_teardown(&fakes, 1).await;
    fakes.cleanups_succeed_once().await;
    let requested = app
        .erase(&erased.owner, erased.tenant, Some(PASSWORD))
        .await;
    assert_eq!(
        requested.status,
        StatusCode::ACCEPTED,
        "{:?}",
        requested.body
    );
    let erasure = requested.body["erasure_id"].as_str().unwrap().to_string();

    // when the process dies after the work of its fourth step, before recording it
    let crashed =
        x8_commands::erasure::run_until(&app.state.commands, &erased.tenant.to_string(), Some(4))
            .await;
    assert_eq!(crashed, Err("injected crash".to_string()));
    drop(app);

    // and the server restarts and its deadline runner picks the erasure up
    let app = fakes.app(db, clock).await;
    run_deadlines(&app).await;

    // then the erasure completed
    let certificate = certificate(&app, &admin, &erasure).await;
    assert_eq!(
        certificate.body["status"], "completed",
        "{:?}",
        certificate.body
    );
    // and every step completed once, every compensating event was appended once
    let completed: Vec<(String, String)> = sqlx::query_as(
        "select payload->'StepCompleted'->'step'->>'kind', payload->'StepCompleted'->'step'->>'subject'
         from events where aggregate_id = $1 and event_type = 'StepCompleted'",
    )
    .bind(&erasure)
    .fetch_all(app.store.pool())
    .await
    .unwrap();
    let mut unique = completed.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), completed.len(), "{completed:?}");
    assert_eq!(
        completed.len(),
        certificate.body["steps"].as_array().unwrap().len()
    );
    for compensation in [
        "ChannelRemoved",
        "CredentialsRevoked",
        "OrderClosed",
        "LoyaltyAccountClosed",
        "TrackingTokenRevoked",
        "ConversationResolved",
        "CompanyClosed",
        "UserClosed",
        "TenantErased",
        "ConnectAccountDisconnected",
    ] {
        let counts: Vec<i64> = sqlx::query_scalar(
            "select count(*) from events where event_type = $1 group by aggregate_id",
        )
        .bind(compensation)
        .fetch_all(app.store.pool())
        .await
        .unwrap();
        assert!(
            !counts.is_empty() && counts.iter().all(|n| *n == 1),
            "{compensation}: {counts:?}"
        );
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_failing_cleanup_is_retried_on_back_off_and_one_failing_for_good_is_left_for_manual_action(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    // given automations that fail 3 times then succeed, media that always fails, and no
    // knowledge-base endpoint
    let cleanups = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/n8n"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(3)
        .expect(3)
        .with_priority(1)
        .mount(&cleanups)
        .await;
    Mock::given(method("POST"))
        .and(path("/n8n"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .with_priority(2)
        .mount(&cleanups)
        .await;
    Mock::given(method("POST"))
        .and(path("/media"))
        .respond_with(ResponseTemplate::new(500))
        .expect(5)
        .mount(&cleanups)
        .await;
    let clock = TestClock::at(now());
    let app = TestApp::spawn_with_clock(db, clock.clone())
        .await
        .with_cleanups(
            &cleanups.uri(),
            &[CleanupTarget::Automations, CleanupTarget::Media],
        );
    let admin = app.admin().await;
    let (tenant, _) = app.tenant_with_owner("Flaky", "flaky@x8.test").await;
    let requested = app.erase(&admin, tenant, None).await;
    assert_eq!(
        requested.status,
        StatusCode::ACCEPTED,
        "{:?}",
        requested.body
    );
    let erasure = requested.body["erasure_id"].as_str().unwrap().to_string();

    // when the erasure runs, and runs again at each retry (1, 2, 4, 8 minutes later)
    run_deadlines(&app).await;
    let waiting = certificate(&app, &admin, &erasure).await;
    assert_eq!(waiting.body["status"], "running");
    for minutes in [1, 2, 4, 8] {
        clock.advance(Duration::minutes(minutes));
        run_deadlines(&app).await;
    }

    // then the automations were cleaned on the 4th call, media was left for manual
    // action after 5, the knowledge bases were not configured, and the business is erased
    let certificate = certificate(&app, &admin, &erasure).await;
    assert_eq!(
        certificate.body["status"], "completed",
        "{:?}",
        certificate.body
    );
    assert_eq!(certificate.body["manual_actions"], 1);
    let steps = certificate.body["steps"].as_array().unwrap();
    let step = |subject: &str| {
        steps
            .iter()
            .find(|s| s["kind"] == "external_cleanup" && s["subject"] == subject)
            .unwrap()
            .clone()
    };
    assert_eq!(step("automations")["outcome"], "done");
    assert_eq!(step("automations")["failures"], 3);
    assert_eq!(step("media")["outcome"], "manual_action_required");
    assert_eq!(step("media")["failures"], 5);
    assert_eq!(step("media")["last_error"], "HTTP 500");
    assert_eq!(step("knowledge_bases")["outcome"], "not_configured");
    assert!(certificate.body["tenant_erased_at"].is_string());
}

#[sqlx::test(migrations = "../migrations")]
async fn an_erasure_cancelled_in_its_grace_period_erases_nothing(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    // given a 24-hour grace period and a business whose owner asks for its erasure
    let clock = TestClock::at(now());
    let app = TestApp::spawn_with_clock(db, clock.clone())
        .await
        .with_erasure_grace(24);
    let admin = app.admin().await;
    let (tenant, owner) = app.tenant_with_owner("Regret", "regret@x8.test").await;
    let (_, manager) = app.manager(&admin, "manager@x8.test").await;
    app.erase(&owner, tenant, None)
        .await
        .assert_problem(403, "password_required");
    app.erase(&owner, tenant, Some("not the password"))
        .await
        .assert_problem(403, "wrong_password");
    app.erase(&manager, tenant, None)
        .await
        .assert_problem(404, "not_found");
    let requested = app.erase(&owner, tenant, Some(PASSWORD)).await;
    assert_eq!(
        requested.status,
        StatusCode::ACCEPTED,
        "{:?}",
        requested.body
    );
    assert_eq!(requested.body["status"], "requested");
    assert_eq!(
        requested.body["not_before"],
        json!((now() + Duration::hours(24)).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
    );

    // when it is cancelled during the grace period, and the grace period passes
    let cancel = format!("/api/v1/tenants/{tenant}/erasure/cancel");
    let cancelled = app
        .send(Method::POST, &cancel, Some(&owner), &[], None)
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{:?}", cancelled.body);
    app.send(Method::POST, &cancel, Some(&owner), &[], None)
        .await
        .assert_problem(409, "no_erasure_pending");
    clock.advance(Duration::hours(25));
    run_deadlines(&app).await;

    // then nothing was erased: the business answers, its owner logs in, its key opens
    let view = app
        .get_caught_up(&owner, &format!("/api/v1/tenants/{tenant}"))
        .await;
    assert_eq!(view.status, StatusCode::OK, "{:?}", view.body);
    assert!(view.body["erasure_id"].is_null());
    app.login("regret@x8.test").await;
    let types = app.stream_event_types("tenant", tenant).await;
    assert_eq!(
        types,
        vec![
            "TenantRegistered",
            "TenantErasureRequested",
            "TenantErasureCancelled"
        ]
    );
    let erasure = requested.body["erasure_id"].as_str().unwrap();
    let certificate = certificate(&app, &admin, erasure).await;
    assert_eq!(certificate.body["status"], "cancelled");
    assert!(certificate.body["steps"].as_array().unwrap().is_empty());
}
