//! `x8-replay checksum <projection | all>`: a deterministic digest of read models, so a
//! rebuild can be compared with the live model (see `x8_projections::checksum`). Take it
//! when the projections have caught up (`x8-replay lag` shows 0).

use clap::Args;
use x8_eventstore::EventStore;
use x8_projections::checksum::{checksum, Checksum};
use x8_projections::ProjectionRunner;

/// Options of `checksum`.
#[derive(Args)]
pub struct Opts {
    /// The projection's name (see `x8-replay lag`), or `all`.
    projection: String,
    /// Print each table's row count and digest too.
    #[arg(long)]
    tables: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// The digests of the projections `selection` names (`all` or one name).
///
/// # Errors
/// An unknown projection name; a table that cannot be read.
pub async fn checksums(store: &EventStore, selection: &str) -> anyhow::Result<Vec<Checksum>> {
    let runner = ProjectionRunner::new(store.clone(), x8_projections::all());
    let mut sums = Vec::new();
    for projection in crate::select(&runner, selection)? {
        sums.push(checksum(store.pool(), projection.as_ref()).await?);
    }
    Ok(sums)
}

/// Prints one line per projection: `<name> <digest>`; with `--tables`, its tables below.
///
/// # Errors
/// As [`checksums`].
pub async fn run(store: &EventStore, opts: Opts) -> anyhow::Result<()> {
    let sums = checksums(store, &opts.projection).await?;
    if opts.json {
        println!("{}", serde_json::to_string_pretty(&sums)?);
        return Ok(());
    }
    for sum in sums {
        println!("{:<14} {}", sum.projection, sum.digest);
        if opts.tables {
            for table in sum.tables {
                println!(
                    "  {:<26} {:>9} rows  {}",
                    table.table, table.rows, table.digest
                );
            }
        }
    }
    Ok(())
}
