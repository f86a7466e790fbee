//! The loyalty read models (migrations/0009): `loyalty_programs`, `loyalty_accounts` (with
//! running totals), `loyalty_transactions` (each balance change: an account's history and
//! the business's turnover), `loyalty_promotions` and `loyalty_services` (the moderation
//! queue).
//!
//! Account rows are guarded by their last position and transactions are keyed by global
//! position, so re-applying an event is harmless.
//!
//! A batch's balance changes are added up in memory ([`Ledger`]) and written at the end of
//! the batch: each account row once, the transactions in one insert (a hot account's
//! thousands of redemptions would otherwise update its row thousands of times in one
//! transaction, each update slower than the last).

use crate::projection::{payload, stream_uuid, Projection, ProjectionError};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use sqlx::PgConnection;
use std::collections::HashMap;
use uuid::Uuid;
use x8_domain::loyalty::account::GrantReason;
use x8_domain::loyalty::program::ProgramEvent;
use x8_domain::loyalty::service::ServiceEvent;
use x8_domain::loyalty::LoyaltyEvent;
use x8_eventstore::RecordedEvent;

/// Builds the loyalty read models.
pub struct LoyaltyProjection;

/// The projection's name, for waiting on it.
pub const NAME: &str = "loyalty";

impl Projection for LoyaltyProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        event: &'a RecordedEvent,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        self.apply_batch(conn, std::slice::from_ref(event))
    }

    fn apply_batch<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        events: &'a [RecordedEvent],
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(async move {
            let mut ledger = Ledger::default();
            for event in events {
                match event.aggregate_type.as_str() {
                    "loyalty_account" => apply_account(conn, &mut ledger, event).await?,
                    "loyalty_program" => apply_program(conn, event).await?,
                    "loyalty_service" => apply_service(conn, event).await?,
                    _ => {}
                }
            }
            ledger.flush(conn).await
        })
    }

    fn tenant_tables(&self) -> &'static [&'static str] {
        &[
            "loyalty_transactions",
            "loyalty_promotions",
            "loyalty_services",
            "loyalty_accounts",
            "loyalty_programs",
        ]
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "loyalty_programs",
            "loyalty_accounts",
            "loyalty_transactions",
            "loyalty_promotions",
            "loyalty_services",
        ]
    }
}

/// A balance change to record.
struct Change {
    kind: &'static str,
    reference: Option<String>,
    /// Signed points.
    points: i64,
    amount: Option<(i64, String)>,
    shortfall: Option<i64>,
    at: DateTime<Utc>,
}

impl Change {
    fn new(kind: &'static str, reference: Option<String>, points: i64, at: DateTime<Utc>) -> Self {
        Self {
            kind,
            reference,
            points,
            amount: None,
            shortfall: None,
            at,
        }
    }
}

/// Which running total a change adds to.
fn total_column(kind: &str) -> &'static str {
    match kind {
        "redemption" => "points_redeemed",
        "reversal" => "points_reversed",
        "expiry" => "points_expired",
        _ => "points_issued",
    }
}

