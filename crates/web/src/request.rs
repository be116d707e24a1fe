//! A player's request head: parsed with `httparse`, then checked, into
//! what to serve ([`Request`]) or the status to refuse it with
//! ([`Refusal`]).
//!
//! What it owns: the size of a head (at most [`HTTP_HEAD_BYTES_MAX`]),
//! the methods served (GET, HEAD, OPTIONS; RFC 9110 §9), the path's
//! percent-decoding (RFC 3986 §2.1) and what a path may hold, and the
//! checks of a WebSocket opening handshake (RFC 6455 §4.2.1). It must not
//! decide what a path names (the server's routing) beyond its shape, nor
//! decode the query: keys in it are the access rules' to read.

use ringcast_rtmp::limits::{HTTP_HEAD_BYTES_MAX, HTTP_HEADERS_MAX};

use crate::websocket;

/// The methods a player's request may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    /// A browser's CORS preflight.
    Options,
}

/// A request worth serving.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// The path, percent-decoded: starts with `/`, no `..` segment, no
    /// NUL.
    pub path: String,
    /// What followed `?`, as sent (empty: none).
    pub query: String,
    /// A WebSocket opening handshake, checked.
    pub websocket: Option<Upgrade>,
    /// `Origin`, for the CORS answer.
    pub origin: Option<String>,
    /// `Range`, as sent (HLS media objects honour one byte range).
    pub range: Option<String>,
    /// `If-None-Match`, as sent.
    pub if_none_match: Option<String>,
    /// The client keeps the connection for more requests: HTTP/1.1
    /// without `Connection: close`, or HTTP/1.0 with `keep-alive`.
    pub keep_alive: bool,
    /// Bytes of the head, its blank line included: what follows is the
    /// body (a player sends none) or WebSocket frames.
    pub len: usize,
}

/// A valid WebSocket opening handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upgrade {
    /// `Sec-WebSocket-Accept` for the answer.
    pub accept: String,
    /// The first subprotocol the client offered, echoed in the answer:
    /// Chrome fails a handshake that offered one and got none back.
    pub protocol: Option<String>,
}

