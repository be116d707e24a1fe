//! One connection on a shard: a reader task that feeds its socket into the
//! server session and acts on what the session reports, and a writer task
//! that drains its outbound queue with one `writev` per batch.
//!
//! Reads land in an owned buffer, small unless the connection publishes
//! ([`limits::READ_BUFFER_BYTES`]); writes gather queued [`Bytes`] (shared
//! frames and the session's own messages) without copying, when the
//! stream's pacing wakes the writer.

use std::cell::{Cell, OnceCell, RefCell, RefMut};
use std::future::Future;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ringcast_tls::record::HANDSHAKE_RECORD;
use ringcast_tls::{Tls, TlsError};
use tokio_uring::buf::BoundedBuf;
use tokio_uring::net::TcpStream;
use tracing::{info, warn};

use super::Shard;
use super::logs::peer_line;
use super::stats::Protocol;
use super::web::{self, WebPlayer};
use crate::access::peers::PeerSlot;
use crate::config::Config;
use crate::limits;
use crate::logging::LogBucket;
use crate::media::{OutboundQueue, QUEUE_SLOTS_KEPT};
use crate::protocol::MessageStreamId;
use crate::protocol::handshake::RANDOM_SIZE;
use crate::router::ConnRef;
use crate::session::Quoted;
use crate::session::{self, ServerConfig, ServerSession, SessionError};

/// Why a connection ended, for the log line and the counters.
#[derive(Debug)]
pub enum CloseReason {
    PeerClosed,
    Io(io::Error),
    Protocol(SessionError),
    HandshakeTimeout,
    IdleTimeout,
    SlowConsumer,
    Replaced,
    /// Closed through the admin API.
    Kicked,
    /// Refused at the door (`connect` denied).
    Rejected,
    /// Its publish or play refused by the `on_update` hook.
    Revoked,
    /// [`limits::REFUSALS_IN_A_ROW_MAX`] commands refused in a row.
    Refusals,
    Shutdown,
    /// An HTTP request answered in full (a file, a refusal, a stream
    /// that is not there).
    Answered,
    /// The TLS layer failed: a handshake that could not complete, a
    /// record TLS forbids, plain text on a TLS port.
    Tls(TlsError),
    /// A TLS handshake on a port that does not speak TLS.
    TlsOnPlainPort,
}

/// How long a closing connection's writer may take to deliver what is
/// queued (a refusal, a goodbye) before the socket is closed regardless: a
/// peer that does not read must not hold its connection open.
const CLOSING_GRACE: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Open,
    /// Write what is queued, then close.
    Closing,
    Closed,
}

/// A connection's shared state; its reader and writer tasks and the
/// shard's slab hold it by `Rc` (the router knows it by its
/// [`ConnRef`]).
pub struct Conn {
    /// The slab slot: reused once the connection is gone.
    pub key: usize,
    /// Numbers this shard's connections in accept order, never reused: with
    /// the shard, the connection's id in the admin API.
    pub serial: u64,
    pub peer: SocketAddr,
    socket: TcpStream,
    protocol: ProtocolState,
    /// Present on a TLS listener's connections: every read is decrypted
    /// and every write sealed through it.
    tls: Option<TlsLayer>,
    pub out: RefCell<OutboundQueue>,
    wake: Wake,
    /// Wakes the reader when a decision it waits for (a hook) is made.
    resume: Wake,
    state: Cell<State>,
    close_reason: RefCell<Option<CloseReason>>,
    /// The app of `connect`, once asked for.
    pub app: RefCell<Option<String>>,
    /// `connect`'s tcUrl, for hooks.
    pub tc_url: OnceCell<String>,
    /// The queries of `connect`'s app and tcUrl (`&`-joined), where a key
    /// may be.
    pub connect_args: OnceCell<String>,
    /// This connection's place in its address's count.
    _peer_slot: PeerSlot,
    /// Chunk size packaged frames for this connection must have.
    pub chunk_size: u32,
    /// Last time bytes arrived (shard clock, ms).
    last_read_ms: Cell<u64>,
    /// A keepalive ping went out since then.
    pinged: Cell<bool>,
    /// When it was accepted (shard clock, ms).
    pub accepted_ms: u64,
    /// Bytes read from and written to the socket, for the admin API.
    pub bytes_in: Cell<u64>,
    pub bytes_out: Cell<u64>,
    /// Commands refused with `_error`: the first is logged, the total goes
    /// on the close line.
    pub commands_refused: Cell<u64>,
    /// Commands refused (`_error`, a denied publish or play) since the
    /// last granted publish or play.
    refusals_in_a_row: Cell<u32>,
    /// Log lines this connection may still cause.
    pub(super) log_budget: RefCell<LogBucket>,
}

