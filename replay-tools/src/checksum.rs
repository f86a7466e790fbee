//! `x8-replay checksum <projection | all>`: a deterministic digest of read models, so a
//! rebuild can be compared with the live model (see `x8_projections::checksum`). Take it
//! when the projections have caught up (`x8-replay lag` shows 0).

use crate::progress;
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

/// As [`checksums`], with a bar over the read models' rows.
async fn checksums_with_bar(store: &EventStore, selection: &str) -> anyhow::Result<Vec<Checksum>> {
    let runner = ProjectionRunner::new(store.clone(), x8_projections::all());
    let selected = crate::select(&runner, selection)?;
    let mut rows = 0_i64;
    for table in selected.iter().flat_map(|p| p.tables().iter()) {
        // language=PostgreSQL
        let estimate: f32 = sqlx::query_scalar(
            "select greatest(reltuples, 0) from pg_class where oid = $1::regclass",
        )
        .bind(table)
        .fetch_one(store.pool())
        .await?;
        rows += estimate as i64;
    }
    let bar = progress::rows_bar(rows.max(0) as u64, "checksum");
    let mut sums = Vec::new();
    for projection in selected {
        let sum = checksum(store.pool(), projection.as_ref()).await?;
        bar.inc(sum.tables.iter().map(|t| t.rows.max(0) as u64).sum());
        sums.push(sum);
    }
    bar.finish_and_clear();
    Ok(sums)
}

/// Prints one line per projection: `<name> <digest>`; with `--tables`, its tables below.
///
/// # Errors
/// As [`checksums`].
pub async fn run(store: &EventStore, opts: Opts) -> anyhow::Result<()> {
    let sums = checksums_with_bar(store, &opts.projection).await?;
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
