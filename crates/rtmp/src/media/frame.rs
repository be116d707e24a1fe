//! A published message, packaged once into RTMP chunks and shared.
//!
//! A frame holds only its packaged wire bytes, a buffer of exactly their
//! size: never the publisher's payload, which may be a slice of a read
//! buffer or of an aggregate message many times its size. Whatever keeps
//! frames (the GOP cache, push feeds, cross-shard snapshots, queues) so
//! holds what it counts ([`Frame::held`]).

use std::mem::size_of;

use bytes::{BufMut, Bytes, BytesMut};

use crate::protocol::chunk::{self, EncodeError, MessageHeader};
use crate::protocol::{MessageStreamId, Timestamp, flv};
use crate::session::MediaKind;

/// The message stream id packaged frames carry: what ffmpeg, OBS and every
/// player we know get from their first `createStream`. A player on another
/// id gets a variant ([`Frame::wire_for`]).
pub const CANONICAL_STREAM_ID: MessageStreamId = MessageStreamId(1);

/// Memory a kept frame costs beyond its wire bytes: the frame itself where
/// it is kept, and the shared buffer's control block with the allocator's
/// header (`bytes` allocates one on the first clone; mimalloc rounds small
/// blocks up to 16-byte classes). Why it matters: a 1-byte message is
/// ~100 bytes kept, and bounds that count only wire bytes let a publisher
/// of tiny messages hold 100 times what they say.
pub const FRAME_OVERHEAD_BYTES: usize = size_of::<Frame>() + 48;

/// An FLV tag's header: type, data size, timestamp and its extension,
/// stream id (always 0).
const FLV_TAG_HEADER_BYTES: usize = 11;

/// One message of a live stream, ready to be written to any player: its
/// wire bytes are a self-contained fmt 0 chunk and fmt 3 continuations
/// (see [`chunk::package`]). Cloning shares the bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub kind: MediaKind,
    pub timestamp: Timestamp,
    pub class: FrameClass,
    /// Packaged for [`CANONICAL_STREAM_ID`] at `chunk_size`.
    pub wire: Bytes,
    pub chunk_size: u32,
}

/// What a frame means for a player joining or falling behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameClass {
    /// Stream metadata (`onMetaData`): every player needs the latest.
    Metadata,
    /// A codec configuration (AVC/HEVC/AV1 sequence start, AAC
    /// AudioSpecificConfig): every player needs the latest before frames.
    SequenceHeader,
    /// A video frame a decoder can start from.
    Keyframe,
    /// A video frame that depends on earlier ones: droppable until the next
    /// keyframe.
    Interframe,
    /// Audio frames, cue points, end of sequence: never dropped unless the
    /// player is hopeless.
    Other,
}

impl Frame {
    /// Classifies and packages a message body. Video and audio are looked
    /// at only as far as [`flv`] needs; bytes it cannot read are passed on
    /// as [`FrameClass::Other`] (never dropped, never cached as a start).
    pub fn package(
        kind: MediaKind,
        timestamp: Timestamp,
        payload: &[u8],
        chunk_size: u32,
    ) -> Result<Frame, EncodeError> {
        let class = classify(kind, payload);
        let wire = chunk::package(
            &header(kind, timestamp, CANONICAL_STREAM_ID),
            payload,
            chunk_size,
        )?;
        Ok(Frame {
            kind,
            timestamp,
            class,
            wire,
            chunk_size,
        })
    }

    /// Metadata as players receive it: `onMetaData` with the publisher's
    /// value, AMF0.
    pub fn metadata(
        timestamp: Timestamp,
        body: &[u8],
        chunk_size: u32,
    ) -> Result<Frame, EncodeError> {
        let wire = chunk::package(
            &header(MediaKind::Data, timestamp, CANONICAL_STREAM_ID),
            body,
            chunk_size,
        )?;
        Ok(Frame {
            kind: MediaKind::Data,
            timestamp,
            class: FrameClass::Metadata,
            wire,
            chunk_size,
        })
    }

    /// The message body: a slice of the wire bytes when they are one chunk,
    /// else a copy (for variants at another chunk size, and pushes).
    pub fn payload(&self) -> Bytes {
        chunk::unpackage(
            &self.header(CANONICAL_STREAM_ID),
            &self.wire,
            self.chunk_size,
        )
    }

