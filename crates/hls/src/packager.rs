//! One stream's HLS state machine: its messages in, parts and segments
//! out, as [`Window`] snapshots.
//!
//! It owns the cutting and the retention: when packaging starts, where a
//! part and a segment end, which init segment a segment needs, which
//! segments the playlist lists and which it keeps. It reads no clock:
//! the wall clock comes in with each message (for
//! `EXT-X-PROGRAM-DATE-TIME`), media time is the messages' timestamps.
//!
//! - **Start.** Nothing is packaged before the decoder configurations and,
//!   with video, a keyframe: a segment must start with one to be playable.
//!   A track whose partner's configuration has not come after
//!   [`ALONE_AFTER_MS`] of its own media is taken to be alone (audio-only,
//!   video-only).
//! - **Lead track.** Parts and segments are cut on the frames of one track:
//!   video when there is video, else audio. The other track's frames go
//!   into the part open when they arrive.
//! - **Parts** (RFC 8216bis 4.4.4.9: a part "MUST be less than or equal to
//!   the Part Target Duration" and, unless independent or last in its
//!   segment, "at least 85%" of it). A part closes before the lead frame
//!   that would take it past `part_ms`, the last frame interval standing
//!   in for that frame's unknown duration. Timestamps are whole
//!   milliseconds, so a frame of a 30 fps stream lasts 33 or 34 ms and the
//!   estimate may be one millisecond short or long: a part is let grow to
//!   one millisecond over the target on the estimate, and when the next
//!   frame shows that it did go over, its last frame moves to the next
//!   part before it is closed. So parts never exceed the target (unless
//!   one frame interval alone does) and, at 30 fps with 200 ms parts, are
//!   six frames (200 ms) rather than five (167 ms, under 85%).
//! - **Segments** close, with their open part, before a video keyframe once
//!   they have lasted `segment_ms`, so a longer GOP makes longer segments;
//!   without keyframes, at [`segment_hard_max_ms`]. Audio-only segments
//!   close before the frame that would take them past `segment_ms`.
//! - **Discontinuities.** A changed decoder configuration (a new init
//!   segment), a new source ([`Packager::end`]) and a timestamp jump (or
//!   audio going on long after the video stopped) close what is open; the
//!   next segment, after the next keyframe, carries `EXT-X-DISCONTINUITY`.
//!   Media sequence numbers continue.
//! - **Bounds.** Every frame advances media time by a millisecond or more,
//!   so a part (at most `part_ms`) and a segment (at most the hard
//!   maximum) hold a bounded number of frames; complete segments are held
//!   within `bytes_max`, except the last one and the open one.
//! - **Retention** (6.2.2: a segment removed from the playlist stays
//!   available "for a period of time equal to the duration of the segment
//!   plus the duration of the longest Playlist file distributed by the
//!   server containing that segment"): the last `segments` complete ones
//!   and the open one are listed, as many again kept unlisted, all within
//!   `bytes_max`.
//!
//! Media time: video in 90 kHz ticks (timestamp × 90, exact); AAC in
//! samples, 1024 a frame counted on from the first, resynchronised to the
//! message's timestamp when the two are more than half a frame apart (a
//! gap); Opus at 48 kHz, timestamp × 48 (exact).

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use ringcast_rtmp::session::MediaKind;

use crate::codec::{self, AudioConfig, Parsed, VideoConfig, VideoSample};
use crate::mp4::{self, Sample, TrackRun};
use crate::playlist;
use crate::window::{Part, Segment, Window};

/// How a stream is cut. Checked by the configuration before it gets here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// A segment ends at the first keyframe at least this long after it
    /// began (so a longer GOP makes longer segments).
    pub segment_ms: u32,
    /// `EXT-X-PART-INF:PART-TARGET`: no part is longer.
    pub part_ms: u32,
    /// Segments the playlist lists.
    pub segments: usize,
    /// Most bytes the window holds (init segments and parts); past it the
    /// oldest retained segments go first, then listed ones, down to the
    /// open segment and the one before it.
    pub bytes_max: usize,
}

/// A track whose partner's decoder configuration has not come after this
/// much of its own media is packaged alone. Encoders (OBS, ffmpeg, the
/// hardware ones) send both sequence headers before their first frames;
/// a second without one means the stream has no such track, and waiting
/// longer only delays the stream's start.
pub const ALONE_AFTER_MS: u64 = 1_000;

/// A segment without a keyframe is cut at `segment_ms` times this, or
/// [`SEGMENT_HARD_MAX_MS_MIN`], whichever is longer. A source with
/// keyframes far apart (keyframes on scene changes only, a broken
/// encoder) would otherwise make one segment as long as its GOP, and the
/// target duration, which never decreases, with it. A segment cut there
/// starts without a keyframe (its first part is not independent): players
/// join at another one, but the playlist keeps moving.
pub const SEGMENT_HARD_MAX_FACTOR: u64 = 4;

/// See [`SEGMENT_HARD_MAX_FACTOR`]: with short segments, a GOP of up to ten
/// seconds (common in long-GOP encoder presets) still gives whole GOPs.
pub const SEGMENT_HARD_MAX_MS_MIN: u64 = 10_000;

/// Timestamps are whole milliseconds: a frame lasts up to a millisecond
/// longer or shorter than the interval before it, so a part predicted to
/// end this much past the target may still fit (see the module docs).
const TIMESTAMP_RESOLUTION_MS: u64 = 1;

/// A lead frame this much after the last one is a jump, not a frame
/// interval: the source stalled or changed without [`Packager::end`]. One
/// frame lasting that long would make a part and a segment as long, and
/// the target duration with them; a discontinuity is cut instead. Audio
/// this far past the last video frame means the video stopped: what is
/// open closes too, rather than hold audio in an open part without end.
const JUMP_FORWARD_MS: u64 = 10_000;

/// A lead frame this much before the last one is a jump back (a source
/// restarted its clock). Less is an encoder's jitter: the frame's decode
/// time stays a millisecond (the timestamps' resolution) after the last,
/// so that every frame advances media time, and a part or a segment,
/// bounded in time, is bounded in frames too.
const JUMP_BACK_MS: u64 = 1_000;

/// A video frame's duration when no interval is known yet (a segment of
/// one frame closed by [`Packager::end`]): 30 fps, the commonest rate.
const VIDEO_FRAME_TICKS_DEFAULT: u64 = 3_000;

/// AAC frames hold 1024 samples (ISO/IEC 14496-3 AAC-LC; the audio
/// timescale is the rate they are counted in).
const AAC_FRAME_SAMPLES: u64 = 1_024;

/// An Opus frame's duration at 48 kHz when no interval is known yet:
/// 20 ms, what encoders send unless told otherwise (RFC 6716 2.1.4).
const OPUS_FRAME_TICKS_DEFAULT: u64 = 960;

/// A segment without keyframes is cut at this length.
pub fn segment_hard_max_ms(segment_ms: u32) -> u64 {
    (u64::from(segment_ms) * SEGMENT_HARD_MAX_FACTOR).max(SEGMENT_HARD_MAX_MS_MIN)
}

/// One stream's packager.
#[derive(Debug)]
pub struct Packager {
    settings: Settings,
    uri_prefix: String,
    clock: Clock,
    video_config: Option<VideoConfig>,
    audio_config: Option<AudioConfig>,
    state: State,
    waiting: Waiting,
    lead: LeadTiming,
    audio: AudioTiming,
    /// Wall clock and media time of the first sample packaged since the
    /// source (re)started.
    anchor: Option<Anchor>,
    /// Init segments made, oldest first; the last is the current one.
    inits: Vec<Init>,
    init_next: u32,
    /// Complete segments retained, oldest first.
    complete: VecDeque<Arc<Segment>>,
    /// How many of the oldest `complete` ones are no longer listed.
    unlisted: usize,
    open: Option<OpenSegment>,
    msn_next: u64,
    /// `mfhd` sequence number of the last fragment.
    fragment_sequence: u32,
    discontinuity_next: bool,
    discontinuity_sequence: u64,
    target_duration_s: u32,
    window: Arc<Window>,
}

impl Packager {
    /// A packager cutting by `settings`; `uri_prefix` starts every URI of
    /// its playlist (see [`playlist::render`]).
    pub fn new(settings: Settings, uri_prefix: &str) -> Packager {
        let mut packager = Packager {
            settings,
            uri_prefix: uri_prefix.to_owned(),
            clock: Clock::default(),
            video_config: None,
            audio_config: None,
            state: State::Waiting,
            waiting: Waiting::default(),
            lead: LeadTiming::default(),
            audio: AudioTiming::default(),
            anchor: None,
            inits: Vec::new(),
            init_next: 0,
            complete: VecDeque::new(),
            unlisted: 0,
            open: None,
            msn_next: 0,
            fragment_sequence: 0,
            discontinuity_next: false,
            discontinuity_sequence: 0,
            target_duration_s: target_duration_s(settings.segment_ms, 0),
            window: Arc::default(),
        };
        packager.publish();
        packager
    }

    /// One message of the stream: `kind`, its (corrected, continuous)
    /// timestamp and body, and the wall clock as Unix ms. True when a
    /// part (or segment) completed, so [`Packager::window`] changed.
    pub fn push(
        &mut self,
        kind: MediaKind,
        timestamp_ms: u32,
        body: &Bytes,
        now_unix_ms: u64,
    ) -> bool {
        let parsed = match kind {
            MediaKind::Video => codec::parse_video(body),
            MediaKind::Audio => codec::parse_audio(body),
            MediaKind::Data => return false,
        };
        self.handle(parsed, timestamp_ms, now_unix_ms)
    }

    /// The source ended (publisher gone, pull lost): the open part and
    /// segment are closed with what they hold. True when that changed the
    /// window. The next message starts a segment with a discontinuity.
    pub fn end(&mut self) -> bool {
        let changed = self.restart();
        // The next source sends its own sequence headers; identical ones
        // find the same init segment again.
        self.video_config = None;
        self.audio_config = None;
        if changed {
            self.publish();
        }
        changed
    }

