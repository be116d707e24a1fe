//! HLS and Low-Latency HLS on a shard: packaging the streams whose source
//! is here, and serving any stream's playlist and media from memory to the
//! HTTP connections here.
//!
//! **Packaging** follows the router's actions for a source on this shard:
//! `StartHls` takes the stream's packager from the server's
//! [`HlsStreams`] (a republish goes on with its numbering), each `Tap`
//! gives it a frame, and a completed part is published as a new window,
//! read by every shard from then on; the shards with requests waiting for
//! it are told with one [`ShardMessage::HlsUpdated`] each. `StopHls`
//! closes the open part and segment and parks the packager.
//!
//! **Serving**: a connection whose first request names an HLS object stays
//! an HLS connection: it answers each request from the window (bytes
//! shared, never copied per request) and reads the next one while the
//! client keeps it open. Names, relative to the playlist:
//!
//! | path | object |
//! |---|---|
//! | `/{app}/{stream}.m3u8` | the media playlist (LL-HLS) |
//! | `/{app}/{stream}/init{I}.mp4` | init segment `I` |
//! | `/{app}/{stream}/seg{N}.m4s` | segment `N` (its parts, whole) |
//! | `/{app}/{stream}/part{N}.{K}.m4s` | part `K` of segment `N` |
//!
//! A request for what is not made yet (a blocking reload's `_HLS_msn` and
//! `_HLS_part`, the preload hint's part, the open segment) waits until it
//! is, or three target durations (then `503`). A waiting request is the
//! connection's own reader parked on the stream's [`Notify`]: no task or
//! buffer of its own; an address holds at most `hls.blocked_per_ip_max` of
//! them on a shard (then `429`).
//!
//! **Sessions**: HLS has no connection that lasts as a play does, so the
//! door (keys as `?key=`, address lists, `on_play`) admits a *session*: an
//! address and a stream, once whichever shards its requests reach (the
//! server's table, [`HlsStreams::session`]), and the session lasts while
//! its requests come less than `hls.idle_ms` apart. The playlist passes the query it
//! was asked with on to every URI in it, so a key reaches the media
//! requests of players behind other addresses too.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use ringcast_hls::{Check, Directives, Packager, Window, playlist};
use ringcast_web::object::{self, ByteRange, Object};
use ringcast_web::request::{Method, Request};
use ringcast_web::response::{self, Cors};
use tokio::sync::Notify;

use super::Shard;
use super::connection::{CloseReason, Conn};
use super::logs::peer_line;
use super::messages::{ShardId, ShardMessage};
use crate::access::{Action as Door, Verdict};
use crate::hls::{HlsStream, HlsStreams, Session, SessionKey};
use crate::media::{Frame, StreamKey};
use crate::router::Event;
use crate::session::{MediaKind, Quoted};

/// How often a shard looks after its HLS state ([`Shard::maintain_hls`]).
pub(super) const MAINTAIN_MS: u64 = 1000;

/// A shard's HLS state.
#[derive(Debug)]
pub struct ShardHls {
    pub streams: Arc<HlsStreams>,
    /// Streams whose source is on this shard, with their packagers.
    sources: RefCell<HashMap<StreamKey, Source>>,
    /// Streams this shard served, so a request reads no shared table.
    known: RefCell<HashMap<StreamKey, Arc<HlsStream>>>,
    /// Per stream, what its waiting requests here are parked on.
    waits: RefCell<HashMap<StreamKey, Rc<Notify>>>,
    /// Waiting requests per address.
    blocked: RefCell<HashMap<IpAddr, usize>>,
    /// Sessions requests here belong to (the server's table has them all).
    sessions: RefCell<HashMap<SessionKey, Arc<Session>>>,
}

#[derive(Debug)]
struct Source {
    stream: Arc<HlsStream>,
    packager: Packager,
}

impl ShardHls {
    pub fn new(streams: Arc<HlsStreams>) -> ShardHls {
        ShardHls {
            streams,
            sources: RefCell::default(),
            known: RefCell::default(),
            waits: RefCell::default(),
            blocked: RefCell::default(),
            sessions: RefCell::default(),
        }
    }
}

/// What a request's path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Asked {
    Playlist,
    Init(u32),
    Segment(u64),
    Part(u64, u32),
}

/// An HLS request's target.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Target<'a> {
    pub app: &'a str,
    pub stream: &'a str,
    pub asked: Asked,
}

