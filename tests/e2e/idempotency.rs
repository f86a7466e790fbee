//! Idempotent commands: one `Idempotency-Key`, one effect, identical answers.

use futures::future::join_all;
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
