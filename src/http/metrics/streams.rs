//! Per-stream series: what every shard says of its streams (the answer to
//! [`Query::Streams`](crate::shard::messages::Query), asked at scrape time
//! as `/api/v1/streams` asks it), merged by stream and cut to the
//! `metrics_streams_max` streams with the most players; the rest are
//! summed under `app="_other",stream="_other"`, so a scrape stays bounded
//! however many streams publishers create.
//!
//! Must not: run on a shard or per frame. The shards' part is the pass
//! over their stream table that answers the query; the merge and the cut
//! are the control thread's.

use std::cmp::Ordering;
use std::collections::HashMap;

use crate::media::StreamKey;
use crate::relay;
use crate::shard::ShardId;
use crate::shard::messages::{Origin, StreamReport};

/// The app and stream labels of the sum of the streams past the cap. A
/// real stream of that app and name is summed there as well, so no two
/// series ever carry the same labels.
pub const OTHER: &str = "_other";

/// Per-stream values of one scrape.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StreamSeries {
    /// The streams with series of their own, sorted by app and name.
    pub top: Vec<(StreamKey, StreamValues)>,
    /// The rest, added up; `None` when no stream is past the cap.
    pub other: Option<Other>,
}

/// One stream, merged from every shard's report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamValues {
    /// Players on every shard (RTMP, HTTP-FLV, WebSocket-FLV).
    pub players: u64,
    /// Where it comes from; `None` while its players wait for a source.
    pub source: Option<Source>,
    /// From its source shard: audio, video and data messages received,
    /// and their payload bytes, since the stream was created there.
    pub frames_in: u64,
    pub bytes_in: u64,
}

/// A stream's source, as its source shard reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Source {
    pub kind: SourceKind,
    pub shard: ShardId,
    /// A publisher, or a pull that is receiving from its origin.
    pub live: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    Publisher,
    Pull,
}

/// The streams past the cap, added up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Other {
    /// How many.
    pub streams: u64,
    pub players: u64,
    /// Of them, those whose source is live.
    pub up: u64,
    pub frames_in: u64,
    pub bytes_in: u64,
}

impl StreamSeries {
    /// Merges the shards' answers and keeps `streams_max` streams, those
    /// with the most players (ties by app and name, so the same streams
    /// stay in from one scrape to the next), summing the rest.
    pub fn collect(answers: Vec<(ShardId, Vec<StreamReport>)>, streams_max: usize) -> StreamSeries {
        let mut merged: HashMap<StreamKey, StreamValues> = HashMap::new();
        for (shard, reports) in answers {
            for report in reports {
                let values = merged.entry(report.key).or_default();
                values.players = values.players.saturating_add(report.players as u64);
                if let Some(source) = report.source {
                    values.source = Some(Source::of(&source.origin, shard));
                    values.frames_in = source.info.frames_in;
                    values.bytes_in = source.info.bytes_in;
                }
            }
        }
        let other_key = StreamKey::new(OTHER, OTHER);
        let (mut top, clashing): (Vec<_>, Vec<_>) =
            merged.into_iter().partition(|(key, _)| *key != other_key);
        let mut rest = clashing;
        if top.len() > streams_max {
            top.select_nth_unstable_by(streams_max, by_players);
            rest.extend(top.split_off(streams_max));
        }
        top.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let other = (!rest.is_empty()).then(|| Other::sum(rest.iter().map(|(_, v)| v)));
        StreamSeries { top, other }
    }
}

/// Most players first, then by app and name.
fn by_players(a: &(StreamKey, StreamValues), b: &(StreamKey, StreamValues)) -> Ordering {
    b.1.players.cmp(&a.1.players).then_with(|| a.0.cmp(&b.0))
}

impl StreamValues {
    /// Its source is live: 1 for `ringcast_stream_up`.
    pub fn up(&self) -> bool {
        self.source.is_some_and(|source| source.live)
    }
}

impl Source {
    fn of(origin: &Origin, shard: ShardId) -> Source {
        let (kind, live) = match origin {
            Origin::Publisher { .. } => (SourceKind::Publisher, true),
            Origin::Pull { state, .. } => (SourceKind::Pull, *state == relay::State::Live),
        };
        Source { kind, shard, live }
    }
}

impl SourceKind {
    /// As `/api/v1/streams` names it (`source`).
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Publisher => "publisher",
            SourceKind::Pull => "pull",
        }
    }
}

