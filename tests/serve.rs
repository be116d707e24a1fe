//! End-to-end on loopback with the bundled client: publish, play, fan-out
//! across shards, late joiners, several streams, takeover, slow players,
//! and a publisher vanishing mid-message.
// Tests and benches fail by panicking on what they did not expect.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::media::{self, frame_number, is_keyframe};
use common::{Client, TIMEOUT, start_server};
use ringcast::config::Takeover;
use ringcast::protocol::Timestamp;
use ringcast::session::{ClientEvent, Media, MediaKind, status};

#[test]
fn fifty_players_on_every_shard_get_every_frame_in_order() {
    let server = start_server(2, |_| {});
    let addr = server.local_addrs()[0];
    let mut publisher = Client::connect(addr, "live");
    let p = publisher.publish("cam");
    let mut players: Vec<Client> = (0..50)
        .map(|_| {
            let mut c = Client::connect(addr, "live");
            c.play("cam");
            c
        })
        .collect();
    // Players landed on the publisher's shard and on the other one.
    let stats = server.stats();
    let publisher_shard = stats
        .iter()
        .position(|s| s.publishers == 1)
        .expect("a publisher");
    assert!(
        stats
            .iter()
            .enumerate()
            .any(|(i, s)| i != publisher_shard && s.players > 0),
        "some players on another shard: {stats:?}"
    );
    publisher.send_metadata(p);
    publisher.send(p, &media::avc_header());
    publisher.send(p, &media::aac_header());
    // One keyframe, so a shard that subscribes late still gets frame 0 in
    // its snapshot.
    for n in 0..90 {
        publisher.send(p, &media::video(n, 1000, 3000));
        publisher.send(p, &media::audio(n));
    }
    for (i, player) in players.iter_mut().enumerate() {
        let got = player.collect_media(2 + 180);
        let video: Vec<(u32, Timestamp)> = got
            .iter()
            .filter_map(|m| frame_number(m).map(|n| (n, m.timestamp)))
            .collect();
        let expected: Vec<(u32, Timestamp)> = (0..90).map(|n| (n, Timestamp(n * 33))).collect();
        assert_eq!(video, expected, "player {i}");
        let audio = got.iter().filter(|m| m.kind == MediaKind::Audio).count();
        assert_eq!(audio, 91, "player {i}: header and 90 audio frames");
        assert!(
            player
                .events
                .iter()
                .any(|e| matches!(e, ClientEvent::Metadata { .. })),
            "player {i} got metadata"
        );
    }
    server.shutdown();
}

#[test]
fn a_late_joiner_gets_headers_then_the_gop_from_its_keyframe() {
    let server = start_server(1, |_| {});
    let addr = server.local_addrs()[0];
    let mut publisher = Client::connect(addr, "live");
    let p = publisher.publish("cam");
    publisher.send_metadata(p);
    publisher.send(p, &media::avc_header());
    publisher.send(p, &media::aac_header());
    for n in 0..45 {
        publisher.send(p, &media::video(n, 30, 2000));
    }
    // Let the server take all of it before the player arrives.
    std::thread::sleep(Duration::from_millis(200));
    let mut player = Client::connect(addr, "live");
    player.play("cam");
    let got = player.collect_media(2 + 15);
    assert!(
        player
            .events
            .iter()
            .any(|e| matches!(e, ClientEvent::Metadata { .. }))
    );
    assert_eq!(
        got[0].payload,
        media::avc_header().payload,
        "video header first"
    );
    assert_eq!(
        got[1].payload,
        media::aac_header().payload,
        "audio header next"
    );
    assert!(is_keyframe(&got[2]), "then a keyframe");
    let frames: Vec<u32> = got.iter().filter_map(frame_number).collect();
    assert_eq!(frames, (30..45).collect::<Vec<_>>());
    publisher.send(p, &media::video(45, 30, 2000));
    let live = player.collect_media(1);
    assert_eq!(frame_number(&live[0]), Some(45));
    server.shutdown();
}

