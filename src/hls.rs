//! HLS streams, shared by every shard: each stream's window (made by the
//! shard that has its source, served by any shard from memory), its
//! packager while no shard has a source (so a republish continues its
//! numbering), and when it was last asked for; and the HLS sessions, so
//! that the door admits a session once whichever shards its requests
//! reach.
//!
//! Like the [`crate::router::Directory`], the tables are consulted when a
//! shard first meets a stream or a session (it keeps the entry after),
//! never per frame or per request. Per request a shard reads the window
//! with one atomic load ([`ArcSwap`]) and extends the session with one
//! atomic store; per part the source shard stores one window.
//!
//! What it must not do: package (the source shard's `shard::hls` does),
//! or decide who may play (the door does).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use arc_swap::ArcSwap;
use ringcast_hls::{Packager, Settings, Window};

use crate::media::StreamKey;

/// Every HLS stream of the server.
#[derive(Debug)]
pub struct HlsStreams {
    streams: Mutex<HashMap<StreamKey, Arc<HlsStream>>>,
    /// The clock `last_request_ms` and `ended_ms` are read against.
    epoch: Instant,
    /// The number the next stream gets: entity tags differ between a
    /// stream and a later one of the same name.
    next_generation: AtomicU64,
    shards: usize,
    sessions: Mutex<HashMap<SessionKey, Arc<Session>>>,
}

/// What names an HLS session: the player's address and the stream.
pub type SessionKey = (IpAddr, StreamKey);

/// An HLS session the door admitted: it lasts while requests for it come
/// less than `hls.idle_ms` apart, on any shard.
#[derive(Debug)]
pub struct Session {
    /// The shard that admitted it: it counts the session and ends it.
    pub shard: usize,
    /// Until when it lasts ([`HlsStreams::now_ms`]).
    until_ms: AtomicU64,
}

impl Session {
    /// Whether it still lasts at `now_ms`.
    pub fn lasts(&self, now_ms: u64) -> bool {
        self.until_ms.load(Ordering::Relaxed) > now_ms
    }

    /// A request came: it lasts until `until_ms` at least.
    pub fn extend(&self, until_ms: u64) {
        self.until_ms.fetch_max(until_ms, Ordering::Relaxed);
    }
}

/// One stream's HLS state.
#[derive(Debug)]
pub struct HlsStream {
    pub key: StreamKey,
    /// Distinguishes this stream's objects from those of an earlier or
    /// later stream of the same key (entity tags).
    pub generation: u64,
    window: ArcSwap<Window>,
    /// The packager, while no shard has a source for the stream.
    parked: Mutex<Option<Packager>>,
    /// A shard has the stream's source and packages it.
    sourced: AtomicBool,
    /// When the last request for it came, or its source started or
    /// ended, whichever is latest ([`HlsStreams::now_ms`]).
    touched_ms: AtomicU64,
    /// When the last request for it came, or until when one waits (0:
    /// none yet).
    asked_ms: AtomicU64,
    /// Per shard: requests there wait for the next window.
    waiting: Box<[AtomicBool]>,
    /// Freed: shards drop what they kept of it.
    retired: AtomicBool,
}

