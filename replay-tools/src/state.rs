//! `x8-replay state <aggregate_type> <id> --as-of <time | version>`: what one stream's
//! aggregate was at a moment, replayed from its events up to then (an auditor's "what did
//! the system believe on March 3rd?").
//!
//! The state is shown as the aggregate keeps it (JSON), after the same upcasters the
//! server uses. Personal fields are opened, redacted or shown as erased exactly as in
//! `history`.

use crate::aggregates::{replay_for, Broken};
use crate::history::{auditor_vault, open_sealed_fields, redact, ERASED, SEALED};
use chrono::{DateTime, Utc};
use clap::Args;
use serde::Serialize;
use serde_json::Value;
use std::str::FromStr;
use x8_commands::vault::{is_key_destroyed, Vault, PLATFORM_SCOPE};
use x8_eventstore::stream::{read_stream, StreamRange};
use x8_eventstore::EventStore;

/// Options of `state`.
#[derive(Args)]
pub struct Opts {
    /// The kind of stream, e.g. `loyalty_account`, `order` or `tenant`.
    aggregate_type: String,
    /// The stream's id, e.g. a loyalty account id.
    id: String,
    /// The moment to look at: a time (RFC 3339 such as 2026-03-03T12:00:00Z, or a date
    /// such as 2026-03-03 meaning its midnight UTC) or a version number (the state right
    /// after the stream's Nth event). Without it: the state now.
    #[arg(long, value_name = "TIME|VERSION")]
    as_of: Option<AsOf>,
    /// Show personal fields as `[sealed]` even when `X8_MASTER_KEY` is set.
    #[arg(long)]
    redacted: bool,
}

/// The moment a state is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    /// Right after the stream's event with this sequence (1-based).
    Version(i64),
    /// Including every event recorded at or before this time (UTC).
    Time(DateTime<Utc>),
}

impl FromStr for AsOf {
    type Err = String;

    /// A whole number is a version; anything else must be a time
    /// ([`crate::export::parse_time`]).
    fn from_str(raw: &str) -> Result<Self, String> {
        match raw.parse::<i64>() {
            Ok(version) if version >= 1 => Ok(Self::Version(version)),
            Ok(_) => Err("a version counts from 1".into()),
            Err(_) => crate::export::parse_time(raw)
                .map(Self::Time)
                .map_err(|e| format!("{e}, nor a version number")),
        }
    }
}

/// A stream's state at a moment.
#[derive(Debug, Clone, Serialize)]
pub struct StateAt {
    /// The stream's kind.
    pub aggregate_type: String,
    /// The stream's id.
    pub aggregate_id: String,
    /// How many of the stream's events the state includes.
    pub version: i64,
    /// When the last of them was recorded (UTC).
    pub last_event_at: DateTime<Utc>,
    /// The aggregate's state after them, sealed fields opened or redacted.
    pub state: Value,
    /// Rules of DOMAIN.md its history broke on the way (as `verify` reports them).
    pub violations: Vec<String>,
}

/// Replays stream `aggregate_type/id` up to `as_of` (all of it when `None`). With `vault`
/// (the master key) personal fields are opened while the business's key exists.
///
/// # Errors
/// An aggregate type the domain does not have; no event in the stream up to `as_of`; an
/// event its aggregate cannot read; the database fails.
pub async fn state_at(
    store: &EventStore,
    aggregate_type: &str,
    id: &str,
    as_of: Option<AsOf>,
    vault: Option<&Vault>,
) -> anyhow::Result<StateAt> {
    let Some(mut replay) = replay_for(aggregate_type) else {
        anyhow::bail!("no aggregate type {aggregate_type:?}");
    };
    let range = StreamRange {
        up_to_version: match as_of {
            Some(AsOf::Version(version)) => Some(version),
            _ => None,
        },
        recorded_until: match as_of {
            Some(AsOf::Time(at)) => Some(at),
            _ => None,
        },
        ..StreamRange::default()
    };
    let events = read_stream(store.pool(), aggregate_type, id, range).await?;
    let Some(last) = events.last() else {
        anyhow::bail!("stream {aggregate_type}/{id} has no events up to that moment");
    };
    let (version, last_event_at, tenant_id) = (last.sequence, last.recorded_at, last.tenant_id);
    let upcasters = store.upcasters();
    let mut violations = Vec::new();
    for event in events {
        let event = event.upcast(&upcasters);
        match replay.apply(&event) {
            Ok(()) => {}
            Err(Broken::Unreadable(why)) => anyhow::bail!("event #{}: {why}", event.sequence),
            Err(Broken::Rule(rule)) => violations.push(format!("#{}: {rule}", event.sequence)),
        }
    }
    let mut state = replay.state()?;
    let scope = tenant_id.unwrap_or(PLATFORM_SCOPE);
    let key = match vault {
        Some(vault) => vault.existing_scope_keys(&[scope]).await?.remove(&scope),
        None => None,
    };
    match key {
        Some(key) => open_sealed_fields(&mut state, &key, aggregate_type, id),
        None if is_key_destroyed(store.pool(), scope).await? => redact(&mut state, ERASED),
        None => redact(&mut state, SEALED),
    }
    Ok(StateAt {
        aggregate_type: aggregate_type.into(),
        aggregate_id: id.into(),
        version,
        last_event_at,
        state,
        violations,
    })
}

/// Prints the state as indented JSON.
pub async fn run(store: &EventStore, opts: Opts) -> anyhow::Result<()> {
    let vault = auditor_vault(store, opts.redacted)?;
    let at = state_at(
        store,
        &opts.aggregate_type,
        &opts.id,
        opts.as_of,
        vault.as_ref(),
    )
    .await?;
    println!("{}", serde_json::to_string_pretty(&at)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moment_is_a_version_or_a_time() {
        assert_eq!("3".parse(), Ok(AsOf::Version(3)));
        assert_eq!(
            "2026-03-03T12:00:00+01:00".parse::<AsOf>().map(|a| a
                == AsOf::Time(
                    DateTime::parse_from_rfc3339("2026-03-03T11:00:00Z")
                        .unwrap()
                        .to_utc()
                )),
            Ok(true)
        );
        assert!(matches!("2026-03-03".parse(), Ok(AsOf::Time(_))));
        assert!("0".parse::<AsOf>().is_err());
        assert!("yesterday".parse::<AsOf>().is_err());
    }
}
