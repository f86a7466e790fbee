//! The event store: gap-free `$all` under concurrent writers, stream reads, snapshots,
//! upcasting.

use futures::future::join_all;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::collections::HashSet;
use std::time::{Duration, Instant};
use x8_commands::{CommandBus, CommandContext, CommandError};
use x8_eventstore::all::{read_all, AllFilter};
use x8_eventstore::append::CommandEvents;
use x8_eventstore::stream::{read_stream, StreamRange};
use x8_eventstore::{Actor, Checkpoint, EventStore, PgEventRepository};
use x8_tests::counter::{Add, Counter};
use x8_tests::test_pool;

const WRITERS: u32 = 16;
const EVENTS: usize = 8_000;
const EVENTS_PER_COMMAND: u32 = 2;
const SHARED_STREAMS: u32 = 4;

/// Follows `$all` from the start until it has seen `expected` events; returns their
/// global positions in the order read.
async fn follow_all(store: EventStore, expected: usize) -> Vec<i64> {
    let mut checkpoint = Checkpoint::START;
    let mut seen = Vec::with_capacity(expected);
    let deadline = Instant::now() + Duration::from_secs(120);
    while seen.len() < expected {
        assert!(
            Instant::now() < deadline,
            "reader saw only {} events",
            seen.len()
        );
        let batch = read_all(store.pool(), checkpoint, 97, &AllFilter::default())
            .await
            .unwrap();
        if batch.events.is_empty() {
            tokio::time::sleep(Duration::from_millis(2)).await;
            continue;
        }
        for event in &batch.events {
            seen.push(event.global_position);
        }
        checkpoint = batch.events.last().unwrap().checkpoint();
    }
    // Nothing more ever shows up behind the reader.
    let rest = read_all(store.pool(), checkpoint, 10, &AllFilter::default())
        .await
        .unwrap();
    assert!(rest.events.is_empty(), "events after the last expected one");
    seen
}

#[sqlx::test(migrations = "../migrations")]
async fn concurrent_writers_and_readers_see_every_event_once_in_one_order(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    // given 16 writers and 2 readers following $all from checkpoints
    let store = EventStore::new(test_pool(connect, 24).await);
    let readers: Vec<_> = (0..2)
        .map(|_| tokio::spawn(follow_all(store.clone(), EVENTS)))
        .collect();

    // when they append 8,000 events to distinct and shared streams concurrently
    let commands_per_writer = EVENTS as u32 / EVENTS_PER_COMMAND / WRITERS;
    let writers = (0..WRITERS).map(|writer| {
        let bus = CommandBus::<Counter>::new(&store);
        tokio::spawn(async move {
            for i in 0..commands_per_writer {
                let stream = if i % 2 == 0 {
                    format!("own-{writer}-{}", i % 10)
                } else {
                    format!("shared-{}", i % SHARED_STREAMS)
                };
                loop {
                    let ctx = CommandContext::new(Actor::System);
                    match bus
                        .execute(
                            &stream,
                            Add {
                                events: EVENTS_PER_COMMAND,
                            },
                            &ctx,
                        )
                        .await
                    {
                        Ok(_) => break,
                        Err(CommandError::Conflict) => continue,
                        Err(e) => panic!("append failed: {e}"),
                    }
                }
            }
        })
    });
    for writer in join_all(writers).await {
        writer.unwrap();
    }

    // then each reader saw all 8,000 exactly once, both in the same order
    let mut orders = Vec::new();
    for reader in readers {
        orders.push(reader.await.unwrap());
    }
    for order in &orders {
        assert_eq!(order.len(), EVENTS);
        assert_eq!(
            order.iter().collect::<HashSet<_>>().len(),
            EVENTS,
            "duplicates"
        );
    }
    assert_eq!(orders[0], orders[1], "readers disagree on the order");
    let total: i64 = sqlx::query_scalar("select count(*) from events")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(total as usize, EVENTS);
}

/// One `Added` event of a new command at `sequence` of counter stream `stream`.
fn added(stream: &str, sequence: usize) -> Vec<cqrs_es::persist::SerializedEvent> {
    let metadata = x8_eventstore::EventMetadata {
        actor: Actor::System,
        correlation_id: uuid::Uuid::now_v7(),
        causation_id: None,
        command_id: uuid::Uuid::now_v7(),
        command_name: "Add".into(),
        tenant_id: None,
    };
    vec![cqrs_es::persist::SerializedEvent::new(
        stream.into(),
        sequence,
        "counter".into(),
        "Added".into(),
        "1.0".into(),
        serde_json::json!({ "writer": 0 }),
        serde_json::to_value(metadata.to_map()).unwrap(),
    )]
}

/// Appends `appends` (each one command) at once; their outcomes in order.
async fn append_at_once(
    repository: &PgEventRepository,
    appends: &[Vec<cqrs_es::persist::SerializedEvent>],
) -> Vec<Result<Vec<x8_eventstore::append::AppendReceipt>, x8_eventstore::EventStoreError>> {
    join_all(appends.iter().map(|events| async move {
        let command = CommandEvents {
            events,
            fingerprint: "f",
        };
        repository.append_group::<Counter>(&[command]).await
    }))
    .await
}

