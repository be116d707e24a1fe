//! The router across virtual shards, in memory (like quinn-proto's
//! `Pair`): four routers share a directory and talk through inboxes that
//! drop frames past a bound, as the mesh does; each connection is an
//! [`OutboundQueue`] fed exactly as the shard feeds it, and what a player
//! would write is read back frame by frame.

use std::collections::{HashMap, HashSet, VecDeque};
use std::rc::Rc;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use proptest::prelude::*;

use super::*;
use crate::config::{Config, Takeover};
use crate::media::OutboundQueue;
use crate::session::{Media, MediaKind};

const SHARDS: usize = 4;
const STREAM: MessageStreamId = MessageStreamId(1);

fn cam() -> StreamKey {
    StreamKey::new("live", "cam")
}

/// A test frame, read back from its wire bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seen {
    Header,
    Video { n: u32, keyframe: bool, ts: u32 },
    Audio { n: u32, ts: u32 },
}

fn media(kind: MediaKind, ts: u32, payload: &[u8]) -> Published {
    Published::Media(Media {
        kind,
        timestamp: Timestamp(ts),
        payload: Bytes::copy_from_slice(payload),
    })
}

/// AVC frame number `n`: a keyframe or not.
fn video(n: u32, keyframe: bool, ts: u32) -> Published {
    let mut payload = BytesMut::new();
    payload.put_slice(&[if keyframe { 0x17 } else { 0x27 }, 1, 0, 0, 0]);
    payload.put_u32(n);
    media(MediaKind::Video, ts, &payload)
}

/// AAC frame number `n`.
fn audio(n: u32, ts: u32) -> Published {
    let mut payload = BytesMut::new();
    payload.put_slice(&[0xaf, 1]);
    payload.put_u32(n);
    media(MediaKind::Audio, ts, &payload)
}

fn headers() -> [Published; 2] {
    [
        media(MediaKind::Video, 0, &[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f]),
        media(MediaKind::Audio, 0, &[0xaf, 0, 0x12, 0x10]),
    ]
}

/// Reads a frame back: one fmt 0 chunk (1-byte basic header, 11-byte
/// message header) and its payload, as our small frames are packaged.
fn seen(wire: &[u8]) -> Seen {
    let ts = u32::from_be_bytes([0, wire[1], wire[2], wire[3]]);
    let payload = &wire[12..];
    let number = |at: usize| u32::from_be_bytes(payload[at..at + 4].try_into().unwrap());
    match (wire[7], payload[1]) {
        (8 | 9, 0) => Seen::Header,
        (9, _) => Seen::Video {
            n: number(5),
            keyframe: payload[0] >> 4 == 1,
            ts,
        },
        (8, _) => Seen::Audio { n: number(2), ts },
        other => panic!("not a test frame: {other:?}"),
    }
}

/// One connection: its queue as the shard would fill it, what its session
/// was told, and what it wrote.
struct Peer {
    shard: usize,
    queue: OutboundQueue,
    answers: Vec<Answer>,
    frames: Vec<Seen>,
    ended: Vec<Role>,
    closed: bool,
}

struct Cluster {
    routers: Vec<Router>,
    directory: Arc<Directory>,
    inboxes: Vec<VecDeque<StreamMessage>>,
    /// Frames an inbox holds before further frames to it are dropped.
    inbox_frames_max: usize,
    peers: HashMap<ConnRef, Peer>,
    /// Pulls running, by shard and stream, with the name asked for.
    pulls: HashMap<(usize, StreamKey), String>,
    pushes: HashSet<(usize, StreamKey)>,
    pushed: usize,
    refused_pulls: usize,
    lost: u64,
    now_ms: u64,
    next_serial: u64,
    config: Rc<Config>,
}

impl Cluster {
    fn new(config: Config) -> Cluster {
        let directory = Arc::new(Directory::default());
        let config = Rc::new(config);
        Cluster {
            routers: (0..SHARDS)
                .map(|i| Router::new(ShardId(i), directory.clone(), config.clone()))
                .collect(),
            directory,
            inboxes: (0..SHARDS).map(|_| VecDeque::new()).collect(),
            inbox_frames_max: crate::limits::SHARD_INBOX_MESSAGES_MAX,
            peers: HashMap::new(),
            pulls: HashMap::new(),
            pushes: HashSet::new(),
            pushed: 0,
            refused_pulls: 0,
            lost: 0,
            now_ms: 1,
            next_serial: 0,
            config,
        }
    }

