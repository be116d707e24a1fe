//! The published stream: sizes, bodies, and the bytes every player gets.

use std::net::SocketAddr;

use bytes::Bytes;
use ringcast::config::Config;
use ringcast::media::Frame;
use ringcast::protocol::Timestamp;
use ringcast::protocol::handshake::RANDOM_SIZE;
use ringcast::session::{ClientConfig, ClientSession, Media, MediaKind};

/// The stream is `live/bench`: the publisher publishes and every player
/// plays `STREAM` in `APP`.
const APP: &str = "live";
pub const STREAM: &str = "bench";

const VIDEO_BYTES: usize = 10_000;
const AUDIO_BYTES: usize = 300;
/// A keyframe every 60 video frames (2 s at 30 fps).
const GOP_FRAMES: u64 = 60;
/// Video frame interval, ms (30 fps).
const FRAME_MS: u64 = 33;
/// AAC at 44.1 kHz: 1024 samples a frame, so a frame every
/// `AUDIO_FRAME_SAMPLES * 1000 / AUDIO_RATE` ms (23.2), on its own clock
/// beside the video, as encoders send it.
const AUDIO_RATE: u64 = 44_100;
const AUDIO_FRAME_SAMPLES: u64 = 1024;

/// A client session for `APP` on `addr`, for the publisher and each player.
pub fn client_session(addr: SocketAddr) -> ClientSession {
    let tc_url = format!("rtmp://{addr}/{APP}");
    ClientSession::new(ClientConfig::new(APP, &tc_url), 0, [7; RANDOM_SIZE])
}

/// The published stream: video frames at 30 fps and AAC frames on their
/// own 44.1 kHz clock, interleaved by timestamp as ffmpeg's FLV muxer sends
/// them. It is published in batches: video frame `n` and the audio frames
/// due before it since the previous video frame, which is what a server
/// writes at once when audio rides with the next video frame.
#[derive(Clone)]
pub struct Workload {
    frames: u64,
    keyframe: Bytes,
    interframe: Bytes,
    audio: Bytes,
    video_wire_bytes: u64,
    audio_wire_bytes: u64,
}

impl Workload {
    pub fn new(frames: u64) -> Workload {
        let video = |first: u8| {
            let mut body = vec![0u8; VIDEO_BYTES];
            body[0] = first;
            body[1] = 1; // AVC NALU
            Bytes::from(body)
        };
        let mut audio = vec![0u8; AUDIO_BYTES];
        audio[..2].copy_from_slice(&[0xAF, 1]); // AAC raw
        let mut workload = Workload {
            frames,
            keyframe: video(0x17),
            interframe: video(0x27),
            audio: Bytes::from(audio),
            video_wire_bytes: 0,
            audio_wire_bytes: 0,
        };
        let chunk_size = Config::default().chunk_size;
        let packaged = |m: &Media| {
            Frame::package(m.kind, m.timestamp, &m.payload, chunk_size)
                .expect("a 10 KB frame packages")
                .len() as u64
        };
        let batch = workload.batch(1);
        let (audio, video) = batch.split_at(batch.len() - 1);
        workload.video_wire_bytes = video.iter().map(packaged).sum();
        workload.audio_wire_bytes = audio.first().map_or(0, packaged);
        workload
    }

    /// Video frames, and so batches.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Media messages published: every video frame and the audio frames
    /// between them.
    pub fn messages(&self) -> u64 {
        self.frames + audio_before(self.frames.saturating_sub(1))
    }

    /// Batch `n`: the audio frames due before video frame `n` and not
    /// before video frame `n - 1`, in timestamp order, then video frame `n`.
    pub fn batch(&self, n: u64) -> Vec<Media> {
        let first_audio = audio_before(n.saturating_sub(1));
        let mut batch: Vec<Media> = (first_audio..audio_before(n))
            .map(|k| Media {
                kind: MediaKind::Audio,
                timestamp: Timestamp((k * AUDIO_FRAME_SAMPLES * 1000 / AUDIO_RATE) as u32),
                payload: self.audio.clone(),
            })
            .collect();
        let video = if n % GOP_FRAMES == 0 {
            &self.keyframe
        } else {
            &self.interframe
        };
        batch.push(Media {
            kind: MediaKind::Video,
            timestamp: Timestamp((n * FRAME_MS) as u32),
            payload: video.clone(),
        });
        batch
    }

    /// AVC and AAC sequence headers, sent before the players join.
    pub fn headers() -> [Media; 2] {
        let avc: &[u8] = &[
            0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1F, 0xFF, 0xE1, 0, 4, 0x67, 0x64, 0, 0x1F,
        ];
        let aac: &[u8] = &[0xAF, 0, 0x12, 0x10];
        [(MediaKind::Video, avc), (MediaKind::Audio, aac)].map(|(kind, body)| Media {
            kind,
            timestamp: Timestamp(0),
            payload: Bytes::from_static(body),
        })
    }

    /// Bytes the server puts on the wire, per player, for batches `0..n`,
    /// packaged as the server packages them (every video frame the same
    /// size, every audio frame too: no extended timestamps).
    pub fn bytes_before(&self, n: u64) -> u64 {
        n * self.video_wire_bytes + audio_before(n.saturating_sub(1)) * self.audio_wire_bytes
    }

    /// Wire bytes per video frame and the audio that comes with it, on
    /// average over a long stream.
    pub fn bytes_per_frame(&self) -> u64 {
        self.video_wire_bytes
            + self.audio_wire_bytes * FRAME_MS * AUDIO_RATE / (AUDIO_FRAME_SAMPLES * 1000)
    }

    /// Bytes each player must receive once the publisher starts.
    pub fn live_bytes(&self) -> u64 {
        self.bytes_before(self.frames)
    }
}

/// Audio frames due before video frame `n`: those `k` with
/// `k * 1024 / 44100 s < n * 33 ms`, counted in integers.
fn audio_before(n: u64) -> u64 {
    let scale = AUDIO_FRAME_SAMPLES * 1000;
    (n * FRAME_MS * AUDIO_RATE).div_ceil(scale)
}
