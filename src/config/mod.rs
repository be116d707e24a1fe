//! Settings: built-in defaults, the TOML file and command-line flags,
//! merged in that order of precedence and validated into one [`Config`].
//!
//! Owns the file format (every key, its section and unit), the allowed
//! range of every value with the reason for it, and the error messages that
//! name the key as written in the file (`stream.gop_cache_bytes_max`), the
//! value and the range. Defaults come from [`crate::limits`].
//!
//! [`Config::to_toml`] writes a config back in the same format
//! (`--print-config`); reading it back gives the same config.
//!
//! Must not look at the machine: whether the listed CPUs exist, ports are
//! free or the file limit suffices is [`crate::startup`]'s to check (the
//! one file read besides the config is the admin token's, which is part of
//! the settings, kept apart only so the secret is not in the config or on
//! the command line). Must not log or exit: callers decide what an error
//! does.
//!
//! ```toml
//! listen = ["0.0.0.0:1935", "[::]:1935"]
//! shards = 4                  # default: one per CPU in `cpus`, or per usable CPU
//! cpus = "0,2-3"              # default: every usable CPU
//! chunk_size = 4096
//! connections_max = 10000
//! connections_per_ip_max = 0  # 0: no cap
//! publishers_max = 0          # server-wide; 0: no cap
//! streams_max = 0             # published and pulled, server-wide; 0: no cap
//! http_listen = ["0.0.0.0:8080"] # HTTP-FLV and WebSocket-FLV players; [] disables it
//! admin = "127.0.0.1:1985"    # admin HTTP API and /metrics; "off" disables it
//! admin_origins = []          # browser pages that may call the admin API; default none
//! # admin_token_file = "/etc/ringcast/admin-token"   # bearer token required on every request
//! metrics_streams_max = 100   # streams with series of their own in /metrics (most players); the rest sum as "_other"
//! drain_ms = 10000            # SIGTERM: publishers and players get this long to move
//! # drain_redirect = "rtmp://edge2.example:1935"  # where publishers are asked to go; default: where they are
//! log_format = "text"         # or "json": one JSON object per line, for log shippers
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
//! [tls]                       # RTMPS, HTTPS-FLV and WSS; rtmps:// relays
//! listen = []                 # RTMPS listeners (--listen-tls), e.g. ["0.0.0.0:1936"]
//! http_listen = []            # HTTPS-FLV and WSS listeners (--http-tls), e.g. ["0.0.0.0:8443"]
//! cert = ""                   # PEM chain, the server's certificate first (--tls-cert)
//! key = ""                    # its private key, PEM (--tls-key)
//! ca_file = ""                # a private CA rtmps:// relays and https:// hooks trust besides the public roots
//! # [[tls.certificates]]      # more certificates, each served to clients naming one of its names (SNI)
//! # cert = "/etc/ringcast/tls/other.pem"
//! # key = "/etc/ringcast/tls/other.key"
//!
//! [http]                      # HTTP-FLV and WebSocket-FLV players
//! allow_origin = "*"          # Access-Control-Allow-Origin on media responses
//! player_page = "/"           # where the player page is served; "off": not served
//! play_wait_ms = 5000         # a stream not live here is waited for this long, then 404
//!
//! [hls]                       # HLS and Low-Latency HLS on the HTTP listeners
//! enabled = true              # every app, unless [app.NAME] hls = false
//! segment_ms = 2000           # a segment ends at the first keyframe after this
//! part_ms = 333               # LL-HLS parts last at most this
//! segments = 6                # segments a playlist lists
//! idle_ms = 30000             # segments are freed this long after the source and the last request
//! blocked_per_ip_max = 1024   # blocked playlist and part requests one address holds per shard
//!
//! [record]                    # recording to files (default for every app)
//! enabled = false             # true: every stream is recorded while it has a source
//! path = "/var/lib/ringcast/{app}/{stream}-{start:%Y%m%dT%H%M%S}.flv"  # {start}: UTC
//! format = "flv"              # or "mp4": fragmented MP4 (CMAF)
//! max_duration_ms = 0         # a file ends at the first keyframe after this; 0: no limit
//! max_bytes = 0               # ... or once it holds this many bytes; 0: no limit
//!
//! [player]
//! queue_bytes_max = 8388608
//! slow_disconnect_ms = 10000
//! write_batch_bytes_max = 262144
//! write_window_ms = 0         # 0: a write per video frame; up to 500
//!
//! [timeouts]
//! handshake_ms = 10000
//! idle_ms = 60000
//! shutdown_ms = 5000
//!
//! [relay]
//! origins = []                # edge mode: "rtmp://host[:port][/app]", rtmps:// over TLS
//! push = []                   # "rtmp[s]://host[:port]/app[/name]", {name}: the published name
//! idle_stop_ms = 5000
//! connect_timeout_ms = 5000
//! backoff_ms_max = 10000
//! pulls_max = 512             # pulls at once, server-wide (idle ones too)
//! pulls_per_connection_max = 8 # pulls one connection started still alive
//! ping_ms = 5000              # a silent relay connection is pinged, then closed
//!
//! [access]                    # who may publish and play (default for every app)
//! publish_keys = []           # one must come as ?key= (stream name, app or tcUrl)
//! play_keys = []
//! publish_allow = []          # CIDR blocks or addresses; empty: all
//! publish_deny = []
//! play_allow = []
//! play_deny = []
//! hook_format = "ringcast"    # or "srs", "nginx": what hooks send and expect
//! on_connect = []             # HTTP hooks: ["http[s]://host:port/path", …]; a string is one
//! on_publish = []             #   all must allow; notices go to all
//! on_play = []
//! on_publish_done = []
//! on_play_done = []
//! on_done = []                # the end of a publish or play, either
//! on_update = []              # each publish and play, every update_interval_ms
//! on_close = []               # a connection's end
//! on_record_done = []         # each recording file once it is complete
//! hook_timeout_ms = 3000
//! hook_fail_open = false      # a failed hook call denies
//! update_interval_ms = 30000
//!
//! # [app.live]                # per app, instead of the global lists
//! # origins = ["rtmp://origin1/live", "rtmp://origin2/live"]
//! # push = []
//! # hls = false               # no HLS for this app
//! # exec_publish = ["thumbnailer", "rtmp://127.0.0.1:{port}/{app}/{name}"]
//! #                           # run while a stream is published here; never a shell
//! # [app.live.access]         # any key of [access] but the hook timing and interval
//! # publish_keys = ["s3cret"]
//! # [app.live.stream]         # any key of [stream]
//! # gop_cache_bytes_max = 0
//! # [app.live.record]         # any key of [record], over [record]
//! # enabled = true
//! ```

