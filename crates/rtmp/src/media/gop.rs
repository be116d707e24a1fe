//! What a player joining a live stream needs before live frames: the
//! latest metadata and sequence headers, then every frame since the last
//! keyframe, so it starts decoding at once and on a keyframe.

use std::time::Duration;

use super::frame::{Frame, FrameClass};
use crate::session::MediaKind;

/// Metadata, sequence headers and the current GOP of one stream, bounded in
/// bytes and duration. Frames are shared, not copied.
#[derive(Debug)]
pub struct GopCache {
    bytes_max: usize,
    duration_max: Duration,
    metadata: Option<Frame>,
    video_header: Option<Frame>,
    audio_header: Option<Frame>,
    /// From a keyframe on; empty while none has been seen since the cache
    /// was last cleared.
    frames: Vec<Frame>,
    bytes: usize,
}

impl GopCache {
    pub fn new(bytes_max: usize, duration_max: Duration) -> GopCache {
        GopCache {
            bytes_max,
            duration_max,
            metadata: None,
            video_header: None,
            audio_header: None,
            frames: Vec::new(),
            bytes: 0,
        }
    }

    /// Takes a frame of the live stream into account.
    pub fn push(&mut self, frame: &Frame) {
        match (frame.class, frame.kind) {
            (FrameClass::Metadata, _) => self.metadata = Some(frame.clone()),
            // The latest header wins: ffmpeg sends an empty AV1 or AC-3
            // sequence start before the real one, and a new encoder
            // configuration replaces the old.
            (FrameClass::SequenceHeader, MediaKind::Video) => {
                self.video_header = Some(frame.clone());
            }
            (FrameClass::SequenceHeader, _) => self.audio_header = Some(frame.clone()),
            (FrameClass::Keyframe, _) => {
                self.clear_frames();
                self.append(frame);
            }
            _ if !self.frames.is_empty() => self.append(frame),
            _ => {}
        }
    }

    /// Forgets everything: a new publisher brings its own headers.
    pub fn reset(&mut self) {
        self.metadata = None;
        self.video_header = None;
        self.audio_header = None;
        self.clear_frames();
    }

    /// Frames were lost before this cache saw them: its GOP no longer
    /// leads to what comes next, so it starts again at the next keyframe.
    /// The headers stay.
    pub fn interrupt(&mut self) {
        self.clear_frames();
    }

    /// Metadata, then the video and audio sequence headers, each if known.
    pub fn headers(&self) -> impl Iterator<Item = &Frame> {
        [&self.metadata, &self.video_header, &self.audio_header]
            .into_iter()
            .flatten()
    }

    /// Frames since the last keyframe, keyframe first; empty if there is no
    /// usable GOP (none yet, or it outgrew its bounds).
    pub fn frames(&self) -> &[Frame] {
        &self.frames
    }

    /// Everything a joining player gets, in order.
    pub fn snapshot(&self) -> impl Iterator<Item = &Frame> {
        self.headers().chain(self.frames.iter())
    }

