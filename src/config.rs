//! Settings: built-in defaults, the TOML file and command-line flags,
//! merged in that order of precedence and validated into one [`Config`].
//!
//! Owns the file format (every key, its section and unit), the allowed
//! range of every value with the reason for it, and the error messages that
//! name the key as written in the file (`stream.gop_cache_bytes_max`), the
//! value and the range. Defaults come from [`crate::limits`].
//!
//! Must not look at the machine: whether the listed CPUs exist, ports are
//! free or the file limit suffices is [`crate::startup`]'s to check. Must
//! not log or exit: callers decide what an error does.
//!
//! ```toml
//! listen = ["0.0.0.0:1935", "[::]:1935"]
//! shards = 4                  # default: one per CPU in `cpus`, or per usable CPU
//! cpus = "0,2-3"              # default: every usable CPU
//! chunk_size = 4096
//! max_connections = 10000
//!
//! [limits]
//! message_size_max = 8388608
//! partial_bytes_max = 9437184
//! chunk_streams_max = 64
//! streams_per_connection_max = 16
//!
//! [stream]
//! gop_cache_bytes_max = 4194304
//! gop_cache_duration_ms_max = 10000
//! takeover = "reject"         # or "replace"
//! timestamp_correction = true
//!
//! [player]
//! queue_bytes_max = 8388608
//! slow_disconnect_ms = 10000
//! write_batch_bytes_max = 262144
//!
//! [timeouts]
//! handshake_ms = 10000
//! idle_ms = 60000
//! shutdown_ms = 5000
//!
//! [relay]
//! origins = []                # edge mode: "rtmp://host[:port][/app]"
//! push = []                   # "rtmp://host[:port]/app[/name]", {name}: the published name
//! idle_stop_ms = 5000
//! connect_timeout_ms = 5000
//! backoff_max_ms = 10000
//!
//! # [app.live]                # per app, instead of the global lists
//! # origins = ["rtmp://origin1/live", "rtmp://origin2/live"]
//! # push = []
//! ```

// Input from the environment and the operator is handled, never unwrapped
// (tests exempt).
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::limits;
use crate::protocol::command::RtmpUrl;

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
    pub relay: RelayConfig,
}

/// Pulling streams from origins (edge mode) and pushing published streams
/// to other servers.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct RelayConfig {
    /// Origins for every app; one whose URL names an app serves only that
    /// app. A player asking for a stream nobody publishes here makes the
    /// edge pull it from these, in consistent-hash order.
    pub origins: Vec<RtmpUrl>,
    /// Every stream published here is pushed to each of these; a URL may
    /// name the stream, with `{name}` for the published name.
    pub push: Vec<RtmpUrl>,
    /// Per-app lists, used instead of the global ones for that app.
    pub apps: BTreeMap<String, AppRelay>,
    pub timing: RelayTiming,
}

/// One app's relay lists; `None` falls back to the global list.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct AppRelay {
    pub origins: Option<Vec<RtmpUrl>>,
    pub push: Option<Vec<RtmpUrl>>,
}

/// How relays wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RelayTiming {
    /// A pull stops this long after its last player left.
    pub idle_stop: Duration,
    /// Connecting and starting to pull or push must take no longer.
    pub connect_timeout: Duration,
    /// Retries back off up to this.
    pub backoff_max: Duration,
}

impl Default for RelayTiming {
    fn default() -> Self {
        RelayTiming {
            idle_stop: Duration::from_millis(limits::RELAY_IDLE_STOP_MS_DEFAULT),
            connect_timeout: Duration::from_millis(limits::RELAY_CONNECT_TIMEOUT_MS_DEFAULT),
            backoff_max: Duration::from_millis(limits::RELAY_BACKOFF_MAX_MS_DEFAULT),
        }
    }
}

impl RelayConfig {
    /// The origins `app`'s streams are pulled from, each with the app to
    /// ask the origin for (the URL's, else `app` itself).
    pub fn origins_for(&self, app: &str) -> Vec<RtmpUrl> {
        let listed = match self.apps.get(app).and_then(|a| a.origins.as_ref()) {
            Some(origins) => origins.clone(),
            None => self
                .origins
                .iter()
                .filter(|o| o.path.is_empty() || o.app() == app)
                .cloned()
                .collect(),
        };
        listed.into_iter().map(|o| with_app(o, app)).collect()
    }

    /// Where `app`'s published streams are pushed, each URL naming the app
    /// (the URL's, else `app`) and, if it names one, the stream.
    pub fn push_for(&self, app: &str) -> Vec<RtmpUrl> {
        let listed = match self.apps.get(app).and_then(|a| a.push.as_ref()) {
            Some(push) => push.clone(),
            None => self.push.clone(),
        };
        listed.into_iter().map(|t| with_app(t, app)).collect()
    }
}

/// `url` with `app` as its path when it names none.
fn with_app(mut url: RtmpUrl, app: &str) -> RtmpUrl {
    if url.path.is_empty() {
        url.path = app.to_owned();
    }
    url
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
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
            relay: RelayConfig::default(),
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

// ---------------------------------------------------------------------------
// Loading: defaults < file < flags
// ---------------------------------------------------------------------------

/// Values given on the command line; they take precedence over the file.
/// An empty `listen` or a `None` means "not given".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    pub listen: Vec<SocketAddr>,
    pub shards: Option<usize>,
    pub cpus: Option<Vec<usize>>,
    pub chunk_size: Option<u32>,
    /// `--origin`: replaces the file's global origins.
    pub origins: Vec<RtmpUrl>,
    /// `--push`: replaces the file's global push targets.
    pub push: Vec<RtmpUrl>,
}

