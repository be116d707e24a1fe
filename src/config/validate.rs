//! Validation: every range in one place, each with its reason, and the
//! relations between keys. Errors name the key as written in the file.

use std::borrow::Cow;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use super::admin::check_origin;
use super::cpus::{CPU_ID_MAX, format_cpu_list};
use super::{AccessPolicy, Config, Invalid, RecordSettings, StreamConfig};
use crate::limits;
use crate::protocol::url::RtmpUrl;

/// An inclusive range of allowed values for the key named as in the file.
#[derive(Clone, Copy, Debug)]
pub(super) struct Bound {
    key: &'static str,
    min: u64,
    max: u64,
}

/// Addresses in `listen`. Why: each costs one listening socket per shard,
/// so 64 addresses × 1024 shards is already 64 Ki descriptors.
const LISTEN_ADDRESSES_MAX: usize = 64;

/// Why: at least one shard must run; past `CPU_SETSIZE` (1024) shards could
/// not each have a CPU of their own.
pub(super) const SHARDS: Bound = Bound {
    key: "shards",
    min: 1,
    max: CPU_ID_MAX as u64 + 1,
};

/// Why: 128 is the size every connection starts with (RTMP §5.4.1), and
/// smaller would only add header bytes to what we send; no message is
/// longer than the 24-bit length field allows, so a larger chunk could
/// never fill and would change nothing.
pub(super) const CHUNK_SIZE: Bound = Bound {
    key: "chunk_size",
    min: limits::CHUNK_SIZE_INITIAL as u64,
    max: limits::MESSAGE_SIZE_PROTOCOL_MAX as u64,
};

/// Why: 0 means no cap; more than the server cap is no cap either, but
/// past 16 Mi it is a typo.
pub(super) const CONNECTIONS_PER_IP_MAX: Bound = Bound {
    key: "connections_per_ip_max",
    min: 0,
    max: 1 << 24,
};

/// Why: 0 means no cap; each publisher is a stream, so past 16 Mi it is a
/// typo.
pub(super) const PUBLISHERS_MAX: Bound = Bound {
    key: "publishers_max",
    min: 0,
    max: 1 << 24,
};

/// Why: 0 means no cap; past 16 Mi streams it is a typo.
pub(super) const STREAMS_MAX: Bound = Bound {
    key: "streams_max",
    min: 0,
    max: 1 << 24,
};

/// Why: 0 leaves only the `_other` sum; the most is
/// [`limits::METRICS_STREAMS_MAX`]'s reason.
pub(super) const METRICS_STREAMS_MAX: Bound = Bound {
    key: "metrics_streams_max",
    min: 0,
    max: limits::METRICS_STREAMS_MAX as u64,
};

/// Why: 0 answers at once (an origin-less server); past a minute a player
/// waiting on nothing holds a connection for nothing.
pub(super) const PLAY_WAIT_MS: Bound = Bound {
    key: "http.play_wait_ms",
    min: 0,
    max: 60_000,
};

/// Why: below half a second a segment is mostly headers and requests;
/// past 20 s a player waits that long to start.
pub(super) const HLS_SEGMENT_MS: Bound = Bound {
    key: "hls.segment_ms",
    min: 500,
    max: 20_000,
};

/// Why: below 100 ms parts are a few frames and a player's requests
/// dominate; LL-HLS parts past 2 s are segments by another name.
pub(super) const HLS_PART_MS: Bound = Bound {
    key: "hls.part_ms",
    min: 100,
    max: 2_000,
};

/// Why: RFC 8216bis 6.2.2 asks for three target durations at least; past
/// 30 the window is a DVR, which this is not.
pub(super) const HLS_SEGMENTS: Bound = Bound {
    key: "hls.segments",
    min: 3,
    max: 30,
};

/// Why: under a second a republishing encoder loses its players' window;
/// past an hour the memory is held for nobody.
pub(super) const HLS_IDLE_MS: Bound = Bound {
    key: "hls.idle_ms",
    min: 1_000,
    max: 3_600_000,
};

/// Why: one blocked request at least, or no LL-HLS player is served; past
/// 1 Mi it is a typo.
pub(super) const HLS_BLOCKED_PER_IP_MAX: Bound = Bound {
    key: "hls.blocked_per_ip_max",
    min: 1,
    max: 1 << 20,
};

