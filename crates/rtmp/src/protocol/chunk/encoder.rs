//! Chunk stream encoding (RTMP 1.0 §5.3.1), and self-contained packaged
//! frames for fan-out.

use bytes::{BufMut, Bytes, BytesMut};

use super::header::{self, EXTENDED_TIMESTAMP};
use crate::limits;
use crate::protocol::{ChunkStreamId, MessageStreamId, MessageType, Timestamp};

/// Where and when a message goes; its length is its payload's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageHeader {
    pub chunk_stream: ChunkStreamId,
    pub timestamp: Timestamp,
    pub type_id: MessageType,
    pub stream_id: MessageStreamId,
}

/// A message the chunk format cannot carry. Always the caller's bug: every
/// message ringcast sends is built or received within these bounds.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("message of {length} bytes exceeds the 24-bit length field")]
    MessageTooLarge { length: usize },
    #[error("chunk stream id {0} outside 2..=65599")]
    BadChunkStream(ChunkStreamId),
    #[error("chunk size {0} outside 1..=2147483647")]
    BadChunkSize(u32),
}

/// Encodes messages for one connection, compressing headers against the
/// previous message on each chunk stream.
#[derive(Debug)]
pub struct Encoder {
    chunk_size: u32,
    sent: Vec<(ChunkStreamId, Sent)>,
}

/// What the peer's decoder remembers of the last header on a chunk stream.
#[derive(Clone, Copy, Debug)]
struct Sent {
    timestamp: Timestamp,
    field: u32,
    fmt0: bool,
    length: u32,
    type_id: MessageType,
    stream_id: MessageStreamId,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder::new()
    }
}

impl Encoder {
    /// An encoder at the initial chunk size of 128 (§5.4.1).
    pub fn new() -> Encoder {
        Encoder {
            chunk_size: limits::CHUNK_SIZE_INITIAL,
            sent: Vec::new(),
        }
    }

    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Chunks after this call use `chunk_size`. Call it right after
    /// encoding the Set Chunk Size message that announces it.
    pub fn set_chunk_size(&mut self, chunk_size: u32) -> Result<(), EncodeError> {
        check_chunk_size(chunk_size)?;
        self.chunk_size = chunk_size;
        Ok(())
    }

    /// Appends `payload` as chunks to `out`, with the most compressed first
    /// header the previous message on the chunk stream allows.
    pub fn encode(
        &mut self,
        header: &MessageHeader,
        payload: &[u8],
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        let length = check_message(header, payload)?;
        let index = self
            .sent
            .iter()
            .position(|(id, _)| *id == header.chunk_stream);
        let previous = index.and_then(|i| self.sent.get(i)).map(|(_, s)| *s);
        let (fmt, field) = choose_fmt(header, length, previous.as_ref());
        let sent = Sent {
            timestamp: header.timestamp,
            field,
            fmt0: fmt == 0,
            length,
            type_id: header.type_id,
            stream_id: header.stream_id,
        };
        match index.and_then(|i| self.sent.get_mut(i)) {
            Some((_, slot)) => *slot = sent,
            None => self.sent.push((header.chunk_stream, sent)),
        }
        write_chunks(fmt, field, header, payload, self.chunk_size, out);
        Ok(())
    }

    /// Forgets what was sent on `chunk_stream`, so its next message goes out
    /// with a full header. Call it when something other than this encoder
    /// (a packaged frame) wrote to that chunk stream.
    pub fn reset_chunk_stream(&mut self, chunk_stream: ChunkStreamId) {
        self.sent.retain(|(id, _)| *id != chunk_stream);
    }
}

/// Packages one message as self-contained chunks: a fmt 0 chunk and fmt 3
/// continuations, the same bytes whatever was sent before on the chunk
/// stream. This is what fan-out shares between subscribers.
pub fn package(
    header: &MessageHeader,
    payload: &[u8],
    chunk_size: u32,
) -> Result<Bytes, EncodeError> {
    let mut out = BytesMut::with_capacity(packaged_len(header, payload.len(), chunk_size));
    package_into(header, payload, chunk_size, &mut out)?;
    Ok(out.freeze())
}

