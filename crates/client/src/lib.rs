//! An RTMP client connection on tokio-uring: a client session over a
//! socket, for the relay (pulling from origins, pushing to them) and the
//! load generator.
//!
//! Connecting does not use tokio-uring's `TcpStream::connect`: its
//! io_uring connect op owns a clone of the socket until the kernel
//! completes it, so a connect dropped on a timeout keeps its descriptor
//! open until the kernel gives up on the SYN (about two minutes), and an
//! origin that drops SYNs makes every timed-out pull leak one for that
//! long. [`connect`] waits for the non-blocking connect through the
//! reactor instead, so dropping it closes the socket at once.
//!
//! A publisher that announces Enhanced RTMP's reconnect capability
//! ([`reconnect::open`]) hears a server's request to move through
//! [`Sender::reconnect_request`] and moves with [`reconnect::Move`]: a new
//! connection first, the old one closed only once the new one carries the
//! stream.

pub mod reconnect;

use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio_uring::buf::BoundedBuf;
use tokio_uring::net::TcpStream;

use ringcast_rtmp::limits;
use ringcast_rtmp::protocol::MessageStreamId;
use ringcast_rtmp::protocol::handshake::RANDOM_SIZE;
use ringcast_rtmp::protocol::url::RtmpUrl;
use ringcast_rtmp::session::{ClientConfig, ClientEvent, ClientSession, SessionError};
use ringcast_tls::{ClientTls, Tls};
use rustls::pki_types::ServerName;

/// Why a connection ended early, in words for logs and reports.
pub type Disconnect = String;

/// How long connecting, `connect` and `createStream`/`play` may take.
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

/// A client session over a socket; reads and writes happen in the task
/// that owns it (a publisher also lends the socket to a reader task).
pub struct Connection {
    pub socket: OwnedSocket,
    pub session: ClientSession,
    input: BytesMut,
    pub bytes_read: u64,
    /// Made for an `rtmp://` URL: a close before the server's first byte
    /// hints that the port may speak TLS.
    plain_url: bool,
}

impl Connection {
    /// Connects to `url`'s host as a client of its app, over TLS for an
    /// `rtmps://` URL, verifying the host's certificate against `roots`
    /// (the public roots when `None`). Userinfo (`user:pass@`) is no part
    /// of the host to resolve, nor of an error.
    pub async fn open_url(
        url: &RtmpUrl,
        roots: Option<&ClientTls>,
    ) -> Result<Connection, Disconnect> {
        let app = url.app();
        let scheme = if url.tls { "rtmps" } else { "rtmp" };
        let tc_url = format!("{scheme}://{}:{}/{app}", url.host, url.port);
        Connection::open_as(url, ClientConfig::new(app, &tc_url), roots).await
    }

