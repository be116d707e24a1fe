//! A bench publisher: sends its source in real time, stamping every AVC
//! frame with the wall clock as it goes out. It announces Enhanced RTMP's
//! reconnect capability and, asked to move, publishes on at the new server
//! from the next keyframe before leaving the old one
//! ([`ringcast_client::reconnect`]); its frames keep their numbering, so
//! players that follow it count what the move lost.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::player::wall_clock_us;
use super::source::Source;
use super::stamp::Stamp;
use ringcast_client::reconnect::{self, Move, Moved};
use ringcast_client::{Disconnect, SETUP_TIMEOUT, Sender};
use ringcast_rtmp::protocol::url::RtmpUrl;
use ringcast_rtmp::protocol::{MessageStreamId, Timestamp};
use ringcast_rtmp::session::{ClientSession, Media, SessionError};

/// What one publisher did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Outcome {
    pub stream: String,
    pub frames: u64,
    pub bytes: u64,
    /// Times it disconnected and published again, as planned.
    pub reconnects: u64,
    /// Times a server asked it to move and it did.
    pub moves: u64,
    /// Moves asked for that it could not make (it stayed where it was).
    pub moves_failed: u64,
    /// Why it stopped early, if it did.
    pub error: Option<String>,
}

/// Where a publisher is in its stream, kept across reconnects: the next
/// item waits for its due time since `started`, and stamps go on counting.
struct Clock {
    started: Instant,
    seq: u64,
    /// An item taken from the source but not yet sent (the connection
    /// ended first).
    pending: Option<super::source::Item>,
}

/// What one publisher needs to know.
pub struct Plan {
    pub addr: SocketAddr,
    pub app: String,
    pub stream: String,
    pub index: u32,
    /// Disconnect and publish again this often (an encoder that restarts).
    pub reconnect_every: Option<Duration>,
}

/// Publishes `source` as the plan's stream until `stop` is notified.
pub async fn run(plan: Plan, mut source: Source, stop: Rc<Notify>) -> Outcome {
    let mut outcome = Outcome {
        stream: plan.stream.clone(),
        ..Outcome::default()
    };
    let mut clock = Clock {
        started: Instant::now(),
        seq: 0,
        pending: None,
    };
    // Where it publishes: the plan's server, until one asks it to move.
    let mut home = match RtmpUrl::parse(&format!("rtmp://{}/{}", plan.addr, plan.app)) {
        Ok(home) => home,
        Err(e) => {
            outcome.error = Some(e.to_string());
            return outcome;
        }
    };
    loop {
        let until = plan.reconnect_every.map(|every| Instant::now() + every);
        let mut run = Run {
            plan: &plan,
            source: &mut source,
            clock: &mut clock,
            outcome: &mut outcome,
        };
        match run.publish(&mut home, &stop, until).await {
            Ok(Ended::Stopped) => break,
            Ok(Ended::Reconnect) => {
                outcome.reconnects += 1;
                // A restarted encoder starts at once, on a keyframe, with
                // a new numbering (players do not count the restart as
                // loss): the clock moves so that the keyframe is due now.
                let keyframe = next_keyframe(&mut source);
                clock.started = due_now(&keyframe);
                clock.pending = Some(keyframe);
            }
            Err(e) => {
                outcome.error = Some(e);
                break;
            }
        }
    }
    outcome
}

/// Skips to the next video keyframe of the source (bounded: a source
/// without keyframes gives its next item).
fn next_keyframe(source: &mut Source) -> super::source::Item {
    let mut item = source.next_item();
    for _ in 0..100_000 {
        if item.is_keyframe() {
            break;
        }
        item = source.next_item();
    }
    item
}

/// The start of a clock on which `item` is due now.
fn due_now(item: &super::source::Item) -> Instant {
    let now = Instant::now();
    now.checked_sub(due_after_start(item)).unwrap_or(now)
}

/// When `item` is due, counted from the clock's start.
fn due_after_start(item: &super::source::Item) -> Duration {
    Duration::from_secs_f64(item.due_ms.max(0.0) / 1000.0)
}

/// Why one publishing connection ended well.
enum Ended {
    Stopped,
    Reconnect,
}

/// One publishing connection's share of the work.
struct Run<'a> {
    plan: &'a Plan,
    source: &'a mut Source,
    clock: &'a mut Clock,
    outcome: &'a mut Outcome,
}

/// The connection a publish goes out on.
struct Publishing {
    sender: Sender,
    stream_id: MessageStreamId,
}