/// Why a request is refused; [`Refusal::status`] is the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    #[error("request head over {HTTP_HEAD_BYTES_MAX} bytes")]
    HeadTooLarge,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("bad path: {0}")]
    BadPath(&'static str),
    #[error("bad websocket handshake: {0}")]
    BadUpgrade(&'static str),
    /// A WebSocket version other than 13 (RFC 6455 §4.4).
    #[error("websocket version other than 13")]
    WebSocketVersion,
}

impl Refusal {
    /// The HTTP status this refusal is answered with.
    pub fn status(self) -> u16 {
        match self {
            Refusal::Malformed(_) | Refusal::BadPath(_) | Refusal::BadUpgrade(_) => 400,
            Refusal::HeadTooLarge => 431,
            Refusal::MethodNotAllowed => 405,
            Refusal::WebSocketVersion => 426,
        }
    }
}

/// Parses the request head at the start of `input`. `Ok(None)`: not
/// complete yet (and within the size bound); more bytes needed.
pub fn parse(input: &[u8]) -> Result<Option<Request>, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; HTTP_HEADERS_MAX];
    let mut request = httparse::Request::new(&mut headers);
    let len = match request.parse(input) {
        Ok(httparse::Status::Complete(len)) if len > HTTP_HEAD_BYTES_MAX => {
            return Err(Refusal::HeadTooLarge);
        }
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if input.len() >= HTTP_HEAD_BYTES_MAX => {
            return Err(Refusal::HeadTooLarge);
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Refusal::HeadTooLarge),
        Err(error) => return Err(Refusal::Malformed(malformed(error))),
    };
    let method = match request.method {
        Some("GET") => Method::Get,
        Some("HEAD") => Method::Head,
        Some("OPTIONS") => Method::Options,
        _ => return Err(Refusal::MethodNotAllowed),
    };
    let target = request.path.ok_or(Refusal::Malformed("no target"))?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let path = decode_path(path)?;
    let header = |name: &str| {
        (request.headers.iter())
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| std::str::from_utf8(h.value).map_err(|_| Refusal::Malformed("header value")))
            .transpose()
    };
    let origin = header("origin")?.map(str::to_owned);
    let range = header("range")?.map(str::to_owned);
    let if_none_match = header("if-none-match")?.map(str::to_owned);
    let connection = |token: &str| {
        (request.headers.iter())
            .filter(|h| h.name.eq_ignore_ascii_case("connection"))
            .filter_map(|h| std::str::from_utf8(h.value).ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    let keep_alive = match request.version {
        Some(1) => !connection("close"),
        _ => connection("keep-alive"),
    };
    let websocket = match header("upgrade")? {
        Some(upgrade) if upgrade.trim().eq_ignore_ascii_case("websocket") => {
            Some(upgrade_of(method, request.headers)?)
        }
        _ => None,
    };
    Ok(Some(Request {
        method,
        path,
        query: query.to_owned(),
        websocket,
        origin,
        range,
        if_none_match,
        keep_alive,
        len,
    }))
}

/// Checks a WebSocket opening handshake (RFC 6455 §4.2.1).
fn upgrade_of(method: Method, headers: &[httparse::Header<'_>]) -> Result<Upgrade, Refusal> {
    let values = |name: &'static str| {
        (headers.iter())
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .filter_map(|h| std::str::from_utf8(h.value).ok())
    };
    if method != Method::Get {
        return Err(Refusal::BadUpgrade("the opening handshake is a GET"));
    }
    let connection_upgrade = values("connection")
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    if !connection_upgrade {
        return Err(Refusal::BadUpgrade("no `Connection: Upgrade`"));
    }
    if values("sec-websocket-version").next().map(str::trim) != Some("13") {
        return Err(Refusal::WebSocketVersion);
    }
    let key = values("sec-websocket-key")
        .next()
        .map(str::trim)
        .filter(|key| websocket::is_valid_key(key))
        .ok_or(Refusal::BadUpgrade("no valid Sec-WebSocket-Key"))?;
    let protocol = values("sec-websocket-protocol")
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find(|p| !p.is_empty() && p.bytes().all(is_token_byte))
        .map(str::to_owned);
    Ok(Upgrade {
        accept: websocket::accept_key(key),
        protocol,
    })
}

/// A `tchar` of RFC 9110 §5.6.2: what a subprotocol name may hold, so the
/// one echoed cannot break the response head.
fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// The path, percent-decoded and checked: it must start with `/`, be
/// UTF-8, and hold no NUL, control character or `..` segment.
fn decode_path(raw: &str) -> Result<String, Refusal> {
    if !raw.starts_with('/') {
        return Err(Refusal::BadPath("not an absolute path"));
    }
    let mut bytes = Vec::with_capacity(raw.len());
    let mut rest = raw.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' {
            let (hex, tail) = tail
                .split_at_checked(2)
                .ok_or(Refusal::BadPath("percent"))?;
            let text = std::str::from_utf8(hex).map_err(|_| Refusal::BadPath("percent"))?;
            if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Refusal::BadPath("percent"));
            }
            let value = u8::from_str_radix(text, 16).map_err(|_| Refusal::BadPath("percent"))?;
            bytes.push(value);
            rest = tail;
        } else {
            bytes.push(byte);
            rest = tail;
        }
    }
    let path = String::from_utf8(bytes).map_err(|_| Refusal::BadPath("not UTF-8"))?;
    if path.chars().any(char::is_control) {
        return Err(Refusal::BadPath("a control character"));
    }
    if path.split('/').any(|segment| segment == "..") {
        return Err(Refusal::BadPath("a `..` segment"));
    }
    Ok(path)
}

