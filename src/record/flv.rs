//! A recorded FLV file (FLV 10.1 annex E): the header, an `onMetaData`
//! tag, then each audio, video and data message as a tag whose body is
//! the message as received, timestamps from 0.
//!
//! At the end the `onMetaData` tag is written again, in place, with the
//! duration, the file size and a `keyframes` object (`filepositions`:
//! each indexed keyframe's tag offset; `times`: its time in seconds), as
//! yamdi and flvtool2 write it: players (ffmpeg, flv.js, VLC) seek with
//! it. Its size is fixed when the file starts, room for
//! [`limits::RECORD_FLV_KEYFRAMES_MAX`] keyframes reserved (the rest of
//! the tag body is zeros, which demuxers skip: they read the name and one
//! value). Why reserve rather than write the index at the end and then
//! rewrite the file: a rewrite copies the whole file (ffmpeg's
//! `add_keyframe_index` does), doubling the disk's work and holding the
//! recorder thread for as long; reserving costs ~37 KiB a file, the end
//! is one small write, and a file cut short (a crash, a full disk) still
//! plays, its `duration` 0 and its index empty. A file with more
//! keyframes than that keeps every second one in its index, then every
//! fourth, and so on: a seek lands on a keyframe a little earlier.
//!
//! The publisher's own `onMetaData` lends its numbers, booleans and short
//! strings (picture size, frame rate, codecs, encoder), within
//! [`limits::RECORD_FLV_METADATA_BYTES_MAX`]; metadata sent after the
//! file started is not written (a second `onMetaData` with `duration` 0
//! would reset the duration players read).

use bytes::{BufMut, Bytes, BytesMut};
use ringcast_web::flv as flv_header;

use crate::limits;
use crate::media::{Frame, FrameClass};
use crate::protocol::amf::{Limits, Value};
use crate::protocol::amf0;
use crate::session::MediaKind;

/// The FLV tag type of script data (`onMetaData`).
const SCRIPT_DATA: u8 = 18;

/// An FLV tag's header: type, data size, timestamp and its extension,
/// stream id.
const TAG_HEADER_BYTES: usize = 11;

/// Where the `onMetaData` tag starts: after the file header and
/// PreviousTagSize0.
const METADATA_AT: u64 = flv_header::HEADER_BYTES as u64;

/// The byte of the file header that says which tracks follow.
const FLAGS_AT: u64 = 4;

/// Properties of the publisher's metadata that describe its own file or
/// ours, not the stream: ours replace them.
const OURS: &[&str] = &[
    "duration",
    "filesize",
    "datasize",
    "videosize",
    "audiosize",
    "lasttimestamp",
    "lastkeyframetimestamp",
    "lastkeyframelocation",
    "hasVideo",
    "hasAudio",
    "hasKeyframes",
    "hasMetadata",
    "canSeekToEnd",
    "keyframes",
];

/// A string of the publisher's metadata longer than this is left out:
/// the stream's description is a few words (an encoder's name).
const STRING_BYTES_MAX: usize = 256;

/// One FLV file being written.
#[derive(Debug)]
pub struct FlvFile {
    /// The publisher's properties kept for our `onMetaData`.
    properties: Vec<(String, Value)>,
    /// Bytes of the `onMetaData` tag's body.
    reserved: usize,
    /// Bytes of the file so far.
    len: u64,
    index: Index,
    audio: bool,
    video: bool,
}

impl FlvFile {
    /// A file whose `onMetaData` lends from `metadata` (the stream's
    /// latest, if any): the file, and its head (header and the reserved
    /// `onMetaData` tag) in `out`.
    pub fn start(metadata: Option<&Frame>, out: &mut BytesMut) -> FlvFile {
        let properties = metadata.map(publisher_properties).unwrap_or_default();
        let full = Index::full();
        let reserved = encode_metadata(&properties, 0, 0, false, false, &full).len();
        let mut file = FlvFile {
            properties,
            reserved,
            len: 0,
            index: Index::default(),
            audio: false,
            video: false,
        };
        let head = file.head(0, 0);
        file.len = head.len() as u64;
        out.put_slice(&head);
        file
    }

    /// Appends `frame` as a tag `timestamp_ms` into the file.
    pub fn tag(&mut self, frame: &Frame, timestamp_ms: u32, out: &mut BytesMut) {
        let at = out.len();
        frame.put_flv_tag(out);
        // The tag carries the file's time, not the stream's: 24 bits, then
        // the extension byte (the high 8).
        let [high, b2, b1, b0] = timestamp_ms.to_be_bytes();
        if let Some(field) = out.get_mut(at + 4..at + 8) {
            field.copy_from_slice(&[b2, b1, b0, high]);
        }
        match frame.kind {
            MediaKind::Video => self.video = true,
            MediaKind::Audio => self.audio = true,
            MediaKind::Data => {}
        }
        if frame.class == FrameClass::Keyframe {
            self.index.note(self.len, timestamp_ms);
        }
        self.len += (out.len() - at) as u64;
    }

