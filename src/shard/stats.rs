//! Per-shard counters. Each is written by its own shard alone (a relaxed
//! load and store, no read-modify-write contention) and read by whoever
//! wants a snapshot.
//!
//! Every way a peer can hurt the server is counted here once per event,
//! and logged once per connection (its "closed" line, plus the first
//! refused command), never once per byte or per message: a flood must not
//! become a flood of log lines.

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

/// Declares the counters once: [`ShardStats`] (live, one [`Counter`]
/// each), [`ShardSnapshot`] (a copy) and the sum of snapshots.
macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// What one shard counts.
        #[derive(Debug, Default)]
        pub struct ShardStats {
            $($(#[$doc])* pub $name: Counter,)*
        }

        /// A copy of one shard's counters (or of several added up).
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct ShardSnapshot {
            $($(#[$doc])* pub $name: u64,)*
        }

        impl ShardStats {
            pub fn snapshot(&self) -> ShardSnapshot {
                ShardSnapshot {
                    $($name: self.$name.get(),)*
                }
            }
        }

        impl std::iter::Sum for ShardSnapshot {
            /// The whole server's counters from each shard's.
            fn sum<I: Iterator<Item = ShardSnapshot>>(shards: I) -> ShardSnapshot {
                shards.fold(ShardSnapshot::default(), |total, s| ShardSnapshot {
                    $($name: total.$name.wrapping_add(s.$name),)*
                })
            }
        }
    };
}

counters! {
    // Gauges.
    /// Connections open now.
    connections,
    /// Streams being published from this shard now.
    publishers,
    /// Streams being played on this shard now.
    players,
    // Totals.
    connections_accepted,
    /// Connections closed at once because the shard was at its share of
    /// `max_connections`, the address at `max_connections_per_ip`, or the
    /// shard shutting down.
    connections_refused,
    bytes_in,
    bytes_out,
    frames_in,
    /// Video frames a slow player did not get (dropped until a keyframe).
    frames_dropped,
    /// Players disconnected because they could not keep up.
    slow_disconnects,
    /// Handshakes that failed: a wrong version byte, garbage, an HTTP
    /// request on the RTMP port.
    handshake_failures,
    /// Connections that did not finish the handshake and `connect` in time
    /// (silent peers, handshakes that stop halfway, slowloris).
    handshake_timeouts,
    /// Connected peers silent past the idle timeout.
    idle_timeouts,
    /// Connections closed for breaking the protocol after the handshake:
    /// malformed or over-limit chunks and messages, illegal commands.
    protocol_errors,
    /// Commands refused with `_error` (or dropped, when sent as a
    /// notification that expects no answer); the connection goes on.
    command_errors,
    /// Connections ended by a socket error (a reset, a broken pipe).
    io_errors,
    /// Connects, publishes and plays refused by access rules or hooks.
    auth_denials,
    /// Hook calls that got no usable answer (timeout, no connection).
    hook_failures,
    /// Publishes refused because `max_publishers` or `max_streams` was
    /// reached.
    limit_refusals,
    mesh_frames_dropped,
}