#[test]
fn two_streams_do_not_mix_and_one_connection_carries_several() {
    let server = start_server(2, |_| {});
    let addr = server.local_addrs()[0];
    // Connection A publishes "a" and plays "b"; B the other way round.
    let mut a = Client::connect(addr, "live");
    let mut b = Client::connect(addr, "live");
    let a_pub = a.publish("a");
    let b_pub = b.publish("b");
    a.play("b");
    b.play("a");
    for n in 0..10 {
        a.send(a_pub, &media::video(n, 1000, 100));
        b.send(b_pub, &media::video(1000 + n, 1000, 200));
    }
    let from_b: Vec<_> = a
        .collect_media(10)
        .iter()
        .map(|m| (frame_number(m), m.payload.len()))
        .collect();
    let from_a: Vec<_> = b
        .collect_media(10)
        .iter()
        .map(|m| (frame_number(m), m.payload.len()))
        .collect();
    assert_eq!(
        from_b,
        (1000..1010).map(|n| (Some(n), 200)).collect::<Vec<_>>()
    );
    assert_eq!(from_a, (0..10).map(|n| (Some(n), 100)).collect::<Vec<_>>());
    server.shutdown();
}

#[test]
fn a_second_publisher_is_rejected_by_default_and_players_keep_watching() {
    let server = start_server(1, |_| {});
    let addr = server.local_addrs()[0];
    let mut first = Client::connect(addr, "live");
    let p = first.publish("cam");
    let mut player = Client::connect(addr, "live");
    player.play("cam");
    let mut second = Client::connect(addr, "live");
    let s = second.create_stream();
    second.session.publish(s, "cam").expect("connected");
    second.wait_for("BadName", |e| {
        matches!(e, ClientEvent::Status { status: st, .. } if st.code == status::PUBLISH_BAD_NAME)
    });
    first.send(p, &media::video(0, 30, 100));
    assert_eq!(frame_number(&player.collect_media(1)[0]), Some(0));
    server.shutdown();
}

#[test]
fn a_publisher_reconnecting_before_its_old_close_lands_gets_the_stream() {
    // Two shards: the new connection may be handled before the old one's
    // close, on another shard.
    let server = start_server(2, |_| {});
    let addr = server.local_addrs()[0];
    let mut old = Client::connect(addr, "live");
    old.publish("cam");
    let mut new = Client::connect(addr, "live");
    let s = new.create_stream();
    // The new publish is asked while the old publisher is still there.
    new.session.publish(s, "cam").expect("connected");
    new.flush();
    std::thread::sleep(Duration::from_millis(200));
    drop(old);
    let status = new.wait_for("an answer", |e| matches!(e, ClientEvent::Status { .. }));
    assert!(status.is_publish_start(), "{status:?}");
    server.shutdown();
}

#[test]
fn with_takeover_a_reconnecting_encoder_replaces_the_old_one() {
    let server = start_server(2, |c| c.stream.takeover = Takeover::Replace);
    let addr = server.local_addrs()[0];
    let mut first = Client::connect(addr, "live");
    let p = first.publish("cam");
    let mut player = Client::connect(addr, "live");
    player.play("cam");
    first.send(p, &media::avc_header());
    first.send(p, &media::video(0, 30, 100));
    assert_eq!(player.collect_media(2).len(), 2);
    let mut second = Client::connect(addr, "live");
    let s = second.publish("cam");
    // The player's shard may be another than the new publisher's: once it
    // is told of the new publisher it has subscribed, and every frame sent
    // from then on reaches the player. (Frames sent earlier would reach it
    // only through the GOP cache, which keeps the last keyframe only.)
    player.wait_for("Play.PublishNotify", |e| {
        matches!(e, ClientEvent::Status { status, .. } if status.code == status::PLAY_PUBLISH_NOTIFY)
    });
    second.send(s, &media::avc_header());
    for n in 0..3 {
        second.send(s, &media::video(100 + n, 1, 100));
    }
    let got = player.collect_media(4);
    let frames: Vec<u32> = got.iter().filter_map(frame_number).collect();
    assert_eq!(frames, vec![100, 101, 102]);
    assert!(
        got.windows(2).all(|w| w[0].timestamp <= w[1].timestamp),
        "timestamps never step back"
    );
    // The old publisher was disconnected.
    first
        .socket
        .set_read_timeout(Some(TIMEOUT))
        .expect("timeout");
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match std::io::Read::read(&mut first.socket, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => assert!(Instant::now() < deadline, "old publisher still connected"),
        }
    }
    server.shutdown();
}

