//! Any interleaving of publishes (both takeover policies), plays,
//! leaves, frames, lagging inboxes and time keeps every player watchable
//! and leaves nothing behind.

use proptest::prelude::*;

use super::cluster::*;
use crate::config::Takeover;
use crate::router::{Answer, ConnRef};

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
