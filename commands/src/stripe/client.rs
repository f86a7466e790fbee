//! The Stripe API calls X8 makes, over reqwest with form-encoded bodies, the secret key
//! as bearer token (`X8_STRIPE_API_KEY`) and an `Idempotency-Key` on every create, so a
//! retried request never creates a second object.

use futures::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::time::Duration;
use uuid::Uuid;

/// Stripe's API base.
pub const STRIPE_API: &str = "https://api.stripe.com";

/// Why a Stripe call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StripeError {
    /// `X8_STRIPE_API_KEY` is not set.
    #[error("Stripe is not configured (X8_STRIPE_API_KEY)")]
    NotConfigured,
    /// Stripe could not be reached or timed out.
    #[error("Stripe unreachable: {0}")]
    Unreachable(String),
    /// Stripe answered with an error.
    #[error("Stripe answered {status}: {message}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// `error.message`, or the start of the body.
        message: String,
    },
}

/// A Checkout Session Stripe created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutSession {
    /// `cs_…`.
    pub id: String,
    /// Where the payer goes.
    pub url: String,
}

/// A subscription-mode Checkout Session for a tenant.
#[derive(Debug, Clone)]
pub struct SubscriptionCheckout<'a> {
    /// The tenant: `client_reference_id` and `metadata.tenant_id` (also on the
    /// subscription, so its events name the tenant).
    pub tenant_id: Uuid,
    /// The price to subscribe to.
    pub price_id: &'a str,
    /// The tenant's Stripe customer, when known (no second customer).
    pub customer_id: Option<&'a str>,
    /// Where Stripe sends the payer back.
    pub success_url: &'a str,
    /// Where Stripe sends a payer who gives up.
    pub cancel_url: &'a str,
}

/// A payment-mode Checkout Session on a connected account, for one order.
#[derive(Debug, Clone)]
pub struct PaymentCheckout<'a> {
    /// `acct_…` (sent as `Stripe-Account`).
    pub account_id: &'a str,
    /// The order (`metadata.order_id` on the session and its payment intent).
    pub order_id: Uuid,
    /// The business.
    pub tenant_id: Uuid,
    /// Minor units.
    pub amount_minor: i64,
    /// Lower-case ISO-4217, as Stripe takes it.
    pub currency: &'a str,
    /// Shown on the payment page.
    pub description: &'a str,
    /// The platform's fee, minor units (0: none).
    pub application_fee_minor: i64,
    /// Where Stripe sends the payer back.
    pub success_url: &'a str,
    /// Where Stripe sends a payer who gives up.
    pub cancel_url: &'a str,
}

/// The Stripe calls X8 makes. `idempotency_key` is sent as `Idempotency-Key`.
pub trait StripeApi: Send + Sync {
    /// `POST /v1/checkout/sessions` in subscription mode.
    fn create_subscription_checkout<'a>(
        &'a self,
        checkout: SubscriptionCheckout<'a>,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<CheckoutSession, StripeError>>;
    /// `POST /v1/accounts` (Express, card payments and transfers, `metadata.tenant_id`) →
    /// the new `acct_…`.
    fn create_connected_account<'a>(
        &'a self,
        tenant_id: Uuid,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<String, StripeError>>;
    /// `POST /v1/account_links` (`account_onboarding`) → the onboarding URL.
    fn create_account_link<'a>(
        &'a self,
        account_id: &'a str,
        refresh_url: &'a str,
        return_url: &'a str,
    ) -> BoxFuture<'a, Result<String, StripeError>>;
    /// `POST /v1/checkout/sessions` in payment mode on the connected account.
    fn create_payment_checkout<'a>(
        &'a self,
        checkout: PaymentCheckout<'a>,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<CheckoutSession, StripeError>>;
    /// `DELETE /v1/subscriptions/{id}`: cancels at once, without proration → the
    /// subscription object (status `canceled`). A hard delete's step.
    fn cancel_subscription<'a>(
        &'a self,
        subscription_id: &'a str,
    ) -> BoxFuture<'a, Result<Value, StripeError>>;
    /// `DELETE /v1/accounts/{id}`: deletes a connected account X8 created (Express). A
    /// hard delete's step; Stripe refuses while the account holds a balance.
    fn delete_account<'a>(&'a self, account_id: &'a str) -> BoxFuture<'a, Result<(), StripeError>>;
}

