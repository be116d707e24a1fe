//! Enhanced RTMP (veovera): FourCC codecs, multitrack, extended headers
//! pass through untouched; and ffmpeg 9 publishing HEVC + Opus plays back.
//! The ffmpeg 9 test needs the static build from PyPI
//! (`pip install imageio-ffmpeg`); without it, it fails, never skips.
// Tests and benches fail by panicking on what they did not expect.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Client, start_server};
use ringcast::protocol::Timestamp;
use ringcast::session::{Media, MediaKind};

fn enhanced(kind: MediaKind, ts: u32, body: &[u8]) -> Media {
    Media {
        kind,
        timestamp: Timestamp(ts),
        payload: Bytes::copy_from_slice(body),
    }
}

#[test]
fn enhanced_rtmp_bodies_and_large_timestamps_pass_through_unchanged() {
    let server = start_server(2, |_| {});
    let addr = server.local_addrs()[0];
    let mut publisher = Client::connect(addr, "live");
    let p = publisher.publish("hevc");
    let mut player = Client::connect(addr, "live");
    player.play("hevc");
    // Past 2^24 ms: extended timestamps on the wire both ways.
    let base = 0x0100_0000;
    let sent = vec![
        // hvc1 SequenceStart, Opus SequenceStart.
        enhanced(MediaKind::Video, base, b"\x90hvc1\x01\x02\x03\x04"),
        enhanced(MediaKind::Audio, base, b"\x90Opus\x4f\x70\x75\x73"),
        // hvc1 CodedFrames keyframe with composition time, CodedFramesX.
        enhanced(MediaKind::Video, base, b"\x91hvc1\x00\x00\x10\xaa\xbb"),
        enhanced(MediaKind::Video, base + 33, b"\xa3hvc1\xcc\xdd"),
        // Multitrack, one track, av01 coded frames.
        enhanced(MediaKind::Video, base + 66, b"\xa6\x01av01\x00\xee"),
        // Audio multitrack, many tracks of Opus.
        enhanced(
            MediaKind::Audio,
            base + 20,
            b"\x95\x11Opus\x00\x00\x00\x01\xff\x01\x00\x00\x01\xfe",
        ),
    ];
    for media in &sent {
        publisher.send(p, media);
    }
    let got = player.collect_media(sent.len());
    assert_eq!(got, sent);
    server.shutdown();
}

fn ffmpeg9() -> String {
    let output = Command::new("python3")
        .args([
            "-c",
            "import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())",
        ])
        .output();
    match output {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        _ => panic!("ffmpeg 9 not found: install it with `pip install imageio-ffmpeg`"),
    }
}

#[test]
fn ffmpeg9_publishes_and_plays_hevc_and_opus_over_enhanced_rtmp() {
    let ffmpeg = ffmpeg9();
    let server = start_server(2, |_| {});
    let url = format!("rtmp://{}/live/hevc", server.local_addrs()[0]);
    let mut publisher = Command::new(&ffmpeg)
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args([
            "-t",
            "20",
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-g",
            "50",
        ])
        .args([
            "-x265-params",
            "log-level=error",
            "-c:a",
            "libopus",
            "-f",
            "flv",
            &url,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ffmpeg 9 starts");
    let deadline = Instant::now() + Duration::from_secs(15);
    while server.stats().iter().map(|s| s.frames_in).sum::<u64>() < 25 {
        assert!(Instant::now() < deadline, "ffmpeg 9 never published");
        std::thread::sleep(Duration::from_millis(50));
    }
    let play = Command::new(&ffmpeg)
        .args(["-hide_banner", "-i", &url, "-t", "3", "-f", "null", "-"])
        .stdin(Stdio::null())
        .output()
        .expect("ffmpeg 9 plays");
    let _ = publisher.kill();
    let _ = publisher.wait();
    let log = String::from_utf8_lossy(&play.stderr);
    assert!(play.status.success(), "playback failed: {log}");
    assert!(log.contains("Video: hevc"), "no hevc stream in: {log}");
    assert!(log.contains("Audio: opus"), "no opus stream in: {log}");
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.to_lowercase().contains("error"))
        .collect();
    assert!(errors.is_empty(), "decoding errors: {errors:?}");
    server.shutdown();
}
