//! `x8-replay` against a real log: `verify` names the stream whose history breaks a rule.
//! (The erasure tests check `history` and `verify` over an erased business.)

use axum::http::StatusCode;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;
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