impl HlsStreams {
    pub fn new(shards: usize) -> HlsStreams {
        HlsStreams {
            streams: Mutex::new(HashMap::new()),
            epoch: Instant::now(),
            next_generation: AtomicU64::new(1),
            shards,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// Milliseconds since the server started: the clock of every stream's
    /// `touched` time.
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The stream, if it has HLS state.
    pub fn get(&self, key: &StreamKey) -> Option<Arc<HlsStream>> {
        self.lock().get(key).cloned()
    }

    /// A source of `key` starts on a shard: its stream (made if new) and
    /// the packager to go on with (made if none is parked: a new stream,
    /// or one whose previous source has not parked it yet).
    pub fn start_source(&self, key: &StreamKey, settings: Settings) -> (Arc<HlsStream>, Packager) {
        let stream = (self.lock().entry(key.clone()))
            .or_insert_with(|| {
                let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
                Arc::new(HlsStream::new(key.clone(), generation, self.shards))
            })
            .clone();
        stream.sourced.store(true, Ordering::SeqCst);
        stream.touch(self.now_ms());
        let packager = stream.parked().take();
        let prefix = format!("{}/", key.name());
        (
            stream,
            packager.unwrap_or_else(|| Packager::new(settings, &prefix)),
        )
    }

    /// The source ended: its packager waits for the next one.
    pub fn end_source(&self, stream: &HlsStream, packager: Packager) {
        *stream.parked() = Some(packager);
        stream.sourced.store(false, Ordering::SeqCst);
        stream.touch(self.now_ms());
    }

    /// Frees streams without a source that nobody asked for within
    /// `idle_ms`; returns how many went.
    pub fn retire_idle(&self, idle_ms: u64) -> usize {
        let now = self.now_ms();
        let mut streams = self.lock();
        let before = streams.len();
        streams.retain(|_, stream| {
            let idle = !stream.sourced.load(Ordering::SeqCst)
                && now.saturating_sub(stream.touched_ms.load(Ordering::Relaxed)) >= idle_ms;
            if idle {
                stream.retired.store(true, Ordering::SeqCst);
            }
            !idle
        });
        before - streams.len()
    }

    /// Streams with HLS state, and the bytes their windows hold.
    pub fn usage(&self) -> (usize, usize) {
        let streams = self.lock();
        let bytes = streams.values().map(|s| s.window().bytes()).sum();
        (streams.len(), bytes)
    }

    /// The session `key`, if one lasts at `now_ms`.
    pub fn session(&self, key: &SessionKey, now_ms: u64) -> Option<Arc<Session>> {
        let sessions = lock(&self.sessions);
        sessions.get(key).filter(|s| s.lasts(now_ms)).cloned()
    }

    /// Shard `shard` admitted session `key` until `until_ms`: the session,
    /// and whether it is new (else another shard admitted it meanwhile,
    /// and it is extended).
    pub fn open_session(
        &self,
        key: SessionKey,
        shard: usize,
        until_ms: u64,
    ) -> (Arc<Session>, bool) {
        let mut sessions = lock(&self.sessions);
        let now_ms = self.now_ms();
        if let Some(session) = sessions.get(&key).filter(|s| s.lasts(now_ms)) {
            session.extend(until_ms);
            return (session.clone(), false);
        }
        let session = Arc::new(Session {
            shard,
            until_ms: AtomicU64::new(until_ms),
        });
        sessions.insert(key, session.clone());
        (session, true)
    }

    /// Ends the sessions shard `shard` admitted that lapsed by `now_ms`;
    /// returns how many.
    pub fn end_sessions(&self, shard: usize, now_ms: u64) -> usize {
        let mut sessions = lock(&self.sessions);
        let before = sessions.len();
        sessions.retain(|_, s| s.shard != shard || s.lasts(now_ms));
        before - sessions.len()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<StreamKey, Arc<HlsStream>>> {
        lock(&self.streams)
    }
}

impl HlsStream {
    fn new(key: StreamKey, generation: u64, shards: usize) -> HlsStream {
        HlsStream {
            key,
            generation,
            window: ArcSwap::from_pointee(Window::default()),
            parked: Mutex::new(None),
            sourced: AtomicBool::new(false),
            touched_ms: AtomicU64::new(0),
            asked_ms: AtomicU64::new(0),
            waiting: (0..shards).map(|_| AtomicBool::new(false)).collect(),
            retired: AtomicBool::new(false),
        }
    }

    /// What players are served now.
    pub fn window(&self) -> Arc<Window> {
        self.window.load_full()
    }

    /// A new window; returns the shards whose requests wait for it (each
    /// is told once, and waits again if it still has to).
    pub fn publish(&self, window: Arc<Window>) -> impl Iterator<Item = usize> + '_ {
        self.window.store(window);
        (self.waiting.iter().enumerate())
            .filter(|(_, waiting)| waiting.swap(false, Ordering::SeqCst))
            .map(|(shard, _)| shard)
    }

    /// Shard `shard` has requests waiting for the next window. Call before
    /// looking at the window, so a window stored meanwhile is not missed.
    pub fn wait_on(&self, shard: usize) {
        if let Some(waiting) = self.waiting.get(shard) {
            waiting.store(true, Ordering::SeqCst);
        }
    }

    /// A request came, or waits until `at_ms`: the stream stays.
    pub fn ask(&self, at_ms: u64) {
        self.asked_ms.fetch_max(at_ms, Ordering::Relaxed);
        self.touch(at_ms);
    }

    /// Whether a request came (or waits) within `ms` of `now_ms`.
    pub fn asked_within(&self, now_ms: u64, ms: u64) -> bool {
        let asked_ms = self.asked_ms.load(Ordering::Relaxed);
        asked_ms != 0 && now_ms.saturating_sub(asked_ms) < ms
    }

    fn touch(&self, now_ms: u64) {
        self.touched_ms.fetch_max(now_ms, Ordering::Relaxed);
    }

    /// A shard has the source: the window moves on.
    pub fn is_sourced(&self) -> bool {
        self.sourced.load(Ordering::SeqCst)
    }

    pub fn is_retired(&self) -> bool {
        self.retired.load(Ordering::SeqCst)
    }

    fn parked(&self) -> MutexGuard<'_, Option<Packager>> {
        lock(&self.parked)
    }
}

/// A shard that panicked while holding one of these left it consistent:
/// every change is one insert, take or retain.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
