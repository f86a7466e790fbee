//! A minimal aggregate for event-store tests: each `Add { events }` appends that many
//! `Added` events in one command.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use x8_commands::bus::NamedCommand;

/// The test aggregate: how many events it has.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Counter {
    /// Events applied.
    pub count: u64,
}

/// Append `events` events.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Add {
    /// How many.
    pub events: u32,
}

/// One unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Added {
    /// Who wrote it (writer index).
    pub writer: u32,
}

/// Never refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("never")]
pub struct Never;

impl DomainEvent for Added {
    fn event_type(&self) -> String {
        "Added".into()
    }
    fn event_version(&self) -> String {
        "1.0".into()
    }
}

impl NamedCommand for Add {
    fn command_name(&self) -> &'static str {
        "Add"
    }
    fn tenant_id(&self, _aggregate_id: &str) -> Option<uuid::Uuid> {
        None
    }
}

impl Aggregate for Counter {
    const TYPE: &'static str = "counter";
    type Command = Add;
    type Event = Added;
    type Error = Never;
    type Services = ();

    async fn handle(&mut self, command: Add, _: &(), sink: &EventSink<Self>) -> Result<(), Never> {
        for _ in 0..command.events {
            sink.write(Added { writer: 0 }, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, _event: Added) {
        self.count += 1;
    }
}
