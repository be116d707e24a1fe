//! Cheap inputs that used to expand: AMF references that copy subtrees
//! (the reference bomb), messages of small types as long as video, strings
//! kept for a connection's life, aggregates of empty sub-messages. Each is
//! measured ([`super::cost::Meter`]): shard CPU per attacking message,
//! resident set growth, and what reaches the attacker's players.

use std::time::Duration;

use ringcast::limits;
use ringcast::protocol::amf::Value;
use ringcast::protocol::{MessageStreamId, MessageType};
use ringcast::session::ClientEvent;

use super::common::{Client, raw, reference};
use super::cost::{CPU_PER_MESSAGE_MAX, Meter, RSS_GROWTH_MAX, RSS_SETTLED_MAX, settle_rss};
use super::{LOG_LINES_PER_ATTACKER_MAX, Scene, assert_logged_once};

/// Most a bounded bomb may cost in a debug build, in times an honest
/// message of the same length (short strings, no references). The budget
/// allows three values per byte and 1024 more: ~4100 values for 1.3 KB,
/// about 12 times the honest message's 330 (measured: 11 to 16 times, on
/// a loaded two-core machine); unbounded, the bomb decoded to 16 MiB,
/// thousands of times more.
const CPU_VS_HONEST_MAX: f64 = 24.0;

/// One CPU clock tick (10 ms) spread over 200 messages, in seconds: the
/// resolution of a per-message figure.
const TICK_PER_200: f64 = 0.010 / 200.0;

// ---------------------------------------------------------------------------
// The reference bomb
// ---------------------------------------------------------------------------

/// `@setDataFrame`, `onMetaData`, then an object holding a `P`-byte string
/// and `levels` strict arrays, each referencing the one before twice: the
/// tree doubles with every array (14 bytes). 90 levels in ~1.3 KB would
/// decode to the 16 MiB of the absolute caps; 10 levels and a 1150-byte
/// string (~1.3 KB) decode to ~4100 values, the most the message's budget
/// allows.
fn amf0_bomb(levels: usize, padding: usize) -> Vec<u8> {
    let mut body = Vec::new();
    amf0_string(&mut body, "@setDataFrame");
    amf0_string(&mut body, "onMetaData");
    body.push(0x03);
    amf0_key(&mut body, "p");
    amf0_string(&mut body, &"x".repeat(padding));
    for level in 0..levels {
        amf0_key(&mut body, "k");
        body.extend([0x0A, 0, 0, 0, 2]);
        if level == 0 {
            body.extend([0x05, 0x05]);
        } else {
            // The object is entry 0, array `level - 1` entry `level`.
            let index = (level as u16).to_be_bytes();
            body.extend([0x07, index[0], index[1], 0x07, index[0], index[1]]);
        }
    }
    body.extend([0, 0, 0x09]);
    body
}

fn amf0_key(body: &mut Vec<u8>, key: &str) {
    body.extend((key.len() as u16).to_be_bytes());
    body.extend(key.as_bytes());
}

fn amf0_string(body: &mut Vec<u8>, text: &str) {
    body.push(0x02);
    amf0_key(body, text);
}

/// The same shape as a type 15 body: a format byte, the two AMF0 names,
/// then the object in AMF3 behind an AVM+ switch (dense arrays, object
/// references).
fn amf3_bomb(levels: usize, padding: usize) -> Vec<u8> {
    let mut body = vec![0x00];
    amf0_string(&mut body, "@setDataFrame");
    amf0_string(&mut body, "onMetaData");
    // AVM+, a dynamic anonymous object: inline traits, no sealed members.
    body.extend([0x11, 0x0A, 0x0B, 0x01]);
    amf3_string(&mut body, "p");
    body.push(0x06);
    amf3_string(&mut body, &"x".repeat(padding));
    for level in 0..levels {
        amf3_string(&mut body, "k");
        body.extend([0x09, 0x05, 0x01]);
        if level == 0 {
            body.extend([0x01, 0x01]);
        } else {
            for _ in 0..2 {
                body.push(0x09);
                put_u29(&mut body, (level as u32) << 1);
            }
        }
    }
    // The empty key ends the dynamic members.
    body.push(0x01);
    body
}

fn amf3_string(body: &mut Vec<u8>, text: &str) {
    put_u29(body, (text.len() as u32) << 1 | 1);
    body.extend(text.as_bytes());
}

fn put_u29(body: &mut Vec<u8>, value: u32) {
    let mut encoded = bytes::BytesMut::new();
    ringcast::protocol::amf3::encode(&Value::Integer(value as i32), &mut encoded);
    body.extend(&encoded[1..]);
}

