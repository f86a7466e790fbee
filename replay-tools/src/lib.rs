//! `x8-replay`: tools for auditors and analysts that read the event log directly.
//!
//! One module per subcommand, each with its `Opts` and `run` (the binary in `main.rs` only
//! parses the command line); the library form lets the end-to-end tests call them:
//! - [`history`]: a stream's events with time, actor, correlation, causation and data.
//! - [`lag`]: how far each projection is behind the log.
//! - [`rebuild`]: rebuild read models blue/green, reporting events per second.
//! - [`state`]: an aggregate's state as of a time or version.
//! - [`checksum`]: deterministic digests of read models.
//! - [`export`]: events of a time range for analysts, as JSON lines or CSV.
//! - [`metrics`]: the daily metrics rebuilt from the events into CSV files.
//! - [`simulate`]: drive a running server with realistic traffic, then check it end to end.
//! - [`verify`]: replay every aggregate and check the invariants from history.

mod aggregates;
pub mod checksum;
pub mod export;
pub mod history;
pub mod lag;
pub mod metrics;
pub mod progress;
pub mod rebuild;
pub mod simulate;
pub mod state;
pub mod verify;

use std::sync::Arc;
use x8_projections::{Projection, ProjectionRunner};

/// The projections `selection` names: `all`, or one projection's name.
///
/// # Errors
/// An unknown name, listing the known ones.
pub fn select(
    runner: &ProjectionRunner,
    selection: &str,
) -> anyhow::Result<Vec<Arc<dyn Projection>>> {
    let selected: Vec<_> = runner
        .projections()
        .iter()
        .filter(|p| selection == "all" || p.name() == selection)
        .cloned()
        .collect();
    if selected.is_empty() {
        let names: Vec<_> = runner.projections().iter().map(|p| p.name()).collect();
        anyhow::bail!(
            "no projection named {selection:?}; known: {}, or all",
            names.join(", ")
        );
    }
    Ok(selected)
}

/// The next page of `$all` after `after` (up to `limit` events matching `filter`), waiting
/// while a writer that is still open holds newer events behind the read horizon: empty
/// only at the end of the log.
///
/// # Errors
/// The database fails.
pub async fn next_page(
    store: &x8_eventstore::EventStore,
    after: x8_eventstore::Checkpoint,
    limit: i64,
    filter: &x8_eventstore::all::AllFilter,
) -> anyhow::Result<Vec<x8_eventstore::RecordedEvent>> {
    loop {
        let batch = x8_eventstore::all::read_all(store.pool(), after, limit, filter).await?;
        if !batch.events.is_empty() || !batch.held_by_horizon {
            return Ok(batch.events);
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
