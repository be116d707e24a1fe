//! What the router must do later, by when (shard clock, ms): write held
//! frames, try a publish again, stop an unwatched pull. One queue, served
//! by [`Event::Tick`](super::Event::Tick); the shard sleeps until
//! [`Router::next_deadline`](super::Router::next_deadline).

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use crate::media::StreamKey;
use crate::protocol::MessageStreamId;

use super::ConnRef;

/// Something due at a time.
#[derive(Debug)]
pub(super) enum Timer {
    /// The stream's pacing set this deadline for frames its players hold.
    Hold { key: StreamKey },
    /// A publish refused as a duplicate is tried again. Boxed: retries
    /// are rare and holds are many, so a timer is the size of a hold.
    Retry(Box<Retry>),
    /// A pulled stream may have gone unwatched for the idle time.
    IdleStop { key: StreamKey },
}

/// A publish waiting for the stream's previous publisher to go.
#[derive(Debug)]
pub(super) struct Retry {
    pub(super) conn: ConnRef,
    pub(super) stream_id: MessageStreamId,
    pub(super) key: StreamKey,
    pub(super) name: String,
    /// How long it has waited, this retry included.
    pub(super) waited_ms: u64,
}

#[derive(Debug)]
struct Entry {
    at_ms: u64,
    /// Entries due at the same time come out in the order they went in.
    order: u64,
    timer: Timer,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Entry) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Entry) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Entry) -> Ordering {
        (self.at_ms, self.order).cmp(&(other.at_ms, other.order))
    }
}

#[derive(Debug, Default)]
pub(super) struct Deadlines {
    queue: BinaryHeap<Reverse<Entry>>,
    next_order: u64,
}

impl Deadlines {
    pub(super) fn add(&mut self, at_ms: u64, timer: Timer) {
        let order = self.next_order;
        self.next_order += 1;
        self.queue.push(Reverse(Entry {
            at_ms,
            order,
            timer,
        }));
    }

    /// The earliest deadline.
    pub(super) fn next(&self) -> Option<u64> {
        self.queue.peek().map(|Reverse(entry)| entry.at_ms)
    }

    /// The earliest timer due by `now_ms`, with its deadline.
    pub(super) fn pop_due(&mut self, now_ms: u64) -> Option<(u64, Timer)> {
        if self.next()? > now_ms {
            return None;
        }
        self.queue
            .pop()
            .map(|Reverse(entry)| (entry.at_ms, entry.timer))
    }

    /// Forgets the retries of `conn` (it is gone).
    pub(super) fn forget(&mut self, conn: ConnRef) {
        self.queue.retain(
            |Reverse(entry)| !matches!(&entry.timer, Timer::Retry(retry) if retry.conn == conn),
        );
    }

    #[cfg(test)]
    pub(super) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_come_out_by_deadline_then_in_order_of_arrival() {
        let mut deadlines = Deadlines::default();
        let key = |n: &str| StreamKey::new("live", n);
        deadlines.add(20, Timer::Hold { key: key("b") });
        deadlines.add(10, Timer::Hold { key: key("a") });
        deadlines.add(20, Timer::Hold { key: key("c") });
        assert_eq!(deadlines.next(), Some(10));
        assert!(deadlines.pop_due(9).is_none());
        let names: Vec<_> = std::iter::from_fn(|| deadlines.pop_due(20))
            .map(|(at, timer)| match timer {
                Timer::Hold { key } => (at, key.name().to_owned()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            names,
            [(10, "a".into()), (20, "b".into()), (20, "c".into())]
        );
        assert!(deadlines.is_empty());
    }

    #[test]
    fn a_timer_is_the_size_of_a_stream_key_and_a_tag() {
        // Holds come with frames: each costs this for up to a write window.
        assert!(size_of::<Timer>() <= 24, "{}", size_of::<Timer>());
    }
}
