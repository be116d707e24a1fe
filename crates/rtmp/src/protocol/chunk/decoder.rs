//! Chunk stream decoding (RTMP 1.0 §5.3.1, §5.4.1–2).

use bytes::{Buf, Bytes, BytesMut};

use super::header::{self, EXTENDED_TIMESTAMP, MESSAGE_HEADER_LEN};
use crate::limits;
use crate::protocol::reader::Reader;
use crate::protocol::{ChunkStreamId, MessageStreamId, MessageType, Timestamp};

/// A whole message, reassembled from its chunks; the body is not yet typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawMessage {
    pub chunk_stream: ChunkStreamId,
    pub timestamp: Timestamp,
    pub type_id: MessageType,
    pub stream_id: MessageStreamId,
    pub payload: Bytes,
}

/// Bounds on what one peer's chunk stream can make us hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest audio, video or aggregate message accepted; other types
    /// have smaller bounds ([`Limits::size_max`]).
    pub message_size_max: u32,
    /// Bytes of partially received messages held across all chunk streams.
    pub partial_bytes_max: u32,
    /// Chunk streams in use at once.
    pub chunk_streams_max: usize,
}

impl Limits {
    /// What a message of this type is called in errors, and the longest
    /// one accepted: only audio, video and aggregates may be as long as
    /// [`Limits::message_size_max`]; protocol control, commands, data and
    /// everything else have small bounds of their own (see `limits`).
    pub fn size_max(&self, type_id: MessageType) -> (&'static str, u32) {
        let (kind, max) = match type_id {
            MessageType::AUDIO => ("audio", u32::MAX),
            MessageType::VIDEO => ("video", u32::MAX),
            MessageType::AGGREGATE => ("aggregate", u32::MAX),
            control if control.is_control() => ("control", limits::CONTROL_MESSAGE_SIZE_MAX),
            MessageType::COMMAND_AMF0 | MessageType::COMMAND_AMF3 => {
                ("command", limits::COMMAND_MESSAGE_SIZE_MAX)
            }
            MessageType::DATA_AMF0 | MessageType::DATA_AMF3 => {
                ("data", limits::DATA_MESSAGE_SIZE_MAX)
            }
            MessageType::SHARED_OBJECT_AMF0 | MessageType::SHARED_OBJECT_AMF3 => {
                ("shared object", limits::COMMAND_MESSAGE_SIZE_MAX)
            }
            _ => ("unknown type", limits::COMMAND_MESSAGE_SIZE_MAX),
        };
        (kind, max.min(self.message_size_max))
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            message_size_max: limits::MESSAGE_SIZE_MAX_DEFAULT,
            partial_bytes_max: limits::PARTIAL_BYTES_MAX_DEFAULT,
            chunk_streams_max: limits::CHUNK_STREAMS_MAX,
        }
    }
}

/// Malformed or over-limit chunk input. Each names the chunk stream and the
/// bound; the connection cannot continue after any of them.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error(
        "{kind} message (type {}) length {length} on chunk stream {chunk_stream} exceeds max {max}",
        type_id.0
    )]
    MessageTooLarge {
        chunk_stream: ChunkStreamId,
        kind: &'static str,
        type_id: MessageType,
        length: u32,
        max: u32,
    },
    #[error(
        "chunk stream {chunk_stream}: fmt {fmt} chunk with no previous header on this chunk stream"
    )]
    NoPreviousHeader {
        chunk_stream: ChunkStreamId,
        fmt: u8,
    },
    #[error("chunk stream {chunk_stream}: fmt {fmt} header arrived while a message was incomplete")]
    HeaderMidMessage {
        chunk_stream: ChunkStreamId,
        fmt: u8,
    },
    #[error("chunk stream {chunk_stream}: more than max {max} chunk streams in use")]
    TooManyChunkStreams {
        chunk_stream: ChunkStreamId,
        max: usize,
    },
    #[error("chunk stream {chunk_stream}: partially received messages exceed max {max} bytes")]
    PartialBytesExceeded {
        chunk_stream: ChunkStreamId,
        max: u32,
    },
    #[error("chunk stream {chunk_stream}: set chunk size {size} outside 1..=2147483647")]
    BadChunkSize {
        chunk_stream: ChunkStreamId,
        size: u32,
    },
    #[error("chunk stream {chunk_stream}: {what} message of {length} bytes is shorter than 4")]
    ControlTooShort {
        chunk_stream: ChunkStreamId,
        what: &'static str,
        length: usize,
    },
}

