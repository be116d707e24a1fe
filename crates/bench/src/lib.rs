//! `ringcast bench`: a load generator for any RTMP server, measuring what
//! live delivery users care about: end-to-end latency of every frame, time
//! to first frame, whether players start on a keyframe, lost frames,
//! stalls and throughput, with thousands of players per core.
//!
//! Publishers send a real H.264 + AAC stream (or a looped FLV file) over
//! RTMP in real time, stamping every video frame with the wall clock
//! ([`stamp`]); players are clients on tokio-uring, over RTMP, HTTP-FLV,
//! WebSocket-FLV or Low-Latency HLS ([`hls`]), plain or over TLS ([`url`],
//! [`trust`]), that read only headers and the first bytes of each video
//! message ([`player`]). Worker threads each run their share of players;
//! the calling thread prints progress once a second and assembles the
//! [`report::Report`].
//!
//! [`floor`] is the cost floor the comparison bench measures servers
//! against: the same stream written to the same sockets by a plain
//! `writev` loop.

pub mod chunked;
pub mod floor;
pub mod flv;
pub mod hls;
pub mod http_flv;
pub mod player;
pub mod procstat;
pub mod publisher;
pub mod report;
pub mod soak;
pub mod source;
pub mod stamp;
pub mod stats;
pub mod trust;
pub mod url;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use tokio::sync::Notify;

use self::player::{Plan, Shared};
use self::publisher::Outcome;
use self::report::{Report, Timeline};
use self::source::{Shape, Source, SourceError};
use self::stats::{Totals, histogram};
use self::trust::{INSECURE_WARNING, Secure, Trust};
use self::url::{Protocol, StreamUrl, UrlError};

/// What to run.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// What players play: `rtmp://host:port/app/stream`,
    /// `http://host:port/app/stream.flv`, `ws://host:port/app/stream.flv`
    /// or `http://host:port/app/stream.m3u8` (LL-HLS), or the same over
    /// TLS: `rtmps://`, `https://`, `wss://`.
    pub url: String,
    /// Where publishers publish, `rtmp://host:port/app/stream` (plain
    /// RTMP); None: the `url` if it is `rtmp://`, else the same host, app
    /// and stream on the default RTMP port.
    pub publish_url: Option<String>,
    /// Which certificates players over TLS accept.
    pub trust: Trust,
    pub players: usize,
    /// Publishers to start (0: play a stream someone else publishes).
    pub publishers: usize,
    /// How long players play, from the first player's start.
    pub duration: Duration,
    /// Players start evenly over this.
    pub ramp: Duration,
    /// Players leaving and joining per second during the run.
    pub churn_per_s: f64,
    pub shape: Shape,
    /// Publish this FLV file (looped) instead of the synthetic stream.
    pub flv: Option<PathBuf>,
    /// Worker threads running players (publishers run on the first).
    pub threads: usize,
    /// CPUs to pin worker threads to, in order.
    pub cpus: Option<Vec<usize>>,
    /// Publishers start this long before the first player, so a GOP is
    /// cached and the stream is live when players arrive.
    pub warmup: Duration,
    /// A server process to measure (CPU time, memory).
    pub server_pid: Option<u32>,
    /// Publishers disconnect and publish again this often.
    pub publisher_reconnect: Option<Duration>,
    /// Print a progress line every second.
    pub progress: bool,
}

