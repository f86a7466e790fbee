//! `x8-replay history <aggregate_type> <id>`: a stream's events for auditors.
//!
//! Each event with its time, actor, correlation and causation ids and its data. Sealed
//! personal fields (e-mails, names, phones, message texts, credentials) are opened for an
//! auditor who holds the master key (`X8_MASTER_KEY`) while the business's data key
//! exists; otherwise they show as `[sealed]`, and as `[erased]` once the business was
//! erased and its key destroyed (crypto-shredding, DOMAIN.md "Hard delete"). The amounts,
//! times and statuses around them stay readable.

use clap::Args;
use serde::Serialize;
use serde_json::Value;
use x8_commands::vault::{is_key_destroyed, MasterKey, ScopeKey, Vault, PLATFORM_SCOPE};
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
    /// Show personal fields as `[sealed]` even when `X8_MASTER_KEY` is set.
    #[arg(long)]
    redacted: bool,
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

/// The stream's events, oldest first, with every sealed field opened when the business's
/// data key exists and `vault` (the master key) is given; values that do not open (or an
/// erased business's) are redacted as by [`entries`].
///
/// A value's purpose is found from where it sits: `<stream kind>:<stream id>:<field>`
/// (`tenant:<id>:name`), with the parent field as prefix (`customer_name`), under an id
/// beside it (`courier_id` → `courier:<id>:<field>`), or the account e-mail and channel
/// credentials purposes. The purpose is authenticated, so a wrong guess never opens.
///
/// # Errors
/// As [`entries`]; the key cannot be read.
pub async fn opened_entries(
    store: &EventStore,
    vault: &Vault,
    aggregate_type: &str,
    id: &str,
) -> anyhow::Result<Vec<Entry>> {
    let events = read_stream(store.pool(), aggregate_type, id, StreamRange::default()).await?;
    let scope = events
        .first()
        .and_then(|e| e.tenant_id)
        .unwrap_or(PLATFORM_SCOPE);
    let keys = vault.existing_scope_keys(&[scope]).await?;
    let Some(key) = keys.get(&scope).filter(|_| !events.is_empty()) else {
        // No key (the business was erased) or no events: redacted, or the error.
        return entries(store, aggregate_type, id).await;
    };
    let upcasters = store.upcasters();
    Ok(events
        .into_iter()
        .map(|event| {
            let mut entry = Entry::sealed(event.upcast(&upcasters));
            open_sealed_fields(&mut entry.data, key, aggregate_type, id);
            entry
        })
        .collect())
}

/// Opens every sealed value of `body` (an event's fields, or a stream's state) with the
/// business's `key`, finding each one's purpose from where it sits in stream
/// `aggregate_type/id` (see [`opened_entries`]); a value that does not open shows as
/// [`SEALED`].
pub(crate) fn open_sealed_fields(body: &mut Value, key: &ScopeKey, aggregate_type: &str, id: &str) {
    if let Value::Object(body) = body {
        let siblings = body.clone();
        for (field, value) in body.iter_mut() {
            open_all(value, None, field, &|parent, field, sealed| {
                candidates(aggregate_type, id, parent, field, &siblings)
                    .iter()
                    .find_map(|purpose| key.open(purpose, sealed).ok())
                    .map(|plain| String::from_utf8_lossy(&plain).into_owned())
            });
        }
    }
}

/// The purposes a sealed `field` (inside `parent`, if nested) of a stream's event may have
/// been sealed for, most likely first.
fn candidates(
    aggregate_type: &str,
    id: &str,
    parent: Option<&str>,
    field: &str,
    siblings: &serde_json::Map<String, Value>,
) -> Vec<String> {
    let mut purposes = vec![Sealed::purpose(aggregate_type, id, field)];
    if let Some(parent) = parent {
        // `{parent}_{field}`; a delivery's `recipient` is sealed under the API's names.
        for prefix in [parent, "customer"] {
            let nested = format!("{prefix}_{field}");
            purposes.push(Sealed::purpose(aggregate_type, id, &nested));
        }
    }
    for (name, value) in siblings {
        if let (Some(kind), Some(other)) = (name.strip_suffix("_id"), value.as_str()) {
            purposes.push(Sealed::purpose(kind, other, field));
        }
    }
    purposes.push(x8_commands::accounts::EMAIL_PURPOSE.into());
    purposes.push(format!("channel-credentials:{id}"));
    purposes
}

/// Opens one sealed value given its parent field (if nested) and field: the plaintext, or
/// `None` when no purpose opens it.
type Opener<'a> = dyn Fn(Option<&str>, &str, &Sealed) -> Option<String> + 'a;

/// Replaces each sealed value under `value` (named `field`, inside `parent`) by what
/// `open` gives, or [`SEALED`].
fn open_all(value: &mut Value, parent: Option<&str>, field: &str, open: &Opener<'_>) {
    match value {
        Value::String(s) if s.starts_with(Sealed::V1) || s.starts_with(Sealed::LEGACY) => {
            let sealed = Sealed(s.clone());
            *s = open(parent, field, &sealed).unwrap_or_else(|| SEALED.to_string());
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| open_all(v, parent, field, open)),
        Value::Object(fields) => {
            for (name, v) in fields.iter_mut() {
                open_all(v, Some(field), name, open);
            }
        }
        _ => {}
    }
}

/// Prints the stream; with `X8_MASTER_KEY` set (and no `--redacted`), personal fields are
/// opened.
pub async fn run(store: &EventStore, opts: Opts) -> anyhow::Result<()> {
    let entries = match auditor_vault(store, opts.redacted)? {
        Some(vault) => opened_entries(store, &vault, &opts.aggregate_type, &opts.id).await?,
        None => entries(store, &opts.aggregate_type, &opts.id).await?,
    };
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

/// The vault an auditor opens personal fields with: `X8_MASTER_KEY` when set, unless the
/// output is to stay `redacted`.
///
/// # Errors
/// `X8_MASTER_KEY` is not a base64 key of 32 bytes.
pub(crate) fn auditor_vault(store: &EventStore, redacted: bool) -> anyhow::Result<Option<Vault>> {
    let master = std::env::var("X8_MASTER_KEY")
        .ok()
        .filter(|k| !k.trim().is_empty() && !redacted);
    Ok(match master {
        Some(master) => Some(Vault::new(
            store.pool().clone(),
            MasterKey::from_base64(&master)?,
        )),
        None => None,
    })
}

impl Entry {
    /// The event as shown, every sealed value replaced by `sealed` ([`SEALED`] or
    /// [`ERASED`]).
    pub fn of(event: RecordedEvent, sealed: &str) -> Self {
        let mut entry = Self::sealed(event);
        redact(&mut entry.data, sealed);
        entry
    }

    /// The event with its sealed values as stored.
    fn sealed(event: RecordedEvent) -> Self {
        let meta = |key: &str| {
            event
                .metadata
                .get(key)
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        // Events are externally tagged (`{"OrderPaid": {...}}`): show the body.
        let data = match event.payload {
            Value::Object(mut tagged)
                if tagged.len() == 1 && tagged.contains_key(&event.event_type) =>
            {
                tagged.remove(&event.event_type).unwrap_or(Value::Null)
            }
            other => other,
        };
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
