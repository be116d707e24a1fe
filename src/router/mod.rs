//! The stream router: one per shard, a state machine over plain values.
//! It decides who gets which frame, and nothing else: no sockets, no
//! tasks, no clock (time comes in with every event), no `Rc<Conn>`.
//!
//! Inputs are [`Event`]s: a publish or play the door let through, a
//! frame from a local publisher or a pull, a message from another shard, a
//! connection's end, a reload, a tick. Outputs are [`Action`]s the shard
//! carries out in order: queue these bytes to connection k, send this to
//! shard s, answer a session, close a publisher, start or stop a pull,
//! the pushes of a stream or the program its publish runs. The shard is a thin driver around it: it owns
//! sockets and tasks, turns what happens into events and does what the
//! actions say. Recording is decided here too: a source's stream is
//! recorded from its start to its end if its app records, or between the
//! admin API's start and stop.
//!
//! Its state: the streams this shard knows, with their
//! source, players, subscribed shards and frame numbers; what each
//! connection publishes or plays; the pulls each connection started; and
//! its deadlines (held frames, publishes waiting for a previous publisher
//! to go, idle pulls), served on [`Event::Tick`] and reported by
//! [`Router::next_deadline`]. Which shard owns a stream is the one thing
//! shared between routers: the [`Directory`].
//!
//! - `stream`: one stream on this shard and its fan-out;
//! - `lifecycle`: publish, play, takeover and their ends, a stream's
//!   frames from its publisher or pull, the deadlines served;
//! - `remote`: the cross-shard protocol (subscribe, snapshot, numbered
//!   frames and gaps);
//! - `deadlines`: what is due when;
//! - [`directory`]: the owner table, shared by every shard's router.

#[cfg(test)]
mod tests;

mod deadlines;
pub mod directory;
mod lifecycle;
mod remote;
mod stream;

use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;

use self::deadlines::Deadlines;
pub use self::directory::Directory;
use self::stream::Stream;
use crate::config::Config;
use crate::media::{Frame, FrameClass, StreamInfo, StreamKey};
use crate::protocol::{MessageStreamId, Timestamp};
use crate::session::{Media, Metadata};

/// A shard's index, 0-based.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardId(pub usize);

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A connection of this shard: its slab slot (reused once it is gone) and
/// its serial (never reused), so an action for a connection that went
/// meanwhile finds nobody rather than its successor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnRef {
    pub key: usize,
    pub serial: u64,
}

/// How a player takes a stream's frames. Each shard packages a frame once
/// per format (and RTMP chunk size) its players use, and shares those
/// bytes between them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// RTMP messages, in chunks of this size.
    Rtmp { chunk_size: u32 },
    /// HTTP-FLV: the FLV file header, then FLV tags.
    Flv,
    /// WebSocket-FLV: the same bytes in WebSocket binary frames, a tag
    /// per frame.
    WebSocketFlv,
}

/// What a connection's message stream is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    Publisher(StreamKey),
    Player(StreamKey),
}

/// What shards tell each other about streams.
#[derive(Debug)]
pub enum StreamMessage {
    /// A shard with players for `key` asks its owner for the stream.
    Subscribe { key: StreamKey, from: ShardId },
    /// That shard's last player left.
    Unsubscribe { key: StreamKey, from: ShardId },
    /// Owner to a new subscriber: headers and GOP, then `Frame`s from
    /// `next_seq` on.
    Snapshot {
        key: StreamKey,
        frames: Vec<Frame>,
        next_seq: u64,
    },
    /// Owner to subscribers: one frame of the stream, numbered so a gap
    /// (frames dropped for a lagging shard) is seen.
    Frame {
        key: StreamKey,
        seq: u64,
        frame: Frame,
    },
    /// Owner to subscribers: the publisher left or was replaced; find the
    /// new owner or wait for one.
    SourceGone { key: StreamKey },
    /// Owner to subscribers: its pull found no origin with the stream;
    /// players are told it is not found.
    NotFound { key: StreamKey },
    /// New owner to shards that were waiting: a publisher arrived.
    Published { key: StreamKey, owner: ShardId },
    /// New owner to the previous one: another publisher took over.
    Replaced { key: StreamKey },
    /// Owner to subscribers: the stream goes on from another origin
    /// connection; players restart video at the next keyframe.
    Discontinuity { key: StreamKey },
}

/// A message a publisher (or a pull) sent, to be packaged and fanned out.
#[derive(Debug)]
pub enum Published {
    Media(Media),
    Metadata {
        timestamp: Timestamp,
        metadata: Metadata,
    },
}

