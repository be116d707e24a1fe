//! The RTMP handshake, server and client side, simple and digest.
//!
//! Owns the bytes exchanged before the first chunk: C0+C1 → S0+S1+S2 → C2.
//! It checks the version byte, negotiates [`Kind`], and hands back exactly
//! the handshake bytes, leaving whatever follows (the first chunks) in the
//! caller's buffer. It must not do I/O, read a clock or draw random numbers:
//! the caller passes the time for S1/C1 and the random bytes, so every run is
//! reproducible. It does not implement RTMPE (version byte 6 or 8): those
//! peers are turned away.
//!
//! # Simple handshake (RTMP 1.0 §5.2)
//! C0/S0 is the version byte, 3. C1/S1 is time (4 bytes, big-endian), four
//! zero bytes and 1528 random bytes (§5.2.3). C2/S2 should echo the peer's
//! C1/S1 (§5.2.4); like nginx-rtmp we echo it verbatim.
//!
//! # Digest ("complex") handshake
//! Not in the published specification; Flash Player 9+ and Flash Media
//! Server introduced it, and ffmpeg (`libavformat/rtmpproto.c`), nginx-rtmp
//! (`ngx_rtmp_handshake.c`), SRS (`srs_protocol_handshake.cpp`) and librtmp
//! agree on it. A non-zero C1/S1 version field (bytes 4..8) announces a
//! 32-byte HMAC-SHA256 digest inside the packet, keyed with the public part
//! of the peer's key and computed over the packet without those 32 bytes.
//! Its offset is `sum(4 bytes at base) % 728 + base + 4`, with base 772
//! (scheme 0) or 8 (scheme 1). A digest-mode S2/C2 is 1504 random bytes and
//! an HMAC-SHA256 of them under `HMAC-SHA256(full own key, peer's digest)`.
//!
//! # Decisions
//! - **Scheme order.** Both sides try scheme 0, then scheme 1, like
//!   nginx-rtmp's server, SRS and ffmpeg's client. Only the CPU cost depends
//!   on the order: for a digest to validate under both schemes, HMAC-SHA256
//!   would need a 256-bit collision. ffmpeg sends scheme 1, so it costs one
//!   more HMAC (a few microseconds) per handshake.
//! - **The server never fails on a digest.** If C1's digest does not
//!   validate, the server answers with a simple handshake (S1 version zero,
//!   S2 = C1), as nginx-rtmp does. If it does validate, S1 uses C1's scheme,
//!   like SRS.
//! - **S1 version** is 4.5.0.1 (wire bytes `04 05 00 01`). Any non-zero
//!   value marks a digest. ffmpeg's client checks S1's digest only when
//!   byte 4 is at least 3, so the version must start with 3 or more for
//!   ffmpeg to check ours.
//! - **The client rejects bad S1 digests and bad S2 signatures.** S1 with a
//!   zero version is a simple answer and is accepted (C2 = S1). A non-zero
//!   version whose digest does not validate is an error. So is an S2 whose
//!   signature does not match our C1's digest: ffmpeg's client fails with
//!   "Signature mismatch" when it checks. nginx-rtmp's client checks neither.
//! - **The server does not look at C2.** Many clients send junk there; it
//!   reads 1536 bytes and is done.
//! - **Randomness is reused.** The caller's 1528 random bytes fill C1/S1
//!   and also the first 1504 bytes of a digest C2/S2. The keys are public,
//!   so the handshake protects nothing, and no peer compares these bytes.
//!
//! # Input
//! `handle_input` takes bytes from the front of the caller's buffer only
//! once a whole step has arrived (1537 bytes of C0+C1, then 1536 of C2; or
//! 3073 of S0+S1+S2 for the client). The version byte is checked as soon as
//! it arrives, so an HTTP request or an RTMPE hello is rejected without
//! waiting for 1536 more bytes. The read buffer must therefore hold at least
//! 3073 bytes. Once an error is returned, the handshake is dead: every later
//! call returns the same error.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::reader::Reader;

/// The version byte in C0 and S0: plain RTMP (RTMP 1.0 §5.2.2).
pub const RTMP_VERSION: u8 = 3;

/// Length of C1, S1, C2 and S2 (RTMP 1.0 §5.2.3).
pub const HANDSHAKE_SIZE: usize = 1536;

/// Random bytes in C1/S1, after the time and version fields.
pub const RANDOM_SIZE: usize = 1528;

/// What the two sides agreed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// RTMP 1.0 §5.2: random bytes, echoed.
    Simple,
    /// Flash Player 9+ style: HMAC-SHA256 digests in C1/S1, signed C2/S2.
    Digest,
}

/// Why a handshake failed. Every variant is the peer's fault: close the
/// connection.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The first byte is not 3. RTMPE sends 6 or 8; an HTTP request sends
    /// `G` or `P`.
    #[error("unsupported rtmp version byte {found:#04x} in {field} (expected 3)")]
    UnsupportedVersion { field: &'static str, found: u8 },
    /// S1 has a non-zero version, which announces a digest, but no digest
    /// validates under either scheme.
    #[error(
        "s1 version {version:#010x} announces a digest, but none validates under scheme 0 or 1"
    )]
    S1DigestInvalid { version: u32 },
    /// S2's last 32 bytes are not the signature bound to our C1's digest.
    #[error("s2 signature does not match the digest of our c1")]
    S2SignatureInvalid,
}

/// The server side: reads C0+C1, answers S0+S1+S2, reads C2.
#[derive(Debug)]
pub struct Server {
    now_ms: u32,
    random: [u8; RANDOM_SIZE],
    state: State,
    kind: Option<Kind>,
    transmit: Option<Bytes>,
}

