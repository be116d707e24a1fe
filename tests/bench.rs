//! `ringcast bench` against an in-process server: every player gets every
//! frame with sane latency, over RTMP, HTTP-FLV and WebSocket-FLV, plain
//! and over TLS (a test CA's certificate, trusted with `--tls-ca`; a CA
//! the server's certificate is not from fails every player in words); the
//! JSON report has every field, and the synthetic stream is one ffprobe
//! accepts.
// Tests and benches fail by panicking on what they did not expect.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use common::pki::Pki;
use common::start_server;
use ringcast::server::ServerHandle;
use ringcast_bench::BenchConfig;
use ringcast_bench::report::Report;
use ringcast_bench::source::Shape;
use ringcast_bench::trust::Trust;
use ringcast_tls::{CertFiles, ServerTls};

fn config(url: String, players: usize, duration: Duration) -> BenchConfig {
    BenchConfig {
        url,
        publish_url: None,
        trust: Trust::PublicRoots,
        players,
        publishers: 1,
        duration,
        ramp: Duration::from_millis(500),
        churn_per_s: 0.0,
        shape: Shape {
            bitrate_kbps: 1000,
            fps: 30.0,
            gop_s: 1.0,
            audio_rate: 44_100,
        },
        flv: None,
        threads: 2,
        cpus: None,
        warmup: Duration::from_millis(500),
        server_pid: Some(std::process::id()),
        publisher_reconnect: None,
        progress: false,
    }
}

/// Every one of `players` (playing `who`) got every frame from a keyframe
/// start, at latencies under a second, audio's included (its wait for a
/// video frame to ride with is bounded).
fn assert_every_frame_with_sane_latency(report: &Report, players: u64, who: &str) {
    let summary = report.summary();
    assert_eq!(report.players.total, players, "{who}: {summary}");
    assert_eq!(report.players.complete, players, "{who}: {summary}");
    assert_eq!(
        report.players.started_on_keyframe, players,
        "{who}: {summary}"
    );
    assert_eq!(report.frames.lost, 0, "{who}: {summary}");
    assert!(report.frames.received >= players * 60, "{who}: {summary}");
    assert!(
        report.latency.count > 0 && report.latency.max_ms < 1000.0,
        "{who}: {:?}",
        report.latency
    );
    assert!(
        report.audio_latency.count > 0 && report.audio_latency.max_ms < 1000.0,
        "{who}: {:?}",
        report.audio_latency
    );
    assert!(
        report.time_to_first_frame.max_ms < 1000.0,
        "{who}: {:?}",
        report.time_to_first_frame
    );
}

#[test]
fn twenty_players_get_every_frame_with_sane_latency_and_the_json_is_complete() {
    let server = start_server(2, |_| {});
    let url = format!("rtmp://{}/live/bench", server.local_addrs()[0]);
    let report = ringcast_bench::run(&config(url, 20, Duration::from_secs(3))).expect("bench runs");
    server.shutdown();
    assert_every_frame_with_sane_latency(&report, 20, "rtmp");
    assert!(
        report
            .server
            .as_ref()
            .is_some_and(|s| s.cpu_s_per_gb.is_some())
    );

    let path = std::env::temp_dir().join(format!("ringcast-bench-{}.json", std::process::id()));
    report.write_json(&path).expect("json written");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
    let _ = std::fs::remove_file(&path);
    for field in [
        "/url",
        "/config/players",
        "/config/bitrate_kbps",
        "/elapsed_s",
        "/players/total",
        "/players/complete",
        "/players/started_on_keyframe",
        "/players/never_played",
        "/players/disconnects",
        "/latency/p50_ms",
        "/latency/p90_ms",
        "/latency/p99_ms",
        "/latency/p999_ms",
        "/latency/max_ms",
        "/audio_latency/p99_ms",
        "/config/audio_rate",
        "/time_to_first_frame/p99_ms",
        "/frames/received",
        "/frames/lost",
        "/frames/stalls",
        "/frames/stall_s",
        "/bytes_received",
        "/egress_mbps",
        "/publishers/0/frames",
        "/server/cpu_s",
        "/server/cpu_s_per_gb",
        "/server/peak_rss_bytes",
        "/timeline/0/latency_p99_ms",
    ] {
        assert!(json.pointer(field).is_some(), "{field} missing from {json}");
    }
}