/// What happens that the router must know. `now_ms` comes with each (see
/// [`Router::handle`]).
#[derive(Debug)]
pub enum Event {
    /// The door let `conn` publish `key` on `stream_id`; `name` is the
    /// stream name as published (push targets get it). `waited_ms`: how
    /// long this publish has waited for the previous publisher to go.
    Publish {
        conn: ConnRef,
        stream_id: MessageStreamId,
        key: StreamKey,
        name: String,
        waited_ms: u64,
    },
    /// The door let `conn` play `key` (`name` as asked, query and all: a
    /// pull passes it on) on `stream_id`, whose frames it takes in
    /// `format`.
    Play {
        conn: ConnRef,
        stream_id: MessageStreamId,
        key: StreamKey,
        name: String,
        reset: bool,
        format: Format,
    },
    /// A message from a publishing stream of `conn`.
    Publisher {
        conn: ConnRef,
        stream_id: MessageStreamId,
        message: Published,
    },
    Pause {
        conn: ConnRef,
        stream_id: MessageStreamId,
        paused: bool,
    },
    ReceiveAudio {
        conn: ConnRef,
        stream_id: MessageStreamId,
        enabled: bool,
    },
    ReceiveVideo {
        conn: ConnRef,
        stream_id: MessageStreamId,
        enabled: bool,
    },
    /// `conn` closed or deleted one of its streams.
    StreamClosed {
        conn: ConnRef,
        stream_id: MessageStreamId,
    },
    /// `conn` is gone: what it published or played ends.
    Closed { conn: ConnRef },
    /// From another shard.
    Message(StreamMessage),
    /// A message this shard's pull of `key` received.
    Pulled { key: StreamKey, message: Published },
    /// The pull of `key` found no origin with the stream.
    PullUnavailable { key: StreamKey },
    /// The pull of `key` goes on from another origin connection.
    PullDiscontinuity { key: StreamKey },
    /// An HLS request of `conn` asked for `key`, which no shard packages;
    /// `name` as asked, query and all (a pull passes it on).
    HlsWanted {
        conn: ConnRef,
        key: StreamKey,
        name: String,
    },
    /// HLS players asked for `key` within `hls.idle_ms`: a pull of it
    /// stays as if watched for `for_ms` more.
    HlsWatched { key: StreamKey, for_ms: u64 },
    /// The admin API asks for `key` to be recorded from now until its
    /// source ends, whatever its app's setting.
    RecordStart { key: StreamKey },
    /// The admin API asks for the recording of `key` to end now.
    RecordStop { key: StreamKey },
    /// The recording of `key` ended without being asked to (its disk
    /// failed or fell behind).
    RecordEnded { key: StreamKey },
    /// New settings: they apply to what starts from now on.
    Reload(Rc<Config>),
    /// The time passed: deadlines up to now are served.
    Tick,
}

/// What the shard does for the router, in the order given.
#[derive(Debug)]
pub enum Action {
    /// Tell `conn`'s session.
    Answer { conn: ConnRef, answer: Answer },
    /// Offer a live frame's bytes to `conn`'s queue (the slow-player
    /// policy may drop them); `write`: wake its writer after.
    Deliver {
        conn: ConnRef,
        class: FrameClass,
        wire: Bytes,
        write: bool,
    },
    /// A player starts: queue these frames (headers and GOP) whatever the
    /// queue's policy, gate its video until a keyframe if `gate`, and
    /// wake its writer.
    Start {
        conn: ConnRef,
        wires: Vec<Bytes>,
        gate: bool,
    },
    /// `conn`'s video waits for the next keyframe.
    GateVideo { conn: ConnRef },
    /// `conn` writes what it holds (a pacing deadline came).
    Wake { conn: ConnRef },
    /// To another shard.
    Send { to: ShardId, message: StreamMessage },
    /// Start pulling `key` from its app's origins, asking for `play_name`.
    StartPull { key: StreamKey, play_name: String },
    /// A play that needed a new pull of `key` was refused at `cap`.
    PullRefused {
        conn: ConnRef,
        key: StreamKey,
        cap: &'static str,
    },
    /// Stop the pull of `key` (its stream may stay, waiting).
    StopPull { key: StreamKey },
    /// Start pushing `key`, published as `name`, to its app's targets.
    StartPushes { key: StreamKey, name: String },
    /// Stop the pushes of `key`.
    StopPushes { key: StreamKey },
    /// Start the program `key`'s app runs while it is published (its
    /// `exec_publish`), for a publisher here that published `name`.
    /// Publishes only: a pull starts none.
    StartExec { key: StreamKey, name: String },
    /// The publish of `key` ended (unpublished, closed, taken over): its
    /// program stops.
    StopExec { key: StreamKey },
    /// Start packaging `key` for HLS: this shard has its source now.
    StartHls { key: StreamKey },
    /// Its source ended: the open HLS part and segment close.
    StopHls { key: StreamKey },
    /// Start recording `key`, whose source is here, from `frames` (its
    /// headers and GOP so far) on.
    StartRecord { key: StreamKey, frames: Vec<Frame> },
    /// The recording of `key` ends: its file is completed.
    StopRecord { key: StreamKey },
    /// A frame of a stream whose source is here, for what this shard does
    /// with every frame besides its players: the pushes, the HLS packager
    /// and the recording of `key`, whichever were started.
    Tap { key: StreamKey, frame: Frame },
    /// `conn` stopped publishing or playing `key` (hooks are told).
    Ended { conn: ConnRef, role: Role },
    /// A new publisher took `key` over: close `conn`, its old publisher.
    Replaced { conn: ConnRef, key: StreamKey },
    /// The owner dropped `frames` frames of `key` for this shard; its
    /// players resume video at the next keyframe.
    Lost { key: StreamKey, frames: u64 },
    /// A message of `conn` publishing `key` could not be packaged.
    NotPackaged {
        conn: ConnRef,
        key: StreamKey,
        error: String,
    },
}

