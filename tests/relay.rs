//! Edge and origin on loopback: an edge pulls on demand from nginx-rtmp or
//! ringcast origins chosen by consistent hashing and fails over without
//! dropping players; pulls stop when idle and are reused meanwhile; pushes
//! reach an origin; edges chain; bad origins are skipped; a stream no
//! origin serves is answered not found; origin URLs are shown without
//! their query.
// Tests and benches fail by panicking on what they did not expect.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::admin::{get_json, scrape, sum};
use common::feeder::Feeder;
use common::media::frame_number;
use common::nginx::Nginx;
use common::{Client, players, start_server, wait_until};
use ringcast::protocol::url::RtmpUrl;
use ringcast::relay::origins;
use ringcast::server::ServerHandle;
use ringcast::session::{ClientEvent, status as codes};
use ringcast::shard::stats::ShardSnapshot;

fn edge(origins: &[String], tweak: impl FnOnce(&mut ringcast::config::Config)) -> ServerHandle {
    let origins: Vec<RtmpUrl> = origins
        .iter()
        .map(|u| RtmpUrl::parse(u).expect("url"))
        .collect();
    start_server(2, |c| {
        c.relay.origins = origins;
        tweak(c);
    })
}

fn url(server: &ServerHandle) -> String {
    format!("rtmp://{}/live", server.local_addrs()[0])
}

/// The frame numbers a player gets next, at least `n` of them.
fn next_frames(player: &mut Client, n: usize) -> Vec<u32> {
    player
        .collect_media(n)
        .iter()
        .filter_map(frame_number)
        .collect()
}

#[test]
fn an_edge_pulls_from_nginx_and_fails_over_to_the_second_without_dropping_players() {
    let mut first = Nginx::start();
    let mut second = Nginx::start();
    let _feeder = Feeder::start(&[first.addr, second.addr], "cam");
    let edge = edge(&[first.url(), second.url()], |_| {});
    let mut player = Client::connect(edge.local_addrs()[0], "live");
    player.play("cam");
    assert!(
        next_frames(&mut player, 20).len() >= 15,
        "frames arrive from the origin"
    );
    // Kill the origin the edge chose by hashing.
    let urls: Vec<RtmpUrl> = [first.url(), second.url()]
        .iter()
        .map(|u| RtmpUrl::parse(u).expect("url"))
        .collect();
    let chosen = origins::order("cam", &urls)[0].port;
    if chosen == first.addr.port() {
        first.kill();
    } else {
        second.kill();
    }
    // The same player goes on receiving from the other origin.
    let frames = next_frames(&mut player, 60);
    assert!(
        frames.len() >= 50,
        "frames resumed after failover: {frames:?}"
    );
    edge.shutdown();
}

#[test]
fn edges_pick_the_same_ringcast_origin_and_fail_over_together() {
    let origin_a = start_server(1, |_| {});
    let origin_b = start_server(1, |_| {});
    let _feeder = Feeder::start(&[origin_a.local_addrs()[0], origin_b.local_addrs()[0]], "s");
    let list = [url(&origin_a), url(&origin_b)];
    let edges: Vec<ServerHandle> = (0..3).map(|_| edge(&list, |_| {})).collect();
    let mut viewers: Vec<Client> = edges
        .iter()
        .map(|e| {
            let mut p = Client::connect(e.local_addrs()[0], "live");
            p.play("s");
            p
        })
        .collect();
    for viewer in &mut viewers {
        assert!(next_frames(viewer, 10).len() >= 8);
    }
    // All three edges pull from one origin, the same one.
    let (a, b) = (players(&origin_a), players(&origin_b));
    assert!(
        (a, b) == (3, 0) || (a, b) == (0, 3),
        "pulls per origin: {a}, {b}"
    );
    let (chosen, other) = if a == 3 {
        (origin_a, origin_b)
    } else {
        (origin_b, origin_a)
    };
    chosen.shutdown();
    wait_until("every edge pulls from the other origin", || {
        players(&other) == 3
    });
    for viewer in &mut viewers {
        assert!(next_frames(viewer, 10).len() >= 8, "the same viewers go on");
    }
    // Each edge counted the move, and says where it pulls from now.
    for e in &edges {
        let total: ShardSnapshot = e.stats().into_iter().sum();
        assert_eq!(total.relay_pulls, 1);
        assert!(total.relay_failovers >= 1, "{total:?}");
        assert!(total.relay_reconnects >= 1, "{total:?}");
    }
    let admin = edges[0].admin_addr().expect("admin API on");
    let streams = get_json(admin, "/api/v1/streams");
    let s = &streams["streams"][0];
    assert_eq!(s["source"], "pull", "{streams}");
    assert_eq!(s["origin_url"], url(&other).as_str());
    assert_eq!(s["relay_state"], "live");
    assert_eq!(s["players"], 1);
    let metrics = scrape(admin);
    assert!(sum(&metrics, "ringcast_relay_failovers_total") >= 1.0);
    assert_eq!(sum(&metrics, "ringcast_relay_pulls"), 1.0);
    for e in edges {
        e.shutdown();
    }
    other.shutdown();
}

