//! What the muxer needs from an RTMP audio or video message body (an FLV
//! tag body): the decoder configuration and coded samples, as slices of
//! the message (`Bytes::slice`), never copies.
//!
//! This module owns the step from a tag body to a config record or a
//! sample, and the few numbers the init segment needs from a config
//! (picture size, sample rate, channels). The header classification
//! (codec, packet type, keyframe, composition time) is
//! [`ringcast_rtmp::protocol::flv`]'s; here we only find where the payload
//! lies. Of a multitrack message only the default track (id 0) is read,
//! and only when it comes first; other tracks are skipped. It must not panic, allocate per frame, or
//! reject a stream: whatever it cannot read is [`Parsed::Skip`], and a
//! config whose picture size it cannot read has width and height 0.
//!
//! Specifications:
//! - Adobe FLV 10.1 annex E.4.2, E.4.3; Veovera enhanced RTMP v2
//!   (ExAudioTagHeader, ExVideoTagHeader, ModEx, Multitrack). Enhanced
//!   CodedFrames carry a composition time for `avc1` and `hvc1` only: the
//!   spec's AV1 and VP9 bodies are the OBUs / frame directly.
//! - ISO/IEC 14496-15 5.3.3.1 (AVCDecoderConfigurationRecord) and 8.3.3.1
//!   (HEVCDecoderConfigurationRecord); AV1-ISOBMFF 2.3 (av1C).
//! - ITU-T H.264 7.3.2.1.1 (seq_parameter_set_data) and 7.4.2.1.1
//!   (frame cropping); ITU-T H.265 7.3.2.2 (seq_parameter_set_rbsp),
//!   7.3.3 (profile_tier_level); AV1 5.5 (sequence_header_obu).
//! - ISO/IEC 14496-3 1.6.2.1 (AudioSpecificConfig); RFC 7845 5.1
//!   (OpusHead), which is what enhanced RTMP's Opus SequenceStart carries
//!   (and what ffmpeg's FLV muxer writes).

use std::ops::Range;

use bytes::Bytes;
use ringcast_rtmp::protocol::flv::{
    self, AudioCodec, AudioPacket, VideoCodec, VideoPacket, VideoTag,
};

/// A video decoder configuration, as the sample entry needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VideoConfig {
    /// `avcC` (AVCDecoderConfigurationRecord) as sent in the sequence header.
    Avc {
        record: Bytes,
        width: u16,
        height: u16,
    },
    /// `hvcC` (HEVCDecoderConfigurationRecord).
    Hevc {
        record: Bytes,
        width: u16,
        height: u16,
    },
    /// `av1C` (AV1CodecConfigurationRecord).
    Av1 {
        record: Bytes,
        width: u16,
        height: u16,
    },
}

impl VideoConfig {
    /// The picture's width and height (0 when the record did not say).
    pub fn dimensions(&self) -> (u16, u16) {
        match *self {
            VideoConfig::Avc { width, height, .. }
            | VideoConfig::Hevc { width, height, .. }
            | VideoConfig::Av1 { width, height, .. } => (width, height),
        }
    }

    /// The configuration record, as sent.
    pub fn record(&self) -> &Bytes {
        match self {
            VideoConfig::Avc { record, .. }
            | VideoConfig::Hevc { record, .. }
            | VideoConfig::Av1 { record, .. } => record,
        }
    }
}

/// An audio decoder configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AudioConfig {
    /// AudioSpecificConfig, with what it says: the rate of its first
    /// frequency field (the core rate, for HE-AAC) and the channel count
    /// its channelConfiguration stands for (0: a program config element
    /// in the stream says).
    Aac {
        config: Bytes,
        sample_rate: u32,
        channels: u8,
    },
    /// OpusHead (RFC 7845 5.1) as enhanced RTMP sends it.
    Opus {
        head: Bytes,
        channels: u8,
        pre_skip: u16,
        input_sample_rate: u32,
    },
}

/// A coded video sample: length-prefixed NAL units (AVC, HEVC) or OBUs (AV1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VideoSample {
    pub keyframe: bool,
    /// Presentation minus decode time.
    pub composition_time_ms: i32,
    pub data: Bytes,
}

/// What one message is to the muxer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    VideoConfig(VideoConfig),
    AudioConfig(AudioConfig),
    Video(VideoSample),
    /// A coded audio frame (raw AAC, an Opus packet).
    Audio(Bytes),
    /// Nothing to mux: end of sequence, metadata, a codec HLS cannot carry
    /// here, an unreadable header.
    Skip,
}

/// Reads a video message body.
pub fn parse_video(body: &Bytes) -> Parsed {
    video(body).unwrap_or(Parsed::Skip)
}

/// Reads an audio message body.
pub fn parse_audio(body: &Bytes) -> Parsed {
    audio(body).unwrap_or(Parsed::Skip)
}

/// The fields of an OpusHead (RFC 7845 5.1) that the `dOps` box repeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpusHead<'a> {
    pub channels: u8,
    pub pre_skip: u16,
    pub input_sample_rate: u32,
    /// Q7.8 dB.
    pub output_gain: i16,
    pub mapping_family: u8,
    /// Stream count, coupled count and one byte per channel; empty for
    /// family 0.
    pub mapping: &'a [u8],
}

impl<'a> OpusHead<'a> {
    /// Reads an OpusHead; `None` unless it is one this muxer can carry: the
    /// magic, a version whose major nibble is 0 (RFC 7845 5.1: readers
    /// accept 0..=15), at least one channel, and the mapping table that
    /// any family but 0 needs.
    pub fn parse(head: &'a [u8]) -> Option<OpusHead<'a>> {
        let mut r = Reader::new(head);
        if r.take(8)? != OPUS_HEAD_MAGIC || r.u8()? & 0xF0 != 0 {
            return None;
        }
        let channels = r.u8()?;
        let pre_skip = u16::from_le_bytes(r.array()?);
        let input_sample_rate = u32::from_le_bytes(r.array()?);
        let output_gain = i16::from_le_bytes(r.array()?);
        let mapping_family = r.u8()?;
        let mapping = if mapping_family == 0 {
            &[][..]
        } else {
            r.take(2 + usize::from(channels))?
        };
        let stereo_at_most = mapping_family != 0 || channels <= 2;
        (channels > 0 && stereo_at_most).then_some(OpusHead {
            channels,
            pre_skip,
            input_sample_rate,
            output_gain,
            mapping_family,
            mapping,
        })
    }
}

const OPUS_HEAD_MAGIC: &[u8] = b"OpusHead";

/// ModEx entries followed in one message: the same cap, for the same
/// reason, as `ringcast_rtmp::protocol::flv` (one modifier is defined;
/// inspection has already refused longer chains).
const MOD_EX_ENTRIES_MAX: usize = 4;

// Enhanced packet types that move the payload (enhanced RTMP v2).
const PACKET_TYPE_MOD_EX: u8 = 7;
const VIDEO_PACKET_TYPE_CODED_FRAMES: u8 = 1;
const VIDEO_PACKET_TYPE_MULTITRACK: u8 = 6;
const AUDIO_PACKET_TYPE_MULTITRACK: u8 = 5;
/// AvMultitrackType OneTrack: the track has no size field.
const MULTITRACK_ONE_TRACK: u8 = 0;
/// The track a single-track player plays (enhanced RTMP v2 multitrack).
const DEFAULT_TRACK_ID: u8 = 0;

/// Legacy AVC, HEVC and AV1: byte 0, packet type, composition time.
const LEGACY_VIDEO_HEADER_LEN: usize = 5;
/// Legacy AAC: byte 0 and the AAC packet type.
const LEGACY_AAC_HEADER_LEN: usize = 2;

/// The codecs a CMAF sample entry here can carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Video {
    Avc,
    Hevc,
    Av1,
}

