//! Questions the control thread asks a shard for the admin API (its
//! streams, its connections) and the kicks it orders, answered from the
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
use super::stats::RateMeter;
use super::streams::{LocalStream, Source};
use crate::media::StreamKey;

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
