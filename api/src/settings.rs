//! Settings, read once from the environment. Secrets have no default: a missing one is a
//! start-up error that names the variable.

use secrecy::SecretString;
use std::time::Duration;
use x8_commands::billing::DEFAULT_APP_URL;
use x8_commands::sending::ProviderUrls;
use x8_commands::stripe::signature::DEFAULT_TOLERANCE_SECS;
use x8_commands::stripe::{PricePlans, STRIPE_API};
use x8_commands::vault::MasterKey;
use x8_domain::conversation::MessageRates;

/// Local development database used when `DATABASE_URL` is unset.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/x8";
/// Address the server binds to when `X8_BIND` is unset.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";

/// A missing or malformed setting.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A required variable is unset or empty.
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    /// A variable has a value that does not parse.
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Why.
        reason: String,
    },
}

/// Server settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `DATABASE_URL`, default [`DEFAULT_DATABASE_URL`].
    pub database_url: String,
    /// `X8_BIND`, default [`DEFAULT_BIND`].
    pub bind: String,
    /// `X8_JWT_SECRET`: HS256 key, required, at least 32 bytes.
    pub jwt_secret: SecretString,
    /// `X8_MASTER_KEY`: 32 random bytes, base64, required; wraps the tenants' data keys
    /// (generate one with `openssl rand -base64 32`).
    pub master_key: MasterKey,
    /// `X8_WAHA_URL`: the WAHA server; unset, connecting WhatsApp records an error.
    pub waha_url: Option<String>,
    /// `X8_WAHA_API_KEY`: sent as `X-Api-Key` to WAHA.
    pub waha_api_key: Option<SecretString>,
    /// `X8_WAHA_WEBHOOK_URL`: our public `/api/v1/webhooks/waha` URL, given to WAHA
    /// sessions.
    pub waha_webhook_url: Option<String>,
    /// `X8_WAHA_WEBHOOK_SECRET`: when set, WAHA webhooks must carry a valid `X-Webhook-Hmac`
    /// (HMAC-SHA512 of the body, hex); also the key WAHA sessions sign with.
    pub waha_webhook_secret: Option<SecretString>,
    /// `X8_STRIPE_API_KEY`: Stripe secret key (`sk_…`); unset, checkout, onboarding and
    /// payment links answer 502 `provider_error`.
    pub stripe_api_key: Option<SecretString>,
    /// `X8_STRIPE_API_URL`, default `https://api.stripe.com` (tests point it at a fake).
    pub stripe_api_url: String,
    /// `X8_STRIPE_WEBHOOK_SECRET`: the endpoint's signing secrets (`whsec_…`),
    /// comma-separated during a rotation; unset, every Stripe webhook is refused.
    pub stripe_webhook_secrets: Vec<SecretString>,
    /// `X8_STRIPE_TOLERANCE_SECS`: oldest accepted signature timestamp, default 300 s.
    pub stripe_tolerance_secs: i64,
    /// `X8_STRIPE_PRICE_PLANS`: `price_123=GROWTH,price_456=DOUBLE`.
    pub stripe_price_plans: PricePlans,
    /// `X8_APP_URL`: the dashboard Stripe sends payers back to, default
    /// `http://127.0.0.1:8080`.
    pub app_url: String,
    /// `X8_TELEGRAM_API_URL` and `X8_VIBER_API_URL`: the bot APIs replies go through,
    /// default `https://api.telegram.org` and `https://chatapi.viber.com`.
    pub provider_urls: ProviderUrls,
    /// `X8_MESSAGE_RATES`: `session=4500,proactive=9000,rich_media_bps=2000` (micro-euros
    /// per message, surcharge in basis points; the defaults are Infobip's Serbian rates).
    pub message_rates: MessageRates,
    /// `X8_DB_MAX_CONNECTIONS`, default 20.
    pub max_connections: u32,
    /// `X8_SNAPSHOT_EVERY`: events between aggregate snapshots, default 100.
    pub snapshot_every: usize,
    /// `X8_MIN_POSITION_TIMEOUT_MS`: longest wait for `X-Min-Position`, default 5000 ms.
    pub min_position_timeout: Duration,
    /// `X8_PROJECTION_COALESCE_MS`: how long a projection lets events gather after a
    /// partial batch while commands keep coming, default 20 ms (fewer, larger batches:
    /// the report bench gave 25–40 % more webhooks/s than at 5 ms, with the worst lag's
    /// p99 still under 0.35 s).
    pub projection_coalesce: Duration,
    /// `X8_AUTHORIZATION_MAX_AGE_MS`: how old the business state an authorization reads
    /// may be, default 1000 ms (0: read the stream on every request).
    pub authorization_max_age: Duration,
    /// `X8_METRICS_TOKEN`: when set, `GET /metrics` needs `Authorization: Bearer <it>`.
    pub metrics_token: Option<SecretString>,
    /// `X8_ERASURE_GRACE_HOURS`: how long after a hard delete is asked for it begins (it
    /// can be cancelled until then), default 0.
    pub erasure_grace_hours: u32,
    /// `X8_N8N_URL`, `X8_KB_CLEANUP_URL`, `X8_MEDIA_CLEANUP_URL`: the external cleanups a
    /// hard delete calls (`POST` with the business's id); an unset one is recorded as not
    /// configured.
    pub cleanup_urls: std::collections::HashMap<x8_domain::erasure::CleanupTarget, String>,
    /// `X8_CLEANUP_TOKEN`: when set, sent to the cleanups as `Authorization: Bearer <it>`.
    pub cleanup_token: Option<SecretString>,
    /// `X8_AUTH_RATE_PER_MINUTE` (20), `X8_AUTH_RATE_BURST` (10), `X8_TRUST_FORWARDED_FOR`
    /// (false): login and registration limits per client address.
    pub auth_rate: crate::rate_limit::AuthRateLimit,
}

