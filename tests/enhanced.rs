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

use common::ffmpeg::{
    assert_decodes_hevc_and_opus, ffmpeg9, finish, publish_hevc, wait_for_frames_in,
};
use common::{Client, media, start_server};

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
    let sent = media::enhanced(base);
    for media in &sent {
        publisher.send(p, media);
    }
    let got = player.collect_media(sent.len());
    assert_eq!(got, sent);
    server.shutdown();
}

#[test]
fn ffmpeg9_publishes_and_plays_hevc_and_opus_over_enhanced_rtmp() {
    let ffmpeg = ffmpeg9();
    let server = start_server(2, |_| {});
    let url = format!("rtmp://{}/live/hevc", server.local_addrs()[0]);
    let publisher = publish_hevc(&ffmpeg, &url, 20);
    wait_for_frames_in(&server, 25);
    assert_decodes_hevc_and_opus(&ffmpeg, &url);
    finish(publisher);
    server.shutdown();
}
