//! The erasure certificates (migrations/0013): `erasures`, one row per erasure asked for
//! (from the tenant stream's erasure events), and `erasure_steps`, each step of its process
//! with its outcome (from the erasure stream). They hold ids, times and outcomes only, and
//! stay after the business's own rows are deleted: they are what an auditor is shown.

use crate::projection::{payload, stream_uuid, Projection, ProjectionError};
use futures::future::BoxFuture;
use sqlx::PgConnection;
use x8_domain::erasure::{ErasureEvent, StepOutcome};
use x8_domain::tenant::TenantEvent;
use x8_eventstore::RecordedEvent;

/// Builds `erasures` and `erasure_steps`.
pub struct ErasuresProjection;

/// The projection's name, for waiting on it.
pub const NAME: &str = "erasures";

impl Projection for ErasuresProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        event: &'a RecordedEvent,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(async move {
            match event.aggregate_type.as_str() {
                "tenant" if event.event_type.starts_with("TenantEras") => {
                    tenant_event(conn, event).await
                }
                "erasure" => process_event(conn, event).await,
                _ => Ok(()),
            }
        })
    }

    fn tables(&self) -> &'static [&'static str] {
        &["erasures", "erasure_steps"]
    }
}

async fn tenant_event(
    conn: &mut PgConnection,
    event: &RecordedEvent,
) -> Result<(), ProjectionError> {
    let tenant_id = stream_uuid(event)?;
    let position = event.global_position;
    // language=PostgreSQL
    let query = match payload(event)? {
        TenantEvent::TenantErasureRequested {
            erasure_id,
            requested_by,
            requested_at,
            not_before,
        } => sqlx::query(
            "insert into erasures (erasure_id, tenant_id, status, requested_by, requested_at,
                                   not_before, last_position)
             values ($1, $2, 'requested', $3, $4, $5, $6)
             on conflict (erasure_id) do nothing",
        )
        .bind(erasure_id)
        .bind(tenant_id)
        .bind(requested_by.0)
        .bind(requested_at)
        .bind(not_before)
        .bind(position),
        TenantEvent::TenantErasureCancelled {
            erasure_id,
            cancelled_by,
            at,
        } => sqlx::query(
            "update erasures set status = 'cancelled', cancelled_by = $2, cancelled_at = $3,
                 last_position = $4
             where erasure_id = $1 and last_position < $4",
        )
        .bind(erasure_id)
        .bind(cancelled_by.0)
        .bind(at)
        .bind(position),
        TenantEvent::TenantErased { erasure_id, at } => sqlx::query(
            "update erasures set tenant_erased_at = $2, last_position = $3
             where erasure_id = $1 and last_position < $3",
        )
        .bind(erasure_id)
        .bind(at)
        .bind(position),
        _ => return Ok(()),
    };
    query.execute(conn).await?;
    Ok(())
}

async fn process_event(
    conn: &mut PgConnection,
    event: &RecordedEvent,
) -> Result<(), ProjectionError> {
    let erasure_id = stream_uuid(event)?;
    let position = event.global_position;
    match payload(event)? {
        ErasureEvent::ErasureStarted { started_at, .. } => {
            // language=PostgreSQL
            sqlx::query(
                "update erasures set status = 'running', started_at = $2, last_position = $3
                 where erasure_id = $1 and last_position < $3",
            )
            .bind(erasure_id)
            .bind(started_at)
            .bind(position)
            .execute(conn)
            .await?;
        }
        ErasureEvent::StepsPlanned { steps } => {
            for step in steps {
                // language=PostgreSQL
                sqlx::query(
                    "insert into erasure_steps (erasure_id, position, kind, subject)
                     select $1, coalesce(max(position), 0) + 1, $2, $3
                     from erasure_steps where erasure_id = $1
                     on conflict (erasure_id, kind, subject) do nothing",
                )
                .bind(erasure_id)
                .bind(step.kind.as_str())
                .bind(&step.subject)
                .execute(&mut *conn)
                .await?;
            }
        }
        ErasureEvent::StepCompleted { step, outcome, at } => {
            let (name, error) = match &outcome {
                StepOutcome::Done => ("done", None),
                StepOutcome::NothingToDo => ("nothing_to_do", None),
                StepOutcome::NotConfigured => ("not_configured", None),
                StepOutcome::ManualActionRequired { last_error, .. } => {
                    ("manual_action_required", Some(last_error.as_str()))
                }
            };
            // language=PostgreSQL
            sqlx::query(
                "update erasure_steps set outcome = $4, completed_at = $5,
                     last_error = coalesce($6, last_error), retry_at = null
                 where erasure_id = $1 and kind = $2 and subject = $3",
            )
            .bind(erasure_id)
            .bind(step.kind.as_str())
            .bind(&step.subject)
            .bind(name)
            .bind(at)
            .bind(error)
            .execute(conn)
            .await?;
        }
        ErasureEvent::StepAttemptFailed {
            step,
            attempt,
            error,
            retry_at,
            ..
        } => {
            // language=PostgreSQL
            sqlx::query(
                "update erasure_steps set failures = $4, last_error = $5, retry_at = $6
                 where erasure_id = $1 and kind = $2 and subject = $3",
            )
            .bind(erasure_id)
            .bind(step.kind.as_str())
            .bind(&step.subject)
            .bind(i32::try_from(attempt).unwrap_or(i32::MAX))
            .bind(error)
            .bind(retry_at)
            .execute(conn)
            .await?;
        }
        ErasureEvent::ErasureCompleted { at } => {
            // language=PostgreSQL
            sqlx::query(
                "update erasures set status = 'completed', completed_at = $2, last_position = $3
                 where erasure_id = $1 and last_position < $3",
            )
            .bind(erasure_id)
            .bind(at)
            .bind(position)
            .execute(conn)
            .await?;
        }
    }
    Ok(())
}
