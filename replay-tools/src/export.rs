//! `x8-replay export --from --to [--tenant] [--type] --format jsonl|csv`: events for
//! analysts, in `$all` order, personal fields never included.
//!
//! Each line (or CSV row) is one event with its position, time, business, stream, type,
//! version, actor, correlation and causation ids and its data. Sealed fields show as
//! `[sealed]`, or `[erased]` for an erased business, exactly as in `history`.

use crate::history::{Entry, ERASED, SEALED};
use crate::progress;
use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, ValueEnum};
use std::collections::HashMap;
use std::io::Write;
use uuid::Uuid;
use x8_commands::vault::{is_key_destroyed, PLATFORM_SCOPE};
use x8_eventstore::all::AllFilter;
use x8_eventstore::{Checkpoint, EventStore};

/// Events read per query.
const PAGE: i64 = 2_000;

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated values with a header row; `data` is a JSON text column.
    Csv,
}

/// Options of `export`.
#[derive(Args)]
pub struct Opts {
    /// First moment included: an RFC 3339 time (`2026-11-01T00:00:00Z`) or a UTC date
    /// (`2026-11-01`, its midnight).
    #[arg(long, value_parser = parse_time)]
    pub from: DateTime<Utc>,
    /// First moment excluded, in the same forms (`--to 2026-12-01` ends with November).
    #[arg(long, value_parser = parse_time)]
    pub to: DateTime<Utc>,
    /// Only this business's events.
    #[arg(long)]
    pub tenant: Option<Uuid>,
    /// Only one kind of stream (`order`, `loyalty_account`, …) or one event type
    /// (`OrderPaid`, …: event types start with a capital letter).
    #[arg(long = "type")]
    pub kind: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: Format,
}

/// A time given as RFC 3339 or as a UTC date (its midnight).
///
/// # Errors
/// A message naming both accepted forms.
pub fn parse_time(raw: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        return Ok(at.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .and_then(|day| day.and_hms_opt(0, 0, 0))
        .map(|midnight| midnight.and_utc())
        .ok_or_else(|| format!("{raw:?} is neither an RFC 3339 time nor a YYYY-MM-DD date"))
}

/// One CSV row.
#[derive(serde::Serialize)]
struct Row<'a> {
    global_position: i64,
    recorded_at: String,
    tenant_id: Option<Uuid>,
    aggregate_type: &'a str,
    aggregate_id: &'a str,
    sequence: i64,
    event_type: &'a str,
    event_version: &'a str,
    actor: Option<&'a str>,
    correlation_id: Option<&'a str>,
    causation_id: Option<&'a str>,
    data: String,
}

/// Writes the selected events to `out`; returns how many.
///
/// # Errors
/// `from` not before `to`; the database or the output fails.
pub async fn export(store: &EventStore, opts: &Opts, out: impl Write) -> anyhow::Result<u64> {
    anyhow::ensure!(opts.from < opts.to, "--from must be before --to");
    let (event_types, aggregate_type) = match &opts.kind {
        Some(kind) if kind.starts_with(char::is_uppercase) => (Some(vec![kind.clone()]), None),
        Some(kind) => (None, Some(kind.as_str())),
        None => (None, None),
    };
    let filter = AllFilter {
        tenant_id: opts.tenant,
        event_types,
    };
    let mut writer = Writer::new(opts.format, out);
    let bar = progress::bar(progress::events_in_log(store).await?, "export");
    let upcasters = store.upcasters();
    let mut shown: HashMap<Option<Uuid>, &'static str> = HashMap::new();
    let mut checkpoint = Checkpoint::START;
    let mut written = 0;
    loop {
        let events = crate::next_page(store, checkpoint, PAGE, &filter).await?;
        let Some(last) = events.last() else {
            break;
        };
        checkpoint = last.checkpoint();
        bar.inc(events.len() as u64);
        for event in events {
            let wanted = (opts.from..opts.to).contains(&event.recorded_at)
                && aggregate_type.is_none_or(|t| t == event.aggregate_type);
            if !wanted {
                continue;
            }
            let sealed = match shown.get(&event.tenant_id) {
                Some(sealed) => *sealed,
                None => {
                    let scope = event.tenant_id.unwrap_or(PLATFORM_SCOPE);
                    let sealed = if is_key_destroyed(store.pool(), scope).await? {
                        ERASED
                    } else {
                        SEALED
                    };
                    *shown.entry(event.tenant_id).or_insert(sealed)
                }
            };
            writer.write(&Entry::of(event.upcast(&upcasters), sealed))?;
            written += 1;
        }
    }
    bar.finish_and_clear();
    writer.finish()?;
    Ok(written)
}

/// Writes the export to standard output; the count goes to standard error.
///
/// # Errors
/// As [`export`].
pub async fn run(store: &EventStore, opts: Opts) -> anyhow::Result<()> {
    let stdout = std::io::stdout().lock();
    let written = export(store, &opts, std::io::BufWriter::new(stdout)).await?;
    eprintln!("{written} events exported");
    Ok(())
}

enum Writer<W: Write> {
    Jsonl(W),
    Csv(Box<csv::Writer<W>>),
}

impl<W: Write> Writer<W> {
    fn new(format: Format, out: W) -> Self {
        match format {
            Format::Jsonl => Self::Jsonl(out),
            Format::Csv => Self::Csv(Box::new(csv::Writer::from_writer(out))),
        }
    }

    fn write(&mut self, entry: &Entry) -> anyhow::Result<()> {
        match self {
            Self::Jsonl(out) => {
                serde_json::to_writer(&mut *out, entry)?;
                out.write_all(b"\n")?;
            }
            Self::Csv(out) => out.serialize(Row {
                global_position: entry.global_position,
                recorded_at: entry.recorded_at.to_rfc3339(),
                tenant_id: entry.tenant_id,
                aggregate_type: &entry.aggregate_type,
                aggregate_id: &entry.aggregate_id,
                sequence: entry.sequence,
                event_type: &entry.event_type,
                event_version: &entry.event_version,
                actor: entry.actor.as_deref(),
                correlation_id: entry.correlation_id.as_deref(),
                causation_id: entry.causation_id.as_deref(),
                data: entry.data.to_string(),
            })?,
        }
        Ok(())
    }

    fn finish(self) -> anyhow::Result<()> {
        match self {
            Self::Jsonl(mut out) => out.flush().context("flushing the export")?,
            Self::Csv(mut out) => out.flush().context("flushing the export")?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn times_are_rfc_3339_or_a_utc_date() {
        assert_eq!(
            parse_time("2026-11-01").unwrap().to_rfc3339(),
            "2026-11-01T00:00:00+00:00"
        );
        assert_eq!(
            parse_time("2026-11-01T10:00:00+02:00")
                .unwrap()
                .to_rfc3339(),
            "2026-11-01T08:00:00+00:00"
        );
        assert!(parse_time("yesterday").is_err());
    }
}
