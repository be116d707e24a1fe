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
//! headers, then video frames (10 KB, a keyframe every 60), each followed
//! by an audio frame (300 B). N players, all on one thread running a
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
//! - 0, *lockstep*: each video + audio pair reaches every player before the
//!   next is sent, as a live stream at its real rate looks to the shard
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
//! - the shard ring's submission count (`/proc/self/fdinfo`, `SqHead`):
//!   one per write or writev (plus the publisher's few reads), so
//!   submissions per delivered frame show how many frames share a write.
//!
//! A "frame" is one media message (video or audio); a "delivered frame" is
//! one frame received by one player. The marginal table divides the
//! difference between two rounds by the frames the added players received:
//! the cost of one more subscriber per frame.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ringcast::config::Config;
use ringcast::server::{self, ServerHandle};
use ringcast::shard::stats::ShardSnapshot;
use ringcast::startup;

#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting;

/// Pacing windows of the default run: saturated, and lockstep.
const WINDOWS_KB_DEFAULT: [u64; 2] = [2048, 0];
/// Bytes each player receives per round when `--frames` is not given:
/// enough for a steady state, little enough to keep the default run well
/// under a minute on two cores. Lockstep is slower per byte (a round trip
/// per frame pair), so it gets less.
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
            let per_frame = players as u64 * workload::Workload::new(0).pair_wire_bytes();
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
    /// Media messages: video frames and as many audio frames.
    frames_published: u64,
    /// For all players together.
    bytes_expected: u64,
    bytes_delivered: u64,
    wall: Duration,
    shard: threads::Cpu,
    players_cpu: Duration,
    process_cpu: Duration,
    allocs: counting::Totals,
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
        pair_bytes: workload.pair_wire_bytes(),
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
        playing = Some(players::spawn(addr, players, live_bytes, shared.clone())?);
        measure(args, &server, shard_tid, &shared, players)
    });
    shared.release.store(true, Ordering::Relaxed);
    let publisher_result = publishing.map(|thread| thread.join());
    let players_result = playing.map(|thread| thread.join());
    server.shutdown();
    let window = outcome?;
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
        frames_published: 2 * workload.frames(),
        bytes_expected: players as u64 * workload.live_bytes(),
        bytes_delivered: shared.live_bytes.load(Ordering::Relaxed),
        wall: window.after.at - window.before.at,
        shard: window.after.shard.since(&window.before.shard),
        players_cpu: (window.after.players_cpu).saturating_sub(window.before.players_cpu),
        process_cpu: (window.after.process_cpu).saturating_sub(window.before.process_cpu),
        allocs: window.after.allocs.since(&window.before.allocs),
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
        max_connections: players + 16,
        ..Config::default()
    };
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

/// The published stream: sizes, bodies, and the bytes every player gets.
mod workload {
    use bytes::Bytes;
    use ringcast::config::Config;
    use ringcast::media::Frame;
    use ringcast::protocol::Timestamp;
    use ringcast::session::{Media, MediaKind};

    const VIDEO_BYTES: usize = 10_000;
    const AUDIO_BYTES: usize = 300;
    /// A keyframe every 60 video frames (2 s at 30 fps).
    const GOP_FRAMES: u64 = 60;
    /// Video frame interval, ms (30 fps).
    const FRAME_MS: u64 = 33;

    #[derive(Clone)]
    pub struct Workload {
        frames: u64,
        keyframe: Bytes,
        interframe: Bytes,
        audio: Bytes,
        pair_wire_bytes: u64,
    }

    impl Workload {
        pub fn new(frames: u64) -> Workload {
            let video = |first: u8| {
                let mut body = vec![0u8; VIDEO_BYTES];
                body[0] = first;
                body[1] = 1; // AVC NALU
                Bytes::from(body)
            };
            let mut audio = vec![0u8; AUDIO_BYTES];
            audio[..2].copy_from_slice(&[0xAF, 1]); // AAC raw
            let mut workload = Workload {
                frames,
                keyframe: video(0x17),
                interframe: video(0x27),
                audio: Bytes::from(audio),
                pair_wire_bytes: 0,
            };
            let chunk_size = Config::default().chunk_size;
            let packaged = |m: &Media| {
                Frame::package(m.kind, m.timestamp, m.payload.clone(), chunk_size)
                    .expect("a 10 KB frame packages")
                    .len() as u64
            };
            workload.pair_wire_bytes = workload.pair(1).iter().map(packaged).sum();
            workload
        }

        /// Video frames; each is followed by one audio frame.
        pub fn frames(&self) -> u64 {
            self.frames
        }

        /// Video frame `n` and the audio frame after it.
        pub fn pair(&self, n: u64) -> [Media; 2] {
            let timestamp = Timestamp((n * FRAME_MS) as u32);
            let video = if n % GOP_FRAMES == 0 {
                &self.keyframe
            } else {
                &self.interframe
            };
            [
                Media {
                    kind: MediaKind::Video,
                    timestamp,
                    payload: video.clone(),
                },
                Media {
                    kind: MediaKind::Audio,
                    timestamp,
                    payload: self.audio.clone(),
                },
            ]
        }