/// What a connection speaks, by the listener that accepted it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    Rtmp,
    /// HTTP-FLV and WebSocket-FLV players.
    Http,
    /// RTMP over TLS.
    Rtmps,
    /// HTTP-FLV and WebSocket-FLV players over TLS.
    Https,
}

impl Listener {
    fn speaks_tls(self) -> bool {
        matches!(self, Listener::Rtmps | Listener::Https)
    }
}

/// A TLS connection's record layer, and the buffer its ciphertext is
/// read into (taken by the read in flight).
struct TlsLayer {
    session: RefCell<Tls>,
    ciphertext: Cell<BytesMut>,
}

/// A connection's protocol state.
enum ProtocolState {
    /// Boxed: an HTTP player need not carry an RTMP session's size.
    Rtmp(Box<RefCell<ServerSession>>),
    Http(RefCell<WebPlayer>),
}

/// Accepts `stream` on `shard`: registers the connection and starts its
/// tasks.
pub fn spawn(
    shard: &Rc<Shard>,
    stream: TcpStream,
    peer: SocketAddr,
    peer_slot: PeerSlot,
    listener: Listener,
) {
    // Frames go out as soon as they are queued; we batch ourselves.
    let _ = stream.set_nodelay(true);
    let config = shard.config();
    let now = shard.now_ms();
    let protocol = match listener {
        Listener::Rtmp | Listener::Rtmps => {
            ProtocolState::Rtmp(Box::new(RefCell::new(rtmp_session(shard, &config, now))))
        }
        Listener::Http | Listener::Https => {
            keep_alive(&stream, config.timeouts.idle);
            ProtocolState::Http(RefCell::new(WebPlayer::default()))
        }
    };
    let tls = match listener.speaks_tls().then(|| config.tls.server.as_ref()) {
        None => None,
        Some(server) => {
            // Validation refuses a TLS listener without certificates.
            let Some(session) = server.and_then(|server| Tls::server(server.config()).ok()) else {
                warn!(shard = %shard.id, %peer, "TLS connection refused: no certificate loaded");
                return;
            };
            Some(TlsLayer {
                session: RefCell::new(session),
                ciphertext: Cell::new(BytesMut::new()),
            })
        }
    };
    let mut connections = shard.connections.borrow_mut();
    let entry = connections.vacant_entry();
    let conn = Rc::new(Conn {
        key: entry.key(),
        serial: shard.next_serial(),
        peer,
        socket: stream,
        protocol,
        tls,
        out: RefCell::new(OutboundQueue::new(
            config.player.queue_bytes_max,
            config.player.slow_disconnect_after.as_millis() as u64,
        )),
        wake: Wake::default(),
        resume: Wake::default(),
        state: Cell::new(State::Open),
        close_reason: RefCell::new(None),
        app: RefCell::new(None),
        tc_url: OnceCell::new(),
        connect_args: OnceCell::new(),
        _peer_slot: peer_slot,
        chunk_size: config.chunk_size,
        last_read_ms: Cell::new(now),
        pinged: Cell::new(false),
        accepted_ms: now,
        bytes_in: Cell::new(0),
        bytes_out: Cell::new(0),
        commands_refused: Cell::new(0),
        refusals_in_a_row: Cell::new(0),
        log_budget: RefCell::new(LogBucket::per_connection(now)),
    });
    entry.insert(conn.clone());
    drop(connections);
    shard.stats.connections.add(1);
    peer_line!(DEBUG, shard, conn, shard = %shard.id, %peer, "accepted");
    let writer = tokio_uring::spawn(write_loop(shard.clone(), conn.clone()));
    tokio_uring::spawn(read_task(shard.clone(), conn, writer));
}

