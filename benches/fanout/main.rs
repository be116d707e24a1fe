//! Fan-out: what it costs one shard to deliver a published stream to N
//! players (DESIGN.md, performance plan, points 1 and 2): frames/s and
//! bytes/s per core, shard CPU per delivered GB, and allocations per
//! delivered frame.
//!
//! `cargo bench --bench fanout [-- --players 1,100,1000 --frames 600
//! --window-kb 2048,0 --json FILE --shapes]`
//!
//! ## Method
//! Each round starts the real server in-process on 127.0.0.1:0 with one
//! shard, so every figure is per core. One publisher (a
//! [`ClientSession`](ringcast::session::ClientSession) over a blocking
//! socket, on its own thread) publishes `live/bench`: AVC and AAC sequence
//! headers, then video frames (10 KB, a keyframe every 60) 33 ms apart and
//! audio frames (300 B) on their own 44.1 kHz clock (one per 23.2 ms),
//! interleaved by timestamp as an encoder sends them: a video frame and
//! the audio due since the one before make a batch. N players, all on one thread running a
//! tokio-uring runtime (one task per connection), handshake, `connect`,
//! `createStream` and `play` with a `ClientSession`, wait for `Play.Start`
//! and both sequence headers, and from then on only count the bytes they
//! read into a reused buffer.
//!
//! The publisher runs at most a window of stream bytes ahead of what the
//! players have received on average, so every player queue stays far below
//! the server's bound: nothing may be dropped, and every player must
//! receive exactly the packaged bytes of every frame (computed with
//! [`Frame::package`](ringcast::media::Frame::package); checked). Two
//! windows run by default:
//! - 2 MiB, *saturated*: the shard is the bottleneck and each player's
//!   writev carries what one 64 KiB read of the publisher brought;
//! - 0, *lockstep*: each batch (a video frame and the audio before it)
//!   reaches every player before the next is sent, as a live stream at its real rate looks to the shard
//!   (one small batch per read, one writev per player per batch).
//!
//! Each configuration runs `--repeat` times (3) on a fresh server; the
//! tables show the median round by shard CPU per GB, and that figure for
//! every round, since other work on the machine moves it.
//!
//! The measured window runs from the publisher's first frame until every
//! player has received everything. Over it we read:
//! - CPU time of the shard thread (`shard-0`) and the player thread, from
//!   `/proc/self/task/<tid>/schedstat` (ns), and the shard's user/kernel
//!   split from `stat`; loopback delivers in the writer's context, so the
//!   shard's figure includes the kernel's TCP send and receive path;
//! - allocations made on shard threads, by a counting global allocator
//!   around mimalloc (the server's allocator), and their shapes
//!   (`--shapes`), which tell tokio-uring's per-`writev` iovec arrays from
//!   the per-frame buffers;
//! - the heap shard threads hold (bytes allocated less bytes freed there,
//!   by the counting allocator): "heap per player" is that figure once
//!   every player has received everything, less the figure just before the
//!   players connected, divided by N. It includes what the stream itself
//!   came to hold meanwhile (the GOP cache, up to a GOP of frames), which
//!   dominates at small N;
//! - the shard ring's submission count (`/proc/self/fdinfo`, `SqHead`):
//!   one per write or writev (plus the publisher's few reads), so
//!   submissions per delivered frame show how many frames share a write.
//!
//! A "frame" is one media message (video or audio); a "delivered frame" is
//! one frame received by one player. The marginal table divides the
//! difference between two rounds by the frames the added players received:
//! the cost of one more subscriber per frame.
// Tests and benches fail by panicking on what they did not expect.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ringcast::config::Config;
use ringcast::server::{self, ServerHandle};
use ringcast::shard::stats::ShardSnapshot;
use ringcast::startup;

mod counting;
mod players;
mod publisher;
mod report;
mod threads;
mod workload;

#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting;

