//! Real streams through `codec` and `mp4`, judged by ffprobe and ffmpeg.
//!
//! Each FLV file (tag bodies are RTMP message bodies) is split into tags,
//! every tag goes through `parse_video`/`parse_audio`, and the samples are
//! muxed into an init segment and fragments of about half a second, with
//! decode times and durations from the tag timestamps in each track's
//! timescale. ffprobe must see the codecs, picture size and audio
//! parameters of the source, as many frames as were muxed and the
//! source's duration; ffmpeg must decode every frame without a word on
//! stderr.
//!
//! Needs `ffprobe` and `ffmpeg` on the PATH (`apt-get install ffmpeg`);
//! the test fails, never skips, without them.
// Tests fail by panicking on what they did not expect.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;
use ringcast_hls::codec::{AudioConfig, Parsed, VideoConfig, parse_audio, parse_video};
use ringcast_hls::mp4::{
    AUDIO_TRACK_ID, Sample, TrackRun, VIDEO_TIMESCALE, VIDEO_TRACK_ID, audio_timescale, fragment,
    init_segment,
};

/// H.264 (Constrained Baseline, 640x360) and AAC-LC 44.1 kHz stereo from
/// a real encoder: the repository's bench sample.
const H264_AAC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../testdata/bench-sample.flv"
);
/// HEVC 320x180 with B-frames and Opus stereo over enhanced RTMP, from
/// ffmpeg 9 (see testdata/README.md).
const HEVC_OPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/testdata/ffmpeg-9-hevc-opus.flv"
);

/// AV1 200x120 (libaom) and AAC-LC 48 kHz mono, from ffmpeg 9, which
/// sends an empty AV1 SequenceStart before the av1C.
const AV1_AAC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/ffmpeg-9-av1-aac.flv");

const FRAGMENT_MS: u32 = 500;

#[test]
fn h264_aac_flv_muxes_to_cmaf_that_ffmpeg_reads_whole() {
    let stream = Stream::read(H264_AAC);
    assert!(matches!(
        stream.video,
        Some(VideoConfig::Avc {
            width: 640,
            height: 360,
            ..
        })
    ));
    let path = stream.write_cmaf("h264-aac");
    let probe = ffprobe(&path);
    assert_eq!(probe.stream(0, "codec_name"), "h264");
    assert_eq!(probe.stream(0, "width"), "640");
    assert_eq!(probe.stream(0, "height"), "360");
    assert_eq!(probe.stream(1, "codec_name"), "aac");
    assert_eq!(probe.stream(1, "sample_rate"), "44100");
    assert_eq!(probe.stream(1, "channels"), "2");
    stream.assert_counts_and_duration(&probe);
    assert_decodes(&path);
    let _ = std::fs::remove_file(path);
}

#[test]
fn hevc_opus_enhanced_flv_muxes_to_cmaf_that_ffmpeg_reads_whole() {
    let stream = Stream::read(HEVC_OPUS);
    assert!(matches!(
        stream.video,
        Some(VideoConfig::Hevc {
            width: 320,
            height: 180,
            ..
        })
    ));
    assert!(
        stream.video_samples.iter().any(|s| s.composition_ms != 0),
        "the fixture has B-frames, so composition offsets"
    );
    let path = stream.write_cmaf("hevc-opus");
    let probe = ffprobe(&path);
    assert_eq!(probe.stream(0, "codec_name"), "hevc");
    assert_eq!(probe.stream(0, "width"), "320");
    assert_eq!(probe.stream(0, "height"), "180");
    assert_eq!(probe.stream(1, "codec_name"), "opus");
    assert_eq!(probe.stream(1, "sample_rate"), "48000");
    assert_eq!(probe.stream(1, "channels"), "2");
    stream.assert_counts_and_duration(&probe);
    assert_decodes(&path);
    let _ = std::fs::remove_file(path);
}

#[test]
fn av1_enhanced_flv_muxes_to_cmaf_that_ffmpeg_reads_whole() {
    let stream = Stream::read(AV1_AAC);
    assert!(matches!(
        stream.video,
        Some(VideoConfig::Av1 {
            width: 200,
            height: 120,
            ..
        })
    ));
    let path = stream.write_cmaf("av1-aac");
    let probe = ffprobe(&path);
    assert_eq!(probe.stream(0, "codec_name"), "av1");
    assert_eq!(probe.stream(0, "width"), "200");
    assert_eq!(probe.stream(0, "height"), "120");
    assert_eq!(probe.stream(1, "codec_name"), "aac");
    assert_eq!(probe.stream(1, "sample_rate"), "48000");
    assert_eq!(probe.stream(1, "channels"), "1");
    stream.assert_counts_and_duration(&probe);
    assert_decodes(&path);
    let _ = std::fs::remove_file(path);
}

