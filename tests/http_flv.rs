//! HTTP-FLV and WebSocket-FLV players end to end: ffprobe, ffmpeg and
//! ffplay read an ffmpeg publish over HTTP; ffmpeg 9 reads HEVC back over
//! enhanced FLV; a WebSocket client reads the FLV in binary frames and is
//! answered on its control frames; bad requests get their status and are
//! closed while others play; keys, address lists and hooks guard HTTP
//! players; an edge pulls for them; twenty of them on four shards get
//! every frame; the api API counts and kicks them and a reload keys new
//! ones out; the player page is served. These tests need ffmpeg
//! (`apt-get install ffmpeg`) and ffmpeg 9 (`pip install imageio-ffmpeg`);
//! without them they fail, never skip.
// Tests and benches fail by panicking on what they did not expect.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::admin::{self, get_json, request, scrape};
use common::feeder::Feeder;
use common::ffmpeg::{
    assert_decodes_hevc_and_opus, assert_probes_h264_and_aac, ffmpeg9, finish, publish,
    publish_hevc, run_bounded, tool, wait_for_frames_in,
};
use common::hooks::{Answer, HookService};
use common::media::{aac_header, avc_header, frame_number, video};
use common::{Client, TIMEOUT, media, players, start_server, wait_until};
use ringcast::config::Network;
use ringcast::protocol::Timestamp;
use ringcast::protocol::url::RtmpUrl;
use ringcast::server::ServerHandle;
use ringcast::session::{Media, MediaKind};
use ringcast_web::client::{ResponseHead, get_request, parse_response_head};
use ringcast_web::websocket::{
    self, Frame, Frames, Opcode, accept_key, client_frame, client_key, close, upgrade_request,
};
use serde_json::Value;

/// Bytes of the FLV file header and PreviousTagSize0 (FLV 10.1 annex
/// E.2).
const FLV_HEADER_BYTES: usize = 13;

/// Bytes of an FLV tag header: type, size, timestamp, stream id.
const TAG_HEADER_BYTES: usize = 11;

/// Frames from a server are read up to this size (ours carry one FLV tag).
const SERVER_FRAME_BYTES_MAX: usize = 1 << 20;

const MASK: [u8; 4] = [0x5a, 0x17, 0xc3, 0x08];

/// The next FLV tag at the front of `flv`, its bytes and previous-tag-size
/// removed; `None` until it is whole. Panics on a malformed tag.
fn take_tag(flv: &mut BytesMut) -> Option<Media> {
    let size = flv
        .get(..TAG_HEADER_BYTES)
        .map(|h| u32::from_be_bytes([0, h[1], h[2], h[3]]) as usize)?;
    let total = TAG_HEADER_BYTES + size + 4;
    if flv.len() < total {
        return None;
    }
    let tag = flv.split_to(total);
    let kind = match tag[0] {
        8 => MediaKind::Audio,
        9 => MediaKind::Video,
        18 => MediaKind::Data,
        other => panic!("FLV tag type {other}"),
    };
    // The lower 24 bits, then the extension byte as the upper 8.
    let timestamp = u32::from_be_bytes([tag[7], tag[4], tag[5], tag[6]]);
    assert_eq!(&tag[8..11], [0, 0, 0], "stream id 0");
    let previous = u32::from_be_bytes(tag[total - 4..].try_into().unwrap());
    assert_eq!(
        previous as usize,
        TAG_HEADER_BYTES + size,
        "previous tag size"
    );
    Some(Media {
        kind,
        timestamp: Timestamp(timestamp),
        payload: Bytes::copy_from_slice(&tag[TAG_HEADER_BYTES..total - 4]),
    })
}

/// Checks an FLV file header and returns the tracks it announces.
fn flv_header(bytes: &[u8]) -> u8 {
    assert_eq!(
        bytes.len(),
        FLV_HEADER_BYTES,
        "the FLV header first: {bytes:?}"
    );
    let flags = bytes[4];
    let expected = [b'F', b'L', b'V', 1, flags, 0, 0, 0, 9, 0, 0, 0, 0];
    assert_eq!(bytes, expected, "the FLV header first");
    assert!([1, 4, 5].contains(&flags), "tracks {flags:#x}");
    flags
}

/// What the server answered instead of playing, or a whole response: its
/// status and body.
#[derive(Debug)]
struct Response {
    status: u16,
    body: String,
}

/// A player over HTTP-FLV (the body is the FLV stream) or WebSocket-FLV
/// (binary messages carry it: the file header, then one tag each).
struct WebPlayer {
    socket: TcpStream,
    /// Read and not yet decoded: body bytes, or WebSocket frames.
    input: BytesMut,
    /// The frames decoder of a WebSocket player.
    frames: Option<Frames>,
    /// FLV bytes not yet parsed.
    flv: BytesMut,
    /// The FLV file header came: the tracks it announced, audio (4) and
    /// video (1).
    header: Option<u8>,
    /// Tags parsed and not taken yet.
    tags: VecDeque<Media>,
    /// Control frames (pong, close) received, in order.
    control: Vec<Frame>,
    /// The server closed the connection.
    closed: bool,
}

impl WebPlayer {
    /// `GET target` over HTTP-FLV: the player once its `200` came.
    fn get(addr: SocketAddr, target: &str) -> Result<WebPlayer, Response> {
        let request = get_request("GET", &addr.to_string(), target);
        let (socket, head, rest) = exchange_head(addr, request.as_bytes());
        if head.status != 200 {
            return Err(read_rest(socket, &head, rest));
        }
        assert_eq!(head.content_type.as_deref(), Some("video/x-flv"));
        assert!(!head.chunked, "a close-delimited body");
        Ok(WebPlayer::new(socket, rest, None))
    }

