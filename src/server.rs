//! The server as a whole: shard threads, the mesh between them, the
//! stream directory, the per-address connection counts, the hook thread,
//! the recorder thread, the exec supervisor thread and the control thread
//! (admin API, metrics); started from a
//! [`Prepared`] setup, reloaded on SIGHUP, drained on SIGTERM
//! ([`crate::drain`]), stopped by SIGINT, by the end of a drain, or
//! through its [`ServerHandle`].

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing::{error, info};

use crate::access::hooks::Hooks;
use crate::access::peers::PeerCounts;
use crate::drain::{self, Drain, Progress};
use crate::exec::Exec;
use crate::hls::HlsStreams;
use crate::http::{self, Control, ControlSetup};
use crate::record::Recorder;
use crate::reload::{ConfigSource, Reloader};
use crate::router::Directory;
use crate::shard::mesh::Mesh;
use crate::shard::messages::ShardMessage;
use crate::shard::stats::{ShardSnapshot, ShardStats};
use crate::shard::{self, ShardId, ShardListeners, ShardSetup};
use crate::startup::{Prepared, StartError};

/// A running server.
pub struct ServerHandle {
    local_addrs: Vec<SocketAddr>,
    http_addrs: Vec<SocketAddr>,
    rtmps_addrs: Vec<SocketAddr>,
    https_addrs: Vec<SocketAddr>,
    control: Option<Control>,
    mesh: Mesh,
    stats: Vec<Arc<ShardStats>>,
    threads: Vec<JoinHandle<io::Result<()>>>,
    reloader: Arc<Reloader>,
    peers: Arc<PeerCounts>,
    drain: Arc<Drain>,
    /// Ends once the shards and the recorder thread (holding the other
    /// handles) are gone.
    hooks: (Hooks, JoinHandle<()>),
    /// Ends once the shards (holding the other handles) are gone, after
    /// completing the files still open.
    recorder: (Recorder, JoinHandle<()>),
    /// Ends once the shards are gone and every child they started was
    /// stopped and reaped.
    exec: (Exec, JoinHandle<()>),
}

/// Starts one thread per shard on the prepared listeners; the config can
/// be changed with [`Reloader::apply`] but not read again from its source.
pub fn start(prepared: Prepared) -> Result<ServerHandle, StartError> {
    launch(prepared, None)
}