#[derive(Debug)]
enum State {
    /// Server: C0+C1. Client: S0+S1+S2.
    AwaitFirst,
    /// Server only: C2.
    AwaitC2,
    Done,
    Failed(Error),
}

impl Server {
    /// `now_ms` goes into S1's time field. `random` fills S1, and also S2
    /// when the handshake uses digests.
    pub fn new(now_ms: u32, random: [u8; RANDOM_SIZE]) -> Server {
        Server {
            now_ms,
            random,
            state: State::AwaitFirst,
            kind: None,
            transmit: None,
        }
    }

    /// Takes handshake bytes from the front of `input`, whatever the
    /// split. Bytes after C2 (the first chunks) stay in `input`. After
    /// [`Server::is_done`], `input` is left alone.
    pub fn handle_input(&mut self, input: &mut BytesMut) -> Result<(), Error> {
        let result = self.advance(input);
        if let Err(error) = &result {
            self.state = State::Failed(error.clone());
        }
        result
    }

    /// S0+S1+S2 in one piece once C0+C1 have arrived. Each output is
    /// returned once.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.transmit.take()
    }

    /// True once C2 has been read: the next bytes are RTMP chunks.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// The negotiated kind, known once C1 has been read.
    pub fn kind(&self) -> Option<Kind> {
        self.kind
    }

    fn advance(&mut self, input: &mut BytesMut) -> Result<(), Error> {
        loop {
            match &self.state {
                State::AwaitFirst => {
                    check_version(input, "c0")?;
                    let mut reader = Reader::new(input);
                    let (Some(_c0), Some(c1)) = (reader.u8(), reader.array::<HANDSHAKE_SIZE>())
                    else {
                        return Ok(());
                    };
                    let consumed = reader.offset();
                    input.advance(consumed);
                    self.answer(&c1);
                    self.state = State::AwaitC2;
                }
                State::AwaitC2 => {
                    // C2's content is not checked: many clients send junk.
                    if input.len() < HANDSHAKE_SIZE {
                        return Ok(());
                    }
                    input.advance(HANDSHAKE_SIZE);
                    self.state = State::Done;
                }
                State::Done => return Ok(()),
                State::Failed(error) => return Err(error.clone()),
            }
        }
    }

    /// Builds S0+S1+S2: in kind when C1's digest validates, simple
    /// otherwise.
    fn answer(&mut self, c1: &Packet) {
        let mut out = BytesMut::with_capacity(1 + 2 * HANDSHAKE_SIZE);
        out.put_u8(RTMP_VERSION);
        let digest = if version_field(c1) == 0 {
            None
        } else {
            find_digest(c1, FLASH_PLAYER_KEY_PUBLIC)
        };
        match digest {
            Some((scheme, c1_digest)) => {
                let mut s1 = plain_packet(self.now_ms, SERVER_VERSION, &self.random);
                imprint_digest(&mut s1, scheme, FLASH_MEDIA_SERVER_KEY_PUBLIC);
                out.put_slice(&s1);
                let s2_key = response_key(FLASH_MEDIA_SERVER_KEY, &c1_digest);
                put_signed_response(&mut out, &self.random, &s2_key);
                self.kind = Some(Kind::Digest);
            }
            None => {
                out.put_slice(&plain_packet(self.now_ms, 0, &self.random));
                out.put_slice(c1);
                self.kind = Some(Kind::Simple);
            }
        }
        self.transmit = Some(out.freeze());
    }
}

/// The client side: sends C0+C1, reads S0+S1+S2, answers C2.
#[derive(Debug)]
pub struct Client {
    random: [u8; RANDOM_SIZE],
    /// Our C1's digest, when we offered [`Kind::Digest`].
    c1_digest: Option<[u8; DIGEST_SIZE]>,
    state: State,
    kind: Option<Kind>,
    transmit: Option<Bytes>,
}

impl Client {
    /// Builds C0+C1 at once. `now_ms` goes into C1's time field. `random`
    /// fills C1, and also C2 when the handshake uses digests. `offer` is
    /// [`Kind::Digest`] to send a digest C1 as ffmpeg does (version
    /// 9.0.124.2, scheme 1). The server may still answer simple.
    pub fn new(now_ms: u32, random: [u8; RANDOM_SIZE], offer: Kind) -> Client {
        let (version, scheme) = match offer {
            Kind::Simple => (0, None),
            // Scheme 1 for plain RTMP, as ffmpeg and nginx-rtmp's client do
            // (ffmpeg uses scheme 0 only for RTMPE).
            Kind::Digest => (CLIENT_VERSION, Some(Scheme::One)),
        };
        let mut c1 = plain_packet(now_ms, version, &random);
        let c1_digest =
            scheme.map(|scheme| imprint_digest(&mut c1, scheme, FLASH_PLAYER_KEY_PUBLIC));
        let mut out = BytesMut::with_capacity(1 + HANDSHAKE_SIZE);
        out.put_u8(RTMP_VERSION);
        out.put_slice(&c1);
        Client {
            random,
            c1_digest,
            state: State::AwaitFirst,
            kind: None,
            transmit: Some(out.freeze()),
        }
    }

    /// Takes S0+S1+S2 from the front of `input`, whatever the split.
    /// Anything after S2 stays in `input`. After [`Client::is_done`],
    /// `input` is left alone.
    pub fn handle_input(&mut self, input: &mut BytesMut) -> Result<(), Error> {
        let result = self.advance(input);
        if let Err(error) = &result {
            self.state = State::Failed(error.clone());
        }
        result
    }

