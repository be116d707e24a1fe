//! Soak and churn: a long run against a server process with steady
//! players, churning players (leaving and joining) and publishers that
//! reconnect now and then, watching the server's memory and file
//! descriptors. A healthy server's RSS is flat after warm-up, its
//! descriptors return to where they started, steady players lose no frame
//! and nobody is disconnected for an error.
//!
//! `benches/soak.rs` runs it for an hour; `tests/soak.rs` for two minutes.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::report::Report;
use super::source::Shape;
use super::trust::Trust;
use super::url::StreamUrl;
use super::{BenchConfig, BenchError, procstat};

/// What to run.
#[derive(Clone, Debug)]
pub struct SoakConfig {
    /// `rtmp://host:port/app/stream`: publishers use `stream-0`, …; steady
    /// players watch `stream-0`.
    pub url: String,
    pub server_pid: u32,
    pub duration: Duration,
    pub publishers: usize,
    pub steady_players: usize,
    pub churning_players: usize,
    pub churn_per_s: f64,
    pub publisher_reconnect: Duration,
    pub sample_every: Duration,
    /// RSS and descriptors are judged from this far into the run.
    pub warmup: Duration,
    pub bitrate_kbps: u32,
}

/// One reading of the server.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Sample {
    pub t_s: f64,
    pub rss_bytes: u64,
    pub fds: usize,
}

/// What the soak saw.
#[derive(Clone, Debug, Serialize)]
pub struct SoakReport {
    pub samples: Vec<Sample>,
    pub fds_before: usize,
    pub fds_after: usize,
    pub steady: Report,
    pub churning: Report,
}

/// `ringcast serve` as its own process on a free loopback port, 2 shards,
/// no admin API: what the soaks run against.
#[derive(Debug)]
pub struct LocalServer {
    child: Child,
    port: u16,
}

