//! The simulator's HTTP client: every request is retried until the server answers it (a
//! refused connection, a 5xx or a 429 are waited out, so the run survives a server
//! restart), commands carry an `Idempotency-Key` that stays the same across retries, and
//! every 2xx answer's `position` is kept in a journal to check against the log at the end.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// How long one request is retried before the run gives up, in seconds.
const GIVE_UP_SECS: u64 = 180;

/// One answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body as JSON (`null` when empty or not JSON).
    pub body: Value,
}

impl Answer {
    /// The body's `field` as a string, or an error naming the request.
    pub fn text(&self, field: &str) -> anyhow::Result<String> {
        self.body[field]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow::anyhow!("no {field:?} in {}", self.body))
    }
}

/// A client of one server.
pub struct Client {
    http: reqwest::Client,
    base: String,
    /// `sim-<seed>-` : idempotency keys and ids are unique per seed.
    prefix: String,
    next_key: AtomicU64,
    /// Positions answered with a 2xx.
    journal: Mutex<Vec<i64>>,
    /// Requests that had to be retried (the server was down or busy).
    pub retries: AtomicU64,
}

impl Client {
    /// A client of the server at `base` (e.g. `http://127.0.0.1:8080`).
    ///
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn new(base: &str, seed: u64) -> anyhow::Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            base: base.trim_end_matches('/').to_string(),
            prefix: format!("sim-{seed}-"),
            next_key: AtomicU64::new(0),
            journal: Mutex::new(Vec::new()),
            retries: AtomicU64::new(0),
        })
    }

    /// A fresh idempotency key.
    pub fn key(&self) -> String {
        format!(
            "{}{}",
            self.prefix,
            self.next_key.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// Every position answered with a 2xx so far.
    pub fn journal(&self) -> Vec<i64> {
        self.journal.lock().map(|j| j.clone()).unwrap_or_default()
    }

    /// A command: `method path` with `body` as the bearer of `token`, under a fresh
    /// idempotency key kept across retries; fails on any answer but 2xx.
    ///
    /// # Errors
    /// A 4xx answer, or the server unreachable for [`GIVE_UP_SECS`].
    pub async fn command(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: &Value,
    ) -> anyhow::Result<Answer> {
        let key = self.key();
        let headers = [("idempotency-key", key.as_str())];
        let answer = self
            .send(method.clone(), path, Some(token), &headers, Some(body))
            .await?;
        expect_success(&method, path, answer)
    }

    /// A webhook: `body` posted raw to `path` with `headers`; fails on any answer but 2xx.
    ///
    /// # Errors
    /// As [`Self::command`].
    pub async fn webhook(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> anyhow::Result<Answer> {
        let answer = self
            .send_raw(Method::POST, path, None, headers, body)
            .await?;
        expect_success(&Method::POST, path, answer)
    }

    /// A read as the bearer of `token`, after the server applied `min_position`.
    ///
    /// # Errors
    /// As [`Self::command`].
    pub async fn read(&self, path: &str, token: &str, min_position: i64) -> anyhow::Result<Answer> {
        let position = min_position.to_string();
        let answer = self
            .send(
                Method::GET,
                path,
                Some(token),
                &[("x-min-position", &position)],
                None,
            )
            .await?;
        expect_success(&Method::GET, path, answer)
    }

    /// Any request, retried while the server is down or busy; the answer whatever it is.
    ///
    /// # Errors
    /// The server unreachable (or answering 5xx / 429) for [`GIVE_UP_SECS`].
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> anyhow::Result<Answer> {
        let body = body.map(Value::to_string).unwrap_or_default();
        self.send_raw(method, path, token, headers, &body).await
    }

    async fn send_raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: &str,
    ) -> anyhow::Result<Answer> {
        let url = format!("{}{path}", self.base);
        let started = std::time::Instant::now();
        loop {
            let mut request = self.http.request(method.clone(), &url);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            if !body.is_empty() {
                request = request
                    .header("content-type", "application/json")
                    .body(body.to_string());
            }
            let wait = match request.send().await {
                Ok(response) if retryable(response.status()) => retry_after(&response),
                Ok(response) => {
                    let status = response.status();
                    let bytes = response.bytes().await.unwrap_or_default();
                    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                    if status.is_success() {
                        self.remember(&body);
                    }
                    return Ok(Answer { status, body });
                }
                Err(_) => Duration::from_millis(250),
            };
            if started.elapsed().as_secs() > GIVE_UP_SECS {
                anyhow::bail!("{method} {path}: no answer for {GIVE_UP_SECS} s");
            }
            self.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(wait).await;
        }
    }

    /// Keeps the positions a 2xx answer names (`position`, or each `results[].position`).
    fn remember(&self, body: &Value) {
        let mut positions: Vec<i64> = body["position"].as_i64().into_iter().collect();
        if let Some(results) = body["results"].as_array() {
            positions.extend(results.iter().filter_map(|r| r["position"].as_i64()));
        }
        positions.retain(|p| *p > 0);
        if let Ok(mut journal) = self.journal.lock() {
            journal.extend(positions);
        }
    }
}

/// A server restarting or overloaded, or a rate limit: worth waiting for.
fn retryable(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
}

fn retry_after(response: &reqwest::Response) -> Duration {
    let seconds = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    seconds.map_or(Duration::from_millis(250), |s| {
        Duration::from_secs(s.clamp(1, 5))
    })
}

fn expect_success(method: &Method, path: &str, answer: Answer) -> anyhow::Result<Answer> {
    if !answer.status.is_success() {
        anyhow::bail!("{method} {path}: {} {}", answer.status, answer.body);
    }
    Ok(answer)
}
