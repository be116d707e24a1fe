//! One recording as a state machine: the stream's frames in, its files
//! out, as operations ([`Op`]) the recorder thread carries out on the
//! file system. No I/O and no clock here.
//!
//! - **Start.** A file starts at a video keyframe, or at an audio frame
//!   while the stream has no video sequence header: what comes before is
//!   not written (a player could not decode it). It begins with the
//!   stream's latest metadata and sequence headers, and its timestamps
//!   count from its first frame (0).
//! - **Split.** At the first keyframe (or, without video, audio frame)
//!   once the file lasts `max_duration` or holds `max_bytes`, the file
//!   ends and the next starts with that frame. An MP4 file also ends at
//!   a new decoder configuration: it has one init segment.
//! - **End.** The file is completed ([`Segmenter::finish`]: the FLV head
//!   written again with the index), or, when the disk failed, completed
//!   as far as it reached ([`Segmenter::abandon`]); a file that holds no
//!   media (an MP4 recording stopped before its first fragment) is
//!   removed instead.

use bytes::{Bytes, BytesMut};

use super::flv::FlvFile;
use super::mp4::Mp4File;
use crate::config::{RecordFormat, RecordSettings};
use crate::media::{Frame, FrameClass};
use crate::session::MediaKind;

/// What the recorder thread does with the file system, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Create the recording's next file, named now: its media starts.
    Open,
    /// Append `bytes` to the open file; once they are written it holds
    /// `media_ms` of media.
    Append { bytes: Bytes, media_ms: u64 },
    /// Write `bytes` at `offset` of the open file, within what it holds.
    Patch { offset: u64, bytes: Bytes },
    /// The open file is complete: it holds `duration_ms` of media.
    Close { duration_ms: u64 },
    /// Remove the open file: it holds no media.
    Discard,
}

/// One recording's files.
#[derive(Debug)]
pub struct Segmenter {
    format: RecordFormat,
    /// 0: no limit.
    duration_ms_max: u64,
    bytes_max: u64,
    headers: Headers,
    file: Option<Open>,
}

/// What a file starts with.
#[derive(Debug, Default)]
struct Headers {
    metadata: Option<Frame>,
    video: Option<Frame>,
    audio: Option<Frame>,
}

/// The file being written.
#[derive(Debug)]
struct Open {
    muxer: Muxer,
    /// The stream timestamp that is 0 in the file.
    base: u32,
    /// Bytes appended.
    bytes: u64,
    /// Where the first media ends: a file shorter holds none.
    media_end: Option<u64>,
    /// Started without video: video waits for a keyframe.
    video_gated: bool,
    video: Track,
    audio: Track,
}

#[derive(Debug)]
enum Muxer {
    Flv(FlvFile),
    /// Boxed: the packager is large, and most recordings are FLV.
    Mp4(Box<Mp4File>),
}

/// A track's last timestamp in the file and the last step to it, for
/// the duration of the file's last frame.
#[derive(Debug, Default)]
struct Track {
    last_ms: Option<u32>,
    step_ms: u32,
}

impl Track {
    fn note(&mut self, ms: u32) {
        if let Some(last) = self.last_ms {
            if ms > last {
                self.step_ms = ms - last;
            }
        }
        self.last_ms = Some(self.last_ms.map_or(ms, |last| last.max(ms)));
    }

    /// Where its last frame ends.
    fn end_ms(&self) -> Option<u64> {
        (self.last_ms).map(|ms| u64::from(ms) + u64::from(self.step_ms))
    }
}

impl Segmenter {
    pub fn new(settings: &RecordSettings) -> Segmenter {
        Segmenter {
            format: settings.format,
            duration_ms_max: u64::try_from(settings.max_duration.as_millis()).unwrap_or(u64::MAX),
            bytes_max: settings.max_bytes,
            headers: Headers::default(),
            file: None,
        }
    }

    /// One frame of the stream, in order.
    pub fn push(&mut self, frame: &Frame, ops: &mut Vec<Op>) {
        match frame.class {
            // Written at the start of each file, never in the middle.
            FrameClass::Metadata => {
                self.headers.metadata = Some(frame.clone());
                return;
            }
            FrameClass::SequenceHeader => return self.header(frame, ops),
            _ => {}
        }
        let starts = match frame.kind {
            MediaKind::Video => frame.class == FrameClass::Keyframe,
            MediaKind::Audio => self.headers.video.is_none(),
            MediaKind::Data => false,
        };
        match &self.file {
            None if starts => self.open(frame, ops),
            None => return,
            Some(open) if starts && self.is_full(open, frame) => {
                self.close(ops);
                self.open(frame, ops);
            }
            Some(_) => {}
        }
        self.write(frame, ops);
    }

