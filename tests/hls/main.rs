//! HLS and Low-Latency HLS end to end: ffmpeg publishes over RTMP, and
//! ffprobe, ffmpeg and our own requests play the playlist ringcast makes;
//! every playlist passes the RFC 8216bis checks of `validate`; blocking
//! reloads return when their part appears; bad directives, unknown streams
//! and floods of blocked requests get their status; a republish is a
//! discontinuity the numbering runs through; an edge pulls a stream for
//! HLS requests and stops once they stop. These tests need ffmpeg
//! (`apt-get install ffmpeg`) and ffmpeg 9 (`pip install imageio-ffmpeg`);
//! without them they fail, never skip.
// Tests and benches fail by panicking on what they did not expect.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../common/mod.rs"]
mod common;
mod http;
mod validate;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use common::ffmpeg::{
    assert_decodes_hevc_and_opus_for, ffmpeg9, finish, publish, publish_hevc, run_bounded, tool,
    wait_for_frames_in,
};
use common::{start_server, wait_until};
use http::{Http, get_when_ready};
use ringcast::protocol::url::RtmpUrl;
use validate::{Playlist, validate};

/// The playlist at `path`, once the stream has a segment, validated.
fn playlist(addr: SocketAddr, path: &str) -> Playlist {
    let answer = get_when_ready(addr, path, Duration::from_secs(15));
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        answer.header("content-type"),
        Some("application/vnd.apple.mpegurl")
    );
    validate(&answer.text()).unwrap_or_else(|faults| {
        panic!("invalid playlist:\n{}\nfaults: {faults:#?}", answer.text())
    })
}

#[test]
fn ffprobe_and_ffmpeg_play_h264_and_aac_from_the_playlist() {
    let server = start_server(2, |_| {});
    let rtmp = server.local_addrs()[0];
    let http = server.http_addr().unwrap();
    let publisher = publish(&format!("rtmp://{rtmp}/live/cam"), 30);
    wait_for_frames_in(&server, 30);
    let first = playlist(http, "/live/cam.m3u8");
    assert!(first.maps.iter().all(|uri| uri.starts_with("cam/init")));
    let url = format!("http://{http}/live/cam.m3u8");
    let mut probe = Command::new(tool("ffprobe"));
    probe.args([
        "-v",
        "error",
        "-show_entries",
        "stream=codec_name,width,height",
    ]);
    probe.args(["-of", "csv=p=0", &url]);
    let probed = run_bounded(probe, Duration::from_secs(30));
    let text = String::from_utf8_lossy(&probed.stdout);
    // The HLS demuxer shows the streams in its program and on their own.
    let mut lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines.sort_unstable();
    lines.dedup();
    assert_eq!(
        lines,
        vec!["aac", "h264,320,240"],
        "ffprobe: {text} {}",
        String::from_utf8_lossy(&probed.stderr)
    );
    // ffmpeg plays 10 s of it, decoding every frame without a word on stderr.
    let mut decode = Command::new(tool("ffmpeg"));
    decode.args(["-hide_banner", "-v", "error", "-i", &url, "-t", "10"]);
    decode.args(["-f", "null", "-progress", "pipe:1", "-"]);
    let decoded = run_bounded(decode, Duration::from_secs(40));
    let errors = String::from_utf8_lossy(&decoded.stderr);
    assert!(
        decoded.status.success() && errors.trim().is_empty(),
        "ffmpeg: {errors}"
    );
    let frames = String::from_utf8_lossy(&decoded.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("frame=")?.trim().parse::<u32>().ok())
        .max()
        .unwrap();
    assert!(frames >= 280, "10 s at 30 fps, got {frames} frames");
    // Every playlist on the way stayed valid and the numbers moved on.
    let later = playlist(http, "/live/cam.m3u8");
    assert!(
        later.media_sequence + later.segments.len() as u64
            > first.media_sequence + first.segments.len() as u64
    );
    finish(publisher);
}

