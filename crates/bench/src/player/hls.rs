//! A Low-Latency HLS player on tokio-uring, plain or over TLS: the
//! [`Follower`] says what to fetch; this fetches it over one keep-alive
//! connection, one request at a time as a browser does (a new connection
//! when the server closes one), and hands every sample of every part to
//! its [`Watch`] as the part's bytes arrive. Every request counts
//! ([`Watch::request`]), retries included.
//!
//! What it measures is delivery, as for the other protocols: a frame's
//! latency runs from its stamp to its part's bytes arriving, so it holds
//! the wait for the part to be made (up to a part target) but not the
//! buffer a player keeps before showing it (`PART-HOLD-BACK`). The parts
//! a player starts with are history, as the GOP cache is to an RTMP
//! player: they count for the time to first frame, not for latency. A
//! part's frames arrive together, so only a wait of more than two part
//! targets is a stall.
//!
//! What the server may get over (a 5xx, a timeout, a lost connection) is
//! retried after a backoff, up to [`FAILURES_MAX`] times in a row; bytes
//! that cannot be read (a malformed playlist or part) end the player.

use std::time::Duration;

use bytes::BytesMut;
use tokio::sync::Notify;

use super::web::{READ_GROW_BYTES, READ_ROOM_BYTES_MIN};
use super::{Batch, Plan, Watch};
use crate::hls::fmp4::{Kind, Sample, Tracks, Walker};
use crate::hls::follow::{Follower, Step};
use crate::hls::http::{self, Event, Response};
use crate::hls::playlist::{PLAYLIST_BYTES_MAX, Playlist, Position};
use crate::stamp::Stamp;
use crate::stats::Video;
use ringcast_client::{Disconnect, OwnedSocket, SETUP_TIMEOUT};
use ringcast_rtmp::protocol::Timestamp;

/// An init segment longer than this is refused: ours are under 1 KB
/// (`ftyp`, `moov` with two tracks and their decoder configurations),
/// and an init segment is kept whole to be read.
const INIT_BYTES_MAX: usize = 1024 * 1024;
/// A part longer than this is refused. A part is under a second of media:
/// 1.25 MB at 10 Mbit/s. Its bytes are walked, not kept, so the bound is
/// on how long one answer may keep a player, not on memory.
const PART_BYTES_MAX: usize = 64 * 1024 * 1024;
/// The body of an answer other than 200 (a 404 page) is read, not kept,
/// so the connection can carry the next request; a longer one is refused.
const ERROR_BODY_BYTES_MAX: usize = 64 * 1024;
/// Failed requests in a row (a 5xx, a timeout, a lost connection) after
/// which a player gives up; with the backoff that is about 5 s of trying.
const FAILURES_MAX: u32 = 6;
/// The wait after the first failure, doubled after each next one up to
/// [`BACKOFF_MAX`].
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Plays until `stop` is notified (`Ok`) or the player gives up (why, in
/// words).
pub(super) async fn play(
    plan: &Plan,
    watch: &mut Watch<'_>,
    stop: &Notify,
) -> Result<(), Disconnect> {
    // A request in flight when the run ends is dropped with its socket,
    // which shuts down.
    tokio::select! {
        ended = follow(plan, watch) => ended,
        () = stop.notified() => Ok(()),
    }
}

/// Fetches what the follower asks for, forever.
async fn follow(plan: &Plan, watch: &mut Watch<'_>) -> Result<(), Disconnect> {
    let mut player = Player {
        follower: Follower::new(&plan.authority, &plan.http_target()),
        connection: Connection {
            plan,
            socket: None,
            input: BytesMut::new(),
        },
        walker: None,
        playing: false,
    };
    let mut failures = 0;
    loop {
        let step = player.follower.poll().map_err(|e| format!("hls: {e}"))?;
        match player.step(step, watch).await {
            Ok(()) => failures = 0,
            Err(Failure::Fatal(why)) => return Err(why),
            Err(Failure::Retry(why)) => {
                failures += 1;
                if failures > FAILURES_MAX {
                    return Err(why);
                }
                tokio::time::sleep(backoff(failures)).await;
            }
        }
    }
}

/// How a step failed.
#[derive(Debug)]
enum Failure {
    /// The server may get over it: try again after a backoff.
    Retry(Disconnect),
    /// The player cannot go on.
    Fatal(Disconnect),
}

/// One player's state between requests.
struct Player<'p> {
    follower: Follower,
    connection: Connection<'p>,
    /// The walker of the parts of the init segment fetched last.
    walker: Option<Walker>,
    /// A media playlist came: the player is playing.
    playing: bool,
}

