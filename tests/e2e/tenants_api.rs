//! The tenant slice over HTTP: registration, login, manager assignment, isolation.

use axum::http::Method;
use futures::future::join;
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use x8_tests::TestApp;

#[sqlx::test(migrations = "../migrations")]
async fn a_business_registers_logs_in_and_reads_itself(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let app = TestApp::spawn(connect).await;

    let registered = app
        .register_tenant("Acme Bakery", "Owner@Acme.test", None)
        .await;
    assert_eq!(registered.status.as_u16(), 201);
    let tenant = registered.body["tenant_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let token = app.login("owner@acme.test").await;
    let view = app
        .get_tenant(
            &token,
            tenant,
            registered.body["position"].as_i64().unwrap(),
        )
        .await;

    assert_eq!(view.status.as_u16(), 200, "{:?}", view.body);
    assert_eq!(view.body["name"], "Acme Bakery");
    assert_eq!(view.body["plan"], "FREE");
    assert_eq!(view.body["subscription_status"], "trialing");
    assert_eq!(view.body["channel_limit"], 1);
    assert_eq!(view.body["manager_id"], serde_json::Value::Null);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_wrong_password_is_401_and_a_refresh_token_renews_the_pair(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let app = TestApp::spawn(connect).await;
    app.tenant_with_owner("Shop", "s@x8.test").await;

    app.login_response("s@x8.test", "wrong password!")
        .await
        .assert_problem(401, "invalid_credentials");
    app.login_response("nobody@x8.test", "wrong password!")
        .await
        .assert_problem(401, "invalid_credentials");

    let pair = app
        .login_response("s@x8.test", x8_tests::PASSWORD)
        .await
        .body;
    assert_eq!(pair["token_type"], "Bearer");
    assert_eq!(pair["expires_in"], 1800);
    let refresh = pair["refresh_token"].as_str().unwrap();
    let renewed = app
        .send(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            &[],
            Some(json!({"refresh_token": refresh}).to_string()),
        )
        .await;
    assert_eq!(renewed.status.as_u16(), 200);
    assert!(renewed.body["access_token"].is_string());

    // a refresh token is not an access token, and an access token does not refresh
    let tenant_path = "/api/v1/managers/00000000-0000-0000-0000-000000000000/clients";
    app.send(Method::GET, tenant_path, Some(refresh), &[], None)
        .await
        .assert_problem(401, "unauthorized");
    let access = pair["access_token"].as_str().unwrap();
    app.send(
        Method::POST,
        "/api/v1/auth/refresh",
        None,
        &[],
        Some(json!({"refresh_token": access}).to_string()),
    )
    .await
    .assert_problem(401, "unauthorized");
}

#[sqlx::test(migrations = "../migrations")]
async fn two_concurrent_assignments_one_wins_the_other_is_409(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    // given a business and two managers
    let app = TestApp::spawn(connect).await;
    let admin = app.admin().await;
    let (tenant, _) = app.tenant_with_owner("Shop", "s@x8.test").await;
    let (m1, _) = app.manager(&admin, "m1@x8.test").await;
    let (m2, _) = app.manager(&admin, "m2@x8.test").await;

    // when both are assigned at once
    let (a, b) = join(
        app.assign_manager(&admin, tenant, m1, None),
        app.assign_manager(&admin, tenant, m2, None),
    )
    .await;

    // then exactly one succeeds and the other names the manager it lost to
    let (won, lost, winner) = if a.status.as_u16() == 200 {
        (a, b, m1)
    } else {
        (b, a, m2)
    };
    assert_eq!(won.status.as_u16(), 200, "{:?}", won.body);
    lost.assert_problem(409, "manager_already_assigned");
    assert_eq!(lost.body["manager_id"], winner.to_string());
    let types = app.stream_event_types("tenant", tenant).await;
    assert_eq!(types, vec!["TenantRegistered", "ManagerAssigned"]);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_manager_is_handed_over_in_one_event_and_lists_follow(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let app = TestApp::spawn(connect).await;
    let admin = app.admin().await;
    let (tenant, _) = app.tenant_with_owner("Shop", "s@x8.test").await;
    let (m1, m1_token) = app.manager(&admin, "m1@x8.test").await;
    let (m2, m2_token) = app.manager(&admin, "m2@x8.test").await;
    app.assign_manager(&admin, tenant, m1, None).await;

    let handover = app
        .send(
            Method::PUT,
            &format!("/api/v1/tenants/{tenant}/manager"),
            Some(&admin),
            &[],
            Some(json!({"manager_id": m2, "replaces": m1}).to_string()),
        )
        .await;
    assert_eq!(handover.status.as_u16(), 200, "{:?}", handover.body);
    let position = handover.body["position"].as_i64().unwrap().to_string();

    let clients = |id: uuid::Uuid, token: String| {
        let path = format!("/api/v1/managers/{id}/clients");
        let position = position.clone();
        let app = &app;
        async move {
            app.send(
                Method::GET,
                &path,
                Some(&token),
                &[("x-min-position", &position)],
                None,
            )
            .await
        }
    };
    assert_eq!(
        clients(m2, m2_token).await.body.as_array().unwrap().len(),
        1
    );
    assert_eq!(
        clients(m1, m1_token).await.body.as_array().unwrap().len(),
        0
    );
    assert_eq!(
        app.stream_event_types("tenant", tenant).await,
        vec!["TenantRegistered", "ManagerAssigned", "ManagerReassigned"]
    );

    let removed = app.unassign_manager(&admin, tenant).await;
    assert_eq!(removed.status.as_u16(), 200);
    let again = app.unassign_manager(&admin, tenant).await;
    again.assert_problem(409, "no_manager_assigned");
}

#[sqlx::test(migrations = "../migrations")]
async fn callers_see_only_what_is_theirs(_options: PgPoolOptions, connect: PgConnectOptions) {
    // given two businesses, an assigned and an unassigned manager
    let app = TestApp::spawn(connect).await;
    let admin = app.admin().await;
    let (a, a_owner) = app.tenant_with_owner("A", "a@x8.test").await;
    let (b, _) = app.tenant_with_owner("B", "b@x8.test").await;
    let (assigned, assigned_token) = app.manager(&admin, "assigned@x8.test").await;
    let (unassigned, unassigned_token) = app.manager(&admin, "unassigned@x8.test").await;
    let position = app.assign_manager(&admin, b, assigned, None).await.body["position"]
        .as_i64()
        .unwrap();

    // then a CLIENT of A gets 404 on B, and an unassigned MANAGER 404 on B
    assert_eq!(
        app.get_tenant(&a_owner, a, position).await.status.as_u16(),
        200
    );
    app.get_tenant(&a_owner, b, position)
        .await
        .assert_problem(404, "not_found");
    app.get_tenant(&unassigned_token, b, position)
        .await
        .assert_problem(404, "not_found");
    assert_eq!(
        app.get_tenant(&assigned_token, b, position)
            .await
            .status
            .as_u16(),
        200
    );
    assert_eq!(
        app.get_tenant(&admin, a, position).await.status.as_u16(),
        200
    );

    // a manager cannot read another manager's list, a client cannot assign
    let other_list = format!("/api/v1/managers/{assigned}/clients");
    app.send(Method::GET, &other_list, Some(&unassigned_token), &[], None)
        .await
        .assert_problem(404, "not_found");
    app.assign_manager(&a_owner, a, unassigned, None)
        .await
        .assert_problem(403, "forbidden");
    // assigning a user who is not a manager
    app.assign_manager(&admin, a, uuid::Uuid::new_v4(), None)
        .await
        .assert_problem(422, "not_a_manager");
}

#[sqlx::test(migrations = "../migrations")]
async fn health_and_readiness_answer(_options: PgPoolOptions, connect: PgConnectOptions) {
    let app = TestApp::spawn(connect).await;
    assert_eq!(
        app.send(Method::GET, "/health", None, &[], None)
            .await
            .status
            .as_u16(),
        200
    );
    let ready = app.send(Method::GET, "/ready", None, &[], None).await;
    assert_eq!(ready.status.as_u16(), 200);
    assert_eq!(ready.body["status"], "ready");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_conflict_that_never_clears_is_retried_then_409(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    // given a business whose stream conflicts on every append (as if writers always won)
    let app = TestApp::spawn(connect).await;
    let admin = app.admin().await;
    let (tenant, _) = app.tenant_with_owner("Busy", "busy@x8.test").await;
    let (manager, _) = app.manager(&admin, "m@x8.test").await;
    sqlx::raw_sql(&format!(
        "create function always_conflict() returns trigger language plpgsql as $$
         begin
           perform nextval('conflict_attempts'); -- sequences survive the rollback
           raise exception using errcode = 'unique_violation', constraint = 'events_stream_sequence_key';
         end $$;
         create sequence conflict_attempts;
         create trigger always_conflict before insert on events
           for each row when (new.aggregate_id = '{tenant}') execute function always_conflict();"
    ))
    .execute(app.store.pool())
    .await
    .unwrap();
    let before = app.event_count().await;

    // when a command is sent
    let response = app.assign_manager(&admin, tenant, manager, None).await;

    // then it was retried a bounded number of times and answered 409, appending nothing
    response.assert_problem(409, "conflict");
    assert_eq!(app.event_count().await, before);
    let attempts: i64 = sqlx::query_scalar("select last_value from conflict_attempts")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(attempts, x8_commands::bus::MAX_ATTEMPTS as i64);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_manager_unassigned_through_another_server_loses_access_there_at_once_and_here_within_the_authorization_max_age(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    // Given two servers on one database, this one reading business state for
    // authorization at most 300 ms old, and a manager assigned to a business
    let max_age = std::time::Duration::from_millis(300);
    let here = TestApp::spawn(connect.clone())
        .await
        .with_authorization_max_age(max_age);
    let there = TestApp::spawn(connect).await;
    let admin = here.admin().await;
    let (tenant, _) = here.tenant_with_owner("A", "a@x8.test").await;
    let (manager, token) = here.manager(&admin, "m@x8.test").await;
    here.assign_manager(&admin, tenant, manager, None).await;
    assert_eq!(
        here.get_tenant(&token, tenant, 0).await.status.as_u16(),
        200
    );
    assert_eq!(
        there.get_tenant(&token, tenant, 0).await.status.as_u16(),
        200
    );

    // When the other server unassigns the manager
    let removed = there.unassign_manager(&admin, tenant).await;
    assert_eq!(removed.status.as_u16(), 200);

    // Then the manager is refused there at once, and here once the state it read is
    // older than the max age
    there
        .get_tenant(&token, tenant, 0)
        .await
        .assert_problem(404, "not_found");
    tokio::time::sleep(max_age + std::time::Duration::from_millis(50)).await;
    here.get_tenant(&token, tenant, 0)
        .await
        .assert_problem(404, "not_found");
    // and an assignment made here counts here at once
    here.assign_manager(&admin, tenant, manager, None).await;
    assert_eq!(
        here.get_tenant(&token, tenant, 0).await.status.as_u16(),
        200
    );
}