/// The HLS object `path` names, if any (see the module's table).
pub(super) fn route(path: &str) -> Option<Target<'_>> {
    let path = path.strip_prefix('/')?;
    if let Some(playlist) = path.strip_suffix(".m3u8") {
        let (app, stream) = playlist.rsplit_once('/')?;
        return valid(app, stream, Asked::Playlist);
    }
    let (rest, file) = path.rsplit_once('/')?;
    let (app, stream) = rest.rsplit_once('/')?;
    let number = |text: &str| -> Option<u64> {
        (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
            .then(|| text.parse().ok())
            .flatten()
    };
    let asked = if let Some(n) = file
        .strip_prefix("init")
        .and_then(|f| f.strip_suffix(".mp4"))
    {
        Asked::Init(u32::try_from(number(n)?).ok()?)
    } else if let Some(n) = file
        .strip_prefix("seg")
        .and_then(|f| f.strip_suffix(".m4s"))
    {
        Asked::Segment(number(n)?)
    } else {
        let part = file.strip_prefix("part")?.strip_suffix(".m4s")?;
        let (n, k) = part.split_once('.')?;
        Asked::Part(number(n)?, u32::try_from(number(k)?).ok()?)
    };
    valid(app, stream, asked)
}

fn valid<'a>(app: &'a str, stream: &'a str, asked: Asked) -> Option<Target<'a>> {
    let ok = !app.is_empty() && !stream.is_empty() && !app.split('/').any(str::is_empty);
    ok.then_some(Target { app, stream, asked })
}

// ---------------------------------------------------------------------------
// Packaging (the source's shard)
// ---------------------------------------------------------------------------

impl Shard {
    /// The router's `StartHls`: this shard has the source of `key` now.
    pub(super) fn start_hls(&self, key: StreamKey) {
        let settings = self.config().hls.settings();
        let (stream, packager) = self.hls.streams.start_source(&key, settings);
        self.hls
            .known
            .borrow_mut()
            .insert(key.clone(), stream.clone());
        self.hls
            .sources
            .borrow_mut()
            .insert(key, Source { stream, packager });
    }

    /// The router's `Tap`: a frame of a stream whose source is here.
    pub(super) fn tap_hls(&self, key: &StreamKey, frame: &Frame) {
        if frame.kind == MediaKind::Data {
            return;
        }
        let mut sources = self.hls.sources.borrow_mut();
        let Some(source) = sources.get_mut(key) else {
            return;
        };
        let body = frame.payload();
        if source
            .packager
            .push(frame.kind, frame.timestamp.0, &body, unix_ms())
        {
            let window = source.packager.window();
            let stream = source.stream.clone();
            drop(sources);
            self.publish_hls(&stream, window);
        }
    }

    /// The router's `StopHls`: the source of `key` ended here. Waiting
    /// requests look again: what they wait for may never come now.
    pub(super) fn stop_hls(&self, key: &StreamKey) {
        let Some(mut source) = self.hls.sources.borrow_mut().remove(key) else {
            return;
        };
        source.packager.end();
        let window = source.packager.window();
        self.hls.streams.end_source(&source.stream, source.packager);
        self.publish_hls(&source.stream, window);
    }

    /// Makes `window` the one served, and tells the shards waiting for it.
    fn publish_hls(&self, stream: &HlsStream, window: Arc<Window>) {
        for shard in stream.publish(window) {
            if shard == self.id.0 {
                self.hls_updated(&stream.key);
            } else {
                let message = ShardMessage::HlsUpdated(stream.key.clone());
                self.mesh.send(ShardId(shard), message);
            }
        }
    }

    /// A window of `key` this shard's requests wait for came.
    pub(super) fn hls_updated(&self, key: &StreamKey) {
        if let Some(notify) = self.hls.waits.borrow().get(key) {
            notify.notify_waiters();
        }
    }