impl Player<'_> {
    async fn step(&mut self, step: Step, watch: &mut Watch<'_>) -> Result<(), Failure> {
        // A blocking request is answered within three target durations
        // (RFC 8216bis §6.2.5.2); a stream's first requests get the setup
        // time the other protocols get.
        let limit = self
            .follower
            .target_duration()
            .map_or(SETUP_TIMEOUT, |target| SETUP_TIMEOUT.max(target * 3));
        match step {
            Step::Playlist {
                target,
                delay,
                blocking,
            } => {
                tokio::time::sleep(delay).await;
                self.fetch_playlist(&target, blocking.is_some(), limit, watch)
                    .await
            }
            Step::Init { target, uri } => self.fetch_init(&target, &uri, limit, watch).await,
            Step::Part { target, at } => self.fetch_part(&target, at, limit, watch).await,
        }
    }

    async fn fetch_playlist(
        &mut self,
        target: &str,
        blocking: bool,
        limit: Duration,
        watch: &mut Watch<'_>,
    ) -> Result<(), Failure> {
        let mut body = BytesMut::new();
        let sink = &mut Sink::Keep {
            body: &mut body,
            max: PLAYLIST_BYTES_MAX,
        };
        match self.connection.get(target, limit, watch, sink).await? {
            200 => self.playlist(&body, watch),
            // Too far ahead for the server: its numbers went back.
            400..=499 if blocking => {
                self.follower.handle_reload_refused();
                Ok(())
            }
            status => Err(Failure::Retry(format!("hls: playlist answered {status}"))),
        }
    }

    async fn fetch_init(
        &mut self,
        target: &str,
        uri: &str,
        limit: Duration,
        watch: &mut Watch<'_>,
    ) -> Result<(), Failure> {
        let mut body = BytesMut::new();
        let sink = &mut Sink::Keep {
            body: &mut body,
            max: INIT_BYTES_MAX,
        };
        match self.connection.get(target, limit, watch, sink).await? {
            200 => self.init(&body, uri, watch),
            status => Err(Failure::Retry(format!(
                "hls: init segment answered {status}"
            ))),
        }
    }

    async fn fetch_part(
        &mut self,
        target: &str,
        at: Position,
        limit: Duration,
        watch: &mut Watch<'_>,
    ) -> Result<(), Failure> {
        let Some(walker) = &mut self.walker else {
            debug_assert!(false, "the follower asks for an init segment first");
            return Err(Failure::Fatal("hls: a part before any init segment".into()));
        };
        let sink = &mut Sink::Walk(walker);
        match self.connection.get(target, limit, watch, sink).await? {
            200 => self.follower.handle_part(at),
            // Gone, or never made: the follower sees which. Starting over
            // for want of parts waits, like any failure.
            404 | 410 => {
                let jumps = self.follower.jumps;
                self.follower.handle_part_missing(at);
                if self.follower.jumps > jumps {
                    return Err(Failure::Retry(format!("hls: {at} answered 404")));
                }
            }
            status => return Err(Failure::Retry(format!("hls: {at} answered {status}"))),
        }
        Ok(())
    }

    /// A playlist's body came: the first media playlist starts the play.
    fn playlist(&mut self, body: &[u8], watch: &mut Watch<'_>) -> Result<(), Failure> {
        let playlist = Playlist::parse(body).map_err(|e| Failure::Fatal(format!("hls: {e}")))?;
        (self.follower.handle_playlist(playlist))
            .map_err(|e| Failure::Fatal(format!("hls: {e}")))?;
        if let Some(part_target) = self.follower.part_target().filter(|_| !self.playing) {
            self.playing = true;
            watch.playing();
            watch.arriving_every(part_target);
        }
        Ok(())
    }

    /// An init segment came: its video track's configuration is the
    /// sequence header an RTMP or FLV player gets.
    fn init(&mut self, body: &[u8], uri: &str, watch: &mut Watch<'_>) -> Result<(), Failure> {
        let tracks =
            Tracks::parse(body).map_err(|e| Failure::Fatal(format!("hls: init segment: {e}")))?;
        if tracks.has_video() {
            watch
                .batch()
                .video(Video::SequenceHeader, Timestamp(0), None);
        }
        self.walker = Some(Walker::new(tracks));
        self.follower.handle_init(uri);
        Ok(())
    }
}

