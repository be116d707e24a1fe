//! Questions the control thread asks a shard for the admin API (its
//! streams, its connections) and the kicks it orders, answered from the
//! shard's own state on the shard's own thread.
//!
//! Each arrives as a [`ShardMessage::Query`](super::mesh::ShardMessage)
//! carrying a oneshot sender; the shard answers at once and never waits on
//! the asker, so a slow or vanished admin client costs it nothing. Answers
//! are plain data (`Send`), copied out of the shard's `Rc` world. Nothing
//! here runs per frame: the per-stream bitrate is sampled once a second by
//! `sample_rates`.

use std::fmt;
use std::net::SocketAddr;
use std::rc::Rc;
use std::str::FromStr;
use std::time::Duration;

use tokio::sync::oneshot;
use tracing::info;

use super::connection::{CloseReason, Conn, Role};
use super::stats::RateMeter;
use super::streams::{LocalStream, Source};
use super::{Shard, ShardId};
use crate::media::{StreamInfo, StreamKey};
use crate::relay;

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
    /// This shard's connections `skip..skip + limit` in slot order, with
    /// how many it has.
    Clients {
        skip: usize,
        limit: usize,
        reply: oneshot::Sender<ClientPage>,
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
    /// The app of `connect`, once accepted.
    pub app: Option<String>,
    pub roles: Vec<Role>,
    pub connected_ms: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Bytes queued for it or being written.
    pub queued_bytes: usize,
}

impl Shard {
    /// Answers a query. A reply nobody waits for any more (the control
    /// thread gave up on this shard) is dropped.
    pub(super) fn answer(&self, query: Query) {
        match query {
            Query::Streams(reply) => {
                let _ = reply.send(self.stream_reports());
            }
            Query::Clients { skip, limit, reply } => {
                let _ = reply.send(self.client_page(skip, limit));
            }
            Query::KickClient { serial, reply } => {
                let _ = reply.send(self.kick_client(serial));
            }
            Query::KickPublisher { key, reply } => {
                let _ = reply.send(self.kick_stream_publisher(&key));
            }
        }
    }

    fn stream_reports(&self) -> Vec<StreamReport> {
        let now_ms = self.now_ms();
        self.streams
            .borrow()
            .iter()
            .map(|(key, stream)| StreamReport {
                key: key.clone(),
                players: stream.players.len(),
                source: self.source_report(stream, now_ms),
            })
            .collect()
    }

    fn source_report(&self, stream: &LocalStream, now_ms: u64) -> Option<SourceReport> {
        let (origin, since_ms) = match &stream.source {
            Source::Local { conn, since_ms, .. } => {
                let id = self.client_id(conn);
                let address = conn.peer;
                (Origin::Publisher { id, address }, *since_ms)
            }
            Source::Pull {
                status, since_ms, ..
            } => {
                let url = status.target.borrow().clone();
                let state = status.state.get();
                (Origin::Pull { url, state }, *since_ms)
            }
            Source::Waiting | Source::Remote { .. } => return None,
        };
        Some(SourceReport {
            origin,
            info: stream.live.info().clone(),
            bitrate_bps: stream.rate.per_s().saturating_mul(8),
            gop_cache_bytes: stream.live.gop().bytes(),
            uptime_ms: now_ms.saturating_sub(since_ms),
            pushes: stream.pushes.len(),
        })
    }

    fn client_page(&self, skip: usize, limit: usize) -> ClientPage {
        let now_ms = self.now_ms();
        let connections = self.connections.borrow();
        let clients = connections
            .iter()
            .skip(skip)
            .take(limit)
            .map(|(_, conn)| ClientReport {
                id: self.client_id(conn),
                address: conn.peer,
                app: conn.app.borrow().clone(),
                roles: conn.roles().into_iter().map(|(_, role)| role).collect(),
                connected_ms: now_ms.saturating_sub(conn.accepted_ms),
                bytes_in: conn.bytes_in.get(),
                bytes_out: conn.bytes_out.get(),
                queued_bytes: conn.out.borrow().held(),
            })
            .collect();
        ClientPage {
            total: connections.len(),
            clients,
        }
    }

    fn kick_client(&self, serial: u64) -> bool {
        let conn = (self.connections.borrow().iter())
            .map(|(_, conn)| conn)
            .find(|conn| conn.serial == serial)
            .cloned();
        match conn {
            Some(conn) => {
                self.kick(&conn);
                true
            }
            None => false,
        }
    }

    fn kick_stream_publisher(&self, key: &StreamKey) -> Option<ClientId> {
        let conn = match self.streams.borrow().get(key).map(|s| &s.source) {
            Some(Source::Local { conn, .. }) => conn.clone(),
            _ => return None,
        };
        self.kick(&conn);
        Some(self.client_id(&conn))
    }

    /// Closes `conn` at once; its reader cleans up (a publisher's players
    /// are told the stream stopped and wait for the next one).
    fn kick(&self, conn: &Rc<Conn>) {
        if conn.is_open() {
            self.stats.kicks.add(1);
            info!(shard = %self.id, peer = %conn.peer, "kicked through the admin API");
        }
        conn.abort(CloseReason::Kicked);
    }

    fn client_id(&self, conn: &Conn) -> ClientId {
        ClientId {
            shard: self.id,
            serial: conn.serial,
        }
    }
}

/// Every [`RATE_INTERVAL`], each stream this shard is the source of takes
/// its bitrate from its byte count, so the admin API shows the last
/// second's rate, not an average since it started.
pub(super) async fn sample_rates(shard: Rc<Shard>) {
    let mut tick = tokio::time::interval(RATE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now_ms = shard.now_ms();
        for stream in shard.streams.borrow_mut().values_mut() {
            if matches!(stream.source, Source::Local { .. } | Source::Pull { .. }) {
                let bytes = stream.live.info().bytes_in;
                stream.rate.sample(bytes, now_ms);
            } else {
                stream.rate = RateMeter::default();
            }
        }
    }
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