/// Turns TCP keepalive on for an HTTP player. Why: after its request it
/// says nothing (an RTMP peer answers our pings), so one gone without a
/// FIN (a cable pulled, a NAT entry dropped) while its stream is not
/// flowing would hold its connection for ever; probes from half the idle
/// timeout find it within about the idle timeout.
fn keep_alive(stream: &TcpStream, idle: Duration) {
    let probes = 3;
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(idle / 2)
        .with_interval((idle / 2 / probes).max(Duration::from_secs(1)))
        .with_retries(probes);
    // SAFETY: the descriptor is `stream`'s, open for as long as the
    // borrow, which ends with this function.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(stream.as_raw_fd()) };
    let _ = socket2::SockRef::from(&fd).set_tcp_keepalive(&keepalive);
}

/// A new RTMP connection's session.
fn rtmp_session(shard: &Shard, config: &Config, now: u64) -> ServerSession {
    let session_config = ServerConfig {
        chunk_size: config.chunk_size,
        ack_window: limits::ACK_WINDOW_DEFAULT,
        peer_bandwidth: limits::ACK_WINDOW_DEFAULT,
        limits: session::Limits {
            chunk: crate::protocol::chunk::Limits {
                message_size_max: config.limits.message_size_max,
                partial_bytes_max: config.limits.partial_bytes_max,
                chunk_streams_max: config.limits.chunk_streams_max,
            },
            amf: Default::default(),
            streams_max: config.limits.streams_per_connection_max,
        },
    };
    ServerSession::new(session_config, now as u32, shard.random_block())
}

impl Conn {
    /// Moves what the session wants to send into the outbound queue, in
    /// order, and wakes the writer.
    pub fn flush_session(&self) {
        let Some(mut session) = self.session() else {
            return;
        };
        let mut out = self.out.borrow_mut();
        let mut any = false;
        while let Some(bytes) = session.poll_transmit() {
            let _ = out.push(bytes);
            any = true;
        }
        if any {
            self.wake.wake();
        }
    }