/// Decodes an incoming chunk stream into messages.
#[derive(Debug)]
pub struct Decoder {
    limits: Limits,
    /// Keep only this many leading bytes of audio and video bodies (a load
    /// generator that reads timestamps and frame headers, not pictures).
    media_prefix: Option<usize>,
    chunk_size: u32,
    streams: Vec<ChunkStream>,
    /// Sum of `partial.len()` over `streams`.
    partial_bytes: usize,
    /// Payload bytes of the current chunk still to read, and whose they are.
    chunk_left: u32,
    current: usize,
}

/// The last header seen on a chunk stream; fmt 1/2/3 chunks inherit from it.
#[derive(Clone, Copy, Debug)]
struct Header {
    timestamp: Timestamp,
    /// The timestamp field as sent (after extension): absolute for fmt 0,
    /// the delta for fmt 1/2. A fmt 3 chunk that starts a new message adds
    /// it again (§5.3.1.2.4; ffmpeg and SRS read fmt 0 the same way).
    field: u32,
    /// The 24-bit field was 0xFFFFFF, so fmt 3 chunks carry an extended
    /// timestamp too.
    extended: bool,
    length: u32,
    type_id: MessageType,
    stream_id: MessageStreamId,
}

#[derive(Debug)]
struct ChunkStream {
    id: ChunkStreamId,
    header: Header,
    /// Bytes of the message being assembled (only its prefix, when
    /// skimming media).
    partial: BytesMut,
    /// Bytes of the message received so far, kept or not.
    received: u32,
    /// A message is being assembled (it may have received no bytes yet).
    in_progress: bool,
}

impl ChunkStream {
    fn message(&self, payload: Bytes) -> RawMessage {
        RawMessage {
            chunk_stream: self.id,
            timestamp: self.header.timestamp,
            type_id: self.header.type_id,
            stream_id: self.header.stream_id,
            payload,
        }
    }
}

/// What a chunk header says, before any state changes.
struct ChunkStart {
    header_len: usize,
    chunk_stream: ChunkStreamId,
    /// Index into `streams`, or `None` for a chunk stream seen first now.
    index: Option<usize>,
    header: Header,
    continuation: bool,
}

impl Decoder {
    pub fn new(limits: Limits) -> Decoder {
        Decoder {
            limits,
            media_prefix: None,
            chunk_size: limits::CHUNK_SIZE_INITIAL,
            streams: Vec::new(),
            partial_bytes: 0,
            chunk_left: 0,
            current: 0,
        }
    }

    /// A decoder that keeps only the first `prefix` bytes of each audio and
    /// video body (the rest is read and dropped); other messages are whole.
    pub fn skimming(limits: Limits, prefix: usize) -> Decoder {
        Decoder {
            media_prefix: Some(prefix),
            ..Decoder::new(limits)
        }
    }

    /// The chunk size the peer is sending with.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Bytes held in partially received messages.
    pub fn partial_bytes(&self) -> usize {
        self.partial_bytes
    }

    /// Changes [`Limits::message_size_max`] for messages that start from
    /// now on (a server holds a peer that has not connected to less).
    pub fn set_message_size_max(&mut self, max: u32) {
        self.limits.message_size_max = max;
    }

    /// Takes chunks from the front of `input` and returns the next complete
    /// message, or `None` once `input` holds no more complete chunks (what
    /// is left of a chunk stays buffered here or in `input`). Call until
    /// `None`.
    pub fn decode(&mut self, input: &mut BytesMut) -> Result<Option<RawMessage>, DecodeError> {
        loop {
            if self.chunk_left > 0 {
                match self.read_payload(input)? {
                    None => return Ok(None),
                    Some(None) => continue,
                    Some(message) => return Ok(message),
                }
            }
            let Some(start) = self.parse_chunk_start(input)? else {
                return Ok(None);
            };
            if let Some(message) = self.begin_chunk(start, input)? {
                return Ok(Some(message));
            }
        }
    }