/// Why: a pull is the only way an edge serves a stream, so at least one;
/// each holds a descriptor counted in the open-file budget, and past
/// 1 Mi it is a typo.
pub(super) const PULLS_MAX: Bound = Bound {
    key: "relay.pulls_max",
    min: 1,
    max: 1 << 20,
};

/// Why: a player needs one pull; more than `relay.pulls_max` is that cap
/// (a relation, below).
pub(super) const PULLS_PER_CONNECTION_MAX: Bound = Bound {
    key: "relay.pulls_per_connection_max",
    min: 1,
    max: 1 << 20,
};

/// Why: 0 would fail every call before it is sent; past a minute a waiting
/// client has long given up (players time out in seconds).
pub(super) const HOOK_TIMEOUT_MS: Bound = Bound {
    key: "access.hook_timeout_ms",
    min: 1,
    max: 60_000,
};

/// Why: every publish and play asks `on_update` once per interval, so
/// under a second a few thousand clients would keep the hook thread's
/// calls in flight full; past a day a refusal would come too late to
/// matter.
pub(super) const UPDATE_INTERVAL_MS: Bound = Bound {
    key: "access.update_interval_ms",
    min: 1_000,
    max: 86_400_000,
};

/// Why: the server needs at least one connection; 16 Mi connections at
/// ~70 KiB each (a 64 KiB read buffer plus session state) would be 1 TiB,
/// so anything above is a typo.
pub(super) const CONNECTIONS_MAX: Bound = Bound {
    key: "connections_max",
    min: 1,
    max: 1 << 24,
};

/// Why: `connect` with its command object and `@setDataFrame` metadata from
/// real encoders fit in 4 KiB, so a smaller cap refuses clients before any
/// media is sent; the top is the 24-bit length field (RTMP §5.3.1.2).
pub(super) const MESSAGE_SIZE_MAX: Bound = Bound {
    key: "limits.message_size_max",
    min: 4096,
    max: limits::MESSAGE_SIZE_PROTOCOL_MAX as u64,
};

/// Why: must hold one maximal message (checked as a relation below); the
/// top is what the `u32` counter holds.
pub(super) const PARTIAL_BYTES_MAX: Bound = Bound {
    key: "limits.partial_bytes_max",
    min: 4096,
    max: u32::MAX as u64,
};

/// Why: a publisher uses the control stream plus audio, video and data
/// streams (ffmpeg: up to 8); chunk stream ids 2..=65599 exist on the wire,
/// 65598 of them.
pub(super) const CHUNK_STREAMS_MAX: Bound = Bound {
    key: "limits.chunk_streams_max",
    min: 8,
    max: 65_598,
};

/// Why: publishing or playing needs one stream; players that switch
/// streams open a few, and past 1024 small records it is a typo.
pub(super) const STREAMS_PER_CONNECTION_MAX: Bound = Bound {
    key: "limits.streams_per_connection_max",
    min: 1,
    max: 1024,
};

/// Why: 0 disables the cache (new players wait for the next keyframe);
/// 1 GiB is 80 s of 100 Mbit/s video, and the cache is held per stream per
/// shard, so more is a typo.
pub(super) const GOP_CACHE_BYTES_MAX: Bound = Bound {
    key: "stream.gop_cache_bytes_max",
    min: 0,
    max: 1 << 30,
};

/// Why: 0 disables the cache; a cache longer than 10 minutes would start
/// new players that far behind live.
pub(super) const GOP_CACHE_DURATION_MS_MAX: Bound = Bound {
    key: "stream.gop_cache_duration_ms_max",
    min: 0,
    max: 600_000,
};

/// Why: must hold the whole GOP cache (a relation, below); frames are
/// shared by all players, so 2 GiB is per stream and more is a typo.
pub(super) const QUEUE_BYTES_MAX: Bound = Bound {
    key: "player.queue_bytes_max",
    min: 1,
    max: 1 << 31,
};

/// Why: below a page a `writev` moves less than one TCP segment and the
/// system call costs more than the copy; at most the queue (a relation).
pub(super) const WRITE_BATCH_BYTES_MAX: Bound = Bound {
    key: "player.write_batch_bytes_max",
    min: 4096,
    max: 1 << 31,
};

