//! What the muxer needs from an RTMP audio or video message body (an FLV
//! tag body): the decoder configuration and coded samples, as slices of
//! the message (`Bytes::slice`), never copies.
//!
//! SKELETON: helper A fills this in (see the brief). Signatures are the
//! contract the packager codes against.

use bytes::Bytes;

/// A video decoder configuration, as the sample entry needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VideoConfig {
    /// `avcC` (AVCDecoderConfigurationRecord) as sent in the sequence header.
    Avc {
        record: Bytes,
        width: u16,
        height: u16,
    },
    /// `hvcC` (HEVCDecoderConfigurationRecord).
    Hevc {
        record: Bytes,
        width: u16,
        height: u16,
    },
    /// `av1C` (AV1CodecConfigurationRecord).
    Av1 {
        record: Bytes,
        width: u16,
        height: u16,
    },
}

/// An audio decoder configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AudioConfig {
    /// AudioSpecificConfig, with what it says.
    Aac {
        config: Bytes,
        sample_rate: u32,
        channels: u8,
    },
    /// OpusHead (RFC 7845 5.1) as enhanced RTMP sends it.
    Opus {
        head: Bytes,
        channels: u8,
        pre_skip: u16,
        input_sample_rate: u32,
    },
}

/// A coded video sample: length-prefixed NAL units (AVC, HEVC) or OBUs (AV1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VideoSample {
    pub keyframe: bool,
    /// Presentation minus decode time.
    pub composition_time_ms: i32,
    pub data: Bytes,
}

/// What one message is to the muxer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    VideoConfig(VideoConfig),
    AudioConfig(AudioConfig),
    Video(VideoSample),
    /// A coded audio frame (raw AAC, an Opus packet).
    Audio(Bytes),
    /// Nothing to mux: end of sequence, metadata, a codec HLS cannot carry
    /// here, an unreadable header.
    Skip,
}

/// Reads a video message body.
pub fn parse_video(body: &Bytes) -> Parsed {
    todo!("helper A: {body:?}")
}

/// Reads an audio message body.
pub fn parse_audio(body: &Bytes) -> Parsed {
    todo!("helper A: {body:?}")
}