    /// Reads what is there of the current chunk's payload. `Ok(None)`: the
    /// input ran out; `Ok(Some(None))`: the chunk is done but not the message.
    #[allow(clippy::option_option)]
    fn read_payload(
        &mut self,
        input: &mut BytesMut,
    ) -> Result<Option<Option<RawMessage>>, DecodeError> {
        let take = usize::try_from(self.chunk_left)
            .unwrap_or(usize::MAX)
            .min(input.len());
        if take == 0 {
            return Ok(None);
        }
        let Some(stream) = self.streams.get_mut(self.current) else {
            debug_assert!(false, "current chunk stream index out of range");
            return Ok(None);
        };
        let keep = match kept_prefix(self.media_prefix, stream.header.type_id) {
            Some(prefix) => take.min(prefix.saturating_sub(stream.partial.len())),
            None => take,
        };
        let projected = self.partial_bytes.saturating_add(keep);
        if projected > self.limits.partial_bytes_max as usize {
            return Err(DecodeError::PartialBytesExceeded {
                chunk_stream: stream.id,
                max: self.limits.partial_bytes_max,
            });
        }
        stream
            .partial
            .extend_from_slice(input.get(..keep).unwrap_or_default());
        input.advance(take);
        self.partial_bytes = projected;
        // `take` <= chunk_left, a u32.
        self.chunk_left -= take as u32;
        stream.received = stream.received.saturating_add(take as u32);
        if self.chunk_left > 0 || stream.received < stream.header.length {
            return Ok(Some(None));
        }
        self.finish(self.current).map(Some)
    }

    /// Parses the chunk header at the front of `input` without consuming it.
    fn parse_chunk_start(&self, input: &[u8]) -> Result<Option<ChunkStart>, DecodeError> {
        let Some(basic) = header::decode_basic(input) else {
            return Ok(None);
        };
        let chunk_stream = basic.chunk_stream;
        let index = self.streams.iter().position(|s| s.id == chunk_stream);
        let known = index.and_then(|i| self.streams.get(i));
        let mut r = Reader::new(input);
        let _ = r.take(basic.len);
        let fmt = basic.fmt;
        let fmt_index = usize::from(fmt);
        if r.remaining() < MESSAGE_HEADER_LEN.get(fmt_index).copied().unwrap_or(0) {
            return Ok(None);
        }
        let in_progress = known.is_some_and(|s| s.in_progress);
        if fmt < 3 && in_progress {
            return Err(DecodeError::HeaderMidMessage { chunk_stream, fmt });
        }
        let previous = match (fmt, known) {
            (0, _) => None,
            (_, Some(s)) => Some(s.header),
            (_, None) => return Err(DecodeError::NoPreviousHeader { chunk_stream, fmt }),
        };
        if index.is_none() && self.streams.len() >= self.limits.chunk_streams_max {
            return Err(DecodeError::TooManyChunkStreams {
                chunk_stream,
                max: self.limits.chunk_streams_max,
            });
        }
        let Some((header, continuation)) = read_message_header(fmt, previous, in_progress, &mut r)
        else {
            return Ok(None);
        };
        // Every header that starts a message carries or inherits a length
        // and a type checked here, so no message is reassembled past the
        // bound of its type.
        let (kind, max) = self.limits.size_max(header.type_id);
        if header.length > max {
            return Err(DecodeError::MessageTooLarge {
                chunk_stream,
                kind,
                type_id: header.type_id,
                length: header.length,
                max,
            });
        }
        Ok(Some(ChunkStart {
            header_len: r.offset(),
            chunk_stream,
            index,
            header,
            continuation,
        }))
    }

    /// Commits a parsed chunk header. Returns a message when the chunk
    /// completes one without copying (the whole message in one chunk, all
    /// in `input`), or a zero-length message.
    fn begin_chunk(
        &mut self,
        start: ChunkStart,
        input: &mut BytesMut,
    ) -> Result<Option<RawMessage>, DecodeError> {
        input.advance(start.header_len);
        let index = match start.index {
            Some(i) => i,
            None => {
                self.streams.push(ChunkStream {
                    id: start.chunk_stream,
                    header: start.header,
                    partial: BytesMut::new(),
                    received: 0,
                    in_progress: false,
                });
                self.streams.len() - 1
            }
        };
        let Some(stream) = self.streams.get_mut(index) else {
            debug_assert!(false, "chunk stream index out of range");
            return Ok(None);
        };
        stream.header = start.header;
        let length = start.header.length;
        if !start.continuation {
            stream.received = 0;
        }
        let chunk_len = self.chunk_size.min(length.saturating_sub(stream.received));
        if !start.continuation {
            stream.in_progress = true;
            // Whole message in this chunk and already here: hand out the
            // input's own bytes, no copy.
            if chunk_len == length && input.len() >= length as usize {
                let mut payload = input.split_to(length as usize).freeze();
                if let Some(prefix) = kept_prefix(self.media_prefix, stream.header.type_id) {
                    payload.truncate(prefix);
                }
                stream.in_progress = false;
                let message = stream.message(payload);
                return self.apply_control(message).map(Some);
            }
            // Grow with what arrives rather than trusting the length field,
            // so a peer that claims large messages and sends little costs
            // little (limits::PARTIAL_BYTES_MAX_DEFAULT caps the total).
            stream.partial.reserve((length as usize).min(64 * 1024));
        }
        self.current = index;
        self.chunk_left = chunk_len;
        Ok(None)
    }

