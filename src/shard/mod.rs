//! Shards: one tokio-uring reactor per core, pinned, each with its own
//! SO_REUSEPORT listeners, owning its connections (a slab), its streams and
//! its counters. Nothing on the hot path takes a lock or touches another
//! shard's memory except through [`mesh`] messages.
//!
//! - [`connection`]: one task reading a connection into its session and
//!   one writing its outbound queue with `writev`.
//! - [`driver`]: session events and inbox messages into the shard's
//!   [`Router`] (through the door), and its actions carried out.
//! - [`messages`]: what travels to a shard (between shards, and the
//!   control thread's queries and their reports), below every handler.
//! - [`mesh`]: the shards' inboxes.
//! - [`query`]: the admin API's questions and kicks, answered from the
//!   shard's own state.
//! - `relays`: the pull and push tasks the router starts and stops.
//! - `exec`: the programs the router starts and stops with publishes,
//!   handed to the supervisor thread ([`crate::exec`]).
//! - `access`: the door (static rules and hooks) before a connect, a
//!   publish or a play; the hooks told at their ends and asked again
//!   (`on_update`) while they last.
//! - [`stats`]: counters each shard writes alone and anyone reads.
//! - [`logs`]: the budget of log lines peers can make the shard write.
//! - `web`: HTTP-FLV and WebSocket-FLV players: their request, then the
//!   router as for RTMP players.
//! - `hls`: HLS: packaging the streams whose source is here, serving any
//!   stream's playlists and media from memory.
//! - `recordings`: recording the streams whose source is here, through the
//!   recorder thread.
//! - `drain`: a maintenance drain: listeners closed, publishers asked to
//!   move, players let go as their stream ends here.

mod access;
pub mod connection;
mod drain;
pub mod driver;
mod exec;
mod hls;
pub mod logs;
pub mod mesh;
pub mod messages;
pub mod query;
mod recordings;
mod relays;
pub mod stats;
mod web;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::{Duration, Instant};

use slab::Slab;
use tokio::sync::Notify;
use tracing::{info, warn};

use self::connection::{Conn, Listener};
use self::mesh::{InboxReceiver, Mesh};
pub use self::messages::ShardId;
use self::messages::ShardMessage;
use self::relays::Pull;
use self::stats::ShardStats;
use crate::access::hooks::Hooks;
use crate::access::peers::PeerCounts;
use crate::access::updates::Updates;
use crate::config::Config;
use crate::exec::{Exec, Running};
use crate::hls::HlsStreams;
use crate::logging::LogBucket;
use crate::media::StreamKey;
use crate::record::Recorder;
use crate::relay::push::Feed;
use crate::router::{Action, Directory, Event, Role, Router};

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
    pub listeners: ShardListeners,
    pub directory: Arc<Directory>,
    pub mesh: Mesh,
    pub inbox: InboxReceiver,
    pub stats: Arc<ShardStats>,
    pub peers: Arc<PeerCounts>,
    pub hooks: Hooks,
    pub exec: Exec,
    pub hls: Arc<HlsStreams>,
    pub recorder: Recorder,
}

/// One shard's listeners, by what they speak.
#[derive(Debug, Default)]
pub struct ShardListeners {
    pub rtmp: Vec<std::net::TcpListener>,
    /// HTTP-FLV and WebSocket-FLV players.
    pub http: Vec<std::net::TcpListener>,
    /// RTMP over TLS.
    pub rtmps: Vec<std::net::TcpListener>,
    /// HTTP-FLV and WebSocket-FLV players over TLS.
    pub https: Vec<std::net::TcpListener>,
}