    /// The RTMP session; `None` for an HTTP player.
    pub fn session(&self) -> Option<RefMut<'_, ServerSession>> {
        match &self.protocol {
            ProtocolState::Rtmp(session) => Some(session.borrow_mut()),
            ProtocolState::Http(_) => None,
        }
    }

    /// The HTTP player's state; `None` for RTMP.
    pub fn web(&self) -> Option<RefMut<'_, WebPlayer>> {
        match &self.protocol {
            ProtocolState::Http(player) => Some(player.borrow_mut()),
            ProtocolState::Rtmp(_) => None,
        }
    }

    /// What the connection speaks.
    pub fn protocol(&self) -> Protocol {
        match &self.protocol {
            ProtocolState::Rtmp(_) => Protocol::Rtmp,
            ProtocolState::Http(player) => player.borrow().protocol(),
        }
    }

    /// Speaks TLS (RTMPS, HTTPS-FLV, WSS).
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Queues `bytes` whatever the queue's policy (answers, not frames).
    pub fn send(&self, bytes: Bytes) {
        let _ = self.out.borrow_mut().push(bytes);
        self.wake.wake();
    }

    /// Wakes the writer: it writes everything queued, held frames too.
    /// Frames queued without this wait for the next wake (the stream's
    /// pacing).
    pub fn wake_writer(&self) {
        self.wake.wake();
    }

    /// Closes now, dropping what is queued. The first reason given is the
    /// one logged and counted (but see `Conn::record`).
    pub fn abort(&self, reason: CloseReason) {
        self.record(reason);
        if self.state.get() == State::Closed {
            return;
        }
        self.state.set(State::Closed);
        // Ends the reader's pending read and any write in flight.
        let _ = self.socket.shutdown(Shutdown::Both);
        self.wake.wake();
        self.resume.wake();
    }

    /// Answers to a peer that keeps asking (RTMP commands, WebSocket
    /// pings) and never reads them would pile up at the pace it asks: past
    /// the queue's hopeless mark it is cut off like a hopeless player.
    pub(super) fn cut_off_if_not_reading(&self, shard: &Shard) -> Option<CloseReason> {
        if self.out.borrow().is_hopeless() && self.is_open() {
            shard.stats.slow_disconnects.add(1);
            return Some(CloseReason::SlowConsumer);
        }
        None
    }

    /// A decision the session waited for was made: the reader goes on
    /// with the input it holds.
    pub fn resume_reading(&self) {
        self.resume.wake();
    }

    /// Keeps the first reason a connection ended, except that a socket
    /// error replaces a plain end of input: when a peer resets, the kernel
    /// reports the reset once, so the reader may see only EOF while the
    /// writer's pending write gets the reset.
    fn record(&self, reason: CloseReason) {
        let mut current = self.close_reason.borrow_mut();
        let replace = matches!(
            (&*current, &reason),
            (None, _) | (Some(CloseReason::PeerClosed), CloseReason::Io(_))
        );
        if replace {
            *current = Some(reason);
        }
    }

    /// Closes once everything queued has been written (within
    /// `CLOSING_GRACE`), for `reason`.
    pub fn close_after_flush(&self, reason: CloseReason) {
        self.record(reason);
        if self.state.get() == State::Open {
            self.state.set(State::Closing);
            self.wake.wake();
        }
    }

    /// Counts a refused command (the caller answered it); past
    /// [`limits::REFUSALS_IN_A_ROW_MAX`] in a row the connection is closed
    /// once the answer is out.
    pub fn refused(&self) {
        let in_a_row = self.refusals_in_a_row.get().saturating_add(1);
        self.refusals_in_a_row.set(in_a_row);
        if in_a_row >= limits::REFUSALS_IN_A_ROW_MAX {
            self.flush_session();
            self.close_after_flush(CloseReason::Refusals);
        }
    }

    /// A publish or play was granted: the refusals before it were a
    /// client finding its way, not a loop.
    pub fn granted(&self) {
        self.refusals_in_a_row.set(0);
    }

    pub fn is_open(&self) -> bool {
        self.state.get() == State::Open
    }

    /// A TLS handshake failed with an alert for the peer queued: nothing
    /// else can be (no plaintext goes out before the handshake is done).
    fn has_handshake_alert(&self) -> bool {
        self.tls.as_ref().is_some_and(|tls| {
            let session = tls.session.borrow();
            session.is_handshaking() && session.wants_write()
        })
    }

    /// This connection, as the router knows it.
    pub fn id(&self) -> ConnRef {
        ConnRef {
            key: self.key,
            serial: self.serial,
        }
    }

    /// Tells each of `playing`, streams this connection plays, that it
    /// ends (shutdown).
    pub fn stop_playing(&self, playing: &[MessageStreamId], description: &str) {
        if let Some(mut session) = self.session() {
            for &stream_id in playing {
                session.stop_play(stream_id, description);
            }
        }
        self.flush_session();
    }
}

/// Runs the reader; once it ends, stops the writer and waits for it (its
/// last write may tell why the connection ended), then cleans up, counts
/// and logs the close once.
async fn read_task(shard: Rc<Shard>, conn: Rc<Conn>, mut writer: tokio::task::JoinHandle<()>) {
    let ended = match conn.protocol {
        ProtocolState::Rtmp(ref session) => read_loop(&shard, &conn, session).await,
        ProtocolState::Http(_) => web::read_loop(&shard, &conn).await,
    };
    let ended = match ended {
        CloseReason::Tls(error) if conn.has_handshake_alert() => {
            // The fatal alert rustls queued (a decode_error, a
            // handshake_failure) goes out before the close, so that the
            // client learns why (RFC 8446 §6). Recorded now: a failed
            // write of the alert (the client gone) does not replace it.
            conn.close_after_flush(CloseReason::Tls(error));
            CloseReason::PeerClosed
        }
        ended => ended,
    };
    let mut writer_done = false;
    if conn.state.get() == State::Closing {
        // The writer delivers what was queued, then closes.
        writer_done = tokio::time::timeout(CLOSING_GRACE, &mut writer)
            .await
            .is_ok();
    }
    conn.abort(ended);
    if !writer_done {
        let _ = writer.await;
    }
    let reason = conn
        .close_reason
        .borrow_mut()
        .take()
        .unwrap_or(CloseReason::PeerClosed);
    shard.connection_closed(&conn);
    shard.tell_closed(&conn);
    shard.connections.borrow_mut().try_remove(conn.key);
    shard.stats.connections.sub(1);
    count_close(&shard, &reason);
    // Every connection's close line is written unless the shard's budget
    // is spent (a flood of connections), with what its budget cut.
    let Some(suppressed) = shard.admit_close_line(&conn) else {
        return;
    };
    let app = conn.app.borrow().clone().unwrap_or_default();
    let app = Quoted(&app);
    let reason = describe(&reason);
    match (conn.commands_refused.get(), suppressed) {
        (0, 0) => info!(shard = %shard.id, peer = %conn.peer, %app, %reason, "closed"),
        (refused, suppressed) => {
            info!(shard = %shard.id, peer = %conn.peer, %app, %reason, commands_refused = refused, lines_suppressed = suppressed, "closed");
        }
    }
}

