//! What the control plane shows about a live stream: its codecs (from the
//! sequence headers, or the first frame of codecs that have none), picture
//! size and frame rate (from `onMetaData`), the messages and bytes
//! received.
//!
//! Learned as the stream's messages are packaged, at a cost per frame of
//! two counts and one branch: a tag is inspected again only while its
//! codec is unknown or when it is a sequence header (a new encoder
//! configuration may change the codec). Must not keep anything per frame.

use crate::protocol::amf::Value;
use crate::protocol::flv::{self, AudioCodec, VideoCodec};
use crate::session::MediaKind;

use super::frame::FrameClass;

/// What is known about one stream's source.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StreamInfo {
    pub video_codec: Option<VideoCodec>,
    pub audio_codec: Option<AudioCodec>,
    /// From `onMetaData` `width` and `height`.
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// From `onMetaData` `framerate` (ffmpeg, OBS) or `fps`.
    pub fps: Option<f64>,
    /// Audio, video and data message bytes received, payloads only, since
    /// the stream was created on this shard (across publishers, so a rate
    /// taken from it never goes negative).
    pub bytes_in: u64,
    /// Audio, video and data messages received, counted as `bytes_in` is.
    pub frames_in: u64,
}

/// Largest width or height taken from metadata. Why: a publisher writes
/// what it likes there; 16 Ki pixels is past every real format (8K UHD is
/// 7680 wide), so anything larger is garbage, not a size to show.
const DIMENSION_MAX: f64 = 16_384.0;

/// Largest frame rate taken from metadata, for the same reason: high-speed
/// capture tops out near 1000 fps.
const FPS_MAX: f64 = 1000.0;

impl StreamInfo {
    /// Takes one audio or video message into account.
    pub(crate) fn note_media(&mut self, kind: MediaKind, class: FrameClass, payload: &[u8]) {
        self.count(payload.len());
        let header = class == FrameClass::SequenceHeader;
        match kind {
            MediaKind::Video if header || self.video_codec.is_none() => {
                if let Some(codec) = flv::inspect_video(payload).ok().and_then(|tag| tag.codec) {
                    self.video_codec = Some(codec);
                }
            }
            MediaKind::Audio if header || self.audio_codec.is_none() => {
                if let Ok(tag) = flv::inspect_audio(payload) {
                    self.audio_codec = Some(tag.codec);
                }
            }
            _ => {}
        }
    }

    /// Takes a metadata message (`onMetaData`'s value) into account; its
    /// bytes are counted with [`StreamInfo::count`] once encoded.
    pub(crate) fn note_metadata(&mut self, value: &Value) {
        let number = |name: &str, max: f64| {
            value
                .property(name)
                .and_then(Value::as_f64)
                .filter(|n| n.is_finite() && *n > 0.0 && *n <= max)
        };
        self.width = number("width", DIMENSION_MAX).map(|n| n.round() as u32);
        self.height = number("height", DIMENSION_MAX).map(|n| n.round() as u32);
        self.fps = number("framerate", FPS_MAX).or_else(|| number("fps", FPS_MAX));
    }

    /// Counts one message received and its bytes.
    pub(crate) fn count(&mut self, bytes: usize) {
        self.bytes_in = self.bytes_in.wrapping_add(bytes as u64);
        self.frames_in = self.frames_in.wrapping_add(1);
    }

    /// A new source (publisher, origin connection): what it sends is
    /// learned afresh. The counts go on.
    pub(crate) fn forget_source(&mut self) {
        *self = StreamInfo {
            bytes_in: self.bytes_in,
            frames_in: self.frames_in,
            ..StreamInfo::default()
        };
    }
}

/// A stable lower-case name for the API: `h264`, `h265`, `av1`, ...;
/// legacy FLV codec ids by their FLV names; unknown FourCCs as written.
pub fn video_codec_name(codec: VideoCodec) -> String {
    match codec {
        VideoCodec::Avc => "h264".into(),
        VideoCodec::Hevc => "h265".into(),
        VideoCodec::Av1 => "av1".into(),
        VideoCodec::Vp9 => "vp9".into(),
        VideoCodec::Vp8 => "vp8".into(),
        VideoCodec::Legacy(2) => "h263".into(),
        VideoCodec::Legacy(3) => "screen".into(),
        VideoCodec::Legacy(4) => "vp6".into(),
        VideoCodec::Legacy(5) => "vp6a".into(),
        VideoCodec::Legacy(6) => "screen2".into(),
        VideoCodec::Legacy(id) => format!("flv-codec-{id}"),
        VideoCodec::Other(fourcc) => fourcc.to_string(),
    }
}

/// Like [`video_codec_name`]: `aac`, `mp3`, `opus`, ...
pub fn audio_codec_name(codec: AudioCodec) -> String {
    match codec {
        AudioCodec::Aac => "aac".into(),
        AudioCodec::Mp3 => "mp3".into(),
        AudioCodec::Opus => "opus".into(),
        AudioCodec::Flac => "flac".into(),
        AudioCodec::Ac3 => "ac3".into(),
        AudioCodec::Eac3 => "eac3".into(),
        AudioCodec::Legacy(0) => "pcm".into(),
        AudioCodec::Legacy(1) => "adpcm".into(),
        AudioCodec::Legacy(3) => "pcm-le".into(),
        AudioCodec::Legacy(4..=6) => "nellymoser".into(),
        AudioCodec::Legacy(7) => "g711a".into(),
        AudioCodec::Legacy(8) => "g711u".into(),
        AudioCodec::Legacy(11) => "speex".into(),
        AudioCodec::Legacy(format) => format!("flv-sound-{format}"),
        AudioCodec::Other(fourcc) => fourcc.to_string(),
    }
}

