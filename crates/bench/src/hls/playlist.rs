//! A media playlist as a low-latency player reads it (RFC 8216bis §4):
//! the segments and their parts, in order and numbered, with the init
//! segment each needs; the preload hint; the numbers that say where to
//! start and whether reloads may block. Tags a player need not act on
//! (`EXT-X-PROGRAM-DATE-TIME`: latency comes from the stamps;
//! `EXT-X-RENDITION-REPORT`, `EXT-X-VERSION`, ...) are skipped, and so are
//! tags nobody defined, as §4.1 asks.
//!
//! A multivariant playlist is read as far as its variants' URIs, so a
//! player handed one can go on to the first.
//!
//! Every size is bounded: the playlist, its lines, each line. Nothing here
//! panics on any input; what cannot be read is an [`Error`] naming the
//! line.

use std::time::Duration;

/// A playlist longer than this is refused. One with 3 segments of 2 s in
/// 10 parts each is about 3 KB; a live window of a thousand segments with
/// long tokens in every URI stays under 1 MiB.
pub const PLAYLIST_BYTES_MAX: usize = 1024 * 1024;
/// Lines past this are refused: a playlist of [`PLAYLIST_BYTES_MAX`]
/// holds about this many lines of real tags, and each line costs a
/// player some work.
pub const LINES_MAX: usize = 20_000;
/// A longer line is refused: URIs carry access tokens (a JWT is a few
/// hundred bytes to 4 KB), never more.
pub const LINE_BYTES_MAX: usize = 8 * 1024;
/// Durations past an hour are refused: no segment, part or hold-back is
/// that long, and the bound keeps every sum of them far from overflow.
const DURATION_S_MAX: f64 = 3600.0;

/// What a player acts on in a media playlist.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Playlist {
    /// `EXT-X-TARGETDURATION`.
    pub target_duration: Duration,
    /// `EXT-X-PART-INF:PART-TARGET`: absent in a playlist without parts.
    pub part_target: Option<Duration>,
    /// `EXT-X-SERVER-CONTROL:PART-HOLD-BACK`: how far from the end of the
    /// playlist a player starts.
    pub part_hold_back: Option<Duration>,
    /// `EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES`: `_HLS_msn` and
    /// `_HLS_part` are honoured.
    pub can_block_reload: bool,
    /// `EXT-X-MEDIA-SEQUENCE`: the number of the first segment.
    pub media_sequence: u64,
    /// The listed segments, oldest first; the last may be the open one.
    pub segments: Vec<Segment>,
    /// `EXT-X-PRELOAD-HINT:TYPE=PART`: the URI of the part after the last
    /// listed, answered once it is made.
    pub preload_hint: Option<String>,
    /// The `EXT-X-MAP` in effect after the last line: the init segment
    /// of a part not listed yet (the hinted one).
    pub map_at_end: Option<String>,
    /// `EXT-X-ENDLIST`: no segment comes after these.
    pub ended: bool,
    /// A multivariant playlist's `EXT-X-STREAM-INF` URIs, in order.
    pub variants: Vec<String>,
}

/// A media segment, complete or the open one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Media sequence number.
    pub msn: u64,
    /// The whole segment's URI; `None` for the open segment, of which only
    /// the parts made so far are listed.
    pub uri: Option<String>,
    /// `EXTINF` (zero for the open segment).
    pub duration: Duration,
    /// Its parts, in order; none once the server has stopped listing
    /// them (segments far from the live edge).
    pub parts: Vec<Part>,
    /// The `EXT-X-MAP` URI in effect for it.
    pub map: Option<String>,
    /// `EXT-X-DISCONTINUITY` came before it.
    pub discontinuity: bool,
}

/// `EXT-X-PART`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    pub duration: Duration,
    pub uri: String,
    /// `INDEPENDENT=YES`: it starts with a keyframe.
    pub independent: bool,
    /// `GAP=YES`: it is not available.
    pub gap: bool,
}

/// Where a part is: its segment's number and its index in the segment
/// (what `_HLS_msn` and `_HLS_part` name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub msn: u64,
    pub part: u32,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "part {}.{}", self.msn, self.part)
    }
}