/// Shard CPU an attack cost beyond serving the reference stream: what the
/// shards spent, less their rate over a quiet second before it.
struct AttackCpu {
    meter: Meter,
    background_per_s: f64,
}

impl AttackCpu {
    fn start() -> AttackCpu {
        let quiet = Meter::start();
        std::thread::sleep(Duration::from_secs(1));
        let quiet = quiet.spent();
        AttackCpu {
            meter: Meter::start(),
            background_per_s: quiet.cpu.as_secs_f64() / quiet.elapsed.as_secs_f64(),
        }
    }

    /// The attack's share of shard CPU per message, and the raw figures.
    fn per_message(&self, messages: u32) -> (Duration, super::cost::Spent) {
        let spent = self.meter.spent();
        let background = self.background_per_s * spent.elapsed.as_secs_f64();
        let attack = (spent.cpu.as_secs_f64() - background).max(0.0);
        eprintln!(
            "{spent:?}; background {:.0} ms/s; attack {:.3} ms per message",
            self.background_per_s * 1e3,
            attack * 1e3 / f64::from(messages)
        );
        (Duration::from_secs_f64(attack / f64::from(messages)), spent)
    }
}

/// A data message of `body` on `stream_id`, on the raw chunk stream.
fn data(type_id: MessageType, stream_id: u32, body: &[u8], chunk_size: u32) -> bytes::Bytes {
    raw::message(raw::RAW_CHUNK_STREAM, type_id, stream_id, body, chunk_size)
}

#[test]
fn reference_bombs_before_connect_are_never_decoded() {
    let scene = Scene::start(|_| {});
    let bombs = [
        (MessageType::DATA_AMF0, amf0_bomb(90, 0)),
        (MessageType::DATA_AMF3, amf3_bomb(125, 0)),
    ];
    for (_, body) in &bombs {
        assert!((1200..1400).contains(&body.len()), "{}", body.len());
    }
    let cs = raw::INITIAL_CHUNK_SIZE;
    let mut attack: Vec<u8> = (0..100)
        .flat_map(|_| bombs.iter())
        .flat_map(|(type_id, body)| data(*type_id, 1, body, cs))
        .collect();
    let mut connect = raw::call("connect", 1.0, vec![]);
    connect[2] = Value::object([("app", Value::string(reference::APP))]);
    attack.extend(raw::command(&connect, 0, cs));
    let cpu = AttackCpu::start();
    let mut socket = raw::handshake(scene.addr);
    raw::send(&mut socket, &attack);
    // The connect after the 200 bombs is answered: they were all read.
    let mut answer = [0u8; 1];
    std::io::Read::read_exact(&mut socket, &mut answer).expect("connect answered");
    eprint!("200 bombs before connect: ");
    let (per_bomb, spent) = cpu.per_message(200);
    assert!(per_bomb < CPU_PER_MESSAGE_MAX, "{per_bomb:?} per bomb");
    assert!(spent.rss_growth < RSS_GROWTH_MAX, "{spent:?}");
    // Dropped undecoded and unlogged: at most the connect's own line.
    assert!(
        spent.log_lines <= 1,
        "{} log lines ({:.1}/s)",
        spent.log_lines,
        spent.log_lines_per_s()
    );
    drop(socket);
    scene.assert_counted("protocol errors", |s| s.protocol_errors, 0);
    let report = scene.finish("fresh-after-bombs-before-connect");
    super::assert_kept_pace(&report, "fresh-after-bombs-before-connect");
}

