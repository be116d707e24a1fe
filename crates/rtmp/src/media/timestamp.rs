//! Per-track timestamp correction: what players see is monotonic even when
//! the publisher's clock jitters backwards, resets, or another publisher
//! takes over.

use crate::protocol::Timestamp;

/// A forward jump larger than this (ms) is a discontinuity, not a pause:
/// real encoders never leave a track silent this long while publishing.
pub const JUMP_MAX_MS: u32 = 10_000;

/// Keeps one track (audio or video) monotonic: each output timestamp is at
/// least the previous one. Normal input passes through shifted by a
/// constant offset; a step backwards or a jump past `JUMP_MAX_MS`
/// re-anchors the offset so the track continues from where it was.
#[derive(Clone, Copy, Debug, Default)]
pub struct TimestampCorrector {
    /// Last output and the offset added to input; `None` before the first.
    state: Option<(Timestamp, u32)>,
}

impl TimestampCorrector {
    /// The corrected timestamp for `input`.
    pub fn correct(&mut self, input: Timestamp) -> Timestamp {
        let Some((last, offset)) = self.state else {
            self.state = Some((input, 0));
            return input;
        };
        let shifted = input.wrapping_add(offset);
        // Distance on the 2^32 circle: small positive is forward; anything
        // past 2^31 is backwards.
        let forward = shifted.wrapping_since(last);
        if forward <= JUMP_MAX_MS {
            self.state = Some((shifted, offset));
            shifted
        } else {
            // Re-anchor: this input now maps to the last output.
            self.state = Some((last, last.0.wrapping_sub(input.0)));
            last
        }
    }

    /// `output` went to players from elsewhere (another shard corrected
    /// it, or an earlier publisher): carry on from there, or from this
    /// track's own last output if that is later.
    pub fn observe(&mut self, output: Timestamp) {
        self.state = Some(match self.state {
            Some((last, offset)) => (last.later(output), offset),
            None => (output, 0),
        });
    }

    /// The last output, if there was one.
    pub fn last(&self) -> Option<Timestamp> {
        self.state.map(|(last, _)| last)
    }
}

/// The latest output of any of `tracks`.
pub fn latest<'a>(tracks: impl Iterator<Item = &'a TimestampCorrector>) -> Option<Timestamp> {
    tracks
        .filter_map(TimestampCorrector::last)
        .reduce(Timestamp::later)
}

/// A new publisher's first timestamp is `input` (on any track): every
/// track continues from the latest output of any, all shifted alike, so
/// the new publisher's spacing between audio and video is kept. (Left to
/// themselves, each track would re-anchor on its own last output and the
/// tracks would be off by as much as their last outputs were apart.)
pub fn rebase(tracks: &mut [&mut TimestampCorrector], input: Timestamp) {
    let Some(anchor) = latest(tracks.iter().map(|track| &**track)) else {
        return;
    };
    let offset = anchor.0.wrapping_sub(input.0);
    for track in tracks {
        let last = track.last().unwrap_or(anchor);
        track.state = Some((last, offset));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(inputs: &[u32]) -> Vec<u32> {
        let mut c = TimestampCorrector::default();
        inputs.iter().map(|t| c.correct(Timestamp(*t)).0).collect()
    }

    #[test]
    fn steady_input_passes_through() {
        assert_eq!(run(&[1000, 1033, 1066]), vec![1000, 1033, 1066]);
    }

    #[test]
    fn jitter_backwards_is_held_then_continues() {
        assert_eq!(
            run(&[100, 133, 120, 166, 200]),
            vec![100, 133, 133, 179, 213]
        );
    }

    #[test]
    fn a_reset_to_zero_continues_from_the_last_output() {
        assert_eq!(
            run(&[50_000, 50_033, 0, 33, 66]),
            vec![50_000, 50_033, 50_033, 50_066, 50_099]
        );
    }

    #[test]
    fn a_huge_forward_jump_is_a_discontinuity() {
        assert_eq!(run(&[0, 33, 1_000_000, 1_000_033]), vec![0, 33, 33, 66]);
    }

    #[test]
    fn a_rebase_continues_every_track_from_the_latest_keeping_their_spacing() {
        let (mut audio, mut video, mut data) = Default::default();
        let correct = |track: &mut TimestampCorrector, t| track.correct(Timestamp(t)).0;
        assert_eq!(correct(&mut video, 50_033), 50_033);
        assert_eq!(correct(&mut audio, 50_010), 50_010);
        // The new publisher starts both tracks at 0, audio then video 20 ms on.
        rebase(&mut [&mut audio, &mut video, &mut data], Timestamp(0));
        assert_eq!(correct(&mut audio, 0), 50_033);
        assert_eq!(correct(&mut video, 20), 50_053);
        assert_eq!(correct(&mut data, 30), 50_063);
        assert_eq!(correct(&mut audio, 23), 50_056);
    }

    #[test]
    fn a_rebase_before_any_timestamp_changes_nothing() {
        let mut video = TimestampCorrector::default();
        rebase(&mut [&mut video], Timestamp(500));
        assert_eq!(video.correct(Timestamp(500)), Timestamp(500));
    }

    #[test]
    fn wrapping_at_2_pow_32_is_forward_not_a_reset() {
        assert_eq!(
            run(&[u32::MAX - 10, 5, 40]),
            vec![u32::MAX - 10, 5, 40],
            "wrap-around is continuous"
        );
    }
}
