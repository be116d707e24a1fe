//! Live streams on one shard: publish, play, fan-out, and the cross-shard
//! protocol that lets players on any shard watch a publisher on another.
//!
//! Every shard with players or a publisher for a stream holds a
//! [`LocalStream`]. Its source is a publisher on this shard, the owner
//! shard (which sends a snapshot, then every frame once), or nothing yet
//! (the shard waits in the [`Directory`](super::directory::Directory) for a
//! publisher), or an origin this shard pulls from (`relays`).
//! Fan-out is the same whatever the source: each local player gets a
//! refcounted clone of the frame's wire bytes, each push target's feed a
//! frame handle.

use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use tokio::task::JoinHandle;
use tracing::warn;

use super::connection::{CloseReason, Conn};
use super::directory::{Caps, Claim, Pulling, Resolution};
use super::logs::peer_line;
use super::messages::{Role, ShardMessage};
use super::relays::PullSlot;
use super::stats::RateMeter;
use super::{Shard, ShardId};
use crate::access::{Action, Verdict};
use crate::config::Takeover;
use crate::limits;
use crate::media::{
    CANONICAL_STREAM_ID, Due, Frame, FrameClass, LiveStream, Offer, Pace, Pacing, StreamKey,
};
use crate::protocol::MessageStreamId;
use crate::protocol::Timestamp;
use crate::protocol::command::Status;
use crate::protocol::url::AppName;
use crate::relay;
use crate::session::Quoted;
use crate::session::{Media, MediaKind, Metadata, ServerEvent, status};

/// How often a publish waiting for the stream's previous publisher to go
/// asks again.
const PUBLISH_RETRY_STEP: Duration = Duration::from_millis(50);

/// A stream as this shard sees it.
pub struct LocalStream {
    pub(super) live: LiveStream,
    pub(super) source: Source,
    pub(super) players: Vec<Player>,
    /// Targets a local publisher's stream is pushed to.
    pub(super) pushes: Vec<Push>,
    /// Owner only: shards that get every frame, and the next frame's number.
    pub(super) subscribers: Vec<ShardId>,
    next_seq: u64,
    /// Subscriber only: the number of the next frame from the owner.
    expected_seq: u64,
    /// Source only: bytes received per second, sampled once a second.
    pub(super) rate: RateMeter,
    /// When this shard's players write what is queued for them.
    pub(super) pacing: Pacing,
}

pub(super) enum Source {
    /// No publisher anywhere; this shard waits in the directory.
    Waiting,
    /// The publisher is on this shard, since `since_ms` (shard clock).
    Local {
        conn: Rc<Conn>,
        stream_id: MessageStreamId,
        since_ms: u64,
    },
    /// The publisher is on `owner`; `synced` once its snapshot arrived.
    Remote { owner: ShardId, synced: bool },
    /// This shard pulls the stream from an origin, since `since_ms`;
    /// `idle` counts down to stopping it once nobody watches.
    Pull {
        task: JoinHandle<()>,
        status: Rc<relay::Status>,
        idle: Option<JoinHandle<()>>,
        since_ms: u64,
        /// Charged to the connection that started it until it stops.
        _slot: PullSlot,
    },
}

/// A push of a local publisher's stream to one target.
pub(super) struct Push {
    pub feed: Rc<relay::push::Feed>,
    pub status: Rc<relay::Status>,
}

pub(super) struct Player {
    conn: Rc<Conn>,
    stream_id: MessageStreamId,
    name: String,
    /// Has the current source's headers (a start, or a snapshot).
    started: bool,
    paused: bool,
    audio: bool,
    video: bool,
}

impl Shard {
    /// Acts on one session event of `conn`.
    pub fn on_event(&self, conn: &Rc<Conn>, event: ServerEvent) {
        match event {
            ServerEvent::Connect { app, connect } => self.connect(conn, &app, connect.tc_url),
            ServerEvent::Publish {
                stream_id,
                stream_name,
                ..
            } => self.publish(conn, stream_id, &stream_name),
            ServerEvent::Play {
                stream_id,
                stream_name,
                reset,
                ..
            } => self.play(conn, stream_id, &stream_name, reset),
            ServerEvent::Media { stream_id, media } => self.publisher_media(conn, stream_id, media),
            ServerEvent::Metadata {
                stream_id,
                timestamp,
                metadata,
            } => self.publisher_metadata(conn, stream_id, timestamp, metadata),
            ServerEvent::StreamClosed { stream_id } => self.stream_closed(conn, stream_id),
            ServerEvent::Pause { stream_id, paused } => {
                self.with_player(conn, stream_id, |p| {
                    p.paused = paused;
                    if !paused {
                        // Back to live: start from the next keyframe.
                        p.conn.out.borrow_mut().gate_video();
                    }
                });
            }
            ServerEvent::ReceiveAudio { stream_id, enabled } => {
                self.with_player(conn, stream_id, |p| p.audio = enabled);
            }
            ServerEvent::ReceiveVideo { stream_id, enabled } => {
                self.with_player(conn, stream_id, |p| {
                    p.video = enabled;
                    p.conn.out.borrow_mut().gate_video();
                });
            }
            ServerEvent::CommandRefused { description, .. } => {
                self.command_refused(conn, &description);
            }
        }
    }

