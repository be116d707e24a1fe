//! Attacks and faults against a serving edge. An edge faces the whole
//! internet: under bad input, faults and load it must keep serving every
//! healthy stream, lose no frame it could deliver and never grow without
//! bound.
//!
//! Every test runs one group of attacks while a reference stream is
//! published and 20 players watch it ([`common::reference`]). Afterwards
//! every player must have received every frame (zero gaps) and a fresh
//! publish and play must work; then come the attack's own checks: the
//! attacker was closed (or answered with `_error`), the right counter
//! moved by exactly the number of attacks, and the server logged each
//! attacking connection a bounded number of times, not once per byte.
//!
//! The tests take turns ([`SERIAL`]): each starts a server with two shards
//! and two dozen client threads, and on a two-core machine two such scenes
//! at once would measure each other's load.
// Tests and benches fail by panicking on what they did not expect.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod amf;
#[path = "../common/mod.rs"]
mod common;
mod cost;
mod logs;
mod memory;
mod pulls;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::media::{self, frame_number};
use common::reference::{self, Options, Reference, Report};
use common::{Client, TIMEOUT, raw, start_server};
use ringcast::config::Config;
use ringcast::protocol::amf::Value;
use ringcast::protocol::chunk::{MessageHeader, package};
use ringcast::protocol::{ChunkStreamId, MessageStreamId, MessageType, Timestamp};
use ringcast::server::ServerHandle;
use ringcast::session::{ClientEvent, status};
use ringcast::shard::stats::ShardSnapshot;

/// Shards of the server each scene starts.
const SHARDS: usize = 2;

/// One scene at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Handshake and `connect` must finish within this: short, so that the
/// timeout attacks end quickly.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(1);

/// How long the reference stream runs before and after an attack.
const SETTLE: Duration = Duration::from_millis(300);

/// Most log lines one attacking connection may cause: its `connect`, its
/// first refused command and its close, with room for one more.
const LOG_LINES_PER_ATTACKER_MAX: usize = 4;

/// A server, a reference stream on it, and the counters before the attack.
struct Scene {
    server: ServerHandle,
    addr: SocketAddr,
    reference: Reference,
    before: ShardSnapshot,
    _turn: MutexGuard<'static, ()>,
}

impl Scene {
    fn start(tweak: impl FnOnce(&mut Config)) -> Scene {
        Scene::with_options(Options::default(), tweak)
    }

    fn with_options(options: Options, tweak: impl FnOnce(&mut Config)) -> Scene {
        let turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        common::logs::capture();
        common::logs::clear();
        let server = start_server(SHARDS, |c| {
            c.timeouts.handshake = HANDSHAKE_TIMEOUT;
            tweak(c);
        });
        let addr = server.local_addrs()[0];
        let reference = Reference::start(addr, options);
        std::thread::sleep(SETTLE);
        let before = reference::totals(&server);
        Scene {
            server,
            addr,
            reference,
            before,
            _turn: turn,
        }
    }

    /// Waits until `counter` has moved by `n` since the attack began, and
    /// checks it moved by no more.
    fn assert_counted(&self, what: &str, counter: fn(&ShardSnapshot) -> u64, n: u64) {
        let before = counter(&self.before);
        let now = reference::wait_for_totals(&self.server, what, |now| {
            counter(now).saturating_sub(before) >= n
        });
        assert_eq!(counter(&now) - before, n, "{what}: {now:?}");
    }

    /// Keeps the reference stream going a while, then checks every player
    /// got every frame and that newcomers are served; stops the server.
    fn finish(self, fresh: &str) -> Report {
        std::thread::sleep(SETTLE);
        let report = self.reference.finish();
        reference::assert_fresh_stream_works(self.addr, fresh);
        self.server.shutdown();
        report
    }
}

/// Most the reference stream's p99 latency may reach while an attack runs
/// that must cost the server little (the CPU, memory, log and descriptor
/// attacks): players notice a shard that stalls long before they lose a
/// frame. 100 ms is the bound for a release build; a debug build decodes
/// and formats ten to twenty times slower, and the attackers' and
/// players' threads share the machine's cores with the shards, so there
/// the bound only catches a stall.
const REFERENCE_P99_MAX: Duration = if cfg!(debug_assertions) {
    Duration::from_millis(300)
} else {
    Duration::from_millis(100)
};

/// Checks the reference stream kept its pace through the attack.
fn assert_kept_pace(report: &Report, what: &str) {
    let p99 = report.latency_p99();
    assert!(
        p99 < REFERENCE_P99_MAX,
        "{what}: reference latency p99 {p99:?}"
    );
}

