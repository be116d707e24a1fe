//! One live stream's source side on one shard: timestamps corrected, each
//! message packaged once, headers and GOP cached for joiners, what the
//! admin API shows noted ([`StreamInfo`]).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::frame::Frame;
use super::gop::GopCache;
use super::info::StreamInfo;
use super::timestamp::{self, TimestampCorrector};
use crate::protocol::Timestamp;
use crate::protocol::chunk::EncodeError;
use crate::session::{Media, MediaKind, Metadata};

/// A stream's identity: app and stream name, queries stripped
/// (`live/cam?token=x` is `live/cam`). Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamKey(Arc<str>);

impl StreamKey {
    pub fn new(app: &str, stream_name: &str) -> StreamKey {
        let name = stream_name.split('?').next().unwrap_or_default();
        StreamKey(Arc::from(format!("{app}/{name}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The app part.
    pub fn app(&self) -> &str {
        self.0.split_once('/').map_or(&*self.0, |(app, _)| app)
    }

    /// The stream name part.
    pub fn name(&self) -> &str {
        self.0.split_once('/').map_or("", |(_, name)| name)
    }
}

impl fmt::Display for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StreamKey({})", self.0)
    }
}

/// What a [`LiveStream`] does with its frames: plain values, built by its
/// owner from the configuration (`[stream]`, or the app's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamSettings {
    /// Bytes of frames since the last keyframe kept for new players.
    pub gop_cache_bytes_max: usize,
    /// Duration of frames since the last keyframe kept for new players.
    pub gop_cache_duration_max: Duration,
    /// Make each track's timestamps monotonic across publisher jitter,
    /// resets and republishes.
    pub timestamp_correction: bool,
}

/// The source side of a live stream on one shard.
#[derive(Debug)]
pub struct LiveStream {
    chunk_size: u32,
    correct_timestamps: bool,
    audio: TimestampCorrector,
    video: TimestampCorrector,
    data: TimestampCorrector,
    /// A new publisher began: its first timestamp rebases every track.
    rebase: bool,
    gop: GopCache,
    info: StreamInfo,
}

impl LiveStream {
    /// A stream with nothing published yet, packaging frames into chunks
    /// of `chunk_size`.
    pub fn new(settings: StreamSettings, chunk_size: u32) -> LiveStream {
        LiveStream {
            chunk_size,
            correct_timestamps: settings.timestamp_correction,
            audio: TimestampCorrector::default(),
            video: TimestampCorrector::default(),
            data: TimestampCorrector::default(),
            rebase: false,
            gop: GopCache::new(
                settings.gop_cache_bytes_max,
                settings.gop_cache_duration_max,
            ),
            info: StreamInfo::default(),
        }
    }

    /// Packages a publisher's message (timestamp corrected) and caches it.
    pub fn publish(&mut self, media: Media) -> Result<Frame, EncodeError> {
        let timestamp = self.correct(media.kind, media.timestamp);
        let frame = Frame::package(media.kind, timestamp, &media.payload, self.chunk_size)?;
        self.gop.push(&frame);
        self.info
            .note_media(frame.kind, frame.class, &media.payload);
        Ok(frame)
    }

    /// Packages a publisher's metadata as players receive it (its body,
    /// as the session built it: `onMetaData` in AMF0, the publisher's own
    /// bytes where it could) and caches it; the value feeds the stream's
    /// info.
    pub fn publish_metadata(
        &mut self,
        timestamp: Timestamp,
        metadata: Metadata,
    ) -> Result<Frame, EncodeError> {
        let timestamp = self.correct(MediaKind::Data, timestamp);
        self.info.note_metadata(&metadata.value);
        let frame = Frame::metadata(timestamp, &metadata.body, self.chunk_size)?;
        self.gop.push(&frame);
        self.info.count(metadata.body.len());
        Ok(frame)
    }