/// Why a bench could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("--url {0}")]
    Url(UrlError),
    #[error("--publish-url {0}")]
    PublishUrl(UrlError),
    #[error(
        "--publish-url {url}: publishers publish over plain RTMP (rtmp://host:port/app/stream)"
    )]
    PublishNotRtmp { url: String },
    #[error("{flag}: {reason}")]
    Tls { flag: &'static str, reason: String },
    #[error("{url}: cannot resolve {host}: {reason}")]
    Resolve {
        url: String,
        host: String,
        reason: String,
    },
    #[error("--flv {path}: {reason}")]
    Flv { path: String, reason: String },
    #[error("source: {0}")]
    Source(#[from] SourceError),
    #[error("cannot start a worker thread: {0}")]
    Thread(std::io::Error),
}

/// Where the load goes, resolved.
#[derive(Clone, Debug)]
struct Target {
    play: Side,
    publish: Side,
}

/// Where players, or publishers, go.
#[derive(Clone, Debug)]
struct Side {
    url: StreamUrl,
    addr: SocketAddr,
    /// For a URL over TLS: what its players connect with.
    tls: Option<Secure>,
    /// One stream name per publisher (or the URL's when there are none).
    streams: Vec<String>,
}

/// One second of the run, from one worker thread.
struct Tick {
    thread: usize,
    playing: u64,
    bytes: u64,
    latency: Histogram<u64>,
}

/// What a worker thread hands back.
struct WorkerResult {
    totals: Totals,
    publishers: Vec<Outcome>,
}

/// Runs the bench and returns its report.
pub fn run(config: &BenchConfig) -> Result<Report, BenchError> {
    let target = resolve(config)?;
    if config.trust == Trust::Insecure {
        eprintln!("{INSECURE_WARNING}");
    }
    let flv = match &config.flv {
        Some(path) => Some(Bytes::from(std::fs::read(path).map_err(|e| {
            BenchError::Flv {
                path: path.display().to_string(),
                reason: e.to_string(),
            }
        })?)),
        None => None,
    };
    // Check the source before starting anything.
    make_source(config, flv.as_ref())?;
    let threads = config.threads.max(1);
    let start = Instant::now() + Duration::from_millis(100);
    let players_start = start
        + if config.publishers > 0 {
            config.warmup
        } else {
            Duration::ZERO
        };
    let end = players_start + config.duration;
    let (ticks, received) = mpsc::channel();
    let mut workers = Vec::new();
    for thread in 0..threads {
        let spec = WorkerSpec {
            thread,
            threads,
            config: config.clone(),
            target: target.clone(),
            flv: flv.clone(),
            start,
            players_start,
            end,
            ticks: ticks.clone(),
        };
        let handle = std::thread::Builder::new()
            .name(format!("bench-{thread}"))
            .spawn(move || spec.run())
            .map_err(BenchError::Thread)?;
        workers.push(handle);
    }
    drop(ticks);
    let observed = observe(config, threads, players_start, end, &received);
    let mut totals = Totals::default();
    let mut publishers = Vec::new();
    for worker in workers {
        if let Ok(result) = worker.join() {
            totals.merge(&result.totals);
            publishers.extend(result.publishers);
        }
    }
    Ok(Report::new(config, &totals, publishers, observed))
}

fn resolve(config: &BenchConfig) -> Result<Target, BenchError> {
    let play = StreamUrl::parse(&config.url).map_err(BenchError::Url)?;
    let publish_url = match &config.publish_url {
        Some(url) => url.clone(),
        None if play.protocol == Protocol::Rtmp && !play.tls => config.url.clone(),
        None => play.default_publish_url(),
    };
    let publish = StreamUrl::parse(&publish_url).map_err(BenchError::PublishUrl)?;
    if publish.protocol != Protocol::Rtmp || publish.tls {
        return Err(BenchError::PublishNotRtmp { url: publish_url });
    }
    let tls = match (play.tls, config.trust.flag()) {
        (true, _) => Some(
            config
                .trust
                .secure(&play.host)
                .map_err(|(flag, reason)| BenchError::Tls { flag, reason })?,
        ),
        (false, None) => None,
        (false, Some(flag)) => {
            return Err(BenchError::Tls {
                flag,
                reason: format!(
                    "players of {} do not speak TLS (rtmps://, https:// and wss:// do)",
                    config.url
                ),
            });
        }
    };
    let mut play = side(play, config.publishers)?;
    play.tls = tls;
    Ok(Target {
        play,
        publish: side(publish, config.publishers)?,
    })
}

/// Resolves `url`'s host; with several publishers, the streams are
/// `STREAM-0`, `STREAM-1`, ...
fn side(url: StreamUrl, publishers: usize) -> Result<Side, BenchError> {
    let addr = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| e.to_string())
        .and_then(|mut a| a.next().ok_or_else(|| "no address".to_owned()))
        .map_err(|reason| BenchError::Resolve {
            url: url.to_string(),
            host: url.host.clone(),
            reason,
        })?;
    let streams = if publishers <= 1 {
        vec![url.stream.clone()]
    } else {
        (0..publishers)
            .map(|i| StreamUrl::numbered(&url.stream, i))
            .collect()
    };
    Ok(Side {
        url,
        addr,
        tls: None,
        streams,
    })
}