    /// Bytes of the head: what a file must hold to be one.
    pub fn head_len(&self) -> u64 {
        METADATA_AT + (TAG_HEADER_BYTES + self.reserved + 4) as u64
    }

    /// Bytes of the file so far.
    pub fn size(&self) -> u64 {
        self.len
    }

    /// What to write over the head once the file holds its first `len`
    /// bytes (whole tags) and `duration_ms` of media: the header's track
    /// flags and the `onMetaData` tag with the duration, the size and the
    /// keyframes within those bytes. Offsets and bytes, in file order.
    pub fn finish(&self, len: u64, duration_ms: u64) -> Vec<(u64, Bytes)> {
        let index = self.index.within(len);
        let head = self.head_with(len, duration_ms, &index);
        let flags = head.slice(FLAGS_AT as usize..FLAGS_AT as usize + 1);
        let metadata = head.slice(METADATA_AT as usize..);
        vec![(FLAGS_AT, flags), (METADATA_AT, metadata)]
    }

    fn head(&self, len: u64, duration_ms: u64) -> Bytes {
        self.head_with(len, duration_ms, &self.index)
    }

    /// The file header and the `onMetaData` tag, its body padded to the
    /// reserved size.
    fn head_with(&self, len: u64, duration_ms: u64, index: &Index) -> Bytes {
        let body = encode_metadata(
            &self.properties,
            len,
            duration_ms,
            self.video,
            self.audio,
            index,
        );
        // Same properties, at most as many keyframes: never longer than
        // what was reserved with the index full.
        debug_assert!(body.len() <= self.reserved);
        let mut out = BytesMut::with_capacity(self.head_len() as usize);
        out.put_slice(&flv_header::header(self.audio, self.video));
        out.put_u8(SCRIPT_DATA);
        out.put_uint(self.reserved as u64, 3);
        out.put_bytes(0, 4 + 3);
        out.put_slice(body.get(..self.reserved).unwrap_or(&body));
        out.put_bytes(0, self.reserved.saturating_sub(body.len()));
        out.put_u32((TAG_HEADER_BYTES + self.reserved) as u32);
        out.freeze()
    }
}

/// The keyframes indexed: each one's tag offset and time, every
/// `stride`-th keyframe of the file.
#[derive(Debug)]
struct Index {
    positions: Vec<u64>,
    times_ms: Vec<u32>,
    stride: u64,
    /// Keyframes seen, indexed or not.
    seen: u64,
}

impl Default for Index {
    fn default() -> Self {
        Index {
            positions: Vec::new(),
            times_ms: Vec::new(),
            stride: 1,
            seen: 0,
        }
    }
}

impl Index {
    /// An index as long as it gets, for the size to reserve.
    fn full() -> Index {
        Index {
            positions: vec![0; limits::RECORD_FLV_KEYFRAMES_MAX],
            times_ms: vec![0; limits::RECORD_FLV_KEYFRAMES_MAX],
            ..Index::default()
        }
    }

    /// A keyframe's tag at `position`, `time_ms` into the file.
    fn note(&mut self, position: u64, time_ms: u32) {
        let n = self.seen;
        self.seen += 1;
        if n % self.stride != 0 {
            return;
        }
        if self.positions.len() >= limits::RECORD_FLV_KEYFRAMES_MAX {
            // Keep every second entry: keyframes 0, 2s, 4s, ... of stride
            // s; n, a multiple of s·max, is one of them (max is even).
            let mut kept = 0;
            self.positions.retain(|_| {
                kept += 1;
                kept % 2 == 1
            });
            let mut kept = 0;
            self.times_ms.retain(|_| {
                kept += 1;
                kept % 2 == 1
            });
            self.stride *= 2;
        }
        self.positions.push(position);
        self.times_ms.push(time_ms);
    }

    /// The entries whose tags lie within the first `len` bytes.
    fn within(&self, len: u64) -> Index {
        let count = self.positions.iter().take_while(|p| **p < len).count();
        Index {
            positions: self.positions.iter().take(count).copied().collect(),
            times_ms: self.times_ms.iter().take(count).copied().collect(),
            stride: self.stride,
            seen: self.seen,
        }
    }
}

