//! The router across virtual shards, in memory (like quinn-proto's
//! `Pair`): four routers share a directory and talk through inboxes that
//! drop frames past a bound, as the mesh does; each connection is an
//! [`OutboundQueue`](crate::media::OutboundQueue) fed exactly as the
//! shard feeds it, and what a player would write is read back frame by
//! frame.

mod cluster;
mod property;

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use self::cluster::*;
use super::*;
use crate::config::{Config, Takeover};

#[test]
fn players_on_every_shard_get_every_frame_once_in_order() {
    let mut cluster = Cluster::new(Config::default());
    let publisher = cluster.publish(1, "cam");
    assert_eq!(
        cluster.answers(publisher),
        [Answer::PublishAccepted {
            stream_id: STREAM,
            key: cam()
        }]
    );
    let players: Vec<ConnRef> = (0..SHARDS).map(|s| cluster.play(s, "cam")).collect();
    for header in headers() {
        cluster.send(publisher, header);
    }
    let mut encoder = Encoder::new(30);
    for _ in 0..60 {
        for frame in encoder.next() {
            cluster.send(publisher, frame);
        }
        cluster.run();
    }
    for &player in &players {
        let frames = cluster.received(player);
        assert_eq!(&frames[..2], [Seen::Header, Seen::Header]);
        assert_eq!(
            videos(&frames),
            (0..60).map(|n| (n, n % 30 == 0)).collect::<Vec<_>>()
        );
        assert_watchable(&frames);
        assert_eq!(frames.len(), 2 + 120, "each frame once");
    }
    cluster.close(publisher);
    for player in players {
        assert!(cluster.answers(player).contains(&Answer::Unpublished {
            stream_id: STREAM,
            name: "cam".into()
        }));
        cluster.close(player);
    }
    cluster.assert_empty();
}

#[test]
fn rtmp_flv_and_websocket_players_get_the_same_frames_packaged_once_per_format_and_shard() {
    let mut cluster = Cluster::new(Config::default());
    let publisher = cluster.publish(0, "cam");
    for header in headers() {
        cluster.send(publisher, header);
    }
    let mut encoder = Encoder::new(10);
    for frame in encoder.next() {
        cluster.send(publisher, frame);
    }
    cluster.run();
    let rtmp = Format::Rtmp {
        chunk_size: Config::default().chunk_size,
    };
    let formats = [
        rtmp,
        Format::Flv,
        Format::Flv,
        Format::WebSocketFlv,
        Format::WebSocketFlv,
    ];
    // Joining mid-GOP on the publisher's shard and on another.
    let players: Vec<(ConnRef, Format)> = [0, 2]
        .into_iter()
        .flat_map(|shard| formats.map(|format| (shard, format)))
        .map(|(shard, format)| (cluster.play_as(shard, "cam", format), format))
        .collect();
    for _ in 1..20 {
        for frame in encoder.next() {
            cluster.send(publisher, frame);
        }
        cluster.run();
    }
    for &(player, format) in &players {
        let frames = cluster.received(player);
        let flv = format != rtmp;
        let start = if flv {
            assert_eq!(
                frames[0],
                Seen::FlvHeader {
                    audio: true,
                    video: true
                }
            );
            1
        } else {
            0
        };
        assert_eq!(&frames[start..start + 2], [Seen::Header, Seen::Header]);
        assert_eq!(
            videos(&frames),
            (0..20).map(|n| (n, n % 10 == 0)).collect::<Vec<_>>(),
            "{format:?}: the GOP, then every frame in order"
        );
        assert_watchable(&frames);
        assert_eq!(frames.len(), start + 2 + 40, "{format:?}: each frame once");
    }
    // Two players of one format on one shard hold the same bytes of every
    // live frame (what joined in the GOP is theirs alone).
    let written = |conn: ConnRef| cluster.peers[&conn].written.clone();
    for shard in [0, 1] {
        for pair in [[1, 2], [3, 4]] {
            let [a, b] = pair.map(|i| written(players[shard * formats.len() + i].0));
            let live = a.len() - 10..a.len();
            for i in live {
                assert_eq!(a[i].as_ptr(), b[i].as_ptr(), "shared, not copied");
            }
        }
    }
    cluster.close(publisher);
    for (player, _) in players {
        cluster.close(player);
    }
    cluster.assert_empty();
}

