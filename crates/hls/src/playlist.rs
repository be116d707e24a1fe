//! The media playlist (RFC 8216bis with Low-Latency HLS): the text of one
//! [`Window`], nothing else. It reads the window and writes tags; it
//! decides nothing about cutting or retention (the packager does).
//!
//! What it writes, and why:
//!
//! - `EXT-X-VERSION:6`: the lowest the tags require (section 8: "The
//!   EXT-X-MAP tag in a Media Playlist that does not contain
//!   EXT-X-I-FRAMES-ONLY" needs 6; decimal `EXTINF` needs 3; the LL-HLS
//!   tags state no version of their own, only `EXT-X-SKIP`, which is not
//!   used, needs 9);
//! - `EXT-X-SERVER-CONTROL` (4.4.3.8): blocking reloads, and
//!   `PART-HOLD-BACK` at three part targets ("SHOULD be at least three
//!   times the Part Target Duration"); `EXT-X-PART-INF` (4.4.3.7), required
//!   with `EXT-X-PART`;
//! - `EXT-X-DISCONTINUITY-SEQUENCE` always (4.4.3.3 allows it at 0);
//! - per segment, before its first `EXT-X-PART` as 4.4.4.9 requires:
//!   `EXT-X-DISCONTINUITY`, `EXT-X-MAP` (at the first segment and at each
//!   change of init segment), `EXT-X-PROGRAM-DATE-TIME`;
//! - `EXT-X-PART` for the open segment and the last `PART_SEGMENTS`
//!   complete ones (6.2.2: parts "SHOULD be removed from the Playlist
//!   after they are greater than three Target Durations from the end");
//! - `EXT-X-PRELOAD-HINT` for the part being made (4.4.5.3, 6.2.6);
//! - no `EXT-X-ENDLIST`: the stream is live. After the source ends the
//!   window keeps its last segments until the server drops the stream.
//!
//! A window with no segment yet (nothing packaged) renders a valid
//! playlist with the header only and no preload hint; the server does not
//! serve such a window (it answers `404` until the first part exists), so
//! a player never sees it, but rendering it never fails.
//!
//! Every URI gets the request's query (an access key), percent-encoding
//! what a quoted-string or a URI line cannot hold (4.2: a quoted-string
//! holds no CR, LF or `"`), so a query never breaks the playlist.

use std::fmt::Write as _;

use crate::window::{Segment, Window};

/// The complete segments whose parts are listed (with the open one's).
/// Two segments is at most two target durations; with the open segment
/// the oldest listed part stays within three target durations of the end
/// (6.2.2), and a player starting `PART-HOLD-BACK` from the end finds its
/// parts.
const PART_SEGMENTS: usize = 2;

/// The compatibility version the tags need (see the module docs).
const VERSION: u32 = 6;

/// `PART-HOLD-BACK` in part targets (4.4.3.8: at least two, "SHOULD be at
/// least three").
const PART_HOLD_BACK_PARTS: u64 = 3;

/// The media playlist for `window`. `uri_prefix` starts every URI (the
/// server passes `"{stream}/"`: the playlist is `/{app}/{stream}.m3u8`,
/// its media `/{app}/{stream}/…`). `query` (without its `?`, may be
/// empty) is appended to every URI in it, so a player's access key
/// reaches its segment and part requests.
pub fn render(window: &Window, uri_prefix: &str, query: &str) -> String {
    let uris = Uris {
        prefix: escape(uri_prefix),
        query: escape(query),
    };
    let listed = window.listed();
    let mut out = String::with_capacity(256 + 160 * listed.len());
    header(&mut out, window);
    // Parts are listed for the open segment and the last PART_SEGMENTS
    // complete ones.
    let open = listed.last().is_some_and(|segment| !segment.complete);
    let parts_from = listed
        .len()
        .saturating_sub(PART_SEGMENTS + usize::from(open));
    let mut init = None;
    for (index, segment) in listed.iter().enumerate() {
        media_segment(
            &mut out,
            segment,
            init != Some(segment.init),
            index >= parts_from,
            &uris,
        );
        init = Some(segment.init);
    }
    if let Some((msn, part)) = window.next_part() {
        let _ = writeln!(
            out,
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}\"",
            uris.part(msn, part)
        );
    }
    out
}

/// `s.mmm` for a duration in milliseconds.
fn seconds(duration_ms: u64) -> String {
    format!("{}.{:03}", duration_ms / 1_000, duration_ms % 1_000)
}