    /// `GET target` with a WebSocket upgrade offering `protocol`: the
    /// player once its `101` came, with the right accept key and the
    /// subprotocol echoed.
    fn websocket(
        addr: SocketAddr,
        target: &str,
        protocol: Option<&str>,
    ) -> Result<WebPlayer, Response> {
        let key = client_key(*b"ringcast-test-16");
        let request = upgrade_request(&addr.to_string(), target, &key, protocol);
        let (socket, head, rest) = exchange_head(addr, request.as_bytes());
        if head.status != 101 {
            return Err(read_rest(socket, &head, rest));
        }
        assert_eq!(head.websocket_accept, Some(accept_key(&key)), "accept key");
        assert_eq!(
            head.websocket_protocol.as_deref(),
            protocol,
            "subprotocol echoed"
        );
        let frames = Frames::from_server(SERVER_FRAME_BYTES_MAX);
        Ok(WebPlayer::new(socket, rest, Some(frames)))
    }

    /// [`WebPlayer::websocket`] (offering no subprotocol) or
    /// [`WebPlayer::get`].
    fn open(addr: SocketAddr, target: &str, websocket: bool) -> Result<WebPlayer, Response> {
        if websocket {
            WebPlayer::websocket(addr, target, None)
        } else {
            WebPlayer::get(addr, target)
        }
    }

    fn new(socket: TcpStream, rest: BytesMut, frames: Option<Frames>) -> WebPlayer {
        let mut player = WebPlayer {
            socket,
            input: rest,
            frames,
            flv: BytesMut::new(),
            header: None,
            tags: VecDeque::new(),
            control: Vec::new(),
            closed: false,
        };
        player.decode();
        player
    }

    /// Reads once (up to `wait`) and decodes what came.
    fn pump(&mut self, wait: Duration) {
        assert!(!self.closed, "read after the server closed");
        self.socket.set_read_timeout(Some(wait)).unwrap();
        let mut buf = [0u8; 65536];
        match self.socket.read(&mut buf) {
            Ok(0) => self.closed = true,
            Ok(n) => self.input.extend_from_slice(&buf[..n]),
            Err(e) if is_timeout(&e) || e.kind() == std::io::ErrorKind::Interrupted => return,
            // A reset ends the connection too.
            Err(_) => self.closed = true,
        }
        self.decode();
    }

    /// Turns what was read into tags and control frames.
    fn decode(&mut self) {
        match &mut self.frames {
            None => self.flv.extend_from_slice(&self.input.split()),
            Some(frames) => {
                while let Some(frame) = frames.decode(&mut self.input).expect("valid frames") {
                    assert!(frame.fin, "the server sends no fragments");
                    match frame.opcode {
                        Opcode::Binary if self.header.is_none() => {
                            self.header = Some(flv_header(&frame.payload));
                        }
                        Opcode::Binary => {
                            let mut message = BytesMut::from(&frame.payload[..]);
                            let tag = take_tag(&mut message).expect("a whole tag");
                            assert!(message.is_empty(), "one tag per message");
                            self.tags.push_back(tag);
                        }
                        Opcode::Pong | Opcode::Close => self.control.push(frame),
                        other => panic!("unexpected {other:?} frame from the server"),
                    }
                }
                return;
            }
        }
        if self.header.is_none() && self.flv.len() >= FLV_HEADER_BYTES {
            let header = self.flv.split_to(FLV_HEADER_BYTES);
            self.header = Some(flv_header(&header));
        }
        if self.header.is_some() {
            while let Some(tag) = take_tag(&mut self.flv) {
                self.tags.push_back(tag);
            }
        }
    }

