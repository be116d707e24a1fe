//! The player side of HTTP-FLV and WebSocket-FLV, without I/O: the request
//! to send, then, from the bytes that come back, the events a player
//! measures: the server accepted, each FLV tag, the server ended the
//! stream.
//!
//! HTTP-FLV: `GET /app/stream.flv`, answered 200 with the FLV stream as the
//! body, close-delimited (what ringcast sends) or chunked (RFC 9112 §7.1;
//! taken too, since other servers and proxies chunk). WebSocket-FLV: the
//! same request upgraded (RFC 6455 §4.1), answered 101 with the matching
//! `Sec-WebSocket-Accept`, then the FLV bytes in binary frames, however
//! they are cut (one tag a frame is usual, but frame and tag boundaries
//! are not relied on); pings are answered, a close is answered and ends
//! the stream. The response head and the frames are `ringcast_web`'s; the
//! tags are [`flv::TagReader`]'s, which keeps only each body's first
//! bytes.
//!
//! Deterministic: the WebSocket key and the masks come from the nonce the
//! caller gives.

use bytes::{Buf, Bytes, BytesMut};

use super::chunked::{ChunkedError, Dechunker};
use super::flv::{self, FlvError, Tag, TagReader};
use super::url::Protocol;
use ringcast_web::client::{self, HeadError};
use ringcast_web::websocket::{self, Frames, Opcode};

/// A response head longer than this is refused: ours is a few hundred
/// bytes; 16 KiB (twice nginx's default header buffer) leaves room for
/// proxies and bounds what a server makes each player buffer before the
/// body.
pub const HEAD_BYTES_MAX: usize = 16 * 1024;
/// The largest WebSocket frame or message taken: frames are buffered whole
/// before their payload is read. One tag a frame needs the largest tag
/// ([`flv::TAG_BODY_BYTES_MAX`], 8 MiB) and its 15 bytes of framing; a
/// server that sends several tags a frame (a GOP cache at once: 1 MB at
/// 4 Mbit/s) fits in twice that.
pub const WS_MESSAGE_BYTES_MAX: usize = 2 * flv::TAG_BODY_BYTES_MAX as usize;

/// What the bytes from the server meant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The server accepted the request: the stream follows.
    Playing,
    Tag(Tag),
    /// The server ended the stream (a close frame, the last chunk); the
    /// words say how. Nothing comes after.
    Ended(String),
}