    /// C0+C1 first, then C2 once S0+S1+S2 have arrived. Each output is
    /// returned once.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.transmit.take()
    }

    /// True once S2 has been read and C2 is ready to send.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// The negotiated kind, known once S1 has been read.
    pub fn kind(&self) -> Option<Kind> {
        self.kind
    }

    fn advance(&mut self, input: &mut BytesMut) -> Result<(), Error> {
        match &self.state {
            State::AwaitFirst => {}
            State::AwaitC2 | State::Done => return Ok(()),
            State::Failed(error) => return Err(error.clone()),
        }
        check_version(input, "s0")?;
        let mut reader = Reader::new(input);
        let (Some(_s0), Some(s1), Some(s2)) = (
            reader.u8(),
            reader.array::<HANDSHAKE_SIZE>(),
            reader.array::<HANDSHAKE_SIZE>(),
        ) else {
            return Ok(());
        };
        let consumed = reader.offset();
        input.advance(consumed);
        let (kind, c2) = self.answer(&s1, &s2)?;
        // No server answers before C1 reaches it, so C0+C1 has been polled.
        debug_assert!(self.transmit.is_none(), "c0+c1 was never polled");
        self.kind = Some(kind);
        self.transmit = Some(c2.freeze());
        self.state = State::Done;
        Ok(())
    }

    /// Checks S1/S2 against what we offered and builds C2.
    fn answer(&self, s1: &Packet, s2: &Packet) -> Result<(Kind, BytesMut), Error> {
        let mut c2 = BytesMut::with_capacity(HANDSHAKE_SIZE);
        let s1_version = version_field(s1);
        let Some(c1_digest) = self.c1_digest.filter(|_| s1_version != 0) else {
            // We offered simple, or the server answered simple (S1 version
            // zero). ffmpeg accepts this too: echo S1, ignore S2.
            c2.put_slice(s1);
            return Ok((Kind::Simple, c2));
        };
        let Some((_, s1_digest)) = find_digest(s1, FLASH_MEDIA_SERVER_KEY_PUBLIC) else {
            return Err(Error::S1DigestInvalid {
                version: s1_version,
            });
        };
        if !is_signed(s2, &response_key(FLASH_MEDIA_SERVER_KEY, &c1_digest)) {
            return Err(Error::S2SignatureInvalid);
        }
        let c2_key = response_key(FLASH_PLAYER_KEY, &s1_digest);
        put_signed_response(&mut c2, &self.random, &c2_key);
        Ok((Kind::Digest, c2))
    }
}

// ---------------------------------------------------------------------------
// Packets and digests
// ---------------------------------------------------------------------------

/// One C1, S1, C2 or S2.
type Packet = [u8; HANDSHAKE_SIZE];

const DIGEST_SIZE: usize = 32;

/// The part of a digest-mode C2/S2 that its signature covers.
const SIGNED_SIZE: usize = HANDSHAKE_SIZE - DIGEST_SIZE;

/// The Flash Player key: public text, then 32 bytes that every
/// implementation copies (ffmpeg `rtmp_player_key`, nginx-rtmp
/// `ngx_rtmp_client_key`). The first 30 bytes sign C1; the whole key derives
/// the C2 signing key.
const FLASH_PLAYER_KEY: &[u8; 62] = b"Genuine Adobe Flash Player 001\
    \xF0\xEE\xC2\x4A\x80\x68\xBE\xE8\x2E\x00\xD0\xD1\x02\x9E\x7E\x57\
    \x6E\xEC\x5D\x2D\x29\x80\x6F\xAB\x93\xB8\xE6\x36\xCF\xEB\x31\xAE";
const FLASH_PLAYER_KEY_PUBLIC: &[u8; 30] = b"Genuine Adobe Flash Player 001";

/// The Flash Media Server key: the same 32-byte tail. The first 36 bytes
/// sign S1; the whole key derives the S2 signing key.
const FLASH_MEDIA_SERVER_KEY: &[u8; 68] = b"Genuine Adobe Flash Media Server 001\
    \xF0\xEE\xC2\x4A\x80\x68\xBE\xE8\x2E\x00\xD0\xD1\x02\x9E\x7E\x57\
    \x6E\xEC\x5D\x2D\x29\x80\x6F\xAB\x93\xB8\xE6\x36\xCF\xEB\x31\xAE";
const FLASH_MEDIA_SERVER_KEY_PUBLIC: &[u8; 36] = b"Genuine Adobe Flash Media Server 001";

/// S1's version field in digest mode: 4.5.0.1. Byte 4 must be at least 3 for
/// ffmpeg's client to check our digest (see the module docs).
const SERVER_VERSION: u32 = 0x0405_0001;

/// C1's version field in digest mode: Flash Player 9.0.124.2, which
/// ffmpeg's client also claims (`RTMP_CLIENT_VER1..4`).
const CLIENT_VERSION: u32 = 0x0900_7C02;

/// C1/S1's 1528 random bytes are two 764-byte blocks, a key block and a
/// digest block. In the digest block, 4 bytes place the 32-byte digest in the
/// other 760, so it can start at 728 positions.
const BLOCK_SIZE: usize = RANDOM_SIZE / 2;
const DIGEST_POSITIONS: usize = BLOCK_SIZE - 4 - DIGEST_SIZE;

/// Where the digest block starts: scheme 0 puts it second, scheme 1 first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scheme {
    Zero,
    One,
}

impl Scheme {
    /// Tried in this order; see the module docs.
    const ALL: [Scheme; 2] = [Scheme::Zero, Scheme::One];

    const fn block_start(self) -> usize {
        match self {
            Scheme::Zero => 8 + BLOCK_SIZE,
            Scheme::One => 8,
        }
    }