    /// The current snapshot (cheap: an `Arc` clone).
    pub fn window(&self) -> Arc<Window> {
        Arc::clone(&self.window)
    }

    /// One parsed message (what [`Packager::push`] does after parsing).
    fn handle(&mut self, parsed: Parsed, timestamp_ms: u32, now_unix_ms: u64) -> bool {
        let changed = match parsed {
            Parsed::VideoConfig(config) => {
                if self.video_config.as_ref() == Some(&config) {
                    return false;
                }
                self.video_config = Some(config);
                self.config_changed()
            }
            Parsed::AudioConfig(config) => {
                if self.audio_config.as_ref() == Some(&config) {
                    return false;
                }
                self.audio_config = Some(config);
                self.config_changed()
            }
            Parsed::Video(sample) => {
                let ms = self.clock.extend(timestamp_ms);
                self.video(sample, ms, now_unix_ms)
            }
            Parsed::Audio(data) => {
                let ms = self.clock.extend(timestamp_ms);
                self.audio(data, ms, now_unix_ms)
            }
            Parsed::Skip => false,
        };
        if changed {
            self.publish();
        }
        changed
    }

    /// A decoder configuration changed: what is open closes, and the next
    /// segment, with a new init segment, is a discontinuity.
    fn config_changed(&mut self) -> bool {
        let changed = self.stop();
        self.mark_discontinuity();
        changed
    }

    fn video(&mut self, sample: VideoSample, ms: u64, now_unix_ms: u64) -> bool {
        let mut changed = false;
        if self.running_lead() == Some(Lead::Video) && self.jumped(ms) {
            changed = self.restart();
        }
        match self.state {
            State::Waiting => self.begin_video(sample, ms, now_unix_ms),
            State::Running {
                lead: Lead::Video,
                timescale,
            } => {
                changed |= self.continue_video(sample, ms, timescale);
            }
            // Audio-only: no video configuration to mux it with.
            State::Running {
                lead: Lead::Audio, ..
            } => {}
        }
        changed
    }

    fn audio(&mut self, data: Bytes, ms: u64, now_unix_ms: u64) -> bool {
        if self.audio_config.is_none() {
            return false;
        }
        let mut changed = false;
        let jumped = match self.running_lead() {
            Some(Lead::Audio) => self.jumped(ms),
            // Only forward: audio behind video is an encoder's sync offset.
            Some(Lead::Video) => self
                .lead
                .last_ms
                .is_some_and(|last| ms > last.saturating_add(JUMP_FORWARD_MS)),
            None => false,
        };
        if jumped {
            changed = self.restart();
        }
        match self.state {
            State::Waiting => self.begin_audio(data, ms, now_unix_ms),
            State::Running {
                lead: Lead::Video, ..
            } => {
                if let Some(time) = self.audio_time(ms) {
                    self.push_audio(data, time);
                }
            }
            State::Running {
                lead: Lead::Audio,
                timescale,
            } => {
                changed |= self.continue_audio(data, ms, timescale);
            }
        }
        changed
    }

    /// Starts packaging at this video frame if it can: a keyframe, with
    /// the audio configuration or after [`ALONE_AFTER_MS`] without one.
    fn begin_video(&mut self, sample: VideoSample, ms: u64, now_unix_ms: u64) {
        if self.video_config.is_none() {
            return;
        }
        let since_ms = *self.waiting.video_since_ms.get_or_insert(ms);
        if !sample.keyframe
            || (self.audio_config.is_none() && ms.saturating_sub(since_ms) < ALONE_AFTER_MS)
        {
            return;
        }
        let timescale = mp4::VIDEO_TIMESCALE;
        let time = ticks(ms, timescale);
        self.begin(Lead::Video, timescale, time, ms, now_unix_ms);
        self.push_video(sample, time);
    }

    /// Starts audio-only packaging at this frame once [`ALONE_AFTER_MS`]
    /// of audio came without a video configuration.
    fn begin_audio(&mut self, data: Bytes, ms: u64, now_unix_ms: u64) {
        if self.video_config.is_some() {
            // Video leads: nothing starts before its keyframe.
            return;
        }
        let since_ms = *self.waiting.audio_since_ms.get_or_insert(ms);
        let Some(timescale) = self.audio_config.as_ref().map(mp4::audio_timescale) else {
            return;
        };
        if ms.saturating_sub(since_ms) < ALONE_AFTER_MS {
            return;
        }
        let Some(time) = self.audio_time(ms) else {
            return;
        };
        self.begin(Lead::Audio, timescale, time, ms, now_unix_ms);
        self.push_audio(data, time);
    }

    /// Packaging starts (or starts again) at `time` on the lead track: the
    /// init segment for the current configurations, a new segment.
    fn begin(&mut self, lead: Lead, timescale: u32, time: u64, ms: u64, now_unix_ms: u64) {
        self.init_current();
        if self.anchor.is_none() {
            self.anchor = Some(Anchor {
                wall_ms: now_unix_ms,
                media_ms: ms,
            });
        }
        self.state = State::Running { lead, timescale };
        self.lead = LeadTiming {
            last: Some(time),
            last_ms: Some(ms),
            interval: None,
        };
        self.open_segment(time, true);
    }

    fn continue_video(&mut self, sample: VideoSample, ms: u64, timescale: u32) -> bool {
        // Decode times only go forward: an encoder's small step back (a
        // jump back was handled before) stays a millisecond after the last.
        let floor = self.lead.last.map_or(0, |last| {
            last.saturating_add(ticks(TIMESTAMP_RESOLUTION_MS, timescale))
        });
        let time = ticks(ms, timescale).max(floor);
        let changed = self.cut_before(time, sample.keyframe, Lead::Video, timescale);
        self.lead.last_ms = Some(ms);
        self.push_video(sample, time);
        changed
    }

    fn continue_audio(&mut self, data: Bytes, ms: u64, timescale: u32) -> bool {
        let Some(time) = self.audio_time(ms) else {
            return false;
        };
        let changed = self.cut_before(time, true, Lead::Audio, timescale);
        self.lead.last_ms = Some(ms);
        self.push_audio(data, time);
        changed
    }

    fn push_video(&mut self, sample: VideoSample, time: u64) {
        let ticks_per_ms = i32::try_from(mp4::VIDEO_TIMESCALE / 1_000).unwrap_or(i32::MAX);
        if let Some(open) = self.open.as_mut() {
            open.part.video.push(VideoEntry {
                time,
                composition_offset: sample.composition_time_ms.saturating_mul(ticks_per_ms),
                keyframe: sample.keyframe,
                data: sample.data,
            });
        }
    }

    fn push_audio(&mut self, data: Bytes, time: u64) {
        if let Some(open) = self.open.as_mut() {
            open.part.audio.push(AudioEntry { time, data });
        }
    }

    /// An audio frame's decode time, in the audio timescale; `None` for a
    /// frame at or before the last one (a repeat: dropped).
    fn audio_time(&mut self, ms: u64) -> Option<u64> {
        let config = self.audio_config.as_ref()?;
        let message = ticks(ms, mp4::audio_timescale(config));
        let time = match (config, self.audio.last) {
            // Counted on by whole frames unless the message is more than
            // half a frame away: then the message's time (a gap).
            (AudioConfig::Aac { .. }, Some(last)) => {
                let expected = last.saturating_add(AAC_FRAME_SAMPLES);
                if expected.abs_diff(message) > AAC_FRAME_SAMPLES / 2 {
                    message
                } else {
                    expected
                }
            }
            _ => message,
        };
        if let Some(last) = self.audio.last {
            if time <= last {
                return None;
            }
            self.audio.delta = Some(time - last);
        }
        self.audio.last = Some(time);
        Some(time)
    }

    /// Cuts what the lead frame at `time` (a keyframe if `sync`) must not
    /// join: the part's last frame if the part went over the target, the
    /// segment if due, else the part if this frame would take it over.
    /// True when a part completed.
    fn cut_before(&mut self, time: u64, sync: bool, lead: Lead, timescale: u32) -> bool {
        let interval = time.saturating_sub(self.lead.last.unwrap_or(time));
        self.lead.last = Some(time);
        if interval > 0 {
            self.lead.interval = Some(interval);
        }
        let part_ticks = ticks(self.settings.part_ms.into(), timescale);
        let mut changed = self.split_if_over(time, lead, part_ticks);
        let Some(open) = self.open.as_ref() else {
            return changed;
        };
        let segment_len = time.saturating_sub(open.start);
        let part_len = time.saturating_sub(open.part.start);
        let segment_ticks = ticks(self.settings.segment_ms.into(), timescale);
        let segment_due = match lead {
            Lead::Video => sync && segment_len >= segment_ticks,
            Lead::Audio => segment_len.saturating_add(interval) > segment_ticks,
        };
        let hard_ticks = ticks(segment_hard_max_ms(self.settings.segment_ms), timescale);
        if segment_due || segment_len >= hard_ticks {
            changed |= self.close_part(time, sync);
            changed |= self.close_segment();
            self.open_segment(time, sync);
        } else if part_len.saturating_add(interval)
            > part_ticks.saturating_add(ticks(TIMESTAMP_RESOLUTION_MS, timescale))
        {
            changed |= self.close_part(time, sync);
        }
        changed
    }

    /// When the open part, now known to end at `time`, is over the target
    /// and holds more than one lead frame, its last lead frame starts the
    /// next part instead, and the part closes without it.
    fn split_if_over(&mut self, time: u64, lead: Lead, part_ticks: u64) -> bool {
        let Some(open) = self.open.as_mut() else {
            return false;
        };
        if open.part.lead_len(lead) < 2 || time.saturating_sub(open.part.start) <= part_ticks {
            return false;
        }
        match lead {
            Lead::Video => {
                let Some(last) = open.part.video.pop() else {
                    return false;
                };
                let changed = self.close_part(last.time, last.keyframe);
                self.push_video_entry(last);
                changed
            }
            Lead::Audio => {
                let Some(last) = open.part.audio.pop() else {
                    return false;
                };
                let changed = self.close_part(last.time, true);
                self.push_audio(last.data, last.time);
                changed
            }
        }
    }

