//! One stream as one shard's router sees it: its source, its players, the
//! shards subscribed to it, and its fan-out.
//!
//! Fan-out is the same whatever the source: each local player is offered
//! a refcounted clone of the frame's wire bytes (a variant built once per
//! frame for players on another stream id or chunk size), the pushes, the
//! HLS packager and the recording get the frame, and each subscribed shard
//! gets it once, numbered.

use bytes::{Bytes, BytesMut};
use ringcast_web::{flv, websocket};

use super::{Action, Answer, ConnRef, Format, ShardId, SourceView, StreamMessage, StreamView};
use crate::media::{
    CANONICAL_STREAM_ID, Due, Frame, FrameClass, LiveStream, Pace, Pacing, RateMeter, StreamKey,
};
use crate::protocol::MessageStreamId;
use crate::protocol::chunk::EncodeError;
use crate::session::MediaKind;

/// A stream this shard has players or a source for.
#[derive(Debug)]
pub(super) struct Stream {
    pub(super) live: LiveStream,
    pub(super) source: Source,
    pub(super) players: Vec<Player>,
    /// A local publisher's stream is pushed to its app's targets.
    pub(super) pushing: bool,
    /// A local publisher's stream runs its app's `exec_publish`.
    pub(super) exec: bool,
    /// Source only: the stream is packaged for HLS here.
    pub(super) hls: bool,
    /// Source only: the stream is recorded here.
    pub(super) recording: bool,
    /// Owner only: shards that get every frame.
    pub(super) subscribers: Vec<ShardId>,
    /// Owner only: the number of the next frame sent to subscribers.
    next_seq: u64,
    /// Subscriber only: the number of the next frame from the owner.
    pub(super) expected_seq: u64,
    /// Source only: bytes received per second, sampled once a second.
    rate: RateMeter,
    /// When this shard's players write what is queued for them.
    pub(super) pacing: Pacing,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Source {
    /// No publisher anywhere; this shard waits in the directory.
    Waiting,
    /// The publisher is on this shard, since `since_ms`.
    Local {
        conn: ConnRef,
        stream_id: MessageStreamId,
        since_ms: u64,
    },
    /// The publisher is on `owner`; `synced` once its snapshot arrived.
    Remote { owner: ShardId, synced: bool },
    /// This shard pulls the stream from an origin, since `since_ms`,
    /// charged to `starter`; `idle_since_ms`: nobody has watched it since
    /// (ahead of now while HLS requests hold it); `idle_timer`: a deadline to look again is set (one at most, however
    /// often players come and go).
    Pull {
        since_ms: u64,
        starter: ConnRef,
        idle_since_ms: Option<u64>,
        idle_timer: bool,
    },
}

#[derive(Debug)]
pub(super) struct Player {
    pub(super) conn: ConnRef,
    pub(super) stream_id: MessageStreamId,
    /// The stream name it asked for, as it asked.
    pub(super) name: String,
    format: Format,
    /// Has the current source's headers (a start, or a snapshot).
    pub(super) started: bool,
    /// An FLV player that has not had the FLV file header yet.
    flv_header_due: bool,
    pub(super) paused: bool,
    pub(super) audio: bool,
    pub(super) video: bool,
}

impl Player {
    pub(super) fn new(
        conn: ConnRef,
        stream_id: MessageStreamId,
        name: String,
        format: Format,
    ) -> Player {
        Player {
            conn,
            stream_id,
            name,
            format,
            started: false,
            flv_header_due: !matches!(format, Format::Rtmp { .. }),
            paused: false,
            audio: true,
            video: true,
        }
    }

    fn wants(&self, frame: &Frame) -> bool {
        if !self.started || self.paused || self.flv_header_due {
            return false;
        }
        match frame.kind {
            MediaKind::Audio => self.audio,
            MediaKind::Video => self.video || frame.class == FrameClass::SequenceHeader,
            MediaKind::Data => true,
        }
    }

