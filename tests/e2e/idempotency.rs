//! Idempotent commands: one `Idempotency-Key`, one effect, identical answers.

use axum::http::{Method, StatusCode};
use futures::future::join_all;
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use x8_tests::TestApp;

#[sqlx::test(migrations = "../migrations")]
async fn one_key_sent_ten_times_concurrently_appends_once_and_answers_identically(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    // given a business registration carrying one Idempotency-Key
    let app = TestApp::spawn(connect).await;

    // when it is sent 10 times concurrently
    let responses =
        join_all((0..10).map(|_| app.register_tenant("Acme", "acme@x8.test", Some("signup-42"))))
            .await;

    // then there is one set of events and ten identical responses
    for response in &responses {
        assert_eq!(response.status.as_u16(), 201, "{:?}", response.body);
        assert_eq!(response.body, responses[0].body);
    }
    assert_eq!(
        app.event_count().await,
        2,
        "one UserRegistered and one TenantRegistered"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_repeated_key_returns_the_first_result_even_after_the_state_moved_on(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let app = TestApp::spawn(connect).await;
    let admin = app.admin().await;
    let (tenant, _) = app.tenant_with_owner("Shop", "shop@x8.test").await;
    let (m1, _) = app.manager(&admin, "m1@x8.test").await;
    let first = app
        .assign_manager(&admin, tenant, m1, Some("assign-1"))
        .await;
    let before = app.event_count().await;

    let again = app
        .assign_manager(&admin, tenant, m1, Some("assign-1"))
        .await;

    assert_eq!(first.status.as_u16(), 200);
    assert_eq!(again.body, first.body);
    assert_eq!(app.event_count().await, before);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_key_reused_for_a_different_request_is_refused(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let app = TestApp::spawn(connect).await;
    app.register_tenant("One", "one@x8.test", Some("k")).await;
    let before = app.event_count().await;

    let other = app.register_tenant("Two", "two@x8.test", Some("k")).await;

    other.assert_problem(422, "idempotency_key_reused");
    assert_eq!(app.event_count().await, before);
}

#[sqlx::test(migrations = "../migrations")]
async fn an_email_is_registered_once_under_concurrent_registrations(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let app = TestApp::spawn(connect).await;

    let names: Vec<String> = (0..6).map(|i| format!("Shop {i}")).collect();
    let responses = join_all(
        names
            .iter()
            .map(|name| app.register_tenant(name, "same@x8.test", None)),
    )
    .await;

    let created = responses
        .iter()
        .filter(|r| r.status.as_u16() == 201)
        .count();
    assert_eq!(created, 1);
    for r in responses.iter().filter(|r| r.status.as_u16() != 201) {
        r.assert_problem(409, "email_taken");
    }
    let users: i64 =
        sqlx::query_scalar("select count(*) from events where event_type = 'UserRegistered'")
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    assert_eq!(users, 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_registration_cut_off_after_the_account_resumes_when_the_owner_registers_again(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    // given an owner account whose business registration never happened (cut off)
    let app = TestApp::spawn(connect).await;
    let email = x8_domain::Email::parse("cut@x8.test").unwrap();
    let user_id = x8_domain::UserId::for_email(&email);
    let orphan_tenant = x8_domain::TenantId::new();
    let hash = x8_commands::passwords::hash(x8_tests::PASSWORD.into())
        .await
        .unwrap();
    let key = app
        .state
        .commands
        .vault
        .scope_key(orphan_tenant.0)
        .await
        .unwrap();
    let seal = |purpose: &str, plaintext: &str| key.seal(purpose, plaintext.as_bytes()).unwrap();
    let user_purpose = |field| x8_commands::accounts::user_purpose(user_id, field);
    let sealed_email = seal("email", email.as_str());
    app.state
        .commands
        .users
        .execute(
            &user_id.to_string(),
            x8_domain::user::UserCommand::RegisterUser {
                user_id,
                email,
                sealed_email,
                name: seal(&user_purpose("name"), "Cut Shop"),
                role: x8_domain::user::Role::Client,
                password_hash: seal(&user_purpose("password_hash"), &hash.0),
                tenant_id: Some(orphan_tenant),
            },
            &x8_commands::CommandContext::new(x8_eventstore::Actor::Anonymous),
        )
        .await
        .unwrap();

    // when someone registers another business with that address, it is refused
    app.register_tenant("Other Shop", "cut@x8.test", None)
        .await
        .assert_problem(409, "email_taken");

    // and when the owner repeats the same registration, it resumes with the first tenant id
    let resumed = app.register_tenant("Cut Shop", "cut@x8.test", None).await;
    assert_eq!(resumed.status.as_u16(), 201, "{:?}", resumed.body);
    assert_eq!(resumed.body["tenant_id"], orphan_tenant.to_string());
    app.register_tenant("Cut Shop", "cut@x8.test", None)
        .await
        .assert_problem(409, "email_taken");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_retried_request_with_sealed_fields_is_answered_from_its_first_run(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    // given a business with a company
    let app = TestApp::spawn(connect).await;
    let (tenant, owner) = app.tenant_with_owner("Sealed Shop", "sealed@x8.test").await;
    let company = app.company(&owner, tenant).await;
    let requests = [
        (
            format!("/api/v1/companies/{company}/couriers"),
            json!({"name": "Marko Courier", "phone": "+381601112223", "zones": ["Vračar"]}),
        ),
        (
            format!("/api/v1/companies/{company}/deliveries"),
            json!({"order_reference": "ORD-9", "address": "Knez Mihailova 1",
                   "customer_name": "Ana", "customer_phone": "+381609998887"}),
        ),
        (
            format!("/api/v1/companies/{company}/orders"),
            json!({"customer_ref": "cust-9", "amount_minor": 1200, "currency": "eur",
                   "description": "Haircut"}),
        ),
    ];
    for (n, (path, body)) in requests.into_iter().enumerate() {
        let key = format!("retry-{n}");
        let headers = [("idempotency-key", key.as_str())];
        // when a request whose command carries sealed values (fresh nonces each run) is
        // sent twice with one Idempotency-Key
        let send = || {
            app.send(
                Method::POST,
                &path,
                Some(&owner),
                &headers,
                Some(body.to_string()),
            )
        };
        let first = send().await;
        let events = app.event_count().await;
        let again = send().await;

        // then the retry gets the first answer (a delivery's without its token, shown
        // once) and appends nothing
        assert_eq!(
            first.status,
            StatusCode::CREATED,
            "{path}: {:?}",
            first.body
        );
        assert!(again.status.is_success(), "{path}: {:?}", again.body);
        let id = |r: &x8_tests::TestResponse| {
            ["courier_id", "delivery_id", "order_id"].map(|f| r.body[f].clone())
        };
        assert_eq!(id(&again), id(&first), "{path}");
        assert_eq!(app.event_count().await, events, "{path}");
    }
}