#[test]
fn a_player_that_stops_reading_is_dropped_to_keyframes_then_disconnected() {
    let server = start_server(1, |c| {
        c.stream.gop_cache_bytes_max = 256 * 1024;
        c.player.queue_bytes_max = 512 * 1024;
        c.player.slow_disconnect_after = Duration::from_secs(1);
    });
    let addr = server.local_addrs()[0];
    let mut publisher = Client::connect(addr, "live");
    let p = publisher.publish("cam");
    let mut good = Client::connect(addr, "live");
    good.play("cam");
    // A small receive buffer, so the kernel does not absorb much for it.
    let mut slow = Client::connect_with_receive_buffer(addr, "live", 16 * 1024);
    slow.play("cam");
    // `slow` never reads again. 30 fps of 150 KB frames for 3 s: far more
    // than the socket buffers and the queue bound hold.
    let started = Instant::now();
    let mut received = Vec::new();
    for n in 0..90u32 {
        publisher.send(p, &media::video(n, 15, 150_000));
        good.pump(Duration::from_millis(1));
        received.extend(good.take_media());
        let due = Duration::from_millis(33 * u64::from(n + 1));
        while started.elapsed() < due {
            good.pump(Duration::from_millis(5));
            received.extend(good.take_media());
        }
    }
    received.extend(good.collect_media(90 - received.len()));
    let frames: Vec<u32> = received.iter().filter_map(frame_number).collect();
    assert_eq!(
        frames,
        (0..90).collect::<Vec<_>>(),
        "the good player missed nothing"
    );
    let stats = server.stats()[0];
    assert!(
        stats.frames_dropped > 0,
        "the slow player lost frames: {stats:?}"
    );
    assert_eq!(stats.slow_disconnects, 1, "and was disconnected: {stats:?}");
    server.shutdown();
}