/// Pacing windows of the default run: saturated, and lockstep.
const WINDOWS_KB_DEFAULT: [u64; 2] = [2048, 0];
/// Bytes each player receives per round when `--frames` is not given:
/// enough for a steady state, little enough to keep the default run well
/// under a minute on two cores. Lockstep is slower per byte (a round trip
/// per batch), so it gets less.
const ROUND_BYTES_SATURATED: u64 = 1 << 30;
const ROUND_BYTES_LOCKSTEP: u64 = 64 << 20;
/// Five GOPs at least.
const FRAMES_MIN: u64 = 300;
/// Rounds per configuration by default; the table shows the median (by
/// shard CPU per GB) and the range. The machine is shared, so one round
/// alone can be far off.
const REPEAT_DEFAULT: usize = 3;
/// At 33 ms a frame, timestamps stay under 2^24 ms (no extended
/// timestamps, so every frame's packaged size is the same).
const FRAMES_MAX: u64 = 200_000;

fn main() {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("fanout: {message}\n{}", Args::USAGE);
            std::process::exit(2);
        }
    };
    let mut results = Vec::new();
    for &window_bytes in &args.windows_bytes {
        for &players in &args.players {
            match run_median(&args, players, window_bytes) {
                Ok(result) => results.push(result),
                Err(message) => {
                    eprintln!("fanout: N = {players}: {message}");
                    std::process::exit(1);
                }
            }
        }
    }
    report::table(&results);
    if args.shapes {
        report::shapes(&results);
    }
    if let Some(path) = &args.json {
        if let Err(error) = std::fs::write(path, report::json(&results)) {
            eprintln!("fanout: writing {}: {error}", path.display());
            std::process::exit(1);
        }
    }
}

/// Command-line settings.
struct Args {
    players: Vec<usize>,
    frames: Option<u64>,
    windows_bytes: Vec<u64>,
    repeat: usize,
    json: Option<PathBuf>,
    shapes: bool,
    timeout: Duration,
}

impl Args {
    const USAGE: &str = "usage: fanout [--players 1,100,1000] [--frames VIDEO_FRAMES] \
                         [--window-kb 2048,0] [--repeat 3] [--timeout-s 60] [--json FILE] [--shapes]";

    fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
        let mut parsed = Args {
            players: vec![1, 100, 1000],
            frames: None,
            windows_bytes: WINDOWS_KB_DEFAULT.iter().map(|kb| kb * 1024).collect(),
            repeat: REPEAT_DEFAULT,
            json: None,
            shapes: false,
            timeout: Duration::from_secs(60),
        };
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or(format!("{arg} needs a value"));
            match arg.as_str() {
                "--players" => parsed.players = parse_list(&value()?)?,
                "--frames" => parsed.frames = Some(parse_number(&value()?)?.min(FRAMES_MAX)),
                "--window-kb" => {
                    let kb = parse_list(&value()?)?;
                    parsed.windows_bytes = kb.iter().map(|&kb| kb as u64 * 1024).collect();
                }
                "--repeat" => parsed.repeat = parse_number(&value()?)?.max(1) as usize,
                "--timeout-s" => parsed.timeout = Duration::from_secs(parse_number(&value()?)?),
                "--json" => parsed.json = Some(PathBuf::from(value()?)),
                "--shapes" => parsed.shapes = true,
                // What `cargo bench` passes to every bench target.
                "--bench" => {}
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        if parsed.players.is_empty() || parsed.players.contains(&0) {
            return Err("--players needs counts of at least 1".into());
        }
        Ok(parsed)
    }

    /// Video frames to publish to `players` at this window.
    fn frames_for(&self, players: usize, window_bytes: u64) -> u64 {
        self.frames.unwrap_or_else(|| {
            let round_bytes = if window_bytes == 0 {
                ROUND_BYTES_LOCKSTEP
            } else {
                ROUND_BYTES_SATURATED
            };
            let per_frame = players as u64 * workload::Workload::new(0).bytes_per_frame();
            (round_bytes / per_frame).clamp(FRAMES_MIN, FRAMES_MAX)
        })
    }
}

fn parse_number(text: &str) -> Result<u64, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not a number"))
}

fn parse_list(text: &str) -> Result<Vec<usize>, String> {
    text.split(',')
        .map(|n| {
            n.trim()
                .parse()
                .map_err(|_| format!("{n:?} is not a count"))
        })
        .collect()
}