    /// Connects to `url`'s host (over TLS for `rtmps://`, as
    /// [`Connection::open_url`]) as the client `config` describes.
    pub async fn open_as(
        url: &RtmpUrl,
        config: ClientConfig,
        roots: Option<&ClientTls>,
    ) -> Result<Connection, Disconnect> {
        let host = url
            .host
            .rsplit_once('@')
            .map_or(url.host.as_str(), |(_, host)| host);
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, url.port))
            .await
            .map_err(|e| format!("resolve {host}: {e}"))?
            .take(ADDRESSES_TRIED_MAX)
            .collect();
        let stream = connect_any(host, &addrs).await?;
        if !url.tls {
            let mut conn = Connection::over(OwnedSocket::from(stream), config);
            conn.plain_url = true;
            return Ok(conn);
        }
        // An rtmps:// URL never goes on without TLS: a handshake that
        // fails ends this connection, and the caller retries over TLS.
        let name = ringcast_tls::server_name(host)?;
        let roots = match roots {
            Some(roots) => roots.clone(),
            None => ClientTls::load(None).map_err(|e| e.to_string())?,
        };
        let socket = OwnedSocket::tls(stream, roots.config(), name)
            .await
            .map_err(|e| format!("{host}:{}: {e}", url.port))?;
        Ok(Connection::over(socket, config))
    }

    /// A client session over a connected socket.
    pub fn over(socket: OwnedSocket, config: ClientConfig) -> Connection {
        let session = ClientSession::new(config, 0, [0x42; RANDOM_SIZE]);
        Connection {
            socket,
            session,
            input: BytesMut::with_capacity(64 * 1024),
            bytes_read: 0,
            plain_url: false,
        }
    }

    /// Writes what the session has queued.
    pub async fn flush(&mut self) -> Result<(), Disconnect> {
        while let Some(bytes) = self.session.poll_transmit() {
            (self.socket.write_all(bytes).await).map_err(|e| format!("write: {e}"))?;
        }
        Ok(())
    }

    /// Writes the replies the session queued while reading (acknowledgements,
    /// pongs) on a connection that otherwise only reads; a backlog past
    /// [`limits::RELAY_REPLY_BACKLOG_BYTES_MAX`] closes it.
    pub async fn flush_replies(&mut self) -> Result<(), Disconnect> {
        while let Some(bytes) = self.session.poll_transmit() {
            check_backlog(bytes.len())?;
            (self.socket.write_all(bytes).await).map_err(|e| format!("write: {e}"))?;
        }
        Ok(())
    }

    /// Reads once, like [`Connection::read`], but a peer silent for
    /// `quiet` is sent a ping, and one silent for `quiet` again is given
    /// up on. The read in flight is kept across the ping: a dropped
    /// tokio-uring read would take the bytes it receives with it.
    pub async fn read_or_ping(&mut self, quiet: Duration) -> Result<usize, Disconnect> {
        self.reserve_input();
        let buffer = std::mem::take(&mut self.input);
        let (result, input) = {
            let read = self.socket.read(buffer);
            tokio::pin!(read);
            match tokio::time::timeout(quiet, &mut read).await {
                Ok(done) => done,
                Err(_) => {
                    self.session.ping(0).map_err(|e| e.to_string())?;
                    let ping: Vec<Bytes> =
                        std::iter::from_fn(|| self.session.poll_transmit()).collect();
                    let socket = &self.socket;
                    let answer = async {
                        for bytes in ping {
                            (socket.write_all(bytes).await).map_err(|e| format!("write: {e}"))?;
                        }
                        Ok::<_, Disconnect>((&mut read).await)
                    };
                    // Giving up drops the read; the connection goes with it.
                    tokio::time::timeout(quiet, answer).await.map_err(|_| {
                        format!("nothing received for {:?}, ping unanswered", quiet * 2)
                    })??
                }
            }
        };
        self.input = input;
        self.take_input(result)
    }

    /// Reads once and feeds the session; events are then in the session.
    pub async fn read(&mut self) -> Result<usize, Disconnect> {
        self.reserve_input();
        let buffer = std::mem::take(&mut self.input);
        let (result, input) = self.socket.read(buffer).await;
        self.input = input;
        self.take_input(result)
    }

    fn reserve_input(&mut self) {
        if self.input.capacity() - self.input.len() < 16 * 1024 {
            self.input.reserve(64 * 1024);
        }
    }

    /// Feeds what a read brought to the session.
    fn take_input(&mut self, result: io::Result<usize>) -> Result<usize, Disconnect> {
        let n = result.map_err(|e| self.unanswered(format!("read: {e}")))?;
        if n == 0 {
            return Err(self.unanswered("server closed the connection".into()));
        }
        self.bytes_read += n as u64;
        self.session
            .handle_input(&mut self.input)
            .map_err(|e| format!("protocol: {e}"))?;
        Ok(n)
    }

    /// `reason`, and a hint when a connection to an `rtmp://` URL ended
    /// before the server said a word: a TLS port closes on the RTMP
    /// handshake.
    fn unanswered(&self, reason: Disconnect) -> Disconnect {
        if self.bytes_read > 0 || !self.plain_url {
            return reason;
        }
        format!("{reason} before answering the RTMP handshake (a TLS port? rtmps:// speaks TLS)")
    }

    /// Reads until an event satisfies `want`, within [`SETUP_TIMEOUT`].
    pub async fn wait_for(
        &mut self,
        what: &str,
        want: impl Fn(&ClientEvent) -> bool,
    ) -> Result<ClientEvent, Disconnect> {
        let wait = async {
            loop {
                self.flush().await?;
                while let Some(event) = self.session.poll_event() {
                    if want(&event) {
                        return Ok(event);
                    }
                    if let ClientEvent::ConnectRejected { info } = &event {
                        return Err(format!("connect rejected: {info:?}"));
                    }
                    if let ClientEvent::Status { status, .. } = &event {
                        if status.level == "error" {
                            return Err(format!("{what} failed: {}", status.code));
                        }
                    }
                }
                self.read().await?;
            }
        };
        tokio::time::timeout(SETUP_TIMEOUT, wait)
            .await
            .unwrap_or_else(|_| Err(format!("{what} timed out")))
    }

    /// Handshake and `connect`, then `createStream`: the stream id.
    pub async fn setup(&mut self) -> Result<MessageStreamId, Disconnect> {
        self.wait_for("connect", |e| matches!(e, ClientEvent::Connected { .. }))
            .await?;
        let transaction = self.session.create_stream().map_err(|e| e.to_string())?;
        match self
            .wait_for("createStream", |e| {
                matches!(e, ClientEvent::StreamCreated { transaction_id, .. } if *transaction_id == transaction)
            })
            .await?
        {
            ClientEvent::StreamCreated { stream_id, .. } => Ok(stream_id),
            _ => Err("createStream answered oddly".into()),
        }
    }
}