    /// The next tag, waiting for it up to [`TIMEOUT`].
    fn next_tag(&mut self) -> Media {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(tag) = self.tags.pop_front() {
                return tag;
            }
            assert!(!self.closed, "the server closed the connection");
            assert!(Instant::now() < deadline, "timed out waiting for a tag");
            self.pump(Duration::from_millis(50));
        }
    }

    /// The numbered frames that come next, up to and including `last`.
    fn frames_through(&mut self, last: u32) -> Vec<u32> {
        let mut got = Vec::new();
        while got.last().is_none_or(|n| *n < last) {
            got.extend(frame_number(&self.next_tag()));
        }
        got
    }

    /// The next `n` numbered frames.
    fn next_frames(&mut self, n: usize) -> Vec<u32> {
        let mut got = Vec::new();
        while got.len() < n {
            got.extend(frame_number(&self.next_tag()));
        }
        got
    }

    /// Asserts the player is getting the stream: the next 15 numbered
    /// frames run on from a keyframe (every 10th, as the feeder sends).
    fn assert_plays(&mut self, who: &str) {
        assert_no_gap_after_first_keyframe(&self.next_frames(15), 10, who);
    }

    fn send(&mut self, bytes: &[u8]) {
        self.socket.write_all(bytes).expect("write");
    }

    /// The next control frame, waiting for it up to [`TIMEOUT`].
    fn next_control(&mut self) -> Frame {
        let deadline = Instant::now() + TIMEOUT;
        while self.control.is_empty() {
            assert!(!self.closed, "closed before a control frame came");
            assert!(
                Instant::now() < deadline,
                "timed out waiting for a control frame"
            );
            self.pump(Duration::from_millis(50));
        }
        self.control.remove(0)
    }

    /// Reads until the server closes the connection; panics after
    /// [`TIMEOUT`].
    fn read_until_closed(&mut self) {
        let deadline = Instant::now() + TIMEOUT;
        while !self.closed {
            assert!(Instant::now() < deadline, "the server kept it open");
            self.pump(Duration::from_millis(50));
        }
    }

    fn local_addr(&self) -> String {
        self.socket.local_addr().unwrap().to_string()
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// Connects, sends `request` and reads until the response head is whole:
/// the socket, the head, and what came after it.
fn exchange_head(addr: SocketAddr, request: &[u8]) -> (TcpStream, ResponseHead, BytesMut) {
    let mut socket = TcpStream::connect(addr).expect("the HTTP listener accepts");
    socket.write_all(request).expect("request sent");
    socket.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut input = BytesMut::new();
    let mut buf = [0u8; 65536];
    loop {
        if let Some(head) = parse_response_head(&input, 8192).expect("a response head") {
            let rest = input.split_off(head.len);
            return (socket, head, rest);
        }
        match socket.read(&mut buf) {
            Ok(0) => panic!("closed before a response head: {input:?}"),
            Ok(n) => input.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("no response head: {e}; have {input:?}"),
        }
    }
}

/// Reads the rest of a response, its body; the server must close after it.
fn read_rest(mut socket: TcpStream, head: &ResponseHead, mut rest: BytesMut) -> Response {
    let mut body = Vec::new();
    match socket.read_to_end(&mut body) {
        Ok(_) => {}
        Err(e) if is_timeout(&e) => panic!("status {} and the connection open", head.status),
        // A reset after the answer ends it too.
        Err(_) => {}
    }
    rest.extend_from_slice(&body);
    Response {
        status: head.status,
        body: String::from_utf8_lossy(&rest).into_owned(),
    }
}

/// Sends `request` as is and reads the whole answer: its status and body.
/// The server must close the connection after it.
fn answer_to(addr: SocketAddr, request: &[u8]) -> Response {
    let (socket, head, rest) = exchange_head(addr, request);
    read_rest(socket, &head, rest)
}

/// A file from the HTTP listener: the head and the whole body.
fn fetch(addr: SocketAddr, path: &str) -> (ResponseHead, String) {
    let request = get_request("GET", &addr.to_string(), path);
    let (socket, head, rest) = exchange_head(addr, request.as_bytes());
    let response = read_rest(socket, &head, rest);
    (head, response.body)
}

fn http(server: &ServerHandle) -> SocketAddr {
    server.http_addr().expect("the HTTP listener is on")
}

fn rtmp(server: &ServerHandle) -> SocketAddr {
    server.local_addrs()[0]
}

/// Asserts that `frames` run on without a gap from the first keyframe
/// (every `gop`-th frame) and that there is one.
fn assert_no_gap_after_first_keyframe(frames: &[u32], gop: u32, who: &str) {
    let first = frames
        .iter()
        .position(|n| n % gop == 0)
        .unwrap_or_else(|| panic!("{who}: no keyframe in {frames:?}"));
    let run = &frames[first..];
    let expected: Vec<u32> = (run[0]..run[0] + run.len() as u32).collect();
    assert_eq!(run, expected, "{who}: every frame, in order");
}

/// ffplay's status lines (`  2.95 M-A:  0.000 fd=   0 aq=    9KB …`): the
/// clock in seconds and the audio queued, in KiB.
fn ffplay_status(log: &str) -> Vec<(f64, u32)> {
    log.split(['\n', '\r'])
        .filter_map(|line| {
            let (clock, rest) = line.split_once("M-A:")?;
            let queued = rest.split_once("aq=")?.1.split_once("KB")?.0;
            Some((clock.trim().parse().ok()?, queued.trim().parse().ok()?))
        })
        .collect()
}

#[test]
fn ffprobe_ffmpeg_and_ffplay_read_an_ffmpeg_h264_aac_publish_over_http_flv() {
    let server = start_server(2, |_| {});
    let publisher = publish(&format!("rtmp://{}/live/cam", rtmp(&server)), 25);
    wait_for_frames_in(&server, 30);
    let url = format!("http://{}/live/cam.flv", http(&server));

    assert_probes_h264_and_aac(&url);

    // ffmpeg decodes 3 s while ffplay plays, headless. ffplay's `-t 3
    // -autoexit` never ends a live stream (it exits at the end of its
    // input only), so it plays until killed 5 s on.
    let mut decode = Command::new(tool("ffmpeg"));
    decode.args(["-hide_banner", "-v", "error", "-i", &url]);
    decode.args(["-t", "3", "-f", "null", "-progress", "pipe:1", "-"]);
    let mut play = Command::new(tool("ffplay"));
    play.env("SDL_VIDEODRIVER", "dummy")
        .env("SDL_AUDIODRIVER", "dummy");
    play.args(["-hide_banner", "-nodisp", "-stats", &url]);
    let (decoded, played) = std::thread::scope(|s| {
        let playing = s.spawn(|| run_bounded(play, Duration::from_secs(5)));
        let decoded = run_bounded(decode, Duration::from_secs(20));
        (decoded, playing.join().unwrap())
    });
    finish(publisher);
    let errors = String::from_utf8_lossy(&decoded.stderr);
    assert!(decoded.status.success(), "ffmpeg failed: {errors}");
    assert!(errors.trim().is_empty(), "decoding errors: {errors}");
    // `-progress` reports `frame=N`, the last time for all of it.
    let progress = String::from_utf8_lossy(&decoded.stdout);
    let frames = progress
        .lines()
        .filter_map(|l| l.strip_prefix("frame=")?.trim().parse::<u32>().ok())
        .max();
    assert!(
        frames >= Some(85),
        "3 s at 30 fps decoded, not {frames:?}: {progress}"
    );
    let log = String::from_utf8_lossy(&played.stderr);
    assert!(log.contains("Video: h264"), "ffplay saw no h264: {log}");
    assert!(log.contains("Audio: aac"), "ffplay saw no aac: {log}");
    let failures: Vec<&str> = log
        .split(['\n', '\r'])
        .filter(|l| l.to_lowercase().contains("error") || l.contains("Failed"))
        .collect();
    assert!(failures.is_empty(), "ffplay: {failures:?}");
    let status = ffplay_status(&log);
    assert!(
        status
            .iter()
            .any(|&(clock, queued)| clock >= 2.5 && queued > 0),
        "ffplay played 2.5 s with audio still coming: {status:?}"
    );
    server.shutdown();
}

#[test]
fn ffmpeg9_reads_hevc_and_opus_back_over_http_flv_from_enhanced_rtmp() {
    let ffmpeg = ffmpeg9();
    let server = start_server(2, |_| {});
    let publisher = publish_hevc(&ffmpeg, &format!("rtmp://{}/live/hevc", rtmp(&server)), 20);
    wait_for_frames_in(&server, 25);
    let url = format!("http://{}/live/hevc.flv", http(&server));
    assert_decodes_hevc_and_opus(&ffmpeg, &url);
    finish(publisher);
    server.shutdown();
}

#[test]
fn enhanced_rtmp_bodies_go_out_as_flv_tags_unchanged() {
    let server = start_server(2, |_| {});
    let mut publisher = Client::connect(rtmp(&server), "live");
    let id = publisher.publish("hevc");
    let mut flv = WebPlayer::get(http(&server), "/live/hevc.flv").expect("playing");
    let mut ws = WebPlayer::websocket(http(&server), "/live/hevc.flv", None).expect("playing");
    // Past 2^24 ms: the tags' timestamp extension byte is used.
    let sent = media::enhanced(0x0100_0000);
    for media in &sent {
        publisher.send(id, media);
    }
    for (player, name) in [(&mut flv, "http-flv"), (&mut ws, "ws-flv")] {
        let got: Vec<Media> = sent.iter().map(|_| player.next_tag()).collect();
        assert_eq!(got, sent, "{name}");
    }
    server.shutdown();
}

#[test]
fn a_websocket_player_reads_flv_in_binary_frames_and_is_answered_on_control_frames() {
    let server = start_server(2, |_| {});
    let mut publisher = Client::connect(rtmp(&server), "live");
    let id = publisher.publish("cam");
    publisher.send_metadata(id);
    publisher.send(id, &avc_header());
    publisher.send(id, &aac_header());
    let addr = http(&server);
    let mut player = WebPlayer::websocket(addr, "/live/cam.flv", Some("flv")).expect("101");
    for n in 0..30 {
        publisher.send(id, &video(n, 10, 300));
    }
    // The header came first (checked as it was read), then metadata and
    // the sequence headers, then every frame.
    let metadata = player.next_tag();
    assert_eq!(metadata.kind, MediaKind::Data);
    assert!(
        metadata.payload.windows(10).any(|w| w == b"onMetaData"),
        "{metadata:?}"
    );
    let mut headers = vec![player.next_tag(), player.next_tag()];
    headers.sort_by_key(|m| m.kind == MediaKind::Audio);
    assert_eq!(headers, vec![avc_header(), aac_header()]);
    assert_eq!(player.header, Some(0x05), "audio and video announced");
    assert_eq!(player.frames_through(29), (0..30).collect::<Vec<_>>());

    player.send(&client_frame(Opcode::Ping, b"are you there", MASK));
    let pong = player.next_control();
    assert_eq!(pong.opcode, Opcode::Pong);
    assert_eq!(&pong.payload[..], b"are you there");
    // Frames go on after a ping.
    publisher.send(id, &video(30, 10, 300));
    assert_eq!(player.frames_through(30), vec![30]);
    let bye = websocket::close_payload(close::NORMAL, "bye");
    player.send(&client_frame(Opcode::Close, &bye, MASK));
    let answer = player.next_control();
    assert_eq!(answer.opcode, Opcode::Close);
    assert_eq!(
        websocket::parse_close(&answer.payload)
            .unwrap()
            .map(|c| c.0),
        Some(close::NORMAL)
    );
    player.read_until_closed();

    // An unmasked frame breaks RFC 6455 §5.1: 1002.
    let mut unmasked = WebPlayer::websocket(addr, "/live/cam.flv", None).expect("101");
    unmasked.send(&websocket::server_frame(Opcode::Ping, b"x"));
    let answer = unmasked.next_control();
    assert_eq!(answer.opcode, Opcode::Close);
    let (code, _) = websocket::parse_close(&answer.payload).unwrap().unwrap();
    assert_eq!(code, close::PROTOCOL_ERROR);
    unmasked.read_until_closed();

    // A message over 4 KiB: 1009, refused from its header.
    let mut big = WebPlayer::websocket(addr, "/live/cam.flv", None).expect("101");
    let _ = big
        .socket
        .write_all(&client_frame(Opcode::Binary, &[7; 64 * 1024], MASK));
    let answer = big.next_control();
    assert_eq!(answer.opcode, Opcode::Close);
    let (code, _) = websocket::parse_close(&answer.payload).unwrap().unwrap();
    assert_eq!(code, close::TOO_BIG);
    big.read_until_closed();

    // A shutdown says goodbye: 1001.
    let mut last = WebPlayer::websocket(addr, "/live/cam.flv", None).expect("101");
    server.shutdown();
    let answer = last.next_control();
    assert_eq!(answer.opcode, Opcode::Close);
    let (code, _) = websocket::parse_close(&answer.payload).unwrap().unwrap();
    assert_eq!(code, close::GOING_AWAY);
    last.read_until_closed();
}

#[test]
fn a_websocket_player_that_pings_and_never_reads_is_cut_off_at_its_queue_bound() {
    let server = start_server(1, |c| {
        c.stream.gop_cache_bytes_max = 0;
        c.player.queue_bytes_max = 64 * 1024;
        c.player.write_batch_bytes_max = 16 * 1024;
    });
    let mut publisher = Client::connect(rtmp(&server), "live");
    let id = publisher.publish("cam");
    let flooder = WebPlayer::websocket(http(&server), "/live/cam.flv", None).expect("101");
    let mut socket = flooder.socket;
    // Pongs the kernel's buffers cannot hold pile up in the queue: up to
    // twice its 64 KiB bound, then the connection goes.
    let ping = client_frame(Opcode::Ping, &[b'p'; 125], MASK);
    let flood: Vec<u8> = ping
        .iter()
        .copied()
        .cycle()
        .take(ping.len() * 1000)
        .collect();
    let mut sent = 0;
    let cut_off = loop {
        match socket.write_all(&flood) {
            Ok(()) => sent += flood.len(),
            Err(_) => break true,
        }
        if sent > 256 * 1024 * 1024 {
            break false;
        }
    };
    assert!(cut_off, "the server still took pings after {sent} bytes");
    wait_until("the flooder is counted as a slow disconnect", || {
        server
            .stats()
            .iter()
            .map(|s| s.slow_disconnects)
            .sum::<u64>()
            == 1
    });
    // Another player is served as before.
    let mut player = WebPlayer::get(http(&server), "/live/cam.flv").expect("200");
    publisher.send(id, &avc_header());
    for n in 0..10 {
        publisher.send(id, &video(n, 10, 300));
    }
    assert_eq!(player.frames_through(9), (0..10).collect::<Vec<_>>());
    server.shutdown();
}

/// The timer `/proc/net/tcp` shows on the connection from `local` to
/// `remote` (IPv4): 0 none, 1 retransmit, 2 keepalive, ...
fn tcp_timer(local: SocketAddr, remote: SocketAddr) -> Option<u32> {
    let hex = |addr: SocketAddr| match addr {
        SocketAddr::V4(v4) => format!(
            "{:08X}:{:04X}",
            u32::from_le_bytes(v4.ip().octets()),
            v4.port()
        ),
        SocketAddr::V6(_) => unreachable!("the test server is on 127.0.0.1"),
    };
    let (local, remote) = (hex(local), hex(remote));
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    table.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.get(1) == Some(&local.as_str()) && fields.get(2) == Some(&remote.as_str()))
            .then(|| fields[5].split(':').next().unwrap().parse().unwrap())
    })
}

