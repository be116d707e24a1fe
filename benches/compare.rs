//! ringcast against nginx-rtmp, and both against the cost floor, under the
//! same load, side by side in one run; and ringcast's HTTP-FLV and LL-HLS
//! (and, asked for, WebSocket-FLV) players and its players over TLS against
//! its RTMP ones.
//!
//! For each player count and each source, each server in turn is started on
//! loopback pinned to one CPU (nginx-rtmp: one worker, `chunk_size 4096`,
//! `live on`; ringcast: one shard; the floor: `ringcast bench-floor`, a
//! plain `writev` loop batching as an ideal server would), and
//! `ringcast bench` (in this process, its threads pinned to the other CPUs)
//! runs one publisher and the players for the set duration. The servers
//! `ringcast-http` and `ringcast-ws` are the same ringcast (every ringcast
//! run has the same RTMP, HTTP, RTMPS and HTTPS listeners), its players
//! playing `http://…/live/compare.flv` or `ws://…/live/compare.flv` instead
//! of RTMP, with the publisher on RTMP as before; `ringcast-hls` the same,
//! its players LL-HLS players of `http://…/live/compare.m3u8` (ringcast's
//! defaults: 2 s segments, 333 ms parts) that fetch what hls.js fetches:
//! playlists with blocking reloads, then each part; `ringcast-rtmps`,
//! `ringcast-https` and `ringcast-wss` are the same again with every
//! player over TLS (`rtmps://`, `https://`, `wss://`), each making a full
//! handshake and verifying the server's certificate, issued for the run by
//! a CA made for it (rcgen, ECDSA P-256, under `target/compare/tls/`).
//! nginx-rtmp has no RTMPS (it takes a TLS terminator such as stunnel in
//! front, another process with its own cost), so it has no row over TLS;
//! the table says so.
//!
//! Two sources, since what a server does per write depends on how audio
//! and video interleave: `synthetic`, the bench's stream (2500 kbit/s,
//! 30 fps, 2 s GOP, AAC on its own 44.1 kHz clock), and `flv`, a real
//! encoder's file (720p30 H.264 at 2500 kbit/s and AAC from ffmpeg, made
//! once into `target/compare/real-720p30.flv`), looped by the publisher
//! and by the floor.
//!
//! Each write window (`--window-ms`) is a separate run of ringcast (with
//! `player.write_window_ms` in a config file; 0, the default batching,
//! passes no config) and of the floor (`--write-window-ms`); nginx-rtmp,
//! which has no such setting, runs once per source and player count.
//!
//! The table gives egress, HTTP requests per second (LL-HLS players make one
//! per part and per playlist; an FLV player one in all), players that got
//! every frame, video latency,
//! audio latency, time to first frame, the server's CPU seconds per
//! delivered GB, that figure against the floor's (same source, players and
//! window), against nginx-rtmp's (same source and players) and, for
//! every other ringcast row, against ringcast's RTMP players (same
//! source, players and window; for HTTP-FLV and WS-FLV the target is at
//! most 1.05×), and peak RSS; then that last ratio once more, a line per
//! run, and for the TLS rows their ratio to the same players without TLS
//! (RTMPS / RTMP, HTTPS / HTTP, WSS / WS); and for LL-HLS, its latency
//! against the 1.5 s target. An LL-HLS player's latency is measured at
//! delivery, as the others' are: a frame's stamp to its part's arrival,
//! which holds the wait for the part to be made; a player shows it
//! `PART-HOLD-BACK` (three part targets, 1 s) later, which the line adds.
//! Delivered
//! bytes are what players read: FLV tags (15 bytes of framing a tag, 2 to
//! 10 more for a WebSocket frame) against RTMP chunks (1 to 12 bytes of
//! header a 4 KiB chunk), so each ratio compares the cost of the bytes
//! each protocol sends. Results go to `target/compare/`, one JSON file per
//! run named `{source}-{server}-w{window}-{players}.json`.
//!
//! Installs nothing: needs `apt-get install nginx libnginx-mod-rtmp ffmpeg`.
//! `cargo bench --bench compare -- --players 100,500,1000,2000 --duration-s 30`
//! (the defaults); `--servers nginx,ringcast,ringcast-http,ringcast-hls,floor`
//! (the default; `ringcast-ws`, `ringcast-rtmps`, `ringcast-https` and
//! `ringcast-wss` on request),
//! `--sources synthetic,flv`, `--window-ms 0,33,100`, `--server-cpu 0`,
//! `--load-cpus 1`, `--threads 1` change the setup.
// Tests and benches fail by panicking on what they did not expect.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fmt::Write as _;
use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ringcast_bench::BenchConfig;
use ringcast_bench::report::Report;
use ringcast_bench::source::Shape;
use ringcast_bench::trust::Trust;
use ringcast_tls::CertFiles;

