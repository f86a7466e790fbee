//! The benchmark report (README "Benchmark report"): every figure in one run on one
//! machine, with the anchors measured in the same run.
//!
//! ```sh
//! cargo build --release -p x8-api && cargo bench -p x8-tests --bench report
//! ```
//!
//! 1. **Anchors**: pgbench appending one event row per transaction
//!    (`scripts/bench/pgbench-append.sql`, the physical limit), and stock cqrs-es +
//!    postgres-es 0.5 (its own schema, sqlx's default pool) on distinct aggregates and on
//!    one hot aggregate, N tasks each.
//! 2. **The server** (`x8-api` from the release build beside this bench, in its own process,
//!    pool of 20, projections and deadline runner running) over HTTP on loopback, N reqwest
//!    clients: loyalty redemptions of 1 point, each client on its own account, then all on
//!    one hot account; pgbench again (the machine's speed drifts within a run: the command
//!    path is compared with the mean of both); then inbound Telegram webhooks, the worst projection lag sampled
//!    every 100 ms; the server's resident memory (RSS) now and at its peak.
//! 3. **Projection catch-up**: the server stopped, every read model emptied and its
//!    checkpoint deleted, the server started again: the time until every projection has
//!    applied the whole log (the projections run side by side, each reading `$all`).
//! 4. **Rebuild**: every projection rebuilt blue/green while the server runs, one by one
//!    (each figure its own), then all together from one read of the log, as
//!    `x8-replay rebuild all` does.
//!
//! Databases `x8_bench_report`, `x8_bench_report_pgbench` and `x8_bench_report_pges` on
//! DATABASE_URL's server are dropped and made anew.

use chrono::Utc;
use clap::Parser;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{AggregateError, CqrsFramework};
use postgres_es::PostgresEventRepository;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use x8_eventstore::{pool, EventStore};
use x8_projections::ProjectionRunner;
use x8_tests::bench::{
    database_url, fresh_database, measure, pgbench_append, post_json, postgres_es_schema,
    LoyaltyBusiness, Tally,
};
use x8_tests::counter::{Add, Counter};
use x8_tests::{telegram, MASTER_KEY};

const DATABASE: &str = "x8_bench_report";

#[derive(Parser)]
struct Opts {
    /// Seconds per measurement.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrent clients (tasks for the anchors).
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// The server binary; default: `x8-api` beside this bench's release build.
    #[arg(long)]
    server: Option<PathBuf>,
    #[arg(long, hide = true)]
    bench: bool,
}

/// `x8-api serve` in its own process over the report's database.
struct Server {
    child: Child,
    api: String,
}

