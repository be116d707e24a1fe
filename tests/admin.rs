//! The admin API and `/metrics` against a live two-shard server: after a
//! publish with N players, every endpoint's values are checked against
//! what was sent (counts exact where the server's accounting is, bounds
//! where time decides), then kicks close the right connections.
// Tests and benches fail by panicking on what they did not expect.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::admin::{exchange, get_json, request, request_with, scrape, sum};
use common::media;
use common::{Client, start_server, wait_until};
use ringcast::config::AdminToken;
use ringcast::protocol::amf::Value;
use serde_json::Value as Json;

/// Players of the stream.
const N: usize = 6;
/// Video frames sent (with as many audio frames), one keyframe first, so a
/// shard that subscribes late still gets every frame in its snapshot.
const FRAMES: u32 = 30;
const FRAME_BYTES: usize = 2000;
/// Messages each player gets: metadata, two sequence headers, the frames.
const MESSAGES: u64 = 3 + 2 * FRAMES as u64;

fn u(json: &Json) -> u64 {
    json.as_u64()
        .unwrap_or_else(|| panic!("a count, not {json}"))
}

struct Scene {
    server: ringcast::server::ServerHandle,
    admin: SocketAddr,
    publisher: Client,
    stream_id: ringcast::protocol::MessageStreamId,
    players: Vec<Client>,
}

/// A publisher of `live/cam` and N players that got every message.
fn publish_to_players() -> Scene {
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
    let meta = Value::EcmaArray(vec![
        ("width".into(), Value::Number(640.0)),
        ("height".into(), Value::Number(360.0)),
        ("framerate".into(), Value::Number(30.0)),
    ]);
    publisher
        .session
        .send_metadata(stream_id, meta)
        .expect("publishing");
    publisher.send(stream_id, &media::avc_header());
    publisher.send(stream_id, &media::aac_header());
    for n in 0..FRAMES {
        publisher.send(stream_id, &media::video(n, 1000, FRAME_BYTES));
        publisher.send(stream_id, &media::audio(n));
    }
    for player in &mut players {
        player.collect_media(2 + 2 * FRAMES as usize);
    }
    // A shard counts bytes sent when its write completes, which can be
    // after the player has read them.
    let video_bytes = u64::from(FRAMES) * FRAME_BYTES as u64;
    wait_until("every write counted", || {
        let sent: u64 = server.stats().iter().map(|s| s.bytes_out).sum();
        sent > N as u64 * video_bytes
    });
    Scene {
        server,
        admin,
        publisher,
        stream_id,
        players,
    }
}

