//! Read-side queries too large for a handler: each reads projections only (never the
//! event log) and returns the response body's shape.

pub mod daily_metrics;
pub mod dashboards;