// Input from the environment and the operator is handled, never unwrapped
// (tests exempt).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::error::Error;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::limits;
use crate::media::StreamSettings;
use crate::protocol::url::RtmpUrl;
use ringcast_tls::{CertFiles, ClientTls, ServerTls};

mod access;
mod admin;
mod cpus;
mod exec;
mod file;
mod record;
mod validate;

pub use access::{
    AccessConfig, AccessPolicy, HookFormat, HookUrl, HookUrls, Network, Redacted, Rule,
};
pub use admin::AdminToken;
pub use cpus::{CPU_ID_MAX, CpuListError, format_cpu_list, parse_cpu_list};
pub use exec::{ExecCommand, ExecValues};
use file::File;
pub use file::parse_urls;
pub use record::{PathTemplate, RecordConfig, RecordFormat, RecordSettings, sanitised};

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
    pub connections_max: usize,
    /// Connections one IP address may hold at once; 0: no cap.
    pub connections_per_ip_max: usize,
    /// Clients publishing at once, server-wide; 0: no cap.
    pub publishers_max: usize,
    /// Live streams at once (published here or pulled from an origin),
    /// server-wide; 0: no cap.
    pub streams_max: usize,
    pub limits: ProtocolLimits,
    /// Stream settings of apps without an `[app.NAME.stream]` section.
    pub stream: StreamConfig,
    /// Per app: `stream` with the app's own keys laid over it.
    pub app_streams: BTreeMap<String, StreamConfig>,
    pub player: PlayerConfig,
    pub timeouts: Timeouts,
    pub relay: RelayConfig,
    pub access: AccessConfig,
    /// HTTP-FLV and WebSocket-FLV players.
    pub http: HttpConfig,
    /// HLS and LL-HLS, on the HTTP listeners.
    pub hls: HlsConfig,
    /// Recording streams to files, per app.
    pub record: RecordConfig,
    /// Per app, `[app.NAME] exec_publish`: the program run while a stream
    /// of the app is published here.
    pub exec_publish: BTreeMap<String, ExecCommand>,
    /// RTMPS, HTTPS-FLV and WSS listeners and their certificates; the
    /// roots `rtmps://` relays trust.
    pub tls: TlsConfig,
    /// Where the admin HTTP API and `/metrics` listen; `None`: off.
    pub admin: Option<SocketAddr>,
    /// Origins (`https://host[:port]`) whose browser pages may call the
    /// admin API; a request with any other `Origin` is refused.
    pub admin_origins: Vec<String>,
    /// The bearer token every admin request must carry; `None`: no token.
    pub admin_token: Option<AdminToken>,
    /// Streams `/metrics` gives series of their own, those with the most
    /// players; the rest are summed under `stream="_other"`.
    pub metrics_streams_max: usize,
    /// The maintenance drain (SIGTERM, `POST /api/v1/drain`).
    pub drain: DrainConfig,
    /// How log lines are written to stderr.
    pub log_format: LogFormat,
}

