//! The append and `$all` benchmark (`cargo bench -p x8-tests --bench append`).
//!
//! Measures, in one run on one machine:
//! 1. commands/s through the full command path (load, decide, append) on distinct streams
//!    at 1, 8 and 32 concurrent tasks, for X8's event store and for stock cqrs-es +
//!    postgres-es 0.5;
//! 2. pgbench appending one row per transaction to the same `events` table at the same
//!    concurrency (the physical limit; `scripts/bench/pgbench-append.sql`);
//! 3. `$all` read rate over N events (default 1,000,000) against a plain indexed batch read.
//!
//! Databases `x8_bench` and `x8_bench_pges` on DATABASE_URL's server are dropped and made anew.

use clap::Parser;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::CqrsFramework;
use postgres_es::PostgresEventRepository;
use sqlx::PgPool;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use x8_commands::{CommandBus, CommandContext};
use x8_eventstore::all::{read_all, AllFilter};
use x8_eventstore::{pool, Actor, Checkpoint, EventStore};
use x8_tests::bench::{database_url, fresh_database, pgbench_append, postgres_es_schema};
use x8_tests::counter::{Add, Counter};

#[derive(Parser)]
struct Opts {
    /// Seconds per measurement.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Events in the log for the `$all` read measurement.
    #[arg(long, default_value_t = 1_000_000)]
    events: i64,
    /// Largest pool of the command-path measurements (tasks beyond it wait for a
    /// connection, as in the server, whose pool is `X8_DB_MAX_CONNECTIONS`).
    #[arg(long, default_value_t = 20)]
    max_pool: u32,
    /// Concurrency levels.
    #[arg(long, value_delimiter = ',', default_values_t = vec![1, 8, 32])]
    tasks: Vec<usize>,
    #[arg(long, hide = true)]
    bench: bool,
}

/// Busy CPU time of the whole machine (user, nice, system, irq, softirq) from `/proc/stat`,
/// and of this process from `/proc/self/stat`, in clock ticks (10 ms).
fn cpu_now() -> (u64, u64) {
    let machine = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|stat| {
            let line = stat.lines().next()?.to_string();
            let f: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|v| v.parse().ok())
                .collect();
            Some(f.first()? + f.get(1)? + f.get(2)? + f.get(5)? + f.get(6)?)
        })
        .unwrap_or(0);
    let me = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            let rest = &stat[stat.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split(' ').collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0);
    (me, machine)
}

/// CPU per operation in microseconds, `(client, server)`: the client is this process, the
/// server everything else on the machine (PostgreSQL, and pgbench's own small client).
fn cpu_per_op(before: (u64, u64), after: (u64, u64), ops: f64) -> (f64, f64) {
    let us = |ticks: u64| ticks as f64 * 10_000.0 / ops.max(1.0);
    let client = after.0.saturating_sub(before.0);
    let machine = after.1.saturating_sub(before.1);
    (us(client), us(machine.saturating_sub(client)))
}