impl LocalServer {
    /// Starts `binary` (the `ringcast` executable) and waits until it
    /// accepts connections.
    pub fn start(binary: &str) -> io::Result<LocalServer> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let listen = format!("127.0.0.1:{port}");
        let child = Command::new(binary)
            .args([
                "serve", "--listen", &listen, "--shards", "2", "--admin", "off", "--http", "off",
            ])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()?;
        let mut server = LocalServer { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(&listen).is_err() {
            if let Some(status) = server.child.try_wait()? {
                return Err(io::Error::other(format!("ringcast serve exited: {status}")));
            }
            if Instant::now() > deadline {
                server.child.kill()?;
                return Err(io::Error::other(
                    "ringcast serve did not accept within 10 s",
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `rtmp://127.0.0.1:PORT/{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("rtmp://127.0.0.1:{}/{path}", self.port)
    }

    /// Stops it with SIGTERM (a graceful shutdown) and waits for it.
    pub fn stop(mut self) -> io::Result<ExitStatus> {
        let pid = libc::pid_t::try_from(self.child.id()).map_err(io::Error::other)?;
        // SAFETY: kill(2) with a child this process started and has not
        // waited for yet, so the pid cannot have been reused.
        if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
            return Err(io::Error::last_os_error());
        }
        self.child.wait()
    }
}

/// Runs the soak; the server must already be running at `config.url`.
pub fn run(config: &SoakConfig) -> Result<SoakReport, BenchError> {
    let fds_before = count_fds(config.server_pid);
    let steady = bench_config(config, config.steady_players, 0, 0.0);
    let churning = bench_config(
        config,
        config.churning_players,
        config.publishers,
        config.churn_per_s,
    );
    let started = Instant::now();
    let churn_thread = std::thread::spawn(move || super::run(&churning));
    // Steady players join once the publishers are up.
    std::thread::sleep(Duration::from_secs(2));
    let steady_thread = std::thread::spawn(move || super::run(&steady));
    let mut samples = Vec::new();
    let mut next = Instant::now();
    while !(churn_thread.is_finished() && steady_thread.is_finished()) {
        if Instant::now() >= next {
            next += config.sample_every;
            if let Some(reading) = procstat::sample(config.server_pid) {
                samples.push(Sample {
                    t_s: started.elapsed().as_secs_f64(),
                    rss_bytes: reading.rss_bytes,
                    fds: count_fds(config.server_pid),
                });
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let churning = join(churn_thread)?;
    let steady = join(steady_thread)?;
    // Let the server close what the players left.
    std::thread::sleep(Duration::from_secs(2));
    Ok(SoakReport {
        samples,
        fds_before,
        fds_after: count_fds(config.server_pid),
        steady,
        churning,
    })
}

fn join(thread: std::thread::JoinHandle<Result<Report, BenchError>>) -> Result<Report, BenchError> {
    thread.join().unwrap_or_else(|_| {
        Err(BenchError::Thread(std::io::Error::other(
            "a bench thread panicked",
        )))
    })
}

fn bench_config(
    config: &SoakConfig,
    players: usize,
    publishers: usize,
    churn_per_s: f64,
) -> BenchConfig {
    // Players alone watch the first of the publishers' streams.
    let url = match (publishers, StreamUrl::parse(&config.url)) {
        (0, Ok(url)) => url.publisher(0).to_string(),
        _ => config.url.clone(),
    };
    BenchConfig {
        url,
        publish_url: None,
        trust: Trust::PublicRoots,
        players,
        publishers,
        duration: config.duration,
        ramp: Duration::from_secs(5).min(config.duration / 4),
        churn_per_s,
        shape: Shape {
            bitrate_kbps: config.bitrate_kbps,
            fps: 30.0,
            gop_s: 2.0,
            audio_rate: 44_100,
        },
        flv: None,
        threads: 1,
        cpus: None,
        warmup: Duration::from_secs(1),
        server_pid: Some(config.server_pid),
        publisher_reconnect: (publishers > 0).then_some(config.publisher_reconnect),
        progress: false,
    }
}

/// Open descriptors of a process (0 if it cannot be read).
fn count_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

impl SoakReport {
    /// What is wrong, if anything: RSS growing after warm-up, descriptors
    /// not back where they were, steady players losing frames, players
    /// that never got a frame, players disconnected for an error,
    /// publishers failing.
    pub fn findings(&self, warmup: Duration) -> Vec<String> {
        let mut findings = Vec::new();
        let after: Vec<&Sample> = self
            .samples
            .iter()
            .filter(|s| s.t_s >= warmup.as_secs_f64())
            .collect();
        if let (Some(first), Some(max)) = (after.first(), after.iter().map(|s| s.rss_bytes).max()) {
            // Flat: within a quarter, plus 16 MiB for allocator slack.
            let allowed = first.rss_bytes + first.rss_bytes / 4 + 16 * 1024 * 1024;
            if max > allowed {
                findings.push(format!(
                    "RSS grew after warm-up: {} MiB at {:.0} s, up to {} MiB",
                    first.rss_bytes >> 20,
                    first.t_s,
                    max >> 20
                ));
            }
        }
        // A few descriptors may belong to connections still closing.
        if self.fds_after > self.fds_before + 4 {
            findings.push(format!(
                "descriptors: {} before, {} after",
                self.fds_before, self.fds_after
            ));
        }
        if self.steady.frames.lost > 0 {
            findings.push(format!(
                "steady players lost {} frames",
                self.steady.frames.lost
            ));
        }
        for report in [&self.steady, &self.churning] {
            // A joiner gets the GOP cache at once: only those that joined
            // in the last second may have seen no frame.
            let late_joiners = report.config.churn_per_s.ceil() as u64 + 1;
            if report.players.never_played > late_joiners {
                findings.push(format!(
                    "{} of {} players never got a frame",
                    report.players.never_played, report.players.total
                ));
            }
            for (reason, n) in &report.players.disconnects {
                findings.push(format!("{n} players disconnected: {reason}"));
            }
            for publisher in &report.publishers {
                if let Some(error) = &publisher.error {
                    findings.push(format!("publisher {} failed: {error}", publisher.stream));
                }
            }
        }
        findings
    }

    /// A summary a person reads.
    pub fn summary(&self) -> String {
        let mut out = String::from("   t (s)   RSS (MiB)   fds\n");
        for s in &self.samples {
            out += &format!(
                "{:8.0} {:11.1} {:5}\n",
                s.t_s,
                s.rss_bytes as f64 / 1048576.0,
                s.fds
            );
        }
        out += &format!(
            "descriptors before {}, after {}\n",
            self.fds_before, self.fds_after
        );
        out += "steady players:\n";
        out += &self.steady.summary();
        out += "churning players and publishers:\n";
        out += &self.churning.summary();
        out
    }
}
