//! The hot-aggregate benchmark (`cargo bench -p x8-tests --bench hot_account`): many
//! clients redeeming points from **one** loyalty account.
//!
//! Measures, in one run on one machine, with N concurrent clients (default 32):
//! 1. over HTTP: the real API (router, auth, projections and deadline runner running) on a
//!    loopback port, N reqwest clients posting `POST /loyalty/accounts/{id}/redemptions` of
//!    1 point on one account, then each on its own account (the distinct-accounts rate);
//! 2. in-process, the command bus alone: X8's bus on one hot account, and stock cqrs-es +
//!    postgres-es 0.5 on one hot aggregate (its own schema), counting version conflicts.
//!
//! Database `x8_bench_loyalty` (and `x8_bench_pges_hot`) on DATABASE_URL's server are
//! dropped and made anew.

use clap::Parser;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{AggregateError, CqrsFramework};
use postgres_es::PostgresEventRepository;
use std::sync::Arc;
use uuid::Uuid;
use x8_commands::CommandContext;
use x8_domain::TenantId;
use x8_eventstore::Actor;
use x8_tests::bench::{
    database_url, fresh_database, measure, postgres_es_schema, serve, LoyaltyBusiness,
};
use x8_tests::counter::{Add, Counter};

#[derive(Parser)]
struct Opts {
    /// Seconds per measurement.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// The server's pool (`X8_DB_MAX_CONNECTIONS`).
    #[arg(long, default_value_t = 20)]
    max_connections: u32,
    #[arg(long, hide = true)]
    bench: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let opts = Opts::parse();
    fresh_database("x8_bench_loyalty").await?;
    let (base, state) = serve("x8_bench_loyalty", opts.max_connections).await?;
    let api = format!("{base}/api/v1");
    let client = reqwest::Client::new();

    // A business with a huge welcome bonus, one hot account and one account per client.
    let business = LoyaltyBusiness::register(&client, &api, opts.clients + 1).await?;
    let tenant: Uuid = business.tenant.parse()?;
    let accounts = business.accounts.clone();
    let hot = accounts[0].clone();

    println!(
        "# hot account: {} clients redeeming 1 point per request, {} s each, loopback",
        opts.clients, opts.seconds
    );
    println!(
        "{:<34} {:>10} {:>9} {:>8} {:>8}",
        "measurement", "ok cmd/s", "failed %", "p50 ms", "p99 ms"
    );

    let (tally, secs) = measure(
        opts.clients,
        opts.seconds,
        business.redemptions(&client, &api, vec![hot.clone()], "hot"),
    )
    .await;
    println!("{}", tally.line("HTTP, one account", secs));
    let distinct = business.redemptions(&client, &api, accounts[1..].to_vec(), "distinct");
    let (tally, secs) = measure(opts.clients, opts.seconds, distinct).await;
    println!("{}", tally.line("HTTP, one account per client", secs));

    // The command bus alone, on the same hot account.
    let commands = state.commands.clone();
    let hot_id: Uuid = hot.parse()?;
    let (tally, secs) = measure(opts.clients, opts.seconds, move |c, i| {
        let commands = commands.clone();
        async move {
            let ctx = CommandContext::new(Actor::System);
            x8_commands::loyalty::redeem(
                &commands,
                TenantId(tenant),
                hot_id,
                1,
                &format!("bus-{c}-{i}"),
                &ctx,
            )
            .await
            .is_ok()
        }
    })
    .await;
    println!("{}", tally.line("bus, one account", secs));

    // Stock cqrs-es + postgres-es on one hot aggregate: concurrent loads race to conflicts.
    fresh_database("x8_bench_pges_hot").await?;
    let stock_pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(opts.max_connections)
        .connect(&database_url("x8_bench_pges_hot"))
        .await?;
    postgres_es_schema(&stock_pool).await?;
    let stock = Arc::new(CqrsFramework::new(
        PersistedEventStore::<_, Counter>::new_event_store(PostgresEventRepository::new(
            stock_pool.clone(),
        )),
        vec![],
        (),
    ));
    let (tally, secs) = measure(opts.clients, opts.seconds, move |_, _| {
        let stock = stock.clone();
        async move {
            match stock.execute("hot", Add { events: 1 }).await {
                Ok(()) => true,
                Err(AggregateError::AggregateConflict) => false,
                Err(e) => panic!("postgres-es: {e}"),
            }
        }
    })
    .await;
    println!("{}", tally.line("postgres-es bus, one aggregate", secs));
    stock_pool.close().await;

    // No lost update: the hot account's balance is the bonus minus every redemption.
    let redeemed: i64 = sqlx::query_scalar(
        "select count(*) from events where aggregate_id = $1 and event_type = 'PointsRedeemed'",
    )
    .bind(&hot)
    .fetch_one(state.commands.store.pool())
    .await?;
    let balance = state
        .commands
        .loyalty_accounts
        .load(&hot)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .balance();
    anyhow::ensure!(
        balance == 1_000_000_000_000 - redeemed,
        "lost update: balance {balance} after {redeemed} redemptions"
    );
    println!("\nhot account: {redeemed} redemptions recorded, balance {balance}: no lost update");
    Ok(())
}
