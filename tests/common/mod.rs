//! Shared by the end-to-end tests: an in-process server on ephemeral
//! loopback ports, a blocking RTMP client built on our client session, and
//! synthetic H.264/AAC-shaped frames.
#![allow(dead_code)]
// Test helpers fail a test by panicking on what they did not expect.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod admin;
pub mod feeder;
pub mod ffmpeg;
pub mod hooks;
pub mod logs;
pub mod nginx;
pub mod pki;
pub mod raw;
pub mod reference;
pub mod served;
pub mod web;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ringcast::config::Config;
use ringcast::protocol::amf::Value;
use ringcast::protocol::{MessageStreamId, Timestamp};
use ringcast::server::{self, ServerHandle};
use ringcast::session::{ClientConfig, ClientEvent, ClientSession, Media, MediaKind};
use ringcast::startup;

/// A server on 127.0.0.1:0 with `shards` shards, its HTTP-FLV listener
/// ([`ServerHandle::http_addr`]) and admin API
/// ([`ServerHandle::admin_addr`]) on other ephemeral ports, and `tweak`
/// applied.
pub fn start_server(shards: usize, tweak: impl FnOnce(&mut Config)) -> ServerHandle {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
        .try_init();
    let mut config = Config {
        listen: vec!["127.0.0.1:0".parse().expect("address")],
        shards: Some(shards),
        admin: Some("127.0.0.1:0".parse().expect("address")),
        ..Config::default()
    };
    config.http.listen = vec!["127.0.0.1:0".parse().expect("address")];
    tweak(&mut config);
    let prepared = startup::prepare(config).expect("prepared");
    server::start(prepared).expect("started")
}

/// Polls `done` until it holds; panics after [`TIMEOUT`].
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Players on every shard of `server`, pulls from other servers included.
pub fn players(server: &ServerHandle) -> u64 {
    server.stats().iter().map(|s| s.players).sum()
}

/// What a blocking client reads from and writes to: a socket, or TLS
/// over one.
pub trait Stream: Read + Write {
    /// Sets the underlying socket's read timeout.
    fn set_read_timeout(&self, wait: Option<Duration>) -> std::io::Result<()>;
}

impl Stream for TcpStream {
    fn set_read_timeout(&self, wait: Option<Duration>) -> std::io::Result<()> {
        TcpStream::set_read_timeout(self, wait)
    }
}

/// A TLS client connection over a blocking socket.
pub type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

impl Stream for TlsStream {
    fn set_read_timeout(&self, wait: Option<Duration>) -> std::io::Result<()> {
        self.sock.set_read_timeout(wait)
    }
}

/// A blocking client connection, over a socket or TLS (`S`).
pub struct Client<S = TcpStream> {
    pub socket: S,
    pub session: ClientSession,
    input: BytesMut,
    pub events: Vec<ClientEvent>,
}

pub const TIMEOUT: Duration = Duration::from_secs(10);

impl Client {
    /// Connects and completes handshake and `connect` to `app`.
    pub fn connect(addr: SocketAddr, app: &str) -> Client {
        Client::over(TcpStream::connect(addr).expect("connect"), addr, app)
    }

    /// [`Client::connect`] with a fixed socket receive buffer (no kernel
    /// autotuning), for a player that should fall behind quickly.
    pub fn connect_with_receive_buffer(addr: SocketAddr, app: &str, bytes: usize) -> Client {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        socket.set_recv_buffer_size(bytes).expect("SO_RCVBUF");
        socket.connect(&addr.into()).expect("connect");
        Client::over(socket.into(), addr, app)
    }

    /// [`Client::connect`] keeping only the first `prefix` bytes of each
    /// audio and video body: a player that checks frame numbers of large
    /// frames without copying them.
    pub fn connect_skimming(addr: SocketAddr, app: &str, prefix: usize) -> Client {
        let socket = TcpStream::connect(addr).expect("connect");
        let mut config = ClientConfig::new(app, &format!("rtmp://{addr}/{app}"));
        config.media_prefix = Some(prefix);
        Client::with_config(socket, config)
    }

    fn over(socket: TcpStream, addr: SocketAddr, app: &str) -> Client {
        let tc_url = format!("rtmp://{addr}/{app}");
        Client::with_config(socket, ClientConfig::new(app, &tc_url))
    }

    fn with_config(socket: TcpStream, config: ClientConfig) -> Client {
        match Client::try_with_config(socket, config) {
            Ok(client) => client,
            Err(info) => panic!("connect rejected: {info:?}"),
        }
    }

    /// Connects from `socket` with `app` and `tc_url` as given (queries and
    /// all): the client once `connect` succeeded, or the rejection's info.
    pub fn try_connect(socket: TcpStream, app: &str, tc_url: &str) -> Result<Client, Value> {
        Client::try_with_config(socket, ClientConfig::new(app, tc_url))
    }

    fn try_with_config(socket: TcpStream, config: ClientConfig) -> Result<Client, Value> {
        socket.set_nodelay(true).expect("nodelay");
        Client::start(socket, config)
    }
}

