//! Any interleaving of publishes (both takeover policies), plays,
//! leaves, HLS requests, frames, lagging inboxes, pulls that fail over or
//! find nothing, recordings started, stopped and failed, reloads and time
//! keeps every player watchable, records a stream on one shard at most
//! (its source's), and leaves nothing behind.

use std::collections::HashSet;
use std::rc::Rc;

use proptest::prelude::*;

use super::cluster::*;
use crate::config::{Config, Takeover};
use crate::router::{Answer, ConnRef, Event, Format, Published};

/// Settings under test; app `live` runs a program while published, so
/// its starts and stops are held to the same "nothing left behind".
fn settings(policy: Takeover, origins: bool, recording: bool) -> Config {
    let mut config = executing(takeover(policy));
    config.record.default.enabled = recording;
    if origins { pulling(config) } else { config }
}

/// The shard pulling the stream, if one does.
fn puller(cluster: &Cluster) -> Option<usize> {
    (cluster.pulls.keys()).find_map(|(shard, key)| (*key == cam()).then_some(*shard))
}

/// The stream's source sends `message`: its publisher, else its pull.
fn from_source(cluster: &mut Cluster, publisher: Option<ConnRef>, message: Published) {
    if let Some(conn) = publisher.filter(|c| !cluster.peers[c].closed) {
        cluster.send(conn, message);
    } else if let Some(shard) = puller(cluster) {
        cluster.handle(
            shard,
            Event::Pulled {
                key: cam(),
                message,
            },
        );
    }
}

