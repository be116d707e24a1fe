//! Relays: an edge pulling streams from origins on demand, and published
//! streams pushed onward, both built on the client session over tokio-uring
//! ([`ringcast_client`]).
//!
//! - [`pull`]: when a player asks for a stream nobody publishes here, the
//!   shard where it asked pulls it from an origin chosen by consistent
//!   hashing ([`origins`]) and publishes it locally; other shards' players
//!   subscribe to that shard as to a local publisher. An origin that fails
//!   or drops is replaced by the next in hash order without disconnecting
//!   players; a pull stops a while after its last player left. A pull that
//!   never went live and failed every origin ends, and its players are
//!   told the stream is not found. How many pulls may run is the shard's
//!   and the directory's to bound (`relay.pulls_max`,
//!   `relay.pulls_per_connection_max`).
//! - [`push`]: every stream published here is pushed to each configured
//!   target; a target that drops is reconnected with backoff, and local
//!   players never notice.
//!
//! Either kind of connection that hears nothing for `relay.ping_ms` sends
//! a ping and is dropped if still nothing comes (a push also counts its
//! own writes as signs of life until it pings), and replies queued for the
//! peer are bounded ([`crate::limits::RELAY_REPLY_BACKLOG_BYTES_MAX`]).
//!
//! A relay runs as a task on its shard and reports into that shard
//! through [`PullSink`] or reads from a [`push::Feed`]; its [`Status`] is
//! kept for logs and metrics, and what must outlive it goes to the
//! shard's [`Totals`]. Relays know nothing of the shard beyond these.
//!
//! An `rtmps://` origin or target is spoken to over TLS only, its
//! certificate verified for the URL's host against the public roots and
//! `[tls] ca_file`; a handshake that fails is a failed connection like
//! any other (retried, or the next origin), never a plain one
//! ([`ringcast_client::Connection::open_url`]).
//!
//! Relay URLs carry secrets (a platform's stream key as the push target's
//! stream name, an origin's credentials in a query), so logs and the admin
//! API show them only through [`redacted`].

pub mod origins;
pub mod pull;
pub mod push;

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::time::Duration;

use crate::limits;
use crate::media::StreamKey;
use crate::protocol::url::RtmpUrl;

pub use pull::PullSink;

/// Pull from an origin, or push to a target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Pull,
    Push,
}

/// Where a relay is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Connecting,
    Live,
    /// Waiting before the next attempt.
    Backoff,
    Stopped,
}

/// Where a relay adds what must outlive it: its owner's running totals
/// (the shard's counters), since metrics must never go down when a relay
/// ends and its [`Status`] goes.
pub trait Totals: std::fmt::Debug {
    /// A connection was made again after one that worked dropped.
    fn reconnected(&self);
    /// A pull moved to another origin than the one in use.
    fn failed_over(&self);
}

/// One relay's state and counters, for logs and the admin API. Written
/// only by its own shard. Reconnects and failovers are also added to the
/// [`Totals`] it was given.
#[derive(Debug)]
pub struct Status {
    pub kind: Kind,
    pub stream: StreamKey,
    /// The origin or target in use (or last tried), [`redacted`].
    pub target: RefCell<String>,
    pub state: Cell<State>,
    pub bytes_in: Cell<u64>,
    pub bytes_out: Cell<u64>,
    /// Connections made after the first.
    pub reconnects: Cell<u64>,
    /// Moves to another origin than the one in use.
    pub failovers: Cell<u64>,
    pub last_error: RefCell<Option<String>>,
    totals: Arc<dyn Totals>,
}

impl Status {
    /// A relay of `kind` for `stream`, connecting, that also adds to
    /// `totals`.
    pub fn new(kind: Kind, stream: StreamKey, totals: Arc<dyn Totals>) -> Status {
        Status {
            kind,
            stream,
            target: RefCell::new(String::new()),
            state: Cell::new(State::Connecting),
            bytes_in: Cell::new(0),
            bytes_out: Cell::new(0),
            reconnects: Cell::new(0),
            failovers: Cell::new(0),
            last_error: RefCell::new(None),
            totals,
        }
    }

    /// A connection was made again after one that worked dropped.
    fn reconnected(&self) {
        Status::add(&self.reconnects, 1);
        self.totals.reconnected();
    }

    /// A pull moved to another origin.
    fn failed_over(&self) {
        Status::add(&self.failovers, 1);
        self.totals.failed_over();
    }

