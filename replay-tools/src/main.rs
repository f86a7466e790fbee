//! `x8-replay`: the command line over the [`x8_replay`] subcommands.

use anyhow::Context;
use clap::{Parser, Subcommand};
use x8_eventstore::{pool, EventStore};
use x8_replay::{checksum, export, history, lag, metrics, rebuild, simulate, state, verify};

#[derive(Parser)]
#[command(
    name = "x8-replay",
    version,
    about = "Read and replay the X8 event log: stream histories and past states, projection lag, rebuilds, checksums, verification, exports, metrics; and a simulation of real traffic.",
    long_about = "Read and replay the X8 event log.\n\nConnects to DATABASE_URL \
                  (default postgres://postgres@127.0.0.1:5432/x8). Nothing here changes \
                  the event log itself: `rebuild` only rewrites a read model, `metrics` \
                  works in a scratch copy it drops, and `simulate` changes things only \
                  through the server it drives, as any client would."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show every event of one stream, oldest first, with who caused it and why.
    History(history::Opts),
    /// Show what one stream's record (an order, a loyalty account, a business…) was at a
    /// given time or after its Nth event, rebuilt from its events up to then.
    State(state::Opts),
    /// Show how many events each projection still has to apply.
    Lag(lag::Opts),
    /// Rebuild a read model (or all) from the first event into fresh tables, then swap
    /// them in; dashboards keep answering from the old tables meanwhile.
    Rebuild(rebuild::Opts),
    /// Print a fingerprint of a read model's contents (or of all), to compare a rebuild
    /// with the live model: equal contents give equal fingerprints.
    Checksum(checksum::Opts),
    /// Write the events of a time range (optionally one business's, or one kind's) as JSON
    /// lines or CSV, for analysis; personal fields are never included.
    Export(export::Opts),
    /// Work out the daily figures of every business (messages, replies, payments,
    /// deliveries, points) again from the events, for the days asked, into CSV files;
    /// the dashboards' own figures are not touched.
    Metrics(metrics::Opts),
    /// Drive a running server the way businesses and their customers use it (sign-ups,
    /// plans, channels, tens of thousands of messages, loyalty, deliveries, two account
    /// deletions), then check the dashboards, the log and the read models end to end.
    Simulate(simulate::Opts),
    /// Replay every stream of the log and check the platform's rules against its history
    /// (balances, plan limits, managers, payments, the global order). Exits with an error
    /// naming each stream that breaks one.
    Verify(verify::Opts),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/x8".into());
    let pool = pool::connect(&url, 4)
        .await
        .with_context(|| format!("cannot connect to {url}"))?;
    let store = EventStore::new(pool).with_upcasters(x8_domain::upcasters::all);
    match cli.command {
        Command::History(opts) => history::run(&store, opts).await,
        Command::State(opts) => state::run(&store, opts).await,
        Command::Lag(opts) => lag::run(&store, opts).await,
        Command::Rebuild(opts) => rebuild::run(&store, opts).await,
        Command::Checksum(opts) => checksum::run(&store, opts).await,
        Command::Export(opts) => export::run(&store, opts).await,
        Command::Metrics(opts) => metrics::run(&store, opts).await,
        Command::Simulate(opts) => simulate::run(&store, opts).await,
        Command::Verify(opts) => verify::run(&store, opts).await,
    }
}