const NGINX_RTMP_MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";

/// Where the compared stream comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// The bench's synthetic stream: 2500 kbit/s, 30 fps, 2 s GOP, AAC on
    /// its own 44.1 kHz clock.
    Synthetic,
    /// A real encoder's file, [`REAL_FILE`], made by ffmpeg once.
    Flv,
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Source::Synthetic => "synthetic",
            Source::Flv => "flv",
        }
    }
}

/// The real encoder's file, under `target/compare/`.
const REAL_FILE: &str = "real-720p30.flv";
/// How ffmpeg makes it: 20 s of 720p30 H.264 at 2500 kbit/s (a keyframe
/// every 2 s, no B-frames with zerolatency) and 44.1 kHz AAC, muxed by
/// ffmpeg's FLV muxer, which interleaves audio and video by timestamp as
/// a live encoder sends them.
#[rustfmt::skip]
const REAL_FILE_ARGS: &[&str] = &[
    "-hide_banner", "-loglevel", "error", "-y",
    "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
    "-t", "20",
    "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-g", "60",
    "-b:v", "2500k", "-maxrate", "2500k", "-bufsize", "5000k", "-pix_fmt", "yuv420p",
    "-c:a", "aac", "-b:a", "128k", "-ar", "44100",
    "-f", "flv",
];
/// The longest write window a run takes, as `player.write_window_ms`.
const WINDOW_MS_MAX: u64 = 500;
/// What ringcast's HTTP players may cost per delivered GB against its
/// RTMP players (the HTTP-FLV issue's target).
const HTTP_OVER_RTMP_TARGET: f64 = 1.05;
/// The latency an LL-HLS player should show at p50 (the HLS issue's
/// target, with 200 to 500 ms parts).
const HLS_LATENCY_TARGET_MS: f64 = 1500.0;
/// What an LL-HLS player holds back from the live edge before it shows a
/// frame: ringcast's `PART-HOLD-BACK`, three part targets of its default
/// 333 ms.
const HLS_HOLD_BACK_MS: f64 = 999.0;

/// The URL scheme each server's players play; the rest are RTMP.
fn scheme(server: &str) -> &'static str {
    match server {
        "ringcast-http" => "http",
        "ringcast-hls" => "hls",
        "ringcast-ws" => "ws",
        "ringcast-rtmps" => "rtmps",
        "ringcast-https" => "https",
        "ringcast-wss" => "wss",
        _ => "rtmp",
    }
}

/// Players of `server` play over TLS.
fn over_tls(server: &str) -> bool {
    matches!(scheme(server), "rtmps" | "https" | "wss")
}

/// The ringcast server whose players play the same protocol as
/// `server`'s without TLS.
fn without_tls(server: &str) -> &'static str {
    match scheme(server) {
        "https" => "ringcast-http",
        "wss" => "ringcast-ws",
        _ => "ringcast",
    }
}

/// The protocol players of `server` play, as the summary lines name it.
fn protocol_name(server: &str) -> &'static str {
    match scheme(server) {
        "http" => "HTTP-FLV",
        "hls" => "LL-HLS",
        "ws" => "WS-FLV",
        "rtmps" => "RTMPS",
        "https" => "HTTPS-FLV",
        "wss" => "WSS-FLV",
        _ => "RTMP",
    }
}

struct Options {
    players: Vec<usize>,
    duration: Duration,
    servers: Vec<String>,
    sources: Vec<Source>,
    /// Write windows (ms) for ringcast and the floor; 0 is the default
    /// batching, a write per video frame.
    windows_ms: Vec<u64>,
    server_cpu: usize,
    load_cpus: Vec<usize>,
    threads: usize,
}

/// One server run: what it served, how, and what the bench found.
struct Row {
    source: Source,
    server: String,
    /// None for nginx, which has no write window.
    window_ms: Option<u64>,
    players: usize,
    report: Report,
}

/// One run to make: the stream, the server and its write window.
struct Run<'a> {
    source: Source,
    flv: Option<&'a Path>,
    server: &'a str,
    window_ms: Option<u64>,
    players: usize,
    pki: &'a Pki,
}