/// Waits for the server's close line for `peer`, then checks that the
/// connection made at most [`LOG_LINES_PER_ATTACKER_MAX`] lines in all.
fn assert_logged_once(peer: SocketAddr, what: &str) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let lines = common::logs::lines_for(peer);
        if lines.iter().any(|l| l.contains(" closed ")) {
            let longest = lines.iter().map(String::len).max().unwrap_or(0);
            assert!(
                lines.len() <= LOG_LINES_PER_ATTACKER_MAX,
                "{what}: {} log lines: {lines:#?}",
                lines.len()
            );
            assert!(longest <= 1024, "{what}: a log line of {longest} bytes");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: no close line for {peer}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------
// Handshake
// ---------------------------------------------------------------------------

#[test]
fn garbage_and_wrong_version_bytes_fail_the_handshake_and_are_counted() {
    let scene = Scene::start(|_| {});
    let mut garbage = vec![0xA5u8; 4096];
    garbage[0] = 0xFF;
    let attacks: [(&str, Vec<u8>); 4] = [
        (
            "an http request",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        ("rtmpe version 6", [vec![6u8], vec![0; 1536]].concat()),
        ("version 0", [vec![0u8], vec![1; 1536]].concat()),
        ("garbage", garbage),
    ];
    for (what, bytes) in &attacks {
        let mut socket = TcpStream::connect(scene.addr).expect("connect");
        let peer = socket.local_addr().expect("address");
        raw::send(&mut socket, bytes);
        raw::assert_closed(&mut socket, what);
        assert_logged_once(peer, what);
        let lines = common::logs::lines_for(peer);
        assert!(
            lines.iter().any(|l| l.contains("unsupported rtmp version")),
            "{what}: the close line says why: {lines:#?}"
        );
    }
    scene.assert_counted("handshake failures", |s| s.handshake_failures, 4);
    scene.assert_counted("protocol errors", |s| s.protocol_errors, 0);
    scene.finish("fresh-after-garbage");
}

#[test]
fn handshakes_that_stall_or_trickle_are_closed_by_the_timeout() {
    let scene = Scene::start(|_| {});
    let addr = scene.addr;
    // Connects and sends nothing.
    let silent = TcpStream::connect(addr).expect("connect");
    // C0 and half of C1, then nothing.
    let mut halfway = TcpStream::connect(addr).expect("connect");
    raw::send(&mut halfway, &[[3u8].as_slice(), &[0; 768]].concat());
    // C0 and C1, reads S0 S1 S2, never sends C2.
    let mut no_c2 = TcpStream::connect(addr).expect("connect");
    raw::send(&mut no_c2, &[[3u8].as_slice(), &[0; 1536]].concat());
    let mut s0s1s2 = vec![0u8; 3073];
    no_c2.read_exact(&mut s0s1s2).expect("S0S1S2");
    // Slowloris: one byte a second, of C0 C1 and of `connect` after a
    // whole handshake.
    let c0c1 = [[3u8].as_slice(), &[0; 1536]].concat();
    let slow_handshake = Trickle::start(TcpStream::connect(addr).expect("connect"), c0c1);
    let connect = raw::command(
        &raw::call("connect", 1.0, vec![]),
        0,
        raw::INITIAL_CHUNK_SIZE,
    );
    let slow_connect = Trickle::start(raw::handshake(addr), connect.to_vec());
    let mut stalled = vec![
        ("a silent peer", silent),
        ("a handshake stopped halfway", halfway),
        ("a handshake without c2", no_c2),
        ("slowloris in the handshake", slow_handshake.socket()),
        ("slowloris in connect", slow_connect.socket()),
    ];
    for (what, socket) in &mut stalled {
        let peer = socket.local_addr().expect("address");
        raw::assert_closed(socket, what);
        assert_logged_once(peer, what);
    }
    slow_handshake.stop();
    slow_connect.stop();
    scene.assert_counted("handshake timeouts", |s| s.handshake_timeouts, 5);
    scene.finish("fresh-after-stalls");
}

/// A slowloris: writes its bytes one a second from a thread of its own.
struct Trickle {
    socket: TcpStream,
    writer: std::thread::JoinHandle<()>,
}

impl Trickle {
    fn start(socket: TcpStream, bytes: Vec<u8>) -> Trickle {
        let mut writer = socket.try_clone().expect("clone");
        let writer = std::thread::spawn(move || {
            for byte in bytes {
                if writer.write_all(&[byte]).is_err() {
                    return;
                }
                // Woken early by `stop`.
                std::thread::park_timeout(Duration::from_secs(1));
            }
        });
        Trickle { socket, writer }
    }

    /// The socket, to watch for the server closing it.
    fn socket(&self) -> TcpStream {
        self.socket.try_clone().expect("clone")
    }

    /// Ends the writer: its next write fails on the shut socket.
    fn stop(self) {
        let _ = self.socket.shutdown(Shutdown::Both);
        self.writer.thread().unpark();
        self.writer.join().expect("the writer ends");
    }
}

// ---------------------------------------------------------------------------
// Chunks and AMF
// ---------------------------------------------------------------------------

#[test]
fn chunk_level_attacks_close_the_attacker_and_nothing_else() {
    let scene = Scene::start(|_| {});
    let cs = raw::INITIAL_CHUNK_SIZE;
    // Message length 16 MiB - 1 on chunk stream 4: over the 8 MiB limit.
    let too_long = vec![0x04, 0, 0, 0, 0xFF, 0xFF, 0xFF, 9, 1, 0, 0, 0];
    let many_chunk_streams: Vec<u8> = (3..3003)
        .flat_map(|id| raw::message(ChunkStreamId(id), MessageType::VIDEO, 1, &[0x17], cs))
        .collect();
    let attacks: Vec<(&str, Vec<u8>)> = vec![
        ("a message over the length limit", too_long),
        (
            "chunk size 0",
            raw::control(MessageType::SET_CHUNK_SIZE, 0, cs).to_vec(),
        ),
        (
            "chunk size with the top bit set",
            raw::control(MessageType::SET_CHUNK_SIZE, 0x8000_0000, cs).to_vec(),
        ),
        ("fmt 3 on an unknown chunk stream", vec![0xC5, 1, 2, 3]),
        ("3000 chunk streams", many_chunk_streams),
    ];
    for (what, bytes) in &attacks {
        let mut socket = raw::handshake(scene.addr);
        let peer = socket.local_addr().expect("address");
        raw::send(&mut socket, bytes);
        raw::assert_closed(&mut socket, what);
        assert_logged_once(peer, what);
    }
    scene.assert_counted("protocol errors", |s| s.protocol_errors, 5);
    scene.finish("fresh-after-chunk-attacks");
}

#[test]
fn malformed_amf_in_commands_closes_the_attacker_and_nothing_else() {
    let scene = Scene::start(|_| {});
    let nested: Vec<u8> = [0x0A, 0, 0, 0, 1]
        .repeat(5000)
        .into_iter()
        .chain([5])
        .collect();
    let mut many_items = vec![0x0A];
    many_items.extend(70_000u32.to_be_bytes());
    many_items.extend([5u8; 70_000]);
    let attacks: Vec<(&str, Vec<u8>)> = vec![
        ("5000 nested arrays", nested),
        (
            "a long string claiming 4 GiB",
            [[0x0C, 0xFF, 0xFF, 0xFF, 0xFF].as_slice(), b"abc"].concat(),
        ),
        (
            "a strict array claiming 4 Gi items",
            vec![0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 5],
        ),
        (
            "a strict array of 70000 nulls (over the command bound)",
            many_items,
        ),
        (
            "an amf3 array claiming 2^28 items",
            vec![0x11, 0x09, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
        ),
        ("an amf0 reference out of range", vec![0x07, 0x00, 0x05]),
        (
            "an amf3 object reference out of range",
            vec![0x11, 0x0A, 0x02],
        ),
        (
            "an amf3 string reference out of range",
            vec![0x11, 0x06, 0x04],
        ),
    ];
    for (what, body) in &attacks {
        let mut attacker = Client::connect(scene.addr, reference::APP);
        let peer = attacker.socket.local_addr().expect("address");
        raw::send(
            &mut attacker.socket,
            &raw::command_body(body, raw::CLIENT_CHUNK_SIZE),
        );
        raw::assert_closed(&mut attacker.socket, what);
        assert_logged_once(peer, what);
    }
    scene.assert_counted("protocol errors", |s| s.protocol_errors, 8);
    scene.finish("fresh-after-amf-attacks");
}

#[test]
fn legal_but_hostile_chunking_is_served_and_the_attacker_stays_usable() {
    let scene = Scene::start(|_| {});
    let mut attacker = Client::connect(scene.addr, reference::APP);
    let set_chunk_size =
        |size, current| raw::control(MessageType::SET_CHUNK_SIZE, size, current).to_vec();
    // Chunk size 1: every byte of a command in a chunk of its own.
    raw::send(
        &mut attacker.socket,
        &set_chunk_size(1, raw::CLIENT_CHUNK_SIZE),
    );
    assert_answered(&mut attacker, 100, 1);
    // The largest chunk size: every message in one chunk.
    raw::send(&mut attacker.socket, &set_chunk_size(0x7FFF_FFFF, 1));
    assert_answered(&mut attacker, 101, 0x7FFF_FFFF);
    // 300 video messages (on a stream that does not publish) with
    // extended timestamps, at chunk size 1: 150 000 chunks, each with its
    // four-byte extended timestamp.
    raw::send(&mut attacker.socket, &set_chunk_size(1, 0x7FFF_FFFF));
    let endless: Vec<u8> = (0..300u32)
        .flat_map(|i| extended_timestamp_message(0x0100_0000 + i * 33, 500, 1))
        .collect();
    raw::send(&mut attacker.socket, &endless);
    assert_answered(&mut attacker, 102, 1);
    // An abort storm: 5000 times a message begun and aborted, and aborts
    // of chunk streams unknown or idle.
    raw::send(&mut attacker.socket, &set_chunk_size(128, 1));
    raw::send(&mut attacker.socket, &abort_storm(5000, 128));
    assert_answered(&mut attacker, 103, 128);
    // Back to the size the client session uses: it still works.
    raw::send(
        &mut attacker.socket,
        &set_chunk_size(raw::CLIENT_CHUNK_SIZE, 128),
    );
    attacker.create_stream();
    scene.assert_counted("protocol errors", |s| s.protocol_errors, 0);
    drop(attacker);
    scene.finish("fresh-after-hostile-chunking");
}

/// Sends `getStreamLength` (answered with `_result`, no side effects) at
/// `chunk_size` and waits for the answer.
fn assert_answered(attacker: &mut Client, transaction_id: u32, chunk_size: u32) {
    let tid = f64::from(transaction_id);
    let values = raw::call("getStreamLength", tid, vec![Value::string("x")]);
    raw::send(&mut attacker.socket, &raw::command(&values, 0, chunk_size));
    attacker.wait_for(
        "a _result",
        |e| matches!(e, ClientEvent::Result(r) if r.transaction_id == tid),
    );
}

/// A video message at `timestamp` (above the 24-bit field, so every chunk
/// carries the extended timestamp) on chunk stream 42.
fn extended_timestamp_message(timestamp: u32, len: usize, chunk_size: u32) -> Vec<u8> {
    let header = MessageHeader {
        chunk_stream: ChunkStreamId(42),
        timestamp: Timestamp(timestamp),
        type_id: MessageType::VIDEO,
        stream_id: MessageStreamId(1),
    };
    package(&header, &vec![0x27; len], chunk_size)
        .expect("encodable")
        .to_vec()
}

/// `n` times: one chunk of a 1000-byte message on chunk stream 43, an
/// Abort of it, and Aborts of an unknown and of the control chunk stream.
fn abort_storm(n: usize, chunk_size: u32) -> Vec<u8> {
    let abort = |id| raw::control(MessageType::ABORT, id, chunk_size);
    let mut begun = raw::message(
        ChunkStreamId(43),
        MessageType::VIDEO,
        1,
        &[0x27; 1000],
        chunk_size,
    )
    .to_vec();
    // The fmt 0 chunk only: 12 header bytes and one chunk of payload.
    begun.truncate(12 + chunk_size as usize);
    let round = [
        begun,
        abort(43).to_vec(),
        abort(65_599).to_vec(),
        abort(2).to_vec(),
    ]
    .concat();
    round.repeat(n)
}

// ---------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------

#[test]
fn command_misuse_gets_an_error_or_a_clean_close() {
    let scene = Scene::start(|_| {});
    let addr = scene.addr;
    let cs = raw::INITIAL_CHUNK_SIZE;
    // Closed: publish before connect, a connect whose command object is a
    // number, and a second connect.
    let publish = raw::call("publish", 2.0, vec![Value::string("x")]);
    let bad_connect = vec![
        Value::string("connect"),
        Value::Number(1.0),
        Value::Number(7.0),
    ];
    let huge_app = raw::call("connect", 1.0, vec![]);
    let mut huge_app = huge_app;
    huge_app[2] = Value::object([("app", Value::string("a".repeat(60_000)))]);
    let closing = [
        ("publish before connect", publish),
        ("a bad connect", bad_connect),
        ("a connect to a 60 KB app name", huge_app),
    ];
    for (what, values) in closing {
        let mut socket = raw::handshake(addr);
        let peer = socket.local_addr().expect("address");
        raw::send(&mut socket, &raw::command(&values, 0, cs));
        raw::assert_closed(&mut socket, what);
        assert_logged_once(peer, what);
    }
    let mut twice = Client::connect(addr, reference::APP);
    let connect = raw::call("connect", 9.0, vec![]);
    let mut connect = connect;
    connect[2] = Value::object([("app", Value::string("live"))]);
    raw::send(
        &mut twice.socket,
        &raw::command(&connect, 0, raw::CLIENT_CHUNK_SIZE),
    );
    raw::assert_closed(&mut twice.socket, "a second connect");
    scene.assert_counted("protocol errors", |s| s.protocol_errors, 4);
    // Play of a stream nobody publishes: a player that waits, as a live
    // edge's players do.
    let mut early = Client::connect(addr, reference::APP);
    early.play("nobody-publishes-this");
    // Answered with `_error`, the connection goes on.
    let refused = refused_commands(addr);
    huge_names_are_refused_in_a_few_words(addr);
    scene.assert_counted("command errors", |s| s.command_errors, refused + 4);
    early.create_stream();
    scene.finish("fresh-after-command-misuse");
}

/// One connection sends `createStream`s past its limit, a `deleteStream`
/// of a stream never created, commands with missing or wrong-typed
/// arguments and an unknown command with a 30 KB name (and argument; the
/// command bound closes anything longer): each gets `_error` (but the
/// first `createStream`s, up to the per-connection limit), the connection
/// lives (fewer refusals than close it, see `logs`), and the server logs
/// it a bounded number of times. Returns how many were refused.
fn refused_commands(addr: SocketAddr) -> u64 {
    let mut attacker = Client::connect(addr, reference::APP);
    let peer = attacker.socket.local_addr().expect("address");
    let text = Value::string;
    let streams_max = ringcast::limits::STREAMS_PER_CONNECTION_MAX;
    let mut calls: Vec<Vec<Value>> = (0..streams_max + 8)
        .map(|i| raw::call("createStream", 1000.0 + i as f64, vec![]))
        .collect();
    let misuse = [
        ("deleteStream", vec![Value::Number(77.0)]),
        ("deleteStream", vec![text("1")]),
        ("publish", vec![]),
        ("publish", vec![Value::Number(3.0)]),
        ("publish", vec![text("x"), text("sideways")]),
        ("play", vec![Value::object([("a", Value::Null)])]),
        ("play", vec![text("x"), text("now")]),
        ("play2", vec![Value::Null]),
        ("releaseStream", vec![Value::Null]),
        ("FCPublish", vec![Value::Boolean(true)]),
        ("getStreamLength", vec![Value::Number(1.0)]),
        ("seek", vec![]),
        ("pause", vec![text("yes")]),
        ("receiveVideo", vec![text("maybe")]),
        ("noSuchCommand", vec![]),
        (&*"n".repeat(30_000), vec![text(&"a".repeat(30_000))]),
    ];
    for (i, (name, args)) in misuse.into_iter().enumerate() {
        calls.push(raw::call(name, 3000.0 + i as f64, args));
    }
    let bytes: Vec<u8> = calls
        .iter()
        .flat_map(|values| raw::command(values, 0, raw::CLIENT_CHUNK_SIZE))
        .collect();
    raw::send(&mut attacker.socket, &bytes);
    let (results, errors) = count_answers(&mut attacker, calls.len());
    assert!(errors < ringcast::limits::REFUSALS_IN_A_ROW_MAX as usize);
    assert_eq!(results, streams_max, "createStream up to the limit");
    assert_eq!(
        errors,
        calls.len() - streams_max,
        "every other call refused"
    );
    // Still served.
    assert_answered(&mut attacker, 99, raw::CLIENT_CHUNK_SIZE);
    drop(attacker);
    assert_logged_once(peer, "command misuse");
    let lines = common::logs::lines_for(peer);
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("commands_refused={errors}"))),
        "the close line counts the refused commands: {lines:#?}"
    );
    errors as u64
}

