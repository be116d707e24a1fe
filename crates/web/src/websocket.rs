//! WebSocket framing (RFC 6455), server and client side.
//!
//! Owns the opening handshake's key arithmetic (§4), the frame format (§5.2),
//! masking (§5.3), fragmentation (§5.4), control frames (§5.5) and the Close
//! payload (§5.5.1, §7.4). It must not do I/O or read a clock, and it draws
//! no random numbers: a client passes its mask and nonce in, so every run is
//! reproducible.
//!
//! # Decisions
//! - **One decoder per direction.** [`Frames::from_client`] is what a server
//!   reads: every frame must be masked (§5.1), and is unmasked in place.
//!   [`Frames::from_server`] is what a client reads: no frame may be masked.
//! - **Limits come from the header.** A frame or message longer than the
//!   decoder's `max` is refused as soon as its length field has arrived, so a
//!   peer cannot make us buffer more than it has sent, nor announce 2^63
//!   bytes and wait. The caller owns the read buffer; the decoder never
//!   reserves space on the strength of a length field.
//! - **Frames, not messages.** [`Frames::decode`] checks the order of
//!   fragments (§5.4) and the total length of a message, but hands back each
//!   frame as it comes: a server playing FLV over WebSocket only reads
//!   control frames, and a client can append continuations itself.
//! - **Payloads share the read buffer.** A frame's payload is split off the
//!   caller's buffer, not copied, so holding a frame pins that allocation;
//!   a server holds the control frames it reads (at most 125 bytes) only
//!   long enough to answer them.
//! - **Text is not checked for UTF-8.** §8.1 asks for it, but a fragment may
//!   end inside a character and neither side here reads text; the Close
//!   reason, which is read, is checked (answered with 1007).
//! - **Lengths need not be minimal.** §5.2 says the minimal length encoding
//!   MUST be used; like most servers we accept a longer one, which costs us
//!   nothing.
//! - **Any error ends the connection.** The error says which close code to
//!   answer with ([`Error::close_code`]); the decoder returns the same error
//!   from then on.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use sha1::{Digest, Sha1};

/// The GUID a server appends to the client's key before hashing (§1.3).
pub const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Largest payload of a control frame (§5.5): its length must fit the 7-bit
/// field.
pub const CONTROL_PAYLOAD_MAX: usize = 125;

/// Largest Close reason in bytes: a control payload less the 2-byte code
/// (§5.5.1).
pub const CLOSE_REASON_MAX: usize = CONTROL_PAYLOAD_MAX - 2;

/// Close status codes (§7.4.1) a server sends.
pub mod close {
    /// The purpose of the connection is fulfilled.
    pub const NORMAL: u16 = 1000;
    /// The server is shutting down, or the stream ended.
    pub const GOING_AWAY: u16 = 1001;
    /// The peer broke the framing rules.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A kind of data the endpoint does not accept (text where binary is
    /// wanted, for example).
    pub const UNSUPPORTED: u16 = 1003;
    /// Data inconsistent with its type, such as a reason that is not UTF-8.
    pub const INVALID_DATA: u16 = 1007;
    /// A message that violates the endpoint's policy.
    pub const POLICY: u16 = 1008;
    /// A frame or message too big to process.
    pub const TOO_BIG: u16 = 1009;
    /// An unexpected condition on the server.
    pub const INTERNAL: u16 = 1011;
}

/// The `Sec-WebSocket-Accept` value for a client's `Sec-WebSocket-Key`
/// (§4.2.2 step 5.4): base64(sha1(key.trim() + GUID)).
pub fn accept_key(client_key: &str) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(client_key.trim().as_bytes());
    sha1.update(GUID.as_bytes());
    BASE64.encode(sha1.finalize())
}

/// A client's key is valid: base64 of exactly 16 bytes (§4.1, item 7), with
/// canonical padding; surrounding whitespace is ignored, as in
/// [`accept_key`].
pub fn is_valid_key(client_key: &str) -> bool {
    /// 16 bytes in base64: 22 characters and "==".
    const KEY_BASE64_LEN: usize = 24;
    let key = client_key.trim();
    // The length check bounds the decoding work to 24 characters.
    key.len() == KEY_BASE64_LEN && BASE64.decode(key).is_ok_and(|nonce| nonce.len() == 16)
}

/// A frame's opcode (§5.2); the others are reserved and refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opcode {
    /// The next fragment of a message (0x0).
    Continuation,
    /// A UTF-8 text message, or its first fragment (0x1).
    Text,
    /// A binary message, or its first fragment (0x2).
    Binary,
    /// Close (0x8, §5.5.1).
    Close,
    /// Ping (0x9, §5.5.2).
    Ping,
    /// Pong (0xA, §5.5.3).
    Pong,
}

impl Opcode {
    /// The 4-bit value on the wire.
    pub fn code(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }

    /// The opcode with this 4-bit value; `None` for the reserved ones
    /// (0x3–0x7, 0xB–0xF).
    pub fn from_code(code: u8) -> Option<Opcode> {
        match code {
            0x0 => Some(Opcode::Continuation),
            0x1 => Some(Opcode::Text),
            0x2 => Some(Opcode::Binary),
            0x8 => Some(Opcode::Close),
            0x9 => Some(Opcode::Ping),
            0xA => Some(Opcode::Pong),
            _ => None,
        }
    }

    /// Close, Ping and Pong (opcodes with the high bit set, §5.5): at most
    /// 125 bytes, never fragmented, and allowed between fragments.
    pub fn is_control(self) -> bool {
        self.code() & 0x8 != 0
    }
}