/// The certificates of a compare: a CA made for it, and the certificate
/// it issued for 127.0.0.1, which ringcast serves on its TLS listeners.
struct Pki {
    ca: PathBuf,
    files: CertFiles,
}

/// Where a ringcast run listens (the floor and nginx use `rtmp` alone).
#[derive(Clone, Copy)]
struct Ports {
    rtmp: SocketAddr,
    http: SocketAddr,
    rtmps: SocketAddr,
    https: SocketAddr,
}

fn main() {
    let options = parse_args();
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/compare");
    fs::create_dir_all(&out).expect("create target/compare");
    let real_file = options
        .sources
        .contains(&Source::Flv)
        .then(|| real_file(&out));
    let pki = make_pki(&out.join("tls"));
    let mut rows = Vec::new();
    for &players in &options.players {
        for &source in &options.sources {
            for server in &options.servers {
                let windows: Vec<Option<u64>> = if server == "nginx" {
                    vec![None]
                } else {
                    options.windows_ms.iter().copied().map(Some).collect()
                };
                for window_ms in windows {
                    let run = Run {
                        source,
                        flv: real_file.as_deref().filter(|_| source == Source::Flv),
                        server,
                        window_ms,
                        players,
                        pki: &pki,
                    };
                    rows.push(run_and_save(&run, &options, &out));
                }
            }
        }
    }
    let table = table(&rows);
    print!("{table}");
    fs::write(out.join("table.md"), &table).expect("write table");
    eprintln!("results in {}", out.display());
}

fn run_and_save(run: &Run, options: &Options, out: &Path) -> Row {
    let window = run.window_ms.unwrap_or(0);
    eprintln!(
        "== {} source, {}, write window {window} ms, {} players",
        run.source.name(),
        run.server,
        run.players
    );
    let report = run_one(run, options, out);
    let name = format!(
        "{}-{}-w{window}-{}",
        run.source.name(),
        run.server,
        run.players
    );
    report
        .write_json(&out.join(format!("{name}.json")))
        .expect("write json");
    if run.server == "ringcast" && run.players == 1000 {
        report
            .write_plot(&out.join(format!("{name}.svg")))
            .expect("write plot");
    }
    Row {
        source: run.source,
        server: run.server.to_owned(),
        window_ms: run.window_ms,
        players: run.players,
        report,
    }
}

/// The real encoder's file, made with ffmpeg if it is not there yet.
fn real_file(out: &Path) -> PathBuf {
    let path = out.join(REAL_FILE);
    if path.exists() {
        return path;
    }
    // Written aside and renamed, so that an interrupted run leaves no
    // half a file that a later run would take for the whole.
    let partial = out.join(format!("{REAL_FILE}.partial"));
    eprintln!("== making {} with ffmpeg", path.display());
    let status = Command::new("ffmpeg")
        .args(REAL_FILE_ARGS)
        .arg(&partial)
        .status()
        .unwrap_or_else(|e| {
            panic!("--sources flv needs ffmpeg to make {REAL_FILE} ({e}): apt-get install ffmpeg")
        });
    assert!(status.success(), "ffmpeg making {REAL_FILE}: {status}");
    fs::rename(&partial, &path).expect("rename the ffmpeg output");
    path
}

