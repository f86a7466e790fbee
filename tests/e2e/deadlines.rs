//! Durable deadlines: a trial ends by time, once, across a server restart.

use chrono::{Duration, TimeZone, Utc};
use futures::future::join;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use x8_tests::{TestApp, TestClock};

/// A business registered at `clock`'s time, with its trial deadline scheduled.
async fn registered_business(app: &TestApp, name: &str, email: &str) -> (uuid::Uuid, String) {
    let registered = app.tenant_with_owner(name, email).await;
    let position = app.event_count().await;
    app.state
        .projections
        .wait_for(
            x8_projections::deadlines::NAME,
            position,
            std::time::Duration::from_secs(5),
        )
        .await
        .unwrap();
    registered
}

#[sqlx::test(migrations = "../migrations")]
async fn a_trial_expires_by_time_once_across_a_restart(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    // given a business registered on 1 November with the clock standing still
    let clock = TestClock::at(Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0).unwrap());
    let app = TestApp::spawn_with_clock(connect.clone(), clock.clone()).await;
    let (tenant, owner) = registered_business(&app, "Trial Shop", "trial@x8.test").await;

    // when a day passes, nothing is due
    clock.advance(Duration::days(1));
    assert_eq!(app.deadlines().run_due(10).await.unwrap().done, 0);
    assert_eq!(app.deadlines().pending().await.unwrap(), 1);

    // when the server restarts and the clock passes the trial's end
    drop(app);
    let app = TestApp::spawn_with_clock(connect, clock.clone()).await;
    clock.advance(Duration::days(6) + Duration::seconds(1));
    let (first, second) = join(app.deadlines().run_due(10), app.deadlines().run_due(10)).await;

    // then ExpireTrial ran exactly once, and the trial shows as expired
    assert_eq!(first.unwrap().done + second.unwrap().done, 1);
    assert_eq!(app.deadlines().run_due(10).await.unwrap().done, 0);
    assert_eq!(
        app.stream_event_types("tenant", tenant).await,
        vec!["TenantRegistered", "TrialExpired"]
    );
    let position = app.event_count().await;
    let view = app.get_tenant(&owner, tenant, position).await;
    assert_eq!(view.body["subscription_status"], "expired");
    assert_eq!(app.deadlines().pending().await.unwrap(), 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_deadline_whose_command_already_ran_is_completed_without_running_again(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    // given a runner that died after ExpireTrial was appended but before marking it done
    let clock = TestClock::at(Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0).unwrap());
    let app = TestApp::spawn_with_clock(connect, clock.clone()).await;
    let (tenant, _) = registered_business(&app, "Crash Shop", "crash@x8.test").await;
    clock.advance(Duration::days(8));
    app.deadlines().run_due(10).await.unwrap();
    sqlx::query("update deadlines set status = 'pending', completed_at = null")
        .execute(app.store.pool())
        .await
        .unwrap();

    // when the next runner picks it up again
    let report = app.deadlines().run_due(10).await.unwrap();

    // then it is completed from the recorded outcome, and the stream holds one expiry
    assert_eq!(report.done, 1);
    assert_eq!(
        app.stream_event_types("tenant", tenant).await,
        vec!["TenantRegistered", "TrialExpired"]
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_failing_deadline_is_retried_with_back_off_then_marked_failed(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    // given a deadline whose command cannot run
    let clock = TestClock::at(Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0).unwrap());
    let app = TestApp::spawn_with_clock(connect, clock.clone()).await;
    sqlx::query(
        "insert into deadlines (deadline_id, kind, aggregate_id, due_at)
         values (gen_random_uuid(), 'tenant.expire_trial', 'not-a-tenant-id', $1)",
    )
    .bind(Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0).unwrap())
    .execute(app.store.pool())
    .await
    .unwrap();

    // when it fails, it is rescheduled 5 s later, not run again before that
    assert_eq!(app.deadlines().run_due(10).await.unwrap().failed, 1);
    assert_eq!(app.deadlines().run_due(10).await.unwrap().failed, 0);
    let (due_at, error): (chrono::DateTime<Utc>, String) =
        sqlx::query_as("select due_at, last_error from deadlines")
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    assert_eq!(due_at, clock_now(&clock) + Duration::seconds(5));
    assert!(error.contains("not-a-tenant-id"), "{error}");

    // then after MAX_ATTEMPTS it is marked failed for manual action, never dropped
    for _ in 1..x8_commands::deadlines::MAX_ATTEMPTS {
        clock.advance(Duration::hours(2));
        app.deadlines().run_due(10).await.unwrap();
    }
    let (status, attempts): (String, i32) =
        sqlx::query_as("select status, attempts from deadlines")
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    assert_eq!(
        (status.as_str(), attempts),
        ("failed", x8_commands::deadlines::MAX_ATTEMPTS)
    );
}

fn clock_now(clock: &TestClock) -> chrono::DateTime<Utc> {
    x8_commands::Clock::now(clock)
}
