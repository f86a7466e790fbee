//! `x8-replay rebuild <projection | all>`: rebuild read models blue/green: each is replayed
//! from the first event into fresh tables while the live ones keep answering, then swapped
//! in (see `x8_projections::rebuild`).

use crate::progress;
use clap::Args;
use x8_eventstore::EventStore;
use x8_projections::ProjectionRunner;

/// Options of `rebuild`.
#[derive(Args)]
pub struct Opts {
    /// The projection's name (see `x8-replay lag`), or `all`.
    projection: String,
}

/// Rebuilds the selected projections and reports events per second for each.
///
/// # Errors
/// An unknown projection name; a failed rebuild (its live read model is untouched).
pub async fn run(store: &EventStore, opts: Opts) -> anyhow::Result<()> {
    let runner = ProjectionRunner::new(store.clone(), x8_projections::all());
    runner.register().await?;
    let total = progress::events_in_log(store).await?;
    for projection in crate::select(&runner, &opts.projection)? {
        let bar = progress::bar(total, projection.name());
        let report = runner
            .rebuild(projection.as_ref(), &|events| bar.set_position(events))
            .await?;
        bar.finish_and_clear();
        println!(
            "{}: {} events in {:.2} s ({:.0} events/s)",
            projection.name(),
            report.events,
            report.seconds,
            report.events_per_second()
        );
    }
    Ok(())
}