    /// Every [`MAINTAIN_MS`]: the router hears which streams packaged here
    /// HLS players asked for within `hls.idle_ms` (their pulls stay until
    /// the next look), idle
    /// streams are freed (by shard 0, for all), and this shard forgets
    /// them and its sessions that lapsed.
    pub(super) fn maintain_hls(&self) {
        let idle_ms = u64::try_from(self.config().hls.idle.as_millis()).unwrap_or(u64::MAX);
        let now = self.hls.streams.now_ms();
        let watched: Vec<StreamKey> = (self.hls.sources.borrow().iter())
            .filter(|(_, source)| source.stream.asked_within(now, idle_ms))
            .map(|(key, _)| key.clone())
            .collect();
        for key in watched {
            self.route(Event::HlsWatched {
                key,
                for_ms: MAINTAIN_MS,
            });
        }
        if self.id.0 == 0 {
            self.hls.streams.retire_idle(idle_ms);
        }
        self.hls.known.borrow_mut().retain(|_, s| !s.is_retired());
        (self.hls.waits.borrow_mut()).retain(|_, notify| Rc::strong_count(notify) > 1);
        self.hls.sessions.borrow_mut().retain(|_, s| s.lasts(now));
        let ended = self.hls.streams.end_sessions(self.id.0, now);
        self.stats
            .players_by_protocol(super::stats::Protocol::Hls)
            .sub(ended as u64);
    }
}

fn unix_ms() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

// ---------------------------------------------------------------------------
// Serving (any shard)
// ---------------------------------------------------------------------------

/// Serves an HLS connection: `request`, then each next one while the
/// client keeps the connection.
pub(super) async fn serve(
    shard: &Rc<Shard>,
    conn: &Rc<Conn>,
    mut request: Request,
    mut input: BytesMut,
) -> CloseReason {
    if let Some(mut player) = conn.web() {
        player.hls = true;
    }
    loop {
        shard.stats.hls_requests.add(1);
        let keep_alive = request.keep_alive;
        if let Err(reason) = answer(shard, conn, &request, keep_alive).await {
            return reason;
        }
        if !keep_alive || !conn.is_open() {
            conn.close_after_flush(CloseReason::Answered);
            return CloseReason::Answered;
        }
        let until = shard.now_ms() + shard.config().timeouts.idle.as_millis() as u64;
        (request, input) = match super::web::read_request(shard, conn, input, until).await {
            Ok(read) => read,
            Err(reason) => return reason,
        };
    }
}

/// Why a request is answered with an error, and whether to log it.
struct Refusal {
    status: u16,
    why: String,
}

impl Refusal {
    fn new(status: u16, why: impl Into<String>) -> Refusal {
        Refusal {
            status,
            why: why.into(),
        }
    }
}

/// Answers one request (queued on the connection); `Err` ends the
/// connection.
async fn answer(
    shard: &Rc<Shard>,
    conn: &Rc<Conn>,
    request: &Request,
    keep_alive: bool,
) -> Result<(), CloseReason> {
    let config = shard.config();
    let cors = config.http.cors();
    let refuse = |refusal: Refusal| {
        conn.send(response::error_on(
            refusal.status,
            &refusal.why,
            cors,
            keep_alive,
        ));
    };
    let Some(target) = route(&request.path) else {
        refuse(Refusal::new(404, "not found"));
        return Ok(());
    };
    if request.method == Method::Options {
        conn.send(response::preflight(cors));
        conn.close_after_flush(CloseReason::Answered);
        return Err(CloseReason::Answered);
    }
    if !config.hls.enabled_for(target.app) {
        refuse(Refusal::new(404, "no HLS for this app"));
        return Ok(());
    }
    let key = StreamKey::new(target.app, target.stream);
    let name = match request.query.as_str() {
        "" => target.stream.to_owned(),
        query => format!("{}?{query}", target.stream),
    };
    if !admitted(shard, conn, target.app, &key, &name).await {
        refuse(Refusal::new(403, "play denied"));
        return Ok(());
    }
    let Some(stream) = (shard.hls_stream(&key)).or_else(|| shard.pull_for_hls(conn, key, name))
    else {
        refuse(Refusal::new(404, "no such stream"));
        return Ok(());
    };
    stream.ask(shard.hls.streams.now_ms());
    let served = match target.asked {
        Asked::Playlist => playlist_of(shard, conn, &stream, target.stream, &request.query).await,
        asked => media(shard, conn, &stream, asked).await,
    };
    match served {
        Ok(reply) => send(conn, request, &reply, keep_alive, cors),
        Err(refusal) => refuse(refusal),
    }
    Ok(())
}

/// What a request is answered with.
struct Reply {
    content_type: &'static str,
    cache_control: String,
    etag: String,
    body: Vec<Bytes>,
}