/// Why: 0 is the default (a write per video frame); past
/// [`WRITE_WINDOW_MS_MAX`](crate::media::WRITE_WINDOW_MS_MAX) the added
/// latency is what players notice.
pub(super) const WRITE_WINDOW_MS: Bound = Bound {
    key: "player.write_window_ms",
    min: 0,
    max: crate::media::WRITE_WINDOW_MS_MAX,
};

/// Why: 0 is no limit; past a day a file is as long as no limit would
/// make it, and the bound keeps a unit mix-up (µs written for ms) out.
/// Between 0 and [`RECORD_DURATION_MS_MIN`] it is refused too.
pub(super) const RECORD_MAX_DURATION_MS: Bound = Bound {
    key: "record.max_duration_ms",
    min: 0,
    max: 86_400_000,
};

/// Why: files shorter than a second are a GOP or less, so every keyframe
/// would start a file.
const RECORD_DURATION_MS_MIN: u64 = 1_000;

/// Why: 0 is no limit; past 1 TiB a file is as large as no limit would
/// make it. Between 0 and [`RECORD_BYTES_MIN`] it is refused too.
pub(super) const RECORD_MAX_BYTES: Bound = Bound {
    key: "record.max_bytes",
    min: 0,
    max: 1 << 40,
};

/// Why: an FLV file's head (its reserved `onMetaData`, ~40 KiB) would be
/// most of a smaller one, and every keyframe would start a file.
const RECORD_BYTES_MIN: u64 = 256 * 1024;

/// Why: 0 would close publishers as they are asked to move; past ten
/// minutes an orchestrator has long since killed the process.
pub(super) const DRAIN_MS: Bound = Bound {
    key: "drain_ms",
    min: 1,
    max: 600_000,
};

/// Every timeout. Why: 0 would close every connection at once; a day is
/// no timeout at all, and the bound keeps timer arithmetic far from
/// overflow and catches a unit mix-up (µs written for ms).
pub(super) const fn timeout_ms(key: &'static str) -> Bound {
    Bound {
        key,
        min: 1,
        max: 86_400_000,
    }
}

