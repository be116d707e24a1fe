//! Soak and churn against `ringcast serve` (a separate process, 2 shards):
//! 5 publishers reconnecting every few minutes, 100 steady players, 400
//! players churning at 20 per second; RSS and descriptors sampled every
//! 10 s. Prints the timeline and the findings, writes
//! `target/soak/report.json`, and exits non-zero if anything is wrong.
//!
//! `cargo bench --bench soak` (one hour); `-- --duration-s 600` for less.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

use ringcast::bench::soak::{self, SoakConfig};

fn main() {
    let mut duration = Duration::from_secs(3600);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--duration-s" => {
                let seconds: f64 = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--duration-s SECONDS");
                duration = Duration::from_secs_f64(seconds);
            }
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_ringcast"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--shards",
            "2",
            "--admin",
            "off",
        ])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .expect("ringcast serve starts");
    std::thread::sleep(Duration::from_millis(500));
    let config = SoakConfig {
        url: format!("rtmp://127.0.0.1:{port}/live/soak"),
        server_pid: server.id(),
        duration,
        publishers: 5,
        steady_players: 100,
        churning_players: 400,
        churn_per_s: 20.0,
        publisher_reconnect: Duration::from_secs(180),
        sample_every: Duration::from_secs(10),
        warmup: Duration::from_secs(120).min(duration / 5),
        bitrate_kbps: 1000,
    };
    let report = soak::run(&config).expect("soak runs");
    // SAFETY: signalling the child this bench started.
    unsafe {
        libc::kill(server.id() as i32, libc::SIGTERM);
    }
    let _ = server.wait();
    print!("{}", report.summary());
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/soak");
    std::fs::create_dir_all(&out).expect("target/soak");
    let json = serde_json::to_string_pretty(&report).expect("json");
    std::fs::write(out.join("report.json"), json).expect("write report");
    let findings = report.findings(config.warmup);
    if findings.is_empty() {
        println!("soak: no findings");
    } else {
        for finding in &findings {
            println!("soak finding: {finding}");
        }
        std::process::exit(1);
    }
}