fn video(body: &Bytes) -> Option<Parsed> {
    let tag = flv::inspect_video(body).ok()?;
    let codec = match tag.codec? {
        VideoCodec::Avc => Video::Avc,
        VideoCodec::Hevc => Video::Hevc,
        VideoCodec::Av1 => Video::Av1,
        _ => return None,
    };
    let payload = sub(body, video_payload(body, &tag, codec)?)?;
    match tag.packet {
        VideoPacket::SequenceHeader => video_config(codec, payload).map(Parsed::VideoConfig),
        VideoPacket::Coded if !payload.is_empty() => Some(Parsed::Video(VideoSample {
            keyframe: tag.is_keyframe(),
            composition_time_ms: tag.composition_time_ms,
            data: payload,
        })),
        _ => None,
    }
}

/// Where the config record or coded data (of the default track) lies.
fn video_payload(body: &[u8], tag: &VideoTag, codec: Video) -> Option<Range<usize>> {
    if !tag.enhanced {
        return Some(LEGACY_VIDEO_HEADER_LEN..body.len());
    }
    let (packet_type, range) = enhanced_payload(body, VIDEO_PACKET_TYPE_MULTITRACK)?;
    // Only AVC and HEVC CodedFrames carry SI24 composition time.
    let has_composition_time =
        packet_type == VIDEO_PACKET_TYPE_CODED_FRAMES && matches!(codec, Video::Avc | Video::Hevc);
    let skip = if has_composition_time { 3 } else { 0 };
    Some(range.start.checked_add(skip)?..range.end).filter(|r| r.start <= r.end)
}

fn video_config(codec: Video, record: Bytes) -> Option<VideoConfig> {
    Some(match codec {
        Video::Avc => {
            let (width, height) = avc_dimensions(avcc_sps(&record)?).unwrap_or_default();
            VideoConfig::Avc {
                record,
                width,
                height,
            }
        }
        Video::Hevc => {
            let (width, height) = hevc_dimensions(hvcc_sps(&record)?).unwrap_or_default();
            VideoConfig::Hevc {
                record,
                width,
                height,
            }
        }
        Video::Av1 => {
            let (width, height) = av1_dimensions(av1c_obus(&record)?).unwrap_or_default();
            VideoConfig::Av1 {
                record,
                width,
                height,
            }
        }
    })
}

fn audio(body: &Bytes) -> Option<Parsed> {
    let tag = flv::inspect_audio(body).ok()?;
    let range = if tag.enhanced {
        enhanced_payload(body, AUDIO_PACKET_TYPE_MULTITRACK)?.1
    } else {
        LEGACY_AAC_HEADER_LEN..body.len()
    };
    let payload = sub(body, range)?;
    match (tag.codec, tag.packet) {
        (AudioCodec::Aac, AudioPacket::SequenceHeader) => aac_config(payload),
        (AudioCodec::Opus, AudioPacket::SequenceHeader) => opus_config(payload),
        (AudioCodec::Aac | AudioCodec::Opus, AudioPacket::Coded) if !payload.is_empty() => {
            Some(Parsed::Audio(payload))
        }
        _ => None,
    }
}

/// Walks an enhanced header (ModEx entries, then a FourCC, or a
/// multitrack header up to the default track's data) and returns the packet
/// type that applies and where its body lies (before any
/// composition time). Inspection has already checked the header; this
/// only finds offsets.
fn enhanced_payload(body: &[u8], multitrack_type: u8) -> Option<(u8, Range<usize>)> {
    let mut r = Reader::new(body);
    let mut packet_type = r.u8()? & 0x0F;
    for _ in 0..MOD_EX_ENTRIES_MAX {
        if packet_type != PACKET_TYPE_MOD_EX {
            break;
        }
        let mut size = usize::from(r.u8()?) + 1;
        if size == 256 {
            size = usize::from(r.u16()?) + 1;
        }
        r.take(size)?;
        packet_type = r.u8()? & 0x0F;
    }
    let mut end = body.len();
    if packet_type == multitrack_type {
        let byte = r.u8()?;
        packet_type = byte & 0x0F;
        // The shared FourCC, or the first track's own: 4 bytes either way.
        r.take(4)?;
        // Only the default track, 0: ffmpeg sends a stream's first track
        // as plain packets and each further one as a OneTrack multitrack
        // packet with its own id, which must not join track 0's samples.
        if r.u8()? != DEFAULT_TRACK_ID {
            return None;
        }
        if byte >> 4 != MULTITRACK_ONE_TRACK {
            let size = usize::try_from(r.u24()?).ok()?;
            end = r.offset().checked_add(size)?;
        }
    } else {
        r.take(4)?;
    }
    (r.offset() <= end && end <= body.len()).then_some((packet_type, r.offset()..end))
}

/// A slice of the message, or `None` where the range is not inside it.
fn sub(body: &Bytes, range: Range<usize>) -> Option<Bytes> {
    body.get(range.clone())?;
    Some(body.slice(range))
}

// ---------------------------------------------------------------- audio

/// AudioSpecificConfig sampling frequencies by index (14496-3 1.6.3.4);
/// 13 and 14 are reserved, 15 means an explicit 24-bit rate follows.
const AAC_SAMPLE_RATES: [u32; 13] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000,
    7_350,
];
const AAC_EXPLICIT_RATE: u32 = 15;
/// audioObjectType 31: the type is 32 + the next six bits.
const AAC_OBJECT_TYPE_ESCAPE: u32 = 31;

/// The sample rate is the one the config's first frequency field gives:
/// for HE-AAC with explicit SBR signalling that is the core rate, which
/// counts the 1024 samples of each raw frame as well as the output rate
/// counts 2048.
fn aac_config(config: Bytes) -> Option<Parsed> {
    let mut bits = BitReader::new(config.iter().copied());
    if bits.bits(5)? == AAC_OBJECT_TYPE_ESCAPE {
        bits.skip(6)?;
    }
    let index = bits.bits(4)?;
    let sample_rate = if index == AAC_EXPLICIT_RATE {
        bits.bits(24)?
    } else {
        *AAC_SAMPLE_RATES.get(usize::try_from(index).ok()?)?
    };
    let channels = aac_channel_count(bits.bits(4)?)?;
    (sample_rate > 0).then_some(Parsed::AudioConfig(AudioConfig::Aac {
        config,
        sample_rate,
        channels,
    }))
}

/// The channels of a channelConfiguration (14496-3 1.6.3.5, table
/// 1.19); 0 means a program_config_element in the stream says, and the
/// sample entry then writes 2, as ffmpeg does. Reserved values are
/// `None`: no decoder could play such a stream.
fn aac_channel_count(configuration: u32) -> Option<u8> {
    match configuration {
        0..=6 => u8::try_from(configuration).ok(),
        7 | 12 | 14 => Some(8),
        11 => Some(7),
        13 => Some(24),
        _ => None,
    }
}

fn opus_config(head: Bytes) -> Option<Parsed> {
    let parsed = OpusHead::parse(&head)?;
    Some(Parsed::AudioConfig(AudioConfig::Opus {
        channels: parsed.channels,
        pre_skip: parsed.pre_skip,
        input_sample_rate: parsed.input_sample_rate,
        head,
    }))
}

// ----------------------------------------------------------- H.264 (AVC)

/// AVCDecoderConfigurationRecord: version 1, profile, compatibility,
/// level, length size, then the SPS count (low 5 bits) and each SPS with
/// a 16-bit length. `None` (Skip) unless it looks like one; the first
/// SPS, empty when there is none.
fn avcc_sps(record: &[u8]) -> Option<&[u8]> {
    let mut r = Reader::new(record);
    let [version, _profile, _compatibility, _level, _length_size] = r.array()?;
    if version != 1 {
        return None;
    }
    if r.u8()? & 0x1F == 0 {
        return Some(&[]);
    }
    let len = usize::from(r.u16()?);
    Some(r.take(len).unwrap_or_default())
}

/// profile_idc values whose SPS carries chroma_format_idc and the rest
/// (H.264 7.3.2.1.1).
const AVC_HIGH_PROFILES: [u8; 13] = [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135];
/// More than the 8 bytes of num_ref_frames_in_pic_order_cnt_cycle's
/// range (0..=255) is malformed.
const AVC_POC_CYCLE_MAX: u32 = 255;

