//! The stamp a bench publisher puts in every video frame: its wall-clock
//! time, a sequence number and which publisher sent it, carried in an H.264
//! SEI NAL unit (user data unregistered, ITU-T H.264 §D.1.7) that decoders
//! ignore. Players read it from the first bytes of each frame to measure
//! end-to-end latency and lost frames.

/// Identifies our SEI payload among others (a random UUID, fixed).
pub const UUID: [u8; 16] = [
    0x72, 0x69, 0x6E, 0x67, 0x63, 0x61, 0x73, 0x74, 0x2D, 0x73, 0x74, 0x61, 0x6D, 0x70, 0x2D, 0x31,
];

/// H.264 NAL unit type of supplemental enhancement information.
const NAL_SEI: u8 = 6;
/// SEI payload type "user data unregistered".
const PAYLOAD_USER_DATA: u8 = 5;
/// UUID, wall clock (8), sequence (8), publisher (4).
const PAYLOAD_LEN: usize = 16 + 8 + 8 + 4;

/// What a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// Microseconds since the Unix epoch when the frame was sent.
    pub wall_us: u64,
    /// The frame's number in its publisher's stream.
    pub seq: u64,
    pub publisher: u32,
}

impl Stamp {
    /// The SEI NAL unit (header byte, escaped payload, trailing bits),
    /// without a length prefix.
    pub fn to_nal(&self) -> Vec<u8> {
        let mut rbsp = Vec::with_capacity(2 + PAYLOAD_LEN + 1);
        rbsp.push(PAYLOAD_USER_DATA);
        rbsp.push(PAYLOAD_LEN as u8);
        rbsp.extend_from_slice(&UUID);
        rbsp.extend_from_slice(&self.wall_us.to_be_bytes());
        rbsp.extend_from_slice(&self.seq.to_be_bytes());
        rbsp.extend_from_slice(&self.publisher.to_be_bytes());
        // rbsp_trailing_bits: a stop bit, then alignment.
        rbsp.push(0x80);
        let mut nal = Vec::with_capacity(rbsp.len() + 8);
        nal.push(NAL_SEI);
        escape(&rbsp, &mut nal);
        nal
    }

    /// Finds our stamp in an AVC video tag body (5-byte AVC header, then
    /// length-prefixed NAL units), looking only at what `body` holds (a
    /// prefix is enough: the stamp is the first NAL unit).
    pub fn find(body: &[u8]) -> Option<Stamp> {
        // Legacy AVC coded frame: codec id 7, packet type 1.
        let [flags, packet, ..] = *body.get(..5)? else {
            return None;
        };
        if flags & 0x0F != 7 || packet != 1 {
            return None;
        }
        Stamp::find_in_nals(body.get(5..)?)
    }

    /// Finds our stamp in AVCC data: 4-byte length-prefixed NAL units, as
    /// an FLV AVC tag body holds them after its header and as a CMAF
    /// `avc1` sample is (ISO/IEC 14496-15 §5.3.2). Like [`Stamp::find`],
    /// a prefix of the data is enough.
    pub fn find_in_nals(nals: &[u8]) -> Option<Stamp> {
        let mut at = 0usize;
        while at.checked_add(5)? <= nals.len() {
            let len = u32::from_be_bytes(nals.get(at..at + 4)?.try_into().ok()?) as usize;
            let nal = nals.get(at + 4..)?;
            let nal = nal.get(..len.min(nal.len()))?;
            if let Some((_, rest)) = nal.split_first().filter(|(h, _)| *h & 0x1F == NAL_SEI) {
                if let Some(stamp) = parse_sei(rest) {
                    return Some(stamp);
                }
            }
            at = at.checked_add(4)?.checked_add(len)?;
        }
        None
    }
}

