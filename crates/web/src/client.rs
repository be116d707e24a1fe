//! The client side of HTTP/1.1, as far as a player needs it: the request it
//! sends, and the head of the response it reads (RFC 9112 §2–§4, §6).
//!
//! The load generator and the tests are the clients: they ask for a stream
//! over HTTP-FLV or WebSocket and read the status and the few headers that
//! tell them how the body comes (`Content-Type`, `Transfer-Encoding`, the
//! WebSocket handshake answer). This module must not do I/O; it does not
//! read bodies (chunked decoding belongs to the caller) and it keeps no
//! header it does not name.

/// Headers parsed in a response head; a head with more is refused. Our
/// server sends about ten; 64 leaves room for proxies in between while
/// keeping httparse's header array on the stack (64 × 32 bytes).
pub const HEADERS_MAX: usize = 64;

/// What a client needs from a response head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status code, such as 200 or 101.
    pub status: u16,
    /// The first `Content-Type`, as sent.
    pub content_type: Option<String>,
    /// The first `Sec-WebSocket-Accept`: compare it with
    /// [`crate::websocket::accept_key`] of the key sent (RFC 6455 §4.1).
    pub websocket_accept: Option<String>,
    /// The first `Sec-WebSocket-Protocol`: the subprotocol the server chose.
    pub websocket_protocol: Option<String>,
    /// The body is chunked: the last transfer coding named is `chunked`
    /// (RFC 9112 §6.1).
    pub chunked: bool,
    /// Bytes of the head, the final CRLFCRLF included: the body starts
    /// there.
    pub len: usize,
}

/// A response head that cannot be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("response head has no end within max {max} bytes")]
    TooLong { max: usize },
    #[error("response head: {0}")]
    Parse(httparse::Error),
    #[error("response head: {header} value is not utf-8")]
    NotUtf8 { header: &'static str },
}

/// Parses a response head with httparse (up to [`HEADERS_MAX`] headers);
/// `Ok(None)` until it is complete. An error when `max_bytes` bytes hold no
/// end of head, or when httparse refuses the bytes (more headers than
/// [`HEADERS_MAX`] included). Only the first `max_bytes` of `input` are
/// read, so the work is bounded whatever the caller has buffered.
pub fn parse_response_head(
    input: &[u8],
    max_bytes: usize,
) -> Result<Option<ResponseHead>, HeadError> {
    let window = input.get(..max_bytes).unwrap_or(input);
    let mut headers = [httparse::EMPTY_HEADER; HEADERS_MAX];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(window).map_err(HeadError::Parse)? {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial if window.len() >= max_bytes => {
            return Err(HeadError::TooLong { max: max_bytes });
        }
        httparse::Status::Partial => return Ok(None),
    };
    // A complete parse always has a status code; httparse's type cannot say so.
    let status = response
        .code
        .ok_or(HeadError::Parse(httparse::Error::Status))?;
    let headers = &*response.headers;
    Ok(Some(ResponseHead {
        status,
        content_type: first(headers, "content-type")?,
        websocket_accept: first(headers, "sec-websocket-accept")?,
        websocket_protocol: first(headers, "sec-websocket-protocol")?,
        chunked: chunked(headers)?,
        len,
    }))
}

/// A plain GET (or HEAD) request for `target`, with Host and
/// `Connection: close`: one response per connection, whose end is the
/// end of the stream.
pub fn get_request(method: &str, host: &str, target: &str) -> String {
    debug_assert!(
        [method, host, target]
            .iter()
            .all(|field| !field.contains(['\r', '\n', ' '])),
        "spaces or line breaks in a request line's fields"
    );
    format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
}

/// The value of the first header called `name`, trimmed.
fn first(headers: &[httparse::Header], name: &'static str) -> Result<Option<String>, HeadError> {
    let Some(header) = headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)) else {
        return Ok(None);
    };
    Ok(Some(utf8(header.value, name)?.trim().to_owned()))
}

/// Whether the last transfer coding is `chunked` (RFC 9112 §6.1). Several
/// Transfer-Encoding lines make one list (RFC 9110 §5.3), so the last
/// coding is the last one named on any line.
fn chunked(headers: &[httparse::Header]) -> Result<bool, HeadError> {
    let mut chunked = false;
    for header in headers {
        if !header.name.eq_ignore_ascii_case("transfer-encoding") {
            continue;
        }
        let value = utf8(header.value, "transfer-encoding")?;
        if let Some(last) = value.rsplit(',').map(str::trim).find(|c| !c.is_empty()) {
            chunked = last.eq_ignore_ascii_case("chunked");
        }
    }
    Ok(chunked)
}