#[test]
fn an_idle_pull_is_reused_within_its_window_and_stopped_after_it() {
    let origin = start_server(1, |_| {});
    let _feeder = Feeder::start(&[origin.local_addrs()[0]], "cam");
    let edge = edge(&[url(&origin)], |c| {
        c.relay.timing.idle_stop = Duration::from_millis(700)
    });
    let addr = edge.local_addrs()[0];
    let mut first = Client::connect(addr, "live");
    first.play("cam");
    assert!(!next_frames(&mut first, 5).is_empty());
    let accepted = origin.stats()[0].connections_accepted;
    drop(first);
    std::thread::sleep(Duration::from_millis(150));
    let mut second = Client::connect(addr, "live");
    second.play("cam");
    assert!(!next_frames(&mut second, 5).is_empty());
    assert_eq!(
        origin.stats()[0].connections_accepted,
        accepted,
        "the live pull was reused"
    );
    drop(second);
    wait_until("the pull stops", || players(&origin) == 0);
    edge.shutdown();
    origin.shutdown();
}

#[test]
fn a_stream_published_to_an_edge_is_pushed_to_ringcast_and_nginx_origins() {
    let origin = start_server(1, |_| {});
    let nginx = Nginx::start();
    let targets = vec![
        RtmpUrl::parse(&url(&origin)).expect("url"),
        RtmpUrl::parse(&nginx.url()).expect("url"),
    ];
    let edge = start_server(2, |c| c.relay.push = targets);
    let _feeder = Feeder::start(&[edge.local_addrs()[0]], "pushed");
    for addr in [origin.local_addrs()[0], nginx.addr] {
        let mut player = Client::connect(addr, "live");
        player.play("pushed");
        assert!(
            next_frames(&mut player, 20).len() >= 15,
            "frames reached {addr}"
        );
    }
    edge.shutdown();
    origin.shutdown();
}

#[test]
fn edges_chain_an_edge_of_an_edge_plays_the_origin() {
    let origin = start_server(1, |_| {});
    let _feeder = Feeder::start(&[origin.local_addrs()[0]], "deep");
    let first = edge(&[url(&origin)], |_| {});
    let second = edge(&[url(&first)], |_| {});
    let mut player = Client::connect(second.local_addrs()[0], "live");
    player.play("deep");
    let frames = next_frames(&mut player, 20);
    assert!(
        frames.windows(2).all(|w| w[1] == w[0] + 1),
        "in order: {frames:?}"
    );
    second.shutdown();
    first.shutdown();
    origin.shutdown();
}