/// Reads until `n` calls are answered; returns how many with `_result`
/// and how many with `_error`.
fn count_answers(client: &mut Client, n: usize) -> (usize, usize) {
    let (mut results, mut errors) = (0, 0);
    let deadline = Instant::now() + TIMEOUT;
    while results + errors < n {
        assert!(
            Instant::now() < deadline,
            "{results} results, {errors} errors"
        );
        client.pump(Duration::from_millis(50));
        for event in client.events.drain(..) {
            match event {
                ClientEvent::Result(_) => results += 1,
                ClientEvent::Error(_) => errors += 1,
                _ => {}
            }
        }
    }
    (results, errors)
}

/// An unknown command named with 60 KB of text and a publish of a 60 KB
/// stream name (the command bound closes anything longer) are refused;
/// neither the refusals nor the log lines carry the whole name.
fn huge_names_are_refused_in_a_few_words(addr: SocketAddr) {
    let mut attacker = Client::connect(addr, reference::APP);
    let peer = attacker.socket.local_addr().expect("address");
    let name = "n".repeat(60_000);
    let values = raw::call(&name, 5.0, vec![]);
    raw::send(
        &mut attacker.socket,
        &raw::command(&values, 0, raw::CLIENT_CHUNK_SIZE),
    );
    let ClientEvent::Error(error) = attacker.wait_for(
        "_error",
        |e| matches!(e, ClientEvent::Error(r) if r.transaction_id == 5.0),
    ) else {
        unreachable!()
    };
    let description = error.arguments[0]
        .property("description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .len();
    assert!(description < 1024, "a description of {description} bytes");
    // A 60 KB stream name is refused before it is stored or quoted:
    // releaseStream, FCPublish and publish each get `_error`.
    let stream_id = attacker.create_stream();
    attacker
        .session
        .publish(stream_id, &"s".repeat(60_000))
        .expect("connected");
    for _ in 0..3 {
        attacker.wait_for("_error", |e| matches!(e, ClientEvent::Error(_)));
    }
    drop(attacker);
    assert_logged_once(peer, "a 60 KB command name");
}

// ---------------------------------------------------------------------------
// Connection faults
// ---------------------------------------------------------------------------

#[test]
fn vanishing_and_half_closed_peers_leave_every_other_stream_untouched() {
    let scene = Scene::start(|_| {});
    let addr = scene.addr;
    a_publisher_resets_mid_message(addr);
    players_reset_mid_write(addr);
    scene.assert_counted("socket errors", |s| s.io_errors, 1 + VANISHING_PLAYERS);
    half_closed_peers_are_closed_after_what_they_sent(addr);
    scene.assert_counted("protocol errors", |s| s.protocol_errors, 0);
    let report = scene.finish("fresh-after-faults");
    assert!(!report.sent_at.is_empty());
}

/// A publisher of another stream sends half a 20 KB message and resets
/// the connection: its player hears the stream ended.
fn a_publisher_resets_mid_message(addr: SocketAddr) {
    let mut publisher = Client::connect(addr, reference::APP);
    let stream_id = publisher.publish("doomed");
    let mut player = Client::connect(addr, reference::APP);
    player.play("doomed");
    publisher.send(stream_id, &media::video(0, 30, 100));
    assert_eq!(player.collect_media(1).len(), 1);
    publisher
        .session
        .send_media(stream_id, &media::video(1, 30, 20_000))
        .expect("publishing");
    let bytes = publisher.session.poll_transmit().expect("bytes");
    raw::send(&mut publisher.socket, &bytes[..bytes.len() / 2]);
    raw::reset_on_drop(&publisher.socket);
    let peer = publisher.socket.local_addr().expect("address");
    drop(publisher);
    player.wait_for("UnpublishNotify", |e| {
        matches!(e, ClientEvent::Status { status: st, .. } if st.code == status::PLAY_UNPUBLISH_NOTIFY)
    });
    assert_logged_once(peer, "a publisher reset mid-message");
}

const VANISHING_PLAYERS: u64 = 5;

/// Players of a stream of 200 KB frames stop reading, so the server has
/// writes to them in flight and queued, then reset their connections.
fn players_reset_mid_write(addr: SocketAddr) {
    let mut publisher = Client::connect(addr, reference::APP);
    let stream_id = publisher.publish("bulk");
    let players: Vec<Client> = (0..VANISHING_PLAYERS)
        .map(|_| {
            let mut player = Client::connect_with_receive_buffer(addr, reference::APP, 4096);
            player.play("bulk");
            player
        })
        .collect();
    publisher.send(stream_id, &media::avc_header());
    for n in 0..20 {
        publisher.send(stream_id, &media::video(n, 30, 200_000));
    }
    // Let the server fill their sockets.
    std::thread::sleep(Duration::from_millis(200));
    let peers: Vec<SocketAddr> = players
        .iter()
        .map(|p| p.socket.local_addr().expect("address"))
        .collect();
    for player in &players {
        raw::reset_on_drop(&player.socket);
    }
    drop(players);
    for peer in peers {
        assert_logged_once(peer, "a player reset mid-write");
    }
    // The publisher of that stream is still served.
    publisher.create_stream();
}

/// A player that shuts its sending side is closed; a publisher that does
/// so after its last frames has them delivered first; so does a peer that
/// stops halfway through the handshake.
fn half_closed_peers_are_closed_after_what_they_sent(addr: SocketAddr) {
    let mut player = Client::connect(addr, reference::APP);
    player.play(reference::STREAM);
    let peer = player.socket.local_addr().expect("address");
    player.socket.shutdown(Shutdown::Write).expect("half close");
    raw::assert_closed(&mut player.socket, "a half-closed player");
    assert_logged_once(peer, "a half-closed player");

    let mut publisher = Client::connect(addr, reference::APP);
    let stream_id = publisher.publish("half");
    let mut watcher = Client::connect(addr, reference::APP);
    watcher.play("half");
    publisher.send(stream_id, &media::video(0, 1000, 100));
    assert_eq!(frame_number(&watcher.collect_media(1)[0]), Some(0));
    for n in 1..6 {
        publisher.send(stream_id, &media::video(n, 1000, 100));
    }
    publisher
        .socket
        .shutdown(Shutdown::Write)
        .expect("half close");
    let frames: Vec<Option<u32>> = watcher.collect_media(5).iter().map(frame_number).collect();
    assert_eq!(frames, (1..6).map(Some).collect::<Vec<_>>(), "nothing lost");
    watcher.wait_for("UnpublishNotify", |e| {
        matches!(e, ClientEvent::Status { status: st, .. } if st.code == status::PLAY_UNPUBLISH_NOTIFY)
    });

    let mut socket = TcpStream::connect(addr).expect("connect");
    raw::send(&mut socket, &[[3u8].as_slice(), &[0; 1536]].concat());
    socket.shutdown(Shutdown::Write).expect("half close");
    raw::assert_closed(&mut socket, "a handshake half-closed");
}

#[test]
fn two_thousand_connections_opened_and_dropped_at_once_leave_the_stream_alone() {
    const FLOOD: u64 = 2000;
    // Ours and the server's end of each, and room for the rest.
    ensure_descriptors(2 * FLOOD + 1024);
    let scene = Scene::start(|_| {});
    let baseline = scene.before.connections;
    let flood: Vec<TcpStream> = (0..FLOOD)
        .map(|_| TcpStream::connect(scene.addr).expect("connect"))
        .collect();
    scene.assert_counted("accepted", |s| s.connections_accepted, FLOOD);
    // Half leave with a reset, half with a FIN.
    for socket in flood.iter().step_by(2) {
        raw::reset_on_drop(socket);
    }
    let peers: Vec<SocketAddr> = flood
        .iter()
        .map(|s| s.local_addr().expect("address"))
        .collect();
    let closing = Instant::now();
    drop(flood);
    reference::wait_for_totals(&scene.server, "all closed", |s| s.connections == baseline);
    logs::assert_closes_logged_or_summarised(&peers, closing);
    scene.assert_counted("refused", |s| s.connections_refused, 0);
    scene.finish("fresh-after-the-flood");
}

#[test]
fn connections_past_the_limit_are_refused_counted_and_logged_once_per_flood() {
    const LIMIT: u64 = 64;
    const FLOOD: u64 = 200;
    let scene = Scene::start(|c| c.connections_max = LIMIT as usize);
    let open = scene.before.connections;
    let mut flood: Vec<TcpStream> = (0..FLOOD)
        .map(|_| TcpStream::connect(scene.addr).expect("connect"))
        .collect();
    let before = scene.before;
    let now = reference::wait_for_totals(&scene.server, "every connection decided", |s| {
        s.connections_accepted + s.connections_refused
            - before.connections_accepted
            - before.connections_refused
            == FLOOD
    });
    // However the kernel spread them over the shards, at most the room
    // left under the limit was accepted.
    let refused = now.connections_refused - before.connections_refused;
    assert!(refused >= FLOOD - (LIMIT - open), "{now:?}");
    // A flood of refusals is one log line per shard, not one per
    // connection.
    let refusal_lines: usize = flood
        .iter()
        .map(|s| {
            let peer = s.local_addr().expect("address");
            common::logs::lines_for(peer)
                .iter()
                .filter(|l| l.contains("connection refused"))
                .count()
        })
        .sum();
    assert!(
        (1..=2).contains(&refusal_lines),
        "{refusal_lines} lines for {refused} refusals"
    );
    // A refused connection is closed at once, with one log line.
    let (socket, peer) = flood
        .iter_mut()
        .map(|s| {
            let peer = s.local_addr().expect("address");
            (s, peer)
        })
        .find(|(_, peer)| {
            common::logs::lines_for(*peer)
                .iter()
                .any(|l| l.contains("refused"))
        })
        .expect("a refused connection");
    raw::assert_closed(socket, "a refused connection");
    assert_eq!(
        common::logs::lines_for(peer).len(),
        1,
        "{:?}",
        common::logs::lines_for(peer)
    );
    drop(flood);
    reference::wait_for_totals(&scene.server, "all closed", |s| s.connections == open);
    scene.finish("fresh-after-refusals");
}

/// Raises this process's soft limit on open descriptors to `n` if it is
/// lower (the hard limit allowing).
fn ensure_descriptors(n: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write `limit`.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        if limit.rlim_cur < n {
            limit.rlim_cur = n.min(limit.rlim_max);
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        }
    }
    assert!(
        limit.rlim_cur >= n,
        "open file limit {} < {n}",
        limit.rlim_cur
    );
}

