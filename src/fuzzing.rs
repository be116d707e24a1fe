//! Entry points for the fuzz targets in `tests/fuzz` and for the stable
//! test that replays their corpus (`tests/fuzz_corpus.rs`), so a
//! regression is caught without nightly. Each takes arbitrary bytes and
//! must return without panicking, whatever they are.

use bytes::BytesMut;

use crate::protocol::amf::Value;
use crate::protocol::chunk::MessageHeader;
use crate::protocol::command::{Command, Play, PublishType};
use crate::protocol::handshake::{self, HANDSHAKE_SIZE, RANDOM_SIZE};
use crate::protocol::message::{Message, UserControl};
use crate::protocol::{
    ChunkStreamId, MessageStreamId, MessageType, Timestamp, amf, amf0, amf3, chunk, flv,
};
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
    ("session_messages", session_messages),
    ("http_request", http_request),
    ("websocket_frames", websocket_frames),
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

/// The chunk decoder fed in pieces, under small limits so they are hit;
/// no message is longer than the bound of its type.
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
                    let (_, max) = limits.size_max(message.type_id);
                    assert!(message.payload.len() <= max as usize);
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

/// What decoded from `input` must cost no more than its budget
/// ([`amf::Limits::budget`]): references never expand a message past a
/// small multiple of its length.
fn assert_within_budget(values: &[Value], input: &[u8], limits: &amf::Limits) {
    let cost = values
        .iter()
        .fold(amf::Cost::default(), |sum, v| sum.plus(v.cost()));
    let budget = limits.budget(input.len());
    assert!(
        cost.items <= budget.items && cost.bytes <= budget.bytes,
        "{cost:?} decoded from {} bytes exceeds the budget {budget:?}",
        input.len()
    );
}

/// AMF0 decoding within the budget, under small limits and the defaults;
/// what decodes must encode and decode again.
pub fn amf0(data: &[u8]) {
    for limits in [amf_limits(), amf::Limits::default()] {
        if let Ok(values) = amf0::decode_all(data, &limits) {
            assert_within_budget(&values, data, &limits);
            let mut out = BytesMut::new();
            amf0::encode_all(&values, &mut out);
            let _ = amf0::decode_all(&out, &amf::Limits::default());
        }
    }
}

/// AMF3 decoding within the budget, under small limits and the defaults;
/// what decodes must encode without panicking.
pub fn amf3(data: &[u8]) {
    for limits in [amf_limits(), amf::Limits::default()] {
        if let Ok(values) = amf3::decode_all(data, &limits) {
            assert_within_budget(&values, data, &limits);
            let mut out = BytesMut::new();
            amf3::encode_all(&values, &mut out);
            let _ = amf3::decode_all(&out, &amf::Limits::default());
        }
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

/// Accepts whatever the session asks; true if it answered something. The
/// session asserts (in debug builds, as fuzzing runs) that what it is
/// answered was pending.
fn answer(session: &mut ServerSession, event: ServerEvent) -> bool {
    match event {
        ServerEvent::Connect { .. } => session.accept_connect(),
        ServerEvent::Publish { stream_id, .. } => session.accept_publish(stream_id),
        ServerEvent::Play {
            stream_id,
            stream_name,
            reset,
            ..
        } => session.accept_play(stream_id, &stream_name, reset),
        _ => return false,
    }
    true
}

/// Structure-aware: `data` is a script of valid-ish RTMP messages (connect,
/// createStream, publish, play, media, metadata, control, unknown and
/// malformed commands, chunk size changes, aborts), chunked by our encoder
/// on varying chunk streams and fed in varying pieces to a server session
/// that accepts every request. Whatever the script, the session must not
/// panic, and everything it sends must decode as valid chunks.
pub fn session_messages(data: &[u8]) {
    let mut script = Script { data, at: 0 };
    let mut session = ServerSession::new(ServerConfig::default(), 0, [0; RANDOM_SIZE]);
    let mut input = BytesMut::new();
    input.extend_from_slice(&[handshake::RTMP_VERSION]);
    input.extend_from_slice(&[0; 2 * HANDSHAKE_SIZE]);
    let mut encoder = chunk::Encoder::new();
    let mut output = OutputCheck::default();
    let mut clock = 0u32;
    while !script.is_done() {
        let (header, body) = next_message(&mut script, &mut clock);
        if encoder.encode(&header, &body, &mut input).is_err() {
            continue;
        }
        if header.type_id == MessageType::SET_CHUNK_SIZE {
            let size = u32::from_be_bytes(
                body.get(..4)
                    .and_then(|b| b.try_into().ok())
                    .unwrap_or([0, 0, 0, 128]),
            );
            if encoder.set_chunk_size(size).is_err() {
                return;
            }
        }
        if script.byte() % 3 == 0 && !feed(&mut session, &mut input, &mut output) {
            return;
        }
    }
    feed(&mut session, &mut input, &mut output);
}

/// Reads a script; past its end every read is zero.
struct Script<'a> {
    data: &'a [u8],
    at: usize,
}

impl Script<'_> {
    fn is_done(&self) -> bool {
        self.at >= self.data.len()
    }

    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }

    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.byte()).collect()
    }

    fn name(&mut self) -> String {
        const NAMES: [&str; 5] = ["cam", "live", "cam?key=1", "", "a/b"];
        NAMES
            .get(usize::from(self.byte()) % NAMES.len())
            .copied()
            .unwrap_or("cam")
            .to_owned()
    }
}