/// Bits of a frame's first two bytes (§5.2).
const FIN: u8 = 0x80;
const RSV: u8 = 0x70;
const OPCODE: u8 = 0x0F;
const MASK: u8 = 0x80;
const LEN7: u8 = 0x7F;
/// 7-bit length values that announce a 16-bit and a 64-bit length.
const LEN7_U16: u8 = 126;
const LEN7_U64: u8 = 127;

/// Bytes of the header of an unmasked (server) frame carrying `payload_len`
/// bytes: 2, 4 or 10 (§5.2).
pub fn header_len(payload_len: usize) -> usize {
    if payload_len < usize::from(LEN7_U16) {
        2
    } else if payload_len <= usize::from(u16::MAX) {
        4
    } else {
        10
    }
}

/// Appends the header of one unmasked, final (FIN) frame: what a server
/// sends (§5.1, §5.2). The payload follows, written by the caller.
pub fn put_header(opcode: Opcode, payload_len: usize, out: &mut BytesMut) {
    put_header_masked(opcode, payload_len, 0, out);
}

/// A whole unmasked final frame (header and payload), for control frames
/// and small messages.
pub fn server_frame(opcode: Opcode, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(header_len(payload.len()).saturating_add(payload.len()));
    put_header(opcode, payload.len(), &mut out);
    out.put_slice(payload);
    out.freeze()
}

/// The payload of a Close frame (§5.5.1): the code, big-endian, then the
/// reason cut to at most 123 bytes on a character boundary, so the frame
/// stays a legal control frame.
pub fn close_payload(code: u16, reason: &str) -> Bytes {
    let mut end = reason.len().min(CLOSE_REASON_MAX);
    while !reason.is_char_boundary(end) {
        // Terminates: 0 is a char boundary.
        end = end.saturating_sub(1);
    }
    let reason = reason.get(..end).unwrap_or_default();
    let mut out = BytesMut::with_capacity(2usize.saturating_add(reason.len()));
    out.put_u16(code);
    out.put_slice(reason.as_bytes());
    out.freeze()
}

/// A Close frame's code and reason (§5.5.1); `None` for an empty payload
/// (no code given). A 1-byte payload, a code an endpoint may not send
/// (§7.4) or a reason that is not UTF-8 is an error.
pub fn parse_close(payload: &[u8]) -> Result<Option<(u16, &str)>, Error> {
    let Some((code, reason)) = payload.split_first_chunk::<2>() else {
        return if payload.is_empty() {
            Ok(None)
        } else {
            Err(Error::BadClose(CloseError::OneByte))
        };
    };
    let code = u16::from_be_bytes(*code);
    if !is_sendable_close_code(code) {
        return Err(Error::BadClose(CloseError::Code(code)));
    }
    let reason = std::str::from_utf8(reason).map_err(|_| Error::BadClose(CloseError::Utf8))?;
    Ok(Some((code, reason)))
}

/// Codes a peer may put in a Close frame: those defined in §7.4.1 and the
/// IANA registry (1012–1014 came later), less 1004 (reserved) and
/// 1005/1006/1015 (§7.4.1: "MUST NOT be set as a status code in a Close
/// control frame"); and 3000–4999, for libraries and applications (§7.4.2).
/// 1016–2999 are reserved for future revisions and refused, as Autobahn
/// expects.
fn is_sendable_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// One frame as received (§5.2); a fragmented message arrives as several
/// (§5.4), the later ones with [`Opcode::Continuation`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The last frame of its message.
    pub fin: bool,
    pub opcode: Opcode,
    /// Unmasked.
    pub payload: Bytes,
}

/// What is wrong with a Close frame's payload (§5.5.1, §7.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CloseError {
    #[error("payload of 1 byte, where a status code takes 2")]
    OneByte,
    #[error("status code {0} is not one an endpoint may send (rfc 6455 §7.4)")]
    Code(u16),
    #[error("reason is not utf-8")]
    Utf8,
}

/// Frames the peer should not have sent, by what they broke. Each ends the
/// connection with the close code of [`Error::close_code`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("client frame without a mask (rfc 6455 §5.1)")]
    Unmasked,
    #[error("server frame with a mask (rfc 6455 §5.1)")]
    Masked,
    /// The RSV1–3 bits, as a 3-bit value: no extension is negotiated.
    #[error("reserved bits {0:#05b} set, with no extension negotiated (rfc 6455 §5.2)")]
    Reserved(u8),
    #[error("unknown opcode {0:#x} (rfc 6455 §5.2)")]
    UnknownOpcode(u8),
    #[error("control frame payload length {0} exceeds max 125 (rfc 6455 §5.5)")]
    ControlTooLong(u64),
    #[error("fragmented control frame (rfc 6455 §5.5)")]
    FragmentedControl,
    /// `len`: the frame's payload length, or for a continuation the length
    /// of its message so far, this frame included.
    #[error("payload length {len} of frame or message exceeds max {max}")]
    TooBig { len: u64, max: usize },
    #[error("continuation frame with no fragmented message to continue (rfc 6455 §5.4)")]
    UnexpectedContinuation,
    #[error("new data frame while a fragmented message awaits its continuation (rfc 6455 §5.4)")]
    ExpectedContinuation,
    #[error("close frame: {0}")]
    BadClose(CloseError),
}

