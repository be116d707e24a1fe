//! Which shard owns the publisher of each stream, and which shards have
//! players waiting for one. Consulted on publish, play and unpublish only,
//! never per frame, so a plain mutex is enough (DESIGN.md).
//!
//! It also counts what it holds (streams, publishers, pulls), updated on
//! every change of an owner, so the server-wide caps (`streams_max`,
//! `publishers_max`, `relay.pulls_max`) cost O(1) under the lock however
//! many streams there are.

use std::collections::HashMap;
use std::sync::Mutex;

use super::ShardId;
use crate::media::StreamKey;
use crate::protocol::Timestamp;

#[derive(Debug, Default)]
pub struct Directory {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<StreamKey, Entry>,
    counts: Counts,
}

/// What the entries hold, kept in step with them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counts {
    /// Entries with an owner: a publisher or a pull.
    streams: usize,
    /// Entries whose owner pulls from an origin (never more than
    /// `streams`: a pull is an owned entry).
    pulls: usize,
}

impl Counts {
    /// Entries whose owner has a publisher.
    fn publishers(&self) -> usize {
        self.streams - self.pulls
    }

    /// Gives `entry` a new owner (or none), keeping the counts in step.
    fn set(&mut self, entry: &mut Entry, owner: Option<ShardId>, pulled: bool) {
        if entry.owner.is_some() {
            self.streams -= 1;
            self.pulls -= usize::from(entry.pulled);
        }
        entry.owner = owner;
        entry.pulled = owner.is_some() && pulled;
        if entry.owner.is_some() {
            self.streams += 1;
            self.pulls += usize::from(entry.pulled);
        }
    }
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
    /// Nobody has it and a pull would pass this cap (`streams_max`,
    /// `relay.pulls_max`, `relay.pulls_per_connection_max`): the player is
    /// refused.
    Full(&'static str),
}

/// Server-wide caps a new publisher, stream or pull must stay within; 0:
/// none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Caps {
    pub publishers: usize,
    pub streams: usize,
    pub pulls: usize,
}