    /// Counts a refused command; logs only the connection's first, so a
    /// peer repeating a bad call makes one line (its close line has the
    /// total), not one per call; too many in a row close the connection.
    fn command_refused(&self, conn: &Conn, description: &str) {
        self.stats.command_errors.add(1);
        let refused = conn.commands_refused.get() + 1;
        conn.commands_refused.set(refused);
        if refused == 1 {
            let description = Quoted(description);
            peer_line!(INFO, self, conn, shard = %self.id, peer = %conn.peer, %description, "command refused");
        }
        conn.refused();
    }

    fn connect(&self, conn: &Rc<Conn>, app: &AppName, tc_url: Option<String>) {
        *conn.app.borrow_mut() = Some(app.name.clone());
        let tc_query = tc_url.as_deref().and_then(|url| url.split_once('?'));
        let args: Vec<&str> = [app.query.as_deref(), tc_query.map(|(_, q)| q)]
            .into_iter()
            .flatten()
            .filter(|q| !q.is_empty())
            .collect();
        let _ = conn.connect_args.set(args.join("&"));
        if let Some(tc_url) = tc_url {
            let _ = conn.tc_url.set(tc_url);
        }
        self.admit(conn, Action::Connect, "", |shard, conn, verdict| {
            let app = conn.app.borrow().clone().unwrap_or_default();
            match verdict {
                Verdict::Allow { .. } => {
                    conn.session.borrow_mut().accept_connect();
                    let app = Quoted(&app);
                    peer_line!(INFO, shard, conn, shard = %shard.id, peer = %conn.peer, %app, "connect");
                }
                Verdict::Deny(_) => {
                    conn
                        .session
                        .borrow_mut()
                        .reject_connect("Connection rejected.");
                    // The refusal goes out before the close.
                    conn.flush_session();
                    conn.close_after_flush(CloseReason::Rejected);
                }
            }
        });
    }

    fn stream_key(conn: &Conn, stream_name: &str) -> StreamKey {
        StreamKey::new(
            conn.app.borrow().as_deref().unwrap_or_default(),
            stream_name,
        )
    }

    fn publish(&self, conn: &Rc<Conn>, stream_id: MessageStreamId, stream_name: &str) {
        let asked = stream_name.to_owned();
        self.admit(
            conn,
            Action::Publish,
            stream_name,
            move |shard, conn, verdict| match verdict {
                Verdict::Allow { rename } => {
                    let name = rename.as_deref().unwrap_or(&asked);
                    shard.start_publish(conn, stream_id, name, Duration::ZERO);
                }
                Verdict::Deny(_) => {
                    conn.session.borrow_mut().reject_publish(
                        stream_id,
                        status::PUBLISH_BAD_NAME,
                        "Publish denied.",
                    );
                    conn.refused();
                }
            },
        );
    }

