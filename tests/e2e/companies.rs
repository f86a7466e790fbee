//! Companies: codes unique within a tenant under concurrency, changes, access.

use axum::http::Method;
use futures::future::join_all;
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::collections::BTreeSet;
use x8_tests::TestApp;

#[sqlx::test(migrations = "../migrations")]
async fn ten_concurrent_creations_get_ten_distinct_codes(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    // given a business
    let app = TestApp::spawn(connect).await;
    let (tenant, owner) = app.tenant_with_owner("Group", "group@x8.test").await;

    // when it creates 10 companies at once
    let names: Vec<String> = (1..=10).map(|i| format!("Company {i}")).collect();
    let responses = join_all(
        names
            .iter()
            .map(|name| app.create_company(&owner, tenant, name, "Product")),
    )
    .await;

    // then they get COMP001 … COMP010, each once
    let codes: BTreeSet<String> = responses
        .iter()
        .map(|r| {
            assert_eq!(r.status.as_u16(), 201, "{:?}", r.body);
            r.body["code"].as_str().unwrap().to_string()
        })
        .collect();
    let expected: BTreeSet<String> = (1..=10).map(|i| format!("COMP{i:03}")).collect();
    assert_eq!(codes, expected);
    let position = responses
        .iter()
        .map(|r| r.body["position"].as_i64().unwrap())
        .max()
        .unwrap();
    let path = format!("/api/v1/tenants/{tenant}/companies");
    let list = app
        .send(
            Method::GET,
            &path,
            Some(&owner),
            &[("x-min-position", &position.to_string())],
            None,
        )
        .await;
    assert_eq!(list.body.as_array().unwrap().len(), 10);
    assert_eq!(list.body[0]["code"], "COMP001");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_company_is_renamed_and_its_status_changed(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let app = TestApp::spawn(connect).await;
    let (tenant, owner) = app.tenant_with_owner("Group", "group@x8.test").await;
    let created = app.create_company(&owner, tenant, "Bakery", "Hybrid").await;
    let company = created.body["company_id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/companies/{company}");

    let patched = app
        .send(
            Method::PATCH,
            &path,
            Some(&owner),
            &[],
            Some(json!({"name": "Bakery & Café", "status": "INACTIVE"}).to_string()),
        )
        .await;
    assert_eq!(patched.status.as_u16(), 200, "{:?}", patched.body);
    let position = patched.body["position"].as_i64().unwrap().to_string();
    let view = app
        .send(
            Method::GET,
            &path,
            Some(&owner),
            &[("x-min-position", &position)],
            None,
        )
        .await;

    assert_eq!(view.body["name"], "Bakery & Café");
    assert_eq!(view.body["status"], "INACTIVE");
    assert_eq!(view.body["type"], "Hybrid");
    assert_eq!(view.body["code"], "COMP001");
    let renamed: i64 = sqlx::query_scalar(
        "select count(*) from events where event_type = 'CompanyRenamed' and tenant_id = $1",
    )
    .bind(tenant)
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    assert_eq!(renamed, 1, "changes carry their tenant");
}

#[sqlx::test(migrations = "../migrations")]
async fn bad_company_input_is_refused_and_appends_nothing(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let app = TestApp::spawn(connect).await;
    let (tenant, owner) = app.tenant_with_owner("Group", "group@x8.test").await;
    let before = app.event_count().await;

    app.create_company(&owner, tenant, "  ", "Product")
        .await
        .assert_problem(422, "invalid_name");
    app.create_company(&owner, tenant, "Shop", "Factory")
        .await
        .assert_problem(400, "invalid_body");
    let missing = "/api/v1/companies/00000000-0000-0000-0000-000000000001";
    app.send(
        Method::PATCH,
        missing,
        Some(&owner),
        &[],
        Some(json!({"name": "X"}).to_string()),
    )
    .await
    .assert_problem(404, "not_found");

    assert_eq!(app.event_count().await, before);
}

#[sqlx::test(migrations = "../migrations")]
async fn only_the_owner_its_manager_and_admins_reach_its_companies(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let app = TestApp::spawn(connect).await;
    let admin = app.admin().await;
    let (tenant, owner) = app.tenant_with_owner("A", "a@x8.test").await;
    let (_, other_owner) = app.tenant_with_owner("B", "b@x8.test").await;
    let (manager, manager_token) = app.manager(&admin, "m@x8.test").await;
    let (_, stranger) = app.manager(&admin, "s@x8.test").await;
    let created = app.create_company(&owner, tenant, "Shop", "Service").await;
    let company = created.body["company_id"].as_str().unwrap().to_string();
    let position = created.body["position"].as_i64().unwrap().to_string();
    let path = format!("/api/v1/companies/{company}");

    app.create_company(&other_owner, tenant, "Intruder", "Service")
        .await
        .assert_problem(404, "not_found");
    app.send(
        Method::GET,
        &path,
        Some(&other_owner),
        &[("x-min-position", &position)],
        None,
    )
    .await
    .assert_problem(404, "not_found");
    app.create_company(&stranger, tenant, "Intruder", "Service")
        .await
        .assert_problem(404, "not_found");

    app.assign_manager(&admin, tenant, manager, None).await;
    assert_eq!(
        app.create_company(&manager_token, tenant, "Managed", "Service")
            .await
            .status
            .as_u16(),
        201
    );
    assert_eq!(
        app.create_company(&admin, tenant, "By admin", "Product")
            .await
            .status
            .as_u16(),
        201
    );
    let view = app
        .send(
            Method::GET,
            &path,
            Some(&manager_token),
            &[("x-min-position", &position)],
            None,
        )
        .await;
    assert_eq!(view.status.as_u16(), 200);
}
