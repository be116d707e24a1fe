//! CMAF as an HLS player reads it (ISO/IEC 14496-12 §8.8, ISO/IEC
//! 23000-19): the init segment's tracks ([`Tracks`]), then each part's
//! `moof` and `mdat` walked as the bytes arrive ([`Walker`]): every
//! sample comes out with its track's kind, its decode time, whether it is
//! a sync sample, and its first bytes (a video sample's are where the
//! bench's stamp is). The rest of each `mdat` is skimmed, never kept, as
//! the FLV players keep only the first bytes of each tag: a player holds
//! one `moof` and a few bytes per sample, whatever the part's size.
//!
//! A part may hold several fragments (a whole segment does), and boxes a
//! player need not read (`styp`, `prft`, `sidx`, `emsg`, `free`) are
//! skipped. Nothing here panics on any input: what cannot be read is an
//! [`Error`].

use std::collections::VecDeque;

/// Bytes of each video sample kept: the stamp's SEI NAL unit (about 45
/// bytes with its length) is the first NAL unit, or follows an access
/// unit delimiter (6 bytes); as `player::MEDIA_PREFIX` for FLV, which
/// also holds a 5-byte tag header.
pub const VIDEO_PREFIX_BYTES: usize = 96;
/// A `moof` longer than this is refused: it is buffered whole before its
/// samples can be placed. A 2 s segment's worth of 60 fps video and 48
/// kHz audio in one fragment has a `moof` of about 5 KB; a server sending
/// 1 MiB of them (65 536 samples of 16 bytes) is broken.
pub const MOOF_BYTES_MAX: usize = 1024 * 1024;
/// Samples one `moof` may describe: a `trun` with no per-sample fields
/// describes any number in 12 bytes, so the count is bounded apart from
/// the size. A part is well under a second, a few hundred samples at most.
pub const MOOF_SAMPLES_MAX: usize = 16 * 1024;
/// Tracks read from an init segment; more are refused. CMAF has one track
/// per file, HLS muxes at most video, audio and subtitles.
pub const TRACKS_MAX: usize = 16;

/// `tfhd` and `trun` flags and sample flags (ISO/IEC 14496-12 §8.8.7.1,
/// §8.8.8.1, §8.8.3.1).
const TFHD_BASE_DATA_OFFSET: u32 = 0x1;
const TFHD_SAMPLE_DESCRIPTION_INDEX: u32 = 0x2;
const TFHD_DEFAULT_DURATION: u32 = 0x8;
const TFHD_DEFAULT_SIZE: u32 = 0x10;
const TFHD_DEFAULT_FLAGS: u32 = 0x20;
const TRUN_DATA_OFFSET: u32 = 0x1;
const TRUN_FIRST_SAMPLE_FLAGS: u32 = 0x4;
const TRUN_DURATION: u32 = 0x100;
const TRUN_SIZE: u32 = 0x200;
const TRUN_FLAGS: u32 = 0x400;
const TRUN_COMPOSITION_OFFSET: u32 = 0x800;
const SAMPLE_IS_NON_SYNC: u32 = 0x0001_0000;

/// What a track carries, from its `hdlr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Video,
    Audio,
    Other,
}

/// One track of an init segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Track {
    pub id: u32,
    pub kind: Kind,
    /// `mdhd` units per second.
    pub timescale: u32,
    /// `trex`: what a fragment's samples have unless it says otherwise.
    defaults: Defaults,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Defaults {
    duration: u32,
    size: u32,
    flags: u32,
}

/// The tracks of an init segment (`moov`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tracks(Vec<Track>);

/// One sample of a fragment, as far as the player measures it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    pub kind: Kind,
    /// Decode time in milliseconds (`tfdt` plus the durations before it,
    /// out of the track's timescale).
    pub decode_time_ms: u64,
    /// A sync sample: for video, a keyframe.
    pub sync: bool,
    /// The sample's first bytes: up to [`VIDEO_PREFIX_BYTES`] of a video
    /// sample, none of others.
    pub prefix: Vec<u8>,
}

