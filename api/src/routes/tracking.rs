//! The public tracking page of a delivery (no login; DOMAIN.md "Deliveries"):
//!
//! - `GET /track/{token}` → `{status, courier_first_name, eta, location: {lat, lng, at},
//!   updated_at}`, and nothing else: no ids, no business, no order, no address, no phone.
//!   404 `not_found` for an unknown or revoked token (the same answer, so a guess learns
//!   nothing).
//! - `GET /track/{token}/events` → Server-Sent Events: a `tracking` event with that view at
//!   once, then one each time the view changes (fed by the deliveries projection through
//!   `LISTEN x8_tracking`), and a `revoked` event when the token is revoked; a comment
//!   every 15 s keeps proxies from closing the stream.
//!
//! The token is looked up by its SHA-256; the read model never holds the token itself.

use crate::app::AppState;
use crate::error::ApiError;
use crate::openapi::Problems;
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use futures::stream::{self, Stream};
use serde_json::{json, Value};
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;
use x8_commands::deliveries::{courier_purpose, open, token_hash};
use x8_domain::{Sealed, TenantId};

/// The routes (outside `/api/v1`: these are pages' data for the public).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/track/{token}", get(page))
        .route("/track/{token}/events", get(events))
}

#[derive(sqlx::FromRow)]
struct TrackingRow {
    delivery_id: Uuid,
    tenant_id: Uuid,
    status: String,
    eta: Option<DateTime<Utc>>,
    last_lat: Option<f64>,
    last_lng: Option<f64>,
    last_location_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
    courier_id: Option<Uuid>,
    first_name_sealed: Option<String>,
}

/// The delivery behind `hash` and its public view, `None` for an unknown or revoked token.
async fn view(state: &AppState, hash: &str) -> Result<Option<(Uuid, Value)>, ApiError> {
    // language=PostgreSQL
    let row: Option<TrackingRow> = sqlx::query_as(
        "select d.delivery_id, d.tenant_id, d.status, d.eta, d.last_lat, d.last_lng,
                d.last_location_at, d.updated_at, d.courier_id, c.first_name_sealed
         from deliveries d left join couriers c on c.courier_id = d.courier_id
         where d.token_hash = $1",
    )
    .bind(hash)
    .fetch_optional(&state.pool)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let courier_first_name = match (row.courier_id, row.first_name_sealed) {
        (Some(courier), Some(sealed)) => Some(
            open(
                &state.commands,
                TenantId(row.tenant_id),
                &courier_purpose(courier, "first_name"),
                &Sealed(sealed),
            )
            .await?,
        ),
        _ => None,
    };
    let location = row
        .last_lat
        .zip(row.last_lng)
        .map(|(lat, lng)| json!({ "lat": lat, "lng": lng, "at": row.last_location_at }));
    Ok(Some((
        row.delivery_id,
        json!({
            "status": row.status,
            "courier_first_name": courier_first_name,
            "eta": row.eta,
            "location": location,
            "updated_at": row.updated_at,
        }),
    )))
}

/// A delivery's public tracking view (no login); 404 `not_found` for an unknown or revoked token.
#[utoipa::path(
    get, path = "/track/{token}",
    tag = "tracking",
    security(()),
    params(("token" = String, Path, description = "The tracking token from the delivery's \
        `tracking_url`")),
    responses((status = 200, description = "`{status, courier_first_name, eta, location: {lat, \
        lng, at}, updated_at}`", body = Object), Problems)
)]
pub(crate) async fn page(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (_, view) = view(&state, &token_hash(&token))
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(view))
}

/// Where a page's stream stands.
struct Feed {
    state: AppState,
    hash: String,
    delivery_id: Uuid,
    changes: tokio::sync::broadcast::Receiver<Uuid>,
    pending: Option<Value>,
    last: Option<Value>,
    done: bool,
}

/// Server-Sent Events: `tracking` with the view at once and on each change, `revoked` when the
/// token is revoked.
#[utoipa::path(
    get, path = "/track/{token}/events",
    tag = "tracking",
    security(()),
    params(("token" = String, Path, description = "The tracking token from the delivery's \
        `tracking_url`")),
    responses((status = 200, description = "`text/event-stream`: `tracking` and `revoked` \
        events", content_type = "text/event-stream", body = String), Problems)
)]
pub(crate) async fn events(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let hash = token_hash(&token);
    // Listen first, then read: a change committed in between is heard, not lost.
    let changes = state
        .tracking
        .subscribe()
        .await
        .map_err(ApiError::internal)?;
    let (delivery_id, first) = view(&state, &hash).await?.ok_or_else(ApiError::not_found)?;
    let feed = Feed {
        state,
        hash,
        delivery_id,
        changes,
        pending: Some(first),
        last: None,
        done: false,
    };
    let stream = stream::unfold(feed, |mut feed| async move {
        let event = next_event(&mut feed).await?;
        Some((Ok(event), feed))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// The next event of a page's stream, `None` when it ends.
async fn next_event(feed: &mut Feed) -> Option<Event> {
    if feed.done {
        return None;
    }
    loop {
        if let Some(view) = feed.pending.take() {
            if feed.last.as_ref() != Some(&view) {
                let event = Event::default().event("tracking").data(view.to_string());
                feed.last = Some(view);
                return Some(event);
            }
        }
        match feed.changes.recv().await {
            Ok(id) if id == feed.delivery_id || id.is_nil() => {}
            Ok(_) => continue,
            Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => return None,
        }
        match view(&feed.state, &feed.hash).await {
            Ok(Some((_, view))) => feed.pending = Some(view),
            Ok(None) => {
                feed.done = true;
                return Some(Event::default().event("revoked").data("{}"));
            }
            Err(_) => return None,
        }
    }
}
