//! The conversation read models (migrations/0010): `conversations` (one row per
//! conversation: lead source, status, counts, response times, cost, what is waiting for a
//! reply) and `conversation_messages` (its history). Texts and names stay sealed, as in
//! the log; the API opens them with the tenant's key.
//!
//! Conversation rows and message rows are guarded by their last position, messages are
//! inserted once, so re-applying an event is harmless.
//!
//! A batch is folded in memory ([`Pending`]) and written at its end, one statement per
//! kind of write: the conversations and the messages in one insert each, each
//! conversation's counters once, each outbound message's status once (a busy conversation's messages would otherwise update
//! its row once per message, each update stepping over the row versions the last left).

use crate::projection::{payload, stream_uuid, Projection, ProjectionError};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use sqlx::PgConnection;
use std::collections::HashMap;
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
        self.apply_batch(conn, std::slice::from_ref(event))
    }

    fn apply_batch<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        events: &'a [RecordedEvent],
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(async move {
            let mut pending = Pending::default();
            for event in events {
                if event.aggregate_type == "conversation" {
                    pending.apply(event)?;
                }
            }
            pending.flush(conn).await
        })
    }

    fn tenant_tables(&self) -> &'static [&'static str] {
        &["conversation_messages", "conversations"]
    }

    fn tables(&self) -> &'static [&'static str] {
        &["conversations", "conversation_messages"]
    }
}

/// What a batch changes, folded in memory until [`Pending::flush`].
#[derive(Default)]
struct Pending {
    /// New conversations.
    opened: OpenedColumns,
    /// New messages, in log order.
    messages: MessageColumns,
    /// Counter and status changes per conversation.
    conversations: HashMap<Uuid, ConversationChange>,
    /// Status changes per outbound message (conversation, message id).
    outbound: HashMap<(Uuid, String), OutboundChange>,
}

/// `conversations` rows as columns, for one `unnest` insert.
#[derive(Default)]
struct OpenedColumns {
    conversation_id: Vec<Uuid>,
    tenant_id: Vec<Uuid>,
    company_id: Vec<Uuid>,
    channel_id: Vec<Uuid>,
    platform: Vec<&'static str>,
    lead_source: Vec<String>,
    lead_detail: Vec<Option<String>>,
    contact_name_sealed: Vec<Option<String>>,
    opened_at: Vec<DateTime<Utc>>,
    position: Vec<i64>,
}

/// `conversation_messages` rows as columns, for one `unnest` insert.
#[derive(Default)]
struct MessageColumns {
    conversation_id: Vec<Uuid>,
    direction: Vec<&'static str>,
    message_key: Vec<String>,
    text_sealed: Vec<String>,
    kind: Vec<&'static str>,
    at: Vec<DateTime<Utc>>,
    batch: Vec<Option<i32>>,
    status: Vec<Option<&'static str>>,
    rich_media: Vec<Option<bool>>,
    pricing_window: Vec<Option<&'static str>>,
    cost_micro_eur: Vec<Option<i64>>,
    response_time_secs: Vec<Option<i64>>,
    position: Vec<i64>,
}

/// A new message, for [`MessageColumns::push`].
struct NewMessage {
    conversation_id: Uuid,
    /// `in` or `out`.
    direction: &'static str,
    message_key: String,
    text_sealed: String,
    kind: &'static str,
    at: DateTime<Utc>,
    position: i64,
    /// An inbound message's batch.
    batch: Option<i32>,
    /// What only an outbound message has.
    outbound: Option<Outbound>,
}

/// An outbound message's pricing and timing.
struct Outbound {
    rich_media: bool,
    pricing_window: &'static str,
    cost_micro_eur: i64,
    response_time_secs: Option<i64>,
}

impl MessageColumns {
    /// Adds `message` as a row; an outbound one starts `sending`.
    fn push(&mut self, message: NewMessage) {
        let outbound = message.outbound.as_ref();
        self.conversation_id.push(message.conversation_id);
        self.direction.push(message.direction);
        self.message_key.push(message.message_key);
        self.text_sealed.push(message.text_sealed);
        self.kind.push(message.kind);
        self.at.push(message.at);
        self.batch.push(message.batch);
        self.status.push(outbound.map(|_| "sending"));
        self.rich_media.push(outbound.map(|o| o.rich_media));
        self.pricing_window.push(outbound.map(|o| o.pricing_window));
        self.cost_micro_eur.push(outbound.map(|o| o.cost_micro_eur));
        self.response_time_secs
            .push(outbound.and_then(|o| o.response_time_secs));
        self.position.push(message.position);
    }
}