/// Why a playlist cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("playlist of {len} bytes exceeds max {PLAYLIST_BYTES_MAX}")]
    TooLong { len: usize },
    #[error("playlist is not utf-8")]
    NotUtf8,
    #[error("not a playlist: the first line is not #EXTM3U")]
    NotM3u,
    #[error("playlist has more than max {LINES_MAX} lines")]
    TooManyLines,
    #[error("playlist line {line} exceeds max {LINE_BYTES_MAX} bytes")]
    LineTooLong { line: usize },
    #[error("playlist line {line}: {tag}: {reason}")]
    Value {
        line: usize,
        tag: &'static str,
        reason: &'static str,
    },
    #[error("playlist line {line}: {what} are not played")]
    Unsupported { line: usize, what: &'static str },
}

impl Playlist {
    /// Reads a playlist. A media playlist's parts after its last complete
    /// segment make the open segment.
    pub fn parse(text: &[u8]) -> Result<Playlist, Error> {
        if text.len() > PLAYLIST_BYTES_MAX {
            return Err(Error::TooLong { len: text.len() });
        }
        let text = std::str::from_utf8(text).map_err(|_| Error::NotUtf8)?;
        // A byte order mark is not allowed (§4.1) but costs nothing to skip.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut lines = text.split('\n').enumerate();
        match lines.next() {
            Some((_, first)) if first.trim_end() == "#EXTM3U" => {}
            _ => return Err(Error::NotM3u),
        }
        let mut reader = Reader::default();
        for (index, line) in lines {
            let number = index + 1;
            if number > LINES_MAX {
                return Err(Error::TooManyLines);
            }
            if line.len() > LINE_BYTES_MAX {
                return Err(Error::LineTooLong { line: number });
            }
            reader.line(number, line.trim())?;
        }
        Ok(reader.finish())
    }

    /// A listed segment by number.
    pub fn segment(&self, msn: u64) -> Option<&Segment> {
        let index = usize::try_from(msn.checked_sub(self.media_sequence)?).ok()?;
        self.segments.get(index)
    }

    /// The position after the last listed part: the part being made now,
    /// which the preload hint names.
    pub fn edge(&self) -> Position {
        match self.segments.last() {
            Some(last) if last.uri.is_none() => Position {
                msn: last.msn,
                part: u32::try_from(last.parts.len()).unwrap_or(u32::MAX),
            },
            Some(last) => Position {
                msn: last.msn.saturating_add(1),
                part: 0,
            },
            None => Position {
                msn: self.media_sequence,
                part: 0,
            },
        }
    }

    /// Every listed part with its position and segment, oldest first.
    pub fn parts(&self) -> impl Iterator<Item = (Position, &Part, &Segment)> {
        self.segments.iter().flat_map(|segment| {
            segment.parts.iter().zip(0u32..).map(move |(part, index)| {
                let position = Position {
                    msn: segment.msn,
                    part: index,
                };
                (position, part, segment)
            })
        })
    }
}

/// The parse in progress: tags that apply to the next segment or part
/// wait here until its URI comes.
#[derive(Default)]
struct Reader {
    playlist: Playlist,
    /// Parts listed since the last complete segment.
    parts: Vec<Part>,
    /// `EXTINF` seen, its URI line not yet.
    duration: Option<Duration>,
    discontinuity: bool,
    map: Option<String>,
    /// `EXT-X-STREAM-INF` seen: the next URI line is a variant.
    variant: bool,
}

