//! The maintenance drain end to end: a `ringcast serve` process (A) told
//! SIGTERM (or `POST /api/v1/drain`) closes its listeners, asks the bench
//! publisher (which announces Enhanced RTMP's reconnect capability) to
//! move, lets its players go once the stream left, and exits 0 as soon as
//! nobody is left. The publisher lands on a second ringcast, beside A on
//! the same port (`--share-ports`) or named by `drain_redirect`, and
//! players there, on an edge pulling from both, and those that follow it
//! see the stream go on; a ringcast pushing to A moves its push the same
//! way: what they got is checked by the frame numbers
//! the bench publisher stamps into every video frame. A legacy publisher
//! (ffmpeg, or our client without `capsEx`) is not asked and holds the
//! drain until `drain_ms`; a second SIGTERM ends it at once.
// Tests and benches fail by panicking on what they did not expect.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::admin::{get_json, request, scrape, sum};
use common::served::Served;
use common::{Client, TIMEOUT, ffmpeg, start_server, wait_until};
use ringcast::protocol::url::RtmpUrl;
use ringcast::relay::origins;
use ringcast::server::ServerHandle;
use ringcast::session::{Media, MediaKind};
use ringcast_bench::publisher::{self, Outcome, Plan};
use ringcast_bench::source::{Shape, Source};
use ringcast_bench::stamp::Stamp;
use tokio::sync::Notify;

/// The bench stream: 30 fps, a keyframe every second (30 frames).
const FPS: u32 = 30;
const GOP_FRAMES: u64 = 30;

/// A `ringcast serve` process, A, with these drain settings, on an
/// ephemeral port, two shards and its admin API.
fn drained_server(name: &str, config: &str) -> (Served, ConfigFile) {
    let file = ConfigFile::new(name, config);
    let path = file.0.to_str().expect("utf-8 path").to_owned();
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        "--shards",
        "2",
        "--config",
        &path,
    ];
    (Served::start(&args), file)
}

/// A config file in the temporary directory, removed when dropped.
struct ConfigFile(PathBuf);

