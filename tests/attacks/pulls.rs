//! Pulls under attack: players asking an edge for names its origin will
//! never serve, one connection playing name after name, and origins that
//! drop SYNs or go silent mid-stream. The edge must hold a bounded number
//! of descriptors, answer players at once when it will not pull, give up
//! on dead origins within its timeouts, and serve the reference stream
//! without a gap throughout.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use ringcast::config::{AppRelay, Config};
use ringcast::protocol::MessageStreamId;
use ringcast::protocol::amf::Value;
use ringcast::protocol::handshake::RANDOM_SIZE;
use ringcast::protocol::url::RtmpUrl;
use ringcast::relay::origins;
use ringcast::session::{ClientEvent, ServerConfig, ServerEvent, ServerSession, status as codes};

use super::common::feeder::Feeder;
use super::common::media::{self, frame_number};
use super::common::{Client, TIMEOUT, raw, reference, start_server};
use super::cost::{
    self, CPU_PER_MESSAGE_MAX, DESCRIPTORS_MAX, LOG_LINES_PER_S_MAX, Meter, RSS_GROWTH_MAX, Spent,
};
use super::{SERIAL, Scene};

/// The app whose streams the edge pulls (the reference stream is
/// published on its own app and never pulled).
const EDGE_APP: &str = "edge";

/// Short relay timings, so each scene takes seconds.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);
const IDLE_STOP: Duration = Duration::from_millis(1000);
const PING: Duration = Duration::from_millis(250);

/// After the attackers leave, descriptors are back within this many of
/// where they started (a connection closing on either side, the sampler's
/// own directory handle) within [`SETTLE_WITHIN`].
const DESCRIPTORS_SLACK: usize = 4;
const SETTLE_WITHIN: Duration = Duration::from_secs(2);

// ---------------------------------------------------------------------------
// The descriptor a connect holds
// ---------------------------------------------------------------------------

#[test]
fn a_connect_given_up_on_closes_its_socket_at_once_where_tokio_urings_keeps_it() {
    const TRIES: usize = 64;
    const GIVE_UP: Duration = Duration::from_millis(100);
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let hole = BlackHole::start();
    let addr = hole.addr;
    let outside = descriptors();
    let (ours, theirs) = tokio_uring::start(async move {
        let baseline = descriptors();
        let tries: Vec<_> = (0..TRIES)
            .map(|_| {
                tokio_uring::spawn(tokio::time::timeout(
                    GIVE_UP,
                    ringcast_client::connect(addr),
                ))
            })
            .collect();
        for attempt in tries {
            assert!(attempt.await.expect("joined").is_err(), "gave up");
        }
        let ours = descriptors().saturating_sub(baseline);
        let tries: Vec<_> = (0..TRIES)
            .map(|_| {
                tokio_uring::spawn(tokio::time::timeout(
                    GIVE_UP,
                    tokio_uring::net::TcpStream::connect(addr),
                ))
            })
            .collect();
        for attempt in tries {
            assert!(attempt.await.expect("joined").is_err(), "gave up");
        }
        (ours, descriptors().saturating_sub(baseline))
    });
    eprintln!("{TRIES} connects given up on: ours left {ours} descriptors, tokio-uring's {theirs}");
    assert!(
        ours <= 1,
        "{ours} descriptors left by {TRIES} dropped connects"
    );
    // The io_uring connect op owns a clone of the socket until the kernel
    // completes it, which for a dropped SYN takes minutes: why the relay
    // does not use it.
    assert!(
        theirs >= TRIES,
        "tokio-uring's dropped connects left {theirs} descriptors; if none, its connect \
         can be used again"
    );
    // The runtime's shutdown cancels the ops it still holds.
    assert!(descriptors() <= outside + 1, "runtime gone, sockets gone");
}

// ---------------------------------------------------------------------------
// Players against an origin that drops SYNs
// ---------------------------------------------------------------------------

