//! What the benchmarks (`tests/benches/`) share: their databases on DATABASE_URL's server,
//! stock postgres-es's schema, the API served on a loopback port, and timed client loops.

use futures::future::BoxFuture;
use secrecy::SecretString;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;
use x8_api::auth::AuthKeys;
use x8_api::AppState;
use x8_commands::SystemClock;
use x8_eventstore::{pool, EventStore};

/// DATABASE_URL, or the local server's `postgres` database.
pub fn server_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// DATABASE_URL with its database replaced by `name`, query string (e.g. a Unix socket
/// `?host=/var/run/postgresql`) kept.
pub fn database_url(name: &str) -> String {
    let server = server_url();
    let (path, query) = server
        .split_once('?')
        .map_or((server.as_str(), None), |(p, q)| (p, Some(q)));
    let base = path.rsplit_once('/').map_or(path, |(base, _)| base);
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

/// Drops database `name` if it exists and creates it empty.
///
/// # Errors
/// [`sqlx::Error`] when the server refuses.
pub async fn fresh_database(name: &str) -> Result<(), sqlx::Error> {
    let admin = PgPool::connect(&server_url()).await?;
    sqlx::query(&format!("drop database if exists {name} with (force)"))
        .execute(&admin)
        .await?;
    sqlx::query(&format!("create database {name}"))
        .execute(&admin)
        .await?;
    admin.close().await;
    Ok(())
}

/// Creates postgres-es 0.5's own schema (`db/init.sql` of the crate) in `pool`'s database.
///
/// # Errors
/// [`sqlx::Error`].
pub async fn postgres_es_schema(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(
        "create table events (aggregate_type text not null, aggregate_id text not null,
             sequence bigint check (sequence >= 0) not null, event_type text not null,
             event_version text not null, payload json not null, metadata json not null,
             primary key (aggregate_type, aggregate_id, sequence));
         create table snapshots (aggregate_type text not null, aggregate_id text not null,
             last_sequence bigint check (last_sequence >= 0) not null,
             current_snapshot bigint check (current_snapshot >= 0) not null,
             payload json not null, primary key (aggregate_type, aggregate_id, last_sequence));",
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// pgbench's transactions per second with `clients` connections for `seconds`, each
/// appending one event row to database `database`'s `events` table
/// (`scripts/bench/pgbench-append.sql`): the physical limit of an append. `None` when
/// pgbench is missing or fails.
pub fn pgbench_append(database: &str, clients: usize, seconds: u64) -> Option<f64> {
    let output = Command::new("pgbench")
        .args(["-n", "-c", &clients.to_string()])
        .args([
            "-j",
            &clients.min(2).to_string(),
            "-T",
            &seconds.to_string(),
        ])
        .args([
            "-f",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../scripts/bench/pgbench-append.sql"
            ),
        ])
        .arg(database_url(database))
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
}

/// POSTs `body` as JSON to `url`, with `token` as bearer when given, and returns the
/// JSON answer.
///
/// # Errors
/// A transport error, or a non-2xx answer (named with its body).
pub async fn post_json(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: &Value,
) -> anyhow::Result<Value> {
    let mut request = client.post(url).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let status = response.status();
    let body: Value = response.json().await?;
    anyhow::ensure!(status.is_success(), "{url}: {status} {body}");
    Ok(body)
}

/// A business registered over HTTP with a huge welcome bonus and `accounts` loyalty
/// accounts, as the loyalty benchmarks use it.
pub struct LoyaltyBusiness {
    /// The business's id.
    pub tenant: String,
    /// Its owner's access token.
    pub token: String,
    /// The accounts' ids, each holding 10^12 welcome points.
    pub accounts: Vec<String>,
}

impl LoyaltyBusiness {
    /// Registers "Bench Cafe" at `api` (`…/api/v1`), logs its owner in, sets a welcome bonus
    /// of 10^12 points and opens `accounts` accounts.
    ///
    /// # Errors
    /// A refused or failed request.
    pub async fn register(
        client: &reqwest::Client,
        api: &str,
        accounts: usize,
    ) -> anyhow::Result<Self> {
        let registered = post_json(
            client,
            &format!("{api}/tenants"),
            None,
            &json!({ "name": "Bench Cafe", "owner_email": "owner@bench.test",
                     "owner_password": crate::PASSWORD }),
        )
        .await?;
        let tenant = registered["tenant_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let login = post_json(
            client,
            &format!("{api}/auth/login"),
            None,
            &json!({ "email": "owner@bench.test", "password": crate::PASSWORD }),
        )
        .await?;
        let token = login["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        client
            .put(format!("{api}/tenants/{tenant}/loyalty/settings"))
            .bearer_auth(&token)
            .json(&json!({ "welcome_bonus_points": 1_000_000_000_000i64 }))
            .send()
            .await?
            .error_for_status()?;
        let mut opened = Vec::new();
        for customer in 0..accounts {
            let account = post_json(
                client,
                &format!("{api}/tenants/{tenant}/loyalty/accounts"),
                Some(&token),
                &json!({ "customer_ref": format!("customer-{customer}") }),
            )
            .await?;
            opened.push(
                account["account_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
        Ok(Self {
            tenant,
            token,
            accounts: opened,
        })
    }

    /// A [`measure`] operation: client `c` redeems 1 point from `accounts[c % len]` over
    /// HTTP (`run` keeps the references of separate measurements apart); true on 201.
    pub fn redemptions(
        &self,
        client: &reqwest::Client,
        api: &str,
        accounts: Vec<String>,
        run: &'static str,
    ) -> impl Fn(usize, u64) -> BoxFuture<'static, bool> + Send + Sync + 'static {
        let (client, api, token) = (client.clone(), api.to_string(), self.token.clone());
        move |c, i| {
            let request = client
                .post(format!(
                    "{api}/loyalty/accounts/{}/redemptions",
                    accounts[c % accounts.len()]
                ))
                .bearer_auth(&token)
                .json(&json!({ "points": 1, "reference": format!("{run}-{c}-{i}") }));
            Box::pin(async move {
                request
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == reqwest::StatusCode::CREATED)
            })
        }
    }
}

/// What one measurement counted.
#[derive(Default)]
pub struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
    latencies_us: Mutex<Vec<u64>>,
}

impl Tally {
    /// Counts one call that started at `started`.
    pub fn record(&self, ok: bool, started: Instant) {
        let counter = if ok { &self.ok } else { &self.failed };
        counter.fetch_add(1, Ordering::Relaxed);
        let us = started.elapsed().as_micros() as u64;
        self.latencies_us.lock().expect("latencies").push(us);
    }

    /// Successful calls per second over `seconds`.
    pub fn ok_per_second(&self, seconds: f64) -> f64 {
        self.ok.load(Ordering::Relaxed) as f64 / seconds.max(1e-9)
    }

    /// `ok/s  failed %  p50 ms  p99 ms`.
    pub fn line(&self, label: &str, seconds: f64) -> String {
        let ok = self.ok.load(Ordering::Relaxed) as f64;
        let failed = self.failed.load(Ordering::Relaxed) as f64;
        let mut latencies = self.latencies_us.lock().expect("latencies").clone();
        latencies.sort_unstable();
        let pct = |p: f64| {
            latencies
                .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
                .map_or(0.0, |us| *us as f64 / 1000.0)
        };
        format!(
            "{label:<34} {:>10.0} {:>9.1} {:>8.2} {:>8.2}",
            ok / seconds,
            100.0 * failed / (ok + failed).max(1.0),
            pct(0.50),
            pct(0.99)
        )
    }
}

/// Runs `clients` loops of `op` for `seconds`; `op(client, i)` says whether it succeeded.
pub async fn measure<F, Fut>(clients: usize, seconds: u64, op: F) -> (Arc<Tally>, f64)
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let op = Arc::new(op);
    let tally = Arc::new(Tally::default());
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|client| {
            let (op, tally) = (op.clone(), tally.clone());
            tokio::spawn(async move {
                let mut i = 0;
                while Instant::now() < deadline {
                    let at = Instant::now();
                    let ok = op(client, i).await;
                    tally.record(ok, at);
                    i += 1;
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.expect("client");
    }
    (tally, started.elapsed().as_secs_f64())
}

/// The API over database `database` (migrated) on a loopback port, with projections and
/// the deadline runner running and no login limit; returns its base URL and its state.
///
/// # Errors
/// Connecting, migrating or binding failed.
pub async fn serve(database: &str, max_connections: u32) -> anyhow::Result<(String, AppState)> {
    let pool = pool::connect(&database_url(database), max_connections).await?;
    pool::migrate(&pool).await?;
    let store = EventStore::new(pool)
        .with_upcasters(x8_domain::upcasters::all)
        .with_snapshot_every(1_000_000);
    let secret = format!("bench-{}-{}", Uuid::new_v4(), Uuid::new_v4());
    let master_key = x8_commands::vault::MasterKey::from_base64(crate::MASTER_KEY)?;
    let mut state = AppState::new(
        &store,
        AuthKeys::new(&SecretString::from(secret)),
        Arc::new(SystemClock),
        master_key,
        Duration::from_secs(5),
    )
    .await?;
    state.auth_rate = crate::UNLIMITED;
    state.projections.spawn();
    x8_commands::deadlines::DeadlineRunner::new(state.commands.clone(), store.pool().clone())
        .spawn();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let router =
        x8_api::router(state.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok((url, state))
}