impl ConfigFile {
    fn new(name: &str, text: &str) -> ConfigFile {
        let path =
            std::env::temp_dir().join(format!("ringcast-drain-{}-{name}.toml", std::process::id()));
        std::fs::write(&path, text).expect("config written");
        ConfigFile(path)
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The bundled bench publisher, publishing `live/NAME` to `addr` on a
/// tokio-uring thread of its own until finished.
struct BenchPublisher {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Outcome>>,
}

impl BenchPublisher {
    fn start(addr: SocketAddr, name: &str) -> BenchPublisher {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let plan = Plan {
            addr,
            app: "live".into(),
            stream: name.into(),
            index: 0,
            reconnect_every: None,
        };
        let thread = std::thread::spawn(move || {
            tokio_uring::start(async move {
                let shape = Shape {
                    bitrate_kbps: 300,
                    fps: f64::from(FPS),
                    gop_s: 1.0,
                    audio_rate: 44_100,
                };
                let source = Source::synthetic(shape).expect("the bundled sample");
                let notify = Rc::new(Notify::new());
                let mut task = tokio_uring::spawn(publisher::run(plan, source, notify.clone()));
                loop {
                    tokio::select! {
                        outcome = &mut task => return outcome.unwrap_or_default(),
                        () = tokio::time::sleep(Duration::from_millis(20)) => {}
                    }
                    if stopping.load(Ordering::Relaxed) {
                        notify.notify_one();
                        return task.await.unwrap_or_default();
                    }
                }
            })
        });
        BenchPublisher {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops it and says what it did.
    fn finish(mut self) -> Outcome {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread.take().expect("running");
        thread.join().expect("the publisher thread")
    }
}

impl Drop for BenchPublisher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A video frame a test player got: its number in the publisher's stream
/// (from the bench stamp), whether it is a keyframe, its timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Seen {
    seq: u64,
    key: bool,
    ts: u32,
}

/// The stamped video frames among `media`, in order.
fn seen(media: &[Media]) -> Vec<Seen> {
    media
        .iter()
        .filter(|m| m.kind == MediaKind::Video)
        .filter_map(|m| {
            let stamp = Stamp::find(&m.payload)?;
            Some(Seen {
                seq: stamp.seq,
                key: m.payload[0] >> 4 == 1,
                ts: m.timestamp.0,
            })
        })
        .collect()
}

/// Reads until `player` got `n` stamped video frames more.
fn next_frames(player: &mut Client, n: usize) -> Vec<Seen> {
    let deadline = Instant::now() + TIMEOUT;
    let mut got = Vec::new();
    while got.len() < n {
        assert!(
            Instant::now() < deadline,
            "timed out: {} of {n} frames",
            got.len()
        );
        player.pump(Duration::from_millis(50));
        got.extend(seen(&player.take_media()));
    }
    got
}

/// Frames the player never got between consecutive ones it did (most in
/// one place), after checking that it starts on a keyframe, goes forward,
/// and restarts on a keyframe after every gap.
fn largest_gap(frames: &[Seen]) -> u64 {
    assert!(frames.first().is_some_and(|f| f.key), "{frames:?}");
    let mut largest = 0;
    for pair in frames.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        assert!(b.seq > a.seq, "frames go forward: {a:?} then {b:?}");
        assert!(b.ts >= a.ts, "timestamps go forward: {a:?} then {b:?}");
        let gap = b.seq - a.seq - 1;
        if gap > 0 {
            assert!(b.key, "after a gap of {gap}, {b:?} is a keyframe");
        }
        largest = largest.max(gap);
    }
    largest
}

/// Publishers on the server behind the admin API at `admin`.
fn publishers(admin: SocketAddr) -> u64 {
    get_json(admin, "/api/v1/summary")["publishers"]
        .as_u64()
        .expect("a count")
}

fn rtmp_url(addr: SocketAddr) -> String {
    format!("rtmp://{addr}/live")
}

/// The value of `field=VALUE` in a log line.
fn field<'a>(line: &'a str, field: &str) -> Option<&'a str> {
    let prefix = format!("{field}=");
    line.split_whitespace()
        .find_map(|word| word.strip_prefix(prefix.as_str()))
}

/// The drain's end line among `lines`, with its counts.
fn drain_over(lines: &[String]) -> (u64, u64) {
    let line = lines
        .iter()
        .find(|l| l.contains("drain over"))
        .unwrap_or_else(|| panic!("no drain over line in {lines:#?}"));
    let count = |name| field(line, name).and_then(|v| v.parse().ok());
    (
        count("left_by_themselves").expect("left"),
        count("closed").expect("closed"),
    )
}

