//! `x8-replay checksum <projection | all>`: a deterministic digest of read models, so a
//! rebuild can be compared with the live model (see `x8_projections::checksum`). Take it
//! when the projections have caught up (`x8-replay lag` shows 0).

use crate::progress;
use clap::Args;
use std::sync::Arc;
use x8_eventstore::EventStore;
use x8_projections::checksum::{checksum, Checksum};
use x8_projections::{Projection, ProjectionRunner};

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
    digest(store, &crate::select(&runner, selection)?, &|_| {}).await
}

/// Digests `projections` in turn, calling `progress` with the rows digested so far.
async fn digest(
    store: &EventStore,
    projections: &[Arc<dyn Projection>],
    progress: &(dyn Fn(u64) + Send + Sync),
) -> anyhow::Result<Vec<Checksum>> {
    let (mut sums, mut rows) = (Vec::new(), 0_u64);
    for projection in projections {
        let sum = checksum(store.pool(), projection.as_ref()).await?;
        rows += sum.tables.iter().map(|t| t.rows.max(0) as u64).sum::<u64>();
        progress(rows);
        sums.push(sum);
    }
    Ok(sums)
}

/// The planner's estimate of the rows in `projections`' tables (a progress bar's length).
async fn estimated_rows(
    store: &EventStore,
    projections: &[Arc<dyn Projection>],
) -> Result<u64, sqlx::Error> {
    let tables: Vec<&str> = projections
        .iter()
        .flat_map(|p| p.tables().iter().copied())
        .collect();
    // language=PostgreSQL
    let rows: f64 = sqlx::query_scalar(
        "select coalesce(sum(greatest(reltuples, 0)), 0)::float8 from pg_class
         where oid = any(array(select t::regclass from unnest($1::text[]) t))",
    )
    .bind(tables)
    .fetch_one(store.pool())
    .await?;
    Ok(rows as u64)
}

/// Prints one line per projection: `<name> <digest>`; with `--tables`, its tables below.
///
/// # Errors
/// As [`checksums`].
pub async fn run(store: &EventStore, opts: Opts) -> anyhow::Result<()> {
    let runner = ProjectionRunner::new(store.clone(), x8_projections::all());
    let projections = crate::select(&runner, &opts.projection)?;
    let bar = progress::rows_bar(estimated_rows(store, &projections).await?, "checksum");
    let sums = digest(store, &projections, &|rows| bar.set_position(rows)).await?;
    bar.finish_and_clear();
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