#[test]
fn ffmpeg_9_plays_hevc_and_opus_from_the_playlist() {
    let ffmpeg = ffmpeg9();
    let server = start_server(1, |_| {});
    let rtmp = server.local_addrs()[0];
    let http = server.http_addr().unwrap();
    let publisher = publish_hevc(&ffmpeg, &format!("rtmp://{rtmp}/live/hevc"), 30);
    wait_for_frames_in(&server, 30);
    playlist(http, "/live/hevc.m3u8");
    let url = format!("http://{http}/live/hevc.m3u8");
    assert_decodes_hevc_and_opus_for(&ffmpeg, &url, 10);
    finish(publisher);
}

/// `(msn, part)` of a part URI `…/part{N}.{K}.m4s`.
fn part_numbers(uri: &str) -> (u64, u32) {
    let name = uri.rsplit('/').next().unwrap();
    let numbers = name
        .strip_prefix("part")
        .unwrap()
        .strip_suffix(".m4s")
        .unwrap();
    let (n, k) = numbers.split_once('.').unwrap();
    (n.parse().unwrap(), k.parse().unwrap())
}

#[test]
fn a_blocking_reload_returns_when_its_part_appears() {
    let server = start_server(2, |_| {});
    let rtmp = server.local_addrs()[0];
    let http = server.http_addr().unwrap();
    let publisher = publish(&format!("rtmp://{rtmp}/live/ll"), 30);
    wait_for_frames_in(&server, 30);
    let now = playlist(http, "/live/ll.m3u8");
    let (msn, part) = part_numbers(now.preload_hint.as_deref().unwrap());
    let part_target = Duration::from_secs_f64(now.part_target_s);
    let mut player = Http::connect(http);
    // Several in a row on one kept connection: each comes back once its
    // part is listed, within about a part's time.
    let (mut msn, mut part) = (msn, part);
    for _ in 0..6 {
        let asked = Instant::now();
        let answer = player.get(
            &format!("/live/ll.m3u8?_HLS_msn={msn}&_HLS_part={part}"),
            &[],
        );
        let waited = asked.elapsed();
        assert_eq!(answer.status, 200, "{}", answer.text());
        let reloaded = validate(&answer.text()).unwrap();
        let wanted = format!("ll/part{msn}.{part}.m4s");
        assert!(
            reloaded.parts.iter().any(|(_, _, uri)| *uri == wanted),
            "{wanted} not in {}",
            answer.text()
        );
        assert!(
            waited < part_target * 3,
            "waited {waited:?} for one part of {part_target:?}"
        );
        (msn, part) = part_numbers(reloaded.preload_hint.as_deref().unwrap());
        // The hinted part itself blocks until made, then comes whole.
        let media = player.get(&format!("/live/ll/part{msn}.{part}.m4s"), &[]);
        assert_eq!(media.status, 200);
        assert_eq!(&media.body[4..8], b"moof", "a part is a CMAF fragment");
    }
    // Far ahead, or malformed: 400 at once.
    for query in [
        format!("_HLS_msn={}&_HLS_part=0", msn + 10),
        "_HLS_part=1".to_owned(),
        "_HLS_msn=x".to_owned(),
    ] {
        let asked = Instant::now();
        let answer = player.get(&format!("/live/ll.m3u8?{query}"), &[]);
        assert_eq!(answer.status, 400, "{query}: {}", answer.text());
        assert!(asked.elapsed() < Duration::from_secs(1));
    }
    finish(publisher);
}

