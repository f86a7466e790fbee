//! The query benchmark (`cargo bench -p x8-tests --bench queries`): the dashboards and
//! daily metrics of one business holding `--messages` messages (default 100,000), read by
//! N concurrent clients (default 32) over HTTP on loopback; then the projection lag while
//! N clients post Telegram webhooks (commands) at full speed.
//!
//! In the same run, the anchor: the stock cqrs-es demo's read path, a single-row view
//! loaded through postgres-es's `PostgresViewRepository` by a bare axum handler (no
//! authentication, no authorization).
//!
//! Seeding goes through the command layer (the same `receive` and `send` the webhooks and
//! the reply endpoint call): 80 % inbound messages spread over the last 30 days in
//! conversations of 40, from five lead sources, and 20 % replies (through a local fake
//! Bot API). Database `x8_bench_queries` on DATABASE_URL's server is dropped and made
//! anew.

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::Json;
use chrono::{Duration as Days, Utc};
use clap::Parser;
use cqrs_es::persist::{ViewContext, ViewRepository};
use cqrs_es::{EventEnvelope, View};
use postgres_es::PostgresViewRepository;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;
use x8_commands::conversations::{receive, ContactDetails, InboundMessage};
use x8_commands::sending::{send, ProviderUrls, Reply};
use x8_commands::CommandContext;
use x8_domain::conversation::{InboundKind, LeadSource, MessageType};
use x8_tests::bench::{database_url, fresh_database, measure, serve};
use x8_tests::counter::Counter;
use x8_tests::telegram;

#[derive(Parser)]
struct Opts {
    /// Seconds per measurement.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Messages of the business (inbound and replies).
    #[arg(long, default_value_t = 100_000)]
    messages: u64,
    /// The server's pool (`X8_DB_MAX_CONNECTIONS`).
    #[arg(long, default_value_t = 20)]
    max_connections: u32,
    #[arg(long, hide = true)]
    bench: bool,
}

