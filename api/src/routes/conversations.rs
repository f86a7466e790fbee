//! Conversations with customers (DOMAIN.md "Conversations and messages"). Texts and
//! names are sealed in the log and the read models; these routes open them with the
//! business's data key for its own users (410 `tenant_erased` once it is erased).
//!
//! - `GET /api/v1/companies/{id}/conversations?channel_id=&status=open|resolved&lead_source=
//!   &unanswered=true&limit=100` → `{conversations: [{conversation_id, channel_id,
//!   platform, lead_source, lead_detail, status, contact_name, opened_at, last_inbound_at,
//!   last_outbound_at, waiting_since, messages_in, messages_out, avg_response_secs,
//!   cost_micro_eur}]}`, newest first; `unanswered=true`: those whose customer waits for a
//!   reply, longest waiting first.
//! - `GET /api/v1/conversations/{id}` → one conversation as above.
//! - `GET /api/v1/conversations/{id}/messages?limit=200` → its history, oldest first:
//!   `[{direction: in|out, message_id, text, kind (text|media|callback, or TYPE1..3), at,
//!   batch, status (sending|accepted|failed|sent|delivered|read), provider_message_id,
//!   failure_reason, pricing_window, cost_micro_eur, response_time_secs}]`.
//! - `POST /api/v1/conversations/{id}/messages` `{text, type: TYPE1|TYPE2|TYPE3,
//!   rich_media = false}` → 201 `{message_id, status: accepted|failed, provider_message_id
//!   | failure_reason, position}`: recorded, priced (micro-euros, 24-hour session window)
//!   and sent through the platform's API; a provider failure is 201 with `status:
//!   "failed"` (the message is kept). With `Idempotency-Key` a repeat sends nothing twice.
//! - `POST /api/v1/conversations/{id}/messages/{message_id}/retry` → as above.
//! - `GET /api/v1/conversations/{id}/pending-batch` → the closed, untaken batch `{batch,
//!   first_at, last_at, closed_at, messages: [{text, kind, sent_at}]}`; 404
//!   `no_pending_batch` (with `closes_at` while it is still filling).
//! - `POST /api/v1/conversations/{id}/pending-batch/{batch}/take` → 200; taking it again
//!   changes nothing; 409 `batch_not_closed`.
//! - `POST /api/v1/conversations/{id}/resolve` → 200.
//!
//! Lists and history come from the `conversations` read models and honour
//! `X-Min-Position`; the pending batch is read from the conversation's own stream.

use super::{authorize_company, authorize_tenant, open_sealed, path_id, scope_key, RequestId};
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, IdempotencyKey, MinPosition};
use crate::openapi::{IdempotencyKeyHeader, MinPositionHeader, Problems};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;
use x8_commands::conversations::purpose;
use x8_commands::sending::{self, Reply, SendReport};
use x8_commands::vault::ScopeKey;
use x8_domain::conversation::{Conversation, ConversationCommand, MessageType, SendOutcome};
use x8_projections::conversations::NAME as CONVERSATIONS;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/companies/{id}/conversations", get(list))
        .route("/conversations/{id}", get(show))
        .route("/conversations/{id}/messages", get(history).post(send))
        .route(
            "/conversations/{id}/messages/{message_id}/retry",
            post(retry),
        )
        .route("/conversations/{id}/pending-batch", get(pending_batch))
        .route(
            "/conversations/{id}/pending-batch/{batch}/take",
            post(take_batch),
        )
        .route("/conversations/{id}/resolve", post(resolve))
}

/// These routes' operations for the OpenAPI document (paths relative to `/api/v1`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, show, history, send, retry, pending_batch, take_batch, resolve))]
pub(crate) struct Api;