/// How log lines are written (`log_format`, `--log-format`); fixed at
/// startup, like the listeners.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One line per event for people, files and journald: time, level,
    /// target, message, then the fields as `name=value`.
    #[default]
    Text,
    /// One JSON object per line for log shippers: `timestamp`, `level`,
    /// `target`, and `fields` (the message among them).
    Json,
}

impl FromStr for LogFormat {
    type Err = serde::de::value::Error;

    /// The names the file takes, so the flag and the file accept the same
    /// values and name the choices alike when one is wrong.
    fn from_str(text: &str) -> Result<LogFormat, Self::Err> {
        use serde::de::IntoDeserializer;
        LogFormat::deserialize(text.into_deserializer())
    }
}

/// How a maintenance drain goes: listeners close, publishers that
/// announced Enhanced RTMP's reconnect capability are asked to move, and
/// the rest is waited for, then closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DrainConfig {
    /// How long publishers and players are waited for before the graceful
    /// shutdown closes those still here.
    pub wait: Duration,
    /// Where publishers are asked to reconnect (`tcUrl` of the request):
    /// with an app, that URL as written; without one, that host with each
    /// publisher's own app (and its `connect` query). `None`: the request
    /// names no URL, so each publisher reconnects to where it is (a server
    /// started beside this one on the same port, `--share-ports`).
    pub redirect: Option<RtmpUrl>,
}

impl Default for DrainConfig {
    fn default() -> Self {
        DrainConfig {
            wait: Duration::from_millis(limits::DRAIN_MS_DEFAULT),
            redirect: None,
        }
    }
}

impl StreamConfig {
    /// What a [`LiveStream`](crate::media::LiveStream) needs of these.
    pub fn live(&self) -> StreamSettings {
        StreamSettings {
            gop_cache_bytes_max: self.gop_cache_bytes_max,
            gop_cache_duration_max: self.gop_cache_duration_max,
            timestamp_correction: self.timestamp_correction,
        }
    }
}

impl Config {
    /// The stream settings of `app`.
    pub fn stream_for(&self, app: &str) -> &StreamConfig {
        self.app_streams.get(app).unwrap_or(&self.stream)
    }

    /// The program `app` runs while one of its streams is published, if
    /// any.
    pub fn exec_for(&self, app: &str) -> Option<&ExecCommand> {
        self.exec_publish.get(app)
    }
}

/// Where the admin API listens unless told otherwise. Why loopback: the
/// API can disconnect clients and needs no token unless one is set, so
/// reaching it from elsewhere must be a decision (an address and
/// `admin_token_file`, a proxy, a firewall).
/// Port 1985, SRS's API port, leaves 8080 to the media listener.
pub const ADMIN_DEFAULT: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 1985));