/// Stripe over HTTP (reqwest).
pub struct StripeHttp {
    client: reqwest::Client,
    base_url: String,
    api_key: SecretString,
}

impl StripeHttp {
    /// A client for `base_url` ([`STRIPE_API`] in production) with the secret `api_key`.
    pub fn new(base_url: &str, api_key: SecretString) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap_or_default();
        Self {
            client,
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key,
        }
    }

    async fn post(
        &self,
        path: &str,
        form: &[(String, String)],
        idempotency_key: Option<&str>,
        account: Option<&str>,
    ) -> Result<Value, StripeError> {
        let request = self
            .client
            .post(format!("{}{path}", self.base_url))
            .form(form);
        self.send(request, idempotency_key, account).await
    }

    /// `DELETE path` (Stripe ignores idempotency keys on DELETE; deleting twice answers
    /// 404 `resource_missing`).
    async fn delete(&self, path: &str) -> Result<Value, StripeError> {
        let request = self.client.delete(format!("{}{path}", self.base_url));
        self.send(request, None, None).await
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        idempotency_key: Option<&str>,
        account: Option<&str>,
    ) -> Result<Value, StripeError> {
        let mut request = request.bearer_auth(self.api_key.expose_secret());
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        if let Some(account) = account {
            request = request.header("Stripe-Account", account);
        }
        let response = request
            .send()
            .await
            .map_err(|e| StripeError::Unreachable(e.without_url().to_string()))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| StripeError::Unreachable(e.without_url().to_string()))?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !status.is_success() {
            let message = body["error"]["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| text.chars().take(200).collect());
            return Err(StripeError::Status {
                status: status.as_u16(),
                message,
            });
        }
        Ok(body)
    }

    fn session(body: &Value) -> Result<CheckoutSession, StripeError> {
        match (body["id"].as_str(), body["url"].as_str()) {
            (Some(id), Some(url)) => Ok(CheckoutSession {
                id: id.to_string(),
                url: url.to_string(),
            }),
            _ => Err(unexpected("a Checkout Session without id or url")),
        }
    }
}

fn unexpected(what: &str) -> StripeError {
    StripeError::Status {
        status: 200,
        message: format!("unexpected answer: {what}"),
    }
}

