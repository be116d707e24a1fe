//! Access control end to end: stream keys, address lists, HTTP hooks
//! (allow, deny, redirect, timeout, fail-open, the `*_done` notices), the
//! per-address connection cap, the publisher and stream caps, and a
//! SIGHUP reload that changes the rules under a playing client.
// Tests and benches fail by panicking on what they did not expect.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::hooks::{Answer, HookService};
use common::media::{avc_header, frame_number, video};
use common::served::Served;
use common::web::WebPlayer;
use common::{Client, admin, start_server};
use ringcast::config::Network;
use ringcast::server::ServerHandle;
use ringcast::session::ClientEvent;
use ringcast::shard::stats::ShardSnapshot;
use serde_json::Value;

const START: &str = "NetStream.Publish.Start";
const BAD_NAME: &str = "NetStream.Publish.BadName";
const PLAY_START: &str = "NetStream.Play.Start";
const PLAY_FAILED: &str = "NetStream.Play.Failed";
const DEADLINE: Duration = Duration::from_secs(10);

fn totals(server: &ServerHandle) -> ShardSnapshot {
    server.stats().into_iter().sum()
}

fn connect(server: &ServerHandle, app: &str) -> Client {
    Client::connect(server.local_addrs()[0], app)
}

/// A connection whose `connect` carries `app` and a tcUrl with `query`.
fn connect_with_query(
    addr: SocketAddr,
    app: &str,
    query: &str,
) -> Result<Client, ringcast::protocol::amf::Value> {
    let socket = TcpStream::connect(addr).expect("connect");
    Client::try_connect(socket, app, &format!("rtmp://{addr}/{app}?{query}"))
}

/// Publishes frames `frames` on `id` and checks `player` gets every one.
fn flows(
    publisher: &mut Client,
    id: ringcast::protocol::MessageStreamId,
    player: &mut Client,
    frames: std::ops::Range<u32>,
) {
    let expected: Vec<u32> = frames.clone().collect();
    for n in frames {
        publisher.send(id, &video(n, 30, 200));
    }
    let deadline = Instant::now() + DEADLINE;
    let mut got = Vec::new();
    while got.len() < expected.len() {
        assert!(Instant::now() < deadline, "got only {got:?}");
        player.pump(Duration::from_millis(50));
        got.extend(player.take_media().iter().filter_map(frame_number));
    }
    assert_eq!(got, expected, "every frame, in order");
}

#[test]
fn keys_guard_publish_and_may_come_in_the_stream_name_or_the_tc_url() {
    let server = start_server(1, |c| {
        c.access.default.publish.keys = vec!["s3cret".into()];
    });
    let addr = server.local_addrs()[0];
    let mut publisher = connect(&server, "live");
    assert_eq!(publisher.publish_status("cam"), BAD_NAME, "no key");
    assert_eq!(
        publisher.publish_status("cam?key=wrong"),
        BAD_NAME,
        "wrong key"
    );
    assert_eq!(publisher.publish_status("cam?key=s3cret"), START);
    let mut by_url = connect_with_query(addr, "live", "key=s3cret").expect("connect");
    assert_eq!(by_url.publish_status("other"), START, "key in the tcUrl");
    assert_eq!(totals(&server).auth_denials, 2);

    // A keyed name is the plain stream; playing it needs no key here.
    let mut owner = connect(&server, "live");
    let id = owner.create_stream();
    owner
        .session
        .publish(id, "tv?key=s3cret")
        .expect("connected");
    owner.wait_for("Publish.Start", ClientEvent::is_publish_start);
    owner.send(id, &avc_header());
    let mut viewer = connect(&server, "live");
    viewer.play("tv");
    flows(&mut owner, id, &mut viewer, 0..20);
}

#[test]
fn keys_sent_percent_encoded_match_over_rtmp_and_http_flv() {
    let server = start_server(1, |c| {
        c.access.default.publish.keys = vec!["a+b".into()];
        c.access.default.play.keys = vec!["c d".into()];
    });
    let mut publisher = connect(&server, "live");
    assert_eq!(publisher.publish_status("cam?key=a%2Bb"), START);
    let http = server.http_addr().expect("an HTTP listener");
    let refused = WebPlayer::get(http, "/live/cam.flv?key=c+d").err();
    assert_eq!(refused.map(|r| r.status), Some(403), "+ is not a space");
    assert!(WebPlayer::get(http, "/live/cam.flv?key=c%20d").is_ok());
}

