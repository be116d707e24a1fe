//! Which request a low-latency HLS player makes next (RFC 8216bis §6.3),
//! as a state machine: the answers in (`handle_*`), the next request out
//! ([`Follower::poll`]). The driver only fetches what it is told.
//!
//! Like hls.js in low-latency mode, the player starts `PART-HOLD-BACK`
//! from the end of the playlist, at an independent part (at or before
//! that point, so the decoder starts on a keyframe), then fetches every
//! part in order, as soon as it can:
//!
//! - a part the playlist lists is fetched at once (a player catching up);
//! - the part after the last listed is the preload hint: its request is
//!   answered the moment the part is made (§6.2.5.3);
//! - a part past that is not named yet: the playlist is reloaded
//!   blocking on it (`_HLS_msn`, `_HLS_part`, §6.2.5.2), answered once
//!   the part is made, and the part is then fetched.
//!
//! So at the live edge a player alternates a hinted part and a blocking
//! reload plus a listed part: three requests per two parts, each part in
//! hand at most a round trip after it is made.
//!
//! A segment may end before the part hinted in it is made (a keyframe
//! came: the next part starts a segment); the server answers the hint
//! 404, a fresh playlist shows the segment complete, and the player goes
//! on with the next segment's first part. A part gone from the playlist
//! (the player fell behind), a server that keeps answering a blocking
//! reload without the part, or a refused reload (a restarted stream whose
//! numbers went back) make the player start over at the live edge.

use std::time::Duration;

use super::playlist::{Playlist, Position};

/// Blocking reloads answered without the part asked for, in a row, after
/// which the player starts over at the live edge: a server answers one
/// once the part exists (§6.2.5.2), so a few in a row mean it never will.
pub const STALE_RELOADS_MAX: u32 = 3;
/// Times a part may be answered 404 in a row (each followed by a fresh
/// playlist) before the player starts over at the live edge.
pub const MISSING_PARTS_MAX: u32 = 2;
/// Hold-back in part targets when the playlist names none: the least
/// `PART-HOLD-BACK` §4.4.3.8 allows.
const HOLD_BACK_PARTS: u32 = 3;

/// What to fetch next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// GET the media playlist at `target`, after waiting `delay`;
    /// `blocking`: the part it waits for (its directives are in
    /// `target`).
    Playlist {
        target: String,
        delay: Duration,
        blocking: Option<Position>,
    },
    /// GET the init segment `uri` (as the playlist names it) at `target`,
    /// then [`Follower::handle_init`].
    Init { target: String, uri: String },
    /// GET the part at `at`, then [`Follower::handle_part`] (or
    /// [`Follower::handle_part_missing`] on a 404).
    Part { target: String, at: Position },
}

/// Why the stream cannot be followed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("the playlist has no EXT-X-PART-INF: not low-latency HLS")]
    NotLowLatency,
    #[error("the playlist has no EXT-X-MAP: only fMP4 (CMAF) segments are played")]
    NoMap,
    #[error("the stream ended (EXT-X-ENDLIST)")]
    Ended,
    #[error("{uri}: on another host, which a player of {authority} does not follow")]
    OtherHost { uri: String, authority: String },
}

/// Where a player is in the stream.
#[derive(Debug)]
pub struct Follower {
    /// `host:port` of the URL played: absolute URIs must name it.
    authority: String,
    /// The media playlist's request target; relative URIs resolve
    /// against it.
    playlist_target: String,
    /// The latest playlist; `None` when a fresh one is wanted.
    playlist: Option<Playlist>,
    next: Next,
    /// The init segment fetched last, as the playlist names it.
    init: Option<String>,
    /// The part the last blocking reload waited for.
    awaiting: Option<Position>,
    stale_reloads: u32,
    missing_parts: u32,
    /// Times the player started over at the live edge.
    pub jumps: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Next {
    /// Pick the start from the playlist.
    Start,
    /// This part (or, if its segment ended before it, the next segment's
    /// first).
    At(Position),
}

/// Where a part stands in a playlist.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Found<'p> {
    Listed {
        at: Position,
        uri: &'p str,
        map: Option<&'p str>,
    },
    /// The preload hint.
    Hinted {
        at: Position,
        uri: &'p str,
        map: Option<&'p str>,
    },
    /// Not named yet.
    Ahead(Position),
    /// No longer listed.
    Behind,
}