    /// Claims the stream and starts the publish, or refuses it; `waited`:
    /// how long this publish has waited for a previous publisher to go.
    fn start_publish(
        &self,
        conn: &Rc<Conn>,
        stream_id: MessageStreamId,
        stream_name: &str,
        waited: Duration,
    ) {
        let key = Self::stream_key(conn, stream_name);
        let config = self.config();
        let replace = config.stream_for(key.app()).takeover == Takeover::Replace;
        let caps = Caps {
            publishers: config.max_publishers,
            streams: config.max_streams,
            pulls: config.relay.pulls_max,
        };
        let (waiting, resume_at) = match self.directory.claim(&key, self.id, replace, caps) {
            Claim::Full(cap) => {
                self.stats.limit_refusals.add(1);
                let description = format!("The server is at its {cap} limit.");
                conn.session.borrow_mut().reject_publish(
                    stream_id,
                    status::PUBLISH_BAD_NAME,
                    &description,
                );
                let stream = Quoted(key.as_str());
                peer_line!(INFO, self, conn, shard = %self.id, peer = %conn.peer, %stream, cap, "publish refused: server at its limit");
                conn.refused();
                return;
            }
            Claim::Busy(owner) => {
                if self.retry_publish_later(conn, stream_id, stream_name, waited) {
                    return;
                }
                let description = format!("{key} is already being published");
                conn.session.borrow_mut().reject_publish(
                    stream_id,
                    status::PUBLISH_BAD_NAME,
                    &description,
                );
                let stream = Quoted(key.as_str());
                peer_line!(INFO, self, conn, shard = %self.id, peer = %conn.peer, %stream, owner = %owner, "publish rejected: already published");
                conn.refused();
                return;
            }
            Claim::Granted {
                replaced,
                waiting,
                resume_at,
            } => {
                match replaced {
                    Some(previous) if previous == self.id => self.kick_publisher(&key, false),
                    Some(previous) => self
                        .mesh
                        .send(previous, ShardMessage::Replaced { key: key.clone() }),
                    None => {}
                }
                (waiting, resume_at)
            }
        };
        conn.session.borrow_mut().accept_publish(stream_id);
        conn.set_role(stream_id, Role::Publisher(key.clone()));
        self.stats.publishers.add(1);
        conn.granted();
        let stream = Quoted(key.as_str());
        peer_line!(INFO, self, conn, shard = %self.id, peer = %conn.peer, %stream, "publish");
        let mut streams = self.streams.borrow_mut();
        let stream = streams
            .entry(key.clone())
            .or_insert_with(|| LocalStream::new(self, &key));
        if let Source::Remote { owner, .. } = stream.source {
            self.mesh.send(
                owner,
                ShardMessage::Unsubscribe {
                    key: key.clone(),
                    from: self.id,
                },
            );
        }
        stream.source = Source::Local {
            conn: conn.clone(),
            stream_id,
            since_ms: self.now_ms(),
        };
        stream.subscribers.clear();
        if let Some(at) = resume_at {
            stream.live.continue_from(at);
        }
        stream.live.restart();
        let started = stream.restart_players();
        self.stats.frames_out.add(started);
        stream.pushes = self.start_pushes(&key, stream_name);
        drop(streams);
        for shard in waiting.into_iter().filter(|s| *s != self.id) {
            self.mesh.send(
                shard,
                ShardMessage::Published {
                    key: key.clone(),
                    owner: self.id,
                },
            );
        }
    }

    /// Tries a publish refused as a duplicate again shortly, unless it has
    /// waited [`limits::PUBLISH_BUSY_WAIT_MS`] already; true if it will.
    /// Why: an encoder that reconnects closes its old connection and
    /// publishes on a new one, which may be handled (on any shard) before
    /// the old one's close is; it should get its stream once the close
    /// lands, not `BadName`. A real second publisher is still refused.
    fn retry_publish_later(
        &self,
        conn: &Rc<Conn>,
        stream_id: MessageStreamId,
        stream_name: &str,
        waited: Duration,
    ) -> bool {
        let patience = Duration::from_millis(limits::PUBLISH_BUSY_WAIT_MS);
        let Some(shard) = self.handle().filter(|_| waited < patience) else {
            return false;
        };
        let (conn, name) = (conn.clone(), stream_name.to_owned());
        tokio_uring::spawn(async move {
            tokio::time::sleep(PUBLISH_RETRY_STEP).await;
            if !conn.is_open() {
                return;
            }
            shard.start_publish(&conn, stream_id, &name, waited + PUBLISH_RETRY_STEP);
            conn.flush_session();
            conn.resume_reading();
        });
        true
    }

    /// Takeover: the stream's current publisher on this shard goes, its
    /// players stay. `resolve`: look for the new owner (it is on another
    /// shard); a same-shard takeover sets the new source itself.
    fn kick_publisher(&self, key: &StreamKey, resolve: bool) {
        if self.stop_pull(key) {
            self.source_gone(key, resolve);
            return;
        }
        let old = match self.streams.borrow().get(key).map(|s| &s.source) {
            Some(Source::Local {
                conn, stream_id, ..
            }) => Some((conn.clone(), *stream_id)),
            _ => None,
        };
        if let Some((conn, stream_id)) = old {
            let stream = Quoted(key.as_str());
            peer_line!(INFO, self, conn, shard = %self.id, peer = %conn.peer, %stream, "publisher replaced");
            conn.take_role(stream_id);
            self.stats.publishers.sub(1);
            self.tell_done(&conn, Action::Publish, key);
            self.source_gone(key, resolve);
            conn.abort(CloseReason::Replaced);
        }
    }

