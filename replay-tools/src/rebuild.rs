//! `x8-replay rebuild <projection | all>`: empty a read model and replay it from the start.

use anyhow::bail;
use clap::Args;
use std::time::Instant;
use x8_eventstore::EventStore;
use x8_projections::ProjectionRunner;

/// Options of `rebuild`.
#[derive(Args)]
pub struct Opts {
    /// The projection's name (see `x8-replay lag`), or `all`.
    projection: String,
}

/// Rebuilds and reports events per second.
pub async fn run(store: &EventStore, opts: Opts) -> anyhow::Result<()> {
    let runner = ProjectionRunner::new(store.clone(), x8_projections::all());
    runner.register().await?;
    let selected: Vec<_> = runner
        .projections()
        .iter()
        .filter(|p| opts.projection == "all" || p.name() == opts.projection)
        .cloned()
        .collect();
    if selected.is_empty() {
        let names: Vec<_> = runner.projections().iter().map(|p| p.name()).collect();
        bail!(
            "no projection named {:?}; known: {}",
            opts.projection,
            names.join(", ")
        );
    }
    for projection in selected {
        let started = Instant::now();
        runner.rebuild(projection.as_ref()).await?;
        let events = runner.catch_up(projection.as_ref()).await?;
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "{}: {events} events in {seconds:.2} s ({:.0} events/s)",
            projection.name(),
            events as f64 / seconds.max(1e-9)
        );
    }
    Ok(())
}