impl Error {
    /// The status code of the Close frame to answer with (§7.4.1): 1009 for
    /// too big, 1007 for a reason that is not UTF-8, 1002 for the rest.
    pub fn close_code(&self) -> u16 {
        match self {
            Error::TooBig { .. } => close::TOO_BIG,
            Error::BadClose(CloseError::Utf8) => close::INVALID_DATA,
            _ => close::PROTOCOL_ERROR,
        }
    }
}

/// Decodes the frames one side receives: [`Frames::from_client`] requires
/// masks (what a server reads) and unmasks; [`Frames::from_server`] refuses
/// masks (what a client reads).
///
/// `max` is both the largest frame payload and the largest message (the sum
/// of its fragments) accepted; a bigger length is refused from the header,
/// before its payload is buffered, so the cost of a frame is bounded by the
/// bytes the peer has sent. Tracks fragmentation (§5.4): a data frame with
/// FIN clear, then continuations, the last with FIN set; control frames may
/// come in between.
#[derive(Clone, Debug)]
pub struct Frames {
    /// Frames must be masked (we are the server), or must not be.
    masked: bool,
    max_payload: usize,
    /// Payload bytes of the fragmented message under way, if one is.
    message_len: Option<usize>,
    /// Set by the first error: the stream cannot be resynchronised.
    failed: Option<Error>,
}

/// A frame header as decoded, before its payload.
struct Header {
    fin: bool,
    opcode: Opcode,
    mask: Option<[u8; 4]>,
    payload_len: usize,
    /// Bytes of the header itself: 2 to 14.
    len: usize,
    /// Bytes of the fragmented message under way after this frame, if one
    /// still is.
    message_len: Option<usize>,
}

impl Frames {
    /// The frames a server reads: each must be masked (§5.1).
    pub fn from_client(max_payload: usize) -> Frames {
        Frames::new(true, max_payload)
    }

    /// The frames a client reads: none may be masked (§5.1).
    pub fn from_server(max_payload: usize) -> Frames {
        Frames::new(false, max_payload)
    }

    fn new(masked: bool, max_payload: usize) -> Frames {
        Frames {
            masked,
            max_payload,
            message_len: None,
            failed: None,
        }
    }

    /// The next whole frame, its bytes removed from `input`; `Ok(None)`:
    /// more bytes are needed, and `input` is untouched. The payload is
    /// split off `input` and unmasked in place, never copied. After an
    /// error, every call returns that error.
    pub fn decode(&mut self, input: &mut BytesMut) -> Result<Option<Frame>, Error> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let result = self.decode_frame(input);
        if let Err(error) = &result {
            self.failed = Some(error.clone());
        }
        result
    }

    fn decode_frame(&mut self, input: &mut BytesMut) -> Result<Option<Frame>, Error> {
        let Some(header) = self.decode_header(input)? else {
            return Ok(None);
        };
        let frame_len = header
            .len
            .checked_add(header.payload_len)
            .ok_or(Error::TooBig {
                len: header.payload_len as u64,
                max: self.max_payload,
            })?;
        if input.len() < frame_len {
            return Ok(None);
        }
        input.advance(header.len);
        let mut payload = input.split_to(header.payload_len);
        if let Some(mask) = header.mask {
            apply_mask(&mut payload, mask);
        }
        if header.opcode == Opcode::Close {
            parse_close(&payload)?;
        }
        self.message_len = header.message_len;
        Ok(Some(Frame {
            fin: header.fin,
            opcode: header.opcode,
            payload: payload.freeze(),
        }))
    }

    /// The header at the front of `input`, checked; `Ok(None)` until all of
    /// it has arrived. Each check is made as soon as its bytes are there.
    fn decode_header(&self, input: &[u8]) -> Result<Option<Header>, Error> {
        let Some(&[first, second]) = input.first_chunk::<2>() else {
            return Ok(None);
        };
        let fin = first & FIN != 0;
        let rsv = (first & RSV) >> 4;
        if rsv != 0 {
            return Err(Error::Reserved(rsv));
        }
        let opcode =
            Opcode::from_code(first & OPCODE).ok_or(Error::UnknownOpcode(first & OPCODE))?;
        match (self.masked, second & MASK != 0) {
            (true, false) => return Err(Error::Unmasked),
            (false, true) => return Err(Error::Masked),
            _ => {}
        }
        if opcode.is_control() && !fin {
            return Err(Error::FragmentedControl);
        }
        let Some((payload_len, mut len)) = decode_length(input, second & LEN7) else {
            return Ok(None);
        };
        if opcode.is_control() && payload_len > CONTROL_PAYLOAD_MAX as u64 {
            return Err(Error::ControlTooLong(payload_len));
        }
        let (payload_len, message_len) = self.check_length(opcode, fin, payload_len)?;
        let mask = if self.masked {
            let Some(mask) = input.get(len..).and_then(|rest| rest.first_chunk::<4>()) else {
                return Ok(None);
            };
            len = len.saturating_add(4);
            Some(*mask)
        } else {
            None
        };
        Ok(Some(Header {
            fin,
            opcode,
            mask,
            payload_len,
            len,
            message_len,
        }))
    }

    /// Checks the frame's place in the fragment sequence (§5.4) and its
    /// length against `max_payload`, alone and added to its message's.
    /// Returns the payload length and the message length after this frame.
    fn check_length(
        &self,
        opcode: Opcode,
        fin: bool,
        payload_len: u64,
    ) -> Result<(usize, Option<usize>), Error> {
        let too_big = |len: u64| Error::TooBig {
            len,
            max: self.max_payload,
        };
        // §5.2: the 64-bit length's most significant bit MUST be 0; such a
        // length is refused as too big whatever the max.
        let frame_max = u64::try_from(self.max_payload)
            .unwrap_or(u64::MAX)
            .min(i64::MAX as u64);
        let frame_len = usize::try_from(payload_len)
            .ok()
            .filter(|_| payload_len <= frame_max)
            .ok_or(too_big(payload_len))?;
        let message_len = match (opcode, self.message_len) {
            (Opcode::Continuation, None) => return Err(Error::UnexpectedContinuation),
            (Opcode::Text | Opcode::Binary, Some(_)) => return Err(Error::ExpectedContinuation),
            (Opcode::Continuation, Some(before)) => {
                let total = before.saturating_add(frame_len);
                if total > self.max_payload {
                    return Err(too_big(total as u64));
                }
                (!fin).then_some(total)
            }
            (Opcode::Text | Opcode::Binary, None) => (!fin).then_some(frame_len),
            // Control frames leave the message under way as it was.
            (Opcode::Close | Opcode::Ping | Opcode::Pong, message_len) => message_len,
        };
        Ok((frame_len, message_len))
    }
}

