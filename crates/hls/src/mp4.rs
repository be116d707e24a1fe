//! ISO BMFF boxes for CMAF: the init segment and fragments.
//!
//! This module owns the bytes of the boxes and nothing else: it reads no
//! media (the records and samples come from [`crate::codec`] as they
//! were sent) and decides no timing (durations, decode times and
//! composition offsets come in the tracks' timescales). A live stream has
//! no duration: every duration in the init segment is 0 and its sample
//! tables are empty; the samples live in fragments.
//!
//! Specifications:
//! - ISO/IEC 14496-12 (ISO BMFF): 4.3 `ftyp`, 8.2.2 `mvhd`, 8.3.2
//!   `tkhd`, 8.4 `mdia`/`mdhd`/`hdlr`, 12.1.2 `vmhd`, 12.2.2 `smhd`,
//!   8.7.2 `dref`, 8.5.2 `stsd`, 12.1.3 VisualSampleEntry, 12.2.3
//!   AudioSampleEntry, 8.8 movie fragments (`mvex`/`trex`, `moof`,
//!   `mfhd`, `traf`, `tfhd`, `tfdt`, `trun`), 8.1.1 `mdat`.
//! - ISO/IEC 23000-19 (CMAF) 7.2–7.3: brand `cmfc`, `tfdt` in every
//!   fragment, default-base-is-moof.
//! - ISO/IEC 14496-15: `avc1`/`avcC`, `hvc1`/`hvcC` (parameter sets in
//!   the sample entry, as enhanced RTMP sends them).
//! - AV1 Codec ISO Media File Format Binding 2.2–2.3: `av01`/`av1C`.
//! - ISO/IEC 14496-14 3.1.2 and 14496-1 7.2.6: `mp4a`/`esds`
//!   (ES_Descriptor, DecoderConfigDescriptor, DecoderSpecificInfo).
//! - Encapsulation of Opus in ISO BMFF 4.3: `Opus`/`dOps`, big-endian,
//!   without the OpusHead magic.

use bytes::{BufMut, Bytes, BytesMut};

use crate::codec::{AudioConfig, OpusHead, VideoConfig};

/// The video track's id and timescale (90 kHz, as every HLS packager).
pub const VIDEO_TRACK_ID: u32 = 1;
pub const VIDEO_TIMESCALE: u32 = 90_000;
/// The audio track's id; its timescale is its sample rate
/// ([`audio_timescale`]).
pub const AUDIO_TRACK_ID: u32 = 2;
/// Opus is always decoded at 48 kHz (RFC 7845 4), whatever the input
/// rate the OpusHead names.
pub const OPUS_TIMESCALE: u32 = 48_000;

/// `sample_flags` of a sync sample: sample_depends_on 2 (depends on no
/// other sample), sample_is_non_sync_sample 0 (14496-12 8.8.3.1).
pub const SAMPLE_FLAGS_SYNC: u32 = 0x0200_0000;
/// `sample_flags` of any other sample: sample_depends_on 1,
/// sample_is_non_sync_sample 1.
pub const SAMPLE_FLAGS_NON_SYNC: u32 = 0x0101_0000;

/// The audio track's timescale: the sample rate (48 kHz for Opus).
pub fn audio_timescale(config: &AudioConfig) -> u32 {
    match config {
        AudioConfig::Aac { sample_rate, .. } => *sample_rate,
        AudioConfig::Opus { .. } => OPUS_TIMESCALE,
    }
}

/// `ftyp` + `moov` for the tracks present (video track 1, audio track 2).
pub fn init_segment(video: Option<&VideoConfig>, audio: Option<&AudioConfig>) -> Bytes {
    let records = video.map_or(0, |v| v.record().len()) + audio.map_or(0, audio_config_len);
    let mut out = BytesMut::with_capacity(INIT_SEGMENT_FIXED_LEN_MAX + records);
    ftyp(&mut out, video, audio);
    boxed(&mut out, b"moov", |out| {
        mvhd(out);
        if let Some(config) = video {
            trak(out, &Track::Video(config));
        }
        if let Some(config) = audio {
            trak(out, &Track::Audio(config));
        }
        boxed(out, b"mvex", |out| {
            for (id, present) in [
                (VIDEO_TRACK_ID, video.is_some()),
                (AUDIO_TRACK_ID, audio.is_some()),
            ] {
                if present {
                    trex(out, id);
                }
            }
        });
    });
    out.freeze()
}

/// One sample of a track run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// In the track's timescale.
    pub duration: u32,
    /// Presentation minus decode time, in the track's timescale.
    pub composition_offset: i32,
    /// A sync sample (video keyframe; every audio sample).
    pub sync: bool,
    pub data: Bytes,
}

/// A track's samples in one fragment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackRun {
    pub track_id: u32,
    /// `tfdt`: decode time of the first sample, in the track's timescale.
    pub base_decode_time: u64,
    pub samples: Vec<Sample>,
}