async fn apply_account(
    conn: &mut PgConnection,
    ledger: &mut Ledger,
    event: &RecordedEvent,
) -> Result<(), ProjectionError> {
    let account_id = stream_uuid(event)?;
    let position = event.global_position;
    use LoyaltyEvent as E;
    let change = match payload(event)? {
        E::LoyaltyAccountOpened {
            tenant_id,
            customer_ref,
            referral_code,
            referred_by,
            opened_at,
            ..
        } => {
            // language=PostgreSQL
            sqlx::query(
                "insert into loyalty_accounts (account_id, tenant_id, customer_ref_sealed,
                     referral_code, referred_by, opened_at, last_activity_at, last_position)
                 values ($1, $2, $3, $4, $5, $6, $6, $7)
                 on conflict (account_id) do nothing",
            )
            .bind(account_id)
            .bind(tenant_id.0)
            .bind(customer_ref.0)
            .bind(referral_code)
            .bind(referred_by)
            .bind(opened_at)
            .bind(position)
            .execute(conn)
            .await?;
            return Ok(());
        }
        E::NpsRated { score, at } => {
            ledger.flush(conn).await?;
            // language=PostgreSQL
            sqlx::query(
                "update loyalty_accounts set nps = $3, last_activity_at = $4, last_position = $2
                 where account_id = $1 and last_position < $2",
            )
            .bind(account_id)
            .bind(position)
            .bind(i16::from(score))
            .bind(at)
            .execute(conn)
            .await?;
            return Ok(());
        }
        E::PointsGranted {
            reason, points, at, ..
        } => {
            let kind = match reason {
                GrantReason::Welcome => "welcome",
                GrantReason::Referred { .. } => "referred",
                GrantReason::Referrer { .. } => "referrer",
            };
            Change::new(kind, None, points, at)
        }
        E::PurchaseAccrued {
            reference,
            amount,
            points,
            at,
            ..
        } => Change {
            amount: Some((amount.amount_minor, amount.currency.as_str().to_string())),
            ..Change::new("purchase", Some(reference), points, at)
        },
        E::PointsRedeemed {
            reference,
            points,
            at,
            ..
        } => Change::new("redemption", Some(reference), -points, at),
        E::PurchaseReversed {
            purchase_reference,
            points_reversed,
            shortfall,
            at,
        } => {
            ledger.flush(conn).await?;
            // language=PostgreSQL
            let amount: Option<(i64, String)> = sqlx::query_as(
                "select amount_minor, currency from loyalty_transactions
                 where account_id = $1 and kind = 'purchase' and reference = $2",
            )
            .bind(account_id)
            .bind(&purchase_reference)
            .fetch_optional(&mut *conn)
            .await?;
            Change {
                amount,
                shortfall: Some(shortfall),
                ..Change::new("reversal", Some(purchase_reference), -points_reversed, at)
            }
        }
        E::PointsExpired {
            transfer_id,
            points,
            expired_at,
        } => Change::new("expiry", Some(transfer_id), -points, expired_at),
        // Closing voids the balance: recorded as an expiry of everything left.
        E::LoyaltyAccountClosed { points_voided, at } => {
            Change::new("expiry", Some("account_closed".into()), -points_voided, at)
        }
    };
    ledger.record(conn, event, account_id, change).await
}

/// An account as the batch has changed it so far.
struct Account {
    tenant_id: Uuid,
    balance: i64,
    last_position: i64,
    last_activity_at: Option<DateTime<Utc>>,
    /// Points added to each running total, in the order of [`TOTALS`].
    totals: [i64; 4],
}

/// The running totals of `loyalty_accounts`, as [`total_column`] names them.
const TOTALS: [&str; 4] = [
    "points_issued",
    "points_redeemed",
    "points_expired",
    "points_reversed",
];

/// A batch's balance changes: the accounts they touched and their transactions, written
/// by [`Ledger::flush`].
#[derive(Default)]
struct Ledger {
    accounts: HashMap<Uuid, Account>,
    transactions: TransactionColumns,
}

/// `loyalty_transactions` rows as columns, for one `unnest` insert.
#[derive(Default)]
struct TransactionColumns {
    global_position: Vec<i64>,
    account_id: Vec<Uuid>,
    tenant_id: Vec<Uuid>,
    kind: Vec<&'static str>,
    reference: Vec<Option<String>>,
    points: Vec<i64>,
    amount_minor: Vec<Option<i64>>,
    currency: Vec<Option<String>>,
    shortfall: Vec<Option<i64>>,
    balance_after: Vec<i64>,
    at: Vec<DateTime<Utc>>,
}

