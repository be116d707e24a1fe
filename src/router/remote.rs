//! The cross-shard protocol. The owner of a stream (the shard with its
//! publisher or pull) sends a shard that subscribes a snapshot (headers
//! and GOP), then every frame once, numbered; a gap in the numbers (frames
//! dropped for a shard whose inbox was full) gates the subscriber's
//! players until the next keyframe, like a slow player.

use super::stream::Source;
use super::{Action, Router, ShardId, StreamMessage};
use crate::media::{Frame, StreamKey};

impl Router {
    /// Acts on a message from another shard.
    pub(super) fn message(&mut self, message: StreamMessage) {
        match message {
            StreamMessage::Subscribe { key, from } => self.subscribe(key, from),
            StreamMessage::Unsubscribe { key, from } => {
                let Some(stream) = self.streams.get_mut(&key) else {
                    return;
                };
                stream.subscribers.retain(|s| *s != from);
                if stream.is_unwatched_pull() {
                    self.schedule_idle_stop(&key);
                }
            }
            StreamMessage::Discontinuity { key } => {
                if let Some(stream) = self.streams.get_mut(&key) {
                    stream.live.restart();
                    stream.gate_players(&mut self.actions);
                }
            }
            StreamMessage::Snapshot {
                key,
                frames,
                next_seq,
            } => self.snapshot(&key, &frames, next_seq),
            StreamMessage::Frame { key, seq, frame } => self.relayed_frame(&key, seq, &frame),
            StreamMessage::NotFound { key } => {
                if self.is_remote(&key) {
                    self.stream_not_found(&key);
                }
            }
            StreamMessage::SourceGone { key } => {
                if self.is_remote(&key) {
                    self.source_gone(&key, true);
                }
            }
            StreamMessage::Published { key, owner } => {
                let Some(stream) = self.streams.get_mut(&key) else {
                    return;
                };
                if stream.source == Source::Waiting && !stream.players.is_empty() {
                    stream.source = Source::Remote {
                        owner,
                        synced: false,
                    };
                    let from = self.shard;
                    self.send(owner, StreamMessage::Subscribe { key, from });
                }
            }
            StreamMessage::Replaced { key } => self.kick_publisher(&key, true),
        }
    }

    fn is_remote(&self, key: &StreamKey) -> bool {
        (self.streams.get(key)).is_some_and(|s| matches!(s.source, Source::Remote { .. }))
    }

    /// Owner side: a shard with players wants the stream.
    fn subscribe(&mut self, key: StreamKey, from: ShardId) {
        let Some(stream) = self.streams.get_mut(&key).filter(|s| s.is_source()) else {
            // The publisher left meanwhile: let it look again.
            self.send(from, StreamMessage::SourceGone { key });
            return;
        };
        if let Source::Pull { idle_since_ms, .. } = &mut stream.source {
            *idle_since_ms = None;
        }
        if !stream.subscribers.contains(&from) {
            stream.subscribers.push(from);
        }
        let frames = stream.live.gop().snapshot().cloned().collect();
        let next_seq = stream.next_seq();
        let message = StreamMessage::Snapshot {
            key,
            frames,
            next_seq,
        };
        self.send(from, message);
    }

    /// Subscriber side: the owner's snapshot; players start from it.
    fn snapshot(&mut self, key: &StreamKey, frames: &[Frame], next_seq: u64) {
        let Some(stream) = self.streams.get_mut(key) else {
            return;
        };
        let Source::Remote {
            owner,
            synced: false,
        } = stream.source
        else {
            return;
        };
        stream.source = Source::Remote {
            owner,
            synced: true,
        };
        stream.expected_seq = next_seq;
        stream.live.restart();
        for frame in frames {
            stream.live.relay(frame);
        }
        stream.restart_players(&mut self.actions);
    }

    /// Subscriber side: one frame from the owner.
    fn relayed_frame(&mut self, key: &StreamKey, seq: u64, frame: &Frame) {
        let Some(stream) = self.streams.get_mut(key) else {
            return;
        };
        if !matches!(stream.source, Source::Remote { synced: true, .. })
            || seq < stream.expected_seq
        {
            return;
        }
        if seq > stream.expected_seq {
            // The owner dropped frames for us (this shard lagged): like a
            // slow player, video resumes at the next keyframe.
            let frames = seq - stream.expected_seq;
            self.actions.push(Action::Lost {
                key: key.clone(),
                frames,
            });
            stream.gate_players(&mut self.actions);
            stream.live.frames_lost();
        }
        stream.expected_seq = seq + 1;
        stream.live.relay(frame);
        let hold = stream.fan_out(key, frame, self.now_ms, &mut self.actions);
        if let Some(deadline_ms) = hold {
            self.hold_until(deadline_ms, key);
        }
    }
}
