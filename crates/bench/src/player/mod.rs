//! A bench player: connects, plays, and measures every video frame from
//! its first bytes only (the rest of each body is skimmed by the decoder),
//! and every audio frame against the video frames' stamps.
//!
//! Players play over RTMP (`rtmp`), over HTTP-FLV and WebSocket-FLV
//! (`web`) or over Low-Latency HLS (`hls`), plain or over TLS
//! (`connect`); each hands every media frame to a `Watch`, which owns
//! what is measured, so the figures mean the same whatever the protocol.
//! Over TLS the handshake counts in the time to first frame, as it does
//! for a viewer.

mod hls;
mod rtmp;
mod web;

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use tokio::sync::Notify;

use super::stamp::Stamp;
use super::stats::{Player, Totals, Video, histogram};
use super::trust::Secure;
use super::url::Protocol;
use ringcast_client::{Disconnect, OwnedSocket, SETUP_TIMEOUT};
use ringcast_rtmp::protocol::{Timestamp, flv};
use ringcast_rtmp::session::MediaKind;

/// Bytes of each video body a player keeps: the 5-byte AVC header, the
/// stamp's NAL unit (about 45 bytes) and room for enhanced headers.
pub const MEDIA_PREFIX: usize = 96;

/// What one worker thread's players share.
pub struct Shared {
    pub totals: RefCell<Totals>,
    /// Latencies since the last progress tick.
    pub window: RefCell<Histogram<u64>>,
    /// Players playing now.
    pub playing: Cell<u64>,
    /// Bytes players have read so far.
    pub bytes: Cell<u64>,
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            totals: RefCell::new(Totals::default()),
            window: RefCell::new(histogram()),
            playing: Cell::new(0),
            bytes: Cell::new(0),
        }
    }
}

/// Where a player goes and how it judges stalls.
#[derive(Clone, Debug)]
pub struct Plan {
    pub protocol: Protocol,
    /// Over TLS: the configuration and the server's name.
    pub tls: Option<Secure>,
    pub addr: SocketAddr,
    /// `host:port` as the URL names it: the HTTP Host header.
    pub authority: String,
    pub app: String,
    pub stream: String,
    /// The URL's query, passed on as written (tokens for the server).
    pub query: Option<String>,
    pub frame_interval: Duration,
}

impl Plan {
    /// The URL scheme players use: `rtmps`, `https`, ...
    fn scheme(&self) -> &'static str {
        self.protocol.scheme(self.tls.is_some())
    }

    /// What RTMP `play` names: `stream[?query]`.
    fn rtmp_stream(&self) -> String {
        match &self.query {
            Some(query) => format!("{}?{query}", self.stream),
            None => self.stream.clone(),
        }
    }

    /// The HTTP request target: `/app/stream.flv[?query]`, or
    /// `/app/stream.m3u8[?query]` for HLS.
    fn http_target(&self) -> String {
        let extension = if self.protocol == Protocol::Hls {
            "m3u8"
        } else {
            "flv"
        };
        match &self.query {
            Some(query) => format!("/{}/{}.{extension}?{query}", self.app, self.stream),
            None => format!("/{}/{}.{extension}", self.app, self.stream),
        }
    }
}

/// Runs one player until `stop` is notified or it is disconnected, then
/// adds what it measured to `shared`.
pub async fn run(plan: Plan, shared: Rc<Shared>, stop: Rc<Notify>) {
    let mut watch = Watch::new(&shared, plan.frame_interval);
    let ended = match plan.protocol {
        Protocol::Rtmp => rtmp::play(&plan, &mut watch, &stop).await,
        Protocol::HttpFlv | Protocol::WsFlv => web::play(&plan, &mut watch, &stop).await,
        Protocol::Hls => hls::play(&plan, &mut watch, &stop).await,
    };
    watch.finish(ended.err().as_deref());
}

/// Connects to the server, over TLS if the plan says so: the handshake
/// verifies the server's certificate as the plan's trust says, within
/// [`SETUP_TIMEOUT`].
async fn connect(plan: &Plan) -> Result<OwnedSocket, Disconnect> {
    let stream = ringcast_client::connect(plan.addr)
        .await
        .map_err(|e| format!("connect to {}: {e}", plan.addr))?;
    let Some(secure) = &plan.tls else {
        return Ok(OwnedSocket::from(stream));
    };
    let handshake = OwnedSocket::tls(stream, secure.config.clone(), secure.name.clone());
    match tokio::time::timeout(SETUP_TIMEOUT, handshake).await {
        Ok(socket) => socket.map_err(|e| secure.explain(e)),
        Err(_) => Err("tls handshake timed out".into()),
    }
}