/// Counts a connection's end under its cause. Slow players and kicks were
/// counted when the decision was made, and a peer closing is the normal
/// end.
fn count_close(shard: &Shard, reason: &CloseReason) {
    let stats = &shard.stats;
    match reason {
        CloseReason::Protocol(SessionError::Handshake(_)) => stats.handshake_failures.add(1),
        // Our bug, not the peer's: not counted against peers.
        CloseReason::Protocol(error) if !error.is_peer_fault() => {}
        CloseReason::Protocol(_) | CloseReason::Refusals => stats.protocol_errors.add(1),
        CloseReason::HandshakeTimeout => stats.handshake_timeouts.add(1),
        CloseReason::IdleTimeout => stats.idle_timeouts.add(1),
        CloseReason::Io(_) => stats.io_errors.add(1),
        CloseReason::Tls(_) => stats.tls_failures.add(1),
        CloseReason::TlsOnPlainPort => stats.tls_on_plain_port.add(1),
        CloseReason::PeerClosed
        | CloseReason::SlowConsumer
        | CloseReason::Replaced
        | CloseReason::Kicked
        | CloseReason::Rejected
        | CloseReason::Revoked
        | CloseReason::Shutdown
        | CloseReason::Answered => {}
    }
}

fn describe(reason: &CloseReason) -> String {
    match reason {
        CloseReason::PeerClosed => "peer closed".into(),
        CloseReason::Io(e) => format!("i/o error: {e}"),
        CloseReason::Protocol(e) if !e.is_peer_fault() => format!("our bug: {e}"),
        CloseReason::Protocol(e) => format!("protocol error: {e}"),
        CloseReason::HandshakeTimeout => "handshake and connect took too long".into(),
        CloseReason::IdleTimeout => "idle too long".into(),
        CloseReason::SlowConsumer => "peer could not keep up with what it was sent".into(),
        CloseReason::Replaced => "publisher replaced by a new one".into(),
        CloseReason::Kicked => "closed through the admin API".into(),
        CloseReason::Rejected => "connect rejected".into(),
        CloseReason::Revoked => "refused by the on_update hook".into(),
        CloseReason::Refusals => format!(
            "{} commands refused in a row",
            limits::REFUSALS_IN_A_ROW_MAX
        ),
        CloseReason::Shutdown => "server shutting down".into(),
        CloseReason::Answered => "request answered".into(),
        CloseReason::Tls(e) => format!("tls: {e}"),
        CloseReason::TlsOnPlainPort => {
            "a TLS handshake on a plain port (rtmps:// or https:// to a port without TLS)".into()
        }
    }
}

