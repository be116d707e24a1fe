//! What a bench publisher sends: real H.264 + AAC from a bundled 2-second
//! sample (640×360, so ffprobe and players accept the stream), re-timed to
//! the requested frame rate, re-cut to the requested GOP and padded with
//! filler NAL units to the requested bitrate, with its AAC frames on their
//! own clock at the requested sample rate; or a user's FLV file, looped.
//! Every AVC frame gets a [`Stamp`] when it is sent.
//!
//! Audio and video are interleaved by timestamp, as ffmpeg's FLV muxer
//! sends them: an encoder's AAC frames (1024 samples, 43.07 a second at
//! 44.1 kHz) never line up with its 24 to 60 fps video, so a server sees
//! audio between video frames, not one audio frame per video frame.

use bytes::{BufMut, Bytes, BytesMut};

use super::flv::{self, FlvError, Tag};
use super::stamp::Stamp;
use ringcast_rtmp::protocol::Timestamp;
use ringcast_rtmp::protocol::amf::Value;
use ringcast_rtmp::session::MediaKind;

/// `ffmpeg -f lavfi -i testsrc2=size=640x360:rate=30 -f lavfi -i sine -t 2
/// -c:v libx264 -profile:v baseline -g 60 -bf 0 -b:v 300k -c:a aac -f flv`
/// (see `testdata/README.md`).
pub const SAMPLE: &[u8] = include_bytes!("../../../testdata/bench-sample.flv");

/// Samples in one AAC frame (ISO/IEC 14496-3, AAC-LC).
const AAC_FRAME_SAMPLES: f64 = 1024.0;
/// H.264 NAL unit type of filler data (§7.3.2.7), which decoders skip.
const NAL_FILLER: u8 = 12;
/// Keyframes are this many times the size of other frames, as with real
/// encoders at a steady bitrate.
const KEYFRAME_WEIGHT: usize = 4;

/// How the synthetic stream is shaped.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shape {
    pub bitrate_kbps: u32,
    pub fps: f64,
    pub gop_s: f64,
    /// Audio samples per second: sets the cadence of the AAC frames (one
    /// per 1024 samples). The sample's audio is 44.1 kHz and its sequence
    /// header says so; at another rate only the cadence changes, which is
    /// what a server's batching sees.
    pub audio_rate: u32,
}

/// One message to send at `due_ms` after the publisher started.
#[derive(Clone, Debug)]
pub struct Item {
    pub due_ms: f64,
    pub kind: MediaKind,
    pub timestamp: Timestamp,
    body: Body,
}

#[derive(Clone, Debug)]
enum Body {
    Whole(Bytes),
    /// An AVC coded frame: its 5-byte header and its NAL units; the stamp
    /// goes between them when sent.
    Stampable {
        header: [u8; 5],
        nals: Bytes,
    },
}

/// An endless stream of items.
#[derive(Debug)]
pub struct Source {
    headers: Vec<(MediaKind, Bytes)>,
    metadata: Value,
    kind: Kind,
    /// Video frames sent so far.
    frame: u64,
    audio_sent: u64,
}

#[derive(Debug)]
enum Kind {
    Synthetic {
        shape: Shape,
        /// The sample's coded video frames, padded: the first is the keyframe.
        video: Vec<(Bytes, [u8; 5])>,
        audio: Vec<Bytes>,
    },
    File {
        tags: Vec<Tag>,
        next: usize,
        /// Added to tag timestamps on each loop.
        offset_ms: f64,
        loop_ms: f64,
    },
}

/// Why a source cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0}")]
    File(#[from] FlvError),
    #[error("FLV file has no video sequence header and no audio")]
    NoMedia,
}

