//! # ringcast-hls: HLS and Low-Latency HLS, without I/O
//!
//! A live stream's RTMP messages become CMAF (fragmented MP4) segments
//! and parts once per stream, kept as shared `Bytes` in a [`Window`] that
//! any shard serves from:
//!
//! - [`codec`]: what the muxer needs from an FLV tag body: the decoder
//!   configuration (avcC, hvcC, av1C, AudioSpecificConfig, OpusHead) and
//!   coded samples, as slices of the message, never copies;
//! - [`mp4`]: ISO BMFF boxes: the init segment (`ftyp` `moov`) and one
//!   fragment (`moof` `mdat`) per part (ISO/IEC 14496-12, 14496-15,
//!   23000-19 CMAF);
//! - [`packager`]: one stream's state machine: messages in (with the wall
//!   clock as a number), parts cut every `part_ms`, segments at keyframes
//!   after `segment_ms`, a sliding window out;
//! - [`window`]: the immutable snapshot players are served from;
//! - [`playlist`]: the media playlist with the LL-HLS tags (RFC 8216bis);
//! - [`directives`]: `_HLS_msn` / `_HLS_part` blocking-reload requests,
//!   checked against a window.
//!
//! Like `ringcast-rtmp`, no async runtime, socket or clock.

pub mod codec;
pub mod directives;
pub mod mp4;
pub mod packager;
pub mod playlist;
pub mod window;

#[cfg(test)]
mod testing;

pub use directives::{Check, Directives};
pub use packager::{Packager, Settings};
pub use window::{Part, Segment, Window};
