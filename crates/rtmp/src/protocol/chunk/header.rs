//! Chunk basic headers (RTMP 1.0 §5.3.1.1) and the fixed parts of message
//! headers (§5.3.1.2), shared by the decoder and the encoder.

use bytes::BufMut;

use crate::protocol::ChunkStreamId;

/// A 24-bit timestamp field of this value means the real value follows as a
/// 4-byte extended timestamp (§5.3.1.3).
pub(super) const EXTENDED_TIMESTAMP: u32 = 0x00FF_FFFF;

/// Message header length for fmt 0, 1, 2 and 3 (§5.3.1.2.1–4).
pub(super) const MESSAGE_HEADER_LEN: [usize; 4] = [11, 7, 3, 0];

/// A decoded basic header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct BasicHeader {
    pub fmt: u8,
    pub chunk_stream: ChunkStreamId,
    /// 1, 2 or 3 bytes.
    pub len: usize,
}

/// Decodes the basic header at the front of `bytes`; `None` until enough
/// bytes are there. Every byte pattern is a valid basic header.
pub(super) fn decode_basic(bytes: &[u8]) -> Option<BasicHeader> {
    let first = *bytes.first()?;
    let fmt = first >> 6;
    match first & 0x3F {
        0 => Some(BasicHeader {
            fmt,
            chunk_stream: ChunkStreamId(64 + u32::from(*bytes.get(1)?)),
            len: 2,
        }),
        1 => {
            let low = u32::from(*bytes.get(1)?);
            let high = u32::from(*bytes.get(2)?);
            Some(BasicHeader {
                fmt,
                chunk_stream: ChunkStreamId(64 + low + (high << 8)),
                len: 3,
            })
        }
        id => Some(BasicHeader {
            fmt,
            chunk_stream: ChunkStreamId(u32::from(id)),
            len: 1,
        }),
    }
}

/// The length of the basic header for `chunk_stream`, in its shortest form.
pub(super) fn basic_len(chunk_stream: ChunkStreamId) -> usize {
    match chunk_stream.0 {
        0..=63 => 1,
        64..=319 => 2,
        _ => 3,
    }
}

/// Writes the shortest basic header for `chunk_stream`. Ids outside
/// 2..=65599 are the caller's bug (the encoder validates them first).
pub(super) fn encode_basic(fmt: u8, chunk_stream: ChunkStreamId, out: &mut impl BufMut) {
    let fmt_bits = fmt << 6;
    let id = chunk_stream.0;
    debug_assert!((2..=ChunkStreamId::MAX.0).contains(&id));
    match basic_len(chunk_stream) {
        // The casts cannot truncate: each arm's range fits the field.
        1 => out.put_u8(fmt_bits | id as u8),
        2 => {
            out.put_u8(fmt_bits);
            out.put_u8((id - 64) as u8);
        }
        _ => {
            out.put_u8(fmt_bits | 1);
            out.put_u16_le((id.saturating_sub(64)) as u16);
        }
    }
}

/// Writes a 24-bit big-endian field.
pub(super) fn put_u24(value: u32, out: &mut impl BufMut) {
    debug_assert!(value <= 0x00FF_FFFF);
    let [_, a, b, c] = value.to_be_bytes();
    out.put_slice(&[a, b, c]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header_round_trips_at_every_size_boundary() {
        for id in [2, 3, 63, 64, 65, 319, 320, 321, 65_599] {
            let mut out = Vec::new();
            encode_basic(3, ChunkStreamId(id), &mut out);
            let decoded = decode_basic(&out).expect("complete header");
            assert_eq!(decoded.chunk_stream, ChunkStreamId(id));
            assert_eq!(decoded.fmt, 3);
            assert_eq!(decoded.len, out.len());
            assert_eq!(decoded.len, basic_len(ChunkStreamId(id)));
        }
    }

    #[test]
    fn basic_header_decodes_the_spec_examples() {
        // §5.3.1.1: 2-byte form: id - 64 in the second byte.
        assert_eq!(
            decode_basic(&[0x40, 0x00]).map(|h| (h.fmt, h.chunk_stream.0)),
            Some((1, 64))
        );
        // 3-byte form: (third byte) * 256 + (second byte) + 64.
        assert_eq!(
            decode_basic(&[0xC1, 0xFF, 0xFF]).map(|h| (h.fmt, h.chunk_stream.0)),
            Some((3, 65_599))
        );
        assert_eq!(decode_basic(&[0x01, 0x00]), None);
        assert_eq!(decode_basic(&[]), None);
    }
}
