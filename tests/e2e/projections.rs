//! The projection runner: atomic batches with their checkpoint, resume after a failure,
//! rebuild, lag, read-your-writes.

use futures::future::BoxFuture;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgConnection;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use x8_eventstore::RecordedEvent;
use x8_projections::runner::BatchOutcome;
use x8_projections::tenants::TenantsProjection;
use x8_projections::{Projection, ProjectionError, ProjectionRunner};
use x8_tests::TestApp;

/// The tenants projection plus an `applied` ledger whose primary key fails on any double
/// application, failing once on the `fail_at`-th event it is given.
struct FailingOnce {
    calls: AtomicUsize,
    fail_at: usize,
}

impl Projection for FailingOnce {
    fn name(&self) -> &'static str {
        "tenants_failing"
    }

    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        event: &'a RecordedEvent,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(async move {
            sqlx::query("insert into applied (global_position) values ($1)")
                .bind(event.global_position)
                .execute(&mut *conn)
                .await?;
            TenantsProjection.apply(conn, event).await?;
            if self.calls.fetch_add(1, Ordering::SeqCst) + 1 == self.fail_at {
                return Err(ProjectionError::Other("injected failure".into()));
            }
            Ok(())
        })
    }

    fn tables(&self) -> &'static [&'static str] {
        &["applied", "tenants", "manager_clients"]
    }
}