impl Reader {
    fn line(&mut self, line: usize, text: &str) -> Result<(), Error> {
        if text.is_empty() {
            return Ok(());
        }
        let Some(tag) = text.strip_prefix('#') else {
            return self.uri(line, text);
        };
        let (name, value) = tag.split_once(':').unwrap_or((tag, ""));
        let playlist = &mut self.playlist;
        match name {
            "EXT-X-TARGETDURATION" => {
                playlist.target_duration = seconds(value).ok_or(Error::Value {
                    line,
                    tag: "EXT-X-TARGETDURATION",
                    reason: "not a duration",
                })?;
            }
            "EXT-X-MEDIA-SEQUENCE" => {
                playlist.media_sequence = value.parse().map_err(|_| Error::Value {
                    line,
                    tag: "EXT-X-MEDIA-SEQUENCE",
                    reason: "not a number",
                })?;
            }
            "EXT-X-SERVER-CONTROL" => {
                playlist.can_block_reload = attribute(value, "CAN-BLOCK-RELOAD") == Some("YES");
                playlist.part_hold_back = attribute(value, "PART-HOLD-BACK").and_then(seconds);
            }
            "EXT-X-PART-INF" => {
                playlist.part_target = attribute(value, "PART-TARGET").and_then(seconds);
            }
            "EXT-X-MAP" => {
                if attribute(value, "BYTERANGE").is_some() {
                    return Err(Error::Unsupported {
                        line,
                        what: "byte ranges",
                    });
                }
                self.map = Some(required_uri(line, "EXT-X-MAP", value)?);
            }
            "EXT-X-DISCONTINUITY" => self.discontinuity = true,
            "EXT-X-PART" => self.part(line, value)?,
            "EXTINF" => {
                let duration = value.split(',').next().unwrap_or_default();
                self.duration = Some(seconds(duration).ok_or(Error::Value {
                    line,
                    tag: "EXTINF",
                    reason: "not a duration",
                })?);
            }
            "EXT-X-PRELOAD-HINT" if attribute(value, "TYPE") == Some("PART") => {
                if attribute(value, "BYTERANGE-START").is_some() {
                    return Err(Error::Unsupported {
                        line,
                        what: "byte ranges",
                    });
                }
                playlist.preload_hint = Some(required_uri(line, "EXT-X-PRELOAD-HINT", value)?);
            }
            "EXT-X-BYTERANGE" => {
                return Err(Error::Unsupported {
                    line,
                    what: "byte ranges",
                });
            }
            "EXT-X-ENDLIST" => playlist.ended = true,
            "EXT-X-STREAM-INF" => self.variant = true,
            // Comments and tags a player need not act on.
            _ => {}
        }
        Ok(())
    }

    fn part(&mut self, line: usize, value: &str) -> Result<(), Error> {
        let invalid = |reason| Error::Value {
            line,
            tag: "EXT-X-PART",
            reason,
        };
        if attribute(value, "BYTERANGE").is_some() {
            return Err(Error::Unsupported {
                line,
                what: "byte ranges",
            });
        }
        let duration = attribute(value, "DURATION")
            .and_then(seconds)
            .ok_or(invalid("no DURATION"))?;
        self.parts.push(Part {
            duration,
            uri: required_uri(line, "EXT-X-PART", value)?,
            independent: attribute(value, "INDEPENDENT") == Some("YES"),
            gap: attribute(value, "GAP") == Some("YES"),
        });
        Ok(())
    }

    /// A URI line: it completes a segment, or names a variant.
    fn uri(&mut self, line: usize, uri: &str) -> Result<(), Error> {
        check_uri(line, "URI line", uri)?;
        if std::mem::take(&mut self.variant) {
            self.playlist.variants.push(uri.to_owned());
            return Ok(());
        }
        // A URI with no EXTINF before it is malformed (§4.4.4.1): skipped
        // rather than refused, as players do.
        let Some(duration) = self.duration.take() else {
            return Ok(());
        };
        self.push_segment(line, Some(uri.to_owned()), duration)
    }

    fn push_segment(
        &mut self,
        line: usize,
        uri: Option<String>,
        duration: Duration,
    ) -> Result<(), Error> {
        let msn = self.next_msn().ok_or(Error::Value {
            line,
            tag: "EXT-X-MEDIA-SEQUENCE",
            reason: "segment numbers overflow",
        })?;
        self.playlist.segments.push(Segment {
            msn,
            uri,
            duration,
            parts: std::mem::take(&mut self.parts),
            map: self.map.clone(),
            discontinuity: std::mem::take(&mut self.discontinuity),
        });
        Ok(())
    }

    /// The number of the segment listed next.
    fn next_msn(&self) -> Option<u64> {
        let listed = u64::try_from(self.playlist.segments.len()).ok()?;
        self.playlist.media_sequence.checked_add(listed)
    }