/// How many of a host name's addresses [`Connection::open_url`] tries:
/// `localhost` may be `::1` first and a server listen on 127.0.0.1 only,
/// so one is too few; each try may take up to the caller's timeout.
pub const ADDRESSES_TRIED_MAX: usize = 4;

/// Connects to the first of `addrs` (the addresses of `host`) that
/// accepts.
async fn connect_any(host: &str, addrs: &[SocketAddr]) -> Result<TcpStream, Disconnect> {
    let mut failed = format!("resolve {host}: no address");
    for addr in addrs {
        match connect(*addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => failed = format!("connect to {addr}: {e}"),
        }
    }
    Err(failed)
}

/// Connects a TCP socket to `addr` (`TCP_NODELAY` set). Dropping the
/// future before it is done closes the socket at once (see the module
/// doc): the connect is a non-blocking `connect(2)` whose completion is
/// awaited as writability through the reactor, which holds no reference
/// to the socket. The socket is made blocking again before tokio-uring
/// gets it, since io_uring answers `EAGAIN` on a non-blocking socket
/// instead of waiting.
pub async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let kind = socket2::Type::STREAM.nonblocking();
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        kind,
        Some(socket2::Protocol::TCP),
    )?;
    let socket = match socket.connect(&addr.into()) {
        Ok(()) => socket,
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {
            // SAFETY: `socket` owns its descriptor, which is neither closed
            // nor replaced while registered: `into_inner` deregisters it
            // before anything else can touch it.
            let pending = unsafe { AsyncFd::register_with_interest(socket, Interest::WRITABLE)? };
            pending.writable().await?.retain_ready();
            pending.into_inner()
        }
        Err(e) => return Err(e),
    };
    if let Some(error) = socket.take_error()? {
        return Err(error);
    }
    socket.set_nonblocking(false)?;
    // Frames go out as soon as they are queued; the relay batches itself.
    socket.set_tcp_nodelay(true)?;
    Ok(TcpStream::from_std(socket.into()))
}

