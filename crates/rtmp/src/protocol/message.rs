//! Typed RTMP messages (RTMP 1.0 §5.4 protocol control, §6.2 user control,
//! §7.1 command, data, shared object, audio, video and aggregate messages).
//!
//! [`Message::decode`] turns a [`RawMessage`] body into a value and
//! [`Message::encode`] writes one back; audio and video bodies stay
//! [`Bytes`] (shared, never copied), their inside is `flv`'s business.

use bytes::{BufMut, Bytes, BytesMut};

use super::amf::{self, Value};
use super::chunk::RawMessage;
use super::command::{self, Command, Data};
use super::reader::Reader;
use super::{ChunkStreamId, MessageStreamId, MessageType, Timestamp, amf0};
use crate::limits;

/// One RTMP message, typed by its type id.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    SetChunkSize(u32),
    Abort(ChunkStreamId),
    /// Bytes received so far, wrapping at 2^32 (§5.4.3).
    Acknowledgement(u32),
    UserControl(UserControl),
    WindowAckSize(u32),
    SetPeerBandwidth {
        window: u32,
        limit: BandwidthLimit,
    },
    Audio(Bytes),
    Video(Bytes),
    /// Types 18 and 15: `@setDataFrame`, `onMetaData`, `|RtmpSampleAccess` …
    Data(Data),
    /// Types 19 and 16: decoded only far enough to be ignored safely.
    SharedObject {
        name: String,
    },
    /// Types 20 and 17.
    Command(Command),
    /// Type 22: see [`aggregate_parts`].
    Aggregate(Bytes),
    /// A type id RTMP does not define; passed up so the session can count
    /// and ignore it.
    Unknown {
        type_id: MessageType,
        payload: Bytes,
    },
}

/// User control events (§6.2, §7.1.7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserControl {
    StreamBegin(MessageStreamId),
    StreamEof(MessageStreamId),
    StreamDry(MessageStreamId),
    SetBufferLength {
        stream_id: MessageStreamId,
        buffer_ms: u32,
    },
    StreamIsRecorded(MessageStreamId),
    PingRequest(u32),
    PingResponse(u32),
    /// Events outside the spec (e.g. 26/27 SWF verification, 31/32 buffer
    /// empty/ready from FMS), kept so they can be ignored.
    Other {
        event: u16,
        data: Bytes,
    },
}

/// Set Peer Bandwidth limit type (§5.4.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BandwidthLimit {
    Hard,
    Soft,
    Dynamic,
}

