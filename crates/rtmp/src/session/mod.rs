//! One connection's RTMP state machine, server side ([`ServerSession`]) and
//! client side ([`ClientSession`]), over the pure protocol layer.
//!
//! A session takes the bytes a socket read (`handle_input`), hands back the
//! bytes to write (`poll_transmit`) and what happened (`poll_event`), and
//! takes decisions from the layer above (accept or reject a publish, start
//! a play). It does the protocol's own chores: the handshake, window
//! acknowledgements, answering pings, chunk size announcements, `_result`
//! and `_error` for the commands it owns. It must not do I/O, read a clock
//! or draw random numbers: time and randomness come in as arguments.
//!
//! Media for players does not go through a session: the server writes
//! packaged frames ([`crate::protocol::chunk::package`]) straight to the
//! socket on the chunk streams in [`chunk_streams`], which the session's
//! own encoder never uses, so the two can share one connection.

mod client;
mod core;
mod server;
#[cfg(test)]
mod tests;

pub use client::{ClientConfig, ClientEvent, ClientSession};
pub use server::{ServerConfig, ServerEvent, ServerSession};

use std::fmt;

use bytes::{Bytes, BytesMut};

use crate::protocol::amf::{self, Value};
use crate::protocol::chunk::{self, RawMessage};
use crate::protocol::message::{MessageError, aggregate_parts};
use crate::protocol::{MessageStreamId, MessageType, Timestamp, amf0, handshake};

/// Peer-chosen text to quote in a description or a log line: at most
/// [`limits::QUOTED_BYTES_MAX`](crate::limits::QUOTED_BYTES_MAX) bytes, cut
/// at a character boundary, with the full length when cut, so a megabyte
/// name is neither echoed nor logged whole.
pub struct Quoted<'a>(pub &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0;
        let head = amf::prefix_at_char_boundary(text, crate::limits::QUOTED_BYTES_MAX);
        if head.len() == text.len() {
            return f.write_str(text);
        }
        write!(f, "{head}… ({} bytes)", text.len())
    }
}

/// Chunk stream ids by purpose. Commands and control go through a session's
/// encoder; media goes out as packaged frames on its own chunk streams
/// (nginx-rtmp and ffmpeg separate them the same way).
pub mod chunk_streams {
    use crate::protocol::ChunkStreamId;

    /// Protocol and user control messages (RTMP 1.0 §5.4, §6.2).
    pub const CONTROL: ChunkStreamId = ChunkStreamId::CONTROL;
    /// Commands on the NetConnection (stream 0).
    pub const COMMAND: ChunkStreamId = ChunkStreamId(3);
    /// Commands and status on a NetStream.
    pub const STREAM_COMMAND: ChunkStreamId = ChunkStreamId(5);
    /// Packaged audio.
    pub const AUDIO: ChunkStreamId = ChunkStreamId(6);
    /// Packaged video.
    pub const VIDEO: ChunkStreamId = ChunkStreamId(7);
    /// Packaged data (metadata, cue points).
    pub const DATA: ChunkStreamId = ChunkStreamId(8);
}

/// `onStatus` codes the sessions send and read (RTMP 1.0 §7.2.2, FMS;
/// E-RTMP v2 for the reconnect request).
pub mod status {
    pub const CONNECT_SUCCESS: &str = "NetConnection.Connect.Success";
    pub const CONNECT_REJECTED: &str = "NetConnection.Connect.Rejected";
    /// The server asks the client to connect again, to the info object's
    /// `tcUrl` if it has one (E-RTMP v2, "Reconnect Request").
    pub const CONNECT_RECONNECT_REQUEST: &str = "NetConnection.Connect.ReconnectRequest";
    pub const CALL_FAILED: &str = "NetConnection.Call.Failed";
    pub const PUBLISH_START: &str = "NetStream.Publish.Start";
    pub const PUBLISH_BAD_NAME: &str = "NetStream.Publish.BadName";
    pub const UNPUBLISH_SUCCESS: &str = "NetStream.Unpublish.Success";
    pub const PLAY_RESET: &str = "NetStream.Play.Reset";
    pub const PLAY_START: &str = "NetStream.Play.Start";
    pub const PLAY_STOP: &str = "NetStream.Play.Stop";
    pub const PLAY_FAILED: &str = "NetStream.Play.Failed";
    pub const PLAY_STREAM_NOT_FOUND: &str = "NetStream.Play.StreamNotFound";
    pub const PLAY_PUBLISH_NOTIFY: &str = "NetStream.Play.PublishNotify";
    pub const PLAY_UNPUBLISH_NOTIFY: &str = "NetStream.Play.UnpublishNotify";
    pub const PAUSE_NOTIFY: &str = "NetStream.Pause.Notify";
    pub const UNPAUSE_NOTIFY: &str = "NetStream.Unpause.Notify";
    pub const SEEK_FAILED: &str = "NetStream.Seek.Failed";
}

