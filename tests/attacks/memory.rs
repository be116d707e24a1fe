//! What a publisher can make the server keep: kept frames own memory of
//! their own size, and the GOP cache counts what they hold.

use std::time::Duration;

use ringcast::media::FRAME_OVERHEAD_BYTES;
use ringcast::protocol::MessageType;

use super::common::admin;
use super::common::raw::{self, CLIENT_CHUNK_SIZE, RAW_CHUNK_STREAM};
use super::cost::{
    self, CPU_PER_MESSAGE_MAX, LOG_LINES_PER_S_MAX, Meter, RSS_GROWTH_MAX, RSS_SETTLED_MAX,
};
use super::*;

/// A publisher sends a keyframe, then tiny interframes each followed by
/// 48 KB the session ignores (audio on a stream that is not publishing),
/// every message in one chunk, so each interframe is read into a buffer
/// mostly made of junk. Before kept frames owned their bytes, the GOP
/// cache pinned one 64 KiB read buffer per 17-byte interframe (128 MB
/// here) while reporting a few kilobytes.
#[test]
fn kept_frames_do_not_pin_the_buffers_they_were_read_from() {
    const ROUNDS: u32 = 2000;
    const JUNK_BYTES: usize = 48_000;
    const CHUNK_SIZE: u32 = 65_536;
    let scene = Scene::start(|_| {});
    let mut publisher = Client::connect(scene.addr, reference::APP);
    let stream_id = publisher.publish("pinning").0;
    let meter = Meter::start();

    let mut socket = publisher.socket.try_clone().expect("socket");
    let media = |type_id, stream_id, payload: &[u8]| {
        raw::message(RAW_CHUNK_STREAM, type_id, stream_id, payload, CHUNK_SIZE)
    };
    let mut start =
        raw::control(MessageType::SET_CHUNK_SIZE, CHUNK_SIZE, CLIENT_CHUNK_SIZE).to_vec();
    start.extend_from_slice(&media(
        MessageType::VIDEO,
        stream_id,
        &media::avc_header().payload,
    ));
    start.extend_from_slice(&media(
        MessageType::VIDEO,
        stream_id,
        &media::video(0, 1 << 30, 1000).payload,
    ));
    raw::send(&mut socket, &start);
    let junk = media(MessageType::AUDIO, stream_id + 6, &vec![0xAF; JUNK_BYTES]);
    for n in 1..=ROUNDS {
        let mut round = media(
            MessageType::VIDEO,
            stream_id,
            &media::video(n, 1 << 30, 6).payload,
        )
        .to_vec();
        round.extend_from_slice(&junk);
        raw::send(&mut socket, &round);
    }

    // Every interframe is in the GOP cache, which reports what it holds.
    let admin = scene.server.admin_addr().expect("admin API");
    let deadline = std::time::Instant::now() + TIMEOUT;
    let gop_bytes = loop {
        let streams = admin::get_json(admin, "/api/v1/streams");
        let gop = streams["streams"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == "pinning"))
            .and_then(|s| s["gop_cache_bytes"].as_u64())
            .unwrap_or(0);
        if gop >= u64::from(ROUNDS) * FRAME_OVERHEAD_BYTES as u64 {
            break gop;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "gop_cache_bytes {gop}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let spent = meter.spent();
    eprintln!("pinning: {spent:?}, gop_cache_bytes {gop_bytes}");
    assert!(
        spent.rss_growth < RSS_GROWTH_MAX,
        "RSS grew {} MB while the GOP cache reports {gop_bytes} bytes",
        spent.rss_growth >> 20
    );
    assert!(
        spent.cpu_per(2 * u64::from(ROUNDS)) < CPU_PER_MESSAGE_MAX,
        "{spent:?}"
    );
    assert!(spent.log_lines_per_s() < LOG_LINES_PER_S_MAX, "{spent:?}");

    drop((publisher, socket));
    let settled = cost::settle_rss(&meter, RSS_SETTLED_MAX, Duration::from_secs(5));
    assert!(
        settled < RSS_SETTLED_MAX,
        "RSS still {} MB up",
        settled >> 20
    );
    let report = scene.finish("fresh-after-pinning");
    assert_kept_pace(&report, "pinning");
}