    fn push_video_entry(&mut self, entry: VideoEntry) {
        if let Some(open) = self.open.as_mut() {
            open.part.video.push(entry);
        }
    }

    /// Closes the open part, ending at `end` (lead timescale), into a
    /// fragment; the next part starts there. False when it held nothing.
    fn close_part(&mut self, end: u64, next_independent: bool) -> bool {
        let State::Running { lead, timescale } = self.state else {
            return false;
        };
        let Some(open) = self.open.as_mut() else {
            return false;
        };
        let part = std::mem::replace(&mut open.part, OpenPart::new(end, next_independent));
        if part.video.is_empty() && part.audio.is_empty() {
            return false;
        }
        let runs = self.track_runs(&part, end, lead);
        self.fragment_sequence = self.fragment_sequence.wrapping_add(1);
        let bytes = mp4::fragment(self.fragment_sequence, &runs);
        let duration_ms = millis(end, timescale).saturating_sub(millis(part.start, timescale));
        if let Some(open) = self.open.as_mut() {
            open.parts.push(Part {
                duration_ms: u32::try_from(duration_ms).unwrap_or(u32::MAX),
                independent: part.independent,
                bytes,
            });
        }
        true
    }

    /// A part's samples as track runs: each sample lasts until the next;
    /// the lead track's last until `end`, the other's a frame.
    fn track_runs(&self, part: &OpenPart, end: u64, lead: Lead) -> Vec<TrackRun> {
        let mut runs = Vec::with_capacity(2);
        if let Some(first) = part.video.first() {
            let ends = part
                .video
                .iter()
                .skip(1)
                .map(|entry| entry.time)
                .chain([end]);
            let samples = part.video.iter().zip(ends).map(|(entry, next)| Sample {
                duration: duration(entry.time, next),
                composition_offset: entry.composition_offset,
                sync: entry.keyframe,
                data: entry.data.clone(),
            });
            runs.push(TrackRun {
                track_id: mp4::VIDEO_TRACK_ID,
                base_decode_time: first.time,
                samples: samples.collect(),
            });
        }
        if let (Some(first), Some(last)) = (part.audio.first(), part.audio.last()) {
            let last_end = match lead {
                Lead::Audio => end,
                Lead::Video => last.time.saturating_add(self.audio_frame_ticks()),
            };
            let ends = part
                .audio
                .iter()
                .skip(1)
                .map(|entry| entry.time)
                .chain([last_end]);
            let samples = part.audio.iter().zip(ends).map(|(entry, next)| Sample {
                duration: duration(entry.time, next),
                composition_offset: 0,
                sync: true,
                data: entry.data.clone(),
            });
            runs.push(TrackRun {
                track_id: mp4::AUDIO_TRACK_ID,
                base_decode_time: first.time,
                samples: samples.collect(),
            });
        }
        runs
    }

    /// An audio frame's duration when no next frame tells it.
    fn audio_frame_ticks(&self) -> u64 {
        match self.audio_config {
            Some(AudioConfig::Opus { .. }) => self.audio.delta.unwrap_or(OPUS_FRAME_TICKS_DEFAULT),
            _ => AAC_FRAME_SAMPLES,
        }
    }

    fn open_segment(&mut self, time: u64, independent: bool) {
        let State::Running { timescale, .. } = self.state else {
            return;
        };
        let start_ms = millis(time, timescale);
        let program_date_time_ms = self.anchor.as_ref().map_or(0, |anchor| {
            if start_ms >= anchor.media_ms {
                anchor.wall_ms.saturating_add(start_ms - anchor.media_ms)
            } else {
                anchor.wall_ms.saturating_sub(anchor.media_ms - start_ms)
            }
        });
        self.open = Some(OpenSegment {
            msn: self.msn_next,
            start: time,
            discontinuity: std::mem::take(&mut self.discontinuity_next),
            init: self.inits.last().map_or(0, |init| init.number),
            program_date_time_ms,
            parts: Vec::new(),
            part: OpenPart::new(time, independent),
        });
    }

    /// Completes the open segment (its open part must be closed first).
    fn close_segment(&mut self) -> bool {
        let Some(open) = self.open.take() else {
            return false;
        };
        if open.parts.is_empty() {
            // Nothing made: its number and discontinuity pass to the next.
            self.discontinuity_next |= open.discontinuity;
            return false;
        }
        let segment = open.segment(true);
        self.target_duration_s = self.target_duration_s.max(target_duration_s(
            self.settings.segment_ms,
            segment.duration_ms,
        ));
        self.msn_next = segment.msn.saturating_add(1);
        self.complete.push_back(Arc::new(segment));
        true
    }

    /// Closes what is open with what it holds, the last lead frame lasting
    /// the last interval (within the part target); packaging waits for a
    /// new start.
    fn stop(&mut self) -> bool {
        let mut changed = false;
        if let (State::Running { lead, timescale }, Some(open)) = (self.state, self.open.as_ref()) {
            let part = &open.part;
            let last = part.last_lead_time(lead).unwrap_or(part.start);
            let estimate = match lead {
                Lead::Video => self.lead.interval.unwrap_or(VIDEO_FRAME_TICKS_DEFAULT),
                Lead::Audio => self.audio_frame_ticks(),
            };
            let part_end_max = part
                .start
                .saturating_add(ticks(self.settings.part_ms.into(), timescale));
            let end = last.saturating_add(estimate.min(part_end_max.saturating_sub(last)).max(1));
            changed |= self.close_part(end, false);
            changed |= self.close_segment();
        }
        self.state = State::Waiting;
        self.waiting = Waiting::default();
        self.lead = LeadTiming::default();
        self.audio = AudioTiming::default();
        changed
    }

    /// The source restarted (or its timestamps jumped): what is open
    /// closes; the next segment is a discontinuity with a new anchor.
    fn restart(&mut self) -> bool {
        let changed = self.stop();
        self.mark_discontinuity();
        self.anchor = None;
        changed
    }

    /// The next segment follows a discontinuity (unless it is the first).
    fn mark_discontinuity(&mut self) {
        if self.msn_next > 0 {
            self.discontinuity_next = true;
        }
    }

    fn running_lead(&self) -> Option<Lead> {
        match self.state {
            State::Running { lead, .. } => Some(lead),
            State::Waiting => None,
        }
    }

    fn jumped(&self, ms: u64) -> bool {
        self.lead.last_ms.is_some_and(|last| {
            ms > last.saturating_add(JUMP_FORWARD_MS) || ms.saturating_add(JUMP_BACK_MS) < last
        })
    }

    /// Makes the init segment for the current configurations the current
    /// one, unless it already is.
    fn init_current(&mut self) {
        if let Some(init) = self.inits.last() {
            if init.video == self.video_config && init.audio == self.audio_config {
                return;
            }
        }
        let bytes = mp4::init_segment(self.video_config.as_ref(), self.audio_config.as_ref());
        self.inits.push(Init {
            number: self.init_next,
            video: self.video_config.clone(),
            audio: self.audio_config.clone(),
            bytes,
        });
        self.init_next = self.init_next.wrapping_add(1);
    }

    /// Trims what is retained and makes the new window.
    fn publish(&mut self) {
        self.trim();
        let mut segments: Vec<Arc<Segment>> = self.complete.iter().cloned().collect();
        if let Some(open) = self.open.as_ref().filter(|open| !open.parts.is_empty()) {
            segments.push(Arc::new(open.segment(false)));
        }
        let needed = |number: u32| segments.iter().any(|segment| segment.init == number);
        let current = self.inits.last().map(|init| init.number);
        self.inits
            .retain(|init| needed(init.number) || Some(init.number) == current);
        let inits = self
            .inits
            .iter()
            .filter(|init| needed(init.number))
            .map(|init| (init.number, init.bytes.clone()))
            .collect();
        let mut window = Window {
            target_duration_s: self.target_duration_s,
            part_target_ms: self.settings.part_ms,
            discontinuity_sequence: self.discontinuity_sequence,
            inits,
            segments,
            unlisted: self.unlisted,
            playlist: Bytes::new(),
        };
        window.playlist = Bytes::from(playlist::render(&window, &self.uri_prefix, ""));
        self.window = Arc::new(window);
    }

    /// Lists the last `segments` complete segments, keeps as many again
    /// unlisted, and drops the oldest while over `bytes_max`: unlisted
    /// first, then listed, never the last complete one nor the open one.
    /// Each discontinuity that leaves the list counts in
    /// `EXT-X-DISCONTINUITY-SEQUENCE` (4.4.3.3).
    fn trim(&mut self) {
        // At least one, so that a player has a segment to start from.
        let listed_max = self.settings.segments.max(1);
        while self.complete.len().saturating_sub(self.unlisted) > listed_max {
            if self
                .complete
                .get(self.unlisted)
                .is_some_and(|segment| segment.discontinuity)
            {
                self.discontinuity_sequence += 1;
            }
            self.unlisted += 1;
        }
        while self.unlisted > listed_max && self.complete.pop_front().is_some() {
            self.unlisted -= 1;
        }
        while self.held_bytes() > self.settings.bytes_max && self.complete.len() > 1 {
            let Some(oldest) = self.complete.pop_front() else {
                break;
            };
            if self.unlisted > 0 {
                self.unlisted -= 1;
            } else if oldest.discontinuity {
                self.discontinuity_sequence += 1;
            }
        }
    }

