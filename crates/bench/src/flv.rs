//! Reading FLV (Adobe FLV v10.1 annex E): the header, then tags of audio,
//! video and script data, each followed by its back pointer
//! (PreviousTagSize). Two readers of the same bytes: [`read`] takes a
//! whole file (what a bench publisher loops), [`TagReader`] takes a stream
//! as it arrives (what an HTTP-FLV or WebSocket-FLV player reads), keeping
//! only the first bytes of each body if asked.
//!
//! Pure: bytes in, tags out; no I/O, no clock.

use bytes::{Buf, Bytes, BytesMut};

use ringcast_rtmp::limits::MESSAGE_SIZE_MAX_DEFAULT;
use ringcast_rtmp::session::MediaKind;

/// One tag of an FLV file or stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    pub kind: MediaKind,
    /// Milliseconds, the extended byte included (FLV E.4.1: bits 24..31).
    pub timestamp_ms: u32,
    /// The tag body, an RTMP audio, video or data message body; only its
    /// first bytes when the reader keeps a prefix.
    pub body: Bytes,
}

/// Why bytes are not FLV.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FlvError {
    #[error("not FLV (no FLV signature)")]
    Signature,
    #[error("FLV header length {len} is out of range 9..={HEADER_BYTES_MAX}")]
    HeaderLength { len: u32 },
    #[error("FLV PreviousTagSize0 is {found}, not 0")]
    FirstBackPointer { found: u32 },
    #[error("FLV tag at byte {offset} has {size} body bytes, over the max {TAG_BODY_BYTES_MAX}")]
    TagTooLarge { offset: u64, size: u32 },
    #[error("FLV tag at byte {offset} of {size} body bytes is followed by PreviousTagSize {found}, not {}", size + TAG_HEADER_BYTES as u32)]
    BackPointer { offset: u64, size: u32, found: u32 },
    #[error("FLV tag at byte {offset} runs past the end")]
    Truncated { offset: u64 },
    #[error("FLV file has no tags")]
    Empty,
}

/// The largest tag body either reader takes: ringcast's default largest
/// message (`MESSAGE_SIZE_MAX_DEFAULT`, 8 MiB), which it refuses from
/// publishers and so never serves; a 4K keyframe is about 1 MB. The format
/// allows 16 MiB (a 24-bit size); what lies between is a broken stream.
/// A [`TagReader`] keeping a prefix holds at most that prefix of a body
/// whatever its size; one keeping whole bodies holds up to this.
pub const TAG_BODY_BYTES_MAX: u32 = MESSAGE_SIZE_MAX_DEFAULT;
/// An FLV header longer than the 9 bytes of version 1 is allowed (its
/// DataOffset field says where the body starts), but not without bound:
/// nothing has ever written more than 9.
const HEADER_BYTES_MAX: u32 = 1024;
/// FLV header: "FLV", version, flags, header length (u32).
const HEADER_BYTES: usize = 9;
/// Tag header: type, size (u24), timestamp (u24 + extension byte), stream
/// id (u24).
const TAG_HEADER_BYTES: usize = 11;
/// PreviousTagSize: u32.
const BACK_POINTER_BYTES: usize = 4;

/// Every audio, video and script tag of `file`, in order. Back pointers
/// are not checked: old muxers wrote them wrong and a file loops only its
/// tags. A file cut short inside a tag is refused.
pub fn read(file: &Bytes) -> Result<Vec<Tag>, FlvError> {
    let mut reader = TagReader::new(None);
    reader.check_back_pointers = false;
    let mut input = file.clone();
    let mut tags = Vec::new();
    while let Some(tag) = reader.decode(&mut input)? {
        tags.push(tag);
    }
    reader.finish(&input)?;
    if tags.is_empty() {
        return Err(FlvError::Empty);
    }
    Ok(tags)
}

