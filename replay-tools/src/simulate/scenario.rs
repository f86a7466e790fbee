//! One business's life, driven over HTTP the way the product is used, and what the run
//! expects its dashboard to show afterwards.

use super::client::Client;
use super::vendors;
use super::Settings;
use chrono::Utc;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

/// Password of every simulated owner.
pub const PASSWORD: &str = "simulated-owner-password";

/// The plan story of a business, by its number modulo 5 (DOMAIN.md "Tenant lifecycle and
/// plans"): a trial; DOUBLE and GROWTH subscriptions; an upgrade to GROWTH later
/// downgraded to SINGLE with its channels kept (over the limit); GROWTH on WhatsApp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Story {
    /// Stays in its trial: one Telegram bot.
    Trial,
    /// DOUBLE: Telegram and Viber.
    Double,
    /// GROWTH: Telegram, Viber, WhatsApp (WAHA) and Viber through Infobip.
    Growth,
    /// GROWTH with three connections, then downgraded to SINGLE (over its limit).
    Downgraded,
    /// GROWTH: WhatsApp (WAHA) and Telegram.
    Whatsapp,
}

impl Story {
    fn of(number: usize) -> Self {
        match number % 5 {
            0 => Self::Trial,
            1 => Self::Double,
            2 => Self::Growth,
            3 => Self::Downgraded,
            _ => Self::Whatsapp,
        }
    }

    fn platforms(self) -> &'static [Platform] {
        use Platform::*;
        match self {
            Self::Trial => &[Telegram],
            Self::Double => &[Telegram, Viber],
            Self::Growth => &[Telegram, Viber, Waha, Infobip],
            Self::Downgraded => &[Telegram, Viber, Waha],
            Self::Whatsapp => &[Waha, Telegram],
        }
    }

    /// The Stripe price subscribed to first, if any (see [`super::PRICES`]).
    fn price(self) -> Option<&'static str> {
        match self {
            Self::Trial => None,
            Self::Double => Some("price_sim_double"),
            _ => Some("price_sim_growth"),
        }
    }

    /// The invoices Stripe sends for its subscription, in order: `true` paid, `false`
    /// failed (DOMAIN.md "Payments": dunning is Stripe's, X8 records it).
    fn invoices(self) -> &'static [bool] {
        match self {
            Self::Trial => &[],
            Self::Double | Self::Downgraded => &[true],
            // Failed, Stripe retries later: the failure stays on the subscription.
            Self::Growth => &[false],
            // Failed, then paid on Stripe's retry: nothing left failing.
            Self::Whatsapp => &[false, true],
        }
    }

    /// Whether it takes its customers' payments through Stripe Connect.
    fn takes_payments(self) -> bool {
        matches!(self, Self::Growth | Self::Whatsapp)
    }

    /// The plan the dashboard shows at the end.
    pub fn final_plan(self) -> &'static str {
        match self {
            Self::Trial => "FREE",
            Self::Double => "DOUBLE",
            Self::Downgraded => "SINGLE",
            Self::Growth | Self::Whatsapp => "GROWTH",
        }
    }
}

/// How a connection receives messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Platform {
    Telegram,
    Viber,
    /// WhatsApp through WAHA.
    Waha,
    /// Viber through Infobip.
    Infobip,
}

/// A connection and the secrets its webhooks are signed with.
struct Connection {
    id: Uuid,
    platform: Platform,
    secret: String,
}

/// A business the run made, with what it did to it.
#[derive(Debug, Clone)]
pub struct Business {
    /// Its number in the run (0-based).
    pub number: usize,
    /// The tenant id.
    pub tenant: Uuid,
    /// The owner's e-mail.
    pub email: String,
    /// The owner's access token.
    pub token: String,
    /// Its plan story.
    pub story: Story,
    /// What its dashboard must show.
    pub expected: Expected,
}

/// The figures a business's dashboard must show after the run.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    /// Inbound messages sent to it.
    pub inbound: i64,
    /// Replies it sent.
    pub outbound: i64,
    /// Connections made.
    pub channels: i64,
    /// Loyalty accounts opened.
    pub accounts: i64,
    /// Points redeemed.
    pub points_redeemed: i64,
    /// Deliveries that reached `Delivered`.
    pub delivered: i64,
    /// Deliveries that ended in `Exception`.
    pub failed: i64,
    /// Orders paid through Stripe Connect, and their amount (EUR cents).
    pub orders_paid: (i64, i64),
    /// Orders whose payment link is out, unpaid.
    pub orders_awaiting: i64,
    /// A subscription invoice paid.
    pub invoice_paid: bool,
    /// The attempts of the invoice still failing, if one is.
    pub invoice_failing: Option<i64>,
}