impl Ledger {
    /// Adds a change to the account's totals and its history, once (an event at or before
    /// the account's last position is already in them).
    async fn record(
        &mut self,
        conn: &mut PgConnection,
        event: &RecordedEvent,
        account_id: Uuid,
        change: Change,
    ) -> Result<(), ProjectionError> {
        let account = match self.accounts.entry(account_id) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                // language=PostgreSQL
                let row: Option<(Uuid, i64, i64)> = sqlx::query_as(
                    "select tenant_id, balance, last_position from loyalty_accounts
                     where account_id = $1",
                )
                .bind(account_id)
                .fetch_optional(&mut *conn)
                .await?;
                let Some((tenant_id, balance, last_position)) = row else {
                    return Ok(());
                };
                entry.insert(Account {
                    tenant_id,
                    balance,
                    last_position,
                    last_activity_at: None,
                    totals: [0; 4],
                })
            }
        };
        if event.global_position <= account.last_position {
            return Ok(());
        }
        let total = total_column(change.kind);
        if let Some(i) = TOTALS.iter().position(|t| *t == total) {
            account.totals[i] += change.points.abs();
        }
        account.balance += change.points;
        account.last_position = event.global_position;
        account.last_activity_at = account.last_activity_at.max(Some(change.at));
        let rows = &mut self.transactions;
        rows.global_position.push(event.global_position);
        rows.account_id.push(account_id);
        rows.tenant_id.push(account.tenant_id);
        rows.kind.push(change.kind);
        rows.reference.push(change.reference);
        rows.points.push(change.points);
        rows.amount_minor
            .push(change.amount.as_ref().map(|(minor, _)| *minor));
        rows.currency
            .push(change.amount.map(|(_, currency)| currency));
        rows.shortfall.push(change.shortfall);
        rows.balance_after.push(account.balance);
        rows.at.push(change.at);
        Ok(())
    }

    /// Writes the changes recorded so far (each touched account once, the transactions in
    /// one insert) and starts afresh.
    async fn flush(&mut self, conn: &mut PgConnection) -> Result<(), ProjectionError> {
        let Self {
            accounts,
            transactions: rows,
        } = std::mem::take(self);
        if accounts.is_empty() {
            return Ok(());
        }
        let mut ids = Vec::new();
        let (mut balances, mut positions, mut activity) = (Vec::new(), Vec::new(), Vec::new());
        let mut totals: [Vec<i64>; 4] = Default::default();
        for (id, account) in accounts {
            ids.push(id);
            balances.push(account.balance);
            positions.push(account.last_position);
            activity.push(account.last_activity_at);
            for (column, added) in totals.iter_mut().zip(account.totals) {
                column.push(added);
            }
        }
        let [issued, redeemed, expired, reversed] = totals;
        // language=PostgreSQL
        sqlx::query(
            "update loyalty_accounts a set balance = u.balance,
                 points_issued = a.points_issued + u.issued,
                 points_redeemed = a.points_redeemed + u.redeemed,
                 points_expired = a.points_expired + u.expired,
                 points_reversed = a.points_reversed + u.reversed,
                 last_activity_at = greatest(a.last_activity_at, u.at),
                 last_position = u.position
             from unnest($1::uuid[], $2::int8[], $3::int8[], $4::int8[], $5::int8[],
                         $6::int8[], $7::timestamptz[], $8::int8[])
                  as u(account_id, balance, issued, redeemed, expired, reversed, at, position)
             where a.account_id = u.account_id and a.last_position < u.position",
        )
        .bind(ids)
        .bind(balances)
        .bind(issued)
        .bind(redeemed)
        .bind(expired)
        .bind(reversed)
        .bind(activity)
        .bind(positions)
        .execute(&mut *conn)
        .await?;
        // language=PostgreSQL
        sqlx::query(
            "insert into loyalty_transactions (global_position, account_id, tenant_id, kind,
                 reference, points, amount_minor, currency, shortfall, balance_after, at)
             select * from unnest($1::int8[], $2::uuid[], $3::uuid[], $4::text[], $5::text[],
                 $6::int8[], $7::int8[], $8::text[], $9::int8[], $10::int8[],
                 $11::timestamptz[])
             on conflict (global_position) do nothing",
        )
        .bind(rows.global_position)
        .bind(rows.account_id)
        .bind(rows.tenant_id)
        .bind(rows.kind)
        .bind(rows.reference)
        .bind(rows.points)
        .bind(rows.amount_minor)
        .bind(rows.currency)
        .bind(rows.shortfall)
        .bind(rows.balance_after)
        .bind(rows.at)
        .execute(conn)
        .await?;
        Ok(())
    }
}