#[test]
fn http_players_are_kept_alive_by_tcp_so_a_vanished_one_is_found() {
    let server = start_server(1, |c| c.http.play_wait = Duration::from_secs(30));
    let addr = http(&server);
    // A player waiting for a stream hears nothing and says nothing.
    let mut socket = TcpStream::connect(addr).unwrap();
    socket
        .write_all(get_request("GET", &addr.to_string(), "/live/later.flv").as_bytes())
        .unwrap();
    let client = socket.local_addr().unwrap();
    wait_until(
        "the server's side of the connection has its keepalive timer",
        || tcp_timer(addr, client) == Some(2),
    );
    // An RTMP peer is pinged by us instead: no keepalive timer.
    let rtmp_client = Client::connect(rtmp(&server), "live");
    let rtmp_local = rtmp_client.socket.local_addr().unwrap();
    // (a retransmit timer may run while its last bytes are unacknowledged)
    let timer = tcp_timer(rtmp(&server), rtmp_local);
    assert!(matches!(timer, Some(0 | 1)), "timer {timer:?}");
    server.shutdown();
}

/// Bad requests with the status each must get.
fn bad_requests() -> Vec<(&'static str, Vec<u8>, u16)> {
    let upgrade = |version: &str, key: &str| {
        format!(
            "GET /live/other.flv HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n\
             Sec-WebSocket-Version: {version}\r\n\r\n"
        )
        .into_bytes()
    };
    let good_key = client_key([1; 16]);
    // Exactly the cap and no end: all of it is read before the answer.
    let mut huge = b"GET /live/other.flv HTTP/1.1\r\nX-Pad: ".to_vec();
    huge.resize(ringcast::limits::HTTP_HEAD_BYTES_MAX, b'a');
    let case = |name, request: &[u8], status| (name, request.to_vec(), status);
    vec![
        case("garbage", b"\x16\x03\x01\x02\0\x01\0\x01\xfc\r\n\r\n", 400),
        case("no version", b"GET /live/other.flv\r\n\r\n", 400),
        case("POST", b"POST /live/other.flv HTTP/1.1\r\n\r\n", 405),
        case("DELETE", b"DELETE /live/other.flv HTTP/1.1\r\n\r\n", 405),
        case("dot-dot", b"GET /live/../other.flv HTTP/1.1\r\n\r\n", 400),
        case("%2e%2e", b"GET /a/%2e%2e/x.flv HTTP/1.1\r\n\r\n", 400),
        case("NUL", b"GET /live/oth%00er.flv HTTP/1.1\r\n\r\n", 400),
        case("bad percent", b"GET /live/%zz.flv HTTP/1.1\r\n\r\n", 400),
        case("cut percent", b"GET /live/other.flv% HTTP/1.1\r\n\r\n", 400),
        case("head over 8 KiB", &huge, 431),
        case("websocket version 8", &upgrade("8", &good_key), 426),
        case("websocket key", &upgrade("13", "short"), 400),
    ]
}