impl Source {
    /// The bundled sample shaped to `shape`.
    pub fn synthetic(shape: Shape) -> Result<Source, SourceError> {
        let tags = flv::read(&Bytes::from_static(SAMPLE))?;
        let headers = sequence_headers(&tags);
        let coded: Vec<&Tag> = tags
            .iter()
            .filter(|t| t.kind == MediaKind::Video && t.body.get(1) == Some(&1))
            .collect();
        let gop = gop_frames(shape);
        let average = f64::from(shape.bitrate_kbps) * 1000.0 / 8.0 / shape.fps;
        let inter = (average * gop as f64 / (gop + KEYFRAME_WEIGHT - 1) as f64) as usize;
        let video = coded
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                let header: [u8; 5] = t.body.get(..5)?.try_into().ok()?;
                let target = if i == 0 {
                    inter * KEYFRAME_WEIGHT
                } else {
                    inter
                };
                Some((padded(t.body.get(5..)?, target), header))
            })
            .collect::<Vec<_>>();
        let audio = tags
            .iter()
            .filter(|t| t.kind == MediaKind::Audio && t.body.get(1) == Some(&1))
            .map(|t| t.body.clone())
            .collect::<Vec<_>>();
        if video.is_empty() || audio.is_empty() {
            return Err(SourceError::NoMedia);
        }
        Ok(Source {
            headers,
            metadata: metadata(shape),
            kind: Kind::Synthetic {
                shape,
                video,
                audio,
            },
            frame: 0,
            audio_sent: 0,
        })
    }

    /// `file` looped, at its own timestamps.
    pub fn file(file: &Bytes) -> Result<Source, SourceError> {
        let tags = flv::read(file)?;
        let headers = sequence_headers(&tags);
        // Sequence headers go first, once; an end of sequence would reset
        // players' decoders at every loop.
        let media: Vec<Tag> = tags
            .into_iter()
            .filter(|t| {
                t.kind != MediaKind::Data && !is_sequence_header(t) && !is_end_of_sequence(t)
            })
            .collect();
        let (Some(first), Some(last)) = (media.first(), media.last()) else {
            return Err(SourceError::NoMedia);
        };
        let first_ms = first.timestamp_ms;
        let loop_ms = f64::from(last.timestamp_ms.saturating_sub(first_ms)) + 1000.0 / 30.0;
        Ok(Source {
            headers,
            metadata: Value::object([("encoder", Value::string("ringcast bench (file)"))]),
            kind: Kind::File {
                tags: media,
                next: 0,
                offset_ms: -f64::from(first_ms),
                loop_ms,
            },
            frame: 0,
            audio_sent: 0,
        })
    }

    /// Metadata to send first.
    pub fn metadata(&self) -> Value {
        self.metadata.clone()
    }

    /// Sequence headers to send after the metadata, as media at time 0.
    pub fn headers(&self) -> impl Iterator<Item = (MediaKind, Bytes)> + '_ {
        self.headers.iter().cloned()
    }

    /// The next item, in send order.
    pub fn next_item(&mut self) -> Item {
        match &mut self.kind {
            Kind::Synthetic {
                shape,
                video,
                audio,
            } => {
                let frame_ms = 1000.0 / shape.fps;
                let video_due = self.frame as f64 * frame_ms;
                let audio_due = self.audio_sent as f64 * aac_frame_ms(*shape);
                if audio_due < video_due {
                    let at = self.audio_sent as usize % audio.len().max(1);
                    let body = audio.get(at).cloned().unwrap_or_default();
                    self.audio_sent += 1;
                    return item(audio_due, MediaKind::Audio, Body::Whole(body));
                }
                let gop = gop_frames(*shape) as u64;
                let position = self.frame % gop;
                let index = if position == 0 {
                    0
                } else {
                    1 + ((position - 1) as usize % (video.len() - 1).max(1))
                };
                let (nals, mut header) = video.get(index).cloned().unwrap_or_default();
                header[0] = if position == 0 { 0x17 } else { 0x27 };
                self.frame += 1;
                item(
                    video_due,
                    MediaKind::Video,
                    Body::Stampable { header, nals },
                )
            }
            Kind::File {
                tags,
                next,
                offset_ms,
                loop_ms,
            } => {
                // `next` stays below `tags.len()`, never 0 (`from_file`
                // refuses a file without media).
                #[allow(clippy::indexing_slicing)]
                let tag = &tags[*next];
                let due = f64::from(tag.timestamp_ms) + *offset_ms;
                let body = match stampable(&tag.body) {
                    Some(header) => Body::Stampable {
                        header,
                        nals: tag.body.slice(5..),
                    },
                    None => Body::Whole(tag.body.clone()),
                };
                let kind = tag.kind;
                *next += 1;
                if *next == tags.len() {
                    *next = 0;
                    *offset_ms += *loop_ms;
                }
                item(due, kind, body)
            }
        }
    }
}

