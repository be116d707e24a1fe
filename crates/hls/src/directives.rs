//! Delivery directives of a playlist request (RFC 8216bis 6.2.5):
//! `_HLS_msn` and `_HLS_part` ask for a blocking reload (6.2.5.2).
//!
//! Owns reading the directives from a query, taking them out of the query
//! passed on to the playlist's URIs, and deciding, against one window,
//! whether a request is answered now, held, or refused. It holds nothing:
//! the server keeps the held requests and asks again with each window.
//!
//! `_HLS_skip` (6.2.5.1, delta updates) is ignored: the playlist does not
//! advertise `CAN-SKIP-UNTIL`, and a server "MUST ignore the `_HLS_skip`
//! directive if the Playlist does not contain the CAN-SKIP-UNTIL
//! attribute".

use crate::window::Window;

/// A playlist request's directives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Directives {
    /// `_HLS_msn`: answer once this segment (or its part) exists.
    pub msn: Option<u64>,
    /// `_HLS_part`: with `msn`, the part of that segment.
    pub part: Option<u32>,
}

/// Why a request's directives are refused (answered `400`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Malformed(String),
}

/// Where a request stands against a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// Answer now.
    Ready,
    /// Hold the request until a window has it.
    Wait,
    /// Too far ahead (more than two segments, or the advance part limit):
    /// answer `400` now.
    OutOfRange,
}

/// How much of a refused value an error message quotes: enough to
/// recognise it, bounded so a long query cannot make a long log line.
const VALUE_SHOWN_CHARS_MAX: usize = 32;

/// 6.2.5.2: a request more than this many segments past the last one is
/// answered `400` at once.
const MSN_AHEAD_MAX: u64 = 2;

/// 6.2.5.2: "The Advance Part Limit is three divided by the Part Target
/// Duration if the Part Target Duration is less than one second, or
/// three otherwise": three seconds' worth of parts, at least three.
const ADVANCE_PART_LIMIT_MS: u64 = 3_000;
const ADVANCE_PART_LIMIT_PARTS_MIN: u64 = 3;

const MSN: &str = "_HLS_msn";
const PART: &str = "_HLS_part";
/// 6.2.5: "Query parameters for Playlist requests that begin with the
/// string `_HLS_` are reserved by this specification."
const RESERVED_PREFIX: &str = "_HLS_";

impl Directives {
    /// Reads `_HLS_msn`, `_HLS_part` (and ignores `_HLS_skip` and other
    /// parameters) from a decoded query string.
    pub fn parse(query: &str) -> Result<Directives, Error> {
        let mut directives = Directives::default();
        for (name, value) in parameters(query) {
            if name == MSN {
                let msn = decimal::<u64>(name, value)?;
                if directives.msn.replace(msn).is_some() {
                    return Err(repeated(name, value));
                }
            } else if name == PART {
                let part = decimal::<u32>(name, value)?;
                if directives.part.replace(part).is_some() {
                    return Err(repeated(name, value));
                }
            }
        }
        // 6.2.5.2: "If the Playlist URI contains an _HLS_part directive
        // but no _HLS_msn directive, the Server MUST return Bad Request".
        if let (None, Some(part)) = (directives.msn, directives.part) {
            return Err(Error::Malformed(format!("{PART} {part} without {MSN}")));
        }
        Ok(directives)
    }