async fn read_loop(
    shard: &Rc<Shard>,
    conn: &Rc<Conn>,
    session: &RefCell<ServerSession>,
) -> CloseReason {
    let mut input = BytesMut::with_capacity(limits::READ_BUFFER_BYTES);
    loop {
        if session.borrow().is_awaiting_answer() {
            // A hook is deciding: read nothing more until it has, then go
            // on with what is buffered.
            if let Err(reason) = wait_for_decision(shard, conn, session).await {
                return reason;
            }
            if let Err(error) = process_input(shard, conn, session, &mut input) {
                return CloseReason::Protocol(error);
            }
            if !conn.is_open() {
                return CloseReason::PeerClosed;
            }
            continue;
        }
        let want = if shard.router.borrow().publishes(conn.id()) {
            limits::PUBLISHER_READ_BUFFER_BYTES
        } else {
            limits::READ_BUFFER_BYTES
        };
        if input.is_empty() && input.capacity() > want {
            // The handshake or an ended publish grew it: hold only what
            // the connection needs now.
            input = BytesMut::with_capacity(want);
        } else if input.capacity() - input.len() < want / 4 {
            input.reserve(want);
        }
        input = match conn
            .read(shard, input, || deadline(shard, conn, session))
            .await
        {
            Ok(input) => input,
            Err(reason) => return reason,
        };
        if let Err(error) = process_input(shard, conn, session, &mut input) {
            return CloseReason::Protocol(error);
        }
        if let Some(reason) = conn.cut_off_if_not_reading(shard) {
            return reason;
        }
        if !conn.is_open() {
            return CloseReason::PeerClosed;
        }
    }
}

impl Conn {
    /// Reads what comes next into `input`'s spare room (decrypted, on a
    /// TLS connection), checking `deadline` (the time left, or why the
    /// connection must end) while it waits; the end of input is
    /// [`CloseReason::PeerClosed`].
    pub(super) async fn read(
        &self,
        shard: &Shard,
        input: BytesMut,
        mut deadline: impl FnMut() -> Result<Duration, CloseReason>,
    ) -> Result<BytesMut, CloseReason> {
        let Some(tls) = &self.tls else {
            let first_read = self.bytes_in.get() == 0;
            let input = self.read_socket(shard, input, &mut deadline).await?;
            if first_read && input.first() == Some(&HANDSHAKE_RECORD) {
                return Err(CloseReason::TlsOnPlainPort);
            }
            return Ok(input);
        };
        let mut input = input;
        loop {
            let mut ciphertext = tls.ciphertext.take();
            ciphertext.reserve((input.capacity() - input.len()).max(limits::READ_BUFFER_BYTES));
            ciphertext = self.read_socket(shard, ciphertext, &mut deadline).await?;
            let before = input.len();
            let received = tls.session.borrow_mut().receive(&ciphertext, &mut input);
            ciphertext.clear();
            tls.ciphertext.set(ciphertext);
            if tls.session.borrow().wants_write() {
                // A handshake message or an alert to answer.
                self.wake.wake();
            }
            match received {
                Err(error) => return Err(CloseReason::Tls(error)),
                Ok(received) if received.closed && input.len() == before => {
                    return Err(CloseReason::PeerClosed);
                }
                // Only handshake records: nothing for the session yet.
                Ok(_) if input.len() == before => continue,
                Ok(_) => return Ok(input),
            }
        }
    }

    /// Reads from the socket into `buffer`'s spare room.
    async fn read_socket(
        &self,
        shard: &Shard,
        mut buffer: BytesMut,
        deadline: &mut impl FnMut() -> Result<Duration, CloseReason>,
    ) -> Result<BytesMut, CloseReason> {
        let len = buffer.len();
        let read = self.socket.read(buffer.slice(len..));
        tokio::pin!(read);
        let (result, slice) = loop {
            let wait = deadline()?;
            tokio::select! {
                done = &mut read => break done,
                () = tokio::time::sleep(wait) => {}
            }
        };
        buffer = slice.into_inner();
        match result {
            Ok(0) => Err(CloseReason::PeerClosed),
            Ok(n) => {
                shard.stats.bytes_in.add(n as u64);
                self.bytes_in
                    .set(self.bytes_in.get().wrapping_add(n as u64));
                self.last_read_ms.set(shard.now_ms());
                self.pinged.set(false);
                Ok(buffer)
            }
            Err(error) => Err(CloseReason::Io(error)),
        }
    }
}

