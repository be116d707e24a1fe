//! What the load generator measures, per player and in total: time to
//! first frame, whether it started on a keyframe, end-to-end latency of
//! every stamped video frame and of every audio frame, lost frames,
//! stalls, bytes, HTTP requests and disconnects.
//!
//! Audio frames carry no stamp (an AAC frame has nowhere to put one that
//! decoders skip); their send time is inferred from the last stamped video
//! frame: the publisher sends by timestamp, so an audio frame `d` ms after
//! that video frame in stream time left `d` ms after it in wall time.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::stamp::Stamp;
use ringcast_rtmp::protocol::Timestamp;

/// Latencies and times to first frame are kept in microseconds up to this.
const HISTOGRAM_MAX_US: u64 = 120_000_000;
/// Audio further than this from the last stamped video frame in stream
/// time is not measured: across a timestamp jump (a republish, a looped
/// file) the inferred send time would be wrong.
const AUDIO_FROM_VIDEO_MAX_MS: i64 = 1000;

/// A new histogram for microsecond values, 3 significant digits.
#[allow(clippy::expect_used)]
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HISTOGRAM_MAX_US, 3)
        .expect("constant bounds satisfy hdrhistogram (low >= 1, high >= 2 * low, sigfig <= 5)")
}

/// One player's life so far.
#[derive(Debug)]
pub struct Player {
    frame_interval: Duration,
    /// Wall clock (µs) when the player started playing: frames stamped
    /// earlier come from the server's GOP cache, history by design, and
    /// count for time to first frame but not for latency.
    live_since_wall_us: u64,
    /// Since the player started connecting.
    first_video: Option<Duration>,
    saw_video_header: bool,
    started_on_keyframe: Option<bool>,
    last_seq: Option<(u32, u64)>,
    /// The last stamped video frame: its RTMP timestamp and its stamp's
    /// wall clock, from which audio latency is inferred.
    last_stamped: Option<(Timestamp, u64)>,
    last_frame_at: Option<Duration>,
    pub frames: u64,
    pub gaps: u64,
    pub stalls: u64,
    pub stall_time: Duration,
    pub bytes: u64,
    /// HTTP requests sent: one for an HTTP-FLV or WebSocket-FLV player,
    /// one per playlist, init segment and part for an HLS player, none
    /// over RTMP.
    pub requests: u64,
}

/// What the player saw in one video message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Video {
    SequenceHeader,
    Keyframe,
    Interframe,
}

impl Player {
    /// A player expecting a frame every `frame_interval`.
    pub fn new(frame_interval: Duration) -> Player {
        Player {
            frame_interval,
            live_since_wall_us: u64::MAX,
            first_video: None,
            saw_video_header: false,
            started_on_keyframe: None,
            last_seq: None,
            last_stamped: None,
            last_frame_at: None,
            frames: 0,
            gaps: 0,
            stalls: 0,
            stall_time: Duration::ZERO,
            bytes: 0,
            requests: 0,
        }
    }

    /// Frames come in bursts `interval` apart (an HLS part's frames arrive
    /// together when the part does), so only a wait of more than twice
    /// that, or twice the frame interval if longer, is a stall: a player
    /// waiting for the next part is not stalled.
    pub fn arriving_every(&mut self, interval: Duration) {
        self.frame_interval = self.frame_interval.max(interval);
    }

    /// The player's `play` was answered at `wall_us`.
    pub fn playing_since(&mut self, wall_us: u64) {
        self.live_since_wall_us = wall_us;
    }