/// One player's measuring, whatever it plays over: the protocol side
/// says when the server accepted the play, how many bytes it read, and
/// hands over each media message.
struct Watch<'s> {
    shared: &'s Shared,
    started: Instant,
    stats: Player,
    playing: bool,
}

impl<'s> Watch<'s> {
    fn new(shared: &'s Shared, frame_interval: Duration) -> Watch<'s> {
        Watch {
            shared,
            started: Instant::now(),
            stats: Player::new(frame_interval),
            playing: false,
        }
    }

    /// The server accepted the play: frames stamped from now on are live.
    fn playing(&mut self) {
        self.stats.playing_since(wall_clock_us());
        self.shared.playing.set(self.shared.playing.get() + 1);
        self.playing = true;
    }

    /// Reads brought `n` bytes. Every byte read counts, from the first:
    /// what the server sent is what its CPU is measured against, and the
    /// read that brings the answer to a play usually brings the first
    /// frames with it.
    fn read(&mut self, n: u64) {
        self.shared.bytes.set(self.shared.bytes.get() + n);
        self.stats.bytes += n;
    }

    /// The player sent an HTTP request.
    fn request(&mut self) {
        self.stats.requests += 1;
    }

    /// Frames come in bursts `interval` apart: see
    /// [`Player::arriving_every`].
    fn arriving_every(&mut self, interval: Duration) {
        self.stats.arriving_every(interval);
    }

    /// Media messages that arrived together (one read's worth), measured
    /// against one reading of the wall clock.
    fn batch(&mut self) -> Batch<'_, 's> {
        Batch {
            watch: self,
            now_wall_us: None,
        }
    }

    /// Adds what the player measured to the totals; `disconnect` is why it
    /// ended early, if it did.
    fn finish(self, disconnect: Option<&str>) {
        if self.playing {
            let playing = &self.shared.playing;
            playing.set(playing.get().saturating_sub(1));
        }
        self.shared
            .totals
            .borrow_mut()
            .add_player(&self.stats, disconnect);
    }
}

/// See [`Watch::batch`].
struct Batch<'w, 's> {
    watch: &'w mut Watch<'s>,
    now_wall_us: Option<u64>,
}

impl Batch<'_, '_> {
    /// Measures one FLV message: audio and video frames are measured, the
    /// rest ignored. `body` may be only the first [`MEDIA_PREFIX`] bytes.
    fn media(&mut self, kind: MediaKind, timestamp: Timestamp, body: &[u8]) {
        match kind {
            MediaKind::Audio if flv::inspect_audio(body).is_ok_and(|a| !a.is_sequence_header()) => {
                self.audio(timestamp);
            }
            MediaKind::Video => {
                let video = match flv::inspect_video(body) {
                    Ok(tag) if tag.is_sequence_header() => Video::SequenceHeader,
                    Ok(tag) if tag.is_keyframe() => Video::Keyframe,
                    _ => Video::Interframe,
                };
                self.video(video, timestamp, Stamp::find(body));
            }
            _ => {}
        }
    }

    /// Measures one video frame (or sequence header), whatever carried
    /// it: `timestamp` is its decode time in milliseconds, `stamp` what
    /// the publisher put in it.
    fn video(&mut self, video: Video, timestamp: Timestamp, stamp: Option<Stamp>) {
        let Watch {
            shared,
            started,
            stats,
            ..
        } = &mut *self.watch;
        let wall = *self.now_wall_us.get_or_insert_with(wall_clock_us);
        if let Some(latency) = stats.video(started.elapsed(), video, timestamp, stamp, wall) {
            shared.totals.borrow_mut().record_latency(latency);
            let _ = shared.window.borrow_mut().record(latency.max(1));
        }
    }

    /// Measures one coded audio frame (not a sequence header) with decode
    /// time `timestamp` in milliseconds.
    fn audio(&mut self, timestamp: Timestamp) {
        let Watch { shared, stats, .. } = &mut *self.watch;
        let wall = *self.now_wall_us.get_or_insert_with(wall_clock_us);
        if let Some(latency) = stats.audio(timestamp, wall) {
            shared.totals.borrow_mut().record_audio_latency(latency);
        }
    }
}

/// Microseconds since the Unix epoch: what stamps carry.
pub fn wall_clock_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
