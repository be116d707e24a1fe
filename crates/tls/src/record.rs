//! One TLS connection's record layer over owned buffers, for sockets whose
//! reads and writes take ownership of their buffers (io_uring): the
//! caller reads ciphertext into a buffer of its own and hands it here,
//! gets the plaintext appended to its input, seals plaintext, and writes
//! the records this gives back. Nothing here touches a socket.
//!
//! Sealing is the one copy per connection TLS requires: the shared
//! frames a player is sent are encrypted from the shared buffers straight
//! into that player's records.

use std::io::{self, BufRead, Write};

use bytes::{Bytes, BytesMut};
use rustls::Connection;

/// Plaintext a connection may have sealed and not yet written: sealing
/// stops there until the records are taken. A quarter of a megabyte
/// keeps a player's batch in one write.
pub const SEALED_BYTES_MAX: usize = 256 * 1024;

/// The first byte of a TLS handshake record (`ContentType::Handshake`):
/// every ClientHello starts with it, no RTMP handshake (version 3, or 6
/// for RTMPE) nor HTTP method does.
pub const HANDSHAKE_RECORD: u8 = 0x16;

/// A TLS connection, server or client side.
pub struct Tls {
    conn: Connection,
    /// Bytes have come from the peer.
    heard: bool,
}

/// What a [`Tls::receive`] found besides plaintext.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Received {
    /// The peer sent `close_notify`: nothing more will come.
    pub closed: bool,
}

/// Why a TLS connection cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The peer sent something TLS forbids, or the handshake failed
    /// (no common version or cipher, a bad certificate, an alert);
    /// shown in words ([`crate::reasons::describe`]).
    #[error("{}", crate::reasons::describe(.0))]
    Protocol(#[from] rustls::Error),
    /// What came is not TLS at all (a plain RTMP or HTTP client).
    #[error("not TLS: the first byte is {0:#04x}, not a handshake record")]
    NotTls(u8),
}

impl Tls {
    /// The server side of a connection just accepted.
    pub fn server(config: std::sync::Arc<rustls::ServerConfig>) -> Result<Tls, TlsError> {
        Ok(Tls::new(rustls::ServerConnection::new(config)?.into()))
    }

    /// The client side of a connection to `name`, whose certificate must
    /// be valid for it.
    pub fn client(
        config: std::sync::Arc<rustls::ClientConfig>,
        name: rustls::pki_types::ServerName<'static>,
    ) -> Result<Tls, TlsError> {
        Ok(Tls::new(
            rustls::ClientConnection::new(config, name)?.into(),
        ))
    }

    fn new(mut conn: Connection) -> Tls {
        conn.set_buffer_limit(Some(SEALED_BYTES_MAX));
        Tls { conn, heard: false }
    }

    /// Takes `ciphertext` read from the socket and appends what it
    /// decrypts to `plaintext`. Handshake messages and alerts to answer
    /// are queued: [`Tls::wants_write`] then says so.
    pub fn receive(
        &mut self,
        mut ciphertext: &[u8],
        plaintext: &mut BytesMut,
    ) -> Result<Received, TlsError> {
        if let (false, Connection::Server(_), Some(&first)) =
            (self.heard, &self.conn, ciphertext.first())
        {
            self.heard = true;
            if first != HANDSHAKE_RECORD {
                return Err(TlsError::NotTls(first));
            }
        }
        let mut received = Received::default();
        while !ciphertext.is_empty() {
            // Reading from a slice fails only when rustls' own buffer is
            // full, which processing below empties.
            if let Err(error) = self.conn.read_tls(&mut ciphertext) {
                return Err(TlsError::Protocol(rustls::Error::General(
                    error.to_string(),
                )));
            }
            let state = self.conn.process_new_packets()?;
            received.closed |= state.peer_has_closed();
            let mut reader = self.conn.reader();
            loop {
                match reader.fill_buf() {
                    Ok([]) | Err(_) => break,
                    Ok(chunk) => {
                        let n = chunk.len();
                        plaintext.extend_from_slice(chunk);
                        reader.consume(n);
                    }
                }
            }
        }
        Ok(received)
    }

    /// Seals as much of `plaintext` as fits under [`SEALED_BYTES_MAX`]
    /// (buffered until the handshake is done): how many bytes were taken.
    pub fn seal(&mut self, plaintext: &[u8]) -> usize {
        // Writing to rustls' buffer fails only when it is full: 0 taken.
        self.conn.writer().write(plaintext).unwrap_or(0)
    }

    /// The records ready to go out (handshake messages, sealed plaintext,
    /// alerts), in order, as one buffer; `None` when there are none.
    pub fn take_records(&mut self) -> Option<Bytes> {
        if !self.conn.wants_write() {
            return None;
        }
        let mut records = Vec::new();
        while self.conn.wants_write() {
            // Writing to a Vec cannot fail.
            if self.conn.write_tls(&mut records).is_err() {
                break;
            }
        }
        Some(Bytes::from(records))
    }

    /// There are records to write.
    pub fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// The handshake is not done yet.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Queues `close_notify`: the last record to write.
    pub fn close(&mut self) {
        self.conn.send_close_notify();
    }

    /// The server name the client asked for (SNI), on the server side.
    pub fn server_name(&self) -> Option<&str> {
        match &self.conn {
            Connection::Server(server) => server.server_name(),
            Connection::Client(_) => None,
        }
    }
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("handshaking", &self.conn.is_handshaking())
            .finish_non_exhaustive()
    }
}

/// For callers that report a TLS failure as an I/O error.
impl From<TlsError> for io::Error {
    fn from(error: TlsError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, error)
    }
}