impl Other {
    fn sum<'a>(streams: impl Iterator<Item = &'a StreamValues>) -> Other {
        streams.fold(Other::default(), |sum, v| Other {
            streams: sum.streams.saturating_add(1),
            players: sum.players.saturating_add(v.players),
            up: sum.up.saturating_add(u64::from(v.up())),
            frames_in: sum.frames_in.wrapping_add(v.frames_in),
            bytes_in: sum.bytes_in.wrapping_add(v.bytes_in),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::StreamInfo;
    use crate::shard::messages::{ClientId, SourceReport};

    fn key(text: &str) -> StreamKey {
        let (app, name) = text.split_once('/').unwrap();
        StreamKey::new(app, name)
    }

    fn source(origin: Origin, frames_in: u64, bytes_in: u64) -> Option<SourceReport> {
        Some(SourceReport {
            origin,
            info: StreamInfo {
                frames_in,
                bytes_in,
                ..StreamInfo::default()
            },
            bitrate_bps: 0,
            gop_cache_bytes: 0,
            uptime_ms: 0,
            pushes: 0,
            recording: false,
        })
    }

    fn publisher() -> Origin {
        Origin::Publisher {
            id: ClientId {
                shard: ShardId(1),
                serial: 1,
            },
            address: "10.0.0.1:5000".parse().unwrap(),
        }
    }

    fn pull(state: relay::State) -> Origin {
        Origin::Pull {
            url: "rtmp://origin/live".into(),
            state,
        }
    }

    fn report(text: &str, players: usize, source: Option<SourceReport>) -> StreamReport {
        StreamReport {
            key: key(text),
            players,
            source,
        }
    }

    /// `live/s0`..`live/s{n-1}`, stream `i` with `i` players and a
    /// publisher on shard 0 that received `i` frames of 100 bytes.
    fn streams(n: usize) -> Vec<(ShardId, Vec<StreamReport>)> {
        let reports = (0..n)
            .map(|i| {
                let origin = source(publisher(), i as u64, 100 * i as u64);
                report(&format!("live/s{i}"), i, origin)
            })
            .collect();
        vec![(ShardId(0), reports)]
    }

    #[test]
    fn a_stream_s_players_add_up_over_shards_and_its_counts_come_from_its_source() {
        let answers = vec![
            (
                ShardId(0),
                vec![report("live/cam", 2, None), report("live/wait", 1, None)],
            ),
            (
                ShardId(1),
                vec![report("live/cam", 3, source(publisher(), 40, 5000))],
            ),
            (
                ShardId(2),
                vec![report(
                    "edge/pulled",
                    0,
                    source(pull(relay::State::Backoff), 7, 70),
                )],
            ),
        ];
        let series = StreamSeries::collect(answers, 10);
        assert_eq!(series.other, None, "nothing past the cap");
        let keys: Vec<&str> = series.top.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["edge/pulled", "live/cam", "live/wait"], "by name");
        let cam = &series.top[1].1;
        assert_eq!(
            *cam,
            StreamValues {
                players: 5,
                source: Some(Source {
                    kind: SourceKind::Publisher,
                    shard: ShardId(1),
                    live: true,
                }),
                frames_in: 40,
                bytes_in: 5000,
            }
        );
        assert!(cam.up());
        let pulled = &series.top[0].1;
        assert_eq!(
            pulled.source.map(|s| (s.kind, s.shard)),
            Some((SourceKind::Pull, ShardId(2)))
        );
        assert!(!pulled.up(), "a pull in backoff is down");
        let wait = &series.top[2].1;
        assert_eq!((wait.players, wait.source, wait.up()), (1, None, false));
    }

    #[test]
    fn past_the_cap_the_streams_with_fewest_players_are_summed_as_other() {
        let series = StreamSeries::collect(streams(10), 3);
        let keys: Vec<&str> = series.top.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["live/s7", "live/s8", "live/s9"]);
        // s0..s6: 0 + 1 + ... + 6 players and frames.
        assert_eq!(
            series.other,
            Some(Other {
                streams: 7,
                players: 21,
                up: 7,
                frames_in: 21,
                bytes_in: 2100,
            })
        );
        let total: u64 = series.top.iter().map(|(_, v)| v.players).sum();
        assert_eq!(total + 21, 45, "every player counted once");
    }

    #[test]
    fn ties_are_broken_by_name_so_the_same_streams_stay_in() {
        let reports = ["live/c", "live/a", "live/d", "live/b"]
            .map(|k| report(k, 1, None))
            .to_vec();
        let series = StreamSeries::collect(vec![(ShardId(0), reports)], 2);
        let keys: Vec<&str> = series.top.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["live/a", "live/b"]);
        assert_eq!(series.other.map(|o| o.streams), Some(2));
    }

    #[test]
    fn a_cap_of_zero_sums_every_stream() {
        let series = StreamSeries::collect(streams(4), 0);
        assert!(series.top.is_empty());
        assert_eq!(series.other.map(|o| (o.streams, o.players)), Some((4, 6)));
        assert_eq!(
            StreamSeries::collect(Vec::new(), 0),
            StreamSeries::default()
        );
    }

    #[test]
    fn a_stream_named_like_the_sum_is_counted_in_it() {
        let answers = vec![(
            ShardId(0),
            vec![
                report("_other/_other", 9, None),
                report("live/cam", 1, None),
            ],
        )];
        let series = StreamSeries::collect(answers, 5);
        let keys: Vec<&str> = series.top.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["live/cam"]);
        assert_eq!(series.other.map(|o| (o.streams, o.players)), Some((1, 9)));
    }
}
