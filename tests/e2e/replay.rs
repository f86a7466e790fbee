//! `x8-replay` against a real log: `verify` names the stream whose history breaks a rule;
//! a blue/green `rebuild` keeps the read models answering and ends equal to them
//! (`checksum`).
//! (The erasure tests check `history` and `verify` over an erased business.)

use axum::http::{Method, StatusCode};
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::sync::atomic::{AtomicBool, Ordering};
use uuid::Uuid;
use x8_projections::{Projection, ProjectionRunner};
use x8_replay::checksum::checksums;
use x8_replay::export;
use x8_replay::verify::verify;
use x8_tests::TestApp;

/// Appends a copy of the stream's last `event_type` event after its last one, the way a
/// writer bypassing the aggregate (a script, a bad migration) would.
async fn forge_copy(app: &TestApp, aggregate_type: &str, id: Uuid, event_type: &str, gap: i64) {
    // language=PostgreSQL
    sqlx::query(
        "insert into events (event_id, aggregate_type, aggregate_id, sequence, event_type,
                             event_version, tenant_id, payload, metadata)
         select gen_random_uuid(), aggregate_type, aggregate_id,
                (select max(sequence) from events
                 where aggregate_type = $1 and aggregate_id = $2) + $4,
                event_type, event_version, tenant_id, payload, metadata
         from events where aggregate_type = $1 and aggregate_id = $2 and event_type = $3
         order by sequence desc limit 1",
    )
    .bind(aggregate_type)
    .bind(id.to_string())
    .bind(event_type)
    .bind(gap)
    .execute(app.store.pool())
    .await
    .unwrap();
}

/// Every table's constraints and indexes in the live schema, as `table.name: definition`.
async fn schema_objects(app: &TestApp) -> Vec<String> {
    // language=PostgreSQL
    sqlx::query_scalar(
        "select tablename || '.' || indexname || ': ' || regexp_replace(indexdef, ' ON \\S+', '')
         from pg_indexes where schemaname = current_schema()
         union all
         select cl.relname || '.' || co.conname || ': ' || pg_get_constraintdef(co.oid)
         from pg_constraint co join pg_class cl on cl.oid = co.conrelid
         where cl.relnamespace = current_schema()::regnamespace
         order by 1",
    )
    .fetch_all(app.store.pool())
    .await
    .unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn verify_passes_a_sound_log_and_names_each_stream_that_breaks_a_rule(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    // given a sound log: two businesses, one with a manager
    let app = TestApp::spawn(db).await;
    let admin = app.admin().await;
    let (managed, _) = app
        .tenant_with_owner("Managed Shop", "managed@x8.test")
        .await;
    let (other, _) = app.tenant_with_owner("Other Shop", "other@x8.test").await;
    let (manager, _) = app.manager(&admin, "m1@x8.test").await;
    let assigned = app.assign_manager(&admin, managed, manager, None).await;
    assert_eq!(assigned.status, StatusCode::OK, "{:?}", assigned.body);
    let sound = verify(&app.store).await.unwrap();
    assert_eq!(sound.violations, vec![], "{sound:?}");
    assert_eq!(sound.events, app.event_count().await as u64);

    // when a second ManagerAssigned is written past the aggregate, and another stream
    // skips a sequence number
    forge_copy(&app, "tenant", managed, "ManagerAssigned", 1).await;
    forge_copy(&app, "tenant", other, "TenantRegistered", 3).await;

    // then verify names both streams and what is wrong
    let report = verify(&app.store).await.unwrap();
    let found: Vec<(String, String)> = report
        .violations
        .iter()
        .map(|v| (v.stream.clone(), v.rule.clone()))
        .collect();
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found
            .iter()
            .any(|(stream, rule)| stream == &format!("tenant/{managed}")
                && rule.contains("still manages the business")),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|(stream, rule)| stream == &format!("tenant/{other}")
                && rule.contains("was expected")),
        "{found:?}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_blue_green_rebuild_keeps_answering_and_ends_equal_to_the_live_model(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    // given businesses with a manager, companies, a courier and a delivery (a read model
    // whose child table has a foreign key), every projection caught up
    let app = TestApp::spawn(db).await;
    let admin = app.admin().await;
    let (manager, _) = app.manager(&admin, "m1@x8.test").await;
    let mut tenants = Vec::new();
    for i in 0..3 {
        let (tenant, owner) = app
            .tenant_with_owner(&format!("Shop {i}"), &format!("owner{i}@x8.test"))
            .await;
        app.assign_manager(&admin, tenant, manager, None).await;
        let company = app.company(&owner, tenant).await;
        let courier = json!({"name": "Marko", "phone": "+381601234567", "zones": ["Vračar"]});
        let path = format!("/api/v1/companies/{company}/couriers");
        let registered = app.send_json(Method::POST, &path, &owner, &courier).await;
        assert_eq!(
            registered.status,
            StatusCode::CREATED,
            "{:?}",
            registered.body
        );
        let delivery = json!({"order_reference": format!("ORD-{i}"), "address": "Knez Mihailova 1",
                              "customer_name": "Ana", "customer_phone": "+381609998887"});
        let path = format!("/api/v1/companies/{company}/deliveries");
        let created = app.send_json(Method::POST, &path, &owner, &delivery).await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        let delivery = created.body["delivery_id"].as_str().unwrap();
        let checkpoint = json!({"location": {"lat": 44.81, "lng": 20.46},
                                "occurred_at": "2026-11-22T10:00:00Z"});
        let path = format!("/api/v1/deliveries/{delivery}/checkpoints");
        let moved = app
            .send_json(Method::POST, &path, &owner, &checkpoint)
            .await;
        assert_eq!(moved.status, StatusCode::CREATED, "{:?}", moved.body);
        tenants.push((tenant, owner));
    }
    app.caught_up().await;
    let live = checksums(&app.store, "all").await.unwrap();
    let schema = schema_objects(&app).await;
    let deliveries = live.iter().find(|c| c.projection == "deliveries").unwrap();
    assert!(
        deliveries.tables.iter().all(|t| t.rows > 0),
        "{deliveries:?}"
    );

    // when every projection is rebuilt, one by one then all together, while an owner keeps
    // reading its business
    let done = AtomicBool::new(false);
    let (tenant, owner) = &tenants[0];
    let reads = async {
        let mut statuses = Vec::new();
        while !done.load(Ordering::SeqCst) {
            let path = format!("/api/v1/tenants/{tenant}");
            statuses.push(app.get_caught_up(owner, &path).await.status);
        }
        statuses
    };
    let rebuild = async {
        let runner = ProjectionRunner::new(app.store.clone(), x8_projections::all());
        let mut reports = Vec::new();
        for projection in runner.projections() {
            reports.push(runner.rebuild(projection.as_ref(), &|_| {}).await.unwrap());
        }
        // and then all together, from one read of the log (x8-replay rebuild all)
        let all: Vec<&dyn Projection> = runner.projections().iter().map(|p| p.as_ref()).collect();
        reports.push(runner.rebuild_all(&all, &|_| {}).await.unwrap());
        done.store(true, Ordering::SeqCst);
        reports
    };
    let (statuses, reports) = tokio::join!(reads, rebuild);

    // then every read was answered, each rebuild replayed the whole log, and the rebuilt
    // read models are row for row the live ones
    assert!(!statuses.is_empty());
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    let events = app.event_count().await as u64;
    assert!(reports.iter().all(|r| r.events == events), "{reports:?}");
    assert_eq!(checksums(&app.store, "all").await.unwrap(), live);
    assert_eq!(
        schema_objects(&app).await,
        schema,
        "every key, index and constraint under its own name"
    );

    // and the live runners go on from the rebuilt models' checkpoints
    let (after, owner) = app
        .tenant_with_owner("After Rebuild", "after@x8.test")
        .await;
    let view = app
        .get_caught_up(&owner, &format!("/api/v1/tenants/{after}"))
        .await;
    assert_eq!(view.body["name"], "After Rebuild", "{:?}", view.body);
    app.caught_up().await;
    let tenants_now = checksums(&app.store, "tenants").await.unwrap();
    assert_eq!(tenants_now[0].tables[0].rows, 4);
}

