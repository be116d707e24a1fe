//! rtmps:// relays on loopback, with a CA and certificates made for the
//! test: a ringcast pushes over TLS to a "platform" (another ringcast
//! with an RTMPS port) and an edge pulls from it, each verifying the
//! certificate by the name it asked for (SNI) against `[tls] ca_file`.
//! A certificate it cannot trust, one for other names, a plain port
//! named rtmps:// and a TLS port named rtmp:// each fail with a reason
//! in words and a retry, and never with a plain connection instead.
//!
//! The relaying servers run as the binary (`--push`, `--origin`,
//! `[tls] ca_file` as an operator gives them); the platform runs in
//! process, for its counters.
// Tests and benches fail by panicking on what they did not expect.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use common::feeder::Feeder;
use common::ffmpeg::{assert_probes_h264_and_aac, finish, publish, wait_for_frames_in};
use common::media::frame_number;
use common::pki::Pki;
use common::served::Served;
use common::{Client, start_server, wait_until};
use ringcast::server::ServerHandle;
use ringcast::session::{ClientEvent, status as codes};
use ringcast::shard::stats::ShardSnapshot;
use ringcast_tls::{CertFiles, ServerTls};

/// A test CA and two certificates it issued, one for `localhost` and one
/// for `example.test`.
struct Certs {
    pki: Pki,
    ca: PathBuf,
    localhost: CertFiles,
    example: CertFiles,
}

impl Certs {
    fn new() -> Certs {
        let pki = Pki::new();
        let ca = pki.ca_file();
        let localhost = pki.server("localhost", &["localhost"]).files;
        let example = pki.server("example", &["example.test"]).files;
        Certs {
            pki,
            ca,
            localhost,
            example,
        }
    }

    /// A config file for a relaying server: `[tls] ca_file` if `trust`,
    /// and retries quick enough to count.
    fn relay_config(&self, trust: bool) -> PathBuf {
        let ca_file = if trust {
            format!("[tls]\nca_file = {:?}\n", self.ca.display().to_string())
        } else {
            String::new()
        };
        let relay = "[relay]\nbackoff_ms_max = 500\nconnect_timeout_ms = 3000\n";
        let name = if trust {
            "trusting.toml"
        } else {
            "public.toml"
        };
        self.pki.write(name, &format!("{ca_file}{relay}"))
    }
}

/// The platform: plain RTMP and RTMPS. Its default certificate is
/// example.test's; a client gets localhost's only by asking for it
/// (SNI), so a relay that verifies `localhost` proves it sent the name.
fn platform(pki: &Certs) -> ServerHandle {
    start_server(1, |c| {
        c.tls.listen = vec!["127.0.0.1:0".parse().unwrap()];
        c.tls.certificates = vec![pki.example.clone(), pki.localhost.clone()];
        let loaded = ServerTls::load(&c.tls.certificates, SystemTime::now());
        c.tls.server = Some(loaded.unwrap());
    })
}

fn totals(server: &ServerHandle) -> ShardSnapshot {
    server.stats().into_iter().sum()
}

/// `ringcast serve` with `config`, one shard, and `flags` (`--push URL`,
/// `--origin URL`).
fn relay(config: &Path, flags: &[&str]) -> Served {
    let config = config.to_str().unwrap();
    let base = [
        "--config",
        config,
        "--listen",
        "127.0.0.1:0",
        "--shards",
        "1",
        "--admin",
        "off",
        "--http",
        "off",
    ];
    Served::start(&[&base[..], flags].concat())
}

/// The next `n` "push interrupted" lines for `target`, each checked to
/// say `reason`.
fn interruptions(served: &mut Served, target: &str, reason: &str, n: usize) {
    for _ in 0..n {
        let line = served.wait_for_line(&format!("target={target}"));
        assert!(line.contains("push interrupted"), "{line}");
        assert!(line.contains(reason), "{reason:?} in {line}");
    }
}