/// ISO 8601 / RFC 3339 `date-time` in UTC with milliseconds
/// (`2026-12-05T23:59:00.123Z`), as `EXT-X-PROGRAM-DATE-TIME` takes it
/// (4.4.4.6), from Unix milliseconds.
fn date_time(unix_ms: u64) -> String {
    const MS_PER_DAY: u64 = 86_400_000;
    let (year, month, day) = civil_from_days(unix_ms / MS_PER_DAY);
    let ms_of_day = unix_ms % MS_PER_DAY;
    let (hours, minutes) = (ms_of_day / 3_600_000, ms_of_day / 60_000 % 60);
    let (seconds, ms) = (ms_of_day / 1_000 % 60, ms_of_day % 1_000);
    format!("{year:04}-{month:02}-{day:02}T{hours:02}:{minutes:02}:{seconds:02}.{ms:03}Z")
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for non-negative days): counted in 400-year eras
/// of 146 097 days from 0000-03-01, so that February, with the leap day,
/// is the last month of the counted year.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Days from 0000-03-01 to 1970-01-01.
    const EPOCH_SHIFT_DAYS: u64 = 719_468;
    const ERA_DAYS: u64 = 146_097;
    let days = days.saturating_add(EPOCH_SHIFT_DAYS);
    let era = days / ERA_DAYS;
    let day_of_era = days % ERA_DAYS; // [0, 146096]
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365; // [0, 399]
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100); // [0, 365]
    let month_from_march = (5 * day_of_year + 2) / 153; // [0, 11]
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1; // [1, 31]
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

fn header(out: &mut String, window: &Window) {
    let part_target_ms = u64::from(window.part_target_ms);
    let media_sequence = window.listed().first().map_or(0, |segment| segment.msn);
    let _ = write!(
        out,
        "#EXTM3U\n\
         #EXT-X-VERSION:{VERSION}\n\
         #EXT-X-TARGETDURATION:{}\n\
         #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={}\n\
         #EXT-X-PART-INF:PART-TARGET={}\n\
         #EXT-X-MEDIA-SEQUENCE:{media_sequence}\n\
         #EXT-X-DISCONTINUITY-SEQUENCE:{}\n",
        window.target_duration_s,
        seconds(part_target_ms.saturating_mul(PART_HOLD_BACK_PARTS)),
        seconds(part_target_ms),
        window.discontinuity_sequence,
    );
}

/// One segment's lines: its tags, its parts (when listed), and its URI
/// once complete.
fn media_segment(out: &mut String, segment: &Segment, map: bool, parts: bool, uris: &Uris) {
    if segment.discontinuity {
        out.push_str("#EXT-X-DISCONTINUITY\n");
    }
    if map {
        let _ = writeln!(out, "#EXT-X-MAP:URI=\"{}\"", uris.init(segment.init));
    }
    let _ = writeln!(
        out,
        "#EXT-X-PROGRAM-DATE-TIME:{}",
        date_time(segment.program_date_time_ms)
    );
    if parts {
        for (index, part) in (0u32..).zip(&segment.parts) {
            let _ = write!(
                out,
                "#EXT-X-PART:DURATION={},URI=\"{}\"",
                seconds(u64::from(part.duration_ms)),
                uris.part(segment.msn, index)
            );
            out.push_str(if part.independent {
                ",INDEPENDENT=YES\n"
            } else {
                "\n"
            });
        }
    }
    if segment.complete {
        let _ = write!(
            out,
            "#EXTINF:{},\n{}\n",
            seconds(u64::from(segment.duration_ms)),
            uris.segment(segment.msn)
        );
    }
}

/// How media URIs are written: `{prefix}init{I}.mp4`, `{prefix}seg{N}.m4s`,
/// `{prefix}part{N}.{K}.m4s`, each with `?{query}` when there is one.
struct Uris {
    prefix: String,
    query: String,
}

impl Uris {
    fn init(&self, number: u32) -> String {
        self.with_query(format!("{}init{number}.mp4", self.prefix))
    }

    fn segment(&self, msn: u64) -> String {
        self.with_query(format!("{}seg{msn}.m4s", self.prefix))
    }

    fn part(&self, msn: u64, index: u32) -> String {
        self.with_query(format!("{}part{msn}.{index}.m4s", self.prefix))
    }

    fn with_query(&self, mut uri: String) -> String {
        if !self.query.is_empty() {
            uri.push('?');
            uri.push_str(&self.query);
        }
        uri
    }
}