/// The payload length of a frame and the bytes of its header up to the
/// mask, from the 7-bit length field (§5.2); `None` until the extended
/// length has arrived.
fn decode_length(input: &[u8], len7: u8) -> Option<(u64, usize)> {
    match len7 {
        LEN7_U16 => {
            let bytes = input.get(2..)?.first_chunk::<2>()?;
            Some((u64::from(u16::from_be_bytes(*bytes)), 4))
        }
        LEN7_U64 => {
            let bytes = input.get(2..)?.first_chunk::<8>()?;
            Some((u64::from_be_bytes(*bytes), 10))
        }
        short => Some((u64::from(short), 2)),
    }
}

/// XORs `payload` with the mask, byte i with `mask[i % 4]` (§5.3); masking
/// and unmasking are the same operation.
fn apply_mask(payload: &mut [u8], mask: [u8; 4]) {
    let mut words = payload.chunks_exact_mut(4);
    for word in &mut words {
        for (byte, key) in word.iter_mut().zip(mask) {
            *byte ^= key;
        }
    }
    for (byte, key) in words.into_remainder().iter_mut().zip(mask) {
        *byte ^= key;
    }
}

/// Appends a final frame's header; `mask_bit` is [`MASK`] or 0.
fn put_header_masked(opcode: Opcode, payload_len: usize, mask_bit: u8, out: &mut BytesMut) {
    debug_assert!(
        !opcode.is_control() || payload_len <= CONTROL_PAYLOAD_MAX,
        "{opcode:?} frame of {payload_len} bytes: control frames carry at most 125"
    );
    out.put_u8(FIN | opcode.code());
    match header_len(payload_len) {
        // Fits 7 bits: header_len checked it is below 126.
        2 => out.put_u8(mask_bit | payload_len as u8),
        4 => {
            out.put_u8(mask_bit | LEN7_U16);
            out.put_u16(payload_len as u16);
        }
        _ => {
            out.put_u8(mask_bit | LEN7_U64);
            // Lossless: usize is at most 64 bits on every target we build.
            out.put_u64(payload_len as u64);
        }
    }
}

/// Client side (the load generator and the tests are clients): one final
/// frame, masked with `mask` (§5.3). The caller draws the mask; §10.3 asks
/// for an unpredictable one, which matters against proxies, not here.
pub fn client_frame(opcode: Opcode, payload: &[u8], mask: [u8; 4]) -> Bytes {
    let header = header_len(payload.len()).saturating_add(4);
    let mut out = BytesMut::with_capacity(header.saturating_add(payload.len()));
    put_header_masked(opcode, payload.len(), MASK, &mut out);
    out.put_slice(&mask);
    let start = out.len();
    out.put_slice(payload);
    if let Some(body) = out.get_mut(start..) {
        apply_mask(body, mask);
    }
    out.freeze()
}

/// A client's `Sec-WebSocket-Key` from 16 nonce bytes (§4.1, item 7).
pub fn client_key(nonce: [u8; 16]) -> String {
    BASE64.encode(nonce)
}