    /// Caches a frame packaged on another shard, and notes its timestamp:
    /// should the next publisher be on this shard, it continues from there.
    pub fn relay(&mut self, frame: &Frame) {
        self.track(frame.kind).observe(frame.timestamp);
        self.gop.push(frame);
    }

    /// Frames of the stream were lost on their way here (a lagging
    /// shard): a player joining now starts at the next keyframe.
    pub fn frames_lost(&mut self) {
        self.gop.interrupt();
    }

    /// The latest timestamp players got, on any track.
    pub fn latest_timestamp(&self) -> Option<Timestamp> {
        timestamp::latest([&self.audio, &self.video, &self.data].into_iter())
    }

    /// Players elsewhere got up to `at` from this stream's previous
    /// publisher: the next one here continues from there.
    pub fn continue_from(&mut self, at: Timestamp) {
        for track in [&mut self.audio, &mut self.video, &mut self.data] {
            track.observe(at);
        }
    }

    /// A new publisher (or a new owner shard): its headers replace the old.
    /// Timestamp correction carries on from the latest timestamp players
    /// saw, so they see no step back and audio stays in step with video.
    pub fn restart(&mut self) {
        self.rebase = true;
        self.gop.reset();
        self.info.forget_source();
    }

    pub fn gop(&self) -> &GopCache {
        &self.gop
    }

    /// Codecs, picture size, messages and bytes received, for the admin
    /// API and `/metrics`.
    pub fn info(&self) -> &StreamInfo {
        &self.info
    }

    fn correct(&mut self, kind: MediaKind, timestamp: Timestamp) -> Timestamp {
        if !self.correct_timestamps {
            return timestamp;
        }
        if std::mem::take(&mut self.rebase) {
            timestamp::rebase(
                &mut [&mut self.audio, &mut self.video, &mut self.data],
                timestamp,
            );
        }
        self.track(kind).correct(timestamp)
    }