/// Where a response's body goes.
enum Sink<'a> {
    /// Kept whole (a playlist, an init segment), up to `max` bytes.
    Keep { body: &'a mut BytesMut, max: usize },
    /// Walked: every sample to the watch.
    Walk(&'a mut Walker),
}

impl Sink<'_> {
    fn max(&self) -> usize {
        match self {
            Sink::Keep { max, .. } => *max,
            Sink::Walk(_) => PART_BYTES_MAX,
        }
    }

    fn take(&mut self, bytes: &[u8], watch: &mut Watch<'_>) -> Result<(), String> {
        match self {
            Sink::Keep { body, .. } => body.extend_from_slice(bytes),
            Sink::Walk(walker) => {
                let mut batch = watch.batch();
                walker
                    .feed(bytes, &mut |sample| measure(&mut batch, sample))
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    /// The body ended.
    fn finish(&mut self) -> Result<(), String> {
        match self {
            Sink::Keep { .. } => Ok(()),
            Sink::Walk(walker) => walker.finish().map_err(|e| e.to_string()),
        }
    }

    /// The response was lost part way: it will be asked for again.
    fn reset(&mut self) {
        match self {
            Sink::Keep { body, .. } => body.clear(),
            Sink::Walk(walker) => walker.reset(),
        }
    }
}

/// Hands one sample to the watch, as the FLV players hand a tag.
fn measure(batch: &mut Batch<'_, '_>, sample: Sample) {
    // Decode times become the wrapping millisecond timestamps RTMP has,
    // which audio latency is inferred with.
    let timestamp = Timestamp(sample.decode_time_ms as u32);
    match sample.kind {
        Kind::Video => {
            let video = if sample.sync {
                Video::Keyframe
            } else {
                Video::Interframe
            };
            batch.video(video, timestamp, Stamp::find_in_nals(&sample.prefix));
        }
        Kind::Audio => batch.audio(timestamp),
        Kind::Other => {}
    }
}

/// The player's keep-alive connection, and bytes read on it not yet used.
struct Connection<'p> {
    plan: &'p Plan,
    /// `None` until the first request, and after the server closed it.
    socket: Option<OwnedSocket>,
    input: BytesMut,
}

/// How an exchange on a connection ended early.
enum Lost {
    /// The server closed a connection that had carried requests before
    /// answering this one: it timed out the idle connection as the
    /// request went.
    BeforeAnswer,
    Failure(Failure),
}

impl Connection<'_> {
    /// GETs `target` within `limit`: the status, once the response is
    /// over; a 200's body goes to `sink`. A request that finds its
    /// connection closed is sent once more on a new one, as browsers do:
    /// a GET may be (RFC 9112 §9.3.1).
    async fn get(
        &mut self,
        target: &str,
        limit: Duration,
        watch: &mut Watch<'_>,
        sink: &mut Sink<'_>,
    ) -> Result<u16, Failure> {
        for _ in 0..2 {
            let reused = self.socket.is_some();
            let exchange = self.exchange(target, reused, watch, sink);
            match tokio::time::timeout(limit, exchange).await {
                Ok(Ok(status)) => return Ok(status),
                Ok(Err(Lost::BeforeAnswer)) => {}
                Ok(Err(Lost::Failure(failure))) => {
                    sink.reset();
                    return Err(failure);
                }
                Err(_) => {
                    sink.reset();
                    return Err(Failure::Retry(format!(
                        "hls: no answer within {} s",
                        limit.as_secs()
                    )));
                }
            }
        }
        Err(Failure::Retry(
            "hls: the server closed the connection before answering".into(),
        ))
    }

    /// One request and its response. The socket is taken for the
    /// exchange and put back if the response leaves it open, so that a
    /// failure or a timeout drops it, which shuts it down.
    async fn exchange(
        &mut self,
        target: &str,
        reused: bool,
        watch: &mut Watch<'_>,
        sink: &mut Sink<'_>,
    ) -> Result<u16, Lost> {
        let socket = match self.socket.take() {
            Some(socket) => socket,
            None => {
                self.input.clear();
                let socket = super::connect(self.plan).await;
                socket.map_err(|e| Lost::Failure(Failure::Retry(e)))?
            }
        };
        let request = http::request(&self.plan.authority, target);
        watch.request();
        let early_close = |why: String| {
            if reused {
                Lost::BeforeAnswer
            } else {
                Lost::Failure(Failure::Retry(format!("hls: {why}")))
            }
        };
        (socket.write_all(request).await).map_err(|e| early_close(format!("write: {e}")))?;
        let mut response = Response::new();
        let mut reading = Reading {
            target,
            status: None,
            body_bytes: 0,
        };
        loop {
            while let Some(event) = response
                .decode(&mut self.input)
                .map_err(|e| reading.fatal(e))?
            {
                if let Some(reusable) = reading.event(event, sink, watch)? {
                    if reusable {
                        self.socket = Some(socket);
                    }
                    return reading.status.ok_or(Lost::BeforeAnswer);
                }
            }
            let answered = reading.status.is_some() || !self.input.is_empty();
            let read = read_some(&socket, &mut self.input).await;
            let n = match read {
                Ok(n) => n,
                Err(why) if !answered => return Err(early_close(why)),
                Err(why) => return Err(Lost::Failure(Failure::Retry(format!("hls: {why}")))),
            };
            if n > 0 {
                watch.read(n as u64);
                continue;
            }
            match response.closed(answered) {
                Ok(event) => {
                    reading.event(event, sink, watch)?;
                    return reading.status.ok_or(Lost::BeforeAnswer);
                }
                Err(http::Error::ClosedBeforeAnswer) => {
                    return Err(early_close("server closed the connection".into()));
                }
                Err(e) => return Err(Lost::Failure(Failure::Retry(format!("hls: {e}")))),
            }
        }
    }
}

/// One response being read.
struct Reading<'t> {
    target: &'t str,
    status: Option<u16>,
    body_bytes: usize,
}

