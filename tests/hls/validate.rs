//! A media playlist checked tag by tag against RFC 8216bis (HLS 2nd
//! edition with Low-Latency HLS): the tags a live LL-HLS playlist may hold,
//! their attributes and values, and the rules between them (§4.4, §6.2,
//! §8). What it finds wrong it returns in words, one line per fault.

use std::collections::HashMap;

/// What a valid playlist says, for the tests to look at.
#[derive(Debug, Default)]
pub struct Playlist {
    pub version: u32,
    pub target_duration_s: u32,
    pub media_sequence: u64,
    pub part_target_s: f64,
    /// Per segment listed: its duration, whether a discontinuity came
    /// before it, and its URI.
    pub segments: Vec<(f64, bool, String)>,
    /// Per part listed: duration, independent, URI.
    pub parts: Vec<(f64, bool, String)>,
    pub preload_hint: Option<String>,
    pub maps: Vec<String>,
    pub discontinuities: usize,
}

/// Checks `text`; the faults, or what it says.
pub fn validate(text: &str) -> Result<Playlist, Vec<String>> {
    let mut faults = Vec::new();
    let mut playlist = Playlist::default();
    let mut lines = text.lines().peekable();
    if lines.next() != Some("#EXTM3U") {
        faults.push("the first line is not #EXTM3U (§4.4.1.1)".to_owned());
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut hold_back = None;
    let mut can_block = false;
    let mut pending_extinf: Option<f64> = None;
    let mut pending_discontinuity = false;
    let mut parts_since_segment = 0.0;
    let mut segment_seen = false;
    while let Some(line) = lines.next() {
        if line.is_empty() {
            continue;
        }
        if !line.starts_with('#') {
            match pending_extinf.take() {
                Some(duration) => {
                    playlist
                        .segments
                        .push((duration, pending_discontinuity, line.to_owned()));
                    pending_discontinuity = false;
                    segment_seen = true;
                    if parts_since_segment > 0.0 && (parts_since_segment - duration).abs() > 0.05 {
                        faults.push(format!("segment {line}: parts add up to {parts_since_segment:.3} s, EXTINF says {duration:.3}"));
                    }
                    parts_since_segment = 0.0;
                }
                None => faults.push(format!("URI line {line:?} without EXTINF (§4.4.4.1)")),
            }
            continue;
        }
        if !line.starts_with("#EXT") {
            continue; // a comment
        }
        let (tag, value) = line.split_once(':').unwrap_or((line, ""));
        *seen.entry(tag).or_default() += 1;
        match tag {
            "#EXT-X-VERSION" => playlist.version = number(value, tag, &mut faults) as u32,
            "#EXT-X-TARGETDURATION" => {
                playlist.target_duration_s = number(value, tag, &mut faults) as u32;
            }
            "#EXT-X-MEDIA-SEQUENCE" | "#EXT-X-DISCONTINUITY-SEQUENCE" => {
                if segment_seen || !playlist.parts.is_empty() {
                    faults.push(format!("{tag} after the first segment (§4.4.3)"));
                }
                let n = number(value, tag, &mut faults);
                if tag == "#EXT-X-MEDIA-SEQUENCE" {
                    playlist.media_sequence = n;
                }
            }
            "#EXT-X-SERVER-CONTROL" => {
                let attributes = attributes(value, tag, &mut faults);
                can_block = attributes.get("CAN-BLOCK-RELOAD").map(String::as_str) == Some("YES");
                hold_back = attributes
                    .get("PART-HOLD-BACK")
                    .and_then(|v| v.parse::<f64>().ok());
            }
            "#EXT-X-PART-INF" => {
                let attributes = attributes(value, tag, &mut faults);
                match attributes
                    .get("PART-TARGET")
                    .and_then(|v| v.parse::<f64>().ok())
                {
                    Some(target) if target > 0.0 => playlist.part_target_s = target,
                    _ => faults.push(format!("{tag} without a PART-TARGET (§4.4.3.7)")),
                }
            }
            "#EXT-X-MAP" => {
                let attributes = attributes(value, tag, &mut faults);
                match attributes.get("URI") {
                    Some(uri) => playlist.maps.push(uri.clone()),
                    None => faults.push(format!("{tag} without URI (§4.4.4.5)")),
                }
            }
            "#EXT-X-PROGRAM-DATE-TIME" => {
                if !is_date_time(value) {
                    faults.push(format!(
                        "{tag} value {value:?} is not an ISO 8601 date-time (§4.4.4.6)"
                    ));
                }
            }
            "#EXT-X-DISCONTINUITY" => {
                playlist.discontinuities += 1;
                pending_discontinuity = true;
            }
            "#EXTINF" => {
                let duration = value.split(',').next().and_then(|d| d.parse::<f64>().ok());
                match duration {
                    Some(d) if d > 0.0 => pending_extinf = Some(d),
                    _ => faults.push(format!(
                        "EXTINF value {value:?} is not a duration (§4.4.4.1)"
                    )),
                }
            }
            "#EXT-X-PART" => {
                let attributes = attributes(value, tag, &mut faults);
                let duration = attributes
                    .get("DURATION")
                    .and_then(|v| v.parse::<f64>().ok());
                let uri = attributes.get("URI").cloned();
                let independent = attributes.get("INDEPENDENT").map(String::as_str) == Some("YES");
                match (duration, uri) {
                    (Some(duration), Some(uri)) => {
                        parts_since_segment += duration;
                        playlist.parts.push((duration, independent, uri));
                    }
                    _ => faults.push(format!(
                        "{line}: EXT-X-PART needs DURATION and URI (§4.4.4.9)"
                    )),
                }
            }
            "#EXT-X-PRELOAD-HINT" => {
                let attributes = attributes(value, tag, &mut faults);
                if attributes.get("TYPE").map(String::as_str) != Some("PART") {
                    faults.push(format!("{line}: TYPE is not PART"));
                }
                playlist.preload_hint = attributes.get("URI").cloned();
                if lines.peek().is_some_and(|next| !next.is_empty()) {
                    faults.push("lines after EXT-X-PRELOAD-HINT".to_owned());
                }
            }
            "#EXT-X-INDEPENDENT-SEGMENTS" | "#EXTM3U" => {}
            other => faults.push(format!(
                "unknown or unexpected tag {other} (not in RFC 8216bis for a live media playlist)"
            )),
        }
    }
    for tag in ["#EXT-X-VERSION", "#EXT-X-TARGETDURATION"] {
        match seen.get(tag) {
            Some(1) => {}
            Some(n) => faults.push(format!("{tag} appears {n} times (§4.4.3)")),
            None => faults.push(format!("{tag} is missing (§4.4.3)")),
        }
    }
    if pending_extinf.is_some() {
        faults.push("EXTINF without its URI at the end".to_owned());
    }
    for (duration, _, uri) in &playlist.segments {
        if duration.round() as u32 > playlist.target_duration_s {
            faults.push(format!(
                "{uri} lasts {duration} s, over TARGETDURATION {} (§4.4.3.1)",
                playlist.target_duration_s
            ));
        }
    }
    if !playlist.parts.is_empty() {
        if playlist.part_target_s == 0.0 {
            faults.push("EXT-X-PART without EXT-X-PART-INF (§4.4.3.7)".to_owned());
        }
        for (duration, _, uri) in &playlist.parts {
            if *duration > playlist.part_target_s + 0.0005 {
                faults.push(format!(
                    "part {uri} lasts {duration} s, over PART-TARGET {} (§4.4.4.9)",
                    playlist.part_target_s
                ));
            }
        }
        match hold_back {
            Some(h) if h >= 2.0 * playlist.part_target_s => {}
            _ => faults.push(format!(
                "PART-HOLD-BACK {hold_back:?} is not at least twice PART-TARGET (§4.4.3.8)"
            )),
        }
        if !can_block {
            faults.push("LL-HLS without CAN-BLOCK-RELOAD=YES (§6.2.5.2)".to_owned());
        }
    }
    if !playlist.maps.is_empty() && playlist.version < 6 {
        faults.push(format!(
            "EXT-X-MAP needs version 6, playlist says {} (§8)",
            playlist.version
        ));
    }
    if faults.is_empty() {
        Ok(playlist)
    } else {
        Err(faults)
    }
}

fn number(value: &str, tag: &str, faults: &mut Vec<String>) -> u64 {
    value.parse().unwrap_or_else(|_| {
        faults.push(format!(
            "{tag} value {value:?} is not a decimal integer (§4.2)"
        ));
        0
    })
}

/// An attribute list (§4.2): NAME=value pairs, quoted strings with no
/// comma inside taken whole.
fn attributes(value: &str, tag: &str, faults: &mut Vec<String>) -> HashMap<String, String> {
    let mut attributes = HashMap::new();
    let mut rest = value;
    while !rest.is_empty() {
        let Some((name, after)) = rest.split_once('=') else {
            faults.push(format!("{tag}: attribute without a value in {value:?}"));
            break;
        };
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
        {
            faults.push(format!("{tag}: bad attribute name {name:?} (§4.2)"));
        }
        let (item, next) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.split_once('"') {
                Some((inside, tail)) => (inside, tail.strip_prefix(',').unwrap_or(tail)),
                None => {
                    faults.push(format!("{tag}: unterminated quoted string"));
                    break;
                }
            }
        } else {
            after.split_once(',').unwrap_or((after, ""))
        };
        if attributes
            .insert(name.to_owned(), item.to_owned())
            .is_some()
        {
            faults.push(format!("{tag}: attribute {name} twice (§4.2)"));
        }
        rest = next;
    }
    attributes
}

