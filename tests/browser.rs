//! A real browser plays a real encoder's stream from ringcast: ffmpeg
//! publishes H.264 + AAC over RTMP, and Debian's Chromium, driven headless
//! by Playwright (`tests/browser/play.py`), opens the player page ringcast
//! serves and plays the stream with mpegts.js over HTTP-FLV and over
//! WebSocket-FLV, and with hls.js over Low-Latency HLS, also across a
//! republish (a discontinuity in the playlist). These tests need python3
//! with Playwright, `/usr/bin/chromium` and ffmpeg (`./test.sh` installs
//! them); without them they fail, never skip.
// Tests and benches fail by panicking on what they did not expect.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::{self, Receiver};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::admin::request;
use common::start_server;
use ringcast::server::ServerHandle;
use serde_json::Value as Json;

/// How long play.py watches the video once it plays; it wants >= 3 s of
/// playback, so 6 s leaves room for a stall or a latency-chasing jump.
const WATCH_S: u64 = 6;
/// The same for LL-HLS, with room for a longer stall: now and then (a few
/// runs in a hundred, on a loaded machine) hls.js 1.7.4 loads a segment's
/// parts but the last, short one, then the next segment, and stalls at
/// the hole for 1.5 to 2.5 s before it seeks over it. (The last part is
/// 167 ms: at 30 fps the 333 ms part target holds 9 frames, as 10 last
/// 333.3 ms, so a 2 s segment ends with 5 frames.)
const HLS_WATCH_S: u64 = 8;
/// How long play.py watches after a republish: it wants currentTime 3 s
/// past what was buffered before it. The new publisher's first part comes
/// about a second after it starts, and the player may stall meanwhile.
const AFTER_REPUBLISH_S: u64 = 10;
/// play.py's whole run: Chromium's start, up to 20 s to reach "playing",
/// the watches, and slack for a busy 2-core CI machine.
const PLAY_LIMIT: Duration = Duration::from_secs(60 + HLS_WATCH_S + AFTER_REPUBLISH_S);
const CHROMIUM: &str = "/usr/bin/chromium";
const PLAYWRIGHT_PIN: &str = "playwright==1.49.1";

/// One browser and one encoder at a time: two of each at once on a 2-core
/// machine make the browser drop frames for want of CPU, not for ringcast.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn chromium_plays_http_flv_from_the_player_page() {
    plays_in_chromium("http");
}

#[test]
fn chromium_plays_websocket_flv_from_the_player_page() {
    plays_in_chromium("ws");
}

#[test]
fn chromium_plays_ll_hls_from_the_player_page() {
    plays_in_chromium("hls");
}

/// The publisher leaves and comes back mid-play: the playlist marks the
/// new publisher's first segment `EXT-X-DISCONTINUITY`, and hls.js plays
/// on into it.
#[test]
fn chromium_plays_ll_hls_on_across_a_republish() {
    let _turn = one_at_a_time();
    require_the_browser();
    let server = start_server(2, |_| {});
    let http = server.http_addrs()[0];
    let url = format!("rtmp://{}/live/cam", server.local_addrs()[0]);
    let mut publisher = Publisher::start(&url);
    wait_for_publisher(&server, &mut publisher, 0);

    let page = format!("http://{http}/?stream=live/cam&transport=hls");
    let mut play = Play::start(&page, HLS_WATCH_S, Some(AFTER_REPUBLISH_S));
    let before = play.result("before the republish");
    println!("hls before the republish: {before}");
    let frames_before = frames_in(&server);
    drop(publisher);
    common::wait_until("the publisher gone", || {
        server.stats().iter().map(|s| s.publishers).sum::<u64>() == 0
    });
    let mut publisher = Publisher::start(&url);
    wait_for_publisher(&server, &mut publisher, frames_before);
    let (status, playlist) = request(http, "GET", "/live/cam.m3u8");
    assert_eq!(status, 200, "{playlist}");
    assert!(
        playlist.contains("\n#EXT-X-DISCONTINUITY\n"),
        "no discontinuity after the republish:\n{playlist}"
    );

    play.go_on();
    let after = play.result("after the republish");
    println!("hls after the republish: {after}");
    assert!(after["beyond_s"].as_f64().unwrap() >= 3.0, "{after}");
    play.finish();
    assert_no_hls_refusals(&server);
    drop(publisher);
    server.shutdown();
}

/// ringcast serves the page and `live/cam` from ffmpeg; play.py says the
/// video played (time advanced, frames decoded, few dropped).
fn plays_in_chromium(transport: &str) {
    let _turn = one_at_a_time();
    require_the_browser();
    // start_server puts the HTTP listener on 127.0.0.1:0 too.
    let server = start_server(2, |_| {});
    let http = server.http_addrs()[0];
    let rtmp = server.local_addrs()[0];
    let mut publisher = Publisher::start(&format!("rtmp://{rtmp}/live/cam"));
    wait_for_publisher(&server, &mut publisher, 0);

    let page = format!("http://{http}/?stream=live/cam&transport={transport}");
    let watch_s = if transport == "hls" {
        HLS_WATCH_S
    } else {
        WATCH_S
    };
    let mut play = Play::start(&page, watch_s, None);
    let result = play.result(transport);
    println!("{transport}: {result}");
    assert_eq!(result["state"], "playing", "{result}");
    assert!(result["advanced_s"].as_f64().unwrap() >= 3.0, "{result}");
    play.finish();
    assert_no_hls_refusals(&server);
    drop(publisher);
    server.shutdown();
}

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The player asked for no `_HLS_msn`/`_HLS_part` the server found
/// malformed or out of range, and was never refused for blocking too much.
fn assert_no_hls_refusals(server: &ServerHandle) {
    let refusals: u64 = server.stats().iter().map(|s| s.hls_refusals).sum();
    assert_eq!(refusals, 0, "HLS requests refused");
}

