//! ISO BMFF boxes for CMAF: the init segment and fragments.
//!
//! SKELETON: helper A fills this in (see the brief).

use bytes::Bytes;

use crate::codec::{AudioConfig, VideoConfig};

/// The video track's id and timescale (90 kHz, as every HLS packager).
pub const VIDEO_TRACK_ID: u32 = 1;
pub const VIDEO_TIMESCALE: u32 = 90_000;
/// The audio track's id; its timescale is its sample rate
/// ([`audio_timescale`]).
pub const AUDIO_TRACK_ID: u32 = 2;

/// The audio track's timescale: the sample rate (48 kHz for Opus).
pub fn audio_timescale(config: &AudioConfig) -> u32 {
    todo!("helper A: {config:?}")
}

/// `ftyp` + `moov` for the tracks present (video track 1, audio track 2).
pub fn init_segment(video: Option<&VideoConfig>, audio: Option<&AudioConfig>) -> Bytes {
    todo!("helper A: {video:?} {audio:?}")
}

/// One sample of a track run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// In the track's timescale.
    pub duration: u32,
    /// Presentation minus decode time, in the track's timescale.
    pub composition_offset: i32,
    /// A sync sample (video keyframe; every audio sample).
    pub sync: bool,
    pub data: Bytes,
}

/// A track's samples in one fragment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackRun {
    pub track_id: u32,
    /// `tfdt`: decode time of the first sample, in the track's timescale.
    pub base_decode_time: u64,
    pub samples: Vec<Sample>,
}

/// `moof` + `mdat` holding the runs (empty runs left out): one
/// allocation of exactly the fragment's size, the samples' bytes copied
/// once.
pub fn fragment(sequence_number: u32, runs: &[TrackRun]) -> Bytes {
    todo!("helper A: {sequence_number} {runs:?}")
}