    fn is(&self, conn: ConnRef, stream_id: MessageStreamId) -> bool {
        self.conn == conn && self.stream_id == stream_id
    }

    fn shape(&self) -> Shape {
        match self.format {
            Format::Rtmp { chunk_size } => Shape::Rtmp(self.stream_id, chunk_size),
            Format::Flv => Shape::Flv,
            Format::WebSocketFlv => Shape::WebSocketFlv,
        }
    }
}

/// An audio or video frame: the stream's sequence headers came before it,
/// so what it has says which tracks the stream carries.
fn tells_tracks(frame: &Frame) -> bool {
    frame.kind != MediaKind::Data && frame.class != FrameClass::SequenceHeader
}

/// What a frame's bytes must look like for a player: one packaging per
/// shape and frame, shared by every player of that shape on the shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// RTMP chunks on this message stream, at this chunk size.
    Rtmp(MessageStreamId, u32),
    /// An FLV tag and its previous-tag-size.
    Flv,
    /// That tag in a WebSocket binary frame.
    WebSocketFlv,
}

impl Shape {
    /// The frame's canonical wire bytes serve this shape as they are.
    fn is_canonical(self, frame: &Frame) -> bool {
        self == Shape::Rtmp(CANONICAL_STREAM_ID, frame.chunk_size)
    }

    /// `frame`, packaged for this shape.
    fn package(self, frame: &Frame) -> Result<Bytes, EncodeError> {
        match self {
            Shape::Rtmp(stream_id, chunk_size) => frame.wire_for(stream_id, chunk_size),
            Shape::Flv => {
                let mut out = BytesMut::with_capacity(frame.flv_tag_len());
                frame.put_flv_tag(&mut out);
                Ok(out.freeze())
            }
            Shape::WebSocketFlv => {
                let len = frame.flv_tag_len();
                let mut out = BytesMut::with_capacity(websocket::header_len(len) + len);
                websocket::put_header(websocket::Opcode::Binary, len, &mut out);
                frame.put_flv_tag(&mut out);
                Ok(out.freeze())
            }
        }
    }

    /// The FLV file header for this shape, announcing the tracks of
    /// `frames` (what a player starts with).
    fn flv_header(self, frames: &[&Frame]) -> Bytes {
        let has = |kind| frames.iter().any(|frame| frame.kind == kind);
        let header = flv::header(has(MediaKind::Audio), has(MediaKind::Video));
        match self {
            Shape::WebSocketFlv => websocket::server_frame(websocket::Opcode::Binary, &header),
            Shape::Rtmp(..) | Shape::Flv => Bytes::copy_from_slice(&header),
        }
    }
}

impl Stream {
    pub(super) fn new(live: LiveStream, write_window_ms: u64) -> Stream {
        Stream {
            live,
            source: Source::Waiting,
            players: Vec::new(),
            pushing: false,
            exec: false,
            hls: false,
            recording: false,
            subscribers: Vec::new(),
            next_seq: 0,
            expected_seq: 0,
            rate: RateMeter::default(),
            pacing: Pacing::new(write_window_ms),
        }
    }

    /// Frames can flow to a player joining now.
    pub(super) fn is_live(&self) -> bool {
        matches!(
            self.source,
            Source::Local { .. } | Source::Pull { .. } | Source::Remote { synced: true, .. }
        )
    }

    /// This shard is the stream's source: a publisher or a pull.
    pub(super) fn is_source(&self) -> bool {
        matches!(self.source, Source::Local { .. } | Source::Pull { .. })
    }

    pub(super) fn publisher(&self) -> Option<ConnRef> {
        match self.source {
            Source::Local { conn, .. } => Some(conn),
            _ => None,
        }
    }

    /// A pulled stream nobody here or on other shards watches.
    pub(super) fn is_unwatched_pull(&self) -> bool {
        matches!(self.source, Source::Pull { .. })
            && self.players.is_empty()
            && self.subscribers.is_empty()
    }