/// Where HTTP-FLV and WebSocket-FLV players connect unless told
/// otherwise: every address, port 8080, as SRS's HTTP server.
pub const HTTP_DEFAULT: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 8080));

/// Serving players over HTTP: HTTP-FLV and WebSocket-FLV on the shards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpConfig {
    /// Addresses to accept players on; every shard listens on each
    /// (SO_REUSEPORT). Empty: off.
    pub listen: Vec<SocketAddr>,
    /// `Access-Control-Allow-Origin` on media responses: `*`, or one
    /// origin.
    pub allow_origin: String,
    /// The path the player page is served under (`/`, or `/player/`);
    /// `None`: not served.
    pub player_page: Option<String>,
    /// How long a player of a stream not live here waits for it before
    /// `404`.
    pub play_wait: Duration,
}

impl HttpConfig {
    /// What every media response says about who may read it.
    pub fn cors(&self) -> ringcast_web::response::Cors<'_> {
        ringcast_web::response::Cors {
            allow_origin: &self.allow_origin,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: vec![HTTP_DEFAULT],
            allow_origin: "*".into(),
            player_page: Some("/".into()),
            play_wait: Duration::from_millis(limits::HTTP_PLAY_WAIT_MS_DEFAULT),
        }
    }
}

/// HLS and Low-Latency HLS: served on the HTTP (and HTTPS) listeners,
/// packaged once per stream on the shard that owns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HlsConfig {
    /// Apps without an `hls` key of their own are packaged.
    pub enabled: bool,
    /// Per app, `[app.NAME] hls`.
    pub apps: BTreeMap<String, bool>,
    pub segment: Duration,
    pub part: Duration,
    pub segments: usize,
    /// A stream's HLS state is freed this long after its source ended and
    /// its last request.
    pub idle: Duration,
    /// Blocked requests one address may hold on one shard.
    pub blocked_per_ip_max: usize,
}

impl HlsConfig {
    /// Whether streams of `app` are packaged for HLS.
    pub fn enabled_for(&self, app: &str) -> bool {
        self.apps.get(app).copied().unwrap_or(self.enabled)
    }

    /// How streams are cut.
    pub fn settings(&self) -> ringcast_hls::Settings {
        ringcast_hls::Settings {
            segment_ms: u32::try_from(self.segment.as_millis()).unwrap_or(u32::MAX),
            part_ms: u32::try_from(self.part.as_millis()).unwrap_or(u32::MAX),
            segments: self.segments,
            bytes_max: limits::HLS_STREAM_BYTES_MAX,
        }
    }
}

impl Default for HlsConfig {
    fn default() -> Self {
        HlsConfig {
            enabled: true,
            apps: BTreeMap::new(),
            segment: Duration::from_millis(limits::HLS_SEGMENT_MS_DEFAULT),
            part: Duration::from_millis(limits::HLS_PART_MS_DEFAULT),
            segments: limits::HLS_SEGMENTS_DEFAULT,
            idle: Duration::from_millis(limits::HLS_IDLE_MS_DEFAULT),
            blocked_per_ip_max: limits::HLS_BLOCKED_PER_IP_MAX_DEFAULT,
        }
    }
}

/// TLS: the listeners that speak it, the certificates they serve, and
/// what relays trust.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TlsConfig {
    /// RTMPS: every shard listens on each (SO_REUSEPORT). Empty: off.
    pub listen: Vec<SocketAddr>,
    /// HTTPS-FLV and WSS players. Empty: off.
    pub http_listen: Vec<SocketAddr>,
    /// The certificate files, the first served to clients that name
    /// none of the others' names.
    pub certificates: Vec<CertFiles>,
    /// `certificates`, loaded and checked; `None` when there are none.
    pub server: Option<ServerTls>,
    /// A private CA's certificates, trusted by `rtmps://` relays and
    /// `https://` hooks besides the public roots.
    pub relay_ca: Option<ClientTls>,
}

impl TlsConfig {
    /// Logs each certificate served, with its names and expiry, so an
    /// operator sees what a start or a reload put in force.
    pub fn log_certificates(&self) {
        let identities = self.server.as_ref().map(ServerTls::identities);
        for identity in identities.unwrap_or_default() {
            tracing::info!(
                cert = %identity.files.cert.display(),
                names = ?identity.names,
                not_after = %identity.not_after,
                "TLS certificate"
            );
        }
    }