    fn connect(&mut self, shard: usize) -> ConnRef {
        self.next_serial += 1;
        let conn = ConnRef {
            key: self.next_serial as usize,
            serial: self.next_serial,
        };
        let player = &self.config.player;
        let queue = OutboundQueue::new(
            player.queue_bytes_max,
            player.slow_disconnect_after.as_millis() as u64,
        );
        let peer = Peer {
            shard,
            queue,
            answers: Vec::new(),
            frames: Vec::new(),
            ended: Vec::new(),
            closed: false,
        };
        self.peers.insert(conn, peer);
        conn
    }

    fn shard_of(&self, conn: ConnRef) -> usize {
        self.peers[&conn].shard
    }

    fn handle(&mut self, shard: usize, event: Event) {
        let mut actions = Vec::new();
        let router = &mut self.routers[shard];
        router.handle(event, self.now_ms);
        router.take_actions(&mut actions);
        self.apply(shard, actions);
    }

    /// Does what the shard's driver does with `actions`.
    fn apply(&mut self, shard: usize, actions: Vec<Action>) {
        let mut closing = Vec::new();
        for action in actions {
            match action {
                Action::Deliver {
                    conn, class, wire, ..
                } => {
                    let peer = self.peers.get_mut(&conn).unwrap();
                    if !peer.closed {
                        let _ = peer.queue.offer(class, wire, self.now_ms);
                    }
                }
                Action::Start { conn, wires, gate } => {
                    let peer = self.peers.get_mut(&conn).unwrap();
                    for wire in wires {
                        let _ = peer.queue.push(wire);
                    }
                    if gate {
                        peer.queue.gate_video();
                    }
                }
                Action::GateVideo { conn } => self.peers.get_mut(&conn).unwrap().queue.gate_video(),
                Action::Wake { conn } => assert!(self.peers.contains_key(&conn)),
                Action::Send { to, message } => {
                    let inbox = &mut self.inboxes[to.0];
                    let frames = inbox
                        .iter()
                        .filter(|m| matches!(m, StreamMessage::Frame { .. }))
                        .count();
                    let is_frame = matches!(message, StreamMessage::Frame { .. });
                    if !is_frame || frames < self.inbox_frames_max {
                        inbox.push_back(message);
                    }
                }
                Action::Answer { conn, answer } => {
                    self.peers.get_mut(&conn).unwrap().answers.push(answer);
                }
                Action::StartPull { key, play_name } => {
                    let previous = self.pulls.insert((shard, key), play_name);
                    assert!(previous.is_none(), "one pull per stream and shard");
                }
                Action::StopPull { key } => {
                    assert!(self.pulls.remove(&(shard, key)).is_some());
                }
                Action::PullRefused { .. } => self.refused_pulls += 1,
                Action::StartPushes { key, .. } => assert!(self.pushes.insert((shard, key))),
                Action::Push { key, .. } => {
                    assert!(self.pushes.contains(&(shard, key)));
                    self.pushed += 1;
                }
                Action::StopPushes { key } => assert!(self.pushes.remove(&(shard, key))),
                Action::Ended { conn, role } => self.peers.get_mut(&conn).unwrap().ended.push(role),
                Action::Replaced { conn, .. } => {
                    self.peers.get_mut(&conn).unwrap().closed = true;
                    closing.push(conn);
                }
                Action::Lost { frames, .. } => self.lost += frames,
                Action::NotPackaged { error, .. } => panic!("not packaged: {error}"),
            }
        }
        // The closed connection's reader ends, and tells the router.
        for conn in closing {
            self.handle(shard, Event::Closed { conn });
        }
    }

    /// Delivers inbox messages until every inbox is empty.
    fn run(&mut self) {
        while let Some(shard) = (0..SHARDS).find(|s| !self.inboxes[*s].is_empty()) {
            while let Some(message) = self.inboxes[shard].pop_front() {
                self.handle(shard, Event::Message(message));
            }
        }
    }