/// An incremental FLV reader: give it bytes as they come; it hands back
/// each audio, video and script tag once its back pointer has arrived and
/// matched. Tags of other types are skipped. With a body prefix, bodies
/// are skimmed: only their first bytes are kept, the rest is dropped from
/// the input as it arrives, so a player holds no whole frame.
#[derive(Debug)]
pub struct TagReader {
    state: State,
    /// Keep at most this many bytes of each body (None: all).
    body_prefix: Option<usize>,
    /// Whether each PreviousTagSize must equal 11 + its tag's body size.
    check_back_pointers: bool,
    /// Bytes taken from the input so far: where errors say they are.
    consumed: u64,
}

#[derive(Debug)]
enum State {
    /// Waiting for the 9-byte header.
    Header,
    /// Skipping what follows a longer header, then PreviousTagSize0.
    AfterHeader {
        extra: usize,
    },
    TagHeader,
    /// Keeping the first bytes of the body, dropping the rest; `left` are
    /// still to come.
    Body {
        head: TagHead,
        kept: Bytes,
        left: usize,
    },
    BackPointer {
        head: TagHead,
        body: Bytes,
    },
}

/// What a tag header says.
#[derive(Clone, Copy, Debug)]
struct TagHead {
    /// Where the tag starts in the stream.
    offset: u64,
    /// None for a type other than audio, video and script data.
    kind: Option<MediaKind>,
    size: u32,
    timestamp_ms: u32,
}

/// What one step of the reader did.
enum Step {
    /// Needs more input.
    Wait,
    /// Moved on; there may be more to do.
    Next,
    Tag(Tag),
}

impl TagReader {
    /// A reader expecting the FLV header first, keeping `body_prefix`
    /// bytes of each body (None: whole bodies).
    pub fn new(body_prefix: Option<usize>) -> TagReader {
        TagReader {
            state: State::Header,
            body_prefix,
            check_back_pointers: true,
            consumed: 0,
        }
    }

    /// Takes what it can from `input`: the next tag, or `Ok(None)` when
    /// `input` holds no more of one (a partial header or back pointer
    /// stays in `input` until the rest arrives). After an error the
    /// stream is broken: the reader must not be used again.
    pub fn decode(&mut self, input: &mut impl Input) -> Result<Option<Tag>, FlvError> {
        loop {
            match self.step(input)? {
                Step::Wait => return Ok(None),
                Step::Next => {}
                Step::Tag(tag) => return Ok(Some(tag)),
            }
        }
    }

    /// The stream ended with `input` left over: an error unless that is
    /// at the end of a tag.
    pub fn finish(&self, input: &[u8]) -> Result<(), FlvError> {
        match &self.state {
            State::TagHeader if input.is_empty() => Ok(()),
            State::Body { head, .. } | State::BackPointer { head, .. } => {
                Err(FlvError::Truncated {
                    offset: head.offset,
                })
            }
            _ => Err(FlvError::Truncated {
                offset: self.consumed,
            }),
        }
    }

