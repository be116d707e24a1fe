//! A bench player: connects, plays, and measures every video frame from
//! its first bytes only (the rest of each body is skimmed by the decoder),
//! and every audio frame against the video frames' stamps.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use tokio::sync::Notify;

use super::stamp::Stamp;
use super::stats::{Player, Totals, Video, histogram};
use ringcast_client::{Connection, Disconnect};
use ringcast_rtmp::protocol::flv;
use ringcast_rtmp::session::{ClientEvent, MediaKind};

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
    pub addr: SocketAddr,
    pub app: String,
    pub stream: String,
    pub frame_interval: Duration,
}

/// Runs one player until `stop` is notified or it is disconnected, then
/// adds what it measured to `shared`.
pub async fn run(plan: Plan, shared: Rc<Shared>, stop: Rc<Notify>) {
    let started = Instant::now();
    let mut stats = Player::new(plan.frame_interval);
    let mut was_playing = false;
    let ended = play(&plan, &shared, &stop, started, &mut stats, &mut was_playing).await;
    if was_playing {
        shared.playing.set(shared.playing.get().saturating_sub(1));
    }
    let disconnect = ended.err();
    shared
        .totals
        .borrow_mut()
        .add_player(&stats, disconnect.as_deref());
}

async fn play(
    plan: &Plan,
    shared: &Shared,
    stop: &Notify,
    started: Instant,
    stats: &mut Player,
    was_playing: &mut bool,
) -> Result<(), Disconnect> {
    let mut conn = Connection::open(plan.addr, &plan.app, Some(MEDIA_PREFIX)).await?;
    let stream_id = conn.setup().await?;
    conn.session
        .play(stream_id, &plan.stream)
        .map_err(|e| e.to_string())?;
    conn.wait_for("play", ClientEvent::is_play_start).await?;
    stats.playing_since(wall_clock_us());
    shared.playing.set(shared.playing.get() + 1);
    *was_playing = true;
    let counted = conn.bytes_read;
    let result = loop {
        observe(&mut conn, shared, started, stats);
        if let Err(e) = conn.flush().await {
            break Err(e);
        }
        tokio::select! {
            read = conn.read() => match read {
                Ok(n) => shared.bytes.set(shared.bytes.get() + n as u64),
                Err(e) => break Err(e),
            },
            () = stop.notified() => break Ok(()),
        }
    };
    stats.bytes = conn.bytes_read - counted;
    result
}

/// Takes the session's events: audio and video frames are measured, the
/// rest ignored.
fn observe(conn: &mut Connection, shared: &Shared, started: Instant, stats: &mut Player) {
    let mut now_wall_us = None;
    while let Some(event) = conn.session.poll_event() {
        let ClientEvent::Media { media, .. } = event else {
            continue;
        };
        if media.kind == MediaKind::Audio {
            if flv::inspect_audio(&media.payload).is_ok_and(|a| !a.is_sequence_header()) {
                let wall = *now_wall_us.get_or_insert_with(wall_clock_us);
                if let Some(latency) = stats.audio(media.timestamp, wall) {
                    shared.totals.borrow_mut().record_audio_latency(latency);
                }
            }
            continue;
        }
        if media.kind != MediaKind::Video {
            continue;
        }
        let video = match flv::inspect_video(&media.payload) {
            Ok(tag) if tag.is_sequence_header() => Video::SequenceHeader,
            Ok(tag) if tag.is_keyframe() => Video::Keyframe,
            _ => Video::Interframe,
        };
        let wall = *now_wall_us.get_or_insert_with(wall_clock_us);
        let stamp = Stamp::find(&media.payload);
        if let Some(latency) = stats.video(started.elapsed(), video, media.timestamp, stamp, wall) {
            shared.totals.borrow_mut().record_latency(latency);
            let _ = shared.window.borrow_mut().record(latency.max(1));
        }
    }
}

/// Microseconds since the Unix epoch: what stamps carry.
pub fn wall_clock_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
