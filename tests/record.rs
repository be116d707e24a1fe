//! Recording end to end: ffmpeg publishes a few seconds, ffprobe and
//! ffmpeg read the files back (duration, keyframe index, seeking, FLV and
//! MP4), files split by size, the admin API starts and stops a
//! recording, `on_record_done` is told each file, and a file size limit
//! (a full disk) stops the recording while a player goes on. These tests
//! need ffmpeg (`apt-get install ffmpeg`); without it they fail, never
//! skip.
// Tests and benches fail by panicking on what they did not expect.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::ffmpeg::{publish, run_bounded, tool, wait_for_frames_in};
use common::hooks::{Answer, HookService};
use common::served::Served;
use common::{Client, admin, start_server};
use ringcast::config::{Config, HookFormat, RecordFormat, RecordSettings};
use ringcast::protocol::amf::{Limits, Value};
use ringcast::protocol::amf0;
use ringcast::session::MediaKind;
use serde_json::Value as Json;

/// What ffmpeg publishes, in seconds.
const PUBLISHED_S: f64 = 6.0;

/// How far a file's duration may be from what was published.
const DURATION_SLACK_S: f64 = 0.5;

/// A directory of its own under the temporary directory, removed when
/// dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("ringcast-record-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// The files below it, sorted.
    fn files(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    out.push(path);
                }
            }
        }
        let mut files = Vec::new();
        walk(&self.0, &mut files);
        files.sort();
        files
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Recording settings writing `format` files under `dir`.
fn recording(dir: &TempDir, format: RecordFormat, enabled: bool) -> RecordSettings {
    let ext = format.name();
    let path = format!(
        "{}/{{app}}/{{stream}}-{{start:%Y%m%dT%H%M%S}}.{ext}",
        dir.0.display()
    );
    RecordSettings {
        enabled,
        path: path.parse().unwrap(),
        format,
        ..RecordSettings::default()
    }
}

/// A server recording as `settings` says, telling `hooks` of each file.
fn recording_server(
    settings: RecordSettings,
    hooks: &HookService,
) -> ringcast::server::ServerHandle {
    start_server(2, |c: &mut Config| {
        c.record.default = settings;
        c.access.default.hooks.on_record_done = vec![hooks.url("/recorded")];
    })
}

/// Waits until ffmpeg has published all it was asked to.
fn published(publisher: Child) {
    let output = publisher.wait_with_output().unwrap();
    let errors = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "ffmpeg failed: {errors}");
}

/// The `on_record_done` calls so far.
fn recorded(hooks: &HookService) -> Vec<Json> {
    let calls = hooks.calls();
    calls
        .into_iter()
        .filter(|c| c["action"] == "on_record_done")
        .collect()
}

/// Waits until `on_record_done` was told of `files` files.
fn wait_for_files(hooks: &HookService, files: usize) -> Vec<Json> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let calls = recorded(hooks);
        if calls.len() >= files {
            return calls;
        }
        assert!(
            Instant::now() < deadline,
            "{files} files; told of {calls:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// ffprobe's `format=duration` of `path`, in seconds.
fn probed_duration(path: &Path) -> f64 {
    let mut probe = Command::new(tool("ffprobe"));
    probe.args([
        "-v",
        "error",
        "-show_entries",
        "format=duration",
        "-of",
        "csv=p=0",
    ]);
    probe.arg(path);
    let probed = run_bounded(probe, Duration::from_secs(20));
    let text = String::from_utf8_lossy(&probed.stdout);
    assert!(
        probed.status.success(),
        "ffprobe {}: {}",
        path.display(),
        String::from_utf8_lossy(&probed.stderr)
    );
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("a duration: {text}"))
}

/// The codecs ffprobe finds in `path`, sorted.
fn probed_codecs(path: &Path) -> Vec<String> {
    let mut probe = Command::new(tool("ffprobe"));
    probe.args([
        "-v",
        "error",
        "-show_entries",
        "stream=codec_name",
        "-of",
        "csv=p=0",
    ]);
    probe.arg(path);
    let probed = run_bounded(probe, Duration::from_secs(20));
    let mut codecs: Vec<String> = String::from_utf8_lossy(&probed.stdout)
        .lines()
        .map(|l| l.trim().to_owned())
        .collect();
    codecs.sort();
    codecs
}

