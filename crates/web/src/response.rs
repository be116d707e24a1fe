//! The response heads ringcast sends players: the FLV stream, the
//! WebSocket upgrade, the player page's files, a CORS preflight's answer
//! and refusals. These close the connection when done (`Connection:
//! close`): a live body ends only when the connection does (RFC 9112
//! §6.3: close-delimited, which ffmpeg, VLC, flv.js and mpegts.js read),
//! and an FLV player makes one request per connection. HLS objects
//! ([`crate::object`]) and their refusals may keep it open.

use bytes::{BufMut, Bytes, BytesMut};

/// What every response says about who may read it (CORS).
#[derive(Clone, Copy, Debug)]
pub struct Cors<'a> {
    /// `Access-Control-Allow-Origin`: `*` or one origin.
    pub allow_origin: &'a str,
}

/// `200` for an HTTP-FLV stream; its body (the FLV bytes) follows until
/// the connection closes.
pub fn flv_stream(cors: Cors<'_>) -> Bytes {
    let mut head = status_line(200);
    head.put_slice(b"Content-Type: video/x-flv\r\nCache-Control: no-cache, no-store\r\n");
    finish(head, cors)
}

/// `101` accepting a WebSocket upgrade (RFC 6455 §4.2.2).
pub fn switching_protocols(accept: &str, protocol: Option<&str>) -> Bytes {
    let mut head = BytesMut::with_capacity(192);
    head.put_slice(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n");
    head.put_slice(b"Connection: Upgrade\r\nSec-WebSocket-Accept: ");
    head.put_slice(accept.as_bytes());
    if let Some(protocol) = protocol {
        head.put_slice(b"\r\nSec-WebSocket-Protocol: ");
        head.put_slice(protocol.as_bytes());
    }
    head.put_slice(b"\r\nServer: ringcast\r\n\r\n");
    head.freeze()
}

/// `200` for a file of `len` bytes (the player page), served whole.
pub fn file(content_type: &str, len: usize, cors: Cors<'_>) -> Bytes {
    let mut head = status_line(200);
    put_header(&mut head, "Content-Type", content_type);
    put_header(&mut head, "Content-Length", &len.to_string());
    head.put_slice(b"Cache-Control: no-cache\r\n");
    finish(head, cors)
}

/// `204` answering a CORS preflight: the methods we serve, whatever
/// headers the page asked to send.
pub fn preflight(cors: Cors<'_>) -> Bytes {
    let mut head = status_line(204);
    head.put_slice(b"Access-Control-Allow-Methods: GET, HEAD, OPTIONS\r\n");
    head.put_slice(b"Access-Control-Allow-Headers: *\r\nAccess-Control-Max-Age: 86400\r\n");
    finish(head, cors)
}

/// A refusal with `status` and a one-line plain text body saying why;
/// the connection closes after it.
pub fn error(status: u16, why: &str, cors: Cors<'_>) -> Bytes {
    error_on(status, why, cors, false)
}

/// Like [`error`], keeping the connection open when `keep_alive` (an HLS
/// player's next request may follow on it).
pub fn error_on(status: u16, why: &str, cors: Cors<'_>, keep_alive: bool) -> Bytes {
    let body = format!("{status} {}: {why}\n", reason(status));
    let mut head = status_line(status);
    head.put_slice(b"Content-Type: text/plain; charset=utf-8\r\n");
    put_header(&mut head, "Content-Length", &body.len().to_string());
    match status {
        405 => head.put_slice(b"Allow: GET, HEAD, OPTIONS\r\n"),
        426 => head.put_slice(b"Sec-WebSocket-Version: 13\r\n"),
        _ => {}
    }
    let mut response = BytesMut::from(&finish_with(head, cors, keep_alive)[..]);
    response.put_slice(body.as_bytes());
    response.freeze()
}

/// The reason phrase of the statuses we send.
pub fn reason(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        206 => "Partial Content",
        304 => "Not Modified",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        416 => "Range Not Satisfiable",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

pub(crate) fn status_line(status: u16) -> BytesMut {
    let mut head = BytesMut::with_capacity(256);
    head.put_slice(format!("HTTP/1.1 {status} {}\r\n", reason(status)).as_bytes());
    head
}

pub(crate) fn put_header(head: &mut BytesMut, name: &str, value: &str) {
    head.put_slice(name.as_bytes());
    head.put_slice(b": ");
    head.put_slice(value.as_bytes());
    head.put_slice(b"\r\n");
}

/// The headers every response ends with, and the blank line.
fn finish(head: BytesMut, cors: Cors<'_>) -> Bytes {
    finish_with(head, cors, false)
}

/// [`finish`], saying whether the connection stays open.
pub(crate) fn finish_with(mut head: BytesMut, cors: Cors<'_>, keep_alive: bool) -> Bytes {
    put_header(&mut head, "Access-Control-Allow-Origin", cors.allow_origin);
    if cors.allow_origin != "*" {
        head.put_slice(b"Vary: Origin\r\n");
    }
    if keep_alive {
        head.put_slice(b"Connection: keep-alive\r\nServer: ringcast\r\n\r\n");
    } else {
        head.put_slice(b"Connection: close\r\nServer: ringcast\r\n\r\n");
    }
    head.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::parse_response_head;

    const ANY: Cors<'static> = Cors { allow_origin: "*" };

    #[test]
    fn the_flv_head_is_close_delimited_with_cors() {
        let head = flv_stream(ANY);
        let text = std::str::from_utf8(&head).expect("ascii");
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("Content-Type: video/x-flv\r\n"), "{text}");
        assert!(
            text.contains("Access-Control-Allow-Origin: *\r\n"),
            "{text}"
        );
        assert!(text.contains("Connection: close\r\n"), "{text}");
        assert!(!text.contains("Content-Length"), "{text}");
        let parsed = parse_response_head(&head, 4096)
            .expect("valid")
            .expect("whole");
        assert_eq!((parsed.status, parsed.len), (200, head.len()));
        assert_eq!(parsed.content_type.as_deref(), Some("video/x-flv"));
    }

    #[test]
    fn the_upgrade_echoes_accept_and_protocol() {
        let head = switching_protocols("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", Some("flv"));
        let parsed = parse_response_head(&head, 4096)
            .expect("valid")
            .expect("whole");
        assert_eq!(parsed.status, 101);
        assert_eq!(
            parsed.websocket_accept.as_deref(),
            Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );
        assert_eq!(parsed.websocket_protocol.as_deref(), Some("flv"));
    }

    #[test]
    fn errors_carry_their_status_reason_and_body() {
        let one = Cors {
            allow_origin: "https://a.example",
        };
        let response = error(405, "POST is not served", one);
        let parsed = parse_response_head(&response, 4096)
            .expect("valid")
            .expect("whole");
        assert_eq!(parsed.status, 405);
        let text = std::str::from_utf8(&response).expect("ascii");
        assert!(text.contains("Allow: GET, HEAD, OPTIONS\r\n"), "{text}");
        assert!(text.contains("Vary: Origin\r\n"), "{text}");
        let body = &text[parsed.len..];
        assert_eq!(body, "405 Method Not Allowed: POST is not served\n");
        assert!(text.contains(&format!("Content-Length: {}\r\n", body.len())));
    }

    #[test]
    fn a_preflight_allows_our_methods() {
        let text = String::from_utf8(preflight(ANY).to_vec()).expect("ascii");
        assert!(text.starts_with("HTTP/1.1 204 No Content\r\n"), "{text}");
        assert!(text.contains("Access-Control-Allow-Methods: GET, HEAD, OPTIONS\r\n"));
    }
}