// ---------------------------------------------------------------------------
// Slow consumers
// ---------------------------------------------------------------------------

/// Queue bound for the slow-consumer scene: small, so that falling behind
/// does not take long.
const QUEUE_BYTES_MAX: usize = 512 * 1024;

/// RSS the process may gain besides the slow players' queues: ten more
/// connections (the server's 64 KiB read buffer and session state, the
/// test client's buffers: under 2 MiB together) and allocator slack. The
/// queued frames themselves are shared with every other player, so what
/// the queue bounds allow is already a generous ceiling.
const RSS_MARGIN_BYTES: u64 = 4 * 1024 * 1024;

/// Longest a healthy player may wait for a frame while slow ones are cut
/// (typically a few milliseconds here): generous, for a loaded machine.
const LATENCY_MAX: Duration = Duration::from_millis(500);

#[test]
fn slow_players_are_cut_to_keyframes_then_disconnected_and_the_rest_keep_pace() {
    const SLOW: usize = 10;
    // 64 KB frames at 30 fps: ~2 MB/s, so a player that stops reading is
    // past the kernel's socket buffers (~3 MB) and its queue in seconds.
    let options = Options {
        frame_bytes: 64_000,
        ..Options::default()
    };
    let scene = Scene::with_options(options, |c| {
        c.stream.gop_cache_bytes_max = QUEUE_BYTES_MAX / 2;
        c.player.queue_bytes_max = QUEUE_BYTES_MAX;
        c.player.slow_disconnect_after = Duration::from_secs(1);
    });
    let rss_before = cost::rss_bytes();
    let attack = Instant::now();
    let mut slow: Vec<Client> = (0..SLOW)
        .map(|_| {
            // A small receive buffer, and it never reads again.
            let mut player = Client::connect_with_receive_buffer(scene.addr, reference::APP, 4096);
            player.play(reference::STREAM);
            player
        })
        .collect();
    scene.assert_counted("slow disconnects", |s| s.slow_disconnects, SLOW as u64);
    let rss_after = cost::rss_bytes();
    let now = reference::totals(&scene.server);
    assert!(now.frames_dropped > scene.before.frames_dropped, "{now:?}");
    for player in &mut slow {
        let frames: Vec<u32> = player
            .read_until_closed()
            .iter()
            .filter_map(frame_number)
            .collect();
        assert_restarts_on_keyframes(&frames, options.gop);
    }
    let report = scene.finish("fresh-after-slow-players");
    // Every frame reached every healthy player (`finish`), each within
    // this of being sent: they kept getting frames at the frame rate.
    // Measured from when the publisher sent each frame, so a stall of the
    // publisher's thread on a busy machine is not blamed on the server.
    let latency = report.latency_max_since(attack);
    assert!(latency < LATENCY_MAX, "latency {latency:?}");
    let bound = (SLOW * 2 * QUEUE_BYTES_MAX) as u64 + RSS_MARGIN_BYTES;
    assert!(
        rss_after < rss_before + bound,
        "rss grew from {rss_before} to {rss_after}, more than {bound}"
    );
}

