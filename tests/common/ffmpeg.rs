//! ffmpeg as a peer: Debian's ffmpeg 5.1 (H.264 + AAC) and the static
//! ffmpeg 9 from PyPI's imageio-ffmpeg (HEVC + Opus over enhanced RTMP).
//! Without them the tests fail, never skip.

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ringcast::server::ServerHandle;

/// `name` from the PATH (ffmpeg, ffprobe, ffplay), once it answers
/// `-version`.
pub fn tool(name: &str) -> String {
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

/// The static ffmpeg 9 that imageio-ffmpeg ships.
pub fn ffmpeg9() -> String {
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

/// Debian's ffmpeg publishing `seconds` of 320×240 test video at 30 fps
/// (keyframe every 2 s) and a sine tone, H.264 + AAC, in real time.
pub fn publish(url: &str, seconds: u32) -> Child {
    publish_with(url, seconds, &[])
}

/// [`publish`] with `output_options` for the URL's protocol
/// (`-tls_verify 0` for a test certificate over `rtmps://`).
pub fn publish_with(url: &str, seconds: u32, output_options: &[&str]) -> Child {
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
        .args(["-c:a", "aac", "-f", "flv"])
        .args(output_options)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffmpeg starts")
}

/// ffmpeg 9 publishing `seconds` of 320×240 HEVC at 25 fps (keyframe every
/// 2 s) and an Opus tone over enhanced RTMP, in real time.
pub fn publish_hevc(ffmpeg: &str, url: &str, seconds: u32) -> Child {
    Command::new(ffmpeg)
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds.to_string()])
        .args(["-c:v", "libx265", "-preset", "ultrafast", "-g", "50"])
        .args([
            "-x265-params",
            "log-level=error",
            "-c:a",
            "libopus",
            "-f",
            "flv",
            url,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ffmpeg 9 starts")
}

/// Runs a command, killing it if it outlives `limit`.
pub fn run_bounded(mut command: Command, limit: Duration) -> Output {
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

/// Waits until the server has received `frames` frames (the publisher is
/// live), for at most 15 s.
pub fn wait_for_frames_in(server: &ServerHandle, frames: u64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while server.stats().iter().map(|s| s.frames_in).sum::<u64>() < frames {
        assert!(Instant::now() < deadline, "ffmpeg never published");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stops a publisher.
pub fn finish(mut publisher: Child) {
    let _ = publisher.kill();
    let _ = publisher.wait();
}

/// ffprobe finds the H.264 (320×240) and AAC streams [`publish`] sends at
/// `url`.
pub fn assert_probes_h264_and_aac(url: &str) {
    let mut probe = Command::new(tool("ffprobe"));
    probe.args([
        "-v",
        "error",
        "-show_entries",
        "stream=codec_name,width,height",
    ]);
    probe.args(["-of", "csv=p=0", url]);
    let probed = run_bounded(probe, Duration::from_secs(20));
    let text = String::from_utf8_lossy(&probed.stdout);
    assert!(
        probed.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&probed.stderr)
    );
    let mut lines: Vec<&str> = text.lines().map(str::trim).collect();
    lines.sort_unstable();
    assert_eq!(lines, vec!["aac", "h264,320,240"], "ffprobe said: {text}");
}

/// Debian's ffmpeg decodes `seconds` of a live stream from `url` with
/// nothing on stderr (no error, no warning): the frames decoded, from
/// its `-progress` report.
pub fn decode_quietly(url: &str, seconds: u32) -> u32 {
    let mut decode = Command::new(tool("ffmpeg"));
    decode.args(["-hide_banner", "-v", "error", "-i", url]);
    decode.args(["-t", &seconds.to_string()]);
    decode.args(["-f", "null", "-progress", "pipe:1", "-"]);
    let decoded = run_bounded(decode, Duration::from_secs(u64::from(seconds) + 20));
    let errors = String::from_utf8_lossy(&decoded.stderr);
    assert!(decoded.status.success(), "ffmpeg failed: {errors}");
    assert!(errors.trim().is_empty(), "decoding errors: {errors}");
    // `-progress` reports `frame=N`, the last time for all of it.
    let progress = String::from_utf8_lossy(&decoded.stdout);
    progress
        .lines()
        .filter_map(|l| l.strip_prefix("frame=")?.trim().parse::<u32>().ok())
        .max()
        .unwrap_or_else(|| panic!("no progress report: {progress}"))
}

/// `ffmpeg` (9) decodes 3 s of [`publish_hevc`]'s HEVC and Opus from
/// `url` without an error.
pub fn assert_decodes_hevc_and_opus(ffmpeg: &str, url: &str) {
    assert_decodes_hevc_and_opus_for(ffmpeg, url, 3);
}

/// [`assert_decodes_hevc_and_opus`] for `seconds`.
pub fn assert_decodes_hevc_and_opus_for(ffmpeg: &str, url: &str, seconds: u32) {
    let mut play = Command::new(ffmpeg);
    play.args(["-hide_banner", "-i", url, "-t", &seconds.to_string()]);
    play.args(["-f", "null", "-"]);
    let played = run_bounded(play, Duration::from_secs(u64::from(seconds) + 30));
    let log = String::from_utf8_lossy(&played.stderr);
    assert!(played.status.success(), "playback failed: {log}");
    assert!(log.contains("Video: hevc"), "no hevc stream in: {log}");
    assert!(log.contains("Audio: opus"), "no opus stream in: {log}");
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.to_lowercase().contains("error"))
        .collect();
    assert!(errors.is_empty(), "decoding errors: {errors:?}");
}