fn parse_args() -> Options {
    let mut options = Options {
        players: vec![100, 500, 1000, 2000],
        duration: Duration::from_secs(30),
        servers: vec![
            "nginx".into(),
            "ringcast".into(),
            "ringcast-http".into(),
            "ringcast-hls".into(),
            "floor".into(),
        ],
        sources: vec![Source::Synthetic, Source::Flv],
        windows_ms: vec![0],
        server_cpu: 0,
        load_cpus: vec![1],
        threads: 1,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        let list = |v: String| -> Vec<usize> {
            v.split(',')
                .map(|n| n.trim().parse().expect("a number"))
                .collect()
        };
        match arg.as_str() {
            "--players" => options.players = list(value()),
            "--duration-s" => {
                options.duration = Duration::from_secs_f64(value().parse().expect("seconds"))
            }
            "--servers" => options.servers = value().split(',').map(str::to_owned).collect(),
            "--sources" => options.sources = value().split(',').map(parse_source).collect(),
            "--window-ms" => {
                options.windows_ms = list(value()).into_iter().map(|w| w as u64).collect();
                assert!(
                    options.windows_ms.iter().all(|&w| w <= WINDOW_MS_MAX),
                    "--window-ms values are 0..={WINDOW_MS_MAX}"
                );
            }
            "--server-cpu" => options.server_cpu = value().parse().expect("a cpu"),
            "--load-cpus" => options.load_cpus = list(value()),
            "--threads" => options.threads = value().parse().expect("a count"),
            // cargo bench passes --bench to harness=false benches.
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    options
}

fn parse_source(name: &str) -> Source {
    match name.trim() {
        "synthetic" => Source::Synthetic,
        "flv" => Source::Flv,
        other => panic!("unknown source {other} (synthetic, flv)"),
    }
}

fn run_one(run: &Run, options: &Options, out: &Path) -> Report {
    let port = || SocketAddr::from(([127, 0, 0, 1], free_port()));
    let ports = Ports {
        rtmp: port(),
        http: port(),
        rtmps: port(),
        https: port(),
    };
    let addr = ports.rtmp;
    let mut server = Server(start_server(run, ports, options.server_cpu, out));
    let child = &mut server.0;
    wait_until_listening(addr, child);
    let (url, players_addr) = match scheme(run.server) {
        "rtmp" => (format!("rtmp://{addr}/live/compare"), addr),
        "rtmps" => (format!("rtmps://{}/live/compare", ports.rtmps), ports.rtmps),
        "hls" => (
            format!("http://{}/live/compare.m3u8", ports.http),
            ports.http,
        ),
        scheme @ ("https" | "wss") => (
            format!("{scheme}://{}/live/compare.flv", ports.https),
            ports.https,
        ),
        scheme => (
            format!("{scheme}://{}/live/compare.flv", ports.http),
            ports.http,
        ),
    };
    wait_until_listening(players_addr, child);
    let config = BenchConfig {
        url,
        publish_url: Some(format!("rtmp://{addr}/live/compare")),
        // Players over TLS verify the run's certificate against its CA.
        trust: if over_tls(run.server) {
            Trust::Ca(run.pki.ca.clone())
        } else {
            Trust::PublicRoots
        },
        players: run.players,
        // The floor generates the stream itself.
        publishers: usize::from(run.server != "floor"),
        duration: options.duration,
        ramp: Duration::from_secs(5).min(options.duration / 3),
        churn_per_s: 0.0,
        shape: shape(),
        flv: run.flv.map(Path::to_path_buf),
        threads: options.threads,
        cpus: Some(options.load_cpus.clone()),
        warmup: Duration::from_secs(2),
        server_pid: Some(child.id()),
        publisher_reconnect: None,
        progress: true,
    };
    let report = ringcast_bench::run(&config).expect("bench runs");
    drop(server);
    report
}

/// A server process, stopped when dropped: also when a run panics, so
/// that no server is left running (and holding the bench's stderr).
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        stop(&mut self.0);
    }
}

fn shape() -> Shape {
    Shape {
        bitrate_kbps: 2500,
        fps: 30.0,
        gop_s: 2.0,
        audio_rate: 44_100,
    }
}

/// Starts `run.server` on `ports.rtmp` (ringcast also on the others,
/// whatever its players play: HTTP-FLV and WebSocket-FLV, RTMPS, and
/// HTTPS-FLV and WSS with the run's certificate) pinned to `cpu`.
fn start_server(run: &Run, ports: Ports, cpu: usize, out: &Path) -> Child {
    let listen = ports.rtmp.to_string();
    let window = run.window_ms.unwrap_or(0);
    let mut command = match run.server {
        "ringcast" | "ringcast-http" | "ringcast-hls" | "ringcast-ws" | "ringcast-rtmps"
        | "ringcast-https" | "ringcast-wss" => {
            let mut c = Command::new(env!("CARGO_BIN_EXE_ringcast"));
            c.args([
                "serve",
                "--listen",
                &listen,
                "--http",
                &ports.http.to_string(),
                "--listen-tls",
                &ports.rtmps.to_string(),
                "--http-tls",
                &ports.https.to_string(),
                "--shards",
                "1",
                "--cpus",
                &cpu.to_string(),
                "--admin",
                "off",
            ]);
            c.arg("--tls-cert").arg(&run.pki.files.cert);
            c.arg("--tls-key").arg(&run.pki.files.key);
            // Window 0 is the default: no config file, so that the run
            // works on a server that does not know the key.
            if window > 0 {
                let config = out.join(format!("ringcast-w{window}.toml"));
                fs::write(&config, format!("[player]\nwrite_window_ms = {window}\n"))
                    .expect("write the ringcast config");
                c.arg("--config").arg(&config);
            }
            c.env("RUST_LOG", "warn");
            c
        }
        "floor" => {
            let mut c = Command::new(env!("CARGO_BIN_EXE_ringcast"));
            c.args([
                "bench-floor",
                "--listen",
                &listen,
                "--write-window-ms",
                &window.to_string(),
            ]);
            if let Some(flv) = run.flv {
                c.arg("--flv").arg(flv);
            }
            c
        }
        "nginx" => {
            let conf = out.join("nginx.conf");
            fs::write(&conf, nginx_config(ports.rtmp, out)).expect("write nginx.conf");
            assert!(
                Path::new(NGINX_RTMP_MODULE).exists(),
                "nginx-rtmp not found: apt-get install nginx libnginx-mod-rtmp"
            );
            let mut c = Command::new("nginx");
            c.args([
                "-c",
                &conf.display().to_string(),
                "-p",
                &out.display().to_string(),
            ]);
            c
        }
        other => panic!(
            "unknown server {other} (nginx, ringcast, ringcast-http, ringcast-hls, \
             ringcast-ws, ringcast-rtmps, ringcast-https, ringcast-wss, floor)"
        ),
    };
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    pin(&mut command, cpu);
    command
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", run.server))
}