/// A message body that does not match its type.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum MessageError {
    #[error("{what} message body of {length} bytes is too short")]
    TooShort { what: &'static str, length: usize },
    #[error("set peer bandwidth limit type {0} is not 0, 1 or 2")]
    BadBandwidthLimit(u8),
    #[error("{what} body: {source}")]
    Amf {
        what: &'static str,
        #[source]
        source: amf::Error,
    },
    #[error("command: {0}")]
    Command(#[from] command::CommandError),
    #[error("aggregate message: sub-message at offset {offset} {problem}")]
    Aggregate {
        offset: usize,
        problem: &'static str,
    },
    #[error("aggregate message holds more than max {max} sub-messages")]
    AggregateTooLong { max: usize },
}

impl Message {
    /// Types a raw message's body. Audio and video bodies are shared, not
    /// copied.
    pub fn decode(raw: &RawMessage, limits: &amf::Limits) -> Result<Message, MessageError> {
        let payload = &raw.payload;
        let mut r = Reader::new(payload);
        let short = |what| MessageError::TooShort {
            what,
            length: payload.len(),
        };
        Ok(match raw.type_id {
            MessageType::SET_CHUNK_SIZE => {
                Message::SetChunkSize(r.u32_be().ok_or(short("set chunk size"))?)
            }
            MessageType::ABORT => Message::Abort(ChunkStreamId(r.u32_be().ok_or(short("abort"))?)),
            MessageType::ACKNOWLEDGEMENT => {
                Message::Acknowledgement(r.u32_be().ok_or(short("acknowledgement"))?)
            }
            MessageType::USER_CONTROL => Message::UserControl(UserControl::decode(payload)?),
            MessageType::WINDOW_ACK_SIZE => {
                Message::WindowAckSize(r.u32_be().ok_or(short("window ack size"))?)
            }
            MessageType::SET_PEER_BANDWIDTH => {
                let window = r.u32_be().ok_or(short("set peer bandwidth"))?;
                let limit = match r.u8().ok_or(short("set peer bandwidth"))? {
                    0 => BandwidthLimit::Hard,
                    1 => BandwidthLimit::Soft,
                    2 => BandwidthLimit::Dynamic,
                    other => return Err(MessageError::BadBandwidthLimit(other)),
                };
                Message::SetPeerBandwidth { window, limit }
            }
            MessageType::AUDIO => Message::Audio(payload.clone()),
            MessageType::VIDEO => Message::Video(payload.clone()),
            MessageType::DATA_AMF0 | MessageType::DATA_AMF3 => {
                let values = decode_amf_body(raw, limits, "data")?;
                Message::Data(Data::from_values(values))
            }
            MessageType::SHARED_OBJECT_AMF0 | MessageType::SHARED_OBJECT_AMF3 => {
                Message::SharedObject {
                    name: decode_shared_object_name(raw)?,
                }
            }
            MessageType::COMMAND_AMF0 | MessageType::COMMAND_AMF3 => {
                let values = decode_amf_body(raw, limits, "command")?;
                Message::Command(Command::from_values(values)?)
            }
            MessageType::AGGREGATE => Message::Aggregate(payload.clone()),
            type_id => Message::Unknown {
                type_id,
                payload: payload.clone(),
            },
        })
    }

    /// The type id this message is sent with. Data and commands go out as
    /// AMF0 (types 18 and 20), which every peer reads.
    pub fn type_id(&self) -> MessageType {
        match self {
            Message::SetChunkSize(_) => MessageType::SET_CHUNK_SIZE,
            Message::Abort(_) => MessageType::ABORT,
            Message::Acknowledgement(_) => MessageType::ACKNOWLEDGEMENT,
            Message::UserControl(_) => MessageType::USER_CONTROL,
            Message::WindowAckSize(_) => MessageType::WINDOW_ACK_SIZE,
            Message::SetPeerBandwidth { .. } => MessageType::SET_PEER_BANDWIDTH,
            Message::Audio(_) => MessageType::AUDIO,
            Message::Video(_) => MessageType::VIDEO,
            Message::Data(_) => MessageType::DATA_AMF0,
            Message::SharedObject { .. } => MessageType::SHARED_OBJECT_AMF0,
            Message::Command(_) => MessageType::COMMAND_AMF0,
            Message::Aggregate(_) => MessageType::AGGREGATE,
            Message::Unknown { type_id, .. } => *type_id,
        }
    }

    /// Appends the body to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            Message::SetChunkSize(v) | Message::Acknowledgement(v) | Message::WindowAckSize(v) => {
                out.put_u32(*v)
            }
            Message::Abort(id) => out.put_u32(id.0),
            Message::UserControl(event) => event.encode(out),
            Message::SetPeerBandwidth { window, limit } => {
                out.put_u32(*window);
                out.put_u8(match limit {
                    BandwidthLimit::Hard => 0,
                    BandwidthLimit::Soft => 1,
                    BandwidthLimit::Dynamic => 2,
                });
            }
            Message::Audio(body)
            | Message::Video(body)
            | Message::Aggregate(body)
            | Message::Unknown { payload: body, .. } => out.put_slice(body),
            Message::Data(data) => {
                for value in data.to_values() {
                    amf0::encode(&value, out);
                }
            }
            Message::SharedObject { name } => encode_shared_object_name(name, out),
            Message::Command(command) => {
                for value in command.to_values() {
                    amf0::encode(&value, out);
                }
            }
        }
    }
}

/// Decodes an AMF0 body, or an AMF3 one (types 15 and 17), which starts
/// with a format byte (0) and then carries AMF0 values that switch to AMF3
/// with the AVM+ marker (AMF0 spec §3.1; FMS and Flash do this).
fn decode_amf_body(
    raw: &RawMessage,
    limits: &amf::Limits,
    what: &'static str,
) -> Result<Vec<Value>, MessageError> {
    let mut body: &[u8] = &raw.payload;
    if matches!(
        raw.type_id,
        MessageType::COMMAND_AMF3 | MessageType::DATA_AMF3
    ) {
        if let Some((0, rest)) = body.split_first() {
            body = rest;
        }
    }
    amf0::decode_all(body, limits).map_err(|source| MessageError::Amf { what, source })
}

/// A shared object message starts with its name (AMF0 string without the
/// marker) for both types 19 and 16.
fn decode_shared_object_name(raw: &RawMessage) -> Result<String, MessageError> {
    let mut body: &[u8] = &raw.payload;
    if raw.type_id == MessageType::SHARED_OBJECT_AMF3 {
        if let Some((0, rest)) = body.split_first() {
            body = rest;
        }
    }
    let mut r = Reader::new(body);
    let short = MessageError::TooShort {
        what: "shared object",
        length: raw.payload.len(),
    };
    let len = r.u16_be().ok_or(short.clone())?;
    let name = r.take(usize::from(len)).ok_or(short)?;
    Ok(String::from_utf8_lossy(name).into_owned())
}