/// `moof` + `mdat` holding the runs (empty runs left out): one
/// allocation of exactly the fragment's size, the samples' bytes copied
/// once.
///
/// Each `trun`'s data offset is a signed 32-bit count from the start of
/// the `moof` (default-base-is-moof), so a run must start within 2 GiB
/// of it; parts are a few hundred milliseconds, far below that.
pub fn fragment(sequence_number: u32, runs: &[TrackRun]) -> Bytes {
    let present = || runs.iter().filter(|run| !run.samples.is_empty());
    let moof_len = BOX_HEADER_LEN + MFHD_LEN + present().map(traf_len).sum::<usize>();
    let data_len: usize = present().map(run_data_len).sum();
    let mdat_header_len = if BOX_HEADER_LEN + data_len > U32_MAX {
        LARGE_BOX_HEADER_LEN
    } else {
        BOX_HEADER_LEN
    };
    let total = moof_len + mdat_header_len + data_len;
    let mut out = BytesMut::with_capacity(total);
    boxed(&mut out, b"moof", |out| {
        full_box(out, b"mfhd", 0, 0, |out| out.put_u32(sequence_number));
        let mut data_offset = moof_len + mdat_header_len;
        for run in present() {
            traf(out, run, data_offset);
            data_offset += run_data_len(run);
        }
    });
    debug_assert_eq!(out.len(), moof_len, "moof size as computed");
    mdat_header(&mut out, mdat_header_len, data_len);
    for sample in present().flat_map(|run| &run.samples) {
        out.put_slice(&sample.data);
    }
    debug_assert_eq!(out.len(), total, "fragment size as allocated");
    out.freeze()
}

// ------------------------------------------------------------------ sizes

const BOX_HEADER_LEN: usize = 8;
/// A box whose size needs 64 bits: size 1, type, largesize.
const LARGE_BOX_HEADER_LEN: usize = 16;
const FULL_BOX_HEADER_LEN: usize = 12;
const U32_MAX: usize = u32::MAX as usize;
/// `mfhd`: sequence_number.
const MFHD_LEN: usize = FULL_BOX_HEADER_LEN + 4;
/// `tfhd` with only the track id (default-base-is-moof).
const TFHD_LEN: usize = FULL_BOX_HEADER_LEN + 4;
/// `tfdt` version 1: a 64-bit base media decode time.
const TFDT_LEN: usize = FULL_BOX_HEADER_LEN + 8;
/// `trun` before its samples: sample_count, data_offset.
const TRUN_FIXED_LEN: usize = FULL_BOX_HEADER_LEN + 4 + 4;
/// Per sample: duration, size, flags, composition offset.
const TRUN_SAMPLE_LEN: usize = 16;
/// The init segment without its config records, with room to spare:
/// ftyp 36, moov with mvhd 108, two traks of at most ~600 and mvex 72.
const INIT_SEGMENT_FIXED_LEN_MAX: usize = 1536;

fn traf_len(run: &TrackRun) -> usize {
    BOX_HEADER_LEN + TFHD_LEN + TFDT_LEN + TRUN_FIXED_LEN + TRUN_SAMPLE_LEN * run.samples.len()
}

fn run_data_len(run: &TrackRun) -> usize {
    run.samples.iter().map(|sample| sample.data.len()).sum()
}

fn audio_config_len(config: &AudioConfig) -> usize {
    match config {
        AudioConfig::Aac { config, .. } => config.len(),
        AudioConfig::Opus { head, .. } => head.len(),
    }
}

// ------------------------------------------------------------- fragments

/// `tfhd` flags: default-base-is-moof (CMAF 7.5.16): data offsets count
/// from this fragment's `moof`.
const TFHD_DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;
/// `trun` flags: data-offset, sample-duration, sample-size, sample-flags
/// and sample-composition-time-offset present.
const TRUN_FLAGS: u32 = 0x00_0001 | 0x00_0100 | 0x00_0200 | 0x00_0400 | 0x00_0800;

fn traf(out: &mut BytesMut, run: &TrackRun, data_offset: usize) {
    boxed(out, b"traf", |out| {
        full_box(out, b"tfhd", 0, TFHD_DEFAULT_BASE_IS_MOOF, |out| {
            out.put_u32(run.track_id);
        });
        full_box(out, b"tfdt", 1, 0, |out| out.put_u64(run.base_decode_time));
        // Version 1: signed composition offsets, for B-frames.
        full_box(out, b"trun", 1, TRUN_FLAGS, |out| {
            out.put_u32(u32::try_from(run.samples.len()).unwrap_or(u32::MAX));
            debug_assert!(i32::try_from(data_offset).is_ok(), "run past 2 GiB");
            out.put_i32(i32::try_from(data_offset).unwrap_or(i32::MAX));
            for sample in &run.samples {
                out.put_u32(sample.duration);
                out.put_u32(u32::try_from(sample.data.len()).unwrap_or(u32::MAX));
                out.put_u32(if sample.sync {
                    SAMPLE_FLAGS_SYNC
                } else {
                    SAMPLE_FLAGS_NON_SYNC
                });
                out.put_i32(sample.composition_offset);
            }
        });
    });
}

