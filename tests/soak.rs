//! A two-minute soak in the normal test run (the hour-long one is
//! `cargo bench --bench soak`): steady and churning players, publishers
//! reconnecting, against `ringcast serve` in its own process. The server's
//! RSS must stay flat after warm-up, its descriptors return to where they
//! were, steady players lose nothing and nobody is disconnected for an
//! error.

use std::time::Duration;

use ringcast_bench::soak::{self, LocalServer, SoakConfig};

#[test]
fn two_minutes_of_churn_and_reconnects_leave_the_server_as_it_was() {
    let server = LocalServer::start(env!("CARGO_BIN_EXE_ringcast")).expect("ringcast serve starts");
    let config = SoakConfig {
        url: server.url("live/soak"),
        server_pid: server.pid(),
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
    let status = server.stop().expect("server exits");
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