        /// AVC and AAC sequence headers, sent before the players join.
        pub fn headers() -> [Media; 2] {
            let avc: &[u8] = &[
                0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1F, 0xFF, 0xE1, 0, 4, 0x67, 0x64, 0, 0x1F,
            ];
            let aac: &[u8] = &[0xAF, 0, 0x12, 0x10];
            [(MediaKind::Video, avc), (MediaKind::Audio, aac)].map(|(kind, body)| Media {
                kind,
                timestamp: Timestamp(0),
                payload: Bytes::from_static(body),
            })
        }

        /// Bytes the server puts on the wire for one video frame and the
        /// audio frame after it, packaged as the server packages them
        /// (the same for every pair: no extended timestamps).
        pub fn pair_wire_bytes(&self) -> u64 {
            self.pair_wire_bytes
        }

        /// Bytes each player must receive once the publisher starts.
        pub fn live_bytes(&self) -> u64 {
            self.frames * self.pair_wire_bytes
        }
    }
}

/// A global allocator that counts what shard threads allocate (threads
/// named `shard-*`), total and by shape (kind, size, alignment), and passes
/// every call on to mimalloc.
mod counting {
    use std::alloc::{GlobalAlloc, Layout};
    use std::cell::Cell;
    use std::sync::atomic::{AtomicU64, Ordering};

    use mimalloc::MiMalloc;

    pub struct Counting;

    /// Allocation totals on shard threads since the process started.
    #[derive(Clone, Copy)]
    pub struct Totals {
        pub count: u64,
        pub bytes: u64,
    }

    impl Totals {
        pub fn since(&self, before: &Totals) -> Totals {
            Totals {
                count: self.count - before.count,
                bytes: self.bytes - before.bytes,
            }
        }
    }

    /// How often one shape of allocation happened since the last clear.
    pub struct Shape {
        pub kind: &'static str,
        pub size: usize,
        pub align: usize,
        pub count: u64,
    }

    impl Shape {
        /// An array of two or more `iovec`s (16 bytes, align 8): what
        /// tokio-uring's `writev` allocates per call. A guess by shape;
        /// `--shapes` shows what else is that shape.
        pub fn is_iovec_array(&self) -> bool {
            self.kind == "alloc" && self.align == 8 && self.size >= 32 && self.size % 16 == 0
        }
    }

    static COUNT: AtomicU64 = AtomicU64::new(0);
    static BYTES: AtomicU64 = AtomicU64::new(0);

    /// Open-addressed table of shapes (key 0: free slot), written only by
    /// shard threads. Shapes past its capacity count in the totals only.
    const SHAPES_MAX: usize = 1024;
    static SHAPE_KEYS: [AtomicU64; SHAPES_MAX] = [const { AtomicU64::new(0) }; SHAPES_MAX];
    static SHAPE_COUNTS: [AtomicU64; SHAPES_MAX] = [const { AtomicU64::new(0) }; SHAPES_MAX];

    const KIND_ALLOC: u64 = 1;
    const KIND_REALLOC: u64 = 2;

    /// Whether this thread's allocations count: not yet known, yes, no, or
    /// being found out (an allocation made while finding out, if any, is
    /// not counted and does not recurse).
    const UNKNOWN: u8 = 0;
    const COUNTED: u8 = 1;
    const IGNORED: u8 = 2;
    const CHECKING: u8 = 3;

    thread_local! {
        // A const-initialised Cell: no allocation, no destructor.
        static ROLE: Cell<u8> = const { Cell::new(UNKNOWN) };
    }

    fn counted() -> bool {
        ROLE.try_with(|role| match role.get() {
            COUNTED => true,
            IGNORED | CHECKING => false,
            _ => {
                role.set(CHECKING);
                let shard = std::thread::current()
                    .name()
                    .is_some_and(|name| name.starts_with("shard-"));
                role.set(if shard { COUNTED } else { IGNORED });
                shard
            }
        })
        .unwrap_or(false)
    }

    fn record(kind: u64, layout: Layout) {
        if !counted() {
            return;
        }
        COUNT.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        let key =
            ((layout.size() as u64) << 16) | ((layout.align().trailing_zeros() as u64) << 8) | kind;
        let mut slot = (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 54) as usize % SHAPES_MAX;
        for _ in 0..SHAPES_MAX {
            let found = match SHAPE_KEYS[slot].compare_exchange(
                0,
                key,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => key,
                Err(found) => found,
            };
            if found == key {
                SHAPE_COUNTS[slot].fetch_add(1, Ordering::Relaxed);
                return;
            }
            slot = (slot + 1) % SHAPES_MAX;
        }
    }

