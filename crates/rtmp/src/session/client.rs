//! The client side of a connection: what the load generator, the relay and
//! the tests use to publish to and play from any RTMP server.
//!
//! It performs the handshake, announces its chunk size and sends `connect`
//! on its own; the caller then creates streams and publishes or plays, and
//! reads [`ClientEvent`]s. It speaks as ffmpeg does (`rtmp-notes.md`), so
//! servers that accept ffmpeg accept it.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use super::core::Core;
use super::{
    Limits, Media, MediaKind, Metadata, Misuse, SessionError, aggregate_media, chunk_streams,
    status,
};
use crate::limits;
use crate::protocol::amf::Value;
use crate::protocol::chunk::RawMessage;
use crate::protocol::command::{
    Call, CapsEx, Command, Connect, Data, Play, PublishType, Response, Status,
};
use crate::protocol::handshake;
use crate::protocol::message::{Message, UserControl};
use crate::protocol::{MessageStreamId, MessageType, Timestamp, amf::Object};

/// Where and how to connect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// The `app` property, query and all (`live?token=…`).
    pub app: String,
    /// The `tcUrl` property: `rtmp://host:port/app`.
    pub tc_url: String,
    pub flash_ver: String,
    /// Chunk size announced right after the handshake.
    pub chunk_size: u32,
    /// Window Acknowledgement Size announced once connected.
    pub ack_window: u32,
    /// Handshake to offer; servers answer digest with digest or simple.
    pub handshake: handshake::Kind,
    /// Keep only this many leading bytes of each audio and video body: a
    /// load generator's players read frame headers and stamps, not
    /// pictures, and skip the copy of the rest.
    pub media_prefix: Option<usize>,
    /// Enhanced RTMP capabilities to announce as `capsEx` in `connect`;
    /// none (no `capsEx` sent, as ffmpeg) by default. Announce
    /// [`CapsEx::RECONNECT`] only where [`ClientEvent::ReconnectRequest`]
    /// is acted on.
    pub caps_ex: CapsEx,
    pub limits: Limits,
}

impl ClientConfig {
    /// Settings for `rtmp://host:port/app` with ffmpeg's defaults.
    pub fn new(app: &str, tc_url: &str) -> ClientConfig {
        ClientConfig {
            app: app.to_owned(),
            tc_url: tc_url.to_owned(),
            flash_ver: "FMLE/3.0 (compatible; ringcast)".to_owned(),
            chunk_size: limits::CHUNK_SIZE_OUT_DEFAULT,
            ack_window: limits::ACK_WINDOW_DEFAULT,
            handshake: handshake::Kind::Digest,
            media_prefix: None,
            caps_ex: CapsEx::default(),
            limits: Limits::default(),
        }
    }
}

/// What the server said.
#[derive(Clone, Debug, PartialEq)]
pub enum ClientEvent {
    /// `connect` succeeded; streams may be created.
    Connected {
        properties: Value,
        info: Value,
    },
    /// `connect` was refused; the server will close the connection.
    ConnectRejected {
        info: Value,
    },
    /// `createStream` with this transaction id succeeded.
    StreamCreated {
        transaction_id: f64,
        stream_id: MessageStreamId,
    },
    /// `_result` for any other call.
    Result(Response),
    /// `_error` for any call but `connect`.
    Error(Response),
    /// `onStatus` on a stream.
    Status {
        stream_id: MessageStreamId,
        status: Status,
    },
    StreamBegin(MessageStreamId),
    StreamEof(MessageStreamId),
    /// Audio, video or data on a playing stream.
    Media {
        stream_id: MessageStreamId,
        media: Media,
    },
    /// `onMetaData` on a playing stream: the value, and the body as
    /// received (see [`Metadata::from_data`]).
    Metadata {
        stream_id: MessageStreamId,
        timestamp: Timestamp,
        metadata: Metadata,
    },
    /// The server asks us to connect again (E-RTMP v2, "Reconnect
    /// Request": `onStatus` `NetConnection.Connect.ReconnectRequest` on
    /// stream 0): to `tc_url` if it named one (absolute or relative to our
    /// own `tcUrl`; a `tcUrl` that is not a string counts as none), else
    /// to our own `tcUrl`. The connection goes on meanwhile.
    ReconnectRequest {
        tc_url: Option<String>,
        description: String,
    },
    /// Any other command from the server (`onBWDone`, `onFCPublish` …).
    Call(Call),
}

