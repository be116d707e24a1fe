//! When a stream's players write: the write pacing of one stream on one
//! shard.
//!
//! Each `writev` costs the kernel a fixed amount on top of its bytes, and
//! at live rates that fixed part dominates: a real encoder sends AAC on its
//! own clock (43.07 frames/s at 44.1 kHz, 46.875 at 48 kHz) beside 24–60
//! fps of video, so writing every frame as it comes costs two writes per
//! video frame interval instead of one. The pacing decides, per frame
//! queued to the stream's players, whether their writers are woken now or
//! the frame is held for a later write:
//!
//! - window 0 (the default): video is written at once, carrying whatever
//!   was held; audio and metadata are held for the next video frame, but
//!   never longer than [`AUDIO_HOLD_MS`] (50). A player gets about one write per
//!   video frame interval and video gains no delay; an audio-only stream
//!   gets at most one write per [`AUDIO_HOLD_MS`].
//! - window W (`player.write_window_ms`, up to [`WRITE_WINDOW_MS_MAX`]):
//!   each player writes once every W ms what was queued since, as SRS's
//!   merged writes do: fewer, larger writes for up to W ms more latency.
//!   Players are spread over [`WINDOW_SLOTS`] phases of the window by
//!   connection serial, so a shard writes to one slot's players every
//!   W / [`WINDOW_SLOTS`] ms instead of to all of them at once: the bursts
//!   (and the queueing delay they add at both ends) are a quarter as large.
//!   The rotation runs while frames come and stops a window after the last.
//!
//! Pure: time comes in as milliseconds; the shard wakes writers and keeps
//! the deadlines.

use crate::session::MediaKind;

/// Longest audio (or metadata) waits for a video frame to ride with, in
/// ms. Why: one video frame interval at 20 fps and up (24 fps film: 41.7
/// ms), so with video every audio frame rides; players buffer far more
/// than this, and an audio-only stream gets 20 writes a second.
pub const AUDIO_HOLD_MS: u64 = 50;

/// Largest `player.write_window_ms`. Why: past half a second the added
/// latency is what players notice, while writes are already few and large.
pub const WRITE_WINDOW_MS_MAX: u64 = 500;

/// Phases a write window's players are spread over. Why: measured with a
/// 100 ms window and 1000 players on one shard (`benches/compare`), one
/// slot cost 0.51 s of CPU per GB at a latency p99 of 126 ms, two 0.65 s
/// and 114 ms, four 0.71 s and 100 ms, eight 0.80 s and 104 ms: smaller
/// bursts queue less at both ends, but a shard that writes to fewer
/// players at a time batches fewer submissions and wakes more.
pub const WINDOW_SLOTS: u64 = 4;

/// What to do with a frame just queued to a stream's players.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pace {
    /// Wake the writers now: they write this frame and everything held.
    Now,
    /// Hold it. With `deadline_ms`, [`Pacing::due`] must be asked at that
    /// time (unless a frame that writes at once comes first).
    Hold { deadline_ms: Option<u64> },
}

/// Whose writers to wake when a deadline comes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// Nobody: a write since took the frames.
    Nobody,
    /// Every player with anything queued.
    All,
    /// The players of `slot` (see [`Pacing::slot`]); ask again at
    /// `next_deadline_ms`, if given.
    Slot {
        slot: u64,
        next_deadline_ms: Option<u64>,
    },
}

/// One stream's write pacing on one shard.
#[derive(Clone, Debug)]
pub struct Pacing {
    window_ms: u64,
    /// No window: when the oldest frame not yet written was queued.
    held_since_ms: Option<u64>,
    /// A window: its rotation over the slots, while frames come.
    rotation: Option<Rotation>,
    last_frame_ms: u64,
}

/// Tick `k` of a rotation comes at `origin_ms + k × window / WINDOW_SLOTS`
/// and wakes slot `k mod WINDOW_SLOTS`.
#[derive(Clone, Copy, Debug)]
struct Rotation {
    origin_ms: u64,
    tick: u64,
}

impl Pacing {
    /// Pacing with a write window of `window_ms` (0: one write per video
    /// frame).
    pub fn new(window_ms: u64) -> Pacing {
        Pacing {
            window_ms: window_ms.min(WRITE_WINDOW_MS_MAX),
            held_since_ms: None,
            rotation: None,
            last_frame_ms: 0,
        }
    }

    /// The slot of the player whose connection has `serial`.
    pub fn slot(serial: u64) -> u64 {
        serial % WINDOW_SLOTS
    }