/// Two listening addresses that would take the same port (a fixed one: 0
/// is the kernel's choice).
fn same_port(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port()
        && a.port() != 0
        && a.is_ipv4() == b.is_ipv4()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

impl Config {
    /// Checks every value against its range and the relations between
    /// keys; the first violation is returned, named as in the file.
    pub fn validate(&self) -> Result<(), Invalid> {
        self.validate_top()?;
        self.validate_limits()?;
        self.validate_delivery()?;
        self.validate_timeouts()?;
        self.validate_relay()?;
        self.validate_access()?;
        self.validate_record()
    }

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
        CONNECTIONS_MAX.check(self.connections_max as u64)?;
        CONNECTIONS_PER_IP_MAX.check(self.connections_per_ip_max as u64)?;
        PUBLISHERS_MAX.check(self.publishers_max as u64)?;
        STREAMS_MAX.check(self.streams_max as u64)?;
        METRICS_STREAMS_MAX.check(self.metrics_streams_max as u64)?;
        self.validate_http()?;
        self.validate_tls()?;
        self.validate_admin()
    }

    /// Why: the same checks as the plain listeners, and a port shared with
    /// any of them would split its connections between two protocols. A
    /// TLS listener without a certificate could complete no handshake.
    fn validate_tls(&self) -> Result<(), Invalid> {
        let tls = &self.tls;
        let others: [(&[SocketAddr], &str); 2] = [
            (&self.listen, "listen address"),
            (&self.http.listen, "http_listen address"),
        ];
        for (key, listen) in [
            ("tls.listen", &tls.listen),
            ("tls.http_listen", &tls.http_listen),
        ] {
            let quoted: Vec<String> = listen.iter().map(|a| format!("\"{a}\"")).collect();
            let fail = |rule: String| Invalid {
                key: key.into(),
                value: format!("[{}]", quoted.join(", ")),
                rule,
            };
            if listen.len() > LISTEN_ADDRESSES_MAX {
                return Err(fail(format!(
                    "lists more than {LISTEN_ADDRESSES_MAX} addresses"
                )));
            }
            if let Some(twice) = first_duplicate(listen) {
                return Err(fail(format!("lists {twice} more than once")));
            }
            if !listen.is_empty() && tls.server.is_none() {
                return Err(fail(
                    "needs a certificate: set tls.cert and tls.key (or --tls-cert and --tls-key)"
                        .into(),
                ));
            }
            for addr in listen {
                let clash = (others.iter()).find_map(|(other, what)| {
                    other
                        .iter()
                        .find(|o| same_port(**o, *addr))
                        .map(|o| (o, *what))
                });
                if let Some((other, what)) = clash {
                    return Err(fail(format!(
                        "uses the port of {what} {other}; give TLS a port of its own"
                    )));
                }
            }
        }
        if let Some(addr) =
            (tls.http_listen.iter()).find(|h| tls.listen.iter().any(|l| same_port(*l, **h)))
        {
            return Err(Invalid {
                key: "tls.http_listen".into(),
                value: format!("\"{addr}\""),
                rule:
                    "uses the port of a tls.listen address; give HTTPS players a port of their own"
                        .into(),
            });
        }
        Ok(())
    }

    /// Why: the same checks as `listen`; a media port shared with RTMP or
    /// the admin API would fail at bind time with a less helpful message.
    /// The origin and the page path go into response headers and URL
    /// matching as written, so they must be what those allow.
    fn validate_http(&self) -> Result<(), Invalid> {
        let http = &self.http;
        let fail = |key: &'static str, value: String, rule: String| Invalid {
            key: key.into(),
            value,
            rule,
        };
        let listen_value = || {
            let quoted: Vec<String> = http.listen.iter().map(|a| format!("\"{a}\"")).collect();
            format!("[{}]", quoted.join(", "))
        };
        if http.listen.len() > LISTEN_ADDRESSES_MAX {
            let rule = format!("lists more than {LISTEN_ADDRESSES_MAX} addresses");
            return Err(fail("http_listen", listen_value(), rule));
        }
        if let Some(twice) = first_duplicate(&http.listen) {
            let rule = format!("lists {twice} more than once");
            return Err(fail("http_listen", listen_value(), rule));
        }
        if let Some((addr, rtmp)) = (http.listen.iter()).find_map(|addr| {
            self.listen
                .iter()
                .find(|l| same_port(**l, *addr))
                .map(|l| (addr, l))
        }) {
            let rule = format!(
                "uses the port of listen address {rtmp}; give HTTP players a port of their own"
            );
            return Err(fail("http_listen", format!("\"{addr}\""), rule));
        }
        let origin = &http.allow_origin;
        let origin_ok = origin == "*" || check_origin(origin).is_ok();
        if !origin_ok {
            let rule = "must be \"*\" or an origin like \"https://example.com\"".into();
            return Err(fail("http.allow_origin", format!("{origin:?}"), rule));
        }
        if let Some(page) = &http.player_page {
            let ok = page.starts_with('/')
                && page.ends_with('/')
                && page.len() <= 256
                && !page.contains("//")
                && page
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/-_.".contains(&b))
                && !page.split('/').any(|part| part == "..");
            if !ok {
                let rule = "must be \"off\" or a path like \"/\" or \"/player/\" (letters, \
                            digits, - _ . between slashes)"
                    .into();
                return Err(fail("http.player_page", format!("{page:?}"), rule));
            }
        }
        PLAY_WAIT_MS.check_ms(http.play_wait)
    }

    /// Why: the admin API and RTMP on one port would fail at bind time
    /// with a less helpful message (or, with SO_REUSEPORT, split
    /// connections between them). Origins must be what a browser sends,
    /// or they would never match.
    fn validate_admin(&self) -> Result<(), Invalid> {
        if self.admin_origins.len() > limits::ADMIN_ORIGINS_MAX {
            return Err(Invalid {
                key: "admin_origins".into(),
                value: format!("[{} origins]", self.admin_origins.len()),
                rule: format!("lists more than {} origins", limits::ADMIN_ORIGINS_MAX),
            });
        }
        for origin in &self.admin_origins {
            check_origin(origin)?;
        }
        let Some(admin) = self.admin else {
            return Ok(());
        };
        let clash = |listen: &[SocketAddr], what: &str| {
            listen
                .iter()
                .find(|l| same_port(**l, admin))
                .map(|l| Invalid {
                    key: "admin".into(),
                    value: format!("\"{admin}\""),
                    rule: format!(
                        "uses the port of {what} {l}; give the admin API a port of its own"
                    ),
                })
        };
        match clash(&self.listen, "listen address")
            .or_else(|| clash(&self.http.listen, "http_listen address"))
            .or_else(|| clash(&self.tls.listen, "tls.listen address"))
            .or_else(|| clash(&self.tls.http_listen, "tls.http_listen address"))
        {
            Some(invalid) => Err(invalid),
            None => Ok(()),
        }
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
        let player = &self.player;
        QUEUE_BYTES_MAX.check(player.queue_bytes_max as u64)?;
        timeout_ms("player.slow_disconnect_ms").check_ms(player.slow_disconnect_after)?;
        WRITE_BATCH_BYTES_MAX.check(player.write_batch_bytes_max as u64)?;
        WRITE_WINDOW_MS.check_ms(player.write_window)?;
        // Why: a batch is gathered from the queue; a larger one never fills.
        relation(
            WRITE_BATCH_BYTES_MAX,
            player.write_batch_bytes_max as u64,
            Relation::AtMost,
            QUEUE_BYTES_MAX,
            player.queue_bytes_max as u64,
        )?;
        self.validate_hls()?;
        self.validate_stream(&self.stream)?;
        for (app, stream) in &self.app_streams {
            self.validate_stream(stream).map_err(|e| e.in_app(app))?;
        }
        Ok(())
    }

    fn validate_hls(&self) -> Result<(), Invalid> {
        let hls = &self.hls;
        HLS_SEGMENT_MS.check_ms(hls.segment)?;
        HLS_PART_MS.check_ms(hls.part)?;
        HLS_SEGMENTS.check(hls.segments as u64)?;
        HLS_IDLE_MS.check_ms(hls.idle)?;
        HLS_BLOCKED_PER_IP_MAX.check(hls.blocked_per_ip_max as u64)?;
        // Why: a segment is made of parts; a part longer than the segment
        // target would make every segment one part.
        relation(
            HLS_PART_MS,
            u64::try_from(hls.part.as_millis()).unwrap_or(u64::MAX),
            Relation::AtMost,
            HLS_SEGMENT_MS,
            u64::try_from(hls.segment.as_millis()).unwrap_or(u64::MAX),
        )
    }

    fn validate_stream(&self, stream: &StreamConfig) -> Result<(), Invalid> {
        GOP_CACHE_BYTES_MAX.check(stream.gop_cache_bytes_max as u64)?;
        GOP_CACHE_DURATION_MS_MAX.check_ms(stream.gop_cache_duration_max)?;
        // Why: a new player is sent the whole GOP cache at once; a queue
        // that cannot hold it would drop video before the first frame.
        relation(
            GOP_CACHE_BYTES_MAX,
            stream.gop_cache_bytes_max as u64,
            Relation::LessThan,
            QUEUE_BYTES_MAX,
            self.player.queue_bytes_max as u64,
        )
    }

    fn validate_timeouts(&self) -> Result<(), Invalid> {
        let timeouts = &self.timeouts;
        timeout_ms("timeouts.handshake_ms").check_ms(timeouts.handshake)?;
        timeout_ms("timeouts.idle_ms").check_ms(timeouts.idle)?;
        timeout_ms("timeouts.shutdown_ms").check_ms(timeouts.shutdown)?;
        self.validate_drain()
    }

    /// Why: publishers are sent the redirect to connect to, so it must
    /// name a port they can reach (the host is checked by parsing).
    fn validate_drain(&self) -> Result<(), Invalid> {
        DRAIN_MS.check_ms(self.drain.wait)?;
        match &self.drain.redirect {
            Some(url) if url.port == 0 => Err(Invalid {
                key: "drain_redirect".into(),
                value: format!("\"{url}\""),
                rule: "must name a port publishers can connect to, not 0".into(),
            }),
            _ => Ok(()),
        }
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
        timeout_ms("relay.backoff_ms_max").check_ms(timing.backoff_max)?;
        timeout_ms("relay.ping_ms").check_ms(timing.ping)?;
        PULLS_MAX.check(relay.pulls_max as u64)?;
        PULLS_PER_CONNECTION_MAX.check(relay.pulls_per_connection_max as u64)?;
        // Why: one connection cannot hold more pulls than the server.
        relation(
            PULLS_PER_CONNECTION_MAX,
            relay.pulls_per_connection_max as u64,
            Relation::AtMost,
            PULLS_MAX,
            relay.pulls_max as u64,
        )
    }
}

