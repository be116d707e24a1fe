//! The chunked transfer coding of HTTP/1.1 (RFC 9112 §7.1), read side:
//! what an HTTP-FLV player does with a `Transfer-Encoding: chunked` body.
//! ringcast sends its FLV bodies close-delimited; other servers (and
//! proxies) chunk them, so the bench takes both.
//!
//! Pure: bytes in, body bytes out. Chunk extensions are skipped; the
//! trailer section after the last chunk is not read, since the stream has
//! ended there.

use bytes::{Buf, BytesMut};

/// A chunk-size line (hex size, extensions, CRLF) longer than this is
/// refused: a size is at most 16 hex digits, and no server sends
/// extensions on a live stream; 1 KiB bounds what an odd one may make us
/// buffer before a byte of body.
pub const SIZE_LINE_BYTES_MAX: usize = 1024;
/// Hex digits in a chunk size: 15 keep it under 2^60, far past any chunk,
/// and rule out overflow.
const SIZE_DIGITS_MAX: usize = 15;

/// Why a chunked body cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChunkedError {
    #[error("chunk size line longer than max {SIZE_LINE_BYTES_MAX} bytes")]
    SizeLineTooLong,
    #[error("chunk size {0:?} is not 1 to {SIZE_DIGITS_MAX} hex digits")]
    Size(String),
    #[error("chunk data not followed by CRLF")]
    NoCrlf,
}

/// Reads a chunked body incrementally.
#[derive(Debug, Default)]
pub struct Dechunker {
    state: State,
}

#[derive(Debug, Default)]
enum State {
    /// Waiting for a chunk-size line.
    #[default]
    Size,
    /// Bytes of chunk data still to come.
    Data(usize),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// The last chunk (size 0) arrived: the body is over.
    Done,
}

impl Dechunker {
    /// Moves body bytes from `input` to `out` until `input` holds no more
    /// of the body. Returns true once the last chunk has arrived.
    pub fn decode(
        &mut self,
        input: &mut BytesMut,
        out: &mut BytesMut,
    ) -> Result<bool, ChunkedError> {
        loop {
            match self.state {
                State::Size => {
                    let window = input.get(..SIZE_LINE_BYTES_MAX).unwrap_or(input);
                    let Some(end) = window.windows(2).position(|w| w == b"\r\n") else {
                        if window.len() >= SIZE_LINE_BYTES_MAX {
                            return Err(ChunkedError::SizeLineTooLong);
                        }
                        return Ok(false);
                    };
                    let line = input.split_to(end + 2);
                    let size = chunk_size(line.get(..end).unwrap_or_default())?;
                    self.state = if size == 0 {
                        State::Done
                    } else {
                        State::Data(size)
                    };
                }
                State::Data(left) => {
                    let n = left.min(input.len());
                    if n == 0 {
                        return Ok(false);
                    }
                    out.extend_from_slice(input.get(..n).unwrap_or_default());
                    input.advance(n);
                    self.state = if n == left {
                        State::DataEnd
                    } else {
                        State::Data(left - n)
                    };
                }
                State::DataEnd => {
                    let Some(crlf) = input.get(..2) else {
                        return Ok(false);
                    };
                    if crlf != b"\r\n" {
                        return Err(ChunkedError::NoCrlf);
                    }
                    input.advance(2);
                    self.state = State::Size;
                }
                State::Done => return Ok(true),
            }
        }
    }
}

/// The size of a chunk-size line (without its CRLF): hex digits, then
/// optional extensions after `;` (RFC 9112 §7.1.1), whitespace tolerated
/// before them.
fn chunk_size(line: &[u8]) -> Result<usize, ChunkedError> {
    let digits = line
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    let bad = || ChunkedError::Size(String::from_utf8_lossy(digits).into_owned());
    if digits.is_empty() || digits.len() > SIZE_DIGITS_MAX {
        return Err(bad());
    }
    let text = std::str::from_utf8(digits).map_err(|_| bad())?;
    usize::from_str_radix(text, 16).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The body of `chunked` handed over in pieces of `piece` bytes, and
    /// whether the last chunk came.
    fn body(chunked: &[u8], piece: usize) -> Result<(Vec<u8>, bool), ChunkedError> {
        let mut dechunker = Dechunker::default();
        let (mut input, mut out, mut done) = (BytesMut::new(), BytesMut::new(), false);
        for bytes in chunked.chunks(piece) {
            input.extend_from_slice(bytes);
            done = dechunker.decode(&mut input, &mut out)?;
        }
        Ok((out.to_vec(), done))
    }

    #[test]
    fn chunks_split_anywhere_make_the_same_body() {
        let chunked = b"9\r\nFLV\x01\x05\x00\x00\x00\x09\r\n4;name=value\r\n\0\0\0\0\r\n1A \r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n";
        for piece in 1..=chunked.len() {
            let (out, done) = body(chunked, piece).expect("valid");
            assert_eq!(
                out, b"FLV\x01\x05\x00\x00\x00\x09\0\0\0\0abcdefghijklmnopqrstuvwxyz",
                "pieces of {piece}"
            );
            assert!(done);
        }
        let (out, done) = body(b"3\r\nabc\r\n2\r\nd", 4).expect("valid so far");
        assert_eq!((out.as_slice(), done), (&b"abcd"[..], false));
    }

    #[test]
    fn broken_chunking_is_a_named_error() {
        assert_eq!(body(b"zz\r\n", 99), Err(ChunkedError::Size("zz".into())));
        assert_eq!(body(b"\r\n", 99), Err(ChunkedError::Size(String::new())));
        assert_eq!(
            body(b"1000000000000000\r\n", 99),
            Err(ChunkedError::Size("1000000000000000".into()))
        );
        assert_eq!(body(b"3\r\nabcXY", 99), Err(ChunkedError::NoCrlf));
        let long = [b'1'; SIZE_LINE_BYTES_MAX];
        assert_eq!(body(&long, 7), Err(ChunkedError::SizeLineTooLong));
    }
}