#[test]
fn an_flv_player_waiting_for_a_stream_is_told_the_tracks_it_has() {
    let mut cluster = Cluster::new(Config::default());
    let waiting = [Format::Flv, Format::WebSocketFlv].map(|f| cluster.play_as(1, "cam", f));
    let publisher = cluster.publish(0, "cam");
    // Video only, as an IP camera: a header announcing audio would stall
    // mpegts.js for ever.
    let [video_header, _] = headers();
    cluster.send(publisher, video_header);
    cluster.run();
    for player in waiting {
        assert_eq!(cluster.received(player), [], "the header waits for a frame");
    }
    for n in 0..3 {
        cluster.send(publisher, video(n, n == 0, n * 40));
    }
    cluster.run();
    for player in waiting {
        let frames = cluster.received(player);
        assert_eq!(
            frames[..2],
            [
                Seen::FlvHeader {
                    audio: false,
                    video: true
                },
                Seen::Header
            ]
        );
        assert_eq!(videos(&frames), [(0, true), (1, false), (2, false)]);
    }
    cluster.close(publisher);
    for player in waiting {
        cluster.close(player);
    }
    cluster.assert_empty();
}

#[test]
fn an_flv_player_waiting_with_the_gop_cache_off_starts_at_the_first_frame() {
    let mut config = Config::default();
    config.stream.gop_cache_bytes_max = 0;
    let mut cluster = Cluster::new(config);
    let publisher = cluster.publish(0, "cam");
    let players = [0, 1].map(|shard| cluster.play_as(shard, "cam", Format::Flv));
    for header in headers() {
        cluster.send(publisher, header);
    }
    let mut encoder = Encoder::new(10);
    for _ in 0..3 {
        for frame in encoder.next() {
            cluster.send(publisher, frame);
        }
    }
    cluster.run();
    for player in players {
        let frames = cluster.received(player);
        assert_eq!(
            frames[..3],
            [
                Seen::FlvHeader {
                    audio: true,
                    video: true
                },
                Seen::Header,
                Seen::Header
            ]
        );
        assert_eq!(videos(&frames), [(0, true), (1, false), (2, false)]);
        cluster.close(player);
    }
    cluster.close(publisher);
    cluster.assert_empty();
}

#[test]
fn a_player_joining_late_starts_from_the_gop_on_any_shard() {
    let mut cluster = Cluster::new(Config::default());
    let publisher = cluster.publish(0, "cam");
    for header in headers() {
        cluster.send(publisher, header);
    }
    let mut encoder = Encoder::new(10);
    for _ in 0..15 {
        for frame in encoder.next() {
            cluster.send(publisher, frame);
        }
    }
    let local = cluster.play(0, "cam");
    let remote = cluster.play(3, "cam");
    for _ in 0..5 {
        for frame in encoder.next() {
            cluster.send(publisher, frame);
        }
        cluster.run();
    }
    for player in [local, remote] {
        let frames = cluster.received(player);
        assert_eq!(&frames[..2], [Seen::Header, Seen::Header]);
        assert_eq!(
            videos(&frames),
            (10..20).map(|n| (n, n % 10 == 0)).collect::<Vec<_>>(),
            "the GOP from its keyframe, then live"
        );
        assert_watchable(&frames);
    }
    for conn in [publisher, local, remote] {
        cluster.close(conn);
    }
    cluster.assert_empty();
}

#[test]
fn a_new_publisher_on_another_shard_takes_over_and_players_stay() {
    let mut cluster = Cluster::new(takeover(Takeover::Replace));
    let first = cluster.publish(1, "cam");
    let player = cluster.play(3, "cam");
    let mut encoder = Encoder::new(5);
    for header in headers() {
        cluster.send(first, header);
    }
    for _ in 0..5 {
        for frame in encoder.next() {
            cluster.send(first, frame);
        }
    }
    cluster.run();
    let second = cluster.publish(2, "cam");
    assert!(cluster.peers[&first].closed, "the old publisher is closed");
    assert_eq!(cluster.peers[&first].ended, []);
    assert!(matches!(
        cluster.answers(second),
        [Answer::PublishAccepted { .. }]
    ));
    for header in headers() {
        cluster.send(second, header);
    }
    for _ in 0..5 {
        for frame in encoder.next() {
            cluster.send(second, frame);
        }
    }
    cluster.run();
    let frames = cluster.received(player);
    assert_eq!(
        videos(&frames),
        (0..10).map(|n| (n, n % 5 == 0)).collect::<Vec<_>>()
    );
    assert_watchable(&frames);
    let told: Vec<_> = cluster.answers(player).iter().skip(1).collect();
    assert!(
        matches!(
            told[..],
            [
                Answer::Published { .. },
                Answer::Unpublished { .. },
                Answer::Published { .. }
            ]
        ),
        "{told:?}"
    );
    for conn in [second, player] {
        cluster.close(conn);
    }
    cluster.assert_empty();
}