fn pairs(items: &[(&str, String)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect()
}

impl StripeApi for StripeHttp {
    fn create_subscription_checkout<'a>(
        &'a self,
        checkout: SubscriptionCheckout<'a>,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<CheckoutSession, StripeError>> {
        Box::pin(async move {
            let tenant = checkout.tenant_id.to_string();
            let mut form = pairs(&[
                ("mode", "subscription".into()),
                ("line_items[0][price]", checkout.price_id.into()),
                ("line_items[0][quantity]", "1".into()),
                ("client_reference_id", tenant.clone()),
                ("metadata[tenant_id]", tenant.clone()),
                ("subscription_data[metadata][tenant_id]", tenant),
                ("success_url", checkout.success_url.into()),
                ("cancel_url", checkout.cancel_url.into()),
            ]);
            if let Some(customer) = checkout.customer_id {
                form.push(("customer".into(), customer.into()));
            }
            let body = self
                .post("/v1/checkout/sessions", &form, Some(idempotency_key), None)
                .await?;
            Self::session(&body)
        })
    }

    fn create_connected_account<'a>(
        &'a self,
        tenant_id: Uuid,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<String, StripeError>> {
        Box::pin(async move {
            let form = pairs(&[
                ("type", "express".into()),
                ("metadata[tenant_id]", tenant_id.to_string()),
                ("capabilities[card_payments][requested]", "true".into()),
                ("capabilities[transfers][requested]", "true".into()),
            ]);
            let body = self
                .post("/v1/accounts", &form, Some(idempotency_key), None)
                .await?;
            body["id"]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| unexpected("an account without id"))
        })
    }

    fn create_account_link<'a>(
        &'a self,
        account_id: &'a str,
        refresh_url: &'a str,
        return_url: &'a str,
    ) -> BoxFuture<'a, Result<String, StripeError>> {
        Box::pin(async move {
            let form = pairs(&[
                ("account", account_id.into()),
                ("refresh_url", refresh_url.into()),
                ("return_url", return_url.into()),
                ("type", "account_onboarding".into()),
            ]);
            let body = self.post("/v1/account_links", &form, None, None).await?;
            body["url"]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| unexpected("an account link without url"))
        })
    }

    fn create_payment_checkout<'a>(
        &'a self,
        checkout: PaymentCheckout<'a>,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<CheckoutSession, StripeError>> {
        Box::pin(async move {
            let order = checkout.order_id.to_string();
            let tenant = checkout.tenant_id.to_string();
            let mut form = pairs(&[
                ("mode", "payment".into()),
                ("line_items[0][quantity]", "1".into()),
                (
                    "line_items[0][price_data][currency]",
                    checkout.currency.into(),
                ),
                (
                    "line_items[0][price_data][unit_amount]",
                    checkout.amount_minor.to_string(),
                ),
                (
                    "line_items[0][price_data][product_data][name]",
                    checkout.description.into(),
                ),
                ("metadata[order_id]", order.clone()),
                ("metadata[tenant_id]", tenant.clone()),
                ("payment_intent_data[metadata][order_id]", order),
                ("payment_intent_data[metadata][tenant_id]", tenant),
                ("success_url", checkout.success_url.into()),
                ("cancel_url", checkout.cancel_url.into()),
            ]);
            if checkout.application_fee_minor > 0 {
                form.push((
                    "payment_intent_data[application_fee_amount]".into(),
                    checkout.application_fee_minor.to_string(),
                ));
            }
            let body = self
                .post(
                    "/v1/checkout/sessions",
                    &form,
                    Some(idempotency_key),
                    Some(checkout.account_id),
                )
                .await?;
            Self::session(&body)
        })
    }

    fn cancel_subscription<'a>(
        &'a self,
        subscription_id: &'a str,
    ) -> BoxFuture<'a, Result<Value, StripeError>> {
        Box::pin(async move {
            self.delete(&format!("/v1/subscriptions/{subscription_id}"))
                .await
        })
    }

    fn delete_account<'a>(&'a self, account_id: &'a str) -> BoxFuture<'a, Result<(), StripeError>> {
        Box::pin(async move {
            self.delete(&format!("/v1/accounts/{account_id}"))
                .await
                .map(|_| ())
        })
    }
}

/// Stripe when `X8_STRIPE_API_KEY` is unset: every call fails with
/// [`StripeError::NotConfigured`].
pub struct StripeNotConfigured;

impl StripeApi for StripeNotConfigured {
    fn create_subscription_checkout<'a>(
        &'a self,
        _: SubscriptionCheckout<'a>,
        _: &'a str,
    ) -> BoxFuture<'a, Result<CheckoutSession, StripeError>> {
        Box::pin(async { Err(StripeError::NotConfigured) })
    }
    fn create_connected_account<'a>(
        &'a self,
        _: Uuid,
        _: &'a str,
    ) -> BoxFuture<'a, Result<String, StripeError>> {
        Box::pin(async { Err(StripeError::NotConfigured) })
    }
    fn create_account_link<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        _: &'a str,
    ) -> BoxFuture<'a, Result<String, StripeError>> {
        Box::pin(async { Err(StripeError::NotConfigured) })
    }
    fn create_payment_checkout<'a>(
        &'a self,
        _: PaymentCheckout<'a>,
        _: &'a str,
    ) -> BoxFuture<'a, Result<CheckoutSession, StripeError>> {
        Box::pin(async { Err(StripeError::NotConfigured) })
    }
    fn cancel_subscription<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Value, StripeError>> {
        Box::pin(async { Err(StripeError::NotConfigured) })
    }
    fn delete_account<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<(), StripeError>> {
        Box::pin(async { Err(StripeError::NotConfigured) })
    }
}
