//! An RTMP client connection on tokio-uring: a client session over a
//! socket, for the relay (pulling from origins, pushing to them) and the
//! load generator.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use bytes::BytesMut;
use tokio_uring::buf::BoundedBuf;
use tokio_uring::net::TcpStream;

use crate::protocol::MessageStreamId;
use crate::protocol::handshake::RANDOM_SIZE;
use crate::session::{ClientConfig, ClientEvent, ClientSession};

/// Why a bench connection ended early: the reason players report.
pub type Disconnect = String;

/// How long connecting, `connect` and `createStream`/`play` may take.
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

/// A client session over a socket; reads and writes happen in the task
/// that owns it (a publisher also lends the socket to a reader task).
pub struct Connection {
    pub socket: Rc<TcpStream>,
    pub session: ClientSession,
    input: BytesMut,
    pub bytes_read: u64,
}

impl Connection {
    /// Connects to `addr` as a client of `app`.
    pub async fn open(
        addr: SocketAddr,
        app: &str,
        media_prefix: Option<usize>,
    ) -> Result<Connection, Disconnect> {
        let socket = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let _ = socket.set_nodelay(true);
        let mut config = ClientConfig::new(app, &format!("rtmp://{addr}/{app}"));
        config.media_prefix = media_prefix;
        let session = ClientSession::new(config, 0, [0x42; RANDOM_SIZE]);
        Ok(Connection {
            socket: Rc::new(socket),
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
