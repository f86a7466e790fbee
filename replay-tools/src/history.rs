//! `x8-replay history <aggregate_type> <id>`: a stream's events for auditors.
//!
//! Each event with its time, actor, correlation and causation ids and its data. Sealed
//! personal fields (e-mails, names, phones, message texts, credentials) are never printed:
//! they show as `[sealed]`, or as `[erased]` once the business was erased and its data key
//! destroyed (crypto-shredding, DOMAIN.md "Hard delete"). The amounts, times and statuses
//! around them stay readable.

use clap::Args;
use serde::Serialize;
use serde_json::Value;
use x8_commands::vault::{is_key_destroyed, PLATFORM_SCOPE};
use x8_domain::Sealed;
use x8_eventstore::metadata::{ACTOR, CAUSATION_ID, CORRELATION_ID};
use x8_eventstore::stream::{read_stream, StreamRange};
use x8_eventstore::{EventStore, RecordedEvent};

/// Options of `history`.
#[derive(Args)]
pub struct Opts {
    /// The kind of stream, e.g. `tenant` or `user`.
    aggregate_type: String,
    /// The stream's id, e.g. a tenant id.
    id: String,
    /// Print one JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
}

/// What a sealed field shows while its business's data key exists.
pub const SEALED: &str = "[sealed]";
/// What a sealed field shows once its business was erased (the key destroyed).
pub const ERASED: &str = "[erased]";

/// One event as the history (and `export`) shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Its place in `$all`.
    pub global_position: i64,
    /// The business it belongs to; `None` for platform streams (staff, the Meta app pool).
    pub tenant_id: Option<uuid::Uuid>,
    /// The stream's kind, e.g. `order`.
    pub aggregate_type: String,
    /// The stream's id.
    pub aggregate_id: String,
    /// Version of the stream after the event (1-based).
    pub sequence: i64,
    /// When it was appended (UTC).
    pub recorded_at: chrono::DateTime<chrono::Utc>,
    /// Event type, e.g. `OrderPaid`.
    pub event_type: String,
    /// Payload version after the upcasters, e.g. `2.0`.
    pub event_version: String,
    /// Who caused it: `user:<id>:<role>`, `webhook:<provider>`, `system`, `anonymous`.
    pub actor: Option<String>,
    /// The request or process it belongs to.
    pub correlation_id: Option<String>,
    /// The message that caused it.
    pub causation_id: Option<String>,
    /// The event's fields, sealed ones replaced by [`SEALED`] or [`ERASED`].
    pub data: Value,
}

/// The stream's events, oldest first, sealed fields redacted.
///
/// # Errors
/// The stream has no events; the database fails.
pub async fn entries(
    store: &EventStore,
    aggregate_type: &str,
    id: &str,
) -> anyhow::Result<Vec<Entry>> {
    let events = read_stream(store.pool(), aggregate_type, id, StreamRange::default()).await?;
    let Some(first) = events.first() else {
        anyhow::bail!("no events in stream {aggregate_type}/{id}");
    };
    let scope = first.tenant_id.unwrap_or(PLATFORM_SCOPE);
    let shown = if is_key_destroyed(store.pool(), scope).await? {
        ERASED
    } else {
        SEALED
    };
    let upcasters = store.upcasters();
    Ok(events
        .into_iter()
        .map(|event| Entry::of(event.upcast(&upcasters), shown))
        .collect())
}

/// Prints the stream.
pub async fn run(store: &EventStore, opts: Opts) -> anyhow::Result<()> {
    let entries = entries(store, &opts.aggregate_type, &opts.id).await?;
    if !opts.json {
        println!(
            "{:>4}  {:<32}  {:<26}  {:<7}  {:<50}  {:<36}  {:<36}  data",
            "seq", "recorded at (UTC)", "event", "version", "actor", "correlation", "causation"
        );
    }
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    for e in &entries {
        if opts.json {
            println!("{}", serde_json::to_string(e)?);
        } else {
            println!(
                "{:>4}  {:<32}  {:<26}  {:<7}  {:<50}  {:<36}  {:<36}  {}",
                e.sequence,
                e.recorded_at.to_rfc3339(),
                e.event_type,
                e.event_version,
                dash(&e.actor),
                dash(&e.correlation_id),
                dash(&e.causation_id),
                e.data,
            );
        }
    }
    Ok(())
}

impl Entry {
    /// The event as shown, every sealed value replaced by `sealed` ([`SEALED`] or
    /// [`ERASED`]).
    pub fn of(event: RecordedEvent, sealed: &str) -> Self {
        let meta = |key: &str| {
            event
                .metadata
                .get(key)
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        // Events are externally tagged (`{"OrderPaid": {...}}`): show the body.
        let mut data = match event.payload {
            Value::Object(mut tagged)
                if tagged.len() == 1 && tagged.contains_key(&event.event_type) =>
            {
                tagged.remove(&event.event_type).unwrap_or(Value::Null)
            }
            other => other,
        };
        redact(&mut data, sealed);
        Entry {
            global_position: event.global_position,
            tenant_id: event.tenant_id,
            aggregate_type: event.aggregate_type,
            aggregate_id: event.aggregate_id,
            sequence: event.sequence,
            recorded_at: event.recorded_at,
            actor: meta(ACTOR),
            correlation_id: meta(CORRELATION_ID),
            causation_id: meta(CAUSATION_ID),
            event_type: event.event_type,
            event_version: event.event_version,
            data,
        }
    }
}

/// Replaces every sealed value (see [`Sealed`]) anywhere in `value` with `shown`.
pub(crate) fn redact(value: &mut Value, shown: &str) {
    match value {
        Value::String(s) if s.starts_with(Sealed::V1) || s.starts_with(Sealed::LEGACY) => {
            *s = shown.to_string();
        }
        Value::Array(items) => items.iter_mut().for_each(|v| redact(v, shown)),
        Value::Object(fields) => fields.values_mut().for_each(|v| redact(v, shown)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sealed_values_are_replaced_wherever_they_are_and_the_facts_stay() {
        // given an event body with sealed values at several depths
        let mut data = json!({
            "amount": {"minor": 1250, "currency": "EUR"},
            "text": "x8v1.AAAA",
            "contact": {"name": "x8v1.BBBB", "phone": null, "channel": "telegram"},
            "notes": ["x8v0.YW5h", "plain"],
        });
        // when it is redacted for an erased business
        redact(&mut data, ERASED);
        // then only the sealed values changed
        assert_eq!(
            data,
            json!({
                "amount": {"minor": 1250, "currency": "EUR"},
                "text": "[erased]",
                "contact": {"name": "[erased]", "phone": null, "channel": "telegram"},
                "notes": ["[erased]", "plain"],
            })
        );
    }
}
