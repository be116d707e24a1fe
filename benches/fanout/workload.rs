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

/// A client session for `APP` on `addr`, for the publisher and each player.
pub fn client_session(addr: SocketAddr) -> ClientSession {
    let tc_url = format!("rtmp://{addr}/{APP}");
    ClientSession::new(ClientConfig::new(APP, &tc_url), 0, [7; RANDOM_SIZE])
}

#[derive(Clone)]
pub struct Workload {
    frames: u64,
    keyframe: Bytes,
    interframe: Bytes,
    audio: Bytes,
    pair_wire_bytes: u64,
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
            pair_wire_bytes: 0,
        };
        let chunk_size = Config::default().chunk_size;
        let packaged = |m: &Media| {
            Frame::package(m.kind, m.timestamp, &m.payload, chunk_size)
                .expect("a 10 KB frame packages")
                .len() as u64
        };
        workload.pair_wire_bytes = workload.pair(1).iter().map(packaged).sum();
        workload
    }

    /// Video frames; each is followed by one audio frame.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Video frame `n` and the audio frame after it.
    pub fn pair(&self, n: u64) -> [Media; 2] {
        let timestamp = Timestamp((n * FRAME_MS) as u32);
        let video = if n % GOP_FRAMES == 0 {
            &self.keyframe
        } else {
            &self.interframe
        };
        [
            Media {
                kind: MediaKind::Video,
                timestamp,
                payload: video.clone(),
            },
            Media {
                kind: MediaKind::Audio,
                timestamp,
                payload: self.audio.clone(),
            },
        ]
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

    /// Bytes the server puts on the wire for one video frame and the
    /// audio frame after it, packaged as the server packages them
    /// (the same for every pair: no extended timestamps).
    pub fn pair_wire_bytes(&self) -> u64 {
        self.pair_wire_bytes
    }

    /// Bytes each player must receive once the publisher starts.
    pub fn live_bytes(&self) -> u64 {
        self.frames * self.pair_wire_bytes
    }
}
