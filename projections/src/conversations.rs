//! The conversation read models (migrations/0010): `conversations` (one row per
//! conversation: lead source, status, counts, response times, cost, what is waiting for a
//! reply) and `conversation_messages` (its history). Texts and names stay sealed, as in
//! the log; the API opens them with the tenant's key.
//!
//! Conversation rows and message rows are guarded by their last position, messages are
//! inserted once, so re-applying an event is harmless.

use crate::projection::{payload, stream_uuid, Projection, ProjectionError};
use futures::future::BoxFuture;
use sqlx::PgConnection;
use uuid::Uuid;
use x8_domain::conversation::ConversationEvent;
use x8_eventstore::RecordedEvent;

/// Builds the conversation read models.
pub struct ConversationsProjection;

/// The projection's name, for waiting on it.
pub const NAME: &str = "conversations";

impl Projection for ConversationsProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        event: &'a RecordedEvent,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(async move {
            if event.aggregate_type != "conversation" {
                return Ok(());
            }
            apply(conn, event).await
        })
    }

    fn tenant_tables(&self) -> &'static [&'static str] {
        &["conversation_messages", "conversations"]
    }

    fn tables(&self) -> &'static [&'static str] {
        &["conversations", "conversation_messages"]
    }
}

async fn apply(conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), ProjectionError> {
    use ConversationEvent as E;
    let id = stream_uuid(event)?;
    let position = event.global_position;
    match payload(event)? {
        E::ConversationOpened {
            tenant_id,
            company_id,
            channel_id,
            platform,
            contact,
            lead_source,
            opened_at,
        } => {
            // language=PostgreSQL
            sqlx::query(
                "insert into conversations (conversation_id, tenant_id, company_id, channel_id,
                     platform, lead_source, lead_detail, contact_name_sealed, opened_at,
                     last_position)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 on conflict (conversation_id) do nothing",
            )
            .bind(id)
            .bind(tenant_id.0)
            .bind(company_id)
            .bind(channel_id)
            .bind(platform.as_str())
            .bind(&lead_source.source)
            .bind(&lead_source.detail)
            .bind(contact.name.as_ref().map(|n| n.as_str().to_string()))
            .bind(opened_at)
            .bind(position)
            .execute(conn)
            .await?;
        }
        E::ConversationReopened { .. } => set_status(conn, id, "open", position).await?,
        E::ConversationResolved { .. } => set_status(conn, id, "resolved", position).await?,
        E::MessageReceived {
            provider_message_id,
            text,
            kind,
            sent_at,
            batch,
            ..
        } => {
            // language=PostgreSQL
            sqlx::query(
                "insert into conversation_messages (conversation_id, direction, message_key,
                     tenant_id, text_sealed, kind, at, batch, position, last_position)
                 select $1, 'in', $2, tenant_id, $3, $4, $5, $6, $7, $7
                 from conversations where conversation_id = $1
                 on conflict do nothing",
            )
            .bind(id)
            .bind(&provider_message_id)
            .bind(text.as_str())
            .bind(kind.as_str())
            .bind(sent_at)
            .bind(batch as i32)
            .bind(position)
            .execute(&mut *conn)
            .await?;
            // language=PostgreSQL
            sqlx::query(
                "update conversations set messages_in = messages_in + 1,
                     last_inbound_at = greatest(last_inbound_at, $2),
                     first_unanswered_at = coalesce(first_unanswered_at, $2),
                     last_position = $3
                 where conversation_id = $1 and last_position < $3",
            )
            .bind(id)
            .bind(sent_at)
            .bind(position)
            .execute(conn)
            .await?;
        }
        E::MessageSent {
            message_id,
            text,
            message_type,
            rich_media,
            window,
            cost_micro_eur,
            response_time_secs,
            at,
        } => {
            // language=PostgreSQL
            sqlx::query(
                "insert into conversation_messages (conversation_id, direction, message_key,
                     tenant_id, text_sealed, kind, at, status, rich_media, pricing_window,
                     cost_micro_eur, response_time_secs, position, last_position)
                 select $1, 'out', $2, tenant_id, $3, $4, $5, 'sending', $6, $7, $8, $9, $10, $10
                 from conversations where conversation_id = $1
                 on conflict do nothing",
            )
            .bind(id)
            .bind(message_id.to_string())
            .bind(text.as_str())
            .bind(message_type.as_str())
            .bind(at)
            .bind(rich_media)
            .bind(window.as_str())
            .bind(cost_micro_eur)
            .bind(response_time_secs)
            .bind(position)
            .execute(&mut *conn)
            .await?;
            // language=PostgreSQL
            sqlx::query(
                "update conversations set messages_out = messages_out + 1,
                     last_outbound_at = greatest(last_outbound_at, $2),
                     first_unanswered_at = null,
                     cost_micro_eur = cost_micro_eur + $3,
                     replies_timed = replies_timed + case when $4::bigint is null then 0 else 1 end,
                     response_secs_total = response_secs_total + coalesce($4, 0),
                     last_position = $5
                 where conversation_id = $1 and last_position < $5",
            )
            .bind(id)
            .bind(at)
            .bind(cost_micro_eur)
            .bind(response_time_secs)
            .bind(position)
            .execute(conn)
            .await?;
        }
        E::MessageAccepted {
            message_id,
            provider_message_id,
            ..
        } => {
            update_outbound(
                conn,
                id,
                message_id,
                position,
                "accepted",
                Some(provider_message_id),
                None,
            )
            .await?;
        }
        E::MessageSendFailed {
            message_id, reason, ..
        } => update_outbound(conn, id, message_id, position, "failed", None, Some(reason)).await?,
        E::DeliveryReceiptRecorded {
            message_id, status, ..
        } => update_outbound(conn, id, message_id, position, status.as_str(), None, None).await?,
        E::BatchTaken { .. } => {}
    }
    Ok(())
}

async fn set_status(
    conn: &mut PgConnection,
    id: Uuid,
    status: &str,
    position: i64,
) -> Result<(), ProjectionError> {
    // language=PostgreSQL
    sqlx::query(
        "update conversations set status = $2, last_position = $3
         where conversation_id = $1 and last_position < $3",
    )
    .bind(id)
    .bind(status)
    .bind(position)
    .execute(conn)
    .await?;
    Ok(())
}

async fn update_outbound(
    conn: &mut PgConnection,
    id: Uuid,
    message_id: Uuid,
    position: i64,
    status: &str,
    provider_message_id: Option<String>,
    failure_reason: Option<String>,
) -> Result<(), ProjectionError> {
    // language=PostgreSQL
    sqlx::query(
        "update conversation_messages set status = $3,
             provider_message_id = coalesce($4, provider_message_id),
             failure_reason = case when $3 = 'failed' then coalesce($5, failure_reason) else failure_reason end,
             last_position = $6
         where conversation_id = $1 and direction = 'out' and message_key = $2
           and last_position < $6",
    )
    .bind(id)
    .bind(message_id.to_string())
    .bind(status)
    .bind(provider_message_id)
    .bind(failure_reason)
    .bind(position)
    .execute(conn)
    .await?;
    Ok(())
}