    /// Loads the certificate files, checked against the clock now.
    fn load_certificates(&mut self) -> Result<(), Invalid> {
        if self.certificates.is_empty() {
            self.server = None;
            return Ok(());
        }
        let loaded = ServerTls::load(&self.certificates, std::time::SystemTime::now());
        self.server = Some(loaded.map_err(|error| cert_invalid(&self.certificates, error))?);
        Ok(())
    }

    /// Reads the relays' private CA file.
    fn load_relay_ca(&mut self, file: &Path) -> Result<(), Invalid> {
        let loaded = ClientTls::load(Some(file)).map_err(|error| Invalid {
            key: "tls.ca_file".into(),
            value: format!("{:?}", file.display().to_string()),
            rule: format!("{}; {}", error.problem, error.fix),
        })?;
        self.relay_ca = Some(loaded);
        Ok(())
    }
}

/// A certificate that would not load, named by its key in the file.
fn cert_invalid(files: &[CertFiles], error: ringcast_tls::CertError) -> Invalid {
    let is_key = files.iter().any(|f| f.key == error.file);
    Invalid {
        key: if is_key { "tls.key" } else { "tls.cert" }.into(),
        value: format!("{:?}", error.file.display().to_string()),
        rule: format!("{}; {}", error.problem, error.fix),
    }
}

/// An `--http` value: an address, or `off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpAddr(pub Option<SocketAddr>);

impl FromStr for HttpAddr {
    type Err = String;

    fn from_str(text: &str) -> Result<HttpAddr, String> {
        text.parse::<AdminAddr>().map(|addr| HttpAddr(addr.0))
    }
}

/// An `--admin` or `admin =` value: an address, or `off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdminAddr(pub Option<SocketAddr>);

impl FromStr for AdminAddr {
    type Err = String;

    fn from_str(text: &str) -> Result<AdminAddr, String> {
        if text.trim() == "off" {
            return Ok(AdminAddr(None));
        }
        text.trim()
            .parse()
            .map(|addr| AdminAddr(Some(addr)))
            .map_err(|_| {
                format!("{text:?} is not an address like 127.0.0.1:8080 or [::1]:8080, nor \"off\"")
            })
    }
}

impl std::fmt::Display for AdminAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(addr) => addr.fmt(f),
            None => f.write_str("off"),
        }
    }
}

/// Pulling streams from origins (edge mode) and pushing published streams
/// to other servers.
#[derive(Clone, Debug, PartialEq)]
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
    /// Pulls at once, server-wide, idle ones included.
    pub pulls_max: usize,
    /// Pulls one connection started that are still alive (idle included).
    pub pulls_per_connection_max: usize,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            origins: Vec::new(),
            push: Vec::new(),
            apps: BTreeMap::new(),
            timing: RelayTiming::default(),
            pulls_max: limits::RELAY_PULLS_MAX_DEFAULT,
            pulls_per_connection_max: limits::RELAY_PULLS_PER_CONNECTION_MAX_DEFAULT,
        }
    }
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
    /// A relay connection silent this long is pinged; silent as long
    /// again, it is closed.
    pub ping: Duration,
}