/// Counters the publisher, the players and the coordinator share.
#[derive(Default)]
struct Shared {
    /// The publisher has published the stream and its headers.
    published: AtomicBool,
    /// Players that have `Play.Start` and both sequence headers.
    ready: AtomicUsize,
    /// Players that have received every frame.
    done: AtomicUsize,
    failed: AtomicUsize,
    /// Bytes all players received after they were ready.
    live_bytes: AtomicU64,
    /// Set by the coordinator: the publisher may start.
    go: AtomicBool,
    /// Set by the coordinator: stop everything (measured, or gave up).
    release: AtomicBool,
    first_error: std::sync::Mutex<Option<String>>,
}

impl Shared {
    fn fail(&self, error: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut first) = self.first_error.lock() {
            first.get_or_insert(error);
        }
    }

    fn error(&self) -> String {
        self.first_error
            .lock()
            .ok()
            .and_then(|e| e.clone())
            .unwrap_or_else(|| "no error recorded".into())
    }
}

/// What one round measured, over its window.
struct RoundResult {
    players: usize,
    window_bytes: u64,
    /// Media messages: video frames and the audio frames between them.
    frames_published: u64,
    /// For all players together.
    bytes_expected: u64,
    bytes_delivered: u64,
    wall: Duration,
    shard: threads::Cpu,
    players_cpu: Duration,
    process_cpu: Duration,
    allocs: counting::Totals,
    /// Heap the shard holds with the players playing, less what it held
    /// before they connected, per player (see [`counting`]).
    heap_per_player: f64,
    /// Operations submitted to the shard's ring (writes and reads).
    submissions: Option<u64>,
    /// The shard's counters over the window.
    server: ShardSnapshot,
    shapes: Vec<counting::Shape>,
    /// Shard CPU s per GB of every round of this configuration, sorted.
    repeats_s_per_gb: Vec<f64>,
}

/// Runs one configuration `args.repeat` times; the median round, by shard
/// CPU per GB, with every round's figure.
fn run_median(args: &Args, players: usize, window_bytes: u64) -> Result<RoundResult, String> {
    let mut rounds = Vec::with_capacity(args.repeat);
    for _ in 0..args.repeat {
        rounds.push(run_round(args, players, window_bytes)?);
    }
    rounds.sort_by(|a, b| {
        a.shard_seconds_per_gb()
            .total_cmp(&b.shard_seconds_per_gb())
    });
    let all: Vec<f64> = rounds
        .iter()
        .map(RoundResult::shard_seconds_per_gb)
        .collect();
    let mut median = rounds.swap_remove(rounds.len() / 2);
    median.repeats_s_per_gb = all;
    Ok(median)
}

/// One server, one publisher, `players` players: publish, wait for
/// delivery, measure, stop everything (whatever happened).
fn run_round(args: &Args, players: usize, window_bytes: u64) -> Result<RoundResult, String> {
    let workload = workload::Workload::new(args.frames_for(players, window_bytes));
    let server = start_server(players)?;
    let addr = *server
        .local_addrs()
        .first()
        .ok_or("the server listens nowhere")?;
    let shared = Arc::new(Shared::default());
    let pacing = publisher::Pacing {
        players: players as u64,
        window_bytes,
    };
    let mut playing = None;
    let publishing = publisher::spawn(addr, workload.clone(), pacing, shared.clone());
    let outcome = publishing.as_ref().map_err(Clone::clone).and_then(|_| {
        let shard_tid = threads::find("shard-0")?;
        wait_until(args.timeout, &shared, "the publisher", || {
            shared.published.load(Ordering::Relaxed)
        })?;
        let live_bytes = workload.live_bytes();
        let heap_before_players = counting::live_bytes();
        playing = Some(players::spawn(addr, players, live_bytes, shared.clone())?);
        let window = measure(args, &server, shard_tid, &shared, players)?;
        Ok((window, heap_before_players))
    });
    shared.release.store(true, Ordering::Relaxed);
    let publisher_result = publishing.map(|thread| thread.join());
    let players_result = playing.map(|thread| thread.join());
    server.shutdown();
    let (window, heap_before_players) = outcome?;
    match publisher_result {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(error))) => return Err(format!("publisher: {error}")),
        _ => return Err("the publisher thread panicked".into()),
    }
    if let Some(Err(_)) = players_result {
        return Err("the players thread panicked".into());
    }
    Ok(RoundResult {
        players,
        window_bytes,
        frames_published: workload.messages(),
        bytes_expected: players as u64 * workload.live_bytes(),
        bytes_delivered: shared.live_bytes.load(Ordering::Relaxed),
        wall: window.after.at - window.before.at,
        shard: window.after.shard.since(&window.before.shard),
        players_cpu: (window.after.players_cpu).saturating_sub(window.before.players_cpu),
        process_cpu: (window.after.process_cpu).saturating_sub(window.before.process_cpu),
        allocs: window.after.allocs.since(&window.before.allocs),
        heap_per_player: (window.after.heap_bytes - heap_before_players) as f64 / players as f64,
        submissions: (window.after.submissions)
            .zip(window.before.submissions)
            .map(|(a, b)| u64::from(a.wrapping_sub(b))),
        server: server_delta(&window.before.server, &window.after.server),
        shapes: window.shapes,
        repeats_s_per_gb: Vec::new(),
    })
}

