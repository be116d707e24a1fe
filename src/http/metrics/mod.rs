//! `/metrics` in the Prometheus text format 0.0.4: a pure function of the
//! shards' counter snapshots, their streams (asked at scrape time,
//! [`streams`]) and this process's `/proc` ([`process`]).
//!
//! Names are `ringcast_*` (and the `process_*` every exporter has), in
//! base units (bytes, seconds); counters end in `_total`, and rates are
//! PromQL's to take (`rate(ringcast_sent_bytes_total[1m])`), so
//! `promtool check metrics` finds nothing to say (`tests/metrics.rs`).
//! Everything a shard counts carries `shard="N"`, so load per shard is
//! visible and the server total is `sum(ringcast_x)`; no unlabelled total
//! is exported beside them, since it would be counted twice by that sum.
//! Per-stream series carry `app` and `stream`, for at most
//! `metrics_streams_max` streams (the rest summed as `"_other"`).
//!
//! Written by hand rather than with `prometheus-client`, which writes the
//! same series (since 0.26, in the 0.0.4 text format) but was measured slower
//! at 10 000 streams (`benches/metrics.rs`: 0.18 ms against 0.25 ms for
//! the default 100 streams' series, 12 ms against 18 ms for all of them),
//! and would add a registry per scrape for series that come and go with
//! streams.

pub mod process;
pub mod streams;

use std::fmt::Write;

use self::process::Process;
use self::streams::{OTHER, Other, StreamSeries, StreamValues};
use crate::exec::ExecCounts;
use crate::media::StreamKey;
use crate::shard::stats::{Protocol, ShardSnapshot};

/// The content type Prometheus expects for this format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
}

/// One per-shard metric: name, type, help, and how to read it.
pub type ShardMetric = (&'static str, Kind, &'static str, fn(&ShardSnapshot) -> u64);