/// The `onMetaData` body: the name, then an ECMA array of the
/// publisher's properties and ours. Its length depends only on the
/// properties and the number of keyframes (numbers are always 9 bytes).
fn encode_metadata(
    properties: &[(String, Value)],
    len: u64,
    duration_ms: u64,
    video: bool,
    audio: bool,
    index: &Index,
) -> BytesMut {
    let numbers =
        |items: Vec<f64>| Value::StrictArray(items.into_iter().map(Value::Number).collect());
    let keyframes = Value::object([
        (
            "filepositions",
            numbers(index.positions.iter().map(|p| *p as f64).collect()),
        ),
        (
            "times",
            numbers(
                index
                    .times_ms
                    .iter()
                    .map(|t| f64::from(*t) / 1000.0)
                    .collect(),
            ),
        ),
    ]);
    let mut entries = properties.to_vec();
    entries.extend([
        (
            "duration".to_owned(),
            Value::Number(duration_ms as f64 / 1000.0),
        ),
        ("filesize".to_owned(), Value::Number(len as f64)),
        ("hasVideo".to_owned(), Value::Boolean(video)),
        ("hasAudio".to_owned(), Value::Boolean(audio)),
        (
            "hasKeyframes".to_owned(),
            Value::Boolean(!index.positions.is_empty()),
        ),
        ("canSeekToEnd".to_owned(), Value::Boolean(true)),
        ("keyframes".to_owned(), keyframes),
    ]);
    let mut out = BytesMut::new();
    amf0::encode_all(
        &[Value::string("onMetaData"), Value::EcmaArray(entries)],
        &mut out,
    );
    out
}