    // SAFETY: every call is passed on unchanged to mimalloc; counting
    // touches only atomics and a const thread-local.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            record(KIND_ALLOC, layout);
            // SAFETY: the caller's contract, passed on.
            unsafe { MiMalloc.alloc(layout) }
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            record(KIND_ALLOC, layout);
            // SAFETY: the caller's contract, passed on.
            unsafe { MiMalloc.alloc_zeroed(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: the caller's contract, passed on.
            unsafe { MiMalloc.dealloc(ptr, layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            if let Ok(new) = Layout::from_size_align(new_size, layout.align()) {
                record(KIND_REALLOC, new);
            }
            // SAFETY: the caller's contract, passed on.
            unsafe { MiMalloc.realloc(ptr, layout, new_size) }
        }
    }

    pub fn totals() -> Totals {
        Totals {
            count: COUNT.load(Ordering::Relaxed),
            bytes: BYTES.load(Ordering::Relaxed),
        }
    }

    /// Forgets the shapes counted so far (call while shards are idle).
    pub fn clear_shapes() {
        for count in &SHAPE_COUNTS {
            count.store(0, Ordering::Relaxed);
        }
    }

    /// Shapes seen since the last clear, most frequent first.
    pub fn shapes() -> Vec<Shape> {
        let mut shapes: Vec<Shape> = SHAPE_KEYS
            .iter()
            .zip(&SHAPE_COUNTS)
            .map(|(key, count)| (key.load(Ordering::Relaxed), count.load(Ordering::Relaxed)))
            .filter(|&(key, count)| key != 0 && count > 0)
            .map(|(key, count)| Shape {
                kind: if key & 0xFF == KIND_REALLOC {
                    "realloc"
                } else {
                    "alloc"
                },
                size: (key >> 16) as usize,
                align: 1 << ((key >> 8) & 0xFF),
                count,
            })
            .collect();
        shapes.sort_by_key(|s| std::cmp::Reverse(s.count));
        shapes
    }
}

/// Threads, their CPU time and the shard's io_uring, from `/proc`.
mod threads {
    use std::time::Duration;

    /// The id of this process's thread named `name`.
    pub fn find(name: &str) -> Result<i32, String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let tasks = std::fs::read_dir("/proc/self/task")
                .map_err(|e| format!("reading /proc/self/task: {e}"))?;
            for task in tasks.flatten() {
                let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
                if comm.trim_end() == name {
                    if let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) {
                        return Ok(tid);
                    }
                }
            }
            if std::time::Instant::now() > deadline {
                return Err(format!("no thread named {name:?}"));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// CPU time of one thread.
    #[derive(Clone, Copy, Default)]
    pub struct Cpu {
        /// Nanoseconds on CPU (`schedstat`); utime + stime where the
        /// kernel has no schedstat.
        pub on_cpu: Duration,
        /// Clock ticks in user space and in the kernel (`stat`): coarse,
        /// for the split only.
        pub user_ticks: u64,
        pub system_ticks: u64,
    }

    impl Cpu {
        pub fn of(tid: i32) -> Cpu {
            let task = format!("/proc/self/task/{tid}");
            let stat = std::fs::read_to_string(format!("{task}/stat")).unwrap_or_default();
            // Fields 14 and 15, counted after the command name (which may
            // hold spaces).
            let after_comm = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            let fields: Vec<&str> = after_comm.split_whitespace().collect();
            let ticks = |i: usize| fields.get(i).and_then(|f| f.parse().ok()).unwrap_or(0);
            let (user_ticks, system_ticks) = (ticks(11), ticks(12));
            let schedstat = std::fs::read_to_string(format!("{task}/schedstat")).ok();
            let on_cpu = match schedstat.and_then(|s| s.split_whitespace().next()?.parse().ok()) {
                Some(ns) => Duration::from_nanos(ns),
                None => {
                    // SAFETY: sysconf has no preconditions.
                    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
                    Duration::from_nanos((user_ticks + system_ticks) * 1_000_000_000 / per_second)
                }
            };
            Cpu {
                on_cpu,
                user_ticks,
                system_ticks,
            }
        }

        pub fn since(&self, before: &Cpu) -> Cpu {
            Cpu {
                on_cpu: self.on_cpu.saturating_sub(before.on_cpu),
                user_ticks: self.user_ticks.saturating_sub(before.user_ticks),
                system_ticks: self.system_ticks.saturating_sub(before.system_ticks),
            }
        }

        /// Share of the time spent in user space, if enough ticks (half a
        /// second at the usual 100 Hz) passed for it to mean something.
        pub fn user_share(&self) -> Option<f64> {
            let total = self.user_ticks + self.system_ticks;
            (total >= 50).then(|| self.user_ticks as f64 / total as f64)
        }
    }

    /// CPU time of the whole process (every thread, live or ended).
    pub fn process_cpu() -> Duration {
        let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: getrusage fills the struct we own.
        let usage = unsafe {
            libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
            usage.assume_init()
        };
        let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
        Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
    }

    /// Submissions so far on the io_uring with `entries` submission slots
    /// (its `SqHead`, a wrapping count), if exactly one such ring is open.
    pub fn ring_submissions(entries: u32) -> Option<u32> {
        let mask = format!("{:#x}", entries - 1);
        let mut found = None;
        for fd in std::fs::read_dir("/proc/self/fd").ok()?.flatten() {
            let target = std::fs::read_link(fd.path()).unwrap_or_default();
            if target.to_str() != Some("anon_inode:[io_uring]") {
                continue;
            }
            let info = std::fs::read_to_string(format!(
                "/proc/self/fdinfo/{}",
                fd.file_name().to_string_lossy()
            ))
            .unwrap_or_default();
            if field(&info, "SqMask") != Some(mask.as_str()) {
                continue;
            }
            if found.is_some() {
                return None;
            }
            found = field(&info, "SqHead").and_then(|h| h.parse().ok());
        }
        found
    }

    fn field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
        info.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    }
}

/// The publisher: a blocking socket and a [`ClientSession`] on its own
/// thread.
mod publisher {
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use std::thread::JoinHandle;
    use std::time::{Duration, Instant};