/// One shard's state, shared by its tasks on its one thread.
pub struct Shard {
    pub id: ShardId,
    /// This shard itself, for tasks it starts (relays, timers).
    me: Weak<Shard>,
    /// The settings in force: this shard's own copy, replaced whole on a
    /// reload (so reading it costs no shared cache line).
    config: RefCell<Rc<Config>>,
    /// Connections per IP address, server-wide.
    pub peers: Arc<PeerCounts>,
    pub hooks: Hooks,
    pub mesh: Mesh,
    pub stats: Arc<ShardStats>,
    pub connections: RefCell<Slab<Rc<Conn>>>,
    /// Who gets which frame: this shard's streams, as a state machine.
    pub router: RefCell<Router>,
    /// The router's last actions' buffer, kept for the next event's.
    spare_actions: RefCell<Vec<Action>>,
    /// The deadline the shard's timer sleeps until (shard clock, ms).
    timer_at: Cell<Option<u64>>,
    /// The router or `updates` has an earlier deadline than the timer
    /// sleeps until.
    deadline_moved: Notify,
    /// When each publish and play here is due its `on_update` call.
    updates: RefCell<Updates<access::Session>>,
    /// The pulls and pushes the router started, by stream.
    pulls: RefCell<HashMap<StreamKey, Pull>>,
    pushes: RefCell<HashMap<StreamKey, Vec<Rc<Feed>>>>,
    /// The exec supervisor, and the programs running for publishes here,
    /// by stream (each stops when its `Running` is dropped).
    exec: Exec,
    execs: RefCell<HashMap<StreamKey, Running>>,
    /// HLS: packagers of the streams whose source is here, what requests
    /// here wait on, sessions.
    hls: hls::ShardHls,
    /// Recordings of the streams whose source is here.
    recordings: recordings::Recordings,
    /// The serial of the next connection accepted.
    next_serial: Cell<u64>,
    started: Instant,
    /// Draining or shutting down: no connection is accepted any more.
    shutting_down: Cell<bool>,
    /// The listeners' sockets (duplicates of the accept loops'
    /// descriptors), for a drain to close: shutting a listening socket
    /// down takes it out of its SO_REUSEPORT group at once, where dropping
    /// an accept loop would keep it until its pending accept completes.
    listening: RefCell<Vec<std::net::TcpListener>>,
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
    let config = Rc::new(Config::clone(&setup.config));
    let router = Router::new(setup.id, setup.directory, config.clone());
    let shard = Rc::new_cyclic(|me| Shard {
        id: setup.id,
        me: me.clone(),
        config: RefCell::new(config),
        peers: setup.peers,
        hooks: setup.hooks,
        mesh: setup.mesh,
        stats: setup.stats,
        connections: RefCell::new(Slab::new()),
        router: RefCell::new(router),
        spare_actions: RefCell::new(Vec::new()),
        timer_at: Cell::new(None),
        deadline_moved: Notify::new(),
        updates: RefCell::new(Updates::default()),
        pulls: RefCell::new(HashMap::new()),
        pushes: RefCell::new(HashMap::new()),
        exec: setup.exec,
        execs: RefCell::new(HashMap::new()),
        hls: hls::ShardHls::new(setup.hls),
        recordings: recordings::Recordings::new(setup.recorder),
        next_serial: Cell::new(1),
        started: Instant::now(),
        shutting_down: Cell::new(false),
        listening: RefCell::new(Vec::new()),
        refusing: Cell::new(false),
        log_budget: RefCell::new(LogBucket::per_shard(0)),
        pulls_refused: relays::Burst::default(),
        pulls_unavailable: relays::Burst::default(),
    });
    let ShardListeners {
        rtmp,
        http,
        rtmps,
        https,
    } = setup.listeners;
    let kinds = [
        (rtmp, Listener::Rtmp),
        (http, Listener::Http),
        (rtmps, Listener::Rtmps),
        (https, Listener::Https),
    ];
    let accepting: Vec<_> = (kinds.into_iter())
        .flat_map(|(listeners, kind)| listeners.into_iter().map(move |l| (l, kind)))
        .map(|(listener, kind)| {
            shard.keep_for_drain(&listener);
            let listener = tokio_uring::net::TcpListener::from_std(listener);
            tokio_uring::spawn(accept_loop(shard.clone(), listener, kind))
        })
        .collect();
    let timer = tokio_uring::spawn(timer(shard.clone()));
    let rates = tokio_uring::spawn(query::sample_rates(shard.clone()));
    let memory = tokio_uring::spawn(return_freed_memory());
    let summaries = tokio_uring::spawn(log_summaries(shard.clone()));
    let hls = tokio_uring::spawn(maintain_hls(shard.clone()));
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
    timer.abort();
    rates.abort();
    memory.abort();
    summaries.abort();
    hls.abort();
    shard.shutdown().await;
    Ok(())
}

/// Ticks the router at its deadlines (held frames to write, a publish to
/// try again, an idle pull to stop) and asks `on_update` about the
/// publishes and plays due: one timer for both.
async fn timer(shard: Rc<Shard>) {
    loop {
        let next = shard.next_deadline();
        shard.timer_at.set(next);
        let Some(deadline) = next else {
            shard.deadline_moved.notified().await;
            continue;
        };
        let at = shard.started + Duration::from_millis(deadline);
        tokio::select! {
            () = tokio::time::sleep_until(at.into()) => shard.tick(),
            () = shard.deadline_moved.notified() => {}
        }
    }
}

/// Once every [`hls::MAINTAIN_MS`], idle HLS streams and lapsed sessions
/// go.
async fn maintain_hls(shard: Rc<Shard>) {
    let mut tick = tokio::time::interval(Duration::from_millis(hls::MAINTAIN_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        shard.maintain_hls();
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

async fn accept_loop(shard: Rc<Shard>, listener: tokio_uring::net::TcpListener, kind: Listener) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            // A drain closed the listener.
            Err(_) if shard.shutting_down.get() => return,
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
        connection::spawn(&shard, stream, peer, slot, kind);
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
        let config = Rc::new(config.clone());
        *self.config.borrow_mut() = config.clone();
        self.route(Event::Reload(config));
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

    /// The earliest of the router's deadlines and the next `on_update`.
    fn next_deadline(&self) -> Option<u64> {
        let router = self.router.borrow().next_deadline();
        let update = self.updates.borrow().next_deadline();
        router.into_iter().chain(update).min()
    }

    /// At the timer's deadline: the router's tick if it is due, the
    /// updates that are.
    fn tick(&self) {
        let now = self.now_ms();
        if self
            .router
            .borrow()
            .next_deadline()
            .is_some_and(|at| at <= now)
        {
            self.route(Event::Tick);
        }
        self.ask_updates(now);
    }

    /// After an event: the shard's timer sleeps until its earliest
    /// deadline.
    fn deadline_may_have_moved(&self) {
        let next = self.next_deadline();
        if next.is_some_and(|next| self.timer_at.get().is_none_or(|at| next < at)) {
            self.timer_at.set(next);
            self.deadline_moved.notify_one();
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
            let playing: Vec<_> = (self.router.borrow().roles(conn.id()).iter())
                .filter(|(_, role)| matches!(role, Role::Player(_)))
                .map(|(stream_id, _)| *stream_id)
                .collect();
            conn.stop_playing(&playing, "Server shutting down.");
            conn.send_websocket_close(
                ringcast_web::websocket::close::GOING_AWAY,
                "server shutting down",
            );
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
