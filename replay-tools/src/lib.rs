//! `x8-replay`: tools for auditors and analysts that read the event log directly.
//!
//! One module per subcommand, each with its `Opts` and `run` (the binary in `main.rs` only
//! parses the command line); the library form lets the end-to-end tests call them:
//! - [`history`]: a stream's events with time, actor, correlation, causation and data.
//! - [`lag`]: how far each projection is behind the log.
//! - [`rebuild`]: empty a projection's read model and replay it from the first event.
//! - [`verify`]: replay every aggregate and check the invariants from history.

pub mod history;
pub mod lag;
pub mod rebuild;
pub mod verify;