impl Settings {
    /// Reads the settings from the environment.
    ///
    /// # Errors
    /// [`SettingsError`] naming the first missing or invalid variable.
    pub fn from_env() -> Result<Self, SettingsError> {
        let jwt_secret = required("X8_JWT_SECRET")?;
        if jwt_secret.len() < 32 {
            return Err(SettingsError::Invalid {
                name: "X8_JWT_SECRET",
                reason: "must be at least 32 bytes".into(),
            });
        }
        Ok(Self {
            master_key: master_key()?,
            waha_url: optional("X8_WAHA_URL"),
            waha_api_key: optional("X8_WAHA_API_KEY").map(SecretString::from),
            waha_webhook_url: optional("X8_WAHA_WEBHOOK_URL"),
            waha_webhook_secret: optional("X8_WAHA_WEBHOOK_SECRET").map(SecretString::from),
            stripe_api_key: optional("X8_STRIPE_API_KEY").map(SecretString::from),
            stripe_api_url: optional("X8_STRIPE_API_URL").unwrap_or_else(|| STRIPE_API.into()),
            stripe_webhook_secrets: optional("X8_STRIPE_WEBHOOK_SECRET")
                .map(|raw| {
                    raw.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| SecretString::from(s.to_string()))
                        .collect()
                })
                .unwrap_or_default(),
            stripe_tolerance_secs: parsed("X8_STRIPE_TOLERANCE_SECS", DEFAULT_TOLERANCE_SECS)?,
            stripe_price_plans: PricePlans::parse(
                &optional("X8_STRIPE_PRICE_PLANS").unwrap_or_default(),
            )
            .map_err(|e| SettingsError::Invalid {
                name: "X8_STRIPE_PRICE_PLANS",
                reason: e.to_string(),
            })?,
            app_url: optional("X8_APP_URL").unwrap_or_else(|| DEFAULT_APP_URL.into()),
            database_url: optional("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.into()),
            bind: optional("X8_BIND").unwrap_or_else(|| DEFAULT_BIND.into()),
            jwt_secret: SecretString::from(jwt_secret),
            provider_urls: {
                let defaults = ProviderUrls::default();
                ProviderUrls {
                    telegram: optional("X8_TELEGRAM_API_URL").unwrap_or(defaults.telegram),
                    viber: optional("X8_VIBER_API_URL").unwrap_or(defaults.viber),
                }
            },
            message_rates: optional("X8_MESSAGE_RATES")
                .map(|raw| raw.parse())
                .transpose()
                .map_err(|reason| SettingsError::Invalid {
                    name: "X8_MESSAGE_RATES",
                    reason,
                })?
                .unwrap_or_default(),
            max_connections: parsed("X8_DB_MAX_CONNECTIONS", 20)?,
            snapshot_every: parsed("X8_SNAPSHOT_EVERY", 100)?,
            min_position_timeout: Duration::from_millis(parsed(
                "X8_MIN_POSITION_TIMEOUT_MS",
                5000,
            )?),
            projection_coalesce: Duration::from_millis(parsed("X8_PROJECTION_COALESCE_MS", 20)?),
            authorization_max_age: Duration::from_millis(parsed(
                "X8_AUTHORIZATION_MAX_AGE_MS",
                crate::app::DEFAULT_AUTHORIZATION_MAX_AGE.as_millis() as u64,
            )?),
            metrics_token: optional("X8_METRICS_TOKEN").map(SecretString::from),
            erasure_grace_hours: parsed("X8_ERASURE_GRACE_HOURS", 0)?,
            cleanup_urls: {
                use x8_domain::erasure::CleanupTarget as T;
                [
                    (T::Automations, "X8_N8N_URL"),
                    (T::KnowledgeBases, "X8_KB_CLEANUP_URL"),
                    (T::Media, "X8_MEDIA_CLEANUP_URL"),
                ]
                .into_iter()
                .filter_map(|(target, name)| optional(name).map(|url| (target, url)))
                .collect()
            },
            cleanup_token: optional("X8_CLEANUP_TOKEN").map(SecretString::from),
            auth_rate: {
                let defaults = crate::rate_limit::AuthRateLimit::default();
                crate::rate_limit::AuthRateLimit {
                    per_minute: parsed("X8_AUTH_RATE_PER_MINUTE", defaults.per_minute)?,
                    burst: parsed("X8_AUTH_RATE_BURST", defaults.burst)?,
                    trust_forwarded_for: parsed(
                        "X8_TRUST_FORWARDED_FOR",
                        defaults.trust_forwarded_for,
                    )?,
                }
            },
        })
    }
}

