//! The server side of a connection: handshake, `connect`, streams,
//! `publish` and `play`, and everything a publisher sends.
//!
//! The session answers what it owns (`createStream`, `releaseStream`,
//! `FCPublish`, unknown calls, pings, acknowledgements) and turns the rest
//! into [`ServerEvent`]s. Decisions are the caller's: `connect`, `publish`
//! and `play` wait for `accept_*` or `reject_*`. While one waits, the
//! session reads no further input, so replies go out in order and media
//! sent right after `publish` finds the stream publishing.
//!
//! A body is decoded only where it is acted on: commands always, data on a
//! publishing stream, nothing else (media is passed on as bytes; shared
//! objects, unknown types and data elsewhere are dropped undecoded). Until
//! a publish is accepted no message may be longer than a command: only a
//! publisher sends media.

use std::collections::VecDeque;
use std::fmt;

use bytes::{Bytes, BytesMut};

use super::core::Core;
use super::{
    Limits, Media, MediaKind, Metadata, Quoted, SessionError, aggregate_media, chunk_streams,
    status,
};
use crate::limits;
use crate::protocol::amf::Value;
use crate::protocol::chunk::{EncodeError, RawMessage};
use crate::protocol::command::{
    Call, CapsEx, Command, CommandError, Connect, Data, Play, PublishType, Response, Status,
};
use crate::protocol::handshake;
use crate::protocol::message::{BandwidthLimit, Message, MessageError, UserControl};
use crate::protocol::url::AppName;
use crate::protocol::{MessageStreamId, MessageType, Timestamp};

/// How the server side presents itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// Chunk size announced after `connect` and used for everything sent.
    pub chunk_size: u32,
    /// Window Acknowledgement Size announced to the client.
    pub ack_window: u32,
    /// Set Peer Bandwidth announced to the client (limit type dynamic).
    pub peer_bandwidth: u32,
    pub limits: Limits,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            chunk_size: limits::CHUNK_SIZE_OUT_DEFAULT,
            ack_window: limits::ACK_WINDOW_DEFAULT,
            peer_bandwidth: limits::ACK_WINDOW_DEFAULT,
            limits: Limits::default(),
        }
    }
}

/// What a client asked for.
#[derive(Clone, Debug, PartialEq)]
pub enum ServerEvent {
    /// Answer with [`ServerSession::accept_connect`] or
    /// [`ServerSession::reject_connect`].
    Connect { app: AppName, connect: Connect },
    /// Answer with [`ServerSession::accept_publish`] or
    /// [`ServerSession::reject_publish`]. The name is as sent, query and all.
    Publish {
        stream_id: MessageStreamId,
        stream_name: String,
        publish_type: PublishType,
    },
    /// Answer with [`ServerSession::accept_play`] or
    /// [`ServerSession::reject_play`].
    Play {
        stream_id: MessageStreamId,
        stream_name: String,
        start: f64,
        reset: bool,
    },
    /// Audio, video or data from a publishing stream.
    Media {
        stream_id: MessageStreamId,
        media: Media,
    },
    /// `@setDataFrame onMetaData` (or a bare `onMetaData`) from a publisher:
    /// the value, and the body players receive as `onMetaData`.
    Metadata {
        stream_id: MessageStreamId,
        timestamp: Timestamp,
        metadata: Metadata,
    },
    /// A publishing or playing stream ended (`deleteStream`,
    /// `closeStream`); the connection goes on.
    StreamClosed { stream_id: MessageStreamId },
    Pause {
        stream_id: MessageStreamId,
        paused: bool,
    },
    ReceiveAudio {
        stream_id: MessageStreamId,
        enabled: bool,
    },
    ReceiveVideo {
        stream_id: MessageStreamId,
        enabled: bool,
    },
    /// A command was refused: answered with `_error`, or dropped when it
    /// came as a notification (transaction id 0) that expects no answer.
    /// Nothing to decide; the session goes on. Reported so the layer above
    /// can count and log peers that misuse commands.
    CommandRefused {
        stream_id: MessageStreamId,
        description: String,
    },
}

/// `connect` properties held to [`limits::CONNECT_STRING_BYTES_MAX`].
const CONNECT_STRINGS_KEPT: [&str; 4] = ["tcUrl", "flashVer", "swfUrl", "pageUrl"];

