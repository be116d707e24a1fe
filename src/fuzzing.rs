//! Entry points for the fuzz targets in `tests/fuzz` and for the stable
//! test that replays their corpus (`tests/fuzz_corpus.rs`), so a
//! regression is caught without nightly. Each takes arbitrary bytes and
//! must return without panicking, whatever they are.

use bytes::BytesMut;

use crate::protocol::handshake::{self, HANDSHAKE_SIZE, RANDOM_SIZE};
use crate::protocol::{amf, amf0, amf3, chunk, flv};
use crate::session::{ServerConfig, ServerEvent, ServerSession};

/// A fuzz target's entry point.
pub type Target = fn(&[u8]);

/// The fuzz targets, by name, for the corpus replay.
pub const TARGETS: &[(&str, Target)] = &[
    ("handshake", handshake),
    ("chunk_decoder", chunk_decoder),
    ("amf0", amf0),
    ("amf3", amf3),
    ("flv", flv),
    ("server_session", server_session),
];

/// Splits `data` into pieces whose sizes come from its first byte, so the
/// fuzzer also explores how input arrives.
fn pieces(data: &[u8]) -> (usize, &[u8]) {
    match data.split_first() {
        Some((first, rest)) => (usize::from(*first).max(1), rest),
        None => (1, data),
    }
}

/// The server handshake fed in pieces; the bytes after it must stay put.
pub fn handshake(data: &[u8]) {
    let (step, data) = pieces(data);
    let mut server = handshake::Server::new(0, [0x5A; RANDOM_SIZE]);
    let mut input = BytesMut::new();
    for piece in data.chunks(step) {
        input.extend_from_slice(piece);
        if server.handle_input(&mut input).is_err() {
            return;
        }
        let _ = server.poll_transmit();
    }
    if server.is_done() {
        assert!(data.len() > 2 * HANDSHAKE_SIZE);
        assert_eq!(input.len(), data.len() - 1 - 2 * HANDSHAKE_SIZE);
    }
}

/// The chunk decoder fed in pieces, under small limits so they are hit.
pub fn chunk_decoder(data: &[u8]) {
    let (step, data) = pieces(data);
    let limits = chunk::Limits {
        message_size_max: 64 * 1024,
        partial_bytes_max: 128 * 1024,
        chunk_streams_max: 8,
    };
    let mut decoder = chunk::Decoder::new(limits);
    let mut input = BytesMut::new();
    for piece in data.chunks(step) {
        input.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut input) {
                Ok(Some(message)) => {
                    assert!(message.payload.len() <= limits.message_size_max as usize);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(decoder.partial_bytes() <= limits.partial_bytes_max as usize);
    }
}

/// Small AMF limits, so depth, item and byte bounds are reached.
fn amf_limits() -> amf::Limits {
    amf::Limits {
        depth_max: 16,
        items_max: 4096,
        bytes_max: 256 * 1024,
        reference_table_max: 256,
    }
}

/// AMF0 decoding; what decodes must encode and decode again to itself.
pub fn amf0(data: &[u8]) {
    if let Ok(values) = amf0::decode_all(data, &amf_limits()) {
        let mut out = BytesMut::new();
        amf0::encode_all(&values, &mut out);
        let _ = amf0::decode_all(&out, &amf::Limits::default());
    }
}

/// AMF3 decoding; what decodes must encode without panicking.
pub fn amf3(data: &[u8]) {
    if let Ok(values) = amf3::decode_all(data, &amf_limits()) {
        let mut out = BytesMut::new();
        amf3::encode_all(&values, &mut out);
        let _ = amf3::decode_all(&out, &amf::Limits::default());
    }
}

/// FLV tag inspection of the same bytes as audio and as video.
pub fn flv(data: &[u8]) {
    let _ = flv::inspect_video(data);
    let _ = flv::inspect_audio(data);
}

/// A server session after a valid simple handshake, fed `data` as chunks,
/// accepting every connect, publish and play.
pub fn server_session(data: &[u8]) {
    let (step, data) = pieces(data);
    let mut session = ServerSession::new(ServerConfig::default(), 0, [0; RANDOM_SIZE]);
    let mut input = BytesMut::new();
    input.extend_from_slice(&[handshake::RTMP_VERSION]);
    input.extend_from_slice(&[0; 2 * HANDSHAKE_SIZE]);
    if session.handle_input(&mut input).is_err() {
        return;
    }
    for piece in data.chunks(step) {
        input.extend_from_slice(piece);
        loop {
            if session.handle_input(&mut input).is_err() {
                return;
            }
            let mut answered = false;
            while let Some(event) = session.poll_event() {
                answered |= answer(&mut session, event);
            }
            let _ = session.poll_transmit();
            if !answered {
                break;
            }
        }
    }
}

/// Accepts whatever the session asks; true if it answered something.
fn answer(session: &mut ServerSession, event: ServerEvent) -> bool {
    let result = match event {
        ServerEvent::Connect { .. } => session.accept_connect(),
        ServerEvent::Publish { stream_id, .. } => session.accept_publish(stream_id),
        ServerEvent::Play {
            stream_id,
            stream_name,
            reset,
            ..
        } => session.accept_play(stream_id, &stream_name, reset),
        _ => return false,
    };
    assert!(result.is_ok(), "answering a pending request: {result:?}");
    true
}
