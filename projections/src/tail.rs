//! The recent tail of `$all`, shared by one process's projection runners, so that the
//! projections following the head read each event from the database once between them
//! rather than once each (as EventStoreDB serves live subscriptions from memory).
//!
//! The first runner to reach the end of the tail reads the next batch from the log (with
//! [`read_all`](x8_eventstore::all::read_all), below the read horizon) and appends it,
//! upcast; the others find it here. Only a batch read right after the tail's last event
//! extends it, so the tail is always a gap-free stretch of `$all` in its order: the events
//! after any checkpoint it holds are exactly the ones the log would return. A runner whose
//! checkpoint is not in it (behind, or ahead after a trim) reads the log itself. The tail
//! is a cache: it starts empty and holds at most [`Tail::CAPACITY`] events.

use std::collections::VecDeque;
use std::sync::Mutex;
use x8_eventstore::{Checkpoint, RecordedEvent};

/// A gap-free stretch of `$all`: the events right after `start`, in order.
#[derive(Default)]
pub(crate) struct Tail {
    stretch: Mutex<Stretch>,
}

#[derive(Default)]
struct Stretch {
    /// The checkpoint just before the first event held.
    start: Checkpoint,
    events: VecDeque<RecordedEvent>,
}

impl Stretch {
    /// The checkpoint of the last event held (`start` when empty).
    fn end(&self) -> Checkpoint {
        self.events
            .back()
            .map_or(self.start, RecordedEvent::checkpoint)
    }
}

impl Tail {
    /// Events held at most; the oldest go first.
    pub(crate) const CAPACITY: usize = 4_096;

    /// Up to `limit` events right after `after`, when the tail holds `after` and something
    /// after it; otherwise `None` (read the log).
    pub(crate) fn after(&self, after: Checkpoint, limit: usize) -> Option<Vec<RecordedEvent>> {
        let stretch = self.stretch.lock().ok()?;
        let first = if after == stretch.start {
            0
        } else {
            stretch
                .events
                .binary_search_by_key(&after, RecordedEvent::checkpoint)
                .ok()?
                + 1
        };
        if first >= stretch.events.len() || limit == 0 {
            return None;
        }
        let last = (first + limit).min(stretch.events.len());
        Some(stretch.events.range(first..last).cloned().collect())
    }

    /// Records `events`, read from the log right after `after`: they extend the tail when
    /// it ends at `after`, or start it anew when they are newer than all it holds.
    pub(crate) fn extend(&self, after: Checkpoint, events: &[RecordedEvent]) {
        let Ok(mut stretch) = self.stretch.lock() else {
            return;
        };
        if events.is_empty() || after < stretch.end() {
            return;
        }
        if after > stretch.end() {
            stretch.start = after;
            stretch.events.clear();
        }
        stretch.events.extend(events.iter().cloned());
        while stretch.events.len() > Self::CAPACITY {
            if let Some(oldest) = stretch.events.pop_front() {
                stretch.start = oldest.checkpoint();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(transaction_id: i64, global_position: i64) -> RecordedEvent {
        RecordedEvent {
            global_position,
            transaction_id,
            event_id: uuid::Uuid::nil(),
            aggregate_type: "tenant".into(),
            aggregate_id: "t".into(),
            sequence: global_position,
            event_type: "TenantRegistered".into(),
            event_version: "1.0".into(),
            tenant_id: None,
            payload: json!({}),
            metadata: json!({}),
            recorded_at: chrono::DateTime::UNIX_EPOCH,
        }
    }

    fn positions(events: Option<Vec<RecordedEvent>>) -> Option<Vec<i64>> {
        events.map(|e| e.iter().map(|e| e.global_position).collect())
    }

    #[test]
    fn a_runner_finds_the_events_after_its_checkpoint_once_another_has_read_them() {
        // Given a tail that one runner filled from the start: positions 2, 1 (committed
        // in that order), then 3
        let tail = Tail::default();
        tail.extend(Checkpoint::START, &[event(10, 2), event(11, 1)]);
        tail.extend(event(11, 1).checkpoint(), &[event(12, 3)]);
        // Then a runner at the start gets all three in `$all` order, in batches
        assert_eq!(
            positions(tail.after(Checkpoint::START, 2)),
            Some(vec![2, 1])
        );
        // And one after position 2 the rest
        assert_eq!(
            positions(tail.after(event(10, 2).checkpoint(), 10)),
            Some(vec![1, 3])
        );
        // And one at the end, or at a checkpoint the tail does not hold, reads the log
        assert_eq!(positions(tail.after(event(12, 3).checkpoint(), 10)), None);
        assert_eq!(positions(tail.after(event(10, 5).checkpoint(), 10)), None);
    }

    #[test]
    fn only_a_batch_read_right_after_the_tail_extends_it() {
        // Given a tail holding 1 and 2
        let tail = Tail::default();
        tail.extend(Checkpoint::START, &[event(1, 1), event(2, 2)]);
        // When a runner behind it reads 2 again, it is not added twice
        tail.extend(event(1, 1).checkpoint(), &[event(2, 2)]);
        assert_eq!(
            positions(tail.after(Checkpoint::START, 10)),
            Some(vec![1, 2])
        );
        // When a runner ahead of it (after 5) reads 6, the tail starts anew there: nothing
        // between 2 and 6 is claimed
        tail.extend(event(5, 5).checkpoint(), &[event(6, 6)]);
        assert_eq!(positions(tail.after(Checkpoint::START, 10)), None);
        assert_eq!(positions(tail.after(event(2, 2).checkpoint(), 10)), None);
        assert_eq!(
            positions(tail.after(event(5, 5).checkpoint(), 10)),
            Some(vec![6])
        );
    }

    #[test]
    fn the_oldest_events_go_beyond_capacity() {
        let tail = Tail::default();
        let events: Vec<RecordedEvent> = (1..=Tail::CAPACITY as i64 + 2)
            .map(|p| event(p, p))
            .collect();
        tail.extend(Checkpoint::START, &events);
        assert_eq!(positions(tail.after(Checkpoint::START, 1)), None);
        assert_eq!(
            positions(tail.after(event(2, 2).checkpoint(), 1)),
            Some(vec![3])
        );
    }
}