/// Why the server's bytes cannot be played.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Head(#[from] HeadError),
    #[error("answered {status}, not {expected}")]
    Status { status: u16, expected: u16 },
    #[error("upgrade answered without the Sec-WebSocket-Accept of our key")]
    Accept,
    #[error("websocket: {0}")]
    WebSocket(#[from] websocket::Error),
    #[error("websocket: a text frame, where FLV comes in binary frames")]
    Text,
    #[error("chunked body: {0}")]
    Chunked(#[from] ChunkedError),
    #[error("{0}")]
    Flv(#[from] FlvError),
}

/// One HTTP-FLV or WebSocket-FLV player connection's protocol state.
pub struct Client {
    phase: Phase,
    /// Bytes to send, in order.
    transmit: Vec<Bytes>,
    flv: TagReader,
    /// FLV bytes of a chunked body, out of their chunks, not yet read.
    dechunked: BytesMut,
    /// FLV bytes of WebSocket payloads not yet read.
    payload: Bytes,
    /// Xorshift state the masks of our frames are drawn from.
    mask_state: u32,
}

enum Phase {
    /// Waiting for the response head; the key sent, for an upgrade.
    Head {
        websocket_key: Option<String>,
    },
    /// A close-delimited body.
    Plain,
    Chunked(Dechunker),
    WebSocket(Frames),
    Ended,
}

impl Client {
    /// A player of `target` (`/app/stream.flv?query`) on `authority`
    /// (`host:port`, the Host header) over `protocol` (HTTP-FLV or
    /// WebSocket-FLV), keeping `body_prefix` bytes of each tag body; the
    /// request is queued. `nonce` makes the WebSocket key and masks.
    pub fn new(
        protocol: Protocol,
        authority: &str,
        target: &str,
        body_prefix: usize,
        nonce: [u8; 16],
    ) -> Client {
        let (request, websocket_key) = if protocol == Protocol::WsFlv {
            let key = websocket::client_key(nonce);
            let request = websocket::upgrade_request(authority, target, &key, None);
            (request, Some(key))
        } else {
            (client::get_request("GET", authority, target), None)
        };
        let [a, b, c, d, ..] = nonce;
        Client {
            phase: Phase::Head { websocket_key },
            transmit: vec![Bytes::from(request)],
            flv: TagReader::new(Some(body_prefix)),
            dechunked: BytesMut::new(),
            payload: Bytes::new(),
            // Xorshift must not start at 0.
            mask_state: u32::from_le_bytes([a, b, c, d]) | 1,
        }
    }

    /// The next bytes to send.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        if self.transmit.is_empty() {
            return None;
        }
        Some(self.transmit.remove(0))
    }

    /// Reads what it can of `input`: the next event, or `Ok(None)` when
    /// more bytes are needed. After an error the connection is broken.
    pub fn decode(&mut self, input: &mut BytesMut) -> Result<Option<Event>, Error> {
        let Client {
            phase,
            transmit,
            flv,
            dechunked,
            payload,
            mask_state,
        } = self;
        match phase {
            Phase::Head { websocket_key } => {
                let Some(head) = client::parse_response_head(input, HEAD_BYTES_MAX)? else {
                    return Ok(None);
                };
                input.advance(head.len);
                *phase = match websocket_key {
                    None if head.status == 200 && head.chunked => {
                        Phase::Chunked(Dechunker::default())
                    }
                    None if head.status == 200 => Phase::Plain,
                    None => return Err(status(head.status, 200)),
                    Some(_) if head.status != 101 => return Err(status(head.status, 101)),
                    Some(key) => {
                        if head.websocket_accept != Some(websocket::accept_key(key)) {
                            return Err(Error::Accept);
                        }
                        Phase::WebSocket(Frames::from_server(WS_MESSAGE_BYTES_MAX))
                    }
                };
                Ok(Some(Event::Playing))
            }
            Phase::Plain => Ok(flv.decode(input)?.map(Event::Tag)),
            Phase::Chunked(dechunker) => loop {
                let before = input.len();
                let done = dechunker.decode(input, dechunked)?;
                if let Some(tag) = flv.decode(dechunked)? {
                    return Ok(Some(Event::Tag(tag)));
                }
                if done {
                    *phase = Phase::Ended;
                    return Ok(Some(Event::Ended("server ended the chunked body".into())));
                }
                if input.len() == before {
                    return Ok(None);
                }
            },
            Phase::WebSocket(frames) => loop {
                if let Some(tag) = flv.decode(payload)? {
                    return Ok(Some(Event::Tag(tag)));
                }
                let Some(frame) = frames.decode(input)? else {
                    return Ok(None);
                };
                match frame.opcode {
                    Opcode::Binary | Opcode::Continuation => append(payload, frame.payload),
                    Opcode::Ping => {
                        let mask = next_mask(mask_state);
                        transmit.push(websocket::client_frame(Opcode::Pong, &frame.payload, mask));
                    }
                    Opcode::Pong => {}
                    Opcode::Text => return Err(Error::Text),
                    Opcode::Close => {
                        // Decoding checked the payload.
                        let said = websocket::parse_close(&frame.payload).ok().flatten();
                        let code = said.map_or(websocket::close::NORMAL, |(code, _)| code);
                        let answer = websocket::close_payload(code, "");
                        let mask = next_mask(mask_state);
                        transmit.push(websocket::client_frame(Opcode::Close, &answer, mask));
                        let how = match said {
                            Some((code, "")) => format!("server closed the websocket ({code})"),
                            Some((code, reason)) => {
                                format!("server closed the websocket ({code} {reason})")
                            }
                            None => "server closed the websocket".into(),
                        };
                        *phase = Phase::Ended;
                        return Ok(Some(Event::Ended(how)));
                    }
                }
            },
            Phase::Ended => Ok(None),
        }
    }
}

fn status(status: u16, expected: u16) -> Error {
    Error::Status { status, expected }
}