/// Fails, naming the install command, when the browser side is missing.
fn require_the_browser() {
    let python = Command::new("python3")
        .args(["-c", "import playwright.sync_api"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output();
    match python {
        Err(e) => panic!("python3 not found ({e}): apt-get install python3 python3-pip"),
        Ok(out) if !out.status.success() => panic!(
            "the playwright module is missing: python3 -m pip install {PLAYWRIGHT_PIN} \
             (add --break-system-packages on Debian's python3); it said: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Ok(_) => {}
    }
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: apt-get install chromium"
    );
}

/// ffmpeg publishing 640×360 test video at 30 fps (a keyframe each second)
/// and a 440 Hz tone as AAC, in real time, until dropped.
struct Publisher(Child);

impl Publisher {
    fn start(url: &str) -> Publisher {
        let child = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-re"])
            .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
            .args(["-c:v", "libx264", "-preset", "veryfast"])
            .args(["-tune", "zerolatency", "-g", "30"])
            // 4:2:0, the chroma browsers decode (High 4:4:4 would not play).
            .args(["-pix_fmt", "yuv420p"])
            .args(["-c:a", "aac", "-f", "flv", url])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ffmpeg not found: apt-get install ffmpeg");
        Publisher(child)
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn frames_in(server: &ServerHandle) -> u64 {
    server.stats().iter().map(|s| s.frames_in).sum()
}

/// Waits until ringcast has a second of the publisher's frames past
/// `frames_in_before` (the server's count before it started); on failure
/// says what ffmpeg said.
fn wait_for_publisher(server: &ServerHandle, publisher: &mut Publisher, frames_in_before: u64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while frames_in(server) < frames_in_before + 30 {
        if let Ok(Some(status)) = publisher.0.try_wait() {
            let mut said = String::new();
            if let Some(mut err) = publisher.0.stderr.take() {
                let _ = err.read_to_string(&mut said);
            }
            panic!("ffmpeg exited ({status}) before publishing: {said}");
        }
        assert!(Instant::now() < deadline, "ffmpeg never published");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// play.py on a page: its JSON lines as they come, killed if it outlives
/// [`PLAY_LIMIT`].
struct Play {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Option<JoinHandle<String>>,
    deadline: Instant,
}

impl Play {
    /// Starts play.py on `page`, watching for `watch_s`; with `then`, it
    /// watches a second time for that long once [`Play::go_on`] says so.
    fn start(page: &str, watch_s: u64, then: Option<u64>) -> Play {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/play.py");
        let mut command = Command::new("python3");
        command.arg(&script).args([page, &watch_s.to_string()]);
        if let Some(seconds) = then {
            command.args(["--then", &seconds.to_string()]);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let mut stderr = child.stderr.take().expect("stderr");
        let stderr = std::thread::spawn(move || {
            let mut said = String::new();
            let _ = stderr.read_to_string(&mut said);
            said
        });
        Play {
            child,
            stdin,
            lines,
            stderr: Some(stderr),
            deadline: Instant::now() + PLAY_LIMIT,
        }
    }

    /// The next watch's result, which must be a pass; `what` names it.
    fn result(&mut self, what: &str) -> Json {
        let wait = self.deadline.saturating_duration_since(Instant::now());
        let Ok(line) = self.lines.recv_timeout(wait) else {
            self.fail(&format!("play.py said nothing {what}"));
        };
        let result: Json = serde_json::from_str(&line)
            .unwrap_or_else(|e| self.fail(&format!("play.py said {line:?} {what}: {e}")));
        if !result["reason"].is_null() {
            self.fail(&format!("Chromium did not play {what}: {line}"));
        }
        result
    }

    /// Starts the second watch: the stream changed.
    fn go_on(&mut self) {
        let stdin = self.stdin.as_mut().expect("play.py's stdin");
        if stdin.write_all(b"go on\n").is_err() {
            self.fail("play.py left before the second watch");
        }
    }

    /// play.py's exit, which must be 0.
    fn finish(mut self) {
        self.stdin = None;
        let status = self.exit();
        if !status.success() {
            self.fail(&format!("play.py exited {status}"));
        }
    }

    /// play.py's exit status, once it exits or is killed at the deadline.
    fn exit(&mut self) -> std::process::ExitStatus {
        while self.child.try_wait().expect("wait").is_none() {
            if Instant::now() > self.deadline {
                let _ = self.child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.child.wait().expect("wait")
    }

    /// Panics with `why` and, once play.py exits, what it saw (stderr).
    fn fail(&mut self, why: &str) -> ! {
        self.stdin = None;
        self.deadline = self.deadline.min(Instant::now() + Duration::from_secs(10));
        let status = self.exit();
        let said = self.stderr.take().map(|t| t.join().unwrap_or_default());
        panic!("{why} (play.py: {status}):\n{}", said.unwrap_or_default());
    }
}

/// A test that fails on something else leaves no browser running.
impl Drop for Play {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