    /// The wire bytes for a player on `stream_id` at `chunk_size`: the
    /// shared bytes when both match (the common case), else a variant.
    /// Only the fmt 0 header carries the stream id, so a different id is a
    /// copy with four bytes patched; a different chunk size re-chunks.
    pub fn wire_for(
        &self,
        stream_id: MessageStreamId,
        chunk_size: u32,
    ) -> Result<Bytes, EncodeError> {
        if chunk_size != self.chunk_size {
            return chunk::package(&self.header(stream_id), &self.payload(), chunk_size);
        }
        if stream_id == CANONICAL_STREAM_ID {
            return Ok(self.wire.clone());
        }
        let mut wire = BytesMut::from(&self.wire[..]);
        // Basic header of 1 byte (chunk streams 6..8), then timestamp (3),
        // length (3), type (1): the stream id is bytes 8..12.
        if let Some(field) = wire.get_mut(8..12) {
            field.copy_from_slice(&stream_id.0.to_le_bytes());
        }
        Ok(wire.freeze())
    }

    /// Bytes of this frame as an FLV tag: the 11-byte tag header, the
    /// body, and the previous-tag-size that follows every tag (FLV 10.1
    /// annex E.3).
    pub fn flv_tag_len(&self) -> usize {
        FLV_TAG_HEADER_BYTES + self.body_len() + 4
    }

    /// Appends this frame as an FLV tag ([`Frame::flv_tag_len`] bytes):
    /// what HTTP-FLV and WebSocket-FLV players get, enhanced RTMP bodies
    /// as received. The body is copied once, from the wire bytes.
    pub fn put_flv_tag(&self, out: &mut BytesMut) {
        let body_len = self.body_len();
        let ts = self.timestamp.0;
        out.reserve(FLV_TAG_HEADER_BYTES + body_len + 4);
        out.put_u8(self.kind.type_id().0);
        // The body is under 16 MiB: the RTMP message length is 24 bits.
        out.put_uint(body_len as u64, 3);
        out.put_uint(u64::from(ts & 0x00FF_FFFF), 3);
        out.put_u8((ts >> 24) as u8);
        out.put_uint(0, 3);
        for chunk in chunk::body_chunks(
            &self.header(CANONICAL_STREAM_ID),
            &self.wire,
            self.chunk_size,
        ) {
            out.put_slice(chunk);
        }
        out.put_u32((FLV_TAG_HEADER_BYTES + body_len) as u32);
    }

    /// Bytes of the message body, as its header says.
    fn body_len(&self) -> usize {
        chunk::packaged_body_len(&self.header(CANONICAL_STREAM_ID), &self.wire)
    }

    /// Bytes this frame puts on the wire.
    pub fn len(&self) -> usize {
        self.wire.len()
    }

    /// Memory this frame holds wherever it is kept: its wire bytes and
    /// [`FRAME_OVERHEAD_BYTES`].
    pub fn held(&self) -> usize {
        self.wire.len() + FRAME_OVERHEAD_BYTES
    }

    pub fn is_empty(&self) -> bool {
        self.wire.is_empty()
    }

    fn header(&self, stream_id: MessageStreamId) -> MessageHeader {
        header(self.kind, self.timestamp, stream_id)
    }
}

fn header(kind: MediaKind, timestamp: Timestamp, stream_id: MessageStreamId) -> MessageHeader {
    MessageHeader {
        chunk_stream: kind.chunk_stream(),
        timestamp,
        type_id: kind.type_id(),
        stream_id,
    }
}