#[test]
fn http_flv_and_websocket_flv_players_get_every_frame_with_sane_latency() {
    let server = start_server(2, |_| {});
    let rtmp = server.local_addrs()[0];
    let http = server.http_addr().expect("an HTTP listener");
    for url in [
        format!("http://{http}/live/web.flv"),
        format!("ws://{http}/live/web.flv"),
    ] {
        let mut run = config(url.clone(), 10, Duration::from_secs(3));
        run.publish_url = Some(format!("rtmp://{rtmp}/live/web"));
        let report = ringcast_bench::run(&run).expect("bench runs");
        assert_every_frame_with_sane_latency(&report, 10, &url);
        assert!(report.bytes_received > 0, "{url}: {}", report.summary());
    }
    server.shutdown();
}

/// A test CA ([`Pki`]), its certificate as a file, and a certificate it
/// issued for 127.0.0.1 and localhost.
struct TestCa {
    /// Held: the files are in its directory, removed with it.
    _pki: Pki,
    ca: PathBuf,
    files: CertFiles,
}

impl TestCa {
    fn new() -> TestCa {
        let pki = Pki::new();
        let ca = pki.ca_file();
        let files = pki.server("server", &["127.0.0.1", "localhost"]).files;
        TestCa {
            _pki: pki,
            ca,
            files,
        }
    }

    fn ca(&self) -> &Path {
        &self.ca
    }
}

/// A server with RTMPS and HTTPS-FLV/WSS listeners serving `ca`'s
/// certificate.
fn start_tls_server(ca: &TestCa) -> ServerHandle {
    let files = ca.files.clone();
    start_server(2, move |c| {
        c.tls.listen = vec!["127.0.0.1:0".parse().expect("address")];
        c.tls.http_listen = vec!["127.0.0.1:0".parse().expect("address")];
        let loaded = ServerTls::load(std::slice::from_ref(&files), SystemTime::now());
        c.tls.server = Some(loaded.expect("the test certificate loads"));
        c.tls.certificates = vec![files];
    })
}

#[test]
fn rtmps_https_and_wss_players_trusting_the_test_ca_get_every_frame() {
    let ca = TestCa::new();
    let server = start_tls_server(&ca);
    let rtmp = server.local_addrs()[0];
    let rtmps = server.rtmps_addrs()[0];
    let https = server.https_addrs()[0];
    let trusted = Trust::Ca(ca.ca().to_path_buf());
    for (url, trust) in [
        (format!("rtmps://{rtmps}/live/secure"), &trusted),
        (format!("https://{https}/live/secure.flv"), &trusted),
        (format!("wss://{https}/live/secure.flv"), &trusted),
        // Trusting nothing, verifying nothing: the same stream.
        (format!("rtmps://{rtmps}/live/secure"), &Trust::Insecure),
    ] {
        let mut run = config(url.clone(), 10, Duration::from_secs(3));
        run.publish_url = Some(format!("rtmp://{rtmp}/live/secure"));
        run.trust = trust.clone();
        let report = ringcast_bench::run(&run).expect("bench runs");
        assert_every_frame_with_sane_latency(&report, 10, &url);
        assert!(
            report.players.disconnects.is_empty(),
            "{url}: {}",
            report.summary()
        );
    }
    server.shutdown();
}

#[test]
fn players_trusting_another_ca_fail_saying_the_certificate_is_not_trusted() {
    let ca = TestCa::new();
    let other = TestCa::new();
    let server = start_tls_server(&ca);
    let rtmp = server.local_addrs()[0];
    let rtmps = server.rtmps_addrs()[0];
    let mut run = config(
        format!("rtmps://{rtmps}/live/untrusted"),
        3,
        Duration::from_secs(2),
    );
    run.publish_url = Some(format!("rtmp://{rtmp}/live/untrusted"));
    run.trust = Trust::Ca(other.ca().to_path_buf());
    let report = ringcast_bench::run(&run).expect("bench runs");
    server.shutdown();
    assert_eq!(report.players.never_played, 3, "{}", report.summary());
    let (reason, count) = (report.players.disconnects.iter().next()).expect("a disconnect");
    assert_eq!(*count, 3, "{}", report.summary());
    assert!(
        reason.contains("the server's certificate is not trusted"),
        "{reason}"
    );
    assert!(
        reason.contains(&other.ca().display().to_string()),
        "names the CA file trusted: {reason}"
    );
}

