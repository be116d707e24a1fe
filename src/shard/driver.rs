//! The shard as its router's driver: session events and inbox messages
//! become [`Event`]s (through the door, for publish and play), and the
//! router's [`Action`]s are carried out on connections, the mesh, relays,
//! hooks and the exec supervisor. Decisions about streams are the router's
//! ([`crate::router`]); what is here is I/O, counting and logging.

use std::cell::RefMut;
use std::rc::Rc;

use tracing::warn;

use super::Shard;
use super::connection::{CloseReason, Conn};
use super::logs::peer_line;
use super::messages::ShardMessage;
use crate::access::{Action as Door, Verdict};
use crate::media::{Offer, StreamKey};
use crate::protocol::MessageStreamId;
use crate::protocol::command::Status;
use crate::protocol::url::AppName;
use crate::router::{
    Action, Answer, ConnRef, Event, Format, Published, Refusal, Role, StreamMessage,
};
use crate::session::Quoted;
use crate::session::{ServerEvent, ServerSession, status};

impl Shard {
    /// Acts on one session event of `conn`.
    pub fn on_event(&self, conn: &Rc<Conn>, event: ServerEvent) {
        let id = conn.id();
        match event {
            ServerEvent::Connect { app, connect } => self.connect(conn, &app, connect.tc_url),
            ServerEvent::Publish {
                stream_id,
                stream_name,
                ..
            } => self.publish(conn, stream_id, stream_name),
            ServerEvent::Play {
                stream_id,
                stream_name,
                reset,
                ..
            } => self.play(conn, stream_id, stream_name, reset),
            ServerEvent::Media { stream_id, media } => {
                self.stats.frames_in.add(1);
                let message = Published::Media(media);
                self.route(Event::Publisher {
                    conn: id,
                    stream_id,
                    message,
                });
            }
            ServerEvent::Metadata {
                stream_id,
                timestamp,
                metadata,
            } => {
                self.stats.frames_in.add(1);
                let message = Published::Metadata {
                    timestamp,
                    metadata,
                };
                self.route(Event::Publisher {
                    conn: id,
                    stream_id,
                    message,
                });
            }
            ServerEvent::StreamClosed { stream_id } => self.route(Event::StreamClosed {
                conn: id,
                stream_id,
            }),
            ServerEvent::Pause { stream_id, paused } => self.route(Event::Pause {
                conn: id,
                stream_id,
                paused,
            }),
            ServerEvent::ReceiveAudio { stream_id, enabled } => self.route(Event::ReceiveAudio {
                conn: id,
                stream_id,
                enabled,
            }),
            ServerEvent::ReceiveVideo { stream_id, enabled } => self.route(Event::ReceiveVideo {
                conn: id,
                stream_id,
                enabled,
            }),
            ServerEvent::CommandRefused { description, .. } => {
                self.command_refused(conn, &description);
            }
        }
    }

    /// Acts on a message from another shard or the control thread.
    pub fn handle_message(&self, message: ShardMessage) {
        match message {
            ShardMessage::Stream(message) => self.route(Event::Message(message)),
            ShardMessage::Query { query, permit } => {
                self.answer(query);
                drop(permit);
            }
            ShardMessage::Reload(config) => self.reload(&config),
            ShardMessage::Drain { redirect, reply } => {
                // The drain goes on whether or not anyone still listens.
                let _ = reply.send(self.drain(redirect.as_ref()));
            }
            ShardMessage::HlsUpdated(key) => self.hls_updated(&key),
            ShardMessage::Recorded(note) => self.recorded(note),
            ShardMessage::Shutdown => {}
        }
    }

    /// A connection ended: everything it published or played ends too.
    pub fn connection_closed(&self, conn: &Conn) {
        self.route(Event::Closed { conn: conn.id() });
    }

    /// Hands `event` to the router and carries out what it asks, in order.
    pub(super) fn route(&self, event: Event) {
        let mut actions = self.spare_actions.take();
        let now = self.now_ms();
        {
            let mut router = self.router.borrow_mut();
            router.handle(event, now);
            router.take_actions(&mut actions);
        }
        self.carry_out(&mut actions, now);
        self.deadline_may_have_moved();
        // Its allocation serves the next event.
        *self.spare_actions.borrow_mut() = actions;
    }