/// Registers business `number` and drives its life (`messages` inbound messages).
///
/// # Errors
/// Any request the server refuses (a 4xx) or never answers.
pub async fn run_business(
    client: &Client,
    settings: &Settings,
    number: usize,
    messages: usize,
) -> anyhow::Result<Business> {
    let mut rng = ChaCha8Rng::seed_from_u64(settings.seed.wrapping_mul(1_000_003) + number as u64);
    let story = Story::of(number);
    let email = format!("owner-{}-{number}@sim.x8.test", settings.seed);
    let registration = json!({"name": format!("Simulated Shop {number}"),
                              "owner_email": email, "owner_password": PASSWORD});
    let registered = client
        .send(
            Method::POST,
            "/api/v1/tenants",
            None,
            &[],
            Some(&registration),
        )
        .await?;
    if !registered.status.is_success() {
        anyhow::bail!(
            "registering business {number}: {} {}",
            registered.status,
            registered.body
        );
    }
    let tenant: Uuid = registered.text("tenant_id")?.parse()?;
    let token = login(client, &email, PASSWORD).await?;
    let mut business = Business {
        number,
        tenant,
        email,
        token,
        story,
        expected: Expected::default(),
    };

    subscribe(
        client,
        settings,
        &business,
        "customer.subscription.created",
        story.price(),
    )
    .await?;
    invoices(client, settings, &mut business).await?;
    let company = create_company(client, &business).await?;
    let mut connections = Vec::new();
    for platform in story.platforms() {
        connections.push(connect(client, settings, &business, company, *platform, &mut rng).await?);
    }
    business.expected.channels = connections.len() as i64;
    if story == Story::Downgraded {
        // SINGLE allows one connection; the three stay, the business is over its limit.
        subscribe(
            client,
            settings,
            &business,
            "customer.subscription.updated",
            Some("price_sim_single"),
        )
        .await?;
    }

    let conversations = converse(
        client,
        settings,
        &mut business,
        &connections,
        messages,
        &mut rng,
    )
    .await?;
    loyalty(client, &mut business, conversations.max(4), &mut rng).await?;
    if story.takes_payments() {
        payments(client, settings, &mut business, company, &mut rng).await?;
    }
    deliveries(client, &mut business, company, &mut rng).await?;
    Ok(business)
}

/// Logs in; the access token.
///
/// # Errors
/// Wrong credentials; the server unreachable.
pub async fn login(client: &Client, email: &str, password: &str) -> anyhow::Result<String> {
    let body = json!({"email": email, "password": password});
    let answer = client
        .send(Method::POST, "/api/v1/auth/login", None, &[], Some(&body))
        .await?;
    if !answer.status.is_success() {
        anyhow::bail!("login {email}: {} {}", answer.status, answer.body);
    }
    answer.text("access_token")
}

/// A Stripe subscription event for the business on `price` (none: nothing sent).
async fn subscribe(
    client: &Client,
    settings: &Settings,
    business: &Business,
    event_type: &str,
    price: Option<&str>,
) -> anyhow::Result<()> {
    let Some(price) = price else {
        return Ok(());
    };
    let id = format!("evt_sim_{}_{}_{event_type}", settings.seed, business.number);
    let event = vendors::stripe_subscription(
        &id,
        event_type,
        business.tenant,
        business.number,
        price,
        Utc::now(),
    );
    stripe_webhook(client, settings, &event).await
}

/// Sends `event` to the Stripe webhook, signed with the endpoint's secret as Stripe signs.
async fn stripe_webhook(client: &Client, settings: &Settings, event: &Value) -> anyhow::Result<()> {
    let body = event.to_string();
    let signature = vendors::stripe_signature(&settings.stripe_secret, &body);
    client
        .webhook(
            "/api/v1/webhooks/stripe",
            &[("stripe-signature", &signature)],
            &body,
        )
        .await?;
    Ok(())
}

