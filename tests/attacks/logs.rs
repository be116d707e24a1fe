//! Log floods: a peer that repeats a command which writes a log line (a
//! play of a long name, a publish with a wrong key) thousands of times on
//! one connection. Each line it causes goes through its connection's and
//! its shard's budget, so the log grows by a few lines and a summary, not
//! by one line per message; a peer refused too often in a row is closed.
//! Measured with [`cost::Meter`]: log lines per second, shard CPU per
//! attacking message, resident set growth.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ringcast::limits;
use ringcast::protocol::amf::Value;

use super::Scene;
use super::common::{Client, TIMEOUT, logs, raw, reference};
use super::cost::{self, CPU_PER_MESSAGE_MAX, LOG_LINES_PER_S_MAX, RSS_GROWTH_MAX};

/// Iterations of each loop.
const ITERATIONS: usize = 5000;

/// The app whose publishes need a key in the wrong-key scene.
const LOCKED_APP: &str = "locked";

#[test]
fn a_create_play_delete_loop_of_long_names_writes_a_few_lines_and_a_summary() {
    let scene = Scene::start(|_| {});
    let mut attacker = Client::connect(scene.addr, reference::APP);
    let peer = attacker.socket.local_addr().expect("address");
    let drain = Drain::start(&attacker.socket);
    let meter = cost::Meter::start();
    raw::send(
        &mut attacker.socket,
        &play_rounds(&"n".repeat(1000), ITERATIONS),
    );
    // A call after the loop is answered once the server has read it all.
    let (results, _) = drain.wait_for_results(ITERATIONS + 1, &mut attacker.socket);
    let spent = meter.spent();
    assert_eq!(results, ITERATIONS + 1, "every createStream answered");
    let messages = 3 * ITERATIONS as u64;
    eprintln!("create/play/delete loop: {}", spent.report(messages));
    assert!(spent.log_lines_per_s() < LOG_LINES_PER_S_MAX, "{spent:?}");
    assert!(spent.cpu_per(messages) < CPU_PER_MESSAGE_MAX, "{spent:?}");
    let growth = cost::settle_rss(&meter, RSS_GROWTH_MAX, Duration::from_secs(5));
    assert!(
        growth < RSS_GROWTH_MAX,
        "rss grew by {growth} bytes: {spent:?}"
    );
    // The plays were granted: no refusal, the connection is served.
    assert!(drain.is_open());
    attacker.socket.shutdown(Shutdown::Both).expect("shutdown");
    close_line(peer);
    // Each round's play is logged or counted in a summary, none lost.
    let lines = logs::lines_for(peer);
    let played = lines.iter().filter(|l| l.contains(" play shard=")).count() as u64;
    assert!(played < ITERATIONS as u64 / 100, "{played} play lines");
    assert_eq!(played + suppressed(&lines), ITERATIONS as u64, "{lines:#?}");
    assert_lines_bounded(peer, spent.elapsed);
    let report = scene.finish("fresh-after-play-loop");
    super::assert_kept_pace(&report, "fresh-after-play-loop");
}

#[test]
fn a_play_loop_against_a_dead_play_done_hook_logs_the_outage_not_each_call() {
    let scene = Scene::start(|c| {
        // Nothing listens on port 1: every notification fails at once.
        let dead = "http://127.0.0.1:1/play_done".parse().expect("a hook url");
        c.access.default.hooks.on_play_done = vec![dead];
    });
    let mut attacker = Client::connect(scene.addr, reference::APP);
    let drain = Drain::start(&attacker.socket);
    let meter = cost::Meter::start();
    raw::send(&mut attacker.socket, &play_rounds("cam", ITERATIONS));
    drain.wait_for_results(ITERATIONS + 1, &mut attacker.socket);
    // The notifications fail on the hook thread after the loop.
    std::thread::sleep(Duration::from_millis(500));
    let spent = meter.spent();
    let hook_lines: Vec<String> = logs::all_lines()
        .into_iter()
        .filter(|l| l.contains("hook"))
        .collect();
    eprintln!(
        "play loop with a dead on_play_done hook: {} log lines ({:.1}/s), {} about the hook",
        spent.log_lines,
        spent.log_lines_per_s(),
        hook_lines.len()
    );
    assert!(spent.log_lines_per_s() < LOG_LINES_PER_S_MAX, "{spent:?}");
    // The first failure, and what the connection's budget let through of
    // calls that could not be queued.
    let most = 1 + limits::LOG_LINES_PER_CONNECTION_BURST as usize;
    assert!((1..=most).contains(&hook_lines.len()), "{hook_lines:#?}");
    attacker.socket.shutdown(Shutdown::Both).expect("shutdown");
    scene.finish("fresh-after-dead-hook");
}

