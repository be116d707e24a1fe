//! A bench publisher: sends its source in real time, stamping every AVC
//! frame with the wall clock as it goes out.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::player::wall_clock_us;
use super::source::Source;
use super::stamp::Stamp;
use crate::client::{Connection, Disconnect};
use crate::protocol::Timestamp;
use crate::session::{ClientEvent, Media};

/// What one publisher did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Outcome {
    pub stream: String,
    pub frames: u64,
    pub bytes: u64,
    /// Why it stopped early, if it did.
    pub error: Option<String>,
}

/// Publishes `source` as `stream` until `stop` is notified.
pub async fn run(
    addr: SocketAddr,
    app: String,
    stream: String,
    index: u32,
    mut source: Source,
    stop: Rc<Notify>,
) -> Outcome {
    let mut outcome = Outcome {
        stream: stream.clone(),
        ..Outcome::default()
    };
    if let Err(e) = publish(addr, &app, &stream, index, &mut source, &stop, &mut outcome).await {
        outcome.error = Some(e);
    }
    outcome
}

async fn publish(
    addr: SocketAddr,
    app: &str,
    stream: &str,
    index: u32,
    source: &mut Source,
    stop: &Notify,
    outcome: &mut Outcome,
) -> Result<(), Disconnect> {
    let mut conn = Connection::open(addr, app, None).await?;
    let stream_id = conn.setup().await?;
    conn.session
        .publish(stream_id, stream)
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
    let started = Instant::now();
    let mut seq = 0;
    loop {
        let item = source.next_item();
        let due = started + Duration::from_secs_f64(item.due_ms.max(0.0) / 1000.0);
        tokio::select! {
            () = tokio::time::sleep_until(due.into()) => {}
            () = stop.notified() => return Ok(()),
        }
        let stamp = Stamp {
            wall_us: wall_clock_us(),
            seq,
            publisher: index,
        };
        if item.is_stampable() {
            seq += 1;
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
