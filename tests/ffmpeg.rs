//! Real ffmpeg and ffprobe against the server: ffmpeg publishes generated
//! H.264 + AAC, ffprobe and ffmpeg play it back. These tests need the
//! programs (`apt-get install ffmpeg`); without them they fail, never skip.
// Tests and benches fail by panicking on what they did not expect.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::start_server;

fn tool(name: &str) -> String {
    let found = Command::new(name)
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "{name} not found: install ffmpeg (apt-get install ffmpeg)"
    );
    name.to_owned()
}

/// ffmpeg publishing `seconds` of 320×240 test video at 30 fps (keyframe
/// every 2 s) and a sine tone, in real time.
fn publish(url: &str, seconds: u32) -> Child {
    Command::new(tool("ffmpeg"))
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
        .args(["-t", &seconds.to_string()])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "60",
            "-pix_fmt",
            "yuv420p",
        ])
        .args(["-c:a", "aac", "-f", "flv", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffmpeg starts")
}

/// Runs a command, killing it if it outlives `limit`.
fn run_bounded(mut command: Command, limit: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

/// Waits for the publisher to be live on the server.
fn wait_for_publisher(server: &ringcast::server::ServerHandle) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.stats().iter().map(|s| s.frames_in).sum::<u64>() < 30 {
        assert!(Instant::now() < deadline, "ffmpeg never published");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn finish(mut publisher: Child) {
    let _ = publisher.kill();
    let _ = publisher.wait();
}

#[test]
fn ffprobe_sees_h264_and_aac_with_the_published_size() {
    let server = start_server(2, |_| {});
    let url = format!("rtmp://{}/live/probe", server.local_addrs()[0]);
    let publisher = publish(&url, 20);
    wait_for_publisher(&server);
    let mut probe = Command::new(tool("ffprobe"));
    probe.args([
        "-v",
        "error",
        "-show_entries",
        "stream=codec_name,width,height",
        "-of",
        "csv=p=0",
        &url,
    ]);
    let output = run_bounded(probe, Duration::from_secs(20));
    finish(publisher);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut lines: Vec<&str> = text.lines().map(str::trim).collect();
    lines.sort_unstable();
    assert_eq!(lines, vec!["aac", "h264,320,240"], "ffprobe said: {text}");
    server.shutdown();
}

#[test]
fn ffmpeg_plays_and_decodes_without_errors() {
    let server = start_server(2, |_| {});
    let url = format!("rtmp://{}/live/play", server.local_addrs()[0]);
    let publisher = publish(&url, 20);
    wait_for_publisher(&server);
    let mut play = Command::new(tool("ffmpeg"));
    play.args([
        "-hide_banner",
        "-v",
        "error",
        "-i",
        &url,
        "-t",
        "5",
        "-f",
        "null",
        "-",
    ]);
    let started = Instant::now();
    let output = run_bounded(play, Duration::from_secs(30));
    finish(publisher);
    let errors = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "ffmpeg failed: {errors}");
    assert!(errors.trim().is_empty(), "decoding errors: {errors}");
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "played 5 s of live stream"
    );
    server.shutdown();
}
