//! Pushing a published stream to another server: the shard offers every
//! frame to the push's [`Feed`] (bounded, never blocking the publisher);
//! the push task publishes to its target and sends what the feed holds.
//! A target that drops or refuses is retried with backoff; on every
//! (re)connect the latest metadata and sequence headers go first and video
//! resumes at a keyframe. A target that has neither sent nor taken
//! anything for [`RelayTiming::ping`] is pinged, and dropped if it stays
//! silent as long again; a write it does not take within twice that drops
//! it too (a half-open target stops taking bytes once the socket buffer is
//! full).
//!
//! A push announces Enhanced RTMP's reconnect capability: a target that
//! asks it to move (a ringcast draining for maintenance) gets the stream
//! on a new connection from the next keyframe, the latest headers first,
//! before the old connection is closed ([`ringcast_client::reconnect`]).
//! A later drop reconnects to the configured target, as before.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tracing::{info, warn};

use super::{Backoff, State, Status, redacted};
use crate::config::RelayTiming;
use crate::media::{Frame, FrameClass, StreamKey};
use crate::protocol::MessageStreamId;
use crate::protocol::command::CapsEx;
use crate::protocol::url::RtmpUrl;
use crate::session::{ClientEvent, Media, MediaKind};
use ringcast_client::{Connection, Disconnect};
use ringcast_tls::ClientTls;

/// Frames waiting for one push target.
#[derive(Debug)]
pub struct Feed {
    bound: usize,
    frames: RefCell<VecDeque<Frame>>,
    bytes: Cell<usize>,
    /// Video waits for a keyframe (after a drop or a reconnect).
    gated: Cell<bool>,
    /// The latest metadata, video and audio sequence headers.
    headers: RefCell<[Option<Frame>; 3]>,
    wake: Notify,
    closed: Cell<bool>,
}

impl Feed {
    /// A feed holding at most `bound` bytes of frames ([`Frame::held`]).
    pub fn new(bound: usize) -> Feed {
        Feed {
            bound,
            frames: RefCell::new(VecDeque::new()),
            bytes: Cell::new(0),
            gated: Cell::new(true),
            headers: RefCell::new([None, None, None]),
            wake: Notify::new(),
            closed: Cell::new(false),
        }
    }

    /// Offers a frame of the stream; never waits. Past the bound the frame
    /// is dropped and video waits for the next keyframe.
    pub fn offer(&self, frame: &Frame) {
        if let Some(slot) = header_slot(frame) {
            if let Some(header) = self.headers.borrow_mut().get_mut(slot) {
                *header = Some(frame.clone());
            }
        }
        match frame.class {
            FrameClass::Interframe if self.gated.get() => return,
            FrameClass::Keyframe => self.gated.set(false),
            _ => {}
        }
        if self.bytes.get() + frame.held() > self.bound {
            self.gated.set(true);
            return;
        }
        self.bytes.set(self.bytes.get() + frame.held());
        self.frames.borrow_mut().push_back(frame.clone());
        self.wake.notify_one();
    }

    /// The stream ended: the push finishes what it holds and stops.
    pub fn close(&self) {
        self.closed.set(true);
        self.wake.notify_one();
    }

    /// Starts over for a new connection: queued frames go, the latest
    /// headers are what to send first, video waits for a keyframe.
    fn restart(&self) -> Vec<Frame> {
        self.frames.borrow_mut().clear();
        self.bytes.set(0);
        self.gated.set(true);
        self.headers()
    }

    /// The latest metadata and sequence headers.
    fn headers(&self) -> Vec<Frame> {
        self.headers.borrow().iter().flatten().cloned().collect()
    }

    fn pop(&self) -> Option<Frame> {
        let frame = self.frames.borrow_mut().pop_front()?;
        self.bytes
            .set(self.bytes.get().saturating_sub(frame.held()));
        Some(frame)
    }
}

/// Which header slot a frame updates, if it is one.
fn header_slot(frame: &Frame) -> Option<usize> {
    match (frame.class, frame.kind) {
        (FrameClass::Metadata, _) => Some(0),
        (FrameClass::SequenceHeader, MediaKind::Video) => Some(1),
        (FrameClass::SequenceHeader, _) => Some(2),
        _ => None,
    }
}