    pub(super) fn player_mut(
        &mut self,
        conn: ConnRef,
        stream_id: MessageStreamId,
    ) -> Option<&mut Player> {
        self.players.iter_mut().find(|p| p.is(conn, stream_id))
    }

    /// Removes a player; true if it was there.
    pub(super) fn remove_player(&mut self, conn: ConnRef, stream_id: MessageStreamId) -> bool {
        let before = self.players.len();
        self.players.retain(|p| !p.is(conn, stream_id));
        self.players.len() != before
    }

    /// Offers `frame` to every local player, the pushes and every
    /// subscribed shard. Returns a deadline the pacing set for what the
    /// players now hold, if any.
    pub(super) fn fan_out(
        &mut self,
        key: &StreamKey,
        frame: &Frame,
        now_ms: u64,
        actions: &mut Vec<Action>,
    ) -> Option<u64> {
        // Written at once, or held for a later write that carries more:
        // the per-write kernel cost dominates at live rates.
        let pace = self.pacing.on_frame(frame.kind, now_ms);
        let mut variants: Vec<(Shape, Bytes)> = Vec::new();
        // FLV players waiting to learn the stream's tracks, found in the
        // same pass (rarely any: no allocation then).
        let mut waiting: Vec<usize> = Vec::new();
        let tells = tells_tracks(frame);
        for (index, player) in self.players.iter().enumerate() {
            if player.flv_header_due && player.started && tells {
                waiting.push(index);
            }
            if !player.wants(frame) {
                continue;
            }
            let shape = player.shape();
            let wire = if shape.is_canonical(frame) {
                frame.wire.clone()
            } else if let Some((_, wire)) = variants.iter().find(|(s, _)| *s == shape) {
                wire.clone()
            } else {
                let Ok(wire) = shape.package(frame) else {
                    continue;
                };
                variants.push((shape, wire.clone()));
                wire
            };
            actions.push(Action::Deliver {
                conn: player.conn,
                class: frame.class,
                wire,
                write: pace == Pace::Now,
            });
        }
        if !waiting.is_empty() {
            self.start_waiting_flv_players(&waiting, frame, actions);
        }
        if self.pushing || self.hls || self.recording {
            actions.push(Action::Tap {
                key: key.clone(),
                frame: frame.clone(),
            });
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        for shard in &self.subscribers {
            actions.push(Action::Send {
                to: *shard,
                message: StreamMessage::Frame {
                    key: key.clone(),
                    seq,
                    frame: frame.clone(),
                },
            });
        }
        match pace {
            Pace::Hold { deadline_ms } => deadline_ms,
            Pace::Now => None,
        }
    }

    /// The FLV players at `waiting`, which waited to learn the stream's
    /// tracks, start at `frame`, the first that tells: from the GOP, and
    /// with `frame` itself when the GOP does not hold it (a cache turned
    /// off, or full).
    fn start_waiting_flv_players(
        &mut self,
        waiting: &[usize],
        frame: &Frame,
        actions: &mut Vec<Action>,
    ) {
        let in_gop = (self.live.gop().frames().last())
            .is_some_and(|last| last.wire.as_ptr() == frame.wire.as_ptr());
        for &index in waiting {
            self.start_player(index, actions);
            let Some(player) = self.players.get(index) else {
                continue;
            };
            if !in_gop && player.wants(frame) {
                if let Ok(wire) = player.shape().package(frame) {
                    actions.push(Action::Deliver {
                        conn: player.conn,
                        class: frame.class,
                        wire,
                        write: true,
                    });
                }
            }
        }
    }

    /// A deadline of the pacing came: the players it names write what they
    /// hold. Returns the pacing's next deadline.
    pub(super) fn write_held(
        &mut self,
        deadline_ms: u64,
        actions: &mut Vec<Action>,
    ) -> Option<u64> {
        let (slot, next) = match self.pacing.due(deadline_ms) {
            Due::Nobody => return None,
            Due::All => (None, None),
            Due::Slot {
                slot,
                next_deadline_ms,
            } => (Some(slot), next_deadline_ms),
        };
        for player in &self.players {
            if slot.is_none_or(|s| Pacing::slot(player.conn.serial) == s) {
                actions.push(Action::Wake { conn: player.conn });
            }
        }
        next
    }

    /// Video of every player waits for the next keyframe: what comes next
    /// does not continue what they have.
    pub(super) fn gate_players(&self, actions: &mut Vec<Action>) {
        for player in &self.players {
            actions.push(Action::GateVideo { conn: player.conn });
        }
    }

    /// Queues what the player at `index` needs before live frames: headers
    /// and GOP. An FLV player's file header says which tracks follow, and
    /// players believe it (mpegts.js waits for ever for a track announced
    /// but absent): until the stream has had an audio or video frame (by
    /// then every sequence header came), its start waits for the first.
    pub(super) fn start_player(&mut self, index: usize, actions: &mut Vec<Action>) {
        let Some(player) = self.players.get_mut(index) else {
            return;
        };
        let gop = self.live.gop();
        let shape = player.shape();
        let frames: Vec<&Frame> = gop.snapshot().collect();
        let mut wires = Vec::with_capacity(frames.len() + 1);
        if player.flv_header_due {
            if !player.started && !frames.iter().any(|frame| tells_tracks(frame)) {
                player.started = true;
                // Answered (an HTTP player's response head), nothing more:
                // it gets no frame until its real start.
                actions.push(Action::Start {
                    conn: player.conn,
                    wires,
                    gate: false,
                });
                return;
            }
            player.flv_header_due = false;
            wires.push(shape.flv_header(&frames));
        }
        wires.extend(frames.iter().filter_map(|frame| shape.package(frame).ok()));
        // Nothing to start on yet: video waits for a keyframe.
        let gate = gop.frames().is_empty();
        player.started = true;
        actions.push(Action::Start {
            conn: player.conn,
            wires,
            gate,
        });
    }

    /// A new source: players that had none are told and started.
    pub(super) fn restart_players(&mut self, actions: &mut Vec<Action>) {
        for index in 0..self.players.len() {
            let Some(player) = self.players.get(index).filter(|p| !p.started) else {
                continue;
            };
            actions.push(Action::Answer {
                conn: player.conn,
                answer: Answer::Published {
                    stream_id: player.stream_id,
                    name: player.name.clone(),
                },
            });
            self.start_player(index, actions);
        }
    }

    /// The source went: started players are told.
    pub(super) fn unpublished_to_players(&mut self, actions: &mut Vec<Action>) {
        for player in self.players.iter_mut().filter(|p| p.started) {
            actions.push(Action::Answer {
                conn: player.conn,
                answer: Answer::Unpublished {
                    stream_id: player.stream_id,
                    name: player.name.clone(),
                },
            });
            player.started = false;
        }
    }

    /// Numbers the frames to subscribers from `next_seq`.
    pub(super) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    pub(super) fn sample_rate(&mut self, now_ms: u64) {
        if self.is_source() {
            self.rate.sample(self.live.info().bytes_in, now_ms);
        } else {
            self.rate = RateMeter::default();
        }
    }

    pub(super) fn view<'a>(&'a self, key: &'a StreamKey) -> StreamView<'a> {
        let source = match self.source {
            Source::Local { conn, since_ms, .. } => SourceView::Publisher { conn, since_ms },
            Source::Pull { since_ms, .. } => SourceView::Pull { since_ms },
            Source::Waiting | Source::Remote { .. } => SourceView::Elsewhere,
        };
        StreamView {
            key,
            players: self.players.len(),
            source,
            info: self.live.info(),
            rate_per_s: self.rate.per_s(),
            gop_cache_bytes: self.live.gop().bytes(),
            recording: self.recording,
        }
    }
}
