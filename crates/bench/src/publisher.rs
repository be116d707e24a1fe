//! A bench publisher: sends its source in real time, stamping every AVC
//! frame with the wall clock as it goes out.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::player::wall_clock_us;
use super::source::Source;
use super::stamp::Stamp;
use ringcast_client::{Connection, Disconnect};
use ringcast_rtmp::protocol::Timestamp;
use ringcast_rtmp::session::{ClientEvent, Media};

/// What one publisher did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Outcome {
    pub stream: String,
    pub frames: u64,
    pub bytes: u64,
    /// Times it disconnected and published again, as planned.
    pub reconnects: u64,
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
    loop {
        let until = plan.reconnect_every.map(|every| Instant::now() + every);
        match publish(&plan, &mut source, &stop, &mut clock, until, &mut outcome).await {
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

async fn publish(
    plan: &Plan,
    source: &mut Source,
    stop: &Notify,
    clock: &mut Clock,
    until: Option<Instant>,
    outcome: &mut Outcome,
) -> Result<Ended, Disconnect> {
    let mut conn = Connection::open(plan.addr, &plan.app, None).await?;
    let stream_id = conn.setup().await?;
    conn.session
        .publish(stream_id, &plan.stream)
        .map_err(|e| e.to_string())?;
    conn.wait_for("publish", ClientEvent::is_publish_start)
        .await?;
    conn.session
        .send_metadata(stream_id, source.metadata())
        .map_err(|e| e.to_string())?;
    for (kind, payload) in source.headers() {
        let media = Media {
            kind,
            timestamp: Timestamp(0),
            payload,
        };
        conn.session
            .send_media(stream_id, &media)
            .map_err(|e| e.to_string())?;
    }
    conn.flush().await?;
    let sender = conn.into_sender();
    let reconnect_at = until.unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365));
    loop {
        let item = clock.pending.take().unwrap_or_else(|| source.next_item());
        let due = clock.started + due_after_start(&item);
        let ended = tokio::select! {
            () = tokio::time::sleep_until(due.into()) => None,
            () = stop.notified() => Some(Ended::Stopped),
            () = tokio::time::sleep_until(reconnect_at.into()) => Some(Ended::Reconnect),
        };
        if let Some(ended) = ended {
            clock.pending = Some(item);
            return Ok(ended);
        }
        let stamp = Stamp {
            wall_us: wall_clock_us(),
            seq: clock.seq,
            // Each connection numbers its frames as a publisher of its own.
            publisher: plan.index | (outcome.reconnects as u32) << 16,
        };
        if item.is_stampable() {
            clock.seq += 1;
        }
        let media = Media {
            kind: item.kind,
            timestamp: item.timestamp,
            payload: item.body(&stamp),
        };
        sender
            .send(|session| session.send_media(stream_id, &media))
            .await?;
        outcome.frames += 1;
        outcome.bytes += media.payload.len() as u64;
    }
}
