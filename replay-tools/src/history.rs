//! `x8-replay history <aggregate_type> <id>`: a stream's events for auditors.

use clap::Args;
use x8_eventstore::stream::{read_stream, StreamRange};
use x8_eventstore::EventStore;

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

/// Prints the stream.
pub async fn run(store: &EventStore, opts: Opts) -> anyhow::Result<()> {
    let events = read_stream(
        store.pool(),
        &opts.aggregate_type,
        &opts.id,
        StreamRange::default(),
    )
    .await?;
    if events.is_empty() {
        anyhow::bail!("no events in stream {}/{}", opts.aggregate_type, opts.id);
    }
    let field = |e: &x8_eventstore::RecordedEvent, key: &str| {
        e.metadata
            .get(key)
            .and_then(|v| v.as_str())
            .unwrap_or("-")
            .to_string()
    };
    if !opts.json {
        println!(
            "{:>4}  {:<30}  {:<22}  {:<7}  {:<50}  {:<36}  causation",
            "seq", "recorded at (UTC)", "event", "version", "actor", "correlation"
        );
    }
    for event in &events {
        if opts.json {
            println!("{}", serde_json::to_string(event)?);
        } else {
            println!(
                "{:>4}  {:<30}  {:<22}  {:<7}  {:<50}  {:<36}  {}",
                event.sequence,
                event.recorded_at.to_rfc3339(),
                event.event_type,
                event.event_version,
                field(event, "actor"),
                field(event, "correlation_id"),
                field(event, "causation_id"),
            );
        }
    }
    Ok(())
}