/// Where to push what.
#[derive(Clone, Debug)]
pub struct Plan {
    pub key: StreamKey,
    /// The name to publish at the target.
    pub name: String,
    pub target: RtmpUrl,
    pub timing: RelayTiming,
    /// What an `rtmps://` target's certificate is verified against
    /// besides the public roots (`[tls] ca_file`).
    pub roots: Option<ClientTls>,
}

impl Plan {
    /// The name to publish as: the target URL's stream with `{name}`
    /// replaced, else the published name (without the publisher's query,
    /// which may hold its key).
    pub fn new(
        key: StreamKey,
        published_name: &str,
        target: RtmpUrl,
        timing: RelayTiming,
        roots: Option<ClientTls>,
    ) -> Plan {
        let bare = published_name.split('?').next().unwrap_or_default();
        let name = match target.stream() {
            Some(stream) => stream.replace("{name}", bare),
            None => bare.to_owned(),
        };
        Plan {
            key,
            name,
            target,
            timing,
            roots,
        }
    }
}

impl Plan {
    /// The `tcUrl` a push connects with: the target's host and app (what
    /// follows the app names the stream, and its query goes with that).
    fn tc_url(&self) -> RtmpUrl {
        RtmpUrl {
            path: self.target.app().to_owned(),
            query: None,
            ..self.target.clone()
        }
    }
}

/// Pushes until the feed is closed (or the task aborted).
pub async fn run(plan: Plan, feed: Rc<Feed>, status: Rc<Status>) {
    let mut backoff = Backoff::new(plan.timing.backoff_max);
    let mut connected_before = false;
    let shown = redacted(&plan.target);
    *status.target.borrow_mut() = shown.clone();
    while !feed.closed.get() {
        status.state.set(State::Connecting);
        let reason = match push_once(&plan, &feed, &status, &mut connected_before).await {
            Ok(()) => return,
            Err(reason) => reason,
        };
        warn!(stream = %plan.key, target = %shown, error = %reason, "push interrupted");
        *status.last_error.borrow_mut() = Some(reason);
        if status.state.get() == State::Live {
            backoff.reset();
        }
        status.state.set(State::Backoff);
        tokio::time::sleep(backoff.next()).await;
    }
    status.state.set(State::Stopped);
}

/// Connects to the plan's target (announcing that it can move when
/// asked) and publishes there, within the connect timeout.
async fn connect(plan: &Plan) -> Result<(Connection, MessageStreamId), Disconnect> {
    let tc_url = plan.tc_url();
    let setup = async {
        let roots = plan.roots.as_ref();
        let mut conn = ringcast_client::reconnect::open(&tc_url, CapsEx::RECONNECT, roots).await?;
        let stream_id = conn.setup().await?;
        conn.session
            .publish(stream_id, &plan.name)
            .map_err(|e| e.to_string())?;
        conn.wait_for("publish", ClientEvent::is_publish_start)
            .await?;
        Ok::<_, Disconnect>((conn, stream_id))
    };
    tokio::time::timeout(plan.timing.connect_timeout, setup)
        .await
        .map_err(|_| format!("no Publish.Start within {:?}", plan.timing.connect_timeout))?
}

async fn push_once(
    plan: &Plan,
    feed: &Feed,
    status: &Status,
    connected_before: &mut bool,
) -> Result<(), Disconnect> {
    let (conn, stream_id) = connect(plan).await?;
    if std::mem::replace(connected_before, true) {
        status.reconnected();
    }
    status.state.set(State::Live);
    // Not the name: it is often the target's stream key.
    info!(stream = %plan.key, target = %redacted(&plan.target), "pushing");
    let mut target = Target {
        sender: conn.into_sender(),
        stream_id,
        // What a move is resolved against.
        tc_url: plan.tc_url(),
    };
    let quiet = plan.timing.ping;
    for frame in feed.restart() {
        send(&target, &frame, status, quiet).await?;
    }
    let mut liveness = Liveness::new(quiet);
    let mut sent_at = Instant::now();
    let mut moving: Option<ringcast_client::reconnect::Move> = None;
    loop {
        while let Some(frame) = feed.pop() {
            let mut left = None;
            if frame.class == FrameClass::Keyframe {
                let ready = moving.as_ref().and_then(|m| m.poll_ready());
                if let Some(ready) = ready {
                    moving = None;
                    left = moved(plan, feed, ready, &mut target, status, quiet).await;
                }
            }
            send(&target, &frame, status, quiet).await?;
            sent_at = Instant::now();
            if let Some(old) = left {
                // The old target ends the publish at once, not on the
                // close; it may be gone already, which changes nothing.
                let stream_id = old.stream_id;
                let _ = within(quiet, old.sender.send(|s| s.delete_stream(stream_id))).await;
            }
        }
        if feed.closed.get() {
            return Ok(());
        }
        if let Some(reason) = target.sender.ended() {
            return Err(reason);
        }
        if moving.is_none() {
            moving = asked_to_move(plan, &target);
        }
        match liveness.check(Instant::now(), target.sender.heard(), sent_at) {
            Check::Fine => {}
            Check::Ping => within(quiet, target.sender.send(|session| session.ping(0))).await?,
            Check::Dead => {
                return Err(format!(
                    "nothing received for {:?}, ping unanswered",
                    quiet * 2
                ));
            }
        }
        // Woken by a frame or the reader's end, or at least twice per
        // interval to look again.
        tokio::select! {
            () = feed.wake.notified() => {}
            () = target.sender.wait_ended() => {}
            () = tokio::time::sleep(quiet / 2) => {}
        }
    }
}