impl Reading<'_> {
    /// Takes one event: `Some(reusable)` once the response is over.
    fn event(
        &mut self,
        event: Event,
        sink: &mut Sink<'_>,
        watch: &mut Watch<'_>,
    ) -> Result<Option<bool>, Lost> {
        match event {
            Event::Head {
                status,
                content_length,
            } => {
                self.status = Some(status);
                let max = self.max(sink);
                if content_length.is_some_and(|len| len > max as u64) {
                    return Err(self.too_long(max));
                }
            }
            Event::Body(bytes) => {
                self.body_bytes = self.body_bytes.saturating_add(bytes.len());
                let max = self.max(sink);
                if self.body_bytes > max {
                    return Err(self.too_long(max));
                }
                if self.status == Some(200) {
                    sink.take(&bytes, watch).map_err(|e| self.fatal(e))?;
                }
            }
            Event::End { reusable } => {
                if self.status == Some(200) {
                    sink.finish().map_err(|e| self.fatal(e))?;
                }
                return Ok(Some(reusable));
            }
        }
        Ok(None)
    }

    /// The longest body taken: a 200's goes to the sink, others are
    /// read and dropped.
    fn max(&self, sink: &Sink<'_>) -> usize {
        match self.status {
            Some(200) => sink.max(),
            _ => ERROR_BODY_BYTES_MAX,
        }
    }

    fn too_long(&self, max: usize) -> Lost {
        self.fatal(format!("body longer than max {max} bytes"))
    }

    /// What was read cannot be: the player ends, naming the request.
    fn fatal(&self, why: impl std::fmt::Display) -> Lost {
        Lost::Failure(Failure::Fatal(format!("hls: {}: {why}", self.target)))
    }
}

