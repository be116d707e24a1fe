//! The chunk stream (RTMP 1.0 §5.3): how messages are cut into chunks and
//! interleaved on one connection, and put back together.
//!
//! - [`Decoder`]: bytes → [`RawMessage`]s, incremental (any split of the
//!   input gives the same messages) and bounded (message size, chunk streams
//!   in use, bytes held in partial messages). It applies Set Chunk Size and
//!   Abort itself, at the byte where they take effect, and still yields them.
//! - [`Encoder`]: messages → chunks with compressed headers (fmt 1/2/3)
//!   where the previous message on the chunk stream allows.
//! - [`package`]: a self-contained frame (fmt 0 chunk + fmt 3
//!   continuations) that depends on no encoder state, so the same bytes can
//!   be written to every subscriber: the unit of zero-copy fan-out.
//!
//! Owns no socket and no clock. Message bodies are opaque here; `message`
//! gives them types.

mod decoder;
mod encoder;
mod header;

pub use decoder::{DecodeError, Decoder, Limits, RawMessage};
pub use encoder::{
    EncodeError, Encoder, MessageHeader, body_chunks, package, package_into, packaged_body_len,
    packaged_len, unpackage,
};

#[cfg(test)]
mod tests {
    //! Property tests: the encoder and the decoder agree across chunk
    //! sizes, chunk-level interleaving of many chunk streams, and any split
    //! of the byte stream.

    use std::collections::BTreeMap;

    use bytes::BytesMut;
    use proptest::prelude::*;

    use super::*;
    use crate::protocol::{ChunkStreamId, MessageStreamId, MessageType, Timestamp};

    #[derive(Clone, Debug)]
    struct Msg {
        header: MessageHeader,
        payload: Vec<u8>,
    }

    /// One segment: messages encoded at one chunk size, then the chunk size
    /// the next segment uses.
    #[derive(Clone, Debug)]
    struct Segment {
        messages: Vec<Msg>,
        next_chunk_size: u32,
    }

    fn chunk_ids() -> impl Strategy<Value = Vec<u32>> {
        prop::collection::btree_set(prop_oneof![3u32..64, 64u32..320, 320u32..=65_599], 1..50)
            .prop_map(|ids| ids.into_iter().collect())
    }

    fn segments() -> impl Strategy<Value = Vec<Segment>> {
        chunk_ids()
            .prop_flat_map(|ids| {
                let n = ids.len();
                let msg = (
                    prop_oneof![0..n, 0..n.min(3)],
                    // Repeated deltas and lengths exercise fmt 2 and fmt 3.
                    prop_oneof![
                        1 => Just(0u32),
                        4 => Just(33u32),
                        1 => 1u32..100,
                        1 => Just(0x0100_0005u32),
                        1 => 0x00FF_FF00u32..0x0100_0100
                    ],
                    prop_oneof![8 => Just(9u8), 1 => Just(8u8), 1 => Just(18u8)],
                    prop_oneof![8 => Just(1u32), 1 => 0u32..3],
                    prop_oneof![
                        1 => prop::collection::vec(any::<u8>(), 0..600),
                        3 => prop::collection::vec(any::<u8>(), 300..=300),
                    ],
                );
                let segment = (
                    prop::collection::vec(msg, 0..20),
                    prop_oneof![1u32..8, 100u32..300, Just(4096u32), Just(0x7FFF_FFFF)],
                );
                (Just(ids), prop::collection::vec(segment, 1..4))
            })
            .prop_map(|(ids, raw)| {
                // Timestamps advance per chunk stream, wrapping at 2^32.
                let mut clocks: BTreeMap<u32, u32> = BTreeMap::new();
                raw.into_iter()
                    .map(|(messages, next_chunk_size)| Segment {
                        messages: messages
                            .into_iter()
                            .map(|(i, delta, type_id, stream, payload)| {
                                let id = ids[i];
                                let clock = clocks.entry(id).or_insert(0xFFFF_0000);
                                *clock = clock.wrapping_add(delta);
                                Msg {
                                    header: MessageHeader {
                                        chunk_stream: ChunkStreamId(id),
                                        timestamp: Timestamp(*clock),
                                        type_id: MessageType(type_id),
                                        stream_id: MessageStreamId(stream),
                                    },
                                    payload,
                                }
                            })
                            .collect(),
                        next_chunk_size,
                    })
                    .collect()
            })
    }

    /// Splits one encoded message into its chunks, knowing the layout.
    fn split_chunks(encoded: &[u8], payload_len: usize, chunk_size: u32) -> Vec<Vec<u8>> {
        let basic = header::decode_basic(encoded).expect("basic header");
        let fmt = usize::from(basic.fmt);
        let cs = chunk_size as usize;
        // Every chunk carries a basic header and, if extended, 4 more bytes.
        let n = payload_len.div_ceil(cs).max(1);
        let overhead = encoded.len() - payload_len - header::MESSAGE_HEADER_LEN[fmt];
        let ext = overhead / n - basic.len;
        assert!(ext == 0 || ext == 4);
        let first_header = basic.len + header::MESSAGE_HEADER_LEN[fmt] + ext;
        let mut chunks = Vec::new();
        let mut at = 0;
        let mut left = payload_len;
        let mut header_len = first_header;
        loop {
            let take = left.min(cs);
            chunks.push(encoded[at..at + header_len + take].to_vec());
            at += header_len + take;
            left -= take;
            header_len = basic.len + ext;
            if left == 0 {
                break;
            }
        }
        assert_eq!(at, encoded.len());
        chunks
    }