impl Run<'_> {
    /// Publishes at `home` until stopped, due to reconnect, or cut off; a
    /// move asked for by the server changes `home`.
    async fn publish(
        &mut self,
        home: &mut RtmpUrl,
        stop: &Notify,
        until: Option<Instant>,
    ) -> Result<Ended, Disconnect> {
        let (conn, stream_id) = reconnect::publish(home, &self.plan.stream, None).await?;
        let mut now = Publishing {
            sender: conn.into_sender(),
            stream_id,
        };
        self.prelude(&now).await?;
        let mut moving: Option<Move> = None;
        let reconnect_at =
            until.unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365));
        loop {
            let item = (self.clock.pending.take()).unwrap_or_else(|| self.source.next_item());
            let due = self.clock.started + due_after_start(&item);
            let ended = tokio::select! {
                () = tokio::time::sleep_until(due.into()) => None,
                () = stop.notified() => Some(Ended::Stopped),
                () = tokio::time::sleep_until(reconnect_at.into()) => Some(Ended::Reconnect),
            };
            if let Some(ended) = ended {
                self.clock.pending = Some(item);
                return Ok(ended);
            }
            let mut left = None;
            if item.is_keyframe() {
                if let Some(ready) = moving.as_ref().and_then(Move::poll_ready) {
                    moving = None;
                    left = self.moved(ready, &mut now, home).await;
                }
            }
            if moving.is_none() {
                moving = self.asked_to_move(&now, home);
            }
            self.send(&now, item).await?;
            if let Some(old) = left {
                // The old server ends the publish at once rather than on
                // the close; it may already be gone, which changes nothing.
                let _ = (old.sender)
                    .send(|session| session.delete_stream(old.stream_id))
                    .await;
            }
        }
    }

    /// Metadata and sequence headers: what a connection starts with.
    async fn prelude(&self, to: &Publishing) -> Result<(), Disconnect> {
        let source = &*self.source;
        let stream_id = to.stream_id;
        let prelude = |session: &mut ClientSession| -> Result<(), SessionError> {
            session.send_metadata(stream_id, source.metadata())?;
            for (kind, payload) in source.headers() {
                let media = Media {
                    kind,
                    timestamp: Timestamp(0),
                    payload,
                };
                session.send_media(stream_id, &media)?;
            }
            Ok(())
        };
        to.sender.send(prelude).await
    }

    /// A move the server asked for since the last look, started.
    fn asked_to_move(&mut self, now: &Publishing, home: &RtmpUrl) -> Option<Move> {
        let request = now.sender.reconnect_request()?;
        match reconnect::target(home, request.tc_url.as_deref()) {
            Ok(to) => Some(Move::start(to, &self.plan.stream, SETUP_TIMEOUT, None)),
            Err(_) => {
                self.outcome.moves_failed += 1;
                None
            }
        }
    }

    /// At a keyframe, with the new connection set up (or not): the stream
    /// goes on there, headers first, and the old connection is handed
    /// back to be closed once the keyframe went out on the new one; a move
    /// that failed leaves it where it was.
    async fn moved(
        &mut self,
        ready: Result<Moved, Disconnect>,
        now: &mut Publishing,
        home: &mut RtmpUrl,
    ) -> Option<Publishing> {
        let Ok(moved) = ready else {
            self.outcome.moves_failed += 1;
            return None;
        };
        let next = Publishing {
            sender: moved.sender,
            stream_id: moved.stream_id,
        };
        if self.prelude(&next).await.is_err() {
            self.outcome.moves_failed += 1;
            return None;
        }
        *home = moved.tc_url;
        self.outcome.moves += 1;
        Some(std::mem::replace(now, next))
    }

    /// Stamps and sends one item of the source.
    async fn send(&mut self, to: &Publishing, item: super::source::Item) -> Result<(), Disconnect> {
        let stamp = Stamp {
            wall_us: wall_clock_us(),
            seq: self.clock.seq,
            // Each connection numbers its frames as a publisher of its own.
            publisher: self.plan.index | (self.outcome.reconnects as u32) << 16,
        };
        if item.is_stampable() {
            self.clock.seq += 1;
        }
        let media = Media {
            kind: item.kind,
            timestamp: item.timestamp,
            payload: item.body(&stamp),
        };
        let stream_id = to.stream_id;
        to.sender
            .send(|session| session.send_media(stream_id, &media))
            .await?;
        self.outcome.frames += 1;
        self.outcome.bytes += media.payload.len() as u64;
        Ok(())
    }
}
