//! Bad input on the TLS listeners, and TLS on the plain ones. Each closes
//! that connection only (a TLS player plays on through all of them, every
//! frame), is logged once and moves its counter by exactly one; a
//! ClientHello that comes a byte at a time is no attack and plays.

use std::io::{ErrorKind, Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use rustls::crypto::cipher::{
    InboundOpaqueMessage, MessageDecrypter, MessageEncrypter, OutboundChunks, OutboundPlainMessage,
};
use rustls::{ConnectionTrafficSecrets, ContentType, ProtocolVersion, SupportedCipherSuite};

use super::common::feeder::Feeder;
use super::common::ffmpeg::{run_bounded, tool};
use super::common::logs;
use super::common::web::{WebPlayer, assert_no_gap_after_first_keyframe};
use super::*;

/// Handshake (TLS and HTTP request, or TLS, RTMP handshake and
/// `connect`) must finish within this: short, so the stalls end soon,
/// and long enough for a ClientHello sent a byte at a time.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);

/// The counters bad input moves, as `/metrics` says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counts {
    tls_failures: u64,
    tls_on_plain_port: u64,
    handshake_timeouts: u64,
}

impl Counts {
    fn of(server: &ServerHandle) -> Counts {
        Counts {
            tls_failures: metric(server, "ringcast_tls_failures_total"),
            tls_on_plain_port: metric(server, "ringcast_tls_on_plain_port_total"),
            handshake_timeouts: metric(server, "ringcast_handshake_timeouts_total"),
        }
    }
}

/// A server serving a numbered stream, a TLS player watching it, and
/// what the attacks so far should have counted.
struct Scene {
    server: ServerHandle,
    pki: Pki,
    player: WebPlayer<TlsStream>,
    /// The numbered frames the player has read.
    frames: Vec<u32>,
    expected: Counts,
    _feeder: Feeder,
}

impl Scene {
    fn start() -> Scene {
        let pki = Pki::new();
        let cert = pki.server("server", &LOOPBACK);
        let server = start_tls(2, &cert, |c| c.timeouts.handshake = HANDSHAKE_TIMEOUT);
        let feeder = Feeder::start(&[rtmp(&server)], "cam");
        let stream = tls_connect(https(&server), "127.0.0.1", pki.client()).expect("TLS");
        let host = https(&server).to_string();
        let player = WebPlayer::get_over(stream, &host, "/live/cam.flv").expect("200");
        let mut scene = Scene {
            server,
            pki,
            player,
            frames: Vec::new(),
            expected: Counts::default(),
            _feeder: feeder,
        };
        scene.plays_on("at the start");
        scene
    }

    /// The player got the next half second of frames.
    fn plays_on(&mut self, after: &str) {
        let frames = self.player.next_frames(15);
        assert_no_gap_after_first_keyframe(&frames, 10, after);
        self.frames.extend(frames);
    }

    /// Waits until the counters are what the attacks so far should have
    /// counted, and checks they are no more.
    fn counted(&self, after: &str) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let now = Counts::of(&self.server);
            let reached = now.tls_failures >= self.expected.tls_failures
                && now.tls_on_plain_port >= self.expected.tls_on_plain_port
                && now.handshake_timeouts >= self.expected.handshake_timeouts;
            if reached || Instant::now() > deadline {
                assert_eq!(now, self.expected, "after {after}");
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// What the server sent until it closed the connection; panics if it
/// is still open after [`TIMEOUT`].
fn answer_until_closed(socket: &mut TcpStream, what: &str) -> Vec<u8> {
    let deadline = Instant::now() + TIMEOUT;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "{what}: the server kept the connection");
        socket.set_read_timeout(Some(left)).unwrap();
        match socket.read(&mut buf) {
            Ok(0) => return answer,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // A reset: the server closed with our bytes unread.
            Err(_) => return answer,
        }
    }
}

