//! The OpenAPI 3.1 document (utoipa) served at `GET /openapi.json`, and Swagger UI at
//! `GET /docs` with its assets compiled into the binary (`utoipa-swagger-ui`'s `vendored`
//! feature: nothing is downloaded at build or run time).
//!
//! Each handler carries its `#[utoipa::path]`; each routes module gathers its own in an
//! `Api` (paths as its router writes them) and [`ApiDoc`] nests them under `/api/v1`
//! (the few routes at the root are listed one by one),
//! so a path is written once per handler, the way the router spells it. Every operation
//! requires the bearer token unless it says `security(())` (public: health, login,
//! registration, webhooks, tracking). The test `the_openapi_document_lists_every_route`
//! compares this document with the router.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem};
use utoipa::openapi::response::{ResponseBuilder, ResponsesBuilder};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, RefOr, Response};
use utoipa::{IntoResponses, Modify, OpenApi, ToSchema};

use crate::routes;

/// An RFC 9457 problem, as every error answers (`application/problem+json`).
#[derive(Serialize, ToSchema)]
pub struct Problem {
    /// `https://x8.network/problems/{code with dashes}`.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// The HTTP reason phrase.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// The stable machine-readable code (`invalid_body`, `not_found`, …).
    pub code: String,
    /// A sentence for people.
    pub detail: String,
}

/// The error responses every operation may give: a [`Problem`] for 4XX (the caller's
/// request: `invalid_body`, `invalid_query`, `unauthorized`, `not_found`, a rule's own
/// code, …) and 5XX (`projection_lagging`, `provider_error`, `internal`).
pub struct Problems;

impl IntoResponses for Problems {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let problem = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/problem+json",
                    ContentBuilder::new()
                        .schema(Some(utoipa::openapi::Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build()
        };
        ResponsesBuilder::new()
            .response(
                "4XX",
                problem("Refused, nothing changed; `code` names the rule"),
            )
            .response("5XX", problem("Not done; safe to retry"))
            .build()
            .into()
    }
}

/// The `X-Min-Position` header reads accept (read-your-writes).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct MinPositionHeader {
    /// Wait until the read model has applied this global position (a command's
    /// `position`); 503 `projection_lagging` after the timeout.
    #[param(rename = "X-Min-Position")]
    #[allow(dead_code)]
    x_min_position: Option<i64>,
}

/// The `Idempotency-Key` header commands accept.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyKeyHeader {
    /// 1 to 255 visible ASCII characters: a repeat with the same key answers the first
    /// outcome and appends nothing (400 `invalid_idempotency_key` otherwise).
    #[param(rename = "Idempotency-Key")]
    #[allow(dead_code)]
    idempotency_key: Option<String>,
}

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "X8 core API",
        description = "Event-sourced core of X8 Network: businesses, channels, conversations, \
            payments, deliveries, loyalty, dashboards and metrics. Errors are RFC 9457 \
            problems with a stable `code`; commands answer with the global `position` that \
            reads accept in `X-Min-Position`."
    ),
    paths(
        routes::health::health,
        routes::health::ready,
        crate::prometheus::scrape,
        routes::tracking::page,
        routes::tracking::events,
    ),
    nest(
        (path = "/api/v1", api = routes::auth::Api, tags = ["auth"]),
        (path = "/api/v1", api = routes::tenants::Api, tags = ["tenants"]),
        (path = "/api/v1", api = routes::erasures::Api, tags = ["erasures"]),
        (path = "/api/v1", api = routes::managers::Api, tags = ["managers"]),
        (path = "/api/v1", api = routes::billing::Api, tags = ["billing"]),
        (path = "/api/v1", api = routes::companies::Api, tags = ["companies"]),
        (path = "/api/v1", api = routes::channels::Api, tags = ["channels"]),
        (path = "/api/v1", api = routes::conversations::Api, tags = ["conversations"]),
        (path = "/api/v1", api = routes::orders::Api, tags = ["orders"]),
        (path = "/api/v1", api = routes::deliveries::Api, tags = ["deliveries"]),
        (path = "/api/v1", api = routes::loyalty::Api, tags = ["loyalty"]),
        (path = "/api/v1", api = routes::dashboards::Api, tags = ["dashboards"]),
        (path = "/api/v1", api = routes::metrics::Api, tags = ["dashboards"]),
        (path = "/api/v1", api = routes::admin::Api, tags = ["operations"]),
        (path = "/api/v1", api = routes::webhooks::Api, tags = ["webhooks"]),
    ),
    // Schemas only query parameters name (operations collect their bodies' own).
    components(schemas(
        Problem,
        x8_domain::billing::order::OrderStatus,
        crate::queries::daily_metrics::GroupBy,
    )),
    modifiers(&SecuritySchemes, &DocsRoutes, &OperationIds),
    security(("bearer" = [])),
    tags(
        (name = "operations", description = "Health, readiness, Prometheus, projections, the Meta app pool"),
        (name = "auth", description = "Login and token refresh"),
        (name = "tenants", description = "Businesses, their plan, manager and time zone"),
        (name = "erasures", description = "Hard delete of a business and its certificate"),
        (name = "managers", description = "Managers and their businesses"),
        (name = "billing", description = "Subscriptions (Stripe) and Stripe Connect"),
        (name = "companies", description = "A business's companies"),
        (name = "channels", description = "Channel connections and their credentials"),
        (name = "conversations", description = "Conversations and messages"),
        (name = "orders", description = "Customer orders and payment links"),
        (name = "deliveries", description = "Couriers, deliveries and checkpoints"),
        (name = "tracking", description = "The public tracking page of a delivery"),
        (name = "loyalty", description = "Loyalty program: accounts, points, promotions, services"),
        (name = "dashboards", description = "Dashboards and daily metrics, from read models"),
        (name = "webhooks", description = "Provider webhooks, verified on the raw body"),
        (name = "docs", description = "This document and Swagger UI"),
    )
)]
pub struct ApiDoc;

