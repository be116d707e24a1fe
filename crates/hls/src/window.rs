//! The snapshot a stream's HLS players are served from: immutable once
//! made, shared (`Arc`) by every shard; the packager makes a new one each
//! time a part completes. Cloning a window clones `Arc`s and `Bytes`
//! handles, never media bytes.

use std::sync::Arc;

use bytes::Bytes;

/// A partial segment: one CMAF chunk (`moof` + `mdat`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    pub duration_ms: u32,
    /// It starts with a video keyframe (or the stream has no video).
    pub independent: bool,
    pub bytes: Bytes,
}

/// A media segment: its parts, in order. Served whole as their
/// concatenation (a CMAF segment of several fragments), with no copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Media sequence number.
    pub msn: u64,
    pub parts: Vec<Part>,
    /// The sum of its parts' durations.
    pub duration_ms: u32,
    /// No more parts come.
    pub complete: bool,
    /// `EXT-X-DISCONTINUITY` goes before it: the first segment after a
    /// new source or a new decoder configuration.
    pub discontinuity: bool,
    /// Which init segment its fragments need (`init{init}.mp4`).
    pub init: u32,
    /// Wall clock (Unix ms) of its first sample: `EXT-X-PROGRAM-DATE-TIME`.
    pub program_date_time_ms: u64,
}

impl Segment {
    /// Its bytes, all parts.
    pub fn len(&self) -> usize {
        self.parts.iter().map(|part| part.bytes.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }
}

/// What a stream's players see at one moment.
#[derive(Clone, Debug, Default)]
pub struct Window {
    /// `EXT-X-TARGETDURATION`, whole seconds.
    pub target_duration_s: u32,
    /// `EXT-X-PART-INF:PART-TARGET`, milliseconds.
    pub part_target_ms: u32,
    /// `EXT-X-DISCONTINUITY-SEQUENCE`: discontinuities that left the
    /// playlist.
    pub discontinuity_sequence: u64,
    /// Init segments the retained segments need, by number.
    pub inits: Vec<(u32, Bytes)>,
    /// Segments that may still be fetched, oldest first; the last may be
    /// the open one (`complete == false`), holding the parts made so far.
    pub segments: Vec<Arc<Segment>>,
    /// How many of the oldest `segments` are left out of the playlist
    /// (kept for players that read an older playlist).
    pub unlisted: usize,
    /// The media playlist for players with no query to pass on,
    /// rendered once per window.
    pub playlist: Bytes,
}

impl Window {
    /// The init segment `init{number}.mp4`.
    pub fn init(&self, number: u32) -> Option<&Bytes> {
        self.inits
            .iter()
            .find(|(n, _)| *n == number)
            .map(|(_, bytes)| bytes)
    }

    /// A segment by media sequence number, complete or open.
    pub fn segment(&self, msn: u64) -> Option<&Arc<Segment>> {
        let first = self.segments.first()?.msn;
        let index = usize::try_from(msn.checked_sub(first)?).ok()?;
        self.segments.get(index)
    }

    /// Part `index` of segment `msn`, once made.
    pub fn part(&self, msn: u64, index: u32) -> Option<&Part> {
        self.segment(msn)?.parts.get(usize::try_from(index).ok()?)
    }

    /// The segments the playlist lists.
    pub fn listed(&self) -> &[Arc<Segment>] {
        self.segments.get(self.unlisted..).unwrap_or_default()
    }

    /// The part being made now (the preload hint): its segment's number
    /// and its index.
    pub fn next_part(&self) -> Option<(u64, u32)> {
        let last = self.segments.last()?;
        if last.complete {
            Some((last.msn + 1, 0))
        } else {
            Some((last.msn, u32::try_from(last.parts.len()).ok()?))
        }
    }

    /// Bytes held: init segments and parts, counted once.
    pub fn bytes(&self) -> usize {
        self.inits.iter().map(|(_, init)| init.len()).sum::<usize>()
            + self
                .segments
                .iter()
                .map(|segment| segment.len())
                .sum::<usize>()
    }
}
