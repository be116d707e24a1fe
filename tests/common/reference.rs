//! A reference stream for attack tests: one publisher pacing numbered
//! frames at a steady rate, and players that must get every one of them
//! while an attack runs.
//!
//! The publisher and each player run on threads of their own, blocking on
//! their sockets, so the schedule does not depend on how many cores there
//! are. Frames are numbered (see [`media::video`]); a player records the
//! number and arrival time of each, and [`Reference::finish`] asserts that
//! every player got every frame, in order, none missing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ringcast::protocol::MessageStreamId;
use ringcast::server::ServerHandle;
use ringcast::shard::stats::ShardSnapshot;

use super::media::{self, frame_number};
use super::{Client, TIMEOUT};

/// What the reference stream looks like.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub players: usize,
    pub fps: u32,
    /// A keyframe every this many frames.
    pub gop: u32,
    pub frame_bytes: usize,
}

impl Default for Options {
    /// 20 players, 30 fps of 1 KB frames, a keyframe every second.
    fn default() -> Self {
        Options {
            players: 20,
            fps: 30,
            gop: 30,
            frame_bytes: 1000,
        }
    }
}

pub const APP: &str = "live";
pub const STREAM: &str = "reference";

/// A published stream and its players, running.
pub struct Reference {
    shared: Arc<Shared>,
    publisher: JoinHandle<Vec<Instant>>,
    players: Vec<JoinHandle<Vec<Arrival>>>,
}

/// A video frame a player got: its number and when.
#[derive(Clone, Copy, Debug)]
pub struct Arrival {
    pub frame: u32,
    pub at: Instant,
}

struct Shared {
    stop: AtomicBool,
    /// Frames sent in all, once the publisher has stopped.
    sent: AtomicU32,
}

/// What happened, after [`Reference::finish`] checked every player got
/// every frame.
pub struct Report {
    /// When each frame was written to the server.
    pub sent_at: Vec<Instant>,
    /// What each player got: every frame, in order.
    pub players: Vec<Vec<Arrival>>,
}

impl Reference {
    /// Publishes [`STREAM`], starts `options.players` players and waits
    /// until each has the first keyframe (so players on every shard are
    /// subscribed), then paces frames until [`Reference::finish`].
    pub fn start(addr: SocketAddr, options: Options) -> Reference {
        let mut publisher = Client::connect(addr, APP);
        let stream_id = publisher.publish(STREAM);
        let mut players: Vec<Client> = (0..options.players)
            .map(|_| {
                // Skimming: 16 bytes hold the frame number.
                let mut player = Client::connect_skimming(addr, APP, 16);
                player.play(STREAM);
                player
            })
            .collect();
        publisher.send(stream_id, &media::avc_header());
        publisher.send(
            stream_id,
            &media::video(0, options.gop, options.frame_bytes),
        );
        let started = Instant::now();
        let mut first = Vec::new();
        for player in &mut players {
            let got = player.collect_media(2);
            assert_eq!(frame_number(&got[1]), Some(0), "frame 0 first");
            first.push(Arrival {
                frame: 0,
                at: Instant::now(),
            });
        }
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            sent: AtomicU32::new(u32::MAX),
        });
        let players = players
            .into_iter()
            .zip(first)
            .map(|(player, first)| {
                let shared = shared.clone();
                std::thread::spawn(move || watch(player, first, &shared))
            })
            .collect();
        let publisher = {
            let shared = shared.clone();
            std::thread::spawn(move || pace(publisher, stream_id, started, options, &shared))
        };
        Reference {
            shared,
            publisher,
            players,
        }
    }

    /// Stops the publisher, waits for the players to get its last frame
    /// and asserts each got every frame, in order.
    pub fn finish(self) -> Report {
        self.shared.stop.store(true, Ordering::SeqCst);
        let sent_at = self.publisher.join().expect("the publisher ran to the end");
        let players: Vec<Vec<Arrival>> = self
            .players
            .into_iter()
            .map(|p| p.join().expect("the player ran to the end"))
            .collect();
        let expected = sent_at.len() as u32;
        for (i, got) in players.iter().enumerate() {
            assert_no_gaps(i, got, expected);
        }
        Report { sent_at, players }
    }
}

impl Report {
    /// The 99th percentile of every frame's latency to every player.
    pub fn latency_p99(&self) -> Duration {
        let mut latencies: Vec<Duration> = self
            .players
            .iter()
            .flatten()
            .filter_map(|a| {
                let sent = *self.sent_at.get(a.frame as usize)?;
                Some(a.at.saturating_duration_since(sent))
            })
            .collect();
        latencies.sort_unstable();
        let at = (latencies.len() * 99 / 100).min(latencies.len().saturating_sub(1));
        latencies.get(at).copied().unwrap_or_default()
    }