async fn playlist_of(
    shard: &Rc<Shard>,
    conn: &Conn,
    stream: &HlsStream,
    name: &str,
    query: &str,
) -> Result<Reply, Refusal> {
    let directives = Directives::parse(query).map_err(|e| {
        shard.stats.hls_refusals.add(1);
        Refusal::new(400, e.to_string())
    })?;
    let blocking = directives.msn.is_some();
    let window = wait(shard, conn, stream, |window| {
        // Players that do not speak LL-HLS (ffmpeg) start from complete
        // segments: a stream's first playlist waits for one, while it has
        // a source (a pull that found nothing, a publisher gone: 404).
        if !window.segments.iter().any(|segment| segment.complete) {
            return stream.is_sourced().then_some(Check::Wait);
        }
        Some(directives.check(window))
    })
    .await?;
    let passed_on = Directives::strip(query);
    let body = if passed_on.is_empty() {
        window.playlist.clone()
    } else {
        Bytes::from(playlist::render(&window, &format!("{name}/"), &passed_on))
    };
    let (msn, part) = window.next_part().unwrap_or_default();
    let cache_control = if blocking {
        // A blocking reload's URL names a state that only grows: a cache
        // may answer it for as long as the segments it lists stay.
        format!(
            "public, max-age={}",
            window.target_duration_s.saturating_mul(3).max(1)
        )
    } else {
        "no-cache".into()
    };
    Ok(Reply {
        content_type: "application/vnd.apple.mpegurl",
        cache_control,
        etag: format!("\"{}-{msn}-{part}\"", stream.generation),
        body: vec![body],
    })
}

async fn media(
    shard: &Rc<Shard>,
    conn: &Conn,
    stream: &HlsStream,
    asked: Asked,
) -> Result<Reply, Refusal> {
    let window = wait(shard, conn, stream, |window| match asked {
        Asked::Playlist | Asked::Init(_) => Some(Check::Ready),
        Asked::Segment(msn) => match window.segment(msn) {
            Some(segment) if segment.complete => Some(Check::Ready),
            Some(_) => Some(Check::Wait),
            None => coming(window, msn, 0).then_some(Check::Wait),
        },
        Asked::Part(msn, k) => match window.part(msn, k) {
            Some(_) => Some(Check::Ready),
            None => coming(window, msn, k).then_some(Check::Wait),
        },
    })
    .await?;
    let gone = || Refusal::new(404, "no such object (left the window, or never made)");
    let generation = stream.generation;
    let (content_type, etag, body) = match asked {
        Asked::Playlist => return Err(gone()),
        Asked::Init(n) => {
            let init = window.init(n).ok_or_else(gone)?;
            (
                "video/mp4",
                format!("\"{generation}-i{n}\""),
                vec![init.clone()],
            )
        }
        Asked::Segment(msn) => {
            let segment = window
                .segment(msn)
                .filter(|s| s.complete)
                .ok_or_else(gone)?;
            let parts = segment.parts.iter().map(|p| p.bytes.clone()).collect();
            (
                "video/iso.segment",
                format!("\"{generation}-s{msn}\""),
                parts,
            )
        }
        Asked::Part(msn, k) => {
            let part = window.part(msn, k).ok_or_else(gone)?;
            let etag = format!("\"{generation}-p{msn}.{k}\"");
            ("video/iso.segment", etag, vec![part.bytes.clone()])
        }
    };
    // Numbers restart only once a stream was freed, `hls.idle_ms` after
    // its last request: until then a name always means these bytes.
    let idle_s = shard.config().hls.idle.as_secs().max(1);
    Ok(Reply {
        content_type,
        cache_control: format!("public, max-age={idle_s}"),
        etag,
        body,
    })
}

/// Whether part `k` of segment `msn` is the next one or the one after
/// (a player asks for the preload hint, and may be one part ahead).
fn coming(window: &Window, msn: u64, k: u32) -> bool {
    let Some((next_msn, next_k)) = window.next_part() else {
        return msn <= 1;
    };
    (msn == next_msn && k <= next_k.saturating_add(1)) || (msn == next_msn + 1 && k <= 1)
}