fn malformed(error: httparse::Error) -> &'static str {
    match error {
        httparse::Error::HeaderName => "header name",
        httparse::Error::HeaderValue => "header value",
        httparse::Error::NewLine => "line ending",
        httparse::Error::Status => "status",
        httparse::Error::Token => "method or token",
        httparse::Error::TooManyHeaders => "too many headers",
        httparse::Error::Version => "HTTP version",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Request {
        parse(text.as_bytes()).expect("valid").expect("complete")
    }

    #[test]
    fn a_player_request_is_parsed_with_its_query() {
        let request = parsed("GET /live/cam.flv?key=a%2Bb HTTP/1.1\r\nHost: x\r\n\r\nrest");
        assert_eq!(request.method, Method::Get);
        assert_eq!(request.path, "/live/cam.flv");
        assert_eq!(request.query, "key=a%2Bb");
        assert_eq!(request.websocket, None);
        assert_eq!(
            request.len,
            "GET /live/cam.flv?key=a%2Bb HTTP/1.1\r\nHost: x\r\n\r\n".len()
        );
    }

    #[test]
    fn a_partial_head_asks_for_more() {
        assert_eq!(parse(b"GET /live/cam.flv HTTP/1.1\r\nHost"), Ok(None));
        assert_eq!(parse(b""), Ok(None));
    }

    #[test]
    fn methods_other_than_get_head_options_are_not_allowed() {
        for method in ["POST", "PUT", "DELETE", "PATCH", "TRACE", "CONNECT", "BREW"] {
            let text = format!("{method} /live/cam.flv HTTP/1.1\r\n\r\n");
            assert_eq!(
                parse(text.as_bytes()),
                Err(Refusal::MethodNotAllowed),
                "{method}"
            );
        }
        assert_eq!(parsed("HEAD / HTTP/1.1\r\n\r\n").method, Method::Head);
        assert_eq!(
            parsed("OPTIONS /a/b.flv HTTP/1.1\r\n\r\n").method,
            Method::Options
        );
    }

    #[test]
    fn malformed_heads_are_bad_requests() {
        for text in [
            "GET /live/cam.flv\r\n\r\n",
            "GET /live/cam.flv HTTP/9.9\r\n\r\n",
            "GET /live/cam.flv HTTP/1.1\r\nno colon\r\n\r\n",
            "GET /live/cam.flv HTTP/1.1\r\nBad Name: x\r\n\r\n",
            "\x01\x02\x03\r\n\r\n",
        ] {
            let refusal = parse(text.as_bytes()).expect_err(text);
            assert_eq!(refusal.status(), 400, "{text:?}: {refusal}");
        }
    }

    #[test]
    fn heads_over_the_bound_are_refused_with_431() {
        let big = format!(
            "GET / HTTP/1.1\r\nX: {}\r\n\r\n",
            "a".repeat(HTTP_HEAD_BYTES_MAX)
        );
        assert_eq!(parse(big.as_bytes()), Err(Refusal::HeadTooLarge));
        // Refused before the end of the head arrives.
        let endless = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(HTTP_HEAD_BYTES_MAX));
        assert_eq!(parse(endless.as_bytes()), Err(Refusal::HeadTooLarge));
        let many: String = (0..=HTTP_HEADERS_MAX)
            .map(|i| format!("H{i}: v\r\n"))
            .collect();
        let text = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(parse(text.as_bytes()).map_err(Refusal::status), Err(431));
    }

    #[test]
    fn paths_are_percent_decoded_and_checked() {
        assert_eq!(
            parsed("GET /live/my%20cam.flv HTTP/1.1\r\n\r\n").path,
            "/live/my cam.flv"
        );
        for path in [
            "/live/../etc/passwd",
            "/live/%2e%2e/x.flv",
            "/live/a%00.flv",
            "/live/a%0a.flv",
            "/live/a%zz.flv",
            "/live/a%2.flv",
            "/live/a%",
            "/live/%ff%fe.flv",
            "live/cam.flv",
        ] {
            let text = format!("GET {path} HTTP/1.1\r\n\r\n");
            let refusal = parse(text.as_bytes()).expect_err(path);
            assert!(
                matches!(refusal, Refusal::BadPath(_)),
                "{path}: {refusal:?}"
            );
            assert_eq!(refusal.status(), 400);
        }
    }

    const UPGRADE: &str = "GET /live/cam.flv HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
                           Connection: keep-alive, Upgrade\r\n\
                           Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                           Sec-WebSocket-Version: 13\r\n";

    #[test]
    fn a_websocket_handshake_gets_its_accept_key_and_protocol() {
        let request = parsed(&format!("{UPGRADE}Origin: https://a.example\r\n\r\n"));
        let upgrade = request.websocket.expect("an upgrade");
        assert_eq!(upgrade.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(upgrade.protocol, None);
        assert_eq!(request.origin.as_deref(), Some("https://a.example"));
        let request = parsed(&format!(
            "{UPGRADE}Sec-WebSocket-Protocol: flv, chat\r\n\r\n"
        ));
        assert_eq!(
            request.websocket.expect("upgrade").protocol.as_deref(),
            Some("flv")
        );
    }

    #[test]
    fn bad_websocket_handshakes_are_refused() {
        let without = |header: &str| {
            let text: String = UPGRADE
                .split_inclusive("\r\n")
                .filter(|line| !line.starts_with(header))
                .collect();
            parse(format!("{text}\r\n").as_bytes())
        };
        assert!(matches!(without("Connection"), Err(Refusal::BadUpgrade(_))));
        assert!(matches!(
            without("Sec-WebSocket-Key"),
            Err(Refusal::BadUpgrade(_))
        ));
        assert_eq!(
            without("Sec-WebSocket-Version"),
            Err(Refusal::WebSocketVersion)
        );
        assert_eq!(Refusal::WebSocketVersion.status(), 426);
        let short_key = UPGRADE.replace("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ=");
        assert!(matches!(
            parse(format!("{short_key}\r\n").as_bytes()),
            Err(Refusal::BadUpgrade(_))
        ));
        let head = UPGRADE.replacen("GET", "HEAD", 1);
        assert!(matches!(
            parse(format!("{head}\r\n").as_bytes()),
            Err(Refusal::BadUpgrade(_))
        ));
    }
}
