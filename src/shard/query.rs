//! Questions the control thread asks a shard for the admin API (its
//! streams, its connections, one of either) and the kicks it orders, answered from the
//! shard's own state on the shard's own thread.
//!
//! Each arrives as a [`ShardMessage::Query`](super::messages::ShardMessage)
//! carrying a oneshot sender; the shard answers at once and never waits on
//! the asker, so a slow or vanished admin client costs it nothing. Answers
//! are plain data (`Send`), copied out of the shard's `Rc` world. Nothing
//! here runs per frame: the per-stream bitrate is sampled once a second by
//! `sample_rates`.

use std::rc::Rc;

use tracing::info;

use super::Shard;
use super::connection::{CloseReason, Conn};
use super::messages::{
    ClientId, ClientPage, ClientReport, Origin, Query, RATE_INTERVAL, SourceReport, StreamReport,
};
use crate::media::StreamKey;
use crate::router::{Router, SourceView, StreamView};

impl Shard {
    /// Answers a query. A reply nobody waits for any more (the control
    /// thread gave up on this shard) is dropped.
    pub(super) fn answer(&self, query: Query) {
        match query {
            Query::Streams(reply) => {
                let _ = reply.send(self.stream_reports());
            }
            Query::Stream { key, reply } => {
                let _ = reply.send(self.stream_report(&key));
            }
            Query::Clients { skip, limit, reply } => {
                let _ = reply.send(self.client_page(skip, limit));
            }
            Query::Client { serial, reply } => {
                let _ = reply.send(self.client(serial));
            }
            Query::KickClient { serial, reply } => {
                let _ = reply.send(self.kick_client(serial));
            }
            Query::KickPublisher { key, reply } => {
                let _ = reply.send(self.kick_stream_publisher(&key));
            }
            Query::Record { key, start, reply } => {
                let _ = reply.send(self.record_asked(&key, start));
            }
        }
    }

    fn stream_reports(&self) -> Vec<StreamReport> {
        let now_ms = self.now_ms();
        let router = self.router.borrow();
        router
            .streams()
            .map(|stream| StreamReport {
                key: stream.key.clone(),
                players: stream.players,
                source: self.source_report(&stream, now_ms),
            })
            .collect()
    }

    fn stream_report(&self, key: &StreamKey) -> Option<StreamReport> {
        let router = self.router.borrow();
        let stream = router.stream(key)?;
        Some(StreamReport {
            key: stream.key.clone(),
            players: stream.players,
            source: self.source_report(&stream, self.now_ms()),
        })
    }

    fn source_report(&self, stream: &StreamView<'_>, now_ms: u64) -> Option<SourceReport> {
        let (origin, since_ms) = match stream.source {
            SourceView::Publisher { conn, since_ms } => {
                let connections = self.connections.borrow();
                let conn = connections
                    .get(conn.key)
                    .filter(|c| c.serial == conn.serial)?;
                let id = self.client_id(conn);
                let address = conn.peer;
                (Origin::Publisher { id, address }, since_ms)
            }
            SourceView::Pull { since_ms } => {
                let pulls = self.pulls.borrow();
                let status = &pulls.get(stream.key)?.status;
                let url = status.target.borrow().clone();
                let state = status.state.get();
                (Origin::Pull { url, state }, since_ms)
            }
            SourceView::Elsewhere => return None,
        };
        let pushes = self.pushes.borrow().get(stream.key).map_or(0, Vec::len);
        Some(SourceReport {
            origin,
            info: stream.info.clone(),
            bitrate_bps: stream.rate_per_s.saturating_mul(8),
            gop_cache_bytes: stream.gop_cache_bytes,
            uptime_ms: now_ms.saturating_sub(since_ms),
            pushes,
            recording: stream.recording,
        })
    }

    fn client_page(&self, skip: usize, limit: usize) -> ClientPage {
        let now_ms = self.now_ms();
        let connections = self.connections.borrow();
        let router = self.router.borrow();
        let clients = connections
            .iter()
            .skip(skip)
            .take(limit)
            .map(|(_, conn)| self.client_report(conn, &router, now_ms))
            .collect();
        ClientPage {
            total: connections.len(),
            clients,
        }
    }

    fn client(&self, serial: u64) -> Option<ClientReport> {
        let conn = self.connection(serial)?;
        Some(self.client_report(&conn, &self.router.borrow(), self.now_ms()))
    }

    fn client_report(&self, conn: &Conn, router: &Router, now_ms: u64) -> ClientReport {
        ClientReport {
            id: self.client_id(conn),
            address: conn.peer,
            protocol: conn.protocol().name(),
            tls: conn.is_tls(),
            app: conn.app.borrow().clone(),
            roles: (router.roles(conn.id()).iter())
                .map(|(_, role)| role.clone())
                .collect(),
            connected_ms: now_ms.saturating_sub(conn.accepted_ms),
            bytes_in: conn.bytes_in.get(),
            bytes_out: conn.bytes_out.get(),
            queued_bytes: conn.out.borrow().held(),
        }
    }

    /// The connection whose serial is `serial`, if it is on this shard.
    fn connection(&self, serial: u64) -> Option<Rc<Conn>> {
        (self.connections.borrow().iter())
            .map(|(_, conn)| conn)
            .find(|conn| conn.serial == serial)
            .cloned()
    }

    fn kick_client(&self, serial: u64) -> bool {
        match self.connection(serial) {
            Some(conn) => {
                self.kick(&conn);
                true
            }
            None => false,
        }
    }

    fn kick_stream_publisher(&self, key: &StreamKey) -> Option<ClientId> {
        let publisher = self.router.borrow().publisher(key)?;
        let conn = (self.connections.borrow().get(publisher.key))
            .filter(|c| c.serial == publisher.serial)
            .cloned()?;
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
        shard.router.borrow_mut().sample_rates(now_ms);
    }
}