#[test]
fn a_push_over_rtmps_reaches_the_platform_verified_by_the_name_it_asked_for() {
    let pki = Certs::new();
    let platform = platform(&pki);
    let target = format!(
        "rtmps://localhost:{}/live",
        platform.rtmps_addrs()[0].port()
    );
    let mut edge = relay(&pki.relay_config(true), &["--push", &target]);
    let publisher = publish(&format!("rtmp://{}/live/cam", edge.addr), 20);
    let line = edge.wait_for_line("pushing");
    assert!(line.contains(&format!("target={target}")), "{line}");
    wait_for_frames_in(&platform, 30);
    // What came over TLS plays as it was published.
    assert_probes_h264_and_aac(&format!("rtmp://{}/live/cam", platform.local_addrs()[0]));
    let seen = totals(&platform);
    assert_eq!(
        (seen.tls_failures, seen.handshake_failures),
        (0, 0),
        "{seen:?}"
    );
    finish(publisher);
    platform.shutdown();
}

#[test]
fn an_edge_pulls_over_rtmps_and_plays_the_platforms_stream() {
    let pki = Certs::new();
    let platform = platform(&pki);
    let _feeder = Feeder::start(&[platform.local_addrs()[0]], "cam");
    let origin = format!(
        "rtmps://localhost:{}/live",
        platform.rtmps_addrs()[0].port()
    );
    let mut edge = relay(&pki.relay_config(true), &["--origin", &origin]);
    let mut player = Client::connect(edge.addr, "live");
    player.play("cam");
    let frames: Vec<u32> = (player.collect_media(20).iter())
        .filter_map(frame_number)
        .collect();
    assert!(frames.len() >= 15, "frames from the platform: {frames:?}");
    assert!(
        frames.windows(2).all(|w| w[1] == w[0] + 1),
        "in order: {frames:?}"
    );
    let line = edge.wait_for_line("pulling from origin");
    assert!(line.contains(&format!("origin={origin}")), "{line}");
    platform.shutdown();
}

/// Accepts connections for `target` and forwards them, noting the first
/// byte each client sent: what a relay speaks on the wire.
struct Sniffer {
    addr: SocketAddr,
    first_bytes: Arc<Mutex<Vec<u8>>>,
}

impl Sniffer {
    fn start(target: SocketAddr) -> Sniffer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let first_bytes = Arc::new(Mutex::new(Vec::new()));
        let noted = first_bytes.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let noted = noted.clone();
                std::thread::spawn(move || forward(client, target, &noted));
            }
        });
        Sniffer { addr, first_bytes }
    }

    fn first_bytes(&self) -> Vec<u8> {
        self.first_bytes.lock().unwrap().clone()
    }
}

fn forward(client: TcpStream, target: SocketAddr, noted: &Mutex<Vec<u8>>) {
    let mut first = [0u8; 1];
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    if client.peek(&mut first).ok() != Some(1) {
        return;
    }
    noted.lock().unwrap().push(first[0]);
    let Ok(server) = TcpStream::connect(target) else {
        return;
    };
    client.set_read_timeout(None).unwrap();
    let pipe = |mut from: TcpStream, mut to: TcpStream| {
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut from, &mut to);
            let _ = to.shutdown(std::net::Shutdown::Both);
        })
    };
    pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
    pipe(server, client);
}

#[test]
fn a_push_to_an_untrusted_certificate_retries_with_the_reason_and_never_goes_plain() {
    let pki = Certs::new();
    let platform = platform(&pki);
    let sniffer = Sniffer::start(platform.rtmps_addrs()[0]);
    let target = format!("rtmps://localhost:{}/live", sniffer.addr.port());
    // No ca_file: the public roots only, which never issued the test CA.
    let mut edge = relay(&pki.relay_config(false), &["--push", &target]);
    let _feeder = Feeder::start(&[edge.addr], "cam");
    interruptions(
        &mut edge,
        &target,
        "tls handshake: certificate not trusted (unknown issuer)",
        2,
    );
    // The platform heard the refusal each time, and nothing else.
    wait_until("the platform counts the refusals", || {
        totals(&platform).tls_failures >= 2
    });
    let seen = totals(&platform);
    assert_eq!((seen.publishers, seen.frames_in), (0, 0), "{seen:?}");
    let first_bytes = sniffer.first_bytes();
    assert!(first_bytes.len() >= 2, "retried: {first_bytes:?}");
    assert!(
        first_bytes.iter().all(|&b| b == 0x16),
        "every connection opened with a TLS handshake record: {first_bytes:x?}"
    );
    drop(edge);
    platform.shutdown();
}