    fn finish(mut self) -> Playlist {
        // The open segment. Were its number to overflow, the last complete
        // segment is numbered u64::MAX and no part can come after it.
        if let Some(msn) = self.next_msn().filter(|_| !self.parts.is_empty()) {
            self.playlist.segments.push(Segment {
                msn,
                uri: None,
                duration: Duration::ZERO,
                parts: self.parts,
                map: self.map.clone(),
                discontinuity: self.discontinuity,
            });
        }
        self.playlist.map_at_end = self.map;
        self.playlist
    }
}

/// A decimal-floating-point number of seconds (§4.2), within
/// [`DURATION_S_MAX`].
fn seconds(value: &str) -> Option<Duration> {
    let seconds: f64 = value.trim().parse().ok()?;
    if !(0.0..=DURATION_S_MAX).contains(&seconds) {
        return None;
    }
    Duration::try_from_secs_f64(seconds).ok()
}

/// The `URI` attribute, which a tag must have.
fn required_uri(line: usize, tag: &'static str, value: &str) -> Result<String, Error> {
    let uri = attribute(value, "URI").ok_or(Error::Value {
        line,
        tag,
        reason: "no URI",
    })?;
    check_uri(line, tag, uri)?;
    Ok(uri.to_owned())
}

/// A URI goes into a request line: spaces or control characters would
/// break it.
fn check_uri(line: usize, tag: &'static str, uri: &str) -> Result<(), Error> {
    if uri.is_empty() || uri.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(Error::Value {
            line,
            tag,
            reason: "URI is empty or holds spaces or control characters",
        });
    }
    Ok(())
}

/// The value of attribute `name` in an attribute list (§4.2), quotes
/// taken off a quoted string. A malformed list yields the attributes
/// before the fault.
fn attribute<'a>(list: &'a str, name: &str) -> Option<&'a str> {
    Attributes { rest: list }.find_map(|(key, value)| (key == name).then_some(value))
}

