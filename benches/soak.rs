//! Soak and churn against `ringcast serve` (a separate process, 2 shards):
//! 5 publishers reconnecting every few minutes, 100 steady players, 400
//! players churning at 20 per second; RSS and descriptors sampled every
//! 10 s. Prints the timeline and the findings, writes
//! `target/soak/report.json`, and exits non-zero if anything is wrong.
//!
//! `cargo bench --bench soak` (one hour); `-- --duration-s 600` for less.
// Tests and benches fail by panicking on what they did not expect.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use ringcast_bench::soak::{self, LocalServer, SoakConfig};

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
    let server = LocalServer::start(env!("CARGO_BIN_EXE_ringcast")).expect("ringcast serve starts");
    let config = SoakConfig {
        url: server.url("live/soak"),
        server_pid: server.pid(),
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
    let _ = server.stop();
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
