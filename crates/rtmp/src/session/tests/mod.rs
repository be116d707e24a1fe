//! A client session and a server session pumping bytes in memory: full
//! publish and play, chunk size changes both ways, acknowledgements across
//! the window, and misuse answered without dying.

use bytes::{Bytes, BytesMut};

use super::*;
use crate::limits;
use crate::protocol::amf::Value;
use crate::protocol::chunk::{self, MessageHeader};
use crate::protocol::command::{Data, PublishType, Status};
use crate::protocol::handshake::{HANDSHAKE_SIZE, Kind, RANDOM_SIZE};
use crate::protocol::message::{Message, UserControl, flv_tag};
use crate::protocol::{ChunkStreamId, MessageStreamId, MessageType, Timestamp};

mod bounds;
mod reconnect;

/// Decodes a copy of one direction's bytes (after the handshake) to see
/// what was really sent.
struct Tap {
    skip: usize,
    input: BytesMut,
    decoder: chunk::Decoder,
    messages: Vec<chunk::RawMessage>,
}

impl Tap {
    fn new(handshake_bytes: usize) -> Tap {
        Tap {
            skip: handshake_bytes,
            input: BytesMut::new(),
            decoder: chunk::Decoder::new(chunk::Limits::default()),
            messages: Vec::new(),
        }
    }

    fn feed(&mut self, mut bytes: &[u8]) {
        let skip = self.skip.min(bytes.len());
        bytes = &bytes[skip..];
        self.skip -= skip;
        self.input.extend_from_slice(bytes);
        while let Some(m) = self.decoder.decode(&mut self.input).expect("valid chunks") {
            self.messages.push(m);
        }
    }

    fn acks(&self) -> Vec<u32> {
        self.messages
            .iter()
            .filter(|m| m.type_id == MessageType::ACKNOWLEDGEMENT)
            .map(|m| u32::from_be_bytes(m.payload[..4].try_into().expect("4 bytes")))
            .collect()
    }
}

struct Pair {
    server: ServerSession,
    client: ClientSession,
    to_server: BytesMut,
    to_client: BytesMut,
    client_sent: Tap,
    server_sent: Tap,
    server_events: Vec<ServerEvent>,
    client_events: Vec<ClientEvent>,
}

impl Pair {
    fn new(server: ServerConfig, client: ClientConfig) -> Pair {
        Pair {
            server: ServerSession::new(server, 1000, [7; RANDOM_SIZE]),
            client: ClientSession::new(client, 2000, [9; RANDOM_SIZE]),
            to_server: BytesMut::new(),
            to_client: BytesMut::new(),
            client_sent: Tap::new(1 + 2 * HANDSHAKE_SIZE),
            server_sent: Tap::new(1 + 2 * HANDSHAKE_SIZE),
            server_events: Vec::new(),
            client_events: Vec::new(),
        }
    }

    fn connected(kind: Kind) -> Pair {
        let mut client = ClientConfig::new("live", "rtmp://127.0.0.1/live");
        client.handshake = kind;
        let mut pair = Pair::new(ServerConfig::default(), client);
        pair.pump();
        assert!(matches!(
            pair.server_events.remove(0),
            ServerEvent::Connect { ref app, .. } if app.name == "live"
        ));
        pair.server.accept_connect();
        pair.pump();
        assert!(matches!(
            pair.client_events.remove(0),
            ClientEvent::Connected { .. }
        ));
        pair
    }

    /// Moves bytes both ways until neither side has anything to say.
    fn pump(&mut self) {
        loop {
            self.server
                .handle_input(&mut self.to_server)
                .expect("server");
            self.client
                .handle_input(&mut self.to_client)
                .expect("client");
            let mut moved = false;
            while let Some(bytes) = self.client.poll_transmit() {
                self.client_sent.feed(&bytes);
                self.to_server.extend_from_slice(&bytes);
                moved = true;
            }
            while let Some(bytes) = self.server.poll_transmit() {
                self.server_sent.feed(&bytes);
                self.to_client.extend_from_slice(&bytes);
                moved = true;
            }
            while let Some(e) = self.server.poll_event() {
                self.server_events.push(e);
                moved = true;
            }
            while let Some(e) = self.client.poll_event() {
                self.client_events.push(e);
                moved = true;
            }
            if !moved {
                return;
            }
        }
    }