fn make_source(config: &BenchConfig, flv: Option<&Bytes>) -> Result<Source, SourceError> {
    match flv {
        Some(file) => Source::file(file),
        None => Source::synthetic(config.shape),
    }
}

/// What the calling thread saw while the run went on.
pub struct Observed {
    pub timeline: Vec<Timeline>,
    pub elapsed: Duration,
    pub server: Option<report::Server>,
}

/// Collects worker ticks once a second (printing progress) and samples the
/// server process, until `end`.
fn observe(
    config: &BenchConfig,
    threads: usize,
    players_start: Instant,
    end: Instant,
    ticks: &mpsc::Receiver<Tick>,
) -> Observed {
    let mut latest: Vec<(u64, u64)> = vec![(0, 0); threads];
    let mut last_bytes = 0u64;
    let mut timeline = Vec::new();
    let mut server = config.server_pid.map(report::ServerWatch::new);
    let mut next = Instant::now() + Duration::from_secs(1);
    let mut second = histogram();
    while Instant::now() < end + Duration::from_millis(500) {
        let wait = next.saturating_duration_since(Instant::now());
        match ticks.recv_timeout(wait) {
            Ok(tick) => {
                if let Some(slot) = latest.get_mut(tick.thread) {
                    *slot = (tick.playing, tick.bytes);
                }
                let _ = second.add(&tick.latency);
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        next += Duration::from_secs(1);
        if let Some(watch) = &mut server {
            watch.sample(Instant::now() >= players_start);
        }
        let playing: u64 = latest.iter().map(|l| l.0).sum();
        let bytes: u64 = latest.iter().map(|l| l.1).sum();
        let point = Timeline::new(
            players_start,
            playing,
            bytes.saturating_sub(last_bytes),
            &second,
        );
        last_bytes = bytes;
        second.reset();
        if config.progress {
            eprint!("\r{}   ", point.progress_line());
        }
        timeline.push(point);
    }
    if config.progress {
        eprintln!();
    }
    Observed {
        timeline,
        elapsed: end.saturating_duration_since(players_start),
        server: server.map(|w| w.finish()),
    }
}

/// A worker thread's share of the run.
struct WorkerSpec {
    thread: usize,
    threads: usize,
    config: BenchConfig,
    target: Target,
    flv: Option<Bytes>,
    start: Instant,
    players_start: Instant,
    end: Instant,
    ticks: mpsc::Sender<Tick>,
}

impl WorkerSpec {
    fn run(self) -> WorkerResult {
        if let Some(cpu) = self
            .config
            .cpus
            .as_ref()
            .and_then(|c| c.get(self.thread % c.len().max(1)))
        {
            let _ = core_affinity::set_for_current(core_affinity::CoreId { id: *cpu });
        }
        tokio_uring::start(self.serve())
    }

    async fn serve(self) -> WorkerResult {
        let shared = Rc::new(Shared::default());
        let publishers = self.start_publishers();
        let crowd = Rc::new(Crowd::default());
        for index in (self.thread..self.config.players).step_by(self.threads) {
            let offset = self
                .config
                .ramp
                .mul_f64(index as f64 / self.config.players.max(1) as f64);
            crowd.spawn(
                self.players_start + offset,
                self.plan(index),
                shared.clone(),
            );
        }
        let churn = self.churn(&crowd, &shared);
        self.tick_until_end(&shared).await;
        if let Some(churn) = churn {
            churn.abort();
        }
        crowd.stop_all().await;
        let mut outcomes = Vec::new();
        for (stop, publisher) in publishers {
            stop.notify_one();
            if let Ok(outcome) = publisher.await {
                outcomes.push(outcome);
            }
        }
        WorkerResult {
            totals: shared.totals.borrow().clone(),
            publishers: outcomes,
        }
    }

    /// The first worker runs every publisher.
    fn start_publishers(&self) -> Vec<(Rc<Notify>, tokio::task::JoinHandle<Outcome>)> {
        if self.thread != 0 {
            return Vec::new();
        }
        let mut started = Vec::new();
        let publish = &self.target.publish;
        for (index, stream) in publish
            .streams
            .iter()
            .enumerate()
            .take(self.config.publishers)
        {
            let Ok(source) = make_source(&self.config, self.flv.as_ref()) else {
                continue;
            };
            let stop = Rc::new(Notify::new());
            let plan = publisher::Plan {
                addr: publish.addr,
                app: publish.url.app.clone(),
                // The URL's query goes with each stream, for the server.
                stream: match &publish.url.query {
                    Some(query) => format!("{stream}?{query}"),
                    None => stream.clone(),
                },
                index: index as u32,
                reconnect_every: self.config.publisher_reconnect,
            };
            let (start, stopping) = (self.start, stop.clone());
            let task = tokio_uring::spawn(async move {
                tokio::time::sleep_until(start.into()).await;
                publisher::run(plan, source, stopping).await
            });
            started.push((stop, task));
        }
        started
    }

    fn plan(&self, index: usize) -> Plan {
        let play = &self.target.play;
        Plan {
            protocol: play.url.protocol,
            tls: play.tls.clone(),
            addr: play.addr,
            authority: play.url.authority(),
            app: play.url.app.clone(),
            stream: play
                .streams
                .get(index % play.streams.len().max(1))
                .cloned()
                .unwrap_or_default(),
            query: play.url.query.clone(),
            frame_interval: Duration::from_secs_f64(1.0 / self.config.shape.fps.max(1.0)),
        }
    }

    /// Sends a tick to the calling thread every second until the end.
    async fn tick_until_end(&self, shared: &Shared) {
        let mut interval = tokio::time::interval(Duration::from_secs(1));
        while Instant::now() < self.end {
            tokio::select! {
                _ = interval.tick() => {}
                () = tokio::time::sleep_until(self.end.into()) => {}
            }
            let latency = std::mem::replace(&mut *shared.window.borrow_mut(), histogram());
            let tick = Tick {
                thread: self.thread,
                playing: shared.playing.get(),
                bytes: shared.bytes.get(),
                latency,
            };
            let _ = self.ticks.send(tick);
        }
    }

    /// Starts this thread's share of churn: at a steady rate the oldest
    /// player leaves and a new one joins.
    fn churn(&self, crowd: &Rc<Crowd>, shared: &Rc<Shared>) -> Option<tokio::task::JoinHandle<()>> {
        let rate = self.config.churn_per_s / self.threads as f64;
        if rate <= 0.0 || self.config.players == 0 {
            return None;
        }
        let plans: Vec<Plan> = (self.thread..self.config.players)
            .step_by(self.threads)
            .map(|i| self.plan(i))
            .collect();
        let (crowd, shared) = (crowd.clone(), shared.clone());
        let (from, end) = (self.players_start + self.config.ramp, self.end);
        Some(tokio_uring::spawn(async move {
            tokio::time::sleep_until(from.into()).await;
            let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
            let mut turn = 0usize;
            while Instant::now() < end {
                interval.tick().await;
                let Some(plan) = plans.get(turn % plans.len().max(1)).cloned() else {
                    return;
                };
                turn += 1;
                crowd.leave_oldest();
                crowd.spawn(Instant::now(), plan, shared.clone());
            }
        }))
    }
}

/// A worker's players: how to stop each, and their tasks.
#[derive(Default)]
struct Crowd {
    stops: std::cell::RefCell<std::collections::VecDeque<Rc<Notify>>>,
    tasks: std::cell::RefCell<Vec<tokio::task::JoinHandle<()>>>,
}

impl Crowd {
    /// Starts a player at `at`.
    fn spawn(&self, at: Instant, plan: Plan, shared: Rc<Shared>) {
        let stop = Rc::new(Notify::new());
        self.stops.borrow_mut().push_back(stop.clone());
        let mut tasks = self.tasks.borrow_mut();
        // Players that left have reported: an hour of churn keeps no
        // handles of theirs.
        tasks.retain(|task| !task.is_finished());
        tasks.push(tokio_uring::spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            player::run(plan, shared, stop).await;
        }));
    }

    fn leave_oldest(&self) {
        let oldest = self.stops.borrow_mut().pop_front();
        if let Some(stop) = oldest {
            stop.notify_one();
        }
    }

    /// Stops every player and waits until each has reported.
    async fn stop_all(&self) {
        for stop in self.stops.borrow_mut().drain(..) {
            stop.notify_one();
        }
        let tasks = std::mem::take(&mut *self.tasks.borrow_mut());
        for task in tasks {
            let _ = task.await;
        }
    }
}