impl Item {
    /// The message body, stamped when it is an AVC frame.
    pub fn body(&self, stamp: &Stamp) -> Bytes {
        match &self.body {
            Body::Whole(body) => body.clone(),
            Body::Stampable { header, nals } => {
                let sei = stamp.to_nal();
                let mut out = BytesMut::with_capacity(5 + 4 + sei.len() + nals.len());
                out.put_slice(header);
                out.put_u32(sei.len() as u32);
                out.put_slice(&sei);
                out.put_slice(nals);
                out.freeze()
            }
        }
    }

    pub fn is_stampable(&self) -> bool {
        matches!(self.body, Body::Stampable { .. })
    }

    /// A video keyframe (frame type 1 in the FLV video header).
    pub fn is_keyframe(&self) -> bool {
        let first = match &self.body {
            Body::Whole(body) => body.first().copied(),
            Body::Stampable { header, .. } => Some(header[0]),
        };
        self.kind == MediaKind::Video && first.is_some_and(|b| b >> 4 & 0x07 == 1)
    }
}

fn item(due_ms: f64, kind: MediaKind, body: Body) -> Item {
    Item {
        due_ms,
        kind,
        timestamp: Timestamp(due_ms.max(0.0) as u32),
        body,
    }
}

fn aac_frame_ms(shape: Shape) -> f64 {
    AAC_FRAME_SAMPLES * 1000.0 / f64::from(shape.audio_rate.max(1))
}

fn gop_frames(shape: Shape) -> usize {
    ((shape.gop_s * shape.fps).round() as usize).max(1)
}

fn is_sequence_header(tag: &Tag) -> bool {
    match tag.kind {
        MediaKind::Video => ringcast_rtmp::protocol::flv::inspect_video(&tag.body)
            .is_ok_and(|v| v.is_sequence_header()),
        MediaKind::Audio => ringcast_rtmp::protocol::flv::inspect_audio(&tag.body)
            .is_ok_and(|a| a.is_sequence_header()),
        MediaKind::Data => false,
    }
}

fn is_end_of_sequence(tag: &Tag) -> bool {
    tag.kind == MediaKind::Video
        && ringcast_rtmp::protocol::flv::inspect_video(&tag.body)
            .is_ok_and(|v| v.is_end_of_sequence())
}

fn sequence_headers(tags: &[Tag]) -> Vec<(MediaKind, Bytes)> {
    let video = tags
        .iter()
        .find(|t| t.kind == MediaKind::Video && is_sequence_header(t));
    let audio = tags
        .iter()
        .find(|t| t.kind == MediaKind::Audio && is_sequence_header(t));
    [video, audio]
        .into_iter()
        .flatten()
        .map(|t| (t.kind, t.body.clone()))
        .collect()
}

/// The 5-byte header of a legacy AVC coded frame, where a stamp can go.
fn stampable(body: &[u8]) -> Option<[u8; 5]> {
    let header: [u8; 5] = body.get(..5)?.try_into().ok()?;
    (header[0] & 0x0F == 7 && header[1] == 1).then_some(header)
}

/// `nals` (length-prefixed NAL units) with a filler NAL unit appended so
/// the frame body comes to about `target` bytes.
fn padded(nals: &[u8], target: usize) -> Bytes {
    let mut out = BytesMut::from(nals);
    // Header (5), stamp (~45) and the filler's own length prefix (4),
    // NAL header (1) and trailing bits (1).
    let overhead = 5 + 45 + 4 + 2;
    if let Some(fill) = target.checked_sub(nals.len() + overhead).filter(|f| *f > 0) {
        out.put_u32((fill + 2) as u32);
        out.put_u8(NAL_FILLER);
        out.put_bytes(0xFF, fill);
        out.put_u8(0x80);
    }
    out.freeze()
}