#[test]
fn a_second_publisher_is_refused_after_the_wait_unless_the_first_goes_meanwhile() {
    let mut cluster = Cluster::new(takeover(Takeover::Reject));
    let first = cluster.publish(0, "cam");
    let refused = cluster.publish(1, "cam");
    assert_eq!(cluster.answers(refused), [], "it waits for the first to go");
    cluster.pass(crate::limits::PUBLISH_BUSY_WAIT_MS + 100);
    assert_eq!(
        cluster.answers(refused),
        [Answer::PublishRefused {
            stream_id: STREAM,
            key: cam(),
            why: Refusal::Busy(ShardId(0))
        }]
    );
    // An encoder reconnecting: its new connection publishes before the
    // old one's close is handled.
    let again = cluster.publish(2, "cam");
    cluster.pass(200);
    assert_eq!(cluster.answers(again), []);
    cluster.close(first);
    cluster.pass(100);
    assert!(matches!(
        cluster.answers(again),
        [Answer::PublishAccepted { .. }]
    ));
    for conn in [refused, again] {
        cluster.close(conn);
    }
    cluster.assert_empty();
}

#[test]
fn a_republish_on_another_shard_carries_the_players_clock_on() {
    let mut cluster = Cluster::new(Config::default());
    let player = cluster.play(2, "cam");
    let first = cluster.publish(0, "cam");
    let mut encoder = Encoder::new(5);
    for header in headers() {
        cluster.send(first, header);
    }
    for _ in 0..10 {
        for frame in encoder.next() {
            cluster.send(first, frame);
        }
    }
    cluster.run();
    cluster.close(first);
    // The encoder restarts its clock on the new shard.
    let second = cluster.publish(3, "cam");
    encoder.ts = 0;
    for header in headers() {
        cluster.send(second, header);
    }
    for _ in 0..10 {
        for frame in encoder.next() {
            cluster.send(second, frame);
        }
    }
    cluster.run();
    let frames = cluster.received(player);
    let stamps: Vec<u32> = frames
        .iter()
        .filter_map(|f| match f {
            Seen::Video { ts, .. } => Some(*ts),
            _ => None,
        })
        .collect();
    assert_eq!(stamps.len(), 20);
    assert!(
        stamps.windows(2).all(|w| w[0] < w[1]),
        "timestamps go on from where the first publisher left: {stamps:?}"
    );
    assert_watchable(&frames);
    for conn in [second, player] {
        cluster.close(conn);
    }
    cluster.assert_empty();
}

#[test]
fn a_full_inbox_drops_frames_and_the_gap_restarts_players_at_a_keyframe() {
    let mut cluster = Cluster::new(Config::default());
    let publisher = cluster.publish(0, "cam");
    let local = cluster.play(0, "cam");
    let remote = cluster.play(1, "cam");
    let mut encoder = Encoder::new(10);
    for header in headers() {
        cluster.send(publisher, header);
    }
    for _ in 0..3 {
        for frame in encoder.next() {
            cluster.send(publisher, frame);
        }
    }
    cluster.run();
    // Shard 1 lags: its inbox takes four more frames and drops the rest.
    cluster.inbox_frames_max = 4;
    for _ in 0..5 {
        for frame in encoder.next() {
            cluster.send(publisher, frame);
        }
    }
    cluster.inbox_frames_max = crate::limits::SHARD_INBOX_MESSAGES_MAX;
    for _ in 0..12 {
        for frame in encoder.next() {
            cluster.send(publisher, frame);
        }
        cluster.run();
    }
    assert_eq!(
        cluster.lost, 6,
        "frames 5 to 7 lost (video and audio), once"
    );
    let local_frames = cluster.received(local);
    assert_eq!(
        videos(&local_frames).len(),
        20,
        "the publisher's shard lost nothing"
    );
    let remote_frames = cluster.received(remote);
    assert_eq!(
        videos(&remote_frames),
        [0, 1, 2, 3, 4, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]
            .map(|n| (n, n % 10 == 0))
            .to_vec(),
        "frames 5 to 7 dropped, 8 and 9 wait for the keyframe"
    );
    assert_watchable(&remote_frames);
    for conn in [publisher, local, remote] {
        cluster.close(conn);
    }
    cluster.assert_empty();
}