async fn apply_program(
    conn: &mut PgConnection,
    event: &RecordedEvent,
) -> Result<(), ProjectionError> {
    match payload(event)? {
        ProgramEvent::LoyaltyProgramConfigured {
            tenant_id,
            settings,
        } => {
            // language=PostgreSQL
            sqlx::query(
                "insert into loyalty_programs (tenant_id, cashback_bps, welcome_bonus_points,
                     referrer_reward_points, referred_reward_points, expiry_days, last_position)
                 values ($1, $2, $3, $4, $5, $6, $7)
                 on conflict (tenant_id) do update set cashback_bps = excluded.cashback_bps,
                     welcome_bonus_points = excluded.welcome_bonus_points,
                     referrer_reward_points = excluded.referrer_reward_points,
                     referred_reward_points = excluded.referred_reward_points,
                     expiry_days = excluded.expiry_days, last_position = excluded.last_position
                 where loyalty_programs.last_position < excluded.last_position",
            )
            .bind(tenant_id.0)
            .bind(i32::try_from(settings.cashback_bps).unwrap_or(i32::MAX))
            .bind(settings.welcome_bonus_points)
            .bind(settings.referrer_reward_points)
            .bind(settings.referred_reward_points)
            .bind(
                settings
                    .expiry_days
                    .map(|d| i32::try_from(d).unwrap_or(i32::MAX)),
            )
            .bind(event.global_position)
            .execute(conn)
            .await?;
        }
        ProgramEvent::PromotionCreated {
            tenant_id,
            promotion,
        } => {
            // language=PostgreSQL
            sqlx::query(
                "insert into loyalty_promotions (promotion_id, tenant_id, title, valid_from,
                     valid_until, per_customer_limit, created_at)
                 values ($1, $2, $3, $4, $5, $6, $7)
                 on conflict (promotion_id) do nothing",
            )
            .bind(promotion.promotion_id)
            .bind(tenant_id.0)
            .bind(promotion.title)
            .bind(promotion.valid_from)
            .bind(promotion.valid_until)
            .bind(
                promotion
                    .per_customer_limit
                    .map(|l| i32::try_from(l).unwrap_or(i32::MAX)),
            )
            .bind(event.recorded_at)
            .execute(conn)
            .await?;
        }
        ProgramEvent::PromotionRemoved { promotion_id } => {
            // language=PostgreSQL
            sqlx::query(
                "update loyalty_promotions set removed_at = $2
                 where promotion_id = $1 and removed_at is null",
            )
            .bind(promotion_id)
            .bind(event.recorded_at)
            .execute(conn)
            .await?;
        }
    }
    Ok(())
}

async fn apply_service(
    conn: &mut PgConnection,
    event: &RecordedEvent,
) -> Result<(), ProjectionError> {
    let service_id = stream_uuid(event)?;
    let position = event.global_position;
    // language=PostgreSQL
    let query = match payload(event)? {
        ServiceEvent::ServiceSubmitted {
            tenant_id,
            title,
            description,
            at,
            ..
        } => sqlx::query(
            "insert into loyalty_services (service_id, tenant_id, title, description, status,
                 submitted_at, last_position)
             values ($1, $3, $4, $5, 'pending', $6, $2)
             on conflict (service_id) do update set title = excluded.title,
                 description = excluded.description, status = 'pending',
                 rejection_reason = null, submitted_at = excluded.submitted_at,
                 decided_at = null, last_position = excluded.last_position
             where loyalty_services.last_position < excluded.last_position",
        )
        .bind(service_id)
        .bind(position)
        .bind(tenant_id.0)
        .bind(title)
        .bind(description)
        .bind(at),
        ServiceEvent::ServiceApproved { at } => sqlx::query(
            "update loyalty_services set status = 'approved', decided_at = $3, last_position = $2
             where service_id = $1 and last_position < $2",
        )
        .bind(service_id)
        .bind(position)
        .bind(at),
        ServiceEvent::ServiceRejected { reason, at } => sqlx::query(
            "update loyalty_services set status = 'rejected', rejection_reason = $4,
                 decided_at = $3, last_position = $2
             where service_id = $1 and last_position < $2",
        )
        .bind(service_id)
        .bind(position)
        .bind(at)
        .bind(reason),
    };
    query.execute(conn).await?;
    Ok(())
}