    fn create_stream(&mut self) -> MessageStreamId {
        let tid = self.client.create_stream().expect("connected");
        self.pump();
        let created = self.client_events.iter().position(|e| {
            matches!(e, ClientEvent::StreamCreated { transaction_id, .. } if *transaction_id == tid)
        });
        match created.map(|i| self.client_events.remove(i)) {
            Some(ClientEvent::StreamCreated { stream_id, .. }) => stream_id,
            _ => panic!("no StreamCreated in {:?}", self.client_events),
        }
    }

    /// Packaged frames, as the server's fan-out writes them.
    fn deliver_packaged(&mut self, stream_id: MessageStreamId, media: &Media) {
        let header = MessageHeader {
            chunk_stream: media.kind.chunk_stream(),
            timestamp: media.timestamp,
            type_id: media.kind.type_id(),
            stream_id,
        };
        let frame = chunk::package(&header, &media.payload, self.server.chunk_size_out())
            .expect("packageable");
        self.server_sent.feed(&frame);
        self.to_client.extend_from_slice(&frame);
        self.pump();
    }
}

fn frame(kind: MediaKind, timestamp: u32, len: usize, fill: u8) -> Media {
    let mut payload = vec![fill; len];
    payload[0] = match kind {
        MediaKind::Video => 0x17,
        MediaKind::Audio => 0xAF,
        MediaKind::Data => 0x02,
    };
    Media {
        kind,
        timestamp: Timestamp(timestamp),
        payload: Bytes::from(payload),
    }
}