/// `NAME=value` pairs of an attribute list, in order.
struct Attributes<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Attributes<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<(&'a str, &'a str)> {
        let (name, rest) = self.rest.split_once('=')?;
        let (value, rest) = match rest.strip_prefix('"') {
            // A quoted string holds no quote (§4.2): it ends at the next.
            Some(quoted) => {
                let (value, rest) = quoted.split_once('"')?;
                (value, rest.split_once(',').map_or("", |(_, rest)| rest))
            }
            None => rest.split_once(',').unwrap_or((rest, "")),
        };
        self.rest = rest;
        Some((name.trim(), value.trim()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a ringcast edge serves mid-stream: two complete segments (the
    /// first with its parts no longer listed), the open one, a hint.
    pub(crate) const LIVE: &str = "#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.600
#EXT-X-PART-INF:PART-TARGET=0.200
#EXT-X-MEDIA-SEQUENCE:41
#EXT-X-MAP:URI=\"cam/init0.mp4?k=1\"
#EXT-X-PROGRAM-DATE-TIME:2025-11-28T18:53:20.123Z
#EXTINF:2.000,
cam/seg41.m4s?k=1
#EXT-X-PART:DURATION=0.200,URI=\"cam/part42.0.m4s?k=1\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.200,URI=\"cam/part42.1.m4s?k=1\"
#EXTINF:0.400,
cam/seg42.m4s?k=1
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI=\"cam/init1.mp4?k=1\"
#EXT-X-PROGRAM-DATE-TIME:2025-11-28T18:53:22.523Z
#EXT-X-PART:DURATION=0.200,URI=\"cam/part43.0.m4s?k=1\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.1667,URI=\"cam/part43.1.m4s?k=1\"
#EXT-X-FUTURE-TAG:X=1
#EXT-X-RENDITION-REPORT:URI=\"other.m3u8\",LAST-MSN=43,LAST-PART=1
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"cam/part43.2.m4s?k=1\"
";

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_live_ll_hls_playlist_lists_segments_parts_maps_and_the_hint() {
        let playlist = Playlist::parse(LIVE.as_bytes()).expect("valid");
        assert_eq!(playlist.target_duration, ms(2000));
        assert_eq!(playlist.part_target, Some(ms(200)));
        assert_eq!(playlist.part_hold_back, Some(ms(600)));
        assert!(playlist.can_block_reload);
        assert!(!playlist.ended);
        assert_eq!(playlist.media_sequence, 41);
        let numbers: Vec<_> = playlist.segments.iter().map(|s| s.msn).collect();
        assert_eq!(numbers, [41, 42, 43]);
        let [old, done, open] = playlist.segments.as_slice() else {
            panic!("three segments: {:?}", playlist.segments);
        };
        assert_eq!(old.uri.as_deref(), Some("cam/seg41.m4s?k=1"));
        assert!(old.parts.is_empty());
        assert_eq!(done.duration, ms(400));
        assert_eq!(done.parts.len(), 2);
        assert!(done.parts[0].independent && !done.parts[1].independent);
        assert_eq!(done.map.as_deref(), Some("cam/init0.mp4?k=1"));
        assert!(!done.discontinuity);
        assert_eq!(open.uri, None);
        assert!(open.discontinuity);
        assert_eq!(open.map.as_deref(), Some("cam/init1.mp4?k=1"));
        assert_eq!(open.parts[1].duration, Duration::from_micros(166_700));
        assert_eq!(open.parts[1].uri, "cam/part43.1.m4s?k=1");
        assert_eq!(
            playlist.preload_hint.as_deref(),
            Some("cam/part43.2.m4s?k=1")
        );
        assert_eq!(playlist.edge(), Position { msn: 43, part: 2 });
        assert_eq!(playlist.map_at_end.as_deref(), Some("cam/init1.mp4?k=1"));
        let positions: Vec<_> = playlist.parts().map(|(p, ..)| p.to_string()).collect();
        assert_eq!(
            positions,
            ["part 42.0", "part 42.1", "part 43.0", "part 43.1"]
        );
        assert_eq!(playlist.segment(42).map(|s| s.msn), Some(42));
        assert_eq!(playlist.segment(40), None);
        assert_eq!(playlist.segment(44), None);
    }

    #[test]
    fn a_playlist_ending_on_a_complete_segment_has_its_edge_at_the_next() {
        let text = "#EXTM3U\r\n#EXT-X-TARGETDURATION:1\r\n#EXT-X-MEDIA-SEQUENCE:7\r\n\
                    #EXT-X-PART:DURATION=1,URI=\"p7.0\",INDEPENDENT=YES\r\n#EXTINF:1,\r\ns7\r\n\
                    #EXT-X-ENDLIST\r\n";
        let playlist = Playlist::parse(text.as_bytes()).expect("valid");
        assert_eq!(playlist.segments.len(), 1);
        assert_eq!(playlist.edge(), Position { msn: 8, part: 0 });
        assert!(playlist.ended);
        assert_eq!(playlist.part_target, None);
        assert!(!playlist.can_block_reload);
    }

    #[test]
    fn a_multivariant_playlist_names_its_variants() {
        let text = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000,CODECS=\"avc1.64001f,mp4a.40.2\"\n\
                    low/stream.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=3000000\nhigh/stream.m3u8\n";
        let playlist = Playlist::parse(text.as_bytes()).expect("valid");
        assert_eq!(playlist.variants, ["low/stream.m3u8", "high/stream.m3u8"]);
        assert!(playlist.segments.is_empty());
    }

    #[test]
    fn attribute_lists_take_quoted_commas_and_stop_at_a_fault() {
        let list = "A=1,URI=\"x,y=z\",INDEPENDENT=YES";
        assert_eq!(attribute(list, "URI"), Some("x,y=z"));
        assert_eq!(attribute(list, "INDEPENDENT"), Some("YES"));
        assert_eq!(attribute(list, "B"), None);
        assert_eq!(attribute("URI=\"open", "URI"), None);
        assert_eq!(attribute("A=1,B", "B"), None);
        assert_eq!(attribute("", "A"), None);
    }

    #[test]
    fn garbage_is_refused_naming_what_and_where() {
        let parse = |text: &str| Playlist::parse(text.as_bytes());
        assert_eq!(parse(""), Err(Error::NotM3u));
        assert_eq!(parse("<html>"), Err(Error::NotM3u));
        assert_eq!(Playlist::parse(b"#EXTM3U\n\xff"), Err(Error::NotUtf8));
        assert_eq!(
            parse("#EXTM3U\n#EXT-X-TARGETDURATION:soon"),
            Err(Error::Value {
                line: 2,
                tag: "EXT-X-TARGETDURATION",
                reason: "not a duration"
            })
        );
        assert!(matches!(
            parse("#EXTM3U\n#EXTINF:-1,\n"),
            Err(Error::Value { tag: "EXTINF", .. })
        ));
        assert!(matches!(
            parse("#EXTM3U\n#EXT-X-PART:DURATION=0.2\n"),
            Err(Error::Value {
                reason: "no URI",
                ..
            })
        ));
        assert!(matches!(
            parse("#EXTM3U\n#EXT-X-PART:DURATION=NaN,URI=\"a\"\n"),
            Err(Error::Value { .. })
        ));
        assert!(matches!(
            parse("#EXTM3U\n#EXT-X-PART:DURATION=1,URI=\"a b\"\n"),
            Err(Error::Value { .. })
        ));
        assert_eq!(
            parse("#EXTM3U\n#EXT-X-BYTERANGE:100@0\n"),
            Err(Error::Unsupported {
                line: 2,
                what: "byte ranges"
            })
        );
        assert_eq!(
            parse(
                "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:18446744073709551615\n#EXTINF:1,\na\n#EXTINF:1,\nb\n"
            ),
            Err(Error::Value {
                line: 6,
                tag: "EXT-X-MEDIA-SEQUENCE",
                reason: "segment numbers overflow"
            })
        );
        // A URI with no EXTINF and unknown tags are skipped.
        let playlist = parse("#EXTM3U\nstray.m4s\n#EXT-UNKNOWN\n#comment\n").expect("valid");
        assert!(playlist.segments.is_empty());
    }

    #[test]
    fn huge_playlists_lines_and_line_counts_are_refused() {
        let long_line = format!(
            "#EXTM3U\n#EXT-X-PART:URI=\"{}\"\n",
            "a".repeat(LINE_BYTES_MAX)
        );
        assert_eq!(
            Playlist::parse(long_line.as_bytes()),
            Err(Error::LineTooLong { line: 2 })
        );
        let many = format!("#EXTM3U\n{}", "\n".repeat(LINES_MAX + 1));
        assert_eq!(Playlist::parse(many.as_bytes()), Err(Error::TooManyLines));
        let huge = vec![b'#'; PLAYLIST_BYTES_MAX + 1];
        assert_eq!(
            Playlist::parse(&huge),
            Err(Error::TooLong {
                len: PLAYLIST_BYTES_MAX + 1
            })
        );
        // The most lines allowed are read.
        let most = format!("#EXTM3U{}", "\n#EXT-X-X".repeat(LINES_MAX - 1));
        assert!(Playlist::parse(most.as_bytes()).is_ok());
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_are_read_or_refused_without_a_panic(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)
        ) {
            let _ = Playlist::parse(&bytes);
        }

        #[test]
        fn any_lines_of_known_tags_are_read_or_refused_without_a_panic(
            lines in proptest::collection::vec(
                (
                    proptest::sample::select(vec![
                        "#EXT-X-PART:", "#EXTINF:", "#EXT-X-MAP:", "#EXT-X-PRELOAD-HINT:",
                        "#EXT-X-SERVER-CONTROL:", "#EXT-X-MEDIA-SEQUENCE:", "#EXT-X-DISCONTINUITY",
                        "#EXT-X-STREAM-INF:", "", "#EXT-X-PART-INF:", "#EXT-X-TARGETDURATION:",
                    ]),
                    "[A-Z=\",.0-9a-z?/-]{0,40}",
                ),
                0..40,
            )
        ) {
            let mut text = String::from("#EXTM3U\n");
            for (tag, value) in &lines {
                text += tag;
                text += value;
                text += "\n";
            }
            if let Ok(playlist) = Playlist::parse(text.as_bytes()) {
                let _ = playlist.edge();
                let _ = playlist.parts().count();
            }
        }
    }
}
