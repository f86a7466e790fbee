//! The deadline runner: issues each due deadline's command once, across restarts and
//! across servers.
//!
//! - **Claim**: due rows are leased for [`LEASE`] in a transaction of their own
//!   (`for update skip locked`), so two runners never take the same row and no lock is held
//!   while commands run (a held row lock would hold back every `$all` reader).
//! - **Execute once**: the command id is the deadline id (with a fixed fingerprint), so if
//!   the runner dies after the command's append but before marking the row done, the next
//!   run gets the recorded outcome instead of a second execution.
//! - **Retry**: a failure is retried with exponential back-off (base 5 s, doubling, capped
//!   at 1 h) up to [`MAX_ATTEMPTS`] times, then the row is marked `failed` for manual action,
//!   never silently dropped.
//!
//! Time comes from the command layer's injectable [`Clock`](crate::Clock).

use crate::context::CommandContext;
use crate::tenants;
use crate::Commands;
use chrono::{DateTime, Duration as Span, Utc};
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;
use x8_domain::deadlines::{
    END_SUBSCRIPTION, EXPIRE_POINTS, EXPIRE_TRIAL, NOTIFY_DELIVERY_STATUS, RESTART_SESSION,
    RUN_ERASURE,
};
use x8_domain::tenant::TenantCommand;
use x8_domain::TenantId;
use x8_eventstore::Actor;

/// How long a claimed deadline stays with its runner before another may take it.
pub const LEASE: Span = Span::seconds(60);
/// Executions before a deadline is marked `failed`.
pub const MAX_ATTEMPTS: i32 = 10;
/// How often [`DeadlineRunner::spawn`] looks for due deadlines.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// A claimed, due deadline.
#[derive(Debug, sqlx::FromRow)]
struct Due {
    deadline_id: Uuid,
    kind: String,
    aggregate_id: String,
    attempts: i32,
}

/// What one [`DeadlineRunner::run_due`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RunReport {
    /// Deadlines whose command ran (or had already run) and that are now done.
    pub done: usize,
    /// Deadlines that failed and were rescheduled or marked `failed`.
    pub failed: usize,
}

/// Executes due deadlines.
#[derive(Clone)]
pub struct DeadlineRunner {
    commands: Commands,
    pool: PgPool,
}

impl DeadlineRunner {
    /// A runner issuing commands through `commands`, reading `deadlines` from `pool`.
    pub fn new(commands: Commands, pool: PgPool) -> Self {
        Self { commands, pool }
    }

    /// Claims and executes up to `limit` deadlines due by the clock's now.
    ///
    /// # Errors
    /// [`sqlx::Error`] when the `deadlines` table cannot be read or updated; a failing
    /// command is not an error here (it is recorded on its row and retried).
    #[tracing::instrument(skip(self))]
    pub async fn run_due(&self, limit: i64) -> Result<RunReport, sqlx::Error> {
        let now = self.commands.clock.now();
        // language=PostgreSQL
        let due: Vec<Due> = sqlx::query_as(
            "update deadlines set locked_until = $3
             where deadline_id in (
                 select deadline_id from deadlines
                 where status = 'pending' and due_at <= $1
                   and (locked_until is null or locked_until < $1)
                 order by due_at
                 limit $2
                 for update skip locked)
             returning deadline_id, kind, aggregate_id, attempts",
        )
        .bind(now)
        .bind(limit)
        .bind(now + LEASE)
        .fetch_all(&self.pool)
        .await?;

        let mut report = RunReport::default();
        for deadline in due {
            match self.execute(&deadline, now).await {
                Ok(()) => {
                    report.done += 1;
                    // language=PostgreSQL
                    sqlx::query(
                        "update deadlines set status = 'done', completed_at = $2,
                             attempts = attempts + 1, locked_until = null, last_error = null
                         where deadline_id = $1",
                    )
                    .bind(deadline.deadline_id)
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                }
                Err(error) => {
                    report.failed += 1;
                    let attempts = deadline.attempts + 1;
                    tracing::warn!(deadline_id = %deadline.deadline_id, kind = %deadline.kind, attempts, %error, "deadline failed");
                    let status = if attempts >= MAX_ATTEMPTS {
                        "failed"
                    } else {
                        "pending"
                    };
                    // language=PostgreSQL
                    sqlx::query(
                        "update deadlines set status = $2, attempts = $3, last_error = $4,
                             due_at = $5, locked_until = null
                         where deadline_id = $1",
                    )
                    .bind(deadline.deadline_id)
                    .bind(status)
                    .bind(attempts)
                    .bind(&error)
                    .bind(now + backoff(attempts))
                    .execute(&self.pool)
                    .await?;
                }
            }
        }
        Ok(report)
    }