/// Every per-shard metric, in the order they are written (public for
/// `benches/metrics.rs`, which writes them another way).
pub const SHARD_METRICS: &[ShardMetric] = &[
    (
        "ringcast_connections",
        Kind::Gauge,
        "Connections open now.",
        |s| s.connections,
    ),
    (
        "ringcast_streams",
        Kind::Gauge,
        "Streams whose source is on this shard now: a publisher or a pull.",
        |s| s.publishers.saturating_add(s.relay_pulls),
    ),
    (
        "ringcast_publishers",
        Kind::Gauge,
        "Publishers on this shard now.",
        |s| s.publishers,
    ),
    (
        "ringcast_players",
        Kind::Gauge,
        "Players on this shard now.",
        |s| s.players,
    ),
    (
        "ringcast_http_refusals_total",
        Kind::Counter,
        "HTTP player requests refused (400, 405, 431, ...) and WebSocket players closed for breaking RFC 6455.",
        |s| s.http_refusals,
    ),
    (
        "ringcast_hls_requests_total",
        Kind::Counter,
        "HLS requests answered (playlists, init segments, segments, parts), whatever the status.",
        |s| s.hls_requests,
    ),
    (
        "ringcast_hls_blocked_total",
        Kind::Counter,
        "HLS requests that waited for a part or playlist not made yet (LL-HLS blocking reloads, preload hints).",
        |s| s.hls_blocked,
    ),
    (
        "ringcast_hls_refusals_total",
        Kind::Counter,
        "HLS requests refused for what they asked (bad _HLS_msn/_HLS_part, too many blocked per address).",
        |s| s.hls_refusals,
    ),
    (
        "ringcast_relay_pulls",
        Kind::Gauge,
        "Streams this shard pulls from an origin now.",
        |s| s.relay_pulls,
    ),
    (
        "ringcast_draining",
        Kind::Gauge,
        "1 while this shard drains (SIGTERM, POST /api/v1/drain): listeners closed, publishers asked to move, players waited for.",
        |s| s.draining,
    ),
    (
        "ringcast_connections_accepted_total",
        Kind::Counter,
        "Connections accepted.",
        |s| s.connections_accepted,
    ),
    (
        "ringcast_connections_refused_total",
        Kind::Counter,
        "Connections closed at once: at connections_max (the shard's share) or connections_per_ip_max.",
        |s| s.connections_refused,
    ),
    (
        "ringcast_received_bytes_total",
        Kind::Counter,
        "Bytes read from RTMP connections.",
        |s| s.bytes_in,
    ),
    (
        "ringcast_sent_bytes_total",
        Kind::Counter,
        "Bytes written to RTMP connections.",
        |s| s.bytes_out,
    ),
    (
        "ringcast_messages_received_total",
        Kind::Counter,
        "Audio, video and data messages received from publishers and pulls.",
        |s| s.frames_in,
    ),
    (
        "ringcast_messages_sent_total",
        Kind::Counter,
        "Messages queued to players.",
        |s| s.frames_out,
    ),
    (
        "ringcast_frames_dropped_total",
        Kind::Counter,
        "Video frames a slow player did not get (dropped until a keyframe).",
        |s| s.frames_dropped,
    ),
    (
        "ringcast_mesh_frames_dropped_total",
        Kind::Counter,
        "Frames not forwarded to a shard that lagged too far behind.",
        |s| s.mesh_frames_dropped,
    ),
    (
        "ringcast_slow_disconnects_total",
        Kind::Counter,
        "Players disconnected because they could not keep up.",
        |s| s.slow_disconnects,
    ),
    (
        "ringcast_handshake_failures_total",
        Kind::Counter,
        "RTMP handshakes that failed.",
        |s| s.handshake_failures,
    ),
    (
        "ringcast_tls_failures_total",
        Kind::Counter,
        "TLS connections closed by their TLS layer (failed handshakes, plain text on a TLS port, forbidden records).",
        |s| s.tls_failures,
    ),
    (
        "ringcast_tls_on_plain_port_total",
        Kind::Counter,
        "TLS handshakes refused on a port without TLS.",
        |s| s.tls_on_plain_port,
    ),
    (
        "ringcast_handshake_timeouts_total",
        Kind::Counter,
        "Connections that did not finish handshake and connect in time.",
        |s| s.handshake_timeouts,
    ),
    (
        "ringcast_idle_timeouts_total",
        Kind::Counter,
        "Connections closed for silence past the idle timeout.",
        |s| s.idle_timeouts,
    ),
    (
        "ringcast_protocol_errors_total",
        Kind::Counter,
        "Connections closed for breaking the protocol.",
        |s| s.protocol_errors,
    ),
    (
        "ringcast_command_errors_total",
        Kind::Counter,
        "Commands refused; the connection went on.",
        |s| s.command_errors,
    ),
    (
        "ringcast_io_errors_total",
        Kind::Counter,
        "Connections ended by a socket error.",
        |s| s.io_errors,
    ),
    (
        "ringcast_auth_denials_total",
        Kind::Counter,
        "Connects, publishes and plays refused by access control.",
        |s| s.auth_denials,
    ),
    (
        "ringcast_hook_failures_total",
        Kind::Counter,
        "HTTP hook calls without a usable answer (timeout, no connection).",
        |s| s.hook_failures,
    ),
    (
        "ringcast_limit_refusals_total",
        Kind::Counter,
        "Publishes refused at publishers_max or streams_max.",
        |s| s.limit_refusals,
    ),
    (
        "ringcast_relay_reconnects_total",
        Kind::Counter,
        "Relay connections made again after one that worked dropped.",
        |s| s.relay_reconnects,
    ),
    (
        "ringcast_relay_failovers_total",
        Kind::Counter,
        "Pulls that moved to another origin.",
        |s| s.relay_failovers,
    ),
    (
        "ringcast_kicks_total",
        Kind::Counter,
        "Connections closed through the admin API.",
        |s| s.kicks,
    ),
    (
        "ringcast_recordings",
        Kind::Gauge,
        "Streams recorded to files on this shard now.",
        |s| s.recordings,
    ),
    (
        "ringcast_record_files_total",
        Kind::Counter,
        "Recording files completed.",
        |s| s.record_files,
    ),
    (
        "ringcast_record_written_bytes_total",
        Kind::Counter,
        "Bytes of the recording files completed.",
        |s| s.record_bytes,
    ),
    (
        "ringcast_record_dropped_total",
        Kind::Counter,
        "Recordings stopped because the disk did not keep up (their queue was full); the streams went on.",
        |s| s.record_dropped,
    ),
    (
        "ringcast_record_errors_total",
        Kind::Counter,
        "Recordings stopped by a failed write (a full disk, a file size limit, a permission).",
        |s| s.record_errors,
    ),
];

