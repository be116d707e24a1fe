//! The file format: one struct per TOML table, read with serde and applied
//! over the defaults, every integer narrowed through its [`Bound`].

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use super::cpus::parse_cpu_list;
use super::validate::*;
use super::{AppRelay, Config, Invalid, RelayConfig, Takeover};
use crate::protocol::command::RtmpUrl;

// Integers are read as `i64` (TOML's integer) and narrowed by `Bound`, so a
// negative or huge value gets the same "out of range" message as any other.
// `deny_unknown_fields` turns a misspelt key into an error naming it.

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct File {
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
    pub(super) fn apply_to(self, config: &mut Config) -> Result<(), Invalid> {
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