    /// The query with the directives taken out (what is passed on to the
    /// playlist's URIs): every `_HLS_` parameter goes, the others stay
    /// as they were, in their order.
    pub fn strip(query: &str) -> String {
        query
            .split('&')
            .filter(|parameter| !parameter.is_empty() && !parameter.starts_with(RESERVED_PREFIX))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// Where the request stands against `window`.
    ///
    /// 6.2.5.2: with `_HLS_msn` alone the server holds the request "until
    /// the Playlist contains a Media Segment with a Media Sequence Number
    /// of M or later": a Media Segment is a complete one (its URI line),
    /// the parts of the open segment are not. With `_HLS_part`, until it
    /// "contains the Partial Segment with Part Index N and with a Media
    /// Sequence Number of M or later", where a part index past the last
    /// part of a complete segment means part 0 of the next one. A request
    /// for something older than the window is answered at once ("even if
    /// it is no longer in the Playlist").
    pub fn check(&self, window: &Window) -> Check {
        let Some(msn) = self.msn else {
            return Check::Ready;
        };
        // The part being made now; (0, 0) before the first: nothing is
        // packaged yet and media sequence numbers start at 0.
        let next = window.next_part().unwrap_or((0, 0));
        let request = normalize(window, msn, self.part.unwrap_or(0));
        let ready = match self.part {
            None => msn < next.0,
            Some(_) => request < next,
        };
        if ready {
            return Check::Ready;
        }
        // "the Media Sequence Number of the last Media Segment in the
        // current Playlist plus two"; the open segment counts, as its
        // parts are listed under its number (0 while the stream starts).
        let last_msn = window.segments.last().map_or(0, |segment| segment.msn);
        if msn > last_msn.saturating_add(MSN_AHEAD_MAX) {
            return Check::OutOfRange;
        }
        match self.part {
            Some(_)
                if beyond_advance_part_limit(parts_ahead(request, next), window.part_target_ms) =>
            {
                Check::OutOfRange
            }
            _ => Check::Wait,
        }
    }
}

/// The query's `name=value` pairs (a parameter without `=` has an empty
/// value; empty parameters are skipped).
fn parameters(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .filter(|parameter| !parameter.is_empty())
        .map(|parameter| parameter.split_once('=').unwrap_or((parameter, "")))
}

/// A directive's value: a decimal-integer (RFC 8216bis 4.2), no sign, no
/// blanks, within the type.
fn decimal<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, Error> {
    if value.is_empty() || !value.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(Error::Malformed(format!(
            "{name} value {:?} is not a decimal integer",
            shown(value)
        )));
    }
    value
        .parse()
        .map_err(|_| Error::Malformed(format!("{name} value {:?} is too large", shown(value))))
}

fn repeated(name: &str, value: &str) -> Error {
    Error::Malformed(format!(
        "{name} given more than once (again as {:?})",
        shown(value)
    ))
}

/// At most [`VALUE_SHOWN_CHARS_MAX`] characters of a value.
fn shown(value: &str) -> &str {
    match value.char_indices().nth(VALUE_SHOWN_CHARS_MAX) {
        Some((cut, _)) => value.get(..cut).unwrap_or(value),
        None => value,
    }
}

/// 6.2.5.2: "If the Client requests a Part Index greater than that of the
/// final Partial Segment of the Parent Segment, the Server MUST treat the
/// request as one for Part Index 0 of the following Parent Segment." Only
/// a complete segment has a final part.
fn normalize(window: &Window, msn: u64, part: u32) -> (u64, u32) {
    match window.segment(msn) {
        Some(segment)
            if segment.complete
                && usize::try_from(part).is_ok_and(|part| part >= segment.parts.len()) =>
        {
            (msn.saturating_add(1), 0)
        }
        _ => (msn, part),
    }
}

/// How many parts past the newest one `request` is, at least, when it is
/// not made yet (`request >= next`): each segment has one part or more.
fn parts_ahead(request: (u64, u32), next: (u64, u32)) -> u64 {
    let (msn, part) = request;
    let (next_msn, next_part) = next;
    if msn == next_msn {
        return u64::from(part.saturating_sub(next_part)).saturating_add(1);
    }
    // The parts still to come in the segment being made (none, at least,
    // once it has one), one for each segment between, and the request's
    // own segment up to its part.
    let rest_of_next = u64::from(next_part == 0);
    let between = msn.saturating_sub(next_msn).saturating_sub(1);
    rest_of_next
        .saturating_add(between)
        .saturating_add(u64::from(part))
        .saturating_add(1)
}

