//! Daily metrics: local days in the business's time zone, late events on the day they
//! happened, percentiles over the samples, grouping.

use axum::http::{Method, StatusCode};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;
use x8_replay::checksum::checksums;
use x8_replay::metrics;
use x8_tests::{telegram, TestApp, TestClock};

fn at(raw: &str) -> DateTime<Utc> {
    raw.parse().unwrap()
}

/// The day of `days` whose `day` (and `group`) match.
fn day<'a>(days: &'a Value, date: &str, group: Option<&str>) -> &'a Value {
    days.as_array()
        .unwrap()
        .iter()
        .find(|d| d["day"] == date && d["group"].as_str() == group)
        .unwrap_or_else(|| panic!("no {date} {group:?} in {days:#}"))
}

#[sqlx::test(migrations = "../migrations")]
async fn daily_metrics_cut_days_in_the_business_zone_and_count_late_messages_on_their_day(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    // Given a business in Johannesburg (UTC+2, no daylight saving) with a Telegram bot
    let bot = telegram::fake_bot_api(200).await;
    let clock = TestClock::at(at("2026-03-10T09:00:00Z"));
    let app = TestApp::spawn_with_clock(db, clock.clone())
        .await
        .with_bot_apis(&bot.uri());
    let (tenant, token) = app.tenant_with_owner("Cafe", "owner@cafe.test").await;
    let company = app.company(&token, tenant).await;
    let channel = app
        .connection_with(&token, company, "telegram", &telegram::credentials())
        .await;
    let zone = app
        .send_json(
            Method::PUT,
            &format!("/api/v1/tenants/{tenant}/time-zone"),
            &token,
            &json!({"time_zone": "africa/johannesburg"}),
        )
        .await;
    assert_eq!(zone.status, StatusCode::OK, "{:?}", zone.body);
    assert_eq!(zone.body["time_zone"], "Africa/Johannesburg");
    let inbound = |update: i64, chat: i64, when: &str, text: &str| {
        telegram::from_chat(telegram::text_at(update, update, at(when), text), chat)
    };
    let receive = |update: Value| {
        let app = &app;
        async move {
            let answer = app
                .telegram_update(channel, Some(telegram::SECRET), &update)
                .await;
            assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
            answer.body["conversation_id"].as_str().unwrap().to_string()
        }
    };
    let reply_at = |conversation: String, when: &str| {
        let (app, token, clock) = (&app, &token, &clock);
        let when = at(when);
        async move {
            clock.set(when);
            let sent = app
                .reply(token, &conversation, json!({"text": "Hi", "type": "TYPE1"}))
                .await;
            assert_eq!(sent.status, StatusCode::CREATED, "{:?}", sent.body);
        }
    };
    // When chat 2 writes at 10:00 and 12:00 UTC and is answered after 60 s and 600 s
    let second = receive(inbound(1, 2, "2026-03-10T10:00:00Z", "Open?")).await;
    reply_at(second.clone(), "2026-03-10T10:01:00Z").await;
    receive(inbound(2, 2, "2026-03-10T12:00:00Z", "Parking?")).await;
    reply_at(second, "2026-03-10T12:10:00Z").await;
    // And chat 1 writes at 23:30 UTC (01:30 the next local day), answered after 120 s
    let first = receive(inbound(3, 1, "2026-03-10T23:30:00Z", "Still open?")).await;
    reply_at(first, "2026-03-10T23:32:00Z").await;
    // And, last, a message from a TikTok ad sent at 21:59 UTC the day before arrives late
    receive(inbound(
        4,
        3,
        "2026-03-09T21:59:00Z",
        "/start tiktok_spring",
    ))
    .await;

    // Then each message counts on its local day
    let path = format!("/api/v1/metrics/daily?tenant_id={tenant}&from=2026-03-09&to=2026-03-11");
    let metrics = app.get_caught_up(&token, &path).await;
    assert_eq!(metrics.status, StatusCode::OK, "{:?}", metrics.body);
    assert_eq!(metrics.body["time_zone"], "Africa/Johannesburg");
    let days = &metrics.body["days"];
    assert_eq!(
        days.as_array().unwrap().len(),
        3,
        "every day listed: {days:#}"
    );
    let late = day(days, "2026-03-09", None);
    assert_eq!(late["messages_in"]["text"], 1);
    assert_eq!(late["conversations_started"], 1);
    assert_eq!(late["first_response_secs"], Value::Null);
    let tenth = day(days, "2026-03-10", None);
    assert_eq!(
        tenth["messages_in"],
        json!({"text": 2, "media": 0, "callback": 0})
    );
    assert_eq!(
        tenth["messages_out"],
        json!({"TYPE1": 2, "TYPE2": 0, "TYPE3": 0})
    );
    assert_eq!(tenth["conversations_started"], 1);
    assert_eq!(tenth["replies"], 2);
    // 60 s and 600 s: mean 330, nearest-rank median 60, p90 600
    assert_eq!(
        tenth["first_response_secs"],
        json!({"count": 2, "avg": 330.0, "p50": 60, "p90": 600})
    );
    assert_eq!(tenth["message_cost_micro_eur"], 2 * 4_500);
    let eleventh = day(days, "2026-03-11", None);
    assert_eq!(eleventh["messages_in"]["text"], 1);
    assert_eq!(eleventh["conversations_started"], 1);
    assert_eq!(
        eleventh["first_response_secs"],
        json!({"count": 1, "avg": 120.0, "p50": 120, "p90": 120})
    );

    // And by lead source, the late TikTok conversation is its own group
    let by_source = app
        .get_caught_up(&token, &format!("{path}&group_by=lead_source"))
        .await;
    let days = &by_source.body["days"];
    assert_eq!(days.as_array().unwrap().len(), 3, "{days:#}");
    assert_eq!(
        day(days, "2026-03-09", Some("tiktok"))["messages_in"]["text"],
        1
    );
    assert_eq!(day(days, "2026-03-10", Some("direct"))["replies"], 2);
    assert_eq!(day(days, "2026-03-11", Some("direct"))["replies"], 1);
    // And by connection, every figure is on the one channel
    let by_channel = app
        .get_caught_up(&token, &format!("{path}&group_by=channel"))
        .await;
    let channel = channel.to_string();
    assert_eq!(
        day(&by_channel.body["days"], "2026-03-10", Some(&channel))["replies"],
        2
    );

    // And an analyst rebuilding the metrics from the events gets the same days in CSV,
    // while the live read models stay as they were
    let live = checksums(&app.store, "all").await.unwrap();
    let out = std::env::temp_dir().join(format!("x8-metrics-{}", Uuid::new_v4()));
    let opts = metrics::Opts {
        from: "2026-03-09".parse().unwrap(),
        to: "2026-03-11".parse().unwrap(),
        out: out.clone(),
        tenant: None,
    };
    let written = metrics::metrics(&app.store, &opts, &|_| {}).await.unwrap();
    assert_eq!(
        (written.businesses, written.days, written.payments),
        (1, 3, 0)
    );
    let mut rows = csv::Reader::from_path(out.join("daily_metrics.csv")).unwrap();
    let rows: Vec<std::collections::HashMap<String, String>> =
        rows.deserialize().map(Result::unwrap).collect();
    let tenth = rows.iter().find(|r| r["day"] == "2026-03-10").unwrap();
    assert_eq!(tenth["tenant_id"], tenant.to_string());
    assert_eq!(tenth["time_zone"], "Africa/Johannesburg");
    for (column, value) in [
        ("messages_in_text", "2"),
        ("messages_out_TYPE1", "2"),
        ("message_cost_micro_eur", "9000"),
        ("conversations_started", "1"),
        ("replies", "2"),
        ("first_response_avg_secs", "330"),
        ("first_response_p50_secs", "60"),
        ("first_response_p90_secs", "600"),
    ] {
        assert_eq!(tenth[column], value, "{column}");
    }
    let late = rows.iter().find(|r| r["day"] == "2026-03-09").unwrap();
    assert_eq!(late["first_response_avg_secs"], "", "no replies that day");
    assert_eq!(checksums(&app.store, "all").await.unwrap(), live);
    // language=PostgreSQL
    let scratch: i64 =
        sqlx::query_scalar("select count(*) from pg_namespace where nspname like 'x8_scratch_%'")
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    assert_eq!(scratch, 0, "the scratch schema is dropped");
    std::fs::remove_dir_all(out).unwrap();
}