impl Follower {
    /// A player of the playlist at `target` (`/app/stream.m3u8?query`) on
    /// `authority`.
    pub fn new(authority: &str, target: &str) -> Follower {
        Follower {
            authority: authority.to_owned(),
            playlist_target: target.to_owned(),
            playlist: None,
            next: Next::Start,
            init: None,
            awaiting: None,
            stale_reloads: 0,
            missing_parts: 0,
            jumps: 0,
        }
    }

    /// The next request.
    pub fn poll(&mut self) -> Result<Step, Error> {
        // Start becomes At, and Behind becomes Start, at most once each.
        for _ in 0..4 {
            let Some(playlist) = &self.playlist else {
                return Ok(self.reload(None, Duration::ZERO));
            };
            let at = match self.next {
                Next::At(at) => at,
                Next::Start => match start(playlist) {
                    Some(at) => at,
                    None if playlist.ended => return Err(Error::Ended),
                    // No parts yet: a stream just published.
                    None => {
                        let delay = part_target(playlist);
                        return Ok(self.reload(None, delay));
                    }
                },
            };
            match locate(playlist, at) {
                Found::Listed { at, uri, map } | Found::Hinted { at, uri, map } => {
                    let (uri, map) = (uri.to_owned(), map.map(str::to_owned));
                    self.next = Next::At(at);
                    return self.fetch(at, &uri, map);
                }
                Found::Ahead(_) if playlist.ended => return Err(Error::Ended),
                Found::Ahead(at) => {
                    let (can_block, delay) = (playlist.can_block_reload, part_target(playlist));
                    self.next = Next::At(at);
                    return Ok(if can_block {
                        self.reload(Some(at), Duration::ZERO)
                    } else {
                        // Polling, as for a server that cannot block.
                        self.reload(None, delay)
                    });
                }
                Found::Behind => self.start_over(false),
            }
        }
        // Only a playlist that keeps its own start behind it gets here.
        self.start_over(true);
        Ok(self.reload(None, Duration::ZERO))
    }

    /// A media playlist came (or a multivariant one, whose first variant
    /// is then followed).
    pub fn handle_playlist(&mut self, playlist: Playlist) -> Result<(), Error> {
        if playlist.segments.is_empty() {
            if let Some(variant) = playlist.variants.first() {
                self.playlist_target = self.resolve(variant)?;
                self.playlist = None;
                return Ok(());
            }
        }
        if playlist.part_target.is_none() {
            return Err(Error::NotLowLatency);
        }
        if let Some(awaited) = self.awaiting.take() {
            if matches!(locate(&playlist, awaited), Found::Ahead(_)) {
                self.stale_reloads += 1;
            } else {
                self.stale_reloads = 0;
            }
        }
        self.playlist = Some(playlist);
        if self.stale_reloads > STALE_RELOADS_MAX {
            self.start_over(false);
        }
        Ok(())
    }

    /// A blocking reload was refused (4xx): the part asked for is too far
    /// ahead of the server, whose numbers went back (a restart).
    pub fn handle_reload_refused(&mut self) {
        self.start_over(true);
    }

    /// The init segment `uri` was fetched.
    pub fn handle_init(&mut self, uri: &str) {
        self.init = Some(uri.to_owned());
    }

    /// The part at `at` was fetched: the next is the one after it.
    pub fn handle_part(&mut self, at: Position) {
        self.missing_parts = 0;
        self.next = Next::At(Position {
            msn: at.msn,
            part: at.part.saturating_add(1),
        });
    }

    /// The part at `at` was answered 404: a fresh playlist says whether
    /// its segment ended before it, or the player fell behind.
    pub fn handle_part_missing(&mut self, at: Position) {
        self.missing_parts += 1;
        if self.missing_parts > MISSING_PARTS_MAX {
            self.start_over(true);
            return;
        }
        self.next = Next::At(at);
        self.playlist = None;
    }