/// What a shard asking for a stream nobody has may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pulling {
    /// No origin serves the app: wait for a publisher.
    No,
    /// Pull from an origin, within these caps.
    Within(Caps),
    /// The asking connection is at this cap of its own: refuse.
    Refused(&'static str),
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
    /// A new publisher or stream would pass this cap (`publishers_max`,
    /// `streams_max`).
    Full(&'static str),
}

impl Directory {
    /// Makes `shard` the owner of `key`, unless another shard owns it and
    /// `replace` is false. The same shard claiming again (a local takeover)
    /// is granted with `replaced: Some(shard)`. A pull always gives way to
    /// a publisher. A publisher that is not a takeover must fit within
    /// `caps`.
    pub fn claim(&self, key: &StreamKey, shard: ShardId, replace: bool, caps: Caps) -> Claim {
        let mut inner = self.lock();
        let Inner { entries, counts } = &mut *inner;
        let (owner, pulled) = entries
            .get(key)
            .map_or((None, false), |e| (e.owner, e.pulled));
        if owner.is_none() && at_cap(caps.streams, counts.streams) {
            return Claim::Full("streams_max");
        }
        let new_publisher = owner.is_none() || pulled;
        if new_publisher && at_cap(caps.publishers, counts.publishers()) {
            return Claim::Full("publishers_max");
        }
        let entry = entries.entry(key.clone()).or_default();
        match entry.owner {
            Some(owner) if !replace && !entry.pulled => Claim::Busy(owner),
            previous => {
                counts.set(entry, Some(shard), false);
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
        let mut inner = self.lock();
        let Inner { entries, counts } = &mut *inner;
        if let Some(entry) = entries.get_mut(key) {
            if entry.owner == Some(shard) {
                counts.set(entry, None, false);
            }
            if entry.owner.is_none() && entry.waiting.is_empty() {
                entries.remove(key);
            }
        }
    }

    /// The owner of `key`; else, as `pulling` allows, `shard` becomes the
    /// owner of a pull, is refused, or waits for a publisher. `seen`: the
    /// latest timestamp `shard`'s players got from an earlier source,
    /// handed to the next publisher so that they see no step back.
    pub fn find_or_pull(
        &self,
        key: &StreamKey,
        shard: ShardId,
        pulling: Pulling,
        seen: Option<Timestamp>,
    ) -> Resolution {
        let mut inner = self.lock();
        let Inner { entries, counts } = &mut *inner;
        if let Some(owner) = entries.get(key).and_then(|e| e.owner) {
            return Resolution::Owner(owner);
        }
        let refused = match pulling {
            Pulling::No => None,
            Pulling::Refused(cap) => Some(cap),
            Pulling::Within(caps) if at_cap(caps.streams, counts.streams) => Some("streams_max"),
            Pulling::Within(caps) if at_cap(caps.pulls, counts.pulls) => Some("relay.pulls_max"),
            Pulling::Within(_) => {
                let entry = entries.entry(key.clone()).or_default();
                counts.set(entry, Some(shard), true);
                let mut waiting = std::mem::take(&mut entry.waiting);
                waiting.retain(|s| *s != shard);
                return Resolution::Pull { waiting };
            }
        };
        if let Some(cap) = refused {
            return Resolution::Full(cap);
        }
        let entry = entries.entry(key.clone()).or_default();
        if !entry.waiting.contains(&shard) {
            entry.waiting.push(shard);
        }
        if let Some(seen) = seen {
            entry.resume_at = Some(entry.resume_at.map_or(seen, |at| at.later(seen)));
        }
        Resolution::Wait
    }

    /// `shard` no longer has players waiting for `key`.
    pub fn stop_waiting(&self, key: &StreamKey, shard: ShardId) {
        let mut inner = self.lock();
        let entries = &mut inner.entries;
        if let Some(entry) = entries.get_mut(key) {
            entry.waiting.retain(|s| *s != shard);
            if entry.owner.is_none() && entry.waiting.is_empty() {
                entries.remove(key);
            }
        }
    }

    /// The owner of `key`, if any.
    pub fn owner(&self, key: &StreamKey) -> Option<ShardId> {
        self.lock().entries.get(key).and_then(|e| e.owner)
    }

    /// Streams it has an entry for (the tests check none leaks).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().entries.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A shard that panicked while holding the lock left the map and
        // its counts whole (each change updates both before returning), so
        // carry on with it.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Whether `cap` (0: none) is reached by `count`.
fn at_cap(cap: usize, count: usize) -> bool {
    cap != 0 && count >= cap
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: Caps = Caps {
        publishers: 0,
        streams: 0,
        pulls: 0,
    };

    /// Pulls within a cap on streams (0: none).
    fn pull(streams: usize) -> Pulling {
        Pulling::Within(Caps { streams, ..NONE })
    }

    fn key() -> StreamKey {
        StreamKey::new("live", "cam")
    }

    #[test]
    fn caps_count_publishers_and_streams_server_wide() {
        let d = Directory::default();
        let caps = Caps {
            publishers: 1,
            streams: 2,
            pulls: 0,
        };
        let other = StreamKey::new("live", "other");
        let third = StreamKey::new("live", "third");
        assert!(matches!(
            d.claim(&key(), ShardId(0), false, caps),
            Claim::Granted { .. }
        ));
        assert_eq!(
            d.claim(&other, ShardId(1), false, caps),
            Claim::Full("publishers_max")
        );
        // A takeover is not a new publisher.
        assert!(matches!(
            d.claim(&key(), ShardId(1), true, caps),
            Claim::Granted { .. }
        ));
        // A pull is a stream, not a publisher.
        assert!(matches!(
            d.find_or_pull(&other, ShardId(0), pull(2), None),
            Resolution::Pull { .. }
        ));
        assert_eq!(
            d.find_or_pull(&third, ShardId(0), pull(2), None),
            Resolution::Full("streams_max")
        );
        let roomy = Caps {
            publishers: 5,
            streams: 2,
            pulls: 0,
        };
        assert_eq!(
            d.claim(&third, ShardId(0), false, roomy),
            Claim::Full("streams_max")
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
            d.find_or_pull(&key(), ShardId(2), Pulling::No, None),
            Resolution::Wait
        );
        assert_eq!(
            d.find_or_pull(&key(), ShardId(2), Pulling::No, None),
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
            d.find_or_pull(&key(), ShardId(1), Pulling::No, None),
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
            d.find_or_pull(&key(), ShardId(1), pull(0), None),
            Resolution::Pull { waiting: vec![] }
        );
        assert_eq!(
            d.find_or_pull(&key(), ShardId(0), pull(0), None),
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
            d.find_or_pull(&key(), ShardId(0), pull(0), None),
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
        let _ = d.find_or_pull(&key(), ShardId(0), Pulling::No, seen(9000));
        let _ = d.find_or_pull(&key(), ShardId(2), Pulling::No, seen(9040));
        let _ = d.find_or_pull(&key(), ShardId(1), Pulling::No, None);
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
        let _ = d.find_or_pull(&key(), ShardId(1), Pulling::No, None);
        assert!(matches!(
            d.claim(&key(), ShardId(0), false, NONE),
            Claim::Granted {
                resume_at: None,
                ..
            }
        ));
    }

    /// The counts as a walk of the map finds them.
    fn walked(d: &Directory) -> Counts {
        let inner = d.lock();
        let owned = inner.entries.values().filter(|e| e.owner.is_some());
        Counts {
            streams: owned.clone().count(),
            pulls: owned.filter(|e| e.pulled).count(),
        }
    }

    #[test]
    fn counts_follow_claims_pulls_takeovers_and_releases() {
        let d = Directory::default();
        let other = StreamKey::new("live", "other");
        let steps: [(&str, &dyn Fn(), Counts); 7] = [
            (
                "a pull",
                &|| drop(d.find_or_pull(&key(), ShardId(0), pull(0), None)),
                Counts {
                    streams: 1,
                    pulls: 1,
                },
            ),
            (
                "a player of it",
                &|| drop(d.find_or_pull(&key(), ShardId(1), pull(0), None)),
                Counts {
                    streams: 1,
                    pulls: 1,
                },
            ),
            (
                "a publisher replacing the pull",
                &|| drop(d.claim(&key(), ShardId(1), false, NONE)),
                Counts {
                    streams: 1,
                    pulls: 0,
                },
            ),
            (
                "a waiting player",
                &|| drop(d.find_or_pull(&other, ShardId(0), Pulling::No, None)),
                Counts {
                    streams: 1,
                    pulls: 0,
                },
            ),
            (
                "a takeover",
                &|| drop(d.claim(&key(), ShardId(0), true, NONE)),
                Counts {
                    streams: 1,
                    pulls: 0,
                },
            ),
            (
                "a stale release",
                &|| d.release(&key(), ShardId(1)),
                Counts {
                    streams: 1,
                    pulls: 0,
                },
            ),
            (
                "the release",
                &|| d.release(&key(), ShardId(0)),
                Counts {
                    streams: 0,
                    pulls: 0,
                },
            ),
        ];
        for (step, act, expected) in steps {
            act();
            assert_eq!(d.lock().counts, expected, "after {step}");
            assert_eq!(walked(&d), expected, "after {step}: the map agrees");
        }
    }

    #[test]
    fn pulls_stop_at_their_cap_and_a_refused_connection_is_refused() {
        let d = Directory::default();
        let within = Pulling::Within(Caps { pulls: 2, ..NONE });
        for (n, name) in ["a", "b"].iter().enumerate() {
            assert!(matches!(
                d.find_or_pull(&StreamKey::new("live", name), ShardId(n), within, None),
                Resolution::Pull { .. }
            ));
        }
        let third = StreamKey::new("live", "c");
        assert_eq!(
            d.find_or_pull(&third, ShardId(0), within, None),
            Resolution::Full("relay.pulls_max")
        );
        // A stream someone has is found whatever the caps.
        assert_eq!(
            d.find_or_pull(&StreamKey::new("live", "a"), ShardId(1), within, None),
            Resolution::Owner(ShardId(0))
        );
        let refused = Pulling::Refused("relay.pulls_per_connection_max");
        assert_eq!(
            d.find_or_pull(&StreamKey::new("live", "b"), ShardId(0), refused, None),
            Resolution::Owner(ShardId(1))
        );
        assert_eq!(
            d.find_or_pull(&third, ShardId(0), refused, None),
            Resolution::Full("relay.pulls_per_connection_max")
        );
        // Refusals leave nothing behind; a release makes room.
        assert_eq!(
            walked(&d),
            Counts {
                streams: 2,
                pulls: 2
            }
        );
        d.release(&StreamKey::new("live", "a"), ShardId(0));
        assert!(matches!(
            d.find_or_pull(&third, ShardId(0), within, None),
            Resolution::Pull { .. }
        ));
        let counts = d.lock().counts;
        assert_eq!(counts, walked(&d));
    }

    #[test]
    fn entries_go_away_when_nobody_owns_or_waits() {
        let d = Directory::default();
        let _ = d.find_or_pull(&key(), ShardId(1), Pulling::No, None);
        d.stop_waiting(&key(), ShardId(1));
        assert!(d.lock().entries.is_empty());
    }
}