    /// A frame of `kind` was queued to the players at `now_ms`.
    pub fn on_frame(&mut self, kind: MediaKind, now_ms: u64) -> Pace {
        self.last_frame_ms = now_ms;
        if self.window_ms > 0 {
            if self.rotation.is_some() {
                return Pace::Hold { deadline_ms: None };
            }
            let rotation = Rotation {
                origin_ms: now_ms,
                tick: 1,
            };
            self.rotation = Some(rotation);
            return Pace::Hold {
                deadline_ms: Some(rotation.deadline_ms(self.window_ms)),
            };
        }
        if kind == MediaKind::Video {
            self.held_since_ms = None;
            return Pace::Now;
        }
        match self.held_since_ms {
            None => {
                self.held_since_ms = Some(now_ms);
                Pace::Hold {
                    deadline_ms: Some(now_ms + AUDIO_HOLD_MS),
                }
            }
            Some(since) if now_ms >= since + AUDIO_HOLD_MS => {
                self.held_since_ms = None;
                Pace::Now
            }
            Some(_) => Pace::Hold { deadline_ms: None },
        }
    }

    /// A deadline given by [`Pacing::on_frame`] or [`Due::Slot`] came.
    pub fn due(&mut self, deadline_ms: u64) -> Due {
        if self.window_ms == 0 {
            return match self.held_since_ms {
                Some(since) if since + AUDIO_HOLD_MS <= deadline_ms => {
                    self.held_since_ms = None;
                    Due::All
                }
                _ => Due::Nobody,
            };
        }
        let Some(rotation) = &mut self.rotation else {
            return Due::Nobody;
        };
        let slot = rotation.tick % WINDOW_SLOTS;
        rotation.tick += 1;
        // Every slot has had its tick since the last frame: stop until the
        // next one.
        let next_deadline_ms = if deadline_ms < self.last_frame_ms + self.window_ms {
            Some(rotation.deadline_ms(self.window_ms))
        } else {
            self.rotation = None;
            None
        };
        Due::Slot {
            slot,
            next_deadline_ms,
        }
    }
}

