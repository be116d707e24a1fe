//! HTTP/1.1 on a keep-alive connection, the player's side (RFC 9112): a
//! GET that leaves the connection open, and the response read as it
//! arrives: its status, its body in pieces, and at its end whether the
//! connection can carry the next request. A browser fetching a live
//! playlist and its parts does no more: one request at a time per
//! connection, no pipelining.
//!
//! The head is `ringcast_web::client`'s; this adds what keep-alive needs:
//! the body's framing (`Content-Length`, chunked, or the end of the
//! connection, §6.3) and `Connection: close`. Pure: bytes in, events out.

use bytes::{Buf, Bytes, BytesMut};

use crate::chunked::{ChunkedError, Dechunker};
use crate::http_flv::HEAD_BYTES_MAX;
use ringcast_web::client::{self, HeadError};

/// A chunked body's trailer section longer than this is refused: it is
/// read line by line only to find its end, and servers send none.
pub const TRAILER_BYTES_MAX: usize = HEAD_BYTES_MAX;

/// A GET of `target` (`/path?query`) on `authority` (`host:port`) that
/// keeps the connection open for the next.
pub fn request(authority: &str, target: &str) -> Bytes {
    debug_assert!(
        [authority, target]
            .iter()
            .all(|field| !field.contains(['\r', '\n', ' '])),
        "spaces or line breaks in a request line's fields"
    );
    Bytes::from(format!(
        "GET {target} HTTP/1.1\r\nHost: {authority}\r\nConnection: keep-alive\r\nAccept: */*\r\n\r\n"
    ))
}

/// What the bytes of a response meant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The final response's head (interim 1xx heads are skipped).
    Head {
        status: u16,
        content_length: Option<u64>,
    },
    /// The next piece of the body.
    Body(Bytes),
    /// The response is over; `reusable`: the connection can carry the
    /// next request.
    End { reusable: bool },
}

/// Why a response cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Head(#[from] HeadError),
    #[error("response head: Content-Length {0:?} is not one number")]
    ContentLength(String),
    #[error("chunked body: {0}")]
    Chunked(#[from] ChunkedError),
    #[error("chunked body: trailer longer than max {TRAILER_BYTES_MAX} bytes")]
    TrailerTooLong,
    #[error("the server closed the connection before answering")]
    ClosedBeforeAnswer,
    #[error("the server closed the connection inside a response")]
    Truncated,
}

/// One response on a connection.
#[derive(Debug)]
pub struct Response {
    phase: Phase,
    /// The head allows another request on the connection.
    reusable: bool,
    /// Body bytes out of their chunks.
    dechunked: BytesMut,
}

#[derive(Debug)]
enum Phase {
    Head,
    /// Body bytes still to come.
    Length(u64),
    Chunked(Dechunker),
    /// The trailer section after the last chunk.
    Trailer,
    /// The body runs to the end of the connection.
    Close,
    Done,
}

impl Default for Response {
    fn default() -> Self {
        Response::new()
    }
}

impl Response {
    pub fn new() -> Response {
        Response {
            phase: Phase::Head,
            reusable: false,
            dechunked: BytesMut::new(),
        }
    }

    /// Reads what it can of `input`: the next event, or `Ok(None)` when
    /// more bytes are needed (or the response is over). After an error
    /// the connection is broken.
    pub fn decode(&mut self, input: &mut BytesMut) -> Result<Option<Event>, Error> {
        loop {
            match &mut self.phase {
                Phase::Head => return self.head(input),
                Phase::Length(0) => {
                    self.phase = Phase::Done;
                    return Ok(Some(Event::End {
                        reusable: self.reusable,
                    }));
                }
                Phase::Length(left) => {
                    if input.is_empty() {
                        return Ok(None);
                    }
                    let n = usize::try_from(*left).map_or(input.len(), |l| l.min(input.len()));
                    *left -= n as u64;
                    return Ok(Some(Event::Body(input.split_to(n).freeze())));
                }
                Phase::Chunked(dechunker) => {
                    let last = dechunker.decode(input, &mut self.dechunked)?;
                    if last {
                        self.phase = Phase::Trailer;
                    }
                    if !self.dechunked.is_empty() {
                        return Ok(Some(Event::Body(self.dechunked.split().freeze())));
                    }
                    if !last {
                        return Ok(None);
                    }
                }
                Phase::Trailer => {
                    let window = input.get(..TRAILER_BYTES_MAX).unwrap_or(input);
                    let Some(end) = window.windows(2).position(|w| w == b"\r\n") else {
                        if window.len() >= TRAILER_BYTES_MAX {
                            return Err(Error::TrailerTooLong);
                        }
                        return Ok(None);
                    };
                    input.advance(end + 2);
                    if end == 0 {
                        self.phase = Phase::Length(0);
                    }
                }
                Phase::Close if input.is_empty() => return Ok(None),
                Phase::Close => return Ok(Some(Event::Body(input.split().freeze()))),
                Phase::Done => return Ok(None),
            }
        }
    }

