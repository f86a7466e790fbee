//! Errors of the command layer.

/// Why a command did not run.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error> {
    /// The aggregate refused it (a broken invariant); nothing was appended.
    #[error(transparent)]
    Rejected(E),
    /// The stream kept moving under us: still conflicting after the bounded retries.
    #[error("the aggregate was changed concurrently; retry")]
    Conflict,
    /// The idempotency key was used before for a different command.
    #[error("idempotency key reused for a different command")]
    IdempotencyKeyReused,
    /// The database or (de)serialisation failed.
    #[error("infrastructure: {0}")]
    Infrastructure(String),
}

impl<E: std::error::Error> CommandError<E> {
    /// Maps the rejection type, keeping the other variants.
    pub fn map_rejected<F: std::error::Error>(self, f: impl FnOnce(E) -> F) -> CommandError<F> {
        match self {
            Self::Rejected(e) => CommandError::Rejected(f(e)),
            Self::Conflict => CommandError::Conflict,
            Self::IdempotencyKeyReused => CommandError::IdempotencyKeyReused,
            Self::Infrastructure(s) => CommandError::Infrastructure(s),
        }
    }
}

impl<E: std::error::Error> CommandError<E> {
    /// The error of an operation that never rejects (a load) in another rejection type; a
    /// rejection, should one appear, becomes an infrastructure error.
    pub fn unrejected<F: std::error::Error>(self) -> CommandError<F> {
        match self {
            Self::Rejected(e) => CommandError::Infrastructure(e.to_string()),
            Self::Conflict => CommandError::Conflict,
            Self::IdempotencyKeyReused => CommandError::IdempotencyKeyReused,
            Self::Infrastructure(s) => CommandError::Infrastructure(s),
        }
    }
}

impl<E: std::error::Error> From<x8_eventstore::EventStoreError> for CommandError<E> {
    fn from(err: x8_eventstore::EventStoreError) -> Self {
        Self::Infrastructure(err.to_string())
    }
}