/// Why an init segment or a fragment cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("{name} box of {size} bytes is shorter than its header")]
    BoxTooShort { name: String, size: u64 },
    #[error("{name} box of {size} bytes runs past the {room} bytes that hold it")]
    BoxOverrun { name: String, size: u64, room: u64 },
    #[error("{name} box is cut short")]
    Short { name: &'static str },
    #[error("moof of {size} bytes exceeds max {MOOF_BYTES_MAX}")]
    MoofTooLong { size: u64 },
    #[error("moof describes more than max {MOOF_SAMPLES_MAX} samples")]
    TooManySamples,
    #[error("init segment has more than max {TRACKS_MAX} tracks")]
    TooManyTracks,
    #[error("init segment has no moov with a track")]
    NoTracks,
    #[error("trun before its tfhd")]
    NoTfhd,
    #[error("sample data at byte {offset} is not after its moof")]
    DataOffset { offset: i128 },
    #[error("{count} samples' data never came")]
    MissingData { count: usize },
    #[error("fragment ends inside a box")]
    Truncated,
}

impl Tracks {
    /// Reads the tracks of an init segment: for each `trak`, its id
    /// (`tkhd`), kind (`hdlr`) and timescale (`mdhd`); and the defaults of
    /// its fragments (`mvex` `trex`).
    pub fn parse(init: &[u8]) -> Result<Tracks, Error> {
        let mut tracks = Vec::new();
        let mut defaults = Vec::new();
        for item in Boxes::new(init) {
            let (name, moov) = item?;
            if &name != b"moov" {
                continue;
            }
            for item in Boxes::new(moov) {
                let (name, body) = item?;
                match &name {
                    b"trak" => tracks.extend(trak(body)?),
                    b"mvex" => defaults.extend(trex(body)?),
                    _ => {}
                }
                if tracks.len() > TRACKS_MAX || defaults.len() > TRACKS_MAX {
                    return Err(Error::TooManyTracks);
                }
            }
        }
        if tracks.is_empty() {
            return Err(Error::NoTracks);
        }
        for track in &mut tracks {
            if let Some((_, found)) = defaults.iter().find(|(id, _)| *id == track.id) {
                track.defaults = *found;
            }
        }
        Ok(Tracks(tracks))
    }

    pub fn has_video(&self) -> bool {
        self.0.iter().any(|t| t.kind == Kind::Video)
    }

    fn get(&self, id: u32) -> Option<&Track> {
        self.0.iter().find(|t| t.id == id)
    }
}