#[test]
fn players_of_many_names_on_an_origin_that_drops_syns_hold_few_descriptors_and_hear_not_found() {
    const PLAYERS: usize = 50;
    // 30 plays a player: fewer than the refusals in a row that close a
    // connection, so every play is answered.
    const NAMES: usize = 10;
    const ROUNDS: usize = 3;
    const PULLS_MAX: usize = 100;
    const _: () = assert!(NAMES * ROUNDS < ringcast::limits::REFUSALS_IN_A_ROW_MAX as usize);
    let hole = BlackHole::start();
    let scene = Scene::start(edge_of(&[hole.url()], |c| c.relay.pulls_max = PULLS_MAX));
    let baseline = descriptors();
    let meter = Meter::start();
    let mut players: Vec<(Client, Vec<MessageStreamId>)> = (0..PLAYERS)
        .map(|_| {
            let mut client = Client::connect(scene.addr, EDGE_APP);
            let ids = (0..NAMES).map(|_| client.create_stream()).collect();
            (client, ids)
        })
        .collect();
    // Both ends of each player's connection.
    let connected = baseline + 2 * PLAYERS;
    let peak = Peak::start();
    for round in 0..ROUNDS {
        for (p, (client, ids)) in players.iter_mut().enumerate() {
            for (n, id) in ids.iter().enumerate() {
                let name = format!("p{p}-r{round}-n{n}");
                client.session.play(*id, &name).expect("connected");
            }
            client.flush();
        }
        for (client, ids) in &mut players {
            await_not_found(client, ids);
        }
    }
    let peak = peak.stop();
    let plays = (PLAYERS * NAMES * ROUNDS) as u64;
    let spent = meter.spent();
    drop(players);
    let settled = settle_descriptors(baseline);
    eprintln!(
        "{PLAYERS} players x {NAMES} names x {ROUNDS} rounds: descriptors {baseline} -> peak \
         {peak} (pulls' share {}) -> {settled}; {spent:?}",
        peak.saturating_sub(connected)
    );
    assert!(
        peak.saturating_sub(connected) <= PULLS_MAX + DESCRIPTORS_SLACK,
        "pull sockets past relay.pulls_max: peak {peak}, {connected} with the players"
    );
    assert!(peak - baseline < DESCRIPTORS_MAX, "peak {peak}");
    assert!(settled <= baseline + DESCRIPTORS_SLACK, "left {settled}");
    let now = reference::totals(&scene.server);
    let refused = now.limit_refusals - scene.before.limit_refusals;
    // Eight per player at most pull at once, and a hundred in all.
    assert!(
        refused >= plays - (ROUNDS * PULLS_MAX) as u64 && refused < plays,
        "{refused} of {plays} plays refused"
    );
    assert_eq!(now.relay_pulls, 0, "every pull ended: {now:?}");
    assert_costs(&meter, &spent, plays);
    let report = scene.finish("fresh-after-syn-drops");
    super::assert_kept_pace(&report, "players on a SYN-dropping origin");
}