/// Per-stream metrics: name, type, help, a stream's value (`None`: no
/// series for it) and the value of the streams summed as `_other`.
pub type StreamMetric = (
    &'static str,
    Kind,
    &'static str,
    fn(&StreamValues) -> Option<u64>,
    fn(&Other) -> u64,
);

/// Every per-stream metric but the source's, in the order they are
/// written.
pub const STREAM_METRICS: &[StreamMetric] = &[
    (
        "ringcast_stream_players",
        Kind::Gauge,
        "Players of the stream now, on every shard (RTMP, HTTP-FLV, WebSocket-FLV; not HLS). The metrics_streams_max streams with the most players have series of their own; the rest are summed under app=\"_other\",stream=\"_other\".",
        |v| Some(v.players),
        |o| o.players,
    ),
    (
        "ringcast_stream_up",
        Kind::Gauge,
        "1 while the stream's publisher publishes or its pull receives from an origin, 0 while its players wait for one; under stream=\"_other\", how many of the streams summed there are up.",
        |v| Some(u64::from(v.up())),
        |o| o.up,
    ),
    (
        "ringcast_stream_received_bytes_total",
        Kind::Counter,
        "Audio, video and data payload bytes received from the stream's source since the stream was created on its source shard.",
        |v| v.source.map(|_| v.bytes_in),
        |o| o.bytes_in,
    ),
    (
        "ringcast_stream_received_frames_total",
        Kind::Counter,
        "Audio, video and data messages received from the stream's source since the stream was created on its source shard.",
        |v| v.source.map(|_| v.frames_in),
        |o| o.frames_in,
    ),
];

/// What a scrape shows.
#[derive(Debug)]
pub struct Scrape<'a> {
    pub version: &'a str,
    pub uptime_s: f64,
    /// Per shard, in shard order.
    pub shards: &'a [ShardSnapshot],
    pub streams: &'a StreamSeries,
    /// Shards that did not say what streams they hold in time.
    pub unanswered_shards: usize,
    /// Streams with HLS state, and the bytes their windows hold.
    pub hls: (usize, usize),
    /// The programs `exec_publish` runs.
    pub exec: ExecCounts,
    /// `None` where `/proc` could not be read: no `process_*` metrics.
    pub process: Option<Process>,
}

/// Bytes of text per stream with series of its own, about: five series,
/// 375 bytes in all with 17-byte stream keys (`benches/metrics.rs`), a
/// little more for longer names. Sizes the output once.
const STREAM_TEXT_BYTES: usize = 450;

/// The whole exposition.
pub fn render(scrape: &Scrape<'_>) -> String {
    let streams = scrape.streams.top.len().saturating_add(1);
    let mut out = String::with_capacity(16_384 + streams.saturating_mul(STREAM_TEXT_BYTES));
    server(&mut out, scrape);
    per_shard(&mut out, scrape.shards);
    per_stream(&mut out, scrape.streams);
    if let Some(process) = &scrape.process {
        per_process(&mut out, process);
    }
    out
}