#[test]
fn reference_bombs_as_metadata_are_bounded_and_refused_past_the_budget() {
    let scene = Scene::start(|_| {});
    for (what, type_id, bounded, refused, sent_multiple_max) in [
        (
            "amf0",
            MessageType::DATA_AMF0,
            amf0_bomb(10, 1150),
            amf0_bomb(90, 0),
            1,
        ),
        // Players get AMF3 metadata encoded anew in AMF0, without
        // references: up to five bytes per value of the budget.
        (
            "amf3",
            MessageType::DATA_AMF3,
            amf3_bomb(10, 1150),
            amf3_bomb(125, 0),
            16,
        ),
    ] {
        let name = format!("bomb-{what}");
        let mut publisher = Client::connect(scene.addr, reference::APP);
        let stream_id = publisher.publish(&name);
        let mut player = Client::connect(scene.addr, reference::APP);
        player.play(&name);
        let cs = raw::CLIENT_CHUNK_SIZE;
        // The same length without references, as an honest encoder's
        // metadata of short strings.
        let honest = honest_metadata(type_id, bounded.len());
        let (per_honest, _, _) =
            send_metadata(&mut publisher, stream_id, &mut player, (type_id, &honest));
        let (per_bomb, spent, largest) =
            send_metadata(&mut publisher, stream_id, &mut player, (type_id, &bounded));
        eprintln!(
            "{what}: a bounded bomb of {} bytes costs {per_bomb:?}, an honest one {per_honest:?}; \
             players got {largest} bytes each",
            bounded.len()
        );
        if cfg!(debug_assertions) {
            let relative = CPU_VS_HONEST_MAX * per_honest.as_secs_f64() + TICK_PER_200;
            assert!(
                per_bomb.as_secs_f64() <= relative,
                "{what}: {per_bomb:?} per bomb, {per_honest:?} per honest message"
            );
        } else {
            assert!(
                per_bomb < CPU_PER_MESSAGE_MAX,
                "{what}: {per_bomb:?} per bomb"
            );
        }
        assert!(spent.rss_growth < RSS_GROWTH_MAX, "{what}: {spent:?}");
        assert!(
            largest <= sent_multiple_max * bounded.len(),
            "{what}: players got {largest} bytes for {}",
            bounded.len()
        );
        // Past the budget: refused, the publisher closed, its player told.
        let peer = publisher.socket.local_addr().expect("address");
        raw::send(
            &mut publisher.socket,
            &data(type_id, stream_id.0, &refused, cs),
        );
        raw::assert_closed(&mut publisher.socket, what);
        assert_logged_once(peer, what);
        player.wait_for("the unpublish", |e| matches!(e, ClientEvent::StreamEof(_)));
        assert!(
            !player
                .events
                .iter()
                .any(|e| matches!(e, ClientEvent::Metadata { .. })),
            "{what}: the refused bomb reached a player"
        );
    }
    scene.assert_counted("protocol errors", |s| s.protocol_errors, 2);
    let report = scene.finish("fresh-after-metadata-bombs");
    super::assert_kept_pace(&report, "fresh-after-metadata-bombs");
}

/// `@setDataFrame onMetaData` and a strict array of one-letter strings
/// (one value and one allocation every 3 or 4 bytes, as in real metadata
/// of short keys and values), `len` bytes in all, as `type_id` (AMF3: the
/// array behind an AVM+ switch). The end is padded with nulls.
fn honest_metadata(type_id: MessageType, len: usize) -> Vec<u8> {
    let amf3 = type_id == MessageType::DATA_AMF3;
    let mut body = Vec::new();
    if amf3 {
        body.push(0x00);
    }
    amf0_string(&mut body, "@setDataFrame");
    amf0_string(&mut body, "onMetaData");
    let (string, null): (&[u8], u8) = if amf3 {
        (&[0x06, 0x03, b'a'], 0x01)
    } else {
        (&[0x02, 0x00, 0x01, b'a'], 0x05)
    };
    // Both headers (AVM+, marker, count, empty key; marker, count) are 5.
    let room = len - body.len() - 5;
    let strings = room / string.len();
    let nulls = room % string.len();
    let count = (strings + nulls) as u32;
    if amf3 {
        body.extend([0x11, 0x09]);
        put_u29(&mut body, count << 1 | 1);
        body.push(0x01);
    } else {
        body.push(0x0A);
        body.extend(count.to_be_bytes());
    }
    body.extend(string.repeat(strings));
    body.extend(std::iter::repeat_n(null, nulls));
    assert_eq!(body.len(), len);
    body
}

/// Sends `body` 200 times as metadata of type `type_id` on `stream_id`
/// and waits for the player to get
/// each: the attack's shard CPU per message, the meter's figures, and the
/// largest body a player got.
fn send_metadata(
    publisher: &mut Client,
    stream_id: MessageStreamId,
    player: &mut Client,
    (type_id, body): (MessageType, &[u8]),
) -> (Duration, super::cost::Spent, usize) {
    // Ten at a time, each batch received before the next is sent: the
    // player (in this process) decodes what it reads at once, and 200
    // decoded bombs held together would be its memory, not the server's.
    let batch: Vec<u8> = (0..10)
        .flat_map(|_| data(type_id, stream_id.0, body, raw::CLIENT_CHUNK_SIZE))
        .collect();
    let cpu = AttackCpu::start();
    let mut largest = 0;
    for _ in 0..20 {
        raw::send(&mut publisher.socket, &batch);
        for _ in 0..10 {
            let ClientEvent::Metadata { metadata, .. } =
                player.wait_for("metadata", |e| matches!(e, ClientEvent::Metadata { .. }))
            else {
                unreachable!()
            };
            largest = largest.max(metadata.body.len());
        }
    }
    let (per_message, spent) = cpu.per_message(200);
    (per_message, spent, largest)
}