/// One connection to a server, client side.
#[derive(Debug)]
pub struct ClientSession {
    config: ClientConfig,
    handshake: Option<Box<handshake::Client>>,
    core: Core,
    connected: bool,
    next_transaction: f64,
    /// Transaction ids of `createStream` calls awaiting `_result`.
    creating: Vec<f64>,
    events: VecDeque<ClientEvent>,
}

/// `connect` always uses transaction id 1 (RTMP 1.0 §7.2.1.1).
const CONNECT_TRANSACTION: f64 = 1.0;

impl ClientSession {
    /// A session for a connection just opened; C0+C1 are ready to send.
    pub fn new(
        config: ClientConfig,
        now_ms: u32,
        random: [u8; handshake::RANDOM_SIZE],
    ) -> ClientSession {
        let mut handshake = handshake::Client::new(now_ms, random, config.handshake);
        let mut core = Core::new(&config.limits, config.media_prefix);
        if let Some(hello) = handshake.poll_transmit() {
            core.queue_raw(&hello);
        }
        ClientSession {
            config,
            handshake: Some(Box::new(handshake)),
            core,
            connected: false,
            next_transaction: CONNECT_TRANSACTION + 1.0,
            creating: Vec::new(),
            events: VecDeque::new(),
        }
    }

    /// Consumes what it can of `input`; stops early once
    /// [`limits::SESSION_EVENTS_MAX`] events are queued. An error means:
    /// close the connection.
    pub fn handle_input(&mut self, input: &mut BytesMut) -> Result<(), SessionError> {
        if let Some(handshake) = &mut self.handshake {
            handshake.handle_input(input)?;
            if let Some(bytes) = handshake.poll_transmit() {
                self.core.queue_raw(&bytes);
            }
            if !handshake.is_done() {
                return Ok(());
            }
            self.handshake = None;
            self.send_connect()?;
        }
        while self.events.len() < limits::SESSION_EVENTS_MAX {
            let Some(raw) = self.core.next_message(input)? else {
                break;
            };
            self.handle_message(&raw)?;
        }
        Ok(())
    }