/// The next message of the script.
fn next_message(script: &mut Script<'_>, clock: &mut u32) -> (MessageHeader, Vec<u8>) {
    let op = script.byte();
    let stream = MessageStreamId(u32::from(script.byte() % 4));
    *clock = clock.wrapping_add(match script.byte() % 8 {
        0 => script.u32(),
        n => u32::from(n) * 20,
    });
    let chunk_stream = ChunkStreamId(match script.byte() % 6 {
        0 => 2,
        1 => 3,
        2 => 64 + u32::from(script.byte()),
        3 => 320 + u32::from(script.byte()),
        n => u32::from(n) + 2,
    });
    let (type_id, body) = match op % 12 {
        0..=2 => (
            MessageType::COMMAND_AMF0,
            encode(&command(script).to_values()),
        ),
        3 => media_body(script, MessageType::VIDEO),
        4 => media_body(script, MessageType::AUDIO),
        5 => (
            MessageType::DATA_AMF0,
            encode(&[
                Value::string("@setDataFrame"),
                Value::string("onMetaData"),
                amf_value(script, 3),
            ]),
        ),
        6 => (
            MessageType::SET_CHUNK_SIZE,
            (u32::from(script.byte()) * 37 + 1).to_be_bytes().to_vec(),
        ),
        7 => (
            MessageType::ABORT,
            u32::from(script.byte() % 10).to_be_bytes().to_vec(),
        ),
        8 => control(script),
        9 => {
            let mut body = vec![0];
            body.extend(encode(&command(script).to_values()));
            (MessageType::COMMAND_AMF3, body)
        }
        10 => {
            let len = usize::from(script.byte());
            (MessageType::AGGREGATE, script.bytes(len))
        }
        _ => {
            let type_id = MessageType(script.byte());
            let len = usize::from(script.byte());
            (type_id, script.bytes(len))
        }
    };
    let header = MessageHeader {
        chunk_stream,
        timestamp: Timestamp(*clock),
        type_id,
        stream_id: stream,
    };
    (header, body)
}

fn encode(values: &[Value]) -> Vec<u8> {
    let mut out = BytesMut::new();
    amf0::encode_all(values, &mut out);
    out.to_vec()
}

fn command(script: &mut Script<'_>) -> Command {
    let transaction_id = f64::from(script.byte());
    let stream_name = script.name();
    match script.byte() % 9 {
        0 => Command::Connect(crate::protocol::command::Connect {
            transaction_id: 1.0,
            app: script.name(),
            tc_url: Some("rtmp://h/live".into()),
            flash_ver: None,
            object_encoding: f64::from(script.byte() % 4),
            properties: crate::protocol::amf::Object::new([("app", Value::string(script.name()))]),
            arguments: vec![amf_value(script, 2)],
        }),
        1 => Command::CreateStream { transaction_id },
        2 => Command::Publish {
            transaction_id,
            stream_name,
            publish_type: PublishType::Live,
        },
        3 => Command::Play(Play {
            transaction_id,
            stream_name,
            start: -2.0,
            duration: -1.0,
            reset: script.byte() % 2 == 0,
        }),
        4 => Command::DeleteStream {
            transaction_id,
            stream_id: MessageStreamId(u32::from(script.byte() % 4)),
        },
        5 => Command::CloseStream { transaction_id },
        6 => Command::FcPublish {
            transaction_id,
            stream_name,
        },
        7 => Command::Pause {
            transaction_id,
            pause: script.byte() % 2 == 0,
            position_ms: 0.0,
        },
        _ => Command::Call(crate::protocol::command::Call {
            name: stream_name,
            transaction_id,
            command_object: amf_value(script, 2),
            arguments: vec![amf_value(script, 2)],
        }),
    }
}

