//! A two-minute soak in the normal test run (the hour-long one is
//! `cargo bench --bench soak`): steady and churning players, publishers
//! reconnecting, against `ringcast serve` in its own process. The server's
//! RSS must stay flat after warm-up, its descriptors return to where they
//! were, steady players lose nothing and nobody is disconnected for an
//! error.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

use ringcast::bench::soak::{self, SoakConfig};

#[test]
fn two_minutes_of_churn_and_reconnects_leave_the_server_as_it_was() {
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
        duration: Duration::from_secs(120),
        publishers: 3,
        steady_players: 30,
        churning_players: 100,
        churn_per_s: 10.0,
        publisher_reconnect: Duration::from_secs(40),
        sample_every: Duration::from_secs(5),
        warmup: Duration::from_secs(30),
        bitrate_kbps: 500,
    };
    let report = soak::run(&config);
    // SAFETY: signalling the child this test started.
    unsafe {
        libc::kill(server.id() as i32, libc::SIGTERM);
    }
    let status = server.wait().expect("server exits");
    let report = report.expect("soak runs");
    assert!(status.success(), "server exit: {status:?}");
    let findings = report.findings(config.warmup);
    assert!(findings.is_empty(), "{findings:#?}\n{}", report.summary());
    assert!(
        report.steady.frames.received > 30 * 100,
        "{}",
        report.summary()
    );
    assert!(
        report.churning.players.total > 100 + 500,
        "churn happened: {}",
        report.summary()
    );
    assert!(
        report.churning.publishers.iter().all(|p| p.reconnects >= 2),
        "publishers reconnected"
    );
}