/// A client socket that is shut down when its owner drops it, so that a
/// read still in flight on it completes at once. tokio-uring 0.5 frees the
/// buffer of a read whose future was dropped when its runtime shuts down,
/// whether or not the kernel is done with it (`Driver::drop`); a completed
/// read is safe. Every owner of a client socket holds it through this.
pub struct OwnedSocket(Rc<Transport>);

/// A connected socket, plain or TLS: reads give plaintext, writes take
/// plaintext.
pub struct Transport {
    stream: TcpStream,
    tls: Option<TlsLink>,
}

/// A TLS socket's record layer; the buffer its ciphertext is read into;
/// plaintext that came with the handshake's last flight.
struct TlsLink {
    session: RefCell<Tls>,
    ciphertext: Cell<BytesMut>,
    early: Cell<BytesMut>,
}

impl std::ops::Deref for OwnedSocket {
    type Target = Transport;

    fn deref(&self) -> &Transport {
        &self.0
    }
}

impl From<TcpStream> for OwnedSocket {
    /// A plain socket [`connect`]ed for a protocol other than RTMP (the
    /// load generator's HTTP-FLV and WebSocket players).
    fn from(stream: TcpStream) -> OwnedSocket {
        OwnedSocket(Rc::new(Transport { stream, tls: None }))
    }
}

impl OwnedSocket {
    /// Runs a TLS handshake over `stream` with `name`, whose certificate
    /// `config` must verify; a failure says why (an unknown issuer, a
    /// name the certificate is not for, an expired one).
    pub async fn tls(
        stream: TcpStream,
        config: Arc<rustls::ClientConfig>,
        name: ServerName<'static>,
    ) -> Result<OwnedSocket, Disconnect> {
        let session = Tls::client(config, name).map_err(|e| format!("tls: {e}"))?;
        let socket = OwnedSocket(Rc::new(Transport {
            stream,
            tls: Some(TlsLink {
                session: RefCell::new(session),
                ciphertext: Cell::new(BytesMut::new()),
                early: Cell::new(BytesMut::new()),
            }),
        }));
        socket
            .handshake()
            .await
            .map_err(|e| format!("tls handshake: {e}"))?;
        Ok(socket)
    }
}

impl Transport {
    /// Reads once, appending what came (decrypted) to `buffer`: how many
    /// bytes; 0 at the end of the stream.
    pub async fn read(&self, buffer: BytesMut) -> (io::Result<usize>, BytesMut) {
        let Some(tls) = &self.tls else {
            let len = buffer.len();
            let (result, slice) = self.stream.read(buffer.slice(len..)).await;
            return (result, slice.into_inner());
        };
        let mut buffer = buffer;
        let early = tls.early.take();
        if !early.is_empty() {
            buffer.extend_from_slice(&early);
            return (Ok(early.len()), buffer);
        }
        loop {
            let before = buffer.len();
            match self.read_records(tls, &mut buffer).await {
                Ok(closed) if buffer.len() == before && !closed => continue,
                Ok(_) => return (Ok(buffer.len() - before), buffer),
                Err(error) => return (Err(error), buffer),
            }
        }
    }

    /// Reads ciphertext once and decrypts it into `plaintext`: whether the
    /// peer closed.
    async fn read_records(&self, tls: &TlsLink, plaintext: &mut BytesMut) -> io::Result<bool> {
        let mut ciphertext = tls.ciphertext.take();
        ciphertext.reserve(16 * 1024);
        let (result, slice) = self.stream.read(ciphertext.slice(..)).await;
        let mut ciphertext = slice.into_inner();
        let n = result?;
        let received = tls.session.borrow_mut().receive(&ciphertext, plaintext);
        ciphertext.clear();
        tls.ciphertext.set(ciphertext);
        Ok(n == 0 || received?.closed)
    }

