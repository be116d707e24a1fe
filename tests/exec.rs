//! Exec on publish (`[app.NAME] exec_publish`) against a live server: an
//! ffmpeg started by a publish republishes it to another app, where
//! players get it, and gets SIGTERM when the publish ends; a program that
//! dies is started again with backoff; one that ignores SIGTERM is
//! killed; its stderr is logged within its budget; past the cap a
//! publish goes on without its program; the server's shutdown
//! and its death (SIGKILL) leave no child running; bad vectors fail
//! `check-config` naming the key. Needs ffmpeg (fails, never skips,
//! without it).
// Tests and benches fail by panicking on what they did not expect.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::admin::scrape;
use common::ffmpeg::{decode_quietly, finish, publish, tool};
use common::served::Served;
use common::{Client, logs, start_server, wait_until};
use ringcast::config::{Config, ExecCommand};
use ringcast::limits;
use ringcast::server::ServerHandle;

/// `config` runs `argv` while a stream of app `live` is published.
fn exec_in_live(config: &mut Config, argv: &[&str]) {
    let argv: Vec<String> = argv.iter().map(|a| (*a).to_owned()).collect();
    let command = ExecCommand::parse("exec_publish", &argv).expect("a valid vector");
    config.exec_publish.insert("live".into(), command);
}

/// A server of two shards running `argv` for app `live`, its log
/// captured.
fn server_running(argv: &[&str]) -> ServerHandle {
    logs::capture();
    start_server(2, |config| exec_in_live(config, argv))
}

fn metric(admin: SocketAddr, name: &str) -> f64 {
    let metrics: HashMap<String, f64> = scrape(admin);
    *metrics
        .get(name)
        .unwrap_or_else(|| panic!("{name} in /metrics"))
}

fn publishers(server: &ServerHandle) -> u64 {
    server.stats().iter().map(|s| s.publishers).sum()
}

/// The captured lines with `message` about `stream`, in order.
fn lines(message: &str, stream: &str) -> Vec<String> {
    let stream = format!("stream={stream}");
    logs::all_lines()
        .into_iter()
        .filter(|l| l.contains(message) && l.split_whitespace().any(|w| w == stream))
        .collect()
}

/// `name=VALUE` of a log line.
fn field<'a>(line: &'a str, name: &str) -> &'a str {
    let prefix = format!("{name}=");
    line.split_whitespace()
        .find_map(|word| word.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("{name} in {line}"))
}

/// The pid of the program started for `stream`, once it was (the first,
/// if several were).
fn started_pid(stream: &str) -> u32 {
    let mut found = None;
    wait_until(&format!("an exec for {stream} started"), || {
        found = lines("exec started", stream).first().cloned();
        found.is_some()
    });
    field(&found.unwrap(), "pid").parse().unwrap()
}

/// Whether `pid` is a process at all, reaped or not (`/proc/PID`).
fn exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Whether `pid` runs: it exists and is no zombie.
fn runs(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // `pid (comm) state ...`: the state follows the last parenthesis.
    (stat.rsplit_once(')')).is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
}

/// A process's command line, arguments joined by spaces.
fn command_line(pid: u32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    String::from_utf8_lossy(&raw).replace('\0', " ")
}

/// A process's group (`/proc/PID/stat`'s fifth field).
fn process_group(pid: u32) -> u32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let (_, rest) = stat.rsplit_once(')').unwrap();
    rest.split_whitespace().nth(2).unwrap().parse().unwrap()
}

