//! `/metrics` in the Prometheus text format 0.0.4: a pure function of the
//! shards' counter snapshots.
//!
//! Names are `ringcast_*`, in base units (bytes, seconds); counters end
//! in `_total`, and rates are PromQL's to take
//! (`rate(ringcast_sent_bytes_total[1m])`). Everything a shard
//! counts carries `shard="N"`, so load per shard is visible and the server
//! total is `sum(ringcast_x)`; no unlabelled total is exported beside them,
//! since it would be counted twice by that sum.

use std::fmt::Write;

use crate::shard::stats::{Protocol, ShardSnapshot};

/// The content type Prometheus expects for this format.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Gauge,
    Counter,
}

/// One per-shard metric: name, type, help, and how to read it.
type ShardMetric = (&'static str, Kind, &'static str, fn(&ShardSnapshot) -> u64);

/// Every per-shard metric, in the order they are written.
const SHARD_METRICS: &[ShardMetric] = &[
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
];

/// What a scrape shows.
#[derive(Debug)]
pub(crate) struct Scrape<'a> {
    pub version: &'a str,
    pub uptime_s: f64,
    /// Per shard, in shard order.
    pub shards: &'a [ShardSnapshot],
}

/// The whole exposition.
pub(crate) fn render(scrape: &Scrape<'_>) -> String {
    let mut out = String::with_capacity(8192);
    header(
        &mut out,
        "ringcast_build_info",
        Kind::Gauge,
        "Version of the running server.",
    );
    let _ = writeln!(
        out,
        "ringcast_build_info{{version=\"{}\"}} 1",
        scrape.version
    );
    header(
        &mut out,
        "ringcast_uptime_seconds",
        Kind::Gauge,
        "Seconds since start.",
    );
    let _ = writeln!(out, "ringcast_uptime_seconds {:.3}", scrape.uptime_s);
    header(
        &mut out,
        "ringcast_shards",
        Kind::Gauge,
        "Shards (reactor threads).",
    );
    let _ = writeln!(out, "ringcast_shards {}", scrape.shards.len());
    for &(name, kind, help, read) in SHARD_METRICS {
        header(&mut out, name, kind, help);
        for (shard, snapshot) in scrape.shards.iter().enumerate() {
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
        header(&mut out, name, kind, help);
        for (shard, snapshot) in scrape.shards.iter().enumerate() {
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
    out
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
    use super::*;

    fn scrape_text() -> String {
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
        })
    }

    #[test]
    fn every_metric_has_help_and_type_and_a_value_per_shard() {
        let text = scrape_text();
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
    }

    #[test]
    fn the_exposition_is_well_formed() {
        let text = scrape_text();
        let mut typed = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(typed.insert(name.to_owned()), "{name} typed twice");
                assert!(kind == "gauge" || kind == "counter");
                assert_eq!(kind == "counter", name.ends_with("_total"), "{name}");
                assert!(name.starts_with("ringcast_"));
            } else if !line.starts_with("# HELP ") {
                let (series, value) = line.rsplit_once(' ').unwrap();
                let name = series.split('{').next().unwrap();
                assert!(typed.contains(name), "{name} has a TYPE line before it");
                value.parse::<f64>().unwrap();
            }
        }
        // Build info, uptime, shards, two by protocol.
        assert_eq!(typed.len(), SHARD_METRICS.len() + 5);
    }
}
