//! The player side of Low-Latency HLS (RFC 8216bis), without I/O: what an
//! HLS player such as hls.js in low-latency mode fetches, and what it
//! reads from the answers. The driver that does the fetching, over one
//! keep-alive connection, is `player::hls`.
//!
//! - [`playlist`]: the media playlist's tags a player acts on (segments,
//!   parts, the preload hint, the init segment, hold-back, blocking
//!   reload), parsed with a bound on every size;
//! - [`follow`]: which request comes next: the playlist (blocking on the
//!   part wanted), an init segment, a part; where to start (the live
//!   edge minus `PART-HOLD-BACK`, at an independent part) and what to do
//!   when a part is gone or a segment ended early;
//! - [`fmp4`]: the init segment's tracks, then each part's `moof` and
//!   `mdat` walked as its bytes arrive: every sample with its track,
//!   decode time, sync flag and first bytes (where the stamp is);
//! - [`http`]: HTTP/1.1 requests and responses on a keep-alive
//!   connection: bodies framed by `Content-Length` or chunked, and
//!   whether the connection may carry the next request.
//!
//! Nothing here reads a socket or a clock.

pub mod fmp4;
pub mod follow;
pub mod http;
pub mod playlist;
#[cfg(test)]
pub(crate) mod testing;