    /// Offset of the digest in `packet` under this scheme.
    fn digest_offset(self, packet: &Packet) -> usize {
        let start = self.block_start();
        let sum: usize = packet
            .iter()
            .skip(start)
            .take(4)
            .map(|&b| usize::from(b))
            .sum();
        sum % DIGEST_POSITIONS + start + 4
    }
}

const _: () = assert!(8 + RANDOM_SIZE == HANDSHAKE_SIZE);
const _: () = assert!(BLOCK_SIZE == 764 && DIGEST_POSITIONS == 728);
// The last digest position of either scheme still lies inside the packet,
// so `split_at_digest` always succeeds.
const _: () =
    assert!(Scheme::Zero.block_start() + 4 + DIGEST_POSITIONS - 1 + DIGEST_SIZE <= HANDSHAKE_SIZE);
const _: () = assert!(Scheme::One.block_start() < Scheme::Zero.block_start());
const _: () = assert!(SIGNED_SIZE <= RANDOM_SIZE);

/// Rejects a C0/S0 that is not 3 as soon as its byte arrives.
fn check_version(input: &[u8], field: &'static str) -> Result<(), Error> {
    match input.first() {
        Some(&found) if found != RTMP_VERSION => Err(Error::UnsupportedVersion { field, found }),
        _ => Ok(()),
    }
}

/// Bytes 4..8 of C1/S1: zero for a simple handshake.
fn version_field(packet: &Packet) -> u32 {
    let [_, _, _, _, a, b, c, d, ..] = *packet;
    u32::from_be_bytes([a, b, c, d])
}

/// A simple-layout C1/S1: time, version, random.
fn plain_packet(now_ms: u32, version: u32, random: &[u8; RANDOM_SIZE]) -> Packet {
    let mut packet = [0; HANDSHAKE_SIZE];
    let fields = now_ms
        .to_be_bytes()
        .into_iter()
        .chain(version.to_be_bytes());
    for (slot, byte) in packet.iter_mut().zip(fields.chain(random.iter().copied())) {
        *slot = byte;
    }
    packet
}

/// The bytes before the digest at `offset`, the digest, and the bytes after.
fn split_at_digest(packet: &Packet, offset: usize) -> Option<(&[u8], &[u8; DIGEST_SIZE], &[u8])> {
    let (before, rest) = packet.split_at_checked(offset)?;
    let (digest, after) = rest.split_first_chunk::<DIGEST_SIZE>()?;
    Some((before, digest, after))
}

/// The scheme and digest of the first scheme under which `packet` carries a
/// valid digest for `key`.
fn find_digest(packet: &Packet, key: &[u8]) -> Option<(Scheme, [u8; DIGEST_SIZE])> {
    Scheme::ALL.into_iter().find_map(|scheme| {
        let (before, digest, after) = split_at_digest(packet, scheme.digest_offset(packet))?;
        // A plain comparison is fine: the keys are public, so timing reveals
        // nothing.
        (hmac_sha256(key, &[before, after]) == *digest).then_some((scheme, *digest))
    })
}

/// Writes the digest of `packet` under `key` at the position `scheme` gives,
/// and returns it.
fn imprint_digest(packet: &mut Packet, scheme: Scheme, key: &[u8]) -> [u8; DIGEST_SIZE] {
    let offset = scheme.digest_offset(packet);
    let Some((before, _, after)) = split_at_digest(packet, offset) else {
        debug_assert!(false, "digest offset {offset} is const-asserted to fit");
        return [0; DIGEST_SIZE];
    };
    let digest = hmac_sha256(key, &[before, after]);
    let slot = packet
        .get_mut(offset..)
        .and_then(|rest| rest.first_chunk_mut::<DIGEST_SIZE>());
    if let Some(slot) = slot {
        *slot = digest;
    }
    digest
}

/// The key that signs S2 (server key) or C2 (player key): bound to the
/// digest the peer sent, so a replayed response does not validate.
fn response_key(full_key: &[u8], peer_digest: &[u8; DIGEST_SIZE]) -> [u8; DIGEST_SIZE] {
    hmac_sha256(full_key, &[peer_digest])
}

/// Appends a digest-mode S2/C2: 1504 of the caller's random bytes, then
/// their HMAC under `key`.
fn put_signed_response(out: &mut BytesMut, random: &[u8; RANDOM_SIZE], key: &[u8; DIGEST_SIZE]) {
    // Never falls back: SIGNED_SIZE <= RANDOM_SIZE is const-asserted.
    let body = random.get(..SIGNED_SIZE).unwrap_or(random);
    out.put_slice(body);
    out.put_slice(&hmac_sha256(key, &[body]));
}

/// Whether S2/C2 ends with the HMAC of its first 1504 bytes under `key`.
fn is_signed(packet: &Packet, key: &[u8; DIGEST_SIZE]) -> bool {
    packet
        .split_at_checked(SIGNED_SIZE)
        .is_some_and(|(body, signature)| hmac_sha256(key, &[body]) == signature)
}

