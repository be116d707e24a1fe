//! Exec on publish: the program an app's `exec_publish` names runs while
//! a stream of the app is published here (nginx-rtmp's `exec_push`,
//! MediaMTX's `runOnReady`): an ffmpeg making a transcoding ladder or
//! thumbnails, a recorder.
//!
//! Owns the children. One supervisor thread with a small tokio runtime
//! (as the hook thread has) starts them, logs their stderr, starts them
//! again with backoff while their publish lasts, and stops them; a shard
//! hands it a start over a bounded channel and never waits. Why a thread
//! and not the shards' reactors: `fork` copies the server's page tables
//! (milliseconds at a large RSS), waiting for a child takes SIGCHLD,
//! and tokio-uring offers neither; none of it may stall a shard.
//!
//! A start gives the shard a [`Running`], kept while the publish lasts;
//! dropping it (unpublish, takeover, the connection's or the shard's end)
//! stops the program. So a stop is never a message that could be lost
//! or overtaken: a takeover from another shard stops exactly the old
//! publisher's program, whenever each shard gets to it.
//!
//! Which publishes: those of a publisher, on any shard; an edge's pulls
//! run nothing, as with nginx-rtmp's `exec_push` (MediaMTX's `runOnReady`
//! also fires for pulled sources): the program runs where the stream is
//! published, once.
//!
//! A child:
//! - is its argument vector, `argv[0]` looked up in `PATH`, never a
//!   shell; placeholders fill parts of arguments
//!   ([`crate::config::ExecCommand`]);
//! - reads nothing (stdin is `/dev/null`) and its stdout is discarded; its
//!   stderr is logged line by line (a `\r`, ffmpeg's progress line, ends
//!   one too) at info with its stream and pid:
//!   [`limits::EXEC_LOG_LINES_BURST`] lines at once, then
//!   [`limits::EXEC_LOG_LINES_PER_S`] a second, the rest counted and the
//!   count logged once a second;
//! - leads a process group of its own, so a terminal's Ctrl-C reaches the
//!   server alone (which stops its children in order), and a stop reaches
//!   whatever the child started;
//! - is told to stop with SIGTERM to that group, and SIGKILL after
//!   [`limits::EXEC_STOP_GRACE_MS`], then reaped: no zombie;
//! - gets SIGKILL if the server dies without stopping it (a crash,
//!   SIGKILL): `PR_SET_PDEATHSIG`, set between fork and exec. The kernel
//!   sends it when the thread that forked the child ends, which is the
//!   supervisor's, alive as long as the server;
//! - ending while its publish lasts (or failing to start) is started
//!   again after [`limits::EXEC_BACKOFF_MS_MIN`], doubling up to
//!   [`limits::EXEC_BACKOFF_MS_MAX`], from the least again after a run of
//!   [`limits::EXEC_RUN_HEALTHY_MS`].
//!
//! At most [`limits::EXEC_CHILDREN_MAX`] children at once (a child keeps
//! its place through its restarts); a start past it is refused, logged
//! and counted. At shutdown the shards end, and with them every
//! [`Running`]; the thread ends once every child was stopped and reaped.

mod child;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;
use tracing::{error, warn};

use crate::config::{ExecCommand, ExecValues};
use crate::limits;
use crate::logging::LogBucket;
use crate::media::StreamKey;
use crate::session::Quoted;

/// The handle shards start programs through; cloned into each shard.
#[derive(Clone, Debug)]
pub struct Exec {
    starts: mpsc::Sender<Start>,
    /// `{port}`: the first RTMP listen port, as bound.
    port: u16,
    stats: Arc<ExecStats>,
}

/// A program running for one publish: dropping it stops the program.
#[derive(Debug)]
pub struct Running {
    _stop: oneshot::Sender<()>,
}

/// What the supervisor counts; the control thread reads it for
/// `/metrics`.
#[derive(Debug, Default)]
pub struct ExecStats {
    running: AtomicU64,
    restarts: AtomicU64,
    refusals: AtomicU64,
}

/// [`ExecStats`] read at once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExecCounts {
    /// Programs running now.
    pub running: u64,
    /// Starts again of a program that ended, or could not start, while
    /// its publish lasted.
    pub restarts: u64,
    /// Starts refused: at [`limits::EXEC_CHILDREN_MAX`], or for a stream
    /// name no argument can hold.
    pub refusals: u64,
}

impl ExecStats {
    pub fn counts(&self) -> ExecCounts {
        ExecCounts {
            running: self.running.load(Ordering::Relaxed),
            restarts: self.restarts.load(Ordering::Relaxed),
            refusals: self.refusals.load(Ordering::Relaxed),
        }
    }

