//! Pulling one stream from its origins: connect, `play` the stream (query
//! and all, so the origin's auth still applies), and hand every message to
//! the shard as if a publisher sent it. On a failure or a drop the next
//! origin in hash order is tried. A pull that never went live and failed
//! a full round of origins gives up: the shard hears
//! [`PullSink::unavailable`] and answers its players
//! `NetStream.Play.StreamNotFound`. One that was live keeps failing over,
//! backing off after each full round, while players wait. An origin silent
//! for [`RelayTiming::ping`] is pinged, and dropped if silent as long again.
//! The shard stops a pull by aborting its task.

use std::rc::Rc;

use tracing::{debug, info, warn};

use super::{Backoff, State, Status, origins, redacted};
use crate::config::RelayTiming;
use crate::media::StreamKey;
use crate::protocol::url::RtmpUrl;
use crate::router::Published;
use crate::session::ClientEvent;
use ringcast_client::{Connection, Disconnect};

/// Where a pulled stream's messages go: the shard that owns the pull.
pub trait PullSink {
    /// One message of the stream.
    fn pulled(&self, key: &StreamKey, message: Published);
    /// The stream goes on from another origin connection: what follows
    /// does not continue what came before (players restart video at the
    /// next keyframe).
    fn discontinuity(&self, key: &StreamKey);
    /// Every origin failed the stream before it ever went live: the pull
    /// has ended (`why`: the last origin's answer).
    fn unavailable(&self, key: &StreamKey, why: &str);
}

/// What to pull, from where.
#[derive(Clone, Debug)]
pub struct Plan {
    pub key: StreamKey,
    /// The name to `play` at the origin: as the first player asked for it.
    pub play_name: String,
    /// The origins, each naming the app to ask for.
    pub origins: Vec<RtmpUrl>,
    pub timing: RelayTiming,
}

/// Pulls until the task is aborted, or until every origin failed the
/// stream before it ever went live.
pub async fn run(plan: Plan, sink: Rc<dyn PullSink>, status: Rc<Status>) {
    let bare_name = plan
        .play_name
        .split('?')
        .next()
        .unwrap_or_default()
        .to_owned();
    let order: Vec<RtmpUrl> = origins::order(&bare_name, &plan.origins)
        .into_iter()
        .cloned()
        .collect();
    if order.is_empty() {
        status.state.set(State::Stopped);
        sink.unavailable(&plan.key, "no origin serves this app");
        return;
    }
    let mut backoff = Backoff::new(plan.timing.backoff_max);
    let mut at = 0usize;
    let mut failed_in_a_row = 0usize;
    let mut was_live = false;
    loop {
        let Some(origin) = order.get(at % order.len()) else {
            return;
        };
        let shown = redacted(origin);
        *status.target.borrow_mut() = shown.clone();
        status.state.set(State::Connecting);
        let outcome = pull_once(origin, &plan, &*sink, &status, was_live).await;
        let (went_live, reason) = (outcome.went_live, outcome.reason);
        if went_live {
            backoff.reset();
            failed_in_a_row = 0;
        } else {
            failed_in_a_row += 1;
        }
        if went_live || was_live {
            warn!(stream = %plan.key, origin = %shown, error = %reason, "pull from origin ended");
            sink.discontinuity(&plan.key);
        } else {
            // Not worth a line each: a flood of plays for names no origin
            // has would make one per name; the shard logs the give-ups in
            // bursts.
            debug!(stream = %plan.key, origin = %shown, error = %reason, "pull from origin failed");
        }
        was_live |= went_live;
        at += 1;
        if order.len() > 1 {
            status.failed_over();
        }
        let round_failed = failed_in_a_row >= order.len();
        if round_failed && !was_live {
            status.state.set(State::Stopped);
            sink.unavailable(&plan.key, &reason);
            *status.last_error.borrow_mut() = Some(reason);
            return;
        }
        *status.last_error.borrow_mut() = Some(reason);
        if round_failed {
            status.state.set(State::Backoff);
            tokio::time::sleep(backoff.next()).await;
            failed_in_a_row = 0;
        }
    }
}

/// How one origin connection went.
struct Outcome {
    went_live: bool,
    reason: Disconnect,
}

/// Pulls from `origin` until the connection ends. `was_live`: an earlier
/// connection worked, so this one, once live, counts as a reconnect (when
/// it happens, for metrics, not when it ends).
async fn pull_once(
    origin: &RtmpUrl,
    plan: &Plan,
    sink: &dyn PullSink,
    status: &Status,
    was_live: bool,
) -> Outcome {
    let setup = async {
        let mut conn = Connection::open_url(origin).await?;
        let stream_id = conn.setup().await?;
        conn.session
            .play(stream_id, &plan.play_name)
            .map_err(|e| e.to_string())?;
        conn.wait_for("play", ClientEvent::is_play_start).await?;
        Ok::<_, Disconnect>(conn)
    };
    let mut conn = match tokio::time::timeout(plan.timing.connect_timeout, setup).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(reason)) => {
            return Outcome {
                went_live: false,
                reason,
            };
        }
        Err(_) => {
            let reason = format!("no Play.Start within {:?}", plan.timing.connect_timeout);
            return Outcome {
                went_live: false,
                reason,
            };
        }
    };
    status.state.set(State::Live);
    if was_live {
        status.reconnected();
    }
    info!(stream = %plan.key, origin = %redacted(origin), "pulling from origin");
    let quiet = plan.timing.ping;
    let mut counted = conn.bytes_read;
    let reason = loop {
        deliver(&mut conn, &plan.key, sink);
        Status::add(&status.bytes_in, conn.bytes_read - counted);
        counted = conn.bytes_read;
        // An origin that does not read our replies stalls this write; it
        // is as dead as a silent one.
        let flushed = tokio::time::timeout(quiet * 2, conn.flush_replies()).await;
        match flushed {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => break reason,
            Err(_) => break format!("replies not taken for {:?}", quiet * 2),
        }
        if let Err(reason) = conn.read_or_ping(quiet).await {
            break reason;
        }
    };
    Outcome {
        went_live: true,
        reason,
    }
}

/// Hands the session's media and metadata to the shard.
fn deliver(conn: &mut Connection, key: &StreamKey, sink: &dyn PullSink) {
    while let Some(event) = conn.session.poll_event() {
        match event {
            ClientEvent::Media { media, .. } => sink.pulled(key, Published::Media(media)),
            ClientEvent::Metadata {
                timestamp,
                metadata,
                ..
            } => {
                sink.pulled(
                    key,
                    Published::Metadata {
                        timestamp,
                        metadata,
                    },
                );
            }
            _ => {}
        }
    }
}