fn encode_shared_object_name(name: &str, out: &mut BytesMut) {
    let bytes = name.as_bytes();
    let len = bytes.len().min(usize::from(u16::MAX));
    out.put_u16(len as u16);
    out.put_slice(bytes.get(..len).unwrap_or_default());
}

impl UserControl {
    const STREAM_BEGIN: u16 = 0;
    const STREAM_EOF: u16 = 1;
    const STREAM_DRY: u16 = 2;
    const SET_BUFFER_LENGTH: u16 = 3;
    const STREAM_IS_RECORDED: u16 = 4;
    const PING_REQUEST: u16 = 6;
    const PING_RESPONSE: u16 = 7;

    fn decode(payload: &Bytes) -> Result<UserControl, MessageError> {
        let mut r = Reader::new(payload);
        let short = || MessageError::TooShort {
            what: "user control",
            length: payload.len(),
        };
        let event = r.u16_be().ok_or_else(short)?;
        let mut word = || r.u32_be().ok_or_else(short);
        Ok(match event {
            Self::STREAM_BEGIN => UserControl::StreamBegin(MessageStreamId(word()?)),
            Self::STREAM_EOF => UserControl::StreamEof(MessageStreamId(word()?)),
            Self::STREAM_DRY => UserControl::StreamDry(MessageStreamId(word()?)),
            Self::SET_BUFFER_LENGTH => UserControl::SetBufferLength {
                stream_id: MessageStreamId(word()?),
                buffer_ms: word()?,
            },
            Self::STREAM_IS_RECORDED => UserControl::StreamIsRecorded(MessageStreamId(word()?)),
            Self::PING_REQUEST => UserControl::PingRequest(word()?),
            Self::PING_RESPONSE => UserControl::PingResponse(word()?),
            event => UserControl::Other {
                event,
                data: payload.slice(2..),
            },
        })
    }

    fn encode(&self, out: &mut BytesMut) {
        let (event, words): (u16, [Option<u32>; 2]) = match self {
            UserControl::StreamBegin(id) => (Self::STREAM_BEGIN, [Some(id.0), None]),
            UserControl::StreamEof(id) => (Self::STREAM_EOF, [Some(id.0), None]),
            UserControl::StreamDry(id) => (Self::STREAM_DRY, [Some(id.0), None]),
            UserControl::SetBufferLength {
                stream_id,
                buffer_ms,
            } => (
                Self::SET_BUFFER_LENGTH,
                [Some(stream_id.0), Some(*buffer_ms)],
            ),
            UserControl::StreamIsRecorded(id) => (Self::STREAM_IS_RECORDED, [Some(id.0), None]),
            UserControl::PingRequest(t) => (Self::PING_REQUEST, [Some(*t), None]),
            UserControl::PingResponse(t) => (Self::PING_RESPONSE, [Some(*t), None]),
            UserControl::Other { event, data } => {
                out.put_u16(*event);
                out.put_slice(data);
                return;
            }
        };
        out.put_u16(event);
        for word in words.into_iter().flatten() {
            out.put_u32(word);
        }
    }
}

/// One message inside an aggregate, with its absolute timestamp.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AggregatePart {
    pub type_id: MessageType,
    pub timestamp: Timestamp,
    pub payload: Bytes,
}

/// FLV tag header: type, 24-bit size, 24-bit timestamp + 8-bit extension,
/// 24-bit stream id.
const TAG_HEADER_LEN: usize = 11;

/// Splits an aggregate message (type 22) into its messages: a run of FLV
/// tags, each followed by a 4-byte back pointer. Tag timestamps are
/// relative: the first tag's maps to the aggregate's own timestamp
/// (FMS/Wowza behaviour; RTMP 1.0 §7.1.6). Bodies are shared, not copied.
/// A part past [`limits::AGGREGATE_MESSAGES_MAX`] is an error, so one
/// message cannot become an unbounded run of events.
pub fn aggregate_parts(
    timestamp: Timestamp,
    payload: &Bytes,
) -> impl Iterator<Item = Result<AggregatePart, MessageError>> + '_ {
    let mut offset = 0usize;
    let mut first_tag_ts: Option<u32> = None;
    let mut failed = false;
    let mut parts = 0usize;
    std::iter::from_fn(move || {
        if failed || offset >= payload.len() {
            return None;
        }
        parts += 1;
        let part = if parts > limits::AGGREGATE_MESSAGES_MAX {
            Err(MessageError::AggregateTooLong {
                max: limits::AGGREGATE_MESSAGES_MAX,
            })
        } else {
            next_aggregate_part(payload, &mut offset, &mut first_tag_ts, timestamp)
        };
        failed = part.is_err();
        Some(part)
    })
}