    fn play(&self, conn: &Rc<Conn>, stream_id: MessageStreamId, stream_name: &str, reset: bool) {
        let asked = stream_name.to_owned();
        self.admit(
            conn,
            Action::Play,
            stream_name,
            move |shard, conn, verdict| match verdict {
                Verdict::Allow { rename } => {
                    let name = rename.as_deref().unwrap_or(&asked);
                    shard.start_play(conn, stream_id, name, reset);
                }
                Verdict::Deny(_) => {
                    conn.session.borrow_mut().reject_play(
                        stream_id,
                        status::PLAY_FAILED,
                        "Play denied.",
                    );
                    conn.refused();
                }
            },
        );
    }

    fn start_play(
        &self,
        conn: &Rc<Conn>,
        stream_id: MessageStreamId,
        stream_name: &str,
        reset: bool,
    ) {
        let key = Self::stream_key(conn, stream_name);
        let mut streams = self.streams.borrow_mut();
        let stream = streams
            .entry(key.clone())
            .or_insert_with(|| LocalStream::new(self, &key));
        if stream.players.is_empty() && matches!(stream.source, Source::Waiting) {
            let seen = stream.live.latest_timestamp();
            match self.resolve_source(&key, stream_name, seen, conn) {
                Ok(source) => stream.source = source,
                Err(cap) => {
                    streams.remove(&key);
                    drop(streams);
                    self.pull_refused(conn, &key, cap);
                    let description = format!(
                        "{stream_name} is not available: the server is at its {cap} limit."
                    );
                    conn.session.borrow_mut().reject_play(
                        stream_id,
                        status::PLAY_STREAM_NOT_FOUND,
                        &description,
                    );
                    conn.refused();
                    return;
                }
            }
        }
        conn.session
            .borrow_mut()
            .accept_play(stream_id, stream_name, reset);
        // StreamBegin and Play.Start go before any frame the start queues.
        conn.flush_session();
        conn.set_role(stream_id, Role::Player(key.clone()));
        self.stats.players.add(1);
        conn.granted();
        let quoted = Quoted(key.as_str());
        peer_line!(INFO, self, conn, shard = %self.id, peer = %conn.peer, stream = %quoted, "play");
        if let Source::Pull { idle, .. } = &mut stream.source {
            if let Some(timer) = idle.take() {
                timer.abort();
            }
        }
        let mut player = Player {
            conn: conn.clone(),
            stream_id,
            name: stream_name.to_owned(),
            started: false,
            paused: false,
            audio: true,
            video: true,
        };
        if stream.is_live() {
            let started = stream.start_player(&mut player);
            self.stats.frames_out.add(started);
        }
        stream.players.push(player);
    }

