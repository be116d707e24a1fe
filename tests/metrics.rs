//! `/metrics` against a live server: per-stream series with the values
//! of what was published and played, the cap on them (`_other` sums what
//! is past it), the process's own metrics, and `promtool check metrics`
//! (Debian's `prometheus` package) passing the whole exposition without a
//! word. Without promtool these tests fail; they never skip.
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

use common::admin::{get_json, metrics_text, promtool_check, series};
use common::media;
use common::{Client, start_server, wait_until};
use ringcast::protocol::MessageStreamId;

/// Players of `live/cam`.
const N: usize = 3;
/// Video frames sent (with as many audio frames), one keyframe first.
const FRAMES: u32 = 20;
const FRAME_BYTES: usize = 1500;
/// Messages `live/cam` receives: metadata, two sequence headers, frames.
const MESSAGES: u64 = 3 + 2 * FRAMES as u64;

/// The series of `name` for stream `app/stream`.
fn of(name: &str, app: &str, stream: &str) -> String {
    format!("{name}{{app=\"{app}\",stream=\"{stream}\"}}")
}

/// Scrapes, checks the text with promtool (passing, and silent), and
/// returns its series.
fn scrape_checked(admin: SocketAddr) -> HashMap<String, f64> {
    let text = metrics_text(admin);
    let (passed, said) = promtool_check(&text);
    assert!(
        passed && said.is_empty(),
        "promtool check metrics said:\n{said}\nof:\n{text}"
    );
    series(&text)
}

/// The metrics `tuning/grafana-ringcast.json` queries.
fn dashboard_metrics() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tuning/grafana-ringcast.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut names: Vec<String> = (dashboard["panels"].as_array().unwrap().iter())
        .flat_map(|panel| panel["targets"].as_array().cloned().unwrap_or_default())
        .flat_map(|target| {
            let expr = target["expr"].as_str().unwrap().to_owned();
            let words: Vec<String> = expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.starts_with("ringcast_") || w.starts_with("process_"))
                .map(str::to_owned)
                .collect();
            words
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    assert!(names.len() > 10, "{names:?}");
    names
}

/// Publishes `name` with its headers and `frames` video frames.
fn publish(addr: SocketAddr, name: &str, frames: u32) -> (Client, MessageStreamId) {
    let mut publisher = Client::connect(addr, "live");
    let id = publisher.publish(name);
    publisher.send(id, &media::avc_header());
    for n in 0..frames {
        publisher.send(id, &media::video(n, 1000, FRAME_BYTES));
    }
    (publisher, id)
}