#[test]
fn bad_requests_get_their_status_and_are_closed_while_an_rtmp_player_sees_no_gap() {
    let server = start_server(2, |c| c.timeouts.handshake = Duration::from_secs(2));
    let addr = http(&server);
    let _feeder = Feeder::start(&[rtmp(&server)], "other");
    let mut watcher = Client::connect(rtmp(&server), "live");
    watcher.play("other");
    let cases = bad_requests();
    for (name, bytes, status) in &cases {
        let answer = answer_to(addr, bytes);
        assert_eq!(answer.status, *status, "{name}: {}", answer.body);
        assert!(
            answer.body.starts_with(&format!("{status} ")),
            "{name}: {}",
            answer.body
        );
    }
    let api = server.admin_addr().unwrap();
    let refusals: f64 = admin::sum(&scrape(api), "ringcast_http_refusals_total");
    assert_eq!(refusals, cases.len() as f64, "each refusal counted once");

    // Not a stream, not a file of the page, not published (HEAD); and a
    // CORS preflight.
    let answers: [(&[u8], u16); 5] = [
        (b"GET /live/x.mp4 HTTP/1.1\r\n\r\n", 404),
        (b"GET /nothing.js HTTP/1.1\r\n\r\n", 404),
        (b"HEAD /live/other.flv HTTP/1.1\r\n\r\n", 200),
        (b"HEAD /live/none.flv HTTP/1.1\r\n\r\n", 404),
        (
            b"OPTIONS /live/other.flv HTTP/1.1\r\nOrigin: http://a\r\n\r\n",
            204,
        ),
    ];
    for (request, status) in answers {
        let answer = answer_to(addr, request);
        let request = String::from_utf8_lossy(request);
        assert_eq!(answer.status, status, "{request}: {}", answer.body);
        if status != 404 {
            assert_eq!(answer.body, "", "{request}");
        }
    }

    // A byte a second: cut at the handshake timeout however it trickles.
    let mut slow = TcpStream::connect(addr).unwrap();
    let started = Instant::now();
    slow.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut byte = [0u8; 1];
    for &b in b"GET /live/other.flv HTTP/1.1\r\nHost: h\r\n".iter() {
        if slow.write_all(&[b]).is_err() {
            break;
        }
        match slow.read(&mut byte) {
            Err(e) if is_timeout(&e) => {}
            // Closed, whatever it said first.
            Ok(_) | Err(_) => break,
        }
        assert!(started.elapsed() < Duration::from_secs(6), "never cut");
    }
    let cut = started.elapsed();
    assert!(
        cut >= Duration::from_millis(1800) && cut < Duration::from_secs(4),
        "cut after {cut:?}, with a 2 s handshake timeout"
    );

    // The RTMP player of another stream saw every frame meanwhile.
    let frames: Vec<u32> = watcher
        .collect_media(100)
        .iter()
        .filter_map(frame_number)
        .collect();
    assert_no_gap_after_first_keyframe(&frames, 10, "the RTMP player");
    let last = *frames.last().unwrap();
    let mut after = WebPlayer::get(addr, "/live/other.flv").expect("still serving");
    let next = after.next_frames(20);
    assert_no_gap_after_first_keyframe(&next, 10, "an HTTP player after it all");
    assert!(next.last().unwrap() > &last);
    server.shutdown();
}