/// A `trak`'s id, kind and timescale; none if it lacks one of them.
fn trak(body: &[u8]) -> Result<Option<Track>, Error> {
    let (mut id, mut kind, mut timescale) = (None, Kind::Other, None);
    for item in Boxes::new(body) {
        let (name, body) = item?;
        match &name {
            b"tkhd" => {
                let mut r = Reader::new(body, "tkhd");
                let version = r.u8()?;
                r.skip(3 + if version == 1 { 16 } else { 8 })?;
                id = Some(r.u32()?);
            }
            b"mdia" => {
                for item in Boxes::new(body) {
                    let (name, body) = item?;
                    match &name {
                        b"mdhd" => {
                            let mut r = Reader::new(body, "mdhd");
                            let version = r.u8()?;
                            r.skip(3 + if version == 1 { 16 } else { 8 })?;
                            timescale = Some(r.u32()?).filter(|t| *t > 0);
                        }
                        b"hdlr" => {
                            let mut r = Reader::new(body, "hdlr");
                            r.skip(8)?;
                            kind = match &r.fourcc()? {
                                b"vide" => Kind::Video,
                                b"soun" => Kind::Audio,
                                _ => Kind::Other,
                            };
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(id.zip(timescale).map(|(id, timescale)| Track {
        id,
        kind,
        timescale,
        defaults: Defaults::default(),
    }))
}

/// The `trex` boxes of an `mvex`: each track's fragment defaults.
fn trex(body: &[u8]) -> Result<Vec<(u32, Defaults)>, Error> {
    let mut found = Vec::new();
    for item in Boxes::new(body) {
        let (name, body) = item?;
        if &name != b"trex" {
            continue;
        }
        let mut r = Reader::new(body, "trex");
        r.skip(4)?;
        let id = r.u32()?;
        r.skip(4)?;
        let defaults = Defaults {
            duration: r.u32()?,
            size: r.u32()?,
            flags: r.u32()?,
        };
        found.push((id, defaults));
        if found.len() > TRACKS_MAX {
            return Err(Error::TooManyTracks);
        }
    }
    Ok(found)
}

/// Walks one response body of fragments as its bytes arrive.
#[derive(Debug)]
pub struct Walker {
    tracks: Tracks,
    /// Offset in the body of the next byte.
    at: u64,
    state: State,
    /// The box header being read (16 bytes with a 64-bit size), and how
    /// many of its bytes came.
    header: [u8; 16],
    header_len: usize,
    /// The contents of the `moof` being read (after its header).
    moof: Vec<u8>,
    moof_start: u64,
    /// Samples described, their first bytes not all here yet, by offset.
    pending: VecDeque<Pending>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Header,
    /// Inside a box whose contents are wanted (`moof`) or walked
    /// (`mdat`) or skipped; `end` is `None` for a box that runs to the
    /// end of the body.
    Moof {
        end: u64,
    },
    Mdat {
        end: Option<u64>,
    },
    Skip {
        end: Option<u64>,
    },
}

/// A sample waiting for its first bytes.
#[derive(Debug)]
struct Pending {
    sample: Sample,
    /// Where its data starts in the body.
    offset: u64,
    /// How many of its bytes are kept.
    want: usize,
}

impl Walker {
    /// A walker of fragments of `tracks`.
    pub fn new(tracks: Tracks) -> Walker {
        Walker {
            tracks,
            at: 0,
            state: State::Header,
            header: [0; 16],
            header_len: 0,
            moof: Vec::new(),
            moof_start: 0,
            pending: VecDeque::new(),
        }
    }

    /// Walks the next bytes of the body; `out` gets each sample, in data
    /// order, once its first bytes are here. After an error the rest of
    /// the body cannot be walked.
    pub fn feed(&mut self, mut bytes: &[u8], out: &mut impl FnMut(Sample)) -> Result<(), Error> {
        loop {
            self.close_box(out)?;
            if bytes.is_empty() {
                return Ok(());
            }
            let used = match self.state {
                State::Header => self.header(bytes)?,
                State::Moof { end } => {
                    let n = self.within(end, bytes.len());
                    self.moof
                        .extend_from_slice(bytes.get(..n).unwrap_or_default());
                    self.at += n as u64;
                    n
                }
                State::Mdat { end } => {
                    let n = end.map_or(bytes.len(), |end| self.within(end, bytes.len()));
                    // Moves `at` on.
                    self.data(bytes.get(..n).unwrap_or_default(), out);
                    n
                }
                State::Skip { end } => {
                    let n = end.map_or(bytes.len(), |end| self.within(end, bytes.len()));
                    self.at += n as u64;
                    n
                }
            };
            // Each arm takes at least one byte of what it was given.
            debug_assert!(used > 0 && used <= bytes.len());
            bytes = bytes.get(used..).unwrap_or_default();
        }
    }

    /// The body ended: every sample described must have come. The walker
    /// may walk another body after.
    pub fn finish(&mut self) -> Result<(), Error> {
        let ended_inside = !matches!(
            self.state,
            State::Header | State::Mdat { end: None } | State::Skip { end: None }
        ) || self.header_len > 0;
        let missing = self.pending.len();
        self.reset();
        if ended_inside {
            return Err(Error::Truncated);
        }
        if missing > 0 {
            return Err(Error::MissingData { count: missing });
        }
        Ok(())
    }

    /// Forgets a body walked part way (its answer was lost), to walk
    /// another.
    pub fn reset(&mut self) {
        *self = Walker::new(std::mem::take(&mut self.tracks));
    }

    /// How many of `len` bytes belong to the box that ends at `end`.
    fn within(&self, end: u64, len: usize) -> usize {
        let left = end.saturating_sub(self.at);
        usize::try_from(left).map_or(len, |left| left.min(len))
    }

    /// Reads a box header from `bytes`; returns how many it took.
    fn header(&mut self, bytes: &[u8]) -> Result<usize, Error> {
        let need = if self.header_len >= 8 && self.header.get(..4) == Some(&[0, 0, 0, 1]) {
            16
        } else {
            8
        };
        let room = self
            .header
            .get_mut(self.header_len..need)
            .unwrap_or_default();
        let n = room.len().min(bytes.len());
        room.get_mut(..n)
            .unwrap_or_default()
            .copy_from_slice(bytes.get(..n).unwrap_or_default());
        self.header_len += n;
        self.at += n as u64;
        if self.header_len < need {
            return Ok(n);
        }
        let mut r = Reader::new(&self.header, "box header");
        let size32 = r.u32()?;
        let name = r.fourcc()?;
        if size32 == 1 && need == 8 {
            // A 64-bit size follows; read on.
            return Ok(n);
        }
        let size = match size32 {
            0 => None,
            1 => Some(r.u64()?),
            size => Some(u64::from(size)),
        };
        self.header_len = 0;
        let start = self.at - need as u64;
        if let Some(size) = size.filter(|size| *size < need as u64) {
            return Err(Error::BoxTooShort {
                name: fourcc_name(name),
                size,
            });
        }
        let end = size.and_then(|size| start.checked_add(size));
        self.state = match &name {
            b"moof" => {
                let size = size.unwrap_or(u64::MAX);
                if size > MOOF_BYTES_MAX as u64 {
                    return Err(Error::MoofTooLong { size });
                }
                self.moof.clear();
                self.moof_start = start;
                State::Moof {
                    end: start.saturating_add(size),
                }
            }
            b"mdat" => State::Mdat { end },
            _ => State::Skip { end },
        };
        Ok(n)
    }

    /// Ends the box the walk is in if all its bytes came.
    fn close_box(&mut self, out: &mut impl FnMut(Sample)) -> Result<(), Error> {
        match self.state {
            State::Moof { end } if self.at >= end => {
                self.state = State::Header;
                let moof = std::mem::take(&mut self.moof);
                let samples = samples(&moof, self.moof_start, &self.tracks);
                self.moof = moof;
                self.add_pending(samples?)?;
                // Samples with no bytes to keep are complete at once.
                self.data(&[], out);
            }
            State::Mdat { end: Some(end) } | State::Skip { end: Some(end) } if self.at >= end => {
                self.state = State::Header;
            }
            _ => {}
        }
        Ok(())
    }

    fn add_pending(&mut self, mut samples: Vec<Pending>) -> Result<(), Error> {
        if samples.iter().any(|p| p.offset < self.at) {
            let offset = samples.iter().map(|p| p.offset).min().unwrap_or_default();
            return Err(Error::DataOffset {
                offset: i128::from(offset),
            });
        }
        if self.pending.len().saturating_add(samples.len()) > MOOF_SAMPLES_MAX {
            return Err(Error::TooManySamples);
        }
        samples.sort_by_key(|p| p.offset);
        let mut merged: Vec<Pending> = self.pending.drain(..).collect();
        merged.extend(samples);
        merged.sort_by_key(|p| p.offset);
        self.pending = merged.into();
        Ok(())
    }

    /// `bytes` of an `mdat`, starting at `self.at`: the samples they
    /// start get their first bytes; those complete go out.
    fn data(&mut self, bytes: &[u8], out: &mut impl FnMut(Sample)) {
        let start = self.at;
        let end = start + bytes.len() as u64;
        for pending in &mut self.pending {
            if pending.offset >= end {
                break;
            }
            let kept = pending.sample.prefix.len();
            let from = pending.offset + kept as u64;
            let missing = pending.want - kept;
            if missing == 0 || from < start {
                continue;
            }
            let skip = usize::try_from(from - start).unwrap_or(usize::MAX);
            let piece = bytes.get(skip..).unwrap_or_default();
            let piece = piece.get(..missing.min(piece.len())).unwrap_or_default();
            pending.sample.prefix.extend_from_slice(piece);
        }
        while let Some(front) = self.pending.front() {
            if front.sample.prefix.len() < front.want || front.offset > end {
                break;
            }
            if let Some(done) = self.pending.pop_front() {
                out(done.sample);
            }
        }
        self.at = end;
    }
}

/// The samples a `moof` describes (its contents, after its header; its
/// first byte at `moof_start` in the body), with where their data is.
fn samples(moof: &[u8], moof_start: u64, tracks: &Tracks) -> Result<Vec<Pending>, Error> {
    let mut found = Vec::new();
    for item in Boxes::new(moof) {
        let (name, body) = item?;
        if &name == b"traf" {
            traf(body, moof_start, tracks, &mut found)?;
        }
    }
    Ok(found)
}

/// What a `tfhd` says.
struct Fragment {
    track: Track,
    base: u64,
    defaults: Defaults,
}

fn traf(
    body: &[u8],
    moof_start: u64,
    tracks: &Tracks,
    found: &mut Vec<Pending>,
) -> Result<(), Error> {
    let mut fragment: Option<Fragment> = None;
    let mut decode_time = 0u64;
    // Where the next run's data is when it names no offset.
    let mut next_data: Option<u64> = None;
    for item in Boxes::new(body) {
        let (name, body) = item?;
        match &name {
            b"tfhd" => fragment = tfhd(body, moof_start, tracks)?,
            b"tfdt" => {
                let mut r = Reader::new(body, "tfdt");
                let version = r.u8()?;
                r.skip(3)?;
                decode_time = if version == 1 {
                    r.u64()?
                } else {
                    u64::from(r.u32()?)
                };
            }
            b"trun" => {
                let Some(fragment) = &fragment else {
                    return Err(Error::NoTfhd);
                };
                let run = Run {
                    fragment,
                    decode_time,
                    data: next_data.unwrap_or(fragment.base),
                };
                let (end_time, end_data) = run.read(body, found)?;
                decode_time = end_time;
                next_data = Some(end_data);
            }
            _ => {}
        }
    }
    Ok(())
}

/// The track a `tfhd` names (`None`: one not in the init segment, whose
/// samples are not measured), its base data offset and its defaults.
fn tfhd(body: &[u8], moof_start: u64, tracks: &Tracks) -> Result<Option<Fragment>, Error> {
    let mut r = Reader::new(body, "tfhd");
    let flags = r.u32()? & 0x00FF_FFFF;
    let id = r.u32()?;
    let Some(track) = tracks.get(id).copied() else {
        return Ok(None);
    };
    // CMAF fragments set default-base-is-moof; without a base data offset
    // the moof is the base either way for the first traf (§8.8.7.1).
    let base = if flags & TFHD_BASE_DATA_OFFSET != 0 {
        r.u64()?
    } else {
        moof_start
    };
    if flags & TFHD_SAMPLE_DESCRIPTION_INDEX != 0 {
        r.skip(4)?;
    }
    let mut defaults = track.defaults;
    if flags & TFHD_DEFAULT_DURATION != 0 {
        defaults.duration = r.u32()?;
    }
    if flags & TFHD_DEFAULT_SIZE != 0 {
        defaults.size = r.u32()?;
    }
    if flags & TFHD_DEFAULT_FLAGS != 0 {
        defaults.flags = r.u32()?;
    }
    Ok(Some(Fragment {
        track,
        base,
        defaults,
    }))
}

/// One `trun` of a track fragment.
struct Run<'f> {
    fragment: &'f Fragment,
    /// Of its first sample, in the track's timescale.
    decode_time: u64,
    /// Where its data is unless it says.
    data: u64,
}

impl Run<'_> {
    /// Adds its samples to `found`; returns the decode time and data
    /// offset after its last.
    fn read(&self, body: &[u8], found: &mut Vec<Pending>) -> Result<(u64, u64), Error> {
        let mut r = Reader::new(body, "trun");
        let flags = r.u32()? & 0x00FF_FFFF;
        let count = usize::try_from(r.u32()?).unwrap_or(usize::MAX);
        let mut data = self.data;
        if flags & TRUN_DATA_OFFSET != 0 {
            let offset = i64::from(r.i32()?);
            data = self
                .fragment
                .base
                .checked_add_signed(offset)
                .ok_or(Error::DataOffset {
                    offset: i128::from(self.fragment.base) + i128::from(offset),
                })?;
        }
        let first_flags = if flags & TRUN_FIRST_SAMPLE_FLAGS != 0 {
            Some(r.u32()?)
        } else {
            None
        };
        if found.len().saturating_add(count) > MOOF_SAMPLES_MAX {
            return Err(Error::TooManySamples);
        }
        let Fragment {
            track, defaults, ..
        } = self.fragment;
        let mut decode_time = self.decode_time;
        for index in 0..count {
            let field = |r: &mut Reader<'_>, bit: u32, default: u32| {
                if flags & bit != 0 {
                    r.u32()
                } else {
                    Ok(default)
                }
            };
            let duration = field(&mut r, TRUN_DURATION, defaults.duration)?;
            let size = field(&mut r, TRUN_SIZE, defaults.size)?;
            let sample_flags = field(&mut r, TRUN_FLAGS, defaults.flags)?;
            field(&mut r, TRUN_COMPOSITION_OFFSET, 0)?;
            let sample_flags = match first_flags {
                Some(first) if index == 0 => first,
                _ => sample_flags,
            };
            let want = match track.kind {
                Kind::Video => VIDEO_PREFIX_BYTES.min(usize::try_from(size).unwrap_or(usize::MAX)),
                Kind::Audio | Kind::Other => 0,
            };
            if track.kind != Kind::Other {
                found.push(Pending {
                    sample: Sample {
                        kind: track.kind,
                        decode_time_ms: milliseconds(decode_time, track.timescale),
                        sync: sample_flags & SAMPLE_IS_NON_SYNC == 0,
                        prefix: Vec::new(),
                    },
                    offset: data,
                    want,
                });
            }
            decode_time = decode_time.wrapping_add(u64::from(duration));
            data = data.saturating_add(u64::from(size));
        }
        Ok((decode_time, data))
    }
}

/// `units` of `timescale` per second, in milliseconds.
fn milliseconds(units: u64, timescale: u32) -> u64 {
    let ms = u128::from(units) * 1000 / u128::from(timescale.max(1));
    u64::try_from(ms).unwrap_or(u64::MAX)
}

fn fourcc_name(name: [u8; 4]) -> String {
    String::from_utf8_lossy(&name).into_owned()
}

/// The boxes of a buffer that holds them whole, in order.
struct Boxes<'a> {
    rest: &'a [u8],
}

impl<'a> Boxes<'a> {
    fn new(bytes: &'a [u8]) -> Boxes<'a> {
        Boxes { rest: bytes }
    }
}

impl<'a> Iterator for Boxes<'a> {
    type Item = Result<([u8; 4], &'a [u8]), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let item = self.take();
        if item.is_err() {
            // Nothing after a broken box can be found.
            self.rest = &[];
        }
        Some(item)
    }
}

impl<'a> Boxes<'a> {
    fn take(&mut self) -> Result<([u8; 4], &'a [u8]), Error> {
        let mut r = Reader::new(self.rest, "box header");
        let size32 = r.u32()?;
        let name = r.fourcc()?;
        let (size, header) = match size32 {
            0 => (self.rest.len() as u64, 8),
            1 => (r.u64()?, 16),
            size => (u64::from(size), 8),
        };
        if size < header {
            return Err(Error::BoxTooShort {
                name: fourcc_name(name),
                size,
            });
        }
        let room = self.rest.len() as u64;
        let whole = usize::try_from(size)
            .ok()
            .and_then(|size| self.rest.get(..size))
            .ok_or(Error::BoxOverrun {
                name: fourcc_name(name),
                size,
                room,
            })?;
        self.rest = self.rest.get(whole.len()..).unwrap_or_default();
        Ok((name, whole.get(header as usize..).unwrap_or_default()))
    }
}

/// Big-endian fields of one box, checked.
struct Reader<'a> {
    rest: &'a [u8],
    name: &'static str,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], name: &'static str) -> Reader<'a> {
        Reader { rest: bytes, name }
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let short = Error::Short { name: self.name };
        let (bytes, rest) = self.rest.split_first_chunk::<N>().ok_or(short)?;
        self.rest = rest;
        Ok(*bytes)
    }

    fn skip(&mut self, n: usize) -> Result<(), Error> {
        self.rest = self.rest.get(n..).ok_or(Error::Short { name: self.name })?;
        Ok(())
    }

    fn u8(&mut self) -> Result<u8, Error> {
        Ok(u8::from_be_bytes(self.take()?))
    }

    fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_be_bytes(self.take()?))
    }

    fn i32(&mut self) -> Result<i32, Error> {
        Ok(i32::from_be_bytes(self.take()?))
    }

    fn u64(&mut self) -> Result<u64, Error> {
        Ok(u64::from_be_bytes(self.take()?))
    }

    fn fourcc(&mut self) -> Result<[u8; 4], Error> {
        self.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hls::testing::{Sample as Made, avcc, fragment, full_box, init_segment, mp4_box};
    use crate::stamp::Stamp;

    fn stamp(seq: u64) -> Stamp {
        Stamp {
            wall_us: 1_764_356_000_000_000 + seq * 33_333,
            seq,
            publisher: 0,
        }
    }

    /// A part of two stamped video frames (a keyframe, then not) and three
    /// audio frames, and what it holds.
    fn part() -> (Vec<u8>, Vec<Vec<u8>>) {
        let slice = vec![0x41; 3000];
        let key = avcc(&[&stamp(1).to_nal(), &[0x65; 5000]]);
        let inter = avcc(&[&[0x09, 0xF0], &stamp(2).to_nal(), &slice]);
        let video = [
            Made {
                data: &key,
                duration: 3000,
                sync: true,
            },
            Made {
                data: &inter,
                duration: 3000,
                sync: false,
            },
        ];
        let aac = [0x21; 300];
        let audio: Vec<Made<'_>> = (0..3)
            .map(|_| Made {
                data: &aac,
                duration: 1024,
                sync: true,
            })
            .collect();
        let bytes = fragment(7, &[(1, 900_000, &video), (2, 480_000, &audio)]);
        (bytes, vec![key, inter])
    }

    fn walk(bytes: &[u8], piece: usize) -> Result<Vec<Sample>, Error> {
        let mut walker = Walker::new(Tracks::parse(&init_segment())?);
        let mut samples = Vec::new();
        for chunk in bytes.chunks(piece.max(1)) {
            walker.feed(chunk, &mut |s| samples.push(s))?;
        }
        walker.finish()?;
        Ok(samples)
    }

    #[test]
    fn an_init_segment_names_its_tracks_kinds_and_timescales() {
        let tracks = Tracks::parse(&init_segment()).expect("valid");
        assert!(tracks.has_video());
        let video = tracks.get(1).expect("video");
        assert_eq!((video.kind, video.timescale), (Kind::Video, 90_000));
        assert_eq!(video.defaults.flags, 0x0101_0000);
        let audio = tracks.get(2).expect("audio");
        assert_eq!((audio.kind, audio.timescale), (Kind::Audio, 48_000));
        assert_eq!(Tracks::parse(b""), Err(Error::NoTracks));
        assert_eq!(Tracks::parse(&mp4_box(b"moov", &[])), Err(Error::NoTracks));
    }

    #[test]
    fn each_video_samples_stamp_flags_and_time_come_out_and_audio_is_counted() {
        let (bytes, _) = part();
        let samples = walk(&bytes, bytes.len()).expect("valid");
        let video: Vec<_> = samples.iter().filter(|s| s.kind == Kind::Video).collect();
        assert_eq!(video.len(), 2);
        assert_eq!(
            video
                .iter()
                .map(|s| Stamp::find_in_nals(&s.prefix))
                .collect::<Vec<_>>(),
            [Some(stamp(1)), Some(stamp(2))]
        );
        assert_eq!(
            video
                .iter()
                .map(|s| (s.sync, s.decode_time_ms))
                .collect::<Vec<_>>(),
            [(true, 10_000), (false, 10_033)]
        );
        assert!(video.iter().all(|s| s.prefix.len() == VIDEO_PREFIX_BYTES));
        let audio: Vec<_> = samples.iter().filter(|s| s.kind == Kind::Audio).collect();
        assert_eq!(
            audio.iter().map(|s| s.decode_time_ms).collect::<Vec<_>>(),
            [10_000, 10_021, 10_042]
        );
        assert!(audio.iter().all(|s| s.sync && s.prefix.is_empty()));
    }

    #[test]
    fn samples_come_out_the_same_however_the_body_is_cut() {
        let (bytes, _) = part();
        let whole = walk(&bytes, bytes.len()).expect("valid");
        for piece in [1, 2, 7, 8, 9, 16, 100, 1000, 4096] {
            assert_eq!(
                walk(&bytes, piece).expect("valid"),
                whole,
                "pieces of {piece}"
            );
        }
    }

    #[test]
    fn several_fragments_and_skipped_boxes_make_one_body() {
        let (one, _) = part();
        let body = [
            mp4_box(b"styp", b"msdhmsix"),
            one.clone(),
            full_box(b"prft", 1, 0, &[0; 20]),
            one,
        ]
        .concat();
        let samples = walk(&body, 333).expect("valid");
        assert_eq!(samples.len(), 10);
    }

    #[test]
    fn a_body_cut_short_or_a_sample_outside_the_data_is_an_error() {
        let (bytes, _) = part();
        assert_eq!(walk(&bytes[..bytes.len() - 1], 64), Err(Error::Truncated));
        assert_eq!(walk(&bytes[..20], 64), Err(Error::Truncated));
        // An mdat shorter than its samples: they never come.
        let mdat_at = bytes.windows(4).position(|w| w == b"mdat").unwrap() - 4;
        let short = [&bytes[..mdat_at], &mp4_box(b"mdat", &[0; 10])[..]].concat();
        assert!(matches!(walk(&short, 64), Err(Error::MissingData { .. })));
        // A 4-byte box, a moof over the bound.
        assert!(matches!(
            walk(&[0, 0, 0, 4, b'm', b'o', b'o', b'f'], 8),
            Err(Error::BoxTooShort { .. })
        ));
        let huge = [&((MOOF_BYTES_MAX as u32 + 1).to_be_bytes())[..], b"moof"].concat();
        assert_eq!(
            walk(&huge, 8),
            Err(Error::MoofTooLong {
                size: MOOF_BYTES_MAX as u64 + 1
            })
        );
    }

    #[test]
    fn a_trun_claiming_countless_samples_is_refused() {
        let tfhd = full_box(b"tfhd", 0, 0x02_0000, &1u32.to_be_bytes());
        let trun = full_box(b"trun", 0, 0, &u32::MAX.to_be_bytes());
        let traf = mp4_box(b"traf", &[tfhd, trun].concat());
        let moof = mp4_box(b"moof", &traf);
        assert_eq!(walk(&moof, 100), Err(Error::TooManySamples));
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_are_walked_or_refused_without_a_panic(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..4096),
            piece in 1usize..64,
        ) {
            let _ = walk(&bytes, piece);
            let _ = Tracks::parse(&bytes);
        }

        #[test]
        fn a_part_cut_anywhere_or_with_a_byte_changed_never_panics(
            cut in 0usize..9000,
            flip in 0usize..9000,
            value in proptest::prelude::any::<u8>(),
            piece in 1usize..5000,
        ) {
            let (mut bytes, _) = part();
            let flip = flip % bytes.len();
            bytes[flip] = value;
            bytes.truncate(cut.min(bytes.len()));
            let _ = walk(&bytes, piece);
            let mut init = init_segment();
            let flip = flip % init.len();
            init[flip] = value;
            let _ = Tracks::parse(&init);
        }

        #[test]
        fn a_valid_part_walks_the_same_in_any_pieces(piece in 1usize..9000) {
            let (bytes, _) = part();
            proptest::prop_assert_eq!(walk(&bytes, piece), walk(&bytes, bytes.len()));
        }
    }
}