fn server(out: &mut String, scrape: &Scrape<'_>) {
    let help = "Version of the running server.";
    header(out, "ringcast_build_info", Kind::Gauge, help);
    let _ = writeln!(
        out,
        "ringcast_build_info{{version=\"{}\"}} 1",
        scrape.version
    );
    header(
        out,
        "ringcast_uptime_seconds",
        Kind::Gauge,
        "Seconds since start.",
    );
    let _ = writeln!(out, "ringcast_uptime_seconds {:.3}", scrape.uptime_s);
    header(
        out,
        "ringcast_shards",
        Kind::Gauge,
        "Shards (reactor threads).",
    );
    let _ = writeln!(out, "ringcast_shards {}", scrape.shards.len());
    let others = scrape.streams.other.map_or(0, |other| other.streams);
    let meta = [
        (
            "ringcast_metrics_other_streams",
            "Streams past metrics_streams_max in this scrape, summed under stream=\"_other\".",
            others,
        ),
        (
            "ringcast_metrics_unanswered_shards",
            "Shards that did not say in time what streams they hold: the per-stream series lack their part.",
            scrape.unanswered_shards as u64,
        ),
    ];
    let (hls_streams, hls_bytes) = scrape.hls;
    let meta = meta.into_iter().chain([
        (
            "ringcast_hls_streams",
            "Streams with HLS state: packaged now, or kept for players until hls.idle_ms after their source ended.",
            hls_streams as u64,
        ),
        (
            "ringcast_hls_window_bytes",
            "Bytes the HLS streams' windows hold: init segments, segments and parts, shared by every shard.",
            hls_bytes as u64,
        ),
    ]);
    for (name, help, value) in meta {
        header(out, name, Kind::Gauge, help);
        let _ = writeln!(out, "{name} {value}");
    }
    let exec = scrape.exec;
    let programs = [
        (
            "ringcast_exec_children",
            Kind::Gauge,
            "Programs exec_publish runs now, for publishes on every shard.",
            exec.running,
        ),
        (
            "ringcast_exec_restarts_total",
            Kind::Counter,
            "Programs started again after they ended, or could not start, while their stream was published.",
            exec.restarts,
        ),
        (
            "ringcast_exec_refusals_total",
            Kind::Counter,
            "Publishes whose program was not started: as many run as may (64), or the stream name cannot be an argument.",
            exec.refusals,
        ),
    ];
    for (name, kind, help, value) in programs {
        header(out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    }
}

fn per_shard(out: &mut String, shards: &[ShardSnapshot]) {
    for &(name, kind, help, read) in SHARD_METRICS {
        header(out, name, kind, help);
        for (shard, snapshot) in shards.iter().enumerate() {
            let _ = writeln!(out, "{name}{{shard=\"{shard}\"}} {}", read(snapshot));
        }
    }
    let by_protocol = [
        (
            "ringcast_protocol_players",
            Kind::Gauge,
            "Players on this shard now, by protocol (rtmp, http-flv, ws-flv; hls: sessions).",
            false,
        ),
        (
            "ringcast_protocol_sent_bytes_total",
            Kind::Counter,
            "Bytes written to connections, by protocol (rtmp, http-flv, ws-flv, hls).",
            true,
        ),
    ];
    for (name, kind, help, bytes) in by_protocol {
        header(out, name, kind, help);
        for (shard, snapshot) in shards.iter().enumerate() {
            for (protocol, (players, sent)) in Protocol::ALL.iter().zip(snapshot.by_protocol()) {
                let value = if bytes { sent } else { players };
                let protocol = protocol.name();
                let _ = writeln!(
                    out,
                    "{name}{{shard=\"{shard}\",protocol=\"{protocol}\"}} {value}"
                );
            }
        }
    }
}

fn per_stream(out: &mut String, streams: &StreamSeries) {
    for &(name, kind, help, read, read_other) in STREAM_METRICS {
        header(out, name, kind, help);
        for (key, values) in &streams.top {
            if let Some(value) = read(values) {
                out.push_str(name);
                stream_labels(out, key);
                let _ = writeln!(out, "}} {value}");
            }
        }
        if let Some(other) = &streams.other {
            let value = read_other(other);
            let _ = writeln!(out, "{name}{{app=\"{OTHER}\",stream=\"{OTHER}\"}} {value}");
        }
    }
    let name = "ringcast_stream_source_info";
    let help =
        "1 for the stream's source: how it comes in (publisher, pull) and the shard it is on.";
    header(out, name, Kind::Gauge, help);
    for (key, values) in &streams.top {
        if let Some(source) = values.source {
            out.push_str(name);
            stream_labels(out, key);
            let (kind, shard) = (source.kind.name(), source.shard);
            let _ = writeln!(out, ",source=\"{kind}\",shard=\"{shard}\"}} 1");
        }
    }
}

fn per_process(out: &mut String, process: &Process) {
    let metrics = [
        (
            "process_cpu_seconds_total",
            Kind::Counter,
            "Total user and system CPU time spent in seconds.",
            process.cpu_seconds,
        ),
        (
            "process_resident_memory_bytes",
            Kind::Gauge,
            "Resident memory size in bytes.",
            process.resident_bytes as f64,
        ),
        (
            "process_virtual_memory_bytes",
            Kind::Gauge,
            "Virtual memory size in bytes.",
            process.virtual_bytes as f64,
        ),
        (
            "process_open_fds",
            Kind::Gauge,
            "Number of open file descriptors.",
            process.open_fds as f64,
        ),
        (
            "process_max_fds",
            Kind::Gauge,
            "Maximum number of open file descriptors.",
            process.max_fds as f64,
        ),
        (
            "process_start_time_seconds",
            Kind::Gauge,
            "Start time of the process since unix epoch in seconds.",
            process.start_time_s,
        ),
    ];
    for (name, kind, help, value) in metrics {
        header(out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    }
}

/// `{app="...",stream="..."` (the brace left open for more labels).
fn stream_labels(out: &mut String, key: &StreamKey) {
    out.push_str("{app=\"");
    label_value(out, key.app());
    out.push_str("\",stream=\"");
    label_value(out, key.name());
    out.push('"');
}

/// A label value as the text format escapes it: backslash, double quote
/// and line feed. Stream names are the publisher's, so anything can be in
/// them.
fn label_value(out: &mut String, value: &str) {
    if !value.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n')) {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn header(out: &mut String, name: &str, kind: Kind, help: &str) {
    let kind = match kind {
        Kind::Gauge => "gauge",
        Kind::Counter => "counter",
    };
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::streams::{Source, SourceKind};
    use super::*;
    use crate::shard::ShardId;

    fn key(app: &str, name: &str) -> StreamKey {
        StreamKey::new(app, name)
    }

    fn stream_series() -> StreamSeries {
        let cam = StreamValues {
            players: 5,
            source: Some(Source {
                kind: SourceKind::Publisher,
                shard: ShardId(1),
                live: true,
            }),
            frames_in: 40,
            bytes_in: 5000,
        };
        let waiting = StreamValues {
            players: 2,
            ..StreamValues::default()
        };
        StreamSeries {
            top: vec![
                (key("live", "cam"), cam),
                (key("live", "say \"hi\"\\now\n"), waiting),
            ],
            other: Some(Other {
                streams: 3,
                players: 1,
                up: 2,
                frames_in: 9,
                bytes_in: 900,
            }),
        }
    }

    fn scrape_text(streams: &StreamSeries) -> String {
        let shards = [
            ShardSnapshot {
                connections: 3,
                players: 2,
                publishers: 1,
                bytes_in: 1000,
                ..ShardSnapshot::default()
            },
            ShardSnapshot {
                connections: 1,
                players: 1,
                relay_pulls: 1,
                ..ShardSnapshot::default()
            },
        ];
        render(&Scrape {
            version: "1.2.3",
            uptime_s: 12.5,
            shards: &shards,
            streams,
            unanswered_shards: 1,
            hls: (2, 3_000_000),
            exec: ExecCounts {
                running: 2,
                restarts: 5,
                refusals: 1,
            },
            process: Some(Process {
                cpu_seconds: 1.25,
                resident_bytes: 4096,
                virtual_bytes: 8192,
                open_fds: 7,
                max_fds: 1024,
                start_time_s: 1_700_000_000.5,
            }),
        })
    }

    #[test]
    fn every_metric_has_help_and_type_and_a_value_per_shard() {
        let text = scrape_text(&StreamSeries::default());
        assert!(
            text.contains("ringcast_build_info{version=\"1.2.3\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("ringcast_uptime_seconds 12.500\n"), "{text}");
        assert!(text.contains("ringcast_shards 2\n"), "{text}");
        assert!(text.contains(
            "# HELP ringcast_players Players on this shard now.\n\
             # TYPE ringcast_players gauge\n\
             ringcast_players{shard=\"0\"} 2\n\
             ringcast_players{shard=\"1\"} 1\n"
        ));
        assert!(
            text.contains("ringcast_streams{shard=\"0\"} 1\nringcast_streams{shard=\"1\"} 1\n")
        );
        assert!(text.contains("# TYPE ringcast_received_bytes_total counter\n"));
        assert!(text.contains("ringcast_received_bytes_total{shard=\"0\"} 1000\n"));
        assert!(text.contains("ringcast_auth_denials_total{shard=\"1\"} 0\n"));
        assert!(!text.contains("bits"), "base units only: {text}");
        assert!(text.contains("ringcast_metrics_unanswered_shards 1\n"));
        assert!(text.contains("# TYPE ringcast_exec_children gauge\nringcast_exec_children 2\n"));
        assert!(text.contains(
            "# TYPE ringcast_exec_restarts_total counter\nringcast_exec_restarts_total 5\n"
        ));
        assert!(text.contains("ringcast_exec_refusals_total 1\n"));
        assert!(text.contains("ringcast_metrics_other_streams 0\n"));
        assert!(
            !text.contains("ringcast_stream_players{"),
            "no streams, no per-stream series: {text}"
        );
    }

    #[test]
    fn streams_have_series_by_app_and_name_and_the_rest_sum_as_other() {
        let text = scrape_text(&stream_series());
        let cam = "{app=\"live\",stream=\"cam\"}";
        let odd = "{app=\"live\",stream=\"say \\\"hi\\\"\\\\now\\n\"}";
        let other = "{app=\"_other\",stream=\"_other\"}";
        for line in [
            format!("ringcast_stream_players{cam} 5\n"),
            format!("ringcast_stream_players{odd} 2\n"),
            format!("ringcast_stream_players{other} 1\n"),
            format!("ringcast_stream_up{cam} 1\n"),
            format!("ringcast_stream_up{odd} 0\n"),
            format!("ringcast_stream_up{other} 2\n"),
            format!("ringcast_stream_received_bytes_total{cam} 5000\n"),
            format!("ringcast_stream_received_bytes_total{other} 900\n"),
            format!("ringcast_stream_received_frames_total{cam} 40\n"),
            format!("ringcast_stream_received_frames_total{other} 9\n"),
            "ringcast_stream_source_info{app=\"live\",stream=\"cam\",source=\"publisher\",shard=\"1\"} 1\n".into(),
            "ringcast_metrics_other_streams 3\n".into(),
        ] {
            assert!(text.contains(&line), "{line} in\n{text}");
        }
        assert!(
            !text.contains(&format!("ringcast_stream_received_bytes_total{odd}")),
            "no source, no count: {text}"
        );
        assert_eq!(text.matches("ringcast_stream_source_info{").count(), 1);
    }

    #[test]
    fn process_metrics_are_in_base_units() {
        let text = scrape_text(&StreamSeries::default());
        for line in [
            "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 1.25\n",
            "process_resident_memory_bytes 4096\n",
            "process_virtual_memory_bytes 8192\n",
            "process_open_fds 7\n",
            "process_max_fds 1024\n",
            "process_start_time_seconds 1700000000.5\n",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
    }

    #[test]
    fn the_exposition_is_well_formed() {
        let text = scrape_text(&stream_series());
        let mut typed = std::collections::HashSet::new();
        let mut last = String::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(typed.insert(name.to_owned()), "{name} typed twice");
                assert!(kind == "gauge" || kind == "counter");
                assert_eq!(kind == "counter", name.ends_with("_total"), "{name}");
                assert!(name.starts_with("ringcast_") || name.starts_with("process_"));
                last = name.to_owned();
            } else if !line.starts_with("# HELP ") {
                let (series, value) = line.rsplit_once(' ').unwrap();
                let name = series.split('{').next().unwrap();
                assert_eq!(name, last, "{name} right under its TYPE line");
                value.parse::<f64>().unwrap();
            }
        }
        // Build info, uptime, shards, two about /metrics itself, two of
        // Build info, uptime, shards, two about /metrics itself, two of
        // the HLS windows, three of exec, two by protocol, the per-stream
        // ones, six of the process.
        let expected = SHARD_METRICS.len() + STREAM_METRICS.len() + 1 + 18;
        assert_eq!(typed.len(), expected);
    }
}