/// Pins the child to `cpu` before it runs anything.
fn pin(command: &mut Command, cpu: usize) {
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(move || {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            if libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// One process (no master), one worker's worth of connections, the
/// settings the issue names.
fn nginx_config(addr: SocketAddr, out: &Path) -> String {
    format!(
        "load_module {NGINX_RTMP_MODULE};\n\
         daemon off;\nmaster_process off;\nworker_processes 1;\nworker_rlimit_nofile 20000;\n\
         error_log stderr warn;\npid {pid};\n\
         events {{ worker_connections 10000; }}\n\
         rtmp {{ server {{ listen {addr}; chunk_size 4096; application live {{ live on; }} }} }}\n",
        pid = out.join("nginx.pid").display()
    )
}

/// Makes the run's CA and a certificate it issues for 127.0.0.1 and
/// localhost (ECDSA P-256, rcgen's default, as most public certificates
/// served today are), as PEM files in `dir`.
fn make_pki(dir: &Path) -> Pki {
    fs::create_dir_all(dir).expect("create the TLS directory");
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    (params.distinguished_name).push(rcgen::DnType::CommonName, "ringcast compare CA");
    let ca = rcgen::CertifiedIssuer::self_signed(params, ca_key).expect("CA");
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("params")
        .signed_by(&key, &ca)
        .expect("issued");
    let write = |name: &str, pem: String| {
        let path = dir.join(name);
        fs::write(&path, pem).expect("write PEM");
        path
    };
    Pki {
        ca: write("ca.pem", ca.pem()),
        files: CertFiles {
            cert: write("cert.pem", cert.pem()),
            key: write("key.pem", key.serialize_pem()),
        },
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("bound").port()
}

fn wait_until_listening(addr: SocketAddr, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("server exited at startup: {status}");
        }
        assert!(Instant::now() < deadline, "server never listened on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stop(child: &mut Child) {
    // SAFETY: signalling the child this bench started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    out += "| source | server | write window ms | players | egress Mbit/s | requests/s | got every frame | video latency p50 / p99 ms | audio latency p99 ms | first frame p50 / p99 ms | CPU s per GB | × floor | × nginx | × RTMP | peak RSS MiB |\n";
    out += "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    for row in rows {
        let r = &row.report;
        let cpu_per_gb = cpu_s_per_gb(row);
        // nginx has no write window: its floor is the default batching.
        let window = row.window_ms.unwrap_or(0);
        let floor = rows.iter().find(|f| {
            f.server == "floor"
                && f.source == row.source
                && f.players == row.players
                && f.window_ms == Some(window)
        });
        let nginx = rows
            .iter()
            .find(|n| n.server == "nginx" && n.source == row.source && n.players == row.players);
        let ratio = |other: Option<&Row>| match (cpu_per_gb, other.and_then(cpu_s_per_gb)) {
            (Some(v), Some(o)) if o > 0.0 => format!("{:.2}", v / o),
            _ => "n/a".into(),
        };
        let rtmp = (scheme(&row.server) != "rtmp")
            .then(|| ringcast_row(rows, row, "ringcast"))
            .flatten();
        let rss = r
            .server
            .as_ref()
            .map_or(0.0, |s| s.peak_rss_bytes as f64 / 1048576.0);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.0} | {:.0} | {} / {} | {:.1} / {:.1} | {:.1} | {:.0} / {:.0} | {} | {} | {} | {} | {rss:.1} |",
            row.source.name(),
            row.server,
            row.window_ms.map_or("n/a".into(), |w| w.to_string()),
            row.players,
            r.egress_mbps,
            r.requests_per_s,
            r.players.complete,
            r.players.total,
            r.latency.p50_ms,
            r.latency.p99_ms,
            r.audio_latency.p99_ms,
            r.time_to_first_frame.p50_ms,
            r.time_to_first_frame.p99_ms,
            cpu_per_gb.map_or("n/a".into(), |v| format!("{v:.3}")),
            ratio(floor),
            ratio(nginx),
            ratio(rtmp),
        );
    }
    out += &over_rtmp(rows);
    out += &hls_latency(rows);
    if rows.iter().any(|r| over_tls(&r.server)) {
        out += "\nnginx-rtmp has no RTMPS (nor HTTPS-FLV): it has no row over TLS; \
                a TLS terminator in front of it (stunnel, nginx's stream module) \
                would be another process, with its own cost.\n";
    }
    out
}

/// The run of ringcast `server` matching `row` (source, players, write
/// window).
fn ringcast_row<'r>(rows: &'r [Row], row: &Row, server: &str) -> Option<&'r Row> {
    rows.iter().find(|r| {
        r.server == server
            && r.source == row.source
            && r.players == row.players
            && r.window_ms == row.window_ms
    })
}

