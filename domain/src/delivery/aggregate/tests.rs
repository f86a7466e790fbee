//! Given/when/then over the delivery's pure `decide`.

use super::*;
use chrono::{Duration, TimeZone};

fn at(minutes: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_760_000_000, 0).single().expect("time") + Duration::minutes(minutes)
}

fn create() -> DeliveryCommand {
    DeliveryCommand::CreateDelivery {
        tenant_id: TenantId(Uuid::from_u128(1)),
        company_id: Uuid::from_u128(2),
        order_reference: "order-1".into(),
        address: Sealed::legacy("Knez Mihailova 1"),
        recipient: Recipient::default(),
        conversation_id: None,
        eta: None,
        tracking_token_hash: "hash-1".into(),
        at: at(0),
    }
}

fn status(id: &str, status: DeliveryStatus, minutes: i64) -> DeliveryCommand {
    DeliveryCommand::RecordCheckpoint {
        checkpoint: Checkpoint {
            checkpoint_id: id.into(),
            status: Some(status),
            sub_status: None,
            message: None,
            location: None,
            eta: None,
            occurred_at: at(minutes),
        },
        at: at(100),
    }
}

fn given(commands: Vec<DeliveryCommand>) -> Delivery {
    let mut delivery = Delivery::default();
    for command in commands {
        let events = delivery.decide(command).expect("given command accepted");
        events.into_iter().for_each(|e| delivery.apply(e));
    }
    delivery
}

fn when(
    delivery: &mut Delivery,
    command: DeliveryCommand,
) -> Result<Vec<DeliveryEvent>, DeliveryError> {
    let events = delivery.decide(command)?;
    events.iter().cloned().for_each(|e| delivery.apply(e));
    Ok(events)
}

#[test]
fn a_delivery_starts_pending_with_a_tracking_token() {
    let delivery = given(vec![create()]);
    assert_eq!(delivery.status(), DeliveryStatus::Pending);
    assert_eq!(delivery.decide(create()), Err(DeliveryError::AlreadyExists));
}

#[test]
fn illegal_transitions_are_refused_and_change_nothing() {
    let mut delivery = given(vec![create()]);
    assert_eq!(
        when(&mut delivery, status("c1", DeliveryStatus::Delivered, 1)),
        Err(DeliveryError::IllegalTransition {
            from: DeliveryStatus::Pending,
            to: DeliveryStatus::Delivered
        })
    );
    let mut delivered = given(vec![
        create(),
        status("c1", DeliveryStatus::InTransit, 1),
        status("c2", DeliveryStatus::Delivered, 2),
    ]);
    assert!(matches!(
        when(&mut delivered, status("c3", DeliveryStatus::InTransit, 3)),
        Err(DeliveryError::IllegalTransition { .. })
    ));
}

#[test]
fn a_late_checkpoint_is_history_and_never_rolls_the_status_back() {
    let mut delivery = given(vec![
        create(),
        status("c1", DeliveryStatus::InTransit, 10),
        status("c2", DeliveryStatus::OutForDelivery, 30),
    ]);
    // InTransit at minute 20 arrives after OutForDelivery at minute 30
    let events = when(&mut delivery, status("late", DeliveryStatus::InTransit, 20)).expect("kept");
    assert!(matches!(
        &events[..],
        [DeliveryEvent::CheckpointRecorded { late: true, .. }]
    ));
    assert_eq!(delivery.status(), DeliveryStatus::OutForDelivery);
    // even a status that could not follow is history when late
    let events = when(
        &mut delivery,
        status("older", DeliveryStatus::InfoReceived, 5),
    )
    .expect("kept");
    assert_eq!(events.len(), 1);
    // the same checkpoint twice: once
    assert_eq!(
        when(
            &mut delivery,
            status("c2", DeliveryStatus::OutForDelivery, 30)
        ),
        Ok(vec![])
    );
}

#[test]
fn locations_must_be_on_earth_and_a_checkpoint_must_say_something() {
    let mut delivery = given(vec![create()]);
    let mut checkpoint = Checkpoint {
        checkpoint_id: "gps-1".into(),
        status: None,
        sub_status: None,
        message: None,
        location: Some(Location {
            lat: 91.0,
            lng: 20.0,
        }),
        eta: None,
        occurred_at: at(1),
    };
    let record = |checkpoint: &Checkpoint| DeliveryCommand::RecordCheckpoint {
        checkpoint: checkpoint.clone(),
        at: at(1),
    };
    assert_eq!(
        when(&mut delivery, record(&checkpoint)),
        Err(DeliveryError::InvalidLocation)
    );
    checkpoint.location = Some(Location {
        lat: f64::NAN,
        lng: 20.0,
    });
    assert_eq!(
        when(&mut delivery, record(&checkpoint)),
        Err(DeliveryError::InvalidLocation)
    );
    checkpoint.location = None;
    assert_eq!(
        when(&mut delivery, record(&checkpoint)),
        Err(DeliveryError::EmptyCheckpoint)
    );
    checkpoint.location = Some(Location {
        lat: 44.8125,
        lng: 20.4612,
    });
    assert_eq!(
        when(&mut delivery, record(&checkpoint))
            .expect("recorded")
            .len(),
        1
    );
}

#[test]
fn a_reissued_token_revokes_the_old_one_and_notifications_happen_once_per_status() {
    let mut delivery = given(vec![create()]);
    let events = when(
        &mut delivery,
        DeliveryCommand::ReissueTrackingToken {
            tracking_token_hash: "hash-2".into(),
            at: at(1),
        },
    )
    .expect("reissued");
    assert!(matches!(
        &events[..],
        [DeliveryEvent::TrackingTokenRevoked { token_hash, .. }, DeliveryEvent::TrackingTokenIssued { .. }]
            if token_hash == "hash-1"
    ));
    let notify = DeliveryCommand::RecordNotification {
        status: DeliveryStatus::InTransit,
        message_id: Uuid::from_u128(9),
        at: at(2),
    };
    assert_eq!(
        when(&mut delivery, notify.clone()).expect("notified").len(),
        1
    );
    assert_eq!(when(&mut delivery, notify), Ok(vec![]));
}