/// The conversation named by the path, if the caller may act on its business.
async fn authorized_conversation(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<(Uuid, Conversation), ApiError> {
    let id = path_id(id)?;
    let conversation = state.commands.conversations.load(&id.to_string()).await?;
    let tenant = conversation.tenant_id().ok_or_else(ApiError::not_found)?;
    authorize_tenant(state, caller, tenant).await?;
    Ok((id, conversation))
}

/// Opens a sealed field of `conversation`.
fn open(key: &ScopeKey, conversation: Uuid, field: &str, sealed: &str) -> Result<String, ApiError> {
    open_sealed(key, &purpose(conversation, field), sealed)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    channel_id: Option<Uuid>,
    status: Option<String>,
    lead_source: Option<String>,
    #[serde(default)]
    unanswered: bool,
    limit: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct Row {
    conversation_id: Uuid,
    tenant_id: Uuid,
    channel_id: Uuid,
    platform: String,
    lead_source: String,
    lead_detail: Option<String>,
    status: String,
    contact_name_sealed: Option<String>,
    opened_at: DateTime<Utc>,
    last_inbound_at: Option<DateTime<Utc>>,
    last_outbound_at: Option<DateTime<Utc>>,
    first_unanswered_at: Option<DateTime<Utc>>,
    messages_in: i32,
    messages_out: i32,
    replies_timed: i32,
    response_secs_total: i64,
    cost_micro_eur: i64,
}

const COLUMNS: &str = "conversation_id, tenant_id, channel_id, platform, lead_source,
    lead_detail, status, contact_name_sealed, opened_at, last_inbound_at, last_outbound_at,
    first_unanswered_at, messages_in, messages_out, replies_timed, response_secs_total,
    cost_micro_eur";

impl Row {
    fn view(&self, key: &ScopeKey) -> Result<Value, ApiError> {
        let name = self
            .contact_name_sealed
            .as_deref()
            .map(|sealed| open(key, self.conversation_id, "name", sealed))
            .transpose()?;
        let avg_response_secs = (self.replies_timed > 0)
            .then(|| self.response_secs_total / i64::from(self.replies_timed));
        Ok(json!({
            "conversation_id": self.conversation_id,
            "channel_id": self.channel_id,
            "platform": self.platform,
            "lead_source": self.lead_source,
            "lead_detail": self.lead_detail,
            "status": self.status,
            "contact_name": name,
            "opened_at": self.opened_at,
            "last_inbound_at": self.last_inbound_at,
            "last_outbound_at": self.last_outbound_at,
            "waiting_since": self.first_unanswered_at,
            "messages_in": self.messages_in,
            "messages_out": self.messages_out,
            "avg_response_secs": avg_response_secs,
            "cost_micro_eur": self.cost_micro_eur,
        }))
    }
}

/// The company's conversations, newest first (`unanswered=true`: those waiting for a reply, longest
/// waiting first).
#[utoipa::path(
    get, path = "/companies/{id}/conversations",
    params(("id" = Uuid, Path, description = "The company"), ListQuery, MinPositionHeader),
    responses((status = 200, description = "`{conversations: [{conversation_id, channel_id, \
        platform, lead_source, lead_detail, status, contact_name, opened_at, last_inbound_at, \
        last_outbound_at, waiting_since, messages_in, messages_out, avg_response_secs, \
        cost_micro_eur}]}`", body = Object), Problems)
)]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    MinPosition(position): MinPosition,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let company_id = path_id(&id)?;
    let company = authorize_company(&state, &caller, company_id).await?;
    if let Some(status) = &query.status {
        if status != "open" && status != "resolved" {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                "status is open or resolved",
            ));
        }
    }
    state.wait_for(CONVERSATIONS, position).await?;
    let order = if query.unanswered {
        "first_unanswered_at asc"
    } else {
        "opened_at desc"
    };
    // language=PostgreSQL
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "select {COLUMNS} from conversations
         where company_id = $1
           and ($2::uuid is null or channel_id = $2)
           and ($3::text is null or status = $3)
           and ($4::text is null or lead_source = $4)
           and (not $5 or first_unanswered_at is not null)
         order by {order}, conversation_id limit $6"
    ))
    .bind(company_id)
    .bind(query.channel_id)
    .bind(&query.status)
    .bind(&query.lead_source)
    .bind(query.unanswered)
    .bind(query.limit.unwrap_or(100).clamp(1, 500))
    .fetch_all(&state.pool)
    .await?;
    let key = scope_key(&state, company.tenant_id().0).await?;
    let conversations = rows
        .iter()
        .map(|row| row.view(&key))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(json!({ "conversations": conversations })))
}