    /// Lets `ms` pass: every due deadline is served, messages delivered.
    fn pass(&mut self, ms: u64) {
        let until = self.now_ms + ms;
        loop {
            let next = (0..SHARDS)
                .filter_map(|s| self.routers[s].next_deadline())
                .filter(|at| *at <= until)
                .min();
            let Some(at) = next else { break };
            self.now_ms = self.now_ms.max(at);
            for shard in 0..SHARDS {
                if self.routers[shard].next_deadline().is_some_and(|d| d <= at) {
                    self.handle(shard, Event::Tick);
                }
            }
            self.run();
        }
        self.now_ms = until;
    }

    fn publish(&mut self, shard: usize, name: &str) -> ConnRef {
        let conn = self.connect(shard);
        self.handle(
            shard,
            Event::Publish {
                conn,
                stream_id: STREAM,
                key: StreamKey::new("live", name),
                name: name.to_owned(),
                waited_ms: 0,
            },
        );
        self.run();
        conn
    }

    fn play(&mut self, shard: usize, name: &str) -> ConnRef {
        let conn = self.connect(shard);
        self.handle(
            shard,
            Event::Play {
                conn,
                stream_id: STREAM,
                key: StreamKey::new("live", name),
                name: name.to_owned(),
                reset: false,
                chunk_size: self.config.chunk_size,
            },
        );
        self.run();
        conn
    }

    fn send(&mut self, publisher: ConnRef, message: Published) {
        let shard = self.shard_of(publisher);
        self.handle(
            shard,
            Event::Publisher {
                conn: publisher,
                stream_id: STREAM,
                message,
            },
        );
    }

    fn close(&mut self, conn: ConnRef) {
        let shard = self.shard_of(conn);
        self.peers.get_mut(&conn).unwrap().closed = true;
        self.handle(shard, Event::Closed { conn });
        self.run();
    }

    /// Writes everything queued for `conn`; returns what it received so
    /// far, in order.
    fn received(&mut self, conn: ConnRef) -> Vec<Seen> {
        let peer = self.peers.get_mut(&conn).unwrap();
        let mut batch = Vec::new();
        peer.queue.take_batch(usize::MAX, usize::MAX, &mut batch);
        let written = batch.iter().map(Bytes::len).sum();
        peer.frames.extend(batch.iter().map(|wire| seen(wire)));
        peer.queue.written(written, &mut batch);
        peer.frames.clone()
    }

    fn answers(&self, conn: ConnRef) -> &[Answer] {
        &self.peers[&conn].answers
    }

    /// Nothing is left anywhere once everyone left and time passed.
    fn assert_empty(&mut self) {
        self.run();
        self.pass(60_000);
        for (shard, router) in self.routers.iter().enumerate() {
            assert_eq!(router.stream_count(), 0, "streams left on shard {shard}");
            assert!(router.roles.is_empty(), "roles left on shard {shard}");
            assert!(router.pulls_started.is_empty(), "pulls charged on {shard}");
            assert!(router.deadlines.is_empty(), "deadlines left on {shard}");
        }
        assert!(self.pulls.is_empty(), "pulls left: {:?}", self.pulls);
        assert!(self.pushes.is_empty());
        assert_eq!(self.directory.len(), 0, "directory entries left");
    }
}

/// A stream's frames as an encoder sends them: headers, then a keyframe
/// every `gop` video frames, audio between; numbered from `first`.
struct Encoder {
    next: u32,
    gop: u32,
    ts: u32,
}

impl Encoder {
    fn new(gop: u32) -> Encoder {
        Encoder {
            next: 0,
            gop,
            ts: 0,
        }
    }

    /// The next video frame and an audio frame.
    fn next(&mut self) -> [Published; 2] {
        let n = self.next;
        self.next += 1;
        self.ts += 33;
        [video(n, n % self.gop == 0, self.ts), audio(n, self.ts + 10)]
    }
}

fn videos(frames: &[Seen]) -> Vec<(u32, bool)> {
    frames
        .iter()
        .filter_map(|f| match f {
            Seen::Video { n, keyframe, .. } => Some((*n, *keyframe)),
            _ => None,
        })
        .collect()
}