    /// The server closed the connection: the end of a body that runs to
    /// it, else an error (`buffered`: bytes of the response came).
    pub fn closed(&mut self, buffered: bool) -> Result<Event, Error> {
        match self.phase {
            Phase::Close => {
                self.phase = Phase::Done;
                Ok(Event::End { reusable: false })
            }
            Phase::Head if !buffered => Err(Error::ClosedBeforeAnswer),
            _ => Err(Error::Truncated),
        }
    }

    /// Reads the head once it is all here, skipping interim responses.
    fn head(&mut self, input: &mut BytesMut) -> Result<Option<Event>, Error> {
        loop {
            let Some(head) = client::parse_response_head(input, HEAD_BYTES_MAX)? else {
                return Ok(None);
            };
            let framing = framing(input.get(..head.len).unwrap_or_default())?;
            input.advance(head.len);
            // 1xx are interim (§4, RFC 9110 §15.2); 101 would switch
            // protocols, which a GET without Upgrade never asks for.
            if (100..200).contains(&head.status) {
                continue;
            }
            let bodiless = head.status == 204 || head.status == 304;
            self.phase = match (bodiless, head.chunked, framing.content_length) {
                (true, ..) => Phase::Length(0),
                (false, true, _) => Phase::Chunked(Dechunker::default()),
                (false, false, Some(len)) => Phase::Length(len),
                (false, false, None) => Phase::Close,
            };
            self.reusable = !framing.close && !matches!(self.phase, Phase::Close);
            return Ok(Some(Event::Head {
                status: head.status,
                content_length: framing.content_length.filter(|_| !head.chunked),
            }));
        }
    }
}

/// What a head says about the body's length and the connection.
struct Framing {
    content_length: Option<u64>,
    /// The server will close the connection after this response.
    close: bool,
}