    fn step(&mut self, input: &mut impl Input) -> Result<Step, FlvError> {
        let TagReader {
            state,
            body_prefix,
            check_back_pointers,
            consumed,
        } = self;
        match state {
            State::Header => {
                let Some(header) = take_array::<HEADER_BYTES>(input) else {
                    return Ok(Step::Wait);
                };
                if !header.starts_with(b"FLV") {
                    return Err(FlvError::Signature);
                }
                let len = u32::from_be_bytes([header[5], header[6], header[7], header[8]]);
                if !(HEADER_BYTES as u32..=HEADER_BYTES_MAX).contains(&len) {
                    return Err(FlvError::HeaderLength { len });
                }
                take(consumed, input, HEADER_BYTES);
                let extra = len as usize - HEADER_BYTES;
                *state = State::AfterHeader { extra };
            }
            State::AfterHeader { extra } => {
                if input.len() < *extra + BACK_POINTER_BYTES {
                    return Ok(Step::Wait);
                }
                take(consumed, input, *extra);
                let found = be_u32(&take(consumed, input, BACK_POINTER_BYTES));
                if *check_back_pointers && found != 0 {
                    return Err(FlvError::FirstBackPointer { found });
                }
                *state = State::TagHeader;
            }
            State::TagHeader => {
                let Some(h) = take_array::<TAG_HEADER_BYTES>(input) else {
                    return Ok(Step::Wait);
                };
                let offset = *consumed;
                let size = u32::from_be_bytes([0, h[1], h[2], h[3]]);
                if size > TAG_BODY_BYTES_MAX {
                    return Err(FlvError::TagTooLarge { offset, size });
                }
                // The low 5 bits are the type; bit 5 is the filter
                // (encryption) flag, which no live stream sets.
                let kind = match h[0] & 0x1F {
                    8 => Some(MediaKind::Audio),
                    9 => Some(MediaKind::Video),
                    18 => Some(MediaKind::Data),
                    _ => None,
                };
                take(consumed, input, TAG_HEADER_BYTES);
                let head = TagHead {
                    offset,
                    kind,
                    size,
                    // The extension byte holds bits 24..31 (E.4.1).
                    timestamp_ms: u32::from_be_bytes([h[7], h[4], h[5], h[6]]),
                };
                *state = State::Body {
                    head,
                    kept: Bytes::new(),
                    left: size as usize,
                };
            }
            State::Body { head, kept, left } => {
                if *left > 0 && input.is_empty() {
                    return Ok(Step::Wait);
                }
                // The prefix is kept (without a copy when one read holds
                // it whole); once it is full the rest is dropped.
                let room = body_prefix.unwrap_or(usize::MAX).saturating_sub(kept.len());
                let keep = room.min(*left).min(input.len());
                if keep > 0 {
                    let bytes = take(consumed, input, keep);
                    *kept = if kept.is_empty() {
                        bytes
                    } else {
                        let mut joined = BytesMut::with_capacity(kept.len() + bytes.len());
                        joined.extend_from_slice(kept);
                        joined.extend_from_slice(&bytes);
                        joined.freeze()
                    };
                    *left -= keep;
                }
                // Input is left only if the prefix is full.
                let skip = (*left).min(input.len());
                input.advance(skip);
                *consumed += skip as u64;
                *left -= skip;
                if *left > 0 {
                    return Ok(Step::Wait);
                }
                let body = std::mem::take(kept);
                *state = State::BackPointer { head: *head, body };
            }
            State::BackPointer { head, body } => {
                if input.len() < BACK_POINTER_BYTES {
                    return Ok(Step::Wait);
                }
                let found = be_u32(&take(consumed, input, BACK_POINTER_BYTES));
                let expected = head.size + TAG_HEADER_BYTES as u32;
                if *check_back_pointers && found != expected {
                    return Err(FlvError::BackPointer {
                        offset: head.offset,
                        size: head.size,
                        found,
                    });
                }
                let tag = head.kind.map(|kind| Tag {
                    kind,
                    timestamp_ms: head.timestamp_ms,
                    body: std::mem::take(body),
                });
                *state = State::TagHeader;
                if let Some(tag) = tag {
                    return Ok(Step::Tag(tag));
                }
            }
        }
        Ok(Step::Next)
    }
}

/// What a [`TagReader`] reads from: a read buffer ([`BytesMut`]) or a
/// received WebSocket payload ([`Bytes`]). The body bytes it keeps are
/// split off either without a copy.
pub trait Input: Buf + std::ops::Deref<Target = [u8]> {
    /// The first `n` bytes, removed.
    fn split_bytes(&mut self, n: usize) -> Bytes;
}

impl Input for BytesMut {
    fn split_bytes(&mut self, n: usize) -> Bytes {
        self.split_to(n).freeze()
    }
}

impl Input for Bytes {
    fn split_bytes(&mut self, n: usize) -> Bytes {
        self.split_to(n)
    }
}

/// Takes `n` bytes of `input`, counting them.
fn take(consumed: &mut u64, input: &mut impl Input, n: usize) -> Bytes {
    *consumed += n as u64;
    input.split_bytes(n)
}

