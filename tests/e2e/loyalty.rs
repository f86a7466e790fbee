//! The loyalty program over HTTP against the real PostgreSQL: cashback rounding, the
//! balance that never goes negative under concurrent redemptions (also from a second
//! process's command buses), idempotent references, refunds after spending, referrals,
//! expiry through the deadline runner, NPS, promotions and the services moderation queue.

use axum::http::{Method, StatusCode};
use chrono::{DateTime, Duration, TimeZone, Utc};
use futures::future::join_all;
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::sync::Arc;
use uuid::Uuid;
use x8_commands::loyalty as ops;
use x8_commands::{CommandContext, CommandError, Commands};
use x8_domain::loyalty::{LoyaltyError, LoyaltyEvent};
use x8_domain::TenantId;
use x8_eventstore::Actor;
use x8_tests::{TestApp, TestClock, TestResponse, MASTER_KEY};

fn day(n: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_760_000_000, 0).single().unwrap() + Duration::days(n)
}

/// A business with its owner's token, on a clock standing at day 0.
struct Business {
    app: TestApp,
    clock: Arc<TestClock>,
    tenant: Uuid,
    token: String,
}

impl Business {
    async fn new(db: PgConnectOptions, settings: Value) -> Self {
        let clock = TestClock::at(day(0));
        let app = TestApp::spawn_with_clock(db, clock.clone()).await;
        let (tenant, token) = app.tenant_with_owner("Cafe", "owner@cafe.test").await;
        let business = Self {
            app,
            clock,
            tenant,
            token,
        };
        let response = business.configure(settings).await;
        assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
        business
    }

    async fn configure(&self, settings: Value) -> TestResponse {
        let path = format!("/api/v1/tenants/{}/loyalty/settings", self.tenant);
        self.app
            .send_json(Method::PUT, &path, &self.token, &settings)
            .await
    }

    async fn post(&self, path: &str, body: Value) -> TestResponse {
        self.app
            .send_json(Method::POST, path, &self.token, &body)
            .await
    }

    async fn open(&self, customer_ref: &str, code: Option<&str>) -> TestResponse {
        let mut body = json!({ "customer_ref": customer_ref });
        if let Some(code) = code {
            body["referral_code"] = json!(code);
        }
        self.post(
            &format!("/api/v1/tenants/{}/loyalty/accounts", self.tenant),
            body,
        )
        .await
    }