fn statuses(events: &[ClientEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Status { status, .. } => Some(status.code.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_full_publish_delivers_metadata_and_media_to_the_server() {
    for kind in [Kind::Simple, Kind::Digest] {
        let mut pair = Pair::connected(kind);
        let stream_id = pair.create_stream();
        pair.client
            .publish(stream_id, "cam?key=1")
            .expect("connected");
        pair.pump();
        assert_eq!(
            pair.server_events.remove(0),
            ServerEvent::Publish {
                stream_id,
                stream_name: "cam?key=1".into(),
                publish_type: PublishType::Live
            }
        );
        pair.server.accept_publish(stream_id);
        pair.pump();
        assert!(pair.client_events.iter().any(ClientEvent::is_publish_start));

        let meta = Value::EcmaArray(vec![("width".into(), Value::Number(1280.0))]);
        pair.client
            .send_metadata(stream_id, meta.clone())
            .expect("ok");
        let sent: Vec<Media> = (0..30u32)
            .map(|i| {
                if i % 2 == 0 {
                    frame(MediaKind::Video, i * 33, 9000 + i as usize, i as u8)
                } else {
                    frame(MediaKind::Audio, i * 33, 300, i as u8)
                }
            })
            .collect();
        for media in &sent {
            pair.client
                .send_media(stream_id, media)
                .expect("publishing");
        }
        pair.pump();
        let ServerEvent::Metadata {
            stream_id: on,
            timestamp,
            metadata,
        } = pair.server_events.remove(0)
        else {
            panic!("metadata first");
        };
        assert_eq!(
            (on, timestamp, &metadata.value),
            (stream_id, Timestamp(0), &meta)
        );
        // `@setDataFrame` dropped, the rest as sent: `onMetaData` and the value.
        let mut as_sent = BytesMut::new();
        Message::Data(Data::MetaData(meta)).encode(&mut as_sent);
        assert_eq!(metadata.body, as_sent);
        let received: Vec<Media> = pair
            .server_events
            .drain(..)
            .map(|e| match e {
                ServerEvent::Media { media, .. } => media,
                other => panic!("expected media, got {other:?}"),
            })
            .collect();
        assert_eq!(received, sent);
    }
}

#[test]
fn a_full_play_gets_status_then_packaged_media_at_the_server_chunk_size() {
    let mut pair = Pair::new(
        ServerConfig {
            chunk_size: 1000,
            ..ServerConfig::default()
        },
        ClientConfig::new("live", "rtmp://127.0.0.1/live"),
    );
    pair.pump();
    pair.server_events.clear();
    pair.server.accept_connect();
    pair.pump();
    pair.client_events.clear();
    let stream_id = pair.create_stream();
    pair.client.play(stream_id, "cam").expect("connected");
    pair.pump();
    assert_eq!(
        pair.server_events.remove(0),
        ServerEvent::Play {
            stream_id,
            stream_name: "cam".into(),
            start: -2.0,
            reset: true
        }
    );
    pair.server.accept_play(stream_id, "cam", true);
    pair.pump();
    assert_eq!(pair.client_events[0], ClientEvent::StreamBegin(stream_id));
    assert_eq!(
        statuses(&pair.client_events),
        vec![status::PLAY_RESET, status::PLAY_START]
    );
    pair.client_events.clear();

    for media in [
        frame(MediaKind::Video, 0, 5000, 1),
        frame(MediaKind::Audio, 10, 200, 2),
        frame(MediaKind::Video, 40, 2500, 3),
    ] {
        pair.deliver_packaged(stream_id, &media);
        assert_eq!(
            pair.client_events.pop(),
            Some(ClientEvent::Media { stream_id, media })
        );
    }
    // The server's announced chunk size is what was used on the wire.
    assert!(pair.server_sent.messages.iter().any(
        |m| m.type_id == MessageType::SET_CHUNK_SIZE && m.payload[..] == 1000u32.to_be_bytes()
    ));
}

#[test]
fn both_sides_acknowledge_every_window_of_bytes_received() {
    let mut pair = Pair::connected(Kind::Simple);
    let publishing = pair.create_stream();
    pair.client.publish(publishing, "cam").expect("connected");
    pair.pump();
    pair.server.accept_publish(publishing);
    // 6 MB published: the server acknowledges twice (window 2.5 MB).
    for i in 0..600u32 {
        let media = frame(MediaKind::Video, i * 33, 10_000, 0);
        pair.client
            .send_media(publishing, &media)
            .expect("publishing");
        pair.pump();
    }
    let acks = pair.server_sent.acks();
    assert_eq!(acks.len(), 2, "acks {acks:?}");
    assert!(acks[0] >= 2_500_000 && acks[0] < 2_600_000);
    assert!(acks[1] >= 5_000_000 && acks[1] < 5_100_000);
    assert!(pair.server.bytes_received() > 6_000_000);

    // 6 MB played: the client acknowledges the server's window likewise.
    let playing = pair.create_stream();
    pair.client.play(playing, "cam").expect("connected");
    pair.pump();
    pair.server.accept_play(playing, "cam", true);
    pair.pump();
    for i in 0..600u32 {
        pair.deliver_packaged(playing, &frame(MediaKind::Video, i * 33, 10_000, 0));
    }
    let acks = pair.client_sent.acks();
    assert_eq!(acks.len(), 2, "acks {acks:?}");
}

#[test]
fn the_client_chunk_size_is_announced_and_applied() {
    let mut client = ClientConfig::new("live", "rtmp://127.0.0.1/live");
    client.chunk_size = 333;
    let mut pair = Pair::new(ServerConfig::default(), client);
    pair.pump();
    pair.server.accept_connect();
    pair.pump();
    let stream_id = pair.create_stream();
    pair.client.publish(stream_id, "cam").expect("connected");
    pair.pump();
    pair.server_events.clear();
    pair.server.accept_publish(stream_id);
    let media = frame(MediaKind::Video, 5, 1000, 4);
    pair.client
        .send_media(stream_id, &media)
        .expect("publishing");
    pair.pump();
    assert_eq!(
        pair.server_events.pop(),
        Some(ServerEvent::Media { stream_id, media })
    );
    assert!(
        pair.client_sent
            .messages
            .iter()
            .any(|m| m.type_id == MessageType::SET_CHUNK_SIZE
                && m.payload[..] == 333u32.to_be_bytes())
    );
}

#[test]
fn pings_are_answered_with_the_same_timestamp() {
    let mut pair = Pair::connected(Kind::Simple);
    let mut ping = BytesMut::new();
    let header = MessageHeader {
        chunk_stream: ChunkStreamId(2),
        timestamp: Timestamp(0),
        type_id: MessageType::USER_CONTROL,
        stream_id: MessageStreamId(0),
    };
    let mut body = BytesMut::new();
    Message::UserControl(UserControl::PingRequest(4242)).encode(&mut body);
    chunk::Encoder::new()
        .encode(&header, &body, &mut ping)
        .expect("encodable");
    pair.to_server.extend_from_slice(&ping);
    pair.pump();
    let pong = pair
        .server_sent
        .messages
        .iter()
        .rev()
        .find(|m| m.type_id == MessageType::USER_CONTROL)
        .expect("a user control message");
    assert_eq!(&pong.payload[..], &[0, 7, 0, 0, 0x10, 0x92]);
}

#[test]
fn several_streams_on_one_connection_publish_and_play_independently() {
    let mut pair = Pair::connected(Kind::Simple);
    let a = pair.create_stream();
    let b = pair.create_stream();
    assert_ne!(a, b);
    pair.client.publish(a, "one").expect("connected");
    pair.client.play(b, "two").expect("connected");
    pair.pump();
    // One request at a time: the play waits for the publish's answer.
    assert_eq!(pair.server_events.len(), 1);
    assert!(
        matches!(pair.server_events[0], ServerEvent::Publish { stream_id, .. } if stream_id == a)
    );
    pair.server.accept_publish(a);
    pair.pump();
    assert!(matches!(pair.server_events[1], ServerEvent::Play { stream_id, .. } if stream_id == b));
    pair.server_events.clear();
    pair.server.accept_play(b, "two", false);
    pair.pump();
    let media = frame(MediaKind::Audio, 1, 10, 1);
    pair.client.send_media(a, &media).expect("publishing");
    pair.client.send_media(b, &media).expect("ignored: b plays");
    pair.pump();
    assert_eq!(
        pair.server_events,
        vec![ServerEvent::Media {
            stream_id: a,
            media
        }]
    );
    pair.server_events.clear();
    pair.client.delete_stream(a).expect("connected");
    pair.pump();
    assert_eq!(
        pair.server_events,
        vec![ServerEvent::StreamClosed { stream_id: a }]
    );
}

/// An aggregate (type 22) on its own chunk stream, as FMS and Wowza send
/// them: video, audio, a tag of a type that is not media, video again.
fn aggregate(stream_id: MessageStreamId, chunk_size: u32) -> Bytes {
    let mut body = flv_tag(9, 0x0100_0000, &[0x17, 1, 2]);
    body.extend(flv_tag(8, 0x0100_0015, &[0xAF, 1]));
    body.extend(flv_tag(0x20, 0x0100_0019, &[0; 4]));
    body.extend(flv_tag(9, 0x0100_0021, &[0x27, 1]));
    let header = MessageHeader {
        chunk_stream: ChunkStreamId(20),
        timestamp: Timestamp(5000),
        type_id: MessageType::AGGREGATE,
        stream_id,
    };
    chunk::package(&header, &Bytes::from(body), chunk_size).expect("packageable")
}

#[test]
fn aggregates_arrive_as_their_audio_and_video_on_both_sides() {
    let media = |kind, timestamp, payload: &'static [u8]| Media {
        kind,
        timestamp: Timestamp(timestamp),
        payload: Bytes::from_static(payload),
    };
    let expected = vec![
        media(MediaKind::Video, 5000, &[0x17, 1, 2]),
        media(MediaKind::Audio, 5021, &[0xAF, 1]),
        media(MediaKind::Video, 5033, &[0x27, 1]),
    ];
    let mut pair = Pair::connected(Kind::Simple);
    let publishing = pair.create_stream();
    pair.client.publish(publishing, "cam").expect("connected");
    pair.pump();
    pair.server.accept_publish(publishing);
    let playing = pair.create_stream();
    pair.client.play(playing, "cam").expect("connected");
    pair.pump();
    pair.server.accept_play(playing, "cam", true);
    pair.pump();
    pair.server_events.clear();
    pair.client_events.clear();

    let published = aggregate(publishing, limits::CHUNK_SIZE_OUT_DEFAULT);
    pair.to_server.extend_from_slice(&published);
    let played = aggregate(playing, pair.server.chunk_size_out());
    pair.to_client.extend_from_slice(&played);
    pair.pump();
    let at_server: Vec<Media> = pair
        .server_events
        .drain(..)
        .map(|e| match e {
            ServerEvent::Media { stream_id, media } if stream_id == publishing => media,
            other => panic!("expected media, got {other:?}"),
        })
        .collect();
    assert_eq!(at_server, expected);
    let at_client: Vec<Media> = pair
        .client_events
        .drain(..)
        .map(|e| match e {
            ClientEvent::Media { stream_id, media } if stream_id == playing => media,
            other => panic!("expected media, got {other:?}"),
        })
        .collect();
    assert_eq!(at_client, expected);

    // A tag that claims more than the aggregate holds ends the session.
    // One chunk: a 12-byte header (type 0, chunk stream 20), then the
    // first tag, whose 24-bit size follows its type byte.
    let mut broken = aggregate(publishing, limits::CHUNK_SIZE_OUT_DEFAULT).to_vec();
    broken[12 + 1] = 0xFF;
    pair.to_server.extend_from_slice(&broken);
    assert!(matches!(
        pair.server.handle_input(&mut pair.to_server),
        Err(SessionError::Message {
            type_id: MessageType::AGGREGATE,
            ..
        })
    ));
}

#[test]
fn misuse_is_answered_with_error_and_the_session_lives() {
    let mut pair = Pair::connected(Kind::Simple);
    pair.client_events.clear();
    // An unknown call, deleteStream of a stream never created, and a
    // publish with no name: three `_error`s.
    pair.client
        .call(MessageStreamId(0), "noSuchCommand", vec![])
        .expect("connected");
    pair.client
        .delete_stream(MessageStreamId(77))
        .expect("connected");
    let stream_id = pair.create_stream();
    pair.client
        .call(stream_id, "publish", vec![Value::Number(3.0)])
        .expect("connected");
    pair.pump();
    let errors = pair
        .client_events
        .iter()
        .filter(|e| matches!(e, ClientEvent::Error(_)))
        .count();
    assert_eq!(errors, 3, "{:?}", pair.client_events);
    // Still usable.
    assert_ne!(pair.create_stream(), stream_id);
}

#[test]
fn create_stream_beyond_the_limit_gets_an_error() {
    let mut server = ServerConfig::default();
    server.limits.streams_max = 2;
    let mut pair = Pair::new(server, ClientConfig::new("live", "rtmp://h/live"));
    pair.pump();
    pair.server.accept_connect();
    pair.pump();
    pair.client_events.clear();
    pair.create_stream();
    pair.create_stream();
    pair.client.create_stream().expect("connected");
    pair.pump();
    assert!(matches!(
        pair.client_events.pop(),
        Some(ClientEvent::Error(_))
    ));
}

#[test]
fn publish_before_connect_closes_the_session() {
    let mut server = ServerSession::new(ServerConfig::default(), 0, [0; RANDOM_SIZE]);
    let mut input = BytesMut::new();
    input.extend_from_slice(&[3]);
    input.extend_from_slice(&[0; 2 * HANDSHAKE_SIZE]);
    let publish = crate::protocol::command::Command::Publish {
        transaction_id: 0.0,
        stream_name: "x".into(),
        publish_type: PublishType::Live,
    };
    let mut body = BytesMut::new();
    Message::Command(publish).encode(&mut body);
    let header = MessageHeader {
        chunk_stream: ChunkStreamId(3),
        timestamp: Timestamp(0),
        type_id: MessageType::COMMAND_AMF0,
        stream_id: MessageStreamId(1),
    };
    chunk::Encoder::new()
        .encode(&header, &body, &mut input)
        .expect("encodable");
    let err = server.handle_input(&mut input).unwrap_err();
    assert_eq!(
        err.to_string(),
        "protocol violation: publish before connect"
    );
}

#[test]
fn a_rejected_connect_reaches_the_client() {
    let mut pair = Pair::new(
        ServerConfig::default(),
        ClientConfig::new("live", "rtmp://h/live"),
    );
    pair.pump();
    pair.server.reject_connect("no such app");
    pair.pump();
    let Some(ClientEvent::ConnectRejected { info }) = pair.client_events.pop() else {
        panic!("expected a rejection");
    };
    assert_eq!(
        info.property("code").and_then(Value::as_str),
        Some(status::CONNECT_REJECTED)
    );
}

#[test]
fn unpublish_and_republish_notify_the_player() {
    let mut pair = Pair::connected(Kind::Simple);
    let stream_id = pair.create_stream();
    pair.client.play(stream_id, "cam").expect("connected");
    pair.pump();
    pair.server.accept_play(stream_id, "cam", true);
    pair.server.notify_unpublished(stream_id, "cam");
    pair.server.notify_published(stream_id, "cam");
    pair.server
        .send_status(stream_id, Status::new("status", "X.Custom", "custom"));
    pair.pump();
    assert_eq!(
        statuses(&pair.client_events),
        vec![
            status::PLAY_RESET,
            status::PLAY_START,
            status::PLAY_UNPUBLISH_NOTIFY,
            status::PLAY_PUBLISH_NOTIFY,
            "X.Custom"
        ]
    );
    assert!(
        pair.client_events
            .contains(&ClientEvent::StreamEof(stream_id))
    );
}