/// `(events, transactions, command records)` of the streams whose id is `like` `pattern`.
async fn appended(store: &EventStore, pattern: &str) -> (i64, i64, i64) {
    sqlx::query_as(
        "select count(*), count(distinct transaction_id),
                (select count(*) from commands where aggregate_id like $1)
         from events where aggregate_id like $1",
    )
    .bind(pattern)
    .fetch_one(store.pool())
    .await
    .unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn appends_on_many_streams_at_once_share_a_statement_and_a_conflict_fails_only_its_own(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let store = EventStore::new(test_pool(connect, 8).await);
    let repository = PgEventRepository::new(store.clone());

    // When 50 commands append to 50 streams at once
    let first: Vec<_> = (0..50).map(|i| added(&format!("a-{i}"), 1)).collect();
    let results = append_at_once(&repository, &first).await;

    // Then each is appended with its own receipt and record, in fewer transactions
    for result in &results {
        let receipts = result.as_ref().expect("appended");
        assert_eq!(receipts.len(), 1);
        assert_eq!(receipts[0].event_count, 1);
        assert_eq!(receipts[0].first_position, receipts[0].last_position);
    }
    let (events, transactions, records) = appended(&store, "a-%").await;
    assert_eq!((events, records), (50, 50));
    assert!(
        transactions < 50,
        "{transactions} transactions for 50 appends"
    );

    // When 50 more append at once beside one whose stream moved past its expected version
    let mut second: Vec<_> = (0..50).map(|i| added(&format!("b-{i}"), 1)).collect();
    second.insert(7, added("a-3", 1));
    let results = append_at_once(&repository, &second).await;

    // Then only that one fails, as a conflict, and appends nothing
    for (i, result) in results.iter().enumerate() {
        match (i, result) {
            (7, Err(x8_eventstore::EventStoreError::Conflict { stream })) => {
                assert_eq!(stream, "counter/a-3");
            }
            (7, other) => panic!("expected a conflict, got {other:?}"),
            (_, result) => assert!(result.is_ok(), "{result:?}"),
        }
    }
    assert_eq!(appended(&store, "b-%").await.0, 50);
    assert_eq!(appended(&store, "b-%").await.2, 50);
    assert_eq!(appended(&store, "a-3").await, (1, 1, 1));
}

#[sqlx::test(migrations = "../migrations")]
async fn a_reader_never_passes_an_open_writer(_options: PgPoolOptions, connect: PgConnectOptions) {
    // given a writer whose transaction stays open after taking a position
    let store = EventStore::new(test_pool(connect, 4).await);
    let bus = CommandBus::<Counter>::new(&store);
    let mut open = store.pool().begin().await.unwrap();
    sqlx::query(
        "insert into events (event_id, aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         values (gen_random_uuid(), 'counter', 'slow', 1, 'Added', '1.0', '{\"writer\": 1}', '{}')",
    )
    .execute(&mut *open)
    .await
    .unwrap();

    // when a later writer commits and a reader reads
    bus.execute(
        "fast",
        Add { events: 1 },
        &CommandContext::new(Actor::System),
    )
    .await
    .unwrap();
    let before = read_all(store.pool(), Checkpoint::START, 10, &AllFilter::default())
        .await
        .unwrap();

    // then the reader waits for the open writer instead of skipping it
    assert!(before.events.is_empty(), "read past an open transaction");
    assert!(before.held_by_horizon);
    open.commit().await.unwrap();
    // (the horizon is cluster-wide: other tests' open transactions may delay it a little)
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let batch = read_all(store.pool(), Checkpoint::START, 10, &AllFilter::default())
            .await
            .unwrap();
        if batch.events.len() == 2 || Instant::now() > deadline {
            break batch;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let ids: Vec<_> = after
        .events
        .iter()
        .map(|e| e.aggregate_id.as_str())
        .collect();
    assert_eq!(ids, vec!["slow", "fast"]);
}

#[sqlx::test(migrations = "../migrations")]
async fn streams_are_read_whole_from_a_version_up_to_a_version_and_as_of_a_time(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let store = EventStore::new(test_pool(connect, 4).await);
    let bus = CommandBus::<Counter>::new(&store);
    let ctx = || CommandContext::new(Actor::System);
    bus.execute("s", Add { events: 3 }, &ctx()).await.unwrap();
    let between = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    bus.execute("s", Add { events: 2 }, &ctx()).await.unwrap();
    bus.execute("other", Add { events: 1 }, &ctx())
        .await
        .unwrap();

    let read = |range| read_stream(store.pool(), "counter", "s", range);
    let sequences = |events: Vec<x8_eventstore::RecordedEvent>| {
        events.iter().map(|e| e.sequence).collect::<Vec<_>>()
    };
    assert_eq!(
        sequences(read(StreamRange::default()).await.unwrap()),
        vec![1, 2, 3, 4, 5]
    );
    let from = StreamRange {
        after_version: Some(3),
        ..Default::default()
    };
    assert_eq!(sequences(read(from).await.unwrap()), vec![4, 5]);
    let upto = StreamRange {
        up_to_version: Some(2),
        ..Default::default()
    };
    assert_eq!(sequences(read(upto).await.unwrap()), vec![1, 2]);
    let asof = StreamRange {
        recorded_until: Some(between),
        ..Default::default()
    };
    assert_eq!(sequences(read(asof).await.unwrap()), vec![1, 2, 3]);
    assert_eq!(bus.load("s").await.unwrap().count, 5);
}

/// Reads `$all` from the start with `filter` until `expected` events are visible: the read
/// horizon is cluster-wide, so other tests' open transactions may hold it back briefly.
async fn read_settled(
    store: &EventStore,
    filter: &AllFilter,
    expected: usize,
) -> Vec<x8_eventstore::RecordedEvent> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let batch = read_all(store.pool(), Checkpoint::START, 100, filter)
            .await
            .unwrap();
        if batch.events.len() >= expected || Instant::now() > deadline {
            return batch.events;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn all_is_filtered_by_event_type_and_tenant(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let app = x8_tests::TestApp::spawn(connect).await;
    let (tenant, _) = app.tenant_with_owner("Filtered", "f@x8.test").await;
    app.tenant_with_owner("Other", "o@x8.test").await;

    let by_tenant = AllFilter {
        tenant_id: Some(tenant),
        event_types: None,
    };
    let events = read_settled(&app.store, &by_tenant, 2).await;
    let types: Vec<_> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, vec!["UserRegistered", "TenantRegistered"]);

    let by_type = AllFilter {
        tenant_id: None,
        event_types: Some(vec!["TenantRegistered".into()]),
    };
    let events = read_settled(&app.store, &by_type, 2).await;
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e.event_type == "TenantRegistered"));
}

