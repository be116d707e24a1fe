//! The command line: `ringcast <command> [flags]`, parsed with clap.
//!
//! Owns the subcommands (`serve`, `check-config`, `doctor`, `bench`,
//! `bench-floor`), their flags and `--help` (each flag with its default),
//! and turns flags into [`Overrides`] of the config file. The settings
//! flags ([`SettingsArgs`]) are flattened into every command that builds a
//! [`Config`], so `doctor` judges the machine against what `serve` would
//! run with.
//!
//! Must not validate values (that is [`crate::config`], so a value is
//! judged the same from a flag or the file), touch the machine beyond
//! reading the CPU affinity for `--help`, or print and exit on its own.

// Input from the environment and the operator is handled, never unwrapped
// (tests exempt).

use std::net::SocketAddr;
use std::path::PathBuf;

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::config::{
    self, AdminAddr, Config, ConfigError, CpuListError, HttpAddr, LogFormat, Overrides,
};
use crate::limits;
use crate::media::WRITE_WINDOW_MS_MAX;
use crate::protocol::url::{RtmpUrl, UrlError};
use ringcast_bench::BenchConfig;
use ringcast_bench::floor::FloorConfig;
use ringcast_bench::source::Shape;
use ringcast_bench::trust::Trust;

/// Exit status when the configuration is invalid (flags or file), like
/// clap's own usage errors.
pub const EXIT_CONFIG: u8 = 2;

/// Exit status when the server cannot start or fails while running.
pub const EXIT_FAILURE: u8 = 1;

/// ringcast: a live-video RTMP edge server, shard per core on io_uring.
#[derive(Debug, Parser)]
#[command(name = "ringcast", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Accept RTMP publishers and players until SIGINT or SIGTERM.
    #[command(after_help = SERVE_AFTER_HELP)]
    Serve(ServeArgs),
    /// Validate a config file without starting: prints "FILE: ok", or the
    /// error naming the key (exit status 2).
    CheckConfig(CheckConfigArgs),
    /// Check this machine against the tuning runbook (io_uring, file
    /// limits, sysctls, CPUs vs shards) and print each finding with its
    /// fix; exit status 1 if any would stop or break `serve`.
    #[command(after_help = DOCTOR_AFTER_HELP)]
    Doctor(DoctorArgs),
    /// Load-test any RTMP, HTTP-FLV, WebSocket-FLV or LL-HLS server:
    /// publishers and players, latency, time to first frame, lost frames,
    /// stalls, throughput.
    #[command(after_help = BENCH_AFTER_HELP)]
    Bench(BenchArgs),
    /// The cost floor for comparisons: serve the bench stream to players
    /// with a plain writev loop (see benches/compare).
    BenchFloor(FloorArgs),
}

const BENCH_AFTER_HELP: &str = "\
Publishers send real H.264 + AAC (a bundled 640x360 sample padded to the
bitrate, AAC on its own --audio-rate clock) stamped with the wall clock in
an SEI NAL unit; players measure the latency of every video frame from it,
and of every audio frame from the video frames' stamps. With
--publishers > 1 the streams are STREAM-0, STREAM-1, ... and players are
spread over them. Prints a summary to stdout and a progress line to stderr
every second.