/// The cropped picture size an H.264 SPS NAL unit gives (H.264 7.4.2.1.1:
/// frame_crop_* in units of CropUnitX / CropUnitY).
fn avc_dimensions(sps: &[u8]) -> Option<(u16, u16)> {
    let (&nal_header, rbsp) = sps.split_first()?;
    if nal_header & 0x1F != 7 {
        return None;
    }
    let mut b = BitReader::new(Rbsp::new(rbsp));
    let profile_idc = u8::try_from(b.bits(8)?).ok()?;
    b.skip(16)?; // constraint flags, level_idc
    b.ue()?; // seq_parameter_set_id
    let mut chroma_format_idc = 1;
    let mut separate_colour_plane = false;
    if AVC_HIGH_PROFILES.contains(&profile_idc) {
        chroma_format_idc = b.ue()?;
        if chroma_format_idc == 3 {
            separate_colour_plane = b.flag()?;
        }
        b.ue()?; // bit_depth_luma_minus8
        b.ue()?; // bit_depth_chroma_minus8
        b.skip(1)?; // qpprime_y_zero_transform_bypass_flag
        if b.flag()? {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if b.flag()? {
                    skip_scaling_list(&mut b, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    b.ue()?; // log2_max_frame_num_minus4
    skip_pic_order_cnt(&mut b)?;
    b.ue()?; // max_num_ref_frames
    b.skip(1)?; // gaps_in_frame_num_value_allowed_flag
    let width_in_mbs = b.ue()?.checked_add(1)?;
    let height_in_map_units = b.ue()?.checked_add(1)?;
    let frame_mbs_only = b.flag()?;
    if !frame_mbs_only {
        b.skip(1)?; // mb_adaptive_frame_field_flag
    }
    b.skip(1)?; // direct_8x8_inference_flag
    let crop = if b.flag()? {
        [b.ue()?, b.ue()?, b.ue()?, b.ue()?]
    } else {
        [0; 4]
    };
    // ChromaArrayType 0 (monochrome or separate planes) crops in luma
    // samples; 4:2:0 in 2×2, 4:2:2 in 2×1, 4:4:4 in 1×1.
    let chroma_array_type = if separate_colour_plane {
        0
    } else {
        chroma_format_idc
    };
    let (sub_width, sub_height) = chroma_subsampling(chroma_array_type)?;
    let field_factor = if frame_mbs_only { 1 } else { 2 };
    let [left, right, top, bottom] = crop;
    let width = cropped(width_in_mbs.checked_mul(16)?, sub_width, left, right)?;
    let height = cropped(
        height_in_map_units.checked_mul(16 * field_factor)?,
        sub_height.checked_mul(field_factor)?,
        top,
        bottom,
    )?;
    Some((width, height))
}

/// scaling_list() (H.264 7.3.2.1.1.1): read only to get past it.
fn skip_scaling_list<I: Iterator<Item = u8>>(b: &mut BitReader<I>, size: usize) -> Option<()> {
    let (mut last, mut next) = (8i64, 8i64);
    for _ in 0..size {
        if next != 0 {
            next = (last + i64::from(b.se()?)).rem_euclid(256);
        }
        if next != 0 {
            last = next;
        }
    }
    Some(())
}

fn skip_pic_order_cnt<I: Iterator<Item = u8>>(b: &mut BitReader<I>) -> Option<()> {
    match b.ue()? {
        0 => {
            b.ue()?; // log2_max_pic_order_cnt_lsb_minus4
        }
        1 => {
            b.skip(1)?; // delta_pic_order_always_zero_flag
            b.se()?; // offset_for_non_ref_pic
            b.se()?; // offset_for_top_to_bottom_field
            let cycle = b.ue()?;
            if cycle > AVC_POC_CYCLE_MAX {
                return None;
            }
            for _ in 0..cycle {
                b.se()?;
            }
        }
        2 => {}
        _ => return None,
    }
    Some(())
}

/// SubWidthC and SubHeightC by ChromaArrayType (H.264 table 6-1, H.265
/// table 6-1), with 1×1 for 0 (monochrome, separate colour planes).
fn chroma_subsampling(chroma_array_type: u32) -> Option<(u32, u32)> {
    match chroma_array_type {
        0 | 3 => Some((1, 1)),
        1 => Some((2, 2)),
        2 => Some((2, 1)),
        _ => None,
    }
}

/// `full - unit * (a + b)` as a u16, or `None` if it is not a picture size.
fn cropped(full: u32, unit: u32, a: u32, b: u32) -> Option<u16> {
    let crop = a.checked_add(b)?.checked_mul(unit)?;
    u16::try_from(full.checked_sub(crop)?)
        .ok()
        .filter(|&size| size > 0)
}

// ----------------------------------------------------------- H.265 (HEVC)

/// NAL unit type of an HEVC SPS.
const HEVC_NAL_SPS: u8 = 33;
/// The fixed part of an HEVCDecoderConfigurationRecord before numOfArrays.
const HVCC_FIXED_LEN: usize = 22;

/// The first SPS of an HEVCDecoderConfigurationRecord: version 1, 21
/// more fixed bytes, then arrays of NAL units by type. `None` (Skip)
/// unless it looks like one; empty when it holds no SPS.
fn hvcc_sps(record: &[u8]) -> Option<&[u8]> {
    let mut r = Reader::new(record);
    if r.take(HVCC_FIXED_LEN)?.first() != Some(&1) {
        return None;
    }
    let arrays = r.u8()?;
    for _ in 0..arrays {
        let nal_type = r.u8()? & 0x3F;
        let count = r.u16()?;
        for _ in 0..count {
            let len = usize::from(r.u16()?);
            let nal = r.take(len)?;
            if nal_type == HEVC_NAL_SPS {
                return Some(nal);
            }
        }
    }
    Some(&[])
}

/// The conformance-window size an HEVC SPS NAL unit gives (H.265
/// 7.3.2.2.1, 7.4.3.2.1: conf_win_* in units of SubWidthC / SubHeightC).
fn hevc_dimensions(sps: &[u8]) -> Option<(u16, u16)> {
    let mut b = BitReader::new(Rbsp::new(sps));
    let nal_header = b.bits(16)?;
    if (nal_header >> 9) & 0x3F != u32::from(HEVC_NAL_SPS) {
        return None;
    }
    b.skip(4)?; // sps_video_parameter_set_id
    let max_sub_layers_minus1 = b.bits(3)?;
    b.skip(1)?; // sps_temporal_id_nesting_flag
    skip_profile_tier_level(&mut b, max_sub_layers_minus1)?;
    b.ue()?; // sps_seq_parameter_set_id
    let chroma_format_idc = b.ue()?;
    let separate_colour_plane = chroma_format_idc == 3 && b.flag()?;
    let width = b.ue()?;
    let height = b.ue()?;
    let window = if b.flag()? {
        [b.ue()?, b.ue()?, b.ue()?, b.ue()?]
    } else {
        [0; 4]
    };
    let chroma_array_type = if separate_colour_plane {
        0
    } else {
        chroma_format_idc
    };
    let (sub_width, sub_height) = chroma_subsampling(chroma_array_type)?;
    let [left, right, top, bottom] = window;
    Some((
        cropped(width, sub_width, left, right)?,
        cropped(height, sub_height, top, bottom)?,
    ))
}

/// profile_tier_level(1, sps_max_sub_layers_minus1) (H.265 7.3.3): the
/// general part is 96 bits; each sub-layer may add 88 bits of profile and
/// 8 of level.
fn skip_profile_tier_level<I: Iterator<Item = u8>>(
    b: &mut BitReader<I>,
    max_sub_layers_minus1: u32,
) -> Option<()> {
    b.skip(96)?;
    let mut present = [(false, false); 7];
    for layer in present
        .iter_mut()
        .take(usize::try_from(max_sub_layers_minus1).ok()?)
    {
        *layer = (b.flag()?, b.flag()?);
    }
    if max_sub_layers_minus1 > 0 {
        for _ in max_sub_layers_minus1..8 {
            b.skip(2)?; // reserved_zero_2bits
        }
    }
    for &(profile, level) in present
        .iter()
        .take(usize::try_from(max_sub_layers_minus1).ok()?)
    {
        if profile {
            b.skip(88)?;
        }
        if level {
            b.skip(8)?;
        }
    }
    Some(())
}

// -------------------------------------------------------------------- AV1

/// av1C byte 0: marker (1) and version (1).
const AV1C_MARKER_VERSION: u8 = 0x81;
const AV1C_FIXED_LEN: usize = 4;
const OBU_SEQUENCE_HEADER: u8 = 1;
/// leb128 values are at most 8 bytes (AV1 4.10.5).
const LEB128_BYTES_MAX: usize = 8;

/// The configOBUs of an av1C record; `None` (Skip) unless it starts with
/// the marker and version 1.
fn av1c_obus(record: &[u8]) -> Option<&[u8]> {
    if *record.first()? != AV1C_MARKER_VERSION {
        return None;
    }
    record.get(AV1C_FIXED_LEN..)
}

/// The maximum frame size of the first sequence header OBU (AV1 5.5.1:
/// max_frame_width_minus_1, max_frame_height_minus_1).
fn av1_dimensions(mut obus: &[u8]) -> Option<(u16, u16)> {
    while !obus.is_empty() {
        let mut r = Reader::new(obus);
        let header = r.u8()?;
        if header & 0x04 != 0 {
            r.u8()?; // obu_extension_header
        }
        let size = if header & 0x02 != 0 {
            usize::try_from(leb128(&mut r)?).ok()?
        } else {
            r.remaining()
        };
        let payload = r.take(size)?;
        if (header >> 3) & 0x0F == OBU_SEQUENCE_HEADER {
            return av1_sequence_header_size(payload);
        }
        obus = r.rest();
    }
    None
}

fn leb128(r: &mut Reader<'_>) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..LEB128_BYTES_MAX {
        let byte = r.u8()?;
        value |= u64::from(byte & 0x7F) << (i * 7);
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

fn av1_sequence_header_size(payload: &[u8]) -> Option<(u16, u16)> {
    let mut b = BitReader::new(payload.iter().copied());
    b.skip(3)?; // seq_profile
    b.skip(1)?; // still_picture
    if b.flag()? {
        b.skip(5)?; // reduced_still_picture_header: seq_level_idx[0]
    } else {
        skip_av1_operating_points(&mut b)?;
    }
    let width_bits = u8::try_from(b.bits(4)? + 1).ok()?;
    let height_bits = u8::try_from(b.bits(4)? + 1).ok()?;
    let width = b.bits(width_bits)?.checked_add(1)?;
    let height = b.bits(height_bits)?.checked_add(1)?;
    Some((u16::try_from(width).ok()?, u16::try_from(height).ok()?))
}

/// timing_info, decoder_model_info and the operating points (AV1 5.5.1).
fn skip_av1_operating_points<I: Iterator<Item = u8>>(b: &mut BitReader<I>) -> Option<()> {
    let mut decoder_model_info_present = false;
    let mut buffer_delay_bits = 0;
    if b.flag()? {
        // timing_info: num_units_in_display_tick, time_scale.
        b.skip(64)?;
        if b.flag()? {
            b.uvlc()?; // num_ticks_per_picture_minus_1
        }
        decoder_model_info_present = b.flag()?;
        if decoder_model_info_present {
            buffer_delay_bits = b.bits(5)? + 1;
            b.skip(32 + 5 + 5)?; // num_units_in_decoding_tick and two lengths
        }
    }
    let initial_display_delay_present = b.flag()?;
    let operating_points = b.bits(5)? + 1;
    for _ in 0..operating_points {
        b.skip(12)?; // operating_point_idc
        if b.bits(5)? > 7 {
            b.skip(1)?; // seq_tier
        }
        if decoder_model_info_present && b.flag()? {
            // decoder_buffer_delay, encoder_buffer_delay, low_delay_mode_flag
            b.skip(buffer_delay_bits * 2 + 1)?;
        }
        if initial_display_delay_present && b.flag()? {
            b.skip(4)?;
        }
    }
    Some(())
}

// ---------------------------------------------------------------- readers

/// A checked cursor over a byte slice (as `ringcast_rtmp`'s, which is
/// private to that crate): `None` when the input ends first.
#[derive(Clone, Debug)]
struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, offset: 0 }
    }

    fn offset(&self) -> usize {
        self.offset
    }

    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.offset)
    }

    fn rest(&self) -> &'a [u8] {
        self.bytes.get(self.offset..).unwrap_or_default()
    }

    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let end = self.offset.checked_add(len)?;
        let run = self.bytes.get(self.offset..end)?;
        self.offset = end;
        Some(run)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn u8(&mut self) -> Option<u8> {
        let [byte] = self.array()?;
        Some(byte)
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes(self.array()?))
    }

    fn u24(&mut self) -> Option<u32> {
        let [a, b, c] = self.array()?;
        Some(u32::from_be_bytes([0, a, b, c]))
    }
}