#[test]
fn a_stream_not_live_is_404_after_play_wait_and_one_starting_within_it_is_served() {
    let wait = Duration::from_millis(1000);
    let server = start_server(2, |c| c.http.play_wait = wait);
    let addr = http(&server);
    for websocket in [false, true] {
        let started = Instant::now();
        let answer = WebPlayer::open(addr, "/live/none.flv", websocket);
        let waited = started.elapsed();
        let refused = answer.err().expect("no such stream");
        assert_eq!(refused.status, 404, "{}", refused.body);
        assert!(
            waited >= wait - Duration::from_millis(100) && waited < wait * 3,
            "answered after {waited:?}, with play_wait {wait:?}"
        );
    }
    assert_eq!(players(&server), 0, "the waiting players are gone");

    let (flv, ws) = std::thread::scope(|s| {
        let flv = s.spawn(|| WebPlayer::get(addr, "/live/late.flv"));
        let ws = s.spawn(|| WebPlayer::websocket(addr, "/live/late.flv", None));
        std::thread::sleep(Duration::from_millis(300));
        let mut publisher = Client::connect(rtmp(&server), "live");
        let id = publisher.publish("late");
        publisher.send(id, &avc_header());
        for n in 0..20 {
            publisher.send(id, &video(n, 30, 200));
        }
        (flv.join().unwrap(), ws.join().unwrap())
    });
    for (player, name) in [(flv, "http-flv"), (ws, "ws-flv")] {
        let mut player = player.unwrap_or_else(|r| panic!("{name}: {r:?}"));
        assert_eq!(
            player.frames_through(19),
            (0..20).collect::<Vec<_>>(),
            "{name}"
        );
    }
    server.shutdown();
}

#[test]
fn play_keys_and_address_lists_guard_http_and_websocket_players() {
    let server = start_server(2, |c| {
        c.access.default.play.keys = vec!["k1".into()];
        let mut closed = c.access.default.clone();
        closed.play.keys = Vec::new();
        closed.play.deny = vec!["127.0.0.1".parse::<Network>().unwrap()];
        c.access.apps.insert("closed".into(), closed);
    });
    let addr = http(&server);
    let _feeder = Feeder::start(&[rtmp(&server)], "cam");
    let mut elsewhere = Client::connect(rtmp(&server), "closed");
    let id = elsewhere.publish("cam");
    elsewhere.send(id, &avc_header());

    for websocket in [false, true] {
        let keyed = WebPlayer::open(addr, "/live/cam.flv?key=k1", websocket);
        keyed.expect("the right key").assert_plays("with the key");
    }
    let denied = [
        ("wrong key", "/live/cam.flv?key=k2", false),
        ("no key", "/live/cam.flv", false),
        ("no key, websocket", "/live/cam.flv", true),
        ("play_deny", "/closed/cam.flv", false),
        ("play_deny, websocket", "/closed/cam.flv", true),
    ];
    for (name, target, websocket) in denied {
        let answer = WebPlayer::open(addr, target, websocket);
        let refused = answer.err().unwrap_or_else(|| panic!("{name}: played"));
        assert_eq!(refused.status, 403, "{name}: {}", refused.body);
    }
    let denials: u64 = server.stats().iter().map(|s| s.auth_denials).sum();
    assert_eq!(denials, denied.len() as u64);
    server.shutdown();
}