Players play over RTMP (rtmp://), HTTP-FLV (http://HOST:PORT/APP/STREAM.flv),
WebSocket-FLV (ws://HOST:PORT/APP/STREAM.flv) or Low-Latency HLS
(http://HOST:PORT/APP/STREAM.m3u8: blocking playlist reloads and parts over
one keep-alive connection, as hls.js does; the report counts its requests),
or the same over TLS (rtmps://, https://, wss://; port 443 unless named),
each player making a full handshake that verifies the server's certificate
against the public roots (--tls-ca adds a private CA; --tls-insecure skips
the check, for benchmarking only). Publishers always publish over plain
RTMP, to --publish-url, by default the --url if it is rtmp://, else the
same host, app and stream on port 1935.";

/// Flags of `ringcast bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    // Help as a string, not a doc comment: rustdoc would read the
    // brackets of the URL syntax as links.
    #[arg(
        long,
        value_name = "URL",
        help = "The stream players play: rtmp://HOST[:PORT]/APP/STREAM, \
                http://HOST[:PORT]/APP/STREAM.flv, ws://HOST[:PORT]/APP/STREAM.flv or \
                http://HOST[:PORT]/APP/STREAM.m3u8 (LL-HLS), \
                or the same over TLS: rtmps://, https://, wss:// (port 443 unless named)."
    )]
    pub url: String,
    #[arg(
        long,
        value_name = "URL",
        help = "Where publishers publish, over plain RTMP: rtmp://HOST[:PORT]/APP/STREAM \
                [default: --url if rtmp://, else its host, app and stream on port 1935]."
    )]
    pub publish_url: Option<String>,
    /// Players over TLS also trust the CA certificates in FILE (PEM), as
    /// for a test server's private CA [default: the public roots only].
    #[arg(long, value_name = "FILE", conflicts_with = "tls_insecure")]
    pub tls_ca: Option<PathBuf>,
    /// Players over TLS accept any certificate (the server must still
    /// hold its key): for benchmarking only, never to carry real streams;
    /// a warning says so on stderr.
    #[arg(long)]
    pub tls_insecure: bool,
    /// Players to run.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub players: usize,
    /// Publishers to start; 0 plays a stream someone else publishes.
    #[arg(long, value_name = "P", default_value_t = 1)]
    pub publishers: usize,
    /// How long players play, from the first one's start.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    pub duration_s: f64,
    /// Players start evenly over this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 0.0)]
    pub ramp_s: f64,
    /// Players leaving and joining per second once ramped up.
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    pub churn_per_s: f64,
    /// Bitrate of the synthetic stream.
    #[arg(long, value_name = "KBPS", default_value_t = 2500)]
    pub bitrate_kbps: u32,
    /// Video frames per second.
    #[arg(long, value_name = "FPS", default_value_t = 30.0)]
    pub fps: f64,
    /// Seconds between keyframes.
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0)]
    pub gop_s: f64,
    /// Audio sample rate of the synthetic stream: one AAC frame per 1024
    /// samples, on its own clock beside the video (44100 or 48000 as
    /// encoders send; 8000..=96000).
    #[arg(long, value_name = "HZ", default_value_t = 44_100)]
    pub audio_rate: u32,
    /// Publish this FLV file, looped, instead of the synthetic stream.
    #[arg(long, value_name = "FILE")]
    pub flv: Option<PathBuf>,
    /// Worker threads running players (publishers run on the first).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub threads: usize,
    /// CPUs to pin worker threads to, like 1 or 2-3.
    #[arg(long, value_name = "LIST", value_parser = parse_cpus_flag)]
    pub cpus: Option<CpuList>,
    /// Seconds publishers run before the first player starts.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    pub warmup_s: f64,
    /// A server process to measure: CPU seconds (all threads), CPU per
    /// delivered GB, peak RSS.
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,
    /// Publishers disconnect and publish again every this many seconds
    /// (encoders restarting).
    #[arg(long, value_name = "SECONDS")]
    pub publisher_reconnect_s: Option<f64>,
    /// Write the results as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Draw latency percentiles and throughput over time as SVG.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// No progress line.
    #[arg(long)]
    pub quiet: bool,
}

/// Flags of `ringcast bench-floor`.
#[derive(Debug, Args)]
pub struct FloorArgs {
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:1935")]
    pub listen: SocketAddr,
    #[arg(long, value_name = "KBPS", default_value_t = 2500)]
    pub bitrate_kbps: u32,
    #[arg(long, value_name = "FPS", default_value_t = 30.0)]
    pub fps: f64,
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0)]
    pub gop_s: f64,
    /// Audio sample rate: one AAC frame per 1024 samples (8000..=96000).
    #[arg(long, value_name = "HZ", default_value_t = 44_100)]
    pub audio_rate: u32,
    /// Serve this FLV file, looped, instead of the synthetic stream (the
    /// file `ringcast bench --flv` publishes).
    #[arg(long, value_name = "FILE")]
    pub flv: Option<PathBuf>,
    /// Write each player's backlog once every this many ms instead of at
    /// each video frame: the ideal for the server's
    /// `player.write_window_ms` (0..=500; 0: at each video frame).
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub write_window_ms: u64,
}