#[test]
fn stats_json_and_metrics_reflect_a_publish_with_n_players() {
    let scene = publish_to_players();
    let admin = scene.admin;
    let n = N as u64;

    let before = get_json(admin, "/api/v1/summary");
    assert_eq!(before["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(u(&before["shards"]), 2);
    assert_eq!(u(&before["connections"]), n + 1);
    assert_eq!(u(&before["publishers"]), 1);
    assert_eq!(u(&before["players"]), n);
    assert_eq!(u(&before["streams"]), 1);
    assert!(u(&before["bytes_in"]) > u64::from(FRAMES) * FRAME_BYTES as u64);
    assert!(u(&before["bytes_out"]) > n * u64::from(FRAMES) * FRAME_BYTES as u64);

    let streams = get_json(admin, "/api/v1/streams");
    assert_eq!(streams["unanswered_shards"], serde_json::json!([]));
    let list = streams["streams"].as_array().expect("a list");
    assert_eq!(list.len(), 1, "{streams}");
    let cam = &list[0];
    assert_eq!(
        (cam["app"].as_str(), cam["name"].as_str()),
        (Some("live"), Some("cam"))
    );
    assert_eq!(cam["source"], "publisher");
    let publisher_addr = scene.publisher.socket.local_addr().unwrap().to_string();
    assert_eq!(cam["publisher_address"], publisher_addr.as_str());
    assert_eq!(cam["video_codec"], "h264");
    assert_eq!(cam["audio_codec"], "aac");
    assert_eq!((u(&cam["width"]), u(&cam["height"])), (640, 360));
    assert_eq!(cam["fps"].as_f64(), Some(30.0));
    assert_eq!(u(&cam["players"]), n);
    let per_shard: u64 = (cam["players_per_shard"].as_array().unwrap().iter())
        .map(|p| u(&p["players"]))
        .sum();
    assert_eq!(per_shard, n);
    let video_bytes = u64::from(FRAMES) * FRAME_BYTES as u64;
    assert!(u(&cam["bytes_in"]) > video_bytes, "{cam}");
    assert_eq!(u(&cam["frames_in"]), MESSAGES, "{cam}");
    assert!(
        u(&cam["gop_cache_bytes"]) > video_bytes,
        "the whole GOP: {cam}"
    );
    assert!(cam["uptime_s"].as_f64().unwrap() >= 0.0);

    let shards = get_json(admin, "/api/v1/shards");
    let shards = shards["shards"].as_array().expect("a list");
    assert_eq!(shards.len(), 2);
    let players_by_shard: Vec<u64> = shards.iter().map(|s| u(&s["players"])).collect();
    assert_eq!(players_by_shard.iter().sum::<u64>(), n);

    let metrics = scrape(admin);
    assert_eq!(metrics["ringcast_shards"], 2.0);
    assert_eq!(sum(&metrics, "ringcast_players"), n as f64);
    for (shard, players) in players_by_shard.iter().enumerate() {
        let series = format!("ringcast_players{{shard=\"{shard}\"}}");
        assert_eq!(metrics[&series], *players as f64, "{series}");
    }
    assert_eq!(sum(&metrics, "ringcast_publishers"), 1.0);
    assert_eq!(sum(&metrics, "ringcast_streams"), 1.0);
    assert_eq!(sum(&metrics, "ringcast_connections"), (n + 1) as f64);
    assert_eq!(
        sum(&metrics, "ringcast_messages_received_total"),
        MESSAGES as f64
    );
    assert_eq!(
        sum(&metrics, "ringcast_messages_sent_total"),
        (n * MESSAGES) as f64,
        "every player was queued every message once"
    );
    assert_eq!(sum(&metrics, "ringcast_frames_dropped_total"), 0.0);
    assert_eq!(sum(&metrics, "ringcast_auth_denials_total"), 0.0);
    assert_eq!(
        sum(&metrics, "ringcast_connections_accepted_total"),
        (n + 1) as f64
    );
    let after = get_json(admin, "/api/v1/summary");
    for (metric, field) in [
        ("ringcast_received_bytes_total", "bytes_in"),
        ("ringcast_sent_bytes_total", "bytes_out"),
    ] {
        let scraped = sum(&metrics, metric);
        assert!(
            u(&before[field]) as f64 <= scraped && scraped <= u(&after[field]) as f64,
            "{metric} {scraped} between the summaries' {field} {} and {}",
            before[field],
            after[field]
        );
    }
    scene.server.shutdown();
}

#[test]
fn clients_are_paged_and_name_their_roles() {
    let scene = publish_to_players();
    let admin = scene.admin;
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let page = get_json(admin, &format!("/api/v1/clients?offset={offset}&limit=2"));
        assert_eq!(u(&page["total"]), N as u64 + 1);
        assert_eq!(u(&page["limit"]), 2);
        let clients = page["clients"].as_array().unwrap().clone();
        if clients.is_empty() {
            break;
        }
        assert!(clients.len() <= 2);
        offset += clients.len();
        seen.extend(clients);
    }
    let mut ids: Vec<&str> = seen.iter().map(|c| c["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), N + 1, "every connection once: {seen:?}");
    let role = |c: &Json| c["roles"][0]["role"].as_str().map(str::to_owned);
    let publisher = seen
        .iter()
        .find(|c| role(c).as_deref() == Some("publisher"))
        .expect("the publisher");
    assert_eq!(publisher["roles"][0]["stream"], "live/cam");
    assert_eq!(publisher["app"], "live");
    let video_bytes = u64::from(FRAMES) * FRAME_BYTES as u64;
    assert!(u(&publisher["bytes_in"]) > video_bytes, "{publisher}");
    let players: Vec<&Json> = seen
        .iter()
        .filter(|c| role(c).as_deref() == Some("player"))
        .collect();
    assert_eq!(players.len(), N);
    for player in players {
        let id = player["id"].as_str().unwrap();
        assert!(id.starts_with(&format!("{}-", player["shard"])), "{player}");
    }
    // Each player was sent the stream (counted as its writes complete).
    wait_until("each player's bytes counted", || {
        let page = get_json(admin, "/api/v1/clients?limit=1000");
        let clients = page["clients"].as_array().unwrap().clone();
        clients
            .iter()
            .filter(|c| role(c).as_deref() == Some("player"))
            .all(|c| u(&c["bytes_out"]) > video_bytes)
    });
    let capped = get_json(admin, "/api/v1/clients?limit=5000");
    assert_eq!(u(&capped["limit"]), 1000);
    assert_eq!(capped["clients"].as_array().unwrap().len(), N + 1);
    let (status, body) = request(admin, "GET", "/api/v1/clients?limit=lots");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("\"error\""), "{body}");
    scene.server.shutdown();
}

/// The id the admin API gives the connection from `client`.
fn id_of(admin: SocketAddr, client: &Client) -> String {
    let local = client.socket.local_addr().unwrap().to_string();
    common::admin::client(admin, &local)["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn kicks_close_a_player_or_the_publisher_and_unknown_ids_are_404() {
    let mut scene = publish_to_players();
    let admin = scene.admin;
    let id = id_of(admin, &scene.players[0]);
    let (status, body) = request(admin, "POST", &format!("/api/v1/clients/{id}/kick"));
    assert_eq!((status, body), (200, format!("{{\"kicked\":\"{id}\"}}")));
    scene.players[0].read_until_closed();
    wait_until("the kicked player gone", || {
        u(&get_json(admin, "/api/v1/summary")["players"]) == N as u64 - 1
    });
    let (status, _) = request(admin, "POST", &format!("/api/v1/clients/{id}/kick"));
    assert_eq!(status, 404, "gone now");
    assert_eq!(request(admin, "POST", "/api/v1/clients/9-1/kick").0, 404);
    assert_eq!(request(admin, "POST", "/api/v1/clients/abc/kick").0, 400);
    assert_eq!(request(admin, "GET", "/api/v1/clients/0-1/kick").0, 405);

    let publisher_id = id_of(admin, &scene.publisher);
    let (status, body) = request(admin, "POST", "/api/v1/streams/live/cam/kick");
    assert_eq!(status, 200, "{body}");
    let kicked: Json = serde_json::from_str(&body).unwrap();
    assert_eq!(kicked["kicked"], "live/cam");
    assert_eq!(kicked["client"], publisher_id.as_str());
    scene.publisher.read_until_closed();
    wait_until("players waiting for a new publisher", || {
        let streams = get_json(admin, "/api/v1/streams");
        let cam = &streams["streams"][0];
        cam["source"].is_null() && u(&cam["players"]) == N as u64 - 1
    });
    assert_eq!(
        request(admin, "POST", "/api/v1/streams/live/cam/kick").0,
        404
    );
    let metrics = scrape(admin);
    assert_eq!(sum(&metrics, "ringcast_kicks_total"), 2.0);
    assert_eq!(sum(&metrics, "ringcast_publishers"), 0.0);
    let (status, body) = request(admin, "GET", "/api/v1/nothing");
    assert_eq!(status, 404);
    assert!(body.contains("/api/v1/summary"), "{body}");
    let _ = scene.stream_id;
    scene.server.shutdown();
}

/// `json` without the fields that move while a stream plays.
fn settled(json: &Json, moving: &[&str]) -> Json {
    let mut json = json.clone();
    for field in moving {
        json.as_object_mut().expect("an object").remove(*field);
    }
    json
}

#[test]
fn one_stream_and_one_client_answer_as_their_list_entries_or_404() {
    let scene = publish_to_players();
    let admin = scene.admin;
    let listed = get_json(admin, "/api/v1/streams")["streams"][0].clone();
    let one = get_json(admin, "/api/v1/streams/live/cam");
    let moving = ["bitrate_bps", "uptime_s"];
    assert_eq!(settled(&one, &moving), settled(&listed, &moving));
    assert_eq!(u(&one["players"]), N as u64);
    let (status, body) = request(admin, "GET", "/api/v1/streams/live/nobody");
    assert_eq!(status, 404, "{body}");
    assert!(error_of(&body).contains("live/nobody"), "{body}");

    let local = scene.publisher.socket.local_addr().unwrap().to_string();
    let listed = common::admin::client(admin, &local);
    let id = listed["id"].as_str().unwrap();
    let one = get_json(admin, &format!("/api/v1/clients/{id}"));
    let moving = ["connected_s", "bytes_in", "bytes_out", "queued_bytes"];
    assert_eq!(settled(&one, &moving), settled(&listed, &moving));
    assert_eq!(one["roles"][0]["stream"], "live/cam");
    for (path, status) in [
        ("/api/v1/clients/0-999999", 404),
        ("/api/v1/clients/9-1", 404),
        ("/api/v1/clients/abc", 400),
    ] {
        let (got, body) = request(admin, "GET", path);
        assert_eq!(got, status, "{path}: {body}");
        assert!(!error_of(&body).is_empty(), "{path}");
    }
    scene.server.shutdown();
}

#[test]
fn delete_kicks_a_client_and_a_method_a_path_does_not_take_is_405_with_allow() {
    let mut scene = publish_to_players();
    let admin = scene.admin;
    let id = id_of(admin, &scene.players[0]);
    let path = format!("/api/v1/clients/{id}");
    let (status, body) = request(admin, "DELETE", &path);
    assert_eq!((status, body), (200, format!("{{\"kicked\":\"{id}\"}}")));
    scene.players[0].read_until_closed();
    wait_until("the kicked client gone", || {
        request(admin, "GET", &path).0 == 404
    });
    assert_eq!(request(admin, "DELETE", &path).0, 404, "gone now");

    for (method, path, allow) in [
        ("DELETE", "/api/v1/streams", "GET,HEAD"),
        ("GET", "/api/v1/clients/0-1/kick", "POST"),
        ("PUT", "/api/v1/clients/0-1", "GET,HEAD,DELETE"),
        ("POST", "/api/v1/streams/live/cam", "GET,HEAD"),
    ] {
        let (status, head, body) = exchange(admin, method, path, &[JSON]);
        assert_eq!(status, 405, "{method} {path}: {body}");
        let allowed = (head.lines()).find_map(|line| {
            line.to_ascii_lowercase()
                .strip_prefix("allow: ")
                .map(str::to_owned)
        });
        assert_eq!(
            allowed.as_deref(),
            Some(allow.to_ascii_lowercase().as_str()),
            "{head}"
        );
        let message = error_of(&body);
        assert!(
            message.contains(&format!("{method} is not allowed on {path}")),
            "{message}"
        );
    }
    let metrics = scrape(admin);
    assert_eq!(sum(&metrics, "ringcast_kicks_total"), 1.0);
    scene.server.shutdown();
}

#[test]
fn bitrates_follow_a_live_stream() {
    let mut scene = publish_to_players();
    let admin = scene.admin;
    // A second of live pacing: the shards and the control thread sample
    // once a second.
    let mut n = FRAMES;
    wait_until("bitrates above zero", || {
        for _ in 0..5 {
            scene
                .publisher
                .send(scene.stream_id, &media::video(n, 1000, FRAME_BYTES));
            n += 1;
        }
        for player in &mut scene.players {
            player.pump(Duration::from_millis(1));
            player.take_media();
        }
        std::thread::sleep(Duration::from_millis(50));
        let summary = get_json(admin, "/api/v1/summary");
        let cam = get_json(admin, "/api/v1/streams");
        u(&summary["ingress_bps"]) > 0
            && u(&summary["egress_bps"]) > u(&summary["ingress_bps"])
            && u(&cam["streams"][0]["bitrate_bps"]) > 0
    });
    // `/metrics` leaves rates to PromQL: it has the byte counters they
    // are taken from.
    let metrics = scrape(admin);
    assert!(metrics.keys().all(|series| !series.contains("per_second")));
    assert!(
        sum(&metrics, "ringcast_sent_bytes_total") > sum(&metrics, "ringcast_received_bytes_total")
    );
    scene.server.shutdown();
}

#[test]
fn the_admin_api_can_be_off() {
    let server = start_server(1, |config| config.admin = None);
    assert_eq!(server.admin_addr(), None);
    server.shutdown();
}

const JSON: &str = "Content-Type: application/json";

/// The `error` of a refusal's JSON body.
fn error_of(body: &str) -> String {
    let json: Json = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    json["error"].as_str().expect("an error message").to_owned()
}

#[test]
fn browser_pages_of_other_origins_and_posts_that_are_not_json_are_refused() {
    let server = start_server(1, |c| c.admin_origins = vec!["https://dash.example".into()]);
    let admin = server.admin_addr().expect("admin API on");
    let mut player = Client::connect(server.local_addrs()[0], "live");
    player.play("cam");
    let id = id_of(admin, &player);
    let kick = format!("/api/v1/clients/{id}/kick");
    // A page on another site posting to the API from the operator's
    // browser: refused before any handler runs.
    let evil = "Origin: https://evil.example";
    let (status, body) = request_with(admin, "POST", &kick, &[evil, JSON]);
    assert_eq!(status, 403, "{body}");
    assert!(error_of(&body).contains("admin_origins"), "{body}");
    assert_eq!(
        request_with(admin, "GET", "/api/v1/summary", &[evil]).0,
        403
    );
    assert_eq!(request_with(admin, "GET", "/metrics", &[evil]).0, 403);
    // The "simple" POSTs a browser sends cross-site without asking.
    for content_type in [
        "Content-Type: application/x-www-form-urlencoded",
        "Content-Type: text/plain",
        "Content-Type: multipart/form-data; boundary=x",
    ] {
        let (status, body) = request_with(admin, "POST", &kick, &[content_type]);
        assert_eq!(status, 415, "{content_type}: {body}");
        assert!(error_of(&body).contains("application/json"), "{body}");
    }
    assert_eq!(request_with(admin, "POST", &kick, &[]).0, 415);
    assert_eq!(
        sum(&scrape(admin), "ringcast_kicks_total"),
        0.0,
        "nothing kicked"
    );
    // The dashboard's origin is allowed.
    let dash = "Origin: https://dash.example";
    assert_eq!(
        request_with(admin, "GET", "/api/v1/summary", &[dash]).0,
        200
    );
    let (status, body) = request_with(admin, "POST", &kick, &[dash, JSON]);
    assert_eq!((status, body), (200, format!("{{\"kicked\":\"{id}\"}}")));
    player.read_until_closed();
    server.shutdown();
}

#[test]
fn with_a_token_every_request_needs_the_bearer_token() {
    let token = "tok-0123456789-abcdef";
    let path = std::env::temp_dir().join(format!("ringcast-admin-token-{}", std::process::id()));
    std::fs::write(&path, format!("{token}\n")).expect("temp dir is writable");
    let read = AdminToken::read(&path).expect("a token");
    std::fs::remove_file(&path).expect("removed");
    let server = start_server(1, |c| c.admin_token = Some(read));
    let admin = server.admin_addr().expect("admin API on");
    let right = format!("Authorization: Bearer {token}");
    for path in ["/api/v1/summary", "/metrics", "/api/v1/clients"] {
        let (status, body) = request_with(admin, "GET", path, &[]);
        assert_eq!(status, 401, "{path}: {body}");
        assert!(error_of(&body).contains("Bearer"), "{body}");
        let wrong = "Authorization: Bearer tok-0123456789-abcdeF";
        assert_eq!(request_with(admin, "GET", path, &[wrong]).0, 401, "{path}");
        let short = "Authorization: Bearer tok";
        assert_eq!(request_with(admin, "GET", path, &[short]).0, 401, "{path}");
        assert_eq!(request_with(admin, "GET", path, &[&right]).0, 200, "{path}");
    }
    // A POST needs the token and JSON; with both it reaches the handler.
    let kick = "/api/v1/clients/0-999/kick";
    assert_eq!(request_with(admin, "POST", kick, &[JSON]).0, 401);
    assert_eq!(request_with(admin, "POST", kick, &[&right]).0, 415);
    assert_eq!(request_with(admin, "POST", kick, &[&right, JSON]).0, 404);
    server.shutdown();
}
