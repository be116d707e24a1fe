//! Which shard owns the publisher of each stream, and which shards have
//! players waiting for one. Consulted on publish, play and unpublish only,
//! never per frame, so a plain mutex is enough (DESIGN.md).

use std::collections::HashMap;
use std::sync::Mutex;

use super::ShardId;
use crate::media::StreamKey;
use crate::protocol::Timestamp;

#[derive(Debug, Default)]
pub struct Directory {
    entries: Mutex<HashMap<StreamKey, Entry>>,
}

#[derive(Debug, Default)]
struct Entry {
    owner: Option<ShardId>,
    /// The owner pulls the stream from an origin rather than having a
    /// publisher: any publisher here takes precedence.
    pulled: bool,
    /// Shards with players waiting for a publisher, to be told when one
    /// arrives.
    waiting: Vec<ShardId>,
    /// The latest timestamp the waiting players got from an earlier
    /// publisher: the next one continues from there, on whatever shard.
    resume_at: Option<Timestamp>,
}

/// Where a shard with a new player finds the stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Resolution {
    /// On this shard's publisher or pull.
    Owner(ShardId),
    /// Nobody has it and an origin can: this shard pulls it now and tells
    /// the `waiting` shards.
    Pull { waiting: Vec<ShardId> },
    /// Nobody has it: this shard waits for a publisher.
    Wait,
}

/// Server-wide caps a new publisher or stream must stay within; 0: none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Caps {
    pub publishers: usize,
    pub streams: usize,
}

/// The answer to a shard that wants to publish a stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// The stream is this shard's now. `replaced`: the shard whose
    /// publisher it took over (takeover policy); `waiting`: shards to tell;
    /// `resume_at`: where their players are (see [`Directory::find_or_pull`]).
    Granted {
        replaced: Option<ShardId>,
        waiting: Vec<ShardId>,
        resume_at: Option<Timestamp>,
    },
    /// Another publisher has it (reject policy).
    Busy(ShardId),
    /// A new publisher or stream would pass this cap (`max_publishers`,
    /// `max_streams`).
    Full(&'static str),
}

impl Directory {
    /// Makes `shard` the owner of `key`, unless another shard owns it and
    /// `replace` is false. The same shard claiming again (a local takeover)
    /// is granted with `replaced: Some(shard)`. A pull always gives way to
    /// a publisher. A publisher that is not a takeover must fit within
    /// `caps`.
    pub fn claim(&self, key: &StreamKey, shard: ShardId, replace: bool, caps: Caps) -> Claim {
        let mut entries = self.lock();
        let (owner, pulled) = entries
            .get(key)
            .map_or((None, false), |e| (e.owner, e.pulled));
        if owner.is_none() && at_cap(caps.streams, || count(&entries, |e| e.owner.is_some())) {
            return Claim::Full("max_streams");
        }
        let new_publisher = owner.is_none() || pulled;
        let publishers = || count(&entries, |e| e.owner.is_some() && !e.pulled);
        if new_publisher && at_cap(caps.publishers, publishers) {
            return Claim::Full("max_publishers");
        }
        let entry = entries.entry(key.clone()).or_default();
        match entry.owner {
            Some(owner) if !replace && !entry.pulled => Claim::Busy(owner),
            previous => {
                entry.owner = Some(shard);
                entry.pulled = false;
                Claim::Granted {
                    replaced: previous,
                    waiting: std::mem::take(&mut entry.waiting),
                    resume_at: entry.resume_at.take(),
                }
            }
        }
    }

    /// Gives up ownership, if `shard` still has it (a takeover may have
    /// moved it on).
    pub fn release(&self, key: &StreamKey, shard: ShardId) {
        let mut entries = self.lock();
        if let Some(entry) = entries.get_mut(key) {
            if entry.owner == Some(shard) {
                entry.owner = None;
                entry.pulled = false;
            }
            if entry.owner.is_none() && entry.waiting.is_empty() {
                entries.remove(key);
            }
        }
    }