#[sqlx::test(migrations = "../migrations")]
async fn export_writes_a_business_s_events_of_a_range_without_personal_fields(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    // given two businesses
    let app = TestApp::spawn(db).await;
    let (shop, owner) = app.tenant_with_owner("Export Shop", "export@x8.test").await;
    app.tenant_with_owner("Other Shop", "other@x8.test").await;
    app.company(&owner, shop).await;
    let shop_events: i64 = sqlx::query_scalar("select count(*) from events where tenant_id = $1")
        .bind(shop)
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    let opts = |format| export::Opts {
        from: export::parse_time("2000-01-01").unwrap(),
        to: export::parse_time("2100-01-01").unwrap(),
        tenant: Some(shop),
        kind: None,
        format,
    };

    // when one business's events are exported as JSON lines and as CSV
    let mut jsonl = Vec::new();
    let written = export::export(&app.store, &opts(export::Format::Jsonl), &mut jsonl)
        .await
        .unwrap();
    let mut csv = Vec::new();
    export::export(&app.store, &opts(export::Format::Csv), &mut csv)
        .await
        .unwrap();

    // then each holds exactly its events, in $all order, with no personal field
    let jsonl = String::from_utf8(jsonl).unwrap();
    let lines: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(written, shop_events as u64);
    assert_eq!(lines.len() as i64, shop_events);
    assert!(lines.iter().all(|l| l["tenant_id"] == shop.to_string()));
    assert!(lines
        .windows(2)
        .all(|w| w[0]["global_position"].as_i64() < w[1]["global_position"].as_i64()));
    let csv = String::from_utf8(csv).unwrap();
    assert_eq!(csv.lines().count() as i64, shop_events + 1, "{csv}");
    assert!(csv.starts_with("global_position,recorded_at,tenant_id,aggregate_type"));
    for personal in ["Export Shop", "export@x8.test"] {
        assert!(
            !jsonl.contains(personal) && !csv.contains(personal),
            "{personal}"
        );
    }

    // and a range or a type that matches nothing exports nothing
    let mut none = Vec::new();
    let empty = export::Opts {
        kind: Some("OrderPaid".into()),
        ..opts(export::Format::Jsonl)
    };
    assert_eq!(
        export::export(&app.store, &empty, &mut none).await.unwrap(),
        0
    );
}