/// `YYYY-MM-DDThh:mm:ss.sssZ` (or another offset).
fn is_date_time(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.len() >= 20
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes[10] == b'T'
        && bytes[13] == b':'
        && bytes[16] == b':'
        && (value.ends_with('Z') || value[19..].contains('+') || value[19..].contains('-'))
}

#[test]
fn the_validator_finds_faults() {
    let good = "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:2\n#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.000\n#EXT-X-PART-INF:PART-TARGET=0.333\n#EXT-X-MEDIA-SEQUENCE:4\n#EXT-X-MAP:URI=\"x/init0.mp4\"\n#EXT-X-PROGRAM-DATE-TIME:2026-12-05T23:59:00.123Z\n#EXT-X-PART:DURATION=0.333,URI=\"x/part4.0.m4s\",INDEPENDENT=YES\n#EXTINF:0.333,\nx/seg4.m4s\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"x/part5.0.m4s\"\n";
    let playlist = validate(good).unwrap();
    assert_eq!(playlist.segments.len(), 1);
    assert_eq!(playlist.preload_hint.as_deref(), Some("x/part5.0.m4s"));
    let bad = good
        .replace("VERSION:6", "VERSION:5")
        .replace("DURATION=0.333,URI=\"x/part4", "DURATION=0.5,URI=\"x/part4")
        .replace("PART-HOLD-BACK=1.000", "PART-HOLD-BACK=0.5")
        .replace("#EXTINF:0.333", "#EXTINF:2.9");
    let faults = validate(&bad).unwrap_err();
    assert_eq!(faults.len(), 5, "{faults:#?}");
}
