//! Many players of every protocol across shards, and the admin API.

use super::*;

#[test]
fn an_rtmp_player_and_twenty_http_players_on_four_shards_get_every_frame_in_order() {
    const FRAMES: u32 = 120;
    let server = start_server(4, |_| {});
    let addr = http(&server);
    let mut publisher = Client::connect(rtmp(&server), "live");
    let id = publisher.publish("cam");
    publisher.send(id, &avc_header());
    let mut rtmp_player = Client::connect(rtmp(&server), "live");
    rtmp_player.play("cam");
    let mut web: Vec<(String, WebPlayer)> = (0..10)
        .map(|i| {
            let flv = WebPlayer::get(addr, "/live/cam.flv").expect("playing");
            (format!("http-flv {i}"), flv)
        })
        .collect();
    web.extend((0..10).map(|i| {
        let ws = WebPlayer::websocket(addr, "/live/cam.flv", None).expect("playing");
        (format!("ws-flv {i}"), ws)
    }));

    let api = server.admin_addr().unwrap();
    let clients = get_json(api, "/api/v1/clients?limit=1000");
    let mut shards = BTreeSet::new();
    let mut protocols: BTreeMap<String, usize> = BTreeMap::new();
    for client in clients["clients"].as_array().unwrap() {
        if client["roles"][0]["role"] == "player" {
            shards.insert(client["shard"].as_u64().unwrap());
            *protocols
                .entry(client["protocol"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
    }
    assert!(shards.len() >= 2, "players on one shard only: {clients}");
    let expected = [("http-flv", 10), ("rtmp", 1), ("ws-flv", 10)];
    let expected: BTreeMap<String, usize> = expected
        .iter()
        .map(|(p, n)| ((*p).to_owned(), *n))
        .collect();
    assert_eq!(protocols, expected);

    for n in 0..FRAMES {
        publisher.send(id, &video(n, 10, 400));
        if n % 10 == 9 {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let mut got = Vec::new();
    while got.last().is_none_or(|n| *n < FRAMES - 1) {
        got.extend(rtmp_player.collect_media(1).iter().filter_map(frame_number));
    }
    assert_no_gap_after_first_keyframe(&got, 10, "the RTMP player");
    for (name, player) in &mut web {
        assert_eq!(player.next_tag(), avc_header(), "{name}: its header first");
        assert_eq!(player.header, Some(0x01), "{name}: video announced");
        let frames = player.frames_through(FRAMES - 1);
        assert_no_gap_after_first_keyframe(&frames, 10, name);
    }
    server.shutdown();
}

/// The sum over shards of a per-protocol series.
fn by_protocol(metrics: &HashMap<String, f64>, name: &str, protocol: &str) -> f64 {
    let label = format!("protocol=\"{protocol}\"");
    let values: Vec<f64> = metrics
        .iter()
        .filter(|(series, _)| series.starts_with(&format!("{name}{{")) && series.contains(&label))
        .map(|(_, v)| *v)
        .collect();
    assert!(!values.is_empty(), "{name} for {protocol} in /metrics");
    values.iter().sum()
}

#[test]
fn the_admin_api_counts_and_kicks_http_players_and_a_reload_keys_new_ones_out() {
    let server = start_server(2, |_| {});
    let (addr, api) = (http(&server), server.admin_addr().unwrap());
    let _feeder = Feeder::start(&[rtmp(&server)], "cam");
    let mut rtmp_player = Client::connect(rtmp(&server), "live");
    rtmp_player.play("cam");
    let mut kicked = WebPlayer::get(addr, "/live/cam.flv").expect("playing");
    let mut stays = WebPlayer::get(addr, "/live/cam.flv").expect("playing");
    let mut ws = WebPlayer::websocket(addr, "/live/cam.flv", None).expect("playing");
    for player in [&mut kicked, &mut stays, &mut ws] {
        player.assert_plays("a player");
    }

    let protocol_of = |local: &str| admin::client(api, local)["protocol"].clone();
    assert_eq!(protocol_of(&kicked.local_addr()), "http-flv");
    assert_eq!(protocol_of(&stays.local_addr()), "http-flv");
    assert_eq!(protocol_of(&ws.local_addr()), "ws-flv");
    let rtmp_local = rtmp_player.socket.local_addr().unwrap().to_string();
    assert_eq!(protocol_of(&rtmp_local), "rtmp");

    let metrics = scrape(api);
    let gauge = |m: &HashMap<String, f64>, p| by_protocol(m, "ringcast_protocol_players", p);
    assert_eq!(gauge(&metrics, "http-flv"), 2.0);
    assert_eq!(gauge(&metrics, "ws-flv"), 1.0);
    assert_eq!(gauge(&metrics, "rtmp"), 1.0);
    for protocol in ["http-flv", "ws-flv", "rtmp"] {
        let sent = by_protocol(&metrics, "ringcast_protocol_sent_bytes_total", protocol);
        assert!(sent > 0.0, "{protocol} sent nothing");
    }

    let id = admin::client(api, &kicked.local_addr())["id"].clone();
    let id = id.as_str().unwrap();
    let (status, body) = request(api, "POST", &format!("/api/v1/clients/{id}/kick"));
    assert_eq!((status, body), (200, format!("{{\"kicked\":\"{id}\"}}")));
    kicked.read_until_closed();
    wait_until("the kicked player uncounted", || {
        gauge(&scrape(api), "http-flv") == 1.0
    });

    // Playing needs a key from now on: new players without it are
    // refused, the ones playing go on.
    let mut keyed = (*server.reloader().running()).clone();
    keyed.access.default.play.keys = vec!["k1".into()];
    server.reloader().apply(keyed).expect("reloaded");
    wait_until("every shard refuses a player without the key", || {
        (0..4).all(|_| WebPlayer::get(addr, "/live/cam.flv").is_err_and(|r| r.status == 403))
    });
    let refused = WebPlayer::websocket(addr, "/live/cam.flv", None)
        .err()
        .expect("refused");
    assert_eq!(refused.status, 403);
    let mut newcomer = WebPlayer::get(addr, "/live/cam.flv?key=k1").expect("the key");
    let after_reload = newcomer.next_frames(5)[4];
    for (player, name) in [
        (&mut stays, "the HTTP player"),
        (&mut ws, "the WebSocket player"),
    ] {
        let frames = player.frames_through(after_reload + 10);
        assert_no_gap_after_first_keyframe(&frames, 10, name);
    }
    server.shutdown();
}
