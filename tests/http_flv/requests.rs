//! Requests answered at once or refused: bad ones, a stream that is not
//! there, the player page.

use super::*;

/// Bad requests with the status each must get.
fn bad_requests() -> Vec<(&'static str, Vec<u8>, u16)> {
    let upgrade = |version: &str, key: &str| {
        format!(
            "GET /live/other.flv HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n\
             Sec-WebSocket-Version: {version}\r\n\r\n"
        )
        .into_bytes()
    };
    let good_key = client_key([1; 16]);
    // Exactly the cap and no end: all of it is read before the answer.
    let mut huge = b"GET /live/other.flv HTTP/1.1\r\nX-Pad: ".to_vec();
    huge.resize(ringcast::limits::HTTP_HEAD_BYTES_MAX, b'a');
    let case = |name, request: &[u8], status| (name, request.to_vec(), status);
    vec![
        // Not starting with 0x16: a TLS handshake is closed unanswered
        // (tests/tls).
        case("garbage", b"\x15\x03\x01\x02\0\x01\0\x01\xfc\r\n\r\n", 400),
        case("no version", b"GET /live/other.flv\r\n\r\n", 400),
        case("POST", b"POST /live/other.flv HTTP/1.1\r\n\r\n", 405),
        case("DELETE", b"DELETE /live/other.flv HTTP/1.1\r\n\r\n", 405),
        case("dot-dot", b"GET /live/../other.flv HTTP/1.1\r\n\r\n", 400),
        case("%2e%2e", b"GET /a/%2e%2e/x.flv HTTP/1.1\r\n\r\n", 400),
        case("NUL", b"GET /live/oth%00er.flv HTTP/1.1\r\n\r\n", 400),
        case("bad percent", b"GET /live/%zz.flv HTTP/1.1\r\n\r\n", 400),
        case("cut percent", b"GET /live/other.flv% HTTP/1.1\r\n\r\n", 400),
        case("head over 8 KiB", &huge, 431),
        case("websocket version 8", &upgrade("8", &good_key), 426),
        case("websocket key", &upgrade("13", "short"), 400),
    ]
}

#[test]
fn bad_requests_get_their_status_and_are_closed_while_an_rtmp_player_sees_no_gap() {
    let server = start_server(2, |c| c.timeouts.handshake = Duration::from_secs(2));
    let addr = http(&server);
    let _feeder = Feeder::start(&[rtmp(&server)], "other");
    let mut watcher = Client::connect(rtmp(&server), "live");
    watcher.play("other");
    let cases = bad_requests();
    for (name, bytes, status) in &cases {
        let answer = answer_to(addr, bytes);
        assert_eq!(answer.status, *status, "{name}: {}", answer.body);
        assert!(
            answer.body.starts_with(&format!("{status} ")),
            "{name}: {}",
            answer.body
        );
    }
    let api = server.admin_addr().unwrap();
    let refusals: f64 = admin::sum(&scrape(api), "ringcast_http_refusals_total");
    assert_eq!(refusals, cases.len() as f64, "each refusal counted once");

    // Not a stream, not a file of the page, not published (HEAD); and a
    // CORS preflight.
    let answers: [(&[u8], u16); 5] = [
        (b"GET /live/x.mp4 HTTP/1.1\r\n\r\n", 404),
        (b"GET /nothing.js HTTP/1.1\r\n\r\n", 404),
        (b"HEAD /live/other.flv HTTP/1.1\r\n\r\n", 200),
        (b"HEAD /live/none.flv HTTP/1.1\r\n\r\n", 404),
        (
            b"OPTIONS /live/other.flv HTTP/1.1\r\nOrigin: http://a\r\n\r\n",
            204,
        ),
    ];
    for (request, status) in answers {
        let answer = answer_to(addr, request);
        let request = String::from_utf8_lossy(request);
        assert_eq!(answer.status, status, "{request}: {}", answer.body);
        if status != 404 {
            assert_eq!(answer.body, "", "{request}");
        }
    }

    // A byte a second: cut at the handshake timeout however it trickles.
    let mut slow = TcpStream::connect(addr).unwrap();
    let started = Instant::now();
    slow.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut byte = [0u8; 1];
    for &b in b"GET /live/other.flv HTTP/1.1\r\nHost: h\r\n".iter() {
        if slow.write_all(&[b]).is_err() {
            break;
        }
        match slow.read(&mut byte) {
            // A signal to the test process interrupts the read (EINTR):
            // not the server's doing.
            Err(e) if is_timeout(&e) || e.kind() == std::io::ErrorKind::Interrupted => {}
            // Closed, whatever it said first.
            Ok(_) | Err(_) => break,
        }
        assert!(started.elapsed() < Duration::from_secs(6), "never cut");
    }
    let cut = started.elapsed();
    assert!(
        cut >= Duration::from_millis(1800) && cut < Duration::from_secs(4),
        "cut after {cut:?}, with a 2 s handshake timeout"
    );

    // The RTMP player of another stream saw every frame meanwhile.
    let frames: Vec<u32> = watcher
        .collect_media(100)
        .iter()
        .filter_map(frame_number)
        .collect();
    assert_no_gap_after_first_keyframe(&frames, 10, "the RTMP player");
    let last = *frames.last().unwrap();
    let mut after = WebPlayer::get(addr, "/live/other.flv").expect("still serving");
    let next = after.next_frames(20);
    assert_no_gap_after_first_keyframe(&next, 10, "an HTTP player after it all");
    assert!(next.last().unwrap() > &last);
    server.shutdown();
}