/// Waits for the server's close line for `peer` and checks it is the only
/// line naming it and says `why`.
fn assert_logged_once(peer: SocketAddr, why: &str) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let lines = logs::lines_for(peer);
        if lines.iter().any(|l| l.contains(" closed ")) {
            assert_eq!(lines.len(), 1, "one line for {peer}: {lines:#?}");
            assert!(lines[0].contains(why), "{why:?} in {}", lines[0]);
            return;
        }
        assert!(Instant::now() < deadline, "no close line for {peer}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// [`assert_logged_once`] for a peer that played: its play line, then
/// its close line.
fn assert_closed_logged_once(peer: SocketAddr, why: &str) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let lines = logs::lines_for(peer);
        if lines.iter().any(|l| l.contains(" closed ")) {
            assert_eq!(lines.len(), 2, "two lines for {peer}: {lines:#?}");
            assert!(lines[0].contains(" play "), "{}", lines[0]);
            assert!(lines[1].contains(why), "{why:?} in {}", lines[1]);
            return;
        }
        assert!(Instant::now() < deadline, "no close line for {peer}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Close lines that say `why`, so far.
fn closes_saying(why: &str) -> usize {
    (logs::all_lines().iter())
        .filter(|l| l.contains(" closed ") && l.contains(why))
        .count()
}

#[test]
fn bad_input_closes_that_connection_only_is_logged_once_and_counted_exactly() {
    let mut scene = Scene::start();
    let (rtmps, https) = (rtmps(&scene.server), https(&scene.server));

    // Garbage where a ClientHello should be: a handshake record whose
    // ClientHello is four bytes of nothing (refused with a decode_error
    // alert), bytes that are no TLS at all, and plain HTTP.
    let hello_of_garbage = [0x16, 3, 1, 0, 8, 1, 0, 0, 4, 0xA5, 0xA5, 0xA5, 0xA5];
    let mut noise = vec![0xA5; 512];
    noise[0] = 0xFF;
    let get = b"GET /live/cam.flv HTTP/1.1\r\nHost: h\r\n\r\n";
    // A fatal (2) decode_error (50) alert in a TLS 1.2 record (RFC 8446
    // §6, §5.1).
    let decode_error: &[u8] = &[0x15, 3, 3, 0, 2, 2, 50];
    // What is sent where, the close line's reason, the answer.
    type Case<'a> = (&'a str, SocketAddr, &'a [u8], &'a str, &'a [u8]);
    let cases: [Case; 4] = [
        (
            "a ClientHello of garbage on RTMPS",
            rtmps,
            &hello_of_garbage,
            "reason=tls: received corrupt message of type MissingData(\"Random\")",
            decode_error,
        ),
        (
            "a ClientHello of garbage on HTTPS",
            https,
            &hello_of_garbage,
            "reason=tls: received corrupt message of type MissingData(\"Random\")",
            decode_error,
        ),
        (
            "noise on HTTPS",
            https,
            &noise,
            "reason=tls: not TLS: the first byte is 0xff, not a handshake record",
            &[],
        ),
        (
            "plain HTTP on HTTPS",
            https,
            get,
            "reason=tls: not TLS: the first byte is 0x47, not a handshake record",
            &[],
        ),
    ];
    for (what, addr, bytes, why, expected) in cases {
        let mut socket = TcpStream::connect(addr).unwrap();
        let peer = socket.local_addr().unwrap();
        let _ = socket.write_all(bytes);
        let answer = answer_until_closed(&mut socket, what);
        assert_eq!(answer, expected, "{what}: the answer before the close");
        assert_logged_once(peer, why);
        scene.expected.tls_failures += 1;
        scene.counted(what);
        scene.plays_on(what);
    }

    trickle_plays(&mut scene);
    stalls_time_out(&mut scene);
    renegotiation_is_refused_then_fatal(&mut scene);
    wrong_ports_are_refused(&mut scene);

    // The player got every frame through all of it.
    let frames = &scene.frames;
    assert_no_gap_after_first_keyframe(frames, 10, "the TLS player, all along");
    eprintln!(
        "the TLS player: {} frames, {} to {}, no gap",
        frames.len(),
        frames[0],
        frames[frames.len() - 1]
    );
    scene.counted("everything");
    // rustls logs nothing of its own (it would name no peer, and escape
    // the shards' log budgets): the close lines say it all.
    let rustls: Vec<String> = (logs::all_lines().into_iter())
        .filter(|l| l.contains(" rustls::"))
        .collect();
    assert!(rustls.is_empty(), "{rustls:#?}");
    scene.server.shutdown();
}

/// A ClientHello written a byte at a time is slow, not wrong: the
/// handshake completes and the client plays.
fn trickle_plays(scene: &mut Scene) {
    let https = https(&scene.server);
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut conn = rustls::ClientConnection::new(scene.pki.client(), name).unwrap();
    let mut hello = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut hello).unwrap();
    }
    let mut socket = TcpStream::connect(https).unwrap();
    socket.set_nodelay(true).unwrap();
    let peer = socket.local_addr().unwrap();
    for byte in &hello {
        socket.write_all(std::slice::from_ref(byte)).unwrap();
        // Each byte on its own: the server reads them one by one.
        std::thread::sleep(Duration::from_micros(500));
    }
    socket.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut stream = TlsStream::new(conn, socket);
    while stream.conn.is_handshaking() {
        stream
            .conn
            .complete_io(&mut stream.sock)
            .expect("the handshake completes");
    }
    let host = https.to_string();
    let mut player = WebPlayer::get_over(stream, &host, "/live/cam.flv").expect("200");
    let what = format!("a ClientHello of {} bytes, byte by byte", hello.len());
    player.assert_plays(&what);
    eprintln!("{what}: played");
    let lines = logs::lines_for(peer);
    assert!(
        lines.len() == 1 && lines[0].contains(" play "),
        "a play, nothing else: {lines:#?}"
    );
    scene.counted("a ClientHello byte by byte");
    scene.plays_on("a ClientHello byte by byte");
}