/// A rate from a growing total, sampled now and then: the control
/// thread's bitrates from the byte counters, a shard's per-stream
/// bitrates. The rate is the last interval's, so it follows changes within
/// one sampling period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateMeter {
    last: Option<(u64, u64)>,
    per_s: u64,
}

impl RateMeter {
    /// Takes `total` at `now_ms`; returns the rate per second since the
    /// previous sample (0 at the first). A total that went down (a
    /// restart) counts from zero.
    pub fn sample(&mut self, total: u64, now_ms: u64) -> u64 {
        if let Some((before, at_ms)) = self.last {
            let elapsed_ms = now_ms.saturating_sub(at_ms);
            if elapsed_ms == 0 {
                return self.per_s;
            }
            let grown = total.checked_sub(before).unwrap_or(total);
            self.per_s = grown.saturating_mul(1000) / elapsed_ms;
        }
        self.last = Some((total, now_ms));
        self.per_s
    }

    /// The rate at the last sample.
    pub fn per_s(&self) -> u64 {
        self.per_s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_is_the_last_interval_s() {
        let mut meter = RateMeter::default();
        assert_eq!(meter.sample(1000, 0), 0);
        assert_eq!(meter.sample(3000, 1000), 2000);
        assert_eq!(meter.sample(3500, 1500), 1000);
        assert_eq!(meter.sample(3500, 1500), 1000, "no time passed: unchanged");
        assert_eq!(
            meter.sample(100, 2500),
            100,
            "a reset total counts from zero"
        );
        assert_eq!(meter.per_s(), 100);
    }
    use crate::protocol::flv::FourCc;

    #[test]
    fn codecs_come_from_sequence_headers_and_first_frames() {
        let mut info = StreamInfo::default();
        // AVC sequence header, AAC sequence header.
        info.note_media(
            MediaKind::Video,
            FrameClass::SequenceHeader,
            &[0x17, 0, 0, 0, 0, 1],
        );
        info.note_media(
            MediaKind::Audio,
            FrameClass::SequenceHeader,
            &[0xAF, 0, 0x12, 0x10],
        );
        assert_eq!(info.video_codec, Some(VideoCodec::Avc));
        assert_eq!(info.audio_codec, Some(AudioCodec::Aac));
        assert_eq!((info.bytes_in, info.frames_in), (10, 2));
        // MP3 has no sequence header: its first frame tells.
        let mut info = StreamInfo::default();
        info.note_media(MediaKind::Audio, FrameClass::Other, &[0x2F, 1, 2]);
        assert_eq!(info.audio_codec, Some(AudioCodec::Mp3));
        // An enhanced HEVC sequence start replaces what was known.
        info.note_media(
            MediaKind::Video,
            FrameClass::SequenceHeader,
            b"\x90hvc1\x01",
        );
        assert_eq!(info.video_codec, Some(VideoCodec::Hevc));
    }

    #[test]
    fn picture_size_and_frame_rate_come_from_metadata() {
        let mut info = StreamInfo::default();
        let meta = Value::EcmaArray(vec![
            ("width".into(), Value::Number(1280.0)),
            ("height".into(), Value::Number(720.0)),
            ("framerate".into(), Value::Number(29.97)),
        ]);
        info.note_metadata(&meta);
        info.count(100);
        assert_eq!(
            (info.width, info.height, info.fps),
            (Some(1280), Some(720), Some(29.97))
        );
        let odd = Value::object([
            ("width", Value::Number(-5.0)),
            ("height", Value::Number(f64::NAN)),
            ("fps", Value::Number(25.0)),
        ]);
        info.note_metadata(&odd);
        info.count(50);
        assert_eq!(
            (info.width, info.height, info.fps),
            (None, None, Some(25.0))
        );
        assert_eq!(info.bytes_in, 150);
        info.forget_source();
        assert_eq!(info.fps, None);
        assert_eq!(
            (info.bytes_in, info.frames_in),
            (150, 2),
            "the counts go on"
        );
    }

    #[test]
    fn codec_names_are_stable() {
        assert_eq!(video_codec_name(VideoCodec::Avc), "h264");
        assert_eq!(video_codec_name(VideoCodec::Legacy(4)), "vp6");
        assert_eq!(video_codec_name(VideoCodec::Legacy(9)), "flv-codec-9");
        assert_eq!(
            video_codec_name(VideoCodec::Other(FourCc(*b"vvc1"))),
            "vvc1"
        );
        assert_eq!(audio_codec_name(AudioCodec::Aac), "aac");
        assert_eq!(audio_codec_name(AudioCodec::Legacy(11)), "speex");
        assert_eq!(audio_codec_name(AudioCodec::Legacy(13)), "flv-sound-13");
    }
}