    /// The owner of `key`; else, when `can_pull` and a stream more stays
    /// within `streams_max` (0: no cap), `shard` becomes the owner of a
    /// pull; else `shard` waits for a publisher. `seen`: the latest
    /// timestamp `shard`'s players got from an earlier source, handed to
    /// the next publisher so that they see no step back.
    pub fn find_or_pull(
        &self,
        key: &StreamKey,
        shard: ShardId,
        can_pull: bool,
        streams_max: usize,
        seen: Option<Timestamp>,
    ) -> Resolution {
        let mut entries = self.lock();
        let can_pull = can_pull && !at_cap(streams_max, || count(&entries, |e| e.owner.is_some()));
        let entry = entries.entry(key.clone()).or_default();
        match entry.owner {
            Some(owner) => Resolution::Owner(owner),
            None if can_pull => {
                entry.owner = Some(shard);
                entry.pulled = true;
                let mut waiting = std::mem::take(&mut entry.waiting);
                waiting.retain(|s| *s != shard);
                Resolution::Pull { waiting }
            }
            None => {
                if !entry.waiting.contains(&shard) {
                    entry.waiting.push(shard);
                }
                if let Some(seen) = seen {
                    entry.resume_at = Some(entry.resume_at.map_or(seen, |at| at.later(seen)));
                }
                Resolution::Wait
            }
        }
    }

    /// `shard` no longer has players waiting for `key`.
    pub fn stop_waiting(&self, key: &StreamKey, shard: ShardId) {
        let mut entries = self.lock();
        if let Some(entry) = entries.get_mut(key) {
            entry.waiting.retain(|s| *s != shard);
            if entry.owner.is_none() && entry.waiting.is_empty() {
                entries.remove(key);
            }
        }
    }