/// Part of a ClientHello, then nothing: closed at the handshake timeout
/// on both TLS ports, counted as handshake timeouts.
fn stalls_time_out(scene: &mut Scene) {
    let hello = client_hello(scene.pki.client());
    let started = Instant::now();
    let mut stalled: Vec<(TcpStream, SocketAddr)> = [rtmps(&scene.server), https(&scene.server)]
        .iter()
        .map(|addr| {
            let mut socket = TcpStream::connect(addr).unwrap();
            socket.write_all(&hello[..hello.len() / 2]).unwrap();
            let peer = socket.local_addr().unwrap();
            (socket, peer)
        })
        .collect();
    for (socket, peer) in &mut stalled {
        let answer = answer_until_closed(socket, "a stalled ClientHello");
        assert_eq!(answer, b"", "closed without a word");
        let waited = started.elapsed();
        assert!(
            waited >= HANDSHAKE_TIMEOUT - Duration::from_millis(100),
            "closed after {waited:?}, before the handshake timeout"
        );
        assert_logged_once(*peer, "reason=handshake and connect took too long");
    }
    scene.expected.handshake_timeouts += 2;
    scene.counted("stalled ClientHellos");
    scene.plays_on("stalled ClientHellos");
}

/// The records of a client's first flight: its ClientHello.
fn client_hello(config: Arc<rustls::ClientConfig>) -> Vec<u8> {
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut conn = rustls::ClientConnection::new(config, name).unwrap();
    let mut hello = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut hello).unwrap();
    }
    assert_eq!(hello[0], 0x16, "a handshake record");
    hello
}