#[test]
fn an_upgrade_in_place_moves_the_publisher_and_players_to_the_new_server_on_the_same_port() {
    let (mut a, _config) = drained_server("upgrade", "drain_ms = 30000\n");
    let port = a.addr;
    let a_admin = a.admin.expect("admin on");
    let publisher = BenchPublisher::start(port, "cam");
    wait_until("the publisher is on A", || publishers(a_admin) == 1);
    let mut on_a = Client::connect(port, "live");
    on_a.play("cam");
    let first = next_frames(&mut on_a, 30);
    let b = Served::start(&[
        "--listen",
        &port.to_string(),
        "--share-ports",
        "--admin",
        "127.0.0.1:0",
        "--shards",
        "2",
    ]);
    assert_eq!(b.addr, port, "B shares A's port");
    let sigterm_at = Instant::now();
    a.signal(libc::SIGTERM);
    let started = a.wait_for_line("drain started");
    assert_eq!(
        field(&started, "publishers_asked_to_move"),
        Some("1"),
        "{started}"
    );
    assert_eq!(field(&started, "players_held"), Some("1"), "{started}");
    // A's listeners are closed: a new player lands on B, and waits there.
    let mut on_b = Client::connect(port, "live");
    on_b.play("cam");
    let b_admin = b.admin.expect("admin on");
    assert_eq!(
        get_json(b_admin, "/api/v1/summary")["players"],
        1,
        "the new player is on B"
    );
    // A's player gets the stream until the publisher left A, then is let
    // go; it reconnects to the same port, and B has the stream.
    let before = [first, seen(&on_a.read_until_closed())].concat();
    let mut followed = Client::connect(port, "live");
    followed.play("cam");
    let after = next_frames(&mut followed, 60);
    let on_b = next_frames(&mut on_b, 60);
    let outcome = publisher.finish();
    assert_eq!((outcome.moves, outcome.moves_failed), (1, 0), "{outcome:?}");
    assert_eq!(outcome.error, None);
    // A left as soon as nobody was there, far within drain_ms.
    let (status, rest) = a.wait();
    assert!(status.success(), "A exits 0: {status:?}");
    assert!(sigterm_at.elapsed() < Duration::from_secs(25));
    assert_eq!(drain_over(&rest), (2, 0), "left by themselves, closed");
    // The accept loops ended with their listeners, without a retry.
    assert!(
        !rest.iter().any(|l| l.contains("accept failed")),
        "{rest:#?}"
    );
    // The player that followed the stream: one run of frames, at most a
    // keyframe interval lost between A and B, timestamps going on.
    let whole = [before.clone(), after.clone()].concat();
    let gap = largest_gap(&whole);
    println!(
        "the player that moved lost {gap} frames: last on A {:?}, first on B {:?}",
        before.last(),
        after.first()
    );
    println!("A: {started}");
    assert!(gap < GOP_FRAMES, "lost {gap} frames: {whole:?}");
    // B's own player: the stream from a keyframe, every frame, going on
    // from where A's players were (not from frame 0).
    assert_eq!(largest_gap(&on_b), 0, "{on_b:?}");
    let last_on_a = before.last().expect("frames on A");
    assert!(
        on_b[0].seq > last_on_a.seq.saturating_sub(GOP_FRAMES),
        "{on_b:?}"
    );
    assert!(on_b[0].ts >= last_on_a.ts.saturating_sub(1000), "{on_b:?}");
}

#[test]
fn a_drain_redirect_sends_the_publisher_to_the_server_it_names() {
    let b = start_server(2, |_| {});
    let b_addr = b.local_addrs()[0];
    // No app in the redirect: the publisher keeps its own ("live").
    let config = format!(
        "drain_ms = 30000\ndrain_redirect = \"rtmp://{}:{}\"\n",
        b_addr.ip(),
        b_addr.port()
    );
    let (mut a, _config) = drained_server("redirect", &config);
    let publisher = BenchPublisher::start(a.addr, "cam");
    wait_until("the publisher is on A", || {
        publishers(a.admin.expect("admin")) == 1
    });
    let mut on_b = Client::connect(b_addr, "live");
    on_b.play("cam");
    a.signal(libc::SIGTERM);
    let started = a.wait_for_line("drain started");
    assert_eq!(field(&started, "publishers_asked_to_move"), Some("1"));
    let frames = next_frames(&mut on_b, 60);
    assert_eq!(largest_gap(&frames), 0, "{frames:?}");
    assert!(
        frames[0].seq > 0,
        "the stream goes on, not over: {frames:?}"
    );
    let total: u64 = b.stats().iter().map(|s| s.publishers).sum();
    assert_eq!(total, 1, "the publisher is on B");
    let outcome = publisher.finish();
    assert_eq!(
        (outcome.moves, outcome.error.as_deref()),
        (1, None),
        "{outcome:?}"
    );
    let (status, rest) = a.wait();
    assert!(status.success(), "{status:?}");
    assert_eq!(drain_over(&rest), (1, 0));
    b.shutdown();
}

/// A stream name that `edge` pulls from `first` before `second`.
fn name_pulled_first_from(first: &str, second: &str) -> String {
    let urls = [
        RtmpUrl::parse(first).expect("url"),
        RtmpUrl::parse(second).expect("url"),
    ];
    (0..100)
        .map(|i| format!("cam{i}"))
        .find(|name| origins::order(name, &urls)[0] == &urls[0])
        .expect("some name hashes to the first origin")
}