/// ffmpeg seeks `seconds` into `path` and decodes a frame there, without
/// an error.
fn assert_seeks(path: &Path, seconds: u32) {
    let mut seek = Command::new(tool("ffmpeg"));
    seek.args([
        "-hide_banner",
        "-v",
        "error",
        "-ss",
        &seconds.to_string(),
        "-i",
    ]);
    seek.arg(path);
    seek.args(["-frames:v", "1", "-f", "null", "-"]);
    let output = run_bounded(seek, Duration::from_secs(20));
    let errors = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "seeking {}: {errors}",
        path.display()
    );
    assert!(
        errors.trim().is_empty(),
        "seeking {}: {errors}",
        path.display()
    );
}

/// The `keyframes` index of an FLV file's `onMetaData` (its first tag):
/// (file positions, times in seconds), and its `duration`.
fn flv_index(path: &Path) -> (Vec<f64>, Vec<f64>, f64) {
    let file = std::fs::read(path).unwrap();
    assert_eq!(&file[..3], b"FLV");
    assert_eq!(file[13], 18, "onMetaData first");
    let size = u32::from_be_bytes([0, file[14], file[15], file[16]]) as usize;
    let body = &file[24..24 + size];
    // The value, then the zeros of the space reserved for the index.
    let end = body.iter().rposition(|b| *b != 0).unwrap() + 1;
    let values = amf0::decode_all(&body[..end], &Limits::default()).unwrap();
    let [Value::String(name), Value::EcmaArray(entries)] = &values[..] else {
        panic!("not onMetaData: {values:?}");
    };
    assert_eq!(name, "onMetaData");
    let property = |name: &str| &entries.iter().find(|(n, _)| n == name).unwrap().1;
    let keyframes = property("keyframes");
    let numbers = |name| match keyframes.property(name) {
        Some(Value::StrictArray(items)) => items.iter().map(|v| v.as_f64().unwrap()).collect(),
        other => panic!("keyframes.{name}: {other:?}"),
    };
    let duration = property("duration").as_f64().unwrap();
    (numbers("filepositions"), numbers("times"), duration)
}

#[test]
fn a_published_stream_is_recorded_to_an_flv_file_that_plays_with_its_duration_and_seeks() {
    let dir = TempDir::new("flv");
    let hooks = HookService::start(|_| Answer::Status(200));
    let server = recording_server(recording(&dir, RecordFormat::Flv, true), &hooks);
    let url = format!("rtmp://{}/live/cam", server.local_addrs()[0]);
    published(publish(&url, PUBLISHED_S as u32));
    let calls = wait_for_files(&hooks, 1);
    let call = &calls[0];
    let path = PathBuf::from(call["path"].as_str().unwrap());
    assert_eq!(
        dir.files(),
        std::slice::from_ref(&path),
        "one file, where the hook says"
    );
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    assert!(path.starts_with(dir.0.join("live")), "{path:?}");
    assert!(
        name.starts_with("cam-2") && name.ends_with(".flv"),
        "{name}"
    );
    assert_eq!(
        (&call["app"], &call["stream"], &call["format"]),
        (&Json::from("live"), &Json::from("cam"), &Json::from("flv"))
    );
    assert!(
        call["client_id"]
            .as_str()
            .is_some_and(|id| id.contains('-')),
        "{call}"
    );
    let bytes = std::fs::metadata(&path).unwrap().len();
    assert_eq!(call["bytes"], bytes, "{call}");
    let told_s = call["duration_ms"].as_f64().unwrap() / 1000.0;
    assert!((told_s - PUBLISHED_S).abs() <= DURATION_SLACK_S, "{call}");
    let probed = probed_duration(&path);
    assert!(
        (probed - PUBLISHED_S).abs() <= DURATION_SLACK_S,
        "ffprobe says {probed} s for {PUBLISHED_S} s published"
    );
    assert_eq!(probed_codecs(&path), ["aac", "h264"]);
    // The index: a keyframe every 2 s, the first at 0, each at its tag.
    let (positions, times, duration) = flv_index(&path);
    assert!((duration - told_s).abs() < 0.001);
    assert!(times.len() >= 3, "keyframes at {times:?}");
    assert_eq!(times[0], 0.0, "timestamps start at 0");
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
    let file = std::fs::read(&path).unwrap();
    for at in &positions {
        let tag = &file[*at as usize..];
        assert_eq!(
            (tag[0], tag[11] >> 4),
            (9, 1),
            "a video keyframe tag at {at}"
        );
    }
    for seconds in [1, 3, 5] {
        assert_seeks(&path, seconds);
    }
    let totals: ringcast::shard::stats::ShardSnapshot = server.stats().into_iter().sum();
    assert_eq!((totals.record_files, totals.record_bytes), (1, bytes));
    assert_eq!(
        (
            totals.recordings,
            totals.record_errors,
            totals.record_dropped
        ),
        (0, 0, 0)
    );
    server.shutdown();
}