    /// Completes the message on `streams[index]`.
    fn finish(&mut self, index: usize) -> Result<Option<RawMessage>, DecodeError> {
        let Some(stream) = self.streams.get_mut(index) else {
            debug_assert!(false, "chunk stream index out of range");
            return Ok(None);
        };
        let payload = stream.partial.split().freeze();
        stream.in_progress = false;
        stream.received = 0;
        let message = stream.message(payload);
        self.partial_bytes = self.partial_bytes.saturating_sub(message.payload.len());
        self.apply_control(message).map(Some)
    }

    /// Applies Set Chunk Size and Abort, which take effect from the next
    /// chunk on (§5.4.1, §5.4.2), and passes every message through.
    fn apply_control(&mut self, message: RawMessage) -> Result<RawMessage, DecodeError> {
        match message.type_id {
            MessageType::SET_CHUNK_SIZE => {
                let size = control_u32(&message, "set chunk size")?;
                if !(limits::CHUNK_SIZE_MIN..=limits::CHUNK_SIZE_MAX).contains(&size) {
                    return Err(DecodeError::BadChunkSize {
                        chunk_stream: message.chunk_stream,
                        size,
                    });
                }
                self.chunk_size = size;
            }
            MessageType::ABORT => {
                let aborted = ChunkStreamId(control_u32(&message, "abort")?);
                self.abort(aborted);
            }
            _ => {}
        }
        Ok(message)
    }

    /// Discards the partial message on `chunk_stream`, if any (§5.4.2).
    fn abort(&mut self, chunk_stream: ChunkStreamId) {
        if let Some(stream) = self.streams.iter_mut().find(|s| s.id == chunk_stream) {
            self.partial_bytes = self.partial_bytes.saturating_sub(stream.partial.len());
            stream.partial.clear();
            stream.received = 0;
            stream.in_progress = false;
        }
    }
}

/// Reads the message header after a basic header of `fmt`, filling in what
/// fmt 1/2/3 inherit from `previous`. Returns the header for this chunk and
/// whether the chunk continues the message in progress; `None` until enough
/// bytes are there.
fn read_message_header(
    fmt: u8,
    previous: Option<Header>,
    in_progress: bool,
    r: &mut Reader<'_>,
) -> Option<(Header, bool)> {
    let Some(previous) = previous else {
        // fmt 0: the full header.
        let field = r.u24_be()?;
        let length = r.u24_be()?;
        let type_id = MessageType(r.u8()?);
        let stream_id = MessageStreamId(r.u32_le()?);
        let (field, extended) = extend(field, r)?;
        let header = Header {
            timestamp: Timestamp(field),
            field,
            extended,
            length,
            type_id,
            stream_id,
        };
        return Some((header, false));
    };
    let mut header = previous;
    match fmt {
        1 | 2 => {
            let field = r.u24_be()?;
            if fmt == 1 {
                header.length = r.u24_be()?;
                header.type_id = MessageType(r.u8()?);
            }
            let (field, extended) = extend(field, r)?;
            header.field = field;
            header.extended = extended;
        }
        _ if in_progress => {
            // A continuation chunk repeats the extended timestamp; some
            // peers (old librtmp) omit it, so take the 4 bytes only when
            // they match, as librtmp-based servers do.
            if header.extended && r.rest().get(..4)? == header.field.to_be_bytes() {
                r.u32_be()?;
            }
            return Some((header, true));
        }
        _ => {
            // fmt 3 starting a new message: same header and delta again.
            if header.extended {
                header.field = r.u32_be()?;
            }
        }
    }
    header.timestamp = previous.timestamp.wrapping_add(header.field);
    Some((header, false))
}

/// Resolves a 24-bit timestamp field, reading the extended timestamp when
/// the field says one follows.
fn extend(field: u32, r: &mut Reader<'_>) -> Option<(u32, bool)> {
    if field == EXTENDED_TIMESTAMP {
        Some((r.u32_be()?, true))
    } else {
        Some((field, false))
    }
}

/// How much of a body of `type_id` to keep when skimming media.
fn kept_prefix(media_prefix: Option<usize>, type_id: MessageType) -> Option<usize> {
    media_prefix.filter(|_| matches!(type_id, MessageType::AUDIO | MessageType::VIDEO))
}