    /// Finds the stream's owner and subscribes, pulls it from an origin,
    /// or waits for a publisher; `Err(cap)` if a pull would pass `cap`.
    /// `play_name` is what a player asked for, query and all: a pull passes
    /// it on to the origin, charged to `starter`. `seen`: the latest
    /// timestamp this shard's players got, for the next publisher to
    /// continue from.
    pub(super) fn resolve_source(
        &self,
        key: &StreamKey,
        play_name: &str,
        seen: Option<Timestamp>,
        starter: &Conn,
    ) -> Result<Source, &'static str> {
        let config = self.config();
        let relay = &config.relay;
        let pulling = if relay.origins_for(key.app()).is_empty() {
            Pulling::No
        } else if starter.pulls.alive() >= relay.pulls_per_connection_max {
            Pulling::Refused("relay.max_pulls_per_connection")
        } else {
            Pulling::Within(Caps {
                publishers: 0,
                streams: config.max_streams,
                pulls: relay.pulls_max,
            })
        };
        let source = match self.directory.find_or_pull(key, self.id, pulling, seen) {
            Resolution::Pull { waiting } => self.start_pull(key, play_name, waiting, starter),
            Resolution::Full(cap) => return Err(cap),
            Resolution::Owner(owner) if owner != self.id => {
                self.mesh.send(
                    owner,
                    ShardMessage::Subscribe {
                        key: key.clone(),
                        from: self.id,
                    },
                );
                Source::Remote {
                    owner,
                    synced: false,
                }
            }
            Resolution::Owner(_) | Resolution::Wait => Source::Waiting,
        };
        Ok(source)
    }

    /// The stream cannot be had here (its pull found no origin with it, or
    /// a new pull would pass a cap): players are told
    /// `NetStream.Play.StreamNotFound` and let go, subscribed shards are
    /// told the same, and the stream is dropped.
    pub(super) fn stream_not_found(&self, key: &StreamKey) {
        let Some(mut stream) = self.streams.borrow_mut().remove(key) else {
            return;
        };
        for shard in stream.subscribers.drain(..) {
            self.mesh
                .send(shard, ShardMessage::NotFound { key: key.clone() });
        }
        for player in stream.players.drain(..) {
            let description = format!("{} is not found.", player.name);
            let mut session = player.conn.session.borrow_mut();
            let not_found = Status::new("error", status::PLAY_STREAM_NOT_FOUND, description);
            session.send_status(player.stream_id, not_found);
            // Frees the stream id for another play.
            session.stop_play(player.stream_id, "Stream not found.");
            drop(session);
            player.conn.flush_session();
            if player.conn.take_role(player.stream_id).is_some() {
                self.stats.players.sub(1);
                self.tell_done(&player.conn, Action::Play, key);
            }
        }
    }

    fn publisher_media(&self, conn: &Rc<Conn>, stream_id: MessageStreamId, media: Media) {
        self.stats.frames_in.add(1);
        let Some(Role::Publisher(key)) = conn.role(stream_id) else {
            return;
        };
        let mut streams = self.streams.borrow_mut();
        let Some(stream) = streams.get_mut(&key) else {
            return;
        };
        match stream.live.publish(media) {
            Ok(frame) => self.fan_out(&key, stream, &frame),
            Err(error) => {
                let stream = Quoted(key.as_str());
                peer_line!(WARN, self, conn, shard = %self.id, peer = %conn.peer, %stream, %error, "frame not packaged");
            }
        }
    }

    fn publisher_metadata(
        &self,
        conn: &Rc<Conn>,
        stream_id: MessageStreamId,
        timestamp: Timestamp,
        metadata: Metadata,
    ) {
        self.stats.frames_in.add(1);
        let Some(Role::Publisher(key)) = conn.role(stream_id) else {
            return;
        };
        let mut streams = self.streams.borrow_mut();
        let Some(stream) = streams.get_mut(&key) else {
            return;
        };
        match stream.live.publish_metadata(timestamp, metadata) {
            Ok(frame) => self.fan_out(&key, stream, &frame),
            Err(error) => {
                let stream = Quoted(key.as_str());
                peer_line!(WARN, self, conn, shard = %self.id, peer = %conn.peer, %stream, %error, "metadata not packaged");
            }
        }
    }

    /// Sends `frame` to every local player and every subscribed shard.
    pub(super) fn fan_out(&self, key: &StreamKey, stream: &mut LocalStream, frame: &Frame) {
        let now = self.now_ms();
        // Written at once, or held for a later write that carries more
        // (`media::Pacing`): the per-write kernel cost dominates at live
        // rates.
        let pace = stream.pacing.on_frame(frame.kind, now);
        if let Pace::Hold {
            deadline_ms: Some(deadline_ms),
        } = pace
        {
            self.hold_until(deadline_ms, key);
        }
        // Variants for players on another stream id or chunk size, built
        // once per frame for all of them.
        let mut variants: Vec<((MessageStreamId, u32), Bytes)> = Vec::new();
        // Counted once per frame, not per player: the counter's cache line
        // is read by the control thread.
        let mut queued = 0;
        for player in &stream.players {
            // A player given up on stays listed until its reader task
            // cleans up; more frames in this turn must not count (or log)
            // it again.
            if !player.conn.is_open() || !player.wants(frame) {
                continue;
            }
            let shape = (player.stream_id, player.conn.chunk_size);
            let wire = if shape == (CANONICAL_STREAM_ID, frame.chunk_size) {
                frame.wire.clone()
            } else if let Some((_, wire)) = variants.iter().find(|(s, _)| *s == shape) {
                wire.clone()
            } else {
                let Ok(wire) = frame.wire_for(shape.0, shape.1) else {
                    continue;
                };
                variants.push((shape, wire.clone()));
                wire
            };
            let mut out = player.conn.out.borrow_mut();
            let offer = out.offer(frame.class, wire, now);
            // What was held for this player goes too, whatever became of
            // this frame.
            let write = pace == Pace::Now && !out.is_empty();
            drop(out);
            if write {
                player.conn.wake_writer();
            }
            match offer {
                Offer::Queued => queued += 1,
                Offer::Dropped => self.stats.frames_dropped.add(1),
                Offer::Hopeless => {
                    self.stats.slow_disconnects.add(1);
                    let stream = Quoted(key.as_str());
                    peer_line!(INFO, self, player.conn, shard = %self.id, peer = %player.conn.peer, %stream, "slow player disconnected");
                    player.conn.abort(CloseReason::SlowConsumer);
                }
            }
        }
        self.stats.frames_out.add(queued);
        for push in &stream.pushes {
            push.feed.offer(frame);
        }
        let seq = stream.next_seq;
        stream.next_seq += 1;
        for shard in &stream.subscribers {
            if self
                .mesh
                .send_frame(*shard, key.clone(), seq, frame.clone())
                .is_err()
            {
                self.stats.mesh_frames_dropped.add(1);
            }
        }
    }

    fn stream_closed(&self, conn: &Rc<Conn>, stream_id: MessageStreamId) {
        match conn.take_role(stream_id) {
            Some(Role::Publisher(key)) => self.unpublish(conn, stream_id, &key),
            Some(Role::Player(key)) => self.stop_player(conn, stream_id, &key),
            None => {}
        }
    }

    /// A connection ended: everything it published or played ends too.
    pub fn connection_closed(&self, conn: &Rc<Conn>) {
        for (stream_id, role) in conn.take_roles() {
            match role {
                Role::Publisher(key) => self.unpublish(conn, stream_id, &key),
                Role::Player(key) => self.stop_player(conn, stream_id, &key),
            }
        }
    }

    fn unpublish(&self, conn: &Rc<Conn>, stream_id: MessageStreamId, key: &StreamKey) {
        self.stats.publishers.sub(1);
        self.tell_done(conn, Action::Publish, key);
        let is_source = matches!(
            self.streams.borrow().get(key).map(|s| &s.source),
            Some(Source::Local { conn: c, stream_id: id, .. }) if Rc::ptr_eq(c, conn) && *id == stream_id
        );
        if is_source {
            let stream = Quoted(key.as_str());
            peer_line!(INFO, self, conn, shard = %self.id, peer = %conn.peer, %stream, "unpublish");
            self.directory.release(key, self.id);
            self.source_gone(key, true);
        }
    }

    /// The stream's source went away: tell players and subscribed shards,
    /// then find a new source for the players (or drop the stream).
    pub(super) fn source_gone(&self, key: &StreamKey, resolve: bool) {
        let mut streams = self.streams.borrow_mut();
        let Some(stream) = streams.get_mut(key) else {
            return;
        };
        for push in stream.pushes.drain(..) {
            push.feed.close();
        }
        for shard in stream.subscribers.drain(..) {
            self.mesh
                .send(shard, ShardMessage::SourceGone { key: key.clone() });
        }
        stream.live.restart();
        stream.source = Source::Waiting;
        stream.unpublished_to_players();
        if stream.players.is_empty() {
            streams.remove(key);
        } else if resolve {
            let Some((name, starter)) = stream
                .players
                .first()
                .map(|p| (p.name.clone(), p.conn.clone()))
            else {
                return;
            };
            let seen = stream.live.latest_timestamp();
            match self.resolve_source(key, &name, seen, &starter) {
                Ok(source) => stream.source = source,
                Err(cap) => {
                    drop(streams);
                    self.pull_refused(&starter, key, cap);
                    self.stream_not_found(key);
                }
            }
        }
    }

    fn stop_player(&self, conn: &Rc<Conn>, stream_id: MessageStreamId, key: &StreamKey) {
        self.stats.players.sub(1);
        self.tell_done(conn, Action::Play, key);
        let mut streams = self.streams.borrow_mut();
        let Some(stream) = streams.get_mut(key) else {
            return;
        };
        stream
            .players
            .retain(|p| !(Rc::ptr_eq(&p.conn, conn) && p.stream_id == stream_id));
        if !stream.players.is_empty() {
            return;
        }
        match stream.source {
            Source::Local { .. } => return,
            Source::Pull { .. } => {
                if stream.subscribers.is_empty() {
                    self.schedule_idle_stop(key, stream);
                }
                return;
            }
            Source::Remote { owner, .. } => {
                self.mesh.send(
                    owner,
                    ShardMessage::Unsubscribe {
                        key: key.clone(),
                        from: self.id,
                    },
                );
            }
            Source::Waiting => self.directory.stop_waiting(key, self.id),
        }
        streams.remove(key);
    }

    fn with_player(
        &self,
        conn: &Rc<Conn>,
        stream_id: MessageStreamId,
        f: impl FnOnce(&mut Player),
    ) {
        let Some(Role::Player(key)) = conn.role(stream_id) else {
            return;
        };
        let mut streams = self.streams.borrow_mut();
        if let Some(player) = streams.get_mut(&key).and_then(|s| {
            s.players
                .iter_mut()
                .find(|p| Rc::ptr_eq(&p.conn, conn) && p.stream_id == stream_id)
        }) {
            f(player);
        }
    }

    /// Acts on a message from another shard.
    pub fn handle_message(&self, message: ShardMessage) {
        match message {
            ShardMessage::Subscribe { key, from } => self.subscribe(key, from),
            ShardMessage::Unsubscribe { key, from } => {
                if let Some(stream) = self.streams.borrow_mut().get_mut(&key) {
                    stream.subscribers.retain(|s| *s != from);
                    if matches!(stream.source, Source::Pull { .. })
                        && stream.subscribers.is_empty()
                        && stream.players.is_empty()
                    {
                        self.schedule_idle_stop(&key, stream);
                    }
                }
            }
            ShardMessage::Discontinuity { key } => {
                if let Some(stream) = self.streams.borrow_mut().get_mut(&key) {
                    stream.live.restart();
                    stream.gate_players();
                }
            }
            ShardMessage::Snapshot {
                key,
                frames,
                next_seq,
            } => self.snapshot(&key, frames, next_seq),
            ShardMessage::Frame { key, seq, frame } => self.relayed_frame(&key, seq, &frame),
            ShardMessage::NotFound { key } => {
                if matches!(
                    self.streams.borrow().get(&key).map(|s| &s.source),
                    Some(Source::Remote { .. })
                ) {
                    self.stream_not_found(&key);
                }
            }
            ShardMessage::SourceGone { key } => {
                if matches!(
                    self.streams.borrow().get(&key).map(|s| &s.source),
                    Some(Source::Remote { .. })
                ) {
                    self.source_gone(&key, true);
                }
            }
            ShardMessage::Published { key, owner } => {
                let mut streams = self.streams.borrow_mut();
                if let Some(stream) = streams.get_mut(&key) {
                    if matches!(stream.source, Source::Waiting) && !stream.players.is_empty() {
                        self.mesh.send(
                            owner,
                            ShardMessage::Subscribe {
                                key: key.clone(),
                                from: self.id,
                            },
                        );
                        stream.source = Source::Remote {
                            owner,
                            synced: false,
                        };
                    }
                }
            }
            ShardMessage::Replaced { key } => self.kick_publisher(&key, true),
            ShardMessage::Query { query, permit } => {
                self.answer(query);
                drop(permit);
            }
            ShardMessage::Reload(config) => self.reload(&config),
            ShardMessage::Shutdown => {}
        }
    }

    /// Owner side: a shard with players wants the stream.
    fn subscribe(&self, key: StreamKey, from: ShardId) {
        let mut streams = self.streams.borrow_mut();
        let stream = streams
            .get_mut(&key)
            .filter(|s| matches!(s.source, Source::Local { .. } | Source::Pull { .. }));
        let Some(stream) = stream else {
            // The publisher left meanwhile: let it look again.
            self.mesh.send(from, ShardMessage::SourceGone { key });
            return;
        };
        if let Source::Pull { idle, .. } = &mut stream.source {
            if let Some(timer) = idle.take() {
                timer.abort();
            }
        }
        if !stream.subscribers.contains(&from) {
            stream.subscribers.push(from);
        }
        let frames = stream.live.gop().snapshot().cloned().collect();
        let next_seq = stream.next_seq;
        self.mesh.send(
            from,
            ShardMessage::Snapshot {
                key,
                frames,
                next_seq,
            },
        );
    }

    /// Subscriber side: the owner's snapshot; players start from it.
    fn snapshot(&self, key: &StreamKey, frames: Vec<Frame>, next_seq: u64) {
        let mut streams = self.streams.borrow_mut();
        let Some(stream) = streams.get_mut(key) else {
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
        for frame in &frames {
            stream.live.relay(frame);
        }
        let started = stream.restart_players();
        self.stats.frames_out.add(started);
    }

    /// Subscriber side: one frame from the owner.
    fn relayed_frame(&self, key: &StreamKey, seq: u64, frame: &Frame) {
        let mut streams = self.streams.borrow_mut();
        let Some(stream) = streams.get_mut(key) else {
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
            warn!(shard = %self.id, stream = %key, lost = seq - stream.expected_seq, "frames lost between shards");
            for player in &stream.players {
                player.conn.out.borrow_mut().gate_video();
            }
        }
        stream.expected_seq = seq + 1;
        stream.live.relay(frame);
        self.fan_out(key, stream, frame);
    }
}