/// The message body of [`package`]'s output at `chunk_size`: a slice of
/// `wire` when the message is one chunk, else a copy without the
/// continuations' headers. Bytes that are not `package`'s output give
/// whatever they hold past the first header, never a panic.
pub fn unpackage(header: &MessageHeader, wire: &Bytes, chunk_size: u32) -> Bytes {
    let basic = header::basic_len(header.chunk_stream);
    let extended = extended_len(header);
    let body = wire.slice((basic + 11 + extended).min(wire.len())..);
    if body.len() <= chunk_size.max(1) as usize {
        return body;
    }
    let mut payload = BytesMut::with_capacity(body.len());
    for chunk in body_chunks(header, wire, chunk_size) {
        payload.put_slice(chunk);
    }
    payload.freeze()
}

/// The length of the message in [`package`]'s output, read from its
/// fmt 0 header (0 for bytes too short to hold one).
pub fn packaged_body_len(header: &MessageHeader, wire: &[u8]) -> usize {
    let at = header::basic_len(header.chunk_stream) + 3;
    match wire.get(at..at + 3) {
        Some(&[a, b, c]) => u32::from_be_bytes([0, a, b, c]) as usize,
        _ => 0,
    }
}

/// The pieces of the body in [`package`]'s output, in order, without
/// their chunk headers: what another format copies the body from.
pub fn body_chunks<'a>(
    header: &MessageHeader,
    wire: &'a [u8],
    chunk_size: u32,
) -> impl Iterator<Item = &'a [u8]> + use<'a> {
    let basic = header::basic_len(header.chunk_stream);
    let extended = extended_len(header);
    let chunk_size = chunk_size.max(1) as usize;
    let mut rest: &[u8] = wire.get(basic + 11 + extended..).unwrap_or_default();
    let mut first = true;
    std::iter::from_fn(move || {
        if !first {
            // Each continuation's own header: fmt 3, and the extended
            // timestamp again when the message has one.
            rest = rest.get(basic + extended..)?;
        }
        first = false;
        if rest.is_empty() {
            return None;
        }
        let (chunk, tail) = rest.split_at(chunk_size.min(rest.len()));
        rest = tail;
        Some(chunk)
    })
}

/// Bytes of the extended timestamp each chunk of `header`'s message
/// carries.
fn extended_len(header: &MessageHeader) -> usize {
    if header.timestamp.0 >= EXTENDED_TIMESTAMP {
        4
    } else {
        0
    }
}

/// [`package`], appending to `out`.
pub fn package_into(
    header: &MessageHeader,
    payload: &[u8],
    chunk_size: u32,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    check_chunk_size(chunk_size)?;
    check_message(header, payload)?;
    write_chunks(0, header.timestamp.0, header, payload, chunk_size, out);
    Ok(())
}

/// The exact length of [`package`]'s output.
pub fn packaged_len(header: &MessageHeader, payload_len: usize, chunk_size: u32) -> usize {
    let chunk_size = (chunk_size.max(1) as usize).min(payload_len.max(1));
    let continuations = payload_len.saturating_sub(1) / chunk_size;
    let basic = header::basic_len(header.chunk_stream);
    let extended = if header.timestamp.0 >= EXTENDED_TIMESTAMP {
        4
    } else {
        0
    };
    basic + 11 + extended + payload_len + continuations * (basic + extended)
}

fn check_chunk_size(chunk_size: u32) -> Result<(), EncodeError> {
    if (limits::CHUNK_SIZE_MIN..=limits::CHUNK_SIZE_MAX).contains(&chunk_size) {
        Ok(())
    } else {
        Err(EncodeError::BadChunkSize(chunk_size))
    }
}

fn check_message(header: &MessageHeader, payload: &[u8]) -> Result<u32, EncodeError> {
    if !(2..=ChunkStreamId::MAX.0).contains(&header.chunk_stream.0) {
        return Err(EncodeError::BadChunkStream(header.chunk_stream));
    }
    match u32::try_from(payload.len()) {
        Ok(length) if length <= limits::MESSAGE_SIZE_PROTOCOL_MAX => Ok(length),
        _ => Err(EncodeError::MessageTooLarge {
            length: payload.len(),
        }),
    }
}