    /// What the window would hold: the retained parts and the init
    /// segments they need.
    fn held_bytes(&self) -> usize {
        let open = self.open.as_ref().filter(|open| !open.parts.is_empty());
        let open_bytes: usize = open.map_or(0, |open| {
            open.parts.iter().map(|part| part.bytes.len()).sum()
        });
        let needed = |number: u32| {
            self.complete.iter().any(|segment| segment.init == number)
                || open.is_some_and(|open| open.init == number)
        };
        let inits: usize = self
            .inits
            .iter()
            .filter(|init| needed(init.number))
            .map(|init| init.bytes.len())
            .sum();
        self.complete
            .iter()
            .map(|segment| segment.len())
            .sum::<usize>()
            + open_bytes
            + inits
    }
}

/// `ceil(max(segment_ms, longest_ms) / 1000)`, at least 1 (a target of 0
/// would have players reload in a loop). It grows when a segment outgrows
/// it (RFC 8216bis 4.4.3.1: an `EXTINF` rounded to the nearest integer
/// "MUST be less than or equal to the Target Duration"), which 6.2.1 does
/// not list among a live playlist's changes: a deviation for sources
/// whose GOP is longer than `segment_ms`; the target never decreases.
fn target_duration_s(segment_ms: u32, longest_ms: u32) -> u32 {
    segment_ms.max(longest_ms).div_ceil(1_000).max(1)
}

/// Milliseconds to ticks of `timescale` (per second).
fn ticks(ms: u64, timescale: u32) -> u64 {
    ms.saturating_mul(u64::from(timescale)) / 1_000
}

/// Ticks of `timescale` to whole milliseconds.
fn millis(ticks: u64, timescale: u32) -> u64 {
    ticks.saturating_mul(1_000) / u64::from(timescale.max(1))
}

/// A sample's duration in ticks (a sample longer than `u32` ticks, half a
/// day at 90 kHz, cannot be written: the jump rule cuts long before).
fn duration(from: u64, to: u64) -> u32 {
    u32::try_from(to.saturating_sub(from)).unwrap_or(u32::MAX)
}

/// Extends 32-bit wrapping millisecond timestamps to 64 bits: each one is
/// taken as the nearest to the last (a signed 32-bit step), so a wrap goes
/// forward and a small step back (audio and video interleaved) stays a
/// step back.
#[derive(Debug, Default)]
struct Clock {
    last_raw: Option<u32>,
    last_ms: u64,
}

impl Clock {
    fn extend(&mut self, timestamp_ms: u32) -> u64 {
        self.last_ms = match self.last_raw {
            None => u64::from(timestamp_ms),
            Some(last) => {
                // The wrapping difference read as signed, on purpose.
                let step = timestamp_ms.wrapping_sub(last) as i32;
                self.last_ms.saturating_add_signed(i64::from(step))
            }
        };
        self.last_raw = Some(timestamp_ms);
        self.last_ms
    }
}

/// Which track's frames cut parts and segments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lead {
    Video,
    Audio,
}

#[derive(Clone, Copy, Debug)]
enum State {
    /// For configurations and a keyframe.
    Waiting,
    /// Packaging; `timescale` is the lead track's.
    Running { lead: Lead, timescale: u32 },
}

/// While waiting: when each track's first frame came (for
/// [`ALONE_AFTER_MS`]).
#[derive(Debug, Default)]
struct Waiting {
    video_since_ms: Option<u64>,
    audio_since_ms: Option<u64>,
}

/// The lead track's last frame: its decode time (ticks) and timestamp,
/// and the last nonzero interval between two frames.
#[derive(Debug, Default)]
struct LeadTiming {
    last: Option<u64>,
    last_ms: Option<u64>,
    interval: Option<u64>,
}

/// The audio track's last decode time and the last step to it.
#[derive(Debug, Default)]
struct AudioTiming {
    last: Option<u64>,
    delta: Option<u64>,
}

#[derive(Debug)]
struct Anchor {
    wall_ms: u64,
    media_ms: u64,
}

#[derive(Debug)]
struct Init {
    number: u32,
    video: Option<VideoConfig>,
    audio: Option<AudioConfig>,
    bytes: Bytes,
}

#[derive(Debug)]
struct OpenSegment {
    msn: u64,
    /// Decode time of its first lead frame.
    start: u64,
    discontinuity: bool,
    init: u32,
    program_date_time_ms: u64,
    parts: Vec<Part>,
    part: OpenPart,
}

impl OpenSegment {
    fn segment(&self, complete: bool) -> Segment {
        Segment {
            msn: self.msn,
            parts: self.parts.clone(),
            duration_ms: self
                .parts
                .iter()
                .fold(0u32, |sum, part| sum.saturating_add(part.duration_ms)),
            complete,
            discontinuity: self.discontinuity,
            init: self.init,
            program_date_time_ms: self.program_date_time_ms,
        }
    }
}

#[derive(Debug)]
struct OpenPart {
    /// Decode time of its first lead frame.
    start: u64,
    independent: bool,
    video: Vec<VideoEntry>,
    audio: Vec<AudioEntry>,
}

impl OpenPart {
    fn new(start: u64, independent: bool) -> OpenPart {
        OpenPart {
            start,
            independent,
            video: Vec::new(),
            audio: Vec::new(),
        }
    }

    fn lead_len(&self, lead: Lead) -> usize {
        match lead {
            Lead::Video => self.video.len(),
            Lead::Audio => self.audio.len(),
        }
    }

    fn last_lead_time(&self, lead: Lead) -> Option<u64> {
        match lead {
            Lead::Video => self.video.last().map(|entry| entry.time),
            Lead::Audio => self.audio.last().map(|entry| entry.time),
        }
    }
}

#[derive(Debug)]
struct VideoEntry {
    /// Decode time, 90 kHz.
    time: u64,
    composition_offset: i32,
    keyframe: bool,
    data: Bytes,
}

#[derive(Debug)]
struct AudioEntry {
    /// Decode time, audio timescale.
    time: u64,
    data: Bytes,
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// 2026-12-05T23:59:00.000Z
    const NOW_MS: u64 = 1_796_515_140_000;

    fn settings(segment_ms: u32, part_ms: u32) -> Settings {
        Settings {
            segment_ms,
            part_ms,
            segments: 1_000,
            bytes_max: usize::MAX,
        }
    }

    fn avc(version: u8) -> Parsed {
        Parsed::VideoConfig(VideoConfig::Avc {
            record: Bytes::from(vec![1, 0x64, 0, 0x1f, version]),
            width: 1280,
            height: 720,
        })
    }

    fn aac() -> Parsed {
        Parsed::AudioConfig(AudioConfig::Aac {
            config: Bytes::from_static(&[0x11, 0x90]),
            sample_rate: 48_000,
            channels: 2,
        })
    }

    fn opus() -> Parsed {
        Parsed::AudioConfig(AudioConfig::Opus {
            head: Bytes::from_static(b"OpusHead\x01\x02\x38\x01\x80\xbb\0\0\0\0\0"),
            channels: 2,
            pre_skip: 312,
            input_sample_rate: 48_000,
        })
    }

    fn frame(keyframe: bool) -> Parsed {
        Parsed::Video(VideoSample {
            keyframe,
            composition_time_ms: 0,
            data: Bytes::from_static(b"\0\0\0\x01\x65"),
        })
    }

    fn audio_frame() -> Parsed {
        Parsed::Audio(Bytes::from_static(&[0x21, 0x10, 0x04]))
    }

    /// An encoder: video at `fps` with a keyframe every `gop` frames (none
    /// after the first when 0) and, with `audio`, AAC at 48 kHz between
    /// the video frames, timestamps rounded to milliseconds as encoders
    /// do; the wall clock runs with the media.
    struct Source {
        fps: u64,
        gop: u64,
        audio: bool,
        start_ms: u64,
        video_frames: u64,
        audio_frames: u64,
        frame_bytes: usize,
        /// Added to the wall clock.
        wall_offset_ms: u64,
    }

    impl Source {
        fn new(fps: u64, gop: u64, audio: bool) -> Source {
            Source {
                fps,
                gop,
                audio,
                start_ms: 0,
                video_frames: 0,
                audio_frames: 0,
                frame_bytes: 5,
                wall_offset_ms: 0,
            }
        }

        fn starting_at(mut self, start_ms: u64) -> Source {
            self.start_ms = start_ms;
            self
        }

        fn video_ms(&self, k: u64) -> u64 {
            self.start_ms + (k * 2_000 + self.fps) / (2 * self.fps)
        }

        fn audio_ms(&self, k: u64) -> u64 {
            self.start_ms + k * 1_024 * 1_000 / 48_000
        }

        fn configs(&self, packager: &mut Packager) {
            packager.handle(avc(1), self.start_ms as u32, NOW_MS);
            if self.audio {
                packager.handle(aac(), self.start_ms as u32, NOW_MS);
            }
        }

        /// Pushes the next `count` video frames (and the audio before
        /// each); the windows that changed.
        fn run(&mut self, packager: &mut Packager, count: u64) -> Vec<Arc<Window>> {
            let mut windows = Vec::new();
            for _ in 0..count {
                let video_ms = self.video_ms(self.video_frames);
                while self.audio && self.audio_ms(self.audio_frames) < video_ms {
                    let ms = self.audio_ms(self.audio_frames);
                    if packager.handle(audio_frame(), ms as u32, NOW_MS + self.wall_offset_ms + ms)
                    {
                        windows.push(packager.window());
                    }
                    self.audio_frames += 1;
                }
                let keyframe = match self.gop {
                    0 => self.video_frames == 0,
                    gop => self.video_frames % gop == 0,
                };
                let sample = Parsed::Video(VideoSample {
                    keyframe,
                    composition_time_ms: 0,
                    data: Bytes::from(vec![0x65; self.frame_bytes]),
                });
                if packager.handle(
                    sample,
                    video_ms as u32,
                    NOW_MS + self.wall_offset_ms + video_ms,
                ) {
                    windows.push(packager.window());
                }
                self.video_frames += 1;
            }
            windows
        }
    }

    fn complete(window: &Window) -> Vec<&Arc<Segment>> {
        window
            .segments
            .iter()
            .filter(|segment| segment.complete)
            .collect()
    }

