//! The WhatsApp session lifecycle through WAHA (DOMAIN.md "Channel connections", from the
//! old system's own analysis, and WAHA's session statuses).
//!
//! - WAHA statuses map to ours: `STOPPED` → `DISCONNECTED`; `STARTING`, `SCAN_QR_CODE` and
//!   any status WAHA may add later that is not a failure → `CONNECTING`; `WORKING` →
//!   `CONNECTED`; `FAILED` → the rules below. The raw status is kept on every event.
//! - **QR attempts.** An attempt is one session start that ends in `FAILED` or `WORKING`.
//!   A session that was never `WORKING` and fails has failed a QR attempt; the session is
//!   restarted for the next one. After [`QR_ATTEMPTS_BEFORE_PAIRING`] failed attempts a
//!   pairing code is offered, the QR staying available as a fall-back (as WAHA's docs
//!   advise); after [`MAX_QR_ATTEMPTS`] the connection goes to `ERROR`.
//! - **Reconnects.** A session that was `WORKING` and fails was disconnected unexpectedly:
//!   a reconnect (a WAHA restart, never a logout: session credentials are removed only by
//!   an explicit command) is scheduled after [`reconnect_delay`] on the durable deadline
//!   mechanism. Each `FAILED` while reconnecting is a failed attempt; after
//!   [`MAX_RECONNECT_ATTEMPTS`] the connection goes to `ERROR`. `WORKING` ends it.

use super::ChannelStatus;
use chrono::Duration;
use uuid::Uuid;

/// Failed QR attempts after which a pairing code is offered.
pub const QR_ATTEMPTS_BEFORE_PAIRING: u32 = 3;
/// Failed QR attempts after which the connection goes to `ERROR`.
pub const MAX_QR_ATTEMPTS: u32 = 10;
/// Reconnect attempts after an unexpected disconnect before `ERROR`.
pub const MAX_RECONNECT_ATTEMPTS: u32 = 10;
/// First reconnect delay; each attempt doubles it.
pub const RECONNECT_BASE_SECONDS: i64 = 5;

/// WAHA's session status, parsed from its status word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStatus {
    /// `STOPPED`.
    Stopped,
    /// `STARTING`.
    Starting,
    /// `SCAN_QR_CODE`.
    ScanQrCode,
    /// `WORKING`.
    Working,
    /// `FAILED`.
    Failed,
    /// A status this version does not know; not a failure.
    Other,
}

impl SessionStatus {
    /// Parses WAHA's status word (case as WAHA sends it, upper case).
    pub fn parse(raw: &str) -> Self {
        match raw {
            "STOPPED" => Self::Stopped,
            "STARTING" => Self::Starting,
            "SCAN_QR_CODE" => Self::ScanQrCode,
            "WORKING" => Self::Working,
            "FAILED" => Self::Failed,
            _ => Self::Other,
        }
    }

    /// Our status for it; `None` for `FAILED`, which depends on the lifecycle.
    pub fn channel_status(self) -> Option<ChannelStatus> {
        match self {
            Self::Stopped => Some(ChannelStatus::Disconnected),
            Self::Starting | Self::ScanQrCode | Self::Other => Some(ChannelStatus::Connecting),
            Self::Working => Some(ChannelStatus::Connected),
            Self::Failed => None,
        }
    }
}

/// The delay before reconnect `attempt` (1-based): 5 s × 2^(attempt − 1), spread by
/// `jitter_permille` (0–1000, chosen at random by the caller) over −10 % … +10 %.
pub fn reconnect_delay(attempt: u32, jitter_permille: u16) -> Duration {
    let base_ms = RECONNECT_BASE_SECONDS * 1000 * (1i64 << attempt.saturating_sub(1).min(20));
    let spread = 900 + i64::from(jitter_permille.min(1000)) / 5;
    Duration::milliseconds(base_ms * spread / 1000)
}

/// The WAHA session name of a connection: `x8-` and its id without dashes, so a webhook
/// routes back to the connection by name alone.
pub fn session_name(channel_id: Uuid) -> String {
    format!("x8-{}", channel_id.simple())
}

/// The connection a WAHA session name belongs to, if it is one of ours.
pub fn channel_of_session(session: &str) -> Option<Uuid> {
    session
        .strip_prefix("x8-")
        .and_then(|id| Uuid::try_parse(id).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_ours_and_unknown_ones_are_connecting() {
        assert_eq!(
            SessionStatus::parse("STOPPED").channel_status(),
            Some(ChannelStatus::Disconnected)
        );
        assert_eq!(
            SessionStatus::parse("SCAN_QR_CODE").channel_status(),
            Some(ChannelStatus::Connecting)
        );
        assert_eq!(
            SessionStatus::parse("WORKING").channel_status(),
            Some(ChannelStatus::Connected)
        );
        assert_eq!(
            SessionStatus::parse("PAIRING_SOMETHING_NEW").channel_status(),
            Some(ChannelStatus::Connecting)
        );
        assert_eq!(SessionStatus::parse("FAILED").channel_status(), None);
    }

    #[test]
    fn reconnect_delays_double_from_five_seconds_within_ten_percent() {
        assert_eq!(reconnect_delay(1, 500), Duration::seconds(5));
        assert_eq!(reconnect_delay(2, 500), Duration::seconds(10));
        assert_eq!(reconnect_delay(10, 500), Duration::seconds(2560));
        assert_eq!(reconnect_delay(1, 0), Duration::milliseconds(4500));
        assert_eq!(reconnect_delay(1, 1000), Duration::milliseconds(5500));
    }

    #[test]
    fn session_names_route_back_to_their_connection() {
        let id = Uuid::now_v7();
        assert_eq!(channel_of_session(&session_name(id)), Some(id));
        assert_eq!(channel_of_session("default"), None);
    }
}