/// Reads once into `input`: how many bytes came (0: the server closed the
/// connection).
async fn read_some(socket: &OwnedSocket, input: &mut BytesMut) -> Result<usize, String> {
    if input.capacity() - input.len() < READ_ROOM_BYTES_MIN {
        input.reserve(READ_GROW_BYTES);
    }
    let buffer = std::mem::take(input);
    let (result, buffer) = socket.read(buffer).await;
    *input = buffer;
    result.map_err(|e| format!("read: {e}"))
}

/// The wait after `failures` failures in a row.
fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    BACKOFF_MIN.saturating_mul(1 << doublings).min(BACKOFF_MAX)
}

#[cfg(test)]
mod tests {
    //! A player against a live stream served in-process by a small
    //! threaded HTTP server, as an LL-HLS packager would serve it: a part
    //! made every 200 ms, blocking reloads and hinted parts held until
    //! made, a hinted part that its segment ends before answered 404, a
    //! first answer of 503, and connections closed now and then.

    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::rc::Rc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use super::*;
    use crate::hls::testing::{Sample as Made, avcc, fragment, init_segment};
    use crate::player::{Shared, run, wall_clock_us};
    use crate::stats::Percentiles;
    use crate::url::Protocol;

    const PART_MS: u64 = 200;
    const PARTS_PER_SEGMENT: u64 = 4;
    const FRAMES_PER_PART: u64 = 6;
    /// Parts made before the player comes: the last of them just now.
    const PARTS_AT_START: u64 = 6;

    /// The stream the server serves.
    struct Stream {
        started: Instant,
        started_wall_us: u64,
        requests: AtomicUsize,
        connections: AtomicUsize,
        refused_first: AtomicBool,
        /// Each request's target and status, in order.
        log: Mutex<Vec<(String, u16)>>,
    }

    impl Stream {
        /// Parts made so far.
        fn made(&self) -> u64 {
            PARTS_AT_START + self.started.elapsed().as_millis() as u64 / PART_MS
        }