impl Rotation {
    fn deadline_ms(&self, window_ms: u64) -> u64 {
        self.origin_ms + self.tick * window_ms / WINDOW_SLOTS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUDIO: MediaKind = MediaKind::Audio;
    const VIDEO: MediaKind = MediaKind::Video;

    /// Plays `frames` (time, kind) through a pacing as the shard does,
    /// deadlines firing in time order; returns the times one player of
    /// each slot writes.
    fn writes(window_ms: u64, frames: &[(u64, MediaKind)]) -> Vec<Vec<u64>> {
        let mut pacing = Pacing::new(window_ms);
        let mut deadlines: Vec<u64> = Vec::new();
        let mut out = vec![Vec::new(); WINDOW_SLOTS as usize];
        for &(at, kind) in frames {
            fire(&mut pacing, &mut deadlines, &mut out, at);
            match pacing.on_frame(kind, at) {
                Pace::Now => out.iter_mut().for_each(|o| o.push(at)),
                Pace::Hold { deadline_ms } => deadlines.extend(deadline_ms),
            }
        }
        fire(&mut pacing, &mut deadlines, &mut out, u64::MAX);
        out
    }

    fn fire(pacing: &mut Pacing, deadlines: &mut Vec<u64>, out: &mut [Vec<u64>], until: u64) {
        deadlines.sort_unstable();
        while deadlines.first().is_some_and(|d| *d <= until) {
            let d = deadlines.remove(0);
            match pacing.due(d) {
                Due::Nobody => {}
                Due::All => out.iter_mut().for_each(|o| o.push(d)),
                Due::Slot {
                    slot,
                    next_deadline_ms,
                } => {
                    out[slot as usize].push(d);
                    deadlines.extend(next_deadline_ms);
                    deadlines.sort_unstable();
                }
            }
        }
    }

    /// A second of what ffmpeg sends: video at `fps` and AAC at
    /// `audio_rate`, interleaved by timestamp.
    fn encoder_second(fps: f64, audio_rate: f64) -> Vec<(u64, MediaKind)> {
        let mut frames = Vec::new();
        let (mut video, mut audio) = (0.0, 0.0);
        while video < 1000.0 || audio < 1000.0 {
            if audio < video {
                frames.push((audio as u64, AUDIO));
                audio += 1024.0 * 1000.0 / audio_rate;
            } else {
                frames.push((video as u64, VIDEO));
                video += 1000.0 / fps;
            }
        }
        frames
    }

    #[test]
    fn with_no_window_each_video_frame_is_one_write_and_audio_rides_with_it() {
        for (fps, audio_rate) in [(30.0, 44_100.0), (25.0, 48_000.0), (60.0, 44_100.0)] {
            let frames = encoder_second(fps, audio_rate);
            let video = frames.iter().filter(|f| f.1 == VIDEO).count();
            let writes = writes(0, &frames);
            assert!(writes.iter().all(|w| *w == writes[0]), "no slots");
            // Audio after the second's last video frame waits for its
            // deadline: one more.
            assert!(
                (video..=video + 1).contains(&writes[0].len()),
                "{fps} fps, {audio_rate} Hz: {} writes for {video} video frames",
                writes[0].len()
            );
        }
    }

    #[test]
    fn audio_is_never_held_longer_than_its_bound() {
        // 20 fps, a video frame every 50 ms, at the bound; 48 kHz audio
        // every 21.3 ms.
        let frames = encoder_second(20.0, 48_000.0);
        let writes = &writes(0, &frames)[0];
        for &(t, _) in &frames {
            let written = writes.iter().find(|w| **w >= t).copied();
            assert!(
                written.is_some_and(|w| w - t <= AUDIO_HOLD_MS),
                "frame at {t} written at {written:?}"
            );
        }
        // Still about one write per video frame.
        assert!(writes.len() <= 20 + 2, "{} writes", writes.len());
    }

    #[test]
    fn an_audio_only_stream_writes_at_most_once_per_hold() {
        let frames: Vec<_> = (0..44).map(|i| (i * 1000 / 43, AUDIO)).collect();
        let writes = &writes(0, &frames)[0];
        assert!(
            (12..=20).contains(&writes.len()),
            "{} writes a second",
            writes.len()
        );
    }

    #[test]
    fn a_window_gathers_what_each_player_is_sent_within_it_into_one_write() {
        let frames = encoder_second(30.0, 44_100.0);
        for window in [33, 100, 200, 350] {
            let writes = writes(window, &frames);
            for (slot, writes) in writes.iter().enumerate() {
                // One write per window, and the one that ends it.
                let most = 1000 / window as usize + 2;
                assert!(
                    (1000 / window as usize..=most).contains(&writes.len()),
                    "window {window}, slot {slot}: {} writes",
                    writes.len()
                );
                for (t, _) in &frames {
                    let written = writes.iter().find(|w| **w >= *t).copied();
                    assert!(
                        written.is_some_and(|w| w - t <= window),
                        "window {window}, slot {slot}: frame at {t} written at {written:?}"
                    );
                }
            }
            // The slots write at different times: smaller bursts.
            let mut firsts: Vec<u64> = writes.iter().map(|w| w[0]).collect();
            firsts.dedup();
            assert_eq!(firsts.len(), WINDOW_SLOTS as usize, "window {window}");
        }
    }

    #[test]
    fn a_window_stops_rotating_once_frames_stop() {
        let mut pacing = Pacing::new(100);
        let Pace::Hold {
            deadline_ms: Some(mut deadline),
        } = pacing.on_frame(VIDEO, 1000)
        else {
            panic!("the first frame starts the rotation");
        };
        let mut ticks = 0;
        loop {
            ticks += 1;
            match pacing.due(deadline) {
                Due::Slot {
                    next_deadline_ms: Some(next),
                    ..
                } => deadline = next,
                Due::Slot { .. } => break,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(ticks, WINDOW_SLOTS, "every slot once");
        // The next frame starts a new rotation.
        assert!(matches!(
            pacing.on_frame(AUDIO, 2000),
            Pace::Hold {
                deadline_ms: Some(_)
            }
        ));
    }

    #[test]
    fn a_deadline_after_a_write_is_stale() {
        let mut pacing = Pacing::new(0);
        assert_eq!(
            pacing.on_frame(AUDIO, 0),
            Pace::Hold {
                deadline_ms: Some(AUDIO_HOLD_MS)
            }
        );
        assert_eq!(pacing.on_frame(VIDEO, 10), Pace::Now);
        assert_eq!(
            pacing.due(AUDIO_HOLD_MS),
            Due::Nobody,
            "the video frame wrote it"
        );
        // Held again later: its own deadline counts, the old one does not.
        assert_eq!(
            pacing.on_frame(AUDIO, 30),
            Pace::Hold {
                deadline_ms: Some(30 + AUDIO_HOLD_MS)
            }
        );
        assert_eq!(pacing.due(AUDIO_HOLD_MS), Due::Nobody);
        assert_eq!(pacing.due(30 + AUDIO_HOLD_MS), Due::All);
    }
}