#[test]
fn a_peer_that_never_reads_its_answers_is_cut_off_not_buffered() {
    let scene = Scene::start(|c| {
        c.stream.gop_cache_bytes_max = QUEUE_BYTES_MAX / 2;
        c.player.queue_bytes_max = QUEUE_BYTES_MAX;
    });
    let mut attacker = Client::connect_with_receive_buffer(scene.addr, reference::APP, 4096);
    let peer = attacker.socket.local_addr().expect("address");
    // 200 000 calls, each answered with a `_result` of about the same
    // size, and the attacker reads none of them: past the socket buffers
    // the answers would pile up in the server at the attacker's pace.
    let call = raw::command(
        &raw::call("getStreamLength", 7.0, vec![Value::string("x")]),
        0,
        raw::CLIENT_CHUNK_SIZE,
    );
    let flood = call.repeat(200_000);
    let mut writer = attacker.socket.try_clone().expect("clone");
    let writing = std::thread::spawn(move || raw::send(&mut writer, &flood));
    scene.assert_counted("slow disconnects", |s| s.slow_disconnects, 1);
    raw::assert_closed(&mut attacker.socket, "a peer that never reads");
    writing.join().expect("the writer ends");
    assert_logged_once(peer, "a peer that never reads");
    scene.finish("fresh-after-unread-answers");
}

/// Frames in order; wherever some are missing (and at the start) the next
/// one is a keyframe.
fn assert_restarts_on_keyframes(frames: &[u32], gop: u32) {
    let mut previous: Option<u32> = None;
    for &n in frames {
        if let Some(p) = previous {
            assert!(n > p, "frames in order: {frames:?}");
        }
        if previous.is_none_or(|p| n != p + 1) {
            assert_eq!(
                n % gop,
                0,
                "frame {n} after a gap is not a keyframe: {frames:?}"
            );
        }
        previous = Some(n);
    }
}
