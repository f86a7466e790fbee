//! Bad input of every kind: a 4xx problem+json with a stable code, and no event appended.

use axum::http::Method;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use x8_tests::{TestApp, JWT_SECRET};

/// One bad request: name, method, path, token, headers, body, expected status and code.
type Case<'a> = (
    &'a str,
    Method,
    &'a str,
    Option<&'a str>,
    Vec<(&'a str, &'a str)>,
    Option<String>,
    u16,
    &'a str,
);

#[sqlx::test(migrations = "../migrations")]
async fn bad_requests_are_problems_and_append_nothing(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let app = TestApp::spawn(connect).await;
    let admin = app.admin().await;
    let (tenant, owner) = app.tenant_with_owner("Shop", "s@x8.test").await;
    let manager_path = format!("/api/v1/tenants/{tenant}/manager");
    let tenant_path = format!("/api/v1/tenants/{tenant}");
    let before = app.event_count().await;
    let expired = jsonwebtoken::encode(
        &Header::default(),
        &json!({"sub": uuid::Uuid::new_v4(), "role": "ADMIN", "typ": "access", "iat": 1, "exp": 2, "jti": uuid::Uuid::new_v4()}),
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();
    let forged = jsonwebtoken::encode(
        &Header::default(),
        &json!({"sub": uuid::Uuid::new_v4(), "role": "ADMIN", "typ": "access", "iat": 1, "exp": 4_000_000_000i64, "jti": uuid::Uuid::new_v4()}),
        &EncodingKey::from_secret(b"not-the-secret-not-the-secret-not-the-secret"),
    )
    .unwrap();
    let huge = json!({"name": "x".repeat(1024 * 1024 + 10), "owner_email": "h@x8.test", "owner_password": "p"}).to_string();

    let cases: Vec<Case> = vec![
        ("malformed JSON", Method::POST, "/api/v1/tenants", None, vec![], Some("{\"name\": ".into()), 400, "invalid_body"),
        ("unknown field", Method::POST, "/api/v1/tenants", None, vec![],
            Some(json!({"name": "N", "owner_email": "n@x8.test", "owner_password": "long enough", "plan": "GROWTH"}).to_string()), 400, "invalid_body"),
        ("missing field", Method::POST, "/api/v1/tenants", None, vec![], Some(json!({"name": "N"}).to_string()), 400, "invalid_body"),
        ("wrong type", Method::POST, "/api/v1/tenants", None, vec![],
            Some(json!({"name": 7, "owner_email": "n@x8.test", "owner_password": "long enough"}).to_string()), 400, "invalid_body"),
        ("body over 1 MiB", Method::POST, "/api/v1/tenants", None, vec![], Some(huge), 413, "payload_too_large"),
        ("bad e-mail", Method::POST, "/api/v1/tenants", None, vec![],
            Some(json!({"name": "N", "owner_email": "not-an-email", "owner_password": "long enough"}).to_string()), 422, "invalid_email"),
        ("short password", Method::POST, "/api/v1/tenants", None, vec![],
            Some(json!({"name": "N", "owner_email": "n@x8.test", "owner_password": "short"}).to_string()), 422, "invalid_password"),
        ("blank name", Method::POST, "/api/v1/tenants", None, vec![],
            Some(json!({"name": "  ", "owner_email": "n2@x8.test", "owner_password": "long enough"}).to_string()), 422, "invalid_name"),
        ("taken e-mail", Method::POST, "/api/v1/tenants", None, vec![],
            Some(json!({"name": "N", "owner_email": "s@x8.test", "owner_password": "long enough"}).to_string()), 409, "email_taken"),
        ("bad idempotency key", Method::POST, "/api/v1/tenants", None, vec![("idempotency-key", "")],
            Some(json!({"name": "N", "owner_email": "n3@x8.test", "owner_password": "long enough"}).to_string()), 400, "invalid_idempotency_key"),
        ("missing token", Method::PUT, &manager_path, None, vec![], Some(json!({"manager_id": tenant}).to_string()), 401, "unauthorized"),
        ("expired token", Method::PUT, &manager_path, Some(&expired), vec![], Some(json!({"manager_id": tenant}).to_string()), 401, "unauthorized"),
        ("forged token", Method::PUT, &manager_path, Some(&forged), vec![], Some(json!({"manager_id": tenant}).to_string()), 401, "unauthorized"),
        ("garbage token", Method::PUT, &manager_path, Some("garbage"), vec![], Some(json!({"manager_id": tenant}).to_string()), 401, "unauthorized"),
        ("client assigning", Method::PUT, &manager_path, Some(&owner), vec![], Some(json!({"manager_id": tenant}).to_string()), 403, "forbidden"),
        ("manager id not a uuid", Method::PUT, &manager_path, Some(&admin), vec![], Some(json!({"manager_id": "abc"}).to_string()), 400, "invalid_body"),
        ("unknown tenant", Method::PUT, "/api/v1/tenants/00000000-0000-0000-0000-000000000001/manager", Some(&admin), vec![],
            Some(json!({"manager_id": tenant}).to_string()), 422, "not_a_manager"),
        ("tenant id not a uuid", Method::GET, "/api/v1/tenants/nope", Some(&admin), vec![], None, 404, "not_found"),
        ("bad min position", Method::GET, &tenant_path, Some(&admin), vec![("x-min-position", "-3")], None, 400, "invalid_min_position"),
        ("unknown route", Method::GET, "/api/v1/nothing", None, vec![], None, 404, "not_found"),
    ];

    for (name, method, path, token, headers, body, status, code) in cases {
        let response = app.send(method, path, token, &headers, body).await;
        assert_eq!(
            response.status.as_u16(),
            status,
            "{name}: {:?}",
            response.body
        );
        response.assert_problem(status, code);
    }
    let text_body = app
        .send(
            Method::POST,
            "/api/v1/tenants",
            None,
            &[("content-type", "text/plain")],
            None,
        )
        .await;
    text_body.assert_problem(415, "unsupported_media_type");
    assert_eq!(app.event_count().await, before, "bad input appended events");
}