/// One conversation row's change over a batch.
struct ConversationChange {
    /// The first and last event folded in: the row takes the change only if it has not
    /// seen the first (re-applying is harmless).
    first_position: i64,
    last_position: i64,
    status: Option<&'static str>,
    messages_in: i32,
    messages_out: i32,
    last_inbound_at: Option<DateTime<Utc>>,
    last_outbound_at: Option<DateTime<Utc>>,
    /// A reply went out: what was waiting before the batch is answered.
    unanswered_cleared: bool,
    /// The first inbound message of the batch after the last reply (or of the whole
    /// batch): waiting since then unless something was waiting already.
    unanswered_since: Option<DateTime<Utc>>,
    cost_micro_eur: i64,
    replies_timed: i32,
    response_secs_total: i64,
}

impl ConversationChange {
    fn new(position: i64) -> Self {
        Self {
            first_position: position,
            last_position: position,
            status: None,
            messages_in: 0,
            messages_out: 0,
            last_inbound_at: None,
            last_outbound_at: None,
            unanswered_cleared: false,
            unanswered_since: None,
            cost_micro_eur: 0,
            replies_timed: 0,
            response_secs_total: 0,
        }
    }
}

/// One outbound message's status change over a batch.
struct OutboundChange {
    first_position: i64,
    last_position: i64,
    status: &'static str,
    provider_message_id: Option<String>,
    failure_reason: Option<String>,
}

impl Pending {
    fn conversation(&mut self, id: Uuid, position: i64) -> &mut ConversationChange {
        let change = self
            .conversations
            .entry(id)
            .or_insert_with(|| ConversationChange::new(position));
        change.last_position = position;
        change
    }

    fn outbound(
        &mut self,
        id: Uuid,
        message_id: Uuid,
        position: i64,
        status: &'static str,
        provider_message_id: Option<String>,
        failure_reason: Option<String>,
    ) {
        let change = self
            .outbound
            .entry((id, message_id.to_string()))
            .or_insert_with(|| OutboundChange {
                first_position: position,
                last_position: position,
                status,
                provider_message_id: None,
                failure_reason: None,
            });
        change.last_position = position;
        change.status = status;
        change.provider_message_id = provider_message_id.or(change.provider_message_id.take());
        change.failure_reason = failure_reason.or(change.failure_reason.take());
    }