impl BenchArgs {
    /// The bench to run, with every value checked against its range.
    pub fn to_config(&self) -> Result<BenchConfig, String> {
        let positive = |flag: &str, v: f64, max: f64| {
            if v.is_finite() && v > 0.0 && v <= max {
                Ok(v)
            } else {
                Err(format!("{flag} {v} is out of range (0, {max}]"))
            }
        };
        let non_negative = |flag: &str, v: f64| {
            if v.is_finite() && (0.0..=86_400.0).contains(&v) {
                Ok(v)
            } else {
                Err(format!("{flag} {v} is out of range 0..=86400"))
            }
        };
        if self.players > 1_000_000
            || self.publishers > 10_000
            || !(1..=256).contains(&self.threads)
        {
            return Err(
                "--players at most 1000000, --publishers at most 10000, --threads 1..=256".into(),
            );
        }
        let trust = match (&self.tls_ca, self.tls_insecure) {
            (_, true) => Trust::Insecure,
            (Some(ca), false) => Trust::Ca(ca.clone()),
            (None, false) => Trust::PublicRoots,
        };
        Ok(BenchConfig {
            url: self.url.clone(),
            publish_url: self.publish_url.clone(),
            trust,
            players: self.players,
            publishers: self.publishers,
            duration: Duration::from_secs_f64(positive("--duration-s", self.duration_s, 86_400.0)?),
            ramp: Duration::from_secs_f64(non_negative("--ramp-s", self.ramp_s)?),
            churn_per_s: non_negative("--churn-per-s", self.churn_per_s)?,
            shape: self.shape()?,
            flv: self.flv.clone(),
            threads: self.threads,
            cpus: self.cpus.as_ref().map(|c| c.0.clone()),
            warmup: Duration::from_secs_f64(non_negative("--warmup-s", self.warmup_s)?),
            server_pid: self.server_pid,
            publisher_reconnect: self
                .publisher_reconnect_s
                .map(|s| positive("--publisher-reconnect-s", s, 86_400.0))
                .transpose()?
                .map(Duration::from_secs_f64),
            progress: !self.quiet,
        })
    }

    fn shape(&self) -> Result<Shape, String> {
        shape(self.bitrate_kbps, self.fps, self.gop_s, self.audio_rate)
    }
}

impl FloorArgs {
    /// The floor to run, with every value checked against its range.
    pub fn to_config(&self) -> Result<FloorConfig, String> {
        // The server's own bound for `player.write_window_ms`.
        if self.write_window_ms > WRITE_WINDOW_MS_MAX {
            return Err(format!(
                "--write-window-ms {} is out of range 0..={WRITE_WINDOW_MS_MAX}",
                self.write_window_ms
            ));
        }
        Ok(FloorConfig {
            listen: self.listen,
            shape: shape(self.bitrate_kbps, self.fps, self.gop_s, self.audio_rate)?,
            flv: self.flv.clone(),
            write_window: Duration::from_millis(self.write_window_ms),
        })
    }
}

fn shape(bitrate_kbps: u32, fps: f64, gop_s: f64, audio_rate: u32) -> Result<Shape, String> {
    if !(1..=1_000_000).contains(&bitrate_kbps) {
        return Err(format!(
            "--bitrate-kbps {bitrate_kbps} is out of range 1..=1000000"
        ));
    }
    if !(fps.is_finite() && fps > 0.0 && fps <= 1000.0) {
        return Err(format!("--fps {fps} is out of range (0, 1000]"));
    }
    if !(gop_s.is_finite() && gop_s > 0.0 && gop_s <= 600.0) {
        return Err(format!("--gop-s {gop_s} is out of range (0, 600]"));
    }
    // From telephone-band AAC to the highest rate AAC encoders offer.
    if !(8_000..=96_000).contains(&audio_rate) {
        return Err(format!(
            "--audio-rate {audio_rate} is out of range 8000..=96000"
        ));
    }
    Ok(Shape {
        bitrate_kbps,
        fps,
        gop_s,
        audio_rate,
    })
}