#[test]
fn a_slow_player_is_disconnected_and_counted_once_however_fast_frames_come() {
    let server = start_server(1, |c| {
        c.stream.gop_cache_bytes_max = 0;
        c.player.queue_bytes_max = 32 * 1024;
        c.player.write_batch_bytes_max = 32 * 1024;
        c.player.slow_disconnect_after = Duration::from_millis(100);
    });
    let addr = server.local_addrs()[0];
    let mut publisher = Client::connect(addr, "live");
    let p = publisher.publish("cam");
    let mut slow = Client::connect_with_receive_buffer(addr, "live", 4096);
    slow.play("cam");
    // `slow` never reads. 5 MB of video fills its socket and its queue...
    for n in 0..500 {
        publisher.send(p, &media::video(n, 30, 10_000));
    }
    // ...then a burst of 1 KB audio frames (never dropped): dozens in each
    // read of the publisher's socket, all offered in the same turn of the
    // shard, before and after the player is given up on.
    let burst: Vec<u8> = (0..2000u32)
        .flat_map(|n| {
            let audio = Media {
                kind: MediaKind::Audio,
                timestamp: Timestamp(n * 23),
                payload: bytes::Bytes::from([vec![0xAF, 1], vec![0; 1000]].concat()),
            };
            publisher.session.send_media(p, &audio).expect("publishing");
            publisher.session.poll_transmit().expect("bytes").to_vec()
        })
        .collect();
    publisher.socket.write_all(&burst).expect("write");
    let deadline = Instant::now() + TIMEOUT;
    while server.stats()[0].players > 0 {
        assert!(
            Instant::now() < deadline,
            "the slow player stays: {:?}",
            server.stats()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let stats = server.stats()[0];
    assert_eq!(stats.slow_disconnects, 1, "counted once: {stats:?}");
    server.shutdown();
}

#[test]
fn a_publisher_vanishing_mid_message_leaves_the_server_serving() {
    let server = start_server(1, |_| {});
    let addr = server.local_addrs()[0];
    let mut publisher = Client::connect(addr, "live");
    let p = publisher.publish("cam");
    let mut player = Client::connect(addr, "live");
    player.play("cam");
    publisher.send(p, &media::video(0, 30, 100));
    assert_eq!(player.collect_media(1).len(), 1);
    // Half of a 20 KB video message, then a TCP reset.
    publisher
        .session
        .send_media(p, &media::video(1, 30, 20_000))
        .expect("publishing");
    let bytes = publisher.session.poll_transmit().expect("bytes");
    publisher
        .socket
        .write_all(&bytes[..bytes.len() / 2])
        .expect("write");
    socket2::SockRef::from(&publisher.socket)
        .set_linger(Some(Duration::ZERO))
        .expect("linger");
    drop(publisher);
    player.wait_for("UnpublishNotify", |e| {
        matches!(e, ClientEvent::Status { status: st, .. } if st.code == status::PLAY_UNPUBLISH_NOTIFY)
    });
    // A fresh publish of the same stream reaches the waiting player.
    let mut again = Client::connect(addr, "live");
    let p = again.publish("cam");
    // A keyframe: a player whose stream restarts waits for one.
    again.send(p, &media::video(7, 7, 100));
    let got = player.collect_media(1);
    assert_eq!(frame_number(&got[0]), Some(7));
    let _ = TcpStream::connect(addr).expect("still accepting");
    server.shutdown();
}

#[test]
fn shutdown_tells_players_the_stream_stopped_and_closes_them() {
    let server = start_server(2, |_| {});
    let addr = server.local_addrs()[0];
    let mut publisher = Client::connect(addr, "live");
    let p = publisher.publish("cam");
    let mut player = Client::connect(addr, "live");
    player.play("cam");
    publisher.send(p, &media::video(0, 1, 100));
    assert_eq!(player.collect_media(1).len(), 1);
    let stopping = std::thread::spawn(move || server.shutdown());
    player.wait_for(
        "Play.Stop",
        |e| matches!(e, ClientEvent::Status { status: st, .. } if st.code == status::PLAY_STOP),
    );
    player.wait_for("StreamEOF", |e| matches!(e, ClientEvent::StreamEof(_)));
    // Then the server closes the connection.
    player
        .socket
        .set_read_timeout(Some(TIMEOUT))
        .expect("timeout");
    let mut buf = [0u8; 1024];
    while let Ok(n) = std::io::Read::read(&mut player.socket, &mut buf) {
        if n == 0 {
            break;
        }
    }
    stopping.join().expect("shutdown completes");
}

#[test]
fn late_joiners_on_every_shard_start_from_the_owner_gop() {
    let server = start_server(2, |_| {});
    let addr = server.local_addrs()[0];
    let mut publisher = Client::connect(addr, "live");
    let p = publisher.publish("cam");
    publisher.send_metadata(p);
    publisher.send(p, &media::avc_header());
    publisher.send(p, &media::aac_header());
    for n in 0..45 {
        publisher.send(p, &media::video(n, 30, 2000));
    }
    std::thread::sleep(Duration::from_millis(200));
    let mut players: Vec<Client> = (0..10)
        .map(|_| {
            let mut c = Client::connect(addr, "live");
            c.play("cam");
            c
        })
        .collect();
    let stats = server.stats();
    assert!(
        stats.iter().all(|s| s.players > 0),
        "players on both shards: {stats:?}"
    );
    for n in 45..50 {
        publisher.send(p, &media::video(n, 30, 2000));
    }
    for player in &mut players {
        let got = player.collect_media(2 + 20);
        assert!(
            player
                .events
                .iter()
                .any(|e| matches!(e, ClientEvent::Metadata { .. }))
        );
        assert_eq!(got[0].payload, media::avc_header().payload);
        assert_eq!(got[1].payload, media::aac_header().payload);
        let frames: Vec<u32> = got.iter().filter_map(frame_number).collect();
        assert_eq!(frames, (30..50).collect::<Vec<_>>());
    }
    server.shutdown();
}

#[test]
fn a_republish_resumes_waiting_players_on_every_shard_with_fresh_headers() {
    let server = start_server(2, |_| {});
    let addr = server.local_addrs()[0];
    // Players first: they wait for a publisher.
    let mut players: Vec<Client> = (0..10)
        .map(|_| {
            let mut c = Client::connect(addr, "live");
            c.play("cam");
            c
        })
        .collect();
    for round in 0..2u32 {
        let mut publisher = Client::connect(addr, "live");
        let p = publisher.publish("cam");
        // A sequence header that says which round it belongs to.
        let header = Media {
            kind: MediaKind::Video,
            timestamp: Timestamp(0),
            payload: bytes::Bytes::from(vec![0x17, 0, 0, 0, 0, round as u8]),
        };
        publisher.send(p, &header);
        publisher.send(p, &media::video(round * 100, 1, 100));
        for player in &mut players {
            let got = player.collect_media(2);
            assert_eq!(
                got[0].payload[5], round as u8,
                "this round's sequence header"
            );
            assert_eq!(frame_number(&got[1]), Some(round * 100));
            player.wait_for("PublishNotify", |e| {
                matches!(e, ClientEvent::Status { status: st, .. } if st.code == status::PLAY_PUBLISH_NOTIFY)
            });
        }
        drop(publisher);
        for player in &mut players {
            player.wait_for("UnpublishNotify", |e| {
                matches!(e, ClientEvent::Status { status: st, .. } if st.code == status::PLAY_UNPUBLISH_NOTIFY)
            });
            player.wait_for("StreamEOF", |e| matches!(e, ClientEvent::StreamEof(_)));
        }
    }
    server.shutdown();
}

#[test]
fn a_publisher_restarting_on_another_shard_continues_the_clock_players_saw() {
    let server = start_server(2, |_| {});
    let addr = server.local_addrs()[0];
    let admin = server.admin_addr().expect("admin API");
    let mut player = Client::connect(addr, "live");
    let player_shard = shard_of(admin, &player);
    player.play("cam");
    let mut first = Client::connect(addr, "live");
    let p = first.publish("cam");
    first.send(p, &media::avc_header());
    for n in 0..30 {
        first.send(p, &media::video(n, 30, 100));
    }
    let seen = player.collect_media(31);
    let last = seen.last().expect("frames").timestamp;
    assert_eq!(last, Timestamp(29 * 33));
    drop(first);
    player.wait_for("UnpublishNotify", |e| {
        matches!(e, ClientEvent::Status { status: st, .. } if st.code == status::PLAY_UNPUBLISH_NOTIFY)
    });
    // The encoder comes back on the shard without players, which has no
    // history of the stream, and starts its clock at 0 again.
    let mut second = (0..100)
        .map(|_| Client::connect(addr, "live"))
        .find(|c| shard_of(admin, c) != player_shard)
        .expect("a connection on the other shard");
    let p = second.publish("cam");
    second.send(p, &media::avc_header());
    second.send(p, &media::video(0, 30, 100));
    second.send(p, &media::video(1, 30, 100));
    let resumed: Vec<u32> = player
        .collect_media(3)
        .iter()
        .map(|m| m.timestamp.0)
        .collect();
    assert_eq!(resumed, vec![last.0, last.0, last.0 + 33], "no step back");
    server.shutdown();
}

/// The shard serving `client`, from the admin API.
fn shard_of(admin: std::net::SocketAddr, client: &Client) -> u64 {
    let address = client.socket.local_addr().expect("address").to_string();
    let entry = common::admin::client(admin, &address);
    entry["shard"]
        .as_u64()
        .unwrap_or_else(|| panic!("a shard in {entry}"))
}

#[test]
fn a_player_on_a_second_message_stream_gets_frames_on_its_own_stream_id() {
    let server = start_server(1, |_| {});
    let addr = server.local_addrs()[0];
    let mut publisher = Client::connect(addr, "live");
    let p = publisher.publish("cam");
    let mut player = Client::connect(addr, "live");
    let unused = player.create_stream();
    let id = player.play("cam");
    assert_ne!(id, unused);
    publisher.send(p, &media::video(0, 1, 5000));
    publisher.send(p, &media::video(1, 1, 5000));
    let deadline = Instant::now() + TIMEOUT;
    let mut on_stream = Vec::new();
    while on_stream.len() < 2 {
        assert!(Instant::now() < deadline, "no frames on stream {id}");
        player.pump(Duration::from_millis(50));
        player.events.retain(|e| match e {
            ClientEvent::Media { stream_id, media } => {
                on_stream.push((*stream_id, frame_number(media)));
                false
            }
            _ => true,
        });
    }
    assert_eq!(on_stream, vec![(id, Some(0)), (id, Some(1))]);
    server.shutdown();
}

#[test]
fn idle_peers_are_pinged_and_only_the_silent_ones_closed() {
    let server = start_server(1, |c| c.timeouts.idle = Duration::from_millis(600));
    let addr = server.local_addrs()[0];
    let mut waiting = Client::connect(addr, "live");
    waiting.play("cam");
    let mut silent = Client::connect(addr, "live");
    // `waiting` answers pings while it pumps; `silent` reads nothing.
    let until = Instant::now() + Duration::from_millis(2000);
    while Instant::now() < until {
        waiting.pump(Duration::from_millis(50));
    }
    let stats = server.stats()[0];
    assert_eq!(
        stats.idle_timeouts, 1,
        "only the silent peer timed out: {stats:?}"
    );
    silent
        .socket
        .set_read_timeout(Some(TIMEOUT))
        .expect("timeout");
    let mut buf = [0u8; 4096];
    while let Ok(n) = std::io::Read::read(&mut silent.socket, &mut buf) {
        if n == 0 {
            break;
        }
    }
    // The waiting player is still there for a publisher.
    let mut publisher = Client::connect(addr, "live");
    let p = publisher.publish("cam");
    publisher.send(p, &media::video(0, 1, 100));
    assert_eq!(frame_number(&waiting.collect_media(1)[0]), Some(0));
    server.shutdown();
}

#[test]
fn a_player_joining_a_live_stream_gets_play_start_before_any_media() {
    let server = start_server(1, |_| {});
    let addr = server.local_addrs()[0];
    let mut publisher = Client::connect(addr, "live");
    let p = publisher.publish("cam");
    publisher.send(p, &media::avc_header());
    publisher.send(p, &media::video(0, 30, 100));
    std::thread::sleep(Duration::from_millis(100));
    let mut player = Client::connect(addr, "live");
    let id = player.create_stream();
    player.session.play(id, "cam").expect("connected");
    let deadline = Instant::now() + TIMEOUT;
    let media_count = |c: &Client| {
        c.events
            .iter()
            .filter(|e| matches!(e, ClientEvent::Media { .. }))
            .count()
    };
    while media_count(&player) < 2 {
        assert!(Instant::now() < deadline, "no media: {:?}", player.events);
        player.pump(Duration::from_millis(50));
    }
    let order: Vec<&str> = player
        .events
        .iter()
        .map(|e| match e {
            ClientEvent::StreamBegin(_) => "begin",
            ClientEvent::Status { status: st, .. } if st.code == status::PLAY_START => "start",
            ClientEvent::Media { .. } => "media",
            _ => "other",
        })
        .filter(|e| *e != "other")
        .collect();
    assert_eq!(order, vec!["begin", "start", "media", "media"]);
    server.shutdown();
}

#[test]
fn with_a_write_window_players_on_every_shard_get_every_frame_in_order() {
    let server = start_server(2, |c| c.player.write_window = Duration::from_millis(100));
    let addr = server.local_addrs()[0];
    let mut publisher = Client::connect(addr, "live");
    let p = publisher.publish("cam");
    let mut players: Vec<Client> = (0..12)
        .map(|_| {
            let mut c = Client::connect(addr, "live");
            c.play("cam");
            c
        })
        .collect();
    publisher.send(p, &media::avc_header());
    publisher.send(p, &media::aac_header());
    // Paced like a live stream, so the window's rotation starts and stops
    // several times, and the last frames wait for a window to end.
    for n in 0..30 {
        publisher.send(p, &media::video(n, 1000, 3000));
        publisher.send(p, &media::audio(n));
        if n % 10 == 9 {
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    for (i, player) in players.iter_mut().enumerate() {
        let got = player.collect_media(2 + 60);
        let video: Vec<u32> = got.iter().filter_map(frame_number).collect();
        assert_eq!(video, (0..30).collect::<Vec<_>>(), "player {i}");
    }
    server.shutdown();
}

#[test]
fn audio_with_no_video_to_ride_with_still_reaches_players() {
    let server = start_server(1, |_| {});
    let addr = server.local_addrs()[0];
    let mut publisher = Client::connect(addr, "live");
    let p = publisher.publish("radio");
    let mut player = Client::connect(addr, "live");
    player.play("radio");
    publisher.send(p, &media::aac_header());
    for n in 0..20 {
        publisher.send(p, &media::audio(n));
    }
    // Held for a video frame that never comes, then written at the hold's
    // deadline: all of it arrives.
    let got = player.collect_media(21);
    assert!(got.iter().all(|m| m.kind == MediaKind::Audio));
    assert_eq!(got.len(), 21);
    server.shutdown();
}