    /// Encodes every segment and interleaves chunks of different chunk
    /// streams by `order`, keeping each chunk stream's own order.
    fn encode_interleaved(segments: &[Segment], order: &[u8]) -> Vec<u8> {
        let mut encoder = Encoder::new();
        let mut out = Vec::new();
        let mut pick = order.iter().cycle();
        for segment in segments {
            let mut queues: BTreeMap<u32, Vec<Vec<u8>>> = BTreeMap::new();
            for m in &segment.messages {
                let mut buf = BytesMut::new();
                encoder
                    .encode(&m.header, &m.payload, &mut buf)
                    .expect("encodable");
                let chunks = split_chunks(&buf, m.payload.len(), encoder.chunk_size());
                queues
                    .entry(m.header.chunk_stream.0)
                    .or_default()
                    .extend(chunks);
            }
            let mut queues: Vec<_> = queues.into_values().map(|q| q.into_iter()).collect();
            while !queues.is_empty() {
                let i = usize::from(*pick.next().unwrap_or(&0)) % queues.len();
                match queues[i].next() {
                    Some(chunk) => out.extend(chunk),
                    None => {
                        queues.remove(i);
                    }
                }
            }
            let size = segment.next_chunk_size;
            let header = MessageHeader {
                chunk_stream: ChunkStreamId::CONTROL,
                timestamp: Timestamp(0),
                type_id: MessageType::SET_CHUNK_SIZE,
                stream_id: MessageStreamId(0),
            };
            let mut buf = BytesMut::new();
            encoder
                .encode(&header, &size.to_be_bytes(), &mut buf)
                .expect("encodable");
            out.extend(buf);
            encoder.set_chunk_size(size).expect("valid size");
        }
        out
    }

    type PerStream = BTreeMap<u32, Vec<(u32, u8, u32, Vec<u8>)>>;

    fn expected(segments: &[Segment]) -> PerStream {
        let mut per: PerStream = BTreeMap::new();
        for m in segments.iter().flat_map(|s| &s.messages) {
            per.entry(m.header.chunk_stream.0).or_default().push((
                m.header.timestamp.0,
                m.header.type_id.0,
                m.header.stream_id.0,
                m.payload.clone(),
            ));
        }
        per
    }

    fn decode_in_pieces(bytes: &[u8], cuts: &[usize]) -> PerStream {
        let mut decoder = Decoder::new(Limits::default());
        let mut input = BytesMut::new();
        let mut per: PerStream = BTreeMap::new();
        let mut at = 0;
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        cuts.push(bytes.len());
        for cut in cuts {
            input.extend_from_slice(&bytes[at..cut.max(at)]);
            at = cut.max(at);
            while let Some(m) = decoder.decode(&mut input).expect("valid stream") {
                if m.type_id == MessageType::SET_CHUNK_SIZE {
                    continue;
                }
                per.entry(m.chunk_stream.0).or_default().push((
                    m.timestamp.0,
                    m.type_id.0,
                    m.stream_id.0,
                    m.payload.to_vec(),
                ));
            }
        }
        assert!(input.is_empty());
        assert_eq!(decoder.partial_bytes(), 0);
        per
    }

    /// Cases per property: 256 in the normal test run; the differential
    /// campaign runs `RINGCAST_CHUNK_CASES=100000 cargo test --release
    /// -p ringcast-rtmp --lib protocol::chunk`.
    fn cases() -> u32 {
        std::env::var("RINGCAST_CHUNK_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(256)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(cases()))]

        #[test]
        fn decode_of_interleaved_encode_is_identity_under_any_split(
            segments in segments(),
            order in prop::collection::vec(any::<u8>(), 1..64),
            cuts in prop::collection::vec(any::<usize>(), 0..40),
        ) {
            let bytes = encode_interleaved(&segments, &order);
            prop_assert_eq!(decode_in_pieces(&bytes, &cuts), expected(&segments));
        }

        #[test]
        fn packaged_frames_decode_to_their_message_on_any_decoder(
            payload in prop::collection::vec(any::<u8>(), 0..3000),
            timestamp in any::<u32>(),
            chunk_size in prop_oneof![1u32..300, Just(4096u32)],
            chunk_stream in 3u32..=65_599,
        ) {
            let header = MessageHeader {
                chunk_stream: ChunkStreamId(chunk_stream),
                timestamp: Timestamp(timestamp),
                type_id: MessageType::VIDEO,
                stream_id: MessageStreamId(1),
            };
            let packaged = package(&header, &payload, chunk_size).expect("valid");
            // A decoder that already saw other messages on that chunk
            // stream reads the packaged frame the same.
            let mut encoder = Encoder::new();
            encoder.set_chunk_size(chunk_size).expect("valid");
            let mut stream = BytesMut::new();
            let size_header = MessageHeader {
                chunk_stream: ChunkStreamId::CONTROL,
                timestamp: Timestamp(0),
                type_id: MessageType::SET_CHUNK_SIZE,
                stream_id: MessageStreamId(0),
            };
            Encoder::new()
                .encode(&size_header, &chunk_size.to_be_bytes(), &mut stream)
                .expect("encodable");
            let earlier = MessageHeader { timestamp: Timestamp(timestamp.wrapping_sub(7)), ..header };
            encoder.encode(&earlier, &[1, 2, 3], &mut stream).expect("encodable");
            stream.extend_from_slice(&packaged);
            let mut decoder = Decoder::new(Limits::default());
            let mut last = None;
            while let Some(m) = decoder.decode(&mut stream).expect("valid") {
                last = Some(m);
            }
            let last = last.expect("a message");
            prop_assert_eq!(last.timestamp, Timestamp(timestamp));
            prop_assert_eq!(&last.payload[..], &payload[..]);
        }

        #[test]
        fn decoder_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
            let mut decoder = Decoder::new(Limits::default());
            let mut input = BytesMut::from(&bytes[..]);
            while let Ok(Some(_)) = decoder.decode(&mut input) {}
        }
    }
}