/// What kind of media message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaKind {
    Audio,
    Video,
    /// A data message other than metadata (cue points, captions …), kept
    /// as its AMF bytes.
    Data,
}

impl MediaKind {
    pub fn type_id(self) -> MessageType {
        match self {
            MediaKind::Audio => MessageType::AUDIO,
            MediaKind::Video => MessageType::VIDEO,
            MediaKind::Data => MessageType::DATA_AMF0,
        }
    }

    /// The chunk stream packaged frames of this kind go out on.
    pub fn chunk_stream(self) -> crate::protocol::ChunkStreamId {
        match self {
            MediaKind::Audio => chunk_streams::AUDIO,
            MediaKind::Video => chunk_streams::VIDEO,
            MediaKind::Data => chunk_streams::DATA,
        }
    }
}

/// The audio, video and data messages inside an aggregate (type 22) as
/// media, in order; parts of other types are skipped.
fn aggregate_media(
    stream_id: MessageStreamId,
    timestamp: Timestamp,
    payload: &Bytes,
) -> impl Iterator<Item = Result<Media, SessionError>> + '_ {
    aggregate_parts(timestamp, payload).filter_map(move |part| {
        let part = match part {
            Ok(part) => part,
            Err(source) => {
                return Some(Err(SessionError::Message {
                    type_id: MessageType::AGGREGATE,
                    stream_id,
                    source,
                }));
            }
        };
        let kind = match part.type_id {
            MessageType::AUDIO => MediaKind::Audio,
            MessageType::VIDEO => MediaKind::Video,
            MessageType::DATA_AMF0 => MediaKind::Data,
            _ => return None,
        };
        Some(Ok(Media {
            kind,
            timestamp: part.timestamp,
            payload: part.payload,
        }))
    })
}

/// Stream metadata (`onMetaData`) from a publisher or an origin.
#[derive(Clone, Debug, PartialEq)]
pub struct Metadata {
    /// The decoded value, for what the server learns from it (picture
    /// size, frame rate).
    pub value: Value,
    /// The AMF0 data message body players receive: `onMetaData` and the
    /// value, as received where it can be (see [`Metadata::from_data`]).
    pub body: Bytes,
}

/// `@setDataFrame` as ffmpeg, OBS and every other encoder write it: an
/// AMF0 string (marker, 16-bit length, 13 bytes).
const SET_DATA_FRAME_AMF0: &[u8] = b"\x02\x00\x0d@setDataFrame";

/// `onMetaData` as an AMF0 string.
const ON_METADATA_AMF0: &[u8] = b"\x02\x00\x0aonMetaData";