/// The publisher's metadata properties worth keeping: numbers, booleans
/// and short strings not describing a file, within
/// [`limits::RECORD_FLV_METADATA_BYTES_MAX`] encoded.
fn publisher_properties(metadata: &Frame) -> Vec<(String, Value)> {
    let body = metadata.payload();
    let Ok(values) = amf0::decode_all(&body, &Limits::default()) else {
        return Vec::new();
    };
    let properties = match values.get(1) {
        Some(Value::EcmaArray(entries)) => entries.as_slice(),
        Some(value) => value.properties().unwrap_or_default(),
        None => &[],
    };
    let mut kept = Vec::new();
    let mut bytes = 0;
    for (name, value) in properties {
        let scalar = match value {
            Value::Number(_) | Value::Boolean(_) => true,
            Value::String(text) => text.len() <= STRING_BYTES_MAX,
            _ => false,
        };
        if !scalar || OURS.contains(&name.as_str()) || name.len() > STRING_BYTES_MAX {
            continue;
        }
        let mut encoded = BytesMut::new();
        amf0::encode(value, &mut encoded);
        let cost = 2 + name.len() + encoded.len();
        if bytes + cost > limits::RECORD_FLV_METADATA_BYTES_MAX {
            break;
        }
        bytes += cost;
        kept.push((name.clone(), value.clone()));
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Timestamp;

    fn video(keyframe: bool, ts: u32) -> Frame {
        let first = if keyframe { 0x17 } else { 0x27 };
        Frame::package(
            MediaKind::Video,
            Timestamp(ts),
            &[first, 1, 0, 0, 0, 9, 9],
            4096,
        )
        .unwrap()
    }

    fn metadata() -> Frame {
        let mut body = BytesMut::new();
        amf0::encode_all(
            &[
                Value::string("onMetaData"),
                Value::EcmaArray(vec![
                    ("width".into(), Value::Number(320.0)),
                    ("duration".into(), Value::Number(0.0)),
                    ("encoder".into(), Value::string("Lavf59")),
                    ("trackinfo".into(), Value::StrictArray(vec![Value::Null])),
                ]),
            ],
            &mut body,
        );
        Frame::metadata(Timestamp(0), &body, 4096).unwrap()
    }

    /// The `onMetaData` value of a file's bytes (its tag's body is the
    /// name and the value, then zeros).
    fn read_metadata(file: &[u8]) -> Vec<(String, Value)> {
        assert_eq!(file[13], SCRIPT_DATA);
        let size = u32::from_be_bytes([0, file[14], file[15], file[16]]) as usize;
        let body = &file[24..24 + size];
        let end = body.iter().rposition(|b| *b != 0).unwrap() + 1;
        assert_eq!(body[end - 1], 9, "the object end marker, then zeros");
        let values = amf0::decode_all(&body[..end], &Limits::default()).unwrap();
        match &values[..] {
            [Value::String(name), Value::EcmaArray(entries)] => {
                assert_eq!(name, "onMetaData");
                entries.clone()
            }
            other => panic!("not onMetaData: {other:?}"),
        }
    }

    fn property<'a>(entries: &'a [(String, Value)], name: &str) -> &'a Value {
        &entries.iter().find(|(n, _)| n == name).unwrap().1
    }

    fn apply(file: &mut [u8], patches: Vec<(u64, Bytes)>) {
        for (at, bytes) in patches {
            let at = at as usize;
            file[at..at + bytes.len()].copy_from_slice(&bytes);
        }
    }

    #[test]
    fn the_head_is_rewritten_in_place_with_duration_size_and_keyframes() {
        let mut out = BytesMut::new();
        let mut file = FlvFile::start(Some(&metadata()), &mut out);
        assert_eq!(out.len() as u64, file.head_len());
        assert_eq!(&out[..3], b"FLV");
        let head = read_metadata(&out);
        assert_eq!(property(&head, "width"), &Value::Number(320.0));
        assert_eq!(property(&head, "encoder"), &Value::string("Lavf59"));
        assert!(head.iter().all(|(n, _)| n != "trackinfo"), "scalars only");
        assert_eq!(
            head.iter().filter(|(n, _)| n == "duration").count(),
            1,
            "the publisher's duration is replaced by ours"
        );
        let mut positions = Vec::new();
        for n in 0..90u32 {
            if n % 30 == 0 {
                positions.push(out.len() as f64);
            }
            file.tag(&video(n % 30 == 0, 5000 + n * 33), n * 33, &mut out);
        }
        assert_eq!(file.size(), out.len() as u64);
        let mut bytes = out.to_vec();
        let len = bytes.len() as u64;
        apply(&mut bytes, file.finish(len, 3000));
        assert_eq!(bytes.len() as u64, len, "nothing moved");
        assert_eq!(bytes[4], 0x01, "video only");
        let meta = read_metadata(&bytes);
        assert_eq!(property(&meta, "duration"), &Value::Number(3.0));
        assert_eq!(property(&meta, "filesize"), &Value::Number(len as f64));
        let keyframes = property(&meta, "keyframes");
        let array = |name| match keyframes.property(name) {
            Some(Value::StrictArray(items)) => items
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect::<Vec<_>>(),
            other => panic!("{name}: {other:?}"),
        };
        assert_eq!(array("filepositions"), positions);
        assert_eq!(array("times"), [0.0, 0.99, 1.98]);
        // Each indexed position is a video keyframe tag at that time.
        for (at, time) in positions.iter().zip(array("times")) {
            let tag = &bytes[*at as usize..];
            assert_eq!(tag[0], 9);
            assert_eq!(tag[11] >> 4, 1, "a keyframe");
            let ts = u32::from_be_bytes([tag[7], tag[4], tag[5], tag[6]]);
            assert_eq!(f64::from(ts) / 1000.0, time);
        }
    }

    #[test]
    fn a_file_cut_short_indexes_only_what_it_holds() {
        let mut out = BytesMut::new();
        let mut file = FlvFile::start(None, &mut out);
        file.tag(&video(true, 0), 0, &mut out);
        let cut = out.len() as u64;
        file.tag(&video(true, 1000), 1000, &mut out);
        let mut bytes = out[..cut as usize].to_vec();
        apply(&mut bytes, file.finish(cut, 40));
        let meta = read_metadata(&bytes);
        assert_eq!(property(&meta, "filesize"), &Value::Number(cut as f64));
        let times = property(&meta, "keyframes").property("times").unwrap();
        assert_eq!(times, &Value::StrictArray(vec![Value::Number(0.0)]));
    }

    #[test]
    fn a_long_file_keeps_every_second_keyframe_then_every_fourth() {
        let mut index = Index::default();
        let max = limits::RECORD_FLV_KEYFRAMES_MAX as u64;
        for n in 0..max * 3 {
            index.note(n * 100, (n * 1000) as u32);
        }
        assert!(index.positions.len() <= limits::RECORD_FLV_KEYFRAMES_MAX);
        assert_eq!(index.stride, 4);
        assert!(
            index
                .positions
                .iter()
                .enumerate()
                .all(|(i, p)| *p == i as u64 * 400)
        );
        assert_eq!(index.times_ms.len(), index.positions.len());
        // The reserved head holds the fullest index.
        let mut out = BytesMut::new();
        let file = FlvFile {
            index,
            ..FlvFile::start(Some(&metadata()), &mut out)
        };
        let patches = file.finish(u64::MAX, 1);
        assert_eq!(
            patches[1].1.len() as u64,
            file.head_len() - METADATA_AT,
            "the same size as reserved"
        );
    }
}
