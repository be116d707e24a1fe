//! When each publish and play is next due its `on_update` call (nginx-rtmp's
//! `notify_update_timeout`): one entry per session, kept by a shard and
//! served by its timer, so a session costs no task and no timer of its own.
//! Pure: the shard's clock comes in as `now_ms`.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

/// Sessions by when their next update is due. Starting, stopping and
/// taking the next due session are O(log n).
#[derive(Debug)]
pub struct Updates<S> {
    /// By (due, order of scheduling): the order breaks ties, so sessions
    /// due together go in the order they were scheduled.
    due: BTreeMap<(u64, u64), S>,
    /// Each session's place in `due`, and when it began.
    sessions: HashMap<S, Scheduled>,
    next_order: u64,
}

#[derive(Clone, Copy, Debug)]
struct Scheduled {
    at: (u64, u64),
    started_ms: u64,
}

impl<S> Default for Updates<S> {
    fn default() -> Self {
        Updates {
            due: BTreeMap::new(),
            sessions: HashMap::new(),
            next_order: 0,
        }
    }
}

impl<S: Clone + Eq + Hash> Updates<S> {
    /// `session` began at `now_ms`: its first update is due an interval
    /// later. A session already scheduled keeps its place.
    pub fn start(&mut self, session: S, now_ms: u64, interval_ms: u64) {
        if self.sessions.contains_key(&session) {
            return;
        }
        let at = self.place(now_ms.saturating_add(interval_ms));
        self.due.insert(at, session.clone());
        let started_ms = now_ms;
        self.sessions.insert(session, Scheduled { at, started_ms });
    }

    /// `session` ended: no more updates.
    pub fn stop(&mut self, session: &S) {
        if let Some(scheduled) = self.sessions.remove(session) {
            self.due.remove(&scheduled.at);
        }
    }

    /// When the next update is due, if any session is scheduled.
    pub fn next_deadline(&self) -> Option<u64> {
        self.due.first_key_value().map(|(&(at, _), _)| at)
    }

    /// The earliest session due by `now_ms`, and when it began; it is due
    /// again an interval from now (a late timer does not make calls pile
    /// up).
    pub fn poll_due(&mut self, now_ms: u64, interval_ms: u64) -> Option<(S, u64)> {
        let entry = self.due.first_entry().filter(|e| e.key().0 <= now_ms)?;
        let session = entry.remove();
        let at = self.place(now_ms.saturating_add(interval_ms));
        self.due.insert(at, session.clone());
        let scheduled = self.sessions.get_mut(&session)?;
        scheduled.at = at;
        Some((session, scheduled.started_ms))
    }

    fn place(&mut self, at_ms: u64) -> (u64, u64) {
        let order = self.next_order;
        self.next_order = self.next_order.wrapping_add(1);
        (at_ms, order)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_come_due_each_interval_until_stopped() {
        let mut updates = Updates::default();
        updates.start("a", 0, 1000);
        updates.start("b", 500, 1000);
        updates.start("a", 700, 1000);
        assert_eq!(updates.next_deadline(), Some(1000), "a keeps its place");
        assert_eq!(updates.poll_due(999, 1000), None);
        assert_eq!(updates.poll_due(1000, 1000), Some(("a", 0)));
        assert_eq!(updates.poll_due(1000, 1000), None, "a is due at 2000 now");
        assert_eq!(updates.next_deadline(), Some(1500));
        updates.stop(&"b");
        assert_eq!(updates.next_deadline(), Some(2000));
        // A timer that wakes late fires once and goes on from then.
        assert_eq!(updates.poll_due(9000, 1000), Some(("a", 0)));
        assert_eq!(updates.poll_due(9000, 1000), None);
        assert_eq!(updates.next_deadline(), Some(10_000));
        updates.stop(&"a");
        updates.stop(&"a");
        assert_eq!(updates.next_deadline(), None);
        assert!(updates.sessions.is_empty());
    }

    #[test]
    fn sessions_due_together_go_in_the_order_they_began() {
        let mut updates = Updates::default();
        for session in 0..100 {
            updates.start(session, 0, 10);
        }
        let order: Vec<_> = std::iter::from_fn(|| updates.poll_due(10, 10))
            .map(|(session, _)| session)
            .collect();
        assert_eq!(order, (0..100).collect::<Vec<_>>());
        assert_eq!(updates.next_deadline(), Some(20), "each due again");
    }
}