    /// Opens an account; returns `(account_id, referral_code)`.
    async fn account(&self, customer_ref: &str, code: Option<&str>) -> (Uuid, String) {
        let response = self.open(customer_ref, code).await;
        assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
        (
            response.body["account_id"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap(),
            response.body["referral_code"].as_str().unwrap().to_string(),
        )
    }

    async fn purchase(&self, account: Uuid, amount_minor: i64, reference: &str) -> TestResponse {
        self.post(
            &format!("/api/v1/loyalty/accounts/{account}/purchases"),
            json!({ "amount_minor": amount_minor, "currency": "EUR", "reference": reference }),
        )
        .await
    }

    async fn redeem(&self, account: Uuid, points: i64, reference: &str) -> TestResponse {
        self.post(
            &format!("/api/v1/loyalty/accounts/{account}/redemptions"),
            json!({ "points": points, "reference": reference }),
        )
        .await
    }

    async fn refund(&self, account: Uuid, reference: &str) -> TestResponse {
        self.post(
            &format!("/api/v1/loyalty/accounts/{account}/refunds"),
            json!({ "purchase_reference": reference }),
        )
        .await
    }

    async fn view(&self, account: Uuid) -> Value {
        let response = self
            .app
            .get_caught_up(&self.token, &format!("/api/v1/loyalty/accounts/{account}"))
            .await;
        assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
        response.body
    }

    async fn stats(&self) -> Value {
        let path = format!("/api/v1/tenants/{}/loyalty/stats", self.tenant);
        let response = self.app.get_caught_up(&self.token, &path).await;
        assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
        response.body
    }

    /// Running balances of the account replayed from its events in the log.
    async fn replayed_balances(&self, account: Uuid) -> Vec<i64> {
        let payloads: Vec<Value> = sqlx::query_scalar(
            "select payload from events where aggregate_type = 'loyalty_account'
               and aggregate_id = $1 order by sequence",
        )
        .bind(account.to_string())
        .fetch_all(self.app.store.pool())
        .await
        .unwrap();
        let mut balance = 0;
        payloads
            .into_iter()
            .map(|payload| {
                balance += match serde_json::from_value(payload).unwrap() {
                    LoyaltyEvent::PointsGranted { points, .. }
                    | LoyaltyEvent::PurchaseAccrued { points, .. } => points,
                    LoyaltyEvent::PointsRedeemed { points, .. }
                    | LoyaltyEvent::PointsExpired { points, .. } => -points,
                    LoyaltyEvent::PurchaseReversed {
                        points_reversed, ..
                    } => -points_reversed,
                    _ => 0,
                };
                balance
            })
            .collect()
    }

    async fn count(&self, event_type: &str, account: Uuid) -> usize {
        self.app
            .stream_event_types("loyalty_account", account)
            .await
            .iter()
            .filter(|t| *t == event_type)
            .count()
    }
}

fn points(response: &TestResponse) -> i64 {
    assert!(response.status.is_success(), "{:?}", response.body);
    response.body["points"].as_i64().unwrap()
}

fn balance(response: &TestResponse) -> i64 {
    assert!(response.status.is_success(), "{:?}", response.body);
    response.body["balance"].as_i64().unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn cashback_is_one_point_per_whole_currency_unit_rounded_down(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    // Given the default 5 % and an account without a welcome bonus
    let business = Business::new(db, json!({})).await;
    let (account, _) = business.account("c-1", None).await;
    // When purchases land on each side of a whole unit of cashback, then
    for (amount, expected) in [
        (1_999, 0),
        (2_000, 1),
        (3_999, 1),
        (4_000, 2),
        (100_000, 50),
    ] {
        let response = business
            .purchase(account, amount, &format!("p-{amount}"))
            .await;
        assert_eq!(response.status, StatusCode::CREATED);
        assert_eq!(points(&response), expected, "{amount} minor units at 5 %");
    }
    // Given 2.5 %: 39.99 → 0.99975 → 0 points; 40.00 → 1 point
    business.configure(json!({ "cashback_bps": 250 })).await;
    assert_eq!(points(&business.purchase(account, 3_999, "q-1").await), 0);
    assert_eq!(points(&business.purchase(account, 4_000, "q-2").await), 1);
    let view = business.view(account).await;
    assert_eq!(view["balance"], json!(1 + 1 + 2 + 50 + 1));
    assert_eq!(
        view["history"].as_array().unwrap().len(),
        7,
        "zero-point purchases count"
    );
    let stats = business.stats().await;
    assert_eq!(
        stats["turnover"],
        json!([{ "currency": "EUR", "purchases": 7,
                  "purchases_minor": 1_999 + 2_000 + 3_999 + 4_000 + 100_000 + 3_999 + 4_000,
                  "refunded_minor": 0,
                  "net_minor": 1_999 + 2_000 + 3_999 + 4_000 + 100_000 + 3_999 + 4_000 }])
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn the_welcome_bonus_is_granted_once_and_registering_again_is_safe(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    // Given a welcome bonus of 100
    let business = Business::new(db, json!({ "welcome_bonus_points": 100 })).await;
    // When a customer registers, then it has the bonus
    let first = business.open(" c-1 ", None).await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(balance(&first), 100);
    // When it registers again (twice, concurrently), then it is the same account, no bonus
    let again = join_all([business.open("c-1", None), business.open("c-1", None)]).await;
    for response in again {
        assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
        assert_eq!(response.body["account_id"], first.body["account_id"]);
        assert_eq!(response.body["referral_code"], first.body["referral_code"]);
        assert_eq!(balance(&response), 100);
    }
    let account = first.body["account_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(business.count("PointsGranted", account).await, 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_hundred_concurrent_redemptions_of_30_from_1000_leave_exactly_10(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    // Given a balance of 1,000
    let business = Business::new(db, json!({ "welcome_bonus_points": 1000 })).await;
    let (account, _) = business.account("hot", None).await;
    // and a second server's command buses on the same database (their own caches)
    let other = Commands::new(
        &business.app.store,
        business.clock.clone(),
        x8_commands::vault::MasterKey::from_base64(MASTER_KEY).unwrap(),
    );
    let tenant = TenantId(business.tenant);

    // When 100 redemptions of 30 run at once, half over HTTP, half on the other server
    let over_http = (0..50).map(|i| {
        let business = &business;
        async move {
            let response = business.redeem(account, 30, &format!("r-{i}")).await;
            match response.status {
                StatusCode::CREATED => true,
                _ => {
                    response.assert_problem(409, "insufficient_points");
                    assert!(response.body["balance"].as_i64().unwrap() < 30);
                    assert_eq!(response.body["requested"], json!(30));
                    false
                }
            }
        }
    });
    let on_other = (50..100).map(|i| {
        let other = &other;
        async move {
            let ctx = CommandContext::new(Actor::System);
            let reference = format!("r-{i}");
            match ops::redeem(other, tenant, account, 30, &reference, &ctx).await {
                Ok(_) => true,
                Err(CommandError::Rejected(ops::LoyaltyOpError::Account(
                    LoyaltyError::InsufficientPoints { balance, .. },
                ))) => {
                    assert!(balance < 30);
                    false
                }
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
    });
    let (a, b) = futures::future::join(join_all(over_http), join_all(on_other)).await;
    let succeeded = a.iter().chain(&b).filter(|ok| **ok).count();

    // Then exactly 33 succeed, 10 points are left, and no moment of history was negative
    assert_eq!(succeeded, 33);
    assert_eq!(business.count("PointsRedeemed", account).await, 33);
    let balances = business.replayed_balances(account).await;
    assert_eq!(balances.last(), Some(&10));
    assert!(balances.iter().all(|b| *b >= 0), "{balances:?}");
    assert_eq!(business.view(account).await["balance"], json!(10));
}

/// Concurrent redemptions of 1 point from one account in this process, each with its own
/// context, and how many were accepted.
async fn redeem_at_once(
    business: &Business,
    account: Uuid,
    contexts: Vec<(String, CommandContext)>,
) -> Vec<Result<ops::AccountChange, CommandError<ops::LoyaltyOpError>>> {
    let commands = &business.app.state.commands;
    let tenant = TenantId(business.tenant);
    join_all(contexts.iter().map(|(reference, ctx)| async move {
        ops::redeem(commands, tenant, account, 1, reference, ctx).await
    }))
    .await
}

/// How many redemptions of the account have an idempotency record, asserting each names
/// exactly its own event (first and last position, one event).
async fn redemption_records(business: &Business, account: Uuid) -> usize {
    let records: Vec<(i64, i64, i32, i64)> = sqlx::query_as(
        "select c.first_position, c.last_position, c.event_count, e.global_position
         from events e join commands c on c.command_id = (e.metadata->>'command_id')::uuid
         where e.aggregate_type = 'loyalty_account' and e.aggregate_id = $1
           and e.event_type = 'PointsRedeemed'",
    )
    .bind(account.to_string())
    .fetch_all(business.app.store.pool())
    .await
    .unwrap();
    for (first, last, count, position) in &records {
        assert_eq!((first, last, *count), (position, position, 1));
    }
    records.len()
}

#[sqlx::test(migrations = "../migrations")]
async fn redemptions_queued_on_one_account_are_appended_in_groups_each_with_its_own_record(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    // Given a balance of 1,000
    let business = Business::new(db, json!({ "welcome_bonus_points": 1000 })).await;
    let (account, _) = business.account("hot", None).await;

    // When 300 redemptions of 1 point run at once
    let contexts = (0..300)
        .map(|i| (format!("g-{i}"), CommandContext::new(Actor::System)))
        .collect();
    let results = redeem_at_once(&business, account, contexts).await;

    // Then every one is accepted with its own position, and the balance is 700
    let mut positions: Vec<i64> = results
        .iter()
        .map(|r| r.as_ref().expect("accepted").position)
        .collect();
    positions.sort_unstable();
    positions.dedup();
    assert_eq!(positions.len(), 300);
    assert_eq!(business.replayed_balances(account).await.last(), Some(&700));
    assert_eq!(business.view(account).await["balance"], json!(700));
    // and each command has its own idempotency record, naming exactly its event
    assert_eq!(redemption_records(&business, account).await, 300);
    // and they were committed in groups: fewer transactions than commands
    let (events, transactions): (i64, i64) = sqlx::query_as(
        "select count(*), count(distinct transaction_id) from events
         where aggregate_type = 'loyalty_account' and aggregate_id = $1
           and event_type = 'PointsRedeemed'",
    )
    .bind(account.to_string())
    .fetch_one(business.app.store.pool())
    .await
    .unwrap();
    assert_eq!(events, 300);
    assert!(
        transactions < 300,
        "{transactions} transactions for 300 commands"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn callers_that_go_away_mid_group_leave_the_others_answered_and_nothing_lost(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    // Given a balance of 1,000, and appends held up by a lock on the idempotency records
    let business = Business::new(db, json!({ "welcome_bonus_points": 1000 })).await;
    let (account, _) = business.account("hot", None).await;
    let tenant = TenantId(business.tenant);
    let mut lock = business.app.store.pool().begin().await.unwrap();
    sqlx::query("lock table commands in exclusive mode")
        .execute(&mut *lock)
        .await
        .unwrap();
    let redeem = |reference: String| {
        let commands = business.app.state.commands.clone();
        tokio::spawn(async move {
            let ctx = CommandContext::new(Actor::System);
            ops::redeem(&commands, tenant, account, 1, &reference, &ctx).await
        })
    };
    let pause = || tokio::time::sleep(std::time::Duration::from_millis(150));
    // and a redemption executing (its append waiting), one caller next in turn and 30
    // queued behind it
    let first = redeem("first".into());
    pause().await;
    let leader = redeem("leader".into());
    pause().await;
    let queued: Vec<_> = (0..30).map(|i| redeem(format!("q-{i}"))).collect();
    pause().await;

    // When the first caller goes away, the next one takes the 31 queued commands as a
    // group and waits on its append, and then goes away too
    first.abort();
    pause().await;
    leader.abort();
    pause().await;
    lock.commit().await.unwrap();

    // Then every queued caller is answered with an acceptance
    for task in queued {
        task.await.unwrap().expect("accepted");
    }
    // and the balance is the bonus less every recorded redemption, each recorded once
    let redeemed = redemption_records(&business, account).await;
    assert!((30..=32).contains(&redeemed), "{redeemed}");
    let balances = business.replayed_balances(account).await;
    assert_eq!(balances.last(), Some(&(1000 - redeemed as i64)));
    assert_eq!(business.count("PointsRedeemed", account).await, redeemed);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_group_stops_at_a_refusal_and_a_reused_key_sends_its_group_back_to_run_alone(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    // Given a balance of 20 and a redemption already made under client key "k"
    let business = Business::new(db, json!({ "welcome_bonus_points": 20 })).await;
    let (account, _) = business.account("hot", None).await;
    let keyed = |reference: &str| {
        (
            reference.to_string(),
            CommandContext::new(Actor::System).with_idempotency_key("client", "k"),
        )
    };
    let first = redeem_at_once(&business, account, vec![keyed("k-1")]).await;
    assert!(first[0].is_ok());

    // When 40 redemptions of 1 run at once, one of them reusing key "k" for another
    // reference (its group's append collides on the record)
    let mut contexts: Vec<_> = (0..40)
        .map(|i| (format!("g-{i}"), CommandContext::new(Actor::System)))
        .collect();
    contexts.insert(3, keyed("k-2"));
    let results = redeem_at_once(&business, account, contexts).await;

    // Then the reused key is refused as such, 19 of the others are accepted (the balance
    // after the first), the rest refused for lack of points, and nothing went negative
    assert!(matches!(
        results[3],
        Err(CommandError::IdempotencyKeyReused)
    ));
    let accepted = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(accepted, 19);
    for result in &results {
        match result {
            Ok(_) | Err(CommandError::IdempotencyKeyReused) => {}
            Err(CommandError::Rejected(ops::LoyaltyOpError::Account(
                LoyaltyError::InsufficientPoints { balance: 0, .. },
            ))) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    let balances = business.replayed_balances(account).await;
    assert_eq!(balances.last(), Some(&0));
    assert!(balances.iter().all(|b| *b >= 0), "{balances:?}");
    assert_eq!(redemption_records(&business, account).await, 20);
}

#[sqlx::test(migrations = "../migrations")]
async fn the_same_purchase_reference_posted_ten_times_at_once_accrues_once(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    // Given an account
    let business = Business::new(db, json!({})).await;
    let (account, _) = business.account("c-1", None).await;
    // When one purchase is posted 10 times concurrently
    let responses =
        join_all((0..10).map(|_| business.purchase(account, 100_000, "order-77"))).await;
    // Then one accrual: one 201, nine replays with the same points and balance
    let created = responses
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1);
    for response in &responses {
        assert_eq!(points(response), 50);
        assert_eq!(balance(response), 50);
    }
    assert_eq!(business.count("PurchaseAccrued", account).await, 1);
    // And the same reference with another amount is refused, changing nothing
    let reused = business.purchase(account, 5_000, "order-77").await;
    reused.assert_problem(409, "reference_reused");
    assert_eq!(business.count("PurchaseAccrued", account).await, 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_refund_after_spending_reverses_what_is_left_and_records_the_shortfall(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    // Given 50 points from a purchase of 1,000.00, 30 of them spent
    let business = Business::new(db, json!({})).await;
    let (account, _) = business.account("c-1", None).await;
    business.purchase(account, 100_000, "order-1").await;
    assert_eq!(balance(&business.redeem(account, 30, "spend-1").await), 20);
    // When the purchase is refunded
    let refund = business.refund(account, "order-1").await;
    // Then only the 20 left are reversed, the 30 spent are the shortfall, balance 0
    assert_eq!(refund.status, StatusCode::CREATED, "{:?}", refund.body);
    assert_eq!(refund.body["points_reversed"], json!(20));
    assert_eq!(refund.body["shortfall"], json!(30));
    assert_eq!(balance(&refund), 0);
    // And refunding again changes nothing
    let again = business.refund(account, "order-1").await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["points_reversed"], json!(20));
    assert_eq!(business.count("PurchaseReversed", account).await, 1);
    // And an unknown purchase is refused
    business
        .refund(account, "order-404")
        .await
        .assert_problem(422, "unknown_purchase");
    assert!(business
        .replayed_balances(account)
        .await
        .iter()
        .all(|b| *b >= 0));
    let view = business.view(account).await;
    assert_eq!(view["history"][0]["kind"], json!("reversal"));
    assert_eq!(view["history"][0]["shortfall"], json!(30));
    assert_eq!(view["history"][0]["points"], json!(-20));
    let stats = business.stats().await;
    assert_eq!(stats["turnover"][0]["refunded_minor"], json!(100_000));
    assert_eq!(stats["turnover"][0]["net_minor"], json!(0));
    assert_eq!(
        stats["points"],
        json!({ "issued": 50, "redeemed": 30, "expired": 0, "reversed": 20, "outstanding": 0 })
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_referral_rewards_both_sides_once_and_a_customer_is_referred_at_most_once(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    // Given welcome 10, referrer 50, referred 25
    let settings = json!({ "welcome_bonus_points": 10, "referrer_reward_points": 50,
                           "referred_reward_points": 25 });
    let business = Business::new(db, settings).await;
    let (alice, alice_code) = business.account("alice", None).await;
    // When Bob registers with Alice's code (typed in lower case)
    let bob = business
        .open("bob", Some(&format!(" {} ", alice_code.to_lowercase())))
        .await;
    // Then Bob has welcome + referred, Alice welcome + referrer
    assert_eq!(bob.status, StatusCode::CREATED, "{:?}", bob.body);
    assert_eq!(balance(&bob), 35);
    assert_eq!(business.view(alice).await["balance"], json!(60));
    // When Bob registers again with the same code, then nothing more is granted
    assert_eq!(
        business.open("bob", Some(&alice_code)).await.status,
        StatusCode::OK
    );
    assert_eq!(business.view(alice).await["balance"], json!(60));
    // When a registered customer (with or without a referral) tries another code: refused
    let (_, carol_code) = business.account("carol", None).await;
    business
        .open("bob", Some(&carol_code))
        .await
        .assert_problem(409, "already_registered");
    business
        .open("carol", Some(&alice_code))
        .await
        .assert_problem(409, "already_registered");
    // When Alice uses her own code: refused
    business
        .open("alice", Some(&alice_code))
        .await
        .assert_problem(422, "self_referral");
    // When the code does not exist: refused, nothing appended
    let before = business.app.event_count().await;
    business
        .open("dave", Some("ZZZZZZZZ"))
        .await
        .assert_problem(422, "unknown_referral_code");
    assert_eq!(business.app.event_count().await, before);
    // Then the rewards were granted once each
    assert_eq!(business.view(alice).await["balance"], json!(60));
    let stats = business.stats().await;
    assert_eq!(stats["customers"], json!(3));
    assert_eq!(stats["referred_customers"], json!(1));
    assert_eq!(stats["points"]["issued"], json!(10 + 50 + 10 + 25 + 10));
}

#[sqlx::test(migrations = "../migrations")]
async fn points_expire_when_their_transfer_expires_once(_: PgPoolOptions, db: PgConnectOptions) {
    // Given a 30-day expiry, a welcome bonus of 100 on day 0 and purchases on days 0 and 10
    let business = Business::new(
        db,
        json!({ "welcome_bonus_points": 100, "expiry_days": 30 }),
    )
    .await;
    let (account, _) = business.account("c-1", None).await;
    business.purchase(account, 40_000, "p-1").await;
    business.clock.advance(Duration::days(10));
    business.purchase(account, 40_000, "p-2").await;
    assert_eq!(business.view(account).await["balance"], json!(140));
    // When day 31 comes and the deadlines run (twice)
    business.clock.advance(Duration::days(21));
    let position = business.app.max_position().await;
    business
        .app
        .state
        .wait_for(x8_projections::deadlines::NAME, position)
        .await
        .unwrap();
    business.app.deadlines().run_due(10).await.unwrap();
    assert_eq!(business.app.deadlines().run_due(10).await.unwrap().done, 0);
    let expiries: Vec<(String, String)> = sqlx::query_as(
        "select status, aggregate_id from deadlines where kind = 'loyalty.expire_points'
         order by due_at",
    )
    .fetch_all(business.app.store.pool())
    .await
    .unwrap();
    let done = expiries
        .iter()
        .filter(|(status, _)| status == "done")
        .count();
    assert_eq!(
        done, 2,
        "the welcome bonus's and the first purchase's: {expiries:?}"
    );
    assert_eq!(expiries.len(), 3, "the second purchase's is pending");
    // Then what was left of the day-0 transfers expired, once; the day-10 purchase stays
    let view = business.view(account).await;
    assert_eq!(view["balance"], json!(20));
    assert_eq!(business.count("PointsExpired", account).await, 2);
    assert_eq!(business.stats().await["points"]["expired"], json!(120));
    // And expired points cannot be spent
    business
        .redeem(account, 21, "too-much")
        .await
        .assert_problem(409, "insufficient_points");
}

#[sqlx::test(migrations = "../migrations")]
async fn nps_counts_each_customers_latest_rating(_: PgPoolOptions, db: PgConnectOptions) {
    let business = Business::new(db, json!({})).await;
    let mut accounts = vec![];
    for customer in ["a", "b", "c", "d"] {
        accounts.push(business.account(customer, None).await.0);
    }
    // Given ratings 10; 9 then 3; 7; and no rating
    for (account, score) in [
        (accounts[0], 10),
        (accounts[1], 9),
        (accounts[1], 3),
        (accounts[2], 7),
    ] {
        let path = format!("/api/v1/loyalty/accounts/{account}/nps");
        let response = business.post(&path, json!({ "score": score })).await;
        assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    }
    let path = format!("/api/v1/loyalty/accounts/{}/nps", accounts[3]);
    business
        .post(&path, json!({ "score": 11 }))
        .await
        .assert_problem(422, "invalid_score");
    // Then 1 promoter, 1 passive, 1 detractor of 3 ratings: 33.3 % − 33.3 % = 0
    let nps = &business.stats().await["nps"];
    assert_eq!(
        nps,
        &json!({ "score": 0.0, "promoters": 1, "passives": 1, "detractors": 1, "ratings": 3 })
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn promotions_and_the_services_moderation_queue(_: PgPoolOptions, db: PgConnectOptions) {
    let business = Business::new(db, json!({})).await;
    let tenant = business.tenant;
    let promotions = format!("/api/v1/tenants/{tenant}/loyalty/promotions");
    // Promotions: created, listed, removed
    let created = business
        .post(
            &promotions,
            json!({ "title": "Double points", "valid_from": day(1), "valid_until": day(8),
                    "per_customer_limit": 1 }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let promotion = created.body["promotion_id"].as_str().unwrap().to_string();
    business
        .post(
            &promotions,
            json!({ "title": "Backwards", "valid_from": day(8), "valid_until": day(1) }),
        )
        .await
        .assert_problem(422, "invalid_promotion");
    let listed = business
        .app
        .get_caught_up(&business.token, &promotions)
        .await;
    assert_eq!(
        listed.body["promotions"][0]["title"],
        json!("Double points")
    );
    let removed = business
        .app
        .send(
            Method::DELETE,
            &format!("{promotions}/{promotion}"),
            Some(&business.token),
            &[],
            None,
        )
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{:?}", removed.body);
    let listed = business
        .app
        .get_caught_up(&business.token, &promotions)
        .await;
    assert_eq!(listed.body["promotions"], json!([]));

    // Services: submitted, rejected with a reason, resubmitted, approved
    let services = format!("/api/v1/tenants/{tenant}/loyalty/services");
    let submitted = business
        .post(
            &services,
            json!({ "title": "Free delivery", "description": "Within 5 km" }),
        )
        .await;
    assert_eq!(
        submitted.status,
        StatusCode::CREATED,
        "{:?}",
        submitted.body
    );
    let service = submitted.body["service_id"].as_str().unwrap().to_string();
    let admin = business.app.admin().await;
    let queue = business
        .app
        .get_caught_up(&admin, "/api/v1/admin/services")
        .await;
    assert_eq!(queue.body["services"][0]["service_id"], json!(service));
    business
        .app
        .get_caught_up(&business.token, "/api/v1/admin/services")
        .await
        .assert_problem(403, "forbidden");
    let reject = format!("/api/v1/admin/services/{service}/reject");
    let rejected = business
        .app
        .send_json(
            Method::POST,
            &reject,
            &admin,
            &json!({ "reason": "Too vague" }),
        )
        .await;
    assert_eq!(rejected.status, StatusCode::OK, "{:?}", rejected.body);
    let mine = business.app.get_caught_up(&business.token, &services).await;
    assert_eq!(mine.body["services"][0]["status"], json!("rejected"));
    assert_eq!(
        mine.body["services"][0]["rejection_reason"],
        json!("Too vague")
    );
    let approve = format!("/api/v1/admin/services/{service}/approve");
    business
        .app
        .send(Method::POST, &approve, Some(&admin), &[], None)
        .await
        .assert_problem(409, "wrong_moderation_status");
    let resubmitted = business
        .app
        .send_json(
            Method::PUT,
            &format!("{services}/{service}"),
            &business.token,
            &json!({ "title": "Free delivery", "description": "Within 5 km of the cafe" }),
        )
        .await;
    assert_eq!(
        resubmitted.status,
        StatusCode::CREATED,
        "{:?}",
        resubmitted.body
    );
    let approved = business
        .app
        .send(Method::POST, &approve, Some(&admin), &[], None)
        .await;
    assert_eq!(approved.status, StatusCode::OK, "{:?}", approved.body);
    let queue = business
        .app
        .get_caught_up(&admin, "/api/v1/admin/services")
        .await;
    assert_eq!(queue.body["services"], json!([]));
}

#[sqlx::test(migrations = "../migrations")]
async fn bad_input_and_other_tenants_change_nothing(_: PgPoolOptions, db: PgConnectOptions) {
    let business = Business::new(db, json!({ "welcome_bonus_points": 5 })).await;
    let (account, _) = business.account("c-1", None).await;
    let (_, stranger) = business
        .app
        .tenant_with_owner("Other", "owner@other.test")
        .await;
    let before = business.app.event_count().await;
    let redemptions = format!("/api/v1/loyalty/accounts/{account}/redemptions");
    // Malformed JSON, unknown fields, wrong types
    let malformed = business
        .app
        .send(
            Method::POST,
            &redemptions,
            Some(&business.token),
            &[],
            Some("{".into()),
        )
        .await;
    malformed.assert_problem(400, "invalid_body");
    business
        .post(
            &redemptions,
            json!({ "points": 1, "reference": "r", "extra": 1 }),
        )
        .await
        .assert_problem(400, "invalid_body");
    // Invalid values
    business
        .redeem(account, 0, "r-0")
        .await
        .assert_problem(422, "invalid_points");
    business
        .redeem(account, 1, "  ")
        .await
        .assert_problem(422, "invalid_field");
    business
        .purchase(account, -100, "p-neg")
        .await
        .assert_problem(422, "invalid_amount");
    let bad_currency = business
        .post(
            &format!("/api/v1/loyalty/accounts/{account}/purchases"),
            json!({ "amount_minor": 100, "currency": "EURO", "reference": "p" }),
        )
        .await;
    bad_currency.assert_problem(422, "invalid_amount");
    business
        .configure(json!({ "cashback_bps": 10_001 }))
        .await
        .assert_problem(422, "invalid_settings");
    // Another business's token: the account and the business do not exist for it
    business
        .app
        .send_json(
            Method::POST,
            &redemptions,
            &stranger,
            &json!({ "points": 1, "reference": "r-x" }),
        )
        .await
        .assert_problem(404, "not_found");
    business
        .app
        .get_caught_up(&stranger, &format!("/api/v1/loyalty/accounts/{account}"))
        .await
        .assert_problem(404, "not_found");
    business
        .app
        .get_caught_up(
            &stranger,
            &format!("/api/v1/tenants/{}/loyalty/stats", business.tenant),
        )
        .await
        .assert_problem(404, "not_found");
    let unknown = Uuid::new_v4();
    business
        .redeem(unknown, 1, "r")
        .await
        .assert_problem(404, "not_found");
    assert_eq!(business.app.event_count().await, before);
}

#[sqlx::test(migrations = "../migrations")]
async fn an_account_s_state_replays_as_of_a_version_or_a_time(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    use x8_replay::state::{state_at, AsOf};
    // Given an account that earned on a purchase and then redeemed
    let business = Business::new(db, json!({ "welcome_bonus_points": 100 })).await;
    let (account, _) = business.account("c-1", None).await;
    let id = account.to_string();
    assert_eq!(business.purchase(account, 5_000, "p-1").await.status, 201);
    let store = &business.app.store;
    let before_redemption = state_at(store, "loyalty_account", &id, None, None)
        .await
        .unwrap();
    assert_eq!(business.redeem(account, 30, "r-1").await.status, 201);

    // When the state is asked as of the version before the redemption, then it has not
    // redeemed yet, and equals the state read at that time
    let vault = &business.app.state.commands.vault;
    let version = before_redemption.version;
    let at_version = state_at(
        store,
        "loyalty_account",
        &id,
        Some(AsOf::Version(version)),
        Some(vault),
    )
    .await
    .unwrap();
    assert_eq!(at_version.version, version);
    assert_eq!(at_version.state["redemptions"], json!({}));
    assert_eq!(
        at_version.state["customer_ref"], "c-1",
        "opened with the key"
    );
    assert!(at_version.violations.is_empty());
    let at_time = state_at(
        store,
        "loyalty_account",
        &id,
        Some(AsOf::Time(before_redemption.last_event_at)),
        None,
    )
    .await
    .unwrap();
    assert_eq!(at_time.version, version);
    assert_eq!(at_time.state["transfers"], at_version.state["transfers"]);
    assert_eq!(at_time.state["customer_ref"], "[sealed]", "no key given");

    // And now it has redeemed
    let now = state_at(store, "loyalty_account", &id, None, None)
        .await
        .unwrap();
    assert!(now.version > version);
    assert_eq!(now.state["redemptions"]["r-1"], 30);

    // And a moment before the account, or an unknown kind of stream, is a clear error
    let long_ago = before_redemption.last_event_at - Duration::days(365);
    let none = state_at(
        store,
        "loyalty_account",
        &id,
        Some(AsOf::Time(long_ago)),
        None,
    )
    .await;
    assert!(none.unwrap_err().to_string().contains("no events"));
    let unknown = state_at(store, "spaceship", &id, None, None).await;
    assert!(unknown
        .unwrap_err()
        .to_string()
        .contains("no aggregate type"));
}
