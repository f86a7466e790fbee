//! Progress bars (indicatif) for work that reads the whole log. They draw on standard
//! error and only when it is a terminal, so piped output stays clean.

use indicatif::{ProgressBar, ProgressStyle};
use x8_eventstore::EventStore;

/// A bar over `total` events labelled `label`.
pub fn bar(total: u64, label: &str) -> ProgressBar {
    counted(total, label, "events")
}

/// A bar over about `total` read-model rows (the planner's estimate) labelled `label`.
pub fn rows_bar(total: u64, label: &str) -> ProgressBar {
    counted(total, label, "rows")
}

fn counted(total: u64, label: &str, unit: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(&format!(
        "{{msg:>14}} [{{bar:40}}] {{pos}}/{{len}} {unit} ({{per_sec}}, {{eta}} left)"
    )) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(label.to_string());
    bar
}

/// How many events the log holds (the length of a bar over all of it).
///
/// # Errors
/// [`sqlx::Error`].
pub async fn events_in_log(store: &EventStore) -> Result<u64, sqlx::Error> {
    // language=PostgreSQL
    let count: i64 = sqlx::query_scalar("select count(*) from events")
        .fetch_one(store.pool())
        .await?;
    Ok(count.max(0) as u64)
}