impl<S: Stream> Client<S> {
    /// Connects over `socket` (TLS, say; set TCP_NODELAY on it first):
    /// the client once `connect` succeeded, or the rejection's info.
    pub fn start(socket: S, config: ClientConfig) -> Result<Client<S>, Value> {
        let session = ClientSession::new(config, 0, [7; 1528]);
        let mut client = Client {
            socket,
            session,
            input: BytesMut::new(),
            events: Vec::new(),
        };
        let answer = client.wait_for("connect answer", |e| {
            matches!(
                e,
                ClientEvent::Connected { .. } | ClientEvent::ConnectRejected { .. }
            )
        });
        match answer {
            ClientEvent::ConnectRejected { info } => Err(info),
            _ => Ok(client),
        }
    }

    /// Writes whatever the session has to send.
    pub fn flush(&mut self) {
        while let Some(bytes) = self.session.poll_transmit() {
            self.socket.write_all(&bytes).expect("write");
        }
    }

    /// Reads once (up to `wait`) and collects events; false on timeout.
    pub fn pump(&mut self, wait: Duration) -> bool {
        self.flush();
        self.socket.set_read_timeout(Some(wait)).expect("timeout");
        let mut buf = [0u8; 65536];
        match self.socket.read(&mut buf) {
            Ok(0) => panic!("server closed the connection"),
            Ok(n) => {
                self.input.extend_from_slice(&buf[..n]);
                self.session
                    .handle_input(&mut self.input)
                    .expect("valid input");
                while let Some(e) = self.session.poll_event() {
                    self.events.push(e);
                }
                self.flush();
                true
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                false
            }
            Err(e) => panic!("read: {e}"),
        }
    }

    /// Reads until the server closes the connection (EOF or a reset) and
    /// returns the media that came before; panics after [`TIMEOUT`].
    pub fn read_until_closed(&mut self) -> Vec<Media> {
        self.socket
            .set_read_timeout(Some(TIMEOUT))
            .expect("timeout");
        let mut buf = vec![0u8; 65536];
        loop {
            match self.socket.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    self.input.extend_from_slice(&buf[..n]);
                    self.decode_all();
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    panic!("the server kept the connection open")
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // A reset ends it too.
                Err(_) => break,
            }
        }
        self.take_media()
    }

    /// Decodes everything buffered (the session pauses every
    /// `SESSION_EVENTS_MAX` events).
    fn decode_all(&mut self) {
        loop {
            self.session
                .handle_input(&mut self.input)
                .expect("valid input");
            let before = self.events.len();
            while let Some(e) = self.session.poll_event() {
                self.events.push(e);
            }
            if self.events.len() == before {
                return;
            }
        }
    }

    /// Reads until an event matches `want`; returns it (removed from the
    /// collected events, earlier events stay).
    pub fn wait_for(&mut self, what: &str, want: impl Fn(&ClientEvent) -> bool) -> ClientEvent {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(i) = self.events.iter().position(&want) {
                return self.events.remove(i);
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; have {:?}",
                self.events
            );
            self.pump(Duration::from_millis(50));
        }
    }

    pub fn create_stream(&mut self) -> MessageStreamId {
        let tid = self.session.create_stream().expect("connected");
        match self.wait_for("createStream result", |e| {
            matches!(e, ClientEvent::StreamCreated { transaction_id, .. } if *transaction_id == tid)
        }) {
            ClientEvent::StreamCreated { stream_id, .. } => stream_id,
            _ => unreachable!(),
        }
    }

    /// Publishes `name`; returns the stream id once `Publish.Start` came.
    pub fn publish(&mut self, name: &str) -> MessageStreamId {
        let id = self.create_stream();
        self.session.publish(id, name).expect("connected");
        self.wait_for("Publish.Start", ClientEvent::is_publish_start);
        id
    }

    /// Plays `name`; returns the stream id once `Play.Start` came.
    pub fn play(&mut self, name: &str) -> MessageStreamId {
        let id = self.create_stream();
        self.session.play(id, name).expect("connected");
        self.wait_for("Play.Start", ClientEvent::is_play_start);
        id
    }

    /// Asks to publish `name` and returns the first status code on that
    /// stream: `NetStream.Publish.Start` or why not.
    pub fn publish_status(&mut self, name: &str) -> String {
        let id = self.create_stream();
        self.session.publish(id, name).expect("connected");
        self.status_on(id)
    }

    /// Asks to play `name` and returns the first status code on that
    /// stream but `Play.Reset`: `NetStream.Play.Start` or why not.
    pub fn play_status(&mut self, name: &str) -> String {
        let id = self.create_stream();
        self.session.play(id, name).expect("connected");
        self.status_on(id)
    }

    fn status_on(&mut self, id: MessageStreamId) -> String {
        let event = self.wait_for("a status", |e| {
            matches!(e, ClientEvent::Status { stream_id, status }
                if *stream_id == id && status.code != "NetStream.Play.Reset")
        });
        match event {
            ClientEvent::Status { status, .. } => status.code,
            _ => unreachable!(),
        }
    }

    pub fn send(&mut self, stream_id: MessageStreamId, media: &Media) {
        self.session
            .send_media(stream_id, media)
            .expect("publishing");
        self.flush();
    }

    /// [`Client::send`] to a server that may have gone away.
    pub fn try_send(&mut self, stream_id: MessageStreamId, media: &Media) -> std::io::Result<()> {
        self.session
            .send_media(stream_id, media)
            .map_err(std::io::Error::other)?;
        while let Some(bytes) = self.session.poll_transmit() {
            self.socket.write_all(&bytes)?;
        }
        Ok(())
    }

    pub fn send_metadata(&mut self, stream_id: MessageStreamId) {
        let meta = Value::EcmaArray(vec![
            ("width".into(), Value::Number(640.0)),
            ("height".into(), Value::Number(360.0)),
        ]);
        self.session
            .send_metadata(stream_id, meta)
            .expect("publishing");
        self.flush();
    }

    /// Media events received so far on `stream_id`, removed from `events`.
    pub fn take_media(&mut self) -> Vec<Media> {
        let mut media = Vec::new();
        self.events.retain(|e| match e {
            ClientEvent::Media { media: m, .. } => {
                media.push(m.clone());
                false
            }
            _ => true,
        });
        media
    }

    /// Reads until `n` media messages have arrived in total (returned).
    pub fn collect_media(&mut self, n: usize) -> Vec<Media> {
        let deadline = Instant::now() + TIMEOUT;
        let mut got = Vec::new();
        while got.len() < n {
            assert!(
                Instant::now() < deadline,
                "timed out: {} of {n} media messages",
                got.len()
            );
            self.pump(Duration::from_millis(50));
            got.extend(self.take_media());
        }
        got
    }
}

