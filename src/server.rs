//! Starts the shards and runs until a signal: stub, being written.

use crate::config::Config;
use crate::startup::StartError;

/// Runs the server on `config` until SIGINT or SIGTERM.
pub fn run(config: Config) -> Result<(), StartError> {
    let _ = config;
    todo!()
}