fn with_origin() -> Config {
    pulling(Config::default())
}

#[test]
fn a_pull_feeds_every_shard_fails_over_at_a_keyframe_and_stops_when_unwatched() {
    let mut cluster = Cluster::new(with_origin());
    let first = cluster.play(1, "cam?token=1");
    assert_eq!(
        cluster.pulls,
        HashMap::from([(
            (1, StreamKey::new("live", "cam?token=1")),
            "cam?token=1".to_owned()
        )])
    );
    let key = StreamKey::new("live", "cam?token=1");
    let second = cluster.play(3, "cam?token=1");
    assert_eq!(
        cluster.pulls.len(),
        1,
        "shard 3 subscribes to shard 1's pull"
    );
    let mut encoder = Encoder::new(5);
    let pulled = |cluster: &mut Cluster, message| {
        cluster.handle(
            1,
            Event::Pulled {
                key: key.clone(),
                message,
            },
        );
        cluster.run();
    };
    for header in headers() {
        pulled(&mut cluster, header);
    }
    for _ in 0..7 {
        for frame in encoder.next() {
            pulled(&mut cluster, frame);
        }
    }
    // The origin went; the pull goes on from another, mid-GOP.
    cluster.handle(1, Event::PullDiscontinuity { key: key.clone() });
    cluster.run();
    for _ in 0..8 {
        for frame in encoder.next() {
            pulled(&mut cluster, frame);
        }
    }
    for player in [first, second] {
        let frames = cluster.received(player);
        assert_eq!(
            videos(&frames),
            [0, 1, 2, 3, 4, 5, 6, 10, 11, 12, 13, 14]
                .map(|n| (n, n % 5 == 0))
                .to_vec(),
            "after the failover, video waits for the keyframe"
        );
        assert_watchable(&frames);
    }
    cluster.close(first);
    cluster.close(second);
    assert_eq!(cluster.pulls.len(), 1, "the pull idles before it stops");
    let idle_stop = cluster.config.relay.timing.idle_stop.as_millis() as u64;
    cluster.pass(idle_stop + 1);
    cluster.assert_empty();
}

#[test]
fn players_coming_and_going_on_a_pulled_stream_hold_one_idle_deadline() {
    let mut cluster = Cluster::new(with_origin());
    let idle_stop = cluster.config.relay.timing.idle_stop.as_millis() as u64;
    for _ in 0..1000 {
        let player = cluster.play(0, "cam");
        cluster.close(player);
    }
    assert_eq!(cluster.pulls.len(), 1);
    assert_eq!(cluster.routers[0].deadlines.len(), 1, "one idle deadline");
    cluster.pass(idle_stop / 2);
    let player = cluster.play(0, "cam");
    cluster.close(player);
    cluster.pass(idle_stop / 2 + 1);
    assert_eq!(
        cluster.pulls.len(),
        1,
        "the idle time counts from the last leave"
    );
    assert_eq!(cluster.routers[0].deadlines.len(), 1);
    cluster.pass(idle_stop / 2);
    assert!(cluster.pulls.is_empty(), "stopped once idle long enough");
    cluster.assert_empty();
}

#[test]
fn a_pull_no_origin_serves_tells_players_on_every_shard_it_is_not_found() {
    let mut cluster = Cluster::new(with_origin());
    let here = cluster.play(2, "cam");
    let there = cluster.play(0, "cam");
    cluster.handle(2, Event::PullUnavailable { key: cam() });
    cluster.run();
    for player in [here, there] {
        assert_eq!(
            cluster.answers(player).last(),
            Some(&Answer::NotFound {
                stream_id: STREAM,
                name: "cam".into()
            })
        );
        assert_eq!(cluster.peers[&player].ended, [Role::Player(cam())]);
        cluster.close(player);
    }
    cluster.assert_empty();
}