/// A coded sample with its FLV timing (milliseconds).
struct Timed {
    decode_ms: u32,
    composition_ms: i32,
    sync: bool,
    data: Bytes,
}

/// What the tags of one FLV file parse to.
struct Stream {
    video: Option<VideoConfig>,
    audio: Option<AudioConfig>,
    video_samples: Vec<Timed>,
    audio_samples: Vec<Timed>,
}

impl Stream {
    fn read(path: &str) -> Stream {
        let file = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut stream = Stream {
            video: None,
            audio: None,
            video_samples: Vec::new(),
            audio_samples: Vec::new(),
        };
        for tag in flv_tags(&Bytes::from(file)) {
            let parsed = match tag.kind {
                8 => parse_audio(&tag.body),
                9 => parse_video(&tag.body),
                _ => continue,
            };
            stream.push(tag.timestamp_ms, parsed);
        }
        assert!(
            stream.video.is_some() && stream.audio.is_some(),
            "{path}: no configs"
        );
        stream
    }

    fn push(&mut self, timestamp_ms: u32, parsed: Parsed) {
        match parsed {
            Parsed::VideoConfig(config) => {
                self.video.get_or_insert(config);
            }
            Parsed::AudioConfig(config) => {
                self.audio.get_or_insert(config);
            }
            Parsed::Video(sample) => self.video_samples.push(Timed {
                decode_ms: timestamp_ms,
                composition_ms: sample.composition_time_ms,
                sync: sample.keyframe,
                data: sample.data,
            }),
            Parsed::Audio(data) => self.audio_samples.push(Timed {
                decode_ms: timestamp_ms,
                composition_ms: 0,
                sync: true,
                data,
            }),
            Parsed::Skip => {}
        }
    }

    /// The init segment and one fragment per `FRAGMENT_MS` of decode
    /// time, written to a file in the temp directory.
    fn write_cmaf(&self, name: &str) -> PathBuf {
        let audio = self.audio.as_ref().unwrap();
        let audio_scale = audio_timescale(audio);
        let mut file = init_segment(self.video.as_ref(), Some(audio)).to_vec();
        let last_ms = self
            .video_samples
            .iter()
            .chain(&self.audio_samples)
            .map(|s| s.decode_ms)
            .max()
            .unwrap();
        for (index, start_ms) in (0..=last_ms).step_by(FRAGMENT_MS as usize).enumerate() {
            let window = start_ms..start_ms + FRAGMENT_MS;
            let runs = [
                run(
                    VIDEO_TRACK_ID,
                    VIDEO_TIMESCALE,
                    &self.video_samples,
                    &window,
                ),
                run(AUDIO_TRACK_ID, audio_scale, &self.audio_samples, &window),
            ];
            file.extend_from_slice(&fragment(index as u32 + 1, &runs));
        }
        let path =
            std::env::temp_dir().join(format!("ringcast-hls-{}-{name}.mp4", std::process::id()));
        std::fs::write(&path, file).unwrap();
        path
    }

    fn assert_counts_and_duration(&self, probe: &Probe) {
        assert_eq!(
            probe.stream(0, "nb_read_frames"),
            self.video_samples.len().to_string()
        );
        assert_eq!(
            probe.stream(1, "nb_read_frames"),
            self.audio_samples.len().to_string()
        );
        // The source's span: first decode time to the end of the last
        // sample (last timestamp plus the one before's duration).
        let span = |samples: &[Timed]| {
            let n = samples.len();
            let last = samples[n - 1].decode_ms - samples[n - 2].decode_ms;
            f64::from(samples[n - 1].decode_ms + last) / 1000.0
        };
        let source_s = span(&self.video_samples).max(span(&self.audio_samples));
        let duration_s: f64 = probe.format("duration").parse().unwrap();
        eprintln!(
            "ffprobe: {} {}x{} {} frames, {} {} Hz {} frames, {duration_s} s (source {source_s} s)",
            probe.stream(0, "codec_name"),
            probe.stream(0, "width"),
            probe.stream(0, "height"),
            probe.stream(0, "nb_read_frames"),
            probe.stream(1, "codec_name"),
            probe.stream(1, "sample_rate"),
            probe.stream(1, "nb_read_frames"),
        );
        assert!(
            (duration_s - source_s).abs() < 0.1,
            "duration {duration_s} s, source {source_s} s"
        );
    }
}