#[test]
fn media_objects_have_validators_ranges_and_caching() {
    let server = start_server(1, |_| {});
    let rtmp = server.local_addrs()[0];
    let http = server.http_addr().unwrap();
    let publisher = publish(&format!("rtmp://{rtmp}/live/obj"), 30);
    wait_for_frames_in(&server, 30);
    let list = playlist(http, "/live/obj.m3u8");
    let mut player = Http::connect(http);
    let (_, _, segment) = list.segments.first().unwrap();
    let whole = player.get(&format!("/live/{segment}"), &[]);
    assert_eq!(whole.status, 200);
    assert!(whole.header("cache-control").unwrap().contains("max-age="));
    let etag = whole.header("etag").unwrap().to_owned();
    let ranged = player.get(&format!("/live/{segment}"), &[("Range", "bytes=100-199")]);
    assert_eq!(ranged.status, 206);
    assert_eq!(ranged.body, whole.body[100..200]);
    let current = player.get(&format!("/live/{segment}"), &[("If-None-Match", &etag)]);
    assert_eq!(current.status, 304);
    let outside = player.get(&format!("/live/{segment}"), &[("Range", "bytes=99999999-")]);
    assert_eq!(outside.status, 416);
    let init = player.get(&format!("/live/{}", list.maps[0]), &[]);
    assert_eq!(init.status, 200);
    assert_eq!(&init.body[4..8], b"ftyp");
    let head = player.request("HEAD", &format!("/live/{segment}"), &[]);
    assert_eq!((head.status, head.body.len()), (200, 0));
    let playlist_answer = player.get("/live/obj.m3u8", &[]);
    assert_eq!(playlist_answer.header("cache-control"), Some("no-cache"));
    assert_eq!(
        playlist_answer.header("access-control-allow-origin"),
        Some("*")
    );
    for (path, status) in [
        ("/live/nobody.m3u8", 404),
        ("/live/obj/seg999999.m4s", 404),
        ("/live/obj/init7.mp4", 404),
    ] {
        assert_eq!(player.get(path, &[]).status, status, "{path}");
    }
    finish(publisher);
}

#[test]
fn blocked_requests_are_bounded_per_address() {
    let server = start_server(1, |config| config.hls.blocked_per_ip_max = 2);
    let rtmp = server.local_addrs()[0];
    let http = server.http_addr().unwrap();
    let publisher = publish(&format!("rtmp://{rtmp}/live/flood"), 30);
    wait_for_frames_in(&server, 30);
    let list = playlist(http, "/live/flood.m3u8");
    let (msn, part) = part_numbers(list.preload_hint.as_deref().unwrap());
    // Two wait for the part after the hinted one; a third is refused.
    let ahead = format!("/live/flood.m3u8?_HLS_msn={msn}&_HLS_part={}", part + 1);
    let waiting: Vec<_> = (0..2)
        .map(|_| {
            let ahead = ahead.clone();
            std::thread::spawn(move || Http::connect(http).get(&ahead, &[]).status)
        })
        .collect();
    std::thread::sleep(Duration::from_millis(50));
    let third = Http::connect(http).get(&ahead, &[]);
    assert_eq!(third.status, 429, "{}", third.text());
    for waiter in waiting {
        assert_eq!(waiter.join().unwrap(), 200);
    }
    finish(publisher);
}