#[test]
fn a_connection_past_its_pull_cap_is_refused_and_its_charge_ends_with_the_pull() {
    let mut config = with_origin();
    config.relay.pulls_per_connection_max = 1;
    let mut cluster = Cluster::new(config);
    let conn = cluster.connect(0);
    for (stream_id, name) in [(1, "a"), (2, "b")] {
        cluster.handle(
            0,
            Event::Play {
                conn,
                stream_id: MessageStreamId(stream_id),
                key: StreamKey::new("live", name),
                name: name.into(),
                reset: false,
                format: Format::Rtmp { chunk_size: 128 },
            },
        );
    }
    assert_eq!(cluster.refused_pulls, 1);
    assert!(matches!(
        cluster.answers(conn),
        [
            Answer::PlayAccepted { .. },
            Answer::PlayRefused {
                cap: "relay.pulls_per_connection_max",
                ..
            }
        ]
    ));
    cluster.close(conn);
    cluster.assert_empty();
}

/// Shard `shard` has an HLS request of a new connection for `cam`.
fn hls_wanted(cluster: &mut Cluster, shard: usize) -> ConnRef {
    let conn = cluster.connect(shard);
    let (key, name) = (cam(), "cam?key=k".to_owned());
    cluster.handle(shard, Event::HlsWanted { conn, key, name });
    cluster.run();
    conn
}

#[test]
fn an_hls_request_pulls_a_stream_no_shard_has_and_hls_requests_keep_the_pull() {
    let mut config = with_origin();
    // A request holds the pull for hls.idle_ms; later ones hold it longer.
    config.hls.idle = config.relay.timing.idle_stop;
    let mut cluster = Cluster::new(config);
    let idle_stop = cluster.config.relay.timing.idle_stop.as_millis() as u64;
    let first = hls_wanted(&mut cluster, 2);
    assert_eq!(
        cluster.pulls,
        HashMap::from([((2, cam()), "cam?key=k".to_owned())]),
        "pulled as asked, query and all"
    );
    assert!(
        cluster.hls.contains(&(2, cam())),
        "and packaged where pulled"
    );
    // Another shard's request finds the pull: the stream is packaged there.
    let second = hls_wanted(&mut cluster, 0);
    assert_eq!(cluster.pulls.len(), 1);
    // HLS players keep asking: the pull stays past its idle time.
    for _ in 0..4 {
        cluster.pass(idle_stop / 2);
        cluster.handle(
            2,
            Event::HlsWatched {
                key: cam(),
                for_ms: 0,
            },
        );
    }
    assert_eq!(cluster.pulls.len(), 1, "watched over HLS");
    // An RTMP player comes and goes meanwhile: it changes nothing.
    let player = cluster.play(1, "cam");
    cluster.close(player);
    cluster.pass(idle_stop / 2);
    assert_eq!(
        cluster.pulls.len(),
        1,
        "the idle time counts from the last ask"
    );
    cluster.pass(idle_stop / 2 + 1);
    assert!(cluster.pulls.is_empty(), "stopped once idle long enough");
    assert!(cluster.hls.is_empty(), "and its packaging with it");
    for conn in [first, second] {
        assert!(
            cluster.answers(conn).is_empty(),
            "HLS requests are not sessions"
        );
        cluster.close(conn);
    }
    cluster.assert_empty();
}

#[test]
fn an_hls_request_pulls_nothing_for_an_app_without_origins_or_a_published_stream() {
    let mut cluster = Cluster::new(Config::default());
    let conn = hls_wanted(&mut cluster, 1);
    assert!(cluster.pulls.is_empty() && cluster.hls.is_empty());
    cluster.close(conn);
    cluster.assert_empty();

    let mut cluster = Cluster::new(with_origin());
    let publisher = cluster.publish(0, "cam");
    let conn = hls_wanted(&mut cluster, 1);
    assert!(
        cluster.pulls.is_empty(),
        "the publisher's shard packages it"
    );
    assert_eq!(cluster.hls, HashSet::from([(0, cam())]));
    // A watched stream that is not pulled is not touched.
    cluster.handle(
        0,
        Event::HlsWatched {
            key: cam(),
            for_ms: 0,
        },
    );
    cluster.close(conn);
    cluster.close(publisher);
    cluster.assert_empty();
}