/// The samples decoded in `window` as one track run: decode times and
/// durations in `timescale` from the timestamps (each sample lasts until
/// the next one's decode time; the last lasts as long as the one before).
fn run(
    track_id: u32,
    timescale: u32,
    samples: &[Timed],
    window: &std::ops::Range<u32>,
) -> TrackRun {
    let scaled = |ms: u32| (u64::from(ms) * u64::from(timescale) + 500) / 1000;
    let first = samples
        .iter()
        .position(|s| window.contains(&s.decode_ms))
        .unwrap_or(samples.len());
    let taken: Vec<Sample> = samples[first..]
        .iter()
        .enumerate()
        .take_while(|(_, s)| window.contains(&s.decode_ms))
        .map(|(i, s)| {
            let index = first + i;
            let duration = match (samples.get(index + 1), index.checked_sub(1)) {
                (Some(next), _) => scaled(next.decode_ms) - scaled(s.decode_ms),
                (None, Some(before)) => scaled(s.decode_ms) - scaled(samples[before].decode_ms),
                (None, None) => 0,
            };
            Sample {
                duration: duration as u32,
                composition_offset: (i64::from(s.composition_ms) * i64::from(timescale) / 1000)
                    as i32,
                sync: s.sync,
                data: s.data.clone(),
            }
        })
        .collect();
    TrackRun {
        track_id,
        base_decode_time: samples.get(first).map_or(0, |s| scaled(s.decode_ms)),
        samples: taken,
    }
}

/// One FLV tag: type (8 audio, 9 video, 18 script), timestamp, body.
struct Tag {
    kind: u8,
    timestamp_ms: u32,
    body: Bytes,
}

/// Splits an FLV file (FLV 10.1 annex E.2, E.3) into tags, their bodies
/// sliced from the file.
fn flv_tags(file: &Bytes) -> Vec<Tag> {
    assert_eq!(&file[..3], b"FLV", "not an FLV file");
    let header_len = u32::from_be_bytes(file[5..9].try_into().unwrap()) as usize;
    let mut at = header_len + 4; // PreviousTagSize0
    let mut tags = Vec::new();
    while at + 11 <= file.len() {
        let size = u32::from_be_bytes([0, file[at + 1], file[at + 2], file[at + 3]]) as usize;
        let timestamp =
            u32::from_be_bytes([file[at + 7], file[at + 4], file[at + 5], file[at + 6]]);
        let body = file.slice(at + 11..at + 11 + size);
        tags.push(Tag {
            kind: file[at] & 0x1F,
            timestamp_ms: timestamp,
            body,
        });
        at += 11 + size + 4;
    }
    tags
}

/// ffprobe's `-of flat` output: `streams.stream.0.codec_name="h264"`.
struct Probe(HashMap<String, String>);

impl Probe {
    fn stream(&self, index: usize, key: &str) -> &str {
        self.get(&format!("streams.stream.{index}.{key}"))
    }

    fn format(&self, key: &str) -> &str {
        self.get(&format!("format.{key}"))
    }

    fn get(&self, key: &str) -> &str {
        self.0
            .get(key)
            .unwrap_or_else(|| panic!("ffprobe said nothing of {key}"))
    }
}

fn ffprobe(path: &Path) -> Probe {
    let output = tool("ffprobe")
        .args([
            "-v",
            "error",
            "-show_streams",
            "-show_format",
            "-count_frames",
            "-of",
            "flat",
        ])
        .arg(path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stderr.is_empty(),
        "ffprobe {path:?}: {stderr}"
    );
    let fields = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.trim_matches('"').to_owned()))
        .collect();
    Probe(fields)
}

/// ffmpeg decodes every stream to nowhere and has nothing to say.
fn assert_decodes(path: &Path) {
    let output = tool("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stderr.is_empty(),
        "ffmpeg decoding {path:?}: {stderr}"
    );
}

/// A command for `name`, which must run: the test fails loudly otherwise.
fn tool(name: &str) -> Command {
    if let Err(e) = Command::new(name).arg("-version").output() {
        panic!(
            "{name} not found ({e}): this test needs ffprobe and ffmpeg, `apt-get install ffmpeg`; \
             to remake the HEVC+Opus fixture, ffmpeg 9 from `pip install imageio-ffmpeg`"
        );
    }
    Command::new(name)
}