// ---------------------------------------------------------------------------
// Strings kept from connect
// ---------------------------------------------------------------------------

/// A `connect` to the reference app with `key` set to `len` bytes, as its
/// first `prefix` bytes of chunks (the server decides at the header or the
/// whole message).
fn connect_with(key: &str, len: usize, prefix: usize) -> Vec<u8> {
    let mut connect = raw::call("connect", 1.0, vec![]);
    connect[2] = Value::object([
        ("app", Value::string(reference::APP)),
        (key, Value::string("u".repeat(len))),
    ]);
    let bytes = raw::command(&connect, 0, raw::INITIAL_CHUNK_SIZE);
    bytes[..prefix.min(bytes.len())].to_vec()
}

#[test]
fn connect_strings_past_their_bound_are_refused_and_nothing_is_kept() {
    let scene = Scene::start(|_| {});
    // An 8 MiB tcUrl is refused at its header (the command bound); 60 KB
    // strings pass that bound and are refused by connect's string cap.
    let mut attacks = vec![("an 8 MiB tcUrl", connect_with("tcUrl", 8 << 20, 12 + 128))];
    for key in ["tcUrl", "flashVer", "swfUrl", "pageUrl"] {
        attacks.push((key, connect_with(key, 60_000, usize::MAX)));
    }
    let meter = Meter::start();
    let mut peers = Vec::new();
    for _ in 0..20 {
        for (what, bytes) in &attacks {
            let mut socket = raw::handshake(scene.addr);
            peers.push((socket.local_addr().expect("address"), *what));
            raw::send(&mut socket, bytes);
            raw::assert_closed(&mut socket, what);
        }
    }
    let spent = meter.spent();
    eprintln!("100 over-long connects: {spent:?}");
    assert!(spent.rss_growth < RSS_GROWTH_MAX, "{spent:?}");
    // A handshake, up to 64 KiB of command and a close each (measured:
    // about 2 ms in a debug build, background included).
    let per_connection = spent.cpu_per(100);
    assert!(
        per_connection < Duration::from_millis(10),
        "{per_connection:?} per connection"
    );
    scene.assert_counted("protocol errors", |s| s.protocol_errors, 100);
    // A hundred closes in a second or two pass the shards' log budget:
    // some close lines are counted in a summary instead of written, none
    // of the attackers gets more than its few lines.
    for (peer, what) in peers {
        let lines = super::common::logs::lines_for(peer);
        assert!(
            lines.len() <= LOG_LINES_PER_ATTACKER_MAX,
            "{what}: {lines:#?}"
        );
    }
    let settled = settle_rss(&meter, RSS_SETTLED_MAX, Duration::from_secs(5));
    assert!(settled <= RSS_SETTLED_MAX, "rss still {settled} bytes up");
    // At the cap, accepted.
    let at_cap = format!("rtmp://{}/{}?", scene.addr, reference::APP);
    let at_cap = format!(
        "{at_cap}{}",
        "q".repeat(limits::CONNECT_STRING_BYTES_MAX - at_cap.len())
    );
    let socket = std::net::TcpStream::connect(scene.addr).expect("connect");
    assert!(Client::try_connect(socket, reference::APP, &at_cap).is_ok());
    let report = scene.finish("fresh-after-long-connect-strings");
    super::assert_kept_pace(&report, "fresh-after-long-connect-strings");
}

// ---------------------------------------------------------------------------
// Per-type message bounds
// ---------------------------------------------------------------------------

/// A fmt 0 header on chunk stream 4 announcing `length` bytes of `type_id`:
/// the chunk layer decides from it, before any payload.
fn header(type_id: u8, length: u32) -> Vec<u8> {
    let l = length.to_be_bytes();
    vec![0x04, 0, 0, 0, l[1], l[2], l[3], type_id, 1, 0, 0, 0]
}

