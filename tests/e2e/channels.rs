//! Channel connections: the plan limit under concurrency, plan changes, usage, the Meta
//! app pool, access.

use axum::http::Method;
use futures::future::join_all;
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;
use x8_tests::{TestApp, TestResponse};

fn id_of(response: &TestResponse, field: &str) -> Uuid {
    response.body[field].as_str().unwrap().parse().unwrap()
}

fn position(response: &TestResponse) -> i64 {
    response.body["position"].as_i64().unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn twenty_concurrent_connects_on_double_exactly_two_succeed(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    // given a business on DOUBLE with one company
    let app = TestApp::spawn(connect).await;
    let admin = app.admin().await;
    let (tenant, owner) = app.tenant_with_owner("Busy", "busy@x8.test").await;
    let company = app.company(&owner, tenant).await;
    let plan = app
        .set_plan(&admin, tenant, json!({"plan": "DOUBLE"}))
        .await;
    assert_eq!(plan.status.as_u16(), 200, "{:?}", plan.body);

    // when 20 connects arrive at once
    let responses =
        join_all((0..20).map(|_| app.connect_channel(&owner, company, "telegram"))).await;

    // then exactly 2 succeed and 18 are refused over the limit
    let created: Vec<&TestResponse> = responses
        .iter()
        .filter(|r| r.status.as_u16() == 201)
        .collect();
    assert_eq!(
        created.len(),
        2,
        "{:?}",
        responses.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
    for refused in responses.iter().filter(|r| r.status.as_u16() != 201) {
        refused.assert_problem(409, "over_channel_limit");
    }
    // and replaying the tenant's events never shows more than 2 slots held
    let events: Vec<(String, Value)> = sqlx::query_as(
        "select event_type, payload from events
         where aggregate_type = 'tenant' and aggregate_id = $1 order by sequence",
    )
    .bind(tenant.to_string())
    .fetch_all(app.store.pool())
    .await
    .unwrap();
    let mut held = 0i64;
    for (event_type, _) in &events {
        match event_type.as_str() {
            "ChannelSlotReserved" => held += 1,
            "ChannelSlotReleased" => held -= 1,
            _ => {}
        }
        assert!(held <= 2, "more than 2 channels held: {events:?}");
    }
    assert_eq!(held, 2);
    let streams: i64 = sqlx::query_scalar(
        "select count(*) from events where event_type = 'ChannelCreated' and tenant_id = $1",
    )
    .bind(tenant)
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    assert_eq!(streams, 2);
    let last = created.iter().map(|r| position(r)).max().unwrap();
    let usage = app.usage(&owner, tenant, last).await;
    assert_eq!(usage.body["channels_used"], 2);
    assert_eq!(usage.body["channel_limit"], 2);
    assert_eq!(usage.body["over_limit"], false);
}

#[sqlx::test(migrations = "../migrations")]
async fn the_trial_allows_one_channel_and_usage_shows_it(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    // given a business in its trial
    let app = TestApp::spawn(connect).await;
    let (tenant, owner) = app.tenant_with_owner("Trial", "trial@x8.test").await;
    let company = app.company(&owner, tenant).await;

    // when it connects two channels
    let first = app.connect_channel(&owner, company, "telegram").await;
    let second = app.connect_channel(&owner, company, "viber").await;

    // then the first is created DISCONNECTED and the second is over the limit, naming it
    assert_eq!(first.status.as_u16(), 201, "{:?}", first.body);
    assert_eq!(first.body["status"], "DISCONNECTED");
    second.assert_problem(409, "over_channel_limit");
    assert_eq!(
        second.body["connection_ids"],
        json!([first.body["channel_id"]])
    );
    let usage = app.usage(&owner, tenant, position(&first)).await;
    assert_eq!(usage.status.as_u16(), 200, "{:?}", usage.body);
    assert_eq!(usage.body["plan"], "FREE");
    assert_eq!(usage.body["status"], "trialing");
    assert_eq!(usage.body["channels_used"], 1);
    assert_eq!(usage.body["channel_limit"], 1);
    assert_eq!(usage.body["over_limit"], false);
    assert!(usage.body["trial_ends_at"].is_string());
    // and the company lists the connection with its status
    let path = format!("/api/v1/companies/{company}");
    let min = position(&first).to_string();
    let view = app
        .send(
            Method::GET,
            &path,
            Some(&owner),
            &[("x-min-position", &min)],
            None,
        )
        .await;
    assert_eq!(view.body["channels"][0]["platform"], "telegram");
    assert_eq!(view.body["channels"][0]["status"], "DISCONNECTED");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_business_downgrade_over_the_new_limit_is_refused_listing_the_excess(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    // given a business on DOUBLE with two channels
    let app = TestApp::spawn(connect).await;
    let admin = app.admin().await;
    let (tenant, owner) = app.tenant_with_owner("Two", "two@x8.test").await;
    let company = app.company(&owner, tenant).await;
    app.set_plan(&admin, tenant, json!({"plan": "DOUBLE"}))
        .await;
    let first = app.connect_channel(&owner, company, "telegram").await;
    let second = app.connect_channel(&owner, company, "viber").await;

    // when it asks for SINGLE
    let refused = app
        .set_plan(&owner, tenant, json!({"plan": "SINGLE"}))
        .await;

    // then it is refused, naming the connection to remove
    refused.assert_problem(409, "over_channel_limit");
    assert_eq!(
        refused.body["connection_ids"],
        json!([second.body["channel_id"]])
    );

    // and after removing it, the downgrade passes
    let path = format!("/api/v1/channels/{}", id_of(&second, "channel_id"));
    let removed = app
        .send(Method::DELETE, &path, Some(&owner), &[], None)
        .await;
    assert_eq!(removed.status.as_u16(), 200, "{:?}", removed.body);
    let accepted = app
        .set_plan(&owner, tenant, json!({"plan": "SINGLE"}))
        .await;
    assert_eq!(accepted.status.as_u16(), 200, "{:?}", accepted.body);
    assert_eq!(accepted.body["plan"], "SINGLE");
    assert_eq!(accepted.body["channel_limit"], 1);
    let usage = app.usage(&owner, tenant, position(&accepted)).await;
    assert_eq!(usage.body["channels_used"], 1);
    let listed = app
        .send(
            Method::GET,
            &format!("/api/v1/companies/{company}/channels"),
            Some(&owner),
            &[("x-min-position", &position(&accepted).to_string())],
            None,
        )
        .await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1);
    assert_eq!(listed.body[0]["channel_id"], first.body["channel_id"]);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_business_cannot_upgrade_itself_or_set_a_limit(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let app = TestApp::spawn(connect).await;
    let (tenant, owner) = app.tenant_with_owner("Cheap", "cheap@x8.test").await;
    let before = app.event_count().await;

    app.set_plan(&owner, tenant, json!({"plan": "GROWTH"}))
        .await
        .assert_problem(403, "upgrade_requires_checkout");
    app.set_plan(&owner, tenant, json!({"plan": "FREE", "channel_limit": 9}))
        .await
        .assert_problem(403, "forbidden");
    app.set_plan(&owner, tenant, json!({"plan": "PLATINUM"}))
        .await
        .assert_problem(400, "invalid_body");

    assert_eq!(app.event_count().await, before);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_plan_change_as_a_fact_marks_the_tenant_over_its_limit_until_the_excess_goes(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    // given a business on GROWTH with three channels
    let app = TestApp::spawn(connect).await;
    let admin = app.admin().await;
    let (tenant, owner) = app.tenant_with_owner("Grown", "grown@x8.test").await;
    let company = app.company(&owner, tenant).await;
    app.set_plan(&admin, tenant, json!({"plan": "GROWTH"}))
        .await;
    let mut channels = Vec::new();
    for platform in ["telegram", "viber", "email"] {
        let created = app.connect_channel(&owner, company, platform).await;
        assert_eq!(created.status.as_u16(), 201, "{:?}", created.body);
        channels.push(id_of(&created, "channel_id"));
    }

    // when the provider reports a downgrade to SINGLE (billing's command)
    let ctx = x8_commands::CommandContext::new(x8_eventstore::Actor::Webhook("stripe".into()));
    let fact = x8_commands::tenants::execute(
        &app.state.commands,
        x8_domain::TenantId(tenant),
        x8_domain::tenant::TenantCommand::RecordPlanChange {
            plan: Some(x8_domain::Plan::Single),
            channel_limit: None,
            subscription_status: x8_domain::tenant::SubscriptionStatus::Active,
            observed_at: None,
        },
        &ctx,
    )
    .await
    .expect("a fact is never refused");

    // then it is recorded, the tenant is over its limit, and no channel may be added
    let usage = app.usage(&owner, tenant, fact.position()).await;
    assert_eq!(usage.body["plan"], "SINGLE");
    assert_eq!(usage.body["over_limit"], true);
    assert_eq!(usage.body["channels_used"], 3);
    let refused = app.connect_channel(&owner, company, "tiktok").await;
    refused.assert_problem(409, "over_channel_limit");
    assert_eq!(refused.body["connection_ids"].as_array().unwrap().len(), 3);

    // and removing the excess clears the flag
    let mut last = 0;
    for channel in &channels[1..] {
        let path = format!("/api/v1/channels/{channel}");
        let removed = app
            .send(Method::DELETE, &path, Some(&owner), &[], None)
            .await;
        last = position(&removed);
    }
    let usage = app.usage(&owner, tenant, last).await;
    assert_eq!(usage.body["over_limit"], false);
    assert_eq!(usage.body["channels_used"], 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn an_expired_trial_restricts_new_channels(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let app = TestApp::spawn(connect).await;
    let (tenant, owner) = app.tenant_with_owner("Late", "late@x8.test").await;
    let company = app.company(&owner, tenant).await;
    let ctx = x8_commands::CommandContext::new(x8_eventstore::Actor::System);
    x8_commands::tenants::execute(
        &app.state.commands,
        x8_domain::TenantId(tenant),
        x8_domain::tenant::TenantCommand::ExpireTrial {
            at: chrono::Utc::now() + chrono::Duration::days(8),
        },
        &ctx,
    )
    .await
    .unwrap();

    app.connect_channel(&owner, company, "telegram")
        .await
        .assert_problem(409, "channels_restricted");
}

#[sqlx::test(migrations = "../migrations")]
async fn two_concurrent_instagram_connects_with_one_app_one_succeeds(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    // given one Meta app in the pool and two businesses on GROWTH
    let app = TestApp::spawn(connect).await;
    let admin = app.admin().await;
    let body = json!({"meta_app_id": "1234567890", "name": "Pool app 1"});
    let added = app
        .send(
            Method::POST,
            "/api/v1/admin/meta-apps",
            Some(&admin),
            &[],
            Some(body.to_string()),
        )
        .await;
    assert_eq!(added.status.as_u16(), 201, "{:?}", added.body);
    let mut companies = Vec::new();
    for n in 0..2 {
        let (tenant, owner) = app
            .tenant_with_owner("Insta", &format!("insta{n}@x8.test"))
            .await;
        app.set_plan(&admin, tenant, json!({"plan": "GROWTH"}))
            .await;
        companies.push((tenant, owner.clone(), app.company(&owner, tenant).await));
    }

    // when both connect Instagram at once
    let responses = join_all(
        companies
            .iter()
            .map(|(_, owner, company)| app.connect_channel(owner, *company, "instagram")),
    )
    .await;

    // then one gets the app and the other is refused, its slot given back
    let winner = responses
        .iter()
        .position(|r| r.status.as_u16() == 201)
        .expect("one wins");
    let loser = 1 - winner;
    responses[loser].assert_problem(409, "meta_app_pool_empty");
    let (loser_tenant, loser_owner, loser_company) = &companies[loser];
    let head: i64 = sqlx::query_scalar("select max(global_position) from events")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    let usage = app.usage(loser_owner, *loser_tenant, head).await;
    assert_eq!(usage.body["channels_used"], 0);
    let apps = app
        .send(
            Method::GET,
            "/api/v1/admin/meta-apps",
            Some(&admin),
            &[("x-min-position", &position(&responses[winner]).to_string())],
            None,
        )
        .await;
    assert_eq!(
        apps.body[0]["channel_id"],
        responses[winner].body["channel_id"]
    );

    // and when the winner removes its connection, the app returns to the pool
    let (_, winner_owner, _) = &companies[winner];
    let path = format!(
        "/api/v1/channels/{}",
        id_of(&responses[winner], "channel_id")
    );
    let removed = app
        .send(Method::DELETE, &path, Some(winner_owner), &[], None)
        .await;
    assert_eq!(removed.status.as_u16(), 200, "{:?}", removed.body);
    let retried = app
        .connect_channel(loser_owner, *loser_company, "facebook")
        .await;
    assert_eq!(retried.status.as_u16(), 201, "{:?}", retried.body);
}

#[sqlx::test(migrations = "../migrations")]
async fn channels_are_visible_to_their_business_only(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let app = TestApp::spawn(connect).await;
    let admin = app.admin().await;
    let (tenant, owner) = app.tenant_with_owner("Mine", "mine@x8.test").await;
    let (_, stranger) = app.tenant_with_owner("Other", "other@x8.test").await;
    let (_, manager) = app.manager(&admin, "m@x8.test").await;
    let company = app.company(&owner, tenant).await;
    let created = app.connect_channel(&owner, company, "email").await;
    let path = format!("/api/v1/channels/{}", id_of(&created, "channel_id"));
    let min = position(&created).to_string();
    let headers = [("x-min-position", min.as_str())];

    for token in [&stranger, &manager] {
        app.send(Method::GET, &path, Some(token), &headers, None)
            .await
            .assert_problem(404, "not_found");
        app.send(Method::DELETE, &path, Some(token), &[], None)
            .await
            .assert_problem(404, "not_found");
        app.connect_channel(token, company, "email")
            .await
            .assert_problem(404, "not_found");
    }
    let own = app
        .send(Method::GET, &path, Some(&owner), &headers, None)
        .await;
    assert_eq!(own.body["platform"], "email");
    assert_eq!(own.body["status"], "DISCONNECTED");
    let admin_view = app
        .send(Method::GET, &path, Some(&admin), &headers, None)
        .await;
    assert_eq!(admin_view.status.as_u16(), 200);
}