#[test]
fn an_ffmpeg_started_by_a_publish_republishes_it_to_players_and_stops_with_it() {
    tool("ffmpeg");
    let server = server_running(&[
        "ffmpeg",
        "-hide_banner",
        "-i",
        "rtmp://127.0.0.1:{port}/{app}/{name}",
        "-c",
        "copy",
        "-f",
        "flv",
        "rtmp://127.0.0.1:{port}/copies/{name}",
    ]);
    let (addr, admin) = (server.local_addrs()[0], server.admin_addr().unwrap());
    let publisher = publish(&format!("rtmp://{addr}/live/cam"), 60);
    let pid = started_pid("live/cam");
    assert_eq!(process_group(pid), pid, "a process group of its own");
    let copy = format!("rtmp://127.0.0.1:{}/copies/cam", addr.port());
    assert!(
        command_line(pid).contains(&copy),
        "placeholders filled: {}",
        command_line(pid)
    );
    // Its own publish (app `copies` runs nothing: no exec starts another).
    wait_until("the copy is published", || publishers(&server) == 2);
    assert_eq!(metric(admin, "ringcast_exec_children"), 1.0);
    let frames = decode_quietly(&copy, 3);
    assert!(frames >= 30, "a player of the copy decoded {frames} frames");
    assert!(
        !lines("exec stderr", "live/cam").is_empty(),
        "its stderr is logged"
    );

    finish(publisher);
    wait_until("the child is gone and reaped", || !exists(pid));
    let stopped = lines("exec stopped (SIGTERM)", "live/cam");
    assert_eq!(stopped.len(), 1, "{stopped:?}");
    assert_eq!(field(&stopped[0], "pid"), pid.to_string());
    wait_until("the copy ends with it", || publishers(&server) == 0);
    assert_eq!(metric(admin, "ringcast_exec_children"), 0.0);
    assert_eq!(metric(admin, "ringcast_exec_restarts_total"), 0.0);
    assert_eq!(
        lines("exec started", "live/cam").len(),
        1,
        "never restarted"
    );
    server.shutdown();
}

#[test]
fn a_program_that_dies_is_started_again_with_backoff_until_its_publish_ends() {
    let server = server_running(&["false"]);
    let (addr, admin) = (server.local_addrs()[0], server.admin_addr().unwrap());
    let mut publisher = Client::connect(addr, "live");
    publisher.publish("dies?token=1");
    wait_until("three restarts", || {
        metric(admin, "ringcast_exec_restarts_total") >= 3.0
    });
    let ended = lines("exec ended while its stream is published", "live/dies");
    let waits: Vec<&str> = ended.iter().map(|l| field(l, "restart_in_ms")).collect();
    assert_eq!(waits[..3], ["500", "1000", "2000"], "{ended:?}");
    assert!(
        ended[0].contains("status=\"exit status: 1\""),
        "{}",
        ended[0]
    );
    drop(publisher);
    wait_until("the publish ended", || publishers(&server) == 0);
    // A wait under way ends with the publish: nothing starts any more.
    let restarts = metric(admin, "ringcast_exec_restarts_total");
    std::thread::sleep(Duration::from_millis(4_500));
    assert_eq!(metric(admin, "ringcast_exec_restarts_total"), restarts);
    assert_eq!(metric(admin, "ringcast_exec_children"), 0.0);
    server.shutdown();
}

#[test]
fn a_program_ignoring_sigterm_is_killed_after_the_grace_period() {
    let server = server_running(&[
        "python3",
        "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)",
    ]);
    let addr = server.local_addrs()[0];
    let mut publisher = Client::connect(addr, "live");
    publisher.publish("stubborn");
    let pid = started_pid("live/stubborn");
    // Python sets its handler once started; give it time to.
    std::thread::sleep(Duration::from_millis(500));
    let stopped_at = Instant::now();
    drop(publisher);
    wait_until("the child is killed and reaped", || !exists(pid));
    let took = stopped_at.elapsed();
    let grace = Duration::from_millis(limits::EXEC_STOP_GRACE_MS);
    assert!(
        took >= grace,
        "SIGKILL came after {took:?}, before the grace"
    );
    let killed = lines("exec killed", "live/stubborn");
    assert_eq!(killed.len(), 1, "{killed:?}");
    assert!(killed[0].contains("status=\"signal: 9"), "{}", killed[0]);
    server.shutdown();
}

#[test]
fn a_flood_on_stderr_is_logged_within_its_budget_and_the_rest_counted() {
    // `ls` says one line per missing path, all at once.
    let missing: Vec<String> = (0..100).map(|n| format!("/nonexistent/{n}")).collect();
    let mut argv = vec!["ls"];
    argv.extend(missing.iter().map(String::as_str));
    let server = server_running(&argv);
    let mut publisher = Client::connect(server.local_addrs()[0], "live");
    publisher.publish("loud");
    let pid = started_pid("live/loud").to_string();
    let of_pid = |lines: Vec<String>| -> Vec<String> {
        (lines.into_iter())
            .filter(|l| field(l, "pid") == pid)
            .collect()
    };
    wait_until("the dropped lines are counted", || {
        !of_pid(lines("exec stderr lines dropped", "live/loud")).is_empty()
    });
    let logged = of_pid(lines("exec stderr", "live/loud"))
        .into_iter()
        .filter(|l| !l.contains("lines dropped"))
        .count();
    let burst = limits::EXEC_LOG_LINES_BURST as usize;
    assert_eq!(logged, burst, "the burst, then the budget's rate");
    let dropped = of_pid(lines("exec stderr lines dropped", "live/loud"));
    let counted: usize = (dropped.iter())
        .map(|l| field(l, "dropped").parse::<usize>().unwrap())
        .sum();
    assert_eq!(logged + counted, 100, "every line logged or counted");
    drop(publisher);
    server.shutdown();
}

