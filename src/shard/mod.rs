//! Shards: one tokio-uring reactor per core, pinned, each with its own
//! SO_REUSEPORT listeners, owning its connections (a slab), its streams and
//! its counters. Nothing on the hot path takes a lock or touches another
//! shard's memory except through [`mesh`] messages.
//!
//! - [`connection`]: one task reading a connection into its session and
//!   one writing its outbound queue with `writev`.
//! - [`streams`]: publish, play and fan-out on this shard, and the
//!   cross-shard protocol (subscribe, snapshot, frames).
//! - [`directory`]: which shard owns each stream's publisher (a mutex, used
//!   on publish, play and unpublish only).
//! - [`messages`]: what travels to a shard (between shards, and the
//!   control thread's queries and their reports), below every handler.
//! - [`mesh`]: the shards' inboxes.
//! - [`query`]: the admin API's questions and kicks, answered from the
//!   shard's own state.
//! - [`stats`]: counters each shard writes alone and anyone reads.
//! - [`logs`]: the budget of log lines peers can make the shard write.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod access;
pub mod connection;
pub mod directory;
pub mod logs;
pub mod mesh;
pub mod messages;
pub mod query;
mod relays;
pub mod stats;
pub mod streams;

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::io;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::{Duration, Instant};

use slab::Slab;
use tokio::sync::Notify;
use tracing::{info, warn};

use self::connection::Conn;
use self::directory::Directory;
use self::logs::LogBucket;
use self::mesh::{InboxReceiver, Mesh};
pub use self::messages::ShardId;
use self::messages::ShardMessage;
use self::stats::ShardStats;
use self::streams::LocalStream;
use crate::access::hooks::Hooks;
use crate::access::peers::PeerCounts;
use crate::config::Config;
use crate::media::StreamKey;

/// Submission queue entries per shard's ring. Each connection keeps at most
/// one read and one write in flight; the kernel buffers completions past
/// the ring (IORING_FEAT_NODROP), so this bounds only one batch of
/// submissions.
const RING_ENTRIES: u32 = 4096;

/// How often a shard writes the summary of log lines it suppressed, once
/// its budget has room: a flood's count appears within about this.
const LOG_SUMMARY_TICK: Duration = Duration::from_secs(1);

/// Everything a shard thread starts with.
pub struct ShardSetup {
    pub id: ShardId,
    pub cpu: Option<usize>,
    pub config: Arc<Config>,
    pub listeners: Vec<std::net::TcpListener>,
    pub directory: Arc<Directory>,
    pub mesh: Mesh,
    pub inbox: InboxReceiver,
    pub stats: Arc<ShardStats>,
    pub peers: Arc<PeerCounts>,
    pub hooks: Hooks,
}

/// One shard's state, shared by its tasks on its one thread.
pub struct Shard {
    pub id: ShardId,
    /// This shard itself, for tasks it starts (relays, timers).
    me: Weak<Shard>,
    /// The settings in force: this shard's own copy, replaced whole on a
    /// reload (so reading it costs no shared cache line).
    config: RefCell<Rc<Config>>,
    pub directory: Arc<Directory>,
    /// Connections per IP address, server-wide.
    pub peers: Arc<PeerCounts>,
    pub hooks: Hooks,
    pub mesh: Mesh,
    pub stats: Arc<ShardStats>,
    pub connections: RefCell<Slab<Rc<Conn>>>,
    pub streams: RefCell<HashMap<StreamKey, LocalStream>>,
    /// Streams whose players hold frames for a later write, by the
    /// deadline (shard clock, ms) their pacing set, earliest first.
    holds: RefCell<VecDeque<(u64, StreamKey)>>,
    /// A hold became the earliest.
    hold_added: Notify,
    /// The serial of the next connection accepted.
    next_serial: Cell<u64>,
    started: Instant,
    shutting_down: Cell<bool>,
    /// The last connection was refused at the cap: a flood makes one log
    /// line, not one per connection.
    refusing: Cell<bool>,
    /// Log lines its peers may still make it write, shard-wide.
    log_budget: RefCell<LogBucket>,
    /// Plays refused at a pull cap, and pulls no origin could serve: a
    /// flood of either makes a line a second, not one per play.
    pulls_refused: relays::Burst,
    pulls_unavailable: relays::Burst,
}