    /// Carries out `actions` at `now` (shard clock, ms).
    fn carry_out(&self, actions: &mut Vec<Action>, now: u64) {
        // Counted once per event, not per player: the counter's cache
        // line is read by the control thread.
        let mut queued = 0;
        // Actions start tasks but never run them, so nothing adds or
        // removes a connection meanwhile.
        let connections = self.connections.borrow();
        let find = |id: ConnRef| connections.get(id.key).filter(|c| c.serial == id.serial);
        for action in actions.drain(..) {
            match action {
                Action::Deliver {
                    conn,
                    class,
                    wire,
                    write,
                } => {
                    // A player given up on stays listed until its reader
                    // cleans up: more frames must not count (or log) it.
                    let Some(conn) = find(conn).filter(|c| c.is_open()) else {
                        continue;
                    };
                    let mut out = conn.out.borrow_mut();
                    let offer = out.offer(class, wire, now);
                    // What was held for this player goes too, whatever
                    // became of this frame.
                    let write = write && !out.is_empty();
                    drop(out);
                    if write {
                        conn.wake_writer();
                    }
                    match offer {
                        Offer::Queued => queued += 1,
                        Offer::Dropped => self.stats.frames_dropped.add(1),
                        Offer::Hopeless => self.slow_player(conn),
                    }
                }
                Action::Start { conn, wires, gate } => {
                    let Some(conn) = find(conn) else { continue };
                    conn.start_web_response(self.config().http.cors());
                    let mut out = conn.out.borrow_mut();
                    queued += wires.len() as u64;
                    for wire in wires {
                        let _ = out.push(wire);
                    }
                    if gate {
                        out.gate_video();
                    }
                    drop(out);
                    conn.wake_writer();
                }
                Action::GateVideo { conn } => {
                    if let Some(conn) = find(conn) {
                        conn.out.borrow_mut().gate_video();
                    }
                }
                Action::Wake { conn } => {
                    if let Some(conn) = find(conn).filter(|c| !c.out.borrow().is_empty()) {
                        conn.wake_writer();
                    }
                }
                Action::Send { to, message } => self.send(to, message),
                Action::Answer { conn, answer } => {
                    if let Some(conn) = find(conn) {
                        self.answer_session(conn, answer);
                    }
                }
                Action::StartPull { key, play_name } => self.start_pull(key, play_name),
                Action::StopPull { key } => self.stop_pull(&key),
                Action::PullRefused { conn, key, cap } => {
                    if let Some(conn) = find(conn) {
                        self.pull_refused(conn, &key, cap);
                    }
                }
                Action::StartPushes { key, name } => self.start_pushes(key, &name),
                Action::StopPushes { key } => self.stop_pushes(&key),
                Action::StartExec { key, name } => self.start_exec(key, &name),
                Action::StopExec { key } => self.stop_exec(&key),
                Action::StartHls { key } => self.start_hls(key),
                Action::StopHls { key } => self.stop_hls(&key),
                Action::StartRecord { key, frames } => self.start_record(key, frames),
                Action::StopRecord { key } => self.stop_record(&key),
                Action::Tap { key, frame } => {
                    for feed in self.pushes.borrow().get(&key).into_iter().flatten() {
                        feed.offer(&frame);
                    }
                    self.tap_hls(&key, &frame);
                    self.tap_record(&key, &frame);
                }
                Action::Ended { conn, role } => {
                    if let Some(conn) = find(conn) {
                        self.ended(conn, &role);
                    }
                }
                Action::Replaced { conn, key } => {
                    if let Some(conn) = find(conn) {
                        let stream = Quoted(key.as_str());
                        peer_line!(INFO, self, conn, shard = %self.id, peer = %conn.peer, %stream, "publisher replaced");
                        self.stats.publishers.sub(1);
                        self.tell_done(conn, Door::Publish, &key);
                        conn.abort(CloseReason::Replaced);
                    }
                }
                Action::Lost { key, frames } => {
                    warn!(shard = %self.id, stream = %key, lost = frames, "frames lost between shards");
                }
                Action::NotPackaged { conn, key, error } => {
                    if let Some(conn) = find(conn) {
                        let stream = Quoted(key.as_str());
                        peer_line!(WARN, self, conn, shard = %self.id, peer = %conn.peer, %stream, %error, "frame not packaged");
                    }
                }
            }
        }
        self.stats.frames_out.add(queued);
    }