/// The window once `ready` says `Ready` (`None`: never, answer `404`),
/// waiting for new windows up to three target durations.
async fn wait(
    shard: &Rc<Shard>,
    conn: &Conn,
    stream: &HlsStream,
    ready: impl Fn(&Window) -> Option<Check>,
) -> Result<Arc<Window>, Refusal> {
    let mut blocked: Option<Blocked<'_>> = None;
    let deadline = {
        let window = stream.window();
        let target_ms = u64::from(window.target_duration_s.max(1)) * 1000;
        let first_ms = shard.config().http.play_wait.as_millis() as u64;
        let wait_ms = if window.segments.is_empty() {
            first_ms.max(3 * u64::from(shard.config().hls.settings().segment_ms))
        } else {
            3 * target_ms
        };
        // Asked for until then: its pull stays, the stream is not freed.
        stream.ask(shard.hls.streams.now_ms().saturating_add(wait_ms));
        tokio::time::Instant::now() + Duration::from_millis(wait_ms)
    };
    loop {
        let notify = shard.hls_notify(&stream.key);
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        stream.wait_on(shard.id.0);
        let window = stream.window();
        match ready(&window) {
            Some(Check::Ready) => return Ok(window),
            Some(Check::OutOfRange) => {
                shard.stats.hls_refusals.add(1);
                return Err(Refusal::new(400, "_HLS_msn or _HLS_part too far ahead"));
            }
            None => {
                return Err(Refusal::new(
                    404,
                    "no such object (left the window, or never made)",
                ));
            }
            Some(Check::Wait) => {}
        }
        if blocked.is_none() {
            blocked = Some(Blocked::enter(shard, conn).ok_or_else(|| {
                shard.stats.hls_refusals.add(1);
                Refusal::new(429, "too many blocked requests from this address")
            })?);
            shard.stats.hls_blocked.add(1);
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return Err(Refusal::new(503, "not made in time"));
        }
    }
}

/// A request of `conn`'s address waits: counted while it does.
struct Blocked<'a> {
    shard: &'a Shard,
    address: IpAddr,
}

impl<'a> Blocked<'a> {
    fn enter(shard: &'a Shard, conn: &Conn) -> Option<Blocked<'a>> {
        let address = conn.peer.ip();
        let max = shard.config().hls.blocked_per_ip_max;
        let mut blocked = shard.hls.blocked.borrow_mut();
        let count = blocked.entry(address).or_default();
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(Blocked { shard, address })
    }
}

impl Drop for Blocked<'_> {
    fn drop(&mut self) {
        let mut blocked = self.shard.hls.blocked.borrow_mut();
        if let Some(count) = blocked.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                blocked.remove(&self.address);
            }
        }
    }
}

/// Whether the session of `conn`'s address and `key` is admitted: at
/// once if it was within `hls.idle_ms`, else through the door (keys,
/// lists, `on_play`).
async fn admitted(
    shard: &Rc<Shard>,
    conn: &Rc<Conn>,
    app: &str,
    key: &StreamKey,
    name: &str,
) -> bool {
    let now = shard.hls.streams.now_ms();
    let until = now + shard.config().hls.idle.as_millis() as u64;
    let session_key = (conn.peer.ip(), key.clone());
    let known = (shard.hls.sessions.borrow().get(&session_key))
        .filter(|s| s.lasts(now))
        .cloned();
    if let Some(session) = known.or_else(|| shard.hls.streams.session(&session_key, now)) {
        session.extend(until);
        shard.hls.sessions.borrow_mut().insert(session_key, session);
        return true;
    }
    *conn.app.borrow_mut() = Some(app.to_owned());
    let verdict = Rc::new(Cell::new(None));
    let told = Rc::new(Notify::new());
    let (verdict_in, told_in) = (verdict.clone(), told.clone());
    shard.admit(conn, Door::Play, name, move |_, _, verdict| {
        verdict_in.set(Some(matches!(verdict, Verdict::Allow { .. })));
        told_in.notify_one();
    });
    if verdict.get().is_none() {
        told.notified().await;
    }
    let allowed = verdict.get() == Some(true);
    if allowed {
        let (session, fresh) =
            (shard.hls.streams).open_session(session_key.clone(), shard.id.0, until);
        shard.hls.sessions.borrow_mut().insert(session_key, session);
        if fresh {
            (shard.stats.players_by_protocol(super::stats::Protocol::Hls)).add(1);
            let stream = Quoted(key.as_str());
            peer_line!(INFO, shard, conn, shard = %shard.id, peer = %conn.peer, %stream, "hls session");
        }
    }
    allowed
}