    use bytes::BytesMut;
    use ringcast::protocol::MessageStreamId;
    use ringcast::protocol::handshake::RANDOM_SIZE;
    use ringcast::session::{ClientConfig, ClientEvent, ClientSession};

    use super::Shared;
    use super::workload::Workload;

    pub const THREAD_NAME: &str = "fanout-publish";
    const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
    /// Bytes gathered before one write: a few frames per system call, as
    /// an encoder behind a socket buffer writes.
    const WRITE_BYTES: usize = 64 * 1024;

    /// How far the publisher may run ahead of the players.
    #[derive(Clone, Copy)]
    pub struct Pacing {
        pub players: u64,
        /// Wire bytes of one video + audio pair, per player.
        pub pair_bytes: u64,
        pub window_bytes: u64,
    }

    impl Pacing {
        /// Video frame `n` may go once the players have received, on
        /// average, all but `window_bytes` of the stream before it.
        fn allows(&self, n: u64, received: u64) -> bool {
            let before = n * self.pair_bytes;
            received >= self.players * before.saturating_sub(self.window_bytes)
        }
    }

    /// Connects, publishes `live/bench` with its sequence headers, sets
    /// `shared.published`, waits for `shared.go`, publishes the workload,
    /// and stays connected until `shared.release` (leaving earlier would
    /// send players an unpublish).
    pub fn spawn(
        addr: SocketAddr,
        workload: Workload,
        pacing: Pacing,
        shared: Arc<Shared>,
    ) -> Result<JoinHandle<Result<(), String>>, String> {
        std::thread::Builder::new()
            .name(THREAD_NAME.into())
            .spawn(move || {
                let result = run(addr, &workload, pacing, &shared);
                if let Err(error) = &result {
                    shared.fail(format!("publisher: {error}"));
                }
                result
            })
            .map_err(|e| format!("spawning the publisher: {e}"))
    }