/// Synthetic media in FLV body shapes: AVC sequence header, keyframes,
/// interframes, AAC header and frames. Each video body carries its frame
/// number so order and loss can be checked.
pub mod media {
    use super::*;

    pub fn avc_header() -> Media {
        video_body(
            0,
            &[
                0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1F, 0xFF, 0xE1, 0, 4, 0x67, 0x64, 0, 0x1F,
            ],
        )
    }

    pub fn aac_header() -> Media {
        Media {
            kind: MediaKind::Audio,
            timestamp: Timestamp(0),
            payload: Bytes::from_static(&[0xAF, 0, 0x12, 0x10]),
        }
    }

    /// Video frame `n` of a stream at 30 fps with a keyframe every `gop`.
    pub fn video(n: u32, gop: u32, len: usize) -> Media {
        let mut body = vec![0u8; len.max(9)];
        body[0] = if n % gop == 0 { 0x17 } else { 0x27 };
        body[1] = 1;
        body[5..9].copy_from_slice(&n.to_be_bytes());
        video_body(n * 33, &body)
    }

    pub fn audio(n: u32) -> Media {
        let mut body = vec![0xAF, 1, 0, 0, 0, 0];
        body[2..6].copy_from_slice(&n.to_be_bytes());
        Media {
            kind: MediaKind::Audio,
            timestamp: Timestamp(n * 23),
            payload: Bytes::from(body),
        }
    }

    fn video_body(ts: u32, body: &[u8]) -> Media {
        Media {
            kind: MediaKind::Video,
            timestamp: Timestamp(ts),
            payload: Bytes::copy_from_slice(body),
        }
    }

    /// Enhanced RTMP (veovera) bodies at `base` ms and after (past 2^24:
    /// extended timestamps on the wire): FourCC sequence starts, coded
    /// frames with and without composition time, multitrack video and
    /// audio.
    pub fn enhanced(base: u32) -> Vec<Media> {
        let body = |kind, ts, bytes: &[u8]| Media {
            kind,
            timestamp: Timestamp(ts),
            payload: Bytes::copy_from_slice(bytes),
        };
        vec![
            // hvc1 SequenceStart, Opus SequenceStart.
            body(MediaKind::Video, base, b"\x90hvc1\x01\x02\x03\x04"),
            body(MediaKind::Audio, base, b"\x90Opus\x4f\x70\x75\x73"),
            // hvc1 CodedFrames keyframe with composition time, CodedFramesX.
            body(MediaKind::Video, base, b"\x91hvc1\x00\x00\x10\xaa\xbb"),
            body(MediaKind::Video, base + 33, b"\xa3hvc1\xcc\xdd"),
            // Multitrack, one track, av01 coded frames.
            body(MediaKind::Video, base + 66, b"\xa6\x01av01\x00\xee"),
            // Audio multitrack, many tracks of Opus.
            body(
                MediaKind::Audio,
                base + 20,
                b"\x95\x11Opus\x00\x00\x00\x01\xff\x01\x00\x00\x01\xfe",
            ),
        ]
    }

    /// The frame number a [`video`] body carries, if it is one.
    pub fn frame_number(media: &Media) -> Option<u32> {
        if media.kind != MediaKind::Video || media.payload.len() < 9 || media.payload[1] != 1 {
            return None;
        }
        Some(u32::from_be_bytes(media.payload[5..9].try_into().ok()?))
    }

    pub fn is_keyframe(media: &Media) -> bool {
        media.kind == MediaKind::Video
            && media.payload.first() == Some(&0x17)
            && media.payload.get(1) == Some(&1)
    }
}