fn beyond_advance_part_limit(parts_ahead: u64, part_target_ms: u32) -> bool {
    let part_target_ms = u64::from(part_target_ms);
    if part_target_ms == 0 || part_target_ms >= 1_000 {
        return parts_ahead > ADVANCE_PART_LIMIT_PARTS_MIN;
    }
    parts_ahead.saturating_mul(part_target_ms) > ADVANCE_PART_LIMIT_MS
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;

    use super::*;
    use crate::window::{Part, Segment};

    fn segment(msn: u64, parts: usize, complete: bool) -> Arc<Segment> {
        let part = Part {
            duration_ms: 200,
            independent: false,
            bytes: Bytes::from_static(b"part"),
        };
        Arc::new(Segment {
            msn,
            parts: vec![part; parts],
            duration_ms: 200 * u32::try_from(parts).unwrap(),
            complete,
            discontinuity: false,
            init: 0,
            program_date_time_ms: 0,
        })
    }

    /// Segments 10 and 11 complete with 4 parts each, 12 open with 2:
    /// the next part is 12.2. Part target 200 ms: the advance part limit
    /// is 15 parts.
    fn window() -> Window {
        Window {
            target_duration_s: 1,
            part_target_ms: 200,
            segments: vec![
                segment(10, 4, true),
                segment(11, 4, true),
                segment(12, 2, false),
            ],
            ..Window::default()
        }
    }

    fn check(query: &str, window: &Window) -> Check {
        Directives::parse(query).unwrap().check(window)
    }

    #[test]
    fn parse_reads_msn_and_part_and_ignores_the_rest() {
        assert_eq!(
            Directives::parse("key=a&_HLS_msn=12&_HLS_skip=YES&_HLS_part=3&x").unwrap(),
            Directives {
                msn: Some(12),
                part: Some(3)
            }
        );
        assert_eq!(Directives::parse("").unwrap(), Directives::default());
        assert_eq!(
            Directives::parse("_HLS_msn=0").unwrap(),
            Directives {
                msn: Some(0),
                part: None
            }
        );
        assert_eq!(
            Directives::parse("_HLS_msn=18446744073709551615")
                .unwrap()
                .msn,
            Some(u64::MAX)
        );
    }

    #[test]
    fn parse_rejects_malformed_directives_naming_parameter_and_value() {
        let error = |query: &str| match Directives::parse(query) {
            Err(Error::Malformed(message)) => message,
            Ok(directives) => panic!("{query} parsed as {directives:?}"),
        };
        assert_eq!(error("_HLS_part=3"), "_HLS_part 3 without _HLS_msn");
        assert_eq!(
            error("_HLS_msn=abc"),
            "_HLS_msn value \"abc\" is not a decimal integer"
        );
        assert_eq!(
            error("_HLS_msn="),
            "_HLS_msn value \"\" is not a decimal integer"
        );
        assert_eq!(
            error("_HLS_msn"),
            "_HLS_msn value \"\" is not a decimal integer"
        );
        assert_eq!(
            error("_HLS_msn=-1"),
            "_HLS_msn value \"-1\" is not a decimal integer"
        );
        assert_eq!(
            error("_HLS_msn=+1"),
            "_HLS_msn value \"+1\" is not a decimal integer"
        );
        assert_eq!(
            error("_HLS_msn=1&_HLS_part=2.5"),
            "_HLS_part value \"2.5\" is not a decimal integer"
        );
        assert_eq!(
            error("_HLS_msn=18446744073709551616"),
            "_HLS_msn value \"18446744073709551616\" is too large"
        );
        assert_eq!(
            error("_HLS_msn=1&_HLS_part=4294967296"),
            "_HLS_part value \"4294967296\" is too large"
        );
        assert_eq!(
            error("_HLS_msn=1&_HLS_msn=2"),
            "_HLS_msn given more than once (again as \"2\")"
        );
        assert_eq!(
            error("_HLS_msn=1&_HLS_part=1&_HLS_part=1"),
            "_HLS_part given more than once (again as \"1\")"
        );
        // A long value is cut to 32 characters, quotes and line breaks
        // escaped.
        let long = format!("_HLS_msn={}", "9".repeat(100));
        assert_eq!(
            error(&long),
            format!("_HLS_msn value \"{}\" is too large", "9".repeat(32))
        );
        assert_eq!(
            error("_HLS_msn=\"\n"),
            "_HLS_msn value \"\\\"\\n\" is not a decimal integer"
        );
        let multibyte = format!("_HLS_msn={}", "é".repeat(40));
        assert_eq!(
            error(&multibyte),
            format!(
                "_HLS_msn value \"{}\" is not a decimal integer",
                "é".repeat(32)
            )
        );
    }

    #[test]
    fn strip_takes_out_every_hls_parameter_and_keeps_the_order() {
        assert_eq!(
            Directives::strip("_HLS_msn=3&key=abc&_HLS_part=1&b=2&_HLS_skip=YES"),
            "key=abc&b=2"
        );
        assert_eq!(Directives::strip("_HLS_msn=3&_HLS_part=1"), "");
        assert_eq!(Directives::strip(""), "");
        assert_eq!(Directives::strip("a=1&&b"), "a=1&b");
        assert_eq!(Directives::strip("hls=1&_hls_msn=2"), "hls=1&_hls_msn=2");
    }

    #[test]
    fn check_without_directives_is_ready() {
        assert_eq!(Directives::default().check(&window()), Check::Ready);
        assert_eq!(
            Directives::default().check(&Window::default()),
            Check::Ready
        );
    }

    #[test]
    fn check_msn_alone_waits_for_the_segment_to_be_complete() {
        let window = window();
        assert_eq!(check("_HLS_msn=11", &window), Check::Ready);
        // Segment 12 has parts but is not a Media Segment of the playlist
        // until it is complete.
        assert_eq!(check("_HLS_msn=12", &window), Check::Wait);
        assert_eq!(check("_HLS_msn=14", &window), Check::Wait);
        assert_eq!(check("_HLS_msn=15", &window), Check::OutOfRange);
        // Older than the window: the playlist now.
        assert_eq!(check("_HLS_msn=3", &window), Check::Ready);
    }

    #[test]
    fn check_part_is_ready_once_made() {
        let window = window();
        assert_eq!(check("_HLS_msn=12&_HLS_part=1", &window), Check::Ready);
        assert_eq!(check("_HLS_msn=12&_HLS_part=2", &window), Check::Wait);
        assert_eq!(check("_HLS_msn=11&_HLS_part=3", &window), Check::Ready);
        assert_eq!(check("_HLS_msn=2&_HLS_part=9", &window), Check::Ready);
        // Past the last part of complete segment 11: part 0 of 12.
        assert_eq!(check("_HLS_msn=11&_HLS_part=4", &window), Check::Ready);
        assert_eq!(check("_HLS_msn=11&_HLS_part=400", &window), Check::Ready);
        assert_eq!(check("_HLS_msn=13&_HLS_part=0", &window), Check::Wait);
        assert_eq!(check("_HLS_msn=14&_HLS_part=0", &window), Check::Wait);
        assert_eq!(check("_HLS_msn=15&_HLS_part=0", &window), Check::OutOfRange);
    }

    #[test]
    fn check_part_past_the_last_of_a_complete_segment_waits_for_the_next() {
        let mut window = window();
        window.segments.pop();
        // 11 complete with 4 parts, nothing of 12 yet.
        assert_eq!(window.next_part(), Some((12, 0)));
        assert_eq!(check("_HLS_msn=11&_HLS_part=4", &window), Check::Wait);
        assert_eq!(check("_HLS_msn=11&_HLS_part=3", &window), Check::Ready);
        assert_eq!(check("_HLS_msn=12", &window), Check::Wait);
        assert_eq!(check("_HLS_msn=11", &window), Check::Ready);
        assert_eq!(check("_HLS_msn=13", &window), Check::Wait);
        assert_eq!(check("_HLS_msn=14", &window), Check::OutOfRange);
    }

    #[test]
    fn check_refuses_parts_beyond_the_advance_part_limit() {
        let mut window = window();
        // 200 ms parts: 3 / 0.2 = 15 parts past the last one (12.1).
        assert_eq!(check("_HLS_msn=12&_HLS_part=16", &window), Check::Wait);
        assert_eq!(
            check("_HLS_msn=12&_HLS_part=17", &window),
            Check::OutOfRange
        );
        // In the next segment: the open one may end at once, so 13.13 is
        // at least 14 parts ahead, 13.14 at least 15, 13.15 at least 16.
        assert_eq!(check("_HLS_msn=13&_HLS_part=14", &window), Check::Wait);
        assert_eq!(
            check("_HLS_msn=13&_HLS_part=15", &window),
            Check::OutOfRange
        );
        // 333 ms parts: 3 / 0.333 = 9.009 parts.
        window.part_target_ms = 333;
        assert_eq!(check("_HLS_msn=12&_HLS_part=10", &window), Check::Wait);
        assert_eq!(
            check("_HLS_msn=12&_HLS_part=11", &window),
            Check::OutOfRange
        );
        // Parts of a second or more: three parts.
        window.part_target_ms = 1_000;
        assert_eq!(check("_HLS_msn=12&_HLS_part=4", &window), Check::Wait);
        assert_eq!(check("_HLS_msn=12&_HLS_part=5", &window), Check::OutOfRange);
        window.part_target_ms = 2_000;
        assert_eq!(check("_HLS_msn=12&_HLS_part=5", &window), Check::OutOfRange);
    }

    #[test]
    fn check_on_an_empty_window_waits_while_the_stream_starts() {
        let window = Window {
            part_target_ms: 200,
            ..Window::default()
        };
        assert_eq!(check("_HLS_msn=0", &window), Check::Wait);
        assert_eq!(check("_HLS_msn=2", &window), Check::Wait);
        assert_eq!(check("_HLS_msn=0&_HLS_part=0", &window), Check::Wait);
        assert_eq!(check("_HLS_msn=2&_HLS_part=3", &window), Check::Wait);
        assert_eq!(check("_HLS_msn=3", &window), Check::OutOfRange);
        assert_eq!(check("_HLS_msn=0&_HLS_part=15", &window), Check::OutOfRange);
        assert_eq!(
            check(
                "_HLS_msn=18446744073709551615&_HLS_part=4294967295",
                &window
            ),
            Check::OutOfRange
        );
    }
}