    /// Writes all of `bytes` (sealed, over TLS).
    pub async fn write_all(&self, bytes: Bytes) -> io::Result<()> {
        let Some(tls) = &self.tls else {
            let (result, _) = self.stream.write_all(bytes).await;
            return result;
        };
        let mut rest = &bytes[..];
        loop {
            let sealed = tls.session.borrow_mut().seal(rest);
            rest = rest.get(sealed..).unwrap_or_default();
            self.write_records(tls).await?;
            if rest.is_empty() {
                return Ok(());
            }
        }
    }

    async fn write_records(&self, tls: &TlsLink) -> io::Result<()> {
        let records = tls.session.borrow_mut().take_records();
        match records {
            Some(records) => self.stream.write_all(records).await.0,
            None => Ok(()),
        }
    }

    /// Runs the TLS handshake to its end.
    async fn handshake(&self) -> io::Result<()> {
        let Some(tls) = &self.tls else {
            return Ok(());
        };
        loop {
            self.write_records(tls).await?;
            if !tls.session.borrow().is_handshaking() {
                return Ok(());
            }
            let mut early = tls.early.take();
            let closed = self.read_records(tls, &mut early).await;
            tls.early.set(early);
            if closed.is_err() {
                // The alert rustls queued (a certificate refused): the
                // server's log then says why; it may be gone already.
                let _ = self.write_records(tls).await;
            }
            if closed? {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection (does the port speak TLS?)",
                ));
            }
        }
    }

    /// Shuts the socket down both ways: a read in flight ends.
    pub fn shutdown(&self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}

impl Drop for OwnedSocket {
    fn drop(&mut self) {
        self.0.shutdown();
    }
}

/// A connection that mostly sends (a publisher): a background task reads
/// what the server says (acknowledgements, pings) into the session and
/// keeps the replies, and the owner writes; replies go out with the
/// owner's next write, so writes never interleave. Replies past
/// [`limits::RELAY_REPLY_BACKLOG_BYTES_MAX`] end the connection.
pub struct Sender {
    socket: OwnedSocket,
    session: Rc<RefCell<ClientSession>>,
    reader: tokio::task::JoinHandle<()>,
    inbound: Rc<Inbound>,
}

/// What the reader task of a [`Sender`] leaves for its owner.
struct Inbound {
    /// Replies the session queued, not yet written.
    replies: RefCell<Vec<Bytes>>,
    reply_bytes: Cell<usize>,
    /// When bytes last arrived.
    heard: Cell<Instant>,
    /// Why reading ended, once it has.
    closed: Cell<Option<Disconnect>>,
    /// Told when reading ends.
    ended: tokio::sync::Notify,
    /// The server's latest request that we connect again, not yet taken.
    reconnect: RefCell<Option<ReconnectRequest>>,
}

/// A server asked us to connect again ([`ClientEvent::ReconnectRequest`]),
/// to `tc_url` if it named one (absolute or relative: see
/// [`reconnect::target`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconnectRequest {
    pub tc_url: Option<String>,
}

impl Connection {
    /// Hands reading to a background task; see [`Sender`].
    pub fn into_sender(self) -> Sender {
        let Connection {
            socket,
            session,
            input,
            ..
        } = self;
        let session = Rc::new(RefCell::new(session));
        let inbound = Rc::new(Inbound {
            replies: RefCell::new(Vec::new()),
            reply_bytes: Cell::new(0),
            heard: Cell::new(Instant::now()),
            closed: Cell::new(None),
            ended: tokio::sync::Notify::new(),
            reconnect: RefCell::new(None),
        });
        let reader = tokio_uring::spawn(drain(
            socket.0.clone(),
            session.clone(),
            input,
            inbound.clone(),
        ));
        Sender {
            socket,
            session,
            reader,
            inbound,
        }
    }
}