fn mdat_header(out: &mut BytesMut, header_len: usize, data_len: usize) {
    if header_len == LARGE_BOX_HEADER_LEN {
        out.put_u32(1);
        out.put_slice(b"mdat");
        out.put_u64(u64::try_from(header_len + data_len).unwrap_or(u64::MAX));
    } else {
        out.put_u32(u32::try_from(header_len + data_len).unwrap_or(u32::MAX));
        out.put_slice(b"mdat");
    }
}

// ----------------------------------------------------------- init segment

/// The brands every segment conforms to: `iso6` (tfdt version 1 and the
/// other boxes of 14496-12 6th edition), `cmfc` (CMAF), and the older
/// `isom` and `mp41` for players that look for them.
const BRANDS: [&[u8; 4]; 4] = [b"iso6", b"cmfc", b"isom", b"mp41"];

fn ftyp(out: &mut BytesMut, video: Option<&VideoConfig>, audio: Option<&AudioConfig>) {
    boxed(out, b"ftyp", |out| {
        out.put_slice(b"iso6");
        out.put_u32(0); // minor_version
        for brand in BRANDS {
            out.put_slice(brand);
        }
        // The codec bindings' own brands (AV1-ISOBMFF 2.1, Opus-ISOBMFF 4.1).
        if matches!(video, Some(VideoConfig::Av1 { .. })) {
            out.put_slice(b"av01");
        }
        if matches!(audio, Some(AudioConfig::Opus { .. })) {
            out.put_slice(b"Opus");
        }
    });
}

/// The unity matrix of `mvhd` and `tkhd` (16.16 and 2.30 fixed point).
const UNITY_MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];
/// The movie timescale: only durations (all 0) use it.
const MOVIE_TIMESCALE: u32 = 1000;
/// ISO 639-2/T "und", packed as three 5-bit letters minus 0x60.
const LANGUAGE_UNDETERMINED: u16 = 0x55C4;

fn mvhd(out: &mut BytesMut) {
    full_box(out, b"mvhd", 0, 0, |out| {
        out.put_u32(0); // creation_time
        out.put_u32(0); // modification_time
        out.put_u32(MOVIE_TIMESCALE);
        out.put_u32(0); // duration: live
        out.put_u32(0x0001_0000); // rate 1.0
        out.put_u16(0x0100); // volume 1.0
        out.put_bytes(0, 2 + 8); // reserved
        for value in UNITY_MATRIX {
            out.put_u32(value);
        }
        out.put_bytes(0, 24); // pre_defined
        out.put_u32(AUDIO_TRACK_ID + 1); // next_track_ID
    });
}

/// A track of the init segment.
enum Track<'a> {
    Video(&'a VideoConfig),
    Audio(&'a AudioConfig),
}

impl Track<'_> {
    fn id(&self) -> u32 {
        match self {
            Track::Video(_) => VIDEO_TRACK_ID,
            Track::Audio(_) => AUDIO_TRACK_ID,
        }
    }

    fn timescale(&self) -> u32 {
        match self {
            Track::Video(_) => VIDEO_TIMESCALE,
            Track::Audio(config) => audio_timescale(config),
        }
    }
}

fn trak(out: &mut BytesMut, track: &Track<'_>) {
    boxed(out, b"trak", |out| {
        tkhd(out, track);
        boxed(out, b"mdia", |out| {
            mdhd(out, track.timescale());
            let (handler, name): (&[u8; 4], &[u8]) = match track {
                Track::Video(_) => (b"vide", b"VideoHandler\0"),
                Track::Audio(_) => (b"soun", b"SoundHandler\0"),
            };
            full_box(out, b"hdlr", 0, 0, |out| {
                out.put_u32(0); // pre_defined
                out.put_slice(handler);
                out.put_bytes(0, 12); // reserved
                out.put_slice(name);
            });
            boxed(out, b"minf", |out| minf(out, track));
        });
    });
}

/// `tkhd` flags: track_enabled, track_in_movie.
const TKHD_FLAGS: u32 = 0x00_0003;

fn tkhd(out: &mut BytesMut, track: &Track<'_>) {
    let ((width, height), volume) = match track {
        Track::Video(config) => (config.dimensions(), 0),
        Track::Audio(_) => ((0, 0), 0x0100),
    };
    full_box(out, b"tkhd", 0, TKHD_FLAGS, |out| {
        out.put_u32(0); // creation_time
        out.put_u32(0); // modification_time
        out.put_u32(track.id());
        out.put_u32(0); // reserved
        out.put_u32(0); // duration: live
        out.put_bytes(0, 8); // reserved
        out.put_u16(0); // layer
        out.put_u16(0); // alternate_group
        out.put_u16(volume);
        out.put_u16(0); // reserved
        for value in UNITY_MATRIX {
            out.put_u32(value);
        }
        // 16.16 fixed point.
        out.put_u32(u32::from(width) << 16);
        out.put_u32(u32::from(height) << 16);
    });
}

fn mdhd(out: &mut BytesMut, timescale: u32) {
    full_box(out, b"mdhd", 0, 0, |out| {
        out.put_u32(0); // creation_time
        out.put_u32(0); // modification_time
        out.put_u32(timescale);
        out.put_u32(0); // duration: live
        out.put_u16(LANGUAGE_UNDETERMINED);
        out.put_u16(0); // pre_defined
    });
}