/// One conversation.
#[utoipa::path(
    get, path = "/conversations/{id}",
    params(("id" = Uuid, Path, description = "The conversation"), MinPositionHeader),
    responses((status = 200, description = "`{conversation_id, channel_id, platform, \
        lead_source, …}` as in the list", body = Object), Problems)
)]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    MinPosition(position): MinPosition,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (id, _) = authorized_conversation(&state, &caller, &id).await?;
    state.wait_for(CONVERSATIONS, position).await?;
    // language=PostgreSQL
    let row: Row = sqlx::query_as(&format!(
        "select {COLUMNS} from conversations where conversation_id = $1"
    ))
    .bind(id)
    .fetch_optional(&state.pool)
    .await?
    .ok_or_else(ApiError::not_found)?;
    let key = scope_key(&state, row.tenant_id).await?;
    Ok(Json(row.view(&key)?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    limit: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct MessageRow {
    direction: String,
    message_key: String,
    text_sealed: String,
    kind: String,
    at: DateTime<Utc>,
    batch: Option<i32>,
    status: Option<String>,
    provider_message_id: Option<String>,
    failure_reason: Option<String>,
    pricing_window: Option<String>,
    cost_micro_eur: Option<i64>,
    response_time_secs: Option<i64>,
}

/// The conversation's messages, oldest first.
#[utoipa::path(
    get, path = "/conversations/{id}/messages",
    params(("id" = Uuid, Path, description = "The conversation"), HistoryQuery, MinPositionHeader),
    responses((status = 200, description = "`{conversation_id, messages: [{direction: in|out, \
        message_id, text, kind, at, batch, status, provider_message_id, failure_reason, \
        pricing_window, cost_micro_eur, response_time_secs}]}`", body = Object), Problems)
)]
async fn history(
    State(state): State<AppState>,
    caller: Caller,
    MinPosition(position): MinPosition,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> Result<Json<Value>, ApiError> {
    let (id, conversation) = authorized_conversation(&state, &caller, &id).await?;
    state.wait_for(CONVERSATIONS, position).await?;
    // language=PostgreSQL
    let rows: Vec<MessageRow> = sqlx::query_as(
        "select direction, message_key, text_sealed, kind, at, batch, status,
                provider_message_id, failure_reason, pricing_window, cost_micro_eur,
                response_time_secs
         from conversation_messages where conversation_id = $1
         order by at, position limit $2",
    )
    .bind(id)
    .bind(query.limit.unwrap_or(200).clamp(1, 1000))
    .fetch_all(&state.pool)
    .await?;
    let key = scope_key(&state, conversation.tenant_id().unwrap_or_default().0).await?;
    let messages = rows
        .iter()
        .map(|m| {
            Ok(json!({
                "direction": m.direction,
                "message_id": m.message_key,
                "text": open(&key, id, "text", &m.text_sealed)?,
                "kind": m.kind,
                "at": m.at,
                "batch": m.batch,
                "status": m.status,
                "provider_message_id": m.provider_message_id,
                "failure_reason": m.failure_reason,
                "pricing_window": m.pricing_window,
                "cost_micro_eur": m.cost_micro_eur,
                "response_time_secs": m.response_time_secs,
            }))
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(Json(json!({ "conversation_id": id, "messages": messages })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SendBody {
    text: String,
    #[serde(rename = "type")]
    message_type: MessageType,
    #[serde(default)]
    rich_media: bool,
}

/// The answer to a send or a retry.
#[derive(Serialize, utoipa::ToSchema)]
struct Sent {
    message_id: Uuid,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    provider_message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_reason: Option<String>,
    position: i64,
}

fn sent(report: SendReport) -> (StatusCode, Json<Sent>) {
    let (provider_message_id, failure_reason) = match report.outcome {
        Some(SendOutcome::Accepted {
            provider_message_id,
        }) => (Some(provider_message_id), None),
        Some(SendOutcome::Failed { reason }) => (None, Some(reason)),
        None => (None, None),
    };
    let status = match report.state {
        x8_domain::conversation::SendState::Accepted => "accepted",
        x8_domain::conversation::SendState::Failed => "failed",
        x8_domain::conversation::SendState::Pending => "sending",
    };
    (
        StatusCode::CREATED,
        Json(Sent {
            message_id: report.message_id,
            status,
            provider_message_id,
            failure_reason,
            position: report.position,
        }),
    )
}

/// Sends a message (recorded, priced in micro-euros, sent through the platform); a provider failure
/// is 201 with `status: failed`.
#[utoipa::path(
    post, path = "/conversations/{id}/messages",
    params(("id" = Uuid, Path, description = "The conversation"), IdempotencyKeyHeader),
    request_body = SendBody,
    responses((status = 200, description = "OK", body = Sent), Problems)
)]
async fn send(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SendBody>,
) -> Result<(StatusCode, Json<Sent>), ApiError> {
    let (id, _) = authorized_conversation(&state, &caller, &id).await?;
    let text = body.text.trim();
    if text.is_empty() || text.chars().count() > 4096 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_text",
            "text must be 1 to 4096 characters",
        ));
    }
    let ctx = state.context(Some(&caller), key, request_id);
    let reply = Reply {
        text: text.to_string(),
        message_type: body.message_type,
        rich_media: body.rich_media,
    };
    let report = sending::send(&state.commands, id, reply, &ctx).await?;
    Ok(sent(report))
}

/// Sends a failed message again.
#[utoipa::path(
    post, path = "/conversations/{id}/messages/{message_id}/retry",
    params(
        ("id" = Uuid, Path, description = "The conversation"),
        ("message_id" = Uuid, Path, description = "The outbound message"),
        IdempotencyKeyHeader,
    ),
    responses((status = 200, description = "OK", body = Sent), Problems)
)]
async fn retry(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    Path((id, message_id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Sent>), ApiError> {
    let (id, _) = authorized_conversation(&state, &caller, &id).await?;
    let message_id = path_id(&message_id)?;
    let ctx = state.context(Some(&caller), key, request_id);
    let report = sending::retry(&state.commands, id, message_id, &ctx).await?;
    Ok(sent(report))
}

/// The closed batch of inbound messages not yet taken; 404 `no_pending_batch` (with `closes_at`
/// while it fills).
#[utoipa::path(
    get, path = "/conversations/{id}/pending-batch",
    params(("id" = Uuid, Path, description = "The conversation")),
    responses((status = 200, description = "`{conversation_id, batch, first_at, last_at, \
        closed_at, messages: [{text, kind, sent_at}]}`", body = Object), Problems)
)]
async fn pending_batch(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (id, conversation) = authorized_conversation(&state, &caller, &id).await?;
    let now = state.commands.clock.now();
    let none = |closes_at: Option<DateTime<Utc>>| {
        let problem = ApiError::new(
            StatusCode::NOT_FOUND,
            "no_pending_batch",
            "no closed batch is waiting to be taken",
        );
        match closes_at {
            Some(at) => problem.with("closes_at", json!(at)),
            None => problem,
        }
    };
    let Some((batch, taken)) = conversation.latest_batch() else {
        return Err(none(None));
    };
    if taken {
        return Err(none(None));
    }
    if now < batch.closes_at() {
        return Err(none(Some(batch.closes_at())));
    }
    let key = scope_key(&state, conversation.tenant_id().unwrap_or_default().0).await?;
    let messages = conversation
        .batch_messages()
        .iter()
        .map(|m| {
            Ok(json!({
                "text": open(&key, id, "text", m.text.as_str())?,
                "kind": m.kind,
                "sent_at": m.sent_at,
            }))
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(Json(json!({
        "conversation_id": id,
        "batch": batch.number,
        "first_at": batch.first_at,
        "last_at": batch.last_at,
        "closed_at": batch.closes_at(),
        "messages": messages,
    })))
}

/// Marks a closed batch as taken (idempotent); 409 `batch_not_closed`.
#[utoipa::path(
    post, path = "/conversations/{id}/pending-batch/{batch}/take",
    params(("id" = Uuid, Path, description = "The conversation"), ("batch" = u32, Path,
        description = "The batch number")),
    responses((status = 200, description = "`{conversation_id, batch, position}`",
        body = Object), Problems)
)]
async fn take_batch(
    State(state): State<AppState>,
    caller: Caller,
    RequestId(request_id): RequestId,
    Path((id, batch)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let conversation = authorized_conversation(&state, &caller, &id).await?;
    let id = conversation.0;
    let batch: u32 = batch.parse().map_err(|_| ApiError::not_found())?;
    let ctx = state.context(Some(&caller), None, request_id);
    let command = ConversationCommand::TakeBatch {
        batch,
        at: state.commands.clock.now(),
    };
    let outcome = execute(&state, conversation, command, &ctx).await?;
    Ok(Json(
        json!({ "conversation_id": id, "batch": batch, "position": outcome }),
    ))
}

/// Resolves the conversation.
#[utoipa::path(
    post, path = "/conversations/{id}/resolve",
    params(("id" = Uuid, Path, description = "The conversation"), IdempotencyKeyHeader),
    responses((status = 200, description = "`{conversation_id, status: \"resolved\", \
        position}`", body = Object), Problems)
)]
async fn resolve(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let conversation = authorized_conversation(&state, &caller, &id).await?;
    let id = conversation.0;
    let ctx = state.context(Some(&caller), key, request_id);
    let command = ConversationCommand::Resolve {
        at: state.commands.clock.now(),
    };
    let position = execute(&state, conversation, command, &ctx).await?;
    Ok(Json(
        json!({ "conversation_id": id, "status": "resolved", "position": position }),
    ))
}

/// Executes `command` on `conversation` (its id and state), recorded as its business's.
async fn execute(
    state: &AppState,
    (id, conversation): (Uuid, Conversation),
    command: ConversationCommand,
    ctx: &x8_commands::CommandContext,
) -> Result<i64, ApiError> {
    let ctx = match conversation.tenant_id() {
        Some(tenant) => ctx.clone().for_tenant(tenant.0),
        None => ctx.clone(),
    };
    let outcome = state
        .commands
        .conversations
        .execute(&id.to_string(), command, &ctx)
        .await?;
    Ok(outcome.position())
}