impl Config {
    /// Builds the configuration to run with: defaults, then the file (if
    /// any), then the flags. The file is validated on its own first, so a
    /// bad value in it is reported against the file even when a flag would
    /// override it, and `check-config FILE` can give the same verdict.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let mut config = match file {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        config.apply(overrides);
        // The file (or the defaults) passed, so only a flag can fail here.
        config.validate().map_err(|invalid| ConfigError::Flag {
            flag: flag_for_key(&invalid.key),
            invalid,
        })?;
        Ok(config)
    }

    /// Reads and validates one TOML file; keys it leaves out take their
    /// defaults.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_toml(&text, path)
    }

    /// Parses and validates TOML text; `path` names it in errors.
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let file: File = toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source: Box::new(source),
        })?;
        let invalid_file = |invalid| ConfigError::File {
            path: path.to_path_buf(),
            invalid,
        };
        let mut config = Config::default();
        file.apply_to(&mut config).map_err(invalid_file)?;
        config.validate().map_err(invalid_file)?;
        Ok(config)
    }

    /// Checks every value against its range and the relations between
    /// keys; the first violation is returned, named as in the file.
    pub fn validate(&self) -> Result<(), Invalid> {
        self.validate_top()?;
        self.validate_limits()?;
        self.validate_delivery()?;
        self.validate_timeouts()?;
        self.validate_relay()
    }

    fn apply(&mut self, overrides: &Overrides) {
        if !overrides.listen.is_empty() {
            self.listen.clone_from(&overrides.listen);
        }
        if overrides.shards.is_some() {
            self.shards = overrides.shards;
        }
        if overrides.cpus.is_some() {
            self.cpus.clone_from(&overrides.cpus);
        }
        if let Some(chunk_size) = overrides.chunk_size {
            self.chunk_size = chunk_size;
        }
        if !overrides.origins.is_empty() {
            self.relay.origins.clone_from(&overrides.origins);
        }
        if !overrides.push.is_empty() {
            self.relay.push.clone_from(&overrides.push);
        }
    }
}

/// The flag that sets `key`, for errors after the flags were applied.
fn flag_for_key(key: &str) -> &'static str {
    match key {
        "listen" => "--listen",
        "shards" => "--shards",
        "cpus" => "--cpus",
        "chunk_size" => "--chunk-size",
        "relay.origins" => "--origin",
        "relay.push" => "--push",
        _ => "command-line flags",
    }
}

// ---------------------------------------------------------------------------
// Validation: every range in one place, each with its reason
// ---------------------------------------------------------------------------

/// An inclusive range of allowed values for the key named as in the file.
#[derive(Clone, Copy, Debug)]
struct Bound {
    key: &'static str,
    min: u64,
    max: u64,
}

/// Addresses in `listen`. Why: each costs one listening socket per shard,
/// so 64 addresses × 1024 shards is already 64 Ki descriptors.
const LISTEN_ADDRESSES_MAX: usize = 64;

/// Highest CPU number a CPU list may name. Why: the affinity mask that
/// `sched_setaffinity` takes (glibc `cpu_set_t`, `CPU_SETSIZE`) holds 1024
/// CPUs; the bound also keeps `0-4000000000` from allocating a huge list.
pub const CPU_ID_MAX: usize = 1023;

/// Why: at least one shard must run; past `CPU_SETSIZE` (1024) shards could
/// not each have a CPU of their own.
const SHARDS: Bound = Bound {
    key: "shards",
    min: 1,
    max: CPU_ID_MAX as u64 + 1,
};

/// Why: 128 is the size every connection starts with (RTMP §5.4.1), and
/// smaller would only add header bytes to what we send; no message is
/// longer than the 24-bit length field allows, so a larger chunk could
/// never fill and would change nothing.
const CHUNK_SIZE: Bound = Bound {
    key: "chunk_size",
    min: limits::CHUNK_SIZE_INITIAL as u64,
    max: limits::MESSAGE_SIZE_PROTOCOL_MAX as u64,
};

/// Why: the server needs at least one connection; 16 Mi connections at
/// ~70 KiB each (a 64 KiB read buffer plus session state) would be 1 TiB,
/// so anything above is a typo.
const MAX_CONNECTIONS: Bound = Bound {
    key: "max_connections",
    min: 1,
    max: 1 << 24,
};

/// Why: `connect` with its command object and `@setDataFrame` metadata from
/// real encoders fit in 4 KiB, so a smaller cap refuses clients before any
/// media is sent; the top is the 24-bit length field (RTMP §5.3.1.2).
const MESSAGE_SIZE_MAX: Bound = Bound {
    key: "limits.message_size_max",
    min: 4096,
    max: limits::MESSAGE_SIZE_PROTOCOL_MAX as u64,
};

/// Why: must hold one maximal message (checked as a relation below); the
/// top is what the `u32` counter holds.
const PARTIAL_BYTES_MAX: Bound = Bound {
    key: "limits.partial_bytes_max",
    min: 4096,
    max: u32::MAX as u64,
};

/// Why: a publisher uses the control stream plus audio, video and data
/// streams (ffmpeg: up to 8); chunk stream ids 2..=65599 exist on the wire,
/// 65598 of them.
const CHUNK_STREAMS_MAX: Bound = Bound {
    key: "limits.chunk_streams_max",
    min: 8,
    max: 65_598,
};

/// Why: publishing or playing needs one stream; players that switch
/// streams open a few, and past 1024 small records it is a typo.
const STREAMS_PER_CONNECTION_MAX: Bound = Bound {
    key: "limits.streams_per_connection_max",
    min: 1,
    max: 1024,
};

/// Why: 0 disables the cache (new players wait for the next keyframe);
/// 1 GiB is 80 s of 100 Mbit/s video, and the cache is held per stream per
/// shard, so more is a typo.
const GOP_CACHE_BYTES_MAX: Bound = Bound {
    key: "stream.gop_cache_bytes_max",
    min: 0,
    max: 1 << 30,
};

/// Why: 0 disables the cache; a cache longer than 10 minutes would start
/// new players that far behind live.
const GOP_CACHE_DURATION_MS_MAX: Bound = Bound {
    key: "stream.gop_cache_duration_ms_max",
    min: 0,
    max: 600_000,
};

/// Why: must hold the whole GOP cache (a relation, below); frames are
/// shared by all players, so 2 GiB is per stream and more is a typo.
const QUEUE_BYTES_MAX: Bound = Bound {
    key: "player.queue_bytes_max",
    min: 1,
    max: 1 << 31,
};