    /// Memory the GOP's frames hold ([`Frame::held`]; headers not counted).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    fn append(&mut self, frame: &Frame) {
        let first = self.frames.first().map(|f| f.timestamp);
        // A frame a little before the keyframe (audio trailing video, as
        // after a republish) does not make the GOP longer.
        let too_long = first.is_some_and(|start| {
            frame
                .timestamp
                .after(start)
                .is_some_and(|since| u64::from(since) > self.duration_max.as_millis() as u64)
        });
        if too_long || self.bytes + frame.held() > self.bytes_max {
            // An unbounded GOP (a camera with keyframes minutes apart, or a
            // hostile publisher) is not cached: joiners wait for the next
            // keyframe instead.
            self.clear_frames();
            return;
        }
        self.bytes += frame.held();
        self.frames.push(frame.clone());
    }

    fn clear_frames(&mut self) {
        self.frames.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::media::FRAME_OVERHEAD_BYTES;
    use crate::protocol::Timestamp;

    fn video(ts: u32, key: bool, len: usize) -> Frame {
        let mut body = vec![0u8; len.max(5)];
        body[0] = if key { 0x17 } else { 0x27 };
        body[1] = 1;
        Frame::package(MediaKind::Video, Timestamp(ts), &body, 4096).expect("ok")
    }

    fn header(kind: MediaKind, body: &[u8]) -> Frame {
        Frame::package(kind, Timestamp(0), body, 4096).expect("ok")
    }

    fn audio(ts: u32) -> Frame {
        Frame::package(MediaKind::Audio, Timestamp(ts), &[0xAF, 1, 9], 4096).expect("ok")
    }

    #[test]
    fn snapshot_is_headers_then_frames_from_the_last_keyframe() {
        let mut gop = GopCache::new(1 << 20, Duration::from_secs(10));
        let avc = header(MediaKind::Video, &[0x17, 0, 0, 0, 0, 1]);
        let aac = header(MediaKind::Audio, &[0xAF, 0, 0x12, 0x10]);
        let meta = Frame::metadata(Timestamp(0), b"meta", 4096).expect("ok");
        for f in [
            &meta,
            &avc,
            &aac,
            &video(0, false, 10),
            &video(33, true, 10),
            &audio(40),
            &video(66, false, 10),
        ] {
            gop.push(f);
        }
        let snapshot: Vec<_> = gop.snapshot().map(|f| (f.class, f.timestamp.0)).collect();
        assert_eq!(
            snapshot,
            vec![
                (FrameClass::Metadata, 0),
                (FrameClass::SequenceHeader, 0),
                (FrameClass::SequenceHeader, 0),
                (FrameClass::Keyframe, 33),
                (FrameClass::Other, 40),
                (FrameClass::Interframe, 66),
            ]
        );
        gop.push(&video(100, true, 10));
        assert_eq!(gop.frames().len(), 1, "a keyframe starts a new GOP");
    }

    #[test]
    fn after_an_interruption_only_headers_are_kept_until_the_next_keyframe() {
        let mut gop = GopCache::new(1 << 20, Duration::from_secs(10));
        let avc = header(MediaKind::Video, &[0x17, 0, 0, 0, 0, 1]);
        for f in [&avc, &video(0, true, 10), &video(33, false, 10)] {
            gop.push(f);
        }
        gop.interrupt();
        gop.push(&video(100, false, 10));
        let classes: Vec<_> = gop.snapshot().map(|f| f.class).collect();
        assert_eq!(classes, [FrameClass::SequenceHeader], "the frames are gone");
        assert_eq!(gop.bytes(), 0);
        gop.push(&video(133, true, 10));
        assert_eq!(gop.frames().len(), 1, "the next keyframe starts a GOP");
    }

    #[test]
    fn frames_before_any_keyframe_are_not_cached() {
        let mut gop = GopCache::new(1 << 20, Duration::from_secs(10));
        gop.push(&video(0, false, 10));
        gop.push(&audio(5));
        assert!(gop.frames().is_empty());
    }

    #[test]
    fn a_gop_past_its_byte_bound_is_dropped_until_the_next_keyframe() {
        let mut gop = GopCache::new(10_000, Duration::from_secs(10));
        gop.push(&video(0, true, 4000));
        gop.push(&video(33, false, 4000));
        gop.push(&video(66, false, 4000));
        assert!(gop.frames().is_empty());
        assert_eq!(gop.bytes(), 0);
        gop.push(&video(99, false, 10));
        assert!(gop.frames().is_empty(), "no start without a keyframe");
        gop.push(&video(132, true, 10));
        assert_eq!(gop.frames().len(), 1);
    }

    #[test]
    fn tiny_frames_count_what_they_hold_not_what_they_carry() {
        let mut gop = GopCache::new(100 * FRAME_OVERHEAD_BYTES, Duration::from_secs(10));
        gop.push(&video(0, true, 5));
        for ts in 1..200 {
            gop.push(&video(ts, false, 5));
        }
        // 200 frames of 17 wire bytes would fit 100 × the overhead if only
        // wire bytes counted.
        assert!(gop.frames().len() < 100, "{} frames", gop.frames().len());
        let held: usize = gop.frames().iter().map(Frame::held).sum();
        assert_eq!(gop.bytes(), held);
    }

    #[test]
    fn a_kept_frame_does_not_pin_the_buffer_its_payload_came_from() {
        // A message read zero-copy: a slice of a 64 KiB read buffer.
        let mut read = vec![0u8; 64 * 1024];
        read[..6].copy_from_slice(&[0x27, 1, 0, 0, 0, 9]);
        let buffer = Bytes::from(read);
        let payload = buffer.slice(..6);
        let frame = Frame::package(MediaKind::Video, Timestamp(0), &payload, 4096).expect("ok");
        drop(payload);
        // The buffer is unique again: nothing the frame holds refers to it.
        assert!(buffer.try_into_mut().is_ok());
        assert_eq!(&frame.payload()[..], &[0x27, 1, 0, 0, 0, 9]);
    }

    #[test]
    fn a_gop_past_its_duration_bound_is_dropped() {
        let mut gop = GopCache::new(1 << 20, Duration::from_millis(1000));
        gop.push(&video(0, true, 10));
        gop.push(&video(900, false, 10));
        assert_eq!(gop.frames().len(), 2);
        gop.push(&video(1100, false, 10));
        assert!(gop.frames().is_empty());
    }

    #[test]
    fn audio_trailing_the_keyframe_stays_in_the_gop() {
        let mut gop = GopCache::new(1 << 20, Duration::from_millis(1000));
        gop.push(&video(5000, true, 10));
        gop.push(&audio(4980));
        gop.push(&video(5033, false, 10));
        let cached: Vec<_> = gop.frames().iter().map(|f| f.timestamp.0).collect();
        assert_eq!(cached, vec![5000, 4980, 5033]);
    }

    #[test]
    fn the_latest_sequence_header_wins_and_reset_forgets_all() {
        let mut gop = GopCache::new(1 << 20, Duration::from_secs(10));
        gop.push(&header(MediaKind::Video, &[0x17, 0, 0, 0, 0, 1]));
        gop.push(&header(MediaKind::Video, &[0x17, 0, 0, 0, 0, 2]));
        let headers: Vec<_> = gop.headers().map(|f| f.payload()[5]).collect();
        assert_eq!(headers, vec![2]);
        gop.push(&video(0, true, 10));
        gop.reset();
        assert_eq!(gop.snapshot().count(), 0);
    }
}
