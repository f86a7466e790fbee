//! JWT bearer tokens (HS256, key from `X8_JWT_SECRET`): access tokens live 30 minutes,
//! refresh tokens 7 days. The signed-in caller is the [`Caller`] extractor.

use crate::app::AppState;
use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use x8_domain::user::Role;
use x8_domain::{TenantId, UserId};
use x8_eventstore::Actor;

/// Access token lifetime, in seconds (30 minutes).
pub const ACCESS_TTL_SECS: i64 = 30 * 60;
/// Refresh token lifetime, in seconds (7 days).
pub const REFRESH_TTL_SECS: i64 = 7 * 24 * 60 * 60;

/// Which kind of token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// Authorises API calls.
    Access,
    /// Only exchanges for a new pair at `/api/v1/auth/refresh`.
    Refresh,
}

/// The claims of both token kinds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: Uuid,
    /// The user's role.
    pub role: Role,
    /// For a CLIENT, its business.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<Uuid>,
    /// Access or refresh.
    pub typ: TokenKind,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expires at (Unix seconds).
    pub exp: i64,
    /// Token id.
    pub jti: Uuid,
}

/// The signing and verifying keys.
pub struct AuthKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

/// A fresh token pair, as returned by login and refresh.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenPair {
    /// Bearer token for API calls.
    pub access_token: String,
    /// Token for `/api/v1/auth/refresh`.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Access token lifetime in seconds.
    pub expires_in: i64,
}

impl AuthKeys {
    /// Keys from the HS256 secret.
    pub fn new(secret: &SecretString) -> Self {
        let bytes = secret.expose_secret().as_bytes();
        Self {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
        }
    }

    /// Issues an access and a refresh token for the user.
    ///
    /// # Errors
    /// [`ApiError::internal`] if signing fails.
    pub fn issue(
        &self,
        user: UserId,
        role: Role,
        tenant: Option<TenantId>,
    ) -> Result<TokenPair, ApiError> {
        let now = chrono::Utc::now().timestamp();
        let sign = |typ, ttl| {
            let claims = Claims {
                sub: user.0,
                role,
                tenant_id: tenant.map(|t| t.0),
                typ,
                iat: now,
                exp: now + ttl,
                jti: Uuid::now_v7(),
            };
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
                .map_err(ApiError::internal)
        };
        Ok(TokenPair {
            access_token: sign(TokenKind::Access, ACCESS_TTL_SECS)?,
            refresh_token: sign(TokenKind::Refresh, REFRESH_TTL_SECS)?,
            token_type: "Bearer",
            expires_in: ACCESS_TTL_SECS,
        })
    }

    /// Verifies signature, algorithm, expiry (no leeway) and kind.
    ///
    /// # Errors
    /// [`ApiError::unauthorized`].
    pub fn verify(&self, token: &str, kind: TokenKind) -> Result<Claims, ApiError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|_| ApiError::unauthorized())?
            .claims;
        if claims.typ != kind {
            return Err(ApiError::unauthorized());
        }
        Ok(claims)
    }
}

/// The signed-in caller, from `Authorization: Bearer <access token>`.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user.
    pub user_id: UserId,
    /// Its role.
    pub role: Role,
    /// For a CLIENT, its business.
    pub tenant_id: Option<TenantId>,
}

impl Caller {
    /// The actor recorded in event metadata.
    pub fn actor(&self) -> Actor {
        Actor::User {
            id: self.user_id.0,
            role: self.role.to_string(),
        }
    }

    /// Refuses callers that are not ADMIN with 403.
    ///
    /// # Errors
    /// [`ApiError::forbidden`].
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.role == Role::Admin {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        }
    }

    /// Whether the caller may read what belongs to MANAGER `manager_id`: an ADMIN, or
    /// that manager itself.
    ///
    /// # Errors
    /// 404 `not_found` otherwise, so other managers' ids are not revealed.
    pub fn require_manager_or_admin(&self, manager_id: uuid::Uuid) -> Result<(), ApiError> {
        match self.role {
            Role::Admin => Ok(()),
            Role::Manager if self.user_id.0 == manager_id => Ok(()),
            _ => Err(ApiError::not_found()),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .ok_or_else(ApiError::unauthorized)?;
        let claims = state.auth.verify(token.trim(), TokenKind::Access)?;
        Ok(Self {
            user_id: UserId(claims.sub),
            role: claims.role,
            tenant_id: claims.tenant_id.map(TenantId),
        })
    }
}