/// The subscription's invoices of its story, as Stripe sends them (one invoice, its
/// attempts in turn).
async fn invoices(
    client: &Client,
    settings: &Settings,
    business: &mut Business,
) -> anyhow::Result<()> {
    let amount = match business.story.price() {
        Some("price_sim_double") => 2_900,
        _ => 7_900,
    };
    let invoice = format!("in_sim_{}_{}", settings.seed, business.number);
    let mut failing = None;
    for (attempt, paid) in (1..).zip(business.story.invoices()) {
        let (event_type, id) = if *paid {
            ("invoice.paid", format!("evt_sim_{invoice}_paid"))
        } else {
            (
                "invoice.payment_failed",
                format!("evt_sim_{invoice}_failed_{attempt}"),
            )
        };
        let event = vendors::stripe_invoice(
            &id,
            event_type,
            business.number,
            &invoice,
            amount,
            attempt,
            Utc::now(),
        );
        stripe_webhook(client, settings, &event).await?;
        business.expected.invoice_paid |= *paid;
        failing = (!paid).then_some(i64::from(attempt));
    }
    business.expected.invoice_failing = failing;
    Ok(())
}

/// Customer payments through Stripe Connect: onboarding (the stand-in makes the account),
/// Stripe's `account.updated` once it is ready, then three orders with payment links; the
/// first two paid by `checkout.session.completed` on the connected account (the first
/// event delivered twice, as Stripe may), the third left unpaid.
async fn payments(
    client: &Client,
    settings: &Settings,
    business: &mut Business,
    company: Uuid,
    rng: &mut ChaCha8Rng,
) -> anyhow::Result<()> {
    let token = business.token.clone();
    let path = format!("/api/v1/tenants/{}/connect/onboarding", business.tenant);
    let onboarded = client
        .command(Method::POST, &path, &token, &json!({}))
        .await?;
    let account = onboarded.text("account_id")?;
    let prefix = format!("evt_sim_{}_{}", settings.seed, business.number);
    let ready = vendors::stripe_account_ready(
        &format!("{prefix}_account"),
        &account,
        business.tenant,
        Utc::now(),
    );
    stripe_webhook(client, settings, &ready).await?;
    for o in 0..3 {
        let amount: i64 = rng.random_range(1_000..50_000);
        let path = format!("/api/v1/companies/{company}/orders");
        let body = json!({"customer_ref": format!("customer-{o}"), "amount_minor": amount,
                          "currency": "EUR", "description": format!("Order {o} of shop {}", business.number)});
        let created = client.command(Method::POST, &path, &token, &body).await?;
        let order: Uuid = created.text("order_id")?.parse()?;
        let path = format!("/api/v1/orders/{order}/payment-link");
        client
            .command(Method::POST, &path, &token, &json!({}))
            .await?;
        if o == 2 {
            business.expected.orders_awaiting += 1;
            continue;
        }
        let paid = vendors::stripe_order_paid(
            &format!("{prefix}_order_{o}"),
            &account,
            order,
            business.tenant,
            amount,
            &format!("pi_sim_{}", order.simple()),
            Utc::now(),
        );
        let deliveries = if o == 0 { 2 } else { 1 };
        for _ in 0..deliveries {
            stripe_webhook(client, settings, &paid).await?;
        }
        business.expected.orders_paid.0 += 1;
        business.expected.orders_paid.1 += amount;
    }
    Ok(())
}

async fn create_company(client: &Client, business: &Business) -> anyhow::Result<Uuid> {
    let path = format!("/api/v1/tenants/{}/companies", business.tenant);
    let body = json!({"name": format!("Store {}", business.number), "type": "Product"});
    let created = client
        .command(Method::POST, &path, &business.token, &body)
        .await?;
    Ok(created.text("company_id")?.parse()?)
}