/// The connection a push writes to.
struct Target {
    sender: ringcast_client::Sender,
    stream_id: MessageStreamId,
    tc_url: RtmpUrl,
}

/// A move the target asked for since the last look, started (or logged
/// and dropped when its URL cannot be used).
fn asked_to_move(plan: &Plan, target: &Target) -> Option<ringcast_client::reconnect::Move> {
    use ringcast_client::reconnect;
    let request = target.sender.reconnect_request()?;
    match reconnect::target(&target.tc_url, request.tc_url.as_deref()) {
        Ok(to) => {
            info!(stream = %plan.key, to = %redacted(&to), "push target asks to move; moving at the next keyframe");
            Some(reconnect::Move::start(
                to,
                &plan.name,
                plan.timing.connect_timeout,
                plan.roots.clone(),
            ))
        }
        Err(error) => {
            warn!(stream = %plan.key, %error, "push target asks to move to a URL we cannot use; staying");
            None
        }
    }
}

/// At a keyframe, the move's new connection (or why there is none): the
/// latest headers go out on it and it becomes the target; the old one is
/// handed back to be closed once the keyframe went out on the new one.
async fn moved(
    plan: &Plan,
    feed: &Feed,
    ready: Result<ringcast_client::reconnect::Moved, Disconnect>,
    target: &mut Target,
    status: &Status,
    quiet: Duration,
) -> Option<Target> {
    let next = match ready {
        Ok(moved) => Target {
            sender: moved.sender,
            stream_id: moved.stream_id,
            tc_url: moved.tc_url,
        },
        Err(error) => {
            warn!(stream = %plan.key, %error, "push could not move; staying with the old target");
            return None;
        }
    };
    for header in feed.headers() {
        if let Err(error) = send(&next, &header, status, quiet).await {
            warn!(stream = %plan.key, %error, "push could not move; staying with the old target");
            return None;
        }
    }
    info!(stream = %plan.key, target = %redacted(&next.tc_url), "push moved");
    Some(std::mem::replace(target, next))
}

/// Whether a push target is still there. Frames flow one way, and a
/// target acknowledges only every few megabytes, so silence alone proves
/// nothing: a target neither heard from nor written to for `quiet` is
/// pinged, and one still silent `quiet` after the ping is dead. (A target
/// that stops taking our writes is caught by [`within`].)
#[derive(Debug)]
struct Liveness {
    quiet: Duration,
    pinged_at: Option<Instant>,
}

/// What the push loop does now.
#[derive(Debug, PartialEq, Eq)]
enum Check {
    Fine,
    Ping,
    Dead,
}

impl Liveness {
    fn new(quiet: Duration) -> Liveness {
        Liveness {
            quiet,
            pinged_at: None,
        }
    }

    /// At `now`, with the target last heard from at `heard` and last
    /// written to at `sent`.
    fn check(&mut self, now: Instant, heard: Instant, sent: Instant) -> Check {
        match self.pinged_at {
            Some(at) if heard >= at => {
                self.pinged_at = None;
                Check::Fine
            }
            Some(at) if now.saturating_duration_since(at) >= self.quiet => Check::Dead,
            Some(_) => Check::Fine,
            None if now.saturating_duration_since(heard.max(sent)) >= self.quiet => {
                self.pinged_at = Some(now);
                Check::Ping
            }
            None => Check::Fine,
        }
    }
}