/// The RBSP of a NAL unit payload: its bytes without the emulation
/// prevention byte, a 0x03 after two zero bytes (H.264 7.4.1, H.265
/// 7.4.2), removed as the bytes are read rather than copied.
struct Rbsp<'a> {
    bytes: std::slice::Iter<'a, u8>,
    zeros: u8,
}

impl<'a> Rbsp<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Rbsp {
            bytes: bytes.iter(),
            zeros: 0,
        }
    }
}

impl Iterator for Rbsp<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        let mut byte = *self.bytes.next()?;
        if self.zeros >= 2 && byte == 0x03 {
            self.zeros = 0;
            byte = *self.bytes.next()?;
        }
        self.zeros = if byte == 0 {
            self.zeros.saturating_add(1)
        } else {
            0
        };
        Some(byte)
    }
}

/// Reads bits most significant first, and the Exp-Golomb and uvlc codes
/// of H.264/H.265 and AV1; `None` when the bytes end first.
struct BitReader<I> {
    bytes: I,
    current: u8,
    left: u8,
}

/// Leading zero bits past which a ue(v) or uvlc() value cannot fit u32.
const EXP_GOLOMB_ZEROS_MAX: u32 = 31;

impl<I: Iterator<Item = u8>> BitReader<I> {
    fn new(bytes: I) -> Self {
        BitReader {
            bytes,
            current: 0,
            left: 0,
        }
    }

    fn flag(&mut self) -> Option<bool> {
        if self.left == 0 {
            self.current = self.bytes.next()?;
            self.left = 8;
        }
        self.left -= 1;
        Some((self.current >> self.left) & 1 == 1)
    }

    /// Up to 32 bits as a number.
    fn bits(&mut self, count: u8) -> Option<u32> {
        let mut value = 0u64;
        for _ in 0..count.min(32) {
            value = value << 1 | u64::from(self.flag()?);
        }
        u32::try_from(value).ok()
    }

    fn skip(&mut self, count: u32) -> Option<()> {
        for _ in 0..count {
            self.flag()?;
        }
        Some(())
    }