/// Bytes of a string value; other values keep nothing.
fn string_len(value: &Value) -> usize {
    value.as_str().map_or(0, str::len)
}

/// One client connection, server side.
#[derive(Debug)]
pub struct ServerSession {
    config: ServerConfig,
    phase: Phase,
    core: Core,
    streams: Vec<Stream>,
    events: VecDeque<ServerEvent>,
    /// A connect, publish or play awaits the caller's answer.
    awaiting_answer: bool,
    /// What `connect` announced in `capsEx`: whether the client may be
    /// sent a reconnect request.
    peer_caps_ex: CapsEx,
}

#[derive(Debug)]
enum Phase {
    Handshake(Box<handshake::Server>),
    AwaitConnect,
    /// `connect` is waiting for a decision; its transaction id and object
    /// encoding for the answer.
    ConnectPending {
        transaction_id: f64,
        encoding: f64,
    },
    Connected,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Idle,
    PublishRequested,
    Publishing,
    PlayRequested,
    Playing,
}

#[derive(Debug)]
struct Stream {
    id: MessageStreamId,
    role: Role,
}

impl ServerSession {
    /// A session for a connection just accepted. `now_ms` and `random` are
    /// the time and randomness for the handshake's S1.
    pub fn new(
        config: ServerConfig,
        now_ms: u32,
        random: [u8; handshake::RANDOM_SIZE],
    ) -> ServerSession {
        let mut core = Core::new(&config.limits, None);
        // Until a publish is accepted only commands matter, so no message
        // may be longer than one: a peer that does not publish (one that
        // has not even connected, or a player) cannot make us reassemble
        // megabytes of media we would drop.
        let message_size_max = config.limits.chunk.message_size_max;
        core.set_message_size_max(message_size_max.min(limits::COMMAND_MESSAGE_SIZE_MAX));
        ServerSession {
            config,
            phase: Phase::Handshake(Box::new(handshake::Server::new(now_ms, random))),
            core,
            streams: Vec::new(),
            events: VecDeque::new(),
            awaiting_answer: false,
            peer_caps_ex: CapsEx::default(),
        }
    }

    /// Consumes what it can of `input`. It stops early while a `connect`,
    /// `publish` or `play` awaits an answer or [`limits::SESSION_EVENTS_MAX`]
    /// events are queued; call again after answering or draining events.
    /// An error means: close the connection.
    pub fn handle_input(&mut self, input: &mut BytesMut) -> Result<(), SessionError> {
        if let Phase::Handshake(handshake) = &mut self.phase {
            handshake.handle_input(input)?;
            if let Some(bytes) = handshake.poll_transmit() {
                self.core.queue_raw(&bytes);
            }
            if !handshake.is_done() {
                return Ok(());
            }
            self.phase = Phase::AwaitConnect;
        }
        while !self.awaiting_answer && self.events.len() < limits::SESSION_EVENTS_MAX {
            let Some(raw) = self.core.next_message(input)? else {
                break;
            };
            self.handle_message(&raw)?;
        }
        Ok(())
    }