    #[must_use]
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.core.take_transmit()
    }

    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Bytes of RTMP chunks received so far.
    pub fn bytes_received(&self) -> u64 {
        self.core.bytes_received()
    }

    /// Sends `createStream`; [`ClientEvent::StreamCreated`] carries the
    /// returned transaction id.
    pub fn create_stream(&mut self) -> Result<f64, SessionError> {
        self.require_connected("createStream")?;
        let transaction_id = self.transaction();
        self.creating.push(transaction_id);
        self.core.send_command(
            MessageStreamId::CONNECTION,
            Command::CreateStream { transaction_id },
        )?;
        Ok(transaction_id)
    }

    /// Sends `releaseStream`, `FCPublish` and `publish` as ffmpeg does;
    /// `NetStream.Publish.Start` arrives as a [`ClientEvent::Status`].
    pub fn publish(
        &mut self,
        stream_id: MessageStreamId,
        stream_name: &str,
    ) -> Result<(), SessionError> {
        self.require_connected("publish")?;
        for command in [
            Command::ReleaseStream {
                transaction_id: self.transaction(),
                stream_name: stream_name.to_owned(),
            },
            Command::FcPublish {
                transaction_id: self.transaction(),
                stream_name: stream_name.to_owned(),
            },
        ] {
            self.core
                .send_command(MessageStreamId::CONNECTION, command)?;
        }
        let publish = Command::Publish {
            transaction_id: self.transaction(),
            stream_name: stream_name.to_owned(),
            publish_type: PublishType::Live,
        };
        self.core.send_command(stream_id, publish)?;
        Ok(())
    }

    /// Sends `play` (live, from now) and a 1 s buffer length, as ffmpeg
    /// does.
    pub fn play(
        &mut self,
        stream_id: MessageStreamId,
        stream_name: &str,
    ) -> Result<(), SessionError> {
        self.require_connected("play")?;
        let play = Command::Play(Play {
            transaction_id: self.transaction(),
            stream_name: stream_name.to_owned(),
            start: -2.0,
            duration: -1.0,
            reset: true,
        });
        self.core.send_command(stream_id, play)?;
        let buffer = Message::UserControl(UserControl::SetBufferLength {
            stream_id,
            buffer_ms: 1000,
        });
        self.core
            .send(chunk_streams::CONTROL, MessageStreamId::CONNECTION, &buffer)?;
        Ok(())
    }

    /// Sends audio, video or data on a publishing stream.
    pub fn send_media(
        &mut self,
        stream_id: MessageStreamId,
        media: &Media,
    ) -> Result<(), SessionError> {
        let message = match media.kind {
            MediaKind::Audio => Message::Audio(media.payload.clone()),
            MediaKind::Video => Message::Video(media.payload.clone()),
            MediaKind::Data => Message::Unknown {
                type_id: MessageType::DATA_AMF0,
                payload: media.payload.clone(),
            },
        };
        self.core.send_at(
            media.kind.chunk_stream(),
            stream_id,
            media.timestamp,
            &message,
        )?;
        Ok(())
    }

    /// Sends `@setDataFrame onMetaData` with `value`, as encoders do.
    pub fn send_metadata(
        &mut self,
        stream_id: MessageStreamId,
        value: Value,
    ) -> Result<(), SessionError> {
        let message = Message::Data(Data::SetDataFrame {
            handler: "onMetaData".into(),
            value,
        });
        self.core.send(chunk_streams::DATA, stream_id, &message)?;
        Ok(())
    }

    /// Sends `deleteStream`, which ends a publish or a play.
    pub fn delete_stream(&mut self, stream_id: MessageStreamId) -> Result<(), SessionError> {
        self.require_connected("deleteStream")?;
        let command = Command::DeleteStream {
            transaction_id: self.transaction(),
            stream_id,
        };
        self.core
            .send_command(MessageStreamId::CONNECTION, command)?;
        Ok(())
    }

    /// Sends a ping (User Control PingRequest) to test that the server is
    /// still there: a relay whose peer went quiet. Servers answer it with a
    /// PingResponse (nginx-rtmp and ringcast do), which is input like any
    /// other.
    pub fn ping(&mut self, timestamp: u32) -> Result<(), SessionError> {
        let ping = Message::UserControl(UserControl::PingRequest(timestamp));
        self.core
            .send(chunk_streams::CONTROL, MessageStreamId::CONNECTION, &ping)?;
        Ok(())
    }

    /// Sends any command; returns its transaction id.
    pub fn call(
        &mut self,
        stream_id: MessageStreamId,
        name: &str,
        arguments: Vec<Value>,
    ) -> Result<f64, SessionError> {
        let transaction_id = self.transaction();
        let call = Command::Call(Call {
            name: name.to_owned(),
            transaction_id,
            command_object: Value::Null,
            arguments,
        });
        self.core.send_command(stream_id, call)?;
        Ok(transaction_id)
    }

    fn transaction(&mut self) -> f64 {
        let id = self.next_transaction;
        self.next_transaction += 1.0;
        id
    }

    fn require_connected(&self, what: &str) -> Result<(), SessionError> {
        if self.connected {
            Ok(())
        } else {
            Err(Misuse::Call(format!("{what} before connect succeeded")).into())
        }
    }

    fn send_connect(&mut self) -> Result<(), SessionError> {
        self.core.set_chunk_size(self.config.chunk_size)?;
        let mut properties = Object::new([
            ("app", Value::string(&self.config.app)),
            ("type", Value::string("nonprivate")),
            ("flashVer", Value::string(&self.config.flash_ver)),
            ("tcUrl", Value::string(&self.config.tc_url)),
        ]);
        if self.config.caps_ex != CapsEx::default() {
            let caps_ex = self.config.caps_ex.to_value();
            properties.properties.push(("capsEx".into(), caps_ex));
        }
        let connect = Command::Connect(Connect {
            transaction_id: CONNECT_TRANSACTION,
            app: self.config.app.clone(),
            tc_url: Some(self.config.tc_url.clone()),
            flash_ver: Some(self.config.flash_ver.clone()),
            object_encoding: 0.0,
            properties,
            arguments: Vec::new(),
        });
        self.core
            .send_command(MessageStreamId::CONNECTION, connect)?;
        Ok(())
    }

    /// Acts on one message from the server (an origin we chose to play or
    /// publish to): every type is decoded, within the AMF budget.
    fn handle_message(&mut self, raw: &RawMessage) -> Result<(), SessionError> {
        let stream_id = raw.stream_id;
        let message = self
            .core
            .decode(raw)
            .map_err(|source| SessionError::message(raw, source))?;
        let media = |kind, payload| ClientEvent::Media {
            stream_id,
            media: Media {
                kind,
                timestamp: raw.timestamp,
                payload,
            },
        };
        let event = match message {
            Message::Command(command) => return self.handle_command(stream_id, command),
            Message::Audio(payload) => media(MediaKind::Audio, payload),
            Message::Video(payload) => media(MediaKind::Video, payload),
            Message::Data(Data::MetaData(value)) => ClientEvent::Metadata {
                stream_id,
                timestamp: raw.timestamp,
                metadata: Metadata::from_data(raw, value, &self.core.amf_limits),
            },
            // Flash's sample access grant: nothing for a client to act on.
            Message::Data(Data::SampleAccess { .. }) => return Ok(()),
            Message::Data(_) => media(MediaKind::Data, raw.payload.clone()),
            Message::Aggregate(payload) => {
                return self.aggregate(stream_id, raw.timestamp, &payload);
            }
            Message::UserControl(UserControl::StreamBegin(id)) => ClientEvent::StreamBegin(id),
            Message::UserControl(UserControl::StreamEof(id)) => ClientEvent::StreamEof(id),
            _ => return Ok(()),
        };
        self.events.push_back(event);
        Ok(())
    }

    fn aggregate(
        &mut self,
        stream_id: MessageStreamId,
        timestamp: Timestamp,
        payload: &Bytes,
    ) -> Result<(), SessionError> {
        for media in aggregate_media(stream_id, timestamp, payload) {
            let media = media?;
            self.events
                .push_back(ClientEvent::Media { stream_id, media });
        }
        Ok(())
    }

    fn handle_command(
        &mut self,
        stream_id: MessageStreamId,
        command: Command,
    ) -> Result<(), SessionError> {
        let event = match command {
            Command::Result(r) if r.transaction_id == CONNECT_TRANSACTION && !self.connected => {
                self.connected = true;
                // Ask the server to acknowledge what we send, as librtmp
                // and OBS do; the server may use it to see a stalled peer.
                let window = Message::WindowAckSize(self.config.ack_window);
                self.core
                    .send(chunk_streams::CONTROL, MessageStreamId::CONNECTION, &window)?;
                ClientEvent::Connected {
                    properties: r.command_object,
                    info: r.arguments.into_iter().next().unwrap_or(Value::Null),
                }
            }
            Command::Error(r) if r.transaction_id == CONNECT_TRANSACTION && !self.connected => {
                ClientEvent::ConnectRejected {
                    info: r.arguments.into_iter().next().unwrap_or(Value::Null),
                }
            }
            Command::Result(r) => match self.creating.iter().position(|t| *t == r.transaction_id) {
                Some(i) => {
                    self.creating.swap_remove(i);
                    self.stream_created(r)?
                }
                None => ClientEvent::Result(r),
            },
            Command::Error(r) => {
                self.creating.retain(|t| *t != r.transaction_id);
                ClientEvent::Error(r)
            }
            Command::OnStatus(status)
                if stream_id == MessageStreamId::CONNECTION
                    && status.code == status::CONNECT_RECONNECT_REQUEST =>
            {
                reconnect_request(status)
            }
            Command::OnStatus(status) => ClientEvent::Status { stream_id, status },
            Command::Call(call) => ClientEvent::Call(call),
            // Servers do not send the others; ignore rather than fail.
            _ => return Ok(()),
        };
        self.events.push_back(event);
        Ok(())
    }

    fn stream_created(&self, response: Response) -> Result<ClientEvent, SessionError> {
        let id = response.arguments.first().and_then(Value::as_f64);
        match id {
            Some(id) if id >= 0.0 && id <= f64::from(u32::MAX) && id.fract() == 0.0 => {
                Ok(ClientEvent::StreamCreated {
                    transaction_id: response.transaction_id,
                    // Checked above: a whole number in u32 range.
                    stream_id: MessageStreamId(id as u32),
                })
            }
            _ => Err(SessionError::Protocol(format!(
                "createStream result {:?} is not a stream id",
                response.arguments.first()
            ))),
        }
    }
}

/// The event for a reconnect request's status: its `tcUrl`, if a string.
fn reconnect_request(status: Status) -> ClientEvent {
    let tc_url = status
        .extra
        .into_iter()
        .find(|(key, _)| key == "tcUrl")
        .and_then(|(_, value)| match value {
            Value::String(url) => Some(url),
            _ => None,
        });
    ClientEvent::ReconnectRequest {
        tc_url,
        description: status.description,
    }
}

impl ClientEvent {
    /// True for the status that starts a publish.
    pub fn is_publish_start(&self) -> bool {
        matches!(self, ClientEvent::Status { status: s, .. } if s.code == status::PUBLISH_START)
    }

    /// True for the status that starts a play.
    pub fn is_play_start(&self) -> bool {
        matches!(self, ClientEvent::Status { status: s, .. } if s.code == status::PLAY_START)
    }
}