/// Inserts emulation prevention bytes: no 0x000000..=0x000003 may appear
/// inside a NAL unit (H.264 §7.4.1).
fn escape(rbsp: &[u8], out: &mut Vec<u8>) {
    let mut zeros = 0;
    for &b in rbsp {
        if zeros >= 2 && b <= 3 {
            out.push(3);
            zeros = 0;
        }
        out.push(b);
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
}

/// Removes emulation prevention bytes.
fn unescape(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        out.push(b);
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
    out
}

/// Reads SEI messages until ours (payload type and size bytes of 0xFF
/// extend, §7.3.2.3.1).
fn parse_sei(escaped: &[u8]) -> Option<Stamp> {
    let rbsp = unescape(escaped);
    let mut at = 0;
    loop {
        let (payload_type, next) = sei_number(&rbsp, at)?;
        let (size, next) = sei_number(&rbsp, next)?;
        let payload = rbsp.get(next..next.checked_add(size)?)?;
        if payload_type == usize::from(PAYLOAD_USER_DATA)
            && size == PAYLOAD_LEN
            && payload.get(..16)? == UUID
        {
            return Some(Stamp {
                wall_us: u64::from_be_bytes(payload.get(16..24)?.try_into().ok()?),
                seq: u64::from_be_bytes(payload.get(24..32)?.try_into().ok()?),
                publisher: u32::from_be_bytes(payload.get(32..36)?.try_into().ok()?),
            });
        }
        at = next + size;
        if rbsp.get(at).is_none_or(|b| *b == 0x80) {
            return None;
        }
    }
}

fn sei_number(rbsp: &[u8], mut at: usize) -> Option<(usize, usize)> {
    let mut value = 0usize;
    loop {
        let b = *rbsp.get(at)?;
        at += 1;
        value = value.checked_add(usize::from(b))?;
        if b != 0xFF {
            return Some((value, at));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn avc_body(nals: &[&[u8]]) -> Vec<u8> {
        let mut body = vec![0x27, 1, 0, 0, 0];
        for nal in nals {
            body.extend((nal.len() as u32).to_be_bytes());
            body.extend(*nal);
        }
        body
    }

    #[test]
    fn a_stamp_survives_the_round_trip_through_an_avc_frame() {
        let stamp = Stamp {
            wall_us: 1_764_356_000_123_456,
            seq: 42,
            publisher: 3,
        };
        let slice = [0x41, 0x9A, 0x00, 0x11];
        let body = avc_body(&[&stamp.to_nal(), &slice]);
        assert_eq!(Stamp::find(&body), Some(stamp));
        // A prefix holding the SEI is enough.
        assert_eq!(
            Stamp::find(&body[..5 + 4 + stamp.to_nal().len()]),
            Some(stamp)
        );
    }

    #[test]
    fn zero_runs_are_escaped_so_the_nal_stays_valid() {
        let stamp = Stamp {
            wall_us: 0,
            seq: 0,
            publisher: 0,
        };
        let nal = stamp.to_nal();
        assert!(
            !nal.windows(3)
                .any(|w| w[0] == 0 && w[1] == 0 && w[2] <= 3 && w[2] != 3),
            "no start code emulation: {nal:02x?}"
        );
        assert_eq!(Stamp::find(&avc_body(&[&nal])), Some(stamp));
    }

    #[test]
    fn a_stamp_is_found_in_bare_avcc_nals_as_in_a_tag_body() {
        let stamp = Stamp {
            wall_us: 1_764_356_000_123_456,
            seq: 7,
            publisher: 1,
        };
        let body = avc_body(&[&[0x09, 0xF0], &stamp.to_nal(), &[0x65, 1]]);
        assert_eq!(Stamp::find_in_nals(&body[5..]), Some(stamp));
        assert_eq!(Stamp::find(&body), Some(stamp));
        // A length past the end, or one that overflows, ends the search.
        assert_eq!(Stamp::find_in_nals(&[0xFF, 0xFF, 0xFF, 0xFF, 6, 5]), None);
        assert_eq!(Stamp::find_in_nals(&[0, 0, 0]), None);
    }

    #[test]
    fn frames_without_our_stamp_have_none() {
        assert_eq!(Stamp::find(&avc_body(&[&[0x65, 1, 2, 3]])), None);
        // Another SEI (payload type 1) only.
        assert_eq!(Stamp::find(&avc_body(&[&[6, 1, 1, 0x55, 0x80]])), None);
        assert_eq!(
            Stamp::find(&[0x17, 0, 0, 0, 0, 1, 2]),
            None,
            "a sequence header"
        );
        assert_eq!(Stamp::find(&[0xAF, 1, 0, 0, 0]), None, "audio");
        assert_eq!(Stamp::find(&[]), None);
    }
}