const SERVE_AFTER_HELP: &str = "\
Everything else (protocol limits, GOP cache, player queues, timeouts, publisher
takeover, drain) is set in the --config file. Precedence: built-in defaults <
--config file < flags. Out-of-range values stop startup naming the key and the
range. Logging: RUST_LOG (default: info), to stderr from a writer thread, as
text or JSON lines (--log-format); lines a peer causes are rate-limited per
connection and per shard, with summaries, and control characters in the
values they carry are escaped.

Signals: SIGHUP reloads the configuration. SIGINT shuts down at once (players
told, connections closed within timeouts.shutdown_ms). SIGTERM (or POST
/api/v1/drain) drains first: the RTMP and HTTP listeners close, publishers
whose connect announced Enhanced RTMP's reconnect capability (capsEx) are sent
NetConnection.Connect.ReconnectRequest, and publishers and players get
drain_ms (default 10000, at most 600000) to leave; players whose publisher
left are let go at once. Then the rest is closed and the process exits 0. A
second SIGTERM ends the drain at once. drain_redirect = \"rtmp://host[:port][/app]\"
names where publishers go (without an app: each keeps its own); unset, they
reconnect to where they are: to upgrade in place, start the new ringcast on
the same ports with --share-ports, then SIGTERM the old one.";

/// Flags of `ringcast serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub settings: SettingsArgs,

    /// Print the effective configuration (defaults < --config file <
    /// flags) as TOML that --config reads, and exit
    #[arg(long)]
    pub print_config: bool,

    /// Listen on the RTMP, HTTP and TLS ports even if a ringcast already listens
    /// there (SO_REUSEPORT): an upgrade in place, new connections shared
    /// until the old one is drained with SIGTERM. Without it, a taken port
    /// stops startup
    #[arg(long)]
    pub share_ports: bool,
}

/// Flags of `ringcast check-config`.
#[derive(Debug, Args)]
pub struct CheckConfigArgs {
    /// The TOML file to check.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

const DOCTOR_AFTER_HELP: &str = "\
Reads the same flags and --config file as serve, so the checks use the
shard count and connection cap serve would run with. Each line is ok, warn
or fail, with the fix; tuning/README.md explains each setting.";

/// Flags of `ringcast doctor`: those of `serve` that shape what the
/// machine must provide.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub settings: SettingsArgs,
}

/// Flags that build a [`Config`]: the file and the values that override
/// it. Options stay `None` when not given, so the file's value stands;
/// `--help` shows the default each falls back to.
#[derive(Clone, Debug, Args)]
pub struct SettingsArgs {
    #[arg(long, value_name = "FILE", help = config_help())]
    pub config: Option<PathBuf>,

    #[arg(long, value_name = "ADDR", help = listen_help())]
    pub listen: Vec<SocketAddr>,

    #[arg(long, value_name = "N", help = shards_help())]
    pub shards: Option<usize>,

    #[arg(long, value_name = "LIST", value_parser = parse_cpus_flag, help = cpus_help())]
    pub cpus: Option<CpuList>,

    #[arg(long, value_name = "N", help = chunk_size_help())]
    pub chunk_size: Option<u32>,