    #[must_use]
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// Bytes to write to the socket, in order, before any packaged frame
    /// queued after this call.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.core.take_transmit()
    }

    /// True once the handshake is over and the client may send commands.
    pub fn is_established(&self) -> bool {
        !matches!(self.phase, Phase::Handshake(_))
    }

    /// A `connect`, `publish` or `play` waits for its answer; no input is
    /// processed meanwhile.
    pub fn is_awaiting_answer(&self) -> bool {
        self.awaiting_answer
    }

    /// True once `connect` has been accepted.
    pub fn is_connected(&self) -> bool {
        matches!(self.phase, Phase::Connected)
    }

    /// Chunk size used for everything sent after `connect`: packaged frames
    /// for this connection must be built with it.
    pub fn chunk_size_out(&self) -> u32 {
        self.core.chunk_size_out()
    }

    /// Bytes of RTMP chunks received so far (for counters).
    pub fn bytes_received(&self) -> u64 {
        self.core.bytes_received()
    }

    /// What the client's `connect` announced in `capsEx` (nothing before
    /// `connect`, or from a legacy client).
    pub fn peer_caps_ex(&self) -> CapsEx {
        self.peer_caps_ex
    }

    /// Asks the client to connect again (E-RTMP v2, "Reconnect Request"):
    /// `onStatus` `NetConnection.Connect.ReconnectRequest` at level
    /// `status` on stream 0, with `tc_url` saying where (absent: the
    /// client's own `tcUrl`). Only for a client whose `connect` announced
    /// [`CapsEx::RECONNECT`]: a legacy one does not know the code. Nothing
    /// else changes: the spec asks the old server to go on serving the
    /// client until it leaves, and the client to move at a keyframe.
    pub fn request_reconnect(&mut self, tc_url: Option<&str>, description: &str) {
        debug_assert!(
            self.is_connected() && self.peer_caps_ex.contains(CapsEx::RECONNECT),
            "a reconnect request to a client that did not announce it"
        );
        let mut status = Status::new("status", status::CONNECT_RECONNECT_REQUEST, description);
        if let Some(tc_url) = tc_url {
            status.extra.push(("tcUrl".into(), Value::string(tc_url)));
        }
        ours(self.core.send_status(MessageStreamId::CONNECTION, status));
    }

    /// Accepts the pending `connect`: window, bandwidth and chunk size, then
    /// `_result` with `NetConnection.Connect.Success`, as ffmpeg and OBS
    /// expect.
    pub fn accept_connect(&mut self) {
        let Phase::ConnectPending {
            transaction_id,
            encoding,
        } = self.phase
        else {
            debug_assert!(false, "accept_connect without a pending connect");
            return;
        };
        self.phase = Phase::Connected;
        self.awaiting_answer = false;
        let control = chunk_streams::CONTROL;
        let connection = MessageStreamId::CONNECTION;
        let window = Message::WindowAckSize(self.config.ack_window);
        ours(self.core.send(control, connection, &window));
        let bandwidth = Message::SetPeerBandwidth {
            window: self.config.peer_bandwidth,
            limit: BandwidthLimit::Dynamic,
        };
        ours(self.core.send(control, connection, &bandwidth));
        ours(self.core.set_chunk_size(self.config.chunk_size));
        let mut properties = vec![
            ("fmsVer", Value::string("FMS/3,0,1,123")),
            ("capabilities", Value::Number(31.0)),
        ];
        // E-RTMP v2 asks the server to state what it supports; only to a
        // client that announced it, so legacy clients get the bytes they
        // always got.
        if self.peer_caps_ex.contains(CapsEx::RECONNECT) {
            properties.push(("capsEx", CapsEx::RECONNECT.to_value()));
        }
        let properties = Value::object(properties);
        let mut info = Status::new("status", status::CONNECT_SUCCESS, "Connection succeeded.");
        info.extra
            .push(("objectEncoding".into(), Value::Number(encoding)));
        ours(self.respond(
            transaction_id,
            connection,
            true,
            properties,
            info.to_value(),
        ));
    }

    /// Rejects the pending `connect` with `NetConnection.Connect.Rejected`;
    /// close the connection once this is written.
    pub fn reject_connect(&mut self, description: &str) {
        let Phase::ConnectPending { transaction_id, .. } = self.phase else {
            debug_assert!(false, "reject_connect without a pending connect");
            return;
        };
        self.phase = Phase::AwaitConnect;
        self.awaiting_answer = false;
        let info = Status::new("error", status::CONNECT_REJECTED, description).to_value();
        let connection = MessageStreamId::CONNECTION;
        ours(self.respond(transaction_id, connection, false, Value::Null, info));
    }

    /// Starts a requested publish: `NetStream.Publish.Start`.
    pub fn accept_publish(&mut self, stream_id: MessageStreamId) {
        if !self.set_role(stream_id, Role::PublishRequested, Role::Publishing) {
            return;
        }
        // A publisher's media may be as long as configured from now on; it
        // sends none before this answer, since the session reads nothing
        // while the publish waits for it.
        self.core
            .set_message_size_max(self.config.limits.chunk.message_size_max);
        let description = "Start publishing.";
        ours(self.core.send_status(
            stream_id,
            Status::new("status", status::PUBLISH_START, description),
        ));
    }

    /// Refuses a requested publish with an error status such as
    /// [`status::PUBLISH_BAD_NAME`].
    pub fn reject_publish(&mut self, stream_id: MessageStreamId, code: &str, description: &str) {
        if !self.set_role(stream_id, Role::PublishRequested, Role::Idle) {
            return;
        }
        ours(
            self.core
                .send_status(stream_id, Status::new("error", code, description)),
        );
    }

    /// Starts a requested play: StreamBegin, `Play.Reset` (when asked),
    /// `Play.Start`, `|RtmpSampleAccess`. Media follows as packaged frames.
    pub fn accept_play(&mut self, stream_id: MessageStreamId, stream_name: &str, reset: bool) {
        if !self.set_role(stream_id, Role::PlayRequested, Role::Playing) {
            return;
        }
        ours(self.stream_begin(stream_id));
        if reset {
            let description = format!("Playing and resetting {stream_name}.");
            ours(self.core.send_status(
                stream_id,
                Status::new("status", status::PLAY_RESET, description),
            ));
        }
        let description = format!("Started playing {stream_name}.");
        ours(self.core.send_status(
            stream_id,
            Status::new("status", status::PLAY_START, description),
        ));
        let access = Message::Data(Data::SampleAccess {
            audio: true,
            video: true,
        });
        ours(
            self.core
                .send(chunk_streams::STREAM_COMMAND, stream_id, &access),
        );
    }

    /// Refuses a requested play with an error status such as
    /// [`status::PLAY_STREAM_NOT_FOUND`].
    pub fn reject_play(&mut self, stream_id: MessageStreamId, code: &str, description: &str) {
        if !self.set_role(stream_id, Role::PlayRequested, Role::Idle) {
            return;
        }
        ours(
            self.core
                .send_status(stream_id, Status::new("error", code, description)),
        );
    }

    /// Tells a player its publisher left: `Play.UnpublishNotify`, StreamEOF.
    /// The player stays subscribed for a republish.
    pub fn notify_unpublished(&mut self, stream_id: MessageStreamId, stream_name: &str) {
        let description = format!("{stream_name} is now unpublished.");
        ours(self.core.send_status(
            stream_id,
            Status::new("status", status::PLAY_UNPUBLISH_NOTIFY, description),
        ));
        let eof = Message::UserControl(UserControl::StreamEof(stream_id));
        ours(
            self.core
                .send(chunk_streams::CONTROL, MessageStreamId::CONNECTION, &eof),
        );
    }

    /// Tells a waiting player a publisher arrived: StreamBegin,
    /// `Play.PublishNotify`. Fresh metadata and sequence headers follow.
    pub fn notify_published(&mut self, stream_id: MessageStreamId, stream_name: &str) {
        ours(self.stream_begin(stream_id));
        let description = format!("{stream_name} is now published.");
        ours(self.core.send_status(
            stream_id,
            Status::new("status", status::PLAY_PUBLISH_NOTIFY, description),
        ));
    }

    /// Sends a keepalive ping (User Control PingRequest); the client's
    /// PingResponse is input like any other.
    pub fn ping(&mut self, timestamp: u32) {
        let ping = Message::UserControl(UserControl::PingRequest(timestamp));
        ours(
            self.core
                .send(chunk_streams::CONTROL, MessageStreamId::CONNECTION, &ping),
        );
    }

    /// Sends any status on a stream (e.g. a publisher replaced by another).
    pub fn send_status(&mut self, stream_id: MessageStreamId, status: Status) {
        ours(self.core.send_status(stream_id, status));
    }

    /// Ends a play from the server side (shutdown): `Play.Stop`, StreamEOF.
    pub fn stop_play(&mut self, stream_id: MessageStreamId, description: &str) {
        ours(self.core.send_status(
            stream_id,
            Status::new("status", status::PLAY_STOP, description),
        ));
        let eof = Message::UserControl(UserControl::StreamEof(stream_id));
        ours(
            self.core
                .send(chunk_streams::CONTROL, MessageStreamId::CONNECTION, &eof),
        );
        if let Some(stream) = self.stream_mut(stream_id) {
            stream.role = Role::Idle;
        }
    }

    fn stream_begin(&mut self, stream_id: MessageStreamId) -> Result<(), EncodeError> {
        let begin = Message::UserControl(UserControl::StreamBegin(stream_id));
        self.core
            .send(chunk_streams::CONTROL, MessageStreamId::CONNECTION, &begin)
    }

    /// Moves a stream from a pending request to its answer. `false` when
    /// the request was withdrawn (the client closed the stream or deleted
    /// it before the answer): then there is nothing to answer.
    fn set_role(&mut self, stream_id: MessageStreamId, from: Role, to: Role) -> bool {
        self.awaiting_answer = false;
        match self.stream_mut(stream_id) {
            Some(stream) if stream.role == from => {
                stream.role = to;
                true
            }
            _ => false,
        }
    }

    fn stream_mut(&mut self, stream_id: MessageStreamId) -> Option<&mut Stream> {
        self.streams.iter_mut().find(|s| s.id == stream_id)
    }

    /// Acts on one message. Only commands are decoded before `connect`;
    /// audio, video, data and aggregates count only on a stream that
    /// publishes, and data is decoded only there; shared objects, unknown
    /// types and user control events are dropped undecoded (nothing a live
    /// server acts on).
    fn handle_message(&mut self, raw: &RawMessage) -> Result<(), SessionError> {
        let stream_id = raw.stream_id;
        match raw.type_id {
            MessageType::COMMAND_AMF0 | MessageType::COMMAND_AMF3 => self.command_message(raw),
            _ if !self.is_publishing(stream_id) => Ok(()),
            MessageType::AUDIO => self.media(
                stream_id,
                MediaKind::Audio,
                raw.timestamp,
                raw.payload.clone(),
            ),
            MessageType::VIDEO => self.media(
                stream_id,
                MediaKind::Video,
                raw.timestamp,
                raw.payload.clone(),
            ),
            MessageType::DATA_AMF0 | MessageType::DATA_AMF3 => match self.core.decode(raw) {
                Ok(Message::Data(data)) => self.data(stream_id, raw, data),
                Ok(_) => Ok(()),
                Err(source) => Err(SessionError::message(raw, source)),
            },
            MessageType::AGGREGATE => self.aggregate(stream_id, raw.timestamp, &raw.payload),
            _ => Ok(()),
        }
    }

    /// Decodes a command; one with bad arguments gets `_error` once
    /// connected, anything else malformed closes the connection.
    fn command_message(&mut self, raw: &RawMessage) -> Result<(), SessionError> {
        match self.core.decode(raw) {
            Ok(Message::Command(command)) => self.handle_command(raw.stream_id, command),
            Ok(_) => Ok(()),
            Err(MessageError::Command(CommandError::BadArgument {
                command,
                transaction_id,
                ..
            })) if self.is_connected() => {
                let description = format!("{command}: missing or malformed arguments");
                self.call_failed(transaction_id, raw.stream_id, &description)
            }
            Err(source) => Err(SessionError::message(raw, source)),
        }
    }

    fn is_publishing(&self, stream_id: MessageStreamId) -> bool {
        self.streams
            .iter()
            .any(|s| s.id == stream_id && s.role == Role::Publishing)
    }

    fn media(
        &mut self,
        stream_id: MessageStreamId,
        kind: MediaKind,
        timestamp: Timestamp,
        payload: Bytes,
    ) -> Result<(), SessionError> {
        // Media on a stream that is not publishing is dropped: a client may
        // send before `Publish.Start` reaches it.
        if self.is_publishing(stream_id) {
            let media = Media {
                kind,
                timestamp,
                payload,
            };
            self.events
                .push_back(ServerEvent::Media { stream_id, media });
        }
        Ok(())
    }

    /// Data on a publishing stream: metadata, or other data for players.
    fn data(
        &mut self,
        stream_id: MessageStreamId,
        raw: &RawMessage,
        data: Data,
    ) -> Result<(), SessionError> {
        match data {
            Data::SetDataFrame { handler, value } if handler == "onMetaData" => {
                self.events.push_back(ServerEvent::Metadata {
                    stream_id,
                    timestamp: raw.timestamp,
                    metadata: Metadata::from_data(raw, value, &self.core.amf_limits),
                });
                Ok(())
            }
            Data::MetaData(value) => {
                self.events.push_back(ServerEvent::Metadata {
                    stream_id,
                    timestamp: raw.timestamp,
                    metadata: Metadata::from_data(raw, value, &self.core.amf_limits),
                });
                Ok(())
            }
            // Other data (cue points, captions) goes to players as sent,
            // re-encoded as AMF0 when it came as AMF3.
            data => {
                let payload = if raw.type_id == MessageType::DATA_AMF0 {
                    raw.payload.clone()
                } else {
                    let mut body = BytesMut::new();
                    Message::Data(data).encode(&mut body);
                    body.freeze()
                };
                self.media(stream_id, MediaKind::Data, raw.timestamp, payload)
            }
        }
    }

    fn aggregate(
        &mut self,
        stream_id: MessageStreamId,
        timestamp: Timestamp,
        payload: &Bytes,
    ) -> Result<(), SessionError> {
        for media in aggregate_media(stream_id, timestamp, payload) {
            let Media {
                kind,
                timestamp,
                payload,
            } = media?;
            self.media(stream_id, kind, timestamp, payload)?;
        }
        Ok(())
    }

    fn handle_command(
        &mut self,
        stream_id: MessageStreamId,
        command: Command,
    ) -> Result<(), SessionError> {
        if let Command::Connect(connect) = command {
            return self.connect(connect);
        }
        if !self.is_connected() {
            return Err(SessionError::Protocol(format!(
                "{} before connect",
                command_name(&command)
            )));
        }
        if let Some(len) = stream_name_len(&command).filter(|len| *len > limits::NAME_BYTES_MAX) {
            let description = format!(
                "{}: stream name of {len} bytes exceeds max {}",
                command_name(&command),
                limits::NAME_BYTES_MAX
            );
            return self.call_failed(command.transaction_id(), stream_id, &description);
        }
        match command {
            Command::CreateStream { transaction_id } => {
                self.create_stream(transaction_id, stream_id)
            }
            Command::Publish {
                stream_name,
                publish_type,
                ..
            } => self.request(stream_id, Role::PublishRequested, |stream_id| {
                ServerEvent::Publish {
                    stream_id,
                    stream_name,
                    publish_type,
                }
            }),
            Command::Play(Play {
                stream_name,
                start,
                reset,
                ..
            }) => self.request(stream_id, Role::PlayRequested, |stream_id| {
                ServerEvent::Play {
                    stream_id,
                    stream_name,
                    start,
                    reset,
                }
            }),
            Command::Play2 {
                transaction_id,
                parameters,
            } => self.play2(stream_id, transaction_id, &parameters),
            Command::DeleteStream {
                transaction_id,
                stream_id: target,
            } => self.delete_stream(transaction_id, target),
            Command::CloseStream { .. } => {
                self.close_stream(stream_id);
                Ok(())
            }
            command => self.minor_command(stream_id, command),
        }
    }

    fn connect(&mut self, connect: Connect) -> Result<(), SessionError> {
        if !matches!(self.phase, Phase::AwaitConnect) {
            return Err(SessionError::Protocol(
                "connect on a connected session".into(),
            ));
        }
        if connect.app.len() > limits::NAME_BYTES_MAX {
            return Err(SessionError::Protocol(format!(
                "connect: app name of {} bytes exceeds max {}",
                connect.app.len(),
                limits::NAME_BYTES_MAX
            )));
        }
        // The strings the server keeps for the connection's life (tcUrl and
        // its query) or may quote; refused like an over-long app.
        for key in CONNECT_STRINGS_KEPT {
            let len = connect.properties.property(key).map_or(0, string_len);
            if len > limits::CONNECT_STRING_BYTES_MAX {
                return Err(SessionError::Protocol(format!(
                    "connect: {key} of {len} bytes exceeds max {}",
                    limits::CONNECT_STRING_BYTES_MAX
                )));
            }
        }
        self.phase = Phase::ConnectPending {
            transaction_id: connect.transaction_id,
            encoding: connect.object_encoding,
        };
        self.peer_caps_ex = connect.caps_ex();
        let app = AppName::parse(&connect.app);
        self.awaiting_answer = true;
        self.events.push_back(ServerEvent::Connect { app, connect });
        Ok(())
    }

    fn create_stream(
        &mut self,
        transaction_id: f64,
        on: MessageStreamId,
    ) -> Result<(), SessionError> {
        if self.streams.len() >= self.config.limits.streams_max {
            let description = format!(
                "createStream: this connection already holds max {} streams",
                self.config.limits.streams_max
            );
            return self.call_failed(transaction_id, on, &description);
        }
        let id = (1u32..)
            .map(MessageStreamId)
            .find(|id| self.streams.iter().all(|s| s.id != *id))
            .unwrap_or(MessageStreamId(u32::MAX));
        self.streams.push(Stream {
            id,
            role: Role::Idle,
        });
        let result = Value::Number(f64::from(id.0));
        self.respond(transaction_id, on, true, Value::Null, result)
    }

    /// Records a publish or play request on an idle stream and raises it.
    fn request(
        &mut self,
        stream_id: MessageStreamId,
        role: Role,
        event: impl FnOnce(MessageStreamId) -> ServerEvent,
    ) -> Result<(), SessionError> {
        match self.stream_mut(stream_id) {
            Some(stream) if stream.role == Role::Idle => stream.role = role,
            Some(_) => {
                return Err(SessionError::Protocol(format!(
                    "stream {stream_id} is already publishing or playing"
                )));
            }
            None => {
                return Err(SessionError::Protocol(format!(
                    "publish or play on stream {stream_id}, which was not created"
                )));
            }
        }
        self.awaiting_answer = true;
        self.events.push_back(event(stream_id));
        Ok(())
    }

    /// `play2` switches a playing stream to another name; a live server
    /// treats it as a new play of `streamName`.
    fn play2(
        &mut self,
        stream_id: MessageStreamId,
        transaction_id: f64,
        parameters: &Value,
    ) -> Result<(), SessionError> {
        let Some(name) = parameters.property("streamName").and_then(Value::as_str) else {
            return self.call_failed(transaction_id, stream_id, "play2: no streamName");
        };
        if name.len() > limits::NAME_BYTES_MAX {
            let description = format!(
                "play2: stream name of {} bytes exceeds max {}",
                name.len(),
                limits::NAME_BYTES_MAX
            );
            return self.call_failed(transaction_id, stream_id, &description);
        }
        let stream_name = name.to_owned();
        self.close_stream(stream_id);
        self.request(stream_id, Role::PlayRequested, |stream_id| {
            ServerEvent::Play {
                stream_id,
                stream_name,
                start: -2.0,
                reset: true,
            }
        })
    }

    fn delete_stream(
        &mut self,
        transaction_id: f64,
        target: MessageStreamId,
    ) -> Result<(), SessionError> {
        if self.stream_mut(target).is_none() {
            let description = format!("deleteStream: stream {target} was not created");
            return self.call_failed(transaction_id, MessageStreamId::CONNECTION, &description);
        }
        self.close_stream(target);
        self.streams.retain(|s| s.id != target);
        Ok(())
    }

    /// Ends whatever the stream was doing; it stays allocated.
    fn close_stream(&mut self, stream_id: MessageStreamId) {
        if let Some(stream) = self.stream_mut(stream_id) {
            let was = std::mem::replace(&mut stream.role, Role::Idle);
            if was != Role::Idle {
                self.events
                    .push_back(ServerEvent::StreamClosed { stream_id });
            }
        }
    }

    /// Commands that need an answer but no decision from above.
    fn minor_command(
        &mut self,
        stream_id: MessageStreamId,
        command: Command,
    ) -> Result<(), SessionError> {
        match command {
            Command::ReleaseStream { transaction_id, .. }
            | Command::FcUnpublish { transaction_id, .. } => self.respond(
                transaction_id,
                stream_id,
                true,
                Value::Null,
                Value::Undefined,
            ),
            Command::FcPublish { stream_name, .. } => {
                // ffmpeg and OBS wait for nothing here; FMS answers this way.
                let info = Value::object([
                    ("code", Value::string(status::PUBLISH_START)),
                    ("description", Value::string(stream_name)),
                ]);
                let call = Command::Call(Call {
                    name: "onFCPublish".into(),
                    transaction_id: 0.0,
                    command_object: Value::Null,
                    arguments: vec![info],
                });
                Ok(self.core.send_command(stream_id, call)?)
            }
            Command::GetStreamLength { transaction_id, .. } => {
                // A live stream has no length.
                self.respond(
                    transaction_id,
                    stream_id,
                    true,
                    Value::Null,
                    Value::Number(0.0),
                )
            }
            Command::Pause { pause, .. } => {
                let code = if pause {
                    status::PAUSE_NOTIFY
                } else {
                    status::UNPAUSE_NOTIFY
                };
                let description = if pause {
                    "Paused live."
                } else {
                    "Unpaused live."
                };
                self.core
                    .send_status(stream_id, Status::new("status", code, description))?;
                self.events.push_back(ServerEvent::Pause {
                    stream_id,
                    paused: pause,
                });
                Ok(())
            }
            Command::Seek { .. } => {
                let status =
                    Status::new("error", status::SEEK_FAILED, "A live stream cannot seek.");
                Ok(self.core.send_status(stream_id, status)?)
            }
            Command::ReceiveAudio { enabled, .. } => {
                self.events
                    .push_back(ServerEvent::ReceiveAudio { stream_id, enabled });
                Ok(())
            }
            Command::ReceiveVideo { enabled, .. } => {
                self.events
                    .push_back(ServerEvent::ReceiveVideo { stream_id, enabled });
                Ok(())
            }
            // Answers to our own calls, and notifications: nothing to do.
            Command::Result(_) | Command::Error(_) | Command::OnStatus(_) => Ok(()),
            Command::Call(Call {
                name,
                transaction_id,
                ..
            }) => self.call_failed(
                transaction_id,
                stream_id,
                &format!("unknown command {}", Quoted(&name)),
            ),
            other => {
                let name = command_name(&other);
                self.call_failed(
                    other.transaction_id(),
                    stream_id,
                    &format!("unexpected {name}"),
                )
            }
        }
    }

    /// `_error` with `NetConnection.Call.Failed`; nothing for notifications
    /// (transaction id 0), which expect no answer. Either way the caller
    /// hears of it ([`ServerEvent::CommandRefused`]).
    fn call_failed(
        &mut self,
        transaction_id: f64,
        stream_id: MessageStreamId,
        description: &str,
    ) -> Result<(), SessionError> {
        self.events.push_back(ServerEvent::CommandRefused {
            stream_id,
            description: description.to_owned(),
        });
        if transaction_id == 0.0 {
            return Ok(());
        }
        let info = Status::new("error", status::CALL_FAILED, description).to_value();
        self.respond(transaction_id, stream_id, false, Value::Null, info)
    }

    fn respond(
        &mut self,
        transaction_id: f64,
        stream_id: MessageStreamId,
        ok: bool,
        command_object: Value,
        argument: Value,
    ) -> Result<(), SessionError> {
        let response = Response {
            transaction_id,
            command_object,
            arguments: vec![argument],
        };
        let command = if ok {
            Command::Result(response)
        } else {
            Command::Error(response)
        };
        self.core.send_command(stream_id, command)?;
        Ok(())
    }
}

/// Takes the result of sending a message we built (an answer, a status):
/// it fits the chunk format unless we have a bug, so failing is asserted
/// against, not handed to the caller.
fn ours<E: fmt::Debug>(sent: Result<(), E>) {
    debug_assert!(sent.is_ok(), "encoding our own message: {sent:?}");
}

/// The command's name as sent (cut, see [`Quoted`]), for messages.
fn command_name(command: &Command) -> String {
    match command {
        Command::Call(call) => Quoted(&call.name).to_string(),
        // Typed commands have their own short names.
        _ => command
            .to_values()
            .first()
            .and_then(Value::as_str)
            .unwrap_or("command")
            .to_owned(),
    }
}

/// The length of the stream name a command carries, if it carries one.
fn stream_name_len(command: &Command) -> Option<usize> {
    match command {
        Command::Publish { stream_name, .. }
        | Command::ReleaseStream { stream_name, .. }
        | Command::FcPublish { stream_name, .. }
        | Command::FcUnpublish { stream_name, .. }
        | Command::GetStreamLength { stream_name, .. }
        | Command::Play(Play { stream_name, .. }) => Some(stream_name.len()),
        _ => None,
    }
}