    fn part_durations(segment: &Segment) -> Vec<u32> {
        segment.parts.iter().map(|part| part.duration_ms).collect()
    }

    /// What every window must be.
    fn assert_window(window: &Window, settings: &Settings) {
        for pair in window.segments.windows(2) {
            assert_eq!(
                pair[1].msn,
                pair[0].msn + 1,
                "media sequence numbers are contiguous"
            );
            assert!(pair[0].complete, "only the last segment is open");
        }
        for segment in &window.segments {
            assert!(!segment.parts.is_empty());
            assert_eq!(
                segment.duration_ms,
                segment
                    .parts
                    .iter()
                    .map(|part| part.duration_ms)
                    .sum::<u32>()
            );
            assert!(
                window.init(segment.init).is_some(),
                "init {} retained",
                segment.init
            );
            if segment.complete {
                assert!(
                    u64::from(segment.duration_ms) <= u64::from(window.target_duration_s) * 1_000
                );
            }
        }
        let listed_max = settings.segments.max(1);
        assert!(window.unlisted <= listed_max);
        assert!(
            window
                .listed()
                .iter()
                .filter(|segment| segment.complete)
                .count()
                <= listed_max
        );
        assert!(
            window.bytes() <= settings.bytes_max || complete(window).len() <= 1,
            "{} bytes held over {}",
            window.bytes(),
            settings.bytes_max
        );
        for (number, _) in &window.inits {
            assert!(
                window
                    .segments
                    .iter()
                    .any(|segment| segment.init == *number),
                "init {number} unneeded"
            );
        }
        assert_eq!(window.playlist, playlist::render(window, "s/", ""));
    }

