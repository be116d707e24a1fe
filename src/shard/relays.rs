//! A shard's relays: pulls it runs for streams its players asked for, and
//! pushes of streams published on it. The tasks live in [`crate::relay`];
//! the router decides when they start and stop (and charges each pull to
//! the connection whose play started it); here they are run, fed and
//! ended.

use std::cell::Cell;
use std::rc::Rc;

use tokio::task::JoinHandle;
use tracing::{debug, info};

use super::Shard;
use super::connection::Conn;
use crate::limits;
use crate::media::StreamKey;
use crate::relay::{self, PullSink};
use crate::router::{Event, Published};

/// A pull this shard runs.
pub(super) struct Pull {
    task: JoinHandle<()>,
    pub(super) status: Rc<relay::Status>,
}

/// One log line for a burst of like events: the first, then at most one
/// per [`limits::RELAY_LOG_BURST_MS`], each with the events it stands for.
#[derive(Debug, Default)]
pub(super) struct Burst {
    quiet_until_ms: Cell<u64>,
    held: Cell<u64>,
}

impl Burst {
    /// An event at `now_ms`: the number of events to report if it is to be
    /// logged (itself and those held back since the last line).
    pub(super) fn note(&self, now_ms: u64) -> Option<u64> {
        let events = self.held.get() + 1;
        if now_ms < self.quiet_until_ms.get() {
            self.held.set(events);
            return None;
        }
        self.held.set(0);
        self.quiet_until_ms
            .set(now_ms.saturating_add(limits::RELAY_LOG_BURST_MS));
        Some(events)
    }
}

impl Shard {
    /// Starts pulling `key` from its app's origins, asking for `play_name`.
    pub(super) fn start_pull(&self, key: StreamKey, play_name: String) {
        let Some(sink) = self.handle() else {
            return;
        };
        let status = Rc::new(relay::Status::new(
            relay::Kind::Pull,
            key.clone(),
            self.stats.clone(),
        ));
        let config = self.config();
        let plan = relay::pull::Plan {
            key: key.clone(),
            play_name,
            origins: config.relay.origins_for(key.app()),
            timing: config.relay.timing,
            roots: config.tls.relay_ca.clone(),
        };
        let sink: Rc<dyn PullSink> = sink;
        // The pull's own line comes once it is live ("pulling from origin").
        debug!(shard = %self.id, stream = %key, origins = plan.origins.len(), "pull started");
        let task = tokio_uring::spawn(relay::pull::run(plan, sink, status.clone()));
        self.stats.relay_pulls.add(1);
        self.pulls.borrow_mut().insert(key, Pull { task, status });
    }

    /// Stops this shard's pull of `key`.
    pub(super) fn stop_pull(&self, key: &StreamKey) {
        let Some(pull) = self.pulls.borrow_mut().remove(key) else {
            return;
        };
        pull.task.abort();
        self.stats.relay_pulls.sub(1);
        pull.status.state.set(relay::State::Stopped);
        debug!(shard = %self.id, stream = %key, "pull stopped");
    }

    /// A play that needed a new pull was refused at `cap`: counted, and
    /// logged once per burst.
    pub(super) fn pull_refused(&self, conn: &Conn, key: &StreamKey, cap: &str) {
        self.stats.limit_refusals.add(1);
        if let Some(refusals) = self.pulls_refused.note(self.now_ms()) {
            info!(shard = %self.id, peer = %conn.peer, stream = %key, cap, refusals, "play refused: a new pull would pass its cap");
        }
    }

    /// Starts pushing a stream published here (as `published_name`) to
    /// its app's targets.
    pub(super) fn start_pushes(&self, key: StreamKey, published_name: &str) {
        let config = self.config();
        let bound = config.player.queue_bytes_max;
        let pushes = (config.relay.push_for(key.app()).into_iter())
            .map(|target| {
                let plan = relay::push::Plan::new(
                    key.clone(),
                    published_name,
                    target,
                    config.relay.timing,
                    config.tls.relay_ca.clone(),
                );
                let feed = Rc::new(relay::push::Feed::new(bound));
                let status = Rc::new(relay::Status::new(
                    relay::Kind::Push,
                    key.clone(),
                    self.stats.clone(),
                ));
                tokio_uring::spawn(relay::push::run(plan, feed.clone(), status));
                feed
            })
            .collect();
        self.pushes.borrow_mut().insert(key, pushes);
    }

    /// The stream's publisher left: its pushes end.
    pub(super) fn stop_pushes(&self, key: &StreamKey) {
        for feed in self.pushes.borrow_mut().remove(key).into_iter().flatten() {
            feed.close();
        }
    }
}

impl PullSink for Shard {
    fn pulled(&self, key: &StreamKey, message: Published) {
        self.stats.frames_in.add(1);
        self.route(Event::Pulled {
            key: key.clone(),
            message,
        });
    }

    fn unavailable(&self, key: &StreamKey, why: &str) {
        if !self.pulls.borrow().contains_key(key) {
            return;
        }
        // This runs in the pull's task, which ends once this returns; the
        // abort of its stop only marks it.
        self.route(Event::PullUnavailable { key: key.clone() });
        if let Some(pulls) = self.pulls_unavailable.note(self.now_ms()) {
            info!(shard = %self.id, stream = %key, error = %why, pulls, "no origin served the stream: players told it is not found");
        }
    }

    fn discontinuity(&self, key: &StreamKey) {
        self.route(Event::PullDiscontinuity { key: key.clone() });
    }
}