fn start_server(players: usize) -> Result<ServerHandle, String> {
    let mut config = Config {
        listen: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
        shards: Some(1),
        connections_max: players + 16,
        admin: None,
        ..Config::default()
    };
    config.http.listen = Vec::new();
    config.timeouts.shutdown = Duration::from_secs(2);
    let prepared = startup::prepare(config).map_err(|e| format!("preparing the server: {e}"))?;
    server::start(prepared).map_err(|e| format!("starting the server: {e}"))
}

/// The measured window's edges.
struct Window {
    before: Snapshot,
    after: Snapshot,
    shapes: Vec<counting::Shape>,
}

/// Waits for the players, opens the window, lets the publisher go, waits
/// for delivery, closes the window.
fn measure(
    args: &Args,
    server: &ServerHandle,
    shard_tid: i32,
    shared: &Shared,
    players: usize,
) -> Result<Window, String> {
    wait_until(args.timeout, shared, "players ready", || {
        shared.ready.load(Ordering::Relaxed) == players
    })?;
    let players_tid = threads::find(players::THREAD_NAME)?;
    counting::clear_shapes();
    let before = Snapshot::take(server, shard_tid, players_tid);
    shared.go.store(true, Ordering::Relaxed);
    wait_until(args.timeout, shared, "delivery", || {
        shared.done.load(Ordering::Relaxed) == players
    })?;
    let after = Snapshot::take(server, shard_tid, players_tid);
    Ok(Window {
        before,
        after,
        shapes: counting::shapes(),
    })
}

fn wait_until(
    timeout: Duration,
    shared: &Shared,
    what: &str,
    done: impl Fn() -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    while !done() {
        if shared.failed.load(Ordering::Relaxed) > 0 {
            return Err(format!("waiting for {what}: {}", shared.error()));
        }
        if Instant::now() > deadline {
            return Err(format!("timed out after {timeout:?} waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

/// Everything read at one edge of the measured window.
struct Snapshot {
    at: Instant,
    shard: threads::Cpu,
    players_cpu: Duration,
    process_cpu: Duration,
    allocs: counting::Totals,
    /// Heap held by the shard thread.
    heap_bytes: i64,
    submissions: Option<u32>,
    server: ShardSnapshot,
}

/// The shard's ring size (`shard::RING_ENTRIES`, private): how its
/// `fdinfo` is told from the players' ring.
const SHARD_RING_ENTRIES: u32 = 4096;

impl Snapshot {
    fn take(server: &ServerHandle, shard_tid: i32, players_tid: i32) -> Snapshot {
        Snapshot {
            at: Instant::now(),
            shard: threads::Cpu::of(shard_tid),
            players_cpu: threads::Cpu::of(players_tid).on_cpu,
            process_cpu: threads::process_cpu(),
            allocs: counting::totals(),
            heap_bytes: counting::live_bytes(),
            submissions: threads::ring_submissions(SHARD_RING_ENTRIES),
            server: server.stats().first().copied().unwrap_or_default(),
        }
    }
}

fn server_delta(before: &ShardSnapshot, after: &ShardSnapshot) -> ShardSnapshot {
    ShardSnapshot {
        bytes_in: after.bytes_in - before.bytes_in,
        bytes_out: after.bytes_out - before.bytes_out,
        frames_in: after.frames_in - before.frames_in,
        frames_dropped: after.frames_dropped - before.frames_dropped,
        slow_disconnects: after.slow_disconnects - before.slow_disconnects,
        ..*after
    }
}