/// A TLS 1.2 client (ECDHE-ECDSA with AES-128-GCM) whose keys can be
/// taken out once its handshake is done.
fn tls12_client(pki: &Pki) -> Arc<rustls::ClientConfig> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider.cipher_suites = vec![AES_128_GCM];
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(pki.roots())
        .with_no_client_auth();
    config.enable_secret_extraction = true;
    Arc::new(config)
}

const AES_128_GCM: SupportedCipherSuite =
    rustls::crypto::aws_lc_rs::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256;

/// A TLS 1.2 connection whose records this test seals and opens itself,
/// rustls' keys taken out after the handshake: it can send what rustls
/// never would, a ClientHello on an established connection
/// (renegotiation).
struct Raw12 {
    socket: TcpStream,
    encrypter: Box<dyn MessageEncrypter>,
    decrypter: Box<dyn MessageDecrypter>,
    sent: u64,
    received: u64,
    input: Vec<u8>,
}

impl Raw12 {
    /// Connects to `addr`, sends `request` and takes the keys over.
    fn connect(addr: SocketAddr, config: Arc<rustls::ClientConfig>, request: &[u8]) -> Raw12 {
        let mut stream = tls_connect(addr, "127.0.0.1", config).expect("TLS 1.2");
        assert_eq!(
            stream.conn.protocol_version(),
            Some(ProtocolVersion::TLSv1_2)
        );
        stream.write_all(request).unwrap();
        stream.flush().unwrap();
        // Nothing came after the server's Finished: rustls holds no
        // record of the stream (the answer comes to the request, sent
        // just now).
        let rustls::StreamOwned { conn, sock } = stream;
        let secrets = conn.dangerous_extract_secrets().expect("the keys");
        let SupportedCipherSuite::Tls12(suite) = AES_128_GCM else {
            unreachable!("a TLS 1.2 suite")
        };
        let key_and_iv = |secrets| match secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (key, iv),
            _ => panic!("AES-128-GCM keys"),
        };
        let (sent, tx) = secrets.tx;
        let (received, rx) = secrets.rx;
        let (key, iv) = key_and_iv(tx);
        // TLS 1.2 GCM: a 4-byte salt, then the explicit nonce's start.
        let encrypter = suite
            .aead_alg
            .encrypter(key, &iv.as_ref()[..4], &iv.as_ref()[4..]);
        let (key, iv) = key_and_iv(rx);
        let decrypter = suite.aead_alg.decrypter(key, &iv.as_ref()[..4]);
        Raw12 {
            socket: sock,
            encrypter,
            decrypter,
            sent,
            received,
            input: Vec::new(),
        }
    }

    fn send(&mut self, typ: ContentType, payload: &[u8]) {
        let message = OutboundPlainMessage {
            typ,
            version: ProtocolVersion::TLSv1_2,
            payload: OutboundChunks::Single(payload),
        };
        let record = self.encrypter.encrypt(message, self.sent).unwrap();
        self.sent += 1;
        self.socket.write_all(&record.encode()).unwrap();
    }

    /// The next record, opened: its type and plaintext; `None` once the
    /// server closed the connection.
    fn receive(&mut self) -> Option<(ContentType, Vec<u8>)> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(header) = self.input.get(..5) {
                let len = 5 + usize::from(u16::from_be_bytes([header[3], header[4]]));
                if self.input.len() >= len {
                    let mut record: Vec<u8> = self.input.drain(..len).collect();
                    let typ = ContentType::from(record[0]);
                    let version = ProtocolVersion::TLSv1_2;
                    let opaque = InboundOpaqueMessage::new(typ, version, &mut record[5..]);
                    let plain = self.decrypter.decrypt(opaque, self.received).unwrap();
                    self.received += 1;
                    return Some((plain.typ, plain.payload.to_vec()));
                }
            }
            assert!(Instant::now() < deadline, "no record from the server");
            let mut buf = [0u8; 65536];
            self.socket.set_read_timeout(Some(TIMEOUT)).unwrap();
            match self.socket.read(&mut buf) {
                Ok(0) => return None,
                Ok(n) => self.input.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => return None,
            }
        }
    }

    /// Records until the next alert: how many carried application data,
    /// and the alert (level, description).
    fn until_alert(&mut self) -> (usize, Option<[u8; 2]>) {
        let mut data = 0;
        loop {
            match self.receive() {
                Some((ContentType::Alert, alert)) => {
                    return (data, Some(alert.try_into().expect("two bytes")));
                }
                Some((ContentType::ApplicationData, _)) => data += 1,
                Some((other, _)) => panic!("a {other:?} record"),
                None => return (data, None),
            }
        }
    }
}