#[test]
fn on_play_hooks_hear_the_http_protocols_can_deny_and_hear_the_player_leave() {
    let service = HookService::start(|call| match call["stream"].as_str() {
        Some("denied") => Answer::Status(403),
        _ => Answer::Status(200),
    });
    let server = start_server(2, |c| {
        c.access.default.hooks.on_play = Some(service.url("/play"));
        c.access.default.hooks.on_play_done = Some(service.url("/play_done"));
        c.access.hook_timeout = Duration::from_secs(2);
    });
    let addr = http(&server);
    let _feeder = Feeder::start(&[rtmp(&server)], "cam");
    let is = |action: &'static str, protocol: &'static str| {
        move |c: &Value| c["action"] == action && c["protocol"] == protocol
    };

    let mut flv = WebPlayer::get(addr, "/live/cam.flv?token=abc").expect("allowed");
    flv.assert_plays("http-flv");
    let call = service.wait_for_call("on_play over http-flv", is("on_play", "http-flv"));
    assert_eq!(call["app"], "live");
    assert_eq!(call["stream"], "cam");
    assert_eq!(call["args"], "token=abc");
    assert_eq!(call["client"], flv.local_addr());
    let mut ws = WebPlayer::websocket(addr, "/live/cam.flv", None).expect("allowed");
    ws.assert_plays("ws-flv");
    let call = service.wait_for_call("on_play over ws-flv", is("on_play", "ws-flv"));
    assert_eq!(call["client"], ws.local_addr());

    let refused = WebPlayer::get(addr, "/live/denied.flv")
        .err()
        .expect("denied");
    assert_eq!(refused.status, 403, "{}", refused.body);
    let refused = WebPlayer::websocket(addr, "/live/denied.flv", None)
        .err()
        .expect("denied");
    assert_eq!(refused.status, 403, "{}", refused.body);

    let flv_client = flv.local_addr();
    drop(flv);
    let done = service.wait_for_call("on_play_done over http-flv", is("on_play_done", "http-flv"));
    assert_eq!(done["stream"], "cam");
    assert_eq!(done["client"], flv_client);
    assert!(
        !service.calls().iter().any(is("on_play_done", "ws-flv")),
        "the WebSocket player still plays"
    );
    ws.assert_plays("ws-flv");
    drop(ws);
    service.wait_for_call("on_play_done over ws-flv", is("on_play_done", "ws-flv"));
    server.shutdown();
}

#[test]
fn an_edge_pulls_for_http_players_and_stops_the_pull_after_they_leave() {
    let origin = start_server(1, |_| {});
    let _feeder = Feeder::start(&[rtmp(&origin)], "cam");
    let url = RtmpUrl::parse(&format!("rtmp://{}/live", rtmp(&origin))).unwrap();
    let edge = start_server(2, |c| {
        c.relay.origins = vec![url];
        c.relay.timing.idle_stop = Duration::from_millis(500);
        c.http.play_wait = Duration::from_secs(3);
    });
    let mut flv = WebPlayer::get(http(&edge), "/live/cam.flv").expect("pulled in time");
    flv.assert_plays("http-flv on the edge");
    let mut ws = WebPlayer::websocket(http(&edge), "/live/cam.flv", None).expect("pulled");
    ws.assert_plays("ws-flv on the edge");
    assert_eq!(players(&origin), 1, "one pull for both");
    let pulls: u64 = edge.stats().iter().map(|s| s.relay_pulls).sum();
    assert_eq!(pulls, 1);
    drop(flv);
    drop(ws);
    wait_until("the pull stops", || players(&origin) == 0);
    edge.shutdown();
    origin.shutdown();
}

