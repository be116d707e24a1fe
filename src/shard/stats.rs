//! Per-shard counters. Each is written by its own shard alone (a relaxed
//! load and store, no read-modify-write contention) and read by whoever
//! wants a snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

/// A counter with a single writer.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Only the owning shard calls this, so load + store cannot
    /// lose an update.
    pub fn add(&self, n: u64) {
        let v = self.0.load(Ordering::Relaxed);
        self.0.store(v.wrapping_add(n), Ordering::Relaxed);
    }

    pub fn sub(&self, n: u64) {
        let v = self.0.load(Ordering::Relaxed);
        self.0.store(v.saturating_sub(n), Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// What one shard counts.
#[derive(Debug, Default)]
pub struct ShardStats {
    /// Gauges.
    pub connections: Counter,
    pub publishers: Counter,
    pub players: Counter,
    /// Totals.
    pub connections_accepted: Counter,
    pub connections_refused: Counter,
    pub bytes_in: Counter,
    pub bytes_out: Counter,
    pub frames_in: Counter,
    pub frames_dropped: Counter,
    pub slow_disconnects: Counter,
    pub protocol_errors: Counter,
    pub timeouts: Counter,
    pub mesh_frames_dropped: Counter,
}

/// A copy of one shard's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShardSnapshot {
    pub connections: u64,
    pub publishers: u64,
    pub players: u64,
    pub connections_accepted: u64,
    pub connections_refused: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub frames_in: u64,
    pub frames_dropped: u64,
    pub slow_disconnects: u64,
    pub protocol_errors: u64,
    pub timeouts: u64,
    pub mesh_frames_dropped: u64,
}

impl ShardStats {
    pub fn snapshot(&self) -> ShardSnapshot {
        ShardSnapshot {
            connections: self.connections.get(),
            publishers: self.publishers.get(),
            players: self.players.get(),
            connections_accepted: self.connections_accepted.get(),
            connections_refused: self.connections_refused.get(),
            bytes_in: self.bytes_in.get(),
            bytes_out: self.bytes_out.get(),
            frames_in: self.frames_in.get(),
            frames_dropped: self.frames_dropped.get(),
            slow_disconnects: self.slow_disconnects.get(),
            protocol_errors: self.protocol_errors.get(),
            timeouts: self.timeouts.get(),
            mesh_frames_dropped: self.mesh_frames_dropped.get(),
        }
    }
}