#[test]
fn a_wrong_key_publish_loop_is_closed_after_the_refusals_in_a_row() {
    let scene = Scene::start(|c| {
        let mut locked = c.access.default.clone();
        locked.publish.keys = vec!["right-key".into()];
        c.access.apps.insert(LOCKED_APP.into(), locked);
    });
    let mut attacker = Client::connect(scene.addr, LOCKED_APP);
    let peer = attacker.socket.local_addr().expect("address");
    let round = [
        raw::command(&raw::call("createStream", 2.0, vec![]), 0, CHUNK),
        raw::command(
            &raw::call("publish", 0.0, vec![Value::string("cam?key=guess")]),
            1,
            CHUNK,
        ),
        raw::command(
            &raw::call("deleteStream", 0.0, vec![Value::Number(1.0)]),
            0,
            CHUNK,
        ),
    ]
    .concat();
    let meter = cost::Meter::start();
    let mut writer = attacker.socket.try_clone().expect("clone");
    let flood = round.repeat(ITERATIONS);
    // The server closes long before the loop ends: the rest fails to send.
    let writing = std::thread::spawn(move || {
        let _ = writer.write_all(&flood);
    });
    raw::assert_closed(&mut attacker.socket, "a wrong-key publish loop");
    let spent = meter.spent();
    writing.join().expect("the writer ends");
    let refusals = u64::from(limits::REFUSALS_IN_A_ROW_MAX);
    scene.assert_counted("denials", |s| s.auth_denials, refusals);
    scene.assert_counted("closes for refusals", |s| s.protocol_errors, 1);
    let messages = 3 * refusals;
    eprintln!(
        "wrong-key publish loop: closed after {refusals} refusals: {}",
        spent.report(messages)
    );
    assert!(spent.log_lines_per_s() < LOG_LINES_PER_S_MAX, "{spent:?}");
    assert!(spent.cpu_per(messages) < CPU_PER_MESSAGE_MAX, "{spent:?}");
    assert!(spent.rss_growth < RSS_GROWTH_MAX, "{spent:?}");
    let close = close_line(peer);
    assert!(close.contains("commands refused in a row"), "{close}");
    // Each denial is logged or counted in a summary.
    let lines = logs::lines_for(peer);
    let denied = lines.iter().filter(|l| l.contains(" denied ")).count() as u64;
    assert!(denied < refusals, "{denied} denied lines");
    assert_eq!(denied + suppressed(&lines), refusals, "{lines:#?}");
    assert_lines_bounded(peer, spent.elapsed);
    let report = scene.finish("fresh-after-wrong-keys");
    super::assert_kept_pace(&report, "fresh-after-wrong-keys");
}

#[test]
fn create_streams_past_the_limit_in_a_loop_are_closed_after_the_refusals_in_a_row() {
    let scene = Scene::start(|_| {});
    let mut attacker = Client::connect(scene.addr, reference::APP);
    let peer = attacker.socket.local_addr().expect("address");
    let calls: Vec<u8> = (0..ITERATIONS)
        .flat_map(|i| raw::command(&raw::call("createStream", i as f64, vec![]), 0, CHUNK))
        .collect();
    raw::send(&mut attacker.socket, &calls);
    raw::assert_closed(&mut attacker.socket, "a createStream loop");
    let refusals = u64::from(limits::REFUSALS_IN_A_ROW_MAX);
    scene.assert_counted("command errors", |s| s.command_errors, refusals);
    scene.assert_counted("closes for refusals", |s| s.protocol_errors, 1);
    let close = close_line(peer);
    assert!(
        close.contains(&format!("commands_refused={refusals}")),
        "{close}"
    );
    assert!(close.contains("commands refused in a row"), "{close}");
    assert_lines_bounded(peer, Duration::ZERO);
    scene.finish("fresh-after-create-streams");
}