impl Sender {
    /// Lets `f` queue messages on the session, then writes them after the
    /// replies waiting.
    pub async fn send<T>(
        &self,
        f: impl FnOnce(&mut ClientSession) -> Result<T, SessionError>,
    ) -> Result<T, Disconnect> {
        if let Some(reason) = self.inbound.closed.take() {
            return Err(reason);
        }
        let value = f(&mut self.session.borrow_mut()).map_err(|e| e.to_string())?;
        let mut pending = std::mem::take(&mut *self.inbound.replies.borrow_mut());
        self.inbound.reply_bytes.set(0);
        pending.extend(std::iter::from_fn(|| {
            self.session.borrow_mut().poll_transmit()
        }));
        for bytes in pending {
            (self.socket.write_all(bytes).await).map_err(|e| format!("write: {e}"))?;
        }
        Ok(value)
    }

    /// When bytes last arrived from the server.
    pub fn heard(&self) -> Instant {
        self.inbound.heard.get()
    }

    /// Why reading ended (the server closed, a protocol error, too many
    /// replies queued), once it has; the next [`Sender::send`] would fail.
    pub fn ended(&self) -> Option<Disconnect> {
        self.inbound.closed.take()
    }

    /// Waits until reading ends (at once if it has): an owner with nothing
    /// to send learns of it without waiting for its next write.
    pub async fn wait_ended(&self) {
        self.inbound.ended.notified().await;
    }

    /// The server's request that we connect again, once (the latest, if
    /// it asked more than once before this was called). Only a session
    /// that announced it can act on one is asked.
    pub fn reconnect_request(&self) -> Option<ReconnectRequest> {
        self.inbound.reconnect.borrow_mut().take()
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Feeds what the server sends to the session until the connection ends,
/// keeping the replies for the owner, then shuts the socket and records
/// why in `closed`.
async fn drain(
    socket: Rc<Transport>,
    session: Rc<RefCell<ClientSession>>,
    mut input: BytesMut,
    inbound: Rc<Inbound>,
) {
    let reason = loop {
        if input.capacity() - input.len() < 4096 {
            input.reserve(16 * 1024);
        }
        let (result, buffer) = socket.read(input).await;
        input = buffer;
        match result {
            Ok(0) => break "server closed the connection".to_owned(),
            Ok(_) => inbound.heard.set(Instant::now()),
            Err(e) => break format!("read: {e}"),
        }
        let mut session = session.borrow_mut();
        if let Err(e) = session.handle_input(&mut input) {
            break format!("protocol: {e}");
        }
        // A publisher acts on one event: a request to move. The rest
        // (acknowledgements, pings, statuses) need nothing from it.
        while let Some(event) = session.poll_event() {
            if let ClientEvent::ReconnectRequest { tc_url, .. } = event {
                *inbound.reconnect.borrow_mut() = Some(ReconnectRequest { tc_url });
            }
        }
        if let Some(replies) = session.poll_transmit() {
            let backlog = inbound.reply_bytes.get() + replies.len();
            if let Err(reason) = check_backlog(backlog) {
                break reason;
            }
            inbound.reply_bytes.set(backlog);
            inbound.replies.borrow_mut().push(replies);
        }
    };
    // Closed at once, not when the owner next writes: a peer past the
    // reply bound must not keep filling our socket meanwhile.
    socket.shutdown();
    inbound.closed.set(Some(reason));
    // Kept as a permit if the owner is not waiting yet.
    inbound.ended.notify_one();
}

/// Errs when `bytes` of replies wait for a peer: past
/// [`limits::RELAY_REPLY_BACKLOG_BYTES_MAX`].
fn check_backlog(bytes: usize) -> Result<(), Disconnect> {
    if bytes > limits::RELAY_REPLY_BACKLOG_BYTES_MAX {
        return Err(format!(
            "{bytes} bytes of replies queued for the peer exceed max {}",
            limits::RELAY_REPLY_BACKLOG_BYTES_MAX
        ));
    }
    Ok(())
}