/// Reads until every one of `ids` was answered
/// `NetStream.Play.StreamNotFound`; everything else is dropped.
fn await_not_found(client: &mut Client, ids: &[MessageStreamId]) {
    let mut waiting: HashSet<MessageStreamId> = ids.iter().copied().collect();
    let deadline = Instant::now() + TIMEOUT;
    while !waiting.is_empty() {
        assert!(
            Instant::now() < deadline,
            "no StreamNotFound on {waiting:?}"
        );
        client.pump(Duration::from_millis(20));
        for event in client.events.drain(..) {
            if let ClientEvent::Status { stream_id, status } = event {
                if status.code == codes::PLAY_STREAM_NOT_FOUND {
                    waiting.remove(&stream_id);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// One connection, a new name per play
// ---------------------------------------------------------------------------

#[test]
fn one_connection_playing_a_new_name_per_play_holds_a_few_pulls_then_is_closed() {
    const PLAYS: usize = 3000;
    let per_connection = ringcast::limits::RELAY_PULLS_PER_CONNECTION_MAX_DEFAULT;
    let in_a_row = u64::from(ringcast::limits::REFUSALS_IN_A_ROW_MAX);
    let hole = BlackHole::start();
    let scene = Scene::start(edge_of(&[hole.url()], |_| {}));
    let baseline = descriptors();
    let meter = Meter::start();
    let mut attacker = Client::connect(scene.addr, EDGE_APP);
    let id = attacker.create_stream();
    let peak = Peak::start();
    // `play2` switches the stream to another name: one message per name,
    // the previous play ending with it. All at once, as a script would.
    for n in 0..PLAYS {
        let parameters = Value::object([("streamName", Value::string(format!("zap-{n}")))]);
        attacker
            .session
            .call(id, "play2", vec![parameters])
            .expect("connected");
    }
    let mut flood = Vec::new();
    while let Some(bytes) = attacker.session.poll_transmit() {
        flood.extend_from_slice(&bytes);
    }
    raw::send(&mut attacker.socket, &flood);
    raw::assert_closed(&mut attacker.socket, "a connection zapping through names");
    let began = Instant::now();
    let mut newcomer = Client::connect(scene.addr, reference::APP);
    newcomer.create_stream();
    let newcomer_waited = began.elapsed();
    let peak = peak.stop();
    let spent = meter.spent();
    drop(attacker);
    let settled = settle_descriptors(baseline);
    let now = reference::totals(&scene.server);
    let refused = now.limit_refusals - scene.before.limit_refusals;
    eprintln!(
        "{PLAYS} plays sent on one connection: descriptors {baseline} -> peak {peak} -> \
         {settled}; {refused} refused, then closed; newcomer waited {newcomer_waited:?}; {spent:?}"
    );
    // Its pulls, then refusals until the close: the rest of the flood is
    // never acted on.
    assert_eq!(refused, in_a_row, "refused until the close");
    assert_eq!(
        now.protocol_errors - scene.before.protocol_errors,
        1,
        "closed once"
    );
    // The attacker's connection (both ends) and its pulls.
    assert!(
        peak <= baseline + 2 + per_connection + DESCRIPTORS_SLACK,
        "peak {peak} from {baseline}"
    );
    assert!(settled <= baseline + DESCRIPTORS_SLACK, "left {settled}");
    assert!(
        newcomer_waited < Duration::from_secs(1),
        "a newcomer waited {newcomer_waited:?}"
    );
    assert_costs(&meter, &spent, per_connection as u64 + in_a_row);
    let report = scene.finish("fresh-after-zapping");
    super::assert_kept_pace(&report, "one connection zapping through names");
}

// ---------------------------------------------------------------------------
// An origin that goes silent
// ---------------------------------------------------------------------------

#[test]
fn a_pull_whose_origin_goes_silent_is_dropped_within_the_ping_timeout_and_fails_over() {
    // The origin starts after the scene, which takes this test's turn and
    // installs the log capture first; its port is chosen now.
    let origin_addr = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let proxy = SilentProxy::start(origin_addr);
    let list = [
        format!("rtmp://{}/live", proxy.addr),
        format!("rtmp://{origin_addr}/live"),
    ];
    let urls: Vec<RtmpUrl> = list
        .iter()
        .map(|u| RtmpUrl::parse(u).expect("url"))
        .collect();
    // A name whose first origin is the proxy.
    let name = (0..100)
        .map(|i| format!("quiet{i}"))
        .find(|n| origins::order(n, &urls)[0].port == proxy.addr.port())
        .expect("some name hashes to the proxy");
    let scene = Scene::start(edge_of(&list, |_| {}));
    let origin = start_server(1, |c| c.listen = vec![origin_addr]);
    let feeder = Feeder::start(&[origin_addr], &name);
    let mut player = Client::connect(scene.addr, EDGE_APP);
    player.play(&name);
    let before: Vec<u32> = player
        .collect_media(10)
        .iter()
        .filter_map(frame_number)
        .collect();
    assert!(!before.is_empty(), "frames through the proxy");
    let failovers = reference::totals(&scene.server).relay_failovers;
    let silent_at = Instant::now();
    proxy.go_silent();
    // Frames already on their way drain; then frames come again only
    // once the edge gave up on the silent origin and moved on.
    let resumed = loop {
        assert!(
            silent_at.elapsed() < TIMEOUT,
            "frames never came back after the origin went silent"
        );
        player.pump(Duration::from_millis(20));
        let media = player.take_media();
        let moved = reference::totals(&scene.server).relay_failovers > failovers;
        if moved && !media.is_empty() {
            break silent_at.elapsed();
        }
    };
    eprintln!("origin silent: frames again after {resumed:?} (ping {PING:?})");
    // Two ping intervals of silence, a connect and a keyframe (a GOP is
    // 10 frames at 30 fps), with room for a loaded machine.
    // The last bytes may have left the proxy just after it was told.
    assert!(
        resumed + Duration::from_millis(50) >= 2 * PING
            && resumed < 2 * PING + Duration::from_millis(1500),
        "{resumed:?}"
    );
    drop(player);
    drop(feeder);
    proxy.stop();
    scene.finish("fresh-after-silence");
    origin.shutdown();
}

// ---------------------------------------------------------------------------
// A push target that floods pings
// ---------------------------------------------------------------------------

#[test]
fn a_push_target_flooding_pings_while_no_frames_flow_is_closed_not_buffered() {
    let target = FloodingTarget::start();
    let push = RtmpUrl::parse(&format!("rtmp://{}/live", target.addr)).expect("url");
    let scene = Scene::start(|c| {
        c.relay.apps.insert(
            EDGE_APP.into(),
            AppRelay {
                origins: None,
                push: Some(vec![push]),
            },
        );
    });
    let meter = Meter::start();
    // A publisher that sends its header and then nothing: the push has no
    // frame to carry the pongs out with.
    let mut publisher = Client::connect(scene.addr, EDGE_APP);
    let id = publisher.publish("quiet");
    publisher.send(id, &media::avc_header());
    let (pings, took) = target
        .flood
        .join()
        .expect("target")
        .expect("the edge closed the flooding target");
    let spent = meter.spent();
    eprintln!("the edge closed the target after {pings} pings in {took:?}; {spent:?}");
    // 18 bytes of pong each: the bound, not something else, closed it.
    let pong_bytes = 18;
    assert!(
        pings * pong_bytes > ringcast::limits::RELAY_REPLY_BACKLOG_BYTES_MAX,
        "closed after {pings} pings"
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(spent.rss_growth < RSS_GROWTH_MAX, "{spent:?}");
    drop(publisher);
    scene.finish("fresh-after-ping-flood");
}

/// A push target that accepts one publish, then sends pings as fast as it
/// can and never reads again: its thread ends with the number of pings
/// sent and the time taken once the edge closes the connection (`None` if
/// it never does).
struct FloodingTarget {
    addr: SocketAddr,
    flood: JoinHandle<Option<(usize, Duration)>>,
}

impl FloodingTarget {
    fn start() -> FloodingTarget {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        let flood = std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().ok()?;
            socket.set_read_timeout(Some(TIMEOUT)).ok()?;
            socket.set_write_timeout(Some(TIMEOUT)).ok()?;
            let mut session = ServerSession::new(ServerConfig::default(), 0, [9; RANDOM_SIZE]);
            let mut input = BytesMut::new();
            let mut published = false;
            let mut buf = vec![0u8; 64 * 1024];
            while !published {
                let n = socket.read(&mut buf).ok().filter(|n| *n > 0)?;
                input.extend_from_slice(&buf[..n]);
                loop {
                    session.handle_input(&mut input).ok()?;
                    let mut answered = false;
                    while let Some(event) = session.poll_event() {
                        answered = true;
                        match event {
                            ServerEvent::Connect { .. } => session.accept_connect(),
                            ServerEvent::Publish { stream_id, .. } => {
                                session.accept_publish(stream_id);
                                published = true;
                            }
                            _ => {}
                        }
                    }
                    while let Some(bytes) = session.poll_transmit() {
                        socket.write_all(&bytes).ok()?;
                    }
                    if !answered {
                        break;
                    }
                }
            }
            let began = Instant::now();
            let mut pings = 0;
            while began.elapsed() < TIMEOUT {
                for _ in 0..100 {
                    session.ping(pings as u32);
                    pings += 1;
                }
                while let Some(bytes) = session.poll_transmit() {
                    if socket.write_all(&bytes).is_err() {
                        return Some((pings, began.elapsed()));
                    }
                }
            }
            None
        });
        FloodingTarget { addr, flood }
    }
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// The edge's config: `origins` serve [`EDGE_APP`], with short timings.
fn edge_of(origins: &[String], tweak: impl FnOnce(&mut Config)) -> impl FnOnce(&mut Config) {
    let origins: Vec<RtmpUrl> = origins
        .iter()
        .map(|u| RtmpUrl::parse(u).expect("url"))
        .collect();
    move |c| {
        c.relay.apps.insert(
            EDGE_APP.into(),
            AppRelay {
                origins: Some(origins),
                push: None,
            },
        );
        c.relay.timing.connect_timeout = CONNECT_TIMEOUT;
        c.relay.timing.idle_stop = IDLE_STOP;
        c.relay.timing.ping = PING;
        tweak(c);
    }
}

/// Checks the attack's costs; the resident set gets a while to come back
/// from transient buffers.
fn assert_costs(meter: &Meter, spent: &Spent, messages: u64) {
    let rss_growth = cost::settle_rss(meter, RSS_GROWTH_MAX, SETTLE_WITHIN);
    assert!(rss_growth < RSS_GROWTH_MAX, "RSS grew {rss_growth} bytes");
    assert!(
        spent.cpu_per(messages) < CPU_PER_MESSAGE_MAX,
        "{:?} of shard CPU per message: {spent:?}",
        spent.cpu_per(messages)
    );
    // The bound is the issue's, for one shard; the scene runs two, and
    // each has its own budget.
    let per_shard = spent.log_lines_per_s() / super::SHARDS as f64;
    assert!(
        per_shard < LOG_LINES_PER_S_MAX,
        "{per_shard} log lines a second per shard: {spent:?}"
    );
}

/// Descriptors this process holds: the server's and the test's.
fn descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count())
}

/// Waits up to [`SETTLE_WITHIN`] for descriptors to come back to
/// `baseline` (with slack); returns where they ended.
fn settle_descriptors(baseline: usize) -> usize {
    let deadline = Instant::now() + SETTLE_WITHIN;
    loop {
        let now = descriptors();
        if now <= baseline + DESCRIPTORS_SLACK || Instant::now() >= deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The most descriptors seen, sampled every few milliseconds from a thread.
struct Peak {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicUsize>,
    thread: JoinHandle<()>,
}

impl Peak {
    fn start() -> Peak {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicUsize::new(descriptors()));
        let (stopping, highest) = (stop.clone(), peak.clone());
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                highest.fetch_max(descriptors(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        Peak { stop, peak, thread }
    }

    fn stop(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("sampler");
        self.peak.load(Ordering::Relaxed)
    }
}

/// An origin that never completes a TCP handshake: a listener with
/// backlog 0 whose accept queue is filled and never accepted. Linux drops
/// further SYNs, so a connect to it neither succeeds nor fails.
struct BlackHole {
    addr: SocketAddr,
    _listener: socket2::Socket,
    _queued: Vec<socket2::Socket>,
}

impl BlackHole {
    fn start() -> BlackHole {
        let tcp = || {
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                .expect("socket")
        };
        let listener = tcp();
        let any: SocketAddr = "127.0.0.1:0".parse().expect("address");
        listener.bind(&any.into()).expect("bind");
        listener.listen(0).expect("listen");
        let addr = listener
            .local_addr()
            .expect("address")
            .as_socket()
            .expect("inet");
        let mut queued = Vec::new();
        loop {
            let socket = tcp();
            match socket.connect_timeout(&addr.into(), Duration::from_millis(200)) {
                Ok(()) => queued.push(socket),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => break,
                Err(e) => panic!("filling the accept queue: {e}"),
            }
            assert!(queued.len() < 16, "the accept queue never filled");
        }
        BlackHole {
            addr,
            _listener: listener,
            _queued: queued,
        }
    }

    fn url(&self) -> String {
        format!("rtmp://{}/live", self.addr)
    }
}

/// A TCP proxy to an origin that forwards both ways until told to go
/// silent; then it keeps every connection open and neither reads nor
/// writes (a half-open origin), and new connections get the same.
struct SilentProxy {
    addr: SocketAddr,
    silent: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    acceptor: JoinHandle<()>,
}

impl SilentProxy {
    fn start(origin: SocketAddr) -> SilentProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("address");
        let silent = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (quiet, stopping) = (silent.clone(), stop.clone());
        let acceptor = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !stopping.load(Ordering::Relaxed) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                client.set_nonblocking(false).expect("blocking");
                let server = TcpStream::connect(origin).expect("origin");
                for (from, to) in [(&client, &server), (&server, &client)] {
                    let (from, to) = (
                        from.try_clone().expect("clone"),
                        to.try_clone().expect("clone"),
                    );
                    let (quiet, stopping) = (quiet.clone(), stopping.clone());
                    std::thread::spawn(move || forward(from, to, &quiet, &stopping));
                }
                held.push((client, server));
            }
            for (client, server) in held {
                let _ = client.shutdown(Shutdown::Both);
                let _ = server.shutdown(Shutdown::Both);
            }
        });
        SilentProxy {
            addr,
            silent,
            stop,
            acceptor,
        }
    }

    fn go_silent(&self) {
        self.silent.store(true, Ordering::Relaxed);
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.acceptor.join().expect("proxy");
    }
}

/// Copies `from` to `to` until either ends; while `quiet`, holds both
/// without reading or writing.
fn forward(mut from: TcpStream, mut to: TcpStream, quiet: &AtomicBool, stop: &AtomicBool) {
    from.set_read_timeout(Some(Duration::from_millis(20)))
        .expect("timeout");
    let mut buf = [0u8; 16 * 1024];
    while !stop.load(Ordering::Relaxed) {
        if quiet.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        match from.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}