#[test]
fn address_lists_deny_first_then_admit_only_the_allowed() {
    let server = start_server(2, |c| {
        let net = |text: &str| text.parse::<Network>().unwrap();
        c.access.default.publish.allow = vec![net("10.0.0.0/8")];
        c.access.default.play.deny = vec![net("127.0.0.0/8")];
        // One app with its own rules: loopback may publish and play there.
        let mut open = c.access.default.clone();
        open.publish.allow = vec![net("127.0.0.1")];
        open.play.deny = vec![];
        c.access.apps.insert("open".into(), open);
    });
    let mut client = connect(&server, "live");
    assert_eq!(
        client.publish_status("cam"),
        BAD_NAME,
        "not in publish_allow"
    );
    assert_eq!(client.play_status("cam"), PLAY_FAILED, "in play_deny");
    let mut open = connect(&server, "open");
    assert_eq!(open.publish_status("cam"), START);
    let mut player = connect(&server, "open");
    assert_eq!(player.play_status("cam"), PLAY_START);
    assert_eq!(totals(&server).auth_denials, 2);
}

#[test]
fn hooks_allow_deny_rename_and_time_out_closed() {
    let service = HookService::start(|call| match call["stream"].as_str().unwrap_or_default() {
        "bad" => Answer::Status(403),
        "moved" => Answer::Redirect("rtmp://elsewhere/live/renamed?x=1"),
        "slow" => Answer::Hang,
        _ if call["args"] == "deny=1" => Answer::Status(401),
        _ => Answer::Status(200),
    });
    let server = start_server(2, |c| {
        let hooks = &mut c.access.default.hooks;
        hooks.on_connect = vec![service.url("/connect")];
        hooks.on_publish = vec![service.url("/publish")];
        hooks.on_play = vec![service.url("/play")];
        hooks.on_publish_done = vec![service.url("/publish_done")];
        hooks.on_play_done = vec![service.url("/play_done")];
        c.access.hook_timeout = Duration::from_millis(300);
    });
    let addr = server.local_addrs()[0];

    let rejected = connect_with_query(addr, "live", "deny=1");
    assert!(rejected.is_err(), "on_connect answered 401");
    let asked = service.wait_for("on_connect", None);
    assert_eq!(asked["app"], "live");
    assert_eq!(asked["ip"], "127.0.0.1");
    assert_eq!(asked["tcUrl"], format!("rtmp://{addr}/live?deny=1"));

    let mut publisher = connect(&server, "live");
    assert_eq!(publisher.publish_status("bad"), BAD_NAME);
    assert_eq!(
        publisher.publish_status("slow"),
        BAD_NAME,
        "a timeout denies"
    );
    let id = publisher.create_stream();
    publisher
        .session
        .publish(id, "ok?token=abc")
        .expect("connected");
    publisher.wait_for("Publish.Start", ClientEvent::is_publish_start);
    let call = service.wait_for("on_publish", Some("ok"));
    assert_eq!(call["app"], "live");
    assert_eq!(call["args"], "token=abc");
    assert_eq!(
        call["client"],
        publisher.socket.local_addr().unwrap().to_string()
    );
    publisher.send(id, &avc_header());

    let mut player = connect(&server, "live");
    player.play("ok");
    flows(&mut publisher, id, &mut player, 0..15);

    // A redirect renames: the publisher of "moved" is heard on "renamed".
    let mut mover = connect(&server, "live");
    let moved = mover.create_stream();
    mover.session.publish(moved, "moved").expect("connected");
    mover.wait_for("Publish.Start", ClientEvent::is_publish_start);
    mover.send(moved, &avc_header());
    let mut watcher = connect(&server, "live");
    watcher.play("renamed");
    flows(&mut mover, moved, &mut watcher, 0..10);

    let stats = totals(&server);
    assert_eq!(stats.auth_denials, 3, "connect, bad, slow");
    assert_eq!(stats.hook_failures, 1, "slow");

    // The end of a publish and of a play is told.
    drop(player);
    let done = service.wait_for("on_play_done", Some("ok"));
    assert_eq!(done["app"], "live");
    drop(publisher);
    service.wait_for("on_publish_done", Some("ok"));
}

