//! Per-shard counters. Each is written by its own shard alone (a relaxed
//! load and store, no read-modify-write contention) and read by whoever
//! wants a snapshot: the control thread reads them directly for `/metrics`
//! and the admin API, so reading them costs the shards nothing (a
//! scrape's per-stream series are a question to each shard, as
//! `/api/v1/streams` is).
//!
//! Every way a peer can hurt the server is counted here once per event,
//! and logged within a budget per connection and per shard
//! ([`super::logs`]: a few lines, then counts in a summary and on the
//! close line), never once per byte or per message: a flood must not
//! become a flood of log lines.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::relay::Totals;

/// A counter with a single writer.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Only the owning shard calls this, so load + store cannot
    /// lose an update.
    pub fn add(&self, n: u64) {
        let v = self.0.load(Ordering::Relaxed);
        self.0.store(v.wrapping_add(n), Ordering::Relaxed);
    }

    pub fn sub(&self, n: u64) {
        let v = self.0.load(Ordering::Relaxed);
        self.0.store(v.saturating_sub(n), Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Declares the counters once: [`ShardStats`] (live, one [`Counter`]
/// each), [`ShardSnapshot`] (a copy) and the sum of snapshots.
macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// What one shard counts.
        #[derive(Debug, Default)]
        pub struct ShardStats {
            $($(#[$doc])* pub $name: Counter,)*
        }

        /// A copy of one shard's counters (or of several added up). Its
        /// field names are the admin API's (`/api/v1/shards`).
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
        pub struct ShardSnapshot {
            $($(#[$doc])* pub $name: u64,)*
        }

        impl ShardStats {
            pub fn snapshot(&self) -> ShardSnapshot {
                ShardSnapshot {
                    $($name: self.$name.get(),)*
                }
            }
        }

        impl std::iter::Sum for ShardSnapshot {
            /// The whole server's counters from each shard's.
            fn sum<I: Iterator<Item = ShardSnapshot>>(shards: I) -> ShardSnapshot {
                shards.fold(ShardSnapshot::default(), |total, s| ShardSnapshot {
                    $($name: total.$name.wrapping_add(s.$name),)*
                })
            }
        }
    };
}

counters! {
    // Gauges.
    /// Connections open now.
    connections,
    /// Streams being published from this shard now.
    publishers,
    /// Streams being played on this shard now.
    players,
    /// Of `players`, those over RTMP, HTTP-FLV and WebSocket-FLV; and
    /// HLS sessions (an address and a stream, see `shard::hls`), which
    /// `players` does not count.
    players_rtmp,
    players_http_flv,
    players_ws_flv,
    players_hls,
    /// Streams this shard pulls from an origin now.
    relay_pulls,
    /// 1 while this shard drains (SIGTERM, `POST /api/v1/drain`): its
    /// listeners are closed and it waits for its publishers and players to
    /// leave.
    draining,
    /// Streams recorded to files on this shard now.
    recordings,
    // Totals.
    connections_accepted,
    /// Connections closed at once because the shard was at its share of
    /// `connections_max`, the address at `connections_per_ip_max`, or the
    /// shard shutting down.
    connections_refused,
    bytes_in,
    bytes_out,
    /// Of `bytes_out`, those to RTMP connections, HTTP-FLV and
    /// WebSocket-FLV players.
    bytes_out_rtmp,
    bytes_out_http_flv,
    bytes_out_ws_flv,
    bytes_out_hls,
    /// HLS requests answered (playlists, init segments, segments, parts),
    /// whatever the status.
    hls_requests,
    /// HLS requests that waited for a part or playlist not made yet
    /// (LL-HLS blocking reloads and preload hints).
    hls_blocked,
    /// HLS requests refused for what they asked: malformed or
    /// out-of-range `_HLS_msn`/`_HLS_part`, an address over
    /// `hls.blocked_per_ip_max`.
    hls_refusals,
    /// Audio, video and data messages received from publishers and pulls.
    frames_in,
    /// Messages queued to players (live frames and each joiner's start).
    frames_out,
    /// Video frames a slow player did not get (dropped until a keyframe).
    frames_dropped,
    /// Players disconnected because they could not keep up.
    slow_disconnects,
    /// Handshakes that failed: a wrong version byte, garbage, an HTTP
    /// request on the RTMP port.
    handshake_failures,
    /// Connections that did not finish the handshake and `connect` in time
    /// (silent peers, handshakes that stop halfway, slowloris).
    handshake_timeouts,
    /// Connected peers silent past the idle timeout.
    idle_timeouts,
    /// Connections closed for breaking the protocol after the handshake:
    /// malformed or over-limit chunks and messages, illegal commands, or
    /// [`crate::limits::REFUSALS_IN_A_ROW_MAX`] commands refused in a row
    /// (each of those refusals is counted in `command_errors` or
    /// `auth_denials` too).
    protocol_errors,
    /// Commands refused with `_error` (or dropped, when sent as a
    /// notification that expects no answer); the connection goes on.
    command_errors,
    /// Connections ended by a socket error (a reset, a broken pipe).
    io_errors,
    /// Connects, publishes and plays refused by access rules or hooks.
    auth_denials,
    /// Hook calls that got no usable answer (timeout, no connection).
    hook_failures,
    /// Publishes refused because `publishers_max` or `streams_max` was
    /// reached.
    limit_refusals,
    /// Frames not sent to a shard that lagged too far behind.
    mesh_frames_dropped,
    /// Relay connections made again after one that worked dropped.
    relay_reconnects,
    /// Pulls that moved to another origin than the one in use.
    relay_failovers,
    /// Connections closed through the admin API.
    kicks,
    /// HTTP requests refused for what they were (malformed, too large, a
    /// method or path we do not serve), and WebSocket players closed for
    /// breaking RFC 6455 or sending too much.
    http_refusals,
    /// TLS connections closed by their TLS layer: a handshake that could
    /// not complete (garbage, plain RTMP or HTTP, no common cipher, a
    /// client alert), a forbidden record, a second renegotiation.
    tls_failures,
    /// TLS handshakes that came to a plain RTMP or HTTP port.
    tls_on_plain_port,
    /// Recording files completed, and their bytes.
    record_files,
    record_bytes,
    /// Recordings stopped because the recorder thread had
    /// `RECORD_QUEUE_BYTES_MAX` of their frames not yet written (a slow
    /// disk); the streams went on.
    record_dropped,
    /// Recordings stopped by a failed write (a full disk, a file size
    /// limit, a missing permission).
    record_errors,
}

/// What a connection speaks, as counted here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Rtmp,
    HttpFlv,
    WsFlv,
    Hls,
}

impl Protocol {
    /// Every protocol, in the order of [`ShardSnapshot::by_protocol`].
    pub const ALL: [Protocol; 4] = [
        Protocol::Rtmp,
        Protocol::HttpFlv,
        Protocol::WsFlv,
        Protocol::Hls,
    ];

    /// As the admin API, hooks and metrics name it.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Rtmp => "rtmp",
            Protocol::HttpFlv => "http-flv",
            Protocol::WsFlv => "ws-flv",
            Protocol::Hls => "hls",
        }
    }
}

impl ShardStats {
    /// Players over `protocol`.
    pub fn players_by_protocol(&self, protocol: Protocol) -> &Counter {
        match protocol {
            Protocol::Rtmp => &self.players_rtmp,
            Protocol::HttpFlv => &self.players_http_flv,
            Protocol::WsFlv => &self.players_ws_flv,
            Protocol::Hls => &self.players_hls,
        }
    }

    /// Bytes written to connections over `protocol`.
    pub fn bytes_out_by_protocol(&self, protocol: Protocol) -> &Counter {
        match protocol {
            Protocol::Rtmp => &self.bytes_out_rtmp,
            Protocol::HttpFlv => &self.bytes_out_http_flv,
            Protocol::WsFlv => &self.bytes_out_ws_flv,
            Protocol::Hls => &self.bytes_out_hls,
        }
    }
}

impl ShardSnapshot {
    /// Per protocol of [`Protocol::ALL`], in order: (players, bytes sent).
    pub fn by_protocol(&self) -> [(u64, u64); 4] {
        [
            (self.players_rtmp, self.bytes_out_rtmp),
            (self.players_http_flv, self.bytes_out_http_flv),
            (self.players_ws_flv, self.bytes_out_ws_flv),
            (self.players_hls, self.bytes_out_hls),
        ]
    }
}

/// Relays add their reconnects and failovers to their shard's counters,
/// which outlive them.
impl Totals for ShardStats {
    fn reconnected(&self) {
        self.relay_reconnects.add(1);
    }

    fn failed_over(&self) {
        self.relay_failovers.add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_add_up_and_serialize_by_name() {
        let a = ShardStats::default();
        a.players.add(3);
        a.bytes_out.add(10);
        let b = ShardStats::default();
        b.players.add(2);
        b.players.sub(5);
        let total: ShardSnapshot = [a.snapshot(), b.snapshot()].into_iter().sum();
        assert_eq!(total.players, 3, "a gauge never goes below zero");
        assert_eq!(total.bytes_out, 10);
        let json = serde_json::to_value(total).unwrap();
        assert_eq!(json["players"], 3);
        assert_eq!(json["auth_denials"], 0);
    }
}
