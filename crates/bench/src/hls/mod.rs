//! The player side of Low-Latency HLS (RFC 8216bis), without I/O: what an
//! HLS player such as hls.js in low-latency mode fetches, and what it
//! reads from the answers. The driver that does the fetching, over one
//! keep-alive connection, is `player::hls`.
//!
//! - [`playlist`]: the media playlist's tags a player acts on (segments,
//!   parts, the preload hint, the init segment, hold-back, blocking
//!   reload), parsed with a bound on every size;
//! - [`fmp4`]: the init segment's tracks, then each part's `moof` and
//!   `mdat` walked as its bytes arrive: every sample with its track,
//!   decode time, sync flag and first bytes (where the stamp is).
//!
//! Nothing here reads a socket or a clock.

pub mod fmp4;
pub mod playlist;
