//! Reading FLV files (Adobe FLV v10.1 annex E): the header, then tags of
//! audio, video and script data, each followed by its back pointer. What a
//! bench publisher loops.

use bytes::Bytes;

use ringcast_rtmp::session::MediaKind;

/// One tag of an FLV file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    pub kind: MediaKind,
    /// Milliseconds from the start of the file.
    pub timestamp_ms: u32,
    /// The tag body: an RTMP audio, video or data message body.
    pub body: Bytes,
}

/// Why a file is not FLV.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FlvFileError {
    #[error("not an FLV file (no FLV signature)")]
    Signature,
    #[error("FLV tag at byte {offset} runs past the end of the file")]
    Truncated { offset: usize },
    #[error("FLV file has no tags")]
    Empty,
}

/// FLV header: "FLV", version, flags, header length (u32).
const HEADER_MIN: usize = 9;
/// Tag header: type, size (u24), timestamp (u24 + extension byte), stream id (u24).
const TAG_HEADER: usize = 11;

/// Every audio, video and script tag of `file`, in order.
pub fn read(file: &Bytes) -> Result<Vec<Tag>, FlvFileError> {
    let header: [u8; HEADER_MIN] = (file.get(..HEADER_MIN))
        .and_then(|h| h.try_into().ok())
        .filter(|h: &[u8; HEADER_MIN]| h.starts_with(b"FLV"))
        .ok_or(FlvFileError::Signature)?;
    let header_len = u32::from_be_bytes([header[5], header[6], header[7], header[8]]) as usize;
    // The header, then PreviousTagSize0.
    let mut at = header_len.max(HEADER_MIN) + 4;
    let mut tags = Vec::new();
    while let Some(h) = file.get(at..at + TAG_HEADER) {
        let h: [u8; TAG_HEADER] = h
            .try_into()
            .map_err(|_| FlvFileError::Truncated { offset: at })?;
        let size = u32::from_be_bytes([0, h[1], h[2], h[3]]) as usize;
        let timestamp_ms = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
        let start = at + TAG_HEADER;
        let end = start + size;
        if end > file.len() {
            return Err(FlvFileError::Truncated { offset: at });
        }
        let kind = match h[0] & 0x1F {
            8 => Some(MediaKind::Audio),
            9 => Some(MediaKind::Video),
            18 => Some(MediaKind::Data),
            _ => None,
        };
        if let Some(kind) = kind {
            tags.push(Tag {
                kind,
                timestamp_ms,
                body: file.slice(start..end),
            });
        }
        at = end + 4;
    }
    if tags.is_empty() {
        return Err(FlvFileError::Empty);
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringcast_rtmp::protocol::message::flv_tag;

    fn flv(tags: &[(u8, u32, &[u8])]) -> Bytes {
        let mut out = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
        for (kind, ts, body) in tags {
            out.extend(flv_tag(*kind, *ts, body));
        }
        Bytes::from(out)
    }

    #[test]
    fn tags_come_back_with_kinds_timestamps_and_bodies() {
        let file = flv(&[
            (18, 0, b"\x02\x00\x0aonMetaData"),
            (9, 0, &[0x17, 0]),
            (8, 0x0100_0023, &[0xAF, 1]),
        ]);
        let tags = read(&file).expect("valid");
        let summary: Vec<_> = tags
            .iter()
            .map(|t| (t.kind, t.timestamp_ms, t.body.len()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (MediaKind::Data, 0, 13),
                (MediaKind::Video, 0, 2),
                (MediaKind::Audio, 0x0100_0023, 2)
            ]
        );
    }

    #[test]
    fn bad_files_are_named_errors() {
        assert_eq!(
            read(&Bytes::from_static(b"GIF89a....")),
            Err(FlvFileError::Signature)
        );
        let mut file = flv(&[(9, 0, &[0x17, 0, 0, 0])]).to_vec();
        file.truncate(file.len() - 6);
        assert_eq!(
            read(&Bytes::from(file)),
            Err(FlvFileError::Truncated { offset: 13 })
        );
        assert_eq!(read(&flv(&[])), Err(FlvFileError::Empty));
    }

    #[test]
    fn the_bundled_sample_is_h264_and_aac() {
        let tags = read(&Bytes::from_static(super::super::source::SAMPLE)).expect("valid");
        let coded = tags
            .iter()
            .filter(|t| t.kind == MediaKind::Video && t.body[1] == 1)
            .count();
        assert_eq!(coded, 60, "2 s at 30 fps");
        assert!(
            tags.iter()
                .any(|t| t.kind == MediaKind::Audio && t.body[..2] == [0xAF, 0])
        );
    }
}
