//! The cost floor: what delivering a live stream costs with nothing but
//! the kernel's work left. One thread generates the bench stream (stamped
//! like a publisher's: the synthetic stream, or a real encoder's FLV file
//! looped), packages each frame once and writes it to every player socket
//! in a plain loop: no io_uring, no queues, no shards, no publisher
//! connection to read. A server's CPU per delivered gigabyte divided by
//! the floor's says how close to the kernel's limit it gets.
//!
//! The floor batches as an ideal server would, and as `ringcast serve`
//! does by default ([`Schedule`]): one `writev` per player per video frame,
//! with the audio queued since the last write riding along; audio is
//! never held longer than [`AUDIO_HOLD_MAX`], so a stream without video
//! still gets a write every 40 ms or so. With a write window W
//! (`--write-window-ms`, the server's `player.write_window_ms`) each
//! player's backlog is written once every W instead.
//!
//! Players connect with any RTMP client (`ringcast bench --publishers 0`):
//! a helper thread does their handshake, `connect`, `createStream` and
//! `play` with the server session, then hands the socket to the loop.

use std::io::{self, IoSlice, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::player::wall_clock_us;
use super::source::{Item, Shape, Source};
use super::stamp::Stamp;
use crate::media::{CANONICAL_STREAM_ID, Frame, FrameClass};
use crate::protocol::Timestamp;
use crate::protocol::handshake::RANDOM_SIZE;
use crate::session::{MediaKind, ServerConfig, ServerEvent, ServerSession};

/// Chunk size the floor sends with, as `ringcast serve` and nginx-rtmp do
/// by default.
const CHUNK_SIZE: u32 = 4096;
/// A player more than this many bytes behind is dropped, like a slow
/// player on a real server.
const BACKLOG_MAX: usize = 8 * 1024 * 1024;
/// Longest audio waits for a video frame to ride with before it is
/// written on its own: the server's default. 40 ms is under two AAC
/// frames at 44.1 kHz and above one 30 fps video interval (33 ms), so
/// with video it never fires, and without video a player still hears
/// audio within 40 ms of it being sent.
pub const AUDIO_HOLD_MAX: Duration = Duration::from_millis(40);

/// What the floor serves, and how it batches.
#[derive(Clone, Debug)]
pub struct FloorConfig {
    pub listen: SocketAddr,
    pub shape: Shape,
    /// Serve this FLV file, looped, instead of the synthetic stream.
    pub flv: Option<PathBuf>,
    /// Zero: a write per video frame ([`Schedule`]); otherwise a write to
    /// every player once per this window.
    pub write_window: Duration,
}

/// A player socket in the loop.
struct Player {
    socket: TcpStream,
    backlog: Vec<Bytes>,
    backlog_bytes: usize,
    /// Video waits for a keyframe.
    started: bool,
}

/// Runs the floor until the process is stopped.
pub fn serve(config: &FloorConfig) -> io::Result<()> {
    let mut source = match &config.flv {
        Some(path) => {
            let file = std::fs::read(path)
                .map_err(|e| io::Error::new(e.kind(), format!("--flv {}: {e}", path.display())))?;
            Source::file(&Bytes::from(file))
        }
        None => Source::synthetic(config.shape),
    }
    .map_err(io::Error::other)?;
    let listener = TcpListener::bind(config.listen)?;
    eprintln!(
        "ringcast bench-floor listening on {}",
        listener.local_addr()?
    );
    let headers = package_headers(&source)?;
    let joining: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
    let accepted = joining.clone();
    std::thread::Builder::new()
        .name("floor-accept".into())
        .spawn(move || accept_loop(&listener, &accepted))?;
    let mut players: Vec<Player> = Vec::new();
    let mut schedule = Schedule::new(config.write_window);
    let started = Instant::now();
    let mut seq = 0;
    loop {
        let item = source.next_item();
        let due = Duration::from_secs_f64(item.due_ms.max(0.0) / 1000.0);
        // Writes that fall due before the item: held audio, or a window.
        while let Some(deadline) = schedule.deadline().filter(|d| *d < due) {
            sleep_until(started + deadline);
            admit(&joining, &headers, &mut players);
            schedule.handle_deadline(deadline);
            players.retain_mut(flush);
        }
        sleep_until(started + due);
        admit(&joining, &headers, &mut players);
        let stamp = Stamp {
            wall_us: wall_clock_us(),
            seq,
            publisher: 0,
        };
        if item.is_stampable() {
            seq += 1;
        }
        let frame = package(&item, &stamp)?;
        let write = schedule.handle_frame(frame.kind, due);
        players.retain_mut(|player| deliver(player, &frame, write));
    }
}

/// When the floor writes, in time since it started: the rule an ideal
/// server follows, kept apart from the sockets so that it can be tested.
#[derive(Debug)]
pub enum Schedule {
    /// A write at each video frame; audio (and metadata) since the last
    /// write rides with it, or goes on its own once the oldest of it has
    /// waited [`AUDIO_HOLD_MAX`].
    EachVideoFrame {
        /// When the oldest audio not yet written arrived.
        held_since: Option<Duration>,
    },
    /// A write once per `every`, whatever arrived.
    Window { every: Duration, next: Duration },
}

impl Schedule {
    /// A write window of zero writes at each video frame.
    pub fn new(write_window: Duration) -> Schedule {
        if write_window.is_zero() {
            Schedule::EachVideoFrame { held_since: None }
        } else {
            Schedule::Window {
                every: write_window,
                next: write_window,
            }
        }
    }

    /// A frame of `kind` was queued for every player at `now`; true when
    /// the players' backlogs are to be written now.
    #[must_use]
    pub fn handle_frame(&mut self, kind: MediaKind, now: Duration) -> bool {
        match self {
            Schedule::EachVideoFrame { held_since } => {
                if kind == MediaKind::Video {
                    *held_since = None;
                    true
                } else {
                    held_since.get_or_insert(now);
                    false
                }
            }
            Schedule::Window { .. } => false,
        }
    }

    /// When to write if no frame asks for it first.
    pub fn deadline(&self) -> Option<Duration> {
        match self {
            Schedule::EachVideoFrame { held_since } => held_since.map(|at| at + AUDIO_HOLD_MAX),
            Schedule::Window { next, .. } => Some(*next),
        }
    }

    /// The deadline came at `now` and the backlogs were written.
    pub fn handle_deadline(&mut self, now: Duration) {
        match self {
            Schedule::EachVideoFrame { held_since } => *held_since = None,
            Schedule::Window { every, next } => {
                // A window the floor slept through is not made up for.
                while *next <= now {
                    *next += *every;
                }
            }
        }
    }
}

fn sleep_until(at: Instant) {
    std::thread::sleep(at.saturating_duration_since(Instant::now()));
}

fn package(item: &Item, stamp: &Stamp) -> io::Result<Frame> {
    Frame::package(item.kind, item.timestamp, &item.body(stamp), CHUNK_SIZE)
        .map_err(io::Error::other)
}

/// Metadata and sequence headers, packaged once for every new player.
fn package_headers(source: &Source) -> io::Result<Vec<Bytes>> {
    let mut body = BytesMut::new();
    crate::protocol::message::Message::Data(crate::protocol::command::Data::MetaData(
        source.metadata(),
    ))
    .encode(&mut body);
    let mut headers = vec![
        Frame::metadata(Timestamp(0), &body, CHUNK_SIZE)
            .map_err(io::Error::other)?
            .wire,
    ];
    for (kind, payload) in source.headers() {
        headers.push(
            Frame::package(kind, Timestamp(0), &payload, CHUNK_SIZE)
                .map_err(io::Error::other)?
                .wire,
        );
    }
    Ok(headers)
}

fn admit(joining: &Mutex<Vec<TcpStream>>, headers: &[Bytes], players: &mut Vec<Player>) {
    let new: Vec<TcpStream> =
        std::mem::take(&mut *joining.lock().unwrap_or_else(|p| p.into_inner()));
    for socket in new {
        let mut player = Player {
            socket,
            backlog: headers.to_vec(),
            backlog_bytes: headers.iter().map(Bytes::len).sum(),
            started: false,
        };
        if flush(&mut player) {
            players.push(player);
        }
    }
}

/// Queues `frame` for one player and writes its backlog if `write`;
/// false drops the player.
fn deliver(player: &mut Player, frame: &Frame, write: bool) -> bool {
    if !player.started {
        match (frame.kind, frame.class) {
            (MediaKind::Video, FrameClass::Keyframe) => player.started = true,
            (MediaKind::Video, _) => return !write || flush(player),
            _ => {}
        }
    }
    player.backlog_bytes += frame.wire.len();
    player.backlog.push(frame.wire.clone());
    if player.backlog_bytes > BACKLOG_MAX {
        return false;
    }
    !write || flush(player)
}

/// Writes what the player's socket takes now; false on a closed socket.
fn flush(player: &mut Player) -> bool {
    while !player.backlog.is_empty() {
        let mut slices = [IoSlice::new(&[]); 16];
        let count = player.backlog.len().min(slices.len());
        for (slice, buffer) in slices.iter_mut().zip(&player.backlog) {
            *slice = IoSlice::new(buffer);
        }
        match player.socket.write_vectored(&slices[..count]) {
            Ok(0) => return false,
            Ok(mut n) => {
                player.backlog_bytes -= n;
                player.backlog.retain_mut(|b| {
                    let done = n.min(b.len());
                    n -= done;
                    let _ = b.split_to(done);
                    !b.is_empty()
                });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

fn accept_loop(listener: &TcpListener, joining: &Mutex<Vec<TcpStream>>) {
    for socket in listener.incoming().flatten() {
        // A player that does not finish its setup in time is dropped.
        let _ = socket.set_read_timeout(Some(Duration::from_secs(10)));
        let _ = socket.set_nodelay(true);
        if let Ok(socket) = setup(socket) {
            if socket.set_nonblocking(true).is_ok() {
                joining
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(socket);
            }
        }
    }
}

/// Handshake, `connect`, `createStream` and `play`, answered by the server
/// session; returns the socket once the player is playing.
fn setup(mut socket: TcpStream) -> io::Result<TcpStream> {
    let mut session = ServerSession::new(ServerConfig::default(), 0, [0x24; RANDOM_SIZE]);
    let mut input = BytesMut::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = socket.read(&mut buf)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        input.extend_from_slice(&buf[..n]);
        let mut playing = false;
        loop {
            session.handle_input(&mut input).map_err(io::Error::other)?;
            let mut answered = false;
            while let Some(event) = session.poll_event() {
                answered = true;
                let result = match event {
                    ServerEvent::Connect { .. } => session.accept_connect(),
                    ServerEvent::Play {
                        stream_id,
                        stream_name,
                        reset,
                        ..
                    } => {
                        // Frames are packaged for the usual stream id only.
                        playing = stream_id == CANONICAL_STREAM_ID;
                        session.accept_play(stream_id, &stream_name, reset)
                    }
                    _ => Ok(()),
                };
                result.map_err(io::Error::other)?;
            }
            while let Some(bytes) = session.poll_transmit() {
                socket.write_all(&bytes)?;
            }
            if !answered {
                break;
            }
        }
        if playing {
            return Ok(socket);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn audio_rides_with_the_next_video_frame() {
        let mut schedule = Schedule::new(Duration::ZERO);
        assert!(schedule.handle_frame(MediaKind::Video, ms(0)));
        assert!(!schedule.handle_frame(MediaKind::Audio, ms(10)));
        assert!(!schedule.handle_frame(MediaKind::Audio, ms(30)));
        assert_eq!(schedule.deadline(), Some(ms(50)), "40 ms after the oldest");
        assert!(schedule.handle_frame(MediaKind::Video, ms(33)));
        assert_eq!(schedule.deadline(), None, "written with the video");
    }

    #[test]
    fn audio_without_video_is_written_every_40_ms_or_so() {
        let mut schedule = Schedule::new(Duration::ZERO);
        let mut writes = Vec::new();
        // One second of 44.1 kHz AAC frames and nothing else.
        for n in 0..43u32 {
            let due = Duration::from_secs_f64(f64::from(n) * 1024.0 / 44_100.0);
            while let Some(deadline) = schedule.deadline().filter(|d| *d < due) {
                schedule.handle_deadline(deadline);
                writes.push(deadline);
            }
            assert!(!schedule.handle_frame(MediaKind::Audio, due));
        }
        assert!(
            writes.windows(2).all(|w| w[1] - w[0] <= ms(47)),
            "{writes:?}"
        );
        assert!((20..=25).contains(&writes.len()), "{} writes", writes.len());
    }

    #[test]
    fn a_write_window_writes_everything_once_per_window() {
        let mut schedule = Schedule::new(ms(100));
        assert!(!schedule.handle_frame(MediaKind::Video, ms(0)));
        assert!(!schedule.handle_frame(MediaKind::Audio, ms(23)));
        assert_eq!(schedule.deadline(), Some(ms(100)));
        schedule.handle_deadline(ms(100));
        assert_eq!(schedule.deadline(), Some(ms(200)));
        // Late by more than a window: the next is the next one due.
        schedule.handle_deadline(ms(450));
        assert_eq!(schedule.deadline(), Some(ms(500)));
    }
}
