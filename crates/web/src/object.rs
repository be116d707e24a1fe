//! Response heads for objects served whole from memory: HLS playlists,
//! init segments, segments and parts. They keep the connection open when
//! the client does (an HLS player fetches a playlist and parts over one
//! connection), carry a validator (`ETag`, RFC 9110 §8.8.3) and their
//! caching (`Cache-Control`, RFC 9111 §5.2), and honour one byte range
//! (RFC 9110 §14).
//!
//! What it must not do: decide what an object is or how long it may be
//! cached (the server's HLS module does), or read a body.

use bytes::{BufMut, Bytes};

use crate::response::{Cors, finish_with, put_header, status_line};

/// What a response says about the object it carries.
#[derive(Clone, Copy, Debug)]
pub struct Object<'a> {
    pub content_type: &'a str,
    /// `Cache-Control`'s value.
    pub cache_control: &'a str,
    /// A strong entity tag, quotes included.
    pub etag: &'a str,
    /// The object's length in bytes.
    pub len: usize,
}

/// A byte range of an object: `first..=last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    pub first: usize,
    pub last: usize,
}

impl ByteRange {
    /// Bytes in the range.
    pub fn len(&self) -> usize {
        self.last - self.first + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }
}

/// A `Range` no part of which lies inside the object: `416`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unsatisfiable;

/// Reads a `Range` header against an object of `len` bytes. `Ok(None)`:
/// serve it whole, as RFC 9110 §14.2 lets a server do with a range it
/// does not serve (several ranges, other units, a malformed one).
pub fn parse_range(value: &str, len: usize) -> Result<Option<ByteRange>, Unsatisfiable> {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let number = |text: &str| text.trim().parse::<usize>().ok();
    let range = match (first.trim().is_empty(), last.trim().is_empty()) {
        // `bytes=-N`: the last N bytes.
        (true, false) => match number(last) {
            Some(0) => return Err(Unsatisfiable),
            Some(suffix) if len > 0 => ByteRange {
                first: len.saturating_sub(suffix),
                last: len - 1,
            },
            Some(_) => return Err(Unsatisfiable),
            None => return Ok(None),
        },
        (false, true) => match number(first) {
            Some(first) if first < len => ByteRange {
                first,
                last: len - 1,
            },
            Some(_) => return Err(Unsatisfiable),
            None => return Ok(None),
        },
        (false, false) => match (number(first), number(last)) {
            (Some(first), Some(last)) if first > last => return Ok(None),
            (Some(first), Some(_)) if first >= len => return Err(Unsatisfiable),
            (Some(first), Some(last)) => ByteRange {
                first,
                last: last.min(len - 1),
            },
            _ => return Ok(None),
        },
        (true, true) => return Ok(None),
    };
    Ok(Some(range))
}

/// Whether an `If-None-Match` value names `etag` (or is `*`).
pub fn none_match(if_none_match: &str, etag: &str) -> bool {
    if_none_match
        .split(',')
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == "*" || tag == etag)
}

/// `200` with the whole object, or `206` with `range` of it; the body
/// follows.
pub fn head(
    object: Object<'_>,
    range: Option<ByteRange>,
    keep_alive: bool,
    cors: Cors<'_>,
) -> Bytes {
    let mut head = status_line(if range.is_some() { 206 } else { 200 });
    put_header(&mut head, "Content-Type", object.content_type);
    match range {
        Some(range) => {
            put_header(&mut head, "Content-Length", &range.len().to_string());
            let value = format!("bytes {}-{}/{}", range.first, range.last, object.len);
            put_header(&mut head, "Content-Range", &value);
        }
        None => put_header(&mut head, "Content-Length", &object.len.to_string()),
    }
    validators(&mut head, object);
    head.put_slice(b"Accept-Ranges: bytes\r\n");
    finish_with(head, cors, keep_alive)
}

/// `304`: the client's copy is current.
pub fn not_modified(object: Object<'_>, keep_alive: bool, cors: Cors<'_>) -> Bytes {
    let mut head = status_line(304);
    validators(&mut head, object);
    finish_with(head, cors, keep_alive)
}

/// `416` for a range outside an object of `len` bytes.
pub fn range_not_satisfiable(len: usize, keep_alive: bool, cors: Cors<'_>) -> Bytes {
    let mut head = status_line(416);
    put_header(&mut head, "Content-Range", &format!("bytes */{len}"));
    head.put_slice(b"Content-Length: 0\r\n");
    finish_with(head, cors, keep_alive)
}

fn validators(head: &mut bytes::BytesMut, object: Object<'_>) {
    put_header(head, "Cache-Control", object.cache_control);
    put_header(head, "ETag", object.etag);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::parse_response_head;

    const ANY: Cors<'static> = Cors { allow_origin: "*" };

    #[test]
    fn ranges_follow_rfc_9110() {
        let range = |first, last| Ok(Some(ByteRange { first, last }));
        assert_eq!(parse_range("bytes=0-99", 1000), range(0, 99));
        assert_eq!(parse_range("bytes=900-", 1000), range(900, 999));
        assert_eq!(parse_range("bytes=-100", 1000), range(900, 999));
        assert_eq!(parse_range("bytes=-5000", 1000), range(0, 999));
        assert_eq!(parse_range("bytes=990-2000", 1000), range(990, 999));
        assert_eq!(parse_range("bytes=1000-", 1000), Err(Unsatisfiable));
        assert_eq!(parse_range("bytes=1000-1001", 1000), Err(Unsatisfiable));
        assert_eq!(parse_range("bytes=-0", 1000), Err(Unsatisfiable));
        assert_eq!(parse_range("bytes=0-", 0), Err(Unsatisfiable));
        for whole in [
            "items=0-1",
            "bytes=0-1,5-6",
            "bytes=5-1",
            "bytes=x-1",
            "bytes=-",
            "bytes=1",
        ] {
            assert_eq!(parse_range(whole, 1000), Ok(None), "{whole}");
        }
    }

    #[test]
    fn etags_match_listed_or_any() {
        assert!(none_match("\"a\", \"b\"", "\"b\""));
        assert!(none_match("W/\"b\"", "\"b\""));
        assert!(none_match("*", "\"b\""));
        assert!(!none_match("\"a\"", "\"b\""));
    }

    #[test]
    fn heads_carry_length_range_validators_and_keep_alive() {
        let object = Object {
            content_type: "video/mp4",
            cache_control: "max-age=60",
            etag: "\"7-3\"",
            len: 1000,
        };
        let range = Some(ByteRange {
            first: 10,
            last: 19,
        });
        let bytes = head(object, range, true, ANY);
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 206 Partial Content\r\n"),
            "{text}"
        );
        for line in [
            "Content-Length: 10\r\n",
            "Content-Range: bytes 10-19/1000\r\n",
            "ETag: \"7-3\"\r\n",
            "Cache-Control: max-age=60\r\n",
            "Connection: keep-alive\r\n",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        let whole = parse_response_head(&head(object, None, false, ANY), 4096)
            .unwrap()
            .unwrap();
        assert_eq!(whole.status, 200);
        let text = String::from_utf8(not_modified(object, true, ANY).to_vec()).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 304 Not Modified\r\n") && !text.contains("Content-Length")
        );
        let text = String::from_utf8(range_not_satisfiable(1000, true, ANY).to_vec()).unwrap();
        assert!(text.contains("Content-Range: bytes */1000\r\n"), "{text}");
    }
}