    /// A video message with RTMP `timestamp` arrived `at` (since the
    /// player started), carrying `stamp` if it had one. Returns the latency
    /// to record, if any.
    pub fn video(
        &mut self,
        at: Duration,
        video: Video,
        timestamp: Timestamp,
        stamp: Option<Stamp>,
        now_wall_us: u64,
    ) -> Option<u64> {
        if video == Video::SequenceHeader {
            self.saw_video_header = true;
            return None;
        }
        if self.first_video.is_none() {
            self.first_video = Some(at);
            self.started_on_keyframe = Some(self.saw_video_header && video == Video::Keyframe);
        }
        self.frames += 1;
        if let Some(last) = self.last_frame_at {
            let gap = at.saturating_sub(last);
            if gap > 2 * self.frame_interval {
                self.stalls += 1;
                self.stall_time += gap;
            }
        }
        self.last_frame_at = Some(at);
        let stamp = stamp?;
        match self.last_seq {
            // A new publisher (or a republish) starts its own numbering.
            Some((publisher, seq)) if publisher == stamp.publisher && stamp.seq > seq => {
                self.gaps += stamp.seq - seq - 1;
            }
            _ => {}
        }
        self.last_seq = Some((stamp.publisher, stamp.seq));
        self.last_stamped = Some((timestamp, stamp.wall_us));
        (stamp.wall_us >= self.live_since_wall_us)
            .then(|| now_wall_us.saturating_sub(stamp.wall_us))
    }

    /// An audio frame (not a sequence header) with RTMP `timestamp`
    /// arrived. Returns its latency to record: from when the publisher
    /// sent it, inferred from the last stamped video frame, if there was
    /// one within `AUDIO_FROM_VIDEO_MAX_MS` and the audio was sent after
    /// the player started playing (older audio is GOP-cache history).
    pub fn audio(&mut self, timestamp: Timestamp, now_wall_us: u64) -> Option<u64> {
        let (video_timestamp, video_wall_us) = self.last_stamped?;
        // Wrapping difference: RTMP timestamps wrap at 2^32 ms.
        let after_ms = i64::from(timestamp.0.wrapping_sub(video_timestamp.0) as i32);
        if after_ms.abs() > AUDIO_FROM_VIDEO_MAX_MS {
            return None;
        }
        let sent_wall_us = video_wall_us.checked_add_signed(after_ms * 1000)?;
        (sent_wall_us >= self.live_since_wall_us).then(|| now_wall_us.saturating_sub(sent_wall_us))
    }

    /// Time to the first coded video frame, once there was one.
    pub fn time_to_first_frame(&self) -> Option<Duration> {
        self.first_video
    }

    pub fn started_on_keyframe(&self) -> Option<bool> {
        self.started_on_keyframe
    }
}

/// Everything players of one run (or one thread of it) measured.
#[derive(Clone, Debug)]
pub struct Totals {
    /// Video latency.
    pub latency_us: Histogram<u64>,
    pub audio_latency_us: Histogram<u64>,
    pub ttff_us: Histogram<u64>,
    pub players: u64,
    /// Players that received frames, lost none and were not disconnected.
    pub complete: u64,
    pub started_on_keyframe: u64,
    pub never_played: u64,
    pub frames: u64,
    pub gaps: u64,
    pub stalls: u64,
    pub stall_time: Duration,
    pub bytes: u64,
    pub requests: u64,
    /// Players that left early, by reason; churned players are not here.
    pub disconnects: BTreeMap<String, u64>,
}

impl Default for Totals {
    fn default() -> Self {
        Totals {
            latency_us: histogram(),
            audio_latency_us: histogram(),
            ttff_us: histogram(),
            players: 0,
            complete: 0,
            started_on_keyframe: 0,
            never_played: 0,
            frames: 0,
            gaps: 0,
            stalls: 0,
            stall_time: Duration::ZERO,
            bytes: 0,
            requests: 0,
            disconnects: BTreeMap::new(),
        }
    }
}

impl Totals {
    /// Adds a finished player; `disconnect` is why it ended early, if it did.
    pub fn add_player(&mut self, player: &Player, disconnect: Option<&str>) {
        self.players += 1;
        self.frames += player.frames;
        self.gaps += player.gaps;
        self.stalls += player.stalls;
        self.stall_time += player.stall_time;
        self.bytes += player.bytes;
        self.requests += player.requests;
        match player.time_to_first_frame() {
            Some(ttff) => {
                let _ = self
                    .ttff_us
                    .record(ttff.as_micros().clamp(1, u128::from(HISTOGRAM_MAX_US)) as u64);
            }
            None => self.never_played += 1,
        }
        if player.started_on_keyframe() == Some(true) {
            self.started_on_keyframe += 1;
        }
        if player.frames > 0 && player.gaps == 0 && disconnect.is_none() {
            self.complete += 1;
        }
        if let Some(reason) = disconnect {
            *self.disconnects.entry(reason.to_owned()).or_default() += 1;
        }
    }