fn next_aggregate_part(
    payload: &Bytes,
    offset: &mut usize,
    first_tag_ts: &mut Option<u32>,
    timestamp: Timestamp,
) -> Result<AggregatePart, MessageError> {
    let at = *offset;
    let problem = |problem| MessageError::Aggregate {
        offset: at,
        problem,
    };
    let mut r = Reader::new(payload.get(at..).unwrap_or_default());
    let type_id = MessageType(r.u8().ok_or(problem("has a truncated tag header"))?);
    let size = r.u24_be().ok_or(problem("has a truncated tag header"))? as usize;
    let ts_low = r.u24_be().ok_or(problem("has a truncated tag header"))?;
    let ts_high = r.u8().ok_or(problem("has a truncated tag header"))?;
    r.take(3).ok_or(problem("has a truncated tag header"))?;
    let tag_ts = (u32::from(ts_high) << 24) | ts_low;
    let body_start = at + TAG_HEADER_LEN;
    let body_end = body_start
        .checked_add(size)
        .filter(|end| *end <= payload.len())
        .ok_or(problem("claims more bytes than the aggregate holds"))?;
    // The back pointer is not needed to split; a missing last one is
    // tolerated (some encoders omit it).
    *offset = body_end.saturating_add(4);
    let first = *first_tag_ts.get_or_insert(tag_ts);
    Ok(AggregatePart {
        type_id,
        timestamp: timestamp.wrapping_add(tag_ts.wrapping_sub(first)),
        payload: payload.slice(body_start..body_end),
    })
}

