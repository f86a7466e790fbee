//! Given/when/then over the conversation's pure `decide`.

use super::*;
use chrono::TimeZone;

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_760_000_000, 0).single().expect("time") + Duration::seconds(seconds)
}

fn inbound(id: &str, seconds: i64) -> ConversationCommand {
    ConversationCommand::ReceiveMessage {
        tenant_id: TenantId(Uuid::from_u128(1)),
        company_id: Uuid::from_u128(2),
        channel_id: Uuid::from_u128(3),
        platform: Platform::Telegram,
        contact: Contact::default(),
        lead_source: LeadSource::from_start_parameter("tiktok_spring"),
        provider_message_id: id.into(),
        text: Sealed::legacy("hello"),
        kind: InboundKind::Text,
        sent_at: at(seconds),
        batch_window_secs: DEFAULT_BATCH_WINDOW_SECS,
    }
}

fn reply(id: u128, seconds: i64) -> ConversationCommand {
    ConversationCommand::SendMessage {
        message_id: Uuid::from_u128(id),
        text: Sealed::legacy("hi"),
        message_type: MessageType::Type1,
        rich_media: false,
        rates: MessageRates::default(),
        at: at(seconds),
    }
}

fn given(commands: Vec<ConversationCommand>) -> Conversation {
    let mut conversation = Conversation::default();
    for command in commands {
        let events = conversation
            .decide(command)
            .expect("given command accepted");
        events.into_iter().for_each(|e| conversation.apply(e));
    }
    conversation
}

fn when(
    conversation: &mut Conversation,
    command: ConversationCommand,
) -> Result<Vec<ConversationEvent>, ConversationError> {
    let events = conversation.decide(command)?;
    events.iter().cloned().for_each(|e| conversation.apply(e));
    Ok(events)
}

#[test]
fn the_first_message_opens_with_its_lead_source_and_a_duplicate_changes_nothing() {
    let mut conversation = Conversation::default();
    let events = when(&mut conversation, inbound("m1", 0)).expect("opened");
    assert!(matches!(
        &events[..],
        [ConversationEvent::ConversationOpened { lead_source, .. }, ConversationEvent::MessageReceived { batch: 1, .. }]
            if lead_source.source == "tiktok"
    ));
    assert_eq!(when(&mut conversation, inbound("m1", 0)), Ok(vec![]));
}

#[test]
fn messages_within_the_window_form_one_batch_and_a_later_one_starts_another() {
    let mut conversation = given(vec![inbound("m1", 0), inbound("m2", 4), inbound("m3", 13)]);
    let (batch, taken) = conversation.latest_batch().expect("batch");
    assert_eq!((batch.number, batch.messages, taken), (1, 3, false));
    assert_eq!(batch.closes_at(), at(23));
    // not closed yet: cannot be taken
    assert_eq!(
        when(
            &mut conversation,
            ConversationCommand::TakeBatch {
                batch: 1,
                at: at(22)
            }
        ),
        Err(ConversationError::BatchNotWaiting(1))
    );
    // the fourth message after the window starts batch 2
    let events = when(&mut conversation, inbound("m4", 23)).expect("received");
    assert!(matches!(
        &events[..],
        [ConversationEvent::MessageReceived { batch: 2, .. }]
    ));
}

#[test]
fn a_closed_batch_is_taken_once_and_the_next_message_starts_a_new_one() {
    let mut conversation = given(vec![inbound("m1", 0), inbound("m2", 5)]);
    let take = ConversationCommand::TakeBatch {
        batch: 1,
        at: at(15),
    };
    assert_eq!(
        when(&mut conversation, take.clone()).expect("taken").len(),
        1
    );
    assert_eq!(when(&mut conversation, take), Ok(vec![]), "taken once");
    let events = when(&mut conversation, inbound("m3", 16)).expect("received");
    assert!(matches!(
        &events[..],
        [ConversationEvent::MessageReceived { batch: 2, .. }]
    ));
}

#[test]
fn a_reply_carries_the_seconds_since_the_first_unanswered_message() {
    let mut conversation = given(vec![inbound("m1", 0), inbound("m2", 30)]);
    let events = when(&mut conversation, reply(1, 90)).expect("sent");
    assert!(matches!(
        &events[..],
        [ConversationEvent::MessageSent {
            response_time_secs: Some(90),
            window: PricingWindow::Session,
            cost_micro_eur: 4_500,
            ..
        }]
    ));
    // a second reply answers nothing
    let events = when(&mut conversation, reply(2, 100)).expect("sent");
    assert!(matches!(
        &events[..],
        [ConversationEvent::MessageSent {
            response_time_secs: None,
            ..
        }]
    ));
}