/// A flood of connections closing at once (since `closing`): each shard
/// writes close lines within its budget and counts the rest in its
/// summaries, so every close is logged or counted, and the lines written
/// stay within the shards' budget.
pub(super) fn assert_closes_logged_or_summarised(peers: &[SocketAddr], closing: Instant) {
    let names: std::collections::HashSet<String> =
        peers.iter().map(|p| format!("peer={p}")).collect();
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let lines = logs::all_lines();
        let logged = lines
            .iter()
            .filter(|l| l.contains(" closed ") && l.split_whitespace().any(|w| names.contains(w)))
            .count() as u64;
        let summarised: u64 = lines
            .iter()
            .filter(|l| l.contains("on this shard suppressed"))
            .map(|l| field(l, "suppressed="))
            .sum();
        if logged + summarised >= peers.len() as u64 {
            assert_eq!(logged + summarised, peers.len() as u64, "{logged} logged");
            let seconds = closing.elapsed().as_secs() + 1;
            let shards = 2;
            let budget = shards
                * (u64::from(limits::LOG_LINES_PER_SHARD_BURST)
                    + seconds * u64::from(limits::LOG_LINES_PER_SHARD_PER_S));
            assert!(logged <= budget, "{logged} close lines, budget {budget}");
            eprintln!(
                "a flood of {} closes: {logged} lines, {summarised} summarised",
                peers.len()
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{logged} close lines and {summarised} summarised of {}",
            peers.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `n` rounds of `createStream`, `play` of `name` and `deleteStream`
/// (stream ids are handed out lowest first, so each round's stream is 1).
fn play_rounds(name: &str, n: usize) -> Vec<u8> {
    let round = [
        raw::command(&raw::call("createStream", 2.0, vec![]), 0, CHUNK),
        raw::command(&raw::call("play", 0.0, vec![Value::string(name)]), 1, CHUNK),
        raw::command(
            &raw::call("deleteStream", 0.0, vec![Value::Number(1.0)]),
            0,
            CHUNK,
        ),
    ]
    .concat();
    round.repeat(n)
}

/// The chunk size the test client announces after `connect`.
const CHUNK: u32 = raw::CLIENT_CHUNK_SIZE;

/// Lines one connection may write over `elapsed`: its burst and what its
/// bucket earned back.
fn budget_per_connection(elapsed: Duration) -> u64 {
    u64::from(limits::LOG_LINES_PER_CONNECTION_BURST)
        + elapsed.as_millis() as u64 / limits::LOG_LINES_PER_CONNECTION_REFILL_MS
}

/// Waits for the server's close line for `peer` and returns it.
fn close_line(peer: SocketAddr) -> String {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(line) = logs::lines_for(peer)
            .into_iter()
            .find(|l| l.contains(" closed "))
        {
            return line;
        }
        assert!(Instant::now() < deadline, "no close line for {peer}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The number after `name` in a log line, 0 if absent.
fn field(line: &str, name: &str) -> u64 {
    line.split_whitespace()
        .find_map(|word| word.strip_prefix(name))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Lines the summaries among `lines` (and the close line) say were
/// suppressed.
fn suppressed(lines: &[String]) -> u64 {
    lines
        .iter()
        .map(|l| field(l, "suppressed=") + field(l, "lines_suppressed="))
        .sum()
}

/// The connection wrote at most its budget over `elapsed`, a summary each
/// time its bucket refilled, and its close line, none of them long (peer
/// text is quoted in bounded form).
fn assert_lines_bounded(peer: SocketAddr, elapsed: Duration) {
    let lines = logs::lines_for(peer);
    let refills =
        elapsed.as_millis() as usize / limits::LOG_LINES_PER_CONNECTION_REFILL_MS as usize;
    let most = budget_per_connection(elapsed) as usize + refills + 2;
    assert!(lines.len() <= most, "{} lines: {lines:#?}", lines.len());
    let longest = lines.iter().map(String::len).max().unwrap_or(0);
    assert!(longest <= 512, "a log line of {longest} bytes: {lines:#?}");
}

/// Reads what the server answers an attacker (so it is never a slow
/// reader), counting `_result`s by their bytes.
struct Drain {
    thread: JoinHandle<()>,
    results: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    open: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Drain {
    fn start(socket: &TcpStream) -> Drain {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let mut reader = socket.try_clone().expect("clone");
        // The client's read timeout is the socket's: read until closed.
        reader.set_read_timeout(None).expect("blocking reads");
        let results = std::sync::Arc::new(AtomicUsize::new(0));
        let open = std::sync::Arc::new(AtomicBool::new(true));
        let (counted, alive) = (results.clone(), open.clone());
        let thread = std::thread::spawn(move || {
            // `_result` as an AMF0 string: 0x02, length 7, the text.
            let needle = b"\x02\x00\x07_result";
            let mut carry: Vec<u8> = Vec::new();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        carry.extend_from_slice(&buf[..n]);
                        let found = carry.windows(needle.len()).filter(|w| w == needle).count();
                        counted.fetch_add(found, Ordering::Relaxed);
                        // Keep a tail that may hold the start of a match.
                        let keep = carry.len().min(needle.len() - 1);
                        carry.drain(..carry.len() - keep);
                    }
                }
            }
            alive.store(false, Ordering::Relaxed);
        });
        Drain {
            thread,
            results,
            open,
        }
    }

    /// Sends one more `createStream` (the server has read everything
    /// before it once it answers) and waits until `n` results came;
    /// returns them and the time waited.
    fn wait_for_results(&self, n: usize, socket: &mut TcpStream) -> (usize, Duration) {
        use std::sync::atomic::Ordering;
        let started = Instant::now();
        raw::send(
            socket,
            &raw::command(&raw::call("createStream", 3.0, vec![]), 0, CHUNK),
        );
        while self.results.load(Ordering::Relaxed) < n {
            assert!(
                started.elapsed() < 3 * TIMEOUT,
                "{} results",
                self.results.load(Ordering::Relaxed)
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        (self.results.load(Ordering::Relaxed), started.elapsed())
    }

    fn is_open(&self) -> bool {
        self.open.load(std::sync::atomic::Ordering::Relaxed) && !self.thread.is_finished()
    }
}
