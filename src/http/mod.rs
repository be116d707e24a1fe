//! The control plane: one ordinary thread, named `control`, running a
//! small current-thread tokio runtime that serves the admin HTTP API
//! (`/api/v1/...`, JSON) and Prometheus `/metrics` with axum.
//!
//! Off the data path by construction: it never runs on a shard thread, it
//! reads the counters each shard writes alone ([`ShardStats`], relaxed
//! loads) and samples the byte counters once a second for bitrates, and
//! whatever needs a shard's own state (streams, clients, kicks) is a
//! bounded [`Query`](crate::shard::messages::Query) through the mesh, answered
//! by the shard between its own tasks and awaited with a timeout
//! (`shards`). A stuck shard makes the API say so; it never hangs it.
//!
//! - `api`: the routes and their JSON shapes.
//! - `guard`: who may call them (browser origins, bearer token, JSON
//!   POSTs), checked before any route.
//! - `metrics`: the Prometheus exposition: per shard, per stream (the
//!   streams with the most players; a bounded number) and the process.
//! - `shards`: asking shards, every wait bounded.
//!
//! Must not: block on a shard, hold a lock a shard takes, or be reachable
//! from elsewhere by default (it listens on loopback; see
//! [`crate::config::ADMIN_DEFAULT`]), nor from a browser page (`guard`).

mod api;
mod guard;
pub mod metrics;
mod shards;

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::{error, info};

use self::shards::ShardClient;
use crate::drain::Drain;
use crate::exec::ExecStats;
use crate::hls::HlsStreams;
use crate::limits;
use crate::media::RateMeter;
use crate::reload::Reloader;
use crate::shard::mesh::Mesh;
use crate::shard::messages::RATE_INTERVAL;
use crate::shard::stats::{ShardSnapshot, ShardStats};

/// The server's version, as `/api/v1/summary` and `ringcast_build_info`
/// report it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What the control thread starts with.
#[derive(Debug)]
pub struct ControlSetup {
    /// Bound and listening (startup binds it, so a taken port stops
    /// startup with the fix).
    pub listener: std::net::TcpListener,
    /// The running configuration, and `POST /api/v1/reload`.
    pub reloader: Arc<Reloader>,
    /// Each shard's CPU, for `/api/v1/shards`.
    pub shard_cpus: Vec<Option<usize>>,
    pub mesh: Mesh,
    pub stats: Vec<Arc<ShardStats>>,
    /// `POST /api/v1/drain` begins it.
    pub drain: Arc<Drain>,
    /// The HLS streams, for what their windows hold (`/metrics`).
    pub hls: Arc<HlsStreams>,
    /// What the exec supervisor counts (`/metrics`).
    pub exec: Arc<ExecStats>,
}

/// The running control thread.
#[derive(Debug)]
pub struct Control {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    thread: JoinHandle<()>,
}

/// What the handlers share; lives on the control thread.
#[derive(Debug)]
pub(crate) struct AppState {
    started: Instant,
    reloader: Arc<Reloader>,
    shard_cpus: Vec<Option<usize>>,
    stats: Vec<Arc<ShardStats>>,
    shards: ShardClient,
    drain: Arc<Drain>,
    hls: Arc<HlsStreams>,
    exec: Arc<ExecStats>,
    /// Per shard: bytes in and bytes out, as rates. Only the control
    /// thread takes this lock.
    rates: Mutex<Vec<(RateMeter, RateMeter)>>,
}

/// Starts the control thread on `setup.listener`.
pub fn spawn(setup: ControlSetup) -> io::Result<Control> {
    let addr = setup.listener.local_addr()?;
    setup.listener.set_nonblocking(true)?;
    // Built here, so a failure is a startup error rather than a dead thread.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    let (stop, stopped) = watch::channel(false);
    let thread = std::thread::Builder::new()
        .name("control".into())
        .spawn(move || runtime.block_on(serve(setup, stopped)))?;
    info!(%addr, "admin API and /metrics listening");
    Ok(Control { addr, stop, thread })
}

impl Control {
    /// Where the admin API listens (port 0 resolved).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving: requests in flight get
    /// [`limits::ADMIN_SHUTDOWN_GRACE_MS`], then the thread ends.
    pub fn stop(self) {
        let _ = self.stop.send(true);
        if self.thread.join().is_err() {
            error!("the control thread panicked");
        }
    }
}

async fn serve(setup: ControlSetup, stopped: watch::Receiver<bool>) {
    let listener = match tokio::net::TcpListener::from_std(setup.listener) {
        Ok(listener) => listener,
        Err(err) => {
            error!(error = %err, "admin API cannot use its listener");
            return;
        }
    };
    let timeout = Duration::from_millis(limits::ADMIN_SHARD_TIMEOUT_MS);
    let state = Arc::new(AppState {
        started: Instant::now(),
        rates: Mutex::new(vec![Default::default(); setup.stats.len()]),
        shards: ShardClient::new(setup.mesh, timeout),
        reloader: setup.reloader,
        shard_cpus: setup.shard_cpus,
        stats: setup.stats,
        drain: setup.drain,
        hls: setup.hls,
        exec: setup.exec,
    });
    let sampler = tokio::spawn(sample_rates(state.clone()));
    let mut graceful = stopped.clone();
    let server = axum::serve(listener, api::router(state))
        .with_graceful_shutdown(async move {
            let _ = graceful.wait_for(|stop| *stop).await;
        })
        .into_future();
    let mut deadline = stopped;
    let deadline = async move {
        let _ = deadline.wait_for(|stop| *stop).await;
        tokio::time::sleep(Duration::from_millis(limits::ADMIN_SHUTDOWN_GRACE_MS)).await;
    };
    tokio::select! {
        result = server => {
            if let Err(err) = result {
                error!(error = %err, "admin API stopped");
            }
        }
        () = deadline => {}
    }
    sampler.abort();
}

/// Every [`RATE_INTERVAL`], turns each shard's byte counters into rates.
async fn sample_rates(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(RATE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now_ms = state.started.elapsed().as_millis() as u64;
        let snapshots = state.snapshots();
        let mut rates = state.rates.lock().unwrap_or_else(PoisonError::into_inner);
        for ((bytes_in, bytes_out), snapshot) in rates.iter_mut().zip(&snapshots) {
            bytes_in.sample(snapshot.bytes_in, now_ms);
            bytes_out.sample(snapshot.bytes_out, now_ms);
        }
    }
}

impl AppState {
    fn snapshots(&self) -> Vec<ShardSnapshot> {
        self.stats.iter().map(|s| s.snapshot()).collect()
    }

    /// Per shard: (ingress, egress) in bits per second.
    fn rates_bps(&self) -> Vec<(u64, u64)> {
        let rates = self.rates.lock().unwrap_or_else(PoisonError::into_inner);
        rates
            .iter()
            .map(|(i, o)| (i.per_s().saturating_mul(8), o.per_s().saturating_mul(8)))
            .collect()
    }
}