    pub fn record_latency(&mut self, latency_us: u64) {
        let _ = self
            .latency_us
            .record(latency_us.clamp(1, HISTOGRAM_MAX_US));
    }

    pub fn record_audio_latency(&mut self, latency_us: u64) {
        let _ = self
            .audio_latency_us
            .record(latency_us.clamp(1, HISTOGRAM_MAX_US));
    }

    pub fn merge(&mut self, other: &Totals) {
        let _ = self.latency_us.add(&other.latency_us);
        let _ = self.audio_latency_us.add(&other.audio_latency_us);
        let _ = self.ttff_us.add(&other.ttff_us);
        self.players += other.players;
        self.complete += other.complete;
        self.started_on_keyframe += other.started_on_keyframe;
        self.never_played += other.never_played;
        self.frames += other.frames;
        self.gaps += other.gaps;
        self.stalls += other.stalls;
        self.stall_time += other.stall_time;
        self.bytes += other.bytes;
        self.requests += other.requests;
        for (reason, n) in &other.disconnects {
            *self.disconnects.entry(reason.clone()).or_default() += n;
        }
    }
}

/// Percentiles of a microsecond histogram, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        let ms = |us: u64| us as f64 / 1000.0;
        Percentiles {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(seq: u64) -> Option<Stamp> {
        Some(Stamp {
            wall_us: 1_000_000,
            seq,
            publisher: 0,
        })
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_clean_player_starts_on_a_keyframe_and_loses_nothing() {
        let mut p = Player::new(ms(33));
        p.playing_since(0);
        assert_eq!(
            p.video(ms(40), Video::SequenceHeader, Timestamp(0), None, 0),
            None
        );
        assert_eq!(
            p.video(ms(50), Video::Keyframe, Timestamp(0), stamp(7), 1_012_000),
            Some(12_000)
        );
        for (i, seq) in (8..20).enumerate() {
            p.video(
                ms(83 + 33 * i as u64),
                Video::Interframe,
                Timestamp(0),
                stamp(seq),
                1_010_000,
            );
        }
        assert_eq!(p.time_to_first_frame(), Some(ms(50)));
        assert_eq!(p.started_on_keyframe(), Some(true));
        assert_eq!((p.frames, p.gaps, p.stalls), (13, 0, 0));
        let mut totals = Totals::default();
        totals.add_player(&p, None);
        assert_eq!((totals.complete, totals.started_on_keyframe), (1, 1));
    }

    #[test]
    fn frames_from_before_the_play_count_for_first_frame_but_not_latency() {
        let mut p = Player::new(ms(33));
        p.playing_since(1_000_500);
        assert_eq!(
            p.video(ms(10), Video::Keyframe, Timestamp(0), stamp(1), 1_001_000),
            None,
            "cached"
        );
        let live = Some(Stamp {
            wall_us: 1_000_600,
            seq: 2,
            publisher: 0,
        });
        assert_eq!(
            p.video(ms(20), Video::Interframe, Timestamp(0), live, 1_001_000),
            Some(400)
        );
        assert_eq!(p.time_to_first_frame(), Some(ms(10)));
    }

    #[test]
    fn lost_frames_and_stalls_are_counted() {
        let mut p = Player::new(ms(33));
        p.video(ms(0), Video::Interframe, Timestamp(0), stamp(1), 0);
        p.video(ms(33), Video::Interframe, Timestamp(0), stamp(4), 0);
        p.video(ms(200), Video::Interframe, Timestamp(0), stamp(5), 0);
        assert_eq!(
            p.started_on_keyframe(),
            Some(false),
            "no header, no keyframe"
        );
        assert_eq!((p.gaps, p.stalls, p.stall_time), (2, 1, ms(167)));
        let mut totals = Totals::default();
        totals.add_player(&p, Some("server closed"));
        assert_eq!(totals.complete, 0);
        assert_eq!(totals.disconnects.get("server closed"), Some(&1));
    }

    #[test]
    fn frames_arriving_in_bursts_stall_only_past_twice_the_burst_interval() {
        let mut p = Player::new(ms(33));
        p.arriving_every(ms(200));
        // Six frames of a part at once, then the next part 200 ms later.
        for part in 0..3u64 {
            for _ in 0..6 {
                p.video(ms(200 * part), Video::Interframe, Timestamp(0), None, 0);
            }
        }
        assert_eq!(p.stalls, 0);
        // A part 500 ms late is a stall.
        p.video(ms(900), Video::Interframe, Timestamp(0), None, 0);
        assert_eq!((p.stalls, p.stall_time), (1, ms(500)));
        // A shorter burst interval never lowers the frame interval's.
        p.arriving_every(ms(10));
        p.video(ms(1300), Video::Interframe, Timestamp(0), None, 0);
        assert_eq!(p.stalls, 1);
    }

    #[test]
    fn requests_add_up_across_players_and_threads() {
        let mut p = Player::new(ms(33));
        p.requests = 5;
        let mut a = Totals::default();
        a.add_player(&p, None);
        let mut b = Totals::default();
        b.add_player(&p, None);
        a.merge(&b);
        assert_eq!(a.requests, 10);
    }

    #[test]
    fn a_new_publisher_restarts_the_sequence_without_a_gap() {
        let mut p = Player::new(ms(33));
        p.video(ms(0), Video::Keyframe, Timestamp(0), stamp(100), 0);
        let other = Some(Stamp {
            wall_us: 0,
            seq: 0,
            publisher: 1,
        });
        p.video(ms(33), Video::Keyframe, Timestamp(0), other, 0);
        p.video(ms(66), Video::Interframe, Timestamp(0), stamp(0), 0);
        assert_eq!(p.gaps, 0);
    }

    #[test]
    fn audio_latency_is_inferred_from_the_last_stamped_video_frame() {
        let mut p = Player::new(ms(33));
        p.playing_since(1_000_000);
        assert_eq!(p.audio(Timestamp(5_000), 1_100_000), None, "no video yet");
        let stamp = Some(Stamp {
            wall_us: 1_050_000,
            seq: 1,
            publisher: 0,
        });
        p.video(ms(50), Video::Keyframe, Timestamp(5_000), stamp, 1_060_000);
        // Sent 23 ms after the video frame, received 35 ms after it.
        assert_eq!(p.audio(Timestamp(5_023), 1_085_000), Some(12_000));
        // Sent 20 ms before it (interleaved by timestamp), received with it.
        assert_eq!(p.audio(Timestamp(4_980), 1_060_000), Some(30_000));
        // Sent before the player was playing: history.
        assert_eq!(p.audio(Timestamp(4_940), 1_060_000), None);
        // Too far from the video frame in stream time to infer.
        assert_eq!(p.audio(Timestamp(6_500), 2_600_000), None);
        assert_eq!(p.audio(Timestamp(3_000), 2_600_000), None);
    }

    #[test]
    fn audio_latency_holds_across_the_timestamp_wrap() {
        let mut p = Player::new(ms(33));
        p.playing_since(0);
        let stamp = Some(Stamp {
            wall_us: 1_000_000,
            seq: 1,
            publisher: 0,
        });
        p.video(
            ms(0),
            Video::Keyframe,
            Timestamp(u32::MAX - 9),
            stamp,
            1_000_000,
        );
        assert_eq!(p.audio(Timestamp(10), 1_025_000), Some(5_000));
    }

    #[test]
    fn totals_merge_and_give_percentiles() {
        let mut a = Totals::default();
        let mut b = Totals::default();
        for us in 1..=1000 {
            a.record_latency(us * 1000);
        }
        b.record_latency(5_000_000);
        a.merge(&b);
        let p = Percentiles::of(&a.latency_us);
        assert_eq!(p.count, 1001);
        assert!((p.p50_ms - 500.0).abs() < 2.0, "{p:?}");
        assert!((p.max_ms - 5000.0).abs() < 5.0, "{p:?}");
    }
}
