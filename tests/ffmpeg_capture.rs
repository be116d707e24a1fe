//! What ffmpeg 5.1 really sends when publishing (captured on loopback
//! between `ffmpeg -f flv rtmp://…/live/cam?key=abc` and nginx-rtmp; see
//! `testdata/README.md`), fed through our server session.
// Tests and benches fail by panicking on what they did not expect.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use bytes::BytesMut;
use ringcast::protocol::amf::Value;
use ringcast::protocol::flv::{self, AudioCodec, VideoCodec};
use ringcast::session::{MediaKind, ServerConfig, ServerEvent, ServerSession};

const CAPTURE: &[u8] = include_bytes!("../testdata/ffmpeg-5.1-publish-h264-aac.bin");

fn events_of_capture(piece: usize) -> Vec<ServerEvent> {
    let mut session = ServerSession::new(ServerConfig::default(), 0, [1; 1528]);
    let mut input = BytesMut::new();
    let mut events = Vec::new();
    for bytes in CAPTURE.chunks(piece) {
        input.extend_from_slice(bytes);
        loop {
            session
                .handle_input(&mut input)
                .expect("ffmpeg's bytes are valid");
            let mut answered = false;
            while let Some(event) = session.poll_event() {
                match &event {
                    ServerEvent::Connect { .. } => session.accept_connect(),
                    ServerEvent::Publish { stream_id, .. } => session.accept_publish(*stream_id),
                    _ => {}
                }
                answered |= matches!(
                    event,
                    ServerEvent::Connect { .. } | ServerEvent::Publish { .. }
                );
                events.push(event);
            }
            if !answered {
                break;
            }
        }
    }
    assert!(input.is_empty(), "{} bytes left undecoded", input.len());
    events
}

#[test]
fn ffmpeg_publish_capture_decodes_to_connect_publish_metadata_and_media() {
    let events = events_of_capture(CAPTURE.len());
    let ServerEvent::Connect { app, connect } = &events[0] else {
        panic!("first event is not connect: {:?}", events[0]);
    };
    assert_eq!(app.name, "live");
    assert_eq!(
        connect.tc_url.as_deref(),
        Some("rtmp://127.0.0.1:19351/live")
    );
    assert!(
        connect
            .flash_ver
            .as_deref()
            .unwrap_or("")
            .starts_with("FMLE/3.0")
    );
    assert!(matches!(
        &events[1],
        ServerEvent::Publish { stream_name, .. } if stream_name == "cam?key=abc"
    ));
    let ServerEvent::Metadata { metadata, .. } = &events[2] else {
        panic!("third event is not metadata: {:?}", events[2]);
    };
    let value = &metadata.value;
    assert_eq!(value.property("width").and_then(Value::as_f64), Some(160.0));
    assert_eq!(
        value.property("height").and_then(Value::as_f64),
        Some(120.0)
    );

    let media: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::Media { media, .. } => Some(media),
            _ => None,
        })
        .collect();
    let video: Vec<_> = media
        .iter()
        .filter(|m| m.kind == MediaKind::Video)
        .map(|m| {
            (
                m.timestamp,
                flv::inspect_video(&m.payload).expect("valid video"),
            )
        })
        .collect();
    let audio: Vec<_> = media
        .iter()
        .filter(|m| m.kind == MediaKind::Audio)
        .map(|m| flv::inspect_audio(&m.payload).expect("valid audio"))
        .collect();
    assert!(video[0].1.is_sequence_header());
    assert_eq!(video[0].1.codec, Some(VideoCodec::Avc));
    assert!(video[1].1.is_keyframe(), "first coded frame is a keyframe");
    assert!(audio[0].is_sequence_header());
    assert_eq!(audio[0].codec, AudioCodec::Aac);
    // 1.2 s at 15 fps, GOP 15: about 18 frames and two keyframes.
    let frames = video.len() - 1;
    assert!((15..=20).contains(&frames), "{frames} video frames");
    assert!(video.iter().filter(|(_, v)| v.is_keyframe()).count() >= 2);
    assert!(
        video.windows(2).all(|w| w[0].0 <= w[1].0),
        "video timestamps ascend"
    );
    assert!(audio.len() > 40, "{} audio frames", audio.len());
}

#[test]
fn ffmpeg_publish_capture_decodes_the_same_in_any_read_size() {
    let whole = events_of_capture(CAPTURE.len());
    for piece in [1, 7, 1000, 4096] {
        assert_eq!(events_of_capture(piece), whole, "read size {piece}");
    }
}
