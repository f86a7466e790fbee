//! External cleanups a hard delete asks of systems the core does not own (DOMAIN.md
//! "Hard delete"): automation workflows and their credentials (n8n, `X8_N8N_URL`),
//! knowledge bases (`X8_KB_CLEANUP_URL`), media folders (`X8_MEDIA_CLEANUP_URL`).
//!
//! The call: `POST <url>` with the JSON body `{"tenant_id": "<uuid>", "erasure_id": "<uuid>",
//! "target": "automations" | "knowledge_bases" | "media"}`, the header `Idempotency-Key:
//! <erasure_id>:<target>` (the same on every retry) and, when `X8_CLEANUP_TOKEN` is set,
//! `Authorization: Bearer <token>`. Any 2xx is done; 404 is done too (nothing of that
//! business there). Anything else, or no answer within 20 s, is a failure the erasure
//! retries. The body carries ids only: the endpoint finds the business's things by its id.

use futures::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;
use uuid::Uuid;
use x8_domain::erasure::CleanupTarget;

/// What a cleanup call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CleanupCall {
    /// The endpoint answered 2xx (or 404: nothing there).
    Done,
    /// No endpoint is configured for the target: nothing to call.
    NotConfigured,
}

/// The external cleanups. Tests point them at a local fake server.
pub trait ExternalCleanups: Send + Sync {
    /// Asks `target` to delete everything of `tenant_id`.
    ///
    /// # Errors
    /// Why the call failed (the status, or the transport error): no personal data, it is
    /// recorded in the erasure's events.
    fn erase<'a>(
        &'a self,
        target: CleanupTarget,
        tenant_id: Uuid,
        erasure_id: Uuid,
    ) -> BoxFuture<'a, Result<CleanupCall, String>>;
}

/// The cleanups over HTTP (reqwest).
pub struct HttpCleanups {
    client: reqwest::Client,
    urls: HashMap<CleanupTarget, String>,
    token: Option<SecretString>,
}

impl HttpCleanups {
    /// Cleanups at `urls` (a target without one is not configured), authenticated with
    /// `token` when given.
    pub fn new(urls: HashMap<CleanupTarget, String>, token: Option<SecretString>) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap_or_default();
        Self {
            client,
            urls,
            token,
        }
    }

    /// No cleanup configured: every target is [`CleanupCall::NotConfigured`].
    pub fn none() -> Self {
        Self::new(HashMap::new(), None)
    }
}

impl ExternalCleanups for HttpCleanups {
    fn erase<'a>(
        &'a self,
        target: CleanupTarget,
        tenant_id: Uuid,
        erasure_id: Uuid,
    ) -> BoxFuture<'a, Result<CleanupCall, String>> {
        Box::pin(async move {
            let Some(url) = self.urls.get(&target) else {
                return Ok(CleanupCall::NotConfigured);
            };
            let body = json!({
                "tenant_id": tenant_id, "erasure_id": erasure_id, "target": target.as_str(),
            });
            let mut request = self
                .client
                .post(url)
                .header(
                    "Idempotency-Key",
                    format!("{erasure_id}:{}", target.as_str()),
                )
                .json(&body);
            if let Some(token) = &self.token {
                request = request.bearer_auth(token.expose_secret());
            }
            let response = request
                .send()
                .await
                .map_err(|e| format!("unreachable: {}", e.without_url()))?;
            let status = response.status();
            if status.is_success() || status == reqwest::StatusCode::NOT_FOUND {
                return Ok(CleanupCall::Done);
            }
            // The status only: an answer's body could echo what the business stored.
            Err(format!("HTTP {}", status.as_u16()))
        })
    }
}
