//! Startup checks and listener binding: stub, being written.

use std::net::SocketAddr;

use crate::config::Config;

/// Why the server cannot start; each says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Other(String),
}

/// The shards to run: one per entry, the CPU to pin it to (if any).
pub fn shard_cpus(config: &Config) -> Result<Vec<Option<usize>>, StartError> {
    let _ = config;
    todo!()
}

/// Fails with the fix when io_uring cannot be used.
pub fn check_io_uring() -> Result<(), StartError> {
    todo!()
}

/// Raises the open-file limit to at least `needed` if allowed.
pub fn ensure_file_limit(needed: u64) -> Result<(), StartError> {
    let _ = needed;
    todo!()
}

/// Binds every address once per shard with SO_REUSEPORT: `[shard][address]`.
pub fn bind_listeners(
    addrs: &[SocketAddr],
    shards: usize,
) -> Result<Vec<Vec<std::net::TcpListener>>, StartError> {
    let _ = (addrs, shards);
    todo!()
}