/// Renegotiation (a ClientHello on an established TLS 1.2 connection):
/// rustls answers the first with a no_renegotiation warning and the
/// stream goes on; a second is fatal, with no alert, and counted.
fn renegotiation_is_refused_then_fatal(scene: &mut Scene) {
    let https = https(&scene.server);
    let config = tls12_client(&scene.pki);
    let request = ringcast_web::client::get_request("GET", &https.to_string(), "/live/cam.flv");
    let mut raw = Raw12::connect(https, config.clone(), request.as_bytes());
    let peer = raw.socket.local_addr().unwrap();
    // A fresh ClientHello of the same kind, as the handshake message a
    // record of ours carries.
    let hello = client_hello(config);
    let message = &hello[5..];
    assert_eq!(hello.len(), 5 + message.len(), "one record");
    // The stream plays: a second of records (a frame each, or more).
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        let (typ, _) = raw.receive().expect("playing");
        assert_eq!(typ, ContentType::ApplicationData);
    }

    raw.send(ContentType::Handshake, message);
    // Warning (1), no_renegotiation (100): then the stream goes on.
    let (_, alert) = raw.until_alert();
    assert_eq!(alert, Some([1, 100]), "the first renegotiation refused");
    let deadline = Instant::now() + Duration::from_millis(500);
    let mut after = 0;
    while Instant::now() < deadline {
        let (typ, _) = raw.receive().expect("still playing");
        assert_eq!(typ, ContentType::ApplicationData);
        after += 1;
    }
    assert!(after >= 5, "{after} records after the refusal");

    raw.send(ContentType::Handshake, message);
    let (_, alert) = raw.until_alert();
    assert_eq!(alert, None, "closed, with no alert");
    assert_closed_logged_once(
        peer,
        "reason=tls: peer misbehaved: TooManyRenegotiationRequests",
    );
    scene.expected.tls_failures += 1;
    scene.counted("two renegotiations");
    scene.plays_on("two renegotiations");
}

/// Plain RTMP on the RTMPS port, and TLS on the plain RTMP and HTTP
/// ports (ffprobe as the client): refused, each logged and counted once.
fn wrong_ports_are_refused(scene: &mut Scene) {
    let server = &scene.server;
    let cases = [
        (
            format!("rtmp://{}/live/cam", rtmps(server)),
            "reason=tls: not TLS: the first byte is 0x03, not a handshake record",
        ),
        (
            format!("rtmps://{}/live/cam", rtmp(server)),
            "reason=a TLS handshake on a plain port",
        ),
        (
            format!("https://{}/live/cam.flv", http(server)),
            "reason=a TLS handshake on a plain port",
        ),
    ];
    for (url, why) in cases {
        let before = closes_saying(why);
        let mut probe = Command::new(tool("ffprobe"));
        probe.args(["-v", "error", &url]);
        let probed = run_bounded(probe, Duration::from_secs(15));
        assert!(!probed.status.success(), "ffprobe {url} succeeded");
        if why.contains("plain port") {
            scene.expected.tls_on_plain_port += 1;
        } else {
            scene.expected.tls_failures += 1;
        }
        scene.counted(&url);
        common::wait_until("the close line", || closes_saying(why) > before);
        assert_eq!(closes_saying(why), before + 1, "{url}: one line");
        scene.plays_on(&url);
    }
}