/// Why: below a page a `writev` moves less than one TCP segment and the
/// system call costs more than the copy; at most the queue (a relation).
const WRITE_BATCH_BYTES_MAX: Bound = Bound {
    key: "player.write_batch_bytes_max",
    min: 4096,
    max: 1 << 31,
};

/// Every timeout. Why: 0 would close every connection at once; a day is
/// no timeout at all, and the bound keeps timer arithmetic far from
/// overflow and catches a unit mix-up (µs written for ms).
const fn timeout_ms(key: &'static str) -> Bound {
    Bound {
        key,
        min: 1,
        max: 86_400_000,
    }
}

impl Config {
    fn validate_top(&self) -> Result<(), Invalid> {
        let listen_value = || {
            let quoted: Vec<String> = self.listen.iter().map(|a| format!("\"{a}\"")).collect();
            format!("[{}]", quoted.join(", "))
        };
        let fail = |rule: String| Invalid {
            key: "listen".into(),
            value: listen_value(),
            rule,
        };
        if self.listen.is_empty() {
            return Err(fail("must list at least one address".into()));
        }
        if self.listen.len() > LISTEN_ADDRESSES_MAX {
            return Err(fail(format!(
                "lists more than {LISTEN_ADDRESSES_MAX} addresses"
            )));
        }
        if let Some(twice) = first_duplicate(&self.listen) {
            return Err(fail(format!("lists {twice} more than once")));
        }
        if let Some(shards) = self.shards {
            SHARDS.check(shards as u64)?;
        }
        if let Some(cpus) = &self.cpus {
            validate_cpus(cpus)?;
        }
        CHUNK_SIZE.check(u64::from(self.chunk_size))?;
        MAX_CONNECTIONS.check(self.max_connections as u64)
    }

    fn validate_limits(&self) -> Result<(), Invalid> {
        let limits = &self.limits;
        MESSAGE_SIZE_MAX.check(u64::from(limits.message_size_max))?;
        PARTIAL_BYTES_MAX.check(u64::from(limits.partial_bytes_max))?;
        CHUNK_STREAMS_MAX.check(limits.chunk_streams_max as u64)?;
        STREAMS_PER_CONNECTION_MAX.check(limits.streams_per_connection_max as u64)?;
        // Why: a message being assembled counts against the partial bytes,
        // so a smaller total would refuse messages the size cap allows.
        relation(
            PARTIAL_BYTES_MAX,
            u64::from(limits.partial_bytes_max),
            Relation::AtLeast,
            MESSAGE_SIZE_MAX,
            u64::from(limits.message_size_max),
        )
    }

    fn validate_delivery(&self) -> Result<(), Invalid> {
        let (stream, player) = (&self.stream, &self.player);
        GOP_CACHE_BYTES_MAX.check(stream.gop_cache_bytes_max as u64)?;
        GOP_CACHE_DURATION_MS_MAX.check_ms(stream.gop_cache_duration_max)?;
        QUEUE_BYTES_MAX.check(player.queue_bytes_max as u64)?;
        timeout_ms("player.slow_disconnect_ms").check_ms(player.slow_disconnect_after)?;
        WRITE_BATCH_BYTES_MAX.check(player.write_batch_bytes_max as u64)?;
        // Why: a new player is sent the whole GOP cache at once; a queue
        // that cannot hold it would drop video before the first frame.
        relation(
            QUEUE_BYTES_MAX,
            player.queue_bytes_max as u64,
            Relation::GreaterThan,
            GOP_CACHE_BYTES_MAX,
            stream.gop_cache_bytes_max as u64,
        )?;
        // Why: a batch is gathered from the queue; a larger one never fills.
        relation(
            WRITE_BATCH_BYTES_MAX,
            player.write_batch_bytes_max as u64,
            Relation::AtMost,
            QUEUE_BYTES_MAX,
            player.queue_bytes_max as u64,
        )
    }

    fn validate_timeouts(&self) -> Result<(), Invalid> {
        let timeouts = &self.timeouts;
        timeout_ms("timeouts.handshake_ms").check_ms(timeouts.handshake)?;
        timeout_ms("timeouts.idle_ms").check_ms(timeouts.idle)?;
        timeout_ms("timeouts.shutdown_ms").check_ms(timeouts.shutdown)
    }
}

impl Config {
    fn validate_relay(&self) -> Result<(), Invalid> {
        let relay = &self.relay;
        relay_list("relay.origins".into(), &relay.origins)?;
        relay_list("relay.push".into(), &relay.push)?;
        for (app, lists) in &relay.apps {
            if let Some(origins) = &lists.origins {
                relay_list(format!("app.{app}.origins").into(), origins)?;
            }
            if let Some(push) = &lists.push {
                relay_list(format!("app.{app}.push").into(), push)?;
            }
        }
        let timing = &relay.timing;
        timeout_ms("relay.idle_stop_ms").check_ms(timing.idle_stop)?;
        timeout_ms("relay.connect_timeout_ms").check_ms(timing.connect_timeout)?;
        timeout_ms("relay.backoff_max_ms").check_ms(timing.backoff_max)
    }
}

/// Why: failover walks an origin list in order, and each push target is a
/// connection per published stream; past a handful an operator wants a
/// load balancer.
fn relay_list(key: Cow<'static, str>, urls: &[RtmpUrl]) -> Result<(), Invalid> {
    if urls.len() > limits::RELAY_TARGETS_MAX {
        return Err(Invalid {
            key,
            value: format!("{} URLs", urls.len()),
            rule: format!("lists more than {} URLs", limits::RELAY_TARGETS_MAX),
        });
    }
    Ok(())
}

fn validate_cpus(cpus: &[usize]) -> Result<(), Invalid> {
    let fail = |rule: String| Invalid {
        key: "cpus".into(),
        value: format!("\"{}\"", format_cpu_list(cpus)),
        rule,
    };
    if cpus.is_empty() {
        return Err(fail("must list at least one CPU".into()));
    }
    let mut seen = [false; CPU_ID_MAX + 1];
    for &cpu in cpus {
        match seen.get_mut(cpu) {
            None => return Err(fail(format!("names CPU {cpu}, above {CPU_ID_MAX}"))),
            Some(true) => return Err(fail(format!("lists CPU {cpu} more than once"))),
            Some(seen) => *seen = true,
        }
    }
    Ok(())
}