/// Appends a WebSocket payload to the FLV bytes not yet read: no copy
/// unless a tag straddles frames.
fn append(pending: &mut Bytes, payload: Bytes) {
    if pending.is_empty() {
        *pending = payload;
    } else {
        let mut joined = BytesMut::with_capacity(pending.len() + payload.len());
        joined.extend_from_slice(pending);
        joined.extend_from_slice(&payload);
        *pending = joined.freeze();
    }
}

/// The next mask (xorshift32): RFC 6455 §10.3 asks for unpredictable
/// masks against proxy cache poisoning, which a load generator on its own
/// connections need not fear.
fn next_mask(state: &mut u32) -> [u8; 4] {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    x.to_le_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringcast_rtmp::protocol::message::flv_tag;
    use ringcast_rtmp::session::MediaKind;

    const NONCE: [u8; 16] = *b"0123456789abcdef";
    const FLV_HEADER: &[u8] = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00";

    fn tags() -> Vec<Vec<u8>> {
        vec![
            flv_tag(18, 0, b"\x02\x00\x0aonMetaData"),
            flv_tag(9, 0, &[0x17, 0, 0, 0, 0, 1, 2, 3]),
            flv_tag(8, 0x0100_0023, &[0xAF, 1, 9]),
        ]
    }

    fn expected_tags() -> Vec<Event> {
        let tag = |kind, timestamp_ms, body: &'static [u8]| {
            Event::Tag(Tag {
                kind,
                timestamp_ms,
                body: Bytes::from_static(body),
            })
        };
        vec![
            tag(MediaKind::Data, 0, b"\x02\x00\x0aonMetaD"),
            tag(MediaKind::Video, 0, &[0x17, 0, 0, 0, 0, 1, 2, 3]),
            tag(MediaKind::Audio, 0x0100_0023, &[0xAF, 1, 9]),
        ]
    }

    /// Every event `client` makes of `bytes` handed over in pieces of
    /// `piece`, or the first error.
    fn events(client: &mut Client, bytes: &[u8], piece: usize) -> Result<Vec<Event>, Error> {
        let mut input = BytesMut::new();
        let mut events = Vec::new();
        for chunk in bytes.chunks(piece) {
            input.extend_from_slice(chunk);
            while let Some(event) = client.decode(&mut input)? {
                events.push(event);
            }
        }
        Ok(events)
    }

    fn http(protocol: Protocol) -> Client {
        Client::new(protocol, "h:8080", "/live/cam.flv?k=1", 10, NONCE)
    }

    fn key() -> String {
        websocket::client_key(NONCE)
    }

    fn upgraded() -> Vec<u8> {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            websocket::accept_key(&key())
        )
        .into_bytes()
    }

    #[test]
    fn an_http_flv_body_split_anywhere_gives_playing_then_the_tags() {
        let mut response =
            b"HTTP/1.1 200 OK\r\nContent-Type: video/x-flv\r\nConnection: close\r\n\r\n".to_vec();
        response.extend(FLV_HEADER);
        response.extend(tags().concat());
        for piece in 1..=response.len() {
            let mut client = http(Protocol::HttpFlv);
            assert_eq!(
                client.poll_transmit(),
                Some(Bytes::from(
                    "GET /live/cam.flv?k=1 HTTP/1.1\r\nHost: h:8080\r\nConnection: close\r\n\r\n"
                ))
            );
            assert_eq!(client.poll_transmit(), None);
            let got = events(&mut client, &response, piece).expect("valid");
            let mut expected = vec![Event::Playing];
            expected.extend(expected_tags());
            assert_eq!(got, expected, "pieces of {piece}");
        }
    }

    #[test]
    fn a_chunked_body_gives_the_same_tags_then_its_end() {
        let body = [FLV_HEADER, &tags().concat()].concat();
        let mut response =
            b"HTTP/1.1 200 OK\r\nContent-Type: video/x-flv\r\nTransfer-Encoding: chunked\r\n\r\n"
                .to_vec();
        // Chunks cut across tags: 7 bytes, then 30, then the rest.
        for part in [&body[..7], &body[7..37], &body[37..]] {
            response.extend(format!("{:x}\r\n", part.len()).as_bytes());
            response.extend(part);
            response.extend(b"\r\n");
        }
        response.extend(b"0\r\n\r\n");
        for piece in 1..=response.len() {
            let got = events(&mut http(Protocol::HttpFlv), &response, piece).expect("valid");
            let mut expected = vec![Event::Playing];
            expected.extend(expected_tags());
            expected.push(Event::Ended("server ended the chunked body".into()));
            assert_eq!(got, expected, "pieces of {piece}");
        }
    }

    #[test]
    fn websocket_frames_cut_anywhere_give_the_tags_and_pings_are_answered() {
        let tags = tags();
        let mut response = upgraded();
        response.extend(websocket::server_frame(Opcode::Binary, FLV_HEADER));
        response.extend(websocket::server_frame(Opcode::Binary, &tags[0]));
        response.extend(websocket::server_frame(Opcode::Ping, b"hi"));
        // A tag cut over two frames of one fragmented message.
        let (a, b) = tags[1].split_at(5);
        let mut first = BytesMut::new();
        first.extend_from_slice(&[0x02, a.len() as u8]);
        first.extend_from_slice(a);
        response.extend(first);
        response.extend(websocket::server_frame(Opcode::Continuation, b));
        response.extend(websocket::server_frame(Opcode::Binary, &tags[2]));
        let close = websocket::close_payload(websocket::close::GOING_AWAY, "stream ended");
        response.extend(websocket::server_frame(Opcode::Close, &close));
        for piece in [1, 2, 3, 7, 50, response.len()] {
            let mut client = http(Protocol::WsFlv);
            let request = client.poll_transmit().expect("the upgrade request");
            assert_eq!(
                request,
                websocket::upgrade_request("h:8080", "/live/cam.flv?k=1", &key(), None)
            );
            let got = events(&mut client, &response, piece).expect("valid");
            let mut expected = vec![Event::Playing];
            expected.extend(expected_tags());
            expected.push(Event::Ended(
                "server closed the websocket (1001 stream ended)".into(),
            ));
            assert_eq!(got, expected, "pieces of {piece}");
            // The pong, then the close, both masked as a client's are.
            let mut sent = BytesMut::new();
            while let Some(bytes) = client.poll_transmit() {
                sent.extend_from_slice(&bytes);
            }
            let mut server = Frames::from_client(125);
            let pong = server.decode(&mut sent).expect("valid").expect("a frame");
            assert_eq!((pong.opcode, &pong.payload[..]), (Opcode::Pong, &b"hi"[..]));
            let close = server.decode(&mut sent).expect("valid").expect("a frame");
            assert_eq!(
                (close.opcode, &close.payload[..]),
                (Opcode::Close, &[0x03, 0xE9][..])
            );
            assert!(sent.is_empty());
        }
    }

    #[test]
    fn refusals_and_broken_answers_are_named_errors() {
        let first_error = |protocol, response: &[u8]| {
            events(&mut http(protocol), response, response.len()).expect_err("an error")
        };
        let not_found = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        assert!(matches!(
            first_error(Protocol::HttpFlv, not_found),
            Error::Status {
                status: 404,
                expected: 200
            }
        ));
        let ok = b"HTTP/1.1 200 OK\r\n\r\nFLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00";
        assert!(matches!(
            first_error(Protocol::WsFlv, ok),
            Error::Status {
                status: 200,
                expected: 101
            }
        ));
        let wrong_accept = b"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: x\r\n\r\n";
        assert!(matches!(
            first_error(Protocol::WsFlv, wrong_accept),
            Error::Accept
        ));
        let mut text = upgraded();
        text.extend(websocket::server_frame(Opcode::Text, b"FLV"));
        assert!(matches!(first_error(Protocol::WsFlv, &text), Error::Text));
        let mut html = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        html.extend(b"<html>not a stream</html>");
        assert!(matches!(
            first_error(Protocol::HttpFlv, &html),
            Error::Flv(FlvError::Signature)
        ));
        let endless = vec![b'x'; HEAD_BYTES_MAX + 1];
        assert!(matches!(
            first_error(Protocol::HttpFlv, &endless),
            Error::Head(_)
        ));
    }
}