/// `text` with every byte a URI line or quoted-string cannot carry
/// percent-encoded: controls (CR and LF would end the line), space, `"`
/// (would end the quoted-string), `#` (would start a fragment), DEL and
/// non-ASCII bytes (a URI is ASCII, RFC 3986 2). Anything else, `%` included, is kept: a query
/// arrives already encoded and is passed on as it came.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_graphic() && byte != b'"' && byte != b'#' {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;

    use super::*;
    use crate::window::Part;

    fn part(duration_ms: u32, independent: bool) -> Part {
        Part {
            duration_ms,
            independent,
            bytes: Bytes::from_static(b"moofmdat"),
        }
    }

    fn segment(msn: u64, parts: Vec<Part>, complete: bool) -> Segment {
        Segment {
            msn,
            duration_ms: parts.iter().map(|part| part.duration_ms).sum(),
            parts,
            complete,
            discontinuity: false,
            init: 0,
            // Segment 7 at 2026-12-05T23:59:00.123Z, 2 s each.
            program_date_time_ms: 1_796_515_140_123 - 14_000 + 2_000 * msn,
        }
    }

    /// Two complete segments (7 and 8) and the open one (9, one part),
    /// segment 8 after a new init and a discontinuity.
    fn window() -> Window {
        let mut eight = segment(
            8,
            vec![
                part(500, true),
                part(500, false),
                part(500, false),
                part(499, false),
            ],
            true,
        );
        eight.discontinuity = true;
        eight.init = 1;
        let mut nine = segment(9, vec![part(500, true)], false);
        nine.init = 1;
        Window {
            target_duration_s: 2,
            part_target_ms: 500,
            discontinuity_sequence: 3,
            inits: vec![
                (0, Bytes::from_static(b"init0")),
                (1, Bytes::from_static(b"init1")),
            ],
            segments: vec![
                Arc::new(segment(6, vec![part(500, true)], true)),
                Arc::new(segment(
                    7,
                    vec![
                        part(500, true),
                        part(500, false),
                        part(500, false),
                        part(500, false),
                    ],
                    true,
                )),
                Arc::new(eight),
                Arc::new(nine),
            ],
            unlisted: 1,
            playlist: Bytes::new(),
        }
    }

    const GOLDEN: &str = "#EXTM3U
