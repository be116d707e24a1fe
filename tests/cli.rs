//! `ringcast serve` as an operator meets it: `--help`, and startup failures
//! that exit with a status and a message naming the fix. Runs the built
//! binary; every run is killed if it has not exited within a deadline.
// Tests and benches fail by panicking on what they did not expect.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::served::Served;
use common::{Client, admin};

/// A run that has not exited by then is killed and fails the test.
const DEADLINE: Duration = Duration::from_secs(30);

struct Run {
    status: Option<i32>,
    stdout: String,
    stderr: String,
}

fn ringcast(args: &[&str]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringcast"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait works") {
            break status;
        }
        if started.elapsed() > DEADLINE {
            child.kill().expect("kill the child we started");
            child.wait().expect("reap it");
            panic!("ringcast {args:?} still running after {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // The outputs are small, so the pipes never filled while we waited.
    let mut run = Run {
        status: status.code(),
        stdout: String::new(),
        stderr: String::new(),
    };
    child
        .stdout
        .take()
        .expect("piped")
        .read_to_string(&mut run.stdout)
        .expect("utf-8");
    child
        .stderr
        .take()
        .expect("piped")
        .read_to_string(&mut run.stderr)
        .expect("utf-8");
    run
}

/// A config file in the temporary directory, removed when dropped.
struct ConfigFile(PathBuf);

impl ConfigFile {
    fn new(name: &str, text: &str) -> ConfigFile {
        let file = format!("ringcast-cli-{}-{name}.toml", std::process::id());
        let path = std::env::temp_dir().join(file);
        std::fs::write(&path, text).expect("temp dir is writable");
        ConfigFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn serve_help_lists_every_flag_with_its_default() {
    let run = ringcast(&["serve", "--help"]);
    assert_eq!(run.status, Some(0), "{}", run.stderr);
    let help = run.stdout;
    for (flag, default) in [
        ("--listen <ADDR>", "[default: 0.0.0.0:1935]"),
        (
            "--shards <N>",
            "[default: one per CPU in --cpus, else one per usable CPU",
        ),
        ("--cpus <LIST>", "[default: every usable CPU"),
        ("--chunk-size <N>", "[default: 4096]"),
        ("--config <FILE>", "[default: none, built-in defaults]"),
    ] {
        let line = help.lines().find(|line| line.contains(flag));
        let line = line.unwrap_or_else(|| panic!("{flag} missing from\n{help}"));
        assert!(line.contains(default), "{flag} without {default}:\n{line}");
    }
}

#[test]
fn out_of_range_chunk_size_names_flag_key_and_range() {
    let run = ringcast(&["serve", "--chunk-size", "0"]);
    assert_eq!(run.status, Some(2), "{}", run.stderr);
    assert_eq!(
        run.stderr.trim_end(),
        "error: invalid --chunk-size: chunk_size = 0 is out of range 128..=16777215"
    );
}

#[test]
fn a_missing_config_file_is_named() {
    let run = ringcast(&["serve", "--config", "/nonexistent/ringcast.toml"]);
    assert_eq!(run.status, Some(2), "{}", run.stderr);
    assert!(
        run.stderr
            .starts_with("error: cannot read config file /nonexistent/ringcast.toml: "),
        "{}",
        run.stderr
    );
}

#[test]
fn an_unknown_key_in_the_config_file_is_named_with_the_file() {
    let file = ConfigFile::new("unknown-key", "[stream]\ngop_cache_bytes = 1\n");
    let run = ringcast(&["serve", "--config", file.path()]);
    assert_eq!(run.status, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains(file.path()), "{}", run.stderr);
    assert!(
        run.stderr.contains("unknown field `gop_cache_bytes`"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_bad_cpu_list_is_a_usage_error() {
    let run = ringcast(&["serve", "--cpus", "3-1"]);
    assert_eq!(run.status, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("--cpus"), "{}", run.stderr);
    assert!(run.stderr.contains("reversed"), "{}", run.stderr);
}

#[test]
fn a_taken_port_stops_startup_with_already_in_use() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let addr = taken.local_addr().expect("bound").to_string();
    // A small cap, so the open-file limit of a CI runner does not fail first.
    let file = ConfigFile::new("taken-port", "connections_max = 64\n");
    let run = ringcast(&[
        "serve",
        "--config",
        file.path(),
        "--http",
        "off",
        "--listen",
        &addr,
        "--shards",
        "2",
        "--admin",
        "off",
    ]);
    assert_eq!(run.status, Some(1), "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("error: address {addr} is already in use")),
        "{}",
        run.stderr
    );
    drop(taken);
}

#[test]
fn a_taken_admin_port_stops_startup_naming_the_flag() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let addr = taken.local_addr().expect("bound").to_string();
    let file = ConfigFile::new("taken-admin", "connections_max = 64\n");
    let run = ringcast(&[
        "serve",
        "--config",
        file.path(),
        "--http",
        "off",
        "--listen",
        "127.0.0.1:0",
        "--shards",
        "1",
        "--admin",
        &addr,
    ]);
    assert_eq!(run.status, Some(1), "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("error: admin address {addr} is already in use")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--admin off"), "{}", run.stderr);
    drop(taken);
}

#[test]
fn no_subcommand_is_a_usage_error() {
    let run = ringcast(&[]);
    assert_eq!(run.status, Some(2));
    assert!(run.stderr.contains("serve"), "{}", run.stderr);
}

#[test]
fn sigterm_stops_a_running_server_cleanly_and_sighup_reloads() {
    let args = [
        "--http",
        "off",
        "--listen",
        "127.0.0.1:0",
        "--shards",
        "2",
        "--admin",
        "127.0.0.1:0",
    ];
    let mut served = Served::start(&args);
    // The log names the resolved address: connect to prove it listens.
    std::net::TcpStream::connect(served.addr).expect("the server accepts");
    let admin = served.admin.expect("the admin address in the log");
    let summary = admin::get_json(admin, "/api/v1/summary");
    assert_eq!(summary["shards"], 2, "{summary}");
    // SIGHUP (systemd's reload) reloads; it must not kill the server.
    served.signal(libc::SIGHUP);
    served.wait_for_line("ringcast::reload: configuration reloaded");
    assert!(served.is_running(), "alive after SIGHUP");
    let metrics = admin::scrape(admin);
    assert_eq!(metrics.get("ringcast_shards"), Some(&2.0));
    served.signal(libc::SIGTERM);
    let (status, rest) = served.wait();
    assert!(status.success(), "exit status {status:?}");
    assert!(
        rest.iter().any(|l| l.contains("shard stopped")),
        "shards stopped gracefully: {rest:?}"
    );
    assert!(
        rest.iter().all(|l| !l.contains('\u{1b}')),
        "no colour codes in a log that is not a terminal: {rest:?}"
    );
}

/// An app and a stream name a publisher chose to colour a log and forge a
/// line in it.
const PEER_APP: &str = "li\u{1b}[31mve";
const PEER_NAME: &str = "c\u{1b}[32mam\n2026-01-01T00:00:00Z  INFO forged";

/// Serves with `args`, publishes [`PEER_NAME`] in [`PEER_APP`], stops
/// with SIGTERM; the publisher's address and every line logged after
/// startup.
fn serve_a_peer_named_publish(args: &[&str]) -> (String, Vec<String>) {
    let base = [
        "--http",
        "off",
        "--admin",
        "off",
        "--listen",
        "127.0.0.1:0",
        "--shards",
        "1",
    ];
    let served = Served::start(&[&base[..], args].concat());
    let mut publisher = Client::connect(served.addr, PEER_APP);
    publisher.publish(PEER_NAME);
    let address = publisher.socket.local_addr().unwrap().to_string();
    drop(publisher);
    served.signal(libc::SIGTERM);
    let (status, lines) = served.wait();
    assert!(status.success(), "exit status {status:?}");
    (address, lines)
}

#[test]
fn a_log_on_a_pipe_carries_no_escape_byte_even_from_peer_text() {
    let (address, lines) = serve_a_peer_named_publish(&[]);
    for line in &lines {
        assert!(!line.contains('\u{1b}'), "an ESC byte in {line:?}");
        assert!(!line.starts_with("2026-01-01"), "a forged line: {line:?}");
    }
    let publish = (lines.iter())
        .find(|l| l.contains(": publish "))
        .unwrap_or_else(|| panic!("the publish line in {lines:?}"));
    let peer = format!("peer={address}");
    let stream = "stream=li\\u{1b}[31mve/c\\u{1b}[32mam\\n2026-01-01T00:00:00Z  INFO forged";
    assert!(publish.contains(&peer), "{publish}");
    assert!(publish.contains(stream), "{publish}");
}

#[test]
fn json_logs_are_one_object_per_line_with_level_target_message_and_fields() {
    let (address, lines) = serve_a_peer_named_publish(&["--log-format", "json"]);
    let parsed: Vec<serde_json::Value> = (lines.iter())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    assert!(lines.iter().all(|l| !l.contains('\u{1b}')), "{lines:?}");
    let publish = (parsed.iter())
        .find(|l| l["fields"]["message"] == "publish")
        .unwrap_or_else(|| panic!("the publish line in {lines:?}"));
    assert_eq!(publish["level"], "INFO");
    assert_eq!(publish["target"], "ringcast::shard::driver");
    assert!(publish["timestamp"].is_string(), "{publish}");
    let fields = &publish["fields"];
    assert_eq!(fields["peer"], address.as_str());
    assert_eq!(fields["stream"], format!("{PEER_APP}/{PEER_NAME}").as_str());
    assert_eq!(fields["shard"], "0");
    let stopped = parsed
        .iter()
        .find(|l| l["fields"]["message"] == "shard stopped");
    assert!(stopped.is_some(), "{lines:?}");
}

#[test]
fn an_unknown_log_format_stops_startup_naming_the_flag_or_the_key() {
    let run = ringcast(&["serve", "--log-format", "xml"]);
    assert_eq!(run.status, Some(2), "{}", run.stderr);
    for part in [
        "--log-format",
        "unknown variant `xml`, expected `text` or `json`",
    ] {
        assert!(run.stderr.contains(part), "{part} in {}", run.stderr);
    }
    let file = ConfigFile::new("log-format", "log_format = \"xml\"\n");
    let run = ringcast(&["serve", "--config", file.path()]);
    assert_eq!(run.status, Some(2), "{}", run.stderr);
    for part in [
        file.path(),
        "log_format = \"xml\"",
        "expected `text` or `json`",
    ] {
        assert!(run.stderr.contains(part), "{part} in {}", run.stderr);
    }
}

#[test]
fn an_admin_token_file_guards_the_api_is_read_again_on_reload_and_a_bad_one_stops_startup() {
    let empty = ConfigFile::new("empty-token", "\n");
    let run = ringcast(&[
        "serve",
        "--http",
        "off",
        "--listen",
        "127.0.0.1:0",
        "--admin-token-file",
        empty.path(),
    ]);
    assert_eq!(run.status, Some(2), "{}", run.stderr);
    for part in ["--admin-token-file", empty.path(), "holds no token"] {
        assert!(run.stderr.contains(part), "{part} in {}", run.stderr);
    }
    let token = ConfigFile::new("token", "cli-token-0123456789\n");
    let args = [
        "--http",
        "off",
        "--listen",
        "127.0.0.1:0",
        "--shards",
        "1",
        "--admin",
        "127.0.0.1:0",
    ];
    let mut served = Served::start(&[&args[..], &["--admin-token-file", token.path()]].concat());
    let api = served.admin.expect("the admin address in the log");
    let bearer = |token: &str| format!("Authorization: Bearer {token}");
    let summary = |headers: &[&str]| admin::request_with(api, "GET", "/api/v1/summary", headers).0;
    assert_eq!(summary(&[]), 401);
    assert_eq!(summary(&[&bearer("cli-token-0123456789")]), 200);
    // A new token in the file takes over on reload.
    std::fs::write(&token.0, "cli-token-rotated-9876\n").expect("rewritten");
    served.signal(libc::SIGHUP);
    served.wait_for_line("configuration reloaded");
    assert_eq!(summary(&[&bearer("cli-token-0123456789")]), 401);
    assert_eq!(summary(&[&bearer("cli-token-rotated-9876")]), 200);
    served.signal(libc::SIGTERM);
    assert!(served.wait().0.success());
}

#[test]
fn a_bad_origin_url_stops_startup_naming_it() {
    let run = ringcast(&["serve", "--origin", "rtmp//origin.example/live"]);
    assert_eq!(run.status, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("--origin"), "{}", run.stderr);
    assert!(
        run.stderr.contains("rtmp//origin.example/live"),
        "{}",
        run.stderr
    );
    let file = ConfigFile::new("bad-origin", "[app.live]\norigins = [\"udp://x\"]\n");
    let run = ringcast(&["serve", "--config", file.path()]);
    assert_eq!(run.status, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("app.live.origins"), "{}", run.stderr);
    assert!(run.stderr.contains("udp://x"), "{}", run.stderr);
}

#[test]
fn the_readme_config_example_is_a_valid_config() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let (_, rest) = readme
        .split_once("The file (every key optional; defaults shown):")
        .expect("the README's config example");
    let example = rest
        .split_once("```toml\n")
        .and_then(|(_, block)| block.split_once("```"))
        .map(|(toml, _)| toml)
        .expect("a toml block");
    assert!(example.contains("[access]"), "{example}");
    let file = ConfigFile::new("readme", example);
    let check = ringcast(&["check-config", file.path()]);
    assert_eq!(check.status, Some(0), "{}", check.stderr);
}

#[test]
fn print_config_prints_what_check_config_accepts() {
    let run = ringcast(&[
        "serve",
        "--print-config",
        "--chunk-size",
        "8192",
        "--admin",
        "off",
        "--log-format",
        "json",
    ]);
    assert_eq!(run.status, Some(0), "{}", run.stderr);
    assert!(
        run.stdout.contains("\nlog_format = \"json\"\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("\nchunk_size = 8192\n"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("\nadmin = \"off\"\n"), "{}", run.stdout);
    let file = ConfigFile::new("printed", &run.stdout);
    let check = ringcast(&["check-config", file.path()]);
    assert_eq!(check.status, Some(0), "{}", check.stderr);
    assert_eq!(check.stdout, format!("{}: ok\n", file.path()));
    // Printing what was read prints the same again.
    let again = ringcast(&["serve", "--print-config", "--config", file.path()]);
    assert_eq!(again.stdout, run.stdout);
}

#[test]
fn check_config_names_the_bad_key_and_exits_2() {
    let file = ConfigFile::new("bad-admin", "[player]\nqueue_bytes_max = 0\n");
    let run = ringcast(&["check-config", file.path()]);
    assert_eq!(run.status, Some(2), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(
        run.stderr
            .contains("player.queue_bytes_max = 0 is out of range"),
        "{}",
        run.stderr
    );
}

#[test]
fn doctor_prints_each_finding_with_a_verdict() {
    let run = ringcast(&["doctor", "--shards", "1", "--admin", "off"]);
    assert!(matches!(run.status, Some(0 | 1)), "{}", run.stderr);
    let report = run.stdout;
    for subject in [
        "io_uring",
        "open files",
        "net.core.somaxconn",
        "net.ipv4.tcp_wmem",
        "cpus",
    ] {
        let line = report
            .lines()
            .find(|l| l.contains(subject))
            .unwrap_or_else(|| panic!("{subject} missing from\n{report}"));
        assert!(
            ["ok ", "warn ", "fail "]
                .iter()
                .any(|v| line.starts_with(v)),
            "{line}"
        );
    }
    let failed = report.lines().any(|l| l.starts_with("fail "));
    assert_eq!(
        run.status == Some(1),
        failed,
        "exit status follows the failures:\n{report}"
    );
    assert!(
        report.lines().last().unwrap_or_default().ends_with(" fail"),
        "{report}"
    );
}