impl Config {
    fn validate_access(&self) -> Result<(), Invalid> {
        HOOK_TIMEOUT_MS.check_ms(self.access.hook_timeout)?;
        UPDATE_INTERVAL_MS.check_ms(self.access.update_interval)?;
        validate_policy(&self.access.default)?;
        for (app, policy) in &self.access.apps {
            validate_policy(policy).map_err(|e| e.in_app(app))?;
        }
        Ok(())
    }
}

impl Config {
    fn validate_record(&self) -> Result<(), Invalid> {
        validate_recording(&self.record.default)?;
        for (app, record) in &self.record.apps {
            validate_recording(record).map_err(|e| e.in_app(app))?;
        }
        Ok(())
    }
}

/// Each limit is 0 (none) or at least its minimum; a file named `.flv` or
/// `.mp4` holds what its name says.
fn validate_recording(record: &RecordSettings) -> Result<(), Invalid> {
    let duration_ms = u64::try_from(record.max_duration.as_millis()).unwrap_or(u64::MAX);
    for (bound, value, min) in [
        (RECORD_MAX_DURATION_MS, duration_ms, RECORD_DURATION_MS_MIN),
        (RECORD_MAX_BYTES, record.max_bytes, RECORD_BYTES_MIN),
    ] {
        bound.check(value)?;
        if value != 0 && value < min {
            return Err(Invalid {
                key: bound.key.into(),
                value: value.to_string(),
                rule: format!("must be 0 (no limit) or at least {min}"),
            });
        }
    }
    match record.path.format_extension() {
        Some(named) if named != record.format => Err(Invalid {
            key: "record.path".into(),
            value: format!("{:?}", record.path.to_string()),
            rule: format!(
                "names .{} files, but record.format is \"{}\": end it in .{}",
                named.name(),
                record.format.name(),
                record.format.name()
            ),
        }),
        _ => Ok(()),
    }
}

