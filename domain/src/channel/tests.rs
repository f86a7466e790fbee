//! Given/when/then tests of the connection rules.

use super::*;
use crate::conversation::aggregate::DEFAULT_BATCH_WINDOW_SECS;
use crate::{TenantId, UserId};
use cqrs_es::test::TestFramework;
use uuid::Uuid;

type ChannelTest = TestFramework<Channel>;

fn id() -> Uuid {
    Uuid::from_u128(7)
}
fn app() -> Uuid {
    Uuid::from_u128(70)
}
fn created() -> ChannelEvent {
    ChannelEvent::ChannelCreated {
        channel_id: id(),
        tenant_id: TenantId(Uuid::from_u128(1)),
        company_id: Uuid::from_u128(2),
        platform: Platform::Instagram,
        meta_app_id: Some(app()),
    }
}
fn removed() -> ChannelEvent {
    ChannelEvent::ChannelRemoved {
        meta_app_id: Some(app()),
    }
}
fn status(status: ChannelStatus, raw: &str) -> ChannelCommand {
    ChannelCommand::ChangeStatus {
        status,
        raw_status: Some(raw.into()),
        reason: None,
    }
}

#[test]
fn a_connection_is_created_disconnected() {
    ChannelTest::with(())
        .given_no_previous_events()
        .when(ChannelCommand::CreateChannel {
            channel_id: id(),
            tenant_id: TenantId(Uuid::from_u128(1)),
            company_id: Uuid::from_u128(2),
            platform: Platform::Instagram,
            meta_app_id: Some(app()),
        })
        .then_expect_events(vec![created()]);
}

#[test]
fn creating_twice_is_refused() {
    ChannelTest::with(())
        .given(vec![created()])
        .when(ChannelCommand::CreateChannel {
            channel_id: id(),
            tenant_id: TenantId(Uuid::from_u128(1)),
            company_id: Uuid::from_u128(2),
            platform: Platform::Whatsapp,
            meta_app_id: None,
        })
        .then_expect_error(ChannelError::AlreadyCreated(id()));
}

#[test]
fn a_status_change_keeps_the_raw_provider_status() {
    ChannelTest::with(())
        .given(vec![created()])
        .when(status(ChannelStatus::Connecting, "SCAN_QR_CODE"))
        .then_expect_events(vec![ChannelEvent::ChannelStatusChanged {
            from: ChannelStatus::Disconnected,
            to: ChannelStatus::Connecting,
            raw_status: Some("SCAN_QR_CODE".into()),
            reason: None,
        }]);
}

#[test]
fn the_same_status_again_changes_nothing() {
    ChannelTest::with(())
        .given(vec![
            created(),
            ChannelEvent::ChannelStatusChanged {
                from: ChannelStatus::Disconnected,
                to: ChannelStatus::Connected,
                raw_status: Some("WORKING".into()),
                reason: None,
            },
        ])
        .when(status(ChannelStatus::Connected, "WORKING"))
        .then_expect_events(vec![]);
}

#[test]
fn failures_are_counted() {
    ChannelTest::with(())
        .given(vec![
            created(),
            ChannelEvent::ChannelFailed {
                error: "token expired".into(),
                error_count: 1,
                raw_status: None,
            },
        ])
        .when(ChannelCommand::RecordFailure {
            error: "token expired".into(),
            raw_status: None,
        })
        .then_expect_events(vec![ChannelEvent::ChannelFailed {
            error: "token expired".into(),
            error_count: 2,
            raw_status: None,
        }]);
}

#[test]
fn removing_gives_the_meta_app_back() {
    ChannelTest::with(())
        .given(vec![created()])
        .when(ChannelCommand::RemoveChannel)
        .then_expect_events(vec![removed()]);
}

#[test]
fn removing_twice_changes_nothing() {
    ChannelTest::with(())
        .given(vec![created(), removed()])
        .when(ChannelCommand::RemoveChannel)
        .then_expect_events(vec![]);
}

#[test]
fn a_removed_connection_takes_no_other_command() {
    ChannelTest::with(())
        .given(vec![created(), removed()])
        .when(status(ChannelStatus::Connected, "WORKING"))
        .then_expect_error(ChannelError::Removed(id()));
}

#[test]
fn commands_on_a_missing_connection_are_refused() {
    ChannelTest::with(())
        .given_no_previous_events()
        .when(ChannelCommand::RemoveChannel)
        .then_expect_error(ChannelError::NotFound);
}