        /// Waits until `parts` parts are made; false after 3 s.
        fn wait_for(&self, parts: u64) -> bool {
            let deadline = Instant::now() + Duration::from_secs(3);
            while self.made() < parts {
                if Instant::now() > deadline {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            true
        }

        /// The wall clock when part `index` was made.
        fn made_wall_us(&self, index: u64) -> u64 {
            let since_start_us =
                (index as i64 - (PARTS_AT_START as i64 - 1)) * 1000 * PART_MS as i64;
            self.started_wall_us.saturating_add_signed(since_start_us)
        }

        /// The playlist now: segments of 4 parts; the one with the last
        /// part made open (even when it has all 4: the server learns it
        /// ended only when the next part starts the next segment), and
        /// the hint after its last part.
        fn playlist(&self) -> String {
            let last = self.made() - 1;
            let open = last / PARTS_PER_SEGMENT;
            let mut text = String::from(
                "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:1\n\
                 #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.600\n\
                 #EXT-X-PART-INF:PART-TARGET=0.200\n#EXT-X-MEDIA-SEQUENCE:0\n\
                 #EXT-X-MAP:URI=\"cam/init0.mp4?k=1\"\n",
            );
            for msn in 0..=open {
                for k in 0..PARTS_PER_SEGMENT {
                    if msn * PARTS_PER_SEGMENT + k > last {
                        break;
                    }
                    let independent = if k == 0 { ",INDEPENDENT=YES" } else { "" };
                    text += &format!(
                        "#EXT-X-PART:DURATION=0.200,URI=\"cam/part{msn}.{k}.m4s?k=1\"{independent}\n"
                    );
                }
                if msn < open {
                    text += &format!("#EXTINF:0.800,\ncam/seg{msn}.m4s?k=1\n");
                }
            }
            let hinted = last % PARTS_PER_SEGMENT + 1;
            text +=
                &format!("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"cam/part{open}.{hinted}.m4s?k=1\"\n");
            text
        }

        /// Part `index`: 6 stamped video frames captured over the 200 ms
        /// before it was made (a keyframe first in a segment's first
        /// part), and 2 audio frames.
        fn part(&self, index: u64) -> Vec<u8> {
            let frames: Vec<Vec<u8>> = (0..FRAMES_PER_PART)
                .map(|j| {
                    let stamp = Stamp {
                        wall_us: self.made_wall_us(index) - PART_MS * 1000 + j * 33_333,
                        seq: index * FRAMES_PER_PART + j,
                        publisher: 0,
                    };
                    avcc(&[&stamp.to_nal(), &[0x41; 700]])
                })
                .collect();
            let video: Vec<Made<'_>> = frames
                .iter()
                .enumerate()
                .map(|(j, data)| Made {
                    data,
                    duration: 3000,
                    sync: j == 0 && index % PARTS_PER_SEGMENT == 0,
                })
                .collect();
            let aac = [0x21; 40];
            let audio = [0, 1].map(|_| Made {
                data: &aac,
                duration: 4800,
                sync: true,
            });
            fragment(
                index as u32,
                &[
                    (1, index * FRAMES_PER_PART * 3000, &video),
                    (2, index * 9600, &audio),
                ],
            )
        }

        /// The answer to `target`: status and body.
        fn answer(&self, target: &str) -> (u16, Vec<u8>) {
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            // The player's own query goes with every request.
            if !query.split('&').any(|p| p == "k=1") {
                return (403, Vec::new());
            }
            if path == "/live/cam.m3u8" {
                if !self.refused_first.swap(true, Ordering::SeqCst) {
                    return (503, b"warming up".to_vec());
                }
                let directive = |name: &str| {
                    query
                        .split('&')
                        .find_map(|p| p.strip_prefix(name))
                        .and_then(|v| v.parse::<u64>().ok())
                };
                if let (Some(msn), Some(part)) = (directive("_HLS_msn="), directive("_HLS_part=")) {
                    // Past a segment's last part is the next one's first.
                    let index = msn * PARTS_PER_SEGMENT + part.min(PARTS_PER_SEGMENT);
                    if !self.wait_for(index + 1) {
                        return (503, Vec::new());
                    }
                }
                return (200, self.playlist().into_bytes());
            }
            if path == "/live/cam/init0.mp4" {
                return (200, init_segment());
            }
            let Some((msn, k)) = path
                .strip_prefix("/live/cam/part")
                .and_then(|p| p.strip_suffix(".m4s"))
                .and_then(|p| p.split_once('.'))
                .and_then(|(m, k)| Some((m.parse::<u64>().ok()?, k.parse::<u64>().ok()?)))
            else {
                return (404, Vec::new());
            };
            if k >= PARTS_PER_SEGMENT {
                // Hinted, but the next part started the next segment.
                self.wait_for((msn + 1) * PARTS_PER_SEGMENT + 1);
                return (404, Vec::new());
            }
            let index = msn * PARTS_PER_SEGMENT + k;
            if !self.wait_for(index + 1) {
                return (503, Vec::new());
            }
            (200, self.part(index))
        }
    }

    /// Serves a connection: every third connection closes without a word
    /// when its third request comes (an idle timeout racing the
    /// request); the others answer their third with `Connection: close`.
    fn serve(mut socket: TcpStream, stream: &Stream) {
        let number = stream.connections.fetch_add(1, Ordering::SeqCst);
        let mut input = Vec::new();
        for served in 0.. {
            let Some(target) = request(&mut socket, &mut input) else {
                return;
            };
            stream.requests.fetch_add(1, Ordering::SeqCst);
            if served == 2 && number % 3 == 2 {
                return;
            }
            let (status, body) = stream.answer(&target);
            stream.log.lock().unwrap().push((target, status));
            let close = served == 2;
            let head = format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n",
                body.len(),
                if close { "close" } else { "keep-alive" }
            );
            if socket
                .write_all(&[head.into_bytes(), body].concat())
                .is_err()
                || close
            {
                return;
            }
        }
    }

    /// Reads a request head: its target.
    fn request(socket: &mut TcpStream, input: &mut Vec<u8>) -> Option<String> {
        loop {
            if let Some(end) = input.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8(input.drain(..end + 4).collect()).ok()?;
                return head.split(' ').nth(1).map(str::to_owned);
            }
            let mut buffer = [0; 4096];
            let n = socket.read(&mut buffer).ok().filter(|n| *n > 0)?;
            input.extend_from_slice(&buffer[..n]);
        }
    }