/// What a session is told.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    PublishAccepted {
        stream_id: MessageStreamId,
        key: StreamKey,
    },
    PublishRefused {
        stream_id: MessageStreamId,
        key: StreamKey,
        why: Refusal,
    },
    /// `Play.Start`; frames follow once the stream is live.
    PlayAccepted {
        stream_id: MessageStreamId,
        key: StreamKey,
        name: String,
        reset: bool,
    },
    /// A new pull would pass `cap`: `Play.StreamNotFound`.
    PlayRefused {
        stream_id: MessageStreamId,
        key: StreamKey,
        name: String,
        cap: &'static str,
    },
    /// A player's stream has a publisher now (`Publish.Notify`).
    Published {
        stream_id: MessageStreamId,
        name: String,
    },
    /// A player's publisher left (`UnpublishNotify`).
    Unpublished {
        stream_id: MessageStreamId,
        name: String,
    },
    /// The stream cannot be had: `Play.StreamNotFound`, and the play
    /// stops.
    NotFound {
        stream_id: MessageStreamId,
        name: String,
    },
}

/// Why a publish was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A new publisher or stream would pass this cap.
    Full(&'static str),
    /// Another publisher has the stream, on this shard (reject policy).
    Busy(ShardId),
}

/// Where a stream this shard knows comes from, for the admin API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceView {
    /// A publisher on this shard, since `since_ms`.
    Publisher { conn: ConnRef, since_ms: u64 },
    /// A pull from an origin, since `since_ms`.
    Pull { since_ms: u64 },
    /// Another shard's, or nobody's yet.
    Elsewhere,
}

/// One stream as the admin API sees it on this shard.
#[derive(Debug)]
pub struct StreamView<'a> {
    pub key: &'a StreamKey,
    pub players: usize,
    pub source: SourceView,
    pub info: &'a StreamInfo,
    /// Bytes per second received over the last rate interval (source only).
    pub rate_per_s: u64,
    pub gop_cache_bytes: usize,
    /// Recorded here (source only).
    pub recording: bool,
}

/// One shard's streams, as a state machine.
pub struct Router {
    shard: ShardId,
    directory: Arc<Directory>,
    config: Rc<Config>,
    streams: HashMap<StreamKey, Stream>,
    /// What each connection's message streams publish or play.
    roles: HashMap<ConnRef, Vec<(MessageStreamId, Role)>>,
    /// Pulls each connection started that are still alive (idle ones
    /// included): `relay.pulls_per_connection_max` caps them.
    pulls_started: HashMap<ConnRef, usize>,
    deadlines: Deadlines,
    now_ms: u64,
    actions: Vec<Action>,
}

impl Router {
    /// The router of shard `shard`, sharing `directory` with the others.
    pub fn new(shard: ShardId, directory: Arc<Directory>, config: Rc<Config>) -> Router {
        Router {
            shard,
            directory,
            config,
            streams: HashMap::new(),
            roles: HashMap::new(),
            pulls_started: HashMap::new(),
            deadlines: Deadlines::default(),
            now_ms: 0,
            actions: Vec::new(),
        }
    }

