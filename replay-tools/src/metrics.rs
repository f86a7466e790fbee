//! `x8-replay metrics --from --to --out DIR`: the daily metrics rebuilt from the events into
//! CSV files, for analysts, without touching the production read models.
//!
//! The `tenants` and `metrics` projections are replayed from the first event into a
//! scratch schema (`x8_scratch_<random>`, see `ProjectionRunner::build_scratch`); the
//! figures are read from there with the same query the dashboards use (days cut in each
//! business's time zone), written out, and the scratch schema dropped. The live read
//! models, their checkpoints and the event log are only read.
//!
//! Files written in DIR:
//! - `daily_metrics.csv`: one row per business and local day of `[from, to]` (both
//!   included), zeros on quiet days: messages in by kind, messages out by type, their
//!   estimated cost (micro-euros), conversations started, replies, first-response times
//!   (count, mean, median, p90, seconds; empty on a day without replies), deliveries
//!   delivered / failed, loyalty points accrued / redeemed.
//! - `daily_payments.csv`: one row per business, local day and currency with payments:
//!   their count and sum in minor units.
//!
//! Erased businesses are not listed (their rows leave the read models with their key).

use crate::progress;
use chrono::{Days, NaiveDate};
use clap::Args;
use std::path::{Path, PathBuf};
use uuid::Uuid;
use x8_api::queries::daily_metrics::{daily, DayFigures, DayRange, MAX_DAYS};
use x8_domain::conversation::{InboundKind, MessageType};
use x8_eventstore::{pool, EventStore};
use x8_projections::{metrics::MetricsProjection, tenants::TenantsProjection};
use x8_projections::{Projection, ProjectionRunner};

/// Options of `metrics`.
#[derive(Args)]
pub struct Opts {
    /// First day, as YYYY-MM-DD (each business's own local day).
    #[arg(long)]
    pub from: NaiveDate,
    /// Last day, as YYYY-MM-DD, included.
    #[arg(long)]
    pub to: NaiveDate,
    /// Folder to write `daily_metrics.csv` and `daily_payments.csv` into (created when
    /// missing; files of those names are replaced).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Only this business (its tenant id).
    #[arg(long)]
    pub tenant: Option<Uuid>,
}

/// What `metrics` wrote.
#[derive(Debug, Clone)]
pub struct Written {
    /// Events replayed into the scratch read models.
    pub events: u64,
    /// Businesses listed.
    pub businesses: usize,
    /// Rows of `daily_metrics.csv` (business × day).
    pub days: usize,
    /// Rows of `daily_payments.csv`.
    pub payments: usize,
}