    fn run(
        addr: SocketAddr,
        workload: &Workload,
        pacing: Pacing,
        shared: &Shared,
    ) -> Result<(), String> {
        let mut publisher = Publisher::connect(addr)?;
        shared.published.store(true, Ordering::Relaxed);
        while !shared.go.load(Ordering::Relaxed) {
            if shared.release.load(Ordering::Relaxed) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        publisher.publish(workload, pacing, shared)?;
        while !shared.release.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    struct Publisher {
        socket: TcpStream,
        session: ClientSession,
        input: BytesMut,
        stream_id: MessageStreamId,
    }

    impl Publisher {
        fn connect(addr: SocketAddr) -> Result<Publisher, String> {
            let socket = TcpStream::connect(addr).map_err(|e| format!("connecting: {e}"))?;
            socket.set_nodelay(true).map_err(|e| e.to_string())?;
            let tc_url = format!("rtmp://{addr}/live");
            let config = ClientConfig::new("live", &tc_url);
            let mut publisher = Publisher {
                socket,
                session: ClientSession::new(config, 0, [7; RANDOM_SIZE]),
                input: BytesMut::new(),
                stream_id: MessageStreamId(0),
            };
            publisher.wait_for("connect", |e| matches!(e, ClientEvent::Connected { .. }))?;
            let transaction = publisher
                .session
                .create_stream()
                .map_err(|e| e.to_string())?;
            let created = publisher.wait_for("createStream", |e| {
                matches!(e, ClientEvent::StreamCreated { transaction_id, .. } if *transaction_id == transaction)
            })?;
            if let ClientEvent::StreamCreated { stream_id, .. } = created {
                publisher.stream_id = stream_id;
            }
            let id = publisher.stream_id;
            publisher
                .session
                .publish(id, "bench")
                .map_err(|e| e.to_string())?;
            publisher.wait_for("Publish.Start", ClientEvent::is_publish_start)?;
            for media in Workload::headers() {
                publisher
                    .session
                    .send_media(id, &media)
                    .map_err(|e| e.to_string())?;
            }
            publisher.flush()?;
            Ok(publisher)
        }

        /// Publishes every frame of `workload`, within the pacing window.
        fn publish(
            &mut self,
            workload: &Workload,
            pacing: Pacing,
            shared: &Shared,
        ) -> Result<(), String> {
            let mut out = Vec::with_capacity(2 * WRITE_BYTES);
            for n in 0..workload.frames() {
                if !pacing.allows(n, shared.live_bytes.load(Ordering::Relaxed)) {
                    self.write(&mut out)?;
                    while !pacing.allows(n, shared.live_bytes.load(Ordering::Relaxed)) {
                        if shared.release.load(Ordering::Relaxed) {
                            return Ok(());
                        }
                        std::thread::sleep(Duration::from_micros(100));
                    }
                }
                for media in workload.pair(n) {
                    self.session
                        .send_media(self.stream_id, &media)
                        .map_err(|e| e.to_string())?;
                }
                while let Some(bytes) = self.session.poll_transmit() {
                    out.extend_from_slice(&bytes);
                }
                if out.len() >= WRITE_BYTES {
                    self.write(&mut out)?;
                }
            }
            self.write(&mut out)
        }

        fn write(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
            self.socket
                .write_all(out)
                .map_err(|e| format!("writing frames: {e}"))?;
            out.clear();
            Ok(())
        }

        fn flush(&mut self) -> Result<(), String> {
            while let Some(bytes) = self.session.poll_transmit() {
                self.socket
                    .write_all(&bytes)
                    .map_err(|e| format!("writing: {e}"))?;
            }
            Ok(())
        }

        /// Reads until an event matches `want`.
        fn wait_for(
            &mut self,
            what: &str,
            want: impl Fn(&ClientEvent) -> bool,
        ) -> Result<ClientEvent, String> {
            let deadline = Instant::now() + SETUP_TIMEOUT;
            let mut buffer = vec![0u8; 64 * 1024];
            loop {
                self.flush()?;
                while let Some(event) = self.session.poll_event() {
                    if want(&event) {
                        return Ok(event);
                    }
                }
                if Instant::now() > deadline {
                    return Err(format!("timed out waiting for {what}"));
                }
                self.socket
                    .set_read_timeout(Some(Duration::from_millis(50)))
                    .map_err(|e| e.to_string())?;
                match self.socket.read(&mut buffer) {
                    Ok(0) => return Err(format!("server closed waiting for {what}")),
                    Ok(n) => {
                        self.input.extend_from_slice(&buffer[..n]);
                        self.session
                            .handle_input(&mut self.input)
                            .map_err(|e| e.to_string())?;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(format!("reading: {e}")),
                }
            }
        }
    }
}

/// The players: one thread, one tokio-uring runtime, one task per
/// connection.
mod players {
    use std::net::SocketAddr;
    use std::rc::Rc;
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use std::thread::JoinHandle;
    use std::time::Duration;

    use bytes::BytesMut;
    use ringcast::protocol::handshake::RANDOM_SIZE;
    use ringcast::session::{ClientConfig, ClientEvent, ClientSession, MediaKind};
    use tokio::sync::Notify;
    use tokio_uring::net::TcpStream;

    use super::Shared;

    pub const THREAD_NAME: &str = "fanout-players";
    /// Each player's reused read buffer.
    const READ_BYTES: usize = 64 * 1024;
    /// Not the shard's ring size, so that the shard's ring can be told
    /// apart in `/proc/self/fdinfo`.
    const RING_ENTRIES: u32 = 1024;

    /// Starts `count` players; each counts `live_bytes` into
    /// `shared.live_bytes` once ready, then holds its connection until
    /// `shared.release`.
    pub fn spawn(
        addr: SocketAddr,
        count: usize,
        live_bytes: u64,
        shared: Arc<Shared>,
    ) -> Result<JoinHandle<()>, String> {
        std::thread::Builder::new()
            .name(THREAD_NAME.into())
            .spawn(move || {
                tokio_uring::builder()
                    .entries(RING_ENTRIES)
                    .start(run(addr, count, live_bytes, shared));
            })
            .map_err(|e| format!("spawning the players: {e}"))
    }

    async fn run(addr: SocketAddr, count: usize, live_bytes: u64, shared: Arc<Shared>) {
        let release = Rc::new(Notify::new());
        let tasks: Vec<_> = (0..count)
            .map(|_| tokio_uring::spawn(player(addr, live_bytes, shared.clone(), release.clone())))
            .collect();
        while !shared.release.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        release.notify_waiters();
        for task in tasks {
            let _ = task.await;
        }
    }

    async fn player(addr: SocketAddr, live_bytes: u64, shared: Arc<Shared>, release: Rc<Notify>) {
        let released = release.notified();
        tokio::pin!(released);
        let stream = tokio::select! {
            result = play(addr, live_bytes, &shared) => match result {
                Ok(stream) => stream,
                Err(error) => return shared.fail(format!("player: {error}")),
            },
            () = &mut released => return,
        };
        // Closing now would make the shard work inside the window.
        released.await;
        drop(stream);
    }

    async fn play(addr: SocketAddr, live_bytes: u64, shared: &Shared) -> Result<TcpStream, String> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connecting: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let tc_url = format!("rtmp://{addr}/live");
        let mut session =
            ClientSession::new(ClientConfig::new("live", &tc_url), 0, [7; RANDOM_SIZE]);
        let buffer = start(&stream, &mut session).await?;
        shared.ready.fetch_add(1, Ordering::Relaxed);
        drain(&stream, buffer, live_bytes, shared).await?;
        shared.done.fetch_add(1, Ordering::Relaxed);
        Ok(stream)
    }

    /// Where a player is on its way to live frames.
    #[derive(Default)]
    struct Progress {
        create_stream: Option<f64>,
        playing: bool,
        headers: usize,
    }

    /// Connects and plays `bench` until `Play.Start` and both sequence
    /// headers have arrived; returns the read buffer for reuse.
    async fn start(stream: &TcpStream, session: &mut ClientSession) -> Result<Vec<u8>, String> {
        let mut input = BytesMut::new();
        let mut buffer = Vec::with_capacity(READ_BYTES);
        let mut progress = Progress::default();
        while !(progress.playing && progress.headers >= 2) {
            while let Some(bytes) = session.poll_transmit() {
                let (result, _) = stream.write_all(bytes).await;
                result.map_err(|e| format!("writing: {e}"))?;
            }
            let n;
            (n, buffer) = read(stream, buffer).await?;
            input.extend_from_slice(&buffer[..n]);
            session
                .handle_input(&mut input)
                .map_err(|e| e.to_string())?;
            while let Some(event) = session.poll_event() {
                progress.handle(session, event)?;
            }
        }
        if !input.is_empty() {
            return Err(format!(
                "{} unexpected bytes before live frames",
                input.len()
            ));
        }
        Ok(buffer)
    }

    impl Progress {
        fn handle(
            &mut self,
            session: &mut ClientSession,
            event: ClientEvent,
        ) -> Result<(), String> {
            match event {
                ClientEvent::Connected { .. } => {
                    self.create_stream = Some(session.create_stream().map_err(|e| e.to_string())?);
                }
                ClientEvent::StreamCreated {
                    transaction_id,
                    stream_id,
                } if Some(transaction_id) == self.create_stream => {
                    session
                        .play(stream_id, "bench")
                        .map_err(|e| e.to_string())?;
                }
                ClientEvent::Media { media, .. } if media.kind != MediaKind::Data => {
                    self.headers += 1
                }
                ClientEvent::ConnectRejected { info } => {
                    return Err(format!("connect rejected: {info:?}"));
                }
                ClientEvent::Error(response) => return Err(format!("error: {response:?}")),
                event if event.is_play_start() => self.playing = true,
                _ => {}
            }
            Ok(())
        }
    }

    /// Counts live bytes until `live_bytes` have arrived.
    async fn drain(
        stream: &TcpStream,
        mut buffer: Vec<u8>,
        live_bytes: u64,
        shared: &Shared,
    ) -> Result<(), String> {
        let mut received = 0u64;
        while received < live_bytes {
            let n;
            (n, buffer) = read(stream, buffer).await?;
            received += n as u64;
            shared.live_bytes.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(())
    }

    /// One read into `buffer` (emptied first); 0 bytes is an error here.
    async fn read(stream: &TcpStream, mut buffer: Vec<u8>) -> Result<(usize, Vec<u8>), String> {
        buffer.clear();
        let (result, buffer) = stream.read(buffer).await;
        match result {
            Ok(0) => Err("server closed the connection".into()),
            Ok(n) => Ok((n, buffer)),
            Err(e) => Err(format!("reading: {e}")),
        }
    }
}

/// The tables on stdout and the JSON file.
mod report {
    use super::RoundResult;

    impl RoundResult {
        fn delivered_frames(&self) -> f64 {
            (self.frames_published * self.players as u64) as f64
        }

        fn shard_seconds(&self) -> f64 {
            self.shard.on_cpu.as_secs_f64().max(1e-9)
        }

        fn wall_seconds(&self) -> f64 {
            self.wall.as_secs_f64().max(1e-9)
        }

        pub fn shard_seconds_per_gb(&self) -> f64 {
            self.shard_seconds() / (self.bytes_delivered as f64 / 1e9).max(1e-9)
        }

        /// Every player got exactly the packaged bytes, nothing dropped.
        fn complete(&self) -> bool {
            self.bytes_delivered == self.bytes_expected
                && self.server.frames_dropped == 0
                && self.server.slow_disconnects == 0
        }

        fn iovec_arrays(&self) -> u64 {
            let shapes = self.shapes.iter().filter(|s| s.is_iovec_array());
            shapes.map(|s| s.count).sum()
        }

        fn pacing(&self) -> String {
            match self.window_bytes {
                0 => "lockstep".into(),
                bytes => format!("{} KiB", bytes / 1024),
            }
        }
    }

    /// The throughput table's columns: two header lines and a width.
    const COLUMNS: [(&str, &str, usize); 16] = [
        ("pacing", "", 9),
        ("N", "", 5),
        ("frames", "publ.", 7),
        ("frames/s", "publ.", 9),
        ("delivered", "MB", 9),
        ("wall", "s", 6),
        ("shard", "CPU s", 6),
        ("shard", "util", 5),
        ("user", "space", 5),
        ("players", "util", 7),
        ("delivered", "fr/CPU s", 10),
        ("delivered", "fr/wall s", 10),
        ("MB/s", "/CPU s", 7),
        ("CPU s", "/GB", 7),
        ("CPU s/GB", "all rounds", 11),
        ("check", "", 5),
    ];
    /// Columns with a `|` before them.
    const BARS: [usize; 2] = [10, 15];

    fn row(cells: &[String]) {
        let mut line = String::new();
        for (i, (cell, (_, _, width))) in cells.iter().zip(COLUMNS).enumerate() {
            if BARS.contains(&i) {
                line.push_str(" |");
            }
            line.push_str(&format!(" {cell:>width$}"));
        }
        println!("{line}");
    }

    /// `min–max` of sorted figures (one figure: itself).
    fn range(sorted: &[f64]) -> String {
        match (sorted.first(), sorted.last()) {
            (Some(min), Some(max)) if sorted.len() > 1 => format!("{min:.2}–{max:.2}"),
            (Some(only), _) => format!("{only:.3}"),
            _ => String::new(),
        }
    }

    pub fn table(results: &[RoundResult]) {
        println!(
            "\nfan-out on one shard; a frame is one media message (10 KB video or 300 B audio)"
        );
        row(&COLUMNS.map(|(top, _, _)| top.to_owned()));
        row(&COLUMNS.map(|(_, bottom, _)| bottom.to_owned()));
        for r in results {
            let user = r.shard.user_share();
            row(&[
                r.pacing(),
                r.players.to_string(),
                r.frames_published.to_string(),
                format!("{:.0}", r.frames_published as f64 / r.wall_seconds()),
                format!("{:.0}", r.bytes_delivered as f64 / 1e6),
                format!("{:.2}", r.wall_seconds()),
                format!("{:.3}", r.shard_seconds()),
                format!("{:.0}%", 100.0 * r.shard_seconds() / r.wall_seconds()),
                user.map_or("n/a".into(), |u| format!("{:.0}%", 100.0 * u)),
                format!(
                    "{:.0}%",
                    100.0 * r.players_cpu.as_secs_f64() / r.wall_seconds()
                ),
                format!("{:.0}", r.delivered_frames() / r.shard_seconds()),
                format!("{:.0}", r.delivered_frames() / r.wall_seconds()),
                format!("{:.0}", r.bytes_delivered as f64 / 1e6 / r.shard_seconds()),
                format!("{:.3}", r.shard_seconds_per_gb()),
                range(&r.repeats_s_per_gb),
                if r.complete() { "ok" } else { "INCOMPLETE" }.into(),
            ]);
        }
        allocations(results);
        marginal(results);
        for r in results.iter().filter(|r| !r.complete()) {
            println!(
                "{} N = {}: delivered {} of {} bytes; the shard dropped {} frames and disconnected {} players",
                r.pacing(),
                r.players,
                r.bytes_delivered,
                r.bytes_expected,
                r.server.frames_dropped,
                r.server.slow_disconnects
            );
        }
    }

    /// Allocations on the shard, split into `writev` iovec arrays (per
    /// write) and the rest (per published frame), and writes.
    fn allocations(results: &[RoundResult]) {
        println!("\nallocations and ring submissions (writes + reads) on the shard thread");
        println!(
            "{:>9} {:>5} {:>9} {:>9} {:>9} {:>9} {:>11} {:>11}",
            "pacing", "N", "allocs", "allocs", "alloc B", "submiss.", "iovec arr.", "other allocs"
        );
        println!(
            "{:>9} {:>5} {:>9} {:>9} {:>9} {:>9} {:>11} {:>11}",
            "", "", "/publ fr", "/deliv fr", "/deliv fr", "/deliv fr", "/submission", "/publ fr"
        );
        for r in results {
            let published = r.frames_published as f64;
            let delivered = r.delivered_frames();
            let iovecs = r.iovec_arrays();
            let (submissions, per_submission) = match r.submissions {
                Some(n) if n > 0 => (
                    format!("{:.4}", n as f64 / delivered),
                    format!("{:.3}", iovecs as f64 / n as f64),
                ),
                _ => ("n/a".into(), "n/a".into()),
            };
            println!(
                "{:>9} {:>5} {:>9.3} {:>9.5} {:>9.1} {:>9} {:>11} {:>11.3}",
                r.pacing(),
                r.players,
                r.allocs.count as f64 / published,
                r.allocs.count as f64 / delivered,
                r.allocs.bytes as f64 / delivered,
                submissions,
                per_submission,
                (r.allocs.count - iovecs) as f64 / published,
            );
        }
    }

    /// What one more player costs: the difference between consecutive
    /// rounds at the same pacing, per added delivered frame.
    fn marginal(results: &[RoundResult]) {
        println!(
            "\nmarginal cost of one more player per frame (between consecutive N, same pacing)"
        );
        println!(
            "{:>9} {:>11} {:>12} {:>12} {:>12}",
            "pacing", "N", "shard CPU ns", "allocs", "submissions"
        );
        for pair in results.windows(2) {
            let [a, b] = pair else { continue };
            if a.window_bytes != b.window_bytes || b.players <= a.players {
                continue;
            }
            let per_published = |r: &RoundResult, x: f64| x / r.frames_published as f64;
            let added = (b.players - a.players) as f64;
            let marginal = |xa: f64, xb: f64| (per_published(b, xb) - per_published(a, xa)) / added;
            let submissions = match (a.submissions, b.submissions) {
                (Some(sa), Some(sb)) => format!("{:.4}", marginal(sa as f64, sb as f64)),
                _ => "n/a".into(),
            };
            println!(
                "{:>9} {:>11} {:>12.0} {:>12.5} {:>12}",
                a.pacing(),
                format!("{}→{}", a.players, b.players),
                marginal(a.shard_seconds(), b.shard_seconds()) * 1e9,
                marginal(a.allocs.count as f64, b.allocs.count as f64),
                submissions,
            );
        }
    }

    /// The most frequent allocation shapes of each round.
    pub fn shapes(results: &[RoundResult]) {
        for r in results {
            println!(
                "\n{} N = {}: allocations on the shard by shape (count, per published frame)",
                r.pacing(),
                r.players
            );
            for shape in r.shapes.iter().take(12) {
                println!(
                    "  {:>7} {:>6} B align {:>2}: {:>9} {:>8.3}{}",
                    shape.kind,
                    shape.size,
                    shape.align,
                    shape.count,
                    shape.count as f64 / r.frames_published as f64,
                    if shape.is_iovec_array() {
                        "  (iovec array?)"
                    } else {
                        ""
                    },
                );
            }
        }
    }

    pub fn json(results: &[RoundResult]) -> String {
        let rounds: Vec<String> = results.iter().map(json_round).collect();
        format!("[\n{}\n]\n", rounds.join(",\n"))
    }

    fn json_round(r: &RoundResult) -> String {
        let fields = [
            ("players", r.players.to_string()),
            ("window_bytes", r.window_bytes.to_string()),
            ("frames_published", r.frames_published.to_string()),
            (
                "frames_published_per_wall_s",
                format!("{:.1}", r.frames_published as f64 / r.wall_seconds()),
            ),
            ("frames_delivered", format!("{:.0}", r.delivered_frames())),
            ("bytes_delivered", r.bytes_delivered.to_string()),
            ("bytes_expected", r.bytes_expected.to_string()),
            ("complete", r.complete().to_string()),
            ("wall_s", format!("{:.6}", r.wall_seconds())),
            ("shard_cpu_s", format!("{:.6}", r.shard_seconds())),
            (
                "shard_user_share",
                r.shard
                    .user_share()
                    .map_or("null".into(), |u| format!("{u:.3}")),
            ),
            (
                "players_cpu_s",
                format!("{:.6}", r.players_cpu.as_secs_f64()),
            ),
            (
                "process_cpu_s",
                format!("{:.6}", r.process_cpu.as_secs_f64()),
            ),
            (
                "frames_delivered_per_shard_cpu_s",
                format!("{:.1}", r.delivered_frames() / r.shard_seconds()),
            ),
            (
                "bytes_delivered_per_shard_cpu_s",
                format!("{:.1}", r.bytes_delivered as f64 / r.shard_seconds()),
            ),
            (
                "shard_cpu_s_per_gb",
                format!("{:.6}", r.shard_seconds_per_gb()),
            ),
            ("allocs", r.allocs.count.to_string()),
            ("alloc_bytes", r.allocs.bytes.to_string()),
            ("iovec_array_allocs", r.iovec_arrays().to_string()),
            (
                "ring_submissions",
                r.submissions.map_or("null".into(), |s| s.to_string()),
            ),
            ("server_frames_dropped", r.server.frames_dropped.to_string()),
            (
                "repeats_shard_cpu_s_per_gb",
                format!("{:?}", r.repeats_s_per_gb),
            ),
        ];
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("\"{k}\": {v}"))
            .collect();
        format!("  {{{}}}", body.join(", "))
    }
}
