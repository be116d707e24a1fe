//! Startup checks and listener binding: interim version, being rewritten.

use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

use crate::config::Config;

/// Why the server cannot start; each says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("binding {addr}: {error}")]
    Bind {
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error("starting a thread: {0}")]
    Thread(String),
}

/// A server ready to start: validated config, shard CPUs, bound listeners.
pub struct Prepared {
    pub config: Config,
    pub shard_cpus: Vec<Option<usize>>,
    pub listeners: Vec<Vec<std::net::TcpListener>>,
}

/// Checks the machine and binds the listeners.
pub fn prepare(config: Config) -> Result<Prepared, StartError> {
    let shards = config.shards.unwrap_or(1);
    let shard_cpus = vec![None; shards];
    let listeners = bind_listeners(&config.listen, shards)?;
    Ok(Prepared {
        config,
        shard_cpus,
        listeners,
    })
}

/// Binds every address once per shard with SO_REUSEPORT: `[shard][address]`.
pub fn bind_listeners(
    addrs: &[SocketAddr],
    shards: usize,
) -> Result<Vec<Vec<std::net::TcpListener>>, StartError> {
    let mut out: Vec<Vec<std::net::TcpListener>> = (0..shards).map(|_| Vec::new()).collect();
    for addr in addrs {
        let mut addr = *addr;
        for shard in out.iter_mut() {
            let bind = |addr: SocketAddr| -> std::io::Result<std::net::TcpListener> {
                let socket =
                    Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
                socket.set_reuse_address(true)?;
                socket.set_reuse_port(true)?;
                socket.bind(&addr.into())?;
                socket.listen(1024)?;
                Ok(socket.into())
            };
            let listener = bind(addr).map_err(|error| StartError::Bind { addr, error })?;
            if addr.port() == 0 {
                addr = listener
                    .local_addr()
                    .map_err(|error| StartError::Bind { addr, error })?;
            }
            shard.push(listener);
        }
    }
    Ok(out)
}