/// A line per run of ringcast players other than RTMP: its CPU per
/// delivered GB against the RTMP run's (for HTTP-FLV and WS-FLV, whether
/// that is within the target); for HTTPS-FLV and WSS also against the
/// same players without TLS.
fn over_rtmp(rows: &[Row]) -> String {
    let mut out = String::new();
    let line = |out: &mut String, row: &Row, base: &str| {
        let (Some(cost), Some(base_cost)) = (
            cpu_s_per_gb(row),
            ringcast_row(rows, row, base).and_then(cpu_s_per_gb),
        ) else {
            return;
        };
        let ratio = cost / base_cost;
        let flv = matches!(scheme(&row.server), "http" | "ws");
        let verdict = match (flv, ratio <= HTTP_OVER_RTMP_TARGET) {
            (false, _) => String::new(),
            (true, true) => format!(" (within the {HTTP_OVER_RTMP_TARGET}× target)"),
            (true, false) => format!(" (over the {HTTP_OVER_RTMP_TARGET}× target)"),
        };
        let _ = writeln!(
            out,
            "\n{} / {} CPU per GB, {} source, {} players, write window {} ms: {cost:.3} / {base_cost:.3} = {ratio:.2}×{verdict}",
            protocol_name(&row.server),
            protocol_name(base),
            row.source.name(),
            row.players,
            row.window_ms.unwrap_or(0),
        );
    };
    for row in rows.iter().filter(|r| scheme(&r.server) != "rtmp") {
        line(&mut out, row, "ringcast");
        if without_tls(&row.server) != "ringcast" && over_tls(&row.server) {
            line(&mut out, row, without_tls(&row.server));
        }
    }
    out
}

fn cpu_s_per_gb(row: &Row) -> Option<f64> {
    row.report.server.as_ref().and_then(|s| s.cpu_s_per_gb)
}

/// A line per LL-HLS run: its latency at delivery, and with the hold-back
/// a player keeps, against the target.
fn hls_latency(rows: &[Row]) -> String {
    let mut out = String::new();
    for row in rows.iter().filter(|r| scheme(&r.server) == "hls") {
        let latency = &row.report.latency;
        let shown_p50_ms = latency.p50_ms + HLS_HOLD_BACK_MS;
        let verdict = if shown_p50_ms <= HLS_LATENCY_TARGET_MS {
            "within"
        } else {
            "over"
        };
        let _ = writeln!(
            out,
            "\nLL-HLS latency, {} source, {} players: at delivery p50 {:.0} ms, p99 {:.0} ms; \
             shown after PART-HOLD-BACK p50 {shown_p50_ms:.0} ms, p99 {:.0} ms \
             ({verdict} the {HLS_LATENCY_TARGET_MS:.0} ms p50 target)",
            row.source.name(),
            row.players,
            latency.p50_ms,
            latency.p99_ms,
            latency.p99_ms + HLS_HOLD_BACK_MS,
        );
    }
    out
}