impl Default for RelayTiming {
    fn default() -> Self {
        RelayTiming {
            idle_stop: Duration::from_millis(limits::RELAY_IDLE_STOP_MS_DEFAULT),
            connect_timeout: Duration::from_millis(limits::RELAY_CONNECT_TIMEOUT_MS_DEFAULT),
            backoff_max: Duration::from_millis(limits::RELAY_BACKOFF_MS_MAX_DEFAULT),
            ping: Duration::from_millis(limits::RELAY_PING_MS_DEFAULT),
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
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
    /// 0: each player gets one write per video frame, audio riding with
    /// it; more gathers everything queued within this into one write
    /// (latency traded for capacity; see `media::Pacing`).
    pub write_window: Duration,
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
            connections_max: limits::CONNECTIONS_MAX_DEFAULT,
            connections_per_ip_max: 0,
            publishers_max: 0,
            streams_max: 0,
            limits: ProtocolLimits::default(),
            stream: StreamConfig::default(),
            app_streams: BTreeMap::new(),
            player: PlayerConfig::default(),
            timeouts: Timeouts::default(),
            relay: RelayConfig::default(),
            access: AccessConfig::default(),
            http: HttpConfig::default(),
            hls: HlsConfig::default(),
            record: RecordConfig::default(),
            exec_publish: BTreeMap::new(),
            tls: TlsConfig::default(),
            admin: Some(ADMIN_DEFAULT),
            admin_origins: Vec::new(),
            admin_token: None,
            metrics_streams_max: limits::METRICS_STREAMS_DEFAULT,
            drain: DrainConfig::default(),
            log_format: LogFormat::Text,
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
            write_window: Duration::ZERO,
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
    /// `--http ADDR` (repeated) or `--http off`: replaces `http_listen`.
    pub http: Vec<HttpAddr>,
    /// `--admin ADDR` or `--admin off`.
    pub admin: Option<AdminAddr>,
    /// `--admin-token-file FILE`: read like the file's `admin_token_file`.
    pub admin_token_file: Option<PathBuf>,
    /// `--listen-tls ADDR` (repeated): replaces `tls.listen`.
    pub listen_tls: Vec<SocketAddr>,
    /// `--http-tls ADDR` (repeated): replaces `tls.http_listen`.
    pub http_tls: Vec<SocketAddr>,
    /// `--tls-cert FILE --tls-key FILE`: replace the file's first
    /// certificate.
    pub tls_cert: Option<CertFiles>,
    /// `--log-format text|json`.
    pub log_format: Option<LogFormat>,
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
        if let Some(file) = &overrides.admin_token_file {
            let token = AdminToken::read(file).map_err(|invalid| ConfigError::Flag {
                flag: "--admin-token-file",
                invalid,
            })?;
            config.admin_token = Some(token);
        }
        if let Some(files) = &overrides.tls_cert {
            match config.tls.certificates.first_mut() {
                Some(first) => *first = files.clone(),
                None => config.tls.certificates.push(files.clone()),
            }
            (config.tls.load_certificates()).map_err(|invalid| ConfigError::Flag {
                flag: "--tls-cert/--tls-key",
                invalid,
            })?;
        }
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

    /// This config as a file that `--config` reads back to the same
    /// config: every key, defaults included, so an operator sees what
    /// runs. `shards` and `cpus` are left out when automatic.
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(&File::from_config(self))
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
        if !overrides.http.is_empty() {
            // `off` anywhere turns the listener off.
            self.http.listen = (overrides.http.iter().map(|addr| addr.0))
                .collect::<Option<Vec<_>>>()
                .unwrap_or_default();
        }
        if let Some(AdminAddr(admin)) = overrides.admin {
            self.admin = admin;
        }
        if !overrides.listen_tls.is_empty() {
            self.tls.listen.clone_from(&overrides.listen_tls);
        }
        if !overrides.http_tls.is_empty() {
            self.tls.http_listen.clone_from(&overrides.http_tls);
        }
        if let Some(format) = overrides.log_format {
            self.log_format = format;
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
        "admin" => "--admin",
        "http_listen" => "--http",
        "tls.listen" => "--listen-tls",
        "tls.http_listen" => "--http-tls",
        "tls.cert" | "tls.key" => "--tls-cert/--tls-key",
        _ => "command-line flags",
    }
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

impl Invalid {
    /// As found in `[app.NAME.…]`: the key gets the app's prefix.
    fn in_app(self, app: &str) -> Invalid {
        Invalid {
            key: format!("app.{app}.{}", self.key).into(),
            ..self
        }
    }
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

/// The message after `error: `: the error and each of its sources, joined
/// by `: ` (the messages do not repeat their sources). For a
/// [`ConfigError`] and any other error the binary or the admin API reports.
pub fn error_report(err: &dyn Error) -> String {
    let mut report = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        report.push_str(": ");
        report.push_str(&cause.to_string());
        source = cause.source();
    }
    report
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
mod tests;