    /// The longest a frame sent at or after `since` took to reach any
    /// player.
    pub fn latency_max_since(&self, since: Instant) -> Duration {
        self.players
            .iter()
            .flatten()
            .filter_map(|a| {
                let sent = *self.sent_at.get(a.frame as usize)?;
                (sent >= since).then(|| a.at.saturating_duration_since(sent))
            })
            .max()
            .unwrap_or_default()
    }
}

fn assert_no_gaps(player: usize, got: &[Arrival], expected: u32) {
    let frames: Vec<u32> = got.iter().map(|a| a.frame).collect();
    if frames.iter().copied().eq(0..expected) {
        return;
    }
    let first_wrong = frames
        .iter()
        .zip(0..)
        .find(|(got, want)| **got != *want)
        .map(|(got, want)| format!("frame {want} was {got}"));
    panic!(
        "player {player} got {} of {expected} frames; first difference: {}",
        frames.len(),
        first_wrong.unwrap_or_else(|| "missing at the end".into())
    );
}

/// The publisher's thread: frame n goes out at `started + n / fps`,
/// reading what the server sends in between (acknowledgements, pings).
/// Returns when each frame was sent.
fn pace(
    mut publisher: Client,
    stream_id: MessageStreamId,
    started: Instant,
    options: Options,
    shared: &Shared,
) -> Vec<Instant> {
    let period = Duration::from_secs(1) / options.fps;
    let mut sent_at = vec![started];
    let mut n = 1u32;
    while !shared.stop.load(Ordering::SeqCst) {
        let due = started + period * n;
        loop {
            let left = due.saturating_duration_since(Instant::now());
            if left < Duration::from_millis(1) {
                break;
            }
            publisher.pump(left.min(Duration::from_millis(10)));
            publisher.events.clear();
        }
        publisher.send(
            stream_id,
            &media::video(n, options.gop, options.frame_bytes),
        );
        sent_at.push(Instant::now());
        n += 1;
    }
    shared.sent.store(n, Ordering::SeqCst);
    sent_at
}

/// A player's thread: records each video frame until it has the last one
/// sent, or [`TIMEOUT`] after the publisher stopped.
fn watch(mut player: Client, first: Arrival, shared: &Shared) -> Vec<Arrival> {
    let mut got = vec![first];
    let mut deadline = None;
    loop {
        let sent = shared.sent.load(Ordering::SeqCst);
        if sent != u32::MAX {
            if got.last().is_some_and(|a| a.frame + 1 >= sent) {
                return got;
            }
            let deadline = *deadline.get_or_insert_with(|| Instant::now() + TIMEOUT);
            if Instant::now() > deadline {
                return got;
            }
        }
        player.pump(Duration::from_millis(20));
        let at = Instant::now();
        for media in player.take_media() {
            if let Some(frame) = frame_number(&media) {
                got.push(Arrival { frame, at });
            }
        }
        player.events.clear();
    }
}

/// The whole server's counters.
pub fn totals(server: &ServerHandle) -> ShardSnapshot {
    server.stats().into_iter().sum()
}

/// Polls the server's counters until `done` holds; panics with them after
/// [`TIMEOUT`].
pub fn wait_for_totals(
    server: &ServerHandle,
    what: &str,
    done: impl Fn(&ShardSnapshot) -> bool,
) -> ShardSnapshot {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let now = totals(server);
        if done(&now) {
            return now;
        }
        assert!(Instant::now() < deadline, "{what}: counters are {now:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A new publisher and player on a stream of their own: the server still
/// serves newcomers after an attack.
pub fn assert_fresh_stream_works(addr: SocketAddr, name: &str) {
    let mut publisher = Client::connect(addr, APP);
    let stream_id = publisher.publish(name);
    let mut player = Client::connect(addr, APP);
    player.play(name);
    publisher.send(stream_id, &media::avc_header());
    publisher.send(stream_id, &media::video(0, 1000, 100));
    // Frame 0 first: then a player on another shard has subscribed, and
    // the interframes after it cannot be missed.
    let got = player.collect_media(2);
    assert_eq!(frame_number(&got[1]), Some(0), "{name}: frame 0");
    for n in 1..4 {
        publisher.send(stream_id, &media::video(n, 1000, 100));
    }
    let frames: Vec<Option<u32>> = player.collect_media(3).iter().map(frame_number).collect();
    assert_eq!(
        frames,
        vec![Some(1), Some(2), Some(3)],
        "{name}: live frames"
    );
}