    /// The recording ends: the open file is completed.
    pub fn finish(&mut self, ops: &mut Vec<Op>) {
        self.close(ops);
    }

    /// The open file could hold only its first `len` bytes (whole writes
    /// of [`Op::Append`]), `media_ms` of media: it is completed as far as
    /// that, or discarded if that holds no media. The recording ends.
    pub fn abandon(&mut self, len: u64, media_ms: u64, ops: &mut Vec<Op>) {
        let Some(open) = self.file.take() else {
            return;
        };
        if open.media_end.is_none_or(|end| end > len) {
            ops.push(Op::Discard);
            return;
        }
        if let Muxer::Flv(flv) = &open.muxer {
            patch(flv.finish(len, media_ms), ops);
        }
        ops.push(Op::Close {
            duration_ms: media_ms,
        });
    }

    /// A sequence header: the next file starts with it, the open one
    /// takes it as any message (FLV) or ends (MP4, when it changed).
    fn header(&mut self, frame: &Frame, ops: &mut Vec<Op>) {
        let slot = match frame.kind {
            MediaKind::Video => &mut self.headers.video,
            _ => &mut self.headers.audio,
        };
        let changed = slot
            .as_ref()
            .is_none_or(|old| old.payload() != frame.payload());
        *slot = Some(frame.clone());
        match &self.file {
            Some(open) if changed && matches!(open.muxer, Muxer::Mp4(_)) => self.close(ops),
            Some(_) => self.write(frame, ops),
            None => {}
        }
    }

    /// Whether the open file is done once `frame` would start the next.
    fn is_full(&self, open: &Open, frame: &Frame) -> bool {
        let lasted_ms = u64::from(since(frame.timestamp.0, open.base));
        (self.duration_ms_max > 0 && lasted_ms >= self.duration_ms_max)
            || (self.bytes_max > 0 && open.bytes >= self.bytes_max)
    }

    /// A file starts at `frame`, with the headers at its time 0.
    fn open(&mut self, frame: &Frame, ops: &mut Vec<Op>) {
        let mut head = BytesMut::new();
        let mut muxer = match self.format {
            RecordFormat::Flv => {
                Muxer::Flv(FlvFile::start(self.headers.metadata.as_ref(), &mut head))
            }
            RecordFormat::Mp4 => Muxer::Mp4(Box::default()),
        };
        let headers = [&self.headers.video, &self.headers.audio];
        for header in headers.into_iter().flatten() {
            match &mut muxer {
                Muxer::Flv(flv) => flv.tag(header, 0, &mut head),
                // A configuration makes no fragment.
                Muxer::Mp4(mp4) => mp4.push(header, 0, &mut Vec::new()),
            }
        }
        ops.push(Op::Open);
        let mut open = Open {
            muxer,
            base: frame.timestamp.0,
            bytes: 0,
            media_end: None,
            video_gated: frame.kind != MediaKind::Video,
            video: Track::default(),
            audio: Track::default(),
        };
        if !head.is_empty() {
            open.append(head.freeze(), false, 0, ops);
        }
        self.file = Some(open);
    }

    /// Writes `frame` into the open file.
    fn write(&mut self, frame: &Frame, ops: &mut Vec<Op>) {
        let Some(open) = self.file.as_mut() else {
            return;
        };
        if frame.kind == MediaKind::Video {
            match frame.class {
                FrameClass::Keyframe => open.video_gated = false,
                FrameClass::Interframe if open.video_gated => return,
                _ => {}
            }
        }
        let ms = since(frame.timestamp.0, open.base);
        let media = frame.class != FrameClass::SequenceHeader && frame.kind != MediaKind::Data;
        if media {
            match frame.kind {
                MediaKind::Video => open.video.note(ms),
                _ => open.audio.note(ms),
            }
        }
        match &mut open.muxer {
            Muxer::Flv(flv) => {
                let mut tag = BytesMut::with_capacity(frame.flv_tag_len());
                flv.tag(frame, ms, &mut tag);
                let media_ms = open.flv_duration_ms();
                open.append(tag.freeze(), media, media_ms, ops);
            }
            Muxer::Mp4(mp4) => {
                let mut made = Vec::new();
                mp4.push(frame, ms, &mut made);
                let media_ms = mp4.duration_ms();
                open.append_all(made, media_ms, ops);
            }
        }
    }