#[test]
fn a_failing_hook_allows_when_fail_open() {
    let service = HookService::start(|_| Answer::Hang);
    let server = start_server(1, |c| {
        c.access.default.hooks.on_publish = vec![service.url("/publish")];
        c.access.hook_timeout = Duration::from_millis(200);
        c.access.hook_fail_open = true;
    });
    let mut publisher = connect(&server, "live");
    assert_eq!(publisher.publish_status("cam"), START);
    // Nobody listens on the discard port: a refused connection fails too.
    let server = start_server(1, |c| {
        c.access.default.hooks.on_play = vec!["http://127.0.0.1:9/play".parse().unwrap()];
        c.access.hook_fail_open = true;
    });
    let mut player = connect(&server, "live");
    assert_eq!(player.play_status("cam"), PLAY_START);
    assert_eq!(totals(&server).hook_failures, 1);
    assert_eq!(totals(&server).auth_denials, 0);
}

/// A connection from `source` (any 127/8 address is local).
fn connect_from(source: &str, to: SocketAddr) -> TcpStream {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    let from: SocketAddr = format!("{source}:0").parse().unwrap();
    socket.bind(&from.into()).expect("bind the source");
    socket.connect(&to.into()).expect("connect");
    socket.into()
}

/// Whether the server closes `socket` without a word (within a second).
fn closed_at_once(socket: &mut TcpStream) -> bool {
    socket
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let mut byte = [0u8; 1];
    matches!(socket.read(&mut byte), Ok(0) | Err(_)) && {
        // A timeout is not a close.
        socket
            .set_read_timeout(Some(Duration::from_millis(1)))
            .unwrap();
        !matches!(socket.read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }
}

#[test]
fn the_per_address_cap_closes_the_extra_connection_and_no_other() {
    let server = start_server(2, |c| c.connections_per_ip_max = 3);
    let addr = server.local_addrs()[0];
    let tc_url = format!("rtmp://{addr}/live");
    let mut publisher =
        Client::try_connect(connect_from("127.0.0.1", addr), "live", &tc_url).expect("first");
    let id = publisher.publish("cam");
    publisher.send(id, &avc_header());
    let mut player =
        Client::try_connect(connect_from("127.0.0.1", addr), "live", &tc_url).expect("second");
    player.play("cam");
    let third =
        Client::try_connect(connect_from("127.0.0.1", addr), "live", &tc_url).expect("third");
    let mut extra = connect_from("127.0.0.1", addr);
    assert!(
        closed_at_once(&mut extra),
        "the fourth from 127.0.0.1 is closed"
    );
    assert_eq!(totals(&server).connections_refused, 1);

    // Another address is counted apart; the first three go on.
    let mut other = Client::try_connect(connect_from("127.0.0.2", addr), "live", &tc_url)
        .expect("another address");
    other.play("cam");
    flows(&mut publisher, id, &mut player, 0..10);
    let deadline = Instant::now() + DEADLINE;
    let mut seen = Vec::new();
    while seen.len() < 10 {
        assert!(
            Instant::now() < deadline,
            "the other address gets the frames: {seen:?}"
        );
        other.pump(Duration::from_millis(50));
        seen.extend(other.take_media().iter().filter_map(frame_number));
    }
    // A place freed is a place to take.
    drop(third);
    let deadline = Instant::now() + DEADLINE;
    while server.peers().connections("127.0.0.1".parse().unwrap()) > 2 {
        assert!(
            Instant::now() < deadline,
            "the closed connection gives its place back"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    Client::try_connect(connect_from("127.0.0.1", addr), "live", &tc_url).expect("a new third");
}

#[test]
fn publisher_and_stream_caps_refuse_the_one_too_many() {
    let server = start_server(2, |c| {
        c.publishers_max = 2;
        c.streams_max = 2;
    });
    let mut a = connect(&server, "live");
    let mut b = connect(&server, "live");
    let mut c = connect(&server, "live");
    assert_eq!(a.publish_status("one"), START);
    assert_eq!(b.publish_status("two"), START);
    assert_eq!(c.publish_status("three"), BAD_NAME);
    assert_eq!(totals(&server).limit_refusals, 1);
    drop(a);
    let deadline = Instant::now() + DEADLINE;
    while totals(&server).publishers > 1 {
        assert!(
            Instant::now() < deadline,
            "the first publisher's end is seen"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(c.publish_status("three"), START, "room again");
}

#[test]
fn sighup_and_the_admin_api_change_the_rules_without_dropping_a_playing_client() {
    let path = std::env::temp_dir().join(format!("ringcast-access-{}.toml", std::process::id()));
    let base = "listen = [\"127.0.0.1:0\"]\nshards = 2\nadmin = \"127.0.0.1:0\"\n";
    std::fs::write(&path, base).unwrap();
    let mut served = Served::start(&["--config".as_ref(), path.as_os_str()]);
    let addr = served.addr;
    let admin_api = served.admin.expect("the admin API is on");

    let mut publisher = Client::connect(addr, "live");
    let id = publisher.publish("cam");
    publisher.send(id, &avc_header());
    let mut player = Client::connect(addr, "live");
    player.play("cam");
    flows(&mut publisher, id, &mut player, 0..10);

    // Now playing needs a key, and the listen address "changes".
    let keyed = "listen = [\"127.0.0.1:1\"]\nshards = 2\nadmin = \"127.0.0.1:0\"\n\
                 [access]\nplay_keys = [\"k1\"]\n";
    std::fs::write(&path, keyed).unwrap();
    served.signal(libc::SIGHUP);
    let line =
        served.wait_for_line("configuration reloaded; these keys changed and need a restart");
    assert!(line.contains("listen"), "{line}");
    // Every shard has it once each logged it.
    served.wait_for_line("ringcast::shard: configuration reloaded");
    served.wait_for_line("ringcast::shard: configuration reloaded");

    let mut newcomer = Client::connect(addr, "live");
    assert_eq!(newcomer.play_status("cam"), PLAY_FAILED, "no key now");
    assert_eq!(newcomer.play_status("cam?key=k1"), PLAY_START);
    // The player from before the reload never stopped receiving.
    flows(&mut publisher, id, &mut player, 10..30);

    // A broken file changes nothing and says why.
    std::fs::write(&path, "chunk_size = 1\n").unwrap();
    served.signal(libc::SIGHUP);
    let line = served.wait_for_line("SIGHUP");
    assert!(line.contains("chunk_size = 1 is out of range"), "{line}");
    let mut later = Client::connect(addr, "live");
    assert_eq!(
        later.play_status("cam?key=k1"),
        PLAY_START,
        "the keyed rules still hold"
    );
    flows(&mut publisher, id, &mut player, 30..40);

    // POST /api/v1/reload is the same reload: another key now.
    std::fs::write(&path, format!("{base}[access]\nplay_keys = [\"k2\"]\n")).unwrap();
    let (status, body) = admin::request(admin_api, "POST", "/api/v1/reload");
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["reloaded"], true);
    assert_eq!(answer["restart_required"], serde_json::json!([]));
    served.wait_for_line("ringcast::shard: configuration reloaded");
    served.wait_for_line("ringcast::shard: configuration reloaded");
    let mut last = Client::connect(addr, "live");
    assert_eq!(last.play_status("cam?key=k1"), PLAY_FAILED);
    assert_eq!(last.play_status("cam?key=k2"), PLAY_START);
    std::fs::write(&path, "[access]\nplay_allow = [\"nowhere\"]\n").unwrap();
    let (status, body) = admin::request(admin_api, "POST", "/api/v1/reload");
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("access.play_allow = \\\"nowhere\\\""),
        "{body}"
    );
    flows(&mut publisher, id, &mut player, 40..50);
    // Both refusals show in /metrics.
    let metrics = admin::scrape(admin_api);
    assert_eq!(admin::sum(&metrics, "ringcast_auth_denials_total"), 2.0);
    assert_eq!(admin::sum(&metrics, "ringcast_hook_failures_total"), 0.0);
    let _ = std::fs::remove_file(&path);
}