#[test]
fn on_record_done_goes_to_every_url_worded_as_srs_on_dvr_or_nginx_record_done() {
    let dir = TempDir::new("formats");
    let hooks = HookService::start(|_| Answer::Body(200, "0"));
    let server = start_server(1, |c: &mut Config| {
        c.record.default = recording(&dir, RecordFormat::Flv, true);
        let mut srs = c.access.default.clone();
        srs.hook_format = HookFormat::Srs;
        srs.hooks.on_record_done = vec![hooks.url("/dvr-a"), hooks.url("/dvr-b")];
        let mut nginx = c.access.default.clone();
        nginx.hook_format = HookFormat::Nginx;
        nginx.hooks.on_record_done = vec![hooks.url("/record_done")];
        c.access.apps.insert("srs".into(), srs);
        c.access.apps.insert("ng".into(), nginx);
    });
    let addr = server.local_addrs()[0];
    let publishers = [
        publish(&format!("rtmp://{addr}/srs/cam"), 2),
        publish(&format!("rtmp://{addr}/ng/cam"), 2),
    ];
    for publisher in publishers {
        published(publisher);
    }
    for path in ["/dvr-a", "/dvr-b"] {
        let dvr = hooks.wait_for_request(path, |r| r.path == path);
        assert_eq!(dvr.content_type, "application/json");
        let fields = &dvr.fields;
        assert_eq!(
            (&fields["action"], &fields["app"], &fields["stream"]),
            (
                &Json::from("on_dvr"),
                &Json::from("srs"),
                &Json::from("cam")
            )
        );
        let file = PathBuf::from(fields["file"].as_str().unwrap());
        assert!(file.starts_with(dir.0.join("srs")), "{fields}");
        assert!(fields["cwd"].as_str().is_some_and(|cwd| !cwd.is_empty()));
        assert!(fields["ip"] == "127.0.0.1", "{fields}");
    }
    let done = hooks.wait_for_request("record_done", |r| r.path == "/record_done");
    assert_eq!(done.content_type, "application/x-www-form-urlencoded");
    let fields = &done.fields;
    assert_eq!(
        (&fields["call"], &fields["app"], &fields["name"]),
        (
            &Json::from("record_done"),
            &Json::from("ng"),
            &Json::from("cam")
        )
    );
    let path = PathBuf::from(fields["path"].as_str().unwrap());
    assert!(path.starts_with(dir.0.join("ng")), "{fields}");
    assert_eq!(dir.files().len(), 2, "one file a stream");
    server.shutdown();
}