#[test]
fn a_stream_not_live_is_404_after_play_wait_and_one_starting_within_it_is_served() {
    let wait = Duration::from_millis(1000);
    let server = start_server(2, |c| c.http.play_wait = wait);
    let addr = http(&server);
    for websocket in [false, true] {
        let started = Instant::now();
        let answer = WebPlayer::open(addr, "/live/none.flv", websocket);
        let waited = started.elapsed();
        let refused = answer.err().expect("no such stream");
        assert_eq!(refused.status, 404, "{}", refused.body);
        assert!(
            waited >= wait - Duration::from_millis(100) && waited < wait * 3,
            "answered after {waited:?}, with play_wait {wait:?}"
        );
    }
    assert_eq!(players(&server), 0, "the waiting players are gone");

    let (flv, ws) = std::thread::scope(|s| {
        let flv = s.spawn(|| WebPlayer::get(addr, "/live/late.flv"));
        let ws = s.spawn(|| WebPlayer::websocket(addr, "/live/late.flv", None));
        std::thread::sleep(Duration::from_millis(300));
        let mut publisher = Client::connect(rtmp(&server), "live");
        let id = publisher.publish("late");
        publisher.send(id, &avc_header());
        for n in 0..20 {
            publisher.send(id, &video(n, 30, 200));
        }
        (flv.join().unwrap(), ws.join().unwrap())
    });
    for (player, name) in [(flv, "http-flv"), (ws, "ws-flv")] {
        let mut player = player.unwrap_or_else(|r| panic!("{name}: {r:?}"));
        assert_eq!(
            player.frames_through(19),
            (0..20).collect::<Vec<_>>(),
            "{name}"
        );
    }
    server.shutdown();
}

#[test]
fn the_player_page_and_mpegts_js_are_served_unless_turned_off() {
    let server = start_server(1, |_| {});
    let (head, page) = fetch(http(&server), "/");
    assert_eq!(head.status, 200);
    assert!(
        head.content_type
            .as_deref()
            .unwrap()
            .starts_with("text/html"),
        "{head:?}"
    );
    assert!(page.contains("<video"), "{page}");
    assert!(page.contains("mpegts.js"), "{page}");
    let (head, script) = fetch(http(&server), "/mpegts.js");
    assert_eq!(head.status, 200);
    assert!(
        head.content_type.as_deref().unwrap().contains("javascript"),
        "{head:?}"
    );
    assert!(script.contains("mpegts"), "the mpegts.js bundle");
    assert!(
        script.len() > 100_000,
        "the whole bundle: {} bytes",
        script.len()
    );
    server.shutdown();

    let off = start_server(1, |c| c.http.player_page = None);
    for path in ["/", "/mpegts.js", "/index.html"] {
        let (head, _) = fetch(http(&off), path);
        assert_eq!(head.status, 404, "{path}");
    }
    off.shutdown();
}