    /// Acts on one event at `now_ms` (the shard's clock, never going
    /// back); what to do is then in [`Router::take_actions`].
    pub fn handle(&mut self, event: Event, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
        match event {
            Event::Publish {
                conn,
                stream_id,
                key,
                name,
                waited_ms,
            } => self.publish(conn, stream_id, key, name, waited_ms),
            Event::Play {
                conn,
                stream_id,
                key,
                name,
                reset,
                format,
            } => self.play(conn, stream_id, key, name, reset, format),
            Event::Publisher {
                conn,
                stream_id,
                message,
            } => self.publisher_message(conn, stream_id, message),
            Event::Pause {
                conn,
                stream_id,
                paused,
            } => self.with_player(conn, stream_id, |player, actions| {
                player.paused = paused;
                if !paused {
                    // Back to live: start from the next keyframe.
                    actions.push(Action::GateVideo { conn });
                }
            }),
            Event::ReceiveAudio {
                conn,
                stream_id,
                enabled,
            } => self.with_player(conn, stream_id, |player, _| player.audio = enabled),
            Event::ReceiveVideo {
                conn,
                stream_id,
                enabled,
            } => self.with_player(conn, stream_id, |player, actions| {
                player.video = enabled;
                actions.push(Action::GateVideo { conn });
            }),
            Event::StreamClosed { conn, stream_id } => self.stream_closed(conn, stream_id),
            Event::Closed { conn } => self.closed(conn),
            Event::Message(message) => self.message(message),
            Event::Pulled { key, message } => self.pulled(&key, message),
            Event::PullUnavailable { key } => self.pull_unavailable(&key),
            Event::PullDiscontinuity { key } => self.pull_discontinuity(&key),
            Event::HlsWanted { conn, key, name } => self.hls_wanted(conn, key, &name),
            Event::HlsWatched { key, for_ms } => {
                self.hls_watched_until(&key, self.now_ms.saturating_add(for_ms));
            }
            Event::RecordStart { key } => self.start_record(&key),
            Event::RecordStop { key } => self.stop_record(&key),
            Event::RecordEnded { key } => {
                if let Some(stream) = self.streams.get_mut(&key) {
                    stream.recording = false;
                }
            }
            Event::Reload(config) => self.config = config,
            Event::Tick => self.tick(),
        }
    }

    /// Moves what the last events asked for into `into` (emptied first),
    /// in order; the router keeps `into`'s old buffer for the next ones.
    pub fn take_actions(&mut self, into: &mut Vec<Action>) {
        into.clear();
        std::mem::swap(&mut self.actions, into);
    }

    /// When [`Event::Tick`] is next due (shard clock, ms), if anything
    /// waits.
    pub fn next_deadline(&self) -> Option<u64> {
        self.deadlines.next()
    }

    /// What `conn`'s message streams do.
    pub fn roles(&self, conn: ConnRef) -> &[(MessageStreamId, Role)] {
        self.roles.get(&conn).map_or(&[], Vec::as_slice)
    }

    /// Whether `conn` publishes anything.
    pub fn publishes(&self, conn: ConnRef) -> bool {
        self.roles(conn)
            .iter()
            .any(|(_, role)| matches!(role, Role::Publisher(_)))
    }

    /// Pulls `conn` started that are still alive.
    fn pulls_started(&self, conn: ConnRef) -> usize {
        self.pulls_started.get(&conn).copied().unwrap_or(0)
    }

    /// Whether `key` has a publisher on any shard.
    pub fn is_published(&self, key: &StreamKey) -> bool {
        self.directory.owner(key).is_some()
    }

    /// The connection publishing `key` on this shard, if any.
    pub fn publisher(&self, key: &StreamKey) -> Option<ConnRef> {
        self.streams.get(key).and_then(Stream::publisher)
    }

    /// The streams this shard knows, for the admin API.
    pub fn streams(&self) -> impl Iterator<Item = StreamView<'_>> {
        self.streams.iter().map(|(key, stream)| stream.view(key))
    }

    /// Stream `key`, if this shard knows it, for the admin API.
    pub fn stream(&self, key: &StreamKey) -> Option<StreamView<'_>> {
        (self.streams.get_key_value(key)).map(|(key, stream)| stream.view(key))
    }

    /// Every rate interval: each stream this shard is the source of takes
    /// its bitrate from its byte count.
    pub fn sample_rates(&mut self, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
        for stream in self.streams.values_mut() {
            stream.sample_rate(self.now_ms);
        }
    }

    /// The settings in force.
    fn config(&self) -> Rc<Config> {
        self.config.clone()
    }

    fn send(&mut self, to: ShardId, message: StreamMessage) {
        self.actions.push(Action::Send { to, message });
    }

    fn set_role(&mut self, conn: ConnRef, stream_id: MessageStreamId, role: Role) {
        let roles = self.roles.entry(conn).or_default();
        roles.retain(|(id, _)| *id != stream_id);
        roles.push((stream_id, role));
    }

    fn take_role(&mut self, conn: ConnRef, stream_id: MessageStreamId) -> Option<Role> {
        let roles = self.roles.get_mut(&conn)?;
        let at = roles.iter().position(|(id, _)| *id == stream_id)?;
        let role = roles.swap_remove(at).1;
        if roles.is_empty() {
            self.roles.remove(&conn);
        }
        Some(role)
    }

    fn role(&self, conn: ConnRef, stream_id: MessageStreamId) -> Option<&Role> {
        self.roles(conn)
            .iter()
            .find(|(id, _)| *id == stream_id)
            .map(|(_, role)| role)
    }
}