impl LocalStream {
    fn new(shard: &Shard, key: &StreamKey) -> LocalStream {
        let config = shard.config();
        LocalStream {
            live: LiveStream::new(config.stream_for(key.app()), config.chunk_size),
            source: Source::Waiting,
            players: Vec::new(),
            pushes: Vec::new(),
            subscribers: Vec::new(),
            next_seq: 0,
            expected_seq: 0,
            rate: RateMeter::default(),
            pacing: Pacing::new(config.player.write_window.as_millis() as u64),
        }
    }

    /// Frames can flow to a player joining now.
    fn is_live(&self) -> bool {
        matches!(
            self.source,
            Source::Local { .. } | Source::Pull { .. } | Source::Remote { synced: true, .. }
        )
    }

    /// The relays of this stream: its pull or its pushes.
    pub(super) fn relay_statuses(&self) -> Vec<Rc<relay::Status>> {
        let pull = match &self.source {
            Source::Pull { status, .. } => Some(status.clone()),
            _ => None,
        };
        pull.into_iter()
            .chain(self.pushes.iter().map(|p| p.status.clone()))
            .collect()
    }

    /// A deadline of the pacing came: the players it names that have
    /// anything queued write it. Returns the pacing's next deadline.
    pub(super) fn write_held(&mut self, deadline_ms: u64) -> Option<u64> {
        let (slot, next) = match self.pacing.due(deadline_ms) {
            Due::Nobody => return None,
            Due::All => (None, None),
            Due::Slot {
                slot,
                next_deadline_ms,
            } => (Some(slot), next_deadline_ms),
        };
        for player in &self.players {
            let named = slot.is_none_or(|s| Pacing::slot(player.conn.serial) == s);
            if named && !player.conn.out.borrow().is_empty() {
                player.conn.wake_writer();
            }
        }
        next
    }