/// `write` must finish within twice `quiet`: a target that does not take
/// bytes for that long is gone.
async fn within<T>(
    quiet: Duration,
    write: impl std::future::Future<Output = Result<T, Disconnect>>,
) -> Result<T, Disconnect> {
    tokio::time::timeout(quiet * 2, write)
        .await
        .map_err(|_| format!("a write to the target stalled for {:?}", quiet * 2))?
}

async fn send(
    to: &Target,
    frame: &Frame,
    status: &Status,
    quiet: Duration,
) -> Result<(), Disconnect> {
    let media = Media {
        kind: frame.kind,
        timestamp: frame.timestamp,
        payload: frame.payload(),
    };
    let stream_id = to.stream_id;
    within(
        quiet,
        to.sender
            .send(|session| session.send_media(stream_id, &media)),
    )
    .await?;
    Status::add(&status.bytes_out, media.payload.len() as u64);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::FRAME_OVERHEAD_BYTES;
    use crate::protocol::Timestamp;

    fn video(ts: u32, key: bool) -> Frame {
        let body = [if key { 0x17 } else { 0x27 }, 1, 0, 0, 0, 9];
        Frame::package(MediaKind::Video, Timestamp(ts), &body, 4096).expect("ok")
    }

    #[test]
    fn a_feed_starts_on_a_keyframe_and_drops_to_the_next_past_its_bound() {
        // Each frame is 18 bytes on the wire and holds the overhead too:
        // two fit.
        let feed = Feed::new(2 * (18 + FRAME_OVERHEAD_BYTES) + 4);
        feed.offer(&video(0, false));
        assert!(feed.pop().is_none(), "no start on an interframe");
        feed.offer(&video(33, true));
        feed.offer(&video(66, false));
        feed.offer(&video(99, false)); // over the bound: dropped, gated
        feed.offer(&video(132, false));
        let sent: Vec<u32> = std::iter::from_fn(|| feed.pop())
            .map(|f| f.timestamp.0)
            .collect();
        assert_eq!(sent, vec![33, 66]);
        feed.offer(&video(165, true));
        assert_eq!(feed.pop().map(|f| f.timestamp.0), Some(165));
    }

    #[test]
    fn a_restart_sends_the_latest_headers_first() {
        let feed = Feed::new(1 << 20);
        let avc = |n: u8| {
            Frame::package(MediaKind::Video, Timestamp(0), &[0x17, 0, 0, 0, 0, n], 4096)
                .expect("ok")
        };
        feed.offer(&avc(1));
        feed.offer(&avc(2));
        feed.offer(&video(33, true));
        let headers: Vec<u8> = feed.restart().iter().map(|f| f.payload()[5]).collect();
        assert_eq!(headers, vec![2]);
        assert!(
            feed.pop().is_none(),
            "queued frames went with the old connection"
        );
    }

    #[test]
    fn a_silent_target_is_pinged_then_dropped_and_an_answer_clears_the_ping() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut liveness = Liveness::new(Duration::from_millis(100));
        // Writes count as activity until a ping is out.
        assert_eq!(liveness.check(at(150), at(0), at(100)), Check::Fine);
        assert_eq!(liveness.check(at(200), at(0), at(100)), Check::Ping);
        assert_eq!(liveness.check(at(250), at(0), at(250)), Check::Fine);
        // Answered: fine again, and pinged again only after more silence.
        assert_eq!(liveness.check(at(260), at(255), at(250)), Check::Fine);
        assert_eq!(liveness.check(at(300), at(255), at(250)), Check::Fine);
        assert_eq!(liveness.check(at(360), at(255), at(250)), Check::Ping);
        // Unanswered for the interval, writes or not: dead.
        assert_eq!(liveness.check(at(400), at(255), at(400)), Check::Fine);
        assert_eq!(liveness.check(at(460), at(255), at(460)), Check::Dead);
    }

    #[test]
    fn the_pushed_name_follows_the_target_url() {
        let key = StreamKey::new("live", "cam");
        let timing = RelayTiming::default();
        let plan = |url: &str| {
            Plan::new(
                key.clone(),
                "cam?key=secret",
                RtmpUrl::parse(url).expect("url"),
                timing,
                None,
            )
        };
        assert_eq!(plan("rtmp://o/live").name, "cam");
        assert_eq!(plan("rtmp://o/live/{name}-edge").name, "cam-edge");
        assert_eq!(plan("rtmp://o/live/fixed?token=t").name, "fixed?token=t");
    }
}
