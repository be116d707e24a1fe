//! Live streams without sockets: packaging published messages into shared
//! frames, the GOP cache a joining player starts from, per-track timestamp
//! correction, each connection's outbound queue with the slow-consumer
//! policy, when a stream's players write (pacing), and what the admin API
//! shows about a stream.
//!
//! Pure like `protocol` and `session` (time comes in as milliseconds): the
//! shard layer owns the sockets and decides who gets which frame; this
//! layer decides what a frame is and when a player's copy may be dropped.

mod frame;
mod gop;
mod info;
mod pacing;
mod queue;
mod stream;
mod timestamp;

pub use frame::{CANONICAL_STREAM_ID, FRAME_OVERHEAD_BYTES, Frame, FrameClass};
pub use gop::GopCache;
pub use info::{RateMeter, StreamInfo, audio_codec_name, video_codec_name};
pub use pacing::{AUDIO_HOLD_MS, Due, Pace, Pacing, WINDOW_SLOTS, WRITE_WINDOW_MS_MAX};
pub use queue::{Offer, OutboundQueue, QUEUE_ENTRY_BYTES, QUEUE_SLOTS_KEPT, QueueStats};
pub use stream::{LiveStream, StreamKey, StreamSettings};
pub use timestamp::TimestampCorrector;