/// Waits until the session's pending decision is made, within the
/// connection's deadlines (a hook times out well before them).
async fn wait_for_decision(
    shard: &Shard,
    conn: &Conn,
    session: &RefCell<ServerSession>,
) -> Result<(), CloseReason> {
    while session.borrow().is_awaiting_answer() && conn.is_open() {
        let wait = deadline(shard, conn, session)?;
        tokio::select! {
            () = &conn.resume => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
    Ok(())
}

/// How long the reader may wait before checking its deadlines again, or
/// the timeout that has passed. A connected peer silent for half the idle
/// timeout is pinged (RTMP's keepalive: ffmpeg, OBS and librtmp answer), so
/// a player waiting for a publisher stays while a dead peer goes.
fn deadline(
    shard: &Shard,
    conn: &Conn,
    session: &RefCell<ServerSession>,
) -> Result<Duration, CloseReason> {
    let now = shard.now_ms();
    let timeouts = shard.config().timeouts;
    if !session.borrow().is_connected() {
        let elapsed = Duration::from_millis(now.saturating_sub(conn.accepted_ms));
        return match timeouts.handshake.checked_sub(elapsed) {
            Some(left) if !left.is_zero() => Ok(left),
            _ => Err(CloseReason::HandshakeTimeout),
        };
    }
    let silent = Duration::from_millis(now.saturating_sub(conn.last_read_ms.get()));
    let ping_at = timeouts.idle / 2;
    if silent >= timeouts.idle {
        return Err(CloseReason::IdleTimeout);
    }
    if silent < ping_at {
        return Ok(ping_at - silent);
    }
    if !conn.pinged.replace(true) {
        session.borrow_mut().ping(now as u32);
        conn.flush_session();
    }
    Ok(timeouts.idle - silent)
}

/// Feeds what was read to the session and acts on its events until it
/// needs more input.
fn process_input(
    shard: &Rc<Shard>,
    conn: &Rc<Conn>,
    session: &RefCell<ServerSession>,
    input: &mut BytesMut,
) -> Result<(), SessionError> {
    loop {
        let result = session.borrow_mut().handle_input(input);
        conn.flush_session();
        result?;
        let mut handled = false;
        loop {
            let event = session.borrow_mut().poll_event();
            let Some(event) = event else {
                break;
            };
            handled = true;
            shard.on_event(conn, event);
            // Closed (a refusal too many, a kick): what the peer sent
            // after it is not acted on.
            if !conn.is_open() {
                break;
            }
        }
        conn.flush_session();
        if !handled || !conn.is_open() {
            return Ok(());
        }
    }
}

async fn write_loop(shard: Rc<Shard>, conn: Rc<Conn>) {
    let mut batch: Vec<Bytes> = Vec::new();
    let batch_bytes_max = shard.config().player.write_batch_bytes_max;
    // Writes only when woken: frames queued without a wake wait for the
    // next one (the stream's pacing). What one write could not carry, or
    // the socket did not take, goes on at once.
    let mut unfinished = false;
    loop {
        if !unfinished {
            if conn.state.get() == State::Closing {
                if conn.out.borrow().is_empty() {
                    // The TLS layer's last records first: close_notify
                    // (so that a close-delimited body is told from a cut
                    // one; none after a fatal alert), or the alert.
                    if let Some(tls) = &conn.tls {
                        tls.session.borrow_mut().close();
                        let _ = write_records(&conn, tls).await;
                    }
                    let _ = conn.socket.shutdown(Shutdown::Both);
                    break;
                }
            } else {
                (&conn.wake).await;
            }
        }
        if conn.state.get() == State::Closed {
            break;
        }
        // Taken now: what is queued while the write is in flight waits for
        // its own wake.
        let more = {
            let mut out = conn.out.borrow_mut();
            out.take_batch(batch_bytes_max, limits::WRITE_IOVECS_MAX, &mut batch);
            !out.is_empty()
        };
        if let Some(tls) = &conn.tls {
            match write_sealed(&shard, &conn, tls, &mut batch).await {
                Ok(left) => unfinished = more || left,
                Err(()) => break,
            }
            continue;
        }
        if batch.is_empty() {
            unfinished = false;
            continue;
        }
        let taken: usize = batch.iter().map(Bytes::len).sum();
        let result = if batch.len() == 1 {
            // One buffer: a plain write needs no iovec array.
            let buffer = batch.pop().unwrap_or_default();
            let (result, buffer) = conn.socket.write(buffer).submit().await;
            batch.push(buffer);
            result
        } else {
            let (result, buffers) = conn.socket.writev(std::mem::take(&mut batch)).await;
            batch = buffers;
            result
        };
        match result {
            Ok(written) if written > 0 => {
                unfinished = more || written < taken;
                conn.out.borrow_mut().written(written, &mut batch);
                batch.shrink_to(QUEUE_SLOTS_KEPT);
                shard.stats.bytes_out.add(written as u64);
                (shard.stats.bytes_out_by_protocol(conn.protocol())).add(written as u64);
                conn.bytes_out
                    .set(conn.bytes_out.get().wrapping_add(written as u64));
            }
            Ok(_) => {
                conn.abort(CloseReason::PeerClosed);
                break;
            }
            // After our own shutdown a write fails with EPIPE: not the
            // peer's doing. A reset is, whoever saw it first.
            Err(error)
                if conn.state.get() != State::Closed
                    || error.kind() == io::ErrorKind::ConnectionReset =>
            {
                conn.abort(CloseReason::Io(error));
                break;
            }
            Err(_) => break,
        }
    }
}

/// Seals what `batch` holds (as much as the TLS layer takes) and writes
/// the records, with any handshake message or alert due: whether some of
/// `batch` is left. `Err` once the connection has ended.
async fn write_sealed(
    shard: &Shard,
    conn: &Conn,
    tls: &TlsLayer,
    batch: &mut Vec<Bytes>,
) -> Result<bool, ()> {
    let mut sealed = 0;
    let mut left = false;
    {
        let mut session = tls.session.borrow_mut();
        for bytes in batch.iter() {
            let taken = session.seal(bytes);
            sealed += taken;
            if taken < bytes.len() {
                left = true;
                break;
            }
        }
    }
    if !batch.is_empty() {
        conn.out.borrow_mut().written(sealed, batch);
        shard.stats.bytes_out.add(sealed as u64);
        (shard.stats.bytes_out_by_protocol(conn.protocol())).add(sealed as u64);
        conn.bytes_out
            .set(conn.bytes_out.get().wrapping_add(sealed as u64));
    }
    write_records(conn, tls).await?;
    Ok(left)
}

/// Writes the records the TLS layer has ready, whole.
async fn write_records(conn: &Conn, tls: &TlsLayer) -> Result<(), ()> {
    let Some(records) = tls.session.borrow_mut().take_records() else {
        return Ok(());
    };
    let (result, _) = conn.socket.write_all(records).await;
    match result {
        Ok(()) => Ok(()),
        Err(error) => {
            if conn.state.get() != State::Closed || error.kind() == io::ErrorKind::ConnectionReset {
                conn.abort(CloseReason::Io(error));
            }
            Err(())
        }
    }
}

/// Wakes a connection's writer (or its reader) from its own shard's
/// thread: no atomics, no lock (the shard is single-threaded).
#[derive(Default)]
struct Wake {
    waker: Cell<Option<Waker>>,
    pending: Cell<bool>,
}

impl Wake {
    fn wake(&self) {
        self.pending.set(true);
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }
}

impl Future for &Wake {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.pending.replace(false) {
            Poll::Ready(())
        } else {
            self.waker.set(Some(cx.waker().clone()));
            Poll::Pending
        }
    }
}

impl Shard {
    /// 1528 bytes for a handshake's S1: not secret (the digest keys are
    /// public), so a fast generator seeded per shard does.
    fn random_block(&self) -> [u8; RANDOM_SIZE] {
        let mut state = self.now_ms() ^ ((self.id.0 as u64) << 48) ^ 0x9E37_79B9_7F4A_7C15;
        let mut block = [0u8; RANDOM_SIZE];
        // 1528 is 191 × 8: every chunk is whole.
        for chunk in block.chunks_exact_mut(8) {
            // splitmix64
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes());
        }
        block
    }
}
