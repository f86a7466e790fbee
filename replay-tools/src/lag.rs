//! `x8-replay lag`: how far each projection is behind the head of the log.

use clap::Args;
use x8_eventstore::EventStore;
use x8_projections::ProjectionRunner;

/// Options of `lag` (none).
#[derive(Args)]
pub struct Opts {}

/// Prints one line per projection: events behind and the age of the oldest unapplied event.
pub async fn run(store: &EventStore, _opts: Opts) -> anyhow::Result<()> {
    let runner = ProjectionRunner::new(store.clone(), x8_projections::all());
    println!("{:<24} {:>12} {:>12}", "projection", "events", "seconds");
    for projection in runner.projections() {
        let lag = runner.lag(projection.name()).await?;
        println!(
            "{:<24} {:>12} {:>12.1}",
            projection.name(),
            lag.events,
            lag.seconds
        );
    }
    Ok(())
}
