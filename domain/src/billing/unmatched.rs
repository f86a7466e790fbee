//! Provider events that concern no known tenant, order or account: recorded, never dropped
//! silently, so an operator can see and replay them. One stream per provider event
//! (`stripe:evt_123`), so recording one twice has one effect.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

/// The stream id of a provider event: `{provider}:{event_id}`.
pub fn unmatched_id(provider: &str, event_id: &str) -> String {
    format!("{provider}:{event_id}")
}

/// Record an event that matched nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordUnmatched {
    /// `stripe`, `telegram`, …
    pub provider: String,
    /// The provider's event id.
    pub event_id: String,
    /// The provider's event type, e.g. `invoice.paid`.
    pub event_type: String,
    /// The object it is about (`sub_…`, `cus_…`), when known.
    pub object_id: Option<String>,
    /// Why it matched nothing, for operators.
    pub reason: String,
    /// When we received it (UTC).
    pub received_at: DateTime<Utc>,
}

/// A provider event matched nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum UnmatchedEvent {
    /// See [`RecordUnmatched`] for the fields.
    ProviderEventUnmatched(RecordUnmatched),
}

/// A provider event that matched nothing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UnmatchedProviderEvent {
    recorded: bool,
}

impl DomainEvent for UnmatchedEvent {
    fn event_type(&self) -> String {
        "ProviderEventUnmatched".to_string()
    }
    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

impl Aggregate for UnmatchedProviderEvent {
    const TYPE: &'static str = "unmatched_provider_event";
    type Command = RecordUnmatched;
    type Event = UnmatchedEvent;
    type Error = std::convert::Infallible;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        if !self.recorded {
            let event = UnmatchedEvent::ProviderEventUnmatched(command);
            crate::emit(self, sink, vec![event]).await;
        }
        Ok(())
    }

    fn apply(&mut self, _event: Self::Event) {
        self.recorded = true;
    }
}