fn utf8<'a>(value: &'a [u8], header: &'static str) -> Result<&'a str, HeadError> {
    std::str::from_utf8(value).map_err(|_| HeadError::NotUtf8 { header })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::websocket;

    const FLV_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\n\
        Content-Type: video/x-flv\r\n\
        Transfer-Encoding: chunked\r\n\
        Access-Control-Allow-Origin: *\r\n\
        \r\n";

    #[test]
    fn parses_an_http_flv_head_and_leaves_the_body() {
        let mut bytes = FLV_HEAD.to_vec();
        bytes.extend_from_slice(b"d\r\nFLV\x01\x05\0\0\0\x09\0\0\0\0\r\n");
        let head = parse_response_head(&bytes, 4096).unwrap().unwrap();
        assert_eq!(
            head,
            ResponseHead {
                status: 200,
                content_type: Some("video/x-flv".into()),
                websocket_accept: None,
                websocket_protocol: None,
                chunked: true,
                len: FLV_HEAD.len(),
            }
        );
        assert!(bytes[head.len..].starts_with(b"d\r\nFLV"));
    }

    #[test]
    fn parses_a_websocket_upgrade_answer() {
        let accept = websocket::accept_key("dGhlIHNhbXBsZSBub25jZQ==");
        let bytes = format!(
            "HTTP/1.1 101 Switching Protocols\r\n\
             upgrade: websocket\r\n\
             connection: Upgrade\r\n\
             sec-websocket-accept: {accept}\r\n\
             SEC-WEBSOCKET-PROTOCOL:  flv \r\n\
             \r\n"
        );
        let head = parse_response_head(bytes.as_bytes(), 4096)
            .unwrap()
            .unwrap();
        assert_eq!(head.status, 101);
        assert_eq!(
            head.websocket_accept.as_deref(),
            Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );
        assert_eq!(head.websocket_protocol.as_deref(), Some("flv"));
        assert_eq!(head.content_type, None);
        assert!(!head.chunked);
        assert_eq!(head.len, bytes.len());
    }

    #[test]
    fn is_incomplete_until_the_blank_line() {
        for len in 0..FLV_HEAD.len() {
            assert_eq!(
                parse_response_head(&FLV_HEAD[..len], 4096),
                Ok(None),
                "{len}"
            );
        }
    }

    #[test]
    fn refuses_a_head_with_no_end_within_max_bytes() {
        let max = FLV_HEAD.len() - 1;
        assert_eq!(
            parse_response_head(FLV_HEAD, max),
            Err(HeadError::TooLong { max })
        );
        assert_eq!(
            parse_response_head(&FLV_HEAD[..max], max),
            Err(HeadError::TooLong { max })
        );
        assert_eq!(parse_response_head(&FLV_HEAD[..max - 1], max), Ok(None));
        // Exactly max_bytes is enough.
        let head = parse_response_head(FLV_HEAD, FLV_HEAD.len()).unwrap();
        assert_eq!(head.map(|head| head.len), Some(FLV_HEAD.len()));
        assert_eq!(
            HeadError::TooLong { max: 8192 }.to_string(),
            "response head has no end within max 8192 bytes"
        );
    }

    #[test]
    fn refuses_what_httparse_refuses() {
        assert_eq!(
            parse_response_head(b"HTTP/1.1 2x0 OK\r\n\r\n", 4096),
            Err(HeadError::Parse(httparse::Error::Status))
        );
        assert_eq!(
            parse_response_head(b"GET / HTTP/1.1\r\n\r\n", 4096),
            Err(HeadError::Parse(httparse::Error::Version))
        );
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..=HEADERS_MAX {
            many.extend_from_slice(format!("x-{i}: y\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(
            parse_response_head(&many, 1 << 16),
            Err(HeadError::Parse(httparse::Error::TooManyHeaders))
        );
    }

    #[test]
    fn refuses_a_kept_header_that_is_not_utf8() {
        let bytes = b"HTTP/1.1 200 OK\r\nContent-Type: video/\xff\r\n\r\n";
        assert_eq!(
            parse_response_head(bytes, 4096),
            Err(HeadError::NotUtf8 {
                header: "content-type"
            })
        );
        // Headers it does not keep are not looked at.
        let bytes = b"HTTP/1.1 200 OK\r\nServer: \xff\r\n\r\n";
        assert!(parse_response_head(bytes, 4096).unwrap().is_some());
    }

    #[test]
    fn chunked_is_the_last_transfer_coding() {
        let head = |te: &str| {
            let bytes = format!("HTTP/1.1 200 OK\r\n{te}\r\n");
            parse_response_head(bytes.as_bytes(), 4096)
                .unwrap()
                .unwrap()
                .chunked
        };
        assert!(head("Transfer-Encoding: chunked\r\n"));
        assert!(head("Transfer-Encoding: gzip, Chunked\r\n"));
        assert!(head(
            "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"
        ));
        assert!(!head("Transfer-Encoding: chunked, gzip\r\n"));
        assert!(!head("Content-Length: 10\r\n"));
    }

    #[test]
    fn get_request_is_a_complete_http_request() {
        let request = get_request("HEAD", "127.0.0.1:8080", "/live/a.flv");
        assert_eq!(
            request,
            "HEAD /live/a.flv HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: close\r\n\r\n"
        );
        let mut headers = [httparse::EMPTY_HEADER; 4];
        let mut parsed = httparse::Request::new(&mut headers);
        let status = parsed.parse(request.as_bytes()).unwrap();
        assert_eq!(status, httparse::Status::Complete(request.len()));
        assert_eq!(parsed.method, Some("HEAD"));
        assert_eq!(parsed.path, Some("/live/a.flv"));
    }
}