async fn tenants_table(app: &TestApp) -> Vec<serde_json::Value> {
    sqlx::query_scalar("select to_jsonb(t) from tenants t order by tenant_id")
        .fetch_all(app.store.pool())
        .await
        .unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn a_batch_failing_half_way_resumes_without_loss_or_double_application(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    // given 12 events in the log and a projection that fails on its 5th event once
    let app = TestApp::spawn(connect).await;
    let admin = app.admin().await;
    let (manager, _) = app.manager(&admin, "m@x8.test").await;
    for i in 0..4 {
        let (tenant, _) = app
            .tenant_with_owner(&format!("Shop {i}"), &format!("s{i}@x8.test"))
            .await;
        if i % 2 == 0 {
            app.assign_manager(&admin, tenant, manager, None).await;
        }
    }
    sqlx::query("create table applied (global_position bigint primary key)")
        .execute(app.store.pool())
        .await
        .unwrap();
    let projection = FailingOnce {
        calls: AtomicUsize::new(0),
        fail_at: 5,
    };
    let runner = ProjectionRunner::new(app.store.clone(), vec![]).with_batch_size(8);
    sqlx::query("insert into projection_checkpoints (projection_name) values ('tenants_failing')")
        .execute(app.store.pool())
        .await
        .unwrap();
    // (the live `tenants` projection is stopped from interfering by truncating its table)
    tokio::time::sleep(Duration::from_millis(200)).await;
    sqlx::query("truncate tenants, manager_clients")
        .execute(app.store.pool())
        .await
        .unwrap();

    // (the read horizon is cluster-wide: wait until every event is readable)
    let total = app.event_count().await as usize;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while x8_eventstore::all::read_all(
        app.store.pool(),
        x8_eventstore::Checkpoint::START,
        1000,
        &Default::default(),
    )
    .await
    .unwrap()
    .events
    .len()
        < total
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // when the first batch fails half way and the runner goes on
    let first = runner.run_batch(&projection).await;
    assert!(first.is_err(), "the injected failure surfaces");
    let applied: i64 = sqlx::query_scalar("select count(*) from applied")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(applied, 0, "the failed batch left nothing behind");
    runner.catch_up(&projection).await.unwrap();

    // then every event was applied exactly once (the ledger's key would have failed)
    let applied: i64 = sqlx::query_scalar("select count(*) from applied")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(applied, app.event_count().await);
    let resumed = tenants_table(&app).await;
    assert_eq!(resumed.len(), 4);

    // and the read model equals a full rebuild
    let report = runner.rebuild(&projection, &|_| {}).await.unwrap();
    assert_eq!(report.events, app.event_count().await as u64);
    assert_eq!(tenants_table(&app).await, resumed);
    // (catch_up waits out a moment's Busy: the failed batch's connection may still be
    // rolling back its transaction, and with it the projection's lock, when it returns)
    assert_eq!(
        runner.catch_up(&projection).await.unwrap(),
        0,
        "nothing left to apply"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn only_one_runner_applies_a_projection_at_a_time(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let app = TestApp::spawn(connect).await;
    app.tenant_with_owner("Shop", "s@x8.test").await;
    let runner = ProjectionRunner::new(app.store.clone(), vec![]);

    // given another process holding the projection's lock
    let mut other = app.store.pool().begin().await.unwrap();
    sqlx::query("select pg_advisory_xact_lock(hashtext('x8.projection'), hashtext('tenants'))")
        .execute(&mut *other)
        .await
        .unwrap();

    // then this runner stands aside
    assert_eq!(
        runner.run_batch(&TenantsProjection).await.unwrap(),
        BatchOutcome::Busy
    );
    other.rollback().await.unwrap();
}

#[sqlx::test(migrations = "../migrations")]
async fn lag_is_readable_and_reaches_zero(_options: PgPoolOptions, connect: PgConnectOptions) {
    let app = TestApp::spawn(connect).await;
    let runner = ProjectionRunner::new(app.store.clone(), vec![]);
    sqlx::query("insert into projection_checkpoints (projection_name) values ('idle')")
        .execute(app.store.pool())
        .await
        .unwrap();
    let response = app.register_tenant("Shop", "s@x8.test", None).await;
    let position = response.body["position"].as_i64().unwrap();

    let idle = runner.lag("idle").await.unwrap();
    assert_eq!(idle.events, 2);
    assert!(idle.seconds >= 0.0);

    app.state
        .projections
        .wait_for("tenants", position, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(runner.lag("tenants").await.unwrap().events, 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_read_waits_for_its_position_and_gives_up_with_503(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let app = TestApp::spawn_with(connect, Duration::from_millis(300)).await;
    let admin = app.admin().await;
    let (tenant, owner) = app.tenant_with_owner("Shop", "s@x8.test").await;
    let (manager, _) = app.manager(&admin, "m@x8.test").await;

    // read-your-writes: the response's position makes the next read reflect the write
    let assigned = app.assign_manager(&admin, tenant, manager, None).await;
    let position = assigned.body["position"].as_i64().unwrap();
    let view = app.get_tenant(&owner, tenant, position).await;
    assert_eq!(view.body["manager_id"], manager.to_string());

    // a position the projection never reaches: 503 projection_lagging
    let lagging = app.get_tenant(&owner, tenant, position + 1_000).await;
    lagging.assert_problem(503, "projection_lagging");
}

#[sqlx::test(migrations = "../migrations")]
async fn another_process_is_woken_by_the_coalesced_notify(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    // given two "processes": two stores with their own in-process signals on one database
    let pool = x8_tests::test_pool(connect, 6).await;
    let writer = x8_eventstore::EventStore::new(pool.clone());
    let reader = x8_eventstore::EventStore::new(pool.clone());
    writer.signal().spawn_cross_process(pool.clone());
    reader.signal().spawn_cross_process(pool.clone());
    let mut wakeups = reader.signal().subscribe();
    wakeups.borrow_and_update();
    tokio::time::sleep(Duration::from_millis(300)).await; // listeners connected

    // when the writer appends
    let bus = x8_commands::CommandBus::<x8_tests::counter::Counter>::new(&writer);
    let ctx = x8_commands::CommandContext::new(x8_eventstore::Actor::System);
    bus.execute("n", x8_tests::counter::Add { events: 1 }, &ctx)
        .await
        .unwrap();

    let appended_at = std::time::Instant::now();
    // then the reader's subscribers are woken without polling
    tokio::time::timeout(Duration::from_secs(5), wakeups.changed())
        .await
        .expect("woken by NOTIFY")
        .unwrap();
    eprintln!("woken {:?} after the append", appended_at.elapsed());
}
