//! `x8-api`: serves the HTTP API, or creates an ADMIN (`x8-api admin create --email E`).

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::sync::Arc;
use x8_api::app::StripeWebhook;
use x8_api::auth::AuthKeys;
use x8_api::settings::{master_key, required, Settings, DEFAULT_DATABASE_URL};
use x8_api::{router, telemetry, AppState};
use x8_commands::billing::BillingConfig;
use x8_commands::stripe::StripeHttp;
use x8_commands::waha::WahaHttp;
use x8_commands::{CommandContext, Commands, SystemClock};
use x8_domain::user::Role;
use x8_eventstore::{pool, Actor, EventStore};

/// mimalloc instead of glibc's malloc: the server allocates and frees many small buffers
/// per request, and glibc's `malloc`/`free` were a sixth of its CPU under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "x8-api", about = "X8 core HTTP API", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API on X8_BIND (default 127.0.0.1:8080). The default.
    Serve,
    /// Manage platform administrators.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an ADMIN; the password is read from X8_ADMIN_PASSWORD, and X8_MASTER_KEY
    /// seals its e-mail.
    Create {
        /// The admin's e-mail address (the login).
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long, default_value = "Administrator")]
        name: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init();
    match Cli::parse().command.unwrap_or(Command::Serve) {
        Command::Serve => serve().await,
        Command::Admin {
            command: AdminCommand::Create { email, name },
        } => create_admin(&email, &name).await,
    }
}

async fn open_store(
    database_url: &str,
    max_connections: u32,
    snapshot_every: usize,
) -> anyhow::Result<EventStore> {
    pool::ensure_database(database_url)
        .await
        .with_context(|| format!("cannot reach PostgreSQL at {database_url}"))?;
    let pool = pool::connect(database_url, max_connections)
        .await
        .context("connecting")?;
    pool::migrate(&pool).await.context("applying migrations")?;
    Ok(EventStore::new(pool)
        .with_snapshot_every(snapshot_every)
        .with_upcasters(x8_domain::upcasters::all))
}

async fn serve() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    let store = open_store(
        &settings.database_url,
        settings.max_connections,
        settings.snapshot_every,
    )
    .await?;
    store.signal().spawn_cross_process(store.pool().clone());
    let mut state = AppState::new(
        &store,
        AuthKeys::new(&settings.jwt_secret),
        Arc::new(SystemClock),
        settings.master_key.clone(),
        settings.min_position_timeout,
    )
    .await?;
    if let Some(url) = &settings.waha_url {
        let webhook = settings
            .waha_webhook_url
            .clone()
            .map(|hook| (hook, settings.waha_webhook_secret.clone()));
        let waha = WahaHttp::new(url, settings.waha_api_key.clone(), webhook);
        state.commands = state.commands.with_waha(Arc::new(waha));
    }
    state.waha_webhook_secret = settings.waha_webhook_secret.clone();
    state.metrics_token = settings.metrics_token.clone();
    state.auth_rate = settings.auth_rate;
    state.authorization_max_age = settings.authorization_max_age;
    state.commands = state
        .commands
        .with_provider_urls(settings.provider_urls.clone())
        .with_message_rates(settings.message_rates)
        .with_erasure_grace(chrono::Duration::hours(i64::from(
            settings.erasure_grace_hours,
        )))
        .with_cleanups(Arc::new(x8_commands::erasure::HttpCleanups::new(
            settings.cleanup_urls.clone(),
            settings.cleanup_token.clone(),
        )));
    let stripe: Arc<dyn x8_commands::stripe::StripeApi> = match &settings.stripe_api_key {
        Some(key) => Arc::new(StripeHttp::new(&settings.stripe_api_url, key.clone())),
        None => Arc::new(x8_commands::stripe::StripeNotConfigured),
    };
    state.commands = state.commands.with_billing(BillingConfig {
        api: stripe,
        prices: settings.stripe_price_plans.clone(),
        app_url: settings.app_url.clone(),
    });
    state.stripe_webhook = StripeWebhook {
        secrets: settings.stripe_webhook_secrets.clone(),
        tolerance_secs: settings.stripe_tolerance_secs,
    };
    state.projections = state
        .projections
        .clone()
        .with_coalesce(settings.projection_coalesce);
    state.projections.spawn();
    x8_commands::deadlines::DeadlineRunner::new(state.commands.clone(), store.pool().clone())
        .spawn();
    let listener = tokio::net::TcpListener::bind(&settings.bind)
        .await
        .with_context(|| format!("binding {}", settings.bind))?;
    tracing::info!(address = %listener.local_addr()?, "x8-api listening");
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

async fn create_admin(email: &str, name: &str) -> anyhow::Result<()> {
    let password = required("X8_ADMIN_PASSWORD")?;
    let master_key = master_key()?;
    let database_url =
        std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.into());
    let store = open_store(&database_url, 2, 100).await?;
    let commands = Commands::new(&store, Arc::new(SystemClock), master_key);
    let ctx = CommandContext::new(Actor::System);
    let (id, _) =
        x8_commands::accounts::register_staff(&commands, email, password, name, Role::Admin, &ctx)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("created ADMIN {email} with id {id}");
    Ok(())
}
