//! The same rules as RTMP players: keys, address lists, hooks, edge pulls.

use super::*;

#[test]
fn play_keys_and_address_lists_guard_http_and_websocket_players() {
    let server = start_server(2, |c| {
        c.access.default.play.keys = vec!["k1".into()];
        let mut closed = c.access.default.clone();
        closed.play.keys = Vec::new();
        closed.play.deny = vec!["127.0.0.1".parse::<Network>().unwrap()];
        c.access.apps.insert("closed".into(), closed);
    });
    let addr = http(&server);
    let _feeder = Feeder::start(&[rtmp(&server)], "cam");
    let mut elsewhere = Client::connect(rtmp(&server), "closed");
    let id = elsewhere.publish("cam");
    elsewhere.send(id, &avc_header());

    for websocket in [false, true] {
        let keyed = WebPlayer::open(addr, "/live/cam.flv?key=k1", websocket);
        keyed.expect("the right key").assert_plays("with the key");
    }
    let denied = [
        ("wrong key", "/live/cam.flv?key=k2", false),
        ("no key", "/live/cam.flv", false),
        ("no key, websocket", "/live/cam.flv", true),
        ("play_deny", "/closed/cam.flv", false),
        ("play_deny, websocket", "/closed/cam.flv", true),
    ];
    for (name, target, websocket) in denied {
        let answer = WebPlayer::open(addr, target, websocket);
        let refused = answer.err().unwrap_or_else(|| panic!("{name}: played"));
        assert_eq!(refused.status, 403, "{name}: {}", refused.body);
    }
    let denials: u64 = server.stats().iter().map(|s| s.auth_denials).sum();
    assert_eq!(denials, denied.len() as u64);
    server.shutdown();
}

#[test]
fn on_play_hooks_hear_the_http_protocols_can_deny_and_hear_the_player_leave() {
    let service = HookService::start(|call| match call["stream"].as_str() {
        Some("denied") => Answer::Status(403),
        _ => Answer::Status(200),
    });
    let server = start_server(2, |c| {
        c.access.default.hooks.on_play = vec![service.url("/play")];
        c.access.default.hooks.on_play_done = vec![service.url("/play_done")];
        c.access.hook_timeout = Duration::from_secs(2);
    });
    let addr = http(&server);
    let _feeder = Feeder::start(&[rtmp(&server)], "cam");
    let is = |action: &'static str, protocol: &'static str| {
        move |c: &Value| c["action"] == action && c["protocol"] == protocol
    };

    let mut flv = WebPlayer::get(addr, "/live/cam.flv?token=abc").expect("allowed");
    flv.assert_plays("http-flv");
    let call = service.wait_for_call("on_play over http-flv", is("on_play", "http-flv"));
    assert_eq!(call["app"], "live");
    assert_eq!(call["stream"], "cam");
    assert_eq!(call["args"], "token=abc");
    assert_eq!(call["client"], flv.local_addr());
    let mut ws = WebPlayer::websocket(addr, "/live/cam.flv", None).expect("allowed");
    ws.assert_plays("ws-flv");
    let call = service.wait_for_call("on_play over ws-flv", is("on_play", "ws-flv"));
    assert_eq!(call["client"], ws.local_addr());

    let refused = WebPlayer::get(addr, "/live/denied.flv")
        .err()
        .expect("denied");
    assert_eq!(refused.status, 403, "{}", refused.body);
    let refused = WebPlayer::websocket(addr, "/live/denied.flv", None)
        .err()
        .expect("denied");
    assert_eq!(refused.status, 403, "{}", refused.body);

    let flv_client = flv.local_addr();
    drop(flv);
    let done = service.wait_for_call("on_play_done over http-flv", is("on_play_done", "http-flv"));
    assert_eq!(done["stream"], "cam");
    assert_eq!(done["client"], flv_client);
    assert!(
        !service.calls().iter().any(is("on_play_done", "ws-flv")),
        "the WebSocket player still plays"
    );
    ws.assert_plays("ws-flv");
    drop(ws);
    service.wait_for_call("on_play_done over ws-flv", is("on_play_done", "ws-flv"));
    server.shutdown();
}

#[test]
fn an_edge_pulls_for_http_players_and_stops_the_pull_after_they_leave() {
    let origin = start_server(1, |_| {});
    let _feeder = Feeder::start(&[rtmp(&origin)], "cam");
    let url = RtmpUrl::parse(&format!("rtmp://{}/live", rtmp(&origin))).unwrap();
    let edge = start_server(2, |c| {
        c.relay.origins = vec![url];
        c.relay.timing.idle_stop = Duration::from_millis(500);
        c.http.play_wait = Duration::from_secs(3);
    });
    let mut flv = WebPlayer::get(http(&edge), "/live/cam.flv").expect("pulled in time");
    flv.assert_plays("http-flv on the edge");
    let mut ws = WebPlayer::websocket(http(&edge), "/live/cam.flv", None).expect("pulled");
    ws.assert_plays("ws-flv on the edge");
    assert_eq!(players(&origin), 1, "one pull for both");
    let pulls: u64 = edge.stats().iter().map(|s| s.relay_pulls).sum();
    assert_eq!(pulls, 1);
    drop(flv);
    drop(ws);
    wait_until("the pull stops", || players(&origin) == 0);
    edge.shutdown();
    origin.shutdown();
}
