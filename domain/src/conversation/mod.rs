//! Conversations with customers over the channel connections (DOMAIN.md "Conversations
//! and messages"): inbound messages, replies and their delivery receipts, response times,
//! lead sources, buffering for the assistant, and message costs.
//!
//! - [`aggregate`]: the conversation aggregate (one per connection and contact).
//! - [`lead_source`]: where a conversation came from.
//! - [`pricing`]: the 24-hour session window and the message rates.

pub mod aggregate;
pub mod lead_source;
pub mod pricing;

pub use aggregate::{
    BatchMessage, Contact, Conversation, ConversationCommand, ConversationError, ConversationEvent,
    InboundKind, MessageType, ReceiptStatus, SendOutcome, SendState,
};
pub use lead_source::LeadSource;
pub use pricing::{MessageRates, PricingWindow};