/// Quadratic, for short lists only (`listen` is capped first).
fn first_duplicate<T: PartialEq + Copy>(items: &[T]) -> Option<T> {
    items
        .iter()
        .enumerate()
        .find(|&(i, item)| items.iter().take(i).any(|earlier| earlier == item))
        .map(|(_, &item)| item)
}

/// How one key's value must compare with another's.
#[derive(Clone, Copy, Debug)]
enum Relation {
    GreaterThan,
    AtLeast,
    AtMost,
}

/// `value` (of `bound.key`) must stand in `relation` to `other_value`.
fn relation(
    bound: Bound,
    value: u64,
    relation: Relation,
    other: Bound,
    other_value: u64,
) -> Result<(), Invalid> {
    let (holds, words) = match relation {
        Relation::GreaterThan => (value > other_value, "greater than"),
        Relation::AtLeast => (value >= other_value, "at least"),
        Relation::AtMost => (value <= other_value, "at most"),
    };
    if holds {
        return Ok(());
    }
    Err(Invalid {
        key: bound.key.into(),
        value: value.to_string(),
        rule: format!("must be {words} {} ({other_value})", other.key),
    })
}

impl Bound {
    fn check(self, value: u64) -> Result<(), Invalid> {
        if (self.min..=self.max).contains(&value) {
            Ok(())
        } else {
            Err(self.out_of_range(value))
        }
    }

    fn check_ms(self, value: Duration) -> Result<(), Invalid> {
        self.check(u64::try_from(value.as_millis()).unwrap_or(u64::MAX))
    }

    /// A file's integer, checked against the range before it is narrowed
    /// to the field's type (TOML integers are `i64`).
    fn narrow<T: TryFrom<u64>>(self, value: i64) -> Result<T, Invalid> {
        let unsigned = u64::try_from(value).map_err(|_| self.out_of_range(value))?;
        self.check(unsigned)?;
        T::try_from(unsigned).map_err(|_| self.out_of_range(value))
    }

    fn out_of_range(self, value: impl fmt::Display) -> Invalid {
        Invalid {
            key: self.key.into(),
            value: value.to_string(),
            rule: format!("is out of range {}..={}", self.min, self.max),
        }
    }
}

// ---------------------------------------------------------------------------
// The file format
// ---------------------------------------------------------------------------

