//! The RTMP protocol, sans I/O: bytes in, values or errors out.
//!
//! Owns the handshake (simple and digest), the chunk stream codec, AMF0 and
//! AMF3, typed messages and commands, RTMP URLs and names, and FLV tag
//! inspection. It must not do I/O, read a clock, draw random numbers or use
//! `async`: time and randomness are passed in by the caller, so every
//! corner case is a fast, deterministic test. `tests/layering.rs` holds that line.
//!
//! Reference: Adobe RTMP specification 1.0 (2012), Adobe AMF0 and AMF3
//! specifications, the veovera enhanced RTMP specification, and
//! `shared/rtmp-notes.md` for what real clients do.

pub mod amf;
pub mod amf0;
pub mod amf3;
pub mod chunk;
pub mod command;
pub mod flv;
pub mod handshake;
pub mod message;
pub(crate) mod reader;
pub mod url;

use std::fmt;

/// A chunk stream id (RTMP 1.0 §5.3.1.1): 2..=65599 on the wire; 2 carries
/// protocol control messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChunkStreamId(pub u32);

impl ChunkStreamId {
    /// Protocol control messages (types 1, 2, 3, 5, 6) and user control (4).
    pub const CONTROL: ChunkStreamId = ChunkStreamId(2);
    /// The largest id a 3-byte basic header can carry: 64 + 65535.
    pub const MAX: ChunkStreamId = ChunkStreamId(65599);
}

impl fmt::Display for ChunkStreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A message stream id (RTMP 1.0 §5.3.1.2.1): 0 is the connection itself,
/// `createStream` hands out the others. Little-endian on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MessageStreamId(pub u32);

impl MessageStreamId {
    /// The NetConnection: commands such as `connect` and `createStream`.
    pub const CONNECTION: MessageStreamId = MessageStreamId(0);
}

impl fmt::Display for MessageStreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A message timestamp in milliseconds. RTMP timestamps wrap at 2^32
/// (RTMP 1.0 §5.3.1.2.1), so all arithmetic on them wraps on purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Timestamp(pub u32);

impl Timestamp {
    /// `self + delta_ms`, wrapping at 2^32 as the spec requires.
    #[must_use]
    pub fn wrapping_add(self, delta_ms: u32) -> Timestamp {
        Timestamp(self.0.wrapping_add(delta_ms))
    }

    /// The forward distance from `earlier` to `self`, wrapping at 2^32.
    #[must_use]
    pub fn wrapping_since(self, earlier: Timestamp) -> u32 {
        self.0.wrapping_sub(earlier.0)
    }

    /// How far `self` is after `earlier`, or `None` if it is before it:
    /// on the 2^32 circle, a distance of 2^31 or more is backwards.
    #[must_use]
    pub fn after(self, earlier: Timestamp) -> Option<u32> {
        let forward = self.wrapping_since(earlier);
        (forward < 1 << 31).then_some(forward)
    }

    /// The later of the two, on the 2^32 circle.
    #[must_use]
    pub fn later(self, other: Timestamp) -> Timestamp {
        if other.after(self).is_some() {
            other
        } else {
            self
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// An RTMP message type id (RTMP 1.0 §5.4, §7.1; see `rtmp-notes.md` for the
/// corrected table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MessageType(pub u8);

impl MessageType {
    pub const SET_CHUNK_SIZE: MessageType = MessageType(1);
    pub const ABORT: MessageType = MessageType(2);
    pub const ACKNOWLEDGEMENT: MessageType = MessageType(3);
    pub const USER_CONTROL: MessageType = MessageType(4);
    pub const WINDOW_ACK_SIZE: MessageType = MessageType(5);
    pub const SET_PEER_BANDWIDTH: MessageType = MessageType(6);
    pub const AUDIO: MessageType = MessageType(8);
    pub const VIDEO: MessageType = MessageType(9);
    pub const DATA_AMF3: MessageType = MessageType(15);
    pub const SHARED_OBJECT_AMF3: MessageType = MessageType(16);
    pub const COMMAND_AMF3: MessageType = MessageType(17);
    pub const DATA_AMF0: MessageType = MessageType(18);
    pub const SHARED_OBJECT_AMF0: MessageType = MessageType(19);
    pub const COMMAND_AMF0: MessageType = MessageType(20);
    pub const AGGREGATE: MessageType = MessageType(22);

    /// Protocol control (types 1–6, RTMP 1.0 §5.4 and §6.2), which the
    /// chunk layer and the session apply themselves.
    pub fn is_control(self) -> bool {
        matches!(self.0, 1..=6)
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
