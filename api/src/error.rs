//! The API's one error type: an RFC 9457 problem (`application/problem+json`) with a stable
//! machine-readable `code`. Internal errors are logged once, here, and their details never
//! reach the client.
//!
//! Codes: `invalid_body`, `unsupported_media_type`, `payload_too_large`,
//! `invalid_idempotency_key`, `idempotency_key_reused`, `invalid_min_position`,
//! `unauthorized`, `forbidden`, `not_found`, `conflict`, `email_taken`, `invalid_email`,
//! `invalid_password`, `invalid_name`, `manager_already_assigned`, `manager_mismatch`,
//! `no_manager_assigned`, `not_a_manager`, `already_suspended`, `trial_not_over`,
//! `over_channel_limit` (with `connection_ids` to remove), `upgrade_requires_checkout`,
//! `custom_plan`, `channel_limit_required`, `channels_restricted`, `tenant_suspended`,
//! `meta_app_pool_empty`, `meta_app_registered`, `invalid_meta_app`, `channel_removed`,
//! `no_credentials`, `tenant_erased` (410), `not_whatsapp`, `invalid_phone_number`,
//! `pairing_code_not_offered`, `invalid_signature`, `provider_error` (502),
//! `plan_not_for_sale`, `already_subscribed`, `connect_already_linked`,
//! `connect_not_linked`, `connect_not_ready`, `invalid_account_id`, `invalid_commission`,
//! `account_of_another_tenant`, `order_already_paid`, `invalid_amount`, `invalid_field`,
//! `insufficient_points` (with `balance`, `requested`), `invalid_points`, `invalid_score`,
//! `unknown_purchase`, `reference_reused`, `self_referral`, `unknown_referral_code`,
//! `already_registered` (with `account_id`), `invalid_settings`, `invalid_promotion`,
//! `wrong_moderation_status` (with `moderation_status`), `batch_not_closed`,
//! `invalid_query`, `invalid_time_zone`, `rate_limited` (429, `Retry-After`),
//! `projection_lagging`, `internal`, `unavailable`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use x8_commands::accounts::AccountError;
use x8_commands::passwords::PasswordError;
use x8_commands::tenants::ManagementError;
use x8_commands::CommandError;
use x8_domain::tenant::TenantError;
use x8_domain::user::UserError;

/// The `code` of a problem response, kept in the response's extensions for middleware
/// (metrics, webhook failure counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProblemCode(pub &'static str);

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    detail: String,
    extensions: Map<String, Value>,
    retry_after: Option<u64>,
}

impl ApiError {
    /// A problem with `status`, stable `code` and a human `detail`.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            extensions: Map::new(),
            retry_after: None,
        }
    }

    /// Adds a member to the problem body (e.g. the current manager's id).
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extensions.insert(key.to_string(), value.into());
        self
    }

    /// 400 `invalid_body`.
    pub fn invalid_body(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_body", detail)
    }
    /// 401 `unauthorized`.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid bearer token is required",
        )
    }
    /// 403 `forbidden`: signed in, but the role may not do this.
    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "your role may not do this",
        )
    }
    /// 404 `not_found` (also for resources the caller may not see).
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
    }
    /// 410 `tenant_erased`: the business was erased (or its erasure began); its data is
    /// gone for good (DOMAIN.md "Hard delete").
    pub fn tenant_erased() -> Self {
        Self::new(
            StatusCode::GONE,
            "tenant_erased",
            "this business was erased; its data is gone for good",
        )
    }
    /// 409 `conflict`.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", detail)
    }
    /// 503 `projection_lagging` with `Retry-After: 1`.
    pub fn projection_lagging(detail: impl Into<String>) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "projection_lagging",
            detail,
        );
        e.retry_after = Some(1);
        e
    }
    /// 429 `rate_limited` with `Retry-After: seconds`.
    pub fn rate_limited(seconds: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many requests from this address; retry in {seconds} s"),
        );
        e.retry_after = Some(seconds);
        e
    }
    /// 500 `internal`; `cause` is logged, never shown.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({
            "type": format!("https://x8.network/problems/{}", self.code.replace('_', "-")),
            "title": self.status.canonical_reason().unwrap_or("Error"),
            "status": self.status.as_u16(),
            "code": self.code,
            "detail": self.detail,
        });
        if let Value::Object(map) = &mut body {
            map.extend(self.extensions);
        }
        let mut response = (self.status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response.extensions_mut().insert(ProblemCode(self.code));
        response
    }
}

/// Maps an aggregate's refusal to a problem.
pub trait Rejection {
    /// The problem for this refusal.
    fn problem(self) -> ApiError;
}