#[test]
fn hls_requests_past_a_connections_pull_cap_start_no_pull() {
    let mut config = with_origin();
    config.relay.pulls_per_connection_max = 1;
    let mut cluster = Cluster::new(config);
    let conn = cluster.connect(0);
    for name in ["a", "b"] {
        let key = StreamKey::new("live", name);
        let name = name.to_owned();
        cluster.handle(0, Event::HlsWanted { conn, key, name });
    }
    assert_eq!(cluster.pulls.len(), 1);
    assert_eq!(cluster.refused_pulls, 1);
    cluster.close(conn);
    cluster.assert_empty();
}

#[test]
fn a_reload_applies_to_what_starts_afterwards() {
    let mut cluster = Cluster::new(takeover(Takeover::Reject));
    let first = cluster.publish(0, "cam");
    let player = cluster.play(1, "cam");
    let mut encoder = Encoder::new(5);
    for header in headers() {
        cluster.send(first, header);
    }
    for frame in encoder.next() {
        cluster.send(first, frame);
    }
    let replace = Rc::new(takeover(Takeover::Replace));
    for shard in 0..SHARDS {
        cluster.handle(shard, Event::Reload(replace.clone()));
    }
    for frame in encoder.next() {
        cluster.send(first, frame);
    }
    cluster.run();
    assert_eq!(videos(&cluster.received(player)), [(0, true), (1, false)]);
    let second = cluster.publish(2, "cam");
    assert!(matches!(
        cluster.answers(second),
        [Answer::PublishAccepted { .. }]
    ));
    assert!(
        cluster.peers[&first].closed,
        "replaced under the new policy"
    );
    for conn in [second, player] {
        cluster.close(conn);
    }
    cluster.assert_empty();
}

/// Settings that record every app, with takeover `policy`.
fn recording(policy: Takeover) -> Config {
    let mut config = takeover(policy);
    config.record.default.enabled = true;
    config
}

/// The recordings started (true) and stopped since the last look.
fn record_log(cluster: &mut Cluster) -> Vec<(usize, bool)> {
    let log = std::mem::take(&mut cluster.record_log);
    log.into_iter()
        .map(|(shard, key, started)| {
            assert_eq!(key, cam());
            (shard, started)
        })
        .collect()
}

#[test]
fn a_stream_is_recorded_where_its_source_is_from_publish_to_unpublish_and_across_takeovers() {
    let mut cluster = Cluster::new(recording(Takeover::Replace));
    let first = cluster.publish(0, "cam");
    assert_eq!(record_log(&mut cluster), [(0, true)]);
    let player = cluster.play(3, "cam");
    assert_eq!(record_log(&mut cluster), [], "players record nothing");
    let mut encoder = Encoder::new(10);
    for header in headers() {
        cluster.send(first, header);
    }
    for _ in 0..5 {
        for frame in encoder.next() {
            cluster.send(first, frame);
        }
    }
    cluster.run();
    assert_eq!(cluster.records[&(0, cam())], 12, "every frame, once");
    // Another shard's publisher takes over: the old file ends there, a
    // new one starts here.
    let second = cluster.publish(2, "cam");
    assert_eq!(record_log(&mut cluster), [(2, true), (0, false)]);
    // On the same shard: the file ends and the next starts.
    let third = cluster.publish(2, "cam");
    assert_eq!(record_log(&mut cluster), [(2, false), (2, true)]);
    assert!(cluster.peers[&second].closed);
    cluster.close(third);
    assert_eq!(record_log(&mut cluster), [(2, false)], "unpublish ends it");
    cluster.close(player);
    cluster.close(first);
    cluster.assert_empty();
}

#[test]
fn the_admin_api_starts_and_stops_a_recording_on_the_source_s_shard_only() {
    let mut cluster = Cluster::new(takeover(Takeover::Reject));
    let publisher = cluster.publish(1, "cam");
    let player = cluster.play(0, "cam");
    let mut encoder = Encoder::new(4);
    for header in headers() {
        cluster.send(publisher, header);
    }
    for _ in 0..6 {
        for frame in encoder.next() {
            cluster.send(publisher, frame);
        }
    }
    cluster.run();
    assert_eq!(record_log(&mut cluster), [], "the app records nothing");
    let start = || Event::RecordStart { key: cam() };
    cluster.handle(0, start());
    assert_eq!(record_log(&mut cluster), [], "not where the source is");
    cluster.handle(1, start());
    cluster.handle(1, start());
    assert_eq!(record_log(&mut cluster), [(1, true)], "once");
    // From the headers and the GOP: keyframe 4, frame 5, with their audio.
    assert_eq!(cluster.records[&(1, cam())], 2 + 4);
    cluster.handle(1, Event::RecordStop { key: cam() });
    cluster.handle(1, Event::RecordStop { key: cam() });
    assert_eq!(record_log(&mut cluster), [(1, false)]);
    // A recording its driver ended can be asked for again.
    cluster.handle(1, start());
    cluster.records.remove(&(1, cam()));
    cluster.handle(1, Event::RecordEnded { key: cam() });
    cluster.handle(1, start());
    assert_eq!(record_log(&mut cluster), [(1, true), (1, true)]);
    cluster.close(publisher);
    assert_eq!(record_log(&mut cluster), [(1, false)]);
    cluster.close(player);
    cluster.assert_empty();
}

