//! The server's log lines, captured so a test can count what one peer
//! made it write ("logged once per connection, not once per byte").
//!
//! [`capture`] installs the process's tracing subscriber at `info` (every
//! line also goes to the test output, as `start_server`'s would); call it
//! before [`super::start_server`], which then keeps it.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::Mutex;

static LOG: Mutex<String> = Mutex::new(String::new());

/// Captures the server's log from now on.
pub fn capture() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_ansi(false)
        .with_writer(|| Capture)
        .try_init();
}

/// Forgets what was captured so far. Client ports are reused from one
/// test to the next (the servers' ports differ), so a test clears the log
/// before it starts, with no other test's server running.
pub fn clear() {
    LOG.lock().unwrap_or_else(|e| e.into_inner()).clear();
}

/// The captured lines that name `peer`: `peer=ADDR` as the server logs it.
pub fn lines_for(peer: SocketAddr) -> Vec<String> {
    let field = format!("peer={peer}");
    let log = LOG.lock().unwrap_or_else(|e| e.into_inner());
    log.lines()
        .filter(|line| line.split_whitespace().any(|word| word == field.as_str()))
        .map(str::to_owned)
        .collect()
}

/// Lines captured so far (every line, whoever it names).
pub fn line_count() -> usize {
    LOG.lock()
        .unwrap_or_else(|e| e.into_inner())
        .lines()
        .count()
}

struct Capture;

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(bytes);
        // Like `with_test_writer`: shown only for a failing test.
        print!("{text}");
        LOG.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_str(&text);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