#[test]
fn reading_credentials_is_recorded_only_when_there_are_some() {
    ChannelTest::with(())
        .given(vec![created()])
        .when(ChannelCommand::RecordCredentialsViewed {
            viewer: UserId(Uuid::from_u128(9)),
        })
        .then_expect_error(ChannelError::NoCredentials(id()));
    ChannelTest::with(())
        .given(vec![
            created(),
            ChannelEvent::CredentialsStored {
                sealed: "x8v1.sealed".into(),
            },
        ])
        .when(ChannelCommand::RecordCredentialsViewed {
            viewer: UserId(Uuid::from_u128(9)),
        })
        .then_expect_events(vec![ChannelEvent::CredentialsViewed {
            viewer: UserId(Uuid::from_u128(9)),
        }]);
}

// --- The WhatsApp session lifecycle (see `whatsapp`) ---

fn at() -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone;
    chrono::Utc
        .with_ymd_and_hms(2026, 11, 21, 12, 0, 0)
        .unwrap()
}
fn session(raw: &str) -> ChannelCommand {
    ChannelCommand::RecordSessionStatus {
        raw_status: raw.into(),
        at: at(),
        reason: None,
        jitter_permille: 500,
    }
}
fn whatsapp() -> ChannelEvent {
    ChannelEvent::ChannelCreated {
        channel_id: id(),
        tenant_id: TenantId(Uuid::from_u128(1)),
        company_id: Uuid::from_u128(2),
        platform: Platform::Whatsapp,
        meta_app_id: None,
    }
}
fn changed(from: ChannelStatus, to: ChannelStatus, raw: &str) -> ChannelEvent {
    ChannelEvent::ChannelStatusChanged {
        from,
        to,
        raw_status: Some(raw.into()),
        reason: None,
    }
}
/// The events of a session that scanned its QR and worked.
fn working() -> Vec<ChannelEvent> {
    vec![
        whatsapp(),
        changed(
            ChannelStatus::Disconnected,
            ChannelStatus::Connecting,
            "SCAN_QR_CODE",
        ),
        changed(
            ChannelStatus::Connecting,
            ChannelStatus::Connected,
            "WORKING",
        ),
    ]
}
/// `n` failed QR attempts, each restarted.
fn failed_qr_attempts(n: u32) -> Vec<ChannelEvent> {
    let mut events = vec![whatsapp()];
    for attempt in 1..=n {
        events.push(changed(
            ChannelStatus::Connecting,
            ChannelStatus::Connecting,
            "SCAN_QR_CODE",
        ));
        events.push(changed(
            ChannelStatus::Connecting,
            ChannelStatus::Connecting,
            "FAILED",
        ));
        events.push(ChannelEvent::QrAttemptFailed { attempt, at: at() });
    }
    events
}

#[test]
fn a_working_session_is_connected() {
    ChannelTest::with(())
        .given(vec![whatsapp()])
        .when(session("WORKING"))
        .then_expect_events(vec![changed(
            ChannelStatus::Disconnected,
            ChannelStatus::Connected,
            "WORKING",
        )]);
}

#[test]
fn a_status_waha_may_add_later_is_connecting() {
    ChannelTest::with(())
        .given(vec![whatsapp()])
        .when(session("AWAITING_SOMETHING"))
        .then_expect_events(vec![changed(
            ChannelStatus::Disconnected,
            ChannelStatus::Connecting,
            "AWAITING_SOMETHING",
        )]);
}

#[test]
fn a_session_that_never_worked_and_fails_has_failed_a_qr_attempt() {
    ChannelTest::with(())
        .given(failed_qr_attempts(1))
        .when(session("SCAN_QR_CODE"))
        .then_expect_events(vec![changed(
            ChannelStatus::Connecting,
            ChannelStatus::Connecting,
            "SCAN_QR_CODE",
        )]);
    let mut given = failed_qr_attempts(1);
    given.push(changed(
        ChannelStatus::Connecting,
        ChannelStatus::Connecting,
        "SCAN_QR_CODE",
    ));
    ChannelTest::with(())
        .given(given)
        .when(session("FAILED"))
        .then_expect_events(vec![
            changed(
                ChannelStatus::Connecting,
                ChannelStatus::Connecting,
                "FAILED",
            ),
            ChannelEvent::QrAttemptFailed {
                attempt: 2,
                at: at(),
            },
        ]);
}

