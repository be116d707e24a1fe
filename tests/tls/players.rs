//! Players and publishers over TLS: ffmpeg and ffprobe over `rtmps://`
//! and `https://`, and our WSS, HTTPS-FLV and RTMPS players reading
//! every frame, one larger than a TLS layer seals at once; an answer
//! ends with close_notify.

use std::io::{Read, Write};

use ringcast::session::{Media, MediaKind};
use ringcast_web::websocket::{self, Opcode, client_frame, close};

use super::common::ffmpeg::{
    assert_probes_h264_and_aac, decode_quietly, finish, publish_with, wait_for_frames_in,
};
use super::common::media::{aac_header, avc_header, frame_number, video};
use super::common::web::{MASK, WebPlayer};
use super::*;

#[test]
fn ffmpeg_publishes_over_rtmps_and_ffprobe_and_ffmpeg_read_it_back_over_rtmps_and_https() {
    let pki = Pki::new();
    let cert = pki.server("server", &LOOPBACK);
    let server = start_tls(2, &cert, |_| {});
    let rtmps_url = format!("rtmps://{}/live/cam", rtmps(&server));
    // ffmpeg does not verify unless told to; said anyway, as a user would.
    let publisher = publish_with(&rtmps_url, 25, &["-tls_verify", "0"]);
    wait_for_frames_in(&server, 30);

    assert_probes_h264_and_aac(&rtmps_url);
    let https_url = format!("https://{}/live/cam.flv", https(&server));
    assert_probes_h264_and_aac(&https_url);
    let frames = decode_quietly(&https_url, 3);
    assert!(frames >= 85, "3 s at 30 fps decoded, not {frames}");

    finish(publisher);
    for counter in [
        "ringcast_tls_failures_total",
        "ringcast_tls_on_plain_port_total",
    ] {
        assert_eq!(metric(&server, counter), 0, "{counter}");
    }
    server.shutdown();
}

/// The body of numbered video frame `n`: 300 bytes, but frame 20 is
/// larger than a TLS layer seals in one go.
fn frame(n: u32) -> Media {
    let big = ringcast_tls::record::SEALED_BYTES_MAX + 100_000;
    video(n, 10, if n == 20 { big } else { 300 })
}

#[test]
fn wss_https_and_rtmps_players_read_the_flv_header_metadata_and_every_frame() {
    let pki = Pki::new();
    let cert = pki.server("server", &LOOPBACK);
    let server = start_tls(2, &cert, |_| {});
    let mut publisher = Client::connect(rtmp(&server), "live");
    let id = publisher.publish("cam");
    publisher.send_metadata(id);
    publisher.send(id, &avc_header());
    publisher.send(id, &aac_header());

    let config = pki.client();
    let host = https(&server).to_string();
    let connect = || tls_connect(https(&server), "127.0.0.1", config.clone()).expect("TLS");
    let mut wss = WebPlayer::websocket_over(connect(), &host, "/live/cam.flv", Some("flv"))
        .expect("101 over TLS");
    let mut flv = WebPlayer::get_over(connect(), &host, "/live/cam.flv").expect("200 over TLS");
    assert!(shown(&flv.socket) == cert.der, "the certificate served");
    let mut rtmps_player = rtmps_client(rtmps(&server), config.clone(), "live");
    rtmps_player.play("cam");

    let sent: Vec<Media> = (0..30).map(frame).collect();
    for media in &sent {
        publisher.send(id, media);
    }
    for (player, name) in [(&mut wss, "wss"), (&mut flv, "https-flv")] {
        // The header came first (checked as it was read), then metadata
        // and the sequence headers, then every frame as sent.
        let metadata = player.next_tag();
        assert_eq!(metadata.kind, MediaKind::Data, "{name}");
        assert!(
            metadata.payload.windows(10).any(|w| w == b"onMetaData"),
            "{name}: {metadata:?}"
        );
        let mut headers = vec![player.next_tag(), player.next_tag()];
        headers.sort_by_key(|m| m.kind == MediaKind::Audio);
        assert_eq!(headers, vec![avc_header(), aac_header()], "{name}");
        assert_eq!(
            player.header,
            Some(0x05),
            "{name}: audio and video announced"
        );
        let got: Vec<Media> = sent.iter().map(|_| player.next_tag()).collect();
        assert!(got == sent, "{name}: every frame, byte for byte");
    }
    let mut got = Vec::new();
    while got.len() < sent.len() {
        let media = rtmps_player.collect_media(1);
        got.extend(media.into_iter().filter(|m| frame_number(m).is_some()));
    }
    let numbers: Vec<Option<u32>> = got.iter().map(frame_number).collect();
    assert_eq!(numbers, (0..30).map(Some).collect::<Vec<_>>(), "rtmps");
    assert!(got == sent, "rtmps: every frame, byte for byte");

    // WebSocket control frames are answered over TLS too.
    wss.send(&client_frame(Opcode::Ping, b"over tls", MASK));
    let pong = wss.next_control();
    assert_eq!(
        (pong.opcode, &pong.payload[..]),
        (Opcode::Pong, &b"over tls"[..])
    );
    let bye = websocket::close_payload(close::NORMAL, "bye");
    wss.send(&client_frame(Opcode::Close, &bye, MASK));
    assert_eq!(wss.next_control().opcode, Opcode::Close);
    wss.read_until_closed();
    for counter in [
        "ringcast_tls_failures_total",
        "ringcast_tls_on_plain_port_total",
    ] {
        assert_eq!(metric(&server, counter), 0, "{counter}");
    }
    server.shutdown();
}

#[test]
fn an_https_answer_ends_with_close_notify_so_a_cut_body_is_told_from_a_whole_one() {
    let pki = Pki::new();
    let cert = pki.server("server", &LOOPBACK);
    let server = start_tls(1, &cert, |_| {});
    // Answered at once (not a stream: no play wait) and closed after it.
    for target in ["/nothing/here", "/"] {
        let mut stream = tls_connect(https(&server), "127.0.0.1", pki.client()).expect("TLS");
        let request = ringcast_web::client::get_request("GET", &https(&server).to_string(), target);
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = Vec::new();
        // Without close_notify rustls reports the end as UnexpectedEof: a
        // truncation it cannot tell from the end of the body.
        let read = stream.read_to_end(&mut answer);
        let head = String::from_utf8_lossy(&answer[..answer.len().min(12)]).into_owned();
        assert!(read.is_ok(), "{target}: {read:?} after {head:?}");
        assert!(head.starts_with("HTTP/1.1 "), "{target}: {head:?}");
    }
    server.shutdown();
}