    fn add(counter: &Cell<u64>, n: u64) {
        counter.set(counter.get() + n);
    }
}

/// Retry delays: doubling from a least wait (a relay's is
/// [`limits::RELAY_BACKOFF_MS_MIN`]) up to a bound, reset once an attempt
/// works.
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
    min: Duration,
    max: Duration,
}

impl Backoff {
    /// A relay's: from [`limits::RELAY_BACKOFF_MS_MIN`] up to `max`.
    pub(crate) fn new(max: Duration) -> Backoff {
        Backoff::between(Duration::from_millis(limits::RELAY_BACKOFF_MS_MIN), max)
    }

    /// From `min` up to `max`.
    pub(crate) fn between(min: Duration, max: Duration) -> Backoff {
        Backoff {
            next: min,
            min,
            max,
        }
    }

    /// The wait before the next attempt.
    pub(crate) fn next(&mut self) -> Duration {
        let wait = self.next.min(self.max);
        self.next = (self.next * 2).min(self.max);
        wait
    }

    pub(crate) fn reset(&mut self) {
        self.next = self.min;
    }
}

/// `url` for people to read (logs, the admin API): without userinfo or
/// query, and with whatever follows the app masked, since a push target's
/// stream name is often a platform's stream key:
/// `rtmp://a.rtmp.youtube.com:1935/live2/****`.
pub fn redacted(url: &RtmpUrl) -> String {
    // `user:pass@host:port` parses with the userinfo in the host.
    let host = url
        .host
        .rsplit_once('@')
        .map_or(url.host.as_str(), |(_, host)| host);
    let scheme = if url.tls { "rtmps" } else { "rtmp" };
    let mut shown = if host.contains(':') {
        format!("{scheme}://[{host}]:{}", url.port)
    } else {
        format!("{scheme}://{host}:{}", url.port)
    };
    let mut segments = url.path.split('/').filter(|s| !s.is_empty());
    if let Some(app) = segments.next() {
        shown.push('/');
        shown.push_str(app);
    }
    if segments.next().is_some() {
        shown.push_str("/****");
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_urls_keep_host_and_app_and_hide_keys_queries_and_userinfo() {
        let shown = |url: &str| redacted(&RtmpUrl::parse(url).expect("url"));
        let cases = [
            (
                "rtmp://a.rtmp.youtube.com/live2/abcd-efgh-ijkl",
                "rtmp://a.rtmp.youtube.com:1935/live2/****",
            ),
            ("rtmp://o1:1936/live", "rtmp://o1:1936/live"),
            ("rtmp://o1/live?token=s3cret", "rtmp://o1:1935/live"),
            (
                "rtmp://o1/live/{name}?key=s3cret",
                "rtmp://o1:1935/live/****",
            ),
            ("rtmp://o1/app/inst/key", "rtmp://o1:1935/app/****"),
            (
                "rtmp://user:pa55@o1:1935/live/key",
                "rtmp://o1:1935/live/****",
            ),
            ("rtmp://[::1]:1935/live/key", "rtmp://[::1]:1935/live/****"),
            ("rtmp://o1", "rtmp://o1:1935"),
            (
                "rtmps://live-api-s.facebook.com/rtmp/FB-123-abc",
                "rtmps://live-api-s.facebook.com:443/rtmp/****",
            ),
        ];
        for (url, expected) in cases {
            let got = shown(url);
            assert_eq!(got, expected, "{url}");
            for secret in ["abcd", "s3cret", "pa55", "user", "key"] {
                assert!(!got.contains(secret), "{url} shows {secret}: {got}");
            }
        }
    }

    #[test]
    fn backoff_doubles_to_its_bound_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(1000));
        let waits: Vec<u128> = (0..5).map(|_| b.next().as_millis()).collect();
        assert_eq!(waits, vec![250, 500, 1000, 1000, 1000]);
        b.reset();
        assert_eq!(b.next().as_millis(), 250);
        let mut b = Backoff::between(Duration::from_millis(500), Duration::from_millis(1500));
        let waits: Vec<u128> = (0..3).map(|_| b.next().as_millis()).collect();
        assert_eq!(waits, vec![500, 1000, 1500]);
        b.reset();
        assert_eq!(b.next().as_millis(), 500, "reset to its own least wait");
    }
}
