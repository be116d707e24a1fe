//! Enhanced RTMP's reconnect request between the two sessions: `capsEx`
//! announced in `connect` and echoed, the request's bytes on stream 0,
//! its `tcUrl` read (or not) by the client, and the session going on.

use super::*;
use crate::protocol::command::{CapsEx, Command};

/// A pair whose client announced `caps_ex`, connected.
fn connected_announcing(caps_ex: CapsEx) -> Pair {
    let mut client = ClientConfig::new("live", "rtmp://127.0.0.1/live");
    client.caps_ex = caps_ex;
    let mut pair = Pair::new(ServerConfig::default(), client);
    pair.pump();
    let Some(ServerEvent::Connect { connect, .. }) = pair.server_events.first() else {
        panic!("no connect in {:?}", pair.server_events);
    };
    assert_eq!(connect.caps_ex(), caps_ex, "what the client sent");
    pair.server_events.clear();
    pair.server.accept_connect();
    pair.pump();
    assert!(matches!(
        pair.client_events.remove(0),
        ClientEvent::Connected { .. }
    ));
    pair
}

/// Every command the server sent on stream 0, decoded.
fn commands_on_stream_0(pair: &Pair) -> Vec<Command> {
    (pair.server_sent.messages.iter())
        .filter(|m| m.type_id == MessageType::COMMAND_AMF0 && m.stream_id.0 == 0)
        .map(|m| match Message::decode(m, &Default::default()) {
            Ok(Message::Command(command)) => command,
            other => panic!("not a command: {other:?}"),
        })
        .collect()
}

#[test]
fn a_client_announcing_reconnect_is_recorded_and_told_the_server_supports_it() {
    let pair = connected_announcing(CapsEx::RECONNECT);
    assert!(pair.server.peer_caps_ex().contains(CapsEx::RECONNECT));
    let answer = commands_on_stream_0(&pair)
        .into_iter()
        .find_map(|c| match c {
            Command::Result(r) => Some(r),
            _ => None,
        });
    let properties = answer.expect("_result").command_object;
    assert_eq!(
        CapsEx::from_value(properties.property("capsEx")),
        CapsEx::RECONNECT
    );
}

#[test]
fn a_legacy_client_announces_nothing_and_gets_the_answer_it_always_got() {
    let pair = connected_announcing(CapsEx::default());
    assert_eq!(pair.server.peer_caps_ex(), CapsEx::default());
    let answer = commands_on_stream_0(&pair)
        .into_iter()
        .find_map(|c| match c {
            Command::Result(r) => Some(r),
            _ => None,
        });
    let properties = answer.expect("_result").command_object;
    assert_eq!(properties.property("capsEx"), None);
    assert_eq!(properties.properties().map(<[_]>::len), Some(2));
}

#[test]
fn a_reconnect_request_is_a_status_on_stream_0_and_reaches_the_client_with_its_url() {
    let mut pair = connected_announcing(CapsEx::RECONNECT);
    pair.server
        .request_reconnect(Some("rtmp://b.example:1936/live"), "Maintenance.");
    pair.pump();
    // On the wire: onStatus, transaction 0, null object, the info object.
    let sent = commands_on_stream_0(&pair).pop();
    let Some(Command::OnStatus(status)) = sent else {
        panic!("last on stream 0: {sent:?}");
    };
    assert_eq!(status.level, "status");
    assert_eq!(status.code, status::CONNECT_RECONNECT_REQUEST);
    assert_eq!(status.description, "Maintenance.");
    assert_eq!(
        status.extra,
        vec![(
            "tcUrl".to_owned(),
            Value::string("rtmp://b.example:1936/live")
        )]
    );
    // Decoding what was encoded gives the same command back.
    let again = Command::from_values(Command::OnStatus(status.clone()).to_values());
    assert_eq!(again, Ok(Command::OnStatus(status)));
    assert_eq!(
        pair.client_events,
        vec![ClientEvent::ReconnectRequest {
            tc_url: Some("rtmp://b.example:1936/live".into()),
            description: "Maintenance.".into(),
        }]
    );
}

#[test]
fn a_reconnect_request_without_a_url_or_with_a_url_of_the_wrong_type_names_none() {
    let mut pair = connected_announcing(CapsEx::RECONNECT);
    pair.server.request_reconnect(None, "Going down.");
    let mut odd = Status::new("status", status::CONNECT_RECONNECT_REQUEST, "Odd.");
    odd.extra.push(("tcUrl".into(), Value::Number(1935.0)));
    pair.server.send_status(MessageStreamId::CONNECTION, odd);
    pair.pump();
    assert_eq!(
        pair.client_events,
        vec![
            ClientEvent::ReconnectRequest {
                tc_url: None,
                description: "Going down.".into(),
            },
            ClientEvent::ReconnectRequest {
                tc_url: None,
                description: "Odd.".into(),
            },
        ]
    );
}

#[test]
fn the_code_on_a_media_stream_is_an_ordinary_status() {
    let mut pair = connected_announcing(CapsEx::RECONNECT);
    let stream_id = pair.create_stream();
    let status = Status::new("status", status::CONNECT_RECONNECT_REQUEST, "x");
    pair.server.send_status(stream_id, status.clone());
    pair.pump();
    assert_eq!(
        pair.client_events,
        vec![ClientEvent::Status { stream_id, status }]
    );
}

#[test]
fn a_publisher_asked_to_reconnect_goes_on_publishing_until_it_leaves() {
    let mut pair = connected_announcing(CapsEx::RECONNECT);
    let stream_id = pair.create_stream();
    pair.client.publish(stream_id, "cam").expect("connected");
    pair.pump();
    pair.server_events.clear();
    pair.server.accept_publish(stream_id);
    pair.pump();
    pair.server.request_reconnect(None, "Move.");
    pair.pump();
    assert!((pair.client_events.iter()).any(|e| matches!(e, ClientEvent::ReconnectRequest { .. })));
    let media = frame(MediaKind::Video, 33, 100, 1);
    pair.client
        .send_media(stream_id, &media)
        .expect("publishing");
    pair.pump();
    assert_eq!(
        pair.server_events,
        vec![ServerEvent::Media { stream_id, media }]
    );
}