    /// The latest playlist's part target: how long a part takes to make.
    pub fn part_target(&self) -> Option<Duration> {
        self.playlist.as_ref().and_then(|p| p.part_target)
    }

    /// The latest playlist's target duration.
    pub fn target_duration(&self) -> Option<Duration> {
        self.playlist.as_ref().map(|p| p.target_duration)
    }

    /// Starts over at the live edge, from a fresh playlist if `fresh`.
    fn start_over(&mut self, fresh: bool) {
        self.jumps += 1;
        self.next = Next::Start;
        self.stale_reloads = 0;
        self.missing_parts = 0;
        if fresh {
            self.playlist = None;
        }
    }

    fn reload(&mut self, blocking: Option<Position>, delay: Duration) -> Step {
        self.awaiting = blocking;
        let target = match blocking {
            Some(at) => {
                let join = if self.playlist_target.contains('?') {
                    '&'
                } else {
                    '?'
                };
                format!(
                    "{}{join}_HLS_msn={}&_HLS_part={}",
                    self.playlist_target, at.msn, at.part
                )
            }
            None => self.playlist_target.clone(),
        };
        Step::Playlist {
            target,
            delay,
            blocking,
        }
    }

    /// The part's init segment first if it is not the one fetched last.
    fn fetch(&mut self, at: Position, uri: &str, map: Option<String>) -> Result<Step, Error> {
        let map = map.ok_or(Error::NoMap)?;
        if self.init.as_deref() != Some(map.as_str()) {
            return Ok(Step::Init {
                target: self.resolve(&map)?,
                uri: map,
            });
        }
        Ok(Step::Part {
            target: self.resolve(uri)?,
            at,
        })
    }

    /// The request target of `uri`, relative to the playlist's
    /// (RFC 3986 §5.2); an absolute URI must be on the played host.
    fn resolve(&self, uri: &str) -> Result<String, Error> {
        let other_host = || Error::OtherHost {
            uri: uri.to_owned(),
            authority: self.authority.clone(),
        };
        let lower = uri.get(..8).unwrap_or(uri).to_ascii_lowercase();
        let after_scheme = if lower.starts_with("http://") {
            uri.get(7..)
        } else if lower.starts_with("https://") {
            uri.get(8..)
        } else {
            uri.strip_prefix("//")
        };
        if let Some(rest) = after_scheme {
            let (authority, path) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
            if !authority.eq_ignore_ascii_case(&self.authority) {
                return Err(other_host());
            }
            return Ok(without_dot_segments(&format!(
                "/{}",
                path.trim_start_matches('/')
            )));
        }
        if uri.starts_with('/') {
            return Ok(without_dot_segments(uri));
        }
        let base = self.playlist_target.split('?').next().unwrap_or_default();
        let directory = base.rsplit_once('/').map_or("", |(dir, _)| dir);
        Ok(without_dot_segments(&format!("{directory}/{uri}")))
    }
}

/// Where a player starts: the part at which `PART-HOLD-BACK` is reached
/// counting back from the end, or the independent part before it (else
/// after it; else it, for a server that marks none, as hls.js does).
fn start(playlist: &Playlist) -> Option<Position> {
    let hold_back = playlist
        .part_hold_back
        .unwrap_or(part_target(playlist) * HOLD_BACK_PARTS);
    let parts: Vec<_> = playlist
        .parts()
        .filter(|(_, part, _)| !part.gap)
        .map(|(at, part, _)| (at, part.duration, part.independent))
        .collect();
    let mut behind = Duration::ZERO;
    let mut target = 0;
    for (index, (_, duration, _)) in parts.iter().enumerate().rev() {
        behind += *duration;
        target = index;
        if behind >= hold_back {
            break;
        }
    }
    let (before, after) = parts.split_at(target.saturating_add(1).min(parts.len()));
    before
        .iter()
        .rev()
        .chain(after)
        .find(|(_, _, independent)| *independent)
        .or(before.last())
        .map(|(at, ..)| *at)
}