impl<E: std::error::Error + Rejection> From<CommandError<E>> for ApiError {
    fn from(err: CommandError<E>) -> Self {
        match err {
            CommandError::Rejected(e) => e.problem(),
            CommandError::Conflict => {
                ApiError::conflict("the resource changed concurrently; retry the request")
            }
            CommandError::IdempotencyKeyReused => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different request",
            ),
            CommandError::Infrastructure(cause) => ApiError::internal(cause),
        }
    }
}

impl Rejection for TenantError {
    fn problem(self) -> ApiError {
        let detail = self.to_string();
        match self {
            TenantError::NotRegistered => ApiError::not_found(),
            TenantError::AlreadyRegistered { .. } => ApiError::conflict(detail),
            TenantError::InvalidName => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_name", detail)
            }
            TenantError::ManagerAlreadyAssigned { manager, .. } => {
                ApiError::new(StatusCode::CONFLICT, "manager_already_assigned", detail)
                    .with("manager_id", manager.to_string())
            }
            TenantError::ManagerMismatch { current, .. } => {
                ApiError::new(StatusCode::CONFLICT, "manager_mismatch", detail)
                    .with("manager_id", current.map(|m| m.to_string()))
            }
            TenantError::NoManagerAssigned { .. } => {
                ApiError::new(StatusCode::CONFLICT, "no_manager_assigned", detail)
            }
            TenantError::TrialNotOver { .. } => {
                ApiError::new(StatusCode::CONFLICT, "trial_not_over", detail)
            }
            TenantError::AlreadySuspended { .. } => {
                ApiError::new(StatusCode::CONFLICT, "already_suspended", detail)
            }
            TenantError::OverChannelLimit {
                limit,
                used,
                remove,
                ..
            } => ApiError::new(StatusCode::CONFLICT, "over_channel_limit", detail)
                .with("channel_limit", limit)
                .with("channels_used", used)
                .with(
                    "connection_ids",
                    remove.iter().map(|id| id.to_string()).collect::<Vec<_>>(),
                ),
            TenantError::UpgradeRequiresCheckout { .. } => {
                ApiError::new(StatusCode::FORBIDDEN, "upgrade_requires_checkout", detail)
            }
            TenantError::CustomPlan { .. } => {
                ApiError::new(StatusCode::FORBIDDEN, "custom_plan", detail)
            }
            TenantError::ChannelLimitRequired { .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "channel_limit_required",
                detail,
            ),
            TenantError::ChannelsRestricted { .. } => {
                ApiError::new(StatusCode::CONFLICT, "channels_restricted", detail)
            }
            TenantError::Suspended { .. } => {
                ApiError::new(StatusCode::CONFLICT, "tenant_suspended", detail)
            }
            TenantError::Erased { .. } => ApiError::tenant_erased(),
            TenantError::NoErasurePending { .. } => {
                ApiError::new(StatusCode::CONFLICT, "no_erasure_pending", detail)
            }
            TenantError::ErasureStarted { .. } => {
                ApiError::new(StatusCode::CONFLICT, "erasure_started", detail)
            }
            TenantError::ErasureGracePeriod { .. } | TenantError::ErasureMismatch { .. } => {
                ApiError::new(StatusCode::CONFLICT, "erasure_not_due", detail)
            }
        }
    }
}

impl Rejection for UserError {
    fn problem(self) -> ApiError {
        let detail = self.to_string();
        match self {
            UserError::EmailTaken { .. } => {
                ApiError::new(StatusCode::CONFLICT, "email_taken", detail)
            }
            UserError::IdMismatch { .. } | UserError::TenantRoleMismatch => {
                ApiError::internal(detail)
            }
        }
    }
}

impl Rejection for AccountError {
    fn problem(self) -> ApiError {
        let detail = self.to_string();
        match self {
            AccountError::InvalidEmail(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_email", detail)
            }
            AccountError::Password(PasswordError::Length) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_password", detail)
            }
            AccountError::Password(PasswordError::Hashing) => ApiError::internal(detail),
            AccountError::User(e) => e.problem(),
            AccountError::Tenant(e) => e.problem(),
        }
    }
}

impl Rejection for x8_commands::companies::CompanyOpError {
    fn problem(self) -> ApiError {
        use x8_commands::companies::CompanyOpError;
        use x8_domain::company::CompanyError;
        match self {
            CompanyOpError::Tenant(e) => e.problem(),
            CompanyOpError::Company(CompanyError::NotFound) => ApiError::not_found(),
            CompanyOpError::Company(e @ CompanyError::InvalidName) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_name",
                e.to_string(),
            ),
            CompanyOpError::Company(e @ CompanyError::AlreadyExists(_)) => {
                ApiError::conflict(e.to_string())
            }
            CompanyOpError::Company(CompanyError::Closed) => ApiError::tenant_erased(),
        }
    }
}

impl Rejection for x8_domain::company::CompanyError {
    fn problem(self) -> ApiError {
        x8_commands::companies::CompanyOpError::Company(self).problem()
    }
}