#[test]
fn an_mp4_recording_is_fragmented_mp4_that_ffprobe_reads_with_its_duration() {
    let dir = TempDir::new("mp4");
    let hooks = HookService::start(|_| Answer::Status(200));
    let server = recording_server(recording(&dir, RecordFormat::Mp4, true), &hooks);
    let url = format!("rtmp://{}/live/cam", server.local_addrs()[0]);
    published(publish(&url, PUBLISHED_S as u32));
    let calls = wait_for_files(&hooks, 1);
    let path = PathBuf::from(calls[0]["path"].as_str().unwrap());
    assert!(path.to_string_lossy().ends_with(".mp4"), "{path:?}");
    assert_eq!(calls[0]["format"], "mp4");
    let file = std::fs::read(&path).unwrap();
    assert_eq!(&file[4..8], b"ftyp");
    let probed = probed_duration(&path);
    assert!(
        (probed - PUBLISHED_S).abs() <= DURATION_SLACK_S,
        "ffprobe says {probed} s for {PUBLISHED_S} s published"
    );
    assert_eq!(probed_codecs(&path), ["aac", "h264"]);
    assert_seeks(&path, 3);
    server.shutdown();
}

#[test]
fn files_split_at_a_keyframe_once_they_hold_max_bytes_and_each_plays() {
    let dir = TempDir::new("split");
    let hooks = HookService::start(|_| Answer::Status(200));
    let settings = RecordSettings {
        max_bytes: 256 * 1024,
        ..recording(&dir, RecordFormat::Flv, true)
    };
    let server = recording_server(settings, &hooks);
    let url = format!("rtmp://{}/live/cam", server.local_addrs()[0]);
    published(publish(&url, PUBLISHED_S as u32));
    // ffmpeg's test pattern is about 110 KB a second: 675 KB in all.
    let deadline = Instant::now() + Duration::from_secs(15);
    while server.stats().iter().map(|s| s.recordings).sum::<u64>() > 0 {
        assert!(Instant::now() < deadline, "the recording never ended");
        std::thread::sleep(Duration::from_millis(50));
    }
    let files = dir.files();
    assert!(files.len() >= 2, "split in {files:?}");
    let calls = wait_for_files(&hooks, files.len());
    let told: Vec<PathBuf> = calls
        .iter()
        .map(|c| PathBuf::from(c["path"].as_str().unwrap()))
        .collect();
    let mut told_sorted = told.clone();
    told_sorted.sort();
    assert_eq!(told_sorted, files, "each file told to on_record_done once");
    let mut total_s = 0.0;
    for (path, call) in told.iter().zip(&calls) {
        let probed = probed_duration(path);
        let (_, times, _) = flv_index(path);
        assert_eq!(
            times.first(),
            Some(&0.0),
            "{path:?} starts at a keyframe, at 0"
        );
        assert_eq!(probed_codecs(path), ["aac", "h264"]);
        assert_eq!(call["bytes"], std::fs::metadata(path).unwrap().len());
        total_s += probed;
    }
    assert!(
        (total_s - PUBLISHED_S).abs() <= DURATION_SLACK_S,
        "{total_s} s in {} files",
        told.len()
    );
    // Split after a file passed the size, at the next keyframe (2 s).
    for path in &told[..told.len() - 1] {
        let len = std::fs::metadata(path).unwrap().len();
        assert!(
            (256 * 1024..256 * 1024 + 300_000).contains(&len),
            "{path:?}: {len}"
        );
    }
    server.shutdown();
}

#[test]
fn the_admin_api_starts_and_stops_a_recording_of_a_stream_whose_app_does_not_record() {
    let dir = TempDir::new("api");
    let hooks = HookService::start(|_| Answer::Status(200));
    let server = recording_server(recording(&dir, RecordFormat::Flv, false), &hooks);
    let api = server.admin_addr().unwrap();
    let url = format!("rtmp://{}/live/cam", server.local_addrs()[0]);
    let publisher = publish(&url, 8);
    wait_for_frames_in(&server, 60);
    let post = |path: &str| admin::request(api, "POST", path);
    let (status, body) = post("/api/v1/streams/live/nobody/record/start");
    assert_eq!(status, 404, "{body}");
    let (status, body) = post("/api/v1/streams/live/cam/record/pause");
    assert_eq!(status, 404, "{body}");
    assert!(dir.files().is_empty(), "the app records nothing by itself");
    let (status, body) = post("/api/v1/streams/live/cam/record/start");
    assert_eq!(status, 200, "{body}");
    let answer: Json = serde_json::from_str(&body).unwrap();
    assert_eq!(
        answer,
        serde_json::json!({"stream": "live/cam", "recording": true})
    );
    let stream = admin::get_json(api, "/api/v1/streams/live/cam");
    assert_eq!(stream["recording"], true);
    std::thread::sleep(Duration::from_secs(3));
    let (status, body) = post("/api/v1/streams/live/cam/record/stop");
    assert_eq!(status, 200, "{body}");
    let answer: Json = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["recording"], false);
    let calls = wait_for_files(&hooks, 1);
    let path = PathBuf::from(calls[0]["path"].as_str().unwrap());
    // From the GOP the server held (the last keyframe) to the stop.
    let probed = probed_duration(&path);
    assert!((2.5..=5.5).contains(&probed), "{probed} s recorded");
    let (_, times, _) = flv_index(&path);
    assert_eq!(times.first(), Some(&0.0));
    assert_eq!(
        admin::get_json(api, "/api/v1/streams/live/cam")["recording"],
        false
    );
    published(publisher);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(recorded(&hooks).len(), 1, "stopped means stopped");
    assert_eq!(dir.files(), [path]);
    server.shutdown();
}