#[test]
fn past_the_cap_a_publish_goes_on_without_its_program() {
    let server = server_running(&["sleep", "600"]);
    let (addr, admin) = (server.local_addrs()[0], server.admin_addr().unwrap());
    let cap = limits::EXEC_CHILDREN_MAX;
    // Each publish is accepted before the next is asked for, so the
    // starts reach the supervisor in this order.
    let clients: Vec<Client> = (0..=cap)
        .map(|n| {
            let mut client = Client::connect(addr, "live");
            client.publish(&format!("capped-{n}"));
            client
        })
        .collect();
    wait_until("the cap's worth of children", || {
        metric(admin, "ringcast_exec_children") == cap as f64
    });
    assert_eq!(metric(admin, "ringcast_exec_refusals_total"), 1.0);
    let refused = lines("exec refused", &format!("live/capped-{cap}"));
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(publishers(&server), cap as u64 + 1, "every publish went on");
    drop(clients);
    wait_until("every child stopped", || {
        metric(admin, "ringcast_exec_children") == 0.0
    });
    server.shutdown();
}

#[test]
fn the_server_s_shutdown_stops_and_reaps_every_child() {
    let server = server_running(&["sleep", "600"]);
    let addr = server.local_addrs()[0];
    let mut publishers: Vec<Client> = ["a", "b", "c"]
        .iter()
        .map(|name| {
            let mut client = Client::connect(addr, "live");
            client.publish(&format!("shut-{name}"));
            client
        })
        .collect();
    let pids: Vec<u32> = ["a", "b", "c"]
        .iter()
        .map(|name| started_pid(&format!("live/shut-{name}")))
        .collect();
    assert!(pids.iter().all(|pid| runs(*pid)));
    server.shutdown();
    for pid in pids {
        assert!(!exists(pid), "{pid} stopped and reaped by the shutdown");
    }
    publishers.clear();
}

#[test]
fn a_server_killed_outright_leaves_no_child_running() {
    let file = std::env::temp_dir().join(format!("ringcast-exec-{}.toml", std::process::id()));
    std::fs::write(&file, "[app.live]\nexec_publish = [\"sleep\", \"600\"]\n").unwrap();
    let mut served = Served::start(&[
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "off",
        "--config",
        file.to_str().unwrap(),
    ]);
    let mut publisher = Client::connect(served.addr, "live");
    publisher.publish("orphan");
    let line = served.wait_for_line("exec started");
    let pid: u32 = field(&line, "pid").parse().unwrap();
    assert!(runs(pid));
    served.signal(libc::SIGKILL);
    let deadline = Instant::now() + common::TIMEOUT;
    while runs(pid) {
        assert!(Instant::now() < deadline, "{pid} outlived its server");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(publisher);
    let _ = std::fs::remove_file(file);
}

#[test]
fn bad_vectors_fail_check_config_naming_the_key() {
    let cases = [
        (
            "[app.live]\nexec_publish = []\n",
            "app.live.exec_publish = [] must name a program",
        ),
        (
            "[app.live]\nexec_publish = [\"ffmpeg\", \"-i\", \"rtmp://127.0.0.1:{port}/{app}/{stream}\"]\n",
            "app.live.exec_publish = \"rtmp://127.0.0.1:{port}/{app}/{stream}\" has an unknown \
             placeholder {stream}",
        ),
        (
            "[app.live]\nexec_publish = [\"{name}\"]\n",
            "app.live.exec_publish = \"{name}\" is the program, which must be a name or a path \
             without placeholders",
        ),
    ];
    for (n, (text, expected)) in cases.into_iter().enumerate() {
        let file = std::env::temp_dir().join(format!(
            "ringcast-exec-check-{}-{n}.toml",
            std::process::id()
        ));
        std::fs::write(&file, text).unwrap();
        let run = Command::new(env!("CARGO_BIN_EXE_ringcast"))
            .arg("check-config")
            .arg(&file)
            .stdin(Stdio::null())
            .output()
            .expect("the binary runs");
        let _ = std::fs::remove_file(&file);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{text}: {stderr}");
        assert!(stderr.contains(expected), "{text}: {stderr}");
    }
}