impl Rejection for ManagementError {
    fn problem(self) -> ApiError {
        match self {
            ManagementError::Tenant(e) => e.problem(),
            e @ ManagementError::NotAManager(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "not_a_manager",
                e.to_string(),
            ),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        ApiError::internal(err)
    }
}

impl Rejection for x8_commands::channels::ChannelOpError {
    fn problem(self) -> ApiError {
        use x8_commands::channels::ChannelOpError;
        match self {
            ChannelOpError::Tenant(e) => e.problem(),
            ChannelOpError::Company(e) => e.problem(),
            ChannelOpError::Channel(e) => e.problem(),
            ChannelOpError::MetaApp(e) => e.problem(),
            ChannelOpError::KeyDestroyed => ApiError::tenant_erased(),
        }
    }
}

impl Rejection for x8_domain::channel::ChannelError {
    fn problem(self) -> ApiError {
        use x8_domain::channel::ChannelError;
        let detail = self.to_string();
        match self {
            ChannelError::NotFound => ApiError::not_found(),
            ChannelError::AlreadyCreated(_) => ApiError::conflict(detail),
            ChannelError::Removed(_) => {
                ApiError::new(StatusCode::CONFLICT, "channel_removed", detail)
            }
            ChannelError::NoCredentials(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "no_credentials", detail)
            }
            ChannelError::InvalidBatchWindow(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_batch_window",
                detail,
            ),
        }
    }
}

impl Rejection for x8_domain::meta_apps::MetaAppError {
    fn problem(self) -> ApiError {
        use x8_domain::meta_apps::MetaAppError;
        let detail = self.to_string();
        match self {
            MetaAppError::PoolEmpty => {
                ApiError::new(StatusCode::CONFLICT, "meta_app_pool_empty", detail)
            }
            MetaAppError::AlreadyRegistered(_) => {
                ApiError::new(StatusCode::CONFLICT, "meta_app_registered", detail)
            }
            MetaAppError::Invalid => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_meta_app", detail)
            }
        }
    }
}

impl From<x8_commands::waha::WahaError> for ApiError {
    fn from(err: x8_commands::waha::WahaError) -> Self {
        tracing::warn!(error = %err, "WAHA call failed");
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "provider_error",
            "the WhatsApp server did not answer as expected; retry later",
        )
    }
}

impl Rejection for x8_commands::billing::BillingError {
    fn problem(self) -> ApiError {
        use x8_commands::billing::BillingError as B;
        use x8_domain::billing::connect::ConnectError as C;
        use x8_domain::billing::order::OrderError as O;
        let detail = self.to_string();
        let status = |status, code| ApiError::new(status, code, detail.clone());
        match self {
            B::Tenant(e) => e.problem(),
            B::Company(e) => e.problem(),
            B::Subscription(_) => ApiError::conflict(detail),
            B::Connect(C::AlreadyLinked { linked }) => {
                status(StatusCode::CONFLICT, "connect_already_linked").with("account_id", linked)
            }
            B::Connect(C::NotLinked) => status(StatusCode::CONFLICT, "connect_not_linked"),
            B::Connect(C::InvalidAccountId(_)) => {
                status(StatusCode::UNPROCESSABLE_ENTITY, "invalid_account_id")
            }
            B::Connect(C::InvalidCommission(_)) => {
                status(StatusCode::UNPROCESSABLE_ENTITY, "invalid_commission")
            }
            B::LinkedElsewhere(_) => status(StatusCode::CONFLICT, "account_of_another_tenant"),
            B::Order(O::NotFound) => ApiError::not_found(),
            B::Order(O::AlreadyExists(_)) => ApiError::conflict(detail),
            B::Order(O::ConnectNotReady) => status(StatusCode::CONFLICT, "connect_not_ready"),
            B::Order(O::AlreadyPaid(s)) => {
                status(StatusCode::CONFLICT, "order_already_paid").with("order_status", s.as_str())
            }
            B::Order(O::WrongAccount { .. }) => ApiError::conflict(detail),
            B::Order(O::Money(_)) => status(StatusCode::UNPROCESSABLE_ENTITY, "invalid_amount"),
            B::Order(O::InvalidText { field, .. }) => {
                status(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").with("field", field)
            }
            B::PlanNotForSale(_) => status(StatusCode::UNPROCESSABLE_ENTITY, "plan_not_for_sale"),
            B::AlreadySubscribed(s) => {
                status(StatusCode::CONFLICT, "already_subscribed").with("stripe_status", s.as_str())
            }
            B::Malformed(_) => ApiError::invalid_body(detail),
            B::Provider(e) => {
                tracing::warn!(error = %e, "Stripe call failed");
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "provider_error",
                    "Stripe did not answer as expected; retry later",
                )
            }
        }
    }
}

