//! The operations surface: Prometheus metrics and rate limits.

use axum::http::{Method, StatusCode};
use regex::Regex;
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::collections::BTreeSet;
use x8_api::rate_limit::AuthRateLimit;
use x8_tests::{telegram, TestApp};

#[sqlx::test(migrations = "../migrations")]
async fn metrics_expose_commands_appends_webhooks_projection_lag_and_deadlines(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    // Given a business (commands and appends) and a refused webhook
    let app = TestApp::spawn(db).await;
    let (tenant, token) = app.tenant_with_owner("Cafe", "owner@cafe.test").await;
    let company = app.company(&token, tenant).await;
    let bot = app
        .connection_with(&token, company, "telegram", &telegram::credentials())
        .await;
    app.telegram_update(bot, Some("wrong"), &telegram::fixture())
        .await
        .assert_problem(401, "invalid_signature");
    app.get_caught_up(&token, &format!("/api/v1/tenants/{tenant}"))
        .await;
    // When Prometheus scrapes
    let scraped = app.send(Method::GET, "/metrics", None, &[], None).await;
    // Then the text format carries every family
    assert_eq!(scraped.status, StatusCode::OK);
    let text = scraped.text.clone();
    for expected in [
        r#"x8_commands_total{aggregate="tenant",command="RegisterTenant",outcome="accepted"}"#,
        r#"x8_append_seconds_bucket{outcome="appended",le="0.005"}"#,
        r#"x8_webhooks_total{provider="telegram",outcome="invalid_signature"}"#,
        r#"x8_projection_lag_events{projection="metrics"} 0"#,
        r#"x8_projection_lag_seconds{projection="tenants"}"#,
        r#"x8_deadlines{state="pending"} 1"#,
    ] {
        assert!(text.contains(expected), "{expected} not in\n{text}");
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_metrics_token_guards_the_scrape(_: PgPoolOptions, db: PgConnectOptions) {
    let mut app = TestApp::spawn(db).await;
    app.state.metrics_token = Some("scrape-token-0123456789".to_string().into());
    let app = app.with_auth_rate(AuthRateLimit::default());
    app.send(Method::GET, "/metrics", None, &[], None)
        .await
        .assert_problem(401, "unauthorized");
    let scraped = app
        .send(
            Method::GET,
            "/metrics",
            Some("scrape-token-0123456789"),
            &[],
            None,
        )
        .await;
    assert_eq!(scraped.status, StatusCode::OK);
}

#[sqlx::test(migrations = "../migrations")]
async fn login_and_registration_are_limited_per_address_with_retry_after(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    // Given 2 requests at once, then 1 a minute
    let app = TestApp::spawn(db).await.with_auth_rate(AuthRateLimit {
        per_minute: 1,
        burst: 2,
        trust_forwarded_for: false,
    });
    let login = json!({"email": "nobody@x8.test", "password": "wrong password"}).to_string();
    let attempt = || {
        app.send(
            Method::POST,
            "/api/v1/auth/login",
            None,
            &[],
            Some(login.clone()),
        )
    };
    // When a third login comes within the minute
    attempt().await.assert_problem(401, "invalid_credentials");
    attempt().await.assert_problem(401, "invalid_credentials");
    let limited = attempt().await;
    // Then 429 with a problem body and Retry-After
    limited.assert_problem(429, "rate_limited");
    let retry_after: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // And registration counts on its own, also limited
    let before = app.event_count().await;
    for i in 0..3 {
        let body = json!({"name": "Cafe", "owner_email": format!("o{i}@cafe.test"),
                          "owner_password": "correct horse battery"});
        let response = app
            .send(
                Method::POST,
                "/api/v1/tenants",
                None,
                &[],
                Some(body.to_string()),
            )
            .await;
        if i < 2 {
            assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
        } else {
            response.assert_problem(429, "rate_limited");
        }
    }
    assert!(app.event_count().await > before);
    // And webhooks are never limited
    for _ in 0..5 {
        let response = app
            .send(
                Method::POST,
                "/api/v1/webhooks/stripe",
                None,
                &[],
                Some("{}".into()),
            )
            .await;
        assert_ne!(response.status, StatusCode::TOO_MANY_REQUESTS);
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn the_openapi_document_and_swagger_ui_are_served_from_the_binary(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    let app = TestApp::spawn(db).await;
    let document = app
        .send(Method::GET, "/openapi.json", None, &[], None)
        .await;
    assert_eq!(document.status, StatusCode::OK);
    assert_eq!(document.body["openapi"], "3.1.0");
    for (path, method) in [
        ("/health", "get"),
        ("/api/v1/dashboards/client/{tenant_id}", "get"),
        ("/api/v1/dashboards/manager/{manager_id}", "get"),
        ("/api/v1/dashboards/admin", "get"),
        ("/api/v1/metrics/daily", "get"),
    ] {
        assert!(
            document.body["paths"][path][method].is_object(),
            "{method} {path}"
        );
    }
    assert!(document.body["components"]["schemas"]["ClientDashboard"].is_object());
    let ui = app.send(Method::GET, "/docs/", None, &[], None).await;
    assert_eq!(ui.status, StatusCode::OK);
    assert!(ui.text.contains("swagger-ui"), "{}", ui.text);
    let asset = app
        .send(Method::GET, "/docs/swagger-ui-bundle.js", None, &[], None)
        .await;
    assert_eq!(asset.status, StatusCode::OK);
}

#[sqlx::test(migrations = "../migrations")]
async fn the_openapi_document_lists_every_route_the_router_serves(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    // Given the router and the document it serves
    let app = TestApp::spawn(db).await;
    let document = app
        .send(Method::GET, "/openapi.json", None, &[], None)
        .await
        .body;
    // When each route's methods are read from the router (the `Allow` of a 405)
    let mut served = BTreeSet::new();
    for path in router_paths(&app.router) {
        let probe = path_params().replace_all(&path, "0190a1b2-0000-7000-8000-000000000001");
        let answer = app.send(Method::TRACE, &probe, None, &[], None).await;
        assert_eq!(
            answer.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "TRACE {path}"
        );
        let allow = answer.headers["allow"].to_str().unwrap().to_lowercase();
        let documented_path = path.replace("{*", "{");
        for method in allow.split(',').map(str::trim).filter(|m| *m != "head") {
            served.insert((documented_path.clone(), method.to_string()));
        }
    }
    let documented: BTreeSet<(String, String)> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| (path.clone(), method.clone()))
        })
        .collect();
    // Then the two lists are the same
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let not_served: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty() && not_served.is_empty(),
        "served, not documented: {undocumented:?}\ndocumented, not served: {not_served:?}"
    );
    assert!(served.len() > 90, "{}", served.len());
    // And operation ids are unique
    let ids: Vec<&str> = document["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .map(|operation| operation["operationId"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>().len(),
        ids.len(),
        "{ids:?}"
    );
    // And every schema the operations refer to is in the document
    let text = document.to_string();
    let refs = Regex::new(r##""\$ref":"#/components/schemas/([^"]+)""##).unwrap();
    for name in refs.captures_iter(&text).map(|c| c[1].to_string()) {
        assert!(
            document["components"]["schemas"][&name].is_object(),
            "missing schema {name}"
        );
    }
}

/// The paths the router matches, as registered (`/api/v1/tenants/{id}`, `/docs/{*rest}`),
/// read from its `Debug` form: axum lists each route's path in its `path_router`; the
/// `fallback_router` after it holds only the catch-all fallback.
fn router_paths(router: &axum::Router) -> BTreeSet<String> {
    let whole = format!("{router:?}");
    let (debug, _fallback) = whole
        .split_once("fallback_router")
        .expect("axum's Router Debug names its fallback_router");
    let route = Regex::new(r#"RouteId\(\d+\): "([^"]+)""#).unwrap();
    let paths: BTreeSet<String> = route
        .captures_iter(debug)
        .map(|c| c[1].to_string())
        .collect();
    assert!(!paths.is_empty(), "no routes in the router's Debug form");
    paths
}

/// A path template's parameters: `{id}`, `{*rest}`.
fn path_params() -> Regex {
    Regex::new(r"\{\*?\w+\}").unwrap()
}