/// The first `N` bytes of `input`, if it holds that many (not taken).
fn take_array<const N: usize>(input: &[u8]) -> Option<[u8; N]> {
    input.get(..N)?.try_into().ok()
}

fn be_u32(bytes: &[u8]) -> u32 {
    bytes.try_into().map_or(0, u32::from_be_bytes)
}
#[cfg(test)]
mod tests {
    use super::*;
    use ringcast_rtmp::protocol::message::flv_tag;

    fn flv(tags: &[(u8, u32, &[u8])]) -> Bytes {
        let mut out = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
        for (kind, ts, body) in tags {
            out.extend(flv_tag(*kind, *ts, body));
        }
        Bytes::from(out)
    }

    #[test]
    fn tags_come_back_with_kinds_timestamps_and_bodies() {
        let file = flv(&[
            (18, 0, b"\x02\x00\x0aonMetaData"),
            (9, 0, &[0x17, 0]),
            (8, 0x0100_0023, &[0xAF, 1]),
        ]);
        let tags = read(&file).expect("valid");
        let summary: Vec<_> = tags
            .iter()
            .map(|t| (t.kind, t.timestamp_ms, t.body.len()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (MediaKind::Data, 0, 13),
                (MediaKind::Video, 0, 2),
                (MediaKind::Audio, 0x0100_0023, 2)
            ]
        );
    }

    #[test]
    fn bad_files_are_named_errors() {
        assert_eq!(
            read(&Bytes::from_static(b"GIF89a....")),
            Err(FlvError::Signature)
        );
        let mut file = flv(&[(9, 0, &[0x17, 0, 0, 0])]).to_vec();
        file.truncate(file.len() - 6);
        assert_eq!(
            read(&Bytes::from(file)),
            Err(FlvError::Truncated { offset: 13 })
        );
        assert_eq!(read(&flv(&[])), Err(FlvError::Empty));
    }

    #[test]
    fn the_bundled_sample_is_h264_and_aac() {
        let tags = read(&Bytes::from_static(super::super::source::SAMPLE)).expect("valid");
        let coded = tags
            .iter()
            .filter(|t| t.kind == MediaKind::Video && t.body[1] == 1)
            .count();
        assert_eq!(coded, 60, "2 s at 30 fps");
        assert!(
            tags.iter()
                .any(|t| t.kind == MediaKind::Audio && t.body[..2] == [0xAF, 0])
        );
    }

    /// Everything `reader` makes of `stream` handed over in pieces of
    /// `piece` bytes, and the input it left.
    fn decode_in_pieces(
        reader: &mut TagReader,
        stream: &[u8],
        piece: usize,
    ) -> Result<(Vec<Tag>, BytesMut), FlvError> {
        let mut input = BytesMut::new();
        let mut tags = Vec::new();
        for chunk in stream.chunks(piece.max(1)) {
            input.extend_from_slice(chunk);
            while let Some(tag) = reader.decode(&mut input)? {
                tags.push(tag);
            }
        }
        Ok((tags, input))
    }

    fn a_stream() -> Bytes {
        flv(&[
            (18, 0, b"\x02\x00\x0aonMetaData"),
            (9, 0, &[0x17, 0, 0, 0, 0, 1, 2, 3]),
            (8, 0x0100_0023, &[0xAF, 1, 9, 9, 9]),
            (9, 40, &[0x27, 1, 0, 0, 0, 4, 5, 6, 7, 8, 9, 10]),
        ])
    }

    #[test]
    fn a_stream_split_anywhere_gives_the_same_tags_as_a_file() {
        let stream = a_stream();
        let whole = read(&stream).expect("valid");
        for piece in 1..=stream.len() {
            let mut reader = TagReader::new(None);
            let (tags, left) = decode_in_pieces(&mut reader, &stream, piece).expect("valid");
            assert_eq!(tags, whole, "in pieces of {piece}");
            assert!(left.is_empty());
            assert_eq!(reader.finish(&left), Ok(()));
        }
    }