    fn start_server() -> (SocketAddr, Arc<Stream>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stream = Arc::new(Stream {
            started: Instant::now(),
            started_wall_us: wall_clock_us(),
            requests: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            refused_first: AtomicBool::new(false),
            log: Mutex::new(Vec::new()),
        });
        let serving = stream.clone();
        std::thread::spawn(move || {
            for socket in listener.incoming().flatten() {
                let stream = serving.clone();
                std::thread::spawn(move || serve(socket, &stream));
            }
        });
        (addr, stream)
    }

    #[test]
    fn a_player_follows_a_live_stream_part_by_part_at_low_latency() {
        let (addr, stream) = start_server();
        let plan = Plan {
            protocol: Protocol::Hls,
            tls: None,
            addr,
            authority: addr.to_string(),
            app: "live".into(),
            stream: "cam".into(),
            query: Some("k=1".into()),
            frame_interval: Duration::from_millis(33),
        };
        let shared = Rc::new(Shared::default());
        let playing = shared.clone();
        tokio_uring::start(async move {
            let stop = Rc::new(Notify::new());
            let player = tokio_uring::spawn(run(plan, playing, stop.clone()));
            tokio::time::sleep(Duration::from_millis(1500)).await;
            stop.notify_one();
            player.await.unwrap();
        });
        let totals = shared.totals.borrow();
        assert!(totals.disconnects.is_empty(), "{:?}", totals.disconnects);
        assert_eq!(
            (
                totals.players,
                totals.never_played,
                totals.started_on_keyframe
            ),
            (1, 0, 1)
        );
        // From part 0 (the hold-back reaches into segment 0) through the
        // parts made while playing, every frame, none late.
        let parts = totals.frames / FRAMES_PER_PART;
        assert!((10..=14).contains(&parts), "{} frames", totals.frames);
        assert_eq!((totals.gaps, totals.stalls), (0, 0));
        // Live frames: captured over the 200 ms before their part was made.
        let latency = Percentiles::of(&totals.latency_us);
        assert!(latency.count >= 18, "{latency:?}");
        assert!(
            latency.p50_ms > 60.0 && latency.p50_ms < 250.0,
            "{latency:?}"
        );
        assert!(latency.max_ms < 450.0, "{latency:?}");
        assert!(totals.audio_latency_us.len() >= 6);
        // Every request the server saw was counted, and it saw one a part
        // at most, plus reloads: fewer than two a part.
        let requests = stream.requests.load(Ordering::SeqCst) as u64;
        assert!(requests >= parts + 2, "{requests} requests, {parts} parts");
        assert!(
            requests < 2 * parts + 4,
            "{requests} requests, {parts} parts"
        );
        assert!(
            totals.requests >= requests,
            "{} < {requests}",
            totals.requests
        );
        assert!(stream.connections.load(Ordering::SeqCst) >= 3);
        assert!(totals.bytes > parts * FRAMES_PER_PART * 700);
        // The 503 was retried; the hint past segment 1's end was answered
        // 404 and the player went on with segment 2; it reloaded blocking.
        let log = stream.log.lock().unwrap();
        let answered = |target: &str| log.iter().find(|(t, _)| t == target).map(|(_, s)| *s);
        assert_eq!(log.first(), Some(&("/live/cam.m3u8?k=1".into(), 503)));
        assert_eq!(
            answered("/live/cam.m3u8?k=1&_HLS_msn=1&_HLS_part=3"),
            Some(200)
        );
        assert_eq!(answered("/live/cam/part1.4.m4s?k=1"), Some(404));
        assert_eq!(answered("/live/cam/part2.0.m4s?k=1"), Some(200));
        let parts_fetched = log.iter().filter(|(t, _)| t.contains("/part")).count();
        let parts_unique: std::collections::BTreeSet<_> =
            log.iter().filter(|(t, _)| t.contains("/part")).collect();
        assert_eq!(parts_fetched, parts_unique.len(), "no part fetched twice");
    }
}