/// Runs a shard on the calling thread until it is told to shut down.
pub fn run(setup: ShardSetup) -> io::Result<()> {
    if let Some(cpu) = setup.cpu {
        if !core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
            warn!(shard = %setup.id, cpu, "could not pin shard to its cpu; running unpinned");
        }
    }
    let runtime = tokio_uring::Runtime::new(tokio_uring::builder().entries(RING_ENTRIES))?;
    runtime.block_on(serve(setup))
}

async fn serve(setup: ShardSetup) -> io::Result<()> {
    let shard = Rc::new_cyclic(|me| Shard {
        id: setup.id,
        me: me.clone(),
        config: RefCell::new(Rc::new(Config::clone(&setup.config))),
        directory: setup.directory,
        peers: setup.peers,
        hooks: setup.hooks,
        mesh: setup.mesh,
        stats: setup.stats,
        connections: RefCell::new(Slab::new()),
        streams: RefCell::new(HashMap::new()),
        holds: RefCell::new(VecDeque::new()),
        hold_added: Notify::new(),
        next_serial: Cell::new(1),
        started: Instant::now(),
        shutting_down: Cell::new(false),
        refusing: Cell::new(false),
        log_budget: RefCell::new(LogBucket::per_shard(0)),
        pulls_refused: relays::Burst::default(),
        pulls_unavailable: relays::Burst::default(),
    });
    let accepting: Vec<_> = setup
        .listeners
        .into_iter()
        .map(|listener| {
            let listener = tokio_uring::net::TcpListener::from_std(listener);
            tokio_uring::spawn(accept_loop(shard.clone(), listener))
        })
        .collect();
    let held = tokio_uring::spawn(write_held(shard.clone()));
    let rates = tokio_uring::spawn(query::sample_rates(shard.clone()));
    let memory = tokio_uring::spawn(return_freed_memory());
    let summaries = tokio_uring::spawn(log_summaries(shard.clone()));
    let mut inbox = setup.inbox;
    while let Some(message) = inbox.recv().await {
        if let ShardMessage::Shutdown = message {
            break;
        }
        shard.handle_message(message);
    }
    for task in accepting {
        task.abort();
    }
    held.abort();
    rates.abort();
    memory.abort();
    summaries.abort();
    shard.shutdown().await;
    Ok(())
}

/// Wakes the writers of streams whose held frames reached their deadline
/// (audio no video frame came to carry, a write window's end).
async fn write_held(shard: Rc<Shard>) {
    loop {
        let next = shard.holds.borrow().front().map(|(deadline, _)| *deadline);
        let Some(deadline) = next else {
            shard.hold_added.notified().await;
            continue;
        };
        let at = shard.started + Duration::from_millis(deadline);
        tokio::select! {
            () = tokio::time::sleep_until(at.into()) => {}
            () = shard.hold_added.notified() => continue,
        }
        let now = shard.now_ms();
        loop {
            let due = {
                let mut holds = shard.holds.borrow_mut();
                match holds.front() {
                    Some((deadline, _)) if *deadline <= now => holds.pop_front(),
                    _ => None,
                }
            };
            let Some((deadline, key)) = due else {
                break;
            };
            shard.write_held_frames(deadline, &key);
        }
    }
}

/// How often a shard hands the memory it freed back to the OS. Why:
/// mimalloc purges freed pages only when its thread calls into it after
/// `purge_delay` (1 s), so a shard that goes quiet after an attack or a
/// burst of connections would keep its peak resident set for ever.
const MEMORY_COLLECT_INTERVAL: Duration = Duration::from_secs(1);

/// Every [`MEMORY_COLLECT_INTERVAL`], asks the allocator to purge what
/// this shard's thread freed: RSS follows what the shard holds within
/// about two seconds.
async fn return_freed_memory() {
    let mut tick = tokio::time::interval(MEMORY_COLLECT_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // SAFETY: mi_collect only walks and trims the calling thread's
        // heap and the shared arenas; it takes no pointer of ours. Where
        // mimalloc is not the global allocator (the tests) its heap for
        // this thread is empty and the call does nothing.
        unsafe { libmimalloc_sys::mi_collect(false) };
    }
}

/// Every [`LOG_SUMMARY_TICK`], writes the count of suppressed lines, if
/// any and the budget allows.
async fn log_summaries(shard: Rc<Shard>) {
    let mut tick = tokio::time::interval(LOG_SUMMARY_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        shard.summarise_suppressed_lines();
    }
}

