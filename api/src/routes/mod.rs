//! One module per resource, each with its `router()`.

pub mod admin;
pub mod auth;
pub mod health;
pub mod managers;
pub mod tenants;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use uuid::Uuid;

/// The id of the current request (from `x-request-id`), used as correlation id.
pub struct RequestId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(Uuid::now_v7);
        Ok(Self(id))
    }
}

/// Parses a path id; anything that is not a UUID is 404 (it cannot name a resource).
pub fn path_id(raw: &str) -> Result<Uuid, crate::error::ApiError> {
    raw.parse().map_err(|_| crate::error::ApiError::not_found())
}
