//! The maintenance drain, server-wide: what SIGTERM and `POST
//! /api/v1/drain` begin. Every shard closes its listeners (with
//! SO_REUSEPORT, a ringcast started beside this one on the same ports,
//! `--share-ports`, gets every new connection), asks its publishers that
//! announced Enhanced RTMP's reconnect capability to move (to
//! `drain_redirect`, or to where they are), and lets players go as their
//! stream's publisher leaves ([`crate::shard`]'s `drain`). The drain is
//! over when no publisher or player is left or `drain_ms` has passed;
//! [`crate::server::run`] then shuts down as SIGINT does (the rest are
//! closed) and the process exits 0.
//!
//! Whether publishers and players are left is read from the shards'
//! counters, so watching costs the shards nothing. One line is logged when
//! a drain begins (publishers asked, players held) and one when it is over
//! (left by themselves, closed).

use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tracing::info;

use crate::config::DrainConfig;
use crate::limits;
use crate::relay::redacted;
use crate::shard::ShardId;
use crate::shard::mesh::Mesh;
use crate::shard::messages::{DrainReport, ShardMessage};
use crate::shard::stats::ShardStats;

/// The server's drain: none until one begins; one at most.
#[derive(Debug)]
pub struct Drain {
    mesh: Mesh,
    stats: Vec<Arc<ShardStats>>,
    began: Mutex<Option<Began>>,
}

/// A drain under way.
#[derive(Clone, Copy, Debug)]
struct Began {
    at: Instant,
    wait: Duration,
    /// Publishers and players when it began.
    held: u64,
}

/// Where the server's drain is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// None began.
    Idle,
    /// Publishers or players are still here, and there is time left.
    Waiting,
    /// Over: of the publishers and players there when it began, `left`
    /// went (publishers that moved or stopped, players whose stream
    /// ended here or who quit), and `closed` are still here, for the
    /// shutdown to close.
    Over { left: u64, closed: u64 },
}

impl Drain {
    pub fn new(mesh: Mesh, stats: Vec<Arc<ShardStats>>) -> Drain {
        Drain {
            mesh,
            stats,
            began: Mutex::new(None),
        }
    }

    /// Begins draining (`why`: what asked, for the log) unless a drain
    /// already began: false then. Waits for the shards to say what they
    /// held, at most [`limits::ADMIN_SHARD_TIMEOUT_MS`] (a stuck shard
    /// still drains when it gets to its inbox).
    pub fn begin(&self, config: &DrainConfig, why: &str) -> bool {
        let mut began = self.lock();
        if began.is_some() {
            return false;
        }
        let (reply, replies) = mpsc::channel();
        let shards = self.mesh.shards();
        for shard in (0..shards).map(ShardId) {
            let redirect = config.redirect.clone();
            let reply = reply.clone();
            self.mesh
                .send(shard, ShardMessage::Drain { redirect, reply });
        }
        drop(reply);
        let deadline = Instant::now() + Duration::from_millis(limits::ADMIN_SHARD_TIMEOUT_MS);
        let mut total = DrainReport::default();
        let mut answered = 0;
        while answered < shards {
            let Ok(report) =
                replies.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            else {
                break;
            };
            total.publishers += report.publishers;
            total.asked += report.asked;
            total.players += report.players;
            answered += 1;
        }
        let redirect = config.redirect.as_ref().map(redacted);
        info!(
            reason = why,
            publishers = total.publishers,
            publishers_asked_to_move = total.asked,
            players_held = total.players,
            drain_ms = config.wait.as_millis() as u64,
            redirect = redirect.as_deref().unwrap_or("(where they are)"),
            unanswered_shards = shards - answered,
            "drain started: listeners closed, publishers asked to move"
        );
        *began = Some(Began {
            at: Instant::now(),
            wait: config.wait,
            held: self.held(),
        });
        true
    }

    /// Whether a drain began.
    pub fn began(&self) -> bool {
        self.lock().is_some()
    }

    /// Where the drain is now.
    pub fn progress(&self) -> Progress {
        let Some(began) = *self.lock() else {
            return Progress::Idle;
        };
        let here = self.held();
        if here > 0 && began.at.elapsed() < began.wait {
            return Progress::Waiting;
        }
        Progress::Over {
            left: began.held.saturating_sub(here),
            closed: here,
        }
    }

    /// Publishers and players on every shard now.
    fn held(&self) -> u64 {
        let snapshots = self.stats.iter().map(|s| s.snapshot());
        snapshots.map(|s| s.publishers + s.players).sum()
    }

    fn lock(&self) -> MutexGuard<'_, Option<Began>> {
        // Replaced in one assignment: never left half-written.
        self.began
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Logs the end of a drain that is over (nothing for one that is not).
pub fn log_over(progress: Progress) {
    if let Progress::Over { left, closed } = progress {
        info!(
            left_by_themselves = left,
            closed, "drain over: shutting down"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::url::RtmpUrl;

    #[test]
    fn a_drain_begins_once_tells_every_shard_and_is_over_when_nobody_is_left() {
        let (mesh, mut inboxes) = Mesh::new(2);
        let stats: Vec<Arc<ShardStats>> = (0..2).map(|_| Arc::default()).collect();
        stats[0].publishers.add(1);
        stats[1].players.add(2);
        let drain = Drain::new(mesh, stats.clone());
        assert_eq!(drain.progress(), Progress::Idle);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        // Each shard answers as it would, from its own thread.
        let shards = std::thread::spawn(move || {
            for inbox in &mut inboxes {
                let Some(ShardMessage::Drain { redirect, reply }) = runtime.block_on(inbox.recv())
                else {
                    panic!("a drain message");
                };
                assert_eq!(redirect, None);
                let report = DrainReport {
                    publishers: 1,
                    asked: 1,
                    players: 0,
                };
                reply.send(report).unwrap();
            }
        });
        let config = DrainConfig {
            wait: Duration::from_secs(60),
            redirect: None,
        };
        assert!(drain.begin(&config, "test"));
        shards.join().unwrap();
        assert!(!drain.begin(&config, "test"), "one drain at a time");
        assert_eq!(drain.progress(), Progress::Waiting);
        stats[0].publishers.sub(1);
        stats[1].players.sub(2);
        assert_eq!(drain.progress(), Progress::Over { left: 3, closed: 0 });
    }

    #[test]
    fn a_drain_whose_time_is_up_names_who_is_still_here() {
        let (mesh, mut inboxes) = Mesh::new(1);
        let stats: Vec<Arc<ShardStats>> = vec![Arc::default()];
        stats[0].players.add(3);
        let drain = Drain::new(mesh, stats.clone());
        let config = DrainConfig {
            wait: Duration::from_millis(1),
            redirect: Some(RtmpUrl::parse("rtmp://b.example/live").unwrap()),
        };
        let shard = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let Some(ShardMessage::Drain { redirect, reply }) = runtime.block_on(inboxes[0].recv())
            else {
                panic!("a drain message");
            };
            assert_eq!(redirect.map(|url| url.host), Some("b.example".into()));
            reply.send(DrainReport::default()).unwrap();
        });
        assert!(drain.begin(&config, "test"));
        shard.join().unwrap();
        std::thread::sleep(Duration::from_millis(2));
        stats[0].players.sub(1);
        assert_eq!(drain.progress(), Progress::Over { left: 1, closed: 2 });
    }
}