    /// Completes the open file, if any.
    fn close(&mut self, ops: &mut Vec<Op>) {
        let Some(mut open) = self.file.take() else {
            return;
        };
        let flv_ms = open.flv_duration_ms();
        let duration_ms = match &mut open.muxer {
            Muxer::Flv(flv) => {
                patch(flv.finish(flv.size(), flv_ms), ops);
                flv_ms
            }
            Muxer::Mp4(mp4) => {
                let mut made = Vec::new();
                mp4.finish(&mut made);
                let duration_ms = mp4.duration_ms();
                open.append_all(made, duration_ms, ops);
                duration_ms
            }
        };
        ops.push(match open.media_end {
            Some(_) => Op::Close { duration_ms },
            None => Op::Discard,
        });
    }
}

impl Open {
    /// Appends `bytes`, holding media or not.
    fn append(&mut self, bytes: Bytes, media: bool, media_ms: u64, ops: &mut Vec<Op>) {
        self.bytes += bytes.len() as u64;
        if media && self.media_end.is_none() {
            self.media_end = Some(self.bytes);
        }
        ops.push(Op::Append { bytes, media_ms });
    }

    /// Appends what the MP4 packager made: fragments (media), after the
    /// init segment.
    fn append_all(&mut self, made: Vec<Bytes>, media_ms: u64, ops: &mut Vec<Op>) {
        let init = usize::from(self.bytes == 0);
        for (n, bytes) in made.into_iter().enumerate() {
            self.append(bytes, n >= init, media_ms, ops);
        }
    }

    /// An FLV file's duration: to the end of its last frame, the lead
    /// track's (video when it has any).
    fn flv_duration_ms(&self) -> u64 {
        let end = |track: &Track| track.end_ms().unwrap_or(0);
        if self.video.last_ms.is_some() {
            end(&self.video).max(self.audio.last_ms.map_or(0, u64::from))
        } else {
            end(&self.audio)
        }
    }
}

fn patch(patches: Vec<(u64, Bytes)>, ops: &mut Vec<Op>) {
    ops.extend((patches.into_iter()).map(|(offset, bytes)| Op::Patch { offset, bytes }));
}