fn metadata(shape: Shape) -> Value {
    Value::EcmaArray(vec![
        ("width".into(), Value::Number(640.0)),
        ("height".into(), Value::Number(360.0)),
        ("framerate".into(), Value::Number(shape.fps)),
        (
            "videodatarate".into(),
            Value::Number(f64::from(shape.bitrate_kbps)),
        ),
        ("videocodecid".into(), Value::Number(7.0)),
        ("audiocodecid".into(), Value::Number(10.0)),
        ("encoder".into(), Value::string("ringcast bench")),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> Shape {
        Shape {
            bitrate_kbps: 2500,
            fps: 30.0,
            gop_s: 2.0,
            audio_rate: 44_100,
        }
    }

    fn stamp(seq: u64) -> Stamp {
        Stamp {
            wall_us: 1,
            seq,
            publisher: 0,
        }
    }

    #[test]
    fn the_synthetic_stream_has_the_requested_rate_gop_and_bitrate() {
        let mut source = Source::synthetic(shape()).expect("sample");
        let mut video = Vec::new();
        let mut audio = 0;
        let mut bytes = 0;
        while video.len() < 120 {
            let item = source.next_item();
            let body = item.body(&stamp(video.len() as u64));
            bytes += body.len();
            match item.kind {
                MediaKind::Video => video.push((item.timestamp.0, body)),
                _ => audio += 1,
            }
        }
        // Keyframes every 60 frames, frames 33 ms apart.
        let keys: Vec<usize> = video
            .iter()
            .enumerate()
            .filter(|(_, (_, b))| b[0] == 0x17)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(keys, vec![0, 60]);
        assert_eq!(video[30].0, 1000);
        // 4 s of audio at 23.2 ms per frame.
        assert!((170..=174).contains(&audio), "{audio} audio frames");
        // 4 s at 2500 kbit/s is 1.25 MB.
        assert!((1_150_000..1_350_000).contains(&bytes), "{bytes} bytes");
        // Every video frame carries its stamp.
        for (i, (_, body)) in video.iter().enumerate() {
            assert_eq!(Stamp::find(body).map(|s| s.seq), Some(i as u64));
        }
    }

    #[test]
    fn audio_runs_on_its_own_clock_at_every_common_frame_rate() {
        for fps in [24.0, 25.0, 30.0, 50.0, 60.0] {
            for (audio_rate, audio_frames) in [(44_100, 431), (48_000, 469)] {
                let mut source = Source::synthetic(Shape {
                    fps,
                    audio_rate,
                    ..shape()
                })
                .expect("sample");
                let mut counts = (0, 0);
                let mut last_due = 0.0;
                loop {
                    let item = source.next_item();
                    if item.due_ms >= 10_000.0 {
                        break;
                    }
                    assert!(item.due_ms >= last_due, "{fps} fps: items in due order");
                    last_due = item.due_ms;
                    match item.kind {
                        MediaKind::Video => counts.0 += 1,
                        _ => counts.1 += 1,
                    }
                }
                // 10 s: 10 * fps video frames, 10 * rate / 1024 audio frames.
                assert_eq!(
                    counts,
                    (10 * fps as usize, audio_frames),
                    "{fps} fps, {audio_rate} Hz"
                );
            }
        }
    }

    #[test]
    fn sequence_headers_and_metadata_come_from_the_sample() {
        let source = Source::synthetic(shape()).expect("sample");
        let headers: Vec<_> = source.headers().map(|(k, b)| (k, b[0], b[1])).collect();
        assert_eq!(
            headers,
            vec![(MediaKind::Video, 0x17, 0), (MediaKind::Audio, 0xAF, 0)]
        );
        assert_eq!(
            source.metadata().property("width").and_then(Value::as_f64),
            Some(640.0)
        );
    }

    #[test]
    fn a_file_source_loops_at_its_own_timestamps() {
        let mut source = Source::file(&Bytes::from_static(SAMPLE)).expect("sample");
        let first: Vec<f64> = (0..400).map(|_| source.next_item().due_ms).collect();
        assert!(
            first.windows(2).all(|w| w[0] <= w[1] + 30.0),
            "roughly in order"
        );
        assert!(
            first[399] > 2000.0,
            "the second loop continues later: {}",
            first[399]
        );
    }
}