/// Connects `platform`: Telegram and Viber take their bot credentials, Infobip its shared
/// secret, WhatsApp starts a WAHA session that WAHA reports `WORKING` by webhook.
async fn connect(
    client: &Client,
    settings: &Settings,
    business: &Business,
    company: Uuid,
    platform: Platform,
    rng: &mut ChaCha8Rng,
) -> anyhow::Result<Connection> {
    let kind = match platform {
        Platform::Telegram => "telegram",
        Platform::Viber | Platform::Infobip => "viber",
        Platform::Waha => "whatsapp",
    };
    let path = format!("/api/v1/companies/{company}/channels");
    let created = client
        .command(
            Method::POST,
            &path,
            &business.token,
            &json!({"platform": kind}),
        )
        .await?;
    let id: Uuid = created.text("channel_id")?.parse()?;
    let secret = format!("sim-secret-{:016x}", rng.random::<u64>());
    let credentials = match platform {
        Platform::Telegram => Some(
            json!({"bot_token": format!("{}:sim", rng.random_range(100_000..999_999)),
                                          "webhook_secret": secret}),
        ),
        Platform::Viber => Some(json!({"auth_token": secret})),
        Platform::Infobip => Some(
            json!({"api_key": "sim-infobip-key", "webhook_secret": secret,
                                         "infobip_base_url": settings.vendors_url,
                                         "sender": "X8Shop"}),
        ),
        Platform::Waha => None,
    };
    match credentials {
        Some(credentials) => {
            let path = format!("/api/v1/channels/{id}/credentials");
            client
                .command(Method::PUT, &path, &business.token, &credentials)
                .await?;
        }
        None => {
            let session = format!("x8-{}", id.simple());
            for status in ["STARTING", "SCAN_QR_CODE", "WORKING"] {
                waha_webhook(client, settings, &vendors::waha_status(&session, status)).await?;
            }
        }
    }
    Ok(Connection {
        id,
        platform,
        secret,
    })
}

async fn waha_webhook(
    client: &Client,
    settings: &Settings,
    event: &Value,
) -> anyhow::Result<Value> {
    let body = event.to_string();
    let signature = vendors::waha_signature(&settings.waha_secret, &body);
    let answer = client
        .webhook(
            "/api/v1/webhooks/waha",
            &[("x-webhook-hmac", &signature)],
            &body,
        )
        .await?;
    Ok(answer.body)
}

/// `messages` inbound messages over the connections from a pool of customers, about 40 %
/// answered (the server sends each reply through the connection's vendor API, Infobip's
/// included). Returns the number of customers.
async fn converse(
    client: &Client,
    settings: &Settings,
    business: &mut Business,
    connections: &[Connection],
    messages: usize,
    rng: &mut ChaCha8Rng,
) -> anyhow::Result<usize> {
    let customers = (messages / 8).max(1);
    for m in 0..messages {
        let connection = &connections[rng.random_range(0..connections.len())];
        let customer = rng.random_range(0..customers);
        let text = format!("message {m} from customer {customer}");
        let unique = format!("{}x{}x{m}", settings.seed, business.number);
        let at = Utc::now();
        let conversation = match connection.platform {
            Platform::Telegram => {
                let update_id = (business.number as i64) * 10_000_000 + m as i64 + 1;
                let chat = 7_000_000 + customer as i64;
                let body = vendors::telegram_text(update_id, chat, at, &text).to_string();
                let path = format!("/api/v1/webhooks/telegram/{}", connection.id);
                let headers = [(
                    "x-telegram-bot-api-secret-token",
                    connection.secret.as_str(),
                )];
                client.webhook(&path, &headers, &body).await?.body["conversation_id"].clone()
            }
            Platform::Viber => {
                let token =
                    6_000_000_000_000_000_000u64 + (business.number as u64) * 10_000_000 + m as u64;
                let body = vendors::viber_text(token, &format!("viber-{customer}="), at, &text);
                let signature = vendors::viber_signature(&connection.secret, &body);
                let path = format!("/api/v1/webhooks/viber/{}", connection.id);
                let headers = [("x-viber-content-signature", signature.as_str())];
                client.webhook(&path, &headers, &body).await?.body["conversation_id"].clone()
            }
            Platform::Waha => {
                let session = format!("x8-{}", connection.id.simple());
                let phone = format!("38164{customer:07}");
                let event =
                    vendors::waha_text(&session, &format!("SIM{unique}"), &phone, at, &text);
                waha_webhook(client, settings, &event).await?["conversation_id"].clone()
            }
            Platform::Infobip => {
                let from = format!("38591{customer:07}");
                let body =
                    vendors::infobip_text(&format!("ib-{unique}"), &from, "VIBER_BOT", at, &text)
                        .to_string();
                let path = format!("/api/v1/webhooks/infobip/{}", connection.id);
                let headers = [("x-webhook-secret", connection.secret.as_str())];
                let answer = client.webhook(&path, &headers, &body).await?;
                answer.body["results"][0]["conversation_id"].clone()
            }
        };
        business.expected.inbound += 1;
        let Some(conversation) = conversation.as_str() else {
            anyhow::bail!(
                "no conversation_id answered for message {m} of business {}",
                business.number
            );
        };
        if rng.random_bool(0.4) {
            let path = format!("/api/v1/conversations/{conversation}/messages");
            let body = json!({"text": format!("Thanks, customer {customer}!"), "type": "TYPE1"});
            client
                .command(Method::POST, &path, &business.token, &body)
                .await?;
            business.expected.outbound += 1;
        }
    }
    Ok(customers)
}