#[test]
fn a_push_to_a_certificate_for_other_names_retries_with_the_names() {
    let pki = Certs::new();
    let platform = platform(&pki);
    // An address sends no SNI: the platform's default, example.test's.
    let target = format!(
        "rtmps://127.0.0.1:{}/live",
        platform.rtmps_addrs()[0].port()
    );
    let mut edge = relay(&pki.relay_config(true), &["--push", &target]);
    let _feeder = Feeder::start(&[edge.addr], "cam");
    interruptions(
        &mut edge,
        &target,
        "certificate is for other names: 127.0.0.1 asked for, it names example.test",
        2,
    );
    let seen = totals(&platform);
    assert_eq!((seen.publishers, seen.frames_in), (0, 0), "{seen:?}");
    drop(edge);
    platform.shutdown();
}

#[test]
fn a_pull_from_an_untrusted_origin_answers_not_found_and_logs_why() {
    let pki = Certs::new();
    let platform = platform(&pki);
    let _feeder = Feeder::start(&[platform.local_addrs()[0]], "cam");
    let origin = format!(
        "rtmps://localhost:{}/live",
        platform.rtmps_addrs()[0].port()
    );
    let mut edge = relay(&pki.relay_config(false), &["--origin", &origin]);
    let mut player = Client::connect(edge.addr, "live");
    let id = player.play("cam");
    player.wait_for("StreamNotFound", |e| {
        matches!(e, ClientEvent::Status { stream_id, status }
            if *stream_id == id && status.code == codes::PLAY_STREAM_NOT_FOUND)
    });
    let line = edge.wait_for_line("no origin served the stream");
    assert!(
        line.contains("tls handshake: certificate not trusted (unknown issuer)"),
        "{line}"
    );
    assert_eq!(totals(&platform).players, 0);
    platform.shutdown();
}

#[test]
fn plain_and_tls_ports_named_the_other_way_fail_clearly_and_nothing_falls_back() {
    let pki = Certs::new();
    let platform = platform(&pki);
    let (plain, tls) = (platform.local_addrs()[0], platform.rtmps_addrs()[0]);
    let tls_to_plain = format!("rtmps://localhost:{}/live", plain.port());
    let plain_to_tls = format!("rtmp://127.0.0.1:{}/live", tls.port());
    let mut edge = relay(
        &pki.relay_config(true),
        &["--push", &tls_to_plain, "--push", &plain_to_tls],
    );
    let _feeder = Feeder::start(&[edge.addr], "cam");
    let mut said = Vec::new();
    while said.len() < 4 {
        said.push(edge.wait_for_line("push interrupted"));
    }
    for (target, reason) in [
        (
            &tls_to_plain,
            "tls handshake: the server closed the connection (does the port speak TLS?)",
        ),
        (
            &plain_to_tls,
            "before answering the RTMP handshake (a TLS port? rtmps:// speaks TLS)",
        ),
    ] {
        let lines: Vec<&String> = (said.iter())
            .filter(|l| l.contains(&format!("target={target}")))
            .collect();
        assert!(!lines.is_empty(), "{target} in {said:#?}");
        assert!(
            lines.iter().all(|l| l.contains(reason)),
            "{reason:?} in {lines:#?}"
        );
    }
    drop(edge);
    // Every connection the platform took was one of the two mistakes:
    // a ClientHello on the plain port or RTMP on the TLS port.
    wait_until("the platform closed them all", || {
        let seen = totals(&platform);
        seen.connections_accepted == seen.tls_on_plain_port + seen.tls_failures
    });
    let seen = totals(&platform);
    assert!(seen.tls_on_plain_port >= 1, "{seen:?}");
    assert!(seen.tls_failures >= 1, "{seen:?}");
    assert_eq!((seen.publishers, seen.frames_in), (0, 0), "{seen:?}");
    platform.shutdown();
}
