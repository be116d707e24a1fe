//! WebSocket-FLV: binary frames, control frames, a ping flood; and TCP
//! keepalive on HTTP players' sockets.

use super::*;

#[test]
fn a_websocket_player_reads_flv_in_binary_frames_and_is_answered_on_control_frames() {
    let server = start_server(2, |_| {});
    let mut publisher = Client::connect(rtmp(&server), "live");
    let id = publisher.publish("cam");
    publisher.send_metadata(id);
    publisher.send(id, &avc_header());
    publisher.send(id, &aac_header());
    let addr = http(&server);
    let mut player = WebPlayer::websocket(addr, "/live/cam.flv", Some("flv")).expect("101");
    for n in 0..30 {
        publisher.send(id, &video(n, 10, 300));
    }
    // The header came first (checked as it was read), then metadata and
    // the sequence headers, then every frame.
    let metadata = player.next_tag();
    assert_eq!(metadata.kind, MediaKind::Data);
    assert!(
        metadata.payload.windows(10).any(|w| w == b"onMetaData"),
        "{metadata:?}"
    );
    let mut headers = vec![player.next_tag(), player.next_tag()];
    headers.sort_by_key(|m| m.kind == MediaKind::Audio);
    assert_eq!(headers, vec![avc_header(), aac_header()]);
    assert_eq!(player.header, Some(0x05), "audio and video announced");
    assert_eq!(player.frames_through(29), (0..30).collect::<Vec<_>>());

    player.send(&client_frame(Opcode::Ping, b"are you there", MASK));
    let pong = player.next_control();
    assert_eq!(pong.opcode, Opcode::Pong);
    assert_eq!(&pong.payload[..], b"are you there");
    // Frames go on after a ping.
    publisher.send(id, &video(30, 10, 300));
    assert_eq!(player.frames_through(30), vec![30]);
    let bye = websocket::close_payload(close::NORMAL, "bye");
    player.send(&client_frame(Opcode::Close, &bye, MASK));
    let answer = player.next_control();
    assert_eq!(answer.opcode, Opcode::Close);
    assert_eq!(
        websocket::parse_close(&answer.payload)
            .unwrap()
            .map(|c| c.0),
        Some(close::NORMAL)
    );
    player.read_until_closed();

    // An unmasked frame breaks RFC 6455 §5.1: 1002.
    let mut unmasked = WebPlayer::websocket(addr, "/live/cam.flv", None).expect("101");
    unmasked.send(&websocket::server_frame(Opcode::Ping, b"x"));
    let answer = unmasked.next_control();
    assert_eq!(answer.opcode, Opcode::Close);
    let (code, _) = websocket::parse_close(&answer.payload).unwrap().unwrap();
    assert_eq!(code, close::PROTOCOL_ERROR);
    unmasked.read_until_closed();

    // A message over 4 KiB: 1009, refused from its header.
    let mut big = WebPlayer::websocket(addr, "/live/cam.flv", None).expect("101");
    let _ = big
        .socket
        .write_all(&client_frame(Opcode::Binary, &[7; 64 * 1024], MASK));
    let answer = big.next_control();
    assert_eq!(answer.opcode, Opcode::Close);
    let (code, _) = websocket::parse_close(&answer.payload).unwrap().unwrap();
    assert_eq!(code, close::TOO_BIG);
    big.read_until_closed();

    // A shutdown says goodbye: 1001.
    let mut last = WebPlayer::websocket(addr, "/live/cam.flv", None).expect("101");
    server.shutdown();
    let answer = last.next_control();
    assert_eq!(answer.opcode, Opcode::Close);
    let (code, _) = websocket::parse_close(&answer.payload).unwrap().unwrap();
    assert_eq!(code, close::GOING_AWAY);
    last.read_until_closed();
}

#[test]
fn a_websocket_player_that_pings_and_never_reads_is_cut_off_at_its_queue_bound() {
    let server = start_server(1, |c| {
        c.stream.gop_cache_bytes_max = 0;
        c.player.queue_bytes_max = 64 * 1024;
        c.player.write_batch_bytes_max = 16 * 1024;
    });
    let mut publisher = Client::connect(rtmp(&server), "live");
    let id = publisher.publish("cam");
    let flooder = WebPlayer::websocket(http(&server), "/live/cam.flv", None).expect("101");
    let mut socket = flooder.socket;
    // Pongs the kernel's buffers cannot hold pile up in the queue: up to
    // twice its 64 KiB bound, then the connection goes.
    let ping = client_frame(Opcode::Ping, &[b'p'; 125], MASK);
    let flood: Vec<u8> = ping
        .iter()
        .copied()
        .cycle()
        .take(ping.len() * 1000)
        .collect();
    let mut sent = 0;
    let cut_off = loop {
        match socket.write_all(&flood) {
            Ok(()) => sent += flood.len(),
            Err(_) => break true,
        }
        if sent > 256 * 1024 * 1024 {
            break false;
        }
    };
    assert!(cut_off, "the server still took pings after {sent} bytes");
    wait_until("the flooder is counted as a slow disconnect", || {
        server
            .stats()
            .iter()
            .map(|s| s.slow_disconnects)
            .sum::<u64>()
            == 1
    });
    // Another player is served as before.
    let mut player = WebPlayer::get(http(&server), "/live/cam.flv").expect("200");
    publisher.send(id, &avc_header());
    for n in 0..10 {
        publisher.send(id, &video(n, 10, 300));
    }
    assert_eq!(player.frames_through(9), (0..10).collect::<Vec<_>>());
    server.shutdown();
}

/// The timer `/proc/net/tcp` shows on the connection from `local` to
/// `remote` (IPv4): 0 none, 1 retransmit, 2 keepalive, ...
fn tcp_timer(local: SocketAddr, remote: SocketAddr) -> Option<u32> {
    let hex = |addr: SocketAddr| match addr {
        SocketAddr::V4(v4) => format!(
            "{:08X}:{:04X}",
            u32::from_le_bytes(v4.ip().octets()),
            v4.port()
        ),
        SocketAddr::V6(_) => unreachable!("the test server is on 127.0.0.1"),
    };
    let (local, remote) = (hex(local), hex(remote));
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    table.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.get(1) == Some(&local.as_str()) && fields.get(2) == Some(&remote.as_str()))
            .then(|| fields[5].split(':').next().unwrap().parse().unwrap())
    })
}

#[test]
fn http_players_are_kept_alive_by_tcp_so_a_vanished_one_is_found() {
    let server = start_server(1, |c| c.http.play_wait = Duration::from_secs(30));
    let addr = http(&server);
    // A player waiting for a stream hears nothing and says nothing.
    let mut socket = TcpStream::connect(addr).unwrap();
    socket
        .write_all(get_request("GET", &addr.to_string(), "/live/later.flv").as_bytes())
        .unwrap();
    let client = socket.local_addr().unwrap();
    wait_until(
        "the server's side of the connection has its keepalive timer",
        || tcp_timer(addr, client) == Some(2),
    );
    // An RTMP peer is pinged by us instead: no keepalive timer.
    let rtmp_client = Client::connect(rtmp(&server), "live");
    let rtmp_local = rtmp_client.socket.local_addr().unwrap();
    // (a retransmit timer may run while its last bytes are unacknowledged)
    let timer = tcp_timer(rtmp(&server), rtmp_local);
    assert!(matches!(timer, Some(0 | 1)), "timer {timer:?}");
    server.shutdown();
}