fn launch(prepared: Prepared, source: Option<ConfigSource>) -> Result<ServerHandle, StartError> {
    let Prepared {
        config,
        shard_cpus,
        listeners,
        http_listeners,
        rtmps_listeners,
        https_listeners,
        admin,
    } = prepared;
    let config = Arc::new(config);
    let system = |what| move |source| StartError::System { what, source };
    let hooks = Hooks::start().map_err(system("the hook thread"))?;
    let peers = Arc::new(PeerCounts::default());
    let first_addrs = |listeners: &[Vec<std::net::TcpListener>]| -> Vec<SocketAddr> {
        (listeners.first().into_iter().flatten())
            .filter_map(|l| l.local_addr().ok())
            .collect()
    };
    let (local_addrs, http_addrs) = (first_addrs(&listeners), first_addrs(&http_listeners));
    let (rtmps_addrs, https_addrs) = (first_addrs(&rtmps_listeners), first_addrs(&https_listeners));
    // `{port}` of exec_publish: the first RTMP listener's, as bound.
    let port = local_addrs.first().map_or(0, SocketAddr::port);
    let exec = Exec::start(port).map_err(system("the exec supervisor thread"))?;
    let (mesh, inboxes) = Mesh::new(shard_cpus.len());
    let recorder =
        Recorder::start(hooks.0.clone(), mesh.clone()).map_err(system("the recorder thread"))?;
    let directory = Arc::new(Directory::default());
    let hls = Arc::new(HlsStreams::new(shard_cpus.len()));
    let mut stats = Vec::new();
    let mut threads = Vec::new();
    let by_shard = (listeners.into_iter().zip(http_listeners))
        .zip(rtmps_listeners.into_iter().zip(https_listeners))
        .map(|((rtmp, http), (rtmps, https))| ShardListeners {
            rtmp,
            http,
            rtmps,
            https,
        });
    for (((index, cpu), listeners), inbox) in (shard_cpus.iter().copied())
        .enumerate()
        .zip(by_shard)
        .zip(inboxes)
    {
        let shard_stats = Arc::new(ShardStats::default());
        stats.push(shard_stats.clone());
        let setup = ShardSetup {
            id: ShardId(index),
            cpu,
            config: config.clone(),
            listeners,
            directory: directory.clone(),
            mesh: mesh.clone(),
            inbox,
            stats: shard_stats,
            peers: peers.clone(),
            hooks: hooks.0.clone(),
            exec: exec.0.clone(),
            hls: hls.clone(),
            recorder: recorder.0.clone(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("shard-{index}"))
            .spawn(move || shard::run(setup))
            .map_err(system("a shard thread"))?;
        threads.push(thread);
    }
    let reloader = Arc::new(Reloader::new(mesh.clone(), config, source));
    let drain = Arc::new(Drain::new(mesh.clone(), stats.clone()));
    let mut server = ServerHandle {
        local_addrs,
        http_addrs,
        rtmps_addrs,
        https_addrs,
        control: None,
        mesh,
        stats,
        threads,
        reloader,
        peers,
        drain,
        hooks,
        recorder,
        exec,
    };
    if let Some(listener) = admin {
        let setup = ControlSetup {
            listener,
            reloader: server.reloader.clone(),
            shard_cpus,
            mesh: server.mesh.clone(),
            stats: server.stats.clone(),
            drain: server.drain.clone(),
            hls,
            exec: server.exec.0.stats().clone(),
        };
        match http::spawn(setup) {
            Ok(control) => server.control = Some(control),
            Err(source) => {
                server.shutdown();
                return Err(StartError::System {
                    what: "the control thread (admin API)",
                    source,
                });
            }
        }
    }
    if !server.http_addrs.is_empty() {
        info!(addresses = ?server.http_addrs, "HTTP-FLV and WebSocket-FLV listening");
    }
    server.reloader.running().tls.log_certificates();
    if !server.rtmps_addrs.is_empty() {
        info!(addresses = ?server.rtmps_addrs, "RTMPS listening");
    }
    if !server.https_addrs.is_empty() {
        info!(addresses = ?server.https_addrs, "HTTPS-FLV and WSS listening");
    }
    info!(shards = server.threads.len(), addresses = ?server.local_addrs, "ringcast listening");
    Ok(server)
}

/// How often the main thread looks whether a drain began (the admin API
/// may begin one) or is over: it reads the shards' counters, which costs
/// them nothing.
const DRAIN_CHECK_INTERVAL: Duration = Duration::from_millis(50);

/// Runs the server until SIGINT, or the end of a drain (SIGTERM, `POST
/// /api/v1/drain`; a second SIGTERM ends it at once), then shuts it down
/// gracefully; SIGHUP reloads the configuration from `source`.
pub fn run(prepared: Prepared, source: ConfigSource) -> Result<(), StartError> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let system = |what| move |source| StartError::System { what, source };
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .map_err(system("signal handlers"))?;
    let server = launch(prepared, Some(source))?;
    // Signals come through a channel, so waiting for one can also watch a
    // drain that the admin API began.
    let (forward, received) = mpsc::channel();
    let closer = signals.handle();
    let forwarder = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if forward.send(signal).is_err() {
                    return;
                }
            }
        });
    let forwarder = match forwarder {
        Ok(forwarder) => forwarder,
        Err(source) => {
            server.shutdown();
            return Err(system("the signal thread")(source));
        }
    };
    serve_until_stopped(&server, &received);
    closer.close();
    if forwarder.join().is_err() {
        error!("signal thread panicked");
    }
    server.shutdown();
    Ok(())
}