/// The u32 at the start of a protocol control message (§5.4).
fn control_u32(message: &RawMessage, what: &'static str) -> Result<u32, DecodeError> {
    Reader::new(&message.payload)
        .u32_be()
        .ok_or(DecodeError::ControlTooShort {
            chunk_stream: message.chunk_stream,
            what,
            length: message.payload.len(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(decoder: &mut Decoder, bytes: &[u8]) -> Result<Vec<RawMessage>, DecodeError> {
        let mut input = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(m) = decoder.decode(&mut input)? {
            out.push(m);
        }
        Ok(out)
    }

    fn decode_split(bytes: &[u8], split: usize) -> Vec<RawMessage> {
        let mut decoder = Decoder::new(Limits::default());
        let mut input = BytesMut::new();
        let mut out = Vec::new();
        for piece in bytes.chunks(split) {
            input.extend_from_slice(piece);
            while let Some(m) = decoder.decode(&mut input).expect("valid input") {
                out.push(m);
            }
        }
        assert!(input.is_empty(), "all input consumed");
        out
    }

    fn summary(messages: &[RawMessage]) -> Vec<(u32, u32, u8, u32, usize)> {
        messages
            .iter()
            .map(|m| {
                (
                    m.chunk_stream.0,
                    m.timestamp.0,
                    m.type_id.0,
                    m.stream_id.0,
                    m.payload.len(),
                )
            })
            .collect()
    }

    /// RTMP 1.0 §5.3.2.1, example 1: four audio messages, the first with a
    /// full header, then a delta, then two header-less chunks.
    fn spec_example_1() -> Vec<u8> {
        let mut b = vec![
            0x03, 0x00, 0x03, 0xE8, 0x00, 0x00, 0x20, 0x08, 0x39, 0x30, 0, 0,
        ];
        b.extend([0xAA; 32]);
        b.extend([0x83, 0x00, 0x00, 0x14]);
        b.extend([0xBB; 32]);
        b.push(0xC3);
        b.extend([0xCC; 32]);
        b.push(0xC3);
        b.extend([0xDD; 32]);
        b
    }

    #[test]
    fn decoder_reads_spec_example_1_with_deltas_and_fmt3_messages() {
        let messages =
            decode_all(&mut Decoder::new(Limits::default()), &spec_example_1()).expect("valid");
        assert_eq!(
            summary(&messages),
            vec![
                (3, 1000, 8, 12345, 32),
                (3, 1020, 8, 12345, 32),
                (3, 1040, 8, 12345, 32),
                (3, 1060, 8, 12345, 32),
            ]
        );
        assert_eq!(&messages[2].payload[..], &[0xCC; 32]);
    }

    /// §5.3.2.2, example 2: a 307-byte video message at chunk size 128.
    fn spec_example_2() -> Vec<u8> {
        let mut b = vec![
            0x04, 0x00, 0x03, 0xE8, 0x00, 0x01, 0x33, 0x09, 0x39, 0x30, 0, 0,
        ];
        let payload: Vec<u8> = (0..307u32).map(|i| i as u8).collect();
        b.extend(&payload[..128]);
        b.push(0xC4);
        b.extend(&payload[128..256]);
        b.push(0xC4);
        b.extend(&payload[256..]);
        b
    }

    #[test]
    fn decoder_reassembles_spec_example_2_across_continuation_chunks() {
        let messages =
            decode_all(&mut Decoder::new(Limits::default()), &spec_example_2()).expect("valid");
        assert_eq!(summary(&messages), vec![(4, 1000, 9, 12345, 307)]);
        let expected: Vec<u8> = (0..307u32).map(|i| i as u8).collect();
        assert_eq!(&messages[0].payload[..], &expected[..]);
    }

    #[test]
    fn decoder_gives_the_same_messages_for_every_split_of_the_input() {
        let mut bytes = spec_example_1();
        bytes.extend(spec_example_2());
        let whole = decode_split(&bytes, bytes.len());
        for split in 1..bytes.len() {
            assert_eq!(decode_split(&bytes, split), whole, "split {split}");
        }
    }

    #[test]
    fn decoder_reads_extended_timestamps_on_fmt0_and_continuations() {
        // fmt 0 with ts 0x01000000 (extended), 200 bytes at chunk size 128:
        // the continuation repeats the extended timestamp.
        let mut b = vec![0x06, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0xC8, 0x09, 1, 0, 0, 0];
        b.extend([0x01, 0x00, 0x00, 0x00]);
        b.extend([0x11; 128]);
        b.push(0xC6);
        b.extend([0x01, 0x00, 0x00, 0x00]);
        b.extend([0x22; 72]);
        let messages = decode_all(&mut Decoder::new(Limits::default()), &b).expect("valid");
        assert_eq!(summary(&messages), vec![(6, 0x0100_0000, 9, 1, 200)]);
        assert_eq!(&messages[0].payload[128..], &[0x22; 72]);
    }

    #[test]
    fn decoder_accepts_continuations_that_omit_the_extended_timestamp() {
        let mut b = vec![0x06, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0xC8, 0x09, 1, 0, 0, 0];
        b.extend([0x01, 0x00, 0x00, 0x00]);
        b.extend([0x11; 128]);
        b.push(0xC6);
        b.extend([0x22; 72]);
        let messages = decode_all(&mut Decoder::new(Limits::default()), &b).expect("valid");
        assert_eq!(summary(&messages), vec![(6, 0x0100_0000, 9, 1, 200)]);
        assert_eq!(&messages[0].payload[128..], &[0x22; 72]);
    }

    #[test]
    fn decoder_wraps_timestamps_at_2_pow_32() {
        // fmt 0 at 0xFFFFFFF0 (extended), then fmt 2 with delta 0x20.
        let mut b = vec![0x04, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x01, 0x09, 1, 0, 0, 0];
        b.extend([0xFF, 0xFF, 0xFF, 0xF0, 0xAB]);
        b.extend([0x84, 0x00, 0x00, 0x20, 0xCD]);
        let messages = decode_all(&mut Decoder::new(Limits::default()), &b).expect("valid");
        assert_eq!(messages[0].timestamp, Timestamp(0xFFFF_FFF0));
        assert_eq!(messages[1].timestamp, Timestamp(0x10));
    }

    #[test]
    fn decoder_applies_set_chunk_size_from_the_next_chunk_even_mid_message() {
        let mut b = Vec::new();
        // Video message of 300 bytes on chunk stream 6: first 128 bytes.
        b.extend([0x06, 0, 0, 0, 0x00, 0x01, 0x2C, 0x09, 1, 0, 0, 0]);
        b.extend([0x55; 128]);
        // Set Chunk Size 4096 on chunk stream 2, interleaved.
        b.extend([
            0x02, 0, 0, 0, 0, 0, 4, 0x01, 0, 0, 0, 0, 0x00, 0x00, 0x10, 0x00,
        ]);
        // The rest of the video message, now in one 172-byte chunk.
        b.push(0xC6);
        b.extend([0x66; 172]);
        let mut decoder = Decoder::new(Limits::default());
        let messages = decode_all(&mut decoder, &b).expect("valid");
        assert_eq!(summary(&messages), vec![(2, 0, 1, 0, 4), (6, 0, 9, 1, 300)]);
        assert_eq!(decoder.chunk_size(), 4096);
    }

    #[test]
    fn decoder_abort_discards_the_partial_message() {
        let mut b = Vec::new();
        b.extend([0x06, 0, 0, 0, 0x00, 0x01, 0x2C, 0x09, 1, 0, 0, 0]);
        b.extend([0x55; 128]);
        // Abort chunk stream 6.
        b.extend([0x02, 0, 0, 0, 0, 0, 4, 0x02, 0, 0, 0, 0, 0, 0, 0, 6]);
        // A new, short message on chunk stream 6 (fmt 0).
        b.extend([
            0x06, 0, 0, 0x21, 0x00, 0x00, 0x02, 0x09, 1, 0, 0, 0, 0xAB, 0xCD,
        ]);
        let mut decoder = Decoder::new(Limits::default());
        let messages = decode_all(&mut decoder, &b).expect("valid");
        assert_eq!(
            summary(&messages),
            vec![(2, 0, 2, 0, 4), (6, 0x21, 9, 1, 2)]
        );
        assert_eq!(&messages[1].payload[..], &[0xAB, 0xCD]);
        assert_eq!(decoder.partial_bytes(), 0);
    }

    #[test]
    fn decoder_reads_two_and_three_byte_basic_headers() {
        let mut b = vec![0x00, 0x00, 0, 0, 1, 0, 0, 1, 0x08, 0, 0, 0, 0, 0x01];
        b.extend([0x01, 0xFF, 0xFF, 0, 0, 2, 0, 0, 1, 0x08, 0, 0, 0, 0, 0x02]);
        let messages = decode_all(&mut Decoder::new(Limits::default()), &b).expect("valid");
        assert_eq!(
            summary(&messages),
            vec![(64, 1, 8, 0, 1), (65_599, 2, 8, 0, 1)]
        );
    }

    #[test]
    fn decoder_delivers_zero_length_messages() {
        let b = [0x04, 0, 0, 5, 0, 0, 0, 0x09, 1, 0, 0, 0];
        let messages = decode_all(&mut Decoder::new(Limits::default()), &b).expect("valid");
        assert_eq!(summary(&messages), vec![(4, 5, 9, 1, 0)]);
    }

    #[test]
    fn decoder_rejects_fmt3_on_unknown_chunk_stream() {
        let err = decode_all(&mut Decoder::new(Limits::default()), &[0xC5, 0x00]).unwrap_err();
        assert_eq!(
            err,
            DecodeError::NoPreviousHeader {
                chunk_stream: ChunkStreamId(5),
                fmt: 3
            }
        );
        assert_eq!(
            err.to_string(),
            "chunk stream 5: fmt 3 chunk with no previous header on this chunk stream"
        );
    }

    #[test]
    fn decoder_rejects_message_longer_than_the_limit() {
        let limits = Limits {
            message_size_max: 1000,
            ..Limits::default()
        };
        let b = [0x06, 0, 0, 0, 0x00, 0x03, 0xE9, 0x09, 1, 0, 0, 0];
        let err = decode_all(&mut Decoder::new(limits), &b).unwrap_err();
        assert_eq!(
            err.to_string(),
            "video message (type 9) length 1001 on chunk stream 6 exceeds max 1000"
        );
    }

    #[test]
    fn decoder_rejects_small_types_past_their_bound_before_reassembly() {
        // fmt 0 headers of one byte over each bound; no payload follows, so
        // the header alone decides.
        let cases = [
            (1u8, limits::CONTROL_MESSAGE_SIZE_MAX, "control"),
            (4, limits::CONTROL_MESSAGE_SIZE_MAX, "control"),
            (20, limits::COMMAND_MESSAGE_SIZE_MAX, "command"),
            (17, limits::COMMAND_MESSAGE_SIZE_MAX, "command"),
            (18, limits::DATA_MESSAGE_SIZE_MAX, "data"),
            (15, limits::DATA_MESSAGE_SIZE_MAX, "data"),
            (19, limits::COMMAND_MESSAGE_SIZE_MAX, "shared object"),
            (7, limits::COMMAND_MESSAGE_SIZE_MAX, "unknown type"),
        ];
        for (type_id, max, kind) in cases {
            let header = |length: u32| {
                let l = length.to_be_bytes();
                [0x03, 0, 0, 0, l[1], l[2], l[3], type_id, 0, 0, 0, 0]
            };
            let mut decoder = Decoder::new(Limits::default());
            let err = decode_all(&mut decoder, &header(max + 1)).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "{kind} message (type {type_id}) length {} on chunk stream 3 exceeds max {max}",
                    max + 1
                )
            );
            let mut decoder = Decoder::new(Limits::default());
            assert_eq!(decode_all(&mut decoder, &header(max)), Ok(vec![]));
        }
        // Media and aggregates go up to the configured bound.
        let limits = Limits::default();
        for type_id in [8, 9, 22] {
            let (_, max) = limits.size_max(MessageType(type_id));
            assert_eq!(max, limits.message_size_max);
        }
        // A configured bound below a type's own lowers it too.
        let low = Limits {
            message_size_max: 4096,
            ..Limits::default()
        };
        assert_eq!(low.size_max(MessageType::DATA_AMF0), ("data", 4096));
    }

    #[test]
    fn decoder_checks_the_bound_of_a_type_that_fmt1_changes() {
        // A 60-byte video message, then fmt 1 turns chunk stream 3 into a
        // 100-byte control message: refused at the header.
        let mut b = vec![0x03, 0, 0, 0, 0, 0, 60, 9, 1, 0, 0, 0];
        b.extend([0u8; 60]);
        b.extend([0x43, 0, 0, 0, 0, 0, 100, 4]);
        let err = decode_all(&mut Decoder::new(Limits::default()), &b).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::MessageTooLarge {
                kind: "control",
                length: 100,
                max: 64,
                ..
            }
        ));
    }

    #[test]
    fn decoder_rejects_more_chunk_streams_than_the_limit() {
        let limits = Limits {
            chunk_streams_max: 8,
            ..Limits::default()
        };
        let mut b = Vec::new();
        for id in 3..=11u8 {
            // A 200-byte message on each chunk stream: its first chunk only.
            b.extend([id, 0, 0, 0, 0, 0, 200, 0x09, 1, 0, 0, 0]);
            b.extend([0xEE; 128]);
        }
        let mut decoder = Decoder::new(limits);
        let err = decode_all(&mut decoder, &b).unwrap_err();
        assert_eq!(
            err,
            DecodeError::TooManyChunkStreams {
                chunk_stream: ChunkStreamId(11),
                max: 8
            }
        );
    }

    #[test]
    fn decoder_rejects_partial_bytes_past_the_limit() {
        let limits = Limits {
            partial_bytes_max: 200,
            ..Limits::default()
        };
        let mut b = Vec::new();
        for id in [3u8, 4] {
            b.extend([id, 0, 0, 0, 0x00, 0x01, 0x2C, 0x09, 1, 0, 0, 0]);
            b.extend([0x77; 128]);
        }
        let err = decode_all(&mut Decoder::new(limits), &b).unwrap_err();
        assert_eq!(
            err,
            DecodeError::PartialBytesExceeded {
                chunk_stream: ChunkStreamId(4),
                max: 200
            }
        );
    }

    #[test]
    fn decoder_rejects_chunk_size_zero_and_top_bit() {
        for size in [0u32, 0x8000_0000] {
            let mut b = vec![0x02, 0, 0, 0, 0, 0, 4, 0x01, 0, 0, 0, 0];
            b.extend(size.to_be_bytes());
            let err = decode_all(&mut Decoder::new(Limits::default()), &b).unwrap_err();
            assert_eq!(
                err,
                DecodeError::BadChunkSize {
                    chunk_stream: ChunkStreamId(2),
                    size
                }
            );
        }
    }

    #[test]
    fn decoder_accepts_the_largest_chunk_size() {
        let mut b = vec![
            0x02, 0, 0, 0, 0, 0, 4, 0x01, 0, 0, 0, 0, 0x7F, 0xFF, 0xFF, 0xFF,
        ];
        b.extend([0x06, 0, 0, 0, 0x00, 0x10, 0x00, 0x09, 1, 0, 0, 0]);
        b.extend([0x42; 4096]);
        let mut decoder = Decoder::new(Limits::default());
        let messages = decode_all(&mut decoder, &b).expect("valid");
        assert_eq!(decoder.chunk_size(), 0x7FFF_FFFF);
        assert_eq!(messages[1].payload.len(), 4096);
    }

    #[test]
    fn decoder_rejects_short_control_messages() {
        let b = [0x02, 0, 0, 0, 0, 0, 2, 0x01, 0, 0, 0, 0, 0x10, 0x00];
        let err = decode_all(&mut Decoder::new(Limits::default()), &b).unwrap_err();
        assert_eq!(
            err.to_string(),
            "chunk stream 2: set chunk size message of 2 bytes is shorter than 4"
        );
    }

    #[test]
    fn a_skimming_decoder_keeps_media_prefixes_and_whole_control_messages() {
        let mut bytes = spec_example_2();
        bytes.extend(spec_example_1());
        // Set Chunk Size 4096, then a 300-byte video message in one chunk.
        bytes.extend([0x02, 0, 0, 0, 0, 0, 4, 0x01, 0, 0, 0, 0, 0, 0, 0x10, 0]);
        bytes.extend([0x06, 0, 0, 9, 0x00, 0x01, 0x2C, 0x09, 1, 0, 0, 0]);
        bytes.extend([0x5A; 300]);
        for split in [1, 7, bytes.len()] {
            let mut decoder = Decoder::skimming(Limits::default(), 10);
            let mut input = BytesMut::new();
            let mut messages = Vec::new();
            for piece in bytes.chunks(split) {
                input.extend_from_slice(piece);
                while let Some(m) = decoder.decode(&mut input).expect("valid") {
                    messages.push(m);
                }
            }
            let lens: Vec<_> = messages
                .iter()
                .map(|m| (m.type_id.0, m.payload.len()))
                .collect();
            assert_eq!(
                lens,
                vec![(9, 10), (8, 10), (8, 10), (8, 10), (8, 10), (1, 4), (9, 10)],
                "split {split}"
            );
            let expected: Vec<u8> = (0..10u32).map(|i| i as u8).collect();
            assert_eq!(&messages[0].payload[..], &expected[..]);
            assert_eq!(decoder.partial_bytes(), 0);
        }
    }

    #[test]
    fn decoder_rejects_a_new_header_in_the_middle_of_a_message() {
        let mut b = vec![0x06, 0, 0, 0, 0x00, 0x01, 0x2C, 0x09, 1, 0, 0, 0];
        b.extend([0x55; 128]);
        b.extend([0x86, 0, 0, 1]);
        let err = decode_all(&mut Decoder::new(Limits::default()), &b).unwrap_err();
        assert_eq!(
            err,
            DecodeError::HeaderMidMessage {
                chunk_stream: ChunkStreamId(6),
                fmt: 2
            }
        );
    }
}