    #[arg(
        long = "origin",
        value_name = "URL",
        value_parser = parse_url_flag,
        help = "Edge mode: pull streams nobody publishes here from this origin, \
                rtmp://HOST[:PORT][/APP] (with APP: for that app only), or rtmps:// \
                over TLS (port 443 by default; the certificate is verified against \
                the public roots and [tls] ca_file); repeat for failover, chosen per \
                stream by consistent hashing [default: none]"
    )]
    pub origins: Vec<RtmpUrl>,

    #[arg(
        long = "push",
        value_name = "URL",
        value_parser = parse_url_flag,
        help = "Push every stream published here to rtmp://HOST[:PORT][/APP[/NAME]] \
                (`{name}` in NAME is the published name), or rtmps:// over TLS, \
                verified like --origin; repeat for several [default: none]"
    )]
    pub push: Vec<RtmpUrl>,

    #[arg(long, value_name = "ADDR|off", help = http_help())]
    pub http: Vec<HttpAddr>,

    #[arg(long, value_name = "ADDR|off", help = admin_help())]
    pub admin: Option<AdminAddr>,

    /// A file holding the bearer token every admin API request (and
    /// /metrics scrape) must send as `Authorization: Bearer TOKEN`; read at
    /// startup and on every reload, kept off the command line so it does
    /// not show in `ps` [default: none, no token]
    #[arg(long, value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,

    /// Accept RTMPS (RTMP over TLS) publishers and players on this
    /// address, conventionally port 443 or 1936; repeat for several; needs
    /// a certificate (--tls-cert and --tls-key, or `[tls]` in the file)
    /// [default: none]
    #[arg(long, value_name = "ADDR")]
    pub listen_tls: Vec<SocketAddr>,

    /// Serve HTTPS-FLV and WSS (WebSocket-FLV over TLS) players on this
    /// address, e.g. 0.0.0.0:8443; repeat for several; needs a certificate
    /// [default: none]
    #[arg(long, value_name = "ADDR")]
    pub http_tls: Vec<SocketAddr>,

    /// The TLS certificate chain (PEM, the server's certificate first);
    /// replaces the file's tls.cert. Reread on every reload [default: none]
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM) [default: none]
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// How log lines are written to stderr: `text` (for people, files and
    /// journald; colour only on a terminal) or `json` (one object per line
    /// for log shippers); fixed until a restart [default: text]
    #[arg(long, value_name = "text|json")]
    pub log_format: Option<LogFormat>,
}

/// A parsed `--cpus` value (a newtype, so clap takes one `0,2-3` rather
/// than one CPU per occurrence).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuList(pub Vec<usize>);

impl SettingsArgs {
    /// The flags that were given, as overrides of the file.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            listen: self.listen.clone(),
            shards: self.shards,
            cpus: self.cpus.as_ref().map(|list| list.0.clone()),
            chunk_size: self.chunk_size,
            origins: self.origins.clone(),
            push: self.push.clone(),
            http: self.http.clone(),
            admin: self.admin,
            admin_token_file: self.admin_token_file.clone(),
            listen_tls: self.listen_tls.clone(),
            http_tls: self.http_tls.clone(),
            tls_cert: (self.tls_cert.clone())
                .zip(self.tls_key.clone())
                .map(|(cert, key)| ringcast_tls::CertFiles { cert, key }),
            log_format: self.log_format,
        }
    }

    /// Defaults < `--config` file < flags, validated.
    pub fn load(&self) -> Result<Config, ConfigError> {
        Config::load(self.config.as_deref(), &self.overrides())
    }
}

fn parse_url_flag(text: &str) -> Result<RtmpUrl, UrlError> {
    RtmpUrl::parse(text)
}

fn parse_cpus_flag(text: &str) -> Result<CpuList, CpuListError> {
    config::parse_cpu_list(text).map(CpuList)
}

// `--help` texts, built at run time to show the actual defaults: the
// constants from `limits` and, for shards and CPUs, this machine's CPUs.

fn config_help() -> String {
    "TOML file with every other setting: protocol limits, GOP cache, player queues, timeouts, \
     publisher takeover; the flags below override it [default: none, built-in defaults]"
        .to_string()
}

fn listen_help() -> String {
    let default = Config::default().listen;
    let default: Vec<String> = default.iter().map(ToString::to_string).collect();
    format!(
        "Address to accept RTMP on, IPv4 or [IPv6]:port; repeat for several. Every shard listens \
         on each [default: {}]",
        default.join(", ")
    )
}