/// Milliseconds from `base` to `ms` in wrapping stream time; a frame a
/// little before the file's first (audio interleaved with the keyframe
/// that started it) is at 0.
fn since(ms: u32, base: u32) -> u32 {
    u32::try_from(ms.wrapping_sub(base) as i32).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::protocol::Timestamp;

    fn settings(format: RecordFormat, duration_ms: u64, bytes: u64) -> RecordSettings {
        RecordSettings {
            format,
            max_duration: Duration::from_millis(duration_ms),
            max_bytes: bytes,
            ..RecordSettings::default()
        }
    }

    fn frame(kind: MediaKind, ts: u32, body: &[u8]) -> Frame {
        Frame::package(kind, Timestamp(ts), body, 4096).unwrap()
    }

    fn avc_header() -> Frame {
        let record = [
            0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 4, 0x67, 0x64, 0, 0x1f, 1, 0, 4,
            0x68, 0xee, 0x3c, 0x80,
        ];
        frame(MediaKind::Video, 0, &record)
    }

    fn aac_header() -> Frame {
        frame(MediaKind::Audio, 0, &[0xaf, 0, 0x12, 0x10])
    }

    fn video(keyframe: bool, ts: u32, len: usize) -> Frame {
        let mut body = vec![if keyframe { 0x17 } else { 0x27 }, 1, 0, 0, 0];
        body.extend((len as u32).to_be_bytes());
        body.extend(std::iter::repeat_n(0x65, len));
        frame(MediaKind::Video, ts, &body)
    }

    fn audio(ts: u32) -> Frame {
        frame(MediaKind::Audio, ts, &[0xaf, 1, 0x21, 0x10, 0x04])
    }

    /// An encoder from `start_ms`: headers, then 25 fps video with a
    /// keyframe every `gop` frames and audio after each, `frames` frames.
    fn stream(start_ms: u32, gop: u32, frames: u32, len: usize) -> Vec<Frame> {
        let mut out = vec![avc_header(), aac_header()];
        for n in 0..frames {
            let ts = start_ms + n * 40;
            out.push(video(n % gop == 0, ts, len));
            out.push(audio(ts + 5));
        }
        out
    }

    /// The files the ops make: (bytes, duration) each, checking the
    /// order of operations on the way.
    fn files(ops: &[Op]) -> Vec<(Vec<u8>, u64)> {
        let mut done = Vec::new();
        let mut open: Option<Vec<u8>> = None;
        for op in ops {
            match op {
                Op::Open => {
                    assert!(open.is_none(), "one file at a time");
                    open = Some(Vec::new());
                }
                Op::Append { bytes, .. } => open.as_mut().expect("open").extend_from_slice(bytes),
                Op::Patch { offset, bytes } => {
                    let file = open.as_mut().expect("open");
                    let at = *offset as usize;
                    file[at..at + bytes.len()].copy_from_slice(bytes);
                }
                Op::Close { duration_ms } => done.push((open.take().expect("open"), *duration_ms)),
                Op::Discard => open = None,
            }
        }
        assert!(open.is_none(), "every file closed");
        done
    }

    /// FLV tags of a file after its head: (type, timestamp, first body byte).
    fn tags(file: &[u8]) -> Vec<(u8, u32, u8)> {
        let size =
            |at: usize| u32::from_be_bytes([0, file[at + 1], file[at + 2], file[at + 3]]) as usize;
        let mut at = 13;
        let mut out = Vec::new();
        while at < file.len() {
            let ts = u32::from_be_bytes([file[at + 7], file[at + 4], file[at + 5], file[at + 6]]);
            out.push((file[at], ts, file[at + 11]));
            let end = at + 11 + size(at);
            let previous = u32::from_be_bytes(file[end..end + 4].try_into().unwrap()) as usize;
            assert_eq!(previous, 11 + size(at), "PreviousTagSize");
            at = end + 4;
        }
        assert_eq!(at, file.len(), "whole tags");
        out
    }

    #[test]
    fn a_file_starts_at_a_keyframe_with_the_headers_at_zero() {
        let mut segmenter = Segmenter::new(&settings(RecordFormat::Flv, 0, 0));
        let mut ops = Vec::new();
        // Joined mid-GOP: frames before the keyframe are not recorded.
        let frames = stream(10_000, 10, 25, 100);
        segmenter.push(&frames[0], &mut ops);
        segmenter.push(&frames[1], &mut ops);
        for frame in &frames[6..] {
            segmenter.push(frame, &mut ops);
        }
        segmenter.finish(&mut ops);
        let files = files(&ops);
        assert_eq!(files.len(), 1);
        let (file, duration_ms) = &files[0];
        let tags = tags(file);
        assert_eq!(tags[0].0, 18, "onMetaData first");
        assert_eq!(
            (tags[1].0, tags[1].1, tags[2].0, tags[2].1),
            (9, 0, 8, 0),
            "headers at 0"
        );
        assert_eq!(
            (tags[3].0, tags[3].1, tags[3].2),
            (9, 0, 0x17),
            "then the keyframe at 0"
        );
        assert_eq!(tags.last().unwrap().1, 14 * 40 + 5, "the last audio");
        // Video from 0 (frame 10) to frame 24 and one frame more.
        assert_eq!(*duration_ms, 15 * 40);
        assert_eq!(file[4], 0x05, "audio and video");
    }

    #[test]
    fn files_split_at_the_first_keyframe_past_the_duration_or_the_size() {
        for (max_duration, max_bytes, expected) in [(2_000, 0, 3), (0, 100_000, 2)] {
            let mut segmenter =
                Segmenter::new(&settings(RecordFormat::Flv, max_duration, max_bytes));
            let mut ops = Vec::new();
            // 6 s at 25 fps, a keyframe a second, 1 KB frames: 26 KB a
            // second after a head of 37 KB.
            for frame in stream(0, 25, 150, 1000) {
                segmenter.push(&frame, &mut ops);
            }
            segmenter.finish(&mut ops);
            let files = files(&ops);
            assert_eq!(
                files.len(),
                expected,
                "{max_duration} ms, {max_bytes} bytes"
            );
            let mut total_ms = 0;
            for (file, duration_ms) in &files {
                let tags = tags(file);
                assert_eq!(tags[3].2, 0x17, "each file starts at a keyframe");
                assert_eq!(tags[3].1, 0, "at 0");
                total_ms += duration_ms;
                if max_bytes > 0 {
                    assert!(file.len() < max_bytes as usize + 30_000, "{}", file.len());
                }
            }
            assert_eq!(total_ms, 6_000, "nothing lost or doubled");
        }
    }

    #[test]
    fn an_audio_only_stream_starts_and_splits_at_any_audio_frame() {
        let mut segmenter = Segmenter::new(&settings(RecordFormat::Flv, 1_000, 0));
        let mut ops = Vec::new();
        segmenter.push(&aac_header(), &mut ops);
        for n in 0..100 {
            segmenter.push(&audio(500 + n * 23), &mut ops);
        }
        segmenter.finish(&mut ops);
        let files = files(&ops);
        assert_eq!(files.len(), 3);
        assert_eq!(files[0].0[4], 0x04, "audio only");
        assert_eq!(files[0].1, 1_012, "44 frames of 23 ms");
    }

    #[test]
    fn a_disk_that_failed_leaves_what_it_wrote_complete_or_nothing() {
        let mut segmenter = Segmenter::new(&settings(RecordFormat::Flv, 0, 0));
        let mut ops = Vec::new();
        for frame in stream(0, 25, 50, 1000) {
            segmenter.push(&frame, &mut ops);
        }
        // The disk took the head (with the headers) and the appends of
        // the first 10 video and audio frames.
        let appends: Vec<(u64, u64)> = ops
            .iter()
            .filter_map(|op| match op {
                Op::Append { bytes, media_ms } => Some((bytes.len() as u64, *media_ms)),
                _ => None,
            })
            .scan(0, |len, (bytes, ms)| {
                *len += bytes;
                Some((*len, ms))
            })
            .collect();
        let (len, media_ms) = appends[20];
        let mut cut = ops.clone();
        let mut rest = Vec::new();
        segmenter.abandon(len, media_ms, &mut rest);
        assert!(matches!(rest.last(), Some(Op::Close { .. })));
        // What the file holds: the appends up to `len`, then the patches.
        let mut written = 0;
        cut.retain(|op| match op {
            Op::Append { bytes, .. } => {
                written += bytes.len() as u64;
                written <= len
            }
            _ => true,
        });
        cut.extend(rest);
        let files = files(&cut);
        let (file, duration_ms) = &files[0];
        assert_eq!(file.len() as u64, len);
        assert_eq!(*duration_ms, media_ms);
        assert_eq!(tags(file).len(), 1 + 2 + 20);
        // Nothing of media on disk: the file goes.
        let mut segmenter = Segmenter::new(&settings(RecordFormat::Flv, 0, 0));
        let mut ops = Vec::new();
        for frame in stream(0, 25, 1, 10) {
            segmenter.push(&frame, &mut ops);
        }
        let Op::Append { bytes: head, .. } = &ops[1] else {
            panic!("{ops:?}")
        };
        segmenter.abandon(head.len() as u64, 0, &mut ops);
        assert_eq!(ops.last(), Some(&Op::Discard));
    }

    #[test]
    fn a_file_that_never_got_media_is_removed() {
        // Video without audio: the packager waits a second to be sure
        // there is none, and the recording stops before.
        let mut segmenter = Segmenter::new(&settings(RecordFormat::Mp4, 0, 0));
        let mut ops = Vec::new();
        segmenter.push(&avc_header(), &mut ops);
        for n in 0..10 {
            segmenter.push(&video(n == 0, n * 40, 100), &mut ops);
        }
        segmenter.finish(&mut ops);
        assert_eq!(ops, [Op::Open, Op::Discard]);
    }

    #[test]
    fn mp4_files_are_fragments_of_one_init_segment_and_end_at_a_new_configuration() {
        let mut segmenter = Segmenter::new(&settings(RecordFormat::Mp4, 0, 0));
        let mut ops = Vec::new();
        for frame in stream(3_000, 25, 100, 500) {
            segmenter.push(&frame, &mut ops);
        }
        // The encoder's video configuration changes: a new file.
        let mut changed = avc_header().payload().to_vec();
        changed[8] = 0x28;
        segmenter.push(&frame(MediaKind::Video, 7_000, &changed), &mut ops);
        for frame in stream(7_000, 25, 50, 500).iter().skip(2) {
            segmenter.push(frame, &mut ops);
        }
        segmenter.finish(&mut ops);
        let files = files(&ops);
        assert_eq!(files.len(), 2);
        for ((file, duration_ms), expected_ms) in files.iter().zip([4_000, 2_000]) {
            assert_eq!(&file[4..8], b"ftyp");
            let boxes = (0..).scan(0usize, |at, _| {
                let here = *at;
                let size = u32::from_be_bytes(file.get(here..here + 4)?.try_into().ok()?) as usize;
                *at += size;
                Some(String::from_utf8_lossy(&file[here + 4..here + 8]).into_owned())
            });
            let boxes: Vec<String> = boxes.collect();
            assert_eq!(&boxes[..2], ["ftyp", "moov"]);
            assert!(
                boxes[2..].chunks(2).all(|pair| pair == ["moof", "mdat"]),
                "{boxes:?}"
            );
            assert_eq!(*duration_ms, expected_ms);
        }
    }
}