#[test]
fn a_file_size_limit_stops_the_recording_and_nothing_else() {
    let dir = TempDir::new("full");
    let config = dir.0.join("ringcast.toml");
    let path = format!("{}/{{app}}/{{stream}}.flv", dir.0.display());
    std::fs::write(
        &config,
        format!("[record]\nenabled = true\npath = \"{path}\"\n"),
    )
    .unwrap();
    // Files of 200 KB at most: about 1.5 s of the stream.
    let limit = 200_000;
    let args = [
        "--config".as_ref(),
        config.as_os_str(),
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--admin".as_ref(),
        "127.0.0.1:0".as_ref(),
    ];
    let mut served = Served::start_with_file_size_limit(&args, limit);
    let addr = served.addr;
    let player = std::thread::spawn(move || {
        let mut player = Client::connect(addr, "live");
        player.play("cam");
        let mut video_ms = Vec::new();
        let until = Instant::now() + Duration::from_secs(12);
        while Instant::now() < until {
            player.pump(Duration::from_millis(100));
            let media = player.take_media();
            video_ms.extend(
                (media.iter())
                    // Coded frames (AVC NAL units), not the sequence header.
                    .filter(|m| m.kind == MediaKind::Video && m.payload.get(1) == Some(&1))
                    .map(|m| m.timestamp.0),
            );
            if video_ms.last().is_some_and(|ms| *ms >= 5_500) {
                break;
            }
        }
        video_ms
    });
    let publisher = publish(&format!("rtmp://{addr}/live/cam"), PUBLISHED_S as u32);
    let failed = served.wait_for_line("recording stopped");
    assert!(failed.contains("File too large"), "{failed}");
    let video_ms = player.join().unwrap();
    published(publisher);
    // The player got the stream on past the recording's end, to the end.
    let last = video_ms.last().copied().unwrap_or_default();
    assert!(last >= 5_500, "the player got video up to {last} ms only");
    assert!(video_ms.len() >= 150, "{} video frames", video_ms.len());
    // The file holds what fitted, complete: it plays and says how long.
    let files = dir.files();
    let recorded: Vec<&PathBuf> = files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "flv"))
        .collect();
    assert_eq!(recorded.len(), 1, "{files:?}");
    let len = std::fs::metadata(recorded[0]).unwrap().len();
    assert!(len <= limit, "{len} bytes");
    let probed = probed_duration(recorded[0]);
    let (_, _, duration) = flv_index(recorded[0]);
    assert!(probed > 0.5 && probed < 3.0, "{probed} s fitted");
    assert!(
        (probed - duration).abs() < 0.1,
        "{probed} s, metadata {duration} s"
    );
    let metrics = admin::scrape(served.admin.unwrap());
    assert_eq!(admin::sum(&metrics, "ringcast_record_errors_total"), 1.0);
    assert_eq!(admin::sum(&metrics, "ringcast_record_files_total"), 1.0);
    assert_eq!(admin::sum(&metrics, "ringcast_recordings"), 0.0);
}