impl Rejection for x8_commands::loyalty::LoyaltyOpError {
    fn problem(self) -> ApiError {
        use x8_commands::loyalty::LoyaltyOpError as L;
        use x8_domain::loyalty::program::ProgramError as P;
        use x8_domain::loyalty::service::ServiceError as S;
        use x8_domain::loyalty::LoyaltyError as A;
        let detail = self.to_string();
        let status = |status, code| ApiError::new(status, code, detail.clone());
        let invalid = |code| status(StatusCode::UNPROCESSABLE_ENTITY, code);
        match self {
            L::Account(A::NotFound)
            | L::Program(P::PromotionNotFound)
            | L::Service(S::NotFound) => ApiError::not_found(),
            L::Account(A::Closed) => ApiError::tenant_erased(),
            L::Account(A::InsufficientPoints { balance, requested }) => {
                status(StatusCode::CONFLICT, "insufficient_points")
                    .with("balance", balance)
                    .with("requested", requested)
            }
            L::Account(A::InvalidPoints) => invalid("invalid_points"),
            L::Account(A::InvalidScore) => invalid("invalid_score"),
            L::Account(A::UnknownPurchase(_)) => invalid("unknown_purchase"),
            L::Account(A::SelfReferral) => invalid("self_referral"),
            L::Account(A::InvalidReference(field)) => invalid("invalid_field").with("field", field),
            L::Account(A::ReferenceReused(_)) => status(StatusCode::CONFLICT, "reference_reused"),
            L::Account(A::AlreadyOpen) | L::Program(P::PromotionExists(_)) => {
                ApiError::conflict(detail)
            }
            L::Program(P::InvalidSettings(_)) => invalid("invalid_settings"),
            L::Program(P::InvalidPromotion(_)) => invalid("invalid_promotion"),
            L::Service(S::WrongStatus(s)) => {
                status(StatusCode::CONFLICT, "wrong_moderation_status").with(
                    "moderation_status",
                    serde_json::to_value(s).unwrap_or_default(),
                )
            }
            L::Service(S::InvalidText { field, .. }) => {
                invalid("invalid_field").with("field", field)
            }
            L::UnknownReferralCode(_) => invalid("unknown_referral_code"),
            L::AlreadyRegistered { account_id } => {
                status(StatusCode::CONFLICT, "already_registered")
                    .with("account_id", account_id.to_string())
            }
            L::NoFreeReferralCode => ApiError::conflict(detail),
        }
    }
}

impl Rejection for x8_commands::conversations::ConversationOpError {
    fn problem(self) -> ApiError {
        use x8_commands::conversations::ConversationOpError as O;
        match self {
            O::Conversation(e) => e.problem(),
            O::KeyDestroyed => ApiError::tenant_erased(),
        }
    }
}

impl Rejection for x8_domain::conversation::ConversationError {
    fn problem(self) -> ApiError {
        use x8_domain::conversation::ConversationError as C;
        let detail = self.to_string();
        match self {
            C::NotFound | C::UnknownMessage => ApiError::not_found(),
            C::BatchNotWaiting(_) => {
                ApiError::new(StatusCode::CONFLICT, "batch_not_closed", detail)
            }
            C::MessageExists(_) => ApiError::conflict(detail),
        }
    }
}

impl Rejection for x8_domain::delivery::DeliveryError {
    fn problem(self) -> ApiError {
        use x8_domain::delivery::DeliveryError as D;
        let detail = self.to_string();
        match self {
            D::NotFound => ApiError::not_found(),
            D::AlreadyExists => ApiError::conflict(detail),
            D::IllegalTransition { from, to } => {
                ApiError::new(StatusCode::CONFLICT, "illegal_transition", detail)
                    .with("from", from.as_str())
                    .with("to", to.as_str())
            }
            D::InvalidLocation => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_location", detail)
            }
            D::InvalidText(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", detail)
            }
            D::EmptyCheckpoint => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "empty_checkpoint", detail)
            }
        }
    }
}

impl Rejection for x8_commands::deliveries::DeliveryOpError {
    fn problem(self) -> ApiError {
        use x8_commands::deliveries::DeliveryOpError as O;
        use x8_domain::delivery::CourierError as C;
        let detail = self.to_string();
        match self {
            O::Delivery(e) => e.problem(),
            O::Courier(C::AlreadyExists) => ApiError::conflict(detail),
            O::Courier(C::InvalidZones) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_zones", detail)
            }
            O::UnknownCourier => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unknown_courier", detail)
            }
            O::UnknownConversation => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_conversation",
                detail,
            ),
            O::InvalidField(..) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", detail)
            }
            O::KeyDestroyed => ApiError::tenant_erased(),
        }
    }
}

impl Rejection for x8_domain::delivery::CourierError {
    fn problem(self) -> ApiError {
        x8_commands::deliveries::DeliveryOpError::Courier(self).problem()
    }
}