/// One FLV tag with its back pointer, as aggregates and FLV files hold
/// them (tests and the load generator build both).
pub fn flv_tag(type_id: u8, timestamp: u32, body: &[u8]) -> Vec<u8> {
    let mut tag = vec![type_id];
    tag.extend(&(body.len() as u32).to_be_bytes()[1..]);
    tag.extend(&timestamp.to_be_bytes()[1..]);
    tag.push((timestamp >> 24) as u8);
    tag.extend([0, 0, 0]);
    tag.extend(body);
    tag.extend((TAG_HEADER_LEN as u32 + body.len() as u32).to_be_bytes());
    tag
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(type_id: u8, payload: &[u8]) -> RawMessage {
        RawMessage {
            chunk_stream: ChunkStreamId(2),
            timestamp: Timestamp(0),
            type_id: MessageType(type_id),
            stream_id: MessageStreamId(0),
            payload: Bytes::copy_from_slice(payload),
        }
    }

    fn decode(type_id: u8, payload: &[u8]) -> Result<Message, MessageError> {
        Message::decode(&raw(type_id, payload), &amf::Limits::default())
    }

    fn round_trip(message: Message) {
        let mut body = BytesMut::new();
        message.encode(&mut body);
        let decoded = decode(message.type_id().0, &body).expect("decodable");
        assert_eq!(decoded, message);
    }

    #[test]
    fn control_messages_decode_from_spec_bytes() {
        assert_eq!(
            decode(1, &[0, 0, 0x10, 0]).expect("valid"),
            Message::SetChunkSize(4096)
        );
        assert_eq!(
            decode(2, &[0, 0, 0, 6]).expect("valid"),
            Message::Abort(ChunkStreamId(6))
        );
        assert_eq!(
            decode(3, &[0, 0x26, 0x25, 0xA0]).expect("valid"),
            Message::Acknowledgement(2_500_000)
        );
        assert_eq!(
            decode(5, &[0, 0x26, 0x25, 0xA0]).expect("valid"),
            Message::WindowAckSize(2_500_000)
        );
        assert_eq!(
            decode(6, &[0, 0x26, 0x25, 0xA0, 2]).expect("valid"),
            Message::SetPeerBandwidth {
                window: 2_500_000,
                limit: BandwidthLimit::Dynamic
            }
        );
    }

    #[test]
    fn user_control_events_decode_and_round_trip() {
        assert_eq!(
            decode(4, &[0, 3, 0, 0, 0, 1, 0, 0, 0x0B, 0xB8]).expect("valid"),
            Message::UserControl(UserControl::SetBufferLength {
                stream_id: MessageStreamId(1),
                buffer_ms: 3000
            })
        );
        for event in [
            UserControl::StreamBegin(MessageStreamId(1)),
            UserControl::StreamEof(MessageStreamId(1)),
            UserControl::StreamDry(MessageStreamId(2)),
            UserControl::StreamIsRecorded(MessageStreamId(3)),
            UserControl::PingRequest(12345),
            UserControl::PingResponse(12345),
            UserControl::Other {
                event: 31,
                data: Bytes::from_static(&[0, 0, 0, 1]),
            },
        ] {
            round_trip(Message::UserControl(event));
        }
    }

    #[test]
    fn short_control_bodies_are_typed_errors() {
        assert_eq!(
            decode(5, &[0, 1]),
            Err(MessageError::TooShort {
                what: "window ack size",
                length: 2
            })
        );
        assert!(matches!(
            decode(4, &[0, 6, 0]),
            Err(MessageError::TooShort { .. })
        ));
        assert_eq!(
            decode(6, &[0, 0, 0, 1, 9]),
            Err(MessageError::BadBandwidthLimit(9))
        );
    }

    #[test]
    fn unknown_types_pass_through_and_shared_objects_are_named() {
        assert_eq!(
            decode(7, &[1, 2]).expect("valid"),
            Message::Unknown {
                type_id: MessageType(7),
                payload: Bytes::from_static(&[1, 2])
            }
        );
        let mut so = vec![0, 3];
        so.extend(b"abc");
        so.extend([0; 12]);
        assert_eq!(
            decode(19, &so).expect("valid"),
            Message::SharedObject { name: "abc".into() }
        );
        let mut so3 = vec![0];
        so3.extend(&so);
        assert_eq!(
            decode(16, &so3).expect("valid"),
            Message::SharedObject { name: "abc".into() }
        );
    }

    use super::flv_tag as tag;

    #[test]
    fn aggregate_splits_into_parts_with_timestamps_relative_to_the_first() {
        let mut agg = tag(9, 0x0100_0000, &[0x17, 1, 2]);
        agg.extend(tag(8, 0x0100_0015, &[0xAF, 1]));
        agg.extend(tag(9, 0x0100_0021, &[0x27, 1]));
        let payload = Bytes::from(agg);
        let parts: Vec<_> = aggregate_parts(Timestamp(5000), &payload)
            .collect::<Result<_, _>>()
            .expect("valid");
        let summary: Vec<_> = parts
            .iter()
            .map(|p| (p.type_id.0, p.timestamp.0, p.payload.len()))
            .collect();
        assert_eq!(summary, vec![(9, 5000, 3), (8, 5021, 2), (9, 5033, 2)]);
    }

    #[test]
    fn aggregate_with_an_oversized_tag_ends_with_an_error() {
        let mut agg = tag(9, 0, &[0x17, 1, 2]);
        let mut bad = tag(9, 10, &[1; 4]);
        bad[3] = 0xFF; // size far past the end
        agg.extend(bad);
        let payload = Bytes::from(agg);
        let parts: Vec<_> = aggregate_parts(Timestamp(0), &payload).collect();
        assert_eq!(parts.len(), 2);
        assert!(parts[0].is_ok());
        assert_eq!(
            parts[1],
            Err(MessageError::Aggregate {
                offset: 18,
                problem: "claims more bytes than the aggregate holds"
            })
        );
    }

    #[test]
    fn aggregate_past_the_sub_message_bound_ends_with_an_error() {
        let max = limits::AGGREGATE_MESSAGES_MAX;
        let empty_tags = |n: usize| Bytes::from(tag(8, 0, &[]).repeat(n));
        let at_max = empty_tags(max);
        assert!(aggregate_parts(Timestamp(0), &at_max).all(|p| p.is_ok()));
        assert_eq!(aggregate_parts(Timestamp(0), &at_max).count(), max);
        // 8 MiB of empty tags would be ~560 000; the split stops after one
        // past the bound.
        let flood = empty_tags(100_000);
        let parts: Vec<_> = aggregate_parts(Timestamp(0), &flood).collect();
        assert_eq!(parts.len(), max + 1);
        assert_eq!(parts[max], Err(MessageError::AggregateTooLong { max }));
    }

    #[test]
    fn aggregate_tolerates_a_missing_last_back_pointer() {
        let mut agg = tag(8, 7, &[0xAF, 1]);
        agg.truncate(agg.len() - 4);
        let payload = Bytes::from(agg);
        let parts: Vec<_> = aggregate_parts(Timestamp(0), &payload).collect();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].as_ref().map(|p| p.payload.len()), Ok(2));
    }
}
