//! A shard's relays: pulls it runs for streams its players asked for, and
//! pushes of streams published on it. The tasks live in [`crate::relay`];
//! here they are started, stopped and fed.
//!
//! Each pull is charged to the connection whose play started it
//! ([`PullCount`]) until it stops, idle stop included, so one connection
//! playing name after name holds at most `relay.pulls_per_connection_max`
//! origin connections; the server-wide `relay.pulls_max` is the
//! directory's to count.

use std::cell::Cell;
use std::rc::Rc;

use tracing::{debug, info};

use super::Shard;
use super::ShardId;
use super::connection::Conn;
use super::messages::ShardMessage;
use super::streams::{LocalStream, Push, Source};
use crate::limits;
use crate::media::StreamKey;
use crate::relay::{self, PullSink, Pulled};

/// Pulls one connection started that are still alive (running or waiting
/// out their idle stop). Each pull holds a [`PullSlot`] that gives its
/// count back when the pull ends, even after the connection has gone.
#[derive(Debug, Default)]
pub struct PullCount(Rc<Cell<usize>>);

impl PullCount {
    pub(super) fn alive(&self) -> usize {
        self.0.get()
    }

    fn slot(&self) -> PullSlot {
        self.0.set(self.0.get() + 1);
        PullSlot(self.0.clone())
    }
}

/// One pull's place in its connection's [`PullCount`].
#[derive(Debug)]
pub(super) struct PullSlot(Rc<Cell<usize>>);

impl Drop for PullSlot {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
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
    /// Starts pulling `key` from its app's origins, charged to `starter`;
    /// `waiting` shards are told where it is.
    pub(super) fn start_pull(
        &self,
        key: &StreamKey,
        play_name: &str,
        waiting: Vec<ShardId>,
        starter: &Conn,
    ) -> Source {
        let status = Rc::new(relay::Status::new(
            relay::Kind::Pull,
            key.clone(),
            self.stats.clone(),
        ));
        let config = self.config();
        let plan = relay::pull::Plan {
            key: key.clone(),
            play_name: play_name.to_owned(),
            origins: config.relay.origins_for(key.app()),
            timing: config.relay.timing,
        };
        let Some(sink) = self.handle() else {
            return Source::Waiting;
        };
        let sink: Rc<dyn PullSink> = sink;
        // The pull's own line comes once it is live ("pulling from origin").
        debug!(shard = %self.id, stream = %key, origins = plan.origins.len(), "pull started");
        let task = tokio_uring::spawn(relay::pull::run(plan, sink, status.clone()));
        self.stats.relay_pulls.add(1);
        for shard in waiting {
            self.mesh.send(
                shard,
                ShardMessage::Published {
                    key: key.clone(),
                    owner: self.id,
                },
            );
        }
        Source::Pull {
            task,
            status,
            idle: None,
            since_ms: self.now_ms(),
            _slot: starter.pulls.slot(),
        }
    }

    /// A play that needed a new pull was refused at `cap`: counted, and
    /// logged once per burst.
    pub(super) fn pull_refused(&self, conn: &Conn, key: &StreamKey, cap: &str) {
        self.stats.limit_refusals.add(1);
        if let Some(refusals) = self.pulls_refused.note(self.now_ms()) {
            info!(shard = %self.id, peer = %conn.peer, stream = %key, cap, refusals, "play refused: a new pull would pass its cap");
        }
    }

    /// Stops this shard's pull of `key`, if it has one; true if it did.
    pub(super) fn stop_pull(&self, key: &StreamKey) -> bool {
        let mut streams = self.streams.borrow_mut();
        let Some(stream) = streams.get_mut(key) else {
            return false;
        };
        let Source::Pull {
            task, status, idle, ..
        } = &stream.source
        else {
            return false;
        };
        task.abort();
        self.stats.relay_pulls.sub(1);
        if let Some(timer) = idle {
            timer.abort();
        }
        status.state.set(relay::State::Stopped);
        debug!(shard = %self.id, stream = %key, "pull stopped");
        stream.source = Source::Waiting;
        true
    }