/// Reads `Content-Length` and `Connection` from a head httparse accepted
/// (so its lines are well formed).
fn framing(head: &[u8]) -> Result<Framing, Error> {
    let mut lines = head.split(|b| *b == b'\n');
    // HTTP/1.0 closes unless asked not to (RFC 9112 §9.3).
    let http_1_0 = lines.next().is_some_and(|l| l.starts_with(b"HTTP/1.0"));
    let (mut content_length, mut close, mut keep_alive) = (None, false, false);
    for line in lines {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = line.split_at(colon);
        let value = value.get(1..).unwrap_or_default().trim_ascii();
        if name.trim_ascii().eq_ignore_ascii_case(b"content-length") {
            let text = String::from_utf8_lossy(value);
            let len: u64 = (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
                .then(|| text.parse().ok())
                .flatten()
                .ok_or_else(|| Error::ContentLength(text.clone().into_owned()))?;
            // Several equal values are one (RFC 9110 §8.6); different
            // ones cannot be framed.
            if content_length.is_some_and(|seen| seen != len) {
                return Err(Error::ContentLength(text.into_owned()));
            }
            content_length = Some(len);
        } else if name.trim_ascii().eq_ignore_ascii_case(b"connection") {
            for option in value.split(|b| *b == b',') {
                let option = option.trim_ascii();
                close |= option.eq_ignore_ascii_case(b"close");
                keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }
    Ok(Framing {
        content_length,
        close: close || (http_1_0 && !keep_alive),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The events of `bytes` handed over in pieces of `piece`, then
    /// (when `close`) the server closing.
    fn events(bytes: &[u8], piece: usize, close: bool) -> Result<Vec<Event>, Error> {
        let mut response = Response::new();
        let (mut input, mut out) = (BytesMut::new(), Vec::new());
        for chunk in bytes.chunks(piece) {
            input.extend_from_slice(chunk);
            while let Some(event) = response.decode(&mut input)? {
                out.push(event);
            }
        }
        if close {
            out.push(response.closed(!input.is_empty() || !out.is_empty())?);
        }
        Ok(merge(out))
    }

    /// Body pieces joined, so responses cut anywhere compare equal.
    fn merge(events: Vec<Event>) -> Vec<Event> {
        let mut out: Vec<Event> = Vec::new();
        for event in events {
            match (out.last_mut(), event) {
                (Some(Event::Body(body)), Event::Body(more)) => {
                    *body = [&body[..], &more[..]].concat().into();
                }
                (_, event) => out.push(event),
            }
        }
        out
    }

    fn head(status: u16, content_length: Option<u64>) -> Event {
        Event::Head {
            status,
            content_length,
        }
    }

    #[test]
    fn a_get_keeps_the_connection_open() {
        assert_eq!(
            request("h:8080", "/live/cam.m3u8?_HLS_msn=4&_HLS_part=1"),
            "GET /live/cam.m3u8?_HLS_msn=4&_HLS_part=1 HTTP/1.1\r\nHost: h:8080\r\n\
             Connection: keep-alive\r\nAccept: */*\r\n\r\n"
        );
    }

    #[test]
    fn a_content_length_body_ends_the_response_and_leaves_the_next() {
        let bytes =
            b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\ncontent-length: 5\r\n\r\nhelloHTTP/1.1";
        for piece in 1..=bytes.len() {
            let mut response = Response::new();
            let mut input = BytesMut::new();
            let mut got = Vec::new();
            for chunk in bytes.chunks(piece) {
                input.extend_from_slice(chunk);
                while let Some(event) = response.decode(&mut input).expect("valid") {
                    got.push(event);
                }
            }
            assert_eq!(
                merge(got),
                [
                    head(200, Some(5)),
                    Event::Body(Bytes::from_static(b"hello")),
                    Event::End { reusable: true }
                ],
                "pieces of {piece}"
            );
            assert_eq!(&input[..], b"HTTP/1.1", "the next response stays");
        }
    }

    #[test]
    fn a_chunked_body_with_a_trailer_ends_the_response() {
        let bytes = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 99\r\n\r\n\
            3\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\n";
        for piece in 1..=bytes.len() {
            assert_eq!(
                events(bytes, piece, false).expect("valid"),
                [
                    head(200, None),
                    Event::Body(Bytes::from_static(b"abcde")),
                    Event::End { reusable: true }
                ],
                "pieces of {piece}"
            );
        }
    }

    #[test]
    fn statuses_without_a_body_and_interim_heads_are_framed() {
        let bytes =
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n";
        assert_eq!(
            events(bytes, 3, false).expect("valid"),
            [head(304, Some(7)), Event::End { reusable: true }]
        );
        let bytes = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            events(bytes, 100, false).expect("valid"),
            [head(404, Some(0)), Event::End { reusable: true }]
        );
    }

    #[test]
    fn close_and_http_1_0_end_the_connection_after_the_response() {
        let bytes =
            b"HTTP/1.1 200 OK\r\nConnection: Keep-Alive, close\r\nContent-Length: 1\r\n\r\nx";
        assert_eq!(
            events(bytes, 100, false).expect("valid").last(),
            Some(&Event::End { reusable: false })
        );
        let bytes = b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx";
        assert_eq!(
            events(bytes, 100, false).expect("valid").last(),
            Some(&Event::End { reusable: false })
        );
        let bytes = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx";
        assert_eq!(
            events(bytes, 100, false).expect("valid").last(),
            Some(&Event::End { reusable: true })
        );
        // No length: the body is what comes before the close.
        let bytes = b"HTTP/1.1 200 OK\r\n\r\nabc";
        assert_eq!(
            events(bytes, 2, true).expect("valid"),
            [
                head(200, None),
                Event::Body(Bytes::from_static(b"abc")),
                Event::End { reusable: false }
            ]
        );
    }

    #[test]
    fn a_close_before_or_inside_a_response_is_an_error_that_says_which() {
        assert_eq!(events(b"", 1, true), Err(Error::ClosedBeforeAnswer));
        assert_eq!(events(b"HTTP/1.1 200", 1, true), Err(Error::Truncated));
        assert_eq!(
            events(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", 4, true),
            Err(Error::Truncated)
        );
    }

    #[test]
    fn bad_lengths_and_endless_trailers_are_refused() {
        for value in ["x", "-1", "", "1 2", "99999999999999999999999"] {
            let bytes = format!("HTTP/1.1 200 OK\r\nContent-Length: {value}\r\n\r\n");
            assert!(
                matches!(
                    events(bytes.as_bytes(), 64, false),
                    Err(Error::ContentLength(_))
                ),
                "{value:?}"
            );
        }
        let bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
        assert!(matches!(
            events(bytes, 64, false),
            Err(Error::ContentLength(_))
        ));
        let bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab";
        assert_eq!(events(bytes, 64, false).expect("valid").len(), 3);
        let mut bytes = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n".to_vec();
        bytes.extend(vec![b'x'; TRAILER_BYTES_MAX]);
        assert_eq!(events(&bytes, 4096, false), Err(Error::TrailerTooLong));
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_are_read_or_refused_without_a_panic(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
            piece in 1usize..64,
        ) {
            let mut with_head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            with_head.extend(&bytes);
            let _ = events(&with_head, piece, true);
            let _ = events(&bytes, piece, true);
        }
    }
}