/// Declares the bearer JWT scheme (`Authorization: Bearer <access_token>`) and the
/// Prometheus scrape token (`X8_METRICS_TOKEN`).
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "metrics_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Lists the routes `utoipa-swagger-ui` serves (they have no handler of ours to annotate).
struct DocsRoutes;

impl Modify for DocsRoutes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let get = |id: &str, summary: &str, content_type: &str| {
            let response = ResponseBuilder::new()
                .description("OK")
                .content(content_type, ContentBuilder::new().build())
                .build();
            let operation = OperationBuilder::new()
                .tag("docs")
                .operation_id(Some(id))
                .summary(Some(summary))
                .securities(Some(Vec::new()))
                .response("200", response)
                .build();
            PathItem::new(HttpMethod::Get, operation)
        };
        let paths = &mut openapi.paths.paths;
        paths.insert(
            DOCUMENT.into(),
            get("openapi", "This document (OpenAPI 3.1)", "application/json"),
        );
        paths.insert(
            DOCS.into(),
            get("swagger_redirect", "Redirects to `/docs/`", "text/html"),
        );
        paths.insert(
            format!("{DOCS}/"),
            get("swagger_ui", "Swagger UI", "text/html"),
        );
        paths.insert(
            format!("{DOCS}/{{rest}}"),
            get(
                "swagger_assets",
                "Swagger UI's assets, compiled into the binary",
                "application/octet-stream",
            ),
        );
    }
}

/// Prefixes each operation id with its tag (`tenants_show`, `orders_show`): handlers are
/// named after what they do within their module, and ids must be unique in the document.
struct OperationIds;

impl Modify for OperationIds {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            for operation in item_operations(item) {
                let tag = operation
                    .tags
                    .as_ref()
                    .and_then(|tags| tags.first().cloned())
                    .unwrap_or_default();
                let name = operation
                    .operation_id
                    .clone()
                    .unwrap_or_else(|| path.trim_matches('/').replace(['/', '{', '}'], "_"));
                operation.operation_id = Some(format!("{tag}_{name}"));
            }
        }
    }
}

/// Every operation of a path item.
fn item_operations(
    item: &mut PathItem,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

/// Where Swagger UI is served.
const DOCS: &str = "/docs";
/// Where this document is served.
const DOCUMENT: &str = "/openapi.json";

/// `/docs` (Swagger UI) and `/openapi.json`.
pub fn router<S: Clone + Send + Sync + 'static>() -> axum::Router<S> {
    utoipa_swagger_ui::SwaggerUi::new(DOCS)
        .url(DOCUMENT, ApiDoc::openapi())
        .into()
}