    fn send(&self, to: super::ShardId, message: StreamMessage) {
        match message {
            StreamMessage::Frame { key, seq, frame } => {
                if self.mesh.send_frame(to, key, seq, frame).is_err() {
                    self.stats.mesh_frames_dropped.add(1);
                }
            }
            message => self.mesh.send(to, ShardMessage::Stream(message)),
        }
    }

    /// A player's queue passed its bound for too long: it goes.
    fn slow_player(&self, conn: &Conn) {
        self.stats.slow_disconnects.add(1);
        let router = self.router.borrow();
        let key = router
            .roles(conn.id())
            .iter()
            .find_map(|(_, role)| match role {
                Role::Player(key) => Some(key.as_str()),
                Role::Publisher(_) => None,
            });
        let stream = Quoted(key.unwrap_or_default());
        peer_line!(INFO, self, conn, shard = %self.id, peer = %conn.peer, %stream, "slow player disconnected");
        drop(router);
        conn.abort(CloseReason::SlowConsumer);
    }

    /// Tells a session what the router decided for it.
    fn answer_session(&self, conn: &Conn, answer: Answer) {
        let stream_ended = matches!(answer, Answer::Unpublished { .. });
        match conn.session() {
            Some(session) => self.answer_rtmp(conn, session, answer),
            None => self.answer_web(conn, answer),
        }
        // What it says goes before any frame queued after it; a reader
        // waiting for the answer goes on.
        conn.flush_session();
        if stream_ended {
            self.stream_ended_while_draining(conn);
        }
        conn.resume_reading();
    }

    /// Tells an RTMP session what the router decided for it.
    fn answer_rtmp(&self, conn: &Conn, mut session: RefMut<'_, ServerSession>, answer: Answer) {
        match answer {
            Answer::PublishAccepted { stream_id, key } => {
                session.accept_publish(stream_id);
                self.stats.publishers.add(1);
                conn.granted();
                self.began(conn, &key, true);
                let stream = Quoted(key.as_str());
                peer_line!(INFO, self, conn, shard = %self.id, peer = %conn.peer, %stream, "publish");
            }
            Answer::PublishRefused {
                stream_id,
                key,
                why,
            } => {
                let description = match why {
                    Refusal::Full(cap) => format!("The server is at its {cap} limit."),
                    Refusal::Busy(_) => format!("{key} is already being published"),
                };
                session.reject_publish(stream_id, status::PUBLISH_BAD_NAME, &description);
                drop(session);
                let stream = Quoted(key.as_str());
                match why {
                    Refusal::Full(cap) => {
                        self.stats.limit_refusals.add(1);
                        peer_line!(INFO, self, conn, shard = %self.id, peer = %conn.peer, %stream, cap, "publish refused: server at its limit");
                    }
                    Refusal::Busy(owner) => {
                        peer_line!(INFO, self, conn, shard = %self.id, peer = %conn.peer, %stream, owner = %owner, "publish rejected: already published");
                    }
                }
                conn.refused();
            }
            Answer::PlayAccepted {
                stream_id,
                key,
                name,
                reset,
            } => {
                session.accept_play(stream_id, &name, reset);
                drop(session);
                self.play_accepted(conn, &key);
            }
            Answer::PlayRefused {
                stream_id,
                name,
                cap,
                ..
            } => {
                let description =
                    format!("{name} is not available: the server is at its {cap} limit.");
                session.reject_play(stream_id, status::PLAY_STREAM_NOT_FOUND, &description);
                drop(session);
                conn.refused();
            }
            Answer::Published { stream_id, name } => {
                session.notify_published(stream_id, &name);
            }
            Answer::Unpublished { stream_id, name } => {
                session.notify_unpublished(stream_id, &name);
            }
            Answer::NotFound { stream_id, name } => {
                let description = format!("{name} is not found.");
                let not_found = Status::new("error", status::PLAY_STREAM_NOT_FOUND, description);
                session.send_status(stream_id, not_found);
                // Frees the stream id for another play.
                session.stop_play(stream_id, "Stream not found.");
            }
        }
    }

