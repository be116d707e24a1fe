//! An attacker's bytes: a bare handshake, hand-built chunks and commands,
//! and the checks that the server closed (or kept) the connection.
//!
//! Chunks are built with the protocol encoder ([`package`]: a fmt 0 chunk
//! and fmt 3 continuations) or by hand where the attack needs bytes no
//! encoder writes. An attacker that connected with [`super::Client`] sends
//! its raw messages on chunk streams of its own (see [`RAW_CHUNK_STREAM`])
//! so the client session's header compression stays true.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ringcast::protocol::amf::Value;
use ringcast::protocol::chunk::{MessageHeader, package};
use ringcast::protocol::handshake::HANDSHAKE_SIZE;
use ringcast::protocol::{ChunkStreamId, MessageStreamId, MessageType, Timestamp, amf0};

use super::TIMEOUT;

/// A chunk stream no session uses (they use 2..=8): raw messages from an
/// attacker that also runs a client session go here.
pub const RAW_CHUNK_STREAM: ChunkStreamId = ChunkStreamId(40);

/// The chunk size a [`super::Client`] announces right after its handshake.
pub const CLIENT_CHUNK_SIZE: u32 = ringcast::limits::CHUNK_SIZE_OUT_DEFAULT;

/// Chunk size of a connection that has not announced one (RTMP 1.0 §5.4.1).
pub const INITIAL_CHUNK_SIZE: u32 = ringcast::limits::CHUNK_SIZE_INITIAL;

/// Connects and completes a simple handshake (C0 = 3, C1 and C2 all
/// zero): the server's chunk decoder is next, at chunk size 128.
pub fn handshake(addr: SocketAddr) -> TcpStream {
    let mut socket = TcpStream::connect(addr).expect("connect");
    socket.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let mut c0c1 = vec![0u8; 1 + HANDSHAKE_SIZE];
    c0c1[0] = 3;
    socket.write_all(&c0c1).expect("C0C1");
    let mut s0s1s2 = vec![0u8; 1 + 2 * HANDSHAKE_SIZE];
    socket.read_exact(&mut s0s1s2).expect("S0S1S2");
    assert_eq!(s0s1s2[0], 3, "S0");
    socket.write_all(&[0u8; HANDSHAKE_SIZE]).expect("C2");
    socket
}

/// One message as self-contained chunks at `chunk_size`.
pub fn message(
    chunk_stream: ChunkStreamId,
    type_id: MessageType,
    stream_id: u32,
    payload: &[u8],
    chunk_size: u32,
) -> Bytes {
    let header = MessageHeader {
        chunk_stream,
        timestamp: Timestamp(0),
        type_id,
        stream_id: MessageStreamId(stream_id),
    };
    package(&header, payload, chunk_size).expect("a message the format carries")
}

/// An AMF0 command message (type 20) of `values` on `stream_id`.
pub fn command(values: &[Value], stream_id: u32, chunk_size: u32) -> Bytes {
    let mut body = BytesMut::new();
    amf0::encode_all(values, &mut body);
    message(
        RAW_CHUNK_STREAM,
        MessageType::COMMAND_AMF0,
        stream_id,
        &body,
        chunk_size,
    )
}

/// A command message whose body is given as bytes (malformed AMF).
pub fn command_body(body: &[u8], chunk_size: u32) -> Bytes {
    message(
        RAW_CHUNK_STREAM,
        MessageType::COMMAND_AMF0,
        0,
        body,
        chunk_size,
    )
}

/// A protocol control message (Set Chunk Size, Abort) carrying `value`.
pub fn control(type_id: MessageType, value: u32, chunk_size: u32) -> Bytes {
    message(
        ChunkStreamId(41),
        type_id,
        0,
        &value.to_be_bytes(),
        chunk_size,
    )
}

/// The command name, transaction id and null command object, then `args`.
pub fn call(name: &str, transaction_id: f64, args: Vec<Value>) -> Vec<Value> {
    let mut values = vec![
        Value::string(name),
        Value::Number(transaction_id),
        Value::Null,
    ];
    values.extend(args);
    values
}

/// Writes what it can: the server may already have closed the socket,
/// which is what most attacks expect.
pub fn send(socket: &mut TcpStream, bytes: &[u8]) {
    let _ = socket.write_all(bytes);
}

/// Reads and discards until the server closes the connection (EOF or a
/// reset); panics if it is still open after [`TIMEOUT`]. Returns how long
/// that took.
pub fn assert_closed(socket: &mut TcpStream, what: &str) -> Duration {
    let started = Instant::now();
    let deadline = started + TIMEOUT;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "{what}: the server kept the connection");
        socket.set_read_timeout(Some(left)).expect("timeout");
        match socket.read(&mut buf) {
            Ok(0) => return started.elapsed(),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // A reset: the server closed with our bytes unread.
            Err(_) => return started.elapsed(),
        }
    }
}

/// Sets SO_LINGER to zero so that dropping the socket sends a reset.
pub fn reset_on_drop(socket: &TcpStream) {
    socket2::SockRef::from(socket)
        .set_linger(Some(Duration::ZERO))
        .expect("linger");
}
