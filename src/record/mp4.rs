//! A recorded fragmented MP4 (CMAF) file, made by the HLS packager
//! ([`ringcast_hls::Packager`]): its init segment, then each part it
//! cuts, a `moof` and `mdat`, in order. Nothing is written back at the
//! end: players (ffmpeg reads every fragment of a file it can seek in)
//! take the duration and the seek points from the fragments.
//!
//! A file holds one init segment, so a new decoder configuration starts a
//! new file (see [`super::segmenter`]). What the packager does before it
//! starts applies here too: it begins at a keyframe, and a stream without
//! audio (or without video) starts once a second of it showed the other
//! track is not coming. Besides what was written, it keeps its open
//! segment and the last complete one: with the settings below, two
//! segments of at most [`ringcast_hls::packager::SEGMENT_HARD_MAX_MS_MIN`]
//! (10 s) of media.

use bytes::Bytes;
use ringcast_hls::{Packager, Settings};

use crate::media::Frame;

/// How long a fragment lasts at most (ms). Why: a file cut short (a
/// crash, a full disk) loses at most the fragment being made, and a
/// fragment a second is what ffmpeg's own fragmented output has.
const FRAGMENT_MS: u32 = 1_000;

/// What the packager is told: a fragment per part; segments (which a file
/// does not have) at keyframes after a fragment's length, and the least
/// it keeps of them.
const SETTINGS: Settings = Settings {
    segment_ms: FRAGMENT_MS,
    part_ms: FRAGMENT_MS,
    segments: 1,
    bytes_max: 0,
};

/// One MP4 file being made.
#[derive(Debug)]
pub struct Mp4File {
    packager: Packager,
    /// Whether the init segment is written.
    init_written: bool,
    /// The last segment written from (its media sequence number) and its
    /// parts written.
    written: Option<(u64, usize)>,
    /// Media in the parts written.
    duration_ms: u64,
}

impl Default for Mp4File {
    fn default() -> Self {
        Mp4File {
            packager: Packager::new(SETTINGS, ""),
            init_written: false,
            written: None,
            duration_ms: 0,
        }
    }
}

impl Mp4File {
    /// Packages `frame`, `timestamp_ms` into the file; what is made
    /// (the init segment first, then fragments) goes to `out`.
    pub fn push(&mut self, frame: &Frame, timestamp_ms: u32, out: &mut Vec<Bytes>) {
        let body = frame.payload();
        // The wall clock dates HLS segments; a file has none.
        if self.packager.push(frame.kind, timestamp_ms, &body, 0) {
            self.collect(out);
        }
    }

    /// The end: the open fragment is closed into `out`.
    pub fn finish(&mut self, out: &mut Vec<Bytes>) {
        if self.packager.end() {
            self.collect(out);
        }
    }

    /// Media in the fragments made so far.
    pub fn duration_ms(&self) -> u64 {
        self.duration_ms
    }

    /// The parts made since the last call, after the init segment if it
    /// is not written yet. The window keeps the open segment and the last
    /// complete one, and a push completes at most one, so none is missed.
    fn collect(&mut self, out: &mut Vec<Bytes>) {
        let window = self.packager.window();
        for segment in &window.segments {
            let from = match self.written {
                Some((msn, _)) if segment.msn < msn => continue,
                Some((msn, parts)) if segment.msn == msn => parts,
                _ => 0,
            };
            let new = segment.parts.get(from..).unwrap_or_default();
            if new.is_empty() {
                continue;
            }
            if !self.init_written {
                let Some(init) = window.init(segment.init) else {
                    continue;
                };
                out.push(init.clone());
                self.init_written = true;
            }
            for part in new {
                out.push(part.bytes.clone());
                self.duration_ms += u64::from(part.duration_ms);
            }
            self.written = Some((segment.msn, segment.parts.len()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Timestamp;
    use crate::session::MediaKind;

    /// An AVC sequence header with a minimal avcC record.
    fn avc_header() -> Frame {
        let record = [
            0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 4, 0x67, 0x64, 0, 0x1f, 1, 0, 4,
            0x68, 0xee, 0x3c, 0x80,
        ];
        Frame::package(MediaKind::Video, Timestamp(0), &record, 4096).unwrap()
    }

    /// AAC-LC, 44.1 kHz, stereo.
    fn aac_header() -> Frame {
        Frame::package(MediaKind::Audio, Timestamp(0), &[0xaf, 0, 0x12, 0x10], 4096).unwrap()
    }

    fn video(keyframe: bool, ts: u32) -> Frame {
        let first = if keyframe { 0x17 } else { 0x27 };
        let body = [first, 1, 0, 0, 0, 0, 0, 0, 2, 0x65, 0x88];
        Frame::package(MediaKind::Video, Timestamp(ts), &body, 4096).unwrap()
    }

    #[test]
    fn the_init_segment_comes_once_then_every_fragment_once_in_order() {
        let mut file = Mp4File::default();
        let mut out = Vec::new();
        file.push(&avc_header(), 0, &mut out);
        file.push(&aac_header(), 0, &mut out);
        for n in 0..100u32 {
            file.push(&video(n % 30 == 0, n * 40), n * 40, &mut out);
        }
        file.finish(&mut out);
        let kind = |bytes: &Bytes| String::from_utf8_lossy(&bytes[4..8]).into_owned();
        assert_eq!(kind(&out[0]), "ftyp", "the init segment first");
        assert!(out[1..].iter().all(|part| kind(part) == "moof"));
        // Fragments of at most a second: 4 s of frames make 4 or more.
        assert!(out.len() > 4, "{} fragments", out.len() - 1);
        let sequence = |part: &Bytes| u32::from_be_bytes(part[20..24].try_into().unwrap());
        let numbers: Vec<u32> = out[1..].iter().map(sequence).collect();
        assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "{numbers:?}");
        assert_eq!(file.duration_ms(), 4000, "100 frames of 40 ms");
    }
}