// Integers are read as `i64` (TOML's integer) and narrowed by `Bound`, so a
// negative or huge value gets the same "out of range" message as any other.
// `deny_unknown_fields` turns a misspelt key into an error naming it.

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct File {
    listen: Option<Vec<SocketAddr>>,
    shards: Option<i64>,
    cpus: Option<String>,
    chunk_size: Option<i64>,
    max_connections: Option<i64>,
    limits: LimitsSection,
    stream: StreamSection,
    player: PlayerSection,
    timeouts: TimeoutsSection,
    relay: RelaySection,
    app: BTreeMap<String, AppSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RelaySection {
    origins: Option<Vec<String>>,
    push: Option<Vec<String>>,
    idle_stop_ms: Option<i64>,
    connect_timeout_ms: Option<i64>,
    backoff_max_ms: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct AppSection {
    origins: Option<Vec<String>>,
    push: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct LimitsSection {
    message_size_max: Option<i64>,
    partial_bytes_max: Option<i64>,
    chunk_streams_max: Option<i64>,
    streams_per_connection_max: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct StreamSection {
    gop_cache_bytes_max: Option<i64>,
    gop_cache_duration_ms_max: Option<i64>,
    takeover: Option<Takeover>,
    timestamp_correction: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct PlayerSection {
    queue_bytes_max: Option<i64>,
    slow_disconnect_ms: Option<i64>,
    write_batch_bytes_max: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct TimeoutsSection {
    handshake_ms: Option<i64>,
    idle_ms: Option<i64>,
    shutdown_ms: Option<i64>,
}

impl File {
    /// Overwrites the fields of `config` that the file sets.
    fn apply_to(self, config: &mut Config) -> Result<(), Invalid> {
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        if let Some(shards) = self.shards {
            config.shards = Some(SHARDS.narrow(shards)?);
        }
        if let Some(text) = self.cpus {
            let cpus = parse_cpu_list(&text).map_err(|err| Invalid {
                key: "cpus".into(),
                value: format!("{text:?}"),
                rule: format!("is not a CPU list: {err}"),
            })?;
            config.cpus = Some(cpus);
        }
        set(&mut config.chunk_size, self.chunk_size, CHUNK_SIZE)?;
        set(
            &mut config.max_connections,
            self.max_connections,
            MAX_CONNECTIONS,
        )?;

        let (limits, file) = (&mut config.limits, self.limits);
        set(
            &mut limits.message_size_max,
            file.message_size_max,
            MESSAGE_SIZE_MAX,
        )?;
        set(
            &mut limits.partial_bytes_max,
            file.partial_bytes_max,
            PARTIAL_BYTES_MAX,
        )?;
        set(
            &mut limits.chunk_streams_max,
            file.chunk_streams_max,
            CHUNK_STREAMS_MAX,
        )?;
        let streams = file.streams_per_connection_max;
        set(
            &mut limits.streams_per_connection_max,
            streams,
            STREAMS_PER_CONNECTION_MAX,
        )?;

        let (stream, file) = (&mut config.stream, self.stream);
        set(
            &mut stream.gop_cache_bytes_max,
            file.gop_cache_bytes_max,
            GOP_CACHE_BYTES_MAX,
        )?;
        let gop_ms = file.gop_cache_duration_ms_max;
        set_ms(
            &mut stream.gop_cache_duration_max,
            gop_ms,
            GOP_CACHE_DURATION_MS_MAX,
        )?;
        stream.takeover = file.takeover.unwrap_or(stream.takeover);
        stream.timestamp_correction = file
            .timestamp_correction
            .unwrap_or(stream.timestamp_correction);

        let (player, file) = (&mut config.player, self.player);
        set(
            &mut player.queue_bytes_max,
            file.queue_bytes_max,
            QUEUE_BYTES_MAX,
        )?;
        let slow = timeout_ms("player.slow_disconnect_ms");
        set_ms(
            &mut player.slow_disconnect_after,
            file.slow_disconnect_ms,
            slow,
        )?;
        let batch = file.write_batch_bytes_max;
        set(
            &mut player.write_batch_bytes_max,
            batch,
            WRITE_BATCH_BYTES_MAX,
        )?;

        apply_relay(&mut config.relay, self.relay, self.app)?;

        let (timeouts, file) = (&mut config.timeouts, self.timeouts);
        set_ms(
            &mut timeouts.handshake,
            file.handshake_ms,
            timeout_ms("timeouts.handshake_ms"),
        )?;
        set_ms(
            &mut timeouts.idle,
            file.idle_ms,
            timeout_ms("timeouts.idle_ms"),
        )?;
        set_ms(
            &mut timeouts.shutdown,
            file.shutdown_ms,
            timeout_ms("timeouts.shutdown_ms"),
        )
    }
}

fn apply_relay(
    relay: &mut RelayConfig,
    file: RelaySection,
    apps: BTreeMap<String, AppSection>,
) -> Result<(), Invalid> {
    if let Some(urls) = file.origins {
        relay.origins = parse_urls("relay.origins".into(), &urls)?;
    }
    if let Some(urls) = file.push {
        relay.push = parse_urls("relay.push".into(), &urls)?;
    }
    let timing = &mut relay.timing;
    set_ms(
        &mut timing.idle_stop,
        file.idle_stop_ms,
        timeout_ms("relay.idle_stop_ms"),
    )?;
    let connect = timeout_ms("relay.connect_timeout_ms");
    set_ms(
        &mut timing.connect_timeout,
        file.connect_timeout_ms,
        connect,
    )?;
    set_ms(
        &mut timing.backoff_max,
        file.backoff_max_ms,
        timeout_ms("relay.backoff_max_ms"),
    )?;
    for (app, section) in apps {
        let key = |list: &str| Cow::Owned(format!("app.{app}.{list}"));
        let lists = AppRelay {
            origins: section
                .origins
                .map(|u| parse_urls(key("origins"), &u))
                .transpose()?,
            push: section
                .push
                .map(|u| parse_urls(key("push"), &u))
                .transpose()?,
        };
        relay.apps.insert(app, lists);
    }
    Ok(())
}

/// RTMP URLs from the file; a bad one is named with its key.
pub fn parse_urls(key: Cow<'static, str>, urls: &[String]) -> Result<Vec<RtmpUrl>, Invalid> {
    urls.iter()
        .map(|url| {
            RtmpUrl::parse(url).map_err(|err| Invalid {
                key: key.clone(),
                value: format!("{url:?}"),
                rule: format!("is not an RTMP URL: {err}"),
            })
        })
        .collect()
}

fn set<T: TryFrom<u64>>(field: &mut T, value: Option<i64>, bound: Bound) -> Result<(), Invalid> {
    if let Some(value) = value {
        *field = bound.narrow(value)?;
    }
    Ok(())
}

fn set_ms(field: &mut Duration, value: Option<i64>, bound: Bound) -> Result<(), Invalid> {
    if let Some(value) = value {
        *field = Duration::from_millis(bound.narrow(value)?);
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// CPU lists: "0,2-3"
// ---------------------------------------------------------------------------

/// Parses a CPU list in the kernel's `cpulist` format (`0,2-3`): numbers
/// and inclusive ranges separated by commas, spaces around them allowed.
/// Duplicates are dropped; the order of first appearance is kept, since
/// shards are pinned in list order.
pub fn parse_cpu_list(text: &str) -> Result<Vec<usize>, CpuListError> {
    if text.trim().is_empty() {
        return Err(CpuListError::Empty);
    }
    let mut cpus = Vec::new();
    let mut seen = [false; CPU_ID_MAX + 1];
    for item in text.split(',').map(str::trim) {
        let (low, high) = match item.split_once('-') {
            Some((low, high)) => (parse_cpu(low.trim(), item)?, parse_cpu(high.trim(), item)?),
            None => {
                let cpu = parse_cpu(item, item)?;
                (cpu, cpu)
            }
        };
        if low > high {
            return Err(CpuListError::Reversed {
                low: high,
                high: low,
            });
        }
        for cpu in low..=high {
            if let Some(seen) = seen.get_mut(cpu).filter(|seen| !**seen) {
                *seen = true;
                cpus.push(cpu);
            }
        }
    }
    Ok(cpus)
}

fn parse_cpu(text: &str, item: &str) -> Result<usize, CpuListError> {
    let not_a_cpu = || CpuListError::NotACpu(item.to_string());
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(not_a_cpu());
    }
    match text.parse::<usize>() {
        Ok(cpu) if cpu <= CPU_ID_MAX => Ok(cpu),
        _ => Err(CpuListError::TooHigh(text.to_string())),
    }
}

/// Writes CPUs back as a CPU list, runs of consecutive numbers as ranges:
/// `[0, 1, 2, 5]` → `0-2,5`.
pub fn format_cpu_list(cpus: &[usize]) -> String {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for &cpu in cpus {
        match runs.last_mut() {
            Some((_, high)) if high.checked_add(1) == Some(cpu) => *high = cpu,
            _ => runs.push((cpu, cpu)),
        }
    }
    let items: Vec<String> = runs
        .iter()
        .map(|&(low, high)| {
            if low == high {
                low.to_string()
            } else {
                format!("{low}-{high}")
            }
        })
        .collect();
    items.join(",")
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// One value that breaks a rule, named as in the file:
/// `chunk_size = 0 is out of range 128..=16777215`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{key} = {value} {rule}")]
pub struct Invalid {
    /// The key as written in the file, section included.
    pub key: Cow<'static, str>,
    /// The value as TOML would write it.
    pub value: String,
    /// What it must be: "is out of range 1..=1024", "must be greater than …".
    pub rule: String,
}

/// Why a CPU list does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CpuListError {
    #[error("the list is empty; write CPUs like 0,2-3")]
    Empty,
    #[error("{0:?} is not a CPU number or a range like 2-3")]
    NotACpu(String),
    #[error("range {high}-{low} is reversed; write {low}-{high}")]
    Reversed { low: usize, high: usize },
    #[error("CPU {0} is above {CPU_ID_MAX}, the highest a Linux affinity mask holds")]
    TooHigh(String),
}

/// Why the configuration cannot be built; each names the file or flag.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// TOML syntax, a wrong type, an unknown key (named, with line and
    /// column in the source).
    #[error("cannot parse config file {}", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("invalid config file {}: {invalid}", path.display())]
    File { path: PathBuf, invalid: Invalid },
    #[error("invalid {flag}: {invalid}")]
    Flag {
        flag: &'static str,
        invalid: Invalid,
    },
}

/// Helpers shared by the unit tests of `config` and `cli`.
#[cfg(test)]
pub(crate) mod test_support {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A file in the temporary directory, removed when dropped.
    pub(crate) struct TempFile(PathBuf);

    impl TempFile {
        pub(crate) fn new(text: &str) -> TempFile {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let name = format!("ringcast-unit-{}-{n}.toml", std::process::id());
            let path = std::env::temp_dir().join(name);
            std::fs::write(&path, text).expect("temp dir is writable");
            TempFile(path)
        }

        pub(crate) fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::TempFile;
    use super::*;
    use crate::cli::error_report;

    const FULL: &str = r#"
listen = ["127.0.0.1:1936", "[::1]:1936"]
shards = 3
cpus = "0,2-3"
chunk_size = 8192
max_connections = 500

[limits]
message_size_max = 1048576
partial_bytes_max = 2097152
chunk_streams_max = 16
streams_per_connection_max = 4

[stream]
gop_cache_bytes_max = 1000000
gop_cache_duration_ms_max = 4000
takeover = "replace"
timestamp_correction = false

[player]
queue_bytes_max = 3000000
slow_disconnect_ms = 2500
write_batch_bytes_max = 65536

[timeouts]
handshake_ms = 1500
idle_ms = 30000
shutdown_ms = 250

[relay]
origins = ["rtmp://o1:1936", "rtmp://o2/live"]
push = ["rtmp://backup/live/{name}"]
idle_stop_ms = 2000
connect_timeout_ms = 1000
backoff_max_ms = 4000

[app.news]
origins = ["rtmp://o3/master"]
push = []
"#;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(text, Path::new("test.toml"))
    }

    /// The whole message as `main` prints it, sources included.
    fn parse_err(text: &str) -> String {
        error_report(&parse(text).expect_err("the file is rejected"))
    }

    #[test]
    fn defaults_are_valid_and_listen_on_1935() {
        let config = Config::default();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.listen, vec![SocketAddr::from(([0, 0, 0, 0], 1935))]);
        assert_eq!(config.chunk_size, limits::CHUNK_SIZE_OUT_DEFAULT);
    }

    #[test]
    fn full_file_sets_every_field() {
        let config = parse(FULL).expect("valid file");
        let expected = Config {
            listen: vec![
                "127.0.0.1:1936".parse().unwrap(),
                "[::1]:1936".parse().unwrap(),
            ],
            shards: Some(3),
            cpus: Some(vec![0, 2, 3]),
            chunk_size: 8192,
            max_connections: 500,
            limits: ProtocolLimits {
                message_size_max: 1_048_576,
                partial_bytes_max: 2_097_152,
                chunk_streams_max: 16,
                streams_per_connection_max: 4,
            },
            stream: StreamConfig {
                gop_cache_bytes_max: 1_000_000,
                gop_cache_duration_max: Duration::from_millis(4000),
                takeover: Takeover::Replace,
                timestamp_correction: false,
            },
            player: PlayerConfig {
                queue_bytes_max: 3_000_000,
                slow_disconnect_after: Duration::from_millis(2500),
                write_batch_bytes_max: 65_536,
            },
            timeouts: Timeouts {
                handshake: Duration::from_millis(1500),
                idle: Duration::from_secs(30),
                shutdown: Duration::from_millis(250),
            },
            relay: RelayConfig {
                origins: vec![url("rtmp://o1:1936"), url("rtmp://o2/live")],
                push: vec![url("rtmp://backup/live/{name}")],
                apps: BTreeMap::from([(
                    "news".to_owned(),
                    AppRelay {
                        origins: Some(vec![url("rtmp://o3/master")]),
                        push: Some(vec![]),
                    },
                )]),
                timing: RelayTiming {
                    idle_stop: Duration::from_millis(2000),
                    connect_timeout: Duration::from_millis(1000),
                    backoff_max: Duration::from_millis(4000),
                },
            },
        };
        assert_eq!(config, expected);
    }

    fn url(text: &str) -> RtmpUrl {
        RtmpUrl::parse(text).unwrap()
    }

    #[test]
    fn origins_and_push_targets_resolve_per_app() {
        let config = parse(FULL).expect("valid file");
        let relay = &config.relay;
        // Global origins: one for any app, one for "live" only.
        let live: Vec<String> = relay
            .origins_for("live")
            .iter()
            .map(|u| format!("{}/{}", u.host, u.path))
            .collect();
        assert_eq!(live, vec!["o1/live", "o2/live"]);
        let other: Vec<String> = relay
            .origins_for("other")
            .iter()
            .map(|u| format!("{}/{}", u.host, u.path))
            .collect();
        assert_eq!(other, vec!["o1/other"]);
        // An app with its own list, and its own (empty) push list.
        assert_eq!(relay.origins_for("news")[0].path, "master");
        assert!(relay.push_for("news").is_empty());
        assert_eq!(
            relay.push_for("live")[0].stream().as_deref(),
            Some("{name}")
        );
    }

    #[test]
    fn a_bad_origin_url_in_the_file_is_named() {
        let err = parse_err("[app.live]\norigins = [\"rtmp//nope\"]\n");
        assert!(err.contains("app.live.origins"), "{err}");
        assert!(err.contains("rtmp//nope"), "{err}");
    }

    #[test]
    fn the_example_in_the_module_doc_parses_and_shows_the_defaults() {
        let source = include_str!("config.rs");
        let example: String = source
            .lines()
            .filter_map(|line| line.strip_prefix("//!"))
            .skip_while(|line| line.trim() != "```toml")
            .skip(1)
            .take_while(|line| line.trim() != "```")
            .map(|line| format!("{}\n", line.strip_prefix(' ').unwrap_or(line)))
            .collect();
        assert!(
            example.contains("[timeouts]"),
            "found the example:\n{example}"
        );
        let config = parse(&example).expect("the documented example is valid");
        let expected = Config {
            listen: vec![
                "0.0.0.0:1935".parse().unwrap(),
                "[::]:1935".parse().unwrap(),
            ],
            shards: Some(4),
            cpus: Some(vec![0, 2, 3]),
            ..Config::default()
        };
        assert_eq!(config, expected);
    }

    #[test]
    fn empty_file_is_the_defaults() {
        assert_eq!(parse("").expect("valid"), Config::default());
    }

    #[test]
    fn partial_file_keeps_defaults_for_missing_keys() {
        let config = parse("chunk_size = 1024\n[stream]\ntakeover = \"replace\"\n").unwrap();
        let expected = Config {
            chunk_size: 1024,
            stream: StreamConfig {
                takeover: Takeover::Replace,
                ..StreamConfig::default()
            },
            ..Config::default()
        };
        assert_eq!(config, expected);
    }

    #[test]
    fn unknown_top_level_key_is_named_with_the_file() {
        let message = parse_err("chunk_size = 1024\nchunksize = 4096\n");
        assert!(message.contains("test.toml"), "{message}");
        assert!(message.contains("unknown field `chunksize`"), "{message}");
        assert!(message.contains("line 2"), "{message}");
    }

    #[test]
    fn unknown_key_in_a_section_is_named() {
        let message = parse_err("[player]\nqueue_bytes = 5\n");
        assert!(message.contains("unknown field `queue_bytes`"), "{message}");
        assert!(
            message.contains("queue_bytes_max"),
            "lists the valid keys: {message}"
        );
    }

    #[test]
    fn unknown_section_is_named() {
        let message = parse_err("[relays]\norigins = [\"x\"]\n");
        assert!(message.contains("unknown field `relays`"), "{message}");
    }

    #[test]
    fn syntax_error_shows_file_and_position() {
        let message = parse_err("chunk_size = \n");
        assert!(
            message.starts_with("cannot parse config file test.toml: "),
            "{message}"
        );
        assert!(message.contains("line 1"), "{message}");
    }

    #[test]
    fn out_of_range_values_name_key_value_and_range() {
        let cases = [
            (
                "chunk_size = 0",
                "chunk_size = 0 is out of range 128..=16777215",
            ),
            (
                "chunk_size = 16777216",
                "chunk_size = 16777216 is out of range 128..=16777215",
            ),
            ("shards = 0", "shards = 0 is out of range 1..=1024"),
            (
                "max_connections = -5",
                "max_connections = -5 is out of range 1..=16777216",
            ),
            (
                "[limits]\nmessage_size_max = 99999999",
                "limits.message_size_max = 99999999 is out of range 4096..=16777215",
            ),
            (
                "[limits]\nchunk_streams_max = 7",
                "limits.chunk_streams_max = 7 is out of range 8..=65598",
            ),
            (
                "[stream]\ngop_cache_bytes_max = -1",
                "stream.gop_cache_bytes_max = -1 is out of range 0..=1073741824",
            ),
            (
                "[timeouts]\nidle_ms = 0",
                "timeouts.idle_ms = 0 is out of range 1..=86400000",
            ),
            (
                "[player]\nslow_disconnect_ms = 86400001",
                "player.slow_disconnect_ms = 86400001 is out of range 1..=86400000",
            ),
        ];
        for (text, expected) in cases {
            let message = parse_err(text);
            assert_eq!(
                message,
                format!("invalid config file test.toml: {expected}"),
                "{text}"
            );
        }
    }

    #[test]
    fn relations_between_keys_are_checked() {
        let cases = [
            (
                "[limits]\nmessage_size_max = 65536\npartial_bytes_max = 65535",
                "limits.partial_bytes_max = 65535 must be at least limits.message_size_max (65536)",
            ),
            (
                "[player]\nqueue_bytes_max = 4194304",
                "player.queue_bytes_max = 4194304 must be greater than \
                 stream.gop_cache_bytes_max (4194304)",
            ),
            (
                "[stream]\ngop_cache_bytes_max = 16777216",
                "player.queue_bytes_max = 8388608 must be greater than \
                 stream.gop_cache_bytes_max (16777216)",
            ),
            (
                "[player]\nqueue_bytes_max = 5000000\nwrite_batch_bytes_max = 5000001",
                "player.write_batch_bytes_max = 5000001 must be at most \
                 player.queue_bytes_max (5000000)",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(
                parse_err(text),
                format!("invalid config file test.toml: {expected}")
            );
        }
    }

    #[test]
    fn bad_takeover_value_names_the_choices() {
        let message = parse_err("[stream]\ntakeover = \"kick\"\n");
        assert!(message.contains("unknown variant `kick`"), "{message}");
        assert!(
            message.contains("`reject`") && message.contains("`replace`"),
            "{message}"
        );
    }

    #[test]
    fn wrong_types_and_bad_addresses_are_parse_errors() {
        assert!(parse_err("chunk_size = \"big\"").contains("chunk_size"));
        assert!(parse_err("listen = [\"localhost:1935\"]").contains("invalid socket address"));
        assert!(parse_err("[stream]\ntimestamp_correction = 1").contains("timestamp_correction"));
    }

    #[test]
    fn listen_must_be_non_empty_and_without_duplicates() {
        let message = parse_err("listen = []");
        assert!(
            message.ends_with("listen = [] must list at least one address"),
            "{message}"
        );
        let message = parse_err("listen = [\"0.0.0.0:1935\", \"0.0.0.0:1935\"]");
        assert!(
            message.ends_with("lists 0.0.0.0:1935 more than once"),
            "{message}"
        );
        // Both families on one port is the point of IPV6_V6ONLY.
        parse("listen = [\"0.0.0.0:1935\", \"[::]:1935\"]").expect("valid");
    }

    #[test]
    fn cpus_in_the_file_are_parsed_and_named_on_error() {
        assert_eq!(
            parse("cpus = \"1, 3-4\"").unwrap().cpus,
            Some(vec![1, 3, 4])
        );
        let message = parse_err("cpus = \"3-1\"");
        assert_eq!(
            message,
            "invalid config file test.toml: cpus = \"3-1\" is not a CPU list: \
             range 3-1 is reversed; write 1-3"
        );
    }

    #[test]
    fn validate_catches_what_only_code_can_build() {
        let mut config = Config {
            cpus: Some(vec![1, 1]),
            ..Config::default()
        };
        assert_eq!(
            config.validate().unwrap_err().rule,
            "lists CPU 1 more than once"
        );
        config.cpus = Some(vec![1024]);
        assert_eq!(
            config.validate().unwrap_err().rule,
            "names CPU 1024, above 1023"
        );
        config.cpus = Some(vec![]);
        assert_eq!(config.validate().unwrap_err().key, "cpus");
        config.cpus = None;
        config.timeouts.handshake = Duration::from_micros(500);
        let invalid = config.validate().unwrap_err();
        assert_eq!(
            invalid.to_string(),
            "timeouts.handshake_ms = 0 is out of range 1..=86400000"
        );
    }

    #[test]
    fn load_without_file_or_flags_is_the_defaults() {
        let config = Config::load(None, &Overrides::default()).unwrap();
        assert_eq!(config, Config::default());
    }

    #[test]
    fn load_applies_defaults_then_file_then_flags() {
        let file = TempFile::new("chunk_size = 8192\nshards = 2\n[timeouts]\nidle_ms = 5000\n");
        let overrides = Overrides {
            listen: vec!["127.0.0.1:1940".parse().unwrap()],
            chunk_size: Some(1024),
            ..Overrides::default()
        };
        let config = Config::load(Some(file.path()), &overrides).unwrap();
        assert_eq!(config.chunk_size, 1024, "flag beats file");
        assert_eq!(config.shards, Some(2), "file beats default");
        assert_eq!(
            config.timeouts.idle,
            Duration::from_secs(5),
            "file beats default"
        );
        assert_eq!(config.listen, overrides.listen, "flag beats default");
        assert_eq!(
            config.max_connections,
            limits::CONNECTIONS_MAX_DEFAULT,
            "default stays"
        );
    }

    #[test]
    fn load_names_the_flag_that_is_out_of_range() {
        let overrides = Overrides {
            shards: Some(0),
            ..Overrides::default()
        };
        let err = Config::load(None, &overrides).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid --shards: shards = 0 is out of range 1..=1024"
        );
        let overrides = Overrides {
            cpus: Some(vec![2000]),
            ..Overrides::default()
        };
        let err = Config::load(None, &overrides).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid --cpus: cpus = \"2000\""),
            "{err}"
        );
    }

    #[test]
    fn load_rejects_a_bad_file_even_when_a_flag_overrides_the_key() {
        let file = TempFile::new("chunk_size = 1\n");
        let overrides = Overrides {
            chunk_size: Some(4096),
            ..Overrides::default()
        };
        let err = Config::load(Some(file.path()), &overrides).unwrap_err();
        assert!(matches!(err, ConfigError::File { .. }), "{err}");
        assert!(
            err.to_string().contains(&file.path().display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn load_names_a_missing_file() {
        let err = Config::load(
            Some(Path::new("/nonexistent/ringcast.toml")),
            &Overrides::default(),
        )
        .unwrap_err();
        let message = error_report(&err);
        assert!(
            message.starts_with("cannot read config file /nonexistent/ringcast.toml: "),
            "{message}"
        );
    }

    #[test]
    fn cpu_lists_parse_ranges_and_drop_duplicates_in_order() {
        assert_eq!(parse_cpu_list("0,2-3"), Ok(vec![0, 2, 3]));
        assert_eq!(parse_cpu_list("5"), Ok(vec![5]));
        assert_eq!(parse_cpu_list(" 3 , 1-2 ,2"), Ok(vec![3, 1, 2]));
        assert_eq!(parse_cpu_list("4-4"), Ok(vec![4]));
        assert_eq!(parse_cpu_list("0-1023").map(|cpus| cpus.len()), Ok(1024));
    }

    #[test]
    fn cpu_lists_reject_garbage_reversed_and_huge() {
        assert_eq!(parse_cpu_list(""), Err(CpuListError::Empty));
        assert_eq!(parse_cpu_list("a"), Err(CpuListError::NotACpu("a".into())));
        assert_eq!(
            parse_cpu_list("1,,2"),
            Err(CpuListError::NotACpu("".into()))
        );
        assert_eq!(
            parse_cpu_list("-1"),
            Err(CpuListError::NotACpu("-1".into()))
        );
        assert_eq!(
            parse_cpu_list("1-2-3"),
            Err(CpuListError::NotACpu("1-2-3".into()))
        );
        assert_eq!(
            parse_cpu_list("+1"),
            Err(CpuListError::NotACpu("+1".into()))
        );
        assert_eq!(
            parse_cpu_list("3-1"),
            Err(CpuListError::Reversed { low: 1, high: 3 })
        );
        assert_eq!(
            parse_cpu_list("0-4000000000"),
            Err(CpuListError::TooHigh("4000000000".into()))
        );
        assert_eq!(
            parse_cpu_list("1024"),
            Err(CpuListError::TooHigh("1024".into()))
        );
    }

    #[test]
    fn cpu_lists_format_runs_as_ranges() {
        assert_eq!(format_cpu_list(&[0, 1, 2, 5]), "0-2,5");
        assert_eq!(format_cpu_list(&[3]), "3");
        assert_eq!(format_cpu_list(&[]), "");
        assert_eq!(format_cpu_list(&[4, 3]), "4,3");
        assert_eq!(
            parse_cpu_list(&format_cpu_list(&[0, 2, 3, 7])),
            Ok(vec![0, 2, 3, 7])
        );
    }
}