fn classify(kind: MediaKind, payload: &[u8]) -> FrameClass {
    match kind {
        MediaKind::Video => match flv::inspect_video(payload) {
            Ok(tag) if tag.is_sequence_header() => FrameClass::SequenceHeader,
            Ok(tag) if tag.is_keyframe() => FrameClass::Keyframe,
            Ok(tag) if tag.packet == flv::VideoPacket::Coded => FrameClass::Interframe,
            _ => FrameClass::Other,
        },
        MediaKind::Audio => match flv::inspect_audio(payload) {
            Ok(tag) if tag.is_sequence_header() => FrameClass::SequenceHeader,
            _ => FrameClass::Other,
        },
        MediaKind::Data => FrameClass::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::chunk::{Decoder, Limits};

    fn decode_one(wire: &[u8], chunk_size: u32) -> chunk::RawMessage {
        let mut decoder = Decoder::new(Limits::default());
        let mut input = BytesMut::new();
        // Tell the decoder the chunk size, as the session's Set Chunk Size
        // does before any frame.
        let header = MessageHeader {
            chunk_stream: crate::protocol::ChunkStreamId(2),
            timestamp: Timestamp(0),
            type_id: crate::protocol::MessageType::SET_CHUNK_SIZE,
            stream_id: MessageStreamId(0),
        };
        input.extend_from_slice(
            &chunk::package(&header, &chunk_size.to_be_bytes(), 128).expect("ok"),
        );
        input.extend_from_slice(wire);
        decoder
            .decode(&mut input)
            .expect("valid")
            .expect("set chunk size");
        decoder
            .decode(&mut input)
            .expect("valid")
            .expect("the frame")
    }

    #[test]
    fn frames_are_classified_for_joining_and_dropping() {
        let class = |kind, bytes: &[u8]| {
            Frame::package(kind, Timestamp(0), bytes, 4096)
                .expect("ok")
                .class
        };
        assert_eq!(
            class(MediaKind::Video, &[0x17, 0, 0, 0, 0, 1]),
            FrameClass::SequenceHeader
        );
        assert_eq!(
            class(MediaKind::Video, &[0x17, 1, 0, 0, 0, 9]),
            FrameClass::Keyframe
        );
        assert_eq!(
            class(MediaKind::Video, &[0x27, 1, 0, 0, 0, 9]),
            FrameClass::Interframe
        );
        assert_eq!(class(MediaKind::Video, &[]), FrameClass::Other);
        assert_eq!(
            class(MediaKind::Audio, &[0xAF, 0, 0x12, 0x10]),
            FrameClass::SequenceHeader
        );
        assert_eq!(class(MediaKind::Audio, &[0xAF, 1, 0x21]), FrameClass::Other);
    }

    #[test]
    fn variants_differ_only_in_stream_id_or_chunking() {
        let payload = Bytes::from(vec![0x27; 10_000]);
        let frame = Frame::package(MediaKind::Video, Timestamp(40), &payload, 4096).expect("ok");
        let same = frame.wire_for(CANONICAL_STREAM_ID, 4096).expect("ok");
        assert_eq!(same.as_ptr(), frame.wire.as_ptr(), "shared, not copied");

        let other_id = frame.wire_for(MessageStreamId(3), 4096).expect("ok");
        let m = decode_one(&other_id, 4096);
        assert_eq!(
            (m.stream_id, m.timestamp),
            (MessageStreamId(3), Timestamp(40))
        );
        assert_eq!(m.payload, payload);

        let other_size = frame.wire_for(MessageStreamId(2), 128).expect("ok");
        let m = decode_one(&other_size, 128);
        assert_eq!(m.stream_id, MessageStreamId(2));
        assert_eq!(m.payload, payload);
    }

    #[test]
    fn flv_tags_carry_the_body_with_its_timestamp_and_size() {
        // Several chunks, an extended timestamp (continuations repeat it).
        let payload: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let frame =
            Frame::package(MediaKind::Video, Timestamp(0x1234_5678), &payload, 128).expect("ok");
        let mut tag = BytesMut::new();
        frame.put_flv_tag(&mut tag);
        assert_eq!(tag.len(), frame.flv_tag_len());
        assert_eq!(
            &tag[..11],
            &[9, 0, 0x27, 0x10, 0x34, 0x56, 0x78, 0x12, 0, 0, 0]
        );
        assert_eq!(&tag[11..11 + payload.len()], &payload[..]);
        assert_eq!(&tag[11 + payload.len()..], &(11 + 10_000u32).to_be_bytes());

        let audio =
            Frame::package(MediaKind::Audio, Timestamp(40), &[0xAF, 1, 2], 4096).expect("ok");
        let mut tag = BytesMut::new();
        audio.put_flv_tag(&mut tag);
        assert_eq!(
            &tag[..],
            &[8, 0, 0, 3, 0, 0, 40, 0, 0, 0, 0, 0xAF, 1, 2, 0, 0, 0, 14]
        );
    }

    #[test]
    fn an_empty_body_makes_an_empty_tag() {
        let frame = Frame::package(MediaKind::Data, Timestamp(0), &[], 4096).expect("ok");
        let mut tag = BytesMut::new();
        frame.put_flv_tag(&mut tag);
        assert_eq!(&tag[..], &[18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 11]);
    }

    #[test]
    fn variants_at_another_chunk_size_keep_the_body() {
        let payload = Bytes::from(vec![0x27; 10_000]);
        let frame = Frame::package(MediaKind::Video, Timestamp(40), &payload, 4096).expect("ok");
        let other_size = frame.wire_for(MessageStreamId(2), 128).expect("ok");
        let m = decode_one(&other_size, 128);
        assert_eq!(m.stream_id, MessageStreamId(2));
        assert_eq!(m.payload, payload);
    }
}