    /// Video of every player waits for the next keyframe: what comes next
    /// does not continue what they have.
    pub(super) fn gate_players(&self) {
        for player in &self.players {
            player.conn.out.borrow_mut().gate_video();
        }
    }

    /// Queues what a player needs before live frames: headers and GOP.
    /// Returns the number of messages queued.
    fn start_player(&self, player: &mut Player) -> u64 {
        let gop = self.live.gop();
        let mut out = player.conn.out.borrow_mut();
        let mut queued = 0;
        for frame in gop.snapshot() {
            if let Ok(wire) = frame.wire_for(player.stream_id, player.conn.chunk_size) {
                let _ = out.push(wire);
                queued += 1;
            }
        }
        if gop.frames().is_empty() {
            // Nothing to start on yet: video waits for a keyframe.
            out.gate_video();
        }
        drop(out);
        player.started = true;
        player.conn.wake_writer();
        queued
    }

    /// A new source: players that had none are told and started. Returns
    /// the number of messages queued to them.
    fn restart_players(&mut self) -> u64 {
        let players = std::mem::take(&mut self.players);
        let mut players = players;
        let mut queued = 0;
        for player in players.iter_mut().filter(|p| !p.started) {
            player
                .conn
                .session
                .borrow_mut()
                .notify_published(player.stream_id, &player.name);
            player.conn.flush_session();
            queued += self.start_player(player);
        }
        self.players = players;
        queued
    }

    fn unpublished_to_players(&mut self) {
        for player in self.players.iter_mut().filter(|p| p.started) {
            player
                .conn
                .session
                .borrow_mut()
                .notify_unpublished(player.stream_id, &player.name);
            player.conn.flush_session();
            player.started = false;
        }
    }
}

impl Player {
    fn wants(&self, frame: &Frame) -> bool {
        if !self.started || self.paused {
            return false;
        }
        match frame.kind {
            MediaKind::Audio => self.audio,
            MediaKind::Video => self.video || frame.class == FrameClass::SequenceHeader,
            MediaKind::Data => true,
        }
    }
}
