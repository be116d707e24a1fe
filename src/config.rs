//! Settings: defaults, the TOML file and command-line flags, validated into
//! one [`Config`]. Out-of-range values fail at startup naming the key and
//! the allowed range.

use std::net::SocketAddr;
use std::time::Duration;

use crate::limits;

/// Everything the server needs to start.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Addresses to accept RTMP on; every shard listens on each
    /// (SO_REUSEPORT).
    pub listen: Vec<SocketAddr>,
    /// Number of shards; `None`: one per CPU in `cpus` (or per usable CPU).
    pub shards: Option<usize>,
    /// CPUs to pin shards to, in order; `None`: the usable CPUs in order.
    pub cpus: Option<Vec<usize>>,
    /// Chunk size the server sends with (announced after `connect`).
    pub chunk_size: u32,
    /// Connections the whole server accepts at once.
    pub max_connections: usize,
    pub limits: ProtocolLimits,
    pub stream: StreamConfig,
    pub player: PlayerConfig,
    pub timeouts: Timeouts,
}

/// Bounds on what one peer can make a session hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProtocolLimits {
    pub message_size_max: u32,
    pub partial_bytes_max: u32,
    pub chunk_streams_max: usize,
    pub streams_per_connection_max: usize,
}

/// What happens to a live stream's frames on the way to players.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamConfig {
    /// Bytes of frames since the last keyframe kept for new players.
    pub gop_cache_bytes_max: usize,
    /// Duration of frames since the last keyframe kept for new players.
    pub gop_cache_duration_max: Duration,
    /// What a second publisher of a live stream gets.
    pub takeover: Takeover,
    /// Make each track's timestamps monotonic across publisher jitter,
    /// resets and republishes.
    pub timestamp_correction: bool,
}

/// Policy for a publish of a stream that is already being published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Takeover {
    /// Refuse the newcomer with `NetStream.Publish.BadName`.
    Reject,
    /// Disconnect the current publisher and let the newcomer in (a
    /// reconnecting encoder resumes at once).
    Replace,
}

/// Per-player delivery bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlayerConfig {
    /// Bytes queued for one player before video is dropped until the next
    /// keyframe.
    pub queue_bytes_max: usize,
    /// A player that keeps its queue over the bound this long is
    /// disconnected.
    pub slow_disconnect_after: Duration,
    /// Most bytes one `writev` carries.
    pub write_batch_bytes_max: usize,
}

/// How long peers may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// From accept to the end of the handshake and `connect`.
    pub handshake: Duration,
    /// No bytes in either direction for this long closes a connection.
    pub idle: Duration,
    /// Graceful shutdown: players are told and connections closed within
    /// this.
    pub shutdown: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: vec![SocketAddr::from(([0, 0, 0, 0], 1935))],
            shards: None,
            cpus: None,
            chunk_size: limits::CHUNK_SIZE_OUT_DEFAULT,
            max_connections: limits::CONNECTIONS_MAX_DEFAULT,
            limits: ProtocolLimits::default(),
            stream: StreamConfig::default(),
            player: PlayerConfig::default(),
            timeouts: Timeouts::default(),
        }
    }
}

impl Default for ProtocolLimits {
    fn default() -> Self {
        ProtocolLimits {
            message_size_max: limits::MESSAGE_SIZE_MAX_DEFAULT,
            partial_bytes_max: limits::PARTIAL_BYTES_MAX_DEFAULT,
            chunk_streams_max: limits::CHUNK_STREAMS_MAX,
            streams_per_connection_max: limits::STREAMS_PER_CONNECTION_MAX,
        }
    }
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            gop_cache_bytes_max: limits::GOP_CACHE_BYTES_MAX_DEFAULT,
            gop_cache_duration_max: Duration::from_millis(
                limits::GOP_CACHE_DURATION_MS_MAX_DEFAULT,
            ),
            takeover: Takeover::Reject,
            timestamp_correction: true,
        }
    }
}

impl Default for PlayerConfig {
    fn default() -> Self {
        PlayerConfig {
            queue_bytes_max: limits::PLAYER_QUEUE_BYTES_MAX_DEFAULT,
            slow_disconnect_after: Duration::from_millis(limits::SLOW_DISCONNECT_MS_DEFAULT),
            write_batch_bytes_max: limits::WRITE_BATCH_BYTES_MAX_DEFAULT,
        }
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            handshake: Duration::from_millis(limits::HANDSHAKE_TIMEOUT_MS_DEFAULT),
            idle: Duration::from_millis(limits::IDLE_TIMEOUT_MS_DEFAULT),
            shutdown: Duration::from_millis(limits::SHUTDOWN_GRACE_MS_DEFAULT),
        }
    }
}