    #[test]
    fn parts_never_exceed_the_part_target() {
        for fps in [30, 25] {
            for part_ms in [200, 333, 500] {
                let mut packager = Packager::new(settings(2_000, part_ms), "s/");
                let mut source = Source::new(fps, 2 * fps, true);
                source.configs(&mut packager);
                source.run(&mut packager, 20 * fps);
                let window = packager.window();
                let segments = complete(&window);
                assert_eq!(segments.len(), 9, "{fps} fps, {part_ms} ms parts");
                for segment in segments {
                    assert_eq!(segment.duration_ms, 2_000, "{fps} fps, {part_ms} ms parts");
                    let (last, others) = segment.parts.split_last().unwrap();
                    assert!(last.duration_ms <= part_ms);
                    for part in others {
                        // RFC 8216bis 4.4.4.9: at most the target, at least
                        // 85% of it unless independent or last.
                        assert!(
                            part.duration_ms <= part_ms,
                            "{fps} fps: {:?}",
                            part_durations(segment)
                        );
                        assert!(
                            part.independent || part.duration_ms * 100 >= part_ms * 85,
                            "{fps} fps: {:?}",
                            part_durations(segment)
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn thirty_fps_parts_of_200_ms_are_six_frames() {
        let mut packager = Packager::new(settings(2_000, 200), "s/");
        let mut source = Source::new(30, 60, true);
        source.configs(&mut packager);
        source.run(&mut packager, 121);
        let window = packager.window();
        for segment in complete(&window) {
            assert_eq!(part_durations(segment), vec![200; 10]);
        }
    }

    #[test]
    fn the_last_part_of_a_segment_may_be_short_and_only_keyframe_parts_are_independent() {
        let mut packager = Packager::new(settings(2_000, 333), "s/");
        let mut source = Source::new(25, 50, true);
        source.configs(&mut packager);
        source.run(&mut packager, 151);
        let window = packager.window();
        let segments = complete(&window);
        assert_eq!(segments.len(), 3);
        for segment in segments {
            assert_eq!(
                part_durations(segment),
                vec![320, 320, 320, 320, 320, 320, 80]
            );
            let independent: Vec<bool> =
                segment.parts.iter().map(|part| part.independent).collect();
            assert_eq!(
                independent,
                vec![true, false, false, false, false, false, false]
            );
        }
    }

    #[test]
    fn a_part_completes_when_the_frame_after_it_arrives() {
        let mut packager = Packager::new(settings(2_000, 200), "s/");
        let mut source = Source::new(25, 50, true);
        source.configs(&mut packager);
        // Frames at 0..160 make the first part; the one at 200 closes it.
        assert!(source.run(&mut packager, 5).is_empty());
        assert_eq!(packager.window().segments.len(), 0);
        let windows = source.run(&mut packager, 1);
        assert_eq!(windows.len(), 1);
        let open = &windows[0].segments[0];
        assert!(!open.complete);
        assert_eq!(part_durations(open), vec![200]);
        assert_eq!(windows[0].next_part(), Some((0, 1)));
    }

    #[test]
    fn a_segment_ends_at_the_first_keyframe_after_segment_ms() {
        // Keyframes every second: segments of two.
        let mut packager = Packager::new(settings(2_000, 500), "s/");
        let mut source = Source::new(25, 25, true);
        source.configs(&mut packager);
        source.run(&mut packager, 25 * 9);
        let window = packager.window();
        let durations: Vec<u32> = complete(&window)
            .iter()
            .map(|segment| segment.duration_ms)
            .collect();
        assert_eq!(durations, vec![2_000; 4]);
        assert_eq!(window.target_duration_s, 2);
        // Keyframes every 0.8 s: the first at or after 2 s is at 2.4 s.
        let mut packager = Packager::new(settings(2_000, 500), "s/");
        let mut source = Source::new(25, 20, true);
        source.configs(&mut packager);
        source.run(&mut packager, 25 * 10);
        let window = packager.window();
        let durations: Vec<u32> = complete(&window)
            .iter()
            .map(|segment| segment.duration_ms)
            .collect();
        assert_eq!(durations, vec![2_400; 4]);
        assert_eq!(window.target_duration_s, 3);
    }

    #[test]
    fn a_long_gop_makes_longer_segments_and_the_target_duration_grows() {
        let settings = settings(2_000, 500);
        let mut packager = Packager::new(settings, "s/");
        assert_eq!(packager.window().target_duration_s, 2);
        let mut source = Source::new(30, 150, true);
        source.configs(&mut packager);
        let windows = source.run(&mut packager, 30 * 16);
        let window = packager.window();
        let durations: Vec<u32> = complete(&window)
            .iter()
            .map(|segment| segment.duration_ms)
            .collect();
        assert_eq!(durations, vec![5_000; 3]);
        assert_eq!(window.target_duration_s, 5);
        assert!(
            window
                .playlist
                .starts_with(b"#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:5\n")
        );
        // It grew when the first long segment completed, and never shrinks.
        let targets: Vec<u32> = windows
            .iter()
            .map(|window| window.target_duration_s)
            .collect();
        assert!(targets.windows(2).all(|pair| pair[0] <= pair[1]));
        assert_eq!(targets.first(), Some(&2));
        for window in &windows {
            assert_window(window, &settings);
        }
    }

    #[test]
    fn a_segment_without_keyframes_is_cut_at_the_hard_maximum() {
        assert_eq!(segment_hard_max_ms(2_000), 10_000);
        assert_eq!(segment_hard_max_ms(4_000), 16_000);
        let mut packager = Packager::new(settings(2_000, 500), "s/");
        let mut source = Source::new(25, 0, true);
        source.configs(&mut packager);
        source.run(&mut packager, 25 * 31);
        let window = packager.window();
        let segments = complete(&window);
        let durations: Vec<u32> = segments.iter().map(|segment| segment.duration_ms).collect();
        assert_eq!(durations, vec![10_000; 3]);
        assert_eq!(window.target_duration_s, 10);
        assert!(segments[0].parts[0].independent);
        // Cut without a keyframe: not independent, and no discontinuity.
        assert!(!segments[1].parts[0].independent);
        assert!(!segments[1].discontinuity);
    }

    #[test]
    fn audio_only_starts_after_a_second_without_a_video_configuration() {
        let settings = settings(2_000, 200);
        let mut packager = Packager::new(settings, "s/");
        assert!(!packager.handle(aac(), 0, NOW_MS));
        let mut windows = Vec::new();
        for k in 0..(48_000 * 7 / 1_024) {
            let ms = k * 1_024 * 1_000 / 48_000;
            if packager.handle(audio_frame(), ms as u32, NOW_MS + ms) {
                windows.push(packager.window());
            }
        }
        let window = packager.window();
        let segments = complete(&window);
        assert_eq!(segments.len(), 3);
        // The first second is dropped; packaging starts at the frame at 1 s.
        assert_eq!(segments[0].program_date_time_ms, NOW_MS + 1_002);
        for segment in &segments {
            // Within segment_ms: 93 frames of 1024 samples (1984 ms).
            assert_eq!(segment.duration_ms, 1_984);
            // 9 frames (192 ms) a part, all independent.
            assert!(
                segment
                    .parts
                    .iter()
                    .all(|part| part.independent && part.duration_ms <= 200)
            );
            assert_eq!(segment.parts[0].duration_ms, 192);
        }
        assert_eq!(window.inits.len(), 1);
        for window in &windows {
            assert_window(window, &settings);
        }
    }

    #[test]
    fn video_only_starts_at_a_keyframe_after_a_second_without_an_audio_configuration() {
        let mut packager = Packager::new(settings(2_000, 500), "s/");
        let mut source = Source::new(25, 25, false);
        source.configs(&mut packager);
        source.run(&mut packager, 25 * 6);
        let window = packager.window();
        let segments = complete(&window);
        // The keyframe at 0 is dropped (no audio configuration yet), the one at 1 s starts.
        assert_eq!(segments[0].program_date_time_ms, NOW_MS + 1_000);
        assert_eq!(segments.len(), 2);
        // An audio configuration coming later is a change of init.
        assert!(packager.handle(aac(), 6_000, NOW_MS + 6_000));
        assert_eq!(packager.window().segments.last().unwrap().msn, 2);
    }

    #[test]
    fn nothing_is_packaged_before_the_configurations_and_a_keyframe() {
        let mut packager = Packager::new(settings(1_000, 200), "s/");
        assert!(!packager.handle(frame(true), 0, NOW_MS));
        assert!(!packager.handle(audio_frame(), 10, NOW_MS));
        packager.handle(avc(1), 20, NOW_MS);
        packager.handle(aac(), 20, NOW_MS);
        for ms in [40, 80, 120] {
            assert!(!packager.handle(frame(false), ms, NOW_MS));
            assert!(!packager.handle(audio_frame(), ms, NOW_MS));
        }
        assert!(packager.open.is_none());
        assert!(!packager.handle(frame(true), 160, NOW_MS + 160));
        let open = packager.open.as_ref().unwrap();
        assert_eq!(open.start, 160 * 90);
        assert_eq!(open.part.video.len(), 1);
        assert!(open.part.audio.is_empty());
    }

    #[test]
    fn aac_decode_times_count_whole_frames_and_resync_after_a_gap() {
        let mut packager = Packager::new(settings(2_000, 1_000), "s/");
        packager.handle(avc(1), 0, NOW_MS);
        packager.handle(aac(), 0, NOW_MS);
        packager.handle(frame(true), 0, NOW_MS);
        // Message times 0, 1008, 2064, 3072, 4080 (rounded to ms): counted
        // as 1024 each. Then a gap to 200 ms (9600), a frame, a repeat.
        for ms in [0, 21, 43, 64, 85, 200, 221, 221] {
            packager.handle(audio_frame(), ms, NOW_MS);
        }
        packager.handle(frame(false), 240, NOW_MS);
        let open = packager.open.as_ref().unwrap();
        let times: Vec<u64> = open.part.audio.iter().map(|entry| entry.time).collect();
        assert_eq!(times, vec![0, 1_024, 2_048, 3_072, 4_096, 9_600, 10_624]);
        let runs = packager.track_runs(&open.part, 280 * 90, Lead::Video);
        assert_eq!(runs.len(), 2);
        assert_eq!(
            (runs[0].track_id, runs[0].base_decode_time),
            (mp4::VIDEO_TRACK_ID, 0)
        );
        let video: Vec<u32> = runs[0]
            .samples
            .iter()
            .map(|sample| sample.duration)
            .collect();
        assert_eq!(video, vec![240 * 90, 40 * 90]);
        assert_eq!(
            (runs[1].track_id, runs[1].base_decode_time),
            (mp4::AUDIO_TRACK_ID, 0)
        );
        let audio: Vec<u32> = runs[1]
            .samples
            .iter()
            .map(|sample| sample.duration)
            .collect();
        // The frame before the gap lasts until the next one.
        assert_eq!(audio, vec![1_024, 1_024, 1_024, 1_024, 5_504, 1_024, 1_024]);
        assert!(runs[1].samples.iter().all(|sample| sample.sync));
    }

    #[test]
    fn opus_decode_times_are_exact_and_durations_their_steps() {
        let mut packager = Packager::new(settings(2_000, 1_000), "s/");
        packager.handle(avc(1), 0, NOW_MS);
        packager.handle(opus(), 0, NOW_MS);
        packager.handle(frame(true), 0, NOW_MS);
        for ms in [3, 23, 43, 63] {
            packager.handle(audio_frame(), ms, NOW_MS);
        }
        let open = packager.open.as_ref().unwrap();
        let runs = packager.track_runs(&open.part, 80 * 90, Lead::Video);
        assert_eq!(runs[1].base_decode_time, 3 * 48);
        let audio: Vec<u32> = runs[1]
            .samples
            .iter()
            .map(|sample| sample.duration)
            .collect();
        // The last lasts the last step.
        assert_eq!(audio, vec![960; 4]);
    }

    #[test]
    fn video_composition_offsets_are_in_90_khz() {
        let mut packager = Packager::new(settings(2_000, 1_000), "s/");
        packager.handle(avc(1), 0, NOW_MS);
        packager.handle(aac(), 0, NOW_MS);
        for (ms, keyframe, cts) in [(0, true, 80), (40, false, -40), (80, false, 0)] {
            let sample = VideoSample {
                keyframe,
                composition_time_ms: cts,
                data: Bytes::from_static(b"x"),
            };
            packager.handle(Parsed::Video(sample), ms, NOW_MS);
        }
        let open = packager.open.as_ref().unwrap();
        let runs = packager.track_runs(&open.part, 120 * 90, Lead::Video);
        let offsets: Vec<(u32, i32, bool)> = runs[0]
            .samples
            .iter()
            .map(|sample| (sample.duration, sample.composition_offset, sample.sync))
            .collect();
        assert_eq!(
            offsets,
            vec![
                (3_600, 7_200, true),
                (3_600, -3_600, false),
                (3_600, 0, false)
            ]
        );
        assert_eq!(runs.len(), 1);
    }

    #[test]
    fn a_changed_configuration_makes_a_new_init_and_a_discontinuity() {
        let settings = settings(2_000, 500);
        let mut packager = Packager::new(settings, "s/");
        let mut source = Source::new(25, 50, true);
        source.configs(&mut packager);
        source.run(&mut packager, 60);
        // An identical sequence header changes nothing.
        let before = packager.window();
        assert!(!packager.handle(avc(1), 2_400, NOW_MS + 2_400));
        assert!(!packager.handle(aac(), 2_400, NOW_MS + 2_400));
        assert!(Arc::ptr_eq(&before, &packager.window()));
        // A different one closes the open part and segment.
        assert!(packager.handle(avc(2), 2_400, NOW_MS + 2_400));
        let window = packager.window();
        assert_eq!(complete(&window).len(), 2);
        assert_eq!(window.segments.last().unwrap().duration_ms, 400);
        // Frames before the next keyframe are dropped; it starts segment 2,
        // its date still from the source's first frame (the wall clock
        // at the keyframe is not used).
        source.wall_offset_ms = 777;
        source.run(&mut packager, 40);
        assert!(packager.open.is_none());
        let windows = source.run(&mut packager, 70);
        let window = packager.window();
        let segments = &window.segments;
        assert_eq!(
            segments
                .iter()
                .map(|segment| segment.msn)
                .collect::<Vec<_>>(),
            vec![0, 1, 2, 3]
        );
        assert_eq!(
            segments
                .iter()
                .map(|segment| segment.init)
                .collect::<Vec<_>>(),
            vec![0, 0, 1, 1]
        );
        let flags: Vec<bool> = segments
            .iter()
            .map(|segment| segment.discontinuity)
            .collect();
        assert_eq!(flags, vec![false, false, true, false]);
        assert_eq!(segments[2].program_date_time_ms, NOW_MS + 4_000);
        let inits: Vec<u32> = window.inits.iter().map(|(number, _)| *number).collect();
        assert_eq!(inits, vec![0, 1]);
        let text = std::str::from_utf8(&window.playlist).unwrap();
        assert!(
            text.contains("s/seg1.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"s/init1.mp4\"\n"),
            "{text}"
        );
        for window in &windows {
            assert_window(window, &settings);
        }
    }

    #[test]
    fn end_and_a_new_source_continue_the_media_sequence_after_a_discontinuity() {
        let settings = settings(2_000, 500);
        let mut packager = Packager::new(settings, "s/");
        let mut source = Source::new(25, 50, true);
        source.configs(&mut packager);
        source.run(&mut packager, 60);
        assert!(packager.end());
        assert!(!packager.end());
        let window = packager.window();
        assert!(window.segments.iter().all(|segment| segment.complete));
        assert_eq!(window.segments.last().unwrap().msn, 1);
        assert_eq!(window.segments.last().unwrap().duration_ms, 400);
        assert_eq!(window.next_part(), Some((2, 0)));
        // The server keeps timestamps going; the new source sends the same
        // headers (the same init) and starts 5 s later by the wall clock.
        let source = Source::new(25, 50, true).starting_at(2_440);
        source.configs(&mut packager);
        for k in 0..60 {
            let ms = source.video_ms(k);
            packager.handle(frame(k % 50 == 0), ms as u32, NOW_MS + 5_000 + ms);
        }
        let window = packager.window();
        let last = window.segments.last().unwrap();
        assert_eq!(last.msn, 2);
        assert!(last.discontinuity);
        assert_eq!(last.init, 0);
        assert_eq!(window.inits.len(), 1);
        // A new anchor: the wall clock at its first frame.
        assert_eq!(last.program_date_time_ms, NOW_MS + 5_000 + 2_440);
        assert_window(&window, &settings);
        // end() before anything is packaged changes nothing.
        let mut packager = Packager::new(settings, "s/");
        assert!(!packager.end());
        Source::new(25, 50, true).configs(&mut packager);
        packager.handle(frame(true), 0, NOW_MS);
        packager.handle(frame(false), 40, NOW_MS);
        assert!(packager.end());
        assert!(!packager.window().segments[0].discontinuity);
    }

    #[test]
    fn a_new_source_after_end_brings_its_own_configurations() {
        let mut packager = Packager::new(settings(2_000, 500), "s/");
        let mut source = Source::new(25, 50, true);
        source.configs(&mut packager);
        source.run(&mut packager, 60);
        packager.end();
        // An audio-only source: the old video configuration is gone.
        packager.handle(aac(), 2_400, NOW_MS + 2_400);
        for k in 0..200 {
            let ms = 2_400 + k * 1_024 * 1_000 / 48_000;
            packager.handle(audio_frame(), ms as u32, NOW_MS + ms);
        }
        let window = packager.window();
        let first = window.segment(2).unwrap();
        assert_eq!(first.init, 1);
        assert!(first.discontinuity && first.parts.iter().all(|part| part.independent));
        assert_eq!(window.inits.len(), 2);
    }

    #[test]
    fn a_timestamp_jump_is_a_discontinuity() {
        let settings = settings(2_000, 500);
        let mut packager = Packager::new(settings, "s/");
        let mut source = Source::new(25, 50, true);
        source.configs(&mut packager);
        source.run(&mut packager, 25 * 4);
        let msn = packager.window().segments.last().unwrap().msn;
        // 30 s on without a frame.
        let mut source = Source::new(25, 50, true).starting_at(4_000 + 30_000);
        assert!(!source.run(&mut packager, 1).is_empty());
        source.run(&mut packager, 60);
        let window = packager.window();
        let segment = window.segment(msn + 1).unwrap();
        assert!(segment.discontinuity);
        assert_eq!(segment.duration_ms, 2_000);
        assert_eq!(window.target_duration_s, 2);
        assert_window(&window, &settings);
    }

    #[test]
    fn audio_long_after_the_last_video_frame_closes_what_is_open() {
        let mut packager = Packager::new(settings(2_000, 500), "s/");
        let mut source = Source::new(25, 50, true);
        source.configs(&mut packager);
        source.run(&mut packager, 60);
        // The video stops at 2360 ms; audio goes on.
        let mut changed = Vec::new();
        for k in 0..600u64 {
            let ms = 2_380 + k * 1_024 * 1_000 / 48_000;
            if packager.handle(audio_frame(), ms as u32, NOW_MS + ms) {
                changed.push(ms);
            }
        }
        assert_eq!(changed.len(), 1);
        assert!(
            changed[0] > 2_360 + 10_000 && changed[0] < 2_360 + 10_030,
            "{changed:?}"
        );
        assert!(packager.open.is_none());
        let window = packager.window();
        let last = window.segments.last().unwrap();
        assert!(last.complete);
        // The audio went into the open part until then.
        assert!(last.len() > 400 * 3);
        // The video comes back: a discontinuity.
        let mut source = Source::new(25, 50, true).starting_at(15_000);
        source.run(&mut packager, 60);
        assert!(packager.window().segments.last().unwrap().discontinuity);
    }

    #[test]
    fn video_frames_with_a_timestamp_going_back_still_advance() {
        let mut packager = Packager::new(settings(2_000, 500), "s/");
        Source::new(25, 50, true).configs(&mut packager);
        for ms in [0, 40, 80, 80, 80, 70, 120] {
            packager.handle(frame(ms == 0), ms, NOW_MS);
        }
        let open = packager.open.as_ref().unwrap();
        let times: Vec<u64> = open
            .part
            .video
            .iter()
            .map(|entry| entry.time / 90)
            .collect();
        assert_eq!(times, vec![0, 40, 80, 81, 82, 83, 120]);
    }

    #[test]
    fn timestamps_wrapping_past_u32_stay_continuous() {
        let settings = settings(2_000, 500);
        let mut packager = Packager::new(settings, "s/");
        let start_ms = u64::from(u32::MAX) - 3_000;
        let mut source = Source::new(25, 50, true).starting_at(start_ms);
        source.configs(&mut packager);
        source.run(&mut packager, 25 * 9);
        let window = packager.window();
        let segments = complete(&window);
        assert_eq!(segments.len(), 4);
        assert!(
            segments
                .iter()
                .all(|segment| segment.duration_ms == 2_000 && !segment.discontinuity)
        );
        let open = packager.open.as_ref().unwrap();
        assert_eq!(open.start, (start_ms + 8_000) * 90);
        assert_eq!(segments[3].program_date_time_ms, NOW_MS + start_ms + 6_000);
    }

    #[test]
    fn program_date_time_follows_media_time_from_the_anchor() {
        let mut packager = Packager::new(settings(2_000, 500), "s/");
        Source::new(25, 50, true).configs(&mut packager);
        // The wall clock wanders; the anchor is the first frame's.
        for k in 0..250u64 {
            let now = NOW_MS + 123 + k * 40 + (k * 7) % 13;
            packager.handle(frame(k % 50 == 0), (k * 40) as u32, now);
        }
        let window = packager.window();
        let times: Vec<u64> = window
            .segments
            .iter()
            .map(|segment| segment.program_date_time_ms)
            .collect();
        assert_eq!(
            times,
            (0..5).map(|k| NOW_MS + 123 + 2_000 * k).collect::<Vec<_>>()
        );
        let text = std::str::from_utf8(&window.playlist).unwrap();
        assert!(
            text.contains("#EXT-X-PROGRAM-DATE-TIME:2026-12-05T23:59:02.123Z\n"),
            "{text}"
        );
    }

    #[test]
    fn the_window_slides_and_keeps_as_many_unlisted_segments() {
        let settings = Settings {
            segments: 3,
            ..settings(1_000, 500)
        };
        let mut packager = Packager::new(settings, "s/");
        let mut source = Source::new(25, 25, true);
        source.configs(&mut packager);
        // Ten segments of a second, and a part of the eleventh.
        let windows = source.run(&mut packager, 25 * 10 + 13);
        let window = packager.window();
        let msns: Vec<u64> = window.segments.iter().map(|segment| segment.msn).collect();
        assert_eq!(msns, vec![4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(window.unlisted, 3);
        let listed: Vec<u64> = window.listed().iter().map(|segment| segment.msn).collect();
        assert_eq!(listed, vec![7, 8, 9, 10]);
        assert!(!window.segments[6].complete);
        let text = std::str::from_utf8(&window.playlist).unwrap();
        assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:7\n"), "{text}");
        assert!(
            text.contains("\ns/seg9.m4s\n") && !text.contains("seg6.m4s"),
            "{text}"
        );
        assert!(
            text.contains("s/part10.0.m4s") && !text.contains("seg10.m4s"),
            "{text}"
        );
        // Unlisted segments are still fetchable.
        assert!(window.segment(4).is_some() && window.segment(3).is_none());
        for window in &windows {
            assert_window(window, &settings);
        }
    }

    #[test]
    fn bytes_max_drops_the_oldest_but_never_the_last_complete_segment_nor_the_open_one() {
        let base = Settings {
            segments: 3,
            ..settings(1_000, 500)
        };
        let mut packager = Packager::new(base, "s/");
        let mut source = Source::new(25, 25, true);
        source.frame_bytes = 10_000;
        source.configs(&mut packager);
        source.run(&mut packager, 25 * 10 + 13);
        let full = packager.window();
        let segment_bytes = full.segments[0].len();
        assert!(segment_bytes >= 250_000);
        // Room for about three segments: the unlisted ones go first.
        let settings = Settings {
            bytes_max: full.bytes() - full.segments[0].len() * 4,
            ..base
        };
        let mut packager = Packager::new(settings, "s/");
        let mut source = Source::new(25, 25, true);
        source.frame_bytes = 10_000;
        source.configs(&mut packager);
        let windows = source.run(&mut packager, 25 * 10 + 13);
        let window = packager.window();
        assert!(window.bytes() <= settings.bytes_max);
        assert_eq!(window.unlisted, 0);
        assert!(window.listed().len() < full.listed().len());
        assert_eq!(
            window.segments.last().unwrap().msn,
            full.segments.last().unwrap().msn
        );
        for window in &windows {
            assert_window(window, &settings);
        }
        // No room at all: the last complete segment and the open one stay.
        let settings = Settings {
            bytes_max: 0,
            ..base
        };
        let mut packager = Packager::new(settings, "s/");
        let mut source = Source::new(25, 25, true);
        source.configs(&mut packager);
        let windows = source.run(&mut packager, 25 * 10 + 13);
        let window = packager.window();
        let msns: Vec<u64> = window.segments.iter().map(|segment| segment.msn).collect();
        assert_eq!(msns, vec![9, 10]);
        assert!(!window.segments[1].complete);
        for window in &windows {
            assert_window(window, &settings);
        }
    }

    #[test]
    fn the_discontinuity_sequence_counts_discontinuities_that_left_the_list() {
        let settings = Settings {
            segments: 2,
            ..settings(1_000, 500)
        };
        let mut packager = Packager::new(settings, "s/");
        let mut source = Source::new(25, 25, true);
        source.configs(&mut packager);
        source.run(&mut packager, 25 * 3);
        packager.end();
        // Segment 3 starts the new source.
        let mut source = Source::new(25, 25, true).starting_at(3_000);
        source.configs(&mut packager);
        source.run(&mut packager, 25 * 2 + 1);
        let window = packager.window();
        assert_eq!(window.discontinuity_sequence, 0);
        assert!(window.segment(3).unwrap().discontinuity);
        let text = std::str::from_utf8(&window.playlist).unwrap();
        assert!(
            text.contains("#EXT-X-DISCONTINUITY-SEQUENCE:0\n")
                && text.contains("#EXT-X-DISCONTINUITY\n")
        );
        // Two more: segment 3 leaves the list (it is kept, unlisted).
        source.run(&mut packager, 25 * 2);
        let window = packager.window();
        assert_eq!(window.listed()[0].msn, 5);
        assert_eq!(window.discontinuity_sequence, 1);
        let text = std::str::from_utf8(&window.playlist).unwrap();
        assert!(
            text.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n")
                && !text.contains("#EXT-X-DISCONTINUITY\n")
        );
        // It is counted once, not again when dropped.
        source.run(&mut packager, 25 * 4);
        assert!(packager.window().segment(3).is_none());
        assert_eq!(packager.window().discontinuity_sequence, 1);
    }

    #[test]
    fn a_discontinuity_dropped_for_bytes_while_listed_counts_too() {
        let settings = Settings {
            segments: 5,
            bytes_max: 0,
            ..settings(1_000, 500)
        };
        let mut packager = Packager::new(settings, "s/");
        let mut source = Source::new(25, 25, true);
        source.configs(&mut packager);
        source.run(&mut packager, 25 * 2);
        packager.end();
        let mut source = Source::new(25, 25, true).starting_at(2_000);
        source.configs(&mut packager);
        source.run(&mut packager, 25 + 13);
        let window = packager.window();
        // Segment 2 (the new source) is the last complete one.
        assert_eq!(
            window
                .segments
                .iter()
                .map(|segment| segment.msn)
                .collect::<Vec<_>>(),
            vec![2, 3]
        );
        assert!(window.segments[0].discontinuity);
        assert_eq!(window.discontinuity_sequence, 0);
        source.run(&mut packager, 25);
        let window = packager.window();
        assert_eq!(
            window
                .segments
                .iter()
                .map(|segment| segment.msn)
                .collect::<Vec<_>>(),
            vec![3, 4]
        );
        assert_eq!(window.discontinuity_sequence, 1);
    }

    #[test]
    fn end_closes_the_open_part_within_the_part_target() {
        // 30 fps: frames at 0, 33, 67, 100, 133, 167; the next would be at
        // 200, but the last interval (34 ms) would end the part at 201.
        let mut packager = Packager::new(settings(2_000, 200), "s/");
        let mut source = Source::new(30, 60, true);
        source.configs(&mut packager);
        source.run(&mut packager, 6);
        assert!(packager.end());
        let window = packager.window();
        assert_eq!(part_durations(&window.segments[0]), vec![200]);
        // A single frame lasts the last interval, or 1/30 s without one.
        let mut packager = Packager::new(settings(2_000, 200), "s/");
        let mut source = Source::new(30, 60, true);
        source.configs(&mut packager);
        source.run(&mut packager, 1);
        assert!(packager.end());
        assert_eq!(part_durations(&packager.window().segments[0]), vec![33]);
    }

    #[test]
    fn init_segments_no_retained_segment_needs_are_dropped() {
        let settings = Settings {
            segments: 1,
            ..settings(1_000, 500)
        };
        let mut packager = Packager::new(settings, "s/");
        let mut source = Source::new(25, 25, false);
        packager.handle(avc(1), 0, NOW_MS);
        source.run(&mut packager, 25 * 3);
        packager.handle(avc(2), 3_000, NOW_MS);
        source.run(&mut packager, 25 * 5);
        let window = packager.window();
        assert!(window.segments.iter().all(|segment| segment.init == 1));
        assert_eq!(
            window
                .inits
                .iter()
                .map(|(number, _)| *number)
                .collect::<Vec<_>>(),
            vec![1]
        );
        assert_eq!(packager.inits.len(), 1);
    }

    #[test]
    fn push_ignores_data_messages() {
        let mut packager = Packager::new(settings(2_000, 500), "s/");
        assert!(!packager.push(
            MediaKind::Data,
            0,
            &Bytes::from_static(b"\x02\0\x0aonCuePoint"),
            NOW_MS
        ));
        assert!(packager.window().segments.is_empty());
    }

    #[test]
    fn a_new_packager_has_an_empty_window_with_a_playlist() {
        let packager = Packager::new(settings(2_000, 200), "s/");
        let window = packager.window();
        assert_eq!((window.target_duration_s, window.part_target_ms), (2, 200));
        assert!(window.segments.is_empty() && window.next_part().is_none());
        assert_eq!(window.playlist, playlist::render(&window, "s/", ""));
    }

    #[test]
    fn clock_extends_wrapping_timestamps() {
        let mut clock = Clock::default();
        assert_eq!(clock.extend(u32::MAX - 10), u64::from(u32::MAX) - 10);
        assert_eq!(clock.extend(5), u64::from(u32::MAX) + 6);
        assert_eq!(clock.extend(u32::MAX - 1), u64::from(u32::MAX) - 1);
        assert_eq!(clock.extend(100), u64::from(u32::MAX) + 101);
        let mut clock = Clock::default();
        assert_eq!(clock.extend(0), 0);
        assert_eq!(clock.extend(u32::MAX), 0, "never below zero");
    }

    /// One step of a random stream.
    #[derive(Clone, Debug)]
    enum Op {
        VideoConfig(u8),
        AudioConfig(bool),
        Video { keyframe: bool, step_ms: i64 },
        Audio { step_ms: i64 },
        Skip,
        End,
    }

    fn op() -> impl Strategy<Value = Op> {
        let step = prop_oneof![8 => -5i64..120, 1 => -20_000i64..40_000, 1 => Just(i64::from(u32::MAX) - 3)];
        prop_oneof![
            1 => (0u8..3).prop_map(Op::VideoConfig),
            1 => any::<bool>().prop_map(Op::AudioConfig),
            12 => (prop::bool::weighted(0.1), step.clone()).prop_map(|(keyframe, step_ms)| Op::Video { keyframe, step_ms }),
            8 => step.prop_map(|step_ms| Op::Audio { step_ms }),
            1 => Just(Op::Skip),
            1 => Just(Op::End),
        ]
    }

    fn settings_strategy() -> impl Strategy<Value = Settings> {
        (
            500u32..5_000,
            50u32..1_000,
            0usize..6,
            prop_oneof![Just(usize::MAX), 0usize..200_000],
        )
            .prop_map(|(segment_ms, part_ms, segments, bytes_max)| Settings {
                segment_ms,
                part_ms,
                segments,
                bytes_max,
            })
    }

    /// What must hold from one window to the next.
    fn assert_successor(before: &Window, after: &Window) {
        let first = |window: &Window| window.segments.first().map(|segment| segment.msn);
        let last = |window: &Window| window.segments.last().map(|segment| segment.msn);
        assert!(first(before) <= first(after) || first(after).is_none() && first(before).is_none());
        assert!(last(before) <= last(after));
        assert!(before.target_duration_s <= after.target_duration_s);
        assert!(before.discontinuity_sequence <= after.discontinuity_sequence);
        assert!(
            before.next_part() < after.next_part(),
            "{:?} {:?}",
            before.next_part(),
            after.next_part()
        );
        // Each discontinuity that left the list counts once.
        let listed =
            |window: &Window, msn: u64| window.listed().iter().any(|segment| segment.msn == msn);
        let left = before
            .listed()
            .iter()
            .filter(|segment| segment.discontinuity && !listed(after, segment.msn))
            .count();
        assert_eq!(
            after.discontinuity_sequence - before.discontinuity_sequence,
            left as u64
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn any_stream_keeps_the_window_sound(settings in settings_strategy(), ops in prop::collection::vec(op(), 0..400)) {
            let mut packager = Packager::new(settings, "s/");
            let mut before = packager.window();
            let mut timestamp_ms: i64 = 1_000;
            for (index, op) in ops.into_iter().enumerate() {
                let now = NOW_MS + index as u64 * 10;
                let changed = match op {
                    Op::VideoConfig(version) => packager.handle(avc(version), timestamp_ms as u32, now),
                    Op::AudioConfig(is_aac) => packager.handle(if is_aac { aac() } else { opus() }, timestamp_ms as u32, now),
                    Op::Video { keyframe, step_ms } => {
                        timestamp_ms += step_ms;
                        packager.handle(frame(keyframe), timestamp_ms as u32, now)
                    }
                    Op::Audio { step_ms } => {
                        timestamp_ms += step_ms;
                        packager.handle(audio_frame(), timestamp_ms as u32, now)
                    }
                    Op::Skip => packager.handle(Parsed::Skip, timestamp_ms as u32, now),
                    Op::End => packager.end(),
                };
                let after = packager.window();
                prop_assert_eq!(changed, !Arc::ptr_eq(&before, &after));
                if changed {
                    assert_window(&after, &settings);
                    assert_successor(&before, &after);
                }
                before = after;
            }
        }

        #[test]
        fn regular_frames_make_parts_within_the_target(
            fps in 10u64..=60,
            part_ms in 200u32..=1_000,
            segment_ms in 1_000u32..=4_000,
            gop in 1u64..=120,
            audio in any::<bool>(),
            jitter in prop::collection::vec(0u64..=1, 600),
            end_at in prop::option::of(100usize..600),
        ) {
            let settings = Settings { segment_ms, part_ms, segments: 3, bytes_max: usize::MAX };
            let mut packager = Packager::new(settings, "s/");
            let mut source = Source::new(fps, gop, audio);
            source.configs(&mut packager);
            for (k, jitter_ms) in jitter.iter().enumerate() {
                // Frame intervals of 1000/fps, give or take a millisecond.
                let ms = source.video_ms(k as u64) + jitter_ms;
                while audio && source.audio_ms(source.audio_frames) < ms {
                    let audio_ms = source.audio_ms(source.audio_frames);
                    packager.handle(audio_frame(), audio_ms as u32, NOW_MS + audio_ms);
                    source.audio_frames += 1;
                }
                let changed = if end_at == Some(k) {
                    packager.end()
                } else {
                    packager.handle(frame(k as u64 % gop == 0), ms as u32, NOW_MS + ms)
                };
                if changed {
                    let window = packager.window();
                    for segment in &window.segments {
                        for part in &segment.parts {
                            prop_assert!(part.duration_ms <= part_ms, "{:?} over {part_ms}", part_durations(segment));
                        }
                    }
                    assert_window(&window, &settings);
                }
            }
        }

        #[test]
        fn any_message_bodies_never_panic(
            messages in prop::collection::vec(
                (0u8..3, any::<u32>(), prop_oneof![
                    prop::collection::vec(any::<u8>(), 0..40),
                    prop::collection::vec(any::<u8>(), 0..40).prop_map(|tail| [vec![0x17, 1, 0, 0, 0], tail].concat()),
                    prop::collection::vec(any::<u8>(), 0..40).prop_map(|tail| [vec![0x27, 1, 0, 0, 0], tail].concat()),
                    prop::collection::vec(any::<u8>(), 0..40).prop_map(|tail| [vec![0xaf, 1], tail].concat()),
                ]),
                0..200,
            ),
        ) {
            let settings = Settings { segment_ms: 1_000, part_ms: 200, segments: 2, bytes_max: 100_000 };
            let mut packager = Packager::new(settings, "s/");
            for (kind, timestamp_ms, body) in messages {
                let kind = match kind {
                    0 => MediaKind::Audio,
                    1 => MediaKind::Video,
                    _ => MediaKind::Data,
                };
                if packager.push(kind, timestamp_ms, &Bytes::from(body), NOW_MS) {
                    assert_window(&packager.window(), &settings);
                }
            }
            packager.end();
        }
    }
}