/// `X8_MASTER_KEY`, parsed.
///
/// # Errors
/// [`SettingsError`] naming the variable when it is missing or not 32 bytes of base64.
pub fn master_key() -> Result<MasterKey, SettingsError> {
    MasterKey::from_base64(&required("X8_MASTER_KEY")?).map_err(|e| SettingsError::Invalid {
        name: "X8_MASTER_KEY",
        reason: e.to_string(),
    })
}

/// The value of `name`, or an error naming it.
///
/// # Errors
/// [`SettingsError::Missing`].
pub fn required(name: &'static str) -> Result<String, SettingsError> {
    optional(name).ok_or(SettingsError::Missing(name))
}

fn optional(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn parsed<T: std::str::FromStr>(name: &'static str, default: T) -> Result<T, SettingsError>
where
    T::Err: std::fmt::Display,
{
    match optional(name) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|e: T::Err| SettingsError::Invalid {
                name,
                reason: e.to_string(),
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_malformed_secret_is_an_error_naming_the_variable() {
        // One test touches the process environment, so they cannot race.
        std::env::remove_var("X8_JWT_SECRET");
        let missing = Settings::from_env().unwrap_err().to_string();
        assert!(missing.contains("X8_JWT_SECRET"), "{missing}");
        std::env::set_var("X8_JWT_SECRET", "short");
        let short = Settings::from_env().unwrap_err().to_string();
        assert!(short.contains("at least 32 bytes"), "{short}");
        std::env::set_var("X8_JWT_SECRET", "0123456789abcdef0123456789abcdef");
        std::env::remove_var("X8_MASTER_KEY");
        let no_key = Settings::from_env().unwrap_err().to_string();
        assert!(no_key.contains("X8_MASTER_KEY"), "{no_key}");
        std::env::set_var("X8_MASTER_KEY", "c2hvcnQ=");
        let short_key = Settings::from_env().unwrap_err().to_string();
        assert!(short_key.contains("X8_MASTER_KEY"), "{short_key}");
        std::env::set_var("X8_MASTER_KEY", MasterKey::generate_base64());
        std::env::set_var("X8_SNAPSHOT_EVERY", "lots");
        let invalid = Settings::from_env().unwrap_err().to_string();
        assert!(invalid.contains("X8_SNAPSHOT_EVERY"), "{invalid}");
        std::env::remove_var("X8_SNAPSHOT_EVERY");
        let settings = Settings::from_env().unwrap();
        assert_eq!(settings.snapshot_every, 100);
        assert_eq!(settings.bind, DEFAULT_BIND);
    }
}