/// The upgrade request a client sends (§4.1): `GET {target} HTTP/1.1` with
/// Host, `Upgrade: websocket`, `Connection: Upgrade`, Sec-WebSocket-Key,
/// `Sec-WebSocket-Version: 13`, and Sec-WebSocket-Protocol when `protocol`
/// is `Some`.
pub fn upgrade_request(host: &str, target: &str, key: &str, protocol: Option<&str>) -> String {
    debug_assert!(
        [host, target, key, protocol.unwrap_or_default()]
            .iter()
            .all(|field| !field.contains(['\r', '\n'])),
        "line breaks in an upgrade request's fields"
    );
    let mut request = format!(
        "GET {target} HTTP/1.1\r\n\
         Host: {host}\r\n\
         Upgrade: websocket\r\n\
         Connection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\n\
         Sec-WebSocket-Version: 13\r\n"
    );
    if let Some(protocol) = protocol {
        request.push_str("Sec-WebSocket-Protocol: ");
        request.push_str(protocol);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    request
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The mask of the examples in §5.7.
    const MASK_5_7: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    fn frame(fin: bool, opcode: Opcode, payload: &[u8]) -> Frame {
        Frame {
            fin,
            opcode,
            payload: Bytes::copy_from_slice(payload),
        }
    }

    /// Decodes all of `bytes` at once; every byte must be used.
    fn decode_all(frames: &mut Frames, bytes: &[u8]) -> Result<Vec<Frame>, Error> {
        let mut input = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(frame) = frames.decode(&mut input)? {
            out.push(frame);
        }
        assert!(input.is_empty(), "{} bytes left over", input.len());
        Ok(out)
    }

    /// Feeds `bytes` cut at `cuts` (taken modulo the length), decoding after
    /// each piece.
    fn decode_in_pieces(frames: &mut Frames, bytes: &[u8], cuts: &[usize]) -> Vec<Frame> {
        let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut % (bytes.len() + 1)).collect();
        cuts.push(bytes.len());
        cuts.sort_unstable();
        let mut input = BytesMut::new();
        let mut out = Vec::new();
        let mut start = 0;
        for cut in cuts {
            input.extend_from_slice(&bytes[start..cut]);
            start = cut;
            while let Some(frame) = frames.decode(&mut input).unwrap() {
                out.push(frame);
            }
        }
        assert!(input.is_empty());
        out
    }

    fn decode_error(frames: &mut Frames, bytes: &[u8]) -> Error {
        let mut input = BytesMut::from(bytes);
        loop {
            match frames.decode(&mut input) {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("no error from {bytes:02x?}"),
                Err(error) => return error,
            }
        }
    }

    #[test]
    fn accept_key_matches_rfc_6455_section_1_3() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(
            accept_key(" dGhlIHNhbXBsZSBub25jZQ==\t"),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn key_is_valid_only_as_base64_of_16_bytes() {
        assert!(is_valid_key("dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(is_valid_key(" dGhlIHNhbXBsZSBub25jZQ== "));
        assert!(is_valid_key(&client_key([0xff; 16])));
        // 15 and 17 bytes.
        assert!(!is_valid_key(&BASE64.encode([0u8; 15])));
        assert!(!is_valid_key(&BASE64.encode([0u8; 17])));
        // Missing padding, bad alphabet, non-canonical trailing bits.
        assert!(!is_valid_key("dGhlIHNhbXBsZSBub25jZQ"));
        assert!(!is_valid_key("dGhlIHNhbXBsZSBub25jZ!=="));
        assert!(!is_valid_key("dGhlIHNhbXBsZSBub25jZR=="));
        assert!(!is_valid_key(""));
    }

    #[test]
    fn client_key_is_base64_of_the_nonce() {
        assert_eq!(client_key(*b"the sample nonce"), "dGhlIHNhbXBsZSBub25jZQ==");
    }

    #[test]
    fn opcodes_round_trip_their_codes_and_reserved_ones_are_unknown() {
        use Opcode::*;
        for opcode in [Continuation, Text, Binary, Close, Ping, Pong] {
            assert_eq!(Opcode::from_code(opcode.code()), Some(opcode));
            assert_eq!(opcode.is_control(), matches!(opcode, Close | Ping | Pong));
        }
        for code in (0x3..=0x7).chain(0xB..=0xF) {
            assert_eq!(Opcode::from_code(code), None);
        }
    }

    #[test]
    fn header_len_switches_at_126_and_65536() {
        for (len, expected) in [(0, 2), (125, 2), (126, 4), (65535, 4), (65536, 10)] {
            assert_eq!(header_len(len), expected, "{len}");
            let mut out = BytesMut::new();
            put_header(Opcode::Binary, len, &mut out);
            assert_eq!(out.len(), expected, "{len}");
        }
    }

    #[test]
    fn single_frame_unmasked_text_is_rfc_6455_section_5_7() {
        let wire = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        assert_eq!(&server_frame(Opcode::Text, b"Hello")[..], wire);
        let frames = decode_all(&mut Frames::from_server(1024), &wire).unwrap();
        assert_eq!(frames, [frame(true, Opcode::Text, b"Hello")]);
    }

    #[test]
    fn single_frame_masked_text_is_rfc_6455_section_5_7() {
        let wire = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        assert_eq!(&client_frame(Opcode::Text, b"Hello", MASK_5_7)[..], wire);
        let frames = decode_all(&mut Frames::from_client(1024), &wire).unwrap();
        assert_eq!(frames, [frame(true, Opcode::Text, b"Hello")]);
    }

    #[test]
    fn fragmented_text_is_rfc_6455_section_5_7() {
        let wire = [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f];
        let frames = decode_all(&mut Frames::from_server(1024), &wire).unwrap();
        assert_eq!(
            frames,
            [
                frame(false, Opcode::Text, b"Hel"),
                frame(true, Opcode::Continuation, b"lo"),
            ]
        );
    }

    #[test]
    fn ping_and_masked_pong_are_rfc_6455_section_5_7() {
        let ping = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        assert_eq!(&server_frame(Opcode::Ping, b"Hello")[..], ping);
        let frames = decode_all(&mut Frames::from_server(1024), &ping).unwrap();
        assert_eq!(frames, [frame(true, Opcode::Ping, b"Hello")]);

        let pong = [
            0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        assert_eq!(&client_frame(Opcode::Pong, b"Hello", MASK_5_7)[..], pong);
        let frames = decode_all(&mut Frames::from_client(1024), &pong).unwrap();
        assert_eq!(frames, [frame(true, Opcode::Pong, b"Hello")]);
    }

    #[test]
    fn binary_256_bytes_and_64_kib_are_rfc_6455_section_5_7() {
        for (len, header) in [
            (256, vec![0x82, 0x7e, 0x01, 0x00]),
            (65536, vec![0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00]),
        ] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let wire = server_frame(Opcode::Binary, &payload);
            assert_eq!(&wire[..header.len()], header);
            assert_eq!(&wire[header.len()..], payload);
            let frames = decode_all(&mut Frames::from_server(65536), &wire).unwrap();
            assert_eq!(frames, [frame(true, Opcode::Binary, &payload)]);

            let wire = client_frame(Opcode::Binary, &payload, MASK_5_7);
            assert_eq!(wire[1], header[1] | 0x80);
            let frames = decode_all(&mut Frames::from_client(65536), &wire).unwrap();
            assert_eq!(frames, [frame(true, Opcode::Binary, &payload)]);
        }
    }

    #[test]
    fn decode_waits_for_the_whole_frame_and_leaves_the_rest() {
        let mut wire = BytesMut::from(&client_frame(Opcode::Binary, b"abc", [1, 2, 3, 4])[..]);
        wire.extend_from_slice(&client_frame(Opcode::Ping, b"", [5, 6, 7, 8]));
        let mut frames = Frames::from_client(16);
        for len in 0..9 {
            let mut input = BytesMut::from(&wire[..len]);
            assert_eq!(frames.decode(&mut input), Ok(None), "{len} bytes");
            assert_eq!(input.len(), len, "{len} bytes");
        }
        let mut input = wire;
        assert_eq!(
            frames.decode(&mut input),
            Ok(Some(frame(true, Opcode::Binary, b"abc")))
        );
        assert_eq!(input.len(), 6);
        assert_eq!(
            frames.decode(&mut input),
            Ok(Some(frame(true, Opcode::Ping, b"")))
        );
        assert!(input.is_empty());
    }

    #[test]
    fn control_frames_may_come_between_fragments() {
        let mut wire = BytesMut::new();
        wire.extend_from_slice(&[0x02, 0x81, 0, 0, 0, 0, b'a']);
        wire.extend_from_slice(&client_frame(Opcode::Ping, b"p", [9; 4]));
        wire.extend_from_slice(&[0x00, 0x81, 0, 0, 0, 0, b'b']);
        wire.extend_from_slice(&client_frame(Opcode::Pong, b"", [9; 4]));
        wire.extend_from_slice(&[0x80, 0x81, 0, 0, 0, 0, b'c']);
        let frames = decode_all(&mut Frames::from_client(3), &wire).unwrap();
        assert_eq!(
            frames,
            [
                frame(false, Opcode::Binary, b"a"),
                frame(true, Opcode::Ping, b"p"),
                frame(false, Opcode::Continuation, b"b"),
                frame(true, Opcode::Pong, b""),
                frame(true, Opcode::Continuation, b"c"),
            ]
        );
    }

    #[test]
    fn server_refuses_unmasked_frames_and_client_masked_ones() {
        let unmasked = server_frame(Opcode::Binary, b"x");
        let masked = client_frame(Opcode::Binary, b"x", [1; 4]);
        let error = decode_error(&mut Frames::from_client(16), &unmasked[..2]);
        assert_eq!(error, Error::Unmasked);
        assert_eq!(error.close_code(), close::PROTOCOL_ERROR);
        let error = decode_error(&mut Frames::from_server(16), &masked[..2]);
        assert_eq!(error, Error::Masked);
        assert_eq!(error.close_code(), close::PROTOCOL_ERROR);
    }

    #[test]
    fn reserved_bits_and_opcodes_are_refused() {
        for (first, expected) in [
            (0xc2, Error::Reserved(0b100)),
            (0xa2, Error::Reserved(0b010)),
            (0x92, Error::Reserved(0b001)),
            (0x83, Error::UnknownOpcode(0x3)),
            (0x8b, Error::UnknownOpcode(0xb)),
        ] {
            let error = decode_error(&mut Frames::from_server(16), &[first, 0x00]);
            assert_eq!(error, expected);
            assert_eq!(error.close_code(), close::PROTOCOL_ERROR);
        }
    }

    #[test]
    fn control_frames_must_be_short_and_final() {
        let error = decode_error(&mut Frames::from_server(1 << 20), &[0x89, 126, 0, 126]);
        assert_eq!(error, Error::ControlTooLong(126));
        assert_eq!(error.close_code(), close::PROTOCOL_ERROR);
        let error = decode_error(&mut Frames::from_server(16), &[0x09, 0x00]);
        assert_eq!(error, Error::FragmentedControl);
        assert_eq!(error.close_code(), close::PROTOCOL_ERROR);
    }

    #[test]
    fn too_big_is_refused_from_a_10_byte_header_alone() {
        // 2^40 bytes announced, none sent; a server would wait for the mask.
        let header = [0x82, 0xff, 0, 0, 0x01, 0, 0, 0, 0, 0];
        let mut frames = Frames::from_client(1 << 20);
        let mut input = BytesMut::from(&header[..]);
        let error = frames.decode(&mut input).unwrap_err();
        assert_eq!(
            error,
            Error::TooBig {
                len: 1 << 40,
                max: 1 << 20
            }
        );
        assert_eq!(error.close_code(), close::TOO_BIG);
        assert_eq!(
            error.to_string(),
            "payload length 1099511627776 of frame or message exceeds max 1048576"
        );
        // The error sticks: the stream cannot be resynchronised.
        let mut input = BytesMut::from(&client_frame(Opcode::Ping, b"", [0; 4])[..]);
        assert_eq!(frames.decode(&mut input), Err(error));
    }

    #[test]
    fn too_big_is_refused_from_a_4_byte_header_alone() {
        let error = decode_error(&mut Frames::from_client(100), &[0x82, 0xfe, 0x00, 0xc8]);
        assert_eq!(error, Error::TooBig { len: 200, max: 100 });
        // Exactly max is accepted.
        let wire = client_frame(Opcode::Binary, &[1; 100], [3; 4]);
        let frames = decode_all(&mut Frames::from_client(100), &wire).unwrap();
        assert_eq!(frames, [frame(true, Opcode::Binary, &[1; 100])]);
    }

    #[test]
    fn a_64_bit_length_with_its_top_bit_set_is_too_big_whatever_the_max() {
        let header = [0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0];
        let error = decode_error(&mut Frames::from_server(usize::MAX), &header);
        assert_eq!(
            error,
            Error::TooBig {
                len: 1 << 63,
                max: usize::MAX
            }
        );
    }

    #[test]
    fn a_message_longer_than_max_is_refused_at_the_continuation_header() {
        let mut wire = BytesMut::new();
        wire.extend_from_slice(&[0x02, 3, b'a', b'b', b'c']);
        wire.extend_from_slice(&[0x00, 3, b'd', b'e', b'f']);
        wire.extend_from_slice(&[0x80, 2]);
        let error = decode_error(&mut Frames::from_server(7), &wire);
        assert_eq!(error, Error::TooBig { len: 8, max: 7 });
        assert_eq!(error.close_code(), close::TOO_BIG);
    }

    #[test]
    fn continuations_must_follow_an_unfinished_data_frame() {
        let error = decode_error(&mut Frames::from_server(16), &[0x80, 0x00]);
        assert_eq!(error, Error::UnexpectedContinuation);
        assert_eq!(error.close_code(), close::PROTOCOL_ERROR);
        // A finished message cannot be continued either.
        let error = decode_error(&mut Frames::from_server(16), &[0x82, 0x00, 0x00, 0x00]);
        assert_eq!(error, Error::UnexpectedContinuation);

        let error = decode_error(&mut Frames::from_server(16), &[0x01, 0x00, 0x82, 0x00]);
        assert_eq!(error, Error::ExpectedContinuation);
        assert_eq!(error.close_code(), close::PROTOCOL_ERROR);
    }

    #[test]
    fn close_payload_round_trips_and_cuts_the_reason_on_a_char_boundary() {
        assert_eq!(&close_payload(1000, "")[..], [0x03, 0xe8]);
        assert_eq!(&close_payload(close::GOING_AWAY, "bye")[..], b"\x03\xe9bye");
        assert_eq!(
            parse_close(&close_payload(close::GOING_AWAY, "bye")),
            Ok(Some((1001, "bye")))
        );
        // 122 ASCII bytes and a 2-byte 'é' would be 124: the 'é' goes.
        let reason = format!("{}é", "a".repeat(122));
        let payload = close_payload(close::POLICY, &reason);
        assert_eq!(payload.len(), 2 + 122);
        assert_eq!(
            parse_close(&payload),
            Ok(Some((close::POLICY, &reason[..122])))
        );
        let payload = close_payload(close::NORMAL, &"x".repeat(500));
        assert_eq!(payload.len(), CONTROL_PAYLOAD_MAX);
    }

    #[test]
    fn parse_close_refuses_one_byte_bad_codes_and_bad_utf8() {
        assert_eq!(parse_close(b""), Ok(None));
        let error = parse_close(&[0x03]).unwrap_err();
        assert_eq!(error, Error::BadClose(CloseError::OneByte));
        assert_eq!(error.close_code(), close::PROTOCOL_ERROR);
        for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, u16::MAX] {
            let error = parse_close(&code.to_be_bytes()).unwrap_err();
            assert_eq!(error, Error::BadClose(CloseError::Code(code)));
            assert_eq!(error.close_code(), close::PROTOCOL_ERROR);
        }
        for code in [
            1000u16, 1001, 1002, 1003, 1007, 1010, 1011, 1014, 3000, 4999,
        ] {
            assert_eq!(parse_close(&code.to_be_bytes()), Ok(Some((code, ""))));
        }
        let error = parse_close(&[0x03, 0xe8, 0xff, 0xfe]).unwrap_err();
        assert_eq!(error, Error::BadClose(CloseError::Utf8));
        assert_eq!(error.close_code(), close::INVALID_DATA);
    }

    #[test]
    fn decode_checks_close_payloads() {
        let wire = client_frame(Opcode::Close, &[0x03, 0xe8, 0xc3], [7; 4]);
        let error = decode_error(&mut Frames::from_client(16), &wire);
        assert_eq!(error, Error::BadClose(CloseError::Utf8));
        assert_eq!(error.close_code(), close::INVALID_DATA);
        let wire = server_frame(Opcode::Close, &[0x03]);
        let error = decode_error(&mut Frames::from_server(16), &wire);
        assert_eq!(error, Error::BadClose(CloseError::OneByte));

        let wire = server_frame(Opcode::Close, &close_payload(close::NORMAL, "done"));
        let frames = decode_all(&mut Frames::from_server(16), &wire).unwrap();
        assert_eq!(parse_close(&frames[0].payload), Ok(Some((1000, "done"))));
    }

    #[test]
    fn error_messages_carry_the_numbers() {
        assert_eq!(
            Error::ControlTooLong(300).to_string(),
            "control frame payload length 300 exceeds max 125 (rfc 6455 §5.5)"
        );
        assert_eq!(
            Error::Reserved(0b100).to_string(),
            "reserved bits 0b100 set, with no extension negotiated (rfc 6455 §5.2)"
        );
        assert_eq!(
            Error::UnknownOpcode(0xb).to_string(),
            "unknown opcode 0xb (rfc 6455 §5.2)"
        );
        assert_eq!(
            Error::BadClose(CloseError::Code(1005)).to_string(),
            "close frame: status code 1005 is not one an endpoint may send (rfc 6455 §7.4)"
        );
    }

    #[test]
    fn upgrade_request_parses_as_http_with_the_handshake_headers() {
        let key = client_key([7; 16]);
        let request = upgrade_request("example.com:8080", "/live/a.flv", &key, Some("flv"));
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut parsed = httparse::Request::new(&mut headers);
        let status = parsed.parse(request.as_bytes()).unwrap();
        assert_eq!(status, httparse::Status::Complete(request.len()));
        assert_eq!(parsed.method, Some("GET"));
        assert_eq!(parsed.path, Some("/live/a.flv"));
        let header = |name: &str| {
            parsed
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| std::str::from_utf8(h.value).unwrap())
        };
        assert_eq!(header("host"), Some("example.com:8080"));
        assert_eq!(header("upgrade"), Some("websocket"));
        assert_eq!(header("connection"), Some("Upgrade"));
        assert_eq!(header("sec-websocket-key"), Some(key.as_str()));
        assert_eq!(header("sec-websocket-version"), Some("13"));
        assert_eq!(header("sec-websocket-protocol"), Some("flv"));
        assert!(is_valid_key(header("sec-websocket-key").unwrap()));

        let request = upgrade_request("h", "/", &key, None);
        assert!(!request.contains("Protocol"));
        assert!(request.ends_with("Version: 13\r\n\r\n"));
    }

    /// A legal sequence of frames: data messages, some fragmented, with
    /// control frames between fragments, and a Close at the end.
    fn frame_sequence() -> impl Strategy<Value = Vec<(Frame, [u8; 4])>> {
        let payload = |max: usize| prop::collection::vec(any::<u8>(), 0..max);
        let fragment = (payload(300), prop::option::of(payload(126)), any::<bool>());
        let message = (any::<bool>(), prop::collection::vec(fragment, 1..4));
        (
            prop::collection::vec(message, 0..5),
            payload(60),
            any::<u16>(),
        )
            .prop_map(|(messages, reason, mask_seed)| {
                let mut frames = Vec::new();
                for (text, fragments) in messages {
                    let last = fragments.len() - 1;
                    for (i, (data, control, ping)) in fragments.into_iter().enumerate() {
                        let opcode = match (i, text) {
                            (0, true) => Opcode::Text,
                            (0, false) => Opcode::Binary,
                            _ => Opcode::Continuation,
                        };
                        frames.push(frame(i == last, opcode, &data));
                        if let (Some(control), true) = (control, i != last) {
                            let opcode = if ping { Opcode::Ping } else { Opcode::Pong };
                            frames.push(frame(true, opcode, &control[..control.len().min(125)]));
                        }
                    }
                }
                let reason = String::from_utf8_lossy(&reason).into_owned();
                frames.push(frame(true, Opcode::Close, &close_payload(1000, &reason)));
                frames
                    .into_iter()
                    .enumerate()
                    .map(|(i, frame)| {
                        let mask = (u32::from(mask_seed).wrapping_mul(2_654_435_761) ^ i as u32)
                            .to_be_bytes();
                        (frame, mask)
                    })
                    .collect()
            })
    }

    /// What a sender writes: final frames with the encoders, the first
    /// fragments of a message by flipping FIN off.
    fn encode(frames: &[(Frame, [u8; 4])], masked: bool) -> Vec<u8> {
        let mut wire = Vec::new();
        for (frame, mask) in frames {
            let mut bytes = if masked {
                client_frame(frame.opcode, &frame.payload, *mask).to_vec()
            } else {
                server_frame(frame.opcode, &frame.payload).to_vec()
            };
            if !frame.fin {
                bytes[0] &= !FIN;
            }
            wire.extend_from_slice(&bytes);
        }
        wire
    }

    proptest! {
        #[test]
        fn client_frames_decode_to_themselves_under_any_split(
            frames in frame_sequence(),
            cuts in prop::collection::vec(any::<usize>(), 0..20),
        ) {
            let wire = encode(&frames, true);
            let expected: Vec<Frame> = frames.into_iter().map(|(frame, _)| frame).collect();
            let mut decoder = Frames::from_client(1200);
            prop_assert_eq!(decode_in_pieces(&mut decoder, &wire, &cuts), expected);
        }

        #[test]
        fn server_frames_decode_to_themselves_under_any_split(
            frames in frame_sequence(),
            cuts in prop::collection::vec(any::<usize>(), 0..20),
        ) {
            let wire = encode(&frames, false);
            let expected: Vec<Frame> = frames.into_iter().map(|(frame, _)| frame).collect();
            let mut decoder = Frames::from_server(1200);
            prop_assert_eq!(decode_in_pieces(&mut decoder, &wire, &cuts), expected);
        }

        #[test]
        fn decode_of_any_bytes_never_panics_nor_outgrows_its_input(
            bytes in prop::collection::vec(any::<u8>(), 0..200),
            from_client in any::<bool>(),
        ) {
            let mut frames = if from_client { Frames::from_client(64) } else { Frames::from_server(64) };
            let mut input = BytesMut::from(&bytes[..]);
            while let Ok(Some(frame)) = frames.decode(&mut input) {
                prop_assert!(frame.payload.len() <= 64);
            }
        }
    }
}