#[sqlx::test(migrations = "../migrations")]
async fn bad_metrics_queries_are_400_problems(_: PgPoolOptions, db: PgConnectOptions) {
    let app = TestApp::spawn(db).await;
    let (tenant, token) = app.tenant_with_owner("Cafe", "owner@cafe.test").await;
    for query in [
        format!("tenant_id={tenant}&group_by=weekday"),
        format!("tenant_id={tenant}&from=2026-13-01"),
        format!("tenant_id={tenant}&from=2026-03-02&to=2026-03-01"),
        format!("tenant_id={tenant}&from=2024-01-01&to=2025-06-01"),
        "tenant_id=nope".to_string(),
        String::new(),
    ] {
        app.get_caught_up(&token, &format!("/api/v1/metrics/daily?{query}"))
            .await
            .assert_problem(400, "invalid_query");
    }
    app.get_caught_up(
        &token,
        &format!("/api/v1/metrics/daily?tenant_id={}", Uuid::new_v4()),
    )
    .await
    .assert_problem(404, "not_found");
    let zone = app
        .send_json(
            Method::PUT,
            &format!("/api/v1/tenants/{tenant}/time-zone"),
            &token,
            &json!({"time_zone": "+02:00"}),
        )
        .await;
    zone.assert_problem(400, "invalid_time_zone");
}