/// A loyalty program: welcome and referral rewards, accounts (each after the first
/// referred by the one before), purchases, small redemptions (always covered by the
/// welcome bonus) and a refund.
async fn loyalty(
    client: &Client,
    business: &mut Business,
    customers: usize,
    rng: &mut ChaCha8Rng,
) -> anyhow::Result<()> {
    let tenant = business.tenant;
    let token = business.token.clone();
    let settings = json!({"welcome_bonus_points": 50, "referrer_reward_points": 100,
                          "referred_reward_points": 25});
    let path = format!("/api/v1/tenants/{tenant}/loyalty/settings");
    client
        .command(Method::PUT, &path, &token, &settings)
        .await?;
    let mut referral: Option<String> = None;
    for customer in 0..customers.min(12) {
        let mut body = json!({"customer_ref": format!("customer-{customer}")});
        if let Some(code) = &referral {
            body["referral_code"] = json!(code);
        }
        let path = format!("/api/v1/tenants/{tenant}/loyalty/accounts");
        let opened = client.command(Method::POST, &path, &token, &body).await?;
        let account = opened.text("account_id")?;
        referral = Some(opened.text("referral_code")?);
        business.expected.accounts += 1;
        let purchases = rng.random_range(1..4);
        for p in 0..purchases {
            let path = format!("/api/v1/loyalty/accounts/{account}/purchases");
            let body = json!({"amount_minor": rng.random_range(500..20_000), "currency": "EUR",
                              "reference": format!("order-{customer}-{p}")});
            client.command(Method::POST, &path, &token, &body).await?;
        }
        let points = rng.random_range(1..50);
        let path = format!("/api/v1/loyalty/accounts/{account}/redemptions");
        let body = json!({"points": points, "reference": format!("redeem-{customer}")});
        client.command(Method::POST, &path, &token, &body).await?;
        business.expected.points_redeemed += points;
        if customer % 4 == 3 {
            let path = format!("/api/v1/loyalty/accounts/{account}/refunds");
            let body = json!({"purchase_reference": format!("order-{customer}-0")});
            client.command(Method::POST, &path, &token, &body).await?;
        }
    }
    Ok(())
}

/// Three deliveries whose carrier checkpoints arrive out of order: `InTransit` (at +2 h)
/// before `InfoReceived` (at +1 h, late), then `Delivered`, or `Exception` for the third.
async fn deliveries(
    client: &Client,
    business: &mut Business,
    company: Uuid,
    rng: &mut ChaCha8Rng,
) -> anyhow::Result<()> {
    let token = business.token.clone();
    for d in 0..3 {
        let path = format!("/api/v1/companies/{company}/deliveries");
        let body = json!({"order_reference": format!("ORD-{}-{d}", business.number),
                          "address": "Knez Mihailova 1, Beograd", "customer_name": "Ana",
                          "customer_phone": format!("+38160{:07}", rng.random_range(0..9_999_999))});
        let created = client.command(Method::POST, &path, &token, &body).await?;
        let delivery = created.text("delivery_id")?;
        let start = Utc::now() - chrono::Duration::hours(4);
        let last = if d == 2 { "Exception" } else { "Delivered" };
        for (status, hours) in [("InTransit", 2), ("InfoReceived", 1), (last, 3)] {
            let path = format!("/api/v1/deliveries/{delivery}/checkpoints");
            let body = json!({"status": status, "occurred_at": start + chrono::Duration::hours(hours),
                              "location": {"lat": 44.81, "lng": 20.46}});
            client.command(Method::POST, &path, &token, &body).await?;
        }
        if d == 2 {
            business.expected.failed += 1;
        } else {
            business.expected.delivered += 1;
        }
    }
    Ok(())
}