#[test]
fn a_message_a_day_after_the_last_inbound_one_is_proactive() {
    let mut conversation = given(vec![inbound("m1", 0)]);
    let events = when(&mut conversation, reply(1, 86_400)).expect("sent");
    assert!(matches!(
        &events[..],
        [ConversationEvent::MessageSent {
            window: PricingWindow::Proactive,
            cost_micro_eur: 9_000,
            ..
        }]
    ));
}

#[test]
fn a_failed_send_can_be_retried_and_an_accepted_one_stays_accepted() {
    let mut conversation = given(vec![inbound("m1", 0), reply(1, 5)]);
    assert_eq!(
        conversation.send_state(Uuid::from_u128(1)),
        Some(SendState::Pending)
    );
    let failed = ConversationCommand::RecordSendOutcome {
        message_id: Uuid::from_u128(1),
        outcome: SendOutcome::Failed {
            reason: "503".into(),
        },
        at: at(6),
    };
    assert_eq!(
        when(&mut conversation, failed.clone())
            .expect("failed")
            .len(),
        1
    );
    assert_eq!(
        conversation.send_state(Uuid::from_u128(1)),
        Some(SendState::Failed)
    );
    let accepted = ConversationCommand::RecordSendOutcome {
        message_id: Uuid::from_u128(1),
        outcome: SendOutcome::Accepted {
            provider_message_id: "p-1".into(),
        },
        at: at(7),
    };
    assert_eq!(
        when(&mut conversation, accepted).expect("accepted").len(),
        1
    );
    assert_eq!(when(&mut conversation, failed), Ok(vec![]));
    assert_eq!(conversation.message_of("p-1"), Some(Uuid::from_u128(1)));
    assert_eq!(
        conversation.send_state(Uuid::from_u128(1)),
        Some(SendState::Accepted)
    );
}

#[test]
fn receipts_only_move_forward_and_failed_yields_to_a_later_success() {
    let mut conversation = given(vec![
        inbound("m1", 0),
        reply(1, 5),
        ConversationCommand::RecordSendOutcome {
            message_id: Uuid::from_u128(1),
            outcome: SendOutcome::Accepted {
                provider_message_id: "p-1".into(),
            },
            at: at(6),
        },
    ]);
    let receipt = |status, seconds| ConversationCommand::RecordReceipt {
        provider_message_id: "p-1".into(),
        status,
        at: at(seconds),
    };
    let mut recorded = |status, seconds| {
        when(&mut conversation, receipt(status, seconds))
            .expect("receipt")
            .len()
    };
    assert_eq!(recorded(ReceiptStatus::Sent, 7), 1);
    assert_eq!(recorded(ReceiptStatus::Failed, 8), 1);
    assert_eq!(recorded(ReceiptStatus::Sent, 9), 0, "sent is no success");
    assert_eq!(recorded(ReceiptStatus::Read, 10), 1);
    assert_eq!(
        recorded(ReceiptStatus::Delivered, 11),
        0,
        "late delivered after read"
    );
    assert_eq!(
        recorded(ReceiptStatus::Failed, 12),
        0,
        "failed after a success"
    );
}

#[test]
fn an_inbound_message_reopens_a_resolved_conversation() {
    let mut conversation = given(vec![
        inbound("m1", 0),
        ConversationCommand::Resolve { at: at(1) },
    ]);
    let events = when(&mut conversation, inbound("m2", 60)).expect("received");
    assert!(matches!(
        &events[..],
        [
            ConversationEvent::ConversationReopened { .. },
            ConversationEvent::MessageReceived { .. }
        ]
    ));
    assert_eq!(
        Conversation::default().decide(reply(1, 0)),
        Err(ConversationError::NotFound)
    );
}

#[test]
fn a_conversation_started_first_keeps_its_lead_source_for_the_messages_after_it() {
    // Given a contact who opened the chat from a campaign link
    let mut conversation = Conversation::default();
    let open = ConversationCommand::Open {
        tenant_id: TenantId(Uuid::from_u128(1)),
        company_id: Uuid::from_u128(2),
        channel_id: Uuid::from_u128(3),
        platform: Platform::Viber,
        contact: Contact::default(),
        lead_source: LeadSource::from_start_parameter("instagram_story"),
        at: at(0),
    };
    let opened = when(&mut conversation, open.clone()).expect("opened");
    assert!(matches!(
        &opened[..],
        [ConversationEvent::ConversationOpened { lead_source, .. }] if lead_source.source == "instagram"
    ));
    // When it is started again, then a message arrives
    assert_eq!(when(&mut conversation, open), Ok(vec![]));
    let events = when(&mut conversation, inbound("m1", 5)).expect("received");
    // Then the message continues the open conversation
    assert!(matches!(
        &events[..],
        [ConversationEvent::MessageReceived { batch: 1, .. }]
    ));
}