fn minf(out: &mut BytesMut, track: &Track<'_>) {
    match track {
        // vmhd flags 1 (14496-12 12.1.2.2); graphicsmode copy, opcolor 0.
        Track::Video(_) => full_box(out, b"vmhd", 0, 1, |out| out.put_bytes(0, 8)),
        // balance 0, reserved.
        Track::Audio(_) => full_box(out, b"smhd", 0, 0, |out| out.put_u32(0)),
    }
    boxed(out, b"dinf", |out| {
        full_box(out, b"dref", 0, 0, |out| {
            out.put_u32(1); // entry_count
            // Flag 1: the media is in this file.
            full_box(out, b"url ", 0, 1, |_| {});
        });
    });
    boxed(out, b"stbl", |out| {
        full_box(out, b"stsd", 0, 0, |out| {
            out.put_u32(1); // entry_count
            match track {
                Track::Video(config) => visual_sample_entry(out, config),
                Track::Audio(config) => audio_sample_entry(out, config),
            }
        });
        // Empty tables: the samples are in the fragments.
        full_box(out, b"stts", 0, 0, |out| out.put_u32(0));
        full_box(out, b"stsc", 0, 0, |out| out.put_u32(0));
        full_box(out, b"stsz", 0, 0, |out| {
            out.put_u32(0); // sample_size
            out.put_u32(0); // sample_count
        });
        full_box(out, b"stco", 0, 0, |out| out.put_u32(0));
    });
}

/// 72 dpi, 16.16.
const RESOLUTION_72_DPI: u32 = 0x0048_0000;
/// Colour with no alpha.
const DEPTH_24: u16 = 0x0018;

fn visual_sample_entry(out: &mut BytesMut, config: &VideoConfig) {
    let (entry, record_box): (&[u8; 4], &[u8; 4]) = match config {
        VideoConfig::Avc { .. } => (b"avc1", b"avcC"),
        VideoConfig::Hevc { .. } => (b"hvc1", b"hvcC"),
        VideoConfig::Av1 { .. } => (b"av01", b"av1C"),
    };
    let (width, height) = config.dimensions();
    boxed(out, entry, |out| {
        sample_entry_header(out);
        out.put_u16(0); // pre_defined
        out.put_u16(0); // reserved
        out.put_bytes(0, 12); // pre_defined
        out.put_u16(width);
        out.put_u16(height);
        out.put_u32(RESOLUTION_72_DPI);
        out.put_u32(RESOLUTION_72_DPI);
        out.put_u32(0); // reserved
        out.put_u16(1); // frame_count
        out.put_bytes(0, 32); // compressorname
        out.put_u16(DEPTH_24);
        out.put_i16(-1); // pre_defined
        boxed(out, record_box, |out| out.put_slice(config.record()));
    });
}

/// SampleEntry: six reserved bytes and data_reference_index 1.
fn sample_entry_header(out: &mut BytesMut) {
    out.put_bytes(0, 6);
    out.put_u16(1);
}

fn audio_sample_entry(out: &mut BytesMut, config: &AudioConfig) {
    let (entry, channels, rate): (&[u8; 4], u8, u32) = match config {
        // Channel configuration 0 leaves the layout to the bitstream; the
        // entry's count is then 2, as ffmpeg writes.
        AudioConfig::Aac {
            sample_rate,
            channels,
            ..
        } => (
            b"mp4a",
            if *channels == 0 { 2 } else { *channels },
            *sample_rate,
        ),
        AudioConfig::Opus { channels, .. } => (b"Opus", *channels, OPUS_TIMESCALE),
    };
    boxed(out, entry, |out| {
        sample_entry_header(out);
        out.put_bytes(0, 8); // reserved
        out.put_u16(u16::from(channels));
        out.put_u16(16); // samplesize
        out.put_u16(0); // pre_defined
        out.put_u16(0); // reserved
        // 16.16; a rate above 65535 Hz does not fit, and 0 tells the
        // player to take the one in the decoder config (as ffmpeg does).
        out.put_u32(u16::try_from(rate).map_or(0, |rate| u32::from(rate) << 16));
        match config {
            AudioConfig::Aac { config, .. } => esds(out, config),
            AudioConfig::Opus {
                head,
                channels,
                pre_skip,
                input_sample_rate,
            } => {
                let fallback = OpusHead {
                    channels: *channels,
                    pre_skip: *pre_skip,
                    input_sample_rate: *input_sample_rate,
                    output_gain: 0,
                    mapping_family: 0,
                    mapping: &[],
                };
                dops(out, &OpusHead::parse(head).unwrap_or(fallback));
            }
        }
    });
}

