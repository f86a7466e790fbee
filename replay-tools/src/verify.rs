//! `x8-replay verify`: replays every aggregate from the log and checks the platform's
//! invariants against history, not against today's read models.
//!
//! What it checks:
//! - **`$all`**: reading the log from the start in commit-safe order returns every stored
//!   event exactly once (no position skipped, none read twice).
//! - **Streams**: each stream's sequence runs 1, 2, 3… with no gap, and every event (after
//!   the upcasters) is one its aggregate knows and applies.
//! - **Invariants** (DOMAIN.md), checked before or after each event is applied:
//!   a loyalty balance is never below zero; a channel slot is never reserved past the
//!   plan's limit; a business never gets a second manager (a reassignment names the
//!   manager it had); an order is never paid twice.
//!
//! Erased businesses pass like any other: their events stay whole and in order, only the
//! sealed personal fields in them no longer open (nothing here opens them).

use crate::aggregates::{replay_for, Replay};
use crate::progress;
use futures::TryStreamExt as _;
use serde::Serialize;
use std::collections::HashSet;
use x8_eventstore::all::AllFilter;
use x8_eventstore::stream::every_stream;
use x8_eventstore::{Checkpoint, EventStore, RecordedEvent};

/// Options of `verify`.
#[derive(clap::Args)]
pub struct Opts {
    /// Print the report as one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// One broken rule, with the stream (and event) where history breaks it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Violation {
    /// `aggregate_type/aggregate_id`, or `$all` for the global order.
    pub stream: String,
    /// The offending event's sequence in its stream, when one event breaks it.
    pub sequence: Option<i64>,
    /// What is wrong, in words.
    pub rule: String,
}

/// What `verify` read and found.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// Events in the log.
    pub events: u64,
    /// Streams replayed.
    pub streams: u64,
    /// Every broken rule; empty when history is sound.
    pub violations: Vec<Violation>,
}

/// Events read from `$all` per query.
const BATCH: i64 = 5_000;

/// Replays the whole log and returns what it found. Run it while nothing appends (or
/// accept that events committed during the run may be counted in one pass and not in the
/// other, which shows as a `$all` violation).
///
/// # Errors
/// The database failing; a broken rule is a [`Violation`], not an error.
pub async fn verify(store: &EventStore) -> anyhow::Result<Report> {
    verify_with_progress(store, &|_| {}).await
}

/// As [`verify`], calling `progress` with the events read so far over both passes
/// (`$all`, then every stream: twice the log's length in all).
///
/// # Errors
/// As [`verify`].
pub async fn verify_with_progress(
    store: &EventStore,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> anyhow::Result<Report> {
    let mut report = Report::default();
    let (violations, read_in_first_pass) = check_global_order(store, progress).await?;
    report.violations.extend(violations);
    let upcasters = store.upcasters();
    let mut events = every_stream(store.pool());
    let mut replay: Option<StreamReplay> = None;
    while let Some(event) = events.try_next().await? {
        let event = event.upcast(&upcasters);
        report.events += 1;
        if report.events % BATCH as u64 == 0 {
            progress(read_in_first_pass + report.events);
        }
        if !replay.as_ref().is_some_and(|r| r.holds(&event)) {
            report.streams += 1;
            replay = Some(StreamReplay::start(&event));
        }
        if let Some(replay) = replay.as_mut() {
            if let Some(violation) = replay.apply(&event) {
                report.violations.push(violation);
            }
        }
    }
    Ok(report)
}

/// Prints the report; fails (non-zero exit) naming each offending stream.
pub async fn run(store: &EventStore, opts: Opts) -> anyhow::Result<()> {
    let bar = progress::bar(2 * progress::events_in_log(store).await?, "verify");
    let report = verify_with_progress(store, &|read| bar.set_position(read)).await?;
    bar.finish_and_clear();
    if opts.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{} events in {} streams replayed",
            report.events, report.streams
        );
        for v in &report.violations {
            match v.sequence {
                Some(sequence) => println!("VIOLATION {} #{sequence}: {}", v.stream, v.rule),
                None => println!("VIOLATION {}: {}", v.stream, v.rule),
            }
        }
    }
    if !report.violations.is_empty() {
        anyhow::bail!("{} invariant violation(s)", report.violations.len());
    }
    if !opts.json {
        println!("every invariant holds");
    }
    Ok(())
}

/// Reads `$all` from the start and compares what it returns with what the table holds;
/// returns the violations and how many events `$all` returned.
async fn check_global_order(
    store: &EventStore,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> anyhow::Result<(Vec<Violation>, u64)> {
    let mut seen = HashSet::new();
    let mut twice = Vec::new();
    let mut after = Checkpoint::START;
    loop {
        let events = crate::next_page(store, after, BATCH, &AllFilter::default()).await?;
        let Some(last) = events.last() else {
            break;
        };
        after = last.checkpoint();
        for event in &events {
            if !seen.insert(event.global_position) {
                twice.push(event.global_position);
            }
        }
        progress(seen.len() as u64);
    }
    // language=PostgreSQL
    let stored: i64 = sqlx::query_scalar("select count(*) from events")
        .fetch_one(store.pool())
        .await?;
    let mut violations: Vec<Violation> = twice
        .into_iter()
        .map(|position| Violation {
            stream: "$all".into(),
            sequence: None,
            rule: format!("global position {position} read twice"),
        })
        .collect();
    if seen.len() as i64 != stored {
        violations.push(Violation {
            stream: "$all".into(),
            sequence: None,
            rule: format!("$all returned {} of the {stored} stored events", seen.len()),
        });
    }
    Ok((violations, seen.len() as u64))
}

/// One stream being replayed.
struct StreamReplay {
    aggregate_type: String,
    aggregate_id: String,
    last_sequence: i64,
    aggregate: Option<Box<dyn Replay>>,
}

impl StreamReplay {
    fn start(first: &RecordedEvent) -> Self {
        Self {
            aggregate_type: first.aggregate_type.clone(),
            aggregate_id: first.aggregate_id.clone(),
            last_sequence: 0,
            aggregate: replay_for(&first.aggregate_type),
        }
    }

    fn holds(&self, event: &RecordedEvent) -> bool {
        self.aggregate_type == event.aggregate_type && self.aggregate_id == event.aggregate_id
    }

    /// Applies `event`; the first broken rule, if any.
    fn apply(&mut self, event: &RecordedEvent) -> Option<Violation> {
        let expected = self.last_sequence + 1;
        self.last_sequence = event.sequence;
        let broken = if event.sequence != expected {
            Some(format!(
                "sequence {} where {expected} was expected",
                event.sequence
            ))
        } else {
            match self.aggregate.as_mut() {
                // Report an unknown stream type once, at its first event.
                None if event.sequence == 1 => {
                    Some(format!("unknown aggregate type {:?}", event.aggregate_type))
                }
                None => None,
                Some(aggregate) => aggregate.apply(event).err().map(|b| b.to_string()),
            }
        };
        broken.map(|rule| Violation {
            stream: format!("{}/{}", self.aggregate_type, self.aggregate_id),
            sequence: Some(event.sequence),
            rule,
        })
    }
}