    /// Nobody watches a pulled stream any more: stop the pull after the
    /// idle time unless someone comes back first.
    pub(super) fn schedule_idle_stop(&self, key: &StreamKey, stream: &mut LocalStream) {
        let Source::Pull { idle, .. } = &mut stream.source else {
            return;
        };
        if idle.is_some() {
            return;
        }
        let Some(shard) = self.handle() else {
            return;
        };
        let key = key.clone();
        let wait = self.config().relay.timing.idle_stop;
        *idle = Some(tokio_uring::spawn(async move {
            tokio::time::sleep(wait).await;
            shard.idle_expired(&key);
        }));
    }

    fn idle_expired(&self, key: &StreamKey) {
        let unwatched = self.streams.borrow().get(key).is_some_and(|s| {
            matches!(s.source, Source::Pull { .. })
                && s.players.is_empty()
                && s.subscribers.is_empty()
        });
        if !unwatched {
            return;
        }
        if let Some(Source::Pull { idle, .. }) = self
            .streams
            .borrow_mut()
            .get_mut(key)
            .map(|s| &mut s.source)
        {
            // This task is the timer: forget it rather than abort itself.
            idle.take();
        }
        self.stop_pull(key);
        self.directory.release(key, self.id);
        self.streams.borrow_mut().remove(key);
    }

    /// Starts pushing a stream published here to its app's targets.
    pub(super) fn start_pushes(&self, key: &StreamKey, published_name: &str) -> Vec<Push> {
        let config = self.config();
        let bound = config.player.queue_bytes_max;
        config
            .relay
            .push_for(key.app())
            .into_iter()
            .map(|target| {
                let plan = relay::push::Plan::new(
                    key.clone(),
                    published_name,
                    target,
                    config.relay.timing,
                );
                let feed = Rc::new(relay::push::Feed::new(bound));
                let status = Rc::new(relay::Status::new(
                    relay::Kind::Push,
                    key.clone(),
                    self.stats.clone(),
                ));
                tokio_uring::spawn(relay::push::run(plan, feed.clone(), status.clone()));
                Push { feed, status }
            })
            .collect()
    }
}

impl PullSink for Shard {
    fn pulled(&self, key: &StreamKey, message: Pulled) {
        self.stats.frames_in.add(1);
        let mut streams = self.streams.borrow_mut();
        let Some(stream) = streams
            .get_mut(key)
            .filter(|s| matches!(s.source, Source::Pull { .. }))
        else {
            return;
        };
        let frame = match message {
            Pulled::Media(media) => stream.live.publish(media),
            Pulled::Metadata {
                timestamp,
                metadata,
            } => stream.live.publish_metadata(timestamp, metadata),
        };
        if let Ok(frame) = frame {
            self.fan_out(key, stream, &frame);
        }
    }

    fn unavailable(&self, key: &StreamKey, why: &str) {
        let is_pull = self
            .streams
            .borrow()
            .get(key)
            .is_some_and(|s| matches!(s.source, Source::Pull { .. }));
        if !is_pull {
            return;
        }
        // This runs in the pull's task, which ends once this returns; the
        // abort in `stop_pull` only marks it.
        self.stop_pull(key);
        self.directory.release(key, self.id);
        self.stream_not_found(key);
        if let Some(pulls) = self.pulls_unavailable.note(self.now_ms()) {
            info!(shard = %self.id, stream = %key, error = %why, pulls, "no origin has the stream: players told it is not found");
        }
    }

    fn discontinuity(&self, key: &StreamKey) {
        let mut streams = self.streams.borrow_mut();
        let Some(stream) = streams.get_mut(key) else {
            return;
        };
        // The next origin sends its own headers and GOP; nothing cached
        // from the last one may be mixed in for a player joining now.
        stream.live.restart();
        stream.gate_players();
        for shard in &stream.subscribers {
            self.mesh
                .send(*shard, ShardMessage::Discontinuity { key: key.clone() });
        }
    }
}