fn shards_help() -> String {
    let here =
        crate::startup::usable_cpus().map_or_else(|| "unknown".into(), |c| c.len().to_string());
    format!(
        "Number of shards (threads, each with its own io_uring and connections) [default: one \
         per CPU in --cpus, else one per usable CPU: {here} here]"
    )
}

fn cpus_help() -> String {
    let here = crate::startup::usable_cpus()
        .map_or_else(|| "unknown".into(), |cpus| config::format_cpu_list(&cpus));
    format!(
        "CPUs to pin shards to, in order, like 0,2-3 (ranges inclusive); more shards than CPUs \
         share them round-robin [default: every usable CPU: {here} here]"
    )
}

fn http_help() -> String {
    format!(
        "Address to serve HTTP-FLV and WebSocket-FLV players (and the player page) on, or \
         `off`; repeat for several. Every shard listens on each [default: {}]",
        config::HTTP_DEFAULT
    )
}

fn admin_help() -> String {
    format!(
        "Where the admin HTTP API (/api/v1/...) and Prometheus /metrics listen, or `off` \
         [default: {}]",
        config::ADMIN_DEFAULT
    )
}

fn chunk_size_help() -> String {
    format!(
        "Chunk size the server sends with, announced to each client after connect; larger \
         means fewer headers [default: {}]",
        limits::CHUNK_SIZE_OUT_DEFAULT
    )
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;
    use crate::config::test_support::TempFile;

    fn serve(args: &[&str]) -> Result<SettingsArgs, clap::Error> {
        let argv = ["ringcast", "serve"].iter().chain(args);
        match Cli::try_parse_from(argv)?.command {
            Command::Serve(serve) => Ok(serve.settings),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn a_bad_origin_url_is_a_usage_error_naming_the_flag() {
        let err = serve(&["--origin", "http://o1/live"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--origin"), "{err}");
        assert!(err.contains("rtmp:// or rtmps://"), "{err}");
        let err = serve(&["--push", "rtmpt://o1/live"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--push"), "{err}");
        assert!(err.contains("rtmp:// or rtmps://"), "{err}");
    }

    #[test]
    fn rtmps_origins_and_push_targets_are_taken_and_default_to_443() {
        let settings = serve(&[
            "--origin",
            "rtmps://origin.example.com/live",
            "--push",
            "rtmps://localhost:1937/live/{name}",
        ])
        .unwrap();
        let overrides = settings.overrides();
        let origin = &overrides.origins[0];
        assert_eq!(
            (origin.tls, origin.host.as_str(), origin.port),
            (true, "origin.example.com", 443)
        );
        let push = &overrides.push[0];
        assert_eq!((push.tls, push.port), (true, 1937));
        let config = settings.load().unwrap();
        assert!(config.relay.push_for("live")[0].tls);
    }

    #[test]
    fn the_command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_without_flags_overrides_nothing() {
        let settings = serve(&[]).unwrap();
        assert_eq!(settings.overrides(), Overrides::default());
        assert_eq!(settings.load().unwrap(), Config::default());
    }

    #[test]
    fn every_flag_is_parsed() {
        let settings = serve(&[
            "--listen",
            "127.0.0.1:1936",
            "--listen",
            "[::]:1936",
            "--shards",
            "3",
            "--cpus",
            "0,2-3",
            "--chunk-size",
            "8192",
            "--config",
            "ringcast.toml",
            "--origin",
            "rtmp://o1:1936/live",
            "--origin",
            "rtmp://o2",
            "--push",
            "rtmp://backup/live/{name}",
            "--http",
            "127.0.0.1:8081",
            "--admin",
            "off",
            "--admin-token-file",
            "/etc/ringcast/admin-token",
            "--listen-tls",
            "127.0.0.1:1937",
            "--http-tls",
            "127.0.0.1:8443",
            "--tls-cert",
            "/etc/ringcast/tls/edge.pem",
            "--tls-key",
            "/etc/ringcast/tls/edge.key",
            "--log-format",
            "json",
        ])
        .unwrap();
        let expected = Overrides {
            listen: vec![
                "127.0.0.1:1936".parse().unwrap(),
                "[::]:1936".parse().unwrap(),
            ],
            shards: Some(3),
            cpus: Some(vec![0, 2, 3]),
            chunk_size: Some(8192),
            origins: vec![
                RtmpUrl::parse("rtmp://o1:1936/live").unwrap(),
                RtmpUrl::parse("rtmp://o2").unwrap(),
            ],
            push: vec![RtmpUrl::parse("rtmp://backup/live/{name}").unwrap()],
            http: vec![HttpAddr(Some("127.0.0.1:8081".parse().unwrap()))],
            admin: Some(AdminAddr(None)),
            admin_token_file: Some(PathBuf::from("/etc/ringcast/admin-token")),
            listen_tls: vec!["127.0.0.1:1937".parse().unwrap()],
            http_tls: vec!["127.0.0.1:8443".parse().unwrap()],
            tls_cert: Some(ringcast_tls::CertFiles {
                cert: "/etc/ringcast/tls/edge.pem".into(),
                key: "/etc/ringcast/tls/edge.key".into(),
            }),
            log_format: Some(LogFormat::Json),
        };
        assert_eq!(settings.overrides(), expected);
        assert_eq!(settings.config, Some(PathBuf::from("ringcast.toml")));
    }

    #[test]
    fn flags_take_precedence_over_the_file() {
        let file = TempFile::new("chunk_size = 8192\nshards = 2\ncpus = \"0\"\n");
        let path = file.path().to_str().expect("utf-8 temp path");
        let config = serve(&["--config", path, "--chunk-size", "1024", "--cpus", "1"])
            .unwrap()
            .load()
            .unwrap();
        assert_eq!(config.chunk_size, 1024, "flag beats file");
        assert_eq!(config.cpus, Some(vec![1]), "flag beats file");
        assert_eq!(config.shards, Some(2), "file value without a flag stays");
    }

    #[test]
    fn admin_takes_an_address_or_off() {
        let config = serve(&["--admin", "127.0.0.1:0"]).unwrap().load().unwrap();
        assert_eq!(config.admin, Some("127.0.0.1:0".parse().unwrap()));
        let config = serve(&["--admin", "off"]).unwrap().load().unwrap();
        assert_eq!(config.admin, None);
        let message = serve(&["--admin", "localhost"]).unwrap_err().to_string();
        assert!(message.contains("--admin <ADDR|off>"), "{message}");
        assert!(message.contains("nor \"off\""), "{message}");
        let err = serve(&["--admin", "0.0.0.0:1935"])
            .unwrap()
            .load()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid --admin: admin = \"0.0.0.0:1935\" uses the port of listen address \
             0.0.0.0:1935; give the admin API a port of its own"
        );
    }

    #[test]
    fn serve_shares_ports_when_asked_and_its_help_tells_the_drain() {
        let parsed = |argv: &[&str]| match Cli::try_parse_from(argv).unwrap().command {
            Command::Serve(args) => args.share_ports,
            other => panic!("parsed as {other:?}"),
        };
        assert!(parsed(&["ringcast", "serve", "--share-ports"]));
        assert!(!parsed(&["ringcast", "serve"]));
        let mut command = Cli::command();
        let help = command
            .find_subcommand_mut("serve")
            .expect("serve exists")
            .render_help()
            .to_string();
        for text in [
            "--share-ports",
            "SIGTERM",
            "drain_ms",
            "drain_redirect",
            "ReconnectRequest",
        ] {
            assert!(help.contains(text), "{text} in\n{help}");
        }
    }

    #[test]
    fn print_config_check_config_and_doctor_parse() {
        let argv = ["ringcast", "serve", "--print-config", "--shards", "2"];
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Serve(args) => {
                assert!(args.print_config);
                assert_eq!(args.settings.shards, Some(2));
            }
            other => panic!("parsed as {other:?}"),
        }
        match Cli::try_parse_from(["ringcast", "check-config", "x.toml"])
            .unwrap()
            .command
        {
            Command::CheckConfig(args) => assert_eq!(args.file, PathBuf::from("x.toml")),
            other => panic!("parsed as {other:?}"),
        }
        match Cli::try_parse_from(["ringcast", "doctor", "--shards", "3"])
            .unwrap()
            .command
        {
            Command::Doctor(args) => assert_eq!(args.settings.shards, Some(3)),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn bench_tls_flags_choose_whose_certificates_players_trust() {
        let trust = |flags: &[&str]| {
            let argv = ["ringcast", "bench", "--url", "rtmps://h/live/cam"];
            match Cli::try_parse_from(argv.iter().chain(flags))?.command {
                Command::Bench(args) => Ok(args.to_config().unwrap().trust),
                other => panic!("parsed as {other:?}"),
            }
        };
        assert_eq!(trust(&[]).unwrap(), Trust::PublicRoots);
        assert_eq!(
            trust(&["--tls-ca", "ca.pem"]).unwrap(),
            Trust::Ca(PathBuf::from("ca.pem"))
        );
        assert_eq!(trust(&["--tls-insecure"]).unwrap(), Trust::Insecure);
        let both: Result<Trust, clap::Error> = trust(&["--tls-ca", "ca.pem", "--tls-insecure"]);
        let message = both.unwrap_err().to_string();
        assert!(message.contains("--tls-insecure"), "{message}");
    }

    #[test]
    fn a_bad_cpu_list_is_a_usage_error_naming_the_flag() {
        for (value, reason) in [
            ("3-1", "reversed"),
            ("x", "not a CPU number"),
            ("", "empty"),
        ] {
            let message = serve(&["--cpus", value]).unwrap_err().to_string();
            assert!(message.contains("--cpus <LIST>"), "{message}");
            assert!(message.contains(reason), "{message}");
        }
    }

    #[test]
    fn a_bad_log_format_is_a_usage_error_naming_the_flag_and_the_choices() {
        let message = serve(&["--log-format", "xml"]).unwrap_err().to_string();
        assert!(message.contains("--log-format <text|json>"), "{message}");
        assert!(
            message.contains("unknown variant `xml`, expected `text` or `json`"),
            "{message}"
        );
    }

    #[test]
    fn a_bad_address_is_a_usage_error_naming_the_flag() {
        let message = serve(&["--listen", "localhost"]).unwrap_err().to_string();
        assert!(message.contains("--listen <ADDR>"), "{message}");
    }

    #[test]
    fn an_out_of_range_flag_is_a_config_error_naming_flag_key_and_range() {
        let err = serve(&["--chunk-size", "0"]).unwrap().load().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid --chunk-size: chunk_size = 0 is out of range 128..=16777215"
        );
    }

    #[test]
    fn serve_help_shows_every_flag_with_its_default() {
        let mut command = Cli::command();
        let help = command
            .find_subcommand_mut("serve")
            .expect("serve exists")
            .render_help()
            .to_string();
        for flag in [
            "--listen <ADDR>",
            "--shards <N>",
            "--cpus <LIST>",
            "--chunk-size <N>",
            "--origin <URL>",
            "--push <URL>",
            "--http <ADDR|off>",
            "--admin <ADDR|off>",
            "--admin-token-file <FILE>",
            "--listen-tls <ADDR>",
            "--http-tls <ADDR>",
            "--tls-cert <FILE>",
            "--tls-key <FILE>",
            "--log-format <text|json>",
            "--print-config",
        ] {
            assert!(help.contains(flag), "{flag} in\n{help}");
        }
        assert!(help.contains("--config <FILE>"), "{help}");
        assert!(help.contains("[default: 0.0.0.0:1935]"), "{help}");
        assert!(help.contains("[default: 4096]"), "{help}");
        assert!(help.contains("[default: one per CPU in --cpus, else one per usable CPU"));
        assert!(help.contains("[default: 0.0.0.0:8080]"), "{help}");
        assert!(help.contains("[default: 127.0.0.1:1985]"), "{help}");
        assert!(help.contains("[default: none, no token]"), "{help}");
        assert!(help.contains("[default: text]"), "{help}");
        assert_eq!(help.matches("[default: ").count(), 15, "{help}");
    }
}