impl Server {
    /// Starts `binary` on a free loopback port and waits until `/health` answers.
    async fn start(binary: &Path, jwt_secret: &str) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let nowhere = "http://127.0.0.1:9";
        let child = Command::new(binary)
            .env("DATABASE_URL", database_url(DATABASE))
            .env("X8_BIND", format!("127.0.0.1:{port}"))
            .env("X8_JWT_SECRET", jwt_secret)
            .env("X8_MASTER_KEY", MASTER_KEY)
            .env("X8_AUTH_RATE_PER_MINUTE", "1000000")
            .env("X8_AUTH_RATE_BURST", "1000000")
            .env("X8_TELEGRAM_API_URL", nowhere)
            .env("X8_VIBER_API_URL", nowhere)
            .env("X8_STRIPE_API_URL", nowhere)
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| {
                anyhow::anyhow!(
                    "{}: {e} (cargo build --release -p x8-api)",
                    binary.display()
                )
            })?;
        let server = Self {
            child,
            api: format!("http://127.0.0.1:{port}/api/v1"),
        };
        let health = format!("http://127.0.0.1:{port}/health");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !reqwest::get(&health)
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            anyhow::ensure!(Instant::now() < deadline, "the server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(server)
    }

    /// Resident memory in MiB from `/proc/<pid>/status`: `(now, peak)`.
    fn rss_mib(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
                .map_or(0.0, |kib| kib / 1024.0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One line of the report: what, the figure, and the table's columns.
fn line(tally: &Tally, label: &str, seconds: f64) -> f64 {
    println!("{}", tally.line(label, seconds));
    tally.ok_per_second(seconds)
}

/// The 99th percentile of `values`.
fn p99(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values
        .get(((values.len() as f64) * 0.99) as usize)
        .or(values.last())
        .copied()
        .unwrap_or(0.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let opts = Opts::parse();
    let binary = match opts.server.clone() {
        Some(path) => path,
        // target/release/deps/report-… → target/release/x8-api
        None => std::env::current_exe()?
            .parent()
            .and_then(Path::parent)
            .map(|release| release.join("x8-api"))
            .ok_or_else(|| anyhow::anyhow!("no release directory; pass --server"))?,
    };
    let (clients, seconds) = (opts.clients, opts.seconds);
    println!(
        "# X8 benchmark report: {clients} clients, {seconds} s per figure, loopback, {}",
        Utc::now().format("%Y-%m-%d")
    );
    println!(
        "{:<34} {:>10} {:>9} {:>8} {:>8}",
        "measurement", "ok/s", "failed %", "p50 ms", "p99 ms"
    );

    // 1. The anchors.
    fresh_database("x8_bench_report_pgbench").await?;
    let pgbench_pool = pool::connect(&database_url("x8_bench_report_pgbench"), 2).await?;
    pool::migrate(&pgbench_pool).await?;
    pgbench_pool.close().await;
    let pgbench = pgbench_append("x8_bench_report_pgbench", clients, seconds).ok_or_else(|| {
        anyhow::anyhow!(
            "pgbench failed: is it installed (Debian: postgresql-contrib), and does the \
                 server accept {clients} more connections?"
        )
    })?;
    println!("{:<34} {pgbench:>10.0}", "pgbench single-row insert (tx/s)");

    fresh_database("x8_bench_report_pges").await?;
    let stock_pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(20)
        .connect(&database_url("x8_bench_report_pges"))
        .await?;
    postgres_es_schema(&stock_pool).await?;
    let stock = Arc::new(CqrsFramework::new(
        PersistedEventStore::<_, Counter>::new_event_store(PostgresEventRepository::new(
            stock_pool.clone(),
        )),
        vec![],
        (),
    ));
    let stock_command = |hot: bool| {
        let stock = stock.clone();
        move |task: usize, i: u64| {
            let stock = stock.clone();
            let id = if hot {
                "hot".into()
            } else {
                format!("{task}-{i}")
            };
            async move {
                match stock.execute(&id, Add { events: 1 }).await {
                    Ok(()) => true,
                    Err(AggregateError::AggregateConflict) => false,
                    Err(e) => panic!("postgres-es: {e}"),
                }
            }
        }
    };
    let (tally, secs) = measure(clients, seconds, stock_command(false)).await;
    let pges_distinct = line(&tally, "postgres-es, distinct aggregates", secs);
    let (tally, secs) = measure(clients, seconds, stock_command(true)).await;
    let pges_hot = line(&tally, "postgres-es, one hot aggregate", secs);
    drop(stock);
    stock_pool.close().await;

    // 2. The server over HTTP.
    fresh_database(DATABASE).await?;
    let jwt_secret = format!("report-{}", uuid::Uuid::new_v4());
    let server = Server::start(&binary, &jwt_secret).await?;
    let (idle_rss, _) = server.rss_mib();
    let api = server.api.clone();
    let http = reqwest::Client::new();
    let business = LoyaltyBusiness::register(&http, &api, clients + 1).await?;
    let (tenant, token, accounts) = (&business.tenant, &business.token, &business.accounts);
    let company = post_json(
        &http,
        &format!("{api}/tenants/{tenant}/companies"),
        Some(token),
        &json!({ "name": "Shop", "type": "Product" }),
    )
    .await?;
    let company = company["company_id"].as_str().unwrap_or_default();
    let channel = post_json(
        &http,
        &format!("{api}/companies/{company}/channels"),
        Some(token),
        &json!({ "platform": "telegram" }),
    )
    .await?;
    let channel = channel["channel_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    http.put(format!("{api}/channels/{channel}/credentials"))
        .bearer_auth(token)
        .json(&telegram::credentials())
        .send()
        .await?
        .error_for_status()?;

    let (tally, secs) = measure(
        clients,
        seconds,
        business.redemptions(&http, &api, accounts[1..].to_vec(), "d"),
    )
    .await;
    let x8_distinct = line(&tally, "X8 HTTP, one account per client", secs);
    let (tally, secs) = measure(
        clients,
        seconds,
        business.redemptions(&http, &api, vec![accounts[0].clone()], "h"),
    )
    .await;
    let x8_hot = line(&tally, "X8 HTTP, one hot account", secs);
    // The machine's speed drifts within a run: the anchor again, right after X8's figures.
    let pgbench_after = pgbench_append("x8_bench_report_pgbench", clients, seconds)
        .ok_or_else(|| anyhow::anyhow!("pgbench failed the second time"))?;
    println!(
        "{:<34} {pgbench_after:>10.0}",
        "pgbench again, after (tx/s)"
    );
    let pgbench_mean = (pgbench + pgbench_after) / 2.0;

    // Webhooks, with the worst projection's lag sampled meanwhile.
    let store = EventStore::new(pool::connect(&database_url(DATABASE), 4).await?);
    let runner = ProjectionRunner::new(store.clone(), x8_projections::all());
    let lags: Arc<Mutex<Vec<(f64, f64)>>> = Arc::default();
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (runner, lags, sampling) = (runner.clone(), lags.clone(), sampling.clone());
        tokio::spawn(async move {
            while sampling.load(Ordering::Relaxed) {
                let mut worst = (0.0_f64, 0.0_f64);
                for projection in runner.projections() {
                    if let Ok(lag) = runner.lag(projection.name()).await {
                        worst = (worst.0.max(lag.events as f64), worst.1.max(lag.seconds));
                    }
                }
                lags.lock().expect("lags").push(worst);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let update_ids = Arc::new(AtomicU64::new(1));
    let url = format!("{api}/webhooks/telegram/{channel}");
    let (tally, secs) = measure(clients, seconds, {
        let http = http.clone();
        move |client, i| {
            let (http, url) = (http.clone(), url.clone());
            let id = update_ids.fetch_add(1, Ordering::Relaxed) as i64;
            async move {
                let update = telegram::from_chat(
                    telegram::text_at(id, id, Utc::now(), "Is it open?"),
                    1_000 + (client as i64) * 1_000 + (i as i64 % 50),
                );
                http.post(&url)
                    .header("x-telegram-bot-api-secret-token", telegram::SECRET)
                    .json(&update)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            }
        }
    })
    .await;
    sampling.store(false, Ordering::Relaxed);
    sampler.await?;
    let webhooks = line(&tally, "X8 HTTP, Telegram webhooks", secs);
    let samples = lags.lock().expect("lags").clone();
    let lag_events = p99(samples.iter().map(|s| s.0).collect());
    let lag_seconds = p99(samples.iter().map(|s| s.1).collect());
    let (load_rss, peak_rss) = server.rss_mib();
    println!(
        "projection lag during the webhooks, worst projection: p99 {lag_events:.0} events, \
         {lag_seconds:.2} s"
    );
    println!(
        "server RSS: {idle_rss:.0} MiB idle, {load_rss:.0} MiB after the load, peak {peak_rss:.0} MiB"
    );

    // 3. Catch-up: every read model emptied, the server started on the whole log.
    drop(server);
    let tables: Vec<&str> = runner
        .projections()
        .iter()
        .flat_map(|p| p.tables().iter().copied())
        .collect();
    sqlx::raw_sql(&format!(
        "truncate {} cascade; delete from projection_checkpoints;",
        tables.join(", ")
    ))
    .execute(store.pool())
    .await?;
    let (log_events, head): (i64, i64) =
        sqlx::query_as("select count(*), coalesce(max(global_position), 0) from events")
            .fetch_one(store.pool())
            .await?;
    let started = Instant::now();
    let server = Server::start(&binary, &jwt_secret).await?;
    loop {
        let caught_up: i64 = sqlx::query_scalar(
            "select count(*) from projection_checkpoints where global_position >= $1",
        )
        .bind(head)
        .fetch_one(store.pool())
        .await?;
        if caught_up as usize == runner.projections().len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let catch_up = started.elapsed().as_secs_f64();
    let (_, catch_up_rss) = server.rss_mib();
    println!(
        "catch-up from empty read models: {} projections × {log_events} events in {catch_up:.2} s \
         ({:.0} log events/s; {:.0} events/s summed over projections); server RSS peak {catch_up_rss:.0} MiB",
        runner.projections().len(),
        log_events as f64 / catch_up,
        (log_events as f64 * runner.projections().len() as f64) / catch_up,
    );

    // 4. Rebuild every projection blue/green, the server running.
    let (mut replayed, mut rebuild_seconds) = (0_u64, 0.0_f64);
    for projection in runner.projections() {
        let report = runner.rebuild(projection.as_ref(), &|_| {}).await?;
        println!(
            "rebuild {:<14} {:>9} events in {:>6.2} s ({:>8.0} events/s)",
            projection.name(),
            report.events,
            report.seconds,
            report.events_per_second()
        );
        replayed += report.events;
        rebuild_seconds += report.seconds;
    }
    println!(
        "rebuild one by one: {replayed} events in {rebuild_seconds:.2} s ({:.0} events/s)",
        replayed as f64 / rebuild_seconds
    );
    let projections: Vec<&dyn x8_projections::Projection> =
        runner.projections().iter().map(|p| p.as_ref()).collect();
    let together = runner.rebuild_all(&projections, &|_| {}).await?;
    let rebuild_rate = together.events_per_second() * projections.len() as f64;
    println!(
        "rebuild all together (x8-replay rebuild all): {} projections × {} events in {:.2} s \
         ({:.0} log events/s; {rebuild_rate:.0} events/s applied)",
        projections.len(),
        together.events,
        together.seconds,
        together.events_per_second(),
    );
    drop(server);

    println!("\n# against the anchors and targets");
    println!(
        "commands, distinct: X8 {x8_distinct:.0}/s = {:.2}× pgbench's mean of before and \
         after ({:.2}× before, {:.2}× after; target ≥ 0.5×), postgres-es {pges_distinct:.0}/s \
         = {:.2}× pgbench before",
        x8_distinct / pgbench_mean,
        x8_distinct / pgbench,
        x8_distinct / pgbench_after,
        pges_distinct / pgbench
    );
    println!(
        "commands, hot: X8 {x8_hot:.0}/s (target ≥ 1,000), postgres-es {pges_hot:.0}/s successful"
    );
    println!(
        "webhooks: {webhooks:.0}/s = {:.2}× pgbench (mean)",
        webhooks / pgbench_mean
    );
    println!("rebuild all: {rebuild_rate:.0} events/s applied (target ≥ 100,000)");
    Ok(())
}