/// What the property test does, step by step.
#[derive(Clone, Debug)]
enum Step {
    Publish(usize),
    Unpublish,
    /// A player on this shard, over RTMP, HTTP-FLV or WebSocket-FLV.
    Play(usize, u8),
    Leave(usize),
    /// An HLS request on this shard for the stream, no shard packaging it.
    HlsWanted(usize),
    /// HLS players asked for the stream lately (told to every shard: only
    /// the one packaging it is, in the server).
    HlsWatched,
    Frames(u8),
    /// The inboxes hold this many frames for a while.
    Lag(u8),
    Deliver,
    Pass(u16),
    /// The pull goes on from another origin, which sends headers again
    /// and then frames from where it is: this many later, mid-GOP.
    Failover(u8),
    /// The pull finds no origin with the stream.
    Unavailable,
    /// New settings: takeover replaces (or rejects).
    Reload(bool),
    /// The admin API asks this shard to start (or stop) recording.
    Record(usize, bool),
    /// The recording on this shard failed (its driver ended it).
    RecordFailed(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..SHARDS).prop_map(Step::Publish),
        Just(Step::Unpublish),
        (0..SHARDS, 0..3u8).prop_map(|(shard, format)| Step::Play(shard, format)),
        (0..8usize).prop_map(Step::Leave),
        (0..SHARDS).prop_map(Step::HlsWanted),
        Just(Step::HlsWatched),
        (1..20u8).prop_map(Step::Frames),
        (0..4u8).prop_map(Step::Lag),
        Just(Step::Deliver),
        (0..300u16).prop_map(Step::Pass),
        (1..4u8).prop_map(Step::Failover),
        Just(Step::Unavailable),
        any::<bool>().prop_map(Step::Reload),
        (0..SHARDS, any::<bool>()).prop_map(|(shard, start)| Step::Record(shard, start)),
        (0..SHARDS).prop_map(Step::RecordFailed),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_interleaving_keeps_every_player_watchable_and_leaks_nothing(
        steps in prop::collection::vec(step(), 1..60),
        policy in prop_oneof![Just(Takeover::Reject), Just(Takeover::Replace)],
        origins in any::<bool>(),
        recording in any::<bool>(),
    ) {
        let mut cluster = Cluster::new(settings(policy, origins, recording));
        // Pulls that got their origin's headers.
        let mut primed: HashSet<usize> = HashSet::new();
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
                Step::Play(shard, format) => {
                    let format = match format {
                        0 => Format::Rtmp { chunk_size: cluster.config.chunk_size },
                        1 => Format::Flv,
                        _ => Format::WebSocketFlv,
                    };
                    players.push(cluster.play_as(shard, "cam", format));
                }
                Step::Leave(index) => {
                    if index < players.len() {
                        let conn = players.remove(index);
                        cluster.received(conn);
                        assert_watchable(&cluster.peers[&conn].frames);
                        cluster.close(conn);
                    }
                }
                Step::HlsWanted(shard) => {
                    if !cluster.hls.iter().any(|(_, key)| *key == cam()) {
                        let conn = cluster.connect(shard);
                        let (key, name) = (cam(), "cam".to_owned());
                        cluster.handle(shard, Event::HlsWanted { conn, key, name });
                    }
                }
                Step::HlsWatched => {
                    for shard in 0..SHARDS {
                        cluster.handle(shard, Event::HlsWatched { key: cam(), for_ms: 0 });
                    }
                }
                Step::Frames(count) => {
                    for _ in 0..count {
                        for frame in encoder.next() {
                            from_source(&mut cluster, publisher, frame);
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
                Step::Failover(missed) => {
                    if let Some(shard) = puller(&cluster) {
                        cluster.handle(shard, Event::PullDiscontinuity { key: cam() });
                        primed.remove(&shard);
                        for _ in 0..missed {
                            encoder.next();
                        }
                    }
                }
                Step::Unavailable => {
                    if let Some(shard) = puller(&cluster) {
                        cluster.handle(shard, Event::PullUnavailable { key: cam() });
                        cluster.run();
                    }
                }
                Step::Reload(replace) => {
                    let policy = if replace { Takeover::Replace } else { Takeover::Reject };
                    let config = Rc::new(settings(policy, origins, recording));
                    for shard in 0..SHARDS {
                        cluster.handle(shard, Event::Reload(config.clone()));
                    }
                }
                Step::Record(shard, start) => {
                    let key = cam();
                    let event = if start { Event::RecordStart { key } } else { Event::RecordStop { key } };
                    cluster.handle(shard, event);
                }
                Step::RecordFailed(shard) => {
                    if cluster.records.remove(&(shard, cam())).is_some() {
                        cluster.handle(shard, Event::RecordEnded { key: cam() });
                    }
                }
            }
            let recorders: Vec<usize> = (cluster.records.keys())
                .filter(|(_, key)| *key == cam())
                .map(|(shard, _)| *shard)
                .collect();
            prop_assert!(recorders.len() <= 1, "recorded on {recorders:?}");
            let source = publisher
                .filter(|conn| !cluster.peers[conn].closed)
                .map(|conn| cluster.shard_of(conn))
                .or_else(|| puller(&cluster));
            if let Some(&shard) = recorders.first() {
                prop_assert_eq!(Some(shard), source, "recorded where the source is");
            }
            // A pull that started (or failed over) gets its origin's
            // headers first, as from a real origin.
            primed.retain(|shard| puller(&cluster) == Some(*shard));
            if let Some(shard) = puller(&cluster).filter(|s| !primed.contains(s)) {
                primed.insert(shard);
                for header in headers() {
                    cluster.handle(shard, Event::Pulled { key: cam(), message: header });
                }
            }
            for conn in &players {
                cluster.received(*conn);
                let peer = &cluster.peers[conn];
                assert_watchable(&peer.frames);
                // An FLV body has one file header, first.
                let headers: Vec<usize> = (peer.frames.iter().enumerate())
                    .filter(|(_, f)| matches!(f, Seen::FlvHeader { .. }))
                    .map(|(at, _)| at)
                    .collect();
                let flv = !matches!(peer.format, Format::Rtmp { .. });
                match flv && !peer.frames.is_empty() {
                    true => assert_eq!(headers, [0], "{:?}", peer.format),
                    false => assert!(headers.is_empty()),
                }
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
