//! A maintenance drain on one shard ([`crate::drain`] runs it server-wide):
//! the shard's listeners are shut down, so with SO_REUSEPORT a ringcast
//! started beside this one on the same ports gets every new connection
//! (here they would be refused); each publisher whose `connect` announced
//! Enhanced RTMP's reconnect capability is sent a reconnect request
//! (E-RTMP v2: it moves at its next keyframe, then closes this
//! connection); and a player whose stream's publisher left is let go once
//! told, since nothing will publish here again: a player that reconnects,
//! and a pull that fails over, find the stream where it went. Whoever is
//! still here when the drain's time is up goes with the graceful shutdown.

use tracing::{debug, warn};

use super::Shard;
use super::connection::{CloseReason, Conn};
use super::messages::DrainReport;
use crate::protocol::command::CapsEx;
use crate::protocol::url::RtmpUrl;
use crate::router::Role;

/// What a publisher asked to move is told, for its logs.
const RECONNECT_DESCRIPTION: &str =
    "The server is going down for maintenance; publish on the server this names.";

impl Shard {
    /// Keeps a duplicate of `listener`'s descriptor for a drain to shut
    /// down. Without one (no descriptor left at startup, which the file
    /// budget counts against) a drain cannot close that listener: what it
    /// still gets is refused, and this says so once.
    pub(super) fn keep_for_drain(&self, listener: &std::net::TcpListener) {
        match listener.try_clone() {
            Ok(copy) => self.listening.borrow_mut().push(copy),
            Err(error) => {
                warn!(shard = %self.id, %error, "a drain will not close this listener: no descriptor for its copy");
            }
        }
    }

    /// Begins draining: what is described above, and what was here.
    pub(super) fn drain(&self, redirect: Option<&RtmpUrl>) -> DrainReport {
        if !self.shutting_down.replace(true) {
            self.stats.draining.add(1);
        }
        for listener in self.listening.take() {
            // An error means it is not listening any more, which is what
            // this is for.
            let _ = socket2::SockRef::from(&listener).shutdown(std::net::Shutdown::Both);
        }
        let connections: Vec<_> = (self.connections.borrow().iter())
            .map(|(_, conn)| conn.clone())
            .collect();
        let mut report = DrainReport::default();
        for conn in &connections {
            let router = self.router.borrow();
            let roles = router.roles(conn.id());
            let plays = roles
                .iter()
                .filter(|(_, role)| matches!(role, Role::Player(_)))
                .count();
            report.players += plays as u64;
            if !router.publishes(conn.id()) {
                continue;
            }
            drop(router);
            report.publishers += 1;
            if ask_to_move(conn, redirect) {
                report.asked += 1;
            }
        }
        debug!(shard = %self.id, ?report, "draining");
        report
    }

    /// A player was told its stream's publisher left: while draining it
    /// is let go (unless it publishes too), having been told.
    pub(super) fn stream_ended_while_draining(&self, conn: &Conn) {
        if !self.shutting_down.get() || self.router.borrow().publishes(conn.id()) {
            return;
        }
        conn.send_websocket_close(
            ringcast_web::websocket::close::GOING_AWAY,
            "server draining",
        );
        conn.close_after_flush(CloseReason::Shutdown);
    }
}

/// Sends `conn` a reconnect request if its `connect` announced that it
/// can act on one; whether it did.
fn ask_to_move(conn: &Conn, redirect: Option<&RtmpUrl>) -> bool {
    let Some(mut session) = conn.session() else {
        return false;
    };
    if !session.peer_caps_ex().contains(CapsEx::RECONNECT) {
        return false;
    }
    let tc_url = redirect.map(|redirect| redirect_for(redirect, conn));
    session.request_reconnect(tc_url.as_deref(), RECONNECT_DESCRIPTION);
    drop(session);
    conn.flush_session();
    true
}

/// The `tcUrl` a publisher is sent to: `redirect` as written when it names
/// an app; else that host with the publisher's own app and, unless the
/// redirect has a query of its own, the queries of its `connect` (where a
/// key may be).
fn redirect_for(redirect: &RtmpUrl, conn: &Conn) -> String {
    if !redirect.path.is_empty() {
        return redirect.to_string();
    }
    let own_query = (conn.connect_args.get()).filter(|args| !args.is_empty());
    RtmpUrl {
        path: conn.app.borrow().clone().unwrap_or_default(),
        query: redirect.query.clone().or_else(|| own_query.cloned()),
        ..redirect.clone()
    }
    .to_string()
}