    /// The owner of `key`, if any.
    pub fn owner(&self, key: &StreamKey) -> Option<ShardId> {
        self.lock().get(key).and_then(|e| e.owner)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<StreamKey, Entry>> {
        // A shard that panicked while holding the lock left the map whole
        // (every update is a single assignment), so carry on with it.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Whether `cap` (0: none) is reached; counts only when there is a cap.
fn at_cap(cap: usize, count: impl FnOnce() -> usize) -> bool {
    cap != 0 && count() >= cap
}

/// Entries matching `filter`: a walk of the map, done only on a publish or
/// a pull under a cap, never per frame.
fn count(entries: &HashMap<StreamKey, Entry>, filter: impl Fn(&Entry) -> bool) -> usize {
    entries.values().filter(|e| filter(e)).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: Caps = Caps {
        publishers: 0,
        streams: 0,
    };

    fn key() -> StreamKey {
        StreamKey::new("live", "cam")
    }

    #[test]
    fn caps_count_publishers_and_streams_server_wide() {
        let d = Directory::default();
        let caps = Caps {
            publishers: 1,
            streams: 2,
        };
        let other = StreamKey::new("live", "other");
        let third = StreamKey::new("live", "third");
        assert!(matches!(
            d.claim(&key(), ShardId(0), false, caps),
            Claim::Granted { .. }
        ));
        assert_eq!(
            d.claim(&other, ShardId(1), false, caps),
            Claim::Full("max_publishers")
        );
        // A takeover is not a new publisher.
        assert!(matches!(
            d.claim(&key(), ShardId(1), true, caps),
            Claim::Granted { .. }
        ));
        // A pull is a stream, not a publisher.
        assert!(matches!(
            d.find_or_pull(&other, ShardId(0), true, 2, None),
            Resolution::Pull { .. }
        ));
        assert_eq!(
            d.find_or_pull(&third, ShardId(0), true, 2, None),
            Resolution::Wait
        );
        let roomy = Caps {
            publishers: 5,
            streams: 2,
        };
        assert_eq!(
            d.claim(&third, ShardId(0), false, roomy),
            Claim::Full("max_streams")
        );
        // A publisher replacing the pull adds no stream.
        assert!(matches!(
            d.claim(&other, ShardId(0), false, roomy),
            Claim::Granted { .. }
        ));
        d.release(&key(), ShardId(1));
        assert!(matches!(
            d.claim(&third, ShardId(0), false, roomy),
            Claim::Granted { .. }
        ));
    }

    #[test]
    fn the_first_publisher_gets_the_stream_and_the_waiting_shards() {
        let d = Directory::default();
        assert_eq!(
            d.find_or_pull(&key(), ShardId(2), false, 0, None),
            Resolution::Wait
        );
        assert_eq!(
            d.find_or_pull(&key(), ShardId(2), false, 0, None),
            Resolution::Wait
        );
        assert_eq!(
            d.claim(&key(), ShardId(0), false, NONE),
            Claim::Granted {
                replaced: None,
                waiting: vec![ShardId(2)],
                resume_at: None
            }
        );
        assert_eq!(
            d.find_or_pull(&key(), ShardId(1), false, 0, None),
            Resolution::Owner(ShardId(0))
        );
        assert_eq!(
            d.claim(&key(), ShardId(1), false, NONE),
            Claim::Busy(ShardId(0))
        );
    }

    #[test]
    fn the_first_shard_to_ask_pulls_and_the_others_subscribe_to_it() {
        let d = Directory::default();
        assert_eq!(
            d.find_or_pull(&key(), ShardId(1), true, 0, None),
            Resolution::Pull { waiting: vec![] }
        );
        assert_eq!(
            d.find_or_pull(&key(), ShardId(0), true, 0, None),
            Resolution::Owner(ShardId(1))
        );
        // A publisher takes over a pull even under the reject policy.
        assert_eq!(
            d.claim(&key(), ShardId(0), false, NONE),
            Claim::Granted {
                replaced: Some(ShardId(1)),
                waiting: vec![],
                resume_at: None
            }
        );
        // Its release leaves the stream to pull again.
        d.release(&key(), ShardId(0));
        assert!(matches!(
            d.find_or_pull(&key(), ShardId(0), true, 0, None),
            Resolution::Pull { .. }
        ));
    }

    #[test]
    fn takeover_replaces_the_owner_and_a_stale_release_is_ignored() {
        let d = Directory::default();
        let _ = d.claim(&key(), ShardId(0), false, NONE);
        assert_eq!(
            d.claim(&key(), ShardId(1), true, NONE),
            Claim::Granted {
                replaced: Some(ShardId(0)),
                waiting: vec![],
                resume_at: None
            }
        );
        d.release(&key(), ShardId(0));
        assert_eq!(d.owner(&key()), Some(ShardId(1)));
        d.release(&key(), ShardId(1));
        assert_eq!(d.owner(&key()), None);
    }

    #[test]
    fn the_next_publisher_continues_from_the_latest_timestamp_players_got() {
        let d = Directory::default();
        let _ = d.claim(&key(), ShardId(0), false, NONE);
        d.release(&key(), ShardId(0));
        let seen = |at| Some(Timestamp(at));
        let _ = d.find_or_pull(&key(), ShardId(0), false, 0, seen(9000));
        let _ = d.find_or_pull(&key(), ShardId(2), false, 0, seen(9040));
        let _ = d.find_or_pull(&key(), ShardId(1), false, 0, None);
        assert_eq!(
            d.claim(&key(), ShardId(1), false, NONE),
            Claim::Granted {
                replaced: None,
                waiting: vec![ShardId(0), ShardId(2), ShardId(1)],
                resume_at: seen(9040)
            }
        );
        // Taken by that publisher: the one after it starts afresh.
        d.release(&key(), ShardId(1));
        let _ = d.find_or_pull(&key(), ShardId(1), false, 0, None);
        assert!(matches!(
            d.claim(&key(), ShardId(0), false, NONE),
            Claim::Granted {
                resume_at: None,
                ..
            }
        ));
    }

    #[test]
    fn entries_go_away_when_nobody_owns_or_waits() {
        let d = Directory::default();
        let _ = d.find_or_pull(&key(), ShardId(1), false, 0, None);
        d.stop_waiting(&key(), ShardId(1));
        assert!(d.lock().is_empty());
    }
}
