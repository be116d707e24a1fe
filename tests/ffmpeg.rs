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

use std::process::Command;
use std::time::{Duration, Instant};

use common::ffmpeg::{
    assert_probes_h264_and_aac, finish, publish, run_bounded, tool, wait_for_frames_in,
};
use common::start_server;

#[test]
fn ffprobe_sees_h264_and_aac_with_the_published_size() {
    let server = start_server(2, |_| {});
    let url = format!("rtmp://{}/live/probe", server.local_addrs()[0]);
    let publisher = publish(&url, 20);
    wait_for_frames_in(&server, 30);
    assert_probes_h264_and_aac(&url);
    finish(publisher);
    server.shutdown();
}

#[test]
fn ffmpeg_plays_and_decodes_without_errors() {
    let server = start_server(2, |_| {});
    let url = format!("rtmp://{}/live/play", server.local_addrs()[0]);
    let publisher = publish(&url, 20);
    wait_for_frames_in(&server, 30);
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