/// Where the part at `at` is in `playlist`; a part past the end of a
/// complete segment is the next segment's first, and gaps are passed.
fn locate(playlist: &Playlist, mut at: Position) -> Found<'_> {
    // Each turn moves on by a part or a segment of the playlist.
    let turns = playlist.segments.len() + playlist.parts().count() + 1;
    for _ in 0..turns {
        let Some(segment) = playlist.segment(at.msn) else {
            if at.msn < playlist.media_sequence {
                return Found::Behind;
            }
            return hinted_or_ahead(playlist, at);
        };
        let index = usize::try_from(at.part).unwrap_or(usize::MAX);
        match segment.parts.get(index) {
            Some(part) if part.gap => at.part = at.part.saturating_add(1),
            Some(part) => {
                return Found::Listed {
                    at,
                    uri: &part.uri,
                    map: segment.map.as_deref(),
                };
            }
            // A segment listed without its parts: too old to play from.
            None if segment.parts.is_empty() => return Found::Behind,
            None if segment.uri.is_some() => {
                at = Position {
                    msn: at.msn.saturating_add(1),
                    part: 0,
                };
            }
            None => return hinted_or_ahead(playlist, at),
        }
    }
    Found::Behind
}

/// A part past the listed ones: the hinted one, or one not named yet
/// (never to be, in an ended playlist).
fn hinted_or_ahead(playlist: &Playlist, at: Position) -> Found<'_> {
    match &playlist.preload_hint {
        Some(uri) if at == playlist.edge() && !playlist.ended => Found::Hinted {
            at,
            uri,
            map: playlist.map_at_end.as_deref(),
        },
        _ => Found::Ahead(at),
    }
}

/// How long a part takes to make; a second for a playlist without parts,
/// where it only paces polling.
fn part_target(playlist: &Playlist) -> Duration {
    playlist.part_target.unwrap_or(Duration::from_secs(1))
}