#[test]
fn tls_options_for_a_plain_url_or_an_unreadable_ca_stop_the_bench_naming_the_flag() {
    let mut run = config(
        "rtmp://127.0.0.1:1/live/x".into(),
        1,
        Duration::from_secs(1),
    );
    run.trust = Trust::Insecure;
    let error = ringcast_bench::run(&run).expect_err("refused").to_string();
    assert!(error.starts_with("--tls-insecure: "), "{error}");
    run.url = "rtmps://127.0.0.1:1/live/x".into();
    run.trust = Trust::Ca("/nonexistent/ca.pem".into());
    let error = ringcast_bench::run(&run).expect_err("refused").to_string();
    assert!(
        error.starts_with("--tls-ca: /nonexistent/ca.pem: cannot be read"),
        "{error}"
    );
    run.trust = Trust::PublicRoots;
    run.publish_url = Some("rtmps://127.0.0.1:1/live/x".into());
    let error = ringcast_bench::run(&run).expect_err("refused").to_string();
    assert!(error.contains("plain RTMP"), "{error}");
}

#[test]
fn a_missing_http_flv_stream_is_a_named_disconnect() {
    let server = start_server(1, |c| c.http.play_wait = Duration::from_millis(200));
    let http = server.http_addr().expect("an HTTP listener");
    let mut run = config(
        format!("http://{http}/live/nobody.flv"),
        2,
        Duration::from_secs(2),
    );
    run.publishers = 0;
    let report = ringcast_bench::run(&run).expect("bench runs");
    server.shutdown();
    assert_eq!(report.players.never_played, 2, "{}", report.summary());
    assert_eq!(
        report
            .players
            .disconnects
            .get("http: answered 404, not 200"),
        Some(&2),
        "{}",
        report.summary()
    );
}

#[test]
fn ffprobe_accepts_the_bench_publishers_stream() {
    let found = Command::new("ffprobe")
        .arg("-version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "ffprobe not found: install ffmpeg (apt-get install ffmpeg)"
    );
    let server = start_server(1, |_| {});
    let url = format!("rtmp://{}/live/probe", server.local_addrs()[0]);
    let mut run = config(url.clone(), 0, Duration::from_secs(6));
    run.warmup = Duration::ZERO;
    let bench = std::thread::spawn(move || ringcast_bench::run(&run));
    std::thread::sleep(Duration::from_secs(1));
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,width,height",
            "-of",
            "csv=p=0",
            &url,
        ])
        .output()
        .expect("ffprobe runs");
    bench.join().expect("bench thread").expect("bench runs");
    server.shutdown();
    let text = String::from_utf8_lossy(&probe.stdout);
    let mut lines: Vec<&str> = text.lines().map(str::trim).collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        vec!["aac", "h264,640,360"],
        "ffprobe: {text} {}",
        String::from_utf8_lossy(&probe.stderr)
    );
}

#[test]
fn an_flv_file_publisher_with_churning_players_is_measured_and_plotted() {
    let server = start_server(2, |_| {});
    let url = format!("rtmp://{}/live/churn", server.local_addrs()[0]);
    let mut run = config(url, 6, Duration::from_secs(3));
    run.flv = Some(std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/bench-sample.flv"
    )));
    run.churn_per_s = 4.0;
    let report = ringcast_bench::run(&run).expect("bench runs");
    server.shutdown();
    assert!(
        report.players.total > 10,
        "churn added players: {}",
        report.summary()
    );
    assert!(
        report.players.disconnects.is_empty(),
        "{}",
        report.summary()
    );
    assert_eq!(report.frames.lost, 0);
    assert!(
        report.latency.count > 0,
        "the file's AVC frames were stamped"
    );
    let path = std::env::temp_dir().join(format!("ringcast-bench-{}.svg", std::process::id()));
    report.write_plot(&path).expect("plot written");
    let svg = std::fs::read_to_string(&path).expect("read");
    let _ = std::fs::remove_file(&path);
    assert!(
        svg.starts_with("<svg") && svg.contains("latency"),
        "an SVG plot"
    );
}