#EXT-X-VERSION:6
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.500
#EXT-X-PART-INF:PART-TARGET=0.500
#EXT-X-MEDIA-SEQUENCE:7
#EXT-X-DISCONTINUITY-SEQUENCE:3
#EXT-X-MAP:URI=\"live/init0.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2026-12-05T23:59:00.123Z
#EXT-X-PART:DURATION=0.500,URI=\"live/part7.0.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.500,URI=\"live/part7.1.m4s\"
#EXT-X-PART:DURATION=0.500,URI=\"live/part7.2.m4s\"
#EXT-X-PART:DURATION=0.500,URI=\"live/part7.3.m4s\"
#EXTINF:2.000,
live/seg7.m4s
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI=\"live/init1.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2026-12-05T23:59:02.123Z
#EXT-X-PART:DURATION=0.500,URI=\"live/part8.0.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.500,URI=\"live/part8.1.m4s\"
#EXT-X-PART:DURATION=0.500,URI=\"live/part8.2.m4s\"
#EXT-X-PART:DURATION=0.499,URI=\"live/part8.3.m4s\"
#EXTINF:1.999,
live/seg8.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-12-05T23:59:04.123Z
#EXT-X-PART:DURATION=0.500,URI=\"live/part9.0.m4s\",INDEPENDENT=YES
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"live/part9.1.m4s\"
";

    #[test]
    fn render_writes_the_window_exactly() {
        assert_eq!(render(&window(), "live/", ""), GOLDEN);
    }

    #[test]
    fn render_appends_the_query_to_every_uri() {
        let text = render(&window(), "live/", "key=abc&x=%2F");
        assert_eq!(
            text,
            GOLDEN
                .replace(".mp4\"", ".mp4?key=abc&x=%2F\"")
                .replace(".m4s", ".m4s?key=abc&x=%2F")
        );
        let uris: Vec<&str> = text
            .lines()
            .filter(|line| line.contains("URI=") || !line.starts_with('#'))
            .collect();
        assert_eq!(uris.len(), 2 + 4 + 4 + 1 + 2 + 1);
        assert!(
            uris.iter().all(|line| line.contains("?key=abc&x=%2F")),
            "{text}"
        );
    }

    #[test]
    fn render_percent_encodes_what_would_break_a_line_or_a_quoted_string() {
        let text = render(&window(), "a b/", "k=\"x\"\r\n#EXT-X-ENDLIST&é");
        assert!(
            text.contains("URI=\"a%20b/init0.mp4?k=%22x%22%0D%0A%23EXT-X-ENDLIST&%C3%A9\""),
            "{text}"
        );
        assert!(!text.lines().any(|line| line == "#EXT-X-ENDLIST"));
        assert_eq!(text.lines().count(), GOLDEN.lines().count());
    }

    #[test]
    fn render_lists_parts_of_the_last_two_complete_segments_and_the_open_one() {
        let mut window = window();
        window.unlisted = 0;
        let text = render(&window, "", "");
        assert!(!text.contains("part6."), "{text}");
        assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:6\n#EXT-X-DISCONTINUITY-SEQUENCE:3\n#EXT-X-MAP:URI=\"init0.mp4\"\n"));
        assert!(text.contains("#EXTINF:0.500,\nseg6.m4s\n#EXT-X-PROGRAM-DATE-TIME:2026-12-05T23:59:00.123Z\n#EXT-X-PART:"));
        // Without an open segment, the last two complete ones.
        window.segments.pop();
        let text = render(&window, "", "");
        assert!(!text.contains("part6."), "{text}");
        assert!(
            text.contains("part7.0.m4s") && text.contains("part8.3.m4s"),
            "{text}"
        );
        assert!(
            text.ends_with("seg8.m4s\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part9.0.m4s\"\n"),
            "{text}"
        );
    }

    #[test]
    fn render_an_empty_window_gives_the_header_only() {
        let window = Window {
            target_duration_s: 2,
            part_target_ms: 200,
            ..Window::default()
        };
        assert_eq!(
            render(&window, "s/", "k=1"),
            "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:2\n\
             #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.600\n\
             #EXT-X-PART-INF:PART-TARGET=0.200\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-DISCONTINUITY-SEQUENCE:0\n"
        );
        // Even a window no packager makes (a listed empty open segment).
        let window = Window {
            segments: vec![Arc::new(segment(7, vec![], false))],
            ..Window::default()
        };
        assert!(
            render(&window, "", "")
                .ends_with("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part7.0.m4s\"\n")
        );
    }

    #[test]
    fn seconds_has_three_decimals() {
        assert_eq!(seconds(0), "0.000");
        assert_eq!(seconds(7), "0.007");
        assert_eq!(seconds(333), "0.333");
        assert_eq!(seconds(2_000), "2.000");
        assert_eq!(seconds(12_345), "12.345");
    }

    #[test]
    fn date_time_formats_utc_with_milliseconds() {
        assert_eq!(date_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(date_time(1), "1970-01-01T00:00:00.001Z");
        assert_eq!(date_time(86_399_999), "1970-01-01T23:59:59.999Z");
        assert_eq!(date_time(1_796_515_140_123), "2026-12-05T23:59:00.123Z");
        assert_eq!(date_time(1_798_761_599_999), "2026-12-31T23:59:59.999Z");
        assert_eq!(date_time(1_798_761_600_000), "2027-01-01T00:00:00.000Z");
        // Leap years: 2024 (by 4), 2000 (by 400); 2100 (by 100) is not.
        assert_eq!(date_time(1_709_164_800_000), "2024-02-29T00:00:00.000Z");
        assert_eq!(date_time(1_709_251_200_000), "2024-03-01T00:00:00.000Z");
        assert_eq!(date_time(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(date_time(951_868_800_000), "2000-03-01T00:00:00.000Z");
        assert_eq!(date_time(4_107_456_000_000), "2100-02-28T00:00:00.000Z");
        assert_eq!(date_time(4_107_542_400_000), "2100-03-01T00:00:00.000Z");
        assert_eq!(date_time(1_677_628_799_999), "2023-02-28T23:59:59.999Z");
        assert_eq!(date_time(253_402_300_799_999), "9999-12-31T23:59:59.999Z");
        // The largest input does not panic.
        assert!(date_time(u64::MAX).ends_with('Z'));
    }

    #[test]
    fn date_time_agrees_with_a_day_count_over_four_centuries() {
        // Walk day by day from 1970 to 2400, counting dates the slow way.
        let (mut year, mut month, mut day) = (1970u64, 1u64, 1u64);
        for days in 0..(430 * 366) {
            assert_eq!(civil_from_days(days), (year, month, day), "day {days}");
            let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
            let length = match month {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            day += 1;
            if day > length {
                day = 1;
                month += 1;
                if month > 12 {
                    month = 1;
                    year += 1;
                }
            }
        }
    }
}