// 14496-1 7.2.2.1 class tags.
const ES_DESCRIPTOR_TAG: u8 = 0x03;
const DECODER_CONFIG_DESCRIPTOR_TAG: u8 = 0x04;
const DECODER_SPECIFIC_INFO_TAG: u8 = 0x05;
const SL_CONFIG_DESCRIPTOR_TAG: u8 = 0x06;
/// objectTypeIndication: Audio ISO/IEC 14496-3 (AAC in all its profiles).
const OBJECT_TYPE_AAC: u8 = 0x40;
/// streamType 5 (audio) << 2 | upStream 0 | reserved 1.
const STREAM_TYPE_AUDIO: u8 = 0x15;
/// SLConfigDescriptor predefined 2: the MP4 file default (14496-14 3.1.2).
const SL_PREDEFINED_MP4: u8 = 0x02;

fn esds(out: &mut BytesMut, audio_specific_config: &[u8]) {
    full_box(out, b"esds", 0, 0, |out| {
        descriptor(out, ES_DESCRIPTOR_TAG, |out| {
            out.put_u16(0); // ES_ID: 0 in MP4 files (14496-14 3.1.2)
            out.put_u8(0); // no dependency, URL or OCR stream
            descriptor(out, DECODER_CONFIG_DESCRIPTOR_TAG, |out| {
                out.put_u8(OBJECT_TYPE_AAC);
                out.put_u8(STREAM_TYPE_AUDIO);
                out.put_bytes(0, 3); // bufferSizeDB: unknown live
                out.put_u32(0); // maxBitrate
                out.put_u32(0); // avgBitrate: variable
                descriptor(out, DECODER_SPECIFIC_INFO_TAG, |out| {
                    out.put_slice(audio_specific_config);
                });
            });
            descriptor(out, SL_CONFIG_DESCRIPTOR_TAG, |out| {
                out.put_u8(SL_PREDEFINED_MP4);
            });
        });
    });
}

fn dops(out: &mut BytesMut, head: &OpusHead<'_>) {
    boxed(out, b"dOps", |out| {
        out.put_u8(0); // Version
        out.put_u8(head.channels);
        out.put_u16(head.pre_skip);
        out.put_u32(head.input_sample_rate);
        out.put_i16(head.output_gain);
        out.put_u8(head.mapping_family);
        // StreamCount, CoupledCount, ChannelMapping: as in the OpusHead.
        out.put_slice(head.mapping);
    });
}

fn trex(out: &mut BytesMut, track_id: u32) {
    full_box(out, b"trex", 0, 0, |out| {
        out.put_u32(track_id);
        out.put_u32(1); // default_sample_description_index
        out.put_u32(0); // default_sample_duration: every trun says
        out.put_u32(0); // default_sample_size
        out.put_u32(0); // default_sample_flags
    });
}

// --------------------------------------------------------------- writers

/// A box: its size (patched in once the body is written), type, body.
fn boxed(out: &mut BytesMut, kind: &[u8; 4], body: impl FnOnce(&mut BytesMut)) {
    let start = out.len();
    out.put_u32(0);
    out.put_slice(kind);
    body(out);
    patch_u32(out, start, out.len() - start);
}

/// A FullBox: a box whose body starts with a version and 24 bits of flags.
fn full_box(
    out: &mut BytesMut,
    kind: &[u8; 4],
    version: u8,
    flags: u32,
    body: impl FnOnce(&mut BytesMut),
) {
    boxed(out, kind, |out| {
        out.put_u32(u32::from(version) << 24 | (flags & 0x00FF_FFFF));
        body(out);
    });
}

/// An MPEG-4 descriptor (14496-1 8.3.3): tag, then its size in the
/// four-byte expandable form (7 bits a byte, high bit "more"), as ffmpeg
/// writes it, so the size can be patched in after the body.
fn descriptor(out: &mut BytesMut, tag: u8, body: impl FnOnce(&mut BytesMut)) {
    out.put_u8(tag);
    let start = out.len();
    out.put_u32(0);
    body(out);
    let size = u32::try_from(out.len() - start - 4)
        .unwrap_or(u32::MAX)
        .min(DESCRIPTOR_SIZE_MAX);
    let expandable = [
        0x80 | (size >> 21) as u8 & 0x7F,
        0x80 | (size >> 14) as u8 & 0x7F,
        0x80 | (size >> 7) as u8 & 0x7F,
        size as u8 & 0x7F,
    ];
    if let Some(field) = out.get_mut(start..start + 4) {
        field.copy_from_slice(&expandable);
    }
}

/// The largest size four expandable bytes hold (28 bits).
const DESCRIPTOR_SIZE_MAX: u32 = (1 << 28) - 1;