/// Runs `tasks` loops of `op` for `seconds`; returns operations per second.
async fn measure<F, Fut>(tasks: usize, seconds: u64, op: F) -> f64
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let (op, done) = (op.clone(), done.clone());
            tokio::spawn(async move {
                let mut i = 0;
                while Instant::now() < deadline {
                    op(task, i).await;
                    i += 1;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let started = Instant::now();
    for handle in handles {
        handle.await.expect("task");
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let opts = Opts::parse();
    fresh_database("x8_bench").await?;
    let x8_pool = pool::connect(&database_url("x8_bench"), 4).await?;
    pool::migrate(&x8_pool).await?;
    fresh_database("x8_bench_pges").await?;
    postgres_es_schema(&PgPool::connect(&database_url("x8_bench_pges")).await?).await?;

    println!(
        "# append: commands/s (1 event each) on distinct streams, {} s each",
        opts.seconds
    );
    println!(
        "{:>6} {:>12} {:>12} {:>12} {:>10} {:>10}",
        "tasks", "x8", "postgres-es", "pgbench", "x8/pgb", "pges/pgb"
    );
    let mut cpu_lines = Vec::new();
    for &tasks in &opts.tasks {
        // One pool per measurement, sized to it and closed after, so the three never hold
        // more than max_connections together.
        let size = (tasks as u32 + 2).min(opts.max_pool);
        let bench_pool = pool::connect(&database_url("x8_bench"), size).await?;
        let bus = Arc::new(CommandBus::<Counter>::new(&EventStore::new(
            bench_pool.clone(),
        )));
        let cpu = cpu_now();
        let x8 = measure(tasks, opts.seconds, move |task, i| {
            let bus = bus.clone();
            async move {
                let ctx = CommandContext::new(Actor::System);
                bus.execute(&format!("x8-{tasks}-{task}-{i}"), Add { events: 1 }, &ctx)
                    .await
                    .expect("append");
            }
        })
        .await;
        let x8_cpu = cpu_per_op(cpu, cpu_now(), x8 * opts.seconds as f64);
        bench_pool.close().await;

        // postgres-es as shipped: sqlx's default pool options (a ping at every acquire).
        let stock_pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(size)
            .connect(&database_url("x8_bench_pges"))
            .await?;
        let stock = Arc::new(CqrsFramework::new(
            PersistedEventStore::<_, Counter>::new_event_store(PostgresEventRepository::new(
                stock_pool.clone(),
            )),
            vec![],
            (),
        ));
        let cpu = cpu_now();
        let pges = measure(tasks, opts.seconds, move |task, i| {
            let stock = stock.clone();
            async move {
                stock
                    .execute(&format!("pges-{tasks}-{task}-{i}"), Add { events: 1 })
                    .await
                    .expect("append");
            }
        })
        .await;
        let pges_cpu = cpu_per_op(cpu, cpu_now(), pges * opts.seconds as f64);
        stock_pool.close().await;

        let cpu = cpu_now();
        let pgb = pgbench_append("x8_bench", tasks, opts.seconds);
        let pgb_server_us = pgb.map(|p| cpu_per_op(cpu, cpu_now(), p * opts.seconds as f64).1);
        let ratio = |v: f64| pgb.map_or("-".to_string(), |p| format!("{:.2}", v / p));
        println!(
            "{tasks:>6} {x8:>12.0} {pges:>12.0} {:>12} {:>10} {:>10}",
            pgb.map_or("n/a".into(), |p| format!("{p:.0}")),
            ratio(x8),
            ratio(pges)
        );
        cpu_lines.push(format!(
            "{tasks:>6} {:>12.0} {:>12.0} {:>12.0} {:>12.0} {:>12}",
            x8_cpu.0,
            x8_cpu.1,
            pges_cpu.0,
            pges_cpu.1,
            pgb_server_us.map_or("n/a".into(), |us| format!("{us:.0}")),
        ));
    }
    println!("\n# CPU per command in microseconds (client = this process, server = the rest of the machine)");
    println!(
        "{:>6} {:>12} {:>12} {:>12} {:>12} {:>12}",
        "tasks", "x8 client", "x8 server", "pges client", "pges server", "pgb server"
    );
    for line in cpu_lines {
        println!("{line}");
    }

    if opts.events == 0 {
        return Ok(());
    }
    println!(
        "\n# $all: reading {} events in batches of 1000",
        opts.events
    );
    sqlx::query("truncate events").execute(&x8_pool).await?;
    sqlx::query(
        "insert into events (event_id, aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         select gen_random_uuid(), 'counter', 's' || (g / 10), g % 10 + 1, 'Added', '1.0', '{\"writer\": 1}', '{\"command_id\": \"x\"}'
         from generate_series(0, $1 - 1) g",
    )
    .bind(opts.events)
    .execute(&x8_pool)
    .await?;
    sqlx::query("vacuum analyze events")
        .execute(&x8_pool)
        .await?;

    let started = Instant::now();
    let (mut checkpoint, mut read) = (Checkpoint::START, 0usize);
    loop {
        let batch = read_all(&x8_pool, checkpoint, 1000, &AllFilter::default()).await?;
        let Some(last) = batch.events.last() else {
            break;
        };
        checkpoint = last.checkpoint();
        read += batch.events.len();
    }
    let all_rate = read as f64 / started.elapsed().as_secs_f64();

    let started = Instant::now();
    let (mut position, mut plain) = (0i64, 0usize);
    loop {
        let rows: Vec<x8_eventstore::RecordedEvent> = sqlx::query_as(
            "select global_position, 0::bigint as transaction_id, event_id, aggregate_type, aggregate_id, sequence,
                    event_type, event_version, tenant_id, payload, metadata, recorded_at
             from events where global_position > $1 order by global_position limit 1000",
        )
        .bind(position)
        .fetch_all(&x8_pool)
        .await?;
        let Some(last) = rows.last() else { break };
        position = last.global_position;
        plain += rows.len();
    }
    let plain_rate = plain as f64 / started.elapsed().as_secs_f64();
    println!("{:>14} {:>14} {:>8}", "$all ev/s", "plain ev/s", "ratio");
    println!(
        "{all_rate:>14.0} {plain_rate:>14.0} {:>8.2}",
        all_rate / plain_rate
    );
    assert_eq!(read, plain);
    Ok(())
}