const PER_CONVERSATION: u64 = 50;
const SOURCES: [&str; 5] = ["", "tiktok_ad", "fb_spring", "google_search", "ig_story"];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let opts = Opts::parse();
    fresh_database("x8_bench_queries").await?;
    let (base, state) = serve("x8_bench_queries", opts.max_connections).await?;
    let http = reqwest::Client::new();
    let post = |path: String, token: Option<String>, body: Value| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let mut request = http.post(format!("{base}{path}")).json(&body);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await?;
            anyhow::ensure!(
                response.status().is_success(),
                "{path}: {}",
                response.status()
            );
            Ok::<Value, anyhow::Error>(response.json().await?)
        }
    };

    // Given one business with a Telegram bot
    let registered = post(
        "/api/v1/tenants".into(),
        None,
        json!({"name": "Bench Cafe", "owner_email": "owner@bench.test",
               "owner_password": "correct horse battery"}),
    )
    .await?;
    let tenant: Uuid = registered["tenant_id"]
        .as_str()
        .unwrap_or_default()
        .parse()?;
    let login = post(
        "/api/v1/auth/login".into(),
        None,
        json!({"email": "owner@bench.test", "password": "correct horse battery"}),
    )
    .await?;
    let token = login["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let company = post(
        format!("/api/v1/tenants/{tenant}/companies"),
        Some(token.clone()),
        json!({"name": "Shop", "type": "Product"}),
    )
    .await?;
    let company = company["company_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let connected = post(
        format!("/api/v1/companies/{company}/channels"),
        Some(token.clone()),
        json!({"platform": "telegram"}),
    )
    .await?;
    let channel_id = connected["channel_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let stored = http
        .put(format!("{base}/api/v1/channels/{channel_id}/credentials"))
        .bearer_auth(&token)
        .json(&telegram::credentials())
        .send()
        .await?;
    anyhow::ensure!(stored.status().is_success(), "credentials");
    let bot = telegram::fake_bot_api(200).await;
    let commands = state.commands.clone().with_provider_urls(ProviderUrls {
        telegram: bot.uri(),
        ..ProviderUrls::default()
    });
    let channel = commands
        .channels
        .load(&channel_id)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;

    // Seed: conversations of PER_CONVERSATION messages, one reply per four inbound
    let conversations = opts.messages.div_ceil(PER_CONVERSATION);
    let seeded = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let (commands, channel, next) = (commands.clone(), channel.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let c = next.fetch_add(1, Ordering::Relaxed);
                    if c >= conversations {
                        return Ok::<(), anyhow::Error>(());
                    }
                    let start =
                        Utc::now() - Days::days(29) + Days::minutes((c * 20) as i64 % (29 * 1440));
                    let source = SOURCES[(c % SOURCES.len() as u64) as usize];
                    let mut conversation = None;
                    for i in 0..PER_CONVERSATION {
                        if i % 5 == 4 {
                            let Some(id) = conversation else { continue };
                            let ctx =
                                CommandContext::for_webhook("bench-reply", &format!("{c}:{i}"));
                            let reply = Reply {
                                text: "Thanks, on its way".into(),
                                message_type: MessageType::Type1,
                                rich_media: false,
                            };
                            send(&commands, id, reply, &ctx)
                                .await
                                .map_err(|e| anyhow::anyhow!("reply: {e}"))?;
                            continue;
                        }
                        let message = InboundMessage {
                            provider_message_id: format!("{c}-{i}"),
                            contact: ContactDetails {
                                address: format!("chat-{c}"),
                                name: Some(format!("Customer {c}")),
                                phone: None,
                            },
                            text: format!("Message {i} of customer {c}"),
                            kind: InboundKind::Text,
                            sent_at: start + Days::minutes(i as i64),
                            lead_source: (i == 0 && !source.is_empty())
                                .then(|| LeadSource::from_start_parameter(source)),
                        };
                        let ctx = CommandContext::for_webhook("bench", &format!("{c}:{i}"));
                        let (id, _) = receive(&commands, &channel, message, &ctx)
                            .await
                            .map_err(|e| anyhow::anyhow!("receive: {e}"))?;
                        conversation = Some(id);
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await??;
    }
    let seed_secs = seeded.elapsed().as_secs_f64();
    let head: i64 = sqlx::query_scalar("select coalesce(max(global_position), 0) from events")
        .fetch_one(&state.pool)
        .await?;
    let caught = Instant::now();
    for projection in state.projections.projections() {
        state
            .projections
            .wait_for(projection.name(), head, Duration::from_secs(3600))
            .await?;
    }
    // A bulk load this size outruns autovacuum's first ANALYZE: without statistics the
    // planner reads the metrics tables as empty. Steady state is analyzed.
    sqlx::raw_sql("vacuum analyze").execute(&state.pool).await?;
    println!(
        "seeded {} messages in {conversations} conversations ({head} events) in {seed_secs:.1} s \
         ({:.0} events/s); projections caught up {:.1} s later",
        opts.messages,
        head as f64 / seed_secs,
        caught.elapsed().as_secs_f64()
    );

    // When N clients read the dashboards and metrics
    println!(
        "\n{:<34} {:>10} {:>9} {:>8} {:>8}",
        "query (32 clients unless said)", "req/s", "failed %", "p50 ms", "p99 ms"
    );
    let today = Utc::now().date_naive();
    let from = today - Days::days(29);
    let reads = [
        ("client dashboard", format!("/api/v1/dashboards/client/{tenant}")),
        (
            "daily metrics, 30 days",
            format!("/api/v1/metrics/daily?tenant_id={tenant}&from={from}&to={today}"),
        ),
        (
            "daily metrics by lead source",
            format!(
                "/api/v1/metrics/daily?tenant_id={tenant}&from={from}&to={today}&group_by=lead_source"
            ),
        ),
        ("tenant (single row)", format!("/api/v1/tenants/{tenant}")),
    ];
    let stock = stock_view_server("x8_bench_queries", opts.max_connections).await?;
    let reads = reads
        .into_iter()
        .map(|(label, path)| (label, format!("{base}{path}")))
        .chain([(
            "stock cqrs-es view (single row)",
            format!("{stock}/counter/bench"),
        )]);
    for (label, url) in reads {
        let (http, token) = (http.clone(), token.clone());
        let (tally, secs) = measure(opts.clients, opts.seconds, move |_, _| {
            let (http, url, token) = (http.clone(), url.clone(), token.clone());
            async move {
                match http.get(&url).bearer_auth(&token).send().await {
                    Ok(response) => {
                        response.status().is_success() && response.bytes().await.is_ok()
                    }
                    Err(_) => false,
                }
            }
        })
        .await;
        println!("{}", tally.line(label, secs));
    }

    // And the projection lag while N clients post inbound Telegram webhooks at full speed
    let lags: Arc<Mutex<Vec<(i64, f64)>>> = Arc::default();
    let sampling = Arc::new(AtomicU64::new(1));
    let sampler = {
        let (state, lags, sampling) = (state.clone(), lags.clone(), sampling.clone());
        tokio::spawn(async move {
            while sampling.load(Ordering::Relaxed) == 1 {
                let mut worst = (0_i64, 0.0_f64);
                for projection in state.projections.projections() {
                    if let Ok(lag) = state.projections.lag(projection.name()).await {
                        worst = (worst.0.max(lag.events), worst.1.max(lag.seconds));
                    }
                }
                lags.lock().expect("lags").push(worst);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let update_ids = Arc::new(AtomicU64::new(1_000_000));
    let url = format!("{base}/api/v1/webhooks/telegram/{channel_id}");
    let (tally, secs) = measure(opts.clients, opts.seconds, move |client, i| {
        let (http, url) = (http.clone(), url.clone());
        let id = update_ids.fetch_add(1, Ordering::Relaxed) as i64;
        async move {
            let update = telegram::from_chat(
                telegram::text_at(id, id, Utc::now(), "Is it open?"),
                1_000 + (client as i64) * 1_000 + (i as i64 % 50),
            );
            match http
                .post(&url)
                .header("x-telegram-bot-api-secret-token", telegram::SECRET)
                .json(&update)
                .send()
                .await
            {
                Ok(response) => response.status().is_success(),
                Err(_) => false,
            }
        }
    })
    .await;
    sampling.store(0, Ordering::Relaxed);
    sampler.await?;
    println!("{}", tally.line("telegram webhooks (commands)", secs));
    let mut samples = lags.lock().expect("lags").clone();
    let p99 = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values
            .get(((values.len() as f64) * 0.99) as usize)
            .or(values.last())
            .copied()
            .unwrap_or(0.0)
    };
    let events = p99(samples.iter().map(|s| s.0 as f64).collect());
    let seconds = p99(samples.drain(..).map(|s| s.1).collect());
    println!(
        "projection lag under that load, worst projection per sample: p99 {events:.0} events, \
         p99 {seconds:.3} s"
    );
    Ok(())
}

/// The stock demo's view: one JSON row per aggregate instance.
#[derive(Debug, Default, Serialize, Deserialize)]
struct CounterView {
    count: u64,
}

impl View<Counter> for CounterView {
    fn update(&mut self, _event: &EventEnvelope<Counter>) {
        self.count += 1;
    }
}

/// Serves `GET /counter/{id}` the way cqrs-es's demo serves its account view: the row
/// loaded through `PostgresViewRepository`, returned as JSON. Returns the base URL.
async fn stock_view_server(database: &str, max_connections: u32) -> anyhow::Result<String> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(max_connections)
        .connect(&database_url(database))
        .await?;
    // postgres-es's view table shape (its README).
    sqlx::raw_sql(
        "create table counter_view (view_id text primary key, version bigint not null,
             payload json not null)",
    )
    .execute(&pool)
    .await?;
    let views = Arc::new(PostgresViewRepository::<CounterView, Counter>::new(
        "counter_view",
        pool,
    ));
    views
        .update_view(
            CounterView { count: 42 },
            ViewContext::new("bench".into(), 0),
        )
        .await?;
    let app = axum::Router::new()
        .route(
            "/counter/{id}",
            axum::routing::get(
                |State(views): State<Arc<PostgresViewRepository<CounterView, Counter>>>,
                 Path(id): Path<String>| async move {
                    match views.load(&id).await {
                        Ok(Some(view)) => Json(view).into_response(),
                        Ok(None) => axum::http::StatusCode::NOT_FOUND.into_response(),
                        Err(_) => axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response(),
                    }
                },
            ),
        )
        .with_state(views);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}
