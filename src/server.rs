//! Starts the shards and runs until a signal: stub, being written.

use crate::startup::{Prepared, StartError};

/// Runs the server on the checked config and bound listeners until SIGINT
/// or SIGTERM.
pub fn run(prepared: Prepared) -> Result<(), StartError> {
    let _ = prepared;
    todo!()
}