async fn accept_loop(shard: Rc<Shard>, listener: tokio_uring::net::TcpListener) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // EMFILE and the like: back off instead of spinning.
                warn!(shard = %shard.id, %error, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if shard.connections.borrow().len() >= shard.connections_max() || shard.shutting_down.get()
        {
            shard.stats.connections_refused.add(1);
            if !shard.refusing.replace(true) && shard.admit_shard_line() {
                info!(shard = %shard.id, %peer, "connection refused: shard at its connection limit (further refusals not logged until one is accepted)");
            }
            continue;
        }
        shard.refusing.set(false);
        let cap = shard.config().connections_per_ip_max;
        let slot = match shard.peers.admit(peer.ip(), cap) {
            Ok(slot) => slot,
            Err(at_cap) => {
                shard.stats.connections_refused.add(1);
                if at_cap.first && shard.admit_shard_line() {
                    info!(shard = %shard.id, %peer, cap, "connection refused: address at its connection cap (further refusals not logged)");
                }
                continue;
            }
        };
        shard.stats.connections_accepted.add(1);
        connection::spawn(&shard, stream, peer, slot);
    }
}

impl Shard {
    /// The settings in force now. Hold the handle only as long as needed:
    /// a reload replaces it for everything that asks afterwards.
    pub fn config(&self) -> Rc<Config> {
        self.config.borrow().clone()
    }

    /// Takes a reloaded configuration: what changed applies to what starts
    /// from now on (connections, publishes, plays, pulls).
    fn reload(&self, config: &Config) {
        *self.config.borrow_mut() = Rc::new(config.clone());
        info!(shard = %self.id, "configuration reloaded");
    }

    /// Connections this shard accepts: its share of the server's cap.
    fn connections_max(&self) -> usize {
        let shards = self.mesh.shards().max(1);
        self.config().connections_max.div_ceil(shards)
    }

    /// A handle on this shard for a task it starts; `None` only while the
    /// shard is being torn down.
    fn handle(&self) -> Option<Rc<Shard>> {
        self.me.upgrade()
    }

    /// Every relay this shard runs: pulls and pushes, with their state and
    /// counters.
    pub fn relays(&self) -> Vec<Rc<crate::relay::Status>> {
        self.streams
            .borrow()
            .values()
            .flat_map(|s| s.relay_statuses())
            .collect()
    }

    /// `key`'s players hold frames that must be written by `deadline_ms`
    /// unless a write comes first.
    fn hold_until(&self, deadline_ms: u64, key: &StreamKey) {
        let mut holds = self.holds.borrow_mut();
        // Deadlines come in order but for a reload changing the window.
        let at = holds.partition_point(|(d, _)| *d <= deadline_ms);
        holds.insert(at, (deadline_ms, key.clone()));
        if at == 0 {
            self.hold_added.notify_one();
        }
    }

    /// A hold's deadline came: the players its pacing names write what
    /// they hold, and the next deadline, if any, is kept.
    fn write_held_frames(&self, deadline_ms: u64, key: &StreamKey) {
        let next = (self.streams.borrow_mut().get_mut(key))
            .and_then(|stream| stream.write_held(deadline_ms));
        if let Some(next) = next {
            self.hold_until(next, key);
        }
    }

    /// A serial for a new connection: never reused while the shard runs.
    fn next_serial(&self) -> u64 {
        let serial = self.next_serial.get();
        self.next_serial.set(serial + 1);
        serial
    }

    /// Milliseconds since the shard started: the clock the pure layers get.
    pub fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Graceful shutdown: tell players, flush, close, within the
    /// configured time.
    async fn shutdown(&self) {
        self.shutting_down.set(true);
        let connections: Vec<Rc<Conn>> = self
            .connections
            .borrow()
            .iter()
            .map(|(_, c)| c.clone())
            .collect();
        for conn in &connections {
            conn.stop_playing_all("Server shutting down.");
            conn.close_after_flush(connection::CloseReason::Shutdown);
        }
        let deadline = Instant::now() + self.config().timeouts.shutdown;
        while !self.connections.borrow().is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for (_, conn) in self.connections.borrow().iter() {
            conn.abort(connection::CloseReason::Shutdown);
        }
        // The summary tick has stopped: what it had not written yet.
        let suppressed = self.log_budget.borrow_mut().take_suppressed();
        info!(shard = %self.id, log_lines_suppressed = suppressed, "shard stopped");
    }
}