#[test]
fn a_pulled_stream_is_recorded_while_it_is_pulled() {
    let mut config = recording(Takeover::Reject);
    config.relay.origins = with_origin().relay.origins;
    let mut cluster = Cluster::new(config);
    let player = cluster.play(3, "cam");
    assert_eq!(record_log(&mut cluster), [(3, true)]);
    cluster.close(player);
    let idle_stop = cluster.config.relay.timing.idle_stop.as_millis() as u64;
    cluster.pass(idle_stop + 1);
    assert_eq!(record_log(&mut cluster), [(3, false)], "the pull stopped");
    cluster.assert_empty();
}

#[test]
fn a_publish_starts_its_app_s_program_and_its_end_stops_it() {
    let mut cluster = Cluster::new(executing(Config::default()));
    let player = cluster.play(2, "cam");
    assert!(cluster.execs.is_empty(), "a play starts nothing");
    let publisher = cluster.publish(1, "cam?key=k");
    assert_eq!(
        cluster.execs,
        HashMap::from([((1, cam()), "cam?key=k".to_owned())]),
        "on the publisher's shard, with the name as published"
    );
    cluster.close(publisher);
    assert!(cluster.execs.is_empty(), "the unpublish stops it");
    // A publish deleting its stream (`deleteStream`) ends it the same way.
    let again = cluster.publish(3, "cam");
    assert_eq!(cluster.execs.len(), 1);
    cluster.handle(
        3,
        Event::StreamClosed {
            conn: again,
            stream_id: STREAM,
        },
    );
    assert!(cluster.execs.is_empty());
    assert_eq!(cluster.exec_starts, 2);
    for conn in [again, player] {
        cluster.close(conn);
    }
    cluster.assert_empty();
}

#[test]
fn a_takeover_stops_the_old_publisher_s_program_and_starts_the_new_one_s() {
    let mut cluster = Cluster::new(executing(takeover(Takeover::Replace)));
    let first = cluster.publish(0, "cam");
    let second = cluster.publish(0, "cam");
    assert!(cluster.peers[&first].closed);
    assert_eq!(cluster.execs.keys().collect::<Vec<_>>(), [&(0, cam())]);
    assert_eq!(cluster.exec_starts, 2, "stopped, then started again");
    // On another shard: the old shard stops its own once told.
    let third = cluster.publish(2, "cam");
    assert!(cluster.peers[&second].closed);
    assert_eq!(cluster.execs.keys().collect::<Vec<_>>(), [&(2, cam())]);
    assert_eq!(cluster.exec_starts, 3);
    cluster.close(third);
    cluster.assert_empty();
}

#[test]
fn a_pull_or_an_app_without_a_program_starts_none() {
    let mut cluster = Cluster::new(executing(with_origin()));
    let player = cluster.play(1, "cam");
    assert_eq!(cluster.pulls.len(), 1);
    assert!(cluster.execs.is_empty(), "an edge pull is no publish");
    // A publisher taking the stream over from the pull starts it.
    let publisher = cluster.publish(1, "cam");
    assert!(cluster.pulls.is_empty());
    assert_eq!(cluster.execs.keys().collect::<Vec<_>>(), [&(1, cam())]);
    cluster.close(publisher);
    cluster.close(player);
    cluster.assert_empty();
    let mut other = executing(Config::default());
    let command = other.exec_publish.remove("live").unwrap();
    other.exec_publish.insert("tv".into(), command);
    let mut cluster = Cluster::new(other);
    let publisher = cluster.publish(0, "cam");
    assert!(cluster.execs.is_empty(), "live runs nothing; tv would");
    cluster.close(publisher);
    cluster.assert_empty();
}
