//! The FLV file header an HTTP-FLV (or WebSocket-FLV) body starts with
//! (FLV 10.1 annex E.2): signature, version 1, which tracks follow, the
//! header's size, then PreviousTagSize0. The tags after it are packaged by
//! the media layer ([`ringcast_rtmp::media::Frame::put_flv_tag`]).

/// Bytes of the header and PreviousTagSize0.
pub const HEADER_BYTES: usize = 13;

/// The header for a stream with audio and/or video. Players read the
/// flags (flv.js and mpegts.js wait for the tracks they announce), so a
/// stream whose tracks are not known yet announces both.
pub fn header(audio: bool, video: bool) -> [u8; HEADER_BYTES] {
    let (audio, video) = if audio || video {
        (audio, video)
    } else {
        (true, true)
    };
    let flags = u8::from(audio) << 2 | u8::from(video);
    [b'F', b'L', b'V', 1, flags, 0, 0, 0, 9, 0, 0, 0, 0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_announces_the_tracks_or_both_when_unknown() {
        assert_eq!(header(true, true), *b"FLV\x01\x05\0\0\0\x09\0\0\0\0");
        assert_eq!(header(false, true)[4], 0x01);
        assert_eq!(header(true, false)[4], 0x04);
        assert_eq!(header(false, false)[4], 0x05);
    }
}