#[test]
fn per_stream_series_show_a_publish_with_players_and_pass_promtool() {
    let server = start_server(2, |_| {});
    let addr = server.local_addrs()[0];
    let admin = server.admin_addr().expect("admin API on");
    let mut publisher = Client::connect(addr, "live");
    let stream_id = publisher.publish("cam");
    let mut players: Vec<Client> = (0..N)
        .map(|_| {
            let mut c = Client::connect(addr, "live");
            c.play("cam");
            c
        })
        .collect();
    let mut waiting = Client::connect(addr, "live");
    waiting.play("later");
    publisher.send_metadata(stream_id);
    publisher.send(stream_id, &media::avc_header());
    publisher.send(stream_id, &media::aac_header());
    for n in 0..FRAMES {
        publisher.send(stream_id, &media::video(n, 1000, FRAME_BYTES));
        publisher.send(stream_id, &media::audio(n));
    }
    for player in &mut players {
        player.collect_media(2 + 2 * FRAMES as usize);
    }

    let metrics = scrape_checked(admin);
    let cam = |name: &str| metrics[&of(name, "live", "cam")];
    assert_eq!(cam("ringcast_stream_players"), N as f64);
    assert_eq!(cam("ringcast_stream_up"), 1.0);
    assert_eq!(
        cam("ringcast_stream_received_frames_total"),
        MESSAGES as f64
    );
    let video_bytes = f64::from(FRAMES) * FRAME_BYTES as f64;
    assert!(cam("ringcast_stream_received_bytes_total") > video_bytes);
    let streams = get_json(admin, "/api/v1/streams");
    let listed = streams["streams"].as_array().unwrap();
    let source_shard = listed.iter().find(|s| s["name"] == "cam").unwrap()["source_shard"].clone();
    let info = format!(
        "ringcast_stream_source_info{{app=\"live\",stream=\"cam\",source=\"publisher\",shard=\"{source_shard}\"}}"
    );
    assert_eq!(metrics.get(&info), Some(&1.0), "{info} in {metrics:?}");
    let later = |name: &str| metrics.get(&of(name, "live", "later")).copied();
    assert_eq!(later("ringcast_stream_players"), Some(1.0));
    assert_eq!(
        later("ringcast_stream_up"),
        Some(0.0),
        "waiting for a source"
    );
    assert_eq!(later("ringcast_stream_received_frames_total"), None);
    assert_eq!(metrics["ringcast_metrics_other_streams"], 0.0);
    assert_eq!(metrics["ringcast_metrics_unanswered_shards"], 0.0);
    assert!(
        !metrics.keys().any(|s| s.contains("=\"_other\"")),
        "under the cap"
    );
    for name in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
    ] {
        assert!(metrics[name] > 0.0, "{name}");
    }
    assert!(metrics["process_open_fds"] <= metrics["process_max_fds"]);
    for name in dashboard_metrics() {
        let exported = |series: &String| series.split('{').next() == Some(name.as_str());
        assert!(
            metrics.keys().any(exported),
            "the dashboard's {name} in /metrics"
        );
    }

    // The publisher leaves: the stream is down while its players wait.
    drop(publisher);
    wait_until("live/cam down", || {
        let metrics = series(&metrics_text(admin));
        metrics.get(&of("ringcast_stream_up", "live", "cam")) == Some(&0.0)
    });
    let metrics = scrape_checked(admin);
    assert_eq!(
        metrics[&of("ringcast_stream_players", "live", "cam")],
        N as f64
    );
    server.shutdown();
}

#[test]
fn past_metrics_streams_max_the_streams_with_fewest_players_sum_as_other() {
    let server = start_server(2, |config| config.metrics_streams_max = 1);
    let addr = server.local_addrs()[0];
    let admin = server.admin_addr().expect("admin API on");
    // live/a: 2 players; live/b: 1; live/c: none. Each gets its header
    // and 3 frames (4 messages), after its players joined.
    let players: Vec<Client> = [("a", 2), ("b", 1)]
        .iter()
        .flat_map(|&(name, n)| {
            (0..n).map(move |_| {
                let mut c = Client::connect(addr, "live");
                c.play(name);
                c
            })
        })
        .collect();
    let publishers: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|name| publish(addr, name, 3))
        .collect();
    let other = |name: &str| of(name, "_other", "_other");
    wait_until("every stream's messages counted", || {
        let metrics = series(&metrics_text(admin));
        let a = metrics.get(&of("ringcast_stream_received_frames_total", "live", "a"));
        let rest = metrics.get(&other("ringcast_stream_received_frames_total"));
        a == Some(&4.0) && rest == Some(&8.0)
    });
    let metrics = scrape_checked(admin);
    assert_eq!(metrics[&of("ringcast_stream_players", "live", "a")], 2.0);
    assert_eq!(metrics[&of("ringcast_stream_up", "live", "a")], 1.0);
    assert_eq!(metrics[&other("ringcast_stream_players")], 1.0);
    assert_eq!(metrics[&other("ringcast_stream_up")], 2.0, "b and c are up");
    assert_eq!(metrics["ringcast_metrics_other_streams"], 2.0);
    let listed: Vec<&String> = (metrics.keys())
        .filter(|s| s.starts_with("ringcast_stream_players{"))
        .collect();
    assert_eq!(listed.len(), 2, "live/a and _other only: {listed:?}");
    drop((players, publishers));
    server.shutdown();
}