    /// Tells an HTTP player what the router decided for it: its response
    /// head goes with its first frames ([`Action::Start`]); a stream that
    /// cannot be had is a `404` (`503` at a cap), or the end of the body
    /// once it flows. A publisher coming and going changes nothing: the
    /// body goes on when the stream does.
    fn answer_web(&self, conn: &Conn, answer: Answer) {
        let config = self.config();
        let cors = config.http.cors();
        match answer {
            Answer::PlayAccepted { key, .. } => self.play_accepted(conn, &key),
            Answer::PlayRefused { cap, .. } => {
                self.stats.limit_refusals.add(1);
                conn.refuse_web(503, &format!("the server is at its {cap} limit"), cors);
            }
            Answer::NotFound { .. } => conn.refuse_web(404, "no such stream", cors),
            Answer::Published { .. }
            | Answer::Unpublished { .. }
            | Answer::PublishAccepted { .. }
            | Answer::PublishRefused { .. } => {}
        }
    }

    /// A play was granted: counted and logged.
    fn play_accepted(&self, conn: &Conn, key: &StreamKey) {
        self.stats.players.add(1);
        self.stats.players_by_protocol(conn.protocol()).add(1);
        conn.granted();
        self.began(conn, key, false);
        let stream = Quoted(key.as_str());
        let protocol = conn.protocol().name();
        peer_line!(INFO, self, conn, shard = %self.id, peer = %conn.peer, %stream, protocol, "play");
    }

    /// `conn` stopped publishing or playing: counted, and hooks told.
    fn ended(&self, conn: &Conn, role: &Role) {
        match role {
            Role::Publisher(key) => {
                self.stats.publishers.sub(1);
                let stream = Quoted(key.as_str());
                peer_line!(INFO, self, conn, shard = %self.id, peer = %conn.peer, %stream, "unpublish");
                self.tell_done(conn, Door::Publish, key);
            }
            Role::Player(key) => {
                self.stats.players.sub(1);
                self.stats.players_by_protocol(conn.protocol()).sub(1);
                self.tell_done(conn, Door::Play, key);
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
        self.admit(conn, Door::Connect, "", |shard, conn, verdict| {
            let app = conn.app.borrow().clone().unwrap_or_default();
            match verdict {
                Verdict::Allow { .. } => {
                    if let Some(mut session) = conn.session() {
                        session.accept_connect();
                    }
                    let app = Quoted(&app);
                    peer_line!(INFO, shard, conn, shard = %shard.id, peer = %conn.peer, %app, "connect");
                }
                Verdict::Deny(_) => {
                    if let Some(mut session) = conn.session() {
                        session.reject_connect("Connection rejected.");
                    }
                    // The refusal goes out before the close.
                    conn.flush_session();
                    conn.close_after_flush(CloseReason::Rejected);
                }
            }
        });
    }

    pub(super) fn stream_key(conn: &Conn, stream_name: &str) -> StreamKey {
        StreamKey::new(
            conn.app.borrow().as_deref().unwrap_or_default(),
            stream_name,
        )
    }

    fn publish(&self, conn: &Rc<Conn>, stream_id: MessageStreamId, asked: String) {
        let door_name = asked.clone();
        self.admit(
            conn,
            Door::Publish,
            &door_name,
            move |shard, conn, verdict| match verdict {
                Verdict::Allow { rename } => {
                    let name = rename.unwrap_or(asked);
                    shard.route(Event::Publish {
                        conn: conn.id(),
                        stream_id,
                        key: Shard::stream_key(conn, &name),
                        name,
                        waited_ms: 0,
                    });
                }
                Verdict::Deny(_) => {
                    if let Some(mut session) = conn.session() {
                        session.reject_publish(
                            stream_id,
                            status::PUBLISH_BAD_NAME,
                            "Publish denied.",
                        );
                    }
                    conn.refused();
                }
            },
        );
    }

    fn play(&self, conn: &Rc<Conn>, stream_id: MessageStreamId, asked: String, reset: bool) {
        let door_name = asked.clone();
        self.admit(
            conn,
            Door::Play,
            &door_name,
            move |shard, conn, verdict| match verdict {
                Verdict::Allow { rename } => {
                    let name = rename.unwrap_or(asked);
                    shard.route(Event::Play {
                        conn: conn.id(),
                        stream_id,
                        key: Shard::stream_key(conn, &name),
                        name,
                        reset,
                        format: Format::Rtmp {
                            chunk_size: conn.chunk_size,
                        },
                    });
                }
                Verdict::Deny(_) => {
                    if let Some(mut session) = conn.session() {
                        session.reject_play(stream_id, status::PLAY_FAILED, "Play denied.");
                    }
                    conn.refused();
                }
            },
        );
    }
}
