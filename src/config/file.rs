//! The file format: one struct per TOML table, read with serde and applied
//! over the defaults, every integer narrowed through its [`Bound`].

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ringcast_tls::CertFiles;

use serde::{Deserialize, Serialize};

use super::access::{AccessConfig, AccessPolicy, HookFormat, HookUrl, HookUrls, Network, Rule};
use super::admin::AdminToken;
use super::cpus::{format_cpu_list, parse_cpu_list};
use super::validate::*;
use super::{
    AdminAddr, AppRelay, Config, ExecCommand, HlsConfig, HttpConfig, Invalid, LogFormat,
    PlayerConfig, ProtocolLimits, RecordFormat, RecordSettings, RelayConfig, StreamConfig,
    Takeover, Timeouts, TlsConfig,
};
use crate::protocol::url::RtmpUrl;

// Integers are read as `i64` (TOML's integer) and narrowed by `Bound`, so a
// negative or huge value gets the same "out of range" message as any other.
// `deny_unknown_fields` turns a misspelt key into an error naming it.

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct File {
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<Vec<SocketAddr>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shards: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cpus: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    chunk_size: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    connections_max: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    connections_per_ip_max: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    publishers_max: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    streams_max: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_listen: Option<Vec<SocketAddr>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    admin: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    admin_origins: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    admin_token_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics_streams_max: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    drain_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    drain_redirect: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    log_format: Option<LogFormat>,
    limits: LimitsSection,
    stream: StreamSection,
    http: HttpSection,
    hls: HlsSection,
    record: RecordSection,
    tls: TlsSection,
    player: PlayerSection,
    timeouts: TimeoutsSection,
    relay: RelaySection,
    access: AccessSection,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    app: BTreeMap<String, AppSection>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct TlsSection {
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<Vec<SocketAddr>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_listen: Option<Vec<SocketAddr>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cert: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ca_file: Option<String>,
    /// `[[tls.certificates]]`: more certificates, chosen by SNI.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    certificates: Vec<CertSection>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct CertSection {
    cert: String,
    key: String,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct RelaySection {
    #[serde(skip_serializing_if = "Option::is_none")]
    origins: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    push: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    idle_stop_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    connect_timeout_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    backoff_ms_max: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pulls_max: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pulls_per_connection_max: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ping_ms: Option<i64>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct AppSection {
    #[serde(skip_serializing_if = "Option::is_none")]
    origins: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    push: Option<Vec<String>>,
    /// Whether the app's streams are packaged for HLS (default: `hls.enabled`).
    #[serde(skip_serializing_if = "Option::is_none")]
    hls: Option<bool>,
    /// The program run while a stream of the app is published.
    #[serde(skip_serializing_if = "Option::is_none")]
    exec_publish: Option<Vec<String>>,
    /// `[app.NAME.access]`: the keys of `[access]` except the hook timing.
    #[serde(skip_serializing_if = "Option::is_none")]
    access: Option<AccessSection>,
    /// `[app.NAME.stream]`: the keys of `[stream]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<StreamSection>,
    /// `[app.NAME.record]`: the keys of `[record]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<RecordSection>,
}

/// `[access]` and `[app.NAME.access]`. A hook of `""` or `[]` means none
/// (an app turns off a server-wide hook that way).
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct AccessSection {
    #[serde(skip_serializing_if = "Option::is_none")]
    publish_keys: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    play_keys: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    publish_allow: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    publish_deny: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    play_allow: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    play_deny: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hook_format: Option<HookFormat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    on_connect: Option<HookList>,
    #[serde(skip_serializing_if = "Option::is_none")]
    on_publish: Option<HookList>,
    #[serde(skip_serializing_if = "Option::is_none")]
    on_play: Option<HookList>,
    #[serde(skip_serializing_if = "Option::is_none")]
    on_publish_done: Option<HookList>,
    #[serde(skip_serializing_if = "Option::is_none")]
    on_play_done: Option<HookList>,
    #[serde(skip_serializing_if = "Option::is_none")]
    on_done: Option<HookList>,
    #[serde(skip_serializing_if = "Option::is_none")]
    on_update: Option<HookList>,
    #[serde(skip_serializing_if = "Option::is_none")]
    on_close: Option<HookList>,
    #[serde(skip_serializing_if = "Option::is_none")]
    on_record_done: Option<HookList>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hook_timeout_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hook_fail_open: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    update_interval_ms: Option<i64>,
}

/// A hook's URLs: a list, or one URL as a string (as files written before
/// lists have it; `""` is none).
#[derive(Debug, Deserialize, Serialize)]
#[serde(untagged)]
enum HookList {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct LimitsSection {
    #[serde(skip_serializing_if = "Option::is_none")]
    message_size_max: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    partial_bytes_max: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    chunk_streams_max: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    streams_per_connection_max: Option<i64>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct StreamSection {
    #[serde(skip_serializing_if = "Option::is_none")]
    gop_cache_bytes_max: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gop_cache_duration_ms_max: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    takeover: Option<Takeover>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp_correction: Option<bool>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct PlayerSection {
    #[serde(skip_serializing_if = "Option::is_none")]
    queue_bytes_max: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    slow_disconnect_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    write_batch_bytes_max: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    write_window_ms: Option<i64>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct HttpSection {
    #[serde(skip_serializing_if = "Option::is_none")]
    allow_origin: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    player_page: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    play_wait_ms: Option<i64>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct HlsSection {
    #[serde(skip_serializing_if = "Option::is_none")]
    enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    segment_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    part_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    segments: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    idle_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    blocked_per_ip_max: Option<i64>,
}

/// `[record]` and `[app.NAME.record]`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct RecordSection {
    #[serde(skip_serializing_if = "Option::is_none")]
    enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<RecordFormat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_duration_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_bytes: Option<i64>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct TimeoutsSection {
    #[serde(skip_serializing_if = "Option::is_none")]
    handshake_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    idle_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shutdown_ms: Option<i64>,
}

impl File {
    /// Overwrites the fields of `config` that the file sets.
    pub(super) fn apply_to(mut self, config: &mut Config) -> Result<(), Invalid> {
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
        if let Some(listen) = self.http_listen {
            config.http.listen = listen;
        }
        self.http.apply_to(&mut config.http)?;
        self.tls.apply_to(&mut config.tls)?;
        if let Some(text) = self.admin {
            config.admin = parse_admin(&text)?;
        }
        if let Some(origins) = self.admin_origins {
            config.admin_origins = origins;
        }
        if let Some(file) = self.admin_token_file {
            config.admin_token = Some(AdminToken::read(std::path::Path::new(&file))?);
        }
        set(&mut config.chunk_size, self.chunk_size, CHUNK_SIZE)?;
        set(
            &mut config.connections_max,
            self.connections_max,
            CONNECTIONS_MAX,
        )?;
        let per_ip = self.connections_per_ip_max;
        set(
            &mut config.connections_per_ip_max,
            per_ip,
            CONNECTIONS_PER_IP_MAX,
        )?;
        set(
            &mut config.publishers_max,
            self.publishers_max,
            PUBLISHERS_MAX,
        )?;
        set(&mut config.streams_max, self.streams_max, STREAMS_MAX)?;
        set(
            &mut config.metrics_streams_max,
            self.metrics_streams_max,
            METRICS_STREAMS_MAX,
        )?;
        set_ms(&mut config.drain.wait, self.drain_ms, DRAIN_MS)?;
        if let Some(url) = self.drain_redirect {
            let mut parsed = parse_urls("drain_redirect".into(), std::slice::from_ref(&url))?;
            config.drain.redirect = parsed.pop();
        }
        config.log_format = self.log_format.unwrap_or(config.log_format);

        self.limits.apply_to(&mut config.limits)?;
        self.stream.apply_to(&mut config.stream)?;
        self.player.apply_to(&mut config.player)?;
        apply_access(&mut config.access, self.access)?;
        self.hls.apply_to(&mut config.hls)?;
        self.record.apply_to(&mut config.record.default)?;
        for (app, section) in &mut self.app {
            let in_app = |invalid: Invalid| invalid.in_app(app);
            if let Some(hls) = section.hls.take() {
                config.hls.apps.insert(app.clone(), hls);
            }
            if let Some(argv) = section.exec_publish.take() {
                let command = ExecCommand::parse("exec_publish", &argv).map_err(in_app)?;
                config.exec_publish.insert(app.clone(), command);
            }
            if let Some(file) = section.access.take() {
                let mut policy = config.access.default.clone();
                apply_policy(&mut policy, file).map_err(in_app)?;
                config.access.apps.insert(app.clone(), policy);
            }
            if let Some(file) = section.stream.take() {
                let mut stream = config.stream;
                file.apply_to(&mut stream).map_err(in_app)?;
                config.app_streams.insert(app.clone(), stream);
            }
            if let Some(file) = section.record.take() {
                let mut record = config.record.default.clone();
                file.apply_to(&mut record).map_err(in_app)?;
                config.record.apps.insert(app.clone(), record);
            }
        }
        apply_relay(&mut config.relay, self.relay, self.app)?;
        self.timeouts.apply_to(&mut config.timeouts)
    }
}

impl TlsSection {
    /// Sets the listeners and reads the certificates (and the relays' CA)
    /// named, so a file whose certificates would not serve is refused.
    fn apply_to(self, tls: &mut TlsConfig) -> Result<(), Invalid> {
        if let Some(listen) = self.listen {
            tls.listen = listen;
        }
        if let Some(listen) = self.http_listen {
            tls.http_listen = listen;
        }
        let named = |text: &str| (!text.is_empty()).then(|| PathBuf::from(text));
        let cert = self.cert.as_deref().and_then(named);
        let key = self.key.as_deref().and_then(named);
        tls.certificates = match (cert, key) {
            (Some(cert), Some(key)) => vec![CertFiles { cert, key }],
            (None, None) => Vec::new(),
            (cert, _) => {
                return Err(Invalid {
                    key: if cert.is_some() {
                        "tls.key"
                    } else {
                        "tls.cert"
                    }
                    .into(),
                    value: "\"\"".into(),
                    rule: "is missing: tls.cert and tls.key are given together".into(),
                });
            }
        };
        for more in self.certificates {
            if tls.certificates.is_empty() {
                return Err(Invalid {
                    key: "tls.cert".into(),
                    value: "\"\"".into(),
                    rule: "is missing: [[tls.certificates]] add to tls.cert, the one served by default".into(),
                });
            }
            tls.certificates.push(CertFiles {
                cert: more.cert.into(),
                key: more.key.into(),
            });
        }
        tls.load_certificates()?;
        if let Some(file) = self.ca_file.as_deref().and_then(named) {
            tls.load_relay_ca(&file)?;
        }
        Ok(())
    }

    fn from_config(tls: &TlsConfig) -> TlsSection {
        let path = |p: &std::path::Path| p.display().to_string();
        let first = tls.certificates.first();
        TlsSection {
            listen: Some(tls.listen.clone()),
            http_listen: Some(tls.http_listen.clone()),
            cert: Some(first.map(|f| path(&f.cert)).unwrap_or_default()),
            key: Some(first.map(|f| path(&f.key)).unwrap_or_default()),
            ca_file: Some(
                (tls.relay_ca.as_ref().and_then(|ca| ca.ca_file()))
                    .map(path)
                    .unwrap_or_default(),
            ),
            certificates: (tls.certificates.iter().skip(1))
                .map(|f| CertSection {
                    cert: path(&f.cert),
                    key: path(&f.key),
                })
                .collect(),
        }
    }
}

impl HttpSection {
    fn apply_to(self, http: &mut HttpConfig) -> Result<(), Invalid> {
        if let Some(origin) = self.allow_origin {
            http.allow_origin = origin;
        }
        if let Some(page) = self.player_page {
            http.player_page = (page != "off").then_some(page);
        }
        if let Some(ms) = self.play_wait_ms {
            http.play_wait = Duration::from_millis(PLAY_WAIT_MS.narrow(ms)?);
        }
        Ok(())
    }
}

impl HlsSection {
    fn apply_to(self, hls: &mut HlsConfig) -> Result<(), Invalid> {
        if let Some(enabled) = self.enabled {
            hls.enabled = enabled;
        }
        set_ms(&mut hls.segment, self.segment_ms, HLS_SEGMENT_MS)?;
        set_ms(&mut hls.part, self.part_ms, HLS_PART_MS)?;
        set(&mut hls.segments, self.segments, HLS_SEGMENTS)?;
        set_ms(&mut hls.idle, self.idle_ms, HLS_IDLE_MS)?;
        set(
            &mut hls.blocked_per_ip_max,
            self.blocked_per_ip_max,
            HLS_BLOCKED_PER_IP_MAX,
        )
    }

    fn from_config(hls: &HlsConfig) -> HlsSection {
        HlsSection {
            enabled: Some(hls.enabled),
            segment_ms: Some(ms(hls.segment)),
            part_ms: Some(ms(hls.part)),
            segments: Some(int(hls.segments)),
            idle_ms: Some(ms(hls.idle)),
            blocked_per_ip_max: Some(int(hls.blocked_per_ip_max)),
        }
    }
}

impl RecordSection {
    fn apply_to(self, record: &mut RecordSettings) -> Result<(), Invalid> {
        record.enabled = self.enabled.unwrap_or(record.enabled);
        if let Some(text) = self.path {
            record.path = text.parse().map_err(|rule| Invalid {
                key: "record.path".into(),
                value: format!("{text:?}"),
                rule,
            })?;
        }
        record.format = self.format.unwrap_or(record.format);
        set_ms(
            &mut record.max_duration,
            self.max_duration_ms,
            RECORD_MAX_DURATION_MS,
        )?;
        set(&mut record.max_bytes, self.max_bytes, RECORD_MAX_BYTES)
    }

    fn from_settings(record: &RecordSettings) -> RecordSection {
        RecordSection {
            enabled: Some(record.enabled),
            path: Some(record.path.to_string()),
            format: Some(record.format),
            max_duration_ms: Some(ms(record.max_duration)),
            max_bytes: Some(int(record.max_bytes)),
        }
    }
}

impl LimitsSection {
    fn apply_to(self, limits: &mut ProtocolLimits) -> Result<(), Invalid> {
        set(
            &mut limits.message_size_max,
            self.message_size_max,
            MESSAGE_SIZE_MAX,
        )?;
        set(
            &mut limits.partial_bytes_max,
            self.partial_bytes_max,
            PARTIAL_BYTES_MAX,
        )?;
        set(
            &mut limits.chunk_streams_max,
            self.chunk_streams_max,
            CHUNK_STREAMS_MAX,
        )?;
        let streams = self.streams_per_connection_max;
        set(
            &mut limits.streams_per_connection_max,
            streams,
            STREAMS_PER_CONNECTION_MAX,
        )?;
        Ok(())
    }
}

impl StreamSection {
    fn apply_to(self, stream: &mut StreamConfig) -> Result<(), Invalid> {
        set(
            &mut stream.gop_cache_bytes_max,
            self.gop_cache_bytes_max,
            GOP_CACHE_BYTES_MAX,
        )?;
        let gop_ms = self.gop_cache_duration_ms_max;
        set_ms(
            &mut stream.gop_cache_duration_max,
            gop_ms,
            GOP_CACHE_DURATION_MS_MAX,
        )?;
        stream.takeover = self.takeover.unwrap_or(stream.takeover);
        stream.timestamp_correction = self
            .timestamp_correction
            .unwrap_or(stream.timestamp_correction);
        Ok(())
    }
}

impl PlayerSection {
    fn apply_to(self, player: &mut PlayerConfig) -> Result<(), Invalid> {
        set(
            &mut player.queue_bytes_max,
            self.queue_bytes_max,
            QUEUE_BYTES_MAX,
        )?;
        let slow = timeout_ms("player.slow_disconnect_ms");
        set_ms(
            &mut player.slow_disconnect_after,
            self.slow_disconnect_ms,
            slow,
        )?;
        let batch = self.write_batch_bytes_max;
        set(
            &mut player.write_batch_bytes_max,
            batch,
            WRITE_BATCH_BYTES_MAX,
        )?;
        set_ms(
            &mut player.write_window,
            self.write_window_ms,
            WRITE_WINDOW_MS,
        )?;
        Ok(())
    }
}

impl TimeoutsSection {
    fn apply_to(self, timeouts: &mut Timeouts) -> Result<(), Invalid> {
        set_ms(
            &mut timeouts.handshake,
            self.handshake_ms,
            timeout_ms("timeouts.handshake_ms"),
        )?;
        set_ms(
            &mut timeouts.idle,
            self.idle_ms,
            timeout_ms("timeouts.idle_ms"),
        )?;
        set_ms(
            &mut timeouts.shutdown,
            self.shutdown_ms,
            timeout_ms("timeouts.shutdown_ms"),
        )
    }
}

/// The server-wide `[access]`: hook timing and the default policy.
fn apply_access(access: &mut AccessConfig, mut file: AccessSection) -> Result<(), Invalid> {
    set_ms(
        &mut access.hook_timeout,
        file.hook_timeout_ms.take(),
        HOOK_TIMEOUT_MS,
    )?;
    access.hook_fail_open = file.hook_fail_open.take().unwrap_or(access.hook_fail_open);
    set_ms(
        &mut access.update_interval,
        file.update_interval_ms.take(),
        UPDATE_INTERVAL_MS,
    )?;
    apply_policy(&mut access.default, file)
}

/// Lays the keys `file` sets over `policy`. Keys are named without their
/// section (`access.`), which the caller's context adds for an app.
fn apply_policy(policy: &mut AccessPolicy, file: AccessSection) -> Result<(), Invalid> {
    let server_wide = [
        (
            "hook_timeout_ms",
            file.hook_timeout_ms.map(|v| v.to_string()),
        ),
        ("hook_fail_open", file.hook_fail_open.map(|v| v.to_string())),
        (
            "update_interval_ms",
            file.update_interval_ms.map(|v| v.to_string()),
        ),
    ];
    if let Some((key, Some(value))) = server_wide.into_iter().find(|(_, v)| v.is_some()) {
        return Err(Invalid {
            key: format!("access.{key}").into(),
            value,
            rule: "is server-wide: set it in [access], not per app".into(),
        });
    }
    apply_rule(
        &mut policy.publish,
        "publish",
        file.publish_keys,
        file.publish_allow,
        file.publish_deny,
    )?;
    apply_rule(
        &mut policy.play,
        "play",
        file.play_keys,
        file.play_allow,
        file.play_deny,
    )?;
    policy.hook_format = file.hook_format.unwrap_or(policy.hook_format);
    let hooks = &mut policy.hooks;
    let given = [
        (&mut hooks.on_connect, "on_connect", file.on_connect),
        (&mut hooks.on_publish, "on_publish", file.on_publish),
        (&mut hooks.on_play, "on_play", file.on_play),
        (
            &mut hooks.on_publish_done,
            "on_publish_done",
            file.on_publish_done,
        ),
        (&mut hooks.on_play_done, "on_play_done", file.on_play_done),
        (&mut hooks.on_done, "on_done", file.on_done),
        (&mut hooks.on_update, "on_update", file.on_update),
        (&mut hooks.on_close, "on_close", file.on_close),
        (
            &mut hooks.on_record_done,
            "on_record_done",
            file.on_record_done,
        ),
    ];
    for (urls, name, list) in given {
        if let Some(list) = list {
            *urls = parse_hook_urls(name, list)?;
        }
    }
    Ok(())
}

fn apply_rule(
    rule: &mut Rule,
    action: &str,
    keys: Option<Vec<String>>,
    allow: Option<Vec<String>>,
    deny: Option<Vec<String>>,
) -> Result<(), Invalid> {
    if let Some(keys) = keys {
        rule.keys = keys;
    }
    if let Some(list) = allow {
        rule.allow = parse_networks(format!("access.{action}_allow"), &list)?;
    }
    if let Some(list) = deny {
        rule.deny = parse_networks(format!("access.{action}_deny"), &list)?;
    }
    Ok(())
}

fn parse_networks(key: String, list: &[String]) -> Result<Vec<Network>, Invalid> {
    list.iter()
        .map(|text| {
            text.parse().map_err(|rule| Invalid {
                key: key.clone().into(),
                value: format!("{text:?}"),
                rule,
            })
        })
        .collect()
}

/// A hook's URLs from the file; a bad one is named with its key.
fn parse_hook_urls(name: &str, list: HookList) -> Result<Vec<HookUrl>, Invalid> {
    let texts = match list {
        HookList::One(text) if text.trim().is_empty() => Vec::new(),
        HookList::One(text) => vec![text],
        HookList::Many(texts) => texts,
    };
    texts
        .iter()
        .map(|text| {
            text.parse().map_err(|rule| Invalid {
                key: format!("access.{name}").into(),
                value: format!("{text:?}"),
                rule,
            })
        })
        .collect()
}

/// The file's `admin`: an address or `"off"`.
fn parse_admin(text: &str) -> Result<Option<SocketAddr>, Invalid> {
    text.parse::<AdminAddr>()
        .map(|admin| admin.0)
        .map_err(|_| Invalid {
            key: "admin".into(),
            value: format!("{text:?}"),
            rule: "is not an address like \"127.0.0.1:8080\" or \"[::1]:8080\", nor \"off\"".into(),
        })
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
        file.backoff_ms_max,
        timeout_ms("relay.backoff_ms_max"),
    )?;
    set_ms(&mut timing.ping, file.ping_ms, timeout_ms("relay.ping_ms"))?;
    set(&mut relay.pulls_max, file.pulls_max, PULLS_MAX)?;
    set(
        &mut relay.pulls_per_connection_max,
        file.pulls_per_connection_max,
        PULLS_PER_CONNECTION_MAX,
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
        if lists.origins.is_some() || lists.push.is_some() {
            relay.apps.insert(app, lists);
        }
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
// Writing a config back (`--print-config`)
// ---------------------------------------------------------------------------

impl File {
    /// Every key of `config` as the file sets it; `shards` and `cpus` only
    /// when chosen, since leaving them out is what "automatic" means.
    pub(super) fn from_config(config: &Config) -> File {
        let (limits, stream, player) = (&config.limits, &config.stream, &config.player);
        let (timeouts, relay) = (&config.timeouts, &config.relay);
        File {
            listen: Some(config.listen.clone()),
            shards: config.shards.map(int),
            cpus: config.cpus.as_deref().map(format_cpu_list),
            chunk_size: Some(int(config.chunk_size)),
            connections_max: Some(int(config.connections_max)),
            connections_per_ip_max: Some(int(config.connections_per_ip_max)),
            publishers_max: Some(int(config.publishers_max)),
            streams_max: Some(int(config.streams_max)),
            http_listen: Some(config.http.listen.clone()),
            http: HttpSection {
                allow_origin: Some(config.http.allow_origin.clone()),
                player_page: Some(
                    config
                        .http
                        .player_page
                        .clone()
                        .unwrap_or_else(|| "off".into()),
                ),
                play_wait_ms: Some(ms(config.http.play_wait)),
            },
            hls: HlsSection::from_config(&config.hls),
            record: RecordSection::from_settings(&config.record.default),
            tls: TlsSection::from_config(&config.tls),
            admin: Some(AdminAddr(config.admin).to_string()),
            admin_origins: Some(config.admin_origins.clone()),
            admin_token_file: (config.admin_token.as_ref())
                .map(|token| token.file().display().to_string()),
            metrics_streams_max: Some(int(config.metrics_streams_max)),
            drain_ms: Some(ms(config.drain.wait)),
            drain_redirect: config.drain.redirect.as_ref().map(ToString::to_string),
            log_format: Some(config.log_format),
            limits: LimitsSection {
                message_size_max: Some(int(limits.message_size_max)),
                partial_bytes_max: Some(int(limits.partial_bytes_max)),
                chunk_streams_max: Some(int(limits.chunk_streams_max)),
                streams_per_connection_max: Some(int(limits.streams_per_connection_max)),
            },
            stream: StreamSection::from_config(stream),
            player: PlayerSection {
                queue_bytes_max: Some(int(player.queue_bytes_max)),
                slow_disconnect_ms: Some(ms(player.slow_disconnect_after)),
                write_batch_bytes_max: Some(int(player.write_batch_bytes_max)),
                write_window_ms: Some(ms(player.write_window)),
            },
            timeouts: TimeoutsSection {
                handshake_ms: Some(ms(timeouts.handshake)),
                idle_ms: Some(ms(timeouts.idle)),
                shutdown_ms: Some(ms(timeouts.shutdown)),
            },
            relay: RelaySection {
                origins: Some(urls(&relay.origins)),
                push: Some(urls(&relay.push)),
                idle_stop_ms: Some(ms(relay.timing.idle_stop)),
                connect_timeout_ms: Some(ms(relay.timing.connect_timeout)),
                backoff_ms_max: Some(ms(relay.timing.backoff_max)),
                pulls_max: Some(int(relay.pulls_max)),
                pulls_per_connection_max: Some(int(relay.pulls_per_connection_max)),
                ping_ms: Some(ms(relay.timing.ping)),
            },
            access: AccessSection {
                hook_timeout_ms: Some(ms(config.access.hook_timeout)),
                hook_fail_open: Some(config.access.hook_fail_open),
                update_interval_ms: Some(ms(config.access.update_interval)),
                ..AccessSection::from_policy(&config.access.default)
            },
            app: File::apps(config),
        }
    }

    /// Every app any section names, with what it sets; an app's access
    /// and stream settings are written whole (defaults laid over).
    fn apps(config: &Config) -> BTreeMap<String, AppSection> {
        let relay = &config.relay.apps;
        let names = relay
            .keys()
            .chain(config.access.apps.keys())
            .chain(config.app_streams.keys())
            .chain(config.hls.apps.keys())
            .chain(config.record.apps.keys())
            .chain(config.exec_publish.keys());
        names
            .map(|app| {
                let lists = relay.get(app);
                let section = AppSection {
                    origins: lists.and_then(|l| l.origins.as_deref()).map(urls),
                    push: lists.and_then(|l| l.push.as_deref()).map(urls),
                    hls: config.hls.apps.get(app).copied(),
                    exec_publish: (config.exec_publish.get(app)).map(|c| c.written().to_vec()),
                    access: config.access.apps.get(app).map(AccessSection::from_policy),
                    stream: config.app_streams.get(app).map(StreamSection::from_config),
                    record: config
                        .record
                        .apps
                        .get(app)
                        .map(RecordSection::from_settings),
                };
                (app.clone(), section)
            })
            .collect()
    }
}

impl StreamSection {
    fn from_config(stream: &StreamConfig) -> StreamSection {
        StreamSection {
            gop_cache_bytes_max: Some(int(stream.gop_cache_bytes_max)),
            gop_cache_duration_ms_max: Some(ms(stream.gop_cache_duration_max)),
            takeover: Some(stream.takeover),
            timestamp_correction: Some(stream.timestamp_correction),
        }
    }
}

impl AccessSection {
    fn from_policy(policy: &AccessPolicy) -> AccessSection {
        let nets = |list: &[Network]| Some(list.iter().map(ToString::to_string).collect());
        let hook = |urls: &[HookUrl]| {
            Some(HookList::Many(
                urls.iter().map(ToString::to_string).collect(),
            ))
        };
        let HookUrls {
            on_connect,
            on_publish,
            on_play,
            on_publish_done,
            on_play_done,
            on_done,
            on_update,
            on_close,
            on_record_done,
        } = &policy.hooks;
        AccessSection {
            publish_keys: Some(policy.publish.keys.clone()),
            play_keys: Some(policy.play.keys.clone()),
            publish_allow: nets(&policy.publish.allow),
            publish_deny: nets(&policy.publish.deny),
            play_allow: nets(&policy.play.allow),
            play_deny: nets(&policy.play.deny),
            hook_format: Some(policy.hook_format),
            on_connect: hook(on_connect),
            on_publish: hook(on_publish),
            on_play: hook(on_play),
            on_publish_done: hook(on_publish_done),
            on_play_done: hook(on_play_done),
            on_done: hook(on_done),
            on_update: hook(on_update),
            on_close: hook(on_close),
            on_record_done: hook(on_record_done),
            hook_timeout_ms: None,
            hook_fail_open: None,
            update_interval_ms: None,
        }
    }
}

/// A validated value as a TOML integer; every bound is far below
/// `i64::MAX`, which stands in for anything that is not.
fn int<T: TryInto<i64>>(value: T) -> i64 {
    value.try_into().unwrap_or(i64::MAX)
}

fn ms(value: Duration) -> i64 {
    int(value.as_millis())
}

fn urls(list: &[RtmpUrl]) -> Vec<String> {
    list.iter().map(ToString::to_string).collect()
}