    #[test]
    fn a_skimming_reader_keeps_only_each_body_prefix_and_drops_the_rest() {
        let stream = a_stream();
        let whole = read(&stream).expect("valid");
        let expected: Vec<Tag> = whole
            .iter()
            .map(|t| Tag {
                body: t.body.slice(..t.body.len().min(3)),
                ..t.clone()
            })
            .collect();
        for piece in 1..=stream.len() {
            let mut reader = TagReader::new(Some(3));
            let (tags, left) = decode_in_pieces(&mut reader, &stream, piece).expect("valid");
            assert_eq!(tags, expected, "in pieces of {piece}");
            assert!(left.is_empty());
        }
    }

    #[test]
    fn a_skimming_reader_holds_no_large_body() {
        let body = vec![0x27; 1 << 20];
        let stream = flv(&[(9, 0, &body)]);
        let mut reader = TagReader::new(Some(96));
        let mut input = BytesMut::new();
        let mut tags = Vec::new();
        for chunk in stream.chunks(4096) {
            input.extend_from_slice(chunk);
            while let Some(tag) = reader.decode(&mut input).expect("valid") {
                tags.push(tag);
            }
            assert!(input.len() < 11, "{} bytes held", input.len());
        }
        assert_eq!(tags.len(), 1);
        assert_eq!(tags[0].body.len(), 96);
    }

    #[test]
    fn unknown_tag_types_and_a_longer_header_are_skipped() {
        let mut stream = b"FLV\x01\x05\x00\x00\x00\x0bxx\x00\x00\x00\x00".to_vec();
        stream.extend(flv_tag(15, 0, b"what"));
        stream.extend(flv_tag(9, 7, &[0x17, 0]));
        let mut reader = TagReader::new(None);
        let (tags, _) = decode_in_pieces(&mut reader, &stream, 5).expect("valid");
        assert_eq!(
            tags,
            vec![Tag {
                kind: MediaKind::Video,
                timestamp_ms: 7,
                body: Bytes::from_static(&[0x17, 0]),
            }]
        );
    }

    #[test]
    fn broken_streams_are_named_errors() {
        let decode = |stream: &[u8]| {
            decode_in_pieces(&mut TagReader::new(Some(96)), stream, stream.len()).map(|r| r.0)
        };
        assert_eq!(decode(b"HTTP/1.1 200 OK\r\n\r\n"), Err(FlvError::Signature));
        assert_eq!(
            decode(b"FLV\x01\x05\x00\x00\x00\x08\x00\x00\x00\x00"),
            Err(FlvError::HeaderLength { len: 8 })
        );
        assert_eq!(
            decode(b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x0f"),
            Err(FlvError::FirstBackPointer { found: 15 })
        );
        let mut wrong_back_pointer = flv(&[(9, 0, &[0x17, 0])]).to_vec();
        *wrong_back_pointer.last_mut().unwrap() = 2;
        assert_eq!(
            decode(&wrong_back_pointer),
            Err(FlvError::BackPointer {
                offset: 13,
                size: 2,
                found: 2
            })
        );
        // 8 MiB + 1 in the size field: refused from the header alone.
        let mut too_large = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
        too_large.extend([9, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            decode(&too_large),
            Err(FlvError::TagTooLarge {
                offset: 13,
                size: 0x0080_0001
            })
        );
    }

    #[test]
    fn a_stream_ending_inside_a_tag_is_truncated() {
        let stream = a_stream();
        let mut reader = TagReader::new(None);
        let cut = &stream[..stream.len() - 2];
        let (tags, left) = decode_in_pieces(&mut reader, cut, 7).expect("valid so far");
        assert_eq!(tags.len(), 3);
        let last = (stream.len() - (11 + 12 + 4)) as u64;
        assert_eq!(
            reader.finish(&left),
            Err(FlvError::Truncated { offset: last })
        );
    }
}
