//! `x8-replay simulate --url <server> --scale <factor> --seed <n>`: the whole platform on
//! realistic input, over HTTP, with the vendors' own formats, then checked end to end.
//!
//! What it drives (at `--scale 1`; every count scales, at least five businesses):
//! - 50 businesses on mixed plans ([`scenario::Story`]): trials, DOUBLE and GROWTH
//!   subscriptions from signed Stripe `customer.subscription.*` events, an upgrade later
//!   downgraded to SINGLE with its channels kept (over the limit), managers assigned
//!   (with `--admin-email` and `X8_ADMIN_PASSWORD`);
//! - a company each, with Telegram and Viber bots, WhatsApp through WAHA (session started
//!   by the server, `WORKING` reported by a signed WAHA `session.status` webhook) and Viber
//!   through Infobip;
//! - Stripe invoices for the subscriptions (paid; failed and left to Stripe's retries;
//!   failed then paid), and customer payments through Stripe Connect for the GROWTH
//!   businesses: onboarding, `account.updated`, orders with payment links paid by
//!   `checkout.session.completed` on the connected account (one delivered twice);
//! - 50,000 inbound messages from Telegram, Viber, WAHA and Infobip webhooks, about 40 %
//!   answered through the API (the server sends them to the stand-in vendor APIs);
//! - loyalty accounts with referrals, purchases, redemptions and refunds; deliveries whose
//!   checkpoints arrive out of order; two businesses erased at the end.
//!
//! Then it checks: every 2xx answer's position is in the log; each kept business's
//! dashboard shows the messages, replies, connections, plan, payments, loyalty and
//! delivery figures the run implies (nothing counted twice), and its subscription the
//! invoices' outcome; the erased businesses are gone from the API
//! and their keys destroyed, their sealed fields no longer open while the kept ones' do
//! (with `X8_MASTER_KEY`); `verify` passes; `rebuild all` then `checksum all` equals the
//! live read models' checksum. It exits non-zero naming every failed check.
//!
//! Every request is retried (same idempotency key) while the server is down, so a
//! server killed and restarted mid-run (`scripts/simulate.sh --crash`) must end with the
//! same checks passing.

pub mod client;
pub mod scenario;
pub mod vendors;

use crate::checksum::checksums;
use crate::progress;
use crate::verify::verify;
use clap::Args;
use client::Client;
use futures::StreamExt as _;
use reqwest::Method;
use scenario::{login, Business, PASSWORD};
use serde_json::json;
use std::time::{Duration, Instant};
use x8_commands::vault::{is_key_destroyed, MasterKey, Vault};
use x8_eventstore::EventStore;
use x8_projections::ProjectionRunner;

/// The Stripe prices the run subscribes to: start the server with
/// `X8_STRIPE_PRICE_PLANS` set to this.
pub const PRICES: &str = "price_sim_single=SINGLE,price_sim_double=DOUBLE,price_sim_growth=GROWTH";

/// Options of `simulate`.
#[derive(Args)]
pub struct Opts {
    /// The running server to drive.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Size of the run: 1 is 50 businesses and 50,000 customer messages; 0.1 is a tenth
    /// (never fewer than 5 businesses).
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Makes the run repeatable: the same seed makes the same businesses, messages and
    /// amounts. Use a new seed (or a fresh database) for each run on one server.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where to serve the stand-in WhatsApp (WAHA), Telegram, Viber and Stripe APIs the
    /// server calls: start the server with X8_WAHA_URL, X8_TELEGRAM_API_URL,
    /// X8_VIBER_API_URL and X8_STRIPE_API_URL pointing at http://<this address>.
    #[arg(long, default_value = "127.0.0.1:18090")]
    pub vendors: String,
    /// How many businesses are driven at the same time.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// An ADMIN's e-mail (password in X8_ADMIN_PASSWORD): managers are created and
    /// assigned. Without it, the run has no managers.
    #[arg(long)]
    pub admin_email: Option<String>,
}

/// The secrets the vendors sign with (the server's own settings) and the seed.
pub struct Settings {
    /// The run's seed.
    pub seed: u64,
    /// `X8_STRIPE_WEBHOOK_SECRET` (the first, during a rotation).
    pub stripe_secret: String,
    /// `X8_WAHA_WEBHOOK_SECRET`.
    pub waha_secret: String,
    /// The stand-in vendor APIs' base URL (`http://` and `--vendors`), given to the
    /// Infobip connections as their `infobip_base_url`.
    pub vendors_url: String,
}