    /// ue(v) (H.264 9.1); AV1's uvlc() (4.10.3) is the same code.
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0u32;
        while !self.flag()? {
            zeros += 1;
            if zeros > EXP_GOLOMB_ZEROS_MAX {
                return None;
            }
        }
        let rest = u64::from(self.bits(u8::try_from(zeros).ok()?)?);
        u32::try_from((1u64 << zeros) - 1 + rest).ok()
    }

    fn uvlc(&mut self) -> Option<u32> {
        self.ue()
    }

    /// se(v) (H.264 9.1.1).
    fn se(&mut self) -> Option<i32> {
        let code = i64::from(self.ue()?);
        let value = if code % 2 == 1 {
            (code + 1) / 2
        } else {
            -(code / 2)
        };
        i32::try_from(value).ok()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A message body from hex, as fixtures are written below.
    fn hex(text: &str) -> Bytes {
        Bytes::from(crate::testing::hex(text))
    }

    // Sequence headers from real encoders: ffmpeg 9.0 (imageio-ffmpeg)
    // `-f lavfi -i testsrc2=size=WxH -c:v libx264|libx265|libaom-av1
    // -f flv`, with the options named; the bench sample is testdata/.
    /// 320x240, `-preset ultrafast` (Constrained Baseline).
    const AVC_320X240: &str = "17000000000142c00cffe100166742c00cda0507ec04400000030040\
        00000783c50aa801000468ce0fc8";
    /// 1920x1080 (1088 coded, cropped 8), `-preset veryfast` (High).
    const AVC_1920X1080: &str = "170000000001640028ffe1001b67640028acd940780227e5c0440000\
        03000400000300783c60c65801000468ef8fcbfdf8f800";
    /// 426x240 4:4:4 (High 4:4:4: chroma_format_idc 3, crop in luma units).
    const AVC_426X240_444: &str = "170000000001f40015ffe1001a67f40015919b28363fcfe02200000\
        30002000003003c1e2c5b2c01000768ef8f19300019fff8f800";
    /// 720x576 `interlaced=1` (frame_mbs_only_flag 0: map units are field MB pairs).
    const AVC_720X576_INTERLACED: &str = "17000000000164001effe100186764001eacd940b424d808800\
        0000300800000190f8a14cb01000468fe8fcbfdf8f800";
    /// testdata/bench-sample.flv: 640x360 (368 coded).
    const AVC_640X360: &str = "17000000000142c01effe100196742c01eda0280bfe5c04400000300\
        0400000300f23c58ba8001000468ce3c80";
    /// 1920x1080 `libx265 -x265-params info=0` (conformance window 8 rows).
    const HEVC_1920X1080: &str = "906876633101016000000090000000000078f000fcfdf8f800000f\
        03200001001840010c01ffff016000000300900000030000030078959409210001002b42010101600\
        0000300900000030000030078a003c0801107cb965654a4c2f01680800000030080000007842200010\
        0064401c073c189";
    /// 320x180 (184 coded).
    const HEVC_320X180: &str = "90687663310101600000009000000000003cf000fcfdf8f800000f03\
        200001001840010c01ffff01600000030090000003000003003c959409210001002b4201010160000\
        0030090000003000003003ca00a080c1f3e595952930bc05a020000030002000003001e1022000100\
        064401c073c189";
    /// 640x360 4:2:2 `temporal-layers=3`: sps_max_sub_layers_minus1 2, so
    /// profile_tier_level has sub-layer flags and reserved bits.
    const HEVC_640X360_422_SUBLAYERS: &str = "90687663310104080000009d08000000003ff000fcfef8f\
        800001b03200001001d40010c04ffff0408000003009d0800000300003f00009594aca56502402100\
        0100304201040408000003009d0800000300003f0000b005020171f13965652b295952930bc05a020\
        000030002000003001e1022000100064401c073c189";
    /// 200x120 `libaom-av1`: av1C and a sequence header OBU.
    const AV1_200X120: &str = "906176303181000c000a0a00000003b63f736be401";
    /// ffmpeg sends an empty AV1 SequenceStart before the real one.
    const AV1_EMPTY_SEQUENCE_START: &str = "9061763031";
    /// The first bytes of real coded frames (enough for a sample).
    const AVC_KEYFRAME: &str = "17010000c800000002ac0605ffffa8dc45";
    const AVC_INTER: &str = "270100012c00000a93419a22";
    const HEVC_CODED_KEYFRAME: &str = "9168766331000085000011a82801ac64c2";
    const HEVC_CODED_INTER: &str = "a16876633100014e00000a1e0201d021";
    const HEVC_CODED_X_KEYFRAME: &str = "93687663310000000f7328 01af11";
    const AV1_KEYFRAME: &str = "916176303112000a0a00000003b63f736be40132d20c1400";
    const HEVC_METADATA: &str = "d468766331020009636f6c6f72496e666f03000b";

    const AAC_44100_STEREO: &str = "af00121056e500";
    const AAC_48000_MONO: &str = "af00118856e500";
    const AAC_RAW: &str = "af01de02004c617663";
    /// `-c:a libopus` of a mono sine: OpusHead, family 0.
    const OPUS_MONO: &str = "904f7075734f707573486561640101380180bb0000000000";
    /// `-ac 6 -c:a libopus`: family 1, 4 streams, 2 coupled, mapping 0 4 1 2 3 5.
    const OPUS_SIX_CHANNELS: &str = "904f7075734f707573486561640106380180bb0000000001040200\
        0401020305";
    const OPUS_CODED: &str = "914f707573f87249472710e4c8";

    fn video_config(body: &str) -> VideoConfig {
        match parse_video(&hex(body)) {
            Parsed::VideoConfig(config) => config,
            other => panic!("{body}: {other:?}"),
        }
    }

    fn video_sample(body: &str) -> VideoSample {
        match parse_video(&hex(body)) {
            Parsed::Video(sample) => sample,
            other => panic!("{body}: {other:?}"),
        }
    }

    fn audio_config(body: &str) -> AudioConfig {
        match parse_audio(&hex(body)) {
            Parsed::AudioConfig(config) => config,
            other => panic!("{body}: {other:?}"),
        }
    }

    /// `part` is a slice of `whole` (shares its memory), not a copy.
    fn is_slice_of(part: &Bytes, whole: &Bytes, offset: usize) -> bool {
        part.as_ptr() == whole[offset..].as_ptr()
    }

    #[test]
    fn avc_sequence_header_gives_the_record_and_the_cropped_picture_size() {
        let cases = [
            (AVC_320X240, (320, 240)),
            (AVC_1920X1080, (1920, 1080)),
            (AVC_426X240_444, (426, 240)),
            (AVC_720X576_INTERLACED, (720, 576)),
            (AVC_640X360, (640, 360)),
        ];
        for (body, size) in cases {
            let config = video_config(body);
            assert!(matches!(config, VideoConfig::Avc { .. }), "{config:?}");
            assert_eq!(config.dimensions(), size, "{body}");
            assert_eq!(config.record()[..], hex(body)[5..]);
        }
    }

    #[test]
    fn config_records_and_samples_are_slices_of_the_message() {
        let body = hex(AVC_1920X1080);
        let Parsed::VideoConfig(config) = parse_video(&body) else {
            panic!()
        };
        assert!(is_slice_of(config.record(), &body, 5));
        let body = hex(HEVC_CODED_KEYFRAME);
        let Parsed::Video(sample) = parse_video(&body) else {
            panic!()
        };
        assert!(is_slice_of(&sample.data, &body, 8));
        let body = hex(OPUS_CODED);
        let Parsed::Audio(frame) = parse_audio(&body) else {
            panic!()
        };
        assert!(is_slice_of(&frame, &body, 5));
    }

    #[test]
    fn avc_nalus_are_samples_with_keyframe_and_composition_time() {
        let key = video_sample(AVC_KEYFRAME);
        assert_eq!((key.keyframe, key.composition_time_ms), (true, 200));
        assert_eq!(key.data, hex(AVC_KEYFRAME)[5..]);
        let inter = video_sample(AVC_INTER);
        assert_eq!((inter.keyframe, inter.composition_time_ms), (false, 300));
        let negative = video_sample("2701ffff9c00000001aa");
        assert_eq!(negative.composition_time_ms, -100);
        assert_eq!(negative.data, hex("00000001aa"));
    }

    #[test]
    fn legacy_hevc_and_av1_ids_are_laid_out_like_avc() {
        // Codec id 12 and 13 (CDN convention) with the AVC header.
        let hevc_record = &HEVC_320X180[10..];
        let config = video_config(&format!("1c00000000{hevc_record}"));
        assert!(matches!(config, VideoConfig::Hevc { .. }));
        assert_eq!(config.dimensions(), (320, 180));
        let inter = video_sample("2c01ffffd8aabb");
        assert_eq!((inter.keyframe, inter.composition_time_ms), (false, -40));
        assert_eq!(inter.data, hex("aabb"));
        let av1 = video_sample("1d010000001200");
        assert!(av1.keyframe);
        assert_eq!(av1.data, hex("1200"));
    }

    #[test]
    fn avc_end_of_sequence_commands_and_other_codecs_are_skipped() {
        for body in [
            "1702000000",       // end of sequence
            "5701",             // command frame
            "120000840292",     // Sorenson H.263
            "9176703039824983", // enhanced VP9
            "91767030385042",   // enhanced VP8
            "170000000000",     // a sequence header with no record
            "1701000000",       // a NALU packet with no data
            "d100",             // enhanced command frame
        ] {
            assert_eq!(parse_video(&hex(body)), Parsed::Skip, "{body}");
        }
    }

    #[test]
    fn hevc_sequence_start_gives_the_conformance_window_size() {
        let cases = [
            (HEVC_1920X1080, (1920, 1080)),
            (HEVC_320X180, (320, 180)),
            (HEVC_640X360_422_SUBLAYERS, (640, 360)),
        ];
        for (body, size) in cases {
            let config = video_config(body);
            assert!(matches!(config, VideoConfig::Hevc { .. }), "{config:?}");
            assert_eq!(config.dimensions(), size, "{body}");
            assert_eq!(config.record()[..], hex(body)[5..]);
        }
    }

    #[test]
    fn hevc_coded_frames_carry_a_composition_time_and_coded_frames_x_none() {
        let key = video_sample(HEVC_CODED_KEYFRAME);
        assert_eq!((key.keyframe, key.composition_time_ms), (true, 133));
        assert_eq!(key.data, hex(HEVC_CODED_KEYFRAME)[8..]);
        let inter = video_sample(HEVC_CODED_INTER);
        assert_eq!((inter.keyframe, inter.composition_time_ms), (false, 334));
        let x = video_sample(HEVC_CODED_X_KEYFRAME);
        assert_eq!((x.keyframe, x.composition_time_ms), (true, 0));
        assert_eq!(x.data, hex(HEVC_CODED_X_KEYFRAME)[5..]);
    }

    #[test]
    fn av1_sequence_start_gives_the_max_frame_size_and_coded_frames_have_no_cts() {
        let config = video_config(AV1_200X120);
        assert!(matches!(config, VideoConfig::Av1 { .. }));
        assert_eq!(config.dimensions(), (200, 120));
        assert_eq!(parse_video(&hex(AV1_EMPTY_SEQUENCE_START)), Parsed::Skip);
        // The OBUs start right after the FourCC: a temporal delimiter, 12 00.
        let key = video_sample(AV1_KEYFRAME);
        assert_eq!((key.keyframe, key.composition_time_ms), (true, 0));
        assert_eq!(key.data, hex(AV1_KEYFRAME)[5..]);
        assert_eq!(key.data[..2], [0x12, 0x00]);
    }

    #[test]
    fn av1_sequence_header_with_timing_and_decoder_model_is_read() {
        // seq_profile 0, still 0, reduced 0, timing_info_present 1
        // (num_units 1, time_scale 30, equal_picture_interval 1 with uvlc
        // 0), decoder_model_info_present 1 (buffer_delay_length_minus_1 9,
        // num_units_in_decoding_tick 1, two lengths), initial display delay
        // present 1, one operating point with level 8 (so a tier bit),
        // a decoder model (2 × 10 bits + 1) and a display delay (4 bits),
        // then 11 bits each for 1279 and 719.
        let mut w = BitWriter::default();
        w.bits(0, 3);
        w.bits(0, 2);
        w.bits(1, 1);
        w.bits(1, 32);
        w.bits(30, 32);
        w.bits(1, 1);
        w.bits(1, 1); // uvlc 0
        w.bits(1, 1);
        w.bits(9, 5);
        w.bits(1, 32);
        w.bits(31, 5);
        w.bits(31, 5);
        w.bits(1, 1);
        w.bits(0, 5); // one operating point
        w.bits(0, 12);
        w.bits(8, 5);
        w.bits(1, 1); // seq_tier
        w.bits(1, 1);
        w.bits(0x3ff, 10);
        w.bits(0x3ff, 10);
        w.bits(1, 1);
        w.bits(1, 1);
        w.bits(5, 4);
        w.bits(10, 4);
        w.bits(10, 4);
        w.bits(1279, 11);
        w.bits(719, 11);
        // The rest, to the trailing bits: no frame ids, 64×64 superblocks,
        // no tools (choose_screen_content_tools 1, choose_integer_mv 1),
        // 8-bit 4:2:0 with no colour description, no film grain.
        w.bits(0b0000_0000_0110_0000_0000_0010_0000, 28);
        w.align();
        let payload = w.bytes;
        // The bytes ffmpeg 9's `trace_headers` was shown (it reads 1279 and
        // 719 and every field named here).
        assert_eq!(
            payload,
            hex("04000000040000007ba400000007ff800011fffffeb553fd6780300100")
        );
        let mut body = hex("906176303181000c00");
        let mut obus = vec![0x12, 0x00]; // a temporal delimiter first
        obus.extend_from_slice(&[0x0a, u8::try_from(payload.len()).unwrap()]);
        obus.extend_from_slice(&payload);
        body = [&body[..], &obus].concat().into();
        let Parsed::VideoConfig(config) = parse_video(&body) else {
            panic!()
        };
        assert_eq!(config.dimensions(), (1280, 720));
    }

    #[test]
    fn enhanced_packets_with_nothing_to_mux_are_skipped() {
        for body in [
            "9268766331",       // SequenceEnd
            HEVC_METADATA,      // Metadata (colorInfo)
            "95617630318004",   // MPEG2TSSequenceStart
            "98687663310000",   // reserved packet type 8
            "9168766331000000", // CodedFrames with no data
            "906876633101",     // an hvcC of one byte
            "9078797a310101",   // an unknown FourCC
        ] {
            assert_eq!(parse_video(&hex(body)), Parsed::Skip, "{body}");
        }
    }

    #[test]
    fn mod_ex_entries_are_skipped_to_the_payload() {
        // TimestampOffsetNano (3 bytes), then CodedFrames with CTS 40.
        let sample = video_sample("970200 01f4 01 68766331 000028 aabbcc");
        assert_eq!((sample.keyframe, sample.composition_time_ms), (true, 40));
        assert_eq!(sample.data, hex("aabbcc"));
        // A 16-bit size: 0xff then 256 → 257 bytes of modifier data.
        let mut body = vec![0x97, 0xff, 0x01, 0x00];
        body.extend_from_slice(&[0u8; 257]);
        body.extend_from_slice(&hex("03 61763031 1200"));
        let Parsed::Video(sample) = parse_video(&body.into()) else {
            panic!()
        };
        assert_eq!(sample.data, hex("1200"));
        let Parsed::Audio(frame) = parse_audio(&hex("970200 01f4 01 4f707573 f8ff")) else {
            panic!()
        };
        assert_eq!(frame, hex("f8ff"));
    }

    #[test]
    fn multitrack_reads_the_default_track_when_it_comes_first() {
        // One track: no size, the data runs to the end.
        let record = &AVC_320X240[10..];
        let config = video_config(&format!("9600 61766331 00 {record}"));
        assert_eq!(config.dimensions(), (320, 240));
        let key = video_sample("9601 61766331 00 0000c8 aabb");
        assert_eq!((key.keyframe, key.composition_time_ms), (true, 200));
        assert_eq!(key.data, hex("aabb"));
        // Many tracks: the first track's size bounds its data.
        let many = "9611 68766331 00 000005 000028 aabb 01 000005 000014 ccdd";
        let first = video_sample(many);
        assert_eq!(
            (first.composition_time_ms, &first.data[..]),
            (40, &[0xaa, 0xbb][..])
        );
        // Many codecs: the first track is AV1 (no CTS).
        let codecs = "a621 61763031 00 000002 1200 68766331 01 000005 000000 eeff";
        let first = video_sample(codecs);
        assert_eq!(
            (first.keyframe, &first.data[..]),
            (false, &[0x12, 0x00][..])
        );
        // Another track than the default one is not ours: ffmpeg sends a
        // second video stream this way (OneTrack, track id 1).
        assert_eq!(
            parse_video(&hex("9601 61766331 01 0000c8 aabb")),
            Parsed::Skip
        );
        assert_eq!(
            parse_video(&hex(&format!("9600 61766331 01 {record}"))),
            Parsed::Skip
        );
        let second_first = "9611 68766331 01 000005 000028 aabb 00 000005 000014 ccdd";
        assert_eq!(parse_video(&hex(second_first)), Parsed::Skip);
        assert_eq!(parse_audio(&hex("9501 6d703461 01 dc004c")), Parsed::Skip);
        // Audio: the first AAC track's AudioSpecificConfig and frame.
        let aac = audio_config("9500 6d703461 00 1188 56e500");
        assert!(matches!(
            aac,
            AudioConfig::Aac {
                sample_rate: 48_000,
                channels: 1,
                ..
            }
        ));
        let many = "9511 4f707573 00 000002 f8aa 01 000002 f8bb";
        assert_eq!(parse_audio(&hex(many)), Parsed::Audio(hex("f8aa")));
    }

    #[test]
    fn multitrack_track_sizes_past_the_body_are_skipped() {
        assert_eq!(
            parse_video(&hex("9611 68766331 00 000009 000028")),
            Parsed::Skip
        );
    }

    #[test]
    fn aac_sequence_header_gives_rate_and_channels() {
        let AudioConfig::Aac {
            config,
            sample_rate,
            channels,
        } = audio_config(AAC_44100_STEREO)
        else {
            panic!()
        };
        assert_eq!((sample_rate, channels), (44_100, 2));
        assert_eq!(config, hex("121056e500"));
        let mono = audio_config(AAC_48000_MONO);
        assert!(matches!(
            mono,
            AudioConfig::Aac {
                sample_rate: 48_000,
                channels: 1,
                ..
            }
        ));
        // Frequency index 15: an explicit 24-bit rate (here 50000 Hz).
        // object type 2 (00010), index 1111, rate, channels 0010.
        let mut w = BitWriter::default();
        w.bits(2, 5);
        w.bits(15, 4);
        w.bits(50_000, 24);
        w.bits(2, 4);
        w.bits(0, 3);
        let body = [&[0xaf, 0x00][..], &w.bytes].concat().into();
        let Parsed::AudioConfig(explicit) = parse_audio(&body) else {
            panic!()
        };
        assert!(matches!(
            explicit,
            AudioConfig::Aac {
                sample_rate: 50_000,
                channels: 2,
                ..
            }
        ));
        // Object type 31 escapes to 32 + 6 bits (here 42, USAC): 11111
        // 001010, then index 3 (48 kHz) and 2 channels.
        let mut w = BitWriter::default();
        w.bits(31, 5);
        w.bits(10, 6);
        w.bits(3, 4);
        w.bits(2, 4);
        w.bits(0, 5);
        let body = [&[0xaf, 0x00][..], &w.bytes].concat().into();
        let Parsed::AudioConfig(escaped) = parse_audio(&body) else {
            panic!()
        };
        assert!(matches!(
            escaped,
            AudioConfig::Aac {
                sample_rate: 48_000,
                channels: 2,
                ..
            }
        ));
        // Channel configuration 7 is 7.1: eight channels.
        let surround = audio_config("af00 11b8");
        assert!(matches!(
            surround,
            AudioConfig::Aac {
                sample_rate: 48_000,
                channels: 8,
                ..
            }
        ));
        // Enhanced `mp4a` SequenceStart carries the same config.
        let enhanced = audio_config("90 6d703461 1210");
        assert!(matches!(
            enhanced,
            AudioConfig::Aac {
                sample_rate: 44_100,
                channels: 2,
                ..
            }
        ));
    }

    #[test]
    fn aac_raw_and_enhanced_coded_frames_are_audio() {
        assert_eq!(
            parse_audio(&hex(AAC_RAW)),
            Parsed::Audio(hex("de02004c617663"))
        );
        assert_eq!(
            parse_audio(&hex("91 6d703461 dc004c")),
            Parsed::Audio(hex("dc004c"))
        );
        assert_eq!(
            parse_audio(&hex(OPUS_CODED)),
            Parsed::Audio(hex("f87249472710e4c8"))
        );
    }

    #[test]
    fn opus_sequence_start_is_the_opus_head() {
        let AudioConfig::Opus {
            head,
            channels,
            pre_skip,
            input_sample_rate,
        } = audio_config(OPUS_MONO)
        else {
            panic!()
        };
        assert_eq!((channels, pre_skip, input_sample_rate), (1, 312, 48_000));
        assert_eq!(head, hex(OPUS_MONO)[5..]);
        let six = audio_config(OPUS_SIX_CHANNELS);
        assert!(matches!(
            six,
            AudioConfig::Opus {
                channels: 6,
                pre_skip: 312,
                ..
            }
        ));
        let AudioConfig::Opus { head, .. } = six else {
            panic!()
        };
        let parsed = OpusHead::parse(&head).unwrap();
        assert_eq!(parsed.mapping_family, 1);
        assert_eq!(parsed.mapping, [4, 2, 0, 4, 1, 2, 3, 5]);
        assert_eq!(parsed.output_gain, 0);
    }

    #[test]
    fn unreadable_audio_configs_and_other_formats_are_skipped() {
        for body in [
            "af00",                 // no AudioSpecificConfig
            "af0016",               // frequency index 13 is reserved
            "af0017",               // ends inside the index/channels
            "af0011c0",             // channel configuration 8 is reserved
            "af01",                 // raw AAC with no data
            "af02aa",               // AAC packet type 2
            "2effbb5000c4",         // MP3
            "7200aa",               // G.711
            "924f707573",           // Opus SequenceEnd
            "944f7075730101000000", // Opus MultichannelConfig
            "90664c614304000400",   // FLAC SequenceStart
            "91612d3300",           // AC-3 coded
            // OpusHead with a wrong magic, version 16, no channels, three
            // channels in family 0, and family 1 without its table.
            "904f7075734f707573486561440001380180bb0000000000",
            "904f7075734f707573486561641001380180bb0000000000",
            "904f7075734f707573486561640100380180bb0000000000",
            "904f7075734f707573486561640103380180bb0000000000",
            "904f7075734f707573486561640106380180bb000000000104",
        ] {
            assert_eq!(parse_audio(&hex(body)), Parsed::Skip, "{body}");
        }
    }

    #[test]
    fn avc_sps_with_scaling_lists_and_pic_order_cnt_type_1_is_read() {
        let sps = constructed_avc_sps();
        // The bytes ffmpeg 9's `trace_headers` was shown (it reads 1280x720).
        assert_eq!(sps, hex(CONSTRUCTED_AVC_SPS));
        assert_eq!(avc_dimensions(&sps), Some((1280, 720)));
        // Inside an avcC in a sequence header, as an encoder would send it.
        let len = u8::try_from(sps.len()).unwrap();
        let mut body = hex("1700000000 0164002803 e1 00");
        body = [&body[..], &[len], &sps].concat().into();
        let Parsed::VideoConfig(config) = parse_video(&body) else {
            panic!()
        };
        assert_eq!(config.dimensions(), (1280, 720));
    }

    const CONSTRUCTED_AVC_SPS: &str = "6764001fad94ca287908b10d10d088534d34d34d34d34d34d34d\
        34d34d34d34d34d34d34d34d34d42a2264280a00b720";

    /// A High profile SPS that x264 never writes: scaling lists in the SPS
    /// (one 4×4 and one 8×8 list, explicit values and a "use default"),
    /// pic_order_cnt_type 1 with a three-frame cycle, 1280x720 with no
    /// crop. ffmpeg's `trace_headers` reads the same values from it.
    fn constructed_avc_sps() -> Vec<u8> {
        let mut w = BitWriter::default();
        w.bits(0x67, 8); // NAL header: SPS
        w.bits(100, 8); // profile_idc High
        w.bits(0, 8);
        w.bits(31, 8); // level 3.1
        w.ue(0); // sps id
        w.ue(1); // 4:2:0
        w.ue(0);
        w.ue(0);
        w.bits(0, 1);
        w.bits(1, 1); // seq_scaling_matrix_present_flag
        for i in 0..8 {
            match i {
                0 => {
                    w.bits(1, 1);
                    for delta in [-2, 3, 1, 0, 5, -7, 2, 2, 1, 0, 0, 4, -1, 1, 2, 3] {
                        w.se(delta);
                    }
                }
                1 => {
                    // delta -8 makes next_scale 0 at j = 0: the default list.
                    w.bits(1, 1);
                    w.se(-8);
                }
                6 => {
                    w.bits(1, 1);
                    for j in 0..64 {
                        w.se(if j % 2 == 0 { 1 } else { -1 });
                    }
                }
                _ => w.bits(0, 1),
            }
        }
        w.ue(0); // log2_max_frame_num_minus4
        w.ue(1); // pic_order_cnt_type 1
        w.bits(0, 1);
        w.se(-2);
        w.se(1);
        w.ue(3);
        w.se(1);
        w.se(-1);
        w.se(2);
        w.ue(4); // max_num_ref_frames
        w.bits(0, 1);
        w.ue(79); // 80 MBs: 1280
        w.ue(44); // 45 MBs: 720
        w.bits(1, 1); // frame_mbs_only_flag
        w.bits(1, 1); // direct_8x8_inference_flag
        w.bits(0, 1); // frame_cropping_flag
        w.bits(0, 1); // vui_parameters_present_flag
        w.bits(1, 1); // rbsp_stop_one_bit
        w.align();
        w.nal()
    }

    #[test]
    fn emulation_prevention_bytes_are_dropped_from_the_rbsp() {
        let rbsp: Vec<u8> =
            Rbsp::new(&[0x00, 0x00, 0x03, 0x01, 0x00, 0x00, 0x03, 0x00, 0x03]).collect();
        assert_eq!(rbsp, [0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x03]);
    }

    #[test]
    fn exp_golomb_codes_read_as_h264_9_1_says() {
        // 1 → 0; 010 → 1; 011 → 2; 00100 → 3; se 00101 → -2 ... packed.
        let mut b = BitReader::new([0b1010_0110, 0b0100_0010, 0b1000_0000].into_iter());
        assert_eq!(b.ue(), Some(0));
        assert_eq!(b.ue(), Some(1));
        assert_eq!(b.ue(), Some(2));
        assert_eq!(b.ue(), Some(3));
        assert_eq!(b.se(), Some(-2));
        assert_eq!(b.flag(), Some(false));
        // 32 leading zeros: no u32 holds it.
        let mut b = BitReader::new([0u8, 0, 0, 0, 0x80, 0, 0, 0, 0].into_iter());
        assert_eq!(b.ue(), None);
        // 31 leading zeros is the largest: 2^32 - 2 at most.
        let mut b = BitReader::new([0u8, 0, 0, 1, 0xff, 0xff, 0xff, 0xfe].into_iter());
        assert_eq!(b.ue(), Some(u32::MAX - 1));
    }

    #[test]
    fn every_prefix_of_every_fixture_parses_without_panic() {
        let fixtures = [
            AVC_320X240,
            AVC_1920X1080,
            AVC_426X240_444,
            AVC_720X576_INTERLACED,
            AVC_640X360,
            HEVC_1920X1080,
            HEVC_320X180,
            HEVC_640X360_422_SUBLAYERS,
            AV1_200X120,
            AVC_KEYFRAME,
            HEVC_CODED_KEYFRAME,
            HEVC_CODED_X_KEYFRAME,
            AV1_KEYFRAME,
            AAC_44100_STEREO,
            AAC_RAW,
            OPUS_MONO,
            OPUS_SIX_CHANNELS,
            OPUS_CODED,
        ];
        for fixture in fixtures {
            let body = hex(fixture);
            for len in 0..=body.len() {
                let prefix = body.slice(..len);
                let _ = parse_video(&prefix);
                let _ = parse_audio(&prefix);
            }
        }
    }

    /// Writes bits most significant first, for building headers.
    #[derive(Default)]
    struct BitWriter {
        bytes: Vec<u8>,
        used: u8,
    }

    impl BitWriter {
        fn bits(&mut self, value: u64, count: u8) {
            for i in (0..count).rev() {
                if self.used == 0 {
                    self.bytes.push(0);
                }
                let bit = ((value >> i) & 1) as u8;
                *self.bytes.last_mut().unwrap() |= bit << (7 - self.used);
                self.used = (self.used + 1) % 8;
            }
        }

        fn ue(&mut self, value: u32) {
            let code = u64::from(value) + 1;
            let len = 64 - code.leading_zeros() as u8;
            self.bits(0, len - 1);
            self.bits(code, len);
        }

        fn se(&mut self, value: i32) {
            let code = if value > 0 { 2 * value - 1 } else { -2 * value };
            self.ue(code as u32);
        }

        fn align(&mut self) {
            self.used = 0;
        }

        /// The bytes with emulation prevention inserted.
        fn nal(&self) -> Vec<u8> {
            let mut out = Vec::new();
            let mut zeros = 0;
            for &byte in &self.bytes {
                if zeros >= 2 && byte <= 3 {
                    out.push(3);
                    zeros = 0;
                }
                out.push(byte);
                zeros = if byte == 0 { zeros + 1 } else { 0 };
            }
            out
        }
    }

    /// Bodies that lead deep into a parse: real headers with random tails,
    /// and real messages with random bytes changed.
    fn deep_body() -> impl Strategy<Value = Vec<u8>> {
        let headers: Vec<Vec<u8>> = [
            "1700000000",
            "1701000000",
            "9068766331",
            "9061763031",
            "9168766331",
            "960061766331",
            "9611687663310000",
            "9702000000",
            "af00",
            "906d703461",
            "904f7075734f70757348656164",
            "9511",
            "1700000000010000000001",
            "906876633101",
        ]
        .iter()
        .map(|h| hex(h).to_vec())
        .collect();
        let reals: Vec<Vec<u8>> = [
            AVC_1920X1080,
            AVC_426X240_444,
            HEVC_1920X1080,
            HEVC_640X360_422_SUBLAYERS,
            AV1_200X120,
            OPUS_SIX_CHANNELS,
            AAC_44100_STEREO,
        ]
        .iter()
        .map(|h| hex(h).to_vec())
        .collect();
        prop_oneof![
            (
                proptest::sample::select(headers),
                proptest::collection::vec(any::<u8>(), 0..80)
            )
                .prop_map(|(mut head, tail)| {
                    head.extend(tail);
                    head
                }),
            (
                proptest::sample::select(reals),
                proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4)
            )
                .prop_map(|(mut body, changes)| {
                    for (at, byte) in changes {
                        let len = body.len();
                        body[at % len] = byte;
                    }
                    body
                }),
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let body = Bytes::from(body);
            let _ = parse_video(&body);
            let _ = parse_audio(&body);
        }

        #[test]
        fn damaged_real_messages_never_panic(body in deep_body()) {
            let body = Bytes::from(body);
            let _ = parse_video(&body);
            let _ = parse_audio(&body);
        }

        #[test]
        fn random_sps_bytes_never_panic(sps in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = avc_dimensions(&sps);
            let _ = hevc_dimensions(&sps);
            let _ = av1_dimensions(&sps);
            let _ = av1_sequence_header_size(&sps);
        }
    }
}
