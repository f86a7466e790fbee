//! The `companies` read model (migrations/0004): one row per company, with its code.

use crate::projection::{payload, stream_uuid, Projection, ProjectionError};
use futures::future::BoxFuture;
use sqlx::PgConnection;
use x8_domain::company::CompanyEvent;
use x8_eventstore::RecordedEvent;

/// Builds `companies`.
pub struct CompaniesProjection;

/// The projection's name, for waiting on it.
pub const NAME: &str = "companies";

impl Projection for CompaniesProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        event: &'a RecordedEvent,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(async move {
            if event.aggregate_type != "company" {
                return Ok(());
            }
            let company_id = stream_uuid(event)?;
            let position = event.global_position;
            // language=PostgreSQL
            let query = match payload(event)? {
                CompanyEvent::CompanyCreated { tenant_id, code, position: number, name, company_type } => sqlx::query(
                    "insert into companies (company_id, tenant_id, code, position, name_sealed, company_type,
                                            status, created_at, last_position)
                     values ($1, $2, $3, $4, $5, $6, 'ACTIVE', $7, $8)
                     on conflict (company_id) do nothing",
                )
                .bind(company_id)
                .bind(tenant_id.0)
                .bind(code)
                .bind(number as i32)
                .bind(name.0)
                .bind(format!("{company_type:?}"))
                .bind(event.recorded_at)
                .bind(position),
                CompanyEvent::CompanyRenamed { name } => sqlx::query(
                    "update companies set name_sealed = $2, last_position = $3
                     where company_id = $1 and last_position < $3",
                )
                .bind(company_id)
                .bind(name.0)
                .bind(position),
                CompanyEvent::CompanyStatusChanged { to, .. } => sqlx::query(
                    "update companies set status = $2, last_position = $3
                     where company_id = $1 and last_position < $3",
                )
                .bind(company_id)
                .bind(to.as_str())
                .bind(position),
                CompanyEvent::CompanyClosed { .. } => sqlx::query(
                    "update companies set status = 'CLOSED', last_position = $2
                     where company_id = $1 and last_position < $2",
                )
                .bind(company_id)
                .bind(position),
            };
            query.execute(conn).await?;
            Ok(())
        })
    }

    fn tenant_tables(&self) -> &'static [&'static str] {
        &["companies"]
    }

    fn tables(&self) -> &'static [&'static str] {
        &["companies"]
    }
}