impl Metadata {
    /// The metadata of a data message (`raw`) that decoded to `value`
    /// under `@setDataFrame onMetaData` or a bare `onMetaData`. Players get
    /// the bytes as received, not a re-encoding of the value, so what a
    /// publisher sends is what a player gets: an AMF0 body that starts
    /// with `@setDataFrame` and `onMetaData` becomes a zero-copy slice
    /// from `onMetaData` on (AMF0 references (§2.9) count only complex
    /// values, so dropping a leading string leaves every index valid; AMF3
    /// tables start at the first AVM+ switch, after it), and one that
    /// starts with `onMetaData` is passed whole. Anything else (AMF3 data,
    /// type 15; the handler-less `@setDataFrame` + value) is encoded anew
    /// as AMF0, which the AMF budget bounds to a small multiple of the
    /// message; so is a slice that would decode past its own budget
    /// (`limits`; 16 bytes shorter than what was sent, it may), so that a
    /// ringcast edge pulling from us accepts what we forward. Written
    /// without references, a body's cost is at most its length.
    pub fn from_data(raw: &RawMessage, value: Value, limits: &amf::Limits) -> Metadata {
        let body = if raw.type_id != MessageType::DATA_AMF0 {
            None
        } else if let Some(rest) = raw.payload.strip_prefix(SET_DATA_FRAME_AMF0) {
            rest.starts_with(ON_METADATA_AMF0)
                .then(|| raw.payload.slice(SET_DATA_FRAME_AMF0.len()..))
        } else {
            raw.payload
                .starts_with(ON_METADATA_AMF0)
                .then(|| raw.payload.clone())
        };
        let fits = |body: &Bytes| {
            let name = amf::Cost {
                items: 1,
                bytes: "onMetaData".len(),
            };
            let (cost, budget) = (value.cost().plus(name), limits.budget(body.len()));
            cost.items <= budget.items && cost.bytes <= budget.bytes
        };
        let body = body.filter(fits).unwrap_or_else(|| {
            // The value encoded in place: a `Message` would clone it.
            let mut body = BytesMut::from(ON_METADATA_AMF0);
            amf0::encode(&value, &mut body);
            body.freeze()
        });
        Metadata { value, body }
    }
}

/// One media message on a stream: its body is shared, never copied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Media {
    pub kind: MediaKind,
    pub timestamp: Timestamp,
    pub payload: Bytes,
}

/// Settings both sides share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub chunk: chunk::Limits,
    pub amf: amf::Limits,
    /// Message streams (`createStream`) one connection may hold.
    pub streams_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            chunk: chunk::Limits::default(),
            amf: amf::Limits::default(),
            streams_max: crate::limits::STREAMS_PER_CONNECTION_MAX,
        }
    }
}

/// Why a session cannot continue. Every variant closes the connection.
///
/// The variants other than [`SessionError::Misuse`] are the peer's fault
/// (its bytes: malformed, or well-formed but illegal now): log them with
/// the peer and count them. [`SessionError::Misuse`] is ours.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("handshake: {0}")]
    Handshake(#[from] handshake::Error),
    #[error("{0}")]
    Chunk(#[from] chunk::DecodeError),
    #[error("message type {type_id} on stream {stream_id}: {source}")]
    Message {
        type_id: MessageType,
        stream_id: MessageStreamId,
        #[source]
        source: MessageError,
    },
    /// Well-formed but illegal now, e.g. `publish` before `connect`.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// Our own bug, not the peer's: see [`Misuse`].
    #[error("{0}")]
    Misuse(#[from] Misuse),
}

/// A session used wrongly by our own code: no peer's bytes can cause it.
#[derive(Debug, thiserror::Error)]
pub enum Misuse {
    /// A call the session's state does not allow, e.g. a client's
    /// `publish` before its `connect` succeeded.
    #[error("session misuse: {0}")]
    Call(String),
    /// A message we built does not fit the chunk format.
    #[error("encoding our own message: {0}")]
    Encode(#[from] chunk::EncodeError),
}

impl From<chunk::EncodeError> for SessionError {
    fn from(error: chunk::EncodeError) -> SessionError {
        SessionError::Misuse(Misuse::Encode(error))
    }
}

impl SessionError {
    /// True when the peer's bytes caused it; false for our own bug
    /// ([`SessionError::Misuse`]).
    pub fn is_peer_fault(&self) -> bool {
        !matches!(self, SessionError::Misuse(_))
    }

    /// A message whose body does not match its type.
    fn message(raw: &RawMessage, source: MessageError) -> SessionError {
        SessionError::Message {
            type_id: raw.type_id,
            stream_id: raw.stream_id,
            source,
        }
    }
}