impl Settings {
    /// From the environment the server runs with.
    ///
    /// # Errors
    /// A secret is not set.
    pub fn from_env(seed: u64, vendors: &str) -> anyhow::Result<Self> {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| {
                    anyhow::anyhow!("{name} is not set: the run signs webhooks as the vendors do, with the server's secrets")
                })
        };
        let stripe = var("X8_STRIPE_WEBHOOK_SECRET")?;
        Ok(Self {
            seed,
            stripe_secret: stripe
                .split(',')
                .next()
                .unwrap_or_default()
                .trim()
                .to_string(),
            waha_secret: var("X8_WAHA_WEBHOOK_SECRET")?,
            vendors_url: format!("http://{vendors}"),
        })
    }
}

/// What a run did and found.
#[derive(Debug, Default)]
pub struct Report {
    /// Businesses registered.
    pub businesses: usize,
    /// Inbound messages sent by webhook.
    pub messages: i64,
    /// Replies sent through the API.
    pub replies: i64,
    /// Positions answered with a 2xx.
    pub answered: usize,
    /// Requests retried because the server was down or busy.
    pub retries: u64,
    /// Seconds the traffic took.
    pub seconds: f64,
    /// Every check that passed, in words.
    pub passed: Vec<String>,
    /// Every check that failed, in words.
    pub failed: Vec<String>,
}

impl Report {
    fn check(&mut self, ok: bool, what: String) {
        if ok {
            self.passed.push(what);
        } else {
            self.failed.push(what);
        }
    }
}