#[test]
fn an_edge_pulling_from_the_drained_origin_follows_the_stream_losing_at_most_a_keyframe_interval() {
    let b = start_server(1, |_| {});
    let b_url = rtmp_url(b.local_addrs()[0]);
    let config = format!("drain_ms = 30000\ndrain_redirect = \"{b_url}\"\n");
    let (mut a, _config) = drained_server("edge", &config);
    let a_url = rtmp_url(a.addr);
    let name = name_pulled_first_from(&a_url, &b_url);
    let edge: ServerHandle = start_server(2, |c| {
        c.relay.origins = vec![
            RtmpUrl::parse(&a_url).expect("url"),
            RtmpUrl::parse(&b_url).expect("url"),
        ];
    });
    let publisher = BenchPublisher::start(a.addr, &name);
    wait_until("the publisher is on A", || {
        publishers(a.admin.expect("admin")) == 1
    });
    let mut players: Vec<Client> = (0..3)
        .map(|_| {
            let mut player = Client::connect(edge.local_addrs()[0], "live");
            player.play(&name);
            player
        })
        .collect();
    let mut got: Vec<Vec<Seen>> = players.iter_mut().map(|p| next_frames(p, 30)).collect();
    a.signal(libc::SIGTERM);
    a.wait_for_line("drain started");
    // Five seconds of stream after the drain began: the move is in it.
    for (player, frames) in players.iter_mut().zip(&mut got) {
        frames.extend(next_frames(player, 150));
    }
    let outcome = publisher.finish();
    assert_eq!(
        (outcome.moves, outcome.error.as_deref()),
        (1, None),
        "{outcome:?}"
    );
    let (status, rest) = a.wait();
    assert!(status.success(), "{status:?}");
    assert_eq!(drain_over(&rest), (2, 0), "the publisher and the pull left");
    let total = edge
        .stats()
        .into_iter()
        .map(|s| s.relay_failovers)
        .sum::<u64>();
    assert!(total >= 1, "the edge moved to B");
    for frames in &got {
        let gap = largest_gap(frames);
        println!("an edge player lost {gap} frames in the move");
        assert!(
            gap <= GOP_FRAMES,
            "at most one keyframe interval: {frames:?}"
        );
    }
    edge.shutdown();
    b.shutdown();
}

#[test]
fn a_legacy_publisher_is_not_asked_and_holds_the_drain_until_drain_ms() {
    let (mut a, _config) = drained_server("legacy", "drain_ms = 3000\n");
    let encoder = ffmpeg::publish(&format!("{}/cam", rtmp_url(a.addr)), 60);
    wait_until("ffmpeg publishes on A", || {
        publishers(a.admin.expect("admin")) == 1
    });
    let sigterm_at = Instant::now();
    a.signal(libc::SIGTERM);
    let started = a.wait_for_line("drain started");
    assert_eq!(field(&started, "publishers"), Some("1"), "{started}");
    assert_eq!(field(&started, "publishers_asked_to_move"), Some("0"));
    let (status, rest) = a.wait();
    let took = sigterm_at.elapsed();
    ffmpeg::finish(encoder);
    assert!(status.success(), "{status:?}");
    assert!(
        took >= Duration::from_millis(2900),
        "waited drain_ms: {took:?}"
    );
    assert_eq!(drain_over(&rest), (0, 1), "ffmpeg was closed at the end");
}

#[test]
fn a_second_sigterm_ends_the_drain_at_once() {
    let (mut a, _config) = drained_server("twice", "drain_ms = 60000\n");
    // Our client without capsEx: a publisher that is not asked to move.
    let mut legacy = Client::connect(a.addr, "live");
    legacy.publish("cam");
    a.signal(libc::SIGTERM);
    let started = a.wait_for_line("drain started");
    assert_eq!(field(&started, "publishers_asked_to_move"), Some("0"));
    let second_at = Instant::now();
    a.signal(libc::SIGTERM);
    let (status, rest) = a.wait();
    assert!(status.success(), "{status:?}");
    assert!(second_at.elapsed() < Duration::from_secs(8), "not drain_ms");
    assert!(
        rest.iter()
            .any(|l| l.contains("without waiting for the drain")),
        "{rest:#?}"
    );
    drop(legacy);
}

