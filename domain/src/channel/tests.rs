//! Given/when/then tests of the connection rules.

use super::*;
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
