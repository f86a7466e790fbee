//! `x8-replay rebuild <projection | all>`: rebuild read models blue/green: each is replayed
//! from the first event into fresh tables while the live ones keep answering, then swapped
//! in; several are replayed together from one read of the log (see
//! `x8_projections::rebuild`).

use crate::progress;
use clap::Args;
use x8_eventstore::EventStore;
use x8_projections::{Projection, ProjectionRunner};

/// Options of `rebuild`.
#[derive(Args)]
pub struct Opts {
    /// The projection's name (see `x8-replay lag`), or `all`.
    projection: String,
}

/// Rebuilds the selected projections together (the log read once, each batch applied to
/// every one) and reports events per second.
///
/// # Errors
/// An unknown projection name; a failed rebuild (its live read model is untouched).
pub async fn run(store: &EventStore, opts: Opts) -> anyhow::Result<()> {
    let runner = ProjectionRunner::new(store.clone(), x8_projections::all());
    runner.register().await?;
    let total = progress::events_in_log(store).await?;
    let selected = crate::select(&runner, &opts.projection)?;
    let projections: Vec<&dyn Projection> = selected.iter().map(|p| p.as_ref()).collect();
    let bar = progress::bar(total, &opts.projection);
    let report = runner
        .rebuild_all(&projections, &|events| bar.set_position(events))
        .await?;
    bar.finish_and_clear();
    let names: Vec<&str> = projections.iter().map(|p| p.name()).collect();
    println!(
        "{}: {} events in {:.2} s ({:.0} events/s read; {:.0} events/s applied over {} projection{})",
        names.join(", "),
        report.events,
        report.seconds,
        report.events_per_second(),
        report.events_per_second() * projections.len() as f64,
        projections.len(),
        if projections.len() == 1 { "" } else { "s" },
    );
    Ok(())
}