    fn track(&mut self, kind: MediaKind) -> &mut TimestampCorrector {
        match kind {
            MediaKind::Audio => &mut self.audio,
            MediaKind::Video => &mut self.video,
            MediaKind::Data => &mut self.data,
        }
    }
}

/// A video or audio body starting with `first`, for tests.
#[cfg(test)]
pub(crate) fn body(first: u8, len: usize) -> bytes::Bytes {
    let mut b = vec![0u8; len.max(2)];
    b[0] = first;
    b[1] = 1;
    bytes::Bytes::from(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits;
    use crate::media::FrameClass;

    /// The defaults of `[stream]`.
    const SETTINGS: StreamSettings = StreamSettings {
        gop_cache_bytes_max: limits::GOP_CACHE_BYTES_MAX_DEFAULT,
        gop_cache_duration_max: Duration::from_millis(limits::GOP_CACHE_DURATION_MS_MAX_DEFAULT),
        timestamp_correction: true,
    };

    #[test]
    fn stream_keys_strip_the_query() {
        assert_eq!(
            StreamKey::new("live", "cam?token=1"),
            StreamKey::new("live", "cam")
        );
        assert_eq!(StreamKey::new("live", "cam").as_str(), "live/cam");
    }

    #[test]
    fn a_republish_restarts_headers_but_not_the_clock() {
        let mut live = LiveStream::new(SETTINGS, 4096);
        let media = |ts, first| Media {
            kind: MediaKind::Video,
            timestamp: Timestamp(ts),
            payload: body(first, 100),
        };
        live.publish(media(5000, 0x17)).expect("ok");
        assert_eq!(live.gop().frames().len(), 1);
        live.restart();
        assert_eq!(live.gop().snapshot().count(), 0);
        let frame = live.publish(media(0, 0x17)).expect("ok");
        assert_eq!(frame.timestamp, Timestamp(5000), "no step back for players");
        assert_eq!(frame.class, FrameClass::Keyframe);
    }

    fn publish(live: &mut LiveStream, kind: MediaKind, timestamp: u32, first: u8) -> u32 {
        let media = Media {
            kind,
            timestamp: Timestamp(timestamp),
            payload: body(first, 100),
        };
        live.publish(media).expect("ok").timestamp.0
    }

    #[test]
    fn a_republish_keeps_audio_in_step_with_video() {
        let mut live = LiveStream::new(SETTINGS, 4096);
        publish(&mut live, MediaKind::Video, 5033, 0x17);
        publish(&mut live, MediaKind::Audio, 5010, 0xAF);
        live.restart();
        // The new publisher's video and audio start together: so do the
        // players', after the latest timestamp they saw.
        let video = publish(&mut live, MediaKind::Video, 0, 0x17);
        let audio = publish(&mut live, MediaKind::Audio, 0, 0xAF);
        assert_eq!((video, audio), (5033, 5033));
        // And the keyframe's GOP keeps the audio that follows it.
        assert_eq!(live.gop().frames().len(), 2);
    }

    #[test]
    fn a_publisher_taking_over_from_another_shard_continues_its_clock() {
        let mut live = LiveStream::new(SETTINGS, 4096);
        let relayed =
            Frame::package(MediaKind::Video, Timestamp(7000), &body(0x17, 100), 4096).expect("ok");
        live.relay(&relayed);
        live.restart();
        assert_eq!(
            publish(&mut live, MediaKind::Video, 0, 0x17),
            7000,
            "no step back for players"
        );
    }

    #[test]
    fn a_publisher_on_a_fresh_shard_continues_from_what_players_got_elsewhere() {
        let mut live = LiveStream::new(SETTINGS, 4096);
        assert_eq!(live.latest_timestamp(), None);
        live.continue_from(Timestamp(9000));
        live.restart();
        assert_eq!(publish(&mut live, MediaKind::Audio, 0, 0xAF), 9000);
        assert_eq!(publish(&mut live, MediaKind::Video, 40, 0x17), 9040);
        assert_eq!(live.latest_timestamp(), Some(Timestamp(9040)));
    }

    #[test]
    fn metadata_is_sent_as_the_publisher_sent_it_less_set_data_frame() {
        use bytes::{Bytes, BytesMut};

        use crate::protocol::amf::Value;
        use crate::protocol::chunk::RawMessage;
        use crate::protocol::command::Data;
        use crate::protocol::message::Message;
        use crate::protocol::{ChunkStreamId, MessageStreamId, MessageType, amf};

        let value = Value::object([("width", Value::Number(640.0))]);
        let mut body = BytesMut::new();
        let set = Data::SetDataFrame {
            handler: "onMetaData".into(),
            value: value.clone(),
        };
        Message::Data(set).encode(&mut body);
        let raw = RawMessage {
            chunk_stream: ChunkStreamId(4),
            timestamp: Timestamp(0),
            type_id: MessageType::DATA_AMF0,
            stream_id: MessageStreamId(1),
            payload: body.freeze(),
        };
        let decoded = match Message::decode(&raw, &amf::Limits::default()) {
            Ok(Message::Data(Data::SetDataFrame { value, .. })) => value,
            other => panic!("{other:?}"),
        };
        let mut live = LiveStream::new(SETTINGS, 4096);
        let frame = live
            .publish_metadata(
                Timestamp(0),
                Metadata::from_data(&raw, decoded, &amf::Limits::default()),
            )
            .expect("ok");
        assert_eq!(frame.class, FrameClass::Metadata);
        assert_eq!(live.info().width, Some(640));
        // The publisher's bytes from `onMetaData` on, as sent.
        let sent: &Bytes = &raw.payload;
        let skipped = b"\x02\x00\x0d@setDataFrame".len();
        let payload = frame.payload();
        let body = &payload[payload.len() - (sent.len() - skipped)..];
        assert_eq!(body, &sent[skipped..]);
        assert_eq!(&body[..13], b"\x02\x00\x0aonMetaData");
        assert_eq!(live.gop().headers().count(), 1);
    }
}