    /// Folds one event into the batch.
    fn apply(&mut self, event: &RecordedEvent) -> Result<(), ProjectionError> {
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
                let o = &mut self.opened;
                o.conversation_id.push(id);
                o.tenant_id.push(tenant_id.0);
                o.company_id.push(company_id);
                o.channel_id.push(channel_id);
                o.platform.push(platform.as_str());
                o.lead_source.push(lead_source.source);
                o.lead_detail.push(lead_source.detail);
                o.contact_name_sealed
                    .push(contact.name.map(|n| n.as_str().to_string()));
                o.opened_at.push(opened_at);
                o.position.push(position);
            }
            E::ConversationReopened { .. } => self.conversation(id, position).status = Some("open"),
            E::ConversationResolved { .. } => {
                self.conversation(id, position).status = Some("resolved")
            }
            E::MessageReceived {
                provider_message_id,
                text,
                kind,
                sent_at,
                batch,
                ..
            } => {
                self.messages.push(NewMessage {
                    conversation_id: id,
                    direction: "in",
                    message_key: provider_message_id,
                    text_sealed: text.as_str().to_string(),
                    kind: kind.as_str(),
                    at: sent_at,
                    position,
                    batch: Some(batch as i32),
                    outbound: None,
                });
                let change = self.conversation(id, position);
                change.messages_in += 1;
                change.last_inbound_at = change.last_inbound_at.max(Some(sent_at));
                change.unanswered_since.get_or_insert(sent_at);
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
                self.messages.push(NewMessage {
                    conversation_id: id,
                    direction: "out",
                    message_key: message_id.to_string(),
                    text_sealed: text.as_str().to_string(),
                    kind: message_type.as_str(),
                    at,
                    position,
                    batch: None,
                    outbound: Some(Outbound {
                        rich_media,
                        pricing_window: window.as_str(),
                        cost_micro_eur,
                        response_time_secs,
                    }),
                });
                let change = self.conversation(id, position);
                change.messages_out += 1;
                change.last_outbound_at = change.last_outbound_at.max(Some(at));
                change.unanswered_cleared = true;
                change.unanswered_since = None;
                change.cost_micro_eur += cost_micro_eur;
                if let Some(secs) = response_time_secs {
                    change.replies_timed += 1;
                    change.response_secs_total += secs;
                }
            }
            E::MessageAccepted {
                message_id,
                provider_message_id,
                ..
            } => self.outbound(
                id,
                message_id,
                position,
                "accepted",
                Some(provider_message_id),
                None,
            ),
            E::MessageSendFailed {
                message_id, reason, ..
            } => self.outbound(id, message_id, position, "failed", None, Some(reason)),
            E::DeliveryReceiptRecorded {
                message_id, status, ..
            } => self.outbound(id, message_id, position, status.as_str(), None, None),
            E::BatchTaken { .. } => {}
        }
        Ok(())
    }

    /// Writes the batch: the new conversations, their new messages (which take their
    /// business from the conversation's row), then each conversation's change, then each
    /// outbound message's status (after the insert, so a message sent and accepted in the
    /// same batch is found).
    async fn flush(self, conn: &mut PgConnection) -> Result<(), ProjectionError> {
        let o = self.opened;
        if !o.position.is_empty() {
            // language=PostgreSQL
            sqlx::query(
                "insert into conversations (conversation_id, tenant_id, company_id, channel_id,
                     platform, lead_source, lead_detail, contact_name_sealed, opened_at,
                     last_position)
                 select * from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[],
                     $5::text[], $6::text[], $7::text[], $8::text[], $9::timestamptz[],
                     $10::int8[])
                 on conflict (conversation_id) do nothing",
            )
            .bind(o.conversation_id)
            .bind(o.tenant_id)
            .bind(o.company_id)
            .bind(o.channel_id)
            .bind(o.platform)
            .bind(o.lead_source)
            .bind(o.lead_detail)
            .bind(o.contact_name_sealed)
            .bind(o.opened_at)
            .bind(o.position)
            .execute(&mut *conn)
            .await?;
        }
        let m = self.messages;
        if !m.position.is_empty() {
            // language=PostgreSQL
            sqlx::query(
                "insert into conversation_messages (conversation_id, direction, message_key,
                     tenant_id, text_sealed, kind, at, batch, status, rich_media, pricing_window,
                     cost_micro_eur, response_time_secs, position, last_position)
                 select u.conversation_id, u.direction, u.message_key, c.tenant_id,
                     u.text_sealed, u.kind, u.at, u.batch, u.status, u.rich_media,
                     u.pricing_window, u.cost_micro_eur, u.response_time_secs, u.position,
                     u.position
                 from unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
                          $6::timestamptz[], $7::int4[], $8::text[], $9::bool[], $10::text[],
                          $11::int8[], $12::int8[], $13::int8[])
                      as u(conversation_id, direction, message_key, text_sealed, kind, at,
                           batch, status, rich_media, pricing_window, cost_micro_eur,
                           response_time_secs, position)
                 join conversations c on c.conversation_id = u.conversation_id
                 on conflict do nothing",
            )
            .bind(m.conversation_id)
            .bind(m.direction)
            .bind(m.message_key)
            .bind(m.text_sealed)
            .bind(m.kind)
            .bind(m.at)
            .bind(m.batch)
            .bind(m.status)
            .bind(m.rich_media)
            .bind(m.pricing_window)
            .bind(m.cost_micro_eur)
            .bind(m.response_time_secs)
            .bind(m.position)
            .execute(&mut *conn)
            .await?;
        }
        if !self.conversations.is_empty() {
            let n = self.conversations.len();
            let mut ids = Vec::with_capacity(n);
            let mut first = Vec::with_capacity(n);
            let mut last = Vec::with_capacity(n);
            let mut status = Vec::with_capacity(n);
            let mut messages_in = Vec::with_capacity(n);
            let mut messages_out = Vec::with_capacity(n);
            let mut last_inbound = Vec::with_capacity(n);
            let mut last_outbound = Vec::with_capacity(n);
            let mut cleared = Vec::with_capacity(n);
            let mut since = Vec::with_capacity(n);
            let mut cost = Vec::with_capacity(n);
            let mut timed = Vec::with_capacity(n);
            let mut secs = Vec::with_capacity(n);
            for (id, c) in self.conversations {
                ids.push(id);
                first.push(c.first_position);
                last.push(c.last_position);
                status.push(c.status);
                messages_in.push(c.messages_in);
                messages_out.push(c.messages_out);
                last_inbound.push(c.last_inbound_at);
                last_outbound.push(c.last_outbound_at);
                cleared.push(c.unanswered_cleared);
                since.push(c.unanswered_since);
                cost.push(c.cost_micro_eur);
                timed.push(c.replies_timed);
                secs.push(c.response_secs_total);
            }
            // language=PostgreSQL
            sqlx::query(
                "update conversations c set status = coalesce(u.status, c.status),
                     messages_in = c.messages_in + u.messages_in,
                     messages_out = c.messages_out + u.messages_out,
                     last_inbound_at = greatest(c.last_inbound_at, u.last_inbound_at),
                     last_outbound_at = greatest(c.last_outbound_at, u.last_outbound_at),
                     first_unanswered_at = case when u.cleared then u.since
                                                else coalesce(c.first_unanswered_at, u.since) end,
                     cost_micro_eur = c.cost_micro_eur + u.cost,
                     replies_timed = c.replies_timed + u.timed,
                     response_secs_total = c.response_secs_total + u.secs,
                     last_position = u.last_position
                 from unnest($1::uuid[], $2::int8[], $3::int8[], $4::text[], $5::int4[],
                          $6::int4[], $7::timestamptz[], $8::timestamptz[], $9::bool[],
                          $10::timestamptz[], $11::int8[], $12::int4[], $13::int8[])
                      as u(conversation_id, first_position, last_position, status, messages_in,
                           messages_out, last_inbound_at, last_outbound_at, cleared, since,
                           cost, timed, secs)
                 where c.conversation_id = u.conversation_id
                   and c.last_position < u.first_position",
            )
            .bind(ids)
            .bind(first)
            .bind(last)
            .bind(status)
            .bind(messages_in)
            .bind(messages_out)
            .bind(last_inbound)
            .bind(last_outbound)
            .bind(cleared)
            .bind(since)
            .bind(cost)
            .bind(timed)
            .bind(secs)
            .execute(&mut *conn)
            .await?;
        }
        if !self.outbound.is_empty() {
            let n = self.outbound.len();
            let mut ids = Vec::with_capacity(n);
            let mut keys = Vec::with_capacity(n);
            let mut first = Vec::with_capacity(n);
            let mut last = Vec::with_capacity(n);
            let mut status = Vec::with_capacity(n);
            let mut provider_ids = Vec::with_capacity(n);
            let mut reasons = Vec::with_capacity(n);
            for ((id, key), o) in self.outbound {
                ids.push(id);
                keys.push(key);
                first.push(o.first_position);
                last.push(o.last_position);
                status.push(o.status);
                provider_ids.push(o.provider_message_id);
                reasons.push(o.failure_reason);
            }
            // language=PostgreSQL
            sqlx::query(
                "update conversation_messages m set status = u.status,
                     provider_message_id = coalesce(u.provider_message_id, m.provider_message_id),
                     failure_reason = coalesce(u.failure_reason, m.failure_reason),
                     last_position = u.last_position
                 from unnest($1::uuid[], $2::text[], $3::int8[], $4::int8[], $5::text[],
                          $6::text[], $7::text[])
                      as u(conversation_id, message_key, first_position, last_position, status,
                           provider_message_id, failure_reason)
                 where m.conversation_id = u.conversation_id and m.direction = 'out'
                   and m.message_key = u.message_key and m.last_position < u.first_position",
            )
            .bind(ids)
            .bind(keys)
            .bind(first)
            .bind(last)
            .bind(status)
            .bind(provider_ids)
            .bind(reasons)
            .execute(conn)
            .await?;
        }
        Ok(())
    }
}