/// Picks the chunk format and the timestamp field for a new message.
fn choose_fmt(header: &MessageHeader, length: u32, previous: Option<&Sent>) -> (u8, u32) {
    let full = (0, header.timestamp.0);
    let Some(previous) = previous else {
        return full;
    };
    let delta = header.timestamp.wrapping_since(previous.timestamp);
    // A delta past 2^31 is a timestamp going backwards (or a jump no peer
    // would read as forward): only a full header says that unambiguously.
    if previous.stream_id != header.stream_id || delta > i32::MAX as u32 {
        return full;
    }
    if previous.length != length || previous.type_id != header.type_id {
        return (1, delta);
    }
    // fmt 3 for a new message repeats the previous delta. After a fmt 0
    // header peers disagree on what that delta is (ffmpeg and SRS: the
    // absolute timestamp; nginx-rtmp: zero), so only after fmt 1/2.
    if delta == previous.field && !previous.fmt0 {
        return (3, delta);
    }
    (2, delta)
}

/// Writes the first chunk with `fmt` and `field`, then fmt 3 continuations.
fn write_chunks(
    fmt: u8,
    field: u32,
    header: &MessageHeader,
    payload: &[u8],
    chunk_size: u32,
    out: &mut BytesMut,
) {
    let extended = field >= EXTENDED_TIMESTAMP;
    let field_24 = field.min(EXTENDED_TIMESTAMP);
    header::encode_basic(fmt, header.chunk_stream, out);
    if fmt < 3 {
        header::put_u24(field_24, out);
    }
    if fmt < 2 {
        // Checked by `check_message`: fits 24 bits.
        header::put_u24(payload.len() as u32, out);
        out.put_u8(header.type_id.0);
    }
    if fmt == 0 {
        out.put_u32_le(header.stream_id.0);
    }
    if extended {
        out.put_u32(field);
    }
    let mut chunks = payload.chunks(chunk_size.max(1) as usize);
    out.put_slice(chunks.next().unwrap_or_default());
    for chunk in chunks {
        header::encode_basic(3, header.chunk_stream, out);
        // Continuations repeat the extended timestamp (§5.3.1.3; ffmpeg and
        // nginx-rtmp expect it).
        if extended {
            out.put_u32(field);
        }
        out.put_slice(chunk);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(chunk_stream: u32, timestamp: u32, type_id: u8, stream_id: u32) -> MessageHeader {
        MessageHeader {
            chunk_stream: ChunkStreamId(chunk_stream),
            timestamp: Timestamp(timestamp),
            type_id: MessageType(type_id),
            stream_id: MessageStreamId(stream_id),
        }
    }

    fn encode_one(encoder: &mut Encoder, h: MessageHeader, payload: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        encoder.encode(&h, payload, &mut out).expect("encodable");
        out.to_vec()
    }

    #[test]
    fn encoder_compresses_headers_as_the_spec_example_does() {
        // RTMP 1.0 §5.3.2.1 example 1, produced rather than consumed.
        let mut e = Encoder::new();
        let payload = [0xAA; 32];
        let first = encode_one(&mut e, header(3, 1000, 8, 12345), &payload);
        assert_eq!(
            &first[..12],
            &[
                0x03, 0x00, 0x03, 0xE8, 0x00, 0x00, 0x20, 0x08, 0x39, 0x30, 0, 0
            ]
        );
        let second = encode_one(&mut e, header(3, 1020, 8, 12345), &payload);
        assert_eq!(&second[..4], &[0x83, 0x00, 0x00, 0x14]);
        let third = encode_one(&mut e, header(3, 1040, 8, 12345), &payload);
        assert_eq!(third[0], 0xC3);
        assert_eq!(third.len(), 33);
    }

    #[test]
    fn encoder_uses_fmt1_when_length_or_type_changes_and_fmt0_for_another_stream() {
        let mut e = Encoder::new();
        encode_one(&mut e, header(4, 0, 9, 1), &[1; 10]);
        let fmt1 = encode_one(&mut e, header(4, 40, 9, 1), &[1; 11]);
        assert_eq!(&fmt1[..8], &[0x44, 0, 0, 40, 0, 0, 11, 9]);
        let fmt0 = encode_one(&mut e, header(4, 80, 9, 2), &[1; 11]);
        assert_eq!(fmt0[0] >> 6, 0);
        let backwards = encode_one(&mut e, header(4, 10, 9, 2), &[1; 11]);
        assert_eq!(backwards[0] >> 6, 0, "a timestamp going back needs fmt 0");
    }

    #[test]
    fn encoder_never_follows_fmt0_with_a_fmt3_message() {
        let mut e = Encoder::new();
        encode_one(&mut e, header(4, 40, 9, 1), &[1; 10]);
        let next = encode_one(&mut e, header(4, 80, 9, 1), &[1; 10]);
        assert_eq!(next[0] >> 6, 2);
    }

    #[test]
    fn encoder_splits_at_the_chunk_size_it_was_given() {
        let mut e = Encoder::new();
        e.set_chunk_size(100).expect("valid");
        let out = encode_one(&mut e, header(6, 0, 9, 1), &[7; 250]);
        // 12-byte header + 100, fmt 3 + 100, fmt 3 + 50.
        assert_eq!(out.len(), 12 + 100 + 1 + 100 + 1 + 50);
        assert_eq!(out[112], 0xC6);
        assert_eq!(out[213], 0xC6);
        assert_eq!(e.set_chunk_size(0), Err(EncodeError::BadChunkSize(0)));
    }

    #[test]
    fn package_writes_extended_timestamps_on_every_chunk() {
        let h = header(6, 0x0123_4567, 9, 1);
        let bytes = package(&h, &[9; 300], 128).expect("valid");
        assert_eq!(bytes.len(), packaged_len(&h, 300, 128));
        assert_eq!(&bytes[..4], &[0x06, 0xFF, 0xFF, 0xFF]);
        assert_eq!(&bytes[12..16], &[0x01, 0x23, 0x45, 0x67]);
        assert_eq!(
            &bytes[16 + 128..16 + 128 + 5],
            &[0xC6, 0x01, 0x23, 0x45, 0x67]
        );
    }

    #[test]
    fn package_is_independent_of_what_was_sent_before() {
        let h = header(6, 40, 9, 1);
        let a = package(&h, &[1, 2, 3], 4096).expect("valid");
        assert_eq!(&a[..], &[0x06, 0, 0, 40, 0, 0, 3, 9, 1, 0, 0, 0, 1, 2, 3]);
        for len in [0usize, 1, 127, 128, 129, 4096, 4097, 10_000] {
            for chunk_size in [1u32, 128, 4096, 0x7FFF_FFFF] {
                let h = header(320, 5, 9, 1);
                let bytes = package(&h, &vec![0; len], chunk_size).expect("valid");
                assert_eq!(bytes.len(), packaged_len(&h, len, chunk_size));
            }
        }
    }

    #[test]
    fn unpackage_gives_back_the_body_a_slice_when_it_is_one_chunk() {
        for (chunk_stream, timestamp) in [(6, 40), (320, 0x0100_0000)] {
            for len in [0usize, 1, 127, 128, 129, 4096, 4097, 10_000] {
                for chunk_size in [1u32, 128, 4096, 0x7FFF_FFFF] {
                    let h = header(chunk_stream, timestamp, 9, 1);
                    let body: Vec<u8> = (0..len).map(|i| i as u8).collect();
                    let wire = package(&h, &body, chunk_size).expect("valid");
                    let back = unpackage(&h, &wire, chunk_size);
                    assert_eq!(&back[..], &body[..], "{len} bytes at {chunk_size}");
                    if len <= chunk_size as usize {
                        let end = wire.as_ptr_range().end;
                        assert_eq!(back.as_ptr_range().end, end, "a slice of the wire");
                    }
                }
            }
        }
        // Not packaged bytes: no panic.
        let h = header(6, 0, 9, 1);
        assert!(unpackage(&h, &Bytes::from_static(&[6, 0]), 128).is_empty());
    }

    #[test]
    fn encoder_rejects_what_the_chunk_format_cannot_carry() {
        let mut out = BytesMut::new();
        let too_big = vec![0; 0x0100_0000];
        assert_eq!(
            Encoder::new().encode(&header(3, 0, 9, 1), &too_big, &mut out),
            Err(EncodeError::MessageTooLarge {
                length: 0x0100_0000
            })
        );
        assert_eq!(
            package(&header(1, 0, 9, 1), &[], 128),
            Err(EncodeError::BadChunkStream(ChunkStreamId(1)))
        );
    }
}