fn amf_value(script: &mut Script<'_>, depth: u8) -> Value {
    match script.byte() % 7 {
        0 => Value::Number(f64::from(script.u32())),
        1 => Value::string(script.name()),
        2 => Value::Boolean(script.byte() % 2 == 0),
        3 if depth > 0 => Value::object([
            ("width", amf_value(script, depth - 1)),
            ("k", amf_value(script, depth - 1)),
        ]),
        4 if depth > 0 => Value::StrictArray(vec![
            amf_value(script, depth - 1),
            amf_value(script, depth - 1),
        ]),
        5 => Value::Integer(script.byte().into()),
        _ => Value::Null,
    }
}

/// An audio or video body: a plausible FLV header byte pair, then bytes.
fn media_body(script: &mut Script<'_>, type_id: MessageType) -> (MessageType, Vec<u8>) {
    const FIRST: [u8; 8] = [0x17, 0x27, 0xAF, 0x1C, 0x90, 0x91, 0xA6, 0x52];
    let mut body = vec![
        FIRST
            .get(usize::from(script.byte()) % FIRST.len())
            .copied()
            .unwrap_or(0x17),
        script.byte() % 3,
    ];
    let len = usize::from(script.byte()) * usize::from(script.byte() % 8 + 1);
    body.extend(script.bytes(len.min(script.data.len().saturating_sub(script.at) + 16)));
    (type_id, body)
}

fn control(script: &mut Script<'_>) -> (MessageType, Vec<u8>) {
    let message = match script.byte() % 4 {
        0 => Message::WindowAckSize(script.u32()),
        1 => Message::UserControl(UserControl::PingRequest(script.u32())),
        2 => Message::UserControl(UserControl::SetBufferLength {
            stream_id: MessageStreamId(1),
            buffer_ms: script.u32(),
        }),
        _ => Message::Acknowledgement(script.u32()),
    };
    let mut body = BytesMut::new();
    message.encode(&mut body);
    (message.type_id(), body.to_vec())
}

/// Feeds the input to the session, answering every request; false once
/// the session closed the connection. What it sends is decoded to check
/// that it stays valid RTMP.
fn feed(session: &mut ServerSession, input: &mut BytesMut, output: &mut OutputCheck) -> bool {
    loop {
        let result = session.handle_input(input);
        while let Some(bytes) = session.poll_transmit() {
            output.check(&bytes);
        }
        if result.is_err() {
            return false;
        }
        let mut answered = false;
        while let Some(event) = session.poll_event() {
            answered |= answer(session, event);
        }
        if !answered {
            return true;
        }
    }
}

/// Decodes the server's output (after its 3073 handshake bytes).
struct OutputCheck {
    skip: usize,
    decoder: chunk::Decoder,
    input: BytesMut,
}

impl Default for OutputCheck {
    fn default() -> Self {
        OutputCheck {
            skip: 1 + 2 * HANDSHAKE_SIZE,
            decoder: chunk::Decoder::new(chunk::Limits::default()),
            input: BytesMut::new(),
        }
    }
}

impl OutputCheck {
    /// Panics on output that does not decode: a fuzz target reports a
    /// broken invariant by crashing.
    #[allow(clippy::panic)]
    fn check(&mut self, bytes: &[u8]) {
        let skip = self.skip.min(bytes.len());
        self.skip -= skip;
        self.input
            .extend_from_slice(bytes.get(skip..).unwrap_or_default());
        loop {
            match self.decoder.decode(&mut self.input) {
                Ok(Some(_)) => {}
                Ok(None) => return,
                Err(e) => panic!("the server sent invalid chunks: {e}"),
            }
        }
    }
}

/// An HTTP player's request head: refused, incomplete, or a request whose
/// path holds nothing it must not, within the head's bound.
pub fn http_request(data: &[u8]) {
    use ringcast_web::request;
    if let Ok(Some(request)) = request::parse(data) {
        assert!(request.len <= data.len() && request.len <= crate::limits::HTTP_HEAD_BYTES_MAX);
        assert!(request.path.starts_with('/'));
        assert!(!request.path.split('/').any(|segment| segment == ".."));
        assert!(!request.path.chars().any(char::is_control));
    }
}

/// A WebSocket player's frames fed in pieces to the server's decoder: no
/// payload over its bound, and no byte decoded twice.
pub fn websocket_frames(data: &[u8]) {
    use ringcast_web::websocket::Frames;
    const MAX: usize = 256;
    let (step, data) = pieces(data);
    let mut frames = Frames::from_client(MAX);
    let mut input = BytesMut::new();
    let mut decoded = 0;
    for piece in data.chunks(step) {
        input.extend_from_slice(piece);
        loop {
            match frames.decode(&mut input) {
                Ok(Some(frame)) => {
                    assert!(frame.payload.len() <= MAX);
                    decoded += frame.payload.len();
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    assert!(decoded <= data.len());
}