/// Rebuilds the metrics from the events and writes the CSV files (see the module docs);
/// `progress` gets the events replayed so far.
///
/// # Errors
/// `to` before `from`; the folder or files cannot be written; the database fails. The
/// scratch schema is dropped whatever happens after it was made.
pub async fn metrics(
    store: &EventStore,
    opts: &Opts,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> anyhow::Result<Written> {
    if opts.to < opts.from {
        anyhow::bail!("--to ({}) is before --from ({})", opts.to, opts.from);
    }
    std::fs::create_dir_all(&opts.out)?;
    let runner = ProjectionRunner::new(store.clone(), Vec::new());
    let schema = format!("x8_scratch_{}", Uuid::new_v4().simple());
    let projections: [&dyn Projection; 2] = [&TenantsProjection, &MetricsProjection];
    let scratch = runner
        .build_scratch(&projections, &schema, progress)
        .await?;
    let events = progress::events_in_log(store).await?;
    let written = write_files(store, &scratch.search_path(), opts).await;
    runner.drop_scratch(scratch).await?;
    Ok(Written { events, ..written? })
}

/// Reads the scratch read models (first on `search_path`) and writes both files.
async fn write_files(
    store: &EventStore,
    search_path: &str,
    opts: &Opts,
) -> anyhow::Result<Written> {
    let options = (*store.pool().connect_options())
        .clone()
        .options([("search_path", search_path)]);
    let scratch = pool::pool_options(2).connect_with(options).await?;
    // language=PostgreSQL
    let businesses: Vec<(Uuid, String)> = sqlx::query_as(
        "select tenant_id, time_zone from tenants
         where $1::uuid is null or tenant_id = $1 order by tenant_id",
    )
    .bind(opts.tenant)
    .fetch_all(&scratch)
    .await?;
    let mut days = csv::Writer::from_path(opts.out.join("daily_metrics.csv"))?;
    let mut payments = csv::Writer::from_path(opts.out.join("daily_payments.csv"))?;
    days.write_record(day_header())?;
    payments.write_record(["tenant_id", "day", "currency", "count", "amount_minor"])?;
    let mut written = Written {
        events: 0,
        businesses: businesses.len(),
        days: 0,
        payments: 0,
    };
    for (tenant, time_zone) in &businesses {
        for range in ranges(opts.from, opts.to) {
            for figures in daily(&scratch, *tenant, time_zone, range, None).await? {
                days.write_record(day_row(*tenant, time_zone, &figures))?;
                written.days += 1;
                for paid in &figures.payments {
                    payments.write_record([
                        tenant.to_string(),
                        figures.day.to_string(),
                        paid.currency.clone(),
                        paid.count.to_string(),
                        paid.amount_minor.to_string(),
                    ])?;
                    written.payments += 1;
                }
            }
        }
    }
    days.flush()?;
    payments.flush()?;
    scratch.close().await;
    Ok(written)
}

/// `[from, to]` cut into ranges the daily query accepts (at most [`MAX_DAYS`] each).
fn ranges(from: NaiveDate, to: NaiveDate) -> Vec<DayRange> {
    let mut ranges = Vec::new();
    let mut start = from;
    while start <= to {
        let end = start
            .checked_add_days(Days::new(MAX_DAYS - 1))
            .map_or(to, |end| end.min(to));
        ranges.extend(DayRange::new(start, end).ok());
        match end.succ_opt() {
            Some(next) => start = next,
            None => break,
        }
    }
    ranges
}

fn day_header() -> Vec<String> {
    let mut header: Vec<String> = ["tenant_id", "time_zone", "day"].map(String::from).into();
    header.extend(InboundKind::ALL.map(|k| format!("messages_in_{}", k.as_str())));
    header.extend(MessageType::ALL.map(|t| format!("messages_out_{}", t.as_str())));
    header.extend(
        [
            "message_cost_micro_eur",
            "conversations_started",
            "replies",
            "first_response_count",
            "first_response_avg_secs",
            "first_response_p50_secs",
            "first_response_p90_secs",
            "deliveries_delivered",
            "deliveries_failed",
            "points_accrued",
            "points_redeemed",
        ]
        .map(String::from),
    );
    header
}

fn day_row(tenant: Uuid, time_zone: &str, day: &DayFigures) -> Vec<String> {
    let mut row = vec![
        tenant.to_string(),
        time_zone.to_string(),
        day.day.to_string(),
    ];
    let count = |counts: &std::collections::BTreeMap<String, i64>, key: &str| {
        counts.get(key).copied().unwrap_or(0).to_string()
    };
    row.extend(InboundKind::ALL.map(|k| count(&day.messages_in, k.as_str())));
    row.extend(MessageType::ALL.map(|t| count(&day.messages_out, t.as_str())));
    let response = day.first_response_secs.as_ref();
    row.extend([
        day.message_cost_micro_eur.to_string(),
        day.conversations_started.to_string(),
        day.replies.to_string(),
        response.map_or("0".into(), |r| r.count.to_string()),
        response.map_or(String::new(), |r| r.avg.to_string()),
        response.map_or(String::new(), |r| r.p50.to_string()),
        response.map_or(String::new(), |r| r.p90.to_string()),
        day.deliveries.delivered.to_string(),
        day.deliveries.failed.to_string(),
        day.points.accrued.to_string(),
        day.points.redeemed.to_string(),
    ]);
    row
}

/// Writes the files and prints where, with a progress bar over the replay.
pub async fn run(store: &EventStore, opts: Opts) -> anyhow::Result<()> {
    let bar = progress::bar(progress::events_in_log(store).await?, "metrics");
    let written = metrics(store, &opts, &|events| bar.set_position(events)).await?;
    bar.finish_and_clear();
    let out = Path::new(&opts.out);
    println!(
        "{} events replayed; {} businesses: {} days in {}, {} payment rows in {}",
        written.events,
        written.businesses,
        written.days,
        out.join("daily_metrics.csv").display(),
        written.payments,
        out.join("daily_payments.csv").display(),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(raw: &str) -> NaiveDate {
        raw.parse().expect("date")
    }

    #[test]
    fn a_long_range_is_cut_into_ranges_the_daily_query_takes() {
        let cut = ranges(date("2024-01-01"), date("2026-01-01"));
        assert_eq!(cut.len(), 2);
        assert_eq!(cut[0].from, date("2024-01-01"));
        assert_eq!(cut[1].from, cut[0].to.succ_opt().unwrap());
        assert_eq!(cut[1].to, date("2026-01-01"));
        assert_eq!(ranges(date("2026-01-01"), date("2026-01-01")).len(), 1);
    }
}