    fn started(&self) {
        self.running.fetch_add(1, Ordering::Relaxed);
    }

    fn ended(&self) {
        self.running.fetch_sub(1, Ordering::Relaxed);
    }

    fn restarted(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
    }

    fn refused(&self) {
        self.refusals.fetch_add(1, Ordering::Relaxed);
    }
}

/// One start, for the supervisor.
#[derive(Debug)]
struct Start {
    stream: StreamKey,
    /// The program first, placeholders filled.
    argv: Vec<String>,
    /// Closed once the start's [`Running`] is dropped.
    stop: oneshot::Receiver<()>,
}

impl Exec {
    /// Starts the supervisor thread; `port` is what `{port}` stands for.
    /// The thread ends once every handle and every [`Running`] is gone
    /// and each child was stopped and reaped.
    pub fn start(port: u16) -> io::Result<(Exec, JoinHandle<()>)> {
        let (starts, queue) = mpsc::channel(limits::EXEC_CHILDREN_MAX);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let stats = Arc::new(ExecStats::default());
        let counted = stats.clone();
        let thread = std::thread::Builder::new()
            .name("exec".into())
            .spawn(move || runtime.block_on(serve(queue, counted)))?;
        Ok((
            Exec {
                starts,
                port,
                stats,
            },
            thread,
        ))
    }

    /// What the supervisor counts.
    pub fn stats(&self) -> &Arc<ExecStats> {
        &self.stats
    }

    /// Runs `command` for the publish of `stream`, published as
    /// `published_name` (its query is `{args}`), until the [`Running`] is
    /// dropped. Never waits: a start that cannot be queued (as many wait
    /// as may run) is refused, with why.
    pub fn run(
        &self,
        command: &ExecCommand,
        stream: &StreamKey,
        published_name: &str,
    ) -> Result<Running, String> {
        let values = ExecValues {
            app: stream.app(),
            name: stream.name(),
            args: published_name
                .split_once('?')
                .map_or("", |(_, query)| query),
            port: self.port,
        };
        let argv = command.argv(&values);
        let refused = |why: String| {
            self.stats.refused();
            why
        };
        if argv.iter().any(|arg| arg.contains('\0')) {
            let why = "the stream name holds a NUL byte, which no program argument can";
            return Err(refused(why.into()));
        }
        let (stop_tx, stop) = oneshot::channel();
        let start = Start {
            stream: stream.clone(),
            argv,
            stop,
        };
        self.starts.try_send(start).map_err(|e| {
            refused(match e {
                mpsc::error::TrySendError::Full(_) => format!(
                    "{} starts are already waiting for the exec thread",
                    limits::EXEC_CHILDREN_MAX
                ),
                mpsc::error::TrySendError::Closed(_) => "the exec thread stopped".into(),
            })
        })?;
        Ok(Running { _stop: stop_tx })
    }
}

/// The supervisor: a task per start, at most [`limits::EXEC_CHILDREN_MAX`]
/// at once; once every handle is gone, waits for each to finish.
async fn serve(mut starts: mpsc::Receiver<Start>, stats: Arc<ExecStats>) {
    let places = Arc::new(Semaphore::new(limits::EXEC_CHILDREN_MAX));
    let mut children = JoinSet::new();
    let clock = Instant::now();
    // A flood of publishes at the cap logs a line a second, with a count.
    let mut refusals = LogBucket::new(1, 1000, 0);
    loop {
        tokio::select! {
            start = starts.recv() => {
                let Some(start) = start else { break };
                match places.clone().try_acquire_owned() {
                    Ok(place) => {
                        children.spawn(child::supervise(start, place, stats.clone()));
                    }
                    Err(_) => {
                        stats.refused();
                        let now_ms = u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
                        if refusals.take(now_ms) {
                            let more = refusals.take_suppressed();
                            warn!(stream = %Quoted(start.stream.as_str()), cap = limits::EXEC_CHILDREN_MAX, more, "exec refused: as many programs run as may");
                        }
                    }
                }
            }
            Some(ended) = children.join_next() => finished(ended),
        }
    }
    // Every handle is gone, so the shards are, and with them every
    // `Running`: each child is being stopped.
    while let Some(ended) = children.join_next().await {
        finished(ended);
    }
}

fn finished(ended: Result<(), tokio::task::JoinError>) {
    if let Err(err) = ended {
        error!(error = %err, "an exec child's supervision failed");
    }
}
