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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::testing::{Ca, Failed, TempDir, connected, pump};
    use crate::{ClientTls, ServerTls};

    /// A server for `server.example.test` with a certificate from a CA the
    /// client trusts (its PEM in a file, as relays are given it).
    fn configs() -> (Arc<rustls::ClientConfig>, Arc<rustls::ServerConfig>) {
        let dir = TempDir::new();
        let ca = Ca::new("record test CA");
        let files = dir.write_leaf("server", &ca.leaf(&["server.example.test"]));
        let server = ServerTls::load(&[files], std::time::SystemTime::now()).unwrap();
        let ca_file = dir.write("ca.pem", &ca.pem());
        let client = ClientTls::load(Some(&ca_file)).unwrap();
        (client.config(), server.config())
    }

    #[test]
    fn a_client_and_server_in_memory_shake_hands_and_carry_data_both_ways() {
        let (client_config, server_config) = configs();
        let (mut client, mut server) =
            connected(client_config, server_config, "server.example.test").unwrap();
        assert_eq!(server.server_name(), Some("server.example.test"));
        assert_eq!(client.server_name(), None, "a client asks, it is not asked");
        let (mut at_client, mut at_server) = (BytesMut::new(), BytesMut::new());

        assert_eq!(client.seal(b"GET /live/cam.flv"), 17);
        pump(&mut client, &mut server, &mut at_client, &mut at_server).unwrap();
        assert_eq!(&at_server[..], b"GET /live/cam.flv");

        // More than one batch may hold: sealed in pieces, each piece no
        // more than the bound, the records taken between them.
        let big: Vec<u8> = (0..SEALED_BYTES_MAX * 2 + 1000)
            .map(|i| (i % 251) as u8)
            .collect();
        let mut rest = &big[..];
        let mut pieces = Vec::new();
        while !rest.is_empty() {
            let taken = server.seal(rest);
            assert!(taken > 0, "an emptied buffer takes more");
            if taken < rest.len() {
                assert_eq!(server.seal(&rest[taken..]), 0, "full until taken");
            }
            pieces.push(taken);
            rest = &rest[taken..];
            let records = server.take_records().expect("records for what was sealed");
            client.receive(&records, &mut at_client).unwrap();
        }
        assert!(pieces.len() >= 3, "pieces {pieces:?}");
        assert!(
            pieces.iter().all(|&n| n <= SEALED_BYTES_MAX),
            "pieces {pieces:?}"
        );
        assert_eq!(at_client.len(), big.len());
        assert!(at_client[..] == big[..], "the same bytes, in order");
        assert!(server.take_records().is_none(), "nothing left to write");

        // close_notify: the client hears the end, with no more data.
        server.close();
        let records = server.take_records().expect("close_notify");
        let mut after = BytesMut::new();
        let received = client.receive(&records, &mut after).unwrap();
        assert!(received.closed);
        assert!(after.is_empty());
    }

    #[test]
    fn plain_rtmp_or_http_on_a_tls_server_is_not_tls() {
        let (_, server_config) = configs();
        let rtmp_c0c1 = [&[3u8][..], &[0; 1536]].concat();
        for (what, first_bytes, first) in [
            ("an RTMP handshake", &rtmp_c0c1[..], 0x03),
            (
                "an HTTP request",
                &b"GET /live/cam.flv HTTP/1.1\r\n"[..],
                b'G',
            ),
        ] {
            let mut server = Tls::server(server_config.clone()).unwrap();
            let mut plaintext = BytesMut::new();
            match server.receive(first_bytes, &mut plaintext) {
                Err(TlsError::NotTls(byte)) => assert_eq!(byte, first, "{what}"),
                other => panic!("{what}: {other:?}"),
            }
            assert!(plaintext.is_empty());
            assert_eq!(
                TlsError::NotTls(first).to_string(),
                format!("not TLS: the first byte is {first:#04x}, not a handshake record")
            );
        }
    }

    #[test]
    fn a_handshake_record_of_garbage_is_a_protocol_error() {
        let (_, server_config) = configs();
        // A handshake record holding a ClientHello of 4 garbage bytes:
        // refused with a decode_error alert to say why.
        let mut server = Tls::server(server_config.clone()).unwrap();
        let hello = [
            HANDSHAKE_RECORD,
            3,
            1,
            0,
            8,
            1,
            0,
            0,
            4,
            0xA5,
            0xA5,
            0xA5,
            0xA5,
        ];
        let error = server.receive(&hello, &mut BytesMut::new()).unwrap_err();
        assert!(matches!(error, TlsError::Protocol(_)), "{error:?}");
        let alert = server.take_records().expect("an alert");
        // An alert record (TLS 1.2 framing), fatal (2), decode_error (50).
        assert_eq!(&alert[..], [0x15, 3, 3, 0, 2, 2, 50]);
        // A handshake message claiming 10 MiB: refused from its header,
        // with no alert (rustls' deframer stops there).
        let mut server = Tls::server(server_config).unwrap();
        let mut huge = vec![HANDSHAKE_RECORD, 3, 1, 0, 64, 1, 0xA0, 0, 0];
        huge.extend([0xA5; 60]);
        let error = server.receive(&huge, &mut BytesMut::new()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "received corrupt message of type HandshakePayloadTooLarge"
        );
    }

    #[test]
    fn a_client_hello_one_byte_at_a_time_completes_the_handshake() {
        let (client_config, server_config) = configs();
        let name = crate::server_name("server.example.test").unwrap();
        let mut client = Tls::client(client_config, name).unwrap();
        let mut server = Tls::server(server_config).unwrap();
        let hello = client.take_records().expect("a ClientHello");
        let mut plaintext = BytesMut::new();
        for byte in hello.iter() {
            assert!(server.take_records().is_none(), "nothing until it is whole");
            server
                .receive(std::slice::from_ref(byte), &mut plaintext)
                .unwrap();
        }
        let (mut a, mut b) = (BytesMut::new(), BytesMut::new());
        let answer = server.take_records().expect("the server's flight");
        client.receive(&answer, &mut a).unwrap();
        pump(&mut client, &mut server, &mut a, &mut b).unwrap();
        assert!(!client.is_handshaking() && !server.is_handshaking());
    }

    #[test]
    fn a_client_refuses_a_server_whose_certificate_it_cannot_verify() {
        let (client_config, _) = configs();
        // The same name, from a CA the client does not trust.
        let dir = TempDir::new();
        let stranger = Ca::new("another CA");
        let files = dir.write_leaf("server", &stranger.leaf(&["server.example.test"]));
        let server = ServerTls::load(&[files], std::time::SystemTime::now()).unwrap();
        match connected(client_config, server.config(), "server.example.test") {
            Err(Failed::Client(TlsError::Protocol(rustls::Error::InvalidCertificate(why)))) => {
                assert_eq!(why, rustls::CertificateError::UnknownIssuer);
            }
            other => panic!("{:?}", other.map(|_| "connected")),
        }
    }
}
