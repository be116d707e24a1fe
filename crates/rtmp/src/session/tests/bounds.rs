//! What a peer may make a session do, bounded: refusals reported,
//! names and strings past their limits, what is decoded before `connect`
//! and off a publishing stream, quoting.

use super::*;

/// The descriptions of the refusals the server reported.
fn refusals(events: &[ServerEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::CommandRefused { description, .. } => Some(description.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn every_refused_command_is_reported_to_the_caller() {
    let mut pair = Pair::connected(Kind::Simple);
    pair.server_events.clear();
    pair.client
        .call(MessageStreamId(0), "noSuchCommand", vec![])
        .expect("connected");
    pair.client
        .delete_stream(MessageStreamId(77))
        .expect("connected");
    pair.pump();
    assert_eq!(
        refusals(&pair.server_events),
        vec![
            "unknown command noSuchCommand",
            "deleteStream: stream 77 was not created"
        ]
    );
}

#[test]
fn a_huge_command_name_is_refused_without_echoing_it() {
    // The bytes of the attack: an unknown command named with 60 000 "n"
    // (longer commands are refused by the chunk layer's command bound).
    let mut pair = Pair::connected(Kind::Simple);
    pair.server_events.clear();
    pair.client_events.clear();
    let name = "n".repeat(60_000);
    pair.client
        .call(MessageStreamId(0), &name, vec![])
        .expect("connected");
    pair.pump();
    let Some(ClientEvent::Error(error)) = pair.client_events.pop() else {
        panic!("expected _error: {:?}", pair.client_events);
    };
    let description = error.arguments[0]
        .property("description")
        .and_then(Value::as_str)
        .expect("a description");
    let quoted = "n".repeat(crate::limits::QUOTED_BYTES_MAX);
    assert_eq!(
        description,
        format!("unknown command {quoted}… (60000 bytes)")
    );
    assert_eq!(refusals(&pair.server_events), vec![description.to_owned()]);
}

#[test]
fn stream_names_past_the_limit_are_refused_before_anything_is_requested() {
    let mut pair = Pair::connected(Kind::Simple);
    let stream_id = pair.create_stream();
    pair.server_events.clear();
    pair.client_events.clear();
    let name = "s".repeat(crate::limits::NAME_BYTES_MAX + 1);
    pair.client.publish(stream_id, &name).expect("connected");
    pair.client.play(stream_id, &name).expect("connected");
    pair.pump();
    let errors = pair
        .client_events
        .iter()
        .filter(|e| matches!(e, ClientEvent::Error(_)))
        .count();
    assert_eq!(errors, 4, "releaseStream, FCPublish, publish and play");
    assert!(
        !pair
            .server_events
            .iter()
            .any(|e| matches!(e, ServerEvent::Publish { .. } | ServerEvent::Play { .. })),
        "{:?}",
        pair.server_events
    );
    assert!(
        refusals(&pair.server_events)
            .iter()
            .all(|d| d.ends_with("stream name of 1025 bytes exceeds max 1024"))
    );
    // A name at the limit is fine.
    let name = "s".repeat(crate::limits::NAME_BYTES_MAX);
    pair.client.play(stream_id, &name).expect("connected");
    pair.pump();
    assert!(
        pair.server_events
            .iter()
            .any(|e| matches!(e, ServerEvent::Play { .. }))
    );
}

#[test]
fn connect_to_an_app_name_past_the_limit_closes_the_session() {
    let app = "a".repeat(crate::limits::NAME_BYTES_MAX + 1);
    let config = ClientConfig::new(&app, "rtmp://h/app");
    assert_eq!(
        connect_error(config),
        Some("protocol violation: connect: app name of 1025 bytes exceeds max 1024".into())
    );
}

#[test]
fn connect_with_a_string_past_the_limit_closes_the_session() {
    let max = crate::limits::CONNECT_STRING_BYTES_MAX;
    let long = format!("rtmp://h/app?{}", "q".repeat(max));
    let config = ClientConfig::new("app", &long);
    assert_eq!(
        connect_error(config),
        Some(format!(
            "protocol violation: connect: tcUrl of {} bytes exceeds max {max}",
            long.len()
        ))
    );
    let mut config = ClientConfig::new("app", "rtmp://h/app");
    config.flash_ver = "F".repeat(max + 1);
    assert_eq!(
        connect_error(config),
        Some(format!(
            "protocol violation: connect: flashVer of {} bytes exceeds max {max}",
            max + 1
        ))
    );
    // At the limit: accepted.
    let mut config = ClientConfig::new("app", "rtmp://h/app");
    config.flash_ver = "F".repeat(max);
    assert_eq!(connect_error(config), None);
}

/// The error of the server session fed `config`'s handshake and connect;
/// asserts no connect reached the caller when there is one.
fn connect_error(config: ClientConfig) -> Option<String> {
    let mut pair = Pair::new(ServerConfig::default(), config);
    // The client's handshake and connect, by hand: `pump` expects success.
    let mut err = None;
    for _ in 0..4 {
        while let Some(bytes) = pair.client.poll_transmit() {
            pair.to_server.extend_from_slice(&bytes);
        }
        if let Err(e) = pair.server.handle_input(&mut pair.to_server) {
            err = Some(e);
            break;
        }
        while let Some(bytes) = pair.server.poll_transmit() {
            pair.to_client.extend_from_slice(&bytes);
        }
        pair.client
            .handle_input(&mut pair.to_client)
            .expect("client");
    }
    if err.is_some() {
        assert!(pair.server.poll_event().is_none(), "no connect to decide");
    }
    err.map(|e| e.to_string())
}

/// One message as chunks at the initial chunk size.
fn chunked(type_id: MessageType, stream_id: u32, body: &[u8]) -> Bytes {
    let header = MessageHeader {
        chunk_stream: ChunkStreamId(4),
        timestamp: Timestamp(0),
        type_id,
        stream_id: MessageStreamId(stream_id),
    };
    chunk::package(&header, body, limits::CHUNK_SIZE_INITIAL).expect("encodable")
}

#[test]
fn nothing_but_control_and_commands_is_decoded_before_connect() {
    // AMF that cannot decode (a reference to nothing), as data, shared
    // object and unknown types: dropped undecoded, so not refused.
    let bad = b"\x07\x00\x05";
    let mut server = ServerSession::new(ServerConfig::default(), 0, [0; RANDOM_SIZE]);
    let mut input = BytesMut::from(&[3u8][..]);
    input.extend_from_slice(&[0; 2 * HANDSHAKE_SIZE]);
    for type_id in [15, 16, 18, 19, 7, 22, 8, 9] {
        input.extend_from_slice(&chunked(MessageType(type_id), 1, bad));
        input.extend_from_slice(&chunked(MessageType(type_id), 0, bad));
    }
    server.handle_input(&mut input).expect("nothing decoded");
    assert!(input.is_empty());
    assert_eq!(server.poll_event(), None);
    // A command is decoded (and this one refused) before connect.
    input.extend_from_slice(&chunked(MessageType::COMMAND_AMF0, 0, bad));
    assert!(matches!(
        server.handle_input(&mut input),
        Err(SessionError::Message { .. })
    ));
}

#[test]
fn until_a_publish_is_accepted_no_message_may_be_longer_than_a_command() {
    let video = |length: u32| {
        let l = length.to_be_bytes();
        [0x04, 0, 0, 0, l[1], l[2], l[3], 9, 1, 0, 0, 0]
    };
    let max = limits::COMMAND_MESSAGE_SIZE_MAX;
    let mut server = ServerSession::new(ServerConfig::default(), 0, [0; RANDOM_SIZE]);
    let mut input = BytesMut::from(&[3u8][..]);
    input.extend_from_slice(&[0; 2 * HANDSHAKE_SIZE]);
    input.extend_from_slice(&video(max + 1));
    let error = server.handle_input(&mut input).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "video message (type 9) length {} on chunk stream 4 exceeds max {max}",
            max + 1
        )
    );
    assert!(error.is_peer_fault());
    // Connected but not publishing (a player): still no longer than a
    // command.
    let mut pair = Pair::connected(Kind::Simple);
    pair.to_server.extend_from_slice(&video(max + 1));
    assert!(pair.server.handle_input(&mut pair.to_server).is_err());
    // Once a publish is accepted, media may be as long as configured.
    let mut pair = Pair::connected(Kind::Simple);
    let stream_id = pair.create_stream();
    pair.client.publish(stream_id, "cam").expect("connected");
    pair.pump();
    pair.server.accept_publish(stream_id);
    pair.pump();
    pair.to_server.extend_from_slice(&video(max + 1));
    pair.server
        .handle_input(&mut pair.to_server)
        .expect("a long video message begins");
}

#[test]
fn data_is_decoded_only_on_a_publishing_stream() {
    let bad = b"\x07\x00\x05";
    let mut pair = Pair::connected(Kind::Simple);
    let stream_id = pair.create_stream();
    pair.server_events.clear();
    // Created, not publishing: dropped undecoded.
    pair.to_server
        .extend_from_slice(&chunked(MessageType::DATA_AMF0, stream_id.0, bad));
    pair.pump();
    assert!(pair.server_events.is_empty());
    pair.client.publish(stream_id, "cam").expect("connected");
    pair.pump();
    pair.server.accept_publish(stream_id);
    pair.pump();
    pair.to_server
        .extend_from_slice(&chunked(MessageType::DATA_AMF0, stream_id.0, bad));
    let error = pair.server.handle_input(&mut pair.to_server).unwrap_err();
    assert_eq!(
        error.to_string(),
        "message type 18 on stream 1: data body: amf0 complex value reference 5 out of range (table holds 0)"
    );
}

#[test]
fn metadata_goes_to_players_as_received_where_it_can() {
    let value = Value::object([("width", Value::Number(640.0))]);
    let raw = |type_id, values: &[Value]| {
        let mut body = BytesMut::new();
        if type_id == MessageType::DATA_AMF3 {
            body.extend_from_slice(&[0]);
        }
        crate::protocol::amf0::encode_all(values, &mut body);
        chunk::RawMessage {
            chunk_stream: ChunkStreamId(4),
            timestamp: Timestamp(0),
            type_id,
            stream_id: MessageStreamId(1),
            payload: body.freeze(),
        }
    };
    let on_metadata = |value: &Value| {
        let mut body = BytesMut::new();
        Message::Data(Data::MetaData(value.clone())).encode(&mut body);
        body.freeze()
    };
    let set = Value::string("@setDataFrame");
    let name = Value::string("onMetaData");
    // `@setDataFrame onMetaData v`: a slice of the received bytes.
    let sent = raw(
        MessageType::DATA_AMF0,
        &[set.clone(), name.clone(), value.clone()],
    );
    let metadata = Metadata::from_data(&sent, value.clone(), &amf::Limits::default());
    assert_eq!(metadata.body, on_metadata(&value));
    assert_eq!(metadata.body.as_ptr(), sent.payload[16..].as_ptr());
    // A bare `onMetaData v`: the received bytes.
    let sent = raw(MessageType::DATA_AMF0, &[name.clone(), value.clone()]);
    let metadata = Metadata::from_data(&sent, value.clone(), &amf::Limits::default());
    assert_eq!(metadata.body.as_ptr(), sent.payload.as_ptr());
    // A slice that would decode past its own (shorter) budget: encoded
    // anew, without references, so an edge pulling from us accepts it.
    let tight = amf::Limits {
        items_max: 2,
        ..amf::Limits::default()
    };
    let sent = raw(
        MessageType::DATA_AMF0,
        &[set.clone(), name.clone(), value.clone()],
    );
    let metadata = Metadata::from_data(&sent, value.clone(), &tight);
    assert_eq!(metadata.body, on_metadata(&value));
    assert_ne!(metadata.body.as_ptr(), sent.payload[16..].as_ptr());
    // AMF3 data and a handler-less `@setDataFrame v`: encoded anew.
    for sent in [
        raw(MessageType::DATA_AMF3, &[set.clone(), name, value.clone()]),
        raw(MessageType::DATA_AMF0, &[set, value.clone()]),
    ] {
        let metadata = Metadata::from_data(&sent, value.clone(), &amf::Limits::default());
        assert_eq!(metadata.body, on_metadata(&value));
    }
}

#[test]
fn quoted_text_is_cut_at_a_character_boundary_with_its_length() {
    assert_eq!(Quoted("live/cam").to_string(), "live/cam");
    let long = "é".repeat(1000);
    let quoted = Quoted(&long).to_string();
    let (head, tail) = quoted.split_once('…').unwrap();
    assert!(head.len() <= limits::QUOTED_BYTES_MAX && head.len() >= limits::QUOTED_BYTES_MAX - 1);
    assert!(head.chars().all(|c| c == 'é'));
    assert_eq!(tail, " (2000 bytes)");
}

#[test]
fn a_client_call_before_connect_is_our_misuse_not_the_peers_fault() {
    let config = ClientConfig::new("live", "rtmp://127.0.0.1/live");
    let mut client = ClientSession::new(config, 0, [0; RANDOM_SIZE]);
    let error = client.create_stream().unwrap_err();
    assert!(matches!(error, SessionError::Misuse(Misuse::Call(_))));
    assert!(!error.is_peer_fault());
    assert_eq!(
        error.to_string(),
        "session misuse: createStream before connect succeeded"
    );
}
