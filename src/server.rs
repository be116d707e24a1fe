//! The server as a whole: shard threads, the mesh between them, the stream
//! directory and the control thread (admin API, metrics); started from a
//! [`Prepared`] setup, stopped by signal or through its [`ServerHandle`].

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use tracing::{error, info, warn};

use crate::http::{self, Control, ControlSetup};
use crate::shard::directory::Directory;
use crate::shard::mesh::{Mesh, ShardMessage};
use crate::shard::stats::{ShardSnapshot, ShardStats};
use crate::shard::{self, ShardId, ShardSetup};
use crate::startup::{Prepared, StartError};

/// A running server.
pub struct ServerHandle {
    local_addrs: Vec<SocketAddr>,
    control: Option<Control>,
    mesh: Mesh,
    stats: Vec<Arc<ShardStats>>,
    threads: Vec<JoinHandle<io::Result<()>>>,
}

/// Starts one thread per shard on the prepared listeners.
pub fn start(prepared: Prepared) -> Result<ServerHandle, StartError> {
    let Prepared {
        config,
        shard_cpus,
        listeners,
        admin,
    } = prepared;
    let config = Arc::new(config);
    let local_addrs = listeners
        .first()
        .map(|first| first.iter().filter_map(|l| l.local_addr().ok()).collect())
        .unwrap_or_default();
    let (mesh, inboxes) = Mesh::new(shard_cpus.len());
    let directory = Arc::new(Directory::default());
    let mut stats = Vec::new();
    let mut threads = Vec::new();
    for (((index, cpu), listeners), inbox) in (shard_cpus.iter().copied())
        .enumerate()
        .zip(listeners)
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
        };
        let thread = std::thread::Builder::new()
            .name(format!("shard-{index}"))
            .spawn(move || shard::run(setup))
            .map_err(|source| StartError::System {
                what: "a shard thread",
                source,
            })?;
        threads.push(thread);
    }
    let mut server = ServerHandle {
        local_addrs,
        control: None,
        mesh,
        stats,
        threads,
    };
    if let Some(listener) = admin {
        let setup = ControlSetup {
            listener,
            config,
            shard_cpus,
            mesh: server.mesh.clone(),
            stats: server.stats.clone(),
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
    info!(shards = server.threads.len(), addresses = ?server.local_addrs, "ringcast listening");
    Ok(server)
}

/// Runs the server until SIGINT or SIGTERM, then shuts it down gracefully.
/// SIGHUP (systemd's `ExecReload`) is caught so it never kills the server;
/// config reload will hang off it.
pub fn run(prepared: Prepared) -> Result<(), StartError> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals =
        signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]).map_err(|source| {
            StartError::System {
                what: "signal handlers",
                source,
            }
        })?;
    let server = start(prepared)?;
    for signal in signals.forever() {
        if signal == SIGHUP {
            warn!("SIGHUP: config reload is not implemented yet; nothing changed");
            continue;
        }
        info!(signal, "shutting down");
        break;
    }
    server.shutdown();
    Ok(())
}

impl ServerHandle {
    /// The addresses the server listens on (with ephemeral ports resolved).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// Where the admin API and `/metrics` listen (port 0 resolved); `None`
    /// when `admin` is off.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.control.as_ref().map(Control::addr)
    }

    /// Each shard's counters, in shard order.
    pub fn stats(&self) -> Vec<ShardSnapshot> {
        self.stats.iter().map(|s| s.snapshot()).collect()
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
    }
}