#[test]
fn post_drain_drains_like_sigterm_and_shows_in_metrics() {
    let b = start_server(1, |_| {});
    let b_addr = b.local_addrs()[0];
    let config = format!(
        "drain_ms = 30000\ndrain_redirect = \"{}\"\n",
        rtmp_url(b_addr)
    );
    let (mut a, _config) = drained_server("api", &config);
    let admin = a.admin.expect("admin on");
    let publisher = BenchPublisher::start(a.addr, "cam");
    // A second, legacy publisher holds the drain until it leaves.
    let mut legacy = Client::connect(a.addr, "live");
    legacy.publish("other");
    wait_until("both publish on A", || publishers(admin) == 2);
    let metrics = scrape(admin);
    assert_eq!(sum(&metrics, "ringcast_draining"), 0.0);
    let (code, body) = request(admin, "POST", "/api/v1/drain");
    assert_eq!(code, 202, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(answer["draining"], true);
    assert_eq!(answer["drain_ms"], 30000);
    let started = a.wait_for_line("drain started");
    assert!(started.contains("admin API"), "{started}");
    assert_eq!(field(&started, "publishers_asked_to_move"), Some("1"));
    assert_eq!(request(admin, "POST", "/api/v1/drain").0, 409);
    assert_eq!(get_json(admin, "/api/v1/summary")["draining"], true);
    assert_eq!(sum(&scrape(admin), "ringcast_draining"), 2.0, "both shards");
    wait_until("the bench publisher moved to B", || {
        b.stats().iter().map(|s| s.publishers).sum::<u64>() == 1
    });
    assert!(a.is_running(), "the legacy publisher holds the drain");
    drop(legacy);
    let (status, rest) = a.wait();
    assert!(status.success(), "{status:?}");
    assert_eq!(drain_over(&rest), (2, 0));
    let outcome = publisher.finish();
    assert_eq!(
        (outcome.moves, outcome.error.as_deref()),
        (1, None),
        "{outcome:?}"
    );
    b.shutdown();
}

#[test]
fn a_push_to_a_draining_server_moves_to_where_it_redirects() {
    let b = start_server(1, |_| {});
    let b_url = rtmp_url(b.local_addrs()[0]);
    let config = format!("drain_ms = 30000\ndrain_redirect = \"{b_url}\"\n");
    let (mut a, _config) = drained_server("push", &config);
    let a_url = RtmpUrl::parse(&rtmp_url(a.addr)).expect("url");
    // X pushes what is published to it on to A.
    let x = start_server(1, |c| c.relay.push = vec![a_url]);
    let publisher = BenchPublisher::start(x.local_addrs()[0], "cam");
    wait_until("the push publishes on A", || {
        publishers(a.admin.expect("admin")) == 1
    });
    let mut on_b = Client::connect(b.local_addrs()[0], "live");
    on_b.play("cam");
    a.signal(libc::SIGTERM);
    let started = a.wait_for_line("drain started");
    assert_eq!(
        field(&started, "publishers_asked_to_move"),
        Some("1"),
        "the push announced it can move: {started}"
    );
    let frames = next_frames(&mut on_b, 60);
    assert_eq!(largest_gap(&frames), 0, "{frames:?}");
    assert!(
        frames[0].seq > 0,
        "the stream goes on, not over: {frames:?}"
    );
    let (status, rest) = a.wait();
    assert!(status.success(), "{status:?}");
    assert_eq!(drain_over(&rest), (1, 0), "the push left A by itself");
    let outcome = publisher.finish();
    assert_eq!(outcome.error, None, "the publisher to X never noticed");
    x.shutdown();
    b.shutdown();
}
