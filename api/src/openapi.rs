//! The OpenAPI 3.1 document (utoipa) served at `GET /openapi.json`, and Swagger UI at
//! `GET /docs` with its assets compiled into the binary (`utoipa-swagger-ui`'s `vendored`
//! feature: nothing is downloaded at build or run time).
//!
//! Each handler carries its `#[utoipa::path]`; [`ApiDoc`] lists them.

use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

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
        crate::routes::health::health,
        crate::routes::health::ready,
        crate::routes::dashboards::client,
        crate::routes::dashboards::manager,
        crate::routes::dashboards::admin,
        crate::routes::metrics::daily,
    ),
    components(schemas(Problem)),
    modifiers(&BearerAuth),
    tags(
        (name = "operations", description = "Health, readiness, metrics"),
        (name = "dashboards", description = "Dashboards and daily metrics, from read models"),
    )
)]
pub struct ApiDoc;

/// Declares the bearer JWT scheme (`Authorization: Bearer <access_token>`).
struct BearerAuth;

impl Modify for BearerAuth {
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
    }
}

/// `/docs` (Swagger UI) and `/openapi.json`.
pub fn router<S: Clone + Send + Sync + 'static>() -> axum::Router<S> {
    utoipa_swagger_ui::SwaggerUi::new("/docs")
        .url("/openapi.json", ApiDoc::openapi())
        .into()
}