/// Why: lists are walked on every publish and play; a key must be
/// something a client can send; each hook URL is a call per event.
fn validate_policy(policy: &AccessPolicy) -> Result<(), Invalid> {
    for (hook, urls) in policy.hooks.each() {
        if urls.len() > limits::HOOK_URLS_MAX {
            return Err(Invalid {
                key: format!("access.{hook}").into(),
                value: format!("{} URLs", urls.len()),
                rule: format!("lists more than {} URLs", limits::HOOK_URLS_MAX),
            });
        }
    }
    for (action, rule) in [("publish", &policy.publish), ("play", &policy.play)] {
        let lists = [
            ("keys", rule.keys.len()),
            ("allow", rule.allow.len()),
            ("deny", rule.deny.len()),
        ];
        for (list, len) in lists {
            if len > limits::ACCESS_LIST_MAX {
                return Err(Invalid {
                    key: format!("access.{action}_{list}").into(),
                    value: format!("{len} entries"),
                    rule: format!("lists more than {}", limits::ACCESS_LIST_MAX),
                });
            }
        }
        let unusable = |key: &&String| {
            key.is_empty() || key.len() > limits::NAME_BYTES_MAX || key.contains(['&', '?', '/'])
        };
        if let Some(key) = rule.keys.iter().find(unusable) {
            return Err(Invalid {
                key: format!("access.{action}_keys").into(),
                value: format!("{key:?}"),
                rule: format!(
                    "is not a key a client can send: 1 to {} bytes without &, ? or /",
                    limits::NAME_BYTES_MAX
                ),
            });
        }
    }
    Ok(())
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
    LessThan,
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
        Relation::LessThan => (value < other_value, "less than"),
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
    pub(super) fn narrow<T: TryFrom<u64>>(self, value: i64) -> Result<T, Invalid> {
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