/// HMAC-SHA256 of `parts` concatenated.
fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; DIGEST_SIZE] {
    #[allow(
        clippy::expect_used,
        reason = "HMAC takes keys of any length (RFC 2104 §2); new_from_slice fails only for fixed-key MACs"
    )]
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("hmac accepts any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // -- Independent helpers: the keys are spelled out again here and HMACs
    // -- are computed with the `hmac` crate directly, never through the code
    // -- under test. The Python vectors below pin both.

    const KEY_TAIL_HEX: &str = "f0eec24a8068bee82e00d0d1029e7e576eec5d2d29806fab93b8e636cfeb31ae";
    const FP_TEXT: &[u8] = b"Genuine Adobe Flash Player 001";
    const FMS_TEXT: &[u8] = b"Genuine Adobe Flash Media Server 001";
    /// Where the 4 offset bytes start: scheme 0 and scheme 1.
    const BASE_0: usize = 772;
    const BASE_1: usize = 8;
    const FFMPEG_VERSION: [u8; 4] = [9, 0, 124, 2];

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    fn full_key(text: &[u8]) -> Vec<u8> {
        [text, &hex(KEY_TAIL_HEX)].concat()
    }

    fn mac(key: &[u8], message: &[u8]) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(message);
        mac.finalize().into_bytes().to_vec()
    }

    fn offset_at(packet: &[u8], base: usize) -> usize {
        let sum: usize = packet[base..base + 4].iter().map(|&b| usize::from(b)).sum();
        sum % 728 + base + 4
    }

    fn without_digest(packet: &[u8], offset: usize) -> Vec<u8> {
        [&packet[..offset], &packet[offset + 32..]].concat()
    }

    /// Signs `packet` in place under scheme `base`; returns offset and digest.
    fn sign(packet: &mut [u8], base: usize, key: &[u8]) -> (usize, Vec<u8>) {
        let offset = offset_at(packet, base);
        let digest = mac(key, &without_digest(packet, offset));
        packet[offset..offset + 32].copy_from_slice(&digest);
        (offset, digest)
    }

    fn digest_is_valid(packet: &[u8], base: usize, key: &[u8]) -> bool {
        let offset = offset_at(packet, base);
        mac(key, &without_digest(packet, offset)) == packet[offset..offset + 32]
    }

    /// Byte i is `i * mul + add`: easy to rebuild in Python.
    fn pattern(len: usize, mul: usize, add: usize) -> Vec<u8> {
        (0..len).map(|i| (i * mul + add) as u8).collect()
    }

    fn random(mul: usize, add: usize) -> [u8; RANDOM_SIZE] {
        pattern(RANDOM_SIZE, mul, add).try_into().unwrap()
    }

    /// A Flash-style C1 with a valid digest under scheme `base`.
    fn digest_c1(base: usize, mul: usize, add: usize) -> (Vec<u8>, Vec<u8>) {
        let mut c1 = pattern(HANDSHAKE_SIZE, mul, add);
        c1[4..8].copy_from_slice(&FFMPEG_VERSION);
        let (_, digest) = sign(&mut c1, base, FP_TEXT);
        (c1, digest)
    }

    fn c0(c1: &[u8]) -> BytesMut {
        let mut input = BytesMut::from(&[RTMP_VERSION][..]);
        input.extend_from_slice(c1);
        input
    }

    /// Feeds C0+C1 to a fresh server; returns (server, S1, S2).
    fn serve(c1: &[u8]) -> (Server, Vec<u8>, Vec<u8>) {
        let mut server = Server::new(0x0102_0304, random(13, 5));
        let mut input = c0(c1);
        server.handle_input(&mut input).unwrap();
        assert!(input.is_empty());
        let out = server.poll_transmit().unwrap();
        assert_eq!(out.len(), 1 + 2 * HANDSHAKE_SIZE);
        assert_eq!(out[0], 3);
        let s1 = out[1..1 + HANDSHAKE_SIZE].to_vec();
        let s2 = out[1 + HANDSHAKE_SIZE..].to_vec();
        (server, s1, s2)
    }

    // -- Server: version byte

    #[test]
    fn server_rejects_rtmpe_version_byte_naming_it() {
        let mut server = Server::new(0, [0; RANDOM_SIZE]);
        let mut input = BytesMut::from(&[6u8, 0, 0][..]);
        let error = server.handle_input(&mut input).unwrap_err();
        assert_eq!(
            error.to_string(),
            "unsupported rtmp version byte 0x06 in c0 (expected 3)"
        );
        assert!(server.poll_transmit().is_none());
    }

    #[test]
    fn server_rejects_http_request_at_the_first_byte() {
        let mut server = Server::new(0, [0; RANDOM_SIZE]);
        let mut input = BytesMut::from(&b"GET / HTTP/1.1\r\n"[..]);
        assert_eq!(
            server.handle_input(&mut input),
            Err(Error::UnsupportedVersion {
                field: "c0",
                found: b'G'
            })
        );
    }

    #[test]
    fn server_repeats_its_error_after_failing() {
        let mut server = Server::new(0, [0; RANDOM_SIZE]);
        let first = server.handle_input(&mut BytesMut::from(&[6u8][..]));
        let mut valid = c0(&[0; HANDSHAKE_SIZE]);
        assert_eq!(server.handle_input(&mut valid), first);
        assert!(server.poll_transmit().is_none());
        assert!(!server.is_done());
    }

    // -- Server: simple

    #[test]
    fn server_waits_for_all_of_c1_without_consuming() {
        let mut server = Server::new(0, [0; RANDOM_SIZE]);
        let mut input = c0(&[0; HANDSHAKE_SIZE - 1]);
        server.handle_input(&mut input).unwrap();
        assert_eq!(input.len(), HANDSHAKE_SIZE);
        assert!(server.poll_transmit().is_none());
        assert_eq!(server.kind(), None);
    }

    #[test]
    fn server_answers_zero_version_c1_simple_with_s2_echoing_c1() {
        let mut c1 = pattern(HANDSHAKE_SIZE, 3, 1);
        c1[4..8].fill(0);
        let (server, s1, s2) = serve(&c1);
        assert_eq!(server.kind(), Some(Kind::Simple));
        assert_eq!(s1[..4], [1, 2, 3, 4], "time field");
        assert_eq!(s1[4..8], [0; 4], "zero version field");
        assert_eq!(s1[8..], pattern(RANDOM_SIZE, 13, 5));
        assert_eq!(s2, c1);
    }

    #[test]
    fn server_falls_back_to_simple_when_c1_digest_is_corrupt() {
        let (mut c1, _) = digest_c1(BASE_1, 31, 7);
        let offset = offset_at(&c1, BASE_1);
        c1[offset + 5] ^= 0x01;
        let (server, s1, s2) = serve(&c1);
        assert_eq!(server.kind(), Some(Kind::Simple));
        assert_eq!(s1[4..8], [0; 4]);
        assert_eq!(s2, c1);
    }

    #[test]
    fn server_falls_back_to_simple_when_c1_has_version_but_no_digest() {
        let mut c1 = pattern(HANDSHAKE_SIZE, 5, 9);
        c1[4..8].copy_from_slice(&FFMPEG_VERSION);
        let (server, _, s2) = serve(&c1);
        assert_eq!(server.kind(), Some(Kind::Simple));
        assert_eq!(s2, c1);
    }

    // -- Server: digest

    /// S1 must carry a valid FMS digest at `base`'s offset, and S2 must end
    /// with HMAC(HMAC(full FMS key, C1 digest), S2[..1504]).
    fn assert_digest_answer(s1: &[u8], s2: &[u8], base: usize, c1_digest: &[u8]) {
        assert_eq!(s1[..4], [1, 2, 3, 4], "time field");
        assert_eq!(s1[4..8], [4, 5, 0, 1], "server version");
        assert!(digest_is_valid(s1, base, FMS_TEXT), "s1 digest");
        let key = mac(&full_key(FMS_TEXT), c1_digest);
        assert_eq!(s2[1504..], mac(&key, &s2[..1504]), "s2 signature");
    }

    #[test]
    fn server_answers_scheme_1_digest_c1_in_kind() {
        let (c1, c1_digest) = digest_c1(BASE_1, 31, 7);
        let (server, s1, s2) = serve(&c1);
        assert_eq!(server.kind(), Some(Kind::Digest));
        assert_digest_answer(&s1, &s2, BASE_1, &c1_digest);
    }

    #[test]
    fn server_answers_scheme_0_digest_c1_in_kind() {
        let (c1, c1_digest) = digest_c1(BASE_0, 17, 200);
        assert!(!digest_is_valid(&c1, BASE_1, FP_TEXT));
        let (server, s1, s2) = serve(&c1);
        assert_eq!(server.kind(), Some(Kind::Digest));
        assert_digest_answer(&s1, &s2, BASE_0, &c1_digest);
        assert!(
            !digest_is_valid(&s1, BASE_1, FMS_TEXT),
            "s1 uses c1's scheme"
        );
    }

    /// Digests computed with Python's `hmac`/`hashlib`, from the keys' text
    /// and tail, not from this file. Regenerate with:
    /// ```text
    /// h = lambda k, m: hmac.new(k, m, hashlib.sha256).digest()
    /// pat = lambda n, mul, add: bytes((i * mul + add) & 0xff for i in range(n))
    /// off = lambda p, base: sum(p[base:base + 4]) % 728 + base + 4
    /// def sign(p, base, key):
    ///     o = off(p, base); d = h(key, p[:o] + p[o + 32:]); return p[:o] + d + p[o + 32:], o, d
    /// c1 = pat(1536, mul, add); c1 = c1[:4] + bytes([9, 0, 124, 2]) + c1[8:]
    /// c1, o1, d1 = sign(c1, base, FP[:30])
    /// s1, o2, d2 = sign(bytes([1, 2, 3, 4, 4, 5, 0, 1]) + pat(1528, 13, 5), base, FMS[:36])
    /// s2_signature = h(h(FMS, d1), pat(1528, 13, 5)[:1504])
    /// ```
    struct PythonVector {
        base: usize,
        c1_pattern: (usize, usize),
        c1_digest: (usize, &'static str),
        s1_digest: (usize, &'static str),
        s2_signature: &'static str,
    }

    fn check_python_vector(vector: PythonVector) {
        let (c1_offset, c1_digest) = vector.c1_digest;
        let (s1_offset, s1_digest) = vector.s1_digest;
        let mut c1 = pattern(HANDSHAKE_SIZE, vector.c1_pattern.0, vector.c1_pattern.1);
        c1[4..8].copy_from_slice(&FFMPEG_VERSION);
        assert_eq!(offset_at(&c1, vector.base), c1_offset);
        c1[c1_offset..c1_offset + 32].copy_from_slice(&hex(c1_digest));
        let (server, s1, s2) = serve(&c1);
        assert_eq!(server.kind(), Some(Kind::Digest));
        assert_eq!(s1[s1_offset..s1_offset + 32], hex(s1_digest));
        assert_eq!(s2[..1504], pattern(1504, 13, 5));
        assert_eq!(s2[1504..], hex(vector.s2_signature));
    }

    #[test]
    fn server_matches_python_vector_for_scheme_1() {
        check_python_vector(PythonVector {
            base: BASE_1,
            c1_pattern: (31, 7),
            c1_digest: (
                450,
                "a63083bd136e430bba704fd25ad0a335baa654207de445e87082507375256743",
            ),
            s1_digest: (
                110,
                "c0f70104cd426eea966eb3c2957809182bd427052d87c5d506b44523da168933",
            ),
            s2_signature: "3fbf94aeef61d0c11f7669fcb33ffc0db87206b600db68b1b554218d318f657e",
        });
    }

    #[test]
    fn server_matches_python_vector_for_scheme_0() {
        check_python_vector(PythonVector {
            base: BASE_0,
            c1_pattern: (17, 200),
            c1_digest: (
                926,
                "8bd85908d64de4ac39e5a15e218ad99f2fad692679796a83a54a26126c8b35c8",
            ),
            s1_digest: (
                962,
                "c0089a1d26aa9ba22b7e355314d921a6116daf5d777ae1bf622a992e9225a85d",
            ),
            s2_signature: "80a3f7585ee1efd6933121bd6032136e74a9598a5d560d16d884dcf0f5bd481e",
        });
    }

    // -- Server: C2 and what follows

    #[test]
    fn server_accepts_junk_c2_and_leaves_following_chunks_in_input() {
        let (mut server, _, _) = serve(&[0; HANDSHAKE_SIZE]);
        let mut input = BytesMut::from(&[0xAB; HANDSHAKE_SIZE - 1][..]);
        server.handle_input(&mut input).unwrap();
        assert!(!server.is_done());
        assert_eq!(input.len(), HANDSHAKE_SIZE - 1);
        input.extend_from_slice(&[0xCD, 0x02, 0x00]);
        server.handle_input(&mut input).unwrap();
        assert!(server.is_done());
        assert_eq!(&input[..], &[0x02, 0x00]);
        server.handle_input(&mut input).unwrap();
        assert_eq!(input.len(), 2, "a done server leaves input alone");
    }

    #[test]
    fn server_transmits_each_answer_once() {
        let (mut server, _, _) = serve(&[0; HANDSHAKE_SIZE]);
        assert!(server.poll_transmit().is_none());
        server
            .handle_input(&mut BytesMut::from(&[0; HANDSHAKE_SIZE][..]))
            .unwrap();
        assert!(server.poll_transmit().is_none());
    }

    // -- Client

    /// S0 + S1 + S2 as one input buffer.
    fn response(s1: &[u8], s2: &[u8]) -> BytesMut {
        let mut input = c0(s1);
        input.extend_from_slice(s2);
        input
    }

    fn digest_client() -> (Client, Vec<u8>) {
        let mut client = Client::new(0x0A0B_0C0D, random(29, 11), Kind::Digest);
        let c0c1 = client.poll_transmit().unwrap();
        assert_eq!(c0c1.len(), 1 + HANDSHAKE_SIZE);
        (client, c0c1[1..].to_vec())
    }

    #[test]
    fn client_sends_simple_c1_with_zero_version() {
        let mut client = Client::new(7, random(3, 3), Kind::Simple);
        let out = client.poll_transmit().unwrap();
        assert_eq!(out[..9], [3, 0, 0, 0, 7, 0, 0, 0, 0]);
        assert_eq!(out[9..], pattern(RANDOM_SIZE, 3, 3));
        assert!(client.poll_transmit().is_none());
    }

    #[test]
    fn client_sends_ffmpeg_style_digest_c1() {
        let (_, c1) = digest_client();
        assert_eq!(c1[..8], [0x0A, 0x0B, 0x0C, 0x0D, 9, 0, 124, 2]);
        assert!(digest_is_valid(&c1, BASE_1, FP_TEXT));
    }

    /// The whole digest conversation between our client and our server,
    /// pinned by Python: client time 0x0A0B0C0D and random pattern(i*29+11),
    /// server as in `check_python_vector`.
    #[test]
    fn client_and_server_match_python_vector_for_whole_digest_exchange() {
        let (mut client, c1) = digest_client();
        assert_eq!(
            c1[230..262],
            hex("67b2c0dc287ccd28e4e245bf8ea5852b34a7736ae24f692933736406d61852d5")[..]
        );
        let (_, s1, s2) = serve(&c1);
        assert_eq!(
            s1[110..142],
            hex("c0f70104cd426eea966eb3c2957809182bd427052d87c5d506b44523da168933")[..]
        );
        assert_eq!(
            s2[1504..],
            hex("4c77089df92c9e0c775aaf7e44b9d3da03e8d982ebf010d7b9eb5b7c046dc679")[..]
        );
        client.handle_input(&mut response(&s1, &s2)).unwrap();
        assert_eq!(client.kind(), Some(Kind::Digest));
        let c2 = client.poll_transmit().unwrap();
        assert_eq!(c2[..1504], pattern(1504, 29, 11)[..]);
        assert_eq!(
            c2[1504..],
            hex("a3d8adf6800a545f53585822864335b237e241dfccd6365c5e7633b5fbfd92af")[..]
        );
    }

    #[test]
    fn client_signs_c2_with_key_bound_to_s1_digest() {
        let (mut client, c1) = digest_client();
        let (_, s1, s2) = serve(&c1);
        client.handle_input(&mut response(&s1, &s2)).unwrap();
        let c2 = client.poll_transmit().unwrap();
        let s1_offset = offset_at(&s1, BASE_1);
        let key = mac(&full_key(FP_TEXT), &s1[s1_offset..s1_offset + 32]);
        assert_eq!(c2[1504..], mac(&key, &c2[..1504])[..]);
    }

    #[test]
    fn client_rejects_s1_whose_digest_does_not_validate() {
        let (mut client, c1) = digest_client();
        let (_, mut s1, s2) = serve(&c1);
        let offset = offset_at(&s1, BASE_1);
        s1[offset] ^= 0x80;
        let error = client.handle_input(&mut response(&s1, &s2)).unwrap_err();
        assert_eq!(
            error,
            Error::S1DigestInvalid {
                version: 0x0405_0001
            }
        );
        assert_eq!(
            error.to_string(),
            "s1 version 0x04050001 announces a digest, but none validates under scheme 0 or 1"
        );
        assert!(client.poll_transmit().is_none());
        assert!(!client.is_done());
    }

    #[test]
    fn client_rejects_s2_signed_for_another_c1() {
        let (mut client, _) = digest_client();
        let (other_c1, _) = digest_c1(BASE_1, 31, 7);
        let (_, s1, s2) = serve(&other_c1);
        assert_eq!(
            client.handle_input(&mut response(&s1, &s2)),
            Err(Error::S2SignatureInvalid)
        );
        assert!(client.poll_transmit().is_none());
    }

    #[test]
    fn digest_client_accepts_simple_answer_and_echoes_s1() {
        let (mut client, _) = digest_client();
        let mut s1 = pattern(HANDSHAKE_SIZE, 7, 7);
        s1[4..8].fill(0);
        let junk_s2 = [0x55; HANDSHAKE_SIZE];
        client.handle_input(&mut response(&s1, &junk_s2)).unwrap();
        assert!(client.is_done());
        assert_eq!(client.kind(), Some(Kind::Simple));
        assert_eq!(client.poll_transmit().unwrap()[..], s1[..]);
    }

    #[test]
    fn simple_client_echoes_s1_even_when_it_carries_a_version() {
        let mut client = Client::new(0, [0; RANDOM_SIZE], Kind::Simple);
        let _ = client.poll_transmit();
        let s1 = pattern(HANDSHAKE_SIZE, 11, 1);
        client
            .handle_input(&mut response(&s1, &[0; HANDSHAKE_SIZE]))
            .unwrap();
        assert_eq!(client.kind(), Some(Kind::Simple));
        assert_eq!(client.poll_transmit().unwrap()[..], s1[..]);
    }

    #[test]
    fn client_rejects_s0_version_naming_it() {
        let mut client = Client::new(0, [0; RANDOM_SIZE], Kind::Digest);
        let error = client
            .handle_input(&mut BytesMut::from(&[8u8][..]))
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "unsupported rtmp version byte 0x08 in s0 (expected 3)"
        );
    }

    #[test]
    fn client_waits_for_all_of_s2_without_consuming() {
        let (mut client, _) = digest_client();
        let mut input = response(&[0; HANDSHAKE_SIZE], &[0; HANDSHAKE_SIZE - 1]);
        client.handle_input(&mut input).unwrap();
        assert_eq!(input.len(), 2 * HANDSHAKE_SIZE);
        assert!(!client.is_done());
        assert!(client.poll_transmit().is_none());
    }

    // -- Round trips in memory

    /// Bytes in flight towards one side and that side's read buffer.
    #[derive(Default)]
    struct Wire {
        in_flight: Vec<u8>,
        input: BytesMut,
    }

    impl Wire {
        fn deliver(&mut self, len: usize) {
            let len = len.min(self.in_flight.len());
            self.input.extend_from_slice(&self.in_flight[..len]);
            self.in_flight.drain(..len);
        }
    }

    /// Runs `client` against a fresh server, delivering bytes in `splits`
    /// sizes (cycled). `after_c2` is sent right behind C2, as the first
    /// chunks would be. Returns the server and what remains in its input.
    fn round_trip(mut client: Client, splits: &[usize], after_c2: &[u8]) -> (Server, BytesMut) {
        let mut server = Server::new(99, random(13, 5));
        let (mut to_server, mut to_client) = (Wire::default(), Wire::default());
        let mut sizes = splits.iter().copied().cycle();
        for _ in 0..100_000 {
            if let Some(bytes) = client.poll_transmit() {
                to_server.in_flight.extend_from_slice(&bytes);
                if client.is_done() {
                    to_server.in_flight.extend_from_slice(after_c2);
                }
            }
            if let Some(bytes) = server.poll_transmit() {
                to_client.in_flight.extend_from_slice(&bytes);
            }
            to_server.deliver(sizes.next().unwrap());
            server.handle_input(&mut to_server.input).unwrap();
            to_client.deliver(sizes.next().unwrap());
            client.handle_input(&mut to_client.input).unwrap();
            if client.is_done() && server.is_done() && to_server.in_flight.is_empty() {
                assert_eq!(client.kind(), server.kind());
                assert!(to_client.input.is_empty() && to_client.in_flight.is_empty());
                return (server, to_server.input);
            }
        }
        panic!("handshake did not finish");
    }

    const FIRST_CHUNK: &[u8] = &[0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x01];

    #[test]
    fn round_trip_byte_by_byte_leaves_first_chunk_in_server_input() {
        for kind in [Kind::Simple, Kind::Digest] {
            let client = Client::new(1, random(29, 11), kind);
            let (server, rest) = round_trip(client, &[1], FIRST_CHUNK);
            assert_eq!(server.kind(), Some(kind));
            assert_eq!(&rest[..], FIRST_CHUNK);
        }
    }

    #[test]
    fn round_trips_survive_odd_splits() {
        for kind in [Kind::Simple, Kind::Digest] {
            for splits in [&[7, 1536, 1, 1000, 3][..], &[1537], &[3073, 2], &[5000]] {
                let client = Client::new(1, random(29, 11), kind);
                let (server, rest) = round_trip(client, splits, FIRST_CHUNK);
                assert_eq!(server.kind(), Some(kind), "{splits:?}");
                assert_eq!(&rest[..], FIRST_CHUNK, "{splits:?}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn round_trip_completes_under_any_split(
            digest in any::<bool>(),
            splits in proptest::collection::vec(1usize..2000, 1..8),
            after_c2 in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let kind = if digest { Kind::Digest } else { Kind::Simple };
            let client = Client::new(1, random(29, 11), kind);
            let (server, rest) = round_trip(client, &splits, &after_c2);
            prop_assert_eq!(server.kind(), Some(kind));
            prop_assert_eq!(&rest[..], &after_c2[..]);
        }
    }
}