#[test]
fn an_origin_that_answers_garbage_is_skipped_and_the_edge_stays_up() {
    let garbage = TcpListener::bind("127.0.0.1:0").expect("bind");
    let garbage_addr = garbage.local_addr().expect("addr");
    std::thread::spawn(move || {
        for mut socket in garbage.incoming().flatten() {
            let _ = std::io::Write::write_all(&mut socket, b"HTTP/1.1 400 Bad Request\r\n\r\n");
        }
    });
    let origin = start_server(1, |_| {});
    let list = [format!("rtmp://{garbage_addr}/live"), url(&origin)];
    let urls: Vec<RtmpUrl> = list
        .iter()
        .map(|u| RtmpUrl::parse(u).expect("url"))
        .collect();
    // A stream name that hashes to the garbage origin first.
    let name = (0..100)
        .map(|i| format!("g{i}"))
        .find(|n| origins::order(n, &urls)[0].port == garbage_addr.port())
        .expect("some name hashes there");
    let _feeder = Feeder::start(&[origin.local_addrs()[0]], &name);
    let edge = edge(&list, |_| {});
    let mut player = Client::connect(edge.local_addrs()[0], "live");
    player.play(&name);
    assert!(
        next_frames(&mut player, 10).len() >= 8,
        "frames from the good origin"
    );
    // Still serving others.
    let mut other = Client::connect(edge.local_addrs()[0], "live");
    other.play(&name);
    assert!(!next_frames(&mut other, 5).is_empty());
    edge.shutdown();
    origin.shutdown();
}

#[test]
fn a_pull_no_origin_serves_answers_not_found_and_the_next_play_pulls_again() {
    // One origin accepts and never answers (its pull times out), the
    // other is not up yet (its connect is refused).
    let mute = TcpListener::bind("127.0.0.1:0").expect("bind");
    let mute_addr = mute.local_addr().expect("addr");
    std::thread::spawn(move || {
        let held: Vec<_> = mute.incoming().flatten().collect();
        drop(held);
    });
    let origin_addr = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let list = [
        format!("rtmp://{mute_addr}/live"),
        format!("rtmp://{origin_addr}/live"),
    ];
    let edge = edge(&list, |c| {
        c.relay.timing.connect_timeout = Duration::from_millis(500);
    });
    // Several players while the pull waits on the mute origin, so that
    // (however the kernel spreads them) players on the pulling shard and
    // on the other both wait for it.
    let mut waiting: Vec<(Client, _)> = (0..6)
        .map(|_| {
            let mut player = Client::connect(edge.local_addrs()[0], "live");
            let id = player.play("later");
            (player, id)
        })
        .collect();
    let began = Instant::now();
    for (player, id) in &mut waiting {
        player.wait_for("StreamNotFound", |e| {
            matches!(e, ClientEvent::Status { stream_id, status }
                if stream_id == id && status.code == codes::PLAY_STREAM_NOT_FOUND)
        });
    }
    assert!(
        began.elapsed() < Duration::from_secs(3),
        "answered after {:?}",
        began.elapsed()
    );
    let (mut player, _) = waiting.remove(0);
    drop(waiting);
    wait_until("the pull ended", || {
        edge.stats().iter().map(|s| s.relay_pulls).sum::<u64>() == 0
    });
    assert_eq!(players(&edge), 0, "the player was let go");
    // The origin comes up: the same player's next play pulls it.
    let origin = start_server(1, |c| c.listen = vec![origin_addr]);
    let _feeder = Feeder::start(&[origin_addr], "later");
    player.play("later");
    assert!(
        next_frames(&mut player, 10).len() >= 8,
        "frames once the origin has the stream"
    );
    edge.shutdown();
    origin.shutdown();
}

#[test]
fn the_admin_api_shows_an_origin_without_its_query() {
    let origin = start_server(1, |_| {});
    let _feeder = Feeder::start(&[origin.local_addrs()[0]], "guarded");
    let edge = edge(&[format!("{}?token=s3cret", url(&origin))], |_| {});
    let mut player = Client::connect(edge.local_addrs()[0], "live");
    player.play("guarded");
    assert!(!next_frames(&mut player, 5).is_empty());
    let admin = edge.admin_addr().expect("admin API on");
    let streams = get_json(admin, "/api/v1/streams");
    assert_eq!(
        streams["streams"][0]["origin_url"],
        url(&origin).as_str(),
        "{streams}"
    );
    assert!(!streams.to_string().contains("s3cret"), "{streams}");
    edge.shutdown();
    origin.shutdown();
}
