//! The player side of Low-Latency HLS (RFC 8216bis), without I/O: what an
//! HLS player such as hls.js in low-latency mode fetches, and what it
//! reads from the answers. The driver that does the fetching, over one
//! keep-alive connection, is `player::hls`.
//!
//! - [`playlist`]: the media playlist's tags a player acts on (segments,
//!   parts, the preload hint, the init segment, hold-back, blocking
//!   reload), parsed with a bound on every size.
//!
//! Nothing here reads a socket or a clock.

pub mod playlist;
