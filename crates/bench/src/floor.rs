//! The cost floor: what delivering a live stream costs with nothing but
//! the kernel's work left. One thread generates the bench stream (stamped
//! like a publisher's: the synthetic stream, or a real encoder's FLV file
//! looped), packages each frame once and writes it to every player socket
//! in a plain loop: no io_uring, no queues, no shards, no publisher
//! connection to read. A server's CPU per delivered gigabyte divided by
//! the floor's says how close to the kernel's limit it gets.
//!
//! The floor batches as an ideal server would, by the rule `ringcast
//! serve` follows ([`Pacing`]): one `writev` per player per video frame,
//! with the audio queued since the last write riding along; audio is
//! never held longer than [`AUDIO_HOLD_MS`](ringcast_rtmp::media::AUDIO_HOLD_MS).
//! With a write window W (`--write-window-ms`, the server's
//! `player.write_window_ms`) each player's backlog is written once every
//! W instead, players spread over the window's phases.
//!
//! Players connect with any RTMP client (`ringcast bench --publishers 0`):
//! a helper thread does their handshake, `connect`, `createStream` and
//! `play` with the server session, then hands the socket to the loop.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::player::wall_clock_us;
use super::source::{Item, Shape, Source};
use super::stamp::Stamp;
use ringcast_rtmp::media::{CANONICAL_STREAM_ID, Due, Frame, FrameClass, Pace, Pacing};
use ringcast_rtmp::protocol::Timestamp;
use ringcast_rtmp::protocol::handshake::RANDOM_SIZE;
use ringcast_rtmp::session::{MediaKind, ServerConfig, ServerEvent, ServerSession};

/// Chunk size the floor sends with, as `ringcast serve` and nginx-rtmp do
/// by default.
const CHUNK_SIZE: u32 = 4096;
/// A player more than this many bytes behind is dropped, like a slow
/// player on a real server.
const BACKLOG_MAX: usize = 8 * 1024 * 1024;

/// What the floor serves, and how it batches.
#[derive(Clone, Debug)]
pub struct FloorConfig {
    pub listen: SocketAddr,
    pub shape: Shape,
    /// Serve this FLV file, looped, instead of the synthetic stream.
    pub flv: Option<PathBuf>,
    /// Zero: a write per video frame; otherwise a write to each player
    /// once per this window ([`Pacing`]).
    pub write_window: Duration,
}

/// A player socket in the loop.
struct Player {
    socket: TcpStream,
    backlog: Vec<Bytes>,
    backlog_bytes: usize,
    /// Video waits for a keyframe.
    started: bool,
    /// Its place in a write window's phases ([`Pacing::slot`]).
    serial: u64,
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
    let mut serials = 0..;
    let mut pacing = Pacing::new(config.write_window.as_millis() as u64);
    // The pacing's deadlines (ms since the start), in order: it gives
    // each later than the last.
    let mut deadlines: VecDeque<u64> = VecDeque::new();
    let started = Instant::now();
    let mut seq = 0;
    loop {
        let item = source.next_item();
        let due = Duration::from_secs_f64(item.due_ms.max(0.0) / 1000.0);
        let due_ms = due.as_millis() as u64;
        // Writes that fall due before the item: held audio, or a window.
        while let Some(&deadline) = deadlines.front().filter(|d| **d < due_ms) {
            deadlines.pop_front();
            sleep_until(started + Duration::from_millis(deadline));
            admit(&joining, &headers, &mut players, &mut serials);
            match pacing.due(deadline) {
                Due::Nobody => {}
                Due::All => players.retain_mut(flush),
                Due::Slot {
                    slot,
                    next_deadline_ms,
                } => {
                    players.retain_mut(|p| Pacing::slot(p.serial) != slot || flush(p));
                    deadlines.extend(next_deadline_ms);
                }
            }
        }
        sleep_until(started + due);
        admit(&joining, &headers, &mut players, &mut serials);
        let stamp = Stamp {
            wall_us: wall_clock_us(),
            seq,
            publisher: 0,
        };
        if item.is_stampable() {
            seq += 1;
        }
        let frame = package(&item, &stamp)?;
        let pace = pacing.on_frame(frame.kind, due_ms);
        if let Pace::Hold {
            deadline_ms: Some(deadline),
        } = pace
        {
            deadlines.push_back(deadline);
        }
        players.retain_mut(|player| deliver(player, &frame, pace == Pace::Now));
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
    ringcast_rtmp::protocol::message::Message::Data(
        ringcast_rtmp::protocol::command::Data::MetaData(source.metadata()),
    )
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

fn admit(
    joining: &Mutex<Vec<TcpStream>>,
    headers: &[Bytes],
    players: &mut Vec<Player>,
    serials: &mut std::ops::RangeFrom<u64>,
) {
    let new: Vec<TcpStream> =
        std::mem::take(&mut *joining.lock().unwrap_or_else(|p| p.into_inner()));
    for socket in new {
        let mut player = Player {
            socket,
            backlog: headers.to_vec(),
            backlog_bytes: headers.iter().map(Bytes::len).sum(),
            started: false,
            serial: serials.next().unwrap_or_default(),
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
        match player
            .socket
            .write_vectored(slices.get(..count).unwrap_or_default())
        {
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
        input.extend_from_slice(buf.get(..n).unwrap_or_default());
        let mut playing = false;
        loop {
            session.handle_input(&mut input).map_err(io::Error::other)?;
            let mut answered = false;
            while let Some(event) = session.poll_event() {
                answered = true;
                match event {
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
                    _ => {}
                }
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