/// `target` with `.` and `..` path segments resolved (RFC 3986 §5.2.4);
/// the query is left as it is.
fn without_dot_segments(target: &str) -> String {
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    let mut kept: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len().saturating_sub(1);
    for (index, segment) in segments.into_iter().enumerate() {
        match segment {
            "." | ".." => {
                // `..` never climbs above the root, which `kept[0]` is.
                if segment == ".." && kept.len() > 1 {
                    kept.pop();
                }
                if index == last {
                    kept.push("");
                }
            }
            _ => kept.push(segment),
        }
    }
    let path = kept.join("/");
    match query {
        Some(query) => format!("{path}?{query}"),
        None => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn playlist(text: &str) -> Playlist {
        Playlist::parse(text.as_bytes()).expect("valid")
    }

    /// A live playlist: segments `first..` of `parts` parts of 200 ms,
    /// the last `open` parts in the open segment (none: complete), the
    /// first part of each independent, and the hint.
    fn live(first: u64, complete: u64, parts: u32, open: u32) -> String {
        let mut text = format!(
            "#EXTM3U\n#EXT-X-TARGETDURATION:1\n\
             #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.6\n\
             #EXT-X-PART-INF:PART-TARGET=0.2\n#EXT-X-MEDIA-SEQUENCE:{first}\n\
             #EXT-X-MAP:URI=\"cam/init0.mp4?k=1\"\n"
        );
        let part = |text: &mut String, msn: u64, k: u32| {
            let independent = if k == 0 { ",INDEPENDENT=YES" } else { "" };
            *text += &format!(
                "#EXT-X-PART:DURATION=0.2,URI=\"cam/part{msn}.{k}.m4s?k=1\"{independent}\n"
            );
        };
        for msn in first..first + complete {
            for k in 0..parts {
                part(&mut text, msn, k);
            }
            text += &format!(
                "#EXTINF:{:.1},\ncam/seg{msn}.m4s?k=1\n",
                f64::from(parts) * 0.2
            );
        }
        let open_msn = first + complete;
        for k in 0..open {
            part(&mut text, open_msn, k);
        }
        let (hint_msn, hint_k) = if open == 0 {
            (open_msn, 0)
        } else {
            (open_msn, open)
        };
        text +=
            &format!("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"cam/part{hint_msn}.{hint_k}.m4s?k=1\"\n");
        text
    }

    fn at(msn: u64, part: u32) -> Position {
        Position { msn, part }
    }

    fn part_step(msn: u64, part: u32) -> Step {
        Step::Part {
            target: format!("/live/cam/part{msn}.{part}.m4s?k=1"),
            at: at(msn, part),
        }
    }

    fn reload_step(blocking: Option<Position>) -> Step {
        let target = match blocking {
            Some(p) => format!("/live/cam.m3u8?k=1&_HLS_msn={}&_HLS_part={}", p.msn, p.part),
            None => "/live/cam.m3u8?k=1".into(),
        };
        Step::Playlist {
            target,
            delay: Duration::ZERO,
            blocking,
        }
    }

    /// A follower that has the init segment and `text`.
    fn following(text: &str) -> Follower {
        let mut follower = Follower::new("h:8080", "/live/cam.m3u8?k=1");
        assert_eq!(follower.poll(), Ok(reload_step(None)));
        follower
            .handle_playlist(playlist(text))
            .expect("media playlist");
        follower.handle_init("cam/init0.mp4?k=1");
        follower
    }

    #[test]
    fn it_starts_with_the_playlist_then_the_init_segment() {
        let mut follower = Follower::new("h:8080", "/live/cam.m3u8?k=1");
        assert_eq!(follower.poll(), Ok(reload_step(None)));
        follower
            .handle_playlist(playlist(&live(10, 2, 4, 2)))
            .expect("media playlist");
        assert_eq!(
            follower.poll(),
            Ok(Step::Init {
                target: "/live/cam/init0.mp4?k=1".into(),
                uri: "cam/init0.mp4?k=1".into()
            })
        );
        follower.handle_init("cam/init0.mp4?k=1");
        assert!(matches!(follower.poll(), Ok(Step::Part { .. })));
    }

    #[test]
    fn it_starts_at_the_independent_part_at_or_before_the_hold_back() {
        // Segment 11 has 4 parts, 12 has 2: hold-back of 3 parts from the
        // end lands on 11.3, whose segment starts at the independent 11.0.
        let mut follower = following(&live(10, 2, 4, 2));
        assert_eq!(follower.poll(), Ok(part_step(11, 0)));
        // Parts listed after it are fetched in a row, then the hint.
        for (msn, part) in [(11, 1), (11, 2), (11, 3), (12, 0), (12, 1), (12, 2)] {
            let previous = if part == 0 {
                at(msn - 1, 3)
            } else {
                at(msn, part - 1)
            };
            follower.handle_part(previous);
            assert_eq!(follower.poll(), Ok(part_step(msn, part)), "{msn}.{part}");
        }
        // Past the hint: a blocking reload for the part after it.
        follower.handle_part(at(12, 2));
        assert_eq!(follower.poll(), Ok(reload_step(Some(at(12, 3)))));
        follower
            .handle_playlist(playlist(&live(10, 2, 4, 4)))
            .expect("valid");
        assert_eq!(follower.poll(), Ok(part_step(12, 3)));
        // The next is the hint of that playlist.
        follower.handle_part(at(12, 3));
        assert_eq!(follower.poll(), Ok(part_step(12, 4)));
        assert_eq!(follower.jumps, 0);
    }

    #[test]
    fn a_hold_back_on_an_independent_part_starts_there() {
        let text = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n\
             #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.5\n\
             #EXT-X-PART-INF:PART-TARGET=0.25\n#EXT-X-MAP:URI=\"i.mp4\"\n\
             #EXT-X-PART:DURATION=0.25,URI=\"a\",INDEPENDENT=YES\n\
             #EXT-X-PART:DURATION=0.25,URI=\"b\",INDEPENDENT=YES\n\
             #EXT-X-PART:DURATION=0.25,URI=\"c\",INDEPENDENT=YES\n\
             #EXT-X-PART:DURATION=0.25,URI=\"d\"\n";
        assert_eq!(start(&playlist(text)), Some(at(0, 2)));
        // No part marked: the hold-back point itself.
        let unmarked = text.replace(",INDEPENDENT=YES", "");
        assert_eq!(start(&playlist(&unmarked)), Some(at(0, 2)));
        // Only one after it marked: that one.
        let later = unmarked.replace("URI=\"d\"", "URI=\"d\",INDEPENDENT=YES");
        assert_eq!(start(&playlist(&later)), Some(at(0, 3)));
        // Too few parts for the hold-back: the first.
        let short = "#EXTM3U\n#EXT-X-PART-INF:PART-TARGET=0.25\n\
             #EXT-X-PART:DURATION=0.25,URI=\"a\",INDEPENDENT=YES\n";
        assert_eq!(start(&playlist(short)), Some(at(0, 0)));
        assert_eq!(start(&playlist("#EXTM3U\n")), None);
    }

    #[test]
    fn a_hinted_part_answered_404_because_its_segment_ended_moves_to_the_next_segment() {
        let mut follower = following(&live(10, 2, 4, 3));
        // The hint is 12.3; the segment ends after 12.2 instead.
        follower.handle_part(at(12, 2));
        assert_eq!(follower.poll(), Ok(part_step(12, 3)));
        follower.handle_part_missing(at(12, 3));
        assert_eq!(follower.poll(), Ok(reload_step(None)));
        follower
            .handle_playlist(playlist(&live(10, 3, 3, 0)))
            .expect("valid");
        // 12 is complete with 3 parts: on to 13.0, the hint.
        assert_eq!(follower.poll(), Ok(part_step(13, 0)));
        assert_eq!(follower.jumps, 0);
    }

    #[test]
    fn a_player_left_behind_starts_over_at_the_live_edge() {
        let mut follower = following(&live(10, 2, 4, 2));
        follower.handle_part(at(10, 3));
        // The playlist moved on: 11 and 12 lost their parts... and 10 is gone.
        follower
            .handle_playlist(playlist(&live(20, 2, 4, 2)))
            .expect("valid");
        assert_eq!(follower.poll(), Ok(part_step(21, 0)));
        assert_eq!(follower.jumps, 1);
        // Parts answered 404 again and again: a fresh start.
        let mut follower = following(&live(10, 2, 4, 2));
        for _ in 0..=MISSING_PARTS_MAX {
            let Ok(Step::Part { at, .. }) = follower.poll() else {
                panic!("a part");
            };
            follower.handle_part_missing(at);
            assert_eq!(follower.poll(), Ok(reload_step(None)));
            follower
                .handle_playlist(playlist(&live(10, 2, 4, 2)))
                .expect("valid");
        }
        assert_eq!(follower.jumps, 1);
    }

    #[test]
    fn reloads_that_never_bring_the_part_or_are_refused_start_over() {
        let mut follower = following(&live(10, 2, 4, 2));
        follower.handle_part(at(12, 2));
        for _ in 0..=STALE_RELOADS_MAX {
            assert_eq!(follower.poll(), Ok(reload_step(Some(at(12, 3)))));
            follower
                .handle_playlist(playlist(&live(10, 2, 4, 2)))
                .expect("valid");
        }
        assert_eq!(follower.jumps, 1);
        assert_eq!(follower.poll(), Ok(part_step(11, 0)));
        follower.handle_part(at(50, 0));
        assert_eq!(follower.poll(), Ok(reload_step(Some(at(50, 1)))));
        follower.handle_reload_refused();
        assert_eq!(follower.poll(), Ok(reload_step(None)));
        assert_eq!(follower.jumps, 2);
    }

    #[test]
    fn a_new_map_is_fetched_before_the_parts_that_need_it() {
        let text = live(10, 2, 4, 2).replace(
            "#EXT-X-PART:DURATION=0.2,URI=\"cam/part12.0",
            "#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"cam/init1.mp4?k=1\"\n\
             #EXT-X-PART:DURATION=0.2,URI=\"cam/part12.0",
        );
        let mut follower = following(&text);
        follower.handle_part(at(11, 3));
        assert_eq!(
            follower.poll(),
            Ok(Step::Init {
                target: "/live/cam/init1.mp4?k=1".into(),
                uri: "cam/init1.mp4?k=1".into()
            })
        );
        follower.handle_init("cam/init1.mp4?k=1");
        assert_eq!(follower.poll(), Ok(part_step(12, 0)));
    }

    #[test]
    fn servers_that_cannot_block_are_polled_every_part_target() {
        let text = live(10, 2, 4, 2).replace("CAN-BLOCK-RELOAD=YES,", "");
        let mut follower = following(&text);
        follower.handle_part(at(12, 2));
        assert_eq!(
            follower.poll(),
            Ok(Step::Playlist {
                target: "/live/cam.m3u8?k=1".into(),
                delay: Duration::from_millis(200),
                blocking: None
            })
        );
    }

    #[test]
    fn playlists_without_parts_or_maps_and_ended_ones_are_errors() {
        let mut follower = Follower::new("h:8080", "/live/cam.m3u8");
        let plain = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\nseg.m4s\n";
        assert_eq!(
            follower.handle_playlist(playlist(plain)),
            Err(Error::NotLowLatency)
        );
        let no_map = live(10, 1, 2, 1).replace("#EXT-X-MAP:URI=\"cam/init0.mp4?k=1\"\n", "");
        let mut follower = Follower::new("h:8080", "/live/cam.m3u8");
        follower.handle_playlist(playlist(&no_map)).expect("valid");
        assert_eq!(follower.poll(), Err(Error::NoMap));
        let ended = format!("{}#EXT-X-ENDLIST\n", live(10, 1, 2, 0));
        let mut follower = following(&ended);
        follower.handle_part(at(10, 1));
        assert_eq!(follower.poll(), Err(Error::Ended));
    }

    #[test]
    fn a_multivariant_playlist_leads_to_its_first_variant() {
        let mut follower = Follower::new("h:8080", "/live/index.m3u8?k=1");
        let text = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nhd/cam.m3u8?k=1\n";
        follower.handle_playlist(playlist(text)).expect("valid");
        assert_eq!(
            follower.poll(),
            Ok(Step::Playlist {
                target: "/live/hd/cam.m3u8?k=1".into(),
                delay: Duration::ZERO,
                blocking: None
            })
        );
    }

    #[test]
    fn uris_resolve_against_the_playlist_on_its_own_host_only() {
        let follower = Follower::new("h:8080", "/a/b/cam.m3u8?k=1");
        let resolve = |uri| follower.resolve(uri);
        assert_eq!(
            resolve("cam/part1.0.m4s"),
            Ok("/a/b/cam/part1.0.m4s".into())
        );
        assert_eq!(resolve("../x.m4s?q=/.."), Ok("/a/x.m4s?q=/..".into()));
        assert_eq!(resolve("../../../x"), Ok("/x".into()));
        assert_eq!(resolve("./y/."), Ok("/a/b/y/".into()));
        assert_eq!(resolve("/root/z.m4s"), Ok("/root/z.m4s".into()));
        assert_eq!(resolve("HTTP://H:8080/p?q"), Ok("/p?q".into()));
        assert_eq!(resolve("https://h:8080"), Ok("/".into()));
        assert_eq!(resolve("//h:8080/p"), Ok("/p".into()));
        assert!(matches!(
            resolve("http://cdn.example.com/p"),
            Err(Error::OtherHost { .. })
        ));
    }

    #[test]
    fn gaps_are_passed_over() {
        let text = live(10, 2, 4, 2).replace(
            "URI=\"cam/part11.1.m4s?k=1\"",
            "URI=\"cam/part11.1.m4s?k=1\",GAP=YES",
        );
        let mut follower = following(&text);
        follower.handle_part(at(11, 0));
        assert_eq!(follower.poll(), Ok(part_step(11, 2)));
    }
}