#[test]
fn messages_of_small_types_past_their_bound_close_the_attacker() {
    let scene = Scene::start(|_| {});
    let control = limits::CONTROL_MESSAGE_SIZE_MAX;
    let command = limits::COMMAND_MESSAGE_SIZE_MAX;
    let data = limits::DATA_MESSAGE_SIZE_MAX;
    // Data is bounded by its own bound on a publishing connection; on any
    // other, everything is held to the command bound, video included.
    let attacks = [
        ("set chunk size", 1, control, false),
        ("user control", 4, control, false),
        ("window ack size", 5, control, false),
        ("amf0 command", 20, command, false),
        ("amf3 command", 17, command, false),
        ("amf0 data", 18, data, true),
        ("amf3 data", 15, data, true),
        ("amf0 shared object", 19, command, false),
        ("amf3 shared object", 16, command, false),
        ("unknown type 7", 7, command, false),
        ("video from a player", 9, command, false),
    ];
    for (n, (what, type_id, max, publishing)) in attacks.into_iter().enumerate() {
        // Connected, so the attacker gets past everything but the bound.
        let mut attacker = Client::connect(scene.addr, reference::APP);
        if publishing {
            attacker.publish(&format!("bounds-{n}"));
        }
        let peer = attacker.socket.local_addr().expect("address");
        raw::send(&mut attacker.socket, &header(type_id, max + 1));
        raw::assert_closed(&mut attacker.socket, what);
        assert_logged_once(peer, what);
        let lines = super::common::logs::lines_for(peer);
        let expected = format!("length {} on chunk stream 4 exceeds max {max}", max + 1);
        assert!(
            lines.iter().any(|l| l.contains(&expected)),
            "{what}: {lines:#?}"
        );
    }
    // Before connect, video is held to the command bound too.
    let mut early = raw::handshake(scene.addr);
    let peer = early.local_addr().expect("address");
    raw::send(&mut early, &header(9, command + 1));
    raw::assert_closed(&mut early, "video before connect");
    assert_logged_once(peer, "video before connect");
    scene.assert_counted(
        "protocol errors",
        |s| s.protocol_errors,
        attacks.len() as u64 + 1,
    );
    // At its bound, a data message is read whole and served.
    let mut publisher = Client::connect(scene.addr, reference::APP);
    let stream_id = publisher.publish("long-metadata");
    let mut body = Vec::new();
    amf0_string(&mut body, "onCuePoint");
    body.push(0x0C);
    let text = data as usize - body.len() - 4;
    body.extend((text as u32).to_be_bytes());
    body.extend(std::iter::repeat_n(b'c', text));
    assert_eq!(body.len(), data as usize);
    let message = raw::message(
        raw::RAW_CHUNK_STREAM,
        MessageType::DATA_AMF0,
        stream_id.0,
        &body,
        raw::CLIENT_CHUNK_SIZE,
    );
    raw::send(&mut publisher.socket, &message);
    // Still served: a command after it is answered.
    publisher.create_stream();
    scene.finish("fresh-after-small-type-bounds");
}

// ---------------------------------------------------------------------------
// Aggregates
// ---------------------------------------------------------------------------

/// An aggregate of `n` empty audio tags (15 bytes each with the back
/// pointer).
fn empty_tags(n: usize) -> Vec<u8> {
    let tag = [8u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 11];
    tag.repeat(n)
}

#[test]
fn an_aggregate_of_empty_sub_messages_closes_the_publisher_cheaply() {
    let scene = Scene::start(|_| {});
    let mut publisher = Client::connect(scene.addr, reference::APP);
    let peer = publisher.socket.local_addr().expect("address");
    let stream_id = publisher.publish("aggregates");
    let cs = raw::CLIENT_CHUNK_SIZE;
    let aggregate = |n| {
        raw::message(
            raw::RAW_CHUNK_STREAM,
            MessageType::AGGREGATE,
            stream_id.0,
            &empty_tags(n),
            cs,
        )
    };
    // At the bound: served.
    raw::send(
        &mut publisher.socket,
        &aggregate(limits::AGGREGATE_MESSAGES_MAX),
    );
    publisher.create_stream();
    // 500 000 sub-messages (7.5 MB): closed after the bound.
    let flood = aggregate(500_000);
    let meter = Meter::start();
    raw::send(&mut publisher.socket, &flood);
    raw::assert_closed(&mut publisher.socket, "an aggregate flood");
    let spent = meter.spent();
    eprintln!("an aggregate of 500 000 empty tags: {spent:?}");
    assert!(spent.cpu < Duration::from_millis(200), "{spent:?}");
    assert_logged_once(peer, "an aggregate flood");
    scene.assert_counted("protocol errors", |s| s.protocol_errors, 1);
    scene.finish("fresh-after-aggregate-flood");
}
