//! An RTMP client connection on tokio-uring: a client session over a
//! socket, for the relay (pulling from origins, pushing to them) and the
//! load generator.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use bytes::BytesMut;
use tokio_uring::buf::BoundedBuf;
use tokio_uring::net::TcpStream;

use crate::protocol::MessageStreamId;
use crate::protocol::command::RtmpUrl;
use crate::protocol::handshake::RANDOM_SIZE;
use crate::session::{ClientConfig, ClientEvent, ClientSession, SessionError};

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
}

impl Connection {
    /// Connects to `addr` as a client of `app` (a load generator's
    /// players keep only `media_prefix` bytes of each media body).
    pub async fn open(
        addr: SocketAddr,
        app: &str,
        media_prefix: Option<usize>,
    ) -> Result<Connection, Disconnect> {
        let mut config = ClientConfig::new(app, &format!("rtmp://{addr}/{app}"));
        config.media_prefix = media_prefix;
        Connection::open_with(addr, config).await
    }

    /// Connects to `url`'s host as a client of its app.
    pub async fn open_url(url: &RtmpUrl) -> Result<Connection, Disconnect> {
        let host = (url.host.as_str(), url.port);
        let addr = tokio::net::lookup_host(host)
            .await
            .map_err(|e| format!("resolve {}: {e}", url.host))?
            .next()
            .ok_or_else(|| format!("resolve {}: no address", url.host))?;
        let app = url.app();
        let tc_url = format!("rtmp://{}:{}/{app}", url.host, url.port);
        Connection::open_with(addr, ClientConfig::new(app, &tc_url)).await
    }

    pub async fn open_with(
        addr: SocketAddr,
        config: ClientConfig,
    ) -> Result<Connection, Disconnect> {
        let socket = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect to {addr}: {e}"))?;
        let _ = socket.set_nodelay(true);
        let session = ClientSession::new(config, 0, [0x42; RANDOM_SIZE]);
        Ok(Connection {
            socket: OwnedSocket(Rc::new(socket)),
            session,
            input: BytesMut::with_capacity(64 * 1024),
            bytes_read: 0,
        })
    }

    /// Writes what the session has queued.
    pub async fn flush(&mut self) -> Result<(), Disconnect> {
        while let Some(bytes) = self.session.poll_transmit() {
            let (result, _) = self.socket.write_all(bytes).await;
            result.map_err(|e| format!("write: {e}"))?;
        }
        Ok(())
    }

    /// Reads once and feeds the session; events are then in the session.
    pub async fn read(&mut self) -> Result<usize, Disconnect> {
        if self.input.capacity() - self.input.len() < 16 * 1024 {
            self.input.reserve(64 * 1024);
        }
        let len = self.input.len();
        let buffer = std::mem::take(&mut self.input);
        let (result, slice) = self.socket.read(buffer.slice(len..)).await;
        self.input = slice.into_inner();
        let n = result.map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("server closed the connection".into());
        }
        self.bytes_read += n as u64;
        self.session
            .handle_input(&mut self.input)
            .map_err(|e| format!("protocol: {e}"))?;
        Ok(n)
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

/// A client socket that is shut down when its owner drops it, so that a
/// read still in flight on it completes at once. tokio-uring 0.5 frees the
/// buffer of a read whose future was dropped when its runtime shuts down,
/// whether or not the kernel is done with it (`Driver::drop`); a completed
/// read is safe. Every owner of a client socket holds it through this.
pub struct OwnedSocket(Rc<TcpStream>);

impl std::ops::Deref for OwnedSocket {
    type Target = TcpStream;

    fn deref(&self) -> &TcpStream {
        &self.0
    }
}

impl Drop for OwnedSocket {
    fn drop(&mut self) {
        let _ = self.0.shutdown(std::net::Shutdown::Both);
    }
}

/// A connection that mostly sends (a publisher): a background task reads
/// what the server says (acknowledgements, pings) into the session, and
/// the owner writes; answers go out with the owner's next write, so writes
/// never interleave.
pub struct Sender {
    socket: OwnedSocket,
    session: Rc<RefCell<ClientSession>>,
    reader: tokio::task::JoinHandle<()>,
    closed: Rc<Cell<Option<Disconnect>>>,
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
        let closed = Rc::new(Cell::new(None));
        let reader = tokio_uring::spawn(drain(
            socket.0.clone(),
            session.clone(),
            input,
            closed.clone(),
        ));
        Sender {
            socket,
            session,
            reader,
            closed,
        }
    }
}

impl Sender {
    /// Lets `f` queue messages on the session, then writes them.
    pub async fn send<T>(
        &self,
        f: impl FnOnce(&mut ClientSession) -> Result<T, SessionError>,
    ) -> Result<T, Disconnect> {
        if let Some(reason) = self.closed.take() {
            return Err(reason);
        }
        let value = f(&mut self.session.borrow_mut()).map_err(|e| e.to_string())?;
        let pending: Vec<_> =
            std::iter::from_fn(|| self.session.borrow_mut().poll_transmit()).collect();
        for bytes in pending {
            let (result, _) = self.socket.write_all(bytes).await;
            result.map_err(|e| format!("write: {e}"))?;
        }
        Ok(value)
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Feeds what the server sends to the session until the connection ends,
/// then records why in `closed`.
async fn drain(
    socket: Rc<TcpStream>,
    session: Rc<RefCell<ClientSession>>,
    mut input: BytesMut,
    closed: Rc<Cell<Option<Disconnect>>>,
) {
    let reason = loop {
        if input.capacity() - input.len() < 4096 {
            input.reserve(16 * 1024);
        }
        let len = input.len();
        let (result, slice) = socket.read(input.slice(len..)).await;
        input = slice.into_inner();
        match result {
            Ok(0) => break "server closed the connection".to_owned(),
            Ok(_) => {}
            Err(e) => break format!("read: {e}"),
        }
        let mut session = session.borrow_mut();
        if let Err(e) = session.handle_input(&mut input) {
            break format!("protocol: {e}");
        }
        while session.poll_event().is_some() {}
    };
    closed.set(Some(reason));
}