#[test]
fn the_third_failed_qr_attempt_offers_a_pairing_code() {
    let mut given = failed_qr_attempts(2);
    given.push(changed(
        ChannelStatus::Connecting,
        ChannelStatus::Connecting,
        "SCAN_QR_CODE",
    ));
    ChannelTest::with(())
        .given(given)
        .when(session("FAILED"))
        .then_expect_events(vec![
            changed(
                ChannelStatus::Connecting,
                ChannelStatus::Connecting,
                "FAILED",
            ),
            ChannelEvent::QrAttemptFailed {
                attempt: 3,
                at: at(),
            },
            ChannelEvent::PairingCodeOffered { after_attempts: 3 },
        ]);
}

#[test]
fn the_same_failure_reported_twice_counts_once() {
    ChannelTest::with(())
        .given(failed_qr_attempts(1))
        .when(session("FAILED"))
        .then_expect_events(vec![]);
}

#[test]
fn a_working_session_that_fails_schedules_a_reconnect_in_five_seconds() {
    ChannelTest::with(())
        .given(working())
        .when(session("FAILED"))
        .then_expect_events(vec![
            changed(
                ChannelStatus::Connected,
                ChannelStatus::Connecting,
                "FAILED",
            ),
            ChannelEvent::ReconnectScheduled {
                attempt: 1,
                due_at: at() + chrono::Duration::seconds(5),
                reason: None,
            },
        ]);
}

#[test]
fn the_tenth_failed_reconnect_puts_the_connection_in_error() {
    let mut given = working();
    for attempt in 1..=10 {
        given.push(changed(
            ChannelStatus::Connecting,
            ChannelStatus::Connecting,
            "FAILED",
        ));
        given.push(ChannelEvent::ReconnectScheduled {
            attempt,
            due_at: at(),
            reason: None,
        });
        given.push(changed(
            ChannelStatus::Connecting,
            ChannelStatus::Connecting,
            "STARTING",
        ));
    }
    ChannelTest::with(())
        .given(given)
        .when(session("FAILED"))
        .then_expect_events(vec![ChannelEvent::ChannelFailed {
            error: "the WhatsApp session did not reconnect after 10 attempts".into(),
            error_count: 1,
            raw_status: Some("FAILED".into()),
        }]);
}

#[test]
fn working_again_ends_the_reconnects() {
    let mut given = working();
    given.push(changed(
        ChannelStatus::Connected,
        ChannelStatus::Connecting,
        "FAILED",
    ));
    given.push(ChannelEvent::ReconnectScheduled {
        attempt: 1,
        due_at: at(),
        reason: None,
    });
    given.push(changed(
        ChannelStatus::Connecting,
        ChannelStatus::Connected,
        "WORKING",
    ));
    ChannelTest::with(())
        .given(given)
        .when(session("FAILED"))
        .then_expect_events(vec![
            changed(
                ChannelStatus::Connected,
                ChannelStatus::Connecting,
                "FAILED",
            ),
            ChannelEvent::ReconnectScheduled {
                attempt: 1,
                due_at: at() + chrono::Duration::seconds(5),
                reason: None,
            },
        ]);
}

#[test]
fn the_batch_window_is_configured_within_its_bounds() {
    // Given a connection with the default window, when it is set: recorded once
    ChannelTest::with(())
        .given(vec![created()])
        .when(ChannelCommand::ConfigureBatchWindow { secs: 30 })
        .then_expect_events(vec![ChannelEvent::BatchWindowConfigured { secs: 30 }]);
    ChannelTest::with(())
        .given(vec![created()])
        .when(ChannelCommand::ConfigureBatchWindow {
            secs: DEFAULT_BATCH_WINDOW_SECS,
        })
        .then_expect_events(vec![]);
    // Then zero and more than five minutes are refused
    for secs in [0, MAX_BATCH_WINDOW_SECS + 1] {
        ChannelTest::with(())
            .given(vec![created()])
            .when(ChannelCommand::ConfigureBatchWindow { secs })
            .then_expect_error(ChannelError::InvalidBatchWindow(secs));
    }
}

#[test]
fn credentials_are_revoked_once_also_after_removal() {
    let stored = ChannelEvent::CredentialsStored {
        sealed: "x8v1.sealed".into(),
    };
    ChannelTest::with(())
        .given(vec![created(), stored.clone(), removed()])
        .when(ChannelCommand::RevokeCredentials)
        .then_expect_events(vec![ChannelEvent::CredentialsRevoked]);
    ChannelTest::with(())
        .given(vec![
            created(),
            stored,
            removed(),
            ChannelEvent::CredentialsRevoked,
        ])
        .when(ChannelCommand::RevokeCredentials)
        .then_expect_events(vec![]);
}