    /// Deadlines waiting to run (the queue depth).
    ///
    /// # Errors
    /// [`sqlx::Error`].
    pub async fn pending(&self) -> Result<i64, sqlx::Error> {
        // language=PostgreSQL
        sqlx::query_scalar("select count(*) from deadlines where status = 'pending'")
            .fetch_one(&self.pool)
            .await
    }

    /// Spawns a task that runs due deadlines every [`POLL_INTERVAL`] until the pool closes.
    pub fn spawn(self) {
        tokio::spawn(async move {
            while !self.pool.is_closed() {
                match self.run_due(100).await {
                    Ok(report) if report.done + report.failed == 100 => continue,
                    Ok(_) => {}
                    Err(error) => tracing::error!(%error, "deadline runner cannot read its table"),
                }
                tokio::time::sleep(POLL_INTERVAL).await;
            }
        });
    }

    async fn execute(&self, deadline: &Due, now: DateTime<Utc>) -> Result<(), String> {
        let ctx = CommandContext::for_deadline(
            deadline.deadline_id,
            &deadline.kind,
            &deadline.aggregate_id,
        );
        match deadline.kind.as_str() {
            EXPIRE_TRIAL => {
                let tenant: Uuid = deadline
                    .aggregate_id
                    .parse()
                    .map_err(|_| format!("bad tenant id {}", deadline.aggregate_id))?;
                if tenants::is_erased(&self.commands, TenantId(tenant)).await? {
                    return Ok(());
                }
                tenants::execute(
                    &self.commands,
                    TenantId(tenant),
                    TenantCommand::ExpireTrial { at: now },
                    &ctx,
                )
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
            }
            RESTART_SESSION => {
                let channel: Uuid = deadline
                    .aggregate_id
                    .parse()
                    .map_err(|_| format!("bad channel id {}", deadline.aggregate_id))?;
                crate::waha::restart_session(&self.commands, channel).await
            }
            END_SUBSCRIPTION => {
                let tenant: Uuid = deadline
                    .aggregate_id
                    .parse()
                    .map_err(|_| format!("bad tenant id {}", deadline.aggregate_id))?;
                if tenants::is_erased(&self.commands, TenantId(tenant)).await? {
                    return Ok(());
                }
                crate::billing::end_at_period_end(&self.commands, TenantId(tenant), &ctx).await
            }
            EXPIRE_POINTS => {
                let account: Uuid = deadline
                    .aggregate_id
                    .parse()
                    .map_err(|_| format!("bad loyalty account id {}", deadline.aggregate_id))?;
                crate::loyalty::expire_points(&self.commands, account, &ctx).await
            }
            NOTIFY_DELIVERY_STATUS => {
                let delivery: Uuid = deadline
                    .aggregate_id
                    .parse()
                    .map_err(|_| format!("bad delivery id {}", deadline.aggregate_id))?;
                crate::deliveries::notify_customer(&self.commands, delivery, &ctx).await
            }
            RUN_ERASURE => crate::erasure::run(&self.commands, &deadline.aggregate_id)
                .await
                .map(|_| ()),
            other => Err(format!("unknown deadline kind {other:?}")),
        }
    }
}

/// 5 s × 2^(attempts − 1), at most one hour.
fn backoff(attempts: i32) -> Span {
    let seconds = 5i64.saturating_mul(1 << (attempts - 1).clamp(0, 20));
    Span::seconds(seconds.min(3600))
}

impl CommandContext {
    /// The context of a deadline's command: issued by the system, with the deadline id as
    /// command id and a fingerprint of the deadline (not of the command, whose `at` changes
    /// between attempts), so it runs at most once.
    pub fn for_deadline(deadline_id: Uuid, kind: &str, aggregate_id: &str) -> Self {
        let mut ctx =
            CommandContext::new(Actor::System).fingerprinted(&["deadline", kind, aggregate_id]);
        ctx.command_id = deadline_id;
        ctx.correlation_id = deadline_id;
        ctx.client_supplied = true;
        ctx
    }
}

#[cfg(test)]
mod tests {
    use super::backoff;
    use chrono::Duration;

    #[test]
    fn backoff_doubles_from_five_seconds_up_to_an_hour() {
        assert_eq!(backoff(1), Duration::seconds(5));
        assert_eq!(backoff(2), Duration::seconds(10));
        assert_eq!(backoff(4), Duration::seconds(40));
        assert_eq!(backoff(12), Duration::seconds(3600));
        assert_eq!(backoff(60), Duration::seconds(3600));
    }
}