impl Shard {
    /// The HLS state of `key`, from this shard's table or the server's.
    fn hls_stream(&self, key: &StreamKey) -> Option<Arc<HlsStream>> {
        if let Some(stream) = self.hls.known.borrow().get(key).filter(|s| !s.is_retired()) {
            return Some(stream.clone());
        }
        let stream = self.hls.streams.get(key)?;
        self.hls
            .known
            .borrow_mut()
            .insert(key.clone(), stream.clone());
        Some(stream)
    }

    /// The HLS state of `key`, which no shard has, once a pull of it
    /// started here for `conn`'s request (`name` as asked): `None` if its
    /// app has no origins or a cap refused the pull.
    fn pull_for_hls(&self, conn: &Conn, key: StreamKey, name: String) -> Option<Arc<HlsStream>> {
        let event = Event::HlsWanted {
            conn: conn.id(),
            key: key.clone(),
            name,
        };
        self.route(event);
        self.hls_stream(&key)
    }

    /// What requests waiting for `key` park on (made on first use; those
    /// nobody waits on go in [`Shard::maintain_hls`]).
    fn hls_notify(&self, key: &StreamKey) -> Rc<Notify> {
        (self.hls.waits.borrow_mut().entry(key.clone()))
            .or_default()
            .clone()
    }
}

/// Queues the reply: `304` for a current copy, `416` for a range outside
/// it, else `200` or `206` with the body (`HEAD`: the head only).
fn send(conn: &Conn, request: &Request, reply: &Reply, keep_alive: bool, cors: Cors<'_>) {
    let len = reply.body.iter().map(Bytes::len).sum();
    let object = Object {
        content_type: reply.content_type,
        cache_control: &reply.cache_control,
        etag: &reply.etag,
        len,
    };
    if request
        .if_none_match
        .as_deref()
        .is_some_and(|tags| object::none_match(tags, &reply.etag))
    {
        conn.send(object::not_modified(object, keep_alive, cors));
        return;
    }
    let range = match request
        .range
        .as_deref()
        .map(|r| object::parse_range(r, len))
    {
        Some(Err(object::Unsatisfiable)) => {
            conn.send(object::range_not_satisfiable(len, keep_alive, cors));
            return;
        }
        Some(Ok(range)) => range,
        None => None,
    };
    conn.send(object::head(object, range, keep_alive, cors));
    if request.method == Method::Head {
        return;
    }
    match range {
        Some(range) => send_range(conn, &reply.body, range),
        None => reply.body.iter().for_each(|bytes| conn.send(bytes.clone())),
    }
}

/// The bytes of `range` of the concatenation of `body`, as slices.
fn send_range(conn: &Conn, body: &[Bytes], range: ByteRange) {
    let mut start = 0;
    for bytes in body {
        let end = start + bytes.len();
        if end > range.first && start <= range.last {
            let from = range.first.saturating_sub(start);
            let to = (range.last + 1 - start).min(bytes.len());
            conn.send(bytes.slice(from..to));
        }
        start = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_playlists_inits_segments_and_parts() {
        let target = |app, stream, asked| Some(Target { app, stream, asked });
        assert_eq!(
            route("/live/cam.m3u8"),
            target("live", "cam", Asked::Playlist)
        );
        assert_eq!(
            route("/a/b/cam.m3u8"),
            target("a/b", "cam", Asked::Playlist)
        );
        assert_eq!(
            route("/live/cam/init0.mp4"),
            target("live", "cam", Asked::Init(0))
        );
        assert_eq!(
            route("/live/cam/seg12.m4s"),
            target("live", "cam", Asked::Segment(12))
        );
        assert_eq!(
            route("/live/cam/part12.3.m4s"),
            target("live", "cam", Asked::Part(12, 3))
        );
        for path in [
            "/cam.m3u8",
            "/live/.m3u8",
            "//cam.m3u8",
            "/live/cam/seg.m4s",
            "/live/cam/seg-1.m4s",
            "/live/cam/seg1x.m4s",
            "/live/cam/part1.m4s",
            "/live/cam/part1.2.3.m4s",
            "/live/cam/init99999999999.mp4",
            "/live/cam/seg99999999999999999999999.m4s",
            "/live/cam.flv",
            "/cam/seg1.m4s",
        ] {
            assert_eq!(route(path), None, "{path}");
        }
    }
}