/// Runs the scenario against `opts.url` and every check (see the module docs).
///
/// # Errors
/// A secret missing; a request refused or never answered; the database failing. A check
/// that fails is in [`Report::failed`], not an error.
pub async fn simulate(store: &EventStore, opts: &Opts) -> anyhow::Result<Report> {
    let settings = Settings::from_env(opts.seed, &opts.vendors)?;
    let _vendors = vendors::serve(&opts.vendors).await?;
    let client = Client::new(&opts.url, opts.seed)?;
    client.send(Method::GET, "/health", None, &[], None).await?;
    let count = ((50.0 * opts.scale).round() as usize).max(5);
    let per_business = ((50_000.0 * opts.scale) / count as f64).round().max(1.0) as usize;

    let started = Instant::now();
    let bar = progress::bar(count as u64, "businesses");
    let mut businesses: Vec<Business> = futures::stream::iter(0..count)
        .map(|number| scenario::run_business(&client, &settings, number, per_business))
        .buffer_unordered(opts.concurrency.max(1))
        .inspect(|_| bar.inc(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    bar.finish_and_clear();
    businesses.sort_by_key(|b| b.number);
    assign_managers(&client, opts, &businesses).await?;
    let erased: Vec<Business> = businesses.split_off(count - 2);
    for business in &erased {
        let path = format!("/api/v1/tenants/{}", business.tenant);
        let body = json!({"password": PASSWORD});
        client
            .command(Method::DELETE, &path, &business.token, &body)
            .await?;
    }
    let mut report = Report {
        businesses: count,
        messages: businesses
            .iter()
            .chain(&erased)
            .map(|b| b.expected.inbound)
            .sum(),
        replies: businesses
            .iter()
            .chain(&erased)
            .map(|b| b.expected.outbound)
            .sum(),
        seconds: started.elapsed().as_secs_f64(),
        ..Report::default()
    };

    check_journal(store, &client, &mut report).await?;
    let tenants: Vec<uuid::Uuid> = businesses.iter().chain(&erased).map(|b| b.tenant).collect();
    check_once(store, &tenants, &mut report).await?;
    check_dashboards(&client, &businesses, &mut report).await?;
    check_erased(store, &client, &businesses, &erased, &mut report).await?;
    let verified = verify(store).await?;
    report.check(
        verified.violations.is_empty(),
        format!(
            "verify: {} events in {} streams, violations {:?}",
            verified.events, verified.streams, verified.violations
        ),
    );
    check_rebuild(store, &mut report).await?;
    report.answered = client.journal().len();
    report.retries = client.retries.load(std::sync::atomic::Ordering::Relaxed);
    Ok(report)
}

/// Two managers, each given every other business but every third (with an admin).
async fn assign_managers(
    client: &Client,
    opts: &Opts,
    businesses: &[Business],
) -> anyhow::Result<()> {
    let Some(email) = &opts.admin_email else {
        return Ok(());
    };
    let password = std::env::var("X8_ADMIN_PASSWORD")
        .map_err(|_| anyhow::anyhow!("--admin-email needs X8_ADMIN_PASSWORD"))?;
    let admin = login(client, email, &password).await?;
    let mut managers = Vec::new();
    for k in 0..2 {
        let body = json!({"email": format!("manager-{}-{k}@sim.x8.test", opts.seed),
                          "password": PASSWORD, "name": format!("Manager {k}")});
        let created = client
            .command(Method::POST, "/api/v1/managers", &admin, &body)
            .await?;
        managers.push(created.text("manager_id")?);
    }
    for business in businesses.iter().filter(|b| b.number % 3 != 0) {
        let path = format!("/api/v1/tenants/{}/manager", business.tenant);
        let body = json!({"manager_id": managers[business.number % 2]});
        client.command(Method::PUT, &path, &admin, &body).await?;
    }
    Ok(())
}

/// Every position a 2xx answered with is in the log.
async fn check_journal(
    store: &EventStore,
    client: &Client,
    report: &mut Report,
) -> anyhow::Result<()> {
    let mut positions = client.journal();
    positions.sort_unstable();
    positions.dedup();
    // language=PostgreSQL
    let found: i64 =
        sqlx::query_scalar("select count(*) from events where global_position = any($1)")
            .bind(&positions)
            .fetch_one(store.pool())
            .await?;
    report.check(
        found == positions.len() as i64,
        format!(
            "every 2xx answer is in the log: {found} of {} positions",
            positions.len()
        ),
    );
    Ok(())
}

/// Nothing applied twice: the log holds exactly one `MessageReceived` per message sent
/// and one `MessageSent` per reply, however often a request was retried.
async fn check_once(
    store: &EventStore,
    tenants: &[uuid::Uuid],
    report: &mut Report,
) -> anyhow::Result<()> {
    // language=PostgreSQL
    let (received, sent, failed): (i64, i64, i64) = sqlx::query_as(
        "select count(*) filter (where event_type = 'MessageReceived'),
                count(*) filter (where event_type = 'MessageSent'),
                count(*) filter (where event_type = 'MessageSendFailed')
         from events
         where aggregate_type = 'conversation'
           and aggregate_id in (select aggregate_id from events
                                where aggregate_type = 'conversation'
                                  and event_type = 'ConversationOpened' and tenant_id = any($1))",
    )
    .bind(tenants)
    .fetch_one(store.pool())
    .await?;
    report.check(
        (received, sent) == (report.messages, report.replies),
        format!(
            "each message and reply in the log once: {received} received of {} sent, {sent} replies of {}",
            report.messages, report.replies
        ),
    );
    report.check(
        failed == 0,
        format!("every reply accepted by its vendor's API: {failed} failed"),
    );
    Ok(())
}

/// Each kept business's dashboard against what the run did to it.
async fn check_dashboards(
    client: &Client,
    businesses: &[Business],
    report: &mut Report,
) -> anyhow::Result<()> {
    let after = client.journal().into_iter().max().unwrap_or(0);
    for business in businesses {
        let path = format!("/api/v1/dashboards/client/{}", business.tenant);
        let board = client.read(&path, &business.token, after).await?.body;
        let sum = |kind: &str| -> i64 {
            board["companies"]
                .as_array()
                .map(|companies| {
                    companies
                        .iter()
                        .filter_map(|c| c["messages"][kind].as_object())
                        .flat_map(|counts| counts.values().filter_map(|v| v.as_i64()))
                        .sum()
                })
                .unwrap_or(0)
        };
        let orders = |status: &str| -> (i64, i64) {
            board["payments"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["status"] == status)
                .fold((0, 0), |(count, amount), p| {
                    let figure = |name: &str| p[name].as_i64().unwrap_or(0);
                    (count + figure("count"), amount + figure("amount_minor"))
                })
        };
        let expected = &business.expected;
        let shown = (
            board["plan"].as_str().unwrap_or_default().to_string(),
            board["usage"]["channels_used"].as_i64().unwrap_or(-1),
            sum("inbound"),
            sum("outbound"),
            board["loyalty"]["accounts"].as_i64().unwrap_or(-1),
            board["loyalty"]["points_redeemed"].as_i64().unwrap_or(-1),
            board["deliveries"]["Delivered"].as_i64().unwrap_or(-1),
            board["deliveries"]["Exception"].as_i64().unwrap_or(-1),
            orders("paid"),
            orders("payment_link_sent").0,
        );
        let wanted = (
            business.story.final_plan().to_string(),
            expected.channels,
            expected.inbound,
            expected.outbound,
            expected.accounts,
            expected.points_redeemed,
            expected.delivered,
            expected.failed,
            expected.orders_paid,
            expected.orders_awaiting,
        );
        report.check(
            shown == wanted,
            format!(
                "dashboard of business {} (plan, channels, messages in, out, loyalty accounts, \
                 points redeemed, delivered, failed, orders paid (count, cents), awaiting \
                 payment): shows {shown:?}, the run implies {wanted:?}",
                business.number
            ),
        );
        let path = format!("/api/v1/tenants/{}/subscription", business.tenant);
        let subscription = client.read(&path, &business.token, after).await?.body;
        let shown = (
            !subscription["stripe"]["last_paid_at"].is_null(),
            subscription["last_payment_failure"]["attempt_count"].as_i64(),
        );
        let wanted = (expected.invoice_paid, expected.invoice_failing);
        report.check(
            shown == wanted,
            format!(
                "subscription of business {} (an invoice paid, attempts of a failing one): \
                 shows {shown:?}, the run implies {wanted:?}",
                business.number
            ),
        );
    }
    Ok(())
}

/// The erased businesses are gone (410 or 401 for their owners), their data keys
/// destroyed within two minutes, their sealed fields no longer open while a kept
/// business's still do (with `X8_MASTER_KEY`).
async fn check_erased(
    store: &EventStore,
    client: &Client,
    kept: &[Business],
    erased: &[Business],
    report: &mut Report,
) -> anyhow::Result<()> {
    for business in erased {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !is_key_destroyed(store.pool(), business.tenant).await? && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let destroyed = is_key_destroyed(store.pool(), business.tenant).await?;
        let path = format!("/api/v1/tenants/{}", business.tenant);
        let read = client
            .send(Method::GET, &path, Some(&business.token), &[], None)
            .await?;
        report.check(
            destroyed && matches!(read.status.as_u16(), 401 | 404 | 410),
            format!(
                "business {} erased: key destroyed {destroyed}, its owner's read answered {}",
                business.number, read.status
            ),
        );
    }
    let Some(master) = std::env::var("X8_MASTER_KEY")
        .ok()
        .filter(|k| !k.trim().is_empty())
    else {
        return Ok(());
    };
    let vault = Vault::new(store.pool().clone(), MasterKey::from_base64(&master)?);
    let name_of = |b: &Business| format!("Simulated Shop {}", b.number);
    for (business, readable) in kept
        .iter()
        .take(1)
        .map(|b| (b, true))
        .chain(erased.iter().map(|b| (b, false)))
    {
        let id = business.tenant.to_string();
        let entries = crate::history::opened_entries(store, &vault, "tenant", &id).await?;
        let text = serde_json::to_string(&entries.iter().map(|e| &e.data).collect::<Vec<_>>())?;
        let opened = text.contains(&name_of(business)) || text.contains(&business.email);
        report.check(
            opened == readable,
            format!(
                "business {}'s name and e-mail {} with the master key",
                business.number,
                if readable { "open" } else { "no longer open" }
            ),
        );
    }
    Ok(())
}

/// Waits for every projection to catch up, then rebuilds all of them and compares.
async fn check_rebuild(store: &EventStore, report: &mut Report) -> anyhow::Result<()> {
    let runner = ProjectionRunner::new(store.clone(), x8_projections::all());
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let mut behind = 0;
        for projection in runner.projections() {
            behind += runner.lag(projection.name()).await?.events;
        }
        if behind == 0 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let live = checksums(store, "all").await?;
    let projections: Vec<&dyn x8_projections::Projection> =
        runner.projections().iter().map(|p| p.as_ref()).collect();
    let rebuilt = runner.rebuild_all(&projections, &|_| {}).await?;
    let (events, seconds) = (rebuilt.events * projections.len() as u64, rebuilt.seconds);
    let rebuilt = checksums(store, "all").await?;
    let differing: Vec<&str> = live
        .iter()
        .zip(&rebuilt)
        .filter(|(a, b)| a != b)
        .map(|(a, _)| a.projection)
        .collect();
    report.check(
        differing.is_empty() && live.len() == rebuilt.len(),
        format!(
            "rebuild all ({events} events applied in {seconds:.1} s, {:.0} events/s) then checksum all equals the live read models; differing: {differing:?}",
            events as f64 / seconds.max(1e-9)
        ),
    );
    Ok(())
}

/// Runs the simulation, prints what it did and every check; fails if one failed.
pub async fn run(store: &EventStore, opts: Opts) -> anyhow::Result<()> {
    let report = simulate(store, &opts).await?;
    println!(
        "{} businesses, {} messages in, {} replies in {:.1} s ({:.0} messages/s); {} positions answered, {} retries",
        report.businesses,
        report.messages,
        report.replies,
        report.seconds,
        report.messages as f64 / report.seconds.max(1e-9),
        report.answered,
        report.retries
    );
    for passed in &report.passed {
        println!("ok      {passed}");
    }
    for failed in &report.failed {
        println!("FAILED  {failed}");
    }
    if !report.failed.is_empty() {
        anyhow::bail!("{} check(s) failed", report.failed.len());
    }
    Ok(())
}