/// Acts on signals until one stops the server or a drain is over.
fn serve_until_stopped(server: &ServerHandle, signals: &mpsc::Receiver<i32>) {
    use signal_hook::consts::{SIGHUP, SIGTERM};
    loop {
        // Not a blocking wait: a drain the admin API began has to be
        // watched too.
        match signals.recv_timeout(DRAIN_CHECK_INTERVAL) {
            Ok(SIGHUP) => {
                // Success and what needs a restart are logged by the reload.
                if let Err(err) = server.reloader.reload() {
                    error!(error = %crate::config::error_report(&err), "SIGHUP");
                }
            }
            Ok(SIGTERM) if server.drain.began() => {
                info!(
                    signal = SIGTERM,
                    "shutting down without waiting for the drain"
                );
                return;
            }
            Ok(SIGTERM) => {
                server.drain("SIGTERM");
            }
            Ok(signal) => {
                info!(signal, "shutting down");
                return;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        let progress = server.drain.progress();
        if matches!(progress, Progress::Over { .. }) {
            drain::log_over(progress);
            return;
        }
    }
}

impl ServerHandle {
    /// The addresses the server listens on (with ephemeral ports resolved).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// The addresses HTTP-FLV and WebSocket-FLV players connect to (port 0
    /// resolved); empty when the HTTP listener is off.
    pub fn http_addrs(&self) -> &[SocketAddr] {
        &self.http_addrs
    }

    /// The addresses RTMPS clients connect to (port 0 resolved); empty
    /// when none is configured.
    pub fn rtmps_addrs(&self) -> &[SocketAddr] {
        &self.rtmps_addrs
    }

    /// The addresses HTTPS-FLV and WSS players connect to.
    pub fn https_addrs(&self) -> &[SocketAddr] {
        &self.https_addrs
    }

    /// The first of [`ServerHandle::http_addrs`], if any.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addrs.first().copied()
    }

    /// Where the admin API and `/metrics` listen (port 0 resolved); `None`
    /// when `admin` is off.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.control.as_ref().map(Control::addr)
    }

    /// The running configuration and the means to change it.
    pub fn reloader(&self) -> &Arc<Reloader> {
        &self.reloader
    }

    /// Connections per IP address, server-wide.
    pub fn peers(&self) -> &Arc<PeerCounts> {
        &self.peers
    }

    /// Each shard's counters, in shard order.
    pub fn stats(&self) -> Vec<ShardSnapshot> {
        self.stats.iter().map(|s| s.snapshot()).collect()
    }

    /// Begins a maintenance drain with the running configuration's
    /// settings (`why`: what asked, for the log); false if one already
    /// began. [`run`] shuts down once it is over.
    pub fn drain(&self, why: &str) -> bool {
        self.drain.begin(&self.reloader.running().drain, why)
    }

    /// Stops accepting, tells players, closes connections within the
    /// configured time, and waits for every shard to stop.
    pub fn shutdown(self) {
        // The API first: it would only report shards going away.
        if let Some(control) = self.control {
            control.stop();
        }
        for shard in 0..self.threads.len() {
            self.mesh.send(ShardId(shard), ShardMessage::Shutdown);
        }
        for (index, thread) in self.threads.into_iter().enumerate() {
            match thread.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => error!(shard = index, error = %e, "shard failed"),
                Err(_) => error!(shard = index, "shard panicked"),
            }
        }
        // The recorder completes its files and tells their hooks first.
        let (handle, thread) = self.recorder;
        drop(handle);
        if thread.join().is_err() {
            error!("recorder thread panicked");
        }
        let (handle, thread) = self.hooks;
        drop(handle);
        if thread.join().is_err() {
            error!("hook thread panicked");
        }
        // The shards dropped their programs' `Running`s: each child is
        // being stopped (SIGTERM, then SIGKILL after the grace period).
        let (handle, thread) = self.exec;
        drop(handle);
        if thread.join().is_err() {
            error!("exec supervisor thread panicked");
        }
    }
}