fn patch_u32(out: &mut BytesMut, at: usize, value: usize) {
    let value = u32::try_from(value).unwrap_or(u32::MAX);
    if let Some(field) = out.get_mut(at..at + 4) {
        field.copy_from_slice(&value.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::testing::hex;

    /// The boxes laid side by side in `bytes`: type and body.
    fn boxes(mut bytes: &[u8]) -> Vec<([u8; 4], &[u8])> {
        let mut found = Vec::new();
        while !bytes.is_empty() {
            let size = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
            let kind: [u8; 4] = bytes[4..8].try_into().unwrap();
            let (header, size) = if size == 1 {
                (
                    16,
                    u64::from_be_bytes(bytes[8..16].try_into().unwrap()) as usize,
                )
            } else {
                (8, size)
            };
            found.push((kind, &bytes[header..size]));
            bytes = &bytes[size..];
        }
        found
    }

    fn kinds(bytes: &[u8]) -> Vec<String> {
        boxes(bytes)
            .iter()
            .map(|(kind, _)| String::from_utf8_lossy(kind).into_owned())
            .collect()
    }

    /// The body of the only box of `kind` among `bytes`' boxes.
    fn find<'a>(bytes: &'a [u8], kind: &[u8; 4]) -> &'a [u8] {
        let matches: Vec<_> = boxes(bytes)
            .into_iter()
            .filter(|(k, _)| k == kind)
            .collect();
        assert_eq!(matches.len(), 1, "{}", String::from_utf8_lossy(kind));
        matches[0].1
    }

    /// Follows a path of container boxes.
    fn path<'a>(bytes: &'a [u8], kinds: &[&[u8; 4]]) -> &'a [u8] {
        kinds.iter().fold(bytes, |inside, kind| find(inside, kind))
    }

    fn u32_at(bytes: &[u8], at: usize) -> u32 {
        u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap())
    }

    fn u16_at(bytes: &[u8], at: usize) -> u16 {
        u16::from_be_bytes(bytes[at..at + 2].try_into().unwrap())
    }

    fn avc() -> VideoConfig {
        VideoConfig::Avc {
            record: Bytes::from(hex(
                "0142c01effe100196742c01eda0280bfe5c044000003000400000300f23c58ba8001000468ce3c80",
            )),
            width: 640,
            height: 360,
        }
    }

    fn aac() -> AudioConfig {
        AudioConfig::Aac {
            config: Bytes::from(hex("121056e500")),
            sample_rate: 44_100,
            channels: 2,
        }
    }

    fn opus(head: &str) -> AudioConfig {
        let head = Bytes::from(hex(head));
        let parsed = OpusHead::parse(&head).unwrap();
        AudioConfig::Opus {
            channels: parsed.channels,
            pre_skip: parsed.pre_skip,
            input_sample_rate: parsed.input_sample_rate,
            head: head.clone(),
        }
    }

    const OPUS_MONO_HEAD: &str = "4f707573486561640101380180bb0000000000";
    const OPUS_SIX_CHANNEL_HEAD: &str = "4f707573486561640106380180bb000000000104020004010203 05";

    /// The `stsd` entry of track `index` (0-based) of an init segment.
    fn sample_entry(init: &[u8], index: usize) -> ([u8; 4], Vec<u8>) {
        let moov = find(init, b"moov");
        let trak = boxes(moov)
            .into_iter()
            .filter(|(k, _)| k == b"trak")
            .nth(index)
            .unwrap()
            .1;
        let stsd = path(trak, &[b"mdia", b"minf", b"stbl", b"stsd"]);
        assert_eq!(u32_at(stsd, 4), 1, "entry_count");
        let entries = boxes(&stsd[8..]);
        assert_eq!(entries.len(), 1);
        (entries[0].0, entries[0].1.to_vec())
    }

    #[test]
    fn init_segment_for_avc_and_aac_has_the_cmaf_boxes() {
        let init = init_segment(Some(&avc()), Some(&aac()));
        assert_eq!(kinds(&init), ["ftyp", "moov"]);
        assert_eq!(find(&init, b"ftyp"), b"iso6\0\0\0\0iso6cmfcisommp41");
        let moov = find(&init, b"moov");
        assert_eq!(kinds(moov), ["mvhd", "trak", "trak", "mvex"]);
        let mvhd = find(moov, b"mvhd");
        assert_eq!(u32_at(mvhd, 12), MOVIE_TIMESCALE);
        assert_eq!(u32_at(mvhd, 16), 0, "duration");
        assert_eq!(u32_at(mvhd, 96), 3, "next_track_ID");

        let traks: Vec<_> = boxes(moov)
            .into_iter()
            .filter(|(k, _)| k == b"trak")
            .map(|b| b.1)
            .collect();
        let [video, audio] = traks[..] else { panic!() };
        assert_eq!(kinds(video), ["tkhd", "mdia"]);
        let tkhd = find(video, b"tkhd");
        assert_eq!(u32_at(tkhd, 0), 3, "version 0, flags enabled|in_movie");
        assert_eq!(u32_at(tkhd, 12), VIDEO_TRACK_ID);
        assert_eq!((u32_at(tkhd, 76), u32_at(tkhd, 80)), (640 << 16, 360 << 16));
        let mdia = find(video, b"mdia");
        assert_eq!(kinds(mdia), ["mdhd", "hdlr", "minf"]);
        assert_eq!(u32_at(find(mdia, b"mdhd"), 12), VIDEO_TIMESCALE);
        assert_eq!(&find(mdia, b"hdlr")[8..12], b"vide");
        let minf = find(mdia, b"minf");
        assert_eq!(kinds(minf), ["vmhd", "dinf", "stbl"]);
        assert_eq!(
            kinds(find(minf, b"stbl")),
            ["stsd", "stts", "stsc", "stsz", "stco"]
        );
        let dref = path(minf, &[b"dinf", b"dref"]);
        assert_eq!(&dref[8..], hex("0000000c75726c2000000001"));

        let (entry, body) = sample_entry(&init, 0);
        assert_eq!(&entry, b"avc1");
        assert_eq!((u16_at(&body, 24), u16_at(&body, 26)), (640, 360));
        assert_eq!(find(&body[78..], b"avcC"), &avc().record()[..]);

        let tkhd = find(audio, b"tkhd");
        assert_eq!(u32_at(tkhd, 12), AUDIO_TRACK_ID);
        assert_eq!(u16_at(tkhd, 36), 0x0100, "volume");
        let mdia = find(audio, b"mdia");
        assert_eq!(u32_at(find(mdia, b"mdhd"), 12), 44_100);
        assert_eq!(&find(mdia, b"hdlr")[8..12], b"soun");
        assert_eq!(kinds(find(mdia, b"minf")), ["smhd", "dinf", "stbl"]);
        let (entry, body) = sample_entry(&init, 1);
        assert_eq!(&entry, b"mp4a");
        assert_eq!(u16_at(&body, 16), 2, "channelcount");
        assert_eq!(u32_at(&body, 24), 44_100 << 16);

        let mvex = find(moov, b"mvex");
        let trex: Vec<u32> = boxes(mvex)
            .iter()
            .map(|(_, body)| u32_at(body, 4))
            .collect();
        assert_eq!(trex, [VIDEO_TRACK_ID, AUDIO_TRACK_ID]);
    }

    #[test]
    fn esds_carries_the_audio_specific_config_in_its_descriptors() {
        let init = init_segment(None, Some(&aac()));
        let (_, body) = sample_entry(&init, 0);
        let expected = hex("00000036 65736473 00000000
             03 80808025 0000 00
                04 80808017 40 15 000000 00000000 00000000
                   05 80808005 121056e500
                06 80808001 02");
        assert_eq!(&body[28..], expected);
    }

    #[test]
    fn dops_repeats_the_opus_head_big_endian_with_its_mapping_table() {
        let init = init_segment(None, Some(&opus(OPUS_MONO_HEAD)));
        let (entry, body) = sample_entry(&init, 0);
        assert_eq!(&entry, b"Opus");
        assert_eq!(u16_at(&body, 16), 1, "channelcount");
        assert_eq!(u32_at(&body, 24), 48_000 << 16);
        assert_eq!(
            &body[28..],
            hex("00000013 644f7073 00 01 0138 0000bb80 0000 00")
        );
        let init = init_segment(None, Some(&opus(OPUS_SIX_CHANNEL_HEAD)));
        let (_, body) = sample_entry(&init, 0);
        assert_eq!(
            &body[28..],
            hex("0000001b 644f7073 00 06 0138 0000bb80 0000 01 04 02 00 04 01 02 03 05")
        );
        let moov = find(&init, b"moov");
        let mdhd = path(moov, &[b"trak", b"mdia", b"mdhd"]);
        assert_eq!(u32_at(mdhd, 12), OPUS_TIMESCALE);
        assert_eq!(find(&init, b"ftyp"), b"iso6\0\0\0\0iso6cmfcisommp41Opus");
    }

    #[test]
    fn hevc_and_av1_get_their_sample_entries_and_brands() {
        let hevc = VideoConfig::Hevc {
            record: Bytes::from_static(&[1, 2, 3]),
            width: 320,
            height: 180,
        };
        let init = init_segment(Some(&hevc), None);
        let (entry, body) = sample_entry(&init, 0);
        assert_eq!(&entry, b"hvc1");
        assert_eq!((u16_at(&body, 24), u16_at(&body, 26)), (320, 180));
        assert_eq!(find(&body[78..], b"hvcC"), [1, 2, 3]);
        let av1 = VideoConfig::Av1 {
            record: Bytes::from_static(&[0x81, 0, 0x0c, 0]),
            width: 200,
            height: 120,
        };
        let init = init_segment(Some(&av1), None);
        let (entry, body) = sample_entry(&init, 0);
        assert_eq!(&entry, b"av01");
        assert_eq!(find(&body[78..], b"av1C"), [0x81, 0, 0x0c, 0]);
        assert_eq!(find(&init, b"ftyp"), b"iso6\0\0\0\0iso6cmfcisommp41av01");
        let moov = find(&init, b"moov");
        assert_eq!(kinds(moov), ["mvhd", "trak", "mvex"]);
        assert_eq!(u32_at(path(moov, &[b"mvex", b"trex"]), 4), VIDEO_TRACK_ID);
    }

    #[test]
    fn an_audio_only_stream_has_one_audio_track() {
        let init = init_segment(None, Some(&aac()));
        let moov = find(&init, b"moov");
        assert_eq!(kinds(moov), ["mvhd", "trak", "mvex"]);
        assert_eq!(u32_at(path(moov, &[b"trak", b"tkhd"]), 12), AUDIO_TRACK_ID);
        assert_eq!(u32_at(path(moov, &[b"mvex", b"trex"]), 4), AUDIO_TRACK_ID);
    }

    #[test]
    fn audio_timescale_is_the_sample_rate_and_48k_for_opus() {
        assert_eq!(audio_timescale(&aac()), 44_100);
        assert_eq!(audio_timescale(&opus(OPUS_MONO_HEAD)), 48_000);
    }

    fn sample(duration: u32, composition_offset: i32, sync: bool, data: &[u8]) -> Sample {
        Sample {
            duration,
            composition_offset,
            sync,
            data: Bytes::copy_from_slice(data),
        }
    }

    fn two_runs() -> Vec<TrackRun> {
        vec![
            TrackRun {
                track_id: VIDEO_TRACK_ID,
                base_decode_time: 9000,
                samples: vec![
                    sample(3000, 6000, true, &[0xaa, 0xbb, 0xcc]),
                    sample(3000, -3000, false, &[0xdd]),
                ],
            },
            TrackRun {
                track_id: AUDIO_TRACK_ID,
                base_decode_time: 1024,
                samples: vec![sample(1024, 0, true, &[0xee, 0xff])],
            },
        ]
    }

    #[test]
    fn fragment_is_moof_then_mdat_with_offsets_into_it() {
        let expected = hex("000000c8 6d6f6f66
               00000010 6d666864 00000000 00000007
               00000060 74726166
                 00000010 74666864 00020000 00000001
                 00000014 74666474 01000000 0000000000002328
                 00000034 7472756e 01000f01 00000002 000000d0
                   00000bb8 00000003 02000000 00001770
                   00000bb8 00000001 01010000 fffff448
               00000050 74726166
                 00000010 74666864 00020000 00000002
                 00000014 74666474 01000000 0000000000000400
                 00000024 7472756e 01000f01 00000001 000000d4
                   00000400 00000002 02000000 00000000
             0000000e 6d646174 aabbcc dd eeff");
        assert_eq!(fragment(7, &two_runs())[..], expected);
    }

    #[test]
    fn empty_runs_are_left_out() {
        let mut runs = two_runs();
        let video_only = fragment(3, &runs[..1]);
        runs[1].samples.clear();
        assert_eq!(fragment(3, &runs), video_only);
        let nothing = fragment(4, &[]);
        assert_eq!(
            nothing[..],
            hex("00000018 6d6f6f66 00000010 6d666864 00000000 00000004 00000008 6d646174")
        );
    }

    /// Reads a fragment back: each run's track id, decode time and samples,
    /// their bytes taken where the trun's data offset points.
    fn read_fragment(bytes: &[u8]) -> (u32, Vec<TrackRun>) {
        assert_eq!(kinds(bytes), ["moof", "mdat"]);
        let moof = find(bytes, b"moof");
        let sequence_number = u32_at(find(moof, b"mfhd"), 4);
        let mut runs = Vec::new();
        for (kind, traf) in boxes(moof) {
            if &kind != b"traf" {
                continue;
            }
            let tfhd = find(traf, b"tfhd");
            assert_eq!(u32_at(tfhd, 0), 0x0002_0000);
            let tfdt = find(traf, b"tfdt");
            let trun = find(traf, b"trun");
            let mut at = u32_at(trun, 8) as usize;
            let samples = (0..u32_at(trun, 4) as usize)
                .map(|i| {
                    let fields = &trun[12 + 16 * i..];
                    let size = u32_at(fields, 4) as usize;
                    let data = Bytes::copy_from_slice(&bytes[at..at + size]);
                    at += size;
                    let flags = u32_at(fields, 8);
                    assert!(flags == SAMPLE_FLAGS_SYNC || flags == SAMPLE_FLAGS_NON_SYNC);
                    Sample {
                        duration: u32_at(fields, 0),
                        composition_offset: u32_at(fields, 12) as i32,
                        sync: flags == SAMPLE_FLAGS_SYNC,
                        data,
                    }
                })
                .collect();
            runs.push(TrackRun {
                track_id: u32_at(tfhd, 4),
                base_decode_time: u64::from_be_bytes(tfdt[4..12].try_into().unwrap()),
                samples,
            });
        }
        (sequence_number, runs)
    }

    fn track_run() -> impl Strategy<Value = TrackRun> {
        let sample = (
            any::<u32>(),
            any::<i32>(),
            any::<bool>(),
            proptest::collection::vec(any::<u8>(), 0..50),
        )
            .prop_map(|(duration, offset, sync, data)| sample(duration, offset, sync, &data));
        (
            1u32..3,
            any::<u64>(),
            proptest::collection::vec(sample, 0..8),
        )
            .prop_map(|(track_id, base_decode_time, samples)| TrackRun {
                track_id,
                base_decode_time,
                samples,
            })
    }

    proptest! {
        #[test]
        fn fragments_read_back_as_the_runs_they_were_made_of(
            sequence_number in any::<u32>(),
            mut runs in proptest::collection::vec(track_run(), 0..4),
        ) {
            let bytes = fragment(sequence_number, &runs);
            let (read_number, read_runs) = read_fragment(&bytes);
            prop_assert_eq!(read_number, sequence_number);
            runs.retain(|run| !run.samples.is_empty());
            prop_assert_eq!(read_runs, runs);
        }
    }
}
