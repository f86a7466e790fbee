//! The credentials vault: sealed at rest, readable by the business, its manager and
//! admins, every read audited, no plaintext anywhere in the database.

use axum::http::Method;
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use x8_tests::{TestApp, TestResponse};

const TOKEN: &str = "tg-bot-token-5544332211:AAFsecretSECRETsecret";

async fn channel_with_credentials(app: &TestApp, email: &str) -> (uuid::Uuid, String, String) {
    let (tenant, owner) = app.tenant_with_owner("Vaulted", email).await;
    let company = app.company(&owner, tenant).await;
    let created = app.connect_channel(&owner, company, "telegram").await;
    let channel = created.body["channel_id"].as_str().unwrap().to_string();
    let stored = put_credentials(app, &owner, &channel).await;
    assert_eq!(stored.status.as_u16(), 200, "{:?}", stored.body);
    (tenant, owner, channel)
}

async fn put_credentials(app: &TestApp, token: &str, channel: &str) -> TestResponse {
    let body = json!({"bot_token": TOKEN, "webhook_secret": "hook-secret-9876"});
    let path = format!("/api/v1/channels/{channel}/credentials");
    app.send(Method::PUT, &path, Some(token), &[], Some(body.to_string()))
        .await
}

async fn get_credentials(app: &TestApp, token: &str, channel: &str) -> TestResponse {
    let path = format!("/api/v1/channels/{channel}/credentials");
    app.send(Method::GET, &path, Some(token), &[], None).await
}

#[sqlx::test(migrations = "../migrations")]
async fn credentials_are_read_back_by_the_business_its_manager_and_admins_and_each_read_is_recorded(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    // given a connection with stored credentials, an assigned manager and another one
    let app = TestApp::spawn(connect).await;
    let admin = app.admin().await;
    let (tenant, owner, channel) = channel_with_credentials(&app, "vault@x8.test").await;
    let (manager_id, manager) = app.manager(&admin, "assigned@x8.test").await;
    let (_, other_manager) = app.manager(&admin, "unassigned@x8.test").await;
    let (_, stranger) = app.tenant_with_owner("Other", "stranger@x8.test").await;
    app.assign_manager(&admin, tenant, manager_id, None).await;

    // when each of them reads the credentials
    let reads = [
        get_credentials(&app, &owner, &channel).await,
        get_credentials(&app, &manager, &channel).await,
        get_credentials(&app, &admin, &channel).await,
    ];

    // then the business, its manager and the admin see them, uncached
    for read in &reads {
        assert_eq!(read.status.as_u16(), 200, "{:?}", read.body);
        assert_eq!(read.body["credentials"]["bot_token"], TOKEN);
    }
    // and a manager not assigned to the business, or another business, gets 404
    get_credentials(&app, &other_manager, &channel)
        .await
        .assert_problem(404, "not_found");
    get_credentials(&app, &stranger, &channel)
        .await
        .assert_problem(404, "not_found");
    put_credentials(&app, &other_manager, &channel)
        .await
        .assert_problem(404, "not_found");
    // and every successful read is a CredentialsViewed event naming the reader
    let viewers: Vec<serde_json::Value> = sqlx::query_scalar(
        "select payload -> 'CredentialsViewed' -> 'viewer' from events
         where aggregate_type = 'channel' and aggregate_id = $1
           and event_type = 'CredentialsViewed' order by sequence",
    )
    .bind(&channel)
    .fetch_all(app.store.pool())
    .await
    .unwrap();
    assert_eq!(viewers.len(), 3);
    assert_eq!(viewers[1], json!(manager_id));
}

#[sqlx::test(migrations = "../migrations")]
async fn no_stored_secret_or_owner_email_is_in_plaintext_anywhere_in_the_database(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    // given a business whose connection holds credentials, read once
    let app = TestApp::spawn(connect).await;
    let (_, owner, channel) = channel_with_credentials(&app, "secret-owner@x8.test").await;
    let read = get_credentials(&app, &owner, &channel).await;
    let position = read.body["position"].as_i64().unwrap();
    app.send(
        Method::GET,
        &format!("/api/v1/channels/{channel}"),
        Some(&owner),
        &[("x-min-position", &position.to_string())],
        None,
    )
    .await;

    // when every table (events, commands, read models, keys) is dumped as text
    let tables: Vec<String> = sqlx::query_scalar(
        "select table_name::text from information_schema.tables
         where table_schema = 'public' and table_type = 'BASE TABLE'",
    )
    .fetch_all(app.store.pool())
    .await
    .unwrap();
    let mut dump = String::new();
    for table in &tables {
        let rows: Vec<String> = sqlx::query_scalar(&format!("select t::text from \"{table}\" t"))
            .fetch_all(app.store.pool())
            .await
            .unwrap();
        dump.push_str(&rows.join("\n"));
    }

    // then neither the token, the webhook secret nor the owner's address appears
    assert!(tables.iter().any(|t| t == "events"), "{tables:?}");
    assert!(
        dump.contains("CredentialsStored"),
        "the dump holds the events"
    );
    for secret in [
        TOKEN,
        "hook-secret-9876",
        "secret-owner@x8.test",
        "secret-owner",
    ] {
        assert!(!dump.contains(secret), "{secret} found in the database");
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_destroyed_data_key_makes_the_tenants_sealed_fields_unreadable(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    // given stored credentials
    let app = TestApp::spawn(connect).await;
    let (tenant, owner, channel) = channel_with_credentials(&app, "shred@x8.test").await;
    let vault = &app.state.commands.vault;
    let sealed: String = sqlx::query_scalar(
        "select payload -> 'TenantRegistered' ->> 'owner_email' from events
         where aggregate_type = 'tenant' and aggregate_id = $1",
    )
    .bind(tenant.to_string())
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    let sealed = x8_domain::Sealed(sealed);
    let email = vault.open(tenant, "email", &sealed).await.unwrap();
    assert_eq!(email.as_slice(), b"shred@x8.test");
    // a sealed value does not open for another purpose
    assert!(vault.open(tenant, "other", &sealed).await.is_err());

    // when the tenant's data key is destroyed (crypto-shredding)
    vault.destroy_key(tenant).await.unwrap();

    // then its sealed fields stay unreadable for good, and no new key is made
    assert!(matches!(
        vault.open(tenant, "email", &sealed).await,
        Err(x8_commands::vault::VaultError::KeyDestroyed(_))
    ));
    assert!(vault.seal(tenant, "email", b"x").await.is_err());
    get_credentials(&app, &owner, &channel)
        .await
        .assert_problem(410, "tenant_erased");
}
