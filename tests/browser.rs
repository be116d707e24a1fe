//! A real browser plays a real encoder's stream from ringcast: ffmpeg
//! publishes H.264 + AAC over RTMP, and Debian's Chromium, driven headless
//! by Playwright (`tests/browser/play.py`), opens the player page ringcast
//! serves and plays the stream with mpegts.js over HTTP-FLV and over
//! WebSocket-FLV. These tests need python3 with Playwright,
//! `/usr/bin/chromium` and ffmpeg (`./test.sh` installs them); without them
//! they fail, never skip.
// Tests and benches fail by panicking on what they did not expect.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::start_server;
use ringcast::server::ServerHandle;

/// How long play.py watches the video once it plays; it wants >= 3 s of
/// playback, so 6 s leaves room for a stall or a latency-chasing jump.
const WATCH_S: u64 = 6;
/// play.py's whole run: Chromium's start, up to 20 s to reach "playing",
/// the watch, and slack for a busy 2-core CI machine.
const PLAY_LIMIT: Duration = Duration::from_secs(60 + WATCH_S);
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

/// ringcast serves the page and `live/cam` from ffmpeg; play.py says the
/// video played (time advanced, frames decoded, few dropped).
fn plays_in_chromium(transport: &str) {
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    require_the_browser();
    // start_server puts the HTTP listener on 127.0.0.1:0 too.
    let server = start_server(2, |_| {});
    let http = server.http_addrs()[0];
    let rtmp = server.local_addrs()[0];
    let mut publisher = Publisher::start(&format!("rtmp://{rtmp}/live/cam"));
    wait_for_publisher(&server, &mut publisher);

    let page = format!("http://{http}/?stream=live/cam&transport={transport}");
    let output = play(&page);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{transport}: {}", stdout.trim());
    assert!(
        output.status.success(),
        "Chromium did not play {page} ({}):\n{stdout}\n{stderr}",
        output.status
    );
    let result: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(result["state"], "playing", "{stdout}");
    assert!(result["advanced_s"].as_f64().unwrap() >= 3.0, "{stdout}");
    drop(publisher);
    server.shutdown();
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

/// Waits until ringcast has a second of the publisher's frames; on failure
/// says what ffmpeg said.
fn wait_for_publisher(server: &ServerHandle, publisher: &mut Publisher) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while server.stats().iter().map(|s| s.frames_in).sum::<u64>() < 30 {
        if let Ok(Some(status)) = publisher.0.try_wait() {
            let mut said = String::new();
            if let Some(mut err) = publisher.0.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut err, &mut said);
            }
            panic!("ffmpeg exited ({status}) before publishing: {said}");
        }
        assert!(Instant::now() < deadline, "ffmpeg never published");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs play.py on `page`, killing it if it outlives [`PLAY_LIMIT`].
fn play(page: &str) -> Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/play.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .args([page, &WATCH_S.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let deadline = Instant::now() + PLAY_LIMIT;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().expect("output")
}
