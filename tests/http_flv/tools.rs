//! Real players over HTTP-FLV: ffprobe, ffmpeg and ffplay on an ffmpeg
//! publish, ffmpeg 9 on HEVC and Opus, and enhanced bodies byte for byte.

use super::*;

/// ffplay's status lines (`  2.95 M-A:  0.000 fd=   0 aq=    9KB …`): the
/// clock in seconds and the audio queued, in KiB.
fn ffplay_status(log: &str) -> Vec<(f64, u32)> {
    log.split(['\n', '\r'])
        .filter_map(|line| {
            let (clock, rest) = line.split_once("M-A:")?;
            let queued = rest.split_once("aq=")?.1.split_once("KB")?.0;
            Some((clock.trim().parse().ok()?, queued.trim().parse().ok()?))
        })
        .collect()
}

#[test]
fn ffprobe_ffmpeg_and_ffplay_read_an_ffmpeg_h264_aac_publish_over_http_flv() {
    let server = start_server(2, |_| {});
    let publisher = publish(&format!("rtmp://{}/live/cam", rtmp(&server)), 25);
    wait_for_frames_in(&server, 30);
    let url = format!("http://{}/live/cam.flv", http(&server));

    assert_probes_h264_and_aac(&url);

    // ffmpeg decodes 3 s while ffplay plays, headless. ffplay's `-t 3
    // -autoexit` never ends a live stream (it exits at the end of its
    // input only), so it plays until killed 5 s on.
    let mut decode = Command::new(tool("ffmpeg"));
    decode.args(["-hide_banner", "-v", "error", "-i", &url]);
    decode.args(["-t", "3", "-f", "null", "-progress", "pipe:1", "-"]);
    let mut play = Command::new(tool("ffplay"));
    play.env("SDL_VIDEODRIVER", "dummy")
        .env("SDL_AUDIODRIVER", "dummy");
    play.args(["-hide_banner", "-nodisp", "-stats", &url]);
    let (decoded, played) = std::thread::scope(|s| {
        let playing = s.spawn(|| run_bounded(play, Duration::from_secs(5)));
        let decoded = run_bounded(decode, Duration::from_secs(20));
        (decoded, playing.join().unwrap())
    });
    finish(publisher);
    let errors = String::from_utf8_lossy(&decoded.stderr);
    assert!(decoded.status.success(), "ffmpeg failed: {errors}");
    assert!(errors.trim().is_empty(), "decoding errors: {errors}");
    // `-progress` reports `frame=N`, the last time for all of it.
    let progress = String::from_utf8_lossy(&decoded.stdout);
    let frames = progress
        .lines()
        .filter_map(|l| l.strip_prefix("frame=")?.trim().parse::<u32>().ok())
        .max();
    assert!(
        frames >= Some(85),
        "3 s at 30 fps decoded, not {frames:?}: {progress}"
    );
    let log = String::from_utf8_lossy(&played.stderr);
    assert!(log.contains("Video: h264"), "ffplay saw no h264: {log}");
    assert!(log.contains("Audio: aac"), "ffplay saw no aac: {log}");
    let failures: Vec<&str> = log
        .split(['\n', '\r'])
        .filter(|l| l.to_lowercase().contains("error") || l.contains("Failed"))
        .collect();
    assert!(failures.is_empty(), "ffplay: {failures:?}");
    let status = ffplay_status(&log);
    assert!(
        status
            .iter()
            .any(|&(clock, queued)| clock >= 2.5 && queued > 0),
        "ffplay played 2.5 s with audio still coming: {status:?}"
    );
    server.shutdown();
}

#[test]
fn ffmpeg9_reads_hevc_and_opus_back_over_http_flv_from_enhanced_rtmp() {
    let ffmpeg = ffmpeg9();
    let server = start_server(2, |_| {});
    let publisher = publish_hevc(&ffmpeg, &format!("rtmp://{}/live/hevc", rtmp(&server)), 20);
    wait_for_frames_in(&server, 25);
    let url = format!("http://{}/live/hevc.flv", http(&server));
    assert_decodes_hevc_and_opus(&ffmpeg, &url);
    finish(publisher);
    server.shutdown();
}

#[test]
fn enhanced_rtmp_bodies_go_out_as_flv_tags_unchanged() {
    let server = start_server(2, |_| {});
    let mut publisher = Client::connect(rtmp(&server), "live");
    let id = publisher.publish("hevc");
    let mut flv = WebPlayer::get(http(&server), "/live/hevc.flv").expect("playing");
    let mut ws = WebPlayer::websocket(http(&server), "/live/hevc.flv", None).expect("playing");
    // Past 2^24 ms: the tags' timestamp extension byte is used.
    let sent = media::enhanced(0x0100_0000);
    for media in &sent {
        publisher.send(id, media);
    }
    for (player, name) in [(&mut flv, "http-flv"), (&mut ws, "ws-flv")] {
        let got: Vec<Media> = sent.iter().map(|_| player.next_tag()).collect();
        assert_eq!(got, sent, "{name}");
    }
    server.shutdown();
}
