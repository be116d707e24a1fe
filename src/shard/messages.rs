//! Everything that travels to a shard: messages between shards (the
//! stream protocol is the router's, [`StreamMessage`]), and the control
//! thread's queries with the reports that answer them. Plain data, in one
//! place below every handler: the shard's modules (`mesh` carries these,
//! `driver` and `query` act on them) and the admin API depend on this
//! module, and it on nothing of theirs.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, oneshot};

use crate::config::Config;
use crate::media::{StreamInfo, StreamKey};
use crate::protocol::url::RtmpUrl;
use crate::record::Note;
use crate::relay;
pub use crate::router::{Role, ShardId, StreamMessage};

/// What a shard's inbox carries.
#[derive(Debug)]
pub enum ShardMessage {
    /// About a stream, from another shard's router to this one's.
    Stream(StreamMessage),
    /// The control thread asks (admin API). `permit` is held until the
    /// shard has answered: it bounds the queries waiting in one inbox, so
    /// a stuck shard cannot make them pile up.
    Query {
        query: Query,
        permit: OwnedSemaphorePermit,
    },
    /// New settings (SIGHUP or the admin API); what cannot change without
    /// a restart is already set back to what runs.
    Reload(Arc<Config>),
    /// Begin a maintenance drain: stop accepting (close the listeners),
    /// ask the publishers that can move to (to `redirect`, see
    /// [`crate::config::DrainConfig::redirect`]), let players go as their
    /// stream's publisher leaves; answer what was there through `reply`.
    Drain {
        redirect: Option<RtmpUrl>,
        reply: std::sync::mpsc::Sender<DrainReport>,
    },
    /// The HLS window of a stream changed, and requests here wait for it.
    HlsUpdated(StreamKey),
    /// The recorder thread about a recording of this shard.
    Recorded(Note),
    /// Stop accepting, tell players, close.
    Shutdown,
}

/// What one shard held when its drain began.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Connections publishing.
    pub publishers: u64,
    /// Of those, the ones asked to move (their `connect` announced the
    /// reconnect capability).
    pub asked: u64,
    /// Plays (RTMP and HTTP), as `players` counts them.
    pub players: u64,
}

/// How often a shard samples each stream's byte count for its bitrate, and
/// the control thread the byte counters for the server's: one second is
/// what operators read bitrates in, and cheap (one pass over the streams).
pub const RATE_INTERVAL: Duration = Duration::from_secs(1);

/// What the control thread asks.
#[derive(Debug)]
pub enum Query {
    /// Every stream this shard holds: its players here and, where this
    /// shard is the source (a publisher or a pull), the source's details.
    Streams(oneshot::Sender<Vec<StreamReport>>),
    /// Stream `key` as [`Query::Streams`] reports it, if this shard holds
    /// it.
    Stream {
        key: StreamKey,
        reply: oneshot::Sender<Option<StreamReport>>,
    },
    /// This shard's connections `skip..skip + limit` in slot order, with
    /// how many it has.
    Clients {
        skip: usize,
        limit: usize,
        reply: oneshot::Sender<ClientPage>,
    },
    /// Connection `serial`, if it is here.
    Client {
        serial: u64,
        reply: oneshot::Sender<Option<ClientReport>>,
    },
    /// Close connection `serial`; the answer says whether it was here.
    KickClient {
        serial: u64,
        reply: oneshot::Sender<bool>,
    },
    /// Close the publisher of `key` if it publishes on this shard; the
    /// answer is its id.
    KickPublisher {
        key: StreamKey,
        reply: oneshot::Sender<Option<ClientId>>,
    },
    /// Start (`start`) or stop recording `key` if its source is on this
    /// shard; the answer is whether it is recorded now, `None` if its
    /// source is not here.
    Record {
        key: StreamKey,
        start: bool,
        reply: oneshot::Sender<Option<bool>>,
    },
}

/// A connection's id in the admin API, `"<shard>-<serial>"`: stable for
/// its lifetime and never reused while the server runs (slab keys are).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId {
    pub shard: ShardId,
    pub serial: u64,
}

/// One stream as one shard sees it.
#[derive(Clone, Debug)]
pub struct StreamReport {
    pub key: StreamKey,
    /// Players of it on this shard.
    pub players: usize,
    /// Present on the shard that is the stream's source.
    pub source: Option<SourceReport>,
}

/// Where a stream comes from and what it carries, from its source shard.
#[derive(Clone, Debug)]
pub struct SourceReport {
    pub origin: Origin,
    pub info: StreamInfo,
    /// Over the last [`RATE_INTERVAL`].
    pub bitrate_bps: u64,
    pub gop_cache_bytes: usize,
    /// Since this publisher (or pull) started.
    pub uptime_ms: u64,
    /// Push targets fed from it.
    pub pushes: usize,
    /// Recorded to files.
    pub recording: bool,
}

/// A stream's source.
#[derive(Clone, Debug)]
pub enum Origin {
    Publisher { id: ClientId, address: SocketAddr },
    Pull { url: String, state: relay::State },
}

/// One page of a shard's connections.
#[derive(Clone, Debug, Default)]
pub struct ClientPage {
    /// Connections on the shard, not only on the page.
    pub total: usize,
    pub clients: Vec<ClientReport>,
}

/// One connection.
#[derive(Clone, Debug)]
pub struct ClientReport {
    pub id: ClientId,
    pub address: SocketAddr,
    /// `rtmp`, `http-flv` or `ws-flv`.
    pub protocol: &'static str,
    /// Over TLS (RTMPS, HTTPS-FLV, WSS).
    pub tls: bool,
    /// The app of `connect` (an HTTP player's path), once asked for.
    pub app: Option<String>,
    pub roles: Vec<Role>,
    pub connected_ms: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Bytes queued for it or being written.
    pub queued_bytes: usize,
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.shard, self.serial)
    }
}

/// Why a client id does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a client id like 0-17 (shard-serial)")]
pub struct BadClientId(pub String);

impl FromStr for ClientId {
    type Err = BadClientId;

    fn from_str(text: &str) -> Result<ClientId, BadClientId> {
        let bad = || BadClientId(text.to_owned());
        let (shard, serial) = text.split_once('-').ok_or_else(bad)?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(shard) || !digits(serial) {
            return Err(bad());
        }
        Ok(ClientId {
            shard: ShardId(shard.parse().map_err(|_| bad())?),
            serial: serial.parse().map_err(|_| bad())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_print_and_parse_as_shard_dash_serial() {
        let id = ClientId {
            shard: ShardId(3),
            serial: 17,
        };
        assert_eq!(id.to_string(), "3-17");
        assert_eq!("3-17".parse(), Ok(id));
        for bad in [
            "",
            "3",
            "3-",
            "-17",
            "3-x",
            "+3-1",
            "3-1-2",
            "99999999999999999999-1",
        ] {
            assert_eq!(
                bad.parse::<ClientId>(),
                Err(BadClientId(bad.into())),
                "{bad}"
            );
        }
    }
}
