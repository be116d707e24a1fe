//! The programs publishes run (`[app.NAME] exec_publish`): the router
//! says when a publish here starts and ends; here a start is handed to
//! the supervisor thread ([`crate::exec`]), which never makes the shard
//! wait, and its [`crate::exec::Running`] is kept until the end drops it,
//! which stops the program.

use tracing::warn;

use super::Shard;
use crate::media::StreamKey;
use crate::session::Quoted;

impl Shard {
    /// A publish of `key` (published as `published_name`) began here: its
    /// app's program starts.
    pub(super) fn start_exec(&self, key: StreamKey, published_name: &str) {
        let config = self.config();
        let Some(command) = config.exec_for(key.app()) else {
            return;
        };
        match self.exec.run(command, &key, published_name) {
            Ok(running) => {
                self.execs.borrow_mut().insert(key, running);
            }
            // A publisher can cause this (a NUL in its name, one publish
            // too many): within the shard's log budget.
            Err(why) => {
                if self.admit_shard_line() {
                    let stream = Quoted(key.as_str());
                    let program = command.program();
                    warn!(shard = %self.id, %stream, program, %why, "exec refused");
                }
            }
        }
    }

    /// That publish ended: its program stops.
    pub(super) fn stop_exec(&self, key: &StreamKey) {
        self.execs.borrow_mut().remove(key);
    }
}