#[test]
fn a_republish_is_a_discontinuity_and_the_numbers_go_on() {
    let server = start_server(2, |_| {});
    let rtmp = server.local_addrs()[0];
    let http = server.http_addr().unwrap();
    let url = format!("rtmp://{rtmp}/live/again");
    let first = publish(&url, 5);
    wait_for_frames_in(&server, 30);
    let before = playlist(http, "/live/again.m3u8");
    let mut first = first;
    first.wait().unwrap();
    let second = publish(&url, 30);
    let deadline = Instant::now() + Duration::from_secs(20);
    let after = loop {
        let now = playlist(http, "/live/again.m3u8");
        if now
            .segments
            .iter()
            .any(|(_, discontinuity, _)| *discontinuity)
        {
            break now;
        }
        assert!(
            Instant::now() < deadline,
            "no discontinuity after the republish"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(
        after.media_sequence >= before.media_sequence,
        "numbers went back"
    );
    assert!(
        after
            .segments
            .iter()
            .any(|(_, discontinuity, _)| *discontinuity)
    );
    finish(second);
}

/// Pulls the edge `server` runs now.
fn pulls(server: &ringcast::server::ServerHandle) -> u64 {
    server.stats().iter().map(|s| s.relay_pulls).sum()
}

#[test]
fn an_edge_pulls_a_stream_for_hls_requests_and_stops_once_they_stop() {
    let origin = start_server(1, |_| {});
    let publisher = publish(&format!("rtmp://{}/live/cam", origin.local_addrs()[0]), 60);
    wait_for_frames_in(&origin, 30);
    let origin_url = RtmpUrl::parse(&format!("rtmp://{}/live", origin.local_addrs()[0])).unwrap();
    let edge = start_server(2, |c| {
        c.relay.origins = vec![origin_url];
        c.hls.idle = Duration::from_millis(1000);
        c.relay.timing.idle_stop = Duration::from_millis(500);
    });
    let http = edge.http_addr().unwrap();
    // The first request finds nothing on the edge, starts the pull, and
    // is answered once the pulled stream has a segment.
    let first = Http::connect(http).get("/live/cam.m3u8?key=k", &[]);
    assert_eq!(first.status, 200, "{}", first.text());
    let listed = validate(&first.text()).unwrap_or_else(|f| panic!("{f:#?}"));
    assert!(!listed.segments.is_empty());
    assert_eq!(pulls(&edge), 1);
    // HLS players keep asking for longer than the idle times: it stays.
    let mut player = Http::connect(http);
    for _ in 0..10 {
        assert_eq!(player.get("/live/cam.m3u8", &[]).status, 200);
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(pulls(&edge), 1, "HLS requests keep the pull");
    drop(player);
    // Nobody asks: it stops once hls.idle_ms and relay.idle_stop_ms passed.
    wait_until("the pull stops", || pulls(&edge) == 0);
    finish(publisher);
    edge.shutdown();
    origin.shutdown();
}

#[test]
fn an_hls_request_for_a_stream_no_origin_has_gets_404() {
    // The only origin refuses connections: the pull finds nothing.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap();
    let edge = start_server(1, |c| {
        c.relay.origins = vec![RtmpUrl::parse(&format!("rtmp://{closed}/live")).unwrap()];
    });
    let http = edge.http_addr().unwrap();
    let began = Instant::now();
    let answer = Http::connect(http).get("/live/nowhere.m3u8", &[]);
    assert_eq!(answer.status, 404, "{}", answer.text());
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "answered after {:?}, not when the pull gave up",
        began.elapsed()
    );
    wait_until("the pull ended", || pulls(&edge) == 0);
    edge.shutdown();
}

#[test]
fn an_hls_session_is_admitted_once_whichever_shard_its_requests_reach() {
    let service = common::hooks::HookService::start(|_| common::hooks::Answer::Status(200));
    let server = start_server(2, |c| {
        c.access.default.hooks.on_play = vec![service.url("/play")];
    });
    let rtmp = server.local_addrs()[0];
    let http = server.http_addr().unwrap();
    let publisher = publish(&format!("rtmp://{rtmp}/live/cam"), 30);
    wait_for_frames_in(&server, 30);
    playlist(http, "/live/cam.m3u8?key=k");
    // A player's requests over several connections, which the kernel
    // spreads over both shards.
    for _ in 0..16 {
        let answer = Http::connect(http).get("/live/cam.m3u8?key=k", &[]);
        assert_eq!(answer.status, 200);
    }
    let stats = server.stats();
    assert!(
        stats.iter().all(|s| s.hls_requests > 0),
        "every shard served some: {:?}",
        stats.iter().map(|s| s.hls_requests).collect::<Vec<_>>()
    );
    let plays: Vec<_> = (service.calls().into_iter())
        .filter(|c| c["action"] == "on_play")
        .collect();
    assert_eq!(plays.len(), 1, "one on_play per session: {plays:?}");
    assert_eq!(plays[0]["stream"], "cam");
    assert_eq!(stats.iter().map(|s| s.players_hls).sum::<u64>(), 1);
    let metrics = common::admin::scrape(server.admin_addr().unwrap());
    assert_eq!(metrics["ringcast_hls_streams"], 1.0);
    assert!(
        metrics["ringcast_hls_window_bytes"] > 10_000.0,
        "{metrics:?}"
    );
    finish(publisher);
}