#[test]
fn an_rtmp_player_and_twenty_http_players_on_four_shards_get_every_frame_in_order() {
    const FRAMES: u32 = 120;
    let server = start_server(4, |_| {});
    let addr = http(&server);
    let mut publisher = Client::connect(rtmp(&server), "live");
    let id = publisher.publish("cam");
    publisher.send(id, &avc_header());
    let mut rtmp_player = Client::connect(rtmp(&server), "live");
    rtmp_player.play("cam");
    let mut web: Vec<(String, WebPlayer)> = (0..10)
        .map(|i| {
            let flv = WebPlayer::get(addr, "/live/cam.flv").expect("playing");
            (format!("http-flv {i}"), flv)
        })
        .collect();
    web.extend((0..10).map(|i| {
        let ws = WebPlayer::websocket(addr, "/live/cam.flv", None).expect("playing");
        (format!("ws-flv {i}"), ws)
    }));

    let api = server.admin_addr().unwrap();
    let clients = get_json(api, "/api/v1/clients?limit=1000");
    let mut shards = BTreeSet::new();
    let mut protocols: BTreeMap<String, usize> = BTreeMap::new();
    for client in clients["clients"].as_array().unwrap() {
        if client["roles"][0]["role"] == "player" {
            shards.insert(client["shard"].as_u64().unwrap());
            *protocols
                .entry(client["protocol"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
    }
    assert!(shards.len() >= 2, "players on one shard only: {clients}");
    let expected = [("http-flv", 10), ("rtmp", 1), ("ws-flv", 10)];
    let expected: BTreeMap<String, usize> = expected
        .iter()
        .map(|(p, n)| ((*p).to_owned(), *n))
        .collect();
    assert_eq!(protocols, expected);

    for n in 0..FRAMES {
        publisher.send(id, &video(n, 10, 400));
        if n % 10 == 9 {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let mut got = Vec::new();
    while got.last().is_none_or(|n| *n < FRAMES - 1) {
        got.extend(rtmp_player.collect_media(1).iter().filter_map(frame_number));
    }
    assert_no_gap_after_first_keyframe(&got, 10, "the RTMP player");
    for (name, player) in &mut web {
        assert_eq!(player.next_tag(), avc_header(), "{name}: its header first");
        assert_eq!(player.header, Some(0x01), "{name}: video announced");
        let frames = player.frames_through(FRAMES - 1);
        assert_no_gap_after_first_keyframe(&frames, 10, name);
    }
    server.shutdown();
}

/// The sum over shards of a per-protocol series.
fn by_protocol(metrics: &HashMap<String, f64>, name: &str, protocol: &str) -> f64 {
    let label = format!("protocol=\"{protocol}\"");
    let values: Vec<f64> = metrics
        .iter()
        .filter(|(series, _)| series.starts_with(&format!("{name}{{")) && series.contains(&label))
        .map(|(_, v)| *v)
        .collect();
    assert!(!values.is_empty(), "{name} for {protocol} in /metrics");
    values.iter().sum()
}

#[test]
fn the_admin_api_counts_and_kicks_http_players_and_a_reload_keys_new_ones_out() {
    let server = start_server(2, |_| {});
    let (addr, api) = (http(&server), server.admin_addr().unwrap());
    let _feeder = Feeder::start(&[rtmp(&server)], "cam");
    let mut rtmp_player = Client::connect(rtmp(&server), "live");
    rtmp_player.play("cam");
    let mut kicked = WebPlayer::get(addr, "/live/cam.flv").expect("playing");
    let mut stays = WebPlayer::get(addr, "/live/cam.flv").expect("playing");
    let mut ws = WebPlayer::websocket(addr, "/live/cam.flv", None).expect("playing");
    for player in [&mut kicked, &mut stays, &mut ws] {
        player.assert_plays("a player");
    }

    let protocol_of = |local: &str| admin::client(api, local)["protocol"].clone();
    assert_eq!(protocol_of(&kicked.local_addr()), "http-flv");
    assert_eq!(protocol_of(&stays.local_addr()), "http-flv");
    assert_eq!(protocol_of(&ws.local_addr()), "ws-flv");
    let rtmp_local = rtmp_player.socket.local_addr().unwrap().to_string();
    assert_eq!(protocol_of(&rtmp_local), "rtmp");

    let metrics = scrape(api);
    let gauge = |m: &HashMap<String, f64>, p| by_protocol(m, "ringcast_protocol_players", p);
    assert_eq!(gauge(&metrics, "http-flv"), 2.0);
    assert_eq!(gauge(&metrics, "ws-flv"), 1.0);
    assert_eq!(gauge(&metrics, "rtmp"), 1.0);
    for protocol in ["http-flv", "ws-flv", "rtmp"] {
        let sent = by_protocol(&metrics, "ringcast_protocol_sent_bytes_total", protocol);
        assert!(sent > 0.0, "{protocol} sent nothing");
    }

    let id = admin::client(api, &kicked.local_addr())["id"].clone();
    let id = id.as_str().unwrap();
    let (status, body) = request(api, "POST", &format!("/api/v1/clients/{id}/kick"));
    assert_eq!((status, body), (200, format!("{{\"kicked\":\"{id}\"}}")));
    kicked.read_until_closed();
    wait_until("the kicked player uncounted", || {
        gauge(&scrape(api), "http-flv") == 1.0
    });

    // Playing needs a key from now on: new players without it are
    // refused, the ones playing go on.
    let mut keyed = (*server.reloader().running()).clone();
    keyed.access.default.play.keys = vec!["k1".into()];
    server.reloader().apply(keyed).expect("reloaded");
    wait_until("every shard refuses a player without the key", || {
        (0..4).all(|_| WebPlayer::get(addr, "/live/cam.flv").is_err_and(|r| r.status == 403))
    });
    let refused = WebPlayer::websocket(addr, "/live/cam.flv", None)
        .err()
        .expect("refused");
    assert_eq!(refused.status, 403);
    let mut newcomer = WebPlayer::get(addr, "/live/cam.flv?key=k1").expect("the key");
    let after_reload = newcomer.next_frames(5)[4];
    for (player, name) in [
        (&mut stays, "the HTTP player"),
        (&mut ws, "the WebSocket player"),
    ] {
        let frames = player.frames_through(after_reload + 10);
        assert_no_gap_after_first_keyframe(&frames, 10, name);
    }
    server.shutdown();
}

#[test]
fn the_player_page_and_mpegts_js_are_served_unless_turned_off() {
    let server = start_server(1, |_| {});
    let (head, page) = fetch(http(&server), "/");
    assert_eq!(head.status, 200);
    assert!(
        head.content_type
            .as_deref()
            .unwrap()
            .starts_with("text/html"),
        "{head:?}"
    );
    assert!(page.contains("<video"), "{page}");
    assert!(page.contains("mpegts.js"), "{page}");
    let (head, script) = fetch(http(&server), "/mpegts.js");
    assert_eq!(head.status, 200);
    assert!(
        head.content_type.as_deref().unwrap().contains("javascript"),
        "{head:?}"
    );
    assert!(script.contains("mpegts"), "the mpegts.js bundle");
    assert!(
        script.len() > 100_000,
        "the whole bundle: {} bytes",
        script.len()
    );
    server.shutdown();

    let off = start_server(1, |c| c.http.player_page = None);
    for path in ["/", "/mpegts.js", "/index.html"] {
        let (head, _) = fetch(http(&off), path);
        assert_eq!(head.status, 404, "{path}");
    }
    off.shutdown();
}
