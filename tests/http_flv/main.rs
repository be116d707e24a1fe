//! HTTP-FLV and WebSocket-FLV players end to end: ffprobe, ffmpeg and
//! ffplay read an ffmpeg publish over HTTP; ffmpeg 9 reads HEVC back over
//! enhanced FLV; a WebSocket client reads the FLV in binary frames and is
//! answered on its control frames; bad requests get their status and are
//! closed while others play; keys, address lists and hooks guard HTTP
//! players; an edge pulls for them; twenty of them on four shards get
//! every frame; the admin API counts and kicks them and a reload keys new
//! ones out; the player page is served; a ping flood is cut off and TCP
//! keepalive finds vanished players. The players and the FLV reading are
//! here; the tests by theme in `tools`, `ws`, `requests`, `rules` and
//! `delivery`. These tests need ffmpeg
//! (`apt-get install ffmpeg`) and ffmpeg 9 (`pip install imageio-ffmpeg`);
//! without them they fail, never skip.
// Tests and benches fail by panicking on what they did not expect.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../common/mod.rs"]
mod common;
mod delivery;
mod requests;
mod rules;
mod tools;
mod ws;

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
