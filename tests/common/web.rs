//! A player over HTTP-FLV (the body is the FLV stream) or WebSocket-FLV
//! (binary messages carry it: the file header, then one tag each), over a
//! plain socket or a TLS one (HTTPS-FLV, WSS), and the FLV reading it
//! needs.

use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ringcast::protocol::Timestamp;
use ringcast::session::{Media, MediaKind};
use ringcast_web::client::{ResponseHead, get_request, parse_response_head};
use ringcast_web::websocket::{Frame, Frames, Opcode, accept_key, client_key, upgrade_request};

use super::media::frame_number;
use super::{Stream, TIMEOUT};

/// Bytes of the FLV file header and PreviousTagSize0 (FLV 10.1 annex
/// E.2).
pub const FLV_HEADER_BYTES: usize = 13;

/// Bytes of an FLV tag header: type, size, timestamp, stream id.
pub const TAG_HEADER_BYTES: usize = 11;

/// Frames from a server are read up to this size (ours carry one FLV tag).
pub const SERVER_FRAME_BYTES_MAX: usize = 1 << 20;

pub const MASK: [u8; 4] = [0x5a, 0x17, 0xc3, 0x08];

/// The next FLV tag at the front of `flv`, its bytes and previous-tag-size
/// removed; `None` until it is whole. Panics on a malformed tag.
pub fn take_tag(flv: &mut BytesMut) -> Option<Media> {
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
pub fn flv_header(bytes: &[u8]) -> u8 {
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
pub struct Response {
    pub status: u16,
    pub body: String,
}

/// A player over HTTP-FLV or WebSocket-FLV, over `S`.
pub struct WebPlayer<S = TcpStream> {
    pub socket: S,
    /// Read and not yet decoded: body bytes, or WebSocket frames.
    input: BytesMut,
    /// The frames decoder of a WebSocket player.
    frames: Option<Frames>,
    /// FLV bytes not yet parsed.
    flv: BytesMut,
    /// The FLV file header came: the tracks it announced, audio (4) and
    /// video (1).
    pub header: Option<u8>,
    /// Tags parsed and not taken yet.
    tags: VecDeque<Media>,
    /// Control frames (pong, close) received, in order.
    control: Vec<Frame>,
    /// The server closed the connection.
    pub closed: bool,
}

impl WebPlayer {
    /// `GET target` over HTTP-FLV: the player once its `200` came.
    pub fn get(addr: SocketAddr, target: &str) -> Result<WebPlayer, Response> {
        let socket = TcpStream::connect(addr).expect("the HTTP listener accepts");
        WebPlayer::get_over(socket, &addr.to_string(), target)
    }

    /// `GET target` with a WebSocket upgrade offering `protocol`: the
    /// player once its `101` came, with the right accept key and the
    /// subprotocol echoed.
    pub fn websocket(
        addr: SocketAddr,
        target: &str,
        protocol: Option<&str>,
    ) -> Result<WebPlayer, Response> {
        let socket = TcpStream::connect(addr).expect("the HTTP listener accepts");
        WebPlayer::websocket_over(socket, &addr.to_string(), target, protocol)
    }

    /// [`WebPlayer::websocket`] (offering no subprotocol) or
    /// [`WebPlayer::get`].
    pub fn open(addr: SocketAddr, target: &str, websocket: bool) -> Result<WebPlayer, Response> {
        if websocket {
            WebPlayer::websocket(addr, target, None)
        } else {
            WebPlayer::get(addr, target)
        }
    }

    pub fn local_addr(&self) -> String {
        self.socket.local_addr().unwrap().to_string()
    }
}

impl<S: Stream> WebPlayer<S> {
    /// [`WebPlayer::get`] over `socket`, connected to `host`.
    pub fn get_over(socket: S, host: &str, target: &str) -> Result<WebPlayer<S>, Response> {
        let request = get_request("GET", host, target);
        let (socket, head, rest) = exchange_head_over(socket, request.as_bytes());
        if head.status != 200 {
            return Err(read_rest(socket, &head, rest));
        }
        assert_eq!(head.content_type.as_deref(), Some("video/x-flv"));
        assert!(!head.chunked, "a close-delimited body");
        Ok(WebPlayer::new(socket, rest, None))
    }

    /// [`WebPlayer::websocket`] over `socket`, connected to `host`.
    pub fn websocket_over(
        socket: S,
        host: &str,
        target: &str,
        protocol: Option<&str>,
    ) -> Result<WebPlayer<S>, Response> {
        let key = client_key(*b"ringcast-test-16");
        let request = upgrade_request(host, target, &key, protocol);
        let (socket, head, rest) = exchange_head_over(socket, request.as_bytes());
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

    fn new(socket: S, rest: BytesMut, frames: Option<Frames>) -> WebPlayer<S> {
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
    pub fn pump(&mut self, wait: Duration) {
        assert!(!self.closed, "read after the server closed");
        self.socket.set_read_timeout(Some(wait)).unwrap();
        let mut buf = [0u8; 65536];
        match self.socket.read(&mut buf) {
            Ok(0) => self.closed = true,
            Ok(n) => self.input.extend_from_slice(&buf[..n]),
            Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => return,
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
    pub fn next_tag(&mut self) -> Media {
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
    pub fn frames_through(&mut self, last: u32) -> Vec<u32> {
        let mut got = Vec::new();
        while got.last().is_none_or(|n| *n < last) {
            got.extend(frame_number(&self.next_tag()));
        }
        got
    }

    /// The next `n` numbered frames.
    pub fn next_frames(&mut self, n: usize) -> Vec<u32> {
        let mut got = Vec::new();
        while got.len() < n {
            got.extend(frame_number(&self.next_tag()));
        }
        got
    }

    /// Asserts the player is getting the stream: the next 15 numbered
    /// frames run on from a keyframe (every 10th, as the feeder sends).
    pub fn assert_plays(&mut self, who: &str) {
        assert_no_gap_after_first_keyframe(&self.next_frames(15), 10, who);
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.socket.write_all(bytes).expect("write");
    }

    /// The next control frame, waiting for it up to [`TIMEOUT`].
    pub fn next_control(&mut self) -> Frame {
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
    pub fn read_until_closed(&mut self) {
        let deadline = Instant::now() + TIMEOUT;
        while !self.closed {
            assert!(Instant::now() < deadline, "the server kept it open");
            self.pump(Duration::from_millis(50));
        }
    }
}

pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Connects, sends `request` and reads until the response head is whole:
/// the socket, the head, and what came after it.
pub fn exchange_head(addr: SocketAddr, request: &[u8]) -> (TcpStream, ResponseHead, BytesMut) {
    let socket = TcpStream::connect(addr).expect("the HTTP listener accepts");
    exchange_head_over(socket, request)
}

/// [`exchange_head`] over a connected `socket`.
pub fn exchange_head_over<S: Stream>(mut socket: S, request: &[u8]) -> (S, ResponseHead, BytesMut) {
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
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("no response head: {e}; have {input:?}"),
        }
    }
}

/// Reads the rest of a response, its body; the server must close after it.
pub fn read_rest<S: Stream>(mut socket: S, head: &ResponseHead, mut rest: BytesMut) -> Response {
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

/// Asserts that `frames` run on without a gap from the first keyframe
/// (every `gop`-th frame) and that there is one.
pub fn assert_no_gap_after_first_keyframe(frames: &[u32], gop: u32, who: &str) {
    let first = frames
        .iter()
        .position(|n| n % gop == 0)
        .unwrap_or_else(|| panic!("{who}: no keyframe in {frames:?}"));
    let run = &frames[first..];
    let expected: Vec<u32> = (run[0]..run[0] + run.len() as u32).collect();
    assert_eq!(run, expected, "{who}: every frame, in order");
}