#[sqlx::test(migrations = "../migrations")]
async fn snapshots_are_taken_every_n_events_and_a_broken_one_falls_back_to_replay(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    // given snapshots every 4 events, and commands that cross the boundary by more than one
    let store = EventStore::new(test_pool(connect, 4).await).with_snapshot_every(4);
    let bus = CommandBus::<Counter>::new(&store);
    let ctx = || CommandContext::new(Actor::System);
    for events in [3, 3, 5] {
        bus.execute("snap", Add { events }, &ctx()).await.unwrap();
    }
    let (last_sequence, state): (i64, serde_json::Value) =
        sqlx::query_as("select last_sequence, payload from snapshots where aggregate_id = 'snap'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    // then the snapshot sits on a multiple of 4 and holds exactly that many events
    assert_eq!(last_sequence, 8);
    assert_eq!(state["count"], 8);
    assert_eq!(bus.load("snap").await.unwrap().count, 11);

    // when the snapshot no longer deserialises, the aggregate is replayed from its events
    sqlx::query("update snapshots set payload = '{\"renamed\": true}'")
        .execute(store.pool())
        .await
        .unwrap();
    assert_eq!(bus.load("snap").await.unwrap().count, 11);
    bus.execute("snap", Add { events: 1 }, &ctx())
        .await
        .unwrap();
    assert_eq!(bus.load("snap").await.unwrap().count, 12);
}

#[sqlx::test(migrations = "../migrations")]
async fn an_old_version_payload_is_upcast_when_loaded(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    // given a TenantRegistered 1.0 written before the trial terms were part of the event
    let app = x8_tests::TestApp::spawn(connect).await;
    let tenant = uuid::Uuid::now_v7();
    sqlx::query(
        "insert into events (event_id, aggregate_type, aggregate_id, sequence, event_type, event_version, tenant_id, payload, metadata)
         values (gen_random_uuid(), 'tenant', $1, 1, 'TenantRegistered', '1.0', $2, $3, '{}')",
    )
    .bind(tenant.to_string())
    .bind(tenant)
    .bind(serde_json::json!({"TenantRegistered": {
        "tenant_id": tenant, "name": "Legacy Shop",
        "owner_user_id": "00000000-0000-0000-0000-000000000002",
        "owner_email": "legacy@shop.test", "registered_at": "2025-01-01T00:00:00Z"
    }}))
    .execute(app.store.pool())
    .await
    .unwrap();

    // when the aggregate is loaded and the projection reads it
    let loaded = app
        .state
        .commands
        .tenants
        .load(&tenant.to_string())
        .await
        .unwrap();
    let position: i64 = sqlx::query_scalar("select max(global_position) from events")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    let admin = app.admin().await;
    let view = app.get_tenant(&admin, tenant, position).await;

    // then both see the version 2.0 shape
    assert_eq!(loaded.status(), x8_domain::tenant::TenantStatus::Active);
    assert_eq!(view.body["trial_ends_at"], "2025-01-08T00:00:00Z");
    assert_eq!(view.body["channel_limit"], 1);
    assert_eq!(view.body["plan"], "FREE");
}