/// Every player's video is in order, starts on a keyframe, and after any
/// frame it missed goes on at a keyframe; audio is in order.
fn assert_watchable(frames: &[Seen]) {
    let mut last: Option<u32> = None;
    for (n, keyframe) in videos(frames) {
        match last {
            Some(before) => {
                assert!(n > before, "video out of order: {n} after {before}");
                assert!(
                    n == before + 1 || keyframe,
                    "gap before {n} without a keyframe"
                );
            }
            None => assert!(keyframe, "video starts at {n}, not a keyframe"),
        }
        last = Some(n);
    }
    let audio: Vec<u32> = frames
        .iter()
        .filter_map(|f| match f {
            Seen::Audio { n, .. } => Some(*n),
            _ => None,
        })
        .collect();
    assert!(
        audio.windows(2).all(|w| w[0] < w[1]),
        "audio out of order: {audio:?}"
    );
}

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

fn takeover(policy: Takeover) -> Config {
    let mut config = Config::default();
    config.stream.takeover = policy;
    config
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
    let mut config = Config::default();
    config.relay.origins =
        vec![crate::protocol::url::RtmpUrl::parse("rtmp://127.0.0.1/live").unwrap()];
    config
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
                chunk_size: 128,
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

/// What the property test does, step by step.
#[derive(Clone, Debug)]
enum Step {
    Publish(usize),
    Unpublish,
    Play(usize),
    Leave(usize),
    Frames(u8),
    /// The inboxes hold this many frames for a while.
    Lag(u8),
    Deliver,
    Pass(u16),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..SHARDS).prop_map(Step::Publish),
        Just(Step::Unpublish),
        (0..SHARDS).prop_map(Step::Play),
        (0..8usize).prop_map(Step::Leave),
        (1..20u8).prop_map(Step::Frames),
        (0..4u8).prop_map(Step::Lag),
        Just(Step::Deliver),
        (0..300u16).prop_map(Step::Pass),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_interleaving_keeps_every_player_watchable_and_leaks_nothing(
        steps in prop::collection::vec(step(), 1..60),
        policy in prop_oneof![Just(Takeover::Reject), Just(Takeover::Replace)],
    ) {
        let mut cluster = Cluster::new(takeover(policy));
        let mut encoder = Encoder::new(4);
        let mut publisher: Option<ConnRef> = None;
        let mut players: Vec<ConnRef> = Vec::new();
        for step in steps {
            match step {
                Step::Publish(shard) => {
                    let conn = cluster.publish(shard, "cam");
                    if let Some(old) = publisher.filter(|old| !cluster.peers[old].closed) {
                        if matches!(cluster.answers(conn), [Answer::PublishAccepted { .. }]) {
                            prop_assert!(false, "two publishers: {old:?} and {conn:?}");
                        }
                        // Refused, or waiting for the first to go.
                        cluster.close(conn);
                        continue;
                    }
                    publisher = Some(conn);
                    for header in headers() {
                        cluster.send(conn, header);
                    }
                }
                Step::Unpublish => {
                    if let Some(conn) = publisher.take() {
                        cluster.close(conn);
                    }
                }
                Step::Play(shard) => players.push(cluster.play(shard, "cam")),
                Step::Leave(index) => {
                    if index < players.len() {
                        let conn = players.remove(index);
                        cluster.received(conn);
                        assert_watchable(&cluster.peers[&conn].frames);
                        cluster.close(conn);
                    }
                }
                Step::Frames(count) => {
                    for _ in 0..count {
                        let frames = encoder.next();
                        if let Some(conn) = publisher.filter(|c| !cluster.peers[c].closed) {
                            for frame in frames {
                                cluster.send(conn, frame);
                            }
                        }
                    }
                }
                Step::Lag(frames) => cluster.inbox_frames_max = usize::from(frames),
                Step::Deliver => {
                    cluster.inbox_frames_max = crate::limits::SHARD_INBOX_MESSAGES_MAX;
                    cluster.run();
                }
                Step::Pass(ms) => {
                    cluster.run();
                    cluster.pass(u64::from(ms));
                }
            }
            for conn in &players {
                cluster.received(*conn);
                assert_watchable(&cluster.peers[conn].frames);
            }
        }
        cluster.inbox_frames_max = crate::limits::SHARD_INBOX_MESSAGES_MAX;
        let everyone: Vec<ConnRef> = cluster.peers.keys().copied().collect();
        for conn in everyone {
            cluster.close(conn);
        }
        cluster.assert_empty();
    }
}
